//! Interop with kazoo, the Python client this one is modelled on (Debian's python3-kazoo, 2.8),
//! on one real ZooKeeper server per version (3.8 and 3.9), for every runtime (tokio, async-std,
//! smol): kazoo's writes fire our one-shot, DataWatch/ChildrenWatch and persistent watches; each
//! side's ephemerals appear to the other, owned by the right session, and vanish when it ends;
//! each side's transactions (and failed transactions) are seen as such by the other; data
//! round-trips byte for byte both ways (non-UTF-8, empty, null, near 1 MB) and kazoo's DataWatch
//! sees our writes; a chroot names the same nodes on both sides.
//!
//! kazoo is driven by `tests/kazoo/driver.py` (its docstring has the line protocol): one Python
//! process per runtime run, a fresh kazoo session per scenario, one command per stdin line and
//! one reply per stdout line, plus DataWatch items as they come. A reader thread queues the
//! lines, so the scenarios wait for them asynchronously on their own runtime, always with a
//! generous bound: nothing here asserts timing, every wait is for an event or a reply.
//!
//! Like the client suite (tests/suite), every scenario returns `Err(message)` instead of
//! panicking, so one test per server reports every failed (runtime, scenario) at once.
//! `SUITE_FILTER=name` runs only scenarios whose name contains `name`. python3 or kazoo missing
//! is a failure naming `scripts/setup-zookeeper`, never a skip.

use std::collections::VecDeque;
use std::future::Future;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::pin::Pin;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use futures_core::Stream;
use zk_client::{
    AddWatchMode, Client, ClientBuilder, Error, EventType, OpResult, Runtime, WatchedEvent,
};
use zk_testkit::real::{Ensemble, EnsembleOptions, ZkVersion};

/// The interpreter Debian's python3-kazoo is installed for.
const PYTHON: &str = "/usr/bin/python3";

/// Upper bound for any one event, item or kazoo reply: generous, as the machine may be loaded.
const WAIT: Duration = Duration::from_secs(30);

/// Upper bound for one whole scenario.
const SCENARIO_WAIT: Duration = Duration::from_secs(180);

/// A value near ZooKeeper's default 1 MB limit (`jute.maxbuffer` is 0xfffff for the request).
const NEAR_1MB: usize = 1024 * 1000;

type Outcome = Result<(), String>;
type BoxFut<'a> = Pin<Box<dyn Future<Output = Outcome> + 'a>>;
type Scenario = for<'a> fn(&'a Ctx, &'a mut Kazoo) -> BoxFut<'a>;

macro_rules! check {
    ($cond:expr, $($fmt:tt)*) => {
        if !$cond {
            return Err(format!("{} (line {})", format!($($fmt)*), line!()));
        }
    };
}

macro_rules! ok {
    ($e:expr) => {
        $e.map_err(|e| format!("{} failed: {e:?} (line {})", stringify!($e), line!()))?
    };
}

// ---- the runtime side ----------------------------------------------------------------------

/// What a scenario gets: the runtime and the server.
struct Ctx {
    rt: Arc<dyn Runtime>,
    runtime_name: &'static str,
    connect: String,
    version: ZkVersion,
}

impl Ctx {
    /// The base path of one scenario on this runtime.
    fn base(&self, scenario: &str) -> String {
        format!("/kazoo-{}/{}", self.runtime_name, scenario)
    }

    /// Our client's builder. `close()` waits for the server's confirmation (up to 30 s, not the
    /// default 2 s), so "gone after close" cannot depend on the machine's load.
    fn builder_for(&self, connect: &str) -> ClientBuilder {
        ClientBuilder::new(self.rt.clone(), connect)
            .session_timeout(Duration::from_secs(6))
            .connect_timeout(Duration::from_secs(30))
            .close_timeout(Duration::from_secs(30))
    }

    async fn client_at(&self, chroot: &str) -> Result<Client, String> {
        let connect = format!("{}{}", self.connect, chroot);
        self.builder_for(&connect)
            .connect()
            .await
            .map_err(|e| format!("connect to {connect}: {e}"))
    }

    async fn client(&self) -> Result<Client, String> {
        self.client_at("").await
    }

    /// Our client, with a fresh, empty base path for `scenario`.
    async fn fresh(&self, scenario: &str) -> Result<(Client, String), String> {
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
    async fn within<T>(
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

    /// The next item of a stream, within [`WAIT`].
    async fn next<S: Stream + Unpin>(&self, s: &mut S) -> Result<S::Item, String> {
        self.within(
            WAIT,
            std::future::poll_fn(|cx| Pin::new(&mut *s).poll_next(cx)),
        )
        .await?
        .ok_or_else(|| "stream ended".to_owned())
    }

    /// The next event of a persistent watch, within [`WAIT`]; a resync item is a failure here.
    async fn next_event(&self, s: &mut zk_client::PersistentWatch) -> Result<WatchedEvent, String> {
        match self.next(s).await? {
            zk_client::PersistentItem::Event(ev) => Ok(ev),
            zk_client::PersistentItem::Resync => Err("unexpected resync item".into()),
        }
    }

    /// A one-shot watch's event, within [`WAIT`].
    async fn fired(&self, w: zk_client::Watch) -> Result<WatchedEvent, String> {
        self.within(WAIT, w)
            .await?
            .map_err(|e| format!("watch ended: {e}"))
    }

    /// Checks the zxid a notification carries: the change's zxid on 3.9, -1 before.
    fn check_zxid(&self, ev: &WatchedEvent, change_zxid: i64) -> Outcome {
        let want = match self.version {
            ZkVersion::V3_8 => -1,
            _ => change_zxid,
        };
        check!(
            ev.zxid == want,
            "{:?} notification zxid {} (change's zxid {change_zxid}, expected {want})",
            self.version,
            ev.zxid
        );
        Ok(())
    }
}

fn event_is(ev: &WatchedEvent, t: EventType, path: &str) -> bool {
    ev.event_type == t && ev.path == path
}

// ---- the kazoo side ------------------------------------------------------------------------

/// Lines from the driver's stdout, filled by a reader thread.
#[derive(Default)]
struct Queue {
    lines: VecDeque<String>,
    closed: bool,
    waker: Option<Waker>,
}

fn push(q: &Mutex<Queue>, line: Option<String>) {
    let mut g = q.lock().unwrap_or_else(|e| e.into_inner());
    match line {
        Some(l) => g.lines.push_back(l),
        None => g.closed = true,
    }
    if let Some(w) = g.waker.take() {
        w.wake();
    }
}

/// The next queued line; `None` once the driver's stdout closed.
struct NextLine<'a>(&'a Mutex<Queue>);

impl Future for NextLine<'_> {
    type Output = Option<String>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<String>> {
        let mut g = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(l) = g.lines.pop_front() {
            return Poll::Ready(Some(l));
        }
        if g.closed {
            return Poll::Ready(None);
        }
        g.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

/// A node as kazoo reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct KNode {
    /// `None` when kazoo reads null data.
    data: Option<Vec<u8>>,
    version: i32,
    ephemeral_owner: i64,
    data_length: i32,
    mzxid: i64,
}

/// A DataWatch item as kazoo's callback saw it: data and version, `None` while missing.
type KItem = (Option<Vec<u8>>, Option<i32>);

/// One running `tests/kazoo/driver.py`.
struct Kazoo {
    child: Child,
    stdin: Option<ChildStdin>,
    /// `r ...` lines: replies.
    replies: Arc<Mutex<Queue>>,
    /// `w ...` lines: DataWatch items.
    items: Arc<Mutex<Queue>>,
    /// The driver's stderr (kazoo's log, tracebacks) and stray stdout, for failure messages.
    log: Arc<Mutex<String>>,
    seq: u64,
}

fn driver_script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/kazoo/driver.py")
}

