//! Proptest strategies shared by the round-trip and no-panic suites: one strategy per record of
//! `zk_core::proto`, per-opcode strategies for whole requests and replies, and byte generators for
//! hostile input (raw bytes, protocol-shaped tokens, and mutated valid encodings).
//!
//! Each test binary uses a different subset, hence the `dead_code` allowance.
#![allow(dead_code)]

use bytes::Bytes;
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use proptest::sample::{select, Index};
use zk_core::proto::*;

/// Error codes KeeperException.Code leaves unassigned (PROTOCOL.md §11).
pub const UNASSIGNED_ERROR_CODES: &[i32] = &[-104, -105, -106, -107, -109, -116, -117, -126];

// ---- primitives --------------------------------------------------------------------------------

/// Any Unicode string, biased towards the empty string and path-like ASCII.
pub fn string() -> BoxedStrategy<String> {
    prop_oneof![
        1 => Just(String::new()),
        6 => vec(any::<char>(), 0..12).prop_map(|cs| cs.into_iter().collect::<String>()),
        2 => "/[a-z0-9/._-]{0,16}",
    ]
    .boxed()
}

/// A nullable string (`ustring` that may be -1 on the wire).
pub fn opt_string() -> BoxedStrategy<Option<String>> {
    option::of(string()).boxed()
}

/// A list of strings (`vector<ustring>`), including the empty list.
pub fn strings() -> BoxedStrategy<Vec<String>> {
    vec(string(), 0..5).boxed()
}

/// A non-null buffer: empty, the 16-byte password size, or anything up to 40 bytes.
pub fn bytes() -> BoxedStrategy<Bytes> {
    prop_oneof![
        Just(Bytes::new()),
        Just(Bytes::from_static(&[0; PASSWORD_LEN])),
        vec(any::<u8>(), 0..40).prop_map(Bytes::from),
    ]
    .boxed()
}

/// A nullable buffer with null, empty and non-empty all likely.
pub fn data() -> BoxedStrategy<Option<Bytes>> {
    prop_oneof![
        Just(None),
        Just(Some(Bytes::new())),
        vec(any::<u8>(), 1..64).prop_map(|v| Some(Bytes::from(v))),
    ]
    .boxed()
}

/// Any error code: every named code, `Unknown` for the unassigned numbers, and any i32 (which
/// `from_code` maps to its canonical value, `Unknown(n)` for everything unnamed).
pub fn error_code() -> BoxedStrategy<ErrorCode> {
    prop_oneof![
        3 => select(ErrorCode::KNOWN),
        2 => select(UNASSIGNED_ERROR_CODES).prop_map(ErrorCode::Unknown),
        1 => any::<i32>().prop_map(ErrorCode::from_code),
    ]
    .boxed()
}

/// Any error code except Ok.
pub fn failure_code() -> BoxedStrategy<ErrorCode> {
    error_code().prop_filter("not OK", |c| !c.is_ok()).boxed()
}

/// The codes a multi result of type -1 carries: Ok before the failing op, RuntimeInconsistency
/// after it, and the real error (anything) for the failing one.
pub fn multi_error_code() -> BoxedStrategy<ErrorCode> {
    prop_oneof![
        Just(ErrorCode::Ok),
        Just(ErrorCode::RuntimeInconsistency),
        error_code(),
    ]
    .boxed()
}

/// Any event type, named or `Unknown` (including the unused numbers 0 and 8).
pub fn event_type() -> BoxedStrategy<EventType> {
    prop_oneof![
        3 => select(EventType::KNOWN),
        1 => select(vec![0, 8, 100, -2]).prop_map(EventType::Unknown),
        1 => any::<i32>().prop_map(EventType::from_code),
    ]
    .boxed()
}

/// Any keeper state, named or `Unknown` (including the unused number 2).
pub fn keeper_state() -> BoxedStrategy<KeeperState> {
    prop_oneof![
        3 => select(KeeperState::KNOWN),
        1 => select(vec![2, 8, -2, -113]).prop_map(KeeperState::Unknown),
        1 => any::<i32>().prop_map(KeeperState::from_code),
    ]
    .boxed()
}

/// A raw i32 field that names a closed vocabulary: usually a valid code, sometimes anything
/// (records keep these raw so a server can refuse them).
fn raw_code(valid: Vec<i32>) -> BoxedStrategy<i32> {
    prop_oneof![3 => select(valid), 1 => any::<i32>()].boxed()
}

