//! The nemesis: after a tour of every fault, every few seconds (seeded choices) it kills a server with SIGKILL, freezes one
//! with SIGSTOP for a while, restarts a killed one, cuts client connections at the proxy,
//! isolates a client long enough for its session to expire, or feeds a client garbage.
//!
//! At most one server is down or frozen at a time, so a quorum stays and the workload keeps
//! making progress; what it tests is the client's handling of failover, not an outage.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use zk_testkit::real::Ensemble;

use crate::proxy::{Garbage, Proxy};
use crate::rng::Rng;

/// The kinds of fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    Kill,
    Pause,
    Restart,
    CutOne,
    CutAll,
    /// Of this kind, or of one at random.
    Garbage(Option<Garbage>),
    Isolate,
}

/// Faults injected, for the summary.
#[derive(Debug, Default, Clone)]
pub struct Faults {
    /// kill -9 of a server.
    pub kills: u64,
    /// SIGSTOP ... SIGCONT of a server.
    pub pauses: u64,
    /// Restarts of a killed server.
    pub restarts: u64,
    /// Cuts of one client's connections.
    pub cuts_one: u64,
    /// Cuts of every client's connections.
    pub cuts_all: u64,
    /// Connections cut in all.
    pub connections_cut: u64,
    /// Garbage or truncation requests that found a connection.
    pub garbage: u64,
    /// Isolations of a client beyond its session timeout.
    pub isolations: u64,
    /// Harness errors (a restart that did not come up in time, ...), with what failed.
    pub errors: Vec<String>,
}

/// The nemesis and what it controls.
pub struct Nemesis {
    /// The servers.
    pub ens: Ensemble,
    /// The proxy.
    pub proxy: Proxy,
    /// Choices.
    pub rng: Rng,
    /// Number of clients behind the proxy.
    pub clients: usize,
    /// The clients' session timeout.
    pub session_timeout: Duration,
    /// What was done.
    pub faults: Faults,
    killed: Option<(usize, Instant)>,
}

impl Nemesis {
    /// A nemesis over `ens` and `proxy`.
    pub fn new(
        ens: Ensemble,
        proxy: Proxy,
        rng: Rng,
        clients: usize,
        session_timeout: Duration,
    ) -> Nemesis {
        Nemesis {
            ens,
            proxy,
            rng,
            clients,
            session_timeout,
            faults: Faults::default(),
            killed: None,
        }
    }

