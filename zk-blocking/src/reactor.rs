//! The sockets and timers of zk-blocking's threads, waited on in the `poll(2)` of the thread
//! whose futures wait for them (`wait.rs`), instead of in async-io's reactor.
//!
//! Why: async-io's reactor (an epoll instance with one-shot registrations, a timerfd, a notifier)
//! costs the thread running it several system calls per wait: each readiness re-arms its socket
//! with `epoll_ctl`, each timer moved re-arms the timerfd and reads it back. On the `zk-driver`
//! thread that came to 17 `epoll_ctl`, 6 `epoll_pwait`, 6 `timerfd_settime` and 6 `read` per short
//! session, and in pipelined reads to five calls per look of the driver at a reading caller
//! (BENCHMARKS.md). A zk-blocking thread waits for one or two sockets and a timer or two, and
//! already waits in `poll(2)` on its wake-up channel: the sockets join that call, and the nearest
//! deadline is its timeout, so each wait is one system call.
//!
//! How: a socket or a timer is a [`Source`]. A future that finds it not ready registers an
//! *interest* (read, write, or a deadline) with its waker, on the waiter of the thread polling it
//! (the innermost `wait::block_on` running there, when the poll's waker is that `block_on`'s own).
//! A thread registers only with its own waiter, so no registration races that waiter's wait: the
//! thread's next wait includes it, and readiness or the deadline takes the interest out and wakes
//! its waker (one-shot, as async-io's, so a readable socket that nobody reads does not spin the
//! loop). One interest per direction and source, the last poller's (as async-io's
//! `poll_readable`): a registration takes the direction over from another thread's waiter, whose
//! wait then drops it (at most one needless wake-up there). A source polled with any other waker
//! (zk-client's async API under another executor, or another executor run inside zk-blocking's
//! `block_on`) cannot register: its owner (`local_io`) waits on async-io instead.

use std::net::TcpStream;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::Waker;
use std::time::Instant;

use rustix::event::PollFlags;

use crate::wait::{current_waiter, is_current, Waiter};

/// Which readiness of a socket a future waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dir {
    Read,
    Write,
}

/// A socket or a timer that futures wait on; shared by its owner (`local_io`) and, weakly, by
/// the waiters it is registered with.
pub(crate) struct Source {
    /// The socket, or `None` for a timer.
    socket: Option<Arc<TcpStream>>,
    interests: Mutex<Interests>,
}

/// What the futures polling a source wait for, each on the waiter of the thread that polled it.
#[derive(Default)]
struct Interests {
    read: Option<Interest>,
    write: Option<Interest>,
    deadline: Option<(Instant, Interest)>,
}

/// A waker, and the waiter whose wait wakes it.
struct Interest {
    waiter: Arc<Waiter>,
    waker: Waker,
}

impl Interest {
    fn is_of(&self, waiter: &Arc<Waiter>) -> bool {
        Arc::ptr_eq(&self.waiter, waiter)
    }
}

/// Sets `slot` to `waker` on `waiter`, reusing the slot's waker when it is the same.
fn set(slot: &mut Option<Interest>, waiter: &Arc<Waiter>, waker: &Waker) {
    match slot {
        Some(i) if i.is_of(waiter) => i.waker.clone_from(waker),
        _ => {
            *slot = Some(Interest {
                waiter: Arc::clone(waiter),
                waker: waker.clone(),
            })
        }
    }
}

impl Source {
    /// A source for `socket` (non-blocking).
    pub(crate) fn socket(socket: Arc<TcpStream>) -> Arc<Source> {
        Arc::new(Source {
            socket: Some(socket),
            interests: Mutex::default(),
        })
    }

