//! Everything a session is configured with. Defaults follow kazoo where kazoo has a say (10 s
//! session timeout, a new session after expiry) and the Java client elsewhere.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::event::SessionId;
use crate::error::Error;
use crate::hosts::{ConnectString, ReconnectPolicy};
use crate::proto::{DEFAULT_MAX_FRAME, SERVER_MAX_FRAME};

/// The default of [`SessionConfig::max_in_flight`]: twice the server's own default limit of
/// outstanding requests over all its connections (`globalOutstandingLimit`, 1,000), so one
/// client alone can keep a server busy but a herd of callers waits on the client.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 2_000;
use crate::version::ServerVersion;

/// Credentials for an auth scheme, replayed on every connection (auth is per connection).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The scheme, e.g. `digest`.
    pub scheme: String,
    /// The scheme's credentials, e.g. `user:password` for digest.
    pub auth: Bytes,
}

impl Credentials {
    /// Digest credentials (`user:password`).
    pub fn digest(user: &str, password: &str) -> Self {
        Credentials {
            scheme: "digest".into(),
            auth: Bytes::from(format!("{user}:{password}")),
        }
    }
}

/// The client side of a SASL mechanism (PROTOCOL.md §13.3), one instance per connection: the
/// session carries its tokens in `sasl` (102) requests right after the ConnectResponse and holds
/// everything else back until it completes. The mechanism itself (DIGEST-MD5, GSSAPI) lives
/// outside the core; it is pure computation, so the core stays free of I/O.
pub trait SaslClient: Send {
    /// The mechanism's name, for messages (e.g. `DIGEST-MD5`).
    fn mechanism(&self) -> &str;

    /// The first token to send (empty for DIGEST-MD5, which has no initial response).
    ///
    /// Errors with the reason the exchange cannot start; the session then ends with
    /// `Lost(AuthFailed)`.
    fn initial(&mut self) -> Result<Vec<u8>, String>;

    /// Answers the server's `challenge`: `Some(token)` to send, `None` when nothing more is sent.
    ///
    /// Errors with the reason when the challenge is malformed or the server cannot be verified;
    /// the session then ends with `Lost(AuthFailed)`.
    fn step(&mut self, challenge: &[u8]) -> Result<Option<Vec<u8>>, String>;

    /// True once the exchange has succeeded.
    fn is_complete(&self) -> bool;

    /// The likely cause, in a few words, when the server refuses the login with an error code
    /// (for DIGEST-MD5: a wrong user name or password); it goes into the failure's reason.
    fn refusal_hint(&self) -> &str {
        "the server refused the credentials"
    }
}

/// Makes a fresh [`SaslClient`] for each connection (SASL is per connection, like auth).
pub trait SaslFactory: Send + Sync + fmt::Debug {
    /// A new exchange with `server`, the address the connection was made to, as the connect
    /// string names it (Kerberos derives the service principal `zookeeper/<host>` from it).
    fn start(&self, server: &crate::HostAddr) -> Box<dyn SaslClient>;
}

/// Configuration of a [`super::Session`].
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Servers and chroot.
    pub connect_string: ConnectString,
    /// The session timeout to ask for; the server clamps it (by default to 2 to 20 ticks).
    pub session_timeout: Duration,
    /// Resume this session instead of creating one (kazoo's `client_id`).
    pub resume: Option<SessionId>,
    /// Accept a read-only server when no quorum is reachable.
    pub read_only: bool,
    /// Shuffle the hosts (with `rng_seed`) so that clients spread over the ensemble.
    pub randomize_hosts: bool,
    /// Pauses between connection attempts.
    pub reconnect: ReconnectPolicy,
    /// Time allowed for TCP connect plus handshake per host; `None` uses the session timeout
    /// divided by the number of hosts, as the Java client does.
    pub connect_timeout: Option<Duration>,
    /// Fail a request that has no reply after this long; `None` waits for as long as the session
    /// lives.
    pub request_timeout: Option<Duration>,
    /// Most requests sent and not yet answered. Requests beyond it wait in the session, in
    /// submission order, and go out as replies come in (their timeouts run while they wait), so
    /// a burst of callers cannot flood the server or the output buffer. At least 1.
    pub max_in_flight: usize,
    /// Largest frame accepted from a server.
    pub max_frame: usize,
    /// Largest request frame sent; larger requests fail with `RequestTooLarge` instead of making
    /// the server drop the connection. Match the server's `jute.maxbuffer`.
    pub max_request: usize,
    /// Credentials sent on every connection, before anything else.
    pub auth: Vec<Credentials>,
    /// A SASL mechanism run on every connection right after the handshake, before auth replay,
    /// watches and requests; a failure ends the session with `Lost(AuthFailed)`.
    pub sasl: Option<Arc<dyn SaslFactory>>,
    /// After an expiry, start a new session (kazoo) instead of ending for good (Java).
    pub renew_after_expiry: bool,
    /// Declare the session expired after the session timeout passes without hearing from any
    /// server (the Java client does this from 3.9.3). Off by default: only the server knows.
    pub client_side_expiry: bool,
    /// How long `close()` waits for the server to confirm.
    pub close_timeout: Duration,
    /// Seed for host shuffling and jitter.
    pub rng_seed: u64,
    /// The server version, if known in advance; otherwise the session asks a server with `srvr`
    /// when an operation needs it.
    pub server_version: Option<ServerVersion>,
    /// First pause between read-only mode's probes for a writable server; doubles per probe.
    pub read_only_probe_initial: Duration,
    /// Cap of the pause between read-only probes.
    pub read_only_probe_max: Duration,
}

impl SessionConfig {
    /// A configuration for a connect string, with defaults for everything else.
    ///
    /// Errors with [`Error::InvalidArgument`] or [`Error::InvalidPath`] for a malformed connect
    /// string.
    pub fn new(connect_string: &str) -> Result<Self, Error> {
        Ok(SessionConfig::from_connect_string(ConnectString::parse(
            connect_string,
        )?))
    }

    /// A configuration for a parsed connect string, with defaults for everything else.
    pub fn from_connect_string(connect_string: ConnectString) -> Self {
        SessionConfig {
            connect_string,
            session_timeout: Duration::from_secs(10),
            resume: None,
            read_only: false,
            randomize_hosts: true,
            reconnect: ReconnectPolicy::default(),
            connect_timeout: None,
            request_timeout: None,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            max_frame: DEFAULT_MAX_FRAME,
            max_request: SERVER_MAX_FRAME,
            auth: Vec::new(),
            sasl: None,
            renew_after_expiry: true,
            client_side_expiry: false,
            close_timeout: Duration::from_secs(2),
            rng_seed: 0,
            server_version: None,
            read_only_probe_initial: Duration::from_millis(100),
            read_only_probe_max: Duration::from_secs(60),
        }
    }
}
