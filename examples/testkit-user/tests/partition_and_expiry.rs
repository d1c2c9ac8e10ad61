//! The user's `Worker` through a network partition and a session expiry, written only against
//! the published API of zk-testkit (and the client crates), as a user's own tests would be.
//!
//! One scenario, two worlds: `SimWorld` (virtual clock and seeded network, one thread: the run is
//! a function of its seed) and `SimTcpServer` with tokio clients on real loopback sockets. The
//! scenario only needs three faults, so it takes them through a small trait both implement.

use std::sync::Arc;
use std::time::Duration;

use testkit_user::{registration, Worker};
use zk_client::Client;
use zk_testkit::sim::{NetConfig, Node, SimConfig, SimTcpServer, SimWorld};

const SESSION: Duration = Duration::from_secs(3);

/// The faults the scenario injects.
trait Faults: Send + Sync {
    fn partition(&self, node: Node);
    fn heal(&self, node: Node);
    fn expire(&self, session_id: i64);
}

impl Faults for SimWorld {
    fn partition(&self, node: Node) {
        SimWorld::partition(self, node);
    }
    fn heal(&self, node: Node) {
        SimWorld::heal(self, node);
    }
    fn expire(&self, session_id: i64) {
        self.expire_session(session_id);
    }
}

impl Faults for SimTcpServer {
    fn partition(&self, node: Node) {
        SimTcpServer::partition(self, node);
    }
    fn heal(&self, node: Node) {
        SimTcpServer::heal(self, node);
    }
    fn expire(&self, session_id: i64) {
        self.expire_session(session_id)
            .expect("the session is live");
    }
}

/// A worker and what it runs on.
struct Member {
    node: Node,
    client: Client,
    worker: Worker,
}

/// Polls `cond` every 10 ms of the client's clock (virtual in SimWorld) until it holds, checking
/// on the way that the two workers never both believe they lead.
async fn eventually(
    clock: &Client,
    members: &[Member],
    what: &str,
    mut cond: impl FnMut() -> bool,
) {
    for _ in 0..6000 {
        assert!(
            !members.iter().all(|m| m.worker.is_leader()),
            "two workers believe they lead (waiting for: {what})"
        );
        if cond() {
            return;
        }
        clock.sleep(Duration::from_millis(10)).await;
    }
    panic!("never happened: {what}");
}

/// Waits until `name`'s registration exists (`true`) or not, as `observer` reads it.
async fn registered(observer: &Client, members: &[Member], name: &str, want: bool) {
    for _ in 0..6000 {
        assert!(!members.iter().all(|m| m.worker.is_leader()));
        if let Ok(stat) = observer.exists(&registration(name)).await {
            if stat.is_some() == want {
                return;
            }
        }
        observer.sleep(Duration::from_millis(10)).await;
    }
    panic!("{name}'s registration never became {want}");
}

/// Two workers and an observer: the leader is partitioned (it steps down at once, the other
/// takes over once its session has expired, and after the heal it registers again in a new
/// session); then the new leader's session is expired (it steps down, the first leads again,
/// and it registers again).
async fn scenario(faults: Arc<dyn Faults>, members: Vec<Member>, observer: Client) {
    for m in &members {
        registered(&observer, &members, m.worker.name(), true).await;
    }
    eventually(&observer, &members, "a leader", || {
        members.iter().any(|m| m.worker.is_leader())
    })
    .await;
    let (leader, other) = if members[0].worker.is_leader() {
        (&members[0], &members[1])
    } else {
        (&members[1], &members[0])
    };
    let first_session = leader.client.client_id().map(|s| s.id);

    faults.partition(leader.node);
    eventually(
        &observer,
        &members,
        "the partitioned leader steps down",
        || !leader.worker.is_leader(),
    )
    .await;
    eventually(&observer, &members, "the other worker leads", || {
        other.worker.is_leader()
    })
    .await;
    // It took over because the ensemble expired the partitioned worker's session.
    registered(&observer, &members, leader.worker.name(), false).await;

    faults.heal(leader.node);
    eventually(
        &observer,
        &members,
        "the healed worker has a new session",
        || leader.client.is_connected() && leader.client.client_id().map(|s| s.id) != first_session,
    )
    .await;
    registered(&observer, &members, leader.worker.name(), true).await;

    let session = other
        .client
        .client_id()
        .expect("the leader has a session")
        .id;
    faults.expire(session);
    eventually(&observer, &members, "the expired leader steps down", || {
        !other.worker.is_leader()
    })
    .await;
    eventually(&observer, &members, "the first worker leads again", || {
        leader.worker.is_leader()
    })
    .await;
    registered(&observer, &members, other.worker.name(), true).await;

    for m in members {
        m.client.close().await;
    }
    observer.close().await;
}

fn world_run(seed: u64) -> Vec<String> {
    let world = SimWorld::new(
        SimConfig {
            servers: 3,
            ..SimConfig::default()
        },
        NetConfig::default(),
        seed,
    );
    world.enable_trace();
    let w = world.clone();
    world
        .block_on(Duration::from_secs(600), async move {
            let cs = w.connect_string();
            let mut members = Vec::new();
            for (n, name) in [(1, "a"), (2, "b")] {
                let client = w
                    .builder(Node(n), &cs)
                    .session_timeout(SESSION)
                    .connect()
                    .await
                    .expect("connect in the world");
                let worker = Worker::start(&client, name).expect("start the worker");
                members.push(Member {
                    node: Node(n),
                    client,
                    worker,
                });
            }
            let observer = w
                .builder(Node(9), &cs)
                .session_timeout(SESSION)
                .connect()
                .await
                .expect("connect in the world");
            scenario(Arc::new(w.clone()), members, observer).await;
        })
        .expect("the scenario finishes");
    world.trace()
}

#[test]
fn partition_and_expiry_in_the_deterministic_world() {
    let trace = world_run(11);
    assert!(trace.iter().any(|t| t.contains("partition")), "{trace:?}");
    assert_eq!(world_run(11), trace, "the same seed replays the same run");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partition_and_expiry_over_tcp_with_tokio() {
    let server = Arc::new(SimTcpServer::start(SimConfig::default()).expect("start the server"));
    let mut members = Vec::new();
    for (n, name) in [(1, "a"), (2, "b")] {
        let cs = server.connect_string_for(Node(n)).expect("listeners");
        let client = zk_tokio::builder(&cs)
            .session_timeout(SESSION)
            .connect()
            .await
            .expect("connect to the SimTcpServer");
        let worker = Worker::start(&client, name).expect("start the worker");
        members.push(Member {
            node: Node(n),
            client,
            worker,
        });
    }
    let observer = zk_tokio::connect(&server.connect_string())
        .await
        .expect("connect to the SimTcpServer");
    tokio::time::timeout(
        Duration::from_secs(120),
        scenario(server.clone(), members, observer),
    )
    .await
    .expect("the scenario finishes");
}
