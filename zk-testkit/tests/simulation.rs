//! Deterministic simulation of the session machine against SimServer.
//!
//! One seed fixes everything: the ensemble (size, version), a simulated network on a virtual
//! clock (random delays, byte streams split at random points, connections cut), faults (server
//! crashes and restarts, partitions long enough to expire the session, the client process
//! restarting and resuming its session by id and password) and a random stream of operations,
//! transactions and watches. After every step a checker holds the session to its promises:
//!
//! - every submitted request resolves exactly once, replies come in submission order;
//! - results agree with a reference model of the tree, no acknowledged write is lost, and a write
//!   that failed with ConnectionLoss was applied at most once;
//! - while the session lives no watch is lost across reconnects: by the time the reply to one of
//!   our writes arrives, every watcher that write concerns has heard of it (the server sends the
//!   notification before the reply); after the session ends every watcher was told;
//! - a persistent watcher that lives across a reconnect either sees every change or gets a
//!   WatchResync after that reconnect (the server re-arms persistent watches without catch-up
//!   events, ZOOKEEPER-4698): a write that failed with ConnectionLoss may have applied unseen, so
//!   by the first reply on a later connection each persistent watcher it concerns has seen its
//!   event or been resynced since;
//! - ephemerals vanish exactly when their session ends;
//! - the machine never panics and never asks for the impossible (two connections at once, bytes
//!   for a connection that is not open).
//!
//! `cargo test` runs a few hundred seeds. `SIM_SEEDS=N` runs N seeds (from `SIM_SEED_START`), and
//! a failure prints its seed and the command that replays it with a trace.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use bytes::Bytes;
use zk_core::path::{join, parent};
use zk_core::proto::{
    Acl, AddWatchRequest, CreateRequest, ErrorCode, EventType, MultiOp, MultiResult, PathRequest,
    PathVersionRequest, PathWatchRequest, Request, Response, SetDataRequest,
};
use zk_core::rng::Rng;
use zk_core::session::{ProbeId, SessionConfig, WatchEnd, WatchKind};
use zk_core::{ConnId, Error, Event, LostReason, RequestId, Session, SessionState, WatcherId};
use zk_testkit::sim::{ServerOutput, SimConfig, SimConnId, SimServer};

// ---- parameters drawn from the seed ---------------------------------------------------------

#[derive(Debug, Clone)]
struct Params {
    servers: usize,
    version: (u32, u32, u32),
    ops: usize,
    max_delay_ms: u64,
    session_timeout_ms: u64,
    /// Per-step probabilities (out of 1000).
    p_cut: u64,
    p_crash: u64,
    p_partition: u64,
    p_restart_client: u64,
    p_lag: u64,
    p_set_hosts: u64,
}

fn params(rng: &mut Rng) -> Params {
    let versions = [(3, 5, 10), (3, 6, 4), (3, 8, 0), (3, 9, 5)];
    Params {
        servers: 1 + rng.below(3) as usize,
        version: versions[rng.below(versions.len() as u64) as usize],
        ops: 150 + rng.below(150) as usize,
        max_delay_ms: 1 + rng.below(30),
        session_timeout_ms: 4000 + 2000 * rng.below(3),
        p_cut: rng.below(25),
        p_crash: rng.below(10),
        p_partition: rng.below(6),
        p_restart_client: rng.below(6),
        p_lag: rng.below(10),
        p_set_hosts: rng.below(6),
    }
}

// ---- the network ----------------------------------------------------------------------------

/// A client connection is named by the client process's incarnation and the session's ConnId
/// (a restarted process starts its ConnIds afresh).
type Key = (u32, ConnId);

#[derive(Debug)]
struct Link {
    server: usize,
    sconn: Option<SimConnId>,
    /// Delivery times so far in each direction: TCP keeps order, so later chunks never overtake.
    c2s_at: Instant,
    s2c_at: Instant,
    client_open: bool,
    server_open: bool,
    /// A network fault dropped this link: nothing more is delivered.
    cut: bool,
}

#[derive(Debug)]
enum Action {
    Connected(Key),
    ConnectFailed(Key),
    ToServer(Key, Vec<u8>),
    ToClient(Key, Vec<u8>),
    ServerSeesClose(Key),
    ClientSeesClose(Key),
    ProbeDone(u32, ProbeId, Option<String>),
    RestartServer(usize),
}

// ---- the reference model ----------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
enum Node {
    Absent,
    Present {
        data: Option<Option<Bytes>>,
        version: Option<i32>,
        ephemeral: Option<bool>,
    },
}

/// What the client knows about the tree under /t. A path missing from `nodes` is unknown (a
/// write to it failed with ConnectionLoss and nothing has read it since).
#[derive(Debug, Clone, Default)]
struct Model {
    nodes: BTreeMap<String, Node>,
    /// Parents whose child set is not fully known (a sequential create was lost).
    unknown_children: BTreeSet<String>,
}

impl Model {
    fn get(&self, p: &str) -> Option<&Node> {
        self.nodes.get(p)
    }

    fn present(
        &mut self,
        p: &str,
        data: Option<Option<Bytes>>,
        version: Option<i32>,
        eph: Option<bool>,
    ) {
        self.nodes.insert(
            p.to_owned(),
            Node::Present {
                data,
                version,
                ephemeral: eph,
            },
        );
    }

    fn forget(&mut self, p: &str) {
        self.nodes.remove(p);
        if let Some(par) = parent(p) {
            self.unknown_children.insert(par.to_owned());
        }
    }

    /// Known children of `p`, if the whole child set is known.
    fn children(&self, p: &str) -> Option<BTreeSet<String>> {
        if self.unknown_children.contains(p) {
            return None;
        }
        let mut out = BTreeSet::new();
        for (path, node) in &self.nodes {
            if parent(path) == Some(p) && path != p {
                match node {
                    Node::Present { .. } => {
                        out.insert(path.rsplit('/').next().unwrap_or("").to_owned());
                    }
                    Node::Absent => {}
                }
            }
        }
        // Paths under p that are unknown make the set unknown.
        if SIM_PATHS
            .iter()
            .any(|s| parent(s) == Some(p) && !self.nodes.contains_key(*s))
        {
            return None;
        }
        Some(out)
    }

    fn has_children(&self, p: &str) -> Option<bool> {
        self.children(p).map(|c| !c.is_empty())
    }
}

/// The fixed paths the generator uses (plus sequential children of /t/q).
const SIM_PATHS: &[&str] = &["/t/a", "/t/b", "/t/a/x", "/t/a/y", "/t/b/z"];

// ---- the checker ----------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Submitted {
    request: Request,
    at: Instant,
    resolved: bool,
}

#[derive(Debug, Clone)]
struct Watcher {
    path: String,
    kind: WatchKind,
    live: bool,
    /// Last time each (event type, path) reached this watcher.
    seen: BTreeMap<(i32, String), Instant>,
    /// The connection epoch it was registered on.
    born: u64,
    /// Changes a write with an unknown outcome may have made that this (persistent) watcher has
    /// neither seen nor been resynced for since.
    doubts: Vec<Doubt>,
}

/// A change that may have happened unseen: a write concerning a persistent watcher failed with
/// ConnectionLoss.
#[derive(Debug, Clone)]
struct Doubt {
    event: EventType,
    /// The path; for a sequential create, the prefix of the path.
    path: String,
    prefix: bool,
    /// When the write was submitted.
    at: Instant,
    /// The connection epoch the write was lost with.
    epoch: u64,
}

impl Doubt {
    fn seen_as(&self, event: EventType, path: &str) -> bool {
        event == self.event
            && if self.prefix {
                path.starts_with(&self.path)
            } else {
                path == self.path
            }
    }
}

struct Checker {
    requests: BTreeMap<(u32, RequestId), Submitted>,
    last_reply: BTreeMap<u32, RequestId>,
    model: Model,
    watchers: BTreeMap<(u32, WatcherId), Watcher>,
    tags: u64,
    /// The session id of each session we held, with whether it ended.
    sessions_ended: BTreeSet<i64>,
}

// ---- the world ------------------------------------------------------------------------------