/// Fails loudly unless `/usr/bin/python3` can import kazoo.
fn require_kazoo() {
    let out = Command::new(PYTHON)
        .args([
            "-c",
            "import kazoo.client, kazoo.version; print(kazoo.version.__version__)",
        ])
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run {PYTHON} ({e}): run scripts/setup-zookeeper (python3-kazoo)")
        });
    assert!(
        out.status.success(),
        "{PYTHON} cannot import kazoo: run scripts/setup-zookeeper (it installs python3-kazoo)\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!(
        "kazoo {} at {PYTHON}",
        String::from_utf8_lossy(&out.stdout).trim()
    );
}

/// A command for messages: big data tokens shortened.
fn short(cmd: &str) -> String {
    cmd.split(' ')
        .map(|t| match t.len() {
            0..=80 => t.to_owned(),
            n => format!("{}...({n} bytes)", t.chars().take(40).collect::<String>()),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn field<T: FromStr>(fields: &[String], i: usize) -> Result<T, String> {
    fields
        .get(i)
        .and_then(|f| f.parse().ok())
        .ok_or_else(|| format!("field {i} of kazoo's reply {fields:?}"))
}

impl Kazoo {
    fn spawn() -> Kazoo {
        let mut child = Command::new(PYTHON)
            .arg(driver_script())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start {PYTHON} ({e}): run scripts/setup-zookeeper (python3-kazoo)")
            });
        let replies = Arc::new(Mutex::new(Queue::default()));
        let items = Arc::new(Mutex::new(Queue::default()));
        let log = Arc::new(Mutex::new(String::new()));
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        {
            let (replies, items, log) = (replies.clone(), items.clone(), log.clone());
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    if line.starts_with("r ") {
                        push(&replies, Some(line));
                    } else if line.starts_with("w ") {
                        push(&items, Some(line));
                    } else {
                        append(&log, &format!("stdout: {line}\n"));
                    }
                }
                push(&replies, None);
                push(&items, None);
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
                    append(&log, &String::from_utf8_lossy(&buf[..n]));
                }
            });
        }
        Kazoo {
            child,
            stdin,
            replies,
            items,
            log,
            seq: 0,
        }
    }

    /// `msg` with the end of the driver's stderr.
    fn failure(&self, msg: String) -> String {
        let log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        let tail: String = log
            .lines()
            .rev()
            .take(30)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n");
        let tail = if tail.is_empty() { "(empty)" } else { &tail };
        format!("{msg}\n--- kazoo driver stderr (tail) ---\n{tail}")
    }

    /// Sends one command and waits for its reply: `Ok(fields)` for `ok`, `Err` for kazoo's
    /// exception (or a dead driver).
    async fn call(&mut self, ctx: &Ctx, cmd: &str) -> Result<Vec<String>, String> {
        self.seq += 1;
        let seq = self.seq.to_string();
        let written = match self.stdin.as_mut() {
            Some(stdin) => writeln!(stdin, "{seq} {cmd}").and_then(|()| stdin.flush()),
            None => Err(std::io::Error::other("stdin closed")),
        };
        if let Err(e) = written {
            return Err(self.failure(format!("sending {} to kazoo: {e}", short(cmd))));
        }
        loop {
            let line = match ctx.within(WAIT, NextLine(&self.replies)).await {
                Ok(Some(line)) => line,
                Ok(None) => {
                    return Err(self.failure(format!("kazoo driver exited during {}", short(cmd))))
                }
                Err(e) => return Err(self.failure(format!("kazoo: {}: {e}", short(cmd)))),
            };
            let mut fields = line.split(' ').skip(1);
            if fields.next() != Some(seq.as_str()) {
                continue; // the late reply of a command whose scenario timed out
            }
            return match fields.next() {
                Some("ok") => Ok(fields.map(str::to_owned).collect()),
                Some("err") => Err(format!(
                    "kazoo {}: {}",
                    short(cmd),
                    fields.collect::<Vec<_>>().join(" ")
                )),
                _ => Err(self.failure(format!("bad reply to {}: {}", short(cmd), short(&line)))),
            };
        }
    }

    /// Starts a new kazoo session on `hosts` (stopping the current one); its session id.
    async fn start(&mut self, ctx: &Ctx, hosts: &str) -> Result<i64, String> {
        let f = self.call(ctx, &format!("start {hosts}")).await?;
        field(&f, 0)
    }

    /// Stops kazoo's session (`stop()` + `close()`): its ephemerals go.
    async fn stop(&mut self, ctx: &Ctx) -> Outcome {
        self.call(ctx, "stop").await.map(drop)
    }

    /// `how`: `p` persistent, `e` ephemeral, `s` sequential, `es` both. The path created.
    async fn create(
        &mut self,
        ctx: &Ctx,
        path: &str,
        data: &[u8],
        how: &str,
    ) -> Result<String, String> {
        let f = self
            .call(ctx, &format!("create {path} {} {how}", enc(data)))
            .await?;
        field(&f, 0)
    }

    /// kazoo's `set`: the new version and mzxid.
    async fn set(&mut self, ctx: &Ctx, path: &str, data: &[u8]) -> Result<(i32, i64), String> {
        let f = self
            .call(ctx, &format!("set {path} {} -1", enc(data)))
            .await?;
        Ok((field(&f, 0)?, field(&f, 1)?))
    }

    async fn get(&mut self, ctx: &Ctx, path: &str) -> Result<Option<KNode>, String> {
        let f = self.call(ctx, &format!("get {path}")).await?;
        if f.first().map(String::as_str) == Some("none") {
            return Ok(None);
        }
        Ok(Some(KNode {
            data: dec(f.first().map(String::as_str).unwrap_or(""))?,
            version: field(&f, 1)?,
            ephemeral_owner: field(&f, 2)?,
            data_length: field(&f, 3)?,
            mzxid: field(&f, 4)?,
        }))
    }

    /// kazoo's `exists`: `(version, ephemeralOwner)` or `None`.
    async fn exists(&mut self, ctx: &Ctx, path: &str) -> Result<Option<(i32, i64)>, String> {
        let f = self.call(ctx, &format!("exists {path}")).await?;
        if f.first().map(String::as_str) == Some("none") {
            return Ok(None);
        }
        Ok(Some((field(&f, 0)?, field(&f, 1)?)))
    }

    /// Sorted child names.
    async fn children(&mut self, ctx: &Ctx, path: &str) -> Result<Vec<String>, String> {
        self.call(ctx, &format!("children {path}")).await
    }

    async fn delete(&mut self, ctx: &Ctx, path: &str, recursive: bool) -> Outcome {
        let r = if recursive { " r" } else { "" };
        self.call(ctx, &format!("delete {path} -1{r}"))
            .await
            .map(drop)
    }

    /// Commits a kazoo transaction of `ops` (see driver.py); one result token per op.
    async fn txn(&mut self, ctx: &Ctx, ops: &[String]) -> Result<Vec<String>, String> {
        self.call(ctx, &format!("txn {}", ops.join(" "))).await
    }

    /// Registers a kazoo DataWatch on `path` whose items carry `tag`.
    async fn data_watch(&mut self, ctx: &Ctx, path: &str, tag: &str) -> Outcome {
        self.call(ctx, &format!("datawatch {path} {tag}"))
            .await
            .map(drop)
    }

    /// The next item of the DataWatch tagged `tag` (items of other tags, left over from a failed
    /// scenario, are skipped).
    async fn item(&mut self, ctx: &Ctx, tag: &str) -> Result<KItem, String> {
        loop {
            let line = match ctx.within(WAIT, NextLine(&self.items)).await {
                Ok(Some(line)) => line,
                Ok(None) => return Err(self.failure("kazoo driver exited".into())),
                Err(e) => return Err(self.failure(format!("kazoo DataWatch {tag}: {e}"))),
            };
            let f: Vec<&str> = line.split(' ').collect();
            if f.len() != 4 {
                return Err(format!("bad DataWatch line {}", short(&line)));
            }
            if f[1] != tag {
                continue;
            }
            let version = match f[3] {
                "-" => None,
                v => Some(v.parse().map_err(|_| format!("bad version in {line}"))?),
            };
            return Ok((dec(f[2])?, version));
        }
    }
}

