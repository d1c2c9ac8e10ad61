//! The operations as blocking methods, in zk-client's vocabulary with one rule: where zk-client
//! returns a builder that is awaited (`get_data`, `set_data`, `exists`, `get_children`,
//! `create`, `delete`: the operations with options), this crate returns the same builder with
//! the same options, ended by `.run()` where the async code writes `.await`
//! (`client.set_data(p, d).version(v).run()?`); where zk-client returns a plain future (`sync`,
//! `get_acl`, `set_acl`, `ensure_path`, ...), this crate returns the result. A transaction ends
//! in `.commit()` on both.
//!
//! "The session's errors", below, are those any request can fail with: ConnectionLoss (the link
//! dropped while the request was in flight; it may or may not have applied), SessionExpired,
//! Closed (the client was closed), Timeout (with a request timeout set), AuthFailed, NotReadOnly
//! (a write on a read-only server), RequestTooLarge, and Unsupported (the server is too old for
//! the operation).

use std::future::IntoFuture;
use std::time::Duration;

use bytes::Bytes;
use zk_client::{
    Acl, AddWatchMode, ChildNames, ClientInfo, Data, Error, OpResult, ReadOp, ReadResult, Stat,
};

use crate::client::Client;
use crate::runtime::block_on;
use crate::watch::{PersistentWatch, Watch};

