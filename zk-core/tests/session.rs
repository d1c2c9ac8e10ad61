//! The session machine stepped by hand against a scripted server: each test plays the server's
//! side frame by frame (with zk-core's own codec) and checks what the session sends and emits.
//! The randomized proof is the simulation in zk-testkit; these pin single rules down.

use std::time::{Duration, Instant};

use bytes::Bytes;
use zk_core::proto::*;
use zk_core::session::{Connect, Probe, RequestTimeout, SubmitOptions, WatchEnd};
use zk_core::*;

/// The session plus everything it emitted, drained after every step as the contract requires.
struct Harness {
    s: Session,
    now: Instant,
    events: Vec<Event>,
    sent: Vec<u8>,
    connects: Vec<Connect>,
    closes: Vec<ConnId>,
    probes: Vec<Probe>,
}

impl Harness {
    fn new(config: SessionConfig) -> Self {
        let now = Instant::now();
        let mut h = Harness {
            s: Session::new(config, now),
            now,
            events: Vec::new(),
            sent: Vec::new(),
            connects: Vec::new(),
            closes: Vec::new(),
            probes: Vec::new(),
        };
        h.drain();
        h
    }

    fn with(cs: &str) -> Self {
        let mut c = SessionConfig::new(cs).unwrap();
        c.randomize_hosts = false;
        c.session_timeout = Duration::from_secs(6);
        Harness::new(c)
    }

    /// A harness whose first connection is up: session 1, 6 s, on the first host of `cs`.
    fn connected(cs: &str) -> (Self, ConnId) {
        let mut h = Harness::with(cs);
        let conn = h.connect_next();
        h.accept(conn, 1, 6000);
        (h, conn)
    }

    fn drain(&mut self) {
        while let Some(c) = self.s.poll_connect() {
            self.connects.push(c);
        }
        while let Some(c) = self.s.poll_close() {
            self.closes.push(c);
        }
        while let Some(p) = self.s.poll_probe() {
            self.probes.push(p);
        }
        let mut buf = Vec::new();
        while self.s.poll_transmit(&mut buf).is_some() {
            self.sent.extend_from_slice(&buf);
            buf.clear();
        }
        while let Some(e) = self.s.poll_event() {
            self.events.push(e);
        }
    }

    fn advance(&mut self, d: Duration) {
        self.now += d;
        self.s.handle_timeout(self.now);
        self.drain();
    }

    /// Runs timers until the session asks to dial, and opens that connection.
    fn connect_next(&mut self) -> ConnId {
        for _ in 0..1000 {
            if let Some(c) = self.connects.pop() {
                self.s.handle_connected(self.now, c.conn);
                self.drain();
                return c.conn;
            }
            let at = self.s.poll_timeout().expect("a dial is scheduled");
            self.now = self.now.max(at);
            self.s.handle_timeout(self.now);
            self.drain();
        }
        panic!("the session never dialed");
    }

    /// Frames the session sent since the last call (the first may be a ConnectRequest).
    fn take_frames(&mut self) -> Vec<Bytes> {
        let mut d = FrameDecoder::new(usize::MAX >> 1);
        d.extend(&std::mem::take(&mut self.sent));
        std::iter::from_fn(|| d.next_frame().unwrap()).collect()
    }

    fn take_requests(&mut self) -> Vec<(RequestHeader, Request)> {
        self.take_frames()
            .into_iter()
            .map(|f| {
                let (h, body) = decode_request(f).unwrap();
                (h, body.unwrap())
            })
            .collect()
    }

    fn feed(&mut self, conn: ConnId, bytes: &[u8]) {
        self.s.handle_bytes(self.now, conn, bytes);
        self.drain();
    }

    fn accept(&mut self, conn: ConnId, session_id: i64, timeout: i32) -> ConnectRequest {
        self.accept_as(conn, session_id, timeout, false)
    }

    /// Answers the handshake on `conn` as a server that is read-only if `read_only` says so.
    fn accept_as(
        &mut self,
        conn: ConnId,
        session_id: i64,
        timeout: i32,
        read_only: bool,
    ) -> ConnectRequest {
        let frames = self.take_frames();
        let req = decode_connect_request(frames[0].clone()).unwrap();
        let mut out = Vec::new();
        encode_connect_response(
            &mut out,
            usize::MAX,
            &ConnectResponse {
                protocol_version: 0,
                timeout,
                session_id,
                passwd: Bytes::from_static(&[7; 16]),
                read_only: Some(read_only),
            },
        )
        .unwrap();
        self.feed(conn, &out);
        req
    }

    fn reply(&mut self, conn: ConnId, xid: i32, zxid: i64, err: ErrorCode, body: Option<Response>) {
        let mut out = Vec::new();
        encode_reply(
            &mut out,
            usize::MAX,
            &ReplyHeader { xid, zxid, err },
            body.as_ref(),
        )
        .unwrap();
        self.feed(conn, &out);
    }

    fn notify(&mut self, conn: ConnId, event_type: EventType, path: &str) {
        let mut out = Vec::new();
        encode_notification(
            &mut out,
            usize::MAX,
            -1,
            &WatcherEvent {
                event_type,
                state: KeeperState::SyncConnected,
                path: path.into(),
            },
        )
        .unwrap();
        self.feed(conn, &out);
    }

    fn replies(&mut self) -> Vec<(RequestId, Result<Response, Error>)> {
        let mut out = Vec::new();
        self.events.retain(|e| match e {
            Event::Reply { id, result, .. } => {
                out.push((*id, result.clone()));
                false
            }
            _ => true,
        });
        out
    }
}

/// Submit options with a request timeout of `ms` milliseconds.
fn timeout_after(ms: u64) -> SubmitOptions {
    SubmitOptions {
        timeout: RequestTimeout::After(Duration::from_millis(ms)),
        ..SubmitOptions::default()
    }
}

fn get_data(path: &str, watch: bool) -> Request {
    Request::GetData(PathWatchRequest {
        path: path.into(),
        watch,
    })
}

fn stat() -> Stat {
    Stat::default()
}

fn data_reply() -> Option<Response> {
    Some(Response::Data {
        data: Some(Bytes::from_static(b"v")),
        stat: stat(),
    })
}

#[test]
fn handshake_sends_a_new_session_request_and_reports_connected() {
    let mut h = Harness::with("127.0.0.1:2181");
    let conn = h.connect_next();
    assert_eq!(h.connects.len(), 0);
    let req = h.accept(conn, 0x55, 6000);
    assert_eq!(req.session_id, 0);
    assert_eq!(req.timeout, 6000);
    assert_eq!(req.last_zxid_seen, 0);
    assert_eq!(req.read_only, Some(false));
    assert_eq!(&req.passwd[..], &[0u8; 16]);
    assert_eq!(h.events, vec![Event::State(SessionState::Connected)]);
    assert_eq!(h.s.session_id().unwrap().id, 0x55);
    assert_eq!(h.s.negotiated_timeout(), Some(Duration::from_secs(6)));
}

#[test]
fn requests_submitted_while_connecting_go_out_in_order_after_the_handshake() {
    let mut h = Harness::with("h:1");
    let a = h.s.submit(h.now, get_data("/a", false)).unwrap();
    let b = h.s.submit(h.now, get_data("/b", false)).unwrap();
    let conn = h.connect_next();
    h.accept(conn, 1, 6000);
    let reqs = h.take_requests();
    let xids: Vec<i32> = reqs.iter().map(|(hd, _)| hd.xid).collect();
    assert_eq!(xids, [1, 2]);
    assert_eq!(reqs[0].1, get_data("/a", false));
    h.reply(conn, 1, 5, ErrorCode::Ok, data_reply());
    h.reply(conn, 2, 5, ErrorCode::NoNode, None);
    let replies = h.replies();
    assert_eq!(replies[0].0, a);
    assert!(replies[0].1.is_ok());
    assert_eq!(replies[1], (b, Err(Error::NoNode { path: "/b".into() })));
    assert_eq!(h.s.last_zxid(), 5);
}

#[test]
fn a_reply_out_of_order_drops_the_connection_and_fails_what_was_in_flight() {
    let (mut h, conn) = Harness::connected("h:1");
    let a = h.s.submit(h.now, get_data("/a", false)).unwrap();
    let b = h.s.submit(h.now, get_data("/b", false)).unwrap();
    h.drain();
    h.take_frames();
    h.reply(conn, 2, 5, ErrorCode::Ok, data_reply());
    assert_eq!(h.closes, [conn]);
    let replies = h.replies();
    assert_eq!(
        replies,
        vec![
            (a, Err(Error::ConnectionLoss)),
            (b, Err(Error::ConnectionLoss))
        ]
    );
    assert!(h.events.contains(&Event::State(SessionState::Suspended)));
}

#[test]
fn garbage_from_the_server_is_a_protocol_error_not_a_panic() {
    let (mut h, conn) = Harness::connected("h:1");
    let a = h.s.submit(h.now, get_data("/a", false)).unwrap();
    h.drain();
    // A reply whose body claims a 2 GB data buffer.
    h.feed(
        conn,
        &[
            0, 0, 0, 24, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff, 0,
            0, 0, 0,
        ],
    );
    let replies = h.replies();
    assert_eq!(replies.len(), 1);
    assert_eq!(replies[0].0, a);
    assert!(matches!(replies[0].1, Err(Error::Protocol(_))));
    assert_eq!(h.closes, [conn]);
}

#[test]
fn pings_follow_send_idleness_and_silence_kills_the_link() {
    let (mut h, conn) = Harness::connected("h:1");
    h.take_frames();
    // R = 4 s; ping after 2 s without sending.
    h.advance(Duration::from_millis(1999));
    assert!(h.take_frames().is_empty());
    h.advance(Duration::from_millis(1));
    let pings = h.take_requests();
    assert_eq!(pings.len(), 1);
    assert_eq!(pings[0].0.xid, xid::PING);
    // Inbound traffic does not postpone pings: a notification arrives, pings continue.
    h.notify(conn, EventType::NodeCreated, "/x");
    h.advance(Duration::from_millis(2000));
    assert_eq!(h.take_requests().len(), 1);
    // Nothing received for R = 4 s since the notification: dead.
    h.advance(Duration::from_millis(2000));
    assert_eq!(h.closes, [conn]);
    assert_eq!(h.s.state(), SessionState::Suspended);
}

#[test]
fn reconnect_resumes_the_session_and_rearms_watches_with_the_last_zxid() {
    let mut h = Harness::with("h1:1,h2:2");
    let conn = h.connect_next();
    h.accept(conn, 0x42, 6000);
    h.s.submit(h.now, get_data("/w", true)).unwrap();
    h.s.submit(
        h.now,
        Request::Exists(PathWatchRequest {
            path: "/missing".into(),
            watch: true,
        }),
    )
    .unwrap();
    h.drain();
    h.take_frames();
    h.reply(conn, 1, 0x10, ErrorCode::Ok, data_reply());
    h.reply(conn, 2, 0x11, ErrorCode::NoNode, None);
    assert_eq!(h.s.watcher_count(), 2);
    h.s.handle_closed(h.now, conn);
    h.drain();
    let conn2 = h.connect_next();
    assert_ne!(conn, conn2);
    let req = h.accept(conn2, 0x42, 6000);
    assert_eq!(req.session_id, 0x42);
    assert_eq!(&req.passwd[..], &[7; 16]);
    assert_eq!(req.last_zxid_seen, 0x11);
    let reqs = h.take_requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].0.xid, xid::SET_WATCHES);
    assert_eq!(
        reqs[0].1,
        Request::SetWatches(SetWatches {
            relative_zxid: 0x11,
            data_watches: vec!["/w".into()],
            exist_watches: vec!["/missing".into()],
            child_watches: vec![],
        })
    );
    // The server re-arms and reports a change that happened while we were away.
    h.notify(conn2, EventType::NodeDataChanged, "/w");
    h.reply(conn2, xid::SET_WATCHES, 0x12, ErrorCode::Ok, None);
    assert!(h.events.iter().any(|e| matches!(e,
        Event::Watch { watcher, event } if *watcher == WatcherId(1) && event.path == "/w")));
}

#[test]
fn a_resume_answered_with_another_session_id_is_an_expiry() {
    let mut h = Harness::with("h:1");
    let conn = h.connect_next();
    h.accept(conn, 0x42, 6000);
    h.s.submit(h.now, get_data("/w", true)).unwrap();
    h.drain();
    h.take_frames();
    h.reply(conn, 1, 3, ErrorCode::Ok, data_reply());
    h.s.handle_closed(h.now, conn);
    h.drain();
    let conn2 = h.connect_next();
    h.accept(conn2, 0x43, 6000);
    assert!(h
        .events
        .contains(&Event::State(SessionState::Lost(LostReason::Expired))));
    assert!(h.events.contains(&Event::WatchEnded {
        watcher: WatcherId(1),
        reason: WatchEnd::SessionLost(LostReason::Expired)
    }));
    // kazoo's default: a new session follows.
    assert_eq!(h.s.state(), SessionState::Connecting);
}

