//! The ZooKeeper client on async-std and smol: a [`Runtime`] for zk-client
//! plus re-exports, so an async-std or smol program needs only this crate.
//!
//! Both runtimes share the I/O, built on async-io ([`AsyncIoTcp`],
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
//! There the client's driver runs on smol's global executor (on async-std, on its thread pool),
//! on a thread of its own, and each reply to pipelined calls crosses from that thread to the
//! caller's. A program that runs an executor of its own (`smol::block_on(ex.run(main))`, as
//! smol's documentation shows) can have the driver run on it, with its calls, on one thread:
//! [`smol::builder_on`] and [`SmolRuntime::on`], the program then running `ex` for as long as it
//! uses the client. On async-std, [`builder_local`] and [`AsyncStdRuntime::local`] do the same
//! with the executor async-std runs inside `async_std::task::block_on` (`#[async_std::main]`).
//!
//! Features `async-std` and `smol` (both on by default) bring each runtime's spawner; with both
//! off, only the shared [`AsyncIoTcp`], [`AsyncIoTimer`] and [`connect_tcp`] remain, for crates
//! that spawn in their own way (zk-blocking does).

#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::future::Future as _;
use std::io::{self, Read as _};
use std::net::SocketAddr;
use std::pin::Pin;
#[cfg(any(feature = "async-std", feature = "smol"))]
use std::sync::Arc;
#[cfg(feature = "smol")]
use std::sync::Weak;
use std::task::{Context, Poll};
use std::time::Instant;

use futures_lite::io::AsyncWrite;

pub use zk_client::*;
/// kazoo's and Curator's recipes (locks, elections, leases, queues, ...) over this client.
pub use zk_recipes as recipes;

