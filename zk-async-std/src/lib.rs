//! The ZooKeeper client on async-std and smol: a [`Runtime`] for zk-client
//! plus re-exports, so an async-std or smol program needs only this crate.
//!
//! Both runtimes share the I/O, built on async-io and async-net ([`AsyncIoTcp`],
//! [`AsyncIoTimer`]); they differ only in where the client's driver task is spawned. async-std is
//! discontinued upstream in favour of smol; both are supported.
//!
//! On async-std, the crate-root [`Client`]:
//!
//! ```no_run
//! # async fn demo() -> Result<(), zk_async_std::Error> {
//! let client = zk_async_std::Client::connect("127.0.0.1:2181/app").await?;
//! let path = client.create("/jobs/job-", "payload").sequential().make_parents().await?;
//! let (data, _stat) = client.get_data(&path).await?;
//! assert_eq!(&data[..], b"payload");
//! client.close().await;
//! # Ok(()) }
//! ```
//!
//! On smol, the same API under [`smol`]:
//!
//! ```no_run
//! # fn main() -> Result<(), zk_async_std::Error> {
//! smol::block_on(async {
//!     let client = zk_async_std::smol::Client::connect("127.0.0.1:2181").await?;
//!     let stat = client.exists("/zookeeper").await?;
//!     assert!(stat.is_some());
//!     client.close().await;
//!     Ok(())
//! })
//! # }
//! ```
//!
//! Features `async-std` and `smol` (both on by default) bring each runtime's spawner; with both
//! off, only the shared [`AsyncIoTcp`], [`AsyncIoTimer`] and [`connect_tcp`] remain, for crates
//! that spawn in their own way (zk-blocking does).

#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::future::Future as _;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use futures_lite::io::{AsyncRead, AsyncWrite};

pub use zk_client::*;

/// A TCP stream on async-io (async-net), shared by every runtime of this crate.
#[derive(Debug)]
pub struct AsyncIoTcp(async_net::TcpStream);

/// A re-armable timer on async-io, shared by every runtime of this crate.
#[derive(Debug)]
pub struct AsyncIoTimer {
    timer: async_io::Timer,
    deadline: Instant,
}

/// Resolves `host` afresh and connects to `port`, trying every resolved address in turn, with
/// TCP_NODELAY set. Needs no particular executor: async-io runs its own reactor.
///
/// Errors with the resolver's error, with [`io::ErrorKind::NotFound`] if `host` resolves to no
/// address, or with the last address's connection error.
pub async fn connect_tcp(host: String, port: u16) -> io::Result<AsyncIoTcp> {
    let addrs = async_net::resolve((host.as_str(), port)).await?;
    let mut last = io::Error::new(
        io::ErrorKind::NotFound,
        format!("{host}: resolves to no address"),
    );
    for addr in addrs {
        match async_net::TcpStream::connect(addr).await {
            Ok(stream) => {
                stream.set_nodelay(true)?;
                return Ok(AsyncIoTcp(stream));
            }
            Err(e) => last = e,
        }
    }
    Err(last)
}

impl AsyncIoTimer {
    /// A timer that fires at `deadline`.
    pub fn at(deadline: Instant) -> Self {
        AsyncIoTimer {
            timer: async_io::Timer::at(deadline),
            deadline,
        }
    }
}

impl Transport for AsyncIoTcp {
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }

    fn poll_write(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn peer_addr(&self) -> Option<SocketAddr> {
        self.0.peer_addr().ok()
    }
}

impl Timer for AsyncIoTimer {
    fn reset(&mut self, deadline: Instant) {
        self.deadline = deadline;
        self.timer.set_at(deadline);
    }

    fn poll_fire(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        // An async-io timer fires once and then stays pending; the contract is "ready once the
        // deadline has passed", so the clock decides after the first firing.
        if Pin::new(&mut self.timer).poll(cx).is_ready() || Instant::now() >= self.deadline {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

/// Implements [`Runtime`] for a unit struct with the shared I/O and the given spawn.
#[cfg(any(feature = "async-std", feature = "smol"))]
macro_rules! async_io_runtime {
    ($name:ident, |$task:ident| $spawn:expr) => {
        impl Runtime for $name {
            type Tcp = AsyncIoTcp;
            type Timer = AsyncIoTimer;

            fn connect(
                &self,
                host: String,
                port: u16,
            ) -> impl std::future::Future<Output = io::Result<AsyncIoTcp>> + Send + 'static {
                connect_tcp(host, port)
            }

            fn timer(&self, deadline: Instant) -> AsyncIoTimer {
                AsyncIoTimer::at(deadline)
            }

            fn spawn(&self, $task: impl std::future::Future<Output = ()> + Send + 'static) {
                $spawn
            }

            fn now(&self) -> Instant {
                Instant::now()
            }
        }
    };
}

/// The async-std runtime, as zk-client sees it: the driver runs on async-std's executor.
#[cfg(feature = "async-std")]
#[derive(Debug, Clone, Copy, Default)]
pub struct AsyncStdRuntime;

#[cfg(feature = "async-std")]
async_io_runtime!(AsyncStdRuntime, |task| drop(async_std::task::spawn(task)));

/// A client on async-std.
#[cfg(feature = "async-std")]
pub type Client = zk_client::Client<AsyncStdRuntime>;
/// A client builder on async-std.
#[cfg(feature = "async-std")]
pub type ClientBuilder = zk_client::ClientBuilder<AsyncStdRuntime>;

/// The smol runtime, as zk-client sees it: the driver runs on smol's global executor.
#[cfg(feature = "smol")]
#[derive(Debug, Clone, Copy, Default)]
pub struct SmolRuntime;

#[cfg(feature = "smol")]
async_io_runtime!(SmolRuntime, |task| ::smol::spawn(task).detach());

/// The client on smol: `zk_async_std::smol::Client::connect("h:2181").await`.
#[cfg(feature = "smol")]
pub mod smol {
    pub use crate::SmolRuntime;

    /// A client on smol.
    pub type Client = zk_client::Client<SmolRuntime>;
    /// A client builder on smol.
    pub type ClientBuilder = zk_client::ClientBuilder<SmolRuntime>;
}
