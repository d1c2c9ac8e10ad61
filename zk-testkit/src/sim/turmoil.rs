//! [`SimServer`] on hosts of a [turmoil](https://docs.rs/turmoil) simulation (feature
//! `turmoil`), for tests that put the client (zk-tokio's `turmoil` runtime) and the user's own
//! code inside turmoil's simulated network.
//!
//! A [`TurmoilEnsemble`] is one model ensemble whose servers are turmoil hosts `zk1`..`zkN`
//! (port 2181 unless told otherwise). Each host runs a `turmoil::net::TcpListener` accept loop
//! that feeds the sans-IO model: a task per connection hands it the bytes read and writes out what
//! it answers, and a ticker drives its session expiry and sweeper with tokio's timers, which
//! turmoil's simulated clock runs. The hosts share the one model, as the servers of an ensemble
//! share one committed log.
//!
//! What turmoil does to the network applies to the model's connections as to any others:
//! `turmoil::partition`/`repair` drops what crosses the link, `hold`/`release` stalls it, and
//! `Sim::crash` of a server host crashes that server in the model (its connections close, it
//! accepts none) until `Sim::bounce` brings it back. Other faults (expire a session, make a server
//! lag or read-only) go through [`TurmoilEnsemble::with_model`].
//!
//! Time in the model is the simulation's elapsed time (`turmoil::sim_elapsed`), the same on every
//! host, so a run replays with turmoil's seed.
//!
//! ```toml
//! [dev-dependencies]
//! zk-testkit = { version = "0.1", features = ["turmoil"] }
//! zk-tokio = { version = "0.1", features = ["turmoil"] } # the client's side
//! turmoil = "0.7"
//! ```
//!
//! ```no_run
//! use zk_testkit::sim::{turmoil::TurmoilEnsemble, SimConfig};
//!
//! # fn demo() -> turmoil::Result {
//! let mut sim = turmoil::Builder::new().build();
//! let zk = TurmoilEnsemble::new(SimConfig { servers: 3, ..SimConfig::default() });
//! zk.register(&mut sim); // hosts zk1, zk2, zk3
//! let connect = zk.connect_string(); // "zk1:2181,zk2:2181,zk3:2181"
//! sim.client("app", async move {
//!     let client = zk_tokio::turmoil::connect(&connect).await?;
//!     client.create("/app", "hello").await?;
//!     client.close().await;
//!     Ok(())
//! });
//! sim.run()
//! # }
//! ```

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::rc::Rc;
use std::time::Instant;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, Notify};

use super::{ServerOutput, SimConfig, SimConnId, SimServer};

/// The port the servers listen on unless [`TurmoilEnsemble::port`] says otherwise: ZooKeeper's.
pub const DEFAULT_PORT: u16 = 2181;

/// What a connection's task is told to do.
enum Out {
    Data(Vec<u8>),
    Close,
}

/// The model, its clock, and the connections its outputs go to.
struct Shared {
    model: SimServer,
    /// The model's `now` at simulated time zero.
    epoch: Instant,
    /// The last `now` given to the model: hosts are ticked one after the other, so their views
    /// of the simulated time differ by up to a tick, and the model must never see time go back.
    last: Instant,
    outboxes: BTreeMap<SimConnId, mpsc::UnboundedSender<Out>>,
}

impl Shared {
    /// The model's clock: the simulation's elapsed time, never going back. Outside a running
    /// host (a crash, a test's `with_model` between steps) the last time seen.
    fn now(&mut self) -> Instant {
        if let Some(elapsed) = ::turmoil::sim_elapsed() {
            self.last = self.last.max(self.epoch + elapsed);
        }
        self.last
    }

    /// Hands every output of the model to its connection's task, in order.
    fn flush(&mut self) {
        while let Some(out) = self.model.poll_output() {
            match out {
                ServerOutput::Data { conn, bytes } => {
                    if let Some(tx) = self.outboxes.get(&conn) {
                        // A task that is gone has nothing left to write to.
                        let _ = tx.send(Out::Data(bytes));
                    }
                }
                ServerOutput::Close { conn } => {
                    if let Some(tx) = self.outboxes.remove(&conn) {
                        let _ = tx.send(Out::Close);
                    }
                }
            }
        }
    }
}

