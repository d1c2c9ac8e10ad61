//! The commands. Each is one unit: a type implementing [`Cmd`] (its name, usage line, summary,
//! how to parse its words into itself, and how to run), in a module per family ([`node`],
//! [`watch`], [`acl`], [`admin`], [`txn`], [`recipes`], [`meta`]). [`COMMANDS`] lists them in the order
//! `help` shows them; adding a command is one type and one entry there.

use std::fmt::Debug;
use std::future::Future;
use std::pin::Pin;

use zk_core::proto::{Acl, AddWatchMode, Id, Perms};
use zk_core::Error;

use crate::args::Parsed as Flags;
use crate::error::CliError;
use crate::exec::{Ctx, Flow, Mode};

pub mod acl;
pub mod admin;
pub mod meta;
pub mod node;
pub mod recipes;
pub mod txn;
pub mod watch;

/// One command: what `help` says about it, how its words parse, and how it runs.
pub trait Cmd: Debug + Sized + 'static {
    /// The name typed.
    const NAME: &'static str;
    /// The usage line.
    const USAGE: &'static str;
    /// What it does, in one line.
    const SUMMARY: &'static str;

    /// Parses the words after the command's name.
    ///
    /// Errors with a usage error (the dispatcher adds the command's name to its message).
    fn parse(args: &[String]) -> Result<Self, CliError>;

    /// Runs the command with the session and output of `ctx`.
    ///
    /// Errors with the command's [`CliError`]; the caller prints it.
    fn run(self, ctx: &mut Ctx) -> impl Future<Output = Result<Flow, CliError>>;

    /// The node (or other word) the command is about, named in path-less error messages.
    fn target(&self) -> &str {
        ""
    }

    /// Whether it needs a session before it runs (one-shot mode connects only then).
    fn needs_session(&self) -> bool {
        true
    }

    /// Whether Ctrl-C is how it is meant to end in `mode` (a stream of events): exit 0, not 130.
    fn interrupt_is_success(&self, _mode: Mode) -> bool {
        false
    }

    /// Whether it replaces the shell's session (`connect`), so the shell re-subscribes.
    fn changes_session(&self) -> bool {
        false
    }

    /// Whether it handles SIGINT (and SIGTERM) itself, e.g. to forward it to a program it runs;
    /// otherwise one-shot mode stops it at Ctrl-C and exits 130.
    fn handles_interrupt(&self) -> bool {
        false
    }

    /// The command and its target, e.g. `get /x`, for errors whose message names no path.
    fn context(&self) -> String {
        match self.target() {
            "" => Self::NAME.to_owned(),
            t => format!("{} {t}", Self::NAME),
        }
    }
}

/// The future of a type-erased command run.
pub type RunFuture<'a> = Pin<Box<dyn Future<Output = Result<Flow, CliError>> + 'a>>;

/// A parsed command of any type, ready to run: [`Cmd`] with the type erased.
pub trait Parsed: Debug {
    /// See [`Cmd::needs_session`].
    fn needs_session(&self) -> bool;
    /// See [`Cmd::interrupt_is_success`].
    fn interrupt_is_success(&self, mode: Mode) -> bool;
    /// See [`Cmd::changes_session`].
    fn changes_session(&self) -> bool;
    /// See [`Cmd::handles_interrupt`].
    fn handles_interrupt(&self) -> bool;
    /// Runs it (see [`Cmd::run`]).
    fn run<'a>(self: Box<Self>, ctx: &'a mut Ctx) -> RunFuture<'a>;
}

impl<C: Cmd> Parsed for C {
    fn needs_session(&self) -> bool {
        Cmd::needs_session(self)
    }
    fn interrupt_is_success(&self, mode: Mode) -> bool {
        Cmd::interrupt_is_success(self, mode)
    }
    fn changes_session(&self) -> bool {
        Cmd::changes_session(self)
    }
    fn handles_interrupt(&self) -> bool {
        Cmd::handles_interrupt(self)
    }
    fn run<'a>(self: Box<Self>, ctx: &'a mut Ctx) -> RunFuture<'a> {
        Box::pin(Cmd::run(*self, ctx))
    }
}

/// One row of the command table.
#[derive(Clone, Copy)]
pub struct Spec {
    /// The name typed.
    pub name: &'static str,
    /// The usage line.
    pub usage: &'static str,
    /// What it does, in one line.
    pub summary: &'static str,
    /// Parses the words after the name.
    parse: ParseFn,
}

/// Parses a command's words into the command, type-erased.
type ParseFn = fn(&[String]) -> Result<Box<dyn Parsed>, CliError>;

impl Debug for Spec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spec").field("name", &self.name).finish()
    }
}

