//! Running a parsed [`Command`] against a session, in one-shot mode or in the shell, and printing
//! its result as text or JSON.

use std::collections::HashMap;
use std::future::poll_fn;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_core::Stream;
use serde_json::{json, Map, Value};
use zk_core::proto::{AddWatchMode, Stat};
use zk_core::{Error, SessionState};
use zk_tokio::WatchEnd;
use zk_tokio::{
    Client, OpResult, PersistentItem, PersistentWatch, TokioRuntime, Watch, WatcherType,
};

/// What a persistent watch's resync item prints (to stderr): the server re-armed the watch after
/// a reconnect but reports nothing that changed meanwhile.
const RESYNC_NOTE: &str =
    "reconnected: the watch is armed again; changes made while disconnected were not reported";

use crate::args::{GlobalOpts, MAIN_USAGE};
use crate::commands::{self, Command, Reconfig, TxnOp, WatchKind};
use crate::error::CliError;
use crate::output::{self, Out};
use crate::progress::Progress;
use crate::walk;

/// How long a request may wait for its reply (also while the client reconnects).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a four-letter word may take.
const FOUR_LETTER_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest four-letter-word answer read.
const FOUR_LETTER_MAX: usize = 4 * 1024 * 1024;

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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ArmedKind {
    Data,
    Child,
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
    fn remove(&self, path: &str, kind: WatchKind) -> usize {
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

/// Connects to `server` with the global options and waits for the session.
///
/// Errors with a usage error for a malformed server list, `Unreachable` when no server answered
/// within the connect timeout, and the client's error otherwise (AuthFailed, ...).
pub async fn connect(opts: &GlobalOpts, server: &str) -> Result<Client, CliError> {
    if let Err(e) = zk_core::ConnectString::parse(server) {
        return Err(CliError::usage(
            format!("bad server list {server:?}: {e}"),
            MAIN_USAGE,
        ));
    }
    let security = opts.security.resolve()?;
    let mut builder = zk_tokio::ClientBuilder::new(TokioRuntime::default().shared(), server)
        .session_timeout(opts.session_timeout)
        .read_only(opts.read_only)
        .connect_timeout(opts.connect_timeout)
        .request_timeout(REQUEST_TIMEOUT);
    if let Some(tls) = security.tls {
        builder = builder.tls(tls);
    }
    if let Some((user, password)) = &security.sasl {
        builder = builder.sasl_digest(user, password);
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
                (Error::Timeout, _) => Err(CliError::Unreachable {
                    servers: server.to_owned(),
                    waited: opts.connect_timeout.as_secs_f64(),
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

fn obj(pairs: Value) -> Map<String, Value> {
    match pairs {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

fn created_mode_text(path: &str) -> String {
    format!("Created {path}")
}

impl Ctx {
    fn client(&self) -> Result<&Client, CliError> {
        self.client
            .as_ref()
            .ok_or_else(|| CliError::zk(Error::Closed, "no session"))
    }

    /// Runs one command.
    ///
    /// Errors with the command's [`CliError`]; the caller prints it.
    pub async fn run(&mut self, cmd: Command) -> Result<Flow, CliError> {
        let ctx = cmd.context();
        let zk = |e: Error| CliError::zk(e, ctx.clone());
        match cmd {
            Command::Ls {
                path,
                stat,
                watch,
                recursive,
            } => {
                let client = self.client()?;
                if recursive {
                    let mut progress = Progress::new("listing");
                    let tree = walk::list(client, &path, &mut progress).await.map_err(zk)?;
                    progress.finish();
                    let paths = tree.depth_first(&path);
                    self.out
                        .emit(&paths.join("\n"), json!({"path": path, "paths": paths}));
                    return Ok(Flow::Continue);
                }
                let (children, stat, w) = match (stat, watch) {
                    (false, false) => (client.get_children(&path).await.map_err(zk)?, None, None),
                    (true, false) => {
                        let (c, s) = client.get_children(&path).with_stat().await.map_err(zk)?;
                        (c, Some(s), None)
                    }
                    (false, true) => {
                        let (c, w) = client.get_children(&path).watch().await.map_err(zk)?;
                        (c, None, Some(w))
                    }
                    (true, true) => {
                        let (c, s, w) = client
                            .get_children(&path)
                            .with_stat_and_watch()
                            .await
                            .map_err(zk)?;
                        (c, Some(s), Some(w))
                    }
                };
                let mut children = children.to_vec();
                children.sort();
                let mut text = output::java_list(&children);
                let mut j = obj(json!({"path": path, "children": children}));
                if let Some(s) = &stat {
                    text = format!("{text}\n{}", output::stat_text(s));
                    j.insert("stat".into(), output::stat_json(s));
                }
                self.out.emit(&text, Value::Object(j));
                if let Some(w) = w {
                    self.after_watch(w, &path, ArmedKind::Child, &ctx).await?;
                }
            }
            Command::Create {
                path,
                data,
                acl,
                sequential,
                ephemeral,
                container,
                ttl,
            } => {
                let client = self.client()?;
                let mut b = client.create(&path, data.clone().unwrap_or_default());
                if data.is_none() {
                    b = b.null_data();
                }
                if let Some(acl) = acl {
                    b = b.acl(acl);
                }
                if sequential {
                    b = b.sequential();
                }
                if ephemeral {
                    b = b.ephemeral();
                }
                if container {
                    b = b.container();
                }
                if let Some(t) = ttl {
                    b = b.ttl(t);
                }
                let created = b.await.map_err(zk)?;
                self.out
                    .emit(&created_mode_text(&created), json!({"path": created}));
            }
            Command::Get { path, stat, watch } => {
                let client = self.client()?;
                let (data, st, w) = if watch {
                    let (d, s, w) = client.get_data(&path).watch().await.map_err(zk)?;
                    (d, s, Some(w))
                } else {
                    let (d, s) = client.get_data(&path).await.map_err(zk)?;
                    (d, s, None)
                };
                let mut text = String::from_utf8_lossy(&data).into_owned();
                if stat {
                    text = format!("{text}\n{}", output::stat_text(&st));
                }
                let mut j = obj(json!({"path": path}));
                output::data_json(&mut j, &data);
                j.insert("stat".into(), output::stat_json(&st));
                self.out.emit(&text, Value::Object(j));
                if let Some(w) = w {
                    self.after_watch(w, &path, ArmedKind::Data, &ctx).await?;
                }
            }
            Command::Set {
                path,
                data,
                version,
                stat,
            } => {
                let st = self
                    .client()?
                    .set_data(&path, data)
                    .version(version)
                    .await
                    .map_err(zk)?;
                self.emit_stat(&path, &st, stat);
            }
            Command::Stat { path, watch } => {
                let client = self.client()?;
                let (st, w) = if watch {
                    let (s, w) = client.exists(&path).watch().await.map_err(zk)?;
                    (s, Some(w))
                } else {
                    (client.exists(&path).await.map_err(zk)?, None)
                };
                let Some(st) = st else {
                    // A watch on a missing node fires when it is created: keep it in the shell.
                    if let (Some(w), Mode::Shell) = (w, self.mode) {
                        self.spawn_watch(w, &path, ArmedKind::Data);
                    }
                    return Err(zk(Error::NoNode { path }));
                };
                self.out.emit(
                    &output::stat_text(&st),
                    json!({"path": path, "stat": output::stat_json(&st)}),
                );
                if let Some(w) = w {
                    self.after_watch(w, &path, ArmedKind::Data, &ctx).await?;
                }
            }
            Command::Delete { path, version } => {
                self.client()?
                    .delete(&path)
                    .version(version)
                    .await
                    .map_err(zk)?;
                self.out.emit_quiet(json!({"path": path, "deleted": true}));
            }
            Command::DeleteAll { path, batch } => {
                if path == "/" {
                    return Err(CliError::usage(
                        "deleteall: refusing to delete / (name a node below it)",
                        commands::usage_of("deleteall").unwrap_or(""),
                    ));
                }
                let client = self.client()?;
                let mut progress = Progress::new("listing");
                let tree = walk::list(client, &path, &mut progress).await.map_err(zk)?;
                progress.relabel("deleting");
                let n = walk::delete(client, &tree, batch, &mut progress)
                    .await
                    .map_err(zk)?;
                progress.finish();
                self.out.emit_quiet(json!({"path": path, "deleted": n}));
            }
            Command::Sync { path } => {
                self.client()?.sync(&path).await.map_err(zk)?;
                self.out
                    .emit("Sync is OK", json!({"path": path, "synced": true}));
            }
            Command::GetAcl { path, stat } => {
                let (acl, st) = self.client()?.get_acl(&path).await.map_err(zk)?;
                let mut text = output::acl_text(&acl);
                if stat {
                    text = format!("{text}\n{}", output::stat_text(&st));
                }
                self.out.emit(
                    &text,
                    json!({"path": path, "acl": output::acl_json(&acl), "stat": output::stat_json(&st)}),
                );
            }
            Command::SetAcl {
                path,
                acl,
                version,
                stat,
                recursive,
            } => {
                let client = self.client()?;
                if recursive {
                    let mut progress = Progress::new("listing");
                    let tree = walk::list(client, &path, &mut progress).await.map_err(zk)?;
                    progress.relabel("setting ACLs");
                    let n = walk::set_acl(client, &tree, &acl, version, &mut progress)
                        .await
                        .map_err(zk)?;
                    progress.finish();
                    self.out.emit_quiet(json!({"path": path, "updated": n}));
                } else {
                    let st = client.set_acl(&path, acl, version).await.map_err(zk)?;
                    self.emit_stat(&path, &st, stat);
                }
            }
            Command::AddAuth { scheme, auth } => {
                self.client()?
                    .add_auth(&scheme, Bytes::from(auth.into_bytes()))
                    .await
                    .map_err(zk)?;
                self.out
                    .emit_quiet(json!({"scheme": scheme, "added": true}));
            }
            Command::WhoAmI => {
                let ids = self.client()?.whoami().await.map_err(zk)?;
                let mut text = String::from("Auth scheme: User");
                for i in &ids {
                    text.push_str(&format!("\n{}: {}", i.auth_scheme, i.user));
                }
                let list: Vec<Value> = ids
                    .iter()
                    .map(|i| json!({"scheme": i.auth_scheme, "user": i.user}))
                    .collect();
                self.out.emit(&text, json!({"identities": list}));
            }
            Command::GetEphemerals { path } => {
                let mut paths = self.client()?.get_ephemerals(&path).await.map_err(zk)?;
                paths.sort();
                self.out.emit(
                    &output::java_list(&paths),
                    json!({"path": path, "ephemerals": paths}),
                );
            }
            Command::GetAllChildrenNumber { path } => {
                let n = self
                    .client()?
                    .get_all_children_number(&path)
                    .await
                    .map_err(zk)?;
                self.out
                    .emit(&n.to_string(), json!({"path": path, "count": n}));
            }
            Command::AddWatch { path, mode } => {
                let watch = self.client()?.add_watch(&path, mode).await.map_err(zk)?;
                match self.mode {
                    Mode::Shell => {
                        self.spawn_persistent(watch, &path);
                        self.out
                            .emit_quiet(json!({"path": path, "mode": mode_name(mode)}));
                    }
                    Mode::OneShot => {
                        self.stream(watch, &path, mode, None, true).await?;
                    }
                }
            }
            Command::RemoveWatches { path, kind, local } => {
                let watcher_type = match kind {
                    WatchKind::Child => WatcherType::Children,
                    WatchKind::Data => WatcherType::Data,
                    WatchKind::Any => WatcherType::Any,
                };
                // The server first: dropping a local watcher could itself remove the server's.
                let result = self.client()?.remove_watches(&path, watcher_type).await;
                // The printing tasks of the shell end on their own once the server confirms;
                // with -l they go even when the server cannot be asked.
                let local_removed = self.watches.remove(&path, kind);
                match result {
                    Ok(()) => {}
                    Err(e) if local && local_removed > 0 && e.is_indeterminate() => {}
                    Err(e) => return Err(zk(e)),
                }
                self.out.emit_quiet(json!({"path": path, "removed": true}));
            }
            Command::Config {
                connect_string,
                watch,
                stat,
            } => self.config(connect_string, watch, stat, &ctx).await?,
            Command::Reconfig(r) => self.reconfig(r, &ctx).await?,
            Command::Watch { path, mode, count } => {
                let watch = self.client()?.add_watch(&path, mode).await.map_err(zk)?;
                self.stream(watch, &path, mode, count, false).await?;
            }
            Command::Tree { path } => {
                let client = self.client()?;
                let mut progress = Progress::new("listing");
                let tree = walk::list(client, &path, &mut progress).await.map_err(zk)?;
                progress.finish();
                let text = output::tree_text(&path, &|p: &str| tree.children_of(p));
                let nodes: Vec<Value> = tree
                    .depth_first(&path)
                    .into_iter()
                    .map(|p| {
                        let kids = tree.children_of(&p);
                        json!({"path": p, "children": kids})
                    })
                    .collect();
                self.out.emit(&text, json!({"path": path, "nodes": nodes}));
            }
            Command::Txn(ops) => self.txn(ops, &ctx).await?,
            Command::FourLetter { word, server } => self.four_letter(&word, server).await?,
            Command::Session => {
                let client = self.client()?;
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
                self.out.emit(
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
            }
            Command::Connect { server } => {
                if self.mode == Mode::OneShot {
                    return Err(CliError::bad_input(
                        "connect works in the shell; in one-shot mode pass -server HOST:PORT",
                    ));
                }
                let new = connect(&self.opts, &server).await?;
                self.watches.clear();
                if let Some(old) = self.client.replace(new) {
                    old.close().await;
                }
                self.out
                    .emit_quiet(json!({"server": server, "connected": true}));
                self.opts.server = server;
            }
            Command::Version => self.out.emit(
                &format!("zk {}", env!("CARGO_PKG_VERSION")),
                json!({"version": env!("CARGO_PKG_VERSION")}),
            ),
            Command::Help { topic } => {
                let text = match topic.as_deref() {
                    None => crate::help_text(),
                    Some(t) => match commands::find(t) {
                        Some(c) => format!("{}\n  {}", c.usage, c.summary),
                        None => return Err(CliError::bad_input(format!("no command named {t:?}"))),
                    },
                };
                let list: Vec<Value> = commands::COMMANDS
                    .iter()
                    .map(|c| json!({"name": c.name, "usage": c.usage, "summary": c.summary}))
                    .collect();
                self.out.emit(&text, json!({"commands": list}));
            }
            Command::Quit => return Ok(Flow::Quit),
        }
        Ok(Flow::Continue)
    }

    /// Prints a Stat if asked (`-s`), and always in JSON.
    fn emit_stat(&self, path: &str, st: &Stat, show: bool) {
        let j = json!({"path": path, "stat": output::stat_json(st)});
        if show {
            self.out.emit(&output::stat_text(st), j);
        } else {
            self.out.emit_quiet(j);
        }
    }

    /// After a command armed a one-shot watch: one-shot mode waits for it and prints the event;
    /// the shell prints it whenever it fires.
    async fn after_watch(
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
    fn spawn_watch(&self, w: Watch, path: &str, kind: ArmedKind) {
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
    fn spawn_persistent(&self, mut w: PersistentWatch, path: &str) {
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
    async fn stream(
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

    async fn config(
        &self,
        connect_string: bool,
        watch: bool,
        stat: bool,
        ctx: &str,
    ) -> Result<(), CliError> {
        let client = self.client()?;
        let zk = |e: Error| CliError::zk(e, ctx.to_owned());
        let (data, st, w) = if watch {
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
        if connect_string {
            let cs = config_connect_string(&text);
            self.out.emit(&cs, json!({"connectString": cs}));
        } else {
            let mut shown = text.trim_end().to_owned();
            if stat {
                shown = format!("{shown}\n{}", output::stat_text(&st));
            }
            let version = text
                .lines()
                .find_map(|l| l.strip_prefix("version="))
                .unwrap_or("");
            self.out.emit(
                &shown,
                json!({"config": text, "version": version, "stat": output::stat_json(&st)}),
            );
        }
        if let Some(w) = w {
            self.after_watch(w, "/zookeeper/config", ArmedKind::Data, ctx)
                .await?;
        }
        Ok(())
    }

    async fn reconfig(&self, r: Reconfig, ctx: &str) -> Result<(), CliError> {
        let (data, st) = self
            .client()?
            .reconfig(
                r.add.as_deref(),
                r.remove.as_deref(),
                r.members.as_deref(),
                r.version,
            )
            .await
            .map_err(|e| CliError::zk(e, ctx.to_owned()))?;
        let text = String::from_utf8_lossy(&data).into_owned();
        let mut shown = format!("Committed new configuration:\n{}", text.trim_end());
        if r.stat {
            shown = format!("{shown}\n{}", output::stat_text(&st));
        }
        self.out.emit(
            &shown,
            json!({"config": text, "stat": output::stat_json(&st)}),
        );
        Ok(())
    }

    async fn txn(&self, ops: Vec<TxnOp>, ctx: &str) -> Result<(), CliError> {
        let client = self.client()?;
        let mut t = client.transaction();
        for op in &ops {
            t = match op {
                TxnOp::Create { path, data, mode } => {
                    t.create(path, data.clone().into_bytes()).mode(*mode).end()
                }
                TxnOp::Set {
                    path,
                    data,
                    version,
                } => t.set_data(path, data.clone().into_bytes(), *version),
                TxnOp::Check { path, version } => t.check(path, *version),
                TxnOp::Delete { path, version } => t.delete(path, *version),
            };
        }
        let results = t
            .commit()
            .await
            .map_err(|e| CliError::zk(e, ctx.to_owned()))?;
        let mut lines = Vec::new();
        let mut list = Vec::new();
        for (op, res) in ops.iter().zip(&results) {
            let (line, j) = match (op, res) {
                (_, OpResult::Created { path, stat }) => (
                    format!("Created {path}"),
                    json!({"op": "create", "path": path, "stat": stat.as_ref().map(output::stat_json)}),
                ),
                (TxnOp::Set { path, .. }, OpResult::SetData { stat }) => (
                    format!("Set {path} (dataVersion {})", stat.version),
                    json!({"op": "set", "path": path, "stat": output::stat_json(stat)}),
                ),
                (TxnOp::Delete { path, .. }, OpResult::Deleted) => (
                    format!("Deleted {path}"),
                    json!({"op": "delete", "path": path}),
                ),
                (TxnOp::Check { path, .. }, OpResult::Checked) => (
                    format!("Checked {path}"),
                    json!({"op": "check", "path": path}),
                ),
                (_, other) => (format!("{other:?}"), json!({"op": format!("{other:?}")})),
            };
            lines.push(line);
            list.push(j);
        }
        self.out.emit(
            &lines.join("\n"),
            json!({"committed": true, "results": list}),
        );
        Ok(())
    }

    async fn four_letter(&self, word: &str, server: Option<String>) -> Result<(), CliError> {
        let rt = TokioRuntime::default();
        // Which servers: the one named, else the one the shell's session is on, else all.
        let targets: Vec<zk_core::HostAddr> = match server {
            Some(s) => vec![zk_core::HostAddr::parse(&s).map_err(|e| {
                CliError::usage(e.to_string(), commands::usage_of("4lw").unwrap_or(""))
            })?],
            None => match self.client.as_ref().and_then(|c| c.current_host()) {
                Some(h) => vec![h],
                None => {
                    zk_core::ConnectString::parse(&self.opts.server)
                        .map_err(|e| {
                            CliError::usage(
                                format!("bad server list {:?}: {e}", self.opts.server),
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
                zk_tokio::four_letter_word(&rt, h.host.clone(), h.port, word, FOUR_LETTER_MAX),
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
                        code: crate::error::EXIT_CONNECTION,
                    })
                }
                Err(e) => {
                    texts.push(format!("{h}:\n({e})"));
                    list.push(json!({"server": h.to_string(), "error": e}));
                    failed.push(h.to_string());
                }
            }
        }
        self.out
            .emit(&texts.join("\n"), json!({"command": word, "servers": list}));
        if failed.is_empty() {
            Ok(())
        } else {
            Err(CliError::Other {
                message: format!("4lw {word}: no answer from {}", failed.join(", ")),
                code: crate::error::EXIT_CONNECTION,
            })
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

/// zkCli's name of a persistent watch mode.
fn mode_name(mode: AddWatchMode) -> &'static str {
    match mode {
        AddWatchMode::Persistent => "PERSISTENT",
        _ => "PERSISTENT_RECURSIVE",
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
