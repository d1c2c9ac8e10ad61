//! The client suite: scenarios written once against zk-client's async API, generic over the
//! runtime, and run by the test binaries for every runtime (tokio, async-std, smol, and
//! zk-blocking's thread runtime) against every server (real ZooKeeper 3.8 and 3.9, SimServer).
//!
//! Each scenario works under its own path (`Ctx::base`), so scenarios and runtimes can share one
//! server, and returns `Err(message)` instead of panicking so a runner can report every failure
//! of a run at once, with the runtime and server that failed.

#![allow(dead_code)]

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_core::Stream;
use zk_client::{
    Acl, AddWatchMode, Client, ClientBuilder, Error, EventType, Id, LostReason, OpResult, Perms,
    ReadOp, ReadResult, RetryPolicy, Runtime, ServerVersion, SessionState, WatcherType,
};

/// Which server a run talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerKind {
    /// SimServer over TCP, answering as this version.
    Sim(u32, u32, u32),
    /// Real ZooKeeper 3.8.0 (Debian).
    Real38,
    /// Real ZooKeeper 3.9.5 (Maven Central).
    Real39,
}

impl ServerKind {
    pub fn is_real(self) -> bool {
        !matches!(self, ServerKind::Sim(..))
    }

    pub fn version(self) -> ServerVersion {
        match self {
            ServerKind::Sim(a, b, c) => ServerVersion::new(a, b, c),
            ServerKind::Real38 => ServerVersion::new(3, 8, 0),
            ServerKind::Real39 => ServerVersion::new(3, 9, 5),
        }
    }
}

/// What a scenario gets: the runtime, the servers, and where to work.
pub struct Ctx {
    pub rt: Arc<dyn Runtime>,
    pub runtime_name: &'static str,
    pub connect: String,
    pub kind: ServerKind,
    /// A path prepared once per server holding 100,000 children named c00000..c99999.
    pub wide: Option<String>,
}

pub type Outcome = Result<(), String>;
type BoxFut<'a> = Pin<Box<dyn Future<Output = Outcome> + 'a>>;
/// A scenario: runs against a context, reports failure as a message.
pub type Scenario = for<'a> fn(&'a Ctx) -> BoxFut<'a>;

macro_rules! check {
    ($cond:expr, $($fmt:tt)*) => {
        if !$cond {
            return Err(format!("{} (line {})", format!($($fmt)*), line!()));
        }
    };
}

macro_rules! ok {
    ($e:expr) => {
        $e.map_err(|e| format!("{} failed: {e:?} (line {})", stringify!($e), line!()))?
    };
}

impl Ctx {
    /// The base path of one scenario on this runtime.
    pub fn base(&self, scenario: &str) -> String {
        format!("/suite-{}/{}", self.runtime_name, scenario)
    }

    pub fn builder(&self) -> ClientBuilder {
        ClientBuilder::new(self.rt.clone(), &self.connect)
            .session_timeout(Duration::from_secs(6))
            .connect_timeout(Duration::from_secs(30))
    }

    pub fn builder_at(&self, chroot: &str) -> ClientBuilder {
        ClientBuilder::new(self.rt.clone(), &format!("{}{}", self.connect, chroot))
            .session_timeout(Duration::from_secs(6))
            .connect_timeout(Duration::from_secs(30))
    }

    pub async fn client(&self) -> Result<Client, String> {
        self.builder()
            .connect()
            .await
            .map_err(|e| format!("connect to {}: {e}", self.connect))
    }

    /// A client with a fresh, empty base path for `scenario`.
    pub async fn fresh(&self, scenario: &str) -> Result<(Client, String), String> {
        let c = self.client().await?;
        let base = self.base(scenario);
        match c.delete(&base).recursive().await {
            Ok(()) | Err(Error::NoNode { .. }) => {}
            Err(e) => return Err(format!("cleaning {base}: {e}")),
        }
        ok!(c.ensure_path(&base).await);
        Ok((c, base))
    }

    pub async fn sleep(&self, d: Duration) {
        let mut t = self.rt.timer(Instant::now() + d);
        std::future::poll_fn(|cx| t.poll_fire(cx)).await
    }

    /// Waits for `fut` at most `d`.
    pub async fn within<T>(
        &self,
        d: Duration,
        fut: impl std::future::IntoFuture<Output = T>,
    ) -> Result<T, String> {
        let mut fut = std::pin::pin!(fut.into_future());
        let mut t = self.rt.timer(Instant::now() + d);
        std::future::poll_fn(|cx| {
            if let std::task::Poll::Ready(v) = fut.as_mut().poll(cx) {
                return std::task::Poll::Ready(Ok(v));
            }
            t.poll_fire(cx)
                .map(|()| Err(format!("timed out after {d:?}")))
        })
        .await
    }

    /// The next item of a stream, within `d`.
    pub async fn next<S: Stream + Unpin>(&self, s: &mut S, d: Duration) -> Result<S::Item, String> {
        self.within(
            d,
            std::future::poll_fn(|cx| Pin::new(&mut *s).poll_next(cx)),
        )
        .await?
        .ok_or_else(|| "stream ended".to_owned())
    }

    /// The next event of a persistent watch, within `d`; a resync item is a failure here (no
    /// reconnect is expected).
    pub async fn next_event(
        &self,
        s: &mut zk_client::PersistentWatch,
        d: Duration,
    ) -> Result<zk_client::WatchedEvent, String> {
        match self.next(s, d).await? {
            zk_client::PersistentItem::Event(ev) => Ok(ev),
            zk_client::PersistentItem::Resync => Err("unexpected resync item".into()),
        }
    }

    /// Checks that a stream yields nothing for `d`.
    pub async fn quiet<S: Stream + Unpin>(&self, s: &mut S, d: Duration) -> Outcome
    where
        S::Item: std::fmt::Debug,
    {
        match self
            .within(
                d,
                std::future::poll_fn(|cx| Pin::new(&mut *s).poll_next(cx)),
            )
            .await
        {
            Err(_) => Ok(()),
            Ok(item) => Err(format!("expected silence, got {item:?}")),
        }
    }
}

const WAIT: Duration = Duration::from_secs(10);

/// Every scenario, by name.
pub fn scenarios() -> Vec<(&'static str, Scenario)> {
    macro_rules! list {
        ($($name:ident),* $(,)?) => {
            vec![$((stringify!($name), (|ctx| Box::pin($name(ctx))) as Scenario)),*]
        };
    }
    list![
        create_get_set_delete,
        create_modes,
        children_and_counts,
        ensure_path_and_sync,
        acl_and_auth,
        auth_failure_ends_the_session,
        ephemerals_live_and_die_with_their_session,
        chroot_is_invisible,
        resume_a_session_by_id_and_password,
        one_shot_watches,
        dropping_a_watch_removes_it_on_the_server,
        remove_and_check_watches,
        data_watch_stream,
        children_watch_stream,
        persistent_watches,
        transactions,
        multi_read,
        error_paths,
        retry_policy,
        four_letter_words_and_version,
        state_changes_and_close,
        version_gating,
        wide_children,
        missing_chroot_is_created,
        recursive_delete_of_a_missing_node_is_ok,
        client_id_only_while_a_session_lives,
        node_watches_read_at_creation,
        node_watches_skip_unchanged_renewals,
        listeners_before_start_see_every_state,
        resumed_expired_session_is_observable,
        transaction_create_options,
        digest_acl_helper,
        command_retry_is_the_default_policy,
        set_hosts_checks_its_argument,
        byte_containers_as_data,
        a_burst_beyond_max_in_flight_waits_in_order,
        a_watch_consumer_far_behind_gets_a_resync,
    ]
}

// ---- scenarios ----------------------------------------------------------------------------

