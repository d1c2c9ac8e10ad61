//! The blocking [`Client`] and its [`ClientBuilder`]: session facts, connecting, closing,
//! restarting and retrying. The operations are in `ops.rs`, watches in `watch.rs`, callbacks in
//! `callbacks.rs`.

use std::sync::Arc;
use std::time::Duration;

use zk_client::{
    Acl, Data, Error, HostAddr, ReconnectPolicy, RetryPolicy, ServerVersion, SessionId,
    SessionState, TlsConfig,
};

use crate::runtime::{block_on, block_on_timeout, Listeners, ThreadRuntime};

/// How long dropping the last handle waits for the server to confirm the session's close.
const CLOSE_ON_DROP_PATIENCE: Duration = Duration::from_secs(1);

/// A handle to one ZooKeeper session, with blocking methods (kazoo's `KazooClient`). Cheap to
/// clone, `Send + Sync`; every clone drives the same session. When the last clone is dropped
/// the session is closed, waiting at most about a second for the server's answer, so a program
/// that ends right after dropping its client leaves no session behind to time out (its
/// ephemeral nodes go at once).
///
/// Every method blocks the calling thread until the server answers. The session itself is kept
/// alive (pings, reconnects) by a background thread named `zk-driver`, so a client that is not
/// used still holds its session; after the session ends that thread waits up to a second for
/// the next task (another session's driver, a tracker or recipe task). Do not call these
/// methods from inside an async task: they would block its executor.
#[derive(Clone)]
pub struct Client {
    pub(crate) inner: zk_client::Client,
    /// What every clone shares: the listeners, and the close when the last clone goes.
    pub(crate) shared: Arc<Shared>,
}

/// Shared by the clones of one blocking client.
pub(crate) struct Shared {
    /// Listener threads, told to look again after `restart()`.
    pub(crate) listeners: Listeners,
    session: zk_client::Client,
}

impl Drop for Shared {
    /// The last clone is gone: end the session (bounded), then the listener threads.
    fn drop(&mut self) {
        let mut close = std::pin::pin!(self.session.close());
        let _ = block_on_timeout(&mut close, CLOSE_ON_DROP_PATIENCE);
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.inner.fmt(f)
    }
}

impl Client {
    /// Connects with default settings and waits until the session is established (at most 15 s,
    /// like kazoo's `start()`). `connect_string` is `host:port,host:port/optional/chroot`.
    ///
    /// Errors with [`Error::InvalidArgument`]/[`Error::InvalidPath`] for a malformed connect
    /// string, [`Error::ConnectFailed`] naming each server's last failure if no session was
    /// established in time, [`Error::AuthFailed`] or [`Error::SessionExpired`] if the session
    /// could not be established.
    pub fn connect(connect_string: &str) -> Result<Client, Error> {
        Client::builder(connect_string).connect()
    }

    /// A builder for a client of `connect_string`, to set options before connecting.
    pub fn builder(connect_string: &str) -> ClientBuilder {
        ClientBuilder::new(connect_string)
    }

    pub(crate) fn wrap(inner: zk_client::Client) -> Client {
        Client {
            shared: Arc::new(Shared {
                listeners: Listeners::default(),
                session: inner.clone(),
            }),
            inner,
        }
    }

    /// The async client under this one, for code that mixes both (e.g. recipes).
    pub fn as_async(&self) -> &zk_client::Client {
        &self.inner
    }

    // ---- session facts -------------------------------------------------------------------

    /// The session's state now.
    pub fn state(&self) -> SessionState {
        self.inner.state()
    }

    /// True while connected to a server (read-write or read-only).
    pub fn is_connected(&self) -> bool {
        self.inner.is_connected()
    }

    /// The session id and password (kazoo's `client_id`), once a server assigned them; give them
    /// to [`ClientBuilder::resume`] to take the session over from another process.
    pub fn client_id(&self) -> Option<SessionId> {
        self.inner.client_id()
    }

    /// The session timeout the server granted, once connected.
    pub fn session_timeout(&self) -> Option<Duration> {
        self.inner.session_timeout()
    }

    /// The highest zxid this client has seen.
    pub fn last_zxid(&self) -> i64 {
        self.inner.last_zxid()
    }

    /// The chroot of the connect string, if any.
    pub fn chroot(&self) -> Option<String> {
        self.inner.chroot()
    }

