//! Running a parsed command against a session, in one-shot mode or in the shell, and printing
//! its result as text or JSON.

use std::collections::HashMap;
use std::future::poll_fn;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_core::Stream;
use serde_json::{json, Map, Value};
use zk_core::proto::{AddWatchMode, Stat};
use zk_core::{Error, SessionState};
use zk_tokio::WatchEnd;
use zk_tokio::{Client, PersistentItem, PersistentWatch, TokioRuntime, Watch};

/// What a persistent watch's resync item prints (to stderr): the server re-armed the watch after
/// a reconnect but reports nothing that changed meanwhile.
const RESYNC_NOTE: &str =
    "reconnected: the watch is armed again; changes made while disconnected were not reported";

use crate::args::{GlobalOpts, MAIN_USAGE};
use crate::commands::watch::WatchKind;
use crate::commands::Parsed;
use crate::error::CliError;
use crate::output::{self, Out};
use crate::security::Sasl;

/// How long a request may wait for its reply (also while the client reconnects).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Whether the command runs alone (and the process exits after it) or in the shell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `zk CMD ARGS`: a `-w` waits for its event; `addWatch` streams events.
    OneShot,
    /// The interactive shell: watches print their events whenever they fire.
    Shell,
}

/// What the shell does after a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Read the next command.
    Continue,
    /// Leave.
    Quit,
}

/// A watch the shell armed, so `removewatches` can find it.
#[derive(Debug)]
struct ArmedWatch {
    path: String,
    kind: ArmedKind,
    task: tokio::task::AbortHandle,
}

/// What kind of watch the shell armed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArmedKind {
    /// A data or exists watch.
    Data,
    /// A child watch.
    Child,
    /// A persistent (recursive or not) watch.
    Persistent,
}

/// The watches armed in the shell, each owned by a task that prints its events.
#[derive(Debug, Default, Clone)]
pub struct Watches {
    inner: Arc<Mutex<(u64, HashMap<u64, ArmedWatch>)>>,
}

impl Watches {
    fn add(&self, path: &str, kind: ArmedKind, task: tokio::task::AbortHandle) -> u64 {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        g.0 += 1;
        let id = g.0;
        g.1.insert(
            id,
            ArmedWatch {
                path: path.to_owned(),
                kind,
                task,
            },
        );
        id
    }

    fn forget(&self, id: u64) {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        g.1.remove(&id);
    }

    /// Stops the watches on `path` of `kind`; dropping them removes them from the server too.
    /// Returns how many there were.
    pub(crate) fn remove(&self, path: &str, kind: WatchKind) -> usize {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let ids: Vec<u64> =
            g.1.iter()
                .filter(|(_, w)| {
                    w.path == path
                        && match kind {
                            WatchKind::Any => true,
                            WatchKind::Data => w.kind == ArmedKind::Data,
                            WatchKind::Child => w.kind == ArmedKind::Child,
                        }
                })
                .map(|(id, _)| *id)
                .collect();
        for id in &ids {
            if let Some(w) = g.1.remove(id) {
                w.task.abort();
            }
        }
        ids.len()
    }

    /// Stops every watch (the session is going away).
    pub fn clear(&self) {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        for (_, w) in g.1.drain() {
            w.task.abort();
        }
    }
}

/// What a command runs with.
#[derive(Debug)]
pub struct Ctx {
    /// The global options (the shell's `connect` changes `server`).
    pub opts: GlobalOpts,
    /// The session, when the command needs one.
    pub client: Option<Client>,
    /// Where output goes.
    pub out: Out,
    /// One-shot or shell.
    pub mode: Mode,
    /// The shell's armed watches.
    pub watches: Watches,
}

/// How long one attempt at one server (TCP, TLS, handshake) may take: the client's default
/// (session timeout / servers, as the Java client and kazoo), but never more than the connect
/// timeout, "how long to wait for a server". A command that holds a lock for long (`zk lock -timeout
/// 60000`) otherwise waits the whole session timeout on a server that accepts the connection and
/// never answers the handshake (a restarting server did once), and its session expires before it
/// tries again; capped, it tries again within the session.
fn host_connect_timeout(opts: &GlobalOpts, hosts: usize) -> Duration {
    let share = opts.session_timeout / u32::try_from(hosts).unwrap_or(u32::MAX);
    share
        .min(opts.connect_timeout)
        .max(Duration::from_millis(1))
}

