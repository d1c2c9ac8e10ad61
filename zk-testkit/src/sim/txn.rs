//! The committed transaction log every replica applies, and the events applying a transaction
//! produces.
//!
//! ZooKeeper validates a write once, on the leader, against the newest state (PROTOCOL.md §5.5),
//! and turns it into a transaction that every server then applies blindly; a failed write becomes
//! an error transaction that still uses up a zxid. Keeping the same split here is what lets a
//! lagging replica apply the very same log later and fire its watches then, as a real follower would.

use std::collections::VecDeque;

use bytes::Bytes;
use zk_core::proto::{Acl, EventType};

use super::tree::Owner;

/// What one transaction does to a tree. Validation already happened; applying never fails.
#[derive(Debug, Clone)]
pub(crate) enum TxnOp {
    /// A session was created: only the zxid moves (§4.5: session creation is a transaction).
    CreateSession,
    /// A session ended (closeSession or expiry): its ephemeral nodes go (§14.2, §14.4).
    CloseSession {
        /// The session's ephemerals at the time the leader prepared the close.
        ephemerals: Vec<String>,
    },
    /// A node is created at its final path (sequence suffix included).
    Create {
        /// The final path.
        path: String,
        /// Node data; `None` is a null buffer.
        data: Option<Bytes>,
        /// The ACL after `fixupACL`.
        acl: Vec<Acl>,
        /// Ephemeral, container, TTL or plain.
        owner: Owner,
    },
    /// A node is deleted (client delete, or the container/TTL sweeper's deleteContainer).
    Delete {
        /// The node.
        path: String,
    },
    /// A node's data is replaced.
    SetData {
        /// The node.
        path: String,
        /// The new data.
        data: Option<Bytes>,
    },
    /// A node's ACL is replaced.
    SetAcl {
        /// The node.
        path: String,
        /// The ACL after `fixupACL`.
        acl: Vec<Acl>,
    },
    /// A passing `check` inside a multi: no change.
    Check,
    /// A successful multi: its operations, applied in order under one zxid.
    Multi(Vec<TxnOp>),
    /// A failed write (or a failed multi): only the zxid moves.
    Error,
}

/// One entry of the log.
#[derive(Debug, Clone)]
pub(crate) struct Txn {
    /// Its zxid; the log's zxids are consecutive.
    pub zxid: i64,
    /// The leader's wall clock when it was prepared, in ms: ctime and mtime come from here.
    pub time_ms: i64,
    /// The change.
    pub op: TxnOp,
}

/// A watch event produced by applying a transaction to a replica (PROTOCOL.md §10.6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Event {
    /// NodeCreated, NodeDeleted, NodeDataChanged or NodeChildrenChanged.
    pub kind: EventType,
    /// The node the event is about.
    pub path: String,
}

/// The committed transactions some replica still has to apply.
#[derive(Debug, Default)]
pub(crate) struct Log {
    txns: VecDeque<Txn>,
}

impl Log {
    /// Appends the next transaction.
    pub fn push(&mut self, txn: Txn) {
        self.txns.push_back(txn);
    }

    /// The transaction after `zxid`, if the log holds it.
    pub fn after(&self, zxid: i64) -> Option<&Txn> {
        let first = self.txns.front()?.zxid;
        let index = zxid.checked_add(1)?.checked_sub(first)?;
        self.txns.get(usize::try_from(index).ok()?)
    }

    /// True when a replica that applied up to `zxid` can catch up from this log alone.
    pub fn covers(&self, zxid: i64) -> bool {
        match self.txns.front() {
            None => true,
            Some(t) => zxid >= t.zxid.saturating_sub(1),
        }
    }

    /// Forgets every transaction at or below `zxid`: everyone who needs them has them.
    pub fn trim_through(&mut self, zxid: i64) {
        while self.txns.front().is_some_and(|t| t.zxid <= zxid) {
            self.txns.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn txn(zxid: i64) -> Txn {
        Txn {
            zxid,
            time_ms: 0,
            op: TxnOp::Error,
        }
    }

    #[test]
    fn log_hands_out_the_next_transaction_and_trims() {
        let mut log = Log::default();
        assert!(log.after(0).is_none());
        assert!(log.covers(7));
        for z in 1..=4 {
            log.push(txn(z));
        }
        assert_eq!(log.after(0).map(|t| t.zxid), Some(1));
        assert_eq!(log.after(3).map(|t| t.zxid), Some(4));
        assert!(log.after(4).is_none());
        log.trim_through(2);
        assert!(log.covers(2));
        assert!(!log.covers(1));
        assert_eq!(log.after(2).map(|t| t.zxid), Some(3));
        assert!(log.after(1).is_none());
        assert!(log.after(i64::MAX).is_none());
        assert!(log.after(i64::MIN).is_none());
    }
}
