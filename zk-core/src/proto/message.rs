//! Whole messages: a [`Request`] for every opcode a client sends and a [`Response`] for every reply
//! body, with the frame-level encoders and decoders for both directions.
//!
//! A reply carries no type on the wire, so decoding a reply needs the opcode of the request it
//! answers ([`decode_reply`]). A server (or a fuzzer) decodes requests with [`decode_request`] and
//! encodes replies with [`encode_reply`]; a client does the reverse. Both use the same types.

use bytes::{BufMut, Bytes};

use super::frame::encode_frame;
use super::jute::{put_buffer, put_string, put_string_vec, Reader};
use super::multi::{MultiOp, MultiResult};
use super::names::ChildNames;
use super::records::{
    AddWatchRequest, AuthPacket, ConnectRequest, ConnectResponse, CreateRequest, CreateTtlRequest,
    PathRequest, PathVersionRequest, PathWatchRequest, ReconfigRequest, ReplyHeader, RequestHeader,
    SaslToken, SetAclRequest, SetDataRequest, SetWatches, SetWatches2, WatcherEvent,
    WatchesRequest,
};
use super::types::{Acl, ClientInfo, ErrorCode, OpCode, Stat};
use super::{DecodeError, EncodeError};

/// Special xids (PROTOCOL.md §5.3).
pub mod xid {
    /// Watch notifications, server to client.
    pub const NOTIFICATION: i32 = -1;
    /// Pings, both ways.
    pub const PING: i32 = -2;
    /// Auth packets, both ways.
    pub const AUTH: i32 = -4;
    /// setWatches and setWatches2, both ways.
    pub const SET_WATCHES: i32 = -8;
}

/// A request body, one variant per opcode a client may send.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Request {
    /// create (1).
    Create(CreateRequest),
    /// create2 (15): create returning the Stat.
    Create2(CreateRequest),
    /// createContainer (19).
    CreateContainer(CreateRequest),
    /// createTTL (21).
    CreateTtl(CreateTtlRequest),
    /// delete (2).
    Delete(PathVersionRequest),
    /// exists (3).
    Exists(PathWatchRequest),
    /// getData (4).
    GetData(PathWatchRequest),
    /// setData (5).
    SetData(SetDataRequest),
    /// getACL (6).
    GetAcl(PathRequest),
    /// setACL (7).
    SetAcl(SetAclRequest),
    /// getChildren (8).
    GetChildren(PathWatchRequest),
    /// sync (9).
    Sync(PathRequest),
    /// ping (11).
    Ping,
    /// getChildren2 (12).
    GetChildren2(PathWatchRequest),
    /// check (13): only meaningful inside multi; see PROTOCOL.md §17 before sending it alone.
    Check(PathVersionRequest),
    /// multi (14).
    Multi(Vec<MultiOp>),
    /// reconfig (16).
    Reconfig(ReconfigRequest),
    /// checkWatches (17).
    CheckWatches(WatchesRequest),
    /// removeWatches (18).
    RemoveWatches(WatchesRequest),
    /// multiRead (22).
    MultiRead(Vec<MultiOp>),
    /// auth (100).
    Auth(AuthPacket),
    /// setWatches (101).
    SetWatches(SetWatches),
    /// sasl (102).
    Sasl(SaslToken),
    /// getEphemerals (103): the path is a prefix.
    GetEphemerals(PathRequest),
    /// getAllChildrenNumber (104).
    GetAllChildrenNumber(PathRequest),
    /// setWatches2 (105).
    SetWatches2(SetWatches2),
    /// addWatch (106).
    AddWatch(AddWatchRequest),
    /// whoAmI (107).
    WhoAmI,
    /// closeSession (-11).
    CloseSession,
}

