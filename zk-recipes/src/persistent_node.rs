//! Curator's `PersistentNode` and `PersistentTtlNode`: a node that stays there as long as its
//! handle lives, created again after it is deleted or after the session that owned it (an
//! ephemeral one) ends and the client starts a new one.
//!
//! Each handle runs one task on the client's runtime that creates the node, watches it, and
//! creates it again when it goes. The task ends when the handle is closed or dropped (deleting
//! the node) or when the client is closed; it never outlives the client's session.

use std::future::Future;
use std::pin::{pin, Pin};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use futures_core::Stream;
use zk_client::{Bytes, Client, Data, Error, LostReason, SessionState};

use crate::coord_util::{guid, join};

/// How a [`PersistentNode`] is created (Curator passes a `CreateMode`; a TTL mode carries its
/// TTL here).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeMode {
    /// A persistent node.
    Persistent,
    /// An ephemeral node: gone with the session, created again in the next one.
    Ephemeral,
    /// A persistent node with a sequence suffix; a new one (new suffix) when it goes.
    PersistentSequential,
    /// An ephemeral node with a sequence suffix.
    EphemeralSequential,
    /// A container node (the server deletes it once its last child goes).
    Container,
    /// A persistent node the server deletes once it is childless and unchanged for the TTL
    /// (needs `extendedTypesEnabled` on the server).
    PersistentWithTtl(Duration),
}

impl NodeMode {
    fn sequential(self) -> bool {
        matches!(
            self,
            NodeMode::PersistentSequential | NodeMode::EphemeralSequential
        )
    }
}

/// What the handle and its task share.
#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    data: Bytes,
    /// The node's path once created (with its sequence suffix).
    actual_path: Option<String>,
    /// Set by close/drop: the task deletes the node and ends.
    stop: bool,
    /// Set by the task when it ended.
    done: bool,
    /// A failure the task could not get past (e.g. NoAuth), which ended it.
    error: Option<Error>,
    /// Tasks waiting for a change of this state.
    wakers: Vec<Waker>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain data behind; keep going.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn update(&self, f: impl FnOnce(&mut State)) {
        let wakers = {
            let mut s = self.lock();
            f(&mut s);
            std::mem::take(&mut s.wakers)
        };
        for w in wakers {
            w.wake();
        }
    }

    /// Waits until `cond` holds of the state.
    async fn wait_for(&self, cond: impl Fn(&State) -> bool) {
        std::future::poll_fn(|cx| {
            let mut s = self.lock();
            if cond(&s) {
                return Poll::Ready(());
            }
            s.wakers.push(cx.waker().clone());
            Poll::Pending
        })
        .await
    }

    fn poll_stop(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut s = self.lock();
        if s.stop {
            return Poll::Ready(());
        }
        s.wakers.push(cx.waker().clone());
        Poll::Pending
    }
}

/// Options of the task: what [`PersistentTtlNode`] adds to a plain node.
#[derive(Debug, Clone)]
struct Touch {
    child: String,
    ttl: Duration,
    every: Duration,
}

/// Curator's `PersistentNode`: keeps a node at a path (or, sequential, one node under it) for as
/// long as the handle lives. [`close`](Self::close) (or dropping the handle) deletes it.
#[derive(Debug)]
pub struct PersistentNode {
    client: Client,
    shared: Arc<Shared>,
}

impl PersistentNode {
    /// Starts keeping a node at `path` with `data` (Curator's `new PersistentNode(client, mode,
    /// useProtection, path, data).start()`). Parents are created as needed. With
    /// `use_protection`, a sequential node's name starts with `_c_{32 hex digits}-` (Curator's
    /// protected mode), so a create cut short by a lost connection is found again instead of
    /// being made twice.
    ///
    /// Errors with [`Error::Runtime`] if the task cannot be started. Failures of the node's
    /// operations surface in [`wait_for_initial_create`](Self::wait_for_initial_create).
    pub fn start(
        client: &Client,
        mode: NodeMode,
        use_protection: bool,
        path: &str,
        data: impl Data,
    ) -> Result<PersistentNode, Error> {
        Self::spawn(
            client,
            mode,
            use_protection,
            path,
            data.into_bytes(),
            None,
            true,
        )
    }

