//! The driver's timer window (`Runtime::timer_start_window`), in the deterministic world: a short
//! session's deadlines, each earlier than the last, do not move its timer; a session that
//! outlives the window pings and notices a dead server exactly as without one; a close, which
//! leaves the driver asleep inside the window, still ends on time.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_core::Stream;
use zk_client::{BoxFuture, Client, ClientBuilder, Runtime, SessionState, Timer, Transport};
use zk_testkit::sim::{NetConfig, Node, SimConfig, SimWorld};

const LIMIT: Duration = Duration::from_secs(600);

/// The world's runtime with a timer window of its own choosing, counting how often a timer is
/// moved (only the driver's timer ever is: other waits make a timer and drop it). A driver that
/// polls its timer a million times spins (a timer left due), and fails the test instead of
/// hanging it: the world's time limit cannot stop a poll that never returns.
#[derive(Debug)]
struct Windowed {
    inner: Arc<dyn Runtime>,
    window: Option<Duration>,
    moves: Arc<AtomicUsize>,
    /// When each spawned task (the driver: no tracker is asked for) ended, in virtual time.
    ended: Arc<Mutex<Vec<Instant>>>,
}

impl Runtime for Windowed {
    fn connect(&self, host: String, port: u16) -> BoxFuture<std::io::Result<Box<dyn Transport>>> {
        self.inner.connect(host, port)
    }

    fn timer(&self, deadline: Instant) -> Box<dyn Timer> {
        Box::new(Counted {
            inner: self.inner.timer(deadline),
            moves: self.moves.clone(),
            polls: 0,
        })
    }

    fn spawn(&self, task: BoxFuture<()>) -> std::io::Result<()> {
        let (rt, ended) = (self.inner.clone(), self.ended.clone());
        self.inner.spawn(Box::pin(async move {
            task.await;
            ended.lock().expect("lock").push(rt.now());
        }))
    }

    fn now(&self) -> Instant {
        self.inner.now()
    }

    fn timer_start_window(&self) -> Option<Duration> {
        self.window
    }
}

struct Counted {
    inner: Box<dyn Timer>,
    moves: Arc<AtomicUsize>,
    polls: u64,
}

impl Timer for Counted {
    fn reset(&mut self, deadline: Instant) {
        self.moves.fetch_add(1, Ordering::SeqCst);
        self.inner.reset(deadline);
    }

    fn poll_fire(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        self.polls += 1;
        assert!(self.polls < 1_000_000, "the driver spins on its timer");
        self.inner.poll_fire(cx)
    }
}

/// One server, so that the connect timeout is the whole session timeout.
fn world() -> SimWorld {
    SimWorld::new(
        SimConfig {
            servers: 1,
            ..SimConfig::default()
        },
        NetConfig::default(),
        28,
    )
}

fn builder(w: &SimWorld, window: Option<Duration>, moves: &Arc<AtomicUsize>) -> ClientBuilder {
    builder_noting_ends(w, window, moves, &Arc::default())
}

/// As `builder`, noting in `ended` when the driver ends.
fn builder_noting_ends(
    w: &SimWorld,
    window: Option<Duration>,
    moves: &Arc<AtomicUsize>,
    ended: &Arc<Mutex<Vec<Instant>>>,
) -> ClientBuilder {
    let runtime = Arc::new(Windowed {
        inner: w.runtime_for(Node(1)),
        window,
        moves: moves.clone(),
        ended: ended.clone(),
    });
    ClientBuilder::new(runtime, &w.connect_string())
        .rng_seed(7)
        .session_timeout(Duration::from_secs(9))
}

/// Connects, reads a node and closes; returns how often the driver's timer moved, and the
/// session's length in virtual time.
fn short_session(window: Option<Duration>) -> (usize, Duration) {
    let w = world();
    let moves = Arc::new(AtomicUsize::new(0));
    let b = builder(&w, window, &moves);
    let w2 = w.clone();
    let took = w
        .block_on(LIMIT, async move {
            let start = w2.elapsed();
            let c = b.connect().await.expect("connect");
            c.get_data("/zookeeper").await.expect("get");
            c.close().await;
            w2.elapsed() - start
        })
        .expect("finishes");
    (moves.load(Ordering::SeqCst), took)
}

#[test]
fn a_session_closed_within_its_timer_window_never_moves_its_timer() {
    let (moves, took) = short_session(Some(Duration::from_secs(1)));
    assert!(took < Duration::from_secs(1), "the session took {took:?}");
    assert_eq!(
        moves, 0,
        "the first ping and the close timeout moved the timer"
    );
    // What the window saves: without one, the first ping (3 s, earlier than the 9 s connect
    // timeout) and the close timeout (2 s, earlier than the next ping) each move it.
    let (moves, _) = short_session(None);
    assert_eq!(moves, 2);
}

async fn next_state(states: &mut (impl Stream<Item = SessionState> + Unpin)) -> SessionState {
    std::future::poll_fn(|cx| std::pin::Pin::new(&mut *states).poll_next(cx))
        .await
        .unwrap_or(SessionState::Lost(zk_client::LostReason::Closed))
}

/// Runs the world until `states` reports the session suspended. Fails if it is lost instead.
fn until_suspended(
    w: &SimWorld,
    mut states: impl Stream<Item = SessionState> + Unpin + Send + 'static,
) {
    w.block_on(LIMIT, async move {
        loop {
            match next_state(&mut states).await {
                SessionState::Suspended => break,
                // A lost session ends the stream: fail rather than wait on it forever.
                SessionState::Lost(r) => panic!("lost, not suspended: {r:?}"),
                _ => {}
            }
        }
    })
    .expect("suspended");
}

