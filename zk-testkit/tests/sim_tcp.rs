//! SimTcpServer over real loopback sockets: handshake, requests, a four-letter word, a crash
//! through `with_model`, expiry driven by the ticker, and a clean shutdown on drop.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use bytes::Bytes;
use zk_core::proto::*;
use zk_testkit::sim::{SimConfig, SimTcpServer};

fn dial(port: u16) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

fn read_frame(s: &mut TcpStream) -> std::io::Result<Bytes> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len)?;
    let mut buf = vec![0u8; i32::from_be_bytes(len) as usize];
    s.read_exact(&mut buf)?;
    Ok(Bytes::from(buf))
}

fn handshake(s: &mut TcpStream, timeout: i32) -> ConnectResponse {
    let mut out = Vec::new();
    let req = ConnectRequest {
        protocol_version: 0,
        last_zxid_seen: 0,
        timeout,
        session_id: 0,
        passwd: Bytes::from_static(&[0; 16]),
        read_only: Some(false),
    };
    encode_connect_request(&mut out, 1 << 20, &req).unwrap();
    s.write_all(&out).unwrap();
    decode_connect_response(read_frame(s).unwrap()).unwrap()
}

fn call(s: &mut TcpStream, xid: i32, req: &Request) -> (ReplyHeader, Result<Response, ErrorCode>) {
    let mut out = Vec::new();
    encode_request(&mut out, 1 << 20, xid, req).unwrap();
    s.write_all(&out).unwrap();
    loop {
        let (h, body) = decode_reply_header(read_frame(s).unwrap()).unwrap();
        if h.xid == xid::NOTIFICATION {
            continue;
        }
        return (h, decode_reply(&h, req.op_code(), body).unwrap());
    }
}

/// True once the peer has closed (EOF) within the read timeout.
fn sees_eof(s: &mut TcpStream) -> bool {
    let mut rest = Vec::new();
    s.read_to_end(&mut rest).is_ok()
}

#[test]
fn a_client_talks_to_the_model_over_tcp() {
    let server = SimTcpServer::start(SimConfig {
        servers: 2,
        ..SimConfig::default()
    })
    .unwrap();
    let ports = server.ports();
    assert_eq!(ports.len(), 2);
    assert_eq!(
        server.connect_string(),
        format!("127.0.0.1:{},127.0.0.1:{}", ports[0], ports[1])
    );

    let mut s = dial(ports[0]);
    let resp = handshake(&mut s, 30_000);
    assert_eq!(resp.timeout, 10_000);
    let create = Request::Create(CreateRequest {
        path: "/tcp".into(),
        data: Some(Bytes::from_static(b"hi")),
        acl: Acl::open_unsafe().into(),
        flags: 1,
    });
    let (h, body) = call(&mut s, 1, &create);
    assert_eq!(h.zxid, 2);
    assert_eq!(
        body,
        Ok(Response::Create {
            path: "/tcp".into()
        })
    );
    let (_, body) = call(
        &mut s,
        2,
        &Request::GetData(PathWatchRequest {
            path: "/tcp".into(),
            watch: false,
        }),
    );
    assert!(matches!(body, Ok(Response::Data { data: Some(d), .. }) if &d[..] == b"hi"));
    assert_eq!(
        server.with_model(|m| m.node("/tcp").map(|n| n.stat.ephemeral_owner)),
        Some(resp.session_id)
    );

    // A four-letter word on a fresh connection to the other server.
    let mut w = dial(ports[1]);
    w.write_all(b"srvr").unwrap();
    let mut text = String::new();
    w.read_to_string(&mut text).unwrap();
    assert!(text.starts_with("Zookeeper version: 3.8.0-sim"), "{text}");
    assert!(text.contains("Mode: follower"));

    // Crashing server 0 closes the client's socket; the session survives.
    server.with_model(|m| m.crash(Instant::now(), 0));
    assert!(sees_eof(&mut s));
    assert!(server.with_model(|m| m.session_ids().contains(&resp.session_id)));
}

#[test]
fn the_ticker_expires_idle_sessions() {
    let server = SimTcpServer::start(SimConfig {
        tick_ms: 10,
        ..SimConfig::default()
    })
    .unwrap();
    let mut s = dial(server.ports()[0]);
    let resp = handshake(&mut s, 20);
    assert_eq!(resp.timeout, 20);
    // Nobody pings: the ticker expires the session and the socket closes without a frame.
    let started = Instant::now();
    assert!(sees_eof(&mut s));
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(server.with_model(|m| m.session_ids().is_empty()));
}

#[test]
fn drop_stops_every_thread_even_with_open_connections() {
    let server = SimTcpServer::start(SimConfig::default()).unwrap();
    let port = server.ports()[0];
    let mut s = dial(port);
    handshake(&mut s, 30_000);
    let _idle = dial(port);
    let started = Instant::now();
    drop(server);
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(sees_eof(&mut s));
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
}
