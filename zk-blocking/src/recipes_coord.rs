//! Blocking counterparts of zk-recipes' coordination recipes (kazoo's Counter, Queue, Barrier,
//! DoubleBarrier, Party, ShallowParty; Curator's SharedCount, PersistentNode, GroupMember): each
//! wraps the async recipe over [`Client::as_async`] and waits on the calling thread. Semantics,
//! layouts and errors are the async recipe's; see zk-recipes for them.

use std::future::Future;
use std::pin::Pin;

use futures_core::Stream;
use zk_client::{Bytes, Data, Error};
pub use zk_recipes::counter::{Change, CounterValue};
pub use zk_recipes::persistent_node::NodeMode;
pub use zk_recipes::shared_count::VersionedValue;
pub use zk_recipes::subtree_cache::{CacheEvent, CacheView, ChildData};
pub use zk_recipes::tree_cache::TreeEvent;

use crate::runtime::block_on;
use crate::Client;

/// The next item of a stream, waiting on this thread.
fn next_blocking<S: Stream + Unpin>(s: &mut S) -> Option<S::Item> {
    block_on(std::future::poll_fn(|cx| Pin::new(&mut *s).poll_next(cx)))
}

fn wait<F: Future>(f: F) -> F::Output {
    block_on(f)
}

/// kazoo's `Counter` (see [`zk_recipes::Counter`]): an `i64` or `f64` counter in one node,
/// changed by compare-and-set.
#[derive(Debug)]
pub struct Counter<T: CounterValue = i64>(zk_recipes::Counter<T>);

impl Counter<i64> {
    /// An integer counter at `path`, 0 when new. Nothing is sent yet.
    pub fn new(client: &Client, path: &str) -> Self {
        Counter(zk_recipes::Counter::new(client.as_async(), path))
    }

    /// Curator's `SharedCount` layout (4 big-endian bytes; values must fit an `i32`).
    pub fn support_curator(self) -> Self {
        Counter(self.0.support_curator())
    }
}

impl<T: CounterValue> Counter<T> {
    /// A counter at `path` that reads as `default` when new (`0.0` makes a float counter).
    pub fn with_default(client: &Client, path: &str, default: T) -> Self {
        Counter(zk_recipes::Counter::with_default(
            client.as_async(),
            path,
            default,
        ))
    }

    /// The counter's path.
    pub fn path(&self) -> &str {
        self.0.path()
    }

    /// The current value.
    ///
    /// Errors as [`zk_recipes::Counter::value`].
    pub fn value(&self) -> Result<T, Error> {
        wait(self.0.value())
    }

    /// Adds `delta`; the values before and after.
    ///
    /// Errors as [`zk_recipes::Counter::add`].
    pub fn add(&self, delta: T) -> Result<Change<T>, Error> {
        wait(self.0.add(delta))
    }

    /// Subtracts `delta`.
    ///
    /// Errors as [`zk_recipes::Counter::sub`].
    pub fn sub(&self, delta: T) -> Result<Change<T>, Error> {
        wait(self.0.sub(delta))
    }
}

/// Curator's `SharedCount` (see [`zk_recipes::SharedCount`]).
#[derive(Debug, Clone)]
pub struct SharedCount(zk_recipes::SharedCount);

impl SharedCount {
    /// Opens the count at `path`, creating it with `seed` if missing.
    ///
    /// Errors as [`zk_recipes::SharedCount::start`].
    pub fn start(client: &Client, path: &str, seed: i32) -> Result<SharedCount, Error> {
        wait(zk_recipes::SharedCount::start(
            client.as_async(),
            path,
            seed,
        ))
        .map(SharedCount)
    }

    /// The count now.
    ///
    /// Errors as [`zk_recipes::SharedCount::count`].
    pub fn count(&self) -> Result<i32, Error> {
        wait(self.0.count())
    }

    /// The count and its version.
    ///
    /// Errors as [`zk_recipes::SharedCount::versioned_value`].
    pub fn versioned_value(&self) -> Result<VersionedValue, Error> {
        wait(self.0.versioned_value())
    }

    /// Sets the count whatever it is.
    ///
    /// Errors as [`zk_recipes::SharedCount::set_count`].
    pub fn set_count(&self, n: i32) -> Result<(), Error> {
        wait(self.0.set_count(n))
    }

