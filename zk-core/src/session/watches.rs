//! The watch registry: which local watchers wait on which path, and for what.
//!
//! One registry holds every kind (one-shot data, exist and child watches; persistent and
//! persistent-recursive watches). Several local watchers may share one server watch; a
//! notification fans out to exactly the watchers it concerns, following the Java client's rules
//! (PROTOCOL.md §10.6) with 3.9's choice for NodeChildrenChanged (recursive watchers never see it).
//! The registry also decides what to tell the server when the last local watcher of a server watch
//! goes away, and lists every live watch for SetWatches on reconnect.
//!
//! Paths here are client paths (chroot stripped). Ordered maps keep every output deterministic.

use std::collections::BTreeMap;

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

#[derive(Debug, Default)]
struct PathWatches {
    data: Vec<WatcherId>,
    exist: Vec<WatcherId>,
    child: Vec<WatcherId>,
    persistent: Vec<WatcherId>,
    recursive: Vec<WatcherId>,
}

impl PathWatches {
    fn list(&mut self, kind: WatchKind) -> &mut Vec<WatcherId> {
        match kind {
            WatchKind::Data => &mut self.data,
            WatchKind::Exist => &mut self.exist,
            WatchKind::Child => &mut self.child,
            WatchKind::Persistent => &mut self.persistent,
            WatchKind::PersistentRecursive => &mut self.recursive,
        }
    }

    fn is_empty(&self) -> bool {
        self.data.is_empty()
            && self.exist.is_empty()
            && self.child.is_empty()
            && self.persistent.is_empty()
            && self.recursive.is_empty()
    }

    fn has_persistent(&self) -> bool {
        !self.persistent.is_empty() || !self.recursive.is_empty()
    }
}

/// Every live watch, as server paths, for SetWatches/SetWatches2.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct WatchLists {
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

/// The registry of local watchers.
#[derive(Debug, Default)]
pub struct WatchRegistry {
    paths: BTreeMap<String, PathWatches>,
    owners: BTreeMap<WatcherId, (String, WatchKind)>,
    recursive: usize,
}

impl WatchRegistry {
    /// Registers a watcher.
    pub fn add(&mut self, path: &str, kind: WatchKind, id: WatcherId) {
        if self.owners.contains_key(&id) {
            return;
        }
        self.paths
            .entry(path.to_owned())
            .or_default()
            .list(kind)
            .push(id);
        self.owners.insert(id, (path.to_owned(), kind));
        if kind == WatchKind::PersistentRecursive {
            self.recursive += 1;
        }
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
        self.owners.get(&id).map(|(p, k)| (p.as_str(), *k))
    }

    /// True if any persistent or recursive watch is registered (they need SetWatches2).
    pub fn has_persistent(&self) -> bool {
        self.paths.values().any(PathWatches::has_persistent)
    }

    /// Removes a local watcher. Returns the removeWatches type to send when it was the last local
    /// watcher of a server watch that can be removed without disturbing the others:
    ///
    /// - a one-shot kind goes only when no persistent watch remains on the path, because servers
    ///   before 3.9 remove persistent watches together with data or child watches;
    /// - a persistent kind goes (with `Any`) only when nothing else remains on the path, because
    ///   3.6 to 3.8 know no finer type for it.
    ///
    /// Otherwise the server watch stays, and its events find no local watcher: harmless.
    pub fn remove(&mut self, id: WatcherId) -> Option<(String, WatcherType)> {
        let (path, kind) = self.owners.remove(&id)?;
        if kind == WatchKind::PersistentRecursive {
            self.recursive -= 1;
        }
        let entry = self.paths.get_mut(&path)?;
        entry.list(kind).retain(|w| *w != id);
        let send = if entry.is_empty() {
            Some(match kind {
                WatchKind::Data | WatchKind::Exist => WatcherType::Data,
                WatchKind::Child => WatcherType::Children,
                WatchKind::Persistent | WatchKind::PersistentRecursive => WatcherType::Any,
            })
        } else if entry.has_persistent() {
            None
        } else {
            match kind {
                WatchKind::Data | WatchKind::Exist
                    if entry.data.is_empty() && entry.exist.is_empty() =>
                {
                    Some(WatcherType::Data)
                }
                WatchKind::Child if entry.child.is_empty() => Some(WatcherType::Children),
                _ => None,
            }
        };
        if entry.is_empty() {
            self.paths.remove(&path);
        }
        send.map(|t| (path, t))
    }