async fn create_get_set_delete(ctx: &Ctx) -> Outcome {
    let (c, base) = ctx.fresh("cgsd").await?;
    let p = format!("{base}/n");
    let created = ok!(c.create(&p, "v1").await);
    check!(created == p, "create returned {created}");
    let (data, stat) = ok!(c.get_data(&p).await);
    check!(
        &data[..] == b"v1" && stat.version == 0,
        "read {data:?} v{}",
        stat.version
    );
    let stat = ok!(c.set_data(&p, "v2").await);
    check!(
        stat.version == 1 && stat.data_length == 2,
        "set gave {stat:?}"
    );
    let stat = ok!(c.set_data(&p, "v3").version(1).await);
    check!(stat.version == 2, "conditional set gave {stat:?}");
    match c.set_data(&p, "x").version(7).await {
        Err(Error::BadVersion { path }) => check!(path == p, "BadVersion names {path}"),
        other => return Err(format!("stale set: {other:?}")),
    }
    match c.delete(&p).version(0).await {
        Err(Error::BadVersion { .. }) => {}
        other => return Err(format!("stale delete: {other:?}")),
    }
    let exists = ok!(c.exists(&p).await);
    check!(exists.is_some_and(|s| s.version == 2), "exists {exists:?}");
    ok!(c.delete(&p).version(2).await);
    check!(
        ok!(c.exists(&p).await).is_none(),
        "still exists after delete"
    );
    match c.get_data(&p).await {
        Err(Error::NoNode { path }) => check!(path == p, "NoNode names {path}"),
        other => return Err(format!("read of deleted node: {other:?}")),
    }
    match c.delete(&p).await {
        Err(Error::NoNode { .. }) => {}
        other => return Err(format!("delete of missing node: {other:?}")),
    }
    match c.set_data(&p, "x").await {
        Err(Error::NoNode { .. }) => {}
        other => return Err(format!("set of missing node: {other:?}")),
    }
    c.close().await;
    Ok(())
}

async fn create_modes(ctx: &Ctx) -> Outcome {
    let (c, base) = ctx.fresh("modes").await?;
    let session = c.client_id().ok_or("no session id")?.id;

    let e = ok!(c
        .create(&format!("{base}/eph"), "e")
        .ephemeral()
        .with_stat()
        .await);
    check!(
        e.1.ephemeral_owner == session,
        "ephemeral owner {:#x}",
        e.1.ephemeral_owner
    );
    match c.create(&format!("{base}/eph/child"), "").await {
        Err(Error::NoChildrenForEphemerals { .. }) => {}
        other => return Err(format!("child of ephemeral: {other:?}")),
    }

    let s1 = ok!(c.create(&format!("{base}/seq-"), "").sequential().await);
    let s2 = ok!(c
        .create(&format!("{base}/seq-"), "")
        .sequential()
        .ephemeral()
        .await);
    let suffix = |s: &str| s.rsplit('-').next().unwrap_or("").to_owned();
    check!(
        suffix(&s1).len() == 10 && suffix(&s2).len() == 10,
        "suffixes of {s1} {s2}"
    );
    check!(
        suffix(&s1) < suffix(&s2),
        "sequence numbers increase: {s1} {s2}"
    );
    check!(
        s1.starts_with(&format!("{base}/seq-")),
        "sequential path {s1}"
    );

    let (cpath, cstat) = ok!(c
        .create(&format!("{base}/container"), "")
        .container()
        .with_stat()
        .await);
    check!(
        cpath.ends_with("/container") && cstat.ephemeral_owner == 0,
        "container {cstat:?}"
    );

    let ttl = c
        .create(&format!("{base}/ttl"), "t")
        .ttl(Duration::from_secs(60))
        .await;
    check!(
        ttl.is_ok(),
        "TTL node (servers run with extendedTypesEnabled): {ttl:?}"
    );
    match c
        .create(&format!("{base}/ttl0"), "")
        .ttl(Duration::ZERO)
        .await
    {
        Err(Error::InvalidArgument(_)) => {}
        other => return Err(format!("zero TTL: {other:?}")),
    }
    match c
        .create(&format!("{base}/both"), "")
        .ephemeral()
        .container()
        .await
    {
        Err(Error::InvalidArgument(_)) => {}
        other => return Err(format!("ephemeral container: {other:?}")),
    }

    let deep = format!("{base}/a/b/c");
    match c.create(&deep, "").await {
        Err(Error::NoNode { .. }) => {}
        other => return Err(format!("create without parent: {other:?}")),
    }
    ok!(c.create(&deep, "d").make_parents().await);
    check!(
        ok!(c.exists(&format!("{base}/a/b")).await).is_some(),
        "parents made"
    );
    match c.create(&deep, "").await {
        Err(Error::NodeExists { path }) => check!(path == deep, "NodeExists names {path}"),
        other => return Err(format!("second create: {other:?}")),
    }

    let nulls = format!("{base}/null");
    ok!(c.create(&nulls, "").null_data().await);
    let (d, st) = ok!(c.get_data(&nulls).await);
    check!(
        d.is_empty() && st.data_length == 0,
        "null data reads as empty"
    );
    c.close().await;
    Ok(())
}

async fn children_and_counts(ctx: &Ctx) -> Outcome {
    let (c, base) = ctx.fresh("children").await?;
    for name in ["a", "b", "c"] {
        ok!(c.create(&format!("{base}/{name}"), "").await);
    }
    ok!(c.create(&format!("{base}/a/x"), "").await);
    let mut kids = ok!(c.get_children(&base).await).to_vec();
    kids.sort();
    check!(kids == ["a", "b", "c"], "children {kids:?}");
    let (kids2, stat) = ok!(c.get_children(&base).with_stat().await);
    check!(
        kids2.len() == 3 && stat.num_children == 3,
        "with stat {stat:?}"
    );
    if ctx.kind.version() >= ServerVersion::new(3, 6, 0) {
        let n = ok!(c.get_all_children_number(&base).await);
        check!(n == 4, "all children number {n}");
    }
    match c.delete(&format!("{base}/a")).await {
        Err(Error::NotEmpty { .. }) => {}
        other => return Err(format!("delete of non-empty node: {other:?}")),
    }
    ok!(c.delete(&format!("{base}/a")).recursive().await);
    let kids = ok!(c.get_children(&base).await);
    check!(kids.len() == 2, "after recursive delete {kids:?}");
    match c.get_children(&format!("{base}/nope")).await {
        Err(Error::NoNode { .. }) => {}
        other => return Err(format!("children of missing node: {other:?}")),
    }
    c.close().await;
    Ok(())
}

async fn ensure_path_and_sync(ctx: &Ctx) -> Outcome {
    let (c, base) = ctx.fresh("ensure").await?;
    let deep = format!("{base}/x/y/z");
    ok!(c.ensure_path(&deep).await);
    ok!(c.ensure_path(&deep).await);
    check!(
        ok!(c.exists(&deep).await).is_some(),
        "ensure_path made {deep}"
    );
    ok!(c.sync(&deep).await);
    match c.ensure_path("relative").await {
        Err(Error::InvalidPath { .. }) => {}
        other => return Err(format!("relative ensure_path: {other:?}")),
    }
    c.close().await;
    Ok(())
}

async fn acl_and_auth(ctx: &Ctx) -> Outcome {
    let (c, base) = ctx.fresh("acl").await?;
    let owner = ctx
        .builder()
        .digest("alice", "secret")
        .connect()
        .await
        .map_err(|e| format!("{e}"))?;
    let p = format!("{base}/private");
    ok!(owner.create(&p, "s").acl(Acl::creator_all()).await);
    match c.get_data(&p).await {
        Err(Error::NoAuth { path }) => check!(path == p, "NoAuth names {path}"),
        other => return Err(format!("read without auth: {other:?}")),
    }
    let (acl, stat) = ok!(owner.get_acl(&p).await);
    check!(
        acl.len() == 1 && acl[0].id.scheme == "digest" && acl[0].id.id.starts_with("alice:"),
        "acl {acl:?}"
    );
    check!(stat.aversion == 0, "aversion {}", stat.aversion);
    ok!(c.add_auth("digest", "alice:secret").await);
    let (d, _) = ok!(c.get_data(&p).await);
    check!(&d[..] == b"s", "read after add_auth");
    if ctx.kind.version() >= ServerVersion::new(3, 7, 0) {
        let who = ok!(c.whoami().await);
        check!(
            who.iter()
                .any(|i| i.auth_scheme == "digest" && i.user == "alice"),
            "whoami {who:?}"
        );
    }
    let open = format!("{base}/open");
    ok!(c.create(&open, "").await);
    let st = ok!(c.set_acl(&open, Acl::read_unsafe(), 0).await);
    check!(st.aversion == 1, "set_acl aversion {}", st.aversion);
    match c.set_acl(&open, Acl::open_unsafe(), 0).await {
        Err(Error::BadVersion { .. }) | Err(Error::NoAuth { .. }) => {}
        other => return Err(format!("stale or unauthorised set_acl: {other:?}")),
    }
    match c.set_data(&open, "w").await {
        Err(Error::NoAuth { .. }) => {}
        other => return Err(format!("write to read-only ACL: {other:?}")),
    }
    match c
        .create(&format!("{base}/badacl"), "")
        .acl(vec![Acl::new(Perms::ALL, Id::new("nosuch", "x"))])
        .await
    {
        Err(Error::InvalidAcl { .. }) => {}
        other => return Err(format!("invalid ACL: {other:?}")),
    }
    owner.close().await;
    c.close().await;
    Ok(())
}

