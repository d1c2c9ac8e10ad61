//! `zk-bench-server [3.8|3.9] [--tls DIR | --netty | --ensemble]`: starts one standalone ZooKeeper server for the benchmarks with
//! zk-testkit's real harness, prints `READY 127.0.0.1:<port> <pid>` on stdout, and runs until
//! its standard input closes; then it stops the server. `scripts/bench` starts it under
//! `taskset -c 1`, so the JVM and every thread it starts stay on that core.
//!
//! The harness's test settings are adjusted for measuring: `tickTime` 2000 ms (so the spec's
//! 30 s sessions are granted; the test default of 200 ms caps sessions at 4 s), the full JIT
//! (the harness limits tests to C1 for quick start-up), and a 1 GiB heap. fsync stays off, as
//! in the tests: the benchmarks measure clients, not the disk.
//!
//! `--tls DIR`: the server serves a TLS-only client port (Netty, the harness's TestPki written to
//! DIR, no client certificates); clients trust `DIR/ca.pem` (zk-bench's `ZKB_TLS_CA`).
//! `--netty`: plain TCP through the same Netty connection factory a TLS port needs (the default
//! plain factory is NIO, which answers differently: fewer replies per write), so that TLS and
//! plain TCP can be compared with nothing else changed.
//!
//! `--ensemble`: a 3-node quorum for W8 (512 MiB heap each), announced as
//! `READY a1,a2,a3 p1,p2,p3 <version>` (addresses and pids in the same order, for `zk-bench w8`
//! and its `ZKB_SERVER_PIDS`). W8 kills one server per run; a line `restart` on standard input
//! restarts every server that no longer answers, waits until the quorum is whole again, and
//! prints a new `READY` line with the new pids.

use std::io::{Read, Write};
use std::process::ExitCode;

use zk_testkit::real::{ClientAuth, Ensemble, EnsembleOptions, ServerCert, TestPki, ZkVersion};

const USAGE: &str = "usage: zk-bench-server [3.8|3.9] [--tls DIR | --netty | --ensemble]";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [v, flag] = args.as_slice() {
        if flag == "--ensemble" {
            return match parse_version(v) {
                Some(version) => ensemble(version),
                None => {
                    eprintln!("{USAGE} (not {args:?})");
                    ExitCode::FAILURE
                }
            };
        }
    }
    let (version, tls_dir, netty) = match args.as_slice() {
        [] => (Some(ZkVersion::V3_9), None, false),
        [v] => (parse_version(v), None, false),
        [v, flag] if flag == "--netty" => (parse_version(v), None, true),
        [v, flag, dir] if flag == "--tls" => (parse_version(v), Some(dir.clone()), false),
        _ => (None, None, false),
    };
    let Some(version) = version else {
        eprintln!("{USAGE} (not {args:?})");
        return ExitCode::FAILURE;
    };
    let mut opts = EnsembleOptions::standalone(version);
    if netty {
        opts.system_properties.push((
            "zookeeper.serverCnxnFactory".into(),
            "org.apache.zookeeper.server.NettyServerCnxnFactory".into(),
        ));
    }
    if let Some(dir) = tls_dir {
        // Absolute: the server reads the files from its own working directory.
        let dir = match std::fs::create_dir_all(&dir).and_then(|()| std::fs::canonicalize(&dir)) {
            Ok(d) => d.display().to_string(),
            Err(e) => {
                eprintln!("zk-bench-server: {dir}: {e}");
                return ExitCode::FAILURE;
            }
        };
        match TestPki::generate(std::path::Path::new(&dir)) {
            Ok(pki) => opts.tls = Some(pki.server_tls(ServerCert::Good, ClientAuth::None)),
            Err(e) => {
                eprintln!("zk-bench-server: making the TLS certificates in {dir}: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    opts.tick_ms = 2000;
    opts.jvm_args = ["-XX:TieredStopAtLevel=4", "-Xms1g", "-Xmx1g"]
        .map(String::from)
        .into();
    let ens = match Ensemble::start(opts) {
        Ok(ens) => ens,
        Err(e) => {
            eprintln!("zk-bench-server: {e}");
            return ExitCode::FAILURE;
        }
    };
    let (Ok(node), Some(pid)) = (ens.node(0), ens.pid(0)) else {
        eprintln!("zk-bench-server: the server is not running");
        return ExitCode::FAILURE;
    };
    println!("READY {} {pid} {}", node.addr(), version.release());
    let _ = std::io::stdout().flush();
    // Run until whoever started us closes our standard input.
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    drop(ens);
    ExitCode::SUCCESS
}

/// Prints the `READY` line of the ensemble: every address, every pid, the release.
fn announce(ens: &Ensemble) -> Result<(), String> {
    let mut addrs = Vec::new();
    let mut pids = Vec::new();
    for i in 0..ens.size() {
        let node = ens.node(i).map_err(|e| e.to_string())?;
        let pid = ens.pid(i).ok_or(format!("server {i} is not running"))?;
        addrs.push(node.addr().to_string());
        pids.push(pid.to_string());
    }
    println!(
        "READY {} {} {}",
        addrs.join(","),
        pids.join(","),
        ens.version().release()
    );
    let _ = std::io::stdout().flush();
    Ok(())
}

/// The `--ensemble` mode: a 3-node quorum, restarted on request, until standard input closes.
fn ensemble(version: ZkVersion) -> ExitCode {
    let mut opts = EnsembleOptions::quorum(version, 3);
    opts.tick_ms = 2000;
    opts.jvm_args = ["-XX:TieredStopAtLevel=4", "-Xms256m", "-Xmx512m"]
        .map(String::from)
        .into();
    let mut ens = match Ensemble::start(opts) {
        Ok(ens) => ens,
        Err(e) => {
            eprintln!("zk-bench-server: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = announce(&ens) {
        eprintln!("zk-bench-server: {e}");
        return ExitCode::FAILURE;
    }
    for line in std::io::stdin().lines() {
        let Ok(line) = line else { break };
        if line.trim() != "restart" {
            eprintln!("zk-bench-server: unknown command {line:?} (only `restart`)");
            continue;
        }
        // A server W8 killed refuses connections; restart() reaps it and starts it again.
        for i in 0..ens.size() {
            if ens.four_letter(i, "ruok").is_err() {
                if let Err(e) = ens.restart(i) {
                    eprintln!("zk-bench-server: restarting server {i}: {e}");
                    return ExitCode::FAILURE;
                }
            }
        }
        if let Err(e) = ens
            .wait_all_ready()
            .map_err(|e| e.to_string())
            .and_then(|()| announce(&ens))
        {
            eprintln!("zk-bench-server: {e}");
            return ExitCode::FAILURE;
        }
    }
    drop(ens);
    ExitCode::SUCCESS
}

fn parse_version(v: &str) -> Option<ZkVersion> {
    match v {
        "3.9" => Some(ZkVersion::V3_9),
        "3.8" => Some(ZkVersion::V3_8),
        _ => None,
    }
}
