//! `SimTcpServer`: the [`SimServer`] model on real loopback sockets, for tests and demos that
//! need a ZooKeeper without Java.
//!
//! This is the only part of the simulator with threads, sockets and a clock. The design is the
//! plainest that works: one listener per simulated server on an ephemeral 127.0.0.1 port with an
//! accept thread each, a reader thread per connection, a ticker thread calling
//! [`SimServer::handle_timeout`] about every 10 ms, and one mutex around the model. Whoever holds
//! the mutex drains the model's outputs and writes them to the sockets before letting go, so
//! frames leave in the order the model produced them. Dropping the server stops and joins every
//! thread.

use std::collections::BTreeMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::{ServerOutput, SimConfig, SimConnId, SimServer};

/// How often the ticker drives session expiry and the sweeper.
const TICK: Duration = Duration::from_millis(10);
/// How long a blocked thread waits before it looks at the stop flag again.
const POLL: Duration = Duration::from_millis(20);
/// A client that stops reading for this long is disconnected rather than stalling the model.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// The model and the sockets its connections map to.
struct Inner {
    model: SimServer,
    streams: BTreeMap<SimConnId, TcpStream>,
}

impl Inner {
    /// Writes every queued output to its socket; a Close shuts the socket down.
    fn flush(&mut self) {
        while let Some(out) = self.model.poll_output() {
            match out {
                ServerOutput::Data { conn, bytes } => {
                    if let Some(s) = self.streams.get_mut(&conn) {
                        if s.write_all(&bytes).is_err() {
                            // The reader thread sees the dead socket and reports it closed.
                            let _ = s.shutdown(Shutdown::Both);
                        }
                    }
                }
                ServerOutput::Close { conn } => {
                    if let Some(s) = self.streams.remove(&conn) {
                        let _ = s.flush_and_close();
                    }
                }
            }
        }
    }
}

/// Shutting a socket down once everything written has been handed to the kernel.
trait FlushAndClose {
    fn flush_and_close(self) -> std::io::Result<()>;
}

impl FlushAndClose for TcpStream {
    fn flush_and_close(mut self) -> std::io::Result<()> {
        self.flush()?;
        self.shutdown(Shutdown::Both)
    }
}

struct Shared {
    inner: Mutex<Inner>,
    stop: AtomicBool,
    readers: Mutex<Vec<JoinHandle<()>>>,
}

impl Shared {
    /// The model, even if a thread panicked while holding it (the model itself never panics).
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
}

/// A [`SimServer`] listening on one 127.0.0.1 port per simulated server.
pub struct SimTcpServer {
    shared: Arc<Shared>,
    ports: Vec<u16>,
    threads: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for SimTcpServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimTcpServer")
            .field("ports", &self.ports)
            .finish_non_exhaustive()
    }
}

impl SimTcpServer {
    /// Starts the model and binds one listener per server on an ephemeral loopback port.
    ///
    /// Errors if a listener cannot be bound or a thread cannot be started.
    pub fn start(config: SimConfig) -> std::io::Result<SimTcpServer> {
        let servers = config.servers.max(1);
        let listeners = (0..servers)
            .map(|_| {
                let l = TcpListener::bind("127.0.0.1:0")?;
                l.set_nonblocking(true)?;
                Ok(l)
            })
            .collect::<std::io::Result<Vec<_>>>()?;
        let ports = listeners
            .iter()
            .map(|l| l.local_addr().map(|a| a.port()))
            .collect::<std::io::Result<Vec<_>>>()?;
        let shared = Arc::new(Shared {
            inner: Mutex::new(Inner {
                model: SimServer::new(config, Instant::now()),
                streams: BTreeMap::new(),
            }),
            stop: AtomicBool::new(false),
            readers: Mutex::new(Vec::new()),
        });
        let mut server = SimTcpServer {
            shared: shared.clone(),
            ports,
            threads: Vec::new(),
        };
        for (index, listener) in listeners.into_iter().enumerate() {
            let shared = shared.clone();
            let handle = thread::Builder::new()
                .name(format!("sim-accept-{index}"))
                .spawn(move || accept_loop(&shared, index, &listener))?;
            server.threads.push(handle);
        }
        let ticker = thread::Builder::new()
            .name("sim-ticker".into())
            .spawn(move || {
                while !shared.stopping() {
                    thread::sleep(TICK);
                    let mut g = shared.lock();
                    g.model.handle_timeout(Instant::now());
                    g.flush();
                }
            })?;
        server.threads.push(ticker);
        Ok(server)
    }

    /// The port of each simulated server, in server order.
    pub fn ports(&self) -> Vec<u16> {
        self.ports.clone()
    }

    /// `127.0.0.1:p1,127.0.0.1:p2,...`, for a client's connect string.
    pub fn connect_string(&self) -> String {
        self.ports
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Runs `f` on the model under its lock (for example to crash a server), then writes out
    /// whatever it queued.
    pub fn with_model<R>(&self, f: impl FnOnce(&mut SimServer) -> R) -> R {
        let mut g = self.shared.lock();
        let r = f(&mut g.model);
        g.flush();
        r
    }
}

impl Drop for SimTcpServer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        // No accept thread is left to start readers; wake the ones that exist and join them.
        {
            let mut g = self.shared.lock();
            for (_, s) in std::mem::take(&mut g.streams) {
                let _ = s.shutdown(Shutdown::Both);
            }
        }
        let readers = std::mem::take(
            &mut *self
                .shared
                .readers
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
        );
        for r in readers {
            let _ = r.join();
        }
    }
}

fn accept_loop(shared: &Arc<Shared>, index: usize, listener: &TcpListener) {
    while !shared.stopping() {
        let stream = match listener.accept() {
            Ok((stream, _)) => stream,
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                thread::sleep(POLL / 4);
                continue;
            }
            Err(_) => {
                thread::sleep(POLL);
                continue;
            }
        };
        let setup = stream
            .set_nonblocking(false)
            .and_then(|()| stream.set_nodelay(true))
            .and_then(|()| stream.set_read_timeout(Some(POLL)))
            .and_then(|()| stream.set_write_timeout(Some(WRITE_TIMEOUT)))
            .and_then(|()| stream.try_clone());
        let Ok(writer) = setup else {
            continue;
        };
        let conn = {
            let mut g = shared.lock();
            let conn = g.model.accept(Instant::now(), index);
            g.streams.insert(conn, writer);
            g.flush();
            conn
        };
        let reader_shared = shared.clone();
        let spawned = thread::Builder::new()
            .name(format!("sim-conn-{}", conn.0))
            .spawn(move || read_loop(&reader_shared, conn, stream));
        if let Ok(handle) = spawned {
            shared
                .readers
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(handle);
        }
    }
}

fn read_loop(shared: &Arc<Shared>, conn: SimConnId, mut stream: TcpStream) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        if shared.stopping() {
            return;
        }
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                let mut g = shared.lock();
                g.model.handle_bytes(Instant::now(), conn, &buf[..n]);
                g.flush();
                if !g.streams.contains_key(&conn) {
                    // The model closed the connection.
                    return;
                }
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    let mut g = shared.lock();
    g.model.handle_closed(Instant::now(), conn);
    g.streams.remove(&conn);
    g.flush();
}
