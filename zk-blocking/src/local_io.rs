//! The blocking runtime's TCP stream and timer on Linux and Android: waited on by the thread that
//! polls them, in its `block_on`'s `poll(2)` (`reactor.rs`), and on async-io when polled with any
//! other waker (zk-client's async API under another executor).

use std::future::poll_fn;
use std::io::{self, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Instant;

use async_io::Async;
use zk_client::{Timer, Transport};

use crate::reactor::{Dir, Source};

/// A non-blocking TCP stream whose waits register with the polling thread's `block_on`.
pub(crate) struct LocalTcp {
    stream: Arc<TcpStream>,
    source: Arc<Source>,
    /// The same socket (a `dup`) on async-io, made the first time the stream is polled on a
    /// thread outside zk-blocking's `block_on`.
    fallback: Option<Async<TcpStream>>,
}

impl LocalTcp {
    fn new(stream: TcpStream) -> Self {
        let stream = Arc::new(stream);
        LocalTcp {
            source: Source::socket(Arc::clone(&stream)),
            stream,
            fallback: None,
        }
    }

    /// Pending until the socket may be ready in `dir`; ready at once on async-io only when it
    /// has seen readiness since its last wait (then the caller tries again).
    ///
    /// Errors when the socket cannot be put on async-io (no file descriptor for the `dup`).
    fn poll_ready(&mut self, dir: Dir, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Nobody to wake (a caller's own write, whose remainder the driver takes): nothing to
        // register, on this thread's wait or on async-io.
        if cx.waker().will_wake(zk_client::unwaited()) || self.source.register(dir, cx.waker()) {
            return Poll::Pending;
        }
        let fallback = match &mut self.fallback {
            Some(f) => f,
            None => self.fallback.insert(Async::new(self.stream.try_clone()?)?),
        };
        match dir {
            Dir::Read => fallback.poll_readable(cx),
            Dir::Write => fallback.poll_writable(cx),
        }
    }

    /// Ready when a connection started on the socket is made (`Ok`) or has failed (its error).
    fn poll_connected(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        use rustix::event::{PollFd, PollFlags, Timespec};
        loop {
            // Writable (or failed) once the connection is made or refused; SO_ERROR says which.
            let mut fds = [PollFd::new(&*self.stream, PollFlags::OUT)];
            let now = Timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            match rustix::event::poll(&mut fds, Some(&now)) {
                Err(rustix::io::Errno::INTR) => continue,
                r => r?,
            };
            if !fds[0].revents().is_empty() {
                return Poll::Ready(
                    rustix::net::sockopt::socket_error(&*self.stream)?.map_err(io::Error::from),
                );
            }
            ready!(self.poll_ready(Dir::Write, cx))?;
        }
    }

    /// Runs `io` on the socket until it does not block (or is not interrupted), waiting for
    /// readiness in `dir` between tries.
    fn poll_io(
        &mut self,
        dir: Dir,
        cx: &mut Context<'_>,
        mut io: impl FnMut(&TcpStream) -> io::Result<usize>,
    ) -> Poll<io::Result<usize>> {
        loop {
            match io(&self.stream) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    ready!(self.poll_ready(dir, cx))?
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                r => return Poll::Ready(r),
            }
        }
    }
}

impl Transport for LocalTcp {
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        self.poll_io(Dir::Read, cx, |mut s| s.read(buf))
    }

    fn poll_write(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.poll_io(Dir::Write, cx, |mut s| s.write(buf))
    }

    fn peer_addr(&self) -> Option<SocketAddr> {
        self.stream.peer_addr().ok()
    }

    /// A `dup` of the socket (it stays non-blocking: the flag belongs to the open socket).
    fn socket(&self) -> Option<TcpStream> {
        self.stream.try_clone().ok()
    }
}

