//! The columns `tokio`, `async-std` and `smol`: this client's async API (zk-client) on each
//! runtime. The workloads are written once, generic over zk-client's `Runtime`; `zk-bench`
//! picks the runtime and blocks on [`run`].

use std::future::IntoFuture;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use zk_client::{Client, ClientBuilder};

use crate::measure::{Latencies, Meter};
use crate::pipeline::windowed;
use crate::spec::*;
use crate::{check_len, fail, BenchResult};

/// Runs `workload` against `addr` on runtime `rt`; returns the lines to print.
///
/// Errors on any failed operation or a reply that is not what setup wrote.
pub async fn run(
    rt: Arc<dyn zk_client::Runtime>,
    workload: Workload,
    addr: &str,
) -> BenchResult<Vec<String>> {
    if workload == Workload::W6 {
        return w6(rt, addr).await;
    }
    let client = connect(rt, addr).await?;
    let lines = match workload {
        Workload::W1 => w1(&client).await?,
        Workload::W2 => w2(&client).await?,
        Workload::W3 => w3(&client).await?,
        Workload::W4 => w4(&client).await?,
        Workload::W5 => w5(&client).await?,
        Workload::W6 => unreachable!("handled above"),
    };
    client.close().await;
    Ok(lines)
}

/// A session with the spec's settings, connected.
pub async fn connect(rt: Arc<dyn zk_client::Runtime>, addr: &str) -> BenchResult<Client> {
    let mut b = ClientBuilder::new(rt, addr).session_timeout(SESSION_TIMEOUT);
    if let Some(ca) = crate::tls_ca() {
        b = b.tls(zk_client::TlsConfig::new().ca_file(ca));
    }
    Ok(b.connect().await?)
}

async fn w1(client: &Client) -> BenchResult<Vec<String>> {
    for _ in 0..W1_WARMUP {
        let (data, _) = client.get_data(SMALL).await?;
        check_len(SMALL, data.len(), SMALL_LEN)?;
    }
    let mut lat = Latencies::with_capacity(W1_OPS);
    let meter = Meter::start();
    for _ in 0..W1_OPS {
        let t = Instant::now();
        let (data, _) = client.get_data(SMALL).await?;
        lat.push(t.elapsed());
        check_len(SMALL, data.len(), SMALL_LEN)?;
    }
    let phase = meter.stop("w1", W1_OPS);
    Ok(vec![phase.to_string(), lat.line("w1")])
}

async fn reads(client: &Client, n: usize) -> BenchResult<()> {
    windowed(
        n,
        WINDOW,
        |_| client.get_data(SMALL).into_future(),
        |_, (data, _)| check_len(SMALL, data.len(), SMALL_LEN),
    )
    .await
}

async fn w2(client: &Client) -> BenchResult<Vec<String>> {
    reads(client, W2_WARMUP).await?;
    let meter = Meter::start();
    reads(client, W2_OPS).await?;
    Ok(vec![meter.stop("w2", W2_OPS).to_string()])
}

async fn creates(
    client: &Client,
    value: &Bytes,
    names: &mut Vec<String>,
    n: usize,
) -> BenchResult<()> {
    windowed(
        n,
        WINDOW,
        |_| {
            client
                .create(W3_PREFIX, value.clone())
                .sequential()
                .into_future()
        },
        |_, path| {
            names.push(path);
            Ok(())
        },
    )
    .await
}

async fn deletes(client: &Client, names: &[String]) -> BenchResult<()> {
    windowed(
        names.len(),
        WINDOW,
        |i| client.delete(&names[i]).version(-1).into_future(),
        |_, ()| Ok(()),
    )
    .await
}

async fn w3(client: &Client) -> BenchResult<Vec<String>> {
    let value = Bytes::from(w3_value());
    let mut names = Vec::with_capacity(W3_OPS);
    creates(client, &value, &mut names, W3_WARMUP).await?;
    deletes(client, &names).await?;
    names.clear();
    let meter = Meter::start();
    creates(client, &value, &mut names, W3_OPS).await?;
    let create = meter.stop("w3_create", W3_OPS);
    let meter = Meter::start();
    deletes(client, &names).await?;
    let delete = meter.stop("w3_delete", W3_OPS);
    Ok(vec![create.to_string(), delete.to_string()])
}

async fn w4(client: &Client) -> BenchResult<Vec<String>> {
    for _ in 0..W4_WARMUP {
        let (data, _) = client.get_data(BIG).await?;
        check_len(BIG, data.len(), BIG_LEN)?;
    }
    let meter = Meter::start();
    for _ in 0..W4_OPS {
        let (data, _) = client.get_data(BIG).await?;
        check_len(BIG, data.len(), BIG_LEN)?;
    }
    Ok(vec![meter.stop("w4", W4_OPS).to_string()])
}

async fn w5(client: &Client) -> BenchResult<Vec<String>> {
    let list = || async {
        let children = client.get_children(WIDE).await?;
        if children.len() == WIDE_CHILDREN {
            Ok(())
        } else {
            Err(fail(format!("{WIDE}: {} children", children.len())))
        }
    };
    for _ in 0..W5_WARMUP {
        list().await?;
    }
    let meter = Meter::start();
    for _ in 0..W5_OPS {
        list().await?;
    }
    Ok(vec![meter.stop("w5", W5_OPS).to_string()])
}

async fn w6(rt: Arc<dyn zk_client::Runtime>, addr: &str) -> BenchResult<Vec<String>> {
    let mut meter = None;
    for i in 0..W6_WARMUP + W6_OPS {
        if i == W6_WARMUP {
            meter = Some(Meter::start());
        }
        let client = connect(rt.clone(), addr).await?;
        client.close().await;
    }
    let meter = meter.ok_or_else(|| fail("no timed sessions"))?;
    Ok(vec![meter.stop("w6", W6_OPS).to_string()])
}
