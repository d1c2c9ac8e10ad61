//! The request pipeline: xids, requests waiting to be sent, requests in flight (replies must
//! match the head of this queue, PROTOCOL.md §5), their deadlines, and resolving them in
//! submission order however they end (reply, local failure, timeout, lost link, lost session).
//!
//! [`Pipeline`] holds the state and what can be decided from it alone; sending (which depends on
//! the link, the server version and watch re-arming) is the `impl Session` block below.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::time::Instant;

use super::config::Credentials;
use super::event::{Event, RequestId};
use super::requests::WatchIntent;
use super::{Link, Phase, Session, VersionState};
use crate::error::Error;
use crate::proto::{encode_request, OpCode, Request};
use crate::version::ServerVersion;

/// Who is waiting for a reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Origin {
    /// A user request, and the watch it arms if any.
    User {
        id: RequestId,
        watch: Option<WatchIntent>,
        /// The watch flag was left off on the wire because the server's persistent watch on
        /// the path already covers it.
        rides: bool,
    },
    /// A request the session sends on its own behalf; nobody waits.
    Internal(Internal),
    /// closeSession.
    Close,
}

/// Requests the session sends for itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Internal {
    /// removeWatches after the last local watcher of a server watch went.
    RemoveWatch,
    /// addWatch that steps a path's server mode down to persistent.
    Downgrade,
    /// A SASL token (handled before decoding, in `on_sasl_reply`).
    Sasl,
}

/// A request not yet sent: encoded with a placeholder xid, patched when it goes out.
#[derive(Debug)]
pub(super) struct Pending {
    pub(super) origin: Origin,
    pub(super) op: OpCode,
    pub(super) frame: Vec<u8>,
    /// The client path, for errors and watch registration.
    pub(super) path: String,
    pub(super) deadline: Option<Instant>,
    pub(super) needs: Option<ServerVersion>,
    /// For auth requests: the credentials to replay on later connections once sent.
    pub(super) auth: Option<Credentials>,
}

/// A request sent and not yet answered.
#[derive(Debug)]
pub(super) struct InFlight {
    pub(super) xid: i32,
    pub(super) op: OpCode,
    pub(super) origin: Origin,
    pub(super) path: String,
    pub(super) deadline: Option<Instant>,
    /// Its timeout fired and it was resolved; its reply is still expected (replies are FIFO)
    /// and is discarded.
    pub(super) timed_out: bool,
    /// Never sent: it failed locally (e.g. Unsupported once the server version was learnt) and
    /// resolves with this error when it reaches the head, so replies keep submission order.
    pub(super) local: Option<Error>,
}

/// Every request between `submit` and its reply.
#[derive(Debug)]
pub(super) struct Pipeline {
    /// The id of the next submitted request.
    pub(super) next_request: u64,
    /// The xid of the next request sent.
    pub(super) next_xid: i32,
    /// Submitted, not yet sent: waiting for a connection, the handshake, watch re-arming or the
    /// server version.
    pub(super) queue: VecDeque<Pending>,
    /// Sent on this connection, oldest first.
    pub(super) in_flight: VecDeque<InFlight>,
    /// Auth packets sent on this connection, oldest first: the user request waiting for each
    /// (none for replayed credentials, or once it timed out) and its deadline.
    pub(super) auth_in_flight: VecDeque<(Option<RequestId>, Option<Instant>)>,
    /// Every request deadline, earliest first (stale ones are popped when they come due).
    pub(super) deadlines: BinaryHeap<Reverse<Instant>>,
}

impl Default for Pipeline {
    fn default() -> Self {
        Pipeline {
            next_request: 1,
            next_xid: 1,
            queue: VecDeque::new(),
            in_flight: VecDeque::new(),
            auth_in_flight: VecDeque::new(),
            deadlines: BinaryHeap::new(),
        }
    }
}

impl Pipeline {
    /// User requests submitted and not yet resolved (queued or in flight).
    pub(super) fn pending_user_requests(&self) -> usize {
        let user = |o: &Origin| matches!(o, Origin::User { .. });
        self.queue.iter().filter(|p| user(&p.origin)).count()
            + self
                .in_flight
                .iter()
                .filter(|f| user(&f.origin) && !f.timed_out)
                .count()
            + self.auth_in_flight.iter().filter(|a| a.0.is_some()).count()
    }

