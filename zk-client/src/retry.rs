//! `client.retry(|c| async move { ... })`: runs an operation again after errors worth another
//! try, pausing as the client's `command_retry` policy says (or a policy given per call);
//! zk-core's [`RetryPolicy`] has the arithmetic and the list of what is retried.

use std::future::Future;

use zk_core::retry::RetryPolicy;
use zk_core::Error;

use crate::client::Client;

impl Client {
    /// Runs `op` with a handle to this client until it succeeds, fails with an error the
    /// client's retry policy ([`ClientBuilder::command_retry`](crate::ClientBuilder::command_retry),
    /// kazoo's `command_retry`) does not retry, or the policy gives up (kazoo's
    /// `client.retry(func)`).
    ///
    /// Errors with the last error `op` returned.
    pub async fn retry<T, F, Fut>(&self, op: F) -> Result<T, Error>
    where
        F: FnMut(Client) -> Fut,
        Fut: Future<Output = Result<T, Error>>,
    {
        let policy = self.opts.command_retry.clone();
        self.retry_with(&policy, op).await
    }

    /// [`retry`](Self::retry) with its own policy (kazoo's `KazooRetry(...)(func)`).
    ///
    /// Errors with the last error `op` returned.
    pub async fn retry_with<T, F, Fut>(&self, policy: &RetryPolicy, mut op: F) -> Result<T, Error>
    where
        F: FnMut(Client) -> Fut,
        Fut: Future<Output = Result<T, Error>>,
    {
        let rt = self.runtime().clone();
        let start = rt.now();
        let mut state = policy.start(self.engine.retry_seed(self.rng_seed()));
        loop {
            match op(self.clone()).await {
                Ok(v) => return Ok(v),
                Err(e) => match state.next(&e, rt.now().saturating_duration_since(start)) {
                    Some(pause) => self.sleep(pause).await,
                    None => return Err(e),
                },
            }
        }
    }

    /// The client's retry policy (kazoo's `command_retry`), for code that runs its own loop.
    pub fn command_retry(&self) -> &RetryPolicy {
        &self.opts.command_retry
    }
}
