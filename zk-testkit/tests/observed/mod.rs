//! What both observability test binaries share: a ZooKeeper 3.9 server and one client session
//! that makes two requests (a create that succeeds, a getData that fails with NoNode).

use zk_testkit::real::{Ensemble, EnsembleOptions, ZkVersion};

/// A standalone ZooKeeper 3.9 server; panics with the reason if it does not start.
pub fn server() -> Ensemble {
    Ensemble::start(EnsembleOptions::standalone(ZkVersion::V3_9))
        .unwrap_or_else(|e| panic!("ZooKeeper 3.9 did not start: {e}"))
}

/// A current-thread tokio runtime, so every span and metric is made on the caller's thread.
pub fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// One create, one getData of a missing node; returns after the client closed.
pub async fn two_requests(connect: &str) {
    let c = zk_tokio::connect(connect).await.expect("connect");
    c.create("/obs", "x").await.expect("create /obs");
    let missing = c.get_data("/obs-missing").await;
    assert!(
        matches!(missing, Err(zk_client::Error::NoNode { .. })),
        "{missing:?}"
    );
    c.close().await;
}
