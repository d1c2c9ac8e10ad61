//! The request records of PROTOCOL.md §4, §5 and §7.2, each with its encoder and decoder, plus the
//! headers and the notification record.
//!
//! Records hold what is on the wire: fields a client chooses freely (create flags, watch modes,
//! watcher types) stay raw `i32` so a model server sees exactly what was sent and can refuse it as
//! a real one would; typed views (`CreateMode`, `AddWatchMode`, ...) are a `try_from` away.
//! Buffers that ZooKeeper lets be null (node data, reconfig strings, SASL tokens) are `Option`s;
//! every other null is a decode error.

use std::sync::Arc;

use bytes::{BufMut, Bytes};

use super::jute::{put_bool, put_buffer, put_string, put_string_vec, put_ustring, Reader};
use super::types::{Acl, AddWatchMode, CreateMode, ErrorCode, EventType, KeeperState, WatcherType};
use super::DecodeError;

/// Length of the session password the server issues.
pub const PASSWORD_LEN: usize = 16;

/// The first frame of a connection, client to server, with no header (PROTOCOL.md §4.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectRequest {
    /// Always 0.
    pub protocol_version: i32,
    /// The highest zxid this client has seen; 0 for a new client.
    pub last_zxid_seen: i64,
    /// Requested session timeout in ms.
    pub timeout: i32,
    /// 0 for a new session, otherwise the session to resume.
    pub session_id: i64,
    /// The session password (16 zero bytes for a new session).
    pub passwd: Bytes,
    /// "A read-only server is acceptable"; `None` leaves the trailing byte out, as pre-3.4 clients did.
    pub read_only: Option<bool>,
}

impl ConnectRequest {
    /// Decodes a ConnectRequest payload; the trailing readOnly byte is read only if present.
    ///
    /// Errors on a truncated or null password and on trailing bytes after the readOnly byte.
    pub fn decode(mut r: Reader) -> Result<Self, DecodeError> {
        let req = ConnectRequest {
            protocol_version: r.read_i32()?,
            last_zxid_seen: r.read_i64()?,
            timeout: r.read_i32()?,
            session_id: r.read_i64()?,
            passwd: r.read_buffer_non_null("ConnectRequest.passwd")?,
            read_only: if r.remaining() > 0 {
                Some(r.read_bool()?)
            } else {
                None
            },
        };
        r.finish()?;
        Ok(req)
    }

    /// Encodes the payload (no length prefix).
    pub fn encode(&self, out: &mut impl BufMut) {
        out.put_i32(self.protocol_version);
        out.put_i64(self.last_zxid_seen);
        out.put_i32(self.timeout);
        out.put_i64(self.session_id);
        put_buffer(out, Some(&self.passwd));
        if let Some(ro) = self.read_only {
            put_bool(out, ro);
        }
    }
}

/// The first frame from the server, with no header (PROTOCOL.md §4.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectResponse {
    /// Always 0.
    pub protocol_version: i32,
    /// Negotiated timeout in ms; `<= 0` means the session is invalid or expired.
    pub timeout: i32,
    /// The session id; 0 when the session is invalid.
    pub session_id: i64,
    /// The session password.
    pub passwd: Bytes,
    /// Whether the server is read-only; `None` when the byte was absent (the request had none).
    pub read_only: Option<bool>,
}

impl ConnectResponse {
    /// Decodes a ConnectResponse payload; a missing readOnly byte is `None`.
    ///
    /// Errors on a truncated or null password and on trailing bytes.
    pub fn decode(mut r: Reader) -> Result<Self, DecodeError> {
        let resp = ConnectResponse {
            protocol_version: r.read_i32()?,
            timeout: r.read_i32()?,
            session_id: r.read_i64()?,
            passwd: r.read_buffer_non_null("ConnectResponse.passwd")?,
            read_only: if r.remaining() > 0 {
                Some(r.read_bool()?)
            } else {
                None
            },
        };
        r.finish()?;
        Ok(resp)
    }

