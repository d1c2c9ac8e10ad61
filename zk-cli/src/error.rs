//! What can go wrong in a `zk` command, the one-line message it prints, and the exit code of its
//! class (documented in `zk help`).

use std::fmt;

use zk_core::Error;

/// Exit code: success.
pub const EXIT_OK: i32 = 0;
/// Exit code: bad usage or bad input (unknown command, missing argument, malformed path, ACL,
/// connect string, or data the server refuses as too large).
pub const EXIT_USAGE: i32 = 1;
/// Exit code: an error about a node (NoNode, NodeExists, NotEmpty, BadVersion,
/// NoChildrenForEphemerals, NoWatcher).
pub const EXIT_NODE: i32 = 2;
/// Exit code: authentication or ACL (NoAuth, AuthFailed, InvalidAcl, SASL required).
pub const EXIT_AUTH: i32 = 3;
/// Exit code: connection or session (unreachable, ConnectionLoss, SessionExpired, SessionMoved,
/// Timeout, NotReadOnly, closed).
pub const EXIT_CONNECTION: i32 = 4;
/// Exit code: the server does not support the operation (too old, Unimplemented, reconfig
/// disabled).
pub const EXIT_UNSUPPORTED: i32 = 5;
/// Exit code: anything else (a server system error, a protocol error, a local I/O error).
pub const EXIT_OTHER: i32 = 6;
/// Exit code: interrupted (Ctrl-C) before the command finished.
pub const EXIT_INTERRUPTED: i32 = 130;

/// The exit codes and what they mean, for `zk help`.
pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0  success
  1  usage or bad input: unknown command, missing argument, malformed path, ACL or server list
  2  node error: NoNode, NodeExists, NotEmpty, BadVersion, NoChildrenForEphemerals, NoWatcher
  3  auth or ACL: NoAuth, AuthFailed, InvalidAcl
  4  connection or session: unreachable server, ConnectionLoss, SessionExpired, Timeout
  5  unsupported by the server (too old, or the feature is disabled)
  6  any other error
  124 lock --timeout passed before the lock was acquired; CMD did not run
  125 lock/elect: ownership was lost while CMD ran; CMD was stopped
  126 lock/elect: CMD cannot be run; 127: CMD not found
  130 interrupted (Ctrl-C) before the command finished
  lock/elect otherwise exit with CMD's own status";

/// A failed `zk` command.
#[derive(Debug)]
pub enum CliError {
    /// The command line is wrong; `usage` is the command's usage line, printed as a hint.
    Usage {
        /// What is wrong.
        message: String,
        /// The usage line of the command concerned, if any.
        usage: Option<String>,
    },
    /// The client or the server refused the request. `context` names the command and its path
    /// for errors whose message does not name a path.
    Zk {
        /// The error.
        error: Error,
        /// E.g. `get /x`, used for path-less errors such as ConnectionLoss.
        context: String,
    },
    /// No server of the connect string could be reached in time.
    Unreachable {
        /// The servers tried, as given.
        servers: String,
        /// How long we waited, in seconds.
        waited: f64,
        /// The last failure of each server tried (`host:port: cause; ...`), if any finished.
        causes: String,
    },
    /// Anything else, with its exit code.
    Other {
        /// The message.
        message: String,
        /// The exit code.
        code: i32,
    },
    /// Ctrl-C.
    Interrupted,
    /// A program `zk` ran (`lock`, `elect`) exited with this status, which `zk` exits with
    /// too; nothing is printed.
    Exit(i32),
}

impl CliError {
    /// A usage error with a hint.
    pub fn usage(message: impl Into<String>, usage: &str) -> CliError {
        CliError::Usage {
            message: message.into(),
            usage: Some(usage.to_owned()),
        }
    }

    /// A usage error without a usage line.
    pub fn bad_input(message: impl Into<String>) -> CliError {
        CliError::Usage {
            message: message.into(),
            usage: None,
        }
    }

    /// A client error, with the command (and path) it happened in.
    pub fn zk(error: Error, context: impl Into<String>) -> CliError {
        CliError::Zk {
            error,
            context: context.into(),
        }
    }

    /// The process exit code for this error's class.
    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::Usage { .. } => EXIT_USAGE,
            CliError::Zk { error, .. } => exit_code_of(error),
            CliError::Unreachable { .. } => EXIT_CONNECTION,
            CliError::Other { code, .. } => *code,
            CliError::Interrupted => EXIT_INTERRUPTED,
            CliError::Exit(code) => *code,
        }
    }

    /// A short machine-readable name of the error (the ZooKeeper code's name where there is one),
    /// for `--json` output.
    pub fn kind(&self) -> String {
        match self {
            CliError::Usage { .. } => "Usage".into(),
            CliError::Zk { error, .. } => kind_of(error),
            CliError::Unreachable { .. } => "Unreachable".into(),
            CliError::Other { .. } => "Other".into(),
            CliError::Interrupted => "Interrupted".into(),
            CliError::Exit(_) => "Exit".into(),
        }
    }

    /// The path the error concerns, if any.
    pub fn path(&self) -> Option<&str> {
        match self {
            CliError::Zk { error, .. } => error.path().filter(|p| !p.is_empty()),
            _ => None,
        }
    }

    /// A second line to print after the message: the usage, or what to check.
    pub fn hint(&self) -> Option<String> {
        match self {
            CliError::Usage { usage: Some(u), .. } => Some(format!("usage: {u}")),
            CliError::Usage { usage: None, .. } => Some("run 'zk help' for the commands".into()),
            CliError::Zk {
                error: Error::InvalidPath { .. },
                context,
            } => crate::commands::usage_of(context.split(' ').next().unwrap_or(""))
                .map(|u| format!("usage: {u}")),
            CliError::Unreachable { .. } => Some(
                "is ZooKeeper running there? Pass the servers as -server HOST:PORT[,HOST:PORT...][/chroot] \
                 (or set ZK_SERVER)"
                    .into(),
            ),
            _ => None,
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Usage { message, .. } => f.write_str(message),
            CliError::Zk { error, context } => match error {
                // Errors that name their path read as zkCli's: "Node does not exist: /x".
                e if e.path().is_some_and(|p| !p.is_empty()) => write!(f, "{e}"),
                Error::TransactionFailed { .. } => write!(f, "{error}"),
                e if context.is_empty() => write!(f, "{e}"),
                e => write!(f, "{e} ({context})"),
            },
            CliError::Unreachable {
                servers,
                waited,
                causes,
            } if causes.is_empty() => write!(
                f,
                "Cannot connect to {servers}: no ZooKeeper server answered within {waited} s"
            ),
            CliError::Unreachable {
                servers, causes, ..
            } => write!(f, "Cannot connect to {servers}: {causes}"),
            CliError::Other { message, .. } => f.write_str(message),
            CliError::Interrupted => f.write_str("Interrupted"),
            CliError::Exit(code) => write!(f, "exit status {code}"),
        }
    }
}

