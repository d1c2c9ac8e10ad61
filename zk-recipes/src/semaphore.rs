//! kazoo's `Semaphore`: at most `max_leases` holders at once.
//!
//! Layout (kazoo's): the semaphore node `path` holds `max_leases` as its data (written by the
//! first user, checked by every later one); each holder owns an ephemeral child
//! `path/<uuid hex>` holding its identifier. Taking a lease is serialised by a kazoo
//! [`Lock`] on the sibling path `path-__lock__`: only the lock holder looks at the lease count (a
//! child watch on `path`), so waiting holders do not stampede.

use std::time::{Duration, Instant};

use bytes::Bytes;
use zk_client::{Client, Error};

use crate::lock::{until, Lock};
use crate::ownership::{LossPolicy, Ownership, OwnershipLost, OwnershipState};
use crate::protected::{child_path, retry_loss, Guid, NodeGuard};

/// kazoo's `Semaphore` (see the [module](self) docs for the layout).
#[derive(Debug)]
pub struct Semaphore {
    client: Client,
    path: String,
    identifier: String,
    max_leases: usize,
    /// `path/<uuid hex>`: this holder's lease node.
    create_path: String,
    lock_path: String,
    policy: LossPolicy,
    held: Option<Ownership>,
}

/// How waiting for a lease ended.
enum Lease {
    Taken,
    /// Not now: non-blocking and none free, or the deadline passed.
    NotNow,
    /// The lock's session ended while waiting.
    LockLost,
}

impl Semaphore {
    /// A semaphore on `path` with `max_leases` leases, for a holder named `identifier`. Nothing is
    /// sent until an acquire.
    pub fn new(client: &Client, path: &str, identifier: &str, max_leases: usize) -> Semaphore {
        let path = path.trim_end_matches('/').to_owned();
        Semaphore {
            client: client.clone(),
            create_path: child_path(&path, &Guid::new().hex()),
            lock_path: format!("{path}-__lock__"),
            path,
            identifier: identifier.to_owned(),
            max_leases,
            policy: LossPolicy::default(),
            held: None,
        }
    }

    /// Uses `policy` for the [`Ownership`] handed out when acquired.
    pub fn with_policy(mut self, policy: LossPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Creates the semaphore node with `max_leases` as data, or checks the number an existing
    /// one holds (non-numeric data is ignored, as kazoo does).
    async fn ensure_path(&self) -> Result<(), Error> {
        let max = self.max_leases.to_string();
        match retry_loss(|| self.client.create(&self.path, max.as_str()).make_parents()).await {
            Ok(_) => return Ok(()),
            Err(Error::NodeExists { .. }) => {}
            Err(e) => return Err(e),
        }
        let (data, _) = retry_loss(|| self.client.get_data(&self.path)).await?;
        match std::str::from_utf8(&data)
            .ok()
            .and_then(|s| s.trim().parse::<usize>().ok())
        {
            Some(n) if n != self.max_leases => Err(Error::InvalidArgument(format!(
                "Inconsistent max leases: {n}, expected: {}",
                self.max_leases
            ))),
            _ => Ok(()),
        }
    }

    /// Waits until a lease is held (kazoo's `acquire()`); returns at once if this handle holds
    /// one. Dropping the future cancels: its lease node (if created) and its place in the lock
    /// are removed.
    ///
    /// Errors with InvalidArgument when the semaphore node records another `max_leases`, NoAuth,
    /// and the session's errors.
    pub async fn acquire(&mut self) -> Result<(), Error> {
        self.acquire_inner(true, None).await.map(|_| ())
    }

    /// Waits at most `timeout`: `Ok(false)` if no lease was free in time.
    ///
    /// Errors as [`acquire`](Self::acquire).
    pub async fn acquire_timeout(&mut self, timeout: Duration) -> Result<bool, Error> {
        let deadline = self.client.runtime().now() + timeout;
        self.acquire_inner(true, Some(deadline)).await
    }

    /// Takes a lease only if one is free now (kazoo's `acquire(blocking=False)`).
    ///
    /// Errors as [`acquire`](Self::acquire).
    pub async fn try_acquire(&mut self) -> Result<bool, Error> {
        self.acquire_inner(false, None).await
    }

    async fn acquire_inner(
        &mut self,
        blocking: bool,
        deadline: Option<Instant>,
    ) -> Result<bool, Error> {
        if self.held.is_some() {
            return Ok(true);
        }
        self.ensure_path().await?;
        let client = self.client.clone();
        loop {
            let mut lock = Lock::new(&client, &self.lock_path, &self.identifier);
            let got = match (blocking, deadline) {
                (false, _) => lock.try_acquire().await?,
                (true, None) => {
                    lock.acquire().await?;
                    true
                }
                (true, Some(d)) => {
                    let left = d.saturating_duration_since(client.runtime().now());
                    lock.acquire_timeout(left).await?
                }
            };
            if !got {
                return Ok(false);
            }
            let lock_node = lock.ownership().map(|o| o.node().to_owned());
            let result = match lock_node {
                Some(node) => self.take_lease(&node, blocking, deadline).await,
                None => Ok(Lease::LockLost),
            };
            // Sent whatever happened; on a cancel, dropping `lock` sends it.
            let _ = lock.release().await;
            match result? {
                // Releasing the lock took a round trip: the session may have ended meanwhile.
                // A lease already lost is not handed out; queue again.
                Lease::Taken
                    if self.held.as_ref().map(Ownership::state) == Some(OwnershipState::Lost) =>
                {
                    self.held = None;
                    continue;
                }
                Lease::Taken => return Ok(true),
                Lease::NotNow => return Ok(false),
                // The session that held the lock ended while waiting for a lease (a new one
                // may have started): queue for the lock again.
                Lease::LockLost => continue,
            }
        }
    }

    /// With the lock held (its node `lock_node`): waits for a free lease and takes it. The lease
    /// is created in one transaction with a check that `lock_node` still exists: if the session
    /// that holds the lock expired while waiting and the client started a new one, the lock is
    /// gone (another contender may hold it and count the leases too), and creating the lease in
    /// the new session would go past `max_leases` (found by the recipes simulation).
    async fn take_lease(
        &mut self,
        lock_node: &str,
        blocking: bool,
        deadline: Option<Instant>,
    ) -> Result<Lease, Error> {
        let client = self.client.clone();
        let data = Bytes::from(self.identifier.clone());
        loop {
            let (children, watch) = retry_loss(|| client.get_children(&self.path).watch()).await?;
            if children.len() < self.max_leases {
                let changes = client.state_changes();
                let mut guard = NodeGuard::new(&client, &self.path, "");
                // The name is known before the create: a cancel deletes it by name.
                guard.created(&self.create_path);
                let created = client
                    .transaction()
                    .check(lock_node, -1)
                    .create(&self.create_path, data.clone())
                    .ephemeral()
                    .commit()
                    .await;
                match created {
                    Ok(_) | Err(Error::ConnectionLoss) => {}
                    Err(Error::TransactionFailed { index: 0, .. }) => {
                        guard.forget();
                        return Ok(Lease::LockLost);
                    }
                    Err(Error::TransactionFailed { error, .. })
                        if matches!(*error, Error::NodeExists { .. }) => {}
                    Err(e) => return Err(e),
                }
                if let Some(stat) = retry_loss(|| client.exists(&self.create_path)).await? {
                    if stat.ephemeral_owner == client.client_id().map_or(0, |s| s.id) {
                        guard.disarm();
                        self.held = Some(Ownership::new(
                            &client,
                            changes,
                            self.create_path.clone(),
                            stat.ephemeral_owner,
                            stat.czxid,
                            self.policy,
                        ));
                        return Ok(Lease::Taken);
                    }
                }
                guard.forget();
            }
            if !blocking {
                return Ok(Lease::NotNow);
            }
            match until(&client, deadline, watch).await {
                None => return Ok(Lease::NotNow),
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e),
            }
        }
    }