    /// The servers the session may use.
    pub fn hosts(&self) -> Vec<HostAddr> {
        self.inner.hosts()
    }

    /// Replaces the servers the session may use (kazoo's `set_hosts`); see
    /// [`zk_client::Client::set_hosts`].
    ///
    /// Errors with [`Error::InvalidArgument`] for a malformed or empty list or one with a
    /// chroot.
    pub fn set_hosts(&self, hosts: &str) -> Result<(), Error> {
        self.inner.set_hosts(hosts)
    }

    /// Why authentication failed, once a refused SASL login ended the session (see
    /// [`zk_client::Client::auth_failure`]).
    pub fn auth_failure(&self) -> Option<String> {
        self.inner.auth_failure()
    }

    /// The server the session is attached to, if connected.
    pub fn current_host(&self) -> Option<HostAddr> {
        self.inner.current_host()
    }

    /// The connected server's version, asking it with `srvr` if it is not known yet.
    ///
    /// Errors with [`Error::ConnectionLoss`] when not connected, [`Error::Io`] if the
    /// four-letter word fails, and [`Error::Protocol`] if its answer has no version.
    pub fn server_version(&self) -> Result<ServerVersion, Error> {
        block_on(self.inner.server_version())
    }

    /// Sends a four-letter word (`ruok`, `srvr`, `mntr`, ...) to the server the session is on and
    /// returns its answer (kazoo's `command`).
    ///
    /// Errors with [`Error::InvalidArgument`] if `word` is not four lowercase letters,
    /// [`Error::ConnectionLoss`] when not connected, and [`Error::Io`] if the exchange fails.
    pub fn command(&self, word: &str) -> Result<String, Error> {
        block_on(self.inner.command(word))
    }

    // ---- ending ---------------------------------------------------------------------------

    /// Ends the session (kazoo's `stop()`): sends closeSession, waits for the server to confirm
    /// (bounded by the close timeout) and stops the driver thread. Pending requests fail with
    /// [`Error::Closed`]; ephemeral nodes go away; callback watches end; listeners see
    /// `Lost(Closed)`. Returns once the session is over.
    pub fn close(&self) {
        block_on(self.inner.close())
    }

    /// Closes the session and starts a new one on this same handle (kazoo's `restart()`), waiting
    /// for it to connect. Every clone follows. One-shot watches, persistent watches and callback
    /// watches of the old session end; listeners carry on and see the new session's states.
    ///
    /// Errors as [`ClientBuilder::connect`] does for the new session.
    pub fn restart(&self) -> Result<(), Error> {
        let result = block_on(self.inner.restart());
        // Listener streams ended with the old driver; have them look again.
        self.shared.listeners.kick_all();
        result
    }

    /// Starts a client from [`ClientBuilder::build`] and waits until the session is established
    /// (kazoo's `start(timeout)`, the builder's connect timeout); listeners added before see
    /// every state from the first. Does nothing more than wait on a started client.
    ///
    /// Errors with [`Error::ConnectFailed`] naming each server's last failure if no session was
    /// established in time, [`Error::AuthFailed`] or [`Error::SessionExpired`] if it could not
    /// be, and [`Error::Runtime`] if the driver thread cannot be started (or, starved, never ran
    /// within a connect timeout of a second or more).
    pub fn start(&self) -> Result<(), Error> {
        block_on(self.inner.start())
    }

    /// Starts a client from [`ClientBuilder::build`] without waiting (kazoo's `start_async`).
    ///
    /// Errors with [`Error::Runtime`] if the driver thread cannot be started.
    pub fn start_async(&self) -> Result<(), Error> {
        self.inner.start_async()
    }

    /// Runs `op` with this client until it succeeds, fails with an error the client's retry
    /// policy ([`ClientBuilder::command_retry`], kazoo's `command_retry`) does not retry, or the
    /// policy gives up; sleeps on this thread between tries (kazoo's `client.retry(func)`).
    ///
    /// Errors with the last error `op` returned.
    pub fn retry<T>(&self, op: impl FnMut(&Client) -> Result<T, Error>) -> Result<T, Error> {
        let policy = self.inner.command_retry().clone();
        self.retry_with(&policy, op)
    }

