//! What W7 (watch fan-out) and W8 (reconnect with 10,000 watches) share between columns: the
//! untimed preparation and removal of their nodes, the ensemble facts W8 needs (which server is
//! the leader, which one a session is on, its pid to kill), and the check that every watch
//! fired.
//!
//! Preparation and removal use this client's blocking API from `zk-bench`'s main thread, before
//! the column's own sessions exist and after they are closed, so no column's clocks see them.
//!
//! **W8's placement.** Killing the leader of a 3-node ensemble starts an election, and no
//! server serves until it is over: the timing would measure the election, not the client. So
//! the watching session is put on a follower (a column reconnects until its session lands on
//! one; every client picks its first server at random), and the killed follower leaves the
//! leader and one follower serving, a quorum. The client then reconnects to either.

use std::time::Duration;

use std::fmt::Debug;

use bytes::Bytes;

use crate::spec::*;
use crate::{fail, BenchResult};

/// Timeout of one four-letter word.
const FOUR_LETTER_TIMEOUT: Duration = Duration::from_secs(5);

/// Sessions a column may open before one lands on a follower (each lands on the leader with
/// probability 1/3).
pub const PLACEMENT_TRIES: usize = 20;

fn blocking_session(hosts: &str) -> BenchResult<zk_blocking::Client> {
    Ok(zk_blocking::Client::builder(hosts)
        .session_timeout(SESSION_TIMEOUT)
        .connect()?)
}

/// Creates `parent` and its `n` children named by `child(i)` where missing (empty data).
///
/// Errors on any failed operation.
fn ensure_children(
    hosts: &str,
    parent: &str,
    n: usize,
    child: fn(usize) -> String,
) -> BenchResult<()> {
    let client = blocking_session(hosts)?;
    client.ensure_path(parent)?;
    let have: std::collections::HashSet<String> = client
        .get_children(parent)
        .run()?
        .iter()
        .map(|c| format!("{parent}/{c}"))
        .collect();
    let missing: Vec<String> = (0..n).map(child).filter(|p| !have.contains(p)).collect();
    let mut inflight = std::collections::VecDeque::with_capacity(WINDOW);
    for p in &missing {
        if inflight.len() == WINDOW {
            if let Some(r) = inflight.pop_front() {
                zk_blocking::AsyncResult::get(r)?;
            }
        }
        inflight.push_back(client.create(p, Bytes::new()).run_async());
    }
    for r in inflight {
        r.get()?;
    }
    client.close();
    Ok(())
}

/// W7's untimed set-up: `/zkb/w7` with its 10,000 empty children (missing ones created, so a
/// failed run's leftovers do no harm).
///
/// Errors on any failed operation.
pub fn w7_prepare(addr: &str) -> BenchResult<()> {
    ensure_children(addr, W7_PARENT, W7_CHILDREN, w7_child)
}

/// Removes `/zkb/w7` and its children after W7 (the spec: "removed after").
///
/// Errors on any failed operation.
pub fn w7_cleanup(addr: &str) -> BenchResult<()> {
    let client = blocking_session(addr)?;
    client.delete(W7_PARENT).recursive().run()?;
    client.close();
    Ok(())
}

/// W8's untimed set-up on the ensemble: `/zkb/w8` and its 10,000 nodes (kept between runs).
///
/// Errors on any failed operation.
pub fn w8_prepare(hosts: &str) -> BenchResult<()> {
    ensure_children(hosts, W8_PARENT, W8_NODES, w8_node)
}

/// The 3-node ensemble of W8: its client addresses in the order of the command line and the
/// servers' pids in the same order (`ZKB_SERVER_PIDS=p1,p2,p3`, printed by `zk-bench-server
/// --ensemble`).
#[derive(Debug, Clone)]
pub struct Ensemble {
    /// `HOST:PORT` of each server.
    pub addrs: Vec<String>,
    /// The JVM pid of each server.
    pub pids: Vec<u32>,
}

