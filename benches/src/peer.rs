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
use crate::watches::{w7_check, Ensemble, W8Breakdown, W8Tally, PLACEMENT_TRIES, W8_PASSES};
use crate::{check_len, fail, BenchResult};

/// Runs `workload` against `addr` (call inside a tokio runtime); returns the lines to print.
///
/// Errors on any failed operation or a reply that is not what setup wrote.
pub async fn run(workload: Workload, addr: &str) -> BenchResult<Vec<String>> {
    match workload {
        Workload::W6 => return w6(addr).await,
        Workload::W7 => return w7(addr).await,
        Workload::W8 => return w8(addr).await,
        _ => {}
    }
    let client = connect(addr).await?;
    let lines = match workload {
        Workload::W1 => w1(&client).await?,
        Workload::W2 => w2(&client).await?,
        Workload::W3 => w3(&client).await?,
        Workload::W4 => w4(&client).await?,
        Workload::W5 => w5(&client).await?,
        Workload::W6 | Workload::W7 | Workload::W8 => unreachable!("handled above"),
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

/// W7 as for this client (`ours.rs`): one-shot watches by `get_and_watch_data`, the multi by
/// `new_multi_writer`. The peer encodes each operation as it is added (`add_set_data`), before
/// the clock starts; `commit()` sends the buffer and is timed.
async fn w7(addr: &str) -> BenchResult<Vec<String>> {
    let watcher = connect(addr).await?;
    let writer = connect(addr).await?;
    let paths: Vec<String> = (0..W7_CHILDREN).map(w7_child).collect();
    let mut watches = Vec::with_capacity(W7_CHILDREN);
    windowed(
        W7_CHILDREN,
        WINDOW,
        |i| Box::pin(watcher.get_and_watch_data(&paths[i])),
        |_, (_, _, w)| {
            watches.push(w);
            Ok(())
        },
    )
    .await?;
    let mut multi = writer.new_multi_writer();
    for p in &paths {
        multi.add_set_data(p, WATCH_VALUE, None)?;
    }
    let meter = Meter::start();
    let commit = multi.commit();
    let fired = async {
        let mut events = Vec::with_capacity(W7_CHILDREN);
        for w in watches {
            events.push(w.changed().await);
        }
        (meter.stop("w7", W7_CHILDREN), events)
    };
    let (results, (phase, events)) = smol::future::zip(commit, fired).await;
    let results = results.map_err(|e| fail(format!("w7: the multi failed: {e:?}")))?;
    if results.len() != W7_CHILDREN {
        return Err(fail(format!(
            "w7: the multi returned {} results",
            results.len()
        )));
    }
    for (i, ev) in events.iter().enumerate() {
        let changed = ev.event_type == zkc::EventType::NodeDataChanged;
        w7_check(i, changed, &ev.event_type, &ev.path)?;
    }
    close(watcher).await?;
    close(writer).await?;
    Ok(vec![phase.to_string()])
}

/// A session of W8's watcher on a follower of `ens`, and that follower's index.
async fn place(ens: &Ensemble) -> BenchResult<(zkc::Client, usize)> {
    for _ in 0..PLACEMENT_TRIES {
        let client = connect(&ens.connect_string()).await?;
        if let Some(i) = ens.follower_of(client.session_id().0)? {
            return Ok((client, i));
        }
        close(client).await?;
    }
    Err(fail("w8: no session landed on a follower"))
}

/// W8 as for this client (`ours.rs`): `get_and_watch_data` for the one-shot watches,
/// `watch(path, PersistentRecursive)` for the recursive one; the state watcher's `Disconnected`
/// then `SyncConnected`, then a `check_stat` answered, ends the timed phase (the peer queues its
/// SetWatches frames ahead of requests after a handshake, as this client does).
async fn w8(hosts: &str) -> BenchResult<Vec<String>> {
    let ens = Ensemble::from_env(hosts)?;
    let (client, victim) = place(&ens).await?;
    let paths: Vec<String> = (0..W8_NODES).map(w8_node).collect();
    let mut watches = Vec::with_capacity(W8_NODES);
    windowed(
        W8_NODES,
        WINDOW,
        |i| Box::pin(client.get_and_watch_data(&paths[i])),
        |_, (_, _, w)| {
            watches.push(w);
            Ok(())
        },
    )
    .await?;
    let mut recursive = client
        .watch(W8_PARENT, zkc::AddWatchMode::PersistentRecursive)
        .await?;
    let mut states = client.state_watcher();

    let meter = Meter::start_servers(ens.survivor_pids(victim));
    ens.kill(victim)?;
    let mut times = W8Breakdown::killed();
    let mut disconnected = false;
    loop {
        match states.changed().await {
            zkc::SessionState::Disconnected => {
                disconnected = true;
                times.lost();
            }
            zkc::SessionState::SyncConnected if disconnected => {
                times.connected();
                break;
            }
            s if s.is_terminated() => {
                return Err(fail(format!(
                    "w8: session ended as {s}; {}",
                    times.line(victim)
                )))
            }
            _ => {}
        }
    }
    if let Err(e) = client.check_stat(W8_PARENT).await {
        return Err(fail(format!(
            "w8: the read after the reconnect: {e}; {}",
            times.line(victim)
        )));
    }
    let phase = meter.stop("w8", W8_NODES);
    eprintln!("zk-bench: {}", times.line(victim));

    let writer = connect(&ens.survivors(victim)).await?;
    let deadline = tokio::time::Instant::now() + W8_CHECK_TIMEOUT;
    let mut tally = W8Tally::default();
    let writes = windowed(
        W8_NODES * W8_PASSES,
        WINDOW,
        |i| Box::pin(writer.set_data(&paths[i % W8_NODES], WATCH_VALUE, None)),
        |_, _| Ok(()),
    );
    let read_recursive = async {
        while !tally.recursive_complete() {
            match tokio::time::timeout_at(deadline, recursive.changed()).await {
                // Session state changes come on this stream too.
                Ok(ev) if ev.event_type == zkc::EventType::Session => {
                    if ev.session_state.is_terminated() {
                        break;
                    }
                }
                Ok(ev) => {
                    let changed = ev.event_type == zkc::EventType::NodeDataChanged;
                    tally.recursive(changed, &ev.event_type, &ev.path);
                }
                Err(_) => break,
            }
        }
    };
    let (written, ()) = smol::future::zip(writes, read_recursive).await;
    written?;
    for (i, w) in watches.into_iter().enumerate() {
        match tokio::time::timeout_at(deadline, w.changed()).await {
            Ok(ev) => {
                let changed = ev.event_type == zkc::EventType::NodeDataChanged;
                tally.oneshot(i, changed, &ev.event_type, &ev.path);
            }
            Err(_) => break,
        }
    }
    close(writer).await?;
    drop(recursive);
    close(client).await?;
    tally
        .verdict("zookeeper-client")
        .map_err(|e| fail(format!("{e}; the timed phase was: {phase}")))?;
    Ok(vec![phase.to_string()])
}
