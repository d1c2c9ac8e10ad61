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

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use futures_core::Stream;
use zk_client::{Client, Error, SessionState, StateChanges, Watch};

use crate::lock::Lock;
use crate::ownership::Ownership;
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
    state: PartitionState,
    locks: Vec<Lock>,
    partition: Vec<String>,
    /// The party watch of the allocation that acquired the set.
    party_watch: Option<Watch>,
    states: StateChanges,
}

impl std::fmt::Debug for SetPartitioner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SetPartitioner")
            .field("party_node", &self.party_node)
            .field("state", &self.state)
            .field("partition", &self.partition)
            .finish()
    }
}

impl SetPartitioner {
    /// Joins the party at `path/party` as `identifier` (which must be a valid node name part and
    /// unique in the party) to share `items`. kazoo's defaults: `time_boundary` 30 s,
    /// `max_reaction_time` 1 s (how long a lock wait lasts before the party is looked at again).
    ///
    /// Errors with InvalidArgument for an identifier containing `/`, NoAuth, and the session's
    /// errors.
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
        let states = client.state_changes();
        let party_node = child_path(&party_path, &format!("{}-{identifier}", Guid::new().hex()));
        match retry_loss(|| client.create(&party_node, identifier).ephemeral()).await {
            Ok(_) | Err(Error::NodeExists { .. }) => {}
            Err(e) => return Err(e),
        }
        Ok(SetPartitioner {
            client: client.clone(),
            party_path,
            lock_path,
            items,
            identifier: identifier.to_owned(),
            party_node,
            time_boundary,
            max_reaction_time: Duration::from_secs(1),
            partition_func: Box::new(default_partition),
            state: PartitionState::Allocating,
            locks: Vec::new(),
            partition: Vec::new(),
            party_watch: None,
            states,
        })
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

    /// The state now, after taking any change of the party or the session into account.
    pub fn state(&mut self) -> PartitionState {
        let mut cx = Context::from_waker(Waker::noop());
        self.observe(&mut cx);
        self.state
    }

    /// The items this member holds (empty unless Acquired).
    pub fn partition(&self) -> &[String] {
        if self.state == PartitionState::Acquired {
            &self.partition
        } else {
            &[]
        }
    }

    /// The ownership of each held item's lock (fencing tokens, loss signals).
    pub fn ownerships(&self) -> Vec<&Ownership> {
        self.locks.iter().filter_map(Lock::ownership).collect()
    }

    /// Takes state changes and party changes into account (kazoo's session listener and its
    /// child watch of the acquired party).
    fn observe(&mut self, cx: &mut Context<'_>) {
        while let Poll::Ready(item) = Pin::new(&mut self.states).poll_next(cx) {
            match item {
                None | Some(SessionState::Lost(_)) | Some(SessionState::Connecting) => {
                    self.state = PartitionState::Failure
                }
                Some(_) if self.state == PartitionState::Acquired => {
                    self.state = PartitionState::Release
                }
                Some(_) => {}
            }
            if item.is_none() {
                break;
            }
        }
        if self.state == PartitionState::Acquired {
            if let Some(w) = self.party_watch.as_mut() {
                if Pin::new(w).poll(cx).is_ready() {
                    self.party_watch = None;
                    self.state = PartitionState::Release;
                }
            }
        }
    }

    /// Resolves when an acquired set must be released (the party or the connection changed:
    /// Release) or is lost (Failure): the holder's loss signal. Resolves at once in any other
    /// state.
    pub fn changed(&mut self) -> impl Future<Output = PartitionState> + '_ {
        std::future::poll_fn(move |cx| {
            self.observe(cx);
            if self.state == PartitionState::Acquired {
                Poll::Pending
            } else {
                Poll::Ready(self.state)
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
            match self.state() {
                PartitionState::Acquired | PartitionState::Failure => return Ok(self.state),
                _ => {}
            }
            match self.allocate().await {
                Ok(()) => {}
                Err(Error::SessionExpired) | Err(Error::Closed) => {
                    self.release_locks().await;
                    self.state = PartitionState::Failure;
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
        self.partition = mine;
        self.party_watch = Some(watch);
        self.state = PartitionState::Acquired;
        Ok(())
    }

    async fn release_locks(&mut self) {
        for mut lock in self.locks.drain(..) {
            // A failure leaves an ephemeral node that goes with the session.
            let _ = lock.release().await;
        }
        self.partition.clear();
        self.party_watch = None;
    }

    /// Releases the held items and goes back to Allocating (kazoo's `release_set()`); call
    /// [`wait_for_acquire`](Self::wait_for_acquire) next. Does nothing in Failure.
    ///
    /// Errors never; the result is for symmetry with kazoo's callers.
    pub async fn release_set(&mut self) -> Result<(), Error> {
        self.release_locks().await;
        if self.state != PartitionState::Failure {
            self.state = PartitionState::Allocating;
        }
        Ok(())
    }

    /// Releases the items and leaves the party (kazoo's `finish()`): state Failure.
    ///
    /// Errors with the session's errors from leaving (the party node is ephemeral anyway).
    pub async fn finish(&mut self) -> Result<(), Error> {
        self.release_locks().await;
        self.state = PartitionState::Failure;
        match retry_loss(|| self.client.delete(&self.party_node)).await {
            Ok(()) | Err(Error::NoNode { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

impl Drop for SetPartitioner {
    fn drop(&mut self) {
        // The locks release themselves when dropped; the party node goes now, not with the
        // session.
        if self.state != PartitionState::Failure {
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
