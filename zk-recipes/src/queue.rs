//! kazoo's `Queue`: a distributed queue with priorities, one sequential node per item.
//!
//! Layout (kazoo's): items are children of the queue node named
//! `entry-{priority:03}-{sequence:010}`, holding the item's bytes. Sorted by name, that is
//! priority first (lower first), then arrival order. A consumer reads the first item and deletes
//! it; whoever deletes it owns it, so several consumers (kazoo's among them) never get the same
//! item twice.
//!
//! Like kazoo's, this queue is not a reliable one: an item is removed before it is processed, so
//! a consumer that fails afterwards loses it (use a locking queue for that).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use zk_client::{Bytes, Client, Data, Error};

use crate::coord_util::{ensure_node, join};

/// The priority kazoo gives an item when none is named.
pub const DEFAULT_PRIORITY: u16 = 100;

/// The prefix of every item's name.
const PREFIX: &str = "entry-";

/// kazoo's `Queue` over the node at a path.
#[derive(Debug)]
pub struct Queue {
    client: Client,
    path: String,
    ensured: AtomicBool,
    /// Item names from the last listing not tried yet, in queue order (kazoo keeps the same
    /// list, so a run of gets costs one listing).
    children: Mutex<Vec<String>>,
}

impl Queue {
    /// The queue at `path` (kazoo's `Queue(client, path)`); the node is created on first use.
    pub fn new(client: &Client, path: &str) -> Self {
        Queue {
            client: client.clone(),
            path: path.to_owned(),
            ensured: AtomicBool::new(false),
            children: Mutex::new(Vec::new()),
        }
    }

    /// The queue's path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Puts an item with the default priority (100).
    ///
    /// Errors as [`put_with_priority`](Self::put_with_priority).
    pub async fn put(&self, value: impl Data) -> Result<(), Error> {
        self.put_with_priority(value, DEFAULT_PRIORITY).await
    }

    /// Puts an item with `priority`, 0 to 999, lower first (kazoo's `put(value, priority)`).
    ///
    /// Errors with [`Error::InvalidArgument`] for a priority over 999, and with the client's
    /// errors. A ConnectionLoss is not retried, as in kazoo: the item may or may not have been
    /// enqueued, and a second try could enqueue it twice. Cancelling a put after it started
    /// may still enqueue the item (the request is already on its way).
    pub async fn put_with_priority(&self, value: impl Data, priority: u16) -> Result<(), Error> {
        let prefix = self.item_prefix(priority)?;
        let value = value.into_bytes();
        self.ensure().await?;
        self.client.create(&prefix, value).sequential().await?;
        Ok(())
    }

    /// Puts several items with one `priority`, all or none (one transaction).
    ///
    /// Errors as [`put_with_priority`](Self::put_with_priority); on an error other than
    /// ConnectionLoss none was enqueued.
    pub async fn put_all<D: Data>(
        &self,
        values: impl IntoIterator<Item = D>,
        priority: u16,
    ) -> Result<(), Error> {
        let prefix = self.item_prefix(priority)?;
        self.ensure().await?;
        let mut txn = self.client.transaction();
        for v in values {
            txn = txn.create(&prefix, v).sequential().end();
        }
        if txn.is_empty() {
            return Ok(());
        }
        txn.commit().await?;
        Ok(())
    }

    /// Takes the first item (lowest priority number, then oldest) and removes it from the queue
    /// (kazoo's `get()`); `None` when the queue is empty.
    ///
    /// Errors with the client's errors after its retry policy. If the connection drops while the
    /// item is being deleted and the item is gone when it is back, the item is returned: it may
    /// then, rarely, also have gone to another consumer, but it is never lost that way.
    /// Cancelling a get once it has sent its delete loses the item, as a crash would.
    pub async fn get(&self) -> Result<Option<Bytes>, Error> {
        self.ensure().await?;
        loop {
            let Some(name) = self.next_name().await? else {
                return Ok(None);
            };
            let item = join(&self.path, &name);
            let data = match self
                .client
                .retry(|c| {
                    let item = &item;
                    async move { c.get_data(item).await }
                })
                .await
            {
                Ok((data, _)) => data,
                // Another consumer took it: try the next one.
                Err(Error::NoNode { .. }) => continue,
                Err(e) => return Err(e),
            };
            match self.client.delete(&item).await {
                Ok(()) => return Ok(Some(data)),
                Err(Error::NoNode { .. }) => continue,
                Err(Error::ConnectionLoss) | Err(Error::Timeout) => {
                    let again = self
                        .client
                        .retry(|c| {
                            let item = &item;
                            async move { c.delete(item).await }
                        })
                        .await;
                    match again {
                        // Gone: perhaps by our first delete. Better twice than never.
                        Ok(()) | Err(Error::NoNode { .. }) => return Ok(Some(data)),
                        Err(e) => return Err(e),
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The number of items (kazoo's `len(queue)`).
    ///
    /// Errors with the client's errors after its retry policy.
    pub async fn len(&self) -> Result<usize, Error> {
        self.ensure().await?;
        let (_, stat) = self
            .client
            .retry(|c| async move { c.get_data(&self.path).await })
            .await?;
        Ok(usize::try_from(stat.num_children).unwrap_or(0))
    }

    /// Whether the queue has no items.
    ///
    /// Errors as [`len`](Self::len).
    pub async fn is_empty(&self) -> Result<bool, Error> {
        Ok(self.len().await? == 0)
    }

    fn item_prefix(&self, priority: u16) -> Result<String, Error> {
        if priority > 999 {
            return Err(Error::InvalidArgument(format!(
                "queue priority {priority} is not within 0..=999"
            )));
        }
        Ok(format!("{}/{PREFIX}{priority:03}-", self.path))
    }

    async fn ensure(&self) -> Result<(), Error> {
        if !self.ensured.load(Ordering::Relaxed) {
            ensure_node(&self.client, &self.path).await?;
            self.ensured.store(true, Ordering::Relaxed);
        }
        Ok(())
    }

    /// The next item name to try, listing the queue again when the last listing is used up.
    async fn next_name(&self) -> Result<Option<String>, Error> {
        if let Some(name) = self.pop_cached() {
            return Ok(Some(name));
        }
        let names = self
            .client
            .retry(|c| async move { c.get_children(&self.path).await })
            .await?;
        let mut names: Vec<String> = names
            .iter()
            .filter(|n| n.starts_with(PREFIX))
            .map(str::to_owned)
            .collect();
        // Kept in reverse so the next item pops off the end.
        names.sort_unstable_by(|a, b| b.cmp(a));
        let next = names.pop();
        if let Ok(mut cached) = self.children.lock() {
            *cached = names;
        }
        Ok(next)
    }

    fn pop_cached(&self) -> Option<String> {
        self.children.lock().ok()?.pop()
    }
}
