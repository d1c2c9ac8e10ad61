//! multi (14) and multiRead (22): a sequence of `MultiHeader` + record pairs closed by a terminator
//! header, in both directions (PROTOCOL.md §9).
//!
//! Results are decoded by the type in each result's own header, never by the type that was sent:
//! servers before 3.7.2/3.8.2/3.9.0 answer a create2 sub-op with a plain create result.

use bytes::{BufMut, Bytes};

use super::jute::{put_bool, put_buffer, put_string, Reader};
use super::names::ChildNames;
use super::records::{
    CreateRequest, CreateTtlRequest, PathVersionRequest, PathWatchRequest, SetDataRequest,
};
use super::types::{ErrorCode, OpCode, Stat};
use super::DecodeError;

/// The header before each op or result inside multi and multiRead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MultiHeader {
    /// The op or result type (an opcode, or -1 for an error result and the terminator).
    pub op_type: i32,
    /// True only on the terminator.
    pub done: bool,
    /// -1 in requests; the op's error code in results.
    pub err: i32,
}

impl MultiHeader {
    /// Bytes on the wire.
    pub const WIRE_LEN: usize = 9;
    /// The terminator that closes every multi request and response: `ffffffff 01 ffffffff`.
    pub const TERMINATOR: MultiHeader = MultiHeader {
        op_type: -1,
        done: true,
        err: -1,
    };

    /// Decodes a header. Errors with [`DecodeError::Truncated`].
    pub fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(MultiHeader {
            op_type: r.read_i32()?,
            done: r.read_bool()?,
            err: r.read_i32()?,
        })
    }

    /// Encodes a header.
    pub fn encode(&self, out: &mut impl BufMut) {
        out.put_i32(self.op_type);
        put_bool(out, self.done);
        out.put_i32(self.err);
    }
}

/// One operation inside multi (writes) or multiRead (reads).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MultiOp {
    /// create (1).
    Create(CreateRequest),
    /// create2 (15).
    Create2(CreateRequest),
    /// createContainer (19).
    CreateContainer(CreateRequest),
    /// createTTL (21).
    CreateTtl(CreateTtlRequest),
    /// delete (2).
    Delete(PathVersionRequest),
    /// setData (5).
    SetData(SetDataRequest),
    /// check (13): fails the transaction unless the version matches.
    Check(PathVersionRequest),
    /// getData (4), multiRead only; the watch flag is ignored by the server.
    GetData(PathWatchRequest),
    /// getChildren (8), multiRead only; the watch flag is ignored by the server.
    GetChildren(PathWatchRequest),
}

impl MultiOp {
    /// The opcode written in this op's header.
    pub fn op_code(&self) -> OpCode {
        match self {
            MultiOp::Create(_) => OpCode::Create,
            MultiOp::Create2(_) => OpCode::Create2,
            MultiOp::CreateContainer(_) => OpCode::CreateContainer,
            MultiOp::CreateTtl(_) => OpCode::CreateTtl,
            MultiOp::Delete(_) => OpCode::Delete,
            MultiOp::SetData(_) => OpCode::SetData,
            MultiOp::Check(_) => OpCode::Check,
            MultiOp::GetData(_) => OpCode::GetData,
            MultiOp::GetChildren(_) => OpCode::GetChildren,
        }
    }

    /// True for the ops multiRead allows (getData, getChildren).
    pub fn is_read(&self) -> bool {
        matches!(self, MultiOp::GetData(_) | MultiOp::GetChildren(_))
    }

    /// The path the op concerns.
    pub fn path(&self) -> &str {
        match self {
            MultiOp::Create(r) | MultiOp::Create2(r) | MultiOp::CreateContainer(r) => &r.path,
            MultiOp::CreateTtl(r) => &r.path,
            MultiOp::Delete(r) | MultiOp::Check(r) => &r.path,
            MultiOp::SetData(r) => &r.path,
            MultiOp::GetData(r) | MultiOp::GetChildren(r) => &r.path,
        }
    }

