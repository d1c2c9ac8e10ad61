//! kazoo's `Lock` (and, through [`ContenderQueue`], its `ReadLock`/`WriteLock` and the election),
//! plus Curator's re-entrant `InterProcessMutex` layout.
//!
//! Layout (kazoo's): each contender creates an ephemeral sequential child of the lock path named
//! `<uuid hex>__lock__<sequence>`, holding its identifier as data. A contender holds the lock
//! when no contender with a smaller sequence number matches the names it is excluded by
//! (`__lock__`, plus `extra_lock_patterns`); otherwise it watches the closest such predecessor
//! (one watch per waiter, no herd) and looks again when that goes. Sequence numbers compare as
//! kazoo compares them, as the strings `-?\d{10}` after the pattern.
//!
//! Curator's `InterProcessMutex` names its nodes `_c_<uuid>-lock-<sequence>`; give kazoo's lock
//! `extra_lock_patterns(["-lock-"])` to contend with it, or use [`InterProcessMutex`], which
//! writes Curator's layout and honours both.
//!
//! Trustworthiness: an acquire that is dropped (cancelled, timed out) or fails half-way deletes
//! the node it created (see [`crate::protected::NodeGuard`]); a ConnectionLoss during the create
//! finds the node again by its GUID; while held, [`Ownership`] reports a suspended or lost
//! session and carries the fencing token; dropping a held lock sends the delete.

use std::future::Future;
use std::task::Poll;
use std::time::{Duration, Instant};

use bytes::Bytes;
use zk_client::{Client, Error};

use crate::ownership::{LossPolicy, Ownership, OwnershipLost, OwnershipState};
use crate::protected::{
    child_path, create_protected, curator_prefix, node_name, retry_loss, Guid, NodeGuard,
    ProtectedMode,
};

/// kazoo's node name of an exclusive lock (and of a write lock).
pub const LOCK_NAME: &str = "__lock__";
/// kazoo's node name of a read lock.
pub const READ_LOCK_NAME: &str = "__rlock__";
/// Curator's lock node name (after its protected prefix), as kazoo's `extra_lock_patterns` names
/// it.
pub const CURATOR_LOCK_PATTERN: &str = "-lock-";

/// The sequence number of `name` if it ends with one of `patterns` followed by `-?\d{10}` (the
/// regex kazoo uses), as kazoo compares them: the string.
pub(crate) fn sequence_of<'a>(name: &'a str, patterns: &[String]) -> Option<&'a str> {
    if name.len() < 10 || !name.is_char_boundary(name.len() - 10) {
        return None;
    }
    let (head, digits) = name.split_at(name.len() - 10);
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // `-?`: a negative sequence (after the counter wrapped) keeps its sign.
    if let Some(before_sign) = head.strip_suffix('-') {
        if patterns.iter().any(|p| before_sign.ends_with(p.as_str())) {
            return Some(&name[head.len() - 1..]);
        }
    }
    if patterns.iter().any(|p| head.ends_with(p.as_str())) {
        return Some(digits);
    }
    None
}

/// Runs `fut` until `deadline` (if any): `None` when the deadline passed first.
pub(crate) async fn until<F: Future>(
    client: &Client,
    deadline: Option<Instant>,
    fut: F,
) -> Option<F::Output> {
    let Some(deadline) = deadline else {
        return Some(fut.await);
    };
    let mut timer = client.runtime().timer(deadline);
    let mut fut = std::pin::pin!(fut);
    std::future::poll_fn(|cx| {
        if let Poll::Ready(v) = fut.as_mut().poll(cx) {
            return Poll::Ready(Some(v));
        }
        timer.poll_fire(cx).map(|()| None)
    })
    .await
}

/// What a contender holds once it is through.
#[derive(Debug)]
struct Held {
    ownership: Ownership,
}

/// The queue of contenders under one path that kazoo's Lock, ReadLock, WriteLock and Election,
/// and Curator's mutex, share: create a protected ephemeral sequential node, wait until no
/// excluding predecessor is left. Public so other recipes can build on it.
#[derive(Debug)]
pub struct ContenderQueue {
    client: Client,
    path: String,
    /// The name prefix: the GUID and the node name (`<hex>__lock__`, `_c_<uuid>-lock-`).
    prefix: String,
    /// The patterns of the names that exclude this contender when their sequence is smaller.
    exclude: Vec<String>,
    /// The patterns of every contender (for `contenders()`).
    all: Vec<String>,
    data: Bytes,
    policy: LossPolicy,
    held: Option<Held>,
}

