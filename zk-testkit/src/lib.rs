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