#[test]
fn expiry_fails_everything_pending_and_a_dead_handle_refuses_new_requests() {
    let mut c = SessionConfig::new("h:1").unwrap();
    c.renew_after_expiry = false;
    let mut h = Harness::new(c);
    let conn = h.connect_next();
    h.accept(conn, 9, 6000);
    h.s.handle_closed(h.now, conn);
    h.drain();
    let queued = h.s.submit(h.now, get_data("/q", false)).unwrap();
    let conn2 = h.connect_next();
    h.accept(conn2, 0, 0);
    assert_eq!(h.replies(), vec![(queued, Err(Error::SessionExpired))]);
    assert_eq!(h.s.state(), SessionState::Lost(LostReason::Expired));
    assert_eq!(
        h.s.submit(h.now, get_data("/q", false)),
        Err(Error::SessionExpired)
    );
}

#[test]
fn chroot_is_added_to_requests_and_removed_from_replies_and_events() {
    let (mut h, conn) = Harness::connected("h:1/app");
    let id =
        h.s.submit(
            h.now,
            Request::Create(CreateRequest {
                path: "/n-".into(),
                data: None,
                acl: Acl::open_unsafe().into(),
                flags: 2,
            }),
        )
        .unwrap();
    h.s.submit(h.now, get_data("/", true)).unwrap();
    h.drain();
    let reqs = h.take_requests();
    let Request::Create(c) = &reqs[0].1 else {
        panic!("{reqs:?}")
    };
    assert_eq!(c.path, "/app/n-");
    assert_eq!(reqs[1].1, get_data("/app", true));
    h.reply(
        conn,
        1,
        2,
        ErrorCode::Ok,
        Some(Response::Create {
            path: "/app/n-0000000000".into(),
        }),
    );
    h.reply(conn, 2, 2, ErrorCode::Ok, data_reply());
    h.notify(conn, EventType::NodeDataChanged, "/app");
    let replies = h.replies();
    assert_eq!(
        replies[0],
        (
            id,
            Ok(Response::Create {
                path: "/n-0000000000".into()
            })
        )
    );
    assert!(h.events.iter().any(|e| matches!(e,
        Event::Watch { event, .. } if event.path == "/")));
}

#[test]
fn a_config_watch_outside_the_chroot_fires_rearms_and_is_removed_by_its_server_path() {
    // getConfig with a watch under a chroot hears of `/zookeeper/config` itself, never of the
    // client's `/zookeeper/config` (server `/app/zookeeper/config`), and a watch on that client
    // path never hears of the config.
    let (mut h, conn) = Harness::connected("h:1/app");
    let absolute = SubmitOptions {
        absolute_path: true,
        ..SubmitOptions::default()
    };
    let config =
        h.s.submit_with(h.now, get_data("/zookeeper/config", true), absolute)
            .unwrap();
    let inner =
        h.s.submit(h.now, get_data("/zookeeper/config", true))
            .unwrap();
    h.drain();
    let reqs = h.take_requests();
    assert_eq!(reqs[0].1, get_data("/zookeeper/config", true));
    assert_eq!(reqs[1].1, get_data("/app/zookeeper/config", true));
    h.reply(conn, 1, 2, ErrorCode::Ok, data_reply());
    h.reply(conn, 2, 2, ErrorCode::Ok, data_reply());
    assert_eq!(h.s.watcher_count(), 2);

    // A reconnect re-arms each at its own server path.
    h.s.handle_closed(h.now, conn);
    h.drain();
    let conn2 = h.connect_next();
    h.accept(conn2, 1, 6000);
    let reqs = h.take_requests();
    let Request::SetWatches(sw) = &reqs[0].1 else {
        panic!("{reqs:?}")
    };
    let mut data = sw.data_watches.clone();
    data.sort();
    assert_eq!(data, ["/app/zookeeper/config", "/zookeeper/config"]);
    h.reply(conn2, xid::SET_WATCHES, 3, ErrorCode::Ok, None);

    h.notify(conn2, EventType::NodeDataChanged, "/zookeeper/config");
    assert_eq!(
        watch_events_of(&h.events, config.watcher()),
        [(EventType::NodeDataChanged, "/zookeeper/config".to_string())]
    );
    assert!(watch_events_of(&h.events, inner.watcher()).is_empty());
    h.events.clear();
    h.notify(conn2, EventType::NodeDataChanged, "/app/zookeeper/config");
    assert_eq!(
        watch_events_of(&h.events, inner.watcher()),
        [(EventType::NodeDataChanged, "/zookeeper/config".to_string())]
    );

    // Dropping a config watcher tells the server the path it armed, chroot-free.
    let again =
        h.s.submit_with(h.now, get_data("/zookeeper/config", true), absolute)
            .unwrap();
    h.drain();
    h.take_frames();
    h.reply(conn2, 3, 4, ErrorCode::Ok, data_reply());
    h.s.remove_watcher(h.now, again.watcher());
    h.drain();
    let reqs = h.take_requests();
    assert_eq!(
        reqs[0].1,
        Request::RemoveWatches(WatchesRequest {
            path: "/zookeeper/config".into(),
            watcher_type: WatcherType::Data.code()
        })
    );
    // An error on a path outside the chroot names that path as the user wrote it.
    let missing =
        h.s.submit_with(h.now, get_data("/zookeeper/nope", false), absolute)
            .unwrap();
    h.drain();
    let sent = h.take_requests();
    assert_eq!(sent[0].1, get_data("/zookeeper/nope", false));
    h.replies();
    h.reply(conn2, reqs[0].0.xid, 4, ErrorCode::Ok, None);
    h.reply(conn2, sent[0].0.xid, 4, ErrorCode::NoNode, None);
    let replies = h.replies();
    let (id, Err(e)) = &replies[0] else {
        panic!("{replies:?}")
    };
    assert_eq!(*id, missing);
    assert!(e.to_string().contains("/zookeeper/nope"), "{e}");
    assert!(!e.to_string().contains('@'), "{e}");
}

#[test]
fn credentials_are_replayed_before_watches_and_queued_requests() {
    let mut c = SessionConfig::new("h:1").unwrap();
    c.auth.push(session::Credentials::digest("u", "p"));
    let mut h = Harness::new(c);
    let conn = h.connect_next();
    h.accept(conn, 1, 6000);
    let first = h.take_requests();
    assert_eq!(first[0].0.xid, xid::AUTH);
    h.reply(conn, xid::AUTH, 0, ErrorCode::Ok, None);
    h.s.submit(h.now, get_data("/w", true)).unwrap();
    h.drain();
    h.take_frames();
    h.reply(conn, 1, 3, ErrorCode::Ok, data_reply());
    h.s.handle_closed(h.now, conn);
    let q = h.s.submit(h.now, get_data("/q", false)).unwrap();
    h.drain();
    let conn2 = h.connect_next();
    h.accept(conn2, 1, 6000);
    let xids: Vec<i32> = h.take_requests().iter().map(|(hd, _)| hd.xid).collect();
    assert_eq!(xids, [xid::AUTH, xid::SET_WATCHES, 2]);
    // The auth reply may overtake; the queued request still resolves once.
    h.reply(conn2, xid::AUTH, 0, ErrorCode::Ok, None);
    h.reply(conn2, xid::SET_WATCHES, 3, ErrorCode::Ok, None);
    h.reply(conn2, 2, 3, ErrorCode::Ok, data_reply());
    assert_eq!(h.replies().iter().filter(|(id, _)| *id == q).count(), 1);
}

#[test]
fn auth_failure_ends_the_session() {
    let (mut h, conn) = Harness::connected("h:1");
    let id =
        h.s.submit(
            h.now,
            Request::Auth(AuthPacket {
                auth_type: 0,
                scheme: "nosuch".into(),
                auth: Bytes::from_static(b"x"),
            }),
        )
        .unwrap();
    h.drain();
    assert_eq!(h.take_requests()[0].0.xid, xid::AUTH);
    h.reply(conn, xid::AUTH, 0, ErrorCode::AuthFailed, None);
    assert_eq!(h.replies(), vec![(id, Err(Error::AuthFailed))]);
    assert_eq!(h.s.state(), SessionState::Lost(LostReason::AuthFailed));
    assert_eq!(
        h.s.submit(h.now, get_data("/", false)),
        Err(Error::AuthFailed)
    );
}

#[test]
fn request_timeout_resolves_once_and_the_late_reply_is_discarded() {
    let (mut h, conn) = Harness::connected("h:1");
    let options = timeout_after(100);
    let a =
        h.s.submit_with(h.now, get_data("/a", false), options)
            .unwrap();
    let b = h.s.submit(h.now, get_data("/b", false)).unwrap();
    h.drain();
    h.take_frames();
    h.advance(Duration::from_millis(100));
    assert_eq!(h.replies(), vec![(a, Err(Error::Timeout))]);
    h.reply(conn, 1, 2, ErrorCode::Ok, data_reply());
    h.reply(conn, 2, 2, ErrorCode::Ok, data_reply());
    let replies = h.replies();
    assert_eq!(replies.len(), 1);
    assert_eq!(replies[0].0, b);
}

#[test]
fn close_sends_close_session_and_waits_for_its_reply() {
    let (mut h, conn) = Harness::connected("h:1");
    h.s.submit(h.now, get_data("/w", true)).unwrap();
    h.drain();
    h.take_frames();
    h.reply(conn, 1, 2, ErrorCode::Ok, data_reply());
    h.s.close(h.now);
    h.drain();
    let reqs = h.take_requests();
    assert_eq!(reqs[0].1, Request::CloseSession);
    assert_eq!(h.s.submit(h.now, get_data("/", false)), Err(Error::Closed));
    h.reply(conn, reqs[0].0.xid, 3, ErrorCode::Ok, None);
    assert_eq!(h.s.state(), SessionState::Lost(LostReason::Closed));
    assert!(h.events.contains(&Event::WatchEnded {
        watcher: WatcherId(1),
        reason: WatchEnd::SessionLost(LostReason::Closed)
    }));
    assert_eq!(h.closes, [conn]);
    assert_eq!(
        h.s.poll_timeout(),
        None,
        "a closed session needs no more wakeups"
    );
}

#[test]
fn oversize_requests_and_bad_paths_are_refused_before_sending() {
    let mut h = Harness::with("h:1");
    let big = Request::SetData(SetDataRequest {
        path: "/x".into(),
        data: Some(Bytes::from(vec![0u8; SERVER_MAX_FRAME])),
        version: -1,
    });
    assert!(matches!(
        h.s.submit(h.now, big),
        Err(Error::RequestTooLarge { .. })
    ));
    assert!(matches!(
        h.s.submit(h.now, get_data("nope", false)),
        Err(Error::InvalidPath { .. })
    ));
    assert_eq!(h.s.pending_requests(), 0);
}

#[test]
fn a_newer_op_waits_for_the_server_version_and_fails_typed_on_an_old_server() {
    let (mut h, conn) = Harness::connected("h:1");
    let id =
        h.s.submit(
            h.now,
            Request::GetEphemerals(PathRequest { path: "/".into() }),
        )
        .unwrap();
    let after = h.s.submit(h.now, get_data("/a", false)).unwrap();
    h.drain();
    assert!(
        h.take_frames().is_empty(),
        "nothing goes out before the version is known"
    );
    let probe = h.probes.pop().unwrap();
    assert_eq!(probe.command, "srvr");
    assert_eq!(probe.conn, Some(conn));
    h.s.handle_probe_result(
        h.now,
        probe.id,
        Ok("Zookeeper version: 3.5.10-x, built on y\n"),
    );
    h.drain();
    let reqs = h.take_requests();
    assert_eq!(reqs.len(), 1, "only the getData goes out");
    assert_eq!(reqs[0].1, get_data("/a", false));
    let replies = h.replies();
    assert!(matches!(replies[0], (i, Err(Error::Unsupported { .. })) if i == id));
    assert_eq!(h.s.server_version(), Some(ServerVersion::new(3, 5, 10)));
    // Known now: refused synchronously.
    assert!(matches!(
        h.s.submit(h.now, Request::WhoAmI),
        Err(Error::Unsupported { .. })
    ));
    h.reply(conn, 1, 1, ErrorCode::Ok, data_reply());
    assert_eq!(h.replies()[0].0, after);
}

#[test]
fn a_server_exactly_at_the_needed_version_gets_the_request() {
    // getEphemerals came in 3.6.0: a 3.6.0 server must be sent it, not told it is too old.
    let (mut h, _) = Harness::connected("h:1");
    let id =
        h.s.submit(
            h.now,
            Request::GetEphemerals(PathRequest { path: "/".into() }),
        )
        .unwrap();
    h.drain();
    let probe = h.probes.pop().unwrap();
    h.s.handle_probe_result(
        h.now,
        probe.id,
        Ok("Zookeeper version: 3.6.0-x, built on y\n"),
    );
    h.drain();
    let reqs = h.take_requests();
    assert_eq!(reqs.len(), 1, "the getEphemerals goes out");
    assert!(matches!(reqs[0].1, Request::GetEphemerals(_)));
    assert!(
        h.replies().iter().all(|(i, _)| *i != id),
        "not failed locally"
    );
}

