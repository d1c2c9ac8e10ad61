//! One client connection to one server: its byte stream, where it is in the handshake, who it
//! authenticated as, and its watches (PROTOCOL.md §2, §3, §13.1).
//!
//! Authentication and watches belong to the connection, not the session: when a session moves to
//! another connection both are left behind, and the client replays them (§13.1, §10.5).

use zk_core::proto::{FrameDecoder, Id};

use super::acl;
use super::watch::Watches;

/// Where a connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Nothing decided yet: the first four bytes may still spell a four-letter word (§15).
    Fresh,
    /// Not a four-letter word: the next frame is the ConnectRequest (§4.1).
    AwaitConnect,
    /// Handshake done; frames are requests of this session.
    Connected {
        /// The session.
        session: i64,
    },
}

/// One connection.
#[derive(Debug)]
pub(crate) struct Conn {
    /// The server it is connected to.
    pub server: usize,
    /// Reassembles the client's frames.
    pub decoder: FrameDecoder,
    /// The first bytes, held back until it is clear whether they are a four-letter word.
    pub prefix: Vec<u8>,
    /// Handshake state.
    pub phase: Phase,
    /// Identities: `ip:127.0.0.1` plus every successful auth.
    pub auth: Vec<Id>,
    /// Watches set through this connection.
    pub watches: Watches,
}

impl Conn {
    /// A fresh connection to `server`.
    pub fn new(server: usize, max_frame: usize, accumulate_watch_modes: bool) -> Self {
        Conn {
            server,
            decoder: FrameDecoder::new(max_frame),
            prefix: Vec::new(),
            phase: Phase::Fresh,
            auth: acl::connection_ids(),
            watches: Watches::new(accumulate_watch_modes),
        }
    }

    /// The session, once the handshake is done.
    pub fn session(&self) -> Option<i64> {
        match self.phase {
            Phase::Connected { session } => Some(session),
            _ => None,
        }
    }
}
