//! The [`Client`] handle and its [`ClientBuilder`]: session facts (state, client id, zxid,
//! chroot, hosts, server version), starting, closing and restarting.
//!
//! A `Client` is one concrete type whatever the runtime (it holds the runtime as
//! `Arc<dyn Runtime>`), cheap to clone and `Send + Sync`; every clone drives the same session.
//! When the last clone is dropped the session is closed, as kazoo's `stop()` would.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_core::Stream;
use zk_core::hosts::ReconnectPolicy;
use zk_core::proto::Acl;
use zk_core::retry::RetryPolicy;
use zk_core::session::Credentials;
use zk_core::{
    ConnectString, Error, HostAddr, ServerVersion, Session, SessionConfig, SessionId, SessionState,
};

use crate::data::Data;
use crate::driver::Driver;
use crate::engine::Engine;
use crate::four_letter::four_letter_word_over;
use crate::runtime::{sleep_until, Runtime};
use crate::tls::{Connector, TlsConfig};

/// Largest four-letter-word answer `command` reads (mntr and dump can be long).
const COMMAND_MAX_BYTES: usize = 4 * 1024 * 1024;

/// Options that shape requests rather than the session.
/// The default of [`ClientBuilder::watch_queue_limit`].
pub const DEFAULT_WATCH_QUEUE_LIMIT: usize = 10_000;

#[derive(Debug, Clone)]
pub(crate) struct ClientOptions {
    pub(crate) default_acl: Arc<[Acl]>,
    /// How long `start()`/`connect()` wait for the session.
    pub(crate) connect_timeout: Duration,
    /// The policy of [`Client::retry`] (kazoo's `command_retry`).
    pub(crate) command_retry: RetryPolicy,
    /// Most items a watch's mailbox holds for a consumer that does not read.
    pub(crate) watch_queue_limit: usize,
    /// Follow `/zookeeper/config` into `set_hosts` ([`ClientBuilder::track_ensemble`]).
    pub(crate) track_ensemble: bool,
}

/// A handle to one ZooKeeper session. Cheap to clone, `Send + Sync`, and the same type on every
/// runtime: a library can take `&zk_client::Client` without knowing which runtime its caller
/// uses.
pub struct Client {
    pub(crate) engine: Arc<Engine>,
    pub(crate) opts: Arc<ClientOptions>,
    config: Arc<SessionConfig>,
    /// Whether this handle keeps the session open. Recipes (DataWatch, ChildrenWatch) hold
    /// handles that do not, so dropping every user handle still closes the session.
    counted: bool,
}

impl Clone for Client {
    fn clone(&self) -> Self {
        self.engine.add_handle();
        Client {
            engine: self.engine.clone(),
            opts: self.opts.clone(),
            config: self.config.clone(),
            counted: true,
        }
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        if self.counted {
            self.engine.drop_handle();
        }
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("hosts", &self.config.connect_string.to_string())
            .field("state", &self.engine.state())
            .field("session_id", &self.engine.session_id().map(|s| s.id))
            .finish()
    }
}

impl Client {
    /// A builder for a client of `connect_string` (`h1:2181,h2:2181/chroot`) on `runtime`. The
    /// runtime crates have shortcuts: `zk_tokio::connect(..)`, `zk_tokio::builder(..)`.
    pub fn builder(runtime: Arc<dyn Runtime>, connect_string: &str) -> ClientBuilder {
        ClientBuilder::new(runtime, connect_string)
    }

    /// A handle to the same session that does not keep it open: when every ordinary handle is
    /// dropped, the session is closed even while such handles live (their requests then fail
    /// with Closed). For tasks that work for the user's handles, such as a recipe's background
    /// task, and must not outlive them.
    pub fn background_handle(&self) -> Self {
        self.uncounted()
    }

    /// A handle that does not keep the session open (for recipes that live beside the user's
    /// handles).
    pub(crate) fn uncounted(&self) -> Self {
        Client {
            engine: self.engine.clone(),
            opts: self.opts.clone(),
            config: self.config.clone(),
            counted: false,
        }
    }

    // ---- session facts -------------------------------------------------------------------

    /// The session's state now.
    pub fn state(&self) -> SessionState {
        self.engine.state()
    }

