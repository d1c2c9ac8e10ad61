//! What the recipe tests share: a context per (server, runtime), helpers that wait for events
//! (never for time), a runner that runs every scenario on tokio, async-std and smol against one
//! real ZooKeeper server, and a peer process (kazoo, or Apache Curator) driven over a line
//! protocol.
//!
//! Scenarios return `Err(message)` instead of panicking, so each test reports every failed
//! (runtime, scenario) at once. `SUITE_FILTER=name` runs only scenarios whose name contains it.

#![allow(dead_code)]

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
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

/// Ends `victim`'s session from outside, as an expiry looks to its client: the victim is cut
/// off from the server (its hosts replaced by a port nobody listens on), a second client resumes
/// the session and closes it, and the victim gets its hosts back, to find the session expired.
/// The cut comes first because a victim reconnecting while its session is taken over and closed
/// can land on a connection the server keeps open but no longer answers (pings to a closed
/// session are dropped), which the victim leaves only at its read timeout: two thirds of its
/// session timeout, in about half the runs when it raced; cut off, it cannot win the session
/// back either, so one close ends it. `witness` (an ephemeral node of that session) must be
/// gone afterwards, seen from `observer`.
pub async fn end_session(ctx: &Ctx, victim: &Client, observer: &Client, witness: &str) -> Outcome {
    let id = victim.client_id().ok_or("the victim has no session")?;
    ok!(victim.set_hosts("127.0.0.1:1"));
    let ended = async {
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
        check!(
            ok!(observer.exists(witness).await).is_none(),
            "the session {:#x} outlived its close: {witness} is still there",
            id.id
        );
        Ok(())
    }
    .await;
    // The hosts come back whatever happened, so a failed scenario's client is not left dialling
    // a closed port.
    let restored = victim
        .set_hosts(&ctx.connect)
        .map_err(|e| format!("giving the victim its hosts back: {e}"));
    ended.and(restored)
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

    let ctx = make(
        zk_async_std::AsyncStdRuntime::default().shared(),
        "async-std",
    );
    async_std::task::block_on(run(&ctx, &mut ens, scenarios, &mut failures));
    let ctx = make(zk_async_std::SmolRuntime::default().shared(), "smol");
    smol::block_on(run(&ctx, &mut ens, scenarios, &mut failures));

    assert!(
        failures.is_empty(),
        "{} scenario runs failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

// ---- peers: kazoo and Curator ---------------------------------------------------------------

/// The interpreter Debian's python3-kazoo is installed for.
const PYTHON: &str = "/usr/bin/python3";

/// The Curator release the interop tests run (scripts/setup-zookeeper fetches it).
pub const CURATOR_VERSION: &str = "5.9.0";

#[derive(Default)]
struct Replies {
    by_seq: HashMap<u64, Result<Vec<String>, String>>,
    /// Unsolicited `e <fields...>` lines (e.g. a leader latch's listener), in order.
    events: VecDeque<Vec<String>>,
    closed: bool,
    wakers: Vec<Waker>,
}

/// One running peer process with its own ZooKeeper session, driven one command per line:
/// `tests/kazoo/lock_driver.py` (kazoo) or `tests/curator/CuratorPeer.java` (Curator). Both
/// answer `r <seq> ok <fields...>` or `r <seq> err <exception> <message>`, and may emit events
/// as `e <fields...>`.
pub struct Peer {
    child: Child,
    stdin: Option<ChildStdin>,
    replies: Arc<Mutex<Replies>>,
    log: Arc<Mutex<String>>,
    seq: u64,
    label: &'static str,
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

/// `${ZK_RS_CACHE:-$HOME/.cache/zk-rs}`, the rule of scripts/setup-zookeeper.
fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("ZK_RS_CACHE").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| panic!("neither ZK_RS_CACHE nor HOME is set: no Curator cache"));
    PathBuf::from(home).join(".cache").join("zk-rs")
}

/// `$JAVA_HOME/bin/<tool>` if it exists, else `<tool>` from PATH.
fn java_tool(tool: &str) -> PathBuf {
    if let Some(home) = std::env::var_os("JAVA_HOME").filter(|h| !h.is_empty()) {
        let p = Path::new(&home).join("bin").join(tool);
        if p.is_file() {
            return p;
        }
    }
    PathBuf::from(tool)
}

/// The classpath of the Curator peer: its compiled class, then Curator's jars.
fn curator_classpath() -> &'static str {
    static CP: OnceLock<String> = OnceLock::new();
    CP.get_or_init(|| {
        let lib = cache_dir().join(format!("curator-{CURATOR_VERSION}/lib"));
        let jar = lib.join(format!("curator-recipes-{CURATOR_VERSION}.jar"));
        assert!(
            jar.is_file(),
            "{} is missing: run scripts/setup-zookeeper (it fetches Curator {CURATOR_VERSION})",
            jar.display()
        );
        let source =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/curator/CuratorPeer.java");
        // Compiled once per test binary, so the class always matches the source.
        let classes = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("curator-peer");
        let _ = std::fs::remove_dir_all(&classes);
        let jars = format!("{}/*", lib.display());
        let javac = java_tool("javac");
        let out = Command::new(&javac)
            .arg("-d")
            .arg(&classes)
            .args(["-cp", &jars])
            .arg(&source)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e} (a JDK 17 is needed)", javac.display()));
        assert!(
            out.status.success(),
            "javac {} failed:\n{}{}",
            source.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        format!("{}:{jars}", classes.display())
    })
}