    /// Mutable access to the op's path, for chroot mapping.
    pub fn path_mut(&mut self) -> &mut String {
        match self {
            MultiOp::Create(r) | MultiOp::Create2(r) | MultiOp::CreateContainer(r) => &mut r.path,
            MultiOp::CreateTtl(r) => &mut r.path,
            MultiOp::Delete(r) | MultiOp::Check(r) => &mut r.path,
            MultiOp::SetData(r) => &mut r.path,
            MultiOp::GetData(r) | MultiOp::GetChildren(r) => &mut r.path,
        }
    }

    fn encode(&self, out: &mut impl BufMut) {
        MultiHeader {
            op_type: self.op_code().code(),
            done: false,
            err: -1,
        }
        .encode(out);
        match self {
            MultiOp::Create(r) | MultiOp::Create2(r) | MultiOp::CreateContainer(r) => r.encode(out),
            MultiOp::CreateTtl(r) => r.encode(out),
            MultiOp::Delete(r) | MultiOp::Check(r) => r.encode(out),
            MultiOp::SetData(r) => r.encode(out),
            MultiOp::GetData(r) | MultiOp::GetChildren(r) => r.encode(out),
        }
    }

    fn decode(op_type: i32, r: &mut Reader) -> Result<Self, DecodeError> {
        let op = OpCode::try_from(op_type).map_err(|_| DecodeError::UnknownCode {
            what: "multi op type",
            code: op_type,
        })?;
        Ok(match op {
            OpCode::Create => MultiOp::Create(CreateRequest::decode(r)?),
            OpCode::Create2 => MultiOp::Create2(CreateRequest::decode(r)?),
            OpCode::CreateContainer => MultiOp::CreateContainer(CreateRequest::decode(r)?),
            OpCode::CreateTtl => MultiOp::CreateTtl(CreateTtlRequest::decode(r)?),
            OpCode::Delete => MultiOp::Delete(PathVersionRequest::decode(r)?),
            OpCode::SetData => MultiOp::SetData(SetDataRequest::decode(r)?),
            OpCode::Check => MultiOp::Check(PathVersionRequest::decode(r)?),
            OpCode::GetData => MultiOp::GetData(PathWatchRequest::decode(r)?),
            OpCode::GetChildren => MultiOp::GetChildren(PathWatchRequest::decode(r)?),
            _ => {
                return Err(DecodeError::UnknownCode {
                    what: "multi op type",
                    code: op_type,
                })
            }
        })
    }

    /// Encodes a MultiOperationRecord: every op, then the terminator.
    pub fn encode_all(ops: &[MultiOp], out: &mut impl BufMut) {
        for op in ops {
            op.encode(out);
        }
        MultiHeader::TERMINATOR.encode(out);
    }

    /// Decodes a MultiOperationRecord up to and including its terminator.
    ///
    /// Errors with [`DecodeError::UnknownCode`] for a sub-op type that cannot appear in a
    /// transaction (the server answers those with MarshallingError), and on any malformed record.
    pub fn decode_all(r: &mut Reader) -> Result<Vec<MultiOp>, DecodeError> {
        let mut ops = Vec::new();
        loop {
            let h = MultiHeader::decode(r)?;
            if h.done {
                return Ok(ops);
            }
            ops.push(MultiOp::decode(h.op_type, r)?);
        }
    }
}

/// One result inside a multi or multiRead reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MultiResult {
    /// Result type 1: the created path (older servers answer create2 sub-ops this way too).
    Create {
        /// The path created, with any sequence suffix.
        path: String,
    },
    /// Result type 15: the created path and its Stat (create2, createTTL, createContainer).
    Create2 {
        /// The path created.
        path: String,
        /// The new node's Stat.
        stat: Stat,
    },
    /// Result type 2.
    Delete,
    /// Result type 5: the node's new Stat.
    SetData(Stat),
    /// Result type 13.
    Check,
    /// Result type 4 (multiRead).
    GetData {
        /// The data; `None` for a null buffer.
        data: Option<Bytes>,
        /// The node's Stat.
        stat: Stat,
    },
    /// Result type 8 (multiRead).
    GetChildren {
        /// Child names.
        children: ChildNames,
    },
    /// Result type -1: this op's error. In a failed multi, ops before the failing one carry
    /// [`ErrorCode::Ok`] and ops after it [`ErrorCode::RuntimeInconsistency`].
    Error(ErrorCode),
}