/// Connects with a `session` timeout, idles for `idle`, then loses the server into a black
/// hole; returns how long after the black hole the session was suspended. Fails if the session
/// changed or was lost in the idle time.
fn idle_then_blackhole(window: Option<Duration>, session: Duration, idle: Duration) -> Duration {
    let w = world();
    let moves = Arc::new(AtomicUsize::new(0));
    let b = builder(&w, window, &moves).session_timeout(session);
    let c: Client = w
        .block_on(LIMIT, async move { b.connect().await.expect("connect") })
        .expect("connects");
    let id = c.client_id().expect("a session").id;
    w.run_for(idle);
    assert_eq!(
        c.state(),
        SessionState::Connected,
        "kept alive by its pings"
    );
    assert_eq!(c.client_id().map(|s| s.id), Some(id), "the same session");
    let states = c.state_changes();
    w.blackhole(Node(1));
    let blackholed = w.elapsed();
    until_suspended(&w, states);
    w.elapsed() - blackholed
}

#[test]
fn a_session_outliving_its_timer_window_pings_and_times_out_as_without_one() {
    // 30 s idle: ten ping intervals of the 9 s session, long after the window.
    let run = |window| idle_then_blackhole(window, Duration::from_secs(9), Duration::from_secs(30));
    let without = run(None);
    // The read timeout is two thirds of the 9 s session: the last byte came at most a ping
    // interval (3 s) before the black hole.
    assert!(
        (Duration::from_secs(3)..=Duration::from_secs(6)).contains(&without),
        "suspended {without:?} after the black hole"
    );
    assert_eq!(
        run(Some(Duration::from_secs(1))),
        without,
        "the window changed when the read timeout fired"
    );
}

#[test]
fn deadlines_inside_the_timer_window_fire_on_time() {
    // A 1.5 s session pings every 0.5 s and gives up on a silent server after 1 s: its first
    // pings and, with a black hole 0.2 s in, its read timeout fall inside a 5 s window, which
    // must not hold them back.
    let run = |window| {
        idle_then_blackhole(
            window,
            Duration::from_millis(1500),
            Duration::from_millis(200),
        )
    };
    let without = run(None);
    assert!(
        without <= Duration::from_secs(1),
        "suspended {without:?} after the black hole"
    );
    assert_eq!(run(Some(Duration::from_secs(5))), without);
}

/// Connects, loses the server into a black hole, then closes: returns how long `close()` took.
/// A caller's close writes its closeSession itself and, inside the window, leaves the driver
/// asleep (the close deadline is later than the timer's): the timer must still bring the
/// driver back for the close timeout, neither later nor earlier than without a window.
fn close_into_a_blackhole(window: Option<Duration>) -> Duration {
    let w = world();
    let moves = Arc::new(AtomicUsize::new(0));
    let b = builder(&w, window, &moves).close_timeout(Duration::from_secs(2));
    let w2 = w.clone();
    w.block_on(LIMIT, async move {
        let c = b.connect().await.expect("connect");
        w2.blackhole(Node(1));
        let start = w2.elapsed();
        c.close().await;
        assert!(
            matches!(c.state(), SessionState::Lost(_)),
            "{:?}",
            c.state()
        );
        w2.elapsed() - start
    })
    .expect("closes")
}

/// (Broken on purpose, a close that never wakes the driver for an earlier deadline makes the
/// windowless close wait for the first ping's timer instead, and this fails.)
#[test]
fn an_unanswered_close_inside_the_timer_window_gives_up_at_the_close_timeout() {
    let without = close_into_a_blackhole(None);
    assert!(
        (Duration::from_millis(1990)..=Duration::from_millis(2010)).contains(&without),
        "an unanswered close took {without:?} with a 2 s close timeout"
    );
    assert_eq!(
        close_into_a_blackhole(Some(Duration::from_secs(1))),
        without
    );
}

/// Connects, crashes the one server and waits until the session is suspended (it redials),
/// then closes: returns how long after the close the driver ended.
fn close_while_suspended(window: Option<Duration>) -> Duration {
    let w = world();
    let moves = Arc::new(AtomicUsize::new(0));
    let ended = Arc::new(Mutex::new(Vec::new()));
    let b = builder_noting_ends(&w, window, &moves, &ended);
    let c: Client = w
        .block_on(LIMIT, async move { b.connect().await.expect("connect") })
        .expect("connects");
    let states = c.state_changes();
    w.crash(0);
    until_suspended(&w, states);
    let closed_at = w.now();
    let closing = c.clone();
    w.block_on(LIMIT, async move { closing.close().await })
        .expect("closes");
    assert_eq!(c.state(), SessionState::Lost(zk_client::LostReason::Closed));
    w.run_for(Duration::from_secs(30));
    let ends = ended.lock().expect("lock").clone();
    assert_eq!(ends.len(), 1, "driver ends: {ends:?}");
    ends[0] - closed_at
}

/// A close that ends the session at once (not connected) must wake the driver, which would
/// otherwise go on until its next deadline (the next dial). (Broken on purpose, a close that
/// does not wake the driver for an ended session makes the driver end later, and this fails.)
#[test]
fn a_close_while_suspended_stops_the_driver_at_once() {
    for window in [None, Some(Duration::from_secs(1))] {
        assert_eq!(
            close_while_suspended(window),
            Duration::ZERO,
            "window {window:?}"
        );
    }
}