async fn auth_failure_ends_the_session(ctx: &Ctx) -> Outcome {
    let c = ctx.client().await?;
    match c.add_auth("nosuchscheme", "x").await {
        Err(Error::AuthFailed) => {}
        other => return Err(format!("unknown scheme: {other:?}")),
    }
    check!(
        c.state() == SessionState::Lost(zk_client::LostReason::AuthFailed),
        "state after auth failure: {}",
        c.state()
    );
    match c.get_data("/").await {
        Err(Error::AuthFailed) => {}
        other => return Err(format!("request after auth failure: {other:?}")),
    }
    Ok(())
}

async fn ephemerals_live_and_die_with_their_session(ctx: &Ctx) -> Outcome {
    let (watcher, base) = ctx.fresh("eph").await?;
    let c = ctx.client().await?;
    let p = ok!(c
        .create(&format!("{base}/e-"), "x")
        .ephemeral()
        .sequential()
        .await);
    let mine = ok!(c.get_ephemerals(&base).await);
    check!(mine == [p.clone()], "get_ephemerals {mine:?}");
    let theirs = ok!(watcher.get_ephemerals(&base).await);
    check!(theirs.is_empty(), "another session's ephemerals {theirs:?}");
    let all = ok!(c.get_ephemerals("/").await);
    check!(all.contains(&p), "prefix / lists everything: {all:?}");
    let (stat, w) = ok!(watcher.exists(&p).watch().await);
    check!(stat.is_some(), "the other session sees the ephemeral");
    c.close().await;
    let ev = ctx.within(WAIT, w).await?;
    let ev = ok!(ev);
    check!(
        ev.event_type == EventType::NodeDeleted && ev.path == p,
        "event {ev:?}"
    );
    check!(ok!(watcher.exists(&p).await).is_none(), "gone after close");
    watcher.close().await;
    Ok(())
}

async fn chroot_is_invisible(ctx: &Ctx) -> Outcome {
    let (plain, base) = ctx.fresh("chroot").await?;
    let c = ctx
        .builder_at(&base)
        .connect()
        .await
        .map_err(|e| format!("{e}"))?;
    check!(
        c.chroot().as_deref() == Some(base.as_str()),
        "chroot {:?}",
        c.chroot()
    );
    ok!(c.create("/a", "in").await);
    let (d, _) = ok!(plain.get_data(&format!("{base}/a")).await);
    check!(&d[..] == b"in", "chrooted write lands under the chroot");
    let seq = ok!(c.create("/s-", "").sequential().ephemeral().await);
    check!(
        seq.starts_with("/s-") && !seq.contains(&base),
        "sequential path {seq}"
    );
    let eph = ok!(c.get_ephemerals("/").await);
    check!(eph == [seq.clone()], "ephemerals without chroot: {eph:?}");
    let results = ok!(c
        .transaction()
        .create("/t", "")
        .check("/a", 0)
        .commit()
        .await);
    check!(
        matches!(&results[0], OpResult::Created { path, .. } if path == "/t"),
        "transaction paths {results:?}"
    );
    let kids = ok!(c.get_children("/").await);
    check!(kids.len() == 3, "children of the chroot root {kids:?}");
    let (_, _, w) = ok!(c.get_data("/a").watch().await);
    ok!(plain.set_data(&format!("{base}/a"), "x").await);
    let ev = ok!(ctx.within(WAIT, w).await?);
    check!(ev.path == "/a", "event path {}", ev.path);
    let (_, _, w) = ok!(c.get_data("/").watch().await);
    ok!(plain.set_data(&base, "root").await);
    let ev = ok!(ctx.within(WAIT, w).await?);
    check!(ev.path == "/", "the chroot itself is / ({})", ev.path);
    c.close().await;
    plain.close().await;
    Ok(())
}

async fn resume_a_session_by_id_and_password(ctx: &Ctx) -> Outcome {
    let (plain, base) = ctx.fresh("resume").await?;
    // The first "process" holds the session over a raw connection it then drops without
    // closing, like a process that died.
    let host = plain.hosts()[0].clone();
    let (id, password) = raw_session_with_ephemeral(&host.host, host.port, &format!("{base}/e"))
        .map_err(|e| format!("raw session: {e}"))?;
    let c = ctx
        .builder()
        .resume(zk_client::SessionId {
            id,
            password: password.into(),
        })
        .connect()
        .await
        .map_err(|e| format!("resume: {e}"))?;
    check!(
        c.client_id().map(|s| s.id) == Some(id),
        "resumed id {:?}",
        c.client_id()
    );
    let st = ok!(c.exists(&format!("{base}/e")).await).ok_or("ephemeral gone")?;
    check!(st.ephemeral_owner == id, "owner {:#x}", st.ephemeral_owner);
    let eph = ok!(c.get_ephemerals(&base).await);
    check!(
        eph == [format!("{base}/e")],
        "the resumed session owns it: {eph:?}"
    );
    c.close().await;
    check!(
        ok!(plain.exists(&format!("{base}/e")).await).is_none(),
        "closing ended it"
    );
    // Resuming a closed session is an expiry, never a silent new session.
    let r = ctx
        .builder()
        .resume(zk_client::SessionId {
            id,
            password: vec![0u8; 16].into(),
        })
        .renew_session_after_expiry(false)
        .connect()
        .await;
    check!(
        matches!(r, Err(Error::SessionExpired)),
        "resume of a dead session: {r:?}"
    );
    plain.close().await;
    Ok(())
}

/// Opens a session over a raw socket with zk-core's codec, creates an ephemeral node, and drops
/// the socket without closeSession. Returns the session id and password.
fn raw_session_with_ephemeral(
    host: &str,
    port: u16,
    path: &str,
) -> std::io::Result<(i64, Vec<u8>)> {
    use std::io::{Read, Write};
    use zk_core::proto::*;
    let mut s = std::net::TcpStream::connect((host, port))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut out = Vec::new();
    let bad = |e: String| std::io::Error::other(e);
    encode_connect_request(
        &mut out,
        usize::MAX,
        &ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: 0,
            timeout: 30000,
            session_id: 0,
            passwd: bytes::Bytes::from_static(&[0; 16]),
            read_only: Some(false),
        },
    )
    .map_err(|e| bad(e.to_string()))?;
    encode_request(
        &mut out,
        usize::MAX,
        1,
        &Request::Create(CreateRequest {
            path: path.into(),
            data: None,
            acl: Acl::open_unsafe().into(),
            flags: 1,
        }),
    )
    .map_err(|e| bad(e.to_string()))?;
    s.write_all(&out)?;
    let mut dec = FrameDecoder::new(DEFAULT_MAX_FRAME);
    let mut frames = Vec::new();
    let mut buf = [0u8; 4096];
    while frames.len() < 2 {
        let n = s.read(&mut buf)?;
        if n == 0 {
            return Err(bad("closed".into()));
        }
        dec.extend(&buf[..n]);
        while let Some(f) = dec.next_frame().map_err(|e| bad(e.to_string()))? {
            frames.push(f);
        }
    }
    let resp = decode_connect_response(frames[0].clone()).map_err(|e| bad(e.to_string()))?;
    let (h, _) = decode_reply_header(frames[1].clone()).map_err(|e| bad(e.to_string()))?;
    if !h.err.is_ok() {
        return Err(bad(format!("create failed: {:?}", h.err)));
    }
    Ok((resp.session_id, resp.passwd.to_vec()))
}