impl Client {
    /// Creates a node with `data` (kazoo's `create`); set options on the builder, then
    /// [`run`](Create::run) it, which returns the path created (with its sequence suffix):
    /// `client.create("/x", "v").ephemeral().make_parents().run()?`.
    ///
    /// `run` errors with NodeExists, NoNode (parent missing, without `make_parents`),
    /// NoChildrenForEphemerals, InvalidAcl, InvalidArgument (conflicting modes, a TTL out of
    /// range), NoAuth, Unimplemented (TTL disabled on the server), InvalidPath, and the session's
    /// errors.
    pub fn create(&self, path: &str, data: impl Data) -> Create<'_> {
        Create(self.inner.create(path, data))
    }

    /// Reads a node's data and Stat (kazoo's `get`): `client.get_data(p).run()?`, or
    /// `.watch().run()?` to also arm a one-shot data watch that fires when the node changes or
    /// is deleted. A node created with null data reads as empty bytes.
    ///
    /// `run` errors with NoNode (no watch is armed then: use [`exists`](Self::exists) with
    /// `.watch()`), NoAuth, InvalidPath and the session's errors.
    pub fn get_data(&self, path: &str) -> GetData<'_> {
        GetData(self.inner.get_data(path))
    }

    /// Replaces a node's data (kazoo's `set`): `client.set_data(p, d).version(v).run()?` gives
    /// the new Stat; without `.version(v)` any version is replaced.
    ///
    /// `run` errors with NoNode, BadVersion, NoAuth, RequestTooLarge, InvalidPath and the
    /// session's errors.
    pub fn set_data(&self, path: &str, data: impl Data) -> SetData<'_> {
        SetData(self.inner.set_data(path, data))
    }

    /// Deletes a node (kazoo's `delete`); `.version(v)` makes it conditional, `.recursive()`
    /// deletes its descendants first (and is fine with a node already gone); then
    /// [`run`](Delete::run) it.
    ///
    /// `run` errors with NoNode (without `recursive`), BadVersion, NotEmpty (without
    /// `recursive`), NoAuth, InvalidPath and the session's errors.
    pub fn delete(&self, path: &str) -> Delete<'_> {
        Delete(self.inner.delete(path))
    }

    /// The node's Stat, or `None` if it does not exist (kazoo's `exists`): `.run()`, or
    /// `.watch().run()` to also arm a one-shot watch (on a missing node it fires on creation,
    /// on an existing one on change or deletion).
    ///
    /// `run` errors with InvalidPath and the session's errors.
    pub fn exists(&self, path: &str) -> Exists<'_> {
        Exists(self.inner.exists(path))
    }

    /// The names of a node's children, in no defined order (kazoo's `get_children`), as
    /// [`ChildNames`] (`.to_vec()` gives `Vec<String>`): `.run()`; `.with_stat()` adds the
    /// node's Stat (kazoo's `include_data=True`), `.watch()` a one-shot child watch, and
    /// `.with_stat_and_watch()` both.
    ///
    /// `run` errors with NoNode, NoAuth, InvalidPath and the session's errors.
    pub fn get_children(&self, path: &str) -> GetChildren<'_> {
        GetChildren(self.inner.get_children(path))
    }

    /// Creates `path` and any missing ancestors with the default ACL, tolerating nodes that
    /// already exist (kazoo's `ensure_path`).
    ///
    /// Errors with InvalidPath, NoAuth, NoChildrenForEphemerals and the session's errors.
    pub fn ensure_path(&self, path: &str) -> Result<(), Error> {
        block_on(self.inner.ensure_path(path))
    }

    /// Makes sure the connected server has caught up with the leader for `path` before later
    /// reads (kazoo's `sync`).
    ///
    /// Errors with InvalidPath and the session's errors.
    pub fn sync(&self, path: &str) -> Result<(), Error> {
        block_on(self.inner.sync(path))
    }

    /// A node's ACL and Stat (kazoo's `get_acls`).
    ///
    /// Errors with NoNode, NoAuth, InvalidPath and the session's errors.
    pub fn get_acl(&self, path: &str) -> Result<(Vec<Acl>, Stat), Error> {
        block_on(self.inner.get_acl(path))
    }

    /// Replaces a node's ACL (kazoo's `set_acls`) if its ACL version is `version` (-1 for any),
    /// and returns the new Stat.
    ///
    /// Errors with NoNode, BadVersion, InvalidAcl, NoAuth, InvalidPath and the session's errors.
    pub fn set_acl(&self, path: &str, acl: Vec<Acl>, version: i32) -> Result<Stat, Error> {
        block_on(self.inner.set_acl(path, acl, version))
    }

    /// Adds credentials to this connection and every later one (kazoo's `add_auth`).
    ///
    /// Errors with AuthFailed (which ends the session) and the session's errors.
    pub fn add_auth(&self, scheme: &str, credential: impl Data) -> Result<(), Error> {
        block_on(self.inner.add_auth(scheme, credential))
    }

    /// This session's ephemeral nodes whose path starts with `prefix` (a plain string prefix;
    /// `/` for all). ZooKeeper 3.6+.
    ///
    /// Errors with Unsupported on older servers, and the session's errors.
    pub fn get_ephemerals(&self, prefix: &str) -> Result<Vec<String>, Error> {
        block_on(self.inner.get_ephemerals(prefix))
    }

    /// The number of descendants of `path`, not counting itself. ZooKeeper 3.6+.
    ///
    /// Errors with NoNode, NoAuth, Unsupported on older servers, and the session's errors.
    pub fn get_all_children_number(&self, path: &str) -> Result<i32, Error> {
        block_on(self.inner.get_all_children_number(path))
    }

    /// The identities this connection is authenticated as. ZooKeeper 3.7+.
    ///
    /// Errors with Unsupported on older servers, and the session's errors.
    pub fn whoami(&self) -> Result<Vec<ClientInfo>, Error> {
        block_on(self.inner.whoami())
    }

    /// The ensemble's dynamic configuration (`/zookeeper/config`, read without the chroot) and
    /// its Stat.
    ///
    /// Errors with NoNode (no dynamic config, e.g. standalone), NoAuth and the session's errors.
    pub fn get_config(&self) -> Result<(Bytes, Stat), Error> {
        block_on(self.inner.get_config())
    }

    /// Changes the ensemble's membership (ZooKeeper's `reconfig`): servers to add and ids to
    /// remove (incremental), or a whole new member list; `from_config` is the config version it
    /// applies to (-1 for any). Returns the new config and its Stat.
    ///
    /// Errors with ReconfigDisabled, NewConfigNoQuorum, ReconfigInProgress, BadVersion, NoAuth,
    /// Unimplemented (standalone) and the session's errors.
    pub fn reconfig(
        &self,
        joining: Option<&str>,
        leaving: Option<&str>,
        new_members: Option<&str>,
        from_config: i64,
    ) -> Result<(Bytes, Stat), Error> {
        block_on(
            self.inner
                .reconfig(joining, leaving, new_members, from_config),
        )
    }

    /// Reads several nodes in one round trip (ZooKeeper 3.6+ `multiRead`). Not atomic: each read
    /// has its own result, and reads never arm watches.
    ///
    /// Errors with Unsupported on older servers, and the session's errors; per-read errors
    /// (NoNode, NoAuth) are in the results.
    pub fn multi_read(&self, reads: Vec<ReadOp>) -> Result<Vec<ReadResult>, Error> {
        block_on(self.inner.multi_read(reads))
    }

    /// Starts a transaction (kazoo's `transaction()`): add ops, then
    /// [`commit`](Transaction::commit).
    pub fn transaction(&self) -> Transaction<'_> {
        Transaction(self.inner.transaction())
    }

    /// Adds a persistent watch on `path`, which need not exist: [`AddWatchMode::Persistent`]
    /// sees every event of the node itself, [`AddWatchMode::PersistentRecursive`] created,
    /// deleted and changed events of the node and all its descendants. ZooKeeper 3.6+. The watch
    /// lasts until the returned value is dropped or the session ends.
    ///
    /// Errors with Unsupported on older servers, InvalidPath, NoAuth and the session's errors.
    pub fn add_watch(&self, path: &str, mode: AddWatchMode) -> Result<PersistentWatch, Error> {
        block_on(self.inner.add_watch(path, mode)).map(PersistentWatch::new)
    }
}

