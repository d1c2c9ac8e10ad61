//! The workloads of shared/BENCH-SPEC.md, as constants: every column reads its sizes from here,
//! so no column can run a smaller workload than another.

use std::time::Duration;

/// Session timeout of every benchmark session.
pub const SESSION_TIMEOUT: Duration = Duration::from_secs(30);

/// 100 bytes, read by W1 and W2.
pub const SMALL: &str = "/zkb/small";
/// Length of [`SMALL`]'s data.
pub const SMALL_LEN: usize = 100;
/// 1,000,000 bytes, read by W4.
pub const BIG: &str = "/zkb/big";
/// Length of [`BIG`]'s data.
pub const BIG_LEN: usize = 1_000_000;
/// 50,000 empty children `c00000` … `c49999`, listed by W5.
pub const WIDE: &str = "/zkb/wide";
/// Number of children of [`WIDE`].
pub const WIDE_CHILDREN: usize = 50_000;
/// The parent W3 creates under; empty between runs.
pub const W3_PARENT: &str = "/zkb/w3";
/// W3's sequential node prefix.
pub const W3_PREFIX: &str = "/zkb/w3/n-";
/// Size of each W3 value.
pub const W3_VALUE_LEN: usize = 100;

/// Requests issued and not yet completed, at most, in W2 and W3.
pub const WINDOW: usize = 1_000;

/// W1: warm-up getData count.
pub const W1_WARMUP: usize = 2_000;
/// W1: timed sequential getData count.
pub const W1_OPS: usize = 20_000;
/// W2: warm-up windowed getData count.
pub const W2_WARMUP: usize = 20_000;
/// W2: timed windowed getData count.
pub const W2_OPS: usize = 200_000;
/// W3: warm-up creates (then their deletes).
pub const W3_WARMUP: usize = 5_000;
/// W3: timed creates, then as many deletes.
pub const W3_OPS: usize = 50_000;
/// W4: warm-up reads of [`BIG`].
pub const W4_WARMUP: usize = 10;
/// W4: timed sequential reads of [`BIG`].
pub const W4_OPS: usize = 500;
/// W5: warm-up listings of [`WIDE`].
pub const W5_WARMUP: usize = 2;
/// W5: timed sequential listings of [`WIDE`].
pub const W5_OPS: usize = 20;
/// W6: warm-up sessions.
pub const W6_WARMUP: usize = 10;
/// W6: timed sessions, one after another.
pub const W6_OPS: usize = 300;

/// W7: the parent of the watched children; made before each W7 run and removed after it.
pub const W7_PARENT: &str = "/zkb/w7";
/// W7: children of [`W7_PARENT`], one one-shot data watch each, all changed by one multi.
pub const W7_CHILDREN: usize = 10_000;
/// W8: the parent of the watched nodes (and the path of the persistent recursive watch).
pub const W8_PARENT: &str = "/zkb/w8";
/// W8: nodes under [`W8_PARENT`], one one-shot data watch each.
pub const W8_NODES: usize = 10_000;
/// W8: how long the check after the timed phase waits for the 20,000 events (10,000 one-shot,
/// 10,000 from the recursive watch) before it calls the missing ones lost. Generous: the events
/// come within a second or two of the writes; this only bounds how long a failure takes.
pub const W8_CHECK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// One workload of the spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Workload {
    /// Sequential small reads, each timed.
    W1,
    /// Pipelined small reads.
    W2,
    /// Pipelined creates, then deletes.
    W3,
    /// Sequential 1 MB reads.
    W4,
    /// Sequential listings of 50,000 children.
    W5,
    /// Sessions opened and closed one after another.
    W6,
    /// Watch fan-out: 10,000 one-shot watches fired by one multi from another session.
    W7,
    /// Reconnect with 10,000 watches on a 3-node ensemble.
    W8,
}

impl Workload {
    /// Every workload, in order.
    pub const ALL: [Workload; 8] = [
        Workload::W1,
        Workload::W2,
        Workload::W3,
        Workload::W4,
        Workload::W5,
        Workload::W6,
        Workload::W7,
        Workload::W8,
    ];

    /// Parses `w1` … `w8`.
    pub fn parse(s: &str) -> Option<Workload> {
        Some(match s {
            "w1" => Workload::W1,
            "w2" => Workload::W2,
            "w3" => Workload::W3,
            "w4" => Workload::W4,
            "w5" => Workload::W5,
            "w6" => Workload::W6,
            "w7" => Workload::W7,
            "w8" => Workload::W8,
            _ => return None,
        })
    }

    /// `w1` … `w8`.
    pub fn name(self) -> &'static str {
        match self {
            Workload::W1 => "w1",
            Workload::W2 => "w2",
            Workload::W3 => "w3",
            Workload::W4 => "w4",
            Workload::W5 => "w5",
            Workload::W6 => "w6",
            Workload::W7 => "w7",
            Workload::W8 => "w8",
        }
    }
}

/// The value every W3 create writes.
pub fn w3_value() -> Vec<u8> {
    vec![b'v'; W3_VALUE_LEN]
}

/// The name of [`WIDE`]'s `i`-th child.
pub fn wide_child(i: usize) -> String {
    format!("c{i:05}")
}

/// The path of W7's `i`-th watched child.
pub fn w7_child(i: usize) -> String {
    format!("{W7_PARENT}/c{i:05}")
}

/// The path of W8's `i`-th watched node.
pub fn w8_node(i: usize) -> String {
    format!("{W8_PARENT}/n{i:05}")
}

/// The value W7's multi and W8's writer set (any value changes the node; the version moves).
pub const WATCH_VALUE: &[u8] = b"changed";
