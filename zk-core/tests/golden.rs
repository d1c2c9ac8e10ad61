//! Golden frames captured from a real ZooKeeper 3.8.0 server (PROTOCOL.md Appendix A).
//!
//! Every frame in `tests/golden/frames.txt` must (1) come out of the frame decoder whole, (2) decode
//! to the values documented for it, and (3) re-encode to exactly the captured bytes.
//!
//! The data file is a list of entries:
//!
//! ```text
//! [v2.create]                      a unique name
//! from = client                    client | server
//! kind = request                   connect | request | reply <op> | notification | 4lw | oversize
//!                                  | unknown-op (an opcode we cannot decode, and its reply)
//! hex = 00000037 00000001 ...       the captured bytes, length prefix included; spaces ignored
//! expect = xid=1 op=create ...      the documented values, rendered as `render_*` below does
//! ```
//!
//! Expectations are written from the documentation, never from this decoder's output. In an
//! expectation a token `key=*` matches any value for that key (for fields that change between
//! runs: session ids, passwords, ctime, mtime), and a lone `*` matches any one token.

use std::fmt::Write as _;

use bytes::Bytes;
use zk_core::proto::*;

#[derive(Debug, Default)]
struct Entry {
    name: String,
    from: String,
    kind: String,
    hex: String,
    expect: String,
}

fn load() -> Vec<Entry> {
    let text = include_str!("golden/frames.txt");
    let mut entries: Vec<Entry> = Vec::new();
    for (lineno, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            entries.push(Entry {
                name: name.to_owned(),
                ..Entry::default()
            });
            continue;
        }
        let (key, value) = line
            .split_once('=')
            .unwrap_or_else(|| panic!("frames.txt:{}: expected `key = value`", lineno + 1));
        let entry = entries
            .last_mut()
            .unwrap_or_else(|| panic!("frames.txt:{}: field before any [entry]", lineno + 1));
        let value = value.trim().to_owned();
        match key.trim() {
            "from" => entry.from = value,
            "kind" => entry.kind = value,
            "hex" => entry.hex = value,
            "expect" => entry.expect = value,
            other => panic!("frames.txt:{}: unknown key {other}", lineno + 1),
        }
    }
    entries
}

fn unhex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    assert!(digits.len() % 2 == 0, "odd number of hex digits");
    digits
        .chunks(2)
        .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).expect("hex digit"))
        .collect()
}

// ---- rendering: one flat line of `key=value` tokens per record --------------------------------

fn zxid(v: i64) -> String {
    if v < 0 {
        v.to_string()
    } else {
        format!("0x{v:x}")
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().fold(String::new(), |mut s, x| {
        let _ = write!(s, "{x:02x}");
        s
    })
}

/// `null`, `"text"` when printable ASCII, `0x<hex>` otherwise.
fn data(d: &Option<Bytes>) -> String {
    match d {
        None => "null".into(),
        Some(b) if b.iter().all(|c| c.is_ascii_graphic()) => {
            format!("\"{}\"", String::from_utf8_lossy(b))
        }
        Some(b) => format!("0x{}", hex(b)),
    }
}

fn opt_str(s: &Option<String>) -> String {
    s.clone().unwrap_or_else(|| "null".into())
}

fn list(items: &[String]) -> String {
    format!("[{}]", items.join(","))
}

fn acl(a: &[Acl]) -> String {
    let items: Vec<String> = a
        .iter()
        .map(|a| format!("{}:{}:{}", a.perms.0, a.id.scheme, a.id.id))
        .collect();
    list(&items)
}

fn stat(s: &Stat) -> String {
    format!(
        "stat={{czxid={} mzxid={} ctime={} mtime={} version={} cversion={} aversion={} \
         ephemeral_owner={} data_length={} num_children={} pzxid={}}}",
        zxid(s.czxid),
        zxid(s.mzxid),
        s.ctime,
        s.mtime,
        s.version,
        s.cversion,
        s.aversion,
        zxid(s.ephemeral_owner),
        s.data_length,
        s.num_children,
        zxid(s.pzxid)
    )
}

fn op_name(op: OpCode) -> &'static str {
    match op {
        OpCode::Create => "create",
        OpCode::Create2 => "create2",
        OpCode::CreateContainer => "createContainer",
        OpCode::CreateTtl => "createTTL",
        OpCode::Delete => "delete",
        OpCode::Exists => "exists",
        OpCode::GetData => "getData",
        OpCode::SetData => "setData",
        OpCode::GetAcl => "getACL",
        OpCode::SetAcl => "setACL",
        OpCode::GetChildren => "getChildren",
        OpCode::Sync => "sync",
        OpCode::Ping => "ping",
        OpCode::GetChildren2 => "getChildren2",
        OpCode::Check => "check",
        OpCode::Multi => "multi",
        OpCode::Reconfig => "reconfig",
        OpCode::CheckWatches => "checkWatches",
        OpCode::RemoveWatches => "removeWatches",
        OpCode::MultiRead => "multiRead",
        OpCode::Auth => "auth",
        OpCode::SetWatches => "setWatches",
        OpCode::Sasl => "sasl",
        OpCode::GetEphemerals => "getEphemerals",
        OpCode::GetAllChildrenNumber => "getAllChildrenNumber",
        OpCode::SetWatches2 => "setWatches2",
        OpCode::AddWatch => "addWatch",
        OpCode::WhoAmI => "whoAmI",
        OpCode::CloseSession => "closeSession",
        other => panic!("no name for {other:?}"),
    }
}

