//! The column `blocking`: zk-blocking, this client without a runtime.
//!
//! W2 and W3 use its pipelining API, kazoo's: `get_data_async`, `create(..).run_async()`,
//! `delete(..).run_async()` send at once and return an `AsyncResult`; the window keeps up to
//! 1,000 of them and waits on the oldest, which is the order ZooKeeper answers in.

use std::collections::VecDeque;
use std::sync::mpsc;
use std::time::Instant;

use bytes::Bytes;
use zk_blocking::{AsyncResult, Client};
use zk_client::{AddWatchMode, EventType, PersistentItem, SessionState};

use crate::measure::{Latencies, Meter};
use crate::spec::*;
use crate::watches::{w7_check, Ensemble, W8Breakdown, W8Tally, PLACEMENT_TRIES, W8_PASSES};
use crate::{check_len, fail, BenchResult};

/// Runs `workload` against `addr`; returns the lines to print.
///
/// Errors on any failed operation or a reply that is not what setup wrote.
pub fn run(workload: Workload, addr: &str) -> BenchResult<Vec<String>> {
    match workload {
        Workload::W6 => return w6(addr),
        Workload::W7 => return w7(addr),
        Workload::W8 => return w8(addr),
        _ => {}
    }
    let client = connect(addr)?;
    let lines = match workload {
        Workload::W1 => w1(&client)?,
        Workload::W2 => w2(&client)?,
        Workload::W3 => w3(&client)?,
        Workload::W4 => w4(&client)?,
        Workload::W5 => w5(&client)?,
        Workload::W6 | Workload::W7 | Workload::W8 => unreachable!("handled above"),
    };
    client.close();
    Ok(lines)
}

/// A session with the spec's settings, connected.
pub fn connect(addr: &str) -> BenchResult<Client> {
    let mut b = Client::builder(addr).session_timeout(SESSION_TIMEOUT);
    if let Some(ca) = crate::tls_ca() {
        b = b.tls(zk_blocking::TlsConfig::new().ca_file(ca));
    }
    Ok(b.connect()?)
}

fn get(client: &Client, path: &str, len: usize) -> BenchResult<()> {
    let (data, _) = client.get_data(path).run()?;
    check_len(path, data.len(), len)
}

fn w1(client: &Client) -> BenchResult<Vec<String>> {
    for _ in 0..W1_WARMUP {
        get(client, SMALL, SMALL_LEN)?;
    }
    let mut lat = Latencies::with_capacity(W1_OPS);
    let meter = Meter::start();
    for _ in 0..W1_OPS {
        let t = Instant::now();
        let r = client.get_data(SMALL).run();
        lat.push(t.elapsed());
        let (data, _) = r?;
        check_len(SMALL, data.len(), SMALL_LEN)?;
    }
    let phase = meter.stop("w1", W1_OPS);
    Ok(vec![phase.to_string(), lat.line("w1")])
}

/// Runs `n` requests made by `issue`, at most [`WINDOW`] in flight, checking each result in the
/// order sent.
fn window<'a, T>(
    n: usize,
    mut issue: impl FnMut(usize) -> AsyncResult<'a, T>,
    mut check: impl FnMut(T) -> BenchResult<()>,
) -> BenchResult<()> {
    let mut inflight = VecDeque::with_capacity(WINDOW);
    for i in 0..n {
        if inflight.len() == WINDOW {
            if let Some(oldest) = inflight.pop_front() {
                check(AsyncResult::get(oldest)?)?;
            }
        }
        inflight.push_back(issue(i));
    }
    for r in inflight {
        check(r.get()?)?;
    }
    Ok(())
}

fn reads(client: &Client, n: usize) -> BenchResult<()> {
    window(
        n,
        |_| client.get_data(SMALL).run_async(),
        |(data, _)| check_len(SMALL, data.len(), SMALL_LEN),
    )
}

fn w2(client: &Client) -> BenchResult<Vec<String>> {
    reads(client, W2_WARMUP)?;
    let meter = Meter::start();
    reads(client, W2_OPS)?;
    Ok(vec![meter.stop("w2", W2_OPS).to_string()])
}

fn creates(client: &Client, value: &bytes::Bytes, n: usize) -> BenchResult<Vec<String>> {
    let mut names = Vec::with_capacity(n);
    window(
        n,
        |_| {
            client
                .create(W3_PREFIX, value.clone())
                .sequential()
                .run_async()
        },
        |name| {
            names.push(name);
            Ok(())
        },
    )?;
    Ok(names)
}

