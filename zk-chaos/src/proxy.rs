//! The chaos proxy: one loopback listener per (client, server) pair, forwarding bytes both ways,
//! so that the nemesis can cut a client's connections, isolate a client from every server (its
//! session then expires), and inject garbage or a truncated frame into what a server sends.
//!
//! Each client gets listeners of its own so that a fault can aim at one client. It runs on a
//! tokio runtime of its own (not the one the tokio clients use), so a busy client runtime never
//! delays the proxy's forwarding.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify};

use crate::rng::Rng;

/// How long a client may keep a connection open after the proxy fed it garbage. The client must
/// end the connection at once (a protocol error); 15 s is far beyond any scheduling delay.
const GARBAGE_GRACE: Duration = Duration::from_secs(15);

/// Copy buffer per direction. Small, so that the proxy's own memory hardly moves with the number
/// of live connections: the memory check measures the whole process.
const BUF: usize = 8 * 1024;

/// What to feed a client in place of a server's next bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Garbage {
    /// A frame length no ZooKeeper frame has (negative, or beyond any `max_frame`), then noise.
    BadLength,
    /// A frame of 1-15 bytes: too short for the 16-byte reply header, so it cannot decode.
    ShortFrame,
    /// Half of the server's next chunk, then the connection closes (a truncated frame).
    Truncate,
}

/// What the proxy counted, for the summary and the checks.
#[derive(Debug, Default)]
pub struct ProxyStats {
    /// Connections accepted from clients.
    pub accepted: AtomicU64,
    /// Connections cut by the nemesis.
    pub cut: AtomicU64,
    /// Garbage frames actually written to a client.
    pub garbage_sent: AtomicU64,
    /// Truncated frames written to a client (the proxy then closes the connection itself).
    pub truncated: AtomicU64,
    /// Connections the client closed after garbage, as it must.
    pub garbage_rejected: AtomicU64,
    /// Connections a client kept open for [`GARBAGE_GRACE`] after garbage: a violation.
    pub garbage_kept: AtomicU64,
}

struct Conn {
    client: usize,
    cut: watch::Sender<bool>,
    poke: Arc<Notify>,
    garbage: Arc<Mutex<Option<Garbage>>>,
}

struct Shared {
    /// Live connections by id.
    conns: Mutex<HashMap<u64, Conn>>,
    /// Per client: isolated from every server (connections accepted, then left silent).
    isolated: Vec<AtomicBool>,
    next_id: AtomicU64,
    stats: ProxyStats,
    /// Noise for garbage frames.
    rng: Mutex<Rng>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A poisoned lock only means a task panicked mid-update of a counter map; keep going.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A handle on the running proxy, usable from any thread.
#[derive(Clone)]
pub struct Proxy {
    shared: Arc<Shared>,
    /// Per client, the connect string through its listeners.
    connect: Arc<Vec<String>>,
}

impl Proxy {
    /// Starts listeners for `clients` clients in front of the servers on `server_ports`, on
    /// `rt`. Errors when a listener cannot be bound.
    pub fn start(
        rt: &tokio::runtime::Runtime,
        clients: usize,
        server_ports: &[u16],
        seed: u64,
    ) -> io::Result<Proxy> {
        let shared = Arc::new(Shared {
            conns: Mutex::new(HashMap::new()),
            isolated: (0..clients).map(|_| AtomicBool::new(false)).collect(),
            next_id: AtomicU64::new(0),
            stats: ProxyStats::default(),
            rng: Mutex::new(Rng::new(seed)),
        });
        let mut connect = Vec::with_capacity(clients);
        for client in 0..clients {
            let mut hosts = Vec::new();
            for &port in server_ports {
                let listener = rt.block_on(TcpListener::bind("127.0.0.1:0"))?;
                let addr = listener.local_addr()?;
                hosts.push(format!("127.0.0.1:{}", addr.port()));
                let upstream = SocketAddr::from(([127, 0, 0, 1], port));
                rt.spawn(accept_loop(shared.clone(), listener, client, upstream));
            }
            connect.push(hosts.join(","));
        }
        Ok(Proxy {
            shared,
            connect: Arc::new(connect),
        })
    }

    /// The connect string client `client` uses (its own listeners, one per server).
    pub fn connect_string(&self, client: usize) -> &str {
        &self.connect[client]
    }

    /// The counters.
    pub fn stats(&self) -> &ProxyStats {
        &self.shared.stats
    }

    /// Cuts every connection of `client` (every client's when `None`); returns how many.
    pub fn cut(&self, client: Option<usize>) -> usize {
        let conns = lock(&self.shared.conns);
        let mut n = 0;
        for c in conns
            .values()
            .filter(|c| client.is_none_or(|want| c.client == want))
        {
            // A receiver may be gone already; the connection is ending then anyway.
            let _ = c.cut.send(true);
            n += 1;
        }
        self.shared.stats.cut.fetch_add(n as u64, Ordering::Relaxed);
        n
    }

    /// Feeds `kind` to one live connection of `client` (chosen by `pick`); false when it has
    /// none.
    pub fn inject(&self, client: usize, kind: Garbage, pick: u64) -> bool {
        let conns = lock(&self.shared.conns);
        let mine: Vec<&Conn> = conns.values().filter(|c| c.client == client).collect();
        if mine.is_empty() {
            return false;
        }
        let c = mine[(pick % mine.len() as u64) as usize];
        *lock(&c.garbage) = Some(kind);
        c.poke.notify_one();
        true
    }