    fn spawn(
        client: &Client,
        mode: NodeMode,
        use_protection: bool,
        path: &str,
        data: Bytes,
        touch: Option<Touch>,
        delete_on_close: bool,
    ) -> Result<PersistentNode, Error> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                data,
                ..State::default()
            }),
        });
        let protection = (use_protection && mode.sequential()).then(guid);
        let task = Task {
            // Not counted: the task must not keep the session open by itself.
            client: client.background_handle(),
            shared: shared.clone(),
            mode,
            path: path.to_owned(),
            protection,
            touch,
            delete_on_close,
        };
        client
            .runtime()
            .spawn(Box::pin(task.run()))
            .map_err(|e| Error::Runtime(format!("cannot start the persistent node's task: {e}")))?;
        Ok(PersistentNode {
            client: client.clone(),
            shared,
        })
    }

    /// The node's path once it has been created (with its sequence suffix), else `None`
    /// (Curator's `getActualPath`).
    pub fn actual_path(&self) -> Option<String> {
        self.shared.lock().actual_path.clone()
    }

    /// The data the node is (re)created with.
    pub fn data(&self) -> Bytes {
        self.shared.lock().data.clone()
    }

    /// Whether the task still keeps the node (false once closed, dropped, after the client
    /// closed, or after a failure it could not get past).
    pub fn is_running(&self) -> bool {
        !self.shared.lock().done
    }

    /// Waits until the node has been created for the first time, at most `timeout` (Curator's
    /// `waitForInitialCreate`): true if it was.
    ///
    /// Errors with the failure that ended the task before the node was created (e.g. NoAuth,
    /// Unimplemented for TTL nodes on a server without them, Closed).
    pub async fn wait_for_initial_create(&self, timeout: Duration) -> Result<bool, Error> {
        let created = crate::coord_util::timeout(
            &self.client,
            timeout,
            self.shared.wait_for(|s| s.actual_path.is_some() || s.done),
        )
        .await;
        let s = self.shared.lock();
        if s.actual_path.is_some() {
            return Ok(true);
        }
        match (&s.error, created) {
            (Some(e), _) => Err(e.clone()),
            (None, Some(())) => Err(Error::Closed),
            (None, None) => Ok(false),
        }
    }

    /// Replaces the node's data, on the server now and for every later re-creation (Curator's
    /// `setData`).
    ///
    /// Errors with [`Error::InvalidArgument`] before the node was first created (wait with
    /// [`wait_for_initial_create`](Self::wait_for_initial_create)), and the client's errors
    /// after its retry policy (the data is kept for the next re-creation either way).
    pub async fn set_data(&self, data: impl Data) -> Result<(), Error> {
        let data = data.into_bytes();
        let path = {
            let mut s = self.shared.lock();
            s.data = data.clone();
            s.actual_path.clone()
        };
        let Some(path) = path else {
            return Err(Error::InvalidArgument(
                "the persistent node has not been created yet".into(),
            ));
        };
        self.client
            .retry(|c| {
                let (path, data) = (&path, data.clone());
                async move {
                    match c.set_data(path, data).await {
                        // Gone: the task creates it again with the new data.
                        Ok(_) | Err(Error::NoNode { .. }) => Ok(()),
                        Err(e) => Err(e),
                    }
                }
            })
            .await
    }

    /// Stops keeping the node and deletes it (Curator's `close`), waiting until the task has
    /// ended.
    pub async fn close(self) {
        self.shared.update(|s| s.stop = true);
        self.shared.wait_for(|s| s.done).await;
    }
}

impl Drop for PersistentNode {
    fn drop(&mut self) {
        // The task sees this, deletes the node (unless a TTL node) and ends.
        self.shared.update(|s| s.stop = true);
    }
}

/// The background task of one [`PersistentNode`].
struct Task {
    client: Client,
    shared: Arc<Shared>,
    mode: NodeMode,
    path: String,
    protection: Option<String>,
    touch: Option<Touch>,
    delete_on_close: bool,
}

/// Why the task's wait ended.
enum Wake {
    Stop,
    Recheck,
    ClientGone,
    Touch,
}

impl Task {
    async fn run(self) {
        let mut states = self.client.state_changes();
        let rt = self.client.runtime().clone();
        let mut next_touch = self.touch.as_ref().map(|t| rt.now() + t.every);
        let mut pause = Duration::from_millis(50);
        loop {
            if self.shared.lock().stop {
                break;
            }
            let outcome = self.keep().await;
            let watch = match outcome {
                Ok(w) => {
                    pause = Duration::from_millis(50);
                    w
                }
                Err(Error::Closed) => break,
                Err(e) if transient(&self.client, &e) => {
                    // Wait for the connection (or a new session) before trying again.
                    let sleep = self.client.sleep(pause);
                    pause = (pause * 2).min(Duration::from_secs(2));
                    match self.wait(&mut states, None, pin!(sleep), None).await {
                        Wake::Stop => break,
                        Wake::ClientGone => break,
                        _ => continue,
                    }
                }
                Err(e) => {
                    tracing::warn!(path = %self.path, error = %e, "persistent node: giving up");
                    self.shared.update(|s| s.error = Some(e));
                    break;
                }
            };
            let mut timer = next_touch.map(|at| rt.timer(at));
            match self
                .wait(
                    &mut states,
                    watch,
                    pin!(std::future::pending::<()>()),
                    timer.as_mut(),
                )
                .await
            {
                Wake::Stop | Wake::ClientGone => break,
                Wake::Recheck => {}
                Wake::Touch => {
                    if let Some(t) = &self.touch {
                        next_touch = Some(rt.now() + t.every);
                        self.touch(t).await;
                    }
                }
            }
        }
        if self.delete_on_close {
            let path = self.shared.lock().actual_path.clone();
            if let Some(path) = path {
                // Best effort: the client may be closed already (an ephemeral goes anyway).
                let _ = self.client.delete(&path).await;
            }
        }
        self.shared.update(|s| {
            s.done = true;
            s.actual_path = None;
        });
    }