struct World {
    seed: u64,
    p: Params,
    rng: Rng,
    now: Instant,
    server: SimServer,
    session: Session,
    incarnation: u32,
    links: BTreeMap<Key, Link>,
    by_sconn: BTreeMap<u64, Key>,
    agenda: BinaryHeap<Reverse<(Instant, u64)>>,
    actions: BTreeMap<u64, Action>,
    seq: u64,
    partition_until: Option<Instant>,
    lagging: Option<usize>,
    checker: Checker,
    trace: Vec<String>,
    verbose: bool,
    hosts: String,
    start: Instant,
    /// The id of the session this process last held, to check its ephemerals when it ends.
    last_session_id: Option<i64>,
    /// Counts the session's connections: one more at every Connected state.
    epoch: u64,
    /// Reads may be stale until a sync succeeds: after a client restart (the new process does
    /// not know the old one's last zxid, so it may land on a lagging server) and after a write
    /// whose outcome is unknown (the client never saw its zxid, so a lagging server it moves to
    /// may not have it yet). The id of the sync that will end it.
    freshness_sync: Option<RequestId>,
}

type Fail = String;

macro_rules! ensure {
    ($cond:expr, $($fmt:tt)*) => {
        if !$cond {
            return Err(format!($($fmt)*));
        }
    };
}

impl World {
    fn new(seed: u64, verbose: bool) -> World {
        let mut rng = Rng::new(seed);
        let p = params(&mut rng);
        let now = Instant::now();
        let server = SimServer::new(
            SimConfig {
                servers: p.servers,
                version: p.version,
                tick_ms: 500,
                ..SimConfig::default()
            },
            now,
        );
        let hosts = (0..p.servers)
            .map(|i| format!("s{i}:2181"))
            .collect::<Vec<_>>()
            .join(",");
        let session = Session::new(Self::config(&hosts, &p, seed, None), now);
        World {
            seed,
            p,
            rng,
            now,
            server,
            session,
            incarnation: 0,
            links: BTreeMap::new(),
            by_sconn: BTreeMap::new(),
            agenda: BinaryHeap::new(),
            actions: BTreeMap::new(),
            seq: 0,
            partition_until: None,
            lagging: None,
            checker: Checker {
                requests: BTreeMap::new(),
                last_reply: BTreeMap::new(),
                model: Model::default(),
                watchers: BTreeMap::new(),
                tags: 0,
                sessions_ended: BTreeSet::new(),
            },
            trace: Vec::new(),
            verbose,
            hosts,
            start: now,
            last_session_id: None,
            epoch: 0,
            freshness_sync: None,
        }
    }

    fn config(
        hosts: &str,
        p: &Params,
        seed: u64,
        resume: Option<zk_core::SessionId>,
    ) -> SessionConfig {
        let mut c = SessionConfig::new(hosts).expect("connect string");
        c.session_timeout = Duration::from_millis(p.session_timeout_ms);
        c.rng_seed = seed;
        c.resume = resume;
        c
    }

    fn log(&mut self, line: String) {
        let t = self.now.duration_since(self.start).as_millis();
        let line = format!("{t:>7}ms {line}");
        if self.verbose {
            eprintln!("{line}");
        }
        self.trace.push(line);
        if self.trace.len() > 60 && !self.verbose {
            self.trace.remove(0);
        }
    }

    fn delay(&mut self) -> Duration {
        Duration::from_micros(self.rng.below(self.p.max_delay_ms * 1000 + 1))
    }

    fn schedule(&mut self, at: Instant, action: Action) {
        self.seq += 1;
        self.agenda.push(Reverse((at, self.seq)));
        self.actions.insert(self.seq, action);
    }

    fn partitioned(&self) -> bool {
        self.partition_until.is_some_and(|t| self.now < t)
    }

    /// Splits `bytes` at random points and schedules the pieces in order.
    fn send_chunks(&mut self, key: Key, bytes: Vec<u8>, to_server: bool) {
        let mut rest = &bytes[..];
        while !rest.is_empty() {
            let n = if self.rng.below(3) == 0 {
                rest.len()
            } else {
                1 + self.rng.below(rest.len() as u64) as usize
            };
            let (chunk, tail) = rest.split_at(n);
            rest = tail;
            let d = self.delay();
            let Some(link) = self.links.get_mut(&key) else {
                return;
            };
            let slot = if to_server {
                &mut link.c2s_at
            } else {
                &mut link.s2c_at
            };
            let at = (*slot).max(self.now + d);
            *slot = at;
            let action = if to_server {
                Action::ToServer(key, chunk.to_vec())
            } else {
                Action::ToClient(key, chunk.to_vec())
            };
            self.schedule(at, action);
        }
    }

    // ---- pumping outputs ---------------------------------------------------------------------

    fn pump(&mut self) -> Result<(), Fail> {
        loop {
            let mut progress = false;
            while let Some(c) = self.session.poll_connect() {
                progress = true;
                let key = (self.incarnation, c.conn);
                let open = self
                    .links
                    .iter()
                    .filter(|(k, l)| k.0 == self.incarnation && l.client_open)
                    .count();
                ensure!(
                    open == 0,
                    "session dialed {:?} while another connection was open",
                    c.conn
                );
                let server: usize = c.addr.host[1..]
                    .parse()
                    .map_err(|_| "bad host".to_owned())?;
                self.log(format!("dial {:?} -> s{server}", c.conn));
                let now = self.now;
                self.links.insert(
                    key,
                    Link {
                        server,
                        sconn: None,
                        c2s_at: now,
                        s2c_at: now,
                        client_open: true,
                        server_open: false,
                        cut: false,
                    },
                );
                if self.partitioned() {
                    // SYNs vanish: the session's connect timeout must handle it.
                } else if !self.server.is_up(server) {
                    let d = self.delay();
                    self.schedule(now + d, Action::ConnectFailed(key));
                } else {
                    let d = self.delay();
                    self.schedule(now + d, Action::Connected(key));
                }
            }
            while let Some(conn) = self.session.poll_close() {
                progress = true;
                let key = (self.incarnation, conn);
                self.log(format!("client closes {conn:?}"));
                self.client_close(key);
            }
            while let Some(probe) = self.session.poll_probe() {
                progress = true;
                let server: usize = probe.addr.host[1..]
                    .parse()
                    .map_err(|_| "bad host".to_owned())?;
                let text = if self.partitioned() {
                    None
                } else {
                    self.server.four_letter(self.now, server, probe.command)
                };
                let d = self.delay() * 2;
                let inc = self.incarnation;
                self.schedule(self.now + d, Action::ProbeDone(inc, probe.id, text));
            }
            let mut buf = Vec::new();
            while let Some(conn) = self.session.poll_transmit(&mut buf) {
                progress = true;
                let key = (self.incarnation, conn);
                let ok = self
                    .links
                    .get(&key)
                    .is_some_and(|l| l.client_open && l.sconn.is_some());
                ensure!(
                    ok,
                    "session sent bytes on {conn:?}, which is not an open connection"
                );
                if self.verbose {
                    self.log_frames(&buf);
                }
                self.send_chunks(key, std::mem::take(&mut buf), true);
            }
            while let Some(ev) = self.session.poll_event() {
                progress = true;
                self.on_event(ev)?;
            }
            while let Some(out) = self.server.poll_output() {
                progress = true;
                match out {
                    ServerOutput::Data { conn, bytes } => {
                        if let Some(key) = self.by_sconn.get(&conn.0).copied() {
                            if self
                                .links
                                .get(&key)
                                .is_some_and(|l| l.server_open && !l.cut)
                            {
                                self.send_chunks(key, bytes, false);
                            }
                        }
                    }
                    ServerOutput::Close { conn } => {
                        if let Some(key) = self.by_sconn.get(&conn.0).copied() {
                            if let Some(link) = self.links.get_mut(&key) {
                                if link.server_open {
                                    link.server_open = false;
                                    let at = link.s2c_at.max(self.now);
                                    self.schedule(at, Action::ClientSeesClose(key));
                                }
                            }
                        }
                    }
                }
            }
            if !progress {
                return Ok(());
            }
        }
    }

