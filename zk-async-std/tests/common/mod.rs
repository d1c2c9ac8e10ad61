//! What this crate's test binaries share.

use std::future::Future;
use std::sync::OnceLock;
use std::time::Duration;

use zk_testkit::real::{Ensemble, EnsembleOptions, ZkVersion};

/// The connect string of one standalone ZooKeeper 3.9 shared by the test binary, started on
/// first use. Panics naming the cause if it cannot start.
// Not every test binary that shares this module calls it.
#[allow(dead_code)]
pub fn zk39_connect_string() -> String {
    static ZK39: OnceLock<Ensemble> = OnceLock::new();
    ZK39.get_or_init(|| {
        Ensemble::start(EnsembleOptions::standalone(ZkVersion::V3_9))
            .unwrap_or_else(|e| panic!("starting ZooKeeper 3.9: {e}"))
    })
    .connect_string()
}

/// `fut`'s output, or `None` after `limit`: a bound that makes a wait that must end fail its
/// test instead of hanging it.
pub async fn within<T>(limit: Duration, fut: impl Future<Output = T>) -> Option<T> {
    futures_lite::future::or(async { Some(fut.await) }, async {
        smol::Timer::after(limit).await;
        None
    })
    .await
}

/// Under `root` (emptied first): 200 pipelined reads on `client`, then a data watch on `client`
/// that `other` fires; closes both and checks `client` is closed. Panics naming the step that
/// failed.
// Not every test binary that shares this module calls it.
#[allow(dead_code)]
pub async fn pipelined_reads_and_a_watch(
    client: zk_async_std::Client,
    other: zk_async_std::Client,
    root: &str,
) {
    client
        .delete(root)
        .recursive()
        .await
        .expect("clear the root");
    client.ensure_path(root).await.expect("ensure_path");

    // Pipelined: every request goes out when its future is made.
    let gets: Vec<_> = (0..200).map(|_| client.get_data(root)).collect();
    for get in gets {
        let (data, _) = get.await.expect("get_data");
        assert!(data.is_empty());
    }

    let (_, _, watch) = client.get_data(root).watch().await.expect("watch");
    other.set_data(root, "x").await.expect("set_data");
    let event = watch.await.expect("the watch fires");
    assert_eq!(event.event_type, zk_async_std::EventType::NodeDataChanged);
    other.close().await;

    client.delete(root).recursive().await.expect("clean up");
    client.close().await;
    assert!(!client.is_connected());
}
