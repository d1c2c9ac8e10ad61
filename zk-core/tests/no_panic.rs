//! Hostile input: every decoder of `zk_core::proto` returns `Ok` or `Err` for any bytes, never
//! panics, never allocates for data that is not there, and rejects truncated, over-long and
//! malformed records with the right error. Inputs that do decode are stable: decode, encode,
//! decode gives the same value.
//!
//! A global allocator in this test binary records the largest single allocation made by each
//! thread, so the hostile-length tests can check that a decoder refused a length *before*
//! allocating for it.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use bytes::Bytes;
use common::*;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;
use zk_core::proto::*;

// ---- allocation tracking ---------------------------------------------------------------------------

/// Forwards to the system allocator, remembering the largest request per thread.
struct TrackLargest;

thread_local! {
    static LARGEST_ALLOCATION: Cell<usize> = const { Cell::new(0) };
}

fn note_allocation(size: usize) {
    // `try_with`: allocations during thread teardown must not panic.
    let _ = LARGEST_ALLOCATION.try_with(|c| {
        if size > c.get() {
            c.set(size);
        }
    });
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged.
unsafe impl GlobalAlloc for TrackLargest {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note_allocation(layout.size());
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract, which `System` shares.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note_allocation(layout.size());
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System` through this allocator with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note_allocation(new_size);
        // SAFETY: `ptr` came from `System` through this allocator with this layout.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: TrackLargest = TrackLargest;

/// Runs `f` and returns its result with the largest single allocation it made on this thread.
fn largest_allocation_during<R>(f: impl FnOnce() -> R) -> (R, usize) {
    LARGEST_ALLOCATION.with(|c| c.set(0));
    let r = f();
    (r, LARGEST_ALLOCATION.with(|c| c.get()))
}

/// Well above anything a few dozen input bytes justify, far below what a hostile length asks for.
const SMALL_ALLOCATION: usize = 4096;

// ---- helpers ---------------------------------------------------------------------------------------

fn be32(n: i32) -> [u8; 4] {
    n.to_be_bytes()
}

/// A length-prefixed string.
fn jstr(s: &[u8]) -> Vec<u8> {
    let mut out = be32(s.len() as i32).to_vec();
    out.extend_from_slice(s);
    out
}

/// A request frame payload: RequestHeader(xid 1, op) and a raw body.
fn request_frame(op: OpCode, body: &[u8]) -> Bytes {
    let mut out = Vec::new();
    RequestHeader {
        xid: 1,
        op: op.code(),
    }
    .encode(&mut out);
    out.extend_from_slice(body);
    Bytes::from(out)
}

/// The body error of a request frame whose header must be readable.
fn request_body_error(op: OpCode, body: &[u8]) -> Option<DecodeError> {
    let frame = request_frame(op, body);
    let (_, body) = decode_request(frame).expect("header is readable");
    body.err()
}

/// The error from decoding `body` as the successful reply to `op`, through the frame path.
fn reply_body_error(op: OpCode, body: &[u8]) -> Option<DecodeError> {
    let mut out = Vec::new();
    ReplyHeader {
        xid: 1,
        zxid: 1,
        err: ErrorCode::Ok,
    }
    .encode(&mut out);
    out.extend_from_slice(body);
    let (h, r) = decode_reply_header(Bytes::from(out)).expect("header is readable");
    decode_reply(&h, op, r).err()
}

/// Feeds `chunks` to a decoder, draining frames after each, and checks the decoder's accounting.
fn drive_frame_decoder(max: usize, chunks: &[Vec<u8>]) -> Result<(), TestCaseError> {
    let mut d = FrameDecoder::new(max);
    let mut fed = 0usize;
    let mut taken = 0usize;
    for chunk in chunks {
        d.extend(chunk);
        fed += chunk.len();
        loop {
            match d.next_frame() {
                Ok(Some(frame)) => {
                    prop_assert!(frame.len() <= max, "frame of {} > max {}", frame.len(), max);
                    taken += 4 + frame.len();
                }
                Ok(None) => break,
                Err(_) => return Ok(()),
            }
        }
        prop_assert_eq!(taken + d.buffered(), fed);
    }
    Ok(())
}

/// Decodes `b` with every record decoder; results are discarded, only panics matter.
fn decode_with_every_record_decoder(b: &[u8]) {
    let _ = ConnectRequest::decode(reader(b));
    let _ = ConnectResponse::decode(reader(b));
    let _ = RequestHeader::decode(&mut reader(b));
    let _ = ReplyHeader::decode(&mut reader(b));
    let _ = WatcherEvent::decode(&mut reader(b));
    let _ = CreateRequest::decode(&mut reader(b));
    let _ = CreateTtlRequest::decode(&mut reader(b));
    let _ = PathVersionRequest::decode(&mut reader(b));
    let _ = PathWatchRequest::decode(&mut reader(b));
    let _ = PathRequest::decode(&mut reader(b));
    let _ = SetDataRequest::decode(&mut reader(b));
    let _ = SetAclRequest::decode(&mut reader(b));
    let _ = ReconfigRequest::decode(&mut reader(b));
    let _ = WatchesRequest::decode(&mut reader(b));
    let _ = AddWatchRequest::decode(&mut reader(b));
    let _ = AuthPacket::decode(&mut reader(b));
    let _ = SaslToken::decode(&mut reader(b));
    let _ = SetWatches::decode(&mut reader(b));
    let _ = SetWatches2::decode(&mut reader(b));
    let _ = MultiHeader::decode(&mut reader(b));
    let _ = Stat::decode(&mut reader(b));
    let _ = MultiOp::decode_all(&mut reader(b));
    let _ = MultiResult::decode_all(&mut reader(b));
    for op in OpCode::ALL {
        let _ = Request::decode(*op, reader(b));
        let _ = Response::decode(*op, reader(b));
    }
}

/// Bytes that start with a RequestHeader for any opcode (or none), then hostile body bytes.
fn request_frame_bytes() -> BoxedStrategy<Vec<u8>> {
    let op = prop_oneof![
        3 => select(OpCode::ALL).prop_map(|op| op.code()),
        1 => any::<i32>(),
    ];
    (
        xid(),
        op,
        prop_oneof![hostile_bytes(), vec(any::<u8>(), 0..64)],
    )
        .prop_map(|(xid, op, body)| {
            let mut out = Vec::new();
            RequestHeader { xid, op }.encode(&mut out);
            out.extend(body);
            out
        })
        .boxed()
}

/// Bytes that start with a ReplyHeader (usually err 0, so bodies get decoded), then a hostile
/// body.
fn reply_frame_bytes() -> BoxedStrategy<Vec<u8>> {
    (
        xid(),
        any::<i64>(),
        prop_oneof![3 => Just(ErrorCode::Ok), 1 => error_code()],
        prop_oneof![hostile_bytes(), vec(any::<u8>(), 0..100)],
    )
        .prop_map(|(xid, zxid, err, body)| {
            let mut out = Vec::new();
            ReplyHeader { xid, zxid, err }.encode(&mut out);
            out.extend(body);
            out
        })
        .boxed()
}

// ---- arbitrary bytes never panic -----------------------------------------------------------------

proptest! {
    #[test]
    fn frame_decoder_never_panics_on_arbitrary_chunks(
        chunks in vec(prop_oneof![arbitrary_bytes(), vec(any::<u8>(), 0..8)], 0..8),
        max in prop_oneof![0usize..=64, 0usize..=4096, Just(SERVER_MAX_FRAME), Just(DEFAULT_MAX_FRAME)],
    ) {
        drive_frame_decoder(max, &chunks)?;
    }

    /// The same, with streams of valid frames (so payloads do get handed out) cut anywhere.
    #[test]
    fn frame_decoder_never_panics_on_valid_streams_split_anywhere(
        payloads in vec(arbitrary_bytes(), 0..5),
        cut_every in 1usize..40,
        max in 0usize..=300,
    ) {
        let mut stream = Vec::new();
        for p in &payloads {
            stream.extend_from_slice(&be32(p.len() as i32));
            stream.extend_from_slice(p);
        }
        let chunks: Vec<Vec<u8>> = stream.chunks(cut_every).map(<[u8]>::to_vec).collect();
        drive_frame_decoder(max, &chunks)?;
    }

    #[test]
    fn connect_decoders_never_panic(b in arbitrary_bytes()) {
        let _ = decode_connect_request(Bytes::from(b.clone()));
        let _ = decode_connect_response(Bytes::from(b));
    }

    #[test]
    fn decode_request_never_panics(b in prop_oneof![arbitrary_bytes(), request_frame_bytes()]) {
        let _ = decode_request(Bytes::from(b));
    }

    #[test]
    fn reply_decoders_never_panic_for_every_opcode(
        b in prop_oneof![arbitrary_bytes(), reply_frame_bytes()],
    ) {
        if let Ok((header, body)) = decode_reply_header(Bytes::from(b)) {
            for op in OpCode::ALL {
                let _ = decode_reply(&header, *op, body.clone());
            }
            let _ = decode_notification(body);
        }
    }

    #[test]
    fn decode_notification_never_panics(b in arbitrary_bytes()) {
        let _ = decode_notification(reader(&b));
    }

    #[test]
    fn multi_decoders_never_panic(b in arbitrary_bytes()) {
        let _ = MultiOp::decode_all(&mut reader(&b));
        let _ = MultiResult::decode_all(&mut reader(&b));
    }

    #[test]
    fn stat_decode_never_panics(b in arbitrary_bytes()) {
        let mut r = reader(&b);
        if Stat::decode(&mut r).is_ok() {
            prop_assert_eq!(r.remaining(), b.len() - Stat::WIRE_LEN);
        }
    }

    #[test]
    fn every_record_decoder_never_panics(b in arbitrary_bytes()) {
        decode_with_every_record_decoder(&b);
    }

    /// Any sequence of primitive reads over any bytes ends in Ok or Err.
    #[test]
    fn reader_primitives_never_panic(b in arbitrary_bytes(), reads in vec(0u8..9, 0..12)) {
        let mut r = reader(&b);
        for read in reads {
            let before = r.remaining();
            let _ = match read {
                0 => r.read_bool().map(drop),
                1 => r.read_i32().map(drop),
                2 => r.read_i64().map(drop),
                3 => r.read_buffer().map(drop),
                4 => r.read_buffer_non_null("buffer").map(drop),
                5 => r.read_ustring().map(drop),
                6 => r.read_string("string").map(drop),
                7 => r.read_string_vec("strings").map(drop),
                _ => r.read_vec("ints", 4, Reader::read_i32).map(drop),
            };
            prop_assert!(r.remaining() <= before);
        }
        let _ = r.finish();
    }
}

// ---- decode -> encode -> decode is stable --------------------------------------------------------

proptest! {
    /// Whatever a server-side decode_request accepts re-encodes to a frame of the same length that
    /// decodes to the same header and request (non-canonical input such as a boolean byte 7 is
    /// normalised, but never changes meaning).
    #[test]
    fn request_decode_encode_decode_is_stable(
        b in prop_oneof![
            1 => arbitrary_bytes(),
            1 => request_frame_bytes(),
            3 => mutated((xid(), op_and_request()).prop_map(|(x, (_, r))| request_payload(x, &r)).boxed()),
        ],
    ) {
        if let Ok((header, Ok(req))) = decode_request(Bytes::from(b.clone())) {
            prop_assert_eq!(header.op, req.op_code().code());
            let again = request_payload(header.xid, &req);
            prop_assert_eq!(again.len(), b.len(), "re-encoding changed the length");
            let (header2, req2) = decode_request(Bytes::from(again.clone())).unwrap();
            prop_assert_eq!(header2, header);
            let req2 = req2.unwrap();
            prop_assert_eq!(&req2, &req);
            prop_assert_eq!(request_payload(header2.xid, &req2), again);
        }
    }

    /// Whatever Response::decode accepts for an opcode re-encodes to a body of the same length
    /// that decodes, for that opcode, to the same reply. Tried for every opcode on every input.
    #[test]
    fn response_decode_encode_decode_is_stable_for_every_op(
        b in prop_oneof![
            1 => arbitrary_bytes(),
            3 => mutated(op_and_response().prop_map(|(_, r)| response_body(&r)).boxed()),
        ],
    ) {
        for op in OpCode::ALL {
            if let Ok(resp) = Response::decode(*op, reader(&b)) {
                let again = response_body(&resp);
                prop_assert_eq!(again.len(), b.len(), "re-encoding changed the length for {:?}", op);
                let resp2 = Response::decode(*op, reader(&again)).unwrap();
                prop_assert_eq!(&resp2, &resp);
                prop_assert_eq!(response_body(&resp2), again);
            }
        }
    }

    #[test]
    fn connect_decode_encode_decode_is_stable(
        b in prop_oneof![
            arbitrary_bytes(),
            mutated(connect_request().prop_map(|r| { let mut o = Vec::new(); r.encode(&mut o); o }).boxed()),
            mutated(connect_response().prop_map(|r| { let mut o = Vec::new(); r.encode(&mut o); o }).boxed()),
        ],
    ) {
        if let Ok(req) = decode_connect_request(Bytes::from(b.clone())) {
            let mut again = Vec::new();
            req.encode(&mut again);
            prop_assert_eq!(again.len(), b.len());
            prop_assert_eq!(decode_connect_request(Bytes::from(again)).unwrap(), req);
        }
        if let Ok(resp) = decode_connect_response(Bytes::from(b.clone())) {
            let mut again = Vec::new();
            resp.encode(&mut again);
            prop_assert_eq!(again.len(), b.len());
            prop_assert_eq!(decode_connect_response(Bytes::from(again)).unwrap(), resp);
        }
    }

    #[test]
    fn multi_decode_encode_decode_is_stable(
        b in prop_oneof![
            arbitrary_bytes(),
            mutated(multi_ops().prop_map(|v| { let mut o = Vec::new(); MultiOp::encode_all(&v, &mut o); o }).boxed()),
            mutated(multi_results().prop_map(|v| { let mut o = Vec::new(); MultiResult::encode_all(&v, &mut o); o }).boxed()),
        ],
    ) {
        let mut r = reader(&b);
        if let Ok(ops) = MultiOp::decode_all(&mut r) {
            let used = b.len() - r.remaining();
            let mut again = Vec::new();
            MultiOp::encode_all(&ops, &mut again);
            prop_assert_eq!(again.len(), used);
            prop_assert_eq!(MultiOp::decode_all(&mut reader(&again)).unwrap(), ops);
        }
        let mut r = reader(&b);
        if let Ok(results) = MultiResult::decode_all(&mut r) {
            let used = b.len() - r.remaining();
            let mut again = Vec::new();
            MultiResult::encode_all(&results, &mut again);
            prop_assert_eq!(again.len(), used);
            prop_assert_eq!(MultiResult::decode_all(&mut reader(&again)).unwrap(), results);
        }
    }

    #[test]
    fn notification_decode_encode_decode_is_stable(
        b in prop_oneof![
            arbitrary_bytes(),
            mutated(watcher_event().prop_map(|e| { let mut o = Vec::new(); e.encode(&mut o); o }).boxed()),
        ],
    ) {
        if let Ok(ev) = decode_notification(reader(&b)) {
            let mut again = Vec::new();
            ev.encode(&mut again);
            prop_assert_eq!(again.len(), b.len());
            prop_assert_eq!(decode_notification(reader(&again)).unwrap(), ev);
        }
    }
}

// ---- truncation: every strict prefix of a valid record fails ------------------------------------

proptest! {
    #[test]
    fn every_strict_prefix_of_a_request_frame_fails(x in xid(), (op, req) in op_and_request()) {
        let payload = request_payload(x, &req);
        for k in 0..payload.len() {
            let prefix = Bytes::copy_from_slice(&payload[..k]);
            match decode_request(prefix) {
                Err(e) => {
                    prop_assert!(k < RequestHeader::WIRE_LEN, "header error {:?} at {}", e, k);
                    prop_assert!(matches!(e, DecodeError::Truncated { .. }), "{:?}", e);
                }
                Ok((_, body)) => prop_assert!(
                    body.is_err(),
                    "{}-byte prefix of a {}-byte {:?} request decoded as {:?}",
                    k, payload.len(), op, body
                ),
            }
        }
    }

    #[test]
    fn every_strict_prefix_of_a_request_body_fails((op, req) in op_and_request()) {
        let body = request_body(&req);
        for k in 0..body.len() {
            let got = Request::decode(op, reader(&body[..k]));
            prop_assert!(
                matches!(got, Err(DecodeError::Truncated { .. })),
                "{}-byte prefix of a {}-byte {:?} body gave {:?}", k, body.len(), op, got
            );
        }
    }

    #[test]
    fn every_strict_prefix_of_a_reply_fails((op, resp) in op_and_response(), zxid in any::<i64>()) {
        let payload = reply_payload(7, zxid, &resp);
        for k in 0..payload.len() {
            match decode_reply_header(Bytes::copy_from_slice(&payload[..k])) {
                Err(e) => {
                    prop_assert!(k < ReplyHeader::WIRE_LEN, "header error {:?} at {}", e, k);
                    prop_assert!(matches!(e, DecodeError::Truncated { .. }), "{:?}", e);
                }
                Ok((h, body)) => {
                    let got = decode_reply(&h, op, body);
                    prop_assert!(
                        matches!(got, Err(DecodeError::Truncated { .. })),
                        "{}-byte prefix of a {}-byte {:?} reply gave {:?}", k, payload.len(), op, got
                    );
                }
            }
        }
    }

    #[test]
    fn every_strict_prefix_of_a_notification_fails(ev in watcher_event()) {
        let mut body = Vec::new();
        ev.encode(&mut body);
        for k in 0..body.len() {
            let got = decode_notification(reader(&body[..k]));
            prop_assert!(matches!(got, Err(DecodeError::Truncated { .. })), "{} -> {:?}", k, got);
        }
    }

    #[test]
    fn every_strict_prefix_of_a_multi_list_fails(ops in multi_ops(), results in multi_results()) {
        let mut body = Vec::new();
        MultiOp::encode_all(&ops, &mut body);
        for k in 0..body.len() {
            let got = MultiOp::decode_all(&mut reader(&body[..k]));
            prop_assert!(matches!(got, Err(DecodeError::Truncated { .. })), "{} -> {:?}", k, got);
        }
        body.clear();
        MultiResult::encode_all(&results, &mut body);
        for k in 0..body.len() {
            let got = MultiResult::decode_all(&mut reader(&body[..k]));
            prop_assert!(matches!(got, Err(DecodeError::Truncated { .. })), "{} -> {:?}", k, got);
        }
    }

    #[test]
    fn every_strict_prefix_of_a_stat_fails(s in stat()) {
        let mut body = Vec::new();
        s.encode(&mut body);
        for k in 0..body.len() {
            let got = Stat::decode(&mut reader(&body[..k]));
            prop_assert!(matches!(got, Err(DecodeError::Truncated { .. })), "{} -> {:?}", k, got);
        }
    }

    /// The one optional field: a ConnectRequest cut just before its readOnly byte is itself
    /// valid (readOnly absent); every shorter prefix fails.
    #[test]
    fn connect_request_prefixes_fail_except_without_the_read_only_byte(req in connect_request()) {
        let mut body = Vec::new();
        req.encode(&mut body);
        for k in 0..body.len() {
            let got = decode_connect_request(Bytes::copy_from_slice(&body[..k]));
            if req.read_only.is_some() && k == body.len() - 1 {
                let expected = ConnectRequest { read_only: None, ..req.clone() };
                prop_assert_eq!(got, Ok(expected));
            } else {
                prop_assert!(matches!(got, Err(DecodeError::Truncated { .. })), "{} -> {:?}", k, got);
            }
        }
    }

    /// As for the request: only the prefix without the readOnly byte is valid.
    #[test]
    fn connect_response_prefixes_fail_except_without_the_read_only_byte(resp in connect_response()) {
        let mut body = Vec::new();
        resp.encode(&mut body);
        for k in 0..body.len() {
            let got = decode_connect_response(Bytes::copy_from_slice(&body[..k]));
            if resp.read_only.is_some() && k == body.len() - 1 {
                let expected = ConnectResponse { read_only: None, ..resp.clone() };
                prop_assert_eq!(got, Ok(expected));
            } else {
                prop_assert!(matches!(got, Err(DecodeError::Truncated { .. })), "{} -> {:?}", k, got);
            }
        }
    }
}

// ---- trailing garbage after a valid body ---------------------------------------------------------

proptest! {
    #[test]
    fn trailing_bytes_after_a_request_body_are_rejected(
        (op, req) in op_and_request(),
        junk in vec(any::<u8>(), 1..16),
    ) {
        let mut body = request_body(&req);
        body.extend_from_slice(&junk);
        prop_assert_eq!(
            Request::decode(op, reader(&body)),
            Err(DecodeError::TrailingBytes(junk.len()))
        );
        prop_assert_eq!(request_body_error(op, &body), Some(DecodeError::TrailingBytes(junk.len())));
    }

    #[test]
    fn trailing_bytes_after_a_reply_body_are_rejected(
        (op, resp) in op_and_response(),
        junk in vec(any::<u8>(), 1..16),
    ) {
        let mut body = response_body(&resp);
        body.extend_from_slice(&junk);
        prop_assert_eq!(
            Response::decode(op, reader(&body)),
            Err(DecodeError::TrailingBytes(junk.len()))
        );
        prop_assert_eq!(reply_body_error(op, &body), Some(DecodeError::TrailingBytes(junk.len())));
    }

    #[test]
    fn trailing_bytes_after_a_notification_are_rejected(
        ev in watcher_event(),
        junk in vec(any::<u8>(), 1..16),
    ) {
        let mut body = Vec::new();
        ev.encode(&mut body);
        body.extend_from_slice(&junk);
        prop_assert_eq!(
            decode_notification(reader(&body)),
            Err(DecodeError::TrailingBytes(junk.len()))
        );
    }

    /// After the readOnly byte nothing may follow. Without it, the first extra byte is read as
    /// readOnly, and anything after that is trailing.
    #[test]
    fn trailing_bytes_after_a_connect_record_are_rejected(
        req in connect_request(),
        resp in connect_response(),
        junk in vec(any::<u8>(), 1..16),
    ) {
        let trailing = |read_only: Option<bool>| {
            if read_only.is_some() { junk.len() } else { junk.len() - 1 }
        };

        let mut body = Vec::new();
        req.encode(&mut body);
        body.extend_from_slice(&junk);
        let got = decode_connect_request(Bytes::from(body));
        if trailing(req.read_only) == 0 {
            prop_assert_eq!(got.unwrap().read_only, Some(junk[0] != 0));
        } else {
            prop_assert_eq!(got, Err(DecodeError::TrailingBytes(trailing(req.read_only))));
        }

        let mut body = Vec::new();
        resp.encode(&mut body);
        body.extend_from_slice(&junk);
        let got = decode_connect_response(Bytes::from(body));
        if trailing(resp.read_only) == 0 {
            prop_assert_eq!(got.unwrap().read_only, Some(junk[0] != 0));
        } else {
            prop_assert_eq!(got, Err(DecodeError::TrailingBytes(trailing(resp.read_only))));
        }
    }
}

// ---- hostile lengths -------------------------------------------------------------------------------

/// A deferred decode that yields its error, if any.
type Decoder = Box<dyn Fn() -> Option<DecodeError>>;

/// Inputs whose vector count claims 2^31-1 elements with only a few bytes behind it.
fn huge_vector_inputs() -> Vec<(&'static str, Decoder)> {
    let huge = be32(i32::MAX);
    let few = [0u8, 0, 0, 0];
    let count_then_few = [&huge[..], &few[..]].concat();
    let path = jstr(b"/a");
    let mut out: Vec<(&'static str, Decoder)> = Vec::new();

    let body = [&0i64.to_be_bytes()[..], &count_then_few].concat();
    out.push(("setWatches dataWatches", {
        let body = body.clone();
        Box::new(move || request_body_error(OpCode::SetWatches, &body))
    }));
    out.push(("setWatches2 dataWatches", {
        Box::new(move || request_body_error(OpCode::SetWatches2, &body))
    }));
    let body = [&path[..], &count_then_few].concat();
    out.push(("setACL acl", {
        Box::new(move || request_body_error(OpCode::SetAcl, &body))
    }));
    let body = [&path[..], &be32(-1)[..], &count_then_few].concat();
    out.push(("create acl", {
        Box::new(move || request_body_error(OpCode::Create, &body))
    }));
    for (name, op) in [
        ("getChildren children", OpCode::GetChildren),
        ("getChildren2 children", OpCode::GetChildren2),
        ("getEphemerals paths", OpCode::GetEphemerals),
        ("getACL acl", OpCode::GetAcl),
        ("whoAmI clientInfo", OpCode::WhoAmI),
    ] {
        let body = count_then_few.clone();
        out.push((name, Box::new(move || reply_body_error(op, &body))));
    }
    let mut body = Vec::new();
    MultiHeader {
        op_type: OpCode::GetChildren.code(),
        done: false,
        err: 0,
    }
    .encode(&mut body);
    body.extend_from_slice(&count_then_few);
    out.push((
        "multiRead getChildren result",
        Box::new(move || reply_body_error(OpCode::MultiRead, &body)),
    ));
    out
}

#[test]
fn allocation_tracker_sees_large_allocations() {
    let (v, largest) = largest_allocation_during(|| Vec::<u8>::with_capacity(1 << 20));
    assert!(largest >= 1 << 20, "tracker saw {largest} bytes");
    drop(v);
    let ((), largest) = largest_allocation_during(|| ());
    assert_eq!(largest, 0);
}

#[test]
fn vector_count_larger_than_input_fails_without_allocating() {
    for (name, decode) in huge_vector_inputs() {
        let (err, largest) = largest_allocation_during(decode);
        assert!(
            matches!(err, Some(DecodeError::Truncated { .. })),
            "{name}: expected Truncated, got {err:?}"
        );
        assert!(
            largest < SMALL_ALLOCATION,
            "{name}: allocated {largest} bytes for a vector that is not there"
        );
    }
}

#[test]
fn string_length_larger_than_input_is_truncated() {
    // A path claiming 10 bytes with 3 behind it.
    let body = [&be32(10)[..], b"/ab"].concat();
    assert_eq!(
        request_body_error(OpCode::GetAcl, &body),
        Some(DecodeError::Truncated {
            needed: 10,
            remaining: 3
        })
    );
    // Lengths up to i32::MAX, in strings and buffers, fail without allocating for them.
    for len in [4, 1000, 0x0010_0000, i32::MAX] {
        let cases: Vec<(&str, Decoder)> = vec![
            ("getACL path", {
                let body = [&be32(len)[..], b"/x"].concat();
                Box::new(move || request_body_error(OpCode::GetAcl, &body))
            }),
            ("setData data", {
                let body = [&jstr(b"/x")[..], &be32(len)[..], &[1, 2]].concat();
                Box::new(move || request_body_error(OpCode::SetData, &body))
            }),
            ("sasl token", {
                let body = [&be32(len)[..], &[1, 2, 3]].concat();
                Box::new(move || reply_body_error(OpCode::Sasl, &body))
            }),
            ("create reply path", {
                let body = be32(len).to_vec();
                Box::new(move || reply_body_error(OpCode::Create, &body))
            }),
            ("connect passwd", {
                let mut body = vec![0; 24];
                body.extend_from_slice(&be32(len));
                body.push(0);
                Box::new(move || decode_connect_request(Bytes::from(body.clone())).err())
            }),
            ("notification path", {
                let body = [&be32(1)[..], &be32(3)[..], &be32(len)[..], b"/"].concat();
                Box::new(move || decode_notification(reader(&body)).err())
            }),
        ];
        for (name, decode) in cases {
            let (err, largest) = largest_allocation_during(decode);
            assert!(
                matches!(err, Some(DecodeError::Truncated { .. })),
                "{name} with length {len}: expected Truncated, got {err:?}"
            );
            assert!(
                largest < SMALL_ALLOCATION,
                "{name} with length {len}: allocated {largest} bytes"
            );
        }
    }
}

#[test]
fn negative_lengths_below_minus_one_are_rejected() {
    for n in [-2, -3, -1000, i32::MIN] {
        let neg = be32(n);
        let cases: Vec<(&str, Option<DecodeError>)> = vec![
            (
                "getACL path",
                request_body_error(OpCode::GetAcl, &[&neg[..], &[0; 8]].concat()),
            ),
            (
                "setData data",
                request_body_error(
                    OpCode::SetData,
                    &[&jstr(b"/x")[..], &neg[..], &[0; 8]].concat(),
                ),
            ),
            (
                "setACL acl",
                request_body_error(
                    OpCode::SetAcl,
                    &[&jstr(b"/x")[..], &neg[..], &[0; 8]].concat(),
                ),
            ),
            (
                "reconfig joining",
                request_body_error(OpCode::Reconfig, &[&neg[..], &[0; 20]].concat()),
            ),
            (
                "setWatches exist",
                request_body_error(
                    OpCode::SetWatches,
                    &[&[0; 8][..], &be32(0)[..], &neg[..], &[0; 8]].concat(),
                ),
            ),
            (
                "getChildren reply",
                reply_body_error(OpCode::GetChildren, &neg),
            ),
            (
                "getData reply data",
                reply_body_error(OpCode::GetData, &[&neg[..], &[0; 68]].concat()),
            ),
            (
                "connect passwd",
                decode_connect_response(Bytes::from([&[0; 16][..], &neg[..]].concat())).err(),
            ),
        ];
        for (name, err) in cases {
            assert_eq!(err, Some(DecodeError::NegativeLength(n)), "{name} with {n}");
        }
    }
}

#[test]
fn null_where_the_protocol_never_sends_one_is_rejected() {
    let null = be32(-1);
    let cases: Vec<(&str, Option<DecodeError>)> = vec![
        ("getACL path", request_body_error(OpCode::GetAcl, &null)),
        (
            "setACL acl",
            request_body_error(
                OpCode::SetAcl,
                &[&jstr(b"/x")[..], &null[..], &[0; 4]].concat(),
            ),
        ),
        (
            "auth buffer",
            request_body_error(
                OpCode::Auth,
                &[&[0; 4][..], &jstr(b"digest")[..], &null[..]].concat(),
            ),
        ),
        (
            "getChildren reply",
            reply_body_error(OpCode::GetChildren, &null),
        ),
        (
            "connect passwd",
            decode_connect_request(Bytes::from([&[0; 24][..], &null[..]].concat())).err(),
        ),
        (
            "notification path",
            decode_notification(reader(&[&[0, 0, 0, 1, 0, 0, 0, 3][..], &null[..]].concat())).err(),
        ),
    ];
    for (name, err) in cases {
        assert!(
            matches!(err, Some(DecodeError::UnexpectedNull(_))),
            "{name}: expected UnexpectedNull, got {err:?}"
        );
    }
    // Where null is allowed it stays distinct from empty.
    let body = [&jstr(b"/x")[..], &null[..], &be32(-1)[..]].concat();
    let (_, req) = decode_request(request_frame(OpCode::SetData, &body)).unwrap();
    assert_eq!(
        req.unwrap(),
        Request::SetData(SetDataRequest {
            path: "/x".into(),
            data: None,
            version: -1
        })
    );
}

#[test]
fn non_utf8_strings_are_rejected() {
    for bad in [
        &[0xc3, 0x28][..],   // invalid continuation
        &[0xff][..],         // never valid
        &[0x80][..],         // lone continuation byte
        &[0xe2, 0x82][..],   // truncated sequence
        &[0xc0, 0xaf][..],   // overlong '/'
        &[b'/', 0xfe, b'a'], // invalid byte inside a path
    ] {
        let s = jstr(bad);
        let acl = [&be32(1)[..], &be32(31)[..], &s[..], &jstr(b"anyone")[..]].concat();
        let mut multi_create = Vec::new();
        MultiHeader {
            op_type: OpCode::Create.code(),
            done: false,
            err: 0,
        }
        .encode(&mut multi_create);
        multi_create.extend_from_slice(&s);
        MultiHeader::TERMINATOR.encode(&mut multi_create);

        let cases: Vec<(&str, Option<DecodeError>)> = vec![
            ("getACL path", request_body_error(OpCode::GetAcl, &s)),
            (
                "setACL acl scheme",
                request_body_error(
                    OpCode::SetAcl,
                    &[&jstr(b"/x")[..], &acl[..], &be32(-1)[..]].concat(),
                ),
            ),
            (
                "reconfig joining (nullable)",
                request_body_error(
                    OpCode::Reconfig,
                    &[&s[..], &be32(-1)[..], &be32(-1)[..], &[0; 8]].concat(),
                ),
            ),
            (
                "getChildren child",
                reply_body_error(OpCode::GetChildren, &[&be32(1)[..], &s[..]].concat()),
            ),
            (
                "whoAmI user",
                reply_body_error(
                    OpCode::WhoAmI,
                    &[&be32(1)[..], &jstr(b"ip")[..], &s[..]].concat(),
                ),
            ),
            (
                "multi create result path",
                reply_body_error(OpCode::Multi, &multi_create),
            ),
            (
                "notification path",
                decode_notification(reader(&[&be32(1)[..], &be32(3)[..], &s[..]].concat())).err(),
            ),
        ];
        for (name, err) in cases {
            assert_eq!(
                err,
                Some(DecodeError::InvalidUtf8),
                "{name} with {bad:02x?}"
            );
        }
    }
}

// ---- hostile codes ------------------------------------------------------------------------------------

#[test]
fn unknown_opcode_in_a_readable_header_is_a_body_error() {
    for op in [999, 10, 23, 99, 108, -2, -12, i32::MIN, i32::MAX] {
        let mut frame = Vec::new();
        RequestHeader { xid: 5, op }.encode(&mut frame);
        let (header, body) = decode_request(Bytes::from(frame)).unwrap();
        assert_eq!(header, RequestHeader { xid: 5, op });
        assert!(
            matches!(body, Err(DecodeError::UnknownCode { code, .. }) if code == op),
            "op {op}: {body:?}"
        );
    }
}

#[test]
fn opcodes_no_client_sends_are_not_requests_and_have_no_replies() {
    let not_requests: Vec<OpCode> = OpCode::ALL
        .iter()
        .copied()
        .filter(|op| request_for(*op).is_none())
        .collect();
    assert_eq!(
        not_requests,
        [
            OpCode::Notification,
            OpCode::DeleteContainer,
            OpCode::CreateSession,
            OpCode::Error
        ]
    );
    for op in not_requests {
        assert_eq!(
            request_body_error(op, &[]),
            Some(DecodeError::NotARequest(op))
        );
        assert_eq!(
            reply_body_error(op, &[]),
            Some(DecodeError::NotARequest(op))
        );
    }
}

#[test]
fn multi_sub_op_types_that_cannot_be_in_a_transaction_are_rejected() {
    for op_type in [0, 3, 6, 9, 11, 14, 16, 22, 100, 101, -1, -11, 12345] {
        let mut body = Vec::new();
        MultiHeader {
            op_type,
            done: false,
            err: -1,
        }
        .encode(&mut body);
        body.extend_from_slice(&jstr(b"/x"));
        MultiHeader::TERMINATOR.encode(&mut body);
        assert!(
            matches!(
                request_body_error(OpCode::Multi, &body),
                Some(DecodeError::UnknownCode { code, .. }) if code == op_type
            ),
            "multi op type {op_type}"
        );
    }
    for op_type in [0, 3, 6, 9, 11, 12, 14, 16, 19, 21, 22, 100, -11, 12345] {
        let mut body = Vec::new();
        MultiHeader {
            op_type,
            done: false,
            err: 0,
        }
        .encode(&mut body);
        body.extend_from_slice(&jstr(b"/x"));
        MultiHeader::TERMINATOR.encode(&mut body);
        assert!(
            matches!(
                reply_body_error(OpCode::Multi, &body),
                Some(DecodeError::UnknownCode { code, .. }) if code == op_type
            ),
            "multi result type {op_type}"
        );
    }
}

#[test]
fn multi_without_its_terminator_is_truncated() {
    let mut body = Vec::new();
    MultiOp::encode_all(
        &[MultiOp::Delete(PathVersionRequest {
            path: "/x".into(),
            version: -1,
        })],
        &mut body,
    );
    body.truncate(body.len() - MultiHeader::WIRE_LEN);
    assert!(matches!(
        request_body_error(OpCode::Multi, &body),
        Some(DecodeError::Truncated { .. })
    ));
    assert!(matches!(
        reply_body_error(OpCode::Multi, &[]),
        Some(DecodeError::Truncated { .. })
    ));
}

#[test]
fn short_headers_are_truncated() {
    for n in 0..RequestHeader::WIRE_LEN {
        assert!(matches!(
            decode_request(Bytes::from(vec![0; n])),
            Err(DecodeError::Truncated { .. })
        ));
    }
    for n in 0..ReplyHeader::WIRE_LEN {
        assert!(matches!(
            decode_reply_header(Bytes::from(vec![0; n])),
            Err(DecodeError::Truncated { .. })
        ));
    }
}

// ---- hostile frame prefixes ------------------------------------------------------------------------

#[test]
fn oversize_frame_length_prefix_is_refused_before_the_payload_arrives() {
    for len in [DEFAULT_MAX_FRAME + 1, 0x0100_0000, i32::MAX as usize] {
        let mut d = FrameDecoder::new(DEFAULT_MAX_FRAME);
        d.extend(&be32(len as i32));
        let (got, largest) = largest_allocation_during(|| d.next_frame());
        assert_eq!(
            got,
            Err(FrameError::TooLarge {
                len,
                max: DEFAULT_MAX_FRAME
            })
        );
        assert!(
            largest < SMALL_ALLOCATION,
            "allocated {largest} bytes for a refused frame"
        );
        // The stream stays refused; nothing more is handed out.
        d.extend(&[0; 64]);
        assert!(matches!(d.next_frame(), Err(FrameError::TooLarge { .. })));
    }
    // A frame exactly at the limit is accepted (it waits for its payload).
    let mut d = FrameDecoder::new(16);
    d.extend(&be32(16));
    assert_eq!(d.next_frame(), Ok(None));
    d.extend(&[7; 16]);
    assert_eq!(d.next_frame(), Ok(Some(Bytes::from(vec![7; 16]))));
    // One more is refused.
    let mut d = FrameDecoder::new(16);
    d.extend(&be32(17));
    assert_eq!(
        d.next_frame(),
        Err(FrameError::TooLarge { len: 17, max: 16 })
    );
}

#[test]
fn negative_frame_length_prefix_is_refused() {
    for len in [-1, -2, -0x0100_0000, i32::MIN] {
        let mut d = FrameDecoder::new(DEFAULT_MAX_FRAME);
        let prefix = be32(len);
        // Nothing is decided until the whole prefix is there.
        for b in &prefix[..3] {
            d.extend(&[*b]);
            assert_eq!(d.next_frame(), Ok(None));
        }
        d.extend(&prefix[3..]);
        assert_eq!(d.next_frame(), Err(FrameError::NegativeLength(len)));
        assert_eq!(d.next_frame(), Err(FrameError::NegativeLength(len)));
    }
}

proptest! {
    #[test]
    fn any_frame_length_above_the_limit_is_refused(
        max in prop_oneof![0usize..=4096, Just(SERVER_MAX_FRAME), Just(DEFAULT_MAX_FRAME)],
        excess in 1usize..=0x7fff_ffff,
        tail in vec(any::<u8>(), 0..16),
    ) {
        let len = (max + excess).min(i32::MAX as usize);
        prop_assume!(len > max);
        let mut d = FrameDecoder::new(max);
        d.extend(&be32(len as i32));
        d.extend(&tail);
        prop_assert_eq!(d.next_frame(), Err(FrameError::TooLarge { len, max }));
    }

    #[test]
    fn any_negative_frame_length_is_refused(len in i32::MIN..0, tail in vec(any::<u8>(), 0..16)) {
        let mut d = FrameDecoder::new(DEFAULT_MAX_FRAME);
        d.extend(&be32(len));
        d.extend(&tail);
        prop_assert_eq!(d.next_frame(), Err(FrameError::NegativeLength(len)));
    }
}
