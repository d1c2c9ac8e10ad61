//! Curator-style real servers for your integration tests: [`TestingServer`] (one standalone
//! ZooKeeper) and [`TestingCluster`] (a quorum, three servers by default).
//!
//! Both are thin, stable faces of [`real::Ensemble`](crate::real::Ensemble), the harness this
//! project's own suite runs on: each server is a JVM on a free loopback port with its data in a
//! fresh temp directory, a 200 ms `tickTime` so that session timeouts and elections take seconds,
//! and nothing left behind: dropping the value (also while a test panics, even if the test
//! process is killed) kills the JVMs and removes the directory.
//!
//! **Finding ZooKeeper.** [`TestingServer::start`] and [`TestingCluster::start`] run the newest
//! release they find, in this order:
//!
//! 1. ZooKeeper 3.9, from the directory of jars named by `ZK_TESTKIT_ZOOKEEPER_LIB` (the `lib/`
//!    folder of an unpacked `apache-zookeeper-3.9.x-bin.tar.gz`), else from
//!    `${ZK_RS_CACHE:-~/.cache/zk-rs}/zookeeper-3.9.5/lib` (what zk-rs's
//!    `scripts/setup-zookeeper` fills);
//! 2. ZooKeeper 3.8.0, Debian 12's `zookeeper` package (`/usr/share/java/zookeeper.jar`).
//!
//! Java comes from `$JAVA_HOME/bin/java` or `PATH`. `ZK_TESTKIT_VERSION=3.8` (or `3.9`) insists on
//! one release. When nothing is found, starting fails with [`Error::NotInstalled`] whose message
//! says what was looked for and what to install; a test should fail on it, never skip.
//!
//! ```no_run
//! use zk_testkit::testing::TestingServer;
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let mut server = TestingServer::start()?;
//! let client = zk_tokio::connect(&server.connect_string()).await?;
//! client.create("/app", "hello").await?;
//! server.kill()?; // kill -9: the client is Suspended
//! server.restart()?; // same port and data: the client resumes its session
//! assert_eq!(&client.get_data("/app").await?.0[..], b"hello");
//! # Ok(()) }
//! ```
//!
//! [`TestingServer`] and [`TestingCluster`] block while servers start and stop (a second or two
//! each); in an async test, call them from a multi-threaded runtime or through `spawn_blocking`.

use std::env;
use std::path::Path;

use crate::real::{Ensemble, EnsembleOptions, Error, ServerMode, ZkVersion};

/// Pins the release that [`TestingServer::start`] and [`TestingCluster::start`] run: `3.8` or
/// `3.9`.
pub const VERSION_ENV: &str = "ZK_TESTKIT_VERSION";

/// Picks the newest installed release (or the one `ZK_TESTKIT_VERSION` names).
///
/// Errors with [`Error::NotInstalled`] naming what to install when no release is found, and with
/// [`Error::InvalidOptions`] when `ZK_TESTKIT_VERSION` names a release the kit does not know.
pub fn installed_version() -> Result<ZkVersion, Error> {
    if let Some(wanted) = env::var_os(VERSION_ENV).filter(|v| !v.is_empty()) {
        let wanted = wanted.to_string_lossy().into_owned();
        let version = match wanted.as_str() {
            "3.8" | "3.8.0" => ZkVersion::V3_8,
            v if v == "3.9" || v.starts_with("3.9.") => ZkVersion::V3_9,
            _ => {
                return Err(Error::InvalidOptions(format!(
                    "{VERSION_ENV}={wanted:?}: zk-testkit runs ZooKeeper 3.8 or 3.9"
                )))
            }
        };
        return version
            .locate()
            .map(|_| version)
            .map_err(|e| not_installed(&[(version, e)]));
    }
    let mut missing = Vec::new();
    for version in ZkVersion::ALL.into_iter().rev() {
        match version.locate() {
            Ok(_) => return Ok(version),
            Err(e) => missing.push((version, e)),
        }
    }
    Err(not_installed(&missing))
}

/// One error saying what each release lacked and how to install one.
fn not_installed(missing: &[(ZkVersion, Error)]) -> Error {
    let mut msg = String::from("zk-testkit found no ZooKeeper server to run:\n");
    for (version, why) in missing {
        msg.push_str(&format!("  - ZooKeeper {version}: {why}\n"));
    }
    msg.push_str(
        "Install one of them (and Java 17): on Debian or Ubuntu, `apt-get install zookeeper \
         default-jre-headless` (3.8); or unpack apache-zookeeper-3.9.x-bin.tar.gz from \
         https://zookeeper.apache.org/releases.html and set ZK_TESTKIT_ZOOKEEPER_LIB to its lib/ \
         folder; in the zk-rs repository, scripts/setup-zookeeper installs both.",
    );
    Error::NotInstalled(msg)
}

