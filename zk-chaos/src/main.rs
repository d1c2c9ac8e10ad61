//! `zk-chaos`: a real-ensemble chaos run. It starts a 3-node ZooKeeper ensemble (3.8 or 3.9) on
//! loopback with zk-testkit's harness, puts a proxy of its own between the clients and the
//! servers, and runs several sessions on every runtime (tokio, async-std on its pool and on the
//! thread of its `block_on`, smol, smol on an executor of its own, blocking) doing unique
//! writes (one at a time and in pipelined bursts), compare-and-set increments, ephemerals and
//! watches, each request with a timeout, while a nemesis kills, freezes and restarts servers and
//! cuts, isolates or corrupts client connections. Then it heals everything and checks:
//!
//! - every acknowledged write is present with its value, and none applied twice (versions);
//! - each counter holds its acknowledged increments, plus at most the unknown ones;
//! - ephemerals of ended sessions are gone, those of living sessions are there;
//! - watches: a one-shot watch fires for the first change after it was armed, a persistent watch
//!   reports every change (or a resync), a DataWatch converges, events per path in zxid order;
//! - a client fed garbage drops that connection;
//! - every request resolved within its timeout plus the reconnect time;
//! - the process's resident memory grew less than 10 % after the warm-up.
//!
//! It prints a summary and exits 1 naming every violation, 2 when the run itself could not be
//! set up. `zk-chaos --help` lists the options.

#![forbid(unsafe_code)]

mod conn;
mod nemesis;
mod proxy;
mod rng;
mod worker;

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use zk_client::{Client, ClientBuilder, Error};
use zk_testkit::real::{Ensemble, EnsembleOptions, ZkVersion};

use crate::conn::{Kind, Settings};
use crate::nemesis::{Faults, Nemesis};
use crate::proxy::Proxy;
use crate::rng::Rng;
use crate::worker::{counter_path, key_path, CounterBook, Report, Shared, Worker, COUNTERS, KEYS};

/// Locks a mutex, shrugging off poisoning (a panicked holder left plain counters behind).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

const USAGE: &str = "usage: zk-chaos [--duration SECS] [--version 3.8|3.9] [--seed N] [--clients N]
  --duration SECS   how long the nemesis runs (default 60)
  --version V       ZooKeeper release of the ensemble: 3.8 or 3.9 (default 3.9)
  --seed N          seed of every choice (default: from the clock; printed either way)
  --clients N       sessions per runtime (default 2; 6 runtimes)
  --no-riders       never arm one-shot watches on paths the session watches persistently
                    (by default it does: riders once lost changes made while disconnected,
                    RELIABILITY.md)
  --break-drop-ack  self-test: forget one acknowledged write (the check must fail)
  --break-unknown-as-acked
                    self-test: count unknown increments as acknowledged (the check must fail)
  --break-drop-event
                    self-test: ignore one persistent-watch event (the check must fail)";

struct Options {
    duration: Duration,
    version: ZkVersion,
    seed: u64,
    clients: usize,
    break_drop_ack: bool,
    break_unknown_as_acked: bool,
    break_drop_event: bool,
    riders: bool,
}

