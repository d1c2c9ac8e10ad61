//! The session state machine: one ZooKeeper session over a succession of connections.
//!
//! A [`Session`] does no I/O. A driver feeds it what happened and carries out what it asks for.
//!
//! **The contract.** Inputs are method calls that take `now`:
//! [`submit`](Session::submit), [`close`](Session::close),
//! [`remove_watcher`](Session::remove_watcher), [`set_hosts`](Session::set_hosts) from the user;
//! [`handle_connected`](Session::handle_connected), [`handle_bytes`](Session::handle_bytes),
//! [`handle_closed`](Session::handle_closed), [`handle_connect_failed`](Session::handle_connect_failed),
//! [`handle_probe_result`](Session::handle_probe_result)
//! and [`handle_timeout`](Session::handle_timeout) from the transport and the clock. After every
//! input the driver drains every output until each returns `None`:
//! [`poll_connect`](Session::poll_connect) (dial this host),
//! [`poll_close`](Session::poll_close) (drop this connection),
//! [`poll_probe`](Session::poll_probe) (ask a server a four-letter word),
//! [`poll_transmit`](Session::poll_transmit) (write these bytes),
//! [`poll_event`](Session::poll_event) (replies, watch events and state changes, in one total
//! order), and then sleeps until [`poll_timeout`](Session::poll_timeout), new bytes or a new
//! request. Each connection has its own [`ConnId`]; input for a connection the session has let go
//! is ignored.
//!
//! **The rules** (shared/DESIGN.md "Session rules", PROTOCOL.md §4, §5, §10, §12–§14): requests
//! get xids in order and replies must match the head of the in-flight queue; requests submitted
//! while disconnected wait and go out after the handshake, credentials and watch re-arming; a dead
//! link fails what was in flight with ConnectionLoss; after a reconnect each persistent watcher
//! gets [`Event::WatchResync`] (the server re-arms it without catch-up events); an expired
//! session fails everything with SessionExpired and tells every watcher; a changed session id on
//! resume is an expiry; anything malformed from a server drops that connection, never panics.

mod config;
mod event;
mod pipeline;
mod probes;
mod rearm;
mod requests;
mod timers;
mod watches;

pub use config::{Credentials, SaslClient, SaslFactory, SessionConfig, DEFAULT_MAX_IN_FLIGHT};
pub use event::{
    ConnId, Event, HostFailure, LostReason, ProbeId, RequestId, SessionId, SessionState, WatchEnd,
    WatchedEvent,
};
pub use timers::Wakeup;
use watches::{Removal, WatchRegistry};
pub use watches::{WatchKind, WatcherId};

use std::cmp::Reverse;
use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tracing::{debug, warn};

use crate::error::Error;
use crate::hosts::{HostAddr, HostRotation};
use crate::path::Chroot;
use crate::proto::{
    decode_connect_response, decode_notification, decode_reply, decode_reply_header,
    encode_connect_request, encode_request, xid, AddWatchMode, AddWatchRequest, AuthPacket,
    ConnectRequest, ErrorCode, EventType, FrameDecoder, OpCode, Request, Response, WatchesRequest,
    PASSWORD_LEN,
};
use crate::rng::Rng;
use crate::version::{required_version, ServerVersion};
use pipeline::{InFlight, Internal, Origin, Pending, Pipeline};
pub use probes::Probe;
use probes::{ProbePurpose, Probes};
use requests::WatchIntent;

/// A host the driver should dial for the session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connect {
    /// The id of the new connection; report its fate with `handle_connected`,
    /// `handle_connect_failed` (dialing failed, with the cause) or `handle_closed`.
    pub conn: ConnId,
    /// Where to connect; resolve the name afresh.
    pub addr: HostAddr,
}

/// How long a request may wait for its reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RequestTimeout {
    /// The session's configured `request_timeout`.
    #[default]
    Default,
    /// Wait as long as the session lives.
    Never,
    /// Fail with [`Error::Timeout`] after this long.
    After(Duration),
}

/// Options for [`Session::submit_with`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SubmitOptions {
    /// The request's timeout.
    pub timeout: RequestTimeout,
    /// Send paths as given, without the chroot (for `/zookeeper/config`). A watch the request
    /// sets on a path outside the chroot is kept apart from client paths: it hears of that node
    /// (or, recursive, of its descendants outside the chroot), and its events carry the server
    /// path.
    pub absolute_path: bool,
}

#[derive(Debug)]
enum Link {
    /// No connection; dial `host` at `at`.
    Idle { at: Instant, host: usize },
    /// Waiting for the driver's TCP connect.
    Dialing {
        conn: ConnId,
        host: usize,
        deadline: Instant,
    },
    /// ConnectRequest sent, waiting for the ConnectResponse.
    Handshaking {
        conn: ConnId,
        host: usize,
        deadline: Instant,
        decoder: FrameDecoder,
        sent_session_id: i64,
    },
    /// The session is attached to this connection.
    Up {
        conn: ConnId,
        host: usize,
        decoder: FrameDecoder,
        last_send: Instant,
        last_recv: Instant,
        read_only: bool,
    },
    /// The session is over: no more connections.
    Down,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Running,
    Closing { deadline: Instant },
    Ended(LostReason),
}

/// What this connection's server version is known to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum VersionState {
    Unknown,
    Probing(ProbeId),
    Known(ServerVersion),
    /// The probe failed; operations go out as if the server were new enough.
    Unavailable,
}

/// One ZooKeeper session, sans-IO. See the module documentation for the driving contract.
#[derive(Debug)]
pub struct Session {
    config: SessionConfig,
    rng: Rng,
    rotation: HostRotation,

    session_id: i64,
    password: Bytes,
    /// Whether a read-write server ever accepted this session (the Java client's
    /// `seenRwServerBefore`): until then a reconnect asks for a new session, because a
    /// read-only server's session id means nothing to the quorum.
    seen_rw: bool,
    negotiated: Option<Duration>,
    last_zxid: i64,
    /// Last time any frame arrived from any server (client-side expiry).
    last_heard: Instant,

    state: SessionState,
    phase: Phase,
    link: Link,
    next_conn: u64,

    /// Requests: xids, the queue of those not yet sent, those in flight, their deadlines.
    pipe: Pipeline,
    /// Credentials replayed on every connection, before anything else.
    credentials: Vec<Credentials>,

