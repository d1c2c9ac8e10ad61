//! Test support, never a run-time dependency of a library crate: [`sim`], an in-memory ZooKeeper
//! ensemble that speaks the real wire protocol through zk-core's codec (sans-IO, plus a TCP mode),
//! and (with the client issue) a harness that starts real ZooKeeper servers.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod sim;
