//! kazoo's `SetPartitioner`: a set of items divided among the members of a party, each item held
//! by one member under a lock, divided again whenever the party changes.
//!
//! Layout (kazoo's): members join `path/party` as ephemeral `<uuid hex>-<identifier>` nodes (a
//! kazoo `ShallowParty`); each item is held with a kazoo [`Lock`] on `path/locks/<item>`. The
//! party must be stable for `time_boundary` (kazoo's `PatientChildrenWatch`) before a member
//! divides the set: by default, sorted items `i, i+n, i+2n, ...` to the member at index `i` of
//! the `n` sorted identifiers.
//!
//! States (kazoo's [`PartitionState`]): Allocating, then Acquired (the items are held); Release
//! when the party changes or the connection does (call [`SetPartitioner::release_set`], then
//! allocate again); Failure when the session is lost or the partitioner finished. kazoo runs the
//! allocation in the background; here it runs while [`SetPartitioner::wait_for_acquire`] is
//! awaited, and [`SetPartitioner::changed`] is the loss signal of an acquired set.
//!
//! The state itself moves on its own, as kazoo's does from its watch callbacks: a task on the
//! client's runtime (started by [`SetPartitioner::new`], holding nothing that keeps the session
//! open, ending with the partitioner or the client's driver) follows the session's state and the
//! acquired party's watch, so [`SetPartitioner::state`] and [`SetPartitioner::partition`] tell a
//! member that stopped polling (busy with its items) that its set is gone, and its `changed()`
//! wakes at once.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use futures_core::Stream;
use zk_client::{Client, Error, SessionState, StateChanges, Watch};

use crate::lock::Lock;
use crate::ownership::{Ownership, OwnershipState};
use crate::protected::{child_path, retry_loss, Guid};

/// A partitioner's state (kazoo's `PartitionState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PartitionState {
    /// Dividing the set and taking the items' locks.
    Allocating,
    /// This member holds its items.
    Acquired,
    /// The party or the connection changed: release the set and allocate again.
    Release,
    /// The session was lost (or the partitioner finished): create a new partitioner.
    Failure,
}

/// Divides `items` among `members` for `identifier` (kazoo's `partition_func`).
pub type PartitionFunc = Box<dyn Fn(&str, &[String], &[String]) -> Vec<String> + Send + Sync>;

/// kazoo's default division: sorted items `i, i+n, ...` for the member at index `i` of the `n`
/// sorted identifiers (none if `identifier` is not a member).
pub fn default_partition(identifier: &str, members: &[String], items: &[String]) -> Vec<String> {
    let mut items = items.to_vec();
    items.sort();
    let mut workers = members.to_vec();
    workers.sort();
    let Some(i) = workers.iter().position(|w| w == identifier) else {
        return Vec::new();
    };
    items.into_iter().skip(i).step_by(workers.len()).collect()
}

/// What the partitioner and its watcher task share.
#[derive(Debug)]
struct Watched {
    state: PartitionState,
    /// The session's state changes since the partitioner joined.
    states: StateChanges,
    /// The state changes ended (the client's driver stopped).
    ended: bool,
    /// The party watch of the allocation that acquired the set.
    party_watch: Option<Watch>,
    /// The partitioner is gone: the task ends.
    closed: bool,
    task_waker: Option<Waker>,
    /// Futures of `changed()` waiting for the state to leave Acquired.
    waiters: Vec<Waker>,
}

#[derive(Debug)]
struct Shared(Mutex<Watched>);

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Watched> {
        // Only plain values inside: a panic elsewhere leaves them meaningful.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The state after everything that has happened so far, wherever it is asked from: the
    /// changes are read with the task's waker, so the task stays the one woken by the next.
    fn current(&self) -> PartitionState {
        let mut g = self.lock();
        let waker = g
            .task_waker
            .clone()
            .unwrap_or_else(|| Waker::noop().clone());
        g.catch_up(&mut Context::from_waker(&waker));
        g.state
    }
}

impl Watched {
    /// Moves to `state`, waking whoever waits for a change.
    fn set(&mut self, state: PartitionState) {
        if self.state != state {
            self.state = state;
            if state != PartitionState::Acquired {
                self.party_watch = None;
            }
            for w in self.waiters.drain(..) {
                w.wake();
            }
        }
    }