    /// Logs the requests in a chunk of client bytes (verbose replays only; a chunk holds whole
    /// frames because the session hands them out whole).
    fn log_frames(&mut self, bytes: &[u8]) {
        let mut d = zk_core::proto::FrameDecoder::new(usize::MAX >> 1);
        d.extend(bytes);
        while let Ok(Some(frame)) = d.next_frame() {
            let line = match zk_core::proto::decode_request(frame.clone()) {
                Ok((h, Ok(req))) => format!("  -> xid={} {}", h.xid, describe_wire(&req)),
                _ => format!("  -> ({} bytes: handshake or undecodable)", frame.len()),
            };
            self.log(line);
        }
    }

    fn client_close(&mut self, key: Key) {
        let Some(link) = self.links.get_mut(&key) else {
            return;
        };
        if !link.client_open {
            return;
        }
        link.client_open = false;
        if link.sconn.is_some() && link.server_open {
            // Bytes already sent still arrive, then the FIN.
            let at = link.c2s_at.max(self.now);
            self.schedule(at, Action::ServerSeesClose(key));
        }
    }

    fn act(&mut self, action: Action) -> Result<(), Fail> {
        match action {
            Action::Connected(key) => {
                let Some(link) = self.links.get(&key) else {
                    return Ok(());
                };
                let server = link.server;
                if !link.client_open || link.cut {
                    return Ok(());
                }
                if self.partitioned() || !self.server.is_up(server) {
                    return self.act(Action::ConnectFailed(key));
                }
                let sconn = self.server.accept(self.now, server);
                self.by_sconn.insert(sconn.0, key);
                if let Some(link) = self.links.get_mut(&key) {
                    link.sconn = Some(sconn);
                    link.server_open = true;
                }
                if key.0 == self.incarnation {
                    self.session.handle_connected(self.now, key.1);
                }
            }
            Action::ConnectFailed(key) => {
                if let Some(link) = self.links.get_mut(&key) {
                    if link.client_open {
                        link.client_open = false;
                        if key.0 == self.incarnation {
                            self.session.handle_connect_failed(
                                self.now,
                                key.1,
                                "connection refused",
                            );
                        }
                    }
                }
            }
            Action::ToServer(key, bytes) => {
                if let Some(link) = self.links.get(&key) {
                    if let (Some(sconn), true, false) = (link.sconn, link.server_open, link.cut) {
                        self.server.handle_bytes(self.now, sconn, &bytes);
                    }
                }
            }
            Action::ToClient(key, bytes) => {
                if key.0 == self.incarnation
                    && self
                        .links
                        .get(&key)
                        .is_some_and(|l| l.client_open && !l.cut)
                {
                    self.session.handle_bytes(self.now, key.1, &bytes);
                }
            }
            Action::ServerSeesClose(key) => {
                if let Some(link) = self.links.get_mut(&key) {
                    if let (Some(sconn), true) = (link.sconn, link.server_open) {
                        link.server_open = false;
                        self.server.handle_closed(self.now, sconn);
                    }
                }
            }
            Action::ClientSeesClose(key) => {
                if let Some(link) = self.links.get_mut(&key) {
                    if link.client_open {
                        link.client_open = false;
                        if key.0 == self.incarnation {
                            self.log(format!("client sees close of {:?}", key.1));
                            self.session.handle_closed(self.now, key.1);
                        }
                    }
                }
            }
            Action::ProbeDone(inc, id, text) => {
                if inc == self.incarnation {
                    self.session
                        .handle_probe_result(self.now, id, text.as_deref().ok_or(()));
                }
            }
            Action::RestartServer(i) => {
                self.log(format!("restart s{i}"));
                self.server.restart(self.now, i);
            }
        }
        Ok(())
    }

    /// Runs the world until virtual time `until`.
    fn run_until(&mut self, until: Instant) -> Result<(), Fail> {
        loop {
            self.pump()?;
            let next_action = self.agenda.peek().map(|Reverse((t, _))| *t);
            let candidates = [
                next_action,
                self.session.poll_timeout(),
                self.server.poll_timeout(),
            ];
            let Some(next) = candidates.into_iter().flatten().min() else {
                self.now = until;
                return Ok(());
            };
            if next > until {
                self.now = until;
                return Ok(());
            }
            self.now = self.now.max(next);
            if next_action == Some(next) {
                if let Some(Reverse((_, seq))) = self.agenda.pop() {
                    if let Some(action) = self.actions.remove(&seq) {
                        self.act(action)?;
                    }
                }
            }
            if self.session.poll_timeout().is_some_and(|t| t <= self.now) {
                self.session.handle_timeout(self.now);
            }
            if self.server.poll_timeout().is_some_and(|t| t <= self.now) {
                self.server.handle_timeout(self.now);
            }
            self.pump()?;
            self.check_ephemerals()?;
        }
    }

    // ---- faults ------------------------------------------------------------------------------

    fn cut_all(&mut self) {
        let keys: Vec<Key> = self
            .links
            .iter()
            .filter(|(_, l)| !l.cut && (l.client_open || l.server_open))
            .map(|(k, _)| *k)
            .collect();
        for key in keys {
            self.cut(key);
        }
    }

    fn cut(&mut self, key: Key) {
        let d1 = self.delay();
        let d2 = self.delay();
        let now = self.now;
        if let Some(link) = self.links.get_mut(&key) {
            link.cut = true;
        }
        self.log(format!("cut {key:?}"));
        // Both ends learn of the reset after a while; whatever was in transit is lost.
        self.schedule(now + d1, Action::ServerSeesClose(key));
        self.schedule(now + d2, Action::ClientSeesClose(key));
    }

    fn fault(&mut self) {
        let roll = self.rng.below(1000);
        let p = self.p.clone();
        let mut at = 0;
        let mut hit = |prob: u64| {
            let h = roll >= at && roll < at + prob;
            at += prob;
            h
        };
        if hit(p.p_cut) {
            let current: Vec<Key> = self
                .links
                .iter()
                .filter(|(k, l)| k.0 == self.incarnation && l.client_open && !l.cut)
                .map(|(k, _)| *k)
                .collect();
            for k in current {
                self.cut(k);
            }
        } else if hit(p.p_crash) {
            let i = self.rng.below(self.p.servers as u64) as usize;
            if self.server.is_up(i) {
                self.log(format!("crash s{i}"));
                self.server.crash(self.now, i);
                let back = Duration::from_millis(100 + self.rng.below(3000));
                self.schedule(self.now + back, Action::RestartServer(i));
            }
        } else if hit(p.p_partition) {
            // Sometimes long enough for the server to expire the session.
            let ms = if self.rng.below(2) == 0 {
                200 + self.rng.below(1500)
            } else {
                self.p.session_timeout_ms * 2 + self.rng.below(3000)
            };
            self.log(format!("partition for {ms} ms"));
            self.partition_until = Some(self.now + Duration::from_millis(ms));
            self.cut_all();
        } else if hit(p.p_restart_client) {
            self.restart_client();
        } else if hit(p.p_set_hosts) {
            // The ensemble's membership as the client sees it changes: a random non-empty subset
            // of the servers, in random order.
            let mut list: Vec<zk_core::HostAddr> = (0..self.p.servers)
                .filter(|_| self.rng.below(3) != 0)
                .map(|i| zk_core::HostAddr::new(format!("s{i}"), 2181))
                .collect();
            if list.is_empty() {
                let i = self.rng.below(self.p.servers as u64) as usize;
                list.push(zk_core::HostAddr::new(format!("s{i}"), 2181));
            }
            self.rng.shuffle(&mut list);
            self.log(format!(
                "set_hosts {}",
                list.iter()
                    .map(|h| h.to_string())
                    .collect::<Vec<_>>()
                    .join(",")
            ));
            if let Err(e) = self.session.set_hosts(self.now, list) {
                self.log(format!("set_hosts refused: {e}"));
            }
        } else if hit(p.p_lag) && self.p.servers > 1 {
            if let Some(i) = self.lagging.take() {
                self.server.set_lagging(i, false);
                self.log(format!("s{i} catches up"));
            } else {
                let i = self.rng.below(self.p.servers as u64) as usize;
                self.server.set_lagging(i, true);
                self.lagging = Some(i);
                self.log(format!("s{i} lags"));
            }
        }
    }

