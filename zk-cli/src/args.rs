//! The command line: zkCli's global flags (`-server`, `-timeout`, `-r`) plus `--json`, a
//! shell-like tokenizer for lines typed in the shell, and a small flag parser for the commands'
//! own flags (`ls -s -w -R path`, `set -v 3 path data`).

use std::collections::HashMap;
use std::time::Duration;

use crate::error::CliError;
use crate::security::SecurityOpts;

/// The servers used when neither `-server` nor `ZK_SERVER` names any (zkCli's default).
pub const DEFAULT_SERVER: &str = "localhost:2181";

/// The usage line of `zk` itself.
pub const MAIN_USAGE: &str = "zk [-server HOST:PORT[,HOST:PORT...][/chroot]] [-timeout MS] [-r] \
[--json] [--connect-timeout SECS] [-client-configuration FILE] [-Dkey=value] [--jaas FILE] \
[--tls-ca FILE] [--tls-cert FILE --tls-key FILE] [COMMAND ARGS...]";

/// Options that come before the command.
#[derive(Debug, Clone, PartialEq)]
pub struct GlobalOpts {
    /// The connect string: hosts and an optional chroot.
    pub server: String,
    /// The session timeout to ask for (zkCli's `-timeout`, default 30000 ms).
    pub session_timeout: Duration,
    /// Accept a read-only server (zkCli's `-r`).
    pub read_only: bool,
    /// Print JSON instead of text.
    pub json: bool,
    /// How long to wait for the first connection.
    pub connect_timeout: Duration,
    /// `-h`/`--help` before any command.
    pub help: bool,
    /// `--version` before any command.
    pub version: bool,
    /// TLS and SASL options (`-client-configuration`, `-D`, `--jaas`, `--tls-*`).
    pub security: SecurityOpts,
}

impl Default for GlobalOpts {
    fn default() -> Self {
        GlobalOpts {
            server: DEFAULT_SERVER.to_owned(),
            session_timeout: Duration::from_millis(30_000),
            read_only: false,
            json: false,
            connect_timeout: Duration::from_secs(5),
            help: false,
            version: false,
            security: SecurityOpts::default(),
        }
    }
}

/// Splits `zk`'s arguments into the global options and the command with its arguments (empty
/// for the shell). `env_server` is `$ZK_SERVER`, used when `-server` is not given. `--json` is
/// honoured anywhere before a `--`.
///
/// Errors with a usage error for an unknown global flag or a flag without its value.
pub fn parse_global(
    args: &[String],
    env_server: Option<String>,
) -> Result<(GlobalOpts, Vec<String>), CliError> {
    let mut opts = GlobalOpts::default();
    if let Some(s) = env_server.filter(|s| !s.trim().is_empty()) {
        opts.server = s;
    }
    let mut i = 0;
    let value = |i: &mut usize, flag: &str| -> Result<String, CliError> {
        *i += 1;
        args.get(*i)
            .cloned()
            .ok_or_else(|| CliError::usage(format!("{flag} needs a value"), MAIN_USAGE))
    };
    while i < args.len() {
        let arg = args[i].as_str();
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_owned())),
            _ => (arg, None),
        };
        let take = |i: &mut usize| match &inline {
            Some(v) => Ok(v.clone()),
            None => value(i, flag),
        };
        match flag {
            "-server" | "--server" => opts.server = take(&mut i)?,
            "-timeout" | "--timeout" => {
                let v = take(&mut i)?;
                let ms: u64 = v.parse().map_err(|_| {
                    CliError::usage(
                        format!("-timeout takes milliseconds, not {v:?}"),
                        MAIN_USAGE,
                    )
                })?;
                opts.session_timeout = Duration::from_millis(ms);
            }
            "--connect-timeout" => {
                let v = take(&mut i)?;
                opts.connect_timeout = parse_seconds(&v).ok_or_else(|| {
                    CliError::usage(
                        format!("--connect-timeout takes seconds, not {v:?}"),
                        MAIN_USAGE,
                    )
                })?;
            }
            "-client-configuration" | "--client-configuration" => {
                opts.security.client_config = Some(take(&mut i)?.into());
            }
            "--jaas" => opts.security.jaas = Some(take(&mut i)?.into()),
            "--tls-ca" => opts.security.tls_ca = Some(take(&mut i)?.into()),
            "--tls-cert" => opts.security.tls_cert = Some(take(&mut i)?.into()),
            "--tls-key" => opts.security.tls_key = Some(take(&mut i)?.into()),
            // -Dkey=value, as zkCli.sh passes JVM properties.
            f if f.starts_with("-D") && f.len() > 2 => {
                let (k, v) = arg[2..].split_once('=').ok_or_else(|| {
                    CliError::usage(format!("{arg}: -D takes key=value"), MAIN_USAGE)
                })?;
                opts.security.properties.push((k.to_owned(), v.to_owned()));
            }
            "-r" | "--read-only" => opts.read_only = true,
            "--json" => opts.json = true,
            "-h" | "-help" | "--help" => opts.help = true,
            "-V" | "-version" | "--version" => opts.version = true,
            // zkCli flags that change nothing here.
            "-waitforconnection" => {}
            "--" => {
                i += 1;
                break;
            }
            f if f.starts_with('-') && f.len() > 1 => {
                return Err(CliError::usage(format!("unknown option {f}"), MAIN_USAGE));
            }
            _ => break,
        }
        i += 1;
    }
    let mut rest = Vec::new();
    let mut literal = false;
    for a in &args[i.min(args.len())..] {
        if !literal && a == "--json" {
            opts.json = true;
            continue;
        }
        if a == "--" {
            literal = true;
        }
        rest.push(a.clone());
    }
    Ok((opts, rest))
}

