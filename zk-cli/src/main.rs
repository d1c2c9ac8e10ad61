//! `zk`, the command-line ZooKeeper client: zkCli.sh's commands and flags on zk-rs.
//!
//! ```text
//! zk -server 127.0.0.1:2181 create /app "hello"     # one command, then exit
//! zk -server 127.0.0.1:2181 --json get /app          # JSON output
//! zk -server 127.0.0.1:2181/app                      # the interactive shell, chrooted
//! ```
//!
//! The pieces: [`args`] (global flags, the shell's tokenizer, command flags), [`commands`] (one
//! unit per command: name, usage, parsing, running; and the table of them), [`exec`] (what a
//! command runs with: the session, output, the shell's watches), [`output`] (zkCli's text layouts
//! and JSON), [`shell`] (line editing, history, completion), [`walk`] (subtrees), [`progress`],
//! [`error`] (messages and exit codes).

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod args;
mod commands;
mod error;
mod exec;
mod output;
mod progress;
mod security;
mod shell;
mod walk;

use serde_json::json;

use crate::args::{parse_global, GlobalOpts};
use crate::error::{CliError, EXIT_OK, EXIT_OTHER};
use crate::exec::{Ctx, Flow, Mode, Watches};
use crate::output::Out;

fn main() {
    init_log();
    let args: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let code = run(args);
    std::process::exit(code);
}

/// `ZK_LOG=debug` (or per crate: `ZK_LOG=zk_core=trace,zk_client=debug`) writes the client's
/// own log to stderr: connections, session states, re-armed watches, every request's span. For
/// finding out why a command waits; off when unset. A spec that does not parse is reported and
/// ignored.
fn init_log() {
    use tracing_subscriber::layer::SubscriberExt;
    let Ok(spec) = std::env::var("ZK_LOG") else {
        return;
    };
    let targets = match spec.parse::<tracing_subscriber::filter::Targets>() {
        Ok(t) => t,
        Err(e) => {
            eprintln!("zk: ignoring ZK_LOG={spec:?}: {e}");
            return;
        }
    };
    // The builder's own filter (INFO by default) lets everything through: `targets` decides.
    let subscriber = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(tracing::level_filters::LevelFilter::TRACE)
        .finish()
        .with(targets);
    // Only fails if a subscriber is already set, which nothing else in `zk` does.
    let _ = tracing::subscriber::set_global_default(subscriber);
}

/// Runs `zk` with its arguments; returns the exit code.
fn run(args: Vec<String>) -> i32 {
    let (opts, words) = match parse_global(&args, std::env::var("ZK_SERVER").ok()) {
        Ok(x) => x,
        Err(e) => return report(&e, args.iter().any(|a| a == "--json")),
    };
    if opts.version {
        println!("zk {}", env!("CARGO_PKG_VERSION"));
        return EXIT_OK;
    }
    if opts.help {
        println!("{}", help_text());
        return EXIT_OK;
    }
    // A Kerberos keytab from the JAAS file reaches MIT krb5 only through the environment, which
    // is changed here, while `zk` still has one thread (the runtime below starts others).
    // Errors in the files are reported when connecting.
    if let Ok(crate::security::Security {
        sasl: Some(crate::security::Sasl::Kerberos(login)),
        ..
    }) = opts.security.resolve()
    {
        login.export_env();
    }
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            return report(
                &CliError::Other {
                    message: format!("cannot start the runtime: {e}"),
                    code: EXIT_OTHER,
                },
                opts.json,
            )
        }
    };
    if words.is_empty() {
        shell::run(&rt, opts)
    } else {
        rt.block_on(one_shot(opts, words))
    }
}

/// Runs one command and returns the exit code.
async fn one_shot(opts: GlobalOpts, words: Vec<String>) -> i32 {
    let json = opts.json;
    let cmd = match commands::parse(&words) {
        Ok(c) => c,
        Err(e) => return report(&e, json),
    };
    let client = if cmd.needs_session() {
        match exec::connect(&opts, &opts.server.clone()).await {
            Ok(c) => Some(c),
            Err(e) => return report(&e, json),
        }
    } else {
        None
    };
    let streaming = cmd.interrupt_is_success(Mode::OneShot);
    let mut ctx = Ctx {
        opts,
        client,
        out: Out::new(json),
        mode: Mode::OneShot,
        watches: Watches::default(),
    };
    let result = if cmd.handles_interrupt() {
        ctx.run(cmd).await
    } else {
        tokio::select! {
            r = ctx.run(cmd) => r,
            _ = interrupted() => Err(CliError::Interrupted),
        }
    };
    if let Some(c) = ctx.client.take() {
        c.close().await;
    }
    match result {
        Ok(Flow::Continue | Flow::Quit) => EXIT_OK,
        // Ctrl-C is how a stream of events is meant to end.
        Err(CliError::Interrupted) if streaming => EXIT_OK,
        Err(e) => report(&e, json),
    }
}

