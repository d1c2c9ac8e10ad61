//! The built `zk` binary against a real ZooKeeper 3.8 server (one standalone server shared by the
//! tests of this file, each test under its own node): every command one-shot, the shell through
//! stdin and through a pty (Tab completion, history), `--json` parsed, exit codes checked, and
//! what `zk` wrote read back with kazoo (Debian's python3-kazoo) from the same server. The last
//! test runs the README's tour (its own 3-node ensemble, a failover included).
//!
//! Needs `scripts/setup-zookeeper` (scripts/test runs it).

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use zk_testkit::real::{Ensemble, EnsembleOptions, ZkVersion};

const ZK: &str = env!("CARGO_BIN_EXE_zk");
const TOUR: &str = env!("CARGO_BIN_EXE_zk-tour");

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

/// What a finished `zk` printed and its exit code.
#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn ok(self) -> Run {
        assert_eq!(self.code, 0, "zk failed: {self:?}");
        self
    }

    fn json(&self) -> Value {
        serde_json::from_str(self.stdout.trim())
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.stdout))
    }

    /// Checks a failure: exit code, one-line message, no panic.
    fn fails(self, code: i32, message: &str) -> Run {
        assert_eq!(self.code, code, "{self:?}");
        assert!(self.stderr.contains(message), "{message:?} not in {self:?}");
        assert!(!self.stderr.contains("panicked"), "{self:?}");
        self
    }
}

fn zk_cmd(args: &[&str]) -> Command {
    let mut c = Command::new(ZK);
    c.arg("-server")
        .arg(server())
        .args(args)
        .env_remove("ZK_SERVER")
        .env_remove("ZK_LOG")
        .env("ZK_PROGRESS", "never")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

fn run(mut c: Command) -> Run {
    let out = c.output().expect("zk runs");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `zk -server SERVER args...`.
fn zk(args: &[&str]) -> Run {
    run(zk_cmd(args))
}

/// `zk -server SERVER --json args...`, which must succeed; its output parsed.
fn zkj(args: &[&str]) -> Value {
    let mut a = vec!["--json"];
    a.extend_from_slice(args);
    zk(&a).ok().json()
}

/// The shell, fed `lines` on stdin.
fn shell(extra: &[&str], lines: &str) -> Run {
    let mut c = zk_cmd(extra);
    c.stdin(Stdio::piped());
    let mut child = c.spawn().expect("zk runs");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin
            .write_all(lines.as_bytes())
            .expect("write to the shell");
    }
    let out = child.wait_with_output().expect("the shell ends");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

const KAZOO: &str = r#"
import json, sys
from kazoo.client import KazooClient
hosts, ops = sys.argv[1], json.loads(sys.argv[2])
zk = KazooClient(hosts=hosts)
zk.start(timeout=15)
def stat(s):
    return {"czxid": s.czxid, "mzxid": s.mzxid, "pzxid": s.pzxid, "ctime": s.ctime,
            "mtime": s.mtime, "version": s.version, "cversion": s.cversion,
            "aversion": s.aversion, "ephemeralOwner": s.ephemeralOwner,
            "dataLength": s.dataLength, "numChildren": s.numChildren}
def one(op):
    kind, path = op[0], op[1]
    if kind == "get":
        d, s = zk.get(path)
        return {"data": None if d is None else d.decode("utf-8", "replace"), "stat": stat(s)}
    if kind == "children":
        return sorted(zk.get_children(path))
    if kind == "exists":
        return zk.exists(path) is not None
    if kind == "acl":
        acl, s = zk.get_acls(path)
        return [{"scheme": a.id.scheme, "id": a.id.id, "perms": a.perms} for a in acl]
    if kind == "create":
        return zk.create(path, op[2].encode(), makepath=True)
    if kind == "set":
        return stat(zk.set(path, op[2].encode()))
    if kind == "delete":
        zk.delete(path, recursive=True)
        return True
    if kind == "tree":  # op[2] children, each with op[3] children, one transaction per child
        zk.ensure_path(path)
        for i in range(op[2]):
            t = zk.transaction()
            t.create("%s/n%03d" % (path, i), b"x")
            for j in range(op[3]):
                t.create("%s/n%03d/m%03d" % (path, i, j), b"y")
            t.commit()
        return True
    raise ValueError(kind)
out = []
for op in ops:
    try:
        out.append(one(op))
    except Exception as e:
        out.append({"error": type(e).__name__})
zk.stop()
zk.close()
print(json.dumps(out))
"#;

/// Runs ops with kazoo against the shared server; one result per op (`{"error": "NoNodeError"}`
/// for a failed one).
fn kazoo(ops: Value) -> Vec<Value> {
    let out = Command::new("/usr/bin/python3")
        .args(["-c", KAZOO, server(), &ops.to_string()])
        .output()
        .expect("python3 runs (scripts/setup-zookeeper installs python3-kazoo)");
    assert!(
        out.status.success(),
        "kazoo failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    match serde_json::from_slice(&out.stdout).expect("kazoo prints JSON") {
        Value::Array(v) => v,
        other => panic!("kazoo printed {other}"),
    }
}

/// A `zk` in the background whose output lines are collected as they come.
struct Bg {
    child: Child,
    out: mpsc::Receiver<String>,
    err: mpsc::Receiver<String>,
}

fn background(args: &[&str]) -> Bg {
    let mut child = zk_cmd(args).spawn().expect("zk runs");
    let lines = |r: Box<dyn Read + Send>| {
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            for l in BufReader::new(r).lines().map_while(Result::ok) {
                let _ = tx.send(l);
            }
        });
        rx
    };
    let out = lines(Box::new(child.stdout.take().expect("stdout")));
    let err = lines(Box::new(child.stderr.take().expect("stderr")));
    Bg { child, out, err }
}

