//! The watch registry: which local watchers wait on which path, and for what.
//!
//! One registry holds every kind (one-shot data, exist and child watches; persistent and
//! persistent-recursive watches). Several local watchers may share one server watch; a
//! notification fans out to exactly the watchers it concerns, following the Java client's rules
//! (PROTOCOL.md §10.6) with 3.9's choice for NodeChildrenChanged (recursive watchers never see it).
//! The registry also decides what to tell the server when the last local watcher of a server watch
//! goes away, and lists every live watch for SetWatches on reconnect.
//!
//! Paths here are client paths (chroot stripped).
//!
//! Memory: a client may hold hundreds of thousands of watches, so the per-watch cost is kept
//! down (BENCHMARKS.md, "Memory per watch"): one allocation per watched path (its name, shared
//! between the two maps), a per-path record that holds a lone watcher inline, and hash maps
//! rather than B-trees (a B-tree filled in key order leaves its nodes about half empty). The
//! maps use a fixed hash so that a run replays exactly, and every output that lists many
//! watches (`drain`, `persistent_watchers`, `rearm_lists`) is sorted, as the B-trees gave it.

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use crate::path::ancestors_inclusive;
use crate::proto::{EventType, WatcherType};

/// Identifies one local watcher. It is the number of the request that armed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WatcherId(pub u64);

/// What a watcher waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WatchKind {
    /// One-shot: data changes or deletion of an existing node (getData, exists on a node).
    Data,
    /// One-shot: creation of a node that did not exist (exists on a missing node).
    Exist,
    /// One-shot: child list changes or deletion (getChildren).
    Child,
    /// Stays armed: every event for the node itself (addWatch PERSISTENT).
    Persistent,
    /// Stays armed: created, deleted and data-changed events for the node and every descendant
    /// (addWatch PERSISTENT_RECURSIVE).
    PersistentRecursive,
}

impl WatchKind {
    /// True for kinds that stay armed after firing.
    pub fn is_persistent(self) -> bool {
        matches!(self, WatchKind::Persistent | WatchKind::PersistentRecursive)
    }
}

/// A fixed (unseeded) hash for the registry's maps: the session must behave the same on every
/// run of a seed, and std's `RandomState` would change the maps' layout from run to run. The
/// keys are watcher ids and paths this client watches itself, so flooding one bucket on purpose
/// is not a concern. FxHash's word-at-a-time mixing, with splitmix64's finaliser so that the
/// low bits (which pick the bucket) depend on every byte: paths that differ only in their last
/// characters would otherwise collide.
#[derive(Default)]
struct FixedHasher(u64);

impl FixedHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
}

impl Hasher for FixedHasher {
    fn finish(&self) -> u64 {
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(w));
        }
    }

    fn write_u8(&mut self, n: u8) {
        self.add(u64::from(n));
    }

    fn write_u64(&mut self, n: u64) {
        self.add(n);
    }

    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }
}

type FixedMap<K, V> = HashMap<K, V, BuildHasherDefault<FixedHasher>>;

/// Below this many buckets a map is not worth shrinking.
const MIN_SHRINK: usize = 1024;

/// Gives back the memory of a map that has emptied out: hash maps never shrink by themselves,
/// and a registry that once held 100,000 watches would keep their buckets for good. Shrinking
/// only below a quarter of the capacity, to half, keeps the rehashing amortised O(1) per removal.
fn shrink<K: std::hash::Hash + Eq, V>(map: &mut FixedMap<K, V>) {
    if map.capacity() > MIN_SHRINK && map.len() * 4 < map.capacity() {
        map.shrink_to(map.len() * 2);
    }
}

/// One local watcher of a path: its kind and id.
type Entry = (WatchKind, WatcherId);

/// The local watchers of one path, in registration order. A path usually has one watcher, which
/// is held inline (16 bytes, no allocation of its own); several go to a vector.
#[derive(Debug, Default)]
enum PathWatches {
    #[default]
    Empty,
    One(Entry),
    // Boxed, which costs a second allocation for the rare path with several watchers, so that
    // the record stays at 16 bytes for every other path (a bare `Vec` would make it 24).
    #[allow(clippy::box_collection)]
    Many(Box<Vec<Entry>>),
}

impl PathWatches {
    fn as_slice(&self) -> &[Entry] {
        match self {
            PathWatches::Empty => &[],
            PathWatches::One(e) => std::slice::from_ref(e),
            PathWatches::Many(v) => v,
        }
    }

    fn push(&mut self, kind: WatchKind, id: WatcherId) {
        let e = (kind, id);
        match self {
            PathWatches::Empty => *self = PathWatches::One(e),
            PathWatches::One(first) => *self = PathWatches::Many(Box::new(vec![*first, e])),
            PathWatches::Many(v) => v.push(e),
        }
    }

