//! The driver: one task per client that reads from the socket into the session machine, arms the
//! timer the session asks for, dials the hosts it names and runs its four-letter-word probes. It
//! is written once, as a plain `Future`, over the [`Runtime`] trait.
//!
//! Writing is shared: the socket lives in the shared state, and a caller that submits a request
//! writes it out itself when the socket takes it at once (see `Inner::write_out`). The driver is
//! woken only for what a caller cannot finish: a socket that would block, a new earlier deadline,
//! a host to dial. That saves a task switch per request, and on multi-threaded runtimes a thread
//! hand-off.
//!
//! Each poll runs to a fixed point: it feeds every input that is ready, drains every output the
//! session produced, and stops only when nothing moved, so no wake-up is ever lost between the
//! session and the sockets. Following quinn, it trusts the clock rather than the timer: a timer
//! that fires early or late only causes a check of `now` against the session's deadline.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tracing::debug;
use zk_core::session::{ConnId, ProbeId};

use crate::four_letter::four_letter_word_on;
use crate::runtime::{Runtime, Timer};
use crate::shared::{Inner, Shared, WriteState};

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// Largest four-letter-word answer a probe reads.
const PROBE_MAX_BYTES: usize = 64 * 1024;

pub(crate) struct Driver<R: Runtime> {
    shared: Arc<Shared>,
    rt: R,
    connecting: Option<(ConnId, BoxFuture<io::Result<R::Tcp>>)>,
    timer: R::Timer,
    read_buf: Vec<u8>,
    probes: Vec<(ProbeId, BoxFuture<Result<String, ()>>)>,
    /// The driver closed the session because every handle was dropped.
    closing: bool,
    generation: u64,
}

impl<R: Runtime> Driver<R> {
    pub(crate) fn new(shared: Arc<Shared>, rt: R) -> Self {
        let now = rt.now();
        let generation = shared.lock().generation;
        Driver {
            generation,
            timer: rt.timer(now),
            shared,
            rt,
            connecting: None,
            read_buf: vec![0; 64 * 1024],
            probes: Vec::new(),
            closing: false,
        }
    }

    /// Polls everything once; returns whether anything happened.
    fn step(&mut self, cx: &mut Context<'_>) -> bool {
        let mut progress = false;
        let now = self.rt.now();

        if let Some((id, fut)) = &mut self.connecting {
            if let Poll::Ready(res) = fut.as_mut().poll(cx) {
                let id = *id;
                self.connecting = None;
                progress = true;
                let mut g = self.shared.lock();
                match res {
                    Ok(tcp) => {
                        debug!(conn = id.0, "connected");
                        g.set_io(Some((id, Box::new(tcp))));
                        g.session.handle_connected(now, id);
                    }
                    Err(e) => {
                        debug!(conn = id.0, error = %e, "connect failed");
                        g.session.handle_closed(now, id);
                    }
                }
            }
        }

        let shared = self.shared.clone();
        let mut g = shared.lock();
        g.driver_thread = Some(std::thread::current().id());

        // Read everything that is ready.
        while let Some((id, tcp)) = &mut g.io {
            let id = *id;
            match tcp.poll_read(cx, &mut self.read_buf) {
                Poll::Pending => break,
                Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => {
                    debug!(conn = id.0, "connection closed by peer");
                    g.set_io(None);
                    g.session.handle_closed(now, id);
                    progress = true;
                }
                Poll::Ready(Ok(n)) => {
                    g.session.handle_bytes(now, id, &self.read_buf[..n]);
                    g.dispatch_events(now);
                    progress = true;
                }
            }
        }

        for i in (0..self.probes.len()).rev() {
            if let Poll::Ready(res) = self.probes[i].1.as_mut().poll(cx) {
                let (id, _) = self.probes.swap_remove(i);
                g.session
                    .handle_probe_result(now, id, res.as_deref().map_err(|_| ()));
                progress = true;
            }
        }

        // Timers, then every output of the session.
        if g.session.poll_timeout().is_some_and(|t| t <= now) {
            g.session.handle_timeout(now);
            progress = true;
        }
        if g.handles == 0 && !self.closing {
            // Every Client handle is gone: end the session as kazoo's stop() would.
            self.closing = true;
            g.session.close(now);
            progress = true;
        }
        progress |= self.drain_transport_requests(&mut g);
        match g.write_out(cx) {
            WriteState::Done | WriteState::Blocked => {}
            // The read side reports the broken connection.
            WriteState::Failed => progress = true,
        }
        g.dispatch_events(now);
        if !g
            .driver_waker
            .as_ref()
            .is_some_and(|w| w.will_wake(cx.waker()))
        {
            g.driver_waker = Some(cx.waker().clone());
        }
        progress
    }

