//! SimServer driven with bytes from zk-core's codec: every op and error path of PROTOCOL.md that
//! the model covers, watches, sessions, replicas, faults, four-letter words and hostile input.

mod common;

use bytes::Bytes;
use common::*;
use proptest::prelude::*;
use zk_core::proto::*;
use zk_testkit::sim::{NodeKind, SimConfig, SimServer};

fn ok_path(r: &Reply) -> String {
    match r.ok() {
        Response::Create { path } | Response::Create2 { path, .. } => path.clone(),
        other => panic!("{other:?}"),
    }
}

// ---- handshake (§4) ------------------------------------------------------------------------------

#[test]
fn new_session_negotiates_timeout_into_two_to_twenty_ticks() {
    let mut net = Net::standalone();
    let c = Client::connect_with(&mut net, 0, &connect_request(0, &[0; 16], 100));
    assert_eq!(c.timeout, 1000);
    let c2 = Client::connect(&mut net, 0);
    assert_eq!(c2.timeout, 10_000);
    assert_ne!(c.session, c2.session);
    assert_eq!(c.passwd.len(), 16);
    assert_eq!(c.read_only, Some(false));
    // Session creation is a transaction (§4.5): two zxids used.
    assert_eq!(net.sim.last_zxid(), 2);
    assert_eq!(net.sim.session_ids().len(), 2);
}

#[test]
fn readonly_byte_is_echoed_only_when_sent() {
    let mut net = Net::standalone();
    let mut req = connect_request(0, &[0; 16], 30_000);
    req.read_only = None;
    let conn = net.accept(0);
    let mut out = Vec::new();
    encode_connect_request(&mut out, 1 << 20, &req).unwrap();
    assert_eq!(out.len(), 4 + 44);
    net.send_raw(conn, &out);
    let frames = net.take_frames(conn);
    assert_eq!(
        frames[0].len(),
        36,
        "no readOnly byte in the response [V13]"
    );
    let mut req = connect_request(0, &[0; 16], 30_000);
    req.read_only = Some(true);
    let c = Client::connect_with(&mut net, 0, &req);
    assert_eq!(
        c.read_only,
        Some(false),
        "a normal server answers readOnly=0"
    );
}

#[test]
fn passwords_are_the_same_on_every_server_and_resume_moves_the_session() {
    let mut net = Net::ensemble(3);
    let mut a = Client::connect(&mut net, 0);
    a.create(&mut net, "/e", "x", 1);
    let (conn, outcome) = a.reconnect(&mut net, 2);
    match outcome {
        Handshake::Connected(r) => {
            assert_eq!(r.session_id, a.session);
            assert_eq!(r.passwd, a.passwd);
        }
        other => panic!("{other:?}"),
    }
    // The old connection is closed, the session and its ephemeral live on.
    assert!(net.closed(a.conn));
    assert!(!net.closed(conn));
    assert!(net.sim.node("/e").is_some());
}

#[test]
fn wrong_password_gets_the_zero_response_and_a_close() {
    let mut net = Net::standalone();
    let a = Client::connect(&mut net, 0);
    let (_, outcome) = handshake(&mut net, 0, &connect_request(a.session, &[1; 16], 30_000));
    match outcome {
        Handshake::Refused(r) => {
            assert_eq!((r.timeout, r.session_id), (0, 0));
            assert_eq!(&r.passwd[..], &[0; 16]);
            assert_eq!(r.read_only, Some(false));
        }
        other => panic!("{other:?}"),
    }
    // Java closes this server's other connection holding the session even before the check.
    assert!(net.closed(a.conn));
    assert!(net.sim.session_ids().contains(&a.session));
}

#[test]
fn closed_and_expired_sessions_cannot_be_resumed() {
    let mut net = Net::standalone();
    let mut a = Client::connect(&mut net, 0);
    let r = a.call(&mut net, Request::CloseSession);
    assert_eq!(r.err, ErrorCode::Ok);
    assert!(net.closed(a.conn));
    assert!(matches!(a.reconnect(&mut net, 0).1, Handshake::Refused(_)));

    let b = Client::connect_with(&mut net, 0, &connect_request(0, &[0; 16], 1000));
    net.advance(1000);
    assert!(net.closed(b.conn));
    assert!(matches!(b.reconnect(&mut net, 0).1, Handshake::Refused(_)));
}

#[test]
fn a_client_ahead_of_the_server_is_closed_without_response() {
    let mut net = Net::standalone();
    let mut req = connect_request(0, &[0; 16], 30_000);
    req.last_zxid_seen = 0x7fff_ffff;
    assert!(matches!(handshake(&mut net, 0, &req).1, Handshake::Closed));
    assert_eq!(net.sim.last_zxid(), 0);
}

#[test]
fn connect_request_with_trailing_bytes_is_accepted_and_garbage_closes() {
    let mut net = Net::standalone();
    let conn = net.accept(0);
    let mut body = Vec::new();
    connect_request(0, &[0; 16], 4000).encode(&mut body);
    body.extend_from_slice(&[9, 9]);
    let mut frame = (body.len() as i32).to_be_bytes().to_vec();
    frame.extend_from_slice(&body);
    net.send_raw(conn, &frame);
    assert_eq!(net.take_frames(conn).len(), 1);
    let bad = net.accept(0);
    net.send_raw(bad, &[0, 0, 0, 3, 1, 2, 3]);
    assert!(net.closed(bad));
}

// ---- creates, reads, stats (§6, §7, §8) -------------------------------------------------------------

#[test]
fn create_and_read_back_with_full_stat_bookkeeping() {
    let mut net = Net::standalone();
    let mut a = Client::connect(&mut net, 0);
    let r = a.create(&mut net, "/proto", "hi", 0);
    assert_eq!((ok_path(&r), r.zxid), ("/proto".to_string(), 2));
    net.advance(250);
    let r = a.get_data(&mut net, "/proto", false);
    assert_eq!(r.zxid, 2);
    let Response::Data { data, stat } = r.ok() else {
        panic!()
    };
    assert_eq!(data.as_deref(), Some(&b"hi"[..]));
    let epoch = SimConfig::default().epoch_ms;
    assert_eq!(
        *stat,
        Stat {
            czxid: 2,
            mzxid: 2,
            ctime: epoch,
            mtime: epoch,
            version: 0,
            cversion: 0,
            aversion: 0,
            ephemeral_owner: 0,
            data_length: 2,
            num_children: 0,
            pzxid: 2,
        }
    );
    let r = a.set_data(&mut net, "/proto", "hello", 0);
    let s = r.stat();
    assert_eq!(
        (s.mzxid, s.version, s.mtime, s.ctime),
        (3, 1, epoch + 250, epoch)
    );
    assert_eq!(
        a.exists(&mut net, "/proto/missing", false).err,
        ErrorCode::NoNode
    );
    // Null data is stored as null and read back with length -1 (§1).
    let r = a.call(
        &mut net,
        Request::Create2(CreateRequest {
            path: "/proto/p".into(),
            data: None,
            acl: open_acl().into(),
            flags: 0,
        }),
    );
    assert_eq!(r.stat().data_length, 0);
    let r = a.get_data(&mut net, "/proto/p", false);
    assert!(matches!(r.ok(), Response::Data { data: None, .. }));
    let view = net.sim.node("/proto").unwrap();
    assert_eq!(view.stat.num_children, 1);
    assert_eq!(view.kind, NodeKind::Persistent);
    assert_eq!(net.sim.children("/").unwrap(), vec!["proto", "zookeeper"]);
}

#[test]
fn sequential_suffix_counts_creates_while_cversion_counts_deletes_too() {
    let mut net = Net::standalone();
    let mut a = Client::connect(&mut net, 0);
    a.create(&mut net, "/q", "", 0);
    assert_eq!(a.created_path(&mut net, "/q/n-", 2), "/q/n-0000000000");
    assert_eq!(a.created_path(&mut net, "/q/n-", 2), "/q/n-0000000001");
    a.delete(&mut net, "/q/n-0000000000", -1);
    assert_eq!(net.sim.node("/q").unwrap().stat.cversion, 3);
    // The suffix is the stored child version (creates only), not the visible cversion (§8.3).
    assert_eq!(a.created_path(&mut net, "/q/n-", 2), "/q/n-0000000002");
    // Only the final path is validated: a prefix ending in '/' is fine.
    assert_eq!(a.created_path(&mut net, "/q/", 2), "/q/0000000003");
    let e = a.created_path(&mut net, "/q/e-", 3);
    assert_eq!(e, "/q/e-0000000004");
    let view = net.sim.node(&e).unwrap();
    assert_eq!(view.stat.ephemeral_owner, a.session);
    assert_eq!(
        view.kind,
        NodeKind::Ephemeral {
            session_id: a.session
        }
    );
}

