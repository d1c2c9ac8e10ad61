//! For runtimes whose waiting tasks run on other threads than the driver's (async-std and smol: a
//! caller waits in `block_on`, which also runs async-io's reactor, while the driver task runs on
//! the executor's threads): a task waiting for its one reply reads the session's socket itself
//! when the bytes come, instead of the driver's task being woken on another thread to read them
//! and then waking it. That hand-off is two cross-thread wake-ups per round trip.
//!
//! Every read of the connection, by the driver or by a task, registers one waker for the socket's
//! readiness: the [`TaskReads`] router's. The router wakes the task that holds the *reader's
//! place*, or the driver when none does. A task takes the place when it finds its reply missing
//! and nothing else of the session is in flight (the engine decides: with other replies coming,
//! a reading task completes other futures, often its own, and their wake-ups cost its `block_on`
//! an extra turn of async-io's reactor each, which measured dearer than the driver's hand-off),
//! and leaves it when its reply is there or its future is dropped; the driver reads from then
//! on. It also loses the place to the driver when another request's task, polled while more
//! than one reply is in flight, finds it holding (its future may have been set aside after one
//! poll: see [`TaskReads::take`]). Readiness is one-shot (nothing more comes until someone has
//! read to "would block"), so every readiness is marked `unread` until somebody reads: a task
//! may take the place after a readiness went to the driver and before the driver's turn (which
//! then does not read), and it must read in the driver's stead.
//!
//! A task is not known to be polled after it is woken: a future may be kept aside unpolled (a
//! `select!` branch set aside, a cache polled only when its user looks at it), or polled with a
//! no-op waker. Stop 21 of BENCHMARKS.md withdrew a first version for that reason: the session's
//! bytes then waited for nobody. So nobody may be without a reader for long, which the driver
//! sees to without being woken per round trip:
//! - While a task holds the place, the driver looks at it every `LOOK_EVERY`. A look that finds a
//!   readiness routed to the task, already unread at the last look, and nothing read or taken
//!   since, takes the place back and reads: bytes wait at most two to three looks for a task
//!   that is not polled.
//! - After `LONG_WAIT_TICKS` looks in a row with nothing read or taken (a server that does not
//!   answer, a program waiting on something else), the driver stops looking; a readiness that
//!   comes while it does not look wakes it as well as the task, and it looks again.
//! - A task that leaves with a readiness unread wakes the driver to read it.
//! - A new connection (or none) gives the place back to the driver (`reset`); a new socket counts
//!   as unread until someone has read it, since nobody is registered for its readiness yet.
//!
//! TLS keeps the driver reading: its reads may write, and it registers for writability.

use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Wake, Waker};
use std::time::Instant;

use zk_core::RequestId;

use crate::caller_reads::LONG_WAIT_TICKS;

/// How often the driver looks at the place while a task holds it: ten times zk-blocking's
/// `READER_TICK`, because here a look wakes the driver's thread and moves async-io's timer, which
/// wakes the reactor's thread too (measured: 1 ms looks cost more CPU than they saved). It bounds
/// how long bytes wait for a woken task that is not polled: two to three looks.
pub(crate) const LOOK_EVERY: std::time::Duration = std::time::Duration::from_millis(10);

/// Routes the socket's read readiness to the task holding the reader's place, or to the driver
/// (see the module documentation). One per client; its own small lock, because a readiness may
/// be signalled from inside a read made under the engine's lock.
#[derive(Debug, Default)]
pub(crate) struct TaskReads {
    state: Mutex<Route>,
}

#[derive(Debug, Default)]
struct Route {
    holder: Holder,
    /// The driver's task's waker, refreshed on its turns.
    driver: Option<Waker>,
    /// A readiness came (to a task or to the driver) and nobody has read since.
    unread: bool,
    /// Bumped at every read of the socket, and at every change of holder: the driver's looks
    /// compare it.
    activity: u64,
    /// The driver looks at the place every tick while a task holds it.
    looking: bool,
    /// The activity the driver saw at its last look, and how many looks in a row saw it.
    seen: Option<u64>,
    /// A readiness was unread at the driver's last look.
    unread_seen: bool,
    same_ticks: u32,
    /// When the driver's next look is due, while it looks.
    tick_at: Option<Instant>,
}

