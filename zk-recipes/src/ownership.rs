//! The loss signal every lock, lease, latch and election shares: whether what a holder owns is
//! still its own, a future that resolves the moment it may not be, and a fencing token.
//!
//! Ownership rests on an ephemeral node, so it lives exactly as long as the session that created
//! the node:
//!
//! - [`OwnershipState::Held`]: connected, in the session that created the node.
//! - [`OwnershipState::MaybeLost`]: the connection is suspended. The session may still be alive
//!   (and the node with it), or the ensemble may be expiring it right now; the client cannot
//!   tell until it reconnects.
//! - [`OwnershipState::Lost`]: the session is over (expired, closed, or replaced by a new one),
//!   and the node with it. Final.
//!
//! What to do about `MaybeLost` is the holder's choice, named by a [`LossPolicy`] as in Curator:
//! [`LossPolicy::Standard`] (Curator's `StandardConnectionStateErrorPolicy`, the default) treats a
//! suspension as a loss, since another process may own the lock by the time this one hears from
//! the ensemble again; [`LossPolicy::SessionOnly`] (Curator's
//! `SessionConnectionStateErrorPolicy`) waits for the session's verdict and signals only a real
//! loss.
//!
//! The fencing token is the `czxid` of the holder's node: the zxid of the transaction that
//! created it. Every later holder's node is created later, so its token is larger; a resource that
//! remembers the largest token it has seen can refuse a stale holder's writes.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use futures_core::Stream;
use zk_client::{Client, Error, SessionState, StateChanges};

/// Whether the holder of a lock, lease, latch or election still owns it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OwnershipState {
    /// Connected, in the session that created the holder's node.
    Held,
    /// The connection is suspended: the session, and so the ownership, may be lost.
    MaybeLost,
    /// The session that owned the node is over: ownership is lost for good.
    Lost,
}

/// When [`Ownership::lost`] resolves (Curator's connection-state error policies).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum LossPolicy {
    /// A suspended connection counts as a loss (Curator's standard policy): the future resolves
    /// with [`OwnershipState::MaybeLost`] as soon as the connection is suspended, even if it comes
    /// back in the same session later.
    #[default]
    Standard,
    /// Only the end of the session counts (Curator's session policy): the future resolves with
    /// [`OwnershipState::Lost`] only.
    SessionOnly,
}

impl LossPolicy {
    /// Whether `state` counts as a loss under this policy.
    pub fn counts(self, state: OwnershipState) -> bool {
        match state {
            OwnershipState::Held => false,
            OwnershipState::MaybeLost => self == LossPolicy::Standard,
            OwnershipState::Lost => true,
        }
    }
}

/// What the session has done since the node was created, drained from a state subscription made
/// before the create, so nothing in between is missed.
#[derive(Debug)]
struct Seen {
    changes: StateChanges,
    /// The connection was suspended at some point since the node was created.
    suspended: bool,
    /// The session is over.
    lost: bool,
}

/// One holder's ownership: the node it rests on, the session that owns the node, the fencing
/// token, and the loss signal. Lock-like recipes hand it out while held
/// (e.g. [`Lock::ownership`](crate::lock::Lock::ownership)).
#[derive(Debug, Clone)]
pub struct Ownership {
    client: Client,
    node: String,
    session: i64,
    token: i64,
    policy: LossPolicy,
    seen: Arc<Mutex<Seen>>,
}

impl Ownership {
    /// Ownership of `node`, created in session `session` by the transaction `czxid`. `changes`
    /// must have been subscribed before the node was created.
    pub(crate) fn new(
        client: &Client,
        changes: StateChanges,
        node: String,
        session: i64,
        czxid: i64,
        policy: LossPolicy,
    ) -> Ownership {
        Ownership {
            client: client.clone(),
            node,
            session,
            token: czxid,
            policy,
            seen: Arc::new(Mutex::new(Seen {
                changes,
                suspended: false,
                lost: false,
            })),
        }
    }

    /// The holder's node (full path).
    pub fn node(&self) -> &str {
        &self.node
    }

    /// The session that owns the node (its `ephemeralOwner`).
    pub fn session_id(&self) -> i64 {
        self.session
    }

    /// The fencing token: the `czxid` of the holder's node. It grows with every new holder, so a
    /// guarded resource can refuse writes carrying a smaller token than one it has seen.
    pub fn fencing_token(&self) -> i64 {
        self.token
    }

