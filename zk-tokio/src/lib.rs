//! The ZooKeeper client on tokio: a [`Runtime`] for zk-client plus re-exports, so a tokio
//! program needs only this crate.
//!
//! ```no_run
//! # async fn demo() -> Result<(), zk_tokio::Error> {
//! let client = zk_tokio::connect("127.0.0.1:2181/app").await?;
//! let path = client.create("/jobs/job-", "payload").sequential().make_parents().await?;
//! let (data, _stat) = client.get_data(&path).await?;
//! assert_eq!(&data[..], b"payload");
//! client.close().await;
//! # Ok(()) }
//! ```
//!
//! [`Client`] is zk-client's one client type: the same on every runtime, so a library that takes
//! `&zk_client::Client` works with a client made here. The client is built on the tokio runtime
//! the caller runs in, or on one named with [`TokioRuntime::with_handle`] (then it may be built
//! and used from threads outside the runtime). Built outside any tokio runtime without a
//! handle, starting it fails with [`Error::Runtime`]; nothing panics.
//!
//! # Cargo features
//!
//! - `gssapi`: Kerberos (SASL GSSAPI) through the system's GSSAPI library (zk-client's
//!   `gssapi` feature).
//! - `pkcs12`: PKCS#12 key and trust stores for TLS (zk-client's `pkcs12` feature).
//! - `turmoil`: the `turmoil` module, a runtime for the client inside a
//!   [turmoil](https://docs.rs/turmoil) simulation (simulated network and clock).

#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::runtime::Handle;

pub use zk_client::*;

#[cfg(feature = "turmoil")]
pub mod turmoil;
/// kazoo's and Curator's recipes (locks, elections, leases, queues, ...) over this client.
pub use zk_recipes as recipes;

/// The tokio runtime, as zk-client sees it.
#[derive(Debug, Clone)]
pub struct TokioRuntime {
    handle: Option<Handle>,
}

impl Default for TokioRuntime {
    /// Uses the tokio runtime the caller runs in, if any; without one, starting a client fails
    /// with [`Error::Runtime`].
    fn default() -> Self {
        TokioRuntime {
            handle: Handle::try_current().ok(),
        }
    }
}

impl TokioRuntime {
    /// A runtime that runs the client on `handle`'s runtime, whichever thread builds it.
    pub fn with_handle(handle: Handle) -> Self {
        TokioRuntime {
            handle: Some(handle),
        }
    }

    /// The runtime as zk-client holds it.
    pub fn shared(self) -> Arc<dyn Runtime> {
        Arc::new(self)
    }
}

/// A builder for a client of `connect_string` on the caller's tokio runtime.
pub fn builder(connect_string: &str) -> ClientBuilder {
    ClientBuilder::new(TokioRuntime::default().shared(), connect_string)
}

/// Connects with default settings on the caller's tokio runtime and waits until the session is
/// established (at most 15 s, like kazoo's `start()`).
///
/// Errors with [`Error::InvalidArgument`]/[`Error::InvalidPath`] for a malformed connect
/// string, [`Error::ConnectFailed`] (naming each server's last failure) if no session was
/// established in time, [`Error::AuthFailed`] or [`Error::SessionExpired`] if the session could
/// not be established, and [`Error::Runtime`] outside a tokio runtime.
pub async fn connect(connect_string: &str) -> Result<Client, Error> {
    builder(connect_string).connect().await
}

/// A tokio TCP stream.
#[derive(Debug)]
pub struct TokioTcp(TcpStream);

/// A tokio timer, made on its first poll (which runs inside the runtime), so that it can be
/// created on any thread.
#[derive(Debug)]
pub struct TokioTimer {
    deadline: Instant,
    handle: Option<Handle>,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
    /// Read the deadline against tokio's clock rather than the OS's: under turmoil (which pauses
    /// tokio's clock and moves it itself) the two part ways, and only tokio's is the client's.
    tokio_clock: bool,
}

impl Runtime for TokioRuntime {
    fn connect(&self, host: String, port: u16) -> BoxFuture<io::Result<Box<dyn Transport>>> {
        let connect = async move {
            let stream = TcpStream::connect((host.as_str(), port)).await?;
            stream.set_nodelay(true)?;
            Ok(Box::new(TokioTcp(stream)) as Box<dyn Transport>)
        };
        match &self.handle {
            // Run the dial on the runtime, so the caller may be any thread.
            Some(h) => {
                let task = h.spawn(connect);
                Box::pin(async move {
                    task.await
                        .map_err(|e| io::Error::other(format!("connect task failed: {e}")))?
                })
            }
            None => Box::pin(connect),
        }
    }

    fn timer(&self, deadline: Instant) -> Box<dyn Timer> {
        Box::new(TokioTimer {
            deadline,
            handle: self.handle.clone(),
            sleep: None,
            tokio_clock: false,
        })
    }

    fn spawn(&self, task: BoxFuture<()>) -> io::Result<()> {
        let handle = match &self.handle {
            Some(h) => h.clone(),
            None => Handle::try_current().map_err(|_| {
                io::Error::other(
                    "no tokio runtime: build the client inside one, or give one with \
                     TokioRuntime::with_handle",
                )
            })?,
        };
        drop(handle.spawn(task));
        Ok(())
    }

    fn now(&self) -> Instant {
        Instant::now()
    }
}

/// Reads from a tokio stream into `buf`, as [`Transport::poll_read`] counts it.
fn poll_read_into<S: AsyncRead + Unpin>(
    stream: &mut S,
    cx: &mut Context<'_>,
    buf: &mut [u8],
) -> Poll<io::Result<usize>> {
    let mut rb = ReadBuf::new(buf);
    match Pin::new(stream).poll_read(cx, &mut rb) {
        Poll::Ready(Ok(())) => Poll::Ready(Ok(rb.filled().len())),
        Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
        Poll::Pending => Poll::Pending,
    }
}

impl Transport for TokioTcp {
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        poll_read_into(&mut self.0, cx, buf)
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
        self.deadline = deadline;
        if let Some(s) = &mut self.sleep {
            s.as_mut().reset(deadline.into());
        }
    }

    fn poll_fire(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        use std::future::Future;
        let now = if self.tokio_clock {
            let _guard = self.handle.as_ref().map(Handle::enter);
            tokio::time::Instant::now().into_std()
        } else {
            Instant::now()
        };
        if now >= self.deadline {
            return Poll::Ready(());
        }
        if self.sleep.is_none() {
            // tokio makes a timer only with a runtime in context: the handle's, or the caller's.
            let _guard = self.handle.as_ref().map(Handle::enter);
            if self.handle.is_none() && Handle::try_current().is_err() {
                // No runtime anywhere: the clock alone decides, polled again by whoever wakes
                // this task. The client never gets here (its driver runs on a runtime).
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            self.sleep = Some(Box::pin(tokio::time::sleep_until(self.deadline.into())));
        }
        match &mut self.sleep {
            Some(s) => s.as_mut().poll(cx),
            None => Poll::Pending,
        }
    }
}