/// Fails loudly unless Curator's jars are installed and the peer compiles.
pub fn require_curator() {
    curator_classpath();
}

impl Peer {
    /// Starts `tests/kazoo/lock_driver.py` with a kazoo session on the context's server; waits
    /// for it to connect.
    pub async fn kazoo(ctx: &Ctx) -> Result<Peer, String> {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/kazoo/lock_driver.py");
        let mut cmd = Command::new(PYTHON);
        cmd.arg(script).arg(&ctx.connect);
        Peer::start(ctx, "kazoo", cmd).await
    }

    /// Starts the Curator peer (`tests/curator/CuratorPeer.java`, Curator 5.9.0) with a session
    /// on the context's server; waits for it to connect.
    pub async fn curator(ctx: &Ctx) -> Result<Peer, String> {
        let mut cmd = Command::new(java_tool("java"));
        // A small, quickly started JVM: the peer does little work.
        cmd.args([
            "-Xmx128m",
            "-XX:+UseSerialGC",
            "-XX:TieredStopAtLevel=1",
            "-XX:-UsePerfData",
            "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
            "-cp",
            curator_classpath(),
            "CuratorPeer",
            &ctx.connect,
        ]);
        Peer::start(ctx, "curator", cmd).await
    }

    async fn start(ctx: &Ctx, label: &'static str, mut cmd: Command) -> Result<Peer, String> {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| {
                format!("cannot start the {label} peer: {e} (run scripts/setup-zookeeper)")
            })?;
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
                    if fields.first().map(String::as_str) == Some("e") {
                        let mut g = lock(&replies);
                        g.events.push_back(fields[1..].to_vec());
                        for w in g.wakers.drain(..) {
                            w.wake();
                        }
                        continue;
                    }
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
        let mut k = Peer {
            child,
            stdin,
            replies,
            log,
            seq: 0,
            label,
        };
        // The peer says `r 0 ok started` once its session is up.
        ctx.within(WAIT, k.reply(0))
            .await??
            .map_err(|e| format!("the {label} peer did not start: {e}"))?;
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
            .map_err(|e| format!("writing to the {} peer: {e}", self.label))?;
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
                    "the {} peer exited; its log:\n{}",
                    self.label,
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
            .map_err(|e| format!("{} {cmd}: {e}; log:\n{}", self.label, lock(&self.log)))
    }

    /// Waits for the next event line (`e <fields...>`), returning its fields.
    pub async fn next_event(&self, ctx: &Ctx) -> Result<Vec<String>, String> {
        let fut = std::future::poll_fn(|cx| {
            let mut g = lock(&self.replies);
            if let Some(ev) = g.events.pop_front() {
                return Poll::Ready(Ok(ev));
            }
            if g.closed {
                return Poll::Ready(Err(format!(
                    "the {} peer exited; its log:\n{}",
                    self.label,
                    lock(&self.log)
                )));
            }
            g.wakers.push(cx.waker().clone());
            Poll::Pending
        });
        ctx.within(WAIT, fut)
            .await?
            .map_err(|e| format!("{e} waiting for an event of the {} peer", self.label))
    }

    /// Waits until the event `want` comes, skipping others; returns those skipped.
    pub async fn wait_event(&self, ctx: &Ctx, want: &[&str]) -> Result<Vec<Vec<String>>, String> {
        let mut skipped = Vec::new();
        loop {
            let ev = self.next_event(ctx).await?;
            if ev == want {
                return Ok(skipped);
            }
            skipped.push(ev);
        }
    }

    /// The events that came and were not taken yet.
    pub fn pending_events(&self) -> Vec<Vec<String>> {
        lock(&self.replies).events.iter().cloned().collect()
    }

    /// The peer's stderr so far.
    pub fn log(&self) -> String {
        lock(&self.log).clone()
    }
}