/// Builder for [`Client::get_data`]; nothing is sent before [`run`](GetData::run).
#[must_use = "nothing is read until .run()"]
pub struct GetData<'a>(pub(crate) zk_client::ops::GetData<'a>);

impl<'a> GetData<'a> {
    /// Also arm a one-shot data watch.
    pub fn watch(self) -> GetDataWatch {
        GetDataWatch(self.0.watch())
    }

    /// Reads the node: its data and Stat.
    ///
    /// Errors as [`Client::get_data`] says.
    pub fn run(self) -> Result<(Bytes, Stat), Error> {
        block_on(self.0.into_future())
    }
}

/// A read that arms a data watch ([`GetData::watch`]); sent already, [`run`](Self::run) waits.
#[must_use = "the watch is yours once .run() returns it"]
pub struct GetDataWatch(zk_client::OpFuture<(Bytes, Stat, zk_client::Watch)>);

impl GetDataWatch {
    /// The node's data, Stat and the armed watch.
    ///
    /// Errors as [`Client::get_data`] says.
    pub fn run(self) -> Result<(Bytes, Stat, Watch), Error> {
        block_on(self.0).map(|(d, s, w)| (d, s, Watch::new(w)))
    }
}

/// Builder for [`Client::set_data`]; nothing is sent before [`run`](SetData::run).
#[must_use = "nothing is written until .run()"]
pub struct SetData<'a>(pub(crate) zk_client::ops::SetData<'a>);

impl SetData<'_> {
    /// Only if the node's data version is `v` (BadVersion otherwise).
    pub fn version(self, v: i32) -> Self {
        SetData(self.0.version(v))
    }

    /// Writes the data; returns the node's new Stat.
    ///
    /// Errors as [`Client::set_data`] says.
    pub fn run(self) -> Result<Stat, Error> {
        block_on(self.0.into_future())
    }
}

/// Builder for [`Client::exists`]; nothing is sent before [`run`](Exists::run).
#[must_use = "nothing is read until .run()"]
pub struct Exists<'a>(pub(crate) zk_client::ops::Exists<'a>);

impl Exists<'_> {
    /// Also arm a one-shot watch (creation of a missing node, change or deletion of an
    /// existing one).
    pub fn watch(self) -> ExistsWatch {
        ExistsWatch(self.0.watch())
    }

    /// The node's Stat, or `None`.
    ///
    /// Errors as [`Client::exists`] says.
    pub fn run(self) -> Result<Option<Stat>, Error> {
        block_on(self.0.into_future())
    }
}

/// An exists that arms a watch ([`Exists::watch`]); sent already, [`run`](Self::run) waits.
#[must_use = "the watch is yours once .run() returns it"]
pub struct ExistsWatch(zk_client::OpFuture<(Option<Stat>, zk_client::Watch)>);

impl ExistsWatch {
    /// The node's Stat (or `None`) and the armed watch.
    ///
    /// Errors as [`Client::exists`] says.
    pub fn run(self) -> Result<(Option<Stat>, Watch), Error> {
        block_on(self.0).map(|(s, w)| (s, Watch::new(w)))
    }
}

/// Builder for [`Client::get_children`]; nothing is sent before `run`.
#[must_use = "nothing is read until .run()"]
pub struct GetChildren<'a>(pub(crate) zk_client::ops::GetChildren<'a>);

impl GetChildren<'_> {
    /// Also return the node's Stat (getChildren2).
    pub fn with_stat(self) -> Ready<(ChildNames, Stat)> {
        Ready(self.0.with_stat())
    }

    /// Also arm a one-shot child watch.
    pub fn watch(self) -> ChildrenWatchRead {
        ChildrenWatchRead(self.0.watch())
    }

    /// Children, the node's Stat, and a one-shot child watch.
    pub fn with_stat_and_watch(self) -> ChildrenStatWatchRead {
        ChildrenStatWatchRead(self.0.with_stat_and_watch())
    }

    /// The child names.
    ///
    /// Errors as [`Client::get_children`] says.
    pub fn run(self) -> Result<ChildNames, Error> {
        block_on(self.0.into_future())
    }
}

