//! The driver: one task per session that reads from the socket into the session machine, arms the
//! timer the session asks for, dials the hosts it names and runs its four-letter-word probes. It
//! is written once, as a plain `Future`, over the [`Runtime`] trait, and touches the session only
//! through the [`Engine`]'s driver-side methods, each of which checks the driver's generation.
//!
//! Writing is shared: a caller that submits a request writes it out itself when the socket takes
//! it at once (see `Engine::submit`). The driver is woken only for what a caller cannot finish: a
//! socket that would block, a new earlier deadline, a host to dial. That saves a task switch per
//! request, and on multi-threaded runtimes a thread hand-off.
//!
//! Each poll runs to a fixed point: it feeds every input that is ready, lets the engine drain
//! every output the session produced, and stops only when nothing moved, so no wake-up is ever
//! lost between the session and the sockets. Following quinn, it trusts the clock rather than the
//! timer: a timer that fires early or late only causes a check of `now` against the session's
//! deadline.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use zk_core::session::{ConnId, ProbeId};

use crate::engine::{Action, Engine};
use crate::four_letter::four_letter_word_over;
use crate::read_buf::ReadBuf;
use crate::runtime::{BoxFuture, Timer, Transport};

/// Largest four-letter-word answer a probe reads.
const PROBE_MAX_BYTES: usize = 64 * 1024;

/// A connection attempt under way.
type Dialing = (ConnId, BoxFuture<io::Result<Box<dyn Transport>>>);

pub(crate) struct Driver {
    engine: Arc<Engine>,
    generation: u64,
    connecting: Option<Dialing>,
    /// Made on the first poll, which runs on the runtime: some runtimes (tokio) cannot make a
    /// timer on a thread outside them, and the client may be built on one.
    timer: Option<Box<dyn Timer>>,
    /// The timer fired since the last turn; the next turn tells the engine.
    timer_fired: bool,
    read_buf: ReadBuf,
    probes: Vec<(ProbeId, BoxFuture<Result<String, ()>>)>,
}

impl Driver {
    pub(crate) fn new(engine: Arc<Engine>, generation: u64) -> Self {
        Driver {
            engine,
            generation,
            connecting: None,
            timer: None,
            timer_fired: false,
            read_buf: ReadBuf::default(),
            probes: Vec::new(),
        }
    }

    /// Starts the driver of generation `generation` on the engine's runtime.
    ///
    /// Errors with the runtime's reason when the task cannot be spawned; the session is ended
    /// then, so nobody waits for it.
    pub(crate) fn spawn(engine: &Arc<Engine>, generation: u64) -> io::Result<()> {
        let driver = Driver::new(engine.clone(), generation);
        let result = engine.rt().spawn(Box::pin(driver));
        if let Err(e) = &result {
            engine.start_failed(e);
        }
        result
    }

    /// Polls everything once. Returns whether the driver must look again before it sleeps
    /// (`Some(true)`), may sleep (`Some(false)`), or ends (`None`: the session is over, or
    /// restart() replaced it).
    fn step(&mut self, cx: &mut Context<'_>) -> Option<bool> {
        let gen = self.generation;
        let mut progress = false;

        if let Some((id, fut)) = &mut self.connecting {
            if let Poll::Ready(res) = fut.as_mut().poll(cx) {
                let id = *id;
                self.connecting = None;
                progress = true;
                match res {
                    Ok(tcp) => self.engine.driver_connected(gen, id, tcp),
                    Err(e) => self.engine.driver_connect_failed(gen, id, &e),
                }
            }
        }

        for i in (0..self.probes.len()).rev() {
            if let Poll::Ready(res) = self.probes[i].1.as_mut().poll(cx) {
                let (id, _) = self.probes.swap_remove(i);
                self.engine
                    .driver_probe_result(gen, id, res.as_deref().map_err(|_| ()));
                progress = true;
            }
        }

        let fired = std::mem::take(&mut self.timer_fired);
        let turn = self.engine.driver_step(
            gen,
            cx,
            &mut self.read_buf,
            fired,
            self.connecting.is_some(),
        )?;
        if turn.finished {
            return None;
        }
        progress |= turn.progress;
        for action in turn.actions {
            match action {
                Action::Dial(c) => {
                    crate::obs::connecting(c.conn.0, &c.addr);
                    let fut = self.engine.dial(c.addr.host.clone(), c.addr.port, None);
                    self.connecting = Some((c.conn, fut));
                }
                Action::Probe(p) => {
                    // Ask the very server we are connected to when the session says so.
                    let (host, port) = match p.conn.and_then(|c| self.engine.peer_of(c)) {
                        Some(addr) => (addr.ip().to_string(), addr.port()),
                        None => (p.addr.host.clone(), p.addr.port),
                    };
                    // Through the engine's connector: a TLS-only port answers probes over TLS.
                    // The certificate names the host of the connect string, not its address.
                    let dial = self.engine.dial(host, port, Some(p.addr.host.clone()));
                    let command = p.command;
                    let fut = async move {
                        four_letter_word_over(dial, command, PROBE_MAX_BYTES)
                            .await
                            .map_err(|_| ())
                    };
                    self.probes.push((p.id, Box::pin(fut)));
                }
            }
        }

        // Arm the timer for the session's next deadline; if it already fired, the next turn
        // handles the timeout.
        if let Some(deadline) = turn.deadline {
            match &mut self.timer {
                Some(t) if turn.rearm => t.reset(deadline),
                Some(_) => {}
                None => self.timer = Some(self.engine.rt().timer(deadline)),
            }
            if self
                .timer
                .as_mut()
                .is_some_and(|t| t.poll_fire(cx).is_ready())
            {
                self.timer_fired = true;
                progress = true;
            }
        }
        Some(progress)
    }
}

impl Drop for Driver {
    /// A driver dropped before it finished (its executor shut down, say) must not leave callers
    /// waiting for replies that will never come.
    fn drop(&mut self) {
        self.engine.driver_dropped(self.generation);
    }
}

impl Future for Driver {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        loop {
            match this.step(cx) {
                Some(true) => {}
                Some(false) => return Poll::Pending,
                None => return Poll::Ready(()),
            }
        }
    }
}
