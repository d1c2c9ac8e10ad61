//! The ZooKeeper client on async-std and smol: a [`Runtime`] for zk-client
//! plus re-exports, so an async-std or smol program needs only this crate.
//!
//! Both runtimes share the I/O, built on async-io and async-net ([`AsyncIoTcp`],
//! [`AsyncIoTimer`]); they differ only in where the client's driver task is spawned. async-std is
//! discontinued upstream in favour of smol; both are supported.
//!
//! [`Client`] is zk-client's one client type, the same on every runtime. On async-std:
//!
//! ```no_run
//! # async fn demo() -> Result<(), zk_async_std::Error> {
//! let client = zk_async_std::connect("127.0.0.1:2181/app").await?;
//! let path = client.create("/jobs/job-", "payload").sequential().make_parents().await?;
//! let (data, _stat) = client.get_data(&path).await?;
//! assert_eq!(&data[..], b"payload");
//! client.close().await;
//! # Ok(()) }
//! ```
//!
//! On smol, the same functions under [`smol`]:
//!
//! ```no_run
//! # fn main() -> Result<(), zk_async_std::Error> {
//! smol::block_on(async {
//!     let client = zk_async_std::smol::connect("127.0.0.1:2181").await?;
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
#[cfg(any(feature = "async-std", feature = "smol"))]
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use futures_lite::io::{AsyncRead, AsyncWrite};

pub use zk_client::*;
/// kazoo's and Curator's recipes (locks, elections, leases, queues, ...) over this client.
pub use zk_recipes as recipes;

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

    /// A `dup` of the socket (it stays non-blocking: the flag belongs to the open socket).
    #[cfg(unix)]
    fn socket(&self) -> Option<std::net::TcpStream> {
        use std::os::fd::AsFd;
        self.0
            .as_fd()
            .try_clone_to_owned()
            .ok()
            .map(std::net::TcpStream::from)
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

/// Implements [`Runtime`] for a unit struct with the shared I/O and the given spawn, and the
/// shortcuts `builder` and `connect` for it in module `$module`.
#[cfg(any(feature = "async-std", feature = "smol"))]
macro_rules! async_io_runtime {
    ($name:ident, $label:literal, |$task:ident| $spawn:expr) => {
        impl Runtime for $name {
            fn connect(
                &self,
                host: String,
                port: u16,
            ) -> BoxFuture<io::Result<Box<dyn Transport>>> {
                Box::pin(async move {
                    connect_tcp(host, port)
                        .await
                        .map(|t| Box::new(t) as Box<dyn Transport>)
                })
            }

            fn timer(&self, deadline: Instant) -> Box<dyn Timer> {
                Box::new(AsyncIoTimer::at(deadline))
            }

            fn spawn(&self, $task: BoxFuture<()>) -> io::Result<()> {
                $spawn;
                Ok(())
            }

            fn now(&self) -> Instant {
                Instant::now()
            }

            /// Callers wait in `block_on` (or in tasks) on other threads than the driver's
            /// task: a task waiting for its one reply reads it itself (BENCHMARKS.md, stop 23).
            fn callers_read(&self) -> bool {
                true
            }
        }

        impl $name {
            /// The runtime as zk-client holds it.
            pub fn shared(self) -> Arc<dyn Runtime> {
                Arc::new(self)
            }
        }
    };
}

/// The async-std runtime, as zk-client sees it: the driver runs on async-std's executor.
#[cfg(feature = "async-std")]
#[derive(Debug, Clone, Copy, Default)]
pub struct AsyncStdRuntime;

#[cfg(feature = "async-std")]
async_io_runtime!(AsyncStdRuntime, "async-std", |task| drop(
    async_std::task::spawn(task)
));

/// A builder for a client of `connect_string` on async-std.
#[cfg(feature = "async-std")]
pub fn builder(connect_string: &str) -> ClientBuilder {
    ClientBuilder::new(AsyncStdRuntime.shared(), connect_string)
}

/// Connects on async-std with default settings and waits until the session is established (at
/// most 15 s, like kazoo's `start()`).
///
/// Errors with [`Error::InvalidArgument`]/[`Error::InvalidPath`] for a malformed connect
/// string, [`Error::ConnectFailed`] (naming each server's last failure) if no session was
/// established in time, and [`Error::AuthFailed`] or [`Error::SessionExpired`] if the session
/// could not be established.
#[cfg(feature = "async-std")]
pub async fn connect(connect_string: &str) -> Result<Client, Error> {
    builder(connect_string).connect().await
}

/// The smol runtime, as zk-client sees it: the driver runs on smol's global executor.
#[cfg(feature = "smol")]
#[derive(Debug, Clone, Copy, Default)]
pub struct SmolRuntime;

#[cfg(feature = "smol")]
async_io_runtime!(SmolRuntime, "smol", |task| ::smol::spawn(task).detach());

/// The client on smol: `zk_async_std::smol::connect("h:2181").await`.
#[cfg(feature = "smol")]
pub mod smol {
    pub use crate::SmolRuntime;
    use zk_client::Error;
    pub use zk_client::{Client, ClientBuilder};

    /// A builder for a client of `connect_string` on smol.
    pub fn builder(connect_string: &str) -> ClientBuilder {
        ClientBuilder::new(SmolRuntime.shared(), connect_string)
    }

    /// Connects on smol with default settings and waits until the session is established (at
    /// most 15 s).
    ///
    /// Errors as [`crate::connect`] does.
    pub async fn connect(connect_string: &str) -> Result<Client, Error> {
        builder(connect_string).connect().await
    }
}
