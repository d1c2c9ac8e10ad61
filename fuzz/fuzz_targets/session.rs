//! The session machine driven by a script: arbitrary server bytes and arbitrary orderings of
//! user calls, transport events, probe answers and time, checked against the machine's promises
//! rather than only "no panic".
//!
//! The input is a small script (format and op numbers: ../session_script.rs): byte 0 configures
//! the session, then each op byte picks a step: submit a request, advance the clock, deliver the
//! pending connect, close the connection, feed raw bytes, feed a well-formed ConnectResponse,
//! reply to the oldest frame the session sent (the harness decodes what the session transmits
//! with `decode_request` to know the xids and opcodes), send a notification, answer a probe,
//! close(), remove a watcher, poke a dead connection. After every step the harness drains every
//! `poll_*` output as a driver must (closes first, so a connection the session lets go of is
//! gone before a new one is dialed) and checks:
//!
//! - every RequestId that submit returned gets exactly one Event::Reply (none for an id never
//!   returned, none twice), and at the end, after close() and the close timeout, all have one;
//! - poll_transmit names only the connection last handed to handle_connected and not closed
//!   since (by handle_closed or poll_close), and what it hands out is a ConnectRequest followed by
//!   well-formed requests, with xids that only grow;
//! - a successful reply has the shape of its request's, and a getData reply is the answer to a
//!   getData frame for that path (the harness writes the xid it answers as the data);
//! - poll_connect never asks for a connection while another it asked for is still open;
//! - a reply hands out a watcher (named after its request) only when the request succeeded, or
//!   for NoNode; watch events go only to watchers a reply handed out, not removed or ended since,
//!   and a one-shot watcher fires at most once;
//! - a driver that sleeps until poll_timeout does not spin: calling handle_timeout while a wakeup
//!   is due settles within a few calls at the same instant; after close() the session goes quiet
//!   (poll_timeout None) once its timers have run out.
//!
//! Time is virtual: one `Instant::now()` as a base, then durations added (zk-core never reads the
//! clock).
//!
//! To see what a script does, replay it with SESSION_FUZZ_TRACE=1 in the environment: every step
//! and every output is printed to stderr.

#![no_main]

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use zk_core::proto::{
    decode_connect_request, decode_request, encode_connect_response, encode_notification,
    encode_reply, xid, Acl, AddWatchRequest, AuthPacket, ConnectResponse, CreateRequest, ErrorCode,
    EventType, FrameDecoder, KeeperState, MultiOp, MultiResult, PathRequest, PathVersionRequest,
    PathWatchRequest, ReplyHeader, Request, Response, SetDataRequest, Stat, WatcherEvent,
    WatchesRequest,
};
use zk_core::session::{Credentials, Probe};
use zk_core::{
    ConnId, ConnectString, Error, Event, RequestId, ServerVersion, Session, SessionConfig,
    WatcherId,
};

#[path = "../session_script.rs"]
mod script;
use script::*;

const SESSION_A: i64 = 0x1111_2222_3333;
const SESSION_B: i64 = 0x4444_5555_6666;
const CLIENT_PATHS: [&str; 4] = ["/a", "/a/b", "/b", "/"];
/// Server paths for notifications: with and without the chroot, and one outside it.
const SERVER_PATHS: [&str; 8] = ["/a", "/a/b", "/b", "/", "/app", "/app/a", "/app/a/b", "/zz"];
const ERRORS: [ErrorCode; 8] = [
    ErrorCode::NoNode,
    ErrorCode::NodeExists,
    ErrorCode::BadVersion,
    ErrorCode::NotReadOnly,
    ErrorCode::NoAuth,
    ErrorCode::Unimplemented,
    ErrorCode::SessionExpired,
    ErrorCode::AuthFailed,
];
/// How many handle_timeout calls at one instant may leave a wakeup due before it counts as a spin.
const SETTLE_LIMIT: usize = 32;

fn tracing() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("SESSION_FUZZ_TRACE").is_some())
}

macro_rules! trace {
    ($($arg:tt)*) => {
        if tracing() {
            eprintln!($($arg)*);
        }
    };
}

/// The input, read a byte at a time; missing bytes read as 0.
struct Input<'a> {
    data: &'a [u8],
}

