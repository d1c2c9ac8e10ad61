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