/// A request already sent; [`run`](Self::run) waits for its result.
#[must_use = "the result comes with .run()"]
pub struct Ready<T>(zk_client::OpFuture<T>);

impl<T> Ready<T> {
    /// Waits for the result.
    ///
    /// Errors as the operation that made it says.
    pub fn run(self) -> Result<T, Error> {
        block_on(self.0)
    }
}

/// A child listing that arms a watch ([`GetChildren::watch`]); [`run`](Self::run) waits.
#[must_use = "the watch is yours once .run() returns it"]
pub struct ChildrenWatchRead(zk_client::OpFuture<(ChildNames, zk_client::Watch)>);

impl ChildrenWatchRead {
    /// The child names and the armed watch.
    ///
    /// Errors as [`Client::get_children`] says.
    pub fn run(self) -> Result<(ChildNames, Watch), Error> {
        block_on(self.0).map(|(c, w)| (c, Watch::new(w)))
    }
}

/// Children, Stat and watch ([`GetChildren::with_stat_and_watch`]); [`run`](Self::run) waits.
#[must_use = "the watch is yours once .run() returns it"]
pub struct ChildrenStatWatchRead(zk_client::OpFuture<(ChildNames, Stat, zk_client::Watch)>);

impl ChildrenStatWatchRead {
    /// The child names, the node's Stat and the armed watch.
    ///
    /// Errors as [`Client::get_children`] says.
    pub fn run(self) -> Result<(ChildNames, Stat, Watch), Error> {
        block_on(self.0).map(|(c, s, w)| (c, s, Watch::new(w)))
    }
}

/// Builder for [`Client::create`]; nothing is sent before [`run`](Create::run) or
/// [`run_async`](Create::run_async).
#[must_use = "nothing is created until .run() or .run_async()"]
pub struct Create<'a>(pub(crate) zk_client::ops::Create<'a>);

impl<'a> Create<'a> {
    /// The node's ACL (default: the client's default ACL): a `Vec<Acl>`, a slice, or an
    /// `Arc<[Acl]>` that many creates share without copying it.
    pub fn acl(self, acl: impl Into<std::sync::Arc<[Acl]>>) -> Self {
        Create(self.0.acl(acl))
    }

    /// Delete the node when this session ends.
    pub fn ephemeral(self) -> Self {
        Create(self.0.ephemeral())
    }

    /// Append a 10-digit sequence number to the name.
    pub fn sequential(self) -> Self {
        Create(self.0.sequential())
    }

    /// A container node: the server deletes it after its last child goes (3.5.1+).
    pub fn container(self) -> Self {
        Create(self.0.container())
    }

    /// A TTL node: the server deletes it once childless and unchanged for `ttl` (needs
    /// `extendedTypesEnabled` on the server).
    pub fn ttl(self, ttl: Duration) -> Self {
        Create(self.0.ttl(ttl))
    }

    /// Create missing parents first, as persistent nodes with the same ACL (kazoo's `makepath`).
    pub fn make_parents(self) -> Self {
        Create(self.0.make_parents())
    }

    /// Null data instead of bytes (a reader gets empty bytes and `data_length` 0).
    pub fn null_data(self) -> Self {
        Create(self.0.null_data())
    }

    /// Also return the new node's Stat.
    pub fn with_stat(self) -> CreateWithStat<'a> {
        CreateWithStat(self.0.with_stat())
    }

    /// Sends the create and returns the path created.
    ///
    /// Errors as [`Client::create`] says.
    pub fn run(self) -> Result<String, Error> {
        block_on(self.0.into_future())
    }
}

/// Builder for a create that also returns the new node's Stat ([`Create::with_stat`]).
#[must_use = "nothing is created until .run()"]
pub struct CreateWithStat<'a>(zk_client::ops::CreateWithStat<'a>);

impl CreateWithStat<'_> {
    /// Sends the create and returns the path created and the node's Stat.
    ///
    /// Errors as [`Client::create`] says.
    pub fn run(self) -> Result<(String, Stat), Error> {
        block_on(self.0.into_future())
    }
}

/// Builder for [`Client::delete`]; nothing is sent before [`run`](Delete::run) or
/// [`run_async`](Delete::run_async).
#[must_use = "nothing is deleted until .run() or .run_async()"]
pub struct Delete<'a>(pub(crate) zk_client::ops::Delete<'a>);