impl Input<'_> {
    fn op(&mut self) -> Option<u8> {
        let (&b, rest) = self.data.split_first()?;
        self.data = rest;
        Some(b)
    }

    fn arg(&mut self) -> u8 {
        self.op().unwrap_or(0)
    }

    fn take(&mut self, n: usize) -> &[u8] {
        let (head, rest) = self.data.split_at(n.min(self.data.len()));
        self.data = rest;
        head
    }
}

/// What the harness knows of the connection the session talks on: the bytes it sent, decoded.
struct Wire {
    conn: ConnId,
    decoder: FrameDecoder,
    /// The ConnectRequest went out (it is the first frame).
    greeted: bool,
    /// Frames sent and not yet answered, oldest first: (xid, request).
    unanswered: VecDeque<(i32, Request)>,
}

struct Harness {
    s: Session,
    start: Instant,
    now: Instant,
    zxid: i64,

    /// Ids submit returned that have no Reply yet.
    outstanding: BTreeSet<RequestId>,
    /// Every id submit returned, with its request (client paths).
    submitted: BTreeMap<RequestId, Request>,
    /// Every request frame with a positive xid the session sent, by xid (server paths).
    sent: BTreeMap<i32, Request>,
    /// RAW fed bytes the harness did not make: a getData reply's data may not be an xid.
    forged: bool,
    /// Watchers handed out in replies, not removed, ended or (one-shot) fired: persistent?
    armed: BTreeMap<WatcherId, bool>,

    /// Connections poll_connect handed out and not closed since.
    open: BTreeSet<ConnId>,
    /// The one handed out and not yet given to handle_connected.
    pending: Option<ConnId>,
    /// The one given to handle_connected and not closed since.
    wire: Option<Wire>,
    /// Every connection ever handed out.
    seen: Vec<ConnId>,
    probes: Vec<Probe>,
}

fn config(cfg: u8) -> SessionConfig {
    let hosts = if cfg & CFG_THREE_HOSTS != 0 {
        "10.0.0.1:2181,10.0.0.2:2181,10.0.0.3:2181"
    } else {
        "10.0.0.1:2181"
    };
    let chroot = if cfg & CFG_CHROOT != 0 { "/app" } else { "" };
    let cs = ConnectString::parse(&format!("{hosts}{chroot}")).expect("connect string");
    let mut c = SessionConfig::from_connect_string(cs);
    c.session_timeout = Duration::from_secs(6);
    c.read_only = cfg & CFG_READ_ONLY != 0;
    c.client_side_expiry = cfg & CFG_CLIENT_EXPIRY != 0;
    c.renew_after_expiry = cfg & CFG_NO_RENEW == 0;
    c.request_timeout = (cfg & CFG_REQUEST_TIMEOUT != 0).then(|| Duration::from_millis(1500));
    if cfg & CFG_AUTH != 0 {
        c.auth = vec![Credentials::digest("u", "p")];
    }
    c.server_version = (cfg & CFG_VERSION_KNOWN != 0).then(|| ServerVersion::new(3, 9, 0));
    c.rng_seed = u64::from(cfg);
    c
}

