//! One server process: its directory, its ports, and the JVM running (or not) in it.
//!
//! A node's directory holds everything about it, so `ZK_RS_KEEP=1` leaves a complete record:
//! `zoo.cfg`, the logging config, `data/` (snapshots, transaction logs, `myid`), `zookeeper.log`,
//! and `stdout.log` / `stderr.log`, which are appended to across restarts so that the story of a
//! node that was killed and restarted reads top to bottom.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use super::ports::PortBlock;
use super::Error;

/// How long a SIGTERM'd JVM gets to exit before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// Bytes read from the end of each log file for a tail; enough for a stack trace or two.
const TAIL_BYTES: u64 = 64 * 1024;

/// One ZooKeeper server of an [`Ensemble`](super::Ensemble).
#[derive(Debug)]
pub struct Node {
    index: usize,
    dir: PathBuf,
    ports: PortBlock,
    /// Where the ensemble's watchdog looks for PIDs to kill if the test process dies.
    pid_file: PathBuf,
    child: Option<Child>,
    paused: bool,
    starts: u32,
}

impl Node {
    pub(crate) fn new(index: usize, dir: PathBuf, ports: PortBlock, pid_file: PathBuf) -> Node {
        Node {
            index,
            dir,
            ports,
            pid_file,
            child: None,
            paused: false,
            starts: 0,
        }
    }

    /// The node's index in its ensemble (0-based; its `myid` is `index + 1`).
    pub fn index(&self) -> usize {
        self.index
    }

