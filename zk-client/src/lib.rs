//! The ZooKeeper client API: everything kazoo's `KazooClient` offers, and every operation of
//! ZooKeeper 3.5 to 3.9, as one async API over a small [`Runtime`] trait.
//!
//! Pick a runtime crate (`zk-tokio`, `zk-async-std` for async-std and smol, `zk-blocking` for
//! none); each re-exports this API with its runtime filled in:
//!
//! ```text
//! let client = zk_tokio::Client::connect("127.0.0.1:2181/app").await?;
//! client.create("/service/node-", "addr").ephemeral().sequential().make_parents().await?;
//! let (data, stat) = client.get_data("/config").await?;
//! ```
//!
//! The pieces: [`Client`] (session facts, connect/close/restart) and its [`ClientBuilder`]; the
//! operations in [`ops`] (create, get_data, set_data, delete, exists, get_children, ensure_path,
//! sync, ACLs, auth, getEphemerals, getAllChildrenNumber, whoAmI, config, multiRead); watches in
//! [`watch`] (one-shot, persistent, kazoo's DataWatch and ChildrenWatch as streams);
//! [`txn`] transactions; [`Client::retry`] with a [`RetryPolicy`]; [`four_letter_word`]. The
//! protocol, the session rules and the error type come from zk-core.
//!
//! # Observability
//!
//! Every request is a `tracing` span (target `zk_client::request`, level DEBUG, name `request`)
//! with the fields `op`, `path`, `id`, and, when it resolves, `result` (`"ok"` or `"error"`),
//! `error` and `elapsed_us`. Connections log `connecting` (with the host), `connected`,
//! `connect failed` and `connection closed` (with the reason) under `zk_client::connection`, and
//! session state changes under `zk_client::session`. With no subscriber interested, none of it
//! formats or allocates anything.
//!
//! # Cargo features
//!
//! - `metrics`: records through the [`metrics`](https://docs.rs/metrics) facade, into whatever
//!   recorder (exporter) the application installs: `zk_client_requests_total{op}`,
//!   `zk_client_request_errors_total{op}`, the histogram `zk_client_request_duration_seconds{op}`,
//!   `zk_client_connects_total`, `zk_client_connect_failures_total`,
//!   `zk_client_session_state_changes_total{state}`, and the gauges `zk_client_watches`,
//!   `zk_client_requests_in_flight` and `zk_client_requests_queued`. With no recorder installed it
//!   allocates nothing.
//! - `serde`: `Serialize`/`Deserialize` for zk-core's `Stat`, `Acl`, `Id`, `Perms` and
//!   `SessionId` (the last as its text form, `0x<id>:<password>`).
//! - `gssapi`: Kerberos (SASL GSSAPI) through the system's GSSAPI library.
//! - `pkcs12`: PKCS#12 key and trust stores for TLS, as Java's keytool writes them
//!   (`TlsConfig::client_keystore_pkcs12`, `TlsConfig::ca_pkcs12`).

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod acl;
pub mod caller_reads;
mod client;
mod data;
mod driver;
mod engine;
pub mod ensemble;
mod four_letter;
#[cfg(feature = "gssapi")]
mod kerberos;
mod obs;
pub mod ops;
mod read_buf;
mod reply;
mod retry;
pub mod runtime;
mod sasl;
mod task_reads;
mod tls;
#[cfg(feature = "pkcs12")]
mod tls_pkcs12;
pub mod txn;
pub mod watch;

pub use acl::{
    make_acl, make_digest_acl, make_digest_acl_credential, make_ip_acl, make_sasl_acl,
    make_x509_acl,
};
pub use client::{Client, ClientBuilder, StateChanges, DEFAULT_WATCH_QUEUE_LIMIT};
pub use data::Data;
pub use ensemble::parse_ensemble_config;
pub use four_letter::four_letter_word_on as four_letter_word;
#[cfg(feature = "gssapi")]
pub use kerberos::KerberosConfig;
pub use ops::{ReadOp, ReadResult};
pub use reply::OpFuture;
pub use runtime::{unwaited, BoxFuture, Runtime, Timer, Transport};
pub use tls::TlsConfig;
pub use txn::{OpResult, Transaction};
pub use watch::{
    ChildrenItem, ChildrenWatch, DataItem, DataWatch, PersistentItem, PersistentWatch, Watch,
};

/// The byte buffer node data comes in.
pub use bytes::Bytes;
/// The sans-IO core, for what the re-exports below do not name (codec, session machine).
pub use zk_core;
pub use zk_core::hosts::{ConnectString, ReconnectPolicy};
pub use zk_core::proto::{
    Acl, AddWatchMode, ChildNames, ClientInfo, CreateMode, ErrorCode, EventType, Id, MultiResult,
    OpCode, Perms, Stat, WatcherType,
};
pub use zk_core::retry::{RetryPolicy, RetryState};
pub use zk_core::session::{HostFailure, LostReason, WatchEnd};
pub use zk_core::{Error, HostAddr, ServerVersion, SessionId, SessionState, WatchedEvent};