async fn one_shot_watches(ctx: &Ctx) -> Outcome {
    let (c, base) = ctx.fresh("oneshot").await?;
    let other = ctx.client().await?;
    let p = format!("{base}/n");

    let (stat, w) = ok!(c.exists(&p).watch().await);
    check!(stat.is_none(), "missing node");
    ok!(other.create(&p, "1").await);
    let ev = ok!(ctx.within(WAIT, w).await?);
    check!(
        ev.event_type == EventType::NodeCreated && ev.path == p,
        "created {ev:?}"
    );

    let (_, _, w) = ok!(c.get_data(&p).watch().await);
    ok!(other.set_data(&p, "2").await);
    let ev = ok!(ctx.within(WAIT, w).await?);
    check!(
        ev.event_type == EventType::NodeDataChanged,
        "changed {ev:?}"
    );
    if ctx.kind == ServerKind::Real39 {
        check!(ev.zxid > 0, "3.9 notifications carry the zxid: {}", ev.zxid);
    } else if ctx.kind == ServerKind::Real38 {
        check!(
            ev.zxid == -1,
            "3.8 notifications carry zxid -1: {}",
            ev.zxid
        );
    }

    let (_, w) = ok!(c.get_children(&p).watch().await);
    ok!(other.create(&format!("{p}/kid"), "").await);
    let ev = ok!(ctx.within(WAIT, w).await?);
    check!(
        ev.event_type == EventType::NodeChildrenChanged && ev.path == p,
        "children {ev:?}"
    );

    // Two local watchers share one server watch and both hear of the change.
    let (_, _, w1) = ok!(c.get_data(&p).watch().await);
    let (_, w2) = ok!(c.exists(&p).watch().await);
    ok!(other.delete(&p).recursive().await);
    let e1 = ok!(ctx.within(WAIT, w1).await?);
    let e2 = ok!(ctx.within(WAIT, w2).await?);
    check!(
        e1.event_type == EventType::NodeDeleted && e2.event_type == EventType::NodeDeleted,
        "deleted {e1:?} {e2:?}"
    );
    other.close().await;
    c.close().await;
    Ok(())
}

/// The server's count of watches, from the `wchs` four-letter word.
async fn server_watch_count(c: &Client) -> Result<u64, String> {
    let text = ok!(c.command("wchs").await);
    text.lines()
        .find_map(|l| l.trim().strip_prefix("Total watches:"))
        .and_then(|n| n.trim().parse().ok())
        .ok_or_else(|| format!("no watch count in {text:?}"))
}

async fn dropping_a_watch_removes_it_on_the_server(ctx: &Ctx) -> Outcome {
    let (c, base) = ctx.fresh("dropwatch").await?;
    let p = format!("{base}/n");
    ok!(c.create(&p, "").await);
    let before = server_watch_count(&c).await?;
    let (_, _, w1) = ok!(c.get_data(&p).watch().await);
    let (_, _, w2) = ok!(c.get_data(&p).watch().await);
    let armed = server_watch_count(&c).await?;
    check!(
        armed == before + 1,
        "two local watchers share one server watch: {before} -> {armed}"
    );
    drop(w1);
    ok!(c.sync("/").await);
    check!(
        server_watch_count(&c).await? == armed,
        "one local watcher left: kept"
    );
    drop(w2);
    ok!(c.sync("/").await);
    let after = server_watch_count(&c).await?;
    check!(
        after == before,
        "last local watcher dropped: removed ({armed} -> {after})"
    );
    if ctx.kind.version() >= ServerVersion::new(3, 6, 0) {
        let pw = ok!(c.add_watch(&p, AddWatchMode::Persistent).await);
        let with = server_watch_count(&c).await?;
        check!(with > before, "persistent watch counted: {with}");
        drop(pw);
        ok!(c.sync("/").await);
        check!(
            server_watch_count(&c).await? == before,
            "persistent watch removed"
        );
    }
    c.close().await;
    Ok(())
}

async fn remove_and_check_watches(ctx: &Ctx) -> Outcome {
    let (c, base) = ctx.fresh("removewatches").await?;
    let p = format!("{base}/n");
    ok!(c.create(&p, "").await);
    let (_, _, data) = ok!(c.get_data(&p).watch().await);
    let (_, child) = ok!(c.get_children(&p).watch().await);
    ok!(c.check_watches(&p, WatcherType::Data).await);
    ok!(c.check_watches(&p, WatcherType::Children).await);
    ok!(c.remove_watches(&p, WatcherType::Children).await);
    match c.check_watches(&p, WatcherType::Children).await {
        Err(Error::NoWatcher { path }) => check!(path == p, "NoWatcher names {path}"),
        other => return Err(format!("child watch after removal: {other:?}")),
    }
    // The local watcher of the removed watch ends; the data watch is untouched.
    let removed = ctx.within(WAIT, child).await?;
    check!(
        matches!(removed, Err(Error::WatchRemoved)),
        "removed watch resolves with WatchRemoved: {removed:?}"
    );
    ok!(c.check_watches(&p, WatcherType::Data).await);
    ok!(c.set_data(&p, "x").await);
    let ev = ok!(ctx.within(WAIT, data).await?);
    check!(
        ev.event_type == EventType::NodeDataChanged,
        "data watch still fires: {ev:?}"
    );
    match c.remove_watches(&p, WatcherType::Data).await {
        Err(Error::NoWatcher { .. }) => {}
        other => return Err(format!("removing a watch that fired: {other:?}")),
    }
    // A DataWatch whose server watch is removed says so and ends, rather than re-arming.
    let mut dw = c.data_watch(&p);
    ok!(ctx.next(&mut dw, WAIT).await?);
    ok!(c.remove_watches(&p, WatcherType::Data).await);
    let item = ctx.next(&mut dw, WAIT).await?;
    check!(
        matches!(item, Err(Error::WatchRemoved)),
        "DataWatch after removeWatches: {item:?}"
    );
    let end = ctx
        .within(
            WAIT,
            std::future::poll_fn(|cx| Pin::new(&mut dw).poll_next(cx)),
        )
        .await?;
    check!(end.is_none(), "DataWatch goes on after removal: {end:?}");
    c.close().await;
    Ok(())
}

async fn data_watch_stream(ctx: &Ctx) -> Outcome {
    let (c, base) = ctx.fresh("datawatch").await?;
    let other = ctx.client().await?;
    let p = format!("{base}/n");
    let mut dw = c.data_watch(&p);
    let first = ok!(ctx.next(&mut dw, WAIT).await?);
    check!(
        first.data.is_none() && first.event.is_none(),
        "first item {first:?}"
    );
    ok!(other.create(&p, "a").await);
    let item = ok!(ctx.next(&mut dw, WAIT).await?);
    check!(
        item.data.as_ref().is_some_and(|(d, _)| &d[..] == b"a")
            && item
                .event
                .as_ref()
                .is_some_and(|e| e.event_type == EventType::NodeCreated),
        "created {item:?}"
    );
    ok!(other.set_data(&p, "b").await);
    let item = ok!(ctx.next(&mut dw, WAIT).await?);
    check!(
        item.data
            .as_ref()
            .is_some_and(|(d, s)| &d[..] == b"b" && s.version == 1),
        "changed {item:?}"
    );
    ok!(other.delete(&p).await);
    let item = ok!(ctx.next(&mut dw, WAIT).await?);
    check!(item.data.is_none(), "deleted {item:?}");
    ok!(other.create(&p, "c").await);
    let item = ok!(ctx.next(&mut dw, WAIT).await?);
    check!(
        item.data.as_ref().is_some_and(|(d, _)| &d[..] == b"c"),
        "re-created {item:?}"
    );
    drop(dw);
    other.close().await;
    c.close().await;
    Ok(())
}

async fn children_watch_stream(ctx: &Ctx) -> Outcome {
    let (c, base) = ctx.fresh("childwatch").await?;
    let other = ctx.client().await?;
    let p = format!("{base}/n");
    let mut cw = c.children_watch(&p);
    let first = ok!(ctx.next(&mut cw, WAIT).await?);
    check!(first.children.is_none(), "missing node first: {first:?}");
    ok!(other.create(&p, "").await);
    let item = ok!(ctx.next(&mut cw, WAIT).await?);
    check!(
        item.children.as_ref().is_some_and(|c| c.is_empty()),
        "created {item:?}"
    );
    ok!(other.create(&format!("{p}/k1"), "").await);
    let item = ok!(ctx.next(&mut cw, WAIT).await?);
    check!(
        item.children.as_ref().is_some_and(|c| *c == ["k1"]),
        "child added {item:?}"
    );
    ok!(other.delete(&p).recursive().await);
    // The child's deletion and then the node's may come as one item or two.
    let mut item = ok!(ctx.next(&mut cw, WAIT).await?);
    if item.children.is_some() {
        item = ok!(ctx.next(&mut cw, WAIT).await?);
    }
    check!(item.children.is_none(), "deleted {item:?}");
    other.close().await;
    c.close().await;
    Ok(())
}