/// `CreateRequest.flags`.
pub fn create_flags() -> BoxedStrategy<i32> {
    raw_code(CreateMode::ALL.iter().map(|m| m.code()).collect())
}

/// `WatchesRequest.watcher_type`.
pub fn watcher_type() -> BoxedStrategy<i32> {
    raw_code(WatcherType::ALL.iter().map(|m| m.code()).collect())
}

/// `AddWatchRequest.mode`.
pub fn add_watch_mode() -> BoxedStrategy<i32> {
    raw_code(AddWatchMode::ALL.iter().map(|m| m.code()).collect())
}

// ---- shared records ----------------------------------------------------------------------------

/// Any Stat.
pub fn stat() -> BoxedStrategy<Stat> {
    (
        any::<[i64; 4]>(),
        any::<[i32; 3]>(),
        any::<i64>(),
        any::<[i32; 2]>(),
        any::<i64>(),
    )
        .prop_map(|(z, v, ephemeral_owner, dn, pzxid)| Stat {
            czxid: z[0],
            mzxid: z[1],
            ctime: z[2],
            mtime: z[3],
            version: v[0],
            cversion: v[1],
            aversion: v[2],
            ephemeral_owner,
            data_length: dn[0],
            num_children: dn[1],
            pzxid,
        })
        .boxed()
}

/// Any Id.
pub fn id() -> BoxedStrategy<Id> {
    (string(), string())
        .prop_map(|(s, i)| Id::new(s, i))
        .boxed()
}

/// Any ACL entry; perms are raw bits, so any i32.
pub fn acl() -> BoxedStrategy<Acl> {
    (prop_oneof![0..=31i32, any::<i32>()], id())
        .prop_map(|(p, id)| Acl::new(Perms(p), id))
        .boxed()
}

/// An ACL list, including the empty one.
pub fn acl_list() -> BoxedStrategy<Vec<Acl>> {
    vec(acl(), 0..4).boxed()
}

/// Any ClientInfo.
pub fn client_info() -> BoxedStrategy<ClientInfo> {
    (string(), string())
        .prop_map(|(auth_scheme, user)| ClientInfo { auth_scheme, user })
        .boxed()
}

// ---- handshake and headers ---------------------------------------------------------------------

/// Any ConnectRequest, with readOnly present (true or false) or absent.
pub fn connect_request() -> BoxedStrategy<ConnectRequest> {
    (
        any::<i32>(),
        any::<i64>(),
        any::<i32>(),
        any::<i64>(),
        bytes(),
        option::of(any::<bool>()),
    )
        .prop_map(
            |(protocol_version, last_zxid_seen, timeout, session_id, passwd, read_only)| {
                ConnectRequest {
                    protocol_version,
                    last_zxid_seen,
                    timeout,
                    session_id,
                    passwd,
                    read_only,
                }
            },
        )
        .boxed()
}

/// Any ConnectResponse, with readOnly present (true or false) or absent.
pub fn connect_response() -> BoxedStrategy<ConnectResponse> {
    (
        any::<i32>(),
        any::<i32>(),
        any::<i64>(),
        bytes(),
        option::of(any::<bool>()),
    )
        .prop_map(
            |(protocol_version, timeout, session_id, passwd, read_only)| ConnectResponse {
                protocol_version,
                timeout,
                session_id,
                passwd,
                read_only,
            },
        )
        .boxed()
}

/// Any xid, biased towards the special ones.
pub fn xid() -> BoxedStrategy<i32> {
    prop_oneof![
        select(vec![
            xid::NOTIFICATION,
            xid::PING,
            xid::AUTH,
            xid::SET_WATCHES,
            0,
            1
        ]),
        any::<i32>(),
    ]
    .boxed()
}

/// Any RequestHeader (the op is raw, so any i32).
pub fn request_header() -> BoxedStrategy<RequestHeader> {
    (xid(), any::<i32>())
        .prop_map(|(xid, op)| RequestHeader { xid, op })
        .boxed()
}

/// Any ReplyHeader.
pub fn reply_header() -> BoxedStrategy<ReplyHeader> {
    (xid(), any::<i64>(), error_code())
        .prop_map(|(xid, zxid, err)| ReplyHeader { xid, zxid, err })
        .boxed()
}

