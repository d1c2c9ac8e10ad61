//! Testing your own leader-election code, deterministically, across a network partition and a
//! session expiry.
//!
//! `run_service` below stands for a user's code: it takes part in a leader election (zk-recipes'
//! `LeaderLatch`, Curator's recipe) and tells the rest of the program whether it leads. The test
//! runs three of them on zk-testkit's `SimWorld`, a virtual clock and a seeded network to an
//! in-memory ZooKeeper ensemble, all in one thread, and checks two things a user cares about:
//!
//! - there are never two services that believe they lead at once;
//! - a leader cut off by a partition, or whose session expires, is told it lost leadership.
//!
//! Faults: the leader is partitioned away until someone else leads, then healed; then the new
//! leader's session is expired. The same seed gives the same run, so the scenario is run twice
//! and the two traces compared. Each run is about 5.5 s of virtual time and takes ~20 ms.
//!
//! ```text
//! cargo run -p zk-testkit --example leader_election_partition            # seed 7
//! cargo run -p zk-testkit --example leader_election_partition -- 42      # another seed
//! cargo run -p zk-testkit --example leader_election_partition -- 7 --session-only
//! ```
//!
//! `--session-only` gives the services `LossPolicy::SessionOnly` (a leader believes it leads until
//! it hears its session is gone), which is unsafe across a partition: the partitioned leader
//! cannot hear anything, so it still believes it leads when the others elect a new one. The
//! checker then reports two leaders, which shows it can fail.

use std::process::ExitCode;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures_lite::StreamExt;
use zk_client::{Client, SessionState};
use zk_recipes::{LeaderLatch, LeadershipEvent, LossPolicy, OwnershipState};
use zk_testkit::sim::{NetConfig, Node, SimConfig, SimWorld};

/// The user's code under test: joins the election at `path` and reports every change of role
/// through `report` until the client closes. It knows nothing of the simulation: it is given a
/// client, as in production.
async fn run_service(
    client: Client,
    path: &str,
    id: &str,
    policy: LossPolicy,
    mut report: impl FnMut(Role) + Send,
) {
    let mut latch = LeaderLatch::new(&client, path, id).with_policy(policy);
    let mut events = latch.events();
    if latch.start().is_err() {
        return;
    }
    while let Some(event) = events.next().await {
        match event {
            LeadershipEvent::Gained(own) => report(Role::Leader {
                fencing_token: own.fencing_token(),
            }),
            LeadershipEvent::Lost(why) => report(Role::Follower { why }),
        }
    }
}

/// What a service believes it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Leader { fencing_token: i64 },
    Follower { why: OwnershipState },
}

// ---- the test --------------------------------------------------------------------------------

const SERVICES: u32 = 3;
const SESSION: Duration = Duration::from_secs(4);
const PATH: &str = "/app/leader";

/// What the services reported, checked as it comes in.
#[derive(Debug, Default)]
struct Checker {
    /// Services that believe they lead now.
    leaders: Vec<Node>,
    /// Every leader in order, with its fencing token.
    history: Vec<(Node, i64)>,
    /// Services told they lost leadership, and how.
    told: Vec<(Node, OwnershipState)>,
    violations: Vec<String>,
    /// Every report, with its virtual time: the run's trace.
    lines: Vec<String>,
}

impl Checker {
    fn report(&mut self, at: Duration, node: Node, role: Role) {
        self.lines.push(format!("{at:>12?} {node:?} {role:?}"));
        match role {
            Role::Leader { fencing_token } => {
                if !self.leaders.is_empty() {
                    self.violations.push(format!(
                        "at {at:?} {node:?} leads while {:?} still believes it leads",
                        self.leaders
                    ));
                }
                if let Some((_, last)) = self.history.last() {
                    if fencing_token <= *last {
                        self.violations.push(format!(
                            "at {at:?} {node:?} has fencing token {fencing_token}, not above {last}"
                        ));
                    }
                }
                self.leaders.push(node);
                self.history.push((node, fencing_token));
            }
            Role::Follower { why } => {
                self.leaders.retain(|n| *n != node);
                self.told.push((node, why));
            }
        }
    }
}

type Shared = Arc<Mutex<Checker>>;

fn lock(c: &Shared) -> MutexGuard<'_, Checker> {
    c.lock().unwrap_or_else(|e| e.into_inner())
}

/// Waits, in virtual time, until `cond` holds.
async fn until(client: &Client, what: &str, mut cond: impl FnMut() -> bool) -> Result<(), String> {
    for _ in 0..60_000 {
        if cond() {
            return Ok(());
        }
        client.sleep(Duration::from_millis(10)).await;
    }
    Err(format!("never happened: {what}"))
}

/// The service that became leader last (the checker says whether others still believe they
/// lead).
fn latest_leader(c: &Shared) -> Option<Node> {
    lock(c).history.last().map(|(n, _)| *n)
}