/// Connects to `server` with the global options and waits for the session.
///
/// Errors with a usage error for a malformed server list, `Unreachable` when no server answered
/// within the connect timeout, and the client's error otherwise (AuthFailed, ...).
pub async fn connect(opts: &GlobalOpts, server: &str) -> Result<Client, CliError> {
    let hosts = match zk_core::ConnectString::parse(server) {
        Ok(parsed) => parsed.hosts.len().max(1),
        Err(e) => {
            return Err(CliError::usage(
                format!("bad server list {server:?}: {e}"),
                MAIN_USAGE,
            ))
        }
    };
    let security = opts.security.resolve()?;
    let mut builder = zk_tokio::ClientBuilder::new(TokioRuntime::default().shared(), server)
        .session_timeout(opts.session_timeout)
        .read_only(opts.read_only)
        .connect_timeout(opts.connect_timeout)
        .host_connect_timeout(host_connect_timeout(opts, hosts))
        .request_timeout(REQUEST_TIMEOUT);
    if let Some(tls) = security.tls {
        builder = builder.tls(tls);
    }
    match &security.sasl {
        Some(Sasl::Digest { user, password }) => builder = builder.sasl_digest(user, password),
        #[cfg(feature = "gssapi")]
        Some(Sasl::Kerberos(login)) => builder = builder.sasl_kerberos(login.config()),
        #[cfg(not(feature = "gssapi"))]
        Some(Sasl::Kerberos(_)) => {
            return Err(CliError::bad_input(
                "the JAAS Client section asks for Kerberos (Krb5LoginModule), but this zk was \
                 built without it: cargo build -p zk-cli --features gssapi",
            ))
        }
        None => {}
    }
    let client = builder
        .build()
        .map_err(|e| CliError::zk(e, format!("connect {server}")))?;
    match client.start().await {
        Ok(()) => Ok(client),
        Err(e) => {
            // A refused SASL login says why (wrong password...) only on the client.
            let why = client.auth_failure();
            client.close().await;
            match (e, why) {
                (Error::ConnectFailed { causes }, _) => Err(CliError::Unreachable {
                    servers: server.to_owned(),
                    waited: opts.connect_timeout.as_secs_f64(),
                    causes: causes
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("; "),
                }),
                (e, Some(why)) => Err(CliError::zk(e, format!("connect {server}: {why}"))),
                (e, None) => Err(CliError::zk(e, format!("connect {server}"))),
            }
        }
    }
}

/// The next item of a stream.
async fn next<S: Stream + Unpin>(s: &mut S) -> Option<S::Item> {
    poll_fn(|cx| Pin::new(&mut *s).poll_next(cx)).await
}