fn request(kind: u8, p: u8) -> Request {
    let path = CLIENT_PATHS[usize::from(p >> 1) % CLIENT_PATHS.len()].to_owned();
    let watch = p & 1 != 0;
    let data = Some(Bytes::from_static(b"v"));
    match kind % SUBMIT_KINDS {
        K_GET_DATA => Request::GetData(PathWatchRequest { path, watch }),
        K_EXISTS => Request::Exists(PathWatchRequest { path, watch }),
        K_GET_CHILDREN => Request::GetChildren(PathWatchRequest { path, watch }),
        K_CREATE => {
            // persistent, ephemeral, persistent sequential (which may end in a slash)
            let flags = i32::from((p >> 3) % 3);
            let path = if flags == 2 { "/q/".to_owned() } else { path };
            Request::Create(CreateRequest {
                path,
                data,
                acl: Acl::open_unsafe().into(),
                flags,
            })
        }
        K_SET_DATA => Request::SetData(SetDataRequest {
            path,
            data,
            version: -1,
        }),
        K_DELETE => Request::Delete(PathVersionRequest { path, version: -1 }),
        K_MULTI => Request::Multi(vec![
            MultiOp::Create(CreateRequest {
                path: path.clone(),
                data,
                acl: Acl::open_unsafe().into(),
                flags: 0,
            }),
            MultiOp::SetData(SetDataRequest {
                path: path.clone(),
                data: None,
                version: -1,
            }),
            MultiOp::Check(PathVersionRequest { path, version: 0 }),
        ]),
        K_ADD_WATCH => Request::AddWatch(AddWatchRequest {
            path,
            mode: i32::from(p & 1),
        }),
        K_GET_EPHEMERALS => Request::GetEphemerals(PathRequest {
            path: if watch { "/a".into() } else { "/".into() },
        }),
        K_AUTH => Request::Auth(AuthPacket {
            auth_type: 0,
            scheme: "digest".into(),
            auth: Bytes::from_static(b"u:p"),
        }),
        K_REMOVE_WATCHES => Request::RemoveWatches(WatchesRequest {
            path,
            watcher_type: 1 + i32::from((p >> 3) % 5),
        }),
        _ => {
            if watch {
                Request::Ping // the session's own
            } else {
                Request::GetData(PathWatchRequest {
                    path: "no-slash".into(),
                    watch: false,
                })
            }
        }
    }
}

/// A success body that fits the request, as a server would send it (server paths). getData
/// answers carry the xid they answer as their data, so the harness can tell which frame a reply
/// the session hands out came from.
fn success(xid: i32, req: &Request) -> Option<Response> {
    let stat = Stat {
        version: 1,
        ..Stat::default()
    };
    Some(match req {
        Request::GetData(_) => Response::Data {
            data: Some(Bytes::copy_from_slice(&xid.to_be_bytes())),
            stat,
        },
        Request::Exists(_) | Request::SetData(_) => Response::Stat(stat),
        Request::GetChildren(_) => Response::Children {
            children: ["c"].into_iter().collect(),
        },
        Request::Create(r) => Response::Create {
            path: if r.path.ends_with('/') {
                format!("{}0000000001", r.path)
            } else {
                r.path.clone()
            },
        },
        Request::Multi(ops) => Response::Multi(
            ops.iter()
                .map(|op| match op {
                    MultiOp::Create(r) => MultiResult::Create {
                        path: r.path.clone(),
                    },
                    MultiOp::SetData(_) => MultiResult::SetData(stat),
                    MultiOp::Delete(_) => MultiResult::Delete,
                    _ => MultiResult::Check,
                })
                .collect(),
        ),
        Request::AddWatch(_) => Response::AddWatch { err: ErrorCode::Ok },
        Request::GetEphemerals(r) => Response::Ephemerals {
            paths: vec![format!("{}e", r.path), "/elsewhere".into()],
        },
        // Delete, removeWatches, auth, setWatches(2), ping, closeSession: no body.
        _ => return None,
    })
}

/// A success body for some opcode, for REPLY_MISMATCHED.
fn body_for(xid: i32, op: u8) -> Option<Response> {
    let reqs = [
        Request::GetData(PathWatchRequest {
            path: "/a".into(),
            watch: false,
        }),
        Request::Exists(PathWatchRequest {
            path: "/a".into(),
            watch: false,
        }),
        Request::GetChildren(PathWatchRequest {
            path: "/a".into(),
            watch: false,
        }),
        Request::Create(CreateRequest {
            path: "/a".into(),
            data: None,
            acl: Vec::new().into(),
            flags: 0,
        }),
        Request::Multi(vec![]),
        Request::AddWatch(AddWatchRequest {
            path: "/a".into(),
            mode: 0,
        }),
        Request::GetEphemerals(PathRequest { path: "/".into() }),
        Request::Ping,
    ];
    success(xid, &reqs[usize::from(op) % reqs.len()])
}

impl Harness {
    fn new(cfg: u8) -> Self {
        let now = Instant::now();
        let mut h = Harness {
            s: Session::new(config(cfg), now),
            start: now,
            now,
            zxid: 0,
            outstanding: BTreeSet::new(),
            submitted: BTreeMap::new(),
            sent: BTreeMap::new(),
            forged: false,
            armed: BTreeMap::new(),
            open: BTreeSet::new(),
            pending: None,
            wire: None,
            seen: Vec::new(),
            probes: Vec::new(),
        };
        h.drain();
        // As a driver would: the first dial is due at once.
        h.settle();
        h
    }

