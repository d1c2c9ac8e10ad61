//! [`SimWorld`]: whole clients, with everything they run (recipes included), on a virtual clock
//! and a seeded simulated network to a [`SimServer`], in one thread. Same seed, same run: every
//! task step, byte delivery, timer and fault happens in an order fixed by the seed, so a failing
//! seed replays exactly.
//!
//! The pieces:
//! - a [`Runtime`] ([`SimWorld::runtime`]) whose clock is the world's, whose timers are the
//!   world's, whose tasks run on the world's executor and whose connections are simulated links
//!   to the model server (ports `1..=servers` name its servers: see [`SimWorld::connect_string`]);
//! - an executor, [`SimWorld::block_on`]: polls every task that was woken; when none is, jumps
//!   the clock to the next event (a timer, a delivery, a server deadline) and handles it;
//! - the network: bytes travel each way after a seeded latency, in order; [`SimWorld::cut`]
//!   breaks a client's links, [`SimWorld::partition`] also refuses its new ones until
//!   [`SimWorld::heal`], [`SimWorld::blackhole`] holds every byte either way (as a network
//!   that drops packets, which TCP sends again once it heals); [`SimWorld::crash`] /
//!   [`SimWorld::restart`] a server;
//!   [`SimWorld::expire_session`].
//!
//! Nothing here reads the real clock after the world is made (its epoch is one `Instant`), and
//! there are no threads: a test that builds its clients with [`SimWorld::builder`] (which fixes
//! their RNG seeds) is deterministic.

use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use zk_client::{BoxFuture, ClientBuilder, Runtime, Timer, Transport};

use super::{ServerOutput, SimConfig, SimConnId, SimServer};

/// How the simulated network behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetConfig {
    /// Smallest one-way delay of a write.
    pub min_latency: Duration,
    /// Largest one-way delay of a write (each write draws from the range; order is kept).
    pub max_latency: Duration,
}

impl Default for NetConfig {
    fn default() -> Self {
        NetConfig {
            min_latency: Duration::from_micros(100),
            max_latency: Duration::from_millis(2),
        }
    }
}

/// A client's identity in the world, for faults aimed at it: the links it opens are tagged with
/// it (see [`SimWorld::runtime_for`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Node(pub u32);

/// The simulated world: one model ensemble, the network to it, a clock and an executor.
/// Cheap to clone; clones share the world.
#[derive(Clone)]
pub struct SimWorld {
    state: Arc<Mutex<State>>,
    tasks: Arc<Mutex<Tasks>>,
    ready: Arc<Mutex<VecDeque<u64>>>,
}

impl std::fmt::Debug for SimWorld {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.lock();
        f.debug_struct("SimWorld")
            .field("elapsed", &(s.now - s.epoch))
            .field("links", &s.links.len())
            .finish()
    }
}

struct State {
    epoch: Instant,
    now: Instant,
    rng: u64,
    net: NetConfig,
    server: SimServer,
    servers: usize,
    links: BTreeMap<u64, Link>,
    by_server_conn: BTreeMap<SimConnId, u64>,
    next_link: u64,
    timers: BTreeMap<(Instant, u64), Waker>,
    next_timer: u64,
    partitioned: Vec<Node>,
    /// Nodes whose bytes are held silently (no close on either side) until they heal, and
    /// whose dials hang.
    blackholed: Vec<Node>,
    /// Everything that happened, when tracing is on (for replaying a failing seed).
    trace: Option<Vec<String>>,
}

struct Link {
    node: Node,
    server_conn: SimConnId,
    /// Client bytes on their way, with their arrival time.
    to_server: VecDeque<(Instant, Vec<u8>)>,
    /// Server bytes on their way.
    to_client: VecDeque<(Instant, Vec<u8>)>,
    /// A close from the server on its way (after the bytes queued before it).
    server_close_at: Option<Instant>,
    /// Arrived and not yet read by the client.
    inbox: VecDeque<u8>,
    read_waker: Option<Waker>,
    /// The client can read no more (the server closed it, or the link was cut).
    closed: bool,
    /// Bytes each way (and a close from the server) held by a black hole, sent on when it heals.
    held_to_server: VecDeque<Vec<u8>>,
    held_to_client: VecDeque<Vec<u8>>,
    held_close: bool,
}

struct Tasks {
    next: u64,
    live: BTreeMap<u64, Option<BoxFuture<()>>>,
}

