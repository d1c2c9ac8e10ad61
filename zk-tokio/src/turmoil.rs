//! The client inside a [turmoil](https://docs.rs/turmoil) simulation (feature `turmoil`).
//!
//! turmoil runs each simulated host on a tokio runtime of its own, with a paused clock that the
//! simulation moves, and gives hosts a simulated network (`turmoil::net`) with partitions,
//! held links, latency and crashes. [`TurmoilRuntime`] is the client's [`Runtime`] there: it
//! dials with `turmoil::net::TcpStream` (so host names such as `zk1:2181,zk2:2181` are
//! turmoil's: the names given to `Sim::host`), reads tokio's clock rather than the OS's (turmoil
//! owns it), and spawns the client's driver on the host's runtime. Build the client inside a
//! host or client closure of the simulation:
//!
//! ```no_run
//! # fn demo() -> turmoil::Result {
//! let mut sim = turmoil::Builder::new().build();
//! // sim.host("zk1", ...): a ZooKeeper server on port 2181, e.g. zk-testkit's
//! // `sim::turmoil::TurmoilEnsemble`.
//! sim.client("app", async {
//!     let client = zk_tokio::turmoil::connect("zk1:2181").await?;
//!     client.create("/app", "hello").await?;
//!     client.close().await;
//!     Ok(())
//! });
//! sim.run()
//! # }
//! ```
//!
//! Everything the client does then happens in simulated time and replays with turmoil's seed:
//! [`builder`] fixes the client's own random choices (host order, jitter) too.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use tokio::runtime::Handle;

use crate::{
    poll_read_into, BoxFuture, Client, ClientBuilder, Error, Runtime, Timer, TokioTimer, Transport,
};

/// The turmoil host a client runs on, as zk-client sees it: turmoil's network, tokio's
/// (simulated) clock, the host's tokio runtime.
#[derive(Debug, Clone)]
pub struct TurmoilRuntime {
    handle: Option<Handle>,
}

impl Default for TurmoilRuntime {
    /// Uses the tokio runtime of the turmoil host the caller runs on, if any; without one,
    /// starting a client fails with [`Error::Runtime`], and outside a simulation every connection
    /// attempt fails.
    fn default() -> Self {
        TurmoilRuntime {
            handle: Handle::try_current().ok(),
        }
    }
}

impl TurmoilRuntime {
    /// The runtime as zk-client holds it.
    pub fn shared(self) -> Arc<dyn Runtime> {
        Arc::new(self)
    }
}

/// A builder for a client of `connect_string` on the turmoil host the caller runs on, with a
/// random seed fixed by the connect string and the simulated time, so that a simulation replays
/// whole; set [`ClientBuilder::rng_seed`] to vary it.
pub fn builder(connect_string: &str) -> ClientBuilder {
    let elapsed = ::turmoil::sim_elapsed().unwrap_or_default();
    ClientBuilder::new(TurmoilRuntime::default().shared(), connect_string)
        .rng_seed(fnv1a(connect_string.as_bytes(), elapsed.as_nanos()))
}

/// Connects with default settings from the turmoil host the caller runs on and waits until the
/// session is established (at most 15 s of simulated time).
///
/// Errors as [`crate::connect`] does; outside a turmoil host with [`Error::Runtime`].
pub async fn connect(connect_string: &str) -> Result<Client, Error> {
    builder(connect_string).connect().await
}

/// FNV-1a over `bytes` and then `extra`: a seed that needs no randomness.
fn fnv1a(bytes: &[u8], extra: u128) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes.iter().chain(extra.to_le_bytes().iter()) {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// A TCP stream of turmoil's simulated network.
#[derive(Debug)]
pub struct TurmoilTcp(::turmoil::net::TcpStream);

impl Runtime for TurmoilRuntime {
    fn connect(&self, host: String, port: u16) -> BoxFuture<io::Result<Box<dyn Transport>>> {
        Box::pin(async move {
            // turmoil's network exists only while the simulation runs this host; its calls
            // would panic anywhere else.
            if !::turmoil::in_simulation() {
                return Err(io::Error::other(
                    "not inside a turmoil simulation: build the client in a host or client \
                     closure of the Sim",
                ));
            }
            // turmoil resolves the name itself: the names of Sim::host, or an IP address.
            let stream = ::turmoil::net::TcpStream::connect((host.as_str(), port)).await?;
            stream.set_nodelay(true)?;
            Ok(Box::new(TurmoilTcp(stream)) as Box<dyn Transport>)
        })
    }

    fn timer(&self, deadline: Instant) -> Box<dyn Timer> {
        Box::new(TokioTimer {
            deadline,
            handle: self.handle.clone(),
            sleep: None,
            tokio_clock: true,
        })
    }

    fn spawn(&self, task: BoxFuture<()>) -> io::Result<()> {
        let handle = match &self.handle {
            Some(h) => h.clone(),
            None => Handle::try_current().map_err(|_| {
                io::Error::other(
                    "no tokio runtime: build the client inside a turmoil host or client closure",
                )
            })?,
        };
        drop(handle.spawn(task));
        Ok(())
    }

    fn now(&self) -> Instant {
        // turmoil pauses tokio's clock and moves it itself: that clock, not the OS's, is the one
        // the client's timers run on.
        let _guard = self.handle.as_ref().map(Handle::enter);
        tokio::time::Instant::now().into_std()
    }
}

impl Transport for TurmoilTcp {
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        poll_read_into(&mut self.0, cx, buf)
    }

    fn poll_write(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        tokio::io::AsyncWrite::poll_write(Pin::new(&mut self.0), cx, buf)
    }

    fn peer_addr(&self) -> Option<SocketAddr> {
        self.0.peer_addr().ok()
    }
}