impl MultiResult {
    fn header(&self) -> MultiHeader {
        let (op_type, err) = match self {
            MultiResult::Create { .. } => (OpCode::Create.code(), 0),
            MultiResult::Create2 { .. } => (OpCode::Create2.code(), 0),
            MultiResult::Delete => (OpCode::Delete.code(), 0),
            MultiResult::SetData(_) => (OpCode::SetData.code(), 0),
            MultiResult::Check => (OpCode::Check.code(), 0),
            MultiResult::GetData { .. } => (OpCode::GetData.code(), 0),
            MultiResult::GetChildren { .. } => (OpCode::GetChildren.code(), 0),
            MultiResult::Error(code) => (OpCode::Error.code(), code.code()),
        };
        MultiHeader {
            op_type,
            done: false,
            err,
        }
    }

    fn encode(&self, out: &mut impl BufMut) {
        self.header().encode(out);
        match self {
            MultiResult::Create { path } => put_string(out, path),
            MultiResult::Create2 { path, stat } => {
                put_string(out, path);
                stat.encode(out);
            }
            MultiResult::Delete | MultiResult::Check => {}
            MultiResult::SetData(stat) => stat.encode(out),
            MultiResult::GetData { data, stat } => {
                put_buffer(out, data.as_deref());
                stat.encode(out);
            }
            MultiResult::GetChildren { children } => children.encode(out),
            MultiResult::Error(code) => out.put_i32(code.code()),
        }
    }

    fn decode(h: &MultiHeader, r: &mut Reader) -> Result<Self, DecodeError> {
        let unknown = || DecodeError::UnknownCode {
            what: "multi result type",
            code: h.op_type,
        };
        let op = OpCode::try_from(h.op_type).map_err(|_| unknown())?;
        Ok(match op {
            OpCode::Create => MultiResult::Create {
                path: r.read_string("CreateResponse.path")?,
            },
            OpCode::Create2 => MultiResult::Create2 {
                path: r.read_string("Create2Response.path")?,
                stat: Stat::decode(r)?,
            },
            OpCode::Delete => MultiResult::Delete,
            OpCode::SetData => MultiResult::SetData(Stat::decode(r)?),
            OpCode::Check => MultiResult::Check,
            OpCode::GetData => MultiResult::GetData {
                data: r.read_buffer()?,
                stat: Stat::decode(r)?,
            },
            OpCode::GetChildren => MultiResult::GetChildren {
                children: ChildNames::decode(r, "children")?,
            },
            // The body repeats the header's code; Java reads the body's, and so do we.
            OpCode::Error => MultiResult::Error(ErrorCode::from_code(r.read_i32()?)),
            _ => return Err(unknown()),
        })
    }

    /// The error this result carries, if it is an error result other than OK.
    pub fn error(&self) -> Option<ErrorCode> {
        match self {
            MultiResult::Error(code) if !code.is_ok() => Some(*code),
            _ => None,
        }
    }

    /// Encodes a MultiResponse: every result, then the terminator.
    pub fn encode_all(results: &[MultiResult], out: &mut impl BufMut) {
        for res in results {
            res.encode(out);
        }
        MultiHeader::TERMINATOR.encode(out);
    }

    /// Decodes a MultiResponse up to and including its terminator.
    ///
    /// Errors with [`DecodeError::UnknownCode`] for a result type that a multi cannot carry, and
    /// on any malformed record.
    pub fn decode_all(r: &mut Reader) -> Result<Vec<MultiResult>, DecodeError> {
        let mut results = Vec::new();
        loop {
            let h = MultiHeader::decode(r)?;
            if h.done {
                return Ok(results);
            }
            results.push(MultiResult::decode(&h, r)?);
        }
    }
}