    /// True while connected to a server (read-write or read-only).
    pub fn is_connected(&self) -> bool {
        self.state().is_connected()
    }

    /// Every state change from now on, as a stream (kazoo's `add_listener`). Subscribe on a
    /// client from [`ClientBuilder::build`] before [`start`](Self::start) to see every state of
    /// the session, the first `Connected` included. The states are `Connecting` (no session yet:
    /// the first handshake, or the first after an expiry), `Connected`, `ConnectedReadOnly`,
    /// `Suspended` and `Lost(reason)`. The stream ends when the client's driver stops.
    pub fn state_changes(&self) -> StateChanges {
        StateChanges {
            id: self.engine.subscribe_state(),
            engine: self.engine.clone(),
        }
    }

    /// The session id and password (kazoo's `client_id`) while there is a live session
    /// (connected or suspended); `None` before the first one, after `close()`, and once a session
    /// is lost. Give it to [`ClientBuilder::resume`] to take the session over from another
    /// process; it is saved and loaded as text with `to_string()` and `parse()`.
    pub fn client_id(&self) -> Option<SessionId> {
        self.engine.session_id()
    }

    /// The session timeout the server granted, once connected.
    pub fn session_timeout(&self) -> Option<Duration> {
        self.engine.negotiated_timeout()
    }

    /// The highest zxid this client has seen.
    pub fn last_zxid(&self) -> i64 {
        self.engine.last_zxid()
    }

    /// The seed of this client's random choices (host order, jitter), as configured.
    pub(crate) fn rng_seed(&self) -> u64 {
        self.config.rng_seed
    }

    /// The chroot of the connect string, if any.
    pub fn chroot(&self) -> Option<String> {
        self.config
            .connect_string
            .chroot
            .as_str()
            .map(str::to_owned)
    }

    /// The servers the session may use: those of the connect string, or of the last
    /// [`set_hosts`](Self::set_hosts).
    pub fn hosts(&self) -> Vec<HostAddr> {
        self.engine.hosts()
    }

    /// Replaces the servers the session may use (kazoo's `set_hosts`), e.g. after the ensemble
    /// moved: `hosts` is a connect string without a chroot (`h1:2181,h2:2181`). The session
    /// stays; if its server is not in the new list, the connection is dropped (state
    /// `Suspended`; in-flight requests fail with ConnectionLoss) and the session resumes on one
    /// of the new servers.
    ///
    /// Errors with [`Error::InvalidArgument`] for a malformed or empty list or one with a chroot
    /// (the chroot cannot change), and with the session's state errors when no session is live.
    pub fn set_hosts(&self, hosts: &str) -> Result<(), Error> {
        let parsed = ConnectString::parse(hosts)?;
        if parsed.chroot.as_str().is_some() {
            return Err(Error::InvalidArgument(format!(
                "set_hosts({hosts:?}): a host list cannot change the chroot"
            )));
        }
        self.engine.set_hosts(parsed.hosts)
    }

    /// Why authentication failed, once the session has ended with `Lost(AuthFailed)` because a
    /// SASL login was refused: the mechanism and the server's answer (e.g. a wrong password).
    pub fn auth_failure(&self) -> Option<String> {
        self.engine.auth_failure()
    }

    /// The server the session is attached to, if connected.
    pub fn current_host(&self) -> Option<HostAddr> {
        self.engine.current_host()
    }

    /// The connected server's version, asking it with `srvr` if it is not known yet.
    ///
    /// Errors with [`Error::ConnectionLoss`] when not connected, [`Error::Io`] when the
    /// four-letter word fails, and [`Error::Protocol`] when its answer has no version.
    pub async fn server_version(&self) -> Result<ServerVersion, Error> {
        if let Some(v) = self.engine.server_version() {
            return Ok(v);
        }
        let text = self.command("srvr").await?;
        ServerVersion::from_srvr(&text)
            .ok_or_else(|| Error::Protocol(format!("cannot read a version from {text:?}")))
    }