fn parse_args() -> Result<Options, String> {
    let mut o = Options {
        duration: Duration::from_secs(60),
        version: ZkVersion::V3_9,
        seed: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64),
        clients: 2,
        break_drop_ack: false,
        break_unknown_as_acked: false,
        break_drop_event: false,
        riders: true,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match a.as_str() {
            "--duration" => {
                let v = value("--duration")?;
                let secs: u64 = v
                    .parse()
                    .map_err(|_| format!("--duration {v}: not a number of seconds"))?;
                o.duration = Duration::from_secs(secs);
            }
            "--version" => {
                o.version = match value("--version")?.as_str() {
                    "3.8" => ZkVersion::V3_8,
                    "3.9" => ZkVersion::V3_9,
                    v => return Err(format!("--version {v}: 3.8 or 3.9")),
                }
            }
            "--seed" => {
                let v = value("--seed")?;
                o.seed = v.parse().map_err(|_| format!("--seed {v}: not a number"))?;
            }
            "--clients" => {
                let v = value("--clients")?;
                o.clients = v
                    .parse()
                    .map_err(|_| format!("--clients {v}: not a number"))?;
                if o.clients == 0 {
                    return Err("--clients must be at least 1".into());
                }
            }
            "--break-drop-ack" => o.break_drop_ack = true,
            "--no-riders" => o.riders = false,
            "--break-drop-event" => o.break_drop_event = true,
            "--break-unknown-as-acked" => o.break_unknown_as_acked = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(o)
}

/// A number from /proc/self/status (`VmRSS` is in KiB).
fn proc_status(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// VmRSS of this process in KiB.
fn rss_kib() -> Option<u64> {
    proc_status("VmRSS:")
}

fn main() {
    let opts = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("zk-chaos: {e}\n{USAGE}");
            std::process::exit(2);
        }
    };
    match run(&opts) {
        Ok(violations) if violations.is_empty() => {
            println!("\nzk-chaos: PASS (seed {})", opts.seed);
        }
        Ok(violations) => {
            println!(
                "\nzk-chaos: FAIL (seed {}): {} violation(s):",
                opts.seed,
                violations.len()
            );
            for (rule, detail) in &violations {
                println!("  [{rule}] {detail}");
            }
            std::process::exit(1);
        }
        Err(e) => {
            eprintln!("zk-chaos: {e} (seed {})", opts.seed);
            std::process::exit(2);
        }
    }
}

