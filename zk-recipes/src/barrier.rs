//! kazoo's `Barrier` and `DoubleBarrier`.
//!
//! - [`Barrier`]: in place while its node exists; waiters go on once it is removed.
//! - [`DoubleBarrier`]: `enter` waits until `num_clients` members have entered, `leave` until
//!   all have left. Layout (kazoo's): each member is an ephemeral child named by a random
//!   32-hex-digit id holding the member's identifier; the member that completes the count
//!   creates the persistent child `ready`, whose creation releases the others; leaving deletes
//!   `ready`, then members leave lowest-name-last, as in kazoo.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use zk_client::{Bytes, Client, Data, Error, EventType};

use crate::coord_util::{ensure_node, guid, join, timeout, watch_worth_rearming, DeleteOnDrop};

/// The child whose creation releases a double barrier's members.
const READY: &str = "ready";

/// Waits until `path` does not exist. A watch ended by a lost connection or a renewed session
/// is armed again (the node is checked again first, so a deletion in between is not missed).
async fn wait_deleted(client: &Client, path: &str) -> Result<(), Error> {
    loop {
        let (stat, watch) = client
            .retry(|c| async move { c.exists(path).watch().await })
            .await?;
        if stat.is_none() {
            return Ok(());
        }
        match watch.await {
            Ok(ev) if ev.event_type == EventType::NodeDeleted => return Ok(()),
            Ok(_) => {}
            Err(e) if watch_worth_rearming(client, &e) => {}
            Err(e) => return Err(e),
        }
    }
}

/// kazoo's `Barrier`: processes wait at it until someone removes it.
#[derive(Debug, Clone)]
pub struct Barrier {
    client: Client,
    path: String,
}

impl Barrier {
    /// The barrier at `path` (kazoo's `Barrier(client, path)`); nothing is sent yet.
    pub fn new(client: &Client, path: &str) -> Self {
        Barrier {
            client: client.clone(),
            path: path.to_owned(),
        }
    }

    /// Puts the barrier in place (creates its node) if it is not (kazoo's `create`).
    ///
    /// Errors with the client's errors after its retry policy, and InvalidPath.
    pub async fn create(&self) -> Result<(), Error> {
        ensure_node(&self.client, &self.path).await
    }

    /// Removes the barrier, releasing every waiter (kazoo's `remove`): true if it was in place.
    ///
    /// Errors with NotEmpty if the node has children, and the client's errors after its retry
    /// policy.
    pub async fn remove(&self) -> Result<bool, Error> {
        let mut first = true;
        self.client
            .retry(|c| {
                // After a lost connection our own first try may be what deleted it.
                let tried = !std::mem::replace(&mut first, false);
                async move {
                    match c.delete(&self.path).await {
                        Ok(()) => Ok(true),
                        Err(Error::NoNode { .. }) => Ok(tried),
                        Err(e) => Err(e),
                    }
                }
            })
            .await
    }

    /// Waits until the barrier is removed (returns at once if it is not in place). Cancelling
    /// (dropping) the wait removes its watch.
    ///
    /// Errors with the client's errors after its retry policy, and SessionExpired or Closed when
    /// the session ends for good while waiting.
    pub async fn wait(&self) -> Result<(), Error> {
        wait_deleted(&self.client, &self.path).await
    }

    /// [`wait`](Self::wait) for at most `d` (kazoo's `wait(timeout)`): true if the barrier was
    /// removed, false if the time ran out.
    ///
    /// Errors as [`wait`](Self::wait).
    pub async fn wait_timeout(&self, d: Duration) -> Result<bool, Error> {
        match timeout(&self.client, d, self.wait()).await {
            Some(r) => r.map(|()| true),
            None => Ok(false),
        }
    }
}

/// kazoo's `DoubleBarrier`: members [`enter`](Self::enter) and wait for `num_clients` of them,
/// work, then [`leave`](Self::leave) and wait for all to leave. A member is an ephemeral node,
/// so one whose session ends leaves by itself. Dropping a member that entered and did not leave
/// deletes its node; cancelling `enter` removes what it created.
#[derive(Debug)]
pub struct DoubleBarrier {
    client: Client,
    path: String,
    num_clients: usize,
    identifier: Bytes,
    node_name: String,
    create_path: String,
    participating: AtomicBool,
}

impl DoubleBarrier {
    /// A member of the double barrier at `path` that releases at `num_clients` members (kazoo's
    /// `DoubleBarrier(client, path, num_clients)`), identified by `hostname-pid` unless
    /// [`identifier`](Self::identifier) says otherwise. Nothing is sent yet.
    pub fn new(client: &Client, path: &str, num_clients: usize) -> Self {
        let node_name = guid();
        DoubleBarrier {
            client: client.clone(),
            path: path.to_owned(),
            num_clients,
            identifier: Bytes::from(default_identifier()),
            create_path: join(path, &node_name),
            node_name,
            participating: AtomicBool::new(false),
        }
    }

    /// The data of this member's node (kazoo's `identifier`).
    pub fn identifier(mut self, identifier: impl Data) -> Self {
        self.identifier = identifier.into_bytes();
        self
    }

