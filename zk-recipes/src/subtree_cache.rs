//! A cache of a whole subtree in the manner of Curator's `CuratorCache`: every node under (and
//! including) a root, with its data and Stat, kept current from ONE persistent recursive watch
//! (ZooKeeper 3.6+), and a stream of what changed.
//!
//! How it stays right: the watch is added first, then the subtree is read, so no change between
//! the two is missed. Each event is answered by reading the node it names (a deletion removes
//! the node and everything under it). After every reconnect the watch yields
//! [`PersistentItem::Resync`] (the server re-arms persistent watches but sends no catch-up
//! events), and after a session expiry the watch ends and is added again in the next session;
//! both times the whole subtree is read again and compared with the cache, which then yields
//! exactly the differences. So the cache converges to the tree after any disconnect.
//!
//! On a server without `addWatch` (3.5: [`Error::Unsupported`] or Unimplemented) the cache
//! falls back to one-shot data and child watches on every node, re-armed as they fire, as
//! kazoo's TreeCache does; [`SubtreeCache::with_one_shot_watches`] asks for that mode.
//!
//! No task runs behind the cache: it does its work while its stream is polled. Poll it in a
//! loop (in a task of yours) to keep it current; read it meanwhile through a [`CacheView`]. The
//! stream ends when the client is closed, or with an error item for a failure it cannot get
//! past (e.g. NoAuth on the root).

use std::collections::{BTreeMap, VecDeque};
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use futures_core::Stream;
use zk_client::{
    AddWatchMode, Bytes, Client, Error, EventType, LostReason, PersistentItem, PersistentWatch,
    SessionState, Stat, Watch, WatchedEvent,
};

use crate::coord_util::join;

/// One cached node (Curator's `ChildData`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildData {
    /// The node's full path.
    pub path: String,
    /// Its data.
    pub data: Bytes,
    /// Its Stat when it was last read. With a recursive watch, a parent is not read again when
    /// its children change, so its child counts (`num_children`, `cversion`, `pzxid`) may lag;
    /// its data and data version never do.
    pub stat: Stat,
}

/// What changed in a [`SubtreeCache`] (Curator's `CuratorCacheListener` events).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheEvent {
    /// A node appeared in the cache.
    Created(ChildData),
    /// A cached node's data (or data version) changed.
    Changed {
        /// The node as it was cached.
        old: ChildData,
        /// The node now.
        new: ChildData,
    },
    /// A node left the cache.
    Deleted(ChildData),
    /// The first full read of the subtree is in the cache (once per cache, after the Created
    /// events of the nodes that first read found).
    Initialized,
}

#[derive(Debug, Default)]
struct Inner {
    nodes: BTreeMap<String, ChildData>,
    events: VecDeque<Result<CacheEvent, Error>>,
    initialized: bool,
}

/// What the cache and its views share.
#[derive(Debug, Default)]
struct Shared {
    inner: Mutex<Inner>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Puts `node` in the cache, queueing Created or Changed (nothing if the same version).
    fn upsert(&self, node: ChildData) {
        let mut g = self.lock();
        match g.nodes.get(&node.path) {
            Some(old) if old.stat.mzxid == node.stat.mzxid && old.data == node.data => {
                // Same version; keep the fresher Stat (child counts) without an event.
                g.nodes.insert(node.path.clone(), node);
            }
            Some(old) => {
                let old = old.clone();
                g.nodes.insert(node.path.clone(), node.clone());
                g.events
                    .push_back(Ok(CacheEvent::Changed { old, new: node }));
            }
            None => {
                g.nodes.insert(node.path.clone(), node.clone());
                g.events.push_back(Ok(CacheEvent::Created(node)));
            }
        }
    }

    /// Removes `path` and everything under it, queueing Deleted deepest first.
    fn remove_subtree(&self, path: &str) {
        let mut g = self.lock();
        let gone: Vec<String> = g
            .nodes
            .keys()
            .filter(|k| is_within(k, path))
            .cloned()
            .collect();
        for k in gone.into_iter().rev() {
            if let Some(node) = g.nodes.remove(&k) {
                g.events.push_back(Ok(CacheEvent::Deleted(node)));
            }
        }
    }

