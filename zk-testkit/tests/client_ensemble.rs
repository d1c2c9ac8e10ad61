//! The ensemble part of the client suite: zk-client on every runtime (tokio, async-std, smol)
//! against real 3-node ensembles of ZooKeeper 3.8 and 3.9, with servers killed, paused, stopped
//! and restarted under a live session.
//!
//! - `watches_survive_a_server_kill`: kill -9 the server the session is on; the client goes
//!   Suspended, then Connected to another server with the same session; a one-shot watch, a
//!   DataWatch, a ChildrenWatch and a persistent recursive watch armed before the kill all fire
//!   for changes made afterwards, and the session's ephemeral node is still there.
//! - `session_expiry`: the ensemble expires a session whose client cannot reach it; the client
//!   reports Lost(Expired), ends every watcher, fails what was pending with SessionExpired, and
//!   starts a new session (the default, kazoo's) or, with `renew_session_after_expiry(false)`
//!   (the Java client's way), stays dead. See the scenario for why it pauses one server, not all
//!   three.
//! - `read_only_mode`: with the quorum gone, a `read_only(true)` client ends up on the read-only
//!   survivor (reads work, writes fail with NotReadOnly) and comes back to a read-write server on
//!   its own once the quorum is back.
//!
//! One ensemble per version and kind serves all three runtimes, one runtime after another; each
//! scenario restores what it broke (and the runner heals the ensemble after a failure) so that the
//! next run finds three serving nodes. Tests run in parallel within this binary, so a static mutex
//! lets at most one 3-node ensemble run at a time. About 80 s of wall time on two cores, ensemble
//! start-ups included (the scenarios take 1-3 s each, read-only mode 7-9 s: it stops and restarts
//! two servers).
//!
//! Nothing asserts timing: every wait is for a state, an event or a reply, bounded generously.
//! As in the suite, a scenario returns `Err(message)` rather than panicking, and each test reports
//! every failed (runtime, scenario) at once. `SUITE_FILTER=name` runs only the matching scenarios.

#[macro_use]
mod suite;

use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use futures_core::Stream;
use suite::{Ctx, Outcome, ServerKind};
use zk_client::{
    AddWatchMode, Client, ClientBuilder, Error, EventType, LostReason, PersistentItem, Runtime,
    SessionState, WatchEnd,
};
use zk_testkit::real::{Ensemble, EnsembleOptions, ServerMode, ZkVersion};

/// Upper bound for any one state change, event or reply: generous, the machine may be loaded.
const WAIT: Duration = Duration::from_secs(30);

/// Upper bound for one whole scenario (it waits for servers to restart).
const SCENARIO_WAIT: Duration = Duration::from_secs(180);

type BoxFut<'a> = Pin<Box<dyn Future<Output = Outcome> + 'a>>;

/// A scenario drives the ensemble directly: the harness's calls block (a restart waits seconds
/// for the JVM), which is fine here because a scenario runs as the `block_on` future on the
/// test's own thread, while the clients' drivers run on the runtime's worker threads (tokio's
/// workers, async-std's and smol's global executors), so sessions keep their heartbeats and
/// events queue up meanwhile.
type Scenario = for<'a> fn(&'a Ctx, &'a mut Ensemble) -> BoxFut<'a>;

/// At most one 3-node ensemble at a time in this binary.
static ENSEMBLES: Mutex<()> = Mutex::new(());

fn one_ensemble_at_a_time() -> MutexGuard<'static, ()> {
    // A test that panicked while holding it leaves nothing behind that matters.
    ENSEMBLES.lock().unwrap_or_else(|e| e.into_inner())
}

// ---- helpers ------------------------------------------------------------------------------

/// A builder on `connect` (the whole ensemble unless a scenario narrows it).
fn builder(ctx: &Ctx, connect: &str, session_timeout: Duration) -> ClientBuilder {
    ClientBuilder::new(ctx.rt.clone(), connect)
        .session_timeout(session_timeout)
        .connect_timeout(WAIT)
}

async fn connect(b: ClientBuilder) -> Result<Client, String> {
    b.connect().await.map_err(|e| format!("connect: {e}"))
}

/// The index of the node serving on `port`.
fn node_on(ens: &Ensemble, port: u16) -> Result<usize, String> {
    ens.nodes()
        .iter()
        .position(|n| n.port() == port)
        .ok_or_else(|| format!("no node on port {port}"))
}