    /// [`retry`](Self::retry) with its own policy.
    ///
    /// Errors with the last error `op` returned.
    pub fn retry_with<T>(
        &self,
        policy: &RetryPolicy,
        mut op: impl FnMut(&Client) -> Result<T, Error>,
    ) -> Result<T, Error> {
        // zk-client's loop, with the blocking call run inside it on this thread.
        block_on(self.inner.retry_with(policy, |_| {
            let result = op(self);
            async move { result }
        }))
    }
}

/// Configures and starts a [`Client`]; the same options as kazoo's `KazooClient(...)` arguments.
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    inner: zk_client::ClientBuilder,
}

impl ClientBuilder {
    /// A builder for `connect_string` (`h1:2181,h2:2181/chroot`). A malformed string is reported
    /// by [`connect`](Self::connect) or [`start`](Self::start).
    pub fn new(connect_string: &str) -> Self {
        ClientBuilder {
            inner: zk_client::ClientBuilder::new(Arc::new(ThreadRuntime), connect_string),
        }
    }

    fn map(self, f: impl FnOnce(zk_client::ClientBuilder) -> zk_client::ClientBuilder) -> Self {
        ClientBuilder {
            inner: f(self.inner),
        }
    }

    /// The session timeout to ask for (default 10 s, as kazoo); the server clamps it.
    pub fn session_timeout(self, t: Duration) -> Self {
        self.map(|b| b.session_timeout(t))
    }

    /// Resume an existing session (kazoo's `client_id`) instead of creating one.
    pub fn resume(self, id: SessionId) -> Self {
        self.map(|b| b.resume(id))
    }

    /// Accept a read-only server when no quorum is reachable (default false).
    pub fn read_only(self, allow: bool) -> Self {
        self.map(|b| b.read_only(allow))
    }

    /// Shuffle the hosts (default true).
    pub fn randomize_hosts(self, on: bool) -> Self {
        self.map(|b| b.randomize_hosts(on))
    }

    /// Follow the ensemble's membership through `reconfig` (Curator's EnsembleTracker; off by
    /// default): see [`zk_client::ClientBuilder::track_ensemble`].
    pub fn track_ensemble(self, on: bool) -> Self {
        self.map(|b| b.track_ensemble(on))
    }

    /// Pauses between connection attempts: jitter per attempt, backoff per full pass, its cap.
    pub fn reconnect(self, policy: ReconnectPolicy) -> Self {
        self.map(|b| b.reconnect(policy))
    }

    /// Per-host connect timeout (TCP plus handshake); default: session timeout / hosts.
    pub fn host_connect_timeout(self, t: Duration) -> Self {
        self.map(|b| b.host_connect_timeout(t))
    }

    /// The retry policy of [`Client::retry`] and of the recipes (kazoo's `command_retry`).
    pub fn command_retry(self, policy: RetryPolicy) -> Self {
        self.map(|b| b.command_retry(policy))
    }

    /// How long [`connect`](Self::connect) waits for the session (default 15 s).
    pub fn connect_timeout(self, t: Duration) -> Self {
        self.map(|b| b.connect_timeout(t))
    }

    /// The ACL for nodes created without one (default: world:anyone, all permissions). Every
    /// such create shares it instead of copying it.
    pub fn default_acl(self, acl: impl Into<std::sync::Arc<[Acl]>>) -> Self {
        self.map(|b| b.default_acl(acl))
    }

    /// Credentials sent on every connection (kazoo's `auth_data`).
    pub fn auth(self, scheme: &str, credential: impl Data) -> Self {
        self.map(|b| b.auth(scheme, credential))
    }

    /// Digest credentials `user:password`, sent on every connection.
    pub fn digest(self, user: &str, password: &str) -> Self {
        self.map(|b| b.digest(user, password))
    }

    /// Connects over TLS with `config` (see [`zk_client::ClientBuilder::tls`]): TLS failures are
    /// each host's connect failure cause in [`Error::ConnectFailed`](crate::Error::ConnectFailed).
    pub fn tls(self, config: TlsConfig) -> Self {
        self.map(|b| b.tls(config))
    }

    /// Authenticates with SASL DIGEST-MD5 on every connection (see
    /// [`zk_client::ClientBuilder::sasl_digest`]); a refused login ends the session with
    /// `Lost(AuthFailed)` and [`Client::auth_failure`] says why.
    pub fn sasl_digest(self, user: &str, password: &str) -> Self {
        self.map(|b| b.sasl_digest(user, password))
    }

