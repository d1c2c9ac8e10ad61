//! Our recipes and other clients' on the same paths, against real ZooKeeper 3.8 and 3.9, on
//! tokio, async-std and smol: Apache Curator 5.9.0 (a Java peer, `tests/curator/CuratorPeer.java`,
//! compiled against the jars scripts/setup-zookeeper fetches) and kazoo (Debian's python3-kazoo,
//! `tests/kazoo/lock_driver.py`).
//!
//! - `curator_mutex_interop`: our `InterProcessMutex` writes Curator's layout
//!   (`_c_<uuid>-lock-<seq>`), Curator lists our node among its participants and waits for it, we
//!   wait for Curator's, and two Curator holders and two of ours contending in loops never hold
//!   at once; both sides acquired.
//! - `curator_leader_latch_interop`: our `LeaderLatch` and Curator's queue in one latch; each
//!   side sees the same participants and leader; leadership passes down the queue as each leader
//!   closes, alternating sides; never two leaders.
//! - `curator_shared_count_interop`: Curator's `SharedCount` (two instances), ours and our
//!   `Counter::support_curator` increment one count concurrently: it ends at the sum.
//! - `kazoo_election_interop`: kazoo's `Election` and ours take turns leading; `contenders()` on
//!   both sides lists both sides' identifiers in queue order; never two leaders.
//!
//! "Never two holders (leaders) at once" is checked on a log in ZooKeeper itself: every holder
//! appends "<who> start" ("gained" for a leader) right after it acquires and "<who> end" right
//! before it releases, as persistent sequential nodes under one parent, so the server's order of
//! the appends is one total order over every process. Two holders at once would show as a start
//! while another holder's interval is open. Nothing compares clocks or waits for time.

mod common;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Mutex;
use std::task::{Poll, Waker};

use common::*;
use zk_client::Client;
use zk_recipes::{Counter, Election, InterProcessMutex, LeaderLatch, LeadershipEvent, SharedCount};
use zk_testkit::real::{Ensemble, ZkVersion};

const ROUNDS: usize = 5;

fn scenarios() -> Vec<(&'static str, Scenario)> {
    macro_rules! list {
        ($($name:ident),* $(,)?) => {
            vec![$((stringify!($name), (|ctx, ens| Box::pin($name(ctx, ens))) as Scenario)),*]
        };
    }
    list![
        curator_mutex_interop,
        curator_leader_latch_interop,
        curator_shared_count_interop,
        kazoo_election_interop,
    ]
}

#[test]
fn interop_on_zookeeper_3_8() {
    require_kazoo();
    require_curator();
    run_everywhere(ZkVersion::V3_8, &scenarios());
}

#[test]
fn interop_on_zookeeper_3_9() {
    require_kazoo();
    require_curator();
    run_everywhere(ZkVersion::V3_9, &scenarios());
}

// ---- helpers ------------------------------------------------------------------------------

/// Appends "<who> <what>" to the shared log at `log`.
async fn log_entry(c: &Client, log: &str, who: &str, what: &str) -> Outcome {
    ok!(c
        .create(&format!("{log}/ev-"), format!("{who} {what}"))
        .sequential()
        .await);
    Ok(())
}

/// The log's entries in the server's order, each as (who, what).
async fn read_log(c: &Client, log: &str) -> Result<Vec<(String, String)>, String> {
    let mut names = ok!(c.get_children(log).await).to_vec();
    // `ev-` and ten digits: the string order is the sequence order.
    names.sort();
    let mut out = Vec::new();
    for n in names {
        let (data, _) = ok!(c.get_data(&format!("{log}/{n}")).await);
        let text = String::from_utf8_lossy(&data).into_owned();
        let (who, what) = text
            .split_once(' ')
            .ok_or_else(|| format!("log entry {n}: {text:?}"))?;
        out.push((who.to_owned(), what.to_owned()));
    }
    Ok(out)
}

