//! The ConnectRequest: new sessions, resumed sessions and refusals (PROTOCOL.md §4).
//!
//! The checks come in `ZooKeeperServer.processConnectRequest`'s order: read-only mismatch, then a
//! client that has seen more than this server applied (both close without a response: "try
//! another server"), then timeout negotiation, then the session itself. A refused session gets the
//! all-zero response and a close.

use std::time::Instant;

use bytes::Bytes;
use zk_core::proto::{
    decode_connect_request, encode_connect_response, ConnectRequest, ConnectResponse, DecodeError,
    PASSWORD_LEN,
};

use super::conn::Phase;
use super::session::{negotiate_timeout, password, Session};
use super::txn::TxnOp;
use super::{SimConnId, SimServer};

/// Decodes a ConnectRequest, ignoring bytes after the record as the Java server does.
fn decode_lenient(frame: Bytes) -> Result<ConnectRequest, DecodeError> {
    match decode_connect_request(frame.clone()) {
        Err(DecodeError::TrailingBytes(n)) if n <= frame.len() => {
            decode_connect_request(frame.slice(..frame.len() - n))
        }
        other => other,
    }
}

impl SimServer {
    /// Handles the first frame of a connection.
    pub(super) fn handle_connect(&mut self, now: Instant, id: SimConnId, frame: Bytes) {
        let Some(server) = self.conns.get(&id).map(|c| c.server) else {
            return;
        };
        if let Some(r) = self.servers.get_mut(server) {
            r.received += 1;
        }
        let Ok(req) = decode_lenient(frame) else {
            self.close_conn(id);
            return;
        };
        let ro_server = self.servers.get(server).is_some_and(|r| r.read_only);
        // §4.3: a read-only server refuses clients that did not say read-only is fine (a missing
        // byte counts as false).
        if ro_server && !req.read_only.unwrap_or(false) {
            self.close_conn(id);
            return;
        }
        // §4.5: the client has seen a newer state than this server has: try another server.
        if req.last_zxid_seen > self.zxid_of(server) {
            self.close_conn(id);
            return;
        }
        let timeout = negotiate_timeout(req.timeout, self.config.tick_ms);
        // The readOnly byte is echoed only if the request carried one (§4.3).
        let ro_byte = req.read_only.map(|_| ro_server);
        if req.session_id == 0 {
            let local_to = ro_server.then_some(server);
            let sid = self.sessions.create(
                server,
                Session {
                    timeout_ms: timeout,
                    last_active: now,
                    conn: Some(id.0),
                    local_to,
                },
            );
            // Creating a session is a transaction (it uses a zxid) except on a read-only server,
            // which cannot reach the quorum and keeps the session to itself.
            if local_to.is_none() {
                self.commit(now, TxnOp::CreateSession, Some(server));
            }
            self.attach(id, sid);
            self.connect_response(id, timeout, sid, ro_byte);
            return;
        }

        let sid = req.session_id;
        // Java closes this server's other connections holding the session before it even looks
        // at the password.
        let others: Vec<SimConnId> = self
            .conns
            .iter()
            .filter(|(cid, c)| **cid != id && c.server == server && c.session() == Some(sid))
            .map(|(cid, _)| *cid)
            .collect();
        for other in others {
            self.close_conn(other);
        }
        let password_ok = req.passwd[..] == password(sid)[..];
        let alive = self.sessions.get(sid).is_some_and(|s| match s.local_to {
            None => true,
            Some(home) => home == server,
        });
        if !(password_ok && alive) {
            let refusal = ConnectResponse {
                protocol_version: 0,
                timeout: 0,
                session_id: 0,
                passwd: Bytes::from_static(&[0; PASSWORD_LEN]),
                read_only: ro_byte,
            };
            self.send_connect_response(id, &refusal);
            self.close_conn(id);
            return;
        }
        // Re-attach: whichever connection held the session elsewhere is closed.
        let elsewhere: Vec<SimConnId> = self
            .conns
            .iter()
            .filter(|(cid, c)| **cid != id && c.session() == Some(sid))
            .map(|(cid, _)| *cid)
            .collect();
        for other in elsewhere {
            self.close_conn(other);
        }
        if let Some(s) = self.sessions.get_mut(sid) {
            s.timeout_ms = timeout;
            s.last_active = now;
            s.conn = Some(id.0);
        }
        self.attach(id, sid);
        self.connect_response(id, timeout, sid, ro_byte);
    }

    fn attach(&mut self, id: SimConnId, sid: i64) {
        if let Some(c) = self.conns.get_mut(&id) {
            c.phase = Phase::Connected { session: sid };
        }
    }

    fn connect_response(&mut self, id: SimConnId, timeout: i32, sid: i64, ro_byte: Option<bool>) {
        let resp = ConnectResponse {
            protocol_version: 0,
            timeout,
            session_id: sid,
            passwd: Bytes::copy_from_slice(&password(sid)),
            read_only: ro_byte,
        };
        self.send_connect_response(id, &resp);
    }

    fn send_connect_response(&mut self, id: SimConnId, resp: &ConnectResponse) {
        let mut out = Vec::new();
        if encode_connect_response(&mut out, i32::MAX as usize, resp).is_ok() {
            self.send(id, out);
        }
    }
}
