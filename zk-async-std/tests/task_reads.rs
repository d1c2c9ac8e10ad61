//! On async-std and smol a task waiting for the session's one reply in flight reads the socket
//! itself (zk-client's `task_reads`). These tests hold that it does (sequential calls take the
//! reader's place, counted through zk-client's `zk_client::reads` events), and the rule that makes
//! it safe: a task woken to read and then not polled does not hold up the session, because the
//! driver's looks take the reader's place back, and calls made meanwhile do not wait for those
//! looks, because the first of them gives the place back to the driver. Against SimServer and
//! real ZooKeeper 3.8 and 3.9, under each runtime's `block_on`, with a 60 s session so that the
//! session's own timers (a ping at 20 s) cannot rescue a broken rule within the patience bound.
//!
//! The events are counted by one process-wide subscriber, so the tests of this binary run one at
//! a time (`one_at_a_time`).

mod common;

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use tracing::Level;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::Layer;

use zk_async_std::{Client, EventType};
use zk_testkit::real::{Ensemble, EnsembleOptions, ZkVersion};
use zk_testkit::sim::{SimConfig, SimTcpServer};

use common::within;

const PATIENCE: Duration = Duration::from_secs(10);
const SESSION: Duration = Duration::from_secs(60);

/// `zk_client::reads` events seen: a task took the reader's place (TRACE), a task gave it back
/// to the driver because another call overlapped its reply (TRACE, with a `holder` field), the
/// driver took it back from a task that did not read (DEBUG).
static TAKEN: AtomicUsize = AtomicUsize::new(0);
static HANDED_BACK: AtomicUsize = AtomicUsize::new(0);
static TAKEN_BACK: AtomicUsize = AtomicUsize::new(0);

/// Counts zk-client's `zk_client::reads` events by kind.
struct CountReads;

impl<S: tracing::Subscriber> Layer<S> for CountReads {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        let meta = event.metadata();
        let counter = if *meta.level() != Level::TRACE {
            &TAKEN_BACK
        } else if meta.fields().field("holder").is_some() {
            &HANDED_BACK
        } else {
            &TAKEN
        };
        counter.fetch_add(1, Ordering::SeqCst);
    }
}

/// Installs the counting subscriber (once) and holds this binary's tests to one at a time, with
/// the counts at zero.
fn one_at_a_time() -> MutexGuard<'static, ()> {
    static ONE: Mutex<()> = Mutex::new(());
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        let only_reads = Targets::new().with_target("zk_client::reads", Level::TRACE);
        let subscriber = tracing_subscriber::registry().with(CountReads.with_filter(only_reads));
        tracing::subscriber::set_global_default(subscriber).expect("the only global subscriber");
    });
    let guard = ONE.lock().unwrap_or_else(|e| e.into_inner());
    TAKEN.store(0, Ordering::SeqCst);
    HANDED_BACK.store(0, Ordering::SeqCst);
    TAKEN_BACK.store(0, Ordering::SeqCst);
    guard
}

/// A server that grants a 60 s session: a fresh SimServer, or a shared real one.
enum Server {
    Sim(SimTcpServer),
    Real(&'static Ensemble),
}

impl Server {
    fn sim() -> Self {
        let config = SimConfig {
            tick_ms: 5_000,
            ..SimConfig::default()
        };
        Server::Sim(SimTcpServer::start(config).expect("start SimTcpServer"))
    }

    fn real(version: ZkVersion) -> Self {
        static ZK38: OnceLock<Ensemble> = OnceLock::new();
        static ZK39: OnceLock<Ensemble> = OnceLock::new();
        let cell = match version {
            ZkVersion::V3_8 => &ZK38,
            _ => &ZK39,
        };
        Server::Real(cell.get_or_init(|| {
            let options = EnsembleOptions {
                max_session_timeout_ms: Some(SESSION.as_millis() as u32),
                ..EnsembleOptions::standalone(version)
            };
            Ensemble::start(options)
                .unwrap_or_else(|e| panic!("starting ZooKeeper {version:?}: {e}"))
        }))
    }

