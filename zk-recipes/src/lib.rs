//! kazoo's and Curator's recipes over [`zk_client::Client`], so they work on every runtime
//! (tokio, async-std, smol; zk-blocking wraps them for threads).
//!
//! Layouts on the server are the ones kazoo and Curator write, so a Python or Java service and
//! a Rust one can share a lock, an election or a counter.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

// Locks, leases, latches and elections (and their shared infrastructure).
pub mod election;
pub mod leader_latch;
pub mod lease;
pub mod locking_queue;
#[macro_use]
pub mod lock;
pub mod ownership;
pub mod protected;
pub mod rw_lock;
// Deliberate breaks for the simulation's proofs: public (hidden) only with the test-only
// `sabotage` feature; without it every switch is off and compiled away.
#[cfg(feature = "sabotage")]
#[doc(hidden)]
pub mod sabotage;
#[cfg(not(feature = "sabotage"))]
mod sabotage;
pub mod semaphore;
pub mod set_partitioner;

pub use election::Election;
pub use leader_latch::{LeaderLatch, LeadershipEvent, LeadershipEvents};
pub use lease::{MultiNonBlockingLease, NonBlockingLease};
pub use lock::{InterProcessMutex, Lock};
pub use locking_queue::LockingQueue;
pub use ownership::{LossPolicy, Ownership, OwnershipLost, OwnershipState};
pub use rw_lock::{ReadLock, WriteLock};
pub use semaphore::Semaphore;
pub use set_partitioner::{PartitionState, SetPartitioner};

// ---- coordination recipes: counters, queue, barriers, party, nodes kept in place, caches ----
mod coord_util;

pub mod barrier;
pub mod counter;
pub mod group_member;
pub mod party;
pub mod patient_children_watch;
pub mod persistent_node;
pub mod queue;
pub mod shared_count;
pub mod subtree_cache;
pub mod tree_cache;

pub use barrier::{Barrier, DoubleBarrier};
pub use counter::{Change, Counter, CounterValue};
pub use group_member::GroupMember;
pub use party::{Party, ShallowParty};
pub use patient_children_watch::PatientChildrenWatch;
pub use persistent_node::{NodeMode, PersistentNode, PersistentTtlNode};
pub use queue::Queue;
pub use shared_count::{CountChanges, SharedCount, VersionedValue};
pub use subtree_cache::{CacheEvent, CacheView, ChildData, SubtreeCache};
pub use tree_cache::{TreeCache, TreeEvent};
