//! The engine: the one owner of the session machine. Every input to the [`Session`] goes through
//! a method here, and every such method drains every output the session produced before it
//! returns (DESIGN.md's contract): bytes into the write buffer, replies, watch events and state
//! changes to the mailboxes of whoever waits for them, and the transport work only the driver
//! can do (dial, probe) into its queue of [`Action`]s. No other module sees the session or the
//! mailboxes; they call the methods below.
//!
//! Why the session sits behind a lock rather than behind a channel: a request is encoded on the
//! caller's thread straight into the session's output buffer and, when the socket takes it, written
//! out by the caller too (or, pipelined behind others, by whoever writes next: see `submit`); its
//! reply is handed to the caller's future by the driver in the same critical section that decoded
//! it. No message hops, and no wake-up of the driver per request.
//! The lock is held for in-memory work and for non-blocking socket calls, never across a wait.
//!
//! Each driver (one per session: `restart()` starts a new one) has a generation number, and every
//! driver-side method checks it under the lock, so a driver of an ended session can never touch
//! the next one, not even half-way through one of its steps.

use std::collections::hash_map::Entry as MapEntry;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use zk_core::proto::{Request, Response};
use zk_core::session::{Connect, Probe, ProbeId, SubmitOptions, WatchEnd};
use zk_core::{
    ConnId, Error, Event, HostAddr, HostFailure, RequestId, ServerVersion, Session, SessionId,
    SessionState, WatchedEvent, WatcherId,
};

use crate::caller_reads::{self, Entered, Entry, ParkGuard, ReadTurn, ReaderPlace};
use crate::obs::{self, RequestObs};
use crate::read_buf::ReadBuf;
use crate::runtime::{BoxFuture, Runtime, Transport};
use crate::task_reads::TaskReads;
use crate::tls::Connector;

/// Hashes the session's sequential u64 ids (request and watcher numbers) with one
/// multiplication: they are dense, never attacker-chosen, and SipHash cost more than the
/// rest of a reply's bookkeeping.
#[derive(Default)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(*b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

/// A map keyed by a session id.
type IdMap<K, V> = HashMap<K, V, BuildHasherDefault<IdHasher>>;

/// A raw reply: the response and the watcher it armed.
pub(crate) type Reply = (Result<Response, Error>, Option<WatcherId>);

/// A reply's mailbox.
enum ReplySlot {
    /// Nobody has asked yet, or the asker is parked with this waker; the request's span and
    /// metrics state (see `obs`).
    Waiting(Option<Waker>, RequestObs),
    /// The reply arrived.
    Done(Reply),
}

/// What a watcher receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum WatchItem {
    Event(WatchedEvent),
    /// Events may have been missed while disconnected (persistent watchers only).
    Resync,
    Ended(WatchEnd),
}

/// A watcher's mailbox. A program may hold 100,000 watches that nobody has polled yet and that
/// have not fired, so such a watcher's entry in the map is one null pointer (BENCHMARKS.md,
/// "Memory per watch"); the mailbox is allocated when its watch is first polled or an item
/// arrives, and kept from then on (a persistent watcher's next items reuse it).
type WatchSlot = Option<Box<Mailbox>>;

#[derive(Default)]
struct Mailbox {
    queue: VecDeque<WatchItem>,
    waker: Option<Waker>,
}

/// Below this many buckets the watchers' map is not worth shrinking.
const MIN_SHRINK: usize = 1024;

#[derive(Default)]
struct StateSub {
    queue: VecDeque<SessionState>,
    waker: Option<Waker>,
}

/// How far writing out the session's bytes got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WriteState {
    /// Everything is written (or there is nothing to write, or no connection).
    Done,
    /// The socket would block; the rest waits in the write buffer.
    Blocked,
    /// The socket failed; the bytes were dropped (the read side reports the closed connection).
    Failed,
}

/// Transport work the session asked for that only the driver can do.
pub(crate) enum Action {
    Dial(Connect),
    Probe(Probe),
}

/// Where the driver is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DriverState {
    /// Built but not started: listeners may subscribe before anything happens.
    NotStarted,
    Running,
    /// Stopped: nothing more will arrive.
    Done,
}

/// What one turn of the driver left it to do.
pub(crate) struct Turn {
    /// Something changed that the driver must look at again before it sleeps: a timeout was
    /// handled, the session began closing, the write failed, or there is transport work.
    /// Bytes read do not count: the read ended with the socket holding the driver's waker (or
    /// the `task_reads` router's, which wakes the driver), and everything they produced was
    /// drained and written in the same turn.
    pub(crate) progress: bool,
    /// Dials and probes to start.
    pub(crate) actions: Vec<Action>,
    /// The session's next deadline, if it has one.
    pub(crate) deadline: Option<Instant>,
    /// The deadline came earlier than the timer is armed for (or the timer is idle): move it.
    pub(crate) rearm: bool,
    /// The session is over and nothing is left to do: the driver ends (also when stale).
    pub(crate) finished: bool,
}

