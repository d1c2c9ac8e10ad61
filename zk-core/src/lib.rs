//! The sans-IO core of a ZooKeeper client.
//!
//! This crate contains no networking code and reads no clocks: it turns bytes and timestamps
//! handed to it into values and bytes handed back. Sockets, timers and threads belong to the
//! drivers in `zk-client` and the runtime crates; that is what lets the same core run on tokio,
//! async-std, smol or a plain thread, and lets tests step it deterministically.
//!
//! Today it holds the wire protocol ([`proto`]): every record of ZooKeeper 3.5 to 3.9 in both
//! directions, with framing. The session state machine, path rules and watch registry build on it.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod proto;
