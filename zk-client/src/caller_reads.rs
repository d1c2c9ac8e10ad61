//! For a runtime whose callers block their own thread while they wait (zk-blocking): the waiting
//! thread reads the session's socket itself, as a program on a bare blocking socket does, instead
//! of sleeping until the driver's thread has read its reply and woken it. On a client pinned to
//! one core that hand-off is a context switch and a futex call per batch of replies.
//!
//! How a blocking `block_on` uses it: it polls its future; a future left waiting for a reply of
//! a client whose runtime parks its callers leaves that client's [`ReadOffer`] in a thread-local
//! ([`take_offer`]). The thread then [`enter`](ReadOffer::enter)s: it becomes the session's
//! *reader* and gets a [`ReadTurn`] with the socket to wait on (`poll(2)`), or learns that another
//! thread reads for it (it parks, and is woken when that thread reads its reply), or that the
//! connection cannot be read this way (TLS, none yet: it parks, and the driver reads). After a
//! readiness it [`read`](ReadTurn::read)s, which reads the socket and hands every reply and
//! event to its waiter, under the client's lock, exactly as the driver would, and then drops the
//! turn (which leaves the place) before it polls its future again: the place is held only by a
//! thread that waits on the socket or reads it, never by one that runs other code (a future may
//! run a user's callback for as long as it likes). Only replies make offers: a watch may wait for
//! hours, and a thread that sits in the reader's place that long would make every other thread's
//! reply cost it a wake-up (the driver serves watch waiters, as before).
//!
//! The driver does not read while a thread holds the reader's place (two readers would both be
//! woken by every batch). Nobody may be left without a reader for long, which three rules see to:
//! - A reader waits on the socket with no timeout but is woken by every waker call (its own
//!   wake-up channel), and a connection the client drops is shut down, which wakes it too.
//! - While a thread holds the place, the driver looks at it every millisecond (`READER_TICK`).
//!   A reader that leaves while the driver looks leaves the place *idle*, without waking anyone
//!   (the same thread's next wait usually takes it back within microseconds); the driver's next
//!   look finds it idle and reads again itself. So bytes that arrive between two blocking calls
//!   (a watch event, another thread's reply) wait at most about a millisecond.
//! - When one wait has held the place for `LONG_WAIT_TICKS` looks in a row (a server that does
//!   not answer), the driver stops looking, and a reader that leaves then hands the place back
//!   to the driver and wakes it; so does a reader that leaves while other threads are parked on
//!   this client. (Waits of a few milliseconds, a distant server's round trips, keep the looks
//!   going, so a thread making call after call never wakes the driver.)

use std::net::TcpStream;
use std::sync::{Arc, Weak};
use std::time::Duration;

use crate::engine::Engine;

/// How often the driver looks at a reader's place while a thread holds it (see the module
/// documentation): the longest that bytes can wait unread after a blocking call returns.
pub(crate) const READER_TICK: Duration = Duration::from_millis(1);

/// How many looks in a row at one unchanged wait make it a long wait (see the module
/// documentation): 50 ms at `READER_TICK`, 500 ms at `task_reads`' `LOOK_EVERY`.
pub(crate) const LONG_WAIT_TICKS: u32 = 50;

thread_local! {
    /// The client the last future polled on this thread waits on, if its runtime parks callers.
    /// Weak: a thread-local must not keep a dropped client's socket open.
    static OFFER: std::cell::RefCell<Option<Weak<Engine>>> = const { std::cell::RefCell::new(None) };
}

/// Left by a future that waits for a reply or a watch of `engine` (only when its runtime parks
/// callers: `Runtime::callers_park`).
pub(crate) fn offer(engine: &Arc<Engine>) {
    OFFER.with(|o| {
        let mut o = o.borrow_mut();
        if o.as_ref().is_none_or(|w| w.as_ptr() != Arc::as_ptr(engine)) {
            *o = Some(Arc::downgrade(engine));
        }
    });
}

/// Takes the offer the futures polled on this thread since the last call left: the client whose
/// reply or watch the thread's future now waits for (the last one polled, when several). `None`
/// when they wait for nothing of a client whose runtime parks its callers (a timer, a channel),
/// or the client is gone.
pub fn take_offer() -> Option<ReadOffer> {
    OFFER
        .with(|o| o.borrow_mut().take())
        .and_then(|w| w.upgrade())
        .map(ReadOffer)
}

