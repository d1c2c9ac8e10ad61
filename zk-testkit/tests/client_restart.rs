//! `Client::restart()` (kazoo's `restart`): a new session on the same handle must not be touched
//! by what the old session left behind: watch handles and reply futures of the old session,
//! dropped or polled after the restart, never reach the new session's watchers or replies.
//! (Request ids, which also name watchers, once started again from 1 in the new session: a
//! stale handle dropped after the restart then removed the new session's watcher with its
//! number, and that watch never fired.) SimTcpServer and zk-tokio; the 30 s limit only turns a
//! hang into a failure.

use std::time::Duration;

use zk_testkit::sim::{SimConfig, SimTcpServer};
use zk_tokio::{Client, Error};

const LIMIT: Duration = Duration::from_secs(30);
/// Enough watches on each side that their ids overlap whatever the client numbers internally.
const WATCHES: usize = 20;

/// A SimTcpServer (kept alive by the caller) and a client that created `/a` with data "0".
async fn client_with_a() -> (SimTcpServer, Client) {
    let server = SimTcpServer::start(SimConfig::default()).expect("SimTcpServer");
    let client = zk_tokio::connect(&server.connect_string())
        .await
        .expect("connect");
    client.create("/a", "0").await.expect("create /a");
    (server, client)
}

async fn watches_on(client: &Client, path: &str) -> Vec<zk_tokio::Watch> {
    let mut out = Vec::new();
    for _ in 0..WATCHES {
        let (_, _, w) = client
            .get_data(path)
            .watch()
            .await
            .expect("getData with a watch");
        out.push(w);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_watch_handles_dropped_after_a_restart_leave_the_new_sessions_watches_alone() {
    let (_server, client) = client_with_a().await;
    let old = watches_on(&client, "/a").await;
    let before = client.client_id().expect("a session").id;

    client.restart().await.expect("restart");
    assert_ne!(client.client_id().expect("a new session").id, before);
    let new = watches_on(&client, "/a").await;
    drop(old);

    client.set_data("/a", "1").await.expect("setData");
    for (i, w) in new.into_iter().enumerate() {
        let fired = tokio::time::timeout(LIMIT, w).await;
        assert!(
            matches!(fired, Ok(Ok(_))),
            "watch {i} of the new session did not fire: {fired:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_future_of_the_old_session_resolves_after_a_restart() {
    let (_server, client) = client_with_a().await;
    // Sent when made; not polled until after the restart.
    let stale = std::future::IntoFuture::into_future(client.get_data("/a"));
    client.restart().await.expect("restart");
    let _fresh = watches_on(&client, "/a").await;
    let result = tokio::time::timeout(LIMIT, stale).await;
    assert!(
        matches!(
            result,
            Ok(Ok(_)) | Ok(Err(Error::Closed | Error::ConnectionLoss))
        ),
        "the old session's read resolves with its own outcome: {result:?}"
    );
    if let Ok(Ok((data, _))) = &result {
        assert_eq!(&data[..], b"0");
    }
}
