//! Loopback ports for server nodes, safe across threads and across processes.
//!
//! Each node needs three ports (client, quorum, election) that must stay its own for the node's
//! whole life, through stops and restarts. Binding port 0 and handing the number on is racy
//! (the port is free again the moment the probe socket closes, and anyone may take it before the
//! JVM binds it), and it yields ports from the kernel's ephemeral range (32768-60999 on Linux),
//! where every outgoing connection on the machine also takes its local port.
//!
//! So ports come in blocks of [`BLOCK`] consecutive ports in `BASE..LIMIT`, below the ephemeral
//! range. A block is claimed through a small file protocol in a directory shared by every process
//! of the machine (`$TMPDIR/zk-rs-ports`):
//!
//! 1. create `b<block>-<pid>` with `create_new` (fails if this process already holds the block);
//! 2. list the directory: if any other `b<block>-<pid>` file names a live process, delete ours
//!    and try the next block; files of dead processes (a test run killed with SIGKILL) are
//!    deleted as they are found.
//!
//! Two claimants can never both win: whichever lists second sees the other's file. (Both may back
//! off, which only costs a step.) Finally every port of the block must be bindable on 127.0.0.1
//! right now, which keeps out programs that are not part of this protocol. The search starts at a
//! block derived from the PID and a per-process counter so that concurrent claimants rarely meet.

use std::fs::{self, OpenOptions};
use std::io;
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{self, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Ports per block: client, quorum, election.
pub(crate) const BLOCK: u16 = 3;
/// First port handed out. Below it sit many well-known services (e.g. 2181 of a local ZooKeeper).
const BASE: u16 = 20000;
/// One past the last port handed out; the Linux ephemeral range starts at 32768.
const LIMIT: u16 = 32700;

/// Spreads the starting blocks of successive claims in one process.
static NEXT: AtomicUsize = AtomicUsize::new(0);

/// A claimed block of ports; the claim is released on drop.
#[derive(Debug)]
pub(crate) struct PortBlock {
    first: u16,
    lock: PathBuf,
}

impl PortBlock {
    /// Claims a free block. Errors only when every block is taken or the lock directory cannot
    /// be created.
    pub(crate) fn claim() -> io::Result<PortBlock> {
        let dir = claim_dir();
        fs::create_dir_all(&dir)?;
        let blocks = usize::from((LIMIT - BASE) / BLOCK);
        let pid = process::id() as usize;
        // Multiplying by a prime spreads neighbouring PIDs far apart; the counter times another
        // prime keeps claims of one process apart from each other's neighbourhoods.
        let start = pid.wrapping_mul(7919) + NEXT.fetch_add(1, Ordering::Relaxed) * 37;
        for step in 0..blocks {
            let block = (start + step) % blocks;
            if let Some(claimed) = try_claim(&dir, block)? {
                return Ok(claimed);
            }
        }
        Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            format!("no free block of {BLOCK} loopback ports in {BASE}..{LIMIT}"),
        ))
    }

    /// The `i`th port of the block (`i < BLOCK`).
    pub(crate) fn port(&self, i: u16) -> u16 {
        self.first + i.min(BLOCK - 1)
    }
}

/// The directory shared by every process's claim files.
pub(crate) fn claim_dir() -> PathBuf {
    std::env::temp_dir().join("zk-rs-ports")
}

impl Drop for PortBlock {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.lock);
    }
}

fn try_claim(dir: &Path, block: usize) -> io::Result<Option<PortBlock>> {
    let prefix = format!("b{block}-");
    let mine = dir.join(format!("{prefix}{}", process::id()));
    match OpenOptions::new().write(true).create_new(true).open(&mine) {
        Ok(_) => {}
        // Another thread of this process holds the block.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(None),
        Err(e) => return Err(e),
    }
    let claimed = PortBlock {
        // `block < (LIMIT - BASE) / BLOCK`, so this stays below LIMIT.
        first: BASE + block as u16 * BLOCK,
        lock: mine,
    };
    for entry in fs::read_dir(dir)? {
        let name = entry?.file_name();
        let Some(owner) = name
            .to_str()
            .and_then(|n| n.strip_prefix(&prefix))
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if owner == process::id() {
            continue;
        }
        if process_alive(owner) {
            return Ok(None); // `claimed` drops here and removes our file.
        }
        let _ = fs::remove_file(dir.join(&name));
    }
    let bindable =
        (0..BLOCK).all(|i| TcpListener::bind((Ipv4Addr::LOCALHOST, claimed.port(i))).is_ok());
    Ok(bindable.then_some(claimed))
}

/// Whether a process with this PID exists (a recycled PID reads as alive: the safe side).
fn process_alive(pid: u32) -> bool {
    let proc_dir = Path::new("/proc");
    if proc_dir.join("self").exists() {
        return proc_dir.join(pid.to_string()).exists();
    }
    // No procfs (e.g. macOS): ask kill(1). Only "no such process" means dead; EPERM (another
    // user's process) or kill failing to run at all count as alive.
    match Command::new("kill")
        .args(["-0", &pid.to_string()])
        .stdout(Stdio::null())
        .output()
    {
        Ok(out) => {
            out.status.success()
                || !String::from_utf8_lossy(&out.stderr)
                    .to_ascii_lowercase()
                    .contains("no such process")
        }
        Err(_) => true,
    }
}
