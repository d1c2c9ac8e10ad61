//! Test support, never a run-time dependency of a library crate: a harness that starts real
//! ZooKeeper servers (standalone and 3-node ensembles; stop, kill, pause, restart) and SimServer,
//! an in-memory ZooKeeper model that speaks the real wire protocol through zk-core's codec.
//!
//! Not written yet: SimServer arrives with the session issue, the real-server harness with the
//! client issue.

#![forbid(unsafe_code)]
