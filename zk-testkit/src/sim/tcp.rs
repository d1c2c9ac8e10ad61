//! `SimTcpServer`: the [`SimServer`] model on real loopback sockets, for tests and demos that
//! need a ZooKeeper without Java, and a fault API for tests of code that uses a client on any
//! runtime (tokio, async-std, smol, or the blocking client).
//!
//! This is the only part of the simulator with threads, sockets and a clock. The design is the
//! plainest that works: one listener per simulated server on an ephemeral 127.0.0.1 port with an
//! accept thread each, a reader thread per connection, a ticker thread calling
//! [`SimServer::handle_timeout`] about every 10 ms, and one mutex around the model. Whoever holds
//! the mutex drains the model's outputs and writes them to the sockets before letting go, so
//! frames leave in the order the model produced them. Dropping the server stops and joins every
//! thread.
//!
//! Faults are named as on [`SimWorld`](super::SimWorld) where the two overlap. A client is
//! singled out by the [`Node`] whose connect string it dials ([`SimTcpServer::connect_string_for`]
//! opens a set of listeners per node): [`cut`](SimTcpServer::cut) closes its connections,
//! [`partition`](SimTcpServer::partition) also closes every new one until
//! [`heal`](SimTcpServer::heal), [`blackhole`](SimTcpServer::blackhole) freezes them (every byte
//! held either way, as on a stalled TCP path) until [`heal`](SimTcpServer::heal). A server can be
//! [paused](SimTcpServer::pause) (SIGSTOP: connections stay open, nothing is answered),
//! [crashed](SimTcpServer::crash) and [restarted](SimTcpServer::restart), or made to
//! [lag](SimTcpServer::set_lagging); a session can be [expired](SimTcpServer::expire_session).
//! Held bytes are kept in memory by the reader threads (the client's writes never block) and
//! handed on, in order, when the fault ends.

use std::collections::{BTreeMap, VecDeque};
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::world::Node;
use super::{ServerOutput, SimConfig, SimConnId, SimServer};

/// How often the ticker drives session expiry and the sweeper.
const TICK: Duration = Duration::from_millis(10);
/// How long a blocked thread waits before it looks at the stop flag again.
const POLL: Duration = Duration::from_millis(20);
/// A client that stops reading for this long is disconnected rather than stalling the model.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// A fault aimed at something the server does not have.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FaultError {
    /// There is no server with this index (servers are numbered from 0).
    NoSuchServer {
        /// The index asked for.
        server: usize,
        /// How many servers there are.
        servers: usize,
    },
    /// No live session has this id (it never existed, or it already expired or was closed).
    NoSuchSession {
        /// The id asked for.
        session_id: i64,
    },
}

impl std::fmt::Display for FaultError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FaultError::NoSuchServer { server, servers } => write!(
                f,
                "no simulated server {server}: there are {servers} (numbered from 0)"
            ),
            FaultError::NoSuchSession { session_id } => {
                write!(f, "no live session {session_id:#x}")
            }
        }
    }
}

impl std::error::Error for FaultError {}

/// One open client connection, as [`SimTcpServer::connections`] lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SimConnection {
    /// The model's id for it.
    pub id: SimConnId,
    /// The node whose connect string it came through (`Node(0)` for
    /// [`SimTcpServer::connect_string`]).
    pub node: Node,
    /// The server it is connected to (0-based).
    pub server: usize,
    /// The session it carries, once its handshake is done.
    pub session_id: Option<i64>,
    /// Whether a fault holds its bytes now (its node is black-holed or its server paused).
    pub held: bool,
    /// Client bytes held so far, not yet seen by the server: non-zero once a request sent while
    /// the connection is held has arrived.
    pub held_from_client: usize,
}

/// What the transport keeps per connection beside the model's own state.
#[derive(Debug)]
struct Meta {
    node: Node,
    server: usize,
    /// Client bytes held by a fault, in arrival order.
    held_in: Vec<u8>,
    /// Server frames held by a fault.
    held_out: VecDeque<Vec<u8>>,
    /// The model closed the connection while it was held.
    held_close: bool,
    /// The client closed the connection while it was held (its reader thread has ended).
    held_eof: bool,
}