    /// Sends a four-letter word (`ruok`, `srvr`, `mntr`, ...) to the server the session is on
    /// and returns its answer (kazoo's `command`).
    ///
    /// Errors with [`Error::InvalidArgument`] when `word` is not four lowercase ASCII letters,
    /// [`Error::ConnectionLoss`] when not connected, and [`Error::Io`] carrying the I/O error if
    /// the exchange fails.
    pub async fn command(&self, word: &str) -> Result<String, Error> {
        crate::four_letter::check_word(word)?;
        let host = self.current_host().ok_or(Error::ConnectionLoss)?;
        // Through the engine's connector, so a TLS-only port is asked over TLS.
        four_letter_word_over(
            self.engine.dial(host.host, host.port, None),
            word,
            COMMAND_MAX_BYTES,
        )
        .await
        .map_err(|e| Error::Io(format!("{word}: {e}")))
    }

    // ---- starting ---------------------------------------------------------------------------

    /// Starts the session without waiting for it (kazoo's `start_async`); requests made before
    /// the session is up wait for it. Does nothing if the client was started already.
    ///
    /// Errors with [`Error::Runtime`] if the runtime cannot start the driver task (zk-tokio
    /// outside a tokio runtime, a thread that cannot be created); the session is closed then.
    pub fn start_async(&self) -> Result<(), Error> {
        if !self.engine.mark_started() {
            return Ok(());
        }
        let generation = self.engine.generation();
        Driver::spawn(&self.engine, generation)
            .map_err(|e| Error::Runtime(format!("cannot start the client's driver: {e}")))?;
        self.spawn_tracker(generation)
    }

    /// Starts the ensemble tracker for the session of `generation`, if tracking is on.
    fn spawn_tracker(&self, generation: u64) -> Result<(), Error> {
        if !self.opts.track_ensemble {
            return Ok(());
        }
        // A background handle: the tracker never keeps the session open, and ends when the
        // driver stops or restart() replaces the session.
        let tracker = crate::ensemble::track(self.background_handle(), generation);
        self.runtime()
            .spawn(Box::pin(tracker))
            .map_err(|e| Error::Runtime(format!("cannot start the ensemble tracker: {e}")))
    }

    /// Starts the session (if it is not started) and waits until it is established, at most the
    /// builder's connect timeout (kazoo's `start(timeout)`).
    ///
    /// Errors with [`Error::ConnectFailed`] naming the last failure of each server tried when no
    /// session was established in time, [`Error::AuthFailed`] or [`Error::SessionExpired`] if the
    /// session could not be established (a resumed session that expired, without renewal), and
    /// [`Error::Runtime`] as [`start_async`](Self::start_async), or when the driver task was
    /// spawned but never ran within a connect timeout of a second or more (an executor nobody
    /// runs). The session is left running after an error; `close()` it if it is not wanted.
    pub async fn start(&self) -> Result<(), Error> {
        // Subscribe before the driver runs: on a multi-threaded runtime it may connect, or
        // learn of an expiry and stop, before this task looks.
        let changes = StateChanges {
            id: self.engine.subscribe_state(),
            engine: self.engine.clone(),
        };
        self.start_async()?;
        wait_connected(changes, self.opts.connect_timeout).await
    }

    // ---- ending ---------------------------------------------------------------------------

    /// Ends the session (kazoo's `stop()`): sends closeSession, waits for the server to confirm
    /// (bounded by the close timeout), and stops the driver. Pending requests fail with
    /// [`Error::Closed`]; ephemeral nodes go away. Returns once the session is over.
    pub async fn close(&self) {
        let mut changes = self.state_changes();
        if matches!(self.engine.close(), SessionState::Lost(_)) {
            return;
        }
        while let Some(state) = StreamNext(&mut changes).await {
            if matches!(state, SessionState::Lost(_)) {
                return;
            }
        }
    }