    /// The policy [`lost`](Self::lost) follows.
    pub fn policy(&self) -> LossPolicy {
        self.policy
    }

    /// Whether the holder owns it now (see [`OwnershipState`]). Does not ask the server; see
    /// [`verify`](Self::verify) for that.
    pub fn state(&self) -> OwnershipState {
        let mut seen = self.lock_seen();
        drain(&mut seen, self.session, &self.client);
        self.judge(&seen, false)
    }

    /// Whether the connection was suspended at some point since the node was created (under
    /// [`LossPolicy::Standard`] that is a loss even if the session survived).
    pub fn was_suspended(&self) -> bool {
        let mut seen = self.lock_seen();
        drain(&mut seen, self.session, &self.client);
        seen.suspended
    }

    /// Resolves as soon as ownership counts as lost under the policy: with
    /// [`OwnershipState::MaybeLost`] (Standard policy, the connection was suspended since the node
    /// was created) or [`OwnershipState::Lost`] (the session is over). Resolves at once if that
    /// already happened. Each call gives an independent future; it holds no request and sends
    /// nothing.
    pub fn lost(&self) -> OwnershipLost {
        OwnershipLost {
            // Subscribed before the first look at the facts, so no change falls in between.
            changes: self.client.state_changes(),
            owner: self.clone(),
        }
    }

    /// Asks the server whether the node still exists, was created by the same transaction
    /// (`czxid`) and belongs to this session. `Ok(false)` means ownership is lost, whatever the
    /// session says (an administrator may have deleted the node).
    ///
    /// Errors with the session's errors (SessionExpired means lost too).
    pub async fn verify(&self) -> Result<bool, Error> {
        Ok(match self.client.exists(&self.node).await? {
            Some(stat) => stat.czxid == self.token && stat.ephemeral_owner == self.session,
            None => false,
        })
    }

    fn lock_seen(&self) -> MutexGuard<'_, Seen> {
        // A panic while holding it leaves only flags behind, which stay meaningful.
        self.seen.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The state from what was seen and the client's facts now. `sticky` reports a past
    /// suspension as MaybeLost (what the Standard policy's future resolves with).
    fn judge(&self, seen: &Seen, sticky: bool) -> OwnershipState {
        if seen.lost || self.client.client_id().map(|s| s.id) != Some(self.session) {
            return OwnershipState::Lost;
        }
        if self.client.state() == SessionState::Suspended || (sticky && seen.suspended) {
            return OwnershipState::MaybeLost;
        }
        OwnershipState::Held
    }
}

/// Takes one state change into account.
fn observe(seen: &mut Seen, state: SessionState, session: i64, client: &Client) {
    match state {
        SessionState::Suspended => seen.suspended = true,
        SessionState::Lost(_) | SessionState::Connecting => seen.lost = true,
        // A reconnect into another session means ours expired.
        SessionState::Connected | SessionState::ConnectedReadOnly
            if client.client_id().map(|s| s.id) != Some(session) =>
        {
            seen.lost = true
        }
        // Connected in our session, or a state this crate does not know yet: judge by the
        // facts alone.
        _ => {}
    }
}

/// Reads every change already queued on the shared subscription, without waiting.
fn drain(seen: &mut Seen, session: i64, client: &Client) {
    let mut cx = Context::from_waker(Waker::noop());
    while let Poll::Ready(item) = Pin::new(&mut seen.changes).poll_next(&mut cx) {
        match item {
            Some(state) => observe(seen, state, session, client),
            // The client's driver stopped: the session is over.
            None => {
                seen.lost = true;
                break;
            }
        }
    }
}

/// The future of [`Ownership::lost`]: resolves with the state that counts as a loss.
#[must_use = "futures do nothing unless awaited"]
#[derive(Debug)]
pub struct OwnershipLost {
    owner: Ownership,
    changes: StateChanges,
}

impl Future for OwnershipLost {
    type Output = OwnershipState;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<OwnershipState> {
        let this = &mut *self;
        let owner = &this.owner;
        let mut seen = owner.lock_seen();
        drain(&mut seen, owner.session, &owner.client);
        loop {
            let state = owner.judge(&seen, true);
            if owner.policy.counts(state) {
                return Poll::Ready(state);
            }
            match Pin::new(&mut this.changes).poll_next(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(s)) => observe(&mut seen, s, owner.session, &owner.client),
                Poll::Ready(None) => seen.lost = true,
            }
        }
    }
}
