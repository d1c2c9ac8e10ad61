//! `SimServer`: an in-memory model of a ZooKeeper ensemble that speaks the real wire protocol.
//!
//! It exists so the client's session machine can be tested deterministically, on a virtual clock,
//! against a server whose behaviour follows PROTOCOL.md (the wire reference checked against a real
//! ZooKeeper 3.8) down to zxids, Stat fields, error codes and the order of frames. Every byte goes
//! through zk-core's `proto` codec.
//!
//! The model is sans-IO, like the client core: bytes in ([`SimServer::handle_bytes`]), bytes out
//! ([`SimServer::poll_output`]), time passed in (`now` on every input). It has no threads, no
//! sockets and never reads a clock; the same inputs always give the same outputs. After every
//! input, drain [`SimServer::poll_output`] until it returns `None`, then call
//! [`SimServer::handle_timeout`] no later than [`SimServer::poll_timeout`]. [`tcp::SimTcpServer`]
//! puts it on real sockets for tests and demos that need a server without Java.
//!
//! What is modelled: an ensemble of `servers` replicas sharing one committed transaction log; each
//! replica applies the log and fires watches for its own connections when it does (a *lagging*
//! replica only on sync, on its own clients' writes, or when caught up); sessions global to the
//! ensemble with server-side expiry; read-only servers; the container/TTL sweeper; four-letter
//! words; and the per-version differences of §16. What is not: quorum loss (a server is up or
//! down, and read-only mode is switched explicitly), SASL, quotas, superDigest, reconfig (always
//! ReconfigDisabled), throttling, and ACL checks on watch delivery.
//!
//! Module map: `tree` one replica's znodes and Stat bookkeeping, `txn` the committed log, `prep`
//! validation of writes into transactions, `watch` a connection's watches, `session` ids,
//! passwords and timeouts, `acl` identities and permission checks, `conn` a connection's state,
//! `path` path rules, `handshake` the ConnectRequest, `dispatch` every other request, `replica`
//! commit, catch-up and watch delivery, `four_letter` the text commands, [`tcp`] sockets,
//! `turmoil` hosts of a turmoil simulation (feature `turmoil`).

mod acl;
mod conn;
mod dispatch;
mod four_letter;
mod handshake;
mod path;
mod prep;
mod replica;
mod session;
pub mod tcp;
mod tree;
#[cfg(feature = "turmoil")]
pub mod turmoil;
mod txn;
mod watch;
pub mod world;

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use bytes::Bytes;
use zk_core::proto::{Acl, EventType, Stat};

pub use tcp::{FaultError, SimConnection, SimTcpServer};
pub use world::{NetConfig, Node, SimWorld, Stuck};

use conn::{Conn, Phase};
use session::Sessions;
use tree::{DataTree, Owner};
use txn::{Log, TxnOp};

/// How the simulated ensemble is set up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimConfig {
    /// Ensemble size; every server shares one logical data tree. Values below 1 count as 1.
    pub servers: usize,
    /// The ZooKeeper version whose behaviour to model (PROTOCOL.md §16); default 3.8.0. Set it
    /// to test code against an older or newer server: `srvr` reports it (so a client's version
    /// probe sees it, and fails operations the version lacks with `Error::Unsupported` before
    /// sending them, e.g. `add_watch` on `(3, 5, 9)`), operations newer than it are answered
    /// with the Unimplemented error code (`Error::Unimplemented`) as a real server of that
    /// version does, and per-version details follow it (multi results, watch modes, the
    /// notification zxid).
    pub version: (u32, u32, u32),
    /// `tickTime` in ms; session timeouts are negotiated into `[2 * tick, 20 * tick]`. Default 500.
    pub tick_ms: u64,
    /// `extendedTypesEnabled`: TTL nodes allowed. Default true.
    pub extended_types: bool,
    /// `jute.maxbuffer`: larger incoming frames close the connection. Default
    /// [`zk_core::proto::SERVER_MAX_FRAME`].
    pub max_frame: usize,
    /// `znode.container.checkIntervalMs`: the container/TTL sweeper's period. Default 60 000.
    pub container_check_interval_ms: u64,
    /// Wall-clock ms at the `now` passed to [`SimServer::new`]; ctime and mtime derive from it,
    /// and so do session ids.
    pub epoch_ms: i64,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            servers: 1,
            version: (3, 8, 0),
            tick_ms: 500,
            extended_types: true,
            max_frame: zk_core::proto::SERVER_MAX_FRAME,
            container_check_interval_ms: 60_000,
            // 2025-01-01T00:00:00Z: any fixed value keeps runs identical.
            epoch_ms: 1_735_689_600_000,
        }
    }
}