    /// Authenticates with Kerberos (SASL GSSAPI) on every connection (see
    /// [`zk_client::ClientBuilder::sasl_kerberos`]); missing credentials or a refused login end
    /// the session with `Lost(AuthFailed)` and [`Client::auth_failure`] says why. Needs the
    /// `gssapi` feature.
    #[cfg(feature = "gssapi")]
    pub fn sasl_kerberos(self, config: crate::KerberosConfig) -> Self {
        self.map(|b| b.sasl_kerberos(config))
    }

    /// Fail requests that get no reply within `t` with [`Error::Timeout`] (default: wait while
    /// the session lives).
    pub fn request_timeout(self, t: Duration) -> Self {
        self.map(|b| b.request_timeout(t))
    }

    /// Largest frame accepted from a server (default 1 MiB + 64 KiB).
    pub fn max_frame(self, bytes: usize) -> Self {
        self.map(|b| b.max_frame(bytes))
    }

    /// Most requests sent and not yet answered (default 2,000, twice the server's own
    /// `globalOutstandingLimit`; 0 counts as 1). Requests beyond it wait on the client, in
    /// order, and go out as replies arrive: callers wait, they do not fail, and a request's
    /// timeout counts the wait. This keeps a burst (a herd of watchers re-reading after an
    /// election, say) from flooding the server or the client's buffers.
    pub fn max_in_flight(self, n: usize) -> Self {
        self.map(|b| b.max_in_flight(n))
    }

    /// Most events a watch holds for a consumer that has not taken them (default 10,000); past
    /// it, what was not taken is replaced by one resync item (see zk-client's
    /// `ClientBuilder::watch_queue_limit`).
    pub fn watch_queue_limit(self, n: usize) -> Self {
        self.map(|b| b.watch_queue_limit(n))
    }

    /// Largest request sent (default 1 MiB - 1, the server's default `jute.maxbuffer`).
    pub fn max_request(self, bytes: usize) -> Self {
        self.map(|b| b.max_request(bytes))
    }

    /// After an expiry, start a new session (true, kazoo's behaviour, the default) or leave a
    /// dead handle whose requests fail with SessionExpired (false, the Java client's behaviour).
    pub fn renew_session_after_expiry(self, on: bool) -> Self {
        self.map(|b| b.renew_session_after_expiry(on))
    }

    /// Declare the session expired after the session timeout without hearing from any server.
    pub fn client_side_expiry(self, on: bool) -> Self {
        self.map(|b| b.client_side_expiry(on))
    }

    /// How long [`Client::close`] waits for the server (default 2 s).
    pub fn close_timeout(self, t: Duration) -> Self {
        self.map(|b| b.close_timeout(t))
    }

    /// Seed for host shuffling and jitter (default: from the clock).
    pub fn rng_seed(self, seed: u64) -> Self {
        self.map(|b| b.rng_seed(seed))
    }

    /// The server version, if known in advance (skips the `srvr` probe that gates 3.6+ ops).
    pub fn server_version(self, v: ServerVersion) -> Self {
        self.map(|b| b.server_version(v))
    }

    /// Builds the client without starting it (kazoo's `KazooClient(...)`): add listeners, then
    /// [`Client::start`], so that they see every state from the first.
    ///
    /// Errors with [`Error::InvalidArgument`]/[`Error::InvalidPath`] for a malformed connect
    /// string.
    pub fn build(self) -> Result<Client, Error> {
        self.inner.build().map(Client::wrap)
    }

    /// Starts the client without waiting for a connection (kazoo's `start_async`); requests made
    /// before the session is up wait for it.
    ///
    /// Errors with [`Error::InvalidArgument`]/[`Error::InvalidPath`] for a malformed connect
    /// string.
    pub fn start(self) -> Result<Client, Error> {
        self.inner.start().map(Client::wrap)
    }

    /// Starts the client and waits until the session is established (kazoo's `start(timeout)`).
    ///
    /// Errors as [`Client::connect`] does; on error the session is closed.
    pub fn connect(self) -> Result<Client, Error> {
        block_on(self.inner.connect()).map(Client::wrap)
    }
}
