//! Deterministic simulation of watches across sessions: one watching session (the session machine
//! under test) and a few writer sessions on one SimServer ensemble, on a virtual clock and a
//! seeded network. The writers keep changing the watched nodes (data, creation, deletion,
//! children) while the watcher is cut off, partitioned, or its server crashes. Every watch event
//! the watcher gets is checked against the ensemble's own history of committed changes
//! ([`SimServer::history`]), not against what the watcher did:
//!
//! - (a) a one-shot watch alive in a living session fires for the first change after it was armed,
//!   whoever made it and whenever: by the time the session reads a reply whose zxid is at or past
//!   that change, the watcher has heard of it. Changes made while the session was away must come
//!   as SetWatches catch-up events (relative to the last zxid the session saw). One exception is
//!   the protocol's, not the client's: an exist watch (on a missing node) whose node was created
//!   and deleted again while the session was away has nothing to catch up on (the server compares
//!   existence only), so a creation followed by a deletion before any such reply excuses it;
//! - (b) a persistent or persistent-recursive watcher hears of every change it concerns, or gets a
//!   WatchResync after the reconnect the change fell into. A resync excuses the changes up to the
//!   zxid of the first reply on its connection (the server re-armed the watch before answering
//!   that request); anything later must come as an event;
//! - (d) events for one path come in zxid order: a persistent watcher's events are matched, in
//!   order, to a subsequence of the history (so an event out of order, doubled, or never committed
//!   fails), and from 3.9 on, where notifications carry their zxid, every event's zxid names a
//!   change of that path and type in the history and the zxids of one path never go down;
//! - a one-shot watcher only fires after a change it concerns was committed after it was armed;
//!   every watcher is told when the session ends; nothing hangs.
//!
//! Convergence of DataWatch and ChildrenWatch (c) needs whole clients: `tests/watch_convergence.rs`
//! runs them on `zk_testkit::sim::SimWorld`.
//!
//! Some seeds ("big") arm thousands of watches on paths long enough that re-arming them takes
//! several SetWatches frames (the client splits them at 128 KiB of paths).
//!
//! The ensemble's servers never lag here (the session simulation in `simulation.rs` covers lagging
//! replicas): a client that reconnects to a server behind the notifications it already got would
//! legitimately see events twice before 3.9, which would blur (d).
//!
//! `cargo test` runs 150 seeds (about 10 s). `WATCH_SIM_SEEDS=N` runs N seeds (from
//! `WATCH_SIM_SEED_START`); a failure prints its seed and the command that replays it with a trace.
//! The `*_is_caught` tests break the client's rules on purpose (in the test's network, rewriting
//! what the session sends, or hiding what it says) and show that some seed fails.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};
use std::time::{Duration, Instant};

use bytes::Bytes;
use zk_core::proto::{
    decode_notification, decode_reply_header, decode_request, encode_request, Acl, AddWatchRequest,
    CreateRequest, EventType, FrameDecoder, MultiOp, PathVersionRequest, PathWatchRequest, Request,
    SetDataRequest, SetWatches, SetWatches2,
};
use zk_core::rng::Rng;
use zk_core::session::{SessionConfig, WatchKind};
use zk_core::{ConnId, Error, Event, RequestId, Session, SessionState, WatcherId};
use zk_testkit::sim::{ServerOutput, SimConfig, SimConnId, SimServer};

const BASE: &str = "/w";

// ---- parameters drawn from the seed ---------------------------------------------------------

#[derive(Debug, Clone)]
struct Params {
    servers: usize,
    version: (u32, u32, u32),
    /// Watched nodes under BASE.
    nodes: usize,
    /// Length of each node's name: long names make the re-arm frames big.
    name_len: usize,
    writers: usize,
    steps: usize,
    max_delay_ms: u64,
    session_timeout_ms: u64,
    /// Per-step probabilities (out of 1000).
    p_cut: u64,
    p_crash: u64,
    p_partition: u64,
    /// Chance (out of 100) that a new watch of the watcher is persistent or recursive.
    p_persistent: u64,
}

fn params(rng: &mut Rng, big: bool) -> Params {
    let versions = [(3, 5, 10), (3, 6, 4), (3, 8, 0), (3, 9, 5)];
    let version = versions[rng.below(versions.len() as u64) as usize];
    Params {
        servers: 1 + rng.below(3) as usize,
        version,
        nodes: if big {
            900 + rng.below(600) as usize
        } else {
            4 + rng.below(20) as usize
        },
        name_len: if big {
            120 + rng.below(120) as usize
        } else {
            1 + rng.below(12) as usize
        },
        writers: 1 + rng.below(3) as usize,
        steps: if big {
            150
        } else {
            200 + rng.below(200) as usize
        },
        max_delay_ms: 1 + rng.below(20),
        session_timeout_ms: 4000 + 2000 * rng.below(3),
        p_cut: 5 + rng.below(30),
        p_crash: rng.below(10),
        p_partition: rng.below(10),
        p_persistent: if version >= (3, 6, 0) {
            rng.below(30)
        } else {
            0
        },
    }
}

/// A rule the test's network breaks on purpose, to show the checker notices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mutation {
    None,
    /// The watcher's SetWatches go out relative to the ensemble's latest zxid, not the last
    /// zxid the session saw: a re-arm that does not catch up.
    RearmAtLatestZxid,
    /// Of the SetWatches frames the watcher sends in one go, all but the last go out empty.
    DropAllButLastBatch,
    /// The watcher's WatchResync items are hidden from the checker, as if never emitted.
    NoResync,
}

#[derive(Debug, Clone, Copy)]
struct Opts {
    verbose: bool,
    /// Force big (or small) seeds; `None` lets the seed choose (one in four is big).
    big: Option<bool>,
    mutation: Mutation,
}

// ---- the network ----------------------------------------------------------------------------

/// Process 0 is the watcher, 1.. are writers.
const WATCHER: usize = 0;

type Key = (usize, ConnId);

#[derive(Debug)]
struct Link {
    server: usize,
    sconn: Option<SimConnId>,
    c2s_at: Instant,
    s2c_at: Instant,
    client_open: bool,
    server_open: bool,
    cut: bool,
    /// Server frames delivered so far (the first is the handshake reply, which has no header).
    frames_in: u64,
    /// SetWatches frames the client sent on this link.
    set_watches_out: usize,
    /// Frames the client sent on this link (the handshake first).
    frames_out: usize,
}