    fn connect_string(&self) -> String {
        match self {
            Server::Sim(s) => s.connect_string(),
            Server::Real(e) => e.connect_string(),
        }
    }
}

/// A path no other test of this binary uses (the real servers are shared).
fn unique(name: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!("/task-reads-{name}-{}", NEXT.fetch_add(1, Ordering::SeqCst))
}

/// An `exists` reply future polled once and still pending, so that it took the reader's place.
/// The reply may come before the first poll (the driver's thread may read it): then the future
/// is done and took nothing, and another is tried (at most 100).
async fn reply_future_pending_after_one_poll(
    client: &Client,
) -> std::pin::Pin<
    Box<impl Future<Output = Result<Option<zk_async_std::Stat>, zk_async_std::Error>> + '_>,
> {
    for _ in 0..100 {
        let mut fut = Box::pin(std::future::IntoFuture::into_future(
            client.exists("/zookeeper"),
        ));
        if futures_lite::future::poll_once(&mut fut).await.is_none() {
            return fut;
        }
    }
    panic!("no reply future still pending after its first poll in 100 tries");
}

/// Sequential calls take the reader's place: each call's reply is the session's only one in
/// flight, so its task reads it (a call whose reply was read before its first poll takes nothing,
/// hence "most"). Broken rule tried: tasks never take the place (the engine's `alone` false);
/// no event, the test fails.
async fn sequential_calls_read_their_own_replies(client: &Client) {
    let before = TAKEN.load(Ordering::SeqCst);
    for _ in 0..20 {
        client.exists("/zookeeper").await.expect("exists");
    }
    let taken = TAKEN.load(Ordering::SeqCst) - before;
    assert!(
        taken >= 10,
        "only {taken} of 20 sequential calls took the reader's place"
    );
}

/// A reply future is polled once, so that it takes the reader's place (it is the session's one
/// request in flight), and then set aside while its task waits for a watch: the readiness its
/// reply brings wakes a task that never polls it. The watch event must still arrive, the driver
/// must say that it took the place back, and the future set aside still resolves when it is
/// polled at last. Broken rules tried: the driver's look never takes the place back
/// (`TaskReads::driver_turn`): the event then waits for the session's timers and the test fails
/// at the patience bound; tasks never take the place: nothing is taken back, the test fails.
async fn a_reply_future_set_aside_does_not_hold_up_the_session(client: &Client, other: &Client) {
    let path = unique("aside");
    let (stat, watch) = client.exists(&path).watch().await.expect("exists");
    assert!(stat.is_none());
    let aside = reply_future_pending_after_one_poll(client).await;
    other.create(&path, "").await.expect("create");
    let event = within(PATIENCE, watch)
        .await
        .expect("the watch event within the patience bound")
        .expect("event");
    assert_eq!(event.event_type, EventType::NodeCreated);
    assert!(
        TAKEN_BACK.load(Ordering::SeqCst) >= 1,
        "the driver never took the reader's place back from the future set aside"
    );
    let stat = within(PATIENCE, aside).await.expect("the reply set aside");
    assert!(stat.expect("exists").is_some());
    // And the session still serves calls that read their own replies.
    for _ in 0..50 {
        assert!(client.exists(&path).await.expect("exists").is_some());
    }
}

/// A reply future polled once, so that it takes the reader's place, and then set aside (as a
/// stream polled only when its user looks at it does with its re-reads, a DataWatch's for one),
/// ten times over, each followed by a call: the call must not wait for the driver's looks to
/// take the place back from the future set aside, because the call's first poll, finding two
/// replies in flight, hands the place to the driver. Broken rule tried: the place stays with the
/// holder (`TaskReads::take` as before): every one of the ten calls then waits for a take-back
/// (20-30 ms each), and the test fails; tasks never take the place: nothing is handed back, the
/// test fails. Fewer than half is the bound, not none: a task woken and then not run for 10 ms
/// on a loaded machine is taken back from rightly.
async fn calls_do_not_wait_for_a_reply_future_set_aside(client: &Client) {
    const ROUNDS: usize = 10;
    let before = TAKEN_BACK.load(Ordering::SeqCst);
    let handed_before = HANDED_BACK.load(Ordering::SeqCst);
    let mut set_aside = Vec::new();
    for _ in 0..ROUNDS {
        set_aside.push(reply_future_pending_after_one_poll(client).await);
        let call = std::future::IntoFuture::into_future(client.exists("/zookeeper"));
        let stat = within(PATIENCE, call)
            .await
            .expect("the call within the patience bound");
        assert!(stat.expect("exists").is_some());
    }
    assert!(
        HANDED_BACK.load(Ordering::SeqCst) > handed_before,
        "no call handed the reader's place back to the driver"
    );
    let taken_back = TAKEN_BACK.load(Ordering::SeqCst) - before;
    assert!(
        taken_back < ROUNDS / 2,
        "{taken_back} of {ROUNDS} calls waited for the driver to take the reader's place back \
         from a reply future set aside"
    );
    for aside in set_aside {
        let stat = within(PATIENCE, aside).await.expect("a reply set aside");
        assert!(stat.expect("exists").is_some());
    }
}

/// Two clients made by `builder` (the runtime's), and the scenario between them.
async fn on_runtime(server: &Server, builder: fn(&str) -> zk_async_std::ClientBuilder) {
    let connect = || async {
        builder(&server.connect_string())
            .session_timeout(SESSION)
            .connect()
            .await
            .expect("connect")
    };
    let client = connect().await;
    let other = connect().await;
    sequential_calls_read_their_own_replies(&client).await;
    a_reply_future_set_aside_does_not_hold_up_the_session(&client, &other).await;
    calls_do_not_wait_for_a_reply_future_set_aside(&client).await;
    other.close().await;
    client.close().await;
}

fn on_smol(server: &Server) {
    smol::block_on(on_runtime(server, zk_async_std::smol::builder));
}

fn on_async_std(server: &Server) {
    async_std::task::block_on(on_runtime(server, zk_async_std::builder));
}

macro_rules! task_read_tests {
    ($module:ident, $server:expr) => {
        mod $module {
            use super::*;

            #[test]
            fn smol_reads_and_reply_set_aside() {
                let _one = one_at_a_time();
                on_smol(&$server);
            }

            #[test]
            fn async_std_reads_and_reply_set_aside() {
                let _one = one_at_a_time();
                on_async_std(&$server);
            }
        }
    };
}

task_read_tests!(sim, Server::sim());
task_read_tests!(zookeeper_3_8, Server::real(ZkVersion::V3_8));
task_read_tests!(zookeeper_3_9, Server::real(ZkVersion::V3_9));
