//! Real ZooKeeper servers for integration tests: standalone servers and quorum ensembles, started
//! as JVM processes on loopback ports, which a test can stop, kill -9, pause (SIGSTOP), resume and
//! restart, and query with four-letter words.
//!
//! Why real servers at all: SimServer models what PROTOCOL.md says, but only a real server shows
//! what a real server does (zxids of 3.9 notifications, elections, read-only mode, restarts with
//! the data on disk), and it keeps the model honest. Why these choices:
//!
//! - **Versions.** [`ZkVersion::V3_8`] is Debian 12's package (the server the golden frames were
//!   captured from); [`ZkVersion::V3_9`] is 3.9.5 from Maven Central. `scripts/setup-zookeeper`
//!   installs both; when anything is missing, [`Ensemble::start`] fails with an error naming that
//!   script. Tests never skip silently.
//! - **Fast and small.** `tickTime` defaults to 200 ms (so session timeouts, elections and failure
//!   detection take seconds, not minutes), fsync is off, the JVM runs with a 256 MiB heap, the
//!   serial GC and C1 only: a standalone server is ready in about a second on two shared cores.
//! - **Ports** come from a cross-process claim protocol below the ephemeral range (see
//!   `real/ports.rs`), so tests in one process and in parallel processes never share a port, and
//!   a node keeps its ports across restarts.
//! - **Readiness** means `ruok` answers `imok` *and* `srvr` reports a mode: `ruok` alone answers
//!   before a standalone server has loaded its database, and before a quorum has a leader.
//! - **Nothing leaks.** Dropping an [`Ensemble`] (also while a test panics) kills every JVM,
//!   resuming paused ones first, and removes the temp directory (kept with `ZK_RS_KEEP=1`). If
//!   the test process itself dies (SIGKILL, abort), a tiny `sh` watchdog per ensemble notices and
//!   kills the JVMs, so a crashed run leaves no servers behind either.
//! - **Logs** go to files in each node's directory (`zookeeper.log`, `stdout.log`,
//!   `stderr.log`); every start-up error carries their tail, and [`Ensemble::log_tail`] gives it to
//!   a failing test.
//!
//! ```no_run
//! use zk_testkit::real::{Ensemble, EnsembleOptions, ZkVersion};
//!
//! let ens = Ensemble::start(EnsembleOptions::quorum(ZkVersion::V3_8, 3)).expect("servers start");
//! let connect = ens.connect_string(); // "127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3"
//! let leader = ens.leader().expect("a leader");
//! ens.four_letter(leader, "mntr").expect("mntr answers");
//! # let _ = connect;
//! ```

mod ensemble;
mod install;
mod kdc;
mod node;
mod ports;
mod tls;

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::Duration;

pub use ensemble::{Ensemble, EnsembleOptions};
pub use install::{Installation, ZkVersion};
pub use kdc::{TestKdc, TEST_REALM};
pub use node::Node;
pub use tls::{ClientAuth, ServerCert, ServerTls, TestPki, CLIENT_SUBJECT, OTHER_CLIENT_SUBJECT};

/// Largest four-letter-word answer read; `mntr`, `conf` and `dump` of a test server are a few KiB.
const FOUR_LETTER_CAP: u64 = 1024 * 1024;

/// Why starting or controlling servers failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// Java or a ZooKeeper jar is missing; the message names `scripts/setup-zookeeper`.
    NotInstalled(String),
    /// The options cannot describe an ensemble (e.g. size 0, tick 0).
    InvalidOptions(String),
    /// There is no node with this index.
    NoSuchNode(usize),
    /// The operation needs a running (or a paused) node, and this one is not.
    NotRunning(usize),
    /// An operating-system call failed (files, processes, ports).
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        source: io::Error,
    },
    /// A node exited, or did not become ready in time.
    NotReady {
        /// The node's index.
        node: usize,
        /// What was awaited and what was seen instead.
        reason: String,
        /// The end of the node's log files.
        log_tail: String,
    },
}

