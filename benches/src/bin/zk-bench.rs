//! `zk-bench`: one workload of shared/BENCH-SPEC.md per invocation, for one column.
//!
//! ```text
//! zk-bench setup HOST:PORT
//! zk-bench [--client NAME] <w1|w2|w3|w4|w5|w6|w7> HOST:PORT
//! zk-bench [--client NAME] w8 HOST:PORT,HOST:PORT,HOST:PORT     # with ZKB_SERVER_PIDS=p1,p2,p3
//! ```
//!
//! NAME is `tokio` (the default), `async-std`, `smol`, `blocking`, `zookeeper-client` or `raw`.
//! The async columns run on a single-threaded executor where the runtime has one (tokio's
//! current-thread runtime for `tokio` and `zookeeper-client`; for `smol` an executor run by
//! the calling thread, `block_on(ex.run(..))`, with the client's tasks on it: `ZKB_SMOL=global`
//! puts them on smol's global executor instead; for `async-std` its `block_on`, with the
//! client's tasks on the executor it runs on the calling thread: `ZKB_ASYNC_STD=pool` puts them
//! on async-std's thread pool instead).
//!
//! W7 makes `/zkb/w7` and its 10,000 children before the column runs and removes them after;
//! W8 makes `/zkb/w8` and its 10,000 nodes on the ensemble (kept), and kills (`kill -9`) the
//! server its watching session is on, whose pid it finds in `ZKB_SERVER_PIDS` (one per address,
//! in the same order; `zk-bench-server --ensemble` prints both). `raw` prints NA for W7 and W8:
//! they need a second session and watch bookkeeping (W8 also host rotation and re-arming),
//! which is a client, not the floor of one.
//!
//! `ZKB_SMOL` says where the `smol` column's client runs its tasks: `executor` (the default) or
//! `global` (`zk_benches::on_smol`).
//! `ZKB_ASYNC_STD` says where the `async-std` column's client runs its tasks: `local` (the
//! default) or `pool` (`zk_benches::on_async_std`).
//!
//! `ZKB_TOKIO` says how `tokio` and `zookeeper-client` run on tokio: `current` (the default, the
//! table's columns), `spawned` (the column's work in a task spawned on that runtime) or `multi`
//! (the multi-thread runtime, the work in `block_on`); see `TokioMode`. `setup` runs on the same
//! runtime. `zk-bench-mem` ignores it.
//!
//! With `ZKB_TLS_CA=FILE` (the CA of a `zk-bench-server --tls DIR`, i.e. `DIR/ca.pem`) this
//! client's columns connect over TLS; the others print NA.

use std::process::ExitCode;

use zk_benches::spec::Workload;
use zk_benches::{blocking, fail, ours, peer, raw, setup, watches, BenchResult};

const USAGE: &str = "usage: zk-bench setup HOST:PORT\n       zk-bench [--client tokio|async-std|smol|blocking|zookeeper-client|raw] <w1|w2|w3|w4|w5|w6|w7> HOST:PORT\n       ZKB_SERVER_PIDS=p1,p2,p3 zk-bench [--client NAME] w8 HOST:PORT,HOST:PORT,HOST:PORT";

/// How the `tokio` and `zookeeper-client` columns run on tokio (`ZKB_TOKIO`):
/// `current` (the default) the current-thread runtime with the column's work in `block_on`;
/// `spawned` the same runtime with the work in a spawned task, as most tokio programs call a
/// client; `multi` the multi-thread runtime `#[tokio::main]` gives (as many workers as the cores
/// the process may use), the work in `block_on` on the main thread and the client's driver on a
/// worker.
#[derive(Clone, Copy, PartialEq)]
enum TokioMode {
    Current,
    Spawned,
    Multi,
}

fn tokio_mode() -> BenchResult<TokioMode> {
    match std::env::var("ZKB_TOKIO").as_deref() {
        Ok("current" | "") | Err(std::env::VarError::NotPresent) => Ok(TokioMode::Current),
        Ok("spawned") => Ok(TokioMode::Spawned),
        Ok("multi") => Ok(TokioMode::Multi),
        Ok(other) => Err(fail(format!(
            "ZKB_TOKIO is {other:?}: expected current, spawned or multi"
        ))),
        Err(e) => Err(fail(format!("ZKB_TOKIO: {e}"))),
    }
}