#[test]
fn a_probe_has_until_the_connect_timeout_and_a_late_answer_to_an_old_probe_is_ignored() {
    let ephemerals = || Request::GetEphemerals(PathRequest { path: "/".into() });
    let (mut h, conn) = Harness::connected("h:1");
    let first = h.s.submit(h.now, ephemerals()).unwrap();
    h.drain();
    let p1 = h.probes.pop().expect("a version probe");
    // Well inside the connect timeout (6 s here) the probe is still awaited, so its answer
    // counts: 3.5 is too old for getEphemerals.
    h.advance(Duration::from_secs(1));
    h.s.handle_probe_result(
        h.now,
        p1.id,
        Ok("Zookeeper version: 3.5.10-x, built on y\n"),
    );
    h.drain();
    assert!(matches!(
        h.replies().as_slice(),
        [(i, Err(Error::Unsupported { .. }))] if *i == first
    ));
    // A new connection forgets the version and probes again, under a new id; an answer that
    // arrives late for the old probe is not taken for the new one.
    h.s.handle_closed(h.now, conn);
    h.drain();
    let conn = h.connect_next();
    h.accept(conn, 1, 6000);
    h.take_frames();
    let second = h.s.submit(h.now, ephemerals()).unwrap();
    h.drain();
    let p2 = h.probes.pop().expect("a second version probe");
    assert_ne!(p1.id, p2.id, "probe ids are not reused");
    h.s.handle_probe_result(h.now, p1.id, Ok("Zookeeper version: 3.9.0-x, built on y\n"));
    h.drain();
    assert!(
        h.take_frames().is_empty(),
        "still waiting for the new probe"
    );
    h.s.handle_probe_result(h.now, p2.id, Ok("Zookeeper version: 3.9.0-x, built on y\n"));
    h.drain();
    assert_eq!(h.take_requests().len(), 1);
    assert!(h.replies().iter().all(|(i, _)| *i != second));
}

#[test]
fn a_read_only_server_is_left_for_a_writable_one_found_by_probing() {
    let mut c = SessionConfig::new("h1:1,h2:2").unwrap();
    c.randomize_hosts = false;
    c.read_only = true;
    let mut h = Harness::new(c);
    let conn = h.connect_next();
    let req = h.accept_as(conn, 5, 6000, true);
    assert_eq!(req.read_only, Some(true));
    assert_eq!(h.s.state(), SessionState::ConnectedReadOnly);
    h.advance(Duration::from_millis(100));
    let probe = h.probes.pop().expect("a probe after 100 ms");
    assert_eq!(probe.command, "isro");
    assert_eq!(probe.addr, HostAddr::new("h2", 2));
    h.s.handle_probe_result(h.now, probe.id, Ok("rw"));
    h.drain();
    assert_eq!(h.closes, [conn]);
    let conn2 = h.connect_next();
    let req = h.accept(conn2, 6, 6000);
    assert_eq!(
        req.session_id, 0,
        "a session only ever seen read-only is not resumed (Java's seenRwServerBefore)"
    );
    assert_eq!(h.s.state(), SessionState::Connected);
}

#[test]
fn connect_attempts_rotate_hosts_and_back_off_per_pass() {
    let mut h = Harness::with("h1:1,h2:2,h3:3");
    let mut hosts = Vec::new();
    let mut times = Vec::new();
    let start = h.now;
    for _ in 0..9 {
        let conn = loop {
            if let Some(c) = h.connects.pop() {
                hosts.push(c.addr.port);
                break c.conn;
            }
            let at = h.s.poll_timeout().unwrap();
            h.now = at;
            h.s.handle_timeout(at);
            h.drain();
        };
        times.push(h.now - start);
        h.s.handle_closed(h.now, conn);
        h.drain();
    }
    assert_eq!(hosts, [1, 2, 3, 1, 2, 3, 1, 2, 3]);
    // The gap before a new pass is the backoff (>= 50 ms of 100 ms, then of 200 ms); within a
    // pass only the short jitter (<= 50 ms).
    let gaps: Vec<Duration> = times.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(gaps[2] >= Duration::from_millis(50), "{gaps:?}");
    assert!(gaps[5] >= Duration::from_millis(100), "{gaps:?}");
    for i in [0, 1, 3, 4, 6, 7] {
        assert!(gaps[i] <= Duration::from_millis(50), "{gaps:?}");
    }
}

#[test]
fn dropping_the_last_watcher_removes_the_server_watch() {
    let (mut h, conn) = Harness::connected("h:1");
    let id = h.s.submit(h.now, get_data("/w", true)).unwrap();
    h.drain();
    h.take_frames();
    h.reply(conn, 1, 2, ErrorCode::Ok, data_reply());
    h.s.remove_watcher(h.now, id.watcher());
    h.drain();
    let reqs = h.take_requests();
    assert_eq!(
        reqs[0].1,
        Request::RemoveWatches(WatchesRequest {
            path: "/w".into(),
            watcher_type: WatcherType::Data.code()
        })
    );
    // Its reply is the session's own business: no event.
    h.replies();
    h.reply(conn, reqs[0].0.xid, 2, ErrorCode::NoWatcher, None);
    assert!(h.replies().is_empty());
    assert!((h.s.watcher_count() == 0));
}

#[test]
fn client_side_expiry_when_enabled() {
    let mut c = SessionConfig::new("h:1").unwrap();
    c.client_side_expiry = true;
    c.renew_after_expiry = false;
    let mut h = Harness::new(c);
    let conn = h.connect_next();
    h.accept(conn, 1, 6000);
    h.s.handle_closed(h.now, conn);
    h.drain();
    // Every reconnection attempt fails; after 6 s without hearing from a server, expire.
    for _ in 0..1000 {
        if h.s.state() == SessionState::Lost(LostReason::Expired) {
            break;
        }
        if let Some(c) = h.connects.pop() {
            h.s.handle_closed(h.now, c.conn);
            h.drain();
            continue;
        }
        let at = h.s.poll_timeout().unwrap();
        h.now = at;
        h.s.handle_timeout(at);
        h.drain();
    }
    assert_eq!(h.s.state(), SessionState::Lost(LostReason::Expired));
}

#[test]
fn an_ended_session_asks_for_no_wakeups_even_with_request_timeouts() {
    let mut c = SessionConfig::new("h:1").unwrap();
    c.request_timeout = Some(Duration::from_millis(1500));
    let mut h = Harness::new(c);
    let conn = h.connect_next();
    h.accept(conn, 1, 6000);
    h.s.submit(h.now, get_data("/a", false)).unwrap();
    h.drain();
    h.take_frames();
    h.reply(conn, 1, 2, ErrorCode::Ok, data_reply());
    h.s.close(h.now);
    h.drain();
    let reqs = h.take_requests();
    h.reply(conn, reqs[0].0.xid, 3, ErrorCode::Ok, None);
    assert_eq!(h.s.state(), SessionState::Lost(LostReason::Closed));
    assert_eq!(h.s.poll_timeout(), None);
}

#[test]
fn a_sent_auth_request_times_out_once() {
    let (mut h, conn) = Harness::connected("h:1");
    let options = timeout_after(100);
    let auth = Request::Auth(AuthPacket {
        auth_type: 0,
        scheme: "digest".into(),
        auth: Bytes::from_static(b"u:p"),
    });
    let id = h.s.submit_with(h.now, auth, options).unwrap();
    h.drain();
    assert_eq!(h.take_requests()[0].0.xid, xid::AUTH);
    h.advance(Duration::from_millis(100));
    assert_eq!(h.replies(), vec![(id, Err(Error::Timeout))]);
    // The late reply finds nobody waiting.
    h.reply(conn, xid::AUTH, 0, ErrorCode::Ok, None);
    assert!(h.replies().is_empty());
    assert_eq!(h.s.state(), SessionState::Connected);
}

#[test]
fn a_successful_remove_watches_ends_the_local_watchers_it_removed() {
    let (mut h, conn) = Harness::connected("h:1");
    let data = h.s.submit(h.now, get_data("/w", true)).unwrap();
    let child =
        h.s.submit(
            h.now,
            Request::GetChildren(PathWatchRequest {
                path: "/w".into(),
                watch: true,
            }),
        )
        .unwrap();
    h.drain();
    h.take_frames();
    h.reply(conn, 1, 2, ErrorCode::Ok, data_reply());
    h.reply(
        conn,
        2,
        2,
        ErrorCode::Ok,
        Some(Response::Children {
            children: ChildNames::new(),
        }),
    );
    assert_eq!(h.s.watcher_count(), 2);
    h.s.submit(
        h.now,
        Request::RemoveWatches(WatchesRequest {
            path: "/w".into(),
            watcher_type: WatcherType::Children.code(),
        }),
    )
    .unwrap();
    h.drain();
    h.take_frames();
    h.reply(conn, 3, 2, ErrorCode::Ok, None);
    assert!(h.events.contains(&Event::WatchEnded {
        watcher: child.watcher(),
        reason: WatchEnd::Removed
    }));
    assert!(h.s.has_watcher(data.watcher()));
    assert!(!h.s.has_watcher(child.watcher()));
    assert_eq!(h.s.watcher(data.watcher()), Some(("/w", WatchKind::Data)));
    assert_eq!(h.s.watcher(child.watcher()), None);
    assert_eq!(h.s.watcher_count(), 1);
}

#[test]
fn session_id_is_none_before_the_handshake_and_kept_while_suspended() {
    let mut h = Harness::with("h1:1,h2:2");
    assert_eq!(h.s.session_id(), None);
    let conn = h.connect_next();
    assert_eq!(h.s.session_id(), None, "handshake under way");
    h.accept(conn, 0x42, 6000);
    assert_eq!(h.s.session_id().map(|s| s.id), Some(0x42));
    h.s.handle_closed(h.now, conn);
    h.drain();
    assert_eq!(h.s.state(), SessionState::Suspended);
    assert_eq!(
        h.s.session_id().map(|s| s.id),
        Some(0x42),
        "a suspended session may still be alive"
    );
}

#[test]
fn session_id_is_none_once_close_is_called() {
    let mut h = Harness::with("h:1");
    let conn = h.connect_next();
    h.accept(conn, 0x42, 6000);
    h.s.close(h.now);
    h.drain();
    assert_eq!(
        h.s.session_id(),
        None,
        "closing: the id must not be resumed"
    );
    let reqs = h.take_requests();
    h.reply(conn, reqs[0].0.xid, 3, ErrorCode::Ok, None);
    assert_eq!(h.s.state(), SessionState::Lost(LostReason::Closed));
    assert_eq!(h.s.session_id(), None);
}

#[test]
fn session_id_is_none_after_expiry_and_while_a_new_session_connects() {
    let mut h = Harness::with("h:1");
    let conn = h.connect_next();
    h.accept(conn, 0x42, 6000);
    h.s.handle_closed(h.now, conn);
    h.drain();
    let conn2 = h.connect_next();
    h.accept(conn2, 0, 0);
    assert!(h
        .events
        .contains(&Event::State(SessionState::Lost(LostReason::Expired))));
    assert_eq!(h.s.state(), SessionState::Connecting);
    assert_eq!(h.s.session_id(), None);
    let conn3 = h.connect_next();
    assert_eq!(
        h.s.session_id(),
        None,
        "the renewal's handshake is under way"
    );
    h.accept(conn3, 0x43, 6000);
    assert_eq!(h.s.session_id().map(|s| s.id), Some(0x43));

    let mut c = SessionConfig::new("h:1").unwrap();
    c.renew_after_expiry = false;
    let mut h = Harness::new(c);
    let conn = h.connect_next();
    h.accept(conn, 0x42, 6000);
    h.s.handle_closed(h.now, conn);
    h.drain();
    let conn2 = h.connect_next();
    h.accept(conn2, 0, 0);
    assert_eq!(h.s.state(), SessionState::Lost(LostReason::Expired));
    assert_eq!(h.s.session_id(), None);
}

#[test]
fn session_id_is_none_after_an_auth_failure() {
    let mut h = Harness::with("h:1");
    let conn = h.connect_next();
    h.accept(conn, 0x42, 6000);
    h.s.submit(
        h.now,
        Request::Auth(AuthPacket {
            auth_type: 0,
            scheme: "nosuch".into(),
            auth: Bytes::from_static(b"x"),
        }),
    )
    .unwrap();
    h.drain();
    h.take_frames();
    h.reply(conn, xid::AUTH, 0, ErrorCode::AuthFailed, None);
    assert_eq!(h.s.state(), SessionState::Lost(LostReason::AuthFailed));
    assert_eq!(h.s.session_id(), None);
}

