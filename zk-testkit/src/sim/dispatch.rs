//! Every request after the handshake: gating by version and mode, decoding, then the op itself
//! (PROTOCOL.md §5–§14, §17).
//!
//! The order of the gates is the Java server's: auth is answered on arrival, outside the request
//! pipeline and without touching the session (§5.4, §13.1); an opcode the version does not know is
//! Unimplemented and a close (§6); then the session is refreshed (§14.1); a read-only server
//! refuses writes before it looks at their bodies (§14.5); an undecodable body is a
//! MarshallingError, which for a write still uses a zxid because the leader logs an error
//! transaction (§5.5).

use std::time::Instant;

use bytes::Bytes;
use zk_core::proto::{
    decode_request, AddWatchMode, AuthPacket, ChildNames, DecodeError, ErrorCode, EventType, Id,
    MultiOp, MultiResult, OpCode, Perms, Request, RequestHeader, Response, WatcherType,
};

use super::acl;
use super::prep::{self, CreateArgs, CreateOp, Ctx};
use super::txn::{Event, TxnOp};
use super::watch::{Manager, STANDARD};
use super::{SimConnId, SimServer};

/// Decodes a request, ignoring bytes after the record as the Java server does.
fn decode_lenient(
    frame: &Bytes,
) -> Result<(RequestHeader, Result<Request, DecodeError>), DecodeError> {
    let (header, body) = decode_request(frame.clone())?;
    match body {
        Err(DecodeError::TrailingBytes(n)) if n <= frame.len() => {
            decode_request(frame.slice(..frame.len() - n))
        }
        body => Ok((header, body)),
    }
}

/// Ops that go through the leader as transactions: a failure, even to decode, uses a zxid.
fn is_txn_op(op: OpCode) -> bool {
    matches!(
        op,
        OpCode::Create
            | OpCode::Create2
            | OpCode::CreateContainer
            | OpCode::CreateTtl
            | OpCode::Delete
            | OpCode::SetData
            | OpCode::SetAcl
            | OpCode::Reconfig
            | OpCode::Check
            | OpCode::Multi
    )
}

/// What a read-only server answers with NotReadOnly (`ReadOnlyRequestProcessor`, §14.5).
fn refused_when_read_only(op: OpCode, local_session: bool) -> bool {
    match op {
        OpCode::Sync => true,
        OpCode::CloseSession => !local_session,
        op => is_txn_op(op),
    }
}

/// One connection's view while a request runs.
struct Who {
    id: SimConnId,
    server: usize,
    session: i64,
    xid: i32,
}

impl SimServer {
    /// True if the modelled version knows the opcode as a client request (§6, §16). Standalone
    /// `check` is refused as 3.8.5+/3.9.3+ do (ZOOKEEPER-2623), on every version: the older
    /// behaviour logs a transaction the server cannot replay (§17).
    fn supports(&self, op: OpCode) -> bool {
        match op {
            OpCode::Notification
            | OpCode::CreateSession
            | OpCode::DeleteContainer
            | OpCode::Error
            | OpCode::Check => false,
            OpCode::Create2 | OpCode::Reconfig | OpCode::CheckWatches | OpCode::RemoveWatches => {
                self.at_least(3, 5, 0)
            }
            OpCode::CreateContainer => self.at_least(3, 5, 1),
            OpCode::CreateTtl => self.at_least(3, 5, 3),
            OpCode::MultiRead
            | OpCode::GetEphemerals
            | OpCode::GetAllChildrenNumber
            | OpCode::SetWatches2
            | OpCode::AddWatch => self.at_least(3, 6, 0),
            OpCode::WhoAmI => self.at_least(3, 7, 0),
            _ => true,
        }
    }

    /// True if a multi sub-op's type exists in the modelled version.
    fn supports_sub_op(&self, op: &MultiOp) -> bool {
        match op {
            MultiOp::Create2(_) => self.at_least(3, 5, 0),
            MultiOp::CreateContainer(_) => self.at_least(3, 5, 1),
            MultiOp::CreateTtl(_) => self.at_least(3, 5, 3),
            _ => true,
        }
    }