/// Checks that the intervals `start`..`end` in `entries` never overlap and are each closed by
/// their own holder; returns how many intervals each holder had.
fn disjoint_intervals(
    entries: &[(String, String)],
    start: &str,
    end: &str,
) -> Result<BTreeMap<String, usize>, String> {
    let mut open: Option<&str> = None;
    let mut counts = BTreeMap::new();
    for (i, (who, what)) in entries.iter().enumerate() {
        if what == start {
            if let Some(holder) = open {
                return Err(format!(
                    "entry {i}: {who} started while {holder} held: {entries:?}"
                ));
            }
            open = Some(who);
            *counts.entry(who.clone()).or_insert(0) += 1;
        } else if what == end {
            if open != Some(who.as_str()) {
                return Err(format!(
                    "entry {i}: {who} ended while {open:?} held: {entries:?}"
                ));
            }
            open = None;
        } else {
            return Err(format!("entry {i}: unknown {what:?}"));
        }
    }
    if let Some(holder) = open {
        return Err(format!("{holder}'s interval never ended: {entries:?}"));
    }
    Ok(counts)
}

/// Whether `name` is a Curator protected sequential name of `recipe`:
/// `_c_<version-4 uuid, lowercase>-<recipe>-<10 digits>`.
fn curator_layout(name: &str, recipe: &str) -> bool {
    let Some(rest) = name.strip_prefix("_c_") else {
        return false;
    };
    let Some((uuid, tail)) = rest.split_at_checked(36) else {
        return false;
    };
    let uuid_ok = uuid.char_indices().all(|(i, ch)| match i {
        8 | 13 | 18 | 23 => ch == '-',
        14 => ch == '4',
        _ => ch.is_ascii_digit() || ('a'..='f').contains(&ch),
    });
    let Some(seq) = tail.strip_prefix(&format!("-{recipe}-")) else {
        return false;
    };
    uuid_ok && seq.len() == 10 && seq.bytes().all(|b| b.is_ascii_digit())
}

/// A one-shot signal between the futures of one scenario.
#[derive(Default)]
struct Gate(Mutex<(bool, Vec<Waker>)>);

impl Gate {
    fn open(&self) {
        let mut g = self.0.lock().unwrap_or_else(|e| e.into_inner());
        g.0 = true;
        for w in g.1.drain(..) {
            w.wake();
        }
    }

    fn is_open(&self) -> bool {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).0
    }

    async fn wait(&self) {
        std::future::poll_fn(|cx| {
            let mut g = self.0.lock().unwrap_or_else(|e| e.into_inner());
            if g.0 {
                return Poll::Ready(());
            }
            g.1.push(cx.waker().clone());
            Poll::Pending
        })
        .await
    }
}

/// Runs `fut` until `abort` opens (then `Err`).
fn or_abort<'a>(abort: &'a Gate, fut: impl Future<Output = Outcome> + 'a) -> BoxFut<'a> {
    Box::pin(async move {
        let mut fut = std::pin::pin!(fut);
        let mut aborted = std::pin::pin!(abort.wait());
        std::future::poll_fn(|cx| {
            if let Poll::Ready(out) = fut.as_mut().poll(cx) {
                return Poll::Ready(out);
            }
            aborted
                .as_mut()
                .poll(cx)
                .map(|()| Err("given up: the scenario failed elsewhere".to_owned()))
        })
        .await
    })
}

/// Awaits a peer's reply to `seq`, which must be ok.
async fn peer_reply(ctx: &Ctx, p: &Peer, seq: u64, what: &str) -> Result<Vec<String>, String> {
    ctx.within(WAIT, p.reply(seq))
        .await??
        .map_err(|e| format!("{what}: {e}; log:\n{}", p.log()))
}

// ---- Curator ------------------------------------------------------------------------------

