//! The column `raw`, the floor: one session on one blocking `std::net::TcpStream` with
//! TCP_NODELAY, request frames encoded with zk-core's codec before the timed phase, and replies
//! read straight out of one reusable buffer, checking only what proves the reply right (xid and
//! error code; data length for getData; name count for getChildren; the path for create).
//!
//! **The window (W2, W3), and why one thread.** Raw fills the window, then loops: one blocking
//! `read` takes whatever replies have arrived, each complete one frees a slot, and one `write`
//! sends that many more pre-encoded frames. The server works on the window while the client
//! reads, so requests and replies overlap on the wire, with the fewest system calls and no
//! thread hand-off: a writer thread would only add futex wake-ups on a client pinned to one
//! core, and non-blocking I/O would add a poll call per batch. The blocking write cannot
//! deadlock: at most a window of requests is ever unanswered (under 200 KB, within the socket
//! buffers), and ZooKeeper queues its replies in user space rather than stop reading.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::Instant;

use bytes::Bytes;
use zk_core::proto::{
    decode_connect_response, encode_connect_request, encode_request, Acl, ConnectRequest,
    CreateMode, CreateRequest, PathVersionRequest, PathWatchRequest, Request, PASSWORD_LEN,
};

use crate::measure::{Latencies, Meter};
use crate::spec::*;
use crate::{fail, BenchResult};

/// Read buffer for the data workloads: a 1 MB reply and what follows it fit.
const BIG_BUF: usize = 4 << 20;
/// Below this much room at the end of the read buffer, what is left of a frame moves to the
/// front.
const COMPACT_BELOW: usize = 32 << 10;
/// Read buffer for W6, which reads two small frames per connection: no bigger, so the floor
/// does not zero memory it never uses.
const W6_BUF: usize = 1 << 10;

/// Runs `workload` against `addr`; returns the lines to print.
///
/// Errors on any socket error, error code or malformed reply.
pub fn run(workload: Workload, addr: &str) -> BenchResult<Vec<String>> {
    match workload {
        Workload::W6 => return w6(addr),
        // zk-bench prints NA for these before it gets here.
        Workload::W7 | Workload::W8 => {
            return Err(fail("raw does not run W7 or W8 (no watches, one session)"))
        }
        _ => {}
    }
    let mut raw = Raw::connect(addr, BIG_BUF)?;
    let lines = match workload {
        Workload::W1 => w1(&mut raw)?,
        Workload::W2 => w2(&mut raw)?,
        Workload::W3 => w3(&mut raw)?,
        Workload::W4 => w4(&mut raw)?,
        Workload::W5 => w5(&mut raw)?,
        Workload::W6 | Workload::W7 | Workload::W8 => unreachable!("handled above"),
    };
    raw.close()?;
    Ok(lines)
}

/// One session on one socket.
struct Raw {
    stream: TcpStream,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    next_xid: i32,
}

/// Pre-encoded request frames, back to back, with consecutive xids.
struct Frames {
    bytes: Vec<u8>,
    /// `offsets[i]..offsets[i + 1]` is frame `i`.
    offsets: Vec<usize>,
    first_xid: i32,
}

impl Frames {
    fn len(&self) -> usize {
        self.offsets.len() - 1
    }

    fn range(&self, from: usize, to: usize) -> &[u8] {
        &self.bytes[self.offsets[from]..self.offsets[to]]
    }

    fn xid(&self, i: usize) -> i32 {
        self.first_xid + i as i32
    }
}