/// One real standalone ZooKeeper server for a test, as Curator's `TestingServer`: a free port,
/// a temp directory, and control over its life (stop, kill, restart).
///
/// Dropping it kills the server and removes its directory (`ZK_RS_KEEP=1` keeps the directory).
#[derive(Debug)]
pub struct TestingServer {
    ensemble: Ensemble,
}

impl TestingServer {
    /// Starts the newest installed ZooKeeper (see the [module docs](self)) and waits until it
    /// serves.
    ///
    /// Errors with [`Error::NotInstalled`] (saying what to install) when there is no ZooKeeper or
    /// no Java, [`Error::Io`] when ports, files or processes cannot be had, and
    /// [`Error::NotReady`] (with the server's log) when it does not come up within 60 s.
    pub fn start() -> Result<TestingServer, Error> {
        TestingServer::with_options(EnsembleOptions::standalone(installed_version()?))
    }

    /// Starts a server with the harness's full options (release, `tickTime`, session timeout
    /// bounds, extra `zoo.cfg` lines, TLS...). `opts.size` is ignored: a `TestingServer` is one
    /// standalone server.
    ///
    /// Errors as [`TestingServer::start`], and with [`Error::InvalidOptions`] for options that
    /// describe no server.
    pub fn with_options(opts: EnsembleOptions) -> Result<TestingServer, Error> {
        let opts = EnsembleOptions { size: 1, ..opts };
        Ok(TestingServer {
            ensemble: Ensemble::start(opts)?,
        })
    }

    /// `127.0.0.1:PORT`, for a client's connect string (append a chroot if you like). The port
    /// stays the same across [`restart`](Self::restart)s.
    pub fn connect_string(&self) -> String {
        self.ensemble.connect_string()
    }

    /// The client port.
    pub fn port(&self) -> u16 {
        self.ensemble.nodes().first().map_or(0, |n| n.port())
    }

    /// The release running.
    pub fn version(&self) -> ZkVersion {
        self.ensemble.version()
    }

    /// The temp directory holding the server's config, data and logs.
    pub fn temp_dir(&self) -> &Path {
        self.ensemble.root()
    }

    /// Whether the server's process runs (a killed or stopped server does not).
    pub fn is_running(&self) -> bool {
        self.ensemble
            .nodes()
            .first()
            .is_some_and(|n| n.is_running())
    }

    /// Graceful stop (SIGTERM; SIGKILL after 10 s). Clients see their connection close; sessions
    /// are kept on disk for a [`restart`](Self::restart). A no-op on a stopped server.
    ///
    /// Errors with [`Error::Io`] if the process cannot be signalled.
    pub fn stop(&mut self) -> Result<(), Error> {
        self.ensemble.stop(0)
    }

    /// Crash: SIGKILL, as `kill -9` would. A no-op on a stopped server.
    ///
    /// Errors with [`Error::Io`] if the process cannot be signalled.
    pub fn kill(&mut self) -> Result<(), Error> {
        self.ensemble.kill(0)
    }

    /// Starts the server again (stopping it first if it runs) on the same port with the same
    /// data, and waits until it serves. Sessions whose timeout has not run out live on.
    ///
    /// Errors with [`Error::Io`] when the process cannot be started and [`Error::NotReady`] (with
    /// the log) when it does not serve in time.
    pub fn restart(&mut self) -> Result<(), Error> {
        self.ensemble.restart(0)
    }

    /// The end of the server's log files, for a failing test to print.
    pub fn log_tail(&self, lines: usize) -> String {
        self.ensemble.log_tail(0, lines)
    }

    /// The harness underneath, for what this face does not offer (four-letter words, pause).
    pub fn ensemble(&self) -> &Ensemble {
        &self.ensemble
    }

    /// The harness underneath, mutably (pause and resume the server, wait for modes).
    pub fn ensemble_mut(&mut self) -> &mut Ensemble {
        &mut self.ensemble
    }
}

/// A real ZooKeeper quorum for a test, as Curator's `TestingCluster`: three servers by default,
/// each on free ports with its own temp directory, any of which can be stopped, killed and
/// restarted. Servers are addressed by index `0..size`.
///
/// Dropping it kills every server and removes the files (`ZK_RS_KEEP=1` keeps them).
#[derive(Debug)]
pub struct TestingCluster {
    ensemble: Ensemble,
}