/// The node the client is connected to.
fn node_of(ens: &Ensemble, c: &Client) -> Result<usize, String> {
    let host = c.current_host().ok_or("the client is not connected")?;
    node_on(ens, host.port)
}

/// `127.0.0.1:port,...` for the given nodes only.
fn connect_string_of(ens: &Ensemble, nodes: &[usize]) -> String {
    nodes
        .iter()
        .map(|&i| format!("127.0.0.1:{}", ens.nodes()[i].port()))
        .collect::<Vec<_>>()
        .join(",")
}

/// Reads state changes until one satisfies `done`; returns every state read, in order.
async fn states_until<S: Stream<Item = SessionState> + Unpin>(
    ctx: &Ctx,
    states: &mut S,
    done: impl Fn(SessionState) -> bool,
) -> Result<Vec<SessionState>, String> {
    let mut seen = Vec::new();
    loop {
        match ctx.next(states, WAIT).await {
            Ok(s) => {
                seen.push(s);
                if done(s) {
                    return Ok(seen);
                }
            }
            Err(e) => return Err(format!("{e}; states so far: {seen:?}")),
        }
    }
}

/// Checks that a stream ends (yields `None`) within `WAIT`, with no item before.
async fn ends<S: Stream + Unpin>(ctx: &Ctx, s: &mut S) -> Outcome
where
    S::Item: std::fmt::Debug,
{
    let next = std::future::poll_fn(|cx| Pin::new(&mut *s).poll_next(cx));
    match ctx.within(WAIT, next).await? {
        None => Ok(()),
        Some(item) => Err(format!("expected the end of the stream, got {item:?}")),
    }
}

/// Whether a read-only client's states on its way back to a read-write server are Suspended,
/// then possibly read-only again (see `read_only_mode`), and Connected at last; never Lost, since
/// a session that began read-only is replaced without an expiry.
fn back_to_read_write(seen: &[SessionState]) -> bool {
    seen.first() == Some(&SessionState::Suspended)
        && seen.split_last().is_some_and(|(last, before)| {
            *last == SessionState::Connected
                && before
                    .iter()
                    .all(|s| matches!(s, SessionState::Suspended | SessionState::ConnectedReadOnly))
        })
}

