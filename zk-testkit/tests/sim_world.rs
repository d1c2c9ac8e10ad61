//! The deterministic world (`sim::world`): whole clients on a virtual clock and a seeded network
//! to SimServer, in one thread. A run is a function of its seed: the same seed gives the same
//! trace, faults and all.

use std::time::Duration;

use futures_core::Stream;
use zk_client::{Client, Error, SessionState};
use zk_testkit::sim::{NetConfig, Node, SimConfig, SimWorld, Stuck};

const LIMIT: Duration = Duration::from_secs(600);

fn world(seed: u64) -> SimWorld {
    SimWorld::new(
        SimConfig {
            servers: 3,
            ..SimConfig::default()
        },
        NetConfig::default(),
        seed,
    )
}

async fn next_state(states: &mut (impl Stream<Item = SessionState> + Unpin)) -> SessionState {
    std::future::poll_fn(|cx| std::pin::Pin::new(&mut *states).poll_next(cx))
        .await
        .unwrap_or(SessionState::Lost(zk_client::LostReason::Closed))
}

async fn connect(w: &SimWorld, node: Node) -> Client {
    w.builder(node, &w.connect_string())
        .session_timeout(Duration::from_secs(4))
        .connect()
        .await
        .expect("connect in the world")
}

#[test]
fn a_client_runs_its_operations_in_the_world() {
    let w = world(1);
    let w2 = w.clone();
    let got = w
        .block_on(LIMIT, async move {
            let c = connect(&w2, Node(1)).await;
            c.create("/a", "x").await.expect("create");
            let (d, _) = c.get_data("/a").await.expect("get");
            c.close().await;
            d
        })
        .expect("finishes");
    assert_eq!(&got[..], b"x");
    assert!(
        w.with_server(|s, _| s.node("/a").is_some()),
        "the model holds the node"
    );
}

/// A run with faults: cut the client (it resumes its session), crash the server it is on (it
/// fails over), partition it past its session timeout (the session expires and is renewed).
/// Returns what the client saw, and the world's trace.
fn faulty_run(seed: u64) -> (Vec<String>, Vec<String>) {
    let w = world(seed);
    w.enable_trace();
    let w2 = w.clone();
    let seen = w
        .block_on(LIMIT, async move {
            let mut seen = Vec::new();
            let c = connect(&w2, Node(7)).await;
            let mut states = c.state_changes();
            let first = c.client_id().expect("id").id;
            c.create("/n", "0").await.expect("create");

            w2.cut(Node(7));
            let mut s = next_state(&mut states).await;
            seen.push(format!("{s}"));
            while !s.is_connected() {
                s = next_state(&mut states).await;
                seen.push(format!("{s}"));
            }
            assert_eq!(
                c.client_id().map(|i| i.id),
                Some(first),
                "same session after a cut"
            );

            let on = c.current_host().expect("connected").port as usize - 1;
            w2.crash(on);
            let mut s = next_state(&mut states).await;
            seen.push(format!("{s}"));
            while !s.is_connected() {
                s = next_state(&mut states).await;
                seen.push(format!("{s}"));
            }
            assert_ne!(c.current_host().expect("connected").port as usize - 1, on);
            c.set_data("/n", "1")
                .await
                .expect("write after the failover");
            w2.restart(on);

            w2.partition(Node(7));
            // Longer than the session timeout: the ensemble expires the session.
            c.sleep(Duration::from_secs(10)).await;
            w2.heal(Node(7));
            let mut s = next_state(&mut states).await;
            seen.push(format!("{s}"));
            while s != SessionState::Connected || !seen.iter().any(|x| x.contains("Expired")) {
                s = next_state(&mut states).await;
                seen.push(format!("{s}"));
            }
            assert_ne!(c.client_id().map(|i| i.id), Some(first), "a new session");
            let r = c.get_data("/n").await;
            assert!(matches!(&r, Ok((d, _)) if &d[..] == b"1"), "{r:?}");
            c.close().await;
            seen
        })
        .expect("the faulty run finishes");
    (seen, w.trace())
}

#[test]
fn faults_are_survived_and_a_seed_replays_exactly() {
    let (seen, trace) = faulty_run(42);
    assert!(seen.iter().any(|s| s.contains("Expired")), "{seen:?}");
    let (seen_again, trace_again) = faulty_run(42);
    assert_eq!(seen, seen_again);
    assert_eq!(trace, trace_again, "the same seed replays the same run");
    let (_, other) = faulty_run(43);
    assert_ne!(trace, other, "another seed is another run");
}

#[test]
fn a_future_that_waits_forever_is_a_deadlock_not_a_hang() {
    let w = world(3);
    let r = w.block_on(LIMIT, std::future::pending::<()>());
    assert!(matches!(r, Err(Stuck::Deadlock { .. })), "{r:?}");
    let w2 = w.clone();
    let r = w.block_on(Duration::from_secs(5), async move {
        // A client with no server to reach keeps timers running: the limit stops it.
        let c = w2
            .builder(Node(1), "127.0.0.1:9")
            .connect_timeout(Duration::from_secs(60))
            .connect()
            .await;
        matches!(c, Err(Error::ConnectFailed { .. }))
    });
    assert!(matches!(r, Err(Stuck::TimeLimit { .. })), "{r:?}");
}

/// A waker that only records that it was woken.
struct Flag(std::sync::atomic::AtomicBool);

