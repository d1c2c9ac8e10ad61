//! Round-trip properties: for every record, request and reply of `zk_core::proto`, encoding and
//! then decoding gives back the value that was encoded. Records are exercised on their own, as
//! bodies (`Request::decode`, `Response::decode`) and as whole frames through `FrameDecoder`.

mod common;

use std::collections::BTreeSet;

use bytes::Bytes;
use common::*;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::TestRunner;
use zk_core::proto::*;

/// Encodes `v` with `encode`, decodes it with `decode` and checks that the decoder used every
/// byte.
fn record_roundtrip<T: std::fmt::Debug + PartialEq>(
    v: &T,
    encode: impl Fn(&T, &mut Vec<u8>),
    decode: impl Fn(&mut Reader) -> Result<T, DecodeError>,
) -> Result<(), TestCaseError> {
    let mut buf = Vec::new();
    encode(v, &mut buf);
    let mut r = reader(&buf);
    let back = decode(&mut r).expect("a freshly encoded record decodes");
    prop_assert_eq!(&back, v);
    prop_assert_eq!(r.remaining(), 0, "decoder left bytes of its own record");
    Ok(())
}

// ---- coverage of the strategies ----------------------------------------------------------------

#[test]
fn request_strategies_cover_exactly_the_opcodes_request_decode_accepts() {
    for op in OpCode::ALL {
        let accepted = !matches!(
            Request::decode(*op, Reader::new(Bytes::new())),
            Err(DecodeError::NotARequest(_))
        );
        assert_eq!(
            accepted,
            request_for(*op).is_some(),
            "request strategy coverage disagrees with Request::decode for {op:?}"
        );
    }
    assert_eq!(request_ops().len(), 29, "29 opcodes a client sends");
}

#[test]
fn response_strategies_cover_exactly_the_opcodes_response_decode_accepts() {
    for op in OpCode::ALL {
        let accepted = !matches!(
            Response::decode(*op, Reader::new(Bytes::new())),
            Err(DecodeError::NotARequest(_))
        );
        assert_eq!(
            accepted,
            response_for(*op).is_some(),
            "response strategy coverage disagrees with Response::decode for {op:?}"
        );
    }
    assert_eq!(response_ops(), request_ops(), "every request is answered");
}

/// Draws `n` values from `strategy` with a deterministic runner.
fn sample<T: std::fmt::Debug>(strategy: BoxedStrategy<T>, n: usize) -> Vec<T> {
    let mut runner = TestRunner::deterministic();
    (0..n)
        .map(|_| strategy.new_tree(&mut runner).expect("value").current())
        .collect()
}

#[test]
fn multi_op_strategy_produces_every_variant() {
    let seen: BTreeSet<usize> = sample(multi_op(), 500)
        .iter()
        .map(multi_op_variant)
        .collect();
    assert_eq!(seen.len(), MULTI_OP_VARIANTS);
}

#[test]
fn multi_result_strategy_produces_every_variant_and_error_kind() {
    let results = sample(multi_result(), 800);
    let seen: BTreeSet<usize> = results.iter().map(multi_result_variant).collect();
    assert_eq!(seen.len(), MULTI_RESULT_VARIANTS);
    let errors: Vec<ErrorCode> = results
        .iter()
        .filter_map(|r| match r {
            MultiResult::Error(code) => Some(*code),
            _ => None,
        })
        .collect();
    assert!(errors.contains(&ErrorCode::Ok));
    assert!(errors.contains(&ErrorCode::RuntimeInconsistency));
    assert!(errors
        .iter()
        .any(|c| !c.is_ok() && *c != ErrorCode::RuntimeInconsistency));
}

#[test]
fn error_code_strategy_produces_unknown_codes() {
    let codes = sample(error_code(), 300);
    assert!(codes.iter().any(|c| matches!(c, ErrorCode::Unknown(_))));
    assert!(codes.contains(&ErrorCode::Ok));
}

// ---- handshake ---------------------------------------------------------------------------------