type Violations = Vec<(&'static str, String)>;

/// Slack for the caller's own scheduling delay in `request-within-timeout`.
const SCHEDULING_ALLOWANCE: Duration = Duration::from_secs(1);

/// Runs shorter than this report memory but do not check it: over half a minute the process
/// grows by the allocator's warm-up alone (8-9 % in 30-40 s runs), which says nothing of leaks.
const MEMORY_CHECK_FROM: Duration = Duration::from_secs(300);

fn run(opts: &Options) -> Result<Violations, String> {
    let settings = Settings {
        session_timeout: Duration::from_secs(8),
        request_timeout: Duration::from_secs(4),
    };
    println!(
        "zk-chaos: ZooKeeper {}, {} s, seed {}, {} sessions per runtime ({} in all); session timeout {:?}, request timeout {:?}",
        opts.version.release(),
        opts.duration.as_secs(),
        opts.seed,
        opts.clients,
        opts.clients * Kind::ALL.len(),
        settings.session_timeout,
        settings.request_timeout
    );
    let mut rng = Rng::new(opts.seed);
    let mut eo = EnsembleOptions::quorum(opts.version, 3);
    // The harness's 200 ms tick caps sessions at 4 s; the clients ask for 8.
    eo.max_session_timeout_ms = Some(30_000);
    let ens = Ensemble::start(eo).map_err(|e| format!("starting the ensemble: {e}"))?;
    let ports: Vec<u16> = ens.nodes().iter().map(|n| n.port()).collect();
    let direct = ens.connect_string();
    let total = opts.clients * Kind::ALL.len();

    let proxy_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("zk-chaos-proxy")
        .enable_all()
        .build()
        .map_err(|e| format!("proxy runtime: {e}"))?;
    let proxy = Proxy::start(&proxy_rt, total, &ports, rng.next_u64())
        .map_err(|e| format!("starting the proxy: {e}"))?;
    let client_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("zk-chaos-tokio")
        .enable_all()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))?;
    let tokio_shared = zk_tokio::TokioRuntime::with_handle(client_rt.handle().clone()).shared();

    // The checker: straight to the servers, used before and after the chaos only.
    let checker = client_rt
        .block_on(
            ClientBuilder::new(tokio_shared.clone(), &direct)
                .session_timeout(settings.session_timeout)
                .connect_timeout(Duration::from_secs(60))
                .connect(),
        )
        .map_err(|e| format!("checker: {e}"))?;
    client_rt
        .block_on(setup(&checker, total))
        .map_err(|e| format!("creating the nodes: {e}"))?;

    let shared = Arc::new(Shared {
        stop: AtomicBool::new(false),
        quiet: AtomicUsize::new(0),
        check: AtomicBool::new(false),
        counters: (0..COUNTERS)
            .map(|_| Mutex::new(CounterBook::default()))
            .collect(),
        settings,
        event_zxids: opts.version >= ZkVersion::V3_9,
        max_request_us: AtomicU64::new(0),
        max_reconnect_us: AtomicU64::new(0),
        break_drop_ack: opts.break_drop_ack,
        break_unknown_as_acked: opts.break_unknown_as_acked,
        break_drop_event: opts.break_drop_event,
        riders: opts.riders,
    });

    // Workers: tokio tasks, async-std tasks (and threads in async-std's `block_on`), smol tasks
    // (on smol's global executor, and on an executor of this program's own, run by one thread
    // until this function returns), and threads for the blocking client.
    let smol_ex = Arc::new(smol::Executor::new());
    let (_smol_ex_stop, smol_ex_stopped) = smol::channel::bounded::<()>(1);
    {
        let ex = smol_ex.clone();
        std::thread::Builder::new()
            .name("zk-chaos-smol-executor".into())
            .spawn(move || smol::block_on(ex.run(smol_ex_stopped.recv())))
            .map_err(|e| format!("the smol executor's thread: {e}"))?;
    }
    let mut handles: Vec<Box<dyn FnOnce() -> Report + Send>> = Vec::new();
    for (k, kind) in Kind::ALL.into_iter().enumerate() {
        for i in 0..opts.clients {
            let id = k * opts.clients + i;
            let rt = match kind {
                Kind::Tokio => Some(tokio_shared.clone()),
                Kind::AsyncStd => Some(zk_async_std::AsyncStdRuntime::default().shared()),
                Kind::AsyncStdLocal => Some(zk_async_std::AsyncStdRuntime::local().shared()),
                Kind::Smol => Some(zk_async_std::SmolRuntime::default().shared()),
                Kind::SmolExecutor => Some(zk_async_std::SmolRuntime::on(&smol_ex).shared()),
                Kind::Blocking => None,
            };
            let w = Worker::new(
                id,
                kind,
                rt,
                proxy.connect_string(id).to_owned(),
                rng.fork(id as u64),
                shared.clone(),
                i,
            );
            let h: Box<dyn FnOnce() -> Report + Send> = match kind {
                Kind::Tokio => {
                    let task = client_rt.spawn(w.run());
                    let handle = client_rt.handle().clone();
                    Box::new(move || {
                        handle
                            .block_on(task)
                            .unwrap_or_else(|e| panicked(format!("tokio worker: {e}")))
                    })
                }
                Kind::AsyncStd => {
                    let task = async_std::task::spawn(w.run());
                    Box::new(move || async_std::task::block_on(task))
                }
                // A thread of its own in async-std's `block_on`, as `#[async_std::main]` runs
                // `main`: the worker's client runs its driver there.
                Kind::AsyncStdLocal => {
                    worker_thread(kind, i, move || async_std::task::block_on(w.run()))?
                }
                Kind::Smol => {
                    let task = smol::spawn(w.run());
                    Box::new(move || smol::block_on(task))
                }
                Kind::SmolExecutor => {
                    let task = smol_ex.spawn(w.run());
                    Box::new(move || smol::block_on(task))
                }
                Kind::Blocking => {
                    worker_thread(kind, i, move || futures_lite::future::block_on(w.run()))?
                }
            };
            handles.push(h);
        }
    }

    // The nemesis on a thread of its own: the harness's calls block (a restart waits seconds).
    let nemesis_stop = Arc::new(AtomicBool::new(false));
    let mut nemesis = Nemesis::new(
        ens,
        proxy.clone(),
        rng.fork(0xBAD),
        total,
        settings.session_timeout,
    );
    let nstop = nemesis_stop.clone();
    let nemesis_thread = std::thread::Builder::new()
        .name("zk-chaos-nemesis".into())
        .spawn(move || {
            nemesis.run(&nstop);
            nemesis
        })
        .map_err(|e| format!("the nemesis thread: {e}"))?;

    // Warm-up: a fifth of the run (at least 10 s, at most two minutes), then the memory
    // baseline. glibc's per-thread arenas keep filling for minutes (with MALLOC_ARENA_MAX=1 the
    // same run levels off within a minute), so only a long run tells a leak from that.
    let started = Instant::now();
    let warmup = (opts.duration / 5).clamp(Duration::from_secs(10), Duration::from_secs(120));
    // Resident memory every tenth of the run (at least every 5 s), so that a leak (steady
    // growth) can be told from an allocator settling (a step, then flat).
    let every = (opts.duration / 10).max(Duration::from_secs(5));
    let mut rss_series = Vec::new();
    let mut rss_warm = None;
    let mut next_sample = started + every;
    loop {
        let now = Instant::now();
        let end = started + opts.duration;
        if rss_warm.is_none() && now >= started + warmup {
            rss_warm = rss_kib();
        }
        if now >= next_sample {
            rss_series.push((rss_kib().unwrap_or(0), proc_status("Threads:").unwrap_or(0)));
            next_sample += every;
        }
        if now >= end {
            break;
        }
        let warm_at = if rss_warm.is_none() {
            started + warmup
        } else {
            end
        };
        std::thread::sleep(
            next_sample
                .min(warm_at)
                .min(end)
                .saturating_duration_since(now),
        );
    }
    let rss_end = rss_kib();

    println!("zk-chaos: stopping the workload and the nemesis; healing");
    shared.stop.store(true, Ordering::SeqCst);
    nemesis_stop.store(true, Ordering::SeqCst);
    let mut violations: Violations = Vec::new();
    let nemesis = nemesis_thread
        .join()
        .map_err(|_| "the nemesis panicked".to_owned())?;
    let faults = nemesis.faults.clone();
    // Every worker stops within one request (each has a 4 s timeout); give a generous bound, a
    // worker stuck past it is a request that never resolved.
    let quiet_deadline = Instant::now() + settings.request_timeout * 3 + Duration::from_secs(30);
    while shared.quiet.load(Ordering::SeqCst) < total {
        if Instant::now() > quiet_deadline {
            violations.push((
                "request-resolves",
                format!(
                    "{} of {total} workers still inside a request {:?} after the stop",
                    total - shared.quiet.load(Ordering::SeqCst),
                    settings.request_timeout * 3 + Duration::from_secs(30)
                ),
            ));
            return Ok(violations);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    shared.check.store(true, Ordering::SeqCst);
    // A watchdog: a final phase that hangs is a failure, not a hung CI job.
    std::thread::spawn(|| {
        std::thread::sleep(Duration::from_secs(300));
        eprintln!("zk-chaos: the final checks did not finish within 300 s");
        std::process::exit(1);
    });
    let reports: Vec<Report> = handles.into_iter().map(|h| h()).collect();

    let checks = client_rt.block_on(final_checks(&checker, &shared, &reports, settings));
    client_rt.block_on(checker.close());

    // ---- the summary ----
    let sum = |f: fn(&Report) -> u64| reports.iter().map(f).sum::<u64>();
    println!("\n== operations");
    for r in &reports {
        println!(
            "  {:<18} ok {:>7}  unknown {:>5}  failed {:>5}  pipelined bursts {:>4}  sessions {:>3}  expiries {:>2}  one-shot fired {:>4}  persistent events {:>5}  resyncs {:>3}",
            r.name, r.ops_ok, r.ops_unknown, r.ops_failed, r.bursts, r.sessions, r.expiries, r.watches_fired, r.persistent_events, r.resyncs
        );
    }
    let ops = sum(|r| r.ops_ok + r.ops_unknown + r.ops_failed);
    println!(
        "  total: {ops} requests ({:.0}/s), {} ok, {} unknown outcome, {} failed",
        ops as f64 / opts.duration.as_secs_f64().max(1.0),
        sum(|r| r.ops_ok),
        sum(|r| r.ops_unknown),
        sum(|r| r.ops_failed)
    );
    print_faults(&faults, &proxy);
    for c in 0..COUNTERS {
        let b = *lock(&shared.counters[c]);
        println!(
            "  counter {c}: {} acknowledged, {} unknown",
            b.acked, b.unknown
        );
    }

    println!("\n== checks");
    let mut report_check = |name: &'static str, found: Vec<String>| {
        if found.is_empty() {
            println!("  ok    {name}");
        } else {
            println!("  FAIL  {name}: {} violation(s)", found.len());
            violations.extend(found.into_iter().map(|f| (name, f)));
        }
    };
    for (name, found) in checks {
        report_check(name, found);
    }
    let by_rule = |rule: &str| -> Vec<String> {
        reports
            .iter()
            .flat_map(|r| {
                r.violations
                    .iter()
                    .filter(|(n, _)| *n == rule)
                    .map(move |(_, d)| format!("{}: {d}", r.name))
            })
            .collect()
    };
    for rule in [
        "write-once",
        "acked-write-present",
        "counter",
        "ephemeral",
        "ephemeral-present",
        "one-shot-watch",
        "persistent-watch",
        "datawatch",
        "datawatch-converges",
        "datawatch-order",
        "final",
    ] {
        report_check(rule, by_rule(rule));
    }
    let kept = proxy.stats().garbage_kept.load(Ordering::Relaxed);
    report_check(
        "garbage-drops-connection",
        if kept == 0 {
            Vec::new()
        } else {
            vec![format!("{kept} connection(s) kept open 15 s after garbage")]
        },
    );
    let max_req = Duration::from_micros(shared.max_request_us.load(Ordering::Relaxed));
    let max_rec = Duration::from_micros(shared.max_reconnect_us.load(Ordering::Relaxed));
    // Plus a second for the worker's own scheduling: the time is measured by the caller, which
    // on a loaded machine may run a while after its request resolved (0.15 s over in a 10-minute
    // run at load 19). A request the client forgot to time out overshoots by far more.
    let bound = settings.request_timeout + max_rec + SCHEDULING_ALLOWANCE;
    println!(
        "        slowest request {max_req:.2?}; request timeout {:?}; longest reconnect {max_rec:.2?}; bound {bound:.2?}",
        settings.request_timeout
    );
    report_check(
        "request-within-timeout",
        if max_req <= bound {
            Vec::new()
        } else {
            vec![format!("a request took {max_req:.2?}, over {bound:.2?}")]
        },
    );
    match (rss_warm, rss_end) {
        (Some(a), Some(b)) => {
            let growth = (b as f64 - a as f64) / a as f64 * 100.0;
            println!("        resident memory: {a} KiB after warm-up ({warmup:?}), {b} KiB at the end: {growth:+.1} %");
            println!("        every {every:?}, (resident KiB, threads): {rss_series:?}");
            if opts.duration < MEMORY_CHECK_FROM {
                println!(
                    "  --    memory: not checked, the run is shorter than {MEMORY_CHECK_FROM:?} (allocator warm-up would pass for growth)"
                );
            } else if growth < 10.0 {
                report_check("memory", Vec::new());
            } else {
                report_check(
                    "memory",
                    vec![format!(
                        "VmRSS grew {growth:.1} % after the warm-up ({a} -> {b} KiB)"
                    )],
                );
            }
        }
        _ => report_check(
            "memory",
            vec!["cannot read VmRSS from /proc/self/status".into()],
        ),
    }
    report_check("harness", faults.errors.clone());
    drop(proxy_rt);
    Ok(violations)
}