fn op_by_name(name: &str) -> OpCode {
    *OpCode::ALL
        .iter()
        .find(|op| {
            !matches!(
                op,
                OpCode::Notification
                    | OpCode::CreateSession
                    | OpCode::DeleteContainer
                    | OpCode::Error
            ) && op_name(**op) == name
        })
        .unwrap_or_else(|| panic!("unknown op name {name}"))
}

fn create(r: &CreateRequest) -> String {
    format!(
        "path={} data={} acl={} flags={}",
        r.path,
        data(&r.data),
        acl(&r.acl),
        r.flags
    )
}

fn create_ttl(r: &CreateTtlRequest) -> String {
    format!(
        "path={} data={} acl={} flags={} ttl={}",
        r.path,
        data(&r.data),
        acl(&r.acl),
        r.flags,
        r.ttl
    )
}

fn multi_op(op: &MultiOp) -> String {
    let body = match op {
        MultiOp::Create(r) | MultiOp::Create2(r) | MultiOp::CreateContainer(r) => create(r),
        MultiOp::CreateTtl(r) => create_ttl(r),
        MultiOp::Delete(r) | MultiOp::Check(r) => format!("path={} version={}", r.path, r.version),
        MultiOp::SetData(r) => format!(
            "path={} data={} version={}",
            r.path,
            data(&r.data),
            r.version
        ),
        MultiOp::GetData(r) | MultiOp::GetChildren(r) => {
            format!("path={} watch={}", r.path, r.watch)
        }
    };
    format!("{}({})", op_name(op.op_code()), body)
}