/// Any WatcherEvent.
pub fn watcher_event() -> BoxedStrategy<WatcherEvent> {
    (event_type(), keeper_state(), string())
        .prop_map(|(event_type, state, path)| WatcherEvent {
            event_type,
            state,
            path,
        })
        .boxed()
}

// ---- request records ---------------------------------------------------------------------------

/// Any CreateRequest.
pub fn create_request() -> BoxedStrategy<CreateRequest> {
    (string(), data(), acl_list(), create_flags())
        .prop_map(|(path, data, acl, flags)| CreateRequest {
            path,
            data,
            acl: acl.into(),
            flags,
        })
        .boxed()
}

/// Any CreateTtlRequest.
pub fn create_ttl_request() -> BoxedStrategy<CreateTtlRequest> {
    (
        string(),
        data(),
        acl_list(),
        create_flags(),
        prop_oneof![1..=MAX_TTL_MS, any::<i64>()],
    )
        .prop_map(|(path, data, acl, flags, ttl)| CreateTtlRequest {
            path,
            data,
            acl: acl.into(),
            flags,
            ttl,
        })
        .boxed()
}

/// Any PathVersionRequest (delete, check).
pub fn path_version_request() -> BoxedStrategy<PathVersionRequest> {
    (string(), any::<i32>())
        .prop_map(|(path, version)| PathVersionRequest { path, version })
        .boxed()
}

/// Any PathWatchRequest (exists, getData, getChildren, getChildren2).
pub fn path_watch_request() -> BoxedStrategy<PathWatchRequest> {
    (string(), any::<bool>())
        .prop_map(|(path, watch)| PathWatchRequest { path, watch })
        .boxed()
}

/// Any PathRequest.
pub fn path_request() -> BoxedStrategy<PathRequest> {
    string().prop_map(|path| PathRequest { path }).boxed()
}

/// Any SetDataRequest.
pub fn set_data_request() -> BoxedStrategy<SetDataRequest> {
    (string(), data(), any::<i32>())
        .prop_map(|(path, data, version)| SetDataRequest {
            path,
            data,
            version,
        })
        .boxed()
}

/// Any SetAclRequest.
pub fn set_acl_request() -> BoxedStrategy<SetAclRequest> {
    (string(), acl_list(), any::<i32>())
        .prop_map(|(path, acl, version)| SetAclRequest { path, acl, version })
        .boxed()
}

/// Any ReconfigRequest, each string null, empty or not.
pub fn reconfig_request() -> BoxedStrategy<ReconfigRequest> {
    (opt_string(), opt_string(), opt_string(), any::<i64>())
        .prop_map(
            |(joining_servers, leaving_servers, new_members, cur_config_id)| ReconfigRequest {
                joining_servers,
                leaving_servers,
                new_members,
                cur_config_id,
            },
        )
        .boxed()
}

/// Any WatchesRequest (checkWatches, removeWatches).
pub fn watches_request() -> BoxedStrategy<WatchesRequest> {
    (string(), watcher_type())
        .prop_map(|(path, watcher_type)| WatchesRequest { path, watcher_type })
        .boxed()
}

/// Any AddWatchRequest.
pub fn add_watch_request() -> BoxedStrategy<AddWatchRequest> {
    (string(), add_watch_mode())
        .prop_map(|(path, mode)| AddWatchRequest { path, mode })
        .boxed()
}

/// Any AuthPacket.
pub fn auth_packet() -> BoxedStrategy<AuthPacket> {
    (prop_oneof![Just(0), any::<i32>()], string(), bytes())
        .prop_map(|(auth_type, scheme, auth)| AuthPacket {
            auth_type,
            scheme,
            auth,
        })
        .boxed()
}

/// Any SaslToken, null included.
pub fn sasl_token() -> BoxedStrategy<SaslToken> {
    data().prop_map(|token| SaslToken { token }).boxed()
}

/// Any SetWatches.
pub fn set_watches() -> BoxedStrategy<SetWatches> {
    (any::<i64>(), strings(), strings(), strings())
        .prop_map(
            |(relative_zxid, data_watches, exist_watches, child_watches)| SetWatches {
                relative_zxid,
                data_watches,
                exist_watches,
                child_watches,
            },
        )
        .boxed()
}

