//! The operations, kazoo's names in Rust's idiom: each returns a builder that is awaited directly
//! (`client.create("/x", "v").ephemeral().await`), whose options read like kazoo's keyword
//! arguments.
//!
//! Node data comes back as [`Bytes`]. A node created with null data reads as empty bytes (its
//! Stat says `data_length` 0), where kazoo would give `None`.

use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use zk_core::path::{parent, validate_path};
use zk_core::proto::{
    Acl, AuthPacket, ChildNames, ClientInfo, CreateMode, CreateRequest, CreateTtlRequest, MultiOp,
    MultiResult, PathRequest, PathVersionRequest, PathWatchRequest, ReconfigRequest, Request,
    Response, SetAclRequest, SetDataRequest, Stat, WatcherType, WatchesRequest, MAX_TTL_MS,
};
use zk_core::session::SubmitOptions;
use zk_core::Error;

use crate::client::Client;
use crate::data::Data;
use crate::engine::Engine;
use crate::reply::{unexpected, OpFuture, Reply, ReplyFuture};
use crate::watch::Watch;

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, Error>> + Send + 'a>>;

impl Client {
    pub(crate) fn send(&self, request: Request) -> ReplyFuture {
        ReplyFuture::submit(
            &self.engine,
            self.engine.submit(request, SubmitOptions::default()),
        )
    }

    pub(crate) fn send_with(&self, request: Request, options: SubmitOptions) -> ReplyFuture {
        ReplyFuture::submit(&self.engine, self.engine.submit(request, options))
    }

    pub(crate) fn op<T>(
        &self,
        request: Request,
        map: fn(&Arc<Engine>, Reply) -> Result<T, Error>,
    ) -> OpFuture<T> {
        OpFuture::new(self.send(request), map)
    }