fn be32(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

impl Raw {
    fn connect(addr: &str, buf_len: usize) -> BenchResult<Raw> {
        let stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        let mut out = Vec::with_capacity(64);
        let req = ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: 0,
            timeout: SESSION_TIMEOUT.as_millis() as i32,
            session_id: 0,
            passwd: Bytes::from_static(&[0; PASSWORD_LEN]),
            read_only: Some(false),
        };
        encode_connect_request(&mut out, usize::MAX, &req)?;
        (&stream).write_all(&out)?;
        let mut raw = Raw {
            stream,
            buf: vec![0; buf_len],
            start: 0,
            end: 0,
            next_xid: 1,
        };
        let (s, e) = raw.frame()?;
        let resp = decode_connect_response(Bytes::copy_from_slice(&raw.buf[s..e]))?;
        if resp.timeout <= 0 {
            return Err(fail("the server refused the session"));
        }
        Ok(raw)
    }

    /// Encodes `n` requests with the next `n` xids.
    fn frames(
        &mut self,
        n: usize,
        mut request: impl FnMut(usize) -> Request,
    ) -> BenchResult<Frames> {
        let mut bytes = Vec::new();
        let mut offsets = Vec::with_capacity(n + 1);
        offsets.push(0);
        let first_xid = self.next_xid;
        for i in 0..n {
            encode_request(&mut bytes, usize::MAX, first_xid + i as i32, &request(i))?;
            offsets.push(bytes.len());
        }
        self.next_xid += n as i32;
        Ok(Frames {
            bytes,
            offsets,
            first_xid,
        })
    }

    fn write(&self, bytes: &[u8]) -> io::Result<()> {
        (&self.stream).write_all(bytes)
    }

    /// One `read` into the buffer.
    fn fill(&mut self) -> io::Result<()> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.buf.len() - self.end < COMPACT_BELOW {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let n = self.stream.read(&mut self.buf[self.end..])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "server closed",
            ));
        }
        self.end += n;
        Ok(())
    }

    /// The next whole frame already buffered, as a range of `buf` (valid until the next fill).
    fn buffered_frame(&mut self) -> io::Result<Option<(usize, usize)>> {
        if self.end - self.start < 4 {
            return Ok(None);
        }
        let len = be32(&self.buf, self.start);
        if len < 0 || len as usize + 4 > self.buf.len() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "bad frame length",
            ));
        }
        let len = len as usize;
        if self.end - self.start < 4 + len {
            return Ok(None);
        }
        let range = (self.start + 4, self.start + 4 + len);
        self.start += 4 + len;
        Ok(Some(range))
    }

    /// Blocks until a whole frame is buffered.
    fn frame(&mut self) -> io::Result<(usize, usize)> {
        loop {
            if let Some(r) = self.buffered_frame()? {
                return Ok(r);
            }
            self.fill()?;
        }
    }

    /// Reads the reply to `xid` and checks its header; returns its range.
    fn reply(&mut self, xid: i32) -> BenchResult<(usize, usize)> {
        let (s, e) = self.frame()?;
        check_header(&self.buf[s..e], xid)?;
        Ok((s, e))
    }

    /// Sends every frame with at most [`WINDOW`] unanswered, handing each reply to `check`.
    fn pipelined(
        &mut self,
        frames: &Frames,
        mut check: impl FnMut(&[u8]) -> BenchResult<()>,
    ) -> BenchResult<()> {
        let n = frames.len();
        let mut sent = n.min(WINDOW);
        self.write(frames.range(0, sent))?;
        let mut done = 0;
        while done < n {
            self.fill()?;
            while let Some((s, e)) = self.buffered_frame()? {
                let reply = &self.buf[s..e];
                check_header(reply, frames.xid(done))?;
                check(reply)?;
                done += 1;
            }
            let target = n.min(done + WINDOW);
            if target > sent {
                self.write(frames.range(sent, target))?;
                sent = target;
            }
        }
        Ok(())
    }

    /// closeSession, and its reply.
    fn close(mut self) -> BenchResult<()> {
        let frames = self.frames(1, |_| Request::CloseSession)?;
        self.write(frames.range(0, 1))?;
        self.reply(frames.xid(0))?;
        Ok(())
    }
}

/// Checks a reply header: the expected xid, error code 0.
fn check_header(reply: &[u8], xid: i32) -> BenchResult<()> {
    if reply.len() < 16 {
        return Err(fail("short reply"));
    }
    let (got, err) = (be32(reply, 0), be32(reply, 12));
    if got != xid {
        return Err(fail(format!("reply xid {got}, expected {xid}")));
    }
    if err != 0 {
        return Err(fail(format!("reply error {err}")));
    }
    Ok(())
}

/// Checks a getData reply's data length.
fn check_data(reply: &[u8], len: usize) -> BenchResult<()> {
    if reply.len() >= 20 && be32(reply, 16) == len as i32 {
        Ok(())
    } else {
        Err(fail(format!("getData reply without {len} bytes of data")))
    }
}

fn get_data(path: &str) -> Request {
    Request::GetData(PathWatchRequest {
        path: path.to_owned(),
        watch: false,
    })
}

fn w1(raw: &mut Raw) -> BenchResult<Vec<String>> {
    let frames = raw.frames(W1_WARMUP + W1_OPS, |_| get_data(SMALL))?;
    for i in 0..W1_WARMUP {
        raw.write(frames.range(i, i + 1))?;
        let (s, e) = raw.reply(frames.xid(i))?;
        check_data(&raw.buf[s..e], SMALL_LEN)?;
    }
    let mut lat = Latencies::with_capacity(W1_OPS);
    let meter = Meter::start();
    for i in W1_WARMUP..W1_WARMUP + W1_OPS {
        let t = Instant::now();
        raw.write(frames.range(i, i + 1))?;
        let (s, e) = raw.frame()?;
        lat.push(t.elapsed());
        check_header(&raw.buf[s..e], frames.xid(i))?;
        check_data(&raw.buf[s..e], SMALL_LEN)?;
    }
    let phase = meter.stop("w1", W1_OPS);
    Ok(vec![phase.to_string(), lat.line("w1")])
}

fn w2(raw: &mut Raw) -> BenchResult<Vec<String>> {
    let warm = raw.frames(W2_WARMUP, |_| get_data(SMALL))?;
    raw.pipelined(&warm, |r| check_data(r, SMALL_LEN))?;
    let frames = raw.frames(W2_OPS, |_| get_data(SMALL))?;
    let meter = Meter::start();
    raw.pipelined(&frames, |r| check_data(r, SMALL_LEN))?;
    Ok(vec![meter.stop("w2", W2_OPS).to_string()])
}