impl Request {
    /// The opcode this request is sent with.
    pub fn op_code(&self) -> OpCode {
        match self {
            Request::Create(_) => OpCode::Create,
            Request::Create2(_) => OpCode::Create2,
            Request::CreateContainer(_) => OpCode::CreateContainer,
            Request::CreateTtl(_) => OpCode::CreateTtl,
            Request::Delete(_) => OpCode::Delete,
            Request::Exists(_) => OpCode::Exists,
            Request::GetData(_) => OpCode::GetData,
            Request::SetData(_) => OpCode::SetData,
            Request::GetAcl(_) => OpCode::GetAcl,
            Request::SetAcl(_) => OpCode::SetAcl,
            Request::GetChildren(_) => OpCode::GetChildren,
            Request::Sync(_) => OpCode::Sync,
            Request::Ping => OpCode::Ping,
            Request::GetChildren2(_) => OpCode::GetChildren2,
            Request::Check(_) => OpCode::Check,
            Request::Multi(_) => OpCode::Multi,
            Request::Reconfig(_) => OpCode::Reconfig,
            Request::CheckWatches(_) => OpCode::CheckWatches,
            Request::RemoveWatches(_) => OpCode::RemoveWatches,
            Request::MultiRead(_) => OpCode::MultiRead,
            Request::Auth(_) => OpCode::Auth,
            Request::SetWatches(_) => OpCode::SetWatches,
            Request::Sasl(_) => OpCode::Sasl,
            Request::GetEphemerals(_) => OpCode::GetEphemerals,
            Request::GetAllChildrenNumber(_) => OpCode::GetAllChildrenNumber,
            Request::SetWatches2(_) => OpCode::SetWatches2,
            Request::AddWatch(_) => OpCode::AddWatch,
            Request::WhoAmI => OpCode::WhoAmI,
            Request::CloseSession => OpCode::CloseSession,
        }
    }

    /// Encodes the body (everything after the RequestHeader).
    pub fn encode_body(&self, out: &mut impl BufMut) {
        match self {
            Request::Create(r) | Request::Create2(r) | Request::CreateContainer(r) => r.encode(out),
            Request::CreateTtl(r) => r.encode(out),
            Request::Delete(r) | Request::Check(r) => r.encode(out),
            Request::Exists(r)
            | Request::GetData(r)
            | Request::GetChildren(r)
            | Request::GetChildren2(r) => r.encode(out),
            Request::SetData(r) => r.encode(out),
            Request::GetAcl(r)
            | Request::Sync(r)
            | Request::GetEphemerals(r)
            | Request::GetAllChildrenNumber(r) => r.encode(out),
            Request::SetAcl(r) => r.encode(out),
            Request::Multi(ops) | Request::MultiRead(ops) => MultiOp::encode_all(ops, out),
            Request::Reconfig(r) => r.encode(out),
            Request::CheckWatches(r) | Request::RemoveWatches(r) => r.encode(out),
            Request::Auth(r) => r.encode(out),
            Request::SetWatches(r) => r.encode(out),
            Request::Sasl(r) => r.encode(out),
            Request::SetWatches2(r) => r.encode(out),
            Request::AddWatch(r) => r.encode(out),
            Request::Ping | Request::WhoAmI | Request::CloseSession => {}
        }
    }

    /// Decodes a request body for `op`, requiring that it uses up the input.
    ///
    /// Errors with [`DecodeError::NotARequest`] for opcodes no client sends (notification,
    /// createSession, deleteContainer, error), and on any malformed or over-long body.
    pub fn decode(op: OpCode, mut r: Reader) -> Result<Self, DecodeError> {
        let req = match op {
            OpCode::Create => Request::Create(CreateRequest::decode(&mut r)?),
            OpCode::Create2 => Request::Create2(CreateRequest::decode(&mut r)?),
            OpCode::CreateContainer => Request::CreateContainer(CreateRequest::decode(&mut r)?),
            OpCode::CreateTtl => Request::CreateTtl(CreateTtlRequest::decode(&mut r)?),
            OpCode::Delete => Request::Delete(PathVersionRequest::decode(&mut r)?),
            OpCode::Exists => Request::Exists(PathWatchRequest::decode(&mut r)?),
            OpCode::GetData => Request::GetData(PathWatchRequest::decode(&mut r)?),
            OpCode::SetData => Request::SetData(SetDataRequest::decode(&mut r)?),
            OpCode::GetAcl => Request::GetAcl(PathRequest::decode(&mut r)?),
            OpCode::SetAcl => Request::SetAcl(SetAclRequest::decode(&mut r)?),
            OpCode::GetChildren => Request::GetChildren(PathWatchRequest::decode(&mut r)?),
            OpCode::Sync => Request::Sync(PathRequest::decode(&mut r)?),
            OpCode::Ping => Request::Ping,
            OpCode::GetChildren2 => Request::GetChildren2(PathWatchRequest::decode(&mut r)?),
            OpCode::Check => Request::Check(PathVersionRequest::decode(&mut r)?),
            OpCode::Multi => Request::Multi(MultiOp::decode_all(&mut r)?),
            OpCode::Reconfig => Request::Reconfig(ReconfigRequest::decode(&mut r)?),
            OpCode::CheckWatches => Request::CheckWatches(WatchesRequest::decode(&mut r)?),
            OpCode::RemoveWatches => Request::RemoveWatches(WatchesRequest::decode(&mut r)?),
            OpCode::MultiRead => Request::MultiRead(MultiOp::decode_all(&mut r)?),
            OpCode::Auth => Request::Auth(AuthPacket::decode(&mut r)?),
            OpCode::SetWatches => Request::SetWatches(SetWatches::decode(&mut r)?),
            OpCode::Sasl => Request::Sasl(SaslToken::decode(&mut r)?),
            OpCode::GetEphemerals => Request::GetEphemerals(PathRequest::decode(&mut r)?),
            OpCode::GetAllChildrenNumber => {
                Request::GetAllChildrenNumber(PathRequest::decode(&mut r)?)
            }
            OpCode::SetWatches2 => Request::SetWatches2(SetWatches2::decode(&mut r)?),
            OpCode::AddWatch => Request::AddWatch(AddWatchRequest::decode(&mut r)?),
            OpCode::WhoAmI => Request::WhoAmI,
            OpCode::CloseSession => Request::CloseSession,
            OpCode::Notification
            | OpCode::CreateSession
            | OpCode::DeleteContainer
            | OpCode::Error => return Err(DecodeError::NotARequest(op)),
        };
        r.finish()?;
        Ok(req)
    }
}