    /// The client process dies without closing and a new one resumes the session by id and
    /// password (kazoo's `client_id`).
    fn restart_client(&mut self) {
        let resume = self.session.session_id();
        self.log(format!(
            "client restarts, resuming {:?}",
            resume.as_ref().map(|r| r.id)
        ));
        let old: Vec<Key> = self
            .links
            .iter()
            .filter(|(k, l)| k.0 == self.incarnation && l.client_open)
            .map(|(k, _)| *k)
            .collect();
        for key in old {
            self.client_close(key);
        }
        // Whatever the old process had in flight is abandoned: its writes may or may not apply.
        let inc = self.incarnation;
        let abandoned: Vec<Request> = self
            .checker
            .requests
            .iter()
            .filter(|((i, _), s)| *i == inc && !s.resolved)
            .map(|(_, s)| s.request.clone())
            .collect();
        for r in &abandoned {
            self.checker.indeterminate(r);
        }
        self.checker
            .requests
            .retain(|(i, _), s| *i != inc || s.resolved);
        for ((i, _), w) in self.checker.watchers.iter_mut() {
            if *i == inc {
                w.live = false;
            }
        }
        self.incarnation += 1;
        self.last_session_id = resume.as_ref().map(|r| r.id);
        let seed = self.seed.wrapping_add(u64::from(self.incarnation) << 32);
        self.session = Session::new(Self::config(&self.hosts, &self.p, seed, resume), self.now);
        // A new process does not know the last zxid the old one saw, so it may land on a server
        // that lags behind its own writes (ZooKeeper's guarantee is per client history). As a
        // careful program would, it syncs first, again until a sync succeeds; reads before that
        // may be stale and are not held to the model.
        self.submit_freshness_sync();
    }

    /// Syncs so that later reads see everything committed so far; until it succeeds, reads are
    /// neither checked against the model nor learnt from.
    fn submit_freshness_sync(&mut self) {
        let sync = Request::Sync(PathRequest { path: "/t".into() });
        self.freshness_sync = None;
        if let Ok(id) = self.session.submit(self.now, sync.clone()) {
            self.checker.requests.insert(
                (self.incarnation, id),
                Submitted {
                    request: sync,
                    at: self.now,
                    resolved: false,
                },
            );
            self.freshness_sync = Some(id);
        }
    }

    // ---- operations --------------------------------------------------------------------------

    fn tag(&mut self) -> Bytes {
        self.checker.tags += 1;
        Bytes::from(format!("{}:{}", self.seed, self.checker.tags))
    }

    fn random_path(&mut self) -> String {
        SIM_PATHS[self.rng.below(SIM_PATHS.len() as u64) as usize].to_owned()
    }

    fn random_request(&mut self) -> Request {
        let path = self.random_path();
        let watch = self.rng.below(2) == 0;
        let version = if self.rng.below(3) == 0 {
            match self.checker.model.get(&path) {
                Some(Node::Present {
                    version: Some(v), ..
                }) => *v + self.rng.below(2) as i32,
                _ => 0,
            }
        } else {
            -1
        };
        match self.rng.below(16) {
            0..=2 => {
                let data = self.tag();
                Request::Create(CreateRequest {
                    path,
                    data: Some(data),
                    acl: Acl::open_unsafe().into(),
                    flags: self.rng.below(2) as i32, // persistent or ephemeral
                })
            }
            3 => {
                let data = self.tag();
                Request::Create(CreateRequest {
                    path: "/t/q/s-".into(),
                    data: Some(data),
                    acl: Acl::open_unsafe().into(),
                    flags: 2 + self.rng.below(2) as i32,
                })
            }
            4 | 5 => {
                let data = self.tag();
                Request::SetData(SetDataRequest {
                    path,
                    data: Some(data),
                    version,
                })
            }
            6 => Request::Delete(PathVersionRequest { path, version }),
            7 | 8 => Request::GetData(PathWatchRequest { path, watch }),
            9 => Request::Exists(PathWatchRequest { path, watch }),
            10 => Request::GetChildren(PathWatchRequest { path, watch }),
            11 => {
                let n = 1 + self.rng.below(3);
                let mut ops = Vec::new();
                for _ in 0..n {
                    let path = self.random_path();
                    ops.push(match self.rng.below(4) {
                        0 => {
                            let data = self.tag();
                            MultiOp::Create(CreateRequest {
                                path,
                                data: Some(data),
                                acl: Acl::open_unsafe().into(),
                                flags: 0,
                            })
                        }
                        1 => {
                            let data = self.tag();
                            MultiOp::SetData(SetDataRequest {
                                path,
                                data: Some(data),
                                version: -1,
                            })
                        }
                        2 => MultiOp::Delete(PathVersionRequest { path, version: -1 }),
                        _ => MultiOp::Check(PathVersionRequest { path, version }),
                    });
                }
                Request::Multi(ops)
            }
            12 => Request::AddWatch(AddWatchRequest {
                path: if self.rng.below(2) == 0 {
                    "/t".into()
                } else {
                    path
                },
                mode: self.rng.below(2) as i32,
            }),
            13 => Request::Sync(PathRequest { path }),
            14 => Request::GetEphemerals(PathRequest { path: "/t".into() }),
            _ => Request::GetChildren(PathWatchRequest {
                path: "/t/q".into(),
                watch,
            }),
        }
    }

    fn submit(&mut self, request: Request) -> Result<Option<RequestId>, Fail> {
        match self.session.submit(self.now, request.clone()) {
            Ok(id) => {
                self.log(format!("submit #{} {}", id.0, describe(&request)));
                self.checker.requests.insert(
                    (self.incarnation, id),
                    Submitted {
                        request,
                        at: self.now,
                        resolved: false,
                    },
                );
                Ok(Some(id))
            }
            Err(Error::Unsupported { .. }) => Ok(None),
            Err(e) => Err(format!("submit refused {}: {e}", describe(&request))),
        }
    }

    fn remove_random_watcher(&mut self) {
        let live: Vec<WatcherId> = self
            .checker
            .watchers
            .iter()
            .filter(|((i, _), w)| *i == self.incarnation && w.live)
            .map(|((_, id), _)| *id)
            .collect();
        if live.is_empty() {
            return;
        }
        let id = live[self.rng.below(live.len() as u64) as usize];
        self.log(format!("drop watcher {}", id.0));
        self.session.remove_watcher(self.now, id);
        if let Some(w) = self.checker.watchers.get_mut(&(self.incarnation, id)) {
            w.live = false;
        }
    }

    // ---- events and checks -------------------------------------------------------------------