async fn persistent_watches(ctx: &Ctx) -> Outcome {
    if ctx.kind.version() < ServerVersion::new(3, 6, 0) {
        return Ok(());
    }
    let (c, base) = ctx.fresh("persistent").await?;
    let other = ctx.client().await?;
    let p = format!("{base}/n");
    let mut pw = ok!(c.add_watch(&p, AddWatchMode::Persistent).await);
    let mut rw = ok!(c.add_watch(&base, AddWatchMode::PersistentRecursive).await);
    ok!(other.create(&p, "1").await);
    let ev = ctx.next_event(&mut pw, WAIT).await?;
    check!(
        ev.event_type == EventType::NodeCreated && ev.path == p,
        "persistent {ev:?}"
    );
    let ev = ctx.next_event(&mut rw, WAIT).await?;
    check!(
        ev.event_type == EventType::NodeCreated && ev.path == p,
        "recursive {ev:?}"
    );
    ok!(other.set_data(&p, "2").await);
    ok!(other.set_data(&p, "3").await);
    for _ in 0..2 {
        let ev = ctx.next_event(&mut pw, WAIT).await?;
        check!(
            ev.event_type == EventType::NodeDataChanged,
            "stays armed {ev:?}"
        );
        let ev = ctx.next_event(&mut rw, WAIT).await?;
        check!(
            ev.event_type == EventType::NodeDataChanged,
            "recursive stays armed {ev:?}"
        );
    }
    ok!(other.create(&format!("{p}/deep"), "").await);
    let ev = ctx.next_event(&mut pw, WAIT).await?;
    check!(
        ev.event_type == EventType::NodeChildrenChanged && ev.path == p,
        "child event {ev:?}"
    );
    let ev = ctx.next_event(&mut rw, WAIT).await?;
    check!(
        ev.event_type == EventType::NodeCreated && ev.path == format!("{p}/deep"),
        "recursive sees descendants, never NodeChildrenChanged: {ev:?}"
    );
    // A one-shot watch on a persistently watched path must not disturb it (servers before 3.9
    // keep one mode per path).
    let (_, _, once) = ok!(c.get_data(&p).watch().await);
    ok!(other.set_data(&p, "4").await);
    let ev = ok!(ctx.within(WAIT, once).await?);
    check!(
        ev.event_type == EventType::NodeDataChanged,
        "one-shot {ev:?}"
    );
    let ev = ctx.next_event(&mut pw, WAIT).await?;
    check!(
        ev.event_type == EventType::NodeDataChanged,
        "persistent still fires {ev:?}"
    );
    ok!(other.set_data(&p, "5").await);
    let ev = ctx.next_event(&mut pw, WAIT).await?;
    check!(
        ev.event_type == EventType::NodeDataChanged,
        "and again {ev:?}"
    );
    let _ = ctx.next_event(&mut rw, WAIT).await?;
    let _ = ctx.next_event(&mut rw, WAIT).await?;
    drop(pw);
    ok!(other.set_data(&p, "6").await);
    let ev = ctx.next_event(&mut rw, WAIT).await?;
    check!(
        ev.event_type == EventType::NodeDataChanged,
        "recursive unaffected by drop {ev:?}"
    );
    other.close().await;
    c.close().await;
    Ok(())
}

async fn transactions(ctx: &Ctx) -> Outcome {
    let (c, base) = ctx.fresh("txn").await?;
    ok!(c.create(&format!("{base}/x"), "0").await);
    let results = ok!(c
        .transaction()
        .create(&format!("{base}/a"), "1")
        .set_data(&format!("{base}/x"), "2", 0)
        .check(&format!("{base}/x"), 1)
        .create(&format!("{base}/s-"), "")
        .sequential()
        .delete(&format!("{base}/a"), 0)
        .commit()
        .await);
    check!(results.len() == 5, "{results:?}");
    check!(
        matches!(results[1], OpResult::SetData { stat } if stat.version == 1),
        "{results:?}"
    );
    check!(
        results[2] == OpResult::Checked && results[4] == OpResult::Deleted,
        "{results:?}"
    );
    check!(
        matches!(&results[3], OpResult::Created { path, .. } if path.len() == base.len() + 13),
        "sequential create in a transaction: {results:?}"
    );
    match c
        .transaction()
        .create(&format!("{base}/b"), "")
        .check(&format!("{base}/x"), 99)
        .set_data(&format!("{base}/x"), "no", -1)
        .commit()
        .await
    {
        Err(Error::TransactionFailed {
            index,
            error,
            results,
        }) => {
            check!(index == 1, "failing op {index}");
            check!(
                matches!(*error, Error::BadVersion { ref path } if *path == format!("{base}/x")),
                "error {error:?}"
            );
            check!(
                results
                    == vec![
                        Error::RolledBack {
                            path: format!("{base}/b")
                        },
                        Error::BadVersion {
                            path: format!("{base}/x")
                        },
                        Error::RuntimeInconsistency,
                    ],
                "each op as kazoo reports it: {results:?}"
            );
        }
        other => return Err(format!("failed transaction: {other:?}")),
    }
    check!(
        ok!(c.exists(&format!("{base}/b")).await).is_none(),
        "nothing applied"
    );
    c.close().await;
    Ok(())
}

async fn multi_read(ctx: &Ctx) -> Outcome {
    let (c, base) = ctx.fresh("multiread").await?;
    ok!(c.create(&format!("{base}/a"), "A").await);
    ok!(c.create(&format!("{base}/a/k"), "").await);
    let r = c
        .multi_read(vec![
            ReadOp::GetData(format!("{base}/a")),
            ReadOp::GetChildren(format!("{base}/a")),
            ReadOp::GetData(format!("{base}/missing")),
        ])
        .await;
    if ctx.kind.version() < ServerVersion::new(3, 6, 0) {
        check!(
            matches!(r, Err(Error::Unsupported { .. })),
            "multiRead on 3.5: {r:?}"
        );
        return Ok(());
    }
    let r = ok!(r);
    check!(
        matches!(&r[0], ReadResult::Data(d, _) if &d[..] == b"A"),
        "{r:?}"
    );
    check!(
        matches!(&r[1], ReadResult::Children(c) if *c == ["k"]),
        "{r:?}"
    );
    check!(
        matches!(&r[2], ReadResult::Error(Error::NoNode { .. })),
        "{r:?}"
    );
    c.close().await;
    Ok(())
}

async fn error_paths(ctx: &Ctx) -> Outcome {
    let (c, base) = ctx.fresh("errors").await?;
    // A word the caller got wrong is their argument, never a protocol error.
    for word in ["RUOK", "ruo", "ruok!"] {
        let r = c.command(word).await;
        check!(
            matches!(r, Err(Error::InvalidArgument(_))),
            "command({word:?}): {r:?}"
        );
    }
    for bad in ["", "x", "/a/", "/a//b", "/a/./b", "/a\u{0}"] {
        match c.get_data(bad).await {
            Err(Error::InvalidPath { .. }) => {}
            other => return Err(format!("path {bad:?}: {other:?}")),
        }
    }
    let p = format!("{base}/big");
    ok!(c.create(&p, "").await);
    match c.set_data(&p, vec![0u8; 1024 * 1024]).await {
        Err(Error::RequestTooLarge { len, max }) => {
            check!(len > max && max == 0xfffff, "limits {len} {max}")
        }
        other => return Err(format!("1 MiB data: {other:?}")),
    }
    // Just under the limit works, and reads back whole.
    let near = vec![7u8; 1024 * 1000];
    ok!(c.set_data(&p, near.clone()).await);
    let (d, _) = ok!(c.get_data(&p).await);
    check!(d.len() == near.len(), "big read {}", d.len());
    check!(
        c.is_connected(),
        "still connected after refusing the big request"
    );
    match c.reconfig(None, None, None, -1).await {
        Err(Error::ReconfigDisabled) | Err(Error::Unimplemented) => {}
        other => return Err(format!("reconfig on a standalone server: {other:?}")),
    }
    match c.get_config().await {
        Ok(_) | Err(Error::NoNode { .. }) => {}
        other => return Err(format!("get_config: {other:?}")),
    }
    c.close().await;
    match c.get_data("/").await {
        Err(Error::Closed) => {}
        other => return Err(format!("request after close: {other:?}")),
    }
    Ok(())
}

