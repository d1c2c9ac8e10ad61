//! The [`Client`] handle and its [`ClientBuilder`]: session facts (state, client id, zxid,
//! chroot, hosts, server version), connecting, closing and restarting.
//!
//! A `Client` is cheap to clone and `Send + Sync`; every clone drives the same session. When the
//! last clone is dropped the session is closed, as kazoo's `stop()` would.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_core::Stream;
use zk_core::hosts::ReconnectPolicy;
use zk_core::proto::Acl;
use zk_core::session::Credentials;
use zk_core::{
    ConnectString, Error, HostAddr, ServerVersion, Session, SessionConfig, SessionId, SessionState,
};

use crate::driver::Driver;
use crate::four_letter::four_letter_word_on;
use crate::runtime::Runtime;
use crate::shared::Shared;

/// Largest four-letter-word answer `command` reads (mntr and dump can be long).
const COMMAND_MAX_BYTES: usize = 4 * 1024 * 1024;

/// Options that shape requests rather than the session.
#[derive(Debug, Clone)]
pub(crate) struct ClientOptions {
    pub(crate) default_acl: Vec<Acl>,
}

/// A handle to one ZooKeeper session. Cheap to clone, `Send + Sync`.
pub struct Client<R: Runtime> {
    pub(crate) shared: Arc<Shared>,
    pub(crate) rt: R,
    pub(crate) opts: Arc<ClientOptions>,
    config: Arc<SessionConfig>,
    /// Whether this handle keeps the session open. Recipes (DataWatch, ChildrenWatch) hold
    /// handles that do not, so dropping every user handle still closes the session.
    counted: bool,
}

impl<R: Runtime> Clone for Client<R> {
    fn clone(&self) -> Self {
        self.shared.lock().handles += 1;
        Client {
            shared: self.shared.clone(),
            rt: self.rt.clone(),
            opts: self.opts.clone(),
            config: self.config.clone(),
            counted: true,
        }
    }
}

impl<R: Runtime> Drop for Client<R> {
    fn drop(&mut self) {
        if !self.counted {
            return;
        }
        let mut g = self.shared.lock();
        g.handles = g.handles.saturating_sub(1);
        if g.handles == 0 {
            g.wake_driver();
        }
    }
}

impl<R: Runtime> std::fmt::Debug for Client<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let g = self.shared.lock();
        f.debug_struct("Client")
            .field("hosts", &self.config.connect_string.to_string())
            .field("state", &g.session.state())
            .field("session_id", &g.session.session_id().map(|s| s.id))
            .finish()
    }
}

impl<R: Runtime + Default> Client<R> {
    /// Connects with default settings and waits until the session is established (at most 15 s,
    /// like kazoo's `start()`).
    ///
    /// Errors with [`Error::InvalidArgument`]/[`Error::InvalidPath`] for a malformed connect
    /// string, [`Error::Timeout`] if no server answered in time, [`Error::AuthFailed`] or
    /// [`Error::SessionExpired`] if the session could not be established.
    pub async fn connect(connect_string: &str) -> Result<Self, Error> {
        Self::builder(connect_string).connect().await
    }

    /// A builder for a client on this runtime.
    pub fn builder(connect_string: &str) -> ClientBuilder<R> {
        ClientBuilder::new(R::default(), connect_string)
    }
}

impl<R: Runtime> Client<R> {
    /// A handle that does not keep the session open (for recipes that live beside the user's
    /// handles).
    pub(crate) fn uncounted(&self) -> Self {
        Client {
            shared: self.shared.clone(),
            rt: self.rt.clone(),
            opts: self.opts.clone(),
            config: self.config.clone(),
            counted: false,
        }
    }

    // ---- session facts -------------------------------------------------------------------

    /// The session's state now.
    pub fn state(&self) -> SessionState {
        self.shared.lock().session.state()
    }

    /// True while connected to a server (read-write or read-only).
    pub fn is_connected(&self) -> bool {
        self.state().is_connected()
    }

    /// Every state change from now on, as a stream (kazoo's `add_listener`). The stream ends when
    /// the client's driver stops.
    pub fn state_changes(&self) -> StateChanges {
        StateChanges {
            id: self.shared.subscribe_state(),
            shared: self.shared.clone(),
        }
    }

    /// The session id and password (kazoo's `client_id`), once a server assigned them. Give them
    /// to [`ClientBuilder::resume`] to take the session over from another process.
    pub fn client_id(&self) -> Option<SessionId> {
        self.shared.lock().session.session_id()
    }

    /// The session timeout the server granted, once connected.
    pub fn session_timeout(&self) -> Option<Duration> {
        self.shared.lock().session.negotiated_timeout()
    }

    /// The highest zxid this client has seen.
    pub fn last_zxid(&self) -> i64 {
        self.shared.lock().session.last_zxid()
    }

    /// The chroot of the connect string, if any.
    pub fn chroot(&self) -> Option<String> {
        self.config
            .connect_string
            .chroot
            .as_str()
            .map(str::to_owned)
    }