#[derive(Debug)]
enum Action {
    Connected(Key),
    ConnectFailed(Key),
    ToServer(Key, Vec<u8>),
    /// One whole server frame.
    ToClient(Key, Vec<u8>),
    ServerSeesClose(Key),
    ClientSeesClose(Key),
    RestartServer(usize),
}

// ---- the checker's view of the history and of the watchers ----------------------------------

/// One committed change, numbered by its place in the history.
#[derive(Debug, Clone)]
struct Entry {
    zxid: i64,
    event: EventType,
    path: String,
}

#[derive(Debug)]
struct Watcher {
    path: String,
    kind: WatchKind,
    /// The zxid of the reply that armed it: the state the server armed it against.
    armed: i64,
    live: bool,
    /// One-shot: the zxid of the first change it must have heard of by now (None: none yet, or
    /// an exist watch's creation undone by a deletion).
    due: Option<i64>,
    /// One-shot: some change it concerns was committed after it was armed.
    changed: bool,
    /// Persistent: per path, the history index of the last change matched to an event.
    cursor: BTreeMap<String, usize>,
    /// Persistent: history indexes of the changes it heard of.
    seen: BTreeSet<usize>,
    /// Persistent: the first history index not yet checked.
    check_from: usize,
    /// Persistent: a resync came and the first reply on its connection has not (events now may
    /// be SetWatches catch-up events of one-shot watches on the same path, which are not changes
    /// of their own).
    resync_open: bool,
    /// Persistent: changes up to this zxid are excused by a resync.
    excused_upto: i64,
    /// The session generation it belongs to (a renewed session after expiry starts a new one).
    generation: u64,
}

struct Proc {
    session: Session,
    /// Requests submitted and not resolved.
    pending: BTreeMap<RequestId, Request>,
}

struct World {
    p: Params,
    opts: Opts,
    rng: Rng,
    now: Instant,
    start: Instant,
    server: SimServer,
    procs: Vec<Proc>,
    links: BTreeMap<Key, Link>,
    by_sconn: BTreeMap<u64, Key>,
    agenda: BinaryHeap<Reverse<(Instant, u64)>>,
    actions: BTreeMap<u64, Action>,
    seq: u64,
    partition_until: Option<Instant>,
    trace: Vec<String>,
    names: Vec<String>,

    // The checker.
    history: Vec<Entry>,
    by_path: BTreeMap<String, Vec<usize>>,
    watchers: BTreeMap<WatcherId, Watcher>,
    /// Live one-shot watchers per path.
    one_shot_on: BTreeMap<String, BTreeSet<WatcherId>>,
    /// (due zxid, watcher) for live one-shot watchers with a due change.
    due: BTreeSet<(i64, WatcherId)>,
    /// The reply header of the server frame the watcher is handling now: (xid, zxid).
    frame: Option<(i32, i64)>,
    /// From 3.9: the zxid of the last event per path.
    last_event_zxid: BTreeMap<String, i64>,
    generation: u64,
    lost_seen: bool,
    /// One-shot watchers that fired, to arm again later (a cache re-reading).
    fired: Vec<(String, WatchKind)>,
    stats: Stats,
}

#[derive(Debug, Default, Clone)]
struct Stats {
    events: usize,
    watchers: usize,
    resyncs: usize,
    reconnects: usize,
    /// The most SetWatches frames sent on one connection.
    max_batches: usize,
    changes: usize,
    /// SetWatches sent later on a live connection (a riding watch armed late).
    late_arms: usize,
}

type Fail = String;

macro_rules! ensure {
    ($cond:expr, $($fmt:tt)*) => {
        if !$cond {
            return Err(format!($($fmt)*));
        }
    };
}

/// Whether an event (type, path) concerns a watcher of `kind` on `wpath` (PROTOCOL.md §10.6,
/// with 3.9's rule that recursive watchers never see NodeChildrenChanged).
fn concerns(kind: WatchKind, wpath: &str, ev: EventType, path: &str) -> bool {
    let is_desc = path == wpath
        || wpath == "/"
        || (path.starts_with(wpath) && path.as_bytes().get(wpath.len()) == Some(&b'/'));
    match kind {
        WatchKind::Data => {
            path == wpath && matches!(ev, EventType::NodeDataChanged | EventType::NodeDeleted)
        }
        WatchKind::Exist => path == wpath && ev == EventType::NodeCreated,
        WatchKind::Child => {
            path == wpath && matches!(ev, EventType::NodeChildrenChanged | EventType::NodeDeleted)
        }
        WatchKind::Persistent => path == wpath,
        WatchKind::PersistentRecursive => is_desc && ev != EventType::NodeChildrenChanged,
    }
}

impl World {
    fn new(seed: u64, opts: Opts) -> World {
        let mut rng = Rng::new(seed);
        let big = opts.big.unwrap_or_else(|| rng.below(4) == 0);
        let p = params(&mut rng, big);
        let now = Instant::now();
        let mut server = SimServer::new(
            SimConfig {
                servers: p.servers,
                version: p.version,
                ..SimConfig::default()
            },
            now,
        );
        server.record_history();
        let hosts = (0..p.servers)
            .map(|i| format!("s{i}:2181"))
            .collect::<Vec<_>>()
            .join(",");
        let procs = (0..=p.writers)
            .map(|i| {
                let mut c = SessionConfig::new(&hosts).expect("connect string");
                c.session_timeout = Duration::from_millis(p.session_timeout_ms);
                c.rng_seed = seed.wrapping_mul(31).wrapping_add(i as u64);
                Proc {
                    session: Session::new(c, now),
                    pending: BTreeMap::new(),
                }
            })
            .collect();
        let names = (0..p.nodes)
            .map(|i| {
                let mut n = format!("n{i}-");
                while n.len() < p.name_len {
                    n.push((b'a' + (n.len() % 26) as u8) as char);
                }
                format!("{BASE}/{n}")
            })
            .collect();
        World {
            p,
            opts,
            rng,
            now,
            start: now,
            server,
            procs,
            links: BTreeMap::new(),
            by_sconn: BTreeMap::new(),
            agenda: BinaryHeap::new(),
            actions: BTreeMap::new(),
            seq: 0,
            partition_until: None,
            trace: Vec::new(),
            names,
            history: Vec::new(),
            by_path: BTreeMap::new(),
            watchers: BTreeMap::new(),
            one_shot_on: BTreeMap::new(),
            due: BTreeSet::new(),
            frame: None,
            last_event_zxid: BTreeMap::new(),
            generation: 0,
            lost_seen: false,
            fired: Vec::new(),
            stats: Stats::default(),
        }
    }