    watches: WatchRegistry,
    /// The connected server's version, as far as known.
    version: VersionState,
    /// Watches must be re-armed once the server's version is known.
    rearm_pending: bool,
    /// SetWatches frames sent on this connection and not yet answered (their replies carry
    /// their own xid, outside the in-flight queue).
    set_watches_in_flight: usize,
    /// Four-letter-word probes: the server version, and read-only mode's search for a writable
    /// server.
    probing: Probes,

    events: VecDeque<Event>,
    out: Vec<u8>,
    connect_out: Option<Connect>,
    close_out: VecDeque<ConnId>,
    scratch: Vec<WatcherId>,
    /// The NodeChildrenChanged events derived (for parents the server watches recursively) from
    /// the notifications of one zxid, per parent: from 3.9 a server may hold a persistent watch
    /// on the parent next to the recursive one and send its own, which is then the same change.
    derived_children: (i64, BTreeMap<String, usize>),
    /// Why the last connection attempt to each host failed, in the order hosts first failed;
    /// cleared when a session is connected.
    connect_failures: Vec<HostFailure>,
    /// The SASL exchange under way on this connection; requests wait until it is done.
    sasl: Option<SaslRun>,
    /// Why authentication failed, once it has (the session is then `Lost(AuthFailed)`).
    auth_failure: Option<String>,
}

/// A SASL exchange under way.
struct SaslRun {
    client: Box<dyn SaslClient>,
    /// Whether the server said read-only: the state to enter once the exchange succeeds.
    read_only: bool,
}

impl std::fmt::Debug for SaslRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SaslRun")
            .field("mechanism", &self.client.mechanism())
            .field("read_only", &self.read_only)
            .finish()
    }
}

impl Session {
    /// A session that will start connecting at once (the first `poll_connect` names a host).
    pub fn new(config: SessionConfig, now: Instant) -> Session {
        let mut rng = Rng::new(config.rng_seed);
        let rotation = HostRotation::new(
            config.connect_string.hosts.len(),
            config.randomize_hosts,
            config.reconnect,
            &mut rng,
        );
        let (session_id, password) = match &config.resume {
            Some(r) => (r.id, r.password.clone()),
            None => (0, Bytes::from_static(&[0; PASSWORD_LEN])),
        };
        let credentials = config.auth.clone();
        let version = match config.server_version {
            Some(v) => VersionState::Known(v),
            None => VersionState::Unknown,
        };
        let ro_probe_backoff = config.read_only_probe_initial;
        let mut s = Session {
            seen_rw: config.resume.is_some(),
            config,
            rng,
            rotation,
            session_id,
            password,
            negotiated: None,
            last_zxid: 0,
            last_heard: now,
            state: SessionState::Connecting,
            phase: Phase::Running,
            link: Link::Down,
            next_conn: 1,
            pipe: Pipeline::default(),
            set_watches_in_flight: 0,
            credentials,
            watches: WatchRegistry::default(),
            version,
            rearm_pending: false,
            probing: Probes::new(ro_probe_backoff),
            events: VecDeque::new(),
            out: Vec::new(),
            connect_out: None,
            close_out: VecDeque::new(),
            scratch: Vec::new(),
            derived_children: (-1, BTreeMap::new()),
            connect_failures: Vec::new(),
            sasl: None,
            auth_failure: None,
        };
        s.schedule_dial(now);
        s
    }

    // ---- getters ---------------------------------------------------------------------------

    /// The current state.
    pub fn state(&self) -> SessionState {
        self.state
    }

    /// The session's id and password while there is a session that may be alive (kazoo's
    /// `client_id`): from the handshake that created it, through `Suspended` (the server may
    /// still hold it), until it ends.
    ///
    /// `None` before the first handshake, once [`close`](Self::close) was called, after expiry
    /// or an authentication failure (`Lost(_)`), and while a new session is being set up after
    /// an expiry. A session configured to resume an id (`SessionConfig::resume`) reports that id
    /// until a server answers, as kazoo does: it may still be alive.
    pub fn session_id(&self) -> Option<SessionId> {
        // Closing counts as ended: the id must not be handed to another process to resume.
        (self.session_id != 0 && self.phase == Phase::Running).then(|| SessionId {
            id: self.session_id,
            password: self.password.clone(),
        })
    }

    /// The session timeout the server granted, once connected.
    pub fn negotiated_timeout(&self) -> Option<Duration> {
        self.negotiated
    }

    /// The highest zxid seen in a reply.
    pub fn last_zxid(&self) -> i64 {
        self.last_zxid
    }

    /// The connected server's version, when known (configured, or learnt with `srvr`).
    pub fn server_version(&self) -> Option<ServerVersion> {
        match self.version {
            VersionState::Known(v) => Some(v),
            _ => None,
        }
    }

    /// The server the session is attached to, if connected.
    pub fn current_host(&self) -> Option<&HostAddr> {
        match &self.link {
            Link::Up { host, .. } => self.config.connect_string.hosts.get(*host),
            _ => None,
        }
    }

    /// The chroot.
    pub fn chroot(&self) -> &Chroot {
        &self.config.connect_string.chroot
    }

    /// The servers of the connect string.
    pub fn hosts(&self) -> &[HostAddr] {
        &self.config.connect_string.hosts
    }

    /// The configuration.
    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    /// The number of live local watchers (one-shot ones not yet fired, persistent ones not yet
    /// removed).
    pub fn watcher_count(&self) -> usize {
        self.watches.len()
    }

    /// True if `watcher` is live: armed and neither fired (one-shot), removed nor ended.
    pub fn has_watcher(&self, watcher: WatcherId) -> bool {
        self.watches.contains(watcher)
    }

    /// The path and kind of a live watcher, `None` if it is not live. The path is a client path,
    /// or the server path of a watch set outside the chroot with `absolute_path`.
    pub fn watcher(&self, watcher: WatcherId) -> Option<(&str, WatchKind)> {
        self.watches
            .get(watcher)
            .map(|(path, kind)| (crate::path::shown(path), kind))
    }

    /// Why connection attempts failed since the session was last connected: one entry per host
    /// with its most recent cause (TCP connect error, connect or handshake timeout, a handshake
    /// the server broke or closed), in the order the hosts first failed. Empty once a session is
    /// connected. A driver whose `connect()` gives up reports these in
    /// [`Error::ConnectFailed`].
    pub fn connect_failures(&self) -> Vec<HostFailure> {
        self.connect_failures.clone()
    }

