//! [`Ensemble`]: start N servers of one version, control them, and clean up after them.

use std::env;
use std::fmt::Write as _;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{self, Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use super::install::{Installation, Logging, ZkVersion};
use super::node::Node;
use super::ports::{self, PortBlock};
use super::tls::{self, ServerTls};
use super::{four_letter_word, Error, ServerMode};

/// Timeout for one four-letter-word probe while waiting for readiness; a local server answers in
/// milliseconds, a paused one never.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// Timeout for [`Ensemble::four_letter`]: generous, since a loaded machine may be slow.
const FOUR_LETTER_TIMEOUT: Duration = Duration::from_secs(5);

/// Pause between readiness probes.
const POLL: Duration = Duration::from_millis(100);

/// Log lines per node in an error message.
const ERROR_TAIL_LINES: usize = 40;

/// Makes temp directory names unique within the process.
static ROOTS: AtomicUsize = AtomicUsize::new(0);

/// Kills the ensemble's JVMs if the test process dies without dropping the [`Ensemble`]
/// (SIGKILL from a CI timeout, an abort). `$1` is the test process, `$2` the ensemble's root,
/// `$3` is 1 to keep the files, `$4` the port-claim directory, whose files of the dead process
/// it removes too. It ignores SIGINT and friends so that a Ctrl-C, which also reaches the JVMs
/// but leaves a SIGSTOPped one frozen forever, is cleaned up too.
const WATCHDOG: &str = r#"trap '' INT TERM HUP
while kill -0 "$1" 2>/dev/null; do sleep 1; done
for f in "$2"/pids/*; do
    [ -f "$f" ] && kill -9 "$(cat "$f")" 2>/dev/null
done
[ "$3" = 1 ] || rm -rf "$2"
rm -f "$4"/b*-"$1"
"#;

/// How to start an [`Ensemble`]. Start from [`EnsembleOptions::standalone`] or
/// [`EnsembleOptions::quorum`] and adjust fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnsembleOptions {
    /// Which server release to run.
    pub version: ZkVersion,
    /// Number of servers: 1 runs `ZooKeeperServerMain` (standalone), more run `QuorumPeerMain`
    /// with `server.N` lines and `myid` files.
    pub size: usize,
    /// `tickTime` in ms (default 200, so tests stay fast; ZooKeeper's own default is 3000).
    pub tick_ms: u32,
    /// `initLimit` in ticks: how long followers may take to connect and sync (default 10).
    pub init_limit: u32,
    /// `syncLimit` in ticks: how far a follower may lag before the leader drops it (default 5).
    pub sync_limit: u32,
    /// `minSessionTimeout` in ms; `None` leaves ZooKeeper's default of 2 ticks.
    pub min_session_timeout_ms: Option<u32>,
    /// `maxSessionTimeout` in ms; `None` leaves ZooKeeper's default of 20 ticks.
    pub max_session_timeout_ms: Option<u32>,
    /// TTL nodes (`-Dzookeeper.extendedTypesEnabled=true`); default true.
    pub extended_types: bool,
    /// Read-only mode for partitioned servers (`-Dreadonlymode.enabled=true`); default false.
    ///
    /// Since ZooKeeper 3.7.0 a read-only server creates only *local* sessions: unless
    /// `localSessionsEnabled=true` is in [`EnsembleOptions::extra_config`], it answers a new
    /// session's ConnectRequest with a bare ReplyHeader `{xid 0, err NotReadOnly}` instead of a
    /// ConnectResponse, and refuses to resume global sessions.
    pub read_only_mode: bool,
    /// Extra `zoo.cfg` lines, written last so that they override the harness's own settings.
    /// Unknown keys become `zookeeper.<key>` system properties, but some settings are read only
    /// as JVM properties: use [`EnsembleOptions::system_properties`] for those.
    pub extra_config: Vec<String>,
    /// Extra JVM system properties as `(name, value)`, passed as `-Dname=value` after the
    /// harness's own (so they win), e.g. `("jute.maxbuffer", "4194304")`.
    pub system_properties: Vec<(String, String)>,
    /// Extra JVM arguments (e.g. `-Xmx512m`), after the harness's own.
    pub jvm_args: Vec<String>,
    /// How long [`Ensemble::start`] and the waiting methods wait for servers (default 60 s).
    pub ready_timeout: Duration,
    /// Serve clients over TLS only: a `secureClientPort` (Netty) on each node's client port and
    /// no plain one; the harness then probes over TLS too. Default `None` (plain TCP).
    pub tls: Option<ServerTls>,
    /// Dynamic reconfiguration (a quorum only): `reconfigEnabled=true`, `skipACL=yes` so any
    /// client may call `reconfig`, and each `server.N` line carries its client address
    /// (`;127.0.0.1:port`) so `/zookeeper/config` names it. Default false.
    pub reconfig: bool,
}

impl EnsembleOptions {
    /// One standalone server of `version`, with the defaults described on each field.
    pub fn standalone(version: ZkVersion) -> EnsembleOptions {
        EnsembleOptions {
            version,
            size: 1,
            tick_ms: 200,
            init_limit: 10,
            sync_limit: 5,
            min_session_timeout_ms: None,
            max_session_timeout_ms: None,
            extended_types: true,
            read_only_mode: false,
            extra_config: Vec::new(),
            system_properties: Vec::new(),
            jvm_args: Vec::new(),
            ready_timeout: Duration::from_secs(60),
            tls: None,
            reconfig: false,
        }
    }

    /// A quorum of `size` servers of `version` (3 is the usual choice), otherwise as
    /// [`EnsembleOptions::standalone`].
    pub fn quorum(version: ZkVersion, size: usize) -> EnsembleOptions {
        EnsembleOptions {
            size,
            ..EnsembleOptions::standalone(version)
        }
    }

    fn validate(&self) -> Result<(), Error> {
        let bad = |msg: &str| Err(Error::InvalidOptions(msg.to_owned()));
        if self.size == 0 {
            return bad("an ensemble needs at least one server");
        }
        // With extended types on, ZooKeeper refuses server ids of 255 and above.
        if self.size > 254 {
            return bad("an ensemble has at most 254 servers");
        }
        if self.tick_ms == 0 || self.init_limit == 0 || self.sync_limit == 0 {
            return bad("tick_ms, init_limit and sync_limit must be positive");
        }
        if self.reconfig && (self.size < 2 || self.tls.is_some()) {
            return bad("reconfig needs a quorum with plain client ports");
        }
        if self.extra_config.iter().any(|l| l.contains('\n')) {
            return bad("an extra_config entry must be a single line");
        }
        Ok(())
    }
}

impl Default for EnsembleOptions {
    /// A standalone ZooKeeper 3.8 server.
    fn default() -> EnsembleOptions {
        EnsembleOptions::standalone(ZkVersion::V3_8)
    }
}

/// Running ZooKeeper servers: one standalone server or a quorum. Nodes are addressed by index
/// `0..size` (a node's `myid` is its index + 1).
///
/// Dropping it kills every JVM and removes its files (unless `ZK_RS_KEEP=1`), even during a panic.
#[derive(Debug)]
pub struct Ensemble {
    opts: EnsembleOptions,
    install: Installation,
    root: PathBuf,
    nodes: Vec<Node>,
    watchdog: Option<Child>,
    keep: bool,
    /// How the harness's own probes speak TLS, when the servers do.
    probe_tls: Option<Arc<rustls::ClientConfig>>,
}

impl Ensemble {
    /// Writes the configs, starts every server and waits until all are ready: `ruok` answers
    /// `imok`, `srvr` reports `standalone`, or one `leader` and the rest `follower`.
    ///
    /// Errors with [`Error::NotInstalled`] when Java or the jars are missing (the message names
    /// `scripts/setup-zookeeper`), [`Error::InvalidOptions`], [`Error::Io`] when files, ports or
    /// processes cannot be had, and [`Error::NotReady`] (with the log tails) when a server exits
    /// or is not ready within `opts.ready_timeout`. Whatever was started is cleaned up.
    pub fn start(opts: EnsembleOptions) -> Result<Ensemble, Error> {
        opts.validate()?;
        let install = opts.version.locate()?;
        let keep = env::var_os("ZK_RS_KEEP").is_some_and(|v| v == "1");
        let probe_tls = match &opts.tls {
            Some(t) => Some(
                tls::probe_config(t)
                    .map_err(|e| Error::io("loading the probes' TLS identity", e))?,
            ),
            None => None,
        };
        let root = make_root()?;
        // From here on, dropping `ens` cleans up whatever exists.
        let mut ens = Ensemble {
            opts,
            install,
            root,
            nodes: Vec::new(),
            watchdog: None,
            keep,
            probe_tls,
        };
        let pids = ens.root.join("pids");
        create_dir(&pids)?;
        for i in 0..ens.opts.size {
            let ports = PortBlock::claim().map_err(|e| Error::io("claiming loopback ports", e))?;
            let dir = ens.root.join(format!("node{i}"));
            create_dir(&dir.join("data"))?;
            ens.nodes
                .push(Node::new(i, dir, ports, pids.join(i.to_string())));
        }
        for i in 0..ens.nodes.len() {
            ens.write_node_files(i)?;
        }
        ens.watchdog = Some(ens.spawn_watchdog()?);
        for i in 0..ens.nodes.len() {
            let args = ens.java_args(i);
            let java = ens.install.java().to_path_buf();
            ens.nodes[i].spawn(&java, &args)?;
        }
        ens.wait_all_ready()?;
        Ok(ens)
    }

    /// The server release running.
    pub fn version(&self) -> ZkVersion {
        self.opts.version
    }

    /// The options the ensemble was started with.
    pub fn options(&self) -> &EnsembleOptions {
        &self.opts
    }

    /// Java and the classpath in use.
    pub fn installation(&self) -> &Installation {
        &self.install
    }

    /// The temp directory holding every node's directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Number of nodes (running or not).
    pub fn size(&self) -> usize {
        self.nodes.len()
    }

    /// Every node, by index.
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// Node `i`. Errors with [`Error::NoSuchNode`].
    pub fn node(&self, i: usize) -> Result<&Node, Error> {
        self.nodes.get(i).ok_or(Error::NoSuchNode(i))
    }

    /// `127.0.0.1:p1,127.0.0.1:p2,...` over every node, running or not, in index order.
    pub fn connect_string(&self) -> String {
        self.nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port()))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The JVM's process id of node `i`, while it runs; `None` if stopped or no such node.
    pub fn pid(&self, i: usize) -> Option<u32> {
        self.nodes.get(i).and_then(Node::pid)
    }

    /// Sends a four-letter word to node `i` on a fresh connection and returns the whole answer
    /// (read to EOF, at most 1 MiB; 5 s timeouts).
    ///
    /// Errors with [`io::ErrorKind::InvalidInput`] for an unknown node or a word that is not 4
    /// bytes, and with the socket error otherwise (a stopped node refuses the connection; a
    /// paused one times out).
    pub fn four_letter(&self, i: usize, word: &str) -> io::Result<String> {
        let node = self.nodes.get(i).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("no ZooKeeper node {i}"),
            )
        })?;
        send_word(
            node.port(),
            word,
            FOUR_LETTER_TIMEOUT,
            self.probe_tls.as_ref(),
        )
    }

    /// Node `i`'s mode from `srvr`; `None` when it is stopped, paused, not serving or unknown.
    pub fn mode(&self, i: usize) -> Option<ServerMode> {
        let node = self.nodes.get(i)?;
        if !node.is_running() || node.is_paused() {
            return None;
        }
        probe(node.port(), self.probe_tls.as_ref()).ok()
    }

    /// The node that currently leads: the one whose `srvr` says `leader` (a standalone server
    /// counts as its own leader). Stopped and paused nodes are not asked. `None` when no node
    /// claims it, e.g. during an election.
    pub fn leader(&self) -> Option<usize> {
        (0..self.nodes.len()).find(|&i| {
            matches!(
                self.mode(i),
                Some(ServerMode::Leader | ServerMode::Standalone)
            )
        })
    }

    /// The end of node `i`'s log files (see [`Node::log_tail`]), for a failing test to print.
    pub fn log_tail(&self, i: usize, lines: usize) -> String {
        match self.nodes.get(i) {
            Some(node) => node.log_tail(lines),
            None => format!("no ZooKeeper node {i}\n"),
        }
    }

    /// Graceful stop: SIGTERM, then wait (SIGKILL after 10 s). The node keeps its dataDir and
    /// ports for [`Ensemble::restart`]. A no-op on a stopped node.
    ///
    /// Errors with [`Error::NoSuchNode`] or [`Error::Io`] if a signal cannot be sent.
    pub fn stop(&mut self, i: usize) -> Result<(), Error> {
        self.node_mut(i)?.stop()
    }

    /// Crash: SIGKILL and reap, as `kill -9` would. A no-op on a stopped node.
    ///
    /// Errors with [`Error::NoSuchNode`] or [`Error::Io`].
    pub fn kill(&mut self, i: usize) -> Result<(), Error> {
        self.node_mut(i)?.kill()
    }

    /// Freeze: SIGSTOP. The JVM keeps its sockets open but answers nothing, like a hung server
    /// or one behind a partition; peers notice after `syncLimit` ticks, clients after their
    /// read timeout.
    ///
    /// Errors with [`Error::NoSuchNode`], [`Error::NotRunning`], or [`Error::Io`].
    pub fn pause(&mut self, i: usize) -> Result<(), Error> {
        self.node_mut(i)?.pause()
    }

    /// Thaw a paused node: SIGCONT. Does not wait; see [`Ensemble::wait_ready`].
    ///
    /// Errors with [`Error::NoSuchNode`], [`Error::NotRunning`], or [`Error::Io`].
    pub fn resume(&mut self, i: usize) -> Result<(), Error> {
        self.node_mut(i)?.resume()
    }

    /// Starts node `i` again (stopping it first if it runs) with the same dataDir, config and
    /// ports, and waits until it is ready (see [`Ensemble::wait_ready`]).
    ///
    /// Errors as [`Ensemble::stop`] and [`Ensemble::wait_ready`] do, and with [`Error::Io`] if the
    /// JVM cannot be spawned.
    pub fn restart(&mut self, i: usize) -> Result<(), Error> {
        self.node_mut(i)?.stop()?;
        let args = self.java_args(i);
        let java = self.install.java().to_path_buf();
        self.node_mut(i)?.spawn(&java, &args)?;
        self.wait_ready(i)
    }

    /// Waits until node `i` answers `ruok` with `imok` and `srvr` reports a serving mode
    /// (standalone, leader, follower or observer; in a quorum that means it has joined one).
    ///
    /// Errors with [`Error::NoSuchNode`], [`Error::NotRunning`] for a stopped or paused node, and
    /// [`Error::NotReady`] if it exits or is not ready within the options' `ready_timeout`.
    pub fn wait_ready(&mut self, i: usize) -> Result<(), Error> {
        self.wait_for(i, "a serving mode", ServerMode::is_serving)
    }

    /// Waits until `srvr` on node `i` reports exactly `mode` (e.g. [`ServerMode::ReadOnly`] once a
    /// read-only-enabled server has lost its quorum).
    ///
    /// Errors as [`Ensemble::wait_ready`].
    pub fn wait_for_mode(&mut self, i: usize, mode: ServerMode) -> Result<(), Error> {
        let want = format!("mode {mode:?}");
        self.wait_for(i, &want, |m| *m == mode)
    }

    /// Waits until every running, unpaused node is ready and, in a quorum, exactly one of them is
    /// the leader (e.g. after killing the leader, until the survivors have elected a new one).
    ///
    /// Errors with [`Error::NotReady`] naming the first node that exited or was not ready in
    /// time, with the log tails of every node not ready.
    pub fn wait_all_ready(&mut self) -> Result<(), Error> {
        let deadline = Instant::now() + self.opts.ready_timeout;
        loop {
            self.check_exits()?;
            let mut report = String::new();
            let mut not_ready = Vec::new();
            let mut leaders = 0;
            for node in self
                .nodes
                .iter()
                .filter(|n| n.is_running() && !n.is_paused())
            {
                let state = probe(node.port(), self.probe_tls.as_ref());
                match &state {
                    Ok(m) if m.is_serving() => {
                        leaders += usize::from(matches!(m, ServerMode::Leader));
                    }
                    _ => not_ready.push(node.index()),
                }
                let _ = writeln!(report, "node {}: {}", node.index(), describe(&state));
            }
            let leader_ok = self.nodes.len() == 1 || leaders == 1;
            if not_ready.is_empty() && leader_ok {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let first = not_ready.first().copied().unwrap_or(0);
                let tails = self
                    .nodes
                    .iter()
                    .filter(|n| not_ready.is_empty() || not_ready.contains(&n.index()))
                    .map(|n| n.log_tail(ERROR_TAIL_LINES))
                    .collect::<String>();
                return Err(Error::NotReady {
                    node: first,
                    reason: format!(
                        "ensemble not ready after {:?} ({leaders} leader(s)):\n{report}",
                        self.opts.ready_timeout
                    ),
                    log_tail: tails,
                });
            }
            thread::sleep(POLL);
        }
    }

    fn wait_for(
        &mut self,
        i: usize,
        want: &str,
        accept: impl Fn(&ServerMode) -> bool,
    ) -> Result<(), Error> {
        let timeout = self.opts.ready_timeout;
        let deadline = Instant::now() + timeout;
        let probe_tls = self.probe_tls.clone();
        loop {
            let node = self.node_mut(i)?;
            if let Some(status) = node.check_exited()? {
                return Err(exited(node, &status));
            }
            if !node.is_running() || node.is_paused() {
                return Err(Error::NotRunning(i));
            }
            let state = probe(node.port(), probe_tls.as_ref());
            if state.as_ref().is_ok_and(&accept) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(Error::NotReady {
                    node: i,
                    reason: format!(
                        "no {want} after {timeout:?}; last seen: {}",
                        describe(&state)
                    ),
                    log_tail: node.log_tail(ERROR_TAIL_LINES),
                });
            }
            thread::sleep(POLL);
        }
    }

    /// Fails if any node exited on its own.
    fn check_exits(&mut self) -> Result<(), Error> {
        for node in &mut self.nodes {
            if let Some(status) = node.check_exited()? {
                return Err(exited(node, &status));
            }
        }
        Ok(())
    }

    fn node_mut(&mut self, i: usize) -> Result<&mut Node, Error> {
        self.nodes.get_mut(i).ok_or(Error::NoSuchNode(i))
    }

    /// The JVM command line after `java`, for node `i`.
    fn java_args(&self, i: usize) -> Vec<String> {
        let dir = self
            .nodes
            .get(i)
            .map(|n| n.dir().to_path_buf())
            .unwrap_or_default();
        let mut args: Vec<String> = [
            // Small and quick to start; the machine is shared with compilers.
            "-Xmx256m",
            "-XX:+UseSerialGC",
            "-XX:TieredStopAtLevel=1",
            // No /tmp/hsperfdata_* files, which SIGKILLed JVMs would leave behind.
            "-XX:-UsePerfData",
            "-Djava.awt.headless=true",
            "-Dzookeeper.admin.enableServer=false",
            // Txn log files are padded to this many KiB (default 64 MiB each).
            "-Dzookeeper.preAllocSize=1024",
            "-Dzookeeper.jmx.log4j.disable=true",
        ]
        .map(String::from)
        .into();
        if self.opts.extended_types {
            args.push("-Dzookeeper.extendedTypesEnabled=true".into());
        }
        if self.opts.read_only_mode {
            // A JVM property only: a zoo.cfg line would become `zookeeper.readonlymode.enabled`.
            args.push("-Dreadonlymode.enabled=true".into());
        }
        args.push(match self.install.logging() {
            Logging::Log4j1 => format!(
                "-Dlog4j.configuration=file:{}",
                dir.join("log4j.properties").display()
            ),
            Logging::Logback => format!(
                "-Dlogback.configurationFile={}",
                dir.join("logback.xml").display()
            ),
        });
        args.extend(self.opts.jvm_args.iter().cloned());
        args.extend(
            self.opts
                .system_properties
                .iter()
                .map(|(k, v)| format!("-D{k}={v}")),
        );
        args.push("-cp".into());
        args.push(self.install.classpath().to_owned());
        args.push(
            if self.nodes.len() == 1 {
                "org.apache.zookeeper.server.ZooKeeperServerMain"
            } else {
                "org.apache.zookeeper.server.quorum.QuorumPeerMain"
            }
            .into(),
        );
        args.push(dir.join("zoo.cfg").display().to_string());
        args
    }

    /// zoo.cfg, the logging config and (in a quorum) `myid` for node `i`.
    fn write_node_files(&self, i: usize) -> Result<(), Error> {
        let node = self.node(i)?;
        let o = &self.opts;
        let mut cfg = String::new();
        let _ = writeln!(
            cfg,
            "# Written by zk_testkit::real for node {i} (myid {}).",
            i + 1
        );
        let _ = writeln!(cfg, "tickTime={}", o.tick_ms);
        let _ = writeln!(cfg, "initLimit={}", o.init_limit);
        let _ = writeln!(cfg, "syncLimit={}", o.sync_limit);
        let _ = writeln!(cfg, "dataDir={}", node.data_dir().display());
        match &o.tls {
            // The secure port only: a client that fell back to plain TCP would find nothing.
            Some(t) => cfg.push_str(&tls::config_lines(t, node.port())),
            // With reconfig the client address is on the server lines (dynamic config) only: a
            // static clientPort as well would have to agree with it.
            None if o.reconfig => {}
            None => {
                let _ = writeln!(cfg, "clientPort={}", node.port());
                let _ = writeln!(cfg, "clientPortAddress=127.0.0.1");
            }
        }
        if let Some(ms) = o.min_session_timeout_ms {
            let _ = writeln!(cfg, "minSessionTimeout={ms}");
        }
        if let Some(ms) = o.max_session_timeout_ms {
            let _ = writeln!(cfg, "maxSessionTimeout={ms}");
        }
        // Every 4lw, for tests and for readiness probes (the default allows only srvr).
        cfg.push_str("4lw.commands.whitelist=*\n");
        cfg.push_str("admin.enableServer=false\n");
        // Durability is not under test; fsync on every write would make tests slow.
        cfg.push_str("forceSync=no\n");
        if self.nodes.len() > 1 {
            if o.reconfig {
                cfg.push_str("reconfigEnabled=true\nskipACL=yes\n");
            }
            for peer in &self.nodes {
                let client = if o.reconfig {
                    format!(":participant;127.0.0.1:{}", peer.port())
                } else {
                    String::new()
                };
                let _ = writeln!(
                    cfg,
                    "server.{}=127.0.0.1:{}:{}{client}",
                    peer.index() + 1,
                    peer.quorum_port(),
                    peer.election_port()
                );
            }
            write_file(&node.data_dir().join("myid"), &format!("{}\n", i + 1))?;
        }
        for line in &o.extra_config {
            cfg.push_str(line);
            cfg.push('\n');
        }
        write_file(&node.dir().join("zoo.cfg"), &cfg)?;

        let log = node.dir().join("zookeeper.log");
        match self.install.logging() {
            Logging::Log4j1 => write_file(
                &node.dir().join("log4j.properties"),
                &format!(
                    "log4j.rootLogger=INFO, FILE\n\
                     log4j.appender.FILE=org.apache.log4j.FileAppender\n\
                     log4j.appender.FILE.File={}\n\
                     log4j.appender.FILE.Append=true\n\
                     log4j.appender.FILE.layout=org.apache.log4j.PatternLayout\n\
                     log4j.appender.FILE.layout.ConversionPattern=%d{{ISO8601}} %-5p [%t:%c{{1}}] - %m%n\n",
                    log.display()
                ),
            ),
            Logging::Logback => write_file(
                &node.dir().join("logback.xml"),
                &format!(
                    "<configuration>\n\
                     \x20 <appender name=\"FILE\" class=\"ch.qos.logback.core.FileAppender\">\n\
                     \x20   <file>{}</file>\n\
                     \x20   <append>true</append>\n\
                     \x20   <encoder><pattern>%d{{ISO8601}} %-5level [%thread:%logger{{0}}] - %msg%n</pattern></encoder>\n\
                     \x20 </appender>\n\
                     \x20 <root level=\"INFO\"><appender-ref ref=\"FILE\"/></root>\n\
                     </configuration>\n",
                    xml_escape(&log.display().to_string())
                ),
            ),
        }
    }

    fn spawn_watchdog(&self) -> Result<Child, Error> {
        Command::new("sh")
            .arg("-c")
            .arg(WATCHDOG)
            .arg("zk-rs-watchdog") // $0
            .arg(process::id().to_string())
            .arg(&self.root)
            .arg(if self.keep { "1" } else { "0" })
            .arg(ports::claim_dir())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| Error::io("starting the watchdog (sh)", e))
    }
}

impl Drop for Ensemble {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if node.is_paused() {
                let _ = node.resume();
            }
            let _ = node.kill();
        }
        if let Some(mut watchdog) = self.watchdog.take() {
            let _ = watchdog.kill();
            let _ = watchdog.wait();
        }
        if self.keep {
            eprintln!("zk_testkit: ZK_RS_KEEP=1, kept {}", self.root.display());
        } else {
            let _ = fs::remove_dir_all(&self.root);
        }
        // The nodes' port claims are released when `nodes` drops, after this.
    }
}

/// A four-letter word, over TLS when `tls` is given.
fn send_word(
    port: u16,
    word: &str,
    timeout: Duration,
    tls: Option<&Arc<rustls::ClientConfig>>,
) -> io::Result<String> {
    match tls {
        Some(config) => tls::four_letter_word_tls(port, word, timeout, config),
        None => four_letter_word(port, word, timeout),
    }
}

/// One readiness probe: `ruok` must answer `imok`, then `srvr` must name a mode.
fn probe(port: u16, tls: Option<&Arc<rustls::ClientConfig>>) -> Result<ServerMode, String> {
    match send_word(port, "ruok", PROBE_TIMEOUT, tls) {
        Ok(a) if a == "imok" => {}
        Ok(a) => return Err(format!("ruok answered {a:?}")),
        Err(e) => return Err(format!("ruok failed: {e}")),
    }
    let srvr =
        send_word(port, "srvr", PROBE_TIMEOUT, tls).map_err(|e| format!("srvr failed: {e}"))?;
    ServerMode::from_srvr(&srvr).ok_or_else(|| format!("srvr answered {:?}", srvr.trim()))
}

fn describe(state: &Result<ServerMode, String>) -> String {
    match state {
        Ok(mode) => format!("mode {mode:?}"),
        Err(e) => e.clone(),
    }
}

fn exited(node: &Node, status: &str) -> Error {
    Error::NotReady {
        node: node.index(),
        reason: format!("the JVM exited ({status})"),
        log_tail: node.log_tail(ERROR_TAIL_LINES),
    }
}

/// A fresh directory `$TMPDIR/zk-rs-<pid>-<n>`.
fn make_root() -> Result<PathBuf, Error> {
    let tmp = env::temp_dir();
    loop {
        let n = ROOTS.fetch_add(1, Ordering::Relaxed);
        let root = tmp.join(format!("zk-rs-{}-{n}", process::id()));
        match fs::create_dir(&root) {
            Ok(()) => return Ok(root),
            // Left by an earlier process with the same PID; take the next name.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(Error::io(format!("creating {}", root.display()), e)),
        }
    }
}

fn create_dir(dir: &Path) -> Result<(), Error> {
    fs::create_dir_all(dir).map_err(|e| Error::io(format!("creating {}", dir.display()), e))
}

fn write_file(path: &Path, text: &str) -> Result<(), Error> {
    fs::write(path, text).map_err(|e| Error::io(format!("writing {}", path.display()), e))
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