/// The exit code of a client error's class.
pub fn exit_code_of(error: &Error) -> i32 {
    match error {
        Error::NoNode { .. }
        | Error::NodeExists { .. }
        | Error::BadVersion { .. }
        | Error::NotEmpty { .. }
        | Error::NoChildrenForEphemerals { .. }
        | Error::NoWatcher { .. } => EXIT_NODE,
        Error::NoAuth { .. }
        | Error::InvalidAcl { .. }
        | Error::AuthFailed
        | Error::SessionClosedRequireSaslAuth => EXIT_AUTH,
        Error::ConnectionLoss
        | Error::SessionExpired
        | Error::SessionMoved
        | Error::NotReadOnly
        | Error::Timeout
        | Error::OperationTimeout
        | Error::Throttled
        | Error::ConnectFailed { .. }
        | Error::Io(_)
        | Error::Closed => EXIT_CONNECTION,
        Error::Unsupported { .. } | Error::Unimplemented | Error::ReconfigDisabled => {
            EXIT_UNSUPPORTED
        }
        Error::InvalidPath { .. }
        | Error::InvalidArgument(_)
        | Error::BadArguments { .. }
        | Error::RequestTooLarge { .. } => EXIT_USAGE,
        Error::TransactionFailed { error, .. } => exit_code_of(error),
        _ => EXIT_OTHER,
    }
}

/// The name of a client error for `--json`: the ZooKeeper code's name where there is one.
pub fn kind_of(error: &Error) -> String {
    match error {
        Error::TransactionFailed { error, .. } => kind_of(error),
        Error::Closed => "Closed".into(),
        Error::InvalidPath { .. } => "InvalidPath".into(),
        Error::InvalidArgument(_) => "InvalidArgument".into(),
        Error::RequestTooLarge { .. } => "RequestTooLarge".into(),
        Error::Protocol(_) => "Protocol".into(),
        Error::Unsupported { .. } => "Unsupported".into(),
        Error::Timeout => "Timeout".into(),
        Error::ConnectFailed { .. } => "ConnectFailed".into(),
        Error::Io(_) => "Io".into(),
        Error::Runtime(_) => "Runtime".into(),
        Error::RolledBack { .. } => "RolledBack".into(),
        e => match e.code() {
            Some(code) => format!("{code:?}"),
            None => "Other".into(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_errors_read_like_zkcli_and_exit_2() {
        let e = CliError::zk(Error::NoNode { path: "/x".into() }, "get /x");
        assert_eq!(e.to_string(), "Node does not exist: /x");
        assert_eq!(e.exit_code(), EXIT_NODE);
        assert_eq!(e.kind(), "NoNode");
        assert_eq!(e.path(), Some("/x"));
    }

    #[test]
    fn pathless_errors_name_the_command() {
        let e = CliError::zk(Error::ConnectionLoss, "get /x");
        assert_eq!(e.to_string(), "Connection loss (get /x)");
        assert_eq!(e.exit_code(), EXIT_CONNECTION);
        assert_eq!(e.kind(), "ConnectionLoss");
    }

    #[test]
    fn connect_failures_are_connection_errors_naming_the_host() {
        let e = CliError::zk(
            Error::ConnectFailed {
                causes: vec![zk_tokio::HostFailure {
                    host: zk_tokio::HostAddr {
                        host: "127.0.0.1".into(),
                        port: 1,
                    },
                    cause: "Connection refused".into(),
                }],
            },
            "connect",
        );
        assert_eq!(e.exit_code(), EXIT_CONNECTION);
        assert_eq!(e.kind(), "ConnectFailed");
        assert!(e.to_string().contains("127.0.0.1:1"), "{e}");
    }

    #[test]
    fn classes_differ() {
        let codes = [
            exit_code_of(&Error::NoAuth { path: "/".into() }),
            exit_code_of(&Error::Unimplemented),
            exit_code_of(&Error::SystemError),
            exit_code_of(&Error::InvalidArgument("x".into())),
        ];
        assert_eq!(codes, [EXIT_AUTH, EXIT_UNSUPPORTED, EXIT_OTHER, EXIT_USAGE]);
    }
}