impl Delete<'_> {
    /// Only if the node's data version is `v` (BadVersion otherwise).
    pub fn version(self, v: i32) -> Self {
        Delete(self.0.version(v))
    }

    /// Delete the node's descendants first (kazoo's `recursive=True`). Not atomic: nodes created
    /// meanwhile can make it fail with NotEmpty.
    pub fn recursive(self) -> Self {
        Delete(self.0.recursive())
    }

    /// Sends the delete.
    ///
    /// Errors as [`Client::delete`] says.
    pub fn run(self) -> Result<(), Error> {
        block_on(self.0.into_future())
    }
}

/// A transaction being built (kazoo's `transaction()`): check, create, delete and set_data
/// applied all together or not at all. Nothing is sent before [`commit`](Transaction::commit).
#[must_use = "a transaction does nothing until committed"]
pub struct Transaction<'a>(zk_client::Transaction<'a>);

impl<'a> Transaction<'a> {
    /// Fails the transaction unless `path` has data version `version`.
    pub fn check(self, path: &str, version: i32) -> Self {
        Transaction(self.0.check(path, version))
    }

    /// Creates a node with `data`, persistent with the client's default ACL unless the returned
    /// builder says otherwise (`.acl()`, `.ephemeral()`, `.sequential()`, `.container()`,
    /// `.ttl()`, as [`Client::create`] takes them); it goes on with the transaction's methods.
    pub fn create(self, path: &str, data: impl Data) -> TxnCreate<'a> {
        TxnCreate(self.0.create(path, data))
    }

    /// Deletes a node (`version` -1 for any).
    pub fn delete(self, path: &str, version: i32) -> Self {
        Transaction(self.0.delete(path, version))
    }

    /// Replaces a node's data (`version` -1 for any).
    pub fn set_data(self, path: &str, data: impl Data, version: i32) -> Self {
        Transaction(self.0.set_data(path, data, version))
    }

    /// Number of ops so far.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when no op was added.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Sends the transaction; one [`OpResult`] per op.
    ///
    /// Errors with [`Error::TransactionFailed`] when an op failed (nothing applied; it names the
    /// op and carries every result), and with the session's errors (ConnectionLoss: it may or may
    /// not have applied).
    pub fn commit(self) -> Result<Vec<OpResult>, Error> {
        block_on(self.0.commit())
    }
}

/// A create inside a [`Transaction`], with the options of [`Client::create`]; the transaction's
/// own methods add the next op (or commit).
#[must_use = "a transaction does nothing until committed"]
pub struct TxnCreate<'a>(zk_client::txn::TxnCreate<'a>);

impl<'a> TxnCreate<'a> {
    /// The node's ACL (default: the client's default ACL): a `Vec<Acl>`, a slice, or an
    /// `Arc<[Acl]>` that many creates share without copying it.
    pub fn acl(self, acl: impl Into<std::sync::Arc<[Acl]>>) -> Self {
        TxnCreate(self.0.acl(acl))
    }

    /// Delete the node when this session ends.
    pub fn ephemeral(self) -> Self {
        TxnCreate(self.0.ephemeral())
    }

    /// Append a 10-digit sequence number to the name.
    pub fn sequential(self) -> Self {
        TxnCreate(self.0.sequential())
    }

    /// A container node.
    pub fn container(self) -> Self {
        TxnCreate(self.0.container())
    }

    /// A TTL node (needs `extendedTypesEnabled` on the server).
    pub fn ttl(self, ttl: Duration) -> Self {
        TxnCreate(self.0.ttl(ttl))
    }

    /// Adds a check (see [`Transaction::check`]).
    pub fn check(self, path: &str, version: i32) -> Transaction<'a> {
        Transaction(self.0.check(path, version))
    }

    /// Adds a create (see [`Transaction::create`]).
    pub fn create(self, path: &str, data: impl Data) -> TxnCreate<'a> {
        TxnCreate(self.0.create(path, data))
    }

    /// Adds a delete (see [`Transaction::delete`]).
    pub fn delete(self, path: &str, version: i32) -> Transaction<'a> {
        Transaction(self.0.delete(path, version))
    }

    /// Adds a set_data (see [`Transaction::set_data`]).
    pub fn set_data(self, path: &str, data: impl Data, version: i32) -> Transaction<'a> {
        Transaction(self.0.set_data(path, data, version))
    }

    /// Ends the create and gives the transaction back.
    pub fn end(self) -> Transaction<'a> {
        Transaction(self.0.end())
    }

    /// Sends the transaction (see [`Transaction::commit`]).
    ///
    /// Errors as [`Transaction::commit`] does.
    pub fn commit(self) -> Result<Vec<OpResult>, Error> {
        block_on(self.0.commit())
    }
}