fn append(log: &Mutex<String>, text: &str) {
    let mut g = log.lock().unwrap_or_else(|e| e.into_inner());
    g.push_str(text);
    if g.len() > 256 * 1024 {
        let cut = g.len() - 128 * 1024;
        let cut = (cut..g.len()).find(|&i| g.is_char_boundary(i)).unwrap_or(0);
        g.drain(..cut);
    }
}

impl Drop for Kazoo {
    /// Closes stdin (the driver stops its session and exits), waits a little, then kills.
    fn drop(&mut self) {
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            match self.child.try_wait() {
                Ok(Some(_)) | Err(_) => return,
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A byte string as the driver's token: `x` + hex.
fn enc(data: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(1 + 2 * data.len());
    s.push('x');
    for b in data {
        s.push(HEX[usize::from(b >> 4)] as char);
        s.push(HEX[usize::from(b & 15)] as char);
    }
    s
}

/// The driver's data token: `x` + hex, or `-` for None.
fn dec(token: &str) -> Result<Option<Vec<u8>>, String> {
    if token == "-" {
        return Ok(None);
    }
    let hex = token
        .strip_prefix('x')
        .filter(|h| h.len() % 2 == 0)
        .ok_or_else(|| format!("bad data token {}", short(token)))?;
    let digit = |c: u8| match c {
        b'0'..=b'9' => Ok(c - b'0'),
        b'a'..=b'f' => Ok(c - b'a' + 10),
        _ => Err(format!("bad hex digit {:?}", c as char)),
    };
    hex.as_bytes()
        .chunks(2)
        .map(|p| Ok(digit(p[0])? << 4 | digit(p[1])?))
        .collect::<Result<Vec<u8>, String>>()
        .map(Some)
}

/// Data that is not UTF-8 (and has NULs, high bytes, truncated sequences).
fn not_utf8() -> Vec<u8> {
    vec![
        0xff, 0xfe, 0x00, 0xc3, 0x28, 0xa0, 0xa1, 0xe2, 0x28, 0xa1, 0xf0, 0x90, 0x28, 0xbc, 0x80,
        0x00, 0x0a, 0x20, 0x0d,
    ]
}

/// `n` pseudo-random bytes (every byte value occurs), the same on every run.
fn big(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 32) as u8
        })
        .collect()
}

/// The payloads that round-trip: named, from empty to near 1 MB.
fn payloads() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("empty", Vec::new()),
        ("text", b"hello, kazoo".to_vec()),
        ("not-utf8", not_utf8()),
        ("all-bytes", (0..=255u8).collect()),
        ("near-1mb", big(NEAR_1MB, 0x5eed)),
    ]
}

