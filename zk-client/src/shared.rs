//! The state every handle shares with the driver: the session machine itself, behind one mutex,
//! and the mailboxes that carry its events to whoever waits for them.
//!
//! Why the session sits behind the lock rather than behind a channel: a request is encoded on the
//! caller's thread straight into the session's output buffer and, when the socket takes it, written
//! out by the caller too; its reply is handed to the caller's future by the driver in the same
//! critical section that decoded it. No message hops, and no wake-up of the driver per request.
//! The lock is held for in-memory work and for non-blocking socket calls, never across a wait.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use zk_core::proto::{Request, Response};
use zk_core::session::{SubmitOptions, WatchEnd};
use zk_core::{ConnId, Error, Event, RequestId, Session, SessionState, WatchedEvent, WatcherId};

use crate::runtime::Transport;

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
pub(crate) type IdMap<K, V> = HashMap<K, V, BuildHasherDefault<IdHasher>>;

/// A reply's mailbox.
pub(crate) enum ReplySlot {
    /// Nobody has asked yet, or the asker is parked with this waker.
    Waiting(Option<Waker>),
    /// The reply arrived.
    Done(Result<Response, Error>, Option<WatcherId>),
}

/// What a watcher receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum WatchItem {
    Event(WatchedEvent),
    Ended(WatchEnd),
}

#[derive(Default)]
pub(crate) struct WatchSlot {
    pub(crate) queue: VecDeque<WatchItem>,
    pub(crate) waker: Option<Waker>,
}

#[derive(Default)]
pub(crate) struct StateSub {
    pub(crate) queue: VecDeque<SessionState>,
    pub(crate) waker: Option<Waker>,
}

/// How far writing out the session's bytes got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WriteState {
    /// Everything is written (or there is nothing to write, or no connection).
    Done,
    /// The socket would block; the rest waits in the write buffer.
    Blocked,
    /// The socket failed; the bytes were dropped (the read side reports the closed connection).
    Failed,
}

pub(crate) struct Inner {
    pub(crate) session: Session,
    /// The connection the session is on, shared so that callers can write their requests out
    /// themselves; the driver reads from it.
    pub(crate) io: Option<(ConnId, Box<dyn Transport>)>,
    write_buf: Vec<u8>,
    write_pos: usize,
    /// The deadline the driver's timer is armed for: a caller whose request brings an earlier
    /// one wakes the driver to re-arm.
    pub(crate) timer_at: Option<Instant>,
    /// The thread the driver last ran on.
    pub(crate) driver_thread: Option<std::thread::ThreadId>,
    pub(crate) replies: IdMap<RequestId, ReplySlot>,
    pub(crate) watchers: IdMap<WatcherId, WatchSlot>,
    pub(crate) state_subs: HashMap<u64, StateSub>,
    next_sub: u64,
    pub(crate) driver_waker: Option<Waker>,
    /// Live `Client` handles; when the last goes, the session is closed.
    pub(crate) handles: usize,
    pub(crate) driver_done: bool,
    /// Bumped by `restart()`: a driver of an older generation stops without touching anything.
    pub(crate) generation: u64,
}

/// Shared between every handle and the driver.
pub(crate) struct Shared {
    inner: Mutex<Inner>,
    clock: Box<dyn Fn() -> Instant + Send + Sync>,
}

impl Shared {
    pub(crate) fn new(
        session: Session,
        clock: Box<dyn Fn() -> Instant + Send + Sync>,
    ) -> Arc<Self> {
        Arc::new(Shared {
            inner: Mutex::new(Inner {
                session,
                io: None,
                write_buf: Vec::new(),
                write_pos: 0,
                timer_at: None,
                driver_thread: None,
                replies: IdMap::default(),
                watchers: IdMap::default(),
                state_subs: HashMap::new(),
                next_sub: 0,
                driver_waker: None,
                handles: 1,
                driver_done: false,
                generation: 0,
            }),
            clock,
        })
    }

    pub(crate) fn now(&self) -> Instant {
        (self.clock)()
    }