    /// Closes the session and starts a new one on this same handle (kazoo's `restart()`). Every
    /// clone of this client follows; watchers of the old session end; state streams carry on
    /// into the new session; with [`ClientBuilder::track_ensemble`] on, the new session gets a
    /// tracker of its own. The new session uses the current host list ([`set_hosts`](Self::set_hosts)
    /// included), not the connect string's.
    ///
    /// Errors as [`start`](Self::start) does for the new session.
    pub async fn restart(&self) -> Result<(), Error> {
        self.close().await;
        let now = self.engine.now();
        let mut config = (*self.config).clone();
        config.resume = None;
        // As kazoo's restart: the servers set_hosts (or the ensemble tracker) gave last, not
        // those of the connect string, which may be gone.
        config.connect_string.hosts = self.engine.hosts();
        config.rng_seed = config.rng_seed.wrapping_add(self.engine.generation() + 1);
        // Whatever the old driver is doing, it is stale once the session is replaced: every
        // driver-side call checks the generation under the lock.
        let generation = self.engine.replace_session(Session::new(config, now));
        let changes = StateChanges {
            id: self.engine.subscribe_state(),
            engine: self.engine.clone(),
        };
        Driver::spawn(&self.engine, generation)
            .map_err(|e| Error::Runtime(format!("cannot start the client's driver: {e}")))?;
        self.spawn_tracker(generation)?;
        wait_connected(changes, self.opts.connect_timeout).await
    }

    /// The runtime this client runs on.
    pub fn runtime(&self) -> &Arc<dyn Runtime> {
        self.engine.rt()
    }

    /// Sleeps until `d` has passed, on this client's runtime.
    pub async fn sleep(&self, d: Duration) {
        let rt = self.engine.rt();
        sleep_until(&**rt, rt.now() + d).await
    }
}

/// Waits until connected, failing if the session ends or `timeout` passes. `changes` must have
/// been subscribed before the driver was started, so that no state is missed.
async fn wait_connected(mut changes: StateChanges, timeout: Duration) -> Result<(), Error> {
    let engine = changes.engine.clone();
    match engine.state() {
        s if s.is_connected() => return Ok(()),
        // Ended before this looked (and not renewing: a renewing session is Connecting).
        SessionState::Lost(reason) => return Err(reason.error()),
        _ => {}
    }
    let rt = engine.rt();
    let mut timer = rt.timer(rt.now() + timeout);
    loop {
        let next = std::future::poll_fn(|cx| {
            if timer.poll_fire(cx).is_ready() {
                return Poll::Ready(None);
            }
            Pin::new(&mut changes).poll_next(cx).map(Some)
        })
        .await;
        match next {
            None => {
                // A driver that has not taken a single turn in this long is not slow: nothing
                // runs it. Shorter timeouts say nothing (a driver thread not scheduled yet).
                if timeout >= DRIVER_SILENCE && engine.driver_not_run() {
                    return Err(Error::Runtime(format!(
                        "the client's driver task did not run within the connect timeout \
                         ({} ms): the runtime it was spawned on is not running it (with an \
                         executor of your own, run it while the client is in use)",
                        timeout.as_millis()
                    )));
                }
                return Err(Error::ConnectFailed {
                    causes: engine.connect_failures(),
                });
            }
            Some(None) => return Err(Error::Closed),
            Some(Some(s)) if s.is_connected() => return Ok(()),
            Some(Some(SessionState::Lost(reason))) => {
                // With renewal on, the core is already connecting a new session.
                if matches!(engine.state(), SessionState::Lost(_)) {
                    return Err(reason.error());
                }
            }
            Some(Some(_)) => {}
        }
    }
}

/// How long a driver may go without its first turn before `wait_connected` blames the runtime
/// rather than the servers.
const DRIVER_SILENCE: Duration = Duration::from_secs(1);

/// Polls a stream once to its next item.
pub(crate) struct StreamNext<'a, S>(pub(crate) &'a mut S);

impl<S: Stream + Unpin> Future for StreamNext<'_, S> {
    type Output = Option<S::Item>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut *self.0).poll_next(cx)
    }
}

/// Session state changes, from the moment of subscription (see [`Client::state_changes`]).
pub struct StateChanges {
    id: u64,
    engine: Arc<Engine>,
}

impl std::fmt::Debug for StateChanges {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateChanges")
            .field("id", &self.id)
            .finish()
    }
}

impl StateChanges {
    /// Waits for the next change to a connected state (`Connected` or `ConnectedReadOnly`),
    /// passing over the others; `false` if the stream ends first (the client's driver stopped).
    /// As with the stream, only changes after the subscription count: a client that is
    /// connected already waits for its next reconnect.
    pub async fn next_connected(&mut self) -> bool {
        while let Some(s) = StreamNext(self).await {
            if s.is_connected() {
                return true;
            }
        }
        false
    }
}