    /// Sleeps `d` in small steps; false if `stop` was set meanwhile.
    fn nap(stop: &AtomicBool, d: Duration) -> bool {
        let end = Instant::now() + d;
        while Instant::now() < end {
            if stop.load(Ordering::SeqCst) {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50).min(end - Instant::now()));
        }
        true
    }

    /// Injects faults until `stop`, then heals everything and waits for a whole ensemble.
    ///
    /// It opens with a tour, every kind of fault once in a fixed order and a second or two
    /// apart (the freeze kept short), so that even a 30 s run (CI's) meets each of them; then it
    /// picks at random every 2-5 s.
    pub fn run(&mut self, stop: &AtomicBool) {
        let mut tour = vec![
            Fault::Garbage(Some(Garbage::BadLength)),
            Fault::Kill,
            Fault::CutAll,
            Fault::Restart,
            Fault::Pause,
            Fault::CutOne,
            Fault::Garbage(Some(Garbage::Truncate)),
            Fault::Isolate,
            Fault::Garbage(Some(Garbage::ShortFrame)),
        ];
        tour.reverse();
        loop {
            let wait = if tour.is_empty() {
                self.rng.between(2000, 5000)
            } else {
                self.rng.between(1000, 2000)
            };
            if !Nemesis::nap(stop, Duration::from_millis(wait)) {
                break;
            }
            match tour.pop() {
                Some(fault) => self.perform(fault, stop, true),
                None => {
                    let fault = self.choose();
                    self.perform(fault, stop, false);
                }
            }
        }
        self.heal();
    }

    /// A fault at random (a killed server comes back within 15 s).
    fn choose(&mut self) -> Fault {
        if let Some((_, since)) = self.killed {
            // Back within 15 s, or sooner by chance: a long outage would only idle the run.
            if since.elapsed() > Duration::from_secs(15) || self.rng.chance(40) {
                return Fault::Restart;
            }
        }
        match self.rng.below(100) {
            r if r < 15 && self.killed.is_none() => Fault::Kill,
            r if r < 30 && self.killed.is_none() => Fault::Pause,
            r if r < 45 => Fault::CutOne,
            r if r < 55 => Fault::CutAll,
            r if r < 90 => Fault::Garbage(None),
            _ => Fault::Isolate,
        }
    }

    fn perform(&mut self, fault: Fault, stop: &AtomicBool, short: bool) {
        let n = self.ens.size() as u64;
        let client = self.rng.below(self.clients as u64) as usize;
        match fault {
            Fault::Restart => {
                if let Some((i, _)) = self.killed {
                    self.restart(i);
                }
            }
            // At most one server down or frozen at a time.
            Fault::Kill | Fault::Pause if self.killed.is_some() => {}
            Fault::Kill => {
                let i = self.rng.below(n) as usize;
                println!("nemesis: kill -9 server {i}");
                match self.ens.kill(i) {
                    Ok(()) => {
                        self.faults.kills += 1;
                        self.killed = Some((i, Instant::now()));
                    }
                    Err(e) => self.faults.errors.push(format!("kill {i}: {e}")),
                }
            }
            Fault::Pause => {
                let i = self.rng.below(n) as usize;
                let most = if short {
                    3000
                } else {
                    self.session_timeout.as_millis() as u64 * 3 / 2
                };
                let d = Duration::from_millis(self.rng.between(500, most));
                println!("nemesis: SIGSTOP server {i} for {d:?}");
                if let Err(e) = self.ens.pause(i) {
                    self.faults.errors.push(format!("pause {i}: {e}"));
                    return;
                }
                self.faults.pauses += 1;
                // Even when told to stop, the freeze ends here (the heal would resume it anyway).
                let _ = Nemesis::nap(stop, d);
                if let Err(e) = self.ens.resume(i) {
                    self.faults.errors.push(format!("resume {i}: {e}"));
                }
            }
            Fault::CutOne => {
                println!("nemesis: cut client {client}'s connections");
                self.faults.cuts_one += 1;
                self.faults.connections_cut += self.proxy.cut(Some(client)) as u64;
            }
            Fault::CutAll => {
                println!("nemesis: cut every client connection");
                self.faults.cuts_all += 1;
                self.faults.connections_cut += self.proxy.cut(None) as u64;
            }
            Fault::Garbage(kind) => {
                let kind = kind.unwrap_or(match self.rng.below(3) {
                    0 => Garbage::BadLength,
                    1 => Garbage::ShortFrame,
                    _ => Garbage::Truncate,
                });
                let pick = self.rng.next_u64();
                if self.proxy.inject(client, kind, pick) {
                    println!("nemesis: {kind:?} to client {client}");
                    self.faults.garbage += 1;
                }
            }
            Fault::Isolate => {
                // Long enough for the ensemble to expire the session: it must renew, and its
                // ephemerals must go.
                let d = self.session_timeout + Duration::from_secs(3);
                println!("nemesis: isolate client {client} for {d:?}");
                self.faults.isolations += 1;
                self.proxy.isolate(client, true);
                let _ = Nemesis::nap(stop, d);
                self.proxy.isolate(client, false);
            }
        }
    }

    fn restart(&mut self, i: usize) {
        println!("nemesis: restart server {i}");
        match self.ens.restart(i) {
            Ok(()) => {
                self.faults.restarts += 1;
                self.killed = None;
            }
            Err(e) => {
                self.faults.errors.push(format!("restart {i}: {e}"));
                self.killed = Some((i, Instant::now()));
            }
        }
    }

    /// Resumes, restarts and un-isolates everything; waits for a whole ensemble with a leader.
    pub fn heal(&mut self) {
        self.proxy.heal();
        for i in 0..self.ens.size() {
            let (paused, running) = {
                let node = &self.ens.nodes()[i];
                (node.is_paused(), node.is_running())
            };
            if paused {
                if let Err(e) = self.ens.resume(i) {
                    self.faults.errors.push(format!("heal: resume {i}: {e}"));
                }
            } else if !running {
                self.restart(i);
            }
        }
        if let Err(e) = self.ens.wait_all_ready() {
            self.faults.errors.push(format!("heal: {e}"));
        }
    }
}