proptest! {
    #[test]
    fn connect_request_roundtrips(req in connect_request()) {
        let mut buf = Vec::new();
        req.encode(&mut buf);
        let expected_len = 4 + 8 + 4 + 8 + 4 + req.passwd.len() + usize::from(req.read_only.is_some());
        prop_assert_eq!(buf.len(), expected_len);
        prop_assert_eq!(ConnectRequest::decode(reader(&buf)).unwrap(), req.clone());
        prop_assert_eq!(decode_connect_request(Bytes::from(buf)).unwrap(), req);
    }

    #[test]
    fn connect_response_roundtrips(resp in connect_response()) {
        let mut buf = Vec::new();
        resp.encode(&mut buf);
        let expected_len = 4 + 4 + 8 + 4 + resp.passwd.len() + usize::from(resp.read_only.is_some());
        prop_assert_eq!(buf.len(), expected_len);
        prop_assert_eq!(ConnectResponse::decode(reader(&buf)).unwrap(), resp.clone());
        prop_assert_eq!(decode_connect_response(Bytes::from(buf)).unwrap(), resp);
    }

    #[test]
    fn connect_request_frame_roundtrips(req in connect_request()) {
        let mut stream = Vec::new();
        encode_connect_request(&mut stream, DEFAULT_MAX_FRAME, &req).unwrap();
        prop_assert_eq!(decode_connect_request(only_frame(&stream)).unwrap(), req);
    }

    #[test]
    fn connect_response_frame_roundtrips(resp in connect_response()) {
        let mut stream = Vec::new();
        encode_connect_response(&mut stream, DEFAULT_MAX_FRAME, &resp).unwrap();
        prop_assert_eq!(decode_connect_response(only_frame(&stream)).unwrap(), resp);
    }
}

// ---- headers, shared records, notifications ----------------------------------------------------

proptest! {
    #[test]
    fn request_header_roundtrips(h in request_header()) {
        record_roundtrip(&h, |v, b| v.encode(b), RequestHeader::decode)?;
        let mut buf = Vec::new();
        h.encode(&mut buf);
        prop_assert_eq!(buf.len(), RequestHeader::WIRE_LEN);
    }

    #[test]
    fn reply_header_roundtrips_with_any_error_code(h in reply_header()) {
        record_roundtrip(&h, |v, b| v.encode(b), ReplyHeader::decode)?;
        let mut buf = Vec::new();
        h.encode(&mut buf);
        prop_assert_eq!(buf.len(), ReplyHeader::WIRE_LEN);
        let (back, rest) = decode_reply_header(Bytes::from(buf)).unwrap();
        prop_assert_eq!(back, h);
        prop_assert_eq!(rest.remaining(), 0);
    }

    #[test]
    fn unassigned_error_codes_roundtrip_as_unknown(code in proptest::sample::select(UNASSIGNED_ERROR_CODES)) {
        let h = ReplyHeader { xid: 1, zxid: 2, err: ErrorCode::Unknown(code) };
        record_roundtrip(&h, |v, b| v.encode(b), ReplyHeader::decode)?;
        prop_assert_eq!(ErrorCode::from_code(code), ErrorCode::Unknown(code));
    }

    #[test]
    fn multi_header_roundtrips(h in multi_header()) {
        record_roundtrip(&h, |v, b| v.encode(b), MultiHeader::decode)?;
    }

    #[test]
    fn watcher_event_roundtrips_with_any_type_and_state(ev in watcher_event()) {
        record_roundtrip(&ev, |v, b| v.encode(b), WatcherEvent::decode)?;
    }

    #[test]
    fn stat_roundtrips_in_68_bytes(stat in stat()) {
        record_roundtrip(&stat, |v, b| v.encode(b), Stat::decode)?;
        let mut buf = Vec::new();
        stat.encode(&mut buf);
        prop_assert_eq!(buf.len(), Stat::WIRE_LEN);
    }

    #[test]
    fn notification_frame_roundtrips(zxid in any::<i64>(), ev in watcher_event()) {
        let mut stream = Vec::new();
        encode_notification(&mut stream, DEFAULT_MAX_FRAME, zxid, &ev).unwrap();
        let (header, body) = decode_reply_header(only_frame(&stream)).unwrap();
        prop_assert_eq!(header, ReplyHeader { xid: xid::NOTIFICATION, zxid, err: ErrorCode::Ok });
        prop_assert_eq!(decode_notification(body).unwrap(), ev);
    }
}

// ---- request records -----------------------------------------------------------------------------

