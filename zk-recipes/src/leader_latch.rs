//! Curator's `LeaderLatch`: every participant keeps a protected ephemeral sequential node
//! `_c_<uuid>-latch-<sequence>` (its id as data) under the latch path; the one with the smallest
//! sequence leads, each other one watches the node just ahead of it.
//!
//! Leadership changes whenever the queue does, so the latch needs someone to react to watch
//! events: [`LeaderLatch::start`] spawns one task on the client's runtime that does (as Curator's
//! background callbacks do). It ends when the latch is closed or dropped (deleting the node), or
//! when the client's driver stops, so it never outlives the session's owner.
//!
//! Loss: a suspended connection ends leadership under [`LossPolicy::Standard`] (Curator's
//! default); the session's end always does. After a reconnect the queue is read again (as
//! Curator's `RECONNECTED` does); after an expiry, with a client that starts a new session, a new
//! node is created and the participant queues up again.

use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use futures_core::Stream;
use zk_client::{Client, Error, SessionState, Watch};

use crate::lock::sequence_of;
use crate::ownership::{LossPolicy, Ownership, OwnershipState};
use crate::protected::{
    child_path, create_protected, curator_prefix, node_name, retry_loss, Guid, ProtectedMode,
};

/// Curator's latch node name (after the protected prefix).
pub const LATCH_NAME: &str = "latch-";

/// A change of leadership, as [`LeaderLatch::events`] reports it.
#[derive(Debug, Clone)]
pub enum LeadershipEvent {
    /// This participant leads now; the ownership carries the fencing token and the loss signal.
    Gained(Ownership),
    /// This participant no longer leads: [`OwnershipState::MaybeLost`] when the connection was
    /// suspended (standard policy), [`OwnershipState::Lost`] when the session ended, and
    /// [`OwnershipState::Held`] when it simply stopped being first (its node was deleted, or the
    /// latch was closed).
    Lost(OwnershipState),
}

#[derive(Debug, Default)]
struct Inner {
    leader: Option<Ownership>,
    node: Option<String>,
    closed: bool,
    /// The task has deleted the node and ended.
    finished: bool,
    /// A fatal error that ended the task (e.g. NoAuth).
    error: Option<Error>,
    task_waker: Option<Waker>,
    waiters: Vec<Waker>,
    subscribers: BTreeMap<u64, (VecDeque<LeadershipEvent>, Option<Waker>)>,
    next_subscriber: u64,
}

#[derive(Debug, Default)]
struct Shared(Mutex<Inner>);

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn publish(&self, ev: LeadershipEvent) {
        let mut g = self.lock();
        match &ev {
            LeadershipEvent::Gained(o) => g.leader = Some(o.clone()),
            LeadershipEvent::Lost(_) => g.leader = None,
        }
        for (queue, waker) in g.subscribers.values_mut() {
            queue.push_back(ev.clone());
            if let Some(w) = waker.take() {
                w.wake();
            }
        }
        for w in g.waiters.drain(..) {
            w.wake();
        }
    }
}

/// Curator's `LeaderLatch` (see the [module](self) docs).
#[derive(Debug)]
pub struct LeaderLatch {
    client: Client,
    path: String,
    id: String,
    policy: LossPolicy,
    shared: Arc<Shared>,
    started: bool,
}

impl LeaderLatch {
    /// A participant named `id` in the latch at `path`. Nothing is sent until
    /// [`start`](Self::start).
    pub fn new(client: &Client, path: &str, id: &str) -> LeaderLatch {
        LeaderLatch {
            client: client.clone(),
            path: path.trim_end_matches('/').to_owned(),
            id: id.to_owned(),
            policy: LossPolicy::default(),
            shared: Arc::new(Shared::default()),
            started: false,
        }
    }

