//! Watch re-arming: on a new connection every live watch is set again with SetWatches (or
//! SetWatches2 when persistent watches exist), batched under 128 KiB of paths, relative to the
//! last zxid seen, so the server fires what changed meanwhile (one-shot watches) and persistent
//! watchers are told to resync (ZOOKEEPER-4698). Also the "riders": one-shot watches that leave
//! the watch flag off because a persistent watch on the path already delivers their events (a
//! re-arm lists them all the same, so that they catch up too).

use std::time::Instant;

use tracing::{debug, warn};

use super::event::{Event, WatchEnd};
use super::pipeline::Origin;
use super::requests::{self, WatchIntent};
use super::watches::WatchKind;
use super::{Session, VersionState};
use crate::proto::{encode_request, jute, xid, AddWatchMode, Request, SetWatches, SetWatches2};
use crate::version::ServerVersion;

/// SetWatches batches stay under this many bytes of paths (the Java client's 128 KiB).
const SET_WATCHES_BATCH: usize = 128 * 1024;

impl Session {
    /// Adjusts a watching request to the mode the server already holds for its path (see
    /// `WatchRegistry`): a one-shot watch on a path with a persistent mode is not sent (the
    /// local watcher rides on the persistent one), and a persistent watch on a recursively
    /// watched path asks for recursive again. Returns true when the watch flag was left off.
    /// `absolute`: the request's path bypasses the chroot (its session key is marked).
    pub(super) fn fit_to_server_mode(
        &self,
        request: &mut Request,
        intent: &mut WatchIntent,
        absolute: bool,
    ) -> bool {
        let path = requests::request_path(request);
        let key = if absolute {
            self.config.connect_string.chroot.key_of_server(path)
        } else {
            std::borrow::Cow::Borrowed(path)
        };
        let path: &str = &key;
        let mut mode = self.watches.mode_for(path);
        // An addWatch that failed locally (Unsupported, waiting for its turn to be reported)
        // will arm nothing.
        for (origin, p) in self
            .pipe
            .in_flight
            .iter()
            .filter(|f| f.local.is_none())
            .map(|f| (&f.origin, &f.path))
            .chain(self.pipe.queue.iter().map(|q| (&q.origin, &q.path)))
        {
            if let Origin::User {
                watch: Some(WatchIntent::Add { server, .. }),
                ..
            } = origin
            {
                if p == path && mode != Some(WatchKind::PersistentRecursive) {
                    mode = Some(*server);
                }
            }
        }
        let Some(mode) = mode else {
            return false;
        };
        match (intent, request) {
            (
                WatchIntent::Exists | WatchIntent::Data | WatchIntent::Child,
                Request::Exists(r)
                | Request::GetData(r)
                | Request::GetChildren(r)
                | Request::GetChildren2(r),
            ) => {
                r.watch = false;
                return true;
            }
            (
                WatchIntent::Add {
                    local: WatchKind::Persistent,
                    server,
                },
                Request::AddWatch(r),
            ) if mode == WatchKind::PersistentRecursive => {
                *server = WatchKind::PersistentRecursive;
                r.mode = AddWatchMode::PersistentRecursive.code();
            }
            _ => {}
        }
        false
    }

    /// Continues after the server version became known (or was found unknowable, or was not
    /// needed): re-arms watches if that waits, then sends what the queue holds.
    pub(super) fn version_settled(&mut self, now: Instant) {
        if self.rearm_pending {
            if self.watches.has_persistent() && self.version == VersionState::Unknown {
                self.start_version_probe(now);
            }
            if matches!(self.version, VersionState::Probing(_)) {
                return;
            }
            self.rearm_pending = false;
            self.rearm_watches();
        }
        self.restore_watch_flags();
        self.flush_queue(now);
    }

    /// Queued requests that left their watch flag off to ride on a persistent watch which is no
    /// longer armed on this connection get the flag back. The flag is the last byte of an
    /// exists, getData or getChildren frame.
    pub(super) fn restore_watch_flags(&mut self) {
        // An addWatch queued ahead of a rider arms the mode before the rider is processed,
        // unless the server turns out too old for it.
        let add_watch_works = match self.version {
            VersionState::Known(v) => v >= ServerVersion::new(3, 6, 0),
            _ => true,
        };
        let mut armed_ahead: Vec<&str> = Vec::new();
        for p in self.pipe.queue.iter_mut() {
            match &mut p.origin {
                Origin::User {
                    watch: Some(WatchIntent::Add { .. }),
                    ..
                } if add_watch_works => armed_ahead.push(p.path.as_str()),
                Origin::User {
                    watch: Some(WatchIntent::Add { .. }),
                    ..
                } => {}
                Origin::User { rides, .. } if *rides => {
                    let covered = self.watches.server_mode(&p.path).is_some()
                        || armed_ahead.contains(&p.path.as_str());
                    if !covered {
                        if let Some(flag) = p.frame.last_mut() {
                            *flag = 1;
                        }
                        *rides = false;
                    }
                }
                _ => {}
            }
        }
    }