struct TaskWaker {
    id: u64,
    ready: Arc<Mutex<VecDeque<u64>>>,
}

impl Wake for TaskWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        let mut r = self.ready.lock().unwrap_or_else(|e| e.into_inner());
        if !r.contains(&self.id) {
            r.push_back(self.id);
        }
    }
}

/// Why [`SimWorld::block_on`] could not finish its future.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stuck {
    /// Nothing was left to happen (no task woken, no timer, no delivery) and the future had not
    /// finished: it waits for something that never comes.
    Deadlock {
        /// Virtual time elapsed when it stopped.
        at: Duration,
    },
    /// The virtual-time limit passed first.
    TimeLimit {
        /// The limit.
        limit: Duration,
    },
}

impl SimWorld {
    /// A world with one model ensemble configured by `config`, the network `net`, and every
    /// random choice drawn from `seed`.
    pub fn new(config: SimConfig, net: NetConfig, seed: u64) -> Self {
        let epoch = Instant::now();
        let servers = config.servers.max(1);
        SimWorld {
            state: Arc::new(Mutex::new(State {
                epoch,
                now: epoch,
                rng: seed ^ 0x9e37_79b9_7f4a_7c15,
                net,
                server: SimServer::new(config, epoch),
                servers,
                links: BTreeMap::new(),
                by_server_conn: BTreeMap::new(),
                next_link: 1,
                timers: BTreeMap::new(),
                next_timer: 0,
                partitioned: Vec::new(),
                blackholed: Vec::new(),
                trace: None,
            })),
            tasks: Arc::new(Mutex::new(Tasks {
                next: 0,
                live: BTreeMap::new(),
            })),
            ready: Arc::new(Mutex::new(VecDeque::new())),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records every network event and fault from now on; [`trace`](Self::trace) returns them.
    pub fn enable_trace(&self) {
        self.lock().trace.get_or_insert_with(Vec::new);
    }

    /// The events recorded since [`enable_trace`](Self::enable_trace).
    pub fn trace(&self) -> Vec<String> {
        self.lock().trace.clone().unwrap_or_default()
    }

    /// The connect string naming every server of the world (`127.0.0.1:1,...`); the ports are
    /// server numbers, meaningful only inside this world.
    pub fn connect_string(&self) -> String {
        let n = self.lock().servers;
        (1..=n)
            .map(|p| format!("127.0.0.1:{p}"))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The world's runtime for a client that faults do not single out (node 0).
    pub fn runtime(&self) -> Arc<dyn Runtime> {
        self.runtime_for(Node(0))
    }

    /// The world's runtime for client `node`: its links can be cut or partitioned by node.
    pub fn runtime_for(&self, node: Node) -> Arc<dyn Runtime> {
        Arc::new(SimRuntime {
            world: self.clone(),
            node,
        })
    }

    /// A client builder for `connect_string` on this world as `node`, with its RNG seeded from
    /// the world's seed (so the client's jitter and host order replay too).
    pub fn builder(&self, node: Node, connect_string: &str) -> ClientBuilder {
        let seed = self.next_random();
        ClientBuilder::new(self.runtime_for(node), connect_string).rng_seed(seed)
    }

    /// Virtual time since the world was made.
    pub fn elapsed(&self) -> Duration {
        let s = self.lock();
        s.now - s.epoch
    }

    /// The world's clock.
    pub fn now(&self) -> Instant {
        self.lock().now
    }

    /// A number from the world's seeded generator (for tests that draw their own choices).
    pub fn next_random(&self) -> u64 {
        self.lock().random()
    }

    /// Runs the model server by hand (inspect the tree, inject its own faults). Do not call the
    /// world from inside `f`.
    pub fn with_server<T>(&self, f: impl FnOnce(&mut SimServer, Instant) -> T) -> T {
        let mut s = self.lock();
        let now = s.now;
        let out = f(&mut s.server, now);
        s.drain_server();
        out
    }

    // ---- faults -----------------------------------------------------------------------------

    /// Breaks every open link of `node`: both ends see the connection close now.
    pub fn cut(&self, node: Node) {
        let mut s = self.lock();
        s.note(format!("cut {node:?}"));
        let ids: Vec<u64> = s
            .links
            .iter()
            .filter(|(_, l)| l.node == node && !l.closed)
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            s.break_link(id);
        }
    }

    /// Cuts `node` off the servers: its links break and new ones are refused until
    /// [`heal`](Self::heal).
    pub fn partition(&self, node: Node) {
        self.cut(node);
        let mut s = self.lock();
        s.note(format!("partition {node:?}"));
        if !s.partitioned.contains(&node) {
            s.partitioned.push(node);
        }
    }

    /// Ends the partition (or black hole) of `node`: what a black hole held goes on its way,
    /// in order, on the links that are still open.
    pub fn heal(&self, node: Node) {
        let mut s = self.lock();
        s.note(format!("heal {node:?}"));
        s.partitioned.retain(|n| *n != node);
        s.blackholed.retain(|n| *n != node);
        let ids: Vec<u64> = s
            .links
            .iter()
            .filter(|(_, l)| l.node == node)
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            let (up, down, close) = match s.links.get_mut(&id) {
                Some(l) => (
                    std::mem::take(&mut l.held_to_server),
                    std::mem::take(&mut l.held_to_client),
                    std::mem::replace(&mut l.held_close, false),
                ),
                None => continue,
            };
            for bytes in up {
                s.send_to_server(id, bytes);
            }
            for bytes in down {
                s.send_to_client(id, bytes);
            }
            if close {
                s.close_to_client(id);
            }
        }
    }

    /// Cuts `node` off silently: its links stay open but every byte either way is held (those
    /// on their way too), and new dials hang, until [`heal`](Self::heal). Only timeouts tell
    /// the two sides (the client's read timeout, the ensemble's session timeout), as with a
    /// network that drops packets; a link that outlives the black hole then gets every byte,
    /// late and in order, as TCP would resend them (a link that lost bytes in the middle and
    /// went on would be no TCP).
    pub fn blackhole(&self, node: Node) {
        let mut s = self.lock();
        s.note(format!("blackhole {node:?}"));
        if !s.blackholed.contains(&node) {
            s.blackholed.push(node);
        }
        for link in s.links.values_mut().filter(|l| l.node == node) {
            let up: Vec<Vec<u8>> = link.to_server.drain(..).map(|(_, b)| b).collect();
            link.held_to_server.extend(up);
            let down: Vec<Vec<u8>> = link.to_client.drain(..).map(|(_, b)| b).collect();
            link.held_to_client.extend(down);
            if link.server_close_at.take().is_some() {
                link.held_close = true;
            }
        }
    }

    /// Server `server` (0-based) crashes: its connections close and it refuses new ones until
    /// [`restart`](Self::restart).
    pub fn crash(&self, server: usize) {
        let mut s = self.lock();
        s.note(format!("crash server {server}"));
        let now = s.now;
        s.server.crash(now, server);
        s.drain_server();
    }

    /// Server `server` comes back.
    pub fn restart(&self, server: usize) {
        let mut s = self.lock();
        s.note(format!("restart server {server}"));
        let now = s.now;
        s.server.restart(now, server);
        s.drain_server();
    }

    /// The ensemble expires session `session_id` now (as if it had not heard from it).
    pub fn expire_session(&self, session_id: i64) {
        let mut s = self.lock();
        s.note(format!("expire session {session_id:#x}"));
        let now = s.now;
        s.server.expire_session(now, session_id);
        s.drain_server();
    }

    // ---- the executor -----------------------------------------------------------------------

    /// Starts `task` on the world's executor.
    pub fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        self.spawn_boxed(Box::pin(task));
    }