    /// Creates a node with `data` (kazoo's `create`). Options: `.acl()`, `.ephemeral()`,
    /// `.sequential()`, `.container()`, `.ttl()`, `.make_parents()`, `.with_stat()`. Resolves to
    /// the path created (with its sequence suffix).
    ///
    /// Errors with NodeExists, NoNode (parent missing, without `make_parents`),
    /// NoChildrenForEphemerals, InvalidAcl, BadArguments, NoAuth, Unimplemented (TTL disabled on
    /// the server), InvalidPath, and the session's errors.
    pub fn create(&self, path: &str, data: impl Data) -> Create<'_> {
        Create {
            client: self,
            path: path.to_owned(),
            data: Some(data.into_bytes()),
            opts: CreateOptions::default(),
            make_parents: false,
        }
    }

    /// Reads a node's data and Stat (kazoo's `get`). `.watch()` also arms a one-shot data watch.
    ///
    /// Errors with NoNode, NoAuth, InvalidPath and the session's errors.
    pub fn get_data(&self, path: &str) -> GetData<'_> {
        GetData {
            client: self,
            path: path.to_owned(),
        }
    }

    /// Replaces a node's data (kazoo's `set`); `.version(v)` makes it conditional. Resolves to the
    /// new Stat.
    ///
    /// Errors with NoNode, BadVersion, NoAuth, RequestTooLarge, InvalidPath and the session's
    /// errors.
    pub fn set_data(&self, path: &str, data: impl Data) -> SetData<'_> {
        SetData {
            client: self,
            path: path.to_owned(),
            data: data.into_bytes(),
            version: -1,
        }
    }

    /// Deletes a node (kazoo's `delete`); `.version(v)` makes it conditional, `.recursive()`
    /// deletes its descendants first.
    ///
    /// Errors with NoNode (without `recursive`), BadVersion, NotEmpty (without `recursive`), NoAuth, InvalidPath and the
    /// session's errors.
    pub fn delete(&self, path: &str) -> Delete<'_> {
        Delete {
            client: self,
            path: path.to_owned(),
            version: -1,
            recursive: false,
        }
    }

    /// The node's Stat, or `None` if it does not exist (kazoo's `exists`). `.watch()` arms a watch
    /// that fires on creation, change or deletion.
    ///
    /// Errors with InvalidPath and the session's errors.
    pub fn exists(&self, path: &str) -> Exists<'_> {
        Exists {
            client: self,
            path: path.to_owned(),
        }
    }

    /// The names of a node's children, in no defined order (kazoo's `get_children`), as
    /// [`ChildNames`]: no string per name, so a node with 50,000 children costs one allocation
    /// (their end offsets; the names are read in place from the reply), not 50,000 (`.to_vec()`
    /// gives `Vec<String>`). `.with_stat()` adds the node's
    /// Stat; `.watch()` arms a one-shot child watch.
    ///
    /// Errors with NoNode, NoAuth, InvalidPath and the session's errors.
    pub fn get_children(&self, path: &str) -> GetChildren<'_> {
        GetChildren {
            client: self,
            path: path.to_owned(),
        }
    }

    /// Creates `path` and any missing ancestors, with the default ACL, tolerating nodes that
    /// already exist (kazoo's `ensure_path`).
    ///
    /// Errors with InvalidPath, NoAuth, NoChildrenForEphemerals and the session's errors.
    pub async fn ensure_path(&self, path: &str) -> Result<(), Error> {
        self.make_path(path, self.opts.default_acl.clone()).await
    }

    /// Creates `path` and its missing ancestors with `acl` and empty data (as kazoo does: kazoo
    /// reads a node with null data as `None`, which its recipes do not expect); nodes that exist
    /// are fine. Tries the node first and walks up only while a parent is missing; under a chroot
    /// that does not exist yet, creates the chroot's missing levels first (as kazoo does), with
    /// the same ACL.
    pub(crate) async fn make_path(&self, path: &str, acl: Arc<[Acl]>) -> Result<(), Error> {
        validate_path(path, false)?;
        if path == "/" {
            return self.make_chroot(&acl).await;
        }
        let mut made_chroot = false;
        let mut missing = vec![path.to_owned()];
        while let Some(p) = missing.last().cloned() {
            let req = Request::Create(CreateRequest {
                path: p.clone(),
                data: Some(Bytes::new()),
                acl: acl.clone(),
                flags: CreateMode::Persistent.code(),
            });
            match self.send(req).await.0 {
                Ok(_) | Err(Error::NodeExists { .. }) => {
                    missing.pop();
                }
                Err(Error::NoNode { path: nopath }) => match parent(&p) {
                    Some(par) if par != "/" => missing.push(par.to_owned()),
                    // A top-level node is missing its parent: only the chroot can be missing.
                    _ if !made_chroot && self.chroot().is_some() => {
                        self.make_chroot(&acl).await?;
                        made_chroot = true;
                    }
                    _ => return Err(Error::NoNode { path: nopath }),
                },
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Creates the missing levels of the chroot (absolute paths), top down; Ok without a chroot.
    async fn make_chroot(&self, acl: &Arc<[Acl]>) -> Result<(), Error> {
        let Some(chroot) = self.chroot() else {
            return Ok(());
        };
        let absolute = SubmitOptions {
            absolute_path: true,
            ..SubmitOptions::default()
        };
        let mut level = String::with_capacity(chroot.len());
        for part in chroot.split('/').filter(|p| !p.is_empty()) {
            level.push('/');
            level.push_str(part);
            let req = Request::Create(CreateRequest {
                path: level.clone(),
                data: Some(Bytes::new()),
                acl: Arc::clone(acl),
                flags: CreateMode::Persistent.code(),
            });
            match self.send_with(req, absolute).await.0 {
                Ok(_) | Err(Error::NodeExists { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Makes sure this server has caught up with the leader for `path` before later reads
    /// (kazoo's `sync`).
    ///
    /// Errors with InvalidPath and the session's errors.
    pub fn sync(&self, path: &str) -> OpFuture<()> {
        self.op(
            Request::Sync(PathRequest {
                path: path.to_owned(),
            }),
            |_, (r, _)| r.map(|_| ()),
        )
    }

    /// A node's ACL and Stat (kazoo's `get_acls`).
    ///
    /// Errors with NoNode, NoAuth, InvalidPath and the session's errors.
    pub fn get_acl(&self, path: &str) -> OpFuture<(Vec<Acl>, Stat)> {
        self.op(
            Request::GetAcl(PathRequest {
                path: path.to_owned(),
            }),
            |_, (r, _)| match r? {
                Response::Acl { acl, stat } => Ok((acl, stat)),
                other => Err(unexpected(&other)),
            },
        )
    }

    /// Replaces a node's ACL (kazoo's `set_acls`); `version` is the expected ACL version
    /// (`aversion`), -1 for any. Resolves to the new Stat.
    ///
    /// Errors with NoNode, BadVersion, InvalidAcl, NoAuth, InvalidPath and the session's errors.
    pub fn set_acl(&self, path: &str, acl: Vec<Acl>, version: i32) -> OpFuture<Stat> {
        self.op(
            Request::SetAcl(SetAclRequest {
                path: path.to_owned(),
                acl,
                version,
            }),
            map_stat,
        )
    }

    /// Adds credentials to this connection and every later one (kazoo's `add_auth`).
    ///
    /// Errors with AuthFailed (which ends the session) and the session's errors.
    pub fn add_auth(&self, scheme: &str, credential: impl Data) -> OpFuture<()> {
        self.op(
            Request::Auth(AuthPacket {
                auth_type: 0,
                scheme: scheme.to_owned(),
                auth: credential.into_bytes(),
            }),
            |_, (r, _)| r.map(|_| ()),
        )
    }

    /// This session's ephemeral nodes whose path starts with `prefix` (a plain string prefix;
    /// `/` for all). ZooKeeper 3.6+.
    ///
    /// Errors with Unsupported on older servers, and the session's errors.
    pub fn get_ephemerals(&self, prefix: &str) -> OpFuture<Vec<String>> {
        self.op(
            Request::GetEphemerals(PathRequest {
                path: prefix.to_owned(),
            }),
            |_, (r, _)| match r? {
                Response::Ephemerals { paths } => Ok(paths),
                other => Err(unexpected(&other)),
            },
        )
    }

    /// The number of descendants of `path` (not counting itself). ZooKeeper 3.6+.
    ///
    /// Errors with NoNode, NoAuth, Unsupported on older servers, and the session's errors.
    pub fn get_all_children_number(&self, path: &str) -> OpFuture<i32> {
        self.op(
            Request::GetAllChildrenNumber(PathRequest {
                path: path.to_owned(),
            }),
            |_, (r, _)| match r? {
                Response::AllChildrenNumber { total } => Ok(total),
                other => Err(unexpected(&other)),
            },
        )
    }

    /// Removes this session's watches of `watcher_type` on `path` from the server (ZooKeeper's
    /// `removeWatches`, zkCli's `removewatches`); the local watchers it removed end: a [`Watch`]
    /// resolves with `Err(Error::WatchRemoved)`, a `DataWatch` or `ChildrenWatch` yields that
    /// error and ends, a `PersistentWatch` stream ends with
    /// [`zk_core::session::WatchEnd::Removed`] as its `end_reason()`. Types Persistent and
    /// PersistentRecursive need 3.9; on 3.6 to 3.8, `Any` removes persistent watches too.
    ///
    /// Errors with NoWatcher when there was nothing to remove, Unsupported, InvalidPath and the
    /// session's errors.
    pub fn remove_watches(&self, path: &str, watcher_type: WatcherType) -> OpFuture<()> {
        self.op(
            Request::RemoveWatches(WatchesRequest {
                path: path.to_owned(),
                watcher_type: watcher_type.code(),
            }),
            |_, (r, _)| r.map(|_| ()),
        )
    }

    /// Whether the server holds a watch of `watcher_type` on `path` for this session
    /// (`checkWatches`): `Ok(())` if it does.
    ///
    /// Errors with NoWatcher when it does not, Unsupported, InvalidPath and the session's errors.
    pub fn check_watches(&self, path: &str, watcher_type: WatcherType) -> OpFuture<()> {
        self.op(
            Request::CheckWatches(WatchesRequest {
                path: path.to_owned(),
                watcher_type: watcher_type.code(),
            }),
            |_, (r, _)| r.map(|_| ()),
        )
    }

    /// The identities this connection is authenticated as. ZooKeeper 3.7+.
    ///
    /// Errors with Unsupported on older servers, and the session's errors.
    pub fn whoami(&self) -> OpFuture<Vec<ClientInfo>> {
        self.op(Request::WhoAmI, |_, (r, _)| match r? {
            Response::WhoAmI { client_info } => Ok(client_info),
            other => Err(unexpected(&other)),
        })
    }

    /// The ensemble's dynamic configuration (`/zookeeper/config`, read without the chroot) and
    /// its Stat.
    ///
    /// Errors with NoNode (no dynamic config, e.g. standalone), NoAuth and the session's errors.
    pub fn get_config(&self) -> OpFuture<(Bytes, Stat)> {
        let req = Request::GetData(PathWatchRequest {
            path: "/zookeeper/config".into(),
            watch: false,
        });
        OpFuture::new(
            self.send_with(
                req,
                SubmitOptions {
                    absolute_path: true,
                    ..SubmitOptions::default()
                },
            ),
            map_data,
        )
    }

    /// Changes the ensemble's membership (ZooKeeper's `reconfig`): servers to add and ids to
    /// remove (incremental), or a whole new member list; `from_config` is the config version it
    /// applies to (-1 for any). Resolves to the new config and its Stat.
    ///
    /// Errors with ReconfigDisabled, NewConfigNoQuorum, ReconfigInProgress, BadVersion, NoAuth,
    /// Unimplemented (standalone) and the session's errors.
    pub fn reconfig(
        &self,
        joining: Option<&str>,
        leaving: Option<&str>,
        new_members: Option<&str>,
        from_config: i64,
    ) -> OpFuture<(Bytes, Stat)> {
        self.op(
            Request::Reconfig(ReconfigRequest {
                joining_servers: joining.map(str::to_owned),
                leaving_servers: leaving.map(str::to_owned),
                new_members: new_members.map(str::to_owned),
                cur_config_id: from_config,
            }),
            map_data,
        )
    }

    /// Reads several nodes in one round trip (ZooKeeper 3.6+ `multiRead`). Not atomic: each read
    /// has its own result, and reads never arm watches.
    ///
    /// Errors with Unsupported on older servers, and the session's errors; per-read errors
    /// (NoNode, NoAuth) are in the results.
    pub fn multi_read(&self, reads: Vec<ReadOp>) -> OpFuture<Vec<ReadResult>> {
        let paths: Vec<String> = reads
            .iter()
            .map(|r| match r {
                ReadOp::GetData(p) | ReadOp::GetChildren(p) => p.clone(),
            })
            .collect();
        let ops = reads
            .into_iter()
            .map(|r| match r {
                ReadOp::GetData(path) => MultiOp::GetData(PathWatchRequest { path, watch: false }),
                ReadOp::GetChildren(path) => {
                    MultiOp::GetChildren(PathWatchRequest { path, watch: false })
                }
            })
            .collect();
        OpFuture::with_context(
            self.send(Request::MultiRead(ops)),
            paths,
            |paths, (r, _)| match r? {
                Response::Multi(results) => Ok(results
                    .into_iter()
                    .zip(
                        paths
                            .iter()
                            .map(String::as_str)
                            .chain(std::iter::repeat("")),
                    )
                    .map(|(r, path)| match r {
                        MultiResult::GetData { data, stat } => {
                            ReadResult::Data(data.unwrap_or_default(), stat)
                        }
                        MultiResult::GetChildren { children } => ReadResult::Children(children),
                        MultiResult::Error(code) => ReadResult::Error(Error::from_code(code, path)),
                        other => ReadResult::Error(Error::Protocol(format!(
                            "unexpected multiRead result {other:?}"
                        ))),
                    })
                    .collect()),
                other => Err(unexpected(&other)),
            },
        )
    }
}

/// One read of a [`Client::multi_read`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadOp {
    /// Read a node's data and Stat.
    GetData(String),
    /// List a node's children.
    GetChildren(String),
}

/// The result of one read of a [`Client::multi_read`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadResult {
    /// Data and Stat.
    Data(Bytes, Stat),
    /// Child names.
    Children(ChildNames),
    /// This read failed (NoNode, NoAuth, ...).
    Error(Error),
}

fn map_stat(_: &Arc<Engine>, (r, _): Reply) -> Result<Stat, Error> {
    match r? {
        Response::Stat(s) => Ok(s),
        other => Err(unexpected(&other)),
    }
}

fn map_data(_: &Arc<Engine>, (r, _): Reply) -> Result<(Bytes, Stat), Error> {
    match r? {
        Response::Data { data, stat } => Ok((data.unwrap_or_default(), stat)),
        other => Err(unexpected(&other)),
    }
}

pub(crate) fn watch_of(
    shared: &Arc<Engine>,
    watcher: Option<zk_core::WatcherId>,
) -> Result<Watch, Error> {
    watcher
        .map(|w| Watch::new(shared.clone(), w))
        .ok_or_else(|| Error::Protocol("the server did not arm the watch".into()))
}

// ---- create ---------------------------------------------------------------------------------

/// The options of a create, shared by [`Client::create`] and a transaction's create.
#[derive(Debug, Clone, Default)]
pub(crate) struct CreateOptions {
    pub(crate) acl: Option<Arc<[Acl]>>,
    pub(crate) ephemeral: bool,
    pub(crate) sequential: bool,
    pub(crate) container: bool,
    pub(crate) ttl: Option<Duration>,
    /// A TTL mode was asked for by name; without a TTL that is an error, not a plain create.
    pub(crate) needs_ttl: bool,
}

impl CreateOptions {
    /// The create mode the flags make.
    ///
    /// Errors with InvalidArgument for flags that do not combine.
    pub(crate) fn mode(&self) -> Result<CreateMode, Error> {
        if self.needs_ttl && self.ttl.is_none() {
            return Err(Error::InvalidArgument(
                "a TTL create mode needs a TTL: add .ttl(..)".into(),
            ));
        }
        let mode = match (
            self.ephemeral,
            self.sequential,
            self.container,
            self.ttl.is_some(),
        ) {
            (false, false, false, false) => CreateMode::Persistent,
            (true, false, false, false) => CreateMode::Ephemeral,
            (false, true, false, false) => CreateMode::PersistentSequential,
            (true, true, false, false) => CreateMode::EphemeralSequential,
            (false, false, true, false) => CreateMode::Container,
            (false, false, false, true) => CreateMode::PersistentWithTtl,
            (false, true, false, true) => CreateMode::PersistentSequentialWithTtl,
            _ => {
                return Err(Error::InvalidArgument(
                    "a node is ephemeral, a container, or has a TTL: pick one".into(),
                ))
            }
        };
        Ok(mode)
    }

    /// The TTL in milliseconds, if one is set.
    ///
    /// Errors with InvalidArgument for a TTL out of the server's range.
    fn ttl_ms(&self) -> Result<Option<i64>, Error> {
        let Some(ttl) = self.ttl else {
            return Ok(None);
        };
        let ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
        if !(1..=MAX_TTL_MS).contains(&ms) {
            return Err(Error::InvalidArgument(format!(
                "TTL must be 1 ms to {MAX_TTL_MS} ms"
            )));
        }
        Ok(Some(ms))
    }

    /// The create as a request: the opcode follows the Java client (createTTL, then
    /// createContainer, then create2 when a Stat is wanted, else create).
    ///
    /// Errors as [`mode`](Self::mode) and the TTL check do.
    fn request(
        &self,
        path: String,
        data: Option<Bytes>,
        acl: Arc<[Acl]>,
        want_stat: bool,
    ) -> Result<Request, Error> {
        let mode = self.mode()?;
        if let Some(ttl) = self.ttl_ms()? {
            return Ok(Request::CreateTtl(CreateTtlRequest {
                path,
                data,
                acl,
                flags: mode.code(),
                ttl,
            }));
        }
        let req = CreateRequest {
            path,
            data,
            acl,
            flags: mode.code(),
        };
        Ok(if mode == CreateMode::Container {
            Request::CreateContainer(req)
        } else if want_stat {
            Request::Create2(req)
        } else {
            Request::Create(req)
        })
    }

    /// The create as an op of a transaction (createTTL, createContainer or create).
    ///
    /// Errors as [`mode`](Self::mode) and the TTL check do.
    pub(crate) fn multi_op(
        &self,
        path: String,
        data: Option<Bytes>,
        acl: Arc<[Acl]>,
    ) -> Result<MultiOp, Error> {
        Ok(match self.request(path, data, acl, false)? {
            Request::CreateTtl(r) => MultiOp::CreateTtl(r),
            Request::CreateContainer(r) => MultiOp::CreateContainer(r),
            Request::Create(r) | Request::Create2(r) => MultiOp::Create(r),
            other => {
                return Err(Error::InvalidArgument(format!(
                    "not a create: {:?}",
                    other.op_code()
                )))
            }
        })
    }
}

/// The option setters of a create, shared by [`Create`] and a transaction's create (both keep
/// their options in a field `opts: CreateOptions`), so the two cannot drift apart.
macro_rules! create_option_setters {
    () => {
        /// The node's ACL (default: the client's default ACL): a `Vec<Acl>`, a slice, or an
        /// `Arc<[Acl]>` that many creates share without copying it.
        pub fn acl(mut self, acl: impl Into<std::sync::Arc<[Acl]>>) -> Self {
            self.opts.acl = Some(acl.into());
            self
        }

        /// Delete the node when this session ends.
        pub fn ephemeral(mut self) -> Self {
            self.opts.ephemeral = true;
            self
        }

        /// Append a 10-digit sequence number to the name.
        pub fn sequential(mut self) -> Self {
            self.opts.sequential = true;
            self
        }

        /// A container node: the server deletes it after its last child goes (3.5.1+).
        pub fn container(mut self) -> Self {
            self.opts.container = true;
            self
        }

        /// A TTL node: the server deletes it once childless and unchanged for `ttl` (needs
        /// `extendedTypesEnabled` on the server; else Unimplemented).
        pub fn ttl(mut self, ttl: Duration) -> Self {
            self.opts.ttl = Some(ttl);
            self
        }
    };
}
pub(crate) use create_option_setters;

/// Builder for [`Client::create`].
#[must_use = "a builder does nothing until awaited"]
pub struct Create<'a> {
    client: &'a Client,
    path: String,
    data: Option<Bytes>,
    opts: CreateOptions,
    make_parents: bool,
}

impl<'a> Create<'a> {
    create_option_setters!();

    /// Create missing parents first, as persistent nodes with the same ACL (kazoo's `makepath`).
    /// Under a chroot, missing levels of the chroot itself are created too.
    pub fn make_parents(mut self) -> Self {
        self.make_parents = true;
        self
    }

    /// Null data instead of bytes (a reader gets empty bytes and `data_length` 0).
    pub fn null_data(mut self) -> Self {
        self.data = None;
        self
    }

    /// Also return the new node's Stat.
    pub fn with_stat(self) -> CreateWithStat<'a> {
        CreateWithStat(self)
    }

    /// The node's ACL: the one given, else the client's default.
    fn node_acl(&self) -> Arc<[Acl]> {
        self.opts
            .acl
            .clone()
            .unwrap_or_else(|| self.client.opts.default_acl.clone())
    }

    /// The request, moving path, data and ACL out of the builder (it is not used again).
    fn take_request(&mut self, want_stat: bool) -> Result<Request, Error> {
        let acl = self
            .opts
            .acl
            .take()
            .unwrap_or_else(|| self.client.opts.default_acl.clone());
        let path = std::mem::take(&mut self.path);
        let data = self.data.take();
        self.opts.request(path, data, acl, want_stat)
    }

    fn run(self, want_stat: bool) -> BoxFuture<'a, (String, Option<Stat>)> {
        Box::pin(async move {
            let request = self.opts.request(
                self.path.clone(),
                self.data.clone(),
                self.node_acl(),
                want_stat,
            )?;
            loop {
                match self.client.send(request.clone()).await.0 {
                    Ok(Response::Create { path }) => return Ok((path, None)),
                    Ok(Response::Create2 { path, stat }) => return Ok((path, Some(stat))),
                    Ok(other) => return Err(unexpected(&other)),
                    Err(Error::NoNode { path }) if self.make_parents => {
                        let Some(par) = parent(&self.path) else {
                            return Err(Error::NoNode { path });
                        };
                        // Parents get the node's ACL, as kazoo's makepath does.
                        self.client.make_path(par, self.node_acl()).await?;
                    }
                    Err(e) => return Err(e),
                }
            }
        })
    }
}

/// A `Create` future resolving to the created path.
pub struct CreateFuture<'a>(CreateInner<'a>);

enum CreateInner<'a> {
    Fast(OpFuture<String>),
    Slow(BoxFuture<'a, (String, Option<Stat>)>),
}

impl Future for CreateFuture<'_> {
    type Output = Result<String, Error>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.0 {
            CreateInner::Fast(f) => Pin::new(f).poll(cx),
            CreateInner::Slow(f) => f.as_mut().poll(cx).map(|r| r.map(|(p, _)| p)),
        }
    }
}

