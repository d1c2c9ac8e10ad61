//! A tiny test client for SimServer: encodes requests and decodes replies with zk-core's codec,
//! on a virtual clock, with no sockets.
#![allow(dead_code)]

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use bytes::Bytes;
use zk_core::proto::*;
use zk_testkit::sim::{ServerOutput, SimConfig, SimConnId, SimServer};

/// Bytes and closes the model sent to each connection.
#[derive(Default, Debug)]
pub struct Inbox {
    pub raw: Vec<u8>,
    pub closed: bool,
}

/// The model plus what it has written to each connection, and a virtual clock.
pub struct Net {
    pub sim: SimServer,
    pub now: Instant,
    pub inboxes: BTreeMap<SimConnId, Inbox>,
    /// Every output in order, for determinism checks.
    pub transcript: Vec<ServerOutput>,
}

impl Net {
    pub fn new(config: SimConfig) -> Self {
        let now = Instant::now();
        Net {
            sim: SimServer::new(config, now),
            now,
            inboxes: BTreeMap::new(),
            transcript: Vec::new(),
        }
    }

    pub fn standalone() -> Self {
        Net::new(SimConfig::default())
    }

    pub fn version(v: (u32, u32, u32)) -> Self {
        Net::new(SimConfig {
            version: v,
            ..SimConfig::default()
        })
    }

    pub fn ensemble(n: usize) -> Self {
        Net::new(SimConfig {
            servers: n,
            ..SimConfig::default()
        })
    }

    /// Drains every output into the inboxes.
    pub fn pump(&mut self) {
        while let Some(out) = self.sim.poll_output() {
            self.transcript.push(out.clone());
            match out {
                ServerOutput::Data { conn, bytes } => {
                    let inbox = self.inboxes.entry(conn).or_default();
                    assert!(!inbox.closed, "data after close on {conn:?}");
                    inbox.raw.extend_from_slice(&bytes);
                }
                ServerOutput::Close { conn } => self.inboxes.entry(conn).or_default().closed = true,
            }
        }
    }

    pub fn accept(&mut self, server: usize) -> SimConnId {
        let c = self.sim.accept(self.now, server);
        self.inboxes.entry(c).or_default();
        self.pump();
        c
    }

    pub fn send_raw(&mut self, conn: SimConnId, bytes: &[u8]) {
        self.sim.handle_bytes(self.now, conn, bytes);
        self.pump();
    }

    /// The client side closes.
    pub fn client_close(&mut self, conn: SimConnId) {
        self.sim.handle_closed(self.now, conn);
        self.pump();
    }

    /// Moves the clock and runs the timers.
    pub fn advance(&mut self, ms: u64) {
        self.now += Duration::from_millis(ms);
        self.sim.handle_timeout(self.now);
        self.pump();
    }

    pub fn closed(&self, conn: SimConnId) -> bool {
        self.inboxes.get(&conn).is_some_and(|i| i.closed)
    }

    /// Takes every whole frame received so far on `conn` (payloads, without length prefixes).
    pub fn take_frames(&mut self, conn: SimConnId) -> Vec<Bytes> {
        let inbox = self.inboxes.entry(conn).or_default();
        let mut d = FrameDecoder::new(DEFAULT_MAX_FRAME);
        d.extend(&inbox.raw);
        let mut frames = Vec::new();
        while let Some(f) = d.next_frame().expect("server sent a bad frame") {
            frames.push(f);
        }
        let left = d.buffered();
        let len = inbox.raw.len();
        inbox.raw.drain(..len - left);
        frames
    }

    pub fn take_raw(&mut self, conn: SimConnId) -> Vec<u8> {
        std::mem::take(&mut self.inboxes.entry(conn).or_default().raw)
    }

    /// A fresh connection sends a four-letter word; returns the text (the connection closes).
    pub fn four_letter(&mut self, server: usize, word: &str) -> String {
        let c = self.accept(server);
        self.send_raw(c, word.as_bytes());
        assert!(self.closed(c), "4lw {word} did not close");
        String::from_utf8(self.take_raw(c)).expect("4lw text is UTF-8")
    }
}

/// A reply, with the notifications that arrived on the connection just before it.
#[derive(Debug, Clone)]
pub struct Reply {
    pub xid: i32,
    pub zxid: i64,
    pub err: ErrorCode,
    pub body: Option<Response>,
    pub events_before: Vec<(i64, WatcherEvent)>,
}

impl Reply {
    pub fn ok(&self) -> &Response {
        assert_eq!(self.err, ErrorCode::Ok, "expected OK, got {:?}", self.err);
        self.body.as_ref().expect("OK reply without body")
    }

    pub fn stat(&self) -> Stat {
        match self.ok() {
            Response::Stat(s)
            | Response::Data { stat: s, .. }
            | Response::Create2 { stat: s, .. }
            | Response::Children2 { stat: s, .. }
            | Response::Acl { stat: s, .. } => *s,
            other => panic!("no stat in {other:?}"),
        }
    }
}

/// What arrived on a connection, in order.
#[derive(Debug, Clone)]
pub enum Incoming {
    Event(i64, WatcherEvent),
    Reply(Reply),
}