/// Compares data without printing a megabyte.
fn same(got: &[u8], want: &[u8]) -> Result<(), String> {
    if got == want {
        return Ok(());
    }
    let at = got.iter().zip(want).position(|(a, b)| a != b);
    Err(format!(
        "{} bytes where {} expected, first difference at {at:?}",
        got.len(),
        want.len()
    ))
}

// ---- scenarios -----------------------------------------------------------------------------

fn scenarios() -> Vec<(&'static str, Scenario)> {
    macro_rules! list {
        ($($name:ident),* $(,)?) => {
            vec![$((stringify!($name), (|ctx, kz| Box::pin($name(ctx, kz))) as Scenario)),*]
        };
    }
    list![
        kazoo_writes_fire_our_one_shot_watches,
        kazoo_writes_feed_our_data_watch,
        kazoo_writes_feed_our_children_watch,
        kazoo_writes_fire_our_persistent_watches,
        our_ephemerals_appear_to_kazoo_and_vanish_on_close,
        kazoo_ephemerals_appear_to_us_and_vanish_when_it_stops,
        our_transactions_as_kazoo_sees_them,
        kazoo_transactions_as_we_see_them,
        data_round_trips_byte_for_byte,
        kazoo_data_watch_sees_our_writes,
        chroot_names_the_same_nodes,
    ]
}

async fn kazoo_writes_fire_our_one_shot_watches(ctx: &Ctx, kz: &mut Kazoo) -> Outcome {
    let (c, base) = ctx.fresh("oneshot").await?;
    kz.start(ctx, &ctx.connect).await?;
    let [n1, n2, n3, n4] = ["n1", "n2", "n3", "n4"].map(|n| format!("{base}/{n}"));
    ok!(c.create(&n2, "a").await);
    ok!(c.create(&n3, "").await);
    ok!(c.create(&n4, "").await);

    // Arm first...
    let (st, created) = ok!(c.exists(&n1).watch().await);
    check!(st.is_none(), "{n1} exists already");
    let (_, base_kids) = ok!(c.get_children(&base).watch().await);
    let (_, _, changed) = ok!(c.get_data(&n2).watch().await);
    let (_, _, deleted) = ok!(c.get_data(&n3).watch().await);
    let (_, deleted_too) = ok!(c.exists(&n3).watch().await);
    let (_, kids) = ok!(c.get_children(&n4).watch().await);

    // ...then kazoo writes...
    kz.create(ctx, &n1, b"k", "p").await?;
    let (version, set_zxid) = kz.set(ctx, &n2, b"b").await?;
    check!(version == 1, "kazoo's set gave version {version}");
    kz.delete(ctx, &n3, false).await?;
    kz.create(ctx, &format!("{n4}/k"), b"", "p").await?;

    // ...and every watch fires, with the change kazoo made.
    let ev = ctx.fired(created).await?;
    check!(event_is(&ev, EventType::NodeCreated, &n1), "created {ev:?}");
    let ev = ctx.fired(base_kids).await?;
    check!(
        event_is(&ev, EventType::NodeChildrenChanged, &base),
        "parent's children {ev:?}"
    );
    let ev = ctx.fired(changed).await?;
    check!(
        event_is(&ev, EventType::NodeDataChanged, &n2),
        "changed {ev:?}"
    );
    ctx.check_zxid(&ev, set_zxid)?;
    let ev = ctx.fired(deleted).await?;
    check!(
        event_is(&ev, EventType::NodeDeleted, &n3),
        "deleted (data watch) {ev:?}"
    );
    let ev = ctx.fired(deleted_too).await?;
    check!(
        event_is(&ev, EventType::NodeDeleted, &n3),
        "deleted (exists watch) {ev:?}"
    );
    let ev = ctx.fired(kids).await?;
    check!(
        event_is(&ev, EventType::NodeChildrenChanged, &n4),
        "children {ev:?}"
    );

    let (d, st) = ok!(c.get_data(&n2).await);
    check!(
        &d[..] == b"b" && st.version == 1 && st.mzxid == set_zxid,
        "kazoo's write read back: {d:?} {st:?}"
    );
    c.close().await;
    Ok(())
}

async fn kazoo_writes_feed_our_data_watch(ctx: &Ctx, kz: &mut Kazoo) -> Outcome {
    let (c, base) = ctx.fresh("datawatch").await?;
    kz.start(ctx, &ctx.connect).await?;
    let p = format!("{base}/n");
    let mut dw = c.data_watch(&p);
    let item = ok!(ctx.next(&mut dw).await?);
    check!(
        item.data.is_none() && item.event.is_none(),
        "first item {item:?}"
    );

    kz.create(ctx, &p, b"a", "p").await?;
    let item = ok!(ctx.next(&mut dw).await?);
    check!(
        item.data
            .as_ref()
            .is_some_and(|(d, s)| &d[..] == b"a" && s.version == 0)
            && item
                .event
                .as_ref()
                .is_some_and(|e| event_is(e, EventType::NodeCreated, &p)),
        "created by kazoo {item:?}"
    );

    let (_, zxid) = kz.set(ctx, &p, &not_utf8()).await?;
    let item = ok!(ctx.next(&mut dw).await?);
    check!(
        item.data
            .as_ref()
            .is_some_and(|(d, s)| d[..] == not_utf8()[..] && s.version == 1 && s.mzxid == zxid)
            && item
                .event
                .as_ref()
                .is_some_and(|e| event_is(e, EventType::NodeDataChanged, &p)),
        "set by kazoo {item:?}"
    );

    kz.delete(ctx, &p, false).await?;
    let item = ok!(ctx.next(&mut dw).await?);
    check!(
        item.data.is_none()
            && item
                .event
                .as_ref()
                .is_some_and(|e| event_is(e, EventType::NodeDeleted, &p)),
        "deleted by kazoo {item:?}"
    );

    kz.create(ctx, &p, b"c", "p").await?;
    let item = ok!(ctx.next(&mut dw).await?);
    check!(
        item.data
            .as_ref()
            .is_some_and(|(d, s)| &d[..] == b"c" && s.version == 0),
        "re-created by kazoo {item:?}"
    );
    drop(dw);
    c.close().await;
    Ok(())
}