/// The model, the sockets its connections map to, and the faults in force.
struct Inner {
    model: SimServer,
    servers: usize,
    streams: BTreeMap<SimConnId, TcpStream>,
    meta: BTreeMap<SimConnId, Meta>,
    partitioned: Vec<Node>,
    blackholed: Vec<Node>,
    paused: Vec<bool>,
}

impl Inner {
    /// Whether a fault holds connection `conn`'s bytes now.
    fn held(&self, conn: SimConnId) -> bool {
        self.meta.get(&conn).is_some_and(|m| {
            self.blackholed.contains(&m.node) || self.paused.get(m.server).copied().unwrap_or(false)
        })
    }

    /// Writes every queued output to its socket (or holds it); a Close shuts the socket down.
    fn flush(&mut self) {
        while let Some(out) = self.model.poll_output() {
            match out {
                ServerOutput::Data { conn, bytes } => {
                    if self.held(conn) {
                        if let Some(m) = self.meta.get_mut(&conn) {
                            m.held_out.push_back(bytes);
                        }
                        continue;
                    }
                    if let Some(s) = self.streams.get_mut(&conn) {
                        if s.write_all(&bytes).is_err() {
                            // The reader thread sees the dead socket and reports it closed.
                            let _ = s.shutdown(Shutdown::Both);
                        }
                    }
                }
                ServerOutput::Close { conn } => {
                    if self.held(conn) {
                        if let Some(m) = self.meta.get_mut(&conn) {
                            m.held_close = true;
                        }
                        continue;
                    }
                    self.meta.remove(&conn);
                    if let Some(s) = self.streams.remove(&conn) {
                        let _ = s.flush_and_close();
                    }
                }
            }
        }
    }

    /// Client bytes for `conn`: to the model, or held.
    fn client_bytes(&mut self, conn: SimConnId, bytes: &[u8]) {
        if self.held(conn) {
            if let Some(m) = self.meta.get_mut(&conn) {
                m.held_in.extend_from_slice(bytes);
            }
            return;
        }
        self.model.handle_bytes(Instant::now(), conn, bytes);
        self.flush();
    }

    /// The client closed `conn` (or its socket died): the model hears of it, unless a fault
    /// holds the connection, in which case it hears when the fault ends.
    fn client_closed(&mut self, conn: SimConnId) {
        if self.held(conn) {
            if let Some(m) = self.meta.get_mut(&conn) {
                m.held_eof = true;
            }
            return;
        }
        self.model.handle_closed(Instant::now(), conn);
        self.streams.remove(&conn);
        self.meta.remove(&conn);
        self.flush();
    }

    /// Closes connection `conn` at both ends now: the client sees it close, the model hears the
    /// client went away. Whatever a fault held is dropped.
    fn break_conn(&mut self, conn: SimConnId) {
        self.meta.remove(&conn);
        if let Some(s) = self.streams.remove(&conn) {
            let _ = s.shutdown(Shutdown::Both);
        }
        self.model.handle_closed(Instant::now(), conn);
        self.flush();
    }

    /// Hands on, in order, what faults held on connections no fault holds any more: first the
    /// server's frames (and its close), then the client's bytes (and its close).
    fn release(&mut self) {
        let ids: Vec<SimConnId> = self.meta.keys().copied().collect();
        for id in ids {
            if self.held(id) {
                continue;
            }
            let Some(m) = self.meta.get_mut(&id) else {
                continue;
            };
            let out = std::mem::take(&mut m.held_out);
            let input = std::mem::take(&mut m.held_in);
            let close = std::mem::replace(&mut m.held_close, false);
            let eof = std::mem::replace(&mut m.held_eof, false);
            if let Some(s) = self.streams.get_mut(&id) {
                for bytes in out {
                    if s.write_all(&bytes).is_err() {
                        let _ = s.shutdown(Shutdown::Both);
                        break;
                    }
                }
            }
            if close {
                self.meta.remove(&id);
                if let Some(s) = self.streams.remove(&id) {
                    let _ = s.flush_and_close();
                }
                continue;
            }
            if !input.is_empty() {
                self.model.handle_bytes(Instant::now(), id, &input);
                self.flush();
            }
            if eof {
                self.client_closed(id);
            }
        }
    }