/// Parses a non-negative number of seconds (`5`, `0.5`).
fn parse_seconds(s: &str) -> Option<Duration> {
    let secs: f64 = s.parse().ok()?;
    if (0.0..1e9).contains(&secs) {
        Some(Duration::from_secs_f64(secs))
    } else {
        None
    }
}

/// A word of a line: its text and whether any of it was quoted (a quoted `;` is data).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    /// The text, quotes removed.
    pub text: String,
    /// Whether the word had quotes (so `";"` is not a separator).
    pub quoted: bool,
}

/// Splits a line as a shell would: words separated by blanks; `'...'` is literal; `"..."` allows
/// `\"` and `\\`; a backslash outside quotes escapes the next character. With `semicolons`, an
/// unquoted `;` is a word of its own (the separator of `txn`).
///
/// Errors with a message for an unterminated quote.
pub fn split_line(line: &str, semicolons: bool) -> Result<Vec<Word>, String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quoted = false;
    let mut chars = line.chars();
    let end_word = |words: &mut Vec<Word>, cur: &mut String, in_word: &mut bool, q: &mut bool| {
        if *in_word {
            words.push(Word {
                text: std::mem::take(cur),
                quoted: *q,
            });
        }
        *in_word = false;
        *q = false;
    };
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => end_word(&mut words, &mut cur, &mut in_word, &mut quoted),
            ';' if semicolons => {
                end_word(&mut words, &mut cur, &mut in_word, &mut quoted);
                words.push(Word {
                    text: ";".into(),
                    quoted: false,
                });
            }
            '\'' => {
                in_word = true;
                quoted = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => cur.push(c),
                        None => return Err("unterminated ' quote".into()),
                    }
                }
            }
            '"' => {
                in_word = true;
                quoted = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\')) => cur.push(c),
                            Some(c) => {
                                cur.push('\\');
                                cur.push(c);
                            }
                            None => return Err("unterminated \" quote".into()),
                        },
                        Some(c) => cur.push(c),
                        None => return Err("unterminated \" quote".into()),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(c) = chars.next() {
                    cur.push(c);
                    quoted = quoted || c == ';';
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    end_word(&mut words, &mut cur, &mut in_word, &mut quoted);
    Ok(words)
}