/// One run: three services, the leader partitioned then healed, the next leader's session
/// expired. Returns the checker and the world's trace.
fn run(seed: u64, policy: LossPolicy) -> Result<(Checker, Vec<String>), String> {
    let world = SimWorld::new(
        SimConfig {
            servers: 3,
            ..SimConfig::default()
        },
        NetConfig::default(),
        seed,
    );
    world.enable_trace();
    let checker: Shared = Arc::default();
    let (w, c) = (world.clone(), checker.clone());
    let outcome = world.block_on(Duration::from_secs(600), async move {
        let mut clients = Vec::new();
        for n in 1..=SERVICES {
            let node = Node(n);
            let client = w
                .builder(node, &w.connect_string())
                .session_timeout(SESSION)
                .connect()
                .await
                .map_err(|e| format!("{node:?} cannot connect: {e}"))?;
            let (w2, c2) = (w.clone(), c.clone());
            let service_client = client.clone();
            w.spawn(async move {
                let id = format!("service-{n}");
                run_service(service_client, PATH, &id, policy, |role| {
                    lock(&c2).report(w2.elapsed(), node, role)
                })
                .await;
            });
            clients.push((node, client));
        }
        let any = clients[0].1.clone();
        let client_of = |node: Node| {
            clients
                .iter()
                .find(|(n, _)| *n == node)
                .map(|(_, c)| c.clone())
                .ok_or_else(|| format!("no client for {node:?}"))
        };

        // 1. A leader is elected.
        // (`any` is only a clock here: waiting is done in virtual time, through a client.)
        until(&any, "a leader", || latest_leader(&c).is_some()).await?;
        let first = latest_leader(&c).ok_or("no leader")?;

        // 2. The leader is partitioned away: it is told at once that it may have lost (its
        //    connection is gone); the others elect a new leader once the ensemble has expired
        //    its session, and never before.
        let first_client = client_of(first)?;
        let old_session = first_client.client_id().map(|s| s.id);
        let mut states = first_client.state_changes();
        w.partition(first);
        until(&any, "a new leader", || {
            latest_leader(&c).is_some_and(|n| n != first)
        })
        .await?;
        {
            let mut check = lock(&c);
            if !check.told.iter().any(|(n, _)| *n == first) {
                let at = w.elapsed();
                check.violations.push(format!(
                    "at {at:?} {first:?} was partitioned and another leads, but it was never told"
                ));
            }
        }

        // 3. Healed, it hears its session expired, and queues up again with a new session.
        w.heal(first);
        loop {
            match states.next().await {
                Some(SessionState::Lost(_)) => break,
                Some(_) => {}
                None => return Err("the healed client stopped".into()),
            }
        }
        until(&any, "the healed service reconnects", || {
            first_client.is_connected() && first_client.client_id().map(|s| s.id) != old_session
        })
        .await?;

        // 4. The new leader's session is expired: it is told, and a third leader is elected.
        let second = latest_leader(&c).ok_or("no leader after the partition")?;
        let second_client = client_of(second)?;
        let session = second_client
            .client_id()
            .ok_or("the leader has no session")?;
        let told_before = lock(&c).told.len();
        w.expire_session(session.id);
        until(&any, "the expired leader is told", || {
            lock(&c).told[told_before..]
                .iter()
                .any(|(n, _)| *n == second)
        })
        .await?;
        until(&any, "a third leader", || {
            latest_leader(&c).is_some_and(|n| n != second)
        })
        .await?;

        for (_, client) in clients {
            client.close().await;
        }
        Ok::<(), String>(())
    });
    match outcome {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(e),
        Err(stuck) => return Err(format!("the world got stuck: {stuck:?}")),
    }
    let trace = world.trace();
    let checker = std::mem::take(&mut *lock(&checker));
    Ok((checker, trace))
}

fn main() -> ExitCode {
    let mut seed = 7;
    let mut policy = LossPolicy::Standard;
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--session-only" => policy = LossPolicy::SessionOnly,
            other => match other.parse() {
                Ok(s) => seed = s,
                Err(_) => {
                    eprintln!("usage: leader_election_partition [SEED] [--session-only]");
                    return ExitCode::FAILURE;
                }
            },
        }
    }
    let (checker, trace) = match run(seed, policy) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("seed {seed}: {e}");
            return ExitCode::FAILURE;
        }
    };
    for line in &checker.lines {
        println!("{line}");
    }
    println!(
        "seed {seed}: {} leaderships, {} losses told, {} network and fault events",
        checker.history.len(),
        checker.told.len(),
        trace.len()
    );
    if !checker.violations.is_empty() {
        for v in &checker.violations {
            eprintln!("VIOLATION: {v}");
        }
        eprintln!(
            "seed {seed}: replay with `cargo run -p zk-testkit --example leader_election_partition -- {seed}{}`",
            if policy == LossPolicy::SessionOnly { " --session-only" } else { "" }
        );
        return ExitCode::FAILURE;
    }
    // Same seed, same run: every report at the same virtual time, every byte in the same order.
    match run(seed, policy) {
        Ok((again, trace_again)) if again.lines == checker.lines && trace_again == trace => {
            println!("seed {seed}: replayed identically; never two leaders at once");
            ExitCode::SUCCESS
        }
        Ok(_) => {
            eprintln!("seed {seed}: a second run differed: not deterministic");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("seed {seed}: the second run failed: {e}");
            ExitCode::FAILURE
        }
    }
}

// `cargo test` runs these too (the example is declared with `test = true`), so the scenario,
// its determinism and its checker's power to fail are kept in CI, not only when run by hand.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_two_leaders_and_the_cut_off_leader_is_told_and_a_seed_replays() {
        for seed in [1, 7, 42] {
            let (checker, trace) = run(seed, LossPolicy::Standard).expect("the scenario runs");
            assert!(
                checker.violations.is_empty(),
                "seed {seed}: {:?}",
                checker.violations
            );
            assert!(
                checker.history.len() >= 3,
                "seed {seed}: {:?}",
                checker.lines
            );
            let (again, trace_again) = run(seed, LossPolicy::Standard).expect("runs again");
            assert_eq!(checker.lines, again.lines, "seed {seed}");
            assert_eq!(trace, trace_again, "seed {seed}");
        }
    }

    #[test]
    fn the_checker_catches_a_leader_that_waits_for_its_session_verdict() {
        let (checker, _) = run(7, LossPolicy::SessionOnly).expect("the scenario runs");
        assert!(
            checker
                .violations
                .iter()
                .any(|v| v.contains("still believes it leads")),
            "{:?}",
            checker.violations
        );
    }
}