fn next_line(rx: &mpsc::Receiver<String>) -> String {
    rx.recv_timeout(Duration::from_secs(20))
        .expect("a line within 20 s")
}

impl Bg {
    fn wait(mut self) -> i32 {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(s) = self.child.try_wait().expect("wait") {
                return s.code().unwrap_or(-1);
            }
            assert!(Instant::now() < deadline, "zk did not exit");
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Bg {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---- one-shot commands ------------------------------------------------------------------------

#[test]
fn create_get_set_delete_match_kazoo() {
    let r = zk(&["create", "/cli_basic", "hello world"]).ok();
    assert_eq!(r.stdout, "Created /cli_basic\n");
    let k = kazoo(json!([["get", "/cli_basic"]]));
    assert_eq!(k[0]["data"], "hello world");

    // get: text, -s with zkCli's Stat layout, and JSON equal to what kazoo reads.
    assert_eq!(zk(&["get", "/cli_basic"]).ok().stdout, "hello world\n");
    let text = zk(&["get", "-s", "/cli_basic"]).ok().stdout;
    let fields: Vec<&str> = text
        .lines()
        .skip(1)
        .map(|l| l.split(" = ").next().unwrap_or(""))
        .collect();
    assert_eq!(
        fields,
        [
            "cZxid",
            "ctime",
            "mZxid",
            "mtime",
            "pZxid",
            "cversion",
            "dataVersion",
            "aclVersion",
            "ephemeralOwner",
            "dataLength",
            "numChildren"
        ]
    );
    let ks = &k[0]["stat"];
    assert!(text.contains(&format!("cZxid = 0x{:x}\n", ks["czxid"].as_i64().unwrap())));
    assert!(text.contains(" UTC "), "{text}");
    let j = zkj(&["get", "/cli_basic"]);
    assert_eq!(j["data"], "hello world");
    assert_eq!(j["dataBase64"], "aGVsbG8gd29ybGQ=");
    for (ours, theirs) in [
        ("cZxid", "czxid"),
        ("mZxid", "mzxid"),
        ("pZxid", "pzxid"),
        ("ctime", "ctime"),
        ("mtime", "mtime"),
        ("dataVersion", "version"),
        ("cversion", "cversion"),
        ("aclVersion", "aversion"),
        ("ephemeralOwner", "ephemeralOwner"),
        ("dataLength", "dataLength"),
        ("numChildren", "numChildren"),
    ] {
        assert_eq!(j["stat"][ours], ks[theirs], "{ours}");
    }

    // set: silent, -s prints the Stat, -v is checked; kazoo sees each version.
    assert_eq!(zk(&["set", "/cli_basic", "v2"]).ok().stdout, "");
    let r = zk(&["set", "-s", "-v", "1", "/cli_basic", "v3"]).ok();
    assert!(r.stdout.contains("dataVersion = 2"), "{r:?}");
    zk(&["set", "-v", "1", "/cli_basic", "v4"]).fails(2, "Bad version: /cli_basic");
    let k = kazoo(json!([["get", "/cli_basic"]]));
    assert_eq!(k[0]["data"], "v3");
    assert_eq!(k[0]["stat"]["version"], 2);
    let j = zkj(&["set", "/cli_basic", "v5"]);
    assert_eq!(j["stat"]["dataVersion"], 3);

    // stat.
    let j = zkj(&["stat", "/cli_basic"]);
    assert_eq!(j["stat"]["dataLength"], 2);
    assert!(zk(&["stat", "/cli_basic"])
        .ok()
        .stdout
        .starts_with("cZxid = 0x"));

    // Data that is not UTF-8, written by kazoo, comes back in base64.
    kazoo(json!([["create", "/cli_basic/bin", "caf\u{e9}"]]));
    let j = zkj(&["get", "/cli_basic/bin"]);
    assert_eq!(j["data"], "caf\u{e9}");

    // delete with a version, then without.
    zk(&["delete", "-v", "7", "/cli_basic/bin"]).fails(2, "Bad version: /cli_basic/bin");
    zk(&["delete", "/cli_basic"]).fails(2, "Node not empty: /cli_basic");
    assert_eq!(zk(&["delete", "/cli_basic/bin"]).ok().stdout, "");
    let j = zkj(&["delete", "-v", "3", "/cli_basic"]);
    assert_eq!(j["deleted"], true);
    assert_eq!(kazoo(json!([["exists", "/cli_basic"]]))[0], json!(false));
    zk(&["get", "/cli_basic"]).fails(2, "Node does not exist: /cli_basic");
}

#[test]
fn create_modes_and_listing() {
    zk(&["create", "/cli_modes"]).ok();
    // Sequential.
    let a = zkj(&["create", "-s", "/cli_modes/job-", "a"]);
    let b = zkj(&["create", "-s", "/cli_modes/job-", "b"]);
    let (a, b) = (a["path"].as_str().unwrap(), b["path"].as_str().unwrap());
    assert!(a.starts_with("/cli_modes/job-") && a.len() == "/cli_modes/job-".len() + 10);
    assert!(b > a);
    // Ephemeral: gone once this one-shot session ends.
    zk(&["create", "-e", "/cli_modes/eph", "x"]).ok();
    // Container and TTL nodes (the harness enables extended types).
    zk(&["create", "-c", "/cli_modes/container"]).ok();
    zk(&["create", "-t", "60000", "/cli_modes/ttl", "x"]).ok();
    // Null data (no data argument) reads as empty.
    assert_eq!(zk(&["get", "/cli_modes/container"]).ok().stdout, "\n");
    let k = kazoo(json!([
        ["children", "/cli_modes"],
        ["get", "/cli_modes/ttl"]
    ]));
    let mut want = vec![
        a.rsplit('/').next().unwrap().to_owned(),
        b.rsplit('/').next().unwrap().to_owned(),
        "container".to_owned(),
        "ttl".to_owned(),
    ];
    want.sort();
    assert_eq!(k[0], json!(want));
    assert_eq!(k[1]["stat"]["ephemeralOwner"], 0);

    // ls: zkCli's sorted [a, b], -s adds the Stat, JSON lists the children.
    let out = zk(&["ls", "/cli_modes"]).ok().stdout;
    assert_eq!(out, format!("[{}]\n", want.join(", ")));
    let out = zk(&["ls", "-s", "/cli_modes"]).ok().stdout;
    assert!(out.contains("numChildren = 4"), "{out}");
    let j = zkj(&["ls", "-s", "/cli_modes"]);
    assert_eq!(j["children"], json!(want));
    assert_eq!(j["stat"]["numChildren"], 4);

    // ls -R and tree over a deeper subtree, getAllChildrenNumber.
    zk(&["create", "/cli_modes/container/x"]).ok();
    zk(&["create", "/cli_modes/container/x/y"]).ok();
    let out = zk(&["ls", "-R", "/cli_modes/container"]).ok().stdout;
    assert_eq!(
        out,
        "/cli_modes/container\n/cli_modes/container/x\n/cli_modes/container/x/y\n"
    );
    let out = zk(&["tree", "/cli_modes/container"]).ok().stdout;
    assert_eq!(out, "/cli_modes/container\n└── x\n    └── y\n");
    let j = zkj(&["tree", "/cli_modes"]);
    assert_eq!(j["nodes"].as_array().unwrap().len(), 7);
    let out = zk(&["getAllChildrenNumber", "/cli_modes"]).ok().stdout;
    assert_eq!(out, "6\n");
    assert_eq!(zkj(&["getAllChildrenNumber", "/cli_modes"])["count"], 6);
    // getEphemerals of a fresh session: none.
    assert_eq!(zk(&["getEphemerals", "/cli_modes"]).ok().stdout, "[]\n");
    // deleteall.
    assert_eq!(zkj(&["deleteall", "/cli_modes"])["deleted"], 7);
    assert_eq!(kazoo(json!([["exists", "/cli_modes"]]))[0], json!(false));
}

#[test]
fn acl_auth_sync_and_server_commands() {
    zk(&["create", "/cli_acl", "x", "world:anyone:cdrwa"]).ok();
    let out = zk(&["getAcl", "/cli_acl"]).ok().stdout;
    assert_eq!(out, "'world,'anyone\n: cdrwa\n");
    let j = zkj(&["getAcl", "/cli_acl"]);
    assert_eq!(
        j["acl"],
        json!([{"scheme": "world", "id": "anyone", "perms": "cdrwa"}])
    );
    // setAcl -s prints the Stat; kazoo reads the new ACL.
    let out = zk(&["setAcl", "-s", "/cli_acl", "world:anyone:rwca"])
        .ok()
        .stdout;
    assert!(out.contains("aclVersion = 1"), "{out}");
    assert_eq!(
        kazoo(json!([["acl", "/cli_acl"]]))[0],
        json!([{"scheme": "world", "id": "anyone", "perms": 23}])
    );
    zk(&["setAcl", "-v", "0", "/cli_acl", "world:anyone:r"]).fails(2, "Bad version: /cli_acl");
    // A read-only node refuses writes: exit 3, as any auth/ACL error.
    zk(&["create", "/cli_acl/ro", "x", "world:anyone:r"]).ok();
    zk(&["set", "/cli_acl/ro", "y"]).fails(3, "Not authorized: /cli_acl/ro");
    zk(&["create", "/cli_acl/bad", "x", "auth::cdrwa"]).fails(3, "Invalid ACL: /cli_acl/bad");
    // setAcl -R reaches every node below.
    zk(&["create", "/cli_acl/kid", "x"]).ok();
    zk(&["setAcl", "-R", "/cli_acl/kid", "world:anyone:cdra"]).ok();
    assert_eq!(
        kazoo(json!([["acl", "/cli_acl/kid"]]))[0][0]["perms"],
        json!(29)
    );

    // whoami, addauth (one-shot: it succeeds, then the session ends), sync, session.
    assert_eq!(
        zk(&["whoami"]).ok().stdout,
        "Auth scheme: User\nip: 127.0.0.1\n"
    );
    assert_eq!(
        zkj(&["whoami"])["identities"],
        json!([{"scheme": "ip", "user": "127.0.0.1"}])
    );
    zk(&["addauth", "digest", "u:p"]).ok();
    assert_eq!(zk(&["sync", "/cli_acl"]).ok().stdout, "Sync is OK\n");
    let j = zkj(&["session"]);
    assert_eq!(j["state"], "CONNECTED");
    assert_eq!(j["server"], server());

    // Four-letter words, with and without a session.
    assert_eq!(zk(&["4lw", "ruok"]).ok().stdout, "imok\n");
    assert!(zk(&["4lw", "srvr"])
        .ok()
        .stdout
        .contains("Mode: standalone"));
    let j = zkj(&["4lw", "mntr"]);
    assert!(j["servers"][0]["answer"]
        .as_str()
        .unwrap()
        .contains("zk_version"));
    // config on a standalone server: no dynamic config; reconfig is disabled (exit 5).
    zk(&["config"]).ok();
    zk(&["reconfig", "-add", "server.9=127.0.0.1:1:2;3"]).fails(5, "Reconfig is disabled");
    // version, help (with the exit codes), quit: no server needed.
    assert!(run(plain(&["version"])).ok().stdout.starts_with("zk "));
    let help = run(plain(&["help"])).ok().stdout;
    for cmd in [
        "ls [-s] [-w] [-R] path",
        "create [-s] [-e] [-c] [-t ttl] path [data] [acl]",
        "txn OP",
        "Exit codes:",
        "4  connection",
    ] {
        assert!(help.contains(cmd), "help lacks {cmd:?}");
    }
    run(plain(&["quit"])).ok();
}

/// `zk` without -server (the commands that need none).
fn plain(args: &[&str]) -> Command {
    let mut c = Command::new(ZK);
    c.args(args)
        .env_remove("ZK_SERVER")
        .env_remove("ZK_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

#[test]
fn transactions_apply_all_or_nothing() {
    zk(&["create", "/cli_txn", ""]).ok();
    zk(&["create", "/cli_txn/b", "old"]).ok();
    zk(&["create", "/cli_txn/d", ""]).ok();
    let r = zk(&[
        "txn",
        "create /cli_txn/a 'x y'; set -v 0 /cli_txn/b new; check /cli_txn/b 1; delete /cli_txn/d",
    ])
    .ok();
    assert_eq!(
        r.stdout,
        "Created /cli_txn/a\nSet /cli_txn/b (dataVersion 1)\nChecked /cli_txn/b\nDeleted /cli_txn/d\n"
    );
    let k = kazoo(json!([
        ["get", "/cli_txn/a"],
        ["get", "/cli_txn/b"],
        ["exists", "/cli_txn/d"]
    ]));
    assert_eq!(k[0]["data"], "x y");
    assert_eq!(k[1]["data"], "new");
    assert_eq!(k[2], json!(false));
    // Separate words with ';' words work too.
    zk(&["txn", "create", "/cli_txn/e", ";", "delete", "/cli_txn/e"]).ok();
    // A failing check: nothing applies, exit 2, the message names the op and the path.
    let r = zk(&["--json", "txn", "create /cli_txn/f x; check /cli_txn/b 0"]);
    assert_eq!(r.code, 2);
    assert_eq!(r.json()["error"]["kind"], "BadVersion");
    assert_eq!(r.json()["error"]["path"], "/cli_txn/b");
    assert!(r
        .stderr
        .contains("Transaction failed at op 1: Bad version: /cli_txn/b"));
    assert_eq!(kazoo(json!([["exists", "/cli_txn/f"]]))[0], json!(false));
    let j = zkj(&["txn", "check /cli_txn/b 1; set /cli_txn/b newer"]);
    assert_eq!(j["results"][1]["stat"]["dataVersion"], 2);
    zk(&["txn", "frob /x"]).fails(1, "unknown op");
    zk(&["deleteall", "/cli_txn"]).ok();
}

// ---- watches ------------------------------------------------------------------------------

#[test]
fn one_shot_watches_wait_for_their_event() {
    zk(&["create", "/cli_w1", "a"]).ok();
    // get -w prints the data, then waits for the change.
    let bg = background(&["get", "-w", "/cli_w1"]);
    assert_eq!(next_line(&bg.out), "a");
    kazoo(json!([["set", "/cli_w1", "b"]]));
    assert_eq!(
        next_line(&bg.out),
        "WatchedEvent state:SyncConnected type:NodeDataChanged path:/cli_w1"
    );
    assert_eq!(bg.wait(), 0);

    // ls -w --json: the children, then the event, as JSON lines.
    let bg = background(&["--json", "ls", "-w", "/cli_w1"]);
    let first: Value = serde_json::from_str(&next_line(&bg.out)).unwrap();
    assert_eq!(first["children"], json!([]));
    kazoo(json!([["create", "/cli_w1/kid", ""]]));
    let ev: Value = serde_json::from_str(&next_line(&bg.out)).unwrap();
    assert_eq!(ev["event"], "NodeChildrenChanged");
    assert_eq!(ev["path"], "/cli_w1");
    assert_eq!(bg.wait(), 0);

    // stat -w on an existing node.
    let bg = background(&["stat", "-w", "/cli_w1/kid"]);
    assert!(next_line(&bg.out).starts_with("cZxid"));
    for _ in 0..10 {
        next_line(&bg.out);
    }
    kazoo(json!([["delete", "/cli_w1/kid"]]));
    assert!(next_line(&bg.out).contains("type:NodeDeleted path:/cli_w1/kid"));
    assert_eq!(bg.wait(), 0);

    // removewatches in a one-shot session: there is none.
    zk(&["removewatches", "/cli_w1"]).fails(2, "No such watcher: /cli_w1");
    zk(&["deleteall", "/cli_w1"]).ok();
}

#[test]
fn watch_streams_events_until_count_or_ctrl_c() {
    zk(&["create", "/cli_watch", ""]).ok();
    let bg = background(&["--json", "watch", "--count", "4", "/cli_watch"]);
    assert!(next_line(&bg.err).contains("watching /cli_watch"));
    kazoo(json!([
        ["create", "/cli_watch/a/b", "x"],
        ["set", "/cli_watch/a/b", "y"],
        ["delete", "/cli_watch/a"]
    ]));
    let events: Vec<(String, String)> = (0..4)
        .map(|_| {
            let v: Value = serde_json::from_str(&next_line(&bg.out)).unwrap();
            (
                v["event"].as_str().unwrap().to_owned(),
                v["path"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    // kazoo's makepath creates /cli_watch/a, then b; recursive delete removes b, then a.
    assert_eq!(
        events,
        [
            ("NodeCreated".to_owned(), "/cli_watch/a".to_owned()),
            ("NodeCreated".to_owned(), "/cli_watch/a/b".to_owned()),
            ("NodeDataChanged".to_owned(), "/cli_watch/a/b".to_owned()),
            ("NodeDeleted".to_owned(), "/cli_watch/a/b".to_owned()),
        ]
    );
    assert_eq!(bg.wait(), 0);

    // addWatch one-shot streams in zkCli's format until Ctrl-C (SIGINT), then exits 0.
    let bg = background(&["addWatch", "-m", "PERSISTENT", "/cli_watch"]);
    assert!(next_line(&bg.err).contains("watching /cli_watch"));
    kazoo(json!([["set", "/cli_watch", "z"]]));
    assert_eq!(
        next_line(&bg.out),
        "WatchedEvent state:SyncConnected type:NodeDataChanged path:/cli_watch"
    );
    let pid = bg.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap()
        .success());
    assert_eq!(bg.wait(), 0);
    zk(&["delete", "/cli_watch"]).ok();
}

// ---- the shell ----------------------------------------------------------------------------

#[test]
fn shell_through_stdin() {
    zk(&["create", "/cli_shell", ""]).ok();
    let r = shell(
        &[],
        "create -e /cli_shell/eph \"an ephemeral\"\n\
         getEphemerals /cli_shell\n\
         addauth digest alice:secret\n\
         create /cli_shell/secret s auth::cdrwa\n\
         getAcl /cli_shell/secret\n\
         whoami\n\
         ls -w /cli_shell\n\
         create /cli_shell/kid k\n\
         get -w /cli_shell/kid\n\
         removewatches /cli_shell/kid -d\n\
         set /cli_shell/kid k2\n\
         # a comment, then a bad line\n\
         get \"/cli_shell\n\
         txn create /cli_shell/t1 a ; create /cli_shell/t2 'b;c'\n\
         get /cli_shell/t2\n\
         session\n\
         get /cli_shell/nope\n",
    );
    // The exit code is the last command's: NoNode.
    assert_eq!(r.code, 2, "{r:?}");
    let out = &r.stdout;
    for want in [
        "Created /cli_shell/eph\n",
        "[/cli_shell/eph]\n",
        "Created /cli_shell/secret\n",
        "'digest,'alice:",
        "digest: alice\n",
        "WatchedEvent state:SyncConnected type:NodeChildrenChanged path:/cli_shell\n",
        "k\n",
        "Created /cli_shell/t1\nCreated /cli_shell/t2\n",
        "b;c\n",
        "session 0x",
    ] {
        assert!(out.contains(want), "{want:?} not in {out}");
    }
    // The removed data watch did not fire.
    assert!(!out.contains("type:NodeDataChanged"), "{out}");
    assert!(r.stderr.contains("unterminated \" quote"), "{r:?}");
    assert!(r.stderr.contains("Node does not exist: /cli_shell/nope"));
    // After the shell: the ephemeral is gone; the digest ACL keeps kazoo (no auth) out.
    let k = kazoo(json!([
        ["exists", "/cli_shell/eph"],
        ["get", "/cli_shell/secret"],
        ["get", "/cli_shell/kid"]
    ]));
    assert_eq!(k[0], json!(false));
    assert_eq!(k[1]["error"], "NoAuthError");
    assert_eq!(k[2]["data"], "k2");

    // --json in the shell: one JSON value per line; quit ends it with 0.
    let r = shell(
        &["--json"],
        "ls /cli_shell\nget /cli_shell/kid\nquit\nls /\n",
    );
    assert_eq!(r.code, 0, "{r:?}");
    let lines: Vec<Value> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[1]["data"], "k2");
    zk(&["deleteall", "/cli_shell"]).fails(3, "Not authorized");
}

#[test]
fn shell_tab_completion_and_history_in_a_pty() {
    zk(&["create", "/cli_pty", ""]).ok();
    for p in [
        "/cli_pty/alpha",
        "/cli_pty/beta",
        "/cli_pty/bravo",
        "/cli_pty/alpha/x",
    ] {
        zk(&["create", p, ""]).ok();
    }
    let home = std::env::temp_dir().join(format!("zk-cli-pty-{}", std::process::id()));
    std::fs::create_dir_all(&home).unwrap();
    let mut c = Command::new(ZK);
    c.args(["-server", server()])
        .env("HOME", &home)
        .env("TERM", "xterm")
        .env_remove("ZK_SERVER")
        .env_remove("ZK_LOG");
    let opts = rexpect::reader::Options::new()
        .timeout_ms(Some(20_000))
        .strip_ansi_escape_codes(true);
    let mut p = rexpect::session::spawn_with_options(c, opts).expect("zk in a pty");
    p.exp_string("(CONNECTED) 0] ").expect("the prompt");
    // A command name, then a unique path: both complete.
    p.send("getAllC\t").unwrap();
    p.flush().unwrap();
    p.exp_string("getAllChildrenNumber ")
        .expect("command completed");
    p.send("/cli_pty/al\t").unwrap();
    p.flush().unwrap();
    p.exp_string("/cli_pty/alpha").expect("path completed");
    p.send("\r").unwrap();
    p.flush().unwrap();
    p.exp_string("\n1")
        .expect("getAllChildrenNumber of /cli_pty/alpha");
    p.exp_string("(CONNECTED) 1] ").expect("the next prompt");
    // Two candidates: the first Tab completes the common prefix, the second lists them.
    p.send("ls /cli_pty/b\t\t").unwrap();
    p.flush().unwrap();
    p.exp_string("bravo").expect("the candidates are listed");
    p.send("\x15quit\r").unwrap(); // Ctrl-U clears the line
    p.flush().unwrap();
    p.exp_eof().expect("the shell ends");
    let history = std::fs::read_to_string(home.join(".zk_history")).expect("history saved");
    assert!(
        history.contains("getAllChildrenNumber /cli_pty/alpha"),
        "{history}"
    );
    let _ = std::fs::remove_dir_all(&home);
    zk(&["deleteall", "/cli_pty"]).ok();
}

// ---- errors -------------------------------------------------------------------------------

#[test]
fn bad_input_gets_a_message_a_hint_and_exit_1() {
    for (args, message) in [
        (vec!["get"], "get: missing path"),
        (vec!["get", "relative"], "path must start with /"),
        (vec!["get", "/a/"], "get: Invalid path"),
        (vec!["set", "/a"], "set: missing data"),
        (vec!["ls", "-z", "/"], "unknown option -z"),
        (vec!["frob", "/"], "unknown command \"frob\""),
        (vec!["create", "-e", "-c", "/a"], "pick one"),
        (
            vec!["create", "/a", "x", "world:anyone:xyz"],
            "bad ACL entry",
        ),
        (vec!["delete", "-v", "x", "/a"], "-v takes a version number"),
        (vec!["4lw", "ruokk"], "not a four-letter word"),
        (vec!["txn", ""], "no ops"),
        (vec!["deleteall", "/"], "refusing to delete /"),
        (vec!["connect", "h:1"], "connect works in the shell"),
    ] {
        let r = zk(&args).fails(1, message);
        assert!(
            r.stderr.lines().count() <= 2,
            "one message and one hint: {r:?}"
        );
    }
    // Global flags.
    run(plain(&["-server"])).fails(1, "-server needs a value");
    run(plain(&["-timeout", "soon", "ls", "/"])).fails(1, "-timeout takes milliseconds");
    run(plain(&["-server", "h::1", "ls", "/"])).fails(1, "IPv6 addresses need brackets");
    run(plain(&["--bogus"])).fails(1, "unknown option --bogus");
    // An unreachable server: exit 4, with what to check; JSON error on stdout.
    let r = run(plain(&[
        "-server",
        "127.0.0.1:1",
        "--connect-timeout",
        "0.5",
        "--json",
        "ls",
        "/",
    ]))
    .fails(4, "Cannot connect to 127.0.0.1:1");
    assert!(r.stderr.contains("is ZooKeeper running there?"));
    assert_eq!(r.json()["error"]["kind"], "Unreachable");
    // Node errors: 2, with zkCli's messages.
    zk(&["create", "/cli_err", ""]).ok();
    zk(&["create", "/cli_err", ""]).fails(2, "Node already exists: /cli_err");
    zk(&["create", "/cli_err/a/b", ""]).fails(2, "Node does not exist: /cli_err/a/b");
    zk(&["create", "-e", "/cli_err/e", ""]).ok();
    let r = zk(&["--json", "get", "/cli_err/none"]);
    assert_eq!(r.code, 2);
    assert_eq!(
        r.json(),
        json!({"error": {"kind": "NoNode", "message": "Node does not exist: /cli_err/none",
                          "path": "/cli_err/none", "exitCode": 2}})
    );
    zk(&["delete", "/cli_err"]).ok();
}

#[test]
fn deleteall_of_a_large_subtree_shows_progress() {
    // 40 children with 40 children each: 1641 nodes.
    assert_eq!(kazoo(json!([["tree", "/cli_big", 40, 40]]))[0], json!(true));
    assert_eq!(zkj(&["getAllChildrenNumber", "/cli_big"])["count"], 1640);
    let j = zkj(&["tree", "/cli_big"]);
    assert_eq!(j["nodes"].as_array().unwrap().len(), 1641);
    let mut c = zk_cmd(&["--json", "deleteall", "-b", "100", "/cli_big"]);
    c.env("ZK_PROGRESS", "always");
    let r = run(c).ok();
    assert_eq!(r.json()["deleted"], 1641);
    assert!(r.stderr.contains("deleting: "), "{r:?}");
    assert_eq!(kazoo(json!([["exists", "/cli_big"]]))[0], json!(false));
}

// ---- the README's tour --------------------------------------------------------------------

#[test]
fn the_tour_runs_and_fails_over() {
    let out = Command::new(TOUR).output().expect("zk-tour runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for want in [
        "$ zk txn 'create /tour/config v1;",
        "Transaction failed at op 0: Bad version: /tour/config",
        "type:NodeDataChanged path:/tour/config",
        "NodeDeleted /tour/a/b",
        "killed]",
        "Same session id, new server.",
        "The tour is over",
    ] {
        assert!(stdout.contains(want), "{want:?} not in the tour:\n{stdout}");
    }
}