/// A successful reply body. Which variant a reply has is fixed by the opcode it answers.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Response {
    /// No body: delete, check, checkWatches, removeWatches, auth, setWatches(2), ping, closeSession.
    Empty,
    /// create (1): the path created, with any sequence suffix.
    Create {
        /// The path created.
        path: String,
    },
    /// create2, createContainer, createTTL: the path created and its Stat.
    Create2 {
        /// The path created.
        path: String,
        /// The new node's Stat.
        stat: Stat,
    },
    /// exists, setData, setACL: the node's Stat.
    Stat(Stat),
    /// getData, reconfig: data and Stat.
    Data {
        /// The data; `None` for a null buffer.
        data: Option<Bytes>,
        /// The node's Stat.
        stat: Stat,
    },
    /// getACL: the ACL and Stat.
    Acl {
        /// The ACL (digest ids masked as `user:x` without ADMIN).
        acl: Vec<Acl>,
        /// The node's Stat.
        stat: Stat,
    },
    /// getChildren: child names in no defined order.
    Children {
        /// Child names (not full paths).
        children: ChildNames,
    },
    /// getChildren2: child names and the parent's Stat.
    Children2 {
        /// Child names (not full paths).
        children: ChildNames,
        /// The parent's Stat.
        stat: Stat,
    },
    /// sync: the path synced.
    Sync {
        /// The path, echoed.
        path: String,
    },
    /// multi and multiRead: one result per op.
    Multi(Vec<MultiResult>),
    /// addWatch: an ErrorResponse, always 0 in practice.
    AddWatch {
        /// The error code in the body.
        err: ErrorCode,
    },
    /// sasl: the server's token.
    Sasl(SaslToken),
    /// getEphemerals: full server paths of this session's ephemerals.
    Ephemerals {
        /// Full paths.
        paths: Vec<String>,
    },
    /// getAllChildrenNumber: the number of descendants.
    AllChildrenNumber {
        /// Descendants, not counting the node itself.
        total: i32,
    },
    /// whoAmI: the connection's identities.
    WhoAmI {
        /// One entry per identity.
        client_info: Vec<ClientInfo>,
    },
}