    fn check_server(&self, server: usize) -> Result<(), FaultError> {
        if server < self.servers {
            Ok(())
        } else {
            Err(FaultError::NoSuchServer {
                server,
                servers: self.servers,
            })
        }
    }

    fn conns_of(&self, node: Node) -> Vec<SimConnId> {
        self.meta
            .iter()
            .filter(|(_, m)| m.node == node)
            .map(|(id, _)| *id)
            .collect()
    }
}

/// Shutting a socket down once everything written has been handed to the kernel.
trait FlushAndClose {
    fn flush_and_close(self) -> std::io::Result<()>;
}

impl FlushAndClose for TcpStream {
    fn flush_and_close(mut self) -> std::io::Result<()> {
        self.flush()?;
        self.shutdown(Shutdown::Both)
    }
}

struct Shared {
    inner: Mutex<Inner>,
    stop: AtomicBool,
    readers: Mutex<Vec<JoinHandle<()>>>,
    /// Accept threads, joined on drop.
    acceptors: Mutex<Vec<JoinHandle<()>>>,
    /// Each node's listener ports, in server order.
    nodes: Mutex<BTreeMap<Node, Vec<u16>>>,
}

impl Shared {
    /// The model, even if a thread panicked while holding it (the model itself never panics).
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
}

/// A [`SimServer`] listening on one 127.0.0.1 port per simulated server (and per [`Node`] asked
/// for), with faults a test can inject. See the [module documentation](self).
pub struct SimTcpServer {
    shared: Arc<Shared>,
    ports: Vec<u16>,
    ticker: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for SimTcpServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimTcpServer")
            .field("ports", &self.ports)
            .finish_non_exhaustive()
    }
}

/// Binds one listener per server for `node` and starts their accept threads; returns the ports.
fn listen(shared: &Arc<Shared>, node: Node, servers: usize) -> std::io::Result<Vec<u16>> {
    let listeners = (0..servers)
        .map(|_| {
            let l = TcpListener::bind("127.0.0.1:0")?;
            l.set_nonblocking(true)?;
            Ok(l)
        })
        .collect::<std::io::Result<Vec<_>>>()?;
    let ports = listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.port()))
        .collect::<std::io::Result<Vec<_>>>()?;
    for (index, listener) in listeners.into_iter().enumerate() {
        let s = shared.clone();
        let handle = thread::Builder::new()
            .name(format!("sim-accept-{}-{index}", node.0))
            .spawn(move || accept_loop(&s, node, index, &listener))?;
        shared
            .acceptors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(handle);
    }
    Ok(ports)
}

fn connect_string_of(ports: &[u16]) -> String {
    ports
        .iter()
        .map(|p| format!("127.0.0.1:{p}"))
        .collect::<Vec<_>>()
        .join(",")
}