fn parse_boxed<C: Cmd>(args: &[String]) -> Result<Box<dyn Parsed>, CliError> {
    Ok(Box::new(C::parse(args)?))
}

/// The table row of command type `C`.
const fn spec<C: Cmd>() -> Spec {
    Spec {
        name: C::NAME,
        usage: C::USAGE,
        summary: C::SUMMARY,
        parse: parse_boxed::<C>,
    }
}

/// Every command, in the order `help` lists them.
pub const COMMANDS: &[Spec] = &[
    spec::<node::Ls>(),
    spec::<node::Create>(),
    spec::<node::Get>(),
    spec::<node::Set>(),
    spec::<node::Stat>(),
    spec::<node::Delete>(),
    spec::<node::DeleteAll>(),
    spec::<node::Sync>(),
    spec::<acl::GetAcl>(),
    spec::<acl::SetAcl>(),
    spec::<acl::AddAuth>(),
    spec::<acl::WhoAmI>(),
    spec::<node::GetEphemerals>(),
    spec::<node::GetAllChildrenNumber>(),
    spec::<watch::AddWatch>(),
    spec::<watch::RemoveWatches>(),
    spec::<admin::Config>(),
    spec::<admin::Reconfig>(),
    spec::<watch::Watch>(),
    spec::<node::Tree>(),
    spec::<txn::Txn>(),
    spec::<recipes::LockCmd>(),
    spec::<recipes::ElectCmd>(),
    spec::<admin::FourLetter>(),
    spec::<admin::Session>(),
    spec::<meta::Connect>(),
    spec::<meta::Version>(),
    spec::<meta::Help>(),
    spec::<meta::Quit>(),
];

/// The usage line of a command, if it is one.
pub fn usage_of(name: &str) -> Option<&'static str> {
    find(name).map(|c| c.usage)
}

/// The table row of a command (`exit` is `quit`).
pub fn find(name: &str) -> Option<&'static Spec> {
    let name = if name == "exit" { "quit" } else { name };
    COMMANDS.iter().find(|c| c.name == name)
}

/// Splits a line typed in the shell into words; for `txn`, unquoted `;` separate ops (a quoted
/// `;` stays data).
///
/// Errors with a message for an unterminated quote.
pub fn split_command_line(line: &str) -> Result<Vec<String>, String> {
    let words = crate::args::split_line(line, false)?;
    if words.first().is_none_or(|w| w.text != "txn") {
        return Ok(words.into_iter().map(|w| w.text).collect());
    }
    Ok(crate::args::split_line(line, true)?
        .into_iter()
        .map(|w| {
            if w.quoted && w.text == ";" {
                "\\;".into()
            } else {
                w.text
            }
        })
        .collect())
}

/// Parses a command from its words (the first is its name).
///
/// Errors with a usage error naming the command, what is wrong, and the command's usage line.
pub fn parse(words: &[String]) -> Result<Box<dyn Parsed>, CliError> {
    let Some((name, args)) = words.split_first() else {
        return Err(CliError::bad_input("no command given"));
    };
    let Some(cmd) = find(name) else {
        let suggestion = COMMANDS
            .iter()
            .find(|c| c.name.eq_ignore_ascii_case(name))
            .map(|c| format!(" (did you mean {}?)", c.name))
            .unwrap_or_default();
        return Err(CliError::bad_input(format!(
            "unknown command {name:?}{suggestion}"
        )));
    };
    (cmd.parse)(args).map_err(|e| match e {
        CliError::Usage { message, usage } if !message.starts_with(name.as_str()) => {
            CliError::Usage {
                message: format!("{name}: {message}"),
                usage,
            }
        }
        e => e,
    })
}

/// A closure turning a client error into the command's error, with its context.
pub(crate) fn zk_err(context: String) -> impl Fn(Error) -> CliError {
    move |e| CliError::zk(e, context.clone())
}

// ---- parsing helpers shared by the commands ----------------------------------------------------

pub(crate) fn too_many(usage: &str) -> CliError {
    CliError::usage("too many arguments", usage)
}

pub(crate) fn no_args(a: &Flags, usage: &str) -> Result<(), CliError> {
    if a.positional.is_empty() {
        Ok(())
    } else {
        Err(too_many(usage))
    }
}

pub(crate) fn one_arg(a: &Flags, missing: &str, usage: &str) -> Result<String, CliError> {
    match a.positional.as_slice() {
        [] => Err(CliError::usage(missing, usage)),
        [x] => Ok(x.clone()),
        _ => Err(too_many(usage)),
    }
}