/// One client's session socket, offered to the thread whose future waits on it.
pub struct ReadOffer(Arc<Engine>);

/// What a thread that wants to wait on a client should do ([`ReadOffer::enter`]).
pub enum Entry {
    /// This thread is the reader: wait until [`ReadTurn::socket`] is readable (or the thread's
    /// own wake-up comes), then call [`ReadTurn::read`]; dropping the turn leaves the place.
    Read(ReadTurn),
    /// Another thread reads for this client and wakes this one when its reply comes: park. The
    /// guard says so to the reader (which then, leaving, hands reading back to the driver); keep
    /// it until the thread is woken.
    Park(ParkGuard),
    /// The connection cannot be read from here (TLS, none at the moment): park; the driver reads.
    Unavailable,
}

/// Held by a thread parked on a client while another thread reads (see [`Entry::Park`]).
pub struct ParkGuard(Arc<Engine>);

impl ParkGuard {
    pub(crate) fn new(engine: Arc<Engine>) -> Self {
        ParkGuard(engine)
    }
}

impl Drop for ParkGuard {
    fn drop(&mut self) {
        self.0.reader_unpark();
    }
}

/// This thread's turn in the reader's place of one client; dropping it leaves the place (see the
/// module documentation for who reads next), so the place cannot be kept by mistake.
pub struct ReadTurn {
    engine: Arc<Engine>,
    socket: Arc<TcpStream>,
}

impl ReadTurn {
    pub(crate) fn new(engine: Arc<Engine>, socket: Arc<TcpStream>) -> Self {
        ReadTurn { engine, socket }
    }

    /// A second handle on the session's socket, to wait on for readability. Reading or writing
    /// through it would take bytes from the session: only [`read`](Self::read) reads.
    pub fn socket(&self) -> &TcpStream {
        &self.socket
    }

    /// Reads what the socket holds, handing everything read to whoever waits for it, and wakes
    /// the driver for what only it does (a closed connection, a write the socket did not take).
    /// Does nothing if the place changed hands meanwhile (the client dropped the connection).
    pub fn read(&self) {
        self.engine.reader_read();
    }
}

impl Drop for ReadTurn {
    fn drop(&mut self) {
        self.engine.reader_leave();
    }
}

impl ReadOffer {
    /// Takes the reader's place when it is free (or already this thread's), or says to park.
    /// Errors never: a socket that cannot be read this way answers `Unavailable`.
    pub fn enter(&self) -> Entry {
        self.0.reader_enter()
    }
}

/// Who reads the session's socket (see the module documentation). One per client, inside its
/// engine's lock; pure bookkeeping, no system calls except shutting a dropped socket down.
#[derive(Debug, Default)]
pub(crate) struct ReaderPlace {
    /// A second handle on the current connection's socket, when the transport has one and the
    /// runtime parks its callers.
    socket: Option<Arc<TcpStream>>,
    holder: Holder,
    /// Bumped each time a thread takes the place: the driver's tick sees whether it changed hands.
    epoch: u64,
    /// The driver looks at the place every tick while a thread holds it.
    ticking: bool,
    /// The epoch the driver saw at its last tick, and how many ticks in a row saw it.
    seen: Option<u64>,
    same_ticks: u32,
    /// When the driver's next tick is due, while it ticks.
    tick_at: Option<std::time::Instant>,
    /// Threads parked on this client while another reads.
    parked: usize,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Holder {
    /// The driver reads (and is registered for the socket's readiness once it has read).
    #[default]
    Driver,
    /// A thread waits on the socket and reads.
    Thread(std::thread::ThreadId),
    /// The last thread left while the driver ticks: nobody reads until the driver's next tick or
    /// the next thread that enters.
    Idle,
}

/// [`ReaderPlace::enter`]'s answer, before the engine wraps it.
pub(crate) enum Entered {
    Read(Arc<TcpStream>),
    Park,
    Unavailable,
}

impl ReaderPlace {
    /// A new connection (or none): the driver reads it until a thread enters. A thread waiting on
    /// the old socket is woken by its shutdown (the client has let go of that connection).
    pub(crate) fn attach(&mut self, socket: Option<TcpStream>) {
        if let Some(old) = self.socket.take() {
            let _ = old.shutdown(std::net::Shutdown::Both);
        }
        self.socket = socket.map(Arc::new);
        self.holder = Holder::Driver;
        self.ticking = false;
        self.seen = None;
        self.same_ticks = 0;
        self.tick_at = None;
    }

