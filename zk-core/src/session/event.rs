//! What the session hands out: replies, watch events and state changes, in one total order, and
//! the identifiers that tie them to what the user and the driver asked for.

use std::fmt;
use std::str::FromStr;

use bytes::Bytes;

use super::watches::WatcherId;
use crate::error::Error;
use crate::hosts::HostAddr;
use crate::proto::{EventType, Response, PASSWORD_LEN};

/// Identifies a submitted request; its reply carries the same id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RequestId(pub u64);

impl RequestId {
    /// The watcher this request arms, if it arms one (a watcher is named after its request).
    pub fn watcher(self) -> WatcherId {
        WatcherId(self.0)
    }
}

/// Identifies one transport connection. Every dial gets a fresh id, so input from a connection
/// the session has given up on is recognised and ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnId(pub u64);

/// Identifies a four-letter-word probe the session asked the driver to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ProbeId(pub u64);

/// Why a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LostReason {
    /// The server expired the session (or the client did, with client-side expiry on), or a
    /// reconnect got a different session id than the one resumed.
    Expired,
    /// This client closed it.
    Closed,
    /// The server rejected the credentials (or required SASL); the server closed the session's
    /// connection and the client does not retry.
    AuthFailed,
}

impl LostReason {
    /// The error pending requests fail with when the session ends for this reason.
    pub fn error(self) -> Error {
        match self {
            LostReason::Expired => Error::SessionExpired,
            LostReason::Closed => Error::Closed,
            LostReason::AuthFailed => Error::AuthFailed,
        }
    }
}

/// The session's state.
///
/// Mapping to kazoo's `KazooState`: `Connected` and `ConnectedReadOnly` are CONNECTED (kazoo also
/// reports `KeeperState.CONNECTED_RO`), `Suspended` is SUSPENDED, `Lost(_)` is LOST. `Connecting`
/// (no session yet) is what kazoo calls LOST before its first connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SessionState {
    /// No session yet: the first handshake (or the first after an expiry) is under way.
    Connecting,
    /// Connected to a read-write server.
    Connected,
    /// Connected to a read-only server: reads work, writes fail with NotReadOnly.
    ConnectedReadOnly,
    /// The connection was lost; the session may still be alive and is being resumed. Requests
    /// are queued until then.
    Suspended,
    /// The session is over.
    Lost(LostReason),
}

impl SessionState {
    /// True for `Connected` and `ConnectedReadOnly`.
    pub fn is_connected(self) -> bool {
        matches!(
            self,
            SessionState::Connected | SessionState::ConnectedReadOnly
        )
    }
}

impl fmt::Display for SessionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SessionState::Connecting => f.write_str("CONNECTING"),
            SessionState::Connected => f.write_str("CONNECTED"),
            SessionState::ConnectedReadOnly => f.write_str("CONNECTED_RO"),
            SessionState::Suspended => f.write_str("SUSPENDED"),
            SessionState::Lost(r) => write!(f, "LOST({r:?})"),
        }
    }
}

/// A change a watcher was told about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchedEvent {
    /// What happened.
    pub event_type: EventType,
    /// The node it happened to (a client path, chroot removed; for a watch set outside the
    /// chroot with `absolute_path`, such as on `/zookeeper/config`, the server path). For
    /// recursive watchers this can be any descendant of the watched path.
    pub path: String,
    /// The zxid of the change when the server sends it (3.9+), otherwise -1.
    pub zxid: i64,
    /// The session's state when the event was produced (kazoo's `WatchedEvent.state`):
    /// `Connected`, or `ConnectedReadOnly` for an event from a read-only server.
    pub state: SessionState,
}

/// Why a watcher stopped for good without firing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum WatchEnd {
    /// The session ended; every watcher is told.
    SessionLost(LostReason),
    /// After a failover the new server is too old to re-arm this kind of watch (persistent watches
    /// on a server before 3.6).
    Unsupported,
    /// A removeWatches request of this client removed it from the server.
    Removed,
}

/// One output of the session, in the order things happened.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Event {
    /// A request finished. Every submitted request gets exactly one.
    Reply {
        /// The request.
        id: RequestId,
        /// Its result. Paths in it are client paths (chroot removed).
        result: Result<Response, Error>,
        /// The watcher the request armed, if it armed one (a watching getData, getChildren or
        /// addWatch that succeeded, or a watching exists, which arms even on NoNode).
        watcher: Option<WatcherId>,
    },
    /// A watcher fired. One-shot watchers fire once; persistent ones until removed.
    Watch {
        /// The watcher.
        watcher: WatcherId,
        /// What happened.
        event: WatchedEvent,
    },
    /// A watcher ended without firing (its session ended, or it cannot be re-armed).
    WatchEnded {
        /// The watcher.
        watcher: WatcherId,
        /// Why.
        reason: WatchEnd,
    },
    /// The session changed state.
    State(SessionState),
    /// A persistent or persistent-recursive watcher may have missed events: the session
    /// reconnected and the server re-armed the watch without reporting what changed meanwhile
    /// (ZOOKEEPER-4698). Re-read whatever is cached from this watch; a read submitted on seeing
    /// this is answered after the watch is armed again, so no change falls between the two.
    ///
    /// Emitted after every reconnect within a session, for every live persistent watcher; never
    /// on a session's first connection, and never after a new session (its watchers end with
    /// [`WatchEnd::SessionLost`] instead).
    WatchResync {
        /// The watcher.
        watcher: WatcherId,
    },
}

/// The session's identity: what kazoo calls `client_id`. With it, another client (or a restarted
/// process) can resume the session before it expires.
///
/// Saved and loaded as text with [`Display`](fmt::Display) and [`FromStr`]:
/// `0x<id as 16 hex digits>:<password as 32 hex digits>`, e.g.
/// `0x0100000a3c5e0001:00112233445566778899aabbccddeeff`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionId {
    /// The session id the server assigned.
    pub id: i64,
    /// The session password.
    pub password: Bytes,
}