    fn log(&mut self, line: String) {
        let t = self.now.duration_since(self.start).as_millis();
        let line = format!("{t:>7}ms {line}");
        if self.opts.verbose {
            eprintln!("{line}");
        }
        self.trace.push(line);
        if self.trace.len() > 80 && !self.opts.verbose {
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

    fn partitioned(&self, proc_: usize) -> bool {
        proc_ == WATCHER && self.partition_until.is_some_and(|t| self.now < t)
    }

    /// Schedules bytes on a link, after everything already on its way in that direction.
    fn send(&mut self, key: Key, bytes: Vec<u8>, to_server: bool) {
        let d = self.delay();
        let now = self.now;
        let Some(link) = self.links.get_mut(&key) else {
            return;
        };
        let slot = if to_server {
            &mut link.c2s_at
        } else {
            &mut link.s2c_at
        };
        let at = (*slot).max(now + d);
        *slot = at;
        let action = if to_server {
            Action::ToServer(key, bytes)
        } else {
            Action::ToClient(key, bytes)
        };
        self.schedule(at, action);
    }

    // ---- pumping outputs ---------------------------------------------------------------------

    fn pump(&mut self) -> Result<(), Fail> {
        loop {
            self.ingest_history();
            let mut progress = false;
            for i in 0..self.procs.len() {
                while let Some(c) = self.procs[i].session.poll_connect() {
                    progress = true;
                    let key = (i, c.conn);
                    let server: usize = c.addr.host[1..]
                        .parse()
                        .map_err(|_| "bad host".to_owned())?;
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
                            frames_in: 0,
                            set_watches_out: 0,
                            frames_out: 0,
                        },
                    );
                    if i == WATCHER {
                        self.log(format!("dial {:?} -> s{server}", c.conn));
                    }
                    let d = self.delay();
                    if self.partitioned(i) {
                        // SYNs vanish: the session's connect timeout handles it.
                    } else if !self.server.is_up(server) {
                        self.schedule(now + d, Action::ConnectFailed(key));
                    } else {
                        self.schedule(now + d, Action::Connected(key));
                    }
                }
                while let Some(conn) = self.procs[i].session.poll_close() {
                    progress = true;
                    self.client_close((i, conn));
                }
                while let Some(probe) = self.procs[i].session.poll_probe() {
                    progress = true;
                    // Version probes only: answer at once (partitions do not matter here).
                    let server: usize = probe.addr.host[1..]
                        .parse()
                        .map_err(|_| "bad host".to_owned())?;
                    let text = self.server.four_letter(self.now, server, probe.command);
                    self.procs[i].session.handle_probe_result(
                        self.now,
                        probe.id,
                        text.as_deref().ok_or(()),
                    );
                }
                let mut buf = Vec::new();
                while let Some(conn) = self.procs[i].session.poll_transmit(&mut buf) {
                    progress = true;
                    let key = (i, conn);
                    let ok = self
                        .links
                        .get(&key)
                        .is_some_and(|l| l.client_open && l.sconn.is_some());
                    ensure!(
                        ok,
                        "process {i} sent bytes on {conn:?}, not an open connection"
                    );
                    let mut bytes = std::mem::take(&mut buf);
                    if i == WATCHER {
                        bytes = self.watcher_sends(key, bytes)?;
                    }
                    self.send(key, bytes, true);
                }
                while let Some(ev) = self.procs[i].session.poll_event() {
                    progress = true;
                    if i == WATCHER {
                        self.on_watcher_event(ev)?;
                    } else {
                        self.on_writer_event(i, ev)?;
                    }
                }
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
                                self.send(key, bytes, false);
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
                break;
            }
        }
        self.frame = None;
        if self.lost_seen {
            self.lost_seen = false;
            let g = self.generation;
            if let Some((id, w)) = self
                .watchers
                .iter()
                .find(|(_, w)| w.live && w.generation < g)
            {
                return Err(format!(
                    "watcher {} ({:?} {}) was not told its session ended",
                    id.0, w.kind, w.path
                ));
            }
        }
        Ok(())
    }

