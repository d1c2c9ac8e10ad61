//! Commands on watches: addWatch, removewatches, watch.

use serde_json::json;
use zk_core::proto::AddWatchMode;
use zk_tokio::WatcherType;

use super::{one_path, watch_mode, zk_err, Cmd};
use crate::args::{flag, opt, parse_flags};
use crate::error::CliError;
use crate::exec::{Ctx, Flow, Mode};

/// Which watch `removewatches` removes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchKind {
    /// Child watches (`ls -w`).
    Child,
    /// Data and exists watches (`get -w`, `stat -w`, `config -w`).
    Data,
    /// Every kind, persistent ones included.
    Any,
}

/// zkCli's name of a persistent watch mode.
fn mode_name(mode: AddWatchMode) -> &'static str {
    match mode {
        AddWatchMode::Persistent => "PERSISTENT",
        _ => "PERSISTENT_RECURSIVE",
    }
}

/// `addWatch`.
#[derive(Debug, Clone, PartialEq)]
pub struct AddWatch {
    /// The node.
    pub path: String,
    /// `-m`.
    pub mode: AddWatchMode,
}

impl Cmd for AddWatch {
    const NAME: &'static str = "addWatch";
    const USAGE: &'static str = "addWatch [-m mode] path";
    const SUMMARY: &'static str =
        "add a persistent watch; mode PERSISTENT or PERSISTENT_RECURSIVE (default) (3.6+)";

    fn parse(args: &[String]) -> Result<Self, CliError> {
        let a = parse_flags(args, &[opt("-m")], Self::USAGE)?;
        Ok(AddWatch {
            path: one_path(&a, Self::USAGE)?,
            mode: watch_mode(a.value("-m"), Self::USAGE)?,
        })
    }

    fn target(&self) -> &str {
        &self.path
    }

    fn interrupt_is_success(&self, mode: Mode) -> bool {
        // One-shot, it streams events until Ctrl-C; in the shell it returns at once.
        mode == Mode::OneShot
    }

    async fn run(self, ctx: &mut Ctx) -> Result<Flow, CliError> {
        let zk = zk_err(Cmd::context(&self));
        let AddWatch { path, mode } = self;
        let watch = ctx.client()?.add_watch(&path, mode).await.map_err(zk)?;
        match ctx.mode {
            Mode::Shell => {
                ctx.spawn_persistent(watch, &path);
                ctx.out
                    .emit_quiet(json!({"path": path, "mode": mode_name(mode)}));
            }
            Mode::OneShot => ctx.stream(watch, &path, mode, None, true).await?,
        }
        Ok(Flow::Continue)
    }
}

/// `removewatches`.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoveWatches {
    /// The node.
    pub path: String,
    /// `-c`, `-d` or `-a`.
    pub kind: WatchKind,
    /// `-l`.
    pub local: bool,
}

impl Cmd for RemoveWatches {
    const NAME: &'static str = "removewatches";
    const USAGE: &'static str = "removewatches path [-c|-d|-a] [-l]";
    const SUMMARY: &'static str = "remove this session's watches on path (-c child, -d data, -a any; -l also if the server is unreachable)";

    fn parse(args: &[String]) -> Result<Self, CliError> {
        let usage = Self::USAGE;
        let a = parse_flags(
            args,
            &[flag("-c"), flag("-d"), flag("-a"), flag("-l")],
            usage,
        )?;
        let kinds = [a.has("-c"), a.has("-d"), a.has("-a")];
        if kinds.iter().filter(|k| **k).count() > 1 {
            return Err(CliError::usage("give one of -c, -d, -a", usage));
        }
        Ok(RemoveWatches {
            path: one_path(&a, usage)?,
            kind: if a.has("-c") {
                WatchKind::Child
            } else if a.has("-d") {
                WatchKind::Data
            } else {
                WatchKind::Any
            },
            local: a.has("-l"),
        })
    }

    fn target(&self) -> &str {
        &self.path
    }

    async fn run(self, ctx: &mut Ctx) -> Result<Flow, CliError> {
        let zk = zk_err(Cmd::context(&self));
        let RemoveWatches { path, kind, local } = self;
        let watcher_type = match kind {
            WatchKind::Child => WatcherType::Children,
            WatchKind::Data => WatcherType::Data,
            WatchKind::Any => WatcherType::Any,
        };
        // The server first: dropping a local watcher could itself remove the server's.
        let result = ctx.client()?.remove_watches(&path, watcher_type).await;
        // The printing tasks of the shell end on their own once the server confirms;
        // with -l they go even when the server cannot be asked.
        let local_removed = ctx.watches.remove(&path, kind);
        match result {
            Ok(()) => {}
            Err(e) if local && local_removed > 0 && e.is_indeterminate() => {}
            Err(e) => return Err(zk(e)),
        }
        ctx.out.emit_quiet(json!({"path": path, "removed": true}));
        Ok(Flow::Continue)
    }
}

/// `watch`.
#[derive(Debug, Clone, PartialEq)]
pub struct Watch {
    /// The node.
    pub path: String,
    /// `-m`.
    pub mode: AddWatchMode,
    /// `--count`.
    pub count: Option<u64>,
}

impl Cmd for Watch {
    const NAME: &'static str = "watch";
    const USAGE: &'static str = "watch [-m mode] [--count N] path";
    const SUMMARY: &'static str =
        "print events under path as they happen, until Ctrl-C or N events (3.6+)";

    fn parse(args: &[String]) -> Result<Self, CliError> {
        let usage = Self::USAGE;
        let a = parse_flags(args, &[opt("-m"), opt("--count"), opt("-n")], usage)?;
        let count = match a.value("--count").or(a.value("-n")) {
            None => None,
            Some(n) => match n.parse::<u64>() {
                Ok(n) if n > 0 => Some(n),
                _ => {
                    return Err(CliError::usage(
                        format!("--count takes a number of events (> 0), not {n:?}"),
                        usage,
                    ))
                }
            },
        };
        Ok(Watch {
            path: one_path(&a, usage)?,
            mode: watch_mode(a.value("-m"), usage)?,
            count,
        })
    }

    fn target(&self) -> &str {
        &self.path
    }

    fn interrupt_is_success(&self, _mode: Mode) -> bool {
        true
    }

    async fn run(self, ctx: &mut Ctx) -> Result<Flow, CliError> {
        let zk = zk_err(Cmd::context(&self));
        let watch = ctx
            .client()?
            .add_watch(&self.path, self.mode)
            .await
            .map_err(zk)?;
        ctx.stream(watch, &self.path, self.mode, self.count, false)
            .await?;
        Ok(Flow::Continue)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::tests::w;

    fn args(line: &str) -> Vec<String> {
        w(line).into_iter().skip(1).collect()
    }

    #[test]
    fn parses_watch_commands() {
        assert!(matches!(
            RemoveWatches::parse(&args("removewatches /a -c")).unwrap(),
            RemoveWatches {
                kind: WatchKind::Child,
                ..
            }
        ));
        assert!(matches!(
            Watch::parse(&args("watch --count 3 -m PERSISTENT /a")).unwrap(),
            Watch {
                count: Some(3),
                mode: AddWatchMode::Persistent,
                ..
            }
        ));
    }
}