impl<'a> IntoFuture for Create<'a> {
    type Output = Result<String, Error>;
    type IntoFuture = CreateFuture<'a>;

    fn into_future(mut self) -> CreateFuture<'a> {
        // The common case (no parents to make) goes without boxing or copying.
        if !self.make_parents {
            let fut = match self.take_request(false) {
                Ok(req) => self.client.send(req),
                Err(e) => ReplyFuture::submit(&self.client.engine, Err(e)),
            };
            return CreateFuture(CreateInner::Fast(OpFuture::new(
                fut,
                |_, (r, _)| match r? {
                    Response::Create { path } | Response::Create2 { path, .. } => Ok(path),
                    other => Err(unexpected(&other)),
                },
            )));
        }
        CreateFuture(CreateInner::Slow(self.run(false)))
    }
}

/// Builder for a create that also returns the new node's Stat.
#[must_use = "a builder does nothing until awaited"]
pub struct CreateWithStat<'a>(Create<'a>);

impl<'a> IntoFuture for CreateWithStat<'a> {
    type Output = Result<(String, Stat), Error>;
    type IntoFuture = BoxFuture<'a, (String, Stat)>;

    fn into_future(self) -> Self::IntoFuture {
        let inner = self.0.run(true);
        Box::pin(async move {
            match inner.await? {
                (path, Some(stat)) => Ok((path, stat)),
                (_, None) => Err(Error::Protocol("create2 reply without a Stat".into())),
            }
        })
    }
}

