//! The small interface the client needs from an async runtime: open a TCP stream, a timer that
//! can be re-armed, spawn a task, read the clock. The runtime crates (zk-tokio, zk-async-std,
//! zk-blocking) each implement it in a file; everything else is shared.
//!
//! The trait is object-safe so that a [`Client`](crate::Client) holds it as `Arc<dyn Runtime>`
//! (quinn's shape): one concrete client type whatever the runtime, which a library can take as
//! `&zk_client::Client` without knowing which runtime its caller picked. What that costs is one
//! boxed future per connection attempt and one boxed timer per waiter, never anything per
//! request.

use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// A boxed, sendable future, as the runtime trait passes them.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// An async runtime, as far as the client is concerned.
pub trait Runtime: Send + Sync + fmt::Debug + 'static {
    /// Resolves `host` afresh and connects to `port` (trying each resolved address), with
    /// TCP_NODELAY set: ZooKeeper requests are small and latency-bound.
    ///
    /// The future errors with the last connection or resolution error.
    fn connect(&self, host: String, port: u16) -> BoxFuture<io::Result<Box<dyn Transport>>>;

    /// A timer that fires at `deadline`. Creating it must not need the runtime's context (the
    /// client may be built on a thread outside the runtime); the first poll may.
    fn timer(&self, deadline: Instant) -> Box<dyn Timer>;

    /// Runs `task` to completion in the background.
    ///
    /// Errors when the task cannot be started (no runtime to run it on, a thread that cannot be
    /// created); the client reports that as [`Error::Runtime`](crate::Error::Runtime).
    fn spawn(&self, task: BoxFuture<()>) -> io::Result<()>;

    /// The current time.
    fn now(&self) -> Instant;

    /// Whether callers wait for replies by parking their own thread until the reply comes
    /// (zk-blocking), so that a reply polled and not there yet means a caller about to sleep.
    /// The client then lets requests made while others are in flight wait to be written in one
    /// system call, by the next caller that waits or by the driver's next turn, instead of one
    /// call each; and its reply futures offer the session's socket to the waiting thread
    /// ([`caller_reads`](crate::caller_reads)), which the runtime's `block_on` may take to read
    /// its reply itself. Async runtimes keep the default, `false`: a task's pending poll does not
    /// say it will sleep.
    fn callers_park(&self) -> bool {
        false
    }

    /// Whether a task waiting for a reply reads the session's socket itself when bytes come
    /// (zk-client's `task_reads` module), instead of the driver's task reading them
    /// and waking it. That saves two cross-thread wake-ups per round trip where callers
    /// and the driver run on different threads (async-std and smol, whose callers wait in
    /// `block_on` while the driver runs on the executor's threads). Only a task waiting for the
    /// session's one reply in flight reads (sequential calls); with more in flight the driver
    /// reads, as before. Where tasks and driver share a thread there is less to save: on tokio's
    /// current-thread runtime the extra polls cost more (8-18 % more CPU when measured), so the
    /// default is `false`; on a smol executor run by the caller's thread (zk-async-std's
    /// `SmolRuntime::on`; its `AsyncStdRuntime::local` is alike, not measured) a sequential call still costs less read by its task than handed over by
    /// the driver (about a fifth less CPU, BENCHMARKS.md, stop 30), which spares async-io's
    /// `block_on` a second turn of its reactor. A task woken to read and then not polled delays
    /// the session's bytes by 20-30 ms at most: the driver looks every 10 ms and reads what such
    /// a task left.
    /// A runtime whose callers park ([`callers_park`](Self::callers_park)) has its own way and
    /// must answer `false` here: the two are not meant to be combined.
    fn callers_read(&self) -> bool {
        false
    }

    /// A window after a session's driver starts in which the driver's timer is armed no later
    /// than the window's end, for a runtime whose timer costs something to move earlier
    /// (async-io wakes its reactor for every timer armed or moved: a few system calls, or a
    /// thread hand-off). A short session's deadlines come one after another, each earlier than
    /// the last (connect timeout, first ping, close timeout); those later than the window's end
    /// move nothing in the window, an earlier one still moves the timer. A session that lives
    /// longer pays one wake-up at the window's end, and from then on its timer is armed at its
    /// deadlines. `None` (the default): no window. zk-blocking answers one second. Off Linux and
    /// Android its timer is on async-io; on them it is the driver thread's own `poll(2)`, where
    /// moving it earlier means waking that thread, as a `close()` in a session's first second
    /// would without the window (BENCHMARKS.md, stop 37). tokio keeps `None` (its timer wheel
    /// moves timers for free), and so do async-std and smol (measured: there it added context
    /// switches, BENCHMARKS.md, stop 28).
    fn timer_start_window(&self) -> Option<Duration> {
        None
    }
}

/// A connected byte stream (TCP), polled by the driver.
pub trait Transport: Send + Unpin + 'static {
    /// Reads into `buf`; `Ok(0)` means the peer closed.
    ///
    /// Errors with the socket's error.
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>>;

    /// Writes from `buf`, returning how much was written.
    ///
    /// Errors with the socket's error.
    fn poll_write(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>>;

    /// Writes out whatever the transport buffered itself (a TLS layer's records); `Ready` once
    /// nothing is left. A plain socket buffers nothing, hence the default.
    ///
    /// Errors with the socket's error.
    fn poll_flush(&mut self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    /// The peer's address, when known (used to ask the same server a four-letter word).
    fn peer_addr(&self) -> Option<SocketAddr>;

    /// A second handle on the same OS socket (a `dup`), when the transport is a plain TCP
    /// stream in non-blocking mode whose bytes anyone may read: on a runtime whose callers park
    /// ([`Runtime::callers_park`]), a thread waiting for its reply then waits on the socket and
    /// reads it itself ([`caller_reads`](crate::caller_reads)); on a runtime whose waiting tasks
    /// read ([`Runtime::callers_read`]), a handle here says the transport is such a plain socket
    /// (it is dropped at once). `None` (the default) when the transport must do its own reading
    /// (TLS) or has no OS socket; the driver then reads.
    fn socket(&self) -> Option<std::net::TcpStream> {
        None
    }
}

/// The waker the client polls a [`Transport`] with when nobody waits for the outcome: a caller
/// that writes its own request leaves what the socket cannot take to the driver (and wakes it).
/// It wakes nothing. A transport that arranges wake-ups at some cost may recognize it
/// (`cx.waker().will_wake(zk_client::unwaited())`) and arrange none; one that does not loses
/// nothing. Always the same waker (one `static`), so the comparison holds across crates, which
/// a comparison with `Waker::noop()` does not (each crate may have its own copy of it).
pub fn unwaited() -> &'static Waker {
    UNWAITED
}

static UNWAITED: &Waker = Waker::noop();

/// A one-shot timer that can be moved to another deadline.
pub trait Timer: Send + Unpin + 'static {
    /// Moves the deadline (earlier or later) and re-arms the timer.
    fn reset(&mut self, deadline: Instant);

    /// Ready once the deadline has passed.
    fn poll_fire(&mut self, cx: &mut Context<'_>) -> Poll<()>;
}

/// Sleeps until `deadline` on `rt`.
pub(crate) async fn sleep_until(rt: &dyn Runtime, deadline: Instant) {
    let mut timer = rt.timer(deadline);
    std::future::poll_fn(|cx| timer.poll_fire(cx)).await
}
