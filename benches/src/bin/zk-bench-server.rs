//! `zk-bench-server [3.8|3.9] [--tls DIR | --netty]`: starts one standalone ZooKeeper server for the benchmarks with
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

use std::io::{Read, Write};
use std::process::ExitCode;

use zk_testkit::real::{ClientAuth, Ensemble, EnsembleOptions, ServerCert, TestPki, ZkVersion};

const USAGE: &str = "usage: zk-bench-server [3.8|3.9] [--tls DIR | --netty]";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
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

fn parse_version(v: &str) -> Option<ZkVersion> {
    match v {
        "3.9" => Some(ZkVersion::V3_9),
        "3.8" => Some(ZkVersion::V3_8),
        _ => None,
    }
}