    /// What the watcher sends, seen (and, for a mutation, rewritten) on its way out: counts the
    /// SetWatches frames per connection.
    fn watcher_sends(&mut self, key: Key, bytes: Vec<u8>) -> Result<Vec<u8>, Fail> {
        let mut d = FrameDecoder::new(usize::MAX >> 1);
        d.extend(&bytes);
        let mut frames = Vec::new();
        while let Ok(Some(frame)) = d.next_frame() {
            frames.push(frame);
        }
        let is_sw = |f: &Bytes| {
            matches!(
                decode_request(f.clone()),
                Ok((_, Ok(Request::SetWatches(_) | Request::SetWatches2(_))))
            )
        };
        let sw: Vec<usize> = (0..frames.len()).filter(|i| is_sw(&frames[*i])).collect();
        let Some(link) = self.links.get_mut(&key) else {
            return Ok(bytes);
        };
        let before = link.frames_out;
        link.frames_out += frames.len();
        if sw.is_empty() {
            return Ok(bytes);
        }
        if before != 1 + link.set_watches_out {
            // Not a re-arm right after the handshake: a watch armed late on a live connection.
            self.stats.late_arms += 1;
        }
        if let Some(link) = self.links.get_mut(&key) {
            link.set_watches_out += sw.len();
            self.stats.max_batches = self.stats.max_batches.max(link.set_watches_out);
        }
        self.log(format!("watcher sends {} SetWatches frame(s)", sw.len()));
        let latest = self.server.last_zxid();
        let mutate = match self.opts.mutation {
            Mutation::RearmAtLatestZxid => true,
            Mutation::DropAllButLastBatch => sw.len() > 1,
            _ => false,
        };
        if !mutate {
            return Ok(bytes);
        }
        let last = *sw.last().unwrap_or(&0);
        let mut out = Vec::new();
        for (i, frame) in frames.into_iter().enumerate() {
            let (header, req) = match decode_request(frame.clone()) {
                Ok((h, Ok(r))) if sw.contains(&i) => (h, r),
                _ => {
                    out.extend_from_slice(&(frame.len() as u32).to_be_bytes());
                    out.extend_from_slice(&frame);
                    continue;
                }
            };
            let req = match (self.opts.mutation, req) {
                (Mutation::RearmAtLatestZxid, Request::SetWatches(mut s)) => {
                    s.relative_zxid = latest;
                    Request::SetWatches(s)
                }
                (Mutation::RearmAtLatestZxid, Request::SetWatches2(mut s)) => {
                    s.relative_zxid = latest;
                    Request::SetWatches2(s)
                }
                (Mutation::DropAllButLastBatch, Request::SetWatches(s)) if i != last => {
                    Request::SetWatches(SetWatches {
                        relative_zxid: s.relative_zxid,
                        data_watches: vec![],
                        exist_watches: vec![],
                        child_watches: vec![],
                    })
                }
                (Mutation::DropAllButLastBatch, Request::SetWatches2(s)) if i != last => {
                    Request::SetWatches2(SetWatches2 {
                        relative_zxid: s.relative_zxid,
                        data_watches: vec![],
                        exist_watches: vec![],
                        child_watches: vec![],
                        persistent_watches: vec![],
                        persistent_recursive_watches: vec![],
                    })
                }
                (_, r) => r,
            };
            encode_request(&mut out, usize::MAX, header.xid, &req)
                .map_err(|e| format!("re-encode: {e}"))?;
        }
        Ok(out)
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
                if self.partitioned(key.0) || !self.server.is_up(server) {
                    return self.act(Action::ConnectFailed(key));
                }
                let sconn = self.server.accept(self.now, server);
                self.by_sconn.insert(sconn.0, key);
                if let Some(link) = self.links.get_mut(&key) {
                    link.sconn = Some(sconn);
                    link.server_open = true;
                }
                self.procs[key.0].session.handle_connected(self.now, key.1);
            }
            Action::ConnectFailed(key) => {
                if let Some(link) = self.links.get_mut(&key) {
                    if link.client_open {
                        link.client_open = false;
                        self.procs[key.0].session.handle_connect_failed(
                            self.now,
                            key.1,
                            "connection refused",
                        );
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
                let Some(link) = self.links.get_mut(&key) else {
                    return Ok(());
                };
                if !link.client_open || link.cut {
                    return Ok(());
                }
                link.frames_in += 1;
                if key.0 == WATCHER {
                    // Whole frames only: the header tells the zxid the session is reading now.
                    self.frame = if link.frames_in > 1 && bytes.len() >= 4 {
                        decode_reply_header(Bytes::copy_from_slice(&bytes[4..]))
                            .ok()
                            .map(|(h, _)| (h.xid, h.zxid))
                    } else {
                        None
                    };
                    if self.opts.verbose {
                        if let Some((-1, zxid)) = self.frame {
                            let ev = decode_reply_header(Bytes::copy_from_slice(&bytes[4..]))
                                .ok()
                                .and_then(|(_, body)| decode_notification(body).ok());
                            if let Some(ev) = ev {
                                self.log(format!(
                                    "  <- notification {:?} {} zxid={zxid:#x}",
                                    ev.event_type, ev.path
                                ));
                            }
                        }
                    }
                }
                self.procs[key.0]
                    .session
                    .handle_bytes(self.now, key.1, &bytes);
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
                        if key.0 == WATCHER {
                            self.log(format!("watcher sees close of {:?}", key.1));
                        }
                        self.procs[key.0].session.handle_closed(self.now, key.1);
                    }
                }
            }
            Action::RestartServer(i) => {
                self.log(format!("restart s{i}"));
                self.server.restart(self.now, i);
            }
        }
        Ok(())
    }

    fn run_until(&mut self, until: Instant) -> Result<(), Fail> {
        loop {
            self.pump()?;
            let next_action = self.agenda.peek().map(|Reverse((t, _))| *t);
            let mut candidates = vec![next_action, self.server.poll_timeout()];
            candidates.extend(self.procs.iter().map(|p| p.session.poll_timeout()));
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
                        // The frame's events are read before anything else happens.
                        self.pump()?;
                    }
                }
            }
            let now = self.now;
            for p in &mut self.procs {
                if p.session.poll_timeout().is_some_and(|t| t <= now) {
                    p.session.handle_timeout(now);
                }
            }
            if self.server.poll_timeout().is_some_and(|t| t <= now) {
                self.server.handle_timeout(now);
            }
        }
    }

    // ---- faults (aimed at the watcher) -------------------------------------------------------

    fn cut(&mut self, key: Key) {
        let d1 = self.delay();
        let d2 = self.delay();
        let now = self.now;
        if let Some(link) = self.links.get_mut(&key) {
            link.cut = true;
        }
        self.log(format!("cut {key:?}"));
        self.schedule(now + d1, Action::ServerSeesClose(key));
        self.schedule(now + d2, Action::ClientSeesClose(key));
    }

    fn cut_watcher(&mut self) {
        let keys: Vec<Key> = self
            .links
            .iter()
            .filter(|(k, l)| k.0 == WATCHER && !l.cut && (l.client_open || l.server_open))
            .map(|(k, _)| *k)
            .collect();
        for k in keys {
            self.cut(k);
        }
    }

    fn watcher_server(&self) -> Option<usize> {
        self.links
            .iter()
            .find(|(k, l)| k.0 == WATCHER && l.client_open && !l.cut)
            .map(|(_, l)| l.server)
    }

    fn fault(&mut self) {
        let roll = self.rng.below(1000);
        let p = self.p.clone();
        if roll < p.p_cut {
            self.cut_watcher();
        } else if roll < p.p_cut + p.p_crash {
            // Mostly the watcher's own server.
            let i = match self.watcher_server() {
                Some(s) if self.rng.below(3) != 0 => s,
                _ => self.rng.below(p.servers as u64) as usize,
            };
            if self.server.is_up(i) {
                self.log(format!("crash s{i}"));
                self.server.crash(self.now, i);
                let back = Duration::from_millis(100 + self.rng.below(2000));
                self.schedule(self.now + back, Action::RestartServer(i));
            }
        } else if roll < p.p_cut + p.p_crash + p.p_partition {
            // Mostly shorter than the session timeout; now and then long enough to expire it.
            let ms = if self.rng.below(6) != 0 {
                100 + self.rng.below(p.session_timeout_ms / 2)
            } else {
                p.session_timeout_ms * 2 + self.rng.below(2000)
            };
            self.log(format!("partition the watcher for {ms} ms"));
            self.partition_until = Some(self.now + Duration::from_millis(ms));
            self.cut_watcher();
        }
    }

    // ---- operations --------------------------------------------------------------------------

    fn submit(&mut self, i: usize, request: Request) -> Result<Option<RequestId>, Fail> {
        match self.procs[i].session.submit(self.now, request.clone()) {
            Ok(id) => {
                if i == WATCHER {
                    self.log(format!("watcher submits #{} {}", id.0, describe(&request)));
                }
                self.procs[i].pending.insert(id, request);
                Ok(Some(id))
            }
            Err(Error::Unsupported { .. }) => Ok(None),
            Err(e) => Err(format!("submit refused {}: {e}", describe(&request))),
        }
    }

    fn node_path(&mut self) -> String {
        let i = self.rng.below(self.names.len() as u64) as usize;
        self.names[i].clone()
    }

    fn child_path(&mut self) -> String {
        let n = self.node_path();
        format!("{n}/c{}", self.rng.below(3))
    }

    fn data(&mut self) -> Option<Bytes> {
        Some(Bytes::from(format!("{}", self.rng.below(1_000_000))))
    }

    fn random_write(&mut self) -> Request {
        let create = |path: String, data| {
            Request::Create(CreateRequest {
                path,
                data,
                acl: Acl::open_unsafe().into(),
                flags: 0,
            })
        };
        match self.rng.below(10) {
            0..=3 => {
                let path = self.node_path();
                let data = self.data();
                Request::SetData(SetDataRequest {
                    path,
                    data,
                    version: -1,
                })
            }
            4 | 5 => {
                let path = self.child_path();
                let data = self.data();
                create(path, data)
            }
            6 => {
                let path = self.child_path();
                Request::Delete(PathVersionRequest { path, version: -1 })
            }
            7 => {
                // A node goes (when it has no children) ...
                let path = self.node_path();
                Request::Delete(PathVersionRequest { path, version: -1 })
            }
            8 => {
                // ... and comes back.
                let path = self.node_path();
                let data = self.data();
                create(path, data)
            }
            _ => {
                // Several changes of one path under one zxid.
                let path = self.node_path();
                let child = format!("{path}/c{}", self.rng.below(3));
                let d1 = self.data();
                let d2 = self.data();
                Request::Multi(vec![
                    MultiOp::SetData(SetDataRequest {
                        path: path.clone(),
                        data: d1,
                        version: -1,
                    }),
                    MultiOp::Create(CreateRequest {
                        path: child,
                        data: None,
                        acl: Acl::open_unsafe().into(),
                        flags: 0,
                    }),
                    MultiOp::SetData(SetDataRequest {
                        path,
                        data: d2,
                        version: -1,
                    }),
                ])
            }
        }
    }

    fn watch_request(&mut self, path: String, kind: WatchKind) -> Request {
        match kind {
            WatchKind::Data => Request::GetData(PathWatchRequest { path, watch: true }),
            WatchKind::Exist => Request::Exists(PathWatchRequest { path, watch: true }),
            WatchKind::Child => Request::GetChildren(PathWatchRequest { path, watch: true }),
            WatchKind::Persistent => Request::AddWatch(AddWatchRequest { path, mode: 0 }),
            WatchKind::PersistentRecursive => Request::AddWatch(AddWatchRequest { path, mode: 1 }),
        }
    }

    fn watcher_step(&mut self) -> Result<(), Fail> {
        let roll = self.rng.below(100);
        if roll < 40 && !self.fired.is_empty() {
            // Re-read what fired, arming again.
            let k = self.rng.below(self.fired.len() as u64) as usize;
            let (path, kind) = self.fired.swap_remove(k);
            let req = self.watch_request(path, kind);
            self.submit(WATCHER, req)?;
        } else if roll < 40 + self.p.p_persistent {
            let live_persistent = self
                .watchers
                .values()
                .filter(|w| w.live && w.kind.is_persistent())
                .count();
            if live_persistent < 6 {
                let path = match self.rng.below(4) {
                    0 => BASE.to_owned(),
                    _ => self.node_path(),
                };
                let kind = if self.rng.below(2) == 0 {
                    WatchKind::Persistent
                } else {
                    WatchKind::PersistentRecursive
                };
                let req = self.watch_request(path, kind);
                self.submit(WATCHER, req)?;
            }
        } else if roll < 85 {
            let (path, kind) = match self.rng.below(4) {
                0 => (self.node_path(), WatchKind::Data),
                1 => (self.node_path(), WatchKind::Child),
                2 => (self.node_path(), WatchKind::Exist),
                _ => (self.child_path(), WatchKind::Exist),
            };
            let req = self.watch_request(path, kind);
            self.submit(WATCHER, req)?;
        } else if roll < 90 {
            let live: Vec<WatcherId> = self
                .watchers
                .iter()
                .filter(|(_, w)| w.live)
                .map(|(id, _)| *id)
                .collect();
            if !live.is_empty() {
                let id = live[self.rng.below(live.len() as u64) as usize];
                self.log(format!("drop watcher {}", id.0));
                self.procs[WATCHER].session.remove_watcher(self.now, id);
                self.end_watcher(id);
            }
        } else {
            // The watcher writes too: its own changes count like anyone's.
            let req = self.random_write();
            self.submit(WATCHER, req)?;
        }
        Ok(())
    }

    // ---- the checker -------------------------------------------------------------------------

    /// Reads the changes the ensemble committed since last time; one-shot watchers they concern
    /// now have a change due.
    fn ingest_history(&mut self) {
        let h = self.server.history();
        if h.len() == self.history.len() {
            return;
        }
        let new: Vec<Entry> = h[self.history.len()..]
            .iter()
            .map(|c| Entry {
                zxid: c.zxid,
                event: c.event,
                path: c.path.clone(),
            })
            .collect();
        for e in new {
            if self.opts.verbose {
                self.log(format!("commit {:#x} {:?} {}", e.zxid, e.event, e.path));
            }
            let idx = self.history.len();
            self.by_path.entry(e.path.clone()).or_default().push(idx);
            if let Some(ids) = self.one_shot_on.get(&e.path) {
                for id in ids.clone() {
                    self.one_shot_sees(id, &e);
                }
            }
            self.history.push(e);
        }
        self.stats.changes = self.history.len();
    }

    /// A change committed after one-shot watcher `id` was armed.
    fn one_shot_sees(&mut self, id: WatcherId, e: &Entry) {
        let Some(w) = self.watchers.get_mut(&id) else {
            return;
        };
        if !w.live || e.zxid <= w.armed {
            return;
        }
        if concerns(w.kind, &w.path, e.event, &e.path) {
            w.changed = true;
            if w.due.is_none() {
                w.due = Some(e.zxid);
                self.due.insert((e.zxid, id));
            }
        } else if w.kind == WatchKind::Exist && e.event == EventType::NodeDeleted {
            // Created and deleted again: a re-arm has nothing to catch up on (see the module
            // doc); the next creation is due instead.
            if let Some(z) = w.due.take() {
                self.due.remove(&(z, id));
            }
        }
    }

    fn end_watcher(&mut self, id: WatcherId) {
        let Some(w) = self.watchers.get_mut(&id) else {
            return;
        };
        w.live = false;
        if let Some(z) = w.due.take() {
            self.due.remove(&(z, id));
        }
        if let Some(set) = self.one_shot_on.get_mut(&w.path) {
            set.remove(&id);
        }
    }

    fn register(&mut self, id: WatcherId, path: String, kind: WatchKind, armed: i64) {
        self.stats.watchers += 1;
        // The first change after `armed`.
        let check_from = self.history.partition_point(|e| e.zxid <= armed);
        let w = Watcher {
            path: path.clone(),
            kind,
            armed,
            live: true,
            due: None,
            changed: false,
            cursor: BTreeMap::new(),
            seen: BTreeSet::new(),
            check_from,
            resync_open: false,
            excused_upto: armed,
            generation: self.generation,
        };
        self.watchers.insert(id, w);
        if !kind.is_persistent() {
            self.one_shot_on.entry(path.clone()).or_default().insert(id);
            // Changes committed between the reply and now.
            let later: Vec<Entry> = self
                .by_path
                .get(&path)
                .map(|v| {
                    v.iter()
                        .filter(|i| self.history[**i].zxid > armed)
                        .map(|i| self.history[*i].clone())
                        .collect()
                })
                .unwrap_or_default();
            for e in later {
                self.one_shot_sees(id, &e);
            }
        }
    }

    /// The watcher read a reply of the server with zxid `z`: every notification for changes up to
    /// `z` came before it on this connection (or on a dead one, or as a catch-up event of the
    /// re-arm that preceded it).
    fn check_reply_zxid(&mut self, z: i64) -> Result<(), Fail> {
        if let Some(&(due, id)) = self.due.iter().next() {
            if due <= z {
                let w = &self.watchers[&id];
                let change = self
                    .history
                    .iter()
                    .find(|e| e.zxid == due && concerns(w.kind, &w.path, e.event, &e.path))
                    .map(|e| format!("{:?} {} at zxid {:#x}", e.event, e.path, e.zxid))
                    .unwrap_or_default();
                return Err(format!(
                    "one-shot watcher {} ({:?} {}, armed at zxid {:#x}) is still waiting, but the \
                     session read a reply at zxid {z:#x} and {change} was committed: a lost watch",
                    id.0, w.kind, w.path, w.armed
                ));
            }
        }
        let ids: Vec<WatcherId> = self
            .watchers
            .iter()
            .filter(|(_, w)| w.live && w.kind.is_persistent())
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            let history = &self.history;
            let Some(w) = self.watchers.get_mut(&id) else {
                continue;
            };
            if w.resync_open {
                w.resync_open = false;
                w.excused_upto = w.excused_upto.max(z);
            }
            while let Some(e) = history.get(w.check_from) {
                if e.zxid > z {
                    break;
                }
                let idx = w.check_from;
                w.check_from += 1;
                if e.zxid <= w.armed || !concerns(w.kind, &w.path, e.event, &e.path) {
                    continue;
                }
                if w.seen.contains(&idx) || e.zxid <= w.excused_upto {
                    continue;
                }
                return Err(format!(
                    "persistent watcher {} ({:?} {}, armed at zxid {:#x}) missed {:?} {} at zxid \
                     {:#x} (the session read a reply at zxid {z:#x}; resyncs excuse up to {:#x})",
                    id.0, w.kind, w.path, w.armed, e.event, e.path, e.zxid, w.excused_upto
                ));
            }
        }
        Ok(())
    }

    fn on_writer_event(&mut self, i: usize, ev: Event) -> Result<(), Fail> {
        match ev {
            Event::Reply { id, .. } => {
                ensure!(
                    self.procs[i].pending.remove(&id).is_some(),
                    "writer {i}: reply for unknown or resolved request #{}",
                    id.0
                );
            }
            Event::State(_) => {}
            other => return Err(format!("writer {i}: unexpected event {other:?}")),
        }
        Ok(())
    }

    fn on_watcher_event(&mut self, ev: Event) -> Result<(), Fail> {
        match ev {
            Event::Reply {
                id,
                result,
                watcher,
            } => {
                let Some(request) = self.procs[WATCHER].pending.remove(&id) else {
                    return Err(format!("reply for unknown or resolved request #{}", id.0));
                };
                self.log(format!(
                    "reply #{} {} -> {}",
                    id.0,
                    describe(&request),
                    match &result {
                        Ok(_) => "ok".to_owned(),
                        Err(e) => format!("ERR {e}"),
                    }
                ));
                let from_server = !matches!(
                    result,
                    Err(Error::ConnectionLoss
                        | Error::SessionExpired
                        | Error::Closed
                        | Error::Unsupported { .. })
                );
                let z = match self.frame {
                    Some((xid, zxid)) if xid > 0 && from_server => Some(zxid),
                    _ => None,
                };
                if let Some(z) = z {
                    self.check_reply_zxid(z)?;
                }
                if let Some(w) = watcher {
                    let (path, kind) = self.procs[WATCHER]
                        .session
                        .watcher(w)
                        .map(|(p, k)| (p.to_owned(), k))
                        .ok_or_else(|| format!("watcher {} reported but not registered", w.0))?;
                    let armed = z.ok_or_else(|| {
                        format!("watcher {} armed by no reply of the server", w.0)
                    })?;
                    self.register(w, path, kind, armed);
                }
            }
            Event::Watch { watcher, event } => {
                self.stats.events += 1;
                self.log(format!(
                    "watch {} {:?} {} zxid={:#x}",
                    watcher.0, event.event_type, event.path, event.zxid
                ));
                if event.zxid != -1 {
                    let ok = self.by_path.get(&event.path).is_some_and(|v| {
                        v.iter().any(|i| {
                            self.history[*i].zxid == event.zxid
                                && self.history[*i].event == event.event_type
                        })
                    });
                    ensure!(
                        ok,
                        "event {:?} {} carries zxid {:#x}, which made no such change",
                        event.event_type,
                        event.path,
                        event.zxid
                    );
                    let last = self
                        .last_event_zxid
                        .entry(event.path.clone())
                        .or_insert(event.zxid);
                    ensure!(
                        *last <= event.zxid,
                        "events for {} out of zxid order: {:#x} after {last:#x}",
                        event.path,
                        event.zxid
                    );
                    *last = event.zxid;
                }
                let Some(w) = self.watchers.get_mut(&watcher) else {
                    return Err(format!("event for unknown watcher {}", watcher.0));
                };
                ensure!(w.live, "watcher {} fired after it was done", watcher.0);
                ensure!(
                    concerns(w.kind, &w.path, event.event_type, &event.path)
                        // Any change ends a one-shot watch on the path, whatever its kind
                        // (a data watch set by exists on a node deleted meanwhile and re-armed
                        // in the data list, for instance, hears NodeDeleted).
                        || (!w.kind.is_persistent() && event.path == w.path),
                    "watcher {} ({:?} {}) got an event it does not concern: {:?} {}",
                    watcher.0,
                    w.kind,
                    w.path,
                    event.event_type,
                    event.path
                );
                if event.zxid != -1 && !w.kind.is_persistent() {
                    ensure!(
                        event.zxid > w.armed,
                        "watcher {} armed at zxid {:#x} fired for zxid {:#x}",
                        watcher.0,
                        w.armed,
                        event.zxid
                    );
                }
                if w.kind.is_persistent() {
                    if w.resync_open {
                        // Possibly a catch-up event of a one-shot watch on the path: not a
                        // change of its own, and excused anyway (see check_reply_zxid).
                        return Ok(());
                    }
                    // After the last matched change of the path, and after what a resync
                    // excused (those changes came before the reply that closed its window).
                    let excused = self.history.partition_point(|e| e.zxid <= w.excused_upto);
                    let from = w
                        .cursor
                        .get(&event.path)
                        .map_or(excused, |c| (c + 1).max(excused));
                    let found = self.by_path.get(&event.path).and_then(|v| {
                        v.iter()
                            .copied()
                            .find(|i| *i >= from && self.history[*i].event == event.event_type)
                    });
                    let Some(idx) = found else {
                        return Err(format!(
                            "persistent watcher {} ({:?} {}) got {:?} {}, which matches no later \
                             change of that path: doubled, out of zxid order, or never made",
                            watcher.0, w.kind, w.path, event.event_type, event.path
                        ));
                    };
                    w.cursor.insert(event.path.clone(), idx);
                    w.seen.insert(idx);
                } else {
                    ensure!(
                        w.changed,
                        "one-shot watcher {} ({:?} {}, armed at zxid {:#x}) fired ({:?}) though \
                         nothing it concerns changed after it was armed",
                        watcher.0,
                        w.kind,
                        w.path,
                        w.armed,
                        event.event_type
                    );
                    let (path, kind) = (w.path.clone(), w.kind);
                    self.end_watcher(watcher);
                    if self.rng.below(3) != 0 {
                        self.fired.push((path, kind));
                    }
                }
            }
            Event::WatchEnded { watcher, reason } => {
                self.log(format!("watch {} ended: {reason:?}", watcher.0));
                ensure!(
                    self.watchers.contains_key(&watcher),
                    "end of unknown watcher {}",
                    watcher.0
                );
                self.end_watcher(watcher);
            }
            Event::WatchResync { watcher } => {
                self.log(format!("watch {} resync", watcher.0));
                if self.opts.mutation == Mutation::NoResync {
                    return Ok(());
                }
                self.stats.resyncs += 1;
                let Some(w) = self.watchers.get_mut(&watcher) else {
                    return Err(format!("resync of unknown watcher {}", watcher.0));
                };
                ensure!(w.live, "resync of watcher {} after it was done", watcher.0);
                ensure!(
                    w.kind.is_persistent(),
                    "resync of one-shot watcher {}",
                    watcher.0
                );
                w.resync_open = true;
            }
            Event::State(state) => {
                self.log(format!("watcher state {state}"));
                if state.is_connected() {
                    self.stats.reconnects += 1;
                }
                if let SessionState::Lost(_) = state {
                    self.generation += 1;
                    self.lost_seen = true;
                    self.last_event_zxid.clear();
                }
            }
            other => return Err(format!("unexpected event {other:?}")),
        }
        Ok(())
    }

    fn wait_quiet(&mut self, limit: Duration) -> Result<(), Fail> {
        let deadline = self.now + limit;
        loop {
            let pending = self.procs.iter().any(|p| !p.pending.is_empty());
            let connected = self.procs.iter().all(|p| p.session.state().is_connected());
            if !pending && connected {
                return Ok(());
            }
            ensure!(
                self.now < deadline,
                "requests still pending after {limit:?} of quiet: a hang (watcher {})",
                self.procs[WATCHER].session.state()
            );
            let step = self.now + Duration::from_millis(20);
            self.run_until(step)?;
        }
    }
}