    /// Makes the cache equal to `tree` (a full read), queueing the differences.
    fn replace_all(&self, tree: BTreeMap<String, ChildData>) {
        let gone: Vec<String> = {
            let g = self.lock();
            g.nodes
                .keys()
                .filter(|k| !tree.contains_key(*k))
                .cloned()
                .collect()
        };
        for k in gone.iter().rev() {
            let mut g = self.lock();
            if let Some(node) = g.nodes.remove(k) {
                g.events.push_back(Ok(CacheEvent::Deleted(node)));
            }
        }
        for (_, node) in tree {
            self.upsert(node);
        }
    }

    fn mark_initialized(&self) {
        let mut g = self.lock();
        if !g.initialized {
            g.initialized = true;
            g.events.push_back(Ok(CacheEvent::Initialized));
        }
    }

    fn push_error(&self, e: Error) {
        self.lock().events.push_back(Err(e));
    }
}

/// Whether `path` is `root` or under it.
fn is_within(path: &str, root: &str) -> bool {
    path == root
        || (path.starts_with(root)
            && (root == "/" || path.as_bytes().get(root.len()) == Some(&b'/')))
}

/// A read-only handle on a [`SubtreeCache`]'s contents, cheap to clone, for reading the cache
/// while another task polls it.
#[derive(Debug, Clone)]
pub struct CacheView {
    shared: Arc<Shared>,
}

impl CacheView {
    /// The cached node at `path`, if any (Curator's `get`).
    pub fn get(&self, path: &str) -> Option<ChildData> {
        self.shared.lock().nodes.get(path).cloned()
    }

    /// Every cached node, by path.
    pub fn snapshot(&self) -> BTreeMap<String, ChildData> {
        self.shared.lock().nodes.clone()
    }

    /// The number of cached nodes (Curator's `size`).
    pub fn len(&self) -> usize {
        self.shared.lock().nodes.len()
    }

    /// Whether nothing is cached (the root does not exist, or the first read is not done).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the first full read is done.
    pub fn is_initialized(&self) -> bool {
        self.shared.lock().initialized
    }
}

/// A subtree cache (see the module doc). A stream of [`CacheEvent`]s; the cache itself is read
/// through [`view`](Self::view) (or the same methods here).
pub struct SubtreeCache {
    view: CacheView,
    root: String,
    driver: Option<Pin<Box<dyn Future<Output = ()> + Send>>>,
}

impl std::fmt::Debug for SubtreeCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SubtreeCache")
            .field("root", &self.root)
            .field("nodes", &self.view.len())
            .finish()
    }
}

impl SubtreeCache {
    /// A cache of the subtree at `root` (which need not exist yet), on one persistent recursive
    /// watch, falling back to one-shot watches on servers without `addWatch`. Nothing is read
    /// until the stream is first polled.
    pub fn new(client: &Client, root: &str) -> SubtreeCache {
        Self::build(client, root, false)
    }

    /// A cache of the subtree at `root` on one-shot watches only (one data and one child watch
    /// per node), as on a 3.5 server.
    pub fn with_one_shot_watches(client: &Client, root: &str) -> SubtreeCache {
        Self::build(client, root, true)
    }

    fn build(client: &Client, root: &str, one_shot: bool) -> SubtreeCache {
        let shared = Arc::new(Shared::default());
        let driver = Driver {
            client: client.clone(),
            root: root.to_owned(),
            shared: shared.clone(),
        };
        SubtreeCache {
            view: CacheView { shared },
            root: root.to_owned(),
            driver: Some(Box::pin(driver.run(one_shot))),
        }
    }

    /// The root path.
    pub fn root(&self) -> &str {
        &self.root
    }

    /// A handle for reading the cache from elsewhere.
    pub fn view(&self) -> CacheView {
        self.view.clone()
    }

    /// The cached node at `path`, if any.
    pub fn get(&self, path: &str) -> Option<ChildData> {
        self.view.get(path)
    }

    /// Every cached node, by path.
    pub fn snapshot(&self) -> BTreeMap<String, ChildData> {
        self.view.snapshot()
    }

    /// The number of cached nodes.
    pub fn len(&self) -> usize {
        self.view.len()
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.view.is_empty()
    }
}

