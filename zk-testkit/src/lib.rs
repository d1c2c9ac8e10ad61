//! Test support, never a run-time dependency of a library crate: [`sim`], an in-memory ZooKeeper
//! ensemble that speaks the real wire protocol through zk-core's codec (sans-IO, plus a TCP mode),
//! and [`real`], a harness that starts real ZooKeeper servers (3.8 and 3.9; standalone and
//! ensembles) and stops, kills, pauses and restarts them.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod real;
pub mod sim;