    fn forget(&mut self, conn: ConnId) {
        self.open.remove(&conn);
        if self.pending == Some(conn) {
            self.pending = None;
        }
        if self.wire.as_ref().is_some_and(|w| w.conn == conn) {
            self.wire = None;
        }
    }

    /// Drains every output, checking each.
    fn drain(&mut self) {
        while let Some(conn) = self.s.poll_close() {
            trace!("  poll_close {conn:?}");
            self.forget(conn);
        }
        while let Some(c) = self.s.poll_connect() {
            trace!("  poll_connect {:?}", c.conn);
            assert!(
                self.open.is_empty(),
                "poll_connect asked for {:?} while {:?} is still open",
                c.conn,
                self.open
            );
            assert!(
                !self.seen.contains(&c.conn),
                "poll_connect reused {:?}",
                c.conn
            );
            self.open.insert(c.conn);
            self.pending = Some(c.conn);
            self.seen.push(c.conn);
        }
        while let Some(p) = self.s.poll_probe() {
            trace!("  poll_probe {p:?}");
            self.probes.push(p);
        }
        let mut buf = Vec::new();
        while let Some(conn) = self.s.poll_transmit(&mut buf) {
            let wire = self.wire.as_mut().unwrap_or_else(|| {
                panic!("poll_transmit named {conn:?} but no connection is connected")
            });
            assert_eq!(
                wire.conn, conn,
                "poll_transmit named {conn:?}, not the connected {:?}",
                wire.conn
            );
            wire.decoder.extend(&buf);
            buf.clear();
            while let Some(frame) = wire
                .decoder
                .next_frame()
                .expect("the session's own framing")
            {
                if !wire.greeted {
                    let req =
                        decode_connect_request(frame).expect("the first frame is a ConnectRequest");
                    trace!("  sent {req:?}");
                    wire.greeted = true;
                    continue;
                }
                let (header, body) = decode_request(frame).expect("a request header");
                let body = body.expect("a well-formed request body");
                trace!("  sent xid {} {body:?}", header.xid);
                assert_eq!(header.op, body.op_code().code());
                // (xids wrap after i32::MAX; no script gets near that)
                if header.xid > 0 {
                    if let Some((&last, _)) = self.sent.last_key_value() {
                        assert!(
                            header.xid > last,
                            "xid {} sent after xid {last}",
                            header.xid
                        );
                    }
                    self.sent.insert(header.xid, body.clone());
                }
                wire.unanswered.push_back((header.xid, body));
            }
        }
        while let Some(e) = self.s.poll_event() {
            self.event(e);
        }
    }

    fn event(&mut self, e: Event) {
        trace!("  event {e:?}");
        match e {
            Event::Reply {
                id,
                watcher,
                result,
            } => {
                assert!(
                    self.outstanding.remove(&id),
                    "a second reply, or a reply for an id submit never returned: {id:?}"
                );
                if let Ok(resp) = &result {
                    self.check_success(id, resp);
                }
                if let Some(w) = watcher {
                    assert_eq!(w, id.watcher(), "a watcher is named after its request");
                    assert!(
                        matches!(result, Ok(_) | Err(Error::NoNode { .. })),
                        "{id:?} armed {w:?} but failed: {result:?}"
                    );
                    assert!(
                        !self.armed.contains_key(&w),
                        "{w:?} handed out a second time"
                    );
                    let persistent = matches!(self.submitted.get(&id), Some(Request::AddWatch(_)));
                    self.armed.insert(w, persistent);
                }
            }
            Event::Watch { watcher, event } => {
                let persistent = *self.armed.get(&watcher).unwrap_or_else(|| {
                    panic!("watch event {event:?} for {watcher:?}, which is not armed")
                });
                if !persistent {
                    self.armed.remove(&watcher);
                }
            }
            Event::WatchEnded { watcher, reason } => {
                assert!(
                    self.armed.remove(&watcher).is_some(),
                    "WatchEnded({reason:?}) for {watcher:?}, which is not armed"
                );
            }
            Event::WatchResync { watcher } => {
                assert_eq!(
                    self.armed.get(&watcher),
                    Some(&true),
                    "WatchResync for {watcher:?}, which is not an armed persistent watcher"
                );
            }
            Event::State(_) => {}
            // Event is non_exhaustive; a new kind is checked once the fuzzer learns it.
            _ => {}
        }
    }

