//! kazoo's `LockingQueue`: a queue whose entries are locked while processed and removed only
//! when consumed, so an entry whose processor dies goes back to the others.
//!
//! Layout (kazoo's): entries are persistent sequential nodes `path/entries/entry-<ppp>-<seq>`
//! (`ppp`: the priority, 000 to 999, lower first); taking one creates the ephemeral
//! `path/taken/<entry name>` holding the taker's id (a uuid hex). Consuming deletes both in one
//! transaction; releasing deletes the lock only.
//!
//! Loss: the lock on an entry is an ephemeral node, so it goes with the session; while an entry
//! is held, [`LockingQueue::ownership`] gives the loss signal and the fencing token (the lock
//! node's czxid). A `get` that is cancelled removes a lock it may have created (after checking
//! it is its own), and dropping the queue releases the entry it holds.

use std::time::{Duration, Instant};

use bytes::Bytes;
use zk_client::{Client, Error};

use crate::lock::until;
use crate::ownership::{LossPolicy, Ownership, OwnershipState};
use crate::protected::{retry_loss, Guid};

/// kazoo's `LockingQueue` (see the [module](self) docs).
#[derive(Debug)]
pub struct LockingQueue {
    client: Client,
    path: String,
    id: Bytes,
    entries_path: String,
    lock_path: String,
    policy: LossPolicy,
    /// The entry being processed: its name, value, and the lock's ownership.
    processing: Option<(String, Bytes, Ownership)>,
}

impl LockingQueue {
    /// A queue at `path`. Nothing is sent until it is used.
    pub fn new(client: &Client, path: &str) -> LockingQueue {
        let path = path.trim_end_matches('/').to_owned();
        LockingQueue {
            client: client.clone(),
            id: Bytes::from(Guid::new().hex()),
            entries_path: format!("{path}/entries"),
            lock_path: format!("{path}/taken"),
            path,
            policy: LossPolicy::default(),
            processing: None,
        }
    }