/// Any SetWatches2.
pub fn set_watches2() -> BoxedStrategy<SetWatches2> {
    (
        any::<i64>(),
        strings(),
        strings(),
        strings(),
        strings(),
        strings(),
    )
        .prop_map(|(relative_zxid, d, e, c, p, pr)| SetWatches2 {
            relative_zxid,
            data_watches: d,
            exist_watches: e,
            child_watches: c,
            persistent_watches: p,
            persistent_recursive_watches: pr,
        })
        .boxed()
}

/// Any MultiHeader.
pub fn multi_header() -> BoxedStrategy<MultiHeader> {
    (any::<i32>(), any::<bool>(), any::<i32>())
        .prop_map(|(op_type, done, err)| MultiHeader { op_type, done, err })
        .boxed()
}

// ---- multi ----------------------------------------------------------------------------------------

/// Number of [`MultiOp`] variants; [`multi_op_variant`] fails to compile if one is added.
pub const MULTI_OP_VARIANTS: usize = 9;

/// The index of a MultiOp's variant (an exhaustive match, no wildcard).
pub fn multi_op_variant(op: &MultiOp) -> usize {
    match op {
        MultiOp::Create(_) => 0,
        MultiOp::Create2(_) => 1,
        MultiOp::CreateContainer(_) => 2,
        MultiOp::CreateTtl(_) => 3,
        MultiOp::Delete(_) => 4,
        MultiOp::SetData(_) => 5,
        MultiOp::Check(_) => 6,
        MultiOp::GetData(_) => 7,
        MultiOp::GetChildren(_) => 8,
    }
}

/// Any MultiOp (all 9 variants).
pub fn multi_op() -> BoxedStrategy<MultiOp> {
    prop_oneof![
        create_request().prop_map(MultiOp::Create),
        create_request().prop_map(MultiOp::Create2),
        create_request().prop_map(MultiOp::CreateContainer),
        create_ttl_request().prop_map(MultiOp::CreateTtl),
        path_version_request().prop_map(MultiOp::Delete),
        set_data_request().prop_map(MultiOp::SetData),
        path_version_request().prop_map(MultiOp::Check),
        path_watch_request().prop_map(MultiOp::GetData),
        path_watch_request().prop_map(MultiOp::GetChildren),
    ]
    .boxed()
}

/// A list of MultiOps, including the empty transaction. Writes and reads are mixed freely: the
/// codec does not police which container an op sits in, the server does.
pub fn multi_ops() -> BoxedStrategy<Vec<MultiOp>> {
    vec(multi_op(), 0..5).boxed()
}

/// Number of [`MultiResult`] variants; [`multi_result_variant`] fails to compile if one is added.
pub const MULTI_RESULT_VARIANTS: usize = 8;

/// The index of a MultiResult's variant (an exhaustive match, no wildcard).
pub fn multi_result_variant(res: &MultiResult) -> usize {
    match res {
        MultiResult::Create { .. } => 0,
        MultiResult::Create2 { .. } => 1,
        MultiResult::Delete => 2,
        MultiResult::SetData(_) => 3,
        MultiResult::Check => 4,
        MultiResult::GetData { .. } => 5,
        MultiResult::GetChildren { .. } => 6,
        MultiResult::Error(_) => 7,
    }
}

/// Any MultiResult (all 8 variants; errors include Ok, RuntimeInconsistency and real errors).
pub fn multi_result() -> BoxedStrategy<MultiResult> {
    prop_oneof![
        string().prop_map(|path| MultiResult::Create { path }),
        (string(), stat()).prop_map(|(path, stat)| MultiResult::Create2 { path, stat }),
        Just(MultiResult::Delete),
        stat().prop_map(MultiResult::SetData),
        Just(MultiResult::Check),
        (data(), stat()).prop_map(|(data, stat)| MultiResult::GetData { data, stat }),
        strings().prop_map(|children| MultiResult::GetChildren {
            children: children.into(),
        }),
        multi_error_code().prop_map(MultiResult::Error),
    ]
    .boxed()
}

/// A list of MultiResults, including the empty one.
pub fn multi_results() -> BoxedStrategy<Vec<MultiResult>> {
    vec(multi_result(), 0..5).boxed()
}

// ---- whole requests and replies ----------------------------------------------------------------