proptest! {
    #[test]
    fn create_request_roundtrips(v in create_request()) {
        record_roundtrip(&v, |v, b| v.encode(b), CreateRequest::decode)?;
    }

    #[test]
    fn create_ttl_request_roundtrips(v in create_ttl_request()) {
        record_roundtrip(&v, |v, b| v.encode(b), CreateTtlRequest::decode)?;
    }

    #[test]
    fn path_version_request_roundtrips(v in path_version_request()) {
        record_roundtrip(&v, |v, b| v.encode(b), PathVersionRequest::decode)?;
    }

    #[test]
    fn path_watch_request_roundtrips(v in path_watch_request()) {
        record_roundtrip(&v, |v, b| v.encode(b), PathWatchRequest::decode)?;
    }

    #[test]
    fn path_request_roundtrips(v in path_request()) {
        record_roundtrip(&v, |v, b| v.encode(b), PathRequest::decode)?;
    }

    #[test]
    fn set_data_request_roundtrips_keeping_null_and_empty_data_apart(v in set_data_request()) {
        record_roundtrip(&v, |v, b| v.encode(b), SetDataRequest::decode)?;
    }

    #[test]
    fn set_acl_request_roundtrips_any_acl_list(v in set_acl_request()) {
        record_roundtrip(&v, |v, b| v.encode(b), SetAclRequest::decode)?;
    }

    #[test]
    fn reconfig_request_roundtrips_null_strings(v in reconfig_request()) {
        record_roundtrip(&v, |v, b| v.encode(b), ReconfigRequest::decode)?;
    }

    #[test]
    fn watches_request_roundtrips(v in watches_request()) {
        record_roundtrip(&v, |v, b| v.encode(b), WatchesRequest::decode)?;
    }

    #[test]
    fn add_watch_request_roundtrips(v in add_watch_request()) {
        record_roundtrip(&v, |v, b| v.encode(b), AddWatchRequest::decode)?;
    }

    #[test]
    fn auth_packet_roundtrips(v in auth_packet()) {
        record_roundtrip(&v, |v, b| v.encode(b), AuthPacket::decode)?;
    }

    #[test]
    fn sasl_token_roundtrips(v in sasl_token()) {
        record_roundtrip(&v, |v, b| v.encode(b), SaslToken::decode)?;
    }

    #[test]
    fn set_watches_roundtrips(v in set_watches()) {
        record_roundtrip(&v, |v, b| v.encode(b), SetWatches::decode)?;
    }

    #[test]
    fn set_watches2_roundtrips(v in set_watches2()) {
        record_roundtrip(&v, |v, b| v.encode(b), SetWatches2::decode)?;
    }

    /// ACL lists have no public record of their own; they travel in setACL requests and getACL
    /// replies, and both must carry any list (empty, non-ASCII ids, any perms bits) unchanged.
    #[test]
    fn acl_lists_roundtrip_in_set_acl_and_get_acl(acl in acl_list(), stat in stat(), path in string()) {
        let req = Request::SetAcl(SetAclRequest { path, acl: acl.clone(), version: -1 });
        let body = request_body(&req);
        prop_assert_eq!(Request::decode(OpCode::SetAcl, reader(&body)).unwrap(), req);
        let resp = Response::Acl { acl, stat };
        let body = response_body(&resp);
        prop_assert_eq!(Response::decode(OpCode::GetAcl, reader(&body)).unwrap(), resp);
    }
}

// ---- multi ---------------------------------------------------------------------------------------

proptest! {
    #[test]
    fn multi_op_lists_roundtrip(ops in multi_ops()) {
        record_roundtrip(&ops, |v, b| MultiOp::encode_all(v, b), MultiOp::decode_all)?;
    }

    #[test]
    fn multi_result_lists_roundtrip(results in multi_results()) {
        record_roundtrip(&results, |v, b| MultiResult::encode_all(v, b), MultiResult::decode_all)?;
    }

    #[test]
    fn multi_encodings_end_with_the_terminator(ops in multi_ops(), results in multi_results()) {
        let terminator = [0xff, 0xff, 0xff, 0xff, 1, 0xff, 0xff, 0xff, 0xff];
        let mut buf = Vec::new();
        MultiOp::encode_all(&ops, &mut buf);
        prop_assert!(buf.ends_with(&terminator));
        buf.clear();
        MultiResult::encode_all(&results, &mut buf);
        prop_assert!(buf.ends_with(&terminator));
    }
}

// ---- whole requests --------------------------------------------------------------------------------

proptest! {
    /// Every one of the 29 request variants, as a frame: encode_request, FrameDecoder,
    /// decode_request.
    #[test]
    fn every_request_roundtrips(x in xid(), (op, req) in op_and_request()) {
        prop_assert_eq!(req.op_code(), op);
        let mut stream = Vec::new();
        encode_request(&mut stream, DEFAULT_MAX_FRAME, x, &req).unwrap();
        let (header, body) = decode_request(only_frame(&stream)).unwrap();
        prop_assert_eq!(header, RequestHeader { xid: x, op: op.code() });
        prop_assert_eq!(body.unwrap(), req);
    }

    /// The same at body level: encode_body, then Request::decode with the opcode.
    #[test]
    fn every_request_body_roundtrips((op, req) in op_and_request()) {
        let body = request_body(&req);
        prop_assert_eq!(Request::decode(op, reader(&body)).unwrap(), req);
    }
}

// ---- whole replies ---------------------------------------------------------------------------------

