//! zk-recipes as blocking calls: the locks, leases, latches, elections, locking queue and set
//! partitioner here, and the coordination recipes (counters, queues, barriers, parties, nodes,
//! caches) re-exported from their own module; each wraps the async recipe and waits on the
//! calling thread. Layouts, semantics and errors are the async recipes' (see the `zk_recipes`
//! docs); only the waiting differs.
//!
//! The trust rules carry over: a timed-out acquire removes its node before returning, dropping
//! a held lock (or a latch, a queue holding an entry, a partitioner) releases it, and each holder
//! has an [`Ownership`] whose [`wait_lost`](Lock::wait_lost) blocks until ownership counts as
//! lost under the policy.
//!
//! ```no_run
//! use zk_blocking::recipes::Lock;
//! # fn main() -> Result<(), zk_blocking::Error> {
//! let client = zk_blocking::Client::connect("127.0.0.1:2181")?;
//! let mut lock = Lock::new(&client, "/locks/db", "worker-7");
//! lock.acquire()?;
//! let token = lock.fencing_token();
//! // ... work, checking lock.state() ...
//! lock.release()?;
//! # let _ = token;
//! # Ok(())
//! # }
//! ```

/// The coordination recipes (counters, queues, barriers, parties, nodes, caches), blocking.
pub use crate::recipes_coord::{
    Barrier, CacheEvent, CacheView, Change, ChildData, CountChanges, Counter, CounterValue,
    DoubleBarrier, GroupMember, NodeMode, Party, PatientChildrenWatch, PersistentNode,
    PersistentTtlNode, Queue, ShallowParty, SharedCount, SubtreeCache, TreeCache, TreeEvent,
    VersionedValue,
};

use std::time::{Duration, SystemTime};

use zk_client::{Bytes, Error};

use crate::client::Client;
use crate::runtime::{block_on, block_on_timeout};

pub use zk_recipes::{LeadershipEvent, LossPolicy, Ownership, OwnershipState, PartitionState};

/// Blocks until `own` counts as lost under its policy, at most `timeout` (`None`: no loss yet).
fn wait_lost_of(own: Option<&Ownership>, timeout: Option<Duration>) -> Option<OwnershipState> {
    let Some(own) = own else {
        return Some(OwnershipState::Lost);
    };
    let mut fut = own.lost();
    match timeout {
        None => Some(block_on(fut)),
        Some(t) => block_on_timeout(&mut fut, t),
    }
}

macro_rules! blocking_lock {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub struct $name(zk_recipes::$name);

        impl $name {
            /// The lock on `path` for a contender named `identifier`; nothing is sent yet.
            pub fn new(client: &Client, path: &str, identifier: &str) -> Self {
                $name(zk_recipes::$name::new(client.as_async(), path, identifier))
            }

            /// Uses `policy` for the ownership handed out when acquired.
            pub fn with_policy(self, policy: LossPolicy) -> Self {
                $name(self.0.with_policy(policy))
            }

            /// Blocks until acquired.
            ///
            /// Errors with NoAuth, InvalidPath and the session's errors; the node is deleted on
            /// error.
            pub fn acquire(&mut self) -> Result<(), Error> {
                block_on(self.0.acquire())
            }

            /// Blocks at most `timeout`: `Ok(false)` if not acquired, with the node deleted.
            ///
            /// Errors as [`acquire`](Self::acquire).
            pub fn acquire_timeout(&mut self, timeout: Duration) -> Result<bool, Error> {
                block_on(self.0.acquire_timeout(timeout))
            }

            /// Releases: deletes the node. `Ok(false)` if not held.
            ///
            /// Errors with the session's errors (the handle counts as released anyway).
            pub fn release(&mut self) -> Result<bool, Error> {
                block_on(self.0.release())
            }

            /// Whether this handle holds it.
            pub fn is_acquired(&self) -> bool {
                self.0.is_acquired()
            }

            /// The ownership while held.
            pub fn ownership(&self) -> Option<&Ownership> {
                self.0.ownership()
            }

            /// The fencing token (the node's czxid) while held.
            pub fn fencing_token(&self) -> Option<i64> {
                self.0.fencing_token()
            }

            /// Blocks until ownership counts as lost under the policy, at most `timeout` if given;
            /// `None` if it did not within `timeout`. Lost at once when not held.
            pub fn wait_lost(&self, timeout: Option<Duration>) -> Option<OwnershipState> {
                wait_lost_of(self.0.ownership(), timeout)
            }

            /// The identifiers of every contender, the holder first.
            ///
            /// Errors with NoAuth and the session's errors.
            pub fn contenders(&self) -> Result<Vec<String>, Error> {
                block_on(self.0.contenders())
            }
        }
    };
}

