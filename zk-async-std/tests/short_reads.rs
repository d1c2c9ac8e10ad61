//! `AsyncIoTcp`'s reads: after a read that emptied the socket (it returned less than it was
//! given, or "would block"), the next one waits for readiness before it tries the socket, and
//! still misses no byte; after a read that filled its buffer, the next one tries the socket at
//! once.

use std::future::poll_fn;
use std::io::{self, Write};
use std::net::{TcpListener, TcpStream};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use zk_async_std::{connect_tcp, AsyncIoTcp, Transport};

const PATIENCE: Duration = Duration::from_secs(10);

/// Spins until the client's socket holds a byte to read (loopback delivers a write at once, but
/// the test does not rely on it).
fn until_bytes_wait(tcp: &AsyncIoTcp) {
    let dup: TcpStream = tcp.socket().expect("a plain socket");
    let start = Instant::now();
    loop {
        match dup.peek(&mut [0u8; 1]) {
            Ok(n) if n > 0 => return,
            Ok(_) => panic!("the server closed"),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                assert!(start.elapsed() < PATIENCE, "the bytes never came");
                std::thread::yield_now();
            }
            Err(e) => panic!("peek: {e}"),
        }
    }
}

/// One poll with a waker that wakes nothing.
fn poll_once(tcp: &mut AsyncIoTcp, buf: &mut [u8]) -> Poll<io::Result<usize>> {
    tcp.poll_read(&mut Context::from_waker(Waker::noop()), buf)
}

/// A read that must complete within PATIENCE (a lost wake-up fails the test, not hangs it).
async fn read(tcp: &mut AsyncIoTcp, buf: &mut [u8]) -> usize {
    let read = async { poll_fn(|cx| tcp.poll_read(cx, buf)).await.expect("read") };
    let late = async {
        async_io::Timer::after(PATIENCE).await;
        panic!("a read waited past PATIENCE: its wake-up was lost")
    };
    futures_lite::future::or(read, late).await
}

/// (Broken on purpose, a read after a short one that tries the socket first returns the bytes
/// at once, and this fails.)
#[test]
fn a_read_after_a_short_one_waits_for_readiness_first_and_misses_nothing() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("address").port();
    async_io::block_on(async {
        let mut tcp = connect_tcp("127.0.0.1".into(), port)
            .await
            .expect("connect");
        let (mut server, _) = listener.accept().expect("accept");
        let mut buf = [0u8; 64];

        server.write_all(b"first").expect("write");
        until_bytes_wait(&tcp);
        let n = read(&mut tcp, &mut buf).await;
        assert_eq!(&buf[..n], b"first");

        // Bytes are there, but the read that emptied the socket says the next read waits.
        server.write_all(b"second").expect("write");
        until_bytes_wait(&tcp);
        assert!(
            poll_once(&mut tcp, &mut buf).is_pending(),
            "the read after a short one tried the socket"
        );
        // The wait it registered for brings them.
        let n = read(&mut tcp, &mut buf).await;
        assert_eq!(&buf[..n], b"second");

        // A read that fills its buffer leaves more to read: the next read tries at once.
        server.write_all(&[7u8; 100]).expect("write");
        let mut filled = 0;
        while filled < 64 {
            filled += read(&mut tcp, &mut buf[filled..]).await;
        }
        until_bytes_wait(&tcp);
        match poll_once(&mut tcp, &mut buf) {
            Poll::Ready(Ok(n)) => assert_eq!(n, 36),
            other => panic!("the read after a full one: {other:?}"),
        }
    });
}

/// The same after a read that had to wait: the wake-up's event is taken note of, so the read
/// after the next short one waits too instead of taking that old event for new bytes. (Broken on
/// purpose, reading after a wake-up without going through the wait leaves async-io's note of the
/// event standing, and the read after the next short one tries the socket: this fails.)
#[test]
fn a_read_after_a_wake_up_and_a_short_read_waits_for_readiness_first() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("address").port();
    async_io::block_on(async {
        let mut tcp = connect_tcp("127.0.0.1".into(), port)
            .await
            .expect("connect");
        let (mut server, _) = listener.accept().expect("accept");
        let mut buf = [0u8; 64];

        // Nothing to read yet: the read registers for readiness.
        poll_fn(|cx| {
            assert!(tcp.poll_read(cx, &mut buf).is_pending(), "nothing was sent");
            Poll::Ready(())
        })
        .await;
        // The reactor turns at least once after the registration (a timer wakes it), so the
        // event below is noted under a tick of its own: an event of the turn that was under way
        // at the registration would count as possibly stale and not be noted at all.
        async_io::Timer::after(Duration::from_millis(1)).await;
        server.write_all(b"woken").expect("write");
        // Woken through the reactor, which notes the event, before it reads.
        let mut polled = false;
        let woken = poll_fn(|cx| {
            if !std::mem::replace(&mut polled, true) {
                return Poll::Pending;
            }
            tcp.poll_read(cx, &mut buf)
        });
        let late = async {
            async_io::Timer::after(PATIENCE).await;
            panic!("the read was never woken")
        };
        let n = futures_lite::future::or(woken, late).await.expect("read");
        assert_eq!(&buf[..n], b"woken");

        server.write_all(b"next").expect("write");
        until_bytes_wait(&tcp);
        assert!(
            poll_once(&mut tcp, &mut buf).is_pending(),
            "the read after a short one tried the socket"
        );
        let n = read(&mut tcp, &mut buf).await;
        assert_eq!(&buf[..n], b"next");
    });
}
