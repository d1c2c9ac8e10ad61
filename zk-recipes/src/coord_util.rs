//! Small helpers shared by the coordination recipes (counter, queue, barrier, party, caches):
//! random node names, a compare-and-set write that settles a lost connection, and a guard that
//! deletes a node when an operation is cancelled.

use std::collections::hash_map::RandomState;
use std::future::{Future, IntoFuture};
use std::hash::{BuildHasher, Hasher};
use std::pin::pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::Poll;
use std::time::Duration;

use zk_client::{Bytes, Client, Error, Stat};

/// A random 32-hex-digit name, like kazoo's `uuid.uuid4().hex`, so members of a party or a
/// barrier never collide. std's `RandomState` is seeded randomly per process; mixing in a counter
/// and the clock makes every call differ without an RNG dependency. Not for secrets.
pub(crate) fn guid() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let mut words = [0u64; 2];
    for (i, w) in words.iter_mut().enumerate() {
        let mut h = RandomState::new().build_hasher();
        h.write_u64(n);
        h.write_u64(nanos);
        h.write_usize(i);
        *w = h.finish();
    }
    format!("{:016x}{:016x}", words[0], words[1])
}

/// `parent/child`.
pub(crate) fn join(parent: &str, child: &str) -> String {
    zk_client::zk_core::path::join(parent, child)
}

/// Creates `path` (and its parents) with empty data unless it exists. Not `ensure_path`: that
/// writes null data, which kazoo reads as `None` and its Counter cannot decode, while kazoo's
/// own `ensure_path` writes empty bytes.
///
/// Errors with the client's errors after its retry policy, and InvalidPath.
pub(crate) async fn ensure_node(client: &Client, path: &str) -> Result<(), Error> {
    client
        .retry(|c| async move {
            match c.create(path, &b""[..]).make_parents().await {
                Ok(_) | Err(Error::NodeExists { .. }) => Ok(()),
                Err(e) => Err(e),
            }
        })
        .await
}

/// What a conditional write came to.
pub(crate) enum Cas {
    /// The write applied.
    Applied,
    /// Someone else changed (or deleted) the node first; nothing was written.
    Conflict,
    /// Whether the write applied cannot be told; the error to give the caller.
    Unknown(Error),
}

/// Writes `data` to `path` if its data version is still `version`. A ConnectionLoss during the
/// write is settled by reading the node back after a `sync` (retrying as the client's policy
/// says; the server applies a session's requests in order, so a write that was going to apply
/// has applied by then): still at `version`, or at `version + 1` with other bytes than ours,
/// means our write did not apply (it could only have made `version + 1`). At `version + 1` with
/// our bytes, or further on, it cannot be told: concurrent writers often write the same bytes
/// (two counters adding 1 to the same value), so equal bytes do not prove the write was ours.
/// That is [`Cas::Unknown`], never a blind retry, which could apply the change twice (kazoo's
/// Counter does). A Timeout is Unknown at once: the request may still be on its way.
///
/// Errors with what the write or the read-back fail with other than the cases above.
pub(crate) async fn cas_write(
    client: &Client,
    path: &str,
    data: Bytes,
    version: i32,
) -> Result<Cas, Error> {
    match client.set_data(path, data.clone()).version(version).await {
        Ok(_) => Ok(Cas::Applied),
        Err(Error::BadVersion { .. }) | Err(Error::NoNode { .. }) => Ok(Cas::Conflict),
        Err(Error::Timeout) => Ok(Cas::Unknown(Error::Timeout)),
        Err(Error::ConnectionLoss) => {
            let read = client
                .retry(|c| async move {
                    c.sync(path).await?;
                    c.get_data(path).await
                })
                .await;
            match read {
                Err(Error::NoNode { .. }) => Ok(Cas::Conflict),
                Err(e) => Err(e),
                Ok((now, stat)) => Ok(settle(&stat, &now, version, &data)),
            }
        }
        Err(e) => Err(e),
    }
}

/// What a read after a lost conditional write tells about it. Exactly one write conditional on
/// `version` can succeed: still at `version`, ours did not apply; at the next version with other
/// bytes, another writer's did and ours cannot. The next version with *our* bytes proves nothing
/// (two increments from 5 both write 6), nor does a later version: those are Unknown, never
/// Applied, or an increment would be acknowledged twice (found by the coord failover test and
/// by the recipes simulation, seed 3716).
fn settle(stat: &Stat, now: &Bytes, version: i32, ours: &Bytes) -> Cas {
    let next = version.wrapping_add(1);
    if stat.version == version || (stat.version == next && now != ours) {
        Cas::Conflict
    } else {
        Cas::Unknown(Error::ConnectionLoss)
    }
}

/// Deletes a node when dropped unless disarmed: the cleanup of an operation that is cancelled
/// (its future dropped) after it created the node. The delete is sent at once (a request is sent
/// when its future is made) and not awaited, so it works from `Drop`.
pub(crate) struct DeleteOnDrop {
    client: Client,
    path: Option<String>,
}

impl DeleteOnDrop {
    /// Guards `path`.
    pub(crate) fn new(client: &Client, path: String) -> Self {
        DeleteOnDrop {
            client: client.clone(),
            path: Some(path),
        }
    }

    /// The operation finished: keep the node.
    pub(crate) fn disarm(mut self) {
        self.path = None;
    }
}

impl Drop for DeleteOnDrop {
    fn drop(&mut self) {
        if let Some(path) = self.path.take() {
            // The request goes out now; nobody waits for the reply.
            drop(self.client.delete(&path).into_future());
        }
    }
}

/// Runs `fut` for at most `d` on the client's runtime: `None` if the time ran out first (the
/// future is dropped then, which cancels it).
pub(crate) async fn timeout<F: Future>(client: &Client, d: Duration, fut: F) -> Option<F::Output> {
    let mut fut = pin!(fut);
    let mut sleep = pin!(client.sleep(d));
    std::future::poll_fn(|cx| {
        if let Poll::Ready(v) = fut.as_mut().poll(cx) {
            return Poll::Ready(Some(v));
        }
        sleep.as_mut().poll(cx).map(|()| None)
    })
    .await
}

/// Whether a recipe waiting on a watch should look again after the watch ended with `e`: the
/// connection or session came back (the client renews an expired session), so the node must be
/// read again; anything else ends the wait.
pub(crate) fn watch_worth_rearming(client: &Client, e: &Error) -> bool {
    match e {
        Error::ConnectionLoss | Error::Timeout => true,
        Error::SessionExpired => !matches!(client.state(), zk_client::SessionState::Lost(_)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guids_are_32_hex_digits_and_differ() {
        let a = guid();
        let b = guid();
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