pub(crate) fn one_path(a: &Flags, usage: &str) -> Result<String, CliError> {
    let path = one_arg(a, "missing path", usage)?;
    check_path(&path, usage)?;
    Ok(path)
}

/// Refuses a path that is not absolute before anything is sent, with the command's usage.
pub(crate) fn check_path(path: &str, usage: &str) -> Result<(), CliError> {
    match zk_core::path::validate_path(path, false) {
        Ok(()) => Ok(()),
        Err(e) => Err(CliError::usage(e.to_string(), usage)),
    }
}

pub(crate) fn version(a: &Flags, usage: &str) -> Result<i32, CliError> {
    match a.value("-v") {
        None => Ok(-1),
        Some(v) => v
            .parse::<i32>()
            .map_err(|_| CliError::usage(format!("-v takes a version number, not {v:?}"), usage)),
    }
}

pub(crate) fn watch_mode(m: Option<&str>, usage: &str) -> Result<AddWatchMode, CliError> {
    match m.map(str::to_ascii_uppercase).as_deref() {
        None | Some("PERSISTENT_RECURSIVE") => Ok(AddWatchMode::PersistentRecursive),
        Some("PERSISTENT") => Ok(AddWatchMode::Persistent),
        Some(_) => Err(CliError::usage(
            format!(
                "-m takes PERSISTENT or PERSISTENT_RECURSIVE, not {:?}",
                m.unwrap_or("")
            ),
            usage,
        )),
    }
}

/// Parses an ACL as zkCli writes it: `scheme:id:perms[,scheme:id:perms...]`, where perms are
/// letters of `cdrwa` and the id may itself contain colons (`digest:user:HASH:r`, `ip:::1:r`).
///
/// Errors with a usage error naming the bad entry.
pub fn parse_acl(s: &str) -> Result<Vec<Acl>, CliError> {
    let hint = "an ACL is scheme:id:perms[,...], perms from cdrwa, e.g. world:anyone:cdrwa";
    let mut acl = Vec::new();
    for entry in s.split(',') {
        let bad = || CliError::usage(format!("bad ACL entry {entry:?}"), hint);
        let (scheme, rest) = entry.split_once(':').ok_or_else(bad)?;
        let (id, perms) = rest.rsplit_once(':').ok_or_else(bad)?;
        if scheme.is_empty() {
            return Err(bad());
        }
        acl.push(Acl::new(
            parse_perms(perms).ok_or_else(bad)?,
            Id::new(scheme, id),
        ));
    }
    Ok(acl)
}

/// `cdrwa` letters to permission bits.
fn parse_perms(s: &str) -> Option<Perms> {
    let mut p = Perms(0);
    for c in s.chars() {
        p = p | match c {
            'c' | 'C' => Perms::CREATE,
            'd' | 'D' => Perms::DELETE,
            'r' | 'R' => Perms::READ,
            'w' | 'W' => Perms::WRITE,
            'a' | 'A' => Perms::ADMIN,
            _ => return None,
        };
    }
    Some(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn w(s: &str) -> Vec<String> {
        split_command_line(s).unwrap()
    }

    #[test]
    fn bad_input_is_a_usage_error() {
        for line in [
            "get",
            "get a/b",
            "get /a/",
            "set /a",
            "create -e -c /a",
            "create -t x /a",
            "ls -z /",
            "nosuch /",
            "4lw ruokk",
            "txn",
            "txn frob /a",
            "delete -v x /a",
            "setAcl /a world:anyone:xyz",
        ] {
            let err = parse(&w(line)).unwrap_err();
            assert_eq!(err.exit_code(), 1, "{line}: {err}");
        }
    }

    #[test]
    fn errors_name_the_command() {
        let err = parse(&w("get")).unwrap_err();
        assert_eq!(err.to_string(), "get: missing path");
        assert!(parse(&w("get /a")).unwrap().needs_session());
        assert!(find("exit").is_some());
    }

    #[test]
    fn table_names_are_unique() {
        for (i, c) in COMMANDS.iter().enumerate() {
            assert!(
                COMMANDS[i + 1..].iter().all(|d| d.name != c.name),
                "{} twice",
                c.name
            );
            assert!(c.usage.starts_with(c.name), "{}", c.usage);
        }
    }

    #[test]
    fn acls() {
        let acl = parse_acl("world:anyone:cdrwa,digest:u:abc=:r,ip:::1:rw").unwrap();
        assert_eq!(acl[0].perms, Perms::ALL);
        assert_eq!(acl[1].id, Id::new("digest", "u:abc="));
        assert_eq!(acl[2].id, Id::new("ip", "::1"));
        assert_eq!(acl[2].perms, Perms::READ | Perms::WRITE);
        assert!(parse_acl("world").is_err());
    }
}
