//! `zk-tour`: the README's first command (`scripts/tour` builds and runs it). It starts a 3-node
//! ZooKeeper 3.8 ensemble on loopback in a temp dir (zk-testkit's `real` harness), then runs the
//! built `zk` binary step by step, printing each command before its output and saying in one line
//! what it shows: ephemeral and sequential nodes, a transaction, a watch firing, a persistent
//! recursive watch, and a failover when the server the client is on is killed. The servers are
//! stopped at the end, also when a step fails (the harness kills them when dropped).
//!
//! Every step checks the exit code and the output it expects, so the tour doubles as a smoke
//! test: it exits 1 with the reason when something is off.

#![forbid(unsafe_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use zk_testkit::real::{Ensemble, EnsembleOptions, ZkVersion};

/// How long one `zk` command may take before the tour gives up on it.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);
/// How long to wait for an expected line from a background `zk`.
const LINE_TIMEOUT: Duration = Duration::from_secs(20);

type Result<T> = std::result::Result<T, String>;

fn main() {
    let start = Instant::now();
    let code = match tour() {
        Ok(()) => {
            println!(
                "\nThe tour is over ({:.0} s). The servers are stopped and their files removed.",
                start.elapsed().as_secs_f64()
            );
            let zk = zk_binary()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|_| "zk".into());
            println!(
                "Next: `{zk} help` lists every command; `{zk} -server HOST:PORT` with no command \
                 opens the shell."
            );
            0
        }
        Err(e) => {
            eprintln!("\nzk-tour: FAILED: {e}");
            eprintln!("zk-tour: the servers were stopped; set ZK_RS_KEEP=1 to keep their logs.");
            1
        }
    };
    std::process::exit(code);
}

fn tour() -> Result<()> {
    let zk = zk_binary()?;
    println!("zk tour: a 3-node ZooKeeper ensemble on this machine, driven by the zk command.\n");
    say("Starting 3 ZooKeeper 3.8 servers on 127.0.0.1 (tickTime 200 ms), in a temp dir...");
    let t = Instant::now();
    let mut opts = EnsembleOptions::quorum(ZkVersion::V3_8, 3);
    // Long enough that a leader election during the failover cannot expire the session.
    opts.max_session_timeout_ms = Some(30_000);
    let mut ens = Ensemble::start(opts).map_err(|e| format!("starting the servers: {e}"))?;
    let servers = ens.connect_string();
    let leader = ens
        .leader()
        .map(|i| format!("server {} leads", i + 1))
        .unwrap_or_else(|| "electing a leader".into());
    say(&format!(
        "Ready in {:.1} s ({leader}), in {}.",
        t.elapsed().as_secs_f64(),
        ens.root().display()
    ));
    let t = Tour {
        zk: zk.clone(),
        servers: servers.clone(),
    };
    let result = steps(&t, &mut ens);
    // Dropping the ensemble kills the JVMs and removes the temp dir, also after a failed step.
    say_blank("Stopping the servers.");
    drop(ens);
    result
}

