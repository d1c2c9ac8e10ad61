//! The numbered vocabularies of the protocol (opcodes, error codes, event types and states, create
//! modes, watch modes, permission bits) and the small records every other record uses (Stat, Id,
//! ACL, ClientInfo).
//!
//! Numbers that a server sends (error codes, event types, states) decode totally: a value this
//! crate does not know becomes `Unknown(n)`, because a newer server must never make us panic or
//! drop a frame. Numbers that only a client chooses (opcodes, create flags, watch modes) are kept
//! raw in the wire records and converted with `TryFrom`, so a model server can see, and refuse,
//! exactly what a client sent.

use bytes::BufMut;

use super::jute::{put_string, Reader};
use super::DecodeError;

/// Declares a fieldless enum with explicit `i32` codes, `code()` and `TryFrom<i32>`.
macro_rules! closed_code_enum {
    (
        $(#[$meta:meta])*
        $name:ident, $what:literal {
            $( $(#[$vmeta:meta])* $variant:ident = $code:literal ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum $name {
            $( $(#[$vmeta])* $variant ),+
        }

        impl $name {
            /// The number this value has on the wire.
            pub fn code(self) -> i32 {
                match self {
                    $( $name::$variant => $code ),+
                }
            }

            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[ $( $name::$variant ),+ ];
        }

        impl TryFrom<i32> for $name {
            type Error = DecodeError;

            /// Errors with [`DecodeError::UnknownCode`] for numbers this enum does not name.
            fn try_from(code: i32) -> Result<Self, DecodeError> {
                match code {
                    $( $code => Ok($name::$variant), )+
                    other => Err(DecodeError::UnknownCode { what: $what, code: other }),
                }
            }
        }
    };
}

/// Declares an enum with explicit `i32` codes plus `Unknown(i32)`, decoded totally.
macro_rules! open_code_enum {
    (
        $(#[$meta:meta])*
        $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $code:literal ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
            /// A number this crate does not know (perhaps from a newer server), kept as it came.
            Unknown(i32),
        }

        impl $name {
            /// The number this value has on the wire.
            pub fn code(self) -> i32 {
                match self {
                    $( $name::$variant => $code, )+
                    $name::Unknown(n) => n,
                }
            }

            /// The value for a wire number; never fails.
            pub fn from_code(code: i32) -> Self {
                match code {
                    $( $code => $name::$variant, )+
                    other => $name::Unknown(other),
                }
            }

            /// Every named value, in declaration order.
            pub const KNOWN: &'static [$name] = &[ $( $name::$variant ),+ ];
        }

        impl From<i32> for $name {
            fn from(code: i32) -> Self {
                $name::from_code(code)
            }
        }
    };
}

closed_code_enum! {
    /// Operation codes (`ZooDefs.OpCode`), PROTOCOL.md §6.
    OpCode, "opcode" {
        /// Placeholder; notifications are told apart by xid -1, not by this code.
        Notification = 0,
        /// create (1): CreateRequest, CreateResponse.
        Create = 1,
        /// delete (2): DeleteRequest, no reply body.
        Delete = 2,
        /// exists (3): ExistsRequest, Stat.
        Exists = 3,
        /// getData (4).
        GetData = 4,
        /// setData (5).
        SetData = 5,
        /// getACL (6).
        GetAcl = 6,
        /// setACL (7).
        SetAcl = 7,
        /// getChildren (8).
        GetChildren = 8,
        /// sync (9).
        Sync = 9,
        /// ping (11), always xid -2.
        Ping = 11,
        /// getChildren2 (12): children plus the parent's Stat.
        GetChildren2 = 12,
        /// check (13): only valid inside multi (PROTOCOL.md §17).
        Check = 13,
        /// multi (14).
        Multi = 14,
        /// create2 (15), 3.5.0+: create returning the Stat.
        Create2 = 15,
        /// reconfig (16), 3.5.0+.
        Reconfig = 16,
        /// checkWatches (17), 3.5.0+.
        CheckWatches = 17,
        /// removeWatches (18), 3.5.0+.
        RemoveWatches = 18,
        /// createContainer (19), 3.5.1+.
        CreateContainer = 19,
        /// deleteContainer (20): server-internal, never sent by a client.
        DeleteContainer = 20,
        /// createTTL (21), 3.5.3+.
        CreateTtl = 21,
        /// multiRead (22), 3.6.0+.
        MultiRead = 22,
        /// auth (100), always xid -4.
        Auth = 100,
        /// setWatches (101).
        SetWatches = 101,
        /// sasl (102).
        Sasl = 102,
        /// getEphemerals (103), 3.6.0+.
        GetEphemerals = 103,
        /// getAllChildrenNumber (104), 3.6.0+.
        GetAllChildrenNumber = 104,
        /// setWatches2 (105), 3.6.0+.
        SetWatches2 = 105,
        /// addWatch (106), 3.6.0+.
        AddWatch = 106,
        /// whoAmI (107), 3.7.0+.
        WhoAmI = 107,
        /// createSession (-10): internal; the ConnectRequest plays this role.
        CreateSession = -10,
        /// closeSession (-11).
        CloseSession = -11,
        /// error (-1): the result type of a failed op inside multi.
        Error = -1,
    }
}

open_code_enum! {
    /// `KeeperException.Code`, PROTOCOL.md §11, including OK (0).
    ErrorCode {
        /// 0: success.
        Ok = 0,
        /// -1: marker of the system-error range.
        SystemError = -1,
        /// -2: a multi op after the one that failed.
        RuntimeInconsistency = -2,
        /// -3: data inconsistency.
        DataInconsistency = -3,
        /// -4: connection loss (client-side).
        ConnectionLoss = -4,
        /// -5: the server could not decode the request.
        MarshallingError = -5,
        /// -6: unknown opcode or disabled feature.
        Unimplemented = -6,
        /// -7: operation timeout (client-side).
        OperationTimeout = -7,
        /// -8: bad path, flags or ttl.
        BadArguments = -8,
        /// -12: unknown session (internal).
        UnknownSession = -12,
        /// -13: reconfig has no quorum for the new config.
        NewConfigNoQuorum = -13,
        /// -14: another reconfig is in progress.
        ReconfigInProgress = -14,
        /// -100: marker of the API-error range.
        ApiError = -100,
        /// -101: the node does not exist.
        NoNode = -101,
        /// -102: not authorised.
        NoAuth = -102,
        /// -103: version mismatch.
        BadVersion = -103,
        /// -108: ephemeral nodes cannot have children.
        NoChildrenForEphemerals = -108,
        /// -110: the node already exists.
        NodeExists = -110,
        /// -111: the node has children.
        NotEmpty = -111,
        /// -112: the session has expired.
        SessionExpired = -112,
        /// -113: invalid callback (client-side).
        InvalidCallback = -113,
        /// -114: invalid ACL.
        InvalidAcl = -114,
        /// -115: authentication failed.
        AuthFailed = -115,
        /// -118: the session moved to another server.
        SessionMoved = -118,
        /// -119: a write sent to a read-only server.
        NotReadOnly = -119,
        /// -120: ephemeral create on a local session.
        EphemeralOnLocalSession = -120,
        /// -121: no such watch.
        NoWatcher = -121,
        /// -122: request timeout (client-side).
        RequestTimeout = -122,
        /// -123: reconfig is disabled.
        ReconfigDisabled = -123,
        /// -124: the session requires SASL auth.
        SessionClosedRequireSaslAuth = -124,
        /// -125: quota exceeded.
        QuotaExceeded = -125,
        /// -127: the request was throttled and not executed.
        Throttled = -127,
    }
}

impl ErrorCode {
    /// True for [`ErrorCode::Ok`].
    pub fn is_ok(self) -> bool {
        self == ErrorCode::Ok
    }

    /// The name ZooKeeper's Java client gives this code (`NONODE` style is Java's enum; this is
    /// the readable form used in messages, e.g. "Node does not exist").
    pub fn description(self) -> &'static str {
        match self {
            ErrorCode::Ok => "ok",
            ErrorCode::SystemError => "system error",
            ErrorCode::RuntimeInconsistency => "runtime inconsistency",
            ErrorCode::DataInconsistency => "data inconsistency",
            ErrorCode::ConnectionLoss => "connection loss",
            ErrorCode::MarshallingError => "marshalling error",
            ErrorCode::Unimplemented => "unimplemented",
            ErrorCode::OperationTimeout => "operation timeout",
            ErrorCode::BadArguments => "bad arguments",
            ErrorCode::UnknownSession => "unknown session",
            ErrorCode::NewConfigNoQuorum => "no quorum of new config is connected",
            ErrorCode::ReconfigInProgress => "another reconfiguration is in progress",
            ErrorCode::ApiError => "API error",
            ErrorCode::NoNode => "node does not exist",
            ErrorCode::NoAuth => "not authenticated",
            ErrorCode::BadVersion => "bad version",
            ErrorCode::NoChildrenForEphemerals => "ephemeral nodes may not have children",
            ErrorCode::NodeExists => "node already exists",
            ErrorCode::NotEmpty => "directory not empty",
            ErrorCode::SessionExpired => "session expired",
            ErrorCode::InvalidCallback => "invalid callback",
            ErrorCode::InvalidAcl => "invalid ACL",
            ErrorCode::AuthFailed => "authentication failed",
            ErrorCode::SessionMoved => "session moved",
            ErrorCode::NotReadOnly => "not a read-only call",
            ErrorCode::EphemeralOnLocalSession => "ephemeral node on local session",
            ErrorCode::NoWatcher => "no watcher",
            ErrorCode::RequestTimeout => "request timeout",
            ErrorCode::ReconfigDisabled => "reconfig is disabled",
            ErrorCode::SessionClosedRequireSaslAuth => {
                "session closed: SASL authentication required"
            }
            ErrorCode::QuotaExceeded => "quota exceeded",
            ErrorCode::Throttled => "request throttled",
            ErrorCode::Unknown(_) => "unknown error code",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ErrorCode::Unknown(n) => write!(f, "unknown error code {n}"),
            other => write!(f, "{} ({})", other.description(), other.code()),
        }
    }
}

open_code_enum! {
    /// `Watcher.Event.EventType`, PROTOCOL.md §10.2.
    EventType {
        /// -1: a connection-state event (client-local).
        None = -1,
        /// 1: the node was created.
        NodeCreated = 1,
        /// 2: the node was deleted.
        NodeDeleted = 2,
        /// 3: the node's data changed.
        NodeDataChanged = 3,
        /// 4: the node's child list changed.
        NodeChildrenChanged = 4,
        /// 5: a data watch was removed (client-local).
        DataWatchRemoved = 5,
        /// 6: a child watch was removed (client-local).
        ChildWatchRemoved = 6,
        /// 7: a persistent watch was removed (client-local, 3.6.0+).
        PersistentWatchRemoved = 7,
    }
}

open_code_enum! {
    /// `Watcher.Event.KeeperState`, PROTOCOL.md §10.2.
    KeeperState {
        /// -1: deprecated.
        UnknownState = -1,
        /// 0: disconnected (client-local).
        Disconnected = 0,
        /// 1: deprecated.
        NoSyncConnected = 1,
        /// 3: connected; the only state a server puts in a notification.
        SyncConnected = 3,
        /// 4: authentication failed (client-local).
        AuthFailed = 4,
        /// 5: connected to a read-only server (client-local).
        ConnectedReadOnly = 5,
        /// 6: SASL authenticated (client-local).
        SaslAuthenticated = 6,
        /// -112: the session expired (client-local).
        Expired = -112,
        /// 7: closed by the client (client-local).
        Closed = 7,
    }
}

closed_code_enum! {
    /// Create modes: the `flags` field of a create request, PROTOCOL.md §8.3.
    CreateMode, "create mode" {
        /// 0: a plain node.
        Persistent = 0,
        /// 1: deleted when the creating session ends; cannot have children.
        Ephemeral = 1,
        /// 2: the server appends a 10-digit sequence number.
        PersistentSequential = 2,
        /// 3: ephemeral and sequential.
        EphemeralSequential = 3,
        /// 4: a container, deleted by the server once its last child goes (createContainer, 3.5.1+).
        Container = 4,
        /// 5: deleted by the server when childless and unmodified for its TTL (createTTL).
        PersistentWithTtl = 5,
        /// 6: sequential with TTL (createTTL).
        PersistentSequentialWithTtl = 6,
    }
}

impl CreateMode {
    /// Nodes of this mode are deleted when their session ends.
    pub fn is_ephemeral(self) -> bool {
        matches!(
            self,
            CreateMode::Ephemeral | CreateMode::EphemeralSequential
        )
    }

    /// The server appends a sequence number to the path.
    pub fn is_sequential(self) -> bool {
        matches!(
            self,
            CreateMode::PersistentSequential
                | CreateMode::EphemeralSequential
                | CreateMode::PersistentSequentialWithTtl
        )
    }

    /// The mode needs a TTL (and the createTTL opcode).
    pub fn is_ttl(self) -> bool {
        matches!(
            self,
            CreateMode::PersistentWithTtl | CreateMode::PersistentSequentialWithTtl
        )
    }

    /// The mode is a container (and needs the createContainer opcode).
    pub fn is_container(self) -> bool {
        self == CreateMode::Container
    }
}

/// The largest TTL a server accepts: 2^40 - 1 ms (PROTOCOL.md §8.4).
pub const MAX_TTL_MS: i64 = (1 << 40) - 1;

closed_code_enum! {
    /// addWatch modes, PROTOCOL.md §10.3 (3.6.0+).
    AddWatchMode, "add-watch mode" {
        /// 0: fires for the node itself (data and child events) and stays armed.
        Persistent = 0,
        /// 1: fires for the node and every descendant (never NodeChildrenChanged) and stays armed.
        PersistentRecursive = 1,
    }
}

closed_code_enum! {
    /// The `type` of checkWatches and removeWatches, PROTOCOL.md §10.4.
    WatcherType, "watcher type" {
        /// 1: child watches.
        Children = 1,
        /// 2: data (and exist) watches.
        Data = 2,
        /// 3: every watch on the path.
        Any = 3,
        /// 4: persistent watches (servers 3.9.0+ only).
        Persistent = 4,
        /// 5: persistent recursive watches (servers 3.9.0+ only).
        PersistentRecursive = 5,
    }
}

/// ACL permission bits, PROTOCOL.md §8.1. A set of bits, combined with `|`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(transparent))]
pub struct Perms(pub i32);

impl Perms {
    /// Read data and list children.
    pub const READ: Perms = Perms(1);
    /// Set data.
    pub const WRITE: Perms = Perms(2);
    /// Create children.
    pub const CREATE: Perms = Perms(4);
    /// Delete children.
    pub const DELETE: Perms = Perms(8);
    /// Set the ACL.
    pub const ADMIN: Perms = Perms(16);
    /// Every permission (31).
    pub const ALL: Perms = Perms(31);

    /// True if every bit of `other` is set in `self`.
    pub fn contains(self, other: Perms) -> bool {
        self.0 & other.0 == other.0
    }
}

impl std::ops::BitOr for Perms {
    type Output = Perms;
    fn bitor(self, rhs: Perms) -> Perms {
        Perms(self.0 | rhs.0)
    }
}

/// An identity: a scheme (`world`, `digest`, `ip`, `auth`, `sasl`, `x509`, ...) and an id in it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Id {
    /// The authentication scheme.
    pub scheme: String,
    /// The identity within the scheme.
    pub id: String,
}

impl Id {
    /// An id from a scheme and an identity.
    pub fn new(scheme: impl Into<String>, id: impl Into<String>) -> Self {
        Id {
            scheme: scheme.into(),
            id: id.into(),
        }
    }

    /// `world:anyone`, everybody (`ZooDefs.Ids.ANYONE_ID_UNSAFE`).
    pub fn anyone() -> Self {
        Id::new("world", "anyone")
    }

    /// `auth:`, whoever the connection authenticated as (`ZooDefs.Ids.AUTH_IDS`).
    pub fn auth_ids() -> Self {
        Id::new("auth", "")
    }

    pub(crate) fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(Id {
            scheme: r.read_string("Id.scheme")?,
            id: r.read_string("Id.id")?,
        })
    }

    pub(crate) fn encode(&self, out: &mut impl BufMut) {
        put_string(out, &self.scheme);
        put_string(out, &self.id);
    }
}

/// One entry of an access-control list: permissions granted to an identity.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Acl {
    /// The permissions granted.
    pub perms: Perms,
    /// To whom.
    pub id: Id,
}

impl Acl {
    /// An ACL entry.
    pub fn new(perms: Perms, id: Id) -> Self {
        Acl { perms, id }
    }

    /// `OPEN_ACL_UNSAFE`: everyone may do everything.
    pub fn open_unsafe() -> Vec<Acl> {
        vec![Acl::new(Perms::ALL, Id::anyone())]
    }

    /// `CREATOR_ALL_ACL`: every permission for the identities of the creating connection.
    pub fn creator_all() -> Vec<Acl> {
        vec![Acl::new(Perms::ALL, Id::auth_ids())]
    }

    /// `READ_ACL_UNSAFE`: everyone may read.
    pub fn read_unsafe() -> Vec<Acl> {
        vec![Acl::new(Perms::READ, Id::anyone())]
    }

    /// Smallest encoding of an ACL entry: perms plus two empty strings.
    pub(crate) const MIN_WIRE_LEN: usize = 12;

    pub(crate) fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(Acl {
            perms: Perms(r.read_i32()?),
            id: Id::decode(r)?,
        })
    }

    pub(crate) fn encode(&self, out: &mut impl BufMut) {
        out.put_i32(self.perms.0);
        self.id.encode(out);
    }

    pub(crate) fn decode_vec(r: &mut Reader) -> Result<Vec<Acl>, DecodeError> {
        r.read_vec("acl", Acl::MIN_WIRE_LEN, Acl::decode)
    }

    pub(crate) fn encode_vec(acl: &[Acl], out: &mut impl BufMut) {
        out.put_i32(acl.len() as i32);
        for a in acl {
            a.encode(out);
        }
    }
}