struct Inner {
    session: Session,
    /// The connection the session is on, shared so that callers can write their requests out
    /// themselves; the driver reads from it.
    io: Option<(ConnId, Box<dyn Transport>)>,
    write_buf: Vec<u8>,
    write_pos: usize,
    /// The deadline the driver's timer is armed for: a caller whose request brings an earlier
    /// one wakes the driver to re-arm.
    timer_at: Option<Instant>,
    /// End of the start window (`Runtime::timer_start_window`): until then the timer is armed
    /// no later than this. Set when a driver starts; `None` on runtimes without a window.
    timer_window_end: Option<Instant>,
    /// The thread the driver last ran on; `None` until the current driver's first turn.
    driver_thread: Option<std::thread::ThreadId>,
    /// The runtime's callers park while they wait (`Runtime::callers_park`): pipelined requests
    /// are written in batches, when a caller waits or by the driver's next turn.
    batch_writes: bool,
    replies: IdMap<RequestId, ReplySlot>,
    watchers: IdMap<WatcherId, WatchSlot>,
    // Ordered: subscribers are woken in subscription order, the same on every run (the
    // deterministic simulation replays a seed only if wake-ups come in the same order).
    state_subs: BTreeMap<u64, StateSub>,
    next_sub: u64,
    driver_waker: Option<Waker>,
    actions: VecDeque<Action>,
    /// Live `Client` handles; when the last goes, the session is closed.
    handles: usize,
    /// Whether the driver has closed the session because every handle was dropped.
    closing_unowned: bool,
    driver: DriverState,
    /// Bumped by `restart()`: a driver of an older generation stops without touching anything.
    generation: u64,
    /// The first request id of the current generation: an id below it belongs to a session that
    /// `restart()` replaced, and its reply slot was dropped with that session.
    first_id: RequestId,
    /// Most items one watcher's mailbox holds (see `deliver`).
    watch_queue_limit: usize,
    /// Who reads the socket where callers park: the driver, or a thread blocked on a reply
    /// (`caller_reads`). Where tasks read, `task_reads` decides instead.
    reader: ReaderPlace,
    /// What a thread or task that reads the socket reads into (allocated on its first read).
    caller_buf: ReadBuf,
    /// Where waiting tasks read for themselves (`Runtime::callers_read`): the router of the
    /// socket's readiness (`task_reads`), whose waker every read registers.
    task_reads: Option<Arc<TaskReads>>,
    /// The current connection is read through `task_reads` (a plain socket; TLS is not).
    task_reads_on: bool,
}

/// Shared between every handle and the driver.
pub(crate) struct Engine {
    inner: Mutex<Inner>,
    rt: Arc<dyn Runtime>,
    /// Plain TCP or TLS, for every connection to a server (session, probes, commands).
    connector: Connector,
    /// Numbers the retry loops' jitter seeds, so they differ per loop yet replay in a
    /// deterministic runtime.
    retries: std::sync::atomic::AtomicU64,
}