fn render_request(h: &RequestHeader, req: &Request) -> String {
    let mut s = format!("xid={} op={}", h.xid, op_name(req.op_code()));
    let body = match req {
        Request::Create(r) | Request::Create2(r) | Request::CreateContainer(r) => create(r),
        Request::CreateTtl(r) => create_ttl(r),
        Request::Delete(r) | Request::Check(r) => format!("path={} version={}", r.path, r.version),
        Request::Exists(r)
        | Request::GetData(r)
        | Request::GetChildren(r)
        | Request::GetChildren2(r) => format!("path={} watch={}", r.path, r.watch),
        Request::SetData(r) => format!(
            "path={} data={} version={}",
            r.path,
            data(&r.data),
            r.version
        ),
        Request::GetAcl(r)
        | Request::Sync(r)
        | Request::GetEphemerals(r)
        | Request::GetAllChildrenNumber(r) => format!("path={}", r.path),
        Request::SetAcl(r) => format!("path={} acl={} version={}", r.path, acl(&r.acl), r.version),
        Request::Multi(ops) | Request::MultiRead(ops) => {
            let ops: Vec<String> = ops.iter().map(multi_op).collect();
            format!("ops=[{}]", ops.join(", "))
        }
        Request::Reconfig(r) => format!(
            "joining={} leaving={} new_members={} cur_config_id={}",
            opt_str(&r.joining_servers),
            opt_str(&r.leaving_servers),
            opt_str(&r.new_members),
            r.cur_config_id
        ),
        Request::CheckWatches(r) | Request::RemoveWatches(r) => {
            format!("path={} type={}", r.path, r.watcher_type)
        }
        Request::Auth(r) => format!(
            "type={} scheme={} auth={}",
            r.auth_type,
            r.scheme,
            data(&Some(r.auth.clone()))
        ),
        Request::SetWatches(r) => format!(
            "relative_zxid={} data={} exist={} child={}",
            zxid(r.relative_zxid),
            list(&r.data_watches),
            list(&r.exist_watches),
            list(&r.child_watches)
        ),
        Request::SetWatches2(r) => format!(
            "relative_zxid={} data={} exist={} child={} persistent={} persistent_recursive={}",
            zxid(r.relative_zxid),
            list(&r.data_watches),
            list(&r.exist_watches),
            list(&r.child_watches),
            list(&r.persistent_watches),
            list(&r.persistent_recursive_watches)
        ),
        Request::Sasl(t) => format!("token={}", data(&t.token)),
        Request::AddWatch(r) => format!("path={} mode={}", r.path, r.mode),
        Request::Ping | Request::WhoAmI | Request::CloseSession => String::new(),
        other => panic!("no renderer for {other:?}"),
    };
    if !body.is_empty() {
        s.push(' ');
        s.push_str(&body);
    }
    s
}

fn multi_result(r: &MultiResult) -> String {
    match r {
        MultiResult::Create { path } => format!("create(path={path})"),
        MultiResult::Create2 { path, stat: st } => format!("create2(path={path} {})", stat(st)),
        MultiResult::Delete => "delete()".into(),
        MultiResult::SetData(st) => format!("setData({})", stat(st)),
        MultiResult::Check => "check()".into(),
        MultiResult::GetData { data: d, stat: st } => {
            format!("getData(data={} {})", data(d), stat(st))
        }
        MultiResult::GetChildren { children } => {
            format!("getChildren(children={})", list(&children.to_vec()))
        }
        MultiResult::Error(code) => format!("error({code:?})"),
    }
}

fn render_response(resp: &Response) -> String {
    match resp {
        Response::Empty => String::new(),
        Response::Create { path } | Response::Sync { path } => format!("path={path}"),
        Response::Create2 { path, stat: st } => format!("path={path} {}", stat(st)),
        Response::Stat(st) => stat(st),
        Response::Data { data: d, stat: st } => format!("data={} {}", data(d), stat(st)),
        Response::Acl { acl: a, stat: st } => format!("acl={} {}", acl(a), stat(st)),
        Response::Children { children } => format!("children={}", list(&children.to_vec())),
        Response::Children2 { children, stat: st } => {
            format!("children={} {}", list(&children.to_vec()), stat(st))
        }
        Response::Multi(results) => {
            let items: Vec<String> = results.iter().map(multi_result).collect();
            format!("results=[{}]", items.join(", "))
        }
        Response::AddWatch { err } => format!("body_err={err:?}"),
        Response::Sasl(t) => format!("token={}", data(&t.token)),
        Response::Ephemerals { paths } => format!("paths={}", list(paths)),
        Response::AllChildrenNumber { total } => format!("total={total}"),
        Response::WhoAmI { client_info } => {
            let items: Vec<String> = client_info
                .iter()
                .map(|c| format!("{}:{}", c.auth_scheme, c.user))
                .collect();
            format!("client_info={}", list(&items))
        }
        other => panic!("no renderer for {other:?}"),
    }
}

fn render_header(h: &ReplyHeader) -> String {
    format!("xid={} zxid={} err={:?}", h.xid, zxid(h.zxid), h.err)
}

fn read_only(r: Option<bool>) -> String {
    r.map_or("absent".into(), |b| b.to_string())
}

