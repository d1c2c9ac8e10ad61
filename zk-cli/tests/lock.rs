//! `zk lock` and `zk elect` against a real ZooKeeper 3.8 server (one standalone server shared by
//! the tests of this file, each test under its own path; the server-loss test has its own): the
//! commands they run write markers to a file, and the tests wait for those markers and for nodes
//! to appear (every wait is for an event, with a generous bound; nothing asserts timing). kazoo
//! (Debian's python3-kazoo) holds and inspects the same lock to check that the layouts agree.
//!
//! Needs `scripts/setup-zookeeper` (scripts/test runs it); python3 or kazoo missing is a failure,
//! never a skip.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;
use zk_testkit::real::{Ensemble, EnsembleOptions, ZkVersion};

const ZK: &str = env!("CARGO_BIN_EXE_zk");

/// Upper bound of any one wait for an event (the machine may be loaded).
const WAIT: Duration = Duration::from_secs(60);

/// The shared server's connect string.
fn server() -> &'static str {
    static SERVER: OnceLock<(std::sync::Mutex<Ensemble>, String)> = OnceLock::new();
    &SERVER
        .get_or_init(|| {
            let ens =
                Ensemble::start(EnsembleOptions::standalone(ZkVersion::V3_8)).unwrap_or_else(|e| {
                    panic!("starting ZooKeeper 3.8 (run scripts/setup-zookeeper): {e}")
                });
            let cs = ens.connect_string();
            // Never dropped: the harness's watchdog kills the JVM when this process exits.
            (std::sync::Mutex::new(ens), cs)
        })
        .1
}

/// A standalone ZooKeeper 3.8 of a test's own, which grants sessions of up to two minutes (the
/// shared one's limit is 4 s), so that a session outlives a server restart or a stalled
/// reconnect.
fn server_of_long_sessions() -> Ensemble {
    let mut opts = EnsembleOptions::standalone(ZkVersion::V3_8);
    opts.max_session_timeout_ms = Some(120_000);
    Ensemble::start(opts)
        .unwrap_or_else(|e| panic!("starting ZooKeeper 3.8 (run scripts/setup-zookeeper): {e}"))
}

