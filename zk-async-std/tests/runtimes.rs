//! The client on async-std and on smol, against SimServer on loopback TCP: the same operations
//! under each runtime's executor and `block_on`.

use std::time::Duration;

use zk_async_std::{AddWatchMode, Error, EventType, SessionState};
use zk_testkit::sim::{SimConfig, SimTcpServer};

fn server() -> SimTcpServer {
    SimTcpServer::start(SimConfig::default()).expect("start SimTcpServer")
}

/// Creates, reads, writes, watches and deletes under `root` on any runtime of this crate.
async fn exercise(client: &zk_client::Client, root: &str) {
    assert!(client.is_connected());
    assert!(client.client_id().is_some());

    let base = format!("{root}/a/b");
    let path = client
        .create(&format!("{base}/seq-"), "one")
        .sequential()
        .make_parents()
        .await
        .expect("create with parents");
    assert!(path.starts_with(&format!("{base}/seq-")), "{path}");

    let (data, stat) = client.get_data(&path).await.expect("get_data");
    assert_eq!(&data[..], b"one");
    assert_eq!(stat.version, 0);

    // A one-shot watch fires on the next write, on this runtime's timers and sockets.
    let (_, _, watch) = client
        .get_data(&path)
        .watch()
        .await
        .expect("get_data watch");
    let stat = client.set_data(&path, "two").version(0).await.expect("set");
    assert_eq!(stat.version, 1);
    let event = watch.await.expect("watch fires");
    assert_eq!(event.event_type, EventType::NodeDataChanged);
    assert_eq!(event.path, path);

    assert!(matches!(
        client.set_data(&path, "x").version(0).await,
        Err(Error::BadVersion { .. })
    ));
    assert_eq!(client.get_children(&base).await.expect("children").len(), 1);
    assert!(client.exists(&path).await.expect("exists").is_some());

    // A persistent watch, and the client's own timer.
    let mut events = client
        .add_watch(root, AddWatchMode::PersistentRecursive)
        .await
        .expect("add_watch");
    client.sleep(Duration::from_millis(20)).await;
    client
        .delete(&format!("{root}/a"))
        .recursive()
        .await
        .expect("recursive delete");
    let event = futures_lite::StreamExt::next(&mut events)
        .await
        .expect("an event");
    assert_eq!(
        event.event().map(|e| e.event_type),
        Some(EventType::NodeDeleted)
    );
    assert!(client.exists(&path).await.expect("exists").is_none());

    assert_eq!(client.command("ruok").await.expect("ruok"), "imok");
}

async fn watch_state_until_lost(client: &zk_client::Client) {
    let mut changes = client.state_changes();
    client.close().await;
    assert!(matches!(client.state(), SessionState::Lost(_)));
    // The stream ends once the driver has stopped.
    while futures_lite::StreamExt::next(&mut changes).await.is_some() {}
    assert!(matches!(
        client.get_data("/").await,
        Err(Error::Closed | Error::SessionExpired)
    ));
}

#[async_std::test]
async fn async_std_test_attribute() {
    let sim = server();
    let client = zk_async_std::connect(&sim.connect_string())
        .await
        .expect("connect");
    exercise(&client, "/async-std").await;
    watch_state_until_lost(&client).await;
}

#[test]
fn async_std_block_on() {
    let sim = server();
    async_std::task::block_on(async {
        let plain = zk_async_std::connect(&sim.connect_string())
            .await
            .expect("connect");
        plain.ensure_path("/chroot").await.expect("ensure_path");
        plain.close().await;
        let client = zk_async_std::ClientBuilder::new(
            zk_async_std::AsyncStdRuntime::default().shared(),
            &format!("{}/chroot", sim.connect_string()),
        )
        .session_timeout(Duration::from_secs(4))
        .connect()
        .await
        .expect("connect");
        assert_eq!(client.chroot().as_deref(), Some("/chroot"));
        exercise(&client, "/x").await;
        client.close().await;
    });
    // The chroot held everything.
    assert!(sim.with_model(|m| m.node("/chroot/x").is_some()));
}

#[test]
fn smol_block_on() {
    let sim = server();
    smol::block_on(async {
        let client = zk_async_std::smol::connect(&sim.connect_string())
            .await
            .expect("connect");
        exercise(&client, "/smol").await;
        watch_state_until_lost(&client).await;
    });
}

#[test]
fn smol_builder_and_restart() {
    let sim = server();
    smol::block_on(async {
        let client = zk_async_std::smol::ClientBuilder::new(
            zk_async_std::SmolRuntime::default().shared(),
            &sim.connect_string(),
        )
        .connect_timeout(Duration::from_secs(10))
        .connect()
        .await
        .expect("connect");
        let first = client.client_id().expect("session id");
        client
            .create("/eph", "")
            .ephemeral()
            .await
            .expect("ephemeral");
        client.restart().await.expect("restart");
        let second = client.client_id().expect("session id");
        assert_ne!(first.id, second.id);
        // The old session's ephemeral went with it.
        assert!(client.exists("/eph").await.expect("exists").is_none());
        client.close().await;
    });
}

/// A host name is resolved on every connect, and each address is tried: `localhost` may resolve
/// to ::1 first, where the server does not listen.
#[test]
fn host_names_are_resolved_and_every_address_tried() {
    let sim = server();
    let port = sim.ports()[0];
    smol::block_on(async {
        let client = zk_async_std::smol::connect(&format!("localhost:{port}"))
            .await
            .expect("connect via localhost");
        assert!(client.exists("/zookeeper").await.expect("exists").is_some());
        client.close().await;
    });
}

/// Nothing listens: the connect fails in time, naming the host and why, instead of hanging or
/// panicking.
#[test]
fn connect_to_nothing_names_the_refusal() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    async_std::task::block_on(async {
        let r = zk_async_std::builder(&format!("127.0.0.1:{port}"))
            .connect_timeout(Duration::from_millis(500))
            .connect()
            .await;
        match &r {
            Err(Error::ConnectFailed { causes }) => {
                assert!(
                    causes
                        .iter()
                        .any(|c| c.host.port == port && c.cause.to_lowercase().contains("refused")),
                    "{r:?}"
                );
                let text = r.as_ref().map(|_| ()).unwrap_err().to_string();
                assert!(text.contains(&format!("127.0.0.1:{port}")), "{text}");
            }
            other => panic!("expected ConnectFailed, got {other:?}"),
        }
    });
}

/// A host name that does not resolve is named as such, not as a timeout.
#[test]
fn connect_to_an_unknown_host_names_the_lookup() {
    smol::block_on(async {
        let r = zk_async_std::smol::builder("no-such-host.invalid:2181")
            .connect_timeout(Duration::from_millis(1500))
            .connect()
            .await;
        match &r {
            Err(Error::ConnectFailed { causes }) => assert!(
                causes.iter().any(|c| c.host.host == "no-such-host.invalid"),
                "{r:?}"
            ),
            other => panic!("expected ConnectFailed, got {other:?}"),
        }
    });
}