fn deletes(client: &Client, names: &[String]) -> BenchResult<()> {
    window(
        names.len(),
        |i| client.delete(&names[i]).version(-1).run_async(),
        |()| Ok(()),
    )
}

fn w3(client: &Client) -> BenchResult<Vec<String>> {
    let value = bytes::Bytes::from(w3_value());
    let names = creates(client, &value, W3_WARMUP)?;
    deletes(client, &names)?;
    let meter = Meter::start();
    let names = creates(client, &value, W3_OPS)?;
    let create = meter.stop("w3_create", W3_OPS);
    let meter = Meter::start();
    deletes(client, &names)?;
    let delete = meter.stop("w3_delete", W3_OPS);
    Ok(vec![create.to_string(), delete.to_string()])
}

fn w4(client: &Client) -> BenchResult<Vec<String>> {
    for _ in 0..W4_WARMUP {
        get(client, BIG, BIG_LEN)?;
    }
    let meter = Meter::start();
    for _ in 0..W4_OPS {
        get(client, BIG, BIG_LEN)?;
    }
    Ok(vec![meter.stop("w4", W4_OPS).to_string()])
}

fn w5(client: &Client) -> BenchResult<Vec<String>> {
    let list = || -> BenchResult<()> {
        let children = client.get_children(WIDE).run()?;
        if children.len() == WIDE_CHILDREN {
            Ok(())
        } else {
            Err(fail(format!("{WIDE}: {} children", children.len())))
        }
    };
    for _ in 0..W5_WARMUP {
        list()?;
    }
    let meter = Meter::start();
    for _ in 0..W5_OPS {
        list()?;
    }
    Ok(vec![meter.stop("w5", W5_OPS).to_string()])
}

fn w6(addr: &str) -> BenchResult<Vec<String>> {
    let mut meter = None;
    for i in 0..W6_WARMUP + W6_OPS {
        if i == W6_WARMUP {
            meter = Some(Meter::start());
        }
        let client = connect(addr)?;
        client.close();
    }
    let meter = meter.ok_or_else(|| fail("no timed sessions"))?;
    Ok(vec![meter.stop("w6", W6_OPS).to_string()])
}

/// Arms a one-shot data watch (getData with watch) on each of `paths`, one call after another:
/// the blocking API has no pipelined form of a watching read (untimed set-up).
fn data_watches(client: &Client, paths: &[String]) -> BenchResult<Vec<zk_blocking::Watch>> {
    let mut watches = Vec::with_capacity(paths.len());
    for p in paths {
        let (_, _, w) = client.get_data(p).watch().run()?;
        watches.push(w);
    }
    Ok(watches)
}

/// W7 as for the async columns (`ours.rs`), the blocking way: the writer session commits the
/// multi on a thread of its own (built before the clock starts, then told to go), while the
/// calling thread waits on the 10,000 watches in order.
fn w7(addr: &str) -> BenchResult<Vec<String>> {
    let watcher = connect(addr)?;
    let paths: Vec<String> = (0..W7_CHILDREN).map(w7_child).collect();
    let watches = data_watches(&watcher, &paths)?;
    let (ready_tx, ready_rx) = mpsc::channel::<()>();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let writer_addr = addr.to_owned();
    let writer_paths = paths.clone();
    let writer = std::thread::spawn(move || -> BenchResult<usize> {
        let client = connect(&writer_addr)?;
        let value = Bytes::from_static(WATCH_VALUE);
        let mut txn = client.transaction();
        for p in &writer_paths {
            txn = txn.set_data(p, value.clone(), -1);
        }
        let _ = ready_tx.send(());
        go_rx
            .recv()
            .map_err(|_| fail("w7: the watching thread went away"))?;
        let n = txn.commit()?.len();
        client.close();
        Ok(n)
    });
    ready_rx
        .recv()
        .map_err(|_| fail("w7: the writer thread failed before the multi"))?;
    let meter = Meter::start();
    go_tx
        .send(())
        .map_err(|_| fail("w7: the writer thread went away"))?;
    let mut events = Vec::with_capacity(W7_CHILDREN);
    for w in watches {
        events.push(w.wait()?);
    }
    let phase = meter.stop("w7", W7_CHILDREN);
    let n = writer
        .join()
        .map_err(|_| fail("w7: the writer thread panicked"))??;
    if n != W7_CHILDREN {
        return Err(fail(format!("w7: the multi returned {n} results")));
    }
    for (i, ev) in events.iter().enumerate() {
        let changed = ev.event_type == EventType::NodeDataChanged;
        w7_check(i, changed, &ev.event_type, &ev.path)?;
    }
    watcher.close();
    Ok(vec![phase.to_string()])
}