fn describe(r: &Request) -> String {
    match r {
        Request::Create(c) => format!("create {}", c.path),
        Request::SetData(s) => format!("setData {}", s.path),
        Request::Delete(d) => format!("delete {}", d.path),
        Request::GetData(g) => format!("getData {} watch={}", g.path, g.watch),
        Request::Exists(g) => format!("exists {} watch={}", g.path, g.watch),
        Request::GetChildren(g) => format!("getChildren {} watch={}", g.path, g.watch),
        Request::AddWatch(a) => format!("addWatch {} mode={}", a.path, a.mode),
        Request::Multi(ops) => format!("multi of {}", ops.len()),
        other => format!("{:?}", other.op_code()),
    }
}

// ---- running seeds --------------------------------------------------------------------------

fn run_seed(seed: u64, opts: Opts) -> Result<Stats, (Fail, Vec<String>)> {
    let mut w = World::new(seed, opts);
    let r = (|| -> Result<(), Fail> {
        w.log(format!("params {:?}", w.p));
        // The tree: BASE and every watched node, made by the first writer.
        let mut creates = vec![BASE.to_owned()];
        creates.extend(w.names.iter().cloned());
        for chunk in creates.chunks(100) {
            let ops = chunk
                .iter()
                .map(|p| {
                    MultiOp::Create(CreateRequest {
                        path: p.clone(),
                        data: None,
                        acl: Acl::open_unsafe().into(),
                        flags: 0,
                    })
                })
                .collect();
            w.submit(1, Request::Multi(ops))?;
        }
        w.wait_quiet(Duration::from_secs(60))?;
        // Watch every node (data and children): thousands of watches on big seeds.
        for p in w.names.clone() {
            let req = w.watch_request(p.clone(), WatchKind::Data);
            w.submit(WATCHER, req)?;
            let req = w.watch_request(p, WatchKind::Child);
            w.submit(WATCHER, req)?;
        }
        w.wait_quiet(Duration::from_secs(60))?;
        let steps = w.p.steps;
        for step in 0..steps {
            if w.partition_until.is_some_and(|t| w.now >= t) {
                w.partition_until = None;
                w.log("partition heals".into());
            }
            w.fault();
            if step == steps / 2 && w.stats.reconnects < 2 {
                // Every seed re-arms at least once.
                w.cut_watcher();
            }
            for i in 1..w.procs.len() {
                if w.procs[i].pending.len() < 3 && w.rng.below(2) == 0 {
                    let req = w.random_write();
                    w.submit(i, req)?;
                }
            }
            if w.procs[WATCHER].pending.len() < 20 {
                w.watcher_step()?;
            }
            let think = Duration::from_millis(w.rng.below(30));
            let until = w.now + think;
            w.run_until(until)?;
        }
        // Quiet: heal, restart, stop writing, and wait for everything to resolve.
        w.partition_until = None;
        for i in 0..w.p.servers {
            if !w.server.is_up(i) {
                w.server.restart(w.now, i);
            }
        }
        w.wait_quiet(Duration::from_secs(120))?;
        // A last read answered at the newest zxid: every watch due must have fired by then.
        let id = w
            .submit(
                WATCHER,
                Request::GetData(PathWatchRequest {
                    path: BASE.into(),
                    watch: false,
                }),
            )?
            .ok_or("final read refused")?;
        w.wait_quiet(Duration::from_secs(60))?;
        ensure!(
            !w.procs[WATCHER].pending.contains_key(&id),
            "final read unresolved"
        );
        let head = w.server.last_zxid();
        w.check_reply_zxid(head)?;
        Ok(())
    })();
    match r {
        Ok(()) => Ok(w.stats.clone()),
        Err(e) => Err((e, w.trace.clone())),
    }
}

