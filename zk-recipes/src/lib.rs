//! kazoo's and Curator's recipes over [`zk_client::Client`], so they work on every runtime
//! (tokio, async-std, smol; zk-blocking wraps them for threads).
//!
//! Layouts on the server are the ones kazoo and Curator write, so a Python or Java service and
//! a Rust one can share a lock, an election or a counter.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

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
