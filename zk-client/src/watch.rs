//! Watches as futures and streams.
//!
//! - [`Watch`]: a one-shot watch armed by `get_data().watch()`, `exists().watch()` or
//!   `get_children().watch()`; a future resolving with the event.
//! - [`PersistentWatch`]: `add_watch(path, mode)` (ZooKeeper 3.6+), a stream of every event until
//!   dropped.
//! - [`DataWatch`] and [`ChildrenWatch`]: kazoo's recipes as streams. The first item is the
//!   current state; then one item per change, re-armed after each fire, across reconnects (the
//!   session re-arms watches) and across session expiry (they fetch again in the new session);
//!   deletion and re-creation are items too.
//!
//! Dropping any of them removes the local watcher, and the server watch with it when it was the
//! last one (removeWatches).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_core::Stream;
use zk_core::proto::{
    AddWatchMode, AddWatchRequest, ChildNames, PathWatchRequest, Request, Response, Stat,
};
use zk_core::session::{LostReason, WatchEnd};
use zk_core::{Error, WatchedEvent, WatcherId};

use crate::client::Client;
use crate::engine::{Engine, WatchItem};
use crate::ops::watch_of;
use crate::reply::{unexpected, OpFuture};

fn end_error(reason: WatchEnd) -> Error {
    match reason {
        WatchEnd::SessionLost(r) => r.error(),
        WatchEnd::Removed => Error::WatchRemoved,
        // Only persistent watches end for want of server support; they are not `Watch`es.
        _ => Error::Closed,
    }
}

/// A one-shot watch: resolves with the event that fired it, or with the error that ended it
/// (SessionExpired, Closed, WatchRemoved after [`Client::remove_watches`]). Dropping it before it
/// fires removes the watcher.
#[must_use = "dropping a watch removes it"]
pub struct Watch {
    /// `None` once the watch has resolved. (An `Option` rather than a flag beside it keeps the
    /// handle at 16 bytes: programs hold many of them.)
    engine: Option<Arc<Engine>>,
    id: WatcherId,
}

impl Watch {
    pub(crate) fn new(engine: Arc<Engine>, id: WatcherId) -> Self {
        Watch {
            engine: Some(engine),
            id,
        }
    }
}

impl std::fmt::Debug for Watch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watch").field("id", &self.id.0).finish()
    }
}

impl Future for Watch {
    type Output = Result<WatchedEvent, Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let id = self.id;
        let Some(engine) = &self.engine else {
            return Poll::Ready(Err(Error::Closed));
        };
        loop {
            match engine.poll_watch(id, cx) {
                Poll::Pending => return Poll::Pending,
                // Only persistent watchers are resynced; a one-shot one is re-armed with its
                // catch-up event by the server itself.
                Poll::Ready(Some(WatchItem::Resync)) => continue,
                Poll::Ready(item) => {
                    engine.forget_watcher(id);
                    self.engine = None;
                    return Poll::Ready(match item {
                        Some(WatchItem::Event(ev)) => Ok(ev),
                        Some(WatchItem::Ended(reason)) => Err(end_error(reason)),
                        Some(WatchItem::Resync) | None => Err(Error::Closed),
                    });
                }
            }
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        if let Some(engine) = &self.engine {
            engine.drop_watcher(self.id);
        }
    }
}

/// One item of a [`PersistentWatch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PersistentItem {
    /// A change the server reported.
    Event(WatchedEvent),
    /// The connection was lost and the session resumed on a server: the watch is armed again,
    /// but changes made while it was disconnected were not reported (ZooKeeper sends no
    /// catch-up events for persistent watches, ZOOKEEPER-4698). Re-read whatever you cache from
    /// the watched nodes; events after this item are reported as usual.
    Resync,
}

impl PersistentItem {
    /// The event, if this item is one.
    pub fn event(&self) -> Option<&WatchedEvent> {
        match self {
            PersistentItem::Event(ev) => Some(ev),
            PersistentItem::Resync => None,
        }
    }

    /// The event, if this item is one.
    pub fn into_event(self) -> Option<WatchedEvent> {
        match self {
            PersistentItem::Event(ev) => Some(ev),
            PersistentItem::Resync => None,
        }
    }
}

