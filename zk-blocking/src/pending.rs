//! Requests sent now and waited for later: kazoo's `get_async`, `create_async` and friends, and
//! their `IAsyncResult`. They let one thread keep many requests in flight (a window of reads or
//! creates) without an async runtime.

use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use zk_client::{ChildNames, Error, Stat};

use crate::ops::{Create, Delete, Exists, GetChildren, GetData, SetData};
use crate::runtime::{block_on, block_on_timeout};

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, Error>> + Send + 'a>>;

/// A request that has been sent; [`get`](Self::get) waits for its result. ZooKeeper answers a
/// session's requests in the order they were sent, so waiting on the oldest first loses nothing.
///
/// Dropping it abandons the result, not the request: a write still applies. The exceptions are
/// the two operations that are a sequence of requests, a create with `make_parents` and a
/// recursive delete: they run only inside `get()` and `get_timeout()`, so dropping one before
/// that sends nothing, and dropping it after a `get_timeout()` that gave it back stops it
/// part-way (some parents made, some descendants deleted).
#[must_use = "get() its result, or drop it to ignore the result"]
pub struct AsyncResult<'a, T>(BoxFuture<'a, T>);

impl<'a, T> AsyncResult<'a, T> {
    fn new(fut: impl Future<Output = Result<T, Error>> + Send + 'a) -> Self {
        AsyncResult(Box::pin(fut))
    }

    /// Waits for the result.
    ///
    /// Errors as the operation that made it says.
    pub fn get(self) -> Result<T, Error> {
        block_on(self.0)
    }

    /// Waits at most `timeout` for the result; gives `self` back if it has not come yet, to wait
    /// again or drop (see the type's note on `make_parents` and recursive deletes).
    ///
    /// The inner result errors as the operation that made it says.
    pub fn get_timeout(mut self, timeout: Duration) -> Result<Result<T, Error>, Self> {
        match block_on_timeout(&mut self.0, timeout) {
            Some(result) => Ok(result),
            None => Err(self),
        }
    }
}

impl<T> std::fmt::Debug for AsyncResult<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AsyncResult")
    }
}

impl<'a> GetData<'a> {
    /// Sends the read and returns at once (kazoo's `get_async`).
    ///
    /// `get()` errors as [`Client::get_data`](crate::Client::get_data) does.
    pub fn run_async(self) -> AsyncResult<'a, (Bytes, Stat)> {
        AsyncResult::new(self.0.into_future())
    }
}

impl<'a> Exists<'a> {
    /// Sends the exists and returns at once (kazoo's `exists_async`).
    ///
    /// `get()` errors as [`Client::exists`](crate::Client::exists) does.
    pub fn run_async(self) -> AsyncResult<'a, Option<Stat>> {
        AsyncResult::new(self.0.into_future())
    }
}

impl<'a> GetChildren<'a> {
    /// Sends the listing and returns at once (kazoo's `get_children_async`).
    ///
    /// `get()` errors as [`Client::get_children`](crate::Client::get_children) does.
    pub fn run_async(self) -> AsyncResult<'a, ChildNames> {
        AsyncResult::new(self.0.into_future())
    }
}

impl<'a> SetData<'a> {
    /// Sends the write and returns at once (kazoo's `set_async`).
    ///
    /// `get()` errors as [`Client::set_data`](crate::Client::set_data) does.
    pub fn run_async(self) -> AsyncResult<'a, Stat> {
        AsyncResult::new(self.0.into_future())
    }
}

impl<'a> Create<'a> {
    /// Sends the create and returns at once (kazoo's `create_async`); `get()` gives the path
    /// created. With `make_parents` the work is a sequence of requests, each depending on the
    /// last: it all happens inside `get()`, and nothing is sent before.
    ///
    /// `get()` errors as [`Client::create`](crate::Client::create) says.
    pub fn run_async(self) -> AsyncResult<'a, String> {
        AsyncResult::new(self.0.into_future())
    }
}

impl<'a> Delete<'a> {
    /// Sends the delete and returns at once (kazoo's `delete_async`). A recursive delete is a
    /// sequence of requests: it all happens inside `get()`, and nothing is sent before.
    ///
    /// `get()` errors as [`Client::delete`](crate::Client::delete) says.
    pub fn run_async(self) -> AsyncResult<'a, ()> {
        AsyncResult::new(self.0.into_future())
    }
}
