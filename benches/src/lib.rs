//! Benchmarks: criterion micro-benchmarks of the codec and the session core, and `zk-bench`,
//! the end-to-end workloads of shared/BENCH-SPEC.md.
//!
//! Not written yet: it arrives with the benchmarks issue.

#![forbid(unsafe_code)]