fn steps(t: &Tour, ens: &mut Ensemble) -> Result<()> {
    // ---- 0. hello ----------------------------------------------------------------------------
    heading("zk talks to any server of the ensemble");
    say("The first command names the servers with -server; the rest take them from ZK_SERVER,");
    say(&format!(
        "as if you had run: export ZK_SERVER={}",
        t.servers
    ));
    let server_flag = ["-server", t.servers.as_str()];
    let mut first: Vec<&str> = server_flag.to_vec();
    first.extend(["create", "/tour", "hello from zk"]);
    t.run(&first, 0, &["Created /tour"])?;
    say("get -s prints the data and the node's Stat, laid out as zkCli.sh does:");
    t.run(
        &["get", "-s", "/tour"],
        0,
        &["hello from zk", "dataVersion = 0"],
    )?;

    // ---- 1. ephemeral and sequential nodes -----------------------------------------------------
    heading("1. Ephemeral and sequential nodes");
    say("An ephemeral node lives as long as the session that made it. This zk creates one and exits,");
    t.run(
        &["create", "-e", "/tour/ephemeral", "short-lived"],
        0,
        &["Created"],
    )?;
    say("so its session is over, and the node is gone:");
    t.run(&["ls", "/tour"], 0, &["[]"])?;
    say("A sequential node gets a counter from the server appended to its name (queues, locks):");
    let mut jobs = Vec::new();
    for data in ["first", "second", "third"] {
        let out = t.run(
            &["create", "-s", "/tour/job-", data],
            0,
            &["Created /tour/job-"],
        )?;
        let path = out
            .stdout
            .trim()
            .strip_prefix("Created ")
            .ok_or("create -s printed no path")?
            .to_owned();
        jobs.push(path);
    }
    t.run(&["ls", "/tour"], 0, &["job-"])?;

    // ---- 2. a transaction ----------------------------------------------------------------------
    heading("2. A transaction: all or nothing");
    say("txn applies its ops atomically: create a node, mark the first job done, drop the second:");
    let script = format!(
        "create /tour/config v1; set {} done; delete {}",
        jobs[0], jobs[1]
    );
    t.run(&["txn", &script], 0, &["Created /tour/config", "Deleted"])?;
    say("This one checks a version the node does not have, so none of it applies (exit code 2):");
    t.run(
        &["txn", "check /tour/config 7; delete /tour/config"],
        2,
        &["Bad version: /tour/config"],
    )?;
    say("/tour/config is still there, at version 0; --json gives any command's result as JSON:");
    t.run(
        &["--json", "stat", "/tour/config"],
        0,
        &["\"dataVersion\":0"],
    )?;

    // ---- 3. a watch fires -------------------------------------------------------------------
    heading("3. A watch fires");
    say("get -w reads the node and leaves a one-time watch; run alone, zk waits for it to fire.");
    let mut getter = t.background(&["get", "-w", "/tour/config"], "[get -w] ")?;
    getter.expect_stdout("v1")?;
    say("Meanwhile, another zk changes the node:");
    t.run(&["set", "/tour/config", "v2"], 0, &[])?;
    say("and the waiting zk prints the event and exits:");
    getter.expect_stdout("type:NodeDataChanged path:/tour/config")?;
    getter.finish(0)?;

    // ---- 4. a persistent recursive watch ------------------------------------------------------
    heading("4. A persistent recursive watch");
    say("watch adds a persistent recursive watch (ZooKeeper 3.6+): it stays armed and sees the");
    say("whole subtree. This one stops after 5 events:");
    let mut watcher = t.background(&["watch", "--count", "5", "/tour"], "[watch] ")?;
    watcher.expect_stderr("watching /tour")?;
    t.run(&["create", "/tour/a", "x"], 0, &["Created /tour/a"])?;
    watcher.expect_stdout("NodeCreated /tour/a")?;
    t.run(&["create", "/tour/a/b", "y"], 0, &["Created /tour/a/b"])?;
    watcher.expect_stdout("NodeCreated /tour/a/b")?;
    t.run(&["set", "/tour/a/b", "z"], 0, &[])?;
    watcher.expect_stdout("NodeDataChanged /tour/a/b")?;
    say("deleteall removes a subtree, deepest first (batched in transactions, as zkCli does):");
    t.run(&["deleteall", "/tour/a"], 0, &[])?;
    watcher.expect_stdout("NodeDeleted /tour/a/b")?;
    watcher.expect_stdout("NodeDeleted /tour/a")?;
    watcher.finish(0)?;

    // ---- 5. failover --------------------------------------------------------------------------
    heading("5. Failover: the server under a session dies");
    say("A long-lived session: zk's shell, fed commands on stdin (as you would type them).");
    let mut shell = t.shell()?;
    shell.send("session")?;
    let line = shell.expect_stdout("session 0x")?;
    let (session_id, host) = parse_session(&line)?;
    shell.send("create -e /tour/alive \"I live as long as my session\"")?;
    shell.expect_stdout("Created /tour/alive")?;
    shell.send("addWatch /tour")?;
    shell.send("sync /tour")?;
    shell.expect_stdout("Sync is OK")?;
    let victim = ens
        .nodes()
        .iter()
        .position(|n| host == format!("127.0.0.1:{}", n.port()))
        .ok_or_else(|| format!("the session is on {host}, which is none of the servers"))?;
    let role = if ens.leader() == Some(victim) {
        " It is the leader: the other two will elect a new one."
    } else {
        ""
    };
    say(&format!(
        "The session is on server {} ({host}). Kill that server with kill -9.{role}",
        victim + 1
    ));
    ens.kill(victim)
        .map_err(|e| format!("killing server {}: {e}", victim + 1))?;
    println!("[server {} killed]", victim + 1);
    say("The client notices at once, moves to another server and resumes the same session:");
    shell.expect_stdout("state:Disconnected")?;
    shell.expect_stdout("state:SyncConnected")?;
    shell.send("session")?;
    let line = shell.expect_stdout("session 0x")?;
    let (id_after, host_after) = parse_session(&line)?;
    if id_after != session_id || host_after == host {
        return Err(format!(
            "expected session {session_id} on another server, got {id_after} on {host_after}"
        ));
    }
    say("Same session id, new server. Its ephemeral node never went away (another client looks):");
    t.run(&["ls", "/tour"], 0, &["alive"])?;
    say("and its persistent watch, re-armed on the new server, still fires:");
    t.run(&["set", "/tour/config", "v3"], 0, &[])?;
    shell.expect_stdout("type:NodeDataChanged path:/tour/config")?;
    shell.send("quit")?;
    shell.finish(0)?;
    say("The shell closed its session, so the ephemeral node is gone now:");
    t.run(&["tree", "/tour"], 0, &["config"])
        .and_then(|o| match o.stdout.contains("alive") {
            true => Err("/tour/alive outlived its session".into()),
            false => Ok(()),
        })?;
    Ok(())
}