/// How a command flag is written and whether it takes a value.
#[derive(Debug, Clone, Copy)]
pub struct FlagSpec {
    /// The flag as typed, e.g. `-v` or `--count`.
    pub name: &'static str,
    /// Whether the next word is its value.
    pub takes_value: bool,
}

/// A boolean flag.
pub const fn flag(name: &'static str) -> FlagSpec {
    FlagSpec {
        name,
        takes_value: false,
    }
}

/// A flag with a value.
pub const fn opt(name: &'static str) -> FlagSpec {
    FlagSpec {
        name,
        takes_value: true,
    }
}

/// A command's arguments after flag parsing.
#[derive(Debug, Default)]
pub struct Parsed {
    /// Boolean flags seen.
    pub flags: Vec<&'static str>,
    /// Values of value flags (the last one wins; `all` keeps every one).
    pub values: HashMap<&'static str, Vec<String>>,
    /// The remaining words, in order.
    pub positional: Vec<String>,
}

impl Parsed {
    /// Whether the boolean flag was given.
    pub fn has(&self, name: &str) -> bool {
        self.flags.contains(&name)
    }

    /// The value of a value flag (the last one given).
    pub fn value(&self, name: &str) -> Option<&str> {
        self.values
            .get(name)
            .and_then(|v| v.last())
            .map(String::as_str)
    }

    /// Every value given for a flag that may repeat.
    pub fn all(&self, name: &str) -> &[String] {
        self.values.get(name).map(Vec::as_slice).unwrap_or(&[])
    }
}

/// Parses a command's words against its flags. Flags may come anywhere (as with zkCli's
/// `removewatches path -c`); `--` ends them; boolean flags combine (`-se`); a word that looks like
/// a negative number is positional.
///
/// Errors with a usage error for an unknown flag or a missing flag value.
pub fn parse_flags(words: &[String], specs: &[FlagSpec], usage: &str) -> Result<Parsed, CliError> {
    let mut p = Parsed::default();
    let mut i = 0;
    let find = |name: &str| specs.iter().find(|s| s.name == name);
    while i < words.len() {
        let w = &words[i];
        if w == "--" {
            p.positional.extend(words[i + 1..].iter().cloned());
            break;
        }
        if let Some(spec) = find(w) {
            if spec.takes_value {
                i += 1;
                let v = words.get(i).ok_or_else(|| {
                    CliError::usage(format!("option {} needs a value", spec.name), usage)
                })?;
                p.values.entry(spec.name).or_default().push(v.clone());
            } else if !p.flags.contains(&spec.name) {
                p.flags.push(spec.name);
            }
        } else if is_flag_like(w) {
            // Combined boolean flags: -se for -s -e.
            let combined: Option<Vec<&'static str>> = w[1..]
                .chars()
                .map(|c| {
                    specs
                        .iter()
                        .find(|s| !s.takes_value && s.name.len() == 2 && s.name.ends_with(c))
                        .map(|s| s.name)
                })
                .collect();
            match combined {
                Some(names) if !w.starts_with("--") => {
                    for n in names {
                        if !p.flags.contains(&n) {
                            p.flags.push(n);
                        }
                    }
                }
                _ => {
                    return Err(CliError::usage(
                        format!("unknown option {w} (put -- before a value that starts with -)"),
                        usage,
                    ))
                }
            }
        } else {
            p.positional.push(w.clone());
        }
        i += 1;
    }
    Ok(p)
}