blocking_lock!(
    /// kazoo's `Lock`, blocking (see [`zk_recipes::Lock`]).
    Lock
);
blocking_lock!(
    /// kazoo's `ReadLock`, blocking (see [`zk_recipes::ReadLock`]).
    ReadLock
);
blocking_lock!(
    /// kazoo's `WriteLock`, blocking (see [`zk_recipes::WriteLock`]).
    WriteLock
);
blocking_lock!(
    /// Curator's re-entrant `InterProcessMutex`, blocking (see [`zk_recipes::InterProcessMutex`]).
    InterProcessMutex
);

impl Lock {
    /// Also treats nodes matching these patterns as contenders (kazoo's `extra_lock_patterns`).
    pub fn extra_lock_patterns<I, S>(self, patterns: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Lock(self.0.extra_lock_patterns(patterns))
    }

    /// Acquires only if nobody is ahead (kazoo's `acquire(blocking=False)`).
    ///
    /// Errors as [`acquire`](Self::acquire).
    pub fn try_acquire(&mut self) -> Result<bool, Error> {
        block_on(self.0.try_acquire())
    }
}

/// kazoo's `Semaphore`, blocking (see [`zk_recipes::Semaphore`]).
#[derive(Debug)]
pub struct Semaphore(zk_recipes::Semaphore);

impl Semaphore {
    /// A semaphore on `path` with `max_leases` leases for `identifier`; nothing is sent yet.
    pub fn new(client: &Client, path: &str, identifier: &str, max_leases: usize) -> Self {
        Semaphore(zk_recipes::Semaphore::new(
            client.as_async(),
            path,
            identifier,
            max_leases,
        ))
    }

    /// Blocks until a lease is held.
    ///
    /// Errors with InvalidArgument for a different recorded max_leases, NoAuth and the session's
    /// errors.
    pub fn acquire(&mut self) -> Result<(), Error> {
        block_on(self.0.acquire())
    }

    /// Blocks at most `timeout`: `Ok(false)` if no lease was free.
    ///
    /// Errors as [`acquire`](Self::acquire).
    pub fn acquire_timeout(&mut self, timeout: Duration) -> Result<bool, Error> {
        block_on(self.0.acquire_timeout(timeout))
    }

    /// Gives the lease back: `Ok(false)` if none was held.
    ///
    /// Errors with the session's errors.
    pub fn release(&mut self) -> Result<bool, Error> {
        block_on(self.0.release())
    }

    /// The identifiers of the lease holders.
    ///
    /// Errors with NoAuth and the session's errors.
    pub fn lease_holders(&self) -> Result<Vec<String>, Error> {
        block_on(self.0.lease_holders())
    }

    /// Whether this handle holds a lease.
    pub fn is_acquired(&self) -> bool {
        self.0.is_acquired()
    }

    /// The lease's ownership while held.
    pub fn ownership(&self) -> Option<&Ownership> {
        self.0.ownership()
    }

    /// Blocks until the lease counts as lost (see [`Lock::wait_lost`]).
    pub fn wait_lost(&self, timeout: Option<Duration>) -> Option<OwnershipState> {
        wait_lost_of(self.0.ownership(), timeout)
    }
}

/// kazoo's `Election`, blocking (see [`zk_recipes::Election`]).
#[derive(Debug)]
pub struct Election(zk_recipes::Election);

impl Election {
    /// An election on `path` for `identifier`.
    pub fn new(client: &Client, path: &str, identifier: &str) -> Self {
        Election(zk_recipes::Election::new(
            client.as_async(),
            path,
            identifier,
        ))
    }

    /// Blocks until elected, runs `func` with the leadership's ownership, then steps down.
    ///
    /// Errors with NoAuth and the session's errors.
    pub fn run<T>(&mut self, func: impl FnOnce(Ownership) -> T) -> Result<T, Error> {
        block_on(self.0.run(|own| async move { func(own) }))
    }

