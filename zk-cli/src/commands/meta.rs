//! Commands about `zk` itself and the shell: connect, version, help, quit.

use serde_json::{json, Value};

use super::{find, one_arg, Cmd, COMMANDS};
use crate::args::parse_flags;
use crate::error::CliError;
use crate::exec::{connect, Ctx, Flow, Mode};

/// `connect`.
#[derive(Debug, Clone, PartialEq)]
pub struct Connect {
    /// The new connect string.
    pub server: String,
}

impl Cmd for Connect {
    const NAME: &'static str = "connect";
    const USAGE: &'static str = "connect host:port[,host:port...][/chroot]";
    const SUMMARY: &'static str = "(shell) switch to other servers";

    fn parse(args: &[String]) -> Result<Self, CliError> {
        let a = parse_flags(args, &[], Self::USAGE)?;
        Ok(Connect {
            server: one_arg(&a, "missing servers", Self::USAGE)?,
        })
    }

    fn target(&self) -> &str {
        &self.server
    }

    fn changes_session(&self) -> bool {
        true
    }

    async fn run(self, ctx: &mut Ctx) -> Result<Flow, CliError> {
        if ctx.mode == Mode::OneShot {
            return Err(CliError::bad_input(
                "connect works in the shell; in one-shot mode pass -server HOST:PORT",
            ));
        }
        let new = connect(&ctx.opts, &self.server).await?;
        ctx.watches.clear();
        if let Some(old) = ctx.client.replace(new) {
            old.close().await;
        }
        ctx.out
            .emit_quiet(json!({"server": self.server, "connected": true}));
        ctx.opts.server = self.server;
        Ok(Flow::Continue)
    }
}

/// `version`.
#[derive(Debug, Clone, PartialEq)]
pub struct Version;

impl Cmd for Version {
    const NAME: &'static str = "version";
    const USAGE: &'static str = "version";
    const SUMMARY: &'static str = "print zk's version";

    fn parse(_args: &[String]) -> Result<Self, CliError> {
        Ok(Version)
    }

    fn needs_session(&self) -> bool {
        false
    }

    async fn run(self, ctx: &mut Ctx) -> Result<Flow, CliError> {
        ctx.out.emit(
            &format!("zk {}", env!("CARGO_PKG_VERSION")),
            json!({"version": env!("CARGO_PKG_VERSION")}),
        );
        Ok(Flow::Continue)
    }
}

/// `help`.
#[derive(Debug, Clone, PartialEq)]
pub struct Help {
    /// A command to describe.
    pub topic: Option<String>,
}

impl Cmd for Help {
    const NAME: &'static str = "help";
    const USAGE: &'static str = "help [command]";
    const SUMMARY: &'static str = "list the commands, or describe one";

    fn parse(args: &[String]) -> Result<Self, CliError> {
        Ok(Help {
            topic: args.first().cloned(),
        })
    }

    fn needs_session(&self) -> bool {
        false
    }

    async fn run(self, ctx: &mut Ctx) -> Result<Flow, CliError> {
        let text = match self.topic.as_deref() {
            None => crate::help_text(),
            Some(t) => match find(t) {
                Some(c) => format!("{}\n  {}", c.usage, c.summary),
                None => return Err(CliError::bad_input(format!("no command named {t:?}"))),
            },
        };
        let list: Vec<Value> = COMMANDS
            .iter()
            .map(|c| json!({"name": c.name, "usage": c.usage, "summary": c.summary}))
            .collect();
        ctx.out.emit(&text, json!({"commands": list}));
        Ok(Flow::Continue)
    }
}

/// `quit` / `exit`.
#[derive(Debug, Clone, PartialEq)]
pub struct Quit;

impl Cmd for Quit {
    const NAME: &'static str = "quit";
    const USAGE: &'static str = "quit";
    const SUMMARY: &'static str = "leave the shell";

    fn parse(_args: &[String]) -> Result<Self, CliError> {
        Ok(Quit)
    }

    fn needs_session(&self) -> bool {
        false
    }

    async fn run(self, _ctx: &mut Ctx) -> Result<Flow, CliError> {
        Ok(Flow::Quit)
    }
}