/// `session 0x1000... CONNECTED on 127.0.0.1:2181 (timeout ...)` to (id, host).
fn parse_session(line: &str) -> Result<(String, String)> {
    let words: Vec<&str> = line.split_whitespace().collect();
    match words.as_slice() {
        ["session", id, _, "on", host, ..] => Ok((id.to_string(), host.to_string())),
        _ => Err(format!("cannot read the session from {line:?}")),
    }
}

/// The `zk` binary next to this one.
fn zk_binary() -> Result<PathBuf> {
    let me = std::env::current_exe().map_err(|e| format!("cannot find myself: {e}"))?;
    let zk = me.with_file_name(format!("zk{}", std::env::consts::EXE_SUFFIX));
    if zk.is_file() {
        Ok(zk)
    } else {
        Err(format!(
            "{} is missing: build it with `cargo build -p zookeeper-cli --bins` (scripts/tour does)",
            zk.display()
        ))
    }
}

fn heading(title: &str) {
    println!("\n━━ {title} ━━");
}

fn say(text: &str) {
    println!("# {text}");
}

fn say_blank(text: &str) {
    println!("\n# {text}");
}

/// How a command is shown: `zk create /tour "hello from zk"`.
fn shown(args: &[&str]) -> String {
    let mut s = String::from("zk");
    for a in args {
        s.push(' ');
        s.push_str(&quote(a));
    }
    s
}

/// Quotes a word for a POSIX shell when it needs it.
fn quote(a: &str) -> String {
    let plain = !a.is_empty()
        && a.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/-_.,:=@%+".contains(c));
    if plain {
        a.to_owned()
    } else {
        format!("'{}'", a.replace('\'', r"'\''"))
    }
}

struct Tour {
    zk: PathBuf,
    servers: String,
}

/// What a finished `zk` printed.
struct Output {
    stdout: String,
}

impl Tour {
    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.zk);
        c.args(args)
            .env("ZK_SERVER", &self.servers)
            .env("ZK_PROGRESS", "never")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    }

    /// Runs `zk args`, prints the command and its output, and checks its exit code and that
    /// stdout and stderr together contain each of `expect`.
    fn run(&self, args: &[&str], code: i32, expect: &[&str]) -> Result<Output> {
        println!("$ {}", shown(args));
        let mut child = self
            .command(args)
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", self.zk.display()))?;
        let stdout = drain(child.stdout.take());
        let stderr = drain(child.stderr.take());
        let status = wait_with_timeout(&mut child, COMMAND_TIMEOUT)?;
        let out = stdout.join().unwrap_or_default();
        let err = stderr.join().unwrap_or_default();
        print!("{out}");
        print!("{err}");
        let got = status.code().unwrap_or(-1);
        if got != 0 {
            println!("(exit code {got})");
        }
        let _ = std::io::stdout().flush();
        if got != code {
            return Err(format!("`{}` exited with {got}, not {code}", shown(args)));
        }
        let all = format!("{out}{err}");
        if let Some(missing) = expect.iter().find(|e| !all.contains(*e)) {
            return Err(format!("`{}` did not print {missing:?}", shown(args)));
        }
        Ok(Output { stdout: out })
    }

    /// Starts `zk args` in the background; its lines are printed as they are awaited, after
    /// `prefix`.
    fn background(&self, args: &[&str], prefix: &'static str) -> Result<Background> {
        println!("$ {} &", shown(args));
        Background::start(self.command(args), shown(args), prefix)
    }

    /// Starts the shell with stdin piped.
    fn shell(&self) -> Result<Background> {
        let args = ["-timeout", "10000"];
        println!("$ {}", shown(&args));
        let mut c = self.command(&args);
        c.stdin(Stdio::piped());
        Background::start(c, shown(&args), "")
    }
}

