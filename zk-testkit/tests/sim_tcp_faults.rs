//! SimTcpServer's fault API as a user's test meets it: a real client (zk-tokio, and one
//! blocking client) on loopback sockets, and each fault's effect on the session as the client
//! reports it. Nothing here waits on the clock to decide anything: every step awaits a state
//! change, a reply, or a condition of the server; the 30 s limit only turns a hang into a
//! failure.

use std::io::Read;
use std::net::TcpStream;
use std::sync::mpsc;
use std::time::Duration;

use futures_lite::StreamExt;
use zk_testkit::sim::{FaultError, Node, SimConfig, SimTcpServer};
use zk_tokio::{AddWatchMode, Client, Error, LostReason, OpCode, ServerVersion, SessionState};

/// Long enough for any step on a loaded machine; a step that takes longer hangs.
const LIMIT: Duration = Duration::from_secs(30);

async fn connect(connect_string: &str, session_timeout: Duration) -> Client {
    zk_tokio::builder(connect_string)
        .session_timeout(session_timeout)
        .connect()
        .await
        .expect("connect to the SimTcpServer")
}

/// The states `states` yields up to and including the first one `want` accepts.
async fn until(
    states: &mut zk_tokio::StateChanges,
    want: impl Fn(SessionState) -> bool,
) -> Vec<SessionState> {
    let mut seen = Vec::new();
    let wait = async {
        while let Some(s) = states.next().await {
            seen.push(s);
            if want(s) {
                return true;
            }
        }
        false
    };
    let found = tokio::time::timeout(LIMIT, wait).await;
    assert!(
        matches!(found, Ok(true)),
        "the wanted state never came; saw {seen:?}"
    );
    seen
}