async fn kazoo_writes_feed_our_children_watch(ctx: &Ctx, kz: &mut Kazoo) -> Outcome {
    let (c, base) = ctx.fresh("childwatch").await?;
    kz.start(ctx, &ctx.connect).await?;
    let p = format!("{base}/n");
    let mut cw = c.children_watch(&p);
    let sorted = |item: &zk_client::ChildrenItem| {
        item.children.as_ref().map(|k| {
            let mut k = k.to_vec();
            k.sort();
            k
        })
    };
    let item = ok!(ctx.next(&mut cw).await?);
    check!(item.children.is_none(), "missing node first: {item:?}");

    kz.create(ctx, &p, b"", "p").await?;
    let item = ok!(ctx.next(&mut cw).await?);
    check!(sorted(&item) == Some(vec![]), "created by kazoo: {item:?}");
    kz.create(ctx, &format!("{p}/k1"), b"", "p").await?;
    let item = ok!(ctx.next(&mut cw).await?);
    check!(
        sorted(&item) == Some(vec!["k1".into()])
            && item
                .event
                .as_ref()
                .is_some_and(|e| event_is(e, EventType::NodeChildrenChanged, &p)),
        "child added by kazoo: {item:?}"
    );
    kz.create(ctx, &format!("{p}/k2"), b"", "e").await?;
    let item = ok!(ctx.next(&mut cw).await?);
    check!(
        sorted(&item) == Some(vec!["k1".into(), "k2".into()]),
        "ephemeral child added by kazoo: {item:?}"
    );
    kz.delete(ctx, &format!("{p}/k1"), false).await?;
    let item = ok!(ctx.next(&mut cw).await?);
    check!(
        sorted(&item) == Some(vec!["k2".into()]),
        "child deleted by kazoo: {item:?}"
    );
    // kazoo's session ends: its ephemeral child goes.
    kz.stop(ctx).await?;
    let item = ok!(ctx.next(&mut cw).await?);
    check!(
        sorted(&item) == Some(vec![]),
        "kazoo's ephemeral child gone after stop: {item:?}"
    );
    kz.start(ctx, &ctx.connect).await?;
    kz.delete(ctx, &p, false).await?;
    let item = ok!(ctx.next(&mut cw).await?);
    check!(item.children.is_none(), "deleted by kazoo: {item:?}");
    drop(cw);
    c.close().await;
    Ok(())
}

async fn kazoo_writes_fire_our_persistent_watches(ctx: &Ctx, kz: &mut Kazoo) -> Outcome {
    let (c, base) = ctx.fresh("persistent").await?;
    kz.start(ctx, &ctx.connect).await?;
    let p = format!("{base}/n");
    let deep = format!("{p}/deep");
    let mut pw = ok!(c.add_watch(&p, AddWatchMode::Persistent).await);
    let mut rw = ok!(c.add_watch(&base, AddWatchMode::PersistentRecursive).await);

    kz.create(ctx, &p, b"1", "p").await?;
    let (_, z2) = kz.set(ctx, &p, b"2").await?;
    let (_, z3) = kz.set(ctx, &p, b"3").await?;
    kz.create(ctx, &deep, b"", "p").await?;
    kz.delete(ctx, &deep, false).await?;
    kz.delete(ctx, &p, false).await?;

    use EventType::*;
    let persistent = [
        (NodeCreated, &p),
        (NodeDataChanged, &p),
        (NodeDataChanged, &p),
        (NodeChildrenChanged, &p),
        (NodeChildrenChanged, &p),
        (NodeDeleted, &p),
    ];
    for (i, (t, path)) in persistent.into_iter().enumerate() {
        let ev = ctx.next_event(&mut pw).await?;
        check!(event_is(&ev, t, path), "persistent event {i}: {ev:?}");
        match i {
            1 => ctx.check_zxid(&ev, z2)?,
            2 => ctx.check_zxid(&ev, z3)?,
            _ => {}
        }
    }
    let recursive = [
        (NodeCreated, &p),
        (NodeDataChanged, &p),
        (NodeDataChanged, &p),
        (NodeCreated, &deep),
        (NodeDeleted, &deep),
        (NodeDeleted, &p),
    ];
    for (i, (t, path)) in recursive.into_iter().enumerate() {
        let ev = ctx.next_event(&mut rw).await?;
        check!(event_is(&ev, t, path), "recursive event {i}: {ev:?}");
    }
    drop(pw);
    drop(rw);
    c.close().await;
    Ok(())
}

async fn our_ephemerals_appear_to_kazoo_and_vanish_on_close(ctx: &Ctx, kz: &mut Kazoo) -> Outcome {
    let (plain, base) = ctx.fresh("our-eph").await?;
    let c = ctx.client().await?;
    let session = c.client_id().ok_or("no session id")?.id;
    let e = ok!(c.create(&format!("{base}/e"), "eph").ephemeral().await);
    let es = ok!(c
        .create(&format!("{base}/es-"), "seq")
        .ephemeral()
        .sequential()
        .await);
    kz.start(ctx, &ctx.connect).await?;

    let node = kz
        .get(ctx, &e)
        .await?
        .ok_or("kazoo does not see our ephemeral")?;
    check!(
        node.data.as_deref() == Some(&b"eph"[..]) && node.ephemeral_owner == session,
        "kazoo reads {node:?}: owner {:#x}, our session is {session:#x}",
        node.ephemeral_owner
    );
    let node = kz
        .get(ctx, &es)
        .await?
        .ok_or("kazoo does not see our ephemeral sequential node")?;
    check!(
        node.data.as_deref() == Some(&b"seq"[..]) && node.ephemeral_owner == session,
        "kazoo reads {node:?}: owner {:#x}, our session is {session:#x}",
        node.ephemeral_owner
    );
    let names = kz.children(ctx, &base).await?;
    let es_name = es.rsplit('/').next().unwrap_or("").to_owned();
    check!(
        names == ["e".to_owned(), es_name.clone()] && es_name.len() == "es-".len() + 10,
        "kazoo lists {names:?}"
    );

    c.close().await;
    check!(
        kz.exists(ctx, &e).await?.is_none(),
        "kazoo still sees {e} after our close"
    );
    check!(
        kz.exists(ctx, &es).await?.is_none(),
        "kazoo still sees {es} after our close"
    );
    let names = kz.children(ctx, &base).await?;
    check!(names.is_empty(), "kazoo lists {names:?} after our close");
    plain.close().await;
    Ok(())
}

