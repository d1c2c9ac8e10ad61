//! One session's client, whatever its runtime: the async `zk_client::Client` (tokio, async-std,
//! smol) or the blocking `zk_blocking::Client`. The workload is written once, as async code; for
//! the blocking client each method simply blocks (its worker runs on a thread of its own under
//! `futures_lite::future::block_on`), so the blocking API itself is what gets exercised.

use std::future::IntoFuture;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_lite::future::poll_once;
use futures_lite::StreamExt;
use zk_client::{AddWatchMode, Error, PersistentItem, Runtime, Stat, WatchedEvent};

/// Which runtime a worker's client runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// zk-tokio.
    Tokio,
    /// zk-async-std on async-std, the client's tasks on its thread pool.
    AsyncStd,
    /// zk-async-std on async-std, the client's tasks on the executor async-std's `block_on`
    /// runs on the worker's own thread (`AsyncStdRuntime::local`).
    AsyncStdLocal,
    /// zk-async-std on smol's global executor.
    Smol,
    /// zk-async-std on smol, the client's tasks on an executor of the program's own
    /// (`SmolRuntime::on`), which one thread runs with the workers' tasks.
    SmolExecutor,
    /// zk-blocking.
    Blocking,
}

impl Kind {
    /// Every kind, in the order workers are numbered.
    pub const ALL: [Kind; 6] = [
        Kind::Tokio,
        Kind::AsyncStd,
        Kind::AsyncStdLocal,
        Kind::Smol,
        Kind::SmolExecutor,
        Kind::Blocking,
    ];

    /// The runtime's name.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Tokio => "tokio",
            Kind::AsyncStd => "async-std",
            Kind::AsyncStdLocal => "async-std-local",
            Kind::Smol => "smol",
            Kind::SmolExecutor => "smol-executor",
            Kind::Blocking => "blocking",
        }
    }
}

/// Session settings every worker uses.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Requested session timeout.
    pub session_timeout: Duration,
    /// Every request's timeout.
    pub request_timeout: Duration,
}

/// A client of one kind.
pub enum Conn {
    /// tokio, async-std or smol.
    Async(zk_client::Client),
    /// zk-blocking.
    Blocking(zk_blocking::Client),
}

/// The latest item a DataWatch gave: the node's Stat (None while missing), how many items, and
/// the first rule it broke, if any.
#[derive(Debug, Default, Clone)]
pub struct DataWatchState {
    /// The Stat of the latest item.
    pub last: Option<Stat>,
    /// Items seen.
    pub items: u64,
    /// A broken rule (an item older than the one before).
    pub violation: Option<String>,
}

impl DataWatchState {
    fn record(&mut self, path: &str, data: Option<(Bytes, Stat)>) {
        self.items += 1;
        let stat = data.map(|(_, s)| s);
        if let (Some(prev), Some(now)) = (self.last, stat) {
            // Items are only real changes, so the node's mzxid must grow strictly: zxid order.
            if now.mzxid <= prev.mzxid && self.violation.is_none() {
                self.violation = Some(format!(
                    "DataWatch on {path}: item with mzxid {:#x} (version {}) after mzxid {:#x} (version {})",
                    now.mzxid, now.version, prev.mzxid, prev.version
                ));
            }
        }
        if stat.is_some() {
            self.last = stat;
        }
    }
}

/// A DataWatch of either kind.
pub enum DataWatch {
    /// A stream, drained by the worker (boxed: it is ten times the size of the other).
    Async(Box<zk_client::DataWatch>, String),
    /// A callback thread writing into shared state.
    Blocking(zk_blocking::WatchHandle),
}

/// A one-shot watch of either kind.
pub enum OneShot {
    /// A future.
    Async(zk_client::Watch),
    /// A blocking watch, polled with a zero timeout.
    Blocking(zk_blocking::Watch),
}

