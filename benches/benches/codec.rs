//! Codec micro-benchmarks: getData replies of 100 B, 1 KiB and 1 MiB, a getChildren reply with
//! 10,000 children, a watch notification, and the getData request a client sends, each encoded
//! (server side) and decoded (client side).
//!
//! Decoding is measured two ways: from a frame already split off the stream (`decode`), which
//! is the codec alone, and from the raw byte stream through `FrameDecoder` (`decode_stream`),
//! which adds the copy into the decoder's buffer that `Session::handle_bytes` makes.

use std::hint::black_box;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use zk_core::proto::{
    decode_notification, decode_reply, decode_reply_header, encode_notification, encode_reply,
    encode_request, xid, ChildNames, ErrorCode, EventType, FrameDecoder, KeeperState, OpCode,
    PathWatchRequest, ReplyHeader, Request, Response, Stat, WatcherEvent, DEFAULT_MAX_FRAME,
};

fn stat(data_length: i32, num_children: i32) -> Stat {
    Stat {
        czxid: 0x1_0000_0002,
        mzxid: 0x1_0000_0009,
        ctime: 1_735_689_600_000,
        mtime: 1_735_689_600_123,
        version: 7,
        cversion: num_children,
        aversion: 0,
        ephemeral_owner: 0,
        data_length,
        num_children,
        pzxid: 0x1_0000_0002,
    }
}

fn header() -> ReplyHeader {
    ReplyHeader {
        xid: 42,
        zxid: 0x1_0000_0009,
        err: ErrorCode::Ok,
    }
}

/// A whole reply frame (length prefix included) for `body`.
fn reply_frame(body: &Response) -> Vec<u8> {
    let mut out = Vec::new();
    encode_reply(&mut out, usize::MAX, &header(), Some(body)).expect("encodes");
    out
}

/// Benchmarks encode, decode and decode_stream of one reply body answering `op`.
fn reply_group(c: &mut Criterion, name: &str, op: OpCode, body: &Response) {
    let frame = reply_frame(body);
    let payload = Bytes::copy_from_slice(&frame[4..]);
    let mut g = c.benchmark_group(name);
    g.throughput(Throughput::Bytes(frame.len() as u64));
    let mut out = Vec::with_capacity(frame.len());
    g.bench_function("encode", |b| {
        b.iter(|| {
            out.clear();
            encode_reply(&mut out, usize::MAX, &header(), Some(black_box(body))).expect("encodes");
            black_box(out.len())
        })
    });
    g.bench_function("decode", |b| {
        b.iter(|| {
            let (h, r) = decode_reply_header(black_box(payload.clone())).expect("header");
            black_box(decode_reply(&h, op, r).expect("body").expect("ok"))
        })
    });
    let mut decoder = FrameDecoder::new(DEFAULT_MAX_FRAME);
    g.bench_function("decode_stream", |b| {
        b.iter(|| {
            // In reads of at most 64 KiB, as the client reads (a large frame is assembled in an
            // allocation of its own from its second read on).
            let mut whole = None;
            for read in black_box(&frame).chunks(64 * 1024) {
                decoder.extend(read);
                whole = decoder.next_frame().expect("frame");
            }
            let f = whole.expect("whole");
            let (h, r) = decode_reply_header(f).expect("header");
            black_box(decode_reply(&h, op, r).expect("body").expect("ok"))
        })
    });
    g.finish();
}

fn get_data(c: &mut Criterion) {
    for (name, len) in [
        ("getData_reply/100B", 100),
        ("getData_reply/1KiB", 1024),
        ("getData_reply/1MiB", 1024 * 1024),
    ] {
        let body = Response::Data {
            data: Some(Bytes::from(vec![b'x'; len])),
            stat: stat(len as i32, 0),
        };
        reply_group(c, name, OpCode::GetData, &body);
    }
}

fn get_children(c: &mut Criterion) {
    let children: ChildNames = (0..10_000).map(|i| format!("child-{i:06}")).collect();
    let body = Response::Children { children };
    reply_group(c, "getChildren_reply/10000", OpCode::GetChildren, &body);
}

fn notification(c: &mut Criterion) {
    let event = WatcherEvent {
        event_type: EventType::NodeDataChanged,
        state: KeeperState::SyncConnected,
        path: "/app/config/service-a".to_owned(),
    };
    let mut frame = Vec::new();
    encode_notification(&mut frame, usize::MAX, 0x1_0000_0009, &event).expect("encodes");
    let payload = Bytes::copy_from_slice(&frame[4..]);
    let mut g = c.benchmark_group("notification");
    g.throughput(Throughput::Bytes(frame.len() as u64));
    let mut out = Vec::with_capacity(frame.len());
    g.bench_function("encode", |b| {
        b.iter(|| {
            out.clear();
            encode_notification(&mut out, usize::MAX, 0x1_0000_0009, black_box(&event))
                .expect("encodes");
            black_box(out.len())
        })
    });
    g.bench_function("decode", |b| {
        b.iter(|| {
            let (h, r) = decode_reply_header(black_box(payload.clone())).expect("header");
            assert_eq!(h.xid, xid::NOTIFICATION);
            black_box(decode_notification(r).expect("event"))
        })
    });
    g.finish();
}

fn request(c: &mut Criterion) {
    let req = Request::GetData(PathWatchRequest {
        path: "/zkb/small".to_owned(),
        watch: false,
    });
    let mut out = Vec::with_capacity(64);
    c.bench_function("getData_request/encode", |b| {
        b.iter(|| {
            out.clear();
            encode_request(&mut out, DEFAULT_MAX_FRAME, 7, black_box(&req)).expect("encodes");
            black_box(out.len())
        })
    });
}

criterion_group!(benches, get_data, get_children, notification, request);
criterion_main!(benches);