    /// A successful reply has the shape of its request's reply, and a getData reply carries the
    /// xid of a frame that was that very request.
    fn check_success(&self, id: RequestId, resp: &Response) {
        let req = &self.submitted[&id];
        let fits = matches!(
            (req, resp),
            (Request::GetData(_), Response::Data { .. })
                | (Request::Exists(_) | Request::SetData(_), Response::Stat(_))
                | (Request::GetChildren(_), Response::Children { .. })
                | (Request::Create(_), Response::Create { .. })
                | (Request::Multi(_), Response::Multi(_))
                | (Request::AddWatch(_), Response::AddWatch { .. })
                | (Request::GetEphemerals(_), Response::Ephemerals { .. })
                | (
                    Request::Delete(_) | Request::Auth(_) | Request::RemoveWatches(_),
                    Response::Empty
                )
        );
        assert!(fits, "{id:?} ({req:?}) resolved with {resp:?}");
        let (Request::GetData(asked), Response::Data { data: Some(d), .. }) = (req, resp) else {
            return;
        };
        if self.forged {
            return;
        }
        let xid = i32::from_be_bytes(d[..].try_into().expect("the harness's data is an xid"));
        let server_path = self.s.chroot().to_server(&asked.path);
        match self.sent.get(&xid) {
            // (The watch flag may differ: a watch can ride on a persistent one.)
            Some(Request::GetData(r)) if r.path == server_path => {}
            other => panic!("{id:?} ({req:?}) got the reply to xid {xid}, which was {other:?}"),
        }
    }

    /// Runs due timers the way a driver does, which must not spin.
    fn settle(&mut self) {
        for _ in 0..SETTLE_LIMIT {
            match self.s.poll_timeout() {
                Some(t) if t <= self.now => {
                    self.s.handle_timeout(self.now);
                    self.drain();
                }
                _ => return,
            }
        }
        panic!(
            "{SETTLE_LIMIT} handle_timeout calls at one instant left {:?} due",
            self.s.next_wakeup()
        );
    }

    fn advance(&mut self, n: u8) {
        let step = u64::from(n & 63);
        match n >> 6 {
            0 => self.now += Duration::from_millis(step),
            1 => self.now += Duration::from_millis(step * 50),
            2 => self.now += Duration::from_millis(step * 500),
            _ => {
                if let Some(t) = self.s.poll_timeout() {
                    self.now = self.now.max(t);
                }
            }
        }
        self.s.handle_timeout(self.now);
        self.drain();
        self.settle();
    }

    fn submit(&mut self, kind: u8, p: u8) {
        let req = request(kind, p);
        if let Ok(id) = self.s.submit(self.now, req.clone()) {
            assert!(
                self.submitted.insert(id, req).is_none(),
                "submit returned {id:?} twice"
            );
            self.outstanding.insert(id);
        }
        self.drain();
    }

    /// Feeds server bytes on the connected connection in two pieces.
    fn feed(&mut self, bytes: &[u8], split: u8) {
        let Some(conn) = self.wire.as_ref().map(|w| w.conn) else {
            return;
        };
        let at = usize::from(split) % (bytes.len() + 1);
        self.s.handle_bytes(self.now, conn, &bytes[..at]);
        self.drain();
        self.s.handle_bytes(self.now, conn, &bytes[at..]);
        self.drain();
    }

    fn connect_response(&mut self, flags: u8, split: u8) {
        let session_id = match flags & 3 {
            0 | 1 => SESSION_A,
            2 => SESSION_B,
            _ => 0,
        };
        let timeout = [0, 4000, 30000, 100][usize::from((flags >> 2) & 3)];
        let mut out = Vec::new();
        encode_connect_response(
            &mut out,
            usize::MAX,
            &ConnectResponse {
                protocol_version: 0,
                timeout,
                session_id,
                passwd: Bytes::from_static(&[7; 16]),
                read_only: Some(flags & 16 != 0),
            },
        )
        .expect("encode ConnectResponse");
        self.feed(&out, split);
    }

