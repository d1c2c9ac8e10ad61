//! The client inside a turmoil simulation: zk-tokio's `turmoil` runtime on a client host,
//! SimServer on server hosts `zk1`..`zkN` (`sim::turmoil::TurmoilEnsemble`), turmoil's network
//! and clock in between. Faults are turmoil's own (`partition`/`repair`, `hold`/`release`,
//! `Sim::crash`), as a user already on turmoil would inject them.
//!
//! Everything runs in simulated time on one thread, from turmoil's seed: the last test runs
//! the fail-over scenario twice and checks that the two runs saw the same thing at the same
//! simulated instants.

use std::time::Duration;

use futures_core::Stream;
use zk_client::{Client, EventType, LostReason, Runtime, SessionState};
use zk_testkit::sim::turmoil::TurmoilEnsemble;
use zk_testkit::sim::SimConfig;

/// The session timeout the tests ask for (the model's default tickTime allows 1 s to 10 s).
const SESSION: Duration = Duration::from_secs(4);

fn sim(seed: u64) -> turmoil::Sim<'static> {
    turmoil::Builder::new()
        .rng_seed(seed)
        .simulation_duration(Duration::from_secs(300))
        .build()
}

fn ensemble(servers: usize) -> TurmoilEnsemble {
    TurmoilEnsemble::new(SimConfig {
        servers,
        ..SimConfig::default()
    })
}

async fn connect(connect_string: &str) -> Result<Client, zk_client::Error> {
    zk_tokio::turmoil::builder(connect_string)
        .session_timeout(SESSION)
        .connect()
        .await
}

async fn next_state(states: &mut (impl Stream<Item = SessionState> + Unpin)) -> SessionState {
    std::future::poll_fn(|cx| std::pin::Pin::new(&mut *states).poll_next(cx))
        .await
        .unwrap_or(SessionState::Lost(LostReason::Closed))
}