/// The outcome of a handshake.
#[derive(Debug)]
pub enum Handshake {
    /// A ConnectResponse with a live session.
    Connected(ConnectResponse),
    /// The zero response (session expired / wrong password), then a close.
    Refused(ConnectResponse),
    /// A close with no response at all.
    Closed,
}

/// One client session on one connection.
pub struct Client {
    pub conn: SimConnId,
    pub server: usize,
    pub session: i64,
    pub passwd: Bytes,
    pub timeout: i32,
    pub read_only: Option<bool>,
    pub last_zxid: i64,
    next_xid: i32,
    pending: VecDeque<(i32, OpCode)>,
    pub incoming: VecDeque<Incoming>,
}

pub fn connect_request(session: i64, passwd: &[u8], timeout: i32) -> ConnectRequest {
    ConnectRequest {
        protocol_version: 0,
        last_zxid_seen: 0,
        timeout,
        session_id: session,
        passwd: Bytes::copy_from_slice(passwd),
        read_only: Some(false),
    }
}

pub fn open_acl() -> Vec<Acl> {
    Acl::open_unsafe()
}

pub fn create_req(path: &str, data: &str, flags: i32) -> CreateRequest {
    CreateRequest {
        path: path.into(),
        data: Some(Bytes::copy_from_slice(data.as_bytes())),
        acl: open_acl().into(),
        flags,
    }
}

pub fn path_watch(path: &str, watch: bool) -> PathWatchRequest {
    PathWatchRequest {
        path: path.into(),
        watch,
    }
}

pub fn path_version(path: &str, version: i32) -> PathVersionRequest {
    PathVersionRequest {
        path: path.into(),
        version,
    }
}

pub fn set_data_req(path: &str, data: &str, version: i32) -> SetDataRequest {
    SetDataRequest {
        path: path.into(),
        data: Some(Bytes::copy_from_slice(data.as_bytes())),
        version,
    }
}

pub fn event(kind: EventType, path: &str) -> WatcherEvent {
    WatcherEvent {
        event_type: kind,
        state: KeeperState::SyncConnected,
        path: path.into(),
    }
}

/// Sends a ConnectRequest on a fresh connection to `server` and reads the outcome.
pub fn handshake(net: &mut Net, server: usize, req: &ConnectRequest) -> (SimConnId, Handshake) {
    let conn = net.accept(server);
    let mut out = Vec::new();
    encode_connect_request(&mut out, usize::MAX >> 1, req).unwrap();
    net.send_raw(conn, &out);
    let frames = net.take_frames(conn);
    let outcome = match frames.first() {
        None => {
            assert!(net.closed(conn), "no response and no close");
            Handshake::Closed
        }
        Some(f) => {
            let resp = decode_connect_response(f.clone()).expect("bad ConnectResponse");
            if resp.timeout <= 0 {
                assert!(net.closed(conn), "refusal without close");
                Handshake::Refused(resp)
            } else {
                Handshake::Connected(resp)
            }
        }
    };
    (conn, outcome)
}

impl Client {
    /// A new session on `server` (timeout 30 s requested, read-only not allowed).
    pub fn connect(net: &mut Net, server: usize) -> Client {
        Client::connect_with(net, server, &connect_request(0, &[0; 16], 30_000))
    }

    /// A handshake that must succeed.
    pub fn connect_with(net: &mut Net, server: usize, req: &ConnectRequest) -> Client {
        match handshake(net, server, req) {
            (conn, Handshake::Connected(resp)) => Client {
                conn,
                server,
                session: resp.session_id,
                passwd: resp.passwd,
                timeout: resp.timeout,
                read_only: resp.read_only,
                last_zxid: req.last_zxid_seen,
                next_xid: 1,
                pending: VecDeque::new(),
                incoming: VecDeque::new(),
            },
            (_, other) => panic!("handshake failed: {other:?}"),
        }
    }

    /// Resumes this client's session on `server` over a new connection.
    pub fn reconnect(&self, net: &mut Net, server: usize) -> (SimConnId, Handshake) {
        let mut req = connect_request(self.session, &self.passwd, 30_000);
        req.last_zxid_seen = self.last_zxid;
        handshake(net, server, &req)
    }

    fn xid_for(&mut self, req: &Request) -> i32 {
        match req {
            Request::Ping => xid::PING,
            Request::Auth(_) => xid::AUTH,
            Request::SetWatches(_) | Request::SetWatches2(_) => xid::SET_WATCHES,
            _ => {
                let x = self.next_xid;
                self.next_xid += 1;
                x
            }
        }
    }

    /// Sends a request without waiting; returns its xid.
    pub fn send(&mut self, net: &mut Net, req: &Request) -> i32 {
        let xid = self.xid_for(req);
        let mut out = Vec::new();
        encode_request(&mut out, usize::MAX >> 1, xid, req).unwrap();
        self.pending.push_back((xid, req.op_code()));
        net.send_raw(self.conn, &out);
        xid
    }

