//! Deliberate breaks of the recipes, for the simulation's proofs that its invariants catch them
//! (`zk-recipes/tests/simulation.rs`). Compiled only with the `sabotage` feature, which only that
//! test turns on; each switch is per thread (a simulated world runs in one thread), off unless a
//! test turns it on, so tests running side by side do not see each other's breaks.

#[cfg(feature = "sabotage")]
use std::cell::Cell;

/// One deliberate break.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Break {
    /// A ReadLock that ignores the writers queued before it.
    ReadIgnoresWriters = 1,
    /// A LockingQueue whose `consume` does not check that the entry's lock is still its own.
    ConsumeWithoutLockCheck = 2,
    /// A subtree cache that ignores the watch's Resync item and the reconnect (no re-read).
    CacheIgnoresResync = 4,
    /// A SetPartitioner that does not notice the party changing once it holds its set.
    PartitionerIgnoresParty = 8,
    /// A lock waiter that never hears its predecessor's watch fire (it still looks again after a
    /// reconnect).
    WaiterIgnoresWatch = 16,
}

#[cfg(feature = "sabotage")]
thread_local! {
    static BROKEN: Cell<u32> = const { Cell::new(0) };
}

/// Turns `breaks` on (and every other one off) for recipes made or run on this thread from now on.
#[cfg(feature = "sabotage")]
pub fn set(breaks: &[Break]) {
    BROKEN.with(|b| b.set(breaks.iter().fold(0, |acc, x| acc | *x as u32)));
}

/// Whether `b` is on in this thread.
#[cfg(feature = "sabotage")]
pub(crate) fn is(b: Break) -> bool {
    BROKEN.with(|x| x.get() & b as u32 != 0)
}

/// Whether `b` is on: never, without the `sabotage` feature.
#[cfg(not(feature = "sabotage"))]
pub(crate) fn is(_: Break) -> bool {
    false
}