impl std::task::Wake for Flag {
    fn wake(self: std::sync::Arc<Self>) {
        self.0.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Which waiter holds the read role in `notification_read_after_a_dropped_holder`.
#[derive(Debug, Clone, Copy)]
enum Holder {
    Reply,
    Watch,
}

/// The read role (zk-client's `read_role`): a task waiting for a reply or a watch event is the
/// one the socket's readiness wakes. Here the socket wakes such a waiter (what it waits for
/// came), which is dropped without ever being polled again; then a notification for another
/// watch arrives while nothing of the client waits. Returns whether that notification was read
/// within 500 ms, that is without waiting for the driver's timer (a ping, 10 s away with a 30 s
/// session): the bytes that woke the dropped waiter must be read when it leaves, and the role go
/// back to the driver. The clock is the world's virtual one, so the bound is exact; the
/// observing watch waits without being polled again (a poll would take the role, and read).
fn notification_read_after_a_dropped_holder(holder: Holder) -> bool {
    use std::future::{Future, IntoFuture};
    use std::pin::Pin;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::task::{Context, Waker};

    let w = world(5);
    let w2 = w.clone();
    w.block_on(LIMIT, async move {
        let session = |node| {
            w2.builder(node, &w2.connect_string())
                .session_timeout(Duration::from_secs(30))
                .connect()
        };
        let c = session(Node(1)).await.expect("connect");
        let writer = session(Node(2)).await.expect("connect");
        c.create("/a", "0").await.expect("create");
        c.create("/b", "0").await.expect("create");
        let (_, _, mut watch_a) = c.get_data("/a").watch().await.expect("watch");
        let (_, _, mut watch_b) = c.get_data("/b").watch().await.expect("watch");

        // The watch that observes: its waker records the event's delivery, and it is polled
        // first, so that the waiter below is the one holding the role.
        let seen = Arc::new(Flag(AtomicBool::new(false)));
        let first =
            Pin::new(&mut watch_b).poll(&mut Context::from_waker(&Waker::from(seen.clone())));
        assert!(first.is_pending(), "nothing changed yet");

        let flag = Arc::new(Flag(AtomicBool::new(false)));
        let waker = Waker::from(flag.clone());
        let mut get = None;
        match holder {
            Holder::Reply => {
                let mut read = c.get_data("/a").into_future();
                let first = Pin::new(&mut read).poll(&mut Context::from_waker(&waker));
                assert!(first.is_pending(), "the reply cannot be there yet");
                get = Some(read);
            }
            Holder::Watch => {
                let first = Pin::new(&mut watch_a).poll(&mut Context::from_waker(&waker));
                assert!(first.is_pending(), "nothing changed yet");
                writer.set_data("/a", "1").await.expect("write");
            }
        }
        while !flag.0.load(Ordering::SeqCst) {
            c.sleep(Duration::from_millis(1)).await;
        }
        drop(get);
        drop(watch_a);

        writer.set_data("/b", "1").await.expect("write");
        c.sleep(Duration::from_millis(500)).await;
        let delivered = seen.0.load(Ordering::SeqCst);
        writer.close().await;
        c.close().await;
        delivered
    })
    .expect("the run finishes")
}

#[test]
fn a_reply_waiter_dropped_after_the_socket_woke_it_leaves_nothing_unread() {
    assert!(
        notification_read_after_a_dropped_holder(Holder::Reply),
        "the notification was left for the driver's timer"
    );
}

#[test]
fn a_watch_dropped_after_the_socket_woke_it_leaves_nothing_unread() {
    assert!(
        notification_read_after_a_dropped_holder(Holder::Watch),
        "the notification was left for the driver's timer"
    );
}

/// The read role again: a waiting caller reads the reply to closeSession (with its own). The
/// session is over then, and only the driver finishes it (ends state streams, drops its task):
/// the caller's read must wake it, not leave it to its timer (the close timeout, 10 s here).
#[test]
fn a_close_read_by_a_waiting_caller_wakes_the_driver_to_finish() {
    use std::future::{Future, IntoFuture};
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;
    use std::task::{Context, Waker};

    let w = world(6);
    let w2 = w.clone();
    let took = w
        .block_on(LIMIT, async move {
            let c = w2
                .builder(Node(1), &w2.connect_string())
                .session_timeout(Duration::from_secs(30))
                .close_timeout(Duration::from_secs(10))
                .connect()
                .await
                .expect("connect");
            let mut states = c.state_changes();
            let waker = Waker::from(Arc::new(Flag(AtomicBool::new(false))));
            let mut get = c.get_data("/").into_future();
            let mut closing = Box::pin(c.close());
            {
                let cx = &mut Context::from_waker(&waker);
                assert!(std::pin::Pin::new(&mut get).poll(cx).is_pending());
                assert!(closing.as_mut().poll(cx).is_pending());
            }
            // Both replies arrive; their readiness goes to the waiting read, which is not
            // polled yet.
            c.sleep(Duration::from_millis(500)).await;
            let got = std::pin::Pin::new(&mut get).poll(&mut Context::from_waker(&waker));
            assert!(matches!(got, std::task::Poll::Ready(Ok(_))), "{got:?}");
            let start = w2.elapsed();
            while next_state(&mut states).await != SessionState::Lost(zk_client::LostReason::Closed)
            {
            }
            // The stream ends once the driver has finished the session.
            let end = std::future::poll_fn(|cx| std::pin::Pin::new(&mut states).poll_next(cx));
            assert_eq!(end.await, None);
            w2.elapsed() - start
        })
        .expect("the run finishes");
    assert!(
        took < Duration::from_secs(1),
        "the driver finished the closed session {took:?} later: only its timer woke it"
    );
}