/// Runs worker `i` of `kind` on a thread of its own (`zk-chaos-<kind>-<i>`); the handle joins
/// it, a panic in it being the worker's report.
///
/// Errors when the thread cannot be started.
fn worker_thread(
    kind: Kind,
    i: usize,
    work: impl FnOnce() -> Report + Send + 'static,
) -> Result<Box<dyn FnOnce() -> Report + Send>, String> {
    let t = std::thread::Builder::new()
        .name(format!("zk-chaos-{}-{i}", kind.name()))
        .spawn(work)
        .map_err(|e| format!("a worker thread: {e}"))?;
    Ok(Box::new(move || {
        t.join()
            .unwrap_or_else(|_| panicked(format!("{} worker", kind.name())))
    }))
}

fn panicked(what: String) -> Report {
    Report {
        name: what.clone(),
        violations: vec![("final", format!("{what} panicked"))],
        ..Report::default()
    }
}

fn print_faults(f: &Faults, proxy: &Proxy) {
    let s = proxy.stats();
    println!("\n== faults");
    println!(
        "  kill -9 {}, SIGSTOP/SIGCONT {}, restarts {}, isolations {}, cuts of one client {}, of all {} ({} connections cut)",
        f.kills, f.pauses, f.restarts, f.isolations, f.cuts_one, f.cuts_all, f.connections_cut
    );
    println!(
        "  garbage {} requested: {} garbage frames and {} truncated frames written; after garbage, {} connections dropped by the client, {} kept; {} proxied connections",
        f.garbage,
        s.garbage_sent.load(Ordering::Relaxed),
        s.truncated.load(Ordering::Relaxed),
        s.garbage_rejected.load(Ordering::Relaxed),
        s.garbage_kept.load(Ordering::Relaxed),
        s.accepted.load(Ordering::Relaxed)
    );
}