    /// Gives the lease back (kazoo's `release()`): `Ok(false)` if none was held.
    ///
    /// Errors with the session's errors other than ConnectionLoss; the handle counts as released
    /// anyway.
    pub async fn release(&mut self) -> Result<bool, Error> {
        let Some(own) = self.held.take() else {
            return Ok(false);
        };
        match retry_loss(|| self.client.delete(own.node())).await {
            Ok(()) | Err(Error::NoNode { .. }) => Ok(true),
            Err(e) => Err(e),
        }
    }

    /// The identifiers of the current lease holders, in no order (kazoo's `lease_holders()`);
    /// empty if the semaphore node does not exist.
    ///
    /// Errors with NoAuth and the session's errors.
    pub async fn lease_holders(&self) -> Result<Vec<String>, Error> {
        let children = match retry_loss(|| self.client.get_children(&self.path)).await {
            Ok(c) => c,
            Err(Error::NoNode { .. }) => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut out = Vec::new();
        for c in children.iter() {
            match retry_loss(|| self.client.get_data(&child_path(&self.path, c))).await {
                Ok((d, _)) => out.push(String::from_utf8_lossy(&d).into_owned()),
                Err(Error::NoNode { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// Whether this handle holds a lease (kazoo's `is_acquired`).
    pub fn is_acquired(&self) -> bool {
        self.held.is_some()
    }

    /// The ownership of the lease while held.
    pub fn ownership(&self) -> Option<&Ownership> {
        self.held.as_ref()
    }

    /// The fencing token (the lease node's czxid) while held.
    pub fn fencing_token(&self) -> Option<i64> {
        self.held.as_ref().map(Ownership::fencing_token)
    }

    /// Whether ownership holds now; Lost when not acquired.
    pub fn state(&self) -> OwnershipState {
        self.held
            .as_ref()
            .map_or(OwnershipState::Lost, Ownership::state)
    }

    /// A future resolving when the lease counts as lost; `None` when not acquired.
    pub fn lost(&self) -> Option<OwnershipLost> {
        self.held.as_ref().map(Ownership::lost)
    }
}

impl Drop for Semaphore {
    fn drop(&mut self) {
        if let Some(own) = self.held.take() {
            // Sent now, unawaited: dropping a held semaphore releases its lease.
            drop(std::future::IntoFuture::into_future(
                self.client.delete(own.node()),
            ));
        }
    }
}
