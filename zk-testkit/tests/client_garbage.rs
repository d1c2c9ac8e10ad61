//! A server that sends garbage in place of a reply: the client drops that connection with a
//! protocol error and resumes the session on the next one, and a DataWatch whose re-read was the
//! request the garbage answered keeps going (found by zk-chaos: one garbled frame ended a
//! DataWatch for good, although the session was fine a moment later). And a transport that
//! claims to have read more bytes than it was given: the same, its connection fails at once.
//!
//! A real ZooKeeper 3.9 server behind a small proxy (threads, std sockets) that, once armed,
//! replaces the server's first chunk after the client's next getData request with a frame too
//! short to hold a reply header. The client sends nothing else meanwhile (its pings go only after
//! seconds of idleness), so that chunk is the getData reply.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::thread;
use std::time::{Duration, Instant};

use futures_lite::StreamExt;
use zk_client::{BoxFuture, ClientBuilder, Error, Runtime, Timer, Transport};
use zk_testkit::real::{Ensemble, EnsembleOptions, ZkVersion};

/// Proxy states: forwarding; armed (garble after the next getData); garble the next chunk;
/// done.
const IDLE: u8 = 0;
const ARMED: u8 = 1;
const GARBLE: u8 = 2;
const DONE: u8 = 3;

/// getData's opcode (PROTOCOL.md): a request frame is length, xid, type.
const OP_GET_DATA: i32 = 4;

fn pump(mut from: TcpStream, mut to: TcpStream, state: Arc<AtomicU8>, client_side: bool) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let chunk = &buf[..n];
        if client_side {
            let op = chunk
                .get(8..12)
                .map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]));
            if op == Some(OP_GET_DATA) {
                let _ = state.compare_exchange(ARMED, GARBLE, Ordering::SeqCst, Ordering::SeqCst);
            }
        } else if state
            .compare_exchange(GARBLE, DONE, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
        {
            // A 5-byte frame: no 16-byte reply header fits in it.
            let _ = to.write_all(&[0, 0, 0, 5, 1, 2, 3, 4, 5]);
            continue;
        }
        if to.write_all(chunk).is_err() {
            break;
        }
    }
    let _ = from.shutdown(std::net::Shutdown::Both);
    let _ = to.shutdown(std::net::Shutdown::Both);
}

/// Forwards every connection to `upstream`; returns the proxy's port.
fn proxy(upstream: u16, state: Arc<AtomicU8>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
    let port = listener.local_addr().expect("proxy address").port();
    thread::spawn(move || {
        for down in listener.incoming().flatten() {
            let Ok(up) = TcpStream::connect(("127.0.0.1", upstream)) else {
                continue;
            };
            let (d2, u2) = (
                down.try_clone().expect("clone"),
                up.try_clone().expect("clone"),
            );
            let (s1, s2) = (state.clone(), state.clone());
            thread::spawn(move || pump(down, up, s1, true));
            thread::spawn(move || pump(u2, d2, s2, false));
        }
    });
    port
}

#[test]
fn a_data_watch_survives_garbage_in_place_of_its_reread() {
    let ens = Ensemble::start(EnsembleOptions::standalone(ZkVersion::V3_9))
        .expect("ZooKeeper 3.9 (scripts/setup-zookeeper installs it)");
    let state = Arc::new(AtomicU8::new(IDLE));
    let port = proxy(ens.nodes()[0].port(), state.clone());
    let rt = tokio::runtime::Runtime::new().expect("tokio");
    rt.block_on(async {
        let wait = Duration::from_secs(30);
        let direct = zk_tokio::connect(&ens.connect_string())
            .await
            .expect("direct client");
        direct.create("/garbage", "v1").await.expect("create");
        let watcher = zk_tokio::connect(&format!("127.0.0.1:{port}"))
            .await
            .expect("client through the proxy");
        let session = watcher.client_id().expect("a session").id;
        let mut dw = watcher.data_watch("/garbage");
        let first = tokio::time::timeout(wait, dw.next())
            .await
            .expect("first item");
        let first = first.expect("an item").expect("not an error");
        assert_eq!(first.data.expect("the node").0.as_ref(), b"v1");
        // The change fires the watch; the DataWatch's re-read gets garbage for an answer.
        state.store(ARMED, Ordering::SeqCst);
        direct.set_data("/garbage", "v2").await.expect("set");
        let next = tokio::time::timeout(wait, dw.next())
            .await
            .expect("an item in time");
        let next = next
            .expect("the DataWatch goes on")
            .expect("an item, not an error");
        assert_eq!(next.data.expect("the node").0.as_ref(), b"v2");
        assert_eq!(state.load(Ordering::SeqCst), DONE, "the garbage was sent");
        assert_eq!(
            watcher.client_id().map(|s| s.id),
            Some(session),
            "the same session"
        );
        watcher.close().await;
        direct.close().await;
    });
}