#[derive(Debug, Default)]
enum Holder {
    /// The driver reads.
    #[default]
    Driver,
    /// A task waiting for reply `RequestId` reads; its waker.
    Task(RequestId, Waker),
}

impl TaskReads {
    fn lock(&self) -> MutexGuard<'_, Route> {
        // Nothing in here panics midway through a change; a poisoned lock holds a whole state.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The task waiting for reply `id` takes the reader's place, if `may_take` (its reply is the
    /// session's only one in flight) or it holds it already (then its waker is refreshed).
    /// Returns true when a readiness is unread and this task must read it now (`start_read`,
    /// then read to "would block"): it holds the place, or it found the place held for another
    /// reply while more than one is in flight and gave it back to the driver.
    ///
    /// Why the second: a task holds the place only while its reply is the only one in flight,
    /// and its future may be set aside once polled (a stream polled when its user looks, such
    /// as a DataWatch's re-read). The next call then waits for a reply that nobody reads: the
    /// readiness goes to the holder, and the driver does not read while a task holds the place,
    /// so every such call waited two to three of the driver's looks (20-30 ms), measured by the
    /// chaos run's async-io workers at a quarter of the tokio workers' requests.
    pub(crate) fn take(&self, id: RequestId, waker: &Waker, may_take: bool) -> bool {
        let mut s = self.lock();
        match &mut s.holder {
            Holder::Task(held, w) if *held == id => {
                if !w.will_wake(waker) {
                    *w = waker.clone();
                }
                s.unread
            }
            _ if may_take => {
                s.holder = Holder::Task(id, waker.clone());
                s.activity += 1;
                let unread = s.unread;
                // Told outside the lock, like wake-ups: a subscriber runs code of its own.
                drop(s);
                crate::obs::task_reads(id);
                unread
            }
            Holder::Task(held, _) => {
                // The holder's reply is no longer the only one in flight: the driver reads from
                // now on (the holder's reply wakes it through its mailbox, like any other), and a
                // readiness already routed to the holder is read by this task now.
                let held = *held;
                s.give_to_driver();
                s.activity += 1;
                let unread = s.unread;
                drop(s);
                crate::obs::reads_handed_back(held);
                unread
            }
            Holder::Driver => false,
        }
    }

    /// The task waiting for `id` leaves (its reply came, or it stopped waiting): the driver reads
    /// again. Returns true when the driver must be woken for that: a readiness went to the task
    /// and nobody has read since.
    #[must_use]
    pub(crate) fn leave(&self, id: RequestId) -> bool {
        let mut s = self.lock();
        if !matches!(&s.holder, Holder::Task(held, _) if *held == id) {
            return false;
        }
        s.activity += 1;
        s.holder = Holder::Driver;
        // Not cleared: if another task takes the place before the driver's turn, it reads.
        s.unread
    }

    /// Someone is about to read the socket to "would block": a readiness unread is acted on by
    /// that read. Cleared before the read, so a readiness during it marks the place again.
    pub(crate) fn start_read(&self) {
        let mut s = self.lock();
        s.unread = false;
        s.activity += 1;
    }

