//! The user-facing async ZooKeeper API, generic over a small `Runtime` trait (open a TCP stream,
//! sleep until a deadline, spawn a task, read the clock): the `Client` handle, the driver task that
//! pumps bytes between a socket and the zk-core session, watch streams, transactions, retries and
//! recipes.
//!
//! Not written yet: it arrives with the client issue, on top of zk-core's session machine.

#![forbid(unsafe_code)]