    /// Makes sure the node exists, creating it if needed, and arms a watch on it. `None` for
    /// the watch when the node vanished between create and watch (check again at once).
    async fn keep(&self) -> Result<Option<zk_client::Watch>, Error> {
        let known = self.shared.lock().actual_path.clone();
        if let Some(path) = known {
            let (stat, watch) = self.client.exists(&path).watch().await?;
            if stat.is_some() {
                return Ok(Some(watch));
            }
        }
        let path = self.create().await?;
        let (stat, watch) = self.client.exists(&path).watch().await?;
        self.shared.update(|s| s.actual_path = Some(path));
        Ok(stat.map(|_| watch))
    }

    /// Creates the node with the current data; for a non-sequential path that exists already,
    /// writes our data to it and takes it over (as Curator does).
    async fn create(&self) -> Result<String, Error> {
        let data = self.shared.lock().data.clone();
        let target = match &self.protection {
            Some(id) => {
                let (parent, name) = split(&self.path);
                join(parent, &format!("_c_{id}-{name}"))
            }
            None => self.path.clone(),
        };
        let create = self.client.create(&target, data.clone()).make_parents();
        let create = match self.mode {
            NodeMode::Persistent => create,
            NodeMode::Ephemeral => create.ephemeral(),
            NodeMode::PersistentSequential => create.sequential(),
            NodeMode::EphemeralSequential => create.ephemeral().sequential(),
            NodeMode::Container => create.container(),
            NodeMode::PersistentWithTtl(ttl) => create.ttl(ttl),
        };
        match create.await {
            Ok(path) => Ok(path),
            Err(Error::NodeExists { .. }) if !self.mode.sequential() => {
                match self.client.set_data(&self.path, data).await {
                    Ok(_) => Ok(self.path.clone()),
                    // Deleted meanwhile: the next round creates it.
                    Err(Error::NoNode { .. }) => Err(Error::ConnectionLoss),
                    Err(e) => Err(e),
                }
            }
            Err(Error::ConnectionLoss) if self.protection.is_some() => {
                // Did the create apply? Look for our protected name.
                match self.find_protected().await? {
                    Some(path) => Ok(path),
                    None => Err(Error::ConnectionLoss),
                }
            }
            Err(e) => Err(e),
        }
    }