/// The fields of a JSON object (empty for anything else).
pub(crate) fn obj(pairs: Value) -> Map<String, Value> {
    match pairs {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

impl Ctx {
    /// The session, or Closed when there is none.
    pub(crate) fn client(&self) -> Result<&Client, CliError> {
        self.client
            .as_ref()
            .ok_or_else(|| CliError::zk(Error::Closed, "no session"))
    }

    /// Runs one parsed command.
    ///
    /// Errors with the command's [`CliError`]; the caller prints it.
    pub async fn run(&mut self, cmd: Box<dyn Parsed>) -> Result<Flow, CliError> {
        cmd.run(self).await
    }

    /// Prints a Stat if asked (`-s`), and always in JSON.
    pub(crate) fn emit_stat(&self, path: &str, st: &Stat, show: bool) {
        let j = json!({"path": path, "stat": output::stat_json(st)});
        if show {
            self.out.emit(&output::stat_text(st), j);
        } else {
            self.out.emit_quiet(j);
        }
    }

    /// After a command armed a one-shot watch: one-shot mode waits for it and prints the event;
    /// the shell prints it whenever it fires.
    pub(crate) async fn after_watch(
        &self,
        w: Watch,
        path: &str,
        kind: ArmedKind,
        ctx: &str,
    ) -> Result<(), CliError> {
        match self.mode {
            Mode::Shell => {
                self.spawn_watch(w, path, kind);
                Ok(())
            }
            Mode::OneShot => {
                let ev = w.await.map_err(|e| CliError::zk(e, ctx.to_owned()))?;
                self.out
                    .emit(&output::event_text_zkcli(&ev), output::event_json(&ev));
                Ok(())
            }
        }
    }

    /// Hands a one-shot watch to a task that prints its event (the shell).
    pub(crate) fn spawn_watch(&self, w: Watch, path: &str, kind: ArmedKind) {
        let out = self.out.clone();
        let watches = self.watches.clone();
        let (tx, rx) = tokio::sync::oneshot::channel::<u64>();
        let task = tokio::spawn(async move {
            let result = w.await;
            if let Ok(id) = rx.await {
                watches.forget(id);
            }
            if let Ok(ev) = result {
                out.async_emit(&output::event_text_zkcli(&ev), output::event_json(&ev));
            }
        });
        let id = self.watches.add(path, kind, task.abort_handle());
        let _ = tx.send(id);
    }

    /// Hands a persistent watch to a task that prints its events (the shell).
    pub(crate) fn spawn_persistent(&self, mut w: PersistentWatch, path: &str) {
        let out = self.out.clone();
        let task = tokio::spawn(async move {
            while let Some(item) = next(&mut w).await {
                match item {
                    PersistentItem::Event(ev) => {
                        out.async_emit(&output::event_text_zkcli(&ev), output::event_json(&ev))
                    }
                    PersistentItem::Resync => eprintln!("{RESYNC_NOTE}"),
                }
            }
        });
        self.watches
            .add(path, ArmedKind::Persistent, task.abort_handle());
    }

    /// Prints a persistent watch's events until `count` of them, the end of the session, or
    /// Ctrl-C (which the caller turns into success). Connection changes go to stderr.
    pub(crate) async fn stream(
        &self,
        mut watch: PersistentWatch,
        path: &str,
        mode: AddWatchMode,
        count: Option<u64>,
        zkcli_format: bool,
    ) -> Result<(), CliError> {
        let client = self.client()?;
        let mut states = client.state_changes();
        let what = match mode {
            AddWatchMode::PersistentRecursive => "and everything below it",
            _ => "(the node itself)",
        };
        let until = match count {
            Some(n) => format!("for {n} event{}", if n == 1 { "" } else { "s" }),
            None => "until Ctrl-C".into(),
        };
        eprintln!("watching {path} {what} {until}");
        let mut seen = 0u64;
        let mut states_open = true;
        loop {
            tokio::select! {
                ev = next(&mut watch) => match ev {
                    Some(PersistentItem::Resync) => eprintln!("{RESYNC_NOTE}"),
                    Some(PersistentItem::Event(ev)) => {
                        let text = if zkcli_format {
                            output::event_text_zkcli(&ev)
                        } else {
                            output::event_text_short(&ev)
                        };
                        self.out.emit(&text, output::event_json(&ev));
                        seen += 1;
                        if count.is_some_and(|n| seen >= n) {
                            return Ok(());
                        }
                    }
                    None => {
                        let err = match watch.end_reason() {
                            Some(WatchEnd::SessionLost(r)) => r.error(),
                            Some(_) => Error::Unimplemented,
                            None => Error::Closed,
                        };
                        return Err(CliError::zk(err, format!("watch {path}")));
                    }
                },
                st = next(&mut states), if states_open => match st {
                    Some(SessionState::Suspended) => eprintln!("connection lost; reconnecting"),
                    Some(s) if s.is_connected() => {
                        let host = client.current_host().map(|h| h.to_string()).unwrap_or_default();
                        eprintln!("reconnected to {host}");
                    }
                    Some(_) => {}
                    // The client stopped; the watch stream ends too and says why.
                    None => states_open = false,
                },
            }
        }
    }
}

impl Out {
    /// Prints nothing in text mode (zkCli prints nothing for this command) and `value` in JSON.
    pub fn emit_quiet(&self, value: Value) {
        if self.json {
            self.line(&value.to_string());
        }
    }
}