/// A node's metadata: 11 fields, 68 bytes on the wire (PROTOCOL.md §7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Stat {
    /// zxid of the create.
    pub czxid: i64,
    /// zxid of the last data change.
    pub mzxid: i64,
    /// Creation time, ms since the epoch (the leader's clock).
    pub ctime: i64,
    /// Time of the last data change, ms since the epoch.
    pub mtime: i64,
    /// Data version: number of setData calls.
    pub version: i32,
    /// Child version: number of child creates and deletes.
    pub cversion: i32,
    /// ACL version: number of setACL calls.
    pub aversion: i32,
    /// The owning session for ephemeral nodes, otherwise 0 (also 0 for TTL and container nodes).
    pub ephemeral_owner: i64,
    /// Data size in bytes.
    pub data_length: i32,
    /// Number of direct children.
    pub num_children: i32,
    /// zxid of the last change to the child list.
    pub pzxid: i64,
}

impl Stat {
    /// Bytes a Stat takes on the wire.
    pub const WIRE_LEN: usize = 68;

    /// Decodes a Stat.
    ///
    /// Errors with [`DecodeError::Truncated`] when fewer than 68 bytes remain.
    pub fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        // One length check and one copy for the whole record: every reply with a Stat
        // decodes one, and eleven checked reads cost twice this.
        let b: [u8; Self::WIRE_LEN] = r.read_array()?;
        let i64_at = |at: usize| {
            let mut x = [0u8; 8];
            x.copy_from_slice(&b[at..at + 8]);
            i64::from_be_bytes(x)
        };
        let i32_at = |at: usize| {
            let mut x = [0u8; 4];
            x.copy_from_slice(&b[at..at + 4]);
            i32::from_be_bytes(x)
        };
        Ok(Stat {
            czxid: i64_at(0),
            mzxid: i64_at(8),
            ctime: i64_at(16),
            mtime: i64_at(24),
            version: i32_at(32),
            cversion: i32_at(36),
            aversion: i32_at(40),
            ephemeral_owner: i64_at(44),
            data_length: i32_at(52),
            num_children: i32_at(56),
            pzxid: i64_at(60),
        })
    }

    /// Encodes a Stat (68 bytes).
    pub fn encode(&self, out: &mut impl BufMut) {
        out.put_i64(self.czxid);
        out.put_i64(self.mzxid);
        out.put_i64(self.ctime);
        out.put_i64(self.mtime);
        out.put_i32(self.version);
        out.put_i32(self.cversion);
        out.put_i32(self.aversion);
        out.put_i64(self.ephemeral_owner);
        out.put_i32(self.data_length);
        out.put_i32(self.num_children);
        out.put_i64(self.pzxid);
    }
}

