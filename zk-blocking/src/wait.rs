//! zk-blocking's `block_on`: runs a future on the calling thread, and between polls either waits
//! on the session socket of the client the future waits for and reads it itself, or parks.
//!
//! Why not a plain parker: then every reply travels through the `zk-driver` thread (woken by the
//! socket, it reads and wakes the caller), a context switch and two futex calls per batch of
//! replies, which on a client pinned to one core cost as much as the rest of the request. A
//! bare blocking socket program instead sleeps in `read`; this does the nearest thing that
//! stays correct with a background driver: it waits in `poll(2)` on the socket and on a wake-up
//! channel of its own, so that any waker call (a timer, another thread's read of its reply, the
//! client shutting the connection) still reaches it. Who may read when is zk-client's
//! `caller_reads`; this file only waits.
//!
//! The same wait serves the sockets and timers the thread's futures wait for (`reactor.rs`): the
//! `zk-driver` threads run their session's driver in this `block_on` too, so a driver waits for
//! its socket and its next deadline in one `poll(2)`, not in async-io's reactor.

use std::cell::Cell;
use std::future::Future;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::Thread;

use zk_client::caller_reads::{self, Entry, ReadOffer};

#[cfg(unix)]
use crate::reactor::Sources;

/// The thread runs (polls its future, or is about to wait).
const RUNNING: u8 = 0;
/// The thread is parked.
const PARKED: u8 = 1;
/// The thread waits in `poll(2)`; a wake-up writes to its channel.
const POLLING: u8 = 2;
/// Woken since it last looked: poll the future again.
const NOTIFIED: u8 = 3;

/// One waiting thread's wake-up: its state, its handle for unparking, the channel that
/// interrupts its `poll(2)` (made when it first waits on a socket or first has a socket or timer
/// register with it: two file descriptors per such thread, kept with the thread), and the
/// sockets and timers its futures registered (`reactor.rs`).
pub(crate) struct Waiter {
    state: AtomicU8,
    thread: Thread,
    /// Made on first use; `None` if it could not be (out of file descriptors): the thread
    /// then parks instead of reading, and its futures' sources wait on async-io.
    #[cfg(unix)]
    channel: OnceLock<Option<Channel>>,
    /// The sources whose interests this waiter's waits watch.
    #[cfg(unix)]
    pub(crate) sources: Sources,
}

/// A wake-up channel: the thread polls the first end, wakers write to the second.
#[cfg(unix)]
type Channel = (
    std::os::unix::net::UnixStream,
    std::os::unix::net::UnixStream,
);

impl Waiter {
    /// The wake-up channel, made on first use; `None` when it cannot be made.
    #[cfg(unix)]
    fn channel(&self) -> Option<&Channel> {
        self.channel
            .get_or_init(|| {
                // Both ends non-blocking: a wake-up never blocks its waker, and draining never
                // blocks (it stops at a short read).
                let pair = std::os::unix::net::UnixStream::pair().and_then(|(rx, tx)| {
                    rx.set_nonblocking(true)?;
                    tx.set_nonblocking(true)?;
                    Ok((rx, tx))
                });
                pair.map_err(|e| {
                    tracing::warn!(error = %e, "no wake-up channel: this thread parks while it waits");
                })
                .ok()
            })
            .as_ref()
    }

    /// Without `poll(2)` no transport offers its socket, so no thread needs a channel.
    #[cfg(not(unix))]
    fn channel(&self) -> Option<&()> {
        None
    }
}

impl Wake for Waiter {
    fn wake(self: Arc<Self>) {
        self.notify();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.notify();
    }
}

impl Waiter {
    /// Wakes the thread: its next look polls its future again.
    pub(crate) fn notify(&self) {
        match self.state.swap(NOTIFIED, Ordering::AcqRel) {
            PARKED => self.thread.unpark(),
            #[cfg(unix)]
            POLLING => {
                if let Some(Some((_, tx))) = self.channel.get() {
                    // Full means a byte is already there to wake it.
                    let _ = std::io::Write::write(&mut &*tx, &[1]);
                }
            }
            _ => {}
        }
    }
}

thread_local! {
    /// The thread's waiter and its waker, lent to one `block_on` at a time (a nested `block_on`
    /// makes its own: sharing one, the inner would consume the outer's wake-ups).
    static CACHED: Cell<Option<(Arc<Waiter>, Waker)>> = const { Cell::new(None) };
    /// The waiter of the innermost `block_on` running on this thread, and its waker.
    static CURRENT: Cell<Option<(Arc<Waiter>, Waker)>> = const { Cell::new(None) };
}

/// Reads the calling thread's `CURRENT` (`None` once the thread-local is gone, as the thread
/// exits).
fn with_current<T>(f: impl FnOnce(Option<&(Arc<Waiter>, Waker)>) -> T) -> T {
    let current = CURRENT.try_with(Cell::take).ok().flatten();
    let out = f(current.as_ref());
    let _ = CURRENT.try_with(|c| c.set(current));
    out
}