    /// The driver's turn, with its task's waker: whether it reads the socket now. It takes the
    /// place back when a task has left a readiness unread from one look to the next;
    /// otherwise, while a task holds it, it looks every tick (module documentation).
    pub(crate) fn driver_turn(&self, now: Instant, driver: &Waker) -> bool {
        let mut s = self.lock();
        if !s.driver.as_ref().is_some_and(|w| w.will_wake(driver)) {
            s.driver = Some(driver.clone());
        }
        if !matches!(s.holder, Holder::Task(..)) {
            s.give_to_driver();
            return true;
        }
        if s.tick_at.is_some_and(|t| t > now) {
            return false;
        }
        let unchanged = s.seen == Some(s.activity);
        if s.looking && unchanged && s.unread && s.unread_seen {
            // Woken a look ago or more and not read since: that task is not being polled.
            s.give_to_driver();
            drop(s);
            crate::obs::reads_taken_back();
            return true;
        }
        if !s.looking && unchanged && !s.unread {
            // Stopped after a long quiet wait, and still quiet (the driver runs for its own
            // reasons too): the next readiness starts the looks again.
            return false;
        }
        s.same_ticks = if s.looking && unchanged {
            s.same_ticks + 1
        } else {
            0
        };
        s.seen = Some(s.activity);
        s.unread_seen = s.unread;
        if s.same_ticks >= LONG_WAIT_TICKS {
            // Nothing for all this while: stop looking; the next readiness wakes the driver too.
            s.looking = false;
            s.tick_at = None;
        } else {
            s.looking = true;
            s.tick_at = Some(now + LOOK_EVERY);
        }
        false
    }

    /// When the driver must look next, if it looks.
    pub(crate) fn tick_at(&self) -> Option<Instant> {
        self.lock().tick_at
    }

    /// The connection changed (or went): the driver reads the next one until a task waits.
    /// `fresh_socket`: a new socket nobody has read yet, so nobody is registered for its
    /// readiness either: it counts as unread, so that a task taking the place before the
    /// driver's first read does that read (which registers) instead of waiting for a readiness
    /// that would never be signalled.
    pub(crate) fn reset(&self, fresh_socket: bool) {
        let mut s = self.lock();
        s.give_to_driver();
        s.unread = fresh_socket;
    }
}

impl Route {
    fn give_to_driver(&mut self) {
        self.holder = Holder::Driver;
        self.looking = false;
        self.seen = None;
        self.unread_seen = false;
        self.same_ticks = 0;
        self.tick_at = None;
    }
}