/// Resolves on Ctrl-C (never, if the signal cannot be caught).
pub async fn interrupted() {
    if tokio::signal::ctrl_c().await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Prints an error (stderr; with `--json` also a JSON object on stdout) and returns its exit
/// code.
pub fn report(e: &CliError, json: bool) -> i32 {
    // A program's own exit status passes through silently, as from a shell.
    if let CliError::Exit(code) = e {
        return *code;
    }
    if json {
        let j = json!({"error": {
            "kind": e.kind(),
            "message": e.to_string(),
            "path": e.path(),
            "exitCode": e.exit_code(),
        }});
        Out::new(true).line(&j.to_string());
    }
    eprintln!("{e}");
    if let Some(h) = e.hint() {
        eprintln!("{h}");
    }
    e.exit_code()
}

/// `zk help`: the usage, the options, every command, the notes on watches and txn, the exit
/// codes.
pub fn help_text() -> String {
    let mut lines: Vec<String> = vec![
        format!(
            "zk {}: a ZooKeeper command-line client with zkCli.sh's commands and flags",
            env!("CARGO_PKG_VERSION")
        ),
        String::new(),
        format!("usage: {}", args::MAIN_USAGE),
        "  With a COMMAND it runs that command and exits; without one it opens an interactive"
            .into(),
        "  shell (line editing, history in ~/.zk_history, Tab completes commands and paths)."
            .into(),
        String::new(),
        "Options:".into(),
        "  -server HOSTS           servers and an optional chroot: 127.0.0.1:2181,127.0.0.1:2182/app"
            .into(),
        format!(
            "                          (default: $ZK_SERVER, else {})",
            args::DEFAULT_SERVER
        ),
        "  -timeout MS             session timeout to ask for (default 30000; the server may clamp it)"
            .into(),
        "  -r                      accept a read-only server".into(),
        "  --json                  print JSON: one object per result or event; errors as {\"error\": ...}"
            .into(),
        "  --connect-timeout SECS  how long to wait for a server; also the most one attempt at one"
            .into(),
        "                          server may take, after a disconnect too (default 5)".into(),
        "  -client-configuration FILE  zkCli's client properties: zookeeper.client.secure,".into(),
        "                          zookeeper.ssl.{trustStore,keyStore}.{location,type,password,"
            .into(),
        "                          passwordPath} (PEM or PKCS12; passwordPath: a file holding the"
            .into(),
        "                          password; the PEM key store's password decrypts its key),"
            .into(),
        "                          zookeeper.ssl.hostnameVerification, zookeeper.sasl.client,".into(),
        "                          zookeeper.sasl.clientconfig, java.security.auth.login.config,"
            .into(),
        "                          zookeeper.sasl.client.username, zookeeper.server.principal,"
            .into(),
        "                          zookeeper.server.realm (Kerberos)".into(),
        "  -Dkey=value             one such property (e.g. -Djava.security.auth.login.config=F)"
            .into(),
        "  --jaas FILE             JAAS file whose Client section logs in: DigestLoginModule"
            .into(),
        "                          (username, password: SASL DIGEST-MD5) or Krb5LoginModule"
            .into(),
        "                          (keyTab, principal: Kerberos, if built with gssapi)".into(),
        "  --tls-ca FILE           connect with TLS, trusting this CA (PEM)".into(),
        "  --tls-cert FILE         client certificate (PEM) for servers that require one".into(),
        "  --tls-key FILE          its private key (PEM)".into(),
        String::new(),
        "Commands:".into(),
    ];
    for c in commands::COMMANDS {
        lines.push(format!("  {}", c.usage));
        lines.push(format!("      {}", c.summary));
    }
    for l in [
        "",
        "Watches: in the shell, the events of -w and addWatch print whenever they fire. In one-shot",
        "mode, get/ls/stat/config -w print the result, wait for the watch to fire and print the",
        "event; addWatch prints events like watch, until Ctrl-C.",
        "",
        "txn: ops separated by ';', applied all or none. In the shell:",
        "  txn create /a x ; set /b y ; check /c 0 ; delete /d",
        "From a shell prompt, quote the ops as one argument:",
        "  zk txn 'create /a x; set -v 1 /b y; check /c 0; delete /d'",
        "check PATH [VERSION] fails the transaction unless PATH has that data version (without one:",
        "unless PATH exists).",
        "",
        "lock and elect: a distributed flock. They wait for the lock (or leadership) at PATH on",
        "kazoo's layout (<hex>__lock__<seq> nodes, so Python services using kazoo's Lock or",
        "Election contend too), run CMD with zk's stdin/stdout/stderr, release when it ends and",
        "exit with its status (a signal N gives 128+N). If ownership is lost while CMD runs, zk",
        "sends it SIGTERM, then SIGKILL after --grace SECS (default 10), and exits 125. By default",
        "a suspended connection counts as lost (--on-suspend=kill: another process may hold the",
        "lock before this one hears from ZooKeeper again); --on-suspend=wait stops CMD only when",
        "the session has expired. SIGINT, SIGTERM and SIGHUP sent to zk go to CMD; zk releases once",
        "it ends. Before CMD runs, zk's own codes apply (1-6 below; 124 after lock --timeout SECS).",
        "lock's --timeout is seconds to wait for the lock; -timeout before the command is still",
        "the session timeout in ms.",
        "  zk lock /locks/backup --timeout 30 -- pg_dump -f backup.sql app",
        "  zk elect /election/cron -- ./run-scheduler",
        "",
        "ZK_LOG=debug (or ZK_LOG=zk_core=trace,zk_client=debug) logs what the client does to",
        "stderr: connections, session states, re-armed watches, requests.",
        "",
    ] {
        lines.push(l.into());
    }
    lines.push(error::EXIT_CODES_HELP.into());
    lines.join("\n")
}
