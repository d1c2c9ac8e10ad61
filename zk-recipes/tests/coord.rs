//! The coordination recipes (counter, shared count, queue, barriers, party, persistent node,
//! group member, caches, patient children watch) on every runtime (tokio, async-std, smol)
//! against real ZooKeeper 3.8 and 3.9 started by zk-testkit, with kazoo sharing the same nodes,
//! through failovers of 3-node ensembles (kill -9 of the server under a client), on a server
//! without addWatch (SimServer as 3.5), and through zk-blocking's wrappers on plain threads.
//!
//! One test per server runs every scenario on each runtime in turn; a scenario returns
//! `Err(message)` rather than panicking, so a test reports every failed (runtime, scenario) at
//! once. `SUITE_FILTER=name` runs only scenarios whose name contains `name`. Nothing asserts
//! timing: every wait is for a reply, an item, an event or a state of the servers, bounded
//! generously. A client is cut off from its server behind a TCP relay (`Relay`) to test
//! reconnects and, with a second client resuming and closing its session, expiry. python3 or
//! kazoo missing is a failure, never a skip.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::future::Future;
use std::io::{BufRead, BufReader, Write};
use std::pin::Pin;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::{Duration, Instant};

use futures_core::Stream;
use zk_client::{Client, ClientBuilder, Error, Runtime};
use zk_recipes::{
    Barrier, CacheEvent, Counter, DoubleBarrier, GroupMember, NodeMode, Party,
    PatientChildrenWatch, PersistentNode, PersistentTtlNode, Queue, ShallowParty, SharedCount,
    SubtreeCache, TreeCache, TreeEvent, VersionedValue,
};
use zk_testkit::real::{Ensemble, EnsembleOptions, ZkVersion};

/// Upper bound for any one reply, item or event: generous, the machine may be loaded.
const WAIT: Duration = Duration::from_secs(30);

/// Upper bound for one whole scenario.
const SCENARIO_WAIT: Duration = Duration::from_secs(240);

const PYTHON: &str = "/usr/bin/python3";

type Outcome = Result<(), String>;
type BoxFut<'a> = Pin<Box<dyn Future<Output = Outcome> + 'a>>;
type Scenario = for<'a> fn(&'a Ctx) -> BoxFut<'a>;
/// One client's share of a concurrent run.
type Task<'a, T> = Pin<Box<dyn Future<Output = Result<T, Error>> + 'a>>;

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

// ---- the harness ---------------------------------------------------------------------------

/// What a scenario gets: the runtime, the servers, and (for ensemble scenarios) the ensemble.
struct Ctx {
    rt: Arc<dyn Runtime>,
    runtime_name: &'static str,
    connect: String,
    /// Which server, for messages.
    server: String,
    ensemble: Option<Arc<Mutex<Ensemble>>>,
}

impl Ctx {
    fn base(&self, scenario: &str) -> String {
        format!("/coord-{}/{}", self.runtime_name, scenario)
    }

    fn builder(&self) -> ClientBuilder {
        ClientBuilder::new(self.rt.clone(), &self.connect)
            .session_timeout(Duration::from_secs(6))
            .connect_timeout(WAIT)
            .close_timeout(WAIT)
    }

    async fn client(&self) -> Result<Client, String> {
        self.builder()
            .connect()
            .await
            .map_err(|e| format!("connect to {}: {e}", self.connect))
    }

    /// `n` clients, each its own session.
    async fn clients(&self, n: usize) -> Result<Vec<Client>, String> {
        let mut v = Vec::new();
        for _ in 0..n {
            v.push(self.client().await?);
        }
        Ok(v)
    }

    /// A client and a fresh, empty base path for `scenario`.
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