    fn spawn_boxed(&self, task: BoxFuture<()>) {
        let id = {
            let mut t = self.tasks.lock().unwrap_or_else(|e| e.into_inner());
            let id = t.next;
            t.next += 1;
            t.live.insert(id, Some(task));
            id
        };
        self.ready
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push_back(id);
    }

    /// Runs the world until `fut` finishes, for at most `limit` of virtual time.
    ///
    /// Errors with [`Stuck::Deadlock`] when nothing is left to happen before `fut` finishes, and
    /// [`Stuck::TimeLimit`] when the limit passes first.
    pub fn block_on<T: Send + 'static>(
        &self,
        limit: Duration,
        fut: impl Future<Output = T> + Send + 'static,
    ) -> Result<T, Stuck> {
        let slot: Arc<Mutex<Option<T>>> = Arc::new(Mutex::new(None));
        let out = slot.clone();
        self.spawn(async move {
            let v = fut.await;
            *out.lock().unwrap_or_else(|e| e.into_inner()) = Some(v);
        });
        let deadline = self.now() + limit;
        loop {
            self.run_ready();
            if let Some(v) = slot.lock().unwrap_or_else(|e| e.into_inner()).take() {
                return Ok(v);
            }
            match self.advance(deadline) {
                Advance::Moved => {}
                Advance::Idle => return Err(Stuck::Deadlock { at: self.elapsed() }),
                Advance::Limit => return Err(Stuck::TimeLimit { limit }),
            }
        }
    }

    /// Runs the world for `d` of virtual time (tasks, deliveries, timers), then returns.
    pub fn run_for(&self, d: Duration) {
        let deadline = self.now() + d;
        loop {
            self.run_ready();
            match self.advance(deadline) {
                Advance::Moved => {}
                Advance::Idle | Advance::Limit => break,
            }
        }
        let mut s = self.lock();
        if s.now < deadline {
            s.now = deadline;
        }
    }

    /// Polls every woken task until none is.
    fn run_ready(&self) {
        loop {
            let next = self
                .ready
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .pop_front();
            let Some(id) = next else {
                return;
            };
            let fut = {
                let mut t = self.tasks.lock().unwrap_or_else(|e| e.into_inner());
                match t.live.get_mut(&id) {
                    Some(slot) => slot.take(),
                    None => None,
                }
            };
            let Some(mut fut) = fut else {
                continue;
            };
            let waker = Waker::from(Arc::new(TaskWaker {
                id,
                ready: self.ready.clone(),
            }));
            let done = fut
                .as_mut()
                .poll(&mut Context::from_waker(&waker))
                .is_ready();
            let mut t = self.tasks.lock().unwrap_or_else(|e| e.into_inner());
            if done {
                t.live.remove(&id);
            } else if let Some(slot) = t.live.get_mut(&id) {
                *slot = Some(fut);
            }
        }
    }

    /// Moves the clock to the next event before `deadline` and handles everything due then.
    fn advance(&self, deadline: Instant) -> Advance {
        let mut s = self.lock();
        let Some(next) = s.next_event() else {
            return Advance::Idle;
        };
        if next > deadline {
            s.now = deadline;
            return Advance::Limit;
        }
        if next > s.now {
            s.now = next;
        }
        let now = s.now;
        s.deliver_due();
        if s.server.poll_timeout().is_some_and(|t| t <= now) {
            s.server.handle_timeout(now);
            s.drain_server();
        }
        let due: Vec<(Instant, u64)> = s
            .timers
            .range(..=(now, u64::MAX))
            .map(|(k, _)| *k)
            .collect();
        for k in due {
            if let Some(w) = s.timers.remove(&k) {
                w.wake();
            }
        }
        Advance::Moved
    }
}