/// A transport that, once armed, reports one byte more than the buffer its next read was given
/// (the bytes it did read are real: a reply). It offers no `socket()`, so every read goes
/// through it (tokio's driver reads for itself anyway).
struct Lying {
    inner: Box<dyn Transport>,
    armed: Arc<AtomicBool>,
}

impl Transport for Lying {
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        match self.inner.poll_read(cx, buf) {
            Poll::Ready(Ok(n)) if n > 0 && self.armed.swap(false, Ordering::SeqCst) => {
                Poll::Ready(Ok(buf.len() + 1))
            }
            other => other,
        }
    }

    fn poll_write(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.inner.poll_write(cx, buf)
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.inner.poll_flush(cx)
    }

    fn peer_addr(&self) -> Option<SocketAddr> {
        self.inner.peer_addr()
    }
}

/// zk-tokio's runtime, with every connection wrapped in [`Lying`].
#[derive(Debug)]
struct LyingRuntime {
    inner: Arc<dyn Runtime>,
    armed: Arc<AtomicBool>,
}

impl Runtime for LyingRuntime {
    fn connect(&self, host: String, port: u16) -> BoxFuture<io::Result<Box<dyn Transport>>> {
        let connect = self.inner.connect(host, port);
        let armed = self.armed.clone();
        Box::pin(async move {
            let inner = connect.await?;
            Ok(Box::new(Lying { inner, armed }) as Box<dyn Transport>)
        })
    }

    fn timer(&self, deadline: Instant) -> Box<dyn Timer> {
        self.inner.timer(deadline)
    }

    fn spawn(&self, task: BoxFuture<()>) -> io::Result<()> {
        self.inner.spawn(task)
    }

    fn now(&self) -> Instant {
        self.inner.now()
    }
}

#[test]
fn a_transport_claiming_more_than_it_read_fails_its_connection_not_the_session() {
    // A server that grants a 60 s session (the harness's default caps sessions at 4 s): no ping
    // for 20 s, so nothing but the getData reply can come in the armed read.
    let mut opts = EnsembleOptions::standalone(ZkVersion::V3_9);
    opts.max_session_timeout_ms = Some(60_000);
    let ens = Ensemble::start(opts).expect("ZooKeeper 3.9 (scripts/setup-zookeeper installs it)");
    let rt = tokio::runtime::Runtime::new().expect("tokio");
    rt.block_on(async {
        let armed = Arc::new(AtomicBool::new(false));
        let runtime = Arc::new(LyingRuntime {
            inner: zk_tokio::TokioRuntime::default().shared(),
            armed: armed.clone(),
        });
        // A 60 s session: its read timeout (40 s) would end a connection whose reply was lost;
        // this one must end at the lie, long before.
        let client = ClientBuilder::new(runtime, &ens.connect_string())
            .session_timeout(Duration::from_secs(60))
            .connect()
            .await
            .expect("connect");
        assert_eq!(client.session_timeout(), Some(Duration::from_secs(60)));
        let session = client.client_id().expect("a session").id;
        client.create("/lying", "v1").await.expect("create");
        armed.store(true, Ordering::SeqCst);
        let lied_to = tokio::time::timeout(Duration::from_secs(20), client.get_data("/lying"))
            .await
            .expect("the request fails with its connection, not at the read timeout");
        assert!(
            matches!(lied_to, Err(Error::ConnectionLoss)),
            "the reply read with the lie is not trusted: {lied_to:?}"
        );
        assert!(!armed.load(Ordering::SeqCst), "the transport lied");
        // The session resumes on a new connection, and the node reads whole.
        let (data, _) = client.get_data("/lying").await.expect("read after the lie");
        assert_eq!(data.as_ref(), b"v1");
        assert_eq!(
            client.client_id().map(|s| s.id),
            Some(session),
            "same session"
        );
        client.close().await;
    });
}