impl Ensemble {
    /// Parses the command line's `HOST:PORT,HOST:PORT,HOST:PORT` and `ZKB_SERVER_PIDS`.
    ///
    /// Errors if there are not three addresses, or the pids are missing, not numbers, or not
    /// one per address.
    pub fn from_env(hosts: &str) -> BenchResult<Ensemble> {
        let addrs: Vec<String> = hosts.split(',').map(str::to_owned).collect();
        if addrs.len() != 3 {
            return Err(fail(format!(
                "w8 runs on a 3-node ensemble: give HOST:PORT,HOST:PORT,HOST:PORT, not {hosts:?}"
            )));
        }
        let pids = std::env::var("ZKB_SERVER_PIDS").map_err(|_| {
            fail("w8 kills a server: set ZKB_SERVER_PIDS=p1,p2,p3 (zk-bench-server --ensemble)")
        })?;
        let pids: Vec<u32> = pids
            .split(',')
            .map(|p| p.trim().parse::<u32>())
            .collect::<Result<_, _>>()
            .map_err(|e| fail(format!("ZKB_SERVER_PIDS={pids:?}: {e}")))?;
        if pids.len() != addrs.len() {
            return Err(fail("ZKB_SERVER_PIDS needs one pid per address"));
        }
        Ok(Ensemble { addrs, pids })
    }

    /// The connect string of every server.
    pub fn connect_string(&self) -> String {
        self.addrs.join(",")
    }

    /// The connect string of every server but `victim` (W8's writer session, which has no
    /// reason to try the dead one).
    pub fn survivors(&self, victim: usize) -> String {
        let live: Vec<&str> = (0..self.addrs.len())
            .filter(|&i| i != victim)
            .map(|i| self.addrs[i].as_str())
            .collect();
        live.join(",")
    }

    /// The pids of every server but `victim`, whose CPU the `PHASE` line sums.
    pub fn survivor_pids(&self, victim: usize) -> Vec<u32> {
        (0..self.pids.len())
            .filter(|&i| i != victim)
            .map(|i| self.pids[i])
            .collect()
    }

    fn word(&self, i: usize, word: &str) -> BenchResult<String> {
        let port: u16 = self.addrs[i]
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .ok_or_else(|| fail(format!("no port in {:?}", self.addrs[i])))?;
        Ok(zk_testkit::real::four_letter_word(
            port,
            word,
            FOUR_LETTER_TIMEOUT,
        )?)
    }

    /// Which server session `session_id` is on, if it is on a follower (`cons` on each server
    /// lists its connections with their session ids); `None` if it is on the leader.
    ///
    /// Errors if no server lists the session, or a server does not answer.
    pub fn follower_of(&self, session_id: i64) -> BenchResult<Option<usize>> {
        let needle = format!("sid=0x{:x},", session_id as u64);
        for i in 0..self.addrs.len() {
            if self.word(i, "cons")?.contains(&needle) {
                let leads = self
                    .word(i, "srvr")?
                    .lines()
                    .any(|l| l.trim() == "Mode: leader");
                return Ok((!leads).then_some(i));
            }
        }
        Err(fail(format!(
            "no server lists session 0x{:x}",
            session_id as u64
        )))
    }

    /// `kill -9` of server `i`.
    ///
    /// Errors if the signal cannot be sent.
    pub fn kill(&self, i: usize) -> BenchResult<()> {
        let pid = nix::unistd::Pid::from_raw(self.pids[i] as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL)?;
        Ok(())
    }
}

/// Which of W8's nodes `path` is, if it is one.
fn w8_index(path: &str) -> Option<usize> {
    let rest = path.strip_prefix(W8_PARENT)?.strip_prefix("/n")?;
    let i: usize = rest.parse().ok()?;
    (i < W8_NODES && rest.len() == 5).then_some(i)
}

/// How many times W8's writer changes every node. The first pass fires the one-shot watches and
/// the recursive one; the second fires only the recursive watch, because the one-shot watches
/// are spent. A client dispatches an event of a one-shot watch to a recursive watcher of an
/// ancestor too, so after one pass a recursive watch the server no longer holds (not re-armed on
/// reconnect) would still look alive; the second pass tells.
pub const W8_PASSES: usize = 2;