impl Wake for TaskReads {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    /// The socket is readable: wake its reader.
    fn wake_by_ref(self: &Arc<Self>) {
        // Woken outside the lock: a waker that runs code of its own cannot come back here.
        let (task, driver) = {
            let mut s = self.lock();
            match &s.holder {
                Holder::Driver => {
                    // Unread until the driver reads: a task that takes the place before the
                    // driver's turn reads it instead (the driver will not, with a task holding).
                    s.unread = true;
                    (None, s.driver.clone())
                }
                Holder::Task(_, w) => {
                    let w = w.clone();
                    s.unread = true;
                    (Some(w), (!s.looking).then(|| s.driver.clone()).flatten())
                }
            }
        };
        if let Some(w) = task {
            w.wake();
        }
        if let Some(w) = driver {
            w.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A waker that counts its wake-ups.
    #[derive(Default)]
    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn counter() -> (Arc<Count>, Waker) {
        let c = Arc::new(Count::default());
        (c.clone(), Waker::from(c))
    }

    fn n(c: &Count) -> usize {
        c.0.load(Ordering::SeqCst)
    }

    fn router() -> Arc<TaskReads> {
        Arc::new(TaskReads::default())
    }

    #[test]
    fn without_a_task_the_driver_reads_and_readiness_wakes_it() {
        let r = router();
        let (driver, dw) = counter();
        assert!(r.driver_turn(Instant::now(), &dw));
        r.wake_by_ref();
        assert_eq!(n(&driver), 1);
    }

    #[test]
    fn a_waiting_task_is_woken_instead_of_the_looking_driver_and_reads() {
        let r = router();
        let (driver, dw) = counter();
        let (task, tw) = counter();
        let t0 = Instant::now();
        assert!(r.driver_turn(t0, &dw));
        assert!(!r.take(RequestId(1), &tw, true), "nothing to read yet");
        // The driver's first turn with a task holding the place: it starts looking, not reading.
        assert!(!r.driver_turn(t0, &dw), "two readers of one socket");
        assert_eq!(r.tick_at(), Some(t0 + LOOK_EVERY));
        r.wake_by_ref();
        assert_eq!((n(&task), n(&driver)), (1, 0));
        assert!(r.take(RequestId(1), &tw, true), "the woken task must read");
    }

    #[test]
    fn readiness_wakes_the_driver_too_when_it_is_not_looking() {
        let r = router();
        let (driver, dw) = counter();
        let (task, tw) = counter();
        r.driver_turn(Instant::now(), &dw);
        r.take(RequestId(1), &tw, true);
        r.wake_by_ref();
        assert_eq!((n(&task), n(&driver)), (1, 1));
    }

    #[test]
    fn a_task_that_does_not_read_a_readiness_for_a_look_loses_the_place() {
        let r = router();
        let (driver, dw) = counter();
        let (_task, tw) = counter();
        let t0 = Instant::now();
        r.driver_turn(t0, &dw);
        r.take(RequestId(1), &tw, true);
        assert!(!r.driver_turn(t0, &dw));
        r.wake_by_ref(); // routed to the task, which is never polled
        assert!(
            !r.driver_turn(t0 + LOOK_EVERY, &dw),
            "a readiness that may have come just before the look is the task's to read"
        );
        assert!(
            r.driver_turn(t0 + LOOK_EVERY * 2, &dw),
            "a readiness left unread from one look to the next must be read by the driver"
        );
        // The driver has the place again: the next readiness is its.
        r.wake_by_ref();
        assert_eq!(n(&driver), 1);
    }

    #[test]
    fn a_task_that_reads_keeps_the_place_across_looks() {
        let r = router();
        let (_driver, dw) = counter();
        let (_task, tw) = counter();
        let t0 = Instant::now();
        r.driver_turn(t0, &dw);
        r.take(RequestId(1), &tw, true);
        r.driver_turn(t0, &dw);
        r.wake_by_ref();
        assert!(r.take(RequestId(1), &tw, true));
        r.start_read();
        r.wake_by_ref(); // the next batch, not read yet when the driver looks
        assert!(
            !r.driver_turn(t0 + LOOK_EVERY, &dw),
            "the task read since the last look"
        );
    }

    #[test]
    fn a_task_taking_the_place_after_a_readiness_went_to_the_driver_reads_it() {
        let r = router();
        let (driver, dw) = counter();
        let (_task, tw) = counter();
        let t0 = Instant::now();
        assert!(r.driver_turn(t0, &dw));
        r.start_read();
        r.wake_by_ref(); // to the driver, which has not run yet
        assert_eq!(n(&driver), 1);
        assert!(
            r.take(RequestId(1), &tw, true),
            "the driver will not read with a task holding the place: the task must"
        );
        r.start_read();
        assert!(!r.driver_turn(t0, &dw));
        assert!(
            !r.leave(RequestId(1)),
            "read: nothing to wake the driver for"
        );
    }

    #[test]
    fn a_task_that_leaves_gives_the_place_back_to_the_driver() {
        let r = router();
        let (driver, dw) = counter();
        let (task, tw) = counter();
        let t0 = Instant::now();
        r.driver_turn(t0, &dw);
        r.take(RequestId(1), &tw, true);
        r.driver_turn(t0, &dw);
        assert!(!r.leave(RequestId(1)), "nothing unread: no wake-up");
        r.wake_by_ref(); // bytes after the call: the driver's
        assert_eq!((n(&task), n(&driver)), (0, 1));
        assert!(r.driver_turn(t0, &dw));
    }

    #[test]
    fn a_task_takes_the_place_only_when_allowed_but_keeps_the_one_it_holds() {
        let r = router();
        let (driver, dw) = counter();
        let (task, tw) = counter();
        let t0 = Instant::now();
        r.driver_turn(t0, &dw);
        assert!(!r.take(RequestId(1), &tw, false));
        r.wake_by_ref();
        assert_eq!(
            (n(&task), n(&driver)),
            (0, 1),
            "a task not allowed took the place"
        );
        r.take(RequestId(2), &tw, true);
        r.driver_turn(t0, &dw);
        r.wake_by_ref();
        assert!(
            r.take(RequestId(2), &tw, false),
            "the holder must still read its readiness"
        );
    }

    #[test]
    fn a_holder_set_aside_loses_the_place_when_another_reply_is_awaited() {
        let r = router();
        let (driver, dw) = counter();
        let (_task, tw) = counter();
        let t0 = Instant::now();
        r.driver_turn(t0, &dw);
        assert!(!r.take(RequestId(1), &tw, true)); // 1 holds the place, then is set aside
        assert!(!r.driver_turn(t0, &dw));
        r.wake_by_ref(); // routed to 1, whose future is not polled
        assert!(
            r.take(RequestId(2), &tw, false),
            "the readiness routed to a holder set aside must be read by the task polled now"
        );
        r.start_read();
        assert!(r.driver_turn(t0, &dw), "the driver must read from now on");
        r.wake_by_ref();
        assert_eq!(n(&driver), 1, "the next readiness is the driver's");
        assert!(!r.leave(RequestId(1)), "1 holds nothing any more");
        assert!(r.driver_turn(t0, &dw));
        // The driver reads it.
        r.start_read();
        // With nothing unread the place goes back all the same; nothing to read now.
        assert!(!r.take(RequestId(3), &tw, true));
        assert!(!r.take(RequestId(4), &tw, false));
        assert!(r.driver_turn(t0, &dw));
    }

    #[test]
    fn a_task_leaving_a_readiness_unread_while_the_driver_does_not_look_wakes_it() {
        let r = router();
        let (_driver, dw) = counter();
        let (_task, tw) = counter();
        r.driver_turn(Instant::now(), &dw);
        r.take(RequestId(1), &tw, true);
        r.wake_by_ref();
        assert!(r.leave(RequestId(1)));
        assert!(!r.leave(RequestId(1)), "only the holder leaves");
    }

    #[test]
    fn the_looks_stop_after_a_long_quiet_wait_and_start_again_at_the_next_readiness() {
        let r = router();
        let (driver, dw) = counter();
        let (_task, tw) = counter();
        let t0 = Instant::now();
        r.driver_turn(t0, &dw);
        r.take(RequestId(1), &tw, true);
        assert!(!r.driver_turn(t0, &dw));
        for i in 1..LONG_WAIT_TICKS {
            assert!(!r.driver_turn(t0 + LOOK_EVERY * i, &dw));
            assert!(r.tick_at().is_some(), "stopped looking after {i} looks");
        }
        assert!(!r.driver_turn(t0 + LOOK_EVERY * LONG_WAIT_TICKS, &dw));
        assert_eq!(r.tick_at(), None, "still looking after a long quiet wait");
        // The driver runs for its own reasons (a ping): still quiet, so it does not look again.
        assert!(!r.driver_turn(t0 + LOOK_EVERY * (LONG_WAIT_TICKS + 1), &dw));
        assert_eq!(r.tick_at(), None, "a quiet turn started the looks again");
        r.wake_by_ref();
        assert_eq!(n(&driver), 1, "the driver is not woken to look again");
        assert!(!r.driver_turn(t0 + LOOK_EVERY * (LONG_WAIT_TICKS + 2), &dw));
        assert!(
            r.tick_at().is_some(),
            "a readiness did not start the looks again"
        );
    }

    #[test]
    fn a_task_taking_a_new_socket_before_the_driver_has_read_it_reads_it() {
        let r = router();
        let (_driver, dw) = counter();
        let (_task, tw) = counter();
        r.driver_turn(Instant::now(), &dw);
        r.reset(true); // nobody registered for this socket's readiness yet
        assert!(
            r.take(RequestId(1), &tw, true),
            "no readiness will ever come for a socket nobody has read: the task must read it"
        );
    }

    #[test]
    fn a_new_connection_goes_to_the_driver() {
        let r = router();
        let (driver, dw) = counter();
        let (_task, tw) = counter();
        r.driver_turn(Instant::now(), &dw);
        r.take(RequestId(1), &tw, true);
        r.reset(false);
        r.wake_by_ref();
        assert_eq!(n(&driver), 1);
        assert!(!r.leave(RequestId(1)));
    }
}
