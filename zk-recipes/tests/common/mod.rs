//! What the recipe tests share: a context per (server, runtime), helpers that wait for events
//! (never for time), a runner that runs every scenario on tokio, async-std and smol against one
//! real ZooKeeper server, and a kazoo process driven over a line protocol.
//!
//! Scenarios return `Err(message)` instead of panicking, so each test reports every failed
//! (runtime, scenario) at once. `SUITE_FILTER=name` runs only scenarios whose name contains it.

#![allow(dead_code)]

use std::collections::HashMap;
use std::future::Future;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::pin::Pin;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use zk_client::{Client, ClientBuilder, Error, Runtime};
use zk_testkit::real::{Ensemble, EnsembleOptions, ZkVersion};

/// Upper bound for any one state change, event or reply: generous, the machine may be loaded.
pub const WAIT: Duration = Duration::from_secs(30);
/// Upper bound for one scenario.
pub const SCENARIO_WAIT: Duration = Duration::from_secs(240);

pub type Outcome = Result<(), String>;
pub type BoxFut<'a> = Pin<Box<dyn Future<Output = Outcome> + 'a>>;
/// A scenario gets the runtime context and the server (to kill, restart, pause it).
pub type Scenario = for<'a> fn(&'a Ctx, &'a mut Ensemble) -> BoxFut<'a>;

#[macro_export]
macro_rules! check {
    ($cond:expr, $($fmt:tt)*) => {
        if !$cond {
            return Err(format!("{} (line {})", format!($($fmt)*), line!()));
        }
    };
}

#[macro_export]
macro_rules! ok {
    ($e:expr) => {
        $e.map_err(|e| format!("{} failed: {e:?} (line {})", stringify!($e), line!()))?
    };
}

/// What a scenario gets.
pub struct Ctx {
    pub rt: Arc<dyn Runtime>,
    pub runtime_name: &'static str,
    pub connect: String,
    pub version: ZkVersion,
}

impl Ctx {
    /// The base path of one scenario on this runtime.
    pub fn base(&self, scenario: &str) -> String {
        format!("/recipes-{}/{}", self.runtime_name, scenario)
    }

    pub fn builder(&self) -> ClientBuilder {
        ClientBuilder::new(self.rt.clone(), &self.connect)
            .session_timeout(Duration::from_secs(6))
            .connect_timeout(WAIT)
            .close_timeout(WAIT)
    }

    pub async fn client(&self) -> Result<Client, String> {
        self.builder()
            .connect()
            .await
            .map_err(|e| format!("connect to {}: {e}", self.connect))
    }

    /// A client with a fresh, empty base path for `scenario`.
    pub async fn fresh(&self, scenario: &str) -> Result<(Client, String), String> {
        let c = self.client().await?;
        let base = self.base(scenario);
        match c.delete(&base).recursive().await {
            Ok(()) | Err(Error::NoNode { .. }) => {}
            Err(e) => return Err(format!("cleaning {base}: {e}")),
        }
        ok!(c.ensure_path(&base).await);
        Ok((c, base))
    }

    /// Waits for `fut` at most `d`.
    pub async fn within<T>(
        &self,
        d: Duration,
        fut: impl std::future::IntoFuture<Output = T>,
    ) -> Result<T, String> {
        let mut fut = std::pin::pin!(fut.into_future());
        let mut t = self.rt.timer(Instant::now() + d);
        std::future::poll_fn(|cx| {
            if let Poll::Ready(v) = fut.as_mut().poll(cx) {
                return Poll::Ready(Ok(v));
            }
            t.poll_fire(cx)
                .map(|()| Err(format!("timed out after {d:?}")))
        })
        .await
    }