/// Resolves `host` afresh and connects to `port`, trying every resolved address in turn, with
/// TCP_NODELAY set.
///
/// Errors with the resolver's error, with [`io::ErrorKind::NotFound`] if `host` resolves to no
/// address, or with the last address's connection error.
pub(crate) async fn connect(host: String, port: u16) -> io::Result<LocalTcp> {
    let addrs = async_net::resolve((host.as_str(), port)).await?;
    let mut last = io::Error::new(
        io::ErrorKind::NotFound,
        format!("{host}: resolves to no address"),
    );
    for addr in addrs {
        match connect_to(addr).await {
            Ok(tcp) => return Ok(tcp),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// Connects to `addr` without blocking the thread.
async fn connect_to(addr: SocketAddr) -> io::Result<LocalTcp> {
    let fd = nonblocking_socket(addr)?;
    let started = rustix::net::connect(&fd, &addr);
    let mut tcp = LocalTcp::new(TcpStream::from(fd));
    match started {
        Ok(()) => {}
        // EINTR: the connection goes on being made, as with EINPROGRESS.
        Err(rustix::io::Errno::INPROGRESS | rustix::io::Errno::INTR) => {
            poll_fn(|cx| tcp.poll_connected(cx)).await?
        }
        Err(e) => return Err(e.into()),
    }
    tcp.stream.set_nodelay(true)?;
    Ok(tcp)
}

/// A non-blocking, close-on-exec TCP socket for `addr`'s family.
fn nonblocking_socket(addr: SocketAddr) -> io::Result<std::os::fd::OwnedFd> {
    use rustix::net::{AddressFamily, SocketType};
    let family = match addr {
        SocketAddr::V4(_) => AddressFamily::INET,
        SocketAddr::V6(_) => AddressFamily::INET6,
    };
    rustix::net::socket_with(
        family,
        SocketType::STREAM,
        rustix::net::SocketFlags::NONBLOCK | rustix::net::SocketFlags::CLOEXEC,
        None,
    )
    .map_err(io::Error::from)
}

/// A re-armable timer, waited for by the polling thread's `block_on` (or on async-io elsewhere).
pub(crate) struct LocalTimer {
    deadline: Instant,
    source: Arc<Source>,
    /// An async-io timer, made the first time this one is polled outside zk-blocking's
    /// `block_on`.
    fallback: Option<async_io::Timer>,
}

impl LocalTimer {
    /// A timer that fires at `deadline`.
    pub(crate) fn at(deadline: Instant) -> Self {
        LocalTimer {
            deadline,
            source: Source::timer(),
            fallback: None,
        }
    }
}

impl Timer for LocalTimer {
    fn reset(&mut self, deadline: Instant) {
        self.deadline = deadline;
        self.source.move_deadline(deadline);
        if let Some(t) = &mut self.fallback {
            t.set_at(deadline);
        }
    }

    fn poll_fire(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        // The clock decides: a wake-up early or late only makes the poll look again.
        if Instant::now() >= self.deadline {
            self.source.clear_deadline();
            return Poll::Ready(());
        }
        if self.source.register_deadline(self.deadline, cx.waker()) {
            return Poll::Pending;
        }
        let deadline = self.deadline;
        let fallback = self
            .fallback
            .get_or_insert_with(|| async_io::Timer::at(deadline));
        if std::future::Future::poll(std::pin::Pin::new(fallback), cx).is_ready()
            || Instant::now() >= self.deadline
        {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;
    use std::net::TcpListener;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::mpsc::channel;
    use std::sync::Mutex;
    use std::time::Duration;

    use super::*;
    use crate::wait::block_on;

    const PATIENCE: Duration = Duration::from_secs(10);

    /// Runs `f` on a thread of its own; fails if it has not returned within `PATIENCE` (a wait
    /// that nothing wakes).
    fn within_patience<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        let (to, from) = channel();
        std::thread::spawn(move || {
            let _ = to.send(f());
        });
        from.recv_timeout(PATIENCE).expect("a wait was never woken")
    }

    fn sleep(timer: &mut LocalTimer) -> impl std::future::Future<Output = ()> + '_ {
        poll_fn(move |cx| timer.poll_fire(cx))
    }

    /// Runs `fut` in zk-blocking's `block_on` (`on_loop`) or under another executor.
    fn run<F: std::future::Future>(on_loop: bool, fut: F) -> F::Output {
        if on_loop {
            block_on(fut)
        } else {
            futures_lite::future::block_on(fut)
        }
    }

    /// A client connected (through `connect`, see `run`) to a listener on loopback, and the
    /// server's end.
    fn pair(on_loop: bool) -> (LocalTcp, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let tcp = run(on_loop, connect("127.0.0.1".into(), port)).expect("connect");
        let (server, _) = listener.accept().expect("accept");
        (tcp, server)
    }

    #[test]
    fn a_timer_fires_in_block_on_and_under_another_executor() {
        within_patience(|| {
            let mut timer = LocalTimer::at(Instant::now() + Duration::from_millis(20));
            block_on(sleep(&mut timer));
            // Registered with this thread's waiter, then waited for outside it: async-io.
            timer.reset(Instant::now() + Duration::from_millis(20));
            futures_lite::future::block_on(sleep(&mut timer));
            assert!(timer.fallback.is_some());
        });
    }

    #[test]
    fn a_deadline_moved_earlier_from_another_thread_wakes_the_waiting_thread() {
        within_patience(|| {
            let timer = Arc::new(Mutex::new(LocalTimer::at(
                Instant::now() + Duration::from_secs(3600),
            )));
            let (polled_to, polled) = channel();
            let waiting = {
                let timer = Arc::clone(&timer);
                std::thread::spawn(move || {
                    block_on(poll_fn(|cx| {
                        let fired = timer.lock().expect("timer").poll_fire(cx);
                        let _ = polled_to.send(());
                        fired
                    }))
                })
            };
            polled.recv().expect("first poll");
            timer.lock().expect("timer").reset(Instant::now());
            waiting.join().expect("the waiting thread");
        });
    }

    #[test]
    fn a_socket_wakes_its_reader_in_block_on_and_under_another_executor() {
        within_patience(|| {
            for on_loop in [true, false] {
                let (mut tcp, mut server) = pair(on_loop);
                // The connect may have waited on async-io already; the read starts afresh.
                tcp.fallback = None;
                let writer = std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_millis(20));
                    server.write_all(b"ping").expect("write");
                    server
                });
                let mut buf = [0u8; 4];
                let n = run(on_loop, poll_fn(|cx| tcp.poll_read(cx, &mut buf))).expect("read");
                assert_eq!(&buf[..n], &b"ping"[..n], "on_loop {on_loop}");
                drop(writer.join().expect("writer"));
                // The peer closed: the wait ends with the end of the stream.
                while run(on_loop, poll_fn(|cx| tcp.poll_read(cx, &mut buf))).expect("read") > 0 {}
                assert_eq!(tcp.fallback.is_some(), !on_loop);
            }
        });
    }

    #[test]
    fn a_refused_connection_is_an_error() {
        let port = {
            let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
            listener.local_addr().expect("addr").port()
        };
        let err = within_patience(move || {
            block_on(connect("127.0.0.1".into(), port))
                .err()
                .expect("nothing listens there")
        });
        assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused, "{err}");
    }

    #[test]
    fn a_readiness_nobody_reads_wakes_its_future_once() {
        // One-shot interests: a readable socket that the woken future leaves unread must not
        // keep waking the thread (each wake-up would poll the future again, without end).
        let polls = within_patience(|| {
            let (tcp, mut server) = pair(true);
            server.write_all(b"unread").expect("write");
            let polls = AtomicUsize::new(0);
            let mut timer = LocalTimer::at(Instant::now() + Duration::from_millis(100));
            block_on(poll_fn(|cx| {
                if polls.fetch_add(1, Ordering::Relaxed) == 0 {
                    assert!(tcp.source.register(Dir::Read, cx.waker()));
                }
                timer.poll_fire(cx)
            }));
            polls.into_inner()
        });
        // The first poll, the readiness, the timer; a spinning wait makes thousands.
        assert!(polls <= 4, "{polls} polls");
    }

    #[test]
    fn another_executor_inside_block_on_waits_on_async_io() {
        // User code run by zk-blocking's block_on (a retry's operation, an election's work) may
        // run an executor of its own; its futures' timers must not register with the block_on,
        // whose thread does not wait while that executor runs.
        within_patience(|| {
            let mut timer = LocalTimer::at(Instant::now() + Duration::from_millis(20));
            block_on(async { futures_lite::future::block_on(sleep(&mut timer)) });
            assert!(timer.fallback.is_some());
        });
    }

    #[test]
    fn a_write_nobody_waits_for_registers_nothing() {
        // zk-client's callers write with `unwaited()` and leave what the socket cannot take to
        // the driver: no interest for anyone, and no async-io registration.
        let (mut tcp, _server) = pair(true);
        let chunk = vec![0u8; 1 << 16];
        let mut cx = Context::from_waker(zk_client::unwaited());
        let mut written = 0usize;
        while let Poll::Ready(n) = tcp.poll_write(&mut cx, &chunk) {
            written += n.expect("write");
            assert!(written < 1 << 30, "the peer never stopped taking bytes");
        }
        assert!(tcp.fallback.is_none());
        assert!(tcp.source.is_idle());
    }
}