    /// Why authentication failed (a SASL exchange the server refused, naming the mechanism and
    /// the server's answer), once the session has ended with `Lost(AuthFailed)` for it.
    pub fn auth_failure(&self) -> Option<&str> {
        self.auth_failure.as_deref()
    }

    /// Requests submitted and not yet resolved (queued or in flight).
    pub fn pending_requests(&self) -> usize {
        self.pipe.pending_user_requests()
    }

    /// The id the next submitted request will get (watchers are named after their requests).
    pub fn next_request_id(&self) -> RequestId {
        RequestId(self.pipe.next_request)
    }

    /// Numbers this session's requests, and so its watchers, from `first` on (ids only grow:
    /// a lower `first` is ignored). For a session that takes the place of another on the same
    /// handle, as a client's `restart()` does: an id the old session handed out, still held by
    /// a stale reply future or watch handle, then never names something of the new session.
    pub fn continue_ids_from(&mut self, first: RequestId) {
        self.pipe.next_request = self.pipe.next_request.max(first.0);
    }

    /// Requests sent on this connection and not yet answered (cheap: no counting by kind).
    pub fn in_flight(&self) -> usize {
        self.pipe.in_flight.len()
    }

    /// Requests submitted and not yet sent (waiting for a connection or behind an auth). Cheap.
    pub fn queued(&self) -> usize {
        self.pipe.queue.len()
    }

    /// The connection the session is using or trying, if any.
    pub fn current_conn(&self) -> Option<ConnId> {
        match &self.link {
            Link::Dialing { conn, .. } | Link::Handshaking { conn, .. } | Link::Up { conn, .. } => {
                Some(*conn)
            }
            Link::Idle { .. } | Link::Down => None,
        }
    }

    // ---- commands ----------------------------------------------------------------------------

    /// Submits a request. Paths are client paths (the chroot is added here). The reply comes out
    /// of `poll_event` as [`Event::Reply`] with the returned id, exactly once.
    ///
    /// Errors, with nothing sent, when the session is over ([`Error::Closed`],
    /// [`Error::SessionExpired`], [`Error::AuthFailed`]), a path is invalid
    /// ([`Error::InvalidPath`]), the request is one the session sends itself or one that must not
    /// be sent alone ([`Error::InvalidArgument`]), it would exceed the server's frame limit
    /// ([`Error::RequestTooLarge`]), or the connected server is known to be too old
    /// ([`Error::Unsupported`]).
    pub fn submit(&mut self, now: Instant, request: Request) -> Result<RequestId, Error> {
        self.submit_with(now, request, SubmitOptions::default())
    }

    /// [`submit`](Self::submit) with options: a timeout for this request alone, or a path that
    /// bypasses the chroot (the Java client reads `/zookeeper/config` that way).
    ///
    /// A request that times out resolves with [`Error::Timeout`]; if it had been sent it may
    /// still be applied. Errors as [`submit`](Self::submit) does.
    pub fn submit_with(
        &mut self,
        now: Instant,
        mut request: Request,
        options: SubmitOptions,
    ) -> Result<RequestId, Error> {
        let timeout = match options.timeout {
            RequestTimeout::Default => self.config.request_timeout,
            RequestTimeout::Never => None,
            RequestTimeout::After(t) => Some(t),
        };
        self.check_accepting()?;
        requests::validate(&request)?;
        let mut watch = requests::watch_intent(&request)?;
        let rides = match &mut watch {
            Some(intent) => self.fit_to_server_mode(&mut request, intent, options.absolute_path),
            None => false,
        };
        let needs = required_version(&request);
        if let (Some(needs), VersionState::Known(server)) = (needs, self.version) {
            if server < needs {
                return Err(Error::Unsupported {
                    op: request.op_code(),
                    needs,
                    server,
                });
            }
        }
        // Without a chroot the client path is the request's own: move it out after encoding
        // instead of copying it now.
        let take_path = (options.absolute_path
            || self.config.connect_string.chroot.as_str().is_none())
            && requests::request_path_mut(&mut request).is_some();
        let copied_path = (!take_path).then(|| requests::request_path(&request).to_owned());
        // The session keys watches by client path; a watch set with `absolute_path` gets the key
        // its notifications map to (see `Chroot::key_of_server`). Other requests keep the path as
        // given, which their errors name.
        let keyed_outside = (options.absolute_path && watch.is_some())
            .then(|| self.config.connect_string.chroot.clone());
        let client_path = move |request: &mut Request| {
            let path = match copied_path {
                Some(path) => path,
                None => requests::request_path_mut(request)
                    .map(std::mem::take)
                    .unwrap_or_default(),
            };
            match &keyed_outside {
                // The key is the path itself when it needs no change (no chroot): keep the
                // string rather than copy it.
                Some(chroot) => match chroot.key_of_server(&path) {
                    std::borrow::Cow::Borrowed(key) if key.len() == path.len() => path,
                    key => key.into_owned(),
                },
                None => path,
            }
        };
        let op = request.op_code();
        let auth = match &request {
            Request::Auth(a) => Some(Credentials {
                scheme: a.scheme.clone(),
                auth: a.auth.clone(),
            }),
            _ => None,
        };
        if !options.absolute_path {
            requests::apply_chroot(&self.config.connect_string.chroot, &mut request);
        }
        let id = RequestId(self.pipe.next_request);
        let origin = Origin::User { id, watch, rides };
        let deadline = timeout.map(|t| now + t);

        if auth.is_none() && self.can_send_now(needs) {
            // Fast path: straight into the output buffer, no intermediate frame.
            let xid = self.pipe.peek_xid();
            self.encode_into_out(xid, &request)?;
            self.pipe.advance_xid();
            self.push_in_flight(now, xid, op, origin, client_path(&mut request), deadline);
        } else {
            let placeholder = if auth.is_some() { xid::AUTH } else { 0 };
            let mut frame = Vec::new();
            encode_request(&mut frame, self.config.max_request, placeholder, &request).map_err(
                |e| match e {
                    crate::proto::EncodeError::FrameTooLarge { len, max } => {
                        Error::RequestTooLarge { len, max }
                    }
                },
            )?;
            self.pipe.queue.push_back(Pending {
                origin,
                op,
                frame,
                path: client_path(&mut request),
                deadline,
                needs,
                auth,
            });
            self.flush_queue(now);
        }
        self.pipe.next_request += 1;
        if let Some(d) = deadline {
            self.pipe.deadlines.push(Reverse(d));
        }
        Ok(id)
    }