enum Advance {
    Moved,
    Idle,
    Limit,
}

impl State {
    fn random(&mut self) -> u64 {
        // xorshift64*: small, fast, and the same everywhere.
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn latency(&mut self) -> Duration {
        let (lo, hi) = (self.net.min_latency, self.net.max_latency);
        if hi <= lo {
            return lo;
        }
        let span = (hi - lo).as_nanos() as u64;
        lo + Duration::from_nanos(self.random() % (span + 1))
    }

    fn note(&mut self, what: String) {
        let at = self.now - self.epoch;
        if let Some(t) = &mut self.trace {
            t.push(format!("{at:?} {what}"));
        }
    }

    fn next_event(&self) -> Option<Instant> {
        let timers = self.timers.keys().next().map(|(t, _)| *t);
        let deliveries = self
            .links
            .values()
            .flat_map(|l| {
                l.to_server
                    .front()
                    .map(|(t, _)| *t)
                    .into_iter()
                    .chain(l.to_client.front().map(|(t, _)| *t))
                    .chain(l.server_close_at)
            })
            .min();
        [timers, deliveries, self.server.poll_timeout()]
            .into_iter()
            .flatten()
            .min()
    }

    /// Hands over every byte (and close) whose arrival time has come.
    fn deliver_due(&mut self) {
        let now = self.now;
        let ids: Vec<u64> = self.links.keys().copied().collect();
        for id in ids {
            while let Some(link) = self.links.get_mut(&id) {
                let Some((t, _)) = link.to_server.front() else {
                    break;
                };
                if *t > now {
                    break;
                }
                let Some((_, bytes)) = link.to_server.pop_front() else {
                    break;
                };
                let conn = link.server_conn;
                self.server.handle_bytes(now, conn, &bytes);
                self.drain_server();
            }
            if let Some(link) = self.links.get_mut(&id) {
                let mut woke = false;
                while link.to_client.front().is_some_and(|(t, _)| *t <= now) {
                    if let Some((_, bytes)) = link.to_client.pop_front() {
                        link.inbox.extend(bytes);
                        woke = true;
                    }
                }
                if link.to_client.is_empty() && link.server_close_at.is_some_and(|t| t <= now) {
                    link.server_close_at = None;
                    link.closed = true;
                    woke = true;
                }
                if woke {
                    if let Some(w) = link.read_waker.take() {
                        w.wake();
                    }
                }
            }
        }
    }

    /// Routes what the model server asked for onto the links.
    fn drain_server(&mut self) {
        while let Some(out) = self.server.poll_output() {
            match out {
                ServerOutput::Data { conn, bytes } => {
                    if let Some(id) = self.by_server_conn.get(&conn).copied() {
                        self.send_to_client(id, bytes);
                    }
                }
                ServerOutput::Close { conn } => {
                    if let Some(id) = self.by_server_conn.get(&conn).copied() {
                        self.close_to_client(id);
                    }
                }
            }
        }
    }

    /// Whether link `id` is in a black hole now.
    fn held(&self, id: u64) -> bool {
        self.links
            .get(&id)
            .is_some_and(|l| self.blackholed.contains(&l.node))
    }

    /// Puts server bytes on link `id`, after the ones already on their way (held if it is in a
    /// black hole).
    fn send_to_client(&mut self, id: u64, bytes: Vec<u8>) {
        let held = self.held(id);
        let lat = self.latency();
        let now = self.now;
        let Some(link) = self.links.get_mut(&id) else {
            return;
        };
        if link.closed {
            return;
        }
        if held {
            link.held_to_client.push_back(bytes);
            return;
        }
        let at = link
            .to_client
            .back()
            .map_or(now + lat, |(t, _)| (*t).max(now + lat));
        link.to_client.push_back((at, bytes));
    }

    /// Puts client bytes on link `id` (held if it is in a black hole).
    fn send_to_server(&mut self, id: u64, bytes: Vec<u8>) {
        let held = self.held(id);
        let lat = self.latency();
        let now = self.now;
        let Some(link) = self.links.get_mut(&id) else {
            return;
        };
        if link.closed {
            return;
        }
        if held {
            link.held_to_server.push_back(bytes);
            return;
        }
        let at = link
            .to_server
            .back()
            .map_or(now + lat, |(t, _)| (*t).max(now + lat));
        link.to_server.push_back((at, bytes));
    }

    /// The server's close of link `id`, after the bytes before it (held in a black hole).
    fn close_to_client(&mut self, id: u64) {
        let held = self.held(id);
        let lat = self.latency();
        let now = self.now;
        let Some(link) = self.links.get_mut(&id) else {
            return;
        };
        if held {
            link.held_close = true;
            return;
        }
        let after = link.to_client.back().map_or(now, |(t, _)| *t);
        link.server_close_at = Some(after.max(now + lat));
    }

    /// Both ends of link `id` see it close now.
    fn break_link(&mut self, id: u64) {
        let now = self.now;
        let Some(link) = self.links.get_mut(&id) else {
            return;
        };
        link.closed = true;
        link.to_server.clear();
        link.to_client.clear();
        link.server_close_at = None;
        link.held_to_server.clear();
        link.held_to_client.clear();
        link.held_close = false;
        let conn = link.server_conn;
        if let Some(w) = link.read_waker.take() {
            w.wake();
        }
        self.server.handle_closed(now, conn);
        self.drain_server();
    }
}

/// The world as a zk-client [`Runtime`], for one client node.
#[derive(Debug)]
struct SimRuntime {
    world: SimWorld,
    node: Node,
}

impl Runtime for SimRuntime {
    fn connect(&self, host: String, port: u16) -> BoxFuture<io::Result<Box<dyn Transport>>> {
        let world = self.world.clone();
        let node = self.node;
        Box::pin(async move {
            if world.lock().blackholed.contains(&node) {
                // A dial into a black hole never answers; the client's connect timeout ends it.
                std::future::pending::<()>().await;
            }
            let mut s = world.lock();
            let server = usize::from(port).wrapping_sub(1);
            if s.partitioned.contains(&node) || server >= s.servers {
                s.note(format!("{node:?} dial {host}:{port} refused"));
                return Err(io::Error::new(
                    io::ErrorKind::ConnectionRefused,
                    format!("simulated: {host}:{port} unreachable"),
                ));
            }
            let now = s.now;
            let conn = s.server.accept(now, server);
            let id = s.next_link;
            s.next_link += 1;
            s.links.insert(
                id,
                Link {
                    node,
                    server_conn: conn,
                    to_server: VecDeque::new(),
                    to_client: VecDeque::new(),
                    server_close_at: None,
                    inbox: VecDeque::new(),
                    read_waker: None,
                    closed: false,
                    held_to_server: VecDeque::new(),
                    held_to_client: VecDeque::new(),
                    held_close: false,
                },
            );
            s.by_server_conn.insert(conn, id);
            s.drain_server();
            s.note(format!("{node:?} dial {host}:{port} -> link {id}"));
            Ok(Box::new(SimTransport {
                world: world.clone(),
                id,
                port,
            }) as Box<dyn Transport>)
        })
    }

