//! The ZooKeeper client on tokio: a [`Runtime`] for zk-client plus
//! re-exports, so a tokio program needs only this crate.
//!
//! ```no_run
//! # async fn demo() -> Result<(), zk_tokio::Error> {
//! let client = zk_tokio::Client::connect("127.0.0.1:2181/app").await?;
//! let path = client.create("/jobs/job-", "payload").sequential().make_parents().await?;
//! let (data, _stat) = client.get_data(&path).await?;
//! assert_eq!(&data[..], b"payload");
//! client.close().await;
//! # Ok(()) }
//! ```
//!
//! The client must be created inside a tokio runtime (its driver task is spawned there).

#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::runtime::Handle;

pub use zk_client::*;

/// The tokio runtime, as zk-client sees it.
#[derive(Debug, Clone)]
pub struct TokioRuntime {
    handle: Option<Handle>,
}

impl Default for TokioRuntime {
    /// Uses the tokio runtime the caller runs in (if any; otherwise spawning needs one later).
    fn default() -> Self {
        TokioRuntime {
            handle: Handle::try_current().ok(),
        }
    }
}

impl TokioRuntime {
    /// A runtime that spawns the driver on `handle`.
    pub fn with_handle(handle: Handle) -> Self {
        TokioRuntime {
            handle: Some(handle),
        }
    }
}

/// A client on tokio.
pub type Client = zk_client::Client<TokioRuntime>;
/// A client builder on tokio.
pub type ClientBuilder = zk_client::ClientBuilder<TokioRuntime>;

/// A tokio TCP stream.
#[derive(Debug)]
pub struct TokioTcp(TcpStream);

/// A tokio timer.
#[derive(Debug)]
pub struct TokioTimer(Pin<Box<tokio::time::Sleep>>);

impl Runtime for TokioRuntime {
    type Tcp = TokioTcp;
    type Timer = TokioTimer;

    // Not `async fn`: the future must not borrow `self` (it is 'static).
    #[allow(clippy::manual_async_fn)]
    fn connect(
        &self,
        host: String,
        port: u16,
    ) -> impl Future<Output = io::Result<TokioTcp>> + Send + 'static {
        async move {
            let stream = TcpStream::connect((host.as_str(), port)).await?;
            stream.set_nodelay(true)?;
            Ok(TokioTcp(stream))
        }
    }

    fn timer(&self, deadline: Instant) -> TokioTimer {
        TokioTimer(Box::pin(tokio::time::sleep_until(deadline.into())))
    }

    fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        match &self.handle {
            Some(h) => drop(h.spawn(task)),
            None => drop(tokio::spawn(task)),
        }
    }

    fn now(&self) -> Instant {
        Instant::now()
    }
}

impl Transport for TokioTcp {
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        let mut rb = ReadBuf::new(buf);
        match Pin::new(&mut self.0).poll_read(cx, &mut rb) {
            Poll::Ready(Ok(())) => Poll::Ready(Ok(rb.filled().len())),
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }

    fn poll_write(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn peer_addr(&self) -> Option<SocketAddr> {
        self.0.peer_addr().ok()
    }
}

impl Timer for TokioTimer {
    fn reset(&mut self, deadline: Instant) {
        self.0.as_mut().reset(deadline.into());
    }

    fn poll_fire(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        self.0.as_mut().poll(cx)
    }
}