/// A persistent (or persistent-recursive) watch: every event until dropped, and a
/// [`PersistentItem::Resync`] after every reconnect. The stream ends when the session does (or,
/// after a failover, when the new server cannot keep the watch).
#[must_use = "dropping a watch removes it"]
pub struct PersistentWatch {
    engine: Arc<Engine>,
    id: WatcherId,
    ended: Option<WatchEnd>,
}

impl PersistentWatch {
    /// Why the stream ended, once it has.
    pub fn end_reason(&self) -> Option<WatchEnd> {
        self.ended
    }
}

impl std::fmt::Debug for PersistentWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PersistentWatch")
            .field("id", &self.id.0)
            .field("ended", &self.ended)
            .finish()
    }
}

impl Stream for PersistentWatch {
    type Item = PersistentItem;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<PersistentItem>> {
        if self.ended.is_some() {
            return Poll::Ready(None);
        }
        match self.engine.poll_watch(self.id, cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(WatchItem::Event(ev))) => Poll::Ready(Some(PersistentItem::Event(ev))),
            Poll::Ready(Some(WatchItem::Resync)) => Poll::Ready(Some(PersistentItem::Resync)),
            Poll::Ready(Some(WatchItem::Ended(reason))) => {
                self.ended = Some(reason);
                Poll::Ready(None)
            }
            Poll::Ready(None) => {
                self.ended = Some(WatchEnd::SessionLost(LostReason::Closed));
                Poll::Ready(None)
            }
        }
    }
}

impl Drop for PersistentWatch {
    fn drop(&mut self) {
        self.engine.drop_watcher(self.id);
    }
}

impl Client {
    /// Adds a persistent watch on `path` (which need not exist): [`AddWatchMode::Persistent`]
    /// sees every event of the node itself, [`AddWatchMode::PersistentRecursive`] created,
    /// deleted and changed events of the node and all its descendants. ZooKeeper 3.6+.
    ///
    /// Errors with Unsupported on older servers, InvalidPath, NoAuth and the session's errors.
    pub fn add_watch(&self, path: &str, mode: AddWatchMode) -> OpFuture<PersistentWatch> {
        self.op(
            Request::AddWatch(AddWatchRequest {
                path: path.to_owned(),
                mode: mode.code(),
            }),
            |engine, (r, w)| {
                r?;
                let id = w.ok_or_else(|| Error::Protocol("addWatch armed nothing".into()))?;
                Ok(PersistentWatch {
                    engine: engine.clone(),
                    id,
                    ended: None,
                })
            },
        )
    }

    /// kazoo's DataWatch as a stream: the node's data now, then after every change. The first
    /// read is sent here, not when the stream is first polled, so the first item is the node as
    /// it was when the watch was made (kazoo's decorator calls its function at once). See
    /// [`DataWatch`].
    pub fn data_watch(&self, path: &str) -> DataWatch {
        DataWatch(NodeWatch::new(
            self.uncounted(),
            path,
            same_version,
            |c, p| {
                c.op(
                    Request::GetData(PathWatchRequest {
                        path: p.to_owned(),
                        watch: true,
                    }),
                    |engine, (r, w)| match r? {
                        Response::Data { data, stat } => {
                            Ok(((data.unwrap_or_default(), stat), watch_of(engine, w)?))
                        }
                        other => Err(unexpected(&other)),
                    },
                )
            },
        ))
    }

    /// kazoo's ChildrenWatch as a stream: the node's children now, then after every change. The
    /// first read is sent here, as for [`data_watch`](Self::data_watch). See [`ChildrenWatch`].
    pub fn children_watch(&self, path: &str) -> ChildrenWatch {
        ChildrenWatch(NodeWatch::new(
            self.uncounted(),
            path,
            same_children,
            |c, p| c.get_children(p).watch(),
        ))
    }
}

/// A DataWatch item repeats the last one when the node is in the same version: the same mzxid,
/// or missing both times.
fn same_version(a: &Option<(Bytes, Stat)>, b: &Option<(Bytes, Stat)>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some((_, a)), Some((_, b))) => a.mzxid == b.mzxid,
        _ => false,
    }
}

/// A ChildrenWatch item repeats the last one when the set of children is the same (order does
/// not count), or the node is missing both times.
fn same_children(a: &Option<ChildNames>, b: &Option<ChildNames>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => {
            if a.len() != b.len() {
                return false;
            }
            let mut a: Vec<&str> = a.iter().collect();
            let mut b: Vec<&str> = b.iter().collect();
            a.sort_unstable();
            b.sort_unstable();
            a == b
        }
        _ => false,
    }
}

