//! A client's decoders fed an arbitrary server frame payload (length prefix already removed).
//!
//! Input layout: byte 0 picks the opcode of the request being answered, as an index into
//! `OpCode::ALL` (modulo its length); the rest is the frame payload.
//!
//! The payload goes through `decode_reply_header`, then `decode_notification` when the xid is -1
//! and `decode_reply` for that opcode otherwise; it is also tried as a ConnectResponse. Nothing may
//! panic, and whatever decodes must survive a round trip: decode(encode(x)) == x.

#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use zk_core::proto::{
    decode_connect_response, decode_notification, decode_reply, decode_reply_header,
    encode_connect_response, encode_notification, encode_reply, xid, ErrorCode, OpCode,
};

/// Large enough for any input libFuzzer hands over: encoding a decoded value must not fail.
const MAX: usize = i32::MAX as usize;

/// Strips and checks the length prefix an encoder wrote.
fn payload(frame: Vec<u8>) -> Bytes {
    let (len, body) = frame.split_at(4);
    assert_eq!(
        i32::from_be_bytes(len.try_into().unwrap()) as usize,
        body.len(),
        "length prefix"
    );
    Bytes::copy_from_slice(body)
}

fuzz_target!(|data: &[u8]| {
    let Some((&op, rest)) = data.split_first() else {
        return;
    };
    let op = OpCode::ALL[usize::from(op) % OpCode::ALL.len()];
    let frame = Bytes::copy_from_slice(rest);

    // The first frame of every connection.
    if let Ok(resp) = decode_connect_response(frame.clone()) {
        let mut out = Vec::new();
        encode_connect_response(&mut out, MAX, &resp).expect("encode ConnectResponse");
        let again = decode_connect_response(payload(out)).expect("re-decode ConnectResponse");
        assert_eq!(again, resp);
    }

    // Every later frame.
    let Ok((header, body)) = decode_reply_header(frame) else {
        return;
    };
    let mut out = Vec::new();
    if header.xid == xid::NOTIFICATION {
        let Ok(event) = decode_notification(body) else {
            return;
        };
        encode_notification(&mut out, MAX, header.zxid, &event).expect("encode notification");
        let (h2, body2) = decode_reply_header(payload(out)).expect("re-decode header");
        assert_eq!(
            (h2.xid, h2.zxid, h2.err),
            (header.xid, header.zxid, ErrorCode::Ok)
        );
        assert_eq!(decode_notification(body2).expect("re-decode event"), event);
        return;
    }
    let Ok(reply) = decode_reply(&header, op, body) else {
        return;
    };
    encode_reply(&mut out, MAX, &header, reply.as_ref().ok()).expect("encode reply");
    let (h2, body2) = decode_reply_header(payload(out)).expect("re-decode header");
    assert_eq!(h2, header);
    let again = decode_reply(&h2, op, body2).expect("re-decode reply");
    assert_eq!(again, reply, "{op:?}");
});