    /// The servers of the connect string.
    pub fn hosts(&self) -> Vec<HostAddr> {
        self.config.connect_string.hosts.clone()
    }

    /// The server the session is attached to, if connected.
    pub fn current_host(&self) -> Option<HostAddr> {
        self.shared.lock().session.current_host().cloned()
    }

    /// The connected server's version, asking it with `srvr` if it is not known yet.
    ///
    /// Errors with [`Error::ConnectionLoss`] when not connected, or with the I/O error of the
    /// four-letter word as [`Error::Protocol`].
    pub async fn server_version(&self) -> Result<ServerVersion, Error> {
        if let Some(v) = self.shared.lock().session.server_version() {
            return Ok(v);
        }
        let text = self.command("srvr").await?;
        ServerVersion::from_srvr(&text)
            .ok_or_else(|| Error::Protocol(format!("cannot read a version from {text:?}")))
    }

    /// Sends a four-letter word (`ruok`, `srvr`, `mntr`, ...) to the server the session is on
    /// and returns its answer.
    ///
    /// Errors with [`Error::ConnectionLoss`] when not connected, and with [`Error::Protocol`]
    /// carrying the I/O error if the exchange fails.
    pub async fn command(&self, word: &str) -> Result<String, Error> {
        let host = self.current_host().ok_or(Error::ConnectionLoss)?;
        four_letter_word_on(&self.rt, host.host, host.port, word, COMMAND_MAX_BYTES)
            .await
            .map_err(|e| Error::Protocol(format!("{word}: {e}")))
    }

    // ---- ending ---------------------------------------------------------------------------

    /// Ends the session (kazoo's `stop()`): sends closeSession, waits for the server to confirm
    /// (bounded by the close timeout), and stops the driver. Pending requests fail with
    /// [`Error::Closed`]; ephemeral nodes go away. Returns once the session is over.
    pub async fn close(&self) {
        let now = self.shared.now();
        let mut changes = self.state_changes();
        {
            let mut g = self.shared.lock();
            g.session.close(now);
            g.dispatch_events(now);
            g.wake_driver();
            if matches!(g.session.state(), SessionState::Lost(_)) {
                return;
            }
        }
        while let Some(state) = StreamNext(&mut changes).await {
            if matches!(state, SessionState::Lost(_)) {
                return;
            }
        }
    }

    /// Closes the session and starts a new one on this same handle (kazoo's `restart()`). Every
    /// clone of this client follows; watchers of the old session end.
    ///
    /// Errors as [`ClientBuilder::connect`] does for the new session.
    pub async fn restart(&self) -> Result<(), Error> {
        let mut changes = self.state_changes();
        self.close().await;
        // The old driver must be gone before the new session moves in: the stream ends when it
        // has shut down.
        while StreamNext(&mut changes).await.is_some() {}
        drop(changes);
        let now = self.rt.now();
        let mut config = (*self.config).clone();
        config.resume = None;
        config.rng_seed = config.rng_seed.wrapping_add(1);
        {
            let mut g = self.shared.lock();
            g.session = Session::new(config, now);
            g.driver_done = false;
            g.generation += 1;
            g.replies.clear();
            g.watchers.clear();
        }
        self.rt
            .spawn(Driver::new(self.shared.clone(), self.rt.clone()));
        wait_connected(&self.shared, &self.rt, Duration::from_secs(15)).await
    }

    /// The runtime this client runs on.
    pub fn runtime(&self) -> &R {
        &self.rt
    }

    /// Sleeps until `d` has passed, on this client's runtime.
    pub async fn sleep(&self, d: Duration) {
        let deadline = self.rt.now() + d;
        let mut timer = self.rt.timer(deadline);
        std::future::poll_fn(|cx| crate::runtime::Timer::poll_fire(&mut timer, cx)).await
    }
}

/// Waits until connected, failing if the session ends or `timeout` passes.
async fn wait_connected<R: Runtime>(
    shared: &Arc<Shared>,
    rt: &R,
    timeout: Duration,
) -> Result<(), Error> {
    let mut changes = StateChanges {
        id: shared.subscribe_state(),
        shared: shared.clone(),
    };
    let state = shared.lock().session.state();
    if state.is_connected() {
        return Ok(());
    }
    let mut timer = rt.timer(rt.now() + timeout);
    loop {
        let next = std::future::poll_fn(|cx| {
            if crate::runtime::Timer::poll_fire(&mut timer, cx).is_ready() {
                return Poll::Ready(None);
            }
            Pin::new(&mut changes).poll_next(cx).map(Some)
        })
        .await;
        match next {
            None => return Err(Error::Timeout),
            Some(None) => return Err(Error::Closed),
            Some(Some(s)) if s.is_connected() => return Ok(()),
            Some(Some(SessionState::Lost(reason))) => {
                let renews = {
                    let g = shared.lock();
                    !matches!(g.session.state(), SessionState::Lost(_))
                };
                if !renews {
                    return Err(reason.error());
                }
            }
            Some(Some(_)) => {}
        }
    }
}

