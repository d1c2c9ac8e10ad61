//! Sessions: ids, passwords, negotiated timeouts and idle deadlines (PROTOCOL.md §4.4, §4.5, §14).
//!
//! Sessions are global to the ensemble, as on a real quorum: a session created through one server
//! can be resumed through another. The password is the real server's: `java.util.Random` seeded
//! with `sessionId ^ 0xB3415C00` fills 16 bytes, so every server derives the same one and the
//! values match those captured from ZooKeeper 3.8 byte for byte. Ids follow the server's layout
//! (the server number in the top byte above a counter seeded from the clock, here `epoch_ms`).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use zk_core::proto::PASSWORD_LEN;

/// `ZooKeeperServer.superSecret`.
const SUPER_SECRET: i64 = 0xB341_5C00;

/// The session password for `session_id` (`ZooKeeperServer.generatePasswd`).
pub(crate) fn password(session_id: i64) -> [u8; PASSWORD_LEN] {
    // java.util.Random: a 48-bit linear congruential generator; nextBytes takes 4 bytes per
    // nextInt(), least significant first.
    const MULT: u64 = 0x5_DEEC_E66D;
    const MASK: u64 = (1 << 48) - 1;
    let mut seed = ((session_id ^ SUPER_SECRET) as u64 ^ MULT) & MASK;
    let mut out = [0u8; PASSWORD_LEN];
    for chunk in out.chunks_mut(4) {
        seed = seed.wrapping_mul(MULT).wrapping_add(0xB) & MASK;
        let rnd = (seed >> 16) as u32;
        for (i, b) in chunk.iter_mut().enumerate() {
            *b = (rnd >> (8 * i)) as u8;
        }
    }
    out
}

/// The first session id server `server` hands out (`SessionTrackerImpl.initializeNextSessionId`,
/// with the server id `server + 1` and `epoch_ms` standing in for the clock).
pub(crate) fn first_session_id(server: usize, epoch_ms: i64) -> i64 {
    let sid = (server as u64).wrapping_add(1) & 0xff;
    let stamp = ((epoch_ms as u64) << 24) >> 8;
    (stamp | (sid << 56)) as i64
}

/// `clamp(requested, 2 * tick, 20 * tick)` (§4.4).
pub(crate) fn negotiate_timeout(requested: i32, tick_ms: u64) -> i32 {
    let tick = i64::try_from(tick_ms).unwrap_or(i64::MAX / 40);
    let min = tick.saturating_mul(2);
    let max = tick.saturating_mul(20);
    let t = i64::from(requested).max(min).min(max);
    i32::try_from(t).unwrap_or(i32::MAX)
}

/// One live session.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    /// The negotiated timeout in ms (renegotiated on every resume).
    pub timeout_ms: i32,
    /// When a request (not auth) last arrived for it.
    pub last_active: Instant,
    /// The connection it is attached to, if any.
    pub conn: Option<u64>,
    /// `Some(server)` for a session created by a read-only server: it exists only there, is never
    /// logged, and is refused by every other server (§14.5).
    pub local_to: Option<usize>,
}

impl Session {
    /// When the session expires if nothing arrives: `last_active + timeout`. `None` if that
    /// instant cannot be represented (it then never expires by time).
    pub fn deadline(&self) -> Option<Instant> {
        let ms = u64::try_from(self.timeout_ms).unwrap_or(0);
        self.last_active.checked_add(Duration::from_millis(ms))
    }
}

/// Every live session, by id.
#[derive(Debug, Default)]
pub(crate) struct Sessions {
    by_id: BTreeMap<i64, Session>,
    /// The next id each server hands out.
    next_id: Vec<i64>,
}

impl Sessions {
    /// An empty table for `servers` servers.
    pub fn new(servers: usize, epoch_ms: i64) -> Self {
        Sessions {
            by_id: BTreeMap::new(),
            next_id: (0..servers)
                .map(|s| first_session_id(s, epoch_ms))
                .collect(),
        }
    }

    /// Registers a new session created through `server` and returns its id.
    pub fn create(&mut self, server: usize, session: Session) -> i64 {
        let mut id = self.next_id.get(server).copied().unwrap_or(1);
        // Never hand out 0 (it means "new session") or an id already in use.
        while id == 0 || self.by_id.contains_key(&id) {
            id = id.wrapping_add(1);
        }
        if let Some(next) = self.next_id.get_mut(server) {
            *next = id.wrapping_add(1);
        }
        self.by_id.insert(id, session);
        id
    }

    /// The session, if it lives.
    pub fn get(&self, id: i64) -> Option<&Session> {
        self.by_id.get(&id)
    }

    /// The session, mutably.
    pub fn get_mut(&mut self, id: i64) -> Option<&mut Session> {
        self.by_id.get_mut(&id)
    }

    /// Ends a session, returning it.
    pub fn remove(&mut self, id: i64) -> Option<Session> {
        self.by_id.remove(&id)
    }

    /// Refreshes the idle timer (§14.1: any request but auth).
    pub fn touch(&mut self, id: i64, now: Instant) {
        if let Some(s) = self.by_id.get_mut(&id) {
            s.last_active = now;
        }
    }

    /// Live session ids, sorted.
    pub fn ids(&self) -> Vec<i64> {
        self.by_id.keys().copied().collect()
    }

    /// Every session, by id.
    pub fn iter(&self) -> impl Iterator<Item = (&i64, &Session)> {
        self.by_id.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    #[test]
    fn passwords_match_those_a_real_server_issued() {
        // Pairs captured from ZooKeeper 3.8.0 (PROTOCOL.md Appendix A, V2, V6 and V17).
        for (id, pw) in [
            (
                0x0100_000e_466c_0000_i64,
                "76117508cba4e5004458fa508cf53652",
            ),
            (0x0100_000e_466c_0001, "89326f086bf0c445399b617c607e4b1f"),
            (0x0100_000e_466c_0009, "223b40086b4dbf6ce3b29bd7fdc4ef87"),
        ] {
            assert_eq!(hex(&password(id)), pw);
        }
    }

    #[test]
    fn timeouts_clamp_to_two_and_twenty_ticks() {
        assert_eq!(negotiate_timeout(100, 500), 1000);
        assert_eq!(negotiate_timeout(30_000, 500), 10_000);
        assert_eq!(negotiate_timeout(6000, 500), 6000);
        assert_eq!(negotiate_timeout(-5, 500), 1000);
        assert_eq!(negotiate_timeout(i32::MAX, u64::MAX), i32::MAX);
    }

    #[test]
    fn ids_are_distinct_per_server_and_carry_the_server_number() {
        let mut s = Sessions::new(2, 1_700_000_000_000);
        let now = Instant::now();
        let mk = || Session {
            timeout_ms: 1000,
            last_active: now,
            conn: None,
            local_to: None,
        };
        let a = s.create(0, mk());
        let b = s.create(0, mk());
        let c = s.create(1, mk());
        assert_ne!(a, b);
        assert_eq!(a >> 56, 1);
        assert_eq!(c >> 56, 2);
        assert_eq!(s.ids().len(), 3);
    }
}