/// One [`SimServer`] ensemble served on turmoil hosts (`zk1`..`zkN`, one per server of the
/// config). Cheap to clone; clones share the model. Not `Send`: turmoil runs a whole simulation
/// on one thread, and so does this.
#[derive(Clone)]
pub struct TurmoilEnsemble {
    shared: Rc<RefCell<Shared>>,
    /// Woken on every change to the model, so the tickers look at its next deadline again.
    changed: Rc<Notify>,
    hosts: Vec<String>,
    port: u16,
}

impl std::fmt::Debug for TurmoilEnsemble {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TurmoilEnsemble")
            .field("hosts", &self.hosts)
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

impl TurmoilEnsemble {
    /// A fresh model ensemble of `config.servers` servers (at least one), to be served on hosts
    /// named `zk1`..`zkN` at port [`DEFAULT_PORT`].
    pub fn new(config: SimConfig) -> Self {
        let servers = config.servers.max(1);
        // Any instant will do as the origin: the model only compares and subtracts its instants,
        // and its wall-clock times come from `config.epoch_ms`.
        let epoch = Instant::now();
        TurmoilEnsemble {
            shared: Rc::new(RefCell::new(Shared {
                model: SimServer::new(config, epoch),
                epoch,
                last: epoch,
                outboxes: BTreeMap::new(),
            })),
            changed: Rc::new(Notify::new()),
            hosts: (1..=servers).map(|i| format!("zk{i}")).collect(),
            port: DEFAULT_PORT,
        }
    }

    /// Serves on `port` instead of [`DEFAULT_PORT`].
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// The host names, in server order: `zk1`..`zkN`.
    pub fn hosts(&self) -> Vec<String> {
        self.hosts.clone()
    }