impl ContenderQueue {
    /// A contender under `path` whose node name is `prefix` plus the sequence, excluded by
    /// contenders whose names match `exclude`; `own` is its own pattern (for
    /// [`contenders`](Self::contenders)). Nothing is sent until an acquire.
    pub fn new(
        client: &Client,
        path: &str,
        prefix: String,
        own: &str,
        exclude: Vec<String>,
        data: Bytes,
    ) -> ContenderQueue {
        let mut all = exclude.clone();
        if !all.iter().any(|p| p == own) {
            all.push(own.to_owned());
        }
        ContenderQueue {
            client: client.clone(),
            path: path.trim_end_matches('/').to_owned(),
            prefix,
            exclude,
            all,
            data,
            policy: LossPolicy::default(),
            held: None,
        }
    }

    /// The loss policy of the [`Ownership`] handed out when acquired.
    pub fn set_policy(&mut self, policy: LossPolicy) {
        self.policy = policy;
    }

    /// Adds patterns of other implementations' contenders (kazoo's `extra_lock_patterns`).
    pub fn add_patterns(&mut self, patterns: impl IntoIterator<Item = String>) {
        for p in patterns {
            if !self.exclude.contains(&p) {
                self.exclude.push(p.clone());
            }
            if !self.all.contains(&p) {
                self.all.push(p);
            }
        }
    }

    /// The path contenders queue under.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The client this contender uses.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Whether this contender is through (holds the lock).
    pub fn is_acquired(&self) -> bool {
        self.held.is_some()
    }

    /// The ownership while held.
    pub fn ownership(&self) -> Option<&Ownership> {
        self.held.as_ref().map(|h| &h.ownership)
    }

    /// Queues up and waits until through, or until `deadline` (`Ok(false)`), or at once when
    /// `blocking` is false and someone is ahead (`Ok(false)`). A contender that is through
    /// already returns `Ok(true)`. When it returns anything but `Ok(true)`, or is dropped before
    /// it returns, its node is deleted.
    ///
    /// Errors with NoAuth, InvalidPath, and the session's errors (SessionExpired, Closed);
    /// ConnectionLoss is recovered from.
    pub async fn acquire(
        &mut self,
        blocking: bool,
        deadline: Option<Instant>,
    ) -> Result<bool, Error> {
        if self.held.is_some() {
            return Ok(true);
        }
        let client = self.client.clone();
        let mut guard = NodeGuard::new(&client, &self.path, &self.prefix);
        loop {
            // Subscribed before the create, so the ownership sees every state change after it.
            let changes = client.state_changes();
            guard.sending();
            let (node, stat) = create_protected(
                &client,
                &self.path,
                &self.prefix,
                self.data.clone(),
                ProtectedMode::EPHEMERAL_SEQUENTIAL,
            )
            .await?;
            guard.created(&node);
            let name = node_name(&node).to_owned();
            let Some(mine) = name.strip_prefix(self.prefix.as_str()).map(str::to_owned) else {
                return Err(Error::Protocol(format!(
                    "the server named a sequential node {node:?}"
                )));
            };
            match self.wait_turn(&name, &mine, blocking, deadline).await? {
                Turn::Through => {
                    guard.disarm();
                    self.held = Some(Held {
                        ownership: Ownership::new(
                            &client,
                            changes,
                            node,
                            stat.ephemeral_owner,
                            stat.czxid,
                            self.policy,
                        ),
                    });
                    return Ok(true);
                }
                // The guard deletes the node.
                Turn::GaveUp => return Ok(false),
                // Our node is gone (its session ended, or someone deleted it): queue up again,
                // as kazoo does, unless the session is over (the create then fails).
                Turn::Vanished => {
                    guard.forget();
                    continue;
                }
            }
        }
    }