impl Stream for StateChanges {
    type Item = SessionState;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<SessionState>> {
        self.engine.poll_state(self.id, cx)
    }
}

impl Drop for StateChanges {
    fn drop(&mut self) {
        self.engine.unsubscribe_state(self.id);
    }
}

/// Configures and starts a [`Client`].
#[derive(Clone)]
pub struct ClientBuilder {
    rt: Arc<dyn Runtime>,
    connect_string: String,
    config: Option<SessionConfig>,
    error: Option<Error>,
    opts: ClientOptions,
    connector: Connector,
}

impl std::fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("runtime", &self.rt)
            .field("connect_string", &self.connect_string)
            .field("config", &self.config)
            .field("error", &self.error)
            .field("opts", &self.opts)
            .field("connector", &self.connector)
            .finish()
    }
}

impl ClientBuilder {
    /// A builder for `connect_string` (`h1:2181,h2:2181/chroot`) on `runtime`. A malformed string
    /// is reported by `build`/`start`/`connect`.
    pub fn new(runtime: Arc<dyn Runtime>, connect_string: &str) -> Self {
        let (config, error) = match ConnectString::parse(connect_string) {
            Ok(cs) => {
                let mut c = SessionConfig::from_connect_string(cs);
                c.rng_seed = seed_from_clock();
                (Some(c), None)
            }
            Err(e) => (None, Some(e)),
        };
        ClientBuilder {
            rt: runtime,
            connect_string: connect_string.to_owned(),
            config,
            error,
            opts: ClientOptions {
                default_acl: Acl::open_unsafe().into(),
                connect_timeout: Duration::from_secs(15),
                command_retry: RetryPolicy::default(),
                watch_queue_limit: DEFAULT_WATCH_QUEUE_LIMIT,
                track_ensemble: false,
            },
            connector: Connector::Plain,
        }
    }

    /// Follow the ensemble's membership (Curator's `EnsembleTracker`; off by default): after
    /// every (re)connect, and whenever it changes, read `/zookeeper/config` (outside any chroot)
    /// and give the client addresses of its servers, participants and observers, to
    /// [`Client::set_hosts`], so the session survives a `reconfig` that moves the ensemble to
    /// other hosts. Needs a server with dynamic reconfiguration (3.5+, `reconfigEnabled=true`);
    /// a standalone server, an unreadable or malformed config is logged and ignored. Under a
    /// chroot the config is watched all the same (its watch is kept apart from client paths). The
    /// tracker stops when the session is closed; [`Client::restart`] starts one for the new
    /// session.
    pub fn track_ensemble(mut self, on: bool) -> Self {
        self.opts.track_ensemble = on;
        self
    }

    fn edit(mut self, f: impl FnOnce(&mut SessionConfig)) -> Self {
        if let Some(c) = &mut self.config {
            f(c);
        }
        self
    }

    /// The session timeout to ask for (default 10 s, as kazoo); the server clamps it.
    pub fn session_timeout(self, t: Duration) -> Self {
        self.edit(|c| c.session_timeout = t)
    }

    /// Resume an existing session (kazoo's `client_id`) instead of creating one.
    pub fn resume(self, id: SessionId) -> Self {
        self.edit(|c| c.resume = Some(id))
    }

    /// Accept a read-only server when no quorum is reachable (default false).
    ///
    /// Server side, ZooKeeper 3.7+ serves read-only clients only with `localSessionsEnabled`,
    /// and a read-only server does not resume a session of the quorum: a client that had a
    /// session sees it expire before it gets a new, read-only one (so this needs
    /// `renew_session_after_expiry(true)`, the default). When the quorum is back the client moves
    /// to a read-write server by itself, and the session it had while read-only is replaced by
    /// one of the quorum (as in the Java client: a read-only session is provisional).
    pub fn read_only(self, allow: bool) -> Self {
        self.edit(|c| c.read_only = allow)
    }

    /// Shuffle the hosts (default true).
    pub fn randomize_hosts(self, on: bool) -> Self {
        self.edit(|c| c.randomize_hosts = on)
    }

    /// Pauses between connection attempts: jitter per attempt, backoff per full pass, its cap.
    pub fn reconnect(self, policy: ReconnectPolicy) -> Self {
        self.edit(|c| c.reconnect = policy)
    }