/// Polls a stream once to its next item.
pub(crate) struct StreamNext<'a, S>(pub(crate) &'a mut S);

impl<S: Stream + Unpin> Future for StreamNext<'_, S> {
    type Output = Option<S::Item>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut *self.0).poll_next(cx)
    }
}

/// Session state changes, from the moment of subscription.
pub struct StateChanges {
    id: u64,
    shared: Arc<Shared>,
}

impl Stream for StateChanges {
    type Item = SessionState;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<SessionState>> {
        let mut g = self.shared.lock();
        let done = g.driver_done;
        let Some(sub) = g.state_subs.get_mut(&self.id) else {
            return Poll::Ready(None);
        };
        if let Some(s) = sub.queue.pop_front() {
            return Poll::Ready(Some(s));
        }
        if done {
            return Poll::Ready(None);
        }
        sub.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

impl Drop for StateChanges {
    fn drop(&mut self) {
        self.shared.lock().state_subs.remove(&self.id);
    }
}

/// Configures and starts a [`Client`].
#[derive(Debug, Clone)]
pub struct ClientBuilder<R: Runtime> {
    rt: R,
    connect_string: String,
    config: Option<SessionConfig>,
    error: Option<Error>,
    default_acl: Vec<Acl>,
    connect_timeout: Duration,
}

impl<R: Runtime> ClientBuilder<R> {
    /// A builder for `connect_string` (`h1:2181,h2:2181/chroot`) on runtime `rt`. Malformed
    /// strings are reported by `connect`/`start`.
    pub fn new(rt: R, connect_string: &str) -> Self {
        let (config, error) = match ConnectString::parse(connect_string) {
            Ok(cs) => {
                let mut c = SessionConfig::from_connect_string(cs);
                c.rng_seed = seed_from_clock();
                (Some(c), None)
            }
            Err(e) => (None, Some(e)),
        };
        ClientBuilder {
            rt,
            connect_string: connect_string.to_owned(),
            config,
            error,
            default_acl: Acl::open_unsafe(),
            connect_timeout: Duration::from_secs(15),
        }
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

    /// How long `connect()` waits for the session (default 15 s, as kazoo's `start()`).
    pub fn connect_timeout(mut self, t: Duration) -> Self {
        self.connect_timeout = t;
        self
    }

    /// The ACL for nodes created without one (default: world:anyone, all permissions).
    pub fn default_acl(mut self, acl: Vec<Acl>) -> Self {
        self.default_acl = acl;
        self
    }

    /// Credentials sent on every connection (kazoo's `auth_data`).
    pub fn auth(self, scheme: &str, credential: impl Into<Bytes>) -> Self {
        let cred = Credentials {
            scheme: scheme.to_owned(),
            auth: credential.into(),
        };
        self.edit(|c| c.auth.push(cred))
    }

    /// Digest credentials `user:password`, sent on every connection.
    pub fn digest(self, user: &str, password: &str) -> Self {
        self.edit(|c| c.auth.push(Credentials::digest(user, password)))
    }

    /// Fail requests that get no reply within `t` (default: wait while the session lives).
    pub fn request_timeout(self, t: Duration) -> Self {
        self.edit(|c| c.request_timeout = Some(t))
    }

    /// Largest frame accepted from a server (default 1 MiB + 64 KiB).
    pub fn max_frame(self, bytes: usize) -> Self {
        self.edit(|c| c.max_frame = bytes)
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

    /// Starts the client without waiting for a connection (kazoo's `start_async`).
    ///
    /// Errors with [`Error::InvalidArgument`]/[`Error::InvalidPath`] for a malformed connect
    /// string.
    pub fn start(self) -> Result<Client<R>, Error> {
        if let Some(e) = self.error {
            return Err(e);
        }
        let config = self.config.ok_or_else(|| {
            Error::InvalidArgument(format!("bad connect string {:?}", self.connect_string))
        })?;
        let now = self.rt.now();
        let session = Session::new(config.clone(), now);
        let clock_rt = self.rt.clone();
        let shared = Shared::new(session, Box::new(move || clock_rt.now()));
        self.rt.spawn(Driver::new(shared.clone(), self.rt.clone()));
        Ok(Client {
            shared,
            rt: self.rt,
            opts: Arc::new(ClientOptions {
                default_acl: self.default_acl,
            }),
            config: Arc::new(config),
            counted: true,
        })
    }

    /// Starts the client and waits until the session is established (kazoo's `start(timeout)`).
    ///
    /// Errors as [`Client::connect`] does; on error the session is closed.
    pub async fn connect(self) -> Result<Client<R>, Error> {
        let timeout = self.connect_timeout;
        let client = self.start()?;
        match wait_connected(&client.shared, &client.rt, timeout).await {
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