/// Creates the tree: counters at 0, every worker's keys at sequence 0, the ephemerals' parent.
async fn setup(c: &Client, workers: usize) -> Result<(), Error> {
    for p in ["/chaos", "/chaos/keys", "/chaos/counters", "/chaos/eph"] {
        c.create(p, "").await?;
    }
    for i in 0..COUNTERS {
        c.create(&counter_path(i), "0").await?;
    }
    for w in 0..workers {
        for k in 0..KEYS {
            c.create(&key_path(w, k), format!("w{w}-k{k}-0")).await?;
        }
    }
    Ok(())
}

/// The checks made from outside, after every worker closed its session.
async fn final_checks(
    c: &Client,
    shared: &Shared,
    reports: &[Report],
    settings: Settings,
) -> Vec<(&'static str, Vec<String>)> {
    let mut out = Vec::new();
    // The checker's server may lag the leader: sync first, so it reads the latest state.
    if let Err(e) = c.sync("/chaos").await {
        out.push(("checker", vec![format!("sync: {e}")]));
        return out;
    }
    let mut counters = Vec::new();
    for i in 0..COUNTERS {
        let b = *lock(&shared.counters[i]);
        match c.get_data(&counter_path(i)).await {
            Ok((data, _)) => {
                let v = std::str::from_utf8(&data)
                    .ok()
                    .and_then(|t| t.parse::<i64>().ok());
                match v {
                    Some(v) if v >= b.acked && v <= b.acked + b.unknown => {}
                    other => counters.push(format!(
                        "{}: value {other:?}, {} acknowledged increments, {} unknown",
                        counter_path(i),
                        b.acked,
                        b.unknown
                    )),
                }
            }
            Err(e) => counters.push(format!("{}: {e}", counter_path(i))),
        }
    }
    out.push(("counter-equals-acked-increments", counters));
    let mut keys = Vec::new();
    for r in reports {
        for book in &r.keys {
            match c.get_data(&book.path).await {
                Ok((data, stat)) => {
                    if let Some(d) = worker::check_key(book, &data, stat.version) {
                        keys.push(d);
                    }
                }
                Err(e) => keys.push(format!("{}: {e}", book.path)),
            }
        }
    }
    out.push(("acked-writes-present-once", keys));
    // Every worker's session is closed now (or expired earlier): no ephemeral may remain. A
    // close that did not reach a server leaves its session to expire, so allow that long.
    let deadline = Instant::now() + settings.session_timeout * 2 + Duration::from_secs(10);
    let mut left = Vec::new();
    loop {
        left.clear();
        match c.get_children("/chaos/eph").await {
            Ok(names) => {
                for n in names.iter() {
                    let p = format!("/chaos/eph/{n}");
                    let owner = c.exists(&p).await.ok().flatten().map(|s| s.ephemeral_owner);
                    left.push(format!("{p} (owner {owner:#x?})"));
                }
            }
            Err(e) => left.push(format!("/chaos/eph: {e}")),
        }
        if left.is_empty() || Instant::now() > deadline {
            break;
        }
        c.sleep(Duration::from_millis(500)).await;
    }
    out.push(("ended-sessions-ephemerals-gone", left));
    out
}