    /// Encodes the payload (no length prefix).
    pub fn encode(&self, out: &mut impl BufMut) {
        out.put_i32(self.protocol_version);
        out.put_i32(self.timeout);
        out.put_i64(self.session_id);
        put_buffer(out, Some(&self.passwd));
        if let Some(ro) = self.read_only {
            put_bool(out, ro);
        }
    }
}

/// Starts every client frame after the ConnectRequest (PROTOCOL.md §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestHeader {
    /// The request's xid (or a special xid: -2 ping, -4 auth, -8 setWatches).
    pub xid: i32,
    /// The opcode, raw, so an unknown one can be answered with Unimplemented.
    pub op: i32,
}

impl RequestHeader {
    /// Bytes on the wire.
    pub const WIRE_LEN: usize = 8;

    /// Decodes a header. Errors with [`DecodeError::Truncated`].
    pub fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(RequestHeader {
            xid: r.read_i32()?,
            op: r.read_i32()?,
        })
    }

    /// Encodes a header.
    pub fn encode(&self, out: &mut impl BufMut) {
        out.put_i32(self.xid);
        out.put_i32(self.op);
    }
}

/// Starts every server frame after the ConnectResponse (PROTOCOL.md §5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplyHeader {
    /// The echoed xid, or -1 for a notification, -2 ping, -4 auth.
    pub xid: i32,
    /// See PROTOCOL.md §5.5.
    pub zxid: i64,
    /// The result; a body follows only when this is [`ErrorCode::Ok`].
    pub err: ErrorCode,
}

impl ReplyHeader {
    /// Bytes on the wire.
    pub const WIRE_LEN: usize = 16;

    /// Decodes a header. Errors with [`DecodeError::Truncated`].
    pub fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(ReplyHeader {
            xid: r.read_i32()?,
            zxid: r.read_i64()?,
            err: ErrorCode::from_code(r.read_i32()?),
        })
    }

    /// Encodes a header.
    pub fn encode(&self, out: &mut impl BufMut) {
        out.put_i32(self.xid);
        out.put_i64(self.zxid);
        out.put_i32(self.err.code());
    }
}

/// A watch notification's body (xid -1), PROTOCOL.md §10.1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatcherEvent {
    /// What happened.
    pub event_type: EventType,
    /// The connection state; servers always send SyncConnected.
    pub state: KeeperState,
    /// The server path (including any chroot).
    pub path: String,
}

impl WatcherEvent {
    /// Decodes a WatcherEvent. Errors on truncation, null or non-UTF-8 path.
    pub fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(WatcherEvent {
            event_type: EventType::from_code(r.read_i32()?),
            state: KeeperState::from_code(r.read_i32()?),
            path: r.read_string("WatcherEvent.path")?,
        })
    }

    /// Encodes a WatcherEvent.
    pub fn encode(&self, out: &mut impl BufMut) {
        out.put_i32(self.event_type.code());
        out.put_i32(self.state.code());
        put_string(out, &self.path);
    }
}

/// create, create2 and createContainer (and their multi sub-ops).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateRequest {
    /// The path (for sequential modes, the prefix).
    pub path: String,
    /// Node data; `None` is a null buffer.
    pub data: Option<Bytes>,
    /// The node's ACL, shared: a client sends the same ACL with most creates, so a create
    /// takes a reference to it instead of a copy.
    pub acl: Arc<[Acl]>,
    /// The create mode, raw ([`CreateMode`] codes).
    pub flags: i32,
}

impl CreateRequest {
    /// The create mode, if `flags` names one.
    pub fn mode(&self) -> Result<CreateMode, DecodeError> {
        CreateMode::try_from(self.flags)
    }