    /// Per-host connect timeout (TCP plus handshake); default: session timeout / hosts.
    pub fn host_connect_timeout(self, t: Duration) -> Self {
        self.edit(|c| c.connect_timeout = Some(t))
    }

    /// How long `connect()` and [`Client::start`] wait for the session (default 15 s, as
    /// kazoo's `start()`).
    pub fn connect_timeout(mut self, t: Duration) -> Self {
        self.opts.connect_timeout = t;
        self
    }

    /// Connects over TLS with `config` (which CAs to trust, which client certificate to show):
    /// every connection to a server, four-letter words and [`Client::command`] included. The
    /// certificate files are read again for each new connection, so rotated ones are picked up
    /// on reconnect. A TLS failure (unreadable file, untrusted or expired certificate, name
    /// mismatch, refused client certificate) is that host's connect failure, and appears as its
    /// cause in [`Error::ConnectFailed`].
    pub fn tls(mut self, config: TlsConfig) -> Self {
        self.connector = Connector::Tls(Arc::new(config));
        self
    }

    /// The ACL for nodes created without one (default: world:anyone, all permissions). Every
    /// such create shares it instead of copying it.
    pub fn default_acl(mut self, acl: impl Into<Arc<[Acl]>>) -> Self {
        self.opts.default_acl = acl.into();
        self
    }

    /// The retry policy of [`Client::retry`] and of the recipes (kazoo's `command_retry`;
    /// default [`RetryPolicy::default`], kazoo's defaults).
    pub fn command_retry(mut self, policy: RetryPolicy) -> Self {
        self.opts.command_retry = policy;
        self
    }

    /// Credentials sent on every connection (kazoo's `auth_data`).
    pub fn auth(self, scheme: &str, credential: impl Data) -> Self {
        let cred = Credentials {
            scheme: scheme.to_owned(),
            auth: credential.into_bytes(),
        };
        self.edit(|c| c.auth.push(cred))
    }

    /// Digest credentials `user:password`, sent on every connection.
    pub fn digest(self, user: &str, password: &str) -> Self {
        self.edit(|c| c.auth.push(Credentials::digest(user, password)))
    }

    /// Authenticates with SASL DIGEST-MD5 as `user` with `password` (a user of the server's JAAS
    /// `DigestLoginModule`), on every connection before anything else is sent, as the Java client
    /// does. The connection's identity is then `sasl:<user>` (see
    /// [`make_sasl_acl`](crate::make_sasl_acl)). A refused login ends the session with
    /// `Lost(AuthFailed)`; [`Client::auth_failure`] says why.
    pub fn sasl_digest(self, user: &str, password: &str) -> Self {
        let factory = crate::sasl::DigestMd5Factory {
            user: user.to_owned(),
            password: password.to_owned(),
        };
        self.edit(|c| c.sasl = Some(Arc::new(factory)))
    }

    /// Authenticates with Kerberos (SASL GSSAPI, RFC 4752) on every connection before anything
    /// else is sent, as the Java client does with a JAAS `Krb5LoginModule`: a ticket for the
    /// service principal `zookeeper/<host>` (see [`KerberosConfig`](crate::KerberosConfig)),
    /// from the default credential cache or the client keytab (`KRB5_CLIENT_KTNAME`). The
    /// connection's identity is then `sasl:<principal>` as the server maps it (see
    /// [`make_sasl_acl`](crate::make_sasl_acl)). Missing credentials, an unknown server
    /// principal or a refusal by the server end the session with `Lost(AuthFailed)`;
    /// [`Client::auth_failure`] says why. Needs the `gssapi` feature.
    #[cfg(feature = "gssapi")]
    pub fn sasl_kerberos(self, config: crate::KerberosConfig) -> Self {
        let factory = crate::kerberos::GssapiFactory { config };
        self.edit(|c| c.sasl = Some(Arc::new(factory)))
    }

    /// Fail requests that get no reply within `t` (default: wait while the session lives).
    pub fn request_timeout(self, t: Duration) -> Self {
        self.edit(|c| c.request_timeout = Some(t))
    }

    /// Largest frame accepted from a server (default 1 MiB + 64 KiB).
    pub fn max_frame(self, bytes: usize) -> Self {
        self.edit(|c| c.max_frame = bytes)
    }

