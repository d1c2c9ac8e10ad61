//! The small interface the client needs from an async runtime: open a TCP stream, a timer that
//! can be re-armed, spawn a task, read the clock. The runtime crates (zk-tokio, zk-async-std,
//! zk-blocking) each implement it in a file; everything else is shared.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::task::{Context, Poll};
use std::time::Instant;

/// An async runtime, as far as the client is concerned.
pub trait Runtime: Clone + Send + Sync + 'static {
    /// A connected TCP stream.
    type Tcp: Transport;
    /// A re-armable timer.
    type Timer: Timer;

    /// Resolves `host` afresh and connects to `port` (trying each resolved address), with
    /// TCP_NODELAY set: ZooKeeper requests are small and latency-bound.
    ///
    /// Errors with the last connection or resolution error.
    fn connect(
        &self,
        host: String,
        port: u16,
    ) -> impl Future<Output = io::Result<Self::Tcp>> + Send + 'static;

    /// A timer that fires at `deadline`.
    fn timer(&self, deadline: Instant) -> Self::Timer;

    /// Runs `task` to completion in the background.
    fn spawn(&self, task: impl Future<Output = ()> + Send + 'static);

    /// The current time.
    fn now(&self) -> Instant;
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

    /// The peer's address, when known (used to ask the same server a four-letter word).
    fn peer_addr(&self) -> Option<SocketAddr>;
}

/// A one-shot timer that can be moved to another deadline.
pub trait Timer: Send + Unpin + 'static {
    /// Moves the deadline (earlier or later) and re-arms the timer.
    fn reset(&mut self, deadline: Instant);

    /// Ready once the deadline has passed.
    fn poll_fire(&mut self, cx: &mut Context<'_>) -> Poll<()>;
}
