//! The client suite (tests/suite) on every runtime against standalone servers: real ZooKeeper
//! 3.8 and 3.9 started by the harness, and SimServer over TCP answering as 3.8 and as 3.5.
//!
//! One test per server, so the servers run in parallel while each server's runs go one runtime
//! after another. Every failure of a run is reported at once, with runtime and scenario.
//! `SUITE_FILTER=name` runs only scenarios whose name contains `name`.

mod suite;

use std::sync::Arc;
use std::time::Duration;

use suite::{prepare_wide, scenarios, Ctx, ServerKind};
use zk_client::Runtime;
use zk_testkit::real::{Ensemble, EnsembleOptions, ZkVersion};
use zk_testkit::sim::tcp::SimTcpServer;
use zk_testkit::sim::SimConfig;

/// Scenarios that need servers of 3.6 or newer.
const NEEDS_3_6: &[&str] = &[
    "acl_and_auth",
    "ephemerals_live_and_die_with_their_session",
    "chroot_is_invisible",
    "resume_a_session_by_id_and_password",
    "wide_children",
];

async fn run(ctx: &Ctx, failures: &mut Vec<String>) {
    let filter = std::env::var("SUITE_FILTER").unwrap_or_default();
    for (name, scenario) in scenarios() {
        if !name.contains(filter.as_str()) {
            continue;
        }
        if ctx.kind.version() < zk_client::ServerVersion::new(3, 6, 0) && NEEDS_3_6.contains(&name)
        {
            continue;
        }
        let started = std::time::Instant::now();
        let outcome = match ctx.within(Duration::from_secs(120), scenario(ctx)).await {
            Ok(r) => r,
            Err(e) => Err(e),
        };
        eprintln!(
            "[{:?} {}] {name}: {} in {:?}",
            ctx.kind,
            ctx.runtime_name,
            if outcome.is_ok() { "ok" } else { "FAILED" },
            started.elapsed()
        );
        if let Err(e) = outcome {
            failures.push(format!("[{:?} {}] {name}: {e}", ctx.kind, ctx.runtime_name));
        }
    }
}

/// Runs the suite on every runtime against one server.
fn run_everywhere(kind: ServerKind, connect: &str, wide: Option<String>) {
    let mut failures = Vec::new();
    fn make(
        rt: Arc<dyn Runtime>,
        runtime_name: &'static str,
        connect: &str,
        kind: ServerKind,
        wide: &Option<String>,
    ) -> Ctx {
        Ctx {
            rt,
            runtime_name,
            connect: connect.to_owned(),
            kind,
            wide: wide.clone(),
        }
    }

    let tokio_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    tokio_rt.block_on(async {
        let c = make(
            zk_tokio::TokioRuntime::default().shared(),
            "tokio",
            connect,
            kind,
            &wide,
        );
        if let Some(w) = &c.wide {
            let client = c.client().await.expect("connect for the wide fixture");
            prepare_wide(&client, w).await.expect("100,000 children");
            client.close().await;
        }
        run(&c, &mut failures).await
    });
    drop(tokio_rt);

    async_std::task::block_on(run(
        &make(
            zk_async_std::AsyncStdRuntime::default().shared(),
            "async-std",
            connect,
            kind,
            &wide,
        ),
        &mut failures,
    ));
    // async-std with the client's tasks on the executor its `block_on` runs, on a thread of its
    // own: what a scenario left open on that executor ends with the thread, not at this
    // function's end.
    std::thread::scope(|s| {
        s.spawn(|| {
            async_std::task::block_on(run(
                &make(
                    zk_async_std::AsyncStdRuntime::local().shared(),
                    "async-std-local",
                    connect,
                    kind,
                    &wide,
                ),
                &mut failures,
            ))
        });
    });
    smol::block_on(run(
        &make(
            zk_async_std::SmolRuntime::default().shared(),
            "smol",
            connect,
            kind,
            &wide,
        ),
        &mut failures,
    ));
    // smol with the client's tasks on the program's executor, run by this thread.
    let ex = std::sync::Arc::new(smol::Executor::new());
    smol::block_on(ex.run(run(
        &make(
            zk_async_std::SmolRuntime::on(&ex).shared(),
            "smol-executor",
            connect,
            kind,
            &wide,
        ),
        &mut failures,
    )));
    // Nobody runs it from here on: what a scenario left open ends now, not at the function's end.
    drop(ex);
    // zk-blocking's runtime (a driver thread per session), its futures waited on this thread.
    futures_lite::future::block_on(run(
        &make(
            zk_blocking::ThreadRuntime.shared(),
            "blocking",
            connect,
            kind,
            &wide,
        ),
        &mut failures,
    ));

    assert!(
        failures.is_empty(),
        "{} scenario runs failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn real(version: ZkVersion, kind: ServerKind) {
    let ens = Ensemble::start(EnsembleOptions::standalone(version))
        .unwrap_or_else(|e| panic!("starting ZooKeeper {version:?}: {e}"));
    run_everywhere(kind, &ens.connect_string(), Some("/wide".into()));
}

#[test]
fn suite_on_zookeeper_3_8() {
    real(ZkVersion::V3_8, ServerKind::Real38);
}

#[test]
fn suite_on_zookeeper_3_9() {
    real(ZkVersion::V3_9, ServerKind::Real39);
}

#[test]
fn suite_on_simserver() {
    let sim = SimTcpServer::start(SimConfig {
        version: (3, 8, 0),
        ..SimConfig::default()
    })
    .expect("SimServer listens");
    run_everywhere(
        ServerKind::Sim(3, 8, 0),
        &sim.connect_string(),
        Some("/wide".into()),
    );
}

#[test]
fn suite_on_simserver_as_3_5() {
    let sim = SimTcpServer::start(SimConfig {
        version: (3, 5, 10),
        ..SimConfig::default()
    })
    .expect("SimServer listens");
    run_everywhere(ServerKind::Sim(3, 5, 10), &sim.connect_string(), None);
}