    fn on_event(&mut self, ev: Event) -> Result<(), Fail> {
        let inc = self.incarnation;
        match ev {
            Event::Reply {
                id,
                result,
                watcher,
            } => {
                let key = (inc, id);
                let Some(sub) = self.checker.requests.get_mut(&key) else {
                    return Err(format!("reply for unknown request #{}", id.0));
                };
                ensure!(!sub.resolved, "request #{} resolved twice", id.0);
                sub.resolved = true;
                let sub = sub.clone();
                if let Some(last) = self.checker.last_reply.get(&inc) {
                    ensure!(
                        id > *last,
                        "reply #{} came after #{}: out of order",
                        id.0,
                        last.0
                    );
                }
                self.checker.last_reply.insert(inc, id);
                self.log(format!(
                    "reply #{} {} -> {}",
                    id.0,
                    describe(&sub.request),
                    summarize(&result)
                ));
                let is_read = matches!(
                    sub.request,
                    Request::GetData(_)
                        | Request::Exists(_)
                        | Request::GetChildren(_)
                        | Request::GetEphemerals(_)
                );
                if self.freshness_sync.is_some() && is_read {
                    // Possibly stale: neither checked against the model nor learnt from.
                } else {
                    self.checker.check_reply(&sub, &result)?;
                }
                let unknown_write = !is_read && matches!(result, Err(Error::ConnectionLoss));
                if unknown_write {
                    self.doubt(&sub);
                }
                if result.is_ok() {
                    // The server answered on this connection, after re-arming every watch.
                    self.check_resynced()?;
                }
                if self.freshness_sync == Some(id) {
                    if result.is_ok() {
                        self.freshness_sync = None;
                    } else {
                        self.submit_freshness_sync();
                    }
                } else if unknown_write && !matches!(sub.request, Request::Sync(_)) {
                    // A sync already on its way may have been sent before this write's fate was
                    // decided on the server; only one sent from now on proves freshness.
                    self.submit_freshness_sync();
                }
                if let Some(w) = watcher {
                    let (path, kind) = self
                        .session
                        .watcher(w)
                        .map(|(p, k)| (p.to_owned(), k))
                        .ok_or_else(|| format!("watcher {} reported but not registered", w.0))?;
                    self.checker.watchers.insert(
                        (inc, w),
                        Watcher {
                            path,
                            kind,
                            live: true,
                            seen: BTreeMap::new(),
                            born: self.epoch,
                            doubts: Vec::new(),
                        },
                    );
                }
            }
            Event::Watch { watcher, event } => {
                self.log(format!(
                    "watch {} {:?} {}",
                    watcher.0, event.event_type, event.path
                ));
                let Some(w) = self.checker.watchers.get_mut(&(inc, watcher)) else {
                    return Err(format!("event for unknown watcher {}", watcher.0));
                };
                ensure!(w.live, "watcher {} fired after it was done", watcher.0);
                ensure!(
                    concerns(w.kind, &w.path, event.event_type, &event.path),
                    "watcher {} ({:?} {}) got an event it does not concern: {:?} {}",
                    watcher.0,
                    w.kind,
                    w.path,
                    event.event_type,
                    event.path
                );
                w.seen
                    .insert((event.event_type.code(), event.path.clone()), self.now);
                w.doubts
                    .retain(|d| !(d.seen_as(event.event_type, &event.path) && self.now >= d.at));
                if !w.kind.is_persistent() {
                    w.live = false;
                }
            }
            Event::WatchEnded { watcher, reason } => {
                self.log(format!("watch {} ended: {reason:?}", watcher.0));
                let Some(w) = self.checker.watchers.get_mut(&(inc, watcher)) else {
                    return Err(format!("end of unknown watcher {}", watcher.0));
                };
                w.live = false;
                if let WatchEnd::SessionLost(_) = reason {
                    ensure!(
                        !self.session.has_watcher(watcher),
                        "ended watcher {} still registered",
                        watcher.0
                    );
                }
            }
            Event::WatchResync { watcher } => {
                self.log(format!("watch {} resync", watcher.0));
                let epoch = self.epoch;
                let Some(w) = self.checker.watchers.get_mut(&(inc, watcher)) else {
                    return Err(format!("resync of unknown watcher {}", watcher.0));
                };
                ensure!(w.live, "resync of watcher {} after it was done", watcher.0);
                ensure!(
                    w.kind.is_persistent(),
                    "resync of one-shot watcher {} ({:?} {})",
                    watcher.0,
                    w.kind,
                    w.path
                );
                ensure!(
                    w.born < epoch,
                    "resync of watcher {} on the connection that registered it",
                    watcher.0
                );
                w.doubts.retain(|d| d.epoch >= epoch);
            }
            Event::State(state) => {
                self.log(format!("state {state}"));
                if state.is_connected() {
                    self.epoch += 1;
                }
                if let SessionState::Lost(reason) = state {
                    // Every watcher of this process was told before or with this state.
                    if let Some(id) = self.last_session_id {
                        self.checker.sessions_ended.insert(id);
                    }
                    if matches!(reason, LostReason::Expired | LostReason::Closed) {
                        self.checker.session_ended();
                    }
                }
                if state.is_connected() {
                    self.last_session_id = self.session.session_id().map(|s| s.id);
                }
            }
            other => return Err(format!("unexpected event {other:?}")),
        }
        Ok(())
    }

    /// A write failed with ConnectionLoss: it may have applied, and a persistent watcher it
    /// concerns may never hear of it (the notification died with the connection).
    fn doubt(&mut self, sub: &Submitted) {
        let inc = self.incarnation;
        let possible = possible_effects(&sub.request);
        for ((i, _), w) in self.checker.watchers.iter_mut() {
            if *i != inc || !w.live || !w.kind.is_persistent() {
                continue;
            }
            for (event, path, prefix) in &possible {
                if concerns(w.kind, &w.path, *event, path) {
                    w.doubts.push(Doubt {
                        event: *event,
                        path: path.clone(),
                        prefix: *prefix,
                        at: sub.at,
                        epoch: self.epoch,
                    });
                }
            }
        }
    }

    /// On a reply from the server: every persistent watcher that lived across a reconnect since
    /// a doubtful write has seen that write's events or been resynced after the reconnect.
    fn check_resynced(&self) -> Result<(), Fail> {
        for ((i, id), w) in &self.checker.watchers {
            if *i != self.incarnation || !w.live {
                continue;
            }
            if let Some(d) = w.doubts.iter().find(|d| d.epoch < self.epoch) {
                return Err(format!(
                    "persistent watcher {} on {} lived across a reconnect without a WatchResync \
                     and may have missed {:?} {} (write submitted at {:?})",
                    id.0, w.path, d.event, d.path, d.at
                ));
            }
        }
        Ok(())
    }

    /// Ephemerals belong to live sessions only; ours vanish when ours ends.
    fn check_ephemerals(&mut self) -> Result<(), Fail> {
        let live: BTreeSet<i64> = self.server.session_ids().into_iter().collect();
        let mut stack = vec!["/t".to_owned()];
        while let Some(p) = stack.pop() {
            let Some(node) = self.server.node(&p) else {
                continue;
            };
            if node.ephemeral_owner != 0 {
                ensure!(
                    live.contains(&node.ephemeral_owner),
                    "ephemeral {p} outlived its session {:#x}",
                    node.ephemeral_owner
                );
                ensure!(
                    !self.checker.sessions_ended.contains(&node.ephemeral_owner),
                    "ephemeral {p} of ended session {:#x} still exists",
                    node.ephemeral_owner
                );
            }
            for c in self.server.children(&p).unwrap_or_default() {
                stack.push(join(&p, &c));
            }
        }
        Ok(())
    }

    /// After quiescence: the model agrees with the server, and no write applied twice.
    fn check_final(&mut self) -> Result<(), Fail> {
        for (path, node) in &self.checker.model.nodes {
            let actual = self.server.node(path);
            match (node, actual) {
                (Node::Absent, None) => {}
                (Node::Absent, Some(_)) => {
                    return Err(format!("{path} should be absent but exists"))
                }
                (Node::Present { .. }, None) => {
                    return Err(format!("{path} was acknowledged but is gone: a lost write"))
                }
                (Node::Present { data, version, .. }, Some(n)) => {
                    if let Some(d) = data {
                        ensure!(
                            *d == n.data,
                            "{path}: data {:?}, server has {:?}",
                            d,
                            n.data
                        );
                    }
                    if let Some(v) = version {
                        ensure!(
                            *v == n.stat.version,
                            "{path}: version {v}, server has {}",
                            n.stat.version
                        );
                    }
                }
            }
        }
        let mut tags = BTreeMap::new();
        let mut stack = vec!["/t".to_owned()];
        while let Some(p) = stack.pop() {
            if let Some(n) = self.server.node(&p) {
                if let Some(d) = n.data.as_ref().filter(|d| !d.is_empty()) {
                    *tags.entry(d.clone()).or_insert(0) += 1;
                }
            }
            for c in self.server.children(&p).unwrap_or_default() {
                stack.push(join(&p, &c));
            }
        }
        for (tag, n) in tags {
            ensure!(
                n == 1,
                "write {:?} applied {n} times",
                String::from_utf8_lossy(&tag)
            );
        }
        Ok(())
    }
}

impl World {
    fn setup(&mut self) -> Result<(), Fail> {
        for path in ["/t", "/t/q"] {
            let id = self
                .submit(Request::Create(CreateRequest {
                    path: path.into(),
                    data: None,
                    acl: Acl::open_unsafe().into(),
                    flags: 0,
                }))?
                .ok_or("setup refused")?;
            self.wait_for(id)?;
        }
        self.checker.model.present("/t", None, None, Some(false));
        self.checker.model.present("/t/q", None, None, Some(false));
        for p in SIM_PATHS {
            self.checker
                .model
                .nodes
                .insert((*p).to_owned(), Node::Absent);
        }
        Ok(())
    }