/// Reads a pipe to its end on a thread.
fn drain<R: Read + Send + 'static>(pipe: Option<R>) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut s = String::new();
        if let Some(mut p) = pipe {
            let mut buf = Vec::new();
            let _ = p.read_to_end(&mut buf);
            s = String::from_utf8_lossy(&buf).into_owned();
        }
        s
    })
}

fn wait_with_timeout(child: &mut Child, timeout: Duration) -> Result<std::process::ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(s)) => return Ok(s),
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(10)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("a zk command took more than {timeout:?}"));
            }
            Err(e) => return Err(format!("waiting for zk: {e}")),
        }
    }
}

/// A line from a background process: which stream, and the text.
enum Line {
    Out(String),
    Err(String),
}

/// A `zk` running in the background (a waiting watch, the shell).
struct Background {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<Line>,
    name: String,
    prefix: &'static str,
}

impl Background {
    fn start(mut c: Command, name: String, prefix: &'static str) -> Result<Background> {
        let mut child = c.spawn().map_err(|e| format!("cannot run {name}: {e}"))?;
        let (tx, rx) = mpsc::channel();
        if let Some(out) = child.stdout.take() {
            let tx = tx.clone();
            thread::spawn(move || {
                for l in BufReader::new(out)
                    .lines()
                    .map_while(std::result::Result::ok)
                {
                    if tx.send(Line::Out(l)).is_err() {
                        break;
                    }
                }
            });
        }
        if let Some(err) = child.stderr.take() {
            thread::spawn(move || {
                for l in BufReader::new(err)
                    .lines()
                    .map_while(std::result::Result::ok)
                {
                    if tx.send(Line::Err(l)).is_err() {
                        break;
                    }
                }
            });
        }
        let stdin = child.stdin.take();
        Ok(Background {
            child,
            stdin,
            lines: rx,
            name,
            prefix,
        })
    }

    /// Types a line into the shell, showing it after a `zk>` prompt.
    fn send(&mut self, line: &str) -> Result<()> {
        println!("zk> {line}");
        let stdin = self.stdin.as_mut().ok_or("this zk has no stdin")?;
        writeln!(stdin, "{line}")
            .and_then(|_| stdin.flush())
            .map_err(|e| format!("writing to the shell: {e}"))
    }

    /// Prints lines as they come until one on stdout contains `needle`; returns it.
    fn expect_stdout(&mut self, needle: &str) -> Result<String> {
        self.expect(needle, false)
    }

    /// Prints lines as they come until one on stderr contains `needle`; returns it.
    fn expect_stderr(&mut self, needle: &str) -> Result<String> {
        self.expect(needle, true)
    }

    fn expect(&mut self, needle: &str, on_stderr: bool) -> Result<String> {
        let deadline = Instant::now() + LINE_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(Line::Out(l)) => {
                    println!("{}{l}", self.prefix);
                    if !on_stderr && l.contains(needle) {
                        return Ok(l);
                    }
                }
                Ok(Line::Err(l)) => {
                    println!("{}{l}", self.prefix);
                    if on_stderr && l.contains(needle) {
                        return Ok(l);
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    return Err(format!("`{}` did not print {needle:?} in time", self.name))
                }
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(format!("`{}` ended without printing {needle:?}", self.name))
                }
            }
        }
    }

    /// Waits for the process to exit with `code`, printing what it still prints.
    fn finish(mut self, code: i32) -> Result<()> {
        drop(self.stdin.take());
        let status = wait_with_timeout(&mut self.child, COMMAND_TIMEOUT)?;
        while let Ok(l) = self.lines.recv_timeout(Duration::from_millis(200)) {
            match l {
                Line::Out(l) | Line::Err(l) => println!("{}{l}", self.prefix),
            }
        }
        let got = status.code().unwrap_or(-1);
        if got != code {
            return Err(format!("`{}` exited with {got}, not {code}", self.name));
        }
        Ok(())
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        // A step failed midway: do not leave a zk behind.
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