    /// `zk1:2181,zk2:2181,...`, for a client's connect string.
    pub fn connect_string(&self) -> String {
        self.hosts
            .iter()
            .map(|h| format!("{h}:{}", self.port))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Adds one host per server to `sim`, each running [`serve`](Self::serve).
    ///
    /// turmoil panics if a host of the same name was already added.
    pub fn register(&self, sim: &mut ::turmoil::Sim<'_>) {
        for (server, name) in self.hosts.iter().enumerate() {
            let ensemble = self.clone();
            sim.host(name.as_str(), move || ensemble.clone().serve(server));
        }
    }

    /// The software of server `server`'s host, for a test that adds the hosts itself (other
    /// names, other software beside it): listens on the port, and serves the model's server
    /// `server` until the host crashes. A server the model holds crashed (after a host crash,
    /// or [`SimServer::crash`]) is restarted first, so `Sim::bounce` restarts it.
    ///
    /// Errors when the port cannot be bound or accepting fails (turmoil then fails the
    /// simulation with the error); once serving, the server is crashed in the model as it ends.
    pub async fn serve(self, server: usize) -> ::turmoil::Result {
        let listener =
            ::turmoil::net::TcpListener::bind((IpAddr::V4(Ipv4Addr::UNSPECIFIED), self.port))
                .await?;
        {
            let mut s = self.shared.borrow_mut();
            let now = s.now();
            if !s.model.is_up(server) {
                s.model.restart(now, server);
            }
            s.flush();
        }
        // A crashed host drops this future: its server goes down in the model with it.
        let _down = CrashOnDrop {
            ensemble: self.clone(),
            server,
        };
        tokio::select! {
            // Fixed polling order: tokio's random one would break turmoil's replay.
            biased;
            r = self.accept_loop(&listener, server) => r,
            () = self.ticker() => Ok(()),
        }
    }

    /// Runs `f` on the model with its current time (to expire a session, make a server lag,
    /// inspect the tree...), then sends out whatever it queued. Call it from a host or client
    /// closure of the simulation (or between steps, when the time is that of the last step).
    ///
    /// Panics if called from inside `f` (the model is borrowed).
    pub fn with_model<R>(&self, f: impl FnOnce(&mut SimServer, Instant) -> R) -> R {
        let r = {
            let mut s = self.shared.borrow_mut();
            let now = s.now();
            let r = f(&mut s.model, now);
            s.flush();
            r
        };
        self.changed.notify_waiters();
        r
    }

    async fn accept_loop(
        &self,
        listener: &::turmoil::net::TcpListener,
        server: usize,
    ) -> ::turmoil::Result {
        loop {
            let (stream, _peer) = listener.accept().await?;
            let (tx, rx) = mpsc::unbounded_channel();
            let conn = {
                let mut s = self.shared.borrow_mut();
                let now = s.now();
                let conn = s.model.accept(now, server);
                s.outboxes.insert(conn, tx);
                s.flush();
                conn
            };
            // The model is not Send, and turmoil runs each host on a LocalSet.
            tokio::task::spawn_local(self.clone().connection(conn, stream, rx));
        }
    }

    /// One connection: the bytes read go to the model, what it answers is written back.
    async fn connection(
        self,
        conn: SimConnId,
        stream: ::turmoil::net::TcpStream,
        mut rx: mpsc::UnboundedReceiver<Out>,
    ) {
        let (mut reader, mut writer) = stream.into_split();
        let mut buf = vec![0u8; 64 * 1024];
        let closed_by_model = loop {
            tokio::select! {
                biased;
                out = rx.recv() => match out {
                    Some(Out::Data(bytes)) => {
                        if writer.write_all(&bytes).await.is_err() {
                            break false;
                        }
                    }
                    Some(Out::Close) | None => break true,
                },
                read = reader.read(&mut buf) => match read {
                    Ok(0) | Err(_) => break false,
                    Ok(n) => {
                        {
                            let mut s = self.shared.borrow_mut();
                            let now = s.now();
                            s.model.handle_bytes(now, conn, &buf[..n]);
                            s.flush();
                        }
                        self.changed.notify_waiters();
                    }
                },
            }
        };
        if !closed_by_model {
            {
                let mut s = self.shared.borrow_mut();
                let now = s.now();
                s.outboxes.remove(&conn);
                s.model.handle_closed(now, conn);
                s.flush();
            }
            self.changed.notify_waiters();
        }
        // Dropping the halves closes the stream (FIN) once what was written is out.
    }

    /// Calls [`SimServer::handle_timeout`] at each deadline of the model. Every server host runs
    /// one: whichever comes first does the work, the others find nothing due.
    async fn ticker(&self) {
        loop {
            let wait = {
                let mut s = self.shared.borrow_mut();
                let now = s.now();
                if s.model.poll_timeout().is_some_and(|t| t <= now) {
                    s.model.handle_timeout(now);
                    s.flush();
                }
                // At least a millisecond: a zero sleep would spin without letting turmoil's
                // clock move.
                s.model.poll_timeout().map(|t| {
                    t.saturating_duration_since(now)
                        .max(std::time::Duration::from_millis(1))
                })
            };
            // The notified future is made and polled before anything else can change the
            // model (one thread, no await in between), so no change is missed.
            match wait {
                Some(d) => {
                    tokio::select! {
                        biased;
                        () = self.changed.notified() => {}
                        () = tokio::time::sleep(d) => {}
                    }
                }
                None => self.changed.notified().await,
            }
        }
    }
}

/// Crashes a server in the model when its host's software is dropped (turmoil's `Sim::crash`).
struct CrashOnDrop {
    ensemble: TurmoilEnsemble,
    server: usize,
}

impl Drop for CrashOnDrop {
    fn drop(&mut self) {
        // A drop during a panic elsewhere, with the model borrowed, must not panic again.
        if let Ok(mut s) = self.ensemble.shared.try_borrow_mut() {
            // No `sim_elapsed` here: turmoil has no current host time during a crash.
            let now = s.last;
            s.model.crash(now, self.server);
            s.flush();
        }
        self.ensemble.changed.notify_waiters();
    }
}