    fn reply_frame(&mut self, xid: i32, err: ErrorCode, body: Option<&Response>) -> Vec<u8> {
        self.zxid += 1;
        let header = ReplyHeader {
            xid,
            zxid: if xid == xid::PING { -1 } else { self.zxid },
            err,
        };
        let mut out = Vec::new();
        encode_reply(&mut out, usize::MAX, &header, body).expect("encode reply");
        out
    }

    /// The oldest unanswered frame on the connected connection, taken off the list.
    fn oldest(&mut self) -> Option<(i32, Request)> {
        self.wire.as_mut()?.unanswered.pop_front()
    }

    fn reply(&mut self, err: u8, split: u8) {
        let Some((xid, req)) = self.oldest() else {
            return;
        };
        let out = if err < 160 {
            let body = success(xid, &req);
            self.reply_frame(xid, ErrorCode::Ok, body.as_ref())
        } else {
            self.reply_frame(xid, ERRORS[usize::from(err) % ERRORS.len()], None)
        };
        self.feed(&out, split);
    }

    fn reply_mismatched(&mut self, op: u8) {
        let Some((xid, _)) = self.oldest() else {
            return;
        };
        let out = self.reply_frame(xid, ErrorCode::Ok, body_for(xid, op).as_ref());
        self.feed(&out, 0);
    }

    fn reply_all(&mut self, err: u8) {
        let n = self.wire.as_ref().map_or(0, |w| w.unanswered.len());
        for i in 0..n {
            // Mostly successes; err picks which of them fail.
            let e = if (err >> (i % 8)) & 1 != 0 { 200 } else { 0 };
            self.reply(e, 255);
        }
    }

    fn notify(&mut self, ty: u8, p: u8) {
        let types = EventType::KNOWN;
        let event_type = types
            .get(usize::from(ty) % (types.len() + 1))
            .copied()
            .unwrap_or(EventType::from_code(99));
        let path = SERVER_PATHS[usize::from(p) % SERVER_PATHS.len()].to_owned();
        let mut out = Vec::new();
        encode_notification(
            &mut out,
            usize::MAX,
            if p & 128 != 0 { -1 } else { self.zxid },
            &WatcherEvent {
                event_type,
                state: KeeperState::SyncConnected,
                path,
            },
        )
        .expect("encode notification");
        self.feed(&out, ty >> 4);
    }

    fn probe(&mut self, which: u8) {
        if self.probes.is_empty() {
            return;
        }
        let p = self.probes.remove(usize::from(which) % self.probes.len());
        let answers: [Result<&str, ()>; 8] = [
            Ok("Zookeeper version: 3.9.2-e454e8c7283100c7caec6dcae2bc82aaecb63023, built on 2024-02-12 20:59 UTC\nMode: standalone\n"),
            Ok("Zookeeper version: 3.5.9-83df9301aa5c2a5d284a9940177808c01bc35cef, built on 01/06/2021 20:03 GMT\n"),
            Ok("Zookeeper version: 3.6.0--1, built on x\n"),
            Ok("rw"),
            Ok("ro"),
            Err(()),
            Ok("This ZooKeeper instance is not currently serving requests\n"),
            Ok(""),
        ];
        let answer = answers[usize::from(which >> 4) % answers.len()];
        self.s.handle_probe_result(self.now, p.id, answer);
        self.drain();
    }

    fn remove_watcher(&mut self, which: u8) {
        let w = if which >= 240 || self.armed.is_empty() {
            WatcherId(u64::from(which))
        } else {
            let i = usize::from(which) % self.armed.len();
            *self.armed.keys().nth(i).expect("in range")
        };
        self.armed.remove(&w);
        self.s.remove_watcher(self.now, w);
        self.drain();
    }

    /// Input for a connection the session has already let go of (driver races).
    fn stale(&mut self, which: u8) {
        let dead: Vec<ConnId> = self
            .seen
            .iter()
            .copied()
            .filter(|c| !self.open.contains(c))
            .collect();
        let Some(&conn) = dead.get(usize::from(which >> 2) % dead.len().max(1)) else {
            return;
        };
        match which % 4 {
            0 => self.s.handle_connected(self.now, conn),
            1 => {
                let out = self.reply_frame(1, ErrorCode::Ok, None);
                self.s.handle_bytes(self.now, conn, &out);
            }
            2 => self
                .s
                .handle_connect_failed(self.now, conn, "connection refused"),
            _ => self.s.handle_closed(self.now, conn),
        }
        self.drain();
    }

