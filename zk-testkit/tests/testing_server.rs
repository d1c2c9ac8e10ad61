//! A user's integration test, written only against zk-testkit's published API
//! (`zk_testkit::testing`) and zk-tokio: what a crate depending on both would write in its own
//! tests/ folder. The server is real; killing it must leave the client suspended, and restarting
//! it must let the client resume the same session with its ephemeral node.

use std::time::Duration;

use futures_lite::StreamExt;
use zk_testkit::testing::{TestingCluster, TestingServer};
use zk_tokio::{Client, SessionState, StateChanges};

/// A guard against a hang, not a timing assertion: every wait below ends on an event.
const LIMIT: Duration = Duration::from_secs(60);

/// Waits for the next state the test expects, skipping others; fails at the end of the stream.
async fn wait_for(states: &mut StateChanges, want: fn(SessionState) -> bool) -> SessionState {
    let found = tokio::time::timeout(LIMIT, async {
        while let Some(state) = states.next().await {
            if want(state) {
                return Some(state);
            }
        }
        None
    })
    .await;
    match found {
        Ok(Some(state)) => state,
        Ok(None) => panic!("the state stream ended"),
        Err(_) => panic!("no such state within {LIMIT:?}"),
    }
}

async fn connect(connect_string: &str) -> Client {
    zk_tokio::builder(connect_string)
        .session_timeout(Duration::from_secs(20))
        .connect()
        .await
        .expect("the client connects to the testing server")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_survives_a_killed_and_restarted_testing_server() {
    let mut server = TestingServer::start().expect("a ZooKeeper server starts");
    let client = connect(&server.connect_string()).await;
    client.create("/app", "hello").await.expect("create /app");
    client
        .create("/app/worker", "me")
        .ephemeral()
        .await
        .expect("create the ephemeral /app/worker");
    let (data, _) = client.get_data("/app").await.expect("read /app");
    assert_eq!(&data[..], b"hello");
    let session = client.client_id().expect("a session");

    let mut states = client.state_changes();
    // The kit's calls block while the JVM stops and starts: keep them off the async workers.
    tokio::task::block_in_place(|| server.kill()).expect("kill -9 the server");
    assert!(!server.is_running());
    wait_for(&mut states, |s| s == SessionState::Suspended).await;

    tokio::task::block_in_place(|| server.restart()).unwrap_or_else(|e| {
        panic!("restart the server: {e}\n{}", server.log_tail(40));
    });
    wait_for(&mut states, SessionState::is_connected).await;

    // The same session, resumed on the restarted server: its ephemeral node lives on.
    assert_eq!(client.client_id(), Some(session));
    let (data, _) = client
        .get_data("/app/worker")
        .await
        .expect("read the ephemeral");
    assert_eq!(&data[..], b"me");
    client
        .set_data("/app", "again")
        .await
        .expect("write after the restart");
    client.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_fails_over_when_a_testing_cluster_loses_its_leader() {
    let mut cluster = TestingCluster::start().expect("a 3-server ZooKeeper quorum starts");
    assert_eq!(cluster.size(), 3);
    let leader = cluster.leader().expect("the quorum has a leader");
    // Connected to the leader alone first, so that killing it surely cuts this client.
    let at_leader = cluster
        .server_address(leader)
        .expect("the leader's address");
    let client = connect(&at_leader).await;
    client
        .create("/shared", "v1")
        .await
        .expect("create /shared");
    client
        .set_hosts(&cluster.connect_string())
        .expect("use every server");

    let mut states = client.state_changes();
    tokio::task::block_in_place(|| cluster.kill(leader)).expect("kill the leader");
    wait_for(&mut states, |s| s == SessionState::Suspended).await;
    tokio::task::block_in_place(|| cluster.wait_for_quorum()).expect("a new leader");
    wait_for(&mut states, SessionState::is_connected).await;
    let (data, _) = client
        .get_data("/shared")
        .await
        .expect("read after failover");
    assert_eq!(&data[..], b"v1");

    tokio::task::block_in_place(|| cluster.restart(leader)).expect("the old leader rejoins");
    assert!(cluster.is_running(leader));
    client.close().await;
}