    pub(crate) fn enter(&mut self) -> Entered {
        let Some(socket) = &self.socket else {
            return Entered::Unavailable;
        };
        let me = std::thread::current().id();
        match self.holder {
            Holder::Thread(t) if t == me => Entered::Read(socket.clone()),
            Holder::Thread(_) => {
                self.parked += 1;
                Entered::Park
            }
            Holder::Driver | Holder::Idle => {
                self.holder = Holder::Thread(me);
                self.epoch += 1;
                Entered::Read(socket.clone())
            }
        }
    }

    /// The socket, if this thread holds the place.
    pub(crate) fn held_socket(&self) -> Option<Arc<TcpStream>> {
        (self.holder == Holder::Thread(std::thread::current().id()))
            .then(|| self.socket.clone())
            .flatten()
    }

    /// This thread leaves the place (if it holds it). True when the driver must be woken to
    /// read: it is not ticking, or threads are parked waiting for someone to read.
    #[must_use]
    pub(crate) fn leave(&mut self) -> bool {
        if self.holder != Holder::Thread(std::thread::current().id()) {
            return false;
        }
        if self.ticking && self.parked == 0 {
            self.holder = Holder::Idle;
            false
        } else {
            self.holder = Holder::Driver;
            true
        }
    }

    pub(crate) fn unpark(&mut self) {
        self.parked = self.parked.saturating_sub(1);
    }

    /// The driver's turn: whether it reads the socket now. It takes the place back when it is
    /// idle; while a thread holds it, it ticks (see the module documentation).
    pub(crate) fn driver_turn(&mut self, now: std::time::Instant) -> bool {
        match self.holder {
            Holder::Driver | Holder::Idle => {
                self.holder = Holder::Driver;
                self.ticking = false;
                self.seen = None;
                self.same_ticks = 0;
                self.tick_at = None;
                true
            }
            Holder::Thread(_) => {
                if self.tick_at.is_none_or(|t| t <= now) {
                    if self.ticking && self.seen == Some(self.epoch) {
                        self.same_ticks += 1;
                    } else {
                        self.same_ticks = 0;
                    }
                    self.seen = Some(self.epoch);
                    if self.same_ticks >= LONG_WAIT_TICKS {
                        // One wait all this while: stop looking; it wakes the driver when it
                        // leaves.
                        self.ticking = false;
                        self.tick_at = None;
                    } else {
                        self.ticking = true;
                        self.tick_at = Some(now + READER_TICK);
                    }
                }
                false
            }
        }
    }

    /// When the driver must look at the place next, if it ticks.
    pub(crate) fn tick_at(&self) -> Option<std::time::Instant> {
        self.tick_at
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::net::{TcpListener, TcpStream};
    use std::time::Instant;

    /// A connected loopback pair: the client's end and the peer's.
    fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let ours = TcpStream::connect(listener.local_addr().expect("address")).expect("connect");
        let (theirs, _) = listener.accept().expect("accept");
        (ours, theirs)
    }

    fn place() -> (ReaderPlace, TcpStream) {
        let (ours, theirs) = pair();
        let mut place = ReaderPlace::default();
        place.attach(Some(ours));
        (place, theirs)
    }

    fn entered_to_read(e: Entered) -> bool {
        matches!(e, Entered::Read(_))
    }

    #[test]
    fn without_a_socket_nobody_but_the_driver_reads() {
        let mut place = ReaderPlace::default();
        assert!(matches!(place.enter(), Entered::Unavailable));
        assert!(place.driver_turn(Instant::now()));
    }

    #[test]
    fn a_thread_that_enters_reads_and_the_driver_stops_reading_and_ticks() {
        let (mut place, _peer) = place();
        let t0 = Instant::now();
        assert!(entered_to_read(place.enter()));
        assert!(place.held_socket().is_some());
        assert!(!place.driver_turn(t0), "two readers of one socket");
        assert_eq!(place.tick_at(), Some(t0 + READER_TICK));
    }