    /// Waits until the children of `path` satisfy `done(children, cversion)`, re-reading on each
    /// child event (so it waits for changes, never for time).
    pub async fn children_until(
        &self,
        c: &Client,
        path: &str,
        done: impl Fn(&[String], i32) -> bool,
    ) -> Result<Vec<String>, String> {
        loop {
            let (children, stat, watch) = ok!(c.get_children(path).with_stat_and_watch().await);
            let children = children.to_vec();
            if done(&children, stat.cversion) {
                return Ok(children);
            }
            let fired = self.within(WAIT, watch).await.map_err(|e| {
                format!(
                    "{e} waiting for a change of {path}'s children {children:?} (line {})",
                    line!()
                )
            })?;
            ok!(fired);
        }
    }

    /// The parent's cversion now.
    pub async fn cversion(&self, c: &Client, path: &str) -> Result<i32, String> {
        Ok(ok!(c.exists(path).await)
            .ok_or_else(|| format!("{path} missing"))?
            .cversion)
    }
}

/// Polls `fut` once, with a waker that does nothing: enough to make it send its first request.
pub fn poll_once<F: Future + ?Sized>(fut: Pin<&mut F>) -> Poll<F::Output> {
    fut.poll(&mut Context::from_waker(Waker::noop()))
}

/// Runs `a` until `b` completes; `Err` if `a` completes first (it was expected to wait).
pub async fn while_pending<A: Future, B: Future>(
    a: Pin<&mut A>,
    b: B,
    what: &str,
) -> Result<B::Output, String>
where
    A::Output: std::fmt::Debug,
{
    let mut a = a;
    let mut b = std::pin::pin!(b);
    std::future::poll_fn(|cx| {
        if let Poll::Ready(v) = a.as_mut().poll(cx) {
            return Poll::Ready(Err(format!("{what}: finished early with {v:?}")));
        }
        b.as_mut().poll(cx).map(Ok)
    })
    .await
}