    /// Keeps the watchers for which `keep` holds, back to the inline form when one is left.
    fn retain(&mut self, mut keep: impl FnMut(&Entry) -> bool) {
        match self {
            PathWatches::Empty => {}
            PathWatches::One(e) => {
                if !keep(e) {
                    *self = PathWatches::Empty;
                }
            }
            PathWatches::Many(v) => {
                v.retain(|e| keep(e));
                match v.as_slice() {
                    [] => *self = PathWatches::Empty,
                    [e] => *self = PathWatches::One(*e),
                    _ => {}
                }
            }
        }
    }

    fn remove(&mut self, id: WatcherId) {
        self.retain(|(_, w)| *w != id);
    }

    /// The kind of watcher `id`, if it is registered here.
    fn kind_of(&self, id: WatcherId) -> Option<WatchKind> {
        self.as_slice()
            .iter()
            .find(|(_, w)| *w == id)
            .map(|(k, _)| *k)
    }

    /// True if a watcher of this kind is registered here.
    fn any(&self, kind: WatchKind) -> bool {
        self.as_slice().iter().any(|(k, _)| *k == kind)
    }

    /// The watchers of one kind, in registration order.
    fn ids(&self, kind: WatchKind) -> impl Iterator<Item = WatcherId> + '_ {
        self.as_slice()
            .iter()
            .filter(move |(k, _)| *k == kind)
            .map(|(_, w)| *w)
    }

    /// Removes the watchers of one kind, appending them to `out` in registration order.
    fn take(&mut self, kind: WatchKind, out: &mut Vec<WatcherId>) {
        out.extend(self.ids(kind));
        self.retain(|(k, _)| *k != kind);
    }

    fn is_empty(&self) -> bool {
        matches!(self, PathWatches::Empty)
    }

    fn has_persistent(&self) -> bool {
        self.as_slice().iter().any(|(k, _)| k.is_persistent())
    }
}

/// Every live watch, as server paths, for SetWatches/SetWatches2.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct WatchLists {
    /// Paths with data watches.
    pub data: Vec<String>,
    /// Paths with exist watches.
    pub exist: Vec<String>,
    /// Paths with child watches.
    pub child: Vec<String>,
    /// Paths with persistent watches.
    pub persistent: Vec<String>,
    /// Paths with persistent recursive watches.
    pub recursive: Vec<String>,
}

/// What to tell the server when a local watcher goes away.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Removal {
    /// Nothing: the server watch still serves other local watchers (or stays as a harmless
    /// stray).
    Keep,
    /// removeWatches(path, type); the persistent mode the server held for the path, if any, is
    /// forgotten (the third field), since the removal takes it away.
    Remove(String, WatcherType, Option<WatchKind>),
    /// addWatch(path, PERSISTENT): the last recursive watcher went but persistent ones remain, so
    /// the path's server mode steps down.
    Downgrade(String),
}

/// The registry of local watchers.
///
/// Servers before 3.9 keep one watch mode per connection and path (ZOOKEEPER-4466): a one-shot
/// watch set on a path with a persistent watch replaces it, and so do persistent and recursive
/// watches each other. So the registry also remembers the persistent mode the server holds for
/// each path, and the session never asks for a second mode on such a path: one-shot watchers
/// ride on the persistent watch's events, a persistent watcher on a recursive watch's events
/// (its NodeChildrenChanged is derived from the children's created and deleted events). This
/// works the same on 3.9, where modes could coexist.
#[derive(Debug, Default)]
pub(crate) struct WatchRegistry {
    /// The local watchers of each path. The key is the one copy of the path, shared with
    /// `owners`.
    paths: FixedMap<Arc<str>, PathWatches>,
    /// The path of each watcher (its kind is in the path's record).
    owners: FixedMap<WatcherId, Arc<str>>,
    /// Live watchers of kind PersistentRecursive.
    recursive: usize,
    /// Live watchers of either persistent kind.
    persistent: usize,
    server_modes: BTreeMap<String, WatchKind>,
}

impl WatchRegistry {
    /// Keeps the persistent counts right as a watcher of `kind` comes (`true`) or goes.
    fn count(&mut self, kind: WatchKind, added: bool) {
        let step = |n: &mut usize| {
            if added {
                *n += 1;
            } else {
                *n = n.saturating_sub(1);
            }
        };
        if kind == WatchKind::PersistentRecursive {
            step(&mut self.recursive);
        }
        if kind.is_persistent() {
            step(&mut self.persistent);
        }
    }