    fn wait_for(&mut self, id: RequestId) -> Result<(), Fail> {
        let deadline = self.now + Duration::from_secs(60);
        while self.now < deadline {
            if self
                .checker
                .requests
                .get(&(self.incarnation, id))
                .is_some_and(|s| s.resolved)
            {
                return Ok(());
            }
            let step = self.now + Duration::from_millis(10);
            self.run_until(step)?;
        }
        Err(format!("request #{} never resolved", id.0))
    }
}

// ---- the checker's rules --------------------------------------------------------------------

/// Whether an event (type, path) concerns a watcher of `kind` on `wpath` (PROTOCOL.md §10.6,
/// with 3.9's rule that recursive watchers never see NodeChildrenChanged).
fn concerns(kind: WatchKind, wpath: &str, ev: EventType, path: &str) -> bool {
    let is_desc = path == wpath
        || wpath == "/"
        || (path.starts_with(wpath) && path.as_bytes().get(wpath.len()) == Some(&b'/'));
    match kind {
        WatchKind::Data | WatchKind::Exist => {
            path == wpath
                && matches!(
                    ev,
                    EventType::NodeCreated | EventType::NodeDataChanged | EventType::NodeDeleted
                )
        }
        WatchKind::Child => {
            path == wpath && matches!(ev, EventType::NodeChildrenChanged | EventType::NodeDeleted)
        }
        WatchKind::Persistent => path == wpath,
        WatchKind::PersistentRecursive => is_desc && ev != EventType::NodeChildrenChanged,
    }
}

/// The events a write might have fired, not knowing its result: (type, path, whether the path is
/// only a prefix, for a sequential create).
fn possible_effects(request: &Request) -> Vec<(EventType, String, bool)> {
    let mut out = Vec::new();
    let mut one = |op: &MultiOp| {
        let (event, path, prefix) = match op {
            MultiOp::Create(c) => (EventType::NodeCreated, &c.path, c.flags & 2 != 0),
            MultiOp::SetData(s) => (EventType::NodeDataChanged, &s.path, false),
            MultiOp::Delete(d) => (EventType::NodeDeleted, &d.path, false),
            _ => return,
        };
        out.push((event, path.clone(), prefix));
        if event != EventType::NodeDataChanged {
            if let Some(p) = parent(path) {
                out.push((EventType::NodeChildrenChanged, p.to_owned(), false));
            }
        }
    };
    match request {
        Request::Create(c) => one(&MultiOp::Create(c.clone())),
        Request::SetData(s) => one(&MultiOp::SetData(s.clone())),
        Request::Delete(d) => one(&MultiOp::Delete(d.clone())),
        Request::Multi(ops) => ops.iter().for_each(one),
        _ => {}
    }
    out
}

/// The events a successful write fires: (type, path).
fn effects(request: &Request, result: &Response) -> Vec<(EventType, String)> {
    let mut out = Vec::new();
    let mut one = |op: &MultiOp, res: Option<&MultiResult>| match op {
        MultiOp::Create(c) => {
            let created = match res {
                Some(MultiResult::Create { path }) | Some(MultiResult::Create2 { path, .. }) => {
                    path.clone()
                }
                _ => c.path.clone(),
            };
            out.push((EventType::NodeCreated, created.clone()));
            if let Some(p) = parent(&created) {
                out.push((EventType::NodeChildrenChanged, p.to_owned()));
            }
        }
        MultiOp::SetData(s) => out.push((EventType::NodeDataChanged, s.path.clone())),
        MultiOp::Delete(d) => {
            out.push((EventType::NodeDeleted, d.path.clone()));
            if let Some(p) = parent(&d.path) {
                out.push((EventType::NodeChildrenChanged, p.to_owned()));
            }
        }
        _ => {}
    };
    match (request, result) {
        (Request::Create(c), Response::Create { path }) => one(
            &MultiOp::Create(c.clone()),
            Some(&MultiResult::Create { path: path.clone() }),
        ),
        (Request::SetData(s), _) => one(&MultiOp::SetData(s.clone()), None),
        (Request::Delete(d), _) => one(&MultiOp::Delete(d.clone()), None),
        (Request::Multi(ops), Response::Multi(results))
            if results.iter().all(|r| r.error().is_none()) =>
        {
            for (op, r) in ops.iter().zip(results) {
                one(op, Some(r));
            }
        }
        _ => {}
    }
    out
}

impl Checker {
    fn fail(&self, msg: String) -> Result<(), Fail> {
        Err(msg)
    }

    /// A write whose outcome is unknown (ConnectionLoss, or its process died).
    fn indeterminate(&mut self, request: &Request) {
        let forget = |p: &str, m: &mut Model| m.forget(p);
        match request {
            Request::Create(c) => {
                if c.flags & 2 != 0 {
                    if let Some(p) = parent(&c.path) {
                        self.model.unknown_children.insert(p.to_owned());
                    }
                } else {
                    forget(&c.path, &mut self.model);
                }
            }
            Request::SetData(s) => forget(&s.path, &mut self.model),
            Request::Delete(d) => forget(&d.path, &mut self.model),
            Request::Multi(ops) => {
                for op in ops {
                    forget(op.path(), &mut self.model);
                }
            }
            _ => {}
        }
    }

    fn session_ended(&mut self) {
        // Our ephemerals went with the session.
        for node in self.model.nodes.values_mut() {
            if let Node::Present {
                ephemeral: Some(true),
                ..
            } = node
            {
                *node = Node::Absent;
            }
        }
        let eph_unknown: Vec<String> = self
            .model
            .nodes
            .iter()
            .filter(|(_, n)| {
                matches!(
                    n,
                    Node::Present {
                        ephemeral: None,
                        ..
                    }
                )
            })
            .map(|(p, _)| p.clone())
            .collect();
        for p in eph_unknown {
            self.model.forget(&p);
        }
        // Sequential ephemerals under /t/q may have gone too.
        self.model.unknown_children.insert("/t/q".into());
        for (_, w) in self.watchers.iter_mut() {
            w.live = false;
        }
    }

