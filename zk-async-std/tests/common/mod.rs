//! What this crate's test binaries share.

use std::future::Future;
use std::time::Duration;

/// `fut`'s output, or `None` after `limit`: a bound that makes a wait that must end fail its
/// test instead of hanging it.
pub async fn within<T>(limit: Duration, fut: impl Future<Output = T>) -> Option<T> {
    futures_lite::future::or(async { Some(fut.await) }, async {
        smol::Timer::after(limit).await;
        None
    })
    .await
}
