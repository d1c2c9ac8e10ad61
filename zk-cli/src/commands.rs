//! The commands: their table (usage and summary, for `help` and completion) and parsing words
//! into a [`Command`].

use std::time::Duration;

use zk_core::proto::{Acl, AddWatchMode, CreateMode, Id, Perms};

use crate::args::{flag, opt, parse_flags, FlagSpec, Parsed};
use crate::error::CliError;

/// One row of the command table.
#[derive(Debug, Clone, Copy)]
pub struct CommandInfo {
    /// The name typed.
    pub name: &'static str,
    /// The usage line.
    pub usage: &'static str,
    /// What it does, in one line.
    pub summary: &'static str,
}

const fn info(name: &'static str, usage: &'static str, summary: &'static str) -> CommandInfo {
    CommandInfo {
        name,
        usage,
        summary,
    }
}

/// Every command, in the order `help` lists them.
pub const COMMANDS: &[CommandInfo] = &[
    info("ls", "ls [-s] [-w] [-R] path", "list children (-s Stat, -w watch, -R whole subtree)"),
    info(
        "create",
        "create [-s] [-e] [-c] [-t ttl] path [data] [acl]",
        "create a node (-s sequential, -e ephemeral, -c container, -t TTL in ms)",
    ),
    info("get", "get [-s] [-w] path", "print a node's data (-s Stat, -w watch)"),
    info("set", "set [-s] [-v version] path data", "replace a node's data (-v only at that version)"),
    info("stat", "stat [-w] path", "print a node's Stat"),
    info("delete", "delete [-v version] path", "delete a node"),
    info("deleteall", "deleteall path [-b batch size]", "delete a node and its whole subtree"),
    info("sync", "sync path", "make the server catch up with the leader"),
    info("getAcl", "getAcl [-s] path", "print a node's ACL"),
    info(
        "setAcl",
        "setAcl [-s] [-v version] [-R] path acl",
        "set a node's ACL, e.g. world:anyone:cdrwa,digest:user:HASH:r (-R whole subtree)",
    ),
    info("addauth", "addauth scheme auth", "add credentials to the session, e.g. addauth digest user:pw"),
    info("whoami", "whoami", "print the identities of this session (3.7+)"),
    info("getEphemerals", "getEphemerals [path]", "list this session's ephemeral nodes (3.6+)"),
    info("getAllChildrenNumber", "getAllChildrenNumber path", "count a node's descendants (3.6+)"),
    info(
        "addWatch",
        "addWatch [-m mode] path",
        "add a persistent watch; mode PERSISTENT or PERSISTENT_RECURSIVE (default) (3.6+)",
    ),
    info(
        "removewatches",
        "removewatches path [-c|-d|-a] [-l]",
        "remove this session's watches on path (-c child, -d data, -a any; -l also if the server is unreachable)",
    ),
    info("config", "config [-c] [-w] [-s]", "print the ensemble's configuration (-c connect string only)"),
    info(
        "reconfig",
        "reconfig [-s] [-v version] [[-file path] | [-members serverID=host:port1:port2;port3[,...]*]] | [-add serverId=host:port1:port2;port3[,...]]* [-remove serverId[,...]*]",
        "change the ensemble's membership",
    ),
    info(
        "watch",
        "watch [-m mode] [--count N] path",
        "print events under path as they happen, until Ctrl-C or N events (3.6+)",
    ),
    info("tree", "tree path", "draw the subtree under path"),
    info(
        "txn",
        "txn OP [; OP]...",
        "apply ops atomically; OP is create [-s] [-e] [-c] path [data] | set [-v version] path data | check path [version] | delete [-v version] path",
    ),
    info("4lw", "4lw word [host:port]", "send a four-letter word (ruok, srvr, stat, mntr, conf, ...)"),
    info("session", "session", "print the session id, its state and the server it is on"),
    info("connect", "connect host:port[,host:port...][/chroot]", "(shell) switch to other servers"),
    info("version", "version", "print zk's version"),
    info("help", "help [command]", "list the commands, or describe one"),
    info("quit", "quit", "leave the shell"),
];

/// The usage line of a command, if it is one.
pub fn usage_of(name: &str) -> Option<&'static str> {
    find(name).map(|c| c.usage)
}