    /// Decodes the record. Errors on truncation, bad lengths, nulls or non-UTF-8 strings.
    pub fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(CreateRequest {
            path: r.read_string("CreateRequest.path")?,
            data: r.read_buffer()?,
            acl: Acl::decode_vec(r)?.into(),
            flags: r.read_i32()?,
        })
    }

    /// Encodes the record.
    pub fn encode(&self, out: &mut impl BufMut) {
        put_string(out, &self.path);
        put_buffer(out, self.data.as_deref());
        Acl::encode_vec(&self.acl, out);
        out.put_i32(self.flags);
    }
}

/// createTTL (and its multi sub-op): a create with a time-to-live in ms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateTtlRequest {
    /// The path (for sequential modes, the prefix).
    pub path: String,
    /// Node data; `None` is a null buffer.
    pub data: Option<Bytes>,
    /// The node's ACL, shared: a client sends the same ACL with most creates, so a create
    /// takes a reference to it instead of a copy.
    pub acl: Arc<[Acl]>,
    /// The create mode, raw (5 or 6 are valid).
    pub flags: i32,
    /// Time to live in ms, `1..=MAX_TTL_MS`.
    pub ttl: i64,
}

impl CreateTtlRequest {
    /// Decodes the record. Errors as [`CreateRequest::decode`] does.
    pub fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(CreateTtlRequest {
            path: r.read_string("CreateTTLRequest.path")?,
            data: r.read_buffer()?,
            acl: Acl::decode_vec(r)?.into(),
            flags: r.read_i32()?,
            ttl: r.read_i64()?,
        })
    }

    /// Encodes the record.
    pub fn encode(&self, out: &mut impl BufMut) {
        put_string(out, &self.path);
        put_buffer(out, self.data.as_deref());
        Acl::encode_vec(&self.acl, out);
        out.put_i32(self.flags);
        out.put_i64(self.ttl);
    }
}

/// A path and a version: delete, and check (CheckVersionRequest).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathVersionRequest {
    /// The node.
    pub path: String,
    /// The expected version; -1 matches any.
    pub version: i32,
}

impl PathVersionRequest {
    /// Decodes the record. Errors on truncation or a bad path string.
    pub fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(PathVersionRequest {
            path: r.read_string("path")?,
            version: r.read_i32()?,
        })
    }

    /// Encodes the record.
    pub fn encode(&self, out: &mut impl BufMut) {
        put_string(out, &self.path);
        out.put_i32(self.version);
    }
}

/// A path and a watch flag: exists, getData, getChildren, getChildren2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathWatchRequest {
    /// The node.
    pub path: String,
    /// Whether to arm a one-shot watch.
    pub watch: bool,
}

impl PathWatchRequest {
    /// Decodes the record. Errors on truncation or a bad path string.
    pub fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(PathWatchRequest {
            path: r.read_string("path")?,
            watch: r.read_bool()?,
        })
    }

    /// Encodes the record.
    pub fn encode(&self, out: &mut impl BufMut) {
        put_string(out, &self.path);
        put_bool(out, self.watch);
    }
}

/// A path alone: getACL, sync, getAllChildrenNumber, getEphemerals (whose path is a prefix).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathRequest {
    /// The node (for getEphemerals, a plain string prefix of full paths).
    pub path: String,
}

impl PathRequest {
    /// Decodes the record. Errors on truncation or a bad path string.
    pub fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(PathRequest {
            path: r.read_string("path")?,
        })
    }

    /// Encodes the record.
    pub fn encode(&self, out: &mut impl BufMut) {
        put_string(out, &self.path);
    }
}

/// setData.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetDataRequest {
    /// The node.
    pub path: String,
    /// The new data; `None` is a null buffer.
    pub data: Option<Bytes>,
    /// The expected version; -1 matches any.
    pub version: i32,
}