impl TestingCluster {
    /// Starts three servers of the newest installed ZooKeeper (see the [module docs](self)) and
    /// waits until they have elected a leader.
    ///
    /// Errors as [`TestingServer::start`].
    pub fn start() -> Result<TestingCluster, Error> {
        TestingCluster::with_size(3)
    }

    /// Starts `size` servers (3 or 5 are usual; 1 is a quorum of one) and waits for a leader.
    ///
    /// Errors as [`TestingServer::start`], and with [`Error::InvalidOptions`] for a size of 0.
    pub fn with_size(size: usize) -> Result<TestingCluster, Error> {
        TestingCluster::with_options(EnsembleOptions::quorum(installed_version()?, size))
    }

    /// Starts a quorum with the harness's full options (`opts.size` servers).
    ///
    /// Errors as [`TestingCluster::with_size`].
    pub fn with_options(opts: EnsembleOptions) -> Result<TestingCluster, Error> {
        Ok(TestingCluster {
            ensemble: Ensemble::start(opts)?,
        })
    }

    /// Every server as `127.0.0.1:p1,127.0.0.1:p2,...`, running or not, in index order.
    pub fn connect_string(&self) -> String {
        self.ensemble.connect_string()
    }

    /// Server `i`'s `127.0.0.1:PORT`; `None` when there is no server `i`.
    pub fn server_address(&self, i: usize) -> Option<String> {
        self.ensemble
            .node(i)
            .ok()
            .map(|n| format!("127.0.0.1:{}", n.port()))
    }

    /// The number of servers, running or not.
    pub fn size(&self) -> usize {
        self.ensemble.size()
    }

    /// The release running.
    pub fn version(&self) -> ZkVersion {
        self.ensemble.version()
    }

    /// The index of the server that leads now; `None` during an election.
    pub fn leader(&self) -> Option<usize> {
        self.ensemble.leader()
    }

    /// Whether server `i`'s process runs.
    pub fn is_running(&self, i: usize) -> bool {
        self.ensemble.node(i).is_ok_and(|n| n.is_running())
    }

    /// Graceful stop of server `i` (SIGTERM). A no-op on a stopped server.
    ///
    /// Errors with [`Error::NoSuchNode`] or [`Error::Io`].
    pub fn stop(&mut self, i: usize) -> Result<(), Error> {
        self.ensemble.stop(i)
    }

    /// Crash of server `i` (SIGKILL). A no-op on a stopped server.
    ///
    /// Errors with [`Error::NoSuchNode`] or [`Error::Io`].
    pub fn kill(&mut self, i: usize) -> Result<(), Error> {
        self.ensemble.kill(i)
    }

    /// Starts server `i` again with its port and data, and waits until it has rejoined the
    /// quorum.
    ///
    /// Errors with [`Error::NoSuchNode`], [`Error::Io`], or [`Error::NotReady`] (with its log).
    pub fn restart(&mut self, i: usize) -> Result<(), Error> {
        self.ensemble.restart(i)
    }

    /// Waits until every running server serves and exactly one leads (e.g. after killing the
    /// leader, until the others have elected a new one).
    ///
    /// Errors with [`Error::NotReady`] when that does not happen within 60 s.
    pub fn wait_for_quorum(&mut self) -> Result<(), Error> {
        self.ensemble.wait_all_ready()
    }

    /// Server `i`'s role now (`None` when stopped or not serving).
    pub fn mode(&self, i: usize) -> Option<ServerMode> {
        self.ensemble.mode(i)
    }

    /// The end of server `i`'s log files, for a failing test to print.
    pub fn log_tail(&self, i: usize, lines: usize) -> String {
        self.ensemble.log_tail(i, lines)
    }

    /// The harness underneath (four-letter words, directories).
    pub fn ensemble(&self) -> &Ensemble {
        &self.ensemble
    }

    /// The harness underneath, mutably (pause and resume servers, wait for modes).
    pub fn ensemble_mut(&mut self) -> &mut Ensemble {
        &mut self.ensemble
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_zookeeper_is_reported_with_what_to_install() {
        let err = not_installed(&[(
            ZkVersion::V3_8,
            Error::NotInstalled("/usr/share/java/zookeeper.jar is missing".into()),
        )]);
        let msg = err.to_string();
        assert!(matches!(err, Error::NotInstalled(_)));
        assert!(msg.contains("ZooKeeper 3.8.0: /usr/share/java/zookeeper.jar is missing"));
        assert!(msg.contains("apt-get install zookeeper"));
        assert!(msg.contains("ZK_TESTKIT_ZOOKEEPER_LIB"));
    }
}
