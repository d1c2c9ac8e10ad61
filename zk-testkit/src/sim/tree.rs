//! One replica's data tree: the znodes with their data, ACLs and Stat bookkeeping, and how a
//! committed transaction changes them (PROTOCOL.md §7.1, §8, §10.6).
//!
//! The bookkeeping follows `DataTree`/`DataNode` of the Java server rather than a simplified idea
//! of it, because clients see the difference: the stored child version counts creates only, and
//! the Stat a client gets reports `2 * creates - numChildren` (so every create and every delete
//! moves it by one, and a fresh root reports -1), while sequence suffixes use the stored count
//! (§8.3). Container and TTL nodes keep their internal owner markers, which a client sees as 0.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use zk_core::proto::{Acl, EventType, Stat};

use super::path::{self, ROOT};
use super::txn::{Event, Txn, TxnOp};

/// `EphemeralType.CONTAINER_EPHEMERAL_OWNER`.
const CONTAINER_OWNER: i64 = i64::MIN;
/// The top byte `EphemeralType.TTL` sets in the owner field; the TTL sits in the low 40 bits.
const TTL_MASK: i64 = 0xff00_0000_0000_0000_u64 as i64;

/// What the `ephemeralOwner` field holds internally.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Owner {
    /// A plain persistent node.
    Persistent,
    /// Deleted when this session ends.
    Ephemeral(i64),
    /// Deleted by the sweeper once its last child is gone.
    Container,
    /// Deleted by the sweeper when childless and unmodified for this many ms.
    Ttl(i64),
}

impl Owner {
    /// The value the server stores (`0x8000…` for containers, `0xff…|ttl` for TTL nodes, §8.4).
    pub fn raw(self) -> i64 {
        match self {
            Owner::Persistent => 0,
            Owner::Ephemeral(session) => session,
            Owner::Container => CONTAINER_OWNER,
            Owner::Ttl(ttl) => TTL_MASK | (ttl & 0x00ff_ffff_ffff_ffff),
        }
    }

    /// The value a client sees in a Stat: the session for ephemerals, otherwise 0 (§7.1).
    pub fn client_visible(self) -> i64 {
        match self {
            Owner::Ephemeral(session) => session,
            _ => 0,
        }
    }

    /// Swept by the container/TTL manager.
    fn is_swept(self) -> bool {
        matches!(self, Owner::Container | Owner::Ttl(_))
    }
}

/// One znode.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    /// The data; `None` is what a create with a null buffer stores (read back with length -1).
    pub data: Option<Bytes>,
    /// The ACL.
    pub acl: Vec<Acl>,
    pub czxid: i64,
    pub mzxid: i64,
    pub pzxid: i64,
    pub ctime: i64,
    pub mtime: i64,
    pub version: i32,
    /// The persisted child version: the number of child creates (§8.3 uses it for suffixes).
    pub creates: i32,
    pub aversion: i32,
    pub owner: Owner,
    /// Child names, sorted (a real server answers in hash order; any order is legal).
    pub children: BTreeSet<String>,
}

impl Node {
    fn new(data: Option<Bytes>, acl: Vec<Acl>, owner: Owner, zxid: i64, time_ms: i64) -> Self {
        Node {
            data,
            acl,
            czxid: zxid,
            mzxid: zxid,
            pzxid: zxid,
            ctime: time_ms,
            mtime: time_ms,
            version: 0,
            creates: 0,
            aversion: 0,
            owner,
            children: BTreeSet::new(),
        }
    }

    /// The Stat a client sees (`DataNode.copyStat`).
    pub fn stat(&self) -> Stat {
        let num_children = i32::try_from(self.children.len()).unwrap_or(i32::MAX);
        Stat {
            czxid: self.czxid,
            mzxid: self.mzxid,
            ctime: self.ctime,
            mtime: self.mtime,
            version: self.version,
            // "Translate from the count of the creates to the count of the changes": every child
            // still present was created but not deleted.
            cversion: self.creates.wrapping_mul(2).wrapping_sub(num_children),
            aversion: self.aversion,
            ephemeral_owner: self.owner.client_visible(),
            data_length: self
                .data
                .as_ref()
                .map_or(0, |d| i32::try_from(d.len()).unwrap_or(i32::MAX)),
            num_children,
            pzxid: self.pzxid,
        }
    }
}

