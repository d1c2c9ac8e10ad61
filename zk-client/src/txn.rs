//! Transactions (ZooKeeper's `multi`, kazoo's `transaction()`): check, create, delete and set_data
//! applied all together or not at all.
//!
//! A committed transaction gives one [`OpResult`] per op. A failed one applies nothing and fails
//! with [`Error::TransactionFailed`], which names the first failing op, its error (with its path)
//! and every op's result: kazoo's list of results and Java's exception in one value.

use bytes::Bytes;
use zk_core::proto::{
    Acl, CreateMode, CreateRequest, MultiOp, MultiResult, PathVersionRequest, Request, Response,
    SetDataRequest, Stat,
};
use zk_core::Error;

use crate::client::Client;
use crate::reply::{unexpected, OpFuture};
use crate::runtime::Runtime;

/// The result of one op of a committed transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpResult {
    /// A create: the path created (with any sequence suffix), and its Stat when the server sends
    /// one (servers before 3.7.2/3.8.2 send only the path).
    Created {
        /// The path created.
        path: String,
        /// The new node's Stat, if the server sent it.
        stat: Option<Stat>,
    },
    /// A delete.
    Deleted,
    /// A set_data: the node's new Stat.
    SetData {
        /// The new Stat.
        stat: Stat,
    },
    /// A check that passed.
    Checked,
}

/// A transaction being built; nothing is sent before [`commit`](Transaction::commit).
#[must_use = "a transaction does nothing until committed"]
pub struct Transaction<'a, R: Runtime> {
    client: &'a Client<R>,
    ops: Vec<MultiOp>,
}

impl<R: Runtime> Client<R> {
    /// Starts a transaction (kazoo's `transaction()`).
    pub fn transaction(&self) -> Transaction<'_, R> {
        Transaction {
            client: self,
            ops: Vec::new(),
        }
    }
}

impl<R: Runtime> Transaction<'_, R> {
    /// Fails the transaction unless `path` has data version `version`.
    pub fn check(mut self, path: &str, version: i32) -> Self {
        self.ops.push(MultiOp::Check(PathVersionRequest {
            path: path.to_owned(),
            version,
        }));
        self
    }

    /// Creates a persistent node with the client's default ACL.
    pub fn create(self, path: &str, data: impl Into<Bytes>) -> Self {
        self.create_with(path, data, CreateMode::Persistent, None)
    }

    /// Creates a node with a mode (ephemeral, sequential, container) and optionally an ACL.
    /// TTL nodes are not available inside a transaction here.
    pub fn create_with(
        mut self,
        path: &str,
        data: impl Into<Bytes>,
        mode: CreateMode,
        acl: Option<Vec<Acl>>,
    ) -> Self {
        let req = CreateRequest {
            path: path.to_owned(),
            data: Some(data.into()),
            acl: acl.unwrap_or_else(|| self.client.opts.default_acl.clone()),
            flags: mode.code(),
        };
        self.ops.push(if mode == CreateMode::Container {
            MultiOp::CreateContainer(req)
        } else {
            MultiOp::Create(req)
        });
        self
    }

    /// Deletes a node (`version` -1 for any).
    pub fn delete(mut self, path: &str, version: i32) -> Self {
        self.ops.push(MultiOp::Delete(PathVersionRequest {
            path: path.to_owned(),
            version,
        }));
        self
    }

    /// Replaces a node's data (`version` -1 for any).
    pub fn set_data(mut self, path: &str, data: impl Into<Bytes>, version: i32) -> Self {
        self.ops.push(MultiOp::SetData(SetDataRequest {
            path: path.to_owned(),
            data: Some(data.into()),
            version,
        }));
        self
    }

    /// Number of ops so far.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// True when no op was added.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Sends the transaction.
    ///
    /// Errors with [`Error::TransactionFailed`] when an op failed (nothing applied), and with the
    /// session's errors (ConnectionLoss: it may or may not have applied).
    pub fn commit(self) -> OpFuture<Vec<OpResult>> {
        // The paths, for naming the failing op in the error.
        let paths: Vec<String> = self.ops.iter().map(|o| o.path().to_owned()).collect();
        let reply = self.client.send(Request::Multi(self.ops));
        // OpFuture maps with a plain fn; carry the paths through the shared state instead of a
        // closure by resolving them after the reply.
        OpFuture::with_context(reply, paths, |paths, (r, _)| match r? {
            Response::Multi(results) => map_results(paths, results),
            other => Err(unexpected(&other)),
        })
    }
}

fn map_results(paths: Vec<String>, results: Vec<MultiResult>) -> Result<Vec<OpResult>, Error> {
    if let Some((index, code)) = results
        .iter()
        .enumerate()
        .find_map(|(i, r)| r.error().map(|c| (i, c)))
    {
        let path = paths.get(index).map(String::as_str).unwrap_or("");
        return Err(Error::TransactionFailed {
            index,
            error: Box::new(Error::from_code(code, path)),
            results,
        });
    }
    results
        .into_iter()
        .map(|r| match r {
            MultiResult::Create { path } => Ok(OpResult::Created { path, stat: None }),
            MultiResult::Create2 { path, stat } => Ok(OpResult::Created {
                path,
                stat: Some(stat),
            }),
            MultiResult::Delete => Ok(OpResult::Deleted),
            MultiResult::SetData(stat) => Ok(OpResult::SetData { stat }),
            MultiResult::Check => Ok(OpResult::Checked),
            // An OK error entry cannot occur in a successful multi; treat it as a server bug.
            other => Err(Error::Protocol(format!(
                "unexpected multi result {other:?}"
            ))),
        })
        .collect()
}
