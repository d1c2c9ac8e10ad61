//! Ensemble tracking (`ClientBuilder::track_ensemble`, Curator's EnsembleTracker) against a real
//! ZooKeeper 3.9 ensemble with dynamic reconfiguration on.
//!
//! A client whose connect string names only server 1 learns the other two from
//! `/zookeeper/config`; an incremental `reconfig` then removes server 1, the tracker moves the
//! host list to servers 2 and 3, and once server 1 is stopped the same session carries on there.
//! Without tracking (the break tried: no `set_hosts` call) the client keeps only server 1 and the
//! host-list check fails.
//!
//! A second case runs the tracker under a chroot, where the config lies outside the client's
//! tree: a client on the leader hears of a follower's removal through its watch alone (no state
//! change in between, asserted), and after `restart()` a new tracker restores the full list that
//! a `set_hosts` had cut down. Breaks tried: the config read without a watch under a chroot (the
//! old behaviour), and restart() not starting a tracker; each fails its host-list check.
//!
//! The host list has no change event, so two waits poll `hosts()` every 20 ms, bounded by
//! [`WAIT`]: they wait for a condition, they assert no timing.

use std::collections::BTreeSet;
use std::future::{Future, IntoFuture};
use std::time::{Duration, Instant};

use futures_core::Stream;
use zk_client::{parse_ensemble_config, Client, SessionState};
use zk_testkit::real::{Ensemble, EnsembleOptions, ZkVersion};

/// Upper bound for any one wait: generous, the machine may be loaded.
const WAIT: Duration = Duration::from_secs(60);

type Outcome = Result<(), String>;

fn ports_of(c: &Client) -> BTreeSet<u16> {
    c.hosts().iter().map(|h| h.port).collect()
}

async fn within<T>(what: &str, f: impl Future<Output = T>) -> Result<T, String> {
    tokio::time::timeout(WAIT, f)
        .await
        .map_err(|_| format!("timed out waiting for {what}"))
}