async fn curator_mutex_interop(ctx: &Ctx, _: &mut Ensemble) -> Outcome {
    let (c, base) = ctx.fresh("curator-mutex").await?;
    let path = format!("{base}/lock");
    let log = format!("{base}/log");
    ok!(c.ensure_path(&log).await);
    let mut cur = Peer::curator(ctx).await?;
    cur.call(ctx, &format!("mutex cm {path} curator")).await?;

    // We hold: our node is in Curator's layout, Curator counts it as a participant and waits.
    let mut ours = InterProcessMutex::new(&c, &path, "rust");
    ok!(ours.acquire().await);
    let own = ours.ownership().ok_or("no ownership")?.node().to_owned();
    let own_name = own.rsplit('/').next().unwrap_or_default().to_owned();
    check!(
        curator_layout(&own_name, "lock"),
        "our node {own_name} is not in Curator's layout"
    );
    let parts = cur.call(ctx, "participants cm").await?;
    check!(
        parts == [own_name.clone()],
        "Curator's participants {parts:?}"
    );
    let seq = cur.send("acquire cm")?;
    let ch = ctx.children_until(&c, &path, |ch, _| ch.len() == 2).await?;
    check!(!cur.has_reply(seq), "Curator acquired while we hold");
    let theirs = ch
        .iter()
        .find(|n| **n != own_name)
        .ok_or("Curator's node")?
        .clone();
    check!(
        curator_layout(&theirs, "lock"),
        "Curator's own node {theirs} fails the layout check"
    );
    let parts = cur.call(ctx, "participants cm").await?;
    check!(
        parts == [own_name.clone(), theirs.clone()],
        "Curator's participants {parts:?}"
    );
    ok!(ours.release().await);
    peer_reply(ctx, &cur, seq, "Curator's acquire").await?;

    // Curator holds: we wait, and see both in contenders().
    let mut waiting = Box::pin(ours.acquire());
    while_pending(
        waiting.as_mut(),
        ctx.children_until(&c, &path, |ch, _| ch.len() == 2),
        "our acquire while Curator holds",
    )
    .await??;
    let observer = InterProcessMutex::new(&c, &path, "observer");
    let names = ok!(observer.contenders().await);
    check!(names == ["curator", "rust"], "our contenders() {names:?}");
    cur.call(ctx, "release cm").await?;
    ok!(ctx.within(WAIT, waiting.as_mut()).await?);
    drop(waiting);
    ok!(ours.release().await);

    // Two Curator holders (one session, two mutexes on their own threads) and two of ours
    // (two sessions, re-entrant: each round acquires twice) contend in loops.
    cur.call(ctx, &format!("mutex cm1 {path} curator-1"))
        .await?;
    cur.call(ctx, &format!("mutex cm2 {path} curator-2"))
        .await?;
    let s1 = cur.send(&format!("mloop cm1 {ROUNDS} {log} curator-1"))?;
    let s2 = cur.send(&format!("mloop cm2 {ROUNDS} {log} curator-2"))?;
    let c2 = ctx.client().await?;
    let runs: Vec<BoxFut<'_>> = [&c, &c2]
        .into_iter()
        .enumerate()
        .map(|(i, cl)| {
            let (path, log) = (&path, &log);
            Box::pin(async move {
                let who = format!("rust-{}", i + 1);
                let mut m = InterProcessMutex::new(cl, path, &who);
                for _ in 0..ROUNDS {
                    ok!(m.acquire().await);
                    ok!(m.acquire().await);
                    log_entry(cl, log, &who, "start").await?;
                    ok!(cl.get_children(path).await);
                    log_entry(cl, log, &who, "end").await?;
                    ok!(m.release().await);
                    check!(m.is_acquired(), "{who}: released once of twice");
                    ok!(m.release().await);
                }
                Ok(())
            }) as BoxFut<'_>
        })
        .collect();
    let results = join_all(runs).await;
    let loop1 = peer_reply(ctx, &cur, s1, "Curator's loop 1").await;
    let loop2 = peer_reply(ctx, &cur, s2, "Curator's loop 2").await;
    // Two holders at once is the finding that matters most, whatever else failed after it.
    let entries = read_log(&c, &log).await?;
    let counts = disjoint_intervals(&entries, "start", "end")?;
    for r in results {
        r?;
    }
    loop1?;
    loop2?;
    for who in ["curator-1", "curator-2", "rust-1", "rust-2"] {
        check!(
            counts.get(who) == Some(&ROUNDS),
            "{who} held {:?} times of {ROUNDS}: {counts:?}",
            counts.get(who)
        );
    }
    ctx.children_until(&c, &path, |ch, _| ch.is_empty()).await?;
    drop(cur);
    c2.close().await;
    c.close().await;
    Ok(())
}

