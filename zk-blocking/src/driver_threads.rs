//! The threads the blocking runtime's tasks run on (`zk-driver`): a session's driver, and the
//! few other tasks a client spawns (the ensemble tracker, a recipe's background task). A task
//! has a thread to itself while it runs; when it ends the thread waits a second for the next
//! task before it exits, so a program that opens and closes sessions one after another (a
//! script, a call per item) usually does not create and tear down a thread for each (measured:
//! a seventh of zk-blocking's CPU per W6 session went to that).

use std::future::poll_fn;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use zk_client::BoxFuture;

use crate::runtime::sleep_until;

/// The process's driver threads.
pub(crate) static DRIVER_THREADS: DriverThreads = DriverThreads::new(Duration::from_secs(1));

/// Driver threads, and those among them waiting for a driver.
pub(crate) struct DriverThreads {
    /// How long a thread whose task ended waits for another before it exits.
    spare_for: Duration,
    /// The threads waiting for a driver. A driver is handed to one under this lock, and a
    /// thread stops waiting under it too, so no driver goes to a thread that has stopped.
    spares: Mutex<Spares>,
}

/// The slots the waiting threads wait on, one each (a slot is its thread's identity here).
type Spares = Vec<Arc<Mutex<Slot>>>;

/// Where a waiting thread finds its next driver.
#[derive(Default)]
struct Slot {
    driver: Option<BoxFuture<()>>,
    waker: Option<Waker>,
}

fn lock(slot: &Mutex<Slot>) -> MutexGuard<'_, Slot> {
    slot.lock().unwrap_or_else(|e| e.into_inner())
}

impl DriverThreads {
    /// No threads yet; each that runs out of tasks waits `spare_for` for another.
    pub(crate) const fn new(spare_for: Duration) -> Self {
        DriverThreads {
            spare_for,
            spares: Mutex::new(Vec::new()),
        }
    }

    fn spares(&self) -> MutexGuard<'_, Spares> {
        self.spares.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `driver` on a thread waiting for one, or on a new one.
    ///
    /// Errors as `std::thread::Builder::spawn` does: the system refused a thread.
    pub(crate) fn run(&'static self, driver: BoxFuture<()>) -> io::Result<()> {
        let mut g = self.spares();
        if let Some(slot) = g.pop() {
            // Filled while the spares' lock is held, so that `give_up` finds it; woken after
            // both locks are let go (waking may cost the reactor a system call).
            let waker = {
                let mut s = lock(&slot);
                s.driver = Some(driver);
                s.waker.take()
            };
            drop(g);
            if let Some(w) = waker {
                w.wake();
            }
            return Ok(());
        }
        drop(g);
        std::thread::Builder::new()
            .name("zk-driver".into())
            .spawn(move || self.serve(driver))
            .map(drop)
    }

    /// A driver thread's life: runs drivers until none comes for `spare_for`, in zk-blocking's
    /// `block_on` (`wait.rs`), whose wait watches the driver's socket and timer too (`poll(2)`;
    /// a futex wait with a timeout when only the clock is left, as between drivers).
    fn serve(&'static self, first: BoxFuture<()>) {
        crate::wait::block_on(async move {
            let mut driver = first;
            loop {
                driver.await;
                // What the ended task's futures left on this thread (the client a parking
                // caller would read for): zk-blocking's waits discard a stale offer anyway, but
                // it need not keep that client's memory alive for the next task.
                drop(zk_client::caller_reads::take_offer());
                let slot = Arc::new(Mutex::new(Slot::default()));
                self.spares().push(Arc::clone(&slot));
                let handed = poll_fn(|cx| {
                    let mut s = lock(&slot);
                    match s.driver.take() {
                        Some(d) => Poll::Ready(Some(d)),
                        None => {
                            s.waker = Some(cx.waker().clone());
                            Poll::Pending
                        }
                    }
                });
                let gave_up = async {
                    sleep_until(Instant::now() + self.spare_for).await;
                    None
                };
                driver = match futures_lite::future::or(handed, gave_up).await {
                    Some(next) => next,
                    None => match self.give_up(&slot) {
                        Some(next) => next,
                        None => return,
                    },
                };
            }
        })
    }