    /// The path of this member's node.
    pub fn node_path(&self) -> &str {
        &self.create_path
    }

    /// Whether this member has entered and not left.
    pub fn is_participating(&self) -> bool {
        self.participating.load(Ordering::SeqCst)
    }

    /// Enters the barrier and waits until `num_clients` members have entered (kazoo's
    /// `enter`).
    ///
    /// Errors with the client's errors after its retry policy, and SessionExpired or Closed when
    /// the session ends for good while waiting; this member's node is deleted then (kazoo's
    /// best-effort cleanup), as it is when the call is cancelled.
    pub async fn enter(&self) -> Result<(), Error> {
        let guard = DeleteOnDrop::new(&self.client, self.create_path.clone());
        self.inner_enter().await?;
        guard.disarm();
        self.participating.store(true, Ordering::SeqCst);
        Ok(())
    }

    async fn inner_enter(&self) -> Result<(), Error> {
        ensure_node(&self.client, &self.path).await?;
        self.client
            .retry(|c| async move {
                match c
                    .create(&self.create_path, &self.identifier)
                    .ephemeral()
                    .await
                {
                    Ok(_) | Err(Error::NodeExists { .. }) => Ok(()),
                    Err(e) => Err(e),
                }
            })
            .await?;
        let ready = join(&self.path, READY);
        loop {
            // Watch `ready` before counting, so its creation between the two is not missed.
            let (stat, watch) = self
                .client
                .retry(|c| {
                    let ready = &ready;
                    async move { c.exists(ready).watch().await }
                })
                .await?;
            if stat.is_some() {
                return Ok(());
            }
            let members = self.members().await?;
            if members.len() >= self.num_clients {
                match self.client.create(&ready, &b""[..]).await {
                    Ok(_) | Err(Error::NodeExists { .. }) => return Ok(()),
                    Err(e) => return Err(e),
                }
            }
            match watch.await {
                Ok(ev) if ev.event_type == EventType::NodeCreated => return Ok(()),
                Ok(_) => {}
                Err(e) if watch_worth_rearming(&self.client, &e) => {
                    // A renewed session lost our ephemeral node: enter again.
                    self.client
                        .retry(|c| async move {
                            match c
                                .create(&self.create_path, &self.identifier)
                                .ephemeral()
                                .await
                            {
                                Ok(_) | Err(Error::NodeExists { .. }) => Ok(()),
                                Err(e) => Err(e),
                            }
                        })
                        .await?;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Leaves the barrier and waits until every member has left (kazoo's `leave`).
    ///
    /// Errors with the client's errors after its retry policy, and SessionExpired or Closed when
    /// the session ends for good while waiting; this member's node is deleted then.
    pub async fn leave(&self) -> Result<(), Error> {
        let guard = DeleteOnDrop::new(&self.client, self.create_path.clone());
        let r = self.inner_leave().await;
        self.participating.store(false, Ordering::SeqCst);
        // On success our node is gone already; the guard's delete is then a no-op NoNode, but
        // skip the request.
        if r.is_ok() {
            guard.disarm();
        }
        r
    }

    async fn inner_leave(&self) -> Result<(), Error> {
        let ready = join(&self.path, READY);
        self.client
            .retry(|c| {
                let ready = &ready;
                async move {
                    match c.delete(ready).await {
                        Ok(()) | Err(Error::NoNode { .. }) => Ok(()),
                        Err(e) => Err(e),
                    }
                }
            })
            .await?;
        loop {
            let mut members = self.members().await?;
            if members.is_empty() {
                return Ok(());
            }
            if members.len() == 1 && members[0] == self.node_name {
                self.delete_own().await?;
                return Ok(());
            }
            members.sort_unstable();
            let (Some(lowest), Some(highest)) = (members.first(), members.last()) else {
                continue;
            };
            if *lowest == self.node_name {
                // The lowest leaves last: wait for the highest to go, then look again.
                wait_deleted(&self.client, &join(&self.path, highest)).await?;
            } else {
                self.delete_own().await?;
                wait_deleted(&self.client, &join(&self.path, lowest)).await?;
            }
        }
    }

    async fn delete_own(&self) -> Result<(), Error> {
        self.client
            .retry(|c| async move {
                match c.delete(&self.create_path).await {
                    Ok(()) | Err(Error::NoNode { .. }) => Ok(()),
                    Err(e) => Err(e),
                }
            })
            .await
    }

    /// The member names (every child but `ready`).
    async fn members(&self) -> Result<Vec<String>, Error> {
        let names = self
            .client
            .retry(|c| async move { c.get_children(&self.path).await })
            .await?;
        Ok(names
            .iter()
            .filter(|n| *n != READY)
            .map(str::to_owned)
            .collect())
    }
}

impl Drop for DoubleBarrier {
    fn drop(&mut self) {
        if self.participating.load(Ordering::SeqCst) {
            drop(DeleteOnDrop::new(&self.client, self.create_path.clone()));
        }
    }
}

/// kazoo's default identifier: the host name and the process id.
fn default_identifier() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".to_owned());
    format!("{host}-{}", std::process::id())
}