    /// Sends SetWatches (or SetWatches2 when persistent watches exist) for every live watch.
    pub(super) fn rearm_watches(&mut self) {
        let supports_persistent = match self.version {
            VersionState::Known(v) => v >= ServerVersion::new(3, 6, 0),
            _ => true,
        };
        if self.watches.has_persistent() && !supports_persistent {
            warn!("the server is older than 3.6 and cannot re-arm persistent watches");
            for watcher in self.watches.drain_persistent() {
                self.events.push_back(Event::WatchEnded {
                    watcher,
                    reason: WatchEnd::Unsupported,
                });
            }
        }
        let chroot = self.config.connect_string.chroot.clone();
        let lists = self.watches.rearm_lists(|p| chroot.key_to_server(p));
        let use_v2 = !lists.persistent.is_empty() || !lists.recursive.is_empty();
        let relative_zxid = self.last_zxid;
        // Walk every list in batches whose paths stay under the limit.
        let mut sources: Vec<(usize, Vec<String>)> = vec![
            (0, lists.data),
            (1, lists.exist),
            (2, lists.child),
            (3, lists.persistent),
            (4, lists.recursive),
        ];
        let mut batch: [Vec<String>; 5] = Default::default();
        let mut size = 0;
        for (slot, paths) in sources.iter_mut() {
            for p in paths.drain(..) {
                let len = jute::string_len(&p);
                if size + len > SET_WATCHES_BATCH && size > 0 {
                    self.send_set_watches(use_v2, relative_zxid, &mut batch, "reconnect");
                    size = 0;
                }
                size += len;
                batch[*slot].push(p);
            }
        }
        if size > 0 {
            self.send_set_watches(use_v2, relative_zxid, &mut batch, "reconnect");
        }
        // ZOOKEEPER-4698: the server re-arms persistent watches without catch-up events, so
        // their watchers may have missed changes while we were away. Tell each one now, after
        // the SetWatches2 frames are in `out`: a re-read the consumer submits on seeing this goes
        // out after them (fast path: appended to `out`; otherwise queued, and the queue is only
        // flushed after re-arming), and the server handles a connection's requests in order, so
        // the re-read is answered as of a moment when the watch is armed again. Every change
        // after that read fires the watch; none is lost between the two.
        for watcher in self.watches.persistent_watchers() {
            self.events.push_back(Event::WatchResync { watcher });
        }
    }

    /// Arms one one-shot watch with SetWatches relative to `zxid`: the server fires it at once
    /// if the node changed after that zxid, and registers it otherwise.
    pub(super) fn arm_after_read(&mut self, path: &str, kind: WatchKind, zxid: i64) {
        let server_path = self.config.connect_string.chroot.key_to_server(path);
        let mut batch: [Vec<String>; 5] = Default::default();
        let slot = match kind {
            WatchKind::Data => 0,
            WatchKind::Exist => 1,
            WatchKind::Child => 2,
            _ => return,
        };
        batch[slot].push(server_path);
        self.send_set_watches(false, zxid, &mut batch, "late arm after a read");
    }

    /// Sends one SetWatches(2) frame with `batch` (emptied); `why` is for the log: a reconnect's
    /// re-arm, or one watch armed late after a read.
    pub(super) fn send_set_watches(
        &mut self,
        v2: bool,
        relative_zxid: i64,
        batch: &mut [Vec<String>; 5],
        why: &'static str,
    ) {
        let [data, exist, child, persistent, recursive] = std::mem::take(batch);
        debug!(
            why,
            relative_zxid,
            data = data.len(),
            exist = exist.len(),
            child = child.len(),
            persistent = persistent.len(),
            recursive = recursive.len(),
            "setWatches"
        );
        let request = if v2 {
            Request::SetWatches2(SetWatches2 {
                relative_zxid,
                data_watches: data,
                exist_watches: exist,
                child_watches: child,
                persistent_watches: persistent,
                persistent_recursive_watches: recursive,
            })
        } else {
            Request::SetWatches(SetWatches {
                relative_zxid,
                data_watches: data,
                exist_watches: exist,
                child_watches: child,
            })
        };
        let _ = encode_request(&mut self.out, usize::MAX, xid::SET_WATCHES, &request);
        self.set_watches_in_flight += 1;
    }
}