impl SimTcpServer {
    /// Starts the model and binds one listener per server on an ephemeral loopback port (the
    /// ports of [`Node(0)`](Node)). `config.version` is the ZooKeeper version it answers as:
    /// the client's version probe reads it, and operations newer than it are refused (see
    /// [`SimConfig::version`]).
    ///
    /// Errors if a listener cannot be bound or a thread cannot be started.
    pub fn start(config: SimConfig) -> std::io::Result<SimTcpServer> {
        let servers = config.servers.max(1);
        let shared = Arc::new(Shared {
            inner: Mutex::new(Inner {
                model: SimServer::new(config, Instant::now()),
                servers,
                streams: BTreeMap::new(),
                meta: BTreeMap::new(),
                partitioned: Vec::new(),
                blackholed: Vec::new(),
                paused: vec![false; servers],
            }),
            stop: AtomicBool::new(false),
            readers: Mutex::new(Vec::new()),
            acceptors: Mutex::new(Vec::new()),
            nodes: Mutex::new(BTreeMap::new()),
        });
        let mut server = SimTcpServer {
            shared: shared.clone(),
            ports: Vec::new(),
            ticker: None,
        };
        // From here on a failure drops `server`, which stops whatever threads were started.
        server.ports = listen(&shared, Node(0), servers)?;
        shared
            .nodes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(Node(0), server.ports.clone());
        let ticker = thread::Builder::new()
            .name("sim-ticker".into())
            .spawn(move || {
                while !shared.stopping() {
                    thread::sleep(TICK);
                    let mut g = shared.lock();
                    g.model.handle_timeout(Instant::now());
                    g.flush();
                }
            })?;
        server.ticker = Some(ticker);
        Ok(server)
    }

    /// The port of each simulated server, in server order (the listeners of `Node(0)`).
    pub fn ports(&self) -> Vec<u16> {
        self.ports.clone()
    }

    /// `127.0.0.1:p1,127.0.0.1:p2,...`, for a client's connect string: the listeners of
    /// `Node(0)`, the node faults aimed at nobody in particular hit.
    pub fn connect_string(&self) -> String {
        connect_string_of(&self.ports)
    }

    /// A connect string naming every server through listeners of `node`'s own, so that faults
    /// can single out the clients that use it ([`cut`](Self::cut),
    /// [`partition`](Self::partition), [`blackhole`](Self::blackhole)). The first call for a
    /// node binds its listeners; later calls return the same string. `Node(0)`'s is
    /// [`connect_string`](Self::connect_string).
    ///
    /// Errors if a listener cannot be bound or its thread cannot be started.
    pub fn connect_string_for(&self, node: Node) -> std::io::Result<String> {
        let mut nodes = self.shared.nodes.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(ports) = nodes.get(&node) {
            return Ok(connect_string_of(ports));
        }
        let servers = self.ports.len();
        let ports = listen(&self.shared, node, servers)?;
        let s = connect_string_of(&ports);
        nodes.insert(node, ports);
        Ok(s)
    }

    /// Runs `f` on the model under its lock (to inspect the tree, or for a fault this API does
    /// not name, such as [`SimServer::set_read_only`]), then writes out whatever it queued.
    pub fn with_model<R>(&self, f: impl FnOnce(&mut SimServer) -> R) -> R {
        let mut g = self.shared.lock();
        let r = f(&mut g.model);
        g.flush();
        r
    }

    // ---- faults aimed at clients ---------------------------------------------------------------

    /// Closes every open connection of `node` now, at both ends: the client sees its socket
    /// close (and reconnects, resuming its session), the server sees the client go. Bytes a
    /// black hole held on them are dropped. Does nothing if `node` has no connection.
    pub fn cut(&self, node: Node) {
        let mut g = self.shared.lock();
        for id in g.conns_of(node) {
            g.break_conn(id);
        }
    }

    /// Cuts `node` off the servers: [`cut`](Self::cut)s its connections and closes every new one
    /// as soon as it is accepted, until [`heal`](Self::heal). Its session lives on the server
    /// until its timeout passes.
    pub fn partition(&self, node: Node) {
        let mut g = self.shared.lock();
        if !g.partitioned.contains(&node) {
            g.partitioned.push(node);
        }
        for id in g.conns_of(node) {
            g.break_conn(id);
        }
    }

    /// Freezes `node`'s connections, as a stalled TCP path does: they stay open, but every byte
    /// either way (and a close by either side) is held, on the ones open now and on new ones,
    /// until [`heal`](Self::heal). Only timeouts tell the two sides: the client goes Suspended
    /// after its read timeout (two thirds of the session timeout) and the server expires the
    /// session after the session timeout. What was held then arrives late and in order.
    pub fn blackhole(&self, node: Node) {
        let mut g = self.shared.lock();
        if !g.blackholed.contains(&node) {
            g.blackholed.push(node);
        }
    }