    /// Takes into account every session state change and party change that has happened
    /// (kazoo's session listener and child watch), registering `cx` for the next ones.
    fn catch_up(&mut self, cx: &mut Context<'_>) {
        while !self.ended {
            let item = match Pin::new(&mut self.states).poll_next(cx) {
                Poll::Ready(item) => item,
                Poll::Pending => break,
            };
            match item {
                None | Some(SessionState::Lost(_)) | Some(SessionState::Connecting) => {
                    self.ended |= item.is_none();
                    self.set(PartitionState::Failure)
                }
                // A suspension (or anything else) may have cost the locks: release and
                // allocate again. While allocating, the allocation checks the locks itself.
                Some(_) if self.state == PartitionState::Acquired => {
                    self.set(PartitionState::Release)
                }
                Some(_) => {}
            }
        }
        if self.state == PartitionState::Acquired
            && !crate::sabotage::is(crate::sabotage::Break::PartitionerIgnoresParty)
        {
            // Any outcome (a change, or the watch ending with the session) means the set is to
            // be divided again; an ended session also shows in the states.
            let fired = self
                .party_watch
                .as_mut()
                .is_some_and(|w| Pin::new(w).poll(cx).is_ready());
            if fired {
                self.set(PartitionState::Release);
            }
        }
    }
}

/// The watcher task: keeps the state current while nobody asks, until the partitioner is gone
/// or the client's driver stops.
async fn watch_state(shared: Arc<Shared>) {
    std::future::poll_fn(|cx| {
        let mut g = shared.lock();
        if g.closed {
            return Poll::Ready(());
        }
        g.catch_up(cx);
        if g.ended {
            return Poll::Ready(());
        }
        g.task_waker = Some(cx.waker().clone());
        Poll::Pending
    })
    .await
}

/// kazoo's `SetPartitioner` (see the [module](self) docs).
pub struct SetPartitioner {
    client: Client,
    party_path: String,
    lock_path: String,
    items: Vec<String>,
    identifier: String,
    party_node: String,
    time_boundary: Duration,
    max_reaction_time: Duration,
    partition_func: PartitionFunc,
    locks: Vec<Lock>,
    partition: Vec<String>,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for SetPartitioner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SetPartitioner")
            .field("party_node", &self.party_node)
            .field("state", &self.state())
            .field("partition", &self.partition)
            .finish()
    }
}

impl SetPartitioner {
    /// Joins the party at `path/party` as `identifier` (which must be a valid node name part and
    /// unique in the party) to share `items`, and starts the task that follows the session and
    /// the party for it. kazoo's defaults: `time_boundary` 30 s, `max_reaction_time` 1 s (how
    /// long a lock wait lasts before the party is looked at again).
    ///
    /// Errors with InvalidArgument for an identifier containing `/`, NoAuth, the session's
    /// errors, and [`Error::Runtime`] if the runtime cannot start the task.
    pub async fn new(
        client: &Client,
        path: &str,
        items: Vec<String>,
        identifier: &str,
        time_boundary: Duration,
    ) -> Result<SetPartitioner, Error> {
        if identifier.contains('/') || identifier.is_empty() {
            return Err(Error::InvalidArgument(format!(
                "a party identifier is part of a node name: {identifier:?}"
            )));
        }
        let path = path.trim_end_matches('/');
        let party_path = format!("{path}/party");
        let lock_path = format!("{path}/locks");
        client.ensure_path(&lock_path).await?;
        client.ensure_path(&party_path).await?;
        // Subscribed before joining, so a loss of the session that joined is seen.
        let states = client.state_changes();
        let party_node = child_path(&party_path, &format!("{}-{identifier}", Guid::new().hex()));
        match retry_loss(|| client.create(&party_node, identifier).ephemeral()).await {
            Ok(_) | Err(Error::NodeExists { .. }) => {}
            Err(e) => return Err(e),
        }
        let shared = Arc::new(Shared(Mutex::new(Watched {
            state: PartitionState::Allocating,
            states,
            ended: false,
            party_watch: None,
            closed: false,
            task_waker: None,
            waiters: Vec::new(),
        })));
        let partitioner = SetPartitioner {
            client: client.clone(),
            party_path,
            lock_path,
            items,
            identifier: identifier.to_owned(),
            party_node,
            time_boundary,
            max_reaction_time: Duration::from_secs(1),
            partition_func: Box::new(default_partition),
            locks: Vec::new(),
            partition: Vec::new(),
            shared: shared.clone(),
        };
        // On failure the partitioner is dropped here, which leaves the party.
        client
            .runtime()
            .spawn(Box::pin(watch_state(shared)))
            .map_err(|e| Error::Runtime(format!("cannot start the partitioner's watcher: {e}")))?;
        Ok(partitioner)
    }

