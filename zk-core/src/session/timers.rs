//! The session's timers, in one table.
//!
//! Every deadline the session can have is derived from its state in one place,
//! `Session::each_deadline`, with the reason it exists. Both what the driver is told
//! ([`Session::poll_timeout`], [`Session::next_wakeup`]) and what [`Session::handle_timeout`]
//! fires read that walk (the last two through the table [`Session::timers`] fills from it), so
//! they cannot disagree: a deadline the driver sleeps towards is one `handle_timeout` acts on,
//! and nothing fires that was not announced.

use std::cmp::Reverse;
use std::time::Instant;

use tracing::{debug, warn};

use super::{Link, LostReason, Phase, ProbeId, Session};
use crate::proto::{encode_request, xid, Request};

/// Why the session will next need `handle_timeout`; for debugging and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wakeup {
    /// Time to dial the next host.
    Dial,
    /// The current connection attempt (TCP or handshake) times out.
    ConnectTimeout,
    /// Nothing was received for the read timeout: the link is dead.
    ReadTimeout,
    /// Time to send a ping.
    Ping,
    /// A request's own timeout.
    RequestTimeout,
    /// close() stops waiting for the server.
    CloseTimeout,
    /// Client-side expiry.
    ClientExpiry,
    /// A probe's answer is overdue.
    ProbeTimeout,
    /// Time for the next read-only probe for a writable server.
    ReadOnlyProbe,
}

/// Every reason, in the order `next_wakeup` reports a tie (the link's own timers first), which is
/// the order `Session::each_deadline` walks them in.
#[cfg(test)]
const ALL: [Wakeup; 9] = [
    Wakeup::Dial,
    Wakeup::ConnectTimeout,
    Wakeup::ReadTimeout,
    Wakeup::Ping,
    Wakeup::RequestTimeout,
    Wakeup::CloseTimeout,
    Wakeup::ClientExpiry,
    Wakeup::ProbeTimeout,
    Wakeup::ReadOnlyProbe,
];

/// The order `handle_timeout` fires due timers in: requests first (their timeouts must not be
/// overtaken by the ConnectionLoss of a link dropped in the same step), then close (which ends
/// everything), expiry, probes, and last the link, whose handlers reschedule each other: a dead
/// link schedules a dial that must wait for the next call, as a real clock would make it.
const FIRING_ORDER: [Wakeup; 9] = [
    Wakeup::RequestTimeout,
    Wakeup::CloseTimeout,
    Wakeup::ClientExpiry,
    Wakeup::ProbeTimeout,
    Wakeup::ReadOnlyProbe,
    Wakeup::Dial,
    Wakeup::ConnectTimeout,
    Wakeup::ReadTimeout,
    Wakeup::Ping,
];

impl Wakeup {
    fn slot(self) -> usize {
        match self {
            Wakeup::Dial => 0,
            Wakeup::ConnectTimeout => 1,
            Wakeup::ReadTimeout => 2,
            Wakeup::Ping => 3,
            Wakeup::RequestTimeout => 4,
            Wakeup::CloseTimeout => 5,
            Wakeup::ClientExpiry => 6,
            Wakeup::ProbeTimeout => 7,
            Wakeup::ReadOnlyProbe => 8,
        }
    }
}

/// The earliest deadline for each reason, if the session has one, and the earliest of all.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Timers {
    at: [Option<Instant>; 9],
    /// The earliest deadline and its reason, kept as deadlines are set rather than found by a
    /// scan. `Session::each_deadline` walks reasons in [`ALL`]'s order and a tie keeps the
    /// first, so a tie reports the reason `ALL` puts first.
    first: Option<(Instant, Wakeup)>,
}

impl Timers {
    /// Notes a deadline for `why`, keeping the earliest.
    fn set(&mut self, why: Wakeup, at: Instant) {
        let slot = &mut self.at[why.slot()];
        if slot.is_none_or(|t| at < t) {
            *slot = Some(at);
        }
        if self.first.is_none_or(|(t, _)| at < t) {
            self.first = Some((at, why));
        }
    }

    /// True if the deadline for `why` exists and has passed.
    pub(super) fn is_due(&self, why: Wakeup, now: Instant) -> bool {
        self.at[why.slot()].is_some_and(|t| t <= now)
    }

    /// The earliest deadline and its reason.
    pub(super) fn next(&self) -> Option<(Instant, Wakeup)> {
        self.first
    }
}

impl Session {
    /// Every deadline the session has now, with its reason.
    pub(super) fn timers(&self) -> Timers {
        let mut t = Timers::default();
        self.each_deadline(|why, at| t.set(why, at));
        t
    }

