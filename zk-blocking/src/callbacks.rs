//! kazoo-style callbacks: `data_watch`, `children_watch` (kazoo's `DataWatch` and
//! `ChildrenWatch`) and `add_listener`, each running its callback on a thread of its own.
//!
//! Why threads of their own: a callback may call the client (even block on it, or close it)
//! without deadlocking anything. The client's lock is never held while a callback runs, and the
//! `zk-driver` thread that keeps the session alive never runs user code. A slow callback delays
//! only its own later calls; events that arrive meanwhile are queued (data and children watches
//! fold them into the next read, as kazoo does).

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use bytes::Bytes;
use futures_lite::future::or;
use futures_lite::{Stream, StreamExt};
use zk_client::{ChildNames, Error, SessionState, Stat, WatchedEvent};

use crate::client::Client;
use crate::runtime::{block_on, Signal, Wake};

impl Client {
    /// Calls `callback` with the node's data and Stat now (`None` while the node does not
    /// exist), then again after every change, deletion or re-creation, with the event that led
    /// to it (kazoo's `DataWatch`). Returning `false` from the callback stops the watch.
    ///
    /// Returns once the first call has returned, so the current data has been seen (while no
    /// server is reachable, that waits as any request does). The calls run in order on a thread
    /// of their own (`zk-data-watch`), never under the client's lock: the callback may use the
    /// client. The watch keeps going across reconnects and session renewals (changes during a
    /// disconnection are folded into one call; a renewal that finds the node unchanged makes no
    /// call), and, as in kazoo, lives until the callback returns `false` or the client is closed
    /// (or restarted): the handle need not be kept. [`WatchHandle::stop`] ends it early, and
    /// [`WatchHandle::error`] tells a fetch that failed for good. It does not hold the session
    /// open: when the last client handle is dropped, the session closes and the watch ends. A
    /// panic in a later call ends the watch.
    ///
    /// Errors with what the first fetch failed with: InvalidPath, NoAuth, Closed and the like. If
    /// the first call panics, the panic is passed on to the caller.
    pub fn data_watch<F>(&self, path: &str, mut callback: F) -> Result<WatchHandle, Error>
    where
        F: FnMut(Option<(Bytes, Stat)>, Option<WatchedEvent>) -> bool + Send + 'static,
    {
        let stream = self.inner.data_watch(path);
        spawn_watch("zk-data-watch", stream, move |item: zk_client::DataItem| {
            callback(item.data, item.event)
        })
    }

    /// Calls `callback` with the node's children now (`None` while the node does not exist),
    /// then again after every change of the list, deletion or re-creation, with the event that
    /// led to it (kazoo's `ChildrenWatch`). Returning `false` stops the watch. The child names
    /// come in no defined order.
    ///
    /// Runs on a thread of its own (`zk-children-watch`) with the same rules as
    /// [`data_watch`](Self::data_watch).
    ///
    /// Errors with what the first listing failed with: InvalidPath, NoAuth, Closed and the like.
    /// If the first call panics, the panic is passed on to the caller.
    pub fn children_watch<F>(&self, path: &str, mut callback: F) -> Result<WatchHandle, Error>
    where
        F: FnMut(Option<ChildNames>, Option<WatchedEvent>) -> bool + Send + 'static,
    {
        let stream = self.inner.children_watch(path);
        spawn_watch(
            "zk-children-watch",
            stream,
            move |item: zk_client::ChildrenItem| callback(item.children, item.event),
        )
    }

    /// Calls `listener` with every session state change from now on (kazoo's `add_listener`):
    /// `Suspended` when the connection drops, `Connected` again, `Lost(reason)` when the session
    /// expires or is closed. States come in order, on a thread of its own (`zk-listener`), never
    /// under the client's lock; the listener may use the client. It stays registered across
    /// [`restart`](Self::restart), until [`ListenerHandle::remove`], the handle is dropped, or
    /// every clone of this client is dropped. It does not hold the session open. Add listeners
    /// to a client from [`ClientBuilder::build`](crate::ClientBuilder::build) before
    /// [`start`](Self::start) to see every state from the first (`Connecting` when there is no
    /// session yet, then `Connected`).
    ///
    /// Errors with [`Error::Runtime`] if the thread cannot be started.
    pub fn add_listener<F>(&self, mut listener: F) -> Result<ListenerHandle, Error>
    where
        F: FnMut(SessionState) + Send + 'static,
    {
        let mut changes = self.inner.state_changes();
        let signal = Arc::new(Signal::default());
        let sig = signal.clone();
        let thread = std::thread::Builder::new()
            .name("zk-listener".into())
            .spawn(move || {
                let mut seen = 0;
                loop {
                    let next = block_on(or(async { Ok(changes.next().await) }, async {
                        Err(sig.wait(seen).await)
                    }));
                    match next {
                        Ok(Some(state)) if !sig.is_stopped() => listener(state),
                        // The driver stopped (close, or the first half of a restart): wait for
                        // restart() to say the stream has a driver again.
                        Ok(None) => match block_on(sig.wait(seen)) {
                            Wake::Stop => return,
                            Wake::Kick(k) => seen = k,
                        },
                        Err(Wake::Kick(k)) => seen = k,
                        Ok(Some(_)) | Err(Wake::Stop) => return,
                    }
                }
            })
            .map_err(thread_error)?;
        let id = self.shared.listeners.add(&signal);
        Ok(ListenerHandle {
            id,
            stopper: Stopper {
                signal,
                thread: Some(thread),
            },
        })
    }
}

