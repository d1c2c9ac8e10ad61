//! `zk-bench setup`: the shared data of BENCH-SPEC.md, made with this client on tokio.
//! Idempotent: nodes that exist are given the right content, missing children are created,
//! extra ones deleted, and W3's parent is emptied of anything a failed run left behind.

use std::collections::HashSet;
use std::future::IntoFuture;
use std::sync::Arc;

use bytes::Bytes;
use zk_client::{Client, Error};

use crate::ours::connect;
use crate::pipeline::windowed;
use crate::spec::*;
use crate::BenchResult;

/// Makes the shared data on the server at `addr`; call inside a tokio runtime.
///
/// Errors on any failed operation.
pub async fn run(rt: Arc<dyn zk_client::Runtime>, addr: &str) -> BenchResult<()> {
    let client = connect(rt, addr).await?;
    client.ensure_path("/zkb").await?;
    put(&client, SMALL, vec![b's'; SMALL_LEN]).await?;
    put(&client, BIG, vec![b'b'; BIG_LEN]).await?;
    client.ensure_path(WIDE).await?;
    client.ensure_path(W3_PARENT).await?;

    let have: HashSet<String> = client.get_children(WIDE).await?.into_iter().collect();
    let want: Vec<String> = (0..WIDE_CHILDREN).map(wide_child).collect();
    let missing: Vec<String> = want
        .iter()
        .filter(|c| !have.contains(*c))
        .map(|c| format!("{WIDE}/{c}"))
        .collect();
    let want: HashSet<String> = want.into_iter().collect();
    let extra: Vec<String> = have
        .iter()
        .filter(|c| !want.contains(*c))
        .map(|c| format!("{WIDE}/{c}"))
        .collect();
    windowed(
        missing.len(),
        WINDOW,
        |i| client.create(&missing[i], Bytes::new()).into_future(),
        |_, _| Ok(()),
    )
    .await?;
    delete_all(&client, &extra).await?;

    let leftovers: Vec<String> = client
        .get_children(W3_PARENT)
        .await?
        .into_iter()
        .map(|c| format!("{W3_PARENT}/{c}"))
        .collect();
    delete_all(&client, &leftovers).await?;

    let n = client.get_children(WIDE).await?.len();
    eprintln!(
        "zk-bench setup: {SMALL} {SMALL_LEN} B, {BIG} {BIG_LEN} B, {WIDE} {n} children \
         ({} created, {} removed), {W3_PARENT} emptied of {}",
        missing.len(),
        extra.len(),
        leftovers.len()
    );
    client.close().await;
    Ok(())
}

/// Creates `path` with `data`, or sets its data if it exists.
async fn put(client: &Client, path: &str, data: Vec<u8>) -> BenchResult<()> {
    let data = Bytes::from(data);
    match client.create(path, data.clone()).await {
        Ok(_) => Ok(()),
        Err(Error::NodeExists { .. }) => {
            client.set_data(path, data).await?;
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

async fn delete_all(client: &Client, paths: &[String]) -> BenchResult<()> {
    windowed(
        paths.len(),
        WINDOW,
        |i| client.delete(&paths[i]).into_future(),
        |_, ()| Ok(()),
    )
    .await
}
