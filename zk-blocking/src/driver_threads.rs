//! The threads sessions' drivers run on (`zk-driver`). A driver has a thread to itself for its
//! session's life; when the session ends the thread waits a second for the next session's driver
//! before it exits, so a program that opens and closes sessions one after another (a script, a
//! call per item, `restart()`) does not create and tear down a thread for each (measured: a
//! seventh of zk-blocking's CPU per W6 session went to that).

use std::io;
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use zk_client::BoxFuture;

/// The process's driver threads.
pub(crate) static DRIVER_THREADS: DriverThreads = DriverThreads::new(Duration::from_secs(1));

/// Driver threads, and those among them waiting for a driver.
pub(crate) struct DriverThreads {
    /// How long a thread whose driver ended waits for another before it exits.
    spare_for: Duration,
    /// The threads waiting for a driver. A driver is handed to one under this lock, and a
    /// thread stops waiting under it too, so no driver is sent to a thread that has stopped.
    spares: Mutex<Spares>,
}

struct Spares {
    last_id: u64,
    /// Each waiting thread's id and the channel it waits on.
    waiting: Vec<(u64, SyncSender<BoxFuture<()>>)>,
}

impl DriverThreads {
    pub(crate) const fn new(spare_for: Duration) -> Self {
        DriverThreads {
            spare_for,
            spares: Mutex::new(Spares {
                last_id: 0,
                waiting: Vec::new(),
            }),
        }
    }

    fn spares(&self) -> MutexGuard<'_, Spares> {
        self.spares.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `driver` on a thread waiting for one (the one that waited least), or on a new one.
    ///
    /// Errors as `std::thread::Builder::spawn` does: the system refused a thread.
    pub(crate) fn run(&'static self, driver: BoxFuture<()>) -> io::Result<()> {
        let mut driver = driver;
        {
            let mut g = self.spares();
            while let Some((_, to)) = g.waiting.pop() {
                match to.try_send(driver) {
                    Ok(()) => return Ok(()),
                    // Neither happens to a thread still on the list (each waits on a channel of
                    // its own with room for one); the driver comes back either way.
                    Err(TrySendError::Full(d) | TrySendError::Disconnected(d)) => driver = d,
                }
            }
        }
        std::thread::Builder::new()
            .name("zk-driver".into())
            .spawn(move || self.serve(driver))
            .map(drop)
    }

    /// A driver thread's life: runs drivers until none comes for `spare_for`.
    fn serve(&'static self, first: BoxFuture<()>) {
        let mut driver = first;
        loop {
            async_io::block_on(driver);
            let (to, from) = sync_channel(1);
            let id = {
                let mut g = self.spares();
                g.last_id += 1;
                let id = g.last_id;
                g.waiting.push((id, to));
                id
            };
            driver = match from.recv_timeout(self.spare_for) {
                Ok(next) => next,
                Err(_) => {
                    let mut g = self.spares();
                    g.waiting.retain(|(i, _)| *i != id);
                    // A driver handed over before this thread took the lock is in the channel.
                    match from.try_recv() {
                        Ok(next) => next,
                        Err(_) => return,
                    }
                }
            };
        }
    }

    /// How many threads wait for a driver.
    #[cfg(test)]
    fn waiting(&self) -> usize {
        self.spares().waiting.len()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc::{channel, Sender};
    use std::thread::ThreadId;
    use std::time::Instant;

    use super::*;

    /// A driver that reports the thread it ran on.
    fn report_thread(to: &Sender<ThreadId>) -> BoxFuture<()> {
        let to = to.clone();
        Box::pin(async move {
            let _ = to.send(std::thread::current().id());
        })
    }

    /// Waits (at most 10 s, else fails) until `threads` has `n` threads waiting.
    fn until_waiting(threads: &DriverThreads, n: usize) {
        let give_up = Instant::now() + Duration::from_secs(10);
        while threads.waiting() != n {
            assert!(Instant::now() < give_up, "never {n} waiting threads");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    fn leak(spare_for: Duration) -> &'static DriverThreads {
        Box::leak(Box::new(DriverThreads::new(spare_for)))
    }

    #[test]
    fn the_next_driver_runs_on_the_thread_whose_driver_ended() {
        let threads = leak(Duration::from_secs(600));
        let (to, from) = channel();
        threads.run(report_thread(&to)).expect("thread");
        let first = from.recv().expect("first driver ran");
        until_waiting(threads, 1);
        threads.run(report_thread(&to)).expect("thread");
        assert_eq!(from.recv().expect("second driver ran"), first);
    }

    #[test]
    fn a_thread_stops_waiting_after_spare_for_and_the_next_driver_gets_a_new_one() {
        let threads = leak(Duration::from_millis(20));
        let (to, from) = channel();
        threads.run(report_thread(&to)).expect("thread");
        let first = from.recv().expect("first driver ran");
        until_waiting(threads, 1);
        until_waiting(threads, 0);
        threads.run(report_thread(&to)).expect("thread");
        assert_ne!(from.recv().expect("second driver ran"), first);
    }

    #[test]
    fn drivers_handed_over_while_threads_stop_waiting_all_run() {
        // Threads give up as drivers arrive: every driver runs, on a waiting thread or a new one.
        let threads = leak(Duration::from_micros(50));
        let (to, from) = channel();
        for i in 0..2000 {
            threads.run(report_thread(&to)).expect("thread");
            from.recv_timeout(Duration::from_secs(10))
                .unwrap_or_else(|_| panic!("driver {i} never ran"));
            if i % 3 == 0 {
                std::thread::sleep(Duration::from_micros(40));
            }
        }
    }
}