/// `zk -server SERVER args...`, not yet started.
fn zk_at(server: &str, args: &[&str]) -> Command {
    let mut c = Command::new(ZK);
    c.arg("-server")
        .arg(server)
        .args(args)
        .env_remove("ZK_SERVER")
        // A developer's ZK_LOG would add lines to the stderr tests look at.
        .env_remove("ZK_LOG")
        .env("ZK_PROGRESS", "never")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

/// A `zk` run to its end: exit code and stderr.
fn zk_run(server: &str, args: &[&str]) -> (i32, String) {
    let out = zk_at(server, args).output().expect("zk runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A `zk` in the background; its stderr collected.
struct Bg {
    child: Child,
    err: mpsc::Receiver<String>,
}

fn background(server: &str, args: &[&str]) -> Bg {
    spawn_bg(zk_at(server, args))
}

/// [`background`] with the client's debug log (`ZK_LOG`) in its stderr, which a hang then shows.
fn background_logged(server: &str, args: &[&str]) -> Bg {
    let mut c = zk_at(server, args);
    c.env("ZK_LOG", "zk_core=debug,zk_client=debug,zk_recipes=debug");
    spawn_bg(c)
}

fn spawn_bg(mut c: Command) -> Bg {
    let mut child = c.spawn().expect("zk runs");
    let (tx, rx) = mpsc::channel();
    let stderr = child.stderr.take().expect("stderr");
    thread::spawn(move || {
        for l in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(l);
        }
    });
    Bg { child, err: rx }
}

impl Bg {
    /// Waits for zk to exit; its code and what it wrote to stderr.
    fn wait(self) -> (i32, String) {
        self.wait_or(String::new)
    }

    /// [`Bg::wait`]; if zk does not exit, fails with its stderr so far and `explain()` (the
    /// server's side of the story).
    fn wait_or(mut self, explain: impl FnOnce() -> String) -> (i32, String) {
        let deadline = Instant::now() + WAIT;
        let code = loop {
            if let Some(s) = self.child.try_wait().expect("wait") {
                break s.code().unwrap_or(-1);
            }
            if Instant::now() >= deadline {
                // Printed before `explain` runs, so a failure there cannot lose it.
                let so_far: Vec<String> = self.err.try_iter().collect();
                eprintln!(
                    "--- stderr of the zk that did not exit:\n{}",
                    so_far.join("\n")
                );
                panic!("zk did not exit within {WAIT:?}\n--- {}", explain());
            }
            thread::sleep(Duration::from_millis(20));
        };
        let mut err = String::new();
        while let Ok(l) = self.err.recv_timeout(Duration::from_secs(5)) {
            err.push_str(&l);
            err.push('\n');
        }
        (code, err)
    }

    fn signal(&self, sig: &str) {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill")
            .args([sig, &pid])
            .status()
            .expect("kill runs")
            .success());
    }
}

impl Drop for Bg {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `cond` until it holds (waiting for an event; fails after [`WAIT`]).
fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !cond() {
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        thread::sleep(Duration::from_millis(20));
    }
}

/// A fresh directory for one test's marker files.
fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("zk-cli-lock-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

/// The lines of the log file in `dir` (none if it does not exist yet).
fn log(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("log"))
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// The children of `path` (none if it does not exist), read with `zk --json ls`.
fn children(server: &str, path: &str) -> Vec<String> {
    let out = zk_at(server, &["--json", "ls", path])
        .output()
        .expect("zk runs");
    let v: Value = match serde_json::from_slice(&out.stdout) {
        Ok(v) => v,
        Err(e) => panic!("zk ls printed no JSON ({e}): {out:?}"),
    };
    match v["children"].as_array() {
        Some(c) => c
            .iter()
            .filter_map(|c| c.as_str().map(str::to_owned))
            .collect(),
        None => Vec::new(),
    }
}

/// `sh -c SCRIPT sh DIR`: the script finds the test's directory in `$1`.
fn sh<'a>(script: &'a str, dir: &'a Path) -> Vec<&'a str> {
    vec![
        "sh",
        "-c",
        script,
        "sh",
        dir.to_str().expect("a UTF-8 temp dir"),
    ]
}

/// Appends `$2-start`, waits for the file `go-$2`, appends `$2-end`.
const HOLD: &str = r#"cd "$1"; echo "$2-start" >> log; while [ ! -e "go-$2" ]; do sleep 0.05; done; echo "$2-end" >> log"#;

/// Appends `started`, waits for the file `go` and appends `done`; on SIGTERM appends `TERM` and
/// exits 0.
const GO_OR_TERM: &str = r#"cd "$1"; trap 'echo TERM >> log; exit 0' TERM; echo started >> log; while [ ! -e go ]; do sleep 0.05; done; echo done >> log"#;

fn hold_args<'a>(path: &'a str, flags: &[&'a str], dir: &'a Path, name: &'a str) -> Vec<&'a str> {
    let mut a = vec!["lock", path];
    a.extend_from_slice(flags);
    a.push("--");
    a.extend(sh(HOLD, dir));
    a.push(name);
    a
}

fn touch(dir: &Path, name: &str) {
    std::fs::write(dir.join(name), b"").expect("write a marker");
}

// ---- lock -------------------------------------------------------------------------------------

#[test]
fn lock_runs_one_holder_at_a_time() {
    let s = server();
    let dir = scratch("mutex");
    // A holds; B queues behind it (its node appears) and does not start until A's command ends.
    let a = background(s, &hold_args("/cli_lock_mutex", &[], &dir, "A"));
    wait_until("A to start", || log(&dir) == ["A-start"]);
    let b = background(s, &hold_args("/cli_lock_mutex", &[], &dir, "B"));
    wait_until("B to queue", || children(s, "/cli_lock_mutex").len() == 2);
    assert_eq!(log(&dir), ["A-start"], "B ran while A held the lock");
    touch(&dir, "go-A");
    assert_eq!(a.wait().0, 0);
    wait_until("B to start", || log(&dir).len() == 3);
    touch(&dir, "go-B");
    assert_eq!(b.wait().0, 0);
    assert_eq!(log(&dir), ["A-start", "A-end", "B-start", "B-end"]);
    // The lock node goes when the command ends.
    assert_eq!(children(s, "/cli_lock_mutex"), Vec::<String>::new());

    // Several at once, each with a little work inside: starts and ends never interleave.
    let dir = scratch("mutex-many");
    let work = r#"cd "$1"; echo start >> log; sleep 0.2; echo end >> log"#;
    let all: Vec<Bg> = (0..4)
        .map(|_| {
            let mut args = vec!["lock", "/cli_lock_mutex"];
            args.push("--");
            args.extend(sh(work, &dir));
            background(s, &args)
        })
        .collect();
    for bg in all {
        assert_eq!(bg.wait().0, 0);
    }
    let lines = log(&dir);
    assert_eq!(lines.len(), 8, "{lines:?}");
    for pair in lines.chunks(2) {
        assert_eq!(pair, ["start", "end"], "two holders overlapped: {lines:?}");
    }
    assert_eq!(children(s, "/cli_lock_mutex"), Vec::<String>::new());
}

#[test]
fn lock_passes_exit_status_and_gives_up_at_timeout() {
    let s = server();
    let dir = scratch("status");
    let p = "/cli_lock_status";
    assert_eq!(zk_run(s, &["lock", p, "--", "sh", "-c", "exit 7"]).0, 7);
    assert_eq!(zk_run(s, &["lock", p, "--", "true"]).0, 0);
    // Killed by a signal: 128 + N, as a shell reports it.
    assert_eq!(
        zk_run(s, &["lock", p, "--", "sh", "-c", "kill -TERM $$"]).0,
        143
    );
    let (code, err) = zk_run(s, &["lock", p, "--", "/nonexistent/zk-cli-test"]);
    assert_eq!(code, 127, "{err}");
    assert!(err.contains("cannot run /nonexistent/zk-cli-test"), "{err}");
    assert_eq!(children(s, p), Vec::<String>::new());

    // A holder, in kazoo's layout with its identifier as data.
    let h = background(s, &hold_args(p, &["--identifier", "holder-h"], &dir, "H"));
    wait_until("H to start", || log(&dir) == ["H-start"]);
    let nodes = children(s, p);
    assert_eq!(nodes.len(), 1, "{nodes:?}");
    let (hex, seq) = nodes[0].split_once("__lock__").expect("kazoo's node name");
    assert!(
        hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit()),
        "{nodes:?}"
    );
    assert!(
        seq.len() == 10 && seq.bytes().all(|b| b.is_ascii_digit()),
        "{nodes:?}"
    );
    let out = zk_at(s, &["get", &format!("{p}/{}", nodes[0])])
        .output()
        .expect("zk runs");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "holder-h\n");

    // --timeout gives up without running the command, and takes its node away.
    let mut args = vec!["lock", p, "--timeout", "0.5", "--"];
    args.extend(sh(r#"touch "$1/ran""#, &dir));
    let (code, err) = zk_run(s, &args);
    assert_eq!(code, 124, "{err}");
    assert!(err.contains("timed out"), "{err}");
    assert!(!dir.join("ran").exists(), "the command ran after a timeout");
    assert_eq!(children(s, p), nodes);
    touch(&dir, "go-H");
    assert_eq!(h.wait().0, 0);
    assert_eq!(children(s, p), Vec::<String>::new());

    // zk help documents both commands and their exit codes.
    let help = Command::new(ZK).arg("help").output().expect("zk runs");
    let help = String::from_utf8_lossy(&help.stdout);
    for want in [
        "lock PATH [--timeout SECS]",
        "elect PATH [--identifier ID]",
        "--on-suspend=wait",
        "124 lock --timeout",
        "125 lock/elect",
    ] {
        assert!(help.contains(want), "help lacks {want:?}");
    }

    // Usage errors: 1.
    assert_eq!(zk_run(s, &["lock", p, "true"]).0, 1);
    assert_eq!(
        zk_run(s, &["lock", p, "--on-suspend", "maybe", "--", "true"]).0,
        1
    );
}

#[test]
fn signals_to_zk_reach_the_command_and_the_lock_is_released() {
    let s = server();
    let p = "/cli_lock_signal";
    for (sig, name) in [("-TERM", "TERM"), ("-INT", "INT")] {
        let dir = scratch(&format!("signal-{name}"));
        let script = format!(
            r#"cd "$1"; trap 'echo {name} >> log; exit 3' {name}; echo started >> log; while :; do sleep 0.05; done"#
        );
        let mut args = vec!["lock", p, "--"];
        args.extend(sh(&script, &dir));
        let bg = background(s, &args);
        wait_until("the command to start", || log(&dir) == ["started"]);
        bg.signal(sig);
        let (code, err) = bg.wait();
        assert_eq!(code, 3, "{err}");
        assert_eq!(log(&dir), ["started", name]);
        assert_eq!(children(s, p), Vec::<String>::new());
    }
}

#[test]
fn losing_the_server_stops_the_command() {
    let mut ens = server_of_long_sessions();
    let s = ens.connect_string();
    let trap = GO_OR_TERM;

    // --on-suspend=wait: a server restart within the session does not stop the command.
    let dir = scratch("loss-wait");
    let mut args = vec![
        "-timeout",
        "60000",
        "lock",
        "/cli_lock_loss",
        "--on-suspend=wait",
        "--",
    ];
    args.extend(sh(trap, &dir));
    let bg = background(&s, &args);
    wait_until("the command to start", || log(&dir) == ["started"]);
    ens.restart(0).expect("restart the server");
    touch(&dir, "go");
    let (code, err) = bg.wait();
    assert_eq!(code, 0, "{err}");
    assert_eq!(log(&dir), ["started", "done"]);

    // A blip while queued is not a loss of what was not yet held: A holds, B queues, the server
    // restarts. A's command is stopped (the default policy: the connection was suspended while
    // it held the lock); B takes the lock afterwards and its command runs to its end. A's
    // session is short so that, should A's goodbye not reach the server, it expires soon.
    let dir = scratch("loss-queued");
    let mut args = vec!["-timeout", "6000", "lock", "/cli_lock_loss", "--"];
    args.extend(sh(trap, &dir));
    let a = background_logged(&s, &args);
    wait_until("A's command to start", || log(&dir) == ["started"]);
    let mut args = vec!["-timeout", "60000", "lock", "/cli_lock_loss", "--"];
    args.extend(sh(r#"cd "$1"; echo B >> log"#, &dir));
    let b = background_logged(&s, &args);
    wait_until("B to queue", || children(&s, "/cli_lock_loss").len() == 2);
    ens.restart(0).expect("restart the server");
    let (code, err) = a.wait();
    assert_eq!(code, 125, "{err}");
    // Should B hang (it did once in CI), say what the server holds: the contenders, the
    // sessions and their ephemerals, and which session watches what.
    let (code, err) = b.wait_or(|| {
        let listing = match zk_at(&s, &["ls", "/cli_lock_loss"]).output() {
            Ok(o) => format!(
                "exit {:?}: {}{}",
                o.status.code(),
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            ),
            Err(e) => e.to_string(),
        };
        let mut state = format!("zk ls /cli_lock_loss: {listing}");
        for word in ["dump", "wchc", "cons"] {
            let answer = ens.four_letter(0, word).unwrap_or_else(|e| e.to_string());
            state.push_str(&format!("\n--- {word}:\n{answer}"));
        }
        state
    });
    assert_eq!(code, 0, "{err}");
    assert_eq!(log(&dir), ["started", "TERM", "B"]);

    // The default (kill): the server dies under the holder, so the connection is suspended and
    // the lock may be someone else's: the command gets SIGTERM, zk exits 125.
    let dir = scratch("loss-kill");
    let mut args = vec!["lock", "/cli_lock_loss", "--grace", "30", "--"];
    args.extend(sh(trap, &dir));
    let bg = background(&s, &args);
    wait_until("the command to start", || log(&dir) == ["started"]);
    ens.kill(0).expect("kill the server");
    let (code, err) = bg.wait();
    assert_eq!(code, 125, "{err}");
    assert!(err.contains("lost ownership of /cli_lock_loss"), "{err}");
    assert_eq!(log(&dir), ["started", "TERM"]);
}

/// A server that accepts the connection and never answers the handshake (a restarting 3.8
/// server did that once in CI) costs each attempt at most `--connect-timeout`, not the session
/// timeout: the session survives two such attempts and the command runs to its end. With one
/// attempt allowed the whole session timeout, the second would end after the session did.
#[test]
fn an_unanswered_handshake_is_given_up_within_the_session() {
    let ens = server_of_long_sessions();
    let proxy = StallingProxy::start(&ens.connect_string());
    let trap = GO_OR_TERM;
    let dir = scratch("stall");
    let mut args = vec![
        "-timeout",
        "12000",
        "--connect-timeout",
        "2",
        "lock",
        "/cli_lock_stall",
        "--on-suspend=wait",
        "--",
    ];
    args.extend(sh(trap, &dir));
    let bg = background_logged(&proxy.connect_string(), &args);
    wait_until("the command to start", || log(&dir) == ["started"]);
    proxy.cut_and_stall(2);
    wait_until("two attempts to go unanswered", || proxy.stalled() == 2);
    // The client's log says how the suspension ended: connected again, or the session lost
    // (the lines before the suspension tell of the first connection).
    let mut seen = Vec::new();
    let mut suspended = false;
    let ended = loop {
        let line = bg.err.recv_timeout(WAIT).unwrap_or_else(|_| {
            panic!("no end to the suspension in zk's log:\n{}", seen.join("\n"))
        });
        let end = [
            "state=Suspended",
            "state=Connected",
            "state=Lost",
            "state=Expired",
        ]
        .into_iter()
        .find(|state| line.contains(state));
        seen.push(line);
        match end {
            Some("state=Suspended") => suspended = true,
            Some(state) if suspended => break state,
            _ => {}
        }
    };
    assert_eq!(ended, "state=Connected", "zk's log:\n{}", seen.join("\n"));
    touch(&dir, "go");
    let (code, err) = bg.wait();
    assert_eq!(code, 0, "{err}");
    assert_eq!(log(&dir), ["started", "done"]);
}

/// A TCP forwarder to one server that can cut every connection and then accept the next ones
/// without forwarding a byte either way: a server that takes the connection and never answers.
struct StallingProxy {
    port: u16,
    state: std::sync::Arc<std::sync::Mutex<ProxyState>>,
}

#[derive(Default)]
struct ProxyState {
    /// Both ends of every forwarded connection, to cut.
    forwarded: Vec<std::net::TcpStream>,
    /// How many of the next connections to hold unanswered.
    stall_next: usize,
    /// The connections held so far, kept open.
    stalled: Vec<std::net::TcpStream>,
}

impl StallingProxy {
    fn start(upstream: &str) -> StallingProxy {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let port = listener.local_addr().expect("proxy address").port();
        let state = std::sync::Arc::new(std::sync::Mutex::new(ProxyState::default()));
        let (upstream, st) = (upstream.to_owned(), state.clone());
        thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { break };
                let mut s = st.lock().expect("proxy state");
                if s.stall_next > 0 {
                    s.stall_next -= 1;
                    s.stalled.push(client);
                    continue;
                }
                let Ok(server) = std::net::TcpStream::connect(&upstream) else {
                    continue;
                };
                for (from, to) in [(&client, &server), (&server, &client)] {
                    let (Ok(mut from), Ok(mut to)) = (from.try_clone(), to.try_clone()) else {
                        continue;
                    };
                    thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(std::net::Shutdown::Both);
                    });
                }
                s.forwarded.extend([client, server]);
            }
        });
        StallingProxy { port, state }
    }

    fn connect_string(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Cuts every forwarded connection and holds the next `n` unanswered.
    fn cut_and_stall(&self, n: usize) {
        let mut s = self.state.lock().expect("proxy state");
        s.stall_next = n;
        for conn in s.forwarded.drain(..) {
            let _ = conn.shutdown(std::net::Shutdown::Both);
        }
    }

    /// How many connections are held unanswered.
    fn stalled(&self) -> usize {
        self.state.lock().expect("proxy state").stalled.len()
    }
}

// ---- kazoo ------------------------------------------------------------------------------------

/// Holds a kazoo Lock on argv[2]; reads commands on stdin: `contenders`, `try` (a non-blocking
/// acquire by a second kazoo Lock, released at once), `release`; it ends with stdin.
const KAZOO_LOCK: &str = r#"
import json, sys
from kazoo.client import KazooClient
zk = KazooClient(hosts=sys.argv[1])
zk.start(timeout=15)
lock = zk.Lock(sys.argv[2], "kazoo-holder")
lock.acquire()
print("held", flush=True)
for line in sys.stdin:
    cmd = line.strip()
    if cmd == "contenders":
        print(json.dumps(lock.contenders()), flush=True)
    elif cmd == "try":
        other = zk.Lock(sys.argv[2], "kazoo-try")
        got = other.acquire(blocking=False)
        if got:
            other.release()
        print(json.dumps(got), flush=True)
    elif cmd == "release":
        lock.release()
        print("released", flush=True)
zk.stop()
zk.close()
"#;

struct Kazoo {
    child: Child,
    stdin: ChildStdin,
    out: mpsc::Receiver<String>,
    /// Where Python's stderr goes, for a failure message.
    errors: PathBuf,
}

impl Kazoo {
    fn start(path: &str, dir: &Path) -> Kazoo {
        let errors = dir.join("kazoo.stderr");
        let mut child = Command::new("/usr/bin/python3")
            .args(["-c", KAZOO_LOCK, server(), path])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&errors).expect("a file for kazoo's stderr"))
            .spawn()
            .expect("python3 runs (scripts/setup-zookeeper installs python3-kazoo)");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            for l in BufReader::new(stdout).lines() {
                let l = l.unwrap_or_else(|e| format!("(reading kazoo's output: {e})"));
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        let mut k = Kazoo {
            child,
            stdin,
            out: rx,
            errors,
        };
        assert_eq!(k.line(), "held");
        k
    }

    fn line(&mut self) -> String {
        match self.out.recv_timeout(WAIT) {
            Ok(l) => l,
            Err(e) => panic!(
                "kazoo did not answer ({e}; is python3-kazoo installed?), {:?}: {}",
                self.child.try_wait(),
                std::fs::read_to_string(&self.errors).unwrap_or_default()
            ),
        }
    }

    fn ask(&mut self, cmd: &str) -> String {
        writeln!(self.stdin, "{cmd}").expect("write to kazoo");
        self.stdin.flush().expect("flush");
        self.line()
    }
}