/// Pipelines `frames` of creates, collecting the created paths.
fn creates(raw: &mut Raw, frames: &Frames) -> BenchResult<Vec<String>> {
    let mut names = Vec::with_capacity(frames.len());
    raw.pipelined(frames, |r| {
        let len = if r.len() >= 20 { be32(r, 16) } else { -1 };
        let name = usize::try_from(len)
            .ok()
            .and_then(|len| r.get(20..20 + len))
            .and_then(|b| std::str::from_utf8(b).ok())
            .ok_or_else(|| fail("create reply without a path"))?;
        names.push(name.to_owned());
        Ok(())
    })?;
    Ok(names)
}

/// Encodes a delete of every name (version -1) and pipelines them.
fn deletes(raw: &mut Raw, names: Vec<String>) -> BenchResult<()> {
    let mut names = names.into_iter();
    let frames = raw.frames(names.len(), |_| {
        Request::Delete(PathVersionRequest {
            path: names.next().unwrap_or_default(),
            version: -1,
        })
    })?;
    raw.pipelined(&frames, |_| Ok(()))
}

fn w3(raw: &mut Raw) -> BenchResult<Vec<String>> {
    let value = Bytes::from(w3_value());
    let create = |_| {
        Request::Create(CreateRequest {
            path: W3_PREFIX.to_owned(),
            data: Some(value.clone()),
            acl: Acl::open_unsafe().into(),
            flags: CreateMode::PersistentSequential.code(),
        })
    };
    let warm = raw.frames(W3_WARMUP, create)?;
    let names = creates(raw, &warm)?;
    deletes(raw, names)?;
    let frames = raw.frames(W3_OPS, create)?;
    let meter = Meter::start();
    let names = creates(raw, &frames)?;
    let create_phase = meter.stop("w3_create", W3_OPS);
    // Delete frames can only be encoded once the names are known: inside the timed phase.
    let meter = Meter::start();
    deletes(raw, names)?;
    let delete_phase = meter.stop("w3_delete", W3_OPS);
    Ok(vec![create_phase.to_string(), delete_phase.to_string()])
}

fn w4(raw: &mut Raw) -> BenchResult<Vec<String>> {
    let frames = raw.frames(W4_WARMUP + W4_OPS, |_| get_data(BIG))?;
    let call = |raw: &mut Raw, i: usize| -> BenchResult<()> {
        raw.write(frames.range(i, i + 1))?;
        let (s, e) = raw.reply(frames.xid(i))?;
        check_data(&raw.buf[s..e], BIG_LEN)
    };
    for i in 0..W4_WARMUP {
        call(raw, i)?;
    }
    let meter = Meter::start();
    for i in W4_WARMUP..W4_WARMUP + W4_OPS {
        call(raw, i)?;
    }
    Ok(vec![meter.stop("w4", W4_OPS).to_string()])
}

/// Counts the names of a getChildren reply, walking every length prefix.
fn count_children(reply: &[u8]) -> BenchResult<usize> {
    let bad = || fail("malformed getChildren reply");
    if reply.len() < 20 {
        return Err(bad());
    }
    let n = usize::try_from(be32(reply, 16)).map_err(|_| bad())?;
    let mut at = 20;
    for _ in 0..n {
        let len = reply
            .get(at..at + 4)
            .map(|_| be32(reply, at))
            .and_then(|l| usize::try_from(l).ok())
            .ok_or_else(bad)?;
        at += 4 + len;
    }
    if at == reply.len() {
        Ok(n)
    } else {
        Err(bad())
    }
}

fn w5(raw: &mut Raw) -> BenchResult<Vec<String>> {
    let frames = raw.frames(W5_WARMUP + W5_OPS, |_| {
        Request::GetChildren(PathWatchRequest {
            path: WIDE.to_owned(),
            watch: false,
        })
    })?;
    let call = |raw: &mut Raw, i: usize| -> BenchResult<()> {
        raw.write(frames.range(i, i + 1))?;
        let (s, e) = raw.reply(frames.xid(i))?;
        let n = count_children(&raw.buf[s..e])?;
        if n == WIDE_CHILDREN {
            Ok(())
        } else {
            Err(fail(format!("{WIDE}: {n} children")))
        }
    };
    for i in 0..W5_WARMUP {
        call(raw, i)?;
    }
    let meter = Meter::start();
    for i in W5_WARMUP..W5_WARMUP + W5_OPS {
        call(raw, i)?;
    }
    Ok(vec![meter.stop("w5", W5_OPS).to_string()])
}

fn w6(addr: &str) -> BenchResult<Vec<String>> {
    let mut meter = None;
    for i in 0..W6_WARMUP + W6_OPS {
        if i == W6_WARMUP {
            meter = Some(Meter::start());
        }
        Raw::connect(addr, W6_BUF)?.close()?;
    }
    let meter = meter.ok_or_else(|| fail("no timed sessions"))?;
    Ok(vec![meter.stop("w6", W6_OPS).to_string()])
}
