//! Commands that run a program while owning something in ZooKeeper: `lock` (a distributed
//! `flock`, on kazoo's `Lock` layout so Python services share it) and `elect` (kazoo's
//! `Election`: run while leader).
//!
//! Both wait for ownership, spawn the command with zk's stdin, stdout and stderr, and wait for it.
//! When it ends, they release and exit with its status (a signal N gives 128+N, as a shell
//! reports it). When ownership is lost while it runs (per the loss policy: by default a suspended
//! connection counts, since another process may own the lock by the time this one hears from the
//! ensemble again), they send the command SIGTERM, then SIGKILL after the grace period, and exit
//! with [`EXIT_LOST`]. SIGINT, SIGTERM and SIGHUP sent to zk are forwarded to the command; zk
//! then releases once it ends.

use std::cell::Cell;
use std::future::Future;
use std::process::ExitStatus;
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tokio::process::Child;
use tokio::signal::unix::{signal, SignalKind};
use zk_core::Error;
use zk_tokio::recipes::{Election, Lock, LossPolicy, Ownership, OwnershipState};

use super::{check_path, zk_err, Cmd};
use crate::args::{opt, parse_flags};
use crate::error::{CliError, EXIT_OTHER};
use crate::exec::{Ctx, Flow, Mode};

/// Exit code: `--timeout` passed before the lock was acquired; the command did not run (as
/// `timeout(1)` reports a timeout).
pub const EXIT_TIMEOUT: i32 = 124;
/// Exit code: the lock or the leadership was lost (or may have been, per `--on-suspend`) while
/// the command ran; it was stopped.
pub const EXIT_LOST: i32 = 125;
/// Exit code: the command was found but could not be run (a shell's code for it).
pub const EXIT_CANNOT_RUN: i32 = 126;
/// Exit code: the command was not found (a shell's code for it).
pub const EXIT_NOT_FOUND: i32 = 127;

/// The default of `--grace`: how long the command has after SIGTERM before SIGKILL.
const DEFAULT_GRACE: Duration = Duration::from_secs(10);
/// How long releasing may take once the command has ended. Releasing after a loss may find no
/// server; the node is ephemeral and goes with the session, which zk closes next anyway.
const RELEASE_TIMEOUT: Duration = Duration::from_secs(5);

/// What `lock` and `elect` share: the ownership path, the command, and how a loss is handled.
#[derive(Debug, Clone, PartialEq)]
pub struct Supervised {
    /// The lock or election path.
    pub path: String,
    /// The identifier written as the contender node's data (kazoo's `identifier`).
    pub identifier: String,
    /// The program and its arguments.
    pub command: Vec<String>,
    /// What a suspended connection means: Standard (kill) or SessionOnly (wait).
    pub policy: LossPolicy,
    /// How long the command has after SIGTERM before SIGKILL.
    pub grace: Duration,
}

