//! The columns `tokio`, `async-std` and `smol`: this client's async API (zk-client) on each
//! runtime. The workloads are written once, generic over zk-client's `Runtime`; `zk-bench`
//! picks the runtime and blocks on [`run`].

use std::future::IntoFuture;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use smol::future::{or, zip};
use smol::stream::StreamExt;
use zk_client::{AddWatchMode, Client, ClientBuilder, EventType, PersistentItem, SessionState};

use crate::measure::{Latencies, Meter};
use crate::pipeline::windowed;
use crate::spec::*;
use crate::watches::{w7_check, Ensemble, W8Breakdown, W8Tally, PLACEMENT_TRIES, W8_PASSES};
use crate::{check_len, fail, BenchError, BenchResult};

/// Runs `workload` against `addr` on runtime `rt`; returns the lines to print.
///
/// Errors on any failed operation or a reply that is not what setup wrote.
pub async fn run(
    rt: Arc<dyn zk_client::Runtime>,
    workload: Workload,
    addr: &str,
) -> BenchResult<Vec<String>> {
    match workload {
        Workload::W6 => return w6(rt, addr).await,
        Workload::W7 => return w7(rt, addr).await,
        Workload::W8 => return w8(rt, addr).await,
        _ => {}
    }
    let client = connect(rt, addr).await?;
    let lines = match workload {
        Workload::W1 => w1(&client).await?,
        Workload::W2 => w2(&client).await?,
        Workload::W3 => w3(&client).await?,
        Workload::W4 => w4(&client).await?,
        Workload::W5 => w5(&client).await?,
        Workload::W6 | Workload::W7 | Workload::W8 => unreachable!("handled above"),
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

/// W7: 10,000 one-shot data watches (getData with watch) on one session; one multi of 10,000
/// setData from a second; timed from sending the multi until the last watch has fired. The
/// multi is built before the clock starts (the operations are only collected until `commit`,
/// which encodes and sends them, and is timed); the events are checked after it stops.
async fn w7(rt: Arc<dyn zk_client::Runtime>, addr: &str) -> BenchResult<Vec<String>> {
    let watcher = connect(rt.clone(), addr).await?;
    let writer = connect(rt, addr).await?;
    let paths: Vec<String> = (0..W7_CHILDREN).map(w7_child).collect();
    let mut watches = Vec::with_capacity(W7_CHILDREN);
    windowed(
        W7_CHILDREN,
        WINDOW,
        |i| watcher.get_data(&paths[i]).watch(),
        |_, (_, _, w)| {
            watches.push(w);
            Ok(())
        },
    )
    .await?;
    let value = Bytes::from_static(WATCH_VALUE);
    let mut txn = writer.transaction();
    for p in &paths {
        txn = txn.set_data(p, value.clone(), -1);
    }
    let meter = Meter::start();
    let multi = txn.commit();
    let fired = async {
        let mut events = Vec::with_capacity(W7_CHILDREN);
        for w in watches {
            events.push(w.await?);
        }
        Ok::<_, BenchError>((meter.stop("w7", W7_CHILDREN), events))
    };
    let (results, fired) = zip(multi, fired).await;
    let (phase, events) = fired?;
    let results = results?;
    if results.len() != W7_CHILDREN {
        return Err(fail(format!(
            "w7: the multi returned {} results",
            results.len()
        )));
    }
    for (i, ev) in events.iter().enumerate() {
        w7_check(
            i,
            ev.event_type == EventType::NodeDataChanged,
            &ev.event_type,
            &ev.path,
        )?;
    }
    watcher.close().await;
    writer.close().await;
    Ok(vec![phase.to_string()])
}

/// A session of W8's watcher on a follower of `ens`, and that follower's index.
async fn place(rt: Arc<dyn zk_client::Runtime>, ens: &Ensemble) -> BenchResult<(Client, usize)> {
    for _ in 0..PLACEMENT_TRIES {
        let client = connect(rt.clone(), &ens.connect_string()).await?;
        let id = client
            .client_id()
            .ok_or_else(|| fail("w8: connected without a session id"))?;
        if let Some(i) = ens.follower_of(id.id)? {
            return Ok((client, i));
        }
        client.close().await;
    }
    Err(fail("w8: no session landed on a follower"))
}

/// W8: 10,000 one-shot data watches and a persistent recursive watch on `/zkb/w8`; kill -9 of
/// the session's server; timed until the session is connected to another server and a read sent
/// once it reports `Connected` is answered. The client sends SetWatches2 before any request
/// after a handshake and the server answers a connection's requests in order, so that reply
/// proves every SetWatches2 frame was answered (the read adds one round trip). Then a second
/// session writes every node twice ([`W8_PASSES`]), and every watch must fire (checked, not
/// timed).
async fn w8(rt: Arc<dyn zk_client::Runtime>, hosts: &str) -> BenchResult<Vec<String>> {
    let ens = Ensemble::from_env(hosts)?;
    let (client, victim) = place(rt.clone(), &ens).await?;
    let paths: Vec<String> = (0..W8_NODES).map(w8_node).collect();
    let mut watches = Vec::with_capacity(W8_NODES);
    windowed(
        W8_NODES,
        WINDOW,
        |i| client.get_data(&paths[i]).watch(),
        |_, (_, _, w)| {
            watches.push(w);
            Ok(())
        },
    )
    .await?;
    let mut recursive = client
        .add_watch(W8_PARENT, AddWatchMode::PersistentRecursive)
        .await?;
    let mut states = client.state_changes();

    let meter = Meter::start_servers(ens.survivor_pids(victim));
    ens.kill(victim)?;
    let mut times = W8Breakdown::killed();
    let mut suspended = false;
    loop {
        match states.next().await {
            Some(SessionState::Suspended) => {
                suspended = true;
                times.lost();
            }
            Some(SessionState::Connected) if suspended => {
                times.connected();
                break;
            }
            Some(SessionState::Lost(r)) => return Err(fail(format!("w8: session lost: {r:?}"))),
            None => return Err(fail("w8: the state stream ended")),
            Some(_) => {}
        }
    }
    client.exists(W8_PARENT).await?;
    let phase = meter.stop("w8", W8_NODES);
    eprintln!("zk-bench: {}", times.line(victim));
    if client.current_host().map(|h| h.to_string()) == Some(ens.addrs[victim].clone()) {
        return Err(fail("w8: the session claims to be on the killed server"));
    }

    let writer = connect(rt, &ens.survivors(victim)).await?;
    let deadline = Instant::now() + W8_CHECK_TIMEOUT;
    let left = || deadline.saturating_duration_since(Instant::now());
    let mut tally = W8Tally::default();
    let value = Bytes::from_static(WATCH_VALUE);
    let writes = windowed(
        W8_NODES * W8_PASSES,
        WINDOW,
        |i| {
            writer
                .set_data(&paths[i % W8_NODES], value.clone())
                .into_future()
        },
        |_, _| Ok(()),
    );
    // The recursive watch is read while the writes go out: its queue holds at most
    // `watch_queue_limit` (10,000) unread items.
    let read_recursive = async {
        while !tally.recursive_complete() {
            let item = or(async { Some(recursive.next().await) }, async {
                client.sleep(left()).await;
                None
            })
            .await;
            match item {
                Some(Some(PersistentItem::Event(ev))) => {
                    let changed = ev.event_type == EventType::NodeDataChanged;
                    tally.recursive(changed, &ev.event_type, &ev.path);
                }
                Some(Some(PersistentItem::Resync)) => {}
                Some(None) | None => break,
            }
        }
    };
    let (written, ()) = zip(writes, read_recursive).await;
    written?;
    for (i, w) in watches.into_iter().enumerate() {
        let fired = or(async { Some(w.await) }, async {
            client.sleep(left()).await;
            None
        })
        .await;
        match fired {
            Some(Ok(ev)) => {
                let changed = ev.event_type == EventType::NodeDataChanged;
                tally.oneshot(i, changed, &ev.event_type, &ev.path);
            }
            Some(Err(e)) => tally.oneshot_failed(i, &e),
            None => break,
        }
    }
    writer.close().await;
    client.close().await;
    tally
        .verdict("this client")
        .map_err(|e| fail(format!("{e}; the timed phase was: {phase}")))?;
    Ok(vec![phase.to_string()])
}