/// The table row of a command (`exit` is `quit`).
pub fn find(name: &str) -> Option<&'static CommandInfo> {
    let name = if name == "exit" { "quit" } else { name };
    COMMANDS.iter().find(|c| c.name == name)
}

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

/// One op of a `txn`.
#[derive(Debug, Clone, PartialEq)]
pub enum TxnOp {
    /// `create [-s] [-e] [-c] path [data]`.
    Create {
        /// The node.
        path: String,
        /// Its data.
        data: String,
        /// Persistent, ephemeral, sequential or container.
        mode: CreateMode,
    },
    /// `set [-v version] path data`.
    Set {
        /// The node.
        path: String,
        /// The new data.
        data: String,
        /// The expected version, -1 for any.
        version: i32,
    },
    /// `check path [version]`.
    Check {
        /// The node.
        path: String,
        /// The expected version, -1 for existence only.
        version: i32,
    },
    /// `delete [-v version] path`.
    Delete {
        /// The node.
        path: String,
        /// The expected version, -1 for any.
        version: i32,
    },
}

/// The changes `reconfig` asks for.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Reconfig {
    /// `-add` servers, comma-joined.
    pub add: Option<String>,
    /// `-remove` server ids, comma-joined.
    pub remove: Option<String>,
    /// `-members` (or the server lines of `-file`), comma-joined.
    pub members: Option<String>,
    /// `-v`: the config version it applies to.
    pub version: i64,
    /// `-s`: print the Stat too.
    pub stat: bool,
}

/// A parsed command.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// `ls`.
    Ls {
        /// The node.
        path: String,
        /// `-s`.
        stat: bool,
        /// `-w`.
        watch: bool,
        /// `-R`.
        recursive: bool,
    },
    /// `create`.
    Create {
        /// The node.
        path: String,
        /// Its data (`None`: null data).
        data: Option<String>,
        /// Its ACL (default: open).
        acl: Option<Vec<Acl>>,
        /// `-s`.
        sequential: bool,
        /// `-e`.
        ephemeral: bool,
        /// `-c`.
        container: bool,
        /// `-t`.
        ttl: Option<Duration>,
    },
    /// `get`.
    Get {
        /// The node.
        path: String,
        /// `-s`.
        stat: bool,
        /// `-w`.
        watch: bool,
    },
    /// `set`.
    Set {
        /// The node.
        path: String,
        /// New data.
        data: String,
        /// `-v`, -1 for any.
        version: i32,
        /// `-s`.
        stat: bool,
    },
    /// `stat`.
    Stat {
        /// The node.
        path: String,
        /// `-w`.
        watch: bool,
    },
    /// `delete`.
    Delete {
        /// The node.
        path: String,
        /// `-v`, -1 for any.
        version: i32,
    },
    /// `deleteall`.
    DeleteAll {
        /// The root of the subtree.
        path: String,
        /// `-b`: deletes per transaction.
        batch: usize,
    },
    /// `sync`.
    Sync {
        /// The node.
        path: String,
    },
    /// `getAcl`.
    GetAcl {
        /// The node.
        path: String,
        /// `-s`.
        stat: bool,
    },
    /// `setAcl`.
    SetAcl {
        /// The node.
        path: String,
        /// The new ACL.
        acl: Vec<Acl>,
        /// `-v`: expected ACL version, -1 for any.
        version: i32,
        /// `-s`.
        stat: bool,
        /// `-R`.
        recursive: bool,
    },
    /// `addauth`.
    AddAuth {
        /// The scheme (`digest`).
        scheme: String,
        /// The credential (`user:password`).
        auth: String,
    },
    /// `whoami`.
    WhoAmI,
    /// `getEphemerals`.
    GetEphemerals {
        /// The path prefix.
        path: String,
    },
    /// `getAllChildrenNumber`.
    GetAllChildrenNumber {
        /// The node.
        path: String,
    },
    /// `addWatch`.
    AddWatch {
        /// The node.
        path: String,
        /// `-m`.
        mode: AddWatchMode,
    },
    /// `removewatches`.
    RemoveWatches {
        /// The node.
        path: String,
        /// `-c`, `-d` or `-a`.
        kind: WatchKind,
        /// `-l`.
        local: bool,
    },
    /// `config`.
    Config {
        /// `-c`.
        connect_string: bool,
        /// `-w`.
        watch: bool,
        /// `-s`.
        stat: bool,
    },
    /// `reconfig`.
    Reconfig(Reconfig),
    /// `watch`.
    Watch {
        /// The node.
        path: String,
        /// `-m`.
        mode: AddWatchMode,
        /// `--count`.
        count: Option<u64>,
    },
    /// `tree`.
    Tree {
        /// The root.
        path: String,
    },
    /// `txn`.
    Txn(Vec<TxnOp>),
    /// `4lw`.
    FourLetter {
        /// The word.
        word: String,
        /// A server to ask instead of the connected one.
        server: Option<String>,
    },
    /// `session`.
    Session,
    /// `connect`.
    Connect {
        /// The new connect string.
        server: String,
    },
    /// `version`.
    Version,
    /// `help`.
    Help {
        /// A command to describe.
        topic: Option<String>,
    },
    /// `quit` / `exit`.
    Quit,
}

