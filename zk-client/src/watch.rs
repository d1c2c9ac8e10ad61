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
use zk_core::proto::{AddWatchMode, AddWatchRequest, Request, Stat};
use zk_core::session::{LostReason, WatchEnd};
use zk_core::{Error, WatchedEvent, WatcherId};

use crate::client::Client;
use crate::reply::OpFuture;
use crate::runtime::Runtime;
use crate::shared::{Shared, WatchItem};

/// Takes the next item for a watcher, parking the task if there is none.
fn poll_watcher(shared: &Shared, id: WatcherId, cx: &mut Context<'_>) -> Poll<Option<WatchItem>> {
    let mut g = shared.lock();
    let done = g.driver_done;
    let Some(slot) = g.watchers.get_mut(&id) else {
        return Poll::Ready(None);
    };
    if let Some(item) = slot.queue.pop_front() {
        return Poll::Ready(Some(item));
    }
    if done {
        return Poll::Ready(None);
    }
    slot.waker = Some(cx.waker().clone());
    Poll::Pending
}

fn end_error(reason: WatchEnd) -> Error {
    match reason {
        WatchEnd::SessionLost(r) => r.error(),
        _ => Error::Closed,
    }
}

/// A one-shot watch: resolves with the event that fired it, or with the error that ended it
/// (SessionExpired, Closed). Dropping it before it fires removes the watcher.
#[must_use = "dropping a watch removes it"]
pub struct Watch {
    shared: Arc<Shared>,
    id: WatcherId,
    done: bool,
}

impl Watch {
    pub(crate) fn new(shared: Arc<Shared>, id: WatcherId) -> Self {
        Watch {
            shared,
            id,
            done: false,
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
        if self.done {
            return Poll::Ready(Err(Error::Closed));
        }
        match poll_watcher(&self.shared, self.id, cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(item) => {
                self.done = true;
                self.shared.lock().watchers.remove(&self.id);
                Poll::Ready(match item {
                    Some(WatchItem::Event(ev)) => Ok(ev),
                    Some(WatchItem::Ended(reason)) => Err(end_error(reason)),
                    None => Err(Error::Closed),
                })
            }
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        if !self.done {
            self.shared.drop_watcher(self.id);
        }
    }
}

/// A persistent (or persistent-recursive) watch: every event until dropped. The stream ends when
/// the session does (or, after a failover, when the new server cannot keep the watch).
#[must_use = "dropping a watch removes it"]
pub struct PersistentWatch {
    shared: Arc<Shared>,
    id: WatcherId,
    ended: Option<WatchEnd>,
}

impl PersistentWatch {
    /// Why the stream ended, once it has.
    pub fn end_reason(&self) -> Option<WatchEnd> {
        self.ended
    }
}

impl Stream for PersistentWatch {
    type Item = WatchedEvent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<WatchedEvent>> {
        if self.ended.is_some() {
            return Poll::Ready(None);
        }
        match poll_watcher(&self.shared, self.id, cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(WatchItem::Event(ev))) => Poll::Ready(Some(ev)),
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
        self.shared.drop_watcher(self.id);
    }
}

impl<R: Runtime> Client<R> {
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
            |shared, (r, w)| {
                r?;
                let id = w.ok_or_else(|| Error::Protocol("addWatch armed nothing".into()))?;
                Ok(PersistentWatch {
                    shared: shared.clone(),
                    id,
                    ended: None,
                })
            },
        )
    }

    /// kazoo's DataWatch as a stream: the node's data now, then after every change. See
    /// [`DataWatch`].
    pub fn data_watch(&self, path: &str) -> DataWatch<R> {
        DataWatch {
            client: self.uncounted(),
            path: path.to_owned(),
            step: DataStep::Start(None),
        }
    }

    /// kazoo's ChildrenWatch as a stream: the node's children now, then after every change. See
    /// [`ChildrenWatch`].
    pub fn children_watch(&self, path: &str) -> ChildrenWatch<R> {
        ChildrenWatch {
            client: self.uncounted(),
            path: path.to_owned(),
            step: ChildStep::Start(None),
        }
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

enum DataStep {
    /// Fetch with getData (watching); carries the event that led here.
    Start(Option<WatchedEvent>),
    Get(OpFuture<(Bytes, Stat, Watch)>, Option<WatchedEvent>),
    Exists(OpFuture<(Option<Stat>, Watch)>, Option<WatchedEvent>),
    Wait(Watch),
    Done,
}

/// The data of one node, now and after every change (kazoo's `DataWatch`). Items: the current
/// data (or `None` while the node does not exist), then one per change, deletion or
/// re-creation. It keeps going across reconnects and session renewals; it ends when the client
/// closes (it does not keep the session open by itself), or with an error item for a failure it
/// cannot get past (e.g. NoAuth).
///
/// Changes that happen while a re-read is in flight are folded into that read, as with kazoo:
/// every item shows the latest data, not every intermediate version.
pub struct DataWatch<R: Runtime> {
    client: Client<R>,
    path: String,
    step: DataStep,
}

impl<R: Runtime> Unpin for DataWatch<R> {}

impl<R: Runtime> Stream for DataWatch<R> {
    type Item = Result<DataItem, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            match &mut this.step {
                DataStep::Done => return Poll::Ready(None),
                DataStep::Start(ev) => {
                    let ev = ev.take();
                    let fut = this.client.get_data(&this.path).watch();
                    this.step = DataStep::Get(fut, ev);
                }
                DataStep::Get(fut, ev) => match Pin::new(fut).poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Ok((data, stat, watch))) => {
                        let event = ev.take();
                        this.step = DataStep::Wait(watch);
                        return Poll::Ready(Some(Ok(DataItem {
                            data: Some((data, stat)),
                            event,
                        })));
                    }
                    Poll::Ready(Err(Error::NoNode { .. })) => {
                        let ev = ev.take();
                        let fut = this.client.exists(&this.path).watch();
                        this.step = DataStep::Exists(fut, ev);
                    }
                    Poll::Ready(Err(e)) => match should_refetch(&this.client, &e) {
                        true => this.step = DataStep::Start(ev.take()),
                        false => {
                            this.step = DataStep::Done;
                            return Poll::Ready(end_item(e));
                        }
                    },
                },
                DataStep::Exists(fut, ev) => match Pin::new(fut).poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    // Created between our getData and exists: read it.
                    Poll::Ready(Ok((Some(_), _watch))) => this.step = DataStep::Start(ev.take()),
                    Poll::Ready(Ok((None, watch))) => {
                        let event = ev.take();
                        this.step = DataStep::Wait(watch);
                        return Poll::Ready(Some(Ok(DataItem { data: None, event })));
                    }
                    Poll::Ready(Err(e)) => match should_refetch(&this.client, &e) {
                        true => this.step = DataStep::Start(ev.take()),
                        false => {
                            this.step = DataStep::Done;
                            return Poll::Ready(end_item(e));
                        }
                    },
                },
                DataStep::Wait(watch) => match Pin::new(watch).poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Ok(ev)) => this.step = DataStep::Start(Some(ev)),
                    Poll::Ready(Err(e)) => match should_refetch(&this.client, &e) {
                        true => this.step = DataStep::Start(None),
                        false => {
                            this.step = DataStep::Done;
                            return Poll::Ready(end_item(e));
                        }
                    },
                },
            }
        }
    }
}