    /// The identifiers of every contender, the leader first.
    ///
    /// Errors with NoAuth and the session's errors.
    pub fn contenders(&self) -> Result<Vec<String>, Error> {
        block_on(self.0.contenders())
    }
}

/// Curator's `LeaderLatch`, blocking (see [`zk_recipes::LeaderLatch`]); its task runs on a
/// thread of its own and ends when the latch is closed or dropped.
#[derive(Debug)]
pub struct LeaderLatch(zk_recipes::LeaderLatch);

impl LeaderLatch {
    /// A participant `id` in the latch at `path`; call [`start`](Self::start).
    pub fn new(client: &Client, path: &str, id: &str) -> Self {
        LeaderLatch(zk_recipes::LeaderLatch::new(client.as_async(), path, id))
    }

    /// Joins the latch.
    ///
    /// Errors with Runtime if its thread cannot start.
    pub fn start(&mut self) -> Result<(), Error> {
        self.0.start()
    }

    /// Whether this participant leads now.
    pub fn has_leadership(&self) -> bool {
        self.0.has_leadership()
    }

    /// Blocks until this participant leads, at most `timeout` if given (`Ok(None)` then).
    ///
    /// Errors with Closed once the latch is closed, and with the error that stopped it.
    pub fn await_leadership(&self, timeout: Option<Duration>) -> Result<Option<Ownership>, Error> {
        let mut fut = Box::pin(self.0.await_leadership());
        match timeout {
            None => block_on(fut).map(Some),
            Some(t) => block_on_timeout(&mut fut, t).transpose(),
        }
    }

    /// The current leader's id, without taking part.
    ///
    /// Errors with NoAuth and the session's errors.
    pub fn leader(client: &Client, path: &str) -> Result<Option<String>, Error> {
        block_on(zk_recipes::LeaderLatch::leader(client.as_async(), path))
    }

    /// Every participant's id, the leader first.
    ///
    /// Errors with NoAuth and the session's errors.
    pub fn participants(client: &Client, path: &str) -> Result<Vec<String>, Error> {
        block_on(zk_recipes::LeaderLatch::participants(
            client.as_async(),
            path,
        ))
    }

    /// Leaves the latch and waits until its node is deleted.
    pub fn close(self) {
        block_on(self.0.close())
    }
}

/// kazoo's `NonBlockingLease`, blocking (see [`zk_recipes::NonBlockingLease`]).
#[derive(Debug, Clone)]
pub struct NonBlockingLease(zk_recipes::NonBlockingLease);

impl NonBlockingLease {
    /// Tries once to take (or renew) the lease at `path` for `duration`.
    ///
    /// Errors with NoAuth and the session's errors.
    pub fn obtain(
        client: &Client,
        path: &str,
        duration: Duration,
        identifier: &str,
    ) -> Result<Self, Error> {
        block_on(zk_recipes::NonBlockingLease::obtain(
            client.as_async(),
            path,
            duration,
            identifier,
        ))
        .map(NonBlockingLease)
    }

    /// Whether the lease was obtained.
    pub fn is_obtained(&self) -> bool {
        self.0.is_obtained()
    }

    /// Whether the lease is still this holder's at `now`.
    pub fn is_held_at(&self, now: SystemTime) -> bool {
        self.0.is_held_at(now)
    }

    /// The fencing token (the record's czxid) when obtained.
    pub fn fencing_token(&self) -> Option<i64> {
        self.0.fencing_token()
    }

    /// Blocks until the lease ends.
    pub fn wait_expired(&self) {
        block_on(self.0.expired())
    }
}

/// kazoo's `LockingQueue`, blocking (see [`zk_recipes::LockingQueue`]).
#[derive(Debug)]
pub struct LockingQueue(zk_recipes::LockingQueue);

impl LockingQueue {
    /// A queue at `path`.
    pub fn new(client: &Client, path: &str) -> Self {
        LockingQueue(zk_recipes::LockingQueue::new(client.as_async(), path))
    }

    /// Adds `value` with `priority` (0 to 999, lower first).
    ///
    /// Errors with InvalidArgument for a priority above 999, NoAuth and the session's errors.
    pub fn put(&self, value: impl Into<Bytes>, priority: u16) -> Result<(), Error> {
        block_on(self.0.put(value, priority))
    }