/// Parses `PATH [flags] -- CMD ARGS...`: the flags in `extra` (value flags) plus the shared
/// `--identifier`, `--on-suspend`, `--grace`. Returns the shared part and the parsed flags.
fn parse_supervised(
    args: &[String],
    extra: &[&'static str],
    usage: &str,
) -> Result<(Supervised, crate::args::Parsed), CliError> {
    // The command starts after the first `--`, so its own flags are never read as ours.
    let Some(split) = args.iter().position(|a| a == "--") else {
        return Err(CliError::usage(
            "missing -- before the command to run",
            usage,
        ));
    };
    let (ours, command) = (&args[..split], &args[split + 1..]);
    if command.is_empty() {
        return Err(CliError::usage(
            "missing the command to run after --",
            usage,
        ));
    }
    // `--flag=value` as well as `--flag value`.
    let ours: Vec<String> = ours
        .iter()
        .flat_map(|a| match a.split_once('=') {
            Some((f, v)) if f.starts_with("--") => vec![f.to_owned(), v.to_owned()],
            _ => vec![a.clone()],
        })
        .collect();
    let mut specs = vec![opt("--identifier"), opt("--on-suspend"), opt("--grace")];
    specs.extend(extra.iter().map(|f| opt(f)));
    let a = parse_flags(&ours, &specs, usage)?;
    let path = match a.positional.as_slice() {
        [] => return Err(CliError::usage("missing path", usage)),
        [p] => p.clone(),
        _ => {
            return Err(CliError::usage(
                "too many arguments before -- (put the command after --)",
                usage,
            ))
        }
    };
    check_path(&path, usage)?;
    let policy = match a.value("--on-suspend") {
        None | Some("kill") => LossPolicy::Standard,
        Some("wait") => LossPolicy::SessionOnly,
        Some(v) => {
            return Err(CliError::usage(
                format!("--on-suspend takes kill or wait, not {v:?}"),
                usage,
            ))
        }
    };
    let grace = match a.value("--grace") {
        None => DEFAULT_GRACE,
        Some(v) => seconds(v, "--grace", usage)?,
    };
    let identifier = a
        .value("--identifier")
        .map(str::to_owned)
        .unwrap_or_else(default_identifier);
    Ok((
        Supervised {
            path,
            identifier,
            command: command.to_vec(),
            policy,
            grace,
        },
        a,
    ))
}

/// Parses a number of seconds (`5`, `0.5`) for `flag`.
fn seconds(v: &str, flag: &str, usage: &str) -> Result<Duration, CliError> {
    match v.parse::<f64>() {
        Ok(s) if (0.0..1e9).contains(&s) => Ok(Duration::from_secs_f64(s)),
        _ => Err(CliError::usage(
            format!("{flag} takes seconds, not {v:?}"),
            usage,
        )),
    }
}

/// `HOST:PID`, so `contenders()` (kazoo's, or ours) says who is queued.
fn default_identifier() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned());
    format!("{host}:{}", std::process::id())
}

/// The signals zk forwards to the command (and that end a wait for ownership).
struct Signals {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    /// Catches SIGINT, SIGTERM and SIGHUP from now on.
    fn catch() -> Result<Signals, CliError> {
        let catch = |kind| {
            signal(kind).map_err(|e| CliError::Other {
                message: format!("cannot catch signals: {e}"),
                code: EXIT_OTHER,
            })
        };
        Ok(Signals {
            int: catch(SignalKind::interrupt())?,
            term: catch(SignalKind::terminate())?,
            hup: catch(SignalKind::hangup())?,
        })
    }

    /// The next signal caught.
    async fn next(&mut self) -> Signal {
        tokio::select! {
            _ = self.int.recv() => Signal::SIGINT,
            _ = self.term.recv() => Signal::SIGTERM,
            _ = self.hup.recv() => Signal::SIGHUP,
        }
    }
}

/// The error for a signal that arrived while waiting for ownership: nothing ran.
fn interrupted_by(sig: Signal) -> CliError {
    match sig {
        Signal::SIGINT => CliError::Interrupted,
        other => CliError::Other {
            message: format!("{}: stopped waiting", other.as_str()),
            code: 128 + other as i32,
        },
    }
}

/// How the supervised command ended.
enum Ended {
    /// On its own (or after a signal zk forwarded).
    Exited(ExitStatus),
    /// After ownership was lost and zk stopped it.
    Lost(OwnershipState, ExitStatus),
}

/// The exit code a shell would report for `status`: the code, or 128 + the signal.
fn shell_code(status: ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(c), _) => c,
        (None, Some(s)) => 128 + s,
        (None, None) => EXIT_OTHER,
    }
}

/// Sends `sig` to the child, if it is still there to receive it.
fn send(child: &Child, sig: Signal) {
    if let Some(pid) = child.id().and_then(|p| i32::try_from(p).ok()) {
        // It may have exited just now; then there is nobody to tell.
        let _ = kill(Pid::from_raw(pid), sig);
    }
}

impl Supervised {
    /// The program's name, for messages.
    fn program(&self) -> &str {
        self.command.first().map_or("", String::as_str)
    }