/// Compares a rendered record with its expectation, honouring `key=*` and `*` wildcards.
fn matches(expect: &str, got: &str) -> bool {
    let e: Vec<&str> = expect.split_whitespace().collect();
    let g: Vec<&str> = got.split_whitespace().collect();
    e.len() == g.len()
        && e.iter().zip(&g).all(|(e, g)| {
            if *e == "*" || e == g {
                return true;
            }
            match (e.split_once("=*"), g.split_once('=')) {
                // `key=*` and `key=*}` (last field inside a brace) match any value of that key.
                (Some((ek, rest)), Some((gk, gv))) => {
                    ek == gk && (rest.is_empty() || gv.ends_with(rest))
                }
                _ => false,
            }
        })
}

fn one_frame(bytes: &[u8], max: usize) -> Bytes {
    let mut d = FrameDecoder::new(max);
    d.extend(bytes);
    let frame = d.next_frame().expect("valid frame").expect("a whole frame");
    assert_eq!(d.buffered(), 0, "bytes left after the frame");
    frame
}

/// Decodes, renders and re-encodes one entry; returns (rendering, re-encoded bytes).
fn check(entry: &Entry) -> (String, Vec<u8>) {
    let raw = unhex(&entry.hex);
    let mut kind = entry.kind.split_whitespace();
    let mut out = Vec::new();
    let rendered = match (entry.from.as_str(), kind.next().unwrap_or("")) {
        ("client", "4lw") => {
            out = raw.clone();
            format!(
                "word={}",
                String::from_utf8(raw.clone()).expect("ascii word")
            )
        }
        ("client", "oversize") => {
            // A length prefix alone, above the server's jute.maxbuffer.
            let mut d = FrameDecoder::new(SERVER_MAX_FRAME);
            d.extend(&raw);
            let err = d.next_frame().expect_err("must be refused");
            out = raw.clone();
            match err {
                FrameError::TooLarge { len, max } => format!("refused len={len} max={max}"),
                other => format!("refused other={other:?}"),
            }
        }
        ("client", "connect") => {
            let req = decode_connect_request(one_frame(&raw, DEFAULT_MAX_FRAME)).expect("decode");
            encode_connect_request(&mut out, DEFAULT_MAX_FRAME, &req).unwrap();
            format!(
                "protocol_version={} last_zxid_seen={} timeout={} session_id={} passwd={} read_only={}",
                req.protocol_version,
                zxid(req.last_zxid_seen),
                req.timeout,
                zxid(req.session_id),
                hex(&req.passwd),
                read_only(req.read_only)
            )
        }
        ("server", "connect") => {
            let resp = decode_connect_response(one_frame(&raw, DEFAULT_MAX_FRAME)).expect("decode");
            encode_connect_response(&mut out, DEFAULT_MAX_FRAME, &resp).unwrap();
            format!(
                "protocol_version={} timeout={} session_id={} passwd={} read_only={}",
                resp.protocol_version,
                resp.timeout,
                zxid(resp.session_id),
                hex(&resp.passwd),
                read_only(resp.read_only)
            )
        }
        ("client", "request") => {
            let (h, body) = decode_request(one_frame(&raw, DEFAULT_MAX_FRAME)).expect("header");
            let req = body.expect("body");
            encode_request(&mut out, DEFAULT_MAX_FRAME, h.xid, &req).unwrap();
            render_request(&h, &req)
        }
        ("client", "unknown-op") => {
            // An opcode this crate does not know: the header decodes, the body cannot.
            let (h, body) = decode_request(one_frame(&raw, DEFAULT_MAX_FRAME)).expect("header");
            assert!(
                matches!(body, Err(DecodeError::UnknownCode { .. })),
                "[{}]: expected an unknown opcode, got {body:?}",
                entry.name
            );
            encode_frame(&mut out, DEFAULT_MAX_FRAME, |b| h.encode(b)).unwrap();
            format!("xid={} op={} unknown", h.xid, h.op)
        }
        ("server", "unknown-op") => {
            // The reply to an opcode that has no name: an error header, no body.
            let (h, _) = decode_reply_header(one_frame(&raw, DEFAULT_MAX_FRAME)).unwrap();
            assert!(!h.err.is_ok(), "[{}]: expected an error reply", entry.name);
            encode_reply(&mut out, DEFAULT_MAX_FRAME, &h, None).unwrap();
            render_header(&h)
        }
        ("server", "notification") => {
            let (h, body) = decode_reply_header(one_frame(&raw, DEFAULT_MAX_FRAME)).unwrap();
            assert_eq!(h.xid, xid::NOTIFICATION);
            let ev = decode_notification(body).expect("event");
            encode_notification(&mut out, DEFAULT_MAX_FRAME, h.zxid, &ev).unwrap();
            format!(
                "{} event={:?} state={:?} path={}",
                render_header(&h),
                ev.event_type,
                ev.state,
                ev.path
            )
        }
        ("server", "reply") => {
            let op = op_by_name(kind.next().expect("reply needs an op name"));
            let (h, body) = decode_reply_header(one_frame(&raw, DEFAULT_MAX_FRAME)).unwrap();
            match decode_reply(&h, op, body).expect("decode") {
                Ok(resp) => {
                    encode_reply(&mut out, DEFAULT_MAX_FRAME, &h, Some(&resp)).unwrap();
                    let body = render_response(&resp);
                    if body.is_empty() {
                        render_header(&h)
                    } else {
                        format!("{} {}", render_header(&h), body)
                    }
                }
                Err(_) => {
                    encode_reply(&mut out, DEFAULT_MAX_FRAME, &h, None).unwrap();
                    render_header(&h)
                }
            }
        }
        (from, kind) => panic!("[{}]: unknown from/kind {from}/{kind}", entry.name),
    };
    (rendered, out)
}