fn env(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|s| s.parse().ok())
}

fn replay_hint(seed: u64, opts: Opts) -> String {
    let big = match opts.big {
        Some(b) => format!("WATCH_SIM_BIG={} ", u8::from(b)),
        None => String::new(),
    };
    format!(
        "{big}WATCH_SIM_SEED={seed} cargo test -p zk-testkit --test watch_simulation replay -- --nocapture"
    )
}

/// Runs seeds `start..start+n`; returns the summed stats or the first failure, with its replay
/// command.
fn run_seeds(start: u64, n: u64, opts: Opts) -> Result<Stats, String> {
    let mut total = Stats::default();
    for seed in start..start + n {
        match run_seed(seed, opts) {
            Ok(s) => {
                total.events += s.events;
                total.watchers += s.watchers;
                total.resyncs += s.resyncs;
                total.reconnects += s.reconnects;
                total.changes += s.changes;
                total.late_arms += s.late_arms;
                total.max_batches = total.max_batches.max(s.max_batches);
            }
            Err((why, trace)) => {
                return Err(format!(
                    "watch simulation seed {seed} failed: {why}\n\nlast steps:\n{}\n\nreplay with:\n  {}\n",
                    trace.join("\n"),
                    replay_hint(seed, opts)
                ))
            }
        }
    }
    Ok(total)
}

