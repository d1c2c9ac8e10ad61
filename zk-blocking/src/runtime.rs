//! The runtime under the blocking client: the driver on a thread of its own (`zk-driver`, see
//! `driver_threads`) running zk-blocking's `block_on` (`wait.rs`), a TCP stream and a timer that
//! the thread polling them waits for in that `block_on`'s `poll(2)` (`local_io`, on Linux and
//! Android; on async-io when polled under another executor, and on other systems), and callers
//! waiting on their own thread until woken.

use std::future::Future;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use zk_client::{BoxFuture, Runtime, Timer, Transport};

use crate::driver_threads::DRIVER_THREADS;

/// The blocking client's runtime, for zk-client's async API too: each session's driver runs on
/// a thread of its own (`zk-driver`); its sockets and timers are waited for by the thread that
/// polls them when that thread runs zk-blocking's own wait (the driver's, a blocking call's),
/// and on async-io's reactor otherwise, so its futures can be awaited with any executor or with
/// a plain `block_on`. A `zk-driver` thread whose task
/// ended waits up to a second for the next task the runtime spawns (another session's driver,
/// a tracker or recipe task) before it exits.
#[derive(Debug, Clone, Copy, Default)]
pub struct ThreadRuntime;

impl ThreadRuntime {
    /// The runtime as zk-client holds it.
    pub fn shared(self) -> std::sync::Arc<dyn Runtime> {
        std::sync::Arc::new(self)
    }
}

impl Runtime for ThreadRuntime {
    fn connect(&self, host: String, port: u16) -> BoxFuture<io::Result<Box<dyn Transport>>> {
        Box::pin(async move {
            #[cfg(any(target_os = "linux", target_os = "android"))]
            let tcp = crate::local_io::connect(host, port).await;
            #[cfg(not(any(target_os = "linux", target_os = "android")))]
            let tcp = zk_async_std::connect_tcp(host, port).await;
            tcp.map(|t| Box::new(t) as Box<dyn Transport>)
        })
    }

    fn timer(&self, deadline: Instant) -> Box<dyn Timer> {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        return Box::new(crate::local_io::LocalTimer::at(deadline));
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        return Box::new(zk_async_std::AsyncIoTimer::at(deadline));
    }

    /// On a `zk-driver` thread of the task's own, which may have run a task that ended
    /// (`driver_threads`).
    fn spawn(&self, task: BoxFuture<()>) -> io::Result<()> {
        DRIVER_THREADS.run(task)
    }

    fn now(&self) -> Instant {
        Instant::now()
    }

    /// zk-blocking's callers wait parked (its `block_on`): a pending reply means a caller about
    /// to sleep. (Under another executor a pending poll may not; that costs only a write per
    /// request, as on the async runtimes, never a request left unsent.)
    fn callers_park(&self) -> bool {
        true
    }

    /// A second: shorter than the close timeout (2 s) and, with the default session timeout,
    /// than the first ping and the connect timeout, so a session opened and closed within it
    /// arms its timer once instead of three times. Where the timer is on async-io (every system
    /// but Linux and Android) each move wakes its reactor (BENCHMARKS.md, stop 28); on Linux and
    /// Android the timer is the driver thread's own wait (its `poll(2)`, or a futex wait with a
    /// timeout when it has no socket to watch), and moving it earlier means waking that thread:
    /// a caller's `close()` inside the window (with a close timeout longer than what is left of
    /// it, as the default's) writes its closeSession and leaves the driver asleep until the
    /// answer comes (BENCHMARKS.md, stop 37).
    fn timer_start_window(&self) -> Option<Duration> {
        Some(Duration::from_secs(1))
    }
}

/// Runs `fut` to completion on the calling thread: between polls it waits on the socket of the
/// client its future waits for and reads it itself, or parks (`wait.rs`).
///
/// Not `async_io::block_on`: a caller that waits in async-io's reactor competes with the session's
/// `zk-driver` thread for it, and async-io wakes its fallback thread at the end of every
/// `block_on`, so each reply cost extra thread hand-offs (BENCHMARKS.md). The timers and sockets
/// the future waits for are waited for in the same `poll(2)` (`reactor.rs`).
pub(crate) fn block_on<F: Future>(fut: F) -> F::Output {
    crate::wait::block_on(fut)
}

