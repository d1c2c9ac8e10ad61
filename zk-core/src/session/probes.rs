//! Probes: four-letter words the session asks the driver to send on a side connection. `srvr`
//! learns the server's version when an operation needs it (and before re-arming persistent
//! watches); `isro` looks for a writable server while connected to a read-only one, with a
//! doubling pause between rounds.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use tracing::{debug, warn};

use super::event::{ConnId, ProbeId};
use super::{Link, Session, VersionState};
use crate::hosts::HostAddr;
use crate::version::ServerVersion;

/// A four-letter word the driver should send to a server on a fresh TCP connection, reading the
/// answer to EOF; report the outcome with `handle_probe_result`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    /// The probe's id.
    pub id: ProbeId,
    /// The server to ask.
    pub addr: HostAddr,
    /// When set, ask the peer of this connection (same resolved address) if it is still open.
    pub conn: Option<ConnId>,
    /// The word, e.g. `srvr` or `isro`.
    pub command: &'static str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ProbePurpose {
    Version { conn: ConnId },
    ReadOnly { host: usize, conn: ConnId },
}

#[derive(Debug, Clone, Copy)]
pub(super) struct OpenProbe {
    pub(super) id: ProbeId,
    pub(super) purpose: ProbePurpose,
    pub(super) deadline: Instant,
}

/// The probes in flight and the read-only search's schedule.
#[derive(Debug)]
pub(super) struct Probes {
    /// Asked for and not yet answered.
    pub(super) open: Vec<OpenProbe>,
    /// Waiting to be taken by `poll_probe`.
    pub(super) out: VecDeque<Probe>,
    /// The id of the next probe.
    pub(super) next_id: u64,
    /// When the next read-only probe goes out.
    pub(super) ro_at: Option<Instant>,
    /// The pause before the one after it.
    pub(super) ro_backoff: Duration,
    /// The host the last read-only probe asked.
    pub(super) ro_cursor: usize,
}

impl Probes {
    /// No probes yet; read-only probing starts with `ro_backoff`.
    pub(super) fn new(ro_backoff: Duration) -> Self {
        Probes {
            open: Vec::new(),
            out: VecDeque::new(),
            next_id: 1,
            ro_at: None,
            ro_backoff,
            ro_cursor: 0,
        }
    }
}

impl Session {
    /// A probe finished: `Ok` with the text the server sent before closing, `Err(())` if the
    /// connection failed or the answer was cut short.
    pub fn handle_probe_result(&mut self, now: Instant, probe: ProbeId, result: Result<&str, ()>) {
        let Some(pos) = self.probing.open.iter().position(|p| p.id == probe) else {
            return;
        };
        let open = self.probing.open.swap_remove(pos);
        match open.purpose {
            ProbePurpose::Version { conn } => {
                if self.current_conn() != Some(conn) || self.version != VersionState::Probing(probe)
                {
                    return;
                }
                self.version = match result.ok().and_then(ServerVersion::from_srvr) {
                    Some(v) => {
                        debug!(%v, "server version");
                        VersionState::Known(v)
                    }
                    None => {
                        warn!(
                            "could not learn the server version; sending as if it were new enough"
                        );
                        VersionState::Unavailable
                    }
                };
                self.version_settled(now);
            }
            ProbePurpose::ReadOnly { host, conn } => {
                if self.current_conn() != Some(conn) {
                    return;
                }
                if result.map(str::trim) == Ok("rw") {
                    debug!(host, "found a read-write server; moving there");
                    self.rotation.prefer(host);
                    self.link_down(now, true, "moving to a read-write server");
                } else {
                    self.schedule_ro_probe(now);
                }
            }
        }
    }

    pub(super) fn start_version_probe(&mut self, now: Instant) {
        if self.version != VersionState::Unknown {
            return;
        }
        let Link::Up { conn, host, .. } = self.link else {
            return;
        };
        let id = self.new_probe(now, ProbePurpose::Version { conn }, host, "srvr");
        self.version = VersionState::Probing(id);
    }

    pub(super) fn new_probe(
        &mut self,
        now: Instant,
        purpose: ProbePurpose,
        host: usize,
        command: &'static str,
    ) -> ProbeId {
        let id = ProbeId(self.probing.next_id);
        self.probing.next_id += 1;
        let conn = match purpose {
            ProbePurpose::Version { conn } => Some(conn),
            ProbePurpose::ReadOnly { .. } => None,
        };
        self.probing.out.push_back(Probe {
            id,
            addr: self.config.connect_string.hosts[host].clone(),
            conn,
            command,
        });
        self.probing.open.push(OpenProbe {
            id,
            purpose,
            deadline: now + self.connect_timeout(),
        });
        id
    }

    pub(super) fn schedule_ro_probe(&mut self, now: Instant) {
        if !matches!(
            self.link,
            Link::Up {
                read_only: true,
                ..
            }
        ) || self.hosts().len() < 2
        {
            return;
        }
        self.probing.ro_at = Some(now + self.probing.ro_backoff);
        self.probing.ro_backoff =
            (self.probing.ro_backoff * 2).min(self.config.read_only_probe_max);
    }

    pub(super) fn start_ro_probe(&mut self, now: Instant) {
        let Link::Up {
            conn,
            host: current,
            read_only: true,
            ..
        } = self.link
        else {
            return;
        };
        let n = self.hosts().len();
        self.probing.ro_cursor = (self.probing.ro_cursor + 1) % n;
        if self.probing.ro_cursor == current {
            self.probing.ro_cursor = (self.probing.ro_cursor + 1) % n;
        }
        let host = self.probing.ro_cursor;
        self.new_probe(now, ProbePurpose::ReadOnly { host, conn }, host, "isro");
    }
}