impl Command {
    /// Whether the command needs a session (help, version, quit and a one-shot `4lw` do not).
    pub fn needs_session(&self) -> bool {
        !matches!(
            self,
            Command::Help { .. } | Command::Version | Command::Quit | Command::FourLetter { .. }
        )
    }

    /// The command and its main path, for messages about path-less errors (`get /x`).
    pub fn context(&self) -> String {
        let (name, path) = match self {
            Command::Ls { path, .. } => ("ls", path.as_str()),
            Command::Create { path, .. } => ("create", path.as_str()),
            Command::Get { path, .. } => ("get", path.as_str()),
            Command::Set { path, .. } => ("set", path.as_str()),
            Command::Stat { path, .. } => ("stat", path.as_str()),
            Command::Delete { path, .. } => ("delete", path.as_str()),
            Command::DeleteAll { path, .. } => ("deleteall", path.as_str()),
            Command::Sync { path } => ("sync", path.as_str()),
            Command::GetAcl { path, .. } => ("getAcl", path.as_str()),
            Command::SetAcl { path, .. } => ("setAcl", path.as_str()),
            Command::AddAuth { scheme, .. } => ("addauth", scheme.as_str()),
            Command::WhoAmI => ("whoami", ""),
            Command::GetEphemerals { path } => ("getEphemerals", path.as_str()),
            Command::GetAllChildrenNumber { path } => ("getAllChildrenNumber", path.as_str()),
            Command::AddWatch { path, .. } => ("addWatch", path.as_str()),
            Command::RemoveWatches { path, .. } => ("removewatches", path.as_str()),
            Command::Config { .. } => ("config", ""),
            Command::Reconfig(_) => ("reconfig", ""),
            Command::Watch { path, .. } => ("watch", path.as_str()),
            Command::Tree { path } => ("tree", path.as_str()),
            Command::Txn(_) => ("txn", ""),
            Command::FourLetter { word, .. } => ("4lw", word.as_str()),
            Command::Session => ("session", ""),
            Command::Connect { server } => ("connect", server.as_str()),
            Command::Version => ("version", ""),
            Command::Help { .. } => ("help", ""),
            Command::Quit => ("quit", ""),
        };
        if path.is_empty() {
            name.to_owned()
        } else {
            format!("{name} {path}")
        }
    }
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
pub fn parse(words: &[String]) -> Result<Command, CliError> {
    parse_words(words).map_err(|e| match (e, words.first()) {
        (CliError::Usage { message, usage }, Some(name))
            if find(name).is_some() && !message.starts_with(name.as_str()) =>
        {
            CliError::Usage {
                message: format!("{name}: {message}"),
                usage,
            }
        }
        (e, _) => e,
    })
}

fn parse_words(words: &[String]) -> Result<Command, CliError> {
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
    let usage = cmd.usage;
    let p = |specs: &[FlagSpec]| parse_flags(args, specs, usage);
    Ok(match cmd.name {
        "ls" => {
            let a = p(&[flag("-s"), flag("-w"), flag("-R")])?;
            let path = one_path(&a, usage)?;
            Command::Ls {
                path,
                stat: a.has("-s"),
                watch: a.has("-w"),
                recursive: a.has("-R"),
            }
        }
        "create" => {
            let a = p(&[flag("-s"), flag("-e"), flag("-c"), opt("-t")])?;
            let (path, data, acl) = match a.positional.as_slice() {
                [] => return Err(CliError::usage("missing path", usage)),
                [path] => (path.clone(), None, None),
                [path, data] => (path.clone(), Some(data.clone()), None),
                [path, data, acl] => (path.clone(), Some(data.clone()), Some(parse_acl(acl)?)),
                _ => return Err(too_many(usage)),
            };
            let ttl = a
                .value("-t")
                .map(|t| match t.parse::<u64>() {
                    Ok(ms) if ms > 0 => Ok(Duration::from_millis(ms)),
                    _ => Err(CliError::usage(
                        format!("-t takes a TTL in milliseconds (> 0), not {t:?}"),
                        usage,
                    )),
                })
                .transpose()?;
            let (e, c) = (a.has("-e"), a.has("-c"));
            if [e, c, ttl.is_some()].iter().filter(|x| **x).count() > 1 {
                return Err(CliError::usage(
                    "a node is ephemeral (-e), a container (-c) or has a TTL (-t): pick one",
                    usage,
                ));
            }
            if c && a.has("-s") {
                return Err(CliError::usage(
                    "a container node (-c) cannot be sequential",
                    usage,
                ));
            }
            Command::Create {
                path,
                data,
                acl,
                sequential: a.has("-s"),
                ephemeral: e,
                container: c,
                ttl,
            }
        }
        "get" => {
            let a = p(&[flag("-s"), flag("-w")])?;
            Command::Get {
                path: one_path(&a, usage)?,
                stat: a.has("-s"),
                watch: a.has("-w"),
            }
        }
        "set" => {
            let a = p(&[flag("-s"), opt("-v")])?;
            let (path, data) = match a.positional.as_slice() {
                [] => return Err(CliError::usage("missing path and data", usage)),
                [_] => return Err(CliError::usage("missing data", usage)),
                [path, data] => (path.clone(), data.clone()),
                _ => return Err(too_many(usage)),
            };
            Command::Set {
                path,
                data,
                version: version(&a, usage)?,
                stat: a.has("-s"),
            }
        }
        "stat" => {
            let a = p(&[flag("-w")])?;
            Command::Stat {
                path: one_path(&a, usage)?,
                watch: a.has("-w"),
            }
        }
        "delete" => {
            let a = p(&[opt("-v")])?;
            Command::Delete {
                path: one_path(&a, usage)?,
                version: version(&a, usage)?,
            }
        }
        "deleteall" => {
            let a = p(&[opt("-b")])?;
            let batch = match a.value("-b") {
                None => 1000,
                Some(b) => match b.parse::<usize>() {
                    Ok(n) if n > 0 => n,
                    _ => {
                        return Err(CliError::usage(
                            format!("-b takes a batch size (> 0), not {b:?}"),
                            usage,
                        ))
                    }
                },
            };
            Command::DeleteAll {
                path: one_path(&a, usage)?,
                batch,
            }
        }
        "sync" => Command::Sync {
            path: one_path(&p(&[])?, usage)?,
        },
        "getAcl" => {
            let a = p(&[flag("-s")])?;
            Command::GetAcl {
                path: one_path(&a, usage)?,
                stat: a.has("-s"),
            }
        }
        "setAcl" => {
            let a = p(&[flag("-s"), opt("-v"), flag("-R")])?;
            let (path, acl) = match a.positional.as_slice() {
                [] => return Err(CliError::usage("missing path and acl", usage)),
                [_] => return Err(CliError::usage("missing acl", usage)),
                [path, acl] => (path.clone(), parse_acl(acl)?),
                _ => return Err(too_many(usage)),
            };
            Command::SetAcl {
                path,
                acl,
                version: version(&a, usage)?,
                stat: a.has("-s"),
                recursive: a.has("-R"),
            }
        }
        "addauth" => {
            let a = p(&[])?;
            match a.positional.as_slice() {
                [scheme, auth] => Command::AddAuth {
                    scheme: scheme.clone(),
                    auth: auth.clone(),
                },
                [_, _, ..] => return Err(too_many(usage)),
                _ => return Err(CliError::usage("missing scheme or auth", usage)),
            }
        }
        "whoami" => {
            no_args(&p(&[])?, usage)?;
            Command::WhoAmI
        }
        "getEphemerals" => {
            let a = p(&[])?;
            let path = match a.positional.as_slice() {
                [] => "/".to_owned(),
                [path] => path.clone(),
                _ => return Err(too_many(usage)),
            };
            Command::GetEphemerals { path }
        }
        "getAllChildrenNumber" => Command::GetAllChildrenNumber {
            path: one_path(&p(&[])?, usage)?,
        },
        "addWatch" => {
            let a = p(&[opt("-m")])?;
            Command::AddWatch {
                path: one_path(&a, usage)?,
                mode: watch_mode(a.value("-m"), usage)?,
            }
        }
        "removewatches" => {
            let a = p(&[flag("-c"), flag("-d"), flag("-a"), flag("-l")])?;
            let kinds = [a.has("-c"), a.has("-d"), a.has("-a")];
            if kinds.iter().filter(|k| **k).count() > 1 {
                return Err(CliError::usage("give one of -c, -d, -a", usage));
            }
            Command::RemoveWatches {
                path: one_path(&a, usage)?,
                kind: if a.has("-c") {
                    WatchKind::Child
                } else if a.has("-d") {
                    WatchKind::Data
                } else {
                    WatchKind::Any
                },
                local: a.has("-l"),
            }
        }
        "config" => {
            let a = p(&[flag("-c"), flag("-w"), flag("-s")])?;
            no_args(&a, usage)?;
            Command::Config {
                connect_string: a.has("-c"),
                watch: a.has("-w"),
                stat: a.has("-s"),
            }
        }
        "reconfig" => parse_reconfig(&p(&[
            flag("-s"),
            opt("-v"),
            opt("-file"),
            opt("-members"),
            opt("-add"),
            opt("-remove"),
        ])?)?,
        "watch" => {
            let a = p(&[opt("-m"), opt("--count"), opt("-n")])?;
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
            Command::Watch {
                path: one_path(&a, usage)?,
                mode: watch_mode(a.value("-m"), usage)?,
                count,
            }
        }
        "tree" => Command::Tree {
            path: one_path(&p(&[])?, usage)?,
        },
        "txn" => Command::Txn(parse_txn(args)?),
        "4lw" => {
            let a = p(&[])?;
            let (word, server) = match a.positional.as_slice() {
                [] => return Err(CliError::usage("missing four-letter word", usage)),
                [w] => (w.clone(), None),
                [w, s] => (w.clone(), Some(s.clone())),
                _ => return Err(too_many(usage)),
            };
            if word.len() != 4 || !word.bytes().all(|b| b.is_ascii_lowercase()) {
                return Err(CliError::usage(
                    format!(
                        "{word:?} is not a four-letter word (ruok, srvr, stat, mntr, conf, ...)"
                    ),
                    usage,
                ));
            }
            Command::FourLetter { word, server }
        }
        "session" => {
            no_args(&p(&[])?, usage)?;
            Command::Session
        }
        "connect" => Command::Connect {
            server: one_arg(&p(&[])?, "missing servers", usage)?,
        },
        "version" => Command::Version,
        "help" => Command::Help {
            topic: args.first().cloned(),
        },
        "quit" => Command::Quit,
        other => return Err(CliError::bad_input(format!("unknown command {other:?}"))),
    })
}

fn too_many(usage: &str) -> CliError {
    CliError::usage("too many arguments", usage)
}

fn no_args(a: &Parsed, usage: &str) -> Result<(), CliError> {
    if a.positional.is_empty() {
        Ok(())
    } else {
        Err(too_many(usage))
    }
}

fn one_arg(a: &Parsed, missing: &str, usage: &str) -> Result<String, CliError> {
    match a.positional.as_slice() {
        [] => Err(CliError::usage(missing, usage)),
        [x] => Ok(x.clone()),
        _ => Err(too_many(usage)),
    }
}

fn one_path(a: &Parsed, usage: &str) -> Result<String, CliError> {
    let path = one_arg(a, "missing path", usage)?;
    check_path(&path, usage)?;
    Ok(path)
}

/// Refuses a path that is not absolute before anything is sent, with the command's usage.
fn check_path(path: &str, usage: &str) -> Result<(), CliError> {
    match zk_core::path::validate_path(path, false) {
        Ok(()) => Ok(()),
        Err(e) => Err(CliError::usage(e.to_string(), usage)),
    }
}

fn version(a: &Parsed, usage: &str) -> Result<i32, CliError> {
    match a.value("-v") {
        None => Ok(-1),
        Some(v) => v
            .parse::<i32>()
            .map_err(|_| CliError::usage(format!("-v takes a version number, not {v:?}"), usage)),
    }
}

fn watch_mode(m: Option<&str>, usage: &str) -> Result<AddWatchMode, CliError> {
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

/// Parses `txn`'s ops: words separated by `;` words. A single word is a whole script
/// (`zk txn 'create /a x; delete /b'`), split like a shell line.
fn parse_txn(args: &[String]) -> Result<Vec<TxnOp>, CliError> {
    let usage = "txn OP [; OP]...  where OP is  create [-s] [-e] [-c] path [data]  |  \
                 set [-v version] path data  |  check path [version]  |  delete [-v version] path";
    let words: Vec<String> = if let [script] = args {
        crate::args::split_line(script, true)
            .map_err(|e| CliError::usage(e, usage))?
            .into_iter()
            .map(|w| {
                if w.quoted && w.text == ";" {
                    "\\;".into()
                } else {
                    w.text
                }
            })
            .collect()
    } else {
        args.to_vec()
    };
    let mut ops = Vec::new();
    for group in words.split(|w| w == ";") {
        let group: Vec<String> = group
            .iter()
            .map(|w| if w == "\\;" { ";".into() } else { w.clone() })
            .collect();
        let Some((op, rest)) = group.split_first() else {
            continue;
        };
        let bad = |m: String| CliError::usage(format!("txn {op}: {m}"), usage);
        ops.push(match op.as_str() {
            "create" => {
                let a = parse_flags(rest, &[flag("-s"), flag("-e"), flag("-c")], usage)?;
                let (path, data) = match a.positional.as_slice() {
                    [path] => (path.clone(), String::new()),
                    [path, data] => (path.clone(), data.clone()),
                    [] => return Err(bad("missing path".into())),
                    _ => return Err(bad("too many arguments".into())),
                };
                let mode = match (a.has("-e"), a.has("-s"), a.has("-c")) {
                    (false, false, false) => CreateMode::Persistent,
                    (true, false, false) => CreateMode::Ephemeral,
                    (false, true, false) => CreateMode::PersistentSequential,
                    (true, true, false) => CreateMode::EphemeralSequential,
                    (false, false, true) => CreateMode::Container,
                    _ => return Err(bad("-c does not combine with -e or -s".into())),
                };
                check_path(&path, usage)?;
                TxnOp::Create { path, data, mode }
            }
            "set" => {
                let a = parse_flags(rest, &[opt("-v")], usage)?;
                let (path, data) = match a.positional.as_slice() {
                    [path, data] => (path.clone(), data.clone()),
                    [] | [_] => return Err(bad("needs a path and data".into())),
                    _ => return Err(bad("too many arguments".into())),
                };
                check_path(&path, usage)?;
                TxnOp::Set {
                    path,
                    data,
                    version: version(&a, usage)?,
                }
            }
            "check" => {
                let a = parse_flags(rest, &[opt("-v")], usage)?;
                let (path, v) = match a.positional.as_slice() {
                    [path] => (path.clone(), version(&a, usage)?),
                    [path, v] => (
                        path.clone(),
                        v.parse::<i32>()
                            .map_err(|_| bad(format!("{v:?} is not a version number")))?,
                    ),
                    [] => return Err(bad("missing path".into())),
                    _ => return Err(bad("too many arguments".into())),
                };
                check_path(&path, usage)?;
                TxnOp::Check { path, version: v }
            }
            "delete" => {
                let a = parse_flags(rest, &[opt("-v")], usage)?;
                let path = one_arg(&a, "missing path", usage)?;
                check_path(&path, usage)?;
                TxnOp::Delete {
                    path,
                    version: version(&a, usage)?,
                }
            }
            other => {
                return Err(CliError::usage(
                    format!("txn: unknown op {other:?} (create, set, check, delete)"),
                    usage,
                ))
            }
        });
    }
    if ops.is_empty() {
        return Err(CliError::usage("txn: no ops given", usage));
    }
    Ok(ops)
}

/// Reads `-members`/`-add`/`-remove`/`-file`/`-v`/`-s` of `reconfig`.
fn parse_reconfig(a: &Parsed) -> Result<Command, CliError> {
    let usage = usage_of("reconfig").unwrap_or("reconfig");
    if !a.positional.is_empty() {
        return Err(too_many(usage));
    }
    let join = |v: &[String]| (!v.is_empty()).then(|| v.join(","));
    let mut r = Reconfig {
        add: join(a.all("-add")),
        remove: join(a.all("-remove")),
        members: a.value("-members").map(str::to_owned),
        version: -1,
        stat: a.has("-s"),
    };
    if let Some(v) = a.value("-v") {
        // zkCli takes the version in hex, as `config` prints it (version=100000000).
        let digits = v.trim_start_matches("0x");
        r.version = i64::from_str_radix(digits, 16).map_err(|_| {
            CliError::usage(format!("-v takes a config version (hex), not {v:?}"), usage)
        })?;
    }
    if let Some(file) = a.value("-file") {
        let text = std::fs::read_to_string(file)
            .map_err(|e| CliError::bad_input(format!("reconfig: cannot read {file}: {e}")))?;
        let servers: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| {
                l.starts_with("server.") || l.starts_with("group.") || l.starts_with("weight.")
            })
            .collect();
        if servers.is_empty() {
            return Err(CliError::bad_input(format!(
                "reconfig: {file} has no server.N= lines"
            )));
        }
        r.members = Some(servers.join(","));
    }
    let incremental = r.add.is_some() || r.remove.is_some();
    if incremental && r.members.is_some() {
        return Err(CliError::usage(
            "give -add/-remove (incremental) or -members/-file (a new member list), not both",
            usage,
        ));
    }
    if !incremental && r.members.is_none() {
        return Err(CliError::usage("nothing to change", usage));
    }
    Ok(Command::Reconfig(r))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(s: &str) -> Vec<String> {
        split_command_line(s).unwrap()
    }

    #[test]
    fn parses_zkcli_commands() {
        assert_eq!(
            parse(&w("ls -s -R /a")).unwrap(),
            Command::Ls {
                path: "/a".into(),
                stat: true,
                watch: false,
                recursive: true
            }
        );
        assert!(matches!(
            parse(&w("create -e -s /a/b- data")).unwrap(),
            Command::Create {
                ephemeral: true,
                sequential: true,
                data: Some(_),
                ..
            }
        ));
        assert!(matches!(
            parse(&w("set -v 3 /a hello")).unwrap(),
            Command::Set { version: 3, .. }
        ));
        assert!(matches!(
            parse(&w("removewatches /a -c")).unwrap(),
            Command::RemoveWatches {
                kind: WatchKind::Child,
                ..
            }
        ));
        assert!(matches!(
            parse(&w("watch --count 3 -m PERSISTENT /a")).unwrap(),
            Command::Watch {
                count: Some(3),
                mode: AddWatchMode::Persistent,
                ..
            }
        ));
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
    fn txn_ops() {
        let ops = match parse(&w(
            "txn create /a x ; set -v 2 /b y; check /c 0 ; delete /d",
        ))
        .unwrap()
        {
            Command::Txn(ops) => ops,
            other => panic!("{other:?}"),
        };
        assert_eq!(ops.len(), 4);
        assert_eq!(
            ops[2],
            TxnOp::Check {
                path: "/c".into(),
                version: 0
            }
        );
        // One word: a script.
        let ops = match parse(&["txn".into(), "create /a 'x;y'; delete /b".into()]).unwrap() {
            Command::Txn(ops) => ops,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            ops[0],
            TxnOp::Create {
                path: "/a".into(),
                data: "x;y".into(),
                mode: CreateMode::Persistent
            }
        );
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