#[test]
fn create_errors_each_use_a_zxid() {
    let mut net = Net::standalone();
    let mut a = Client::connect(&mut net, 0);
    a.create(&mut net, "/p", "", 0);
    a.create(&mut net, "/p/eph", "", 1);
    let mut z = net.sim.last_zxid();
    let mut expect = |a: &mut Client, net: &mut Net, req: Request, err: ErrorCode| {
        let r = a.call(net, req);
        assert_eq!(r.err, err, "{r:?}");
        z += 1;
        assert_eq!(r.zxid, z, "failed writes use a zxid (§5.5)");
        assert!(r.body.is_none());
    };
    let c = |p: &str, flags: i32| Request::Create(create_req(p, "", flags));
    expect(&mut a, &mut net, c("/p", 0), ErrorCode::NodeExists);
    expect(&mut a, &mut net, c("/nope/x", 0), ErrorCode::NoNode);
    expect(
        &mut a,
        &mut net,
        c("/p/eph/x", 0),
        ErrorCode::NoChildrenForEphemerals,
    );
    expect(&mut a, &mut net, c("/p/", 0), ErrorCode::BadArguments);
    expect(&mut a, &mut net, c("p", 0), ErrorCode::BadArguments);
    expect(&mut a, &mut net, c("/p/a\u{1}", 0), ErrorCode::BadArguments);
    expect(&mut a, &mut net, c("/p/..", 0), ErrorCode::BadArguments);
    expect(&mut a, &mut net, c("/p/x", 7), ErrorCode::BadArguments);
    // Flags and opcodes must agree (§8.3, §8.4).
    expect(&mut a, &mut net, c("/p/x", 4), ErrorCode::BadArguments);
    expect(&mut a, &mut net, c("/p/x", 5), ErrorCode::BadArguments);
    expect(
        &mut a,
        &mut net,
        Request::CreateContainer(create_req("/p/x", "", 0)),
        ErrorCode::BadArguments,
    );
    let ttl = |flags: i32, ttl: i64| {
        Request::CreateTtl(CreateTtlRequest {
            path: "/p/t".into(),
            data: None,
            acl: open_acl().into(),
            flags,
            ttl,
        })
    };
    expect(&mut a, &mut net, ttl(5, 0), ErrorCode::BadArguments);
    expect(
        &mut a,
        &mut net,
        ttl(5, MAX_TTL_MS + 1),
        ErrorCode::BadArguments,
    );
    expect(&mut a, &mut net, ttl(0, 100), ErrorCode::BadArguments);
    let mut empty = create_req("/p/x", "", 0);
    empty.acl = Vec::new().into();
    expect(
        &mut a,
        &mut net,
        Request::Create(empty),
        ErrorCode::InvalidAcl,
    );
    let mut creator = create_req("/p/x", "", 0);
    creator.acl = Acl::creator_all().into();
    expect(
        &mut a,
        &mut net,
        Request::Create(creator),
        ErrorCode::InvalidAcl,
    );
    // Valid TTL and container creates answer with a Stat whose ephemeralOwner is 0 (§7.1).
    let r = a.call(&mut net, ttl(6, MAX_TTL_MS));
    assert_eq!(ok_path(&r), "/p/t0000000001");
    assert_eq!(r.stat().ephemeral_owner, 0);
    assert_eq!(
        net.sim.node("/p/t0000000001").unwrap().ephemeral_owner as u64,
        0xff00_00ff_ffff_ffff
    );
    let r = a.call(
        &mut net,
        Request::CreateContainer(create_req("/p/c", "", 4)),
    );
    assert_eq!(r.stat().ephemeral_owner, 0);
    assert_eq!(net.sim.node("/p/c").unwrap().kind, NodeKind::Container);
}

#[test]
fn ttl_without_extended_types_is_unimplemented_but_the_connection_stays() {
    let mut net = Net::new(SimConfig {
        extended_types: false,
        ..SimConfig::default()
    });
    let mut a = Client::connect(&mut net, 0);
    let r = a.call(
        &mut net,
        Request::CreateTtl(CreateTtlRequest {
            path: "/t".into(),
            data: None,
            acl: open_acl().into(),
            flags: 5,
            ttl: 1000,
        }),
    );
    assert_eq!((r.err, r.zxid), (ErrorCode::Unimplemented, 2));
    assert!(!net.closed(a.conn));
    assert_eq!(a.ping(&mut net).err, ErrorCode::Ok);
}

#[test]
fn delete_checks_version_then_children_and_refuses_special_paths() {
    let mut net = Net::standalone();
    let mut a = Client::connect(&mut net, 0);
    a.create(&mut net, "/d", "", 0);
    a.create(&mut net, "/d/k", "", 0);
    assert_eq!(a.delete(&mut net, "/d", 3).err, ErrorCode::BadVersion);
    assert_eq!(a.delete(&mut net, "/d", -1).err, ErrorCode::NotEmpty);
    assert_eq!(a.delete(&mut net, "/d/none", -1).err, ErrorCode::NoNode);
    assert_eq!(
        a.delete(&mut net, "/zookeeper", -1).err,
        ErrorCode::BadArguments
    );
    assert_eq!(a.delete(&mut net, "/", -1).err, ErrorCode::BadArguments);
    assert_eq!(a.delete(&mut net, "/d/k", 0).err, ErrorCode::Ok);
    assert_eq!(a.delete(&mut net, "/d", 0).err, ErrorCode::Ok);
    assert!(net.sim.node("/d").is_none());
}

#[test]
fn set_data_versions_and_errors() {
    let mut net = Net::standalone();
    let mut a = Client::connect(&mut net, 0);
    a.create(&mut net, "/s", "", 0);
    assert_eq!(a.set_data(&mut net, "/s", "1", 0).stat().version, 1);
    assert_eq!(
        a.set_data(&mut net, "/s", "2", 0).err,
        ErrorCode::BadVersion
    );
    assert_eq!(a.set_data(&mut net, "/s", "2", -1).stat().version, 2);
    assert_eq!(
        a.set_data(&mut net, "/none", "2", -1).err,
        ErrorCode::NoNode
    );
    assert_eq!(
        a.set_data(&mut net, "bad", "2", -1).err,
        ErrorCode::BadArguments
    );
    // /zookeeper/config is read-only for everybody.
    assert_eq!(
        a.set_data(&mut net, "/zookeeper/config", "x", -1).err,
        ErrorCode::NoAuth
    );
}

#[test]
fn reads_of_odd_paths_are_no_node_and_exists_refuses_nul() {
    let mut net = Net::standalone();
    let mut a = Client::connect(&mut net, 0);
    assert_eq!(a.get_data(&mut net, "nope/", false).err, ErrorCode::NoNode);
    assert_eq!(
        a.children(&mut net, "", false).ok(),
        &Response::Children {
            children: ["zookeeper"].into_iter().collect()
        }
    );
    assert_eq!(
        a.exists(&mut net, "/a\0", false).err,
        ErrorCode::BadArguments
    );
    let r = a.get_data(&mut net, "/", false);
    let Response::Data { data, stat } = r.ok() else {
        panic!()
    };
    assert_eq!(data.as_deref(), Some(&b""[..]));
    // A fresh root reports cversion -1: one child that was never "created" (DataNode.copyStat).
    assert_eq!((stat.cversion, stat.num_children), (-1, 1));
}

// ---- ACLs and auth (§8.1, §8.2, §13) --------------------------------------------------------