    /// Whether the connection was suspended while this contender queued, before it took
    /// ownership. The Standard policy's loss signal counts any suspension since the node was
    /// created, so it would stop the command the moment it starts, although ownership was taken
    /// after the connection came back in the same session: the caller releases and queues
    /// again instead (a suspension once it holds is a loss, as the policy says).
    fn suspended_while_queued(&self, own: &Ownership) -> bool {
        self.policy == LossPolicy::Standard && own.was_suspended()
    }

    /// Spawns the command.
    ///
    /// Errors with exit code 127 when it is not found and 126 when it cannot be run.
    fn spawn(&self) -> Result<Child, CliError> {
        let (program, args) = self
            .command
            .split_first()
            .ok_or_else(|| CliError::bad_input("missing the command to run"))?;
        tokio::process::Command::new(program)
            .args(args)
            .spawn()
            .map_err(|e| CliError::Other {
                message: format!("cannot run {program}: {e}"),
                code: if e.kind() == std::io::ErrorKind::NotFound {
                    EXIT_NOT_FOUND
                } else {
                    EXIT_CANNOT_RUN
                },
            })
    }

    /// Runs the command until it ends, its pid in `running` meanwhile (for [`drive`] to forward
    /// signals to); when `lost` resolves first, stops it (SIGTERM, then SIGKILL after the grace
    /// period).
    async fn supervise(
        &self,
        lost: impl Future<Output = OwnershipState>,
        running: &Cell<Option<Pid>>,
    ) -> Result<Ended, CliError> {
        let mut child = self.spawn()?;
        running.set(
            child
                .id()
                .and_then(|p| i32::try_from(p).ok())
                .map(Pid::from_raw),
        );
        let ended = self.watch(&mut child, lost).await;
        // Reaped (or failed): nothing to forward to any more, and the pid may be reused.
        running.set(None);
        ended
    }

    /// Waits for `child`; on a loss, SIGTERM at once and SIGKILL once the grace period is over.
    async fn watch(
        &self,
        child: &mut Child,
        lost: impl Future<Output = OwnershipState>,
    ) -> Result<Ended, CliError> {
        let mut lost = std::pin::pin!(lost);
        let mut loss: Option<OwnershipState> = None;
        let kill_at = tokio::time::sleep(Duration::MAX);
        let mut kill_at = std::pin::pin!(kill_at);
        let mut killed = false;
        loop {
            tokio::select! {
                status = child.wait() => {
                    let status = status.map_err(|e| CliError::Other {
                        message: format!("waiting for {}: {e}", self.program()),
                        code: EXIT_OTHER,
                    })?;
                    return Ok(match loss {
                        Some(state) => Ended::Lost(state, status),
                        None => Ended::Exited(status),
                    });
                }
                state = &mut lost, if loss.is_none() => {
                    let why = match state {
                        OwnershipState::MaybeLost => "the connection to ZooKeeper was suspended (--on-suspend=wait to wait for the session instead)",
                        _ => "the session ended",
                    };
                    eprintln!(
                        "zk: lost ownership of {}: {why}; stopping {} (SIGTERM, SIGKILL after {} s)",
                        self.path,
                        self.program(),
                        self.grace.as_secs_f64()
                    );
                    loss = Some(state);
                    send(child, Signal::SIGTERM);
                    kill_at.as_mut().reset(tokio::time::Instant::now() + self.grace);
                }
                () = &mut kill_at, if loss.is_some() && !killed => {
                    killed = true;
                    send(child, Signal::SIGKILL);
                }
            }
        }
    }
}

/// Runs `fut` (waiting for ownership, then the command) while catching SIGINT, SIGTERM and
/// SIGHUP: while a command runs (its pid in `running`) they are forwarded to it; before, they
/// cancel the wait (dropping `fut` deletes the contender node) and nothing runs.
async fn drive<T>(
    fut: impl Future<Output = T>,
    running: &Cell<Option<Pid>>,
    signals: &mut Signals,
) -> Result<T, CliError> {
    let mut fut = std::pin::pin!(fut);
    loop {
        tokio::select! {
            out = &mut fut => return Ok(out),
            sig = signals.next() => match running.get() {
                // It may have exited just now; then there is nobody to tell.
                Some(pid) => {
                    let _ = kill(pid, sig);
                }
                None => return Err(interrupted_by(sig)),
            },
        }
    }
}