impl Response {
    /// Decodes the body of a successful reply to `op`, requiring that it uses up the input.
    ///
    /// Errors with [`DecodeError::NotARequest`] for opcodes that are never answered, and on any
    /// malformed body or trailing bytes.
    pub fn decode(op: OpCode, mut r: Reader) -> Result<Self, DecodeError> {
        let resp = match op {
            OpCode::Delete
            | OpCode::Check
            | OpCode::CheckWatches
            | OpCode::RemoveWatches
            | OpCode::Auth
            | OpCode::SetWatches
            | OpCode::SetWatches2
            | OpCode::Ping
            | OpCode::CloseSession => Response::Empty,
            OpCode::Create => Response::Create {
                path: r.read_string("CreateResponse.path")?,
            },
            OpCode::Create2 | OpCode::CreateContainer | OpCode::CreateTtl => Response::Create2 {
                path: r.read_string("Create2Response.path")?,
                stat: Stat::decode(&mut r)?,
            },
            OpCode::Exists | OpCode::SetData | OpCode::SetAcl => {
                Response::Stat(Stat::decode(&mut r)?)
            }
            OpCode::GetData | OpCode::Reconfig => Response::Data {
                data: r.read_buffer()?,
                stat: Stat::decode(&mut r)?,
            },
            OpCode::GetAcl => Response::Acl {
                acl: Acl::decode_vec(&mut r)?,
                stat: Stat::decode(&mut r)?,
            },
            OpCode::GetChildren => Response::Children {
                children: ChildNames::decode(&mut r, "children")?,
            },
            OpCode::GetChildren2 => Response::Children2 {
                children: ChildNames::decode(&mut r, "children")?,
                stat: Stat::decode(&mut r)?,
            },
            OpCode::Sync => Response::Sync {
                path: r.read_string("SyncResponse.path")?,
            },
            OpCode::Multi | OpCode::MultiRead => Response::Multi(MultiResult::decode_all(&mut r)?),
            OpCode::AddWatch => Response::AddWatch {
                err: ErrorCode::from_code(r.read_i32()?),
            },
            OpCode::Sasl => Response::Sasl(SaslToken::decode(&mut r)?),
            OpCode::GetEphemerals => Response::Ephemerals {
                paths: r.read_string_vec("ephemerals")?,
            },
            OpCode::GetAllChildrenNumber => Response::AllChildrenNumber {
                total: r.read_i32()?,
            },
            OpCode::WhoAmI => Response::WhoAmI {
                // Each ClientInfo is at least two empty strings.
                client_info: r.read_vec("clientInfo", 8, ClientInfo::decode)?,
            },
            OpCode::Notification
            | OpCode::CreateSession
            | OpCode::DeleteContainer
            | OpCode::Error => return Err(DecodeError::NotARequest(op)),
        };
        r.finish()?;
        Ok(resp)
    }

    /// Encodes the body (everything after the ReplyHeader).
    pub fn encode(&self, out: &mut impl BufMut) {
        match self {
            Response::Empty => {}
            Response::Create { path } | Response::Sync { path } => put_string(out, path),
            Response::Create2 { path, stat } => {
                put_string(out, path);
                stat.encode(out);
            }
            Response::Stat(stat) => stat.encode(out),
            Response::Data { data, stat } => {
                put_buffer(out, data.as_deref());
                stat.encode(out);
            }
            Response::Acl { acl, stat } => {
                Acl::encode_vec(acl, out);
                stat.encode(out);
            }
            Response::Children { children } => children.encode(out),
            Response::Children2 { children, stat } => {
                children.encode(out);
                stat.encode(out);
            }
            Response::Multi(results) => MultiResult::encode_all(results, out),
            Response::AddWatch { err } => out.put_i32(err.code()),
            Response::Sasl(t) => t.encode(out),
            Response::Ephemerals { paths } => put_string_vec(out, paths),
            Response::AllChildrenNumber { total } => out.put_i32(*total),
            Response::WhoAmI { client_info } => {
                out.put_i32(client_info.len() as i32);
                for c in client_info {
                    c.encode(out);
                }
            }
        }
    }
}

// ---- client side: encode requests, decode replies -------------------------------------------

/// Writes a ConnectRequest frame (length prefix included).
///
/// Errors with [`EncodeError::FrameTooLarge`] only if `max_frame` is below the record's size.
pub fn encode_connect_request(
    out: &mut Vec<u8>,
    max_frame: usize,
    req: &ConnectRequest,
) -> Result<(), EncodeError> {
    encode_frame(out, max_frame, |b| req.encode(b))
}

/// Writes a request frame: length prefix, RequestHeader, body.
///
/// Errors with [`EncodeError::FrameTooLarge`] when the frame would exceed `max_frame` (a server
/// closes the connection on such frames, so they must never be sent); `out` is then unchanged.
pub fn encode_request(
    out: &mut Vec<u8>,
    max_frame: usize,
    xid: i32,
    req: &Request,
) -> Result<(), EncodeError> {
    encode_frame(out, max_frame, |b| {
        RequestHeader {
            xid,
            op: req.op_code().code(),
        }
        .encode(b);
        req.encode_body(b);
    })
}