async fn kazoo_ephemerals_appear_to_us_and_vanish_when_it_stops(
    ctx: &Ctx,
    kz: &mut Kazoo,
) -> Outcome {
    let (c, base) = ctx.fresh("kazoo-eph").await?;
    let session = kz.start(ctx, &ctx.connect).await?;
    let e = kz.create(ctx, &format!("{base}/ke"), b"k", "e").await?;
    let es = kz.create(ctx, &format!("{base}/kes-"), b"", "es").await?;
    check!(e == format!("{base}/ke"), "kazoo created {e}");
    check!(
        es.len() == format!("{base}/kes-").len() + 10 && es.starts_with(&format!("{base}/kes-")),
        "kazoo created {es}"
    );

    let mut watches = Vec::new();
    for p in [&e, &es] {
        let (st, w) = ok!(c.exists(p).watch().await);
        let st = st.ok_or_else(|| format!("we do not see kazoo's {p}"))?;
        check!(
            st.ephemeral_owner == session,
            "{p} owned by {:#x}, kazoo's session is {session:#x}",
            st.ephemeral_owner
        );
        watches.push((p.clone(), w));
    }
    let (d, _) = ok!(c.get_data(&e).await);
    check!(&d[..] == b"k", "kazoo's ephemeral reads {d:?}");
    let mut kids = ok!(c.get_children(&base).await).to_vec();
    kids.sort();
    check!(kids.len() == 2 && kids[0] == "ke", "children {kids:?}");

    kz.stop(ctx).await?;
    for (p, w) in watches {
        let ev = ctx.fired(w).await?;
        check!(
            event_is(&ev, EventType::NodeDeleted, &p),
            "kazoo stopped: {ev:?}"
        );
        check!(ok!(c.exists(&p).await).is_none(), "{p} still there");
    }
    c.close().await;
    Ok(())
}

async fn our_transactions_as_kazoo_sees_them(ctx: &Ctx, kz: &mut Kazoo) -> Outcome {
    let (c, base) = ctx.fresh("our-txn").await?;
    kz.start(ctx, &ctx.connect).await?;
    let [a, x, gone, b] = ["a", "x", "gone", "b"].map(|n| format!("{base}/{n}"));
    ok!(c.create(&x, "0").await);
    ok!(c.create(&gone, "").await);

    let results = ok!(c
        .transaction()
        .create(&a, "A")
        .set_data(&x, "1", 0)
        .check(&x, 1)
        .delete(&gone, 0)
        .commit()
        .await);
    check!(
        matches!(&results[..], [OpResult::Created { path, .. }, OpResult::SetData { stat }, OpResult::Checked, OpResult::Deleted] if *path == a && stat.version == 1),
        "our results {results:?}"
    );
    let ka = kz
        .get(ctx, &a)
        .await?
        .ok_or("kazoo misses the created node")?;
    check!(ka.data.as_deref() == Some(&b"A"[..]), "kazoo reads {ka:?}");
    let kx = kz.get(ctx, &x).await?.ok_or("kazoo misses the set node")?;
    check!(
        kx.data.as_deref() == Some(&b"1"[..]) && kx.version == 1,
        "kazoo reads {kx:?}"
    );
    check!(
        ka.mzxid == kx.mzxid,
        "one transaction, one zxid: {:#x} vs {:#x}",
        ka.mzxid,
        kx.mzxid
    );
    check!(
        kz.exists(ctx, &gone).await?.is_none(),
        "kazoo still sees the deleted node"
    );

    // A failing transaction applies nothing that kazoo could see.
    match c
        .transaction()
        .create(&b, "B")
        .check(&x, 99)
        .set_data(&x, "no", -1)
        .commit()
        .await
    {
        Err(Error::TransactionFailed { index: 1, .. }) => {}
        other => return Err(format!("our failing transaction: {other:?}")),
    }
    check!(
        kz.exists(ctx, &b).await?.is_none(),
        "kazoo sees a node of a failed transaction"
    );
    let kx2 = kz.get(ctx, &x).await?.ok_or("x gone")?;
    check!(kx2 == kx, "x changed by a failed transaction: {kx2:?}");
    check!(
        kz.children(ctx, &base).await? == ["a", "x"],
        "kazoo's listing"
    );
    c.close().await;
    Ok(())
}

async fn kazoo_transactions_as_we_see_them(ctx: &Ctx, kz: &mut Kazoo) -> Outcome {
    let (c, base) = ctx.fresh("kazoo-txn").await?;
    kz.start(ctx, &ctx.connect).await?;
    let [a, x, gone, f, marker] = ["a", "x", "gone", "f", "marker"].map(|n| format!("{base}/{n}"));
    ok!(c.create(&x, "0").await);
    ok!(c.create(&gone, "").await);
    let mut rw = ok!(c.add_watch(&base, AddWatchMode::PersistentRecursive).await);

    let results = kz
        .txn(
            ctx,
            &[
                format!("create:{a}:{}", enc(b"A")),
                format!("set:{x}:{}:0", enc(b"1")),
                format!("check:{x}:1"),
                format!("delete:{gone}:0"),
            ],
        )
        .await?;
    check!(
        results
            == [
                format!("created:{a}"),
                "stat:1".into(),
                "true".into(),
                "true".into()
            ],
        "kazoo's results {results:?}"
    );
    // Our recursive watch hears every op, in order.
    use EventType::*;
    for (i, (t, path)) in [
        (NodeCreated, &a),
        (NodeDataChanged, &x),
        (NodeDeleted, &gone),
    ]
    .into_iter()
    .enumerate()
    {
        let ev = ctx.next_event(&mut rw).await?;
        check!(
            event_is(&ev, t, path),
            "event {i} of kazoo's transaction: {ev:?}"
        );
    }
    let (da, sa) = ok!(c.get_data(&a).await);
    let (dx, sx) = ok!(c.get_data(&x).await);
    check!(&da[..] == b"A", "created {da:?}");
    check!(&dx[..] == b"1" && sx.version == 1, "set {dx:?} {sx:?}");
    check!(
        sa.mzxid == sx.mzxid,
        "one transaction, one zxid: {:#x} vs {:#x}",
        sa.mzxid,
        sx.mzxid
    );
    check!(
        ok!(c.exists(&gone).await).is_none(),
        "deleted node still there"
    );

    // kazoo's failing transaction: every op reports, nothing applies, no watch fires. The
    // marker written after it must be the very next event we hear.
    let results = kz
        .txn(
            ctx,
            &[
                format!("create:{f}:{}", enc(b"F")),
                format!("check:{x}:99"),
                format!("set:{x}:{}:-1", enc(b"no")),
            ],
        )
        .await?;
    check!(
        results
            == [
                "error:RolledBackError",
                "error:BadVersionError",
                "error:RuntimeInconsistency"
            ],
        "kazoo's failed results {results:?}"
    );
    kz.create(ctx, &marker, b"", "p").await?;
    let ev = ctx.next_event(&mut rw).await?;
    check!(
        event_is(&ev, NodeCreated, &marker),
        "the failed transaction fired {ev:?}"
    );
    check!(ok!(c.exists(&f).await).is_none(), "failed create applied");
    let (dx2, sx2) = ok!(c.get_data(&x).await);
    check!(
        dx2 == dx && sx2 == sx,
        "failed set applied: {dx2:?} {sx2:?}"
    );
    drop(rw);
    c.close().await;
    Ok(())
}