/// Turns the end of the command into zk's result: its status, or [`EXIT_LOST`].
fn outcome(ended: Ended, what: &str) -> Result<Flow, CliError> {
    match ended {
        Ended::Exited(status) => match shell_code(status) {
            0 => Ok(Flow::Continue),
            code => Err(CliError::Exit(code)),
        },
        Ended::Lost(state, status) => Err(CliError::Other {
            message: format!(
                "{what} was {} while the command ran; it was stopped (exit status {})",
                match state {
                    OwnershipState::MaybeLost => "maybe lost (connection suspended)",
                    _ => "lost (session ended)",
                },
                shell_code(status)
            ),
            code: EXIT_LOST,
        }),
    }
}

fn one_shot_only(name: &str) -> CliError {
    CliError::bad_input(format!(
        "{name} runs a command and exits: use it one-shot (zk {name} PATH -- CMD ARGS...)"
    ))
}

/// `lock`: run a command while holding a kazoo-layout lock.
#[derive(Debug, Clone, PartialEq)]
pub struct LockCmd {
    /// The shared part.
    pub run: Supervised,
    /// `--timeout`: how long to wait for the lock (forever without it).
    pub timeout: Option<Duration>,
}

impl Cmd for LockCmd {
    const NAME: &'static str = "lock";
    const USAGE: &'static str = "lock PATH [--timeout SECS] [--identifier ID] [--on-suspend kill|wait] [--grace SECS] -- CMD [ARGS...]";
    const SUMMARY: &'static str = "run CMD while holding the lock PATH (kazoo's Lock layout), like flock; exit with its status";

    fn parse(args: &[String]) -> Result<Self, CliError> {
        let (run, a) = parse_supervised(args, &["--timeout"], Self::USAGE)?;
        let timeout = a
            .value("--timeout")
            .map(|v| seconds(v, "--timeout", Self::USAGE))
            .transpose()?;
        Ok(LockCmd { run, timeout })
    }

    fn target(&self) -> &str {
        &self.run.path
    }

    fn handles_interrupt(&self) -> bool {
        true
    }

    async fn run(self, ctx: &mut Ctx) -> Result<Flow, CliError> {
        if ctx.mode == Mode::Shell {
            return Err(one_shot_only(Self::NAME));
        }
        let zk = zk_err(Cmd::context(&self));
        let run = &self.run;
        let mut signals = Signals::catch()?;
        let running = Cell::new(None);
        let client = ctx.client()?;
        let mut lock = Lock::new(client, &run.path, &run.identifier).with_policy(run.policy);
        let held = async {
            let deadline = self.timeout.map(|t| tokio::time::Instant::now() + t);
            let lost = loop {
                let acquired = match deadline {
                    Some(d) => {
                        let left = d.saturating_duration_since(tokio::time::Instant::now());
                        lock.acquire_timeout(left).await.map_err(&zk)?
                    }
                    None => lock.acquire().await.map(|()| true).map_err(&zk)?,
                };
                if !acquired {
                    return Err(CliError::Other {
                        message: format!(
                            "timed out after {} s waiting for the lock {}; {} did not run",
                            self.timeout.unwrap_or_default().as_secs_f64(),
                            run.path,
                            run.program()
                        ),
                        code: EXIT_TIMEOUT,
                    });
                }
                let own = lock
                    .ownership()
                    .ok_or_else(|| zk(Error::Protocol("acquired without ownership".into())))?;
                if run.suspended_while_queued(own) {
                    let _ = lock.release().await;
                    continue;
                }
                break own.lost();
            };
            let ended = run.supervise(lost, &running).await;
            // Released whatever happened to the command; bounded, since after a loss there may
            // be no server to answer.
            let _ = tokio::time::timeout(RELEASE_TIMEOUT, lock.release()).await;
            ended
        };
        let ended = drive(held, &running, &mut signals).await??;
        outcome(ended, &format!("the lock {}", run.path))
    }
}

