//! The real-server harness (`zk_testkit::real`) against real ZooKeeper 3.8 and 3.9 servers.
//!
//! The servers are driven with zk-core's codec over a plain blocking `TcpStream` (no client crate
//! exists yet), which also checks the codec against both server versions. Needs the servers that
//! `scripts/setup-zookeeper` installs; without them every test fails with a message naming it.
//!
//! Each test starts its own servers and shares them across its assertions; the whole file takes
//! about 15 s of wall time on two cores (the tests run in parallel).

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use zk_core::proto::{
    decode_connect_response, decode_notification, decode_reply, decode_reply_header,
    encode_connect_request, encode_request, xid, Acl, ConnectRequest, CreateMode, CreateRequest,
    CreateTtlRequest, ErrorCode, EventType, FrameDecoder, OpCode, PathRequest, PathWatchRequest,
    Request, Response, WatcherEvent, PASSWORD_LEN,
};
use zk_testkit::real::{Ensemble, EnsembleOptions, ServerMode, ZkVersion};

/// How long the test client waits for any single frame.
const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// Frame limit of the test client, both ways: above the 1 MiB default so that a test can check
/// that a server's raised `jute.maxbuffer` took effect.
const MAX_FRAME: usize = 4 << 20;

/// A minimal blocking ZooKeeper session: one connection, requests answered in order,
/// notifications set aside as they arrive.
struct RawClient {
    stream: TcpStream,
    frames: FrameDecoder,
    next_xid: i32,
    notifications: VecDeque<(i64, WatcherEvent)>,
    /// The zxid of the last reply, for checking notification zxids against.
    last_zxid: i64,
}

impl RawClient {
    /// Connects and completes the handshake for a new session.
    fn connect(port: u16) -> RawClient {
        Self::connect_with(port, false)
    }

    /// Connects with the given "read-only is acceptable" flag; checks that the server answers
    /// with the same read-only state.
    fn connect_with(port: u16, read_only: bool) -> RawClient {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to ZooKeeper");
        stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        let mut client = RawClient {
            stream,
            frames: FrameDecoder::new(MAX_FRAME),
            next_xid: 1,
            notifications: VecDeque::new(),
            last_zxid: 0,
        };
        let mut out = Vec::new();
        encode_connect_request(
            &mut out,
            MAX_FRAME,
            &ConnectRequest {
                protocol_version: 0,
                last_zxid_seen: 0,
                timeout: 4000,
                session_id: 0,
                passwd: Bytes::from_static(&[0; PASSWORD_LEN]),
                read_only: Some(read_only),
            },
        )
        .unwrap();
        client.stream.write_all(&out).unwrap();
        let frame = client.read_frame();
        let resp = decode_connect_response(frame.clone())
            .unwrap_or_else(|e| panic!("a ConnectResponse, not {frame:02x?}: {e}"));
        assert!(resp.timeout > 0, "session refused: {resp:?}");
        assert_ne!(resp.session_id, 0);
        assert_eq!(resp.read_only, Some(read_only));
        client
    }

    fn read_frame(&mut self) -> Bytes {
        loop {
            if let Some(frame) = self.frames.next_frame().expect("a well-formed frame") {
                return frame;
            }
            let mut buf = [0u8; 4096];
            let n = self.stream.read(&mut buf).expect("read from ZooKeeper");
            assert!(n > 0, "ZooKeeper closed the connection");
            self.frames.extend(&buf[..n]);
        }
    }

    /// Sends `req` and returns its reply; notifications arriving first are queued.
    fn call(&mut self, req: Request) -> Result<Response, ErrorCode> {
        let xid = self.next_xid;
        self.next_xid += 1;
        let op: OpCode = req.op_code();
        let mut out = Vec::new();
        encode_request(&mut out, MAX_FRAME, xid, &req).unwrap();
        self.stream.write_all(&out).unwrap();
        loop {
            let (header, body) = decode_reply_header(self.read_frame()).unwrap();
            if header.xid == xid::NOTIFICATION {
                let event = decode_notification(body).unwrap();
                self.notifications.push_back((header.zxid, event));
                continue;
            }
            assert_eq!(header.xid, xid, "replies come in request order");
            self.last_zxid = header.zxid;
            return decode_reply(&header, op, body).unwrap();
        }
    }