    /// Handles one request frame of a connected connection.
    pub(super) fn handle_request(&mut self, now: Instant, id: SimConnId, frame: Bytes) {
        let Some((server, session)) = self
            .conns
            .get(&id)
            .and_then(|c| Some((c.server, c.session()?)))
        else {
            return;
        };
        if let Some(r) = self.servers.get_mut(server) {
            r.received += 1;
        }
        if self.sessions.get(session).is_none() {
            self.close_conn(id);
            return;
        }
        // An unreadable header leaves nothing to answer: close.
        let Ok((header, body)) = decode_lenient(&frame) else {
            self.close_conn(id);
            return;
        };
        let who = Who {
            id,
            server,
            session,
            xid: header.xid,
        };
        if header.op == OpCode::Auth.code() {
            match body {
                Ok(Request::Auth(packet)) => self.auth(&who, &packet),
                // An AuthPacket the server cannot read makes it drop the connection.
                _ => self.close_conn(id),
            }
            return;
        }
        let op = match OpCode::try_from(header.op) {
            Ok(op) if self.supports(op) => op,
            _ => return self.unimplemented(&who),
        };
        self.sessions.touch(session, now);
        let local = self
            .sessions
            .get(session)
            .is_some_and(|s| s.local_to.is_some());
        if self.servers[server].read_only && refused_when_read_only(op, local) {
            let zxid = self.zxid_of(server);
            self.reply(id, who.xid, zxid, ErrorCode::NotReadOnly, None);
            return;
        }
        match body {
            Ok(req) => self.run(now, &who, req),
            Err(_) => self.marshalling_error(now, &who, op),
        }
    }

    /// §6: Unimplemented with zxid -1, then a close.
    fn unimplemented(&mut self, who: &Who) {
        self.reply(who.id, who.xid, -1, ErrorCode::Unimplemented, None);
        self.close_conn(who.id);
    }

    /// A request whose body the server could not read. Writes use a zxid (an error transaction).
    fn marshalling_error(&mut self, now: Instant, who: &Who, op: OpCode) {
        if is_txn_op(op) {
            self.commit(now, TxnOp::Error, Some(who.server));
        }
        let zxid = self.zxid_of(who.server);
        self.reply(who.id, who.xid, zxid, ErrorCode::MarshallingError, None);
    }

    /// Replies to a read with the server's applied zxid.
    fn read_reply(&mut self, who: &Who, result: Result<Response, ErrorCode>) {
        let zxid = self.zxid_of(who.server);
        match result {
            Ok(body) => self.reply(who.id, who.xid, zxid, ErrorCode::Ok, Some(&body)),
            Err(err) => self.reply(who.id, who.xid, zxid, err, None),
        }
    }

    /// The connection's identities (cloned, so the tree can be borrowed alongside).
    fn auth_of(&self, id: SimConnId) -> Vec<Id> {
        self.conns
            .get(&id)
            .map(|c| c.auth.clone())
            .unwrap_or_default()
    }

    /// Commits a validated write (or its error transaction) and returns the reply's zxid.
    fn commit_write(
        &mut self,
        now: Instant,
        who: &Who,
        result: Result<TxnOp, ErrorCode>,
    ) -> (i64, ErrorCode) {
        let (op, err) = match result {
            Ok(op) => (op, ErrorCode::Ok),
            Err(err) => (TxnOp::Error, err),
        };
        self.commit(now, op, Some(who.server));
        (self.zxid_of(who.server), err)
    }