    /// Calls `f` with every deadline the session has now and its reason, in `ALL`'s order: the
    /// one table both [`timers`](Self::timers) and [`poll_timeout`](Self::poll_timeout) read.
    /// Generic so that `poll_timeout`, which the driver asks after every turn and every request,
    /// keeps only a minimum instead of filling the table.
    fn each_deadline(&self, mut f: impl FnMut(Wakeup, Instant)) {
        let read_timeout = self.read_timeout();
        match &self.link {
            Link::Idle { at, .. } => f(Wakeup::Dial, *at),
            Link::Dialing { deadline, .. } | Link::Handshaking { deadline, .. } => {
                f(Wakeup::ConnectTimeout, *deadline)
            }
            Link::Up {
                last_recv,
                last_send,
                ..
            } => {
                f(Wakeup::ReadTimeout, *last_recv + read_timeout);
                f(Wakeup::Ping, *last_send + read_timeout / 2);
            }
            Link::Down => {}
        }
        if let Some(Reverse(at)) = self.pipe.deadlines.peek() {
            f(Wakeup::RequestTimeout, *at);
        }
        if let Phase::Closing { deadline } = self.phase {
            f(Wakeup::CloseTimeout, deadline);
        }
        if self.config.client_side_expiry && self.phase == Phase::Running && self.session_id != 0 {
            if let Some(timeout) = self.negotiated {
                f(Wakeup::ClientExpiry, self.last_heard + timeout);
            }
        }
        for p in &self.probing.open {
            f(Wakeup::ProbeTimeout, p.deadline);
        }
        if let Some(at) = self.probing.ro_at {
            f(Wakeup::ReadOnlyProbe, at);
        }
    }

    /// Time passed: fires whatever timers are due (connect attempts, pings, dead links, request
    /// timeouts, close, probes, client-side expiry).
    pub fn handle_timeout(&mut self, now: Instant) {
        for why in FIRING_ORDER {
            // Read afresh for each: firing one timer sets, moves or clears others.
            if !self.timers().is_due(why, now) {
                continue;
            }
            match why {
                Wakeup::RequestTimeout => self.pipe.expire(now, &mut self.events),
                Wakeup::CloseTimeout => {
                    debug!("close timed out waiting for the server");
                    self.finish_close();
                    return;
                }
                Wakeup::ClientExpiry => {
                    warn!("no server heard from for the session timeout: expiring locally");
                    self.session_lost(now, LostReason::Expired);
                }
                Wakeup::ProbeTimeout => {
                    let overdue: Vec<ProbeId> = self
                        .probing
                        .open
                        .iter()
                        .filter(|p| now >= p.deadline)
                        .map(|p| p.id)
                        .collect();
                    for id in overdue {
                        self.handle_probe_result(now, id, Err(()));
                    }
                }
                Wakeup::ReadOnlyProbe => {
                    self.probing.ro_at = None;
                    self.start_ro_probe(now);
                }
                Wakeup::Dial => self.dial(now),
                Wakeup::ConnectTimeout => {
                    let why = if matches!(self.link, Link::Dialing { .. }) {
                        "connect timeout: the TCP connection did not open in time"
                    } else {
                        "connect timeout: the server did not answer the handshake in time"
                    };
                    self.attempt_failed(why);
                    self.link_down(now, true, why);
                }
                Wakeup::ReadTimeout => self.link_down(now, true, "read timeout: nothing received"),
                Wakeup::Ping => {
                    if let Link::Up { last_send, .. } = &mut self.link {
                        *last_send = now;
                    }
                    let _ = encode_request(&mut self.out, usize::MAX, xid::PING, &Request::Ping);
                }
            }
        }
    }

    /// When the session next needs `handle_timeout`, if ever.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut first: Option<Instant> = None;
        self.each_deadline(|_, at| {
            if first.is_none_or(|t| at < t) {
                first = Some(at);
            }
        });
        // The same table as `timers`: every test and simulation checks that they agree.
        debug_assert_eq!(first, self.timers().next().map(|(at, _)| at));
        first
    }

    /// The next wakeup and its reason.
    pub fn next_wakeup(&self) -> Option<(Instant, Wakeup)> {
        self.timers().next()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// The earliest deadline by a scan in `ALL`'s order, as `next` reported it before it was
    /// kept incrementally.
    fn scan(t: &Timers) -> Option<(Instant, Wakeup)> {
        let mut best: Option<(Instant, Wakeup)> = None;
        for why in ALL {
            if let Some(at) = t.at[why.slot()] {
                if best.is_none_or(|(b, _)| at < b) {
                    best = Some((at, why));
                }
            }
        }
        best
    }

    #[test]
    fn kept_earliest_matches_a_scan_ties_included() {
        let base = Instant::now();
        // Every assignment of "absent / +0 / +1 / +2 seconds" to four of the reasons, set in
        // ALL's order as Session::timers does, plus a second, later deadline for one of them.
        let reasons = [
            Wakeup::Dial,
            Wakeup::Ping,
            Wakeup::RequestTimeout,
            Wakeup::ProbeTimeout,
        ];
        for n in 0..4usize.pow(4) {
            let mut t = Timers::default();
            let mut k = n;
            for why in reasons {
                if k % 4 > 0 {
                    t.set(why, base + Duration::from_secs((k % 4) as u64 - 1));
                }
                k /= 4;
            }
            t.set(Wakeup::ProbeTimeout, base + Duration::from_secs(5));
            assert_eq!(t.next(), scan(&t), "case {n}");
        }
    }
}