/// The check after W8's timed phase: every one-shot watch fired once with NodeDataChanged on
/// its own node, and the recursive watch reported NodeDataChanged for every node in both passes.
#[derive(Debug)]
pub struct W8Tally {
    oneshot: usize,
    /// Events of the recursive watch per node.
    recursive: Vec<u8>,
    recursive_events: usize,
    wrong: Vec<String>,
}

impl Default for W8Tally {
    fn default() -> Self {
        W8Tally {
            oneshot: 0,
            recursive: vec![0; W8_NODES],
            recursive_events: 0,
            wrong: Vec::new(),
        }
    }
}

impl W8Tally {
    /// One-shot watch `i` fired with an event of type `kind` (`changed`: NodeDataChanged) on
    /// `path`.
    pub fn oneshot(&mut self, i: usize, changed: bool, kind: &dyn Debug, path: &str) {
        if changed && w8_index(path) == Some(i) {
            self.oneshot += 1;
        } else if self.wrong.len() < 3 {
            self.wrong
                .push(format!("one-shot watch {i} fired with {kind:?} on {path}"));
        }
    }

    /// One-shot watch `i` ended without an event (`why`).
    pub fn oneshot_failed(&mut self, i: usize, why: &dyn Debug) {
        if self.wrong.len() < 3 {
            self.wrong.push(format!("one-shot watch {i}: {why:?}"));
        }
    }

    /// The recursive watch reported an event of type `kind` (`changed`: NodeDataChanged) on
    /// `path`; true once it has reported every node's every change.
    pub fn recursive(&mut self, changed: bool, kind: &dyn Debug, path: &str) -> bool {
        match (changed, w8_index(path)) {
            // Each node is written W8_PASSES times: one event more is as wrong as one missing.
            (true, Some(i)) if usize::from(self.recursive[i]) < W8_PASSES => {
                self.recursive[i] += 1;
                self.recursive_events += 1;
            }
            _ if self.wrong.len() < 3 => self
                .wrong
                .push(format!("recursive watch reported {kind:?} on {path}")),
            _ => {}
        }
        self.recursive_complete()
    }

    /// True once the recursive watch has reported every change.
    pub fn recursive_complete(&self) -> bool {
        self.recursive_events == W8_NODES * W8_PASSES
    }

    /// Ok if every watch fired as it should; otherwise the failure, with what was missing.
    ///
    /// Errors when any event is missing or wrong: a missing event is a failure, not a number.
    pub fn verdict(&self, column: &str) -> BenchResult<()> {
        if self.oneshot == W8_NODES && self.recursive_complete() && self.wrong.is_empty() {
            return Ok(());
        }
        let once = self.recursive.iter().filter(|&&n| n >= 1).count();
        let twice = self.recursive.iter().filter(|&&n| n >= 2).count();
        Err(fail(format!(
            "w8 check ({column}): after the reconnect and {W8_PASSES} writes to every node, {} of \
             {W8_NODES} one-shot data watches fired, and the persistent recursive watch of \
             {W8_PARENT} reported {} of {W8_NODES} nodes once and {} twice, within {} s{}",
            self.oneshot,
            once,
            twice,
            W8_CHECK_TIMEOUT.as_secs(),
            if self.wrong.is_empty() {
                String::new()
            } else {
                format!("; wrong events: {}", self.wrong.join("; "))
            }
        )))
    }
}

/// Checks one W7 event, after the timed phase: NodeDataChanged (`changed`) on child `i`.
///
/// Errors naming the event otherwise.
pub fn w7_check(i: usize, changed: bool, kind: &dyn Debug, path: &str) -> BenchResult<()> {
    if changed && path == w7_child(i) {
        Ok(())
    } else {
        Err(fail(format!("w7: watch {i} fired with {kind:?} on {path}")))
    }
}

/// Where W8's timed phase spent its time, from the kill: until the client reported the
/// connection lost, until it reported connected again, until the read after it was answered.
/// Printed on stderr (the spec's stdout has no place for it); `scripts/bench` keeps it in the
/// run's `.err` file.
#[derive(Debug)]
pub struct W8Breakdown {
    killed: std::time::Instant,
    lost: Option<std::time::Instant>,
    connected: Option<std::time::Instant>,
}

