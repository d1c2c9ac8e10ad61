//! `client.retry(&policy, |c| async move { ... })`: runs an operation again after errors worth
//! another try, pausing as the policy says (zk-core's [`RetryPolicy`] has the arithmetic and the
//! list of what is retried).

use std::future::Future;

use zk_core::retry::RetryPolicy;
use zk_core::Error;

use crate::client::Client;
use crate::runtime::Runtime;

impl<R: Runtime> Client<R> {
    /// Runs `op` with a handle to this client until it succeeds, fails with an error the policy
    /// does not retry, or the policy gives up (kazoo's `client.retry(func)`).
    ///
    /// Errors with the last error `op` returned.
    pub async fn retry<T, F, Fut>(&self, policy: &RetryPolicy, mut op: F) -> Result<T, Error>
    where
        F: FnMut(Client<R>) -> Fut,
        Fut: Future<Output = Result<T, Error>>,
    {
        let start = self.rt.now();
        let seed = start.elapsed().as_nanos() as u64 ^ (self as *const Self as u64);
        let mut state = policy.start(seed);
        loop {
            match op(self.clone()).await {
                Ok(v) => return Ok(v),
                Err(e) => match state.next(&e, self.rt.now().saturating_duration_since(start)) {
                    Some(pause) => self.sleep(pause).await,
                    None => return Err(e),
                },
            }
        }
    }
}