    /// Ends the [`partition`](Self::partition) or [`blackhole`](Self::blackhole) of `node`:
    /// new connections are served again, and what the black hole held goes on its way, in
    /// order, on the connections still open (unless their server is [paused](Self::pause)).
    /// Does nothing for a node no fault holds.
    pub fn heal(&self, node: Node) {
        let mut g = self.shared.lock();
        g.partitioned.retain(|n| *n != node);
        g.blackholed.retain(|n| *n != node);
        g.release();
    }

    /// Expires session `session_id` now, as if its timeout had passed: its connection closes
    /// without a frame (the client then hears `SessionExpired` when it reconnects, and its
    /// state becomes `Lost(Expired)`), and its ephemeral nodes are deleted.
    ///
    /// Errors with [`FaultError::NoSuchSession`] if no live session has that id.
    pub fn expire_session(&self, session_id: i64) -> Result<(), FaultError> {
        let mut g = self.shared.lock();
        if !g.model.session_ids().contains(&session_id) {
            return Err(FaultError::NoSuchSession { session_id });
        }
        g.model.expire_session(Instant::now(), session_id);
        g.flush();
        Ok(())
    }

    // ---- faults aimed at servers ---------------------------------------------------------------

    /// Pauses server `server`, as SIGSTOP does a real one: its connections stay open and new
    /// ones are accepted, but nothing they send is read and nothing is answered until
    /// [`resume`](Self::resume). Requests wait; a client whose read timeout passes first goes
    /// Suspended and tries another server. The rest of the ensemble keeps time, so sessions
    /// not heard from for their timeout expire. Pausing a paused server changes nothing.
    ///
    /// Errors with [`FaultError::NoSuchServer`] for an index out of range.
    pub fn pause(&self, server: usize) -> Result<(), FaultError> {
        let mut g = self.shared.lock();
        g.check_server(server)?;
        if let Some(p) = g.paused.get_mut(server) {
            *p = true;
        }
        Ok(())
    }

    /// Resumes a [paused](Self::pause) server: what its connections held is handed on, in
    /// order (so waiting requests are answered). Resuming a running server changes nothing.
    ///
    /// Errors with [`FaultError::NoSuchServer`] for an index out of range.
    pub fn resume(&self, server: usize) -> Result<(), FaultError> {
        let mut g = self.shared.lock();
        g.check_server(server)?;
        if let Some(p) = g.paused.get_mut(server) {
            *p = false;
        }
        g.release();
        Ok(())
    }

    /// Crashes server `server`: every connection to it closes and new ones are refused (closed
    /// at once) until [`restart`](Self::restart). Sessions are the ensemble's and live on
    /// until they expire, so a client with another server in its connect string resumes its
    /// session there. Crashing a crashed server changes nothing.
    ///
    /// Errors with [`FaultError::NoSuchServer`] for an index out of range.
    pub fn crash(&self, server: usize) -> Result<(), FaultError> {
        let mut g = self.shared.lock();
        g.check_server(server)?;
        g.model.crash(Instant::now(), server);
        // A crashed process sends nothing it held back (had it been paused): its connections
        // just close.
        if let Some(p) = g.paused.get_mut(server) {
            *p = false;
        }
        let on_it: Vec<SimConnId> = g
            .meta
            .iter()
            .filter(|(_, m)| m.server == server)
            .map(|(id, _)| *id)
            .collect();
        for id in on_it {
            g.break_conn(id);
        }
        g.flush();
        Ok(())
    }

    /// Restarts a [crashed](Self::crash) server, up to date with the ensemble. Restarting a
    /// running server changes nothing.
    ///
    /// Errors with [`FaultError::NoSuchServer`] for an index out of range.
    pub fn restart(&self, server: usize) -> Result<(), FaultError> {
        let mut g = self.shared.lock();
        g.check_server(server)?;
        g.model.restart(Instant::now(), server);
        g.flush();
        Ok(())
    }