    /// The xid the next request sent gets.
    pub(super) fn peek_xid(&self) -> i32 {
        self.next_xid
    }

    /// Uses up the xid `peek_xid` named.
    pub(super) fn advance_xid(&mut self) {
        // Java wraps from 2^31-1 back to 1; 0 and negatives are never used.
        self.next_xid = if self.next_xid == i32::MAX {
            1
        } else {
            self.next_xid + 1
        };
    }

    /// Resolves a request that never went out with `err`, after every request sent before it.
    pub(super) fn fail_in_order(&mut self, p: Pending, err: Error, events: &mut VecDeque<Event>) {
        let Origin::User { id, .. } = p.origin else {
            return;
        };
        if self.in_flight.is_empty() {
            events.push_back(Event::Reply {
                id,
                result: Err(err),
                watcher: None,
            });
        } else {
            self.in_flight.push_back(InFlight {
                xid: 0,
                op: p.op,
                origin: p.origin,
                path: p.path,
                deadline: None,
                timed_out: false,
                local: Some(err),
            });
        }
    }

    /// Resolves local failures that have reached the head of the in-flight queue.
    pub(super) fn drain_local_heads(&mut self, events: &mut VecDeque<Event>) {
        while self.in_flight.front().is_some_and(|f| f.local.is_some()) {
            if let Some(f) = self.in_flight.pop_front() {
                if let (Origin::User { id, .. }, Some(err)) = (f.origin, f.local) {
                    events.push_back(Event::Reply {
                        id,
                        result: Err(err),
                        watcher: None,
                    });
                }
            }
        }
    }

    /// Resolves with [`Error::Timeout`] every user request whose deadline has passed: queued
    /// ones leave the queue; sent ones stay in flight, marked, so their late replies keep the
    /// queue in step and are discarded.
    pub(super) fn expire(&mut self, now: Instant, events: &mut VecDeque<Event>) {
        let mut due = false;
        while let Some(Reverse(at)) = self.deadlines.peek() {
            if *at > now {
                break;
            }
            self.deadlines.pop();
            due = true;
        }
        if !due {
            return;
        }
        let mut kept = VecDeque::with_capacity(self.queue.len());
        for p in self.queue.drain(..) {
            match (p.deadline, p.origin) {
                (Some(d), Origin::User { id, .. }) if d <= now => events.push_back(Event::Reply {
                    id,
                    result: Err(Error::Timeout),
                    watcher: None,
                }),
                _ => kept.push_back(p),
            }
        }
        self.queue = kept;
        for (waiter, deadline) in self.auth_in_flight.iter_mut() {
            if let (Some(id), Some(d)) = (*waiter, *deadline) {
                if d <= now {
                    // Its reply is still expected (auth replies keep their own order); it finds
                    // nobody waiting.
                    *waiter = None;
                    events.push_back(Event::Reply {
                        id,
                        result: Err(Error::Timeout),
                        watcher: None,
                    });
                }
            }
        }
        for f in self.in_flight.iter_mut() {
            if let (Some(d), Origin::User { id, .. }, false) = (f.deadline, f.origin, f.timed_out) {
                if d <= now {
                    f.timed_out = true;
                    events.push_back(Event::Reply {
                        id,
                        result: Err(Error::Timeout),
                        watcher: None,
                    });
                }
            }
        }
    }

    /// Resolves every request not yet sent with `err` (the session is over or closing).
    pub(super) fn fail_queue(&mut self, err: Error, events: &mut VecDeque<Event>) {
        for p in std::mem::take(&mut self.queue) {
            if let Origin::User { id, .. } = p.origin {
                events.push_back(Event::Reply {
                    id,
                    result: Err(err.clone()),
                    watcher: None,
                });
            }
        }
    }

    /// Resolves every request sent on this connection with `err` (the link is gone), or with
    /// its own local failure; timed-out ones were resolved already.
    pub(super) fn fail_in_flight(&mut self, err: Error, events: &mut VecDeque<Event>) {
        for f in std::mem::take(&mut self.in_flight) {
            if let (Origin::User { id, .. }, false) = (f.origin, f.timed_out) {
                events.push_back(Event::Reply {
                    id,
                    result: Err(f.local.unwrap_or_else(|| err.clone())),
                    watcher: None,
                });
            }
        }
        for id in std::mem::take(&mut self.auth_in_flight)
            .into_iter()
            .filter_map(|(id, _)| id)
        {
            events.push_back(Event::Reply {
                id,
                result: Err(err.clone()),
                watcher: None,
            });
        }
    }
}