/// The waiter that wakes `waker` when the calling thread is in zk-blocking's `block_on`, polling
/// with that `block_on`'s own waker (or a clone), and can wait on sockets (it has a wake-up
/// channel): sources polled here register with it. `None` for any other waker, such as that of
/// another executor run inside the `block_on` (a user's code in a retry or an election may run
/// one): that executor's thread does not wait in this waiter, so its futures' sources must not
/// register here.
#[cfg(unix)]
pub(crate) fn current_waiter(waker: &Waker) -> Option<Arc<Waiter>> {
    with_current(|c| {
        c.filter(|(_, own)| own.will_wake(waker))
            .map(|(w, _)| Arc::clone(w))
    })
    .filter(|w| w.channel().is_some())
}

/// Whether `waiter` is that of the innermost `block_on` running on the calling thread.
#[cfg(unix)]
pub(crate) fn is_current(waiter: &Arc<Waiter>) -> bool {
    with_current(|c| c.is_some_and(|(w, _)| Arc::ptr_eq(w, waiter)))
}

/// Gives the thread's waiter back to the thread-local when its `block_on` ends (or unwinds), and
/// makes the enclosing `block_on`'s waiter current again.
struct Lent {
    waiter: Option<(Arc<Waiter>, Waker)>,
    outer: Option<(Arc<Waiter>, Waker)>,
}

impl Drop for Lent {
    fn drop(&mut self) {
        let lent = self.waiter.take();
        let _ = CACHED.try_with(|c| c.set(lent));
        let outer = self.outer.take();
        let _ = CURRENT.try_with(|c| c.set(outer));
    }
}

/// Runs `fut` to completion on the calling thread (see the module documentation).
pub(crate) fn block_on<F: Future>(fut: F) -> F::Output {
    let mut fut = std::pin::pin!(fut);
    let (waiter, waker) = CACHED.with(Cell::take).unwrap_or_else(|| {
        let waiter = Arc::new(Waiter {
            state: AtomicU8::new(RUNNING),
            thread: std::thread::current(),
            #[cfg(unix)]
            channel: OnceLock::new(),
            #[cfg(unix)]
            sources: Sources::default(),
        });
        let waker = Waker::from(waiter.clone());
        (waiter, waker)
    });
    let outer = CURRENT.with(|c| c.replace(Some((waiter.clone(), waker.clone()))));
    let _lent = Lent {
        waiter: Some((waiter.clone(), waker.clone())),
        outer,
    };
    let mut cx = Context::from_waker(&waker);
    loop {
        waiter.state.store(RUNNING, Ordering::Release);
        // An offer left by a poll outside this wait is not this future's.
        drop(caller_reads::take_offer());
        if let Poll::Ready(out) = fut.as_mut().poll(&mut cx) {
            return out;
        }
        // A thread that cannot be woken out of poll(2) (no wake-up channel) never reads.
        let offer = caller_reads::take_offer().filter(|_| waiter.channel().is_some());
        match offer.as_ref().map(ReadOffer::enter) {
            Some(Entry::Read(turn)) => {
                // The place is held only while waiting and reading, never while the future runs
                // (a future may run a user's callback for as long as it likes): the turn is
                // dropped, and the place left, before the next poll.
                if wait(&waiter, Some(turn.socket())) {
                    turn.read();
                }
            }
            Some(Entry::Park(guard)) => {
                wait(&waiter, None);
                drop(guard);
            }
            Some(Entry::Unavailable) | None => {
                wait(&waiter, None);
            }
        }
    }
}

/// The longest a wait with a deadline sleeps in one `poll(2)`.
#[cfg(unix)]
const MAX_POLL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(24 * 60 * 60);

/// Parks until woken (unless woken since the future was polled), or until `deadline` if there
/// is one.
fn park(waiter: &Waiter, deadline: Option<std::time::Instant>) {
    if waiter
        .state
        .compare_exchange(RUNNING, PARKED, Ordering::AcqRel, Ordering::Acquire)
        .is_err()
    {
        return;
    }
    while waiter.state.load(Ordering::Acquire) == PARKED {
        let Some(deadline) = deadline else {
            std::thread::park();
            continue;
        };
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            // Back to RUNNING, so that the due timer's own wake-up (and any other from here on)
            // does not unpark a running thread, leaving a token that would cut some later park
            // short. If a wake-up came first, its token is there already, as after any park.
            let _ =
                waiter
                    .state
                    .compare_exchange(PARKED, RUNNING, Ordering::AcqRel, Ordering::Acquire);
            return;
        }
        std::thread::park_timeout(left);
    }
}

