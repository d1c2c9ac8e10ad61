//! Committing transactions and bringing replicas up to date, firing each replica's watches for
//! its own connections as it applies (PROTOCOL.md §5.4, §5.5, §10.6); and the frames that carry
//! replies and notifications.
//!
//! A write is committed once (appended to the log and applied to the head), then every server
//! that follows the quorum applies it, and so does the server the write came through even if it
//! lags, because a client must see its own writes. All of this happens before the write's reply
//! is queued, which is what puts a session's own notifications ahead of its reply (§5.4).

use std::time::Instant;

use zk_core::proto::{
    encode_notification, encode_reply, ErrorCode, KeeperState, ReplyHeader, Response, WatcherEvent,
};

use super::txn::{Event, Txn, TxnOp};
use super::{SimConnId, SimServer};

/// Frames the model writes have no size limit of their own: a client enforces its own.
const OUT_MAX: usize = i32::MAX as usize;

impl SimServer {
    /// Commits a transaction under the next zxid and lets every following replica apply it, the
    /// `origin` server included (lagging or not). Returns the zxid.
    pub(super) fn commit(&mut self, now: Instant, op: TxnOp, origin: Option<usize>) -> i64 {
        let txn = Txn {
            zxid: self.head.last_zxid + 1,
            time_ms: self.wall_ms(now),
            op,
        };
        let zxid = txn.zxid;
        let mut events = Vec::new();
        self.head.apply(&txn, &mut events);
        if let Some(h) = &mut self.history {
            h.extend(events.into_iter().map(|e| super::Change {
                zxid,
                event: e.kind,
                path: e.path,
            }));
        }
        self.log.push(txn);
        for server in 0..self.servers.len() {
            if self.servers[server].follows_quorum() || origin == Some(server) {
                self.catch_up(server);
            }
        }
        self.trim_log();
        zxid
    }

    /// Applies every committed transaction `server` has not applied yet, delivering the watch
    /// events each one fires to that server's connections.
    pub(super) fn catch_up(&mut self, server: usize) {
        loop {
            let Some(r) = self.servers.get(server) else {
                return;
            };
            if !self.log.covers(r.tree.last_zxid) {
                // Cannot happen while the log is trimmed only past every follower; resync anyway.
                let head = self.head.clone();
                self.servers[server].tree = head;
                return;
            }
            let Some(txn) = self.log.after(r.tree.last_zxid).cloned() else {
                return;
            };
            let mut events = Vec::new();
            self.servers[server].tree.apply(&txn, &mut events);
            self.deliver(server, &events, txn.zxid);
        }
    }

    /// Sends each event to the connections of `server` whose watches it fires, one frame per
    /// connection per event (§10.6), in connection order.
    fn deliver(&mut self, server: usize, events: &[Event], zxid: i64) {
        // §5.5: notifications carry -1 before 3.9.0 (ZOOKEEPER-4655), the txn's zxid after.
        let notify_zxid = if self.at_least(3, 9, 0) { zxid } else { -1 };
        for ev in events {
            let targets: Vec<SimConnId> = self
                .conns
                .iter_mut()
                .filter(|(_, c)| c.server == server && c.session().is_some())
                .filter_map(|(id, c)| c.watches.fire(ev.kind, &ev.path).then_some(*id))
                .collect();
            for id in targets {
                self.notify(id, notify_zxid, ev);
            }
        }
    }

    /// Forgets log entries every replica that follows the log has applied. Down and read-only
    /// servers resynchronise from the head when they come back, so they hold nothing up.
    pub(super) fn trim_log(&mut self) {
        let applied = self
            .servers
            .iter()
            .filter(|r| r.up && !r.read_only)
            .map(|r| r.tree.last_zxid)
            .min()
            .unwrap_or(self.head.last_zxid);
        self.log.trim_through(applied);
    }

    /// The last zxid `server` applied: what its read replies carry (§5.5).
    pub(super) fn zxid_of(&self, server: usize) -> i64 {
        self.servers.get(server).map_or(0, |r| r.tree.last_zxid)
    }

    /// Queues a reply frame; the body is sent only when `err` is OK (§5.2).
    pub(super) fn reply(
        &mut self,
        conn: SimConnId,
        xid: i32,
        zxid: i64,
        err: ErrorCode,
        body: Option<&Response>,
    ) {
        let header = ReplyHeader { xid, zxid, err };
        let body = if err.is_ok() { body } else { None };
        let mut out = Vec::new();
        match encode_reply(&mut out, OUT_MAX, &header, body) {
            Ok(()) => self.send(conn, out),
            // A reply too big for any frame: the best a server can do is drop the connection.
            Err(_) => self.close_conn(conn),
        }
    }

    /// Queues a notification frame (§10.1).
    pub(super) fn notify(&mut self, conn: SimConnId, zxid: i64, ev: &Event) {
        let event = WatcherEvent {
            event_type: ev.kind,
            state: KeeperState::SyncConnected,
            path: ev.path.clone(),
        };
        let mut out = Vec::new();
        match encode_notification(&mut out, OUT_MAX, zxid, &event) {
            Ok(()) => self.send(conn, out),
            Err(_) => self.close_conn(conn),
        }
    }
}