impl Error {
    fn io(context: impl Into<String>, source: io::Error) -> Error {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NotInstalled(msg) | Error::InvalidOptions(msg) => f.write_str(msg),
            Error::NoSuchNode(i) => write!(f, "no ZooKeeper node {i} in this ensemble"),
            Error::NotRunning(i) => write!(f, "ZooKeeper node {i} is not running"),
            Error::Io { context, source } => write!(f, "{context}: {source}"),
            Error::NotReady {
                node,
                reason,
                log_tail,
            } => write!(f, "ZooKeeper node {node}: {reason}\n{log_tail}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// A server's role, from the `Mode:` line of `srvr`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ServerMode {
    /// A single server (`ZooKeeperServerMain`).
    Standalone,
    /// The quorum's leader.
    Leader,
    /// A voting follower, synced with the leader.
    Follower,
    /// A non-voting observer.
    Observer,
    /// Partitioned from the quorum, serving reads only (`readonlymode.enabled=true`).
    ReadOnly,
    /// Any other value, verbatim.
    Other(String),
}

impl ServerMode {
    /// Parses the `Mode:` line of a `srvr`/`stat` answer; `None` when there is none (a server not
    /// yet serving answers "This ZooKeeper instance is not currently serving requests").
    pub fn from_srvr(answer: &str) -> Option<ServerMode> {
        let mode = answer.lines().find_map(|l| l.strip_prefix("Mode:"))?.trim();
        Some(match mode {
            "standalone" => ServerMode::Standalone,
            "leader" => ServerMode::Leader,
            "follower" => ServerMode::Follower,
            "observer" => ServerMode::Observer,
            "read-only" => ServerMode::ReadOnly,
            other => ServerMode::Other(other.to_owned()),
        })
    }

    /// Whether a server in this mode accepts writes from clients (any mode but read-only).
    pub fn is_serving(&self) -> bool {
        matches!(
            self,
            ServerMode::Standalone
                | ServerMode::Leader
                | ServerMode::Follower
                | ServerMode::Observer
        )
    }
}

/// Sends a four-letter word to `127.0.0.1:port` on a fresh connection and reads the answer to EOF
/// (at most 1 MiB), as PROTOCOL.md §15 describes.
///
/// `timeout` bounds the connect and each read and write, so a paused server yields
/// [`io::ErrorKind::WouldBlock`] or [`io::ErrorKind::TimedOut`] instead of a hang. Errors with
/// [`io::ErrorKind::InvalidInput`] unless `word` is exactly 4 bytes, and on any socket error.
pub fn four_letter_word(port: u16, word: &str, timeout: Duration) -> io::Result<String> {
    if word.len() != 4 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("a four-letter word is 4 bytes, not {word:?}"),
        ));
    }
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    stream.write_all(word.as_bytes())?;
    let mut answer = Vec::new();
    stream.take(FOUR_LETTER_CAP).read_to_end(&mut answer)?;
    Ok(String::from_utf8_lossy(&answer).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_srvr_modes() {
        let srvr = "Zookeeper version: 3.8.0\nLatency min/avg/max: 0/0.0/0\nMode: follower\n";
        assert_eq!(ServerMode::from_srvr(srvr), Some(ServerMode::Follower));
        assert_eq!(
            ServerMode::from_srvr("Mode: read-only\n"),
            Some(ServerMode::ReadOnly)
        );
        assert_eq!(
            ServerMode::from_srvr("This ZooKeeper instance is not currently serving requests\n"),
            None
        );
        assert!(!ServerMode::ReadOnly.is_serving());
        assert!(ServerMode::Standalone.is_serving());
    }

    #[test]
    fn four_letter_word_checks_its_length() {
        let err = four_letter_word(1, "ruok!", Duration::from_millis(10)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }
}
