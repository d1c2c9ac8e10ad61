//! The whole blocking surface against every server: SimServer on loopback TCP, and real
//! ZooKeeper 3.8 and 3.9 started by zk-testkit's harness (one shared server per version, each
//! test under its own chroot).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use zk_blocking::{
    Acl, AddWatchMode, Bytes, Client, Error, EventType, Id, LostReason, OpResult, Perms, ReadOp,
    ReadResult, RetryPolicy, SessionState, Stat, WatchEnd, WatchedEvent,
};
use zk_testkit::real::{Ensemble, EnsembleOptions, ZkVersion};
use zk_testkit::sim::{SimConfig, SimTcpServer};

/// A bound on waiting for something that should happen; never an assertion about speed.
const PATIENCE: Duration = Duration::from_secs(10);

/// Where a test runs: its own SimServer, or a chroot of its own on a shared real server.
enum Target {
    Sim(SimTcpServer),
    Real {
        connect: String,
        port: u16,
        version: (u32, u32),
    },
}

impl Target {
    fn connect_string(&self) -> String {
        match self {
            Target::Sim(s) => s.connect_string(),
            Target::Real { connect, .. } => connect.clone(),
        }
    }

    fn ports(&self) -> Vec<u16> {
        match self {
            Target::Sim(s) => s.ports(),
            Target::Real { port, .. } => vec![*port],
        }
    }

    /// The chroot this test runs under ("" on its own SimServer).
    fn chroot(&self) -> String {
        match self {
            Target::Sim(_) => String::new(),
            Target::Real { connect, .. } => connect
                .find('/')
                .map(|i| connect[i..].to_owned())
                .unwrap_or_default(),
        }
    }

    /// Major and minor version of the server.
    fn version(&self) -> (u32, u32) {
        match self {
            Target::Sim(_) => (3, 8),
            Target::Real { version, .. } => *version,
        }
    }
}

fn sim_server() -> Target {
    Target::Sim(SimTcpServer::start(SimConfig::default()).expect("start SimTcpServer"))
}

/// A chroot of its own on the shared server of `version` (started on first use; the harness's
/// watchdog stops it when the test process ends).
fn real_server(version: ZkVersion) -> Target {
    use std::sync::OnceLock;
    static ZK38: OnceLock<Ensemble> = OnceLock::new();
    static ZK39: OnceLock<Ensemble> = OnceLock::new();
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let cell = match version {
        ZkVersion::V3_8 => &ZK38,
        _ => &ZK39,
    };
    let ens = cell.get_or_init(|| {
        Ensemble::start(EnsembleOptions::standalone(version))
            .unwrap_or_else(|e| panic!("starting ZooKeeper {version:?}: {e}"))
    });
    let base = ens.connect_string();
    let chroot = format!("/blocking-{}", NEXT.fetch_add(1, Ordering::SeqCst));
    let root = Client::connect(&base).expect("connect to make the chroot");
    root.ensure_path(&chroot).expect("chroot node");
    root.close();
    let port = ens.node(0).expect("node 0").port();
    let version = match version {
        ZkVersion::V3_8 => (3, 8),
        _ => (3, 9),
    };
    Target::Real {
        connect: format!("{base}{chroot}"),
        port,
        version,
    }
}

fn connect(sim: &Target) -> Client {
    Client::connect(&sim.connect_string()).expect("connect")
}

fn recv<T>(rx: &mpsc::Receiver<T>) -> T {
    rx.recv_timeout(PATIENCE)
        .expect("a callback within the patience bound")
}