impl Client {
    /// The ids of the listeners registered on this client (kazoo's `state_listeners`), as
    /// [`ListenerHandle::id`] gives them.
    pub fn state_listeners(&self) -> Vec<u64> {
        self.shared.listeners.ids()
    }
}

fn thread_error(e: std::io::Error) -> Error {
    Error::Runtime(format!("cannot start a callback thread: {e}"))
}

/// Runs `deliver` on a new thread for every item of `stream`, until it returns false, the stream
/// ends, or the handle stops it. Returns after the first delivery.
fn spawn_watch<S, T, F>(name: &str, mut stream: S, mut deliver: F) -> Result<WatchHandle, Error>
where
    S: Stream<Item = Result<T, Error>> + Unpin + Send + 'static,
    F: FnMut(T) -> bool + Send + 'static,
{
    let signal = Arc::new(Signal::default());
    let error = Arc::new(Mutex::new(None));
    let (first_tx, first_rx) = mpsc::sync_channel::<Result<(), Error>>(1);
    let (sig, err) = (signal.clone(), error.clone());
    let thread = std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            let mut first = Some(first_tx);
            let end = loop {
                let next = block_on(or(async { Some(stream.next().await) }, async {
                    sig.wait(u64::MAX).await;
                    None
                }));
                let item = match next {
                    None => break None,
                    Some(None) => break Some(Error::Closed),
                    Some(Some(Err(e))) => {
                        *err.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.clone());
                        break Some(e);
                    }
                    Some(Some(Ok(item))) => item,
                };
                if sig.is_stopped() {
                    break None;
                }
                let go_on = deliver(item);
                if let Some(tx) = first.take() {
                    let _ = tx.send(Ok(()));
                }
                if !go_on {
                    break None;
                }
            };
            if let (Some(tx), Some(e)) = (first, end) {
                let _ = tx.send(Err(e));
            }
        })
        .map_err(thread_error)?;
    let mut stopper = Stopper {
        signal,
        thread: Some(thread),
    };
    match first_rx.recv() {
        Ok(Ok(())) => Ok(WatchHandle { stopper, error }),
        Ok(Err(e)) => {
            stopper.stop();
            Err(e)
        }
        // The thread ended without a word: the first call panicked. Pass the panic on.
        Err(mpsc::RecvError) => {
            if let Some(Err(panic)) = stopper.thread.take().map(JoinHandle::join) {
                std::panic::resume_unwind(panic);
            }
            Err(Error::Closed)
        }
    }
}

/// Stops a callback thread, and waits for it unless called from that thread.
#[derive(Debug)]
struct Stopper {
    signal: Arc<Signal>,
    thread: Option<JoinHandle<()>>,
}

impl Stopper {
    fn stop(&mut self) {
        self.signal.stop();
        if let Some(t) = self.thread.take() {
            if t.thread().id() != std::thread::current().id() {
                // A panic in the callback ended the thread; there is nothing left to stop.
                let _ = t.join();
            }
        }
    }

    fn is_running(&self) -> bool {
        self.thread.as_ref().is_some_and(|t| !t.is_finished())
    }
}

/// The handle of a [`data_watch`](Client::data_watch) or
/// [`children_watch`](Client::children_watch). The watch does not depend on it: as in kazoo,
/// it runs until its callback returns `false` or the client is closed, whether the handle is
/// kept or dropped. Keep it to [`stop`](Self::stop) the watch early or to read its
/// [`error`](Self::error).
#[derive(Debug)]
pub struct WatchHandle {
    stopper: Stopper,
    error: Arc<Mutex<Option<Error>>>,
}

impl WatchHandle {
    /// Stops the watch: once this returns, the callback is not running and will not be called
    /// again. Called from inside the callback, it cannot wait for itself: the callback is not
    /// called again after it returns.
    pub fn stop(mut self) {
        self.stopper.stop();
    }

    /// True until the watch has ended (stopped, the callback returned `false`, the client
    /// closed, or an error).
    pub fn is_running(&self) -> bool {
        self.stopper.is_running()
    }

    /// The error that ended the watch, if one did (e.g. NoAuth after an ACL change, or
    /// SessionExpired on a client that does not renew sessions).
    pub fn error(&self) -> Option<Error> {
        self.error.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// The handle of an [`add_listener`](Client::add_listener) listener. Dropping it unregisters the
/// listener without waiting; [`remove`](Self::remove) waits for a call under way.
#[must_use = "dropping the handle removes the listener"]
#[derive(Debug)]
pub struct ListenerHandle {
    id: u64,
    stopper: Stopper,
}

impl ListenerHandle {
    /// The listener's id, as [`Client::state_listeners`] lists it.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Unregisters the listener (kazoo's `remove_listener`): once this returns, it is not running
    /// and will not be called again (from inside the listener: not called again after it
    /// returns).
    pub fn remove(mut self) {
        self.stopper.stop();
    }
}

impl Drop for ListenerHandle {
    fn drop(&mut self) {
        self.stopper.signal.stop();
    }
}