    /// Isolates `client` from every server (or ends that): its connections are cut, and new ones
    /// are accepted but never forwarded, as behind a partition.
    pub fn isolate(&self, client: usize, on: bool) {
        if let Some(flag) = self.shared.isolated.get(client) {
            flag.store(on, Ordering::SeqCst);
        }
        if on {
            self.cut(Some(client));
        }
    }

    /// Ends every isolation.
    pub fn heal(&self) {
        for flag in &self.shared.isolated {
            flag.store(false, Ordering::SeqCst);
        }
    }
}

async fn accept_loop(shared: Arc<Shared>, listener: TcpListener, client: usize, up: SocketAddr) {
    loop {
        let Ok((down, _)) = listener.accept().await else {
            // Out of file descriptors or the like: try again shortly rather than give up.
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        shared.stats.accepted.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(serve(shared.clone(), down, client, up));
    }
}

async fn serve(shared: Arc<Shared>, down: TcpStream, client: usize, up: SocketAddr) {
    if shared.isolated[client].load(Ordering::SeqCst) {
        // Behind the partition: hold the socket, say nothing, until the partition ends.
        while shared.isolated[client].load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        return;
    }
    // A killed server refuses; dropping `down` tells the client at once, as the server would.
    let Ok(upstream) = TcpStream::connect(up).await else {
        return;
    };
    let _ = down.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
    let (cut_tx, cut_rx) = watch::channel(false);
    let poke = Arc::new(Notify::new());
    let garbage = Arc::new(Mutex::new(None));
    lock(&shared.conns).insert(
        id,
        Conn {
            client,
            cut: cut_tx.clone(),
            poke: poke.clone(),
            garbage: garbage.clone(),
        },
    );
    let (down_r, down_w) = down.into_split();
    let (up_r, up_w) = upstream.into_split();
    let to_server = tokio::spawn(client_to_server(
        down_r,
        up_w,
        cut_rx.clone(),
        cut_tx.clone(),
    ));
    server_to_client(&shared, up_r, down_w, cut_rx, cut_tx, poke, garbage).await;
    let _ = to_server.await;
    lock(&shared.conns).remove(&id);
}

/// Copies client bytes to the server until either side ends or the connection is cut; then cuts
/// it, so the other direction ends too.
async fn client_to_server(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut cut: watch::Receiver<bool>,
    cut_tx: watch::Sender<bool>,
) {
    let mut buf = vec![0u8; BUF];
    loop {
        tokio::select! {
            r = from.read(&mut buf) => match r {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if to.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            },
            _ = cut.changed() => break,
        }
    }
    let _ = cut_tx.send(true);
}

async fn server_to_client(
    shared: &Shared,
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut cut: watch::Receiver<bool>,
    cut_tx: watch::Sender<bool>,
    poke: Arc<Notify>,
    garbage: Arc<Mutex<Option<Garbage>>>,
) {
    let mut buf = vec![0u8; BUF];
    let mut truncate_next = false;
    loop {
        tokio::select! {
            r = from.read(&mut buf) => match r {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if truncate_next && n >= 2 {
                        // Half a chunk (the server writes whole frames, so half a frame), then
                        // the end of the connection.
                        let _ = to.write_all(&buf[..n / 2]).await;
                        shared.stats.truncated.fetch_add(1, Ordering::Relaxed);
                        break;
                    }
                    if to.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            },
            _ = poke.notified() => {
                let kind = lock(&garbage).take();
                match kind {
                    Some(Garbage::Truncate) => truncate_next = true,
                    Some(kind) => {
                        // Between two reads from the server, so at a frame boundary: the client
                        // must refuse what follows and end the connection.
                        let bytes = garbage_bytes(shared, kind);
                        if to.write_all(&bytes).await.is_err() {
                            break;
                        }
                        shared.stats.garbage_sent.fetch_add(1, Ordering::Relaxed);
                        // Nothing more from the server: wait for the client to hang up.
                        let closed = tokio::time::timeout(GARBAGE_GRACE, cut.changed()).await;
                        match closed {
                            Ok(_) => shared.stats.garbage_rejected.fetch_add(1, Ordering::Relaxed),
                            Err(_) => shared.stats.garbage_kept.fetch_add(1, Ordering::Relaxed),
                        };
                        break;
                    }
                    None => {}
                }
            },
            _ = cut.changed() => break,
        }
    }
    let _ = cut_tx.send(true);
}

fn garbage_bytes(shared: &Shared, kind: Garbage) -> Vec<u8> {
    let mut rng = lock(&shared.rng);
    let mut out = Vec::new();
    match kind {
        Garbage::BadLength => {
            // Either negative or between 256 MiB and 1 GiB: no client accepts such a frame.
            let len: u32 = if rng.chance(50) {
                0x8000_0000 | rng.next_u64() as u32
            } else {
                0x1000_0000 + (rng.below(0x3000_0000) as u32)
            };
            out.extend_from_slice(&len.to_be_bytes());
            for _ in 0..rng.between(0, 64) {
                out.push(rng.next_u64() as u8);
            }
        }
        Garbage::ShortFrame => {
            let len = rng.between(1, 15) as u32;
            out.extend_from_slice(&len.to_be_bytes());
            for _ in 0..len {
                out.push(rng.next_u64() as u8);
            }
        }
        Garbage::Truncate => {}
    }
    out
}