    async fn sleep(&self, d: Duration) {
        let mut t = self.rt.timer(Instant::now() + d);
        std::future::poll_fn(|cx| t.poll_fire(cx)).await
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

    /// The next item of a stream, within `WAIT`.
    async fn next<S: Stream + Unpin>(&self, s: &mut S) -> Result<S::Item, String> {
        self.within(
            WAIT,
            std::future::poll_fn(|cx| Pin::new(&mut *s).poll_next(cx)),
        )
        .await?
        .ok_or_else(|| "stream ended".to_owned())
    }

    /// Polls `cond` until it holds (a condition on the servers that no event announces), at most
    /// `WAIT`.
    async fn eventually<F, Fut>(&self, what: &str, mut cond: F) -> Outcome
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<bool, String>>,
    {
        let start = Instant::now();
        loop {
            if cond().await? {
                return Ok(());
            }
            if start.elapsed() > WAIT {
                return Err(format!("{what}: not within {WAIT:?}"));
            }
            self.sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Runs futures concurrently on the current task; their results in order.
async fn join_all<'a, T>(futs: Vec<Pin<Box<dyn Future<Output = T> + 'a>>>) -> Vec<T> {
    let mut futs: Vec<Option<Pin<Box<dyn Future<Output = T> + 'a>>>> =
        futs.into_iter().map(Some).collect();
    let mut out: Vec<Option<T>> = futs.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (f, o) in futs.iter_mut().zip(out.iter_mut()) {
            if let Some(fut) = f {
                match fut.as_mut().poll(cx) {
                    Poll::Ready(v) => {
                        *o = Some(v);
                        *f = None;
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

enum Either<A, B> {
    Left(A),
    Right(B),
}

/// Runs two futures until the first finishes; the other is dropped (cancelled).
async fn race<A: Future, B: Future>(a: A, b: B) -> Either<A::Output, B::Output> {
    let (mut a, mut b) = (std::pin::pin!(a), std::pin::pin!(b));
    std::future::poll_fn(|cx| {
        if let Poll::Ready(v) = a.as_mut().poll(cx) {
            return Poll::Ready(Either::Left(v));
        }
        b.as_mut().poll(cx).map(Either::Right)
    })
    .await
}

/// A TCP relay to the server that a test can cut: while cut, it closes every connection it
/// relays and every new one at once. A client connected through it can then be kept away from
/// the server without touching the server.
struct Relay {
    port: u16,
    cut: Arc<std::sync::atomic::AtomicBool>,
    live: Arc<Mutex<Vec<std::net::TcpStream>>>,
}

impl Relay {
    fn start(upstream: &str) -> Result<Relay, String> {
        let listener =
            std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| format!("relay: {e}"))?;
        let port = listener.local_addr().map_err(|e| e.to_string())?.port();
        let upstream = upstream.split(',').next().ok_or("no server")?.to_owned();
        let cut = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let live = Arc::new(Mutex::new(Vec::new()));
        let (cut2, live2) = (cut.clone(), live.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(down) = conn else { continue };
                if cut2.load(std::sync::atomic::Ordering::SeqCst) {
                    continue; // dropped: closed at once
                }
                let Ok(up) = std::net::TcpStream::connect(&upstream) else {
                    continue;
                };
                let pipes = (down.try_clone(), up.try_clone());
                let (Ok(down2), Ok(up2)) = pipes else {
                    continue;
                };
                if let Ok(mut l) = live2.lock() {
                    l.extend(down.try_clone());
                    l.extend(up.try_clone());
                }
                for (mut from, mut to) in [(down, up), (up2, down2)] {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(std::net::Shutdown::Both);
                    });
                }
            }
        });
        Ok(Relay { port, cut, live })
    }

    fn connect_string(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Closes every relayed connection and refuses new ones until `heal`.
    fn cut(&self) {
        self.cut.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Ok(mut l) = self.live.lock() {
            for s in l.drain(..) {
                let _ = s.shutdown(std::net::Shutdown::Both);
            }
        }
    }

    fn heal(&self) {
        self.cut.store(false, std::sync::atomic::Ordering::SeqCst);
    }
}

/// A client connected through a new [`Relay`].
async fn relayed_client(ctx: &Ctx) -> Result<(Client, Relay), String> {
    let relay = Relay::start(&ctx.connect)?;
    let c = ClientBuilder::new(ctx.rt.clone(), &relay.connect_string())
        .session_timeout(Duration::from_secs(6))
        .connect_timeout(WAIT)
        .close_timeout(WAIT)
        .connect()
        .await
        .map_err(|e| format!("connect through the relay: {e}"))?;
    Ok((c, relay))
}

/// Expires the session of `c` (connected through `relay`) the way a partition would, seen from
/// the server: with `c` cut off, a second client resumes the session by id and password and
/// closes it; then `c` is let through again and learns of the expiry (and, by default, starts a
/// new session).
async fn expire(ctx: &Ctx, c: &Client, relay: &Relay) -> Outcome {
    let mut states = c.state_changes();
    let id = c.client_id().ok_or("no session to expire")?;
    relay.cut();
    let thief = ctx
        .builder()
        .resume(id)
        .renew_session_after_expiry(false)
        .connect()
        .await
        .map_err(|e| format!("resume the session to expire it: {e}"))?;
    thief.close().await;
    relay.heal();
    loop {
        if let zk_client::SessionState::Lost(_) = ctx.next(&mut states).await? {
            return Ok(());
        }
    }
}

async fn run(ctx: &Ctx, list: &[(&'static str, Scenario)], failures: &mut Vec<String>) {
    let filter = std::env::var("SUITE_FILTER").unwrap_or_default();
    for (name, scenario) in list {
        if !name.contains(filter.as_str()) {
            continue;
        }
        let started = Instant::now();
        let outcome = match ctx.within(SCENARIO_WAIT, scenario(ctx)).await {
            Ok(r) => r,
            Err(e) => Err(e),
        };
        eprintln!(
            "[{} {}] {name}: {} in {:?}",
            ctx.server,
            ctx.runtime_name,
            if outcome.is_ok() { "ok" } else { "FAILED" },
            started.elapsed()
        );
        if let Err(e) = outcome {
            failures.push(format!("[{} {}] {name}: {e}", ctx.server, ctx.runtime_name));
        }
    }
}

/// Runs `list` on tokio, async-std and smol in turn against `connect`.
fn on_every_runtime(
    server: &str,
    connect: &str,
    ensemble: Option<Arc<Mutex<Ensemble>>>,
    list: &[(&'static str, Scenario)],
) {
    let make = |rt: Arc<dyn Runtime>, runtime_name| Ctx {
        rt,
        runtime_name,
        connect: connect.to_owned(),
        server: server.to_owned(),
        ensemble: ensemble.clone(),
    };
    let mut failures = Vec::new();
    let tokio_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let ctx = make(zk_tokio::TokioRuntime::default().shared(), "tokio");
    tokio_rt.block_on(run(&ctx, list, &mut failures));
    drop(tokio_rt);
    let ctx = make(
        zk_async_std::AsyncStdRuntime::default().shared(),
        "async-std",
    );
    async_std::task::block_on(run(&ctx, list, &mut failures));
    let ctx = make(zk_async_std::SmolRuntime::default().shared(), "smol");
    smol::block_on(run(&ctx, list, &mut failures));
    assert!(
        failures.is_empty(),
        "{} scenario runs failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

macro_rules! scenarios {
    ($($name:ident),* $(,)?) => {
        vec![$((stringify!($name), (|ctx| Box::pin($name(ctx))) as Scenario)),*]
    };
}

fn standalone_scenarios() -> Vec<(&'static str, Scenario)> {
    scenarios![
        counter_sums_concurrent_increments,
        float_counter_and_curator_encoding,
        shared_count_compare_and_set_and_changes,
        queue_items_neither_lost_nor_duplicated,
        queue_priorities_and_put_all,
        kazoo_shares_counters_and_queue,
        kazoo_shares_parties_and_a_double_barrier,
        barrier_releases_every_waiter,
        double_barrier_enters_and_leaves_together,
        cancelled_double_barrier_enter_leaves_nothing,
        party_membership_tracks_sessions,
        shallow_party_lists_names,
        persistent_node_comes_back,
        persistent_sequential_node_is_protected_and_replaced,
        persistent_ttl_node_keeps_its_container,
        group_members_see_each_other,
        subtree_cache_follows_another_client,
        subtree_cache_on_one_shot_watches_follows_another_client,
        subtree_cache_converges_after_a_disconnect,
        subtree_cache_converges_after_session_expiry,
        tree_cache_follows_changes_and_the_connection,
        patient_children_watch_waits_for_stillness,
    ]
}

fn standalone(version: ZkVersion) {
    let ens = Ensemble::start(EnsembleOptions::standalone(version))
        .unwrap_or_else(|e| panic!("starting ZooKeeper {version}: {e}"));
    on_every_runtime(
        &version.to_string(),
        &ens.connect_string(),
        None,
        &standalone_scenarios(),
    );
}

/// SubtreeCache on a server without addWatch (SimServer answering as 3.5.10): the cache falls
/// back to one-shot watches by itself and still follows the tree.
#[test]
fn subtree_cache_falls_back_on_a_3_5_server() {
    let sim = zk_testkit::sim::tcp::SimTcpServer::start(zk_testkit::sim::SimConfig {
        version: (3, 5, 10),
        ..zk_testkit::sim::SimConfig::default()
    })
    .expect("SimServer listens");
    on_every_runtime(
        "SimServer 3.5.10",
        &sim.connect_string(),
        None,
        &[("subtree_cache_falls_back_without_add_watch", |ctx| {
            Box::pin(subtree_cache_falls_back_without_add_watch(ctx))
        })],
    );
}

/// At most one 3-node ensemble at a time in this binary (the machine is small).
static ENSEMBLES: Mutex<()> = Mutex::new(());

fn ensemble_scenarios() -> Vec<(&'static str, Scenario)> {
    scenarios![
        caches_converge_after_a_server_kill,
        counter_adds_up_across_a_server_kill,
        queue_loses_nothing_across_a_server_kill,
    ]
}

fn ensemble(version: ZkVersion) {
    let _one = ENSEMBLES.lock().unwrap_or_else(|e| e.into_inner());
    let ens = Ensemble::start(EnsembleOptions::quorum(version, 3))
        .unwrap_or_else(|e| panic!("starting a ZooKeeper {version} ensemble: {e}"));
    let connect = ens.connect_string();
    on_every_runtime(
        &format!("{version} x3"),
        &connect,
        Some(Arc::new(Mutex::new(ens))),
        &ensemble_scenarios(),
    );
}

#[test]
fn failover_on_a_zookeeper_3_8_ensemble() {
    ensemble(ZkVersion::V3_8);
}

#[test]
fn failover_on_a_zookeeper_3_9_ensemble() {
    ensemble(ZkVersion::V3_9);
}

#[test]
fn coord_recipes_on_zookeeper_3_8() {
    standalone(ZkVersion::V3_8);
}

#[test]
fn coord_recipes_on_zookeeper_3_9() {
    standalone(ZkVersion::V3_9);
}

// ---- counter and shared count ----------------------------------------------------------------

const CLIENTS: usize = 4;
const PER_CLIENT: usize = 25;

/// Several clients, each with its own session, increment one counter at once: the result is
/// the sum, and every increment saw a distinct pre-value (no two applied on the same version).
async fn counter_sums_concurrent_increments(ctx: &Ctx) -> Outcome {
    let (c, base) = ctx.fresh("counter").await?;
    let path = format!("{base}/int");
    let clients = ctx.clients(CLIENTS).await?;
    let counters: Vec<Counter> = clients.iter().map(|c| Counter::new(c, &path)).collect();
    let futs: Vec<Task<'_, Vec<i64>>> = counters
        .iter()
        .map(|counter| {
            Box::pin(async move {
                let mut pre = Vec::new();
                for _ in 0..PER_CLIENT {
                    pre.push(counter.add(1).await?.pre_value);
                }
                Ok(pre)
            }) as Pin<Box<dyn Future<Output = _>>>
        })
        .collect();
    let mut seen = BTreeSet::new();
    for r in join_all(futs).await {
        for pre in ok!(r) {
            check!(seen.insert(pre), "two increments started from {pre}");
        }
    }
    let total = (CLIENTS * PER_CLIENT) as i64;
    let value = ok!(Counter::new(&c, &path).value().await);
    check!(value == total, "counter {value}, want {total}");
    let (data, _) = ok!(c.get_data(&path).await);
    check!(
        data == total.to_string().as_bytes(),
        "kazoo's layout: ASCII decimal, got {data:?}"
    );
    let change = ok!(Counter::new(&c, &path).sub(10).await);
    check!(
        change.pre_value == total && change.post_value == total - 10,
        "sub {change:?}"
    );
    for cl in clients {
        cl.close().await;
    }
    c.close().await;
    Ok(())
}

/// A float counter writes Python's repr; a Curator-compatible counter writes 4 big-endian bytes
/// and agrees with SharedCount on the same node.
async fn float_counter_and_curator_encoding(ctx: &Ctx) -> Outcome {
    let (c, base) = ctx.fresh("float-counter").await?;
    let fpath = format!("{base}/float");
    let f = Counter::with_default(&c, &fpath, 1.0);
    check!(
        ok!(f.value().await) == 1.0,
        "a new float counter reads its default"
    );
    let ch = ok!(f.add(2.5).await);
    check!(
        ch.pre_value == 1.0 && ch.post_value == 3.5,
        "float add {ch:?}"
    );
    let (data, _) = ok!(c.get_data(&fpath).await);
    check!(&data[..] == b"3.5", "float layout {data:?}");

    let cpath = format!("{base}/curator");
    let k = Counter::new(&c, &cpath).support_curator();
    ok!(k.add(7).await);
    ok!(k.sub(2).await);
    let (data, _) = ok!(c.get_data(&cpath).await);
    check!(data[..] == 5i32.to_be_bytes(), "curator layout {data:?}");
    let shared = ok!(SharedCount::start(&c, &cpath, 100).await);
    check!(
        ok!(shared.count().await) == 5,
        "SharedCount reads the counter"
    );
    ok!(shared.set_count(40).await);
    check!(ok!(k.value().await) == 40, "the counter reads SharedCount");
    match k.add(i64::from(i32::MAX)).await {
        Err(Error::InvalidArgument(_)) => {}
        other => return Err(format!("a count past i32 must fail, got {other:?}")),
    }
    c.close().await;
    Ok(())
}

/// SharedCount: the seed on a new node, a compare-and-set that fails on a stale version, and a
/// stream that sees another client's change.
async fn shared_count_compare_and_set_and_changes(ctx: &Ctx) -> Outcome {
    let (c, base) = ctx.fresh("shared-count").await?;
    let other = ctx.client().await?;
    let path = format!("{base}/deep/count");
    let count = ok!(SharedCount::start(&c, &path, 7).await);
    let again = ok!(SharedCount::start(&other, &path, 99).await);
    check!(
        ok!(again.count().await) == 7,
        "start keeps an existing count"
    );
    let (data, _) = ok!(c.get_data(&path).await);
    check!(data[..] == [0, 0, 0, 7], "4 big-endian bytes {data:?}");

    let mut changes = count.changes();
    let first = ok!(ctx.next(&mut changes).await?);
    check!(first.value == 7, "first change item {first:?}");

    let v0 = ok!(count.versioned_value().await);
    check!(
        ok!(count.try_set_count(&v0, 8).await),
        "CAS on the fresh version"
    );
    check!(
        !ok!(again.try_set_count(&v0, 9).await),
        "CAS on a stale version must fail"
    );
    let item = ok!(ctx.next(&mut changes).await?);
    check!(
        item == VersionedValue {
            version: v0.version + 1,
            value: 8
        },
        "change item {item:?}"
    );
    ok!(again.set_count(-3).await);
    let item = ok!(ctx.next(&mut changes).await?);
    check!(item.value == -3, "another client's change {item:?}");

    // Concurrent CAS increments from several clients add up.
    let clients = ctx.clients(CLIENTS).await?;
    let counts: Vec<SharedCount> = {
        let mut v = Vec::new();
        for cl in &clients {
            v.push(ok!(SharedCount::start(cl, &path, 0).await));
        }
        v
    };
    let futs: Vec<Task<'_, ()>> = counts
        .iter()
        .map(|sc| {
            Box::pin(async move {
                for _ in 0..PER_CLIENT {
                    loop {
                        let v = sc.versioned_value().await?;
                        if sc.try_set_count(&v, v.value + 1).await? {
                            break;
                        }
                    }
                }
                Ok(())
            }) as Pin<Box<dyn Future<Output = _>>>
        })
        .collect();
    for r in join_all(futs).await {
        ok!(r);
    }
    let want = -3 + (CLIENTS * PER_CLIENT) as i32;
    let got = ok!(count.count().await);
    check!(got == want, "CAS increments: {got}, want {want}");
    drop(changes);
    for cl in clients {
        cl.close().await;
    }
    other.close().await;
    c.close().await;
    Ok(())
}

// ---- queue ---------------------------------------------------------------------------------

/// Producers and consumers on separate sessions at once: every item comes out exactly once.
async fn queue_items_neither_lost_nor_duplicated(ctx: &Ctx) -> Outcome {
    let (c, base) = ctx.fresh("queue").await?;
    let path = format!("{base}/q");
    let producers = ctx.clients(2).await?;
    let consumers = ctx.clients(3).await?;
    const ITEMS: usize = 40;
    let mut futs: Vec<Task<'_, Vec<String>>> = Vec::new();
    for (p, client) in producers.iter().enumerate() {
        let path = path.clone();
        futs.push(Box::pin(async move {
            let q = Queue::new(client, &path);
            for i in 0..ITEMS {
                q.put(format!("p{p}-{i}")).await?;
            }
            Ok(Vec::new())
        }));
    }
    let produced = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    for client in &consumers {
        let path = path.clone();
        let produced = produced.clone();
        futs.push(Box::pin(async move {
            let q = Queue::new(client, &path);
            let mut got = Vec::new();
            // Consume until every item was taken by someone.
            while produced.load(std::sync::atomic::Ordering::SeqCst) < 2 * ITEMS {
                match q.get().await? {
                    Some(item) => {
                        got.push(String::from_utf8_lossy(&item).into_owned());
                        produced.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    }
                    None => client.sleep(Duration::from_millis(20)).await,
                }
            }
            Ok(got)
        }));
    }
    let results = ctx.within(SCENARIO_WAIT / 2, join_all(futs)).await?;
    let mut all = Vec::new();
    for r in results {
        all.extend(ok!(r));
    }
    let distinct: BTreeSet<&String> = all.iter().collect();
    check!(
        all.len() == 2 * ITEMS && distinct.len() == 2 * ITEMS,
        "{} items out, {} distinct, want {}",
        all.len(),
        distinct.len(),
        2 * ITEMS
    );
    for p in 0..2 {
        for i in 0..ITEMS {
            check!(distinct.contains(&format!("p{p}-{i}")), "p{p}-{i} lost");
        }
    }
    check!(ok!(Queue::new(&c, &path).len().await) == 0, "queue empty");
    for cl in producers.into_iter().chain(consumers) {
        cl.close().await;
    }
    c.close().await;
    Ok(())
}

/// Lower priority numbers come out first, then arrival order; put_all puts all; the layout is
/// kazoo's.
async fn queue_priorities_and_put_all(ctx: &Ctx) -> Outcome {
    let (c, base) = ctx.fresh("queue-priority").await?;
    let path = format!("{base}/q");
    let q = Queue::new(&c, &path);
    check!(ok!(q.get().await).is_none(), "an empty queue gives None");
    ok!(q.put("mid-1").await);
    ok!(q.put_with_priority("low", 500).await);
    ok!(q.put_with_priority("high", 1).await);
    ok!(q.put_all(["mid-2", "mid-3"], 100).await);
    match q.put_with_priority("x", 1000).await {
        Err(Error::InvalidArgument(_)) => {}
        other => return Err(format!("priority 1000 must fail, got {other:?}")),
    }
    check!(ok!(q.len().await) == 5, "len");
    let names = ok!(c.get_children(&path).await).to_vec();
    check!(
        names.iter().all(|n| n.starts_with("entry-")
            && n.len() == "entry-100-0000000000".len()
            && n.as_bytes()[9] == b'-'),
        "kazoo's names {names:?}"
    );
    let mut out = Vec::new();
    while let Some(item) = ok!(q.get().await) {
        out.push(String::from_utf8_lossy(&item).into_owned());
    }
    check!(
        out == ["high", "mid-1", "mid-2", "mid-3", "low"],
        "order {out:?}"
    );
    c.close().await;
    Ok(())
}

// ---- kazoo -----------------------------------------------------------------------------------

/// kazoo's side of the kazoo scenarios, one command per stdin line: `go` runs the increments
/// and puts and answers `produced`; `consume` takes items until the queue is empty, answering
/// `item <hex>` for each and then `consumed`; `party <path>` joins a Party at `path` and a
/// ShallowParty at `path-shallow` as `py` (`joined`); `members <path>` lists both
/// (`members <deep> <shallow>`, comma-separated, sorted); `double <path>` enters a 2-member
/// DoubleBarrier (`entered`), then leaves it (`left`).
const KAZOO_SCRIPT: &str = r#"
import sys
from kazoo.client import KazooClient
from kazoo.recipe.counter import Counter
from kazoo.recipe.queue import Queue
from kazoo.recipe.party import Party, ShallowParty
from kazoo.recipe.barrier import DoubleBarrier
hosts, base, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
zk = KazooClient(hosts=hosts, command_retry={"max_tries": -1})
zk.start(timeout=30)
def say(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()
say("ready")
for line in sys.stdin:
    cmd = line.strip()
    if cmd == "go":
        ints = Counter(zk, base + "/int")
        floats = Counter(zk, base + "/float", default=0.0)
        curator = Counter(zk, base + "/curator", support_curator=True)
        q = Queue(zk, base + "/queue")
        for i in range(n):
            ints += 1
            floats += 0.5
            curator += 1
            q.put(("py-%d" % i).encode(), priority=(i % 3) * 100)
        say("produced")
    elif cmd == "consume":
        q = Queue(zk, base + "/queue")
        while True:
            item = q.get()
            if item is None:
                break
            say("item " + item.hex())
        say("consumed")
    elif cmd.startswith("party "):
        path = cmd.split(" ", 1)[1]
        Party(zk, path, "py").join()
        ShallowParty(zk, path + "-shallow", "py").join()
        say("joined")
    elif cmd.startswith("members "):
        path = cmd.split(" ", 1)[1]
        deep = ",".join(sorted(Party(zk, path)))
        shallow = ",".join(sorted(ShallowParty(zk, path + "-shallow")))
        say("members %s %s" % (deep, shallow))
    elif cmd.startswith("double "):
        path = cmd.split(" ", 1)[1]
        db = DoubleBarrier(zk, path, 2, identifier="py")
        db.enter()
        say("entered")
        db.leave()
        say("left")
    elif cmd == "quit":
        break
zk.stop()
zk.close()
"#;

/// A kazoo process driven over stdin/stdout; its stdout lines are read on a thread and picked
/// up by polling, so the runtime is never blocked.
struct Kazoo {
    child: Child,
    stdin: ChildStdin,
    lines: Arc<Mutex<VecDeque<String>>>,
}

impl Kazoo {
    fn start(connect: &str, base: &str, n: usize) -> Result<Kazoo, String> {
        let mut child = Command::new(PYTHON)
            .args(["-c", KAZOO_SCRIPT, connect, base, &n.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot start {PYTHON}: {e} (run scripts/setup-zookeeper)"))?;
        let stdin = child.stdin.take().ok_or("no stdin")?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let lines = Arc::new(Mutex::new(VecDeque::new()));
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                sink.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push_back(line);
            }
        });
        Ok(Kazoo {
            child,
            stdin,
            lines,
        })
    }

    fn send(&mut self, cmd: &str) -> Outcome {
        writeln!(self.stdin, "{cmd}")
            .and_then(|()| self.stdin.flush())
            .map_err(|e| format!("writing to kazoo: {e}"))
    }

    /// The next line from kazoo, within `WAIT`; fails if the process exited (kazoo missing, a
    /// traceback on stderr).
    async fn line(&mut self, ctx: &Ctx) -> Result<String, String> {
        let start = Instant::now();
        loop {
            if let Some(l) = self
                .lines
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .pop_front()
            {
                return Ok(l);
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                if self.lines.lock().map(|l| l.is_empty()).unwrap_or(true) {
                    return Err(format!(
                        "kazoo exited with {status} (is python3-kazoo installed? run \
                         scripts/setup-zookeeper; its stderr is above)"
                    ));
                }
                continue;
            }
            if start.elapsed() > WAIT * 4 {
                return Err("no line from kazoo".into());
            }
            ctx.sleep(Duration::from_millis(20)).await;
        }
    }

    async fn expect(&mut self, ctx: &Ctx, want: &str) -> Outcome {
        let l = self.line(ctx).await?;
        check!(l == want, "kazoo said {l:?}, want {want:?}");
        Ok(())
    }
}

impl Drop for Kazoo {
    fn drop(&mut self) {
        let _ = writeln!(self.stdin, "quit");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// kazoo and this client increment the same counters (ASCII int, ASCII float, Curator's
/// 4 bytes) and fill the same queue at the same time, then both consume it at the same time:
/// the counts add up and every item comes out exactly once.
async fn kazoo_shares_counters_and_queue(ctx: &Ctx) -> Outcome {
    let (c, base) = ctx.fresh("kazoo").await?;
    const N: usize = 30;
    let mut kazoo = Kazoo::start(&ctx.connect, &base, N)?;
    kazoo.expect(ctx, "ready").await?;
    kazoo.send("go")?;

    let ints = Counter::new(&c, &format!("{base}/int"));
    let floats = Counter::with_default(&c, &format!("{base}/float"), 0.0);
    let curator = Counter::new(&c, &format!("{base}/curator")).support_curator();
    let q = Queue::new(&c, &format!("{base}/queue"));
    for i in 0..N {
        ok!(ints.add(1).await);
        ok!(floats.add(0.5).await);
        ok!(curator.add(1).await);
        ok!(q
            .put_with_priority(format!("rs-{i}"), ((i % 3) * 100) as u16)
            .await);
    }
    kazoo.expect(ctx, "produced").await?;
    check!(ok!(ints.value().await) == 2 * N as i64, "int counter");
    check!(ok!(floats.value().await) == N as f64, "float counter");
    check!(
        ok!(curator.value().await) == 2 * N as i64,
        "curator counter"
    );
    let shared = ok!(SharedCount::start(&c, &format!("{base}/curator"), 0).await);
    check!(
        ok!(shared.count().await) == 2 * N as i32,
        "SharedCount view"
    );

    kazoo.send("consume")?;
    let mut ours = Vec::new();
    while let Some(item) = ok!(q.get().await) {
        ours.push(String::from_utf8_lossy(&item).into_owned());
    }
    let mut theirs = Vec::new();
    loop {
        let l = kazoo.line(ctx).await?;
        if l == "consumed" {
            break;
        }
        let hex = l.strip_prefix("item ").ok_or(format!("kazoo said {l:?}"))?;
        let bytes = unhex(hex).ok_or(format!("bad hex {hex:?}"))?;
        theirs.push(String::from_utf8_lossy(&bytes).into_owned());
    }
    let mut count: BTreeMap<&str, usize> = BTreeMap::new();
    for s in ours.iter().chain(theirs.iter()) {
        *count.entry(s.as_str()).or_default() += 1;
    }
    for i in 0..N {
        for who in ["rs", "py"] {
            let name = format!("{who}-{i}");
            let n = count.get(name.as_str()).copied().unwrap_or(0);
            check!(
                n == 1,
                "{name} came out {n} times (ours {ours:?}, kazoo's {theirs:?})"
            );
        }
    }
    check!(count.len() == 2 * N, "unexpected items {count:?}");
    c.close().await;
    Ok(())
}

// ---- barriers --------------------------------------------------------------------------------

/// Waiters on several sessions all go on once the barrier is removed; a barrier not in place
/// does not hold anyone; wait_timeout gives false while it stays.
async fn barrier_releases_every_waiter(ctx: &Ctx) -> Outcome {
    let (c, base) = ctx.fresh("barrier").await?;
    let path = format!("{base}/b");
    let b = Barrier::new(&c, &path);
    ok!(b.wait().await); // not in place: no wait
    ok!(b.create().await);
    check!(
        !ok!(b.wait_timeout(Duration::from_millis(200)).await),
        "the barrier is in place"
    );
    let clients = ctx.clients(3).await?;
    let released = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut futs: Vec<Task<'_, ()>> = Vec::new();
    for cl in &clients {
        let (path, released) = (path.clone(), released.clone());
        futs.push(Box::pin(async move {
            Barrier::new(cl, &path).wait().await?;
            released.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Ok(())
        }));
    }
    futs.push(Box::pin(async {
        // Give the waiters a chance to be waiting (they pass either way once it is removed).
        c.sleep(Duration::from_millis(300)).await;
        check_released(&released, 0)?;
        if !b.remove().await? {
            return Err(Error::InvalidArgument("remove found no barrier".into()));
        }
        Ok(())
    }));
    for r in ctx.within(WAIT, join_all(futs)).await? {
        ok!(r);
    }
    check!(
        released.load(std::sync::atomic::Ordering::SeqCst) == 3,
        "every waiter released"
    );
    check!(!ok!(b.remove().await), "a second remove finds nothing");
    for cl in clients {
        cl.close().await;
    }
    c.close().await;
    Ok(())
}

/// Nobody may pass a barrier still in place.
fn check_released(released: &std::sync::atomic::AtomicUsize, want: usize) -> Result<(), Error> {
    let n = released.load(std::sync::atomic::Ordering::SeqCst);
    if n != want {
        return Err(Error::InvalidArgument(format!(
            "{n} waiters passed a barrier in place"
        )));
    }
    Ok(())
}

/// Members on several sessions: nobody gets past `enter` before all have arrived, and nobody
/// gets past `leave` before every member node is gone.
async fn double_barrier_enters_and_leaves_together(ctx: &Ctx) -> Outcome {
    let (c, base) = ctx.fresh("double-barrier").await?;
    let path = format!("{base}/db");
    const N: usize = 3;
    let clients = ctx.clients(N).await?;
    let arrived = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut futs: Vec<Task<'_, (usize, Vec<String>)>> = Vec::new();
    for (i, cl) in clients.iter().enumerate() {
        let (path, arrived) = (path.clone(), arrived.clone());
        futs.push(Box::pin(async move {
            let m = DoubleBarrier::new(cl, &path, N).identifier(format!("member-{i}"));
            // Arrive one after another, so an early member would see the others missing.
            cl.sleep(Duration::from_millis(100 * i as u64)).await;
            arrived.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            m.enter().await?;
            let seen = arrived.load(std::sync::atomic::Ordering::SeqCst);
            // Leave in the opposite order, so some members wait in leave for others.
            cl.sleep(Duration::from_millis(100 * (N - i) as u64)).await;
            m.leave().await?;
            let left: Vec<String> = cl.get_children(&path).await?.to_vec();
            Ok((seen, left))
        }));
    }
    for r in ctx.within(WAIT, join_all(futs)).await? {
        let (seen, left) = ok!(r);
        check!(seen == N, "passed enter with {seen} of {N} members arrived");
        check!(
            left.iter().all(|n| n == "ready") && !left.iter().any(|n| n.len() == 32),
            "passed leave with members still there: {left:?}"
        );
    }
    for cl in clients {
        cl.close().await;
    }
    c.close().await;
    Ok(())
}

/// An `enter` that can never complete, cancelled: its member node goes away.
async fn cancelled_double_barrier_enter_leaves_nothing(ctx: &Ctx) -> Outcome {
    let (c, base) = ctx.fresh("double-barrier-cancel").await?;
    let path = format!("{base}/db");
    let m = DoubleBarrier::new(&c, &path, 5);
    let node = m.node_path().to_owned();
    // Enter (it cannot complete: 1 of 5) until its node exists, then cancel it by dropping it.
    let appears = ctx.eventually("the member node appears", || async {
        Ok(c.exists(&node).await.map_err(|e| e.to_string())?.is_some())
    });
    match race(m.enter(), appears).await {
        Either::Right(r) => r?,
        Either::Left(r) => return Err(format!("enter completed alone: {r:?}")),
    }
    ctx.eventually("the cancelled member's node is deleted", || async {
        Ok(c.exists(&node).await.map_err(|e| e.to_string())?.is_none())
    })
    .await?;
    check!(!m.is_participating(), "not participating");
    c.close().await;
    Ok(())
}

// ---- party -----------------------------------------------------------------------------------

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// Members join and leave; an expired member's node vanishes with its session; a dropped member
/// leaves.
async fn party_membership_tracks_sessions(ctx: &Ctx) -> Outcome {
    let (c, base) = ctx.fresh("party").await?;
    let path = format!("{base}/p");
    let observer = Party::new(&c, &path, "observer");
    check!(ok!(observer.members().await).is_empty(), "empty party");
    let mut clients = ctx.clients(3).await?;
    let (victim, relay) = relayed_client(ctx).await?;
    clients[1] = victim;
    let members: Vec<Party> = clients
        .iter()
        .enumerate()
        .map(|(i, cl)| Party::new(cl, &path, &format!("m{i}")))
        .collect();
    for m in &members {
        ok!(m.join().await);
        ok!(m.join().await); // twice is fine
    }
    let names = sorted(ok!(observer.members().await));
    check!(names == ["m0", "m1", "m2"], "members {names:?}");
    check!(ok!(observer.len().await) == 3, "len");

    check!(ok!(members[0].leave().await), "m0 was in the party");
    check!(!ok!(members[0].leave().await), "m0 left already");
    let names = sorted(ok!(observer.members().await));
    check!(names == ["m1", "m2"], "after m0 left {names:?}");

    expire(ctx, &clients[1], &relay).await?;
    ctx.eventually("the expired member vanishes", || async {
        let names = sorted(observer.members().await.map_err(|e| e.to_string())?);
        Ok(names == ["m2"])
    })
    .await?;

    let mut members = members;
    drop(members.pop());
    ctx.eventually("a dropped member leaves", || async {
        observer.is_empty().await.map_err(|e| e.to_string())
    })
    .await?;
    drop(members);
    for cl in clients {
        cl.close().await;
    }
    c.close().await;
    Ok(())
}

/// ShallowParty: identifiers in node names (kazoo's layout), one listing; a closed session's
/// member goes.
async fn shallow_party_lists_names(ctx: &Ctx) -> Outcome {
    let (c, base) = ctx.fresh("shallow-party").await?;
    let path = format!("{base}/p");
    let other = ctx.client().await?;
    let a = ShallowParty::new(&c, &path, "alpha");
    let b = ShallowParty::new(&other, &path, "beta-2");
    ok!(a.join().await);
    ok!(b.join().await);
    let names = sorted(ok!(a.members().await));
    check!(names == ["alpha", "beta-2"], "members {names:?}");
    let kids = ok!(c.get_children(&path).await).to_vec();
    check!(
        kids.iter()
            .all(|k| k.len() > 33 && k.as_bytes()[32] == b'-'),
        "kazoo's names {kids:?}"
    );
    match ShallowParty::new(&c, &path, "bad/name").join().await {
        Err(Error::InvalidPath { .. }) => {}
        r => return Err(format!("a '/' in the identifier: {r:?}")),
    }
    other.close().await;
    let names = ok!(a.members().await);
    check!(names == ["alpha"], "after beta's session closed {names:?}");
    drop(b);
    c.close().await;
    Ok(())
}

// ---- zk-blocking ---------------------------------------------------------------------------

/// zk-blocking's wrappers on plain threads: counter increments from several threads and
/// sessions add up; queue items come out once each; a barrier releases its waiters; a double
/// barrier lets all members through; a party lists its members.
#[test]
fn blocking_recipes_on_zookeeper_3_9() {
    let ens = Ensemble::start(EnsembleOptions::standalone(ZkVersion::V3_9))
        .unwrap_or_else(|e| panic!("starting ZooKeeper 3.9: {e}"));
    let connect = ens.connect_string();
    let client = || {
        zk_blocking::Client::builder(&connect)
            .connect_timeout(WAIT)
            .connect()
            .expect("connect")
    };
    let c = client();
    let base = "/coord-blocking";
    match c.delete(base).recursive().run() {
        Ok(()) | Err(Error::NoNode { .. }) => {}
        Err(e) => panic!("cleaning {base}: {e}"),
    }
    let counter_path = format!("{base}/counter");
    let queue_path = format!("{base}/queue");
    let barrier_path = format!("{base}/barrier");
    let double_path = format!("{base}/double");
    zk_blocking::recipes::Barrier::new(&c, &barrier_path)
        .create()
        .expect("barrier");

    let taken = std::thread::scope(|s| {
        let mut handles = Vec::new();
        for t in 0..3 {
            let (connect, counter_path, queue_path, barrier_path, double_path) = (
                &connect,
                &counter_path,
                &queue_path,
                &barrier_path,
                &double_path,
            );
            handles.push(s.spawn(move || {
                let c = zk_blocking::Client::builder(connect)
                    .connect_timeout(WAIT)
                    .connect()
                    .expect("connect");
                let counter = zk_blocking::recipes::Counter::new(&c, counter_path);
                let q = zk_blocking::recipes::Queue::new(&c, queue_path);
                for i in 0..10 {
                    counter.add(1).expect("add");
                    q.put(format!("t{t}-{i}")).expect("put");
                }
                zk_blocking::recipes::Barrier::new(&c, barrier_path)
                    .wait()
                    .expect("barrier wait");
                let db = zk_blocking::recipes::DoubleBarrier::new(&c, double_path, 3);
                db.enter().expect("enter");
                let mut got = Vec::new();
                while let Some(item) = q.get().expect("get") {
                    got.push(String::from_utf8_lossy(&item).into_owned());
                }
                db.leave().expect("leave");
                c.close();
                got
            }));
        }
        // Every thread has put its items once the counter reads 30; then let them go.
        let counter = zk_blocking::recipes::Counter::new(&c, &counter_path);
        while counter.value().expect("value") < 30 {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(zk_blocking::recipes::Barrier::new(&c, &barrier_path)
            .remove()
            .expect("remove"));
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("a worker thread"))
            .collect::<Vec<_>>()
    });
    assert_eq!(
        zk_blocking::recipes::Counter::new(&c, &counter_path)
            .value()
            .expect("value"),
        30
    );
    let distinct: BTreeSet<&String> = taken.iter().collect();
    assert_eq!(taken.len(), 30, "items taken: {taken:?}");
    assert_eq!(distinct.len(), 30, "items taken twice: {taken:?}");

    let party_path = format!("{base}/party");
    let a = zk_blocking::recipes::Party::new(&c, &party_path, "a");
    let other = client();
    let b = zk_blocking::recipes::Party::new(&other, &party_path, "b");
    a.join().expect("join");
    b.join().expect("join");
    assert_eq!(sorted(a.members().expect("members")), ["a", "b"]);
    other.close();
    assert_eq!(a.members().expect("members"), ["a"]);

    let kept = format!("{base}/kept");
    let node = zk_blocking::recipes::PersistentNode::start(
        &c,
        zk_blocking::recipes::NodeMode::Ephemeral,
        false,
        &kept,
        "k",
    )
    .expect("start");
    assert!(node.wait_for_initial_create(WAIT).expect("created"));
    let deleter = client();
    deleter.delete(&kept).run().expect("delete");
    let start = Instant::now();
    while deleter.exists(&kept).run().expect("exists").is_none() {
        assert!(start.elapsed() < WAIT, "not re-created");
        std::thread::sleep(Duration::from_millis(20));
    }
    node.close();
    assert!(deleter.exists(&kept).run().expect("exists").is_none());

    let mut cache = zk_blocking::recipes::SubtreeCache::new(&c, &queue_path);
    // The first read comes as Created events, then Initialized.
    loop {
        match cache.next() {
            Some(Ok(CacheEvent::Initialized)) => break,
            Some(Ok(CacheEvent::Created(_))) => {}
            other => panic!("cache event {other:?}"),
        }
    }
    deleter
        .create(&format!("{queue_path}/new"), "n")
        .run()
        .expect("create");
    loop {
        match cache.next() {
            Some(Ok(CacheEvent::Created(n))) if n.path.ends_with("/new") => break,
            Some(Ok(_)) => {}
            other => panic!("cache event {other:?}"),
        }
    }
    assert_eq!(
        cache
            .view()
            .get(&format!("{queue_path}/new"))
            .map(|n| n.data),
        Some(zk_client::Bytes::from_static(b"n"))
    );
    deleter.close();
    c.close();
}

// ---- persistent node -------------------------------------------------------------------------

/// The stat of `path` as `c` sees it, if the node exists.
async fn stat_of(c: &Client, path: &str) -> Result<Option<zk_client::Stat>, String> {
    c.exists(path)
        .await
        .map_err(|e| format!("exists {path}: {e}"))
}

/// An ephemeral PersistentNode comes back after another client deletes it and after its
/// session expires (in the client's next session), carries data set since, and goes with
/// close, drop, and the client's close.
async fn persistent_node_comes_back(ctx: &Ctx) -> Outcome {
    let (other, base) = ctx.fresh("persistent-node").await?;
    let (c, relay) = relayed_client(ctx).await?;
    let path = format!("{base}/deep/eph");
    let node = ok!(PersistentNode::start(
        &c,
        NodeMode::Ephemeral,
        false,
        &path,
        "v1"
    ));
    check!(ok!(node.wait_for_initial_create(WAIT).await), "created");
    check!(
        node.actual_path().as_deref() == Some(path.as_str()),
        "actual path"
    );
    let session = c.client_id().ok_or("no session")?.id;
    let st = stat_of(&other, &path).await?.ok_or("not created")?;
    check!(st.ephemeral_owner == session, "owned by the node's session");

    ok!(other.delete(&path).await);
    ctx.eventually("re-created after a delete", || async {
        Ok(stat_of(&other, &path).await?.is_some())
    })
    .await?;
    ok!(node.set_data("v2").await);
    let (d, _) = ok!(other.get_data(&path).await);
    check!(&d[..] == b"v2", "set_data {d:?}");

    expire(ctx, &c, &relay).await?;
    ctx.eventually("re-created in the next session", || async {
        let Some(new) = c.client_id() else {
            return Ok(false);
        };
        Ok(stat_of(&other, &path)
            .await?
            .is_some_and(|st| st.ephemeral_owner == new.id && new.id != session))
    })
    .await?;
    let (d, _) = ok!(other.get_data(&path).await);
    check!(&d[..] == b"v2", "re-created with the latest data {d:?}");

    node.close().await;
    check!(stat_of(&other, &path).await?.is_none(), "close deletes it");

    let dropped = format!("{base}/dropped");
    let node = ok!(PersistentNode::start(
        &c,
        NodeMode::Persistent,
        false,
        &dropped,
        ""
    ));
    check!(ok!(node.wait_for_initial_create(WAIT).await), "created");
    drop(node);
    ctx.eventually("dropping the handle deletes it", || async {
        Ok(stat_of(&other, &dropped).await?.is_none())
    })
    .await?;

    let last = ok!(PersistentNode::start(
        &c,
        NodeMode::Ephemeral,
        false,
        &path,
        ""
    ));
    check!(ok!(last.wait_for_initial_create(WAIT).await), "created");
    c.close().await;
    ctx.eventually("the task ends when the client closes", || async {
        Ok(!last.is_running())
    })
    .await?;
    check!(
        stat_of(&other, &path).await?.is_none(),
        "gone with the session"
    );
    other.close().await;
    Ok(())
}

/// A protected sequential node: Curator's `_c_{guid}-` name with a sequence suffix, and a new
/// node when the old one is deleted.
async fn persistent_sequential_node_is_protected_and_replaced(ctx: &Ctx) -> Outcome {
    let (c, base) = ctx.fresh("persistent-sequential").await?;
    let other = ctx.client().await?;
    let node = ok!(PersistentNode::start(
        &c,
        NodeMode::EphemeralSequential,
        true,
        &format!("{base}/member-"),
        "m"
    ));
    check!(ok!(node.wait_for_initial_create(WAIT).await), "created");
    let first = node.actual_path().ok_or("no actual path")?;
    let name = first.rsplit('/').next().unwrap_or_default();
    check!(
        name.starts_with("_c_")
            && name.len() == "_c_".len() + 32 + "-member-".len() + 10
            && name[3 + 32..].starts_with("-member-"),
        "protected sequential name {name}"
    );
    ok!(other.delete(&first).await);
    ctx.eventually("a new node replaces the deleted one", || async {
        let Some(now) = node.actual_path() else {
            return Ok(false);
        };
        Ok(now != first && stat_of(&other, &now).await?.is_some())
    })
    .await?;
    let kids = ok!(other.get_children(&base).await);
    check!(kids.len() == 1, "one node at a time {kids:?}");
    node.close().await;
    check!(ok!(other.get_children(&base).await).is_empty(), "closed");
    other.close().await;
    c.close().await;
    Ok(())
}

/// PersistentTtlNode: a container with the data, a TTL child that is touched, re-created after
/// a delete; close stops the task and leaves the node to its TTL.
async fn persistent_ttl_node_keeps_its_container(ctx: &Ctx) -> Outcome {
    let (c, base) = ctx.fresh("persistent-ttl").await?;
    let other = ctx.client().await?;
    let path = format!("{base}/ttl");
    let touch = format!("{path}/touch");
    let node = ok!(PersistentTtlNode::start(
        &c,
        &path,
        Duration::from_millis(400),
        "t"
    ));
    check!(ok!(node.wait_for_initial_create(WAIT).await), "created");
    ctx.eventually("the TTL child is created", || async {
        Ok(stat_of(&other, &touch).await?.is_some())
    })
    .await?;
    let (d, _) = ok!(other.get_data(&path).await);
    check!(&d[..] == b"t", "data {d:?}");
    ok!(other.delete(&path).recursive().await);
    ctx.eventually("re-created after a delete", || async {
        Ok(stat_of(&other, &path).await?.is_some())
    })
    .await?;
    node.close().await;
    other.close().await;
    c.close().await;
    Ok(())
}

// ---- group member ----------------------------------------------------------------------------

/// Members on separate sessions see each other with their payloads; a payload change shows; a
/// member whose session expired is back (in its next session); a closed member is gone.
async fn group_members_see_each_other(ctx: &Ctx) -> Outcome {
    let (c, base) = ctx.fresh("group").await?;
    let path = format!("{base}/members");
    let (other, relay) = relayed_client(ctx).await?;
    let a = ok!(GroupMember::start(&c, &path, "a", "pa"));
    let b = ok!(GroupMember::start(&other, &path, "b", "pb"));
    check!(ok!(a.wait_for_initial_create(WAIT).await), "a created");
    check!(ok!(b.wait_for_initial_create(WAIT).await), "b created");
    let want = |pairs: &[(&str, &str)]| -> BTreeMap<String, zk_client::Bytes> {
        pairs
            .iter()
            .map(|(k, v)| {
                (
                    k.to_string(),
                    zk_client::Bytes::copy_from_slice(v.as_bytes()),
                )
            })
            .collect()
    };
    let m = ok!(a.current_members().await);
    check!(m == want(&[("a", "pa"), ("b", "pb")]), "members {m:?}");
    ok!(b.set_this_data("pb2").await);
    let m = ok!(a.current_members().await);
    check!(
        m == want(&[("a", "pa"), ("b", "pb2")]),
        "after set_this_data {m:?}"
    );

    expire(ctx, &other, &relay).await?;
    ctx.eventually("b is back in its next session", || async {
        let m = a.current_members().await.map_err(|e| e.to_string())?;
        Ok(m == want(&[("a", "pa"), ("b", "pb2")]))
    })
    .await?;
    b.close().await;
    let m = ok!(a.current_members().await);
    check!(m == want(&[("a", "pa")]), "after b closed {m:?}");
    check!(
        GroupMember::id_from_path(&format!("{path}/b")) == "b",
        "id_from_path"
    );
    match GroupMember::start(&c, &path, "x/y", "") {
        Err(Error::InvalidPath { .. }) => {}
        r => return Err(format!("an id with '/': {r:?}")),
    }
    a.close().await;
    other.close().await;
    c.close().await;
    Ok(())
}

// ---- subtree cache ---------------------------------------------------------------------------

/// The subtree at `root` as `c` reads it now: path to data.
async fn tree_of(c: &Client, root: &str) -> Result<BTreeMap<String, Vec<u8>>, String> {
    let mut out = BTreeMap::new();
    let mut todo = vec![root.to_owned()];
    while let Some(p) = todo.pop() {
        let (data, _) = match c.get_data(&p).await {
            Ok(d) => d,
            Err(Error::NoNode { .. }) => continue,
            Err(e) => return Err(format!("read {p}: {e}")),
        };
        match c.get_children(&p).await {
            Ok(kids) => todo.extend(
                kids.iter()
                    .map(|k| format!("{}/{k}", p.trim_end_matches('/'))),
            ),
            Err(Error::NoNode { .. }) => continue,
            Err(e) => return Err(format!("list {p}: {e}")),
        }
        out.insert(p, data.to_vec());
    }
    Ok(out)
}

/// What a subtree cache holds: path to data.
fn cached(cache: &SubtreeCache) -> BTreeMap<String, Vec<u8>> {
    cache
        .snapshot()
        .into_iter()
        .map(|(p, n)| (p, n.data.to_vec()))
        .collect()
}

/// Polls the cache until it holds exactly what `reader` reads under its root (a second read
/// after a match makes sure the tree is not moving), returning the events seen.
async fn converge(
    ctx: &Ctx,
    cache: &mut SubtreeCache,
    reader: &Client,
) -> Result<Vec<CacheEvent>, String> {
    let root = cache.root().to_owned();
    let mut seen = Vec::new();
    let start = Instant::now();
    loop {
        let want = tree_of(reader, &root).await?;
        if cached(cache) == want && cache.view().is_initialized() {
            // The events of what is cached are queued by now: take them too.
            while let Some(ev) = std::future::poll_fn(|cx| {
                Poll::Ready(match Pin::new(&mut *cache).poll_next(cx) {
                    Poll::Ready(Some(ev)) => Some(ev),
                    _ => None,
                })
            })
            .await
            {
                seen.push(ok!(ev));
            }
            return Ok(seen);
        }
        if start.elapsed() > WAIT {
            return Err(format!(
                "the cache did not converge:\n cache {:?}\n tree  {want:?}\n events {seen:?}",
                cached(cache)
            ));
        }
        // Wait for the cache to move (or a little, if it already has every event).
        match ctx
            .within(
                Duration::from_millis(200),
                std::future::poll_fn(|cx| Pin::new(&mut *cache).poll_next(cx)),
            )
            .await
        {
            Ok(Some(ev)) => seen.push(ok!(ev)),
            Ok(None) => return Err("the cache stream ended".into()),
            Err(_) => {}
        }
    }
}

/// Makes a spread of changes under `root`: creates, data changes, deletes, a recursive delete,
/// a re-created node, deep nodes. Each step is retried through connection losses (a failover
/// may be going on) and is idempotent, so a retry of an applied step is harmless.
async fn churn(c: &Client, root: &str, round: u32) -> Outcome {
    let create = |path: String, data: String| async move {
        c.retry(|c| {
            let (path, data) = (path.clone(), data.clone());
            async move {
                match c.create(&path, data).make_parents().await {
                    Ok(_) | Err(Error::NodeExists { .. }) => Ok(()),
                    Err(e) => Err(e),
                }
            }
        })
        .await
        .map_err(|e| format!("create {path}: {e}"))
    };
    let delete = |path: String, recursive: bool| async move {
        c.retry(|c| {
            let path = path.clone();
            async move {
                let d = c.delete(&path);
                let d = if recursive { d.recursive() } else { d };
                match d.await {
                    Ok(()) | Err(Error::NoNode { .. }) => Ok(()),
                    Err(e) => Err(e),
                }
            }
        })
        .await
        .map_err(|e| format!("delete {path}: {e}"))
    };
    create(format!("{root}/a/x{round}/deep"), format!("d{round}")).await?;
    let a = format!("{root}/a");
    c.retry(|c| {
        let a = a.clone();
        async move { c.set_data(&a, format!("a{round}")).await }
    })
    .await
    .map_err(|e| format!("set {a}: {e}"))?;
    create(format!("{root}/b{round}"), String::new()).await?;
    delete(format!("{root}/b{}", round.wrapping_sub(1)), false).await?;
    delete(format!("{root}/gone"), true).await?;
    create(format!("{root}/gone/1/2"), format!("g{round}")).await?;
    Ok(())
}

async fn subtree_cache_scenario(ctx: &Ctx, name: &str, one_shot: bool) -> Outcome {
    let (other, base) = ctx.fresh(name).await?;
    let c = ctx.client().await?;
    let root = format!("{base}/root");
    // The root does not exist yet: the cache is empty, then follows its creation.
    let mut cache = if one_shot {
        SubtreeCache::with_one_shot_watches(&c, &root)
    } else {
        SubtreeCache::new(&c, &root)
    };
    let first = ok!(ctx.next(&mut cache).await?);
    check!(first == CacheEvent::Initialized, "first event {first:?}");
    check!(cache.is_empty(), "nothing under a missing root");
    ok!(other.create(&format!("{root}/a"), "a").make_parents().await);
    let seen = converge(ctx, &mut cache, &other).await?;
    check!(
        seen.iter()
            .any(|e| matches!(e, CacheEvent::Created(n) if n.path == format!("{root}/a"))),
        "a Created event for the new node: {seen:?}"
    );
    for round in 0..3 {
        churn(&other, &root, round).await?;
        converge(ctx, &mut cache, &other).await?;
    }
    ok!(other.set_data(&format!("{root}/a"), "changed").await);
    let seen = converge(ctx, &mut cache, &other).await?;
    check!(
        seen.iter()
            .any(|e| matches!(e, CacheEvent::Changed { new, .. } if &new.data[..] == b"changed")),
        "a Changed event: {seen:?}"
    );
    ok!(other.delete(&root).recursive().await);
    let seen = converge(ctx, &mut cache, &other).await?;
    check!(cache.is_empty(), "the root went");
    check!(
        seen.iter()
            .any(|e| matches!(e, CacheEvent::Deleted(n) if n.path == root)),
        "a Deleted event for the root: {seen:?}"
    );
    // The stream ends when the client closes.
    c.close().await;
    loop {
        match ctx
            .within(
                WAIT,
                std::future::poll_fn(|cx| Pin::new(&mut cache).poll_next(cx)),
            )
            .await?
        {
            None => break,
            Some(Ok(_)) => {}
            Some(Err(Error::Closed)) => {}
            Some(Err(e)) => return Err(format!("error item after close: {e}")),
        }
    }
    other.close().await;
    Ok(())
}

/// The recursive-watch cache follows creates, changes and deletes by another client.
async fn subtree_cache_follows_another_client(ctx: &Ctx) -> Outcome {
    subtree_cache_scenario(ctx, "subtree-cache", false).await
}

/// On a server without addWatch, [`SubtreeCache::new`] itself ends up on one-shot watches.
async fn subtree_cache_falls_back_without_add_watch(ctx: &Ctx) -> Outcome {
    let c = ctx.client().await?;
    match c
        .add_watch("/", zk_client::AddWatchMode::PersistentRecursive)
        .await
    {
        Err(Error::Unsupported { .. }) | Err(Error::Unimplemented) => {}
        r => return Err(format!("this server must refuse addWatch: {r:?}")),
    }
    c.close().await;
    subtree_cache_scenario(ctx, "subtree-cache-fallback", false).await
}

/// The same on one-shot watches (the fallback for 3.5 servers).
async fn subtree_cache_on_one_shot_watches_follows_another_client(ctx: &Ctx) -> Outcome {
    subtree_cache_scenario(ctx, "subtree-cache-one-shot", true).await
}

/// Changes made while the cache's client is cut off (the same session reconnects afterwards:
/// a Resync for the recursive watch, catch-up events for one-shot watches) are in the cache
/// once it is back, in both modes.
async fn subtree_cache_converges_after_a_disconnect(ctx: &Ctx) -> Outcome {
    let (other, base) = ctx.fresh("subtree-cache-disconnect").await?;
    for one_shot in [false, true] {
        let root = format!("{base}/{one_shot}");
        churn(&other, &root, 0).await?;
        let (c, relay) = relayed_client(ctx).await?;
        let session = c.client_id().ok_or("no session")?.id;
        let mut cache = if one_shot {
            SubtreeCache::with_one_shot_watches(&c, &root)
        } else {
            SubtreeCache::new(&c, &root)
        };
        converge(ctx, &mut cache, &other).await?;
        let mut states = c.state_changes();
        relay.cut();
        loop {
            if ctx.next(&mut states).await? == zk_client::SessionState::Suspended {
                break;
            }
        }
        for round in 1..3 {
            churn(&other, &root, round).await?;
        }
        relay.heal();
        loop {
            let s = ctx
                .next(&mut states)
                .await
                .map_err(|e| format!("waiting for Connected: {e}"))?;
            if s.is_connected() {
                break;
            }
        }
        converge(ctx, &mut cache, &other).await?;
        check!(
            c.client_id().map(|s| s.id) == Some(session),
            "the same session came back"
        );
        c.close().await;
    }
    other.close().await;
    Ok(())
}

/// Changes made while the cache's session expired are in the cache once the client is in its
/// next session, in both modes.
async fn subtree_cache_converges_after_session_expiry(ctx: &Ctx) -> Outcome {
    let (other, base) = ctx.fresh("subtree-cache-expiry").await?;
    for one_shot in [false, true] {
        let root = format!("{base}/{one_shot}");
        churn(&other, &root, 0).await?;
        let (c, relay) = relayed_client(ctx).await?;
        let mut cache = if one_shot {
            SubtreeCache::with_one_shot_watches(&c, &root)
        } else {
            SubtreeCache::new(&c, &root)
        };
        converge(ctx, &mut cache, &other).await?;
        relay.cut();
        for round in 1..3 {
            churn(&other, &root, round).await?;
        }
        relay.heal();
        expire(ctx, &c, &relay).await?;
        churn(&other, &root, 3).await?;
        converge(ctx, &mut cache, &other).await?;
        c.close().await;
    }
    other.close().await;
    Ok(())
}

// ---- on an ensemble --------------------------------------------------------------------------

/// Restarts any node a failed run left down, so every run starts with three serving nodes.
fn heal(ens: &mut Ensemble) -> Outcome {
    for i in 0..ens.size() {
        let (paused, running) = {
            let n = &ens.nodes()[i];
            (n.is_paused(), n.is_running())
        };
        if paused {
            ens.resume(i).map_err(|e| format!("resume node {i}: {e}"))?;
        } else if !running {
            ens.restart(i)
                .map_err(|e| format!("restart node {i}: {e}"))?;
        }
    }
    ens.wait_all_ready().map_err(|e| format!("{e}"))
}

/// Subtree caches in both watch modes converge after the server under their client is killed
/// (kill -9) and the client resumes its session on another server, with changes made around
/// the failover by a client on another server.
async fn caches_converge_after_a_server_kill(ctx: &Ctx) -> Outcome {
    let ens = ctx.ensemble.clone().ok_or("no ensemble")?;
    let lock = || ens.lock().unwrap_or_else(|e| e.into_inner());
    heal(&mut lock())?;
    let (c, base) = ctx.fresh("failover").await?;
    let session = c.client_id().ok_or("no session")?.id;
    let victim = {
        let port = c.current_host().ok_or("not connected")?.port;
        lock()
            .nodes()
            .iter()
            .position(|n| n.port() == port)
            .ok_or("no node on the client's port")?
    };
    // The other client is on a surviving node, so its changes go on during the failover.
    let survivors: Vec<String> = {
        let ens = lock();
        ens.nodes()
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != victim)
            .map(|(_, n)| format!("127.0.0.1:{}", n.port()))
            .collect()
    };
    let other = ClientBuilder::new(ctx.rt.clone(), &survivors.join(","))
        .session_timeout(Duration::from_secs(6))
        .connect_timeout(WAIT)
        .connect()
        .await
        .map_err(|e| format!("connect to the survivors: {e}"))?;
    let (r1, r2) = (format!("{base}/recursive"), format!("{base}/one-shot"));
    churn(&other, &r1, 0).await?;
    churn(&other, &r2, 0).await?;
    let mut recursive = SubtreeCache::new(&c, &r1);
    let mut one_shot = SubtreeCache::with_one_shot_watches(&c, &r2);
    converge(ctx, &mut recursive, &other).await?;
    converge(ctx, &mut one_shot, &other).await?;

    let mut states = c.state_changes();
    lock()
        .kill(victim)
        .map_err(|e| format!("kill node {victim}: {e}"))?;
    for round in 1..3 {
        churn(&other, &r1, round).await?;
        churn(&other, &r2, round).await?;
    }
    loop {
        if ctx.next(&mut states).await?.is_connected() {
            break;
        }
    }
    check!(
        c.client_id().map(|s| s.id) == Some(session),
        "the session survived the failover"
    );
    churn(&other, &r1, 3).await?;
    churn(&other, &r2, 3).await?;
    converge(ctx, &mut recursive, &other).await?;
    converge(ctx, &mut one_shot, &other).await?;
    {
        let mut ens = lock();
        ens.restart(victim)
            .map_err(|e| format!("restart node {victim}: {e}"))?;
        ens.wait_all_ready().map_err(|e| format!("{e}"))?;
    }
    drop((recursive, one_shot));
    other.close().await;
    c.close().await;
    Ok(())
}

// ---- tree cache and patient children watch ---------------------------------------------------

/// The next TreeCache event.
async fn next_tree_event(ctx: &Ctx, cache: &mut TreeCache) -> Result<TreeEvent, String> {
    Ok(ok!(ctx.next(cache).await?))
}

/// kazoo's TreeCache: the first read ends with Initialized; another client's changes come as
/// NodeAdded/NodeUpdated/NodeRemoved and show in get_data/get_children; a disconnect comes as
/// ConnectionSuspended then ConnectionReconnected, and changes made meanwhile reach the cache.
async fn tree_cache_follows_changes_and_the_connection(ctx: &Ctx) -> Outcome {
    let (other, base) = ctx.fresh("tree-cache").await?;
    let root = format!("{base}/root");
    ok!(other.create(&format!("{root}/a"), "a").make_parents().await);
    ok!(other.create(&format!("{root}/b"), "b").await);
    let (c, relay) = relayed_client(ctx).await?;
    let mut cache = TreeCache::start(&c, &root);
    let mut added = BTreeSet::new();
    loop {
        match next_tree_event(ctx, &mut cache).await? {
            TreeEvent::NodeAdded(n) => {
                added.insert(n.path);
            }
            TreeEvent::Initialized => break,
            other => return Err(format!("before Initialized: {other:?}")),
        }
    }
    check!(
        added.len() == 3,
        "the first read added root, a, b: {added:?}"
    );
    let kids = cache.get_children(&root).ok_or("root not cached")?;
    check!(
        kids == BTreeSet::from(["a".to_owned(), "b".to_owned()]),
        "children {kids:?}"
    );
    check!(
        cache.get_data(&format!("{root}/a")).map(|n| n.data) == Some("a".into()),
        "data of a"
    );

    // One change at a time: changes close together may fold (a node created and deleted
    // before the cache reads it never shows), as in kazoo.
    ok!(other.create(&format!("{root}/a/c"), "c").await);
    match next_tree_event(ctx, &mut cache).await? {
        TreeEvent::NodeAdded(n) if n.path.ends_with("/a/c") => {}
        ev => return Err(format!("want c added, got {ev:?}")),
    }
    check!(
        cache.get_children(&format!("{root}/a")) == Some(BTreeSet::from(["c".to_owned()])),
        "a has c"
    );
    ok!(other.set_data(&format!("{root}/b"), "b2").await);
    match next_tree_event(ctx, &mut cache).await? {
        TreeEvent::NodeUpdated(n) if n.path.ends_with("/b") && &n.data[..] == b"b2" => {}
        ev => return Err(format!("want b updated, got {ev:?}")),
    }
    ok!(other.delete(&format!("{root}/a/c")).await);
    match next_tree_event(ctx, &mut cache).await? {
        TreeEvent::NodeRemoved(n) if n.path.ends_with("/a/c") => {}
        ev => return Err(format!("want c removed, got {ev:?}")),
    }
    check!(
        cache.get_children(&format!("{root}/a")) == Some(BTreeSet::new()),
        "a has no children again"
    );

    relay.cut();
    loop {
        if next_tree_event(ctx, &mut cache).await? == TreeEvent::ConnectionSuspended {
            break;
        }
    }
    ok!(other.create(&format!("{root}/while-away"), "w").await);
    relay.heal();
    let mut reconnected = false;
    loop {
        match next_tree_event(ctx, &mut cache).await? {
            TreeEvent::ConnectionReconnected => reconnected = true,
            TreeEvent::NodeAdded(n) if n.path.ends_with("/while-away") => break,
            ev => return Err(format!("after the reconnect: {ev:?}")),
        }
    }
    check!(reconnected, "ConnectionReconnected before the catch-up");
    check!(
        cache
            .get_children(&root)
            .is_some_and(|k| k.contains("while-away")),
        "the change made while away is cached"
    );
    drop(cache);
    c.close().await;
    other.close().await;
    Ok(())
}

/// PatientChildrenWatch returns only once the children have been still for the boundary:
/// what it returns is what is there, and its watch fires at the next change.
async fn patient_children_watch_waits_for_stillness(ctx: &Ctx) -> Outcome {
    let (other, base) = ctx.fresh("patient").await?;
    let c = ctx.client().await?;
    let path = format!("{base}/p");
    ok!(other.create(&path, "").await);
    let watch = PatientChildrenWatch::new(&c, &path, Duration::from_millis(300));
    let adds = async {
        for i in 0..5 {
            other.create(&format!("{path}/c{i}"), "").await?;
            other.sleep(Duration::from_millis(50)).await;
        }
        Ok::<(), Error>(())
    };
    type Patient = Option<(Vec<String>, zk_client::Watch)>;
    let mut futs: Vec<Task<'_, Patient>> = vec![
        Box::pin(async { watch.start().await.map(Some) }),
        Box::pin(async { adds.await.map(|()| None) }),
    ];
    let mut results = ctx
        .within(WAIT, join_all(std::mem::take(&mut futs)))
        .await?;
    ok!(results.pop().ok_or("adds")?);
    let (children, mut changed) = ok!(results.pop().ok_or("start")?).ok_or("no result")?;
    let now = ok!(other.get_children(&path).await).to_vec();
    let fired = ctx
        .within(Duration::from_millis(1), &mut changed)
        .await
        .is_ok();
    check!(
        fired || sorted(children.clone()) == sorted(now.clone()),
        "returned {children:?} but the node has {now:?} and no change was reported"
    );
    if !fired {
        ok!(other.create(&format!("{path}/later"), "").await);
        let ev = ok!(ctx.within(WAIT, changed).await?);
        check!(
            ev.event_type == zk_client::EventType::NodeChildrenChanged,
            "the watch fires at the next change: {ev:?}"
        );
    }
    c.close().await;
    other.close().await;
    Ok(())
}

/// One client per server (each listing its own server first), and the index of the first
/// client's server: the one to kill.
async fn pinned_clients(ctx: &Ctx, ports: &[u16]) -> Result<(Vec<Client>, usize), String> {
    let mut clients = Vec::new();
    for port in ports {
        let mut hosts: Vec<String> = vec![format!("127.0.0.1:{port}")];
        hosts.extend(
            ports
                .iter()
                .filter(|p| *p != port)
                .map(|p| format!("127.0.0.1:{p}")),
        );
        let cl = ClientBuilder::new(ctx.rt.clone(), &hosts.join(","))
            .randomize_hosts(false)
            .session_timeout(Duration::from_secs(6))
            .connect_timeout(WAIT)
            .connect()
            .await
            .map_err(|e| format!("connect: {e}"))?;
        clients.push(cl);
    }
    let port = clients[0].current_host().ok_or("not connected")?.port;
    let victim = ports
        .iter()
        .position(|p| *p == port)
        .ok_or("no node on the port")?;
    Ok((clients, victim))
}

/// Clients on every server increment one counter while the server under one of them is killed
/// (kill -9): every increment reported done is counted exactly once. An increment cut by the
/// failover whose outcome cannot be told fails with ConnectionLoss or Timeout and may or may not
/// count; the final value lies between the two bounds.
async fn counter_adds_up_across_a_server_kill(ctx: &Ctx) -> Outcome {
    let ens = ctx.ensemble.clone().ok_or("no ensemble")?;
    let lock = || ens.lock().unwrap_or_else(|e| e.into_inner());
    heal(&mut lock())?;
    let (c, base) = ctx.fresh("counter-failover").await?;
    let path = format!("{base}/count");
    let ports: Vec<u16> = lock().nodes().iter().map(|n| n.port()).collect();
    let (clients, victim) = pinned_clients(ctx, &ports).await?;
    const EACH: usize = 30;
    let counters: Vec<Counter> = clients.iter().map(|cl| Counter::new(cl, &path)).collect();
    let done = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut futs: Vec<Task<'_, (usize, usize)>> = Vec::new();
    for counter in &counters {
        let done = done.clone();
        futs.push(Box::pin(async move {
            let (mut applied, mut unknown) = (0, 0);
            for _ in 0..EACH {
                match counter.add(1).await {
                    Ok(_) => applied += 1,
                    Err(Error::ConnectionLoss) | Err(Error::Timeout) => unknown += 1,
                    Err(e) => return Err(e),
                }
                done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
            Ok((applied, unknown))
        }));
    }
    let killer = async {
        while done.load(std::sync::atomic::Ordering::SeqCst) < EACH {
            c.sleep(Duration::from_millis(5)).await;
        }
        lock()
            .kill(victim)
            .map_err(|e| Error::InvalidArgument(format!("kill node {victim}: {e}")))?;
        Ok((0, 0))
    };
    futs.push(Box::pin(killer));
    let (mut applied, mut unknown) = (0, 0);
    for r in ctx.within(SCENARIO_WAIT / 2, join_all(futs)).await? {
        let (a, u) = ok!(r);
        applied += a;
        unknown += u;
    }
    // A server may answer reads before it has applied the leader's latest writes: sync first.
    let value = ok!(c
        .retry(|c| {
            let path = path.clone();
            async move {
                c.sync(&path).await?;
                Counter::new(&c, &path).value().await
            }
        })
        .await) as usize;
    check!(
        applied <= value && value <= applied + unknown,
        "counter {value}: {applied} increments done, {unknown} unknown"
    );
    check!(applied + unknown == 3 * EACH, "every increment answered");
    eprintln!(
        "[{} {}] counter across a kill: {value} ({applied} done, {unknown} unknown)",
        ctx.server, ctx.runtime_name
    );
    {
        let mut ens = lock();
        ens.restart(victim)
            .map_err(|e| format!("restart node {victim}: {e}"))?;
        ens.wait_all_ready().map_err(|e| format!("{e}"))?;
    }
    for cl in clients {
        cl.close().await;
    }
    c.close().await;
    Ok(())
}

/// kazoo and this client in the same Party, ShallowParty and DoubleBarrier: each lists the
/// other among the members, and the barrier lets both in and both out.
async fn kazoo_shares_parties_and_a_double_barrier(ctx: &Ctx) -> Outcome {
    let (c, base) = ctx.fresh("kazoo-party").await?;
    let mut kazoo = Kazoo::start(&ctx.connect, &base, 0)?;
    kazoo.expect(ctx, "ready").await?;
    let party = format!("{base}/party");
    kazoo.send(&format!("party {party}"))?;
    kazoo.expect(ctx, "joined").await?;
    let deep = Party::new(&c, &party, "rs");
    let shallow = ShallowParty::new(&c, &format!("{party}-shallow"), "rs");
    ok!(deep.join().await);
    ok!(shallow.join().await);
    let names = sorted(ok!(deep.members().await));
    check!(names == ["py", "rs"], "Party members seen here {names:?}");
    let names = sorted(ok!(shallow.members().await));
    check!(
        names == ["py", "rs"],
        "ShallowParty members seen here {names:?}"
    );
    kazoo.send(&format!("members {party}"))?;
    kazoo.expect(ctx, "members py,rs py,rs").await?;

    let barrier = format!("{base}/double");
    kazoo.send(&format!("double {barrier}"))?;
    let member = DoubleBarrier::new(&c, &barrier, 2).identifier("rs");
    ok!(ctx.within(WAIT, member.enter()).await?);
    kazoo.expect(ctx, "entered").await?;
    ok!(ctx.within(WAIT, member.leave()).await?);
    kazoo.expect(ctx, "left").await?;
    let left = ok!(c.get_children(&barrier).await).to_vec();
    check!(left.is_empty(), "members left behind {left:?}");
    drop(kazoo);
    c.close().await;
    Ok(())
}

/// Clients on every server put into and take from one queue while the server under one of them
/// is killed: every item whose put succeeded comes out, and nothing comes out that was not put.
/// (A put or a take cut by the failover is ambiguous: such a put may or may not enqueue, such a
/// take hands the item out rather than lose it, so it may, rarely, come out twice.)
async fn queue_loses_nothing_across_a_server_kill(ctx: &Ctx) -> Outcome {
    let ens = ctx.ensemble.clone().ok_or("no ensemble")?;
    let lock = || ens.lock().unwrap_or_else(|e| e.into_inner());
    heal(&mut lock())?;
    let (c, base) = ctx.fresh("queue-failover").await?;
    let path = format!("{base}/q");
    let ports: Vec<u16> = lock().nodes().iter().map(|n| n.port()).collect();
    let (clients, victim) = pinned_clients(ctx, &ports).await?;
    const EACH: usize = 20;
    let puts_done = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let producers_done = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    type Outcomes = (Vec<String>, Vec<String>, Vec<String>);
    let mut futs: Vec<Task<'_, Outcomes>> = Vec::new();
    for (i, cl) in clients.iter().enumerate() {
        let (path, puts_done, producers_done) =
            (path.clone(), puts_done.clone(), producers_done.clone());
        futs.push(Box::pin(async move {
            let q = Queue::new(cl, &path);
            let (mut put, mut maybe, mut got) = (Vec::new(), Vec::new(), Vec::new());
            for k in 0..EACH {
                let item = format!("c{i}-{k}");
                match q.put(item.clone()).await {
                    Ok(()) => put.push(item),
                    Err(Error::ConnectionLoss) | Err(Error::Timeout) => maybe.push(item),
                    Err(e) => return Err(e),
                }
                puts_done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
            producers_done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            loop {
                match q.get().await {
                    Ok(Some(item)) => got.push(String::from_utf8_lossy(&item).into_owned()),
                    Ok(None) => {
                        if producers_done.load(std::sync::atomic::Ordering::SeqCst) == 3 {
                            break;
                        }
                        cl.sleep(Duration::from_millis(10)).await;
                    }
                    Err(Error::ConnectionLoss) | Err(Error::Timeout) => {}
                    Err(e) => return Err(e),
                }
            }
            Ok((put, maybe, got))
        }));
    }
    futs.push(Box::pin(async {
        while puts_done.load(std::sync::atomic::Ordering::SeqCst) < EACH {
            c.sleep(Duration::from_millis(5)).await;
        }
        lock()
            .kill(victim)
            .map_err(|e| Error::InvalidArgument(format!("kill node {victim}: {e}")))?;
        Ok((Vec::new(), Vec::new(), Vec::new()))
    }));
    let (mut put, mut maybe, mut got) = (BTreeSet::new(), BTreeSet::new(), Vec::new());
    for r in ctx.within(SCENARIO_WAIT / 2, join_all(futs)).await? {
        let (p, m, g) = ok!(r);
        put.extend(p);
        maybe.extend(m);
        got.extend(g);
    }
    // Whatever a consumer left (a get cut short) is still in the queue.
    let q = Queue::new(&c, &path);
    while let Some(item) = ok!(c.retry(|_| q.get()).await) {
        got.push(String::from_utf8_lossy(&item).into_owned());
    }
    let out: BTreeSet<&String> = got.iter().collect();
    for item in &put {
        check!(out.contains(item), "{item} was put and never came out");
    }
    for item in &out {
        check!(
            put.contains(*item) || maybe.contains(*item),
            "{item} came out but was never put"
        );
    }
    eprintln!(
        "[{} {}] queue across a kill: {} put, {} ambiguous puts, {} out, {} twice",
        ctx.server,
        ctx.runtime_name,
        put.len(),
        maybe.len(),
        got.len(),
        got.len() - out.len()
    );
    {
        let mut ens = lock();
        ens.restart(victim)
            .map_err(|e| format!("restart node {victim}: {e}"))?;
        ens.wait_all_ready().map_err(|e| format!("{e}"))?;
    }
    for cl in clients {
        cl.close().await;
    }
    c.close().await;
    Ok(())
}