    /// The thread waiting on `slot` stops waiting: it leaves the list, and takes the driver
    /// handed to it before it could (then it runs that one), if any.
    fn give_up(&self, slot: &Arc<Mutex<Slot>>) -> Option<BoxFuture<()>> {
        let mut g = self.spares();
        g.retain(|s| !Arc::ptr_eq(s, slot));
        lock(slot).driver.take()
    }

    /// How many threads wait for a driver.
    #[cfg(test)]
    fn waiting(&self) -> usize {
        self.spares().len()
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::sync::mpsc::{channel, Receiver, Sender};
    use std::thread::ThreadId;
    use std::time::Instant;

    use super::*;

    const PATIENCE: Duration = Duration::from_secs(10);

    /// A driver that reports the thread it ran on.
    fn report_thread(to: &Sender<ThreadId>) -> BoxFuture<()> {
        let to = to.clone();
        Box::pin(async move {
            let _ = to.send(std::thread::current().id());
        })
    }

    fn ran_on(from: &Receiver<ThreadId>) -> ThreadId {
        from.recv_timeout(PATIENCE).expect("the driver never ran")
    }

    /// Waits (at most 10 s, else fails) until `threads` has `n` threads waiting.
    fn until_waiting(threads: &DriverThreads, n: usize) {
        let give_up = Instant::now() + PATIENCE;
        while threads.waiting() != n {
            assert!(Instant::now() < give_up, "never {n} waiting threads");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    fn leak(spare_for: Duration) -> &'static DriverThreads {
        Box::leak(Box::new(DriverThreads::new(spare_for)))
    }

    /// Sends on its channel when dropped: held in a thread-local, it says the thread exited.
    struct OnExit(Sender<()>);

    impl Drop for OnExit {
        fn drop(&mut self) {
            let _ = self.0.send(());
        }
    }

    thread_local! {
        static ON_EXIT: RefCell<Option<OnExit>> = const { RefCell::new(None) };
    }

    #[test]
    fn the_next_driver_runs_on_the_thread_whose_driver_ended() {
        let threads = leak(Duration::from_secs(600));
        let (to, from) = channel();
        threads.run(report_thread(&to)).expect("thread");
        let first = ran_on(&from);
        until_waiting(threads, 1);
        threads.run(report_thread(&to)).expect("thread");
        assert_eq!(ran_on(&from), first);
    }

    #[test]
    fn a_thread_exits_after_spare_for_and_the_next_driver_gets_a_new_one() {
        let threads = leak(Duration::from_millis(20));
        let (exited_to, exited) = channel();
        let (to, from) = channel();
        let report = report_thread(&to);
        threads
            .run(Box::pin(async move {
                ON_EXIT.with(|e| *e.borrow_mut() = Some(OnExit(exited_to)));
                report.await;
            }))
            .expect("thread");
        let first = ran_on(&from);
        exited
            .recv_timeout(PATIENCE)
            .expect("the thread never exited");
        assert_eq!(threads.waiting(), 0);
        threads.run(report_thread(&to)).expect("thread");
        assert_ne!(ran_on(&from), first);
    }

    #[test]
    fn a_thread_that_stops_waiting_takes_the_driver_handed_to_it_first() {
        // The race of a hand-over and the end of a wait, played in order: the driver is sent
        // to a waiting thread, which then gives up before it looked at its slot.
        let threads = leak(Duration::from_secs(600));
        let slot = Arc::new(Mutex::new(Slot::default()));
        threads.spares().push(Arc::clone(&slot));
        let (ran_to, ran) = channel();
        threads.run(report_thread(&ran_to)).expect("handed over");
        assert!(threads.spares().is_empty());
        let driver = threads.give_up(&slot).expect("the handed-over driver");
        futures_lite::future::block_on(driver);
        ran.recv_timeout(PATIENCE).expect("it ran");
    }

    #[test]
    fn drivers_handed_over_while_threads_stop_waiting_all_run() {
        // Threads give up as drivers arrive: every driver runs, on a waiting thread or a new one.
        let threads = leak(Duration::from_micros(50));
        let (to, from) = channel();
        for i in 0..2000 {
            threads.run(report_thread(&to)).expect("thread");
            from.recv_timeout(PATIENCE)
                .unwrap_or_else(|_| panic!("driver {i} never ran"));
            if i % 3 == 0 {
                std::thread::sleep(Duration::from_micros(40));
            }
        }
    }
}
