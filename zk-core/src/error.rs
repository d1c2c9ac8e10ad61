//! The one error type every request resolves with: each ZooKeeper error code by name (with the
//! path it concerns when there is one), and the client's own failures.
//!
//! Server codes map one to one from [`ErrorCode`]; codes a future server might add arrive as
//! [`Error::Server`] with the raw code, never as a panic.

use crate::proto::{ErrorCode, OpCode};
use crate::session::HostFailure;
use crate::version::ServerVersion;

/// Why a request failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    // ---- server errors about a node: they carry its path (as the caller wrote it, chroot-free)
    /// The node does not exist (-101).
    #[error("Node does not exist: {path}")]
    NoNode {
        /// The node.
        path: String,
    },
    /// The node already exists (-110).
    #[error("Node already exists: {path}")]
    NodeExists {
        /// The node.
        path: String,
    },
    /// The version did not match (-103).
    #[error("Bad version: {path}")]
    BadVersion {
        /// The node.
        path: String,
    },
    /// The node has children (-111).
    #[error("Node not empty: {path}")]
    NotEmpty {
        /// The node.
        path: String,
    },
    /// Ephemeral nodes cannot have children (-108).
    #[error("Ephemerals cannot have children: {path}")]
    NoChildrenForEphemerals {
        /// The would-be child.
        path: String,
    },
    /// The ACL does not allow this (-102).
    #[error("Not authorized: {path}")]
    NoAuth {
        /// The node.
        path: String,
    },
    /// The ACL is invalid (-114).
    #[error("Invalid ACL: {path}")]
    InvalidAcl {
        /// The node.
        path: String,
    },
    /// The server rejected an argument: path, flags or TTL (-8).
    #[error("Bad arguments: {path}")]
    BadArguments {
        /// The node.
        path: String,
    },
    /// No such watch (-121).
    #[error("No such watcher: {path}")]
    NoWatcher {
        /// The node.
        path: String,
    },

    // ---- server errors about the session or the server
    /// The connection was lost while the request was in flight (-4); it may or may not have been
    /// applied.
    #[error("Connection loss")]
    ConnectionLoss,
    /// The session expired (-112); the request was not applied.
    #[error("Session expired")]
    SessionExpired,
    /// The session moved to another server (-118).
    #[error("Session moved")]
    SessionMoved,
    /// Authentication failed (-115); the session is over.
    #[error("Authentication failed")]
    AuthFailed,
    /// A write was sent to a read-only server (-119).
    #[error("Not a read-only call: the server is read-only")]
    NotReadOnly,
    /// The server does not implement this (-6), or the feature is disabled on it.
    #[error("Unimplemented by the server")]
    Unimplemented,
    /// The server could not decode the request (-5).
    #[error("Marshalling error")]
    MarshallingError,
    /// A multi op after the one that failed (-2).
    #[error("Runtime inconsistency")]
    RuntimeInconsistency,
    /// Data inconsistency (-3).
    #[error("Data inconsistency")]
    DataInconsistency,
    /// A system error (-1).
    #[error("System error")]
    SystemError,
    /// Operation timeout (-7).
    #[error("Operation timeout")]
    OperationTimeout,
    /// The server throttled the request and did not execute it (-127).
    #[error("Request throttled")]
    Throttled,
    /// A quota was exceeded (-125).
    #[error("Quota exceeded")]
    QuotaExceeded,
    /// Reconfiguration is disabled (-123).
    #[error("Reconfig is disabled")]
    ReconfigDisabled,
    /// Another reconfiguration is in progress (-14).
    #[error("Reconfig in progress")]
    ReconfigInProgress,
    /// No quorum of the new config is connected (-13).
    #[error("New config has no quorum")]
    NewConfigNoQuorum,
    /// An ephemeral node on a local session (-120).
    #[error("Ephemeral node on a local session")]
    EphemeralOnLocalSession,
    /// The server requires SASL authentication (-124).
    #[error("Session closed: SASL authentication required")]
    SessionClosedRequireSaslAuth,
    /// An error code this client does not name.
    #[error("Server error {code}")]
    Server {
        /// The code as the server sent it.
        code: ErrorCode,
    },

    // ---- the client's own
    /// A transaction failed and applied nothing. `results` holds one error per op, as kazoo
    /// reports them: [`Error::RolledBack`] for the ops before the failing one (they would have
    /// succeeded), the failing op's own error, and [`Error::RuntimeInconsistency`] for the ops
    /// after it (the server did not try them).
    #[error("Transaction failed at op {index}: {error}")]
    TransactionFailed {
        /// Index of the first failing op.
        index: usize,
        /// Its error (with its path).
        error: Box<Error>,
        /// Every op's outcome, in order.
        results: Vec<Error>,
    },
    /// An op of a failed transaction that would have succeeded, rolled back with the rest
    /// (kazoo's `RolledBackError`).
    #[error("Rolled back: {path}")]
    RolledBack {
        /// The op's path.
        path: String,
    },
    /// The session was closed by this client.
    #[error("Session closed")]
    Closed,
    /// The watch was removed by this client's removeWatches before it fired.
    #[error("Watch removed by removeWatches")]
    WatchRemoved,
    /// The path is not a valid ZooKeeper path; nothing was sent.
    #[error("Invalid path {path:?}: {reason}")]
    InvalidPath {
        /// The path as given.
        path: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// An argument is invalid (other than a path); nothing was sent.
    #[error("Invalid argument: {0}")]
    InvalidArgument(String),
    /// The request would exceed the server's frame limit (jute.maxbuffer); nothing was sent.
    #[error("Request of {len} bytes exceeds the server limit of {max} bytes")]
    RequestTooLarge {
        /// The request's frame size.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The request did not complete within its timeout. If it had been sent, it may still apply.
    #[error("Request timed out")]
    Timeout,
    /// No session could be established in time: why the last attempt on each host failed
    /// (`Session::connect_failures`), empty when no attempt finished at all.
    #[error("could not connect: {}", causes_text(.causes))]
    ConnectFailed {
        /// The last cause per host.
        causes: Vec<HostFailure>,
    },
    /// The server broke the protocol (a frame that does not decode, a reply out of order, an
    /// answer nobody asked for); the connection was dropped. Only for what a server sent: local
    /// failures are [`Error::Io`] or [`Error::Runtime`], bad arguments
    /// [`Error::InvalidArgument`].
    #[error("Protocol error: {0}")]
    Protocol(String),
    /// A local I/O operation failed outside the session's own connection, e.g. the socket of a
    /// four-letter word could not be opened, written or read. The text is the OS error's.
    #[error("I/O error: {0}")]
    Io(String),
    /// The runtime could not do what the client needed from it: start a task or a thread, or
    /// keep one running. The text says what failed.
    #[error("Runtime error: {0}")]
    Runtime(String),
    /// The connected server is too old for this operation; nothing was sent.
    #[error("{op:?} needs ZooKeeper {needs} or newer; the server is {server}")]
    Unsupported {
        /// The operation.
        op: OpCode,
        /// The first server version with it.
        needs: ServerVersion,
        /// The connected server's version.
        server: ServerVersion,
    },
}

impl Error {
    /// The error for a code a server sent in reply to a request about `path` (empty if none).
    ///
    /// [`ErrorCode::Ok`] is not an error; mapping it yields [`Error::Server`] so a caller's bug
    /// cannot turn into success.
    pub fn from_code(code: ErrorCode, path: &str) -> Error {
        let path = || path.to_owned();
        match code {
            ErrorCode::NoNode => Error::NoNode { path: path() },
            ErrorCode::NodeExists => Error::NodeExists { path: path() },
            ErrorCode::BadVersion => Error::BadVersion { path: path() },
            ErrorCode::NotEmpty => Error::NotEmpty { path: path() },
            ErrorCode::NoChildrenForEphemerals => Error::NoChildrenForEphemerals { path: path() },
            ErrorCode::NoAuth => Error::NoAuth { path: path() },
            ErrorCode::InvalidAcl => Error::InvalidAcl { path: path() },
            ErrorCode::BadArguments => Error::BadArguments { path: path() },
            ErrorCode::NoWatcher => Error::NoWatcher { path: path() },
            ErrorCode::ConnectionLoss => Error::ConnectionLoss,
            ErrorCode::SessionExpired => Error::SessionExpired,
            ErrorCode::SessionMoved => Error::SessionMoved,
            ErrorCode::AuthFailed => Error::AuthFailed,
            ErrorCode::NotReadOnly => Error::NotReadOnly,
            ErrorCode::Unimplemented => Error::Unimplemented,
            ErrorCode::MarshallingError => Error::MarshallingError,
            ErrorCode::RuntimeInconsistency => Error::RuntimeInconsistency,
            ErrorCode::DataInconsistency => Error::DataInconsistency,
            ErrorCode::SystemError => Error::SystemError,
            ErrorCode::OperationTimeout => Error::OperationTimeout,
            ErrorCode::Throttled => Error::Throttled,
            ErrorCode::QuotaExceeded => Error::QuotaExceeded,
            ErrorCode::ReconfigDisabled => Error::ReconfigDisabled,
            ErrorCode::ReconfigInProgress => Error::ReconfigInProgress,
            ErrorCode::NewConfigNoQuorum => Error::NewConfigNoQuorum,
            ErrorCode::EphemeralOnLocalSession => Error::EphemeralOnLocalSession,
            ErrorCode::SessionClosedRequireSaslAuth => Error::SessionClosedRequireSaslAuth,
            ErrorCode::RequestTimeout => Error::Timeout,
            other => Error::Server { code: other },
        }
    }

    /// The ZooKeeper code this error corresponds to, if any (client-only errors have none, except
    /// those that mirror a Java client code such as ConnectionLoss).
    pub fn code(&self) -> Option<ErrorCode> {
        Some(match self {
            Error::NoNode { .. } => ErrorCode::NoNode,
            Error::NodeExists { .. } => ErrorCode::NodeExists,
            Error::BadVersion { .. } => ErrorCode::BadVersion,
            Error::NotEmpty { .. } => ErrorCode::NotEmpty,
            Error::NoChildrenForEphemerals { .. } => ErrorCode::NoChildrenForEphemerals,
            Error::NoAuth { .. } => ErrorCode::NoAuth,
            Error::InvalidAcl { .. } => ErrorCode::InvalidAcl,
            Error::BadArguments { .. } => ErrorCode::BadArguments,
            Error::NoWatcher { .. } => ErrorCode::NoWatcher,
            Error::ConnectionLoss => ErrorCode::ConnectionLoss,
            Error::SessionExpired => ErrorCode::SessionExpired,
            Error::SessionMoved => ErrorCode::SessionMoved,
            Error::AuthFailed => ErrorCode::AuthFailed,
            Error::NotReadOnly => ErrorCode::NotReadOnly,
            Error::Unimplemented => ErrorCode::Unimplemented,
            Error::MarshallingError => ErrorCode::MarshallingError,
            Error::RuntimeInconsistency => ErrorCode::RuntimeInconsistency,
            Error::DataInconsistency => ErrorCode::DataInconsistency,
            Error::SystemError => ErrorCode::SystemError,
            Error::OperationTimeout => ErrorCode::OperationTimeout,
            Error::Throttled => ErrorCode::Throttled,
            Error::QuotaExceeded => ErrorCode::QuotaExceeded,
            Error::ReconfigDisabled => ErrorCode::ReconfigDisabled,
            Error::ReconfigInProgress => ErrorCode::ReconfigInProgress,
            Error::NewConfigNoQuorum => ErrorCode::NewConfigNoQuorum,
            Error::EphemeralOnLocalSession => ErrorCode::EphemeralOnLocalSession,
            Error::SessionClosedRequireSaslAuth => ErrorCode::SessionClosedRequireSaslAuth,
            Error::Server { code } => *code,
            Error::Timeout => ErrorCode::RequestTimeout,
            Error::TransactionFailed { error, .. } => return error.code(),
            Error::Closed
            | Error::RolledBack { .. }
            | Error::WatchRemoved
            | Error::InvalidPath { .. }
            | Error::InvalidArgument(_)
            | Error::RequestTooLarge { .. }
            | Error::Protocol(_)
            | Error::ConnectFailed { .. }
            | Error::Io(_)
            | Error::Runtime(_)
            | Error::Unsupported { .. } => return None,
        })
    }

    /// The path the error concerns, for errors that carry one.
    pub fn path(&self) -> Option<&str> {
        match self {
            Error::NoNode { path }
            | Error::NodeExists { path }
            | Error::BadVersion { path }
            | Error::NotEmpty { path }
            | Error::NoChildrenForEphemerals { path }
            | Error::NoAuth { path }
            | Error::InvalidAcl { path }
            | Error::BadArguments { path }
            | Error::NoWatcher { path }
            | Error::RolledBack { path }
            | Error::InvalidPath { path, .. } => Some(path),
            Error::TransactionFailed { error, .. } => error.path(),
            _ => None,
        }
    }

    /// True when the request may have been applied even though it failed (ConnectionLoss, a
    /// Timeout after sending, and a Protocol error: the server sent garbage where the reply
    /// belonged, after the request reached it): the caller cannot know without reading back.
    pub fn is_indeterminate(&self) -> bool {
        matches!(
            self,
            Error::ConnectionLoss | Error::Timeout | Error::Protocol(_)
        )
    }
}

/// `h1:2181: cause; h2:2181: cause`, or a sentence when no attempt finished.
fn causes_text(causes: &[HostFailure]) -> String {
    if causes.is_empty() {
        return "no attempt finished in time".to_owned();
    }
    causes
        .iter()
        .map(HostFailure::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_named_server_code_maps_back_to_itself() {
        for code in ErrorCode::KNOWN {
            if matches!(
                code,
                ErrorCode::Ok | ErrorCode::ApiError | ErrorCode::UnknownSession
            ) {
                continue;
            }
            let err = Error::from_code(*code, "/p");
            assert_eq!(err.code(), Some(*code), "{code:?}");
        }
    }

    #[test]
    fn node_errors_name_the_path_like_zkcli() {
        let err = Error::from_code(ErrorCode::NoNode, "/x");
        assert_eq!(err.to_string(), "Node does not exist: /x");
        assert_eq!(err.path(), Some("/x"));
    }

    #[test]
    fn connect_failed_names_every_host_and_cause() {
        let err = Error::ConnectFailed {
            causes: vec![
                HostFailure {
                    host: crate::HostAddr::new("127.0.0.1", 1),
                    cause: "connection refused".into(),
                },
                HostFailure {
                    host: crate::HostAddr::new("::1", 2),
                    cause: "connect timeout: the TCP connection did not open in time".into(),
                },
            ],
        };
        assert_eq!(
            err.to_string(),
            "could not connect: 127.0.0.1:1: connection refused; \
             [::1]:2: connect timeout: the TCP connection did not open in time"
        );
        assert_eq!(err.code(), None);
        assert_eq!(
            Error::ConnectFailed { causes: vec![] }.to_string(),
            "could not connect: no attempt finished in time"
        );
    }

    #[test]
    fn local_failures_have_their_own_variants_and_no_server_code() {
        let io = Error::Io("connection refused".into());
        assert_eq!(io.to_string(), "I/O error: connection refused");
        let rt = Error::Runtime("cannot spawn a thread".into());
        assert_eq!(rt.to_string(), "Runtime error: cannot spawn a thread");
        for e in [io, rt] {
            assert_eq!(e.code(), None);
            assert!(!e.is_indeterminate());
            assert_eq!(e.path(), None);
        }
    }

    #[test]
    fn garbage_in_place_of_a_reply_leaves_the_outcome_unknown() {
        // The request reached the server before the garbage came back: it may have applied.
        assert!(Error::Protocol("bad frame".into()).is_indeterminate());
        assert!(Error::ConnectionLoss.is_indeterminate());
        assert!(!Error::SessionExpired.is_indeterminate());
    }

    #[test]
    fn ok_never_maps_to_success() {
        assert_eq!(
            Error::from_code(ErrorCode::Ok, "/"),
            Error::Server {
                code: ErrorCode::Ok
            }
        );
    }
}