    /// Locks and returns the next entry, blocking at most `timeout` if given (`Ok(None)` then).
    ///
    /// Errors with NoAuth and the session's errors.
    pub fn get(&mut self, timeout: Option<Duration>) -> Result<Option<Bytes>, Error> {
        match timeout {
            None => block_on(self.0.get()).map(Some),
            Some(t) => block_on(self.0.get_timeout(t)),
        }
    }

    /// Removes the entry being processed: `Ok(false)` if none is held or the lock is gone.
    ///
    /// Errors with TransactionFailed and the session's errors.
    pub fn consume(&mut self) -> Result<bool, Error> {
        block_on(self.0.consume())
    }

    /// Unlocks the entry being processed without consuming it.
    ///
    /// Errors with the session's errors.
    pub fn release(&mut self) -> Result<bool, Error> {
        block_on(self.0.release())
    }

    /// The number of entries, taken ones included.
    ///
    /// Errors with NoAuth and the session's errors.
    pub fn len(&self) -> Result<usize, Error> {
        block_on(self.0.len())
    }

    /// Whether the queue has no entries.
    ///
    /// Errors as [`len`](Self::len).
    pub fn is_empty(&self) -> Result<bool, Error> {
        block_on(self.0.is_empty())
    }

    /// The held entry's lock ownership.
    pub fn ownership(&self) -> Option<&Ownership> {
        self.0.ownership()
    }
}

/// kazoo's `SetPartitioner`, blocking (see [`zk_recipes::SetPartitioner`]).
#[derive(Debug)]
pub struct SetPartitioner(zk_recipes::SetPartitioner);

impl SetPartitioner {
    /// Joins the party at `path/party` as `identifier` to share `items`.
    ///
    /// Errors with InvalidArgument for a bad identifier, NoAuth and the session's errors.
    pub fn new(
        client: &Client,
        path: &str,
        items: Vec<String>,
        identifier: &str,
        time_boundary: Duration,
    ) -> Result<Self, Error> {
        block_on(zk_recipes::SetPartitioner::new(
            client.as_async(),
            path,
            items,
            identifier,
            time_boundary,
        ))
        .map(SetPartitioner)
    }

    /// The state now (kept current by the partitioner's task, whether or not this is called).
    pub fn state(&self) -> PartitionState {
        self.0.state()
    }

    /// The items held (empty unless Acquired).
    pub fn partition(&self) -> &[String] {
        self.0.partition()
    }

    /// Allocates and blocks until Acquired (or Failure).
    ///
    /// Errors with NoAuth and the session's errors.
    pub fn wait_for_acquire(&mut self) -> Result<PartitionState, Error> {
        block_on(self.0.wait_for_acquire())
    }

    /// Blocks until an acquired set must be released or is lost.
    pub fn wait_changed(&mut self) -> PartitionState {
        block_on(self.0.changed())
    }

    /// Releases the set (state Allocating).
    ///
    /// Errors never (kazoo's shape).
    pub fn release_set(&mut self) -> Result<(), Error> {
        block_on(self.0.release_set())
    }

