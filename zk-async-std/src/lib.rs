//! The ZooKeeper client on async-std and smol, built on async-io / async-net / futures-lite: a
//! `Runtime` implementation for zk-client plus re-exports.
//!
//! Not written yet: it arrives with the client issue.

#![forbid(unsafe_code)]