    /// Ends the session: sends closeSession if connected, waits for its reply (or
    /// `close_timeout`), and then fails whatever is left with [`Error::Closed`]. Requests queued
    /// but not sent fail at once. Calling it again does nothing.
    pub fn close(&mut self, now: Instant) {
        if self.phase != Phase::Running {
            return;
        }
        self.pipe.fail_queue(Error::Closed, &mut self.events);
        if matches!(self.link, Link::Up { .. }) {
            let xid = self.pipe.peek_xid();
            if self.encode_into_out(xid, &Request::CloseSession).is_ok() {
                self.pipe.advance_xid();
                self.push_in_flight(
                    now,
                    xid,
                    OpCode::CloseSession,
                    Origin::Close,
                    String::new(),
                    None,
                );
                self.phase = Phase::Closing {
                    deadline: now + self.config.close_timeout,
                };
                return;
            }
        }
        self.finish_close();
    }

    /// Replaces the servers the session connects to (kazoo's `set_hosts`, the Java client's
    /// `updateServerList`), e.g. after the ensemble was reconfigured. The chroot is unchanged; the
    /// new list is shuffled (with the session's seeded RNG) when the config randomizes hosts.
    ///
    /// A connection to a server still listed is kept. A connection to a server no longer listed
    /// is dropped as the session's own decision, as a dead link would be: state `Suspended`,
    /// requests in flight fail with [`Error::ConnectionLoss`], and the session resumes on a
    /// server of the new list. A connection attempt in progress to a removed server is
    /// abandoned, and one waiting for its turn goes to the new list at once.
    ///
    /// Errors, changing nothing, with [`Error::InvalidArgument`] for an empty list or a host
    /// with an empty name or port 0, and with the session's end ([`Error::Closed`],
    /// [`Error::SessionExpired`], [`Error::AuthFailed`]) once it is over or closing.
    pub fn set_hosts(&mut self, now: Instant, hosts: Vec<HostAddr>) -> Result<(), Error> {
        self.check_accepting()?;
        if hosts.is_empty() {
            return Err(Error::InvalidArgument(
                "set_hosts needs at least one host".into(),
            ));
        }
        if let Some(h) = hosts.iter().find(|h| h.host.is_empty() || h.port == 0) {
            return Err(Error::InvalidArgument(format!(
                "bad host {h}: empty name or port 0"
            )));
        }
        // The link names its host by index into the old list; find it by address in the new.
        let current = match &self.link {
            Link::Dialing { host, .. } | Link::Handshaking { host, .. } | Link::Up { host, .. } => {
                self.config.connect_string.hosts.get(*host).cloned()
            }
            Link::Idle { .. } | Link::Down => None,
        };
        let kept = current.and_then(|addr| hosts.iter().position(|h| *h == addr));
        self.rotation = HostRotation::new(
            hosts.len(),
            self.config.randomize_hosts,
            self.config.reconnect,
            &mut self.rng,
        );
        self.connect_failures.retain(|f| hosts.contains(&f.host));
        self.config.connect_string.hosts = hosts;
        // Read-only probes in flight name hosts of the old list; their answers would steer the
        // rotation wrong. The next probe round starts over.
        let had_ro_probe = self
            .probing
            .open
            .iter()
            .any(|p| matches!(p.purpose, ProbePurpose::ReadOnly { .. }));
        self.probing
            .open
            .retain(|p| !matches!(p.purpose, ProbePurpose::ReadOnly { .. }));
        self.probing.ro_cursor = 0;
        match (&mut self.link, kept) {
            (
                Link::Dialing { host, .. } | Link::Handshaking { host, .. } | Link::Up { host, .. },
                Some(j),
            ) => {
                *host = j;
                if had_ro_probe {
                    self.schedule_ro_probe(now);
                }
            }
            (Link::Dialing { .. } | Link::Handshaking { .. }, None) => {
                debug!("abandoning a connection attempt to a host no longer listed");
                self.link_down(now, true, "host removed by set_hosts");
            }
            (Link::Up { .. }, None) => {
                debug!("the connected server is no longer listed; moving");
                self.link_down(now, true, "server removed by set_hosts");
            }
            // Waiting to dial a host of the old list, perhaps for a backoff the old list earned.
            (Link::Idle { .. }, _) => self.schedule_dial(now),
            (Link::Down, _) => {}
        }
        Ok(())
    }

    /// Drops a local watcher. When it was the last local watcher of a server watch, and removing
    /// that cannot disturb other watches on the path, the session sends removeWatches. Unknown ids
    /// (already fired, already removed) are ignored.
    pub fn remove_watcher(&mut self, now: Instant, watcher: WatcherId) {
        let (path, request, internal, held_mode) = match self.watches.remove(watcher) {
            Removal::Keep => return,
            Removal::Remove(path, watcher_type, held_mode) => {
                let request = Request::RemoveWatches(WatchesRequest {
                    path: self.config.connect_string.chroot.key_to_server(&path),
                    watcher_type: watcher_type.code(),
                });
                (path, request, Internal::RemoveWatch, held_mode)
            }
            Removal::Downgrade(path) => {
                let request = Request::AddWatch(AddWatchRequest {
                    path: self.config.connect_string.chroot.key_to_server(&path),
                    mode: AddWatchMode::Persistent.code(),
                });
                (path, request, Internal::Downgrade, None)
            }
        };
        if !matches!(self.link, Link::Up { .. }) || self.phase != Phase::Running {
            // Not connected: the registry no longer lists it, so re-arming leaves it out (and
            // queued requests that meant to ride on it get their watch flag back).
            return;
        }
        // A watching request on the same path still on its way would be armed on the server and
        // then removed by this, or rides on the mode this would remove; keep the server watch
        // instead (a stray event is harmless).
        let racing = self
            .pipe
            .in_flight
            .iter()
            .map(|f| (&f.origin, &f.path))
            .chain(self.pipe.queue.iter().map(|p| (&p.origin, &p.path)))
            .any(|(o, p)| matches!(o, Origin::User { watch: Some(_), .. }) && *p == path);
        if racing {
            if let Some(mode) = held_mode {
                self.watches.set_server_mode(&path, mode);
            }
            return;
        }
        let mut frame = Vec::new();
        if encode_request(&mut frame, self.config.max_request, 0, &request).is_err() {
            return;
        }
        self.pipe.queue.push_back(Pending {
            origin: Origin::Internal(internal),
            op: request.op_code(),
            frame,
            path,
            deadline: None,
            needs: None,
            auth: None,
        });
        self.flush_queue(now);
    }