    /// Waits until no excluding contender with a smaller sequence is left.
    async fn wait_turn(
        &self,
        name: &str,
        mine: &str,
        blocking: bool,
        deadline: Option<Instant>,
    ) -> Result<Turn, Error> {
        let client = &self.client;
        loop {
            let children = retry_loss(|| client.get_children(&self.path)).await?;
            let mut found_self = false;
            let mut predecessor: Option<(&str, &str)> = None;
            for child in children.iter() {
                if child == name {
                    found_self = true;
                    continue;
                }
                if let Some(seq) = sequence_of(child, &self.exclude) {
                    if seq < mine && predecessor.is_none_or(|(s, _)| seq > s) {
                        predecessor = Some((seq, child));
                    }
                }
            }
            if !found_self {
                return Ok(Turn::Vanished);
            }
            let Some((_, pred)) = predecessor else {
                return Ok(Turn::Through);
            };
            if !blocking {
                return Ok(Turn::GaveUp);
            }
            let pred_path = child_path(&self.path, pred);
            // Subscribed before the exists, so that no reconnect after it goes unseen.
            let mut changes = client.state_changes();
            let (stat, watch) = retry_loss(|| client.exists(&pred_path).watch()).await?;
            if stat.is_none() {
                // Gone between the listing and the watch: look again.
                continue;
            }
            let watch = async {
                if crate::sabotage::is(crate::sabotage::Break::WaiterIgnoresWatch) {
                    return std::future::pending().await;
                }
                Some(watch.await)
            };
            // As kazoo's Lock does, a reconnect also means look again, rather than trusting the
            // re-armed watch alone: a predecessor that went while we were cut off is noticed by
            // the next listing even if its deletion never reaches us as an event.
            let reconnected = async {
                if !changes.next_connected().await {
                    // No more states: the watch ends with the session and says why.
                    std::future::pending::<()>().await;
                }
                None
            };
            match until(
                client,
                deadline,
                futures_lite::future::or(watch, reconnected),
            )
            .await
            {
                None => return Ok(Turn::GaveUp),
                // Any event (deleted, changed) or a reconnect means look again; a watch that
                // ended with the session reports the session's error.
                Some(None | Some(Ok(_))) => {}
                Some(Some(Err(e))) => return Err(e),
            }
        }
    }

    /// Gives up a held node without waiting: the delete is sent now, nobody awaits it.
    pub(crate) fn abandon(&mut self) {
        if let Some(held) = self.held.take() {
            drop(std::future::IntoFuture::into_future(
                self.client.delete(held.ownership.node()),
            ));
        }
    }

    /// Releases: deletes the node and waits for the server. `Ok(false)` if not held.
    ///
    /// Errors with the session's errors other than ConnectionLoss (retried); the lock counts as
    /// released anyway, since an ephemeral node whose delete fails goes with its session.
    pub async fn release(&mut self) -> Result<bool, Error> {
        let Some(held) = self.held.take() else {
            return Ok(false);
        };
        let node = held.ownership.node().to_owned();
        match retry_loss(|| self.client.delete(&node)).await {
            Ok(()) | Err(Error::NoNode { .. }) => Ok(true),
            Err(e) => Err(e),
        }
    }