    /// Releases the set and leaves the party.
    ///
    /// Errors with the session's errors.
    pub fn finish(&mut self) -> Result<(), Error> {
        block_on(self.0.finish())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zk_testkit::real::{Ensemble, EnsembleOptions, ZkVersion};

    /// The blocking wrappers against real ZooKeeper 3.9: mutual exclusion across threads, a timed
    /// out acquire leaving no node, the loss signal when the holder's session is ended from
    /// another client, a semaphore, an election, a latch, a lease, a queue and a partitioner.
    #[test]
    fn recipes_block_on_a_real_server() {
        let ens = Ensemble::start(EnsembleOptions::standalone(ZkVersion::V3_9))
            .unwrap_or_else(|e| panic!("starting ZooKeeper 3.9: {e}"));
        let connect = ens.connect_string();
        let client = || {
            Client::builder(&connect)
                .session_timeout(Duration::from_secs(4))
                .connect()
                .expect("connect")
        };
        let admin = client();
        let base = "/blocking-recipes";
        block_on(admin.as_async().ensure_path(base)).expect("base");

        // Mutual exclusion across threads: each creates the same holder node inside.
        let path = format!("{base}/lock");
        let holder = format!("{base}/holder");
        let threads: Vec<_> = (0..3)
            .map(|i| {
                let (c, path, holder) = (client(), path.clone(), holder.clone());
                std::thread::spawn(move || -> Result<(), String> {
                    let mut lock = Lock::new(&c, &path, &format!("t{i}"));
                    for _ in 0..3 {
                        lock.acquire().map_err(|e| e.to_string())?;
                        c.create(&holder, "")
                            .ephemeral()
                            .run()
                            .map_err(|e| format!("t{i}: two holders? {e}"))?;
                        c.delete(&holder).run().map_err(|e| e.to_string())?;
                        lock.release().map_err(|e| e.to_string())?;
                    }
                    c.close();
                    Ok(())
                })
            })
            .collect();
        for t in threads {
            t.join().expect("thread").expect("mutual exclusion");
        }

        // A timed-out acquire leaves no node; the loss signal fires when the session ends.
        let a = client();
        let b = client();
        let mut la = Lock::new(&a, &path, "a");
        la.acquire().expect("a");
        let mut lb = Lock::new(&b, &path, "b");
        assert!(!lb.acquire_timeout(Duration::from_millis(200)).expect("b"));
        assert_eq!(
            b.get_children(&path).run().expect("children").len(),
            1,
            "b's node is gone"
        );
        assert_eq!(la.wait_lost(Some(Duration::from_millis(10))), None);
        let node = la.ownership().expect("held").node().to_owned();
        let id = a.client_id().expect("session");
        for _ in 0..20 {
            if let Ok(thief) = Client::builder(&connect).resume(id.clone()).connect() {
                thief.close();
            }
            if b.exists(&node).run().expect("exists").is_none() {
                break;
            }
        }
        let lost = la.wait_lost(Some(Duration::from_secs(30)));
        assert!(
            matches!(lost, Some(OwnershipState::Lost | OwnershipState::MaybeLost)),
            "{lost:?}"
        );
        assert!(lb.acquire_timeout(Duration::from_secs(30)).expect("b"));
        lb.release().expect("release");

        // Semaphore, election, latch, lease, queue, partitioner: one round each.
        let mut s1 = Semaphore::new(&b, &format!("{base}/sem"), "s1", 1);
        let mut s2 = Semaphore::new(&admin, &format!("{base}/sem"), "s2", 1);
        s1.acquire().expect("s1");
        assert!(!s2.acquire_timeout(Duration::from_millis(100)).expect("s2"));
        s1.release().expect("s1 release");
        assert!(s2.acquire_timeout(Duration::from_secs(30)).expect("s2"));
        assert_eq!(s2.lease_holders().expect("holders"), ["s2"]);
        s2.release().expect("s2 release");

        let mut e = Election::new(&b, &format!("{base}/election"), "e");
        assert!(e.run(|own| own.fencing_token() > 0).expect("run"));

        let mut latch = LeaderLatch::new(&b, &format!("{base}/latch"), "l");
        latch.start().expect("start");
        let own = latch
            .await_leadership(Some(Duration::from_secs(30)))
            .expect("latch")
            .expect("leads");
        assert!(own.fencing_token() > 0 && latch.has_leadership());
        assert_eq!(
            LeaderLatch::leader(&admin, &format!("{base}/latch")).expect("leader"),
            Some("l".into())
        );
        latch.close();

        let lease =
            NonBlockingLease::obtain(&b, &format!("{base}/lease"), Duration::from_secs(60), "x")
                .expect("lease");
        assert!(lease.is_obtained());
        let other =
            NonBlockingLease::obtain(&b, &format!("{base}/lease"), Duration::from_secs(60), "y")
                .expect("lease");
        assert!(!other.is_obtained());

        let mut q = LockingQueue::new(&b, &format!("{base}/queue"));
        q.put("one", 100).expect("put");
        assert_eq!(
            q.get(Some(Duration::from_secs(30)))
                .expect("get")
                .as_deref(),
            Some(&b"one"[..])
        );
        assert!(q.consume().expect("consume"));
        assert!(q.is_empty().expect("empty"));

        let mut p = SetPartitioner::new(
            &b,
            &format!("{base}/partitioner"),
            vec!["i1".into(), "i2".into()],
            "only",
            Duration::from_millis(100),
        )
        .expect("partitioner");
        assert_eq!(
            p.wait_for_acquire().expect("acquire"),
            PartitionState::Acquired
        );
        assert_eq!(p.partition(), ["i1", "i2"]);
        p.finish().expect("finish");

        for c in [a, b, admin] {
            c.close();
        }
    }
}