/// A strategy for the request body of `op`, or `None` if no client sends `op`.
///
/// The match is on [`OpCode`] and must agree with `Request::decode`; the round-trip suite checks
/// that every opcode `Request::decode` accepts has a strategy here.
pub fn request_for(op: OpCode) -> Option<BoxedStrategy<Request>> {
    Some(match op {
        OpCode::Create => create_request().prop_map(Request::Create).boxed(),
        OpCode::Create2 => create_request().prop_map(Request::Create2).boxed(),
        OpCode::CreateContainer => create_request().prop_map(Request::CreateContainer).boxed(),
        OpCode::CreateTtl => create_ttl_request().prop_map(Request::CreateTtl).boxed(),
        OpCode::Delete => path_version_request().prop_map(Request::Delete).boxed(),
        OpCode::Exists => path_watch_request().prop_map(Request::Exists).boxed(),
        OpCode::GetData => path_watch_request().prop_map(Request::GetData).boxed(),
        OpCode::SetData => set_data_request().prop_map(Request::SetData).boxed(),
        OpCode::GetAcl => path_request().prop_map(Request::GetAcl).boxed(),
        OpCode::SetAcl => set_acl_request().prop_map(Request::SetAcl).boxed(),
        OpCode::GetChildren => path_watch_request().prop_map(Request::GetChildren).boxed(),
        OpCode::Sync => path_request().prop_map(Request::Sync).boxed(),
        OpCode::Ping => Just(Request::Ping).boxed(),
        OpCode::GetChildren2 => path_watch_request().prop_map(Request::GetChildren2).boxed(),
        OpCode::Check => path_version_request().prop_map(Request::Check).boxed(),
        OpCode::Multi => multi_ops().prop_map(Request::Multi).boxed(),
        OpCode::Reconfig => reconfig_request().prop_map(Request::Reconfig).boxed(),
        OpCode::CheckWatches => watches_request().prop_map(Request::CheckWatches).boxed(),
        OpCode::RemoveWatches => watches_request().prop_map(Request::RemoveWatches).boxed(),
        OpCode::MultiRead => multi_ops().prop_map(Request::MultiRead).boxed(),
        OpCode::Auth => auth_packet().prop_map(Request::Auth).boxed(),
        OpCode::SetWatches => set_watches().prop_map(Request::SetWatches).boxed(),
        OpCode::Sasl => sasl_token().prop_map(Request::Sasl).boxed(),
        OpCode::GetEphemerals => path_request().prop_map(Request::GetEphemerals).boxed(),
        OpCode::GetAllChildrenNumber => path_request()
            .prop_map(Request::GetAllChildrenNumber)
            .boxed(),
        OpCode::SetWatches2 => set_watches2().prop_map(Request::SetWatches2).boxed(),
        OpCode::AddWatch => add_watch_request().prop_map(Request::AddWatch).boxed(),
        OpCode::WhoAmI => Just(Request::WhoAmI).boxed(),
        OpCode::CloseSession => Just(Request::CloseSession).boxed(),
        _ => return None,
    })
}

/// Every opcode a client sends (those with a [`request_for`] strategy).
pub fn request_ops() -> Vec<OpCode> {
    OpCode::ALL
        .iter()
        .copied()
        .filter(|op| request_for(*op).is_some())
        .collect()
}

/// An opcode a client sends and a request for it.
pub fn op_and_request() -> BoxedStrategy<(OpCode, Request)> {
    select(request_ops())
        .prop_flat_map(|op| (Just(op), request_for(op).expect("request op")))
        .boxed()
}

