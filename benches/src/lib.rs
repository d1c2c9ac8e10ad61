//! Benchmarks: criterion micro-benchmarks of the codec and the session core (`benches/`), and
//! `zk-bench`, the end-to-end workloads of shared/BENCH-SPEC.md, run for every column (this
//! client on tokio, async-std, smol and blocking; the peer crate `zookeeper-client`; and `raw`,
//! the floor) against one real ZooKeeper server.
//!
//! Module map: [`spec`] the workloads' sizes and paths, fixed by BENCH-SPEC.md; [`measure`] the
//! clocks (wall, client CPU by getrusage, server CPU from /proc) and the output lines other tools
//! read; [`pipeline`] the window of W2 and W3; one module per column ([`ours`] for the three
//! async runtimes, [`blocking`], [`peer`], [`raw`]); [`setup`] the shared data; [`mem`] resident
//! memory; [`report`] medians and ratios for the README's table; [`watches`] what W7 and W8
//! share (their nodes, the ensemble's leader and pids, the check that every watch fired).
//!
//! Results are printed, never asserted: benchmarks measure, tests never assert on time.

#![forbid(unsafe_code)]

pub mod blocking;
pub mod measure;
pub mod mem;
pub mod ours;
pub mod peer;
pub mod pipeline;
pub mod raw;
pub mod report;
pub mod setup;
pub mod spec;
pub mod watches;

/// An error that ends a benchmark run with a non-zero exit (BENCH-SPEC: any failed operation).
pub type BenchError = Box<dyn std::error::Error + Send + Sync>;

/// The result of a workload or a setup step.
pub type BenchResult<T> = Result<T, BenchError>;

/// The CA file (PEM) in `ZKB_TLS_CA`, when the server speaks TLS (`zk-bench-server --tls DIR`):
/// this client's columns then connect over TLS; `zookeeper-client` and `raw` speak plain TCP
/// only and say NA.
pub fn tls_ca() -> Option<std::path::PathBuf> {
    std::env::var_os("ZKB_TLS_CA")
        .filter(|v| !v.is_empty())
        .map(Into::into)
}

/// Runs a `smol` column's `work` with the client's runtime, as `ZKB_SMOL` says: `executor` (the
/// default) puts the client's tasks on an executor this thread runs (`block_on(ex.run(..))`,
/// smol's documented way, like tokio's current-thread column), `global` on smol's global
/// executor (`smol::spawn`, its own thread), the column before stop 30.
///
/// Errors when `ZKB_SMOL` holds anything else, or as `work` does.
pub fn on_smol<F, T>(
    work: impl FnOnce(std::sync::Arc<dyn zk_async_std::Runtime>) -> F,
) -> BenchResult<T>
where
    F: std::future::Future<Output = BenchResult<T>>,
{
    match std::env::var("ZKB_SMOL").as_deref() {
        Ok("executor" | "") | Err(std::env::VarError::NotPresent) => {
            let ex = std::sync::Arc::new(smol::Executor::new());
            smol::block_on(ex.run(work(zk_async_std::SmolRuntime::on(&ex).shared())))
        }
        Ok("global") => smol::block_on(work(zk_async_std::SmolRuntime::default().shared())),
        Ok(other) => Err(fail(format!(
            "ZKB_SMOL is {other:?}: expected executor or global"
        ))),
        Err(e) => Err(fail(format!("ZKB_SMOL: {e}"))),
    }
}

/// Runs an `async-std` column's `work` in `async_std::task::block_on` with the client's runtime,
/// as `ZKB_ASYNC_STD` says: `local` (the default) puts the client's tasks on the executor that
/// `block_on` runs on this thread (`AsyncStdRuntime::local`, like tokio's current-thread
/// column), `pool` on async-std's thread pool (`AsyncStdRuntime::default`), the column before
/// stop 31.
///
/// Errors when `ZKB_ASYNC_STD` holds anything else, or as `work` does.
pub fn on_async_std<F, T>(
    work: impl FnOnce(std::sync::Arc<dyn zk_async_std::Runtime>) -> F,
) -> BenchResult<T>
where
    F: std::future::Future<Output = BenchResult<T>>,
{
    let rt = match std::env::var("ZKB_ASYNC_STD").as_deref() {
        Ok("local" | "") | Err(std::env::VarError::NotPresent) => {
            zk_async_std::AsyncStdRuntime::local()
        }
        Ok("pool") => zk_async_std::AsyncStdRuntime::default(),
        Ok(other) => {
            return Err(fail(format!(
                "ZKB_ASYNC_STD is {other:?}: expected local or pool"
            )))
        }
        Err(e) => return Err(fail(format!("ZKB_ASYNC_STD: {e}"))),
    };
    async_std::task::block_on(work(rt.shared()))
}

/// Builds a [`BenchError`] from a message.
pub fn fail(msg: impl Into<String>) -> BenchError {
    msg.into().into()
}

/// Checks that a value read from `what` has the length setup gave it.
///
/// Errors with a message naming both lengths when they differ.
pub fn check_len(what: &str, got: usize, want: usize) -> BenchResult<()> {
    if got == want {
        Ok(())
    } else {
        Err(fail(format!("{what}: {got} bytes, expected {want}")))
    }
}