#[test]
fn a_resumed_session_reports_its_id_until_the_server_answers() {
    let mut c = SessionConfig::new("h:1").unwrap();
    c.resume = Some(SessionId {
        id: 0x42,
        password: Bytes::from_static(&[7; 16]),
    });
    let mut h = Harness::new(c);
    assert_eq!(h.s.session_id().map(|s| s.id), Some(0x42));
    let conn = h.connect_next();
    h.accept(conn, 0, 0);
    assert_eq!(h.s.session_id(), None, "the server says it expired");
}

fn add_watch(path: &str, mode: AddWatchMode) -> Request {
    Request::AddWatch(AddWatchRequest {
        path: path.into(),
        mode: mode.code(),
    })
}

fn add_watch_reply() -> Option<Response> {
    Some(Response::AddWatch { err: ErrorCode::Ok })
}

/// A harness connected to a 3.8 server (so addWatch needs no version probe).
fn connected_38(cs: &str) -> (Harness, ConnId) {
    let mut c = SessionConfig::new(cs).unwrap();
    c.randomize_hosts = false;
    c.session_timeout = Duration::from_secs(6);
    c.server_version = Some(ServerVersion::new(3, 8, 0));
    let mut h = Harness::new(c);
    let conn = h.connect_next();
    h.accept(conn, 0x42, 6000);
    h.take_frames();
    (h, conn)
}

fn resyncs(events: &[Event]) -> Vec<WatcherId> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::WatchResync { watcher } => Some(*watcher),
            _ => None,
        })
        .collect()
}

#[test]
fn reconnect_resyncs_persistent_watchers_after_rearming_them() {
    let (mut h, conn) = connected_38("h1:1,h2:2");
    let p =
        h.s.submit(h.now, add_watch("/p", AddWatchMode::Persistent))
            .unwrap();
    let r =
        h.s.submit(h.now, add_watch("/r", AddWatchMode::PersistentRecursive))
            .unwrap();
    h.s.submit(h.now, get_data("/d", true)).unwrap();
    h.drain();
    h.take_frames();
    h.reply(conn, 1, 5, ErrorCode::Ok, add_watch_reply());
    h.reply(conn, 2, 5, ErrorCode::Ok, add_watch_reply());
    h.reply(conn, 3, 5, ErrorCode::Ok, data_reply());
    assert!(
        resyncs(&h.events).is_empty(),
        "nothing to resync on the first connection"
    );
    h.events.clear();

    h.s.handle_closed(h.now, conn);
    h.drain();
    let conn2 = h.connect_next();
    h.accept(conn2, 0x42, 6000);
    // Both persistent watchers, in id order; the one-shot data watch gets catch-up events from
    // the server instead.
    assert_eq!(resyncs(&h.events), [p.watcher(), r.watcher()]);
    let connected = h
        .events
        .iter()
        .position(|e| *e == Event::State(SessionState::Connected))
        .unwrap();
    let first_resync = h
        .events
        .iter()
        .position(|e| matches!(e, Event::WatchResync { .. }))
        .unwrap();
    assert!(connected < first_resync);
    // The consumer re-reads on seeing it: the read goes out after the re-arming SetWatches2.
    h.s.submit(h.now, get_data("/p", false)).unwrap();
    h.drain();
    let reqs = h.take_requests();
    assert!(matches!(reqs[0].1, Request::SetWatches2(_)), "{reqs:?}");
    assert_eq!(reqs.last().unwrap().1, get_data("/p", false));
}

#[test]
fn watch_resync_waits_for_the_version_probe_that_holds_the_rearming_back() {
    let mut h = Harness::with("h:1");
    let conn = h.connect_next();
    h.accept(conn, 0x42, 6000);
    let p =
        h.s.submit(h.now, add_watch("/p", AddWatchMode::Persistent))
            .unwrap();
    h.drain();
    let probe = h.probes.pop().unwrap();
    h.s.handle_probe_result(
        h.now,
        probe.id,
        Ok("Zookeeper version: 3.8.4-x, built on y\n"),
    );
    h.drain();
    h.take_frames();
    h.reply(conn, 1, 5, ErrorCode::Ok, add_watch_reply());
    h.s.handle_closed(h.now, conn);
    h.drain();
    h.events.clear();
    let conn2 = h.connect_next();
    h.accept(conn2, 0x42, 6000);
    // Connected, but the server's version is unknown again: re-arming waits for `srvr`, and so
    // does the resync. A read submitted now is queued behind the re-arming all the same.
    assert!(resyncs(&h.events).is_empty());
    h.s.submit(h.now, get_data("/p", false)).unwrap();
    h.drain();
    assert!(h.take_frames().is_empty());
    let probe = h.probes.pop().unwrap();
    h.s.handle_probe_result(
        h.now,
        probe.id,
        Ok("Zookeeper version: 3.8.4-x, built on y\n"),
    );
    h.drain();
    assert_eq!(resyncs(&h.events), [p.watcher()]);
    let reqs = h.take_requests();
    assert!(matches!(reqs[0].1, Request::SetWatches2(_)), "{reqs:?}");
    assert_eq!(reqs[1].1, get_data("/p", false));
}

#[test]
fn no_watch_resync_after_a_new_session() {
    let (mut h, conn) = connected_38("h:1");
    let p =
        h.s.submit(h.now, add_watch("/p", AddWatchMode::Persistent))
            .unwrap();
    h.drain();
    h.take_frames();
    h.reply(conn, 1, 5, ErrorCode::Ok, add_watch_reply());
    h.s.handle_closed(h.now, conn);
    h.drain();
    let conn2 = h.connect_next();
    h.accept(conn2, 0, 0);
    assert!(h.events.contains(&Event::WatchEnded {
        watcher: p.watcher(),
        reason: WatchEnd::SessionLost(LostReason::Expired)
    }));
    let conn3 = h.connect_next();
    h.accept(conn3, 0x43, 6000);
    assert_eq!(h.s.state(), SessionState::Connected);
    assert!(resyncs(&h.events).is_empty());
}

/// Runs timers until the session asks to dial, and returns that connection without opening it.
fn dial_next(h: &mut Harness) -> ConnId {
    dial_next_addr(h).0
}

/// [`dial_next`], also naming the host dialed.
fn dial_next_addr(h: &mut Harness) -> (ConnId, HostAddr) {
    for _ in 0..1000 {
        if let Some(c) = h.connects.pop() {
            return (c.conn, c.addr);
        }
        let at = h.s.poll_timeout().expect("a dial is scheduled");
        h.now = h.now.max(at);
        h.s.handle_timeout(h.now);
        h.drain();
    }
    panic!("the session never dialed");
}

/// Runs the clock to the session's next deadline.
fn to_next_deadline(h: &mut Harness) {
    let at = h.s.poll_timeout().expect("a deadline");
    h.now = h.now.max(at);
    h.s.handle_timeout(h.now);
    h.drain();
}

fn causes(h: &Harness) -> Vec<String> {
    h.s.connect_failures()
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn connect_failures_keep_the_last_cause_per_host_and_clear_once_connected() {
    let mut h = Harness::with("h1:1,h2:2,h3:3");
    assert!(h.s.connect_failures().is_empty());
    // h1: the driver could not dial.
    let c = dial_next(&mut h);
    h.s.handle_connect_failed(h.now, c, "connection refused");
    h.drain();
    // h2: the server answers the handshake with garbage.
    let c = h.connect_next();
    h.take_frames();
    h.feed(c, &[0, 0, 0, 4, 0, 0, 0, 0]);
    assert_eq!(h.closes, [c]);
    // h3: the TCP connection never opens.
    dial_next(&mut h);
    to_next_deadline(&mut h);
    assert_eq!(
        causes(&h),
        [
            "h1:1: connection refused",
            "h2:2: handshake failed: bad ConnectResponse: truncated record: needed 4 more bytes, 0 left",
            "h3:3: connect timeout: the TCP connection did not open in time",
        ]
    );
    // Second pass: h1 closes during the handshake, h2 never answers it; each entry is replaced.
    let c = h.connect_next();
    h.s.handle_closed(h.now, c);
    h.drain();
    h.connect_next();
    to_next_deadline(&mut h);
    assert_eq!(
        causes(&h),
        [
            "h1:1: connection closed during the handshake",
            "h2:2: connect timeout: the server did not answer the handshake in time",
            "h3:3: connect timeout: the TCP connection did not open in time",
        ]
    );
    let c = h.connect_next();
    h.accept(c, 0x42, 6000);
    assert!(h.s.connect_failures().is_empty());
    // A lost link is not a failed attempt.
    h.s.handle_closed(h.now, c);
    h.drain();
    assert!(h.s.connect_failures().is_empty());
    assert_eq!(h.s.state(), SessionState::Suspended);
}

#[test]
fn handle_connect_failed_moves_on_like_handle_closed_and_ignores_stale_connections() {
    let mut h = Harness::with("h1:1,h2:2");
    let first = dial_next(&mut h);
    h.s.handle_connect_failed(h.now, first, "no such host");
    h.drain();
    assert_eq!(h.s.current_conn(), None);
    let second = dial_next(&mut h);
    assert_ne!(first, second);
    // A late report about the first attempt changes nothing.
    h.s.handle_connect_failed(h.now, first, "connection refused");
    h.drain();
    assert_eq!(h.s.current_conn(), Some(second));
    assert_eq!(causes(&h), ["h1:1: no such host"]);
    h.s.handle_connected(h.now, second);
    h.drain();
    h.accept(second, 1, 6000);
    assert_eq!(h.s.state(), SessionState::Connected);
}

fn watch_states(events: &[Event]) -> Vec<SessionState> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Watch { event, .. } => Some(event.state),
            _ => None,
        })
        .collect()
}

#[test]
fn watch_events_carry_the_session_state() {
    let (mut h, conn) = Harness::connected("h:1");
    h.s.submit(h.now, get_data("/w", true)).unwrap();
    h.drain();
    h.take_frames();
    h.reply(conn, 1, 2, ErrorCode::Ok, data_reply());
    h.notify(conn, EventType::NodeDataChanged, "/w");
    assert_eq!(watch_states(&h.events), [SessionState::Connected]);

    let mut c = SessionConfig::new("h:1").unwrap();
    c.read_only = true;
    let mut h = Harness::new(c);
    let conn = h.connect_next();
    h.accept_as(conn, 5, 6000, true);
    h.s.submit(h.now, get_data("/w", true)).unwrap();
    h.drain();
    h.take_frames();
    h.reply(conn, 1, 2, ErrorCode::Ok, data_reply());
    h.notify(conn, EventType::NodeDataChanged, "/w");
    assert_eq!(watch_states(&h.events), [SessionState::ConnectedReadOnly]);
}

fn hosts(list: &[(&str, u16)]) -> Vec<HostAddr> {
    list.iter().map(|(h, p)| HostAddr::new(*h, *p)).collect()
}

#[test]
fn set_hosts_keeps_a_connection_to_a_server_still_listed() {
    let mut h = Harness::with("h1:1,h2:2/app");
    let conn = h.connect_next();
    h.accept(conn, 0x42, 6000);
    h.s.set_hosts(h.now, hosts(&[("h3", 3), ("h1", 1)]))
        .unwrap();
    h.drain();
    assert!(h.closes.is_empty());
    assert_eq!(h.s.state(), SessionState::Connected);
    assert_eq!(h.s.current_host(), Some(&HostAddr::new("h1", 1)));
    assert_eq!(h.s.hosts(), &hosts(&[("h3", 3), ("h1", 1)])[..]);
    assert_eq!(h.s.chroot().as_str(), Some("/app"));
    // When that link dies, the next attempt goes to the new list.
    h.s.handle_closed(h.now, conn);
    h.drain();
    let (next, addr) = dial_next_addr(&mut h);
    assert_eq!(addr, HostAddr::new("h3", 3));
    assert_eq!(h.s.current_conn(), Some(next));
}

#[test]
fn set_hosts_moves_off_a_removed_server_and_resumes_the_session_there() {
    let mut h = Harness::with("h1:1,h2:2");
    let conn = h.connect_next();
    h.accept(conn, 0x42, 6000);
    h.s.submit(h.now, get_data("/w", true)).unwrap();
    h.drain();
    h.take_frames();
    h.reply(conn, 1, 5, ErrorCode::Ok, data_reply());
    h.events.clear();
    let in_flight = h.s.submit(h.now, get_data("/a", false)).unwrap();
    h.drain();
    h.take_frames();
    h.s.set_hosts(h.now, hosts(&[("h3", 3)])).unwrap();
    h.drain();
    assert_eq!(h.closes, [conn], "the session drops the link itself");
    assert_eq!(h.s.state(), SessionState::Suspended);
    assert_eq!(h.replies(), vec![(in_flight, Err(Error::ConnectionLoss))]);
    // Input from the dropped connection is ignored.
    h.reply(conn, 2, 6, ErrorCode::Ok, data_reply());
    assert!(h.replies().is_empty());
    let (conn2, addr) = dial_next_addr(&mut h);
    assert_eq!(addr, HostAddr::new("h3", 3));
    h.s.handle_connected(h.now, conn2);
    h.drain();
    let req = h.accept(conn2, 0x42, 6000);
    assert_eq!(
        req.session_id, 0x42,
        "the same session resumes on the new server"
    );
    assert_eq!(h.s.state(), SessionState::Connected);
    assert_eq!(h.s.current_host(), Some(&HostAddr::new("h3", 3)));
    let reqs = h.take_requests();
    assert!(matches!(reqs[0].1, Request::SetWatches(_)), "{reqs:?}");
}

