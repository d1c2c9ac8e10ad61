//! kazoo's `Election`: contenders queue on a [`Lock`]; the one holding it is the leader and runs
//! its function, then steps down.

use std::future::Future;

use zk_client::{Client, Error};

use crate::lock::Lock;
use crate::ownership::{LossPolicy, Ownership};

/// kazoo's `Election` over a kazoo-layout lock on `path`.
#[derive(Debug)]
pub struct Election {
    lock: Lock,
}

impl Election {
    /// An election on `path` for a contender named `identifier` (shown by
    /// [`contenders`](Self::contenders)).
    pub fn new(client: &Client, path: &str, identifier: &str) -> Election {
        Election {
            lock: Lock::new(client, path, identifier),
        }
    }

    /// Uses `policy` for the [`Ownership`] given to the leader's function.
    pub fn with_policy(mut self, policy: LossPolicy) -> Self {
        self.lock = self.lock.with_policy(policy);
        self
    }

    /// Waits to be elected, then runs `func` with the leadership's [`Ownership`] (select on its
    /// [`lost`](Ownership::lost) to stop leading the moment leadership may be gone), then steps
    /// down (kazoo's `run(func)`). Dropping the future cancels the candidacy or ends the
    /// leadership: the node is deleted.
    ///
    /// Errors with the acquire's errors (NoAuth and the session's errors); `func`'s own result is
    /// returned as is. Stepping down is sent but its failure is not reported (the node is
    /// ephemeral and goes with its session).
    pub async fn run<F, Fut, T>(&mut self, func: F) -> Result<T, Error>
    where
        F: FnOnce(Ownership) -> Fut,
        Fut: Future<Output = T>,
    {
        self.lock.acquire().await?;
        let own = self
            .lock
            .ownership()
            .cloned()
            .ok_or_else(|| Error::Protocol("acquired without ownership".into()))?;
        let out = func(own).await;
        let _ = self.lock.release().await;
        Ok(out)
    }

    /// The identifiers of every contender, the leader first (kazoo's `contenders()`).
    ///
    /// Errors with NoAuth and the session's errors.
    pub async fn contenders(&self) -> Result<Vec<String>, Error> {
        self.lock.contenders().await
    }

    /// Whether this contender leads now.
    pub fn is_leader(&self) -> bool {
        self.lock.is_acquired()
    }
}