/// Polls `fut` on the calling thread for at most `timeout`; `None` if it did not finish. The
/// future is left as it was, so it can be waited on again.
pub(crate) fn block_on_timeout<F: Future + Unpin>(
    fut: &mut F,
    timeout: Duration,
) -> Option<F::Output> {
    let rt = ThreadRuntime;
    // A timeout past the clock's range is no timeout.
    let Some(deadline) = rt.now().checked_add(timeout) else {
        return Some(block_on(fut));
    };
    block_on(futures_lite::future::or(async { Some(fut.await) }, async {
        sleep_until(deadline).await;
        None
    }))
}

/// Sleeps until `deadline` on the runtime's timer.
pub(crate) async fn sleep_until(deadline: Instant) {
    let mut timer = ThreadRuntime.timer(deadline);
    std::future::poll_fn(|cx| timer.poll_fire(cx)).await
}

/// Tells a callback thread to stop, or to look at its stream again (after `restart()`).
#[derive(Debug, Default)]
pub(crate) struct Signal {
    state: Mutex<SignalState>,
}

#[derive(Debug, Default)]
struct SignalState {
    stopped: bool,
    kicks: u64,
    waker: Option<Waker>,
}

/// What a [`Signal`] said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wake {
    Stop,
    /// Kicked; the number of kicks so far.
    Kick(u64),
}

impl Signal {
    fn lock(&self) -> MutexGuard<'_, SignalState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn stop(&self) {
        let mut g = self.lock();
        g.stopped = true;
        if let Some(w) = g.waker.take() {
            w.wake();
        }
    }

    pub(crate) fn kick(&self) {
        let mut g = self.lock();
        g.kicks += 1;
        if let Some(w) = g.waker.take() {
            w.wake();
        }
    }

    pub(crate) fn is_stopped(&self) -> bool {
        self.lock().stopped
    }

    /// Resolves on a stop, or on a kick beyond the `seen`-th.
    pub(crate) async fn wait(&self, seen: u64) -> Wake {
        std::future::poll_fn(|cx| {
            let mut g = self.lock();
            if g.stopped {
                Poll::Ready(Wake::Stop)
            } else if g.kicks > seen {
                Poll::Ready(Wake::Kick(g.kicks))
            } else {
                g.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        })
        .await
    }
}

/// The listeners of one client (shared by its clones): told to look again after `restart()`, and
/// stopped when the last clone goes, so no listener thread outlives every handle to its client.
#[derive(Debug, Default)]
pub(crate) struct Listeners {
    signals: Mutex<Registry>,
}

/// The last id given, and each listener's id and signal.
#[derive(Debug, Default)]
struct Registry(u64, Vec<(u64, Weak<Signal>)>);

impl Listeners {
    fn live(&self) -> Vec<(u64, Arc<Signal>)> {
        let mut g = self.signals.lock().unwrap_or_else(|e| e.into_inner());
        g.1.retain(|(_, w)| w.upgrade().is_some_and(|s| !s.is_stopped()));
        g.1.iter()
            .filter_map(|(id, w)| w.upgrade().map(|s| (*id, s)))
            .collect()
    }

    /// Registers a listener's signal; returns its id.
    pub(crate) fn add(&self, signal: &Arc<Signal>) -> u64 {
        let mut g = self.signals.lock().unwrap_or_else(|e| e.into_inner());
        g.1.retain(|(_, w)| w.strong_count() > 0);
        g.0 += 1;
        let id = g.0;
        g.1.push((id, Arc::downgrade(signal)));
        id
    }

    /// The ids of the listeners still registered.
    pub(crate) fn ids(&self) -> Vec<u64> {
        self.live().into_iter().map(|(id, _)| id).collect()
    }

    pub(crate) fn kick_all(&self) {
        for (_, s) in self.live() {
            s.kick();
        }
    }
}

impl Drop for Listeners {
    fn drop(&mut self) {
        for (_, s) in self.live() {
            s.stop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timeout_past_the_clock_s_range_is_no_timeout() {
        let mut ready = std::future::ready(7);
        assert_eq!(block_on_timeout(&mut ready, Duration::MAX), Some(7));
    }
}