    /// Runs a decoded request.
    fn run(&mut self, now: Instant, who: &Who, req: Request) {
        let auth = self.auth_of(who.id);
        let ctx = Ctx {
            auth: &auth,
            session: who.session,
            extended_types: self.config.extended_types,
            multi_create2_results: self.at_least(3, 9, 0)
                || (self.config.version.1 == 8 && self.at_least(3, 8, 2))
                || (self.config.version.1 == 7 && self.at_least(3, 7, 2)),
            time_ms: self.wall_ms(now),
            zxid: self.head.last_zxid + 1,
        };
        match req {
            Request::Create(r) => {
                self.create(now, who, &ctx, CreateArgs::plain(CreateOp::Create, &r))
            }
            Request::Create2(r) => {
                self.create(now, who, &ctx, CreateArgs::plain(CreateOp::Create2, &r))
            }
            Request::CreateContainer(r) => {
                self.create(now, who, &ctx, CreateArgs::plain(CreateOp::Container, &r))
            }
            Request::CreateTtl(r) => self.create(now, who, &ctx, CreateArgs::ttl(&r)),
            Request::Delete(r) => {
                let result = prep::delete(&self.head, &ctx, &r.path, r.version);
                let (zxid, err) = self.commit_write(now, who, result);
                self.reply(who.id, who.xid, zxid, err, None);
            }
            Request::SetData(r) => {
                let result = prep::set_data(&self.head, &ctx, &r.path, &r.data, r.version);
                let (zxid, err) = self.commit_write(now, who, result);
                let body = self.stat_of(who.server, &r.path).map(Response::Stat);
                self.reply(who.id, who.xid, zxid, err, body.as_ref());
            }
            Request::SetAcl(r) => {
                let result = prep::set_acl(&self.head, &ctx, &r.path, &r.acl, r.version);
                let (zxid, err) = self.commit_write(now, who, result);
                let body = self.stat_of(who.server, &r.path).map(Response::Stat);
                self.reply(who.id, who.xid, zxid, err, body.as_ref());
            }
            Request::Reconfig(_) => {
                // Dynamic reconfiguration is never enabled here [L V17].
                let (zxid, err) = self.commit_write(now, who, Err(ErrorCode::ReconfigDisabled));
                self.reply(who.id, who.xid, zxid, err, None);
            }
            Request::Multi(ops) => {
                if ops.iter().any(|o| o.is_read() || !self.supports_sub_op(o)) {
                    // MultiOperationRecord refuses the mix (or the sub-op type) while decoding.
                    return self.marshalling_error(now, who, OpCode::Multi);
                }
                let (txn, results) = prep::multi(&self.head, &ctx, &ops);
                self.commit(now, txn, Some(who.server));
                let zxid = self.zxid_of(who.server);
                // A failed multi still has err 0 in its header (§9).
                let body = Response::Multi(results);
                self.reply(who.id, who.xid, zxid, ErrorCode::Ok, Some(&body));
            }
            Request::MultiRead(ops) => {
                if ops.iter().any(|o| !o.is_read()) {
                    return self.marshalling_error(now, who, OpCode::MultiRead);
                }
                let results: Vec<MultiResult> = ops
                    .iter()
                    .map(|o| self.multi_read_op(who, &auth, o))
                    .collect();
                self.read_reply(who, Ok(Response::Multi(results)));
            }
            Request::Exists(r) => {
                let result = if r.path.contains('\0') {
                    Err(ErrorCode::BadArguments)
                } else {
                    // §10.6: exists arms a data watch even on a missing node [L V10].
                    if r.watch {
                        self.arm(who.id, Manager::Data, &r.path);
                    }
                    self.stat_of(who.server, &r.path)
                        .map(Response::Stat)
                        .ok_or(ErrorCode::NoNode)
                };
                self.read_reply(who, result);
            }
            Request::GetData(r) => {
                let result = self.get_data(who, &auth, &r.path).map(|(data, stat)| {
                    if r.watch {
                        self.arm(who.id, Manager::Data, &r.path);
                    }
                    Response::Data { data, stat }
                });
                self.read_reply(who, result);
            }
            Request::GetChildren(r) => {
                let result = self.get_children(who, &auth, &r.path).map(|(children, _)| {
                    if r.watch {
                        self.arm(who.id, Manager::Child, &r.path);
                    }
                    Response::Children { children }
                });
                self.read_reply(who, result);
            }
            Request::GetChildren2(r) => {
                let result = self
                    .get_children(who, &auth, &r.path)
                    .map(|(children, stat)| {
                        if r.watch {
                            self.arm(who.id, Manager::Child, &r.path);
                        }
                        Response::Children2 { children, stat }
                    });
                self.read_reply(who, result);
            }
            Request::GetAcl(r) => {
                let result = self.get_acl(who, &auth, &r.path);
                self.read_reply(who, result);
            }
            Request::GetAllChildrenNumber(r) => {
                let tree = &self.servers[who.server].tree;
                let result = match tree.get(&r.path) {
                    None => Err(ErrorCode::NoNode),
                    Some(n) if !acl::allows(&n.acl, &auth, Perms::READ.0) => Err(ErrorCode::NoAuth),
                    Some(_) => Ok(Response::AllChildrenNumber {
                        total: i32::try_from(tree.descendant_count(&r.path)).unwrap_or(i32::MAX),
                    }),
                };
                self.read_reply(who, result);
            }
            Request::GetEphemerals(r) => {
                // §6: this session's ephemerals under a plain string prefix; "/" or blank is all.
                let all = self.servers[who.server].tree.ephemerals_of(who.session);
                let prefix = r.path.trim();
                let paths = if prefix.is_empty() || prefix == "/" {
                    all
                } else {
                    all.into_iter().filter(|p| p.starts_with(&r.path)).collect()
                };
                self.read_reply(who, Ok(Response::Ephemerals { paths }));
            }
            Request::Sync(r) => {
                // A lagging follower catches up with the leader before answering.
                self.catch_up(who.server);
                self.read_reply(who, Ok(Response::Sync { path: r.path }));
            }
            Request::Ping => {
                // §5.3: the ping reply's xid is always -2.
                let zxid = self.zxid_of(who.server);
                self.reply(who.id, -2, zxid, ErrorCode::Ok, None);
            }
            Request::CheckWatches(r) => self.watches_op(who, &r.path, r.watcher_type, false),
            Request::RemoveWatches(r) => self.watches_op(who, &r.path, r.watcher_type, true),
            Request::SetWatches(s) => self.set_watches(
                who,
                s.relative_zxid,
                [&s.data_watches, &s.exist_watches, &s.child_watches],
                &[],
                &[],
            ),
            Request::SetWatches2(s) => self.set_watches(
                who,
                s.relative_zxid,
                [&s.data_watches, &s.exist_watches, &s.child_watches],
                &s.persistent_watches,
                &s.persistent_recursive_watches,
            ),
            Request::AddWatch(r) => match r.mode() {
                Ok(mode) => {
                    if let Some(c) = self.conns.get_mut(&who.id) {
                        c.watches
                            .add_persistent(&r.path, mode == AddWatchMode::PersistentRecursive);
                    }
                    // §17: the reply carries an ErrorResponse of 0.
                    let body = Response::AddWatch { err: ErrorCode::Ok };
                    self.read_reply(who, Ok(body));
                }
                Err(_) => self.marshalling_error(now, who, OpCode::AddWatch),
            },
            Request::WhoAmI => {
                let client_info = acl::client_info(&auth);
                self.read_reply(who, Ok(Response::WhoAmI { client_info }));
            }
            Request::CloseSession => self.close_session(now, who),
            Request::Sasl(_) => {
                // No SASL is configured: the exchange fails, and the server closes (§13.3).
                let zxid = self.zxid_of(who.server);
                self.reply(who.id, who.xid, zxid, ErrorCode::AuthFailed, None);
                self.close_conn(who.id);
            }
            // Auth is answered before gating and check is refused by it; anything a newer codec
            // adds is unknown to this model.
            _ => self.unimplemented(who),
        }
    }