impl Stream for SubtreeCache {
    type Item = Result<CacheEvent, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if let Some(ev) = self.view.shared.lock().events.pop_front() {
            return Poll::Ready(Some(ev));
        }
        let finished = match self.driver.as_mut() {
            Some(d) => d.as_mut().poll(cx).is_ready(),
            None => true,
        };
        if finished {
            self.driver = None;
        }
        match self.view.shared.lock().events.pop_front() {
            Some(ev) => Poll::Ready(Some(ev)),
            None if finished => Poll::Ready(None),
            None => Poll::Pending,
        }
    }
}

/// Whether to try again after `e` (once the connection or a new session is there).
fn transient(client: &Client, e: &Error) -> bool {
    match e {
        Error::ConnectionLoss
        | Error::Timeout
        | Error::OperationTimeout
        | Error::Throttled
        | Error::SessionMoved => true,
        Error::SessionExpired => !matches!(client.state(), SessionState::Lost(_)),
        _ => false,
    }
}

/// Whether the client is closed for good.
fn client_done(client: &Client) -> bool {
    matches!(
        client.state(),
        SessionState::Lost(LostReason::Closed | LostReason::AuthFailed)
    )
}

/// The work behind a cache, run while its stream is polled.
struct Driver {
    client: Client,
    root: String,
    shared: Arc<Shared>,
}

