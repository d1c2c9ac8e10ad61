//! kazoo's `TreeCache`: the data and children of every node under a root, kept current, with
//! kazoo's events (`NODE_ADDED`, `NODE_UPDATED`, `NODE_REMOVED`, `CONNECTION_SUSPENDED`,
//! `CONNECTION_RECONNECTED`, `CONNECTION_LOST`, `INITIALIZED`) as a stream.
//!
//! It is kazoo's API over [`SubtreeCache`]: one persistent recursive watch where the server has
//! `addWatch` (kazoo sets a data and a child watch on every node; that is the fallback here), a
//! full re-read after reconnects and in new sessions, and no background task: the cache works
//! while its stream is polled.

use std::collections::{BTreeMap, BTreeSet};
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::Stream;
use zk_client::{Client, Error, SessionState, StateChanges};

use crate::subtree_cache::{CacheEvent, CacheView, ChildData, SubtreeCache};

/// kazoo's `TreeEvent`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TreeEvent {
    /// A node appeared (`NODE_ADDED`).
    NodeAdded(ChildData),
    /// A node's data changed (`NODE_UPDATED`); the node as it is now.
    NodeUpdated(ChildData),
    /// A node went (`NODE_REMOVED`); the node as it was.
    NodeRemoved(ChildData),
    /// The connection was lost; the cache may be stale until it is back
    /// (`CONNECTION_SUSPENDED`).
    ConnectionSuspended,
    /// The connection is back (`CONNECTION_RECONNECTED`); the cache re-reads the tree.
    ConnectionReconnected,
    /// The session was lost (`CONNECTION_LOST`); in a new session the cache reads the tree
    /// again.
    ConnectionLost,
    /// The first read of the tree is in the cache (`INITIALIZED`).
    Initialized,
}

/// kazoo's `TreeCache` as a stream of [`TreeEvent`]s. Made by [`start`](TreeCache::start);
/// dropping it stops it (kazoo's `close`).
pub struct TreeCache {
    cache: SubtreeCache,
    states: StateChanges,
    connected: bool,
}

impl std::fmt::Debug for TreeCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TreeCache")
            .field("root", &self.cache.root())
            .finish()
    }
}

impl TreeCache {
    /// Starts caching the tree at `path` (kazoo's `TreeCache(client, path).start()`); the
    /// first read happens when the stream is first polled.
    pub fn start(client: &Client, path: &str) -> TreeCache {
        TreeCache {
            states: client.state_changes(),
            connected: client.is_connected(),
            cache: SubtreeCache::new(client, path),
        }
    }

    /// A handle for reading the cache while another task polls it.
    pub fn view(&self) -> CacheView {
        self.cache.view()
    }

    /// The data and Stat of the cached node at `path` (kazoo's `get_data`), if cached.
    pub fn get_data(&self, path: &str) -> Option<ChildData> {
        self.cache.get(path)
    }

    /// The names of the children of the cached node at `path` (kazoo's `get_children`), if
    /// that node is cached.
    pub fn get_children(&self, path: &str) -> Option<BTreeSet<String>> {
        children_of(&self.cache.snapshot(), path)
    }
}

/// The names of the children of `path` in a cache snapshot; `None` if `path` is not cached.
pub(crate) fn children_of(
    nodes: &BTreeMap<String, ChildData>,
    path: &str,
) -> Option<BTreeSet<String>> {
    nodes.get(path)?;
    let prefix = if path == "/" {
        "/".to_owned()
    } else {
        format!("{path}/")
    };
    Some(
        nodes
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .filter_map(|(k, _)| {
                let rest = &k[prefix.len()..];
                (!rest.is_empty() && !rest.contains('/')).then(|| rest.to_owned())
            })
            .collect(),
    )
}

impl Stream for TreeCache {
    type Item = Result<TreeEvent, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        // Session events first: they explain what follows.
        while let Poll::Ready(Some(state)) = Pin::new(&mut self.states).poll_next(cx) {
            let was = self.connected;
            self.connected = state.is_connected();
            let event = match state {
                SessionState::Suspended if was => Some(TreeEvent::ConnectionSuspended),
                SessionState::Lost(_) => Some(TreeEvent::ConnectionLost),
                s if s.is_connected() && !was => Some(TreeEvent::ConnectionReconnected),
                _ => None,
            };
            if let Some(ev) = event {
                return Poll::Ready(Some(Ok(ev)));
            }
        }
        Pin::new(&mut self.cache).poll_next(cx).map(|o| {
            o.map(|r| {
                r.map(|ev| match ev {
                    CacheEvent::Created(n) => TreeEvent::NodeAdded(n),
                    CacheEvent::Changed { new, .. } => TreeEvent::NodeUpdated(new),
                    CacheEvent::Deleted(n) => TreeEvent::NodeRemoved(n),
                    CacheEvent::Initialized => TreeEvent::Initialized,
                })
            })
        })
    }
}