    /// The next notification: `(zxid from its header, event)`.
    fn notification(&mut self) -> (i64, WatcherEvent) {
        if let Some(n) = self.notifications.pop_front() {
            return n;
        }
        let (header, body) = decode_reply_header(self.read_frame()).unwrap();
        assert_eq!(header.xid, xid::NOTIFICATION, "expected a notification");
        (header.zxid, decode_notification(body).unwrap())
    }

    fn create(&mut self, path: &str, data: &[u8]) -> Result<Response, ErrorCode> {
        self.call(Request::Create(CreateRequest {
            path: path.into(),
            data: Some(Bytes::copy_from_slice(data)),
            acl: Acl::open_unsafe().into(),
            flags: CreateMode::Persistent.code(),
        }))
    }

    fn get_data(&mut self, path: &str) -> Result<Response, ErrorCode> {
        self.call(Request::GetData(PathWatchRequest {
            path: path.into(),
            watch: false,
        }))
    }
}

fn start(opts: EnsembleOptions) -> Ensemble {
    let what = format!("ZooKeeper {} x{}", opts.version, opts.size);
    let started = Instant::now();
    let ens = Ensemble::start(opts).unwrap_or_else(|e| panic!("{what} did not start: {e}"));
    eprintln!("{what} ready in {:?}", started.elapsed());
    ens
}

fn assert_data(resp: Result<Response, ErrorCode>, want: &[u8]) {
    match resp {
        Ok(Response::Data { data, .. }) => assert_eq!(data.as_deref(), Some(want)),
        other => panic!("expected data {want:?}, got {other:?}"),
    }
}