impl fmt::Display for SessionId {
    /// `0x<id>:<password>` in lowercase hex; the id as its 64 bits, zero-padded to 16 digits.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{:016x}:", self.id as u64)?;
        for b in &self.password {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// With the `serde` feature: as its text form (see [`Display`](fmt::Display)), so it round-trips
/// through any format and reads the same as a saved session file.
#[cfg(feature = "serde")]
impl serde::Serialize for SessionId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// With the `serde` feature: parses the text form; errors as [`FromStr`] does.
#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for SessionId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl FromStr for SessionId {
    type Err = Error;

    /// Parses what [`Display`](fmt::Display) writes (hex digits in either case, surrounding
    /// whitespace ignored, so a saved file's trailing newline does no harm).
    ///
    /// Errors with [`Error::InvalidArgument`] saying what is wrong: no `0x` prefix, no `:`, an
    /// id that is not 16 hex digits, or a password that is not 32 hex digits (the 16 bytes every
    /// ZooKeeper session password has).
    fn from_str(s: &str) -> Result<Self, Error> {
        let bad = |why: String| Err(Error::InvalidArgument(format!("session id {s:?}: {why}")));
        let text = s.trim();
        let Some(rest) = text.strip_prefix("0x") else {
            return bad("must start with 0x".into());
        };
        let Some((id, password)) = rest.split_once(':') else {
            return bad("missing ':' between the id and the password".into());
        };
        if id.len() != 16 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return bad(format!(
                "the id must be 16 hex digits, got {} characters {id:?}",
                id.len()
            ));
        }
        let id = match u64::from_str_radix(id, 16) {
            Ok(n) => n as i64,
            Err(e) => return bad(format!("bad id: {e}")),
        };
        if password.len() != 2 * PASSWORD_LEN || !password.bytes().all(|b| b.is_ascii_hexdigit()) {
            return bad(format!(
                "the password must be {} hex digits, got {} characters",
                2 * PASSWORD_LEN,
                password.len()
            ));
        }
        let mut bytes = Vec::with_capacity(PASSWORD_LEN);
        for pair in password.as_bytes().chunks(2) {
            // Both are ASCII hex digits (checked above), so this is two valid nibbles.
            let text = std::str::from_utf8(pair).unwrap_or("");
            match u8::from_str_radix(text, 16) {
                Ok(b) => bytes.push(b),
                Err(e) => return bad(format!("bad password: {e}")),
            }
        }
        Ok(SessionId {
            id,
            password: Bytes::from(bytes),
        })
    }
}

/// Why the last attempt to connect to one host failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostFailure {
    /// The host, as written in the connect string.
    pub host: HostAddr,
    /// What went wrong, e.g. `connection refused` or `connect timeout: ...`.
    pub cause: String,
}

impl fmt::Display for HostFailure {
    /// `host:port: cause`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.host, self.cause)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn session_id_text_round_trips(id in any::<i64>(), pw in any::<[u8; PASSWORD_LEN]>()) {
            let sid = SessionId { id, password: Bytes::copy_from_slice(&pw) };
            let text = sid.to_string();
            prop_assert_eq!(text.len(), 2 + 16 + 1 + 2 * PASSWORD_LEN);
            prop_assert_eq!(text.parse::<SessionId>(), Ok(sid.clone()));
            prop_assert_eq!(text.to_uppercase().replace("0X", "0x").parse::<SessionId>(), Ok(sid));
        }
    }

    #[test]
    fn session_id_text_has_a_fixed_shape() {
        let sid = SessionId {
            id: 0x0100_000a_3c5e_0001,
            password: Bytes::from_static(&[
                0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd,
                0xee, 0xff,
            ]),
        };
        let text = "0x0100000a3c5e0001:00112233445566778899aabbccddeeff";
        assert_eq!(sid.to_string(), text);
        assert_eq!(format!("  {text}\n").parse::<SessionId>(), Ok(sid));
        let neg = SessionId {
            id: -1,
            password: Bytes::from_static(&[0; PASSWORD_LEN]),
        };
        assert_eq!(neg.to_string().parse::<SessionId>(), Ok(neg));
    }

    #[test]
    fn malformed_session_id_text_is_refused_saying_why() {
        let pw = "00112233445566778899aabbccddeeff";
        for (bad, why) in [
            ("", "must start with 0x"),
            (&format!("0100000a3c5e0001:{pw}")[..], "must start with 0x"),
            ("0x0100000a3c5e0001", "missing ':'"),
            (&format!("0x100000a3c5e0001:{pw}")[..], "16 hex digits"),
            (&format!("0x00100000a3c5e0001:{pw}")[..], "16 hex digits"),
            (&format!("0x0100000a3c5e000g:{pw}")[..], "16 hex digits"),
            (&format!("0x+100000a3c5e0001:{pw}")[..], "16 hex digits"),
            ("0x0100000a3c5e0001:0011", "32 hex digits"),
            (&format!("0x0100000a3c5e0001:{pw}00")[..], "32 hex digits"),
            (
                "0x0100000a3c5e0001:00112233445566778899aabbccddeefx",
                "32 hex digits",
            ),
            (
                "0x0100000a3c5e0001:0011223344556677889\u{e9}aabbccddeef",
                "32 hex digits",
            ),
        ] {
            match bad.parse::<SessionId>() {
                Err(Error::InvalidArgument(msg)) => assert!(msg.contains(why), "{bad:?}: {msg}"),
                other => panic!("{bad:?} gave {other:?}"),
            }
        }
    }
}