    /// Uses `policy` to decide whether a suspended connection ends leadership (default
    /// [`LossPolicy::Standard`], Curator's).
    pub fn with_policy(mut self, policy: LossPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Joins the latch: starts the task that keeps this participant's node and follows the
    /// queue. Does nothing if started already.
    ///
    /// Errors with [`Error::Runtime`] if the runtime cannot start the task.
    pub fn start(&mut self) -> Result<(), Error> {
        if self.started {
            return Ok(());
        }
        self.started = true;
        let task = Task {
            // Not counted: the latch's task must not keep the session open by itself.
            client: self.client.background_handle(),
            path: self.path.clone(),
            prefix: format!("{}{LATCH_NAME}", curator_prefix(&Guid::new())),
            data: Bytes::from(self.id.clone()),
            policy: self.policy,
            shared: self.shared.clone(),
        };
        self.client
            .runtime()
            .spawn(Box::pin(task.run()))
            .map_err(|e| Error::Runtime(format!("cannot start the leader latch: {e}")))
    }

    /// Whether this participant leads now (Curator's `hasLeadership`).
    pub fn has_leadership(&self) -> bool {
        self.shared.lock().leader.is_some()
    }

    /// The leadership's ownership (fencing token, loss signal) while leading.
    pub fn ownership(&self) -> Option<Ownership> {
        self.shared.lock().leader.clone()
    }

    /// This participant's node, once created.
    pub fn node(&self) -> Option<String> {
        self.shared.lock().node.clone()
    }

    /// Waits until this participant leads (Curator's `await()`), resolving to its ownership.
    ///
    /// Errors with [`Error::Closed`] once the latch is closed (or was never started), and with the
    /// error that stopped the latch's task.
    pub fn await_leadership(&self) -> impl Future<Output = Result<Ownership, Error>> + '_ {
        std::future::poll_fn(move |cx| {
            let mut g = self.shared.lock();
            if let Some(o) = &g.leader {
                return Poll::Ready(Ok(o.clone()));
            }
            if let Some(e) = &g.error {
                return Poll::Ready(Err(e.clone()));
            }
            if g.closed || g.finished || !self.started {
                return Poll::Ready(Err(Error::Closed));
            }
            g.waiters.push(cx.waker().clone());
            Poll::Pending
        })
    }

    /// Every leadership change from now on, as a stream; it ends when the latch's task does.
    pub fn events(&self) -> LeadershipEvents {
        let mut g = self.shared.lock();
        let id = g.next_subscriber;
        g.next_subscriber += 1;
        g.subscribers.insert(id, (VecDeque::new(), None));
        LeadershipEvents {
            shared: self.shared.clone(),
            id,
        }
    }

    /// The id (node data) of the current leader, without taking part (Curator's `getLeader`);
    /// `None` when nobody takes part.
    ///
    /// Errors with NoAuth and the session's errors.
    pub async fn leader(client: &Client, path: &str) -> Result<Option<String>, Error> {
        Ok(LeaderLatch::participants(client, path)
            .await?
            .into_iter()
            .next())
    }