async fn data_round_trips_byte_for_byte(ctx: &Ctx, kz: &mut Kazoo) -> Outcome {
    let (c, base) = ctx.fresh("bytes").await?;
    kz.start(ctx, &ctx.connect).await?;
    for (name, data) in payloads() {
        // Ours, read by kazoo.
        let p = format!("{base}/ours-{name}");
        ok!(c.create(&p, data.clone()).await);
        let node = kz
            .get(ctx, &p)
            .await?
            .ok_or_else(|| format!("kazoo misses {p}"))?;
        same(node.data.as_deref().unwrap_or_default(), &data)
            .map_err(|e| format!("kazoo reads our {name}: {e}"))?;
        check!(
            node.data.is_some() && node.data_length as usize == data.len(),
            "kazoo's view of our {name}: length {} ({:?})",
            node.data_length,
            node.data.as_ref().map(Vec::len)
        );
        // kazoo's, read by us.
        let p = format!("{base}/theirs-{name}");
        kz.create(ctx, &p, &data, "p").await?;
        let (d, st) = ok!(c.get_data(&p).await);
        same(&d, &data).map_err(|e| format!("we read kazoo's {name}: {e}"))?;
        check!(
            st.data_length as usize == data.len(),
            "our Stat of kazoo's {name}: {st:?}"
        );
        // And overwritten the other way round, by set.
        let flipped: Vec<u8> = data.iter().rev().map(|b| !b).collect();
        ok!(c.set_data(&p, flipped.clone()).await);
        let node = kz
            .get(ctx, &p)
            .await?
            .ok_or_else(|| format!("kazoo misses {p}"))?;
        same(node.data.as_deref().unwrap_or_default(), &flipped)
            .map_err(|e| format!("kazoo reads our set of {name}: {e}"))?;
        kz.set(ctx, &format!("{base}/ours-{name}"), &flipped)
            .await?;
        let (d, _) = ok!(c.get_data(&format!("{base}/ours-{name}")).await);
        same(&d, &flipped).map_err(|e| format!("we read kazoo's set of {name}: {e}"))?;
    }
    // Null data: kazoo reads None, where we read empty bytes.
    let p = format!("{base}/null");
    ok!(c.create(&p, "").null_data().await);
    let node = kz.get(ctx, &p).await?.ok_or("kazoo misses the null node")?;
    check!(
        node.data.is_none() && node.data_length == 0,
        "kazoo reads null data as {node:?}"
    );
    c.close().await;
    Ok(())
}

async fn kazoo_data_watch_sees_our_writes(ctx: &Ctx, kz: &mut Kazoo) -> Outcome {
    let (c, base) = ctx.fresh("kazoo-datawatch").await?;
    kz.start(ctx, &ctx.connect).await?;
    let p = format!("{base}/n");
    let tag = format!("dw-{}", ctx.runtime_name);
    kz.data_watch(ctx, &p, &tag).await?;
    let item = kz.item(ctx, &tag).await?;
    check!(item == (None, None), "kazoo's first item {item:?}");

    ok!(c.create(&p, "a").await);
    let item = kz.item(ctx, &tag).await?;
    check!(
        item == (Some(b"a".to_vec()), Some(0)),
        "kazoo saw our create as {item:?}"
    );
    // Each write awaits kazoo's item before the next, so none folds into another.
    let writes = [
        not_utf8(),
        (0..=255u8).collect(),
        big(NEAR_1MB, 0xfeed),
        Vec::new(),
    ];
    for (i, data) in writes.iter().enumerate() {
        ok!(c.set_data(&p, data.clone()).await);
        let (seen, version) = kz.item(ctx, &tag).await?;
        let seen = seen.ok_or_else(|| format!("kazoo saw write {i} as a deletion"))?;
        same(&seen, data).map_err(|e| format!("kazoo's DataWatch, write {i}: {e}"))?;
        check!(
            version == Some(i as i32 + 1),
            "kazoo saw write {i} at version {version:?}"
        );
    }
    ok!(c.delete(&p).await);
    let item = kz.item(ctx, &tag).await?;
    check!(item == (None, None), "kazoo saw our delete as {item:?}");
    ok!(c.create(&p, "again").await);
    let item = kz.item(ctx, &tag).await?;
    check!(
        item == (Some(b"again".to_vec()), Some(0)),
        "kazoo saw our re-create as {item:?}"
    );
    kz.stop(ctx).await?;
    c.close().await;
    Ok(())
}