impl OneShot {
    /// The watch's outcome if it has one now, without waiting.
    pub async fn try_take(&mut self) -> Option<Result<WatchedEvent, Error>> {
        match self {
            OneShot::Async(w) => poll_once(w).await,
            OneShot::Blocking(w) => w.wait_timeout(Duration::ZERO),
        }
    }
}

/// A persistent watch of either kind.
pub enum Persistent {
    /// A stream.
    Async(zk_client::PersistentWatch),
    /// A blocking iterator, polled with a zero timeout.
    Blocking(zk_blocking::PersistentWatch),
}

/// What a persistent watch has now.
pub enum Next {
    /// An item.
    Item(PersistentItem),
    /// Nothing yet.
    Empty,
    /// The watch ended (its session did).
    Ended,
}

impl Persistent {
    /// The next item if there is one now, without waiting.
    pub async fn try_next(&mut self) -> Next {
        match self {
            Persistent::Async(w) => match poll_once(w.next()).await {
                Some(Some(item)) => Next::Item(item),
                Some(None) => Next::Ended,
                None => Next::Empty,
            },
            Persistent::Blocking(w) => match w.next_timeout(Duration::ZERO) {
                Some(item) => Next::Item(item),
                None if w.end_reason().is_some() => Next::Ended,
                None => Next::Empty,
            },
        }
    }
}

impl Conn {
    /// Connects a client of `kind` (`rt` is the runtime for the async kinds; the blocking
    /// client brings its own). Errors as the builders' `connect` do.
    pub async fn connect(
        kind: Kind,
        rt: Option<Arc<dyn Runtime>>,
        connect: &str,
        s: Settings,
        seed: u64,
    ) -> Result<Conn, Error> {
        match (kind, rt) {
            (Kind::Blocking, _) => zk_blocking::ClientBuilder::new(connect)
                .session_timeout(s.session_timeout)
                .request_timeout(s.request_timeout)
                .connect_timeout(Duration::from_secs(30))
                .rng_seed(seed)
                .connect()
                .map(Conn::Blocking),
            (_, Some(rt)) => zk_client::ClientBuilder::new(rt, connect)
                .session_timeout(s.session_timeout)
                .request_timeout(s.request_timeout)
                .connect_timeout(Duration::from_secs(30))
                .rng_seed(seed)
                .connect()
                .await
                .map(Conn::Async),
            (_, None) => Err(Error::InvalidArgument(
                "an async client needs a runtime".into(),
            )),
        }
    }

    /// The async client underneath (for the blocking one, the one it wraps): its id, state and
    /// state changes.
    pub fn inner(&self) -> &zk_client::Client {
        match self {
            Conn::Async(c) => c,
            Conn::Blocking(c) => c.as_async(),
        }
    }

    /// Sleeps on the client's runtime, or blocks the worker's thread.
    pub async fn sleep(&self, d: Duration) {
        match self {
            Conn::Async(c) => c.sleep(d).await,
            Conn::Blocking(_) => std::thread::sleep(d),
        }
    }

    /// set_data, version-checked when `version` is given.
    pub async fn set_data(
        &self,
        path: &str,
        data: &str,
        version: Option<i32>,
    ) -> Result<Stat, Error> {
        match self {
            Conn::Async(c) => {
                let op = c.set_data(path, data.to_owned());
                match version {
                    Some(v) => op.version(v).await,
                    None => op.await,
                }
            }
            Conn::Blocking(c) => {
                let op = c.set_data(path, data.to_owned());
                match version {
                    Some(v) => op.version(v).run(),
                    None => op.run(),
                }
            }
        }
    }

