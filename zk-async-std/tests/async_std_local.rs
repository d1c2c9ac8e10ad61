//! The client on async-std with its tasks on the thread that starts them
//! (`AsyncStdRuntime::local`, `builder_local`), against a real ZooKeeper 3.9: in `block_on` its
//! driver runs with the program's calls on that thread; started from a task on async-std's pool
//! it runs on that pool thread; started where async-std runs no executor, it runs on the pool
//! instead of where nothing would run it.

mod common;

use std::future::IntoFuture;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use zk_async_std::{AsyncStdRuntime, Runtime};

/// How long a wait that must end may take before the test fails instead of hanging.
const PATIENCE: Duration = Duration::from_secs(20);

/// Spawns a task with [`AsyncStdRuntime::local`] and returns the thread it ran on, and whether
/// it had run before `before_yield` returned (called right after the spawn, on this thread).
async fn probe(before_yield: impl FnOnce()) -> (thread::ThreadId, bool) {
    let (tx, rx) = async_std::channel::bounded(1);
    let ran = Arc::new(AtomicBool::new(false));
    let flag = ran.clone();
    AsyncStdRuntime::local()
        .spawn(Box::pin(async move {
            flag.store(true, Ordering::SeqCst);
            let _ = tx.send(thread::current().id()).await;
        }))
        .expect("spawn");
    before_yield();
    let early = ran.load(Ordering::SeqCst);
    let id = common::within(PATIENCE, rx.recv())
        .await
        .expect("the spawned task ran in time")
        .expect("the spawned task sent its thread");
    (id, early)
}

/// Connects with [`zk_async_std::builder_local`] and runs
/// [`common::pipelined_reads_and_a_watch`] under `root`, the writer on async-std's pool.
async fn exercise(cs: &str, root: &str) {
    let client = zk_async_std::builder_local(cs)
        .connect()
        .await
        .expect("connect");
    let other = zk_async_std::connect(cs).await.expect("connect the writer");
    common::pipelined_reads_and_a_watch(client, other, root).await;
}

#[test]
fn in_block_on_the_clients_tasks_run_with_its_calls_on_the_calling_thread() {
    let cs = common::zk39_connect_string();
    let this_thread = thread::current().id();
    async_std::task::block_on(async {
        // What the runtime spawns (the driver among them) runs here.
        let (ran_on, _) = probe(|| ()).await;
        assert_eq!(ran_on, this_thread);

        common::within(PATIENCE, exercise(&cs, "/async-std-local"))
            .await
            .expect("the client's work ended in time");
    });
}

#[test]
fn from_a_task_on_the_pool_the_client_runs_on_that_pool_thread() {
    let cs = common::zk39_connect_string();
    async_std::task::block_on(async_std::task::spawn(async move {
        // The task may move between pool threads; what it spawns stays on the one polling it
        // now, which runs async-std's executor for its thread as well as the pool's: while
        // this thread is busy, nobody else runs the spawned task (on the pool, another worker
        // would), and connect, pipelined calls, a watch and close must all end there.
        let here = thread::current().id();
        let (ran_on, early) = probe(|| thread::sleep(Duration::from_millis(300))).await;
        assert!(!early, "another thread ran the task while its own was busy");
        assert_eq!(ran_on, here);

        common::within(PATIENCE, exercise(&cs, "/async-std-local-pool"))
            .await
            .expect("the client's work ended in time");
    }));
}

#[test]
fn started_where_async_std_runs_no_executor_the_client_runs_on_the_pool() {
    let cs = common::zk39_connect_string();
    // Another runtime's `block_on` on a thread of its own: async-std's executor never runs
    // here, so what the client starts here goes to async-std's pool instead, and works.
    thread::spawn(move || {
        futures_lite::future::block_on(async {
            let (ran_on, _) = probe(|| ()).await;
            assert_ne!(ran_on, thread::current().id());
            common::within(PATIENCE, exercise(&cs, "/async-std-local-elsewhere"))
                .await
                .expect("the client's work ended in time");
        })
    })
    .join()
    .expect("the connecting thread");
}

#[test]
fn a_local_client_is_usable_from_other_threads_while_its_own_runs_the_executor() {
    let cs = common::zk39_connect_string();
    let (client_tx, client_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = async_std::channel::bounded::<()>(1);
    // The client's home thread: connects, then runs async-std's executor until told to stop.
    let home = thread::spawn(move || {
        async_std::task::block_on(async move {
            let client = zk_async_std::builder_local(&cs)
                .connect()
                .await
                .expect("connect");
            client_tx.send(client).expect("hand the client over");
            let _ = stop_rx.recv().await;
        })
    });
    let client = client_rx.recv().expect("the client");
    // Called from this thread, pipelined, under another runtime's `block_on`: the driver on the
    // home thread reads the replies.
    let pipelined = futures_lite::future::block_on(common::within(PATIENCE, async {
        let exists: Vec<_> = (0..100).map(|_| client.exists("/")).collect();
        for e in exists {
            assert!(e.await.expect("exists").is_some());
        }
    }));
    assert!(
        pipelined.is_some(),
        "the calls did not end within {PATIENCE:?}"
    );
    let closed =
        futures_lite::future::block_on(common::within(PATIENCE, client.close().into_future()));
    assert!(closed.is_some(), "close did not end within {PATIENCE:?}");
    drop(stop_tx);
    home.join().expect("the home thread");
}
