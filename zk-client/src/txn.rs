//! Transactions (ZooKeeper's `multi`, kazoo's `transaction()`): check, create, delete and set_data
//! applied all together or not at all.
//!
//! A committed transaction gives one [`OpResult`] per op. A failed one applies nothing and fails
//! with [`Error::TransactionFailed`], which names the first failing op, its error (with its path)
//! and every op's outcome as kazoo reports them: [`Error::RolledBack`] before the failing op, its
//! own error, [`Error::RuntimeInconsistency`] after it.

use std::future::IntoFuture;
use std::time::Duration;

use bytes::Bytes;
use zk_core::proto::{
    Acl, CreateMode, ErrorCode, MultiOp, MultiResult, PathVersionRequest, Request, Response,
    SetDataRequest, Stat,
};
use zk_core::Error;

use crate::client::Client;
use crate::data::Data;
use crate::ops::{create_option_setters, CreateOptions};
use crate::reply::{unexpected, OpFuture, ReplyFuture};

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

/// A transaction being built; nothing is sent before [`commit`](Transaction::commit). An op
/// that cannot be built (a TTL out of range, modes that do not combine) makes `commit` fail with
/// that error before anything is sent.
#[must_use = "a transaction does nothing until committed"]
pub struct Transaction<'a> {
    client: &'a Client,
    ops: Vec<MultiOp>,
    /// The first op that could not be built.
    error: Option<Error>,
}

impl Client {
    /// Starts a transaction (kazoo's `transaction()`).
    pub fn transaction(&self) -> Transaction<'_> {
        Transaction {
            client: self,
            ops: Vec::new(),
            error: None,
        }
    }
}

impl<'a> Transaction<'a> {
    /// Fails the transaction unless `path` has data version `version` (-1 for any: the node
    /// must exist).
    pub fn check(mut self, path: &str, version: i32) -> Self {
        self.ops.push(MultiOp::Check(PathVersionRequest {
            path: path.to_owned(),
            version,
        }));
        self
    }

    /// Creates a node with `data`, persistent with the client's default ACL unless the returned
    /// builder says otherwise: `.acl()`, `.ephemeral()`, `.sequential()`, `.container()`,
    /// `.ttl()`, as [`Client::create`] takes them. The builder goes on with the transaction's
    /// own methods.
    pub fn create(self, path: &str, data: impl Data) -> TxnCreate<'a> {
        TxnCreate {
            txn: self,
            path: path.to_owned(),
            data: data.into_bytes(),
            opts: CreateOptions::default(),
        }
    }

    /// Deletes a node (`version` -1 for any).
    pub fn delete(mut self, path: &str, version: i32) -> Self {
        self.ops.push(MultiOp::Delete(PathVersionRequest {
            path: path.to_owned(),
            version,
        }));
        self
    }

    /// Replaces a node's data; `version` is the expected data version (-1 for any).
    pub fn set_data(mut self, path: &str, data: impl Data, version: i32) -> Self {
        self.ops.push(MultiOp::SetData(SetDataRequest {
            path: path.to_owned(),
            data: Some(data.into_bytes()),
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
    /// Errors with [`Error::TransactionFailed`] when an op failed (nothing applied), with the
    /// error of an op that could not be built (InvalidArgument, nothing sent), and with the
    /// session's errors (ConnectionLoss: it may or may not have applied).
    pub fn commit(self) -> OpFuture<Vec<OpResult>> {
        if let Some(e) = self.error {
            return OpFuture::new(ReplyFuture::submit(&self.client.engine, Err(e)), |_, r| {
                r.0.map(|_| Vec::new())
            });
        }
        // The paths, for naming the failing op in the error.
        let paths: Vec<String> = self.ops.iter().map(|o| o.path().to_owned()).collect();
        let reply = self.client.send(Request::Multi(self.ops));
        OpFuture::with_context(reply, paths, |paths, (r, _)| match r? {
            Response::Multi(results) => map_results(&paths, results),
            other => Err(unexpected(&other)),
        })
    }
}

impl<'a> IntoFuture for Transaction<'a> {
    type Output = Result<Vec<OpResult>, Error>;
    type IntoFuture = OpFuture<Vec<OpResult>>;

    /// Awaiting a transaction commits it.
    fn into_future(self) -> Self::IntoFuture {
        self.commit()
    }
}

/// A create inside a [`Transaction`], with the options of [`Client::create`]; the transaction's
/// own methods add the next op (or commit).
#[must_use = "a transaction does nothing until committed"]
pub struct TxnCreate<'a> {
    txn: Transaction<'a>,
    path: String,
    data: Bytes,
    opts: CreateOptions,
}

impl<'a> TxnCreate<'a> {
    create_option_setters!();

    /// The transaction with this create added.
    fn done(self) -> Transaction<'a> {
        let TxnCreate {
            mut txn,
            path,
            data,
            mut opts,
        } = self;
        let acl = opts
            .acl
            .take()
            .unwrap_or_else(|| txn.client.opts.default_acl.clone());
        match opts.multi_op(path, Some(data), acl) {
            Ok(op) => txn.ops.push(op),
            Err(e) => {
                txn.error.get_or_insert(e);
            }
        }
        txn
    }

    /// The flags of a [`CreateMode`] at once (zkCli's `-e`/`-s`/`-c` style): ephemeral,
    /// sequential, container. The TTL modes set only `sequential` where they have it; their TTL
    /// comes from [`ttl`](Self::ttl), without which they fail as a TTL mode without a TTL.
    pub fn mode(mut self, mode: CreateMode) -> Self {
        self.opts.ephemeral = mode.is_ephemeral();
        self.opts.sequential = mode.is_sequential();
        self.opts.container = mode == CreateMode::Container;
        self.opts.needs_ttl = matches!(
            mode,
            CreateMode::PersistentWithTtl | CreateMode::PersistentSequentialWithTtl
        );
        self
    }

    /// Adds a check (see [`Transaction::check`]).
    pub fn check(self, path: &str, version: i32) -> Transaction<'a> {
        self.done().check(path, version)
    }

    /// Adds a create (see [`Transaction::create`]).
    pub fn create(self, path: &str, data: impl Data) -> TxnCreate<'a> {
        self.done().create(path, data)
    }

    /// Adds a delete (see [`Transaction::delete`]).
    pub fn delete(self, path: &str, version: i32) -> Transaction<'a> {
        self.done().delete(path, version)
    }

    /// Adds a set_data (see [`Transaction::set_data`]).
    pub fn set_data(self, path: &str, data: impl Data, version: i32) -> Transaction<'a> {
        self.done().set_data(path, data, version)
    }

    /// Ends the create and gives the transaction back.
    pub fn end(self) -> Transaction<'a> {
        self.done()
    }

    /// Sends the transaction (see [`Transaction::commit`]).
    ///
    /// Errors as [`Transaction::commit`] does.
    pub fn commit(self) -> OpFuture<Vec<OpResult>> {
        self.done().commit()
    }
}