    /// The watchers a server event concerns, in registration order per kind; one-shot watchers
    /// among them are removed (they have fired).
    pub fn dispatch(&mut self, event: EventType, path: &str, out: &mut Vec<WatcherId>) {
        let before = out.len();
        if let Some(entry) = self.paths.get_mut(path) {
            match event {
                EventType::NodeCreated | EventType::NodeDataChanged => {
                    out.append(&mut entry.data);
                    out.append(&mut entry.exist);
                }
                EventType::NodeChildrenChanged => out.append(&mut entry.child),
                // Deletion ends data and child watches, and any exist watch too (the Java client
                // clears those as well, in case one was armed on a node that then existed).
                EventType::NodeDeleted => {
                    out.append(&mut entry.data);
                    out.append(&mut entry.child);
                    out.append(&mut entry.exist);
                }
                _ => {}
            }
            out.extend_from_slice(&entry.persistent);
        }
        for id in &out[before..] {
            if let Some((_, kind)) = self.owners.get(id) {
                if !kind.is_persistent() {
                    self.owners.remove(id);
                }
            }
        }
        if self.paths.get(path).is_some_and(PathWatches::is_empty) {
            self.paths.remove(path);
        }
        if self.recursive > 0
            && matches!(
                event,
                EventType::NodeCreated | EventType::NodeDeleted | EventType::NodeDataChanged
            )
        {
            for p in ancestors_inclusive(path) {
                if let Some(entry) = self.paths.get(p) {
                    out.extend_from_slice(&entry.recursive);
                }
            }
        }
    }

    /// Removes every watcher (the session ended) and returns their ids in order.
    pub fn drain(&mut self) -> Vec<WatcherId> {
        self.paths.clear();
        self.recursive = 0;
        std::mem::take(&mut self.owners).into_keys().collect()
    }

    /// Removes every persistent and recursive watcher (the server cannot re-arm them) and returns
    /// their ids.
    pub fn drain_persistent(&mut self) -> Vec<WatcherId> {
        let ids: Vec<WatcherId> = self
            .owners
            .iter()
            .filter(|(_, (_, k))| k.is_persistent())
            .map(|(id, _)| *id)
            .collect();
        for id in &ids {
            self.remove(*id);
        }
        ids
    }

    /// Every watched path by kind, mapped to server paths with `to_server`.
    pub fn lists(&self, to_server: impl Fn(&str) -> String) -> WatchLists {
        let mut l = WatchLists::default();
        for (path, w) in &self.paths {
            let push = |list: &mut Vec<String>, ids: &Vec<WatcherId>| {
                if !ids.is_empty() {
                    list.push(to_server(path));
                }
            };
            push(&mut l.data, &w.data);
            push(&mut l.exist, &w.exist);
            push(&mut l.child, &w.child);
            push(&mut l.persistent, &w.persistent);
            push(&mut l.recursive, &w.recursive);
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
        assert_eq!(r.remove(w(1)), None, "another data watcher remains");
        assert_eq!(r.remove(w(2)), Some(("/a".into(), WatcherType::Data)));
        assert_eq!(r.remove(w(3)), Some(("/a".into(), WatcherType::Children)));
        assert_eq!(r.remove(w(3)), None, "already gone");
    }

    #[test]
    fn persistent_watches_are_removed_with_any_only_when_alone() {
        let mut r = WatchRegistry::default();
        r.add("/a", WatchKind::Persistent, w(1));
        r.add("/a", WatchKind::Data, w(2));
        assert_eq!(
            r.remove(w(2)),
            None,
            "removing Data would drop the persistent watch on 3.6-3.8"
        );
        assert_eq!(r.remove(w(1)), Some(("/a".into(), WatcherType::Any)));
        r.add("/b", WatchKind::Persistent, w(3));
        r.add("/b", WatchKind::Child, w(4));
        assert_eq!(r.remove(w(3)), None, "Any would also drop the child watch");
    }

    #[test]
    fn lists_cover_every_kind_as_server_paths() {
        let mut r = WatchRegistry::default();
        r.add("/a", WatchKind::Data, w(1));
        r.add("/b", WatchKind::Exist, w(2));
        r.add("/a", WatchKind::Child, w(3));
        r.add("/c", WatchKind::Persistent, w(4));
        r.add("/", WatchKind::PersistentRecursive, w(5));
        let l = r.lists(|p| format!("/root{p}"));
        assert_eq!(l.data, ["/root/a"]);
        assert_eq!(l.exist, ["/root/b"]);
        assert_eq!(l.child, ["/root/a"]);
        assert_eq!(l.persistent, ["/root/c"]);
        assert_eq!(l.recursive, ["/root/"]);
        assert!(r.has_persistent());
        assert_eq!(r.drain_persistent(), [w(4), w(5)]);
        assert!(!r.has_persistent());
        assert_eq!(r.drain(), [w(1), w(2), w(3)]);
    }
}
