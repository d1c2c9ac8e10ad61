//! A client built on a thread outside any tokio runtime: without a handle it fails with
//! `Error::Runtime` (never a panic); with `TokioRuntime::with_handle` it works from that thread,
//! its driver running on the handle's runtime.

use std::time::Duration;

use zk_testkit::sim::{SimConfig, SimTcpServer};
use zk_tokio::{ClientBuilder, Error, TokioRuntime};

#[test]
fn without_a_runtime_start_is_an_error_not_a_panic() {
    let sim = SimTcpServer::start(SimConfig::default()).expect("SimServer");
    let builder = zk_tokio::builder(&sim.connect_string());
    let r = builder.start();
    assert!(matches!(r, Err(Error::Runtime(_))), "{r:?}");
    let r = futures_lite::future::block_on(zk_tokio::connect(&sim.connect_string()));
    assert!(matches!(r, Err(Error::Runtime(_))), "{r:?}");
}

#[test]
fn with_a_handle_the_client_works_from_any_thread() {
    let sim = SimTcpServer::start(SimConfig::default()).expect("SimServer");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    // This thread is not a runtime thread: everything below is driven by futures-lite.
    let client = futures_lite::future::block_on(
        ClientBuilder::new(
            TokioRuntime::with_handle(rt.handle().clone()).shared(),
            &sim.connect_string(),
        )
        .connect_timeout(Duration::from_secs(10))
        .connect(),
    )
    .expect("connect from outside the runtime");
    futures_lite::future::block_on(async {
        client.create("/outside", "x").await.expect("create");
        let (data, _) = client.get_data("/outside").await.expect("get");
        assert_eq!(&data[..], b"x");
        // Timers made here (off the runtime) work too.
        client.sleep(Duration::from_millis(10)).await;
        assert_eq!(client.command("ruok").await.expect("ruok"), "imok");
        client.close().await;
    });
}