// ---- reads --------------------------------------------------------------------------------

/// Builder for [`Client::get_data`].
#[must_use = "a builder does nothing until awaited"]
pub struct GetData<'a> {
    client: &'a Client,
    path: String,
}

impl<'a> GetData<'a> {
    /// Also arm a one-shot data watch: it fires once when the node changes or is deleted.
    pub fn watch(self) -> OpFuture<(Bytes, Stat, Watch)> {
        self.client.op(
            Request::GetData(PathWatchRequest {
                path: self.path,
                watch: true,
            }),
            |shared, (r, w)| match r? {
                Response::Data { data, stat } => {
                    Ok((data.unwrap_or_default(), stat, watch_of(shared, w)?))
                }
                other => Err(unexpected(&other)),
            },
        )
    }
}

impl IntoFuture for GetData<'_> {
    type Output = Result<(Bytes, Stat), Error>;
    type IntoFuture = OpFuture<(Bytes, Stat)>;

    fn into_future(self) -> OpFuture<(Bytes, Stat)> {
        self.client.op(
            Request::GetData(PathWatchRequest {
                path: self.path,
                watch: false,
            }),
            map_data,
        )
    }
}

/// Builder for [`Client::exists`].
#[must_use = "a builder does nothing until awaited"]
pub struct Exists<'a> {
    client: &'a Client,
    path: String,
}

