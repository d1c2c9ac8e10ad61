//! One connection's watches, as the server keeps them (PROTOCOL.md §10.4–§10.6).
//!
//! The Java server has two watch managers, one for data (exists, getData) and one for children;
//! a persistent watch sits in both, a recursive one in the data manager only (3.9; before 3.9 in
//! both, harmlessly). A write triggers the managers in `DataTree`'s order and the connection gets
//! at most one frame per (path, event) however many of its watches match. One-shot ("standard")
//! watches are consumed when they fire; persistent ones stay.
//!
//! Two server generations differ and both are modelled, chosen by the configured version:
//! * before 3.9.0 each (connection, path) holds a single mode per manager, and the latest watch
//!   set replaces the previous one (`WatcherModeManager`): a getData watch set on a path that also
//!   has a persistent watch turns it into a one-shot one. checkWatches/removeWatches Data and
//!   Children act on the whole entry, whatever its mode.
//! * from 3.9.0 the modes accumulate (`WatchStats`), and removeWatches can name Persistent (4) and
//!   PersistentRecursive (5).

use std::collections::BTreeMap;

use zk_core::proto::{EventType, WatcherType};

use super::path;

/// A one-shot watch (exists, getData, getChildren, setWatches).
pub(crate) const STANDARD: u8 = 1;
/// addWatch PERSISTENT.
pub(crate) const PERSISTENT: u8 = 2;
/// addWatch PERSISTENT_RECURSIVE.
pub(crate) const RECURSIVE: u8 = 4;

/// Which of the two server-side managers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Manager {
    /// Data watches: exists, getData, data/exist lists of setWatches.
    Data,
    /// Child watches: getChildren, child list of setWatches.
    Child,
}

/// A connection's watches: path -> mode bits, per manager.
#[derive(Debug, Default, Clone)]
pub(crate) struct Watches {
    data: BTreeMap<String, u8>,
    child: BTreeMap<String, u8>,
    /// 3.9.0+ semantics (modes accumulate); otherwise the latest mode replaces the entry.
    accumulate: bool,
}

impl Watches {
    /// An empty set with the semantics of the configured server version.
    pub fn new(accumulate: bool) -> Self {
        Watches {
            accumulate,
            ..Watches::default()
        }
    }

    fn table(&mut self, m: Manager) -> &mut BTreeMap<String, u8> {
        match m {
            Manager::Data => &mut self.data,
            Manager::Child => &mut self.child,
        }
    }

    /// Arms a watch of `mode` on `path` in manager `m`.
    pub fn add(&mut self, m: Manager, path: &str, mode: u8) {
        let accumulate = self.accumulate;
        let entry = self.table(m).entry(path.to_owned()).or_insert(0);
        *entry = if accumulate { *entry | mode } else { mode };
    }

    /// addWatch / setWatches2 persistent and recursive lists.
    pub fn add_persistent(&mut self, path: &str, recursive: bool) {
        if recursive {
            self.add(Manager::Data, path, RECURSIVE);
            if !self.accumulate {
                // 3.6–3.8 register recursive watches in the child manager too; they never fire
                // there for NodeChildrenChanged, but checkWatches(Children) sees them.
                self.add(Manager::Child, path, RECURSIVE);
            }
        } else {
            self.add(Manager::Data, path, PERSISTENT);
            self.add(Manager::Child, path, PERSISTENT);
        }
    }

    /// `WatchManager.triggerWatch` for one manager: true if any watch of this connection matches.
    /// Standard watches on the path itself are consumed; recursive watches of ancestors match
    /// every event but NodeChildrenChanged.
    fn trigger(&mut self, m: Manager, path: &str, kind: EventType) -> bool {
        let children_event = kind == EventType::NodeChildrenChanged;
        let table = self.table(m);
        let mut fired = false;
        if let Some(modes) = table.get_mut(path) {
            let live = if children_event {
                *modes & !RECURSIVE
            } else {
                *modes
            };
            if live != 0 {
                fired = true;
                *modes &= !STANDARD;
                if *modes == 0 {
                    table.remove(path);
                }
            }
        }
        if !children_event {
            fired |= path::ancestors(path)
                .any(|a| table.get(a).is_some_and(|modes| modes & RECURSIVE != 0));
        }
        fired
    }

    /// Applies one event to this connection's watches: true if the connection must be sent a
    /// notification (once, however many watches matched).
    pub fn fire(&mut self, kind: EventType, path: &str) -> bool {
        match kind {
            EventType::NodeCreated | EventType::NodeDataChanged => {
                self.trigger(Manager::Data, path, kind)
            }
            // Both managers are triggered (and consume their one-shot watches), one frame.
            EventType::NodeDeleted => {
                let data = self.trigger(Manager::Data, path, kind);
                let child = self.trigger(Manager::Child, path, kind);
                data || child
            }
            EventType::NodeChildrenChanged => self.trigger(Manager::Child, path, kind),
            _ => false,
        }
    }

    fn has(&self, m: Manager, path: &str, mode: Option<u8>) -> bool {
        let table = match m {
            Manager::Data => &self.data,
            Manager::Child => &self.child,
        };
        match (table.get(path), mode) {
            (None, _) => false,
            (Some(_), None) => true,
            (Some(modes), Some(want)) => modes & want != 0,
        }
    }