impl Driver {
    async fn run(self, one_shot: bool) {
        if one_shot {
            return self.run_one_shot().await;
        }
        let mut pause = Duration::from_millis(50);
        loop {
            if client_done(&self.client) {
                return;
            }
            let mut watch = match self
                .client
                .add_watch(&self.root, AddWatchMode::PersistentRecursive)
                .await
            {
                Ok(w) => w,
                Err(Error::Unsupported { .. }) | Err(Error::Unimplemented) => {
                    return self.run_one_shot().await;
                }
                Err(Error::Closed) => return,
                Err(e) if transient(&self.client, &e) => {
                    self.client.sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(2));
                    continue;
                }
                Err(e) => return self.shared.push_error(e),
            };
            match self.follow(&mut watch).await {
                Ok(()) => pause = Duration::from_millis(50),
                Err(Error::Closed) => return,
                Err(e) if transient(&self.client, &e) => {}
                Err(e) => return self.shared.push_error(e),
            }
        }
    }

    /// Reads the subtree, then applies the watch's events until it ends (Ok: add it again).
    async fn follow(&self, watch: &mut PersistentWatch) -> Result<(), Error> {
        // A reconnect shows twice: as the session's state coming back and as the watch's
        // Resync item. Either one triggers a re-read, so the cache converges even if one of
        // them is missing (a core without Resync); counting both makes one re-read per
        // reconnect, not two.
        let mut states = self.client.state_changes();
        // The simulation's proof that its checker bites: a cache that never re-reads.
        let deaf = crate::sabotage::is(crate::sabotage::Break::CacheIgnoresResync);
        self.reload().await?;
        let mut was_connected = true;
        let (mut backs, mut resyncs, mut reloads) = (0u64, 0u64, 0u64);
        loop {
            let item = std::future::poll_fn(|cx| {
                while let Poll::Ready(Some(s)) = Pin::new(&mut states).poll_next(cx) {
                    let now = s.is_connected();
                    let back = now && !was_connected;
                    was_connected = now;
                    if back {
                        return Poll::Ready(Some(Signal::Back));
                    }
                }
                Pin::new(&mut *watch).poll_next(cx).map(|o| {
                    o.map(|item| match item {
                        PersistentItem::Event(ev) => Signal::Event(ev),
                        PersistentItem::Resync => Signal::Resync,
                    })
                })
            })
            .await;
            match item {
                Some(Signal::Event(ev)) => {
                    if let Err(e) = self.apply(&ev).await {
                        if !transient(&self.client, &e) {
                            return Err(e);
                        }
                        // The connection went while reading: the reconnect re-reads it all.
                    }
                }
                Some(Signal::Back | Signal::Resync) if deaf => {}
                Some(Signal::Back) => {
                    backs += 1;
                    if backs > reloads {
                        reloads += 1;
                        self.reload().await?;
                    }
                }
                Some(Signal::Resync) => {
                    resyncs += 1;
                    if resyncs > reloads {
                        reloads += 1;
                        self.reload().await?;
                    }
                }
                // The session ended: its watch with it. Add it again in the next one.
                None => return Ok(()),
            }
        }
    }

    /// Reads the node an event names and updates the cache.
    async fn apply(&self, ev: &WatchedEvent) -> Result<(), Error> {
        match ev.event_type {
            EventType::NodeDeleted => {
                self.shared.remove_subtree(&ev.path);
                Ok(())
            }
            EventType::NodeCreated | EventType::NodeDataChanged => {
                match self.client.get_data(&ev.path).await {
                    Ok((data, stat)) => {
                        self.shared.upsert(ChildData {
                            path: ev.path.clone(),
                            data,
                            stat,
                        });
                        Ok(())
                    }
                    Err(Error::NoNode { .. }) => {
                        self.shared.remove_subtree(&ev.path);
                        Ok(())
                    }
                    Err(e) => Err(e),
                }
            }
            _ => Ok(()),
        }
    }

    /// Reads the whole subtree again and makes the cache equal to it.
    async fn reload(&self) -> Result<(), Error> {
        let tree = self
            .client
            .retry(|c| async move { read_tree(&c, &self.root).await })
            .await?;
        self.shared.replace_all(tree);
        self.shared.mark_initialized();
        Ok(())
    }

    // ---- one-shot watches -------------------------------------------------------------------

    async fn run_one_shot(&self) {
        let mut pause = Duration::from_millis(50);
        loop {
            if client_done(&self.client) {
                return;
            }
            let mut watches = Vec::new();
            let r = self.one_shot_round(&mut watches).await;
            drop(watches);
            match r {
                Ok(()) => pause = Duration::from_millis(50),
                Err(Error::Closed) => return,
                Err(e) if transient(&self.client, &e) => {
                    self.client.sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(2));
                }
                Err(e) => return self.shared.push_error(e),
            }
        }
    }

    /// Loads the subtree with watches on every node, then follows them until one ends with the
    /// session (Ok: start over in the next session).
    async fn one_shot_round(&self, watches: &mut Vec<Armed>) -> Result<(), Error> {
        let mut tree = BTreeMap::new();
        self.load_watched(&self.root, &mut tree, watches).await?;
        self.shared.replace_all(tree);
        self.shared.mark_initialized();
        loop {
            let (armed, fired) = std::future::poll_fn(|cx| poll_any(watches, cx)).await;
            match fired {
                Ok(_) => self.refresh(armed, watches).await?,
                // Ended with the session (or removed): start over.
                Err(e) if transient(&self.client, &e) => return Ok(()),
                Err(e) => return Err(e),
            }
        }
    }

    /// Reads `path` and its subtree, arming a data and a child watch on each node (or an exists
    /// watch on `path` when it is missing).
    async fn load_watched(
        &self,
        path: &str,
        tree: &mut BTreeMap<String, ChildData>,
        watches: &mut Vec<Armed>,
    ) -> Result<(), Error> {
        let mut todo = vec![path.to_owned()];
        while let Some(p) = todo.pop() {
            let (data, stat, dw) = match self.client.get_data(&p).watch().await {
                Ok(r) => r,
                Err(Error::NoNode { .. }) => {
                    if p == path {
                        self.watch_creation(&p, watches).await?;
                    }
                    continue;
                }
                Err(e) => return Err(e),
            };
            watches.push(Armed::new(Kind::Data, &p, dw));
            let (kids, cw) = match self.client.get_children(&p).watch().await {
                Ok(r) => r,
                Err(Error::NoNode { .. }) => continue,
                Err(e) => return Err(e),
            };
            watches.push(Armed::new(Kind::Children, &p, cw));
            tree.insert(
                p.clone(),
                ChildData {
                    path: p.clone(),
                    data,
                    stat,
                },
            );
            for k in kids.iter() {
                todo.push(join(&p, k));
            }
        }
        Ok(())
    }

    async fn watch_creation(&self, path: &str, watches: &mut Vec<Armed>) -> Result<(), Error> {
        let (stat, w) = self.client.exists(path).watch().await?;
        watches.push(Armed::new(Kind::Exists, path, w));
        if stat.is_some() {
            // Created meanwhile: the watch fires at once on the next change; read it now.
            let mut tree = BTreeMap::new();
            Box::pin(self.load_watched(path, &mut tree, watches)).await?;
            for (_, n) in tree {
                self.shared.upsert(n);
            }
        }
        Ok(())
    }

    /// Answers one fired one-shot watch.
    async fn refresh(&self, armed: Armed, watches: &mut Vec<Armed>) -> Result<(), Error> {
        match armed.kind {
            Kind::Data => match self.client.get_data(&armed.path).watch().await {
                Ok((data, stat, w)) => {
                    watches.push(Armed::new(Kind::Data, &armed.path, w));
                    self.shared.upsert(ChildData {
                        path: armed.path.clone(),
                        data,
                        stat,
                    });
                }
                Err(Error::NoNode { .. }) => {
                    self.shared.remove_subtree(&armed.path);
                    if armed.path == self.root {
                        self.watch_creation(&armed.path, watches).await?;
                    }
                }
                Err(e) => return Err(e),
            },
            Kind::Children => match self.client.get_children(&armed.path).watch().await {
                Ok((kids, w)) => {
                    watches.push(Armed::new(Kind::Children, &armed.path, w));
                    for k in kids.iter() {
                        let p = join(&armed.path, k);
                        if self.shared.lock().nodes.contains_key(&p) {
                            continue;
                        }
                        let mut tree = BTreeMap::new();
                        Box::pin(self.load_watched(&p, &mut tree, watches)).await?;
                        for (_, n) in tree {
                            self.shared.upsert(n);
                        }
                    }
                }
                // The node went: its data watch says so.
                Err(Error::NoNode { .. }) => {}
                Err(e) => return Err(e),
            },
            Kind::Exists => {
                let mut tree = BTreeMap::new();
                Box::pin(self.load_watched(&armed.path, &mut tree, watches)).await?;
                for (_, n) in tree {
                    self.shared.upsert(n);
                }
            }
        }
        Ok(())
    }
}

