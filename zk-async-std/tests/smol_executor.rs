//! The client on an executor of the program's own (`SmolRuntime::on`, `smol::builder_on`),
//! against a real ZooKeeper 3.9: its tasks run there, with the program's calls, on the thread
//! that runs the executor; a program that never runs the executor gets an error naming that
//! instead of a hang; one that drops the executor ends the session for everyone waiting.

mod common;

use std::future::IntoFuture;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use smol::Executor;
use zk_async_std::{Runtime, SmolRuntime};

/// How long a wait that must end may take before the test fails instead of hanging.
const PATIENCE: Duration = Duration::from_secs(10);

/// `fut`'s output, or a panic naming `what` after [`PATIENCE`].
fn within<T>(what: &str, fut: impl std::future::Future<Output = T>) -> T {
    smol::block_on(common::within(PATIENCE, fut))
        .unwrap_or_else(|| panic!("{what} did not end within {PATIENCE:?}"))
}

#[test]
fn the_clients_tasks_run_with_its_calls_on_the_thread_running_the_executor() {
    let cs = common::zk39_connect_string();
    let ex = Arc::new(Executor::new());
    let this_thread = thread::current().id();
    smol::block_on(ex.run(async {
        // What the runtime spawns (the driver among them) runs on `ex`, i.e. here.
        let (tx, rx) = smol::channel::bounded(1);
        SmolRuntime::on(&ex)
            .spawn(Box::pin(async move {
                let _ = tx.send(thread::current().id()).await;
            }))
            .expect("spawn on a live executor");
        assert_eq!(rx.recv().await.expect("the task ran"), this_thread);

        let client = zk_async_std::smol::builder_on(&ex, &cs)
            .connect()
            .await
            .expect("connect");
        // The writer on smol's global executor.
        let other = zk_async_std::smol::connect(&cs)
            .await
            .expect("connect the writer");
        common::pipelined_reads_and_a_watch(client, other, "/smol-executor").await;
    }));
}

#[test]
fn connect_names_a_driver_that_never_ran_and_does_not_hang() {
    let cs = common::zk39_connect_string();
    let ex = Arc::new(Executor::new());
    // The program waits for the connection without running `ex`: the driver never runs.
    let err = smol::block_on(
        zk_async_std::smol::builder_on(&ex, &cs)
            .connect_timeout(Duration::from_secs(1))
            .connect(),
    )
    .expect_err("no session can be made without a driver");
    assert!(
        matches!(&err, zk_async_std::Error::Runtime(m) if m.contains("did not run")),
        "{err}"
    );
    // Run at last, the driver finds its session ended (closed by `connect`) and stops.
    while ex.try_tick() {}
    assert!(ex.is_empty(), "the driver is still on the executor");
}

#[test]
fn dropping_the_executor_ends_the_session_for_everyone_waiting() {
    let cs = common::zk39_connect_string();
    let ex = Arc::new(Executor::new());
    let (stop, stopped) = smol::channel::bounded::<()>(1);
    let runner = {
        let ex = ex.clone();
        thread::spawn(move || smol::block_on(ex.run(stopped.recv())))
    };
    // Called from this thread; the driver runs on the runner's.
    let client = smol::block_on(zk_async_std::smol::builder_on(&ex, &cs).connect())
        .expect("connect through the running executor");
    assert!(smol::block_on(client.exists("/").into_future())
        .expect("exists")
        .is_some());

    drop(stop);
    runner
        .join()
        .expect("the runner thread")
        .expect_err("the stop channel closed");
    // The runtime holds the executor weakly: this drop is the last, and cancels its tasks.
    drop(ex);
    let after = within(
        "a call after the executor was dropped",
        client.exists("/").into_future(),
    );
    assert!(
        matches!(after, Err(zk_async_std::Error::Closed)),
        "{after:?}"
    );
    let restarted = within("restart", client.restart());
    assert!(
        matches!(&restarted, Err(zk_async_std::Error::Runtime(m)) if m.contains("dropped")),
        "{restarted:?}"
    );
}

#[test]
fn a_driver_that_runs_and_finds_no_server_is_a_connect_failure_not_the_runtimes() {
    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let ex = Arc::new(Executor::new());
    smol::block_on(ex.run(async {
        let refused = zk_async_std::smol::builder_on(&ex, &format!("127.0.0.1:{port}"))
            .connect_timeout(Duration::from_millis(300))
            .connect()
            .await
            .expect_err("nothing listens there");
        assert!(
            matches!(&refused, zk_async_std::Error::ConnectFailed { causes } if !causes.is_empty()),
            "{refused}"
        );
        // A zero timeout fires before the caller first yields, before the driver (on this
        // thread) could run: that is no reason to blame the runtime (nor is any timeout
        // shorter than a second, on any runtime).
        let zero = zk_async_std::smol::builder_on(&ex, &common::zk39_connect_string())
            .connect_timeout(Duration::ZERO)
            .connect()
            .await
            .expect_err("no time to connect");
        assert!(
            matches!(&zero, zk_async_std::Error::ConnectFailed { .. }),
            "{zero}"
        );
    }));
}
