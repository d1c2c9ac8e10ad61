//! The column `blocking`: zk-blocking, this client without a runtime.
//!
//! W2 and W3 use its pipelining API, kazoo's: `get_data_async`, `create(..).run_async()`,
//! `delete(..).run_async()` send at once and return an `AsyncResult`; the window keeps up to
//! 1,000 of them and waits on the oldest, which is the order ZooKeeper answers in.

use std::collections::VecDeque;
use std::time::Instant;

use zk_blocking::{AsyncResult, Client};

use crate::measure::{Latencies, Meter};
use crate::spec::*;
use crate::{check_len, fail, BenchResult};

/// Runs `workload` against `addr`; returns the lines to print.
///
/// Errors on any failed operation or a reply that is not what setup wrote.
pub fn run(workload: Workload, addr: &str) -> BenchResult<Vec<String>> {
    if workload == Workload::W6 {
        return w6(addr);
    }
    let client = connect(addr)?;
    let lines = match workload {
        Workload::W1 => w1(&client)?,
        Workload::W2 => w2(&client)?,
        Workload::W3 => w3(&client)?,
        Workload::W4 => w4(&client)?,
        Workload::W5 => w5(&client)?,
        Workload::W6 => unreachable!("handled above"),
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