impl Exists<'_> {
    /// Also arm a one-shot watch: on a missing node it fires on creation, on an existing one on
    /// change or deletion.
    pub fn watch(self) -> OpFuture<(Option<Stat>, Watch)> {
        self.client.op(
            Request::Exists(PathWatchRequest {
                path: self.path,
                watch: true,
            }),
            |shared, (r, w)| match r {
                Ok(Response::Stat(stat)) => Ok((Some(stat), watch_of(shared, w)?)),
                Err(Error::NoNode { .. }) => Ok((None, watch_of(shared, w)?)),
                Ok(other) => Err(unexpected(&other)),
                Err(e) => Err(e),
            },
        )
    }
}

impl IntoFuture for Exists<'_> {
    type Output = Result<Option<Stat>, Error>;
    type IntoFuture = OpFuture<Option<Stat>>;

    fn into_future(self) -> OpFuture<Option<Stat>> {
        self.client.op(
            Request::Exists(PathWatchRequest {
                path: self.path,
                watch: false,
            }),
            |_, (r, _)| match r {
                Ok(Response::Stat(stat)) => Ok(Some(stat)),
                Err(Error::NoNode { .. }) => Ok(None),
                Ok(other) => Err(unexpected(&other)),
                Err(e) => Err(e),
            },
        )
    }
}