    fn timer(&self, deadline: Instant) -> Box<dyn Timer> {
        Box::new(SimTimer {
            world: self.world.clone(),
            deadline,
            key: None,
        })
    }

    fn spawn(&self, task: BoxFuture<()>) -> io::Result<()> {
        self.world.spawn_boxed(task);
        Ok(())
    }

    fn now(&self) -> Instant {
        self.world.now()
    }
}

/// A client's end of a simulated link.
struct SimTransport {
    world: SimWorld,
    id: u64,
    port: u16,
}

impl Transport for SimTransport {
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        let mut s = self.world.lock();
        let Some(link) = s.links.get_mut(&self.id) else {
            return Poll::Ready(Ok(0));
        };
        if !link.inbox.is_empty() {
            let n = buf.len().min(link.inbox.len());
            for (slot, b) in buf.iter_mut().zip(link.inbox.drain(..n)) {
                *slot = b;
            }
            return Poll::Ready(Ok(n));
        }
        if link.closed {
            return Poll::Ready(Ok(0));
        }
        link.read_waker = Some(cx.waker().clone());
        Poll::Pending
    }

    fn poll_write(&mut self, _cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let mut s = self.world.lock();
        match s.links.get(&self.id) {
            Some(link) if !link.closed => {}
            _ => return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into())),
        }
        // Written; a black hole holds it until it heals.
        s.send_to_server(self.id, buf.to_vec());
        Poll::Ready(Ok(buf.len()))
    }

    fn peer_addr(&self) -> Option<SocketAddr> {
        Some(SocketAddr::from(([127, 0, 0, 1], self.port)))
    }
}