const CLEAN: Opts = Opts {
    verbose: false,
    big: None,
    mutation: Mutation::None,
};

#[test]
fn watches_hold_across_faults_for_many_seeds() {
    let start = env("WATCH_SIM_SEED_START").unwrap_or(0);
    let n = env("WATCH_SIM_SEEDS").unwrap_or(150);
    match run_seeds(start, n, CLEAN) {
        Ok(s) => eprintln!("{n} seeds from {start}: {s:?}"),
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn big_seeds_rearm_in_several_set_watches_frames() {
    let opts = Opts {
        big: Some(true),
        ..CLEAN
    };
    match run_seeds(1000, 2, opts) {
        Ok(s) => {
            eprintln!("{s:?}");
            assert!(
                s.max_batches > 1,
                "no big seed re-armed in more than one SetWatches frame: {s:?}"
            );
        }
        Err(e) => panic!("{e}"),
    }
}

/// Runs seeds with a rule broken until one fails; panics if none does.
fn assert_caught(mutation: Mutation, big: Option<bool>, max: u64) {
    let opts = Opts {
        mutation,
        big,
        ..CLEAN
    };
    for seed in 0..max {
        if let Err((why, _)) = run_seed(seed, opts) {
            eprintln!("{mutation:?} caught by seed {seed}: {why}");
            return;
        }
    }
    panic!("{mutation:?}: no seed of {max} noticed");
}

#[test]
fn rearm_without_catching_up_is_caught() {
    assert_caught(Mutation::RearmAtLatestZxid, Some(false), 40);
}

#[test]
fn dropped_set_watches_batches_are_caught() {
    assert_caught(Mutation::DropAllButLastBatch, Some(true), 4);
}

#[test]
fn persistent_watcher_not_told_of_a_reconnect_is_caught() {
    assert_caught(Mutation::NoResync, Some(false), 40);
}

#[test]
fn replay() {
    let Some(seed) = env("WATCH_SIM_SEED") else {
        return;
    };
    let opts = Opts {
        verbose: true,
        big: env("WATCH_SIM_BIG").map(|b| b != 0),
        mutation: Mutation::None,
    };
    if let Err((why, _)) = run_seed(seed, opts) {
        panic!("watch simulation seed {seed} failed: {why}");
    }
}