    fn check_reply(
        &mut self,
        sub: &Submitted,
        result: &Result<Response, Error>,
    ) -> Result<(), Fail> {
        match result {
            Err(Error::ConnectionLoss) => {
                self.indeterminate(&sub.request);
                return Ok(());
            }
            Err(Error::SessionExpired) | Err(Error::Closed) => {
                // Not sent, or sent to a session that is gone: nothing applied... unless it was
                // in flight when the session ended, which a reply would have told us. The server
                // applies nothing for an expired session.
                return Ok(());
            }
            _ => {}
        }
        let expected = predict(&self.model, &sub.request);
        // A failed multi still has an OK reply; its outcome is its first failing op.
        let actual: Result<(), Option<ErrorCode>> = match result {
            Ok(Response::Multi(results)) => match results.iter().find_map(MultiResult::error) {
                Some(code) => Err(Some(code)),
                None => Ok(()),
            },
            Ok(_) => Ok(()),
            Err(e) => Err(e.code()),
        };
        match (&expected, &actual) {
            (Some(Err(code)), Err(got)) if *got != Some(*code) => {
                return self.fail(format!(
                    "{}: expected {code:?}, got {}",
                    describe(&sub.request),
                    summarize(result)
                ));
            }
            (Some(Err(code)), Ok(())) => {
                return self.fail(format!(
                    "{}: expected {code:?}, got {}",
                    describe(&sub.request),
                    summarize(result)
                ))
            }
            (Some(Ok(())), Err(_)) => {
                return self.fail(format!(
                    "{}: expected success, got {}",
                    describe(&sub.request),
                    summarize(result)
                ))
            }
            _ => {}
        }
        // Compare read contents with the model, then learn from the result.
        match (&sub.request, result) {
            (Request::GetData(r), Ok(Response::Data { data, stat })) => {
                if let Some(Node::Present {
                    data: Some(d),
                    version: Some(v),
                    ..
                }) = self.model.get(&r.path)
                {
                    ensure!(
                        d == data && *v == stat.version,
                        "getData {}: got {:?} v{}, model {:?} v{}",
                        r.path,
                        data,
                        stat.version,
                        d,
                        v
                    );
                }
                let eph = Some(stat.ephemeral_owner != 0);
                self.model
                    .present(&r.path, Some(data.clone()), Some(stat.version), eph);
            }
            (Request::Exists(r), Ok(Response::Stat(stat))) => {
                if let Some(Node::Present {
                    version: Some(v), ..
                }) = self.model.get(&r.path)
                {
                    ensure!(
                        *v == stat.version,
                        "exists {}: v{} vs model v{v}",
                        r.path,
                        stat.version
                    );
                }
                let data = match self.model.get(&r.path) {
                    Some(Node::Present { data, version, .. }) if *version == Some(stat.version) => {
                        data.clone()
                    }
                    _ => None,
                };
                let eph = Some(stat.ephemeral_owner != 0);
                self.model.present(&r.path, data, Some(stat.version), eph);
            }
            (Request::GetData(r) | Request::Exists(r), Err(Error::NoNode { .. })) => {
                self.model.nodes.insert(r.path.clone(), Node::Absent);
            }
            (Request::GetChildren(r), Ok(Response::Children { children })) => {
                let got: BTreeSet<String> = children.iter().map(str::to_owned).collect();
                if let Some(known) = self.model.children(&r.path) {
                    ensure!(
                        known == got,
                        "getChildren {}: got {got:?}, model {known:?}",
                        r.path
                    );
                }
                for c in &got {
                    let p = join(&r.path, c);
                    if !self.model.nodes.contains_key(&p) {
                        self.model.present(&p, None, None, None);
                    }
                }
                for (p, n) in self.model.nodes.iter_mut() {
                    if parent(p) == Some(r.path.as_str())
                        && !got.contains(p.rsplit('/').next().unwrap_or(""))
                    {
                        *n = Node::Absent;
                    }
                }
                self.model.unknown_children.remove(&r.path);
                if !matches!(self.model.get(&r.path), Some(Node::Present { .. })) {
                    self.model.present(&r.path, None, None, None);
                }
            }
            (Request::GetChildren(r), Err(Error::NoNode { .. })) => {
                self.model.nodes.insert(r.path.clone(), Node::Absent);
            }
            (Request::Create(c), Ok(Response::Create { path })) => {
                if c.flags & 2 == 0 {
                    ensure!(*path == c.path, "create {} returned {path}", c.path);
                } else {
                    ensure!(
                        path.len() == c.path.len() + 10 && path.starts_with(&c.path),
                        "sequential create {} returned {path}",
                        c.path
                    );
                }
                self.model
                    .present(path, Some(c.data.clone()), Some(0), Some(c.flags & 1 != 0));
            }
            (Request::Create(c), Err(Error::NodeExists { .. }))
                if !matches!(self.model.get(&c.path), Some(Node::Present { .. })) =>
            {
                self.model.present(&c.path, None, None, None);
            }
            (Request::Create(c), Err(Error::NoNode { .. })) => {
                if let Some(p) = parent(&c.path) {
                    self.model.nodes.insert(p.to_owned(), Node::Absent);
                }
            }
            (Request::SetData(s), Ok(Response::Stat(stat))) => {
                let eph = match self.model.get(&s.path) {
                    Some(Node::Present { ephemeral, .. }) => *ephemeral,
                    _ => None,
                };
                self.model
                    .present(&s.path, Some(s.data.clone()), Some(stat.version), eph);
            }
            (Request::SetData(s), Err(Error::NoNode { .. })) => {
                self.model.nodes.insert(s.path.clone(), Node::Absent);
            }
            (Request::Delete(d), Ok(_)) | (Request::Delete(d), Err(Error::NoNode { .. })) => {
                self.model.nodes.insert(d.path.clone(), Node::Absent);
            }
            (Request::Multi(ops), Ok(Response::Multi(results))) => {
                ensure!(
                    results.len() == ops.len(),
                    "multi: {} results for {} ops",
                    results.len(),
                    ops.len()
                );
                if results.iter().all(|r| r.error().is_none()) {
                    for (op, r) in ops.iter().zip(results) {
                        match (op, r) {
                            (
                                MultiOp::Create(c),
                                MultiResult::Create { path } | MultiResult::Create2 { path, .. },
                            ) => {
                                self.model
                                    .present(path, Some(c.data.clone()), Some(0), Some(false))
                            }
                            (MultiOp::SetData(s), MultiResult::SetData(stat)) => {
                                let eph = match self.model.get(&s.path) {
                                    Some(Node::Present { ephemeral, .. }) => *ephemeral,
                                    _ => None,
                                };
                                self.model.present(
                                    &s.path,
                                    Some(s.data.clone()),
                                    Some(stat.version),
                                    eph,
                                )
                            }
                            (MultiOp::Delete(d), _) => {
                                self.model.nodes.insert(d.path.clone(), Node::Absent);
                            }
                            _ => {}
                        }
                    }
                }
            }
            (Request::GetEphemerals(_), Ok(Response::Ephemerals { paths })) => {
                for p in paths {
                    if SIM_PATHS.contains(&p.as_str()) {
                        if let Some(Node::Absent) = self.model.get(p) {
                            return self.fail(format!(
                                "getEphemerals lists {p}, which the model says is absent"
                            ));
                        }
                    }
                }
                for p in SIM_PATHS {
                    if let Some(Node::Present {
                        ephemeral: Some(true),
                        ..
                    }) = self.model.get(p)
                    {
                        ensure!(
                            paths.iter().any(|x| x == p),
                            "getEphemerals misses our ephemeral {p}"
                        );
                    }
                }
            }
            _ => {}
        }
        // A write we just heard back about: every watcher it concerns must already know.
        if let Ok(resp) = result {
            for (ev, path) in effects(&sub.request, resp) {
                for ((_, id), w) in &self.watchers {
                    if !concerns(w.kind, &w.path, ev, &path) {
                        continue;
                    }
                    if w.kind.is_persistent() {
                        if !w.live {
                            continue;
                        }
                        let seen = w.seen.get(&(ev.code(), path.clone()));
                        ensure!(
                            seen.is_some_and(|t| *t >= sub.at),
                            "persistent watcher {} on {} missed {ev:?} {path} (write submitted at {:?})",
                            id.0,
                            w.path,
                            sub.at
                        );
                    } else {
                        ensure!(
                            !w.live,
                            "watcher {} ({:?} {}) still armed after {ev:?} {path} was acknowledged: a lost watch",
                            id.0,
                            w.kind,
                            w.path
                        );
                    }
                }
            }
        }
        Ok(())
    }
}

/// The outcome a request must have given the model, when the model knows enough to say.
fn predict(model: &Model, request: &Request) -> Option<Result<(), ErrorCode>> {
    let mut m = model.clone();
    match request {
        Request::Multi(ops) => {
            for op in ops {
                match step(&mut m, op)? {
                    Ok(()) => {}
                    Err(code) => return Some(Err(code)),
                }
            }
            Some(Ok(()))
        }
        Request::Create(c) if c.flags & 2 != 0 => match m.get(parent(&c.path)?)? {
            Node::Absent => Some(Err(ErrorCode::NoNode)),
            Node::Present { .. } => Some(Ok(())),
        },
        Request::Create(c) => step(&mut m, &MultiOp::Create(c.clone())),
        Request::SetData(s) => step(&mut m, &MultiOp::SetData(s.clone())),
        Request::Delete(d) => step(&mut m, &MultiOp::Delete(d.clone())),
        Request::GetData(r) | Request::Exists(r) | Request::GetChildren(r) => {
            match m.get(&r.path)? {
                Node::Absent => Some(Err(ErrorCode::NoNode)),
                Node::Present { .. } => Some(Ok(())),
            }
        }
        _ => None,
    }
}