#[test]
fn digest_auth_acl_expansion_permission_checks_and_masking() {
    let mut net = Net::standalone();
    let mut a = Client::connect(&mut net, 0);
    let r = a.auth_digest(&mut net, "user:secret");
    assert_eq!((r.xid, r.zxid, r.err), (-4, 0, ErrorCode::Ok));
    let mut req = create_req("/secret", "s", 0);
    req.acl = Acl::creator_all().into();
    a.call(&mut net, Request::Create(req));
    let acl = net.sim.node("/secret").unwrap().acl;
    assert_eq!(acl.len(), 1);
    assert_eq!(acl[0].id.scheme, "digest");
    assert!(acl[0].id.id.starts_with("user:"));
    let r = a.call(&mut net, Request::WhoAmI);
    assert_eq!(
        r.ok(),
        &Response::WhoAmI {
            client_info: vec![
                ClientInfo {
                    auth_scheme: "ip".into(),
                    user: "127.0.0.1".into()
                },
                ClientInfo {
                    auth_scheme: "digest".into(),
                    user: "user".into()
                },
            ]
        }
    );

    let mut b = Client::connect(&mut net, 0);
    assert_eq!(
        b.get_data(&mut net, "/secret", false).err,
        ErrorCode::NoAuth
    );
    assert_eq!(
        b.set_data(&mut net, "/secret", "x", -1).err,
        ErrorCode::NoAuth
    );
    assert_eq!(
        b.call(
            &mut net,
            Request::GetAcl(PathRequest {
                path: "/secret".into()
            })
        )
        .err,
        ErrorCode::NoAuth
    );
    assert_eq!(b.exists(&mut net, "/secret", false).err, ErrorCode::Ok);

    // READ without ADMIN shows digest ids masked as user:x.
    let readable = vec![
        Acl::new(Perms::ALL, acl[0].id.clone()),
        Acl::new(Perms::READ, Id::anyone()),
    ];
    let r = a.call(
        &mut net,
        Request::SetAcl(SetAclRequest {
            path: "/secret".into(),
            acl: readable,
            version: 0,
        }),
    );
    assert_eq!(r.stat().aversion, 1);
    let r = b.call(
        &mut net,
        Request::GetAcl(PathRequest {
            path: "/secret".into(),
        }),
    );
    let Response::Acl { acl: seen, .. } = r.ok() else {
        panic!()
    };
    assert_eq!(seen[0].id.id, "user:x");
    let r = a.call(
        &mut net,
        Request::GetAcl(PathRequest {
            path: "/secret".into(),
        }),
    );
    let Response::Acl { acl: full, .. } = r.ok() else {
        panic!()
    };
    assert_eq!(full[0].id, acl[0].id);
    // setACL checks aversion.
    let r = a.call(
        &mut net,
        Request::SetAcl(SetAclRequest {
            path: "/secret".into(),
            acl: open_acl(),
            version: 0,
        }),
    );
    assert_eq!(r.err, ErrorCode::BadVersion);
}

#[test]
fn unknown_auth_scheme_fails_and_closes() {
    let mut net = Net::standalone();
    let mut a = Client::connect(&mut net, 0);
    let r = a.call(
        &mut net,
        Request::Auth(AuthPacket {
            auth_type: 0,
            scheme: "nosuch".into(),
            auth: Bytes::from_static(b"x"),
        }),
    );
    assert_eq!((r.xid, r.zxid, r.err), (-4, 0, ErrorCode::AuthFailed));
    assert!(net.closed(a.conn));
    // The session itself lives on [V14].
    assert!(net.sim.session_ids().contains(&a.session));
}

// ---- misc ops ---------------------------------------------------------------------------------------