    /// Leaving while the driver ticks costs no wake-up; the next tick finds the place idle and
    /// the driver reads again. (Broken on purpose, a tick that leaves an idle place alone makes
    /// this fail, and the end-to-end test in zk-blocking time out.)
    #[test]
    fn a_place_left_idle_goes_back_to_the_driver_at_its_next_tick() {
        let (mut place, _peer) = place();
        let t0 = Instant::now();
        assert!(entered_to_read(place.enter()));
        assert!(!place.driver_turn(t0));
        assert!(!place.leave(), "a ticking driver needs no wake-up");
        assert!(place.held_socket().is_none());
        assert!(
            place.driver_turn(t0 + READER_TICK),
            "an idle place is the driver's"
        );
        assert_eq!(place.tick_at(), None);
    }

    #[test]
    fn leaving_while_the_driver_does_not_tick_wakes_it() {
        let (mut place, _peer) = place();
        assert!(entered_to_read(place.enter()));
        assert!(place.leave(), "nobody would read: the driver must be woken");
        assert!(place.driver_turn(Instant::now()));
    }

    /// One wait holding the place for LONG_WAIT_TICKS looks stops the looking (a server that
    /// does not answer must not cost the driver a wake-up every millisecond); its leave then
    /// wakes the driver. A wait of a few looks (a distant server's round trip) does not.
    #[test]
    fn only_a_long_wait_stops_the_looks_and_its_leave_then_wakes_the_driver() {
        let (mut place, _peer) = place();
        let t0 = Instant::now();
        assert!(entered_to_read(place.enter()));
        assert!(!place.driver_turn(t0));
        for n in 1..LONG_WAIT_TICKS {
            assert!(!place.driver_turn(t0 + READER_TICK * n));
            assert!(place.tick_at().is_some(), "stopped looking after {n} looks");
        }
        assert!(!place.driver_turn(t0 + READER_TICK * LONG_WAIT_TICKS));
        assert_eq!(place.tick_at(), None, "still looking through a long wait");
        assert!(place.leave());
    }

    #[test]
    fn a_wait_of_a_few_looks_leaves_the_place_idle_without_a_wake_up() {
        let (mut place, _peer) = place();
        let t0 = Instant::now();
        assert!(entered_to_read(place.enter()));
        for n in 0..5 {
            assert!(!place.driver_turn(t0 + READER_TICK * n));
        }
        assert!(
            !place.leave(),
            "a distant server's round trip woke the driver"
        );
        assert!(place.driver_turn(t0 + READER_TICK * 5));
    }

    /// A new wait between two ticks keeps the driver ticking.
    #[test]
    fn a_place_changing_hands_keeps_the_driver_ticking() {
        let (mut place, _peer) = place();
        let t0 = Instant::now();
        assert!(entered_to_read(place.enter()));
        assert!(!place.driver_turn(t0));
        assert!(!place.leave());
        assert!(entered_to_read(place.enter()));
        assert!(!place.driver_turn(t0 + READER_TICK));
        assert_eq!(place.tick_at(), Some(t0 + 2 * READER_TICK));
    }

    /// A thread parked while another reads is woken only by that reader; when the reader
    /// leaves, the driver reads for the parked one.
    #[test]
    fn parked_threads_make_a_leaving_reader_hand_the_place_to_the_driver() {
        let (place, _peer) = place();
        let place = std::sync::Mutex::new(place);
        let t0 = Instant::now();
        assert!(entered_to_read(place.lock().unwrap().enter()));
        assert!(!place.lock().unwrap().driver_turn(t0));
        std::thread::scope(|s| {
            s.spawn(|| assert!(matches!(place.lock().unwrap().enter(), Entered::Park)));
        });
        assert!(
            place.lock().unwrap().leave(),
            "the parked thread would wait for nobody"
        );
        place.lock().unwrap().unpark();
        assert!(entered_to_read(place.lock().unwrap().enter()));
        assert!(!place.lock().unwrap().leave(), "nobody parked any more");
    }

    /// A thread waiting on a connection the client lets go of is woken (the socket is shut
    /// down), and the new connection is the driver's until a thread enters again.
    #[test]
    fn a_new_connection_shuts_the_old_socket_down_and_goes_to_the_driver() {
        let (mut place, _peer) = place();
        let Entered::Read(old) = place.enter() else {
            panic!("the place was free");
        };
        let (next, _next_peer) = pair();
        place.attach(Some(next));
        let mut byte = [0u8; 1];
        assert_eq!(
            (&*old)
                .read(&mut byte)
                .expect("a shut-down socket reads its end"),
            0
        );
        assert!(place.held_socket().is_none());
        assert!(place.driver_turn(Instant::now()));
    }
}