/// Decodes the ConnectResponse frame payload.
///
/// Errors on a truncated or malformed record.
pub fn decode_connect_response(frame: Bytes) -> Result<ConnectResponse, DecodeError> {
    ConnectResponse::decode(Reader::new(frame))
}

/// The start of a server frame: its header, and a reader over the rest.
///
/// Notifications have xid -1 and a [`WatcherEvent`] body; every other frame answers a request,
/// and its body is decoded with [`decode_reply`] once the caller knows the request's opcode.
pub fn decode_reply_header(frame: Bytes) -> Result<(ReplyHeader, Reader), DecodeError> {
    let mut r = Reader::new(frame);
    let header = ReplyHeader::decode(&mut r)?;
    Ok((header, r))
}

/// Decodes a notification body (after a header with xid -1).
///
/// Errors on a malformed event or trailing bytes.
pub fn decode_notification(mut body: Reader) -> Result<WatcherEvent, DecodeError> {
    let ev = WatcherEvent::decode(&mut body)?;
    body.finish()?;
    Ok(ev)
}

/// Decodes a reply body for the request opcode `op`: `Err(code)` inside `Ok` when the header
/// carries an error (no body is read then; stray bytes are ignored, as the Java client does).
///
/// Errors with a [`DecodeError`] when a successful reply's body is malformed or too long.
pub fn decode_reply(
    header: &ReplyHeader,
    op: OpCode,
    body: Reader,
) -> Result<Result<Response, ErrorCode>, DecodeError> {
    if !header.err.is_ok() {
        return Ok(Err(header.err));
    }
    Response::decode(op, body).map(Ok)
}

// ---- server side: decode requests, encode replies -------------------------------------------

/// Decodes a request frame's header and body (server side).
///
/// The outer error means the header itself is unreadable. The inner error means the header was
/// read but the body was not: a server answers it (Unimplemented for an unknown opcode,
/// MarshallingError otherwise) using the xid in the header.
pub fn decode_request(
    frame: Bytes,
) -> Result<(RequestHeader, Result<Request, DecodeError>), DecodeError> {
    let mut r = Reader::new(frame);
    let header = RequestHeader::decode(&mut r)?;
    let body = OpCode::try_from(header.op).and_then(|op| Request::decode(op, r));
    Ok((header, body))
}

/// Decodes a ConnectRequest frame payload (server side).
///
/// Errors on a truncated or malformed record.
pub fn decode_connect_request(frame: Bytes) -> Result<ConnectRequest, DecodeError> {
    ConnectRequest::decode(Reader::new(frame))
}

/// Writes a ConnectResponse frame (server side).
///
/// Errors with [`EncodeError::FrameTooLarge`] only if `max_frame` is below the record's size.
pub fn encode_connect_response(
    out: &mut Vec<u8>,
    max_frame: usize,
    resp: &ConnectResponse,
) -> Result<(), EncodeError> {
    encode_frame(out, max_frame, |b| resp.encode(b))
}

/// Writes a reply frame: header, then the body when there is one (server side).
///
/// Errors with [`EncodeError::FrameTooLarge`] when the frame would exceed `max_frame`.
pub fn encode_reply(
    out: &mut Vec<u8>,
    max_frame: usize,
    header: &ReplyHeader,
    body: Option<&Response>,
) -> Result<(), EncodeError> {
    encode_frame(out, max_frame, |b| {
        header.encode(b);
        if let Some(body) = body {
            body.encode(b);
        }
    })
}

/// Writes a notification frame: xid -1, the given zxid (-1 before 3.9), err 0, then the event.
///
/// Errors with [`EncodeError::FrameTooLarge`] when the frame would exceed `max_frame`.
pub fn encode_notification(
    out: &mut Vec<u8>,
    max_frame: usize,
    zxid: i64,
    event: &WatcherEvent,
) -> Result<(), EncodeError> {
    encode_frame(out, max_frame, |b| {
        ReplyHeader {
            xid: xid::NOTIFICATION,
            zxid,
            err: ErrorCode::Ok,
        }
        .encode(b);
        event.encode(b);
    })
}