    fn create(&mut self, now: Instant, who: &Who, ctx: &Ctx, args: CreateArgs) {
        let op = args.op;
        let (result, path) = match prep::create(&self.head, ctx, &args) {
            Ok((txn, path)) => (Ok(txn), path),
            Err(err) => (Err(err), String::new()),
        };
        let (zxid, err) = self.commit_write(now, who, result);
        let body = if op == CreateOp::Create {
            Response::Create { path }
        } else {
            let stat = self.stat_of(who.server, &path).unwrap_or_default();
            Response::Create2 { path, stat }
        };
        self.reply(who.id, who.xid, zxid, err, Some(&body));
    }

    fn stat_of(&self, server: usize, path: &str) -> Option<zk_core::proto::Stat> {
        self.servers.get(server)?.tree.get(path).map(|n| n.stat())
    }

    fn arm(&mut self, id: SimConnId, m: Manager, path: &str) {
        if let Some(c) = self.conns.get_mut(&id) {
            c.watches.add(m, path, STANDARD);
        }
    }

    fn get_data(
        &self,
        who: &Who,
        auth: &[Id],
        path: &str,
    ) -> Result<(Option<Bytes>, zk_core::proto::Stat), ErrorCode> {
        let n = self.servers[who.server]
            .tree
            .get(path)
            .ok_or(ErrorCode::NoNode)?;
        if !acl::allows(&n.acl, auth, Perms::READ.0) {
            return Err(ErrorCode::NoAuth);
        }
        Ok((n.data.clone(), n.stat()))
    }