/// Builder for [`Client::get_children`].
#[must_use = "a builder does nothing until awaited"]
pub struct GetChildren<'a> {
    client: &'a Client,
    path: String,
}

impl<'a> GetChildren<'a> {
    /// Also return the node's Stat (getChildren2).
    pub fn with_stat(self) -> OpFuture<(ChildNames, Stat)> {
        self.client.op(
            Request::GetChildren2(PathWatchRequest {
                path: self.path,
                watch: false,
            }),
            |_, (r, _)| match r? {
                Response::Children2 { children, stat } => Ok((children, stat)),
                other => Err(unexpected(&other)),
            },
        )
    }

    /// Also arm a one-shot child watch: it fires once when a child is added or removed, or the
    /// node is deleted.
    pub fn watch(self) -> OpFuture<(ChildNames, Watch)> {
        self.client.op(
            Request::GetChildren(PathWatchRequest {
                path: self.path,
                watch: true,
            }),
            |shared, (r, w)| match r? {
                Response::Children { children } => Ok((children, watch_of(shared, w)?)),
                other => Err(unexpected(&other)),
            },
        )
    }

    /// Both: children, the node's Stat, and a one-shot child watch.
    pub fn with_stat_and_watch(self) -> OpFuture<(ChildNames, Stat, Watch)> {
        self.client.op(
            Request::GetChildren2(PathWatchRequest {
                path: self.path,
                watch: true,
            }),
            |shared, (r, w)| match r? {
                Response::Children2 { children, stat } => {
                    Ok((children, stat, watch_of(shared, w)?))
                }
                other => Err(unexpected(&other)),
            },
        )
    }
}

