//! What the session hands out: replies, watch events and state changes, in one total order, and
//! the identifiers that tie them to what the user and the driver asked for.

use std::fmt;

use bytes::Bytes;

use super::watches::WatcherId;
use crate::error::Error;
use crate::hosts::HostAddr;
use crate::proto::{EventType, Response};

/// Identifies a submitted request; its reply carries the same id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RequestId(pub u64);

impl RequestId {
    /// The watcher this request arms, if it arms one (a watcher is named after its request).
    pub fn watcher(self) -> WatcherId {
        WatcherId(self.0)
    }
}

/// Identifies one transport connection. Every dial gets a fresh id, so input from a connection
/// the session has given up on is recognised and ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnId(pub u64);

/// Identifies a four-letter-word probe the session asked the driver to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ProbeId(pub u64);

/// Why a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LostReason {
    /// The server expired the session (or the client did, with client-side expiry on), or a
    /// reconnect got a different session id than the one resumed.
    Expired,
    /// This client closed it.
    Closed,
    /// The server rejected the credentials (or required SASL); the server closed the session's
    /// connection and the client does not retry.
    AuthFailed,
}

impl LostReason {
    /// The error pending requests fail with when the session ends for this reason.
    pub fn error(self) -> Error {
        match self {
            LostReason::Expired => Error::SessionExpired,
            LostReason::Closed => Error::Closed,
            LostReason::AuthFailed => Error::AuthFailed,
        }
    }
}

/// The session's state.
///
/// Mapping to kazoo's `KazooState`: `Connected` and `ConnectedReadOnly` are CONNECTED (kazoo also
/// reports `KeeperState.CONNECTED_RO`), `Suspended` is SUSPENDED, `Lost(_)` is LOST. `Connecting`
/// (no session yet) is what kazoo calls LOST before its first connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SessionState {
    /// No session yet: the first handshake (or the first after an expiry) is under way.
    Connecting,
    /// Connected to a read-write server.
    Connected,
    /// Connected to a read-only server: reads work, writes fail with NotReadOnly.
    ConnectedReadOnly,
    /// The connection was lost; the session may still be alive and is being resumed. Requests
    /// are queued until then.
    Suspended,
    /// The session is over.
    Lost(LostReason),
}

impl SessionState {
    /// True for `Connected` and `ConnectedReadOnly`.
    pub fn is_connected(self) -> bool {
        matches!(
            self,
            SessionState::Connected | SessionState::ConnectedReadOnly
        )
    }
}

impl fmt::Display for SessionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SessionState::Connecting => f.write_str("CONNECTING"),
            SessionState::Connected => f.write_str("CONNECTED"),
            SessionState::ConnectedReadOnly => f.write_str("CONNECTED_RO"),
            SessionState::Suspended => f.write_str("SUSPENDED"),
            SessionState::Lost(r) => write!(f, "LOST({r:?})"),
        }
    }
}

/// A change a watcher was told about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchedEvent {
    /// What happened.
    pub event_type: EventType,
    /// The node it happened to (a client path, chroot removed). For recursive watchers this can
    /// be any descendant of the watched path.
    pub path: String,
    /// The zxid of the change when the server sends it (3.9+), otherwise -1.
    pub zxid: i64,
}

/// Why a watcher stopped for good without firing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum WatchEnd {
    /// The session ended; every watcher is told.
    SessionLost(LostReason),
    /// After a failover the new server is too old to re-arm this kind of watch (persistent watches
    /// on a server before 3.6).
    Unsupported,
    /// A removeWatches request of this client removed it from the server.
    Removed,
}

/// One output of the session, in the order things happened.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Event {
    /// A request finished. Every submitted request gets exactly one.
    Reply {
        /// The request.
        id: RequestId,
        /// Its result. Paths in it are client paths (chroot removed).
        result: Result<Response, Error>,
        /// The watcher the request armed, if it armed one (a watching getData, getChildren or
        /// addWatch that succeeded, or a watching exists, which arms even on NoNode).
        watcher: Option<WatcherId>,
    },
    /// A watcher fired. One-shot watchers fire once; persistent ones until removed.
    Watch {
        /// The watcher.
        watcher: WatcherId,
        /// What happened.
        event: WatchedEvent,
    },
    /// A watcher ended without firing (its session ended, or it cannot be re-armed).
    WatchEnded {
        /// The watcher.
        watcher: WatcherId,
        /// Why.
        reason: WatchEnd,
    },
    /// The session changed state.
    State(SessionState),
    /// A persistent or persistent-recursive watcher may have missed events: the session
    /// reconnected and the server re-armed the watch without reporting what changed meanwhile
    /// (ZOOKEEPER-4698). Re-read whatever is cached from this watch; a read submitted on seeing
    /// this is answered after the watch is armed again, so no change falls between the two.
    ///
    /// Emitted after every reconnect within a session, for every live persistent watcher; never
    /// on a session's first connection, and never after a new session (its watchers end with
    /// [`WatchEnd::SessionLost`] instead).
    WatchResync {
        /// The watcher.
        watcher: WatcherId,
    },
}

/// The session's identity: what kazoo calls `client_id`. With it, another client (or a restarted
/// process) can resume the session before it expires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionId {
    /// The session id the server assigned.
    pub id: i64,
    /// The session password.
    pub password: Bytes,
}

/// Why the last attempt to connect to one host failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostFailure {
    /// The host, as written in the connect string.
    pub host: HostAddr,
    /// What went wrong, e.g. `connection refused` or `connect timeout: ...`.
    pub cause: String,
}

impl fmt::Display for HostFailure {
    /// `host:port: cause`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.host, self.cause)
    }
}