proptest! {
    /// Every Response shape with every opcode whose reply has that shape, as a frame:
    /// encode_reply, FrameDecoder, decode_reply_header, decode_reply.
    #[test]
    fn every_response_roundtrips_for_each_op_that_uses_it(
        x in xid(),
        zxid in any::<i64>(),
        (op, resp) in op_and_response(),
    ) {
        let header = ReplyHeader { xid: x, zxid, err: ErrorCode::Ok };
        let mut stream = Vec::new();
        encode_reply(&mut stream, DEFAULT_MAX_FRAME, &header, Some(&resp)).unwrap();
        let (back, body) = decode_reply_header(only_frame(&stream)).unwrap();
        prop_assert_eq!(back, header);
        prop_assert_eq!(decode_reply(&back, op, body).unwrap(), Ok(resp));
    }

    /// The same at body level: Response::encode, then Response::decode with the opcode.
    #[test]
    fn every_response_body_roundtrips((op, resp) in op_and_response()) {
        let body = response_body(&resp);
        prop_assert_eq!(Response::decode(op, reader(&body)).unwrap(), resp);
    }

    /// A header with err != 0 means "no body": decode_reply hands back the code without reading
    /// anything, whatever stray bytes follow and whatever the opcode.
    #[test]
    fn error_reply_decodes_to_its_code_regardless_of_trailing_bytes(
        x in xid(),
        zxid in any::<i64>(),
        err in failure_code(),
        op in proptest::sample::select(OpCode::ALL),
        stray in prop_oneof![Just(Vec::new()), vec(any::<u8>(), 0..64)],
    ) {
        let header = ReplyHeader { xid: x, zxid, err };
        let mut stream = Vec::new();
        encode_reply(&mut stream, DEFAULT_MAX_FRAME, &header, None).unwrap();
        stream.extend_from_slice(&stray);
        // Fix up the length prefix to cover the stray bytes.
        let len = (stream.len() - 4) as i32;
        stream[..4].copy_from_slice(&len.to_be_bytes());
        let (back, body) = decode_reply_header(only_frame(&stream)).unwrap();
        prop_assert_eq!(back, header);
        prop_assert_eq!(body.remaining(), stray.len());
        prop_assert_eq!(decode_reply(&back, op, body), Ok(Err(err)));
    }
}

// ---- framing ---------------------------------------------------------------------------------------

proptest! {
    /// A sequence of frames written by encode_frame comes out of FrameDecoder whole and in order,
    /// however the stream is split into reads; a frame exactly at the limit is accepted.
    #[test]
    fn frames_roundtrip_through_arbitrary_splits(
        payloads in vec(prop_oneof![Just(Vec::new()), vec(any::<u8>(), 0..48)], 0..6),
        cuts in vec(any::<Index>(), 0..12),
    ) {
        let max = payloads.iter().map(Vec::len).max().unwrap_or(0);
        let mut stream = Vec::new();
        for p in &payloads {
            encode_frame(&mut stream, max, |b| b.extend_from_slice(p)).unwrap();
        }
        prop_assert_eq!(stream.len(), payloads.iter().map(|p| 4 + p.len()).sum::<usize>());

        let mut points: Vec<usize> = cuts.iter().map(|c| c.index(stream.len() + 1)).collect();
        points.push(0);
        points.push(stream.len());
        points.sort_unstable();
        points.dedup();

        let mut decoder = FrameDecoder::new(max);
        let mut got = Vec::new();
        for w in points.windows(2) {
            decoder.extend(&stream[w[0]..w[1]]);
            while let Some(frame) = decoder.next_frame().unwrap() {
                got.push(frame.to_vec());
            }
        }
        prop_assert_eq!(got, payloads);
        prop_assert_eq!(decoder.buffered(), 0);
        prop_assert_eq!(decoder.next_frame().unwrap(), None);
    }

    /// Requests pipelined back to back in one stream, split anywhere, decode in order.
    #[test]
    fn pipelined_requests_roundtrip_through_arbitrary_splits(
        reqs in vec((xid(), op_and_request()), 1..5),
        cuts in vec(any::<Index>(), 0..8),
    ) {
        let mut stream = Vec::new();
        for (x, (_, req)) in &reqs {
            encode_request(&mut stream, DEFAULT_MAX_FRAME, *x, req).unwrap();
        }
        let mut points: Vec<usize> = cuts.iter().map(|c| c.index(stream.len() + 1)).collect();
        points.extend([0, stream.len()]);
        points.sort_unstable();
        points.dedup();

        let mut decoder = FrameDecoder::new(DEFAULT_MAX_FRAME);
        let mut got = Vec::new();
        for w in points.windows(2) {
            decoder.extend(&stream[w[0]..w[1]]);
            while let Some(frame) = decoder.next_frame().unwrap() {
                let (header, body) = decode_request(frame).unwrap();
                got.push((header.xid, body.unwrap()));
            }
        }
        let expected: Vec<(i32, Request)> = reqs.into_iter().map(|(x, (_, r))| (x, r)).collect();
        prop_assert_eq!(got, expected);
    }
}