/// Whether a process exists (Linux: its /proc entry).
fn process_exists(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Handshake, create, getData, a TTL node, and one exists-watch fired from a second session.
/// Returns `(zxid of the watched create, zxid in the notification header)`.
fn round_trip(ens: &Ensemble) -> (i64, i64) {
    let port = ens.node(0).unwrap().port();
    let mut a = RawClient::connect(port);
    assert_eq!(
        a.create("/rt", b"hello"),
        Ok(Response::Create { path: "/rt".into() })
    );
    assert_data(a.get_data("/rt"), b"hello");
    assert_eq!(a.create("/rt", b"again"), Err(ErrorCode::NodeExists));

    // extended_types is on by default: TTL nodes are accepted.
    let ttl = a.call(Request::CreateTtl(CreateTtlRequest {
        path: "/ttl".into(),
        data: None,
        acl: Acl::open_unsafe().into(),
        flags: CreateMode::PersistentWithTtl.code(),
        ttl: 60_000,
    }));
    assert!(
        matches!(ttl, Ok(Response::Create2 { ref path, .. }) if path == "/ttl"),
        "{ttl:?}"
    );

    let watched = a.call(Request::Exists(PathWatchRequest {
        path: "/rt/w".into(),
        watch: true,
    }));
    assert_eq!(watched, Err(ErrorCode::NoNode));
    let mut b = RawClient::connect(port);
    b.create("/rt/w", b"").unwrap();
    let create_zxid = b.last_zxid;
    let (zxid, event) = a.notification();
    assert_eq!(event.event_type, EventType::NodeCreated);
    assert_eq!(event.path, "/rt/w");
    (create_zxid, zxid)
}

#[test]
fn standalone_3_8_round_trip_and_four_letter_words() {
    let ens = start(EnsembleOptions::standalone(ZkVersion::V3_8));
    assert_eq!(ens.version(), ZkVersion::V3_8);
    assert_eq!(ens.size(), 1);
    assert_eq!(ens.leader(), Some(0), "a standalone server leads itself");
    assert_eq!(ens.mode(0), Some(ServerMode::Standalone));
    assert_eq!(
        ens.connect_string(),
        format!("127.0.0.1:{}", ens.node(0).unwrap().port())
    );

    assert_eq!(ens.four_letter(0, "ruok").unwrap(), "imok");
    let srvr = ens.four_letter(0, "srvr").unwrap();
    assert!(srvr.starts_with("Zookeeper version: 3.8.0"), "{srvr}");
    let mntr = ens.four_letter(0, "mntr").unwrap();
    assert!(mntr.contains("zk_server_state\tstandalone"), "{mntr}");
    // The whitelist is `*`: a word outside the default set answers.
    let conf = ens.four_letter(0, "conf").unwrap();
    assert!(conf.contains("tickTime=200"), "{conf}");
    assert!(ens.four_letter(0, "toolong").is_err());
    assert!(ens.four_letter(7, "ruok").is_err());

    let (create_zxid, notification_zxid) = round_trip(&ens);
    assert!(create_zxid > 0);
    assert_eq!(notification_zxid, -1, "3.8 notifications carry zxid -1");

    // Logging goes to the node's own file.
    let tail = ens.log_tail(0, 200);
    assert!(tail.contains("zookeeper.log"), "{tail}");
}

#[test]
fn standalone_3_9_round_trip_and_notification_zxid() {
    let ens = start(EnsembleOptions::standalone(ZkVersion::V3_9));
    assert_eq!(ens.version(), ZkVersion::V3_9);
    let srvr = ens.four_letter(0, "srvr").unwrap();
    assert!(srvr.starts_with("Zookeeper version: 3.9.5"), "{srvr}");
    assert_eq!(ens.mode(0), Some(ServerMode::Standalone));

    let (create_zxid, notification_zxid) = round_trip(&ens);
    assert_ne!(notification_zxid, -1, "3.9 notifications carry a zxid");
    assert_eq!(notification_zxid, create_zxid, "the zxid of the create");

    let tail = ens.log_tail(0, 200);
    assert!(tail.contains("zookeeper.log"), "{tail}");
}

#[test]
fn standalone_stop_restart_keeps_data_and_port() {
    let mut opts = EnsembleOptions::standalone(ZkVersion::V3_8);
    // Every kind of setting reaches the server.
    opts.extra_config.push("maxClientCnxns=33".into());
    opts.system_properties
        .push(("jute.maxbuffer".into(), "2000000".into()));
    opts.extended_types = false;
    let mut ens = start(opts);
    let port = ens.node(0).unwrap().port();
    let conf = ens.four_letter(0, "conf").unwrap();
    assert!(conf.contains("maxClientCnxns=33"), "{conf}");

    let mut c = RawClient::connect(port);
    // 1.5 MB passes only because jute.maxbuffer was raised from its default of 1 MiB - 1.
    let big = vec![7u8; 1_500_000];
    c.create("/big", &big).unwrap();
    let ttl = c.call(Request::CreateTtl(CreateTtlRequest {
        path: "/ttl".into(),
        data: None,
        acl: Acl::open_unsafe().into(),
        flags: CreateMode::PersistentWithTtl.code(),
        ttl: 60_000,
    }));
    assert_eq!(ttl, Err(ErrorCode::Unimplemented), "TTL nodes are off");
    c.create("/kept", b"v1").unwrap();
    drop(c);
    let first = ens.pid(0).unwrap();
    ens.stop(0).unwrap();
    assert_eq!(ens.pid(0), None);
    assert!(!process_exists(first));
    assert!(ens.four_letter(0, "ruok").is_err(), "a stopped server");
    assert_eq!(ens.leader(), None);

    ens.restart(0).unwrap();
    assert_ne!(ens.pid(0), Some(first));
    assert_eq!(ens.node(0).unwrap().port(), port, "same port after restart");
    assert_data(RawClient::connect(port).get_data("/kept"), b"v1");
}

/// Polls `f` until it returns `Some`, for up to 30 s.
fn eventually<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn quorum_3_8_survives_leader_kill_pause_and_restart() {
    let mut ens = start(EnsembleOptions::quorum(ZkVersion::V3_8, 3));
    let ports: Vec<u16> = ens.nodes().iter().map(|n| n.port()).collect();
    assert_eq!(
        ens.connect_string(),
        format!(
            "127.0.0.1:{},127.0.0.1:{},127.0.0.1:{}",
            ports[0], ports[1], ports[2]
        )
    );
    let leader = ens.leader().expect("a leader after start");
    let modes: Vec<_> = (0..3).map(|i| ens.mode(i)).collect();
    for (i, mode) in modes.iter().enumerate() {
        let want = if i == leader {
            ServerMode::Leader
        } else {
            ServerMode::Follower
        };
        assert_eq!(mode.as_ref(), Some(&want), "node {i}: {modes:?}");
    }
    let pids: Vec<u32> = (0..3).map(|i| ens.pid(i).unwrap()).collect();

    // A write through one server is visible through another.
    let follower = (leader + 1) % 3;
    let other = (leader + 2) % 3;
    RawClient::connect(ports[follower])
        .create("/q", b"one")
        .unwrap();
    let mut survivor = RawClient::connect(ports[other]);
    survivor
        .call(Request::Sync(PathRequest { path: "/q".into() }))
        .unwrap();
    assert_data(survivor.get_data("/q"), b"one");

    // Pause a follower: it answers nothing, then catches up once resumed.
    ens.pause(follower).unwrap();
    assert!(ens.node(follower).unwrap().is_paused());
    assert!(
        ens.four_letter(follower, "ruok").is_err(),
        "a paused server"
    );
    assert_eq!(ens.mode(follower), None);
    ens.resume(follower).unwrap();
    ens.wait_ready(follower).unwrap();
    assert_eq!(ens.pid(follower), Some(pids[follower]), "same JVM");

    // kill -9 the leader: the other two elect a new one, and a session on a survivor works.
    ens.kill(leader).unwrap();
    assert!(!process_exists(pids[leader]));
    ens.wait_all_ready().unwrap();
    let new_leader = ens.leader().expect("a new leader");
    assert_ne!(new_leader, leader);
    let mut after = RawClient::connect(ports[other]);
    after.create("/q/after", b"two").unwrap();
    assert_data(after.get_data("/q"), b"one");

    // The killed node comes back on its ports and data, as a follower, and has the new write.
    ens.restart(leader).unwrap();
    assert_eq!(ens.mode(leader), Some(ServerMode::Follower));
    let mut back = RawClient::connect(ports[leader]);
    back.call(Request::Sync(PathRequest {
        path: "/q/after".into(),
    }))
    .unwrap();
    assert_data(back.get_data("/q/after"), b"two");
    eventually("the new leader to count two synced followers", || {
        let mntr = ens.four_letter(new_leader, "mntr").ok()?;
        mntr.contains("zk_synced_followers\t2").then_some(())
    });
}

#[test]
fn drop_kills_every_jvm_of_a_3_9_quorum_even_paused() {
    let (pids, root) = {
        let mut ens = start(EnsembleOptions::quorum(ZkVersion::V3_9, 3));
        let leader = ens.leader().expect("a leader");
        let srvr = ens.four_letter(leader, "srvr").unwrap();
        assert!(srvr.starts_with("Zookeeper version: 3.9.5"), "{srvr}");
        let mut c = RawClient::connect(ens.node(leader).unwrap().port());
        c.create("/x", b"y").unwrap();
        let pids: Vec<u32> = (0..3).map(|i| ens.pid(i).unwrap()).collect();
        assert!(pids.iter().all(|&p| process_exists(p)));
        // A paused JVM must die too (SIGKILL works on stopped processes; SIGCONT goes first).
        ens.pause((leader + 1) % 3).unwrap();
        (pids, ens.root().to_path_buf())
    };
    for pid in pids {
        assert!(!process_exists(pid), "JVM {pid} outlived its Ensemble");
    }
    if std::env::var_os("ZK_RS_KEEP").is_none() {
        assert!(!root.exists(), "{} outlived its Ensemble", root.display());
    }
}

#[test]
fn read_only_mode_3_9_serves_reads_without_quorum() {
    let mut opts = EnsembleOptions::quorum(ZkVersion::V3_9, 3);
    opts.read_only_mode = true;
    // Since 3.7.0 (ZOOKEEPER-3863) a read-only server creates only local sessions: without
    // this it answers a ConnectRequest with a bare ReplyHeader {xid 0, err NotReadOnly}.
    opts.extra_config.push("localSessionsEnabled=true".into());
    opts.extra_config
        .push("localSessionsUpgradingEnabled=true".into());
    let mut ens = start(opts);
    let leader = ens.leader().expect("a leader");
    let port = ens.node(leader).unwrap().port();
    RawClient::connect(port).create("/ro", b"data").unwrap();
    assert_eq!(ens.four_letter(leader, "isro").unwrap(), "rw");

    // Take the quorum away from the leader: it turns read-only (after about 2 s).
    for i in (0..3).filter(|&i| i != leader) {
        ens.stop(i).unwrap();
    }
    ens.wait_for_mode(leader, ServerMode::ReadOnly).unwrap();
    assert_eq!(ens.four_letter(leader, "isro").unwrap(), "ro");
    let mut ro = RawClient::connect_with(port, true);
    assert_data(ro.get_data("/ro"), b"data");
    assert_eq!(ro.create("/ro/no", b""), Err(ErrorCode::NotReadOnly));

    // One node back makes a quorum of two again.
    let back = (leader + 1) % 3;
    ens.restart(back).unwrap();
    ens.wait_ready(leader).unwrap();
    ens.wait_all_ready().unwrap();
    assert_eq!(ens.four_letter(leader, "isro").unwrap(), "rw");
}

#[test]
fn drop_during_a_panic_kills_the_jvm() {
    let pid = std::sync::Mutex::new(None);
    let result = std::panic::catch_unwind(|| {
        let ens = start(EnsembleOptions::standalone(ZkVersion::V3_8));
        *pid.lock().unwrap() = ens.pid(0);
        panic!("a test failing with its servers running");
    });
    assert!(result.is_err());
    let pid = pid.lock().unwrap().expect("the server had started");
    assert!(!process_exists(pid), "JVM {pid} outlived a panicking test");
}

#[test]
fn missing_installation_names_the_setup_script() {
    // Another test may read ZK_RS_CACHE concurrently, so point it nowhere only in a child
    // process: re-run this test binary's own helper test with the variable set.
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new(exe)
        .args(["--exact", "missing_installation_helper", "--nocapture"])
        .env("ZK_RS_CACHE", "/nonexistent/zk-rs-cache")
        .env("ZK_RS_MISSING_HELPER", "1")
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("helper saw: ZooKeeper 3.9.5 is not installed"),
        "{text}"
    );
    assert!(text.contains("run scripts/setup-zookeeper"), "{text}");
}

/// Runs only inside `missing_installation_names_the_setup_script`'s child process.
#[test]
fn missing_installation_helper() {
    if std::env::var_os("ZK_RS_MISSING_HELPER").is_none() {
        return;
    }
    let err = Ensemble::start(EnsembleOptions::standalone(ZkVersion::V3_9)).unwrap_err();
    println!("helper saw: {err}");
}