impl Drop for SimTransport {
    /// The client dropped its socket: the server sees the connection close.
    fn drop(&mut self) {
        let mut s = self.world.lock();
        let now = s.now;
        if let Some(link) = s.links.remove(&self.id) {
            s.by_server_conn.remove(&link.server_conn);
            // The model ignores a close for a connection it already let go of.
            s.server.handle_closed(now, link.server_conn);
            s.drain_server();
        }
    }
}

/// A timer on the world's clock.
struct SimTimer {
    world: SimWorld,
    deadline: Instant,
    key: Option<(Instant, u64)>,
}

impl Timer for SimTimer {
    fn reset(&mut self, deadline: Instant) {
        self.deadline = deadline;
        if let Some(k) = self.key.take() {
            self.world.lock().timers.remove(&k);
        }
    }

    fn poll_fire(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let mut s = self.world.lock();
        if s.now >= self.deadline {
            if let Some(k) = self.key.take() {
                s.timers.remove(&k);
            }
            return Poll::Ready(());
        }
        if let Some(k) = self.key.take() {
            s.timers.remove(&k);
        }
        let key = (self.deadline, s.next_timer);
        s.next_timer += 1;
        s.timers.insert(key, cx.waker().clone());
        self.key = Some(key);
        Poll::Pending
    }
}

impl Drop for SimTimer {
    fn drop(&mut self) {
        if let Some(k) = self.key.take() {
            self.world.lock().timers.remove(&k);
        }
    }
}