impl Drop for Kazoo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn kazoo_and_zk_lock_exclude_each_other() {
    let s = server();
    let p = "/cli_lock_kazoo";
    let dir = scratch("kazoo");
    let mut k = Kazoo::start(p, &dir);
    // zk queues behind kazoo's holder: kazoo sees it as the next contender, and it waits.
    let mut args = vec!["lock", p, "--identifier", "zk-waiter", "--"];
    args.extend(sh(r#"cd "$1"; echo ran >> log"#, &dir));
    let bg = background(s, &args);
    wait_until("kazoo to see zk queued", || {
        k.ask("contenders") == r#"["kazoo-holder", "zk-waiter"]"#
    });
    assert!(log(&dir).is_empty(), "zk ran while kazoo held the lock");
    assert_eq!(k.ask("release"), "released");
    assert_eq!(bg.wait().0, 0);
    assert_eq!(log(&dir), ["ran"]);

    // The other way round: while zk holds it, kazoo cannot take it; afterwards it can.
    let h = background(s, &hold_args(p, &[], &dir, "Z"));
    wait_until("zk's command to start", || log(&dir).len() == 2);
    assert_eq!(k.ask("try"), "false");
    touch(&dir, "go-Z");
    assert_eq!(h.wait().0, 0);
    assert_eq!(k.ask("try"), "true");
}

// ---- elect ------------------------------------------------------------------------------------

#[test]
fn elect_runs_one_leader_at_a_time_and_hands_over() {
    let s = server();
    let p = "/cli_elect";
    let dir = scratch("elect");
    let lead = r#"cd "$1"; echo "lead-$2" >> log; while [ ! -e "stop-$2" ]; do sleep 0.05; done; echo "done-$2" >> log"#;
    let start = |name: &'static str| {
        let mut args = vec!["elect", p, "--identifier", name, "--"];
        args.extend(sh(lead, &dir));
        args.push(name);
        background(s, &args)
    };
    let mut a = Some(start("A"));
    let mut b = Some(start("B"));
    wait_until("a leader and a follower", || {
        !log(&dir).is_empty() && children(s, p).len() == 2
    });
    let first = log(&dir);
    assert_eq!(first.len(), 1, "two leaders at once: {first:?}");
    let (leader, other) = match first[0].as_str() {
        "lead-A" => ("A", "B"),
        "lead-B" => ("B", "A"),
        l => panic!("unexpected line {l:?}"),
    };
    let take = |n: &str, a: &mut Option<Bg>, b: &mut Option<Bg>| {
        match n {
            "A" => a.take(),
            _ => b.take(),
        }
        .expect("each process once")
    };
    // The leader's command ends: it steps down and the other takes over.
    touch(&dir, &format!("stop-{leader}"));
    assert_eq!(take(leader, &mut a, &mut b).wait().0, 0);
    wait_until("the hand-over", || log(&dir).len() == 3);
    touch(&dir, &format!("stop-{other}"));
    assert_eq!(take(other, &mut a, &mut b).wait().0, 0);
    assert_eq!(
        log(&dir),
        [
            format!("lead-{leader}"),
            format!("done-{leader}"),
            format!("lead-{other}"),
            format!("done-{other}")
        ]
    );
    assert_eq!(children(s, p), Vec::<String>::new());
}