    /// Removes `mode` (or the whole entry for `None`) from a manager; true if anything went.
    fn remove(&mut self, m: Manager, path: &str, mode: Option<u8>) -> bool {
        let table = self.table(m);
        let Some(modes) = table.get_mut(path) else {
            return false;
        };
        let before = *modes;
        *modes &= !mode.unwrap_or(u8::MAX);
        let after = *modes;
        if after == 0 {
            table.remove(path);
        }
        before != after
    }

    /// checkWatches: does this connection have a watch of that type on the path? (§6, §10.4)
    pub fn contains(&self, path: &str, t: WatcherType) -> bool {
        // Before 3.9 Data and Children look at the whole entry of their manager.
        let std_mode = if self.accumulate {
            Some(STANDARD)
        } else {
            None
        };
        match t {
            WatcherType::Children => self.has(Manager::Child, path, std_mode),
            WatcherType::Data => self.has(Manager::Data, path, std_mode),
            WatcherType::Persistent => self.has(Manager::Data, path, Some(PERSISTENT)),
            WatcherType::PersistentRecursive => self.has(Manager::Data, path, Some(RECURSIVE)),
            _ => self.has(Manager::Child, path, None) || self.has(Manager::Data, path, None),
        }
    }

    /// removeWatches: removes the watches of that type on the path; true if any was removed.
    pub fn remove_type(&mut self, path: &str, t: WatcherType) -> bool {
        let std_mode = if self.accumulate {
            Some(STANDARD)
        } else {
            None
        };
        match t {
            WatcherType::Children => self.remove(Manager::Child, path, std_mode),
            WatcherType::Data => self.remove(Manager::Data, path, std_mode),
            WatcherType::Persistent => {
                let c = self.remove(Manager::Child, path, Some(PERSISTENT));
                let d = self.remove(Manager::Data, path, Some(PERSISTENT));
                c || d
            }
            WatcherType::PersistentRecursive => self.remove(Manager::Data, path, Some(RECURSIVE)),
            _ => {
                let c = self.remove(Manager::Child, path, None);
                let d = self.remove(Manager::Data, path, None);
                c || d
            }
        }
    }

    /// (path, watches) pairs for the 4lw reports: every path with any watch, and how many
    /// manager entries it has.
    pub fn paths(&self) -> BTreeMap<&str, usize> {
        let mut out = BTreeMap::new();
        for p in self.data.keys().chain(self.child.keys()) {
            *out.entry(p.as_str()).or_insert(0) += 1;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_shot_watches_fire_once() {
        let mut w = Watches::new(false);
        w.add(Manager::Data, "/a", STANDARD);
        assert!(w.fire(EventType::NodeDataChanged, "/a"));
        assert!(!w.fire(EventType::NodeDataChanged, "/a"));
    }

    #[test]
    fn delete_consumes_data_and_child_watches_in_one_frame() {
        let mut w = Watches::new(false);
        w.add(Manager::Data, "/a", STANDARD);
        w.add(Manager::Child, "/a", STANDARD);
        assert!(w.fire(EventType::NodeDeleted, "/a"));
        assert!(w.paths().is_empty());
    }

    #[test]
    fn recursive_watch_never_sees_children_changed() {
        for accumulate in [false, true] {
            let mut w = Watches::new(accumulate);
            w.add_persistent("/a", true);
            assert!(w.fire(EventType::NodeCreated, "/a/b/c"));
            assert!(w.fire(EventType::NodeDataChanged, "/a"));
            assert!(!w.fire(EventType::NodeChildrenChanged, "/a"));
            assert!(!w.fire(EventType::NodeChildrenChanged, "/a/b"));
            assert!(!w.fire(EventType::NodeCreated, "/b"));
        }
    }

    #[test]
    fn persistent_watch_sees_own_children_and_stays() {
        let mut w = Watches::new(true);
        w.add_persistent("/a", false);
        assert!(w.fire(EventType::NodeChildrenChanged, "/a"));
        assert!(w.fire(EventType::NodeChildrenChanged, "/a"));
        assert!(!w.fire(EventType::NodeCreated, "/a/b"));
    }

    #[test]
    fn before_3_9_a_later_one_shot_watch_replaces_a_persistent_one() {
        let mut old = Watches::new(false);
        old.add_persistent("/a", false);
        old.add(Manager::Data, "/a", STANDARD);
        assert!(old.fire(EventType::NodeDataChanged, "/a"));
        assert!(!old.fire(EventType::NodeDataChanged, "/a"));
        let mut new = Watches::new(true);
        new.add_persistent("/a", false);
        new.add(Manager::Data, "/a", STANDARD);
        assert!(new.fire(EventType::NodeDataChanged, "/a"));
        assert!(new.fire(EventType::NodeDataChanged, "/a"));
    }

    #[test]
    fn check_and_remove_by_type() {
        let mut w = Watches::new(true);
        w.add_persistent("/a", true);
        assert!(!w.contains("/a", WatcherType::Data));
        assert!(w.contains("/a", WatcherType::PersistentRecursive));
        assert!(w.contains("/a", WatcherType::Any));
        assert!(!w.remove_type("/a", WatcherType::Persistent));
        assert!(w.remove_type("/a", WatcherType::Any));
        assert!(!w.contains("/a", WatcherType::Any));

        let mut old = Watches::new(false);
        old.add_persistent("/a", true);
        assert!(old.contains("/a", WatcherType::Data));
        assert!(old.contains("/a", WatcherType::Children));
        assert!(!old.contains("/a/b", WatcherType::Data));
        assert!(old.remove_type("/a", WatcherType::Any));
    }
}