#[test]
fn ping_sync_whoami_ephemerals_and_children_count() {
    let mut net = Net::standalone();
    let mut a = Client::connect(&mut net, 0);
    a.create(&mut net, "/x", "", 0);
    a.create(&mut net, "/x/e1", "", 1);
    a.create(&mut net, "/x/y", "", 0);
    a.create(&mut net, "/x/y/e2", "", 1);
    let mut b = Client::connect(&mut net, 0);
    b.create(&mut net, "/x/other", "", 1);
    let r = a.ping(&mut net);
    assert_eq!(
        (r.xid, r.zxid, r.err),
        (-2, net.sim.last_zxid(), ErrorCode::Ok)
    );
    let r = a.call(&mut net, Request::Sync(PathRequest { path: "/x".into() }));
    assert_eq!(r.ok(), &Response::Sync { path: "/x".into() });
    let eph = |a: &mut Client, net: &mut Net, p: &str| match a
        .call(net, Request::GetEphemerals(PathRequest { path: p.into() }))
        .ok()
    {
        Response::Ephemerals { paths } => paths.clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(eph(&mut a, &mut net, "/"), vec!["/x/e1", "/x/y/e2"]);
    assert_eq!(eph(&mut a, &mut net, ""), vec!["/x/e1", "/x/y/e2"]);
    // A plain string prefix, not a path prefix.
    assert_eq!(eph(&mut a, &mut net, "/x/e"), vec!["/x/e1"]);
    assert_eq!(eph(&mut a, &mut net, "/x/y/"), vec!["/x/y/e2"]);
    let count = |a: &mut Client, net: &mut Net, p: &str| {
        a.call(
            net,
            Request::GetAllChildrenNumber(PathRequest { path: p.into() }),
        )
    };
    assert_eq!(
        count(&mut a, &mut net, "/x").ok(),
        &Response::AllChildrenNumber { total: 4 }
    );
    assert_eq!(
        count(&mut a, &mut net, "/").ok(),
        &Response::AllChildrenNumber { total: 8 }
    );
    assert_eq!(count(&mut a, &mut net, "/none").err, ErrorCode::NoNode);
    let r = a.call(&mut net, Request::GetChildren2(path_watch("/x", false)));
    let Response::Children2 { children, stat } = r.ok() else {
        panic!()
    };
    assert_eq!(children, &vec!["e1", "other", "y"]);
    assert_eq!(stat.num_children, 3);
}

#[test]
fn standalone_check_is_unimplemented_then_close() {
    let mut net = Net::standalone();
    let mut a = Client::connect(&mut net, 0);
    a.create(&mut net, "/c", "", 0);
    let z = net.sim.last_zxid();
    let r = a.call(&mut net, Request::Check(path_version("/c", 0)));
    assert_eq!((r.err, r.zxid), (ErrorCode::Unimplemented, -1));
    assert!(net.closed(a.conn));
    assert_eq!(net.sim.last_zxid(), z, "nothing is logged");
}

#[test]
fn unknown_opcode_is_unimplemented_with_zxid_minus_one_then_close() {
    let mut net = Net::standalone();
    let mut a = Client::connect(&mut net, 0);
    a.send_frame(&mut net, 1, OpCode::Ping, &[0, 0, 0, 1, 0, 0, 3, 0xe7]);
    let r = a.reply_to(&mut net, 1);
    assert_eq!((r.err, r.zxid), (ErrorCode::Unimplemented, -1));
    assert!(net.closed(a.conn));
    // Opcodes no client may send are treated the same.
    for op in [0_i32, 20, -10, -1] {
        let mut b = Client::connect(&mut net, 0);
        let mut f = vec![0, 0, 0, 7];
        f.extend_from_slice(&op.to_be_bytes());
        b.send_frame(&mut net, 7, OpCode::Ping, &f);
        assert_eq!(
            b.reply_to(&mut net, 7).err,
            ErrorCode::Unimplemented,
            "op {op}"
        );
        assert!(net.closed(b.conn));
    }
}

#[test]
fn undecodable_bodies_are_marshalling_errors_and_writes_use_a_zxid() {
    let mut net = Net::standalone();
    let mut a = Client::connect(&mut net, 0);
    let z = net.sim.last_zxid();
    // getData with a truncated path.
    a.send_frame(
        &mut net,
        1,
        OpCode::GetData,
        &[0, 0, 0, 1, 0, 0, 0, 4, 0, 0, 0, 9, b'/'],
    );
    let r = a.reply_to(&mut net, 1);
    assert_eq!((r.err, r.zxid), (ErrorCode::MarshallingError, z));
    // setData with a truncated body: an error transaction.
    a.send_frame(&mut net, 2, OpCode::SetData, &[0, 0, 0, 2, 0, 0, 0, 5, 0]);
    let r = a.reply_to(&mut net, 2);
    assert_eq!((r.err, r.zxid), (ErrorCode::MarshallingError, z + 1));
    assert!(!net.closed(a.conn));
    // Trailing bytes after a record are ignored, as Java does.
    let mut f = vec![0, 0, 0, 3, 0, 0, 0, 11];
    f.extend_from_slice(&[1, 2, 3]);
    a.send_frame(&mut net, -2, OpCode::Ping, &f);
    assert_eq!(a.reply_to(&mut net, -2).err, ErrorCode::Ok);
    // An unreadable header closes.
    net.send_raw(a.conn, &[0, 0, 0, 3, 1, 2, 3]);
    assert!(net.closed(a.conn));
}

#[test]
fn reconfig_is_disabled_and_uses_a_zxid() {
    let mut net = Net::standalone();
    let mut a = Client::connect(&mut net, 0);
    let r = a.call(
        &mut net,
        Request::Reconfig(ReconfigRequest {
            joining_servers: None,
            leaving_servers: None,
            new_members: None,
            cur_config_id: -1,
        }),
    );
    assert_eq!((r.err, r.zxid), (ErrorCode::ReconfigDisabled, 2));
}

#[test]
fn sasl_fails_and_closes() {
    let mut net = Net::standalone();
    let mut a = Client::connect(&mut net, 0);
    let r = a.call(&mut net, Request::Sasl(SaslToken { token: None }));
    assert_eq!(r.err, ErrorCode::AuthFailed);
    assert!(net.closed(a.conn));
}

// ---- multi (§9) -----------------------------------------------------------------------------------------

fn multi(ops: Vec<MultiOp>) -> Request {
    Request::Multi(ops)
}

fn results(r: &Reply) -> Vec<MultiResult> {
    match r.ok() {
        Response::Multi(v) => v.clone(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn multi_applies_all_or_nothing_with_the_documented_failure_shape() {
    let mut net = Net::standalone();
    let mut a = Client::connect(&mut net, 0);
    a.create(&mut net, "/m", "", 0);
    let z = net.sim.last_zxid();
    let r = a.call(
        &mut net,
        multi(vec![
            MultiOp::Create(create_req("/m/a", "", 0)),
            MultiOp::SetData(set_data_req("/m/missing", "x", -1)),
            MultiOp::Check(path_version("/m", 0)),
        ]),
    );
    assert_eq!((r.err, r.zxid), (ErrorCode::Ok, z + 1));
    assert_eq!(
        results(&r),
        vec![
            MultiResult::Error(ErrorCode::Ok),
            MultiResult::Error(ErrorCode::NoNode),
            MultiResult::Error(ErrorCode::RuntimeInconsistency),
        ]
    );
    assert!(net.sim.node("/m/a").is_none(), "nothing applied");
    // Ops see earlier ops' effects; one zxid for the lot.
    let r = a.call(
        &mut net,
        multi(vec![
            MultiOp::Create(create_req("/m/a", "", 0)),
            MultiOp::Create2(create_req("/m/a/b", "", 2)),
            MultiOp::SetData(set_data_req("/m/a", "v", 0)),
            MultiOp::Check(path_version("/m/a", 1)),
            MultiOp::Delete(path_version("/m/a/b0000000000", -1)),
        ]),
    );
    assert_eq!(r.zxid, z + 2);
    let res = results(&r);
    assert_eq!(
        res[0],
        MultiResult::Create {
            path: "/m/a".into()
        }
    );
    // 3.8.0 answers a create2 sub-op with a create result [V4].
    assert_eq!(
        res[1],
        MultiResult::Create {
            path: "/m/a/b0000000000".into()
        }
    );
    match &res[2] {
        MultiResult::SetData(s) => assert_eq!((s.version, s.mzxid), (1, z + 2)),
        other => panic!("{other:?}"),
    }
    assert_eq!(res[3], MultiResult::Check);
    assert_eq!(res[4], MultiResult::Delete);
    let view = net.sim.node("/m/a").unwrap();
    assert_eq!((view.stat.cversion, view.stat.num_children), (2, 0));
}

#[test]
fn multi_create2_results_follow_the_version() {
    for (version, typed) in [
        ((3, 8, 0), false),
        ((3, 8, 2), true),
        ((3, 7, 1), false),
        ((3, 7, 2), true),
        ((3, 6, 4), false),
        ((3, 9, 0), true),
    ] {
        let mut net = Net::version(version);
        let mut a = Client::connect(&mut net, 0);
        let r = a.call(
            &mut net,
            multi(vec![
                MultiOp::Create2(create_req("/a", "", 0)),
                MultiOp::CreateContainer(create_req("/c", "", 4)),
                MultiOp::CreateTtl(CreateTtlRequest {
                    path: "/t".into(),
                    data: None,
                    acl: open_acl().into(),
                    flags: 5,
                    ttl: 10,
                }),
            ]),
        );
        let res = results(&r);
        assert_eq!(
            matches!(res[0], MultiResult::Create2 { .. }),
            typed,
            "{version:?}"
        );
        assert!(matches!(res[1], MultiResult::Create2 { .. }));
        assert!(matches!(res[2], MultiResult::Create2 { .. }));
    }
}

#[test]
fn mixed_multi_is_a_marshalling_error_that_uses_a_zxid() {
    let mut net = Net::standalone();
    let mut a = Client::connect(&mut net, 0);
    let z = net.sim.last_zxid();
    let r = a.call(
        &mut net,
        multi(vec![
            MultiOp::GetData(path_watch("/", false)),
            MultiOp::Create(create_req("/mix", "", 0)),
        ]),
    );
    assert_eq!((r.err, r.zxid), (ErrorCode::MarshallingError, z + 1));
    // An unknown sub-op type too.
    let mut f = vec![0, 0, 0, 9, 0, 0, 0, 14];
    f.extend_from_slice(&[0, 0, 0, 99, 0, 0xff, 0xff, 0xff, 0xff]);
    a.send_frame(&mut net, 9, OpCode::Multi, &f);
    let r = a.reply_to(&mut net, 9);
    assert_eq!((r.err, r.zxid), (ErrorCode::MarshallingError, z + 2));
    // multiRead with a write op: a read, so no zxid.
    let r = a.call(
        &mut net,
        Request::MultiRead(vec![MultiOp::Create(create_req("/mix", "", 0))]),
    );
    assert_eq!((r.err, r.zxid), (ErrorCode::MarshallingError, z + 2));
    assert!(net.sim.node("/mix").is_none());
}

#[test]
fn multi_read_is_not_atomic_and_arms_no_watch() {
    let mut net = Net::standalone();
    let mut a = Client::connect(&mut net, 0);
    a.create(&mut net, "/r", "hi", 0);
    let r = a.call(
        &mut net,
        Request::MultiRead(vec![
            MultiOp::GetData(path_watch("/r", true)),
            MultiOp::GetChildren(path_watch("/missing", true)),
            MultiOp::GetChildren(path_watch("/", true)),
        ]),
    );
    let res = results(&r);
    assert!(matches!(&res[0], MultiResult::GetData { data: Some(d), .. } if &d[..] == b"hi"));
    assert_eq!(res[1], MultiResult::Error(ErrorCode::NoNode));
    assert!(matches!(&res[2], MultiResult::GetChildren { children } if children.len() == 2));
    assert!(a.set_data(&mut net, "/r", "x", -1).events_before.is_empty());
}

// ---- watches (§10) ------------------------------------------------------------------------------------

#[test]
fn exists_arms_on_missing_nodes_but_get_data_and_children_do_not() {
    let mut net = Net::standalone();
    let mut a = Client::connect(&mut net, 0);
    let mut b = Client::connect(&mut net, 0);
    assert_eq!(a.exists(&mut net, "/w", true).err, ErrorCode::NoNode);
    assert_eq!(a.get_data(&mut net, "/v", true).err, ErrorCode::NoNode);
    assert_eq!(a.children(&mut net, "/v", true).err, ErrorCode::NoNode);
    b.create(&mut net, "/w", "", 0);
    b.create(&mut net, "/v", "", 0);
    assert_eq!(
        a.events(&mut net),
        vec![event(EventType::NodeCreated, "/w")]
    );
}

#[test]
fn own_write_notification_precedes_the_reply_and_one_shot_watches_fire_once() {
    let mut net = Net::standalone();
    let mut a = Client::connect(&mut net, 0);
    a.create(&mut net, "/o", "", 0);
    a.get_data(&mut net, "/o", true);
    a.children(&mut net, "/o", true);
    let r = a.set_data(&mut net, "/o", "1", -1);
    assert_eq!(
        r.events_before,
        vec![(-1, event(EventType::NodeDataChanged, "/o"))],
        "§5.4: own notification before the reply"
    );
    let r = a.set_data(&mut net, "/o", "2", -1);
    assert!(r.events_before.is_empty(), "one-shot watch consumed");
    let r = a.create(&mut net, "/o/k", "", 0);
    assert_eq!(
        r.events_before,
        vec![(-1, event(EventType::NodeChildrenChanged, "/o"))]
    );
}

#[test]
fn delete_sends_one_frame_to_data_and_child_watchers_and_children_changed_to_the_parent() {
    let mut net = Net::standalone();
    let mut a = Client::connect(&mut net, 0);
    let mut b = Client::connect(&mut net, 0);
    a.create(&mut net, "/p", "", 0);
    a.create(&mut net, "/p/c", "", 0);
    b.get_data(&mut net, "/p/c", true);
    b.exists(&mut net, "/p/c", true);
    b.children(&mut net, "/p/c", true);
    b.children(&mut net, "/p", true);
    a.delete(&mut net, "/p/c", -1);
    assert_eq!(
        b.events(&mut net),
        vec![
            event(EventType::NodeDeleted, "/p/c"),
            event(EventType::NodeChildrenChanged, "/p"),
        ]
    );
    a.create(&mut net, "/p/c", "", 0);
    assert!(b.events(&mut net).is_empty(), "every watch was consumed");
}

#[test]
fn persistent_watches_stay_and_recursive_ones_never_see_children_changed() {
    let mut net = Net::standalone();
    let mut a = Client::connect(&mut net, 0);
    let mut b = Client::connect(&mut net, 0);
    a.create(&mut net, "/p", "", 0);
    let r = b.add_watch(&mut net, "/p", AddWatchMode::Persistent);
    assert_eq!(r.ok(), &Response::AddWatch { err: ErrorCode::Ok });
    b.add_watch(&mut net, "/r", AddWatchMode::PersistentRecursive);
    for _ in 0..2 {
        a.set_data(&mut net, "/p", "x", -1);
    }
    a.create(&mut net, "/p/k", "", 0);
    a.create(&mut net, "/r", "", 0);
    a.create(&mut net, "/r/k", "", 0);
    a.create(&mut net, "/r/k/j", "", 0);
    a.set_data(&mut net, "/r/k/j", "x", -1);
    a.delete(&mut net, "/r/k/j", -1);
    use EventType::*;
    assert_eq!(
        b.events(&mut net),
        vec![
            event(NodeDataChanged, "/p"),
            event(NodeDataChanged, "/p"),
            event(NodeChildrenChanged, "/p"),
            event(NodeCreated, "/r"),
            event(NodeCreated, "/r/k"),
            event(NodeCreated, "/r/k/j"),
            event(NodeDataChanged, "/r/k/j"),
            event(NodeDeleted, "/r/k/j"),
        ]
    );
}

#[test]
fn addwatch_reply_body_is_an_error_response_of_zero() {
    let mut net = Net::standalone();
    let mut a = Client::connect(&mut net, 0);
    let mut out = Vec::new();
    let req = Request::AddWatch(AddWatchRequest {
        path: "/x".into(),
        mode: 0,
    });
    encode_request(&mut out, 1 << 20, 5, &req).unwrap();
    net.send_raw(a.conn, &out);
    let frames = net.take_frames(a.conn);
    assert_eq!(&frames[0][12..], &[0, 0, 0, 0, 0, 0, 0, 0]);
    // A mode the server does not know is a marshalling error.
    let r = a.call(
        &mut net,
        Request::AddWatch(AddWatchRequest {
            path: "/x".into(),
            mode: 7,
        }),
    );
    assert_eq!(r.err, ErrorCode::MarshallingError);
}

#[test]
fn check_and_remove_watches_by_type_per_version() {
    let watches = |path: &str, t: i32| WatchesRequest {
        path: path.into(),
        watcher_type: t,
    };
    let mut net = Net::standalone();
    let mut a = Client::connect(&mut net, 0);
    a.create(&mut net, "/w", "", 0);
    let r = a.call(&mut net, Request::CheckWatches(watches("/w", 2)));
    assert_eq!(r.err, ErrorCode::NoWatcher);
    a.add_watch(&mut net, "/w", AddWatchMode::PersistentRecursive);
    // 3.8: types 4 and 5 do not parse.
    let r = a.call(&mut net, Request::RemoveWatches(watches("/w", 5)));
    assert_eq!(r.err, ErrorCode::MarshallingError);
    let r = a.call(&mut net, Request::RemoveWatches(watches("/w", 9)));
    assert_eq!(r.err, ErrorCode::MarshallingError);
    // Any removes every watch of the connection on the path [V9].
    let r = a.call(&mut net, Request::RemoveWatches(watches("/w", 3)));
    assert_eq!(r.err, ErrorCode::Ok);
    assert!(a.set_data(&mut net, "/w", "x", -1).events_before.is_empty());
    let r = a.call(&mut net, Request::RemoveWatches(watches("/w", 3)));
    assert_eq!(r.err, ErrorCode::NoWatcher);

    let mut net = Net::version((3, 9, 0));
    let mut a = Client::connect(&mut net, 0);
    a.create(&mut net, "/w", "", 0);
    a.add_watch(&mut net, "/w", AddWatchMode::Persistent);
    a.get_data(&mut net, "/w", true);
    assert_eq!(
        a.call(&mut net, Request::CheckWatches(watches("/w", 4)))
            .err,
        ErrorCode::Ok
    );
    assert_eq!(
        a.call(&mut net, Request::CheckWatches(watches("/w", 5)))
            .err,
        ErrorCode::NoWatcher
    );
    assert_eq!(
        a.call(&mut net, Request::RemoveWatches(watches("/w", 4)))
            .err,
        ErrorCode::Ok
    );
    assert_eq!(
        a.call(&mut net, Request::CheckWatches(watches("/w", 1)))
            .err,
        ErrorCode::NoWatcher
    );
    assert_eq!(
        a.call(&mut net, Request::CheckWatches(watches("/w", 2)))
            .err,
        ErrorCode::Ok
    );
}

#[test]
fn notification_zxid_is_minus_one_before_3_9_and_the_txn_zxid_after() {
    for (version, own) in [((3, 8, 0), false), ((3, 9, 0), true)] {
        let mut net = Net::version(version);
        let mut a = Client::connect(&mut net, 0);
        a.exists(&mut net, "/n", true);
        let r = a.create(&mut net, "/n", "", 0);
        let want = if own { r.zxid } else { -1 };
        assert_eq!(r.events_before[0].0, want, "{version:?}");
    }
}

#[test]
fn watch_modes_replace_each_other_before_3_9_and_accumulate_after() {
    for (version, survives) in [((3, 8, 0), false), ((3, 9, 0), true)] {
        let mut net = Net::version(version);
        let mut a = Client::connect(&mut net, 0);
        a.create(&mut net, "/m", "", 0);
        a.add_watch(&mut net, "/m", AddWatchMode::Persistent);
        a.get_data(&mut net, "/m", true);
        let n = a.set_data(&mut net, "/m", "1", -1).events_before.len()
            + a.set_data(&mut net, "/m", "2", -1).events_before.len();
        assert_eq!(n, if survives { 2 } else { 1 }, "{version:?}");
    }
}

#[test]
fn set_watches_rearms_or_answers_with_the_missed_event() {
    let mut net = Net::standalone();
    let mut a = Client::connect(&mut net, 0);
    let mut b = Client::connect(&mut net, 0);
    for p in ["/same", "/changed", "/kids", "/gone"] {
        b.create(&mut net, p, "", 0);
    }
    let rel = net.sim.last_zxid();
    b.set_data(&mut net, "/changed", "x", -1);
    b.create(&mut net, "/kids/k", "", 0);
    b.create(&mut net, "/now", "", 0);
    b.delete(&mut net, "/gone", -1);
    let r = a.call(
        &mut net,
        Request::SetWatches(SetWatches {
            relative_zxid: rel,
            data_watches: vec!["/same".into(), "/changed".into(), "/gone".into()],
            exist_watches: vec!["/now".into(), "/later".into()],
            child_watches: vec!["/same".into(), "/kids".into(), "/gone".into()],
        }),
    );
    use EventType::*;
    assert_eq!(
        (r.xid, r.err, r.zxid),
        (-8, ErrorCode::Ok, net.sim.last_zxid())
    );
    let got = r.events_before.to_vec();
    assert_eq!(
        got,
        vec![
            (-1, event(NodeDataChanged, "/changed")),
            (-1, event(NodeDeleted, "/gone")),
            (-1, event(NodeCreated, "/now")),
            (-1, event(NodeChildrenChanged, "/kids")),
            (-1, event(NodeDeleted, "/gone")),
        ]
    );
    // The others were armed silently.
    b.set_data(&mut net, "/same", "y", -1);
    b.create(&mut net, "/same/k", "", 0);
    b.create(&mut net, "/later", "", 0);
    assert_eq!(
        a.events(&mut net),
        vec![
            event(NodeDataChanged, "/same"),
            event(NodeChildrenChanged, "/same"),
            event(NodeCreated, "/later"),
        ]
    );
    // setWatches2 registers persistent and recursive watches without events.
    let r = a.call(
        &mut net,
        Request::SetWatches2(SetWatches2 {
            relative_zxid: 0,
            persistent_recursive_watches: vec!["/same".into()],
            persistent_watches: vec!["/now".into()],
            ..SetWatches2::default()
        }),
    );
    assert!(r.events_before.is_empty());
    b.create(&mut net, "/same/k/deep", "", 0);
    b.set_data(&mut net, "/now", "z", -1);
    assert_eq!(
        a.events(&mut net),
        vec![
            event(NodeCreated, "/same/k/deep"),
            event(NodeDataChanged, "/now")
        ]
    );
}

#[test]
fn watches_stay_with_the_connection_when_the_session_moves() {
    let mut net = Net::ensemble(2);
    let mut a = Client::connect(&mut net, 0);
    let mut b = Client::connect(&mut net, 1);
    a.exists(&mut net, "/x", true);
    let (conn, outcome) = a.reconnect(&mut net, 1);
    assert!(matches!(outcome, Handshake::Connected(_)));
    a.conn = conn;
    b.create(&mut net, "/x", "", 0);
    assert!(
        a.events(&mut net).is_empty(),
        "the client must re-arm with setWatches"
    );
}

// ---- sessions (§13, §14) ------------------------------------------------------------------------------------

#[test]
fn close_session_deletes_ephemerals_fires_watches_then_replies_and_closes() {
    let mut net = Net::standalone();
    let mut a = Client::connect(&mut net, 0);
    let mut b = Client::connect(&mut net, 0);
    a.create(&mut net, "/e", "", 1);
    a.exists(&mut net, "/e", true);
    b.exists(&mut net, "/e", true);
    let z = net.sim.last_zxid();
    let r = a.call(&mut net, Request::CloseSession);
    assert_eq!((r.err, r.zxid), (ErrorCode::Ok, z + 1));
    assert_eq!(
        r.events_before,
        vec![(-1, event(EventType::NodeDeleted, "/e"))]
    );
    assert!(net.closed(a.conn));
    assert_eq!(
        b.events(&mut net),
        vec![event(EventType::NodeDeleted, "/e")]
    );
    assert!(net.sim.node("/e").is_none());
    assert!(!net.sim.session_ids().contains(&a.session));
}

#[test]
fn idle_sessions_expire_silently_and_lose_their_ephemerals() {
    let mut net = Net::standalone();
    let mut a = Client::connect_with(&mut net, 0, &connect_request(0, &[0; 16], 4000));
    let mut b = Client::connect(&mut net, 0);
    a.create(&mut net, "/e", "", 1);
    b.exists(&mut net, "/e", true);
    // Pings refresh the session; auth does not.
    net.advance(3000);
    a.ping(&mut net);
    net.advance(3000);
    assert!(!net.closed(a.conn));
    a.auth_digest(&mut net, "u:p");
    assert_eq!(
        net.sim.poll_timeout(),
        Some(net.now + std::time::Duration::from_millis(1000))
    );
    net.advance(999);
    assert!(!net.closed(a.conn));
    b.ping(&mut net);
    net.advance(1);
    assert!(net.closed(a.conn));
    assert!(
        net.take_raw(a.conn).is_empty(),
        "no frame before the close (§14.2)"
    );
    assert_eq!(
        b.events(&mut net),
        vec![event(EventType::NodeDeleted, "/e")]
    );
    assert!(net.sim.node("/e").is_none());
}

#[test]
fn expire_session_acts_at_once() {
    let mut net = Net::standalone();
    let mut a = Client::connect(&mut net, 0);
    a.create(&mut net, "/e", "", 1);
    let z = net.sim.last_zxid();
    net.sim.expire_session(net.now, a.session);
    net.pump();
    assert!(net.closed(a.conn));
    assert_eq!(net.sim.last_zxid(), z + 1);
    assert!(net.sim.node("/e").is_none());
    assert!(net.sim.session_ids().is_empty());
}

#[test]
fn a_session_without_connection_lives_until_its_timeout() {
    let mut net = Net::standalone();
    let a = Client::connect_with(&mut net, 0, &connect_request(0, &[0; 16], 2000));
    net.client_close(a.conn);
    net.advance(1500);
    assert!(matches!(
        a.reconnect(&mut net, 0).1,
        Handshake::Connected(_)
    ));
}

// ---- versions (§16) --------------------------------------------------------------------------------------

#[test]
fn version_3_5_refuses_3_6_ops_and_3_6_refuses_who_am_i() {
    let ops36: Vec<Request> = vec![
        Request::MultiRead(vec![]),
        Request::GetEphemerals(PathRequest { path: "/".into() }),
        Request::GetAllChildrenNumber(PathRequest { path: "/".into() }),
        Request::SetWatches2(SetWatches2::default()),
        Request::AddWatch(AddWatchRequest {
            path: "/".into(),
            mode: 0,
        }),
        Request::WhoAmI,
    ];
    for req in ops36 {
        let mut net = Net::version((3, 5, 10));
        let mut a = Client::connect(&mut net, 0);
        let r = a.call(&mut net, req.clone());
        assert_eq!((r.err, r.zxid), (ErrorCode::Unimplemented, -1), "{req:?}");
        assert!(net.closed(a.conn));
    }
    let mut net = Net::version((3, 6, 4));
    let mut a = Client::connect(&mut net, 0);
    assert_eq!(
        a.call(&mut net, Request::WhoAmI).err,
        ErrorCode::Unimplemented
    );
    let mut b = Client::connect(&mut net, 0);
    assert_eq!(
        b.call(
            &mut net,
            Request::GetEphemerals(PathRequest { path: "/".into() })
        )
        .err,
        ErrorCode::Ok
    );
    // 3.5 still knows createTTL, containers and create2.
    let mut net = Net::version((3, 5, 10));
    let mut a = Client::connect(&mut net, 0);
    assert_eq!(
        a.call(&mut net, Request::CreateContainer(create_req("/c", "", 4)))
            .err,
        ErrorCode::Ok
    );
}

// ---- replicas: lagging, read-only, crash (§14.5) --------------------------------------------------------------

#[test]
fn a_lagging_server_serves_stale_reads_until_sync() {
    let mut net = Net::ensemble(3);
    let mut a = Client::connect(&mut net, 0);
    let mut b = Client::connect(&mut net, 1);
    a.create(&mut net, "/l", "1", 0);
    net.sim.set_lagging(1, true);
    b.get_data(&mut net, "/l", true);
    a.set_data(&mut net, "/l", "2", -1);
    let r = b.get_data(&mut net, "/l", false);
    let Response::Data { data, .. } = r.ok() else {
        panic!()
    };
    assert_eq!(data.as_deref(), Some(&b"1"[..]), "stale replica");
    assert!(
        b.events(&mut net).is_empty(),
        "its watches fire when it applies"
    );
    assert_eq!(net.sim.node("/l").unwrap().data.as_deref(), Some(&b"2"[..]));
    let r = b.call(&mut net, Request::Sync(PathRequest { path: "/l".into() }));
    assert_eq!(r.zxid, net.sim.last_zxid());
    assert_eq!(
        r.events_before,
        vec![(-1, event(EventType::NodeDataChanged, "/l"))]
    );
    let r = b.get_data(&mut net, "/l", false);
    assert!(matches!(r.ok(), Response::Data { data: Some(d), .. } if &d[..] == b"2"));
}

#[test]
fn a_lagging_server_sees_its_own_writes_and_catches_up_when_released() {
    let mut net = Net::ensemble(2);
    let mut a = Client::connect(&mut net, 0);
    let mut b = Client::connect(&mut net, 1);
    net.sim.set_lagging(1, true);
    a.create(&mut net, "/x", "", 0);
    b.exists(&mut net, "/y", true);
    assert_eq!(b.exists(&mut net, "/x", false).err, ErrorCode::NoNode);
    // b's own write applies everything up to it.
    let r = b.create(&mut net, "/x/k", "", 0);
    assert_eq!(r.err, ErrorCode::Ok);
    assert_eq!(b.exists(&mut net, "/x", false).err, ErrorCode::Ok);
    a.create(&mut net, "/y", "", 0);
    assert!(b.events(&mut net).is_empty());
    // A client that saw more than the lagging server is sent elsewhere.
    let mut req = connect_request(0, &[0; 16], 30_000);
    req.last_zxid_seen = net.sim.last_zxid();
    assert!(matches!(handshake(&mut net, 1, &req).1, Handshake::Closed));
    net.sim.set_lagging(1, false);
    net.pump();
    assert_eq!(
        b.events(&mut net),
        vec![event(EventType::NodeCreated, "/y")]
    );
}

#[test]
fn a_read_only_server_refuses_writes_and_rw_clients() {
    let mut net = Net::ensemble(3);
    let mut a = Client::connect(&mut net, 0);
    a.create(&mut net, "/ro", "1", 0);
    net.sim.set_read_only(2, true);
    net.pump();
    assert!(matches!(
        handshake(&mut net, 2, &connect_request(0, &[0; 16], 30_000)).1,
        Handshake::Closed
    ));
    let mut req = connect_request(0, &[0; 16], 30_000);
    req.read_only = Some(true);
    let z = net.sim.last_zxid();
    let mut r = Client::connect_with(&mut net, 2, &req);
    assert_eq!(r.read_only, Some(true));
    assert_eq!(net.sim.last_zxid(), z, "a read-only server logs no session");
    assert_eq!(r.get_data(&mut net, "/ro", false).err, ErrorCode::Ok);
    a.set_data(&mut net, "/ro", "2", -1);
    let got = r.get_data(&mut net, "/ro", false);
    assert!(matches!(got.ok(), Response::Data { data: Some(d), .. } if &d[..] == b"1"));
    for req in [
        Request::Create(create_req("/x", "", 0)),
        Request::SetData(set_data_req("/ro", "x", -1)),
        Request::Delete(path_version("/ro", -1)),
        Request::Sync(PathRequest { path: "/".into() }),
        Request::Multi(vec![]),
    ] {
        let reply = r.call(&mut net, req);
        assert_eq!((reply.err, reply.zxid), (ErrorCode::NotReadOnly, z));
    }
    assert_eq!(net.four_letter(2, "isro"), "ro");
    assert_eq!(net.four_letter(0, "isro"), "rw");
    assert!(net.four_letter(2, "srvr").contains("Mode: read-only"));
    // A global session may move onto the read-only server.
    let (_, outcome) = {
        let mut req = connect_request(a.session, &a.passwd, 30_000);
        req.read_only = Some(true);
        handshake(&mut net, 2, &req)
    };
    assert!(matches!(outcome, Handshake::Connected(_)));
    // Leaving read-only mode drops the connections and resynchronises.
    net.sim.set_read_only(2, false);
    net.pump();
    assert!(net.closed(r.conn));
    assert!(
        !net.sim.session_ids().contains(&r.session),
        "local sessions die"
    );
    let mut c = Client::connect(&mut net, 2);
    let got = c.get_data(&mut net, "/ro", false);
    assert!(matches!(got.ok(), Response::Data { data: Some(d), .. } if &d[..] == b"2"));
}

#[test]
fn crash_closes_connections_and_restart_resyncs() {
    let mut net = Net::ensemble(3);
    let mut a = Client::connect(&mut net, 1);
    a.create(&mut net, "/e", "", 1);
    net.sim.crash(net.now, 1);
    net.pump();
    assert!(net.closed(a.conn));
    assert!(!net.sim.is_up(1));
    let c = net.accept(1);
    assert!(net.closed(c), "a down server refuses connections");
    assert!(net.sim.four_letter(net.now, 1, "ruok").is_none());
    let mut b = Client::connect(&mut net, 0);
    b.create(&mut net, "/after", "", 0);
    // The session survives and resumes elsewhere.
    let (conn, outcome) = a.reconnect(&mut net, 2);
    assert!(matches!(outcome, Handshake::Connected(_)));
    a.conn = conn;
    a.server = 2;
    assert_eq!(a.exists(&mut net, "/e", false).err, ErrorCode::Ok);
    net.sim.restart(net.now, 1);
    assert!(net.sim.is_up(1));
    let mut d = Client::connect(&mut net, 1);
    assert_eq!(d.exists(&mut net, "/after", false).err, ErrorCode::Ok);
}

// ---- container / TTL sweep (§8.4) ---------------------------------------------------------------------------

#[test]
fn the_sweeper_deletes_used_containers_and_expired_ttl_nodes() {
    let mut net = Net::new(SimConfig {
        container_check_interval_ms: 1000,
        ..SimConfig::default()
    });
    let mut a = Client::connect(&mut net, 0);
    let mut b = Client::connect(&mut net, 0);
    assert_eq!(
        net.sim.poll_timeout(),
        Some(net.now + std::time::Duration::from_millis(10_000))
    );
    let mk = |a: &mut Client, net: &mut Net, p: &str| {
        a.call(net, Request::CreateContainer(create_req(p, "", 4)))
    };
    mk(&mut a, &mut net, "/used");
    mk(&mut a, &mut net, "/never");
    a.create(&mut net, "/used/k", "", 0);
    a.delete(&mut net, "/used/k", -1);
    a.call(
        &mut net,
        Request::CreateTtl(CreateTtlRequest {
            path: "/ttl".into(),
            data: None,
            acl: open_acl().into(),
            flags: 5,
            ttl: 1500,
        }),
    );
    assert_eq!(
        net.sim.poll_timeout(),
        Some(net.now + std::time::Duration::from_millis(1000)),
        "the sweep is due while containers exist"
    );
    b.exists(&mut net, "/used", true);
    b.exists(&mut net, "/ttl", true);
    net.advance(1000);
    assert!(net.sim.node("/used").is_none());
    assert!(net.sim.node("/never").is_some(), "never had a child");
    assert!(net.sim.node("/ttl").is_some(), "ttl not yet elapsed");
    assert_eq!(
        b.events(&mut net),
        vec![event(EventType::NodeDeleted, "/used")]
    );
    a.ping(&mut net);
    b.ping(&mut net);
    net.advance(1000);
    assert!(net.sim.node("/ttl").is_none());
    assert_eq!(
        b.events(&mut net),
        vec![event(EventType::NodeDeleted, "/ttl")]
    );
}

// ---- four-letter words (§15) ---------------------------------------------------------------------------------

#[test]
fn four_letter_words_answer_text_and_close() {
    let mut net = Net::standalone();
    let mut a = Client::connect(&mut net, 0);
    a.create(&mut net, "/x", "", 0);
    a.get_data(&mut net, "/x", true);
    assert_eq!(net.four_letter(0, "ruok"), "imok");
    assert_eq!(net.four_letter(0, "isro"), "rw");
    let srvr = net.four_letter(0, "srvr");
    let first = srvr.lines().next().unwrap();
    assert!(
        first.starts_with("Zookeeper version: 3.8.0-sim, built on "),
        "{first}"
    );
    assert!(srvr.contains("Mode: standalone\n"));
    assert!(srvr.contains("Zxid: 0x2\n"));
    assert!(srvr.contains("Node count: 6\n"));
    let stat = net.four_letter(0, "stat");
    assert!(stat.contains("Clients:\n"));
    let mntr = net.four_letter(0, "mntr");
    assert!(mntr.contains("zk_server_state\tstandalone\n"));
    assert!(mntr.contains("zk_watch_count\t1\n"));
    let wchs = net.four_letter(0, "wchs");
    assert!(wchs.starts_with("1 connections watching 1 paths"), "{wchs}");
    assert!(net.four_letter(0, "wchc").contains("\t/x\n"));
    assert!(net.four_letter(0, "conf").contains("tickTime=500\n"));
    assert!(net.four_letter(0, "envi").starts_with("Environment:"));
    assert!(net.four_letter(0, "dump").contains("Global Sessions(1)"));
    for w in ["cons", "crst", "srst", "dirs", "gtmk", "wchp", "hash"] {
        net.four_letter(0, w);
    }
    // stmk waits for its 8-byte mask.
    let c = net.accept(0);
    net.send_raw(c, b"stmk");
    assert!(!net.closed(c));
    net.send_raw(c, &[0, 0, 0, 0, 0, 0, 0, 7]);
    assert_eq!(net.take_raw(c), b"7");
    // A word split across reads still counts.
    let c = net.accept(0);
    net.send_raw(c, b"ru");
    net.send_raw(c, b"ok");
    assert_eq!(net.take_raw(c), b"imok");
    // An unknown word is a frame length beyond jute.maxbuffer: closed, no text.
    let c = net.accept(0);
    net.send_raw(c, b"xyzw");
    assert!(net.closed(c));
    assert!(net.take_raw(c).is_empty());
    assert_eq!(
        net.sim.four_letter(net.now, 0, "ruok").as_deref(),
        Some("imok")
    );
    assert!(net.sim.four_letter(net.now, 0, "nope").is_none());
}

#[test]
fn hash_is_a_word_only_from_3_6_and_ensembles_report_leader_and_followers() {
    let mut net = Net::version((3, 5, 10));
    let c = net.accept(0);
    net.send_raw(c, b"hash");
    assert!(net.closed(c));
    assert!(net.take_raw(c).is_empty());
    let mut net = Net::ensemble(3);
    assert!(net.four_letter(0, "srvr").contains("Mode: leader\n"));
    assert!(net.four_letter(1, "srvr").contains("Mode: follower\n"));
    assert!(net.four_letter(0, "mntr").contains("zk_followers\t2\n"));
    net.sim.crash(net.now, 0);
    assert!(net.four_letter(1, "srvr").contains("Mode: leader\n"));
}

// ---- framing and hostile input (§2) ---------------------------------------------------------------------------

#[test]
fn oversize_and_negative_frames_close_without_reply() {
    let mut net = Net::standalone();
    let a = Client::connect(&mut net, 0);
    net.send_raw(a.conn, &0x0010_0000_i32.to_be_bytes());
    assert!(net.closed(a.conn));
    assert!(net.take_raw(a.conn).is_empty());
    let b = Client::connect(&mut net, 0);
    net.send_raw(b.conn, &(-5_i32).to_be_bytes());
    assert!(net.closed(b.conn));
    // The session survives [V16].
    assert!(net.sim.session_ids().contains(&a.session));
    // A smaller max_frame is honoured.
    let mut net = Net::new(SimConfig {
        max_frame: 100,
        ..SimConfig::default()
    });
    let mut c = Client::connect(&mut net, 0);
    let big = "x".repeat(200);
    c.send(&mut net, &Request::Create(create_req("/big", &big, 0)));
    assert!(net.closed(c.conn));
}

/// A fixed conversation, as raw bytes.
fn scripted_stream() -> Vec<u8> {
    let mut out = Vec::new();
    encode_connect_request(&mut out, 1 << 20, &connect_request(0, &[0; 16], 30_000)).unwrap();
    let reqs = [
        Request::Create(create_req("/s", "1", 0)),
        Request::GetData(path_watch("/s", true)),
        Request::SetData(set_data_req("/s", "2", -1)),
        Request::Create(create_req("/s/e-", "", 3)),
        Request::Multi(vec![
            MultiOp::Check(path_version("/s", 1)),
            MultiOp::Delete(path_version("/s/e-0000000000", -1)),
        ]),
        Request::Ping,
        Request::CloseSession,
    ];
    for (i, r) in reqs.iter().enumerate() {
        encode_request(&mut out, 1 << 20, i as i32 + 1, r).unwrap();
    }
    out
}

#[test]
fn any_split_of_the_stream_gives_the_same_bytes_and_runs_are_deterministic() {
    let stream = scripted_stream();
    let run = |cuts: &[usize]| {
        let mut net = Net::standalone();
        let c = net.accept(0);
        let mut last = 0;
        for &cut in cuts.iter().chain(std::iter::once(&stream.len())) {
            net.send_raw(c, &stream[last..cut]);
            last = cut;
        }
        (net.take_raw(c), net.closed(c))
    };
    let whole = run(&[]);
    assert!(whole.1);
    for cut in 1..stream.len() {
        assert_eq!(run(&[cut]), whole, "split at {cut}");
    }
    let bytewise: Vec<usize> = (1..stream.len()).collect();
    assert_eq!(run(&bytewise), whole);
}

#[test]
fn bytes_for_closed_or_unknown_connections_are_ignored() {
    let mut net = Net::standalone();
    let a = Client::connect(&mut net, 0);
    net.client_close(a.conn);
    net.send_raw(a.conn, &scripted_stream());
    net.send_raw(zk_testkit::sim::SimConnId(999), &scripted_stream());
    assert!(net.take_raw(a.conn).is_empty());
    net.sim.handle_closed(net.now, a.conn);
}

fn assert_outputs_decode(net: &mut Net, conn: zk_testkit::sim::SimConnId) {
    // Whatever the model sent after the handshake parses as reply frames.
    for f in net.take_frames(conn) {
        decode_reply_header(f).expect("ReplyHeader");
    }
}

fn hostile_config() -> SimConfig {
    SimConfig {
        servers: 2,
        ..SimConfig::default()
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_bytes_never_panic(
        chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..12),
        server in 0usize..3,
    ) {
        let mut net = Net::new(hostile_config());
        let c = net.accept(server);
        for chunk in &chunks {
            net.send_raw(c, chunk);
        }
        net.advance(60_000);
    }

    #[test]
    fn random_frames_after_a_handshake_never_panic(
        frames in proptest::collection::vec(
            (any::<i32>(), prop_oneof![
                (-12i32..110).boxed(),
                any::<i32>().boxed(),
            ], proptest::collection::vec(any::<u8>(), 0..48)),
            1..16),
        version in prop_oneof![Just((3u32, 5u32, 10u32)), Just((3, 8, 0)), Just((3, 9, 0))],
    ) {
        let mut net = Net::new(SimConfig { version, ..hostile_config() });
        let a = Client::connect(&mut net, 0);
        for (xid, op, body) in &frames {
            let mut payload = xid.to_be_bytes().to_vec();
            payload.extend_from_slice(&op.to_be_bytes());
            payload.extend_from_slice(body);
            let mut f = (payload.len() as i32).to_be_bytes().to_vec();
            f.extend_from_slice(&payload);
            net.send_raw(a.conn, &f);
        }
        assert_outputs_decode(&mut net, a.conn);
        net.advance(20_000);
    }

    #[test]
    fn well_formed_random_requests_keep_the_model_consistent(
        ops in proptest::collection::vec((0u8..12, 0u8..4, 0u8..4, any::<bool>()), 1..40),
    ) {
        let mut net = Net::new(SimConfig { servers: 2, ..SimConfig::default() });
        let mut a = Client::connect(&mut net, 0);
        let mut b = Client::connect(&mut net, 1);
        let paths = ["/a", "/a/b", "/c", "/a/b/d"];
        for (kind, p, q, flag) in ops {
            let path = paths[p as usize];
            let other = paths[q as usize];
            let client = if flag { &mut a } else { &mut b };
            let req = match kind {
                0 => Request::Create(create_req(path, "x", i32::from(q) % 4)),
                1 => Request::Delete(path_version(path, -1)),
                2 => Request::SetData(set_data_req(path, "y", -1)),
                3 => Request::GetData(path_watch(path, flag)),
                4 => Request::Exists(path_watch(other, true)),
                5 => Request::GetChildren(path_watch(path, true)),
                6 => Request::Multi(vec![
                    MultiOp::Create(create_req(path, "", 0)),
                    MultiOp::Delete(path_version(other, -1)),
                ]),
                7 => Request::AddWatch(AddWatchRequest { path: path.into(), mode: i32::from(flag) }),
                8 => Request::Sync(PathRequest { path: path.into() }),
                9 => Request::RemoveWatches(WatchesRequest { path: path.into(), watcher_type: 3 }),
                10 => Request::CreateContainer(create_req(other, "", 4)),
                _ => Request::GetChildren2(path_watch(other, false)),
            };
            let r = client.call(&mut net, req);
            prop_assert!(r.zxid <= net.sim.last_zxid());
            client.events(&mut net);
        }
        // Every committed node's parent exists and lists it.
        for p in paths {
            if let Some(v) = net.sim.node(p) {
                let parent = &p[..p.rfind('/').unwrap().max(1)];
                let name = &p[p.rfind('/').unwrap() + 1..];
                prop_assert!(net.sim.children(parent).unwrap().contains(&name.to_string()));
                prop_assert_eq!(v.stat.num_children as usize, net.sim.children(p).unwrap().len());
            }
        }
    }
}

#[test]
fn same_inputs_give_the_same_outputs() {
    let run = || {
        let mut net = Net::ensemble(3);
        let mut a = Client::connect(&mut net, 0);
        let mut b = Client::connect(&mut net, 2);
        a.create(&mut net, "/d", "", 0);
        b.add_watch(&mut net, "/d", AddWatchMode::PersistentRecursive);
        a.create(&mut net, "/d/e-", "", 3);
        net.advance(40_000);
        net.transcript.clone()
    };
    assert_eq!(run(), run());
}

#[test]
fn sim_server_is_send() {
    fn is_send<T: Send>() {}
    is_send::<SimServer>();
}