    /// Sets the count if it is still at `previous`'s version; false if it changed.
    ///
    /// Errors as [`zk_recipes::SharedCount::try_set_count`].
    pub fn try_set_count(&self, previous: &VersionedValue, n: i32) -> Result<bool, Error> {
        wait(self.0.try_set_count(previous, n))
    }

    /// The count now, then after every change, as a blocking iterator (see
    /// [`zk_recipes::SharedCount::changes`]); it ends when the client closes.
    pub fn changes(&self) -> CountChanges {
        CountChanges(self.0.changes())
    }
}

/// The blocking iterator of [`SharedCount::changes`].
#[derive(Debug)]
pub struct CountChanges(zk_recipes::CountChanges);

impl Iterator for CountChanges {
    type Item = Result<VersionedValue, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        next_blocking(&mut self.0)
    }
}

/// kazoo's `Queue` (see [`zk_recipes::Queue`]).
#[derive(Debug)]
pub struct Queue(zk_recipes::Queue);

impl Queue {
    /// The queue at `path`.
    pub fn new(client: &Client, path: &str) -> Self {
        Queue(zk_recipes::Queue::new(client.as_async(), path))
    }

    /// Puts an item with priority 100.
    ///
    /// Errors as [`zk_recipes::Queue::put`].
    pub fn put(&self, value: impl Data) -> Result<(), Error> {
        wait(self.0.put(value))
    }

    /// Puts an item with `priority` (0..=999, lower first).
    ///
    /// Errors as [`zk_recipes::Queue::put_with_priority`].
    pub fn put_with_priority(&self, value: impl Data, priority: u16) -> Result<(), Error> {
        wait(self.0.put_with_priority(value, priority))
    }

    /// Puts several items, all or none.
    ///
    /// Errors as [`zk_recipes::Queue::put_all`].
    pub fn put_all<D: Data>(
        &self,
        values: impl IntoIterator<Item = D>,
        priority: u16,
    ) -> Result<(), Error> {
        wait(self.0.put_all(values, priority))
    }

    /// Takes the first item; `None` when empty.
    ///
    /// Errors as [`zk_recipes::Queue::get`].
    pub fn get(&self) -> Result<Option<Bytes>, Error> {
        wait(self.0.get())
    }

    /// The number of items.
    ///
    /// Errors as [`zk_recipes::Queue::len`].
    pub fn len(&self) -> Result<usize, Error> {
        wait(self.0.len())
    }

    /// Whether the queue is empty.
    ///
    /// Errors as [`zk_recipes::Queue::len`].
    pub fn is_empty(&self) -> Result<bool, Error> {
        wait(self.0.is_empty())
    }
}

/// kazoo's `Barrier` (see [`zk_recipes::Barrier`]).
#[derive(Debug, Clone)]
pub struct Barrier(zk_recipes::Barrier);

impl Barrier {
    /// The barrier at `path`.
    pub fn new(client: &Client, path: &str) -> Self {
        Barrier(zk_recipes::Barrier::new(client.as_async(), path))
    }

    /// Puts the barrier in place.
    ///
    /// Errors as [`zk_recipes::Barrier::create`].
    pub fn create(&self) -> Result<(), Error> {
        wait(self.0.create())
    }

    /// Removes the barrier; true if it was in place.
    ///
    /// Errors as [`zk_recipes::Barrier::remove`].
    pub fn remove(&self) -> Result<bool, Error> {
        wait(self.0.remove())
    }

    /// Blocks until the barrier is removed.
    ///
    /// Errors as [`zk_recipes::Barrier::wait`].
    pub fn wait(&self) -> Result<(), Error> {
        wait(self.0.wait())
    }

    /// Blocks at most `d`: true if the barrier was removed, false if the time ran out.
    ///
    /// Errors as [`zk_recipes::Barrier::wait`].
    pub fn wait_timeout(&self, d: std::time::Duration) -> Result<bool, Error> {
        wait(self.0.wait_timeout(d))
    }
}

/// kazoo's `DoubleBarrier` (see [`zk_recipes::DoubleBarrier`]).
#[derive(Debug)]
pub struct DoubleBarrier(zk_recipes::DoubleBarrier);