impl IntoFuture for GetChildren<'_> {
    type Output = Result<ChildNames, Error>;
    type IntoFuture = OpFuture<ChildNames>;

    fn into_future(self) -> OpFuture<ChildNames> {
        self.client.op(
            Request::GetChildren(PathWatchRequest {
                path: self.path,
                watch: false,
            }),
            |_, (r, _)| match r? {
                Response::Children { children } => Ok(children),
                other => Err(unexpected(&other)),
            },
        )
    }
}

// ---- writes -------------------------------------------------------------------------------

/// Builder for [`Client::set_data`].
#[must_use = "a builder does nothing until awaited"]
pub struct SetData<'a> {
    client: &'a Client,
    path: String,
    data: Bytes,
    version: i32,
}

impl SetData<'_> {
    /// Only if the node's data version is `v` (BadVersion otherwise).
    pub fn version(mut self, v: i32) -> Self {
        self.version = v;
        self
    }
}

impl IntoFuture for SetData<'_> {
    type Output = Result<Stat, Error>;
    type IntoFuture = OpFuture<Stat>;

    fn into_future(self) -> OpFuture<Stat> {
        self.client.op(
            Request::SetData(SetDataRequest {
                path: self.path,
                data: Some(self.data),
                version: self.version,
            }),
            map_stat,
        )
    }
}