/// A replica's tree and the last zxid it applied.
#[derive(Debug, Clone)]
pub(crate) struct DataTree {
    nodes: BTreeMap<String, Node>,
    /// Container and TTL nodes: what the sweeper looks at.
    swept: BTreeSet<String>,
    /// The last transaction applied (`lastProcessedZxid`).
    pub last_zxid: i64,
}

impl DataTree {
    /// A fresh database: `/`, `/zookeeper`, `/zookeeper/quota` and `/zookeeper/config`, all with
    /// zeroed stats and empty (not null) data, as a new server starts.
    pub fn new() -> Self {
        let open = Acl::open_unsafe;
        let blank = |acl: Vec<Acl>| Node::new(Some(Bytes::new()), acl, Owner::Persistent, 0, 0);
        let mut nodes = BTreeMap::new();
        let mut root = blank(open());
        root.children.insert("zookeeper".to_owned());
        let mut zk = blank(open());
        zk.children.insert("quota".to_owned());
        zk.children.insert("config".to_owned());
        nodes.insert(ROOT.to_owned(), root);
        nodes.insert("/zookeeper".to_owned(), zk);
        nodes.insert("/zookeeper/quota".to_owned(), blank(open()));
        // `DataTree.addConfigNode` makes the config node read-only for everybody.
        nodes.insert("/zookeeper/config".to_owned(), blank(Acl::read_unsafe()));
        DataTree {
            nodes,
            swept: BTreeSet::new(),
            last_zxid: 0,
        }
    }

    /// The node at `path`. The Java tree also stores the root under `""`, so that key finds it.
    pub fn get(&self, path: &str) -> Option<&Node> {
        self.nodes.get(if path.is_empty() { ROOT } else { path })
    }

    /// Number of entries the Java server counts ("Node count", `zk_znode_count`): it keeps the
    /// root twice, under `""` and `"/"`.
    pub fn node_count(&self) -> usize {
        self.nodes.len() + 1
    }

    /// All descendants of `path`, not counting the node itself (getAllChildrenNumber, §6).
    pub fn descendant_count(&self, path: &str) -> usize {
        if path == ROOT {
            return self.nodes.len().saturating_sub(1);
        }
        let prefix = format!("{path}/");
        self.nodes
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .count()
    }

    /// The ephemeral nodes of `session`, sorted.
    pub fn ephemerals_of(&self, session: i64) -> Vec<String> {
        self.nodes
            .iter()
            .filter(|(_, n)| n.owner == Owner::Ephemeral(session))
            .map(|(p, _)| p.clone())
            .collect()
    }