/// Reads the subtree at `root` (empty if it does not exist). Each level's reads are sent
/// together (a request goes out when its future is made), so a wide level costs one round trip.
async fn read_tree(client: &Client, root: &str) -> Result<BTreeMap<String, ChildData>, Error> {
    let mut tree = BTreeMap::new();
    let mut level = vec![root.to_owned()];
    while !level.is_empty() {
        let reads: Vec<_> = level
            .iter()
            .map(|p| {
                (
                    client.get_data(p).into_future(),
                    client.get_children(p).into_future(),
                )
            })
            .collect();
        let mut next = Vec::new();
        for (p, (data, kids)) in level.iter().zip(reads) {
            let (data, stat) = match data.await {
                Ok(d) => d,
                Err(Error::NoNode { .. }) => continue,
                Err(e) => return Err(e),
            };
            let kids = match kids.await {
                Ok(k) => k,
                Err(Error::NoNode { .. }) => continue,
                Err(e) => return Err(e),
            };
            next.extend(kids.iter().map(|k| join(p, k)));
            tree.insert(
                p.clone(),
                ChildData {
                    path: p.clone(),
                    data,
                    stat,
                },
            );
        }
        level = next;
    }
    Ok(tree)
}

/// What the recursive-watch loop reacts to.
enum Signal {
    Event(WatchedEvent),
    /// The watch says events may have been missed (a reconnect).
    Resync,
    /// The session's state says the connection is back.
    Back,
}

/// Which one-shot watch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Data,
    Children,
    Exists,
}

/// A one-shot watch armed on a node.
struct Armed {
    kind: Kind,
    path: String,
    watch: Watch,
}

impl Armed {
    fn new(kind: Kind, path: &str, watch: Watch) -> Self {
        Armed {
            kind,
            path: path.to_owned(),
            watch,
        }
    }
}

/// The first of `watches` to fire (taken out of the list), with its outcome.
fn poll_any(
    watches: &mut Vec<Armed>,
    cx: &mut Context<'_>,
) -> Poll<(Armed, Result<WatchedEvent, Error>)> {
    for i in 0..watches.len() {
        if let Poll::Ready(r) = Pin::new(&mut watches[i].watch).poll(cx) {
            let armed = watches.swap_remove(i);
            return Poll::Ready((armed, r));
        }
    }
    // The root always holds a data or an exists watch, so this waits for one of them.
    Poll::Pending
}