    /// Uses `policy` for the [`Ownership`] of a held entry.
    pub fn with_policy(mut self, policy: LossPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// The queue's path.
    pub fn path(&self) -> &str {
        &self.path
    }

    async fn ensure_paths(&self) -> Result<(), Error> {
        self.client.ensure_path(&self.lock_path).await?;
        self.client.ensure_path(&self.entries_path).await
    }

    fn entry_prefix(&self, priority: u16) -> Result<String, Error> {
        if priority > 999 {
            return Err(Error::InvalidArgument(
                "priority must be between 0 and 999".into(),
            ));
        }
        Ok(format!("{}/entry-{priority:03}-", self.entries_path))
    }

    /// Adds `value` with `priority` (0 to 999, lower first; kazoo's default is 100).
    ///
    /// Errors with InvalidArgument for a priority above 999, NoAuth, and the session's errors.
    pub async fn put(&self, value: impl Into<Bytes>, priority: u16) -> Result<(), Error> {
        let prefix = self.entry_prefix(priority)?;
        self.ensure_paths().await?;
        self.client
            .create(&prefix, value.into())
            .sequential()
            .await
            .map(|_| ())
    }

    /// Adds every value, all or none (one transaction).
    ///
    /// Errors as [`put`](Self::put), and with TransactionFailed if the transaction fails.
    pub async fn put_all(&self, values: Vec<Bytes>, priority: u16) -> Result<(), Error> {
        let prefix = self.entry_prefix(priority)?;
        self.ensure_paths().await?;
        let mut txn = self.client.transaction();
        for v in values {
            txn = txn.create(&prefix, v).sequential().end();
        }
        txn.commit().await.map(|_| ())
    }

    /// The number of entries, taken ones included (kazoo's `len()`).
    ///
    /// Errors with NoAuth and the session's errors.
    pub async fn len(&self) -> Result<usize, Error> {
        match retry_loss(|| self.client.get_children(&self.entries_path)).await {
            Ok(c) => Ok(c.len()),
            Err(Error::NoNode { .. }) => Ok(0),
            Err(e) => Err(e),
        }
    }

    /// Whether the queue has no entries (taken ones count).
    ///
    /// Errors as [`len`](Self::len).
    pub async fn is_empty(&self) -> Result<bool, Error> {
        Ok(self.len().await? == 0)
    }

    /// Locks and returns the next entry, waiting for one; the entry held already if there is one
    /// (kazoo's `get()`). Dropping the future cancels: a lock it created is deleted.
    ///
    /// Errors with NoAuth and the session's errors.
    pub async fn get(&mut self) -> Result<Bytes, Error> {
        self.get_until(None)
            .await?
            .ok_or_else(|| Error::Protocol("waited without a deadline and got nothing".into()))
    }

    /// [`get`](Self::get) waiting at most `timeout`: `None` if nothing could be taken in time.
    ///
    /// Errors as [`get`](Self::get).
    pub async fn get_timeout(&mut self, timeout: Duration) -> Result<Option<Bytes>, Error> {
        let deadline = self.client.runtime().now() + timeout;
        self.get_until(Some(deadline)).await
    }

    async fn get_until(&mut self, deadline: Option<Instant>) -> Result<Option<Bytes>, Error> {
        match &self.processing {
            // An entry whose lock went with its session is someone else's to take now: forget
            // it rather than hand out its value again (and never be rid of it).
            Some((_, _, own)) if own.state() == OwnershipState::Lost => self.processing = None,
            Some((_, v, _)) => return Ok(Some(v.clone())),
            None => {}
        }
        self.ensure_paths().await?;
        let client = self.client.clone();
        loop {
            let (entries, entries_watch) =
                retry_loss(|| client.get_children(&self.entries_path).watch()).await?;
            let (taken, taken_watch) =
                retry_loss(|| client.get_children(&self.lock_path).watch()).await?;
            let mut available: Vec<&str> = entries
                .iter()
                .filter(|e| !taken.iter().any(|t| t == *e))
                .collect();
            available.sort();
            for name in available {
                if let Some(got) = self.take(name).await? {
                    self.processing = Some(got);
                    return Ok(self.processing.as_ref().map(|(_, v, _)| v.clone()));
                }
            }
            match until(&client, deadline, wait_either(entries_watch, taken_watch)).await {
                None => return Ok(None),
                Some(Ok(())) => {}
                Some(Err(e)) => return Err(e),
            }
        }
    }

    /// Tries to lock entry `name`: `None` if someone else has it or it is gone.
    async fn take(&self, name: &str) -> Result<Option<(String, Bytes, Ownership)>, Error> {
        let client = &self.client;
        let lock = format!("{}/{name}", self.lock_path);
        let changes = client.state_changes();
        let mut guard = TakeGuard {
            client: client.clone(),
            lock: Some(lock.clone()),
            id: self.id.clone(),
        };
        let stat = match client
            .create(&lock, self.id.clone())
            .ephemeral()
            .with_stat()
            .await
        {
            Ok((_, stat)) => stat,
            Err(Error::NodeExists { .. }) => {
                // Someone else's (or ours, after a ConnectionLoss: then the guard's check finds
                // our id and deletes it).
                return Ok(None);
            }
            Err(Error::ConnectionLoss) => match retry_loss(|| client.get_data(&lock)).await {
                Ok((data, stat)) if data == self.id => stat,
                Ok(_) => {
                    guard.lock = None;
                    return Ok(None);
                }
                Err(Error::NoNode { .. }) => {
                    guard.lock = None;
                    return Ok(None);
                }
                Err(e) => return Err(e),
            },
            Err(e) => return Err(e),
        };
        let entry = format!("{}/{name}", self.entries_path);
        match retry_loss(|| client.get_data(&entry)).await {
            Ok((value, _)) => {
                guard.lock = None;
                let own = Ownership::new(
                    client,
                    changes,
                    lock,
                    stat.ephemeral_owner,
                    stat.czxid,
                    self.policy,
                );
                Ok(Some((name.to_owned(), value, own)))
            }
            // Consumed meanwhile: the guard deletes our lock.
            Err(Error::NoNode { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Whether this queue still holds the lock of its entry (kazoo's `holds_lock()`): reads the
    /// lock node after a sync.
    ///
    /// Errors with the session's errors.
    pub async fn holds_lock(&self) -> Result<bool, Error> {
        let Some((_, _, own)) = &self.processing else {
            return Ok(false);
        };
        retry_loss(|| self.client.sync(own.node())).await?;
        match retry_loss(|| self.client.get_data(own.node())).await {
            Ok((data, _)) => Ok(data == self.id),
            Err(Error::NoNode { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Removes the entry being processed from the queue (kazoo's `consume()`): `Ok(false)` if
    /// none is held or the lock is no longer ours (the entry is then forgotten: whoever holds
    /// its lock now processes it).
    ///
    /// Errors with TransactionFailed and the session's errors.
    pub async fn consume(&mut self) -> Result<bool, Error> {
        let unchecked = crate::sabotage::is(crate::sabotage::Break::ConsumeWithoutLockCheck);
        if !unchecked && !self.holds_lock().await? {
            self.processing = None;
            return Ok(false);
        }
        let Some((name, _, own)) = self.processing.take() else {
            return Ok(false);
        };
        self.client
            .transaction()
            .delete(&format!("{}/{name}", self.entries_path), -1)
            .delete(own.node(), -1)
            .commit()
            .await?;
        Ok(true)
    }

    /// Unlocks the entry being processed without consuming it (kazoo's `release()`):
    /// `Ok(false)` if none is held or the lock is no longer ours (the entry is then forgotten).
    ///
    /// Errors with the session's errors.
    pub async fn release(&mut self) -> Result<bool, Error> {
        if !self.holds_lock().await? {
            self.processing = None;
            return Ok(false);
        }
        let Some((_, _, own)) = self.processing.take() else {
            return Ok(false);
        };
        match retry_loss(|| self.client.delete(own.node())).await {
            Ok(()) | Err(Error::NoNode { .. }) => Ok(true),
            Err(e) => Err(e),
        }
    }

    /// The ownership of the held entry's lock (loss signal, fencing token).
    pub fn ownership(&self) -> Option<&Ownership> {
        self.processing.as_ref().map(|(_, _, o)| o)
    }
}

impl Drop for LockingQueue {
    fn drop(&mut self) {
        if let Some((_, _, own)) = self.processing.take() {
            // The entry goes back to the others at once rather than with the session. Only if
            // the lock is still ours: after our session ended, another consumer may hold a lock
            // of the same path (a blind delete of it was seen in the simulation, seed 214: a
            // queue dropped after its session's expiry removed the next taker's lock, and a
            // third consumer took the entry while the second still processed it).
            if own.state() != OwnershipState::Lost {
                drop(TakeGuard {
                    client: self.client.clone(),
                    lock: Some(own.node().to_owned()),
                    id: self.id.clone(),
                });
            }
        }
    }
}

/// Deletes a lock a cancelled or failed take may have created (or a dropped queue holds), after
/// checking that it holds our id and belongs to our session now (the create may have failed
/// with NodeExists on someone else's lock; our session may have ended and someone else's lock
/// taken the path).
struct TakeGuard {
    client: Client,
    lock: Option<String>,
    id: Bytes,
}

impl Drop for TakeGuard {
    fn drop(&mut self) {
        let Some(lock) = self.lock.take() else {
            return;
        };
        // Not counted: a cleanup must not keep the session open by itself.
        let client = self.client.background_handle();
        let id = self.id.clone();
        let rt = client.runtime().clone();
        // A read and maybe a delete: it ends with their replies or with the session.
        let task = Box::pin(async move {
            if let Ok((data, stat)) = retry_loss(|| client.get_data(&lock)).await {
                let session = client.client_id().map(|s| s.id);
                if data == id && session == Some(stat.ephemeral_owner) {
                    let _ = retry_loss(|| client.delete(&lock).version(stat.version)).await;
                }
            }
        });
        if let Err(e) = rt.spawn(task) {
            tracing::warn!("cannot start the cleanup of a queue lock: {e}");
        }
    }
}

/// Resolves when either watch fires (or ends with an error).
async fn wait_either(a: zk_client::Watch, b: zk_client::Watch) -> Result<(), Error> {
    let mut a = a;
    let mut b = b;
    std::future::poll_fn(|cx| {
        use std::future::Future;
        use std::pin::Pin;
        use std::task::Poll;
        for w in [&mut a, &mut b] {
            if let Poll::Ready(r) = Pin::new(w).poll(cx) {
                return Poll::Ready(r.map(|_| ()));
            }
        }
        Poll::Pending
    })
    .await
}