#[test]
fn set_hosts_abandons_an_attempt_to_a_removed_host() {
    // Dialing.
    let mut h = Harness::with("h1:1,h2:2");
    let c = dial_next(&mut h);
    h.s.set_hosts(h.now, hosts(&[("h3", 3)])).unwrap();
    h.drain();
    assert_eq!(h.closes, [c]);
    assert!(
        h.s.connect_failures().is_empty(),
        "our decision, not a failure"
    );
    h.s.handle_connected(h.now, c);
    h.drain();
    assert_eq!(
        h.closes,
        [c, c],
        "a late open of the abandoned attempt is closed"
    );
    let c2 = dial_next(&mut h);
    assert_ne!(c2, c);
    assert_eq!(h.s.current_conn(), Some(c2));
    // Handshaking.
    let mut h = Harness::with("h1:1,h2:2");
    let c = h.connect_next();
    h.s.set_hosts(h.now, hosts(&[("h2", 2)])).unwrap();
    h.drain();
    assert_eq!(h.closes, [c]);
    h.sent.clear();
    let c2 = h.connect_next();
    h.accept(c2, 1, 6000);
    assert_eq!(h.s.current_host(), Some(&HostAddr::new("h2", 2)));
    // An attempt to a host that stays listed goes on.
    let mut h = Harness::with("h1:1,h2:2");
    let c = h.connect_next();
    h.s.set_hosts(h.now, hosts(&[("h2", 2), ("h1", 1)]))
        .unwrap();
    h.drain();
    assert!(h.closes.is_empty());
    h.accept(c, 1, 6000);
    assert_eq!(h.s.current_host(), Some(&HostAddr::new("h1", 1)));
}

#[test]
fn set_hosts_refuses_an_empty_list_and_a_finished_session() {
    let mut h = Harness::with("h1:1/app");
    assert!(matches!(
        h.s.set_hosts(h.now, Vec::new()),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        h.s.set_hosts(h.now, hosts(&[("h2", 0)])),
        Err(Error::InvalidArgument(_))
    ));
    assert_eq!(h.s.hosts(), &hosts(&[("h1", 1)])[..], "nothing changed");
    h.s.close(h.now);
    h.drain();
    assert_eq!(
        h.s.set_hosts(h.now, hosts(&[("h2", 2)])),
        Err(Error::Closed)
    );
}

#[test]
fn set_hosts_shuffles_the_new_list_with_the_seeded_rng() {
    let order = |seed: u64| {
        let mut c = SessionConfig::new("h0:1").unwrap();
        c.randomize_hosts = true;
        c.rng_seed = seed;
        c.reconnect.attempt_jitter = Duration::ZERO;
        let mut h = Harness::new(c);
        let new: Vec<HostAddr> = (1..=6).map(|i| HostAddr::new(format!("n{i}"), 1)).collect();
        h.s.set_hosts(h.now, new).unwrap();
        h.drain();
        let mut ports = Vec::new();
        for _ in 0..6 {
            let (c, addr) = dial_next_addr(&mut h);
            ports.push(addr.host);
            h.s.handle_closed(h.now, c);
            h.drain();
        }
        ports
    };
    let a = order(7);
    assert_eq!(a, order(7), "the seed fixes the order");
    let mut sorted = a.clone();
    sorted.sort();
    assert_eq!(sorted, ["n1", "n2", "n3", "n4", "n5", "n6"]);
    assert!(
        (0..20).any(|seed| order(seed) != a),
        "different seeds shuffle differently"
    );
}

#[test]
fn handle_timeout_acts_exactly_when_poll_timeout_says() {
    let mut c = SessionConfig::new("h1:1,h2:2").unwrap();
    c.randomize_hosts = false;
    c.request_timeout = Some(Duration::from_millis(1500));
    c.client_side_expiry = true;
    c.session_timeout = Duration::from_secs(6);
    let mut h = Harness::new(c);
    let mut accepted = 0;
    let mut reasons = std::collections::BTreeSet::new();
    for step in 0..300 {
        if let Some(c) = h.connects.pop() {
            h.s.handle_connected(h.now, c.conn);
            h.drain();
            // Some handshakes are answered, the others time out.
            if step % 3 != 0 {
                h.accept(c.conn, 0x42, 6000);
                accepted += 1;
            }
        }
        if step % 5 == 0 {
            let _ = h.s.submit(h.now, get_data("/a", false));
            h.drain();
        }
        h.events.clear();
        h.sent.clear();
        h.closes.clear();
        let Some((at, why)) = h.s.next_wakeup() else {
            break;
        };
        assert_eq!(h.s.poll_timeout(), Some(at));
        reasons.insert(format!("{why:?}"));
        if at > h.now {
            // Just before: nothing happens and the deadline stays.
            h.now = at - Duration::from_micros(1);
            h.s.handle_timeout(h.now);
            h.drain();
            assert!(
                h.events.is_empty() && h.sent.is_empty() && h.closes.is_empty(),
                "step {step}: {why:?} acted early"
            );
            assert!(h.connects.is_empty(), "step {step}: {why:?} dialed early");
            assert_eq!(h.s.poll_timeout(), Some(at), "step {step}");
        }
        // At the deadline: the timer fires.
        h.now = at;
        h.s.handle_timeout(h.now);
        h.drain();
        let acted = !h.events.is_empty()
            || !h.sent.is_empty()
            || !h.closes.is_empty()
            || !h.connects.is_empty()
            || h.s.poll_timeout() != Some(at);
        assert!(acted, "step {step}: {why:?} at its deadline did nothing");
    }
    assert!(accepted > 0);
    for why in [
        "Dial",
        "ConnectTimeout",
        "Ping",
        "ReadTimeout",
        "RequestTimeout",
    ] {
        assert!(reasons.contains(why), "{why} never came up: {reasons:?}");
    }
}

/// A scripted SASL mechanism: sends "hi", answers "challenge" with "answer", completes on "done",
/// stops unfinished on "stop"; it keeps the default refusal hint.
#[derive(Debug)]
struct ScriptedSasl;

struct ScriptedRun {
    complete: bool,
}

impl zk_core::session::SaslClient for ScriptedRun {
    fn mechanism(&self) -> &str {
        "SCRIPTED"
    }
    fn initial(&mut self) -> Result<Vec<u8>, String> {
        Ok(b"hi".to_vec())
    }
    fn step(&mut self, challenge: &[u8]) -> Result<Option<Vec<u8>>, String> {
        match challenge {
            b"challenge" => Ok(Some(b"answer".to_vec())),
            b"done" => {
                self.complete = true;
                Ok(None)
            }
            // Nothing more to send, yet not authenticated: an exchange that ends unfinished.
            b"stop" => Ok(None),
            other => Err(format!("unexpected {other:?}")),
        }
    }
    fn is_complete(&self) -> bool {
        self.complete
    }
}

impl zk_core::session::SaslFactory for ScriptedSasl {
    fn start(&self, _server: &zk_core::HostAddr) -> Box<dyn zk_core::session::SaslClient> {
        Box::new(ScriptedRun { complete: false })
    }
}

fn sasl_harness() -> Harness {
    let mut c = SessionConfig::new("h:1").unwrap();
    c.randomize_hosts = false;
    c.session_timeout = Duration::from_secs(6);
    c.auth.push(zk_core::session::Credentials::digest("u", "p"));
    c.sasl = Some(std::sync::Arc::new(ScriptedSasl));
    Harness::new(c)
}

fn sasl_token(t: &[u8]) -> Request {
    Request::Sasl(SaslToken {
        token: Some(Bytes::copy_from_slice(t)),
    })
}

#[test]
fn sasl_runs_first_and_holds_everything_else_back() {
    let mut h = sasl_harness();
    let queued = h.s.submit(h.now, get_data("/a", false)).unwrap();
    let conn = h.connect_next();
    h.accept(conn, 1, 6000);
    // Only the first SASL token: no Connected yet, no auth packet, no queued request.
    let reqs = h.take_requests();
    assert_eq!(reqs.len(), 1, "{reqs:?}");
    assert_eq!(reqs[0].0.op, 102, "op sasl");
    assert_eq!(reqs[0].1, sasl_token(b"hi"));
    assert!(h.events.is_empty(), "{:?}", h.events);
    let xid = reqs[0].0.xid;
    h.reply(
        conn,
        xid,
        0,
        ErrorCode::Ok,
        Some(Response::Sasl(SaslToken {
            token: Some(Bytes::from_static(b"challenge")),
        })),
    );
    let reqs = h.take_requests();
    assert_eq!(reqs.len(), 1, "{reqs:?}");
    assert_eq!(reqs[0].1, sasl_token(b"answer"));
    let xid = reqs[0].0.xid;
    h.reply(
        conn,
        xid,
        0,
        ErrorCode::Ok,
        Some(Response::Sasl(SaslToken {
            token: Some(Bytes::from_static(b"done")),
        })),
    );
    // Now the connection is up: the state, then the auth replay, then the queued request.
    assert_eq!(h.events, vec![Event::State(SessionState::Connected)]);
    let reqs = h.take_requests();
    assert_eq!(reqs.len(), 2, "{reqs:?}");
    assert_eq!(reqs[0].0.xid, -4, "auth packet first");
    assert_eq!(reqs[1].1, get_data("/a", false));
    h.reply(conn, reqs[1].0.xid, 3, ErrorCode::Ok, data_reply());
    let replies = h.replies();
    assert_eq!(replies[0].0, queued);
    assert!(replies[0].1.is_ok());
}

#[test]
fn a_sasl_exchange_that_ends_unfinished_is_an_auth_failure() {
    let mut h = sasl_harness();
    let conn = h.connect_next();
    h.accept(conn, 1, 6000);
    let reqs = h.take_requests();
    h.reply(
        conn,
        reqs[0].0.xid,
        0,
        ErrorCode::Ok,
        Some(Response::Sasl(SaslToken {
            token: Some(Bytes::from_static(b"stop")),
        })),
    );
    assert_eq!(h.s.state(), SessionState::Lost(LostReason::AuthFailed));
    let why = h.s.auth_failure().expect("a reason");
    assert!(why.contains("ended unfinished"), "{why}");
}

#[test]
fn a_refused_sasl_login_ends_the_session_with_auth_failed_and_says_why() {
    let mut h = sasl_harness();
    let queued = h.s.submit(h.now, get_data("/a", false)).unwrap();
    let conn = h.connect_next();
    h.accept(conn, 1, 6000);
    let reqs = h.take_requests();
    h.reply(conn, reqs[0].0.xid, 0, ErrorCode::AuthFailed, None);
    assert!(h
        .events
        .contains(&Event::State(SessionState::Lost(LostReason::AuthFailed))));
    let replies = h.replies();
    assert_eq!(replies, vec![(queued, Err(Error::AuthFailed))]);
    let why = h.s.auth_failure().expect("a reason");
    assert!(why.contains("SCRIPTED") && why.contains("-115"), "{why}");
    assert!(
        why.contains("the server refused the credentials"),
        "the hint: {why}"
    );
    assert!(h.closes.contains(&conn), "the connection is dropped");
}