impl DoubleBarrier {
    /// A member of the double barrier at `path` releasing at `num_clients` members.
    pub fn new(client: &Client, path: &str, num_clients: usize) -> Self {
        DoubleBarrier(zk_recipes::DoubleBarrier::new(
            client.as_async(),
            path,
            num_clients,
        ))
    }

    /// The data of this member's node.
    pub fn identifier(self, identifier: impl Data) -> Self {
        DoubleBarrier(self.0.identifier(identifier))
    }

    /// Whether this member has entered and not left.
    pub fn is_participating(&self) -> bool {
        self.0.is_participating()
    }

    /// Enters and blocks until `num_clients` members have entered.
    ///
    /// Errors as [`zk_recipes::DoubleBarrier::enter`].
    pub fn enter(&self) -> Result<(), Error> {
        wait(self.0.enter())
    }

    /// Leaves and blocks until every member has left.
    ///
    /// Errors as [`zk_recipes::DoubleBarrier::leave`].
    pub fn leave(&self) -> Result<(), Error> {
        wait(self.0.leave())
    }
}

/// kazoo's `Party` (see [`zk_recipes::Party`]).
#[derive(Debug)]
pub struct Party(zk_recipes::Party);

impl Party {
    /// A would-be member of the party at `path` with `identifier` as data.
    pub fn new(client: &Client, path: &str, identifier: &str) -> Self {
        Party(zk_recipes::Party::new(client.as_async(), path, identifier))
    }

    /// Joins the party.
    ///
    /// Errors as [`zk_recipes::Party::join`].
    pub fn join(&self) -> Result<(), Error> {
        wait(self.0.join())
    }

    /// Leaves the party; true if this member was in it.
    ///
    /// Errors as [`zk_recipes::Party::leave`].
    pub fn leave(&self) -> Result<bool, Error> {
        wait(self.0.leave())
    }

    /// The members' identifiers.
    ///
    /// Errors as [`zk_recipes::Party::members`].
    pub fn members(&self) -> Result<Vec<String>, Error> {
        wait(self.0.members())
    }

    /// The number of members.
    ///
    /// Errors as [`zk_recipes::Party::len`].
    pub fn len(&self) -> Result<usize, Error> {
        wait(self.0.len())
    }

    /// Whether the party has no members.
    ///
    /// Errors as [`zk_recipes::Party::len`].
    pub fn is_empty(&self) -> Result<bool, Error> {
        wait(self.0.is_empty())
    }
}

/// kazoo's `ShallowParty` (see [`zk_recipes::ShallowParty`]).
#[derive(Debug)]
pub struct ShallowParty(zk_recipes::ShallowParty);

impl ShallowParty {
    /// A would-be member of the party at `path` named `identifier`.
    pub fn new(client: &Client, path: &str, identifier: &str) -> Self {
        ShallowParty(zk_recipes::ShallowParty::new(
            client.as_async(),
            path,
            identifier,
        ))
    }

    /// Joins the party.
    ///
    /// Errors as [`zk_recipes::ShallowParty::join`].
    pub fn join(&self) -> Result<(), Error> {
        wait(self.0.join())
    }

    /// Leaves the party; true if this member was in it.
    ///
    /// Errors as [`zk_recipes::ShallowParty::leave`].
    pub fn leave(&self) -> Result<bool, Error> {
        wait(self.0.leave())
    }

    /// The members' identifiers.
    ///
    /// Errors as [`zk_recipes::ShallowParty::members`].
    pub fn members(&self) -> Result<Vec<String>, Error> {
        wait(self.0.members())
    }

    /// The number of members.
    ///
    /// Errors as [`zk_recipes::ShallowParty::len`].
    pub fn len(&self) -> Result<usize, Error> {
        wait(self.0.len())
    }

    /// Whether the party has no members.
    ///
    /// Errors as [`zk_recipes::ShallowParty::len`].
    pub fn is_empty(&self) -> Result<bool, Error> {
        wait(self.0.is_empty())
    }
}

/// Curator's `PersistentNode` (see [`zk_recipes::PersistentNode`]): a node kept in place by a
/// task on the client's driver thread; dropping the handle deletes the node.
#[derive(Debug)]
pub struct PersistentNode(zk_recipes::PersistentNode);