/// A strategy for the body of a successful reply to `op`, or `None` if `op` is never answered.
///
/// Mirrors `Response::decode`: each opcode gets the one shape its reply has.
pub fn response_for(op: OpCode) -> Option<BoxedStrategy<Response>> {
    Some(match op {
        OpCode::Delete
        | OpCode::Check
        | OpCode::CheckWatches
        | OpCode::RemoveWatches
        | OpCode::Auth
        | OpCode::SetWatches
        | OpCode::SetWatches2
        | OpCode::Ping
        | OpCode::CloseSession => Just(Response::Empty).boxed(),
        OpCode::Create => string().prop_map(|path| Response::Create { path }).boxed(),
        OpCode::Create2 | OpCode::CreateContainer | OpCode::CreateTtl => (string(), stat())
            .prop_map(|(path, stat)| Response::Create2 { path, stat })
            .boxed(),
        OpCode::Exists | OpCode::SetData | OpCode::SetAcl => {
            stat().prop_map(Response::Stat).boxed()
        }
        OpCode::GetData | OpCode::Reconfig => (data(), stat())
            .prop_map(|(data, stat)| Response::Data { data, stat })
            .boxed(),
        OpCode::GetAcl => (acl_list(), stat())
            .prop_map(|(acl, stat)| Response::Acl { acl, stat })
            .boxed(),
        OpCode::GetChildren => strings()
            .prop_map(|children| Response::Children {
                children: children.into(),
            })
            .boxed(),
        OpCode::GetChildren2 => (strings(), stat())
            .prop_map(|(children, stat)| Response::Children2 {
                children: children.into(),
                stat,
            })
            .boxed(),
        OpCode::Sync => string().prop_map(|path| Response::Sync { path }).boxed(),
        OpCode::Multi | OpCode::MultiRead => multi_results().prop_map(Response::Multi).boxed(),
        OpCode::AddWatch => error_code()
            .prop_map(|err| Response::AddWatch { err })
            .boxed(),
        OpCode::Sasl => sasl_token().prop_map(Response::Sasl).boxed(),
        OpCode::GetEphemerals => strings()
            .prop_map(|paths| Response::Ephemerals { paths })
            .boxed(),
        OpCode::GetAllChildrenNumber => any::<i32>()
            .prop_map(|total| Response::AllChildrenNumber { total })
            .boxed(),
        OpCode::WhoAmI => vec(client_info(), 0..4)
            .prop_map(|client_info| Response::WhoAmI { client_info })
            .boxed(),
        _ => return None,
    })
}

/// Every opcode whose reply has a body shape (those with a [`response_for`] strategy).
pub fn response_ops() -> Vec<OpCode> {
    OpCode::ALL
        .iter()
        .copied()
        .filter(|op| response_for(*op).is_some())
        .collect()
}

/// An answered opcode and a successful reply body for it.
pub fn op_and_response() -> BoxedStrategy<(OpCode, Response)> {
    select(response_ops())
        .prop_flat_map(|op| (Just(op), response_for(op).expect("answered op")))
        .boxed()
}

// ---- encodings -----------------------------------------------------------------------------------

/// The body of `req` (no header, no length prefix).
pub fn request_body(req: &Request) -> Vec<u8> {
    let mut out = Vec::new();
    req.encode_body(&mut out);
    out
}

/// The body of `resp` (no header, no length prefix).
pub fn response_body(resp: &Response) -> Vec<u8> {
    let mut out = Vec::new();
    resp.encode(&mut out);
    out
}

/// A request frame's payload: RequestHeader and body, no length prefix.
pub fn request_payload(xid: i32, req: &Request) -> Vec<u8> {
    let mut out = Vec::new();
    RequestHeader {
        xid,
        op: req.op_code().code(),
    }
    .encode(&mut out);
    req.encode_body(&mut out);
    out
}

/// A successful reply frame's payload: ReplyHeader (err 0) and body, no length prefix.
pub fn reply_payload(xid: i32, zxid: i64, resp: &Response) -> Vec<u8> {
    let mut out = Vec::new();
    ReplyHeader {
        xid,
        zxid,
        err: ErrorCode::Ok,
    }
    .encode(&mut out);
    resp.encode(&mut out);
    out
}

/// The payload of the single frame in `stream` (which must hold exactly one whole frame).
pub fn only_frame(stream: &[u8]) -> Bytes {
    let mut d = FrameDecoder::new(DEFAULT_MAX_FRAME);
    d.extend(stream);
    let frame = d
        .next_frame()
        .expect("valid frame prefix")
        .expect("a whole frame");
    assert_eq!(d.buffered(), 0, "stream held more than one frame");
    frame
}

/// A reader over a copy of `b`.
pub fn reader(b: &[u8]) -> Reader {
    Reader::new(Bytes::copy_from_slice(b))
}