    /// Most requests sent and not yet answered (default 2,000, twice the server's own
    /// `globalOutstandingLimit`; 0 counts as 1). Requests beyond it wait on the client, in
    /// order, and go out as replies arrive: callers wait, they do not fail, and a request's
    /// timeout counts the wait. This keeps a burst (a herd of watchers re-reading after an
    /// election, say) from flooding the server or the client's buffers.
    pub fn max_in_flight(self, n: usize) -> Self {
        self.edit(|c| c.max_in_flight = n.max(1))
    }

    /// Most events a watch holds for a consumer that does not read them (default 10,000; 0
    /// counts as 1). A persistent watch whose consumer falls that far behind loses the events
    /// it has not read, and gets one [`PersistentItem::Resync`](crate::PersistentItem::Resync) in their place, so it knows to
    /// re-read; replies and other watchers are never held up by it, and memory stays bounded.
    /// One-shot watches, DataWatch and ChildrenWatch never come near it.
    pub fn watch_queue_limit(mut self, n: usize) -> Self {
        self.opts.watch_queue_limit = n.max(1);
        self
    }

    /// Largest request sent (default 1 MiB - 1, the server's default `jute.maxbuffer`).
    pub fn max_request(self, bytes: usize) -> Self {
        self.edit(|c| c.max_request = bytes)
    }

    /// After an expiry, start a new session (true, kazoo's behaviour, the default) or leave a
    /// dead handle whose requests fail with SessionExpired (false, the Java client's behaviour).
    pub fn renew_session_after_expiry(self, on: bool) -> Self {
        self.edit(|c| c.renew_after_expiry = on)
    }

    /// Declare the session expired after the session timeout without hearing from any server.
    pub fn client_side_expiry(self, on: bool) -> Self {
        self.edit(|c| c.client_side_expiry = on)
    }

    /// How long `close()` waits for the server (default 2 s).
    pub fn close_timeout(self, t: Duration) -> Self {
        self.edit(|c| c.close_timeout = t)
    }

    /// Seed for host shuffling and jitter (default: from the clock).
    pub fn rng_seed(self, seed: u64) -> Self {
        self.edit(|c| c.rng_seed = seed)
    }

    /// The server version, if known in advance (skips the `srvr` probe that gates 3.6+ ops).
    pub fn server_version(self, v: ServerVersion) -> Self {
        self.edit(|c| c.server_version = Some(v))
    }

    /// Builds the client without starting it (kazoo's `KazooClient(...)`): subscribe to
    /// [`Client::state_changes`] (or add listeners), then [`Client::start`]. Requests made before
    /// the start wait for the session.
    ///
    /// Errors with [`Error::InvalidArgument`]/[`Error::InvalidPath`] for a malformed connect
    /// string.
    pub fn build(self) -> Result<Client, Error> {
        if let Some(e) = self.error {
            return Err(e);
        }
        let config = self.config.ok_or_else(|| {
            Error::InvalidArgument(format!("bad connect string {:?}", self.connect_string))
        })?;
        let session = Session::new(config.clone(), self.rt.now());
        Ok(Client {
            engine: Engine::new(
                session,
                self.rt,
                self.connector,
                self.opts.watch_queue_limit,
            ),
            opts: Arc::new(self.opts),
            config: Arc::new(config),
            counted: true,
        })
    }

    /// Builds and starts the client without waiting for a connection (kazoo's `start_async`).
    ///
    /// Errors as [`build`](Self::build) and [`Client::start_async`] do.
    pub fn start(self) -> Result<Client, Error> {
        let client = self.build()?;
        client.start_async()?;
        Ok(client)
    }

    /// Builds and starts the client and waits until the session is established (kazoo's
    /// `start(timeout)`).
    ///
    /// Errors as [`build`](Self::build) and [`Client::start`] do; on error the session is closed.
    pub async fn connect(self) -> Result<Client, Error> {
        let client = self.build()?;
        match client.start().await {
            Ok(()) => Ok(client),
            Err(e) => {
                client.close().await;
                Err(e)
            }
        }
    }
}

/// A seed that differs between processes and calls, without a global RNG.
fn seed_from_clock() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.finish()
}
