//! Who reads the socket when it has bytes: the caller waiting for a reply, when there is one, so
//! that its reply does not travel from the driver's task (often on another thread) to it;
//! otherwise the driver.
//!
//! Every read of the session's connection, by the driver or by a caller, registers one waker, the
//! [`ReadRouter`]'s, and every read goes on until the socket would block, so the socket's next
//! readiness always reaches the router. The router wakes the caller holding the read role, or
//! the driver when none does. A caller takes the role when it finds its reply, or its watcher's
//! next event, missing (the most recent such caller wins: it is the one most surely waiting) and
//! gives it back when it leaves (what it waited for came, or its future or stream was dropped). Taking the role costs no system call: the caller
//! reads only when a readiness came to the role and was not acted on yet.
//!
//! Readiness is one-shot (async-io, tokio and the simulated network alike): once it has fired,
//! nothing more comes until someone reads to "would block". So a readiness handed to a holder
//! must never be dropped: the router marks it `unread`, and whoever next takes or leaves the role
//! learns that under the router's lock and reads the socket dry itself. The one thing that
//! delays reading is a holder woken and then neither polled nor dropped for a while (a future
//! kept aside in a `select!` loop): its session's bytes then wait until another caller waits for
//! a reply or the driver's next turn (its timer: a third of the session timeout while connected,
//! the connect or close timeout while connecting or closing). (A poll with a no-op waker, as
//! `now_or_never` makes, cannot be told apart: `Waker::will_wake` compares vtable addresses,
//! which differ between crates.)
//!
//! The TLS transport's reads may also write (its records); a write readiness that reaches a
//! holder only makes it read once for nothing, and whatever a caller's read leaves unwritten
//! wakes the driver (`Engine::read_as_caller`).
//!
//! Callers take the role only on runtimes where that saves a hand-off (`Runtime::callers_read`:
//! async-std, smol; not tokio's, where the bench's caller shares the driver's thread, nor
//! zk-blocking's, whose parked callers are woken from the driver's thread anyway).

use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Wake, Waker};

use zk_core::{RequestId, WatcherId};

/// A caller that can hold the read role: a task waiting for a reply, or for a watcher's next
/// item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Waiter {
    Reply(RequestId),
    Watch(WatcherId),
}

/// Routes read readiness to the holder of the read role or to the driver.
#[derive(Default)]
pub(crate) struct ReadRouter {
    state: Mutex<Route>,
}

#[derive(Default)]
struct Route {
    /// The caller holding the read role: what it waits for, and its task's waker.
    holder: Option<(Waiter, Waker)>,
    /// The driver's waker, refreshed on every turn of the driver.
    driver: Option<Waker>,
    /// A readiness went to a holder and nobody has read the socket since: whoever takes or
    /// leaves the role next reads it dry. (Readiness is one-shot: until someone reads to
    /// "would block", no further readiness comes.)
    unread: bool,
}

impl ReadRouter {
    fn lock(&self) -> MutexGuard<'_, Route> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records the driver's waker (its task's waker may change between polls).
    pub(crate) fn set_driver(&self, waker: &Waker) {
        let mut s = self.lock();
        if !s.driver.as_ref().is_some_and(|w| w.will_wake(waker)) {
            s.driver = Some(waker.clone());
        }
    }

    /// Gives the read role to `waiter`. Returns true when a readiness went to
    /// a holder and was not acted on yet: the caller must read the socket dry now. Otherwise the
    /// socket is registered with the router (whoever read it last read it dry), so its next
    /// readiness comes to this caller; no system call is needed to take the role.
    pub(crate) fn take(&self, waiter: Waiter, waker: &Waker) -> bool {
        let mut s = self.lock();
        match &mut s.holder {
            Some((held, w)) => {
                *held = waiter;
                if !w.will_wake(waker) {
                    *w = waker.clone();
                }
            }
            None => s.holder = Some((waiter, waker.clone())),
        }
        std::mem::take(&mut s.unread)
    }

    /// `waiter` leaves: if it held the role, the role goes back to the driver.
    /// Returns true when a readiness had gone to it and was not acted on: the caller must then
    /// read the socket dry itself, or those bytes would wait for nobody.
    pub(crate) fn leave(&self, waiter: Waiter) -> bool {
        let mut s = self.lock();
        if s.holder.as_ref().is_some_and(|(held, _)| *held == waiter) {
            s.holder = None;
            std::mem::take(&mut s.unread)
        } else {
            false
        }
    }

    /// Someone is about to read the socket dry (the driver, on its turn): a readiness that went
    /// to a holder is acted on by that read. Cleared before the read, so a readiness during it
    /// marks the role again.
    pub(crate) fn clear_unread(&self) {
        self.lock().unread = false;
    }

    /// The session was replaced: nobody holds the role any more.
    pub(crate) fn reset(&self) {
        let mut s = self.lock();
        s.holder = None;
        s.unread = false;
    }
}

impl Wake for ReadRouter {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        // Woken outside the lock: a waker that runs code of its own cannot come back here.
        let target = {
            let mut s = self.lock();
            match &s.holder {
                Some((_, w)) => {
                    let w = w.clone();
                    s.unread = true;
                    Some(w)
                }
                None => s.driver.clone(),
            }
        };
        if let Some(w) = target {
            w.wake();
        }
    }
}
