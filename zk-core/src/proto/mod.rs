//! The ZooKeeper wire protocol ("jute" records over length-prefixed frames), both directions.
//!
//! A client encodes [`Request`]s and decodes [`Response`]s; a server (the model server in
//! zk-testkit, the fuzzers) decodes requests and encodes replies with the same types. Nothing here
//! knows about connections or time: this module turns bytes into values and values into bytes, and
//! turns any malformed input into a [`DecodeError`] or [`FrameError`], never a panic.
//!
//! Layout: [`jute`] holds the primitives, [`frame`] the length-prefix framing, [`types`] the
//! numbered vocabularies and shared records, [`records`] the request records and headers,
//! [`multi`] transactions, [`names`] the child names of getChildren, [`message`] whole requests
//! and replies.

pub mod frame;
pub mod jute;
pub mod message;
pub mod multi;
pub mod names;
pub mod records;
pub mod types;

pub use frame::{encode_frame, FrameDecoder, DEFAULT_MAX_FRAME, SERVER_MAX_FRAME};
pub use jute::Reader;
pub use message::{
    decode_connect_request, decode_connect_response, decode_notification, decode_reply,
    decode_reply_header, decode_request, encode_connect_request, encode_connect_response,
    encode_notification, encode_reply, encode_request, xid, Request, Response,
};
pub use multi::{MultiHeader, MultiOp, MultiResult};
pub use names::ChildNames;
pub use records::{
    AddWatchRequest, AuthPacket, ConnectRequest, ConnectResponse, CreateRequest, CreateTtlRequest,
    PathRequest, PathVersionRequest, PathWatchRequest, ReconfigRequest, ReplyHeader, RequestHeader,
    SaslToken, SetAclRequest, SetDataRequest, SetWatches, SetWatches2, WatcherEvent,
    WatchesRequest, PASSWORD_LEN,
};
pub use types::{
    Acl, AddWatchMode, ClientInfo, CreateMode, ErrorCode, EventType, Id, KeeperState, OpCode,
    Perms, Stat, WatcherType, MAX_TTL_MS,
};

/// A record could not be decoded. The input was malformed; nothing was allocated for it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input ended before the record did.
    #[error("truncated record: needed {needed} more bytes, {remaining} left")]
    Truncated {
        /// Bytes the next read needed: one field, or a whole fixed-size record (a Stat).
        needed: usize,
        /// Bytes that were left.
        remaining: usize,
    },
    /// A length prefix below -1.
    #[error("negative length {0}")]
    NegativeLength(i32),
    /// A `ustring` that is not UTF-8.
    #[error("string is not valid UTF-8")]
    InvalidUtf8,
    /// A null (-1) where the protocol never sends one.
    #[error("unexpected null in {0}")]
    UnexpectedNull(&'static str),
    /// Bytes left over after the record ended.
    #[error("{0} trailing bytes after the record")]
    TrailingBytes(usize),
    /// A number that does not name a value of a closed vocabulary (opcode, create mode, ...).
    #[error("unknown {what} {code}")]
    UnknownCode {
        /// Which vocabulary.
        what: &'static str,
        /// The number received.
        code: i32,
    },
    /// An opcode that is never sent by a client, so has no request or reply body.
    #[error("opcode {0:?} is not a client request")]
    NotARequest(OpCode),
    /// A list of child names totalling more than 4 GiB (`u32::MAX` bytes), more than
    /// [`ChildNames`] holds. No frame holds that much (its length is an `i32`); only a caller
    /// decoding a larger buffer of its own can meet it.
    #[error("{0}: more than 4 GiB of names")]
    TooManyNameBytes(&'static str),
}

/// The byte stream could not be split into frames; the connection is out of step.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// A negative length prefix.
    #[error("negative frame length {0}")]
    NegativeLength(i32),
    /// A frame longer than the configured maximum.
    #[error("frame of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// The announced length.
        len: usize,
        /// The limit.
        max: usize,
    },
}

/// A frame could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// The frame would exceed the limit the peer accepts.
    #[error("frame of {len} bytes exceeds the limit of {max} bytes")]
    FrameTooLarge {
        /// The frame's payload length.
        len: usize,
        /// The limit.
        max: usize,
    },
}