    /// Registers a watcher.
    pub fn add(&mut self, path: &str, kind: WatchKind, id: WatcherId) {
        if self.owners.contains_key(&id) {
            return;
        }
        let key: Arc<str> = match self.paths.get_key_value(path) {
            Some((k, _)) => k.clone(),
            None => Arc::from(path),
        };
        self.paths.entry(key.clone()).or_default().push(kind, id);
        self.owners.insert(id, key);
        self.count(kind, true);
    }

    /// Number of live watchers.
    pub fn len(&self) -> usize {
        self.owners.len()
    }

    /// True when no watcher is registered.
    pub fn is_empty(&self) -> bool {
        self.owners.is_empty()
    }

    /// True if a watcher with this id is registered.
    pub fn contains(&self, id: WatcherId) -> bool {
        self.owners.contains_key(&id)
    }

    /// The path and kind of a watcher.
    pub fn get(&self, id: WatcherId) -> Option<(&str, WatchKind)> {
        let (path, entry) = self.paths.get_key_value(&**self.owners.get(&id)?)?;
        Some((&**path, entry.kind_of(id)?))
    }

    /// True if any persistent or recursive watch is registered (they need SetWatches2).
    pub fn has_persistent(&self) -> bool {
        self.persistent > 0
    }

    /// The persistent mode the server holds for `path` on this connection, if any.
    pub fn server_mode(&self, path: &str) -> Option<WatchKind> {
        self.server_modes.get(path).copied()
    }

    /// The persistent mode `path` will have once its watches are (re-)armed: the one the server
    /// holds, or else the one its local persistent watchers need.
    pub fn mode_for(&self, path: &str) -> Option<WatchKind> {
        self.server_mode(path).or_else(|| {
            let w = self.paths.get(path)?;
            if w.any(WatchKind::PersistentRecursive) {
                Some(WatchKind::PersistentRecursive)
            } else if w.any(WatchKind::Persistent) {
                Some(WatchKind::Persistent)
            } else {
                None
            }
        })
    }

    /// Records that the server now holds `kind` (persistent or recursive) for `path`.
    pub fn set_server_mode(&mut self, path: &str, kind: WatchKind) {
        if kind.is_persistent() {
            self.server_modes.insert(path.to_owned(), kind);
        }
    }

    /// Forgets every server mode: the connection that held them is gone.
    pub fn forget_server_modes(&mut self) {
        self.server_modes.clear();
    }