/// Waits until the thread is woken, one of its sources is ready or due, or `reader` (the
/// session socket of a reader's turn) is readable; true when `reader` is (or has failed, or
/// closed: the read reports that). With nothing to watch it parks; with only a deadline, it parks
/// until the deadline. Returns at once when woken since the last poll.
#[cfg(unix)]
fn wait(waiter: &Arc<Waiter>, reader: Option<&std::net::TcpStream>) -> bool {
    use rustix::event::{PollFd, PollFlags, Timespec};
    let armed = waiter.sources.arm(waiter);
    if reader.is_none() && !armed.has_sockets() {
        // Only the clock to watch (a connect timeout, a retry's sleep, a spare driver thread's
        // wait for its next task), or nothing: a futex wait with a timeout is one call where
        // `poll(2)` on the channel is a poll and a read, and waking it is one call either way.
        park(waiter, armed.deadline());
        armed.wake(waiter, std::iter::empty(), std::time::Instant::now());
        return false;
    }
    let Some(channel) = waiter.channel() else {
        park(waiter, None);
        return false;
    };
    let timeout = match armed.deadline() {
        Some(at) => {
            let left = at.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                armed.wake(waiter, std::iter::empty(), std::time::Instant::now());
                return false;
            }
            // At most a day: some systems' poll(2) refuses a timeout past 2^31 ms (24.8 days),
            // and waking early only makes the future look again.
            Timespec::try_from(left.min(MAX_POLL_TIMEOUT)).ok()
        }
        None => None,
    };
    if waiter
        .state
        .compare_exchange(RUNNING, POLLING, Ordering::AcqRel, Ordering::Acquire)
        .is_err()
    {
        return false;
    }
    let mut fds = Vec::with_capacity(2 + armed.sockets().size_hint().0);
    fds.push(PollFd::new(&channel.0, PollFlags::IN));
    if let Some(socket) = reader {
        fds.push(PollFd::new(socket, PollFlags::IN));
    }
    let first_source = fds.len();
    fds.extend(armed.sockets().map(|(s, flags)| PollFd::new(s, flags)));
    let polled = loop {
        match rustix::event::poll(&mut fds, timeout.as_ref()) {
            Err(rustix::io::Errno::INTR) => continue,
            r => break r,
        }
    };
    waiter.state.store(RUNNING, Ordering::Release);
    if !fds[0].revents().is_empty() {
        // A read that does not fill the sink has emptied the channel: no second read to learn
        // it is empty (a byte written after it wakes the next poll, which drains it then).
        let mut sink = [0u8; 64];
        while matches!(std::io::Read::read(&mut &channel.0, &mut sink), Ok(n) if n == sink.len()) {}
    }
    if let Err(e) = polled {
        // Not seen in practice (EFAULT, ENOMEM); wake everything, and do not spin on it.
        tracing::warn!(error = %e, "poll(2) on the session socket failed");
        std::thread::park_timeout(std::time::Duration::from_millis(1));
        let all = PollFlags::IN | PollFlags::OUT;
        armed.wake(waiter, std::iter::repeat(all), std::time::Instant::now());
        return reader.is_some();
    }
    armed.wake(
        waiter,
        fds[first_source..].iter().map(PollFd::revents),
        std::time::Instant::now(),
    );
    reader.is_some() && !fds[1].revents().is_empty()
}

/// Without `poll(2)` no transport offers its socket and no source registers: the thread parks.
#[cfg(not(unix))]
fn wait(waiter: &Arc<Waiter>, _reader: Option<&std::net::TcpStream>) -> bool {
    park(waiter, None);
    false
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::sync::mpsc::channel;
    use std::time::{Duration, Instant};

    /// A bound on waiting for a wake-up; never an assertion about speed.
    const PATIENCE: Duration = Duration::from_secs(10);

    /// A waiter for the calling thread, as `block_on` makes one.
    fn waiter() -> Arc<Waiter> {
        Arc::new(Waiter {
            state: AtomicU8::new(RUNNING),
            thread: std::thread::current(),
            channel: OnceLock::new(),
            sources: Sources::default(),
        })
    }

    /// A thread waiting only for the clock (a futex wait, not `poll(2)`) is woken by a wake-up
    /// long before its deadline. The wake-up comes after the thread has said it parks (just
    /// before or inside its futex wait, both of which must end the wait), not before its wait.
    /// (Broken on purpose, a wait that sleeps to its deadline instead of parking fails it.) The
    /// route through `wait()` and its timers is `local_io`'s timer tests'.
    #[test]
    fn a_wake_up_ends_a_wait_for_the_clock_before_its_deadline() {
        let (lend, lent) = channel();
        let (done, finished) = channel();
        std::thread::spawn(move || {
            let w = waiter();
            let _ = lend.send(w.clone());
            park(&w, Some(Instant::now() + Duration::from_secs(3600)));
            let _ = done.send(());
        });
        let w = lent.recv_timeout(PATIENCE).expect("the waiter");
        let until = Instant::now() + PATIENCE;
        while w.state.load(Ordering::Acquire) != PARKED {
            assert!(Instant::now() < until, "the waiting thread never parked");
            std::thread::yield_now();
        }
        w.notify();
        finished
            .recv_timeout(PATIENCE)
            .expect("a parked wait was never woken");
    }

    /// Not woken, it returns at its deadline, not before, and running: a wake-up after it
    /// (its timer's own) leaves no unpark token behind.
    #[test]
    fn a_wait_for_the_clock_ends_at_its_deadline() {
        let w = waiter();
        let deadline = Instant::now() + Duration::from_millis(20);
        park(&w, Some(deadline));
        assert!(Instant::now() >= deadline);
        assert_eq!(w.state.load(Ordering::Acquire), RUNNING);
    }
}
