//! The session core alone, in memory: requests per second through `zk_core::Session`, with no
//! sockets, no runtime and no threads.
//!
//! - `session/sim/...`: the Session driven against SimServer (zk-testkit's model server), every
//!   byte through both codecs: the core plus a server model, in one thread.
//! - `session/core/...`: the Session alone. Replies are encoded before the measured loop and fed
//!   back in 64 KiB pieces, as a driver reading a socket would, so the time is the session's:
//!   submit (validate, encode), transmit, frame reassembly, reply decoding and matching, events.
//!
//! `window1000` submits 1,000 getData of a 100-byte node, then feeds their replies (W2's shape);
//! `sequential` does one request at a time (W1's shape).

use std::cell::Cell;
use std::hint::black_box;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use zk_core::proto::{
    encode_reply, CreateRequest, ErrorCode, PathWatchRequest, ReplyHeader, Request, Response, Stat,
};
use zk_core::session::ConnId;
use zk_core::{Event, Session, SessionConfig, SessionState};
use zk_testkit::sim::{ServerOutput, SimConfig, SimConnId, SimServer};

const PATH: &str = "/zkb/small";
const WINDOW: usize = 1000;
/// What a driver hands the session per read.
const READ_CHUNK: usize = 64 * 1024;

/// A Session connected to a SimServer, on a virtual clock that never moves (so no pings).
struct Pair {
    session: Session,
    server: SimServer,
    conn: (ConnId, SimConnId),
    now: Instant,
    buf: Vec<u8>,
}

impl Pair {
    fn new() -> Pair {
        let now = Instant::now();
        let mut config = SessionConfig::new("sim:2181").expect("connect string");
        config.session_timeout = Duration::from_secs(30);
        config.rng_seed = 1;
        let mut session = Session::new(config, now);
        let mut server = SimServer::new(SimConfig::default(), now);
        let mut t = now;
        let conn = loop {
            if let Some(c) = session.poll_connect() {
                let sc = server.accept(t, 0);
                session.handle_connected(t, c.conn);
                break (c.conn, sc);
            }
            t = session.poll_timeout().expect("a dial is scheduled").max(t);
            session.handle_timeout(t);
        };
        let mut pair = Pair {
            session,
            server,
            conn,
            now: t,
            buf: Vec::new(),
        };
        pair.pump();
        assert_eq!(pair.session.state(), SessionState::Connected);
        while pair.session.poll_event().is_some() {}
        pair.call(Request::Create(CreateRequest {
            path: "/zkb".into(),
            data: None,
            acl: zk_core::proto::Acl::open_unsafe().into(),
            flags: 0,
        }));
        pair.call(Request::Create(CreateRequest {
            path: PATH.into(),
            data: Some(Bytes::from(vec![b's'; 100])),
            acl: zk_core::proto::Acl::open_unsafe().into(),
            flags: 0,
        }));
        pair
    }

    /// Moves bytes both ways until neither side has anything to say.
    fn pump(&mut self) {
        loop {
            let mut moved = false;
            while self.session.poll_transmit(&mut self.buf).is_some() {
                self.server.handle_bytes(self.now, self.conn.1, &self.buf);
                self.buf.clear();
                moved = true;
            }
            while let Some(out) = self.server.poll_output() {
                match out {
                    ServerOutput::Data { bytes, .. } => {
                        self.session.handle_bytes(self.now, self.conn.0, &bytes)
                    }
                    ServerOutput::Close { .. } => panic!("the server closed the connection"),
                }
                moved = true;
            }
            if !moved {
                return;
            }
        }
    }

    /// One request through the pair, checked.
    fn call(&mut self, req: Request) {
        self.session.submit(self.now, req).expect("submits");
        self.pump();
        match self.session.poll_event() {
            Some(Event::Reply { result, .. }) => {
                result.expect("succeeds");
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}

fn get_data() -> Request {
    Request::GetData(PathWatchRequest {
        path: PATH.into(),
        watch: false,
    })
}

/// Drains the session's events; returns the replies seen.
fn drain(session: &mut Session) -> usize {
    let mut n = 0;
    while let Some(ev) = session.poll_event() {
        if let Event::Reply { result, .. } = ev {
            black_box(result.expect("succeeds"));
            n += 1;
        }
    }
    n
}

fn sim(c: &mut Criterion) {
    let mut g = c.benchmark_group("session/sim");
    let mut pair = Pair::new();
    g.throughput(Throughput::Elements(WINDOW as u64));
    g.bench_function("getData_window1000", |b| {
        b.iter(|| {
            for _ in 0..WINDOW {
                pair.session.submit(pair.now, get_data()).expect("submits");
            }
            pair.pump();
            assert_eq!(drain(&mut pair.session), WINDOW);
        })
    });
    g.throughput(Throughput::Elements(1));
    g.bench_function("getData_sequential", |b| {
        b.iter(|| {
            pair.session.submit(pair.now, get_data()).expect("submits");
            pair.pump();
            assert_eq!(drain(&mut pair.session), 1);
        })
    });
    g.finish();
}

/// The replies to `n` getData requests with xids `first..first+n`, as one byte stream.
fn replies(first: i32, n: usize) -> Vec<u8> {
    let body = Response::Data {
        data: Some(Bytes::from(vec![b's'; 100])),
        stat: Stat {
            data_length: 100,
            ..Stat::default()
        },
    };
    let mut out = Vec::with_capacity(n * 200);
    for i in 0..n {
        let header = ReplyHeader {
            xid: first + i as i32,
            zxid: 5,
            err: ErrorCode::Ok,
        };
        encode_reply(&mut out, usize::MAX, &header, Some(&body)).expect("encodes");
    }
    out
}

fn core(c: &mut Criterion) {
    let mut g = c.benchmark_group("session/core");
    let mut pair = Pair::new();
    // Pair::new sent two creates (xids 1 and 2); the session numbers requests on from there.
    let next_xid = Cell::new(3);
    let mut sink = Vec::new();
    for (name, n) in [("getData_window1000", WINDOW), ("getData_sequential", 1)] {
        g.throughput(Throughput::Elements(n as u64));
        g.bench_function(name, |b| {
            b.iter_batched(
                || {
                    let first = next_xid.get();
                    next_xid.set(first + n as i32);
                    replies(first, n)
                },
                |stream| {
                    let s = &mut pair.session;
                    for _ in 0..n {
                        s.submit(pair.now, get_data()).expect("submits");
                    }
                    while s.poll_transmit(&mut sink).is_some() {
                        black_box(sink.len());
                        sink.clear();
                    }
                    for chunk in stream.chunks(READ_CHUNK) {
                        s.handle_bytes(pair.now, pair.conn.0, chunk);
                    }
                    assert_eq!(drain(s), n);
                },
                BatchSize::SmallInput,
            )
        });
    }
    g.finish();
}

criterion_group!(benches, core, sim);
criterion_main!(benches);
