//! A blocking ZooKeeper client for programs without an async runtime: the same surface as
//! zk-client as blocking methods, plus kazoo-style callback watches and state listeners.
//!
//! Not written yet: it arrives with the client issue.

#![forbid(unsafe_code)]