async fn retry_policy(ctx: &Ctx) -> Outcome {
    let c = ctx.client().await?;
    let policy = RetryPolicy {
        max_retries: Some(3),
        delay: Duration::from_millis(5),
        ..RetryPolicy::default()
    };
    let tries = std::sync::atomic::AtomicU32::new(0);
    let r: Result<u32, Error> = c
        .retry_with(&policy, |_| {
            let n = tries.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async move {
                if n < 2 {
                    Err(Error::ConnectionLoss)
                } else {
                    Ok(n)
                }
            }
        })
        .await;
    check!(r == Ok(2), "retried to success: {r:?}");
    tries.store(0, std::sync::atomic::Ordering::SeqCst);
    let r: Result<(), Error> = c
        .retry_with(&policy, |c| {
            tries.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async move { c.get_data("/definitely/missing").await.map(|_| ()) }
        })
        .await;
    check!(
        matches!(r, Err(Error::NoNode { .. })),
        "NoNode is not retried: {r:?}"
    );
    check!(
        tries.load(std::sync::atomic::Ordering::SeqCst) == 1,
        "one try"
    );
    tries.store(0, std::sync::atomic::Ordering::SeqCst);
    let r: Result<(), Error> = c
        .retry_with(&policy, |_| {
            tries.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async { Err(Error::Throttled) }
        })
        .await;
    check!(matches!(r, Err(Error::Throttled)), "gives up: {r:?}");
    check!(
        tries.load(std::sync::atomic::Ordering::SeqCst) == 4,
        "1 + 3 retries"
    );
    c.close().await;
    Ok(())
}

async fn four_letter_words_and_version(ctx: &Ctx) -> Outcome {
    let c = ctx.client().await?;
    let ruok = ok!(c.command("ruok").await);
    check!(ruok == "imok", "ruok {ruok:?}");
    let v = ok!(c.server_version().await);
    check!(
        v == ctx.kind.version(),
        "server version {v} vs {:?}",
        ctx.kind
    );
    let host = c.current_host().ok_or("not connected")?;
    let srvr =
        ok!(
            zk_client::four_letter_word(&*ctx.rt, host.host.clone(), host.port, "srvr", 65536)
                .await
        );
    check!(srvr.starts_with("Zookeeper version:"), "srvr {srvr:?}");
    match zk_client::four_letter_word(&*ctx.rt, host.host, host.port, "toolong", 100).await {
        Err(e) if e.kind() == std::io::ErrorKind::InvalidInput => {}
        other => return Err(format!("bad word: {other:?}")),
    }
    c.close().await;
    Ok(())
}

async fn state_changes_and_close(ctx: &Ctx) -> Outcome {
    let c = ctx.builder().build().map_err(|e| format!("{e}"))?;
    let mut states = c.state_changes();
    ok!(c.start_async());
    let s = ctx.next(&mut states, WAIT).await?;
    check!(s == SessionState::Connected, "first state {s}");
    check!(
        c.is_connected() && c.session_timeout().is_some(),
        "connected facts"
    );
    let zxid = c.last_zxid();
    ok!(c
        .create(&ctx.base("state-probe"), "")
        .ephemeral()
        .make_parents()
        .await);
    check!(c.last_zxid() > zxid, "last_zxid advances");
    let clone = c.clone();
    c.close().await;
    let s = ctx.next(&mut states, WAIT).await?;
    check!(
        s == SessionState::Lost(zk_client::LostReason::Closed),
        "after close {s}"
    );
    check!(
        matches!(clone.get_data("/").await, Err(Error::Closed)),
        "clones see the close"
    );
    Ok(())
}

/// Under a chroot that does not exist, creates with make_parents and ensure_path create the
/// chroot first (kazoo's behaviour), never loop or fail with a NoNode naming neither.
async fn missing_chroot_is_created(ctx: &Ctx) -> Outcome {
    let (plain, base) = ctx.fresh("mkchroot").await?;
    let connect = |chroot: String| async move {
        ctx.builder_at(&chroot)
            .connect()
            .await
            .map_err(|e| format!("connect under {chroot}: {e}"))
    };
    let c = connect(format!("{base}/x/y")).await?;
    let made = ok!(ctx.within(WAIT, c.create("/a", "1").make_parents()).await?);
    check!(made == "/a", "created {made}");
    check!(
        ok!(plain.exists(&format!("{base}/x/y/a")).await).is_some(),
        "the node under the new chroot"
    );
    c.close().await;

    let c = connect(format!("{base}/m")).await?;
    ok!(ctx
        .within(WAIT, c.create("/a/b", "").make_parents())
        .await?);
    check!(
        ok!(plain.exists(&format!("{base}/m/a/b")).await).is_some(),
        "nested create under a new chroot"
    );
    c.close().await;

    let c = connect(format!("{base}/p")).await?;
    ok!(ctx.within(WAIT, c.ensure_path("/b/c")).await?);
    check!(
        ok!(plain.exists(&format!("{base}/p/b/c")).await).is_some(),
        "ensure_path under a new chroot"
    );
    c.close().await;

    let c = connect(format!("{base}/q/r")).await?;
    ok!(ctx.within(WAIT, c.ensure_path("/")).await?);
    check!(
        ok!(plain.exists(&format!("{base}/q/r")).await).is_some(),
        "ensure_path(\"/\") creates the chroot"
    );
    c.close().await;
    plain.close().await;
    Ok(())
}

async fn recursive_delete_of_a_missing_node_is_ok(ctx: &Ctx) -> Outcome {
    let (c, base) = ctx.fresh("rmmissing").await?;
    let gone = format!("{base}/never");
    ok!(c.delete(&gone).recursive().await);
    let r = c.delete(&gone).await;
    check!(
        matches!(r, Err(Error::NoNode { .. })),
        "a plain delete still says NoNode: {r:?}"
    );
    c.close().await;
    Ok(())
}

async fn client_id_only_while_a_session_lives(ctx: &Ctx) -> Outcome {
    let c = ctx.builder().build().map_err(|e| format!("{e}"))?;
    check!(c.client_id().is_none(), "unstarted: {:?}", c.client_id());
    ok!(c.start().await);
    let id = c.client_id().ok_or("no id while connected")?;
    check!(id.id != 0, "id {id:?}");
    // Saved and loaded as text.
    let text = id.to_string();
    let back: zk_client::SessionId = ok!(text.parse());
    check!(back == id, "{text} parses back to {back:?}");
    c.close().await;
    check!(c.client_id().is_none(), "closed: {:?}", c.client_id());
    Ok(())
}

/// DataWatch and ChildrenWatch read when made, not when first polled: a change right after
/// (on the same session, so ordered after the read) is a second item, not a swallowed first.
async fn node_watches_read_at_creation(ctx: &Ctx) -> Outcome {
    let (c, base) = ctx.fresh("watchnow").await?;
    let p = format!("{base}/d");
    let mut data = c.data_watch(&p);
    let mut kids = c.children_watch(&base);
    ok!(c.create(&p, "x").await);
    let first = ok!(ctx.next(&mut data, WAIT).await?);
    check!(
        first.data.is_none(),
        "the node as it was: missing {first:?}"
    );
    let second = ok!(ctx.next(&mut data, WAIT).await?);
    check!(
        second.data.as_ref().is_some_and(|(d, _)| &d[..] == b"x"),
        "then created {second:?}"
    );
    let first = ok!(ctx.next(&mut kids, WAIT).await?);
    check!(
        first.children.as_ref().is_some_and(|k| k.is_empty()),
        "no children at creation {first:?}"
    );
    let second = ok!(ctx.next(&mut kids, WAIT).await?);
    check!(
        second.children.as_ref().is_some_and(|k| *k == ["d"]),
        "then one {second:?}"
    );
    c.close().await;
    Ok(())
}