    // ---- transport inputs ------------------------------------------------------------------

    /// The driver's TCP connection `conn` is open; the handshake starts.
    pub fn handle_connected(&mut self, now: Instant, conn: ConnId) {
        let Link::Dialing {
            conn: c,
            host,
            deadline,
        } = self.link
        else {
            self.close_out.push_back(conn);
            return;
        };
        if c != conn {
            self.close_out.push_back(conn);
            return;
        }
        let sent_session_id = if self.seen_rw { self.session_id } else { 0 };
        let password = if sent_session_id != 0 {
            self.password.clone()
        } else {
            Bytes::from_static(&[0; PASSWORD_LEN])
        };
        let req = ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: self.last_zxid,
            timeout: duration_ms(self.config.session_timeout),
            session_id: sent_session_id,
            passwd: password,
            read_only: Some(self.config.read_only),
        };
        self.out.clear();
        if encode_connect_request(&mut self.out, usize::MAX, &req).is_err() {
            // Unreachable with an unbounded limit; treat as a failed attempt all the same.
            self.link_down(now, true, "could not encode the ConnectRequest");
            return;
        }
        debug!(conn = conn.0, host, session = sent_session_id, "handshake");
        self.link = Link::Handshaking {
            conn,
            host,
            deadline,
            decoder: FrameDecoder::new(self.config.max_frame),
            sent_session_id,
        };
    }

    /// Bytes arrived on `conn`, in any split of the stream.
    pub fn handle_bytes(&mut self, now: Instant, conn: ConnId, data: &[u8]) {
        match &mut self.link {
            Link::Handshaking {
                conn: c, decoder, ..
            }
            | Link::Up {
                conn: c, decoder, ..
            } if *c == conn => decoder.extend(data),
            _ => return,
        }
        loop {
            let next = match &mut self.link {
                Link::Handshaking {
                    conn: c, decoder, ..
                }
                | Link::Up {
                    conn: c, decoder, ..
                } if *c == conn => decoder.next_frame(),
                _ => return,
            };
            match next {
                Ok(None) => break,
                Ok(Some(frame)) => {
                    self.last_heard = now;
                    if let Link::Up { last_recv, .. } = &mut self.link {
                        *last_recv = now;
                    }
                    self.handle_frame(now, frame);
                }
                Err(e) => {
                    self.protocol_error(now, true, &format!("bad frame: {e}"));
                    return;
                }
            }
        }
        // Replies made room for requests held back by `max_in_flight`.
        if !self.pipe.queue.is_empty() {
            self.flush_queue(now);
        }
    }

    /// The connection `conn` closed or could not be opened.
    pub fn handle_closed(&mut self, now: Instant, conn: ConnId) {
        if self.current_conn() != Some(conn) {
            return;
        }
        let why = match self.link {
            Link::Dialing { .. } => "connection failed",
            Link::Handshaking { .. } => "connection closed during the handshake",
            _ => "connection closed",
        };
        self.attempt_failed(why);
        self.link_down(now, false, why);
    }

    /// Dialing `conn` failed (refused, unreachable, name not resolved...): does what
    /// [`handle_closed`](Self::handle_closed) does for it and records `cause`, e.g. the OS
    /// error's text, as the host's entry in [`connect_failures`](Self::connect_failures). Input
    /// for a connection the session has let go is ignored.
    pub fn handle_connect_failed(&mut self, now: Instant, conn: ConnId, cause: &str) {
        if self.current_conn() != Some(conn) {
            return;
        }
        self.attempt_failed(cause);
        self.link_down(now, false, cause);
    }

    // ---- outputs ---------------------------------------------------------------------------

    /// True when a connect, close or probe waits to be taken by `poll_connect`, `poll_close` or
    /// `poll_probe` (a driver that lets callers write can tell whether it must wake up).
    pub fn wants_transport(&self) -> bool {
        self.connect_out.is_some() || !self.close_out.is_empty() || !self.probing.out.is_empty()
    }

    /// The next host to dial, if the session wants one.
    #[must_use]
    pub fn poll_connect(&mut self) -> Option<Connect> {
        self.connect_out.take()
    }

    /// A connection the driver should close (the session has already let go of it).
    #[must_use]
    pub fn poll_close(&mut self) -> Option<ConnId> {
        self.close_out.pop_front()
    }

    /// A four-letter word to send to a server.
    #[must_use]
    pub fn poll_probe(&mut self) -> Option<Probe> {
        self.probing.out.pop_front()
    }

    /// Appends the bytes to write to the current connection to `buf` and names the connection,
    /// or returns `None` when there is nothing to send.
    #[must_use]
    pub fn poll_transmit(&mut self, buf: &mut Vec<u8>) -> Option<ConnId> {
        if self.out.is_empty() {
            return None;
        }
        let conn = match &self.link {
            Link::Handshaking { conn, .. } | Link::Up { conn, .. } => *conn,
            _ => {
                self.out.clear();
                return None;
            }
        };
        if buf.is_empty() {
            std::mem::swap(buf, &mut self.out);
        } else {
            buf.extend_from_slice(&self.out);
            self.out.clear();
        }
        Some(conn)
    }

    /// The next reply, watch event or state change.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    // ---- internals: connections ------------------------------------------------------------

    fn timeout_base(&self) -> Duration {
        self.negotiated.unwrap_or(self.config.session_timeout)
    }

    fn read_timeout(&self) -> Duration {
        self.timeout_base() * 2 / 3
    }

    fn connect_timeout(&self) -> Duration {
        self.config.connect_timeout.unwrap_or_else(|| {
            let n = self.config.connect_string.hosts.len().max(1) as u32;
            (self.timeout_base() / n).max(Duration::from_millis(1))
        })
    }

    fn schedule_dial(&mut self, now: Instant) {
        let (host, delay) = self.rotation.next(&mut self.rng);
        self.link = Link::Idle {
            at: now + delay,
            host,
        };
    }

    fn dial(&mut self, now: Instant) {
        let Link::Idle { host, .. } = self.link else {
            return;
        };
        let conn = ConnId(self.next_conn);
        self.next_conn += 1;
        let addr = self.config.connect_string.hosts[host].clone();
        debug!(conn = conn.0, %addr, "dial");
        self.connect_out = Some(Connect { conn, addr });
        self.link = Link::Dialing {
            conn,
            host,
            deadline: now + self.connect_timeout(),
        };
    }

    /// The current connection is gone (closed by the peer, failed, timed out, or dropped by us
    /// when `ours`). Fails what was in flight and schedules the next attempt.
    fn link_down(&mut self, now: Instant, ours: bool, why: &str) {
        let Some(conn) = self.current_conn() else {
            return;
        };
        debug!(conn = conn.0, why, "link down");
        if ours {
            self.close_out.push_back(conn);
        }
        if self.connect_out.as_ref().is_some_and(|c| c.conn == conn) {
            self.connect_out = None;
        }
        self.out.clear();
        self.link = Link::Down;
        if matches!(self.phase, Phase::Closing { .. }) {
            self.finish_close();
            return;
        }
        self.pipe
            .fail_in_flight(Error::ConnectionLoss, &mut self.events);
        // Server watches belong to the connection; the next one starts with none.
        self.watches.forget_server_modes();
        self.set_watches_in_flight = 0;
        self.rearm_pending = false;
        self.probing.open.clear();
        self.probing.ro_at = None;
        if self.config.server_version.is_none() {
            self.version = VersionState::Unknown;
        }
        if self.session_id != 0 {
            self.set_state(SessionState::Suspended);
        }
        self.schedule_dial(now);
    }

    /// Records why the connection attempt in progress failed, against its host; does nothing
    /// once the session is attached to the connection (that is a lost link, not a failed
    /// attempt).
    fn attempt_failed(&mut self, cause: &str) {
        let (Link::Dialing { host, .. } | Link::Handshaking { host, .. }) = self.link else {
            return;
        };
        let Some(addr) = self.config.connect_string.hosts.get(host) else {
            return;
        };
        match self.connect_failures.iter_mut().find(|f| f.host == *addr) {
            Some(f) => cause.clone_into(&mut f.cause),
            None => self.connect_failures.push(HostFailure {
                host: addr.clone(),
                cause: cause.to_owned(),
            }),
        }
    }

    fn protocol_error(&mut self, now: Instant, blame_head: bool, why: &str) {
        warn!(why, "protocol error; dropping the connection");
        if matches!(self.link, Link::Handshaking { .. }) {
            self.attempt_failed(&format!("handshake failed: {why}"));
        }
        if blame_head {
            if let Some(head) = self.pipe.in_flight.front_mut() {
                if let (Origin::User { id, .. }, false) = (head.origin, head.timed_out) {
                    head.timed_out = true;
                    self.events.push_back(Event::Reply {
                        id,
                        result: Err(Error::Protocol(why.to_owned())),
                        watcher: None,
                    });
                }
            }
        }
        self.link_down(now, true, why);
    }

    // ---- internals: frames -----------------------------------------------------------------

    fn handle_frame(&mut self, now: Instant, frame: Bytes) {
        if let Link::Handshaking {
            sent_session_id, ..
        } = self.link
        {
            match decode_connect_response(frame) {
                Ok(resp) => self.on_connect_response(now, resp, sent_session_id),
                Err(e) => self.protocol_error(now, false, &format!("bad ConnectResponse: {e}")),
            }
            return;
        }
        let (header, body) = match decode_reply_header(frame) {
            Ok(x) => x,
            Err(e) => return self.protocol_error(now, true, &format!("bad reply header: {e}")),
        };
        match header.xid {
            xid::NOTIFICATION => match decode_notification(body) {
                Ok(ev) => self.on_notification(ev, header.zxid),
                Err(e) => self.protocol_error(now, false, &format!("bad notification: {e}")),
            },
            xid::PING => {}
            xid::AUTH => {
                let Some((waiter, _)) = self.pipe.auth_in_flight.pop_front() else {
                    return self.protocol_error(now, false, "auth reply with no auth request");
                };
                if header.err.is_ok() {
                    if let Some(id) = waiter {
                        self.events.push_back(Event::Reply {
                            id,
                            result: Ok(Response::Empty),
                            watcher: None,
                        });
                    }
                } else {
                    warn!(err = %header.err, "authentication failed");
                    if let Some(id) = waiter {
                        self.events.push_back(Event::Reply {
                            id,
                            result: Err(Error::AuthFailed),
                            watcher: None,
                        });
                    }
                    self.session_lost(now, LostReason::AuthFailed);
                }
            }
            xid::SET_WATCHES => {
                if self.set_watches_in_flight == 0 {
                    return self.protocol_error(now, false, "setWatches reply with no request");
                }
                self.set_watches_in_flight -= 1;
                // A re-arm of many watches takes several frames, and the catch-up events of a
                // later frame come after the reply to an earlier one. Were the earlier reply's
                // zxid the last seen, and the connection died before the later frames were
                // answered, the next re-arm would be relative to a zxid past changes those
                // watchers never heard of. The last reply follows every catch-up event.
                if self.set_watches_in_flight == 0 {
                    self.note_zxid(header.zxid);
                }
                if !header.err.is_ok() {
                    warn!(err = %header.err, "setWatches failed");
                }
            }
            x => {
                let Some((head_xid, head_op)) = self.pipe.in_flight.front().map(|h| (h.xid, h.op))
                else {
                    let why = format!("reply xid {x} with nothing in flight");
                    return self.protocol_error(now, false, &why);
                };
                if head_xid != x {
                    let why =
                        format!("reply xid {x} does not match the oldest request's xid {head_xid}");
                    return self.protocol_error(now, false, &why);
                }
                self.note_zxid(header.zxid);
                if head_op == OpCode::Sasl && self.sasl.is_some() {
                    self.pipe.in_flight.pop_front();
                    return self.on_sasl_reply(now, &header, body);
                }
                match decode_reply(&header, head_op, body) {
                    Ok(result) => {
                        if let Some(head) = self.pipe.in_flight.pop_front() {
                            self.complete(header.zxid, head, result);
                        }
                        self.pipe.drain_local_heads(&mut self.events);
                    }
                    Err(e) => self.protocol_error(now, true, &format!("bad reply body: {e}")),
                }
            }
        }
    }

    fn note_zxid(&mut self, zxid: i64) {
        if zxid > self.last_zxid {
            self.last_zxid = zxid;
        }
    }

    fn complete(&mut self, zxid: i64, head: InFlight, result: Result<Response, ErrorCode>) {
        match head.origin {
            Origin::Close => self.finish_close(),
            Origin::Internal(Internal::RemoveWatch | Internal::Sasl) => {}
            Origin::Internal(Internal::Downgrade) => {
                if result.is_ok() {
                    self.watches
                        .set_server_mode(&head.path, WatchKind::Persistent);
                }
            }
            Origin::User { id, watch, rides } => {
                if head.timed_out {
                    return;
                }
                let armed = match (&result, watch) {
                    (Ok(_), Some(w)) => w.kind(true),
                    (Err(ErrorCode::NoNode), Some(w)) => w.kind(false),
                    _ => None,
                };
                let watcher = armed.map(|kind| {
                    self.watches.add(&head.path, kind, id.watcher());
                    id.watcher()
                });
                if let (true, Some(kind)) = (rides, armed) {
                    if self.watches.server_mode(&head.path).is_none() {
                        // The persistent watch it meant to ride on went away meanwhile (the
                        // session keeps it while riders are in flight, so this is a safety net):
                        // arm a one-shot watch as of this read, so a change since still fires.
                        debug!(
                            path = head.path,
                            "rider lost its persistent watch; arming late"
                        );
                        self.arm_after_read(&head.path, kind, zxid);
                    }
                }
                if let (Ok(_), Some(WatchIntent::Add { server, .. })) = (&result, watch) {
                    self.watches.set_server_mode(&head.path, server);
                }
                if let (Ok(_), Some(WatchIntent::Remove(t))) = (&result, watch) {
                    for watcher in self.watches.remove_matching(&head.path, t) {
                        self.events.push_back(Event::WatchEnded {
                            watcher,
                            reason: WatchEnd::Removed,
                        });
                    }
                }
                let result = match result {
                    Ok(mut resp) => {
                        requests::strip_chroot(&self.config.connect_string.chroot, &mut resp);
                        Ok(resp)
                    }
                    Err(code) => Err(Error::from_code(code, crate::path::shown(&head.path))),
                };
                self.events.push_back(Event::Reply {
                    id,
                    result,
                    watcher,
                });
            }
        }
    }

    fn on_notification(&mut self, ev: crate::proto::WatcherEvent, zxid: i64) {
        debug!(path = ev.path, event = ?ev.event_type, zxid, "watch notification");
        // Outside the chroot only watches set with `absolute_path` (on `/zookeeper/config`) are
        // under the key; anything else finds no watcher.
        let path = self
            .config
            .connect_string
            .chroot
            .key_of_server(&ev.path)
            .into_owned();
        // A server from 3.9 adds a recursive watch to a persistent one on the same path rather
        // than replacing it (until a reconnect re-arms the recursive one alone), and then sends
        // the NodeChildrenChanged we derived when the child's event came (the server sends the
        // child's event first). Notifications carry their zxid from 3.9, which tells the two
        // apart from a second change of the same transaction.
        if self.derived_children.0 != zxid {
            self.derived_children = (zxid, BTreeMap::new());
        }
        if ev.event_type == EventType::NodeChildrenChanged && zxid != -1 {
            if let Some(n) = self.derived_children.1.get_mut(&path).filter(|n| **n > 0) {
                *n -= 1;
                return;
            }
        }
        self.fan_out(ev.event_type, &path, zxid);
        if let Some(parent) = self.watches.child_event_to_derive(ev.event_type, &path) {
            let parent = parent.to_owned();
            self.fan_out(EventType::NodeChildrenChanged, &parent, zxid);
            if zxid != -1 {
                *self.derived_children.1.entry(parent).or_insert(0) += 1;
            }
        }
    }

    fn fan_out(&mut self, event_type: EventType, path: &str, zxid: i64) {
        let mut targets = std::mem::take(&mut self.scratch);
        self.watches.dispatch(event_type, path, &mut targets);
        for watcher in targets.drain(..) {
            self.events.push_back(Event::Watch {
                watcher,
                event: WatchedEvent {
                    event_type,
                    path: crate::path::shown(path).to_owned(),
                    zxid,
                    state: self.state,
                },
            });
        }
        self.scratch = targets;
    }

    fn on_connect_response(
        &mut self,
        now: Instant,
        resp: crate::proto::ConnectResponse,
        sent_session_id: i64,
    ) {
        if resp.timeout <= 0 {
            if self.session_id != 0 {
                warn!(
                    session = self.session_id,
                    "the server says the session has expired"
                );
                self.session_lost(now, LostReason::Expired);
            } else {
                self.protocol_error(now, false, "server refused to create a session");
            }
            return;
        }
        if sent_session_id != 0 && resp.session_id != sent_session_id {
            warn!(
                resumed = sent_session_id,
                got = resp.session_id,
                "resume answered with another session: the old one is gone"
            );
            self.session_lost(now, LostReason::Expired);
            return;
        }
        let read_only = resp.read_only == Some(true);
        if self.session_id != 0 && resp.session_id != self.session_id {
            // Only reachable before any read-write server accepted us: the read-only session was
            // provisional, as in the Java client.
            debug!(
                old = self.session_id,
                new = resp.session_id,
                "session replaced after read-only"
            );
        }
        self.session_id = resp.session_id;
        self.password = resp.passwd;
        self.negotiated = Some(Duration::from_millis(resp.timeout as u64));
        if !read_only {
            self.seen_rw = true;
        }
        self.rotation.connected();
        self.connect_failures.clear();
        let link = std::mem::replace(&mut self.link, Link::Down);
        let Link::Handshaking {
            conn,
            host,
            decoder,
            ..
        } = link
        else {
            self.link = link;
            return;
        };
        self.link = Link::Up {
            conn,
            host,
            decoder,
            last_send: now,
            last_recv: now,
            read_only,
        };
        debug!(
            conn = conn.0,
            session = self.session_id,
            read_only,
            "session attached"
        );
        if let Some(factory) = self.config.sasl.clone() {
            let Some(server) = self.config.connect_string.hosts.get(host).cloned() else {
                return self.protocol_error(now, false, "attached to a host not in the list");
            };
            let mut client = factory.start(&server);
            match client.initial() {
                Ok(token) => {
                    self.send_sasl(now, token);
                    self.sasl = Some(SaslRun { client, read_only });
                }
                Err(why) => {
                    let why = format!("{} authentication failed: {why}", client.mechanism());
                    self.sasl_failed(now, why);
                }
            }
            return;
        }
        self.link_ready(now, read_only);
    }

    /// Sends one SASL token (op 102, a normal xid).
    fn send_sasl(&mut self, now: Instant, token: Vec<u8>) {
        let xid = self.pipe.peek_xid();
        self.pipe.advance_xid();
        let request = Request::Sasl(crate::proto::SaslToken {
            token: Some(Bytes::from(token)),
        });
        let _ = encode_request(&mut self.out, usize::MAX, xid, &request);
        self.push_in_flight(
            now,
            xid,
            OpCode::Sasl,
            Origin::Internal(Internal::Sasl),
            String::new(),
            None,
        );
    }

    /// The server answered a SASL token: feed its token to the mechanism, send the answer, or
    /// finish the connection's set-up once the mechanism is complete.
    fn on_sasl_reply(
        &mut self,
        now: Instant,
        header: &crate::proto::ReplyHeader,
        body: crate::proto::Reader,
    ) {
        let Some(mut run) = self.sasl.take() else {
            return self.protocol_error(now, false, "SASL reply with no SASL exchange");
        };
        let mech = run.client.mechanism().to_owned();
        if !header.err.is_ok() {
            let why = format!(
                "{mech} authentication failed: the server answered {} ({})",
                header.err,
                run.client.refusal_hint()
            );
            return self.sasl_failed(now, why);
        }
        let token = match decode_reply(header, OpCode::Sasl, body) {
            Ok(Ok(Response::Sasl(t))) => t.token.unwrap_or_default(),
            Ok(_) => Bytes::new(),
            Err(e) => return self.protocol_error(now, false, &format!("bad SASL reply: {e}")),
        };
        match run.client.step(&token) {
            Err(why) => self.sasl_failed(now, format!("{mech} authentication failed: {why}")),
            Ok(Some(answer)) => {
                self.send_sasl(now, answer);
                self.sasl = Some(run);
            }
            Ok(None) if run.client.is_complete() => {
                debug!(mechanism = %mech, "SASL authenticated");
                self.link_ready(now, run.read_only);
            }
            Ok(None) => self.sasl_failed(
                now,
                format!("{mech} authentication failed: the exchange ended unfinished"),
            ),
        }
    }

    /// Authentication failed: the session ends with `Lost(AuthFailed)`, saying why.
    fn sasl_failed(&mut self, now: Instant, why: String) {
        warn!(why = %why, "SASL authentication failed");
        if let Link::Up { host, .. } = self.link {
            if let Some(addr) = self.config.connect_string.hosts.get(host) {
                self.connect_failures.push(HostFailure {
                    host: addr.clone(),
                    cause: why.clone(),
                });
            }
        }
        self.auth_failure = Some(why);
        self.session_lost(now, LostReason::AuthFailed);
    }

    /// The connection is usable: enter the connected state, replay credentials, re-arm the
    /// watches and send what waited.
    fn link_ready(&mut self, now: Instant, read_only: bool) {
        self.set_state(if read_only {
            SessionState::ConnectedReadOnly
        } else {
            SessionState::Connected
        });
        if read_only {
            self.probing.ro_backoff = self.config.read_only_probe_initial;
            self.schedule_ro_probe(now);
        }
        // Order matters: credentials first (the server must know us before anything else),
        // then the watches, then whatever waited for the connection.
        for c in self.credentials.clone() {
            self.send_auth(&c);
            self.pipe.auth_in_flight.push_back((None, None));
        }
        if !self.watches.is_empty() {
            self.rearm_pending = true;
        }
        self.version_settled(now);
    }

    fn send_auth(&mut self, c: &Credentials) {
        let packet = Request::Auth(AuthPacket {
            auth_type: 0,
            scheme: c.scheme.clone(),
            auth: c.auth.clone(),
        });
        let _ = encode_request(&mut self.out, usize::MAX, xid::AUTH, &packet);
    }

    // ---- internals: requests ---------------------------------------------------------------

    fn check_accepting(&self) -> Result<(), Error> {
        match self.phase {
            Phase::Running => Ok(()),
            Phase::Closing { .. } => Err(Error::Closed),
            Phase::Ended(reason) => Err(reason.error()),
        }
    }

    // ---- internals: the end of a session -----------------------------------------------------

    fn set_state(&mut self, state: SessionState) {
        if self.state != state {
            self.state = state;
            self.events.push_back(Event::State(state));
        }
    }

    fn drop_link(&mut self) {
        if let Some(conn) = self.current_conn() {
            self.close_out.push_back(conn);
        }
        self.connect_out = None;
        self.out.clear();
        self.link = Link::Down;
        self.sasl = None;
        self.probing.open.clear();
        self.probing.ro_at = None;
        self.rearm_pending = false;
        self.set_watches_in_flight = 0;
    }

    /// The session is over for `reason`: every watcher and every pending request is told.
    /// After an expiry a new session starts if so configured.
    fn session_lost(&mut self, now: Instant, reason: LostReason) {
        self.drop_link();
        self.set_state(SessionState::Lost(reason));
        for watcher in self.watches.drain() {
            self.events.push_back(Event::WatchEnded {
                watcher,
                reason: WatchEnd::SessionLost(reason),
            });
        }
        self.pipe.fail_in_flight(reason.error(), &mut self.events);
        self.pipe.fail_queue(reason.error(), &mut self.events);
        self.pipe.deadlines.clear();
        self.session_id = 0;
        self.password = Bytes::from_static(&[0; PASSWORD_LEN]);
        self.negotiated = None;
        self.seen_rw = false;
        if self.config.server_version.is_none() {
            self.version = VersionState::Unknown;
        }
        if reason == LostReason::Expired && self.config.renew_after_expiry {
            self.set_state(SessionState::Connecting);
            self.last_heard = now;
            self.schedule_dial(now);
        } else {
            self.phase = Phase::Ended(reason);
        }
    }

    fn finish_close(&mut self) {
        self.drop_link();
        // Every request is resolved below; their deadlines no longer need wakeups.
        self.pipe.deadlines.clear();
        self.phase = Phase::Ended(LostReason::Closed);
        self.set_state(SessionState::Lost(LostReason::Closed));
        for watcher in self.watches.drain() {
            self.events.push_back(Event::WatchEnded {
                watcher,
                reason: WatchEnd::SessionLost(LostReason::Closed),
            });
        }
        self.pipe.fail_in_flight(Error::Closed, &mut self.events);
        self.pipe.fail_queue(Error::Closed, &mut self.events);
    }
}

fn duration_ms(d: Duration) -> i32 {
    d.as_millis().min(i32::MAX as u128) as i32
}
