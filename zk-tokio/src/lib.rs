//! The ZooKeeper client on tokio: a `Runtime` implementation for zk-client plus re-exports, so
//! that `zk_tokio::Client::connect("h1:2181,h2:2181/app")` is all a tokio program needs.
//!
//! Not written yet: it arrives with the client issue.

#![forbid(unsafe_code)]