impl Session {
    /// True when a request can go straight into the output buffer: connected, nothing queued
    /// ahead of it, watches re-armed, and the server version known if it matters.
    pub(super) fn can_send_now(&self, needs: Option<ServerVersion>) -> bool {
        matches!(self.link, Link::Up { .. })
            && self.sasl.is_none()
            && self.pipe.queue.is_empty()
            && self.has_send_room()
            && !self.rearm_pending
            && !matches!(self.version, VersionState::Probing(_))
            && (needs.is_none() || self.version != VersionState::Unknown)
    }

    /// True while fewer than `max_in_flight` requests are sent and unanswered.
    pub(super) fn has_send_room(&self) -> bool {
        self.pipe.in_flight.len() < self.config.max_in_flight.max(1)
    }

    /// Encodes a request into the output buffer under `xid`, refusing one over `max_request`.
    pub(super) fn encode_into_out(&mut self, xid: i32, request: &Request) -> Result<(), Error> {
        encode_request(&mut self.out, self.config.max_request, xid, request).map_err(
            |e| match e {
                crate::proto::EncodeError::FrameTooLarge { len, max } => {
                    Error::RequestTooLarge { len, max }
                }
            },
        )?;
        Ok(())
    }

    /// Records a request just written to the output buffer.
    pub(super) fn push_in_flight(
        &mut self,
        now: Instant,
        xid: i32,
        op: OpCode,
        origin: Origin,
        path: String,
        deadline: Option<Instant>,
    ) {
        if let Link::Up { last_send, .. } = &mut self.link {
            *last_send = now;
        }
        self.pipe.in_flight.push_back(InFlight {
            xid,
            op,
            origin,
            path,
            deadline,
            timed_out: false,
            local: None,
        });
    }

    /// Sends queued requests in order while the connection is up and nothing holds the queue.
    pub(super) fn flush_queue(&mut self, now: Instant) {
        if !matches!(self.link, Link::Up { .. }) || self.phase != Phase::Running {
            return;
        }
        // SASL first: the server takes nothing else until it is done (PROTOCOL.md §13.3).
        if self.sasl.is_some() {
            return;
        }
        if self.rearm_pending || matches!(self.version, VersionState::Probing(_)) {
            return;
        }
        while let Some(front) = self.pipe.queue.front() {
            if !self.has_send_room() {
                // The rest goes out as replies come in (handle_bytes flushes again).
                return;
            }
            if let Some(needs) = front.needs {
                match self.version {
                    VersionState::Unknown => {
                        self.start_version_probe(now);
                        return;
                    }
                    VersionState::Probing(_) => return,
                    VersionState::Known(server) if server < needs => {
                        if let Some(p) = self.pipe.queue.pop_front() {
                            let err = Error::Unsupported {
                                op: p.op,
                                needs,
                                server,
                            };
                            self.pipe.fail_in_order(p, err, &mut self.events);
                        }
                        continue;
                    }
                    // New enough, or unknowable (sent as if new enough).
                    VersionState::Known(_) | VersionState::Unavailable => {}
                }
            }
            let Some(mut p) = self.pipe.queue.pop_front() else {
                return;
            };
            if let Some(c) = p.auth.take() {
                self.out.extend_from_slice(&p.frame);
                self.credentials.push(c);
                let id = match p.origin {
                    Origin::User { id, .. } => Some(id),
                    _ => None,
                };
                self.pipe.auth_in_flight.push_back((id, p.deadline));
                if let Link::Up { last_send, .. } = &mut self.link {
                    *last_send = now;
                }
                continue;
            }
            let xid = self.pipe.peek_xid();
            self.pipe.advance_xid();
            if p.frame.len() >= 8 {
                p.frame[4..8].copy_from_slice(&xid.to_be_bytes());
            }
            self.out.extend_from_slice(&p.frame);
            self.push_in_flight(now, xid, p.op, p.origin, p.path, p.deadline);
        }
    }
}