    fn get_children(
        &self,
        who: &Who,
        auth: &[Id],
        path: &str,
    ) -> Result<(ChildNames, zk_core::proto::Stat), ErrorCode> {
        let n = self.servers[who.server]
            .tree
            .get(path)
            .ok_or(ErrorCode::NoNode)?;
        if !acl::allows(&n.acl, auth, Perms::READ.0) {
            return Err(ErrorCode::NoAuth);
        }
        Ok((n.children.iter().collect(), n.stat()))
    }

    fn get_acl(&self, who: &Who, auth: &[Id], path: &str) -> Result<Response, ErrorCode> {
        let n = self.servers[who.server]
            .tree
            .get(path)
            .ok_or(ErrorCode::NoNode)?;
        // READ or ADMIN lets you see the ACL; only ADMIN shows digest hashes (§6).
        if !acl::allows(&n.acl, auth, Perms::READ.0 | Perms::ADMIN.0) {
            return Err(ErrorCode::NoAuth);
        }
        let list = if acl::allows(&n.acl, auth, Perms::ADMIN.0) {
            n.acl.clone()
        } else {
            acl::mask_digests(&n.acl)
        };
        Ok(Response::Acl {
            acl: list,
            stat: n.stat(),
        })
    }

    /// One multiRead op: each runs on its own; the watch flag is ignored (§9).
    fn multi_read_op(&self, who: &Who, auth: &[Id], op: &MultiOp) -> MultiResult {
        let result = match op {
            MultiOp::GetData(r) => self
                .get_data(who, auth, &r.path)
                .map(|(data, stat)| MultiResult::GetData { data, stat }),
            MultiOp::GetChildren(r) => self
                .get_children(who, auth, &r.path)
                .map(|(children, _)| MultiResult::GetChildren { children }),
            _ => Err(ErrorCode::MarshallingError),
        };
        result.unwrap_or_else(MultiResult::Error)
    }