/// One identity of a connection, as whoAmI reports it (3.7.0+).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClientInfo {
    /// The scheme, e.g. `ip` or `digest`.
    pub auth_scheme: String,
    /// The user within that scheme.
    pub user: String,
}

impl ClientInfo {
    pub(crate) fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(ClientInfo {
            auth_scheme: r.read_string("ClientInfo.authScheme")?,
            user: r.read_string("ClientInfo.user")?,
        })
    }

    pub(crate) fn encode(&self, out: &mut impl BufMut) {
        put_string(out, &self.auth_scheme);
        put_string(out, &self.user);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_decode_totally() {
        for code in ErrorCode::KNOWN {
            assert_eq!(ErrorCode::from_code(code.code()), *code);
        }
        assert_eq!(ErrorCode::from_code(-126), ErrorCode::Unknown(-126));
        assert_eq!(ErrorCode::Unknown(-126).code(), -126);
        assert_eq!(ErrorCode::from_code(-101), ErrorCode::NoNode);
    }

    #[test]
    fn closed_enums_refuse_unknown_numbers() {
        assert_eq!(OpCode::try_from(106).unwrap(), OpCode::AddWatch);
        assert!(OpCode::try_from(999).is_err());
        assert!(CreateMode::try_from(7).is_err());
        for m in CreateMode::ALL {
            assert_eq!(CreateMode::try_from(m.code()).unwrap(), *m);
        }
    }

    #[test]
    fn perms_combine() {
        let rw = Perms::READ | Perms::WRITE;
        assert!(rw.contains(Perms::READ));
        assert!(!rw.contains(Perms::ADMIN));
        assert!(Perms::ALL.contains(rw));
    }
}