/// Whether a recipe should fetch again after `e`: yes for failures a new attempt gets past (a
/// lost connection, a timeout, an expired session that the client renews), no otherwise. A dead
/// handle (expired, not renewing) refuses every request at once, so retrying it would spin.
fn should_refetch<R: Runtime>(client: &Client<R>, e: &Error) -> bool {
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

/// One item of a [`ChildrenWatch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildrenItem {
    /// The child names (in no defined order), or `None` when the node does not exist.
    pub children: Option<Vec<String>>,
    /// The event that led to this item; `None` for the first item and after a session renewal.
    pub event: Option<WatchedEvent>,
}

enum ChildStep {
    Start(Option<WatchedEvent>),
    List(OpFuture<(Vec<String>, Watch)>, Option<WatchedEvent>),
    Exists(OpFuture<(Option<Stat>, Watch)>, Option<WatchedEvent>),
    Wait(Watch),
    Done,
}

/// The children of one node, now and after every change (kazoo's `ChildrenWatch`). Items: the
/// current list (or `None` while the node does not exist), then one per change, deletion or
/// re-creation; same lifetime rules as [`DataWatch`]. Changes that happen while a re-read is in
/// flight fold into one item, so a node deleted right after its last child goes may come as a
/// single `None` item whose event is the NodeChildrenChanged that started the re-read.
pub struct ChildrenWatch<R: Runtime> {
    client: Client<R>,
    path: String,
    step: ChildStep,
}

impl<R: Runtime> Unpin for ChildrenWatch<R> {}

impl<R: Runtime> Stream for ChildrenWatch<R> {
    type Item = Result<ChildrenItem, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            match &mut this.step {
                ChildStep::Done => return Poll::Ready(None),
                ChildStep::Start(ev) => {
                    let ev = ev.take();
                    let fut = this.client.get_children(&this.path).watch();
                    this.step = ChildStep::List(fut, ev);
                }
                ChildStep::List(fut, ev) => match Pin::new(fut).poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Ok((children, watch))) => {
                        let event = ev.take();
                        this.step = ChildStep::Wait(watch);
                        return Poll::Ready(Some(Ok(ChildrenItem {
                            children: Some(children),
                            event,
                        })));
                    }
                    Poll::Ready(Err(Error::NoNode { .. })) => {
                        let ev = ev.take();
                        let fut = this.client.exists(&this.path).watch();
                        this.step = ChildStep::Exists(fut, ev);
                    }
                    Poll::Ready(Err(e)) => match should_refetch(&this.client, &e) {
                        true => this.step = ChildStep::Start(ev.take()),
                        false => {
                            this.step = ChildStep::Done;
                            return Poll::Ready(end_item(e));
                        }
                    },
                },
                ChildStep::Exists(fut, ev) => match Pin::new(fut).poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Ok((Some(_), _watch))) => this.step = ChildStep::Start(ev.take()),
                    Poll::Ready(Ok((None, watch))) => {
                        let event = ev.take();
                        this.step = ChildStep::Wait(watch);
                        return Poll::Ready(Some(Ok(ChildrenItem {
                            children: None,
                            event,
                        })));
                    }
                    Poll::Ready(Err(e)) => match should_refetch(&this.client, &e) {
                        true => this.step = ChildStep::Start(ev.take()),
                        false => {
                            this.step = ChildStep::Done;
                            return Poll::Ready(end_item(e));
                        }
                    },
                },
                ChildStep::Wait(watch) => match Pin::new(watch).poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Ok(ev)) => this.step = ChildStep::Start(Some(ev)),
                    Poll::Ready(Err(e)) => match should_refetch(&this.client, &e) {
                        true => this.step = ChildStep::Start(None),
                        false => {
                            this.step = ChildStep::Done;
                            return Poll::Ready(end_item(e));
                        }
                    },
                },
            }
        }
    }
}