#[test]
fn requests_beyond_max_in_flight_wait_in_order_and_their_timeouts_run_while_they_wait() {
    let mut c = SessionConfig::new("h:1").unwrap();
    c.session_timeout = Duration::from_secs(6);
    c.max_in_flight = 2;
    let mut h = Harness::new(c);
    let conn = h.connect_next();
    h.accept(conn, 1, 6000);
    let ids: Vec<RequestId> = (0..4)
        .map(|i| {
            h.s.submit(h.now, get_data(&format!("/n{i}"), false))
                .unwrap()
        })
        .collect();
    let waiting = timeout_after(100);
    let late =
        h.s.submit_with(h.now, get_data("/late", false), waiting)
            .unwrap();
    h.drain();
    // Only two go out; the rest wait on the client.
    let sent: Vec<String> = h
        .take_requests()
        .into_iter()
        .map(|(_, r)| match r {
            Request::GetData(g) => g.path,
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(sent, ["/n0", "/n1"]);
    assert_eq!(h.s.in_flight(), 2);
    // The waiting request's timeout counts from its submission, not from its sending.
    h.advance(Duration::from_millis(100));
    assert_eq!(h.replies(), vec![(late, Err(Error::Timeout))]);
    // Each reply lets the next waiting request out, in submission order.
    h.reply(conn, 1, 5, ErrorCode::Ok, data_reply());
    let next: Vec<i32> = h.take_requests().iter().map(|(hd, _)| hd.xid).collect();
    assert_eq!(next, [3]);
    h.reply(conn, 2, 5, ErrorCode::Ok, data_reply());
    h.reply(conn, 3, 5, ErrorCode::Ok, data_reply());
    let next: Vec<String> = h
        .take_requests()
        .into_iter()
        .map(|(_, r)| match r {
            Request::GetData(g) => g.path,
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(next, ["/n3"], "the timed-out request is never sent");
    h.reply(conn, 4, 5, ErrorCode::Ok, data_reply());
    let done: Vec<RequestId> = h.replies().into_iter().map(|(id, _)| id).collect();
    assert_eq!(done, ids);
}

/// A notification carrying `zxid` (3.9 servers send the change's zxid).
fn notify_at(h: &mut Harness, conn: ConnId, zxid: i64, event_type: EventType, path: &str) {
    let mut out = Vec::new();
    encode_notification(
        &mut out,
        usize::MAX,
        zxid,
        &WatcherEvent {
            event_type,
            state: KeeperState::SyncConnected,
            path: path.into(),
        },
    )
    .unwrap();
    h.feed(conn, &out);
}

fn watch_events_of(events: &[Event], w: WatcherId) -> Vec<(EventType, String)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Watch { watcher, event } if *watcher == w => {
                Some((event.event_type, event.path.clone()))
            }
            _ => None,
        })
        .collect()
}

#[test]
fn a_one_shot_watch_riding_on_a_persistent_one_is_rearmed_so_it_catches_up() {
    let (mut h, conn) = connected_38("h1:1,h2:2");
    h.s.submit(h.now, add_watch("/p", AddWatchMode::Persistent))
        .unwrap();
    h.drain();
    h.take_frames();
    h.reply(conn, 1, 5, ErrorCode::Ok, add_watch_reply());
    let rider = h.s.submit(h.now, get_data("/p", true)).unwrap();
    h.drain();
    let reqs = h.take_requests();
    assert_eq!(reqs[0].1, get_data("/p", false), "it rides: no watch flag");
    h.reply(conn, 2, 6, ErrorCode::Ok, data_reply());
    h.s.handle_closed(h.now, conn);
    h.drain();
    let conn2 = h.connect_next();
    h.accept(conn2, 0x42, 6000);
    let reqs = h.take_requests();
    // The persistent watch comes back silently (ZOOKEEPER-4698); only the data list makes the
    // server fire a change the rider missed while away. Listed before the persistent list, the
    // one-shot mode cannot displace it on servers before 3.9.
    assert_eq!(
        reqs[0].1,
        Request::SetWatches2(SetWatches2 {
            relative_zxid: 6,
            data_watches: vec!["/p".into()],
            exist_watches: vec![],
            child_watches: vec![],
            persistent_watches: vec!["/p".into()],
            persistent_recursive_watches: vec![],
        })
    );
    h.notify(conn2, EventType::NodeDataChanged, "/p");
    assert_eq!(
        watch_events_of(&h.events, rider.watcher()),
        [(EventType::NodeDataChanged, "/p".to_owned())]
    );
}

#[test]
fn a_rearm_in_several_frames_takes_the_zxid_of_its_last_reply_only() {
    let mut h = Harness::with("h1:1,h2:2");
    let conn = h.connect_next();
    h.accept(conn, 0x42, 6000);
    // 300 watches on 1000-byte paths: three SetWatches frames of at most 128 KiB.
    let long = "x".repeat(990);
    for i in 0..300 {
        h.s.submit(h.now, get_data(&format!("/{i:03}{long}"), true))
            .unwrap();
    }
    h.drain();
    h.take_frames();
    for i in 0..300 {
        h.reply(conn, i + 1, 0x10, ErrorCode::Ok, data_reply());
    }
    h.s.handle_closed(h.now, conn);
    h.drain();
    let conn2 = h.connect_next();
    h.accept(conn2, 0x42, 6000);
    let reqs = h.take_requests();
    assert_eq!(reqs.len(), 3, "three frames");
    // The first frame is answered as of a later zxid; the later frames' catch-up events (for
    // changes after 0x10) are still on their way when the connection dies.
    h.reply(conn2, xid::SET_WATCHES, 0x20, ErrorCode::Ok, None);
    h.s.handle_closed(h.now, conn2);
    h.drain();
    let conn3 = h.connect_next();
    h.accept(conn3, 0x42, 6000);
    let reqs = h.take_requests();
    for (_, r) in &reqs {
        let Request::SetWatches(s) = r else {
            panic!("{r:?}")
        };
        assert_eq!(
            s.relative_zxid, 0x10,
            "still relative to what every watch heard of"
        );
    }
    // Once every frame is answered, the last reply's zxid counts.
    for _ in 0..3 {
        h.reply(conn3, xid::SET_WATCHES, 0x21, ErrorCode::Ok, None);
    }
    assert_eq!(h.s.last_zxid(), 0x21);
}

#[test]
fn a_children_changed_event_derived_for_a_recursive_parent_is_not_delivered_twice() {
    let (mut h, conn) = connected_38("h:1");
    let p =
        h.s.submit(h.now, add_watch("/a", AddWatchMode::Persistent))
            .unwrap();
    h.s.submit(h.now, add_watch("/a", AddWatchMode::PersistentRecursive))
        .unwrap();
    h.drain();
    h.take_frames();
    h.reply(conn, 1, 5, ErrorCode::Ok, add_watch_reply());
    h.reply(conn, 2, 6, ErrorCode::Ok, add_watch_reply());
    // A 3.9 server keeps both modes and sends its own NodeChildrenChanged after the child's
    // event, with the same zxid; the session derived one already.
    notify_at(&mut h, conn, 7, EventType::NodeCreated, "/a/b");
    notify_at(&mut h, conn, 7, EventType::NodeChildrenChanged, "/a");
    // Two children created in one transaction: two changes, each heard once.
    notify_at(&mut h, conn, 8, EventType::NodeCreated, "/a/c");
    notify_at(&mut h, conn, 8, EventType::NodeChildrenChanged, "/a");
    notify_at(&mut h, conn, 8, EventType::NodeCreated, "/a/d");
    notify_at(&mut h, conn, 8, EventType::NodeChildrenChanged, "/a");
    let cc = (EventType::NodeChildrenChanged, "/a".to_owned());
    assert_eq!(
        watch_events_of(&h.events, p.watcher()),
        [cc.clone(), cc.clone(), cc]
    );
}

// ---- tests that pin down rules mutation testing found unguarded (RELIABILITY.md) -----------

#[test]
fn pending_and_queued_count_what_waits_and_what_is_in_flight() {
    let mut h = Harness::with("h:1");
    h.s.submit(h.now, get_data("/a", false)).unwrap();
    h.s.submit(h.now, get_data("/b", false)).unwrap();
    assert_eq!((h.s.pending_requests(), h.s.queued()), (2, 2));
    let conn = h.connect_next();
    h.accept(conn, 1, 6000);
    assert_eq!((h.s.pending_requests(), h.s.queued()), (2, 0));
    assert_eq!(h.s.in_flight(), 2);
    h.reply(conn, 1, 2, ErrorCode::Ok, data_reply());
    h.reply(conn, 2, 2, ErrorCode::Ok, data_reply());
    assert_eq!((h.s.pending_requests(), h.s.queued()), (0, 0));
}

#[test]
fn a_request_is_not_timed_out_before_its_timeout() {
    let (mut h, conn) = Harness::connected("h:1");
    let options = timeout_after(500);
    let a =
        h.s.submit_with(h.now, get_data("/a", false), options)
            .unwrap();
    h.drain();
    h.advance(Duration::from_millis(250));
    assert!(h.replies().is_empty(), "half-way through its timeout");
    h.reply(conn, 1, 2, ErrorCode::Ok, data_reply());
    assert!(matches!(h.replies().as_slice(), [(i, Ok(_))] if *i == a));
}

#[test]
fn close_waits_for_its_reply_until_the_close_timeout() {
    let (mut h, conn) = Harness::connected("h:1");
    h.s.close(h.now);
    h.drain();
    h.take_frames();
    h.advance(Duration::from_millis(10));
    assert!(
        !matches!(h.s.state(), SessionState::Lost(_)),
        "still waiting for the server's reply"
    );
    h.reply(conn, 1, 3, ErrorCode::Ok, None);
    assert_eq!(h.s.state(), SessionState::Lost(LostReason::Closed));
}

#[test]
fn a_server_exactly_at_the_needed_version_is_not_refused_once_known() {
    let mut c = SessionConfig::new("h:1").unwrap();
    c.server_version = Some(ServerVersion::new(3, 6, 0));
    let mut h = Harness::new(c);
    let conn = h.connect_next();
    h.accept(conn, 1, 6000);
    assert!(h
        .s
        .submit(
            h.now,
            Request::GetEphemerals(PathRequest { path: "/".into() })
        )
        .is_ok());
}

#[test]
fn set_hosts_keeps_the_version_probe_of_the_live_connection() {
    let (mut h, _) = Harness::connected("h1:1,h2:2");
    h.s.submit(
        h.now,
        Request::GetEphemerals(PathRequest { path: "/".into() }),
    )
    .unwrap();
    h.drain();
    h.take_frames();
    let probe = h.probes.pop().expect("a version probe");
    h.s.set_hosts(h.now, hosts(&[("h1", 1), ("h3", 3)]))
        .unwrap();
    h.drain();
    h.s.handle_probe_result(
        h.now,
        probe.id,
        Ok("Zookeeper version: 3.9.0-x, built on y\n"),
    );
    h.drain();
    assert_eq!(h.take_requests().len(), 1, "the getEphemerals goes out");
}

#[test]
fn a_watcher_dropped_while_disconnected_sends_nothing_and_is_not_rearmed() {
    let (mut h, conn) = Harness::connected("h:1");
    let id = h.s.submit(h.now, get_data("/w", true)).unwrap();
    h.drain();
    h.take_frames();
    h.reply(conn, 1, 2, ErrorCode::Ok, data_reply());
    h.s.handle_closed(h.now, conn);
    h.drain();
    h.s.remove_watcher(h.now, id.watcher());
    h.drain();
    let conn = h.connect_next();
    h.accept(conn, 1, 6000);
    let reqs = h.take_requests();
    assert!(
        reqs.is_empty(),
        "no removal and no re-arm for a watcher gone: {reqs:?}"
    );
}

#[test]
fn a_watching_request_on_another_path_does_not_hold_back_a_removal() {
    let (mut h, conn) = Harness::connected("h:1");
    let id = h.s.submit(h.now, get_data("/w", true)).unwrap();
    h.drain();
    h.take_frames();
    h.reply(conn, 1, 2, ErrorCode::Ok, data_reply());
    // In flight, watching, but on /other.
    h.s.submit(h.now, get_data("/other", true)).unwrap();
    h.drain();
    h.take_frames();
    h.s.remove_watcher(h.now, id.watcher());
    h.drain();
    let reqs = h.take_requests();
    assert!(
        matches!(reqs.as_slice(), [(_, Request::RemoveWatches(w))] if w.path == "/w"),
        "the removal goes out at once: {reqs:?}"
    );
}

#[test]
fn bytes_from_a_connection_the_session_let_go_are_ignored() {
    let mut h = Harness::with("h:1");
    let old = h.connect_next();
    h.accept(old, 1, 6000);
    h.s.handle_closed(h.now, old);
    h.drain();
    let conn = h.connect_next();
    h.accept(conn, 1, 6000);
    assert_eq!(h.s.state(), SessionState::Connected);
    h.s.submit(h.now, get_data("/a", false)).unwrap();
    h.drain();
    h.take_frames();
    // A well-formed answer, but on the old connection: not the answer to this request.
    h.reply(old, 1, 2, ErrorCode::Ok, data_reply());
    assert!(h.replies().is_empty());
    assert_eq!(h.s.state(), SessionState::Connected);
    assert_eq!(h.s.current_conn(), Some(conn));
    h.reply(conn, 1, 2, ErrorCode::Ok, data_reply());
    assert_eq!(h.replies().len(), 1);
    assert_eq!(
        h.s.state(),
        SessionState::Connected,
        "nothing stale was decoded"
    );
}

#[test]
fn a_dial_that_fails_is_recorded_as_a_failed_connection() {
    let mut h = Harness::with("h:1");
    let conn = dial_next(&mut h);
    h.s.handle_closed(h.now, conn);
    h.drain();
    assert_eq!(causes(&h), ["h:1: connection failed"]);
}

#[test]
fn wants_transport_says_when_a_connect_close_or_probe_waits() {
    let c = SessionConfig::new("h:1").unwrap();
    let now = Instant::now();
    let mut s = Session::new(c, now);
    // The first dial is due at once.
    s.handle_timeout(now);
    assert!(s.wants_transport(), "a connect waits");
    let dial = s.poll_connect().expect("a dial");
    assert!(!s.wants_transport(), "nothing waits once it is taken");
    s.handle_connected(now, dial.conn);
    let mut buf = Vec::new();
    while s.poll_transmit(&mut buf).is_some() {}
    assert!(!s.wants_transport());
    // Garbage for a handshake: the session lets the connection go and asks the driver to close it.
    s.handle_bytes(now, dial.conn, &[0, 0, 0, 4, 0, 0, 0, 0]);
    assert!(s.wants_transport(), "a close waits");
    while s.poll_close().is_some() {}
    while s.poll_connect().is_some() {}
    while s.poll_probe().is_some() {}
    assert!(!s.wants_transport(), "all taken");
}

#[test]
fn the_chroot_is_added_to_every_request_with_a_path() {
    let (mut h, _) = connected_38("h:1/app");
    let p = || "/x".to_string();
    let requests = vec![
        Request::CreateTtl(CreateTtlRequest {
            path: p(),
            data: None,
            acl: Acl::open_unsafe().into(),
            flags: 5,
            ttl: 1000,
        }),
        Request::Delete(PathVersionRequest {
            path: p(),
            version: -1,
        }),
        Request::SetData(SetDataRequest {
            path: p(),
            data: None,
            version: -1,
        }),
        Request::GetAcl(PathRequest { path: p() }),
        Request::Sync(PathRequest { path: p() }),
        Request::GetAllChildrenNumber(PathRequest { path: p() }),
        Request::SetAcl(SetAclRequest {
            path: p(),
            acl: Acl::open_unsafe(),
            version: -1,
        }),
        Request::CheckWatches(WatchesRequest {
            path: p(),
            watcher_type: WatcherType::Any.code(),
        }),
        Request::AddWatch(AddWatchRequest {
            path: p(),
            mode: AddWatchMode::Persistent.code(),
        }),
        Request::RemoveWatches(WatchesRequest {
            path: p(),
            watcher_type: WatcherType::Any.code(),
        }),
    ];
    let n = requests.len();
    for r in requests {
        h.s.submit(h.now, r).unwrap();
    }
    h.drain();
    let sent = h.take_requests();
    assert_eq!(sent.len(), n);
    for (_, r) in sent {
        assert_eq!(r.path(), "/app/x", "{r:?}");
    }
}

#[test]
fn an_ephemerals_prefix_under_a_chroot_stays_inside_it() {
    let (mut h, _) = connected_38("h:1/app");
    for prefix in ["", "/", "/x"] {
        h.s.submit(
            h.now,
            Request::GetEphemerals(PathRequest {
                path: prefix.into(),
            }),
        )
        .unwrap();
    }
    h.drain();
    let sent: Vec<String> = h
        .take_requests()
        .into_iter()
        .map(|(_, r)| r.path().to_owned())
        .collect();
    assert_eq!(sent, ["/app/", "/app/", "/app/x"]);
}

#[test]
fn sequential_creates_inside_a_transaction_may_end_in_a_slash() {
    let (mut h, _) = connected_38("h:1");
    let create = CreateRequest {
        path: "/q/".into(),
        data: None,
        acl: Acl::open_unsafe().into(),
        flags: CreateMode::PersistentSequential as i32,
    };
    let ttl = CreateTtlRequest {
        path: "/q/".into(),
        data: None,
        acl: Acl::open_unsafe().into(),
        flags: CreateMode::PersistentSequentialWithTtl as i32,
        ttl: 1000,
    };
    assert!(h
        .s
        .submit(h.now, Request::Multi(vec![MultiOp::Create(create)]))
        .is_ok());
    assert!(h
        .s
        .submit(h.now, Request::Multi(vec![MultiOp::CreateTtl(ttl)]))
        .is_ok());
}

#[test]
fn a_request_names_its_path() {
    assert_eq!(get_data("/a/b", false).path(), "/a/b");
    assert_eq!(Request::WhoAmI.path(), "");
}

#[test]
fn reads_without_the_watch_flag_arm_no_watcher() {
    let (mut h, conn) = connected_38("h:1");
    let reads = [
        Request::Exists(PathWatchRequest {
            path: "/a".into(),
            watch: false,
        }),
        get_data("/a", false),
        Request::GetChildren(PathWatchRequest {
            path: "/a".into(),
            watch: false,
        }),
        Request::GetChildren2(PathWatchRequest {
            path: "/a".into(),
            watch: false,
        }),
    ];
    for r in reads {
        h.s.submit(h.now, r).unwrap();
    }
    h.drain();
    h.take_frames();
    h.reply(conn, 1, 2, ErrorCode::Ok, Some(Response::Stat(stat())));
    h.reply(conn, 2, 2, ErrorCode::Ok, data_reply());
    h.reply(
        conn,
        3,
        2,
        ErrorCode::Ok,
        Some(Response::Children {
            children: Default::default(),
        }),
    );
    h.reply(
        conn,
        4,
        2,
        ErrorCode::Ok,
        Some(Response::Children2 {
            children: Default::default(),
            stat: stat(),
        }),
    );
    assert_eq!(h.replies().len(), 4);
    assert_eq!(h.s.watcher_count(), 0);
}

#[test]
fn without_client_side_expiry_a_session_waits_for_the_server_to_say_so() {
    let mut c = SessionConfig::new("h:1").unwrap();
    c.renew_after_expiry = false;
    let mut h = Harness::new(c);
    let conn = h.connect_next();
    h.accept(conn, 1, 6000);
    h.s.handle_closed(h.now, conn);
    h.drain();
    let start = h.now;
    // Every reconnection attempt fails, for three session timeouts.
    while h.now < start + Duration::from_secs(18) {
        if let Some(c) = h.connects.pop() {
            h.s.handle_closed(h.now, c.conn);
            h.drain();
            continue;
        }
        let at = h.s.poll_timeout().unwrap();
        h.now = at;
        h.s.handle_timeout(at);
        h.drain();
    }
    assert_eq!(h.s.state(), SessionState::Suspended);
}

#[test]
fn a_version_probe_that_never_answers_lets_the_request_go_as_if_new_enough() {
    // Three hosts: the connect (and probe) timeout is 2 s, inside the 4 s read timeout.
    let (mut h, _) = Harness::connected("h1:1,h2:2,h3:3");
    h.s.submit(
        h.now,
        Request::GetEphemerals(PathRequest { path: "/".into() }),
    )
    .unwrap();
    h.drain();
    assert!(h.take_frames().is_empty());
    assert_eq!(h.probes.len(), 1);
    h.advance(Duration::from_millis(2100));
    let sent = h.take_requests();
    assert!(
        sent.iter()
            .any(|(_, r)| matches!(r, Request::GetEphemerals(_))),
        "{sent:?}"
    );
    assert_eq!(h.s.state(), SessionState::Connected);
}

/// A harness connected read-only to the first of `cs`'s hosts.
fn connected_read_only(cs: &str) -> (Harness, ConnId) {
    let mut c = SessionConfig::new(cs).unwrap();
    c.randomize_hosts = false;
    c.read_only = true;
    let mut h = Harness::new(c);
    let conn = h.connect_next();
    h.accept_as(conn, 5, 60_000, true);
    assert_eq!(h.s.state(), SessionState::ConnectedReadOnly);
    (h, conn)
}

#[test]
fn read_only_probes_back_off_and_visit_every_other_server_in_turn() {
    let (mut h, _) = connected_read_only("h1:1,h2:2,h3:3");
    let mut order = Vec::new();
    // Probes come after 100, 200, 400 ms (each counted from the last answer).
    for wait in [100, 200, 400] {
        h.advance(Duration::from_millis(wait / 2));
        assert!(h.probes.is_empty(), "no probe before {wait} ms");
        h.advance(Duration::from_millis(wait / 2));
        let p = h.probes.pop().expect("a probe");
        assert_eq!(p.command, "isro");
        order.push(p.addr.clone());
        h.s.handle_probe_result(h.now, p.id, Ok("ro"));
        h.drain();
    }
    assert_eq!(
        order,
        [
            HostAddr::new("h2", 2),
            HostAddr::new("h3", 3),
            HostAddr::new("h2", 2)
        ]
    );
}

#[test]
fn a_lone_read_only_server_is_not_probed() {
    let (mut h, _) = connected_read_only("h1:1");
    h.advance(Duration::from_secs(1));
    assert!(h.probes.is_empty());
}

/// The AddWatch modes of the requests sent since the last call.
fn sent_add_watch_modes(h: &mut Harness) -> Vec<(i32, String, i32)> {
    h.take_requests()
        .into_iter()
        .filter_map(|(hd, r)| match r {
            Request::AddWatch(a) => Some((hd.xid, a.path, a.mode)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_persistent_watch_on_a_recursively_watched_path_asks_for_recursive_again() {
    let (mut h, conn) = connected_38("h:1");
    let recursive = AddWatchMode::PersistentRecursive.code();
    let persistent = AddWatchMode::Persistent.code();
    // Armed recursive (answered): a persistent watch must not downgrade the server's mode.
    h.s.submit(h.now, add_watch("/p", AddWatchMode::PersistentRecursive))
        .unwrap();
    h.drain();
    let sent = sent_add_watch_modes(&mut h);
    h.reply(conn, sent[0].0, 2, ErrorCode::Ok, add_watch_reply());
    h.s.submit(h.now, add_watch("/p", AddWatchMode::Persistent))
        .unwrap();
    h.drain();
    let sent = sent_add_watch_modes(&mut h);
    assert_eq!((sent[0].1.as_str(), sent[0].2), ("/p", recursive));
    h.reply(conn, sent[0].0, 2, ErrorCode::Ok, add_watch_reply());
    // Recursive still on its way (unanswered): the same.
    h.s.submit(h.now, add_watch("/r", AddWatchMode::PersistentRecursive))
        .unwrap();
    h.s.submit(h.now, add_watch("/r", AddWatchMode::Persistent))
        .unwrap();
    h.drain();
    let sent = sent_add_watch_modes(&mut h);
    assert_eq!(sent[1].2, recursive, "{sent:?}");
    // Only persistent on the path: persistent stays persistent.
    h.s.submit(h.now, add_watch("/q", AddWatchMode::Persistent))
        .unwrap();
    h.s.submit(h.now, add_watch("/q", AddWatchMode::Persistent))
        .unwrap();
    h.drain();
    let sent = sent_add_watch_modes(&mut h);
    assert_eq!((sent[0].2, sent[1].2), (persistent, persistent));
}

/// The watch flags of the getData requests sent since the last call, by path.
fn sent_get_data_flags(h: &mut Harness) -> Vec<(String, bool)> {
    h.take_requests()
        .into_iter()
        .filter_map(|(_, r)| match r {
            Request::GetData(g) => Some((g.path, g.watch)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_queued_rider_whose_persistent_watch_went_gets_its_watch_flag_back() {
    let mut c = SessionConfig::new("h:1").unwrap();
    c.server_version = Some(ServerVersion::new(3, 8, 0));
    c.max_in_flight = 1;
    let mut h = Harness::new(c);
    let conn = h.connect_next();
    h.accept(conn, 1, 6000);
    h.take_frames();
    let p =
        h.s.submit(h.now, add_watch("/p", AddWatchMode::Persistent))
            .unwrap();
    h.drain();
    h.take_frames();
    h.reply(conn, 1, 2, ErrorCode::Ok, add_watch_reply());
    // One request fills the window; the rider waits in the queue with its flag off.
    h.s.submit(h.now, get_data("/x", false)).unwrap();
    h.s.submit(h.now, get_data("/p", true)).unwrap();
    h.drain();
    h.take_frames();
    h.s.handle_closed(h.now, conn);
    h.drain();
    // The persistent watch goes while the link is down: nothing covers the rider now.
    h.s.remove_watcher(h.now, p.watcher());
    h.drain();
    let conn = h.connect_next();
    h.accept(conn, 1, 6000);
    assert_eq!(sent_get_data_flags(&mut h), [("/p".to_string(), true)]);
}

#[test]
fn a_rider_behind_a_queued_add_watch_keeps_its_flag_off() {
    let mut c = SessionConfig::new("h:1").unwrap();
    c.server_version = Some(ServerVersion::new(3, 8, 0));
    let mut h = Harness::new(c);
    h.s.submit(h.now, add_watch("/p", AddWatchMode::Persistent))
        .unwrap();
    h.s.submit(h.now, get_data("/p", true)).unwrap();
    let conn = h.connect_next();
    h.accept(conn, 1, 6000);
    assert_eq!(sent_get_data_flags(&mut h), [("/p".to_string(), false)]);
}

#[test]
fn a_rider_behind_an_add_watch_the_server_is_too_old_for_gets_its_flag_back() {
    let mut h = Harness::with("h:1");
    h.s.submit(h.now, add_watch("/p", AddWatchMode::Persistent))
        .unwrap();
    h.s.submit(h.now, get_data("/p", true)).unwrap();
    let conn = h.connect_next();
    h.accept(conn, 1, 6000);
    let probe = h.probes.pop().expect("a version probe");
    h.s.handle_probe_result(
        h.now,
        probe.id,
        Ok("Zookeeper version: 3.5.10-x, built on y\n"),
    );
    h.drain();
    assert_eq!(sent_get_data_flags(&mut h), [("/p".to_string(), true)]);
    let _ = conn;
}

#[test]
fn persistent_watches_end_when_the_next_server_is_too_old_and_nothing_is_rearmed() {
    let (mut h, conn) = Harness::connected("h:1");
    let p =
        h.s.submit(h.now, add_watch("/p", AddWatchMode::Persistent))
            .unwrap();
    h.drain();
    let probe = h.probes.pop().expect("a version probe");
    h.s.handle_probe_result(
        h.now,
        probe.id,
        Ok("Zookeeper version: 3.9.0-x, built on y\n"),
    );
    h.drain();
    let sent = sent_add_watch_modes(&mut h);
    h.reply(conn, sent[0].0, 2, ErrorCode::Ok, add_watch_reply());
    h.s.handle_closed(h.now, conn);
    h.drain();
    let conn = h.connect_next();
    h.accept(conn, 1, 6000);
    let probe = h
        .probes
        .pop()
        .expect("a version probe on the new connection");
    h.s.handle_probe_result(
        h.now,
        probe.id,
        Ok("Zookeeper version: 3.5.10-x, built on y\n"),
    );
    h.drain();
    assert!(h.events.contains(&Event::WatchEnded {
        watcher: p.watcher(),
        reason: WatchEnd::Unsupported
    }));
    let sent = h.take_requests();
    assert!(sent.is_empty(), "nothing to re-arm: {sent:?}");
}

/// The number of SetWatches frames a reconnect sends for one-shot data watches on `paths`.
fn set_watches_frames_for(paths: &[String]) -> usize {
    let (mut h, conn) = connected_38("h:1");
    for (i, path) in paths.iter().enumerate() {
        h.s.submit(h.now, get_data(path, true)).unwrap();
        h.drain();
        h.take_frames();
        h.reply(conn, i as i32 + 1, 2, ErrorCode::Ok, data_reply());
    }
    h.s.handle_closed(h.now, conn);
    h.drain();
    let conn = h.connect_next();
    h.accept(conn, 0x42, 6000);
    h.take_requests()
        .iter()
        .filter(|(_, r)| matches!(r, Request::SetWatches(_)))
        .count()
}

#[test]
fn set_watches_batches_hold_up_to_128_kib_of_paths() {
    // A path's share of a batch is its jute string length: 4 bytes of length and its bytes.
    let path = |fill: char, len: usize| format!("/{}", fill.to_string().repeat(len - 1));
    // Exactly 128 KiB: one frame.
    let half = 64 * 1024 - 4;
    assert_eq!(
        set_watches_frames_for(&[path('a', half), path('b', half)]),
        1
    );
    // One byte more: two.
    assert_eq!(
        set_watches_frames_for(&[path('a', half), path('b', half + 1)]),
        2
    );
    // A single path longer than a batch goes alone, without an empty frame before it.
    assert_eq!(set_watches_frames_for(&[path('a', 140_000)]), 1);
}

#[test]
fn session_states_say_whether_they_are_connected_and_print_as_kazoo_names_them() {
    use SessionState::*;
    let all = [
        Connecting,
        Connected,
        ConnectedReadOnly,
        Suspended,
        Lost(LostReason::Expired),
    ];
    let connected: Vec<bool> = all.iter().map(|s| s.is_connected()).collect();
    assert_eq!(connected, [false, true, true, false, false]);
    let names: Vec<String> = all.iter().map(ToString::to_string).collect();
    assert_eq!(
        names,
        [
            "CONNECTING",
            "CONNECTED",
            "CONNECTED_RO",
            "SUSPENDED",
            "LOST(Expired)"
        ]
    );
}

#[test]
fn each_host_gets_its_share_of_the_session_timeout_to_connect() {
    // 6 s over three hosts: a TCP connection that does not open is given up after 2 s.
    let mut h = Harness::with("h1:1,h2:2,h3:3");
    dial_next(&mut h);
    h.advance(Duration::from_millis(1900));
    assert!(causes(&h).is_empty(), "{:?}", causes(&h));
    h.advance(Duration::from_millis(200));
    assert_eq!(causes(&h).len(), 1, "{:?}", causes(&h));
}

#[test]
fn pending_requests_count_auth_and_leave_out_timed_out_ones() {
    let (mut h, _) = Harness::connected("h:1");
    let options = timeout_after(100);
    h.s.submit_with(h.now, get_data("/a", false), options)
        .unwrap();
    h.s.submit(
        h.now,
        Request::Auth(AuthPacket {
            auth_type: 0,
            scheme: "digest".into(),
            auth: Bytes::from_static(b"u:p"),
        }),
    )
    .unwrap();
    h.s.submit(h.now, get_data("/b", false)).unwrap();
    h.drain();
    assert_eq!(h.s.pending_requests(), 3);
    h.advance(Duration::from_millis(100));
    assert_eq!(h.replies().len(), 1, "the first timed out");
    assert_eq!(h.s.pending_requests(), 2, "the auth and /b");
}

#[test]
fn a_request_too_new_for_the_server_fails_in_its_turn_behind_one_in_flight() {
    let (mut h, conn) = Harness::connected("h:1");
    let first = h.s.submit(h.now, get_data("/x", false)).unwrap();
    let newer =
        h.s.submit(
            h.now,
            Request::GetEphemerals(PathRequest { path: "/".into() }),
        )
        .unwrap();
    h.drain();
    h.take_frames();
    let probe = h.probes.pop().expect("a version probe");
    h.s.handle_probe_result(
        h.now,
        probe.id,
        Ok("Zookeeper version: 3.5.10-x, built on y\n"),
    );
    h.drain();
    assert!(h.replies().is_empty(), "it waits for the reply ahead of it");
    h.reply(conn, 1, 2, ErrorCode::Ok, data_reply());
    let replies = h.replies();
    assert_eq!(replies.len(), 2, "{replies:?}");
    assert_eq!(replies[0].0, first);
    assert!(matches!(replies[1], (i, Err(Error::Unsupported { .. })) if i == newer));
}

#[test]
fn queued_requests_time_out_each_at_its_own_deadline() {
    let mut h = Harness::with("h:1");
    // Not connected: both wait in the queue.
    let a =
        h.s.submit_with(h.now, get_data("/a", false), timeout_after(100))
            .unwrap();
    let b =
        h.s.submit_with(h.now, get_data("/b", false), timeout_after(1000))
            .unwrap();
    h.now += Duration::from_millis(100);
    h.s.handle_timeout(h.now);
    h.drain();
    assert_eq!(h.replies(), vec![(a, Err(Error::Timeout))]);
    h.now += Duration::from_millis(900);
    h.s.handle_timeout(h.now);
    h.drain();
    assert_eq!(h.replies(), vec![(b, Err(Error::Timeout))]);
}

/// The watch events each watcher got since the last call, as (watcher, type, path).
fn take_watch_events(h: &mut Harness) -> Vec<(u64, EventType, String)> {
    let mut out = Vec::new();
    h.events.retain(|e| match e {
        Event::Watch { watcher, event } => {
            out.push((watcher.0, event.event_type, event.path.clone()));
            false
        }
        _ => true,
    });
    out
}

#[test]
fn a_children_change_derived_for_a_persistent_watcher_is_not_delivered_twice_on_3_9() {
    let (mut h, conn) = connected_38("h:1");
    let r =
        h.s.submit(h.now, add_watch("/a", AddWatchMode::PersistentRecursive))
            .unwrap();
    let p =
        h.s.submit(h.now, add_watch("/a", AddWatchMode::Persistent))
            .unwrap();
    h.drain();
    h.take_frames();
    h.reply(conn, 1, 2, ErrorCode::Ok, add_watch_reply());
    h.reply(conn, 2, 2, ErrorCode::Ok, add_watch_reply());
    h.events.clear();
    let children_changed = (p.0, EventType::NodeChildrenChanged, "/a".to_string());
    // 3.9: the child's event, then the server's own NodeChildrenChanged of the same zxid.
    notify_at(&mut h, conn, 10, EventType::NodeCreated, "/a/b");
    notify_at(&mut h, conn, 10, EventType::NodeChildrenChanged, "/a");
    assert_eq!(
        take_watch_events(&mut h),
        [
            (r.0, EventType::NodeCreated, "/a/b".to_string()),
            children_changed.clone()
        ]
    );
    // Another change (another zxid) is delivered.
    notify_at(&mut h, conn, 11, EventType::NodeChildrenChanged, "/a");
    assert_eq!(
        take_watch_events(&mut h),
        std::slice::from_ref(&children_changed)
    );
    // Two children in one transaction: two derived, two from the server, both absorbed.
    notify_at(&mut h, conn, 12, EventType::NodeDeleted, "/a/b");
    notify_at(&mut h, conn, 12, EventType::NodeCreated, "/a/c");
    notify_at(&mut h, conn, 12, EventType::NodeChildrenChanged, "/a");
    notify_at(&mut h, conn, 12, EventType::NodeChildrenChanged, "/a");
    let got = take_watch_events(&mut h);
    assert_eq!(
        got.iter().filter(|e| **e == children_changed).count(),
        2,
        "{got:?}"
    );
    // Before 3.9 (no zxid) the two cannot be told apart: both are delivered.
    notify_at(&mut h, conn, -1, EventType::NodeCreated, "/a/d");
    notify_at(&mut h, conn, -1, EventType::NodeChildrenChanged, "/a");
    let got = take_watch_events(&mut h);
    assert_eq!(
        got.iter().filter(|e| **e == children_changed).count(),
        2,
        "{got:?}"
    );
}

#[test]
fn before_3_9_a_children_change_is_never_swallowed_by_an_old_derived_one() {
    // Notifications without a zxid (-1) cannot be matched to derived events: none are counted,
    // so a one-shot child watch armed later still hears its change.
    let (mut h, conn) = connected_38("h:1");
    let r =
        h.s.submit(h.now, add_watch("/a", AddWatchMode::PersistentRecursive))
            .unwrap();
    h.drain();
    h.take_frames();
    h.reply(conn, 1, 2, ErrorCode::Ok, add_watch_reply());
    notify_at(&mut h, conn, -1, EventType::NodeCreated, "/a/b");
    h.s.remove_watcher(h.now, r.watcher());
    h.drain();
    let sent = h.take_requests();
    assert!(matches!(sent[0].1, Request::RemoveWatches(_)), "{sent:?}");
    h.reply(conn, sent[0].0.xid, 3, ErrorCode::Ok, None);
    let c =
        h.s.submit(
            h.now,
            Request::GetChildren(PathWatchRequest {
                path: "/a".into(),
                watch: true,
            }),
        )
        .unwrap();
    h.drain();
    let sent = h.take_requests();
    h.reply(
        conn,
        sent[0].0.xid,
        3,
        ErrorCode::Ok,
        Some(Response::Children {
            children: Default::default(),
        }),
    );
    h.events.clear();
    notify_at(&mut h, conn, -1, EventType::NodeChildrenChanged, "/a");
    assert_eq!(
        take_watch_events(&mut h),
        [(c.0, EventType::NodeChildrenChanged, "/a".to_string())]
    );
}

#[test]
fn a_dial_that_timed_out_before_the_driver_took_it_is_withdrawn() {
    let mut c = SessionConfig::new("h:1").unwrap();
    c.session_timeout = Duration::from_secs(6);
    let now = Instant::now();
    let mut s = Session::new(c, now);
    s.handle_timeout(now);
    // The session wants a connection, but the driver does not take it in time.
    let stale = s.current_conn();
    assert!(stale.is_some());
    let at = s.poll_timeout().expect("the attempt's deadline");
    s.handle_timeout(at);
    if let Some(c) = s.poll_connect() {
        assert_ne!(Some(c.conn), stale, "a new attempt, not the dead one");
    }
}

#[test]
fn a_replacing_session_numbers_its_requests_on_from_the_old_one() {
    let mut h = Harness::with("h:1");
    h.s.submit(h.now, get_data("/a", false)).unwrap();
    h.s.submit(h.now, get_data("/b", false)).unwrap();
    let next = h.s.next_request_id();
    assert_eq!(next, RequestId(3));
    let mut fresh = Session::new(SessionConfig::new("h:1").unwrap(), h.now);
    fresh.continue_ids_from(next);
    assert_eq!(fresh.submit(h.now, get_data("/c", false)), Ok(RequestId(3)));
    // Ids only grow: a lower start is ignored.
    fresh.continue_ids_from(RequestId(1));
    assert_eq!(fresh.submit(h.now, get_data("/d", false)), Ok(RequestId(4)));
}
