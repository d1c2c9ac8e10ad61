//! The column `zookeeper-client`: the peer crate from crates.io (kezhuw's zookeeper-client, the
//! most complete async ZooKeeper client for Rust), on the same tokio current-thread runtime as
//! the `tokio` column.
//!
//! Its futures are not `Unpin`, so the window boxes them (one allocation per request, a few tens
//! of nanoseconds against microseconds per request). It has no `close()`: a session ends when the
//! last `Client` is dropped, and its state watcher reports `Closed` once the server has answered
//! closeSession, which is what W6 waits for.

use std::time::Instant;

use zookeeper_client as zkc;

use crate::measure::{Latencies, Meter};
use crate::pipeline::windowed;
use crate::spec::*;
use crate::{check_len, fail, BenchResult};

/// Runs `workload` against `addr` (call inside a tokio runtime); returns the lines to print.
///
/// Errors on any failed operation or a reply that is not what setup wrote.
pub async fn run(workload: Workload, addr: &str) -> BenchResult<Vec<String>> {
    if workload == Workload::W6 {
        return w6(addr).await;
    }
    let client = connect(addr).await?;
    let lines = match workload {
        Workload::W1 => w1(&client).await?,
        Workload::W2 => w2(&client).await?,
        Workload::W3 => w3(&client).await?,
        Workload::W4 => w4(&client).await?,
        Workload::W5 => w5(&client).await?,
        Workload::W6 => unreachable!("handled above"),
    };
    close(client).await?;
    Ok(lines)
}

/// A session with the spec's settings, connected.
pub async fn connect(addr: &str) -> BenchResult<zkc::Client> {
    Ok(zkc::Client::connector()
        .with_session_timeout(SESSION_TIMEOUT)
        .connect(addr)
        .await?)
}

/// Drops the client and waits until the session reports `Closed` (the server answered
/// closeSession).
pub async fn close(client: zkc::Client) -> BenchResult<()> {
    let mut states = client.state_watcher();
    drop(client);
    loop {
        match states.changed().await {
            zkc::SessionState::Closed => return Ok(()),
            s if s.is_terminated() => return Err(fail(format!("session ended as {s}"))),
            _ => {}
        }
    }
}

async fn w1(client: &zkc::Client) -> BenchResult<Vec<String>> {
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

async fn reads(client: &zkc::Client, n: usize) -> BenchResult<()> {
    windowed(
        n,
        WINDOW,
        |_| Box::pin(client.get_data(SMALL)),
        |_, (data, _)| check_len(SMALL, data.len(), SMALL_LEN),
    )
    .await
}

async fn w2(client: &zkc::Client) -> BenchResult<Vec<String>> {
    reads(client, W2_WARMUP).await?;
    let meter = Meter::start();
    reads(client, W2_OPS).await?;
    Ok(vec![meter.stop("w2", W2_OPS).to_string()])
}

async fn creates(
    client: &zkc::Client,
    value: &[u8],
    names: &mut Vec<String>,
    n: usize,
) -> BenchResult<()> {
    let options = zkc::CreateMode::PersistentSequential.with_acls(zkc::Acls::anyone_all());
    windowed(
        n,
        WINDOW,
        |_| Box::pin(client.create(W3_PREFIX, value, &options)),
        |_, (_, seq)| {
            names.push(format!("{W3_PREFIX}{seq}"));
            Ok(())
        },
    )
    .await
}

async fn deletes(client: &zkc::Client, names: &[String]) -> BenchResult<()> {
    windowed(
        names.len(),
        WINDOW,
        |i| Box::pin(client.delete(&names[i], None)),
        |_, ()| Ok(()),
    )
    .await
}

async fn w3(client: &zkc::Client) -> BenchResult<Vec<String>> {
    let value = w3_value();
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

async fn w4(client: &zkc::Client) -> BenchResult<Vec<String>> {
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

async fn w5(client: &zkc::Client) -> BenchResult<Vec<String>> {
    let list = || async {
        let children = client.list_children(WIDE).await?;
        if children.len() == WIDE_CHILDREN {
            Ok::<(), crate::BenchError>(())
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

async fn w6(addr: &str) -> BenchResult<Vec<String>> {
    let mut meter = None;
    for i in 0..W6_WARMUP + W6_OPS {
        if i == W6_WARMUP {
            meter = Some(Meter::start());
        }
        let client = connect(addr).await?;
        close(client).await?;
    }
    let meter = meter.ok_or_else(|| fail("no timed sessions"))?;
    Ok(vec![meter.stop("w6", W6_OPS).to_string()])
}