impl SetDataRequest {
    /// Decodes the record. Errors on truncation, bad lengths or a bad path string.
    pub fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(SetDataRequest {
            path: r.read_string("SetDataRequest.path")?,
            data: r.read_buffer()?,
            version: r.read_i32()?,
        })
    }

    /// Encodes the record.
    pub fn encode(&self, out: &mut impl BufMut) {
        put_string(out, &self.path);
        put_buffer(out, self.data.as_deref());
        out.put_i32(self.version);
    }
}

/// setACL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetAclRequest {
    /// The node.
    pub path: String,
    /// The new ACL.
    pub acl: Vec<Acl>,
    /// The expected ACL version (aversion); -1 matches any.
    pub version: i32,
}

impl SetAclRequest {
    /// Decodes the record. Errors on truncation, bad lengths or bad strings.
    pub fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(SetAclRequest {
            path: r.read_string("SetACLRequest.path")?,
            acl: Acl::decode_vec(r)?,
            version: r.read_i32()?,
        })
    }

    /// Encodes the record.
    pub fn encode(&self, out: &mut impl BufMut) {
        put_string(out, &self.path);
        Acl::encode_vec(&self.acl, out);
        out.put_i32(self.version);
    }
}

/// reconfig (3.5.0+). Null strings mean "not given".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReconfigRequest {
    /// Servers to add, comma-separated, or `None`.
    pub joining_servers: Option<String>,
    /// Server ids to remove, comma-separated, or `None`.
    pub leaving_servers: Option<String>,
    /// A complete new membership (non-incremental), or `None`.
    pub new_members: Option<String>,
    /// The config version this change is based on; -1 for any.
    pub cur_config_id: i64,
}

impl ReconfigRequest {
    /// Decodes the record. Errors on truncation, bad lengths or non-UTF-8 strings.
    pub fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(ReconfigRequest {
            joining_servers: r.read_ustring()?,
            leaving_servers: r.read_ustring()?,
            new_members: r.read_ustring()?,
            cur_config_id: r.read_i64()?,
        })
    }

    /// Encodes the record.
    pub fn encode(&self, out: &mut impl BufMut) {
        put_ustring(out, self.joining_servers.as_deref());
        put_ustring(out, self.leaving_servers.as_deref());
        put_ustring(out, self.new_members.as_deref());
        out.put_i64(self.cur_config_id);
    }
}

/// checkWatches and removeWatches: a path and a [`WatcherType`] code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchesRequest {
    /// The node.
    pub path: String,
    /// The watcher type, raw ([`WatcherType`] codes).
    pub watcher_type: i32,
}

impl WatchesRequest {
    /// The watcher type, if the code names one.
    pub fn watcher_type(&self) -> Result<WatcherType, DecodeError> {
        WatcherType::try_from(self.watcher_type)
    }

    /// Decodes the record. Errors on truncation or a bad path string.
    pub fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(WatchesRequest {
            path: r.read_string("path")?,
            watcher_type: r.read_i32()?,
        })
    }

    /// Encodes the record.
    pub fn encode(&self, out: &mut impl BufMut) {
        put_string(out, &self.path);
        out.put_i32(self.watcher_type);
    }
}

/// addWatch (3.6.0+).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddWatchRequest {
    /// The node (which need not exist).
    pub path: String,
    /// The mode, raw ([`AddWatchMode`] codes).
    pub mode: i32,
}

impl AddWatchRequest {
    /// The mode, if the code names one.
    pub fn mode(&self) -> Result<AddWatchMode, DecodeError> {
        AddWatchMode::try_from(self.mode)
    }

    /// Decodes the record. Errors on truncation or a bad path string.
    pub fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(AddWatchRequest {
            path: r.read_string("AddWatchRequest.path")?,
            mode: r.read_i32()?,
        })
    }

    /// Encodes the record.
    pub fn encode(&self, out: &mut impl BufMut) {
        put_string(out, &self.path);
        out.put_i32(self.mode);
    }
}