    /// How long one lock wait lasts before the party is looked at again (default 1 s).
    pub fn with_max_reaction_time(mut self, d: Duration) -> Self {
        self.max_reaction_time = d;
        self
    }

    /// Divides the set with `f` instead of [`default_partition`].
    pub fn with_partition_func(mut self, f: PartitionFunc) -> Self {
        self.partition_func = f;
        self
    }

    /// The state now: the watcher task moves it as the party and the session change, whether
    /// or not this partitioner is being polled.
    pub fn state(&self) -> PartitionState {
        self.shared.current()
    }

    /// The items this member holds (empty unless Acquired).
    pub fn partition(&self) -> &[String] {
        if self.state() == PartitionState::Acquired {
            &self.partition
        } else {
            &[]
        }
    }

    /// The ownership of each held item's lock (fencing tokens, loss signals).
    pub fn ownerships(&self) -> Vec<&Ownership> {
        self.locks.iter().filter_map(Lock::ownership).collect()
    }

    fn set_state(&self, state: PartitionState) {
        self.shared.lock().set(state);
    }

    /// Resolves when an acquired set must be released (the party or the connection changed:
    /// Release) or is lost (Failure): the holder's loss signal. Resolves at once in any other
    /// state.
    pub fn changed(&self) -> impl Future<Output = PartitionState> + '_ {
        std::future::poll_fn(move |cx| {
            // Caught up first (with the task's waker): the task wakes the waiters.
            let state = self.shared.current();
            if state == PartitionState::Acquired {
                self.shared.lock().waiters.push(cx.waker().clone());
                Poll::Pending
            } else {
                Poll::Ready(state)
            }
        })
    }

    /// Allocates: waits until the party is stable for `time_boundary`, divides the set, and
    /// takes this member's items' locks, starting over whenever the party changes meanwhile
    /// (kazoo's allocation, here run while awaited). Resolves to Acquired, or Failure if the
    /// session is lost. In Release, releases the set first. Dropping the future cancels: locks
    /// taken so far are released with the partitioner's next allocation or drop.
    ///
    /// Errors with NoAuth and the session's errors other than expiry (which gives Failure).
    pub async fn wait_for_acquire(&mut self) -> Result<PartitionState, Error> {
        if self.state() == PartitionState::Release {
            self.release_set().await?;
        }
        loop {
            if let s @ (PartitionState::Acquired | PartitionState::Failure) = self.state() {
                return Ok(s);
            }
            match self.allocate().await {
                Ok(()) => {}
                Err(Error::SessionExpired) | Err(Error::Closed) => {
                    self.release_locks().await;
                    self.set_state(PartitionState::Failure);
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// One allocation attempt: Acquired, or back to Allocating with no locks after a party
    /// change.
    async fn allocate(&mut self) -> Result<(), Error> {
        self.release_locks().await;
        let client = self.client.clone();
        // kazoo's PatientChildrenWatch: the party unchanged for time_boundary.
        let (members, mut watch) = loop {
            let (children, mut w) =
                retry_loss(|| client.get_children(&self.party_path).watch()).await?;
            client.sleep(self.time_boundary).await;
            if !fired(&mut w)? {
                break (children.to_vec(), w);
            }
        };
        let ids: Vec<String> = members
            .iter()
            .map(|m| {
                m.split_once('-')
                    .map_or(m.as_str(), |(_, id)| id)
                    .to_owned()
            })
            .collect();
        if !members
            .iter()
            .any(|m| child_path(&self.party_path, m) == self.party_node)
        {
            // Our party node is gone (its session ended): join again in this session.
            match retry_loss(|| {
                client
                    .create(&self.party_node, self.identifier.as_str())
                    .ephemeral()
            })
            .await
            {
                Ok(_) | Err(Error::NodeExists { .. }) => return Ok(()),
                Err(e) => return Err(e),
            }
        }
        let mine = (self.partition_func)(&self.identifier, &ids, &self.items);
        for item in &mine {
            let mut lock = Lock::new(&client, &child_path(&self.lock_path, item), "");
            loop {
                if lock.acquire_timeout(self.max_reaction_time).await? {
                    break;
                }
                if fired(&mut watch)? {
                    // The party changed: divide again (the locks go with `lock` and
                    // release_locks).
                    return Ok(());
                }
            }
            self.locks.push(lock);
            if fired(&mut watch)? {
                return Ok(());
            }
        }
        // A lock whose connection is suspended now, or was lost since it was taken, may be
        // someone else's already: divide again rather than hand out a set that is not ours.
        if self.client.state() == SessionState::Suspended
            || self.locks.iter().any(|l| l.state() != OwnershipState::Held)
        {
            return Ok(());
        }
        let mut g = self.shared.lock();
        // The watcher may have declared Failure meanwhile; that stays.
        if g.state == PartitionState::Allocating {
            self.partition = mine;
            g.party_watch = Some(watch);
            g.set(PartitionState::Acquired);
            if let Some(w) = g.task_waker.take() {
                // Let the task start following the party watch.
                w.wake();
            }
        }
        Ok(())
    }

    async fn release_locks(&mut self) {
        for mut lock in self.locks.drain(..) {
            // A failure leaves an ephemeral node that goes with the session.
            let _ = lock.release().await;
        }
        self.partition.clear();
        self.shared.lock().party_watch = None;
    }

    /// Releases the held items and goes back to Allocating (kazoo's `release_set()`); call
    /// [`wait_for_acquire`](Self::wait_for_acquire) next. Does nothing in Failure.
    ///
    /// Errors never; the result is for symmetry with kazoo's callers.
    pub async fn release_set(&mut self) -> Result<(), Error> {
        self.release_locks().await;
        let mut g = self.shared.lock();
        if g.state != PartitionState::Failure {
            g.set(PartitionState::Allocating);
        }
        Ok(())
    }

    /// Releases the items and leaves the party (kazoo's `finish()`): state Failure.
    ///
    /// Errors with the session's errors from leaving (the party node is ephemeral anyway).
    pub async fn finish(&mut self) -> Result<(), Error> {
        self.release_locks().await;
        self.set_state(PartitionState::Failure);
        match retry_loss(|| self.client.delete(&self.party_node)).await {
            Ok(()) | Err(Error::NoNode { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

impl Drop for SetPartitioner {
    fn drop(&mut self) {
        // The locks release themselves when dropped; the party node goes now, not with the
        // session; the watcher task ends.
        let failed = {
            let mut g = self.shared.lock();
            g.closed = true;
            if let Some(w) = g.task_waker.take() {
                w.wake();
            }
            g.state == PartitionState::Failure
        };
        if !failed {
            drop(std::future::IntoFuture::into_future(
                self.client.delete(&self.party_node),
            ));
        }
    }
}

/// Whether a one-shot watch has fired (an ended watch is an error: SessionExpired, Closed).
fn fired(w: &mut Watch) -> Result<bool, Error> {
    match Pin::new(w).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Pending => Ok(false),
        Poll::Ready(Ok(_)) => Ok(true),
        Poll::Ready(Err(e)) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kazoo_division() {
        let items: Vec<String> = ["d", "a", "c", "b", "e"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let members: Vec<String> = ["m2", "m1"].iter().map(|s| s.to_string()).collect();
        assert_eq!(default_partition("m1", &members, &items), ["a", "c", "e"]);
        assert_eq!(default_partition("m2", &members, &items), ["b", "d"]);
        assert!(default_partition("x", &members, &items).is_empty());
    }
}