impl PersistentNode {
    /// Starts keeping a node at `path`.
    ///
    /// Errors as [`zk_recipes::PersistentNode::start`].
    pub fn start(
        client: &Client,
        mode: NodeMode,
        use_protection: bool,
        path: &str,
        data: impl Data,
    ) -> Result<PersistentNode, Error> {
        zk_recipes::PersistentNode::start(client.as_async(), mode, use_protection, path, data)
            .map(PersistentNode)
    }

    /// The node's path once created.
    pub fn actual_path(&self) -> Option<String> {
        self.0.actual_path()
    }

    /// The data the node is (re)created with.
    pub fn data(&self) -> Bytes {
        self.0.data()
    }

    /// Whether the node is still kept.
    pub fn is_running(&self) -> bool {
        self.0.is_running()
    }

    /// Blocks until the node was first created, at most `timeout`: true if it was.
    ///
    /// Errors as [`zk_recipes::PersistentNode::wait_for_initial_create`].
    pub fn wait_for_initial_create(&self, timeout: std::time::Duration) -> Result<bool, Error> {
        wait(self.0.wait_for_initial_create(timeout))
    }

    /// Replaces the node's data.
    ///
    /// Errors as [`zk_recipes::PersistentNode::set_data`].
    pub fn set_data(&self, data: impl Data) -> Result<(), Error> {
        wait(self.0.set_data(data))
    }

    /// Stops keeping the node and deletes it.
    pub fn close(self) {
        wait(self.0.close())
    }
}

/// Curator's `PersistentTtlNode` (see [`zk_recipes::PersistentTtlNode`]).
#[derive(Debug)]
pub struct PersistentTtlNode(zk_recipes::PersistentTtlNode);

impl PersistentTtlNode {
    /// Starts keeping the container at `path` and its TTL child.
    ///
    /// Errors as [`zk_recipes::PersistentTtlNode::start`].
    pub fn start(
        client: &Client,
        path: &str,
        ttl: std::time::Duration,
        data: impl Data,
    ) -> Result<PersistentTtlNode, Error> {
        zk_recipes::PersistentTtlNode::start(client.as_async(), path, ttl, data)
            .map(PersistentTtlNode)
    }

    /// Blocks until the container was first created, at most `timeout`: true if it was.
    ///
    /// Errors as [`zk_recipes::PersistentTtlNode::wait_for_initial_create`].
    pub fn wait_for_initial_create(&self, timeout: std::time::Duration) -> Result<bool, Error> {
        wait(self.0.wait_for_initial_create(timeout))
    }

    /// Replaces the container's data.
    ///
    /// Errors as [`zk_recipes::PersistentTtlNode::set_data`].
    pub fn set_data(&self, data: impl Data) -> Result<(), Error> {
        wait(self.0.set_data(data))
    }

    /// Whether the node is still kept.
    pub fn is_running(&self) -> bool {
        self.0.is_running()
    }

    /// Stops touching the child; the node goes once the TTL passes.
    pub fn close(self) {
        wait(self.0.close())
    }
}

/// Curator's `GroupMember` (see [`zk_recipes::GroupMember`]).
#[derive(Debug)]
pub struct GroupMember(zk_recipes::GroupMember);

impl GroupMember {
    /// Joins the group at `membership_path` as `id` with `payload`.
    ///
    /// Errors as [`zk_recipes::GroupMember::start`].
    pub fn start(
        client: &Client,
        membership_path: &str,
        id: &str,
        payload: impl Data,
    ) -> Result<GroupMember, Error> {
        zk_recipes::GroupMember::start(client.as_async(), membership_path, id, payload)
            .map(GroupMember)
    }

    /// Blocks until this member's node was first created, at most `timeout`.
    ///
    /// Errors as [`zk_recipes::GroupMember::wait_for_initial_create`].
    pub fn wait_for_initial_create(&self, timeout: std::time::Duration) -> Result<bool, Error> {
        wait(self.0.wait_for_initial_create(timeout))
    }

    /// Changes this member's payload.
    ///
    /// Errors as [`zk_recipes::GroupMember::set_this_data`].
    pub fn set_this_data(&self, data: impl Data) -> Result<(), Error> {
        wait(self.0.set_this_data(data))
    }