/// One client connection to the model, from [`SimServer::accept`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SimConnId(pub u64);

/// Something the model asks the transport to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerOutput {
    /// Write these bytes (one whole frame, or four-letter-word text) to the connection.
    Data {
        /// The connection.
        conn: SimConnId,
        /// The bytes.
        bytes: Vec<u8>,
    },
    /// Close the connection (after writing everything queued before this).
    Close {
        /// The connection.
        conn: SimConnId,
    },
}

/// The kind of a znode, with the internals a client cannot see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum NodeKind {
    /// A plain node.
    Persistent,
    /// An ephemeral node of this session.
    Ephemeral {
        /// The owning session.
        session_id: i64,
    },
    /// A container.
    Container,
    /// A TTL node.
    Ttl {
        /// Its time to live in ms.
        ttl_ms: i64,
    },
}

/// A committed znode, for reference-model checks in tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeView {
    /// The data; `None` if it was set with a null buffer.
    pub data: Option<Bytes>,
    /// The Stat a client would get (ephemeralOwner 0 for containers and TTL nodes).
    pub stat: Stat,
    /// The owner field as stored: the session id for ephemerals, the container or TTL marker
    /// (PROTOCOL.md §8.4), or 0.
    pub ephemeral_owner: i64,
    /// The ACL.
    pub acl: Vec<Acl>,
    /// What kind of node it is.
    pub kind: NodeKind,
}

/// One change the ensemble committed, as a watch event: what [`SimServer::history`] lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The zxid of the transaction that made it (a multi's changes share one).
    pub zxid: i64,
    /// NodeCreated, NodeDeleted, NodeDataChanged or NodeChildrenChanged.
    pub event: EventType,
    /// The node it happened to.
    pub path: String,
}

/// One server of the ensemble: its replica of the tree and its switches.
#[derive(Debug)]
struct Replica {
    up: bool,
    lagging: bool,
    read_only: bool,
    tree: DataTree,
    /// Packets received and sent, for the four-letter words.
    received: u64,
    sent: u64,
}

impl Replica {
    fn new(tree: DataTree) -> Self {
        Replica {
            up: true,
            lagging: false,
            read_only: false,
            tree,
            received: 0,
            sent: 0,
        }
    }

    /// Applies committed transactions as they come (not down, not partitioned, not lagging).
    fn follows_quorum(&self) -> bool {
        self.up && !self.read_only && !self.lagging
    }
}

/// The in-memory ensemble. See the [module documentation](self).
#[derive(Debug)]
pub struct SimServer {
    config: SimConfig,
    /// The `now` given to [`SimServer::new`]: wall-clock `epoch_ms`.
    start: Instant,
    /// The committed state: the log head. Writes are validated against it (the leader's view).
    head: DataTree,
    /// Committed transactions some replica has not applied yet.
    log: Log,
    servers: Vec<Replica>,
    sessions: Sessions,
    conns: BTreeMap<SimConnId, Conn>,
    next_conn: u64,
    outputs: VecDeque<ServerOutput>,
    /// The sweeper's next run, `start + k * interval`.
    next_sweep: Option<Instant>,
    /// Every change committed since [`SimServer::record_history`], when recording.
    history: Option<Vec<Change>>,
}

impl SimServer {
    // ---- construction and connections ---------------------------------------------------------

    /// A fresh ensemble: every server up, an empty tree (`/zookeeper` and its children only),
    /// zxid 0, no sessions.
    pub fn new(config: SimConfig, now: Instant) -> Self {
        let n = config.servers.max(1);
        let tree = DataTree::new();
        let mut sim = SimServer {
            sessions: Sessions::new(n, config.epoch_ms),
            servers: (0..n).map(|_| Replica::new(tree.clone())).collect(),
            head: tree,
            log: Log::default(),
            conns: BTreeMap::new(),
            next_conn: 1,
            outputs: VecDeque::new(),
            next_sweep: None,
            history: None,
            start: now,
            config,
        };
        sim.next_sweep = sim.sweep_tick_after(now);
        sim
    }