fn port_of(connect_string: &str, server: usize) -> u16 {
    connect_string
        .split(',')
        .nth(server)
        .and_then(|h| h.rsplit(':').next())
        .and_then(|p| p.parse().ok())
        .expect("a port")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_closes_a_nodes_connection_and_the_client_resumes_its_session() {
    let server = SimTcpServer::start(SimConfig::default()).unwrap();
    let client = connect(
        &server.connect_string_for(Node(1)).unwrap(),
        Duration::from_secs(10),
    )
    .await;
    let bystander = connect(&server.connect_string(), Duration::from_secs(10)).await;
    let sid = client.client_id().unwrap().id;
    let before = server.connections();
    let on = before
        .iter()
        .find(|c| c.session_id == Some(sid))
        .expect("the client's connection is listed with its session");
    assert_eq!(on.node, Node(1));
    let bystander_conn = before
        .iter()
        .find(|c| c.node == Node(0))
        .map(|c| c.id)
        .expect("the bystander's connection");

    let mut states = client.state_changes();
    server.cut(Node(1));
    let seen = until(&mut states, |s| s == SessionState::Connected).await;
    assert_eq!(seen, [SessionState::Suspended, SessionState::Connected]);
    assert_eq!(client.client_id().unwrap().id, sid, "the same session");
    client.create("/after-cut", "x").await.unwrap();
    // Other nodes' connections are left alone.
    assert!(server.connections().iter().any(|c| c.id == bystander_conn));
    assert!(bystander.exists("/after-cut").await.unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partition_refuses_new_connections_until_heal() {
    let server = SimTcpServer::start(SimConfig::default()).unwrap();
    let cs = server.connect_string_for(Node(1)).unwrap();
    assert_eq!(
        server.connect_string_for(Node(1)).unwrap(),
        cs,
        "one set per node"
    );
    assert_ne!(cs, server.connect_string());
    let client = connect(&cs, Duration::from_secs(10)).await;
    let sid = client.client_id().unwrap().id;
    let mut states = client.state_changes();

    server.partition(Node(1));
    until(&mut states, |s| s == SessionState::Suspended).await;
    // A dial through the partitioned node's listener is closed as soon as it opens.
    let mut dial = TcpStream::connect(("127.0.0.1", port_of(&cs, 0))).unwrap();
    dial.set_read_timeout(Some(LIMIT)).unwrap();
    let mut rest = Vec::new();
    assert!(
        dial.read_to_end(&mut rest).is_ok(),
        "closed by the partition"
    );
    assert!(rest.is_empty());

    server.heal(Node(1));
    until(&mut states, |s| s == SessionState::Connected).await;
    assert_eq!(client.client_id().unwrap().id, sid, "the same session");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blackhole_suspends_the_client_after_its_read_timeout_and_heal_resumes_the_session() {
    let server = SimTcpServer::start(SimConfig::default()).unwrap();
    // 6 s: the client gives up on the link after 4 s, the server keeps the session for 6 s.
    let client = connect(
        &server.connect_string_for(Node(1)).unwrap(),
        Duration::from_secs(6),
    )
    .await;
    let sid = client.client_id().unwrap().id;
    client.create("/frozen", "x").await.unwrap();
    let mut states = client.state_changes();

    server.blackhole(Node(1));
    let c = client.clone();
    let in_flight = tokio::spawn(async move { c.get_data("/frozen").await });
    let seen = until(&mut states, |s| s == SessionState::Suspended).await;
    assert_eq!(seen, [SessionState::Suspended], "no close was seen first");
    // The request was in the black hole when the link was given up: it may have applied.
    let r = tokio::time::timeout(LIMIT, in_flight)
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(r, Err(Error::ConnectionLoss)), "{r:?}");
    assert!(server
        .connections()
        .iter()
        .any(|c| c.node == Node(1) && c.held));

    server.heal(Node(1));
    until(&mut states, |s| s == SessionState::Connected).await;
    assert_eq!(client.client_id().unwrap().id, sid, "the same session");
    client.get_data("/frozen").await.unwrap();
}

/// Waits (by looking, not by guessing a delay) until a request sent into a fault has reached
/// the server and is held there.
async fn until_held(server: &SimTcpServer) {
    tokio::time::timeout(LIMIT, async {
        while !server
            .connections()
            .iter()
            .any(|c| c.held && c.held_from_client > 0)
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the request reaches the server and is held");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heal_delivers_what_the_blackhole_held_on_the_same_connection() {
    let server = SimTcpServer::start(SimConfig::default()).unwrap();
    let client = connect(
        &server.connect_string_for(Node(1)).unwrap(),
        Duration::from_secs(10),
    )
    .await;
    let conn = server.connections()[0].id;
    let mut states = client.state_changes();

    server.blackhole(Node(1));
    let c = client.clone();
    let waiting = tokio::spawn(async move { c.create("/late", "x").await });
    until_held(&server).await;
    assert!(!waiting.is_finished(), "nothing gets through a black hole");
    assert!(server.with_model(|m| m.node("/late").is_none()));

    // Healed before the client's read timeout: the request arrives late, the reply too.
    server.heal(Node(1));
    tokio::time::timeout(LIMIT, waiting)
        .await
        .expect("the held request is answered")
        .unwrap()
        .unwrap();
    assert_eq!(server.connections()[0].id, conn, "the same connection");
    assert_eq!(client.state(), SessionState::Connected);
    assert!(
        futures_lite::future::poll_once(states.next())
            .await
            .is_none(),
        "no state change"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expire_session_ends_the_session_and_its_ephemerals() {
    let server = SimTcpServer::start(SimConfig::default()).unwrap();
    let client = connect(&server.connect_string(), Duration::from_secs(10)).await;
    let sid = client.client_id().unwrap().id;
    assert_eq!(server.session_ids(), [sid]);
    client.create("/mine", "x").ephemeral().await.unwrap();
    let mut states = client.state_changes();

    server.expire_session(sid).unwrap();
    let seen = until(&mut states, |s| s == SessionState::Connected).await;
    assert!(
        seen.contains(&SessionState::Lost(LostReason::Expired)),
        "{seen:?}"
    );
    assert!(server.with_model(|m| m.node("/mine").is_none()));
    // The client started a new session (renew_session_after_expiry is on by default).
    assert_ne!(client.client_id().unwrap().id, sid);
    assert_eq!(
        server.expire_session(sid),
        Err(FaultError::NoSuchSession { session_id: sid })
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_holds_requests_until_resume_and_keeps_the_connection() {
    let server = SimTcpServer::start(SimConfig::default()).unwrap();
    let client = connect(&server.connect_string(), Duration::from_secs(10)).await;
    client.create("/p", "1").await.unwrap();
    let conn = server.connections()[0].id;
    let mut states = client.state_changes();

    server.pause(0).unwrap();
    let c = client.clone();
    let waiting = tokio::spawn(async move { c.get_data("/p").await });
    until_held(&server).await;
    assert!(!waiting.is_finished(), "a paused server answers nothing");

    server.resume(0).unwrap();
    let (data, _) = tokio::time::timeout(LIMIT, waiting)
        .await
        .expect("the held request is answered")
        .unwrap()
        .unwrap();
    assert_eq!(&data[..], b"1");
    assert_eq!(server.connections()[0].id, conn, "the same connection");
    assert_eq!(client.state(), SessionState::Connected);
    assert!(
        futures_lite::future::poll_once(states.next())
            .await
            .is_none(),
        "no state change"
    );
    assert_eq!(
        server.pause(1),
        Err(FaultError::NoSuchServer {
            server: 1,
            servers: 1
        })
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_moves_the_client_to_another_server_and_restart_serves_again() {
    let server = SimTcpServer::start(SimConfig {
        servers: 2,
        ..SimConfig::default()
    })
    .unwrap();
    let ports = server.ports();
    let client = connect(&server.connect_string(), Duration::from_secs(10)).await;
    let sid = client.client_id().unwrap().id;
    let on = ports
        .iter()
        .position(|p| Some(*p) == client.current_host().map(|h| h.port))
        .unwrap();
    let mut states = client.state_changes();

    server.crash(on).unwrap();
    let seen = until(&mut states, |s| s == SessionState::Connected).await;
    assert_eq!(seen, [SessionState::Suspended, SessionState::Connected]);
    assert_eq!(client.client_id().unwrap().id, sid, "the session moved");
    assert_ne!(client.current_host().map(|h| h.port), Some(ports[on]));

    server.restart(on).unwrap();
    let again = connect(&format!("127.0.0.1:{}", ports[on]), Duration::from_secs(10)).await;
    again.get_children("/").await.unwrap();
    assert_eq!(
        server.crash(2),
        Err(FaultError::NoSuchServer {
            server: 2,
            servers: 2
        })
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lagging_server_serves_stale_reads_until_it_catches_up() {
    let server = SimTcpServer::start(SimConfig {
        servers: 2,
        ..SimConfig::default()
    })
    .unwrap();
    let ports = server.ports();
    let writer = connect(&format!("127.0.0.1:{}", ports[0]), Duration::from_secs(10)).await;
    let reader = connect(&format!("127.0.0.1:{}", ports[1]), Duration::from_secs(10)).await;
    writer.create("/lag", "1").await.unwrap();

    server.set_lagging(1, true).unwrap();
    writer.set_data("/lag", "2").await.unwrap();
    let (stale, _) = reader.get_data("/lag").await.unwrap();
    assert_eq!(&stale[..], b"1", "server 1 lags");
    reader.sync("/lag").await.unwrap();
    let (fresh, _) = reader.get_data("/lag").await.unwrap();
    assert_eq!(&fresh[..], b"2", "sync caught it up");

    writer.set_data("/lag", "3").await.unwrap();
    server.set_lagging(1, false).unwrap();
    let (fresh, _) = reader.get_data("/lag").await.unwrap();
    assert_eq!(&fresh[..], b"3");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_server_version_refuses_newer_operations_with_a_typed_error() {
    let server = SimTcpServer::start(SimConfig {
        version: (3, 5, 9),
        ..SimConfig::default()
    })
    .unwrap();
    let client = connect(&server.connect_string(), Duration::from_secs(10)).await;
    assert_eq!(
        client.server_version().await.unwrap(),
        ServerVersion::new(3, 5, 9)
    );
    // The client's version probe finds 3.5.9: nothing is sent.
    let r = client.add_watch("/", AddWatchMode::Persistent).await;
    assert!(
        matches!(
            r,
            Err(Error::Unsupported { op: OpCode::AddWatch, needs, server })
                if needs == ServerVersion::new(3, 6, 0) && server == ServerVersion::new(3, 5, 9)
        ),
        "{r:?}"
    );
    // A client told the server is newer sends it, and the server answers as 3.5.9 does.
    let fooled = zk_tokio::builder(&server.connect_string())
        .server_version(ServerVersion::new(3, 9, 0))
        .connect()
        .await
        .unwrap();
    let r = fooled.add_watch("/", AddWatchMode::Persistent).await;
    assert!(matches!(r, Err(Error::Unimplemented)), "{r:?}");
}

#[test]
fn a_blocking_client_sees_a_cut_and_an_expiry() {
    let server = SimTcpServer::start(SimConfig::default()).unwrap();
    let client = zk_blocking::Client::builder(&server.connect_string_for(Node(3)).unwrap())
        .session_timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let _listener = client
        .add_listener(move |s| {
            let _ = tx.send(s);
        })
        .unwrap();
    client.start().unwrap();
    let until = |want: SessionState| {
        let mut seen = Vec::new();
        loop {
            let s = rx.recv_timeout(LIMIT).unwrap_or_else(|_| {
                panic!("{want:?} never came; saw {seen:?}");
            });
            seen.push(s);
            if s == want {
                return seen;
            }
        }
    };
    until(SessionState::Connected);
    let sid = client.client_id().unwrap().id;

    server.cut(Node(3));
    assert_eq!(
        until(SessionState::Connected),
        [SessionState::Suspended, SessionState::Connected]
    );
    assert_eq!(client.client_id().unwrap().id, sid);

    server.expire_session(sid).unwrap();
    until(SessionState::Lost(LostReason::Expired));
}

/// A blocking pipeline cut before the server read any of it: zk-blocking writes a lone request
/// at once and leaves those made behind it in its buffer for the next wait or driver turn, so
/// the cut finds one request sent and the rest unsent. Every one of them still resolves, with
/// ConnectionLoss; the session resumes; none was applied; and a second pipeline on the same
/// session all succeeds.
#[test]
fn a_blocking_pipeline_cut_before_the_server_reads_resolves_every_request() {
    let server = SimTcpServer::start(SimConfig::default()).unwrap();
    let client = zk_blocking::Client::builder(&server.connect_string_for(Node(3)).unwrap())
        .session_timeout(Duration::from_secs(10))
        .connect()
        .unwrap();
    let sid = client.client_id().unwrap().id;
    client.ensure_path("/p").unwrap();
    // The default model has one server, index 0.
    server.pause(0).unwrap();
    let first: Vec<_> = (0..2000)
        .map(|_| client.create("/p/n-", "").sequential().run_async())
        .collect();
    server.cut(Node(3));
    server.resume(0).unwrap();
    for (i, pending) in first.into_iter().enumerate() {
        let result = pending
            .get_timeout(LIMIT)
            .unwrap_or_else(|_| panic!("request {i} of the cut pipeline never resolved"));
        match result {
            Err(zk_blocking::Error::ConnectionLoss) => {}
            other => panic!("request {i}: {other:?}, not ConnectionLoss"),
        }
    }
    let second: Vec<_> = (0..200)
        .map(|_| client.create("/p/m-", "").sequential().run_async())
        .collect();
    for (i, pending) in second.into_iter().enumerate() {
        let result = pending
            .get_timeout(LIMIT)
            .unwrap_or_else(|_| panic!("request {i} after the resume never resolved"));
        result.unwrap_or_else(|e| panic!("request {i} after the resume: {e}"));
    }
    assert_eq!(client.client_id().unwrap().id, sid, "the session resumed");
    assert_eq!(client.get_children("/p").run().unwrap().len(), 200);
    client.close();
}