/// Runs every future to completion, concurrently on the calling task.
pub async fn join_all<'a, T>(futs: Vec<Pin<Box<dyn Future<Output = T> + 'a>>>) -> Vec<T> {
    let mut futs: Vec<Option<Pin<Box<dyn Future<Output = T> + 'a>>>> =
        futs.into_iter().map(Some).collect();
    let mut out: Vec<Option<T>> = futs.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (slot, res) in futs.iter_mut().zip(out.iter_mut()) {
            if let Some(f) = slot {
                match f.as_mut().poll(cx) {
                    Poll::Ready(v) => {
                        *res = Some(v);
                        *slot = None;
                    }
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    out.into_iter().flatten().collect()
}

/// Ends the session `id` from outside, as an expiry would look to its client: a second client
/// resumes it (the server drops the first client's connection) and closes it. The first client
/// reconnects on its own and may win the session back before the close is sent, so this tries
/// again until `witness` (an ephemeral node of that session) is gone, seen from `observer`.
pub async fn end_session(
    ctx: &Ctx,
    id: zk_client::SessionId,
    observer: &Client,
    witness: &str,
) -> Outcome {
    for _ in 0..20 {
        let thief = ctx
            .builder()
            .resume(id.clone())
            .renew_session_after_expiry(false)
            .close_timeout(Duration::from_secs(5))
            .connect()
            .await;
        match thief {
            Ok(t) => t.close().await,
            // Over already.
            Err(Error::SessionExpired) => {}
            Err(e) => return Err(format!("resume to end the session: {e}")),
        }
        // closeSession deletes the session's ephemerals before it is answered.
        if ok!(observer.exists(witness).await).is_none() {
            return Ok(());
        }
    }
    Err(format!(
        "the session {:#x} survived 20 attempts to end it",
        id.id
    ))
}

// ---- the runner ---------------------------------------------------------------------------

/// A standalone server of `version` whose sessions may last up to 30 s (the loss scenarios
/// restart it under a live session, which must survive the JVM's start-up).
pub fn standalone(version: ZkVersion) -> Ensemble {
    let mut opts = EnsembleOptions::standalone(version);
    opts.max_session_timeout_ms = Some(30_000);
    Ensemble::start(opts).unwrap_or_else(|e| panic!("starting ZooKeeper {version:?}: {e}"))
}

async fn run(
    ctx: &Ctx,
    ens: &mut Ensemble,
    scenarios: &[(&str, Scenario)],
    failures: &mut Vec<String>,
) {
    let filter = std::env::var("SUITE_FILTER").unwrap_or_default();
    for (name, scenario) in scenarios {
        if !name.contains(filter.as_str()) {
            continue;
        }
        let started = Instant::now();
        let outcome = match ctx.within(SCENARIO_WAIT, scenario(ctx, ens)).await {
            Ok(r) => r,
            Err(e) => Err(e),
        };
        eprintln!(
            "[{:?} {}] {name}: {} in {:?}",
            ctx.version,
            ctx.runtime_name,
            if outcome.is_ok() { "ok" } else { "FAILED" },
            started.elapsed()
        );
        if let Err(e) = outcome {
            failures.push(format!(
                "[{:?} {}] {name}: {e}",
                ctx.version, ctx.runtime_name
            ));
            // The next scenario needs a serving server.
            if !ens.nodes()[0].is_running() || ens.nodes()[0].is_paused() {
                let _ = ens.resume(0);
                let _ = ens.restart(0);
            }
        }
    }
}

/// Runs `scenarios` on tokio, async-std and smol against one standalone server of `version`,
/// and fails with every failed (runtime, scenario).
pub fn run_everywhere(version: ZkVersion, scenarios: &[(&str, Scenario)]) {
    let mut ens = standalone(version);
    let connect = ens.connect_string();
    let mut failures = Vec::new();
    let make = |rt: Arc<dyn Runtime>, name: &'static str| Ctx {
        rt,
        runtime_name: name,
        connect: connect.clone(),
        version,
    };

    let tokio_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let ctx = make(zk_tokio::TokioRuntime::default().shared(), "tokio");
    tokio_rt.block_on(run(&ctx, &mut ens, scenarios, &mut failures));
    drop(ctx);
    drop(tokio_rt);

    let ctx = make(zk_async_std::AsyncStdRuntime.shared(), "async-std");
    async_std::task::block_on(run(&ctx, &mut ens, scenarios, &mut failures));
    let ctx = make(zk_async_std::SmolRuntime.shared(), "smol");
    smol::block_on(run(&ctx, &mut ens, scenarios, &mut failures));

    assert!(
        failures.is_empty(),
        "{} scenario runs failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

// ---- kazoo ----------------------------------------------------------------------------------

/// The interpreter Debian's python3-kazoo is installed for.
const PYTHON: &str = "/usr/bin/python3";

#[derive(Default)]
struct Replies {
    by_seq: HashMap<u64, Result<Vec<String>, String>>,
    closed: bool,
    wakers: Vec<Waker>,
}

/// One running `tests/kazoo/lock_driver.py` with its own kazoo session.
pub struct Kazoo {
    child: Child,
    stdin: Option<ChildStdin>,
    replies: Arc<Mutex<Replies>>,
    log: Arc<Mutex<String>>,
    seq: u64,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Fails loudly unless `/usr/bin/python3` can import kazoo.
pub fn require_kazoo() {
    let out = Command::new(PYTHON)
        .args(["-c", "import kazoo.client"])
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run {PYTHON} ({e}): run scripts/setup-zookeeper (python3-kazoo)")
        });
    assert!(
        out.status.success(),
        "{PYTHON} cannot import kazoo: run scripts/setup-zookeeper (it installs python3-kazoo)\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Kazoo {
    /// Starts the driver with a kazoo session on `hosts`; waits for it to connect.
    pub async fn start(ctx: &Ctx) -> Result<Kazoo, String> {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/kazoo/lock_driver.py");
        let mut child = Command::new(PYTHON)
            .arg(script)
            .arg(&ctx.connect)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start {PYTHON}: {e} (run scripts/setup-zookeeper)"))?;
        let replies = Arc::new(Mutex::new(Replies::default()));
        let log = Arc::new(Mutex::new(String::new()));
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let stderr = child.stderr.take().ok_or("no stderr")?;
        {
            let (replies, log) = (replies.clone(), log.clone());
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    let fields: Vec<String> = line.split(' ').map(str::to_owned).collect();
                    let parsed = match (fields.first().map(String::as_str), fields.get(1)) {
                        (Some("r"), Some(seq)) => seq.parse::<u64>().ok(),
                        _ => None,
                    };
                    let Some(seq) = parsed else {
                        lock(&log).push_str(&format!("stdout: {line}\n"));
                        continue;
                    };
                    let result = match fields.get(2).map(String::as_str) {
                        Some("ok") => Ok(fields[3..].to_vec()),
                        _ => Err(fields[2..].join(" ")),
                    };
                    let mut g = lock(&replies);
                    g.by_seq.insert(seq, result);
                    for w in g.wakers.drain(..) {
                        w.wake();
                    }
                }
                let mut g = lock(&replies);
                g.closed = true;
                for w in g.wakers.drain(..) {
                    w.wake();
                }
            });
        }
        {
            let log = log.clone();
            std::thread::spawn(move || {
                let mut r = BufReader::new(stderr);
                let mut buf = [0u8; 4096];
                while let Ok(n) = r.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    lock(&log).push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            });
        }
        let mut k = Kazoo {
            child,
            stdin,
            replies,
            log,
            seq: 0,
        };
        // The driver says `r 0 ok started` once its session is up.
        ctx.within(WAIT, k.reply(0))
            .await??
            .map_err(|e| format!("the kazoo driver did not start: {e}"))?;
        k.seq = 1;
        Ok(k)
    }

    /// Sends a command; returns its sequence number (the reply comes later).
    pub fn send(&mut self, cmd: &str) -> Result<u64, String> {
        self.seq += 1;
        let seq = self.seq;
        let stdin = self.stdin.as_mut().ok_or("driver stdin closed")?;
        writeln!(stdin, "{seq} {cmd}")
            .and_then(|()| stdin.flush())
            .map_err(|e| format!("writing to kazoo: {e}"))?;
        Ok(seq)
    }

    /// Whether the reply to `seq` has come.
    pub fn has_reply(&self, seq: u64) -> bool {
        lock(&self.replies).by_seq.contains_key(&seq)
    }

    /// Waits for the reply to `seq`: `Ok(fields)` or `Err(exception and message)`.
    pub fn reply(
        &self,
        seq: u64,
    ) -> impl Future<Output = Result<Result<Vec<String>, String>, String>> + '_ {
        std::future::poll_fn(move |cx| {
            let mut g = lock(&self.replies);
            if let Some(r) = g.by_seq.remove(&seq) {
                return Poll::Ready(Ok(r));
            }
            if g.closed {
                return Poll::Ready(Err(format!(
                    "the kazoo driver exited; its log:\n{}",
                    lock(&self.log)
                )));
            }
            g.wakers.push(cx.waker().clone());
            Poll::Pending
        })
    }

    /// Sends `cmd` and waits for its reply, which must be ok.
    pub async fn call(&mut self, ctx: &Ctx, cmd: &str) -> Result<Vec<String>, String> {
        let seq = self.send(cmd)?;
        ctx.within(WAIT, self.reply(seq))
            .await??
            .map_err(|e| format!("kazoo {cmd}: {e}; log:\n{}", lock(&self.log)))
    }

    /// kazoo's log so far.
    pub fn log(&self) -> String {
        lock(&self.log).clone()
    }
}

impl Drop for Kazoo {
    fn drop(&mut self) {
        // Closing stdin ends the driver (its session closes); kill it if it does not go.
        self.stdin.take();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