/// Polls `hosts()` until it names exactly `want` (by port; every server is on 127.0.0.1).
async fn hosts_become(c: &Client, want: &BTreeSet<u16>) -> Outcome {
    let deadline = Instant::now() + WAIT;
    while &ports_of(c) != want {
        if Instant::now() > deadline {
            return Err(format!("hosts {:?}, want ports {want:?}", c.hosts()));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

async fn next_state(s: &mut zk_client::StateChanges) -> Option<SessionState> {
    std::future::poll_fn(|cx| std::pin::Pin::new(&mut *s).poll_next(cx)).await
}

async fn scenario(ens: &mut Ensemble) -> Outcome {
    let ports: Vec<u16> = ens.nodes().iter().map(|n| n.port()).collect();
    let port = |i: usize| ports[i];
    let all: BTreeSet<u16> = (0..3).map(port).collect();
    let rest: BTreeSet<u16> = [port(1), port(2)].into();

    let c = zk_tokio::builder(&format!("127.0.0.1:{}", port(0)))
        .track_ensemble(true)
        .session_timeout(Duration::from_secs(10))
        .connect()
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let session = c.client_id().ok_or("no session")?.id;
    // The first read of the config names all three servers.
    hosts_become(&c, &all).await?;

    // Another client, on servers 2 and 3, removes server 1 (the tracking client's only server
    // in its connect string) from the ensemble.
    let admin = zk_tokio::connect(&format!("127.0.0.1:{},127.0.0.1:{}", port(1), port(2)))
        .await
        .map_err(|e| format!("admin connect: {e}"))?;
    let (cfg, _) = admin
        .reconfig(None, Some("1"), None, -1)
        .await
        .map_err(|e| format!("reconfig: {e}"))?;
    let parsed = parse_ensemble_config(&cfg).map_err(|e| format!("{e}"))?;
    let parsed: BTreeSet<u16> = parsed.iter().map(|h| h.port).collect();
    if parsed != rest {
        return Err(format!("the new config names {parsed:?}"));
    }

    hosts_become(&c, &rest).await?;

    // Server 1 goes away: the session must carry on on 2 or 3.
    let mut states = c.state_changes();
    ens.stop(0).map_err(|e| format!("stop node 0: {e}"))?;
    if !c.is_connected() || c.current_host().map(|h| h.port) == Some(port(0)) {
        loop {
            match within("a reconnect", next_state(&mut states)).await? {
                Some(s) if s.is_connected() => break,
                Some(SessionState::Lost(r)) => return Err(format!("session lost: {r:?}")),
                Some(_) => {}
                None => return Err("the state stream ended".into()),
            }
        }
    }
    let on = c.current_host().ok_or("not on a server")?.port;
    if !rest.contains(&on) {
        return Err(format!("on port {on}, not on servers 2 or 3"));
    }
    if c.client_id().map(|s| s.id) != Some(session) {
        return Err("a different session after the move".into());
    }
    within(
        "a write",
        c.create("/tracked", "x").ephemeral().into_future(),
    )
    .await?
    .map_err(|e| format!("write after the move: {e}"))?;
    c.close().await;
    admin.close().await;
    Ok(())
}

/// Runs `scenario` on a fresh 3-node ZooKeeper 3.9 ensemble with dynamic reconfiguration on;
/// a failure panics with the scenario's error and the tail of each node's log.
fn on_a_reconfig_ensemble(scenario: impl AsyncFnOnce(&mut Ensemble) -> Outcome) {
    let mut opts = EnsembleOptions::quorum(ZkVersion::V3_9, 3);
    opts.reconfig = true;
    opts.max_session_timeout_ms = Some(20_000);
    let mut ens = match Ensemble::start(opts) {
        Ok(e) => e,
        Err(e) => panic!("cannot start a ZooKeeper 3.9 ensemble: {e}"),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("tokio: {e}"));
    let result = rt.block_on(scenario(&mut ens));
    if let Err(e) = result {
        let logs: String = (0..3)
            .map(|i| format!("--- node {i} ---\n{}\n", ens.log_tail(i, 30)))
            .collect();
        panic!("{e}\n{logs}");
    }
}

#[test]
fn the_client_follows_a_reconfig_off_its_only_server() {
    on_a_reconfig_ensemble(scenario);
}

async fn chroot_scenario(ens: &mut Ensemble) -> Outcome {
    let ports: Vec<u16> = ens.nodes().iter().map(|n| n.port()).collect();
    let leader = ens.leader().ok_or("no leader")?;
    let follower = (0..3).find(|&i| i != leader).ok_or("no follower")?;
    let all: BTreeSet<u16> = ports.iter().copied().collect();
    let rest: BTreeSet<u16> = (0..3)
        .filter(|&i| i != follower)
        .map(|i| ports[i])
        .collect();

    // On the leader, so that removing a follower leaves its connection alone.
    let c = zk_tokio::builder(&format!("127.0.0.1:{}/app", ports[leader]))
        .track_ensemble(true)
        .session_timeout(Duration::from_secs(10))
        .connect()
        .await
        .map_err(|e| format!("connect: {e}"))?;
    hosts_become(&c, &all).await?;
    let mut states = c.state_changes();

    let admin = zk_tokio::connect(&format!("127.0.0.1:{}", ports[leader]))
        .await
        .map_err(|e| format!("admin connect: {e}"))?;
    let id = (follower + 1).to_string();
    admin
        .reconfig(None, Some(&id), None, -1)
        .await
        .map_err(|e| format!("reconfig: {e}"))?;
    hosts_become(&c, &rest).await?;
    // Learnt from the watch, not from a reconnect's re-read.
    if let Ok(s) = tokio::time::timeout(Duration::ZERO, next_state(&mut states)).await {
        return Err(format!("the state changed ({s:?}) before the hosts did"));
    }
    if c.current_host().map(|h| h.port) != Some(ports[leader]) {
        return Err("the client left the leader".into());
    }

    // restart() keeps the current list and starts a tracker for the new session, which puts back
    // what set_hosts left out.
    c.set_hosts(&format!("127.0.0.1:{}", ports[leader]))
        .map_err(|e| format!("set_hosts: {e}"))?;
    within("restart", c.restart())
        .await?
        .map_err(|e| format!("restart: {e}"))?;
    hosts_become(&c, &rest).await?;
    c.close().await;
    admin.close().await;
    Ok(())
}

#[test]
fn under_a_chroot_the_config_is_watched_and_restart_tracks_again() {
    on_a_reconfig_ensemble(chroot_scenario);
}