async fn curator_leader_latch_interop(ctx: &Ctx, _: &mut Ensemble) -> Outcome {
    let (admin, base) = ctx.fresh("curator-latch").await?;
    let path = format!("{base}/latch");
    let log = format!("{base}/log");
    ok!(admin.ensure_path(&log).await);
    let c1 = ctx.client().await?;
    let c2 = ctx.client().await?;
    let mut cur = Peer::curator(ctx).await?;
    let queue = ["rust-1", "curator-1", "rust-2", "curator-2"];

    // Our participants. Each one's events are logged the moment they come, by a future of its
    // own, as Curator's listener logs its side: a leadership our latch took too early would
    // overlap the Curator leader's interval in the log. Leaving on purpose (`closing`) ends the
    // interval before the close, as an application stops acting as leader before it leaves.
    let clients = [&c1, &c2];
    let mut latches: Vec<LeaderLatch> = (0..2)
        .map(|i| LeaderLatch::new(clients[i], &path, &format!("rust-{}", i + 1)))
        .collect();
    let events: Vec<_> = latches.iter().map(LeaderLatch::events).collect();
    let gained: [Gate; 2] = Default::default();
    let closing: [std::cell::Cell<bool>; 2] = Default::default();
    let watchers = events.into_iter().enumerate().map(|(i, mut ev)| {
        let (log, gained, closing, cl) = (&log, &gained[i], &closing[i], clients[i]);
        Box::pin(async move {
            use futures_core::Stream;
            let who = format!("rust-{}", i + 1);
            while let Some(e) =
                std::future::poll_fn(|cx| std::pin::Pin::new(&mut ev).poll_next(cx)).await
            {
                match e {
                    LeadershipEvent::Gained(_) => {
                        log_entry(cl, log, &who, "gained").await?;
                        gained.open();
                    }
                    LeadershipEvent::Lost(_) if closing.get() => {}
                    LeadershipEvent::Lost(how) => {
                        log_entry(cl, log, &who, "end").await?;
                        return Err(format!("{who} lost leadership: {how:?}"));
                    }
                }
            }
            Ok(())
        }) as BoxFut<'_>
    });
    let driver: BoxFut<'_> = Box::pin(async {
        // The queue: rust-1, curator-1, rust-2, curator-2, each joining once the one before is in.
        let mut r2 = latches.pop().ok_or("no latch")?;
        let mut r1 = latches.pop().ok_or("no latch")?;
        ok!(r1.start());
        ctx.within(WAIT, gained[0].wait()).await?;
        cur.call(ctx, &format!("latch l1 {path} curator-1 {log}"))
            .await?;
        ctx.children_until(&admin, &path, |ch, _| ch.len() == 2)
            .await?;
        ok!(r2.start());
        ctx.children_until(&admin, &path, |ch, _| ch.len() == 3)
            .await?;
        cur.call(ctx, &format!("latch l2 {path} curator-2 {log}"))
            .await?;
        let names = ctx
            .children_until(&admin, &path, |ch, _| ch.len() == 4)
            .await?;
        check!(
            names.iter().all(|n| curator_layout(n, "latch")),
            "not all in Curator's layout: {names:?}"
        );
        let theirs = cur.call(ctx, "latchparts l2").await?;
        check!(theirs == queue, "Curator's participants {theirs:?}");
        let ours = ok!(LeaderLatch::participants(&admin, &path).await);
        check!(ours == queue, "our participants {ours:?}");
        check!(
            cur.call(ctx, "leader l2").await? == ["rust-1"],
            "Curator's leader"
        );
        check!(
            cur.call(ctx, "hasleader l1").await? == ["false"],
            "curator-1 leads behind rust-1"
        );
        check!(
            r1.has_leadership() && !r2.has_leadership(),
            "rust-1 alone leads"
        );

        // rust-1 leaves: curator-1 leads.
        closing[0].set(true);
        log_entry(&c1, &log, "rust-1", "end").await?;
        r1.close().await;
        cur.wait_event(ctx, &["l1", "gained"]).await?;
        check!(
            ok!(LeaderLatch::leader(&admin, &path).await).as_deref() == Some("curator-1"),
            "our view of the leader"
        );
        check!(
            cur.call(ctx, "leader l2").await? == ["curator-1"],
            "Curator's leader"
        );

        // curator-1 leaves: rust-2 leads.
        cur.call(ctx, "close l1").await?;
        ctx.within(WAIT, gained[1].wait()).await?;
        check!(
            cur.call(ctx, "hasleader l2").await? == ["false"],
            "curator-2 leads behind rust-2"
        );
        check!(
            cur.call(ctx, "leader l2").await? == ["rust-2"],
            "Curator's leader"
        );

        // rust-2 leaves: curator-2 leads, then leaves.
        closing[1].set(true);
        log_entry(&c2, &log, "rust-2", "end").await?;
        r2.close().await;
        cur.wait_event(ctx, &["l2", "gained"]).await?;
        cur.call(ctx, "close l2").await?;
        Ok(())
    });
    let mut runs: Vec<BoxFut<'_>> = vec![driver];
    runs.extend(watchers);
    let results = join_all(runs).await;
    // Two leaders at once is the finding that matters most, whatever else failed after it.
    let entries = read_log(&admin, &log).await?;
    disjoint_intervals(&entries, "gained", "end")?;
    for r in results {
        r?;
    }
    ctx.children_until(&admin, &path, |ch, _| ch.is_empty())
        .await?;
    let order: Vec<&str> = entries
        .iter()
        .filter(|(_, what)| what == "gained")
        .map(|(who, _)| who.as_str())
        .collect();
    check!(order == queue, "leaders in the order {order:?}");
    drop(cur);
    for c in [c1, c2, admin] {
        c.close().await;
    }
    Ok(())
}