impl<'a> IntoFuture for TxnCreate<'a> {
    type Output = Result<Vec<OpResult>, Error>;
    type IntoFuture = OpFuture<Vec<OpResult>>;

    /// Awaiting the transaction commits it.
    fn into_future(self) -> Self::IntoFuture {
        self.commit()
    }
}

/// Maps the server's results: all successes, or kazoo's per-op errors for a failed transaction.
fn map_results(paths: &[String], results: Vec<MultiResult>) -> Result<Vec<OpResult>, Error> {
    let path_of = |i: usize| paths.get(i).map(String::as_str).unwrap_or("");
    if let Some((index, code)) = results
        .iter()
        .enumerate()
        .find_map(|(i, r)| r.error().map(|c| (i, c)))
    {
        // The server marks the ops before the failing one Ok (they would have applied) and
        // those after it RuntimeInconsistency; kazoo reports the first as RolledBackError.
        let outcomes = results
            .iter()
            .enumerate()
            .map(|(i, r)| match r {
                MultiResult::Error(ErrorCode::Ok) => Error::RolledBack {
                    path: path_of(i).to_owned(),
                },
                MultiResult::Error(code) => Error::from_code(*code, path_of(i)),
                // A success entry in a failed multi would be a server bug; report the op as
                // rolled back, which is what happened to it.
                _ => Error::RolledBack {
                    path: path_of(i).to_owned(),
                },
            })
            .collect();
        return Err(Error::TransactionFailed {
            index,
            error: Box::new(Error::from_code(code, path_of(index))),
            results: outcomes,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_transaction_reports_each_op_as_kazoo_does() {
        let paths = vec!["/a".to_owned(), "/b".to_owned(), "/c".to_owned()];
        let results = vec![
            MultiResult::Error(ErrorCode::Ok),
            MultiResult::Error(ErrorCode::NodeExists),
            MultiResult::Error(ErrorCode::RuntimeInconsistency),
        ];
        match map_results(&paths, results) {
            Err(Error::TransactionFailed {
                index,
                error,
                results,
            }) => {
                assert_eq!(index, 1);
                assert_eq!(*error, Error::NodeExists { path: "/b".into() });
                assert_eq!(
                    results,
                    vec![
                        Error::RolledBack { path: "/a".into() },
                        Error::NodeExists { path: "/b".into() },
                        Error::RuntimeInconsistency,
                    ]
                );
            }
            other => panic!("expected TransactionFailed, got {other:?}"),
        }
    }
}