/// Resumes paused nodes, restarts stopped or killed ones, and waits for a serving ensemble with
/// one leader, so that the next run starts from a whole ensemble whatever the last one did.
fn heal(ens: &mut Ensemble) -> Result<(), String> {
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

// ---- scenarios ----------------------------------------------------------------------------

/// Watches of every kind and an ephemeral node survive a `kill -9` of the session's server.
/// kazoo's set_hosts: a server list without the session's server moves the same session
/// (ephemerals and watches intact) onto one of the listed servers.
async fn set_hosts_moves_the_session(ctx: &Ctx, ens: &mut Ensemble) -> Outcome {
    let (other, base) = ctx.fresh("sethosts").await?;
    let c = connect(builder(ctx, &ctx.connect, Duration::from_secs(4))).await?;
    let session = c.client_id().ok_or("no session id")?.id;
    let eph = ok!(c.create(&format!("{base}/eph"), "").ephemeral().await);
    let (_, _, once) = ok!(c.get_data(&eph).watch().await);
    let mut states = c.state_changes();
    let was_on = node_of(ens, &c)?;
    let rest: Vec<usize> = (0..ens.nodes().len()).filter(|&i| i != was_on).collect();
    ok!(c.set_hosts(&connect_string_of(ens, &rest)));
    let seen = states_until(ctx, &mut states, |s| s.is_connected()).await?;
    check!(
        seen == [SessionState::Suspended, SessionState::Connected],
        "states while moving: {seen:?}"
    );
    let now_on = node_of(ens, &c)?;
    check!(
        rest.contains(&now_on),
        "moved to {now_on}, not off {was_on}"
    );
    check!(
        c.client_id().map(|s| s.id) == Some(session),
        "the same session after the move"
    );
    check!(
        c.hosts().len() == rest.len(),
        "hosts() is the new list: {:?}",
        c.hosts()
    );
    ok!(other.set_data(&eph, "x").await);
    let ev = ok!(ctx.within(WAIT, once).await?);
    check!(
        ev.event_type == EventType::NodeDataChanged,
        "the watch moved with the session {ev:?}"
    );
    c.close().await;
    other.close().await;
    Ok(())
}

async fn watches_survive_a_server_kill(ctx: &Ctx, ens: &mut Ensemble) -> Outcome {
    let (other, base) = ctx.fresh("kill").await?;
    let (data, dw, cw, tree, ridden) = (
        format!("{base}/data"),
        format!("{base}/dw"),
        format!("{base}/cw"),
        format!("{base}/tree"),
        format!("{base}/ridden"),
    );
    for p in [&data, &dw, &cw, &tree, &ridden] {
        ok!(other.create(p, "0").await);
    }

    // The session timeout is the servers' maximum (20 ticks): the survivors may have to elect a
    // leader before the client can resume its session.
    let c = connect(builder(ctx, &ctx.connect, Duration::from_secs(4))).await?;
    let session = c.client_id().ok_or("no session id")?.id;
    let eph = ok!(c.create(&format!("{base}/eph"), "").ephemeral().await);
    let (_, _, once) = ok!(c.get_data(&data).watch().await);
    let mut data_items = c.data_watch(&dw);
    let first = ok!(ctx.next(&mut data_items, WAIT).await?);
    check!(
        first.data.as_ref().is_some_and(|(d, _)| &d[..] == b"0"),
        "first DataWatch item {first:?}"
    );
    let mut child_items = c.children_watch(&cw);
    let first = ok!(ctx.next(&mut child_items, WAIT).await?);
    check!(
        first.children.as_ref().is_some_and(|c| c.is_empty()),
        "first ChildrenWatch item {first:?}"
    );
    let mut recursive = ok!(c.add_watch(&tree, AddWatchMode::PersistentRecursive).await);
    // A one-shot watch riding on a persistent one of the same path: the re-arm lists it in the
    // data list ahead of the persistent list, which must leave the persistent watch armed (before
    // 3.9 the server keeps one mode per path, the last listed).
    let mut persistent = ok!(c.add_watch(&ridden, AddWatchMode::Persistent).await);
    let (_, _, rider) = ok!(c.get_data(&ridden).watch().await);
    let mut states = c.state_changes();

    let victim = node_of(ens, &c)?;
    let role = ens.mode(victim);
    eprintln!(
        "[{:?} {}] killing node {victim} ({role:?}), the session's server",
        ctx.kind, ctx.runtime_name
    );
    ens.kill(victim)
        .map_err(|e| format!("kill node {victim}: {e}"))?;

    let seen = states_until(ctx, &mut states, |s| s.is_connected()).await?;
    check!(
        seen == [SessionState::Suspended, SessionState::Connected],
        "states after killing the session's server ({role:?}): {seen:?}"
    );
    let after = c.client_id().ok_or("no session id after the failover")?.id;
    check!(
        after == session,
        "same session after the failover: {session:#x} then {after:#x}"
    );
    let now_on = node_of(ens, &c)?;
    check!(now_on != victim, "still on the killed node {victim}");

    // A reply on the session after the reconnect means its SetWatches2 was processed before
    // (one connection is ordered): only then can another session's changes not slip past the
    // re-armed persistent watch (ZOOKEEPER-4698; the stream says Resync for that gap).
    ok!(c.exists(&tree).await);
    // Every watch armed before the kill fires for changes made after it.
    ok!(other.set_data(&data, "1").await);
    ok!(other.set_data(&dw, "1").await);
    ok!(other.create(&format!("{cw}/kid"), "").await);
    ok!(other.create(&format!("{tree}/a"), "").await);
    ok!(other.set_data(&tree, "1").await);

    let ev = ok!(ctx.within(WAIT, once).await?);
    check!(
        ev.event_type == EventType::NodeDataChanged && ev.path == data,
        "one-shot watch {ev:?}"
    );
    let item = ok!(ctx.next(&mut data_items, WAIT).await?);
    check!(
        item.data.as_ref().is_some_and(|(d, _)| &d[..] == b"1")
            && item
                .event
                .as_ref()
                .is_some_and(|e| e.event_type == EventType::NodeDataChanged),
        "DataWatch item after the failover {item:?}"
    );
    let item = ok!(ctx.next(&mut child_items, WAIT).await?);
    check!(
        item.children.as_ref().is_some_and(|c| *c == ["kid"]),
        "ChildrenWatch item after the failover {item:?}"
    );
    // The server re-arms a persistent watch without catch-up events (ZOOKEEPER-4698): the
    // stream says so first, then reports changes as usual.
    let item = ctx.next(&mut recursive, WAIT).await?;
    check!(
        item == PersistentItem::Resync,
        "recursive watch, a resync item first after the failover: {item:?}"
    );
    let ev = ctx.next(&mut recursive, WAIT).await?;
    check!(
        ev.event().is_some_and(
            |ev| ev.event_type == EventType::NodeCreated && ev.path == format!("{tree}/a")
        ),
        "recursive watch, first event {ev:?}"
    );
    let ev = ctx.next(&mut recursive, WAIT).await?;
    check!(
        ev.event()
            .is_some_and(|ev| ev.event_type == EventType::NodeDataChanged && ev.path == tree),
        "recursive watch, second event {ev:?}"
    );

    ok!(other.set_data(&ridden, "1").await);
    let ev = ok!(ctx.within(WAIT, rider).await?);
    check!(
        ev.event_type == EventType::NodeDataChanged && ev.path == ridden,
        "riding one-shot watch {ev:?}"
    );
    let item = ctx.next(&mut persistent, WAIT).await?;
    check!(
        item == PersistentItem::Resync,
        "persistent watch under the rider, a resync item first: {item:?}"
    );
    ok!(other.set_data(&ridden, "2").await);
    for want in ["first", "second"] {
        let ev = ctx.next(&mut persistent, WAIT).await?;
        check!(
            ev.event()
                .is_some_and(|ev| ev.event_type == EventType::NodeDataChanged && ev.path == ridden),
            "persistent watch under the rider, {want} change {ev:?}"
        );
    }

    // The session, and so its ephemeral node, lived through the failover.
    let st = ok!(other.exists(&eph).await).ok_or("the ephemeral node is gone")?;
    check!(
        st.ephemeral_owner == session,
        "ephemeral owner {:#x}",
        st.ephemeral_owner
    );

    // The next run needs all three servers.
    ens.restart(victim)
        .map_err(|e| format!("restart node {victim}: {e}"))?;
    ens.wait_all_ready().map_err(|e| format!("{e}"))?;
    drop((data_items, child_items, recursive, persistent));
    c.close().await;
    other.close().await;
    Ok(())
}

/// Session expiry: the ensemble expires the session, and the client tells everyone.
///
/// Why not simply SIGSTOP all three servers for longer than the session timeout: on SIGCONT the
/// servers' clocks have moved on, and what happens next is a race. Each follower's read from the
/// leader has an SO_TIMEOUT of `syncLimit` ticks, measured on the monotonic clock that kept
/// running while the JVM was stopped, so it times out at once ("Read timed out" in
/// `Learner.readPacket`): the followers drop the leader, and the ensemble elects again. A new
/// leader's session tracker gives every session a fresh, full timeout, so the session survives
/// unless the old leader's session tracker, which also sees its deadline long past, expired it and
/// got the closeSession committed before the quorum fell apart. Also, the ConnectRequests the
/// client sent during the pause wait in the servers' accept queues and, once processed, touch
/// the session. In experiments (3.8 and 3.9) one such pause in eight left the session alive.
///
/// What expires a session every time: a client that can reach only one follower, and that
/// follower alone paused. The leader and the other follower keep their quorum and their clocks;
/// nothing touches the session (the paused follower cannot forward the client's pings), so the
/// leader expires it after the session timeout and commits the closeSession, deleting the
/// ephemerals. The test waits for exactly that (the ephemerals vanish, seen from a client on the
/// two running servers) rather than for a fixed time, and then resumes the follower: it finds its
/// leader gone, rejoins, and answers the client's resume with "expired" (a ConnectResponse with
/// timeout 0, as the leader no longer knows the session).
async fn session_expiry(ctx: &Ctx, ens: &mut Ensemble) -> Outcome {
    let (setup, base) = ctx.fresh("expiry").await?;
    let watched = format!("{base}/w");
    ok!(setup.create(&watched, "0").await);
    setup.close().await;

    let leader = ens.leader().ok_or("no leader")?;
    let follower = (leader + 1) % 3;
    let rest: Vec<usize> = (0..3).filter(|&i| i != follower).collect();
    let on_follower = connect_string_of(ens, &[follower]);

    // Two sessions on the follower: `a` renews after expiry (the default), `b` does not. 2 s is
    // within the servers' bounds (2 to 20 ticks of 200 ms).
    let timeout = Duration::from_secs(2);
    let a = connect(builder(ctx, &on_follower, timeout)).await?;
    let b = connect(builder(ctx, &on_follower, timeout).renew_session_after_expiry(false)).await?;
    let a_id = a.client_id().ok_or("no session id")?.id;
    let b_id = b.client_id().ok_or("no session id")?.id;
    check!(
        a.session_timeout() == Some(timeout),
        "negotiated {:?}",
        a.session_timeout()
    );
    let a_eph = ok!(a.create(&format!("{base}/a"), "").ephemeral().await);
    let b_eph = ok!(b.create(&format!("{base}/b"), "").ephemeral().await);
    let (_, _, a_once) = ok!(a.get_data(&watched).watch().await);
    let (_, _, b_once) = ok!(b.get_data(&watched).watch().await);
    let mut a_persistent = ok!(a.add_watch(&base, AddWatchMode::PersistentRecursive).await);
    let mut b_persistent = ok!(b.add_watch(&base, AddWatchMode::PersistentRecursive).await);
    let mut a_items = a.data_watch(&watched);
    let mut b_items = b.data_watch(&watched);
    for items in [&mut a_items, &mut b_items] {
        let first = ok!(ctx.next(items, WAIT).await?);
        check!(first.data.is_some(), "first DataWatch item {first:?}");
    }
    let mut a_states = a.state_changes();
    let mut b_states = b.state_changes();

    ens.pause(follower)
        .map_err(|e| format!("pause node {follower}: {e}"))?;
    let s = ctx.next(&mut a_states, WAIT).await?;
    check!(s == SessionState::Suspended, "a: first state {s}");
    let s = ctx.next(&mut b_states, WAIT).await?;
    check!(s == SessionState::Suspended, "b: first state {s}");
    // Submitted while suspended, so queued (a request in flight when the link died would fail
    // with ConnectionLoss instead).
    let a_pending = a.get_data(&watched).into_future();
    let b_pending = b.get_data(&watched).into_future();

    // Wait for the ensemble to expire both sessions: their ephemerals go.
    let checker = connect(builder(
        ctx,
        &connect_string_of(ens, &rest),
        Duration::from_secs(4),
    ))
    .await?;
    for eph in [&a_eph, &b_eph] {
        let (stat, gone) = ok!(checker.exists(eph).watch().await);
        if stat.is_some() {
            let ev = ok!(ctx.within(WAIT, gone).await?);
            check!(
                ev.event_type == EventType::NodeDeleted,
                "{eph} while its session expires: {ev:?}"
            );
        }
    }
    checker.close().await;
    ens.resume(follower)
        .map_err(|e| format!("resume node {follower}: {e}"))?;

    // a: told, then a new session.
    let seen = states_until(ctx, &mut a_states, |s| s == SessionState::Connected).await?;
    check!(
        seen == [
            SessionState::Lost(LostReason::Expired),
            SessionState::Connecting,
            SessionState::Connected
        ],
        "a: states after the expiry {seen:?}"
    );
    let a_new = a.client_id().ok_or("a: no session id")?.id;
    check!(a_new != a_id, "a: a new session, not {a_id:#x} again");
    let r = ctx.within(WAIT, a_pending).await?;
    check!(
        matches!(r, Err(Error::SessionExpired)),
        "a: pending request {r:?}"
    );
    let r = ctx.within(WAIT, a_once).await?;
    check!(
        matches!(r, Err(Error::SessionExpired)),
        "a: one-shot watch {r:?}"
    );
    ends(ctx, &mut a_persistent).await?;
    check!(
        a_persistent.end_reason() == Some(WatchEnd::SessionLost(LostReason::Expired)),
        "a: persistent watch ended with {:?}",
        a_persistent.end_reason()
    );
    check!(
        ok!(a.exists(&a_eph).await).is_none(),
        "a: the old session's ephemeral is gone"
    );
    ok!(a.create(&a_eph, "").ephemeral().await);
    // The DataWatch recipe reads again in the new session and finds the node unchanged: no
    // item (kazoo's rule); the next item is the next real change.
    ok!(a.set_data(&watched, "1").await);
    let item = ok!(ctx.next(&mut a_items, WAIT).await?);
    check!(
        item.data.as_ref().is_some_and(|(d, _)| &d[..] == b"1"),
        "a: the DataWatch's next item is the change, not the unchanged node again: {item:?}"
    );

    // b: told, and dead for good.
    let s = ctx.next(&mut b_states, WAIT).await?;
    check!(
        s == SessionState::Lost(LostReason::Expired),
        "b: state after the expiry {s}"
    );
    ends(ctx, &mut b_states).await?;
    check!(
        b.state() == SessionState::Lost(LostReason::Expired),
        "b: state {}",
        b.state()
    );
    let r = ctx.within(WAIT, b_pending).await?;
    check!(
        matches!(r, Err(Error::SessionExpired)),
        "b: pending request {r:?}"
    );
    let r = ctx.within(WAIT, b_once).await?;
    check!(
        matches!(r, Err(Error::SessionExpired)),
        "b: one-shot watch {r:?}"
    );
    ends(ctx, &mut b_persistent).await?;
    check!(
        b_persistent.end_reason() == Some(WatchEnd::SessionLost(LostReason::Expired)),
        "b: persistent watch ended with {:?}",
        b_persistent.end_reason()
    );
    let item = ctx.next(&mut b_items, WAIT).await?;
    check!(
        matches!(item, Err(Error::SessionExpired)),
        "b: last DataWatch item {item:?}"
    );
    ends(ctx, &mut b_items).await?;
    let r = b.get_data(&watched).await;
    check!(
        matches!(r, Err(Error::SessionExpired)),
        "b: request after the expiry {r:?}"
    );
    check!(
        b.client_id().map(|s| s.id) != Some(b_id),
        "b: the expired session {b_id:#x} is not reported as alive"
    );

    // The next run needs the follower back in the quorum.
    ens.wait_all_ready().map_err(|e| format!("{e}"))?;
    drop((a_items, b_items, a_persistent, b_persistent));
    a.close().await;
    b.close().await;
    Ok(())
}

/// Read-only mode: the quorum goes, the client goes read-only, the quorum comes back, and so
/// does the client.
///
/// ZooKeeper 3.7+ lets a read-only server hold only *local* sessions: it refuses to resume a
/// global session ("Refusing global session reconnection in RO mode": it closes the connection),
/// and creates sessions only with `localSessionsEnabled=true`. So the ensemble runs
/// with local sessions, and every session here is local to the server that created it. A local
/// session dies with its server's role: when the survivor loses its quorum it shuts down its
/// follower (or leader) server, local sessions included, and starts a read-only one. The client
/// resuming there is therefore told its session expired ("Invalid session ..., probably expired",
/// a ConnectResponse with timeout 0), starts a new session (kazoo's renewal) and gets a read-only
/// one: Suspended, Lost(Expired), Connecting, ConnectedReadOnly. A client that starts while only
/// the read-only server runs goes straight to ConnectedReadOnly.
///
/// When the stopped servers come back, the survivor rejoins the quorum and drops its read-only
/// server, closing the client's connection; or the client's `isro` probes find a read-write
/// server first and it moves there. Either way it reconnects to a read-write server with a new
/// session (a session that began read-only is provisional, as in the Java client: it never saw a
/// read-write server, so it asks for a new one) and reports Suspended, then Connected. On the
/// way it may attach to a read-only server once more: a restarted server that has looked for its
/// quorum for 2 s serves read-only until it finds it (seen when an election took 3.6 s), and
/// taking it is right while nothing better answers. Watches armed in read-only mode are set
/// again on every new session.
async fn read_only_mode(ctx: &Ctx, ens: &mut Ensemble) -> Outcome {
    let (setup, base) = ctx.fresh("readonly").await?;
    let data = format!("{base}/data");
    ok!(setup.create(&data, "v1").await);
    setup.close().await;

    let c = connect(builder(ctx, &ctx.connect, Duration::from_secs(4)).read_only(true)).await?;
    check!(
        c.state() == SessionState::Connected,
        "with the quorum up: {}",
        c.state()
    );
    let mut states = c.state_changes();
    // Keep the client's server; stop the other two, the leader last: stopping it first would
    // make the other two elect a leader (ending the client's local session) before the second
    // stop takes their quorum away, and the client would go through a read-write session first.
    let survivor = node_of(ens, &c)?;
    let leader = ens.leader().ok_or("no leader")?;
    let mut stopped: Vec<usize> = (0..3).filter(|&i| i != survivor).collect();
    stopped.sort_by_key(|&i| i == leader);
    for &i in &stopped {
        ens.stop(i).map_err(|e| format!("stop node {i}: {e}"))?;
    }
    ens.wait_for_mode(survivor, ServerMode::ReadOnly)
        .map_err(|e| format!("node {survivor} read-only: {e}"))?;

    let seen = states_until(ctx, &mut states, |s| s == SessionState::ConnectedReadOnly).await?;
    check!(
        seen == [
            SessionState::Suspended,
            SessionState::Lost(LostReason::Expired),
            SessionState::Connecting,
            SessionState::ConnectedReadOnly
        ],
        "states while the quorum goes {seen:?}"
    );
    check!(
        node_of(ens, &c)? == survivor,
        "on the read-only server {survivor}"
    );
    let ro_id = c.client_id().ok_or("no session id in read-only mode")?.id;

    // Reads work; writes are refused.
    let (d, _) = ok!(c.get_data(&data).await);
    check!(&d[..] == b"v1", "read in read-only mode {d:?}");
    let kids = ok!(c.get_children(&base).await);
    check!(kids == ["data"], "children in read-only mode {kids:?}");
    match c.create(&format!("{base}/new"), "").await {
        Err(Error::NotReadOnly) => {}
        other => return Err(format!("create in read-only mode: {other:?}")),
    }
    match c.set_data(&data, "v2").await {
        Err(Error::NotReadOnly) => {}
        other => return Err(format!("set_data in read-only mode: {other:?}")),
    }
    match c.delete(&data).await {
        Err(Error::NotReadOnly) => {}
        other => return Err(format!("delete in read-only mode: {other:?}")),
    }
    check!(
        c.state() == SessionState::ConnectedReadOnly,
        "refused writes leave the connection alone: {}",
        c.state()
    );
    // A watch armed now must survive the move to a read-write server.
    let (_, _, changed) = ok!(c.get_data(&data).watch().await);

    // A client starting now gets a read-only session at once.
    let late = connect(builder(ctx, &ctx.connect, Duration::from_secs(4)).read_only(true)).await?;
    check!(
        late.state() == SessionState::ConnectedReadOnly,
        "a new client with only a read-only server: {}",
        late.state()
    );
    let (d, _) = ok!(late.get_data(&data).await);
    check!(&d[..] == b"v1", "read by the new client {d:?}");
    let mut late_states = late.state_changes();

    for &i in &stopped {
        ens.restart(i)
            .map_err(|e| format!("restart node {i}: {e}"))?;
    }
    ens.wait_all_ready().map_err(|e| format!("{e}"))?;

    let seen = states_until(ctx, &mut states, |s| s == SessionState::Connected).await?;
    check!(
        back_to_read_write(&seen),
        "states when the quorum is back {seen:?}"
    );
    let rw_id = c.client_id().ok_or("no session id")?.id;
    check!(
        rw_id != ro_id,
        "a read-write server gives a read-only session's client a new session"
    );
    ok!(c.create(&format!("{base}/back"), "").await);
    ok!(c.set_data(&data, "v2").await);
    let ev = ok!(ctx.within(WAIT, changed).await?);
    check!(
        ev.event_type == EventType::NodeDataChanged && ev.path == data,
        "watch armed in read-only mode {ev:?}"
    );

    let seen = states_until(ctx, &mut late_states, |s| s == SessionState::Connected).await?;
    check!(
        back_to_read_write(&seen),
        "the late client when the quorum is back {seen:?}"
    );
    ok!(late.create(&format!("{base}/late"), "").await);
    late.close().await;
    c.close().await;
    Ok(())
}

// ---- runners ------------------------------------------------------------------------------

/// The scenarios one kind of ensemble runs, per runtime.
trait Scenarios {
    fn list() -> Vec<(&'static str, Scenario)>;
}

/// Plain quorums: failover and expiry.
struct Quorum;

impl Scenarios for Quorum {
    fn list() -> Vec<(&'static str, Scenario)> {
        vec![
            ("watches_survive_a_server_kill", |ctx, ens| {
                Box::pin(watches_survive_a_server_kill(ctx, ens))
            }),
            ("set_hosts_moves_the_session", |ctx, ens| {
                Box::pin(set_hosts_moves_the_session(ctx, ens))
            }),
            ("session_expiry", |ctx, ens| {
                Box::pin(session_expiry(ctx, ens))
            }),
        ]
    }
}

/// Quorums with read-only mode (and local sessions).
struct ReadOnly;

impl Scenarios for ReadOnly {
    fn list() -> Vec<(&'static str, Scenario)> {
        vec![("read_only_mode", |ctx, ens| {
            Box::pin(read_only_mode(ctx, ens))
        })]
    }
}

async fn run<S: Scenarios>(ctx: &Ctx, ens: &mut Ensemble, failures: &mut Vec<String>) {
    let filter = std::env::var("SUITE_FILTER").unwrap_or_default();
    for (name, scenario) in S::list() {
        if !name.contains(filter.as_str()) {
            continue;
        }
        let started = Instant::now();
        let mut outcome = match ctx.within(SCENARIO_WAIT, scenario(ctx, ens)).await {
            Ok(r) => r,
            Err(e) => Err(e),
        };
        if outcome.is_err() {
            // Leave a whole ensemble to the next run, and keep the logs of this one.
            let tails: String = (0..ens.size()).map(|i| ens.log_tail(i, 30)).collect();
            if let Err(e) = heal(ens) {
                outcome = outcome.map_err(|o| format!("{o}\n(and healing failed: {e})"));
            }
            outcome = outcome.map_err(|o| format!("{o}\nserver logs:\n{tails}"));
        }
        eprintln!(
            "[{:?} {}] {name}: {} in {:?}",
            ctx.kind,
            ctx.runtime_name,
            if outcome.is_ok() { "ok" } else { "FAILED" },
            started.elapsed()
        );
        if let Err(e) = outcome {
            failures.push(format!("[{:?} {}] {name}: {e}", ctx.kind, ctx.runtime_name));
        }
    }
}

/// Runs `S`'s scenarios on every runtime against one ensemble.
fn on_every_runtime<S: Scenarios>(kind: ServerKind, ens: &mut Ensemble) {
    fn make(
        rt: Arc<dyn Runtime>,
        runtime_name: &'static str,
        ens: &Ensemble,
        kind: ServerKind,
    ) -> Ctx {
        Ctx {
            rt,
            runtime_name,
            connect: ens.connect_string(),
            kind,
            wide: None,
        }
    }
    let mut failures = Vec::new();

    let tokio_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let ctx = make(
        zk_tokio::TokioRuntime::default().shared(),
        "tokio",
        ens,
        kind,
    );
    tokio_rt.block_on(run::<S>(&ctx, ens, &mut failures));
    drop(tokio_rt);

    let ctx = make(
        zk_async_std::AsyncStdRuntime::default().shared(),
        "async-std",
        ens,
        kind,
    );
    async_std::task::block_on(run::<S>(&ctx, ens, &mut failures));

    let ctx = make(
        zk_async_std::SmolRuntime::default().shared(),
        "smol",
        ens,
        kind,
    );
    smol::block_on(run::<S>(&ctx, ens, &mut failures));

    // zk-blocking's runtime (a driver thread per session), its futures waited on this thread.
    let ctx = make(zk_blocking::ThreadRuntime.shared(), "blocking", ens, kind);
    futures_lite::future::block_on(run::<S>(&ctx, ens, &mut failures));

    assert!(
        failures.is_empty(),
        "{} scenario runs failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn start(opts: EnsembleOptions) -> Ensemble {
    let what = format!("ZooKeeper {} x{}", opts.version, opts.size);
    Ensemble::start(opts).unwrap_or_else(|e| panic!("{what} did not start: {e}"))
}

fn quorum(version: ZkVersion, kind: ServerKind) {
    let _one = one_ensemble_at_a_time();
    let mut ens = start(EnsembleOptions::quorum(version, 3));
    on_every_runtime::<Quorum>(kind, &mut ens);
}

fn read_only(version: ZkVersion, kind: ServerKind) {
    let _one = one_ensemble_at_a_time();
    let mut opts = EnsembleOptions::quorum(version, 3);
    opts.read_only_mode = true;
    // A read-only server (3.7+) only creates local sessions; see `read_only_mode`.
    opts.extra_config.push("localSessionsEnabled=true".into());
    opts.extra_config
        .push("localSessionsUpgradingEnabled=true".into());
    let mut ens = start(opts);
    on_every_runtime::<ReadOnly>(kind, &mut ens);
}

#[test]
fn failover_and_expiry_on_zookeeper_3_8() {
    quorum(ZkVersion::V3_8, ServerKind::Real38);
}

#[test]
fn failover_and_expiry_on_zookeeper_3_9() {
    quorum(ZkVersion::V3_9, ServerKind::Real39);
}

#[test]
fn read_only_mode_on_zookeeper_3_8() {
    read_only(ZkVersion::V3_8, ServerKind::Real38);
}

#[test]
fn read_only_mode_on_zookeeper_3_9() {
    read_only(ZkVersion::V3_9, ServerKind::Real39);
}