/// A TCP stream on async-io, shared by every runtime of this crate.
#[derive(Debug)]
pub struct AsyncIoTcp {
    stream: async_io::Async<std::net::TcpStream>,
    /// The next read waits for readiness before it tries the socket: the last read emptied the
    /// socket's buffer (it returned less than it was given, or "would block"). Tried at once,
    /// that read would nearly always fail with "would block" (replies come only for what was
    /// sent), one `recvfrom` per batch of replies; tokio's reads skip it the same way. Measured:
    /// 0.8 to 1.0 fewer per W2 and W3 request, with as many reactor turns. Every wake-up goes
    /// through the wait too, which takes async-io's note of the event that woke it (a note left
    /// standing would make a later wait return at once, for bytes already read). No byte can be
    /// missed: async-io re-arms its one-shot registration for the wait, and the kernel reports
    /// bytes already there.
    wait_first: bool,
}

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
        match async_io::Async::<std::net::TcpStream>::connect(addr).await {
            Ok(stream) => {
                stream.get_ref().set_nodelay(true)?;
                return Ok(AsyncIoTcp {
                    stream,
                    wait_first: false,
                });
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
        loop {
            if self.wait_first {
                std::task::ready!(self.stream.poll_readable(cx))?;
                self.wait_first = false;
            }
            let mut socket: &std::net::TcpStream = self.stream.get_ref();
            match socket.read(buf) {
                Ok(n) => {
                    self.wait_first = n > 0 && n < buf.len();
                    return Poll::Ready(Ok(n));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.wait_first = true,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }

    /// A write that fails lets the next read try the socket at once: a TLS handshake refused by
    /// the server reads the alert that says why right after its write failed (zk-client's TLS
    /// `refusal_or`), which a wait for the next readiness event would not find.
    fn poll_write(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.stream).poll_write(cx, buf);
        if let Poll::Ready(Err(_)) = written {
            self.wait_first = false;
        }
        written
    }

    fn peer_addr(&self) -> Option<SocketAddr> {
        self.stream.get_ref().peer_addr().ok()
    }

    /// A `dup` of the socket (it stays non-blocking: the flag belongs to the open socket).
    #[cfg(unix)]
    fn socket(&self) -> Option<std::net::TcpStream> {
        use std::os::fd::AsFd;
        self.stream
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

/// Implements [`Runtime`] for `$name` with the shared I/O and `$spawn`, a
/// `fn(&$name, BoxFuture<()>) -> io::Result<()>` that spawns a task on the runtime's executor.
#[cfg(any(feature = "async-std", feature = "smol"))]
macro_rules! async_io_runtime {
    ($name:ident, $spawn:path) => {
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

            fn spawn(&self, task: BoxFuture<()>) -> io::Result<()> {
                $spawn(self, task)
            }

            fn now(&self) -> Instant {
                Instant::now()
            }

            /// A task waiting for its one reply reads it itself: callers wait in `block_on` (or
            /// in tasks) on other threads than the driver's task (BENCHMARKS.md, stop 23), or,
            /// on an executor of the program's own (`SmolRuntime::on`), on the same thread,
            /// where a sequential call still costs about a fifth less CPU read by its task than
            /// handed over by the driver (BENCHMARKS.md, stop 30). async-std's
            /// `AsyncStdRuntime::local` shares the thread the same way and keeps it on too, not
            /// measured without it (a sequential call there: 0.97× the pool's CPU, stop 31).
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

/// The async-std runtime, as zk-client sees it: the client's driver, and every task the client
/// and its recipes spawn, run on async-std's thread pool ([`AsyncStdRuntime::default`]) or on
/// the thread that starts them ([`AsyncStdRuntime::local`]).
#[cfg(feature = "async-std")]
#[derive(Debug, Clone, Copy, Default)]
pub struct AsyncStdRuntime {
    /// Spawn with `spawn_local` (the starting thread's executor) instead of onto the pool.
    local: bool,
}

#[cfg(feature = "async-std")]
async_io_runtime!(AsyncStdRuntime, AsyncStdRuntime::spawn_task);

#[cfg(feature = "async-std")]
impl AsyncStdRuntime {
    /// The client's tasks run on the thread that starts them (the one that calls
    /// [`ClientBuilder::connect`]) when that thread is running async-std's executor there: in
    /// `async_std::task::block_on` (so in `#[async_std::main]`), or in a task on async-std's
    /// pool, whose threads each run an executor of their own beside the pool's. Started from
    /// `main`, the client's driver and its calls then share that thread, as on tokio's
    /// current-thread runtime, and replies to pipelined calls no longer cross from a pool thread
    /// to the caller's: BENCHMARKS.md (stop 31) measured 0.68-0.84× the client CPU of
    /// [`AsyncStdRuntime::default`] per pipelined request and 0.6× per session opened and
    /// closed. Tasks started anywhere else (on another runtime's thread, on a thread whose
    /// `block_on` has returned, from within the client's own tasks, or while a thread is torn
    /// down) go to async-std's pool, as with [`AsyncStdRuntime::default`], so nothing the client
    /// or a recipe starts later (a `restart()`'s driver, a dropped guard's clean-up) waits
    /// where no executor runs.
    ///
    /// The session is driven only while that thread runs async-std's executor: while the
    /// thread blocks outside an `.await` (a blocking call, `std::thread::sleep`, a nested
    /// `block_on`, which async-std runs without its executor), or once `block_on` has returned,
    /// no ping goes out (the server expires the session after its timeout), nothing
    /// reconnects, and waits that need the driver (pipelined calls, `close()`, watches) do not
    /// end. Started from a pool task, the driver stays on that pool thread (it is not stolen
    /// by the others), so blocking work on that thread stalls the session too. A
    /// [`ClientBuilder::connect`] whose driver never ran errors with [`Error::Runtime`] after
    /// its connect timeout (one second or more), saying so.
    pub fn local() -> Self {
        AsyncStdRuntime { local: true }
    }

    fn spawn_task(&self, task: BoxFuture<()>) -> io::Result<()> {
        // In an async-std task, async-std runs this thread's local executor (its `block_on`
        // and its pool's threads do); `try_current` is safe while the thread is torn down.
        // async-std's own `spawn_local`, behind its `unstable` feature, is this call plus
        // async-std's task-locals, which the client's tasks do not use.
        if self.local && async_std::task::try_current().is_some() {
            async_global_executor::spawn_local(task).detach();
        } else {
            drop(async_std::task::spawn(task));
        }
        Ok(())
    }
}

/// A builder for a client of `connect_string` on async-std, its tasks on async-std's pool.
#[cfg(feature = "async-std")]
pub fn builder(connect_string: &str) -> ClientBuilder {
    ClientBuilder::new(AsyncStdRuntime::default().shared(), connect_string)
}

/// A builder for a client of `connect_string` on async-std whose tasks run on the thread that
/// connects, which must run async-std's executor for as long as it uses the client
/// ([`AsyncStdRuntime::local`]):
///
/// ```no_run
/// # fn main() -> Result<(), zk_async_std::Error> {
/// async_std::task::block_on(async {
///     let client = zk_async_std::builder_local("127.0.0.1:2181").connect().await?;
///     let stat = client.exists("/zookeeper").await?;
///     assert!(stat.is_some());
///     client.close().await;
///     Ok(())
/// })
/// # }
/// ```
#[cfg(feature = "async-std")]
pub fn builder_local(connect_string: &str) -> ClientBuilder {
    ClientBuilder::new(AsyncStdRuntime::local().shared(), connect_string)
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

/// The smol runtime, as zk-client sees it: the client's driver, and every task the client and
/// its recipes spawn, run on smol's global executor ([`SmolRuntime::default`]) or on an executor
/// of the program's own ([`SmolRuntime::on`]).
#[cfg(feature = "smol")]
#[derive(Debug, Clone, Default)]
pub struct SmolRuntime {
    /// `None`: smol's global executor (`smol::spawn`). Weak: the executor holds the client's
    /// tasks, which hold this runtime; a strong reference would keep an executor the program
    /// dropped alive, with the driver in it never run nor dropped.
    executor: Option<Weak<::smol::Executor<'static>>>,
}

#[cfg(feature = "smol")]
async_io_runtime!(SmolRuntime, SmolRuntime::spawn_task);

#[cfg(feature = "smol")]
impl SmolRuntime {
    /// The client's tasks run on `executor`, which the program runs
    /// (`smol::block_on(executor.run(main))`) for as long as it uses the client: the session is
    /// driven only while the executor runs. Run by one thread, as smol's documentation shows,
    /// the client's calls and its driver share that thread, as on tokio's current-thread
    /// runtime, and replies to pipelined calls no longer cross from smol's global executor's
    /// thread to the caller's: BENCHMARKS.md (stop 30) measured 0.64-0.86× the client CPU of
    /// [`SmolRuntime::default`] per pipelined request, 0.94× per sequential call and 0.58× per
    /// session opened and closed.
    ///
    /// Every wait on the client must happen while the executor runs, as on tokio's
    /// current-thread runtime: while nobody runs it the driver does not run either, so no ping
    /// goes out (the server expires the session after its timeout), nothing reconnects, and
    /// waits that need the driver (pipelined calls, `close()`, watches) do not end. A
    /// [`ClientBuilder::connect`] whose driver never ran errors with [`Error::Runtime`] after
    /// its connect timeout (one second or more), saying so. An executor dropped with the
    /// client's driver on it ends the session for everyone waiting here ([`Error::Closed`]):
    /// the runtime holds it weakly, and dropping it cancels its tasks. That is not `close()`:
    /// no closeSession is sent, so the server keeps the session, and its ephemeral nodes, until
    /// the session timeout. Starting a task after that (a restart's driver) errors
    /// with [`Error::Runtime`].
    pub fn on(executor: &Arc<::smol::Executor<'static>>) -> Self {
        SmolRuntime {
            executor: Some(Arc::downgrade(executor)),
        }
    }

    fn spawn_task(&self, task: BoxFuture<()>) -> io::Result<()> {
        match &self.executor {
            None => ::smol::spawn(task).detach(),
            Some(executor) => match executor.upgrade() {
                Some(executor) => executor.spawn(task).detach(),
                None => {
                    return Err(io::Error::other(
                        "the smol executor given to SmolRuntime::on was dropped",
                    ))
                }
            },
        }
        Ok(())
    }
}

/// The client on smol: `zk_async_std::smol::connect("h:2181").await`, its driver on smol's global
/// executor; or on an executor of the program's own, [`smol::builder_on`].
#[cfg(feature = "smol")]
pub mod smol {
    use std::sync::Arc;

    pub use crate::SmolRuntime;
    use zk_client::Error;
    pub use zk_client::{Client, ClientBuilder};

    /// A builder for a client of `connect_string` on smol's global executor.
    pub fn builder(connect_string: &str) -> ClientBuilder {
        ClientBuilder::new(SmolRuntime::default().shared(), connect_string)
    }

    /// A builder for a client of `connect_string` whose tasks run on `executor`, which the
    /// program must run while it uses the client ([`SmolRuntime::on`]):
    ///
    /// ```no_run
    /// # fn main() -> Result<(), zk_async_std::Error> {
    /// use std::sync::Arc;
    ///
    /// let ex = Arc::new(smol::Executor::new());
    /// smol::block_on(ex.run(async {
    ///     let client = zk_async_std::smol::builder_on(&ex, "127.0.0.1:2181")
    ///         .connect()
    ///         .await?;
    ///     let stat = client.exists("/zookeeper").await?;
    ///     assert!(stat.is_some());
    ///     client.close().await;
    ///     Ok(())
    /// }))
    /// # }
    /// ```
    pub fn builder_on(
        executor: &Arc<::smol::Executor<'static>>,
        connect_string: &str,
    ) -> ClientBuilder {
        ClientBuilder::new(SmolRuntime::on(executor).shared(), connect_string)
    }

    /// Connects on smol with default settings and waits until the session is established (at
    /// most 15 s).
    ///
    /// Errors as [`crate::connect`] does.
    pub async fn connect(connect_string: &str) -> Result<Client, Error> {
        builder(connect_string).connect().await
    }
}