#[test]
fn golden_frames_decode_to_documented_values_and_reencode_byte_for_byte() {
    let entries = load();
    assert!(
        entries.len() >= 150,
        "frames.txt lost entries: {}",
        entries.len()
    );
    let mut failures = Vec::new();
    for entry in &entries {
        let (rendered, reencoded) = check(entry);
        if !matches(&entry.expect, &rendered) {
            failures.push(format!(
                "[{}] values differ\n  expect: {}\n  got:    {}",
                entry.name, entry.expect, rendered
            ));
        }
        if reencoded != unhex(&entry.hex) {
            failures.push(format!(
                "[{}] re-encoding differs\n  captured: {}\n  ours:     {}",
                entry.name,
                hex(&unhex(&entry.hex)),
                hex(&reencoded)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn golden_stream_decodes_frame_by_frame_at_every_split() {
    // All server frames of one session back to back, cut at every possible point: the decoder must
    // hand out the same frames whatever the split.
    let entries = load();
    let stream: Vec<u8> = entries
        .iter()
        .filter(|e| e.from == "server")
        .flat_map(|e| unhex(&e.hex))
        .collect();
    let whole: Vec<Bytes> = {
        let mut d = FrameDecoder::new(DEFAULT_MAX_FRAME);
        d.extend(&stream);
        std::iter::from_fn(|| d.next_frame().unwrap()).collect()
    };
    assert_eq!(
        whole.len(),
        entries.iter().filter(|e| e.from == "server").count()
    );
    for cut in 0..=stream.len() {
        let mut d = FrameDecoder::new(DEFAULT_MAX_FRAME);
        let mut got = Vec::new();
        for part in [&stream[..cut], &stream[cut..]] {
            d.extend(part);
            while let Some(f) = d.next_frame().unwrap() {
                got.push(f);
            }
        }
        assert_eq!(got, whole, "split at {cut}");
    }
}

#[test]
fn wildcards_match_only_what_they_should() {
    assert!(matches("a=1 b=*", "a=1 b=xyz"));
    assert!(matches("a=1 pzxid=*}", "a=1 pzxid=0x2}"));
    assert!(!matches("a=1 b=*", "a=2 b=xyz"));
    assert!(!matches("a=1 b=*", "a=1 c=xyz"));
    assert!(!matches("a=1", "a=1 b=2"));
}