fn tokio_rt(mode: TokioMode) -> BenchResult<tokio::runtime::Runtime> {
    let mut builder = match mode {
        TokioMode::Multi => tokio::runtime::Builder::new_multi_thread(),
        TokioMode::Current | TokioMode::Spawned => tokio::runtime::Builder::new_current_thread(),
    };
    Ok(builder.enable_all().build()?)
}

/// Runs a tokio column's `work` as `ZKB_TOKIO` says.
fn on_tokio<F>(work: F) -> BenchResult<Vec<String>>
where
    F: std::future::Future<Output = BenchResult<Vec<String>>> + Send + 'static,
{
    let mode = tokio_mode()?;
    let rt = tokio_rt(mode)?;
    if mode == TokioMode::Spawned {
        rt.block_on(async {
            tokio::spawn(work)
                .await
                .map_err(|e| fail(format!("the column's task: {e}")))?
        })
    } else {
        rt.block_on(work)
    }
}

fn run(client: &str, workload: Workload, addr: &str) -> BenchResult<Vec<String>> {
    if zk_benches::tls_ca().is_some() && matches!(client, "zookeeper-client" | "raw") {
        return Ok(vec![format!(
            "NA    {} {client} speaks plain TCP only (ZKB_TLS_CA is set)",
            workload.name()
        )]);
    }
    if client == "raw" && matches!(workload, Workload::W7 | Workload::W8) {
        return Ok(vec![format!(
            "NA    {} raw is one session without watch bookkeeping or reconnection",
            workload.name()
        )]);
    }
    // The nodes W7 and W8 watch, made (and W7's removed) outside the column's process time
    // that matters: before its sessions exist and after they are closed.
    if matches!(workload, Workload::W7 | Workload::W8) {
        watchdog(workload);
    }
    match workload {
        Workload::W7 => {
            watches::w7_prepare(addr)?;
            let result = run_column(client, workload, addr);
            let cleanup = watches::w7_cleanup(addr);
            let lines = result?;
            cleanup?;
            Ok(lines)
        }
        Workload::W8 => {
            watches::w8_prepare(addr)?;
            run_column(client, workload, addr)
        }
        _ => run_column(client, workload, addr),
    }
}

/// W7 waits for every event without a timeout of its own (one per event would be timed too), and
/// a client may never finish W8's reconnect: a missing event must end the run as a failure, not
/// hang it. Minutes more than either needs.
fn watchdog(workload: Workload) {
    const LIMIT: std::time::Duration = std::time::Duration::from_secs(240);
    std::thread::spawn(move || {
        std::thread::sleep(LIMIT);
        eprintln!(
            "zk-bench: {} did not finish within {} s (a watch that never fired, or a session \
             that never came back)",
            workload.name(),
            LIMIT.as_secs()
        );
        std::process::exit(1);
    });
}

fn run_column(client: &str, workload: Workload, addr: &str) -> BenchResult<Vec<String>> {
    match client {
        "tokio" => {
            let addr = addr.to_owned();
            on_tokio(async move {
                ours::run(zk_tokio::TokioRuntime::default().shared(), workload, &addr).await
            })
        }
        "async-std" => zk_benches::on_async_std(|rt| ours::run(rt, workload, addr)),
        "smol" => zk_benches::on_smol(|rt| ours::run(rt, workload, addr)),
        "blocking" => blocking::run(workload, addr),
        "zookeeper-client" => {
            let addr = addr.to_owned();
            on_tokio(async move { peer::run(workload, &addr).await })
        }
        "raw" => raw::run(workload, addr),
        other => Err(fail(format!("unknown client {other:?}\n{USAGE}"))),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.as_slice() {
        [cmd, addr] if cmd == "setup" => tokio_mode().and_then(tokio_rt).and_then(|rt| {
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