    /// Locks the state. A panic while the lock was held cannot leave the session half-updated in
    /// a way that matters more than losing the client, so poisoning is ignored.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Submits a request and returns its id, or the error that kept it from being sent. The
    /// request is written out at once when the socket takes it; the driver is woken only for what
    /// is left (a blocked socket, an earlier deadline, a host to dial).
    pub(crate) fn submit(
        &self,
        request: Request,
        options: SubmitOptions,
    ) -> Result<RequestId, Error> {
        let now = self.now();
        let mut g = self.lock();
        // An ended session refuses with its own reason (SessionExpired, AuthFailed, Closed).
        let id = g.session.submit_with(now, request, options)?;
        if g.driver_done {
            // Unreachable while the driver only stops with the session; refuse rather than let
            // a request wait for a driver that is gone.
            return Err(Error::Closed);
        }
        g.replies.insert(id, ReplySlot::Waiting(None));
        // A lone request goes out now, from here: that saves the driver a wake-up and a task
        // switch per round trip. With others in flight, replies are arriving and their callers
        // submitting too; when the driver runs on this very thread, leaving the write to it lets
        // one system call carry them all (measured: a third less CPU per request on tokio's
        // current-thread runtime), while from another thread the hand-off costs more than the
        // write (async-std, smol, zk-blocking).
        if g.session.in_flight() > 1 && g.driver_thread == Some(std::thread::current().id()) {
            g.wake_driver();
            return Ok(id);
        }
        let mut cx = Context::from_waker(Waker::noop());
        let written = g.write_out(&mut cx);
        let earlier_deadline = match (g.session.poll_timeout(), g.timer_at) {
            (Some(next), Some(armed)) => next < armed,
            (Some(_), None) => true,
            (None, _) => false,
        };
        if written != WriteState::Done || earlier_deadline || g.session.wants_transport() {
            g.wake_driver();
        }
        // A request refused in order behind others (Unsupported) resolves now.
        g.dispatch_events(now);
        Ok(id)
    }

    pub(crate) fn subscribe_state(&self) -> u64 {
        let mut g = self.lock();
        let id = g.next_sub;
        g.next_sub += 1;
        g.state_subs.insert(id, StateSub::default());
        id
    }

    /// Drops a local watcher (its stream or future was dropped).
    pub(crate) fn drop_watcher(&self, watcher: WatcherId) {
        let now = self.now();
        let mut g = self.lock();
        g.watchers.remove(&watcher);
        g.session.remove_watcher(now, watcher);
        g.wake_driver();
    }
}

impl Inner {
    /// Attaches the connection (or detaches it, dropping unsent bytes).
    pub(crate) fn set_io(&mut self, io: Option<(ConnId, Box<dyn Transport>)>) {
        self.io = io;
        self.clear_write_buf();
    }

    fn clear_write_buf(&mut self) {
        self.write_buf.clear();
        self.write_pos = 0;
    }

    /// Moves the session's outgoing bytes into the write buffer and writes as much as the socket
    /// takes. With a no-op waker (a caller) a blocked socket just stays blocked; the driver,
    /// polling with its own waker, registers for writability.
    pub(crate) fn write_out(&mut self, cx: &mut Context<'_>) -> WriteState {
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
        WriteState::Done
    }

    pub(crate) fn wake_driver(&mut self) {
        if let Some(w) = &self.driver_waker {
            w.wake_by_ref();
        }
    }

    /// Hands every pending session event to whoever waits for it.
    pub(crate) fn dispatch_events(&mut self, now: Instant) {
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
                        let old = std::mem::replace(slot, ReplySlot::Done(result, watcher));
                        if let ReplySlot::Waiting(Some(waker)) = old {
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
                    if let Some(slot) = self.watchers.get_mut(&watcher) {
                        slot.queue.push_back(WatchItem::Event(event));
                        if let Some(w) = slot.waker.take() {
                            w.wake();
                        }
                    }
                }
                Event::WatchEnded { watcher, reason } => {
                    if let Some(slot) = self.watchers.get_mut(&watcher) {
                        slot.queue.push_back(WatchItem::Ended(reason));
                        if let Some(w) = slot.waker.take() {
                            w.wake();
                        }
                    }
                }
                Event::State(state) => {
                    for sub in self.state_subs.values_mut() {
                        sub.queue.push_back(state);
                        if let Some(w) = sub.waker.take() {
                            w.wake();
                        }
                    }
                }
                _ => {}
            }
        }
    }

    /// Wakes everyone still waiting: the driver has stopped and nothing more will arrive.
    pub(crate) fn shut_down(&mut self) {
        self.driver_done = true;
        for slot in self.replies.values_mut() {
            if let ReplySlot::Waiting(w) = slot {
                if let Some(w) = w.take() {
                    w.wake();
                }
                *slot = ReplySlot::Done(Err(Error::Closed), None);
            }
        }
        for slot in self.watchers.values_mut() {
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