    /// The identifiers (node data) of every contender, in queue order (kazoo's `contenders()`):
    /// the holder first.
    ///
    /// Errors with NoAuth and the session's errors; a missing lock path means no contenders.
    pub async fn contenders(&self) -> Result<Vec<String>, Error> {
        let children = match retry_loss(|| self.client.get_children(&self.path)).await {
            Ok(c) => c,
            Err(Error::NoNode { .. }) => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut queued: Vec<(&str, &str)> = children
            .iter()
            .filter_map(|c| sequence_of(c, &self.all).map(|s| (s, c)))
            .collect();
        queued.sort();
        let mut out = Vec::with_capacity(queued.len());
        for (_, child) in queued {
            match retry_loss(|| self.client.get_data(&child_path(&self.path, child))).await {
                Ok((data, _)) => out.push(String::from_utf8_lossy(&data).into_owned()),
                Err(Error::NoNode { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }
}

impl Drop for ContenderQueue {
    fn drop(&mut self) {
        // Dropping a held lock releases it.
        self.abandon();
    }
}

/// Where a contender stands after waiting.
enum Turn {
    Through,
    GaveUp,
    Vanished,
}

/// kazoo's `Lock`: an exclusive, non-re-entrant lock (see the [module](self) docs for the layout).
///
/// ```text
/// let mut lock = Lock::new(&client, "/locks/db", "worker-7");
/// lock.acquire().await?;
/// let token = lock.fencing_token();
/// // ... work, while watching lock.lost() ...
/// lock.release().await?;
/// ```
#[derive(Debug)]
pub struct Lock {
    queue: ContenderQueue,
}

macro_rules! lock_common {
    () => {
        /// Uses `policy` for the [`Ownership`] handed out when acquired (default
        /// [`LossPolicy::Standard`]).
        pub fn with_policy(mut self, policy: LossPolicy) -> Self {
            self.queue.set_policy(policy);
            self
        }

        /// Waits until acquired (kazoo's `acquire()`). Dropping the future cancels: the node it
        /// created is deleted. Returns at once if this handle holds it already.
        ///
        /// Errors with NoAuth, InvalidPath and the session's errors (SessionExpired, Closed);
        /// ConnectionLoss is recovered from. The node is deleted on error.
        pub async fn acquire(&mut self) -> Result<(), Error> {
            self.queue.acquire(true, None).await.map(|_| ())
        }

        /// Waits at most `timeout` (kazoo's `acquire(timeout=...)`): `Ok(false)` if not acquired
        /// in time, with the node deleted.
        ///
        /// Errors as [`acquire`](Self::acquire).
        pub async fn acquire_timeout(&mut self, timeout: Duration) -> Result<bool, Error> {
            let deadline = self.queue.client().runtime().now() + timeout;
            self.queue.acquire(true, Some(deadline)).await
        }

        /// Acquires only if nobody is ahead (kazoo's `acquire(blocking=False)`): `Ok(false)`
        /// otherwise, with the node deleted.
        ///
        /// Errors as [`acquire`](Self::acquire).
        pub async fn try_acquire(&mut self) -> Result<bool, Error> {
            self.queue.acquire(false, None).await
        }

        /// Releases (kazoo's `release()`): deletes the node. `Ok(false)` if it was not held.
        ///
        /// Errors with the session's errors other than ConnectionLoss; the handle counts as
        /// released anyway (an ephemeral node goes with its session).
        pub async fn release(&mut self) -> Result<bool, Error> {
            self.queue.release().await
        }

        /// Whether this handle holds it (kazoo's `is_acquired`). Says nothing about the session;
        /// see [`state`](Self::state).
        pub fn is_acquired(&self) -> bool {
            self.queue.is_acquired()
        }

        /// The ownership while held: node, session, fencing token, loss signal.
        pub fn ownership(&self) -> Option<&Ownership> {
            self.queue.ownership()
        }

        /// The fencing token while held: the `czxid` of this holder's node.
        pub fn fencing_token(&self) -> Option<i64> {
            self.ownership().map(Ownership::fencing_token)
        }

        /// Whether ownership holds now; [`OwnershipState::Lost`] when not acquired.
        pub fn state(&self) -> OwnershipState {
            self.ownership()
                .map_or(OwnershipState::Lost, Ownership::state)
        }

        /// A future resolving when ownership counts as lost under the policy (see
        /// [`Ownership::lost`]); `None` when not acquired.
        pub fn lost(&self) -> Option<OwnershipLost> {
            self.ownership().map(Ownership::lost)
        }

        /// The identifiers of every contender in queue order, the holder first (kazoo's
        /// `contenders()`).
        ///
        /// Errors with NoAuth and the session's errors.
        pub async fn contenders(&self) -> Result<Vec<String>, Error> {
            self.queue.contenders().await
        }

        /// The lock path.
        pub fn path(&self) -> &str {
            self.queue.path()
        }
    };
}

impl Lock {
    /// A lock on `path` for a contender named `identifier` (its node's data, shown by
    /// [`contenders`](Self::contenders)). Nothing is sent until an acquire.
    pub fn new(client: &Client, path: &str, identifier: &str) -> Lock {
        Lock::with_names(client, path, identifier, LOCK_NAME, &[LOCK_NAME])
    }

    /// Gives the lock up without waiting (the delete is sent now).
    pub(crate) fn abandon(&mut self) {
        self.queue.abandon();
    }

    /// kazoo's `Lock` internals: own node name and the names that exclude it.
    pub(crate) fn with_names(
        client: &Client,
        path: &str,
        identifier: &str,
        node_name: &str,
        exclude: &[&str],
    ) -> Lock {
        Lock {
            queue: Lock::queue_with_names(client, path, identifier, node_name, exclude),
        }
    }

    /// The contender queue of a kazoo-layout lock (`<uuid hex><node_name><sequence>`).
    pub(crate) fn queue_with_names(
        client: &Client,
        path: &str,
        identifier: &str,
        node_name: &str,
        exclude: &[&str],
    ) -> ContenderQueue {
        ContenderQueue::new(
            client,
            path,
            format!("{}{node_name}", Guid::new().hex()),
            node_name,
            exclude.iter().map(|s| (*s).to_owned()).collect(),
            Bytes::from(identifier.to_owned()),
        )
    }

    /// Also treats nodes matching these patterns (followed by a sequence number) as contenders
    /// (kazoo's `extra_lock_patterns`), e.g. [`CURATOR_LOCK_PATTERN`] to contend with Curator's
    /// `InterProcessMutex`.
    pub fn extra_lock_patterns<I, S>(mut self, patterns: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.queue
            .add_patterns(patterns.into_iter().map(Into::into));
        self
    }

    lock_common!();
}

/// Curator's `InterProcessMutex`: an exclusive lock in Curator's layout
/// (`_c_<uuid>-lock-<sequence>`), re-entrant per handle: each [`acquire`](Self::acquire) on a
/// handle that holds it adds one to a count, each [`release`](Self::release) takes one off, and
/// the node goes when the count reaches zero. It also honours kazoo's `__lock__` contenders, so
/// kazoo, Curator and this crate can share one lock path.
#[derive(Debug)]
pub struct InterProcessMutex {
    queue: ContenderQueue,
    count: usize,
}

impl InterProcessMutex {
    /// A mutex on `path`; `identifier` is written as the node's data. Nothing is sent until an
    /// acquire.
    pub fn new(client: &Client, path: &str, identifier: &str) -> InterProcessMutex {
        InterProcessMutex {
            queue: ContenderQueue::new(
                client,
                path,
                format!("{}lock-", curator_prefix(&Guid::new())),
                CURATOR_LOCK_PATTERN,
                vec![CURATOR_LOCK_PATTERN.to_owned(), LOCK_NAME.to_owned()],
                Bytes::from(identifier.to_owned()),
            ),
            count: 0,
        }
    }

    /// Uses `policy` for the [`Ownership`] handed out when acquired.
    pub fn with_policy(mut self, policy: LossPolicy) -> Self {
        self.queue.set_policy(policy);
        self
    }

    /// Waits until acquired, or adds one to the count if this handle holds it. Dropping the
    /// future cancels (the node it created is deleted).
    ///
    /// Errors with NoAuth, InvalidPath and the session's errors.
    pub async fn acquire(&mut self) -> Result<(), Error> {
        self.queue.acquire(true, None).await?;
        self.count += 1;
        Ok(())
    }

    /// Waits at most `timeout`: `Ok(false)` if not acquired in time. Adds one to the count if
    /// this handle holds it.
    ///
    /// Errors as [`acquire`](Self::acquire).
    pub async fn acquire_timeout(&mut self, timeout: Duration) -> Result<bool, Error> {
        let deadline = self.queue.client().runtime().now() + timeout;
        let got = self.queue.acquire(true, Some(deadline)).await?;
        if got {
            self.count += 1;
        }
        Ok(got)
    }

    /// Takes one off the count; at zero, deletes the node. `Ok(false)` if it was not held.
    ///
    /// Errors with the session's errors (the handle counts as released anyway).
    pub async fn release(&mut self) -> Result<bool, Error> {
        match self.count {
            0 => Ok(false),
            1 => {
                self.count = 0;
                self.queue.release().await
            }
            _ => {
                self.count -= 1;
                Ok(true)
            }
        }
    }

    /// How many times this handle holds it (0 when not held).
    pub fn hold_count(&self) -> usize {
        self.count
    }

    /// Whether this handle holds it (Curator's `isAcquiredInThisProcess`).
    pub fn is_acquired(&self) -> bool {
        self.queue.is_acquired()
    }

    /// The ownership while held.
    pub fn ownership(&self) -> Option<&Ownership> {
        self.queue.ownership()
    }

    /// The fencing token while held.
    pub fn fencing_token(&self) -> Option<i64> {
        self.ownership().map(Ownership::fencing_token)
    }

    /// A future resolving when ownership counts as lost; `None` when not held.
    pub fn lost(&self) -> Option<OwnershipLost> {
        self.ownership().map(Ownership::lost)
    }

    /// The identifiers of every contender in queue order (Curator's `getParticipantNodes`, as
    /// data).
    ///
    /// Errors with NoAuth and the session's errors.
    pub async fn contenders(&self) -> Result<Vec<String>, Error> {
        self.queue.contenders().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pats(p: &[&str]) -> Vec<String> {
        p.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn sequences_as_kazoo_reads_them() {
        let lock = pats(&["__lock__"]);
        assert_eq!(
            sequence_of("abc__lock__0000000012", &lock),
            Some("0000000012")
        );
        assert_eq!(
            sequence_of("abc__lock__-0000000012", &lock),
            Some("-0000000012")
        );
        assert_eq!(sequence_of("abc__rlock__0000000012", &lock), None);
        assert_eq!(sequence_of("abc__lock__000000012", &lock), None);
        assert_eq!(sequence_of("abc__lock__00000000x2", &lock), None);
        let curator = pats(&["__lock__", "-lock-"]);
        assert_eq!(
            sequence_of("_c_8b-aa-lock-0000000003", &curator),
            Some("0000000003")
        );
        assert_eq!(sequence_of("lock-0000000003", &curator), None);
        assert_eq!(sequence_of("é", &curator), None);
        let rw = pats(&["__lock__", "__rlock__"]);
        assert_eq!(sequence_of("x__rlock__0000000001", &rw), Some("0000000001"));
    }
}