    /// Every node, in path order.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Node)> {
        self.nodes.iter()
    }

    /// Container and TTL node paths, sorted.
    pub fn swept_paths(&self) -> impl Iterator<Item = &String> {
        self.swept.iter()
    }

    /// True if any container or TTL node exists (so the sweeper has something to look at).
    pub fn has_swept(&self) -> bool {
        !self.swept.is_empty()
    }

    /// Applies a committed transaction, appending the watch events it causes, in the order the
    /// Java `DataTree` triggers them.
    pub fn apply(&mut self, txn: &Txn, events: &mut Vec<Event>) {
        self.apply_op(&txn.op, txn.zxid, txn.time_ms, events);
        self.last_zxid = txn.zxid;
    }

    /// Applies one operation; also used by multi's validation on a scratch copy.
    pub fn apply_op(&mut self, op: &TxnOp, zxid: i64, time_ms: i64, events: &mut Vec<Event>) {
        match op {
            TxnOp::CreateSession | TxnOp::Check | TxnOp::Error => {}
            TxnOp::CloseSession { ephemerals } => {
                for p in ephemerals {
                    self.delete(p, zxid, events);
                }
            }
            TxnOp::Create {
                path,
                data,
                acl,
                owner,
            } => self.create(
                path,
                data.clone(),
                acl.clone(),
                *owner,
                zxid,
                time_ms,
                events,
            ),
            TxnOp::Delete { path } => self.delete(path, zxid, events),
            TxnOp::SetData { path, data } => {
                if let Some(n) = self.nodes.get_mut(path.as_str()) {
                    n.data = data.clone();
                    n.version = n.version.wrapping_add(1);
                    n.mzxid = zxid;
                    n.mtime = time_ms;
                    events.push(Event {
                        kind: EventType::NodeDataChanged,
                        path: path.clone(),
                    });
                }
            }
            TxnOp::SetAcl { path, acl } => {
                // setACL fires no watch (§10.6).
                if let Some(n) = self.nodes.get_mut(path.as_str()) {
                    n.acl = acl.clone();
                    n.aversion = n.aversion.wrapping_add(1);
                }
            }
            TxnOp::Multi(ops) => {
                for op in ops {
                    self.apply_op(op, zxid, time_ms, events);
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn create(
        &mut self,
        path: &str,
        data: Option<Bytes>,
        acl: Vec<Acl>,
        owner: Owner,
        zxid: i64,
        time_ms: i64,
        events: &mut Vec<Event>,
    ) {
        let parent = path::parent(path);
        let Some(p) = self.nodes.get_mut(parent) else {
            return;
        };
        if !p.children.insert(path::name(path).to_owned()) {
            return;
        }
        p.creates = p.creates.wrapping_add(1);
        p.pzxid = zxid;
        self.nodes
            .insert(path.to_owned(), Node::new(data, acl, owner, zxid, time_ms));
        if owner.is_swept() {
            self.swept.insert(path.to_owned());
        }
        events.push(Event {
            kind: EventType::NodeCreated,
            path: path.to_owned(),
        });
        events.push(Event {
            kind: EventType::NodeChildrenChanged,
            path: parent.to_owned(),
        });
    }

    fn delete(&mut self, path: &str, zxid: i64, events: &mut Vec<Event>) {
        if self.nodes.remove(path).is_none() {
            return;
        }
        self.swept.remove(path);
        let parent = path::parent(path);
        if let Some(p) = self.nodes.get_mut(parent) {
            p.children.remove(path::name(path));
            // `DataTree.deleteNode` only ever moves pzxid forward; cversion follows numChildren.
            if zxid > p.pzxid {
                p.pzxid = zxid;
            }
        }
        events.push(Event {
            kind: EventType::NodeDeleted,
            path: path.to_owned(),
        });
        events.push(Event {
            kind: EventType::NodeChildrenChanged,
            path: parent.to_owned(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn txn(zxid: i64, op: TxnOp) -> Txn {
        Txn {
            zxid,
            time_ms: 1000 + zxid,
            op,
        }
    }

    fn create(path: &str) -> TxnOp {
        TxnOp::Create {
            path: path.into(),
            data: None,
            acl: Acl::open_unsafe(),
            owner: Owner::Persistent,
        }
    }

    #[test]
    fn fresh_tree_reports_the_java_stats() {
        let t = DataTree::new();
        let root = t.get("/").unwrap().stat();
        assert_eq!(
            (root.cversion, root.num_children, root.data_length),
            (-1, 1, 0)
        );
        assert_eq!(t.get("").unwrap().stat(), root);
        assert_eq!(t.get("/zookeeper").unwrap().stat().cversion, -2);
        assert_eq!(t.node_count(), 5);
    }

    #[test]
    fn cversion_counts_creates_and_deletes_but_suffixes_count_creates() {
        let mut t = DataTree::new();
        let mut ev = Vec::new();
        t.apply(&txn(1, create("/p")), &mut ev);
        t.apply(&txn(2, create("/p/a")), &mut ev);
        t.apply(&txn(3, create("/p/b")), &mut ev);
        t.apply(
            &txn(
                4,
                TxnOp::Delete {
                    path: "/p/a".into(),
                },
            ),
            &mut ev,
        );
        let p = t.get("/p").unwrap();
        assert_eq!(p.creates, 2);
        let s = p.stat();
        assert_eq!((s.cversion, s.num_children, s.pzxid), (3, 1, 4));
        assert_eq!(t.descendant_count("/p"), 1);
        assert_eq!(t.descendant_count("/"), 5);
        assert_eq!(
            ev.iter().map(|e| e.kind).collect::<Vec<_>>(),
            [
                EventType::NodeCreated,
                EventType::NodeChildrenChanged,
                EventType::NodeCreated,
                EventType::NodeChildrenChanged,
                EventType::NodeCreated,
                EventType::NodeChildrenChanged,
                EventType::NodeDeleted,
                EventType::NodeChildrenChanged,
            ]
        );
    }

    #[test]
    fn owners_hide_internal_markers() {
        assert_eq!(Owner::Container.raw() as u64, 0x8000_0000_0000_0000);
        assert_eq!(Owner::Ttl(60_000).raw() as u64, 0xff00_0000_0000_ea60);
        assert_eq!(Owner::Ttl(5).client_visible(), 0);
        assert_eq!(Owner::Ephemeral(7).client_visible(), 7);
    }
}