    /// A new TCP connection to server `server`. On a server that is down (or does not exist) the
    /// connection is refused: a [`ServerOutput::Close`] for it is queued at once.
    pub fn accept(&mut self, now: Instant, server: usize) -> SimConnId {
        self.roll_sweep(now);
        let id = SimConnId(self.next_conn);
        self.next_conn += 1;
        if self.servers.get(server).is_some_and(|s| s.up) {
            let accumulate = self.at_least(3, 9, 0);
            self.conns
                .insert(id, Conn::new(server, self.config.max_frame, accumulate));
        } else {
            self.outputs.push_back(ServerOutput::Close { conn: id });
        }
        id
    }

    /// Bytes from the client, in any split of the stream. Bytes for a closed or unknown
    /// connection are ignored. Never panics, whatever the bytes.
    pub fn handle_bytes(&mut self, now: Instant, conn: SimConnId, data: &[u8]) {
        self.roll_sweep(now);
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        if c.phase == Phase::Fresh {
            c.prefix.extend_from_slice(data);
            if !self.check_four_letter(conn) {
                return;
            }
        } else {
            c.decoder.extend(data);
        }
        self.pump(now, conn);
    }

    /// The client closed the connection, or the link died. The session lives on until it
    /// expires or is resumed elsewhere; the connection's watches and identities are gone.
    pub fn handle_closed(&mut self, now: Instant, conn: SimConnId) {
        self.roll_sweep(now);
        self.forget_conn(conn);
    }

