//! A blocking ZooKeeper client for programs without an async runtime: zk-client's surface as
//! blocking methods, plus kazoo-style callback watches and state listeners.
//!
//! ```no_run
//! use zk_blocking::{Client, Error, SessionState};
//!
//! fn main() -> Result<(), Error> {
//!     let client = Client::connect("127.0.0.1:2181/app")?;
//!
//!     // zk-client's builders and options; `.run()` where async code writes `.await`.
//!     let me = client
//!         .create("/workers/worker-", "10.0.0.7:8080")
//!         .ephemeral()
//!         .sequential()
//!         .make_parents()
//!         .run()?;
//!     let (data, stat) = client.get_data(&me).run()?;
//!     client.set_data(&me, "10.0.0.7:8081").version(stat.version).run()?;
//!
//!     // kazoo's get_async: many requests in flight from one thread, results in order.
//!     let pending: Vec<_> = ["/a", "/b", "/c"].iter().map(|p| client.get_data(p).run_async()).collect();
//!     for result in pending {
//!         println!("{:?}", result.get().map(|(data, _)| data));
//!     }
//!
//!     // kazoo's DataWatch: called now with the current data, then after every change.
//!     let config = client.data_watch("/config", |data, event| {
//!         println!("config is now {data:?} (after {event:?})");
//!         true // keep watching
//!     })?;
//!
//!     // kazoo's add_listener.
//!     let listener = client.add_listener(|state| {
//!         if state == SessionState::Suspended {
//!             eprintln!("connection lost; requests wait for a reconnect");
//!         }
//!     })?;
//!
//!     // A one-shot watch, waited on with a timeout.
//!     let (_children, mut watch) = client.get_children("/workers").watch().run()?;
//!     if let Some(event) = watch.wait_timeout(std::time::Duration::from_secs(1)) {
//!         println!("workers changed: {:?}", event?);
//!     }
//!
//!     config.stop();
//!     listener.remove();
//!     client.close();
//!     # let _ = data;
//!     Ok(())
//! }
//! ```
//!
//! How it runs: each client has a background thread, `zk-driver`, that owns the connection
//! (pings, reconnects, watch re-arming; when the session ends, the thread waits a second for the
//! next task, such as another session's driver, before it exits); a blocking method writes its
//! request and waits on the calling thread, on the session's socket itself, reading its reply
//! (and whatever else arrives) as a blocking socket program would, so no other thread has to
//! wake it; while one thread reads, others waiting on the same client are woken by it (plain
//! TCP; over TLS the `zk-driver` thread reads). Callback watches and listeners each run on a
//! thread of their own, never under the client's lock, so a callback may call the client freely.
//! Do not call blocking methods from inside an async task; use zk-tokio or zk-async-std there.
//!
//! Errors are zk-client's [`Error`]. Most methods list the errors particular to them and end with
//! "the session's errors": ConnectionLoss (the link dropped while the request was in flight; it
//! may or may not have applied), SessionExpired, Closed, Timeout (with a request timeout set),
//! AuthFailed, NotReadOnly (a write on a read-only server), RequestTooLarge, and Unsupported (the
//! server is too old for the operation).

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod callbacks;
mod client;
mod driver_threads;
// The runtime's own socket and timer. Linux and Android only: elsewhere async-io's (zk-async-std's)
// set the socket options those systems need (SO_NOSIGPIPE), and nobody here can test them.
#[cfg(any(target_os = "linux", target_os = "android"))]
mod local_io;
mod ops;
mod pending;
#[cfg(unix)]
#[cfg_attr(not(any(target_os = "linux", target_os = "android")), allow(dead_code))]
mod reactor;
pub mod recipes;
mod recipes_coord;
mod runtime;
mod wait;
mod watch;

pub use callbacks::{ListenerHandle, WatchHandle};
pub use client::{Client, ClientBuilder};
pub use ops::{
    ChildrenStatWatchRead, ChildrenWatchRead, Create, CreateWithStat, Delete, Exists, ExistsWatch,
    GetChildren, GetData, GetDataWatch, Ready, SetData, Transaction, TxnCreate,
};
pub use pending::AsyncResult;
pub use runtime::ThreadRuntime;
pub use watch::{PersistentWatch, Watch};

pub use bytes::Bytes;
#[cfg(feature = "gssapi")]
pub use zk_client::KerberosConfig;
pub use zk_client::{
    make_acl, make_digest_acl, make_digest_acl_credential, Acl, AddWatchMode, ChildNames,
    ClientInfo, ConnectString, CreateMode, Data, Error, ErrorCode, EventType, HostAddr,
    HostFailure, Id, LostReason, MultiResult, OpCode, OpResult, Perms, PersistentItem, ReadOp,
    ReadResult, ReconnectPolicy, RetryPolicy, RetryState, ServerVersion, SessionId, SessionState,
    Stat, WatchEnd, WatchedEvent, WatcherType,
};
pub use zk_client::{make_ip_acl, make_sasl_acl, make_x509_acl, TlsConfig};