/// Applies one op to the model as the server would; `None` when the model cannot tell.
fn step(m: &mut Model, op: &MultiOp) -> Option<Result<(), ErrorCode>> {
    match op {
        MultiOp::Create(c) => {
            let par = parent(&c.path)?;
            let pnode = m.get(par)?.clone();
            let Node::Present {
                ephemeral: peph, ..
            } = pnode
            else {
                return Some(Err(ErrorCode::NoNode));
            };
            if let Node::Present { .. } = m.get(&c.path)? {
                return Some(Err(ErrorCode::NodeExists));
            }
            if peph? {
                return Some(Err(ErrorCode::NoChildrenForEphemerals));
            }
            m.present(
                &c.path,
                Some(c.data.clone()),
                Some(0),
                Some(c.flags & 1 != 0),
            );
            Some(Ok(()))
        }
        MultiOp::SetData(s) => match m.get(&s.path)?.clone() {
            Node::Absent => Some(Err(ErrorCode::NoNode)),
            Node::Present {
                version, ephemeral, ..
            } => {
                let v = version?;
                if s.version != -1 && s.version != v {
                    return Some(Err(ErrorCode::BadVersion));
                }
                m.present(&s.path, Some(s.data.clone()), Some(v + 1), ephemeral);
                Some(Ok(()))
            }
        },
        MultiOp::Delete(d) => match m.get(&d.path)?.clone() {
            Node::Absent => Some(Err(ErrorCode::NoNode)),
            Node::Present { version, .. } => {
                if d.version != -1 && Some(d.version) != version {
                    version?;
                    return Some(Err(ErrorCode::BadVersion));
                }
                if m.has_children(&d.path)? {
                    return Some(Err(ErrorCode::NotEmpty));
                }
                m.nodes.insert(d.path.clone(), Node::Absent);
                Some(Ok(()))
            }
        },
        MultiOp::Check(c) => match m.get(&c.path)?.clone() {
            Node::Absent => Some(Err(ErrorCode::NoNode)),
            Node::Present { version, .. } => {
                if c.version != -1 && Some(c.version) != version {
                    version?;
                    return Some(Err(ErrorCode::BadVersion));
                }
                Some(Ok(()))
            }
        },
        _ => None,
    }
}

fn describe(r: &Request) -> String {
    match r {
        Request::Create(c) => format!("create {} flags={}", c.path, c.flags),
        Request::SetData(s) => format!("setData {} v={}", s.path, s.version),
        Request::Delete(d) => format!("delete {} v={}", d.path, d.version),
        Request::GetData(g) => format!("getData {} watch={}", g.path, g.watch),
        Request::Exists(g) => format!("exists {} watch={}", g.path, g.watch),
        Request::GetChildren(g) => format!("getChildren {} watch={}", g.path, g.watch),
        Request::Multi(ops) => format!(
            "multi [{}]",
            ops.iter()
                .map(|o| format!("{:?} {}", o.op_code(), o.path()))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Request::AddWatch(a) => format!("addWatch {} mode={}", a.path, a.mode),
        Request::Sync(s) => format!("sync {}", s.path),
        Request::GetEphemerals(s) => format!("getEphemerals {}", s.path),
        other => format!("{:?}", other.op_code()),
    }
}

fn describe_wire(r: &Request) -> String {
    match r {
        Request::SetWatches(s) => format!(
            "setWatches rel={:#x} data={:?} exist={:?} child={:?}",
            s.relative_zxid, s.data_watches, s.exist_watches, s.child_watches
        ),
        Request::SetWatches2(s) => format!(
            "setWatches2 rel={:#x} data={:?} exist={:?} child={:?} persistent={:?} recursive={:?}",
            s.relative_zxid,
            s.data_watches,
            s.exist_watches,
            s.child_watches,
            s.persistent_watches,
            s.persistent_recursive_watches
        ),
        Request::RemoveWatches(w) => format!("removeWatches {} type={}", w.path, w.watcher_type),
        other => describe(other),
    }
}

fn summarize(r: &Result<Response, Error>) -> String {
    match r {
        Ok(Response::Data { data, stat }) => format!("data={data:?} v{}", stat.version),
        Ok(Response::Stat(s)) => format!("stat v{}", s.version),
        Ok(Response::Multi(rs)) => format!("{rs:?}"),
        Ok(other) => {
            let mut s = String::new();
            let _ = write!(s, "{other:?}");
            s.chars().take(80).collect()
        }
        Err(e) => format!("ERR {e}"),
    }
}

// ---- running seeds --------------------------------------------------------------------------

#[derive(Debug, Default)]
struct Stats {
    replies: usize,
}

fn run_seed(seed: u64, verbose: bool) -> Result<Stats, (Fail, Vec<String>)> {
    let mut w = World::new(seed, verbose);
    let r = (|| -> Result<Stats, Fail> {
        w.log(format!("params {:?}", w.p));
        w.setup()?;
        for _ in 0..w.p.ops {
            w.fault();
            if w.partition_until.is_some_and(|t| w.now >= t) {
                w.partition_until = None;
                w.log("partition heals".into());
            }
            match w.rng.below(10) {
                0 => w.remove_random_watcher(),
                _ => {
                    let req = w.random_request();
                    w.submit(req)?;
                }
            }
            let think = Duration::from_millis(w.rng.below(40));
            let until = w.now + think;
            w.run_until(until)?;
        }
        // Quiesce: heal everything and wait until every request resolved.
        w.partition_until = None;
        if let Some(i) = w.lagging.take() {
            w.server.set_lagging(i, false);
        }
        for i in 0..w.p.servers {
            if !w.server.is_up(i) {
                w.server.restart(w.now, i);
            }
        }
        let deadline = w.now + Duration::from_secs(120);
        loop {
            let pending = w
                .checker
                .requests
                .iter()
                .any(|((i, _), s)| *i == w.incarnation && !s.resolved);
            if !pending && w.session.state().is_connected() {
                break;
            }
            ensure!(
                w.now < deadline,
                "requests still pending after 120 s of quiet: a hang (state {})",
                w.session.state()
            );
            let step = w.now + Duration::from_millis(50);
            w.run_until(step)?;
        }
        // One read per path makes sure the model and the server agree where the model is unsure.
        for p in SIM_PATHS {
            let id = w
                .submit(Request::GetData(PathWatchRequest {
                    path: (*p).into(),
                    watch: false,
                }))?
                .ok_or("read refused")?;
            w.wait_for(id)?;
        }
        w.check_final()?;
        w.session.close(w.now);
        let deadline = w.now + Duration::from_secs(10);
        while w.session.state() != SessionState::Lost(LostReason::Closed) {
            ensure!(w.now < deadline, "close never finished");
            let step = w.now + Duration::from_millis(10);
            w.run_until(step)?;
        }
        let unresolved: Vec<u64> = w
            .checker
            .requests
            .iter()
            .filter(|((i, _), s)| *i == w.incarnation && !s.resolved)
            .map(|((_, id), _)| id.0)
            .collect();
        ensure!(
            unresolved.is_empty(),
            "requests never resolved: {unresolved:?}"
        );
        ensure!(
            w.checker.watchers.values().all(|x| !x.live),
            "a watcher was never told the session ended"
        );
        Ok(Stats {
            replies: w.checker.requests.len(),
        })
    })();
    r.map_err(|e| (e, w.trace.clone()))
}

fn seeds_from_env() -> (u64, u64) {
    let start = std::env::var("SIM_SEED_START")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let n = std::env::var("SIM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(300);
    (start, n)
}

#[test]
fn simulate_many_seeds() {
    let (start, n) = seeds_from_env();
    let mut total = Stats::default();
    for seed in start..start + n {
        match run_seed(seed, false) {
            Ok(s) => total.replies += s.replies,
            Err((why, trace)) => panic!(
                "simulation seed {seed} failed: {why}\n\nlast steps:\n{}\n\nreplay with:\n  SIM_SEED={seed} cargo test -p zk-testkit --test simulation replay -- --nocapture\n",
                trace.join("\n")
            ),
        }
    }
    eprintln!("{n} seeds from {start}: {} requests checked", total.replies);
}

#[test]
fn replay() {
    let seed = std::env::var("SIM_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    if let Err((why, _)) = run_seed(seed, std::env::var("SIM_SEED").is_ok()) {
        panic!("simulation seed {seed} failed: {why}");
    }
}