    /// Session expiry (sessions idle for their negotiated timeout) and the container/TTL sweep,
    /// for everything due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.roll_sweep(now);
        let mut due: Vec<(Instant, i64)> = self
            .sessions
            .iter()
            .filter_map(|(id, s)| s.deadline().map(|d| (d, *id)))
            .filter(|(d, _)| *d <= now)
            .collect();
        due.sort();
        for (_, id) in due {
            self.expire(now, id);
        }
        if self.next_sweep.is_some_and(|t| t <= now) {
            self.sweep(now);
            self.next_sweep = self.sweep_tick_after(now);
        }
    }

    /// When [`SimServer::handle_timeout`] next has work: the earliest session deadline, or the
    /// next sweep while containers or TTL nodes exist.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let sessions = self.sessions.iter().filter_map(|(_, s)| s.deadline()).min();
        let sweep = self.next_sweep.filter(|_| self.head.has_swept());
        match (sessions, sweep) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The next thing to do for the transport, in order. Drain after every input.
    #[must_use]
    pub fn poll_output(&mut self) -> Option<ServerOutput> {
        self.outputs.pop_front()
    }

    // ---- faults --------------------------------------------------------------------------------

    /// Server `server` crashes: every connection to it closes ([`ServerOutput::Close`]) and it
    /// accepts none until [`SimServer::restart`]. Sessions live on (they are the ensemble's) and
    /// expire unless resumed elsewhere; sessions local to a read-only server die with it.
    pub fn crash(&mut self, now: Instant, server: usize) {
        self.roll_sweep(now);
        let Some(r) = self.servers.get_mut(server) else {
            return;
        };
        if !r.up {
            return;
        }
        r.up = false;
        self.drop_server_connections(server);
    }

    /// Server `server` comes back, synchronised with the committed state (as a follower that
    /// rejoins gets a snapshot or diff from the leader).
    pub fn restart(&mut self, now: Instant, server: usize) {
        self.roll_sweep(now);
        let head = self.head.clone();
        if let Some(r) = self.servers.get_mut(server) {
            if !r.up {
                r.up = true;
                r.tree = head;
            }
        }
    }

    /// Whether server `server` is up.
    pub fn is_up(&self, server: usize) -> bool {
        self.servers.get(server).is_some_and(|s| s.up)
    }

    /// A lagging server applies committed transactions only on sync, when one of its own
    /// clients writes (it sees its own writes), or when set back to not lagging (it then catches
    /// up at once, firing the watches of its connections).
    pub fn set_lagging(&mut self, server: usize, lagging: bool) {
        let Some(r) = self.servers.get_mut(server) else {
            return;
        };
        r.lagging = lagging;
        if r.follows_quorum() {
            self.catch_up(server);
        }
        self.trim_log();
    }

    /// Models a server partitioned from the quorum with `readonlymode.enabled` (§14.5): it
    /// refuses clients that do not allow read-only, answers writes with NotReadOnly, and serves
    /// reads from the state it had when cut off. Switching mode restarts the server's client
    /// side, so its connections close (and its local sessions die); switching back
    /// resynchronises it with the committed state.
    pub fn set_read_only(&mut self, server: usize, ro: bool) {
        let head = self.head.clone();
        let Some(r) = self.servers.get_mut(server) else {
            return;
        };
        if r.read_only == ro {
            return;
        }
        r.read_only = ro;
        if !ro {
            r.tree = head;
        }
        self.drop_server_connections(server);
        self.trim_log();
    }

    /// Expires a session now, as if its timeout had elapsed: its connection closes without a
    /// frame, its ephemeral nodes are deleted (a transaction, firing other sessions' watches).
    pub fn expire_session(&mut self, now: Instant, session_id: i64) {
        self.roll_sweep(now);
        self.expire(now, session_id);
    }

    // ---- inspection ------------------------------------------------------------------------------

    /// The committed znode at `path` (the log head, whatever replicas lag behind).
    pub fn node(&self, path: &str) -> Option<NodeView> {
        let n = self.head.get(path)?;
        Some(NodeView {
            data: n.data.clone(),
            stat: n.stat(),
            ephemeral_owner: n.owner.raw(),
            acl: n.acl.clone(),
            kind: match n.owner {
                Owner::Persistent => NodeKind::Persistent,
                Owner::Ephemeral(s) => NodeKind::Ephemeral { session_id: s },
                Owner::Container => NodeKind::Container,
                Owner::Ttl(t) => NodeKind::Ttl { ttl_ms: t },
            },
        })
    }

    /// The committed children of `path`, sorted.
    pub fn children(&self, path: &str) -> Option<Vec<String>> {
        Some(self.head.get(path)?.children.iter().cloned().collect())
    }

    /// Live session ids, sorted.
    pub fn session_ids(&self) -> Vec<i64> {
        self.sessions.ids()
    }

    /// The session on connection `conn`, once its handshake is done; `None` before that, and
    /// for a closed or unknown connection.
    pub fn session_of(&self, conn: SimConnId) -> Option<i64> {
        self.conns.get(&conn).and_then(Conn::session)
    }

    /// Starts recording every committed change (see [`SimServer::history`]). Off by default: a
    /// long-running server would grow without bound. Recording again changes nothing.
    pub fn record_history(&mut self) {
        self.history.get_or_insert_with(Vec::new);
    }

    /// The changes committed since [`SimServer::record_history`], in commit order (zxid order;
    /// within one transaction, the order its watch events fire), whatever session or sweeper made
    /// them. Empty when not recording. Tests check watch delivery against it: every watch event
    /// a client can get is one of these, or a catch-up event of SetWatches.
    pub fn history(&self) -> &[Change] {
        self.history.as_deref().unwrap_or(&[])
    }

    /// The zxid of the last committed transaction.
    pub fn last_zxid(&self) -> i64 {
        self.head.last_zxid
    }

    /// The text a four-letter word gets from server `server` (§15; every word is whitelisted).
    /// `None` if the server is down or the word is not a four-letter word (a real server then
    /// reads it as a frame length and closes the connection without a word).
    pub fn four_letter(&mut self, now: Instant, server: usize, word: &str) -> Option<String> {
        self.roll_sweep(now);
        if !self.is_up(server) {
            return None;
        }
        let w = four_letter::Word::parse(word.as_bytes(), self.config.version)?;
        // A trace mask argument can only come over a socket; answer stmk as if 0 was sent.
        Some(self.four_letter_text(server, w, 0))
    }

    // ---- internals shared by the submodules ------------------------------------------------------

    /// True if the modelled version is at least `maj.min.patch`.
    fn at_least(&self, maj: u32, min: u32, patch: u32) -> bool {
        self.config.version >= (maj, min, patch)
    }

    /// Wall-clock ms at `now` (`epoch_ms` plus the time since [`SimServer::new`]).
    fn wall_ms(&self, now: Instant) -> i64 {
        let elapsed = now.saturating_duration_since(self.start).as_millis();
        self.config
            .epoch_ms
            .saturating_add(i64::try_from(elapsed).unwrap_or(i64::MAX))
    }

    /// The first sweeper tick strictly after `now`.
    fn sweep_tick_after(&self, now: Instant) -> Option<Instant> {
        let interval = self.config.container_check_interval_ms.max(1);
        let elapsed = u64::try_from(now.saturating_duration_since(self.start).as_millis())
            .unwrap_or(u64::MAX);
        let ticks = (elapsed / interval).saturating_add(1);
        self.start
            .checked_add(Duration::from_millis(interval.saturating_mul(ticks)))
    }

    /// Keeps the sweeper's schedule when it has nothing to look at, so that
    /// [`SimServer::poll_timeout`] need not wake anyone up for an empty sweep.
    fn roll_sweep(&mut self, now: Instant) {
        if !self.head.has_swept() && self.next_sweep.is_some_and(|t| t <= now) {
            self.next_sweep = self.sweep_tick_after(now);
        }
    }

    /// The container/TTL sweep (§8.4): deletes, one transaction each, every childless container
    /// that once had a child and every childless TTL node unmodified for longer than its TTL.
    fn sweep(&mut self, now: Instant) {
        let wall = self.wall_ms(now);
        let doomed: Vec<String> = self
            .head
            .swept_paths()
            .filter(|p| {
                self.head.get(p).is_some_and(|n| {
                    n.children.is_empty()
                        && match n.owner {
                            Owner::Container => n.creates > 0,
                            Owner::Ttl(ttl) => ttl != 0 && wall.saturating_sub(n.mtime) > ttl,
                            _ => false,
                        }
                })
            })
            .cloned()
            .collect();
        for path in doomed {
            self.commit(now, TxnOp::Delete { path }, None);
        }
    }

    /// Ends a session: its connection closes with no frame (§14.2), then its ephemerals go in a
    /// closeSession transaction (none for a read-only server's local session).
    fn expire(&mut self, now: Instant, session_id: i64) {
        let Some(session) = self.sessions.remove(session_id) else {
            return;
        };
        if let Some(c) = session.conn {
            self.close_conn(SimConnId(c));
        }
        if session.local_to.is_none() {
            let ephemerals = self.head.ephemerals_of(session_id);
            self.commit(now, TxnOp::CloseSession { ephemerals }, None);
        }
    }

    /// Reads frames off a connection until it has no whole frame left or is closed.
    fn pump(&mut self, now: Instant, id: SimConnId) {
        loop {
            let Some(c) = self.conns.get_mut(&id) else {
                return;
            };
            let phase = c.phase;
            let frame = match c.decoder.next_frame() {
                Ok(Some(f)) => f,
                Ok(None) => return,
                // §2: a negative or oversized length closes the connection, no reply.
                Err(_) => {
                    self.close_conn(id);
                    return;
                }
            };
            match phase {
                Phase::Fresh => return,
                Phase::AwaitConnect => self.handle_connect(now, id, frame),
                Phase::Connected { .. } => self.handle_request(now, id, frame),
            }
        }
    }

    /// Queues one frame (or text) for a connection.
    fn send(&mut self, conn: SimConnId, bytes: Vec<u8>) {
        if let Some(server) = self.conns.get(&conn).map(|c| c.server) {
            if let Some(r) = self.servers.get_mut(server) {
                r.sent += 1;
            }
        }
        self.outputs.push_back(ServerOutput::Data { conn, bytes });
    }

    /// The server closes a connection: [`ServerOutput::Close`], and everything attached to the
    /// connection (watches, identities) is gone.
    fn close_conn(&mut self, conn: SimConnId) {
        if self.forget_conn(conn) {
            self.outputs.push_back(ServerOutput::Close { conn });
        }
    }

    /// Drops a connection's state; true if it existed.
    fn forget_conn(&mut self, conn: SimConnId) -> bool {
        let Some(c) = self.conns.remove(&conn) else {
            return false;
        };
        if let Some(sid) = c.session() {
            if let Some(s) = self.sessions.get_mut(sid) {
                if s.conn == Some(conn.0) {
                    s.conn = None;
                }
            }
        }
        true
    }

    /// Closes every connection to `server` and ends the sessions that lived only there.
    fn drop_server_connections(&mut self, server: usize) {
        let ids: Vec<SimConnId> = self
            .conns
            .iter()
            .filter(|(_, c)| c.server == server)
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            self.close_conn(id);
        }
        let local: Vec<i64> = self
            .sessions
            .iter()
            .filter(|(_, s)| s.local_to == Some(server))
            .map(|(id, _)| *id)
            .collect();
        for id in local {
            self.sessions.remove(id);
        }
    }
}