/// Waits (in simulated time) until the model no longer knows session `id`.
async fn until_expired_in_model(zk: &TurmoilEnsemble, id: i64) {
    while zk.with_model(|m, _| m.session_ids().contains(&id)) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[test]
fn a_client_on_a_turmoil_host_creates_reads_and_watches() -> turmoil::Result {
    let mut sim = sim(1);
    let zk = ensemble(1);
    zk.register(&mut sim);
    let cs = zk.connect_string();
    assert_eq!(cs, "zk1:2181");
    let model = zk.clone();
    sim.client("app", async move {
        let c = connect(&cs).await?;
        c.create("/a", "x").await?;
        let (data, _stat, watch) = c.get_data("/a").watch().await?;
        assert_eq!(&data[..], b"x");
        c.set_data("/a", "y").await?;
        let ev = watch.await?;
        assert_eq!(ev.event_type, EventType::NodeDataChanged);
        assert_eq!(ev.path, "/a");
        let (data, _) = c.get_data("/a").await?;
        assert_eq!(&data[..], b"y");
        c.close().await;
        let held = model.with_model(|m, _| m.node("/a").and_then(|n| n.data));
        assert_eq!(
            held.as_deref(),
            Some(&b"y"[..]),
            "the model holds the write"
        );
        Ok(())
    });
    sim.run()
}

#[test]
fn a_partition_suspends_the_client_and_repair_resumes_the_same_session() -> turmoil::Result {
    let mut sim = sim(2);
    let zk = ensemble(1);
    zk.register(&mut sim);
    let cs = zk.connect_string();
    sim.client("app", async move {
        let c = connect(&cs).await?;
        let mut states = c.state_changes();
        let id = c.client_id().ok_or("no session id")?;
        c.create("/e", "").ephemeral().await?;

        turmoil::partition("app", "zk1");
        assert_eq!(next_state(&mut states).await, SessionState::Suspended);
        // A write made while suspended waits for the session, and is sent once it is back.
        let writer = c.clone();
        let pending =
            tokio::task::spawn_local(async move { writer.set_data("/e", "while-cut").await });
        tokio::task::yield_now().await;
        turmoil::repair("app", "zk1");
        assert_eq!(next_state(&mut states).await, SessionState::Connected);
        assert_eq!(c.client_id(), Some(id.clone()), "the same session");
        pending.await??;
        let (data, stat) = c.get_data("/e").await?;
        assert_eq!(&data[..], b"while-cut");
        assert_eq!(
            stat.ephemeral_owner, id.id,
            "the ephemeral lived through it"
        );
        c.close().await;
        Ok(())
    });
    sim.run()
}

#[test]
fn a_held_link_suspends_the_client_and_release_resumes_the_same_session() -> turmoil::Result {
    let mut sim = sim(3);
    let zk = ensemble(1);
    zk.register(&mut sim);
    let cs = zk.connect_string();
    sim.client("app", async move {
        let c = connect(&cs).await?;
        let mut states = c.state_changes();
        let id = c.client_id().ok_or("no session id")?;

        // Nothing crosses the link, nothing is lost: the client gives up on the silent
        // connection at its read timeout.
        turmoil::hold("app", "zk1");
        assert_eq!(next_state(&mut states).await, SessionState::Suspended);
        turmoil::release("app", "zk1");
        assert_eq!(next_state(&mut states).await, SessionState::Connected);
        assert_eq!(c.client_id(), Some(id.clone()), "the same session");
        c.create("/after", "").await?;
        c.close().await;
        Ok(())
    });
    sim.run()
}

#[test]
fn a_partition_longer_than_the_session_timeout_expires_it_and_its_ephemerals() -> turmoil::Result {
    let mut sim = sim(4);
    let zk = ensemble(1);
    zk.register(&mut sim);
    let cs = zk.connect_string();
    let model = zk.clone();
    sim.client("app", async move {
        let c = connect(&cs).await?;
        let mut states = c.state_changes();
        let id = c.client_id().ok_or("no session id")?;
        c.create("/eph", "").ephemeral().await?;

        turmoil::partition("app", "zk1");
        assert_eq!(next_state(&mut states).await, SessionState::Suspended);
        until_expired_in_model(&model, id.id).await;
        assert!(
            model.with_model(|m, _| m.node("/eph").is_none()),
            "the ephemeral went with its session"
        );
        turmoil::repair("app", "zk1");
        // Back in touch, the server says the session is over; the client (renewing, kazoo's
        // default) starts a new one.
        let mut s = next_state(&mut states).await;
        while s == SessionState::Suspended {
            s = next_state(&mut states).await;
        }
        assert_eq!(s, SessionState::Lost(LostReason::Expired));
        while !s.is_connected() {
            s = next_state(&mut states).await;
        }
        let renewed = c.client_id().ok_or("no session id")?;
        assert_ne!(renewed.id, id.id, "a new session");
        assert!(c.exists("/eph").await?.is_none());
        c.close().await;
        Ok(())
    });
    sim.run()
}

/// The fail-over scenario: on a 3-server ensemble, partition the client from the server it is
/// on; it moves to another with its session. Returns what it saw, with simulated times.
fn fail_over(seed: u64) -> Result<Vec<String>, Box<dyn std::error::Error>> {
    let mut sim = sim(seed);
    let zk = ensemble(3);
    zk.register(&mut sim);
    let cs = zk.connect_string();
    assert_eq!(cs, "zk1:2181,zk2:2181,zk3:2181");
    let seen = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    let log = seen.clone();
    sim.client("app", async move {
        let note = |what: String| {
            let at = turmoil::sim_elapsed().unwrap_or_default();
            log.borrow_mut().push(format!("{at:?} {what}"));
        };
        let c = connect(&cs).await?;
        let mut states = c.state_changes();
        let id = c.client_id().ok_or("no session id")?;
        let first = c.current_host().ok_or("no current host")?.host;
        note(format!("connected to {first}"));
        c.create("/x", "1").await?;

        turmoil::partition("app", first.as_str());
        let mut s = next_state(&mut states).await;
        assert_eq!(s, SessionState::Suspended);
        note(format!("{s}"));
        while !s.is_connected() {
            s = next_state(&mut states).await;
            note(format!("{s}"));
        }
        assert_eq!(s, SessionState::Connected);
        let now_on = c.current_host().ok_or("no current host")?.host;
        note(format!("moved to {now_on}"));
        assert_ne!(now_on, first, "the client moved to another server");
        assert_eq!(c.client_id(), Some(id.clone()), "with its session");
        c.set_data("/x", "2").await?;
        let (data, _) = c.get_data("/x").await?;
        assert_eq!(&data[..], b"2");
        c.close().await;
        Ok(())
    });
    sim.run()?;
    let seen = seen.borrow().clone();
    Ok(seen)
}

#[test]
fn partitioned_from_its_server_the_client_moves_to_another_with_its_session() {
    // Seeds vary turmoil's latencies and the order of events around the partition.
    for seed in 0..20 {
        let seen = fail_over(seed).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        assert!(seen.len() >= 4, "seed {seed}: {seen:?}");
    }
}

#[test]
fn the_same_seed_replays_the_same_run() {
    let a = fail_over(6).unwrap_or_else(|e| panic!("seed 6: {e}"));
    let b = fail_over(6).unwrap_or_else(|e| panic!("seed 6: {e}"));
    assert_eq!(a, b, "two runs of seed 6 differ");
}

#[test]
fn a_crashed_server_host_drops_its_clients_and_bounce_brings_the_session_back() -> turmoil::Result {
    let mut sim = sim(7);
    let zk = ensemble(1);
    zk.register(&mut sim);
    let cs = zk.connect_string();
    let model = zk.clone();
    // How far the client got, so the test can crash and bounce the host between steps.
    let phase = std::rc::Rc::new(std::cell::Cell::new(0));
    let seen = phase.clone();
    sim.client("app", async move {
        let c = connect(&cs).await?;
        let mut states = c.state_changes();
        let id = c.client_id().ok_or("no session id")?;
        seen.set(1);
        assert_eq!(next_state(&mut states).await, SessionState::Suspended);
        seen.set(2);
        let mut s = next_state(&mut states).await;
        while !s.is_connected() {
            s = next_state(&mut states).await;
        }
        assert_eq!(c.client_id(), Some(id), "the same session");
        c.close().await;
        Ok(())
    });
    while phase.get() < 1 {
        sim.step()?;
    }
    sim.crash("zk1");
    assert!(
        !model.with_model(|m, _| m.is_up(0)),
        "the host's crash is the server's"
    );
    while phase.get() < 2 {
        sim.step()?;
    }
    sim.bounce("zk1");
    sim.run()?;
    assert!(model.with_model(|m, _| m.is_up(0)), "bounce restarts it");
    Ok(())
}

#[test]
fn the_runtime_reads_turmoils_clock() -> turmoil::Result {
    let mut sim = sim(8);
    sim.client("app", async {
        let rt = zk_tokio::turmoil::TurmoilRuntime::default();
        let t0 = rt.now();
        tokio::time::sleep(Duration::from_secs(60)).await;
        let passed = rt.now() - t0;
        assert!(
            passed >= Duration::from_secs(60) && passed < Duration::from_secs(61),
            "a simulated minute passed, the runtime saw {passed:?}"
        );
        Ok(())
    });
    sim.run()
}

#[test]
fn an_idle_client_keeps_its_session_for_a_simulated_minute() -> turmoil::Result {
    let mut sim = sim(9);
    let zk = ensemble(1);
    zk.register(&mut sim);
    let cs = zk.connect_string();
    sim.client("app", async move {
        let c = connect(&cs).await?;
        let id = c.client_id().ok_or("no session id")?;
        c.create("/idle", "").ephemeral().await?;
        // Fifteen session timeouts: only the client's pings, on simulated time, keep it alive.
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert_eq!(c.state(), SessionState::Connected);
        assert_eq!(c.client_id(), Some(id));
        assert!(c.exists("/idle").await?.is_some());
        c.close().await;
        Ok(())
    });
    sim.run()
}
