//! One-shot and persistent watches, waited on by blocking the calling thread.

use std::time::Duration;

use futures_lite::StreamExt;
use zk_client::{Error, PersistentItem, WatchEnd, WatchedEvent};

use crate::runtime::{block_on, block_on_timeout};

/// A one-shot watch, armed by `.watch()` on [`get_data`](crate::Client::get_data),
/// [`exists`](crate::Client::exists) or [`get_children`](crate::Client::get_children). It fires
/// once; dropping it before
/// then removes the watcher (and the server's watch, if it was the last one).
#[must_use = "dropping a watch removes it"]
#[derive(Debug)]
pub struct Watch {
    inner: zk_client::Watch,
}

impl Watch {
    pub(crate) fn new(inner: zk_client::Watch) -> Self {
        Watch { inner }
    }

    /// Blocks until the watch fires and returns the event.
    ///
    /// Errors with SessionExpired or Closed (or AuthFailed) if the session ends first; the
    /// watch is gone then.
    pub fn wait(mut self) -> Result<WatchedEvent, Error> {
        block_on(&mut self.inner)
    }

    /// Blocks at most `timeout` for the watch to fire: `None` if it did not (it stays armed, and
    /// can be waited on again), otherwise what [`wait`](Self::wait) would return. Once it has
    /// returned `Some`, later calls return `Some(Err(Error::Closed))`.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<Result<WatchedEvent, Error>> {
        block_on_timeout(&mut self.inner, timeout)
    }
}

/// A persistent (or persistent-recursive) watch from [`add_watch`](crate::Client::add_watch): an
/// [`Iterator`] of items whose `next()` blocks until the next one: events, and a
/// [`PersistentItem::Resync`] after every reconnect (changes made while disconnected were not
/// reported: re-read what you cache). It ends (`None`) when the
/// session ends; [`end_reason`](Self::end_reason) says why. Dropping it removes the watch.
#[must_use = "dropping a watch removes it"]
pub struct PersistentWatch {
    inner: zk_client::PersistentWatch,
}

impl std::fmt::Debug for PersistentWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PersistentWatch")
            .field("ended", &self.inner.end_reason())
            .finish_non_exhaustive()
    }
}

impl PersistentWatch {
    pub(crate) fn new(inner: zk_client::PersistentWatch) -> Self {
        PersistentWatch { inner }
    }

    /// The next item, waiting at most `timeout`: `None` if none arrived in time or the watch
    /// has ended ([`end_reason`](Self::end_reason) tells which).
    pub fn next_timeout(&mut self, timeout: Duration) -> Option<PersistentItem> {
        block_on_timeout(&mut self.inner.next(), timeout).flatten()
    }

    /// Why the watch ended, once it has (the session was lost or closed, or a new server could
    /// not keep the watch).
    pub fn end_reason(&self) -> Option<WatchEnd> {
        self.inner.end_reason()
    }
}

impl Iterator for PersistentWatch {
    type Item = PersistentItem;

    /// Blocks until the next item; `None` once the watch has ended.
    fn next(&mut self) -> Option<PersistentItem> {
        block_on(self.inner.next())
    }
}