    /// Dials, closes and probes as the session asks; true if it asked anything.
    fn drain_transport_requests(&mut self, g: &mut Inner) -> bool {
        let mut progress = false;
        while let Some(c) = g.session.poll_connect() {
            progress = true;
            let fut = self.rt.connect(c.addr.host.clone(), c.addr.port);
            self.connecting = Some((c.conn, Box::pin(fut)));
        }
        while let Some(conn) = g.session.poll_close() {
            progress = true;
            if g.io.as_ref().is_some_and(|(id, _)| *id == conn) {
                debug!(conn = conn.0, "closing connection");
                g.set_io(None);
            }
            if self.connecting.as_ref().is_some_and(|(id, _)| *id == conn) {
                self.connecting = None;
            }
        }
        while let Some(p) = g.session.poll_probe() {
            progress = true;
            // Ask the very server we are connected to when the session says so.
            let target = p
                .conn
                .and_then(|c| g.io.as_ref().filter(|(id, _)| *id == c))
                .and_then(|(_, tcp)| tcp.peer_addr());
            let (host, port) = match target {
                Some(addr) => (addr.ip().to_string(), addr.port()),
                None => (p.addr.host.clone(), p.addr.port),
            };
            let rt = self.rt.clone();
            let command = p.command;
            let fut = async move {
                four_letter_word_on(&rt, host, port, command, PROBE_MAX_BYTES)
                    .await
                    .map_err(|_| ())
            };
            self.probes.push((p.id, Box::pin(fut)));
        }
        progress
    }

    /// Re-arms the timer for the session's next deadline; true if it already fired.
    fn arm_timer(&mut self, cx: &mut Context<'_>) -> bool {
        let mut g = self.shared.lock();
        let Some(deadline) = g.session.poll_timeout() else {
            g.timer_at = None;
            return false;
        };
        // Move the timer only when the deadline comes earlier (or the timer is idle): a later
        // deadline is handled by letting the timer fire early and re-checking the clock.
        if g.timer_at.is_none_or(|t| deadline < t) {
            self.timer.reset(deadline);
            g.timer_at = Some(deadline);
        }
        drop(g);
        if self.timer.poll_fire(cx).is_ready() {
            self.shared.lock().timer_at = None;
            return true;
        }
        false
    }

    fn finished(&self) -> bool {
        let g = self.shared.lock();
        matches!(g.session.state(), zk_core::SessionState::Lost(_))
            && g.session.poll_timeout().is_none()
            && self.connecting.is_none()
    }
}

impl<R: Runtime> Drop for Driver<R> {
    /// A driver dropped before it finished (its executor shut down, say) must not leave callers
    /// waiting for replies that will never come.
    fn drop(&mut self) {
        let mut g = self.shared.lock();
        if g.generation == self.generation && !g.driver_done {
            g.shut_down();
        }
    }
}

// The driver never pins anything through itself: its futures are boxed and the runtime value is
// only ever used by reference.
impl<R: Runtime> Unpin for Driver<R> {}

impl<R: Runtime> Future for Driver<R> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        loop {
            if this.shared.lock().generation != this.generation {
                // restart() replaced the session; a newer driver runs it.
                return Poll::Ready(());
            }
            let moved = this.step(cx);
            if this.finished() {
                let mut g = this.shared.lock();
                if g.generation == this.generation {
                    g.dispatch_events(this.rt.now());
                    g.set_io(None);
                    g.shut_down();
                }
                return Poll::Ready(());
            }
            let fired = this.arm_timer(cx);
            if !moved && !fired {
                return Poll::Pending;
            }
        }
    }
}