/// Polls `f` until it holds (bounded by PATIENCE).
fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !f() {
        assert!(start.elapsed() < PATIENCE, "never happened: {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Its own SimServer and a client with a 60 s session: pings (every 20 s) stay out of the
/// patience bound, so a test sees what moves bytes without them.
fn long_session() -> (Target, Client) {
    let config = SimConfig {
        tick_ms: 5_000,
        ..SimConfig::default()
    };
    let sim = Target::Sim(SimTcpServer::start(config).expect("start SimTcpServer"));
    let client = Client::builder(&sim.connect_string())
        .session_timeout(Duration::from_secs(60))
        .connect()
        .expect("connect");
    (sim, client)
}

/// Requests go out when they are made, with others in flight and nobody waiting for a result:
/// those that `submit` leaves for the driver's next turn (so that one system call carries a
/// batch) go with the turn that the replies in flight bring. A 60 s session keeps pings, whose
/// turns would also carry them, out of the patience bound; leaving even a lone request for the
/// driver (the break tried) fails it.
#[test]
fn pipelined_requests_go_out_without_anyone_waiting() {
    let (sim, client) = long_session();
    let other = connect(&sim);
    let lone = client.create("/lone", "").run_async();
    eventually("a lone async create reaches the server", || {
        other.exists("/lone").run().expect("exists").is_some()
    });
    let pending: Vec<_> = (0..200)
        .map(|i| client.create(&format!("/n{i}"), "").run_async())
        .collect();
    eventually("200 pipelined creates reach the server", || {
        other.get_children("/").run().expect("children").len() == 202
    });
    assert_eq!(lone.get().expect("create"), "/lone");
    for p in pending {
        p.get().expect("create");
    }
    other.close();
    client.close();
}

/// Threads blocked on replies read the socket themselves (zk-client `caller_reads`), so while
/// one does, the driver does not; once the last blocking call has returned, the place it left
/// idle must go back to the driver, or a watch event for a waiter that is no blocking call (an
/// async future on another thread) would wait for the next ping. A 60 s session keeps pings out
/// of the patience bound. Broken on purpose (the driver never taking an idle place back), this
/// times out.
#[test]
fn events_are_read_after_the_blocking_calls_that_read_them_have_returned() {
    let (sim, client) = long_session();
    let other = connect(&sim);
    let (none, watch) =
        futures_lite::future::block_on(client.as_async().exists("/w").watch()).expect("exists");
    assert!(none.is_none());
    let waiter = std::thread::spawn(move || futures_lite::future::block_on(watch));
    // Calls that come and go: each reads its reply itself and leaves the place.
    for _ in 0..300 {
        client.exists("/absent").run().expect("exists");
    }
    other.create("/w", "").run().expect("create");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || tx.send(waiter.join()));
    let event = recv(&rx).expect("waiter").expect("event");
    assert_eq!(event.event_type, EventType::NodeCreated);
    other.close();
    client.close();
}

/// Threads blocked on watches (`Watch::wait`) park, and whoever reads the session's socket wakes
/// them: the driver, or a thread reading its own reply meanwhile (zk-client `caller_reads`). Two
/// threads wait on watches, their events come one after the other, first with the session quiet
/// and then after calls whose waits held the reader's place; no event may be left undelivered. A
/// 60 s session keeps pings out of the patience bound. Broken on purpose (a watch's waker not
/// kept where callers park, so that a reader has nobody to wake), this times out.
#[test]
fn threads_blocked_on_watches_get_their_events_while_calls_come_and_go() {
    let (sim, client) = long_session();
    let other = connect(&sim);
    for (round, calls) in [(0, 0), (1, 200)] {
        let (tx, rx) = mpsc::channel();
        for name in ["first", "second"] {
            let path = format!("/{name}{round}");
            let (none, watch) = client.exists(&path).watch().run().expect("exists");
            assert!(none.is_none());
            let tx = tx.clone();
            std::thread::spawn(move || tx.send(watch.wait()));
        }
        for _ in 0..calls {
            client.exists("/absent").run().expect("exists");
        }
        for name in ["first", "second"] {
            let path = format!("/{name}{round}");
            other.create(&path, "").run().expect("create");
            let event = recv(&rx).expect("event");
            assert_eq!(event.path, path);
            assert_eq!(event.event_type, EventType::NodeCreated);
        }
    }
    other.close();
    client.close();
}

/// A request that cannot complete (nothing listens where the client connects) comes back from
/// `get_timeout`, still pending, and fails with Closed once the client is closed.
#[test]
fn async_result_waits_only_as_long_as_asked() {
    let client = Client::builder("127.0.0.1:1")
        .start()
        .expect("start without waiting");
    let pending = client.get_data("/x").run_async();
    let pending = match pending.get_timeout(Duration::from_millis(20)) {
        Err(pending) => pending,
        Ok(result) => panic!("a request with no server completed: {result:?}"),
    };
    client.close();
    assert!(matches!(pending.get(), Err(Error::Closed)));
}

/// Every test of the blocking surface, for the `server()` of the module it is expanded in.
macro_rules! blocking_tests {
    () => {
        #[test]
        fn client_is_send_sync_and_clone() {
            fn check<T: Send + Sync + Clone + 'static>() {}
            check::<Client>();
            fn send<T: Send>() {}
            send::<zk_blocking::WatchHandle>();
            send::<zk_blocking::ListenerHandle>();
            send::<zk_blocking::Watch>();
            send::<zk_blocking::PersistentWatch>();
            send::<zk_blocking::AsyncResult<'static, ()>>();
        }

        #[test]
        fn session_facts() {
            let sim = server();
            let client = Client::builder(&format!("{}/app", sim.connect_string()))
                .session_timeout(Duration::from_secs(4))
                .connect_timeout(Duration::from_secs(10))
                .randomize_hosts(false)
                .connect()
                .expect("connect");
            assert_eq!(client.state(), SessionState::Connected);
            assert!(client.is_connected());
            assert!(client.client_id().is_some_and(|id| id.id != 0));
            assert!(client.session_timeout().is_some());
            assert_eq!(client.chroot(), Some(format!("{}/app", sim.chroot())));
            assert_eq!(client.hosts().len(), 1);
            assert_eq!(client.current_host().map(|h| h.port), Some(sim.ports()[0]));
            let version = client.server_version().expect("server_version");
            assert_eq!((version.major, version.minor), sim.version());
            assert_eq!(client.command("ruok").expect("ruok"), "imok");
            assert!(client.command("nope!").is_err());
            let before = client.last_zxid();
            // The chroot node must exist for writes under it; make it with a plain client.
            let root = connect(&sim);
            root.ensure_path("/app").expect("ensure_path");
            client.create("/n", "").run().expect("create");
            assert!(client.last_zxid() > before);
            assert!(format!("{client:?}").contains("Connected"));
            root.close();
            client.close();
            assert!(matches!(
                client.state(),
                SessionState::Lost(LostReason::Closed)
            ));
        }

        #[test]
        fn every_operation() {
            let sim = server();
            let client = connect(&sim);

            // create, with its options
            let p = client
                .create("/ops/a/leaf", "v")
                .make_parents()
                .run()
                .expect("create with parents");
            assert_eq!(p, "/ops/a/leaf");
            assert!(matches!(
                client.create("/ops/a/leaf", "v").run(),
                Err(Error::NodeExists { .. })
            ));
            assert!(matches!(
                client.create("/missing/x", "v").run(),
                Err(Error::NoNode { .. })
            ));
            let seq = client
                .create("/ops/seq-", "s")
                .sequential()
                .run()
                .expect("sequential");
            assert!(seq.starts_with("/ops/seq-") && seq.len() == "/ops/seq-".len() + 10);
            let (eph, stat) = client
                .create("/ops/eph", "e")
                .ephemeral()
                .with_stat()
                .run()
                .expect("ephemeral with stat");
            assert_eq!(eph, "/ops/eph");
            assert_eq!(stat.ephemeral_owner, client.client_id().expect("id").id);
            client
                .create("/ops/container", "")
                .container()
                .run()
                .expect("container");
            client
                .create("/ops/ttl", "t")
                .ttl(Duration::from_secs(3600))
                .run()
                .expect("ttl");
            client
                .create("/ops/null", "ignored")
                .null_data()
                .acl(vec![Acl::new(Perms::READ | Perms::ADMIN, Id::anyone())])
                .run()
                .expect("null data, no write permission");
            assert!(matches!(
                client.create("/ops/bad", "").ephemeral().container().run(),
                Err(Error::InvalidArgument(_))
            ));
            assert!(matches!(
                client.create("no-slash", "").run(),
                Err(Error::InvalidPath { .. })
            ));

            // reads and writes
            let (data, stat) = client.get_data("/ops/a/leaf").run().expect("get_data");
            assert_eq!(&data[..], b"v");
            let (data, stat2) = client.get_data("/ops/null").run().expect("get null");
            assert!(data.is_empty());
            assert_eq!(stat2.data_length, 0);
            let new = client
                .set_data("/ops/a/leaf", "w").version(stat.version).run()
                .expect("set_data");
            assert_eq!(new.version, stat.version + 1);
            assert!(matches!(
                client.set_data("/ops/a/leaf", "x").version(stat.version).run(),
                Err(Error::BadVersion { .. })
            ));
            assert!(matches!(
                client.set_data("/ops/null", "x").run(),
                Err(Error::NoAuth { .. })
            ));
            assert!(client.exists("/ops/a").run().expect("exists").is_some());
            assert!(client.exists("/ops/none").run().expect("exists").is_none());
            let mut children = client.get_children("/ops").run().expect("children").to_vec();
            children.sort();
            assert_eq!(children.len(), 6, "{children:?}");
            let (children, stat) = client.get_children("/ops").with_stat().run().expect("with stat");
            assert_eq!(stat.num_children as usize, children.len());
            assert!(matches!(
                client.get_children("/none").run(),
                Err(Error::NoNode { .. })
            ));

            // ensure_path and sync
            client.ensure_path("/ops/x/y/z").expect("ensure_path");
            client.ensure_path("/ops/x/y/z").expect("ensure_path again");
            client.sync("/ops").expect("sync");

            // ACLs and auth
            let (acl, stat) = client.get_acl("/ops/null").expect("get_acl");
            assert_eq!(acl, vec![Acl::new(Perms(17), Id::anyone())]);
            let stat = client
                .set_acl("/ops/null", Acl::open_unsafe(), stat.aversion)
                .expect("set_acl");
            assert_eq!(stat.aversion, 1);
            client
                .set_data("/ops/null", "now writable").run()
                .expect("set after set_acl");
            client.add_auth("digest", "alice:secret").expect("add_auth");
            let who = client.whoami().expect("whoami");
            assert!(
                who.iter()
                    .any(|c| c.auth_scheme == "digest" && c.user == "alice"),
                "{who:?}"
            );
            client
                .create("/ops/alice", "")
                .acl(Acl::creator_all())
                .run()
                .expect("create with creator_all");
            let (acl, _) = client.get_acl("/ops/alice").expect("get_acl");
            assert_eq!(acl.len(), 1);
            assert_eq!(acl[0].id.scheme, "digest");
            assert_eq!(acl[0].perms, Perms::ALL);

            // 3.6+ reads
            assert_eq!(
                client.get_ephemerals("/ops").expect("get_ephemerals"),
                vec!["/ops/eph".to_owned()]
            );
            let n = client
                .get_all_children_number("/ops")
                .expect("get_all_children_number");
            assert!(n >= 9, "{n}");
            let results = client
                .multi_read(vec![
                    ReadOp::GetData("/ops/a/leaf".into()),
                    ReadOp::GetChildren("/ops/a".into()),
                    ReadOp::GetData("/none".into()),
                ])
                .expect("multi_read");
            assert!(matches!(&results[0], ReadResult::Data(d, _) if &d[..] == b"w"));
            assert!(matches!(&results[1], ReadResult::Children(c) if *c == ["leaf"]));
            assert!(matches!(
                results[2],
                ReadResult::Error(Error::NoNode { .. })
            ));

            // config and reconfig: the model is standalone, with reconfig disabled
            match client.get_config() {
                Ok(_) | Err(Error::NoNode { .. }) => {}
                Err(e) => panic!("get_config: {e:?}"),
            }
            assert!(client
                .reconfig(Some("server.9=127.0.0.1:1:2;3"), None, None, -1)
                .is_err());

            // transactions
            let t = client
                .transaction()
                .create("/ops/t1", "1")
                .create("/ops/t2-", "2")
                .sequential()
                .set_data("/ops/a/leaf", "t", -1)
                .check("/ops/a", 0);
            assert_eq!(t.len(), 4);
            assert!(!t.is_empty());
            let results = t.commit().expect("commit");
            assert!(matches!(&results[0], OpResult::Created { path, .. } if path == "/ops/t1"));
            assert!(matches!(&results[1], OpResult::Created { path, .. } if path.starts_with("/ops/t2-")));
            assert!(matches!(results[2], OpResult::SetData { .. }));
            assert_eq!(results[3], OpResult::Checked);
            let failed = client
                .transaction()
                .delete("/ops/t1", -1)
                .create("/ops/t1/child-of-deleted", "")
                .commit();
            match failed {
                Err(Error::TransactionFailed { index, error, .. }) => {
                    assert_eq!(index, 1);
                    assert!(matches!(*error, Error::NoNode { .. }));
                }
                other => panic!("expected TransactionFailed, got {other:?}"),
            }
            assert!(client.exists("/ops/t1").run().expect("exists").is_some());

            // delete
            assert!(matches!(
                client.delete("/ops/a").run(),
                Err(Error::NotEmpty { .. })
            ));
            assert!(matches!(
                client.delete("/ops/t1").version(7).run(),
                Err(Error::BadVersion { .. })
            ));
            client.delete("/ops/t1").version(0).run().expect("delete");
            client.delete("/ops").recursive().run().expect("recursive");
            assert!(client.exists("/ops").run().expect("exists").is_none());
            client.close();
        }

        #[test]
        fn async_results_keep_many_requests_in_flight() {
            let sim = server();
            let client = connect(&sim);
            client.ensure_path("/pipe").expect("ensure_path");
            // The request goes out when it is made, not when its result is taken.
            let early = client.create("/pipe/early", "").run_async();
            let other = connect(&sim);
            eventually("an async create reaches the server before get()", || {
                other.exists("/pipe/early").run().expect("exists").is_some()
            });
            assert_eq!(early.get().expect("create"), "/pipe/early");
            client.delete("/pipe/early").run().expect("delete");
            // 300 creates all reach the server before the first result is taken, and the
            // results come in order.
            let pending: Vec<_> = (0..300)
                .map(|i| {
                    client
                        .create("/pipe/n-", format!("{i}"))
                        .sequential()
                        .run_async()
                })
                .collect();
            eventually("300 async creates reach the server before get()", || {
                other.get_children("/pipe").run().expect("children").len() == 300
            });
            other.close();
            let names: Vec<String> = pending
                .into_iter()
                .map(|p| p.get().expect("create"))
                .collect();
            let mut sorted = names.clone();
            sorted.sort();
            assert_eq!(names, sorted, "sequence numbers follow the order sent");
            let reads: Vec<_> = names.iter().map(|n| client.get_data(n).run_async()).collect();
            for (i, r) in reads.into_iter().enumerate() {
                assert_eq!(r.get().expect("get_data").0, format!("{i}").as_bytes());
            }
            // Results carry their own errors, and a failure does not disturb its neighbours.
            let set_ok = client.set_data(&names[0], "x").version(0).run_async();
            let set_bad = client.set_data(&names[1], "x").version(7).run_async();
            let missing = client.exists("/pipe/none").run_async();
            let children = client.get_children("/pipe").run_async();
            assert_eq!(set_ok.get().expect("set_data").version, 1);
            assert!(matches!(set_bad.get(), Err(Error::BadVersion { .. })));
            assert_eq!(missing.get().expect("exists"), None);
            assert_eq!(children.get().expect("children").len(), 300);
            // get_timeout gives the request back until its result is there.
            let mut pending = client.get_children("/pipe/none").run_async();
            let start = std::time::Instant::now();
            let result = loop {
                match pending.get_timeout(Duration::from_millis(1)) {
                    Ok(result) => break result,
                    Err(again) => pending = again,
                }
                assert!(start.elapsed() < PATIENCE, "get_timeout never gave the result");
            };
            assert!(matches!(result, Err(Error::NoNode { .. })));
            let deletes: Vec<_> = names
                .iter()
                .map(|n| client.delete(n).run_async())
                .collect();
            for d in deletes {
                d.get().expect("delete");
            }
            let gone = client.delete("/pipe").recursive().run_async();
            gone.get().expect("recursive delete");
            assert!(client.exists("/pipe").run().expect("exists").is_none());
            client.close();
        }

        #[test]
        fn one_shot_watches() {
            let sim = server();
            let client = connect(&sim);
            let other = connect(&sim);

            // exists_watch on a missing node fires on creation; wait_timeout leaves it armed.
            let (stat, mut watch) = client.exists("/w").watch().run().expect("exists_watch");
            assert!(stat.is_none());
            assert!(watch.wait_timeout(Duration::from_millis(50)).is_none());
            other.create("/w", "1").run().expect("create");
            let event = watch
                .wait_timeout(PATIENCE)
                .expect("fired")
                .expect("an event");
            assert_eq!(event.event_type, EventType::NodeCreated);
            assert!(matches!(
                watch.wait_timeout(Duration::from_millis(1)),
                Some(Err(Error::Closed))
            ));

            let (data, _, watch) = client.get_data("/w").watch().run().expect("get_data_watch");
            assert_eq!(&data[..], b"1");
            other.set_data("/w", "2").run().expect("set");
            assert_eq!(
                watch.wait().expect("event").event_type,
                EventType::NodeDataChanged
            );

            let (children, watch) = client.get_children("/w").watch().run().expect("children watch");
            assert!(children.is_empty());
            other.create("/w/c", "").run().expect("create child");
            let event = watch.wait().expect("event");
            assert_eq!(event.event_type, EventType::NodeChildrenChanged);
            assert_eq!(event.path, "/w");

            let (children, stat, watch) = client
                .get_children("/w").with_stat_and_watch().run()
                .expect("children stat watch");
            assert_eq!(children, vec!["c".to_owned()]);
            assert_eq!(stat.num_children, 1);
            other.delete("/w").recursive().run().expect("delete");
            assert!(watch.wait().is_ok());

            // A watch outstanding when the session closes ends with an error, not a hang.
            let (_, watch) = client.exists("/w").watch().run().expect("exists_watch");
            client.close();
            assert!(watch.wait().is_err());
            other.close();
        }

        #[test]
        fn persistent_watch() {
            let sim = server();
            let client = connect(&sim);
            let other = connect(&sim);
            let mut events = client
                .add_watch("/p", AddWatchMode::PersistentRecursive)
                .expect("add_watch");
            assert!(events.next_timeout(Duration::from_millis(20)).is_none());
            assert_eq!(events.end_reason(), None);
            other.create("/p", "").run().expect("create");
            other.create("/p/q", "").run().expect("create");
            other.set_data("/p/q", "x").run().expect("set");
            let got: Vec<(EventType, String)> = events
                .by_ref()
                .take(3)
                .filter_map(|e| e.into_event())
                .map(|e| (e.event_type, e.path))
                .collect();
            assert_eq!(
                got,
                vec![
                    (EventType::NodeCreated, "/p".to_owned()),
                    (EventType::NodeCreated, "/p/q".to_owned()),
                    (EventType::NodeDataChanged, "/p/q".to_owned()),
                ]
            );
            other.delete("/p/q").run().expect("delete");
            let e = events.next_timeout(PATIENCE).expect("event");
            assert_eq!(e.event().map(|e| e.event_type), Some(EventType::NodeDeleted));
            client.close();
            assert_eq!(events.next(), None);
            assert!(matches!(
                events.end_reason(),
                Some(WatchEnd::SessionLost(_))
            ));
            other.close();
        }

        type DataCall = (Option<(Bytes, Stat)>, Option<WatchedEvent>);

        #[test]
        fn data_watch_sees_create_change_delete_recreate_in_order() {
            let sim = server();
            let client = connect(&sim);
            let writer = connect(&sim);
            let (tx, rx) = mpsc::channel::<(DataCall, Option<String>)>();
            let probe = client.clone();
            let handle = client
                .data_watch("/dw", move |data, event| {
                    // Callbacks may use the client: they never run under its lock.
                    let exists = probe.exists("/dw").run().expect("exists in callback");
                    assert_eq!(exists.is_some(), data.is_some());
                    let thread = std::thread::current().name().map(str::to_owned);
                    tx.send(((data, event), thread)).is_ok()
                })
                .expect("data_watch");

            // The first call has happened by the time data_watch returns.
            let ((data, event), thread) = rx.try_recv().expect("first call already made");
            assert!(data.is_none() && event.is_none());
            assert_eq!(thread.as_deref(), Some("zk-data-watch"));

            let step = |expect_data: Option<&[u8]>, expect: EventType| {
                let ((data, event), _) = recv(&rx);
                assert_eq!(
                    data.map(|(d, _)| d.to_vec()),
                    expect_data.map(<[u8]>::to_vec)
                );
                assert_eq!(event.map(|e| e.event_type), Some(expect));
            };
            writer.create("/dw", "a").run().expect("create");
            step(Some(b"a"), EventType::NodeCreated);
            writer.set_data("/dw", "b").run().expect("set");
            step(Some(b"b"), EventType::NodeDataChanged);
            writer.delete("/dw").run().expect("delete");
            step(None, EventType::NodeDeleted);
            writer.create("/dw", "c").run().expect("re-create");
            step(Some(b"c"), EventType::NodeCreated);
            assert!(handle.is_running());
            assert_eq!(handle.error(), None);
            handle.stop();
            client.close();
            writer.close();
        }

        #[test]
        fn children_watch_sees_every_change() {
            let sim = server();
            let client = connect(&sim);
            client.ensure_path("/cw").expect("ensure_path");
            let (tx, rx) = mpsc::channel();
            let handle = client
                .children_watch("/cw", move |children, event| {
                    let children = children.map(|c| {
                        let mut c = c.to_vec();
                        c.sort();
                        c
                    });
                    tx.send((children, event.map(|e| e.event_type))).is_ok()
                })
                .expect("children_watch");
            assert_eq!(recv(&rx), (Some(vec![]), None));
            client.create("/cw/a", "").run().expect("create");
            assert_eq!(
                recv(&rx),
                (
                    Some(vec!["a".to_owned()]),
                    Some(EventType::NodeChildrenChanged)
                )
            );
            client.create("/cw/b", "").run().expect("create");
            assert_eq!(
                recv(&rx),
                (
                    Some(vec!["a".to_owned(), "b".to_owned()]),
                    Some(EventType::NodeChildrenChanged)
                )
            );
            client.delete("/cw").recursive().run().expect("delete");
            // Deleting a, b, then /cw may fold into fewer calls (the event is the one that led to the
            // re-read); the last one says the node is gone.
            loop {
                let (children, event) = recv(&rx);
                assert!(event.is_some());
                if children.is_none() {
                    break;
                }
            }
            handle.stop();
            client.close();
        }

        #[test]
        fn stop_and_false_halt_callbacks() {
            let sim = server();
            let client = connect(&sim);
            client.create("/s", "0").run().expect("create");

            // stop(): once it returns, the callback is never called again.
            let calls = Arc::new(AtomicUsize::new(0));
            let c = calls.clone();
            let stopped = client
                .data_watch("/s", move |_, _| {
                    c.fetch_add(1, Ordering::SeqCst);
                    true
                })
                .expect("data_watch");
            assert_eq!(calls.load(Ordering::SeqCst), 1);
            stopped.stop();

            // Returning false: called once, then done.
            let once = Arc::new(AtomicUsize::new(0));
            let o = once.clone();
            let finished = client
                .data_watch("/s", move |_, _| {
                    o.fetch_add(1, Ordering::SeqCst);
                    false
                })
                .expect("data_watch");
            eventually("the watch ends after false", || !finished.is_running());
            assert_eq!(finished.error(), None);

            // A dropped handle does not stop it (kazoo's lifetime): it sees the change below.
            let dropped = Arc::new(AtomicUsize::new(0));
            let d = dropped.clone();
            drop(
                client
                    .data_watch("/s", move |_, _| {
                        d.fetch_add(1, Ordering::SeqCst);
                        true
                    })
                    .expect("data_watch"),
            );

            // A live watch proves the change below was delivered to watchers.
            let (tx, rx) = mpsc::channel();
            let live = client
                .data_watch("/s", move |data, _| tx.send(data.map(|(d, _)| d)).is_ok())
                .expect("data_watch");
            assert_eq!(recv(&rx).as_deref(), Some(&b"0"[..]));
            client.set_data("/s", "1").run().expect("set");
            assert_eq!(recv(&rx).as_deref(), Some(&b"1"[..]));
            live.stop();

            assert_eq!(calls.load(Ordering::SeqCst), 1);
            assert_eq!(once.load(Ordering::SeqCst), 1);
            eventually("the watch whose handle was dropped sees the change", || {
                dropped.load(Ordering::SeqCst) == 2
            });
            client.close();
        }

        #[test]
        fn a_dropped_watch_handle_keeps_the_watch_until_the_client_closes() {
            let sim = server();
            let client = connect(&sim);
            let (tx, rx) = mpsc::channel();
            // kazoo's lifetime: the handle is dropped at once, the watch goes on.
            let _ = client
                .data_watch("/d", move |data, _| tx.send(data.is_some()).is_ok())
                .expect("data_watch");
            assert!(!recv(&rx));
            client.create("/d", "").run().expect("create");
            assert!(recv(&rx));
            client.close();
            // The watch thread ends with the session: the channel disconnects.
            assert_eq!(
                rx.recv_timeout(PATIENCE),
                Err(mpsc::RecvTimeoutError::Disconnected)
            );
        }

        #[test]
        fn callback_watch_errors() {
            let sim = server();
            let client = connect(&sim);
            assert!(matches!(
                client.data_watch("bad", |_, _| true),
                Err(Error::InvalidPath { .. })
            ));
            client
                .create("/secret", "")
                .acl(vec![Acl::new(Perms::ADMIN, Id::anyone())])
                .run()
                .expect("create");
            assert!(matches!(
                client.children_watch("/secret", |_, _| true),
                Err(Error::NoAuth { .. })
            ));
            client.close();
            assert!(matches!(
                client.data_watch("/x", |_, _| true),
                Err(Error::Closed)
            ));
        }

        #[test]
        #[should_panic(expected = "boom")]
        fn a_panic_in_the_first_call_reaches_the_caller() {
            let sim = server();
            let client = connect(&sim);
            let _h = client.data_watch("/", |_, _| panic!("boom"));
        }

        #[test]
        fn listener_sees_connected_then_lost() {
            let sim = server();
            let client = connect(&sim);
            let (tx, rx) = mpsc::channel();
            let probe = client.clone();
            let listener = client
                .add_listener(move |state| {
                    // Listeners may call the client too.
                    let _ = probe.state();
                    let _ = tx.send(state);
                })
                .expect("add_listener");

            // restart(): the old session is lost, a new one connects, and the listener stays.
            let first = client.client_id().expect("id");
            client.restart().expect("restart");
            assert_ne!(client.client_id().expect("id").id, first.id);
            assert_eq!(recv(&rx), SessionState::Lost(LostReason::Closed));
            let mut state = recv(&rx);
            while state == SessionState::Connecting {
                state = recv(&rx);
            }
            assert_eq!(state, SessionState::Connected);

            client.close();
            assert_eq!(recv(&rx), SessionState::Lost(LostReason::Closed));
            listener.remove();
            assert!(
                rx.recv_timeout(PATIENCE).is_err(),
                "removed: channel closes"
            );
        }

        #[test]
        fn listeners_added_before_start_see_the_first_connected() {
            let sim = server();
            let client = Client::builder(&sim.connect_string())
                .build()
                .expect("build");
            let (tx, rx) = mpsc::channel();
            let listener = client
                .add_listener(move |state| {
                    let _ = tx.send(state);
                })
                .expect("add_listener");
            assert_eq!(client.state_listeners(), vec![listener.id()]);
            client.start().expect("start");
            let mut state = recv(&rx);
            while state == SessionState::Connecting {
                state = recv(&rx);
            }
            assert_eq!(state, SessionState::Connected);
            listener.remove();
            assert!(client.state_listeners().is_empty());
            client.close();
        }

        #[test]
        fn dropping_the_last_handle_closes_the_session_at_once() {
            let sim = server();
            let watcher = connect(&sim);
            let owner = connect(&sim);
            owner.create("/mine", "").ephemeral().run().expect("create");
            let clone = owner.clone();
            drop(owner);
            assert!(
                watcher.exists("/mine").run().expect("exists").is_some(),
                "a clone still holds the session"
            );
            drop(clone);
            // Drop returned after the server confirmed the close: the ephemeral is gone now,
            // not a session timeout later.
            assert!(watcher.exists("/mine").run().expect("exists").is_none());
            watcher.close();
        }

        /// One thread closes the session while another makes call after call, each waiting
        /// on the socket and reading its own reply (`caller_reads`), so the answer to the
        /// closeSession, which the closing thread wrote itself, may be read by either thread
        /// or the driver. The close returns, the session is lost as closed, and the other
        /// thread's calls end with `Closed`.
        #[test]
        fn closing_while_another_thread_calls_ends_both() {
            let sim = server();
            let client = connect(&sim);
            client.create("/busy", "x").ephemeral().run().expect("create");
            let caller = client.clone();
            let (busy_tx, busy_rx) = mpsc::channel();
            // The calls' end comes over a channel, not from `join`: a calling thread that
            // hangs fails the test after PATIENCE instead of hanging it.
            let (ended_tx, ended_rx) = mpsc::channel();
            std::thread::spawn(move || {
                let mut calls = 0u32;
                let ended = loop {
                    match caller.get_data("/busy").run() {
                        Ok(_) => {
                            calls += 1;
                            if calls == 50 {
                                let _ = busy_tx.send(());
                            }
                        }
                        Err(e) => break e,
                    }
                };
                let _ = ended_tx.send(ended);
            });
            recv(&busy_rx);
            let (closed_tx, closed_rx) = mpsc::channel();
            let closer = client.clone();
            std::thread::spawn(move || {
                closer.close();
                let _ = closed_tx.send(closer.state());
            });
            assert_eq!(recv(&closed_rx), SessionState::Lost(LostReason::Closed));
            let ended = recv(&ended_rx);
            assert!(matches!(ended, Error::Closed), "the calls ended with {ended}");
        }

        #[test]
        fn removed_listener_is_not_called() {
            let sim = server();
            let client = connect(&sim);
            let calls = Arc::new(Mutex::new(Vec::new()));
            let c = calls.clone();
            let gone = client
                .add_listener(move |s| c.lock().expect("lock").push(s))
                .expect("add_listener");
            gone.remove();
            let (tx, rx) = mpsc::channel();
            let _kept = client
                .add_listener(move |s| {
                    let _ = tx.send(s);
                })
                .expect("add_listener");
            client.close();
            assert_eq!(recv(&rx), SessionState::Lost(LostReason::Closed));
            assert!(calls.lock().expect("lock").is_empty());
        }

        #[test]
        fn retry_retries_what_the_policy_says() {
            let sim = server();
            let client = connect(&sim);
            let policy = RetryPolicy {
                max_retries: Some(3),
                delay: Duration::from_millis(1),
                ..RetryPolicy::default()
            };

            let mut tries = 0;
            let value = client
                .retry_with(&policy, |c| {
                    tries += 1;
                    if tries < 3 {
                        return Err(Error::ConnectionLoss);
                    }
                    c.ensure_path("/r")?;
                    c.get_data("/r").run()
                })
                .expect("third try succeeds");
            assert_eq!(tries, 3);
            assert!(value.0.is_empty());

            let mut tries = 0;
            let r: Result<(), Error> = client.retry_with(&policy, |_| {
                tries += 1;
                Err(Error::ConnectionLoss)
            });
            assert_eq!(r, Err(Error::ConnectionLoss));
            assert_eq!(tries, 4, "one try and three retries");

            let mut tries = 0;
            let r = client.retry_with(&policy, |c| {
                tries += 1;
                c.get_data("/nope").run()
            });
            assert!(matches!(r, Err(Error::NoNode { .. })));
            assert_eq!(tries, 1, "NoNode is not retried");
            client.close();
        }

        #[test]
        fn start_without_waiting_and_use_from_many_threads() {
            let sim = server();
            let client = Client::builder(&sim.connect_string())
                .default_acl(Acl::open_unsafe())
                .request_timeout(PATIENCE)
                .start()
                .expect("start");
            // Requests made before the session is up wait for it.
            client.ensure_path("/many").expect("ensure_path");
            let threads: Vec<_> = (0..4)
                .map(|i| {
                    let c = client.clone();
                    std::thread::spawn(move || {
                        for j in 0..10 {
                            c.create(&format!("/many/{i}-{j}"), "")
                                .run()
                                .expect("create");
                        }
                    })
                })
                .collect();
            for t in threads {
                t.join().expect("thread");
            }
            assert_eq!(client.get_children("/many").run().expect("children").len(), 40);
            client.close();
        }

        /// Threads of one client take turns reading its socket (one reads, the others park and
        /// are woken by its read; a thread that leaves while others are parked hands reading
        /// back to the driver), mixing single calls, pipelined ones and a callback watch: every
        /// reply must reach its own thread, and the watch must see the last write.
        #[test]
        fn threads_sharing_one_client_each_get_their_own_replies() {
            let sim = server();
            // A reply nobody reads fails the test with Timeout rather than hanging it.
            let client = Client::builder(&sim.connect_string())
                .request_timeout(PATIENCE)
                .connect()
                .expect("connect");
            client.ensure_path("/shared/n").expect("ensure_path");
            let (tx, rx) = mpsc::channel();
            let _watch = client
                .data_watch("/shared/n", move |data, _| {
                    let _ = tx.send(data.map(|(d, _)| d));
                    true
                })
                .expect("data_watch");
            let threads: Vec<_> = (0..6)
                .map(|i| {
                    let c = client.clone();
                    std::thread::spawn(move || {
                        for j in 0..40 {
                            let path = format!("/shared/{i}-{j}");
                            let data = format!("{i}:{j}");
                            c.create(&path, data.as_str()).run().expect("create");
                            let pending: Vec<_> =
                                (0..5).map(|_| c.get_data(&path).run_async()).collect();
                            for p in pending {
                                assert_eq!(p.get().expect("get").0, data.as_bytes());
                            }
                            let (got, _) = c.get_data(&path).run().expect("get_data");
                            assert_eq!(got, data.as_bytes(), "another thread's reply");
                        }
                        c.set_data("/shared/n", format!("done {i}").as_str())
                            .run()
                            .expect("set_data");
                    })
                })
                .collect();
            for t in threads {
                t.join().expect("thread");
            }
            client.set_data("/shared/n", "last").run().expect("set_data");
            loop {
                if recv(&rx).as_deref() == Some(&b"last"[..]) {
                    break;
                }
            }
            assert_eq!(
                client.get_children("/shared").run().expect("children").len(),
                6 * 40 + 1
            );
            client.close();
        }

        #[test]
        fn failures_are_errors() {
            assert!(matches!(
                Client::connect("127.0.0.1:notaport"),
                Err(Error::InvalidArgument(_) | Error::InvalidPath { .. })
            ));
            let port = {
                let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
                l.local_addr().expect("addr").port()
            };
            let r = Client::builder(&format!("127.0.0.1:{port}"))
                .connect_timeout(Duration::from_millis(300))
                .connect();
            assert!(
                matches!(&r, Err(Error::ConnectFailed { causes })
                    if causes.iter().any(|c| c.host.port == port)),
                "{r:?}"
            );


            let sim = server();
            let client = connect(&sim);
            // A word the caller got wrong is their argument, not a protocol failure.
            assert!(matches!(client.command("RUOK"), Err(Error::InvalidArgument(_))));
            client.close();
            assert!(matches!(client.get_data("/").run(), Err(Error::Closed)));
            assert!(matches!(client.command("ruok"), Err(Error::ConnectionLoss)));
            client.close(); // twice is fine
        }

        #[test]
        fn resume_takes_over_a_session() {
            let sim = server();
            let first = connect(&sim);
            first.create("/mine", "").ephemeral().run().expect("create");
            let id = first.client_id().expect("id");
            let second = Client::builder(&sim.connect_string())
                .resume(id.clone())
                .digest("bob", "pw")
                .auth("digest", "carol:pw")
                .connect()
                .expect("resume");
            // The same session (the two handles now take turns on it, as two ZooKeeper clients would).
            assert_eq!(second.client_id().expect("id").id, id.id);
            second.close();
            drop(first);
        }

        #[test]
        fn a_callback_can_stop_its_own_watch() {
            let sim = server();
            let client = connect(&sim);
            client.create("/self", "0").run().expect("create");
            let slot: Arc<Mutex<Option<zk_blocking::WatchHandle>>> = Arc::default();
            let (tx, rx) = mpsc::channel();
            let s = slot.clone();
            let handle = client
                .data_watch("/self", move |data, _| {
                    let _ = tx.send(data.map(|(d, _)| d));
                    if let Some(h) = s.lock().expect("lock").take() {
                        h.stop(); // from its own thread: must not wait for itself
                    }
                    true
                })
                .expect("data_watch");
            assert_eq!(recv(&rx).as_deref(), Some(&b"0"[..]));
            *slot.lock().expect("lock") = Some(handle);
            client.set_data("/self", "1").run().expect("set");
            assert_eq!(recv(&rx).as_deref(), Some(&b"1"[..]));
            // That call stopped the watch: the thread ends and drops the sender.
            client.set_data("/self", "2").run().expect("set");
            assert_eq!(
                rx.recv_timeout(PATIENCE),
                Err(mpsc::RecvTimeoutError::Disconnected)
            );
            client.close();
        }

        #[test]
        fn listener_threads_end_with_the_last_client_handle() {
            let sim = server();
            let client = connect(&sim);
            let (tx, rx) = mpsc::channel();
            let handle = client
                .add_listener(move |s| {
                    let _ = tx.send(s);
                })
                .expect("add_listener");
            drop(client);
            // Whatever it saw of the close, the thread ends although its handle is still held.
            loop {
                match rx.recv_timeout(PATIENCE) {
                    Ok(state) => assert_eq!(state, SessionState::Lost(LostReason::Closed)),
                    Err(e) => {
                        assert_eq!(e, mpsc::RecvTimeoutError::Disconnected);
                        break;
                    }
                }
            }
            handle.remove();
        }
    };
}

mod simserver {
    use super::*;
    fn server() -> Target {
        sim_server()
    }
    blocking_tests!();
}

mod zookeeper_3_8 {
    use super::*;
    fn server() -> Target {
        real_server(ZkVersion::V3_8)
    }
    blocking_tests!();
}

mod zookeeper_3_9 {
    use super::*;
    fn server() -> Target {
        real_server(ZkVersion::V3_9)
    }
    blocking_tests!();
}
