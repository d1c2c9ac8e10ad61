//! The script format of the `session` fuzz target (fuzz_targets/session.rs), shared with
//! seed_corpus.rs so that the hand-made seeds use the same numbers as the harness.
//!
//! ```text
//! byte 0      configuration: the CFG_* bits below (also the RNG seed)
//! then        steps: one op byte (taken modulo OPS), followed by that op's argument bytes;
//!             a missing argument reads as 0, and the script ends with the input
//! ```

// Each includer uses a different part of this file.
#![allow(dead_code)]

/// Configuration bits (byte 0).
pub const CFG_CHROOT: u8 = 1 << 0; // connect string ends in /app
pub const CFG_READ_ONLY: u8 = 1 << 1; // accept read-only servers
pub const CFG_CLIENT_EXPIRY: u8 = 1 << 2; // client_side_expiry
pub const CFG_NO_RENEW: u8 = 1 << 3; // renew_after_expiry = false
pub const CFG_REQUEST_TIMEOUT: u8 = 1 << 4; // request_timeout = 1500 ms (else none)
pub const CFG_AUTH: u8 = 1 << 5; // digest credentials configured
pub const CFG_VERSION_KNOWN: u8 = 1 << 6; // server_version = 3.9.0 (else learnt with srvr)
pub const CFG_THREE_HOSTS: u8 = 1 << 7; // three hosts (else one)

/// Number of ops; an op byte is taken modulo this.
pub const OPS: u8 = 16;

/// `kind path`: submit a request; kind % SUBMIT_KINDS picks it (below), path picks the path,
/// the watch flag, the create mode or the addWatch mode.
pub const SUBMIT: u8 = 0;
/// `n`: advance the clock (n >> 6 = 0: n & 63 ms, 1: * 50 ms, 2: * 500 ms, 3: to the next
/// wakeup), call handle_timeout, and run the timers the way a driver does until none is due.
pub const ADVANCE: u8 = 1;
/// Deliver handle_connected for the connection the session asked for.
pub const CONNECTED: u8 = 2;
/// handle_closed for the open connection (dialing or connected).
pub const CLOSED: u8 = 3;
/// `k bytes...`: feed the next k input bytes as server bytes on the connected connection.
pub const RAW: u8 = 4;
/// `flags split`: a well-formed ConnectResponse; flags bits 0-1 session id (0,1: A, 2: B,
/// 3: zero), bits 2-3 timeout (0 ms, 4000, 30000, 100), bit 4 read-only; split: see REPLY.
pub const CONNECT_RESPONSE: u8 = 5;
/// `err split`: a well-formed reply to the oldest unanswered frame the session sent (err < 160:
/// success with a body fitting the request, else an error code); the frame is fed in two
/// pieces, cut at split % (len + 1).
pub const REPLY: u8 = 6;
/// `type path`: a notification (event type, server path).
pub const NOTIFY: u8 = 7;
/// `which`: answer an open probe (which % open probes; which >> 4 picks the answer).
pub const PROBE: u8 = 8;
/// close().
pub const CLOSE: u8 = 9;
/// `which`: remove_watcher on an armed watcher (which % armed), or on an unknown id (which >= 240).
pub const REMOVE_WATCHER: u8 = 10;
/// `which`: input for a connection the session already let go (which % 3: connected, bytes,
/// closed).
pub const STALE: u8 = 11;
/// `err`: REPLY for every unanswered frame, in order.
pub const REPLY_ALL: u8 = 12;
/// Jump to the next wakeup and handle_timeout (ADVANCE 192).
pub const WAKEUP: u8 = 13;
/// `op`: answer the oldest unanswered frame with a success body for another opcode.
pub const REPLY_MISMATCHED: u8 = 14;
/// `which`: an unsolicited frame: a ping reply, an auth reply (ok or failed), a setWatches
/// reply, or a reply with an xid nobody used.
pub const UNSOLICITED: u8 = 15;

/// Submit kinds (the byte after SUBMIT, modulo SUBMIT_KINDS).
pub const SUBMIT_KINDS: u8 = 12;
pub const K_GET_DATA: u8 = 0;
pub const K_EXISTS: u8 = 1;
pub const K_GET_CHILDREN: u8 = 2;
pub const K_CREATE: u8 = 3;
pub const K_SET_DATA: u8 = 4;
pub const K_DELETE: u8 = 5;
pub const K_MULTI: u8 = 6;
pub const K_ADD_WATCH: u8 = 7;
pub const K_GET_EPHEMERALS: u8 = 8;
pub const K_AUTH: u8 = 9;
pub const K_REMOVE_WATCHES: u8 = 10;
pub const K_INVALID: u8 = 11;