async fn curator_shared_count_interop(ctx: &Ctx, _: &mut Ensemble) -> Outcome {
    const N: i32 = 15;
    let (c, base) = ctx.fresh("curator-count").await?;
    let path = format!("{base}/count");
    let ours = ok!(SharedCount::start(&c, &path, 0).await);
    let mut cur = Peer::curator(ctx).await?;
    cur.call(ctx, &format!("count k1 {path} 0")).await?;
    cur.call(ctx, &format!("count k2 {path} 0")).await?;
    let c2 = ctx.client().await?;
    let counter = Counter::new(&c2, &path).support_curator();

    let s1 = cur.send(&format!("incr k1 {N}"))?;
    let s2 = cur.send(&format!("incr k2 {N}"))?;
    let runs: Vec<BoxFut<'_>> = vec![
        Box::pin(async {
            for _ in 0..N {
                loop {
                    let v = ok!(ours.versioned_value().await);
                    if ok!(ours.try_set_count(&v, v.value + 1).await) {
                        break;
                    }
                }
            }
            Ok(())
        }),
        Box::pin(async {
            for _ in 0..N {
                ok!(counter.add(1).await);
            }
            Ok(())
        }),
    ];
    for r in join_all(runs).await {
        r?;
    }
    let r1 = peer_reply(ctx, &cur, s1, "Curator's increments 1").await?;
    let r2 = peer_reply(ctx, &cur, s2, "Curator's increments 2").await?;
    let total = 4 * N;
    check!(
        ok!(ours.count().await) == total,
        "our SharedCount reads {} of {total} (Curator's attempts {r1:?} {r2:?})",
        ok!(ours.count().await)
    );
    check!(
        ok!(counter.value().await) == i64::from(total),
        "our Counter reads {}",
        ok!(counter.value().await)
    );
    // A SharedCount started now reads the node afresh (an older one's cache may lag).
    cur.call(ctx, &format!("count k3 {path} 0")).await?;
    let theirs = cur.call(ctx, "get k3").await?;
    check!(
        theirs == [total.to_string()],
        "Curator reads {theirs:?} of {total}"
    );
    drop(cur);
    c2.close().await;
    c.close().await;
    Ok(())
}

// ---- kazoo --------------------------------------------------------------------------------

