//! A server's decoders (the model server's, later) fed an arbitrary client frame payload (length
//! prefix already removed).
//!
//! The whole input is tried as a ConnectRequest (`decode_connect_request`) and as a request frame
//! (`decode_request`). Nothing may panic, and whatever decodes must survive a round trip through
//! `encode_connect_request` / `encode_request`: decode(encode(x)) == x.

#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use zk_core::proto::{
    decode_connect_request, decode_request, encode_connect_request, encode_request,
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
    let frame = Bytes::copy_from_slice(data);

    if let Ok(req) = decode_connect_request(frame.clone()) {
        let mut out = Vec::new();
        encode_connect_request(&mut out, MAX, &req).expect("encode ConnectRequest");
        let again = decode_connect_request(payload(out)).expect("re-decode ConnectRequest");
        assert_eq!(again, req);
    }

    if let Ok((header, Ok(req))) = decode_request(frame) {
        let mut out = Vec::new();
        encode_request(&mut out, MAX, header.xid, &req).expect("encode request");
        let (h2, again) = decode_request(payload(out)).expect("re-decode header");
        assert_eq!(h2, header);
        assert_eq!(again.expect("re-decode body"), req);
    }
});