    /// The ids of every participant, the leader first (Curator's `getParticipants`).
    ///
    /// Errors with NoAuth and the session's errors.
    pub async fn participants(client: &Client, path: &str) -> Result<Vec<String>, Error> {
        let path = path.trim_end_matches('/');
        let mut out = Vec::new();
        for node in sorted_participants(client, path).await? {
            match retry_loss(|| client.get_data(&child_path(path, &node))).await {
                Ok((d, _)) => out.push(String::from_utf8_lossy(&d).into_owned()),
                Err(Error::NoNode { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// Leaves the latch (Curator's `close()`): the task deletes the node and ends; this waits for
    /// that.
    pub async fn close(self) {
        self.signal_close();
        std::future::poll_fn(|cx| {
            let mut g = self.shared.lock();
            if g.finished || !self.started {
                return Poll::Ready(());
            }
            g.waiters.push(cx.waker().clone());
            Poll::Pending
        })
        .await
    }

    fn signal_close(&self) {
        let mut g = self.shared.lock();
        g.closed = true;
        if let Some(w) = g.task_waker.take() {
            w.wake();
        }
    }
}

impl Drop for LeaderLatch {
    fn drop(&mut self) {
        // The task sees it, deletes the node and ends.
        self.signal_close();
    }
}

/// The stream of [`LeaderLatch::events`].
#[derive(Debug)]
pub struct LeadershipEvents {
    shared: Arc<Shared>,
    id: u64,
}

impl Stream for LeadershipEvents {
    type Item = LeadershipEvent;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<LeadershipEvent>> {
        let mut g = self.shared.lock();
        let finished = g.finished;
        let Some((queue, waker)) = g.subscribers.get_mut(&self.id) else {
            return Poll::Ready(None);
        };
        if let Some(ev) = queue.pop_front() {
            return Poll::Ready(Some(ev));
        }
        if finished {
            return Poll::Ready(None);
        }
        *waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

impl Drop for LeadershipEvents {
    fn drop(&mut self) {
        self.shared.lock().subscribers.remove(&self.id);
    }
}

/// The participants' node names, in sequence order.
async fn sorted_participants(client: &Client, path: &str) -> Result<Vec<String>, Error> {
    let children = match retry_loss(|| client.get_children(path)).await {
        Ok(c) => c,
        Err(Error::NoNode { .. }) => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let pats = [LATCH_NAME.to_owned()];
    let mut seq: Vec<(String, String)> = children
        .iter()
        .filter_map(|c| sequence_of(c, &pats).map(|s| (s.to_owned(), c.to_owned())))
        .collect();
    seq.sort();
    Ok(seq.into_iter().map(|(_, c)| c).collect())
}

/// Errors that trying again cannot fix: the task ends with them.
fn is_fatal(e: &Error) -> bool {
    matches!(
        e,
        Error::NoAuth { .. }
            | Error::InvalidAcl { .. }
            | Error::InvalidPath { .. }
            | Error::InvalidArgument(_)
            | Error::BadArguments { .. }
            | Error::NoChildrenForEphemerals { .. }
            | Error::AuthFailed
            | Error::Unimplemented
            | Error::Runtime(_)
    )
}

/// What wakes the task.
enum Wake {
    Closed,
    State(Option<SessionState>),
    Watch,
}

struct Task {
    client: Client,
    path: String,
    prefix: String,
    data: Bytes,
    policy: LossPolicy,
    shared: Arc<Shared>,
}

impl Task {
    async fn run(self) {
        let mut changes = self.client.state_changes();
        // This participant's node and the session that owns it.
        let mut node: Option<(String, i64)> = None;
        let mut leading = false;
        let outcome = loop {
            if self.shared.lock().closed {
                break Ok(());
            }
            match self.step(&mut changes, &mut node, &mut leading).await {
                Ok(true) => {}
                Ok(false) => break Ok(()),
                Err(Error::Closed) => break Ok(()),
                Err(e) if is_fatal(&e) => break Err(e),
                // Session trouble (expired, moved, unknown, connection lost): if the session that
                // owns the node is gone, so is the node, and a client that renews sessions lets
                // us queue up again in the new one.
                Err(_) => {
                    let now = self.client.client_id().map(|s| s.id);
                    if node.as_ref().is_some_and(|(_, owner)| Some(*owner) != now) {
                        node = None;
                        self.shared.lock().node = None;
                        if leading {
                            leading = false;
                            self.shared
                                .publish(LeadershipEvent::Lost(OwnershipState::Lost));
                        }
                    }
                    // Wait for a connection (a client that does not renew stays Lost until it is
                    // restarted) rather than fail every request at once, over and over.
                    while !self.client.state().is_connected() {
                        if self.next_state(&mut changes).await.is_none() {
                            break;
                        }
                    }
                }
            }
        };
        if leading {
            self.shared
                .publish(LeadershipEvent::Lost(OwnershipState::Held));
        }
        if let Some((n, _)) = node {
            let _ = retry_loss(|| self.client.delete(&n)).await;
        }
        let mut g = self.shared.lock();
        g.leader = None;
        g.node = None;
        g.finished = true;
        if let Err(e) = outcome {
            g.error = Some(e);
        }
        for w in g.waiters.drain(..) {
            w.wake();
        }
        for (_, w) in g.subscribers.values_mut() {
            if let Some(w) = w.take() {
                w.wake();
            }
        }
    }

    /// The next state change; `None` when the latch is closed or the client's driver stopped.
    async fn next_state(&self, changes: &mut zk_client::StateChanges) -> Option<SessionState> {
        std::future::poll_fn(|cx| {
            {
                let mut g = self.shared.lock();
                if g.closed {
                    return Poll::Ready(None);
                }
                g.task_waker = Some(cx.waker().clone());
            }
            Pin::new(&mut *changes).poll_next(cx)
        })
        .await
    }

    /// One round: make sure the node exists, read the queue, lead or watch, wait for a change.
    /// `Ok(false)` ends the task.
    async fn step(
        &self,
        changes: &mut zk_client::StateChanges,
        node: &mut Option<(String, i64)>,
        leading: &mut bool,
    ) -> Result<bool, Error> {
        let client = &self.client;
        if node.is_none() {
            let (path, stat) = create_protected(
                client,
                &self.path,
                &self.prefix,
                self.data.clone(),
                ProtectedMode::EPHEMERAL_SEQUENTIAL,
            )
            .await?;
            self.shared.lock().node = Some(path.clone());
            *node = Some((path, stat.ephemeral_owner));
        }
        let mine = node.as_ref().map(|(p, _)| p.clone()).unwrap_or_default();
        let queue = sorted_participants(client, &self.path).await?;
        let index = queue.iter().position(|c| c == node_name(&mine));
        let mut watch: Option<Watch> = None;
        match index {
            None => {
                // Our node is gone (deleted by someone, or with its session): queue up again.
                *node = None;
                if *leading {
                    *leading = false;
                    self.shared
                        .publish(LeadershipEvent::Lost(OwnershipState::Held));
                }
                return Ok(true);
            }
            Some(0) => {
                if !*leading && client.state().is_connected() {
                    let stat = retry_loss(|| client.exists(&mine)).await?;
                    if let Some(stat) = stat {
                        *leading = true;
                        let own = Ownership::new(
                            client,
                            client.state_changes(),
                            mine.clone(),
                            stat.ephemeral_owner,
                            stat.czxid,
                            self.policy,
                        );
                        self.shared.publish(LeadershipEvent::Gained(own));
                    } else {
                        return Ok(true);
                    }
                }
            }
            Some(i) => {
                if *leading {
                    *leading = false;
                    self.shared
                        .publish(LeadershipEvent::Lost(OwnershipState::Held));
                }
                let ahead = child_path(&self.path, &queue[i - 1]);
                let (stat, w) = retry_loss(|| client.exists(&ahead).watch()).await?;
                if stat.is_none() {
                    return Ok(true);
                }
                watch = Some(w);
            }
        }
        // Wait for the watch, a state change, or close.
        let wake = std::future::poll_fn(|cx| {
            {
                let mut g = self.shared.lock();
                if g.closed {
                    return Poll::Ready(Wake::Closed);
                }
                g.task_waker = Some(cx.waker().clone());
            }
            if let Poll::Ready(s) = Pin::new(&mut *changes).poll_next(cx) {
                return Poll::Ready(Wake::State(s));
            }
            if let Some(w) = watch.as_mut() {
                if Pin::new(w).poll(cx).is_ready() {
                    return Poll::Ready(Wake::Watch);
                }
            }
            Poll::Pending
        })
        .await;
        match wake {
            Wake::Closed => Ok(false),
            // The client's driver stopped: the session is over for good.
            Wake::State(None) => Err(Error::Closed),
            Wake::State(Some(SessionState::Suspended)) => {
                if *leading && self.policy == LossPolicy::Standard {
                    *leading = false;
                    self.shared
                        .publish(LeadershipEvent::Lost(OwnershipState::MaybeLost));
                }
                // Wait for the verdict before reading the queue again.
                loop {
                    match self.next_state(changes).await {
                        None => return Err(Error::Closed),
                        Some(SessionState::Suspended) => {}
                        Some(SessionState::Lost(_)) | Some(SessionState::Connecting) => {
                            return Err(Error::SessionExpired)
                        }
                        Some(_) => return Ok(true),
                    }
                }
            }
            Wake::State(Some(SessionState::Lost(_)))
            | Wake::State(Some(SessionState::Connecting)) => Err(Error::SessionExpired),
            Wake::State(Some(_)) | Wake::Watch => Ok(true),
        }
    }
}