    fn unsolicited(&mut self, which: u8) {
        let out = match which % 5 {
            0 => self.reply_frame(xid::PING, ErrorCode::Ok, None),
            1 => self.reply_frame(xid::AUTH, ErrorCode::Ok, None),
            2 => self.reply_frame(xid::AUTH, ErrorCode::AuthFailed, None),
            3 => self.reply_frame(xid::SET_WATCHES, ErrorCode::Ok, None),
            _ => self.reply_frame(0x7000_0000, ErrorCode::Ok, None),
        };
        self.feed(&out, which >> 3);
    }

    fn step(&mut self, op: u8, input: &mut Input) {
        trace!(
            "step {op} (op {}) at {:?}, state {:?}",
            op % OPS,
            self.now - self.start,
            self.s.state()
        );
        match op % OPS {
            SUBMIT => {
                let (kind, p) = (input.arg(), input.arg());
                self.submit(kind, p);
            }
            ADVANCE => {
                let n = input.arg();
                self.advance(n);
            }
            CONNECTED => {
                if let Some(conn) = self.pending.take() {
                    self.wire = Some(Wire {
                        conn,
                        decoder: FrameDecoder::new(usize::MAX >> 1),
                        greeted: false,
                        unanswered: VecDeque::new(),
                    });
                    self.s.handle_connected(self.now, conn);
                    self.drain();
                }
            }
            CLOSED => {
                if let Some(&conn) = self.open.iter().next() {
                    self.forget(conn);
                    self.s.handle_closed(self.now, conn);
                    self.drain();
                }
            }
            RAW => {
                let k = usize::from(input.arg());
                let bytes = input.take(k).to_vec();
                self.forged = true;
                self.feed(&bytes, 255);
            }
            CONNECT_RESPONSE => {
                let (flags, split) = (input.arg(), input.arg());
                self.connect_response(flags, split);
            }
            REPLY => {
                let (err, split) = (input.arg(), input.arg());
                self.reply(err, split);
            }
            NOTIFY => {
                let (ty, p) = (input.arg(), input.arg());
                self.notify(ty, p);
            }
            PROBE => {
                let which = input.arg();
                self.probe(which);
            }
            CLOSE => {
                self.s.close(self.now);
                self.drain();
            }
            REMOVE_WATCHER => {
                let which = input.arg();
                self.remove_watcher(which);
            }
            STALE => {
                let which = input.arg();
                self.stale(which);
            }
            REPLY_ALL => {
                let err = input.arg();
                self.reply_all(err);
            }
            WAKEUP => self.advance(192),
            REPLY_MISMATCHED => {
                let op = input.arg();
                self.reply_mismatched(op);
            }
            _ => {
                let which = input.arg();
                self.unsolicited(which);
            }
        }
    }

    /// close(), then let time run until the session has nothing left to wait for: every request
    /// must have its reply by then.
    fn finish(&mut self) {
        trace!("finish: close() at {:?}", self.now - self.start);
        self.s.close(self.now);
        self.drain();
        for _ in 0..10_000 {
            let Some((t, why)) = self.s.next_wakeup() else {
                break;
            };
            trace!("finish: {why:?} wakeup at {:?}", t - self.start);
            self.now = self.now.max(t);
            self.s.handle_timeout(self.now);
            self.drain();
        }
        assert!(
            self.s.poll_timeout().is_none(),
            "the session still wants a wakeup ({:?}) long after close()",
            self.s.next_wakeup()
        );
        assert!(
            self.outstanding.is_empty(),
            "after close() and its timeout, no reply for {:?} (state {:?})",
            self.outstanding,
            self.s.state()
        );
        assert_eq!(self.s.pending_requests(), 0, "pending_requests after close");
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input { data };
    let Some(cfg) = input.op() else {
        return;
    };
    let mut h = Harness::new(cfg);
    while let Some(op) = input.op() {
        h.step(op, &mut input);
    }
    h.finish();
});
