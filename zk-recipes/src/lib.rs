//! kazoo's and Curator's recipes over [`zk_client::Client`], so they work on every runtime
//! (tokio, async-std, smol; zk-blocking wraps them for threads).
//!
//! Layouts on the server are the ones kazoo and Curator write, so a Python or Java service and
//! a Rust one can share a lock, an election or a counter.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod coord_util;
pub mod counter;
pub mod shared_count;

pub use counter::{Change, Counter, CounterValue};
pub use shared_count::{CountChanges, SharedCount, VersionedValue};
pub mod queue;
pub use queue::Queue;
pub mod barrier;
pub mod party;
pub use barrier::{Barrier, DoubleBarrier};
pub use party::{Party, ShallowParty};
pub mod persistent_node;
pub use persistent_node::{NodeMode, PersistentNode, PersistentTtlNode};
pub mod group_member;
pub use group_member::GroupMember;
pub mod subtree_cache;
pub use subtree_cache::{CacheEvent, CacheView, ChildData, SubtreeCache};
pub mod patient_children_watch;
pub mod tree_cache;
pub use patient_children_watch::PatientChildrenWatch;
pub use tree_cache::{TreeCache, TreeEvent};