    async fn find_protected(&self) -> Result<Option<String>, Error> {
        let Some(id) = &self.protection else {
            return Ok(None);
        };
        let (parent, _) = split(&self.path);
        let prefix = format!("_c_{id}-");
        let kids = self
            .client
            .retry(|c| async move { c.get_children(parent).await })
            .await;
        match kids {
            Ok(kids) => Ok(kids
                .iter()
                .find(|k| k.starts_with(&prefix))
                .map(|k| join(parent, k))),
            Err(Error::NoNode { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// PersistentTtlNode's keep-alive: touch the child, creating it as a TTL node if missing.
    async fn touch(&self, t: &Touch) {
        match self.client.set_data(&t.child, &b""[..]).await {
            Ok(_) => {}
            Err(Error::NoNode { .. }) => {
                let r = self.client.create(&t.child, &b""[..]).ttl(t.ttl).await;
                if let Err(e) = r {
                    tracing::debug!(path = %t.child, error = %e, "could not touch the TTL child");
                }
            }
            Err(e) => tracing::debug!(path = %t.child, error = %e, "could not touch the TTL child"),
        }
    }

    /// Waits for a reason to look at the node again: its watch fired (or ended), the session
    /// changed, the pause ended, the touch timer fired, or the handle was closed.
    async fn wait(
        &self,
        states: &mut zk_client::StateChanges,
        mut watch: Option<zk_client::Watch>,
        mut pause: Pin<&mut impl Future<Output = ()>>,
        mut timer: Option<&mut Box<dyn zk_client::Timer>>,
    ) -> Wake {
        std::future::poll_fn(|cx| {
            if self.shared.poll_stop(cx).is_ready() {
                return Poll::Ready(Wake::Stop);
            }
            if let Some(w) = watch.as_mut() {
                if Pin::new(w).poll(cx).is_ready() {
                    return Poll::Ready(Wake::Recheck);
                }
            }
            loop {
                match Pin::new(&mut *states).poll_next(cx) {
                    Poll::Ready(None) => return Poll::Ready(Wake::ClientGone),
                    // A new session after an expiry, or back after a disconnect: look again.
                    Poll::Ready(Some(SessionState::Connected))
                    | Poll::Ready(Some(SessionState::ConnectedReadOnly)) => {
                        return Poll::Ready(Wake::Recheck)
                    }
                    // Closed by its owner: done. An expiry goes on into the next session
                    // (or, without renewal, fails the next request, which ends the task).
                    Poll::Ready(Some(SessionState::Lost(
                        LostReason::Closed | LostReason::AuthFailed,
                    ))) => return Poll::Ready(Wake::ClientGone),
                    Poll::Ready(Some(SessionState::Lost(LostReason::Expired))) => {
                        return Poll::Ready(Wake::Recheck)
                    }
                    Poll::Ready(Some(_)) => continue,
                    Poll::Pending => break,
                }
            }
            if let Some(t) = timer.as_mut() {
                if t.poll_fire(cx).is_ready() {
                    return Poll::Ready(Wake::Touch);
                }
            }
            if pause.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Wake::Recheck);
            }
            Poll::Pending
        })
        .await
    }
}

/// Whether the task should try again after `e` (once the connection or a new session is there).
fn transient(client: &Client, e: &Error) -> bool {
    match e {
        Error::ConnectionLoss
        | Error::Timeout
        | Error::OperationTimeout
        | Error::Throttled
        | Error::SessionMoved => true,
        Error::SessionExpired => !matches!(client.state(), SessionState::Lost(_)),
        _ => false,
    }
}

fn split(path: &str) -> (&str, &str) {
    match path.rfind('/') {
        Some(0) => ("/", &path[1..]),
        Some(i) => (&path[..i], &path[i + 1..]),
        None => ("/", path),
    }
}

/// Curator's `PersistentTtlNode`: a container node kept at a path, plus a child (`touch`) with
/// a TTL that is touched every `ttl / 2`. While the handle lives the node stays; once no process
/// keeps it (the handle closed, or the process died), the child expires after the TTL and the
/// server then removes the empty container. Closing does not delete the node (Curator's
/// behaviour): the TTL does. Needs `extendedTypesEnabled` on the server.
#[derive(Debug)]
pub struct PersistentTtlNode {
    node: PersistentNode,
}

impl PersistentTtlNode {
    /// The name of the touched child.
    pub const CHILD_NODE_NAME: &'static str = "touch";

    /// Starts keeping the container at `path` with `data`, and its TTL child (Curator's
    /// `new PersistentTtlNode(client, path, ttlMs, data).start()`).
    ///
    /// Errors with [`Error::InvalidArgument`] for a zero TTL and [`Error::Runtime`] if the task
    /// cannot be started.
    pub fn start(
        client: &Client,
        path: &str,
        ttl: Duration,
        data: impl Data,
    ) -> Result<PersistentTtlNode, Error> {
        if ttl.is_zero() {
            return Err(Error::InvalidArgument("a TTL node needs a TTL".into()));
        }
        let touch = Touch {
            child: join(path, Self::CHILD_NODE_NAME),
            ttl,
            every: ttl / 2,
        };
        let node = PersistentNode::spawn(
            client,
            NodeMode::Container,
            false,
            path,
            data.into_bytes(),
            Some(touch),
            false,
        )?;
        Ok(PersistentTtlNode { node })
    }

    /// Waits until the container has been created, at most `timeout`: true if it was.
    ///
    /// Errors as [`PersistentNode::wait_for_initial_create`].
    pub async fn wait_for_initial_create(&self, timeout: Duration) -> Result<bool, Error> {
        self.node.wait_for_initial_create(timeout).await
    }

    /// Replaces the container's data.
    ///
    /// Errors as [`PersistentNode::set_data`].
    pub async fn set_data(&self, data: impl Data) -> Result<(), Error> {
        self.node.set_data(data).await
    }

    /// The container's data.
    pub fn data(&self) -> Bytes {
        self.node.data()
    }

    /// Whether the task still keeps the node.
    pub fn is_running(&self) -> bool {
        self.node.is_running()
    }

    /// Stops touching the child; the node goes once the TTL passes.
    pub async fn close(self) {
        self.node.close().await
    }
}