    /// Sends a raw frame body (header included), expecting a reply decoded as `op`.
    pub fn send_frame(&mut self, net: &mut Net, xid: i32, op: OpCode, payload: &[u8]) {
        let mut out = (payload.len() as i32).to_be_bytes().to_vec();
        out.extend_from_slice(payload);
        self.pending.push_back((xid, op));
        net.send_raw(self.conn, &out);
    }

    /// Decodes every frame that arrived.
    pub fn poll(&mut self, net: &mut Net) {
        for f in net.take_frames(self.conn) {
            let (h, body) = decode_reply_header(f).expect("bad reply header");
            if h.xid == xid::NOTIFICATION {
                let ev = decode_notification(body).expect("bad notification");
                self.incoming.push_back(Incoming::Event(h.zxid, ev));
                continue;
            }
            let pos = self
                .pending
                .iter()
                .position(|(x, _)| *x == h.xid)
                .unwrap_or_else(|| panic!("reply to unknown xid {}", h.xid));
            let (_, op) = self.pending.remove(pos).unwrap();
            let body = decode_reply(&h, op, body)
                .unwrap_or_else(|e| panic!("bad {op:?} reply body: {e}"))
                .ok();
            if h.zxid > 0 && h.xid > 0 {
                self.last_zxid = self.last_zxid.max(h.zxid);
            }
            self.incoming.push_back(Incoming::Reply(Reply {
                xid: h.xid,
                zxid: h.zxid,
                err: h.err,
                body,
                events_before: Vec::new(),
            }));
        }
    }

    /// Takes the reply to `xid`, with the notifications that came before it.
    pub fn reply_to(&mut self, net: &mut Net, xid: i32) -> Reply {
        self.poll(net);
        let mut events = Vec::new();
        while let Some(item) = self.incoming.pop_front() {
            match item {
                Incoming::Event(z, e) => events.push((z, e)),
                Incoming::Reply(mut r) if r.xid == xid => {
                    r.events_before = events;
                    return r;
                }
                Incoming::Reply(r) => panic!("reply to {} while waiting for {xid}", r.xid),
            }
        }
        panic!("no reply to xid {xid} (closed: {})", net.closed(self.conn));
    }

    /// Sends a request and returns its reply.
    pub fn call(&mut self, net: &mut Net, req: Request) -> Reply {
        let xid = self.send(net, &req);
        let want = if xid == xid::PING { xid::PING } else { xid };
        self.reply_to(net, want)
    }

    /// Notifications received and not yet taken (there must be no unread reply).
    pub fn events(&mut self, net: &mut Net) -> Vec<WatcherEvent> {
        self.events_with_zxid(net)
            .into_iter()
            .map(|(_, e)| e)
            .collect()
    }

    pub fn events_with_zxid(&mut self, net: &mut Net) -> Vec<(i64, WatcherEvent)> {
        self.poll(net);
        let mut out = Vec::new();
        while let Some(item) = self.incoming.pop_front() {
            match item {
                Incoming::Event(z, e) => out.push((z, e)),
                Incoming::Reply(r) => panic!("unread reply {r:?}"),
            }
        }
        out
    }

    // ---- shorthands ----

    pub fn create(&mut self, net: &mut Net, path: &str, data: &str, flags: i32) -> Reply {
        self.call(net, Request::Create(create_req(path, data, flags)))
    }

    pub fn created_path(&mut self, net: &mut Net, path: &str, flags: i32) -> String {
        match self.create(net, path, "", flags).ok() {
            Response::Create { path } => path.clone(),
            other => panic!("{other:?}"),
        }
    }

    pub fn get_data(&mut self, net: &mut Net, path: &str, watch: bool) -> Reply {
        self.call(net, Request::GetData(path_watch(path, watch)))
    }

    pub fn exists(&mut self, net: &mut Net, path: &str, watch: bool) -> Reply {
        self.call(net, Request::Exists(path_watch(path, watch)))
    }

    pub fn children(&mut self, net: &mut Net, path: &str, watch: bool) -> Reply {
        self.call(net, Request::GetChildren(path_watch(path, watch)))
    }

    pub fn set_data(&mut self, net: &mut Net, path: &str, data: &str, version: i32) -> Reply {
        self.call(net, Request::SetData(set_data_req(path, data, version)))
    }

    pub fn delete(&mut self, net: &mut Net, path: &str, version: i32) -> Reply {
        self.call(net, Request::Delete(path_version(path, version)))
    }

    pub fn ping(&mut self, net: &mut Net) -> Reply {
        self.call(net, Request::Ping)
    }

    pub fn auth_digest(&mut self, net: &mut Net, creds: &str) -> Reply {
        self.call(
            net,
            Request::Auth(AuthPacket {
                auth_type: 0,
                scheme: "digest".into(),
                auth: Bytes::copy_from_slice(creds.as_bytes()),
            }),
        )
    }

    pub fn add_watch(&mut self, net: &mut Net, path: &str, mode: AddWatchMode) -> Reply {
        self.call(
            net,
            Request::AddWatch(AddWatchRequest {
                path: path.into(),
                mode: mode.code(),
            }),
        )
    }
}