/// `elect`: run a command while leader of a kazoo-layout election.
#[derive(Debug, Clone, PartialEq)]
pub struct ElectCmd {
    /// The shared part.
    pub run: Supervised,
}

impl Cmd for ElectCmd {
    const NAME: &'static str = "elect";
    const USAGE: &'static str =
        "elect PATH [--identifier ID] [--on-suspend kill|wait] [--grace SECS] -- CMD [ARGS...]";
    const SUMMARY: &'static str = "wait to be elected leader at PATH (kazoo's Election), run CMD while leader, then step down";

    fn parse(args: &[String]) -> Result<Self, CliError> {
        let (run, _) = parse_supervised(args, &[], Self::USAGE)?;
        Ok(ElectCmd { run })
    }

    fn target(&self) -> &str {
        &self.run.path
    }

    fn handles_interrupt(&self) -> bool {
        true
    }

    async fn run(self, ctx: &mut Ctx) -> Result<Flow, CliError> {
        if ctx.mode == Mode::Shell {
            return Err(one_shot_only(Self::NAME));
        }
        let zk = zk_err(Cmd::context(&self));
        let run = &self.run;
        let mut signals = Signals::catch()?;
        let running = Cell::new(None);
        let client = ctx.client()?;
        let mut election =
            Election::new(client, &run.path, &run.identifier).with_policy(run.policy);
        let ended = loop {
            // Election::run steps down (deletes the node) once the command has ended.
            let leading = election.run(|own| {
                let running = &running;
                async move {
                    if run.suspended_while_queued(&own) {
                        return None;
                    }
                    Some(run.supervise(own.lost(), running).await)
                }
            });
            match drive(leading, &running, &mut signals).await?.map_err(&zk)? {
                Some(ended) => break ended?,
                // Stepped down: stand again.
                None => continue,
            }
        };
        outcome(ended, &format!("the leadership of {}", run.path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &[&str]) -> Vec<String> {
        s.iter().map(|w| (*w).to_owned()).collect()
    }

    #[test]
    fn parses_lock_and_elect() {
        let l = LockCmd::parse(&words(&[
            "/locks/a",
            "--timeout=2.5",
            "--identifier",
            "me",
            "--",
            "sh",
            "-c",
            "exit 3",
        ]))
        .unwrap();
        assert_eq!(l.timeout, Some(Duration::from_millis(2500)));
        assert_eq!(l.run.identifier, "me");
        assert_eq!(l.run.command, words(&["sh", "-c", "exit 3"]));
        assert_eq!(l.run.policy, LossPolicy::Standard);
        assert_eq!(l.run.grace, DEFAULT_GRACE);
        // The command's own flags and `--` are its own.
        let e = ElectCmd::parse(&words(&[
            "--on-suspend",
            "wait",
            "--grace",
            "1",
            "/e",
            "--",
            "ls",
            "--timeout",
            "--",
        ]))
        .unwrap();
        assert_eq!(e.run.policy, LossPolicy::SessionOnly);
        assert_eq!(e.run.grace, Duration::from_secs(1));
        assert_eq!(e.run.command, words(&["ls", "--timeout", "--"]));
        assert!(e
            .run
            .identifier
            .ends_with(&format!(":{}", std::process::id())));
        for bad in [
            &["/a", "sh"][..],
            &["/a", "--"],
            &["--", "sh"],
            &["a", "--", "sh"],
            &["/a", "/b", "--", "sh"],
            &["/a", "--timeout", "x", "--", "sh"],
            &["/a", "--on-suspend", "maybe", "--", "sh"],
        ] {
            let err = LockCmd::parse(&words(bad)).unwrap_err();
            assert_eq!(err.exit_code(), 1, "{bad:?}");
        }
        // elect has no --timeout.
        assert!(ElectCmd::parse(&words(&["/e", "--timeout", "1", "--", "sh"])).is_err());
    }

    #[test]
    fn exit_statuses_read_like_a_shell() {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(shell_code(ExitStatus::from_raw(7 << 8)), 7);
        assert_eq!(shell_code(ExitStatus::from_raw(15)), 143);
        assert_eq!(shell_code(ExitStatus::from_raw(9)), 137);
    }
}