/// A session of W8's watcher on a follower of `ens`, and that follower's index.
fn place(ens: &Ensemble) -> BenchResult<(Client, usize)> {
    for _ in 0..PLACEMENT_TRIES {
        let client = connect(&ens.connect_string())?;
        let id = client
            .client_id()
            .ok_or_else(|| fail("w8: connected without a session id"))?;
        if let Some(i) = ens.follower_of(id.id)? {
            return Ok((client, i));
        }
        client.close();
    }
    Err(fail("w8: no session landed on a follower"))
}

/// W8 as for the async columns (`ours.rs`), the blocking way: a state listener (kazoo's
/// `add_listener`) reports `Suspended` then `Connected` through a channel, then an `exists`
/// answered ends the timed phase; in the check, a thread reads the recursive watch while the
/// calling thread writes.
fn w8(hosts: &str) -> BenchResult<Vec<String>> {
    let ens = Ensemble::from_env(hosts)?;
    let (client, victim) = place(&ens)?;
    let paths: Vec<String> = (0..W8_NODES).map(w8_node).collect();
    let watches = data_watches(&client, &paths)?;
    let mut recursive = client.add_watch(W8_PARENT, AddWatchMode::PersistentRecursive)?;
    let (tx, rx) = mpsc::channel();
    let listener = client.add_listener(move |state| {
        let _ = tx.send(state);
    })?;

    let meter = Meter::start_servers(ens.survivor_pids(victim));
    ens.kill(victim)?;
    let mut times = W8Breakdown::killed();
    let mut suspended = false;
    loop {
        match rx.recv() {
            Ok(SessionState::Suspended) => {
                suspended = true;
                times.lost();
            }
            Ok(SessionState::Connected) if suspended => {
                times.connected();
                break;
            }
            Ok(SessionState::Lost(r)) => return Err(fail(format!("w8: session lost: {r:?}"))),
            Err(_) => return Err(fail("w8: the state listener stopped")),
            Ok(_) => {}
        }
    }
    client.exists(W8_PARENT).run()?;
    let phase = meter.stop("w8", W8_NODES);
    eprintln!("zk-bench: {}", times.line(victim));
    listener.remove();

    let deadline = Instant::now() + W8_CHECK_TIMEOUT;
    let left = move || deadline.saturating_duration_since(Instant::now());
    // The recursive watch is read while the writes go out: its queue holds at most
    // `watch_queue_limit` (10,000) unread items.
    let reader = std::thread::spawn(move || {
        let mut tally = W8Tally::default();
        while !tally.recursive_complete() {
            match recursive.next_timeout(left()) {
                Some(PersistentItem::Event(ev)) => {
                    let changed = ev.event_type == EventType::NodeDataChanged;
                    tally.recursive(changed, &ev.event_type, &ev.path);
                }
                Some(PersistentItem::Resync) => {}
                None => break,
            }
        }
        (tally, recursive)
    });
    let writer = connect(&ens.survivors(victim))?;
    let value = Bytes::from_static(WATCH_VALUE);
    window(
        W8_NODES * W8_PASSES,
        |i| {
            writer
                .set_data(&paths[i % W8_NODES], value.clone())
                .run_async()
        },
        |_| Ok(()),
    )?;
    let (mut tally, recursive) = reader
        .join()
        .map_err(|_| fail("w8: the reading thread panicked"))?;
    for (i, mut w) in watches.into_iter().enumerate() {
        match w.wait_timeout(left()) {
            Some(Ok(ev)) => {
                let changed = ev.event_type == EventType::NodeDataChanged;
                tally.oneshot(i, changed, &ev.event_type, &ev.path);
            }
            Some(Err(e)) => tally.oneshot_failed(i, &e),
            None => break,
        }
    }
    writer.close();
    drop(recursive);
    client.close();
    tally
        .verdict("blocking")
        .map_err(|e| fail(format!("{e}; the timed phase was: {phase}")))?;
    Ok(vec![phase.to_string()])
}
