//! `zk-bench`: one workload of shared/BENCH-SPEC.md per invocation, for one column.
//!
//! ```text
//! zk-bench setup HOST:PORT
//! zk-bench [--client NAME] <w1|w2|w3|w4|w5|w6> HOST:PORT
//! ```
//!
//! NAME is `tokio` (the default), `async-std`, `smol`, `blocking`, `zookeeper-client` or `raw`.
//! The async columns run on a single-threaded executor where the runtime has one (tokio's
//! current-thread runtime for `tokio` and `zookeeper-client`); async-std and smol run their
//! own executors as a user of them would.
//!
//! With `ZKB_TLS_CA=FILE` (the CA of a `zk-bench-server --tls DIR`, i.e. `DIR/ca.pem`) this
//! client's columns connect over TLS; the others print NA.

use std::process::ExitCode;

use zk_benches::spec::Workload;
use zk_benches::{blocking, fail, ours, peer, raw, setup, BenchResult};

const USAGE: &str = "usage: zk-bench setup HOST:PORT\n       zk-bench [--client tokio|async-std|smol|blocking|zookeeper-client|raw] <w1|w2|w3|w4|w5|w6> HOST:PORT";

fn tokio_rt() -> BenchResult<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

fn run(client: &str, workload: Workload, addr: &str) -> BenchResult<Vec<String>> {
    if zk_benches::tls_ca().is_some() && matches!(client, "zookeeper-client" | "raw") {
        return Ok(vec![format!(
            "NA    {} {client} speaks plain TCP only (ZKB_TLS_CA is set)",
            workload.name()
        )]);
    }
    match client {
        "tokio" => tokio_rt()?.block_on(async {
            ours::run(zk_tokio::TokioRuntime::default().shared(), workload, addr).await
        }),
        "async-std" => async_std::task::block_on(ours::run(
            zk_async_std::AsyncStdRuntime.shared(),
            workload,
            addr,
        )),
        "smol" => smol::block_on(ours::run(
            zk_async_std::SmolRuntime.shared(),
            workload,
            addr,
        )),
        "blocking" => blocking::run(workload, addr),
        "zookeeper-client" => tokio_rt()?.block_on(peer::run(workload, addr)),
        "raw" => raw::run(workload, addr),
        other => Err(fail(format!("unknown client {other:?}\n{USAGE}"))),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.as_slice() {
        [cmd, addr] if cmd == "setup" => tokio_rt().and_then(|rt| {
            rt.block_on(async {
                setup::run(zk_tokio::TokioRuntime::default().shared(), addr).await
            })
            .map(|()| Vec::new())
        }),
        [flag, client, w, addr] if flag == "--client" => match Workload::parse(w) {
            Some(w) => run(client, w, addr),
            None => Err(fail(USAGE)),
        },
        [w, addr] => match Workload::parse(w) {
            Some(w) => run("tokio", w, addr),
            None => Err(fail(USAGE)),
        },
        _ => Err(fail(USAGE)),
    };
    match result {
        Ok(lines) => {
            for l in lines {
                println!("{l}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("zk-bench: {e}");
            ExitCode::FAILURE
        }
    }
}