/// Whether a word looks like a flag: `-x`, not `-`, not `-12`.
fn is_flag_like(w: &str) -> bool {
    w.len() > 1 && w.starts_with('-') && w.parse::<f64>().is_err()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn global_flags_zkcli_style() {
        let (o, rest) = parse_global(
            &s(&[
                "-server", "h:1/app", "-timeout", "5000", "-r", "ls", "/", "--json",
            ]),
            None,
        )
        .unwrap();
        assert_eq!(o.server, "h:1/app");
        assert_eq!(o.session_timeout, Duration::from_millis(5000));
        assert!(o.read_only && o.json);
        assert_eq!(rest, s(&["ls", "/"]));
        let (o, rest) = parse_global(&s(&["--server=h:2"]), Some("e:3".into())).unwrap();
        assert_eq!(o.server, "h:2");
        assert!(rest.is_empty());
        let (o, _) = parse_global(&s(&[]), Some("e:3".into())).unwrap();
        assert_eq!(o.server, "e:3");
        assert!(parse_global(&s(&["-server"]), None).is_err());
        assert!(parse_global(&s(&["-bogus"]), None).is_err());
        assert!(parse_global(&s(&["-timeout", "x"]), None).is_err());
    }

    #[test]
    fn security_flags() {
        let (o, rest) = parse_global(
            &s(&[
                "-client-configuration",
                "/c.properties",
                "-Djava.security.auth.login.config=/j.conf",
                "--tls-ca",
                "/ca.pem",
                "--tls-cert=/c.pem",
                "--tls-key",
                "/k.pem",
                "--jaas",
                "/jaas.conf",
                "ls",
                "/",
            ]),
            None,
        )
        .unwrap();
        assert_eq!(rest, s(&["ls", "/"]));
        let sec = &o.security;
        assert_eq!(sec.client_config.as_deref(), Some("/c.properties".as_ref()));
        assert_eq!(
            sec.properties,
            vec![("java.security.auth.login.config".into(), "/j.conf".into())]
        );
        assert_eq!(sec.tls_ca.as_deref(), Some("/ca.pem".as_ref()));
        assert_eq!(sec.tls_cert.as_deref(), Some("/c.pem".as_ref()));
        assert_eq!(sec.tls_key.as_deref(), Some("/k.pem".as_ref()));
        assert_eq!(sec.jaas.as_deref(), Some("/jaas.conf".as_ref()));
        assert!(parse_global(&s(&["-Dnovalue"]), None).is_err());
    }

    #[test]
    fn json_after_double_dash_is_data() {
        let (o, rest) = parse_global(&s(&["set", "/x", "--", "--json"]), None).unwrap();
        assert!(!o.json);
        assert_eq!(rest, s(&["set", "/x", "--", "--json"]));
    }

    #[test]
    fn splits_like_a_shell() {
        let w = split_line(r#"create /a "hello world" 'x;y' a\ b"#, true).unwrap();
        let t: Vec<_> = w.iter().map(|w| w.text.as_str()).collect();
        assert_eq!(t, ["create", "/a", "hello world", "x;y", "a b"]);
        let w = split_line("create /a x; set /b y", true).unwrap();
        let t: Vec<_> = w.iter().map(|w| w.text.as_str()).collect();
        assert_eq!(t, ["create", "/a", "x", ";", "set", "/b", "y"]);
        assert!(!w[3].quoted);
        let w = split_line("set /a x;y", false).unwrap();
        assert_eq!(w[2].text, "x;y");
        assert!(split_line("get \"/a", false).is_err());
        assert_eq!(split_line("create /a \"\"", false).unwrap()[2].text, "");
    }

    #[test]
    fn flags_anywhere_and_combined() {
        let specs = [flag("-s"), flag("-e"), opt("-t")];
        let p = parse_flags(&s(&["-se", "/a", "-t", "10", "data"]), &specs, "u").unwrap();
        assert!(p.has("-s") && p.has("-e"));
        assert_eq!(p.value("-t"), Some("10"));
        assert_eq!(p.positional, s(&["/a", "data"]));
        let p = parse_flags(&s(&["/a", "-1"]), &specs, "u").unwrap();
        assert_eq!(p.positional, s(&["/a", "-1"]));
        let p = parse_flags(&s(&["/a", "--", "-x"]), &specs, "u").unwrap();
        assert_eq!(p.positional, s(&["/a", "-x"]));
        assert!(parse_flags(&s(&["-x", "/a"]), &specs, "u").is_err());
        assert!(parse_flags(&s(&["/a", "-t"]), &specs, "u").is_err());
    }
}