/// One item of a [`DataWatch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataItem {
    /// The node's data and Stat, or `None` when the node does not exist.
    pub data: Option<(Bytes, Stat)>,
    /// The event that led to this item; `None` for the first item and after a session renewal.
    pub event: Option<WatchedEvent>,
}

/// The data of one node, now and after every change (kazoo's `DataWatch`). Items: the current
/// data (or `None` while the node does not exist), then one per change, deletion or
/// re-creation: only real changes, a node version (mzxid) or an existence different from the
/// last item's, so a session renewal that finds the node as it was yields nothing. It keeps going
/// across reconnects and session renewals; it ends when the client closes (it does not keep the
/// session open by itself), or with an error item for a failure it cannot get past (e.g.
/// NoAuth).
///
/// Changes that happen while a re-read is in flight are folded into that read, as with kazoo:
/// every item shows the latest data, not every intermediate version.
pub struct DataWatch(NodeWatch<(Bytes, Stat)>);

impl Stream for DataWatch {
    type Item = Result<DataItem, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0
            .poll_next(cx)
            .map(|o| o.map(|r| r.map(|(data, event)| DataItem { data, event })))
    }
}

/// One item of a [`ChildrenWatch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildrenItem {
    /// The child names (in no defined order), or `None` when the node does not exist.
    pub children: Option<ChildNames>,
    /// The event that led to this item; `None` for the first item and after a session renewal.
    pub event: Option<WatchedEvent>,
}

/// The children of one node, now and after every change (kazoo's `ChildrenWatch`). Items: the
/// current list (or `None` while the node does not exist), then one per change, deletion or
/// re-creation: only when the set of children (or existence) differs from the last item's. Same
/// lifetime rules as [`DataWatch`]. Changes that happen while a re-read is in
/// flight fold into one item, so a node deleted right after its last child goes may come as a
/// single `None` item whose event is the NodeChildrenChanged that started the re-read.
pub struct ChildrenWatch(NodeWatch<ChildNames>);

impl Stream for ChildrenWatch {
    type Item = Result<ChildrenItem, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0
            .poll_next(cx)
            .map(|o| o.map(|r| r.map(|(children, event)| ChildrenItem { children, event })))
    }
}

/// Reads a node with a one-shot watch, returning what was read and the watch.
type Fetch<T> = fn(&Client, &str) -> OpFuture<(T, Watch)>;

/// Whether two reads show the node in the same state (no item is due).
type Same<T> = fn(&Option<T>, &Option<T>) -> bool;

enum Step<T> {
    /// Fetch (watching); carries the event that led here.
    Start(Option<WatchedEvent>),
    Fetch(OpFuture<(T, Watch)>, Option<WatchedEvent>),
    /// The node is missing: watch for its creation.
    Exists(OpFuture<(Option<Stat>, Watch)>, Option<WatchedEvent>),
    Wait(Watch),
    Done,
}

/// The engine of DataWatch and ChildrenWatch: read the node with a one-shot watch (or, while it
/// is missing, watch its creation), yield what was read, wait for the watch, read again.
struct NodeWatch<T> {
    client: Client,
    path: String,
    fetch: Fetch<T>,
    same: Same<T>,
    step: Step<T>,
    /// What the last item showed; `None` before the first item.
    last: Option<Option<T>>,
    /// Fetches in a row that failed with a protocol error (see `after_error`).
    protocol_errors: u32,
}

/// Fetches in a row that may fail with a protocol error before a node watch gives up.
const PROTOCOL_ERRORS_TOLERATED: u32 = 3;

impl<T> Unpin for NodeWatch<T> {}

impl<T: Clone> NodeWatch<T> {
    /// Sends the first read at once.
    fn new(client: Client, path: &str, same: Same<T>, fetch: Fetch<T>) -> Self {
        let first = fetch(&client, path);
        NodeWatch {
            client,
            path: path.to_owned(),
            fetch,
            same,
            step: Step::Fetch(first, None),
            last: None,
            protocol_errors: 0,
        }
    }

    /// The item for what was just read, unless it shows the node as the last item did.
    fn item(&mut self, value: Option<T>, event: Option<WatchedEvent>) -> Option<ItemResult<T>> {
        if let Some(last) = &self.last {
            if (self.same)(last, &value) {
                return None;
            }
        }
        self.last = Some(value.clone());
        Some(Ok((value, event)))
    }