    /// Makes server `server` lag behind the ensemble (`true`) or catch up (`false`). A lagging
    /// server answers reads from the state it had when it started lagging, and applies newer
    /// writes only on `sync`, on a write of one of its own clients, or when it catches up (then
    /// firing its clients' watches): the stale reads ZooKeeper allows.
    ///
    /// Errors with [`FaultError::NoSuchServer`] for an index out of range.
    pub fn set_lagging(&self, server: usize, lagging: bool) -> Result<(), FaultError> {
        let mut g = self.shared.lock();
        g.check_server(server)?;
        g.model.set_lagging(server, lagging);
        g.flush();
        Ok(())
    }

    // ---- inspection ----------------------------------------------------------------------------

    /// Live session ids, sorted. A client's own is `client.client_id()`'s `id`.
    pub fn session_ids(&self) -> Vec<i64> {
        self.shared.lock().model.session_ids()
    }

    /// Every open client connection: its node, its server, the session on it and whether a
    /// fault holds it. Ordered by connection id, so the newest connection is last.
    pub fn connections(&self) -> Vec<SimConnection> {
        let g = self.shared.lock();
        g.meta
            .iter()
            .map(|(id, m)| SimConnection {
                id: *id,
                node: m.node,
                server: m.server,
                session_id: g.model.session_of(*id),
                held: g.held(*id),
                held_from_client: m.held_in.len(),
            })
            .collect()
    }
}

impl Drop for SimTcpServer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.ticker.take() {
            let _ = t.join();
        }
        let acceptors = std::mem::take(
            &mut *self
                .shared
                .acceptors
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
        );
        for t in acceptors {
            let _ = t.join();
        }
        // No accept thread is left to start readers; wake the ones that exist and join them.
        {
            let mut g = self.shared.lock();
            for (_, s) in std::mem::take(&mut g.streams) {
                let _ = s.shutdown(Shutdown::Both);
            }
        }
        let readers = std::mem::take(
            &mut *self
                .shared
                .readers
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
        );
        for r in readers {
            let _ = r.join();
        }
    }
}

fn accept_loop(shared: &Arc<Shared>, node: Node, index: usize, listener: &TcpListener) {
    while !shared.stopping() {
        let stream = match listener.accept() {
            Ok((stream, _)) => stream,
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                thread::sleep(POLL / 4);
                continue;
            }
            Err(_) => {
                thread::sleep(POLL);
                continue;
            }
        };
        let setup = stream
            .set_nonblocking(false)
            .and_then(|()| stream.set_nodelay(true))
            .and_then(|()| stream.set_read_timeout(Some(POLL)))
            .and_then(|()| stream.set_write_timeout(Some(WRITE_TIMEOUT)))
            .and_then(|()| stream.try_clone());
        let Ok(writer) = setup else {
            continue;
        };
        let conn = {
            let mut g = shared.lock();
            if g.partitioned.contains(&node) {
                // Partitioned: the connection closes as soon as it opens.
                let _ = stream.shutdown(Shutdown::Both);
                continue;
            }
            let conn = g.model.accept(Instant::now(), index);
            g.streams.insert(conn, writer);
            g.meta.insert(
                conn,
                Meta {
                    node,
                    server: index,
                    held_in: Vec::new(),
                    held_out: VecDeque::new(),
                    held_close: false,
                    held_eof: false,
                },
            );
            g.flush();
            conn
        };
        let reader_shared = shared.clone();
        let spawned = thread::Builder::new()
            .name(format!("sim-conn-{}", conn.0))
            .spawn(move || read_loop(&reader_shared, conn, stream));
        if let Ok(handle) = spawned {
            shared
                .readers
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(handle);
        }
    }
}

fn read_loop(shared: &Arc<Shared>, conn: SimConnId, mut stream: TcpStream) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        if shared.stopping() {
            return;
        }
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                let mut g = shared.lock();
                g.client_bytes(conn, &buf[..n]);
                if !g.streams.contains_key(&conn) {
                    // The model closed the connection, or a fault cut it.
                    return;
                }
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    shared.lock().client_closed(conn);
}