async fn kazoo_election_interop(ctx: &Ctx, _: &mut Ensemble) -> Outcome {
    let (admin, base) = ctx.fresh("kazoo-election").await?;
    let path = format!("{base}/election");
    let log = format!("{base}/log");
    ok!(admin.ensure_path(&log).await);
    let c1 = ctx.client().await?;
    let c2 = ctx.client().await?;
    let mut k = Peer::kazoo(ctx).await?;
    k.call(ctx, &format!("elect k1 {path} kazoo-1")).await?;
    k.call(ctx, &format!("elect k2 {path} kazoo-2")).await?;

    // Per candidate of ours: may join, leads (logged), may step down.
    let gates: [[Gate; 3]; 2] = Default::default();
    let queue = ["kazoo-1", "rust-1", "kazoo-2", "rust-2"];

    // Opened when the driver fails, so that candidates still queued give up instead of waiting
    // for a leader that will not step down.
    let abort = Gate::default();
    let candidates = [&c1, &c2].into_iter().enumerate().map(|(i, cl)| {
        let (path, log, gates, abort) = (&path, &log, &gates[i], &abort);
        or_abort(abort, async move {
            let who = format!("rust-{}", i + 1);
            let mut e = Election::new(cl, path, &who);
            gates[0].wait().await;
            let who = &who;
            let led = ok!(e
                .run(|_own| async move {
                    log_entry(cl, log, who, "gained").await?;
                    gates[1].open();
                    gates[2].wait().await;
                    log_entry(cl, log, who, "end").await
                })
                .await);
            led?;
            check!(!e.is_leader(), "{who}: leads after run returned");
            Ok(())
        })
    });
    let driver = async {
        let run1 = k.send(&format!("run k1 {log}"))?;
        k.wait_event(ctx, &["k1", "leading"]).await?;
        gates[0][0].open();
        ctx.children_until(&admin, &path, |ch, _| ch.len() == 2)
            .await?;
        let run2 = k.send(&format!("run k2 {log}"))?;
        ctx.children_until(&admin, &path, |ch, _| ch.len() == 3)
            .await?;
        gates[1][0].open();
        ctx.children_until(&admin, &path, |ch, _| ch.len() == 4)
            .await?;

        let theirs = k.call(ctx, "contenders k2").await?;
        check!(theirs == queue, "kazoo's contenders {theirs:?}");
        let ours = ok!(Election::new(&admin, &path, "observer").contenders().await);
        check!(ours == queue, "our contenders {ours:?}");

        // Down the queue: kazoo-1 steps down, rust-1 leads, steps down, kazoo-2, rust-2.
        k.call(ctx, "stepdown k1").await?;
        gates[0][1].wait().await;
        peer_reply(ctx, &k, run1, "kazoo-1's run").await?;
        check!(
            !gates[1][1].is_open() && k.pending_events().is_empty(),
            "another leader next to rust-1: {:?}",
            k.pending_events()
        );
        gates[0][2].open();
        k.wait_event(ctx, &["k2", "leading"]).await?;
        check!(!gates[1][1].is_open(), "rust-2 leads next to kazoo-2");
        k.call(ctx, "stepdown k2").await?;
        gates[1][1].wait().await;
        peer_reply(ctx, &k, run2, "kazoo-2's run").await?;
        gates[1][2].open();
        Ok(())
    };
    let driver: BoxFut<'_> = Box::pin(async {
        let out = driver.await;
        if out.is_err() {
            abort.open();
        }
        out
    });
    let mut runs: Vec<BoxFut<'_>> = vec![driver];
    runs.extend(candidates);
    let results = join_all(runs).await;
    // Two leaders at once is the finding that matters most, whatever else failed after it.
    let entries = read_log(&admin, &log).await?;
    disjoint_intervals(&entries, "gained", "end")?;
    for r in results {
        r?;
    }
    ctx.children_until(&admin, &path, |ch, _| ch.is_empty())
        .await?;
    let order: Vec<&str> = entries
        .iter()
        .filter(|(_, what)| what == "gained")
        .map(|(who, _)| who.as_str())
        .collect();
    check!(order == queue, "leaders in the order {order:?}");
    drop(k);
    for c in [c1, c2, admin] {
        c.close().await;
    }
    Ok(())
}
