//! Resident memory (`zk-bench-mem`): the RSS of a client process before it connects, with an
//! idle session, and holding 100,000 watches; and (`--soak`) over a million requests.
//!
//! The watches are 50,000 data watches (getData with a watch on each child of /zkb/wide) and
//! 50,000 exist watches (exists with a watch on /zkb/wide/x00000 … x49999, which do not exist):
//! 100,000 distinct server watches without creating a node. The process keeps every handle the
//! client gives for them, as a program that means to wait on them would.

use crate::pipeline::windowed;
use crate::spec::*;
use crate::{fail, BenchResult};
use std::sync::Arc;

/// Watches of each kind; twice this many in all.
pub const WATCHES_PER_KIND: usize = 50_000;

/// VmRSS of this process in KiB, from /proc/self/status.
pub fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// The three readings, in KiB.
#[derive(Debug, Clone, Copy)]
pub struct Mem {
    /// Before connecting (the program and its runtime).
    pub baseline: u64,
    /// With a connected, idle session.
    pub idle: u64,
    /// Holding the watches.
    pub watches: u64,
}

impl Mem {
    /// The `MEM` line: `MEM <column> <baseline_kib> <idle_kib> <watches_kib> <watch_count>`.
    pub fn line(&self, column: &str) -> String {
        format!(
            "MEM {column} {} {} {} {}",
            self.baseline,
            self.idle,
            self.watches,
            2 * WATCHES_PER_KIND
        )
    }
}

fn child(i: usize) -> String {
    format!("{WIDE}/{}", wide_child(i))
}

fn missing(i: usize) -> String {
    format!("{WIDE}/x{i:05}")
}

fn expect_absent<T>(stat: Option<T>) -> BenchResult<()> {
    match stat {
        None => Ok(()),
        Some(_) => Err(fail("a node that should not exist does")),
    }
}

/// This client's async API on runtime `rt`.
///
/// Errors on any failed operation.
pub async fn ours(rt: Arc<dyn zk_client::Runtime>, addr: &str) -> BenchResult<Mem> {
    let baseline = rss_kib();
    let client = crate::ours::connect(rt, addr).await?;
    let idle = rss_kib();
    let mut held = Vec::with_capacity(2 * WATCHES_PER_KIND);
    windowed(
        WATCHES_PER_KIND,
        WINDOW,
        |i| client.get_data(&child(i)).watch(),
        |_, (_, _, w)| {
            held.push(w);
            Ok(())
        },
    )
    .await?;
    windowed(
        WATCHES_PER_KIND,
        WINDOW,
        |i| client.exists(&missing(i)).watch(),
        |_, (stat, w)| {
            held.push(w);
            expect_absent(stat)
        },
    )
    .await?;
    let watches = rss_kib();
    drop(held);
    client.close().await;
    Ok(Mem {
        baseline,
        idle,
        watches,
    })
}

/// zk-blocking.
///
/// Errors on any failed operation.
pub fn blocking(addr: &str) -> BenchResult<Mem> {
    let baseline = rss_kib();
    let client = crate::blocking::connect(addr)?;
    let idle = rss_kib();
    let mut held = Vec::with_capacity(2 * WATCHES_PER_KIND);
    for i in 0..WATCHES_PER_KIND {
        held.push(client.get_data(&child(i)).watch().run()?.2);
    }
    for i in 0..WATCHES_PER_KIND {
        let (stat, w) = client.exists(&missing(i)).watch().run()?;
        held.push(w);
        expect_absent(stat)?;
    }
    let watches = rss_kib();
    drop(held);
    client.close();
    Ok(Mem {
        baseline,
        idle,
        watches,
    })
}

/// The peer crate; call inside a tokio runtime.
///
/// Errors on any failed operation.
pub async fn peer(addr: &str) -> BenchResult<Mem> {
    let baseline = rss_kib();
    let client = crate::peer::connect(addr).await?;
    let idle = rss_kib();
    let mut held = Vec::with_capacity(2 * WATCHES_PER_KIND);
    windowed(
        WATCHES_PER_KIND,
        WINDOW,
        |i| Box::pin(client.get_and_watch_data(&child(i))),
        |_, (_, _, w)| {
            held.push(w);
            Ok(())
        },
    )
    .await?;
    windowed(
        WATCHES_PER_KIND,
        WINDOW,
        |i| Box::pin(client.check_and_watch_stat(&missing(i))),
        |_, (stat, w)| {
            held.push(w);
            expect_absent(stat)
        },
    )
    .await?;
    let watches = rss_kib();
    drop(held);
    crate::peer::close(client).await?;
    Ok(Mem {
        baseline,
        idle,
        watches,
    })
}

/// Requests of the soak, and the points where the RSS is read.
pub const SOAK_REQUESTS: usize = 1_000_000;
const SOAK_WARM_UP: usize = 100_000;

/// RSS over a long run of requests, in KiB: after a warm-up, half-way and at the end. A client
/// that keeps anything per request (a reply slot, a waker, a buffer that only grows) shows it
/// as growth between the three.
#[derive(Debug, Clone, Copy)]
pub struct Soak {
    /// After the first 100,000 requests.
    pub warm: u64,
    /// After half of them.
    pub mid: u64,
    /// After all of them.
    pub end: u64,
}

impl Soak {
    /// The `SOAK` line: `SOAK <column> <warm_kib> <mid_kib> <end_kib> <requests>`.
    pub fn line(&self, column: &str) -> String {
        format!(
            "SOAK {column} {} {} {} {SOAK_REQUESTS}",
            self.warm, self.mid, self.end
        )
    }
}

/// A million pipelined reads of the small node (W2's request) on this client's async API.
///
/// Errors on any failed operation.
pub async fn soak(rt: Arc<dyn zk_client::Runtime>, addr: &str) -> BenchResult<Soak> {
    let client = crate::ours::connect(rt, addr).await?;
    let reads = |n: usize| {
        windowed(
            n,
            WINDOW,
            |_| std::future::IntoFuture::into_future(client.get_data(SMALL)),
            |_, _| Ok(()),
        )
    };
    reads(SOAK_WARM_UP).await?;
    let warm = rss_kib();
    reads(SOAK_REQUESTS / 2 - SOAK_WARM_UP).await?;
    let mid = rss_kib();
    reads(SOAK_REQUESTS / 2).await?;
    let end = rss_kib();
    client.close().await;
    Ok(Soak { warm, mid, end })
}