/// Builder for [`Client::delete`].
#[must_use = "a builder does nothing until awaited"]
pub struct Delete<'a> {
    client: &'a Client,
    path: String,
    version: i32,
    recursive: bool,
}

impl Delete<'_> {
    /// Only if the node's data version is `v` (BadVersion otherwise).
    pub fn version(mut self, v: i32) -> Self {
        self.version = v;
        self
    }

    /// Delete the node's descendants first (kazoo's `recursive=True`). Not atomic: nodes created
    /// meanwhile can make it fail with NotEmpty. A node that does not exist (any more) is not an
    /// error: the state asked for holds.
    pub fn recursive(mut self) -> Self {
        self.recursive = true;
        self
    }
}

/// A `Delete` future.
pub struct DeleteFuture<'a>(DeleteInner<'a>);

enum DeleteInner<'a> {
    /// One request, sent when the future is made.
    Fast(OpFuture<()>),
    /// Descendants first, then the node.
    Recursive(BoxFuture<'a, ()>),
}

impl Future for DeleteFuture<'_> {
    type Output = Result<(), Error>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.0 {
            DeleteInner::Fast(f) => Pin::new(f).poll(cx),
            DeleteInner::Recursive(f) => f.as_mut().poll(cx),
        }
    }
}

impl<'a> IntoFuture for Delete<'a> {
    type Output = Result<(), Error>;
    type IntoFuture = DeleteFuture<'a>;

    fn into_future(self) -> DeleteFuture<'a> {
        let Delete {
            client,
            path,
            version,
            recursive,
        } = self;
        if !recursive {
            // Sent now, like every other operation, so a window of deletes pipelines.
            let request = Request::Delete(PathVersionRequest { path, version });
            return DeleteFuture(DeleteInner::Fast(
                client.op(request, |_, (r, _)| r.map(|_| ())),
            ));
        }
        DeleteFuture(DeleteInner::Recursive(Box::pin(async move {
            client.delete_tree(&path).await?;
            let request = Request::Delete(PathVersionRequest { path, version });
            match client.send(request).await.0 {
                // Gone already (or meanwhile): the state the caller asked for holds, as in
                // kazoo's recursive delete.
                Ok(_) | Err(Error::NoNode { .. }) => Ok(()),
                Err(e) => Err(e),
            }
        })))
    }
}

impl Client {
    /// Deletes every descendant of `path`, deepest first, leaving `path` itself.
    async fn delete_tree(&self, path: &str) -> Result<(), Error> {
        // Depth-first without recursion: list, then delete leaves on the way back.
        let mut stack: Vec<(String, bool)> = vec![(path.to_owned(), false)];
        while let Some((p, listed)) = stack.pop() {
            if listed {
                if p != path {
                    match self
                        .send(Request::Delete(PathVersionRequest {
                            path: p.clone(),
                            version: -1,
                        }))
                        .await
                        .0
                    {
                        Ok(_) | Err(Error::NoNode { .. }) => {}
                        Err(e) => return Err(e),
                    }
                }
                continue;
            }
            let children = match self.get_children(&p).await {
                Ok(c) => c,
                Err(Error::NoNode { .. }) => continue,
                Err(e) => return Err(e),
            };
            stack.push((p.clone(), true));
            for c in children {
                stack.push((zk_core::path::join(&p, &c), false));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_create_request_shares_the_acl_it_is_given() {
        let acl: Arc<[Acl]> = Acl::open_unsafe().into();
        let opts = CreateOptions::default();
        for want_stat in [false, true] {
            match opts.request("/a".into(), None, Arc::clone(&acl), want_stat) {
                Ok(Request::Create(r) | Request::Create2(r)) => {
                    assert!(Arc::ptr_eq(&r.acl, &acl), "the ACL was copied");
                }
                other => panic!("not a create: {other:?}"),
            }
        }
    }
}