    /// The client port, on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.ports.port(0)
    }

    /// The client address, `127.0.0.1:port`.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port()))
    }

    /// The quorum (follower-to-leader) port; unused by a standalone server.
    pub fn quorum_port(&self) -> u16 {
        self.ports.port(1)
    }

    /// The leader-election port; unused by a standalone server.
    pub fn election_port(&self) -> u16 {
        self.ports.port(2)
    }

    /// The node's directory (config, logs, and `data/`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The dataDir: snapshots, transaction logs and `myid`. It survives stops and restarts.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// The JVM's process id while it runs (or is paused), else `None`.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether a JVM was started and not yet stopped or killed (paused counts as running).
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Whether the JVM is stopped with SIGSTOP.
    pub fn is_paused(&self) -> bool {
        self.paused
    }

    /// The last `lines` lines of `zookeeper.log`, `stderr.log` and `stdout.log`, each under a
    /// heading; files that are missing or empty are left out. Never fails: an unreadable file is
    /// reported inline.
    pub fn log_tail(&self, lines: usize) -> String {
        let mut out = String::new();
        for name in ["zookeeper.log", "stderr.log", "stdout.log"] {
            let path = self.dir.join(name);
            match tail(&path, lines) {
                Ok(t) if t.trim().is_empty() => {}
                Ok(t) => {
                    out.push_str(&format!(
                        "---- node {} {}:\n{t}",
                        self.index,
                        path.display()
                    ));
                    if !t.ends_with('\n') {
                        out.push('\n');
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => out.push_str(&format!("---- {}: unreadable: {e}\n", path.display())),
            }
        }
        if out.is_empty() {
            out = format!("---- node {}: no log output\n", self.index);
        }
        out
    }

    /// Spawns the JVM: `java <args> <main> zoo.cfg`, output appended to the node's log files.
    pub(crate) fn spawn(&mut self, java: &Path, args: &[String]) -> Result<(), Error> {
        if self.child.is_some() {
            return Ok(());
        }
        self.starts += 1;
        let banner = format!(
            "==== zk_testkit: start #{} of node {}\n",
            self.starts, self.index
        );
        let stdout = self.append_log("stdout.log", &banner)?;
        let stderr = self.append_log("stderr.log", &banner)?;
        let child = Command::new(java)
            .args(args)
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .map_err(|e| Error::io(format!("starting {}", java.display()), e))?;
        // Best effort: without the file, only the watchdog's safety net is lost.
        let _ = fs::write(&self.pid_file, child.id().to_string());
        self.child = Some(child);
        self.paused = false;
        Ok(())
    }

    /// `Ok(Some(status))` if the JVM has exited on its own (it is then reaped and forgotten).
    pub(crate) fn check_exited(&mut self) -> Result<Option<String>, Error> {
        let Some(child) = self.child.as_mut() else {
            return Ok(None);
        };
        match child.try_wait() {
            Ok(Some(status)) => {
                self.forget();
                Ok(Some(status.to_string()))
            }
            Ok(None) => Ok(None),
            Err(e) => Err(Error::io(format!("checking node {}", self.index), e)),
        }
    }

    /// SIGTERM, then wait up to [`STOP_GRACE`]; SIGKILL if the JVM is still there.
    pub(crate) fn stop(&mut self) -> Result<(), Error> {
        if self.child.is_none() {
            return Ok(());
        }
        if self.paused {
            // A stopped process keeps SIGTERM pending until it is continued.
            self.signal("CONT")?;
            self.paused = false;
        }
        self.signal("TERM")?;
        let deadline = Instant::now() + STOP_GRACE;
        while Instant::now() < deadline {
            if self.check_exited()?.is_some() {
                return Ok(());
            }
            thread::sleep(Duration::from_millis(20));
        }
        self.kill()
    }

    /// SIGKILL and reap. SIGKILL ends even a SIGSTOPped process.
    pub(crate) fn kill(&mut self) -> Result<(), Error> {
        let Some(child) = self.child.as_mut() else {
            return Ok(());
        };
        // Fails only if the process was already reaped, which `child` rules out; an exited but
        // unreaped JVM is a zombie, and killing a zombie succeeds.
        let killed = child.kill();
        let waited = child.wait();
        self.forget();
        killed
            .and(waited.map(drop))
            .map_err(|e| Error::io(format!("killing node {}", self.index), e))
    }

    /// SIGSTOP: the JVM freezes with its sockets open, as a hung or partitioned server would.
    ///
    /// Returns once every thread is seen stopped: kill(2) returns before a many-threaded process
    /// has stopped all its threads, and a request sent in that window would still be answered.
    pub(crate) fn pause(&mut self) -> Result<(), Error> {
        self.signal("STOP")?;
        self.paused = true;
        if let Some(pid) = self.pid() {
            let deadline = Instant::now() + Duration::from_secs(5);
            while !all_threads_stopped(pid) && Instant::now() < deadline {
                thread::sleep(Duration::from_millis(5));
            }
        }
        Ok(())
    }

    /// SIGCONT after [`Node::pause`].
    pub(crate) fn resume(&mut self) -> Result<(), Error> {
        self.signal("CONT")?;
        self.paused = false;
        Ok(())
    }

    /// Sends a signal with kill(1): std has no signal API and this crate has no `unsafe`.
    fn signal(&self, name: &str) -> Result<(), Error> {
        let pid = self.pid().ok_or(Error::NotRunning(self.index))?;
        let out = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(pid.to_string())
            .stdin(Stdio::null())
            .output()
            .map_err(|e| Error::io(format!("running kill -{name} {pid}"), e))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(Error::io(
                format!("kill -{name} {pid} (node {})", self.index),
                io::Error::other(String::from_utf8_lossy(&out.stderr).trim().to_owned()),
            ))
        }
    }

    fn forget(&mut self) {
        self.child = None;
        self.paused = false;
        let _ = fs::remove_file(&self.pid_file);
    }

    fn append_log(&self, name: &str, banner: &str) -> Result<File, Error> {
        let path = self.dir.join(name);
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
        file.write_all(banner.as_bytes())
            .map_err(|e| Error::io(format!("writing {}", path.display()), e))?;
        Ok(file)
    }
}

/// Whether every thread of `pid` is in state `T` (stopped) per `/proc/<pid>/task/*/stat`.
/// True where there is no procfs (nothing to check with) or the process is gone.
fn all_threads_stopped(pid: u32) -> bool {
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return true;
    };
    tasks.flatten().all(|task| {
        // The state follows the command name, which is in parentheses and may contain spaces.
        fs::read_to_string(task.path().join("stat"))
            .ok()
            .and_then(|stat| {
                let after = &stat[stat.rfind(')')? + 1..];
                after
                    .split_whitespace()
                    .next()
                    .map(|s| s == "T" || s == "t")
            })
            // A thread that exited or cannot be read does not hold the pause up.
            .unwrap_or(true)
    })
}

/// The last `lines` lines among the final [`TAIL_BYTES`] of a file.
fn tail(path: &Path, lines: usize) -> io::Result<String> {
    let mut file = File::open(path)?;
    let len = file.metadata()?.len();
    file.seek(SeekFrom::Start(len.saturating_sub(TAIL_BYTES)))?;
    let mut buf = Vec::new();
    file.take(TAIL_BYTES).read_to_end(&mut buf)?;
    let text = String::from_utf8_lossy(&buf);
    let all: Vec<&str> = text.lines().collect();
    let mut out = all[all.len().saturating_sub(lines)..].join("\n");
    out.push('\n');
    Ok(out)
}
