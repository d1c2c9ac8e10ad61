//! The sans-IO core of a ZooKeeper client.
//!
//! This crate contains no networking code and reads no clocks: it turns bytes and timestamps
//! handed to it into values and bytes handed back. Sockets, timers and threads belong to the
//! drivers in `zk-client` and the runtime crates; that is what lets the same core run on tokio,
//! async-std, smol or a plain thread, and lets tests step it deterministically.
//!
//! - [`proto`]: the wire protocol, every record of ZooKeeper 3.5 to 3.9 in both directions.
//! - [`session`]: the session state machine ([`Session`]): connections, handshake, heartbeats,
//!   request pipelining, watches and their re-arming, chroot, auth, expiry.
//! - [`hosts`], [`path`], [`version`], [`error`]: connect strings and host rotation, path rules
//!   and chroot, server versions, and the error type every request resolves with.
//!
//! Cargo feature `serde`: `Serialize`/`Deserialize` for [`proto::Stat`], [`proto::Acl`],
//! [`proto::Id`], [`proto::Perms`] and [`SessionId`] (as its text form, which round-trips).

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod error;
pub mod hosts;
pub mod path;
pub mod proto;
pub mod retry;
pub mod rng;
pub mod session;
pub mod version;

pub use error::Error;
pub use hosts::{ConnectString, HostAddr};
pub use session::{
    ConnId, Event, HostFailure, LostReason, RequestId, Session, SessionConfig, SessionId,
    SessionState, WatchKind, WatchedEvent, WatcherId,
};
pub use version::ServerVersion;