async fn chroot_names_the_same_nodes(ctx: &Ctx, kz: &mut Kazoo) -> Outcome {
    let (plain, base) = ctx.fresh("chroot").await?;
    let root = format!("{base}/app");
    ok!(plain.ensure_path(&root).await);
    let c = ctx.client_at(&root).await?;
    kz.start(ctx, &format!("{}{root}", ctx.connect)).await?;

    ok!(c.create("/ours", "o").await);
    let node = kz.get(ctx, "/ours").await?.ok_or("kazoo misses /ours")?;
    check!(
        node.data.as_deref() == Some(&b"o"[..]),
        "kazoo reads {node:?}"
    );
    let theirs = kz.create(ctx, "/theirs", b"t", "p").await?;
    check!(theirs == "/theirs", "kazoo created {theirs}");
    let (d, _) = ok!(c.get_data("/theirs").await);
    check!(&d[..] == b"t", "we read {d:?}");
    let (d, _) = ok!(plain.get_data(&format!("{root}/theirs")).await);
    check!(&d[..] == b"t", "kazoo's write lands under the chroot");

    let kseq = kz.create(ctx, "/kseq-", b"", "es").await?;
    let oseq = ok!(c.create("/oseq-", "").sequential().ephemeral().await);
    check!(
        kseq.starts_with("/kseq-") && oseq.starts_with("/oseq-"),
        "sequential paths {kseq} {oseq}"
    );
    let results = kz
        .txn(
            ctx,
            &[format!("create:/t:{}", enc(b"")), "check:/ours:0".into()],
        )
        .await?;
    check!(
        results == ["created:/t", "true"],
        "kazoo's chrooted transaction {results:?}"
    );
    let ours = ok!(c
        .transaction()
        .create("/u", "")
        .check("/theirs", 0)
        .commit()
        .await);
    check!(
        matches!(&ours[0], OpResult::Created { path, .. } if path == "/u"),
        "our chrooted transaction {ours:?}"
    );

    let mut mine = ok!(c.get_children("/").await).to_vec();
    mine.sort();
    let theirs = kz.children(ctx, "/").await?;
    check!(mine == theirs, "we list {mine:?}, kazoo lists {theirs:?}");
    let mut want = vec![
        "ours".to_owned(),
        "theirs".into(),
        "t".into(),
        "u".into(),
        kseq[1..].to_owned(),
        oseq[1..].to_owned(),
    ];
    want.sort();
    check!(mine == want, "children {mine:?}");

    // Watches across the chroot: kazoo's writes reach our chrooted watches with chrooted paths.
    let (_, _, w) = ok!(c.get_data("/theirs").watch().await);
    let mut rw = ok!(c.add_watch("/", AddWatchMode::PersistentRecursive).await);
    kz.set(ctx, "/theirs", b"t2").await?;
    let ev = ctx.fired(w).await?;
    check!(
        event_is(&ev, EventType::NodeDataChanged, "/theirs"),
        "chrooted event {ev:?}"
    );
    let ev = ctx.next_event(&mut rw).await?;
    check!(
        event_is(&ev, EventType::NodeDataChanged, "/theirs"),
        "chrooted recursive event {ev:?}"
    );
    kz.create(ctx, "/deep", b"", "p").await?;
    let ev = ctx.next_event(&mut rw).await?;
    check!(
        event_is(&ev, EventType::NodeCreated, "/deep"),
        "chrooted recursive event {ev:?}"
    );
    // And kazoo's chrooted DataWatch sees our chrooted writes.
    let tag = format!("chroot-{}", ctx.runtime_name);
    kz.data_watch(ctx, "/ours", &tag).await?;
    let item = kz.item(ctx, &tag).await?;
    check!(
        item == (Some(b"o".to_vec()), Some(0)),
        "kazoo's first item {item:?}"
    );
    ok!(c.set_data("/ours", "o2").await);
    let item = kz.item(ctx, &tag).await?;
    check!(
        item == (Some(b"o2".to_vec()), Some(1)),
        "kazoo saw {item:?}"
    );
    kz.stop(ctx).await?;
    drop(rw);
    c.close().await;
    plain.close().await;
    Ok(())
}

// ---- runners -------------------------------------------------------------------------------

async fn run(ctx: &Ctx, failures: &mut Vec<String>) {
    let filter = std::env::var("SUITE_FILTER").unwrap_or_default();
    let mut kz = Kazoo::spawn();
    for (name, scenario) in scenarios() {
        if !name.contains(filter.as_str()) {
            continue;
        }
        let started = Instant::now();
        let outcome = match ctx.within(SCENARIO_WAIT, scenario(ctx, &mut kz)).await {
            Ok(r) => r,
            Err(e) => Err(kz.failure(e)),
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
        }
    }
}

/// Every scenario on every runtime against one server of `version`.
fn interop(version: ZkVersion) {
    require_kazoo();
    let ens = Ensemble::start(EnsembleOptions::standalone(version))
        .unwrap_or_else(|e| panic!("starting ZooKeeper {version:?}: {e}"));
    let connect = ens.connect_string();
    let mut failures = Vec::new();
    fn make(
        rt: Arc<dyn Runtime>,
        runtime_name: &'static str,
        connect: &str,
        version: ZkVersion,
    ) -> Ctx {
        Ctx {
            rt,
            runtime_name,
            connect: connect.to_owned(),
            version,
        }
    }

    let tokio_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    tokio_rt.block_on(run(
        &make(
            zk_tokio::TokioRuntime::default().shared(),
            "tokio",
            &connect,
            version,
        ),
        &mut failures,
    ));
    drop(tokio_rt);
    async_std::task::block_on(run(
        &make(
            zk_async_std::AsyncStdRuntime::default().shared(),
            "async-std",
            &connect,
            version,
        ),
        &mut failures,
    ));
    smol::block_on(run(
        &make(
            zk_async_std::SmolRuntime::default().shared(),
            "smol",
            &connect,
            version,
        ),
        &mut failures,
    ));

    assert!(
        failures.is_empty(),
        "{} kazoo interop runs failed on ZooKeeper {version:?}:\n{}\n--- server log (tail) ---\n{}",
        failures.len(),
        failures.join("\n"),
        ens.log_tail(0, 40)
    );
}

#[test]
fn kazoo_interop_on_zookeeper_3_8() {
    interop(ZkVersion::V3_8);
}

#[test]
fn kazoo_interop_on_zookeeper_3_9() {
    interop(ZkVersion::V3_9);
}