    /// Goes on after an error: fetch again if a new attempt can get past it, else end.
    ///
    /// A protocol error means the server sent garbage in place of the reply; the client has
    /// dropped that connection and resumes the session elsewhere, so fetch again, as after a
    /// lost connection. Only a few times in a row, though: a reply that is bad every time (one
    /// over the client's `max_frame`) would otherwise reconnect forever.
    fn after_error(&mut self, e: Error, ev: Option<WatchedEvent>) -> Option<Option<ItemResult<T>>> {
        let garbage = matches!(e, Error::Protocol(_));
        self.protocol_errors = if garbage { self.protocol_errors + 1 } else { 0 };
        if should_refetch(&self.client, &e)
            || (garbage && self.protocol_errors <= PROTOCOL_ERRORS_TOLERATED)
        {
            self.step = Step::Start(ev);
            None
        } else {
            self.step = Step::Done;
            Some(end_item(e))
        }
    }

    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<ItemResult<T>>> {
        loop {
            match &mut self.step {
                Step::Done => return Poll::Ready(None),
                Step::Start(ev) => {
                    let ev = ev.take();
                    let fut = (self.fetch)(&self.client, &self.path);
                    self.step = Step::Fetch(fut, ev);
                }
                Step::Fetch(fut, ev) => match Pin::new(fut).poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Ok((value, watch))) => {
                        let event = ev.take();
                        self.protocol_errors = 0;
                        self.step = Step::Wait(watch);
                        if let Some(item) = self.item(Some(value), event) {
                            return Poll::Ready(Some(item));
                        }
                    }
                    Poll::Ready(Err(Error::NoNode { .. })) => {
                        // Missing: watch for its creation. The item waits for the exists
                        // reply, so the watch is armed at the server when the item is seen.
                        let ev = ev.take();
                        let fut = self.client.exists(&self.path).watch();
                        self.step = Step::Exists(fut, ev);
                    }
                    Poll::Ready(Err(e)) => {
                        let ev = ev.take();
                        if let Some(end) = self.after_error(e, ev) {
                            return Poll::Ready(end);
                        }
                    }
                },
                Step::Exists(fut, ev) => match Pin::new(fut).poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    // Created between the read and the exists: the read's answer (missing) is
                    // still the item due now, so a creation right after the watch was made is
                    // not swallowed; then read the new node.
                    Poll::Ready(Ok((Some(_), _watch))) => {
                        let event = ev.take();
                        self.step = Step::Start(None);
                        if let Some(item) = self.item(None, event) {
                            return Poll::Ready(Some(item));
                        }
                    }
                    Poll::Ready(Ok((None, watch))) => {
                        let event = ev.take();
                        self.step = Step::Wait(watch);
                        if let Some(item) = self.item(None, event) {
                            return Poll::Ready(Some(item));
                        }
                    }
                    Poll::Ready(Err(e)) => {
                        let ev = ev.take();
                        if let Some(end) = self.after_error(e, ev) {
                            return Poll::Ready(end);
                        }
                    }
                },
                Step::Wait(watch) => match Pin::new(watch).poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Ok(ev)) => self.step = Step::Start(Some(ev)),
                    Poll::Ready(Err(e)) => {
                        if let Some(end) = self.after_error(e, None) {
                            return Poll::Ready(end);
                        }
                    }
                },
            }
        }
    }
}

/// What a node watch yields: the value read (`None` while the node is missing) and the event
/// that led to it.
type ItemResult<T> = Result<(Option<T>, Option<WatchedEvent>), Error>;

/// Whether a recipe should fetch again after `e`: yes for failures a new attempt gets past (a
/// lost connection, a timeout, an expired session that the client renews), no otherwise. A dead
/// handle (expired, not renewing) refuses every request at once, so retrying it would spin.
fn should_refetch(client: &Client, e: &Error) -> bool {
    match e {
        Error::ConnectionLoss | Error::Timeout => true,
        Error::SessionExpired => !matches!(client.state(), zk_core::SessionState::Lost(_)),
        _ => false,
    }
}

/// The last item of a recipe stream: nothing for a closed client, the error otherwise.
fn end_item<T>(e: Error) -> Option<Result<T, Error>> {
    match e {
        Error::Closed => None,
        e => Some(Err(e)),
    }
}
