//! Test support for code that uses ZooKeeper, never a run-time dependency of a library crate.
//! Add it as a dev-dependency:
//!
//! ```toml
//! [dev-dependencies]
//! zk-testkit = "0.1"
//! ```
//!
//! - [`testing`]: Curator-style real servers for integration tests, [`TestingServer`] (one
//!   standalone ZooKeeper on a free port in a temp dir; stop, kill, restart) and
//!   [`TestingCluster`] (a 3-server quorum; kill and restart any server). They need a ZooKeeper
//!   3.8 or 3.9 installation and Java, and fail with a message naming what to install when there
//!   is none.
//! - [`real`]: the harness under them, with every knob (releases, `zoo.cfg` lines, TLS, pausing
//!   servers, four-letter words).
//! - [`sim`]: SimServer, an in-memory ZooKeeper ensemble that speaks the real wire protocol
//!   through zk-core's codec (sans-IO, plus a TCP mode), and a deterministic runtime.
//!
//! For tests of your own code, without Java:
//!
//! - [`SimTcpServer`](sim::SimTcpServer) runs the model on loopback ports, so a client on any
//!   runtime (tokio, async-std, smol, the blocking client) can connect to it, and lets the test
//!   inject faults: [`cut`](sim::SimTcpServer::cut), [`partition`](sim::SimTcpServer::partition)
//!   or [`blackhole`](sim::SimTcpServer::blackhole) (freeze) a client's connections and
//!   [`heal`](sim::SimTcpServer::heal) them, [`pause`](sim::SimTcpServer::pause) /
//!   [`resume`](sim::SimTcpServer::resume), [`crash`](sim::SimTcpServer::crash) /
//!   [`restart`](sim::SimTcpServer::restart) or [lag](sim::SimTcpServer::set_lagging) a server,
//!   [`expire_session`](sim::SimTcpServer::expire_session), and answer as any server version
//!   ([`SimConfig::version`](sim::SimConfig::version)). A client is singled out by the
//!   [`Node`](sim::Node) whose connect string it dials
//!   ([`connect_string_for`](sim::SimTcpServer::connect_string_for)).
//! - [`SimWorld`](sim::SimWorld) runs whole clients (and your code over them) on a virtual clock
//!   and a seeded network, in one thread, with the client faults, `crash`/`restart` and
//!   `expire_session` under the same names; the same seed
//!   gives the same run, so a failure replays exactly. `examples/leader_election_partition.rs`
//!   in the repository tests a leader election across a partition and an expiry with it.
//!
//! ```no_run
//! use zk_testkit::sim::{Node, SimConfig, SimTcpServer};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let server = SimTcpServer::start(SimConfig { servers: 3, ..SimConfig::default() })?;
//! // Give each client under test a node of its own, so faults can single it out.
//! let connect_string = server.connect_string_for(Node(1))?;
//! // ... connect a client (any runtime) to `connect_string`, start the code under test ...
//! server.blackhole(Node(1)); // its connections freeze: it goes Suspended after its read timeout
//! server.heal(Node(1)); // the held bytes go on; it resumes its session
//! for id in server.session_ids() {
//!     server.expire_session(id)?; // its ephemeral nodes go, it hears SessionExpired
//! }
//! # Ok(())
//! # }
//! ```
//!
//! # Cargo features
//!
//! - `turmoil`: `sim::turmoil`, SimServer served on the hosts of a
//!   [turmoil](https://docs.rs/turmoil) simulation, for tests that run the client (zk-tokio's
//!   `turmoil` feature) inside turmoil's simulated network.
//! - `gssapi`: only for this repository's own Kerberos tests (the clients built with Kerberos).
//!
//! [`TestingServer`]: testing::TestingServer
//! [`TestingCluster`]: testing::TestingCluster

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod real;
pub mod sim;
pub mod testing;