/// Expires `victim`'s session for real: its servers are swapped for a port where nothing
/// listens (set_hosts), the server expires the session once it has not heard from it for the
/// session timeout (seen by its ephemeral vanishing), and the real servers are given back, where
/// the victim learns of the expiry and (renewal on) starts a new session. No race: the victim
/// cannot reach the server until the expiry has happened.
async fn expire(ctx: &Ctx, victim: &Client) -> Outcome {
    let marker = ok!(victim
        .create(&format!("{}/m-", ctx.base("expiry-markers")), "")
        .ephemeral()
        .sequential()
        .make_parents()
        .await);
    let observer = ctx.client().await?;
    ok!(victim.set_hosts("127.0.0.1:1"));
    let deadline = Instant::now() + Duration::from_secs(60);
    while ok!(observer.exists(&marker).await).is_some() {
        check!(Instant::now() < deadline, "the session never expired");
        ctx.sleep(Duration::from_millis(200)).await;
    }
    observer.close().await;
    ok!(victim.set_hosts(&ctx.connect));
    Ok(())
}

/// After a session renewal that finds the node as it was, no item repeats it (kazoo gives
/// `[b"", b"fred"]`, not `[b"", b"", b"fred"]`).
async fn node_watches_skip_unchanged_renewals(ctx: &Ctx) -> Outcome {
    let (other, base) = ctx.fresh("renewal").await?;
    // A shorter session than the suite's 6 s (4 s on the real servers, whose maxSessionTimeout
    // is 20 ticks of 200 ms): the wait for its expiry, with two quiet windows in a row, was most
    // of the suite's time on every runtime and server.
    let c = ctx
        .builder()
        .session_timeout(Duration::from_secs(3))
        .connect()
        .await
        .map_err(|e| format!("connect to {}: {e}", ctx.connect))?;
    let p = format!("{base}/d");
    ok!(c.create(&p, "").await);
    let mut data = c.data_watch(&p);
    let mut kids = c.children_watch(&base);
    let mut states = c.state_changes();
    let first = ok!(ctx.next(&mut data, WAIT).await?);
    check!(first.data.is_some(), "{first:?}");
    let first = ok!(ctx.next(&mut kids, WAIT).await?);
    check!(first.children.is_some(), "{first:?}");
    expire(ctx, &c).await?;
    let mut seen = Vec::new();
    loop {
        let s = ctx
            .next(&mut states, WAIT)
            .await
            .map_err(|e| format!("states so far {seen:?}: {e}"))?;
        seen.push(s);
        if s == SessionState::Connected && seen.contains(&SessionState::Lost(LostReason::Expired)) {
            break;
        }
    }
    // The watches re-read in the new session and find nothing new: no item (both watched
    // through one window).
    let (quiet_data, quiet_kids) = futures_lite::future::zip(
        ctx.quiet(&mut data, Duration::from_secs(2)),
        ctx.quiet(&mut kids, Duration::from_secs(2)),
    )
    .await;
    quiet_data?;
    quiet_kids?;
    ok!(other.set_data(&p, "fred").await);
    let item = ok!(ctx.next(&mut data, WAIT).await?);
    check!(
        item.data.as_ref().is_some_and(|(d, _)| &d[..] == b"fred"),
        "the next item is the change: {item:?}"
    );
    ok!(other.create(&format!("{base}/smith"), "").await);
    let item = ok!(ctx.next(&mut kids, WAIT).await?);
    check!(
        item.children.as_ref().is_some_and(|k| k.len() == 2),
        "the next children item is the change: {item:?}"
    );
    other.close().await;
    c.close().await;
    Ok(())
}

/// kazoo's order: make the client, add listeners, then start; the first Connected is seen.
async fn listeners_before_start_see_every_state(ctx: &Ctx) -> Outcome {
    let c = ctx.builder().build().map_err(|e| format!("{e}"))?;
    let mut states = c.state_changes();
    check!(
        c.state() == SessionState::Connecting,
        "unstarted {}",
        c.state()
    );
    ok!(c.start().await);
    let s = ctx.next(&mut states, WAIT).await?;
    check!(s == SessionState::Connected, "first state {s}");
    c.close().await;
    let s = ctx.next(&mut states, WAIT).await?;
    check!(
        s == SessionState::Lost(LostReason::Closed),
        "last state {s}"
    );
    Ok(())
}

/// A resumed session that has expired: with renewal on, a listener registered before the
/// start sees Lost(Expired) and then the new session; with renewal off, start fails.
async fn resumed_expired_session_is_observable(ctx: &Ctx) -> Outcome {
    let old = ctx.client().await?;
    let dead = old.client_id().ok_or("no id")?;
    old.close().await;
    let c = ctx
        .builder()
        .resume(dead.clone())
        .build()
        .map_err(|e| format!("{e}"))?;
    let mut states = c.state_changes();
    ok!(c.start().await);
    let mut seen = Vec::new();
    while !seen.contains(&SessionState::Connected) {
        seen.push(ctx.next(&mut states, WAIT).await?);
    }
    check!(
        seen.contains(&SessionState::Lost(LostReason::Expired)),
        "the expiry of the resumed session is seen: {seen:?}"
    );
    check!(
        c.client_id().is_some_and(|id| id.id != dead.id),
        "a new session {:?}",
        c.client_id()
    );
    c.close().await;
    let r = ctx
        .builder()
        .resume(dead)
        .renew_session_after_expiry(false)
        .connect()
        .await;
    check!(
        matches!(r, Err(Error::SessionExpired)),
        "without renewal: {r:?}"
    );
    Ok(())
}

async fn transaction_create_options(ctx: &Ctx) -> Outcome {
    let (c, base) = ctx.fresh("txnopts").await?;
    let results = ok!(c
        .transaction()
        .create(&format!("{base}/e-"), "")
        .ephemeral()
        .sequential()
        .create(&format!("{base}/box"), "")
        .container()
        .create(&format!("{base}/t"), "")
        .ttl(Duration::from_secs(60))
        .commit()
        .await);
    let OpResult::Created { path, .. } = &results[0] else {
        return Err(format!("{results:?}"));
    };
    let st = ok!(c.exists(path).await).ok_or("sequential ephemeral missing")?;
    check!(
        st.ephemeral_owner == c.client_id().map(|i| i.id).unwrap_or(0),
        "ephemeral in a transaction: {st:?}"
    );
    check!(path.len() == base.len() + 13, "sequential name {path}");
    check!(
        ok!(c.exists(&format!("{base}/t")).await).is_some(),
        "TTL node in a transaction"
    );
    let r = c
        .transaction()
        .create(&format!("{base}/bad"), "")
        .ephemeral()
        .ttl(Duration::from_secs(1))
        .commit()
        .await;
    check!(
        matches!(r, Err(Error::InvalidArgument(_))),
        "modes that do not combine are refused before sending: {r:?}"
    );
    let r = c
        .transaction()
        .create(&format!("{base}/bad"), "")
        .ttl(Duration::ZERO)
        .commit()
        .await;
    check!(
        matches!(r, Err(Error::InvalidArgument(_))),
        "a TTL out of range: {r:?}"
    );
    c.close().await;
    Ok(())
}

async fn digest_acl_helper(ctx: &Ctx) -> Outcome {
    let (c, base) = ctx.fresh("digestacl").await?;
    let p = format!("{base}/private");
    let acl = vec![zk_client::make_digest_acl("alice", "secret", Perms::ALL)];
    ok!(c.create(&p, "s").acl(acl.clone()).await);
    let r = c.get_data(&p).await;
    check!(matches!(r, Err(Error::NoAuth { .. })), "stranger: {r:?}");
    let alice = ctx
        .builder()
        .digest("alice", "secret")
        .connect()
        .await
        .map_err(|e| format!("{e}"))?;
    let (d, _) = ok!(alice.get_data(&p).await);
    check!(&d[..] == b"s", "alice reads it");
    let (got, _) = ok!(alice.get_acl(&p).await);
    check!(got == acl, "the server stored the helper's id: {got:?}");
    alice.close().await;
    c.close().await;
    Ok(())
}

