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

use std::cell::Cell;
use std::future::Future;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::Thread;

use zk_client::caller_reads::{self, Entry, ReadOffer};

/// The thread runs (polls its future, or is about to wait).
const RUNNING: u8 = 0;
/// The thread is parked.
const PARKED: u8 = 1;
/// The thread waits in `poll(2)`; a wake-up writes to its channel.
const POLLING: u8 = 2;
/// Woken since it last looked: poll the future again.
const NOTIFIED: u8 = 3;

/// One waiting thread's wake-up: its state, its handle for unparking, and the channel that
/// interrupts its `poll(2)` (made on its first wait on a socket).
struct Signal {
    state: AtomicU8,
    thread: Thread,
    /// Made on first use; `None` if it could not be (out of file descriptors): the thread
    /// then parks instead of reading.
    #[cfg(unix)]
    channel: OnceLock<Option<Channel>>,
}

/// A wake-up channel: the thread polls the first end, wakers write to the second.
#[cfg(unix)]
type Channel = (
    std::os::unix::net::UnixStream,
    std::os::unix::net::UnixStream,
);

impl Signal {
    /// The wake-up channel, made on first use; `None` when it cannot be made.
    #[cfg(unix)]
    fn channel(&self) -> Option<&Channel> {
        self.channel
            .get_or_init(|| {
                // Both ends non-blocking: a wake-up never blocks its waker, and draining stops
                // when empty.
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

impl Wake for Signal {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
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
    /// The thread's signal and its waker, lent to one `block_on` at a time (a nested `block_on`
    /// makes its own: sharing one, the inner would consume the outer's wake-ups).
    static CACHED: std::cell::Cell<Option<(Arc<Signal>, Waker)>> = const { std::cell::Cell::new(None) };
}

/// Gives the thread's signal back to the thread-local when its `block_on` ends (or unwinds).
struct Lent(Option<(Arc<Signal>, Waker)>);

impl Drop for Lent {
    fn drop(&mut self) {
        let lent = self.0.take();
        let _ = CACHED.try_with(|c| c.set(lent));
    }
}

/// Runs `fut` to completion on the calling thread (see the module documentation).
pub(crate) fn block_on<F: Future>(fut: F) -> F::Output {
    let mut fut = std::pin::pin!(fut);
    let (signal, waker) = CACHED.with(Cell::take).unwrap_or_else(|| {
        let signal = Arc::new(Signal {
            state: AtomicU8::new(RUNNING),
            thread: std::thread::current(),
            #[cfg(unix)]
            channel: OnceLock::new(),
        });
        let waker = Waker::from(signal.clone());
        (signal, waker)
    });
    let _lent = Lent(Some((signal.clone(), waker.clone())));
    let mut cx = Context::from_waker(&waker);
    loop {
        signal.state.store(RUNNING, Ordering::Release);
        // An offer left by a poll outside this wait is not this future's.
        drop(caller_reads::take_offer());
        if let Poll::Ready(out) = fut.as_mut().poll(&mut cx) {
            return out;
        }
        // A thread that cannot be woken out of poll(2) (no wake-up channel) never reads.
        let offer = caller_reads::take_offer().filter(|_| signal.channel().is_some());
        match offer.as_ref().map(ReadOffer::enter) {
            Some(Entry::Read(turn)) => {
                // The place is held only while waiting and reading, never while the future runs
                // (a future may run a user's callback for as long as it likes): the turn is
                // dropped, and the place left, before the next poll.
                if wait_readable(&signal, turn.socket()) {
                    turn.read();
                }
            }
            Some(Entry::Park(guard)) => {
                park(&signal);
                drop(guard);
            }
            Some(Entry::Unavailable) | None => park(&signal),
        }
    }
}

/// Parks until woken (unless woken since the future was polled).
fn park(signal: &Signal) {
    if signal
        .state
        .compare_exchange(RUNNING, PARKED, Ordering::AcqRel, Ordering::Acquire)
        .is_err()
    {
        return;
    }
    while signal.state.load(Ordering::Acquire) == PARKED {
        std::thread::park();
    }
}

/// Waits until `socket` is readable or the thread is woken; true when the socket is (or has
/// failed, or closed: the read reports that). Returns at once when woken since the last poll.
#[cfg(unix)]
fn wait_readable(signal: &Signal, socket: &std::net::TcpStream) -> bool {
    use rustix::event::{PollFd, PollFlags};
    let Some(channel) = signal.channel() else {
        return false;
    };
    if signal
        .state
        .compare_exchange(RUNNING, POLLING, Ordering::AcqRel, Ordering::Acquire)
        .is_err()
    {
        return false;
    }
    let mut fds = [
        PollFd::new(socket, PollFlags::IN),
        PollFd::new(&channel.0, PollFlags::IN),
    ];
    let polled = loop {
        match rustix::event::poll(&mut fds, None) {
            Err(rustix::io::Errno::INTR) => continue,
            r => break r,
        }
    };
    signal.state.store(RUNNING, Ordering::Release);
    if !fds[1].revents().is_empty() {
        let mut sink = [0u8; 64];
        while matches!(std::io::Read::read(&mut &channel.0, &mut sink), Ok(n) if n > 0) {}
    }
    match polled {
        Ok(_) => !fds[0].revents().is_empty(),
        Err(e) => {
            // Not seen in practice (EFAULT, ENOMEM); read, and do not spin on it.
            tracing::warn!(error = %e, "poll(2) on the session socket failed");
            std::thread::park_timeout(std::time::Duration::from_millis(1));
            true
        }
    }
}

/// Without `poll(2)` no transport offers its socket, so nothing waits here.
#[cfg(not(unix))]
fn wait_readable(_signal: &Signal, _socket: &std::net::TcpStream) -> bool {
    true
}