    /// checkWatches (17) and removeWatches (18), §10.4.
    fn watches_op(&mut self, who: &Who, path: &str, raw_type: i32, remove: bool) {
        let t = match WatcherType::try_from(raw_type) {
            // Persistent (4) and PersistentRecursive (5) do not parse before 3.9.0.
            Ok(WatcherType::Persistent | WatcherType::PersistentRecursive)
                if !self.at_least(3, 9, 0) =>
            {
                None
            }
            Ok(t) => Some(t),
            Err(_) => None,
        };
        let Some(t) = t else {
            let zxid = self.zxid_of(who.server);
            self.reply(who.id, who.xid, zxid, ErrorCode::MarshallingError, None);
            return;
        };
        let found = self.conns.get_mut(&who.id).is_some_and(|c| {
            if remove {
                c.watches.remove_type(path, t)
            } else {
                c.watches.contains(path, t)
            }
        });
        let result = if found {
            Ok(Response::Empty)
        } else {
            Err(ErrorCode::NoWatcher)
        };
        self.read_reply(who, result);
    }

    /// setWatches / setWatches2 (§10.5): each listed watch is either re-armed or answered at once
    /// with the event it missed; those events (zxid -1) precede the reply.
    fn set_watches(
        &mut self,
        who: &Who,
        relative_zxid: i64,
        [data, exist, child]: [&Vec<String>; 3],
        persistent: &[String],
        recursive: &[String],
    ) {
        let tree = &self.servers[who.server].tree;
        let mut events = Vec::new();
        let mut arms = Vec::new();
        for p in data {
            match tree.get(p) {
                None => events.push((EventType::NodeDeleted, p)),
                Some(n) if n.mzxid > relative_zxid => events.push((EventType::NodeDataChanged, p)),
                Some(_) => arms.push((Manager::Data, p)),
            }
        }
        for p in exist {
            match tree.get(p) {
                Some(_) => events.push((EventType::NodeCreated, p)),
                None => arms.push((Manager::Data, p)),
            }
        }
        for p in child {
            match tree.get(p) {
                None => events.push((EventType::NodeDeleted, p)),
                Some(n) if n.pzxid > relative_zxid => {
                    events.push((EventType::NodeChildrenChanged, p))
                }
                Some(_) => arms.push((Manager::Child, p)),
            }
        }
        let events: Vec<Event> = events
            .into_iter()
            .map(|(kind, p)| Event {
                kind,
                path: p.clone(),
            })
            .collect();
        if let Some(c) = self.conns.get_mut(&who.id) {
            for (m, p) in arms {
                c.watches.add(m, p, STANDARD);
            }
            for p in persistent {
                c.watches.add_persistent(p, false);
            }
            for p in recursive {
                c.watches.add_persistent(p, true);
            }
        }
        for ev in &events {
            self.notify(who.id, -1, ev);
        }
        self.read_reply(who, Ok(Response::Empty));
    }

    /// auth (100): digest always succeeds, ip adds nothing new, anything else fails and closes
    /// (§13). The reply is immediate, with zxid 0, and does not refresh the session.
    fn auth(&mut self, who: &Who, packet: &AuthPacket) {
        let id = match packet.scheme.as_str() {
            "digest" => Some(Id::new("digest", acl::digest_id(&packet.auth))),
            "ip" => Some(Id::new("ip", acl::CLIENT_IP)),
            _ => None,
        };
        match id {
            Some(id) => {
                if let Some(c) = self.conns.get_mut(&who.id) {
                    acl::add_id(&mut c.auth, id);
                }
                self.reply(who.id, who.xid, 0, ErrorCode::Ok, None);
            }
            None => {
                self.reply(who.id, who.xid, 0, ErrorCode::AuthFailed, None);
                self.close_conn(who.id);
            }
        }
    }

    /// closeSession (§14.4): the ephemerals go in a transaction whose events reach this
    /// connection too, then the reply, then the close.
    fn close_session(&mut self, now: Instant, who: &Who) {
        let Some(session) = self.sessions.remove(who.session) else {
            return self.close_conn(who.id);
        };
        if session.local_to.is_none() {
            let ephemerals = self.head.ephemerals_of(who.session);
            self.commit(now, TxnOp::CloseSession { ephemerals }, Some(who.server));
        }
        let zxid = self.zxid_of(who.server);
        self.reply(who.id, who.xid, zxid, ErrorCode::Ok, None);
        self.close_conn(who.id);
    }
}