impl W8Breakdown {
    /// Starts at the kill.
    pub fn killed() -> Self {
        W8Breakdown {
            killed: std::time::Instant::now(),
            lost: None,
            connected: None,
        }
    }

    /// The client reported the connection lost.
    pub fn lost(&mut self) {
        self.lost.get_or_insert_with(std::time::Instant::now);
    }

    /// The client reported connected again.
    pub fn connected(&mut self) {
        self.connected = Some(std::time::Instant::now());
    }

    /// The line for stderr, at the end of the timed phase.
    pub fn line(&self, victim: usize) -> String {
        let ms = |t: Option<std::time::Instant>| match t {
            Some(t) => format!("{:.1}", (t - self.killed).as_secs_f64() * 1e3),
            None => "-".to_owned(),
        };
        format!(
            "w8 breakdown (ms after kill -9 of server {victim}): connection lost {}, connected {}, \
             re-armed (read answered) {}",
            ms(self.lost),
            ms(self.connected),
            ms(Some(std::time::Instant::now()))
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn changed(t: &mut W8Tally, pass_count: usize) {
        for _ in 0..pass_count {
            for i in 0..W8_NODES {
                t.recursive(true, &"NodeDataChanged", &w8_node(i));
            }
        }
    }

    fn oneshots(t: &mut W8Tally) {
        for i in 0..W8_NODES {
            t.oneshot(i, true, &"NodeDataChanged", &w8_node(i));
        }
    }

    #[test]
    fn w8_check_passes_only_when_every_watch_fired_in_both_passes() {
        let mut t = W8Tally::default();
        oneshots(&mut t);
        changed(&mut t, W8_PASSES);
        assert!(t.recursive_complete());
        assert!(t.verdict("test").is_ok());
    }

    #[test]
    fn w8_check_fails_when_the_recursive_watch_missed_the_second_pass() {
        // What a client that did not re-arm the recursive watch shows: the first pass arrives
        // through the one-shot watches on the same nodes, the second does not.
        let mut t = W8Tally::default();
        oneshots(&mut t);
        changed(&mut t, 1);
        assert!(!t.recursive_complete());
        let err = t.verdict("test").unwrap_err().to_string();
        assert!(
            err.contains("10000 of 10000 nodes once and 0 twice"),
            "{err}"
        );
    }

    #[test]
    fn w8_check_fails_on_a_missing_one_shot_event() {
        let mut t = W8Tally::default();
        for i in 1..W8_NODES {
            t.oneshot(i, true, &"NodeDataChanged", &w8_node(i));
        }
        changed(&mut t, W8_PASSES);
        let err = t.verdict("test").unwrap_err().to_string();
        assert!(err.contains("9999 of 10000 one-shot"), "{err}");
    }

    #[test]
    fn w8_check_fails_on_a_wrong_or_extra_event() {
        let mut t = W8Tally::default();
        oneshots(&mut t);
        changed(&mut t, W8_PASSES);
        // A third event for a node written twice.
        t.recursive(true, &"NodeDataChanged", &w8_node(7));
        assert!(t.verdict("test").is_err());

        let mut t = W8Tally::default();
        t.oneshot(0, true, &"NodeDataChanged", &w8_node(1));
        for i in 1..W8_NODES {
            t.oneshot(i, true, &"NodeDataChanged", &w8_node(i));
        }
        changed(&mut t, W8_PASSES);
        let err = t.verdict("test").unwrap_err().to_string();
        assert!(err.contains("one-shot watch 0 fired"), "{err}");
    }

    #[test]
    fn w8_node_paths_map_back_to_their_index() {
        assert_eq!(w8_index(&w8_node(0)), Some(0));
        assert_eq!(w8_index(&w8_node(W8_NODES - 1)), Some(W8_NODES - 1));
        assert_eq!(w8_index("/zkb/w8"), None);
        assert_eq!(w8_index("/zkb/w8/n0001"), None);
        assert_eq!(w8_index(&format!("{W8_PARENT}/n{W8_NODES:05}")), None);
    }
}