impl Engine {
    pub(crate) fn new(
        session: Session,
        rt: Arc<dyn Runtime>,
        connector: Connector,
        watch_queue_limit: usize,
    ) -> Arc<Self> {
        Arc::new(Engine {
            inner: Mutex::new(Inner {
                session,
                io: None,
                write_buf: Vec::new(),
                write_pos: 0,
                timer_at: None,
                timer_window_end: None,
                driver_thread: None,
                batch_writes: rt.callers_park(),
                replies: IdMap::default(),
                watchers: IdMap::default(),
                state_subs: BTreeMap::new(),
                next_sub: 0,
                driver_waker: None,
                actions: VecDeque::new(),
                handles: 1,
                closing_unowned: false,
                driver: DriverState::NotStarted,
                generation: 0,
                first_id: RequestId(0),
                watch_queue_limit,
                reader: ReaderPlace::default(),
                caller_buf: ReadBuf::default(),
                // Parked callers read their own way (`caller_reads`): that one wins if a runtime
                // says both.
                task_reads: (rt.callers_read() && !rt.callers_park()).then(Arc::default),
                task_reads_on: false,
            }),
            rt,
            connector,
            retries: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// A seed for one retry loop's jitter: `base` (the client's RNG seed) and a count.
    pub(crate) fn retry_seed(&self, base: u64) -> u64 {
        let n = self
            .retries
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        base ^ n.wrapping_mul(0x9e37_79b9_7f4a_7c15)
    }

    pub(crate) fn rt(&self) -> &Arc<dyn Runtime> {
        &self.rt
    }

    /// Opens a connection to `host:port` as the client is configured (TCP, or TLS with its
    /// handshake done). With TLS, the certificate is checked against `name` when given (the
    /// host the connect string named, when `host` is the address it resolved to), else `host`.
    pub(crate) fn dial(
        &self,
        host: String,
        port: u16,
        name: Option<String>,
    ) -> BoxFuture<io::Result<Box<dyn Transport>>> {
        self.connector.connect(&self.rt, host, port, name)
    }

    pub(crate) fn now(&self) -> Instant {
        self.rt.now()
    }

    /// Locks the state. A panic while the lock was held cannot leave the session half-updated in
    /// a way that matters more than losing the client, so poisoning is ignored.
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    // ---- facts ------------------------------------------------------------------------------

    pub(crate) fn state(&self) -> SessionState {
        self.lock().session.state()
    }

    pub(crate) fn session_id(&self) -> Option<SessionId> {
        self.lock().session.session_id()
    }

    pub(crate) fn negotiated_timeout(&self) -> Option<std::time::Duration> {
        self.lock().session.negotiated_timeout()
    }

    pub(crate) fn last_zxid(&self) -> i64 {
        self.lock().session.last_zxid()
    }

    pub(crate) fn current_host(&self) -> Option<HostAddr> {
        self.lock().session.current_host().cloned()
    }

    pub(crate) fn server_version(&self) -> Option<ServerVersion> {
        self.lock().session.server_version()
    }

    pub(crate) fn connect_failures(&self) -> Vec<HostFailure> {
        self.lock().session.connect_failures()
    }

    pub(crate) fn auth_failure(&self) -> Option<String> {
        self.lock().session.auth_failure().map(str::to_owned)
    }

    pub(crate) fn hosts(&self) -> Vec<HostAddr> {
        self.lock().session.hosts().to_vec()
    }

    /// The generation of the current session's driver.
    pub(crate) fn generation(&self) -> u64 {
        self.lock().generation
    }

    // ---- handles ----------------------------------------------------------------------------

    pub(crate) fn add_handle(&self) {
        self.lock().handles += 1;
    }

    /// One counted handle is gone; the last one makes the driver close the session.
    pub(crate) fn drop_handle(&self) {
        let mut g = self.lock();
        g.handles = g.handles.saturating_sub(1);
        if g.handles == 0 {
            g.wake_driver();
        }
    }

    // ---- user-side inputs -------------------------------------------------------------------

    /// Submits a request and returns its id, or the error that kept it from being sent. A lone
    /// request is written out at once when the socket takes it; one behind others in flight may
    /// be left for the driver's next turn or the next caller that waits (see below). The driver
    /// is woken only for what is left (a blocked socket, an earlier deadline, a host to dial).
    pub(crate) fn submit(
        &self,
        request: Request,
        options: SubmitOptions,
    ) -> Result<RequestId, Error> {
        let now = self.now();
        // Disabled (nothing evaluated, nothing allocated) unless a subscriber wants it.
        let span = obs::request_span(&request);
        let op = request.op_code();
        let mut g = self.lock();
        // An ended session refuses with its own reason (SessionExpired, AuthFailed, Closed).
        let id = match g.session.submit_with(now, request, options) {
            Ok(id) => id,
            Err(e) => {
                obs::refused(&span, op, &e);
                return Err(e);
            }
        };
        if g.driver == DriverState::Done {
            // Unreachable while the driver only stops with the session; refuse rather than let
            // a request wait for a driver that is gone.
            obs::refused(&span, op, &Error::Closed);
            return Err(Error::Closed);
        }
        g.replies.insert(
            id,
            ReplySlot::Waiting(None, RequestObs::start(span, id, op, now)),
        );
        // A lone request goes out now, from here: that saves the driver a wake-up and a task
        // switch per round trip. With others in flight, replies are arriving and their callers
        // submitting too; when the driver runs on this very thread, leaving the write to it lets
        // one system call carry them all (measured: a third less CPU per request on tokio's
        // current-thread runtime).
        let pipelined = g.session.in_flight() > 1;
        if pipelined && g.is_driver_thread() {
            g.wake_driver();
            return Ok(id);
        }
        let driver_needed = g.driver_needed();
        if pipelined && g.batch_writes && !driver_needed {
            // From another thread, waking the driver costs more than the write, but one write
            // per request costs a system call each. Where callers park (zk-blocking), the bytes
            // wait for whichever comes first: a caller's wait for a reply (`poll_reply` writes),
            // or the driver's next turn, which writes out everything and which the replies in
            // flight bring (the oldest request in flight always went out: it was written here
            // alone, or by a wait or a turn since). One call then carries a batch, as the raw
            // program's does. On async runtimes a request's first poll would write it anyway.
            g.drain(now);
            return Ok(id);
        }
        if g.write_out_now() != WriteState::Done || driver_needed {
            g.wake_driver();
        }
        // A request refused in order behind others (Unsupported) resolves now.
        g.drain(now);
        Ok(id)
    }

    /// Ends the session (closeSession, bounded by the close timeout); returns the state after.
    pub(crate) fn close(&self) -> SessionState {
        let now = self.now();
        let mut g = self.lock();
        g.session.close(now);
        g.drain(now);
        if g.driver == DriverState::NotStarted {
            // Nobody will drive it: end it here, telling every waiter.
            g.shut_down(now);
            return g.session.state();
        }
        // The closeSession goes out from here, as a lone request does (`submit`); whoever reads
        // the socket (the driver, registered for its readiness, or a caller reading for itself,
        // which then wakes the driver) reads the server's answer, and the driver ends the
        // session. The driver is woken only for what it alone does: a session that ended at once
        // (it was not connected, so the driver must stop), a socket that would not take the
        // bytes, or a close deadline earlier than its timer. (Inside a timer window the timer is
        // armed no later than the window's end, so a close deadline past that end moves nothing:
        // with the default close timeout, zk-blocking's sessions closed within their first second
        // wake their driver for nothing but the server's answer.)
        let ended = matches!(g.session.state(), SessionState::Lost(_));
        if ended || g.write_out_now() != WriteState::Done || g.driver_needed() {
            g.wake_driver();
        }
        g.session.state()
    }

    /// Whether the session's driver was started and has not taken a turn yet (an executor
    /// nobody runs).
    pub(crate) fn driver_not_run(&self) -> bool {
        self.lock().driver_not_run()
    }

    /// Replaces the host list of the live session.
    pub(crate) fn set_hosts(&self, hosts: Vec<HostAddr>) -> Result<(), Error> {
        let now = self.now();
        let mut g = self.lock();
        g.session.set_hosts(now, hosts)?;
        g.drain(now);
        g.wake_driver();
        Ok(())
    }

    /// Drops a local watcher (its stream or future was dropped).
    pub(crate) fn drop_watcher(&self, watcher: WatcherId) {
        let now = self.now();
        let mut g = self.lock();
        g.remove_slot(watcher);
        g.session.remove_watcher(now, watcher);
        g.drain(now);
        g.wake_driver();
    }

    // ---- mailboxes --------------------------------------------------------------------------

    /// The reply to request `id`, parking the task until it comes.
    pub(crate) fn poll_reply(self: &Arc<Self>, id: RequestId, cx: &mut Context<'_>) -> Poll<Reply> {
        let reply = self.poll_reply_locked(id, cx);
        // Where callers park, the waiting thread may read its reply itself (`caller_reads`).
        if reply.is_pending() && self.rt.callers_park() {
            caller_reads::offer(self);
        }
        reply
    }

    fn poll_reply_locked(&self, id: RequestId, cx: &mut Context<'_>) -> Poll<Reply> {
        let mut g = self.lock();
        // Done, or asked after a restart for a request of the replaced session whose outcome
        // is gone (it was not Done when the session was replaced).
        let done = g.driver == DriverState::Done || id < g.first_id;
        if let Some(router) = g.task_router() {
            let waiting = !done && !matches!(g.replies.get(&id), Some(ReplySlot::Done(..)));
            // A task waiting for the session's one reply in flight reads the socket itself
            // (`task_reads`), now if bytes are there.
            let alone = g.session.in_flight() <= 1;
            if waiting && router.take(id, cx.waker(), alone) {
                router.start_read();
                // Its own reply is looked for right after the read: waking this task for it
                // would cost its `block_on` a second turn of the reactor (async-io's).
                if let Some(ReplySlot::Waiting(w, _)) = g.replies.get_mut(&id) {
                    *w = None;
                }
                g.read_for_task(self.now());
            }
        }
        let reply = g.reply_or_wait(id, done, cx);
        if reply.is_ready() {
            g.task_leave(id);
        }
        reply
    }

    /// The caller gave up waiting for `id`; a watch its reply armed has no owner and goes.
    pub(crate) fn abandon_reply(&self, id: RequestId) {
        let now = self.now();
        let mut g = self.lock();
        g.task_leave(id);
        if let Some(ReplySlot::Done((_, Some(w)))) = g.replies.remove(&id) {
            g.remove_slot(w);
            g.session.remove_watcher(now, w);
            g.drain(now);
            g.wake_driver();
        }
    }

    /// The next item for watcher `id`, parking the task if there is none; `None` once nothing
    /// more can come (the watcher is unknown or the driver stopped).
    pub(crate) fn poll_watch(
        &self,
        id: WatcherId,
        cx: &mut Context<'_>,
    ) -> Poll<Option<WatchItem>> {
        let mut g = self.lock();
        let done = g.driver == DriverState::Done;
        let Some(slot) = g.watchers.get_mut(&id) else {
            return Poll::Ready(None);
        };
        if let Some(item) = slot.as_mut().and_then(|m| m.queue.pop_front()) {
            return Poll::Ready(Some(item));
        }
        if done {
            return Poll::Ready(None);
        }
        slot.get_or_insert_with(Box::default).waker = Some(cx.waker().clone());
        Poll::Pending
    }

    /// Forgets a one-shot watcher's mailbox after it delivered its item.
    pub(crate) fn forget_watcher(&self, id: WatcherId) {
        self.lock().remove_slot(id);
    }

    pub(crate) fn subscribe_state(&self) -> u64 {
        let mut g = self.lock();
        let id = g.next_sub;
        g.next_sub += 1;
        g.state_subs.insert(id, StateSub::default());
        id
    }

    pub(crate) fn unsubscribe_state(&self, id: u64) {
        self.lock().state_subs.remove(&id);
    }

    /// The next state change for subscriber `id`; `None` once the driver has stopped and the
    /// queue is empty.
    pub(crate) fn poll_state(&self, id: u64, cx: &mut Context<'_>) -> Poll<Option<SessionState>> {
        let mut g = self.lock();
        let done = g.driver == DriverState::Done;
        let Some(sub) = g.state_subs.get_mut(&id) else {
            return Poll::Ready(None);
        };
        if let Some(s) = sub.queue.pop_front() {
            return Poll::Ready(Some(s));
        }
        if done {
            return Poll::Ready(None);
        }
        sub.waker = Some(cx.waker().clone());
        Poll::Pending
    }

    // ---- a waiting thread reading for itself (`caller_reads`) -------------------------------

    pub(crate) fn reader_enter(self: &Arc<Self>) -> Entry {
        let mut g = self.lock();
        if g.driver == DriverState::Done {
            return Entry::Unavailable;
        }
        match g.reader.enter() {
            Entered::Read(socket) => Entry::Read(ReadTurn::new(self.clone(), socket)),
            Entered::Park => Entry::Park(ParkGuard::new(self.clone())),
            Entered::Unavailable => Entry::Unavailable,
        }
    }

    /// A reading thread's read (`read_socket`, as a caller's read: `caller_read`).
    pub(crate) fn reader_read(&self) {
        let now = self.now();
        let mut g = self.lock();
        let Some(socket) = g.reader.held_socket() else {
            return;
        };
        g.caller_read(|g, buf| g.read_socket(now, &socket, buf));
    }

    pub(crate) fn reader_leave(&self) {
        let mut g = self.lock();
        if g.reader.leave() {
            g.wake_driver();
        }
    }

    pub(crate) fn reader_unpark(&self) {
        self.lock().reader.unpark();
    }

    // ---- starting and restarting ------------------------------------------------------------

    /// Marks the driver as started; false if it already was (or has stopped).
    pub(crate) fn mark_started(&self) -> bool {
        let mut g = self.lock();
        if g.driver != DriverState::NotStarted {
            return false;
        }
        g.driver_begins(self.timer_window_end());
        true
    }

    /// Where the timer window of a driver starting now ends (`Runtime::timer_start_window`).
    fn timer_window_end(&self) -> Option<Instant> {
        let window = self.rt.timer_start_window()?;
        self.now().checked_add(window)
    }

    /// A driver could not be started: end the session for everyone waiting on it.
    pub(crate) fn start_failed(&self, e: &io::Error) {
        let now = self.now();
        let mut g = self.lock();
        tracing::error!(error = %e, "cannot start the client's driver");
        g.session.close(now);
        g.drain(now);
        g.shut_down(now);
    }

    /// Puts a new session in place of the ended one (restart); returns the new generation. The
    /// old driver, whatever it is doing, is stale from here on.
    pub(crate) fn replace_session(&self, mut session: Session) -> u64 {
        let mut g = self.lock();
        // Reply futures and watch handles of the old session may still be alive and, when
        // dropped, name their ids: the new session's ids must not collide with them.
        session.continue_ids_from(g.session.next_request_id());
        g.first_id = session.next_request_id();
        g.set_io(None);
        g.session = session;
        g.driver_begins(self.timer_window_end());
        g.generation += 1;
        // The old session was closed first, so each of its requests has its outcome: keep
        // those for futures that have not looked yet (their ids cannot collide, see above).
        g.replies
            .retain(|_, slot| matches!(slot, ReplySlot::Done(..)));
        // A fresh map, not `clear()`: the old one's buckets would stay allocated.
        g.watchers = IdMap::default();
        g.actions.clear();
        g.closing_unowned = false;
        // The old driver's thread may go on to run other tasks (zk-blocking reuses driver
        // threads): until the new driver's first turn, no thread is the driver's.
        g.driver_thread = None;
        // The old driver may be parked with nothing left to wake it: wake it so that it sees it
        // is stale and ends, instead of lingering in the executor.
        if let Some(w) = g.driver_waker.take() {
            w.wake();
        }
        g.generation
    }

    // ---- driver-side inputs: each checks the generation under the lock ----------------------

    /// Locks the state for the driver of generation `gen`; `None` if it is stale.
    fn lock_for(&self, gen: u64) -> Option<MutexGuard<'_, Inner>> {
        let g = self.lock();
        (g.generation == gen).then_some(g)
    }

    pub(crate) fn driver_connected(&self, gen: u64, conn: ConnId, tcp: Box<dyn Transport>) {
        let now = self.now();
        let Some(mut g) = self.lock_for(gen) else {
            return;
        };
        obs::connected(conn.0);
        g.set_io(Some((conn, tcp)));
        g.session.handle_connected(now, conn);
        g.drain(now);
    }

    pub(crate) fn driver_connect_failed(&self, gen: u64, conn: ConnId, e: &io::Error) {
        let now = self.now();
        let Some(mut g) = self.lock_for(gen) else {
            return;
        };
        obs::connection_failed(conn.0, e, false);
        g.session.handle_connect_failed(now, conn, &e.to_string());
        g.drain(now);
    }

    pub(crate) fn driver_probe_result(&self, gen: u64, id: ProbeId, result: Result<&str, ()>) {
        let now = self.now();
        let Some(mut g) = self.lock_for(gen) else {
            return;
        };
        g.session.handle_probe_result(now, id, result);
        g.drain(now);
    }

    /// One turn of the driver, under one lock: reads everything the socket has ready into the
    /// session, fires a timeout that is due, closes the session once every handle is gone,
    /// writes what is left, registers the driver's waker, and reports the transport work to do
    /// and the next deadline. `timer_fired` says the driver's timer fired since the last turn;
    /// `dialing` that a connection attempt is still under way. `None` if the driver is stale
    /// (restart() replaced its session).
    pub(crate) fn driver_step(
        &self,
        gen: u64,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf,
        timer_fired: bool,
        dialing: bool,
    ) -> Option<Turn> {
        let now = self.now();
        let mut g = self.lock_for(gen)?;
        g.driver_thread = Some(std::thread::current().id());
        if timer_fired {
            g.timer_at = None;
        }
        let router = g.task_router();
        let driver_reads = match &router {
            Some(router) => {
                let reads = router.driver_turn(now, cx.waker());
                if reads {
                    router.start_read();
                }
                reads
            }
            None => g.reader.driver_turn(now),
        };
        if driver_reads {
            g.read_ready(now, cx, buf, router.as_ref());
        }
        let mut progress = false;
        if g.session.poll_timeout().is_some_and(|t| t <= now) {
            g.session.handle_timeout(now);
            g.drain(now);
            progress = true;
        }
        if g.handles == 0 && !g.closing_unowned {
            // Every Client handle is gone: end the session as kazoo's stop() would.
            g.closing_unowned = true;
            g.session.close(now);
            g.drain(now);
            progress = true;
        }
        if g.write_out(cx) == WriteState::Failed {
            // The read side reports the broken connection.
            progress = true;
        }
        if !g
            .driver_waker
            .as_ref()
            .is_some_and(|w| w.will_wake(cx.waker()))
        {
            g.driver_waker = Some(cx.waker().clone());
        }
        let actions: Vec<Action> = if g.actions.is_empty() {
            Vec::new()
        } else {
            g.actions.drain(..).collect()
        };
        progress |= !actions.is_empty();
        let session_deadline = g.session.poll_timeout();
        // A thread or task reading for itself: the driver looks at it every tick
        // (`caller_reads`, `task_reads`).
        let look_at = match &router {
            Some(router) => router.tick_at(),
            None => g.reader.tick_at(),
        };
        let deadline = match (session_deadline, look_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        // In the session's first moments the timer is armed no later than the window's end
        // (`Runtime::timer_start_window`): the deadlines a short session brings, each earlier
        // than the last, then move nothing.
        let deadline = match g.timer_window_end.filter(|&end| now < end) {
            Some(end) => deadline.map(|d| d.min(end)),
            None => deadline,
        };
        // Move the timer only when the deadline comes earlier (or the timer is idle): a later
        // deadline is handled by letting the timer fire early and re-checking the clock.
        let rearm = match deadline {
            Some(d) => g.timer_at.is_none_or(|t| d < t),
            None => false,
        };
        g.timer_at = if rearm {
            deadline
        } else {
            g.timer_at.and(deadline)
        };
        let finished = session_deadline.is_none()
            && !dialing
            && actions.is_empty()
            && matches!(g.session.state(), SessionState::Lost(_));
        if finished {
            g.drain(now);
            g.set_io(None);
            g.shut_down(now);
        }
        Some(Turn {
            progress,
            actions,
            deadline,
            rearm,
            finished,
        })
    }

    /// The peer address of connection `conn`, if it is the current one.
    pub(crate) fn peer_of(&self, conn: ConnId) -> Option<std::net::SocketAddr> {
        let g = self.lock();
        g.io.as_ref()
            .filter(|(id, _)| *id == conn)
            .and_then(|(_, tcp)| tcp.peer_addr())
    }

    /// The session's next deadline, and whether the timer must move to it (it is earlier than
    /// the one armed, or none is). `None` if the driver is stale.
    /// The driver of generation `gen` was dropped: if it had not finished, nothing will drive
    /// this session again, so end it for everyone waiting.
    pub(crate) fn driver_dropped(&self, gen: u64) {
        let now = self.now();
        if let Some(mut g) = self.lock_for(gen) {
            if g.driver != DriverState::Done {
                g.shut_down(now);
            }
        }
    }
}

impl Inner {
    /// A driver starts for this session (the first, or a restart's): nothing is armed yet, and
    /// the timer window runs until `timer_window_end`.
    fn driver_begins(&mut self, timer_window_end: Option<Instant>) {
        self.driver = DriverState::Running;
        self.timer_at = None;
        self.timer_window_end = timer_window_end;
    }

    /// Removes a watcher's mailbox. The map gives its memory back once it is below a quarter
    /// full (hash maps never shrink by themselves, and 100,000 fired watches would otherwise
    /// leave their buckets behind); shrinking to half keeps that amortised O(1) per removal.
    fn remove_slot(&mut self, id: WatcherId) {
        self.watchers.remove(&id);
        if self.watchers.capacity() > MIN_SHRINK
            && self.watchers.len() * 4 < self.watchers.capacity()
        {
            self.watchers.shrink_to(self.watchers.len() * 2);
        }
    }

    /// Attaches the connection (or detaches it, dropping unsent bytes). Where callers park, a
    /// second handle on its socket lets a waiting thread read it (`caller_reads`).
    fn set_io(&mut self, io: Option<(ConnId, Box<dyn Transport>)>) {
        let socket = match &io {
            Some((_, tcp)) if self.batch_writes => tcp.socket(),
            _ => None,
        };
        self.reader.attach(socket);
        if let Some(router) = &self.task_reads {
            // Only a plain socket, whose bytes anyone may read, is read by tasks; the second
            // handle that says so is not needed beyond that.
            self.task_reads_on = io.as_ref().is_some_and(|(_, tcp)| tcp.socket().is_some());
            router.reset(self.task_reads_on);
        }
        self.io = io;
        self.clear_write_buf();
    }

    fn clear_write_buf(&mut self) {
        self.write_buf.clear();
        self.write_pos = 0;
    }

    /// Request `id`'s reply if it came (or `done`: it never will), else the task's waker waits
    /// in its slot.
    fn reply_or_wait(&mut self, id: RequestId, done: bool, cx: &mut Context<'_>) -> Poll<Reply> {
        if done && !matches!(self.replies.get(&id), Some(ReplySlot::Done(..))) {
            // It never will come (the cold path: `entry` below may grow the map).
            return Poll::Ready((Err(Error::Closed), None));
        }
        // One lookup whether the reply is there to take or the waker to store.
        let slot = match self.replies.entry(id) {
            MapEntry::Occupied(slot) => slot,
            MapEntry::Vacant(slot) => {
                slot.insert(ReplySlot::Waiting(
                    Some(cx.waker().clone()),
                    RequestObs::untracked(),
                ));
                self.flush_before_waiting();
                return Poll::Pending;
            }
        };
        if matches!(slot.get(), ReplySlot::Done(..)) {
            return match slot.remove() {
                ReplySlot::Done(reply) => Poll::Ready(reply),
                ReplySlot::Waiting(..) => Poll::Ready((Err(Error::Closed), None)),
            };
        }
        if let ReplySlot::Waiting(w, _) = slot.into_mut() {
            // Update the waker in place: no clone when the same task polls again.
            if !w.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                *w = Some(cx.waker().clone());
            }
        }
        self.flush_before_waiting();
        Poll::Pending
    }

    /// The router, when waiting tasks read the current connection themselves (`task_reads`).
    fn task_router(&self) -> Option<Arc<TaskReads>> {
        self.task_reads.clone().filter(|_| self.task_reads_on)
    }

    /// The task waiting for `id` stops waiting: it leaves the reader's place if it held it, and
    /// wakes the driver if that left a readiness for nobody (`TaskReads::leave`).
    fn task_leave(&mut self, id: RequestId) {
        if let Some(router) = &self.task_reads {
            if router.leave(id) {
                self.wake_driver();
            }
        }
    }

    /// A waiting task's read (`task_reads`, as a caller's read: `caller_read`), which leaves the
    /// router registered for the next readiness.
    fn read_for_task(&mut self, now: Instant) {
        if let Some(router) = self.task_reads.clone() {
            self.caller_read(|g, buf| g.read_routed(now, &router, buf));
        }
    }

    /// A read by a caller (a blocking thread or a waiting task) instead of the driver: `read`
    /// fills the session from the socket through the callers' buffer; then, as after the
    /// driver's read, the bytes the session answered with go out, and the driver is woken for
    /// what only it does (an earlier deadline, a host to dial, a socket that would not take the
    /// bytes or failed, a session or connection that ended).
    fn caller_read(&mut self, read: impl FnOnce(&mut Self, &mut ReadBuf)) {
        let mut buf = std::mem::take(&mut self.caller_buf);
        let state = self.session.state();
        read(self, &mut buf);
        self.caller_buf = buf;
        let ended = self.session.state() != state || self.io.is_none();
        if ended || self.write_out_now() != WriteState::Done || self.driver_needed() {
            self.wake_driver();
        }
    }

    /// Reads everything the socket has ready, registering `router`'s waker for the next
    /// readiness (it wakes a waiting task or the driver).
    fn read_routed(&mut self, now: Instant, router: &Arc<TaskReads>, buf: &mut ReadBuf) {
        let waker = Waker::from(router.clone());
        let mut cx = Context::from_waker(&waker);
        self.read_with(now, buf, |tcp, buf| tcp.poll_read(&mut cx, buf));
    }

    /// Reads everything the socket has ready into the session, draining after each read. Ends
    /// with the socket holding the driver's waker (or, where tasks read, `router`'s: the turn's
    /// `task_router`, which wakes the driver while no task holds the place), or with no socket.
    fn read_ready(
        &mut self,
        now: Instant,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf,
        router: Option<&Arc<TaskReads>>,
    ) {
        match router {
            Some(router) => self.read_routed(now, router, buf),
            None => self.read_with(now, buf, |tcp, buf| tcp.poll_read(cx, buf)),
        }
    }

    /// `read_ready` for a thread reading for itself: through the second handle on the socket,
    /// which registers nobody for readiness (the thread waits on it with `poll(2)`).
    fn read_socket(&mut self, now: Instant, socket: &std::net::TcpStream, buf: &mut ReadBuf) {
        // One read per readiness unless it fills the buffer: a short read emptied the socket,
        // and `poll(2)` is level-triggered, so nothing is lost by not reading on to "would
        // block" (the driver must, for async-io's one-shot registration; this saves that second
        // `recvfrom` per batch).
        let mut emptied = false;
        self.read_with(now, buf, |_, buf| loop {
            if emptied {
                return Poll::Pending;
            }
            match std::io::Read::read(&mut &*socket, buf) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Poll::Pending,
                Ok(n) => {
                    emptied = n < buf.len();
                    return Poll::Ready(Ok(n));
                }
                r => return Poll::Ready(r),
            }
        });
    }

    /// Reads with `read` until it is pending or the connection ends, feeding and draining the
    /// session after each read.
    fn read_with(
        &mut self,
        now: Instant,
        buf: &mut ReadBuf,
        mut read: impl FnMut(&mut Box<dyn Transport>, &mut [u8]) -> Poll<io::Result<usize>>,
    ) {
        while let Some((id, tcp)) = &mut self.io {
            let id = *id;
            match read(tcp, buf.space()) {
                Poll::Pending => break,
                Poll::Ready(Ok(0)) => {
                    obs::connection_failed(id.0, &"closed by peer", true);
                    self.set_io(None);
                    self.session.handle_closed(now, id);
                    self.drain(now);
                }
                Poll::Ready(Ok(n)) => match buf.filled(n) {
                    Some(bytes) => {
                        self.session.handle_bytes(now, id, bytes);
                        self.drain(now);
                        buf.took(n);
                    }
                    // A transport that says it read more than it was given broke its
                    // contract; the stream can no longer be trusted to be in step: its
                    // connection fails.
                    None => self.read_failed(
                        now,
                        id,
                        &io::Error::new(
                            io::ErrorKind::InvalidData,
                            "the transport reported more bytes than the read buffer holds",
                        ),
                    ),
                },
                Poll::Ready(Err(e)) => self.read_failed(now, id, &e),
            }
        }
    }

    /// Ends connection `id` after its read failed with `e`.
    fn read_failed(&mut self, now: Instant, id: ConnId, e: &io::Error) {
        obs::connection_failed(id.0, e, self.session.state().is_connected());
        self.set_io(None);
        if self.session.state().is_connected() {
            self.session.handle_closed(now, id);
        } else {
            // Before the session is up, the error is why this host failed: a TLS server
            // refusing our certificate says so only after our handshake ended (TLS 1.3), so
            // that cause would be lost as a plain close.
            self.session.handle_connect_failed(now, id, &e.to_string());
        }
        self.drain(now);
    }

    /// Moves the session's outgoing bytes into the write buffer and writes as much as the socket
    /// takes. With a no-op waker (a caller) a blocked socket just stays blocked; the driver,
    /// polling with its own waker, registers for writability.
    fn write_out(&mut self, cx: &mut Context<'_>) -> WriteState {
        if self.write_pos == self.write_buf.len() {
            self.clear_write_buf();
        }
        loop {
            let before = self.write_buf.len();
            let Some(conn) = self.session.poll_transmit(&mut self.write_buf) else {
                break;
            };
            if self.io.as_ref().map(|(id, _)| *id) != Some(conn) {
                // Bytes for a connection we no longer hold: the session learns of its end
                // through handle_closed.
                self.write_buf.truncate(before);
            }
        }
        let Some((_, tcp)) = &mut self.io else {
            self.clear_write_buf();
            return WriteState::Done;
        };
        while self.write_pos < self.write_buf.len() {
            match tcp.poll_write(cx, &self.write_buf[self.write_pos..]) {
                Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => {
                    self.clear_write_buf();
                    return WriteState::Failed;
                }
                Poll::Ready(Ok(n)) => self.write_pos += n,
                Poll::Pending => return WriteState::Blocked,
            }
        }
        // A TLS transport may still hold records the socket did not take.
        match tcp.poll_flush(cx) {
            Poll::Ready(Ok(())) => WriteState::Done,
            Poll::Ready(Err(_)) => {
                self.clear_write_buf();
                WriteState::Failed
            }
            Poll::Pending => WriteState::Blocked,
        }
    }

    /// Whether the driver must run for what the session now wants: its next deadline is earlier
    /// than the timer is armed for (or no timer is), or a host to dial or probe.
    fn driver_needed(&self) -> bool {
        let earlier_deadline = match (self.session.poll_timeout(), self.timer_at) {
            (Some(next), Some(armed)) => next < armed,
            (Some(_), None) => true,
            (None, _) => false,
        };
        earlier_deadline || self.session.wants_transport()
    }

    fn driver_not_run(&self) -> bool {
        self.driver == DriverState::Running && self.driver_thread.is_none()
    }

    /// Whether this is the thread the driver last ran on.
    fn is_driver_thread(&self) -> bool {
        self.driver_thread == Some(std::thread::current().id())
    }

    /// A parking caller is about to wait for a reply: requests `submit` left for the driver's
    /// next turn go out now, from here, so that no caller sleeps on bytes still in memory.
    fn flush_before_waiting(&mut self) {
        if !self.batch_writes || self.is_driver_thread() {
            return;
        }
        if self.write_out_now() != WriteState::Done {
            self.wake_driver();
        }
    }

    /// `write_out` from a caller's thread: no task waits on the socket here, so what it cannot
    /// take is left for the driver (the caller wakes it).
    fn write_out_now(&mut self) -> WriteState {
        self.write_out(&mut Context::from_waker(crate::runtime::unwaited()))
    }

    fn wake_driver(&mut self) {
        if let Some(w) = &self.driver_waker {
            w.wake_by_ref();
        }
    }

    /// Drains every output of the session except the bytes (which `write_out` takes when a
    /// socket is there to take them): connections to drop are dropped here, dials and probes
    /// queue for the driver, events go to their mailboxes.
    fn drain(&mut self, now: Instant) {
        while let Some(conn) = self.session.poll_close() {
            if self.io.as_ref().is_some_and(|(id, _)| *id == conn) {
                obs::connection_failed(conn.0, &"closed by the session", true);
                self.set_io(None);
            }
            self.actions
                .retain(|a| !matches!(a, Action::Dial(c) if c.conn == conn));
        }
        let mut woke = false;
        while let Some(c) = self.session.poll_connect() {
            self.actions.push_back(Action::Dial(c));
            woke = true;
        }
        while let Some(p) = self.session.poll_probe() {
            self.actions.push_back(Action::Probe(p));
            woke = true;
        }
        if woke {
            self.wake_driver();
        }
        self.dispatch_events(now);
        obs::gauges(
            self.watchers.len(),
            self.session.in_flight(),
            self.session.queued(),
        );
    }

    /// Hands every pending session event to whoever waits for it. Every event kind is named, so
    /// a new one cannot be dropped unnoticed.
    fn dispatch_events(&mut self, now: Instant) {
        while let Some(ev) = self.session.poll_event() {
            match ev {
                Event::Reply {
                    id,
                    result,
                    watcher,
                } => match self.replies.get_mut(&id) {
                    Some(slot) => {
                        if let Some(w) = watcher {
                            self.watchers.entry(w).or_default();
                        }
                        // The waker and the metrics state are taken out and the reply written
                        // over the slot in place: the old slot is not moved out whole.
                        let waker = match slot {
                            ReplySlot::Waiting(w, o) => {
                                std::mem::replace(o, RequestObs::untracked()).finish(&result, now);
                                w.take()
                            }
                            ReplySlot::Done(..) => None,
                        };
                        *slot = ReplySlot::Done((result, watcher));
                        if let Some(waker) = waker {
                            waker.wake();
                        }
                    }
                    None => {
                        // The caller gave up on this request; a watch it armed has no owner.
                        if let Some(w) = watcher {
                            self.session.remove_watcher(now, w);
                        }
                    }
                },
                Event::Watch { watcher, event } => {
                    self.deliver(watcher, WatchItem::Event(event));
                }
                Event::WatchResync { watcher } => {
                    self.deliver(watcher, WatchItem::Resync);
                }
                Event::WatchEnded { watcher, reason } => {
                    self.deliver(watcher, WatchItem::Ended(reason));
                }
                Event::State(state) => {
                    obs::state_changed(state);
                    for sub in self.state_subs.values_mut() {
                        sub.queue.push_back(state);
                        if let Some(w) = sub.waker.take() {
                            w.wake();
                        }
                    }
                }
                other => {
                    // zk-core's Event is non_exhaustive; an event this client does not know yet
                    // is a bug to fix here, not something to drop silently.
                    tracing::error!(event = ?other, "session event the client does not handle");
                    debug_assert!(false, "unhandled session event {other:?}");
                }
            }
        }
    }

    fn deliver(&mut self, watcher: WatcherId, item: WatchItem) {
        if let Some(slot) = self.watchers.get_mut(&watcher) {
            let slot = slot.get_or_insert_with(Box::default);
            let resync = matches!(item, WatchItem::Resync);
            if resync && matches!(slot.queue.back(), Some(WatchItem::Resync)) {
                // One unread Resync already says everything a second one would.
                return;
            }
            if slot.queue.len() >= self.watch_queue_limit {
                // The consumer fell this far behind: rather than hold events without bound (or
                // hold up anyone else), what it has not read is replaced by one Resync, after
                // which it re-reads. An end is never queued before this point (nothing follows
                // it), so none is lost here.
                slot.queue.clear();
                slot.queue.push_back(WatchItem::Resync);
                if resync {
                    return;
                }
            }
            slot.queue.push_back(item);
            if let Some(w) = slot.waker.take() {
                w.wake();
            }
        }
    }

    /// Wakes everyone still waiting: the driver has stopped and nothing more will arrive.
    fn shut_down(&mut self, now: Instant) {
        self.driver = DriverState::Done;
        let closed = Err(Error::Closed);
        for slot in self.replies.values_mut() {
            if let ReplySlot::Waiting(w, o) = slot {
                if let Some(w) = w.take() {
                    w.wake();
                }
                std::mem::replace(o, RequestObs::untracked()).finish(&closed, now);
                *slot = ReplySlot::Done((Err(Error::Closed), None));
            }
        }
        for slot in self.watchers.values_mut().flatten() {
            if let Some(w) = slot.waker.take() {
                w.wake();
            }
        }
        for sub in self.state_subs.values_mut() {
            if let Some(w) = sub.waker.take() {
                w.wake();
            }
        }
    }
}