    /// The members now, id to payload.
    ///
    /// Errors as [`zk_recipes::GroupMember::current_members`].
    pub fn current_members(&self) -> Result<std::collections::BTreeMap<String, Bytes>, Error> {
        wait(self.0.current_members())
    }

    /// Leaves the group.
    pub fn close(self) {
        wait(self.0.close())
    }
}

/// A Curator-style subtree cache (see [`zk_recipes::SubtreeCache`]) as a blocking iterator of
/// its events; the cache is kept current while the iterator is advanced (from one thread),
/// and read from any thread through [`view`](Self::view).
#[derive(Debug)]
pub struct SubtreeCache(zk_recipes::SubtreeCache);

impl SubtreeCache {
    /// A cache of the subtree at `root` on one persistent recursive watch (one-shot watches
    /// on servers without `addWatch`).
    pub fn new(client: &Client, root: &str) -> Self {
        SubtreeCache(zk_recipes::SubtreeCache::new(client.as_async(), root))
    }

    /// A cache of the subtree at `root` on one-shot watches only.
    pub fn with_one_shot_watches(client: &Client, root: &str) -> Self {
        SubtreeCache(zk_recipes::SubtreeCache::with_one_shot_watches(
            client.as_async(),
            root,
        ))
    }

    /// A handle for reading the cache from any thread.
    pub fn view(&self) -> CacheView {
        self.0.view()
    }

    /// The cached node at `path`, if any.
    pub fn get(&self, path: &str) -> Option<ChildData> {
        self.0.get(path)
    }

    /// Every cached node, by path.
    pub fn snapshot(&self) -> std::collections::BTreeMap<String, ChildData> {
        self.0.snapshot()
    }
}

impl Iterator for SubtreeCache {
    type Item = Result<CacheEvent, Error>;

    /// Blocks until the cache changes; `None` once the client is closed.
    fn next(&mut self) -> Option<Self::Item> {
        next_blocking(&mut self.0)
    }
}

/// kazoo's `TreeCache` (see [`zk_recipes::TreeCache`]) as a blocking iterator of its events;
/// the cache is kept current while the iterator is advanced, and read from any thread through
/// [`view`](Self::view).
#[derive(Debug)]
pub struct TreeCache(zk_recipes::TreeCache);

impl TreeCache {
    /// Starts caching the tree at `path`.
    pub fn start(client: &Client, path: &str) -> Self {
        TreeCache(zk_recipes::TreeCache::start(client.as_async(), path))
    }

    /// A handle for reading the cache from any thread.
    pub fn view(&self) -> CacheView {
        self.0.view()
    }

    /// The cached node at `path`, if any.
    pub fn get_data(&self, path: &str) -> Option<ChildData> {
        self.0.get_data(path)
    }

    /// The names of the children of the cached node at `path`, if it is cached.
    pub fn get_children(&self, path: &str) -> Option<std::collections::BTreeSet<String>> {
        self.0.get_children(path)
    }
}

impl Iterator for TreeCache {
    type Item = Result<TreeEvent, Error>;

    /// Blocks until the next event; `None` once the client is closed.
    fn next(&mut self) -> Option<Self::Item> {
        next_blocking(&mut self.0)
    }
}

/// kazoo's `PatientChildrenWatch` (see [`zk_recipes::PatientChildrenWatch`]).
#[derive(Debug, Clone)]
pub struct PatientChildrenWatch(zk_recipes::PatientChildrenWatch);

impl PatientChildrenWatch {
    /// A watch of the children of `path` that waits for them to be still for `time_boundary`.
    pub fn new(client: &Client, path: &str, time_boundary: std::time::Duration) -> Self {
        PatientChildrenWatch(zk_recipes::PatientChildrenWatch::new(
            client.as_async(),
            path,
            time_boundary,
        ))
    }

    /// Blocks until the children have been still for the time boundary; returns them and a
    /// watch that fires at their next change.
    ///
    /// Errors as [`zk_recipes::PatientChildrenWatch::start`].
    pub fn start(&self) -> Result<(Vec<String>, crate::Watch), Error> {
        wait(self.0.start()).map(|(children, w)| (children, crate::Watch::new(w)))
    }
}