    /// For a created or deleted node whose parent the server watches recursively on our
    /// behalf, that parent: its persistent and child watchers get a NodeChildrenChanged the
    /// server will not send (recursive watches never carry it).
    pub fn child_event_to_derive<'p>(&self, event: EventType, path: &'p str) -> Option<&'p str> {
        if !matches!(event, EventType::NodeCreated | EventType::NodeDeleted) {
            return None;
        }
        let parent = crate::path::parent(path)?;
        (self.server_modes.get(parent) == Some(&WatchKind::PersistentRecursive)).then_some(parent)
    }

    /// Removes a local watcher and says what the server should be told:
    ///
    /// - when nothing is left on the path, remove every watch there (`Any`);
    /// - when the last one-shot watcher of a kind goes and the path has no persistent mode,
    ///   remove that kind (servers before 3.9 would drop a persistent watch with it);
    /// - when the last recursive watcher goes and persistent ones remain, step down to
    ///   persistent;
    /// - otherwise keep the server watch: its events find no local watcher, which is harmless.
    pub fn remove(&mut self, id: WatcherId) -> Removal {
        let Some(path) = self.owners.remove(&id) else {
            return Removal::Keep;
        };
        shrink(&mut self.owners);
        let Some(entry) = self.paths.get_mut(&*path) else {
            return Removal::Keep;
        };
        let Some(kind) = entry.kind_of(id) else {
            return Removal::Keep;
        };
        entry.remove(id);
        let mode = self.server_modes.get(&*path).copied();
        let action = if entry.is_empty() {
            self.server_modes.remove(&*path);
            Removal::Remove(
                path.to_string(),
                match (kind, mode) {
                    (_, Some(_)) => WatcherType::Any,
                    (WatchKind::Data | WatchKind::Exist, None) => WatcherType::Data,
                    (WatchKind::Child, None) => WatcherType::Children,
                    (WatchKind::Persistent | WatchKind::PersistentRecursive, None) => {
                        WatcherType::Any
                    }
                },
                mode,
            )
        } else if kind == WatchKind::PersistentRecursive
            && !entry.any(WatchKind::PersistentRecursive)
            && entry.any(WatchKind::Persistent)
            && mode == Some(WatchKind::PersistentRecursive)
        {
            Removal::Downgrade(path.to_string())
        } else if mode.is_some() || entry.has_persistent() {
            Removal::Keep
        } else {
            match kind {
                WatchKind::Data | WatchKind::Exist
                    if !entry.any(WatchKind::Data) && !entry.any(WatchKind::Exist) =>
                {
                    Removal::Remove(path.to_string(), WatcherType::Data, None)
                }
                WatchKind::Child if !entry.any(WatchKind::Child) => {
                    Removal::Remove(path.to_string(), WatcherType::Children, None)
                }
                _ => Removal::Keep,
            }
        };
        if entry.is_empty() {
            self.paths.remove(&*path);
            shrink(&mut self.paths);
        }
        self.count(kind, false);
        action
    }

    /// The watchers a server event concerns, in registration order per kind; one-shot watchers
    /// among them are removed (they have fired).
    pub fn dispatch(&mut self, event: EventType, path: &str, out: &mut Vec<WatcherId>) {
        let before = out.len();
        if let Some(entry) = self.paths.get_mut(path) {
            match event {
                EventType::NodeCreated | EventType::NodeDataChanged => {
                    entry.take(WatchKind::Data, out);
                    entry.take(WatchKind::Exist, out);
                }
                EventType::NodeChildrenChanged => entry.take(WatchKind::Child, out),
                // Deletion ends data and child watches, and any exist watch too (the Java client
                // clears those as well, in case one was armed on a node that then existed).
                EventType::NodeDeleted => {
                    entry.take(WatchKind::Data, out);
                    entry.take(WatchKind::Child, out);
                    entry.take(WatchKind::Exist, out);
                }
                // Client-local types a server never sends, and types a future server might:
                // no one-shot watch is waiting for them (the Java client fires none), but
                // persistent watchers, which take every event for their node, still get them.
                EventType::None
                | EventType::DataWatchRemoved
                | EventType::ChildWatchRemoved
                | EventType::PersistentWatchRemoved
                | EventType::Unknown(_) => {}
            }
            // The one-shot watchers taken above have fired.
            for id in &out[before..] {
                self.owners.remove(id);
            }
            out.extend(entry.ids(WatchKind::Persistent));
            if entry.is_empty() {
                self.paths.remove(path);
                shrink(&mut self.paths);
            }
            shrink(&mut self.owners);
        }
        if self.recursive > 0
            && matches!(
                event,
                EventType::NodeCreated | EventType::NodeDeleted | EventType::NodeDataChanged
            )
        {
            for p in ancestors_inclusive(path) {
                if let Some(entry) = self.paths.get(p) {
                    out.extend(entry.ids(WatchKind::PersistentRecursive));
                }
            }
        }
    }

    /// Removes every watcher (the session ended) and returns their ids in order.
    pub fn drain(&mut self) -> Vec<WatcherId> {
        let mut ids: Vec<WatcherId> = std::mem::take(&mut self.owners).into_keys().collect();
        ids.sort_unstable();
        self.paths = FixedMap::default();
        self.server_modes.clear();
        self.recursive = 0;
        self.persistent = 0;
        ids
    }

    /// Removes the local watchers a successful removeWatches(path, type) took off the server,
    /// and returns them.
    pub fn remove_matching(&mut self, path: &str, watcher_type: WatcherType) -> Vec<WatcherId> {
        let kinds: &[WatchKind] = match watcher_type {
            WatcherType::Children => &[WatchKind::Child],
            WatcherType::Data => &[WatchKind::Data, WatchKind::Exist],
            WatcherType::Persistent => &[WatchKind::Persistent],
            WatcherType::PersistentRecursive => &[WatchKind::PersistentRecursive],
            _ => &[
                WatchKind::Data,
                WatchKind::Exist,
                WatchKind::Child,
                WatchKind::Persistent,
                WatchKind::PersistentRecursive,
            ],
        };
        let mut gone = Vec::new();
        let mut gone_kinds = Vec::new();
        if let Some(entry) = self.paths.get_mut(path) {
            for kind in kinds {
                let before = gone.len();
                entry.take(*kind, &mut gone);
                gone_kinds.extend(std::iter::repeat_n(*kind, gone.len() - before));
            }
            if !entry.has_persistent() {
                self.server_modes.remove(path);
            }
            if entry.is_empty() {
                self.paths.remove(path);
                shrink(&mut self.paths);
            }
        }
        for id in &gone {
            self.owners.remove(id);
        }
        shrink(&mut self.owners);
        for kind in gone_kinds {
            self.count(kind, false);
        }
        gone
    }

    /// Every persistent and persistent-recursive watcher, in id order.
    pub fn persistent_watchers(&self) -> Vec<WatcherId> {
        if self.persistent == 0 {
            return Vec::new();
        }
        let mut ids: Vec<WatcherId> = self
            .paths
            .values()
            .flat_map(PathWatches::as_slice)
            .filter(|(k, _)| k.is_persistent())
            .map(|(_, id)| *id)
            .collect();
        ids.sort_unstable();
        ids
    }

    /// Removes every persistent and recursive watcher (the server cannot re-arm them) and returns
    /// their ids.
    pub fn drain_persistent(&mut self) -> Vec<WatcherId> {
        let ids = self.persistent_watchers();
        for id in &ids {
            self.remove(*id);
        }
        ids
    }

    /// Every watched path by kind for re-arming on a new connection, mapped to server paths with
    /// `to_server`, each list in path order. A path is listed in one mode only: recursive if it
    /// has recursive watchers, else persistent if it has persistent ones, else its one-shot
    /// kinds. The server modes are reset to match.
    pub fn rearm_lists(&mut self, to_server: impl Fn(&str) -> String) -> WatchLists {
        let mut l = WatchLists::default();
        self.server_modes.clear();
        // Sorted, as the B-tree this map replaced listed them: the frames are the same on every
        // run, whatever the map's layout.
        let mut sorted: Vec<(&Arc<str>, &PathWatches)> = self.paths.iter().collect();
        sorted.sort_unstable_by(|a, b| a.0.cmp(b.0));
        for (path, w) in sorted {
            if w.any(WatchKind::PersistentRecursive) {
                l.recursive.push(to_server(path));
                self.server_modes
                    .insert(path.to_string(), WatchKind::PersistentRecursive);
            } else if w.any(WatchKind::Persistent) {
                l.persistent.push(to_server(path));
                self.server_modes
                    .insert(path.to_string(), WatchKind::Persistent);
            }
            // One-shot watches are listed even when they ride on the path's persistent watch:
            // only their lists make the server catch up on what changed while we were away (it
            // re-arms persistent watches silently). SetWatches2 arms its lists in order (data,
            // exist, child, persistent, recursive), so before 3.9, where the latest mode of a
            // path wins, the persistent mode still holds the path afterwards; from 3.9 modes
            // add up and the one-shot mode goes when it fires. (A recursive mode never carries
            // NodeChildrenChanged; the session derives it for child watchers, see
            // `child_event_to_derive`.)
            if w.any(WatchKind::Data) {
                l.data.push(to_server(path));
            }
            if w.any(WatchKind::Exist) {
                l.exist.push(to_server(path));
            }
            if w.any(WatchKind::Child) {
                l.child.push(to_server(path));
            }
        }
        l
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(n: u64) -> WatcherId {
        WatcherId(n)
    }

    #[test]
    fn shrink_gives_memory_back_below_a_quarter_full_and_leaves_room_to_grow() {
        // Emptied one key at a time, with `shrink` after each removal as the registry does: a
        // map more than a quarter full (or small) keeps its memory, since shrinking there would
        // only rehash again soon; below a quarter it goes down to about twice what is left.
        let mut m: FixedMap<u64, ()> = FixedMap::default();
        m.extend((0..4000).map(|i| (i, ())));
        let mut shrunk = 0;
        for k in 0..4000 {
            m.remove(&k);
            let (len, before) = (m.len(), m.capacity());
            shrink(&mut m);
            let after = m.capacity();
            if before > MIN_SHRINK && len * 4 < before {
                assert!(
                    after < before && after >= 2 * len,
                    "{len}: {before} -> {after}"
                );
                shrunk += 1;
            } else {
                assert_eq!(after, before, "{len} of {before}");
            }
        }
        assert!(shrunk >= 2, "shrunk {shrunk} times");
        // A small map is never worth it, however empty.
        let mut small: FixedMap<u64, ()> = FixedMap::default();
        small.extend((0..800).map(|i| (i, ())));
        let small_cap = small.capacity();
        assert!(small_cap <= MIN_SHRINK);
        small.retain(|k, _| *k < 10);
        let before = small.capacity();
        shrink(&mut small);
        assert_eq!(small.capacity(), before);
    }

    /// How many of 4,096 buckets (the hash's low 12 bits) `keys` land in.
    fn buckets<K: std::hash::Hash>(keys: impl Iterator<Item = K>) -> usize {
        use std::hash::BuildHasher;
        let build = BuildHasherDefault::<FixedHasher>::default();
        let mut seen = std::collections::HashSet::new();
        for k in keys {
            seen.insert(build.hash_one(k) & 0xfff);
        }
        seen.len()
    }

    #[test]
    fn the_fixed_hash_spreads_ids_and_similar_paths_over_the_low_bits() {
        // 4,096 keys thrown at random into 4,096 buckets fill about 63 % of them (2,589); a
        // hash that loses a word, a byte or its finaliser fills far fewer, and the maps slow
        // down to lists.
        let ids = buckets((0..4096u64).map(WatcherId));
        let paths = buckets((0..4096).map(|i| format!("/app/workers/w-{i:010}")));
        let ends = buckets((0..4096).map(|i| format!("/a/{i}")));
        for (what, n) in [("ids", ids), ("paths", paths), ("short paths", ends)] {
            assert!(n > 2_300, "{what}: {n} of 4096 buckets");
        }
    }

    fn fire(r: &mut WatchRegistry, ev: EventType, path: &str) -> Vec<u64> {
        let mut out = Vec::new();
        r.dispatch(ev, path, &mut out);
        out.into_iter().map(|w| w.0).collect()
    }

    #[test]
    fn one_shot_watches_fire_once_and_share_the_event() {
        let mut r = WatchRegistry::default();
        r.add("/a", WatchKind::Data, w(1));
        r.add("/a", WatchKind::Data, w(2));
        r.add("/a", WatchKind::Child, w(3));
        assert_eq!(fire(&mut r, EventType::NodeDataChanged, "/a"), [1, 2]);
        assert_eq!(
            fire(&mut r, EventType::NodeDataChanged, "/a"),
            Vec::<u64>::new()
        );
        assert_eq!(fire(&mut r, EventType::NodeChildrenChanged, "/a"), [3]);
        assert!(r.is_empty());
    }

    #[test]
    fn delete_fires_data_child_and_exist_watchers() {
        let mut r = WatchRegistry::default();
        r.add("/a", WatchKind::Data, w(1));
        r.add("/a", WatchKind::Child, w(2));
        r.add("/a", WatchKind::Exist, w(3));
        let mut got = fire(&mut r, EventType::NodeDeleted, "/a");
        got.sort_unstable();
        assert_eq!(got, [1, 2, 3]);
        assert!(r.is_empty());
    }

    #[test]
    fn created_fires_exist_watchers() {
        let mut r = WatchRegistry::default();
        r.add("/a", WatchKind::Exist, w(1));
        assert_eq!(fire(&mut r, EventType::NodeCreated, "/a"), [1]);
    }

    #[test]
    fn persistent_watchers_stay_and_recursive_cover_descendants_but_not_child_events() {
        let mut r = WatchRegistry::default();
        r.add("/a", WatchKind::Persistent, w(1));
        r.add("/", WatchKind::PersistentRecursive, w(2));
        r.add("/a", WatchKind::PersistentRecursive, w(3));
        assert_eq!(fire(&mut r, EventType::NodeDataChanged, "/a"), [1, 3, 2]);
        assert_eq!(fire(&mut r, EventType::NodeCreated, "/a/b/c"), [3, 2]);
        assert_eq!(fire(&mut r, EventType::NodeChildrenChanged, "/a"), [1]);
        assert_eq!(fire(&mut r, EventType::NodeDeleted, "/a"), [1, 3, 2]);
        assert_eq!(r.len(), 3);
    }

    #[test]
    fn removing_the_last_watcher_names_the_server_watch_to_remove() {
        let mut r = WatchRegistry::default();
        r.add("/a", WatchKind::Data, w(1));
        r.add("/a", WatchKind::Data, w(2));
        r.add("/a", WatchKind::Child, w(3));
        assert_eq!(
            r.remove(w(1)),
            Removal::Keep,
            "another data watcher remains"
        );
        assert_eq!(
            r.remove(w(2)),
            Removal::Remove("/a".into(), WatcherType::Data, None)
        );
        assert_eq!(
            r.remove(w(3)),
            Removal::Remove("/a".into(), WatcherType::Children, None)
        );
        assert_eq!(r.remove(w(3)), Removal::Keep, "already gone");
    }

    #[test]
    fn persistent_watches_are_removed_with_any_only_when_alone() {
        let mut r = WatchRegistry::default();
        r.add("/a", WatchKind::Persistent, w(1));
        r.set_server_mode("/a", WatchKind::Persistent);
        r.add("/a", WatchKind::Data, w(2));
        assert_eq!(
            r.remove(w(2)),
            Removal::Keep,
            "removing Data would drop the persistent watch on 3.6-3.8"
        );
        assert_eq!(
            r.remove(w(1)),
            Removal::Remove("/a".into(), WatcherType::Any, Some(WatchKind::Persistent))
        );
        r.add("/b", WatchKind::Persistent, w(3));
        r.set_server_mode("/b", WatchKind::Persistent);
        r.add("/b", WatchKind::Child, w(4));
        assert_eq!(
            r.remove(w(3)),
            Removal::Keep,
            "Any would also drop the child watch"
        );
        assert_eq!(
            r.remove(w(4)),
            Removal::Remove("/b".into(), WatcherType::Any, Some(WatchKind::Persistent))
        );
    }

    #[test]
    fn recursive_steps_down_to_persistent_when_its_last_watcher_goes() {
        let mut r = WatchRegistry::default();
        r.add("/a", WatchKind::PersistentRecursive, w(1));
        r.add("/a", WatchKind::Persistent, w(2));
        r.set_server_mode("/a", WatchKind::PersistentRecursive);
        assert_eq!(
            r.child_event_to_derive(EventType::NodeCreated, "/a/x"),
            Some("/a")
        );
        assert_eq!(
            r.child_event_to_derive(EventType::NodeDataChanged, "/a/x"),
            None
        );
        assert_eq!(r.remove(w(1)), Removal::Downgrade("/a".into()));
    }

    #[test]
    fn a_lone_watcher_is_held_inline_and_several_fall_back_to_it() {
        // The per-path record is what 100,000 watched paths cost; keep it at two words.
        assert_eq!(std::mem::size_of::<PathWatches>(), 16);
        let mut p = PathWatches::default();
        p.push(WatchKind::Data, w(1));
        assert!(matches!(
            p,
            PathWatches::One((WatchKind::Data, WatcherId(1)))
        ));
        p.push(WatchKind::Child, w(2));
        p.push(WatchKind::Data, w(3));
        assert_eq!(p.ids(WatchKind::Data).collect::<Vec<_>>(), [w(1), w(3)]);
        let mut out = Vec::new();
        p.take(WatchKind::Data, &mut out);
        assert_eq!(out, [w(1), w(3)]);
        assert!(matches!(
            p,
            PathWatches::One((WatchKind::Child, WatcherId(2)))
        ));
        p.remove(w(2));
        assert!(p.is_empty());
    }

    #[test]
    fn the_maps_give_their_memory_back_once_watches_fire() {
        let mut r = WatchRegistry::default();
        for i in 0..10_000 {
            r.add(&format!("/n{i}"), WatchKind::Data, w(i));
        }
        r.add("/keep", WatchKind::Persistent, w(10_000));
        assert!(r.paths.capacity() >= 10_000);
        for i in 0..10_000 {
            assert_eq!(
                fire(&mut r, EventType::NodeDataChanged, &format!("/n{i}")),
                [i]
            );
        }
        assert_eq!(r.len(), 1);
        assert!(r.paths.capacity() <= MIN_SHRINK, "{}", r.paths.capacity());
        assert!(r.owners.capacity() <= MIN_SHRINK, "{}", r.owners.capacity());
        assert_eq!(r.get(w(10_000)), Some(("/keep", WatchKind::Persistent)));
    }

    #[test]
    fn a_lone_recursive_watch_hears_of_descendants() {
        let mut r = WatchRegistry::default();
        r.add("/a", WatchKind::PersistentRecursive, w(1));
        assert_eq!(fire(&mut r, EventType::NodeCreated, "/a/b/c"), [1]);
    }

    #[test]
    fn a_one_shot_watcher_beside_a_persistent_one_goes_without_touching_the_server_watch() {
        let mut r = WatchRegistry::default();
        r.add("/a", WatchKind::Persistent, w(1));
        r.set_server_mode("/a", WatchKind::Persistent);
        r.add("/a", WatchKind::Data, w(2));
        assert!(matches!(r.remove(w(2)), Removal::Keep));
        assert_eq!(r.server_mode("/a"), Some(WatchKind::Persistent));
        r.add("/a", WatchKind::Data, w(3));
        r.remove_matching("/a", WatcherType::Data);
        assert_eq!(r.server_mode("/a"), Some(WatchKind::Persistent));
    }

    #[test]
    fn removing_a_watcher_tells_the_server_only_what_no_one_else_needs() {
        let mut r = WatchRegistry::default();
        // Recursive and persistent on /a, the server holding recursive: the last recursive
        // watcher going steps the server down to persistent, and only then.
        r.add("/a", WatchKind::PersistentRecursive, w(1));
        r.add("/a", WatchKind::PersistentRecursive, w(2));
        r.add("/a", WatchKind::Persistent, w(3));
        r.set_server_mode("/a", WatchKind::PersistentRecursive);
        assert!(matches!(r.remove(w(3)), Removal::Keep));
        r.add("/a", WatchKind::Persistent, w(3));
        assert!(
            matches!(r.remove(w(1)), Removal::Keep),
            "another recursive left"
        );
        assert!(matches!(r.remove(w(2)), Removal::Downgrade(p) if p == "/a"));
        // Recursive with a data watcher (no persistent one) under a recursive server mode:
        // the mode stays, nothing to step down to.
        r.add("/r", WatchKind::PersistentRecursive, w(4));
        r.add("/r", WatchKind::Data, w(5));
        r.set_server_mode("/r", WatchKind::PersistentRecursive);
        assert!(matches!(r.remove(w(4)), Removal::Keep));
        // A local persistent watcher with no server mode known (after a reconnect, before
        // re-arming): removing a one-shot one beside it must not remove the server's watch.
        r.add("/p", WatchKind::Persistent, w(6));
        r.add("/p", WatchKind::Data, w(7));
        assert!(matches!(r.remove(w(7)), Removal::Keep));
        // Child watchers: the last one goes with removeWatches(Children), not before.
        r.add("/c", WatchKind::Child, w(8));
        r.add("/c", WatchKind::Child, w(9));
        assert!(matches!(r.remove(w(8)), Removal::Keep));
        r.add("/c", WatchKind::Data, w(10));
        assert!(matches!(
            r.remove(w(9)),
            Removal::Remove(p, WatcherType::Children, None) if p == "/c"
        ));
    }

    #[test]
    fn remove_matching_takes_only_the_type_asked_for_and_keeps_the_counts() {
        let mut r = WatchRegistry::default();
        r.add("/a", WatchKind::Data, w(1));
        r.add("/a", WatchKind::Child, w(2));
        r.add("/a", WatchKind::Persistent, w(3));
        r.add("/b", WatchKind::Persistent, w(4));
        assert_eq!(r.remove_matching("/a", WatcherType::Data), [w(1)]);
        assert_eq!(r.remove_matching("/a", WatcherType::Persistent), [w(3)]);
        assert_eq!(r.get(w(2)), Some(("/a", WatchKind::Child)));
        r.add("/a", WatchKind::Data, w(5));
        r.add("/a", WatchKind::Persistent, w(6));
        let mut gone = r.remove_matching("/a", WatcherType::Any);
        gone.sort();
        assert_eq!(gone, [w(2), w(5), w(6)]);
        assert!(r.has_persistent(), "/b's persistent watch is still there");
        r.set_server_mode("/b", WatchKind::Persistent);
        r.forget_server_modes();
        assert_eq!(r.server_mode("/b"), None);
    }

    #[test]
    fn persistent_counts_follow_every_way_out() {
        let mut r = WatchRegistry::default();
        r.add("/a", WatchKind::PersistentRecursive, w(1));
        r.add("/a", WatchKind::Persistent, w(2));
        r.add("/a", WatchKind::Data, w(3));
        assert!(r.has_persistent());
        assert_eq!(
            r.remove_matching("/a", WatcherType::PersistentRecursive),
            [w(1)]
        );
        assert_eq!(
            fire(&mut r, EventType::NodeCreated, "/a/b"),
            Vec::<u64>::new(),
            "no recursive watcher is left"
        );
        assert!(r.has_persistent());
        r.remove(w(2));
        assert!(!r.has_persistent());
        assert_eq!(r.get(w(3)), Some(("/a", WatchKind::Data)));
        assert_eq!(r.persistent_watchers(), []);
    }

    #[test]
    fn rearm_lists_name_one_shot_watches_riding_on_persistent_ones_too() {
        let mut r = WatchRegistry::default();
        r.add("/a", WatchKind::Data, w(1));
        r.add("/b", WatchKind::Exist, w(2));
        r.add("/a", WatchKind::Child, w(3));
        r.add("/c", WatchKind::Persistent, w(4));
        r.add("/c", WatchKind::Data, w(6));
        r.add("/", WatchKind::PersistentRecursive, w(5));
        r.add("/", WatchKind::Persistent, w(7));
        r.add("/", WatchKind::Child, w(8));
        let l = r.rearm_lists(|p| format!("/root{p}"));
        assert_eq!(l.data, ["/root/a", "/root/c"]);
        assert_eq!(l.exist, ["/root/b"]);
        assert_eq!(l.child, ["/root/", "/root/a"]);
        assert_eq!(l.persistent, ["/root/c"]);
        assert_eq!(l.recursive, ["/root/"]);
        assert_eq!(r.server_mode("/c"), Some(WatchKind::Persistent));
        assert_eq!(r.server_mode("/"), Some(WatchKind::PersistentRecursive));
        assert!(r.has_persistent());
        assert_eq!(r.drain_persistent(), [w(4), w(5), w(7)]);
        assert!(!r.has_persistent());
        assert_eq!(r.drain(), [w(1), w(2), w(3), w(6), w(8)]);
    }
}
