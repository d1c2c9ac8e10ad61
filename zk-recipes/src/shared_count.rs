//! Curator's `SharedCount`: an `i32` in one node as 4 big-endian bytes, set outright or by
//! compare-and-set on the node's version, with a stream of its changes.
//!
//! The layout is Curator's (and kazoo's `Counter(support_curator=True)`), so a Java or Python
//! service can share the count.

use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::Stream;
use zk_client::{Bytes, Client, DataWatch, Error};

use crate::coord_util::{cas_write, Cas};

/// A count and the node version it was read at (Curator's `VersionedValue<Integer>`): what
/// [`SharedCount::try_set_count`] compares against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VersionedValue {
    /// The node's data version when the value was read.
    pub version: i32,
    /// The count.
    pub value: i32,
}

/// Reads a count: 4 big-endian bytes.
///
/// Errors with [`Error::InvalidArgument`] for data of another length.
pub(crate) fn decode_count(path: &str, data: &[u8]) -> Result<i32, Error> {
    let bytes: [u8; 4] = data.try_into().map_err(|_| {
        Error::InvalidArgument(format!(
            "{path} holds {} bytes, not a 4-byte count",
            data.len()
        ))
    })?;
    Ok(i32::from_be_bytes(bytes))
}

fn encode_count(n: i32) -> Bytes {
    Bytes::copy_from_slice(&n.to_be_bytes())
}

/// Curator's `SharedCount`. Made by [`start`](SharedCount::start), which creates the node with
/// the seed if it is missing. Reads go to the server each time (no cache to go stale); watch
/// [`changes`](SharedCount::changes) to follow the count.
#[derive(Debug, Clone)]
pub struct SharedCount {
    client: Client,
    path: String,
    seed: i32,
}

impl SharedCount {
    /// Opens the count at `path`, creating the node (and its parents) with `seed` when it does
    /// not exist (Curator's `new SharedCount(client, path, seed).start()`).
    ///
    /// Errors with the client's errors (after its retry policy) and InvalidPath.
    pub async fn start(client: &Client, path: &str, seed: i32) -> Result<SharedCount, Error> {
        let data = encode_count(seed);
        client
            .retry(|c| {
                let data = data.clone();
                async move {
                    match c.create(path, data).make_parents().await {
                        Ok(_) | Err(Error::NodeExists { .. }) => Ok(()),
                        Err(e) => Err(e),
                    }
                }
            })
            .await?;
        Ok(SharedCount {
            client: client.clone(),
            path: path.to_owned(),
            seed,
        })
    }

    /// The node's path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The count now (Curator's `getCount`).
    ///
    /// Errors as [`versioned_value`](Self::versioned_value).
    pub async fn count(&self) -> Result<i32, Error> {
        Ok(self.versioned_value().await?.value)
    }

    /// The count now and the version it was read at (Curator's `getVersionedValue`). An empty
    /// node (as kazoo's Counter leaves a new one) reads as the seed.
    ///
    /// Errors with NoNode if the node was deleted, [`Error::InvalidArgument`] when it does not
    /// hold a 4-byte count, and the client's errors after its retry policy.
    pub async fn versioned_value(&self) -> Result<VersionedValue, Error> {
        let (data, stat) = self
            .client
            .retry(|c| async move { c.get_data(&self.path).await })
            .await?;
        Ok(VersionedValue {
            version: stat.version,
            value: self.decode(&data)?,
        })
    }

    /// Sets the count whatever it is (Curator's `setCount`).
    ///
    /// Errors with NoNode if the node was deleted and the client's errors after its retry
    /// policy.
    pub async fn set_count(&self, n: i32) -> Result<(), Error> {
        let data = encode_count(n);
        self.client
            .retry(|c| {
                let data = data.clone();
                async move { c.set_data(&self.path, data).await.map(|_| ()) }
            })
            .await
    }

    /// Sets the count to `n` only if the node is still at `previous.version` (Curator's
    /// `trySetCount`): true if it was set, false if the count changed since `previous` was read
    /// (read it again and retry).
    ///
    /// Errors with [`Error::ConnectionLoss`] when the connection dropped during the write and
    /// the node is not as it was when it comes back, or [`Error::Timeout`] when the write timed
    /// out (whether it applied cannot be told), and with the client's errors.
    pub async fn try_set_count(&self, previous: &VersionedValue, n: i32) -> Result<bool, Error> {
        match cas_write(&self.client, &self.path, encode_count(n), previous.version).await? {
            Cas::Applied => Ok(true),
            Cas::Conflict => Ok(false),
            Cas::Unknown(e) => Err(e),
        }
    }

    /// The count now, then after every change (Curator's `SharedCountListener`), as a stream;
    /// changes that come close together may fold into one item. Deletion of the node yields
    /// nothing (the count is unknown until it is created again). The stream follows reconnects
    /// and session renewals, does not keep the session open, and ends when the client closes.
    /// An item is an error for data that is not a count, and the last item for a failure the
    /// watch cannot get past (e.g. NoAuth).
    pub fn changes(&self) -> CountChanges {
        CountChanges {
            watch: self.client.data_watch(&self.path),
            path: self.path.clone(),
            seed: self.seed,
        }
    }

    fn decode(&self, data: &[u8]) -> Result<i32, Error> {
        if data.is_empty() {
            return Ok(self.seed);
        }
        decode_count(&self.path, data)
    }
}

/// The stream of [`SharedCount::changes`].
pub struct CountChanges {
    watch: DataWatch,
    path: String,
    seed: i32,
}

impl std::fmt::Debug for CountChanges {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CountChanges")
            .field("path", &self.path)
            .finish()
    }
}

impl Stream for CountChanges {
    type Item = Result<VersionedValue, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            let item = match Pin::new(&mut self.watch).poll_next(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e))),
                Poll::Ready(Some(Ok(item))) => item,
            };
            let Some((data, stat)) = item.data else {
                continue;
            };
            let value = if data.is_empty() {
                Ok(self.seed)
            } else {
                decode_count(&self.path, &data)
            };
            return Poll::Ready(Some(value.map(|value| VersionedValue {
                version: stat.version,
                value,
            })));
        }
    }
}