    /// Unconditional set_data of every `(path, data)`, all submitted, in order, before any reply
    /// is awaited (one session's pipeline: the async clients' futures submit when made,
    /// zk-blocking's `run_async`), the results in the order sent, which is the order ZooKeeper
    /// applies them.
    pub async fn set_data_pipelined(
        &self,
        writes: &[(String, String)],
    ) -> Vec<Result<Stat, Error>> {
        match self {
            Conn::Async(c) => {
                let sent: Vec<_> = writes
                    .iter()
                    .map(|(path, data)| c.set_data(path, data.clone()).into_future())
                    .collect();
                let mut results = Vec::with_capacity(sent.len());
                for reply in sent {
                    results.push(reply.await);
                }
                results
            }
            Conn::Blocking(c) => {
                let sent: Vec<_> = writes
                    .iter()
                    .map(|(path, data)| c.set_data(path, data.clone()).run_async())
                    .collect();
                sent.into_iter().map(|reply| reply.get()).collect()
            }
        }
    }

    /// get_data.
    pub async fn get_data(&self, path: &str) -> Result<(Bytes, Stat), Error> {
        match self {
            Conn::Async(c) => c.get_data(path).await,
            Conn::Blocking(c) => c.get_data(path).run(),
        }
    }

    /// get_data arming a one-shot watch.
    pub async fn get_data_watch(&self, path: &str) -> Result<(Bytes, Stat, OneShot), Error> {
        match self {
            Conn::Async(c) => c
                .get_data(path)
                .watch()
                .await
                .map(|(d, s, w)| (d, s, OneShot::Async(w))),
            Conn::Blocking(c) => c
                .get_data(path)
                .watch()
                .run()
                .map(|(d, s, w)| (d, s, OneShot::Blocking(w))),
        }
    }

    /// Creates an ephemeral node; returns its Stat (whose ephemeral owner is the session).
    pub async fn create_ephemeral(&self, path: &str, data: &str) -> Result<Stat, Error> {
        match self {
            Conn::Async(c) => c
                .create(path, data.to_owned())
                .ephemeral()
                .with_stat()
                .await
                .map(|(_, s)| s),
            Conn::Blocking(c) => c
                .create(path, data.to_owned())
                .ephemeral()
                .with_stat()
                .run()
                .map(|(_, s)| s),
        }
    }

    /// Deletes a node (any version).
    pub async fn delete(&self, path: &str) -> Result<(), Error> {
        match self {
            Conn::Async(c) => c.delete(path).await,
            Conn::Blocking(c) => c.delete(path).run(),
        }
    }

    /// A persistent (non-recursive) watch on `path`.
    pub async fn add_persistent(&self, path: &str) -> Result<Persistent, Error> {
        match self {
            Conn::Async(c) => c
                .add_watch(path, AddWatchMode::Persistent)
                .await
                .map(Persistent::Async),
            Conn::Blocking(c) => c
                .add_watch(path, AddWatchMode::Persistent)
                .map(Persistent::Blocking),
        }
    }

    /// A DataWatch on `path` whose items land in `state`.
    pub fn data_watch(
        &self,
        path: &str,
        state: Arc<Mutex<DataWatchState>>,
    ) -> Result<DataWatch, Error> {
        match self {
            Conn::Async(c) => Ok(DataWatch::Async(
                Box::new(c.data_watch(path)),
                path.to_owned(),
            )),
            Conn::Blocking(c) => {
                let p = path.to_owned();
                c.data_watch(path, move |data, _event| {
                    crate::lock(&state).record(&p, data);
                    true
                })
                .map(DataWatch::Blocking)
            }
        }
    }

    /// Closes the session (waits for the server's answer, bounded by the close timeout).
    pub async fn close(&self) {
        match self {
            Conn::Async(c) => c.close().await,
            Conn::Blocking(c) => c.close(),
        }
    }
}

impl DataWatch {
    /// Moves every item available now into `state` (the blocking kind does so by itself).
    /// Returns an error item's error, if one came.
    pub async fn drain(&mut self, state: &Mutex<DataWatchState>) -> Option<Error> {
        match self {
            DataWatch::Async(w, path) => loop {
                match poll_once(w.next()).await {
                    Some(Some(Ok(item))) => crate::lock(state).record(path, item.data),
                    Some(Some(Err(e))) => return Some(e),
                    Some(None) | None => return None,
                }
            },
            DataWatch::Blocking(h) => h.error(),
        }
    }
}