/// auth (xid -4): credentials for a scheme, e.g. `digest` with `user:password`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthPacket {
    /// Always 0.
    pub auth_type: i32,
    /// The scheme.
    pub scheme: String,
    /// The credentials.
    pub auth: Bytes,
}

impl AuthPacket {
    /// Decodes the record. Errors on truncation, nulls or bad strings.
    pub fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(AuthPacket {
            auth_type: r.read_i32()?,
            scheme: r.read_string("AuthPacket.scheme")?,
            auth: r.read_buffer_non_null("AuthPacket.auth")?,
        })
    }

    /// Encodes the record.
    pub fn encode(&self, out: &mut impl BufMut) {
        out.put_i32(self.auth_type);
        put_string(out, &self.scheme);
        put_buffer(out, Some(&self.auth));
    }
}

/// A SASL token (GetSASLRequest for op 102, and SetSASLResponse).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaslToken {
    /// The token; `None` is a null buffer.
    pub token: Option<Bytes>,
}

impl SaslToken {
    /// Decodes the record. Errors on truncation or bad lengths.
    pub fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(SaslToken {
            token: r.read_buffer()?,
        })
    }

    /// Encodes the record.
    pub fn encode(&self, out: &mut impl BufMut) {
        put_buffer(out, self.token.as_deref());
    }
}

/// setWatches (101): re-arms one-shot watches after a reconnect (PROTOCOL.md §10.5).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SetWatches {
    /// The client's last zxid seen.
    pub relative_zxid: i64,
    /// Paths with data watches.
    pub data_watches: Vec<String>,
    /// Paths with exist watches (nodes that did not exist when watched).
    pub exist_watches: Vec<String>,
    /// Paths with child watches.
    pub child_watches: Vec<String>,
}

impl SetWatches {
    /// Decodes the record. Errors on truncation, nulls or bad strings.
    pub fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(SetWatches {
            relative_zxid: r.read_i64()?,
            data_watches: r.read_string_vec("dataWatches")?,
            exist_watches: r.read_string_vec("existWatches")?,
            child_watches: r.read_string_vec("childWatches")?,
        })
    }

    /// Encodes the record.
    pub fn encode(&self, out: &mut impl BufMut) {
        out.put_i64(self.relative_zxid);
        put_string_vec(out, &self.data_watches);
        put_string_vec(out, &self.exist_watches);
        put_string_vec(out, &self.child_watches);
    }
}

/// setWatches2 (105, 3.6.0+): setWatches plus persistent and recursive watches.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SetWatches2 {
    /// The client's last zxid seen.
    pub relative_zxid: i64,
    /// Paths with data watches.
    pub data_watches: Vec<String>,
    /// Paths with exist watches.
    pub exist_watches: Vec<String>,
    /// Paths with child watches.
    pub child_watches: Vec<String>,
    /// Paths with persistent watches.
    pub persistent_watches: Vec<String>,
    /// Paths with persistent recursive watches.
    pub persistent_recursive_watches: Vec<String>,
}

impl SetWatches2 {
    /// Decodes the record. Errors on truncation, nulls or bad strings.
    pub fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(SetWatches2 {
            relative_zxid: r.read_i64()?,
            data_watches: r.read_string_vec("dataWatches")?,
            exist_watches: r.read_string_vec("existWatches")?,
            child_watches: r.read_string_vec("childWatches")?,
            persistent_watches: r.read_string_vec("persistentWatches")?,
            persistent_recursive_watches: r.read_string_vec("persistentRecursiveWatches")?,
        })
    }

    /// Encodes the record.
    pub fn encode(&self, out: &mut impl BufMut) {
        out.put_i64(self.relative_zxid);
        put_string_vec(out, &self.data_watches);
        put_string_vec(out, &self.exist_watches);
        put_string_vec(out, &self.child_watches);
        put_string_vec(out, &self.persistent_watches);
        put_string_vec(out, &self.persistent_recursive_watches);
    }
}