    /// A source for a timer.
    pub(crate) fn timer() -> Arc<Source> {
        Arc::new(Source {
            socket: None,
            interests: Mutex::default(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Interests> {
        self.interests.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Has `waker` woken when the socket is ready in `dir` (or failed), by the wait of the
    /// calling thread. False when `waker` is not that wait's own (the thread is not in
    /// zk-blocking's `block_on`, or runs another executor inside it), or the thread has no
    /// wake-up channel: the caller must wait some other way.
    pub(crate) fn register(self: &Arc<Self>, dir: Dir, waker: &Waker) -> bool {
        self.register_with(waker, |interests, waiter| {
            let slot = match dir {
                Dir::Read => &mut interests.read,
                Dir::Write => &mut interests.write,
            };
            set(slot, waiter, waker);
        })
    }

    /// Has `waker` woken at `deadline` by the wait of the calling thread; false as for
    /// [`register`](Self::register).
    pub(crate) fn register_deadline(self: &Arc<Self>, deadline: Instant, waker: &Waker) -> bool {
        self.register_with(waker, |interests, waiter| {
            let mut interest = interests.deadline.take().map(|(_, i)| i);
            set(&mut interest, waiter, waker);
            interests.deadline = interest.map(|i| (deadline, i));
        })
    }

    /// Lets `edit` set an interest of the calling thread's waiter for `waker` and lists the
    /// source with that waiter; false (nothing edited) as for [`register`](Self::register).
    fn register_with(
        self: &Arc<Self>,
        waker: &Waker,
        edit: impl FnOnce(&mut Interests, &Arc<Waiter>),
    ) -> bool {
        let Some(waiter) = current_waiter(waker) else {
            return false;
        };
        edit(&mut self.lock(), &waiter);
        waiter.sources.list(self);
        true
    }

    /// Moves a registered deadline. A waiter on another thread is told when it comes earlier (it
    /// may be asleep until the old one); the calling thread's own sees it at its next wait.
    pub(crate) fn move_deadline(&self, deadline: Instant) {
        let tell = {
            let mut g = self.lock();
            match &mut g.deadline {
                Some((at, i)) => {
                    let earlier = deadline < *at;
                    *at = deadline;
                    (earlier && !is_current(&i.waiter)).then(|| Arc::clone(&i.waiter))
                }
                None => None,
            }
        };
        if let Some(waiter) = tell {
            waiter.notify();
        }
    }

    /// No interest registered, in any direction.
    #[cfg(test)]
    pub(crate) fn is_idle(&self) -> bool {
        let g = self.lock();
        g.read.is_none() && g.write.is_none() && g.deadline.is_none()
    }

    /// Forgets the deadline's interest (the timer fired, or was seen past its deadline).
    pub(crate) fn clear_deadline(&self) {
        self.lock().deadline = None;
    }
}

/// The sources registered with one waiter (weakly: a dropped timer or socket leaves on its own).
#[derive(Default)]
pub(crate) struct Sources(Mutex<Vec<Weak<Source>>>);

impl Sources {
    fn lock(&self) -> MutexGuard<'_, Vec<Weak<Source>>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds `source` unless listed.
    fn list(&self, source: &Arc<Source>) {
        let mut g = self.lock();
        if !g
            .iter()
            .any(|w| std::ptr::eq(w.as_ptr(), Arc::as_ptr(source)))
        {
            g.push(Arc::downgrade(source));
        }
    }

    /// What `waiter`'s next wait must watch: the sockets it has interests in and the nearest of
    /// its deadlines. Sources with no interest of this waiter's leave the list (a new interest
    /// lists them again).
    pub(crate) fn arm(&self, waiter: &Arc<Waiter>) -> Armed {
        let mut armed = Armed::default();
        let mut g = self.lock();
        if g.is_empty() {
            return armed;
        }
        g.retain(|w| {
            let Some(source) = w.upgrade() else {
                return false;
            };
            let i = source.lock();
            let mut flags = PollFlags::empty();
            if i.read.as_ref().is_some_and(|i| i.is_of(waiter)) {
                flags |= PollFlags::IN;
            }
            if i.write.as_ref().is_some_and(|i| i.is_of(waiter)) {
                flags |= PollFlags::OUT;
            }
            let deadline = i
                .deadline
                .as_ref()
                .filter(|(_, i)| i.is_of(waiter))
                .map(|(at, _)| *at);
            drop(i);
            if let Some(at) = deadline {
                armed.deadline = Some(armed.deadline.map_or(at, |d| d.min(at)));
                armed.timers.push(Arc::clone(&source));
            }
            let socket = !flags.is_empty() && source.socket.is_some();
            if socket {
                armed.sockets.push((source, flags));
            }
            socket || deadline.is_some()
        });
        armed
    }
}

/// One wait's share of a waiter's sources (see [`Sources::arm`]).
#[derive(Default)]
pub(crate) struct Armed {
    sockets: Vec<(Arc<Source>, PollFlags)>,
    timers: Vec<Arc<Source>>,
    deadline: Option<Instant>,
}

impl Armed {
    /// Whether there are sockets to poll (else only the clock is waited for).
    pub(crate) fn has_sockets(&self) -> bool {
        !self.sockets.is_empty()
    }

    /// The nearest deadline.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// The sockets to poll, with the readiness wanted, in the order [`wake`](Self::wake) takes
    /// their results.
    pub(crate) fn sockets(&self) -> impl Iterator<Item = (&TcpStream, PollFlags)> {
        self.sockets
            .iter()
            .filter_map(|(s, f)| s.socket.as_deref().map(|t| (t, *f)))
    }

    /// Wakes `waiter`'s interests that are due: those of the sockets whose `revents` (in the
    /// order of [`sockets`](Self::sockets)) say ready or failed, and the deadlines not after
    /// `now`.
    pub(crate) fn wake(
        &self,
        waiter: &Arc<Waiter>,
        revents: impl Iterator<Item = PollFlags>,
        now: Instant,
    ) {
        let failed = PollFlags::ERR | PollFlags::HUP | PollFlags::NVAL;
        let mut due = Vec::new();
        for ((source, _), got) in self.sockets.iter().zip(revents) {
            if got.is_empty() {
                continue;
            }
            let mut i = source.lock();
            if got.intersects(PollFlags::IN | PollFlags::PRI | failed) {
                take_if_of(&mut i.read, waiter, &mut due);
            }
            if got.intersects(PollFlags::OUT | failed) {
                take_if_of(&mut i.write, waiter, &mut due);
            }
        }
        for source in &self.timers {
            let mut i = source.lock();
            if i.deadline
                .as_ref()
                .is_some_and(|(at, i)| *at <= now && i.is_of(waiter))
            {
                if let Some((_, interest)) = i.deadline.take() {
                    due.push(interest.waker);
                }
            }
        }
        // Woken after every lock is let go: a waker may run anything.
        for waker in due {
            waker.wake();
        }
    }
}

fn take_if_of(slot: &mut Option<Interest>, waiter: &Arc<Waiter>, due: &mut Vec<Waker>) {
    if slot.as_ref().is_some_and(|i| i.is_of(waiter)) {
        if let Some(i) = slot.take() {
            due.push(i.waker);
        }
    }
}