impl Drop for Peer {
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

// ---- a proxy that loses one reply -------------------------------------------------------------

/// A TCP proxy in front of one server that, once armed, forwards the next create whose path
/// contains the armed text, lets the server apply it, and then cuts the client's connection
/// instead of passing the reply on: the client sees ConnectionLoss for a create that did happen,
/// exactly the case protected creates exist for. Later connections pass through untouched.
pub struct LossyProxy {
    port: u16,
    armed: Arc<Mutex<Option<String>>>,
    /// Set once a reply was swallowed.
    fired: Arc<Mutex<bool>>,
}

impl LossyProxy {
    /// Starts a proxy to `upstream` (`host:port`) on a free local port.
    pub fn start(upstream: &str) -> std::io::Result<LossyProxy> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let armed: Arc<Mutex<Option<String>>> = Arc::new(Mutex::new(None));
        let fired = Arc::new(Mutex::new(false));
        let upstream = upstream.to_owned();
        let (a, f) = (armed.clone(), fired.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { break };
                let Ok(server) = std::net::TcpStream::connect(&upstream) else {
                    continue;
                };
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                Self::serve(client, server, a.clone(), f.clone());
            }
        });
        Ok(LossyProxy { port, armed, fired })
    }

    /// `127.0.0.1:<port>` of the proxy.
    pub fn connect_string(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Swallow the reply to the next create whose path contains `text`.
    pub fn arm(&self, text: &str) {
        *lock(&self.armed) = Some(text.to_owned());
    }

    /// Whether a reply was swallowed.
    pub fn fired(&self) -> bool {
        *lock(&self.fired)
    }

    fn serve(
        client: std::net::TcpStream,
        server: std::net::TcpStream,
        armed: Arc<Mutex<Option<String>>>,
        fired: Arc<Mutex<bool>>,
    ) {
        // The xid whose reply is to be swallowed.
        let victim: Arc<Mutex<Option<i32>>> = Arc::new(Mutex::new(None));
        let (Ok(mut c_read), Ok(mut s_write), Ok(mut s_read), Ok(mut c_write)) = (
            client.try_clone(),
            server.try_clone(),
            server.try_clone(),
            client.try_clone(),
        ) else {
            return;
        };
        let v = victim.clone();
        std::thread::spawn(move || {
            let mut first = true;
            while let Some(frame) = read_frame(&mut c_read) {
                if !first && frame.len() >= 8 {
                    let xid = i32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]]);
                    let op = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
                    if op == 1 || op == 15 {
                        let path = frame
                            .get(8..12)
                            .map(|l| i32::from_be_bytes([l[0], l[1], l[2], l[3]]) as usize)
                            .and_then(|n| frame.get(12..12 + n))
                            .map(|p| String::from_utf8_lossy(p).into_owned())
                            .unwrap_or_default();
                        let mut a = lock(&armed);
                        if a.as_ref().is_some_and(|t| path.contains(t.as_str())) {
                            *a = None;
                            *lock(&v) = Some(xid);
                        }
                    }
                }
                first = false;
                let len = (frame.len() as u32).to_be_bytes();
                if s_write
                    .write_all(&len)
                    .and_then(|()| s_write.write_all(&frame))
                    .is_err()
                {
                    break;
                }
            }
            let _ = s_write.shutdown(std::net::Shutdown::Both);
        });
        std::thread::spawn(move || {
            let mut first = true;
            while let Some(frame) = read_frame(&mut s_read) {
                if !first && frame.len() >= 4 {
                    let xid = i32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]]);
                    if *lock(&victim) == Some(xid) {
                        // Applied on the server; the client never hears of it.
                        *lock(&fired) = true;
                        let _ = c_write.shutdown(std::net::Shutdown::Both);
                        let _ = s_read.shutdown(std::net::Shutdown::Both);
                        break;
                    }
                }
                first = false;
                let len = (frame.len() as u32).to_be_bytes();
                if c_write
                    .write_all(&len)
                    .and_then(|()| c_write.write_all(&frame))
                    .is_err()
                {
                    break;
                }
            }
            let _ = c_write.shutdown(std::net::Shutdown::Both);
        });
    }
}

/// One length-prefixed frame's payload; `None` at the end of the stream.
fn read_frame(r: &mut impl Read) -> Option<Vec<u8>> {
    let mut len = [0u8; 4];
    r.read_exact(&mut len).ok()?;
    let n = u32::from_be_bytes(len) as usize;
    if n > 16 * 1024 * 1024 {
        return None;
    }
    let mut buf = vec![0u8; n];
    r.read_exact(&mut buf).ok()?;
    Some(buf)
}
