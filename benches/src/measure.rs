//! The clocks of BENCH-SPEC.md and the lines it prints.
//!
//! A [`Meter`] is started right before a timed phase and stopped right after it: wall time from
//! the monotonic clock, client CPU as user+sys of the whole process (all threads) from
//! getrusage(RUSAGE_SELF), server CPU as user+sys ticks of `/proc/$ZKB_SERVER_PID/stat`. Nothing
//! is printed while a phase runs; the lines are written once it is over.

use std::fmt;
use std::time::{Duration, Instant};

use nix::sys::resource::{getrusage, UsageWho};
use nix::unistd::{sysconf, SysconfVar};

/// User+sys CPU time of this process, all threads.
pub fn process_cpu() -> Duration {
    match getrusage(UsageWho::RUSAGE_SELF) {
        Ok(u) => timeval(u.user_time()) + timeval(u.system_time()),
        Err(_) => Duration::ZERO,
    }
}

fn timeval(t: nix::sys::time::TimeVal) -> Duration {
    Duration::from_secs(t.tv_sec().max(0) as u64) + Duration::from_micros(t.tv_usec().max(0) as u64)
}

/// The server's pid from `ZKB_SERVER_PID`, if set and numeric.
pub fn server_pid() -> Option<u32> {
    std::env::var("ZKB_SERVER_PID").ok()?.trim().parse().ok()
}

/// User+sys CPU seconds of process `pid` from `/proc/<pid>/stat` (fields 14 and 15, in clock
/// ticks), or `None` if it cannot be read.
pub fn proc_cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces: count from after it.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3, so field 14 is index 11 and field 15 index 12.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    let tck = sysconf(SysconfVar::CLK_TCK).ok().flatten().unwrap_or(100);
    Some((utime + stime) as f64 / tck.max(1) as f64)
}

/// Measures one timed phase.
#[derive(Debug)]
pub struct Meter {
    wall: Instant,
    cpu: Duration,
    server_pids: Vec<u32>,
    server: Option<f64>,
}

impl Meter {
    /// Starts the clocks, with the server CPU of `ZKB_SERVER_PID`. Read the server's counter
    /// first, so the client's own clocks start as close to the phase as possible.
    pub fn start() -> Meter {
        Meter::start_servers(server_pid().into_iter().collect())
    }

    /// Starts the clocks, with the server CPU summed over `pids` (W8: the servers that stay
    /// up); none gives -1.
    pub fn start_servers(server_pids: Vec<u32>) -> Meter {
        let server = sum_cpu(&server_pids);
        let cpu = process_cpu();
        Meter {
            wall: Instant::now(),
            cpu,
            server_pids,
            server,
        }
    }

    /// Stops the clocks: the phase `name` did `ops` operations.
    pub fn stop(self, name: &str, ops: usize) -> Phase {
        let wall = self.wall.elapsed();
        let cpu = process_cpu().saturating_sub(self.cpu);
        let server = match self.server {
            Some(before) => sum_cpu(&self.server_pids).map(|after| after - before),
            None => None,
        };
        Phase {
            name: name.to_owned(),
            ops,
            wall,
            client_cpu: cpu,
            server_cpu: server,
        }
    }
}

/// User+sys CPU seconds of every process in `pids` together; `None` if there are none or one
/// cannot be read.
fn sum_cpu(pids: &[u32]) -> Option<f64> {
    if pids.is_empty() {
        return None;
    }
    pids.iter().map(|&p| proc_cpu_seconds(p)).sum()
}

/// One `PHASE` line.
#[derive(Debug, Clone)]
pub struct Phase {
    /// The phase's name (`w1`, `w3_create`, ...).
    pub name: String,
    /// Operations done.
    pub ops: usize,
    /// Monotonic wall time.
    pub wall: Duration,
    /// Client CPU, all threads.
    pub client_cpu: Duration,
    /// Server CPU, when ZKB_SERVER_PID is set.
    pub server_cpu: Option<f64>,
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "PHASE {} {} {:.6} {:.6} ",
            self.name,
            self.ops,
            self.wall.as_secs_f64(),
            self.client_cpu.as_secs_f64()
        )?;
        match self.server_cpu {
            Some(s) => write!(f, "{s:.6}"),
            None => f.write_str("-1"),
        }
    }
}

/// Per-operation latencies of W1, and the `LAT` line.
#[derive(Debug, Default)]
pub struct Latencies(Vec<Duration>);

impl Latencies {
    /// Room for `n` samples, so recording never allocates during the phase.
    pub fn with_capacity(n: usize) -> Self {
        Latencies(Vec::with_capacity(n))
    }

    /// Records one operation's latency.
    pub fn push(&mut self, d: Duration) {
        self.0.push(d);
    }

    /// The `LAT` line: p50 = lat[n*50/100], p99 = lat[min(n*99/100, n-1)] of the sorted samples,
    /// in µs.
    pub fn line(mut self, workload: &str) -> String {
        self.0.sort_unstable();
        let n = self.0.len();
        if n == 0 {
            return format!("LAT {workload} -1 -1");
        }
        let us = |d: Duration| d.as_secs_f64() * 1e6;
        let p50 = self.0[n * 50 / 100];
        let p99 = self.0[(n * 99 / 100).min(n - 1)];
        format!("LAT {workload} {:.1} {:.1}", us(p50), us(p99))
    }
}