/// Valid encodings of every kind of payload and body this codec reads: request frames and
/// bodies, reply frames and bodies, connect records, notifications, multi bodies.
pub fn valid_encoding() -> BoxedStrategy<Vec<u8>> {
    prop_oneof![
        (xid(), op_and_request()).prop_map(|(x, (_, req))| request_payload(x, &req)),
        op_and_request().prop_map(|(_, req)| request_body(&req)),
        (xid(), any::<i64>(), op_and_response())
            .prop_map(|(x, z, (_, resp))| reply_payload(x, z, &resp)),
        op_and_response().prop_map(|(_, resp)| response_body(&resp)),
        connect_request().prop_map(|r| {
            let mut out = Vec::new();
            r.encode(&mut out);
            out
        }),
        connect_response().prop_map(|r| {
            let mut out = Vec::new();
            r.encode(&mut out);
            out
        }),
        (any::<i64>(), watcher_event()).prop_map(|(zxid, ev)| {
            let mut out = Vec::new();
            ReplyHeader {
                xid: xid::NOTIFICATION,
                zxid,
                err: ErrorCode::Ok,
            }
            .encode(&mut out);
            ev.encode(&mut out);
            out
        }),
        stat().prop_map(|s| {
            let mut out = Vec::new();
            s.encode(&mut out);
            out
        }),
        multi_ops().prop_map(|ops| {
            let mut out = Vec::new();
            MultiOp::encode_all(&ops, &mut out);
            out
        }),
        multi_results().prop_map(|results| {
            let mut out = Vec::new();
            MultiResult::encode_all(&results, &mut out);
            out
        }),
    ]
    .boxed()
}

// ---- hostile bytes -------------------------------------------------------------------------------

fn be(n: i32) -> Vec<u8> {
    n.to_be_bytes().to_vec()
}

/// Protocol-shaped garbage: a concatenation of tokens that look like jute fields (small and
/// hostile lengths, opcodes, error codes, booleans, multi headers, length-prefixed strings that
/// may or may not be UTF-8) and raw bytes, so decoders get past their first field.
pub fn hostile_bytes() -> BoxedStrategy<Vec<u8>> {
    let opcodes: Vec<i32> = OpCode::ALL.iter().map(|op| op.code()).collect();
    let token = prop_oneof![
        4 => vec(any::<u8>(), 0..8),
        3 => (-3i32..=20).prop_map(be),
        1 => select(vec![i32::MAX, i32::MIN, 0x0010_0000, -2, -1, 0]).prop_map(be),
        2 => select(opcodes.clone()).prop_map(be),
        1 => select(vec![0u8, 1, 2, 0xff]).prop_map(|b| vec![b]),
        2 => (select(opcodes), any::<bool>(), -2i32..=0).prop_map(|(op, done, err)| {
            let mut out = Vec::new();
            MultiHeader { op_type: op, done, err }.encode(&mut out);
            out
        }),
        1 => Just(vec![0xff, 0xff, 0xff, 0xff, 1, 0xff, 0xff, 0xff, 0xff]),
        2 => vec(any::<u8>(), 0..6).prop_map(|b| {
            let mut out = be(b.len() as i32);
            out.extend(b);
            out
        }),
        1 => string().prop_map(|s| {
            let mut out = be(s.len() as i32);
            out.extend(s.as_bytes());
            out
        }),
    ];
    vec(token, 0..20).prop_map(|ts| ts.concat()).boxed()
}

/// `base` with a few bytes overwritten, then sometimes truncated, then sometimes extended. Most
/// results are still close enough to valid to get deep into a decoder, and a fair share still
/// decode.
pub fn mutated(base: BoxedStrategy<Vec<u8>>) -> BoxedStrategy<Vec<u8>> {
    let byte = prop_oneof![any::<u8>(), select(vec![0u8, 1, 2, 0x7f, 0x80, 0xff])];
    (
        base,
        vec((any::<Index>(), byte), 0..3),
        prop_oneof![3 => Just(None), 1 => any::<Index>().prop_map(Some)],
        prop_oneof![3 => Just(Vec::new()), 1 => vec(any::<u8>(), 1..4)],
    )
        .prop_map(|(mut b, writes, cut, tail)| {
            for (at, v) in writes {
                if !b.is_empty() {
                    let i = at.index(b.len());
                    b[i] = v;
                }
            }
            if let Some(cut) = cut {
                b.truncate(cut.index(b.len() + 1));
            }
            b.extend(tail);
            b
        })
        .boxed()
}

/// Any bytes at all: uniformly random, protocol-shaped, or mutated valid encodings.
pub fn arbitrary_bytes() -> BoxedStrategy<Vec<u8>> {
    prop_oneof![
        2 => vec(any::<u8>(), 0..200),
        2 => hostile_bytes(),
        3 => mutated(valid_encoding()),
        1 => valid_encoding(),
    ]
    .boxed()
}
