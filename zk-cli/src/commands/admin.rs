//! Commands about the ensemble and the session: config, reconfig, 4lw, session.

use std::time::Duration;

use serde_json::json;
use zk_tokio::TokioRuntime;

use super::{no_args, too_many, zk_err, Cmd};
use crate::args::{flag, opt, parse_flags, MAIN_USAGE};
use crate::error::{CliError, EXIT_CONNECTION};
use crate::exec::{ArmedKind, Ctx, Flow};
use crate::output;

/// How long a four-letter word may take.
const FOUR_LETTER_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest four-letter-word answer read.
const FOUR_LETTER_MAX: usize = 4 * 1024 * 1024;

/// `config`.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// `-c`.
    pub connect_string: bool,
    /// `-w`.
    pub watch: bool,
    /// `-s`.
    pub stat: bool,
}

impl Cmd for Config {
    const NAME: &'static str = "config";
    const USAGE: &'static str = "config [-c] [-w] [-s]";
    const SUMMARY: &'static str = "print the ensemble's configuration (-c connect string only)";

    fn parse(args: &[String]) -> Result<Self, CliError> {
        let a = parse_flags(args, &[flag("-c"), flag("-w"), flag("-s")], Self::USAGE)?;
        no_args(&a, Self::USAGE)?;
        Ok(Config {
            connect_string: a.has("-c"),
            watch: a.has("-w"),
            stat: a.has("-s"),
        })
    }

    async fn run(self, ctx: &mut Ctx) -> Result<Flow, CliError> {
        let context = Cmd::context(&self);
        let zk = zk_err(context.clone());
        let client = ctx.client()?;
        let (data, st, w) = if self.watch {
            if client.chroot().is_some() {
                return Err(CliError::bad_input(
                    "config -w needs a connection without a chroot",
                ));
            }
            let (d, s, w) = client
                .get_data("/zookeeper/config")
                .watch()
                .await
                .map_err(zk)?;
            (d, s, Some(w))
        } else {
            let (d, s) = client.get_config().await.map_err(zk)?;
            (d, s, None)
        };
        let text = String::from_utf8_lossy(&data).into_owned();
        if self.connect_string {
            let cs = config_connect_string(&text);
            ctx.out.emit(&cs, json!({"connectString": cs}));
        } else {
            let mut shown = text.trim_end().to_owned();
            if self.stat {
                shown = format!("{shown}\n{}", output::stat_text(&st));
            }
            let version = text
                .lines()
                .find_map(|l| l.strip_prefix("version="))
                .unwrap_or("");
            ctx.out.emit(
                &shown,
                json!({"config": text, "version": version, "stat": output::stat_json(&st)}),
            );
        }
        if let Some(w) = w {
            ctx.after_watch(w, "/zookeeper/config", ArmedKind::Data, &context)
                .await?;
        }
        Ok(Flow::Continue)
    }
}

/// `reconfig`: the changes it asks for.
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

impl Cmd for Reconfig {
    const NAME: &'static str = "reconfig";
    const USAGE: &'static str = "reconfig [-s] [-v version] [[-file path] | [-members serverID=host:port1:port2;port3[,...]*]] | [-add serverId=host:port1:port2;port3[,...]]* [-remove serverId[,...]*]";
    const SUMMARY: &'static str = "change the ensemble's membership";

    /// Reads `-members`/`-add`/`-remove`/`-file`/`-v`/`-s`.
    fn parse(args: &[String]) -> Result<Self, CliError> {
        let usage = Self::USAGE;
        let a = parse_flags(
            args,
            &[
                flag("-s"),
                opt("-v"),
                opt("-file"),
                opt("-members"),
                opt("-add"),
                opt("-remove"),
            ],
            usage,
        )?;
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
        Ok(r)
    }

    async fn run(self, ctx: &mut Ctx) -> Result<Flow, CliError> {
        let zk = zk_err(Cmd::context(&self));
        let (data, st) = ctx
            .client()?
            .reconfig(
                self.add.as_deref(),
                self.remove.as_deref(),
                self.members.as_deref(),
                self.version,
            )
            .await
            .map_err(zk)?;
        let text = String::from_utf8_lossy(&data).into_owned();
        let mut shown = format!("Committed new configuration:\n{}", text.trim_end());
        if self.stat {
            shown = format!("{shown}\n{}", output::stat_text(&st));
        }
        ctx.out.emit(
            &shown,
            json!({"config": text, "stat": output::stat_json(&st)}),
        );
        Ok(Flow::Continue)
    }
}

/// `4lw`.
#[derive(Debug, Clone, PartialEq)]
pub struct FourLetter {
    /// The word.
    pub word: String,
    /// A server to ask instead of the connected one.
    pub server: Option<String>,
}

impl Cmd for FourLetter {
    const NAME: &'static str = "4lw";
    const USAGE: &'static str = "4lw word [host:port]";
    const SUMMARY: &'static str = "send a four-letter word (ruok, srvr, stat, mntr, conf, ...)";

