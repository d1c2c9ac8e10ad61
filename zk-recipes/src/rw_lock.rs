//! kazoo's `ReadLock` and `WriteLock`: a shared lock on one path. Readers create
//! `<uuid hex>__rlock__<sequence>` and wait only for writers ahead of them; writers create
//! `<uuid hex>__lock__<sequence>` (the same name as [`Lock`], so a writer and a
//! plain lock exclude each other) and wait for everyone ahead of them.

use std::time::Duration;

use zk_client::{Client, Error};

use crate::lock::{Lock, LOCK_NAME, READ_LOCK_NAME};
use crate::ownership::{LossPolicy, Ownership, OwnershipLost, OwnershipState};

/// kazoo's `ReadLock`: held alongside other readers, never alongside a writer ahead of it.
#[derive(Debug)]
pub struct ReadLock {
    queue: crate::lock::ContenderQueue,
}

/// kazoo's `WriteLock`: held alone, excluding readers and writers.
#[derive(Debug)]
pub struct WriteLock {
    queue: crate::lock::ContenderQueue,
}

impl ReadLock {
    /// A read lock on `path` for a contender named `identifier`. Nothing is sent until an
    /// acquire.
    pub fn new(client: &Client, path: &str, identifier: &str) -> ReadLock {
        // The simulation's proof that its checker bites: a reader that ignores writers.
        let exclude: &[&str] = if crate::sabotage::is(crate::sabotage::Break::ReadIgnoresWriters) {
            &[]
        } else {
            &[LOCK_NAME]
        };
        ReadLock {
            queue: Lock::queue_with_names(client, path, identifier, READ_LOCK_NAME, exclude),
        }
    }

    lock_common!();
}

impl WriteLock {
    /// A write lock on `path` for a contender named `identifier`. Nothing is sent until an
    /// acquire.
    pub fn new(client: &Client, path: &str, identifier: &str) -> WriteLock {
        WriteLock {
            queue: Lock::queue_with_names(
                client,
                path,
                identifier,
                LOCK_NAME,
                &[LOCK_NAME, READ_LOCK_NAME],
            ),
        }
    }

    lock_common!();
}