async fn command_retry_is_the_default_policy(ctx: &Ctx) -> Outcome {
    let c = ctx
        .builder()
        .command_retry(RetryPolicy {
            max_retries: Some(3),
            delay: Duration::from_millis(1),
            ..RetryPolicy::default()
        })
        .connect()
        .await
        .map_err(|e| format!("{e}"))?;
    let tries = std::sync::atomic::AtomicU32::new(0);
    let r: Result<(), Error> = c
        .retry(|_| {
            tries.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async { Err(Error::ConnectionLoss) }
        })
        .await;
    check!(matches!(r, Err(Error::ConnectionLoss)), "{r:?}");
    check!(
        tries.load(std::sync::atomic::Ordering::SeqCst) == 4,
        "the client's policy: one try and three retries, not {tries:?}"
    );
    c.close().await;
    Ok(())
}

async fn set_hosts_checks_its_argument(ctx: &Ctx) -> Outcome {
    let c = ctx.client().await?;
    let r = c.set_hosts("127.0.0.1:2181/chroot");
    check!(matches!(r, Err(Error::InvalidArgument(_))), "chroot: {r:?}");
    let r = c.set_hosts("");
    check!(matches!(r, Err(Error::InvalidArgument(_))), "empty: {r:?}");
    // The same servers again: the session stays where it is.
    let id = c.client_id();
    ok!(c.set_hosts(&ctx.connect));
    ok!(c.exists("/").await);
    check!(c.client_id() == id, "same session");
    c.close().await;
    Ok(())
}

async fn byte_containers_as_data(ctx: &Ctx) -> Outcome {
    let (c, base) = ctx.fresh("bytes").await?;
    let owned = String::from("s");
    let v = vec![1u8, 2];
    ok!(c.create(&format!("{base}/lit"), b"lit").await);
    ok!(c.create(&format!("{base}/slice"), &v[..]).await);
    ok!(c.create(&format!("{base}/vec"), v.clone()).await);
    ok!(c.create(&format!("{base}/str"), &owned).await);
    ok!(c.set_data(&format!("{base}/str"), owned).await);
    let (d, _) = ok!(c.get_data(&format!("{base}/lit")).await);
    check!(&d[..] == b"lit", "{d:?}");
    let (d, _) = ok!(c.get_data(&format!("{base}/slice")).await);
    check!(d[..] == [1, 2], "{d:?}");
    c.close().await;
    Ok(())
}

async fn version_gating(ctx: &Ctx) -> Outcome {
    let c = ctx.client().await?;
    let v = ctx.kind.version();
    let r = c.get_ephemerals("/").await;
    if v < ServerVersion::new(3, 6, 0) {
        check!(
            matches!(r, Err(Error::Unsupported { .. })),
            "getEphemerals on {v}: {r:?}"
        );
        check!(
            matches!(c.whoami().await, Err(Error::Unsupported { .. })),
            "whoAmI on {v}"
        );
        // Refused before sending: the connection is still there.
        check!(c.is_connected(), "still connected");
        ok!(c.get_data("/").await);
    } else {
        ok!(r);
    }
    c.close().await;
    Ok(())
}

async fn wide_children(ctx: &Ctx) -> Outcome {
    let Some(wide) = &ctx.wide else {
        return Ok(());
    };
    let c = ctx.client().await?;
    let kids = ok!(ctx
        .within(Duration::from_secs(60), c.get_children(wide))
        .await?);
    check!(kids.len() == 100_000, "{} children", kids.len());
    let n = ok!(c.get_all_children_number(wide).await);
    check!(n == 100_000, "count {n}");
    c.close().await;
    // A client whose frame limit is too small gets a typed error, not a hang.
    let small = ctx
        .builder()
        .max_frame(64 * 1024)
        .connect()
        .await
        .map_err(|e| format!("{e}"))?;
    match small.get_children(wide).await {
        Err(Error::Protocol(_)) => {}
        other => {
            return Err(format!(
                "reply over max_frame: {:?}",
                other.map(|k| k.len())
            ))
        }
    }
    small.close().await;
    Ok(())
}

/// Creates `path` with 100,000 children c00000..c99999 (pipelined), unless it has them.
pub async fn prepare_wide(c: &Client, path: &str) -> Result<(), String> {
    ok!(c.ensure_path(path).await);
    let (_, stat) = ok!(c.get_children(path).with_stat().await);
    if stat.num_children == 100_000 {
        return Ok(());
    }
    let mut pending = std::collections::VecDeque::new();
    for i in 0..100_000 {
        pending.push_back(std::future::IntoFuture::into_future(
            c.create(&format!("{path}/c{i:05}"), ""),
        ));
        if pending.len() >= 1000 {
            if let Some(f) = pending.pop_front() {
                match f.await {
                    Ok(_) | Err(Error::NodeExists { .. }) => {}
                    Err(e) => return Err(format!("creating children: {e}")),
                }
            }
        }
    }
    while let Some(f) = pending.pop_front() {
        match f.await {
            Ok(_) | Err(Error::NodeExists { .. }) => {}
            Err(e) => return Err(format!("creating children: {e}")),
        }
    }
    Ok(())
}

/// A burst far beyond `max_in_flight` neither fails nor hangs: the requests wait on the client
/// and reach the server in submission order (the sequence numbers say so).
async fn a_burst_beyond_max_in_flight_waits_in_order(ctx: &Ctx) -> Outcome {
    let (setup, base) = ctx.fresh("burst").await?;
    let c = ok!(ctx.builder().max_in_flight(3).connect().await);
    let prefix = format!("{base}/n-");
    // Creating the futures submits the requests: all 300 are on the client before any reply.
    let pending: Vec<_> = (0..300)
        .map(|_| std::future::IntoFuture::into_future(c.create(&prefix, "x").sequential()))
        .collect();
    let mut names = Vec::new();
    for f in pending {
        names.push(ok!(f.await));
    }
    let expected: Vec<String> = (0..300).map(|i| format!("{prefix}{i:010}")).collect();
    check!(names == expected, "created out of order: {:?}", &names[..5]);
    c.close().await;
    setup.close().await;
    Ok(())
}

/// A persistent watch whose consumer does not read holds at most `watch_queue_limit` items; what
/// it lost is replaced by one Resync, and it is told of every change after that. Meanwhile the
/// client's replies and other watchers go on.
async fn a_watch_consumer_far_behind_gets_a_resync(ctx: &Ctx) -> Outcome {
    if ctx.kind.version() < ServerVersion::new(3, 6, 0) {
        return Ok(());
    }
    let (setup, base) = ctx.fresh("behind").await?;
    let c = ok!(ctx.builder().watch_queue_limit(10).connect().await);
    let p = format!("{base}/n");
    ok!(c.create(&p, "0").await);
    let mut slow = ok!(c.add_watch(&p, AddWatchMode::Persistent).await);
    let mut fast = ok!(c.add_watch(&p, AddWatchMode::Persistent).await);
    // 50 changes; each reply comes after its notification, so every event is queued by the
    // time the last set returns.
    for i in 1..=50 {
        ok!(c.set_data(&p, format!("{i}")).await);
        let ev = ctx
            .next_event(&mut fast, WAIT)
            .await
            .map_err(|e| format!("fast watcher, change {i}: {e}"))?;
        check!(ev.event_type == EventType::NodeDataChanged, "fast {ev:?}");
    }
    // 50 events through a mailbox of 10: the 11th finds it full and leaves [Resync, 11th]; so do
    // the 20th, 29th, 38th and 47th. What is left is the Resync and the 47th to the 50th.
    match ctx
        .next(&mut slow, WAIT)
        .await
        .map_err(|e| format!("slow watcher, first item: {e}"))?
    {
        zk_client::PersistentItem::Resync => {}
        other => return Err(format!("first item after falling behind: {other:?}")),
    }
    for i in 0..4 {
        let ev = ctx
            .next_event(&mut slow, WAIT)
            .await
            .map_err(|e| format!("slow watcher, event {i} after the resync: {e}"))?;
        check!(
            ev.event_type == EventType::NodeDataChanged,
            "event {i}: {ev:?}"
        );
    }
    ctx.quiet(&mut slow, Duration::from_millis(300)).await?;
    // Caught up: later changes arrive one by one again.
    ok!(c.set_data(&p, "51").await);
    let ev = ctx.next_event(&mut slow, WAIT).await?;
    check!(ev.event_type == EventType::NodeDataChanged, "after {ev:?}");
    c.close().await;
    setup.close().await;
    Ok(())
}