    fn parse(args: &[String]) -> Result<Self, CliError> {
        let usage = Self::USAGE;
        let a = parse_flags(args, &[], usage)?;
        let (word, server) = match a.positional.as_slice() {
            [] => return Err(CliError::usage("missing four-letter word", usage)),
            [w] => (w.clone(), None),
            [w, s] => (w.clone(), Some(s.clone())),
            _ => return Err(too_many(usage)),
        };
        if word.len() != 4 || !word.bytes().all(|b| b.is_ascii_lowercase()) {
            return Err(CliError::usage(
                format!("{word:?} is not a four-letter word (ruok, srvr, stat, mntr, conf, ...)"),
                usage,
            ));
        }
        Ok(FourLetter { word, server })
    }

    fn target(&self) -> &str {
        &self.word
    }

    fn needs_session(&self) -> bool {
        false
    }

    async fn run(self, ctx: &mut Ctx) -> Result<Flow, CliError> {
        let FourLetter { word, server } = self;
        let rt = TokioRuntime::default();
        // Which servers: the one named, else the one the shell's session is on, else all.
        let targets: Vec<zk_core::HostAddr> = match server {
            Some(s) => vec![zk_core::HostAddr::parse(&s)
                .map_err(|e| CliError::usage(e.to_string(), Self::USAGE))?],
            None => match ctx.client.as_ref().and_then(|c| c.current_host()) {
                Some(h) => vec![h],
                None => {
                    zk_core::ConnectString::parse(&ctx.opts.server)
                        .map_err(|e| {
                            CliError::usage(
                                format!("bad server list {:?}: {e}", ctx.opts.server),
                                MAIN_USAGE,
                            )
                        })?
                        .hosts
                }
            },
        };
        let mut texts = Vec::new();
        let mut list = Vec::new();
        let mut failed = Vec::new();
        for h in &targets {
            let answer = tokio::time::timeout(
                FOUR_LETTER_TIMEOUT,
                zk_tokio::four_letter_word(&rt, h.host.clone(), h.port, &word, FOUR_LETTER_MAX),
            )
            .await;
            let answer = match answer {
                Ok(Ok(a)) => Ok(a),
                Ok(Err(e)) => Err(format!("cannot reach {h}: {e}")),
                Err(_) => Err(format!(
                    "{h} did not answer within {} s",
                    FOUR_LETTER_TIMEOUT.as_secs()
                )),
            };
            match answer {
                Ok(a) => {
                    let trimmed = a.trim_end().to_owned();
                    texts.push(if targets.len() > 1 {
                        format!("{h}:\n{trimmed}")
                    } else {
                        trimmed
                    });
                    list.push(json!({"server": h.to_string(), "answer": a}));
                }
                // One server: its error is the command's.
                Err(e) if targets.len() == 1 => {
                    return Err(CliError::Other {
                        message: format!("4lw {word}: {e}"),
                        code: EXIT_CONNECTION,
                    })
                }
                Err(e) => {
                    texts.push(format!("{h}:\n({e})"));
                    list.push(json!({"server": h.to_string(), "error": e}));
                    failed.push(h.to_string());
                }
            }
        }
        ctx.out
            .emit(&texts.join("\n"), json!({"command": word, "servers": list}));
        if failed.is_empty() {
            Ok(Flow::Continue)
        } else {
            Err(CliError::Other {
                message: format!("4lw {word}: no answer from {}", failed.join(", ")),
                code: EXIT_CONNECTION,
            })
        }
    }
}

/// `session`.
#[derive(Debug, Clone, PartialEq)]
pub struct Session;

impl Cmd for Session {
    const NAME: &'static str = "session";
    const USAGE: &'static str = "session";
    const SUMMARY: &'static str = "print the session id, its state and the server it is on";

    fn parse(args: &[String]) -> Result<Self, CliError> {
        no_args(&parse_flags(args, &[], Self::USAGE)?, Self::USAGE)?;
        Ok(Session)
    }

    async fn run(self, ctx: &mut Ctx) -> Result<Flow, CliError> {
        let client = ctx.client()?;
        let id = client.client_id().map(|s| s.id).unwrap_or(0);
        let state = client.state();
        let host = client
            .current_host()
            .map(|h| h.to_string())
            .unwrap_or_else(|| "-".into());
        let timeout = client
            .session_timeout()
            .map(|t| t.as_millis() as u64)
            .unwrap_or(0);
        ctx.out.emit(
            &format!(
                "session 0x{id:x} {} on {host} (timeout {timeout} ms)",
                output::prompt_state(state)
            ),
            json!({
                "sessionId": id,
                "sessionIdHex": format!("0x{id:x}"),
                "state": output::prompt_state(state),
                "server": host,
                "timeoutMs": timeout,
                "lastZxid": client.last_zxid(),
            }),
        );
        Ok(Flow::Continue)
    }
}

/// The client addresses of a dynamic config (`server.1=h:p1:p2:participant;ch:cp`), comma-joined,
/// as zkCli's `config -c` prints them.
pub fn config_connect_string(config: &str) -> String {
    config
        .lines()
        .filter(|l| l.starts_with("server."))
        .filter_map(|l| l.split_once(';').map(|(_, client)| client.trim()))
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_string_from_config() {
        let cfg = "server.1=127.0.0.1:2888:3888:participant;127.0.0.1:2181\n\
                   server.2=127.0.0.1:2889:3889:participant;127.0.0.1:2182\nversion=100000000\n";
        assert_eq!(config_connect_string(cfg), "127.0.0.1:2181,127.0.0.1:2182");
    }
}
