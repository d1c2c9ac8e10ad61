//! Protected creates: a node name that carries a GUID, so a create whose reply was lost is found
//! again instead of being orphaned, and a guard that removes the node when an acquire is
//! abandoned.
//!
//! A create can succeed on the server while its reply is lost (ConnectionLoss): the client does
//! not learn the sequence number the server gave the node. Curator's "protection" and kazoo's
//! lock prefix solve it the same way: the name starts with a fresh GUID, and after a
//! ConnectionLoss the parent is listed and the child starting with that GUID is ours.
//!
//! - Curator's layout: `_c_<uuid with dashes>-<name><sequence>` (see [`curator_prefix`]).
//! - kazoo's lock layout: `<uuid hex><node name><sequence>`, e.g. `3f2a..9c__lock__0000000007`
//!   (see [`Guid::hex`]).
//!
//! [`NodeGuard`] removes what an abandoned acquire created: dropped while the node's name is
//! known it sends the delete at once (a request goes out when its future is created, so a `Drop`
//! can send one without awaiting); dropped while a create may be in flight it starts one short
//! task on the client's runtime that lists the parent and deletes the child carrying the GUID.
//! That task ends as soon as those replies come, or when the session ends (every request fails
//! then), so nothing outlives the session.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use zk_client::{Client, Error, Stat};

/// Curator's protected-name marker: `_c_` starts every protected node name.
pub const CURATOR_PROTECTED_PREFIX: &str = "_c_";

/// A random 128-bit identifier, written as a version-4 UUID as Python's `uuid.uuid4()` and
/// Java's `UUID.randomUUID()` are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Guid(u128);

impl Guid {
    /// A fresh GUID. Its randomness comes from the standard library's per-process random hash
    /// keys, mixed with the clock and a counter, so no two calls in or across processes repeat in
    /// practice; it is not meant as a secret.
    pub fn new() -> Guid {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let count = COUNTER.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let half = |salt: u64| {
            let mut h = RandomState::new().build_hasher();
            h.write_u64(salt);
            h.write_u64(count);
            h.write_u128(nanos);
            h.write_u32(std::process::id());
            h.finish()
        };
        let mut bits = (u128::from(half(1)) << 64) | u128::from(half(2));
        // The version (4) and variant (10xx) bits of a random UUID.
        bits &= !(0xf << 76);
        bits |= 0x4 << 76;
        bits &= !(0x3 << 62);
        bits |= 0x2 << 62;
        Guid(bits)
    }

    /// 32 lowercase hex digits, as Python's `uuid4().hex` (kazoo's lock prefix).
    pub fn hex(&self) -> String {
        format!("{:032x}", self.0)
    }

    /// The 8-4-4-4-12 form, as Java's `UUID.toString()` (Curator's protected names).
    pub fn hyphenated(&self) -> String {
        let h = self.hex();
        format!(
            "{}-{}-{}-{}-{}",
            &h[0..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..32]
        )
    }
}

impl Default for Guid {
    fn default() -> Self {
        Guid::new()
    }
}

/// Curator's protected prefix for `guid`: `_c_<uuid>-`. A protected node's name is this prefix
/// followed by the recipe's name (`lock-`, `latch-`) and the sequence number.
pub fn curator_prefix(guid: &Guid) -> String {
    format!("{CURATOR_PROTECTED_PREFIX}{}-", guid.hyphenated())
}

/// The full path of `name` under `parent` (`/` as parent gives `/name`).
pub(crate) fn child_path(parent: &str, name: &str) -> String {
    if parent == "/" {
        format!("/{name}")
    } else {
        format!("{parent}/{name}")
    }
}

/// The last component of `path`.
pub(crate) fn node_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// Runs `op` again while it fails with ConnectionLoss: the request may or may not have been
/// applied, and every caller here is a read or an idempotent step, so trying again is right.
/// Requests made while the connection is down wait for the reconnect, so this does not spin; the
/// loop ends with the session's other errors (SessionExpired, Closed).
pub(crate) async fn retry_loss<T, F, Fut>(mut op: F) -> Result<T, Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::IntoFuture<Output = Result<T, Error>>,
{
    loop {
        match op().into_future().await {
            Err(Error::ConnectionLoss) => continue,
            other => return other,
        }
    }
}

/// The child of `parent` whose name starts with `prefix`, if there is one (kazoo's `_find_node`).
///
/// Errors with NoNode when `parent` does not exist, and the session's errors (ConnectionLoss is
/// retried).
pub async fn find_protected(
    client: &Client,
    parent: &str,
    prefix: &str,
) -> Result<Option<String>, Error> {
    let children = retry_loss(|| client.get_children(parent)).await?;
    Ok(children
        .iter()
        .find(|c| c.starts_with(prefix))
        .map(|c| child_path(parent, c)))
}

/// How [`create_protected`] creates the node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProtectedMode {
    /// Delete the node when the session ends.
    pub ephemeral: bool,
    /// Append the server's sequence number.
    pub sequential: bool,
}

impl ProtectedMode {
    /// Ephemeral and sequential: what every lock, latch and election contender uses.
    pub const EPHEMERAL_SEQUENTIAL: ProtectedMode = ProtectedMode {
        ephemeral: true,
        sequential: true,
    };
}

/// Creates `parent/prefix` (plus a sequence number if `mode` says so) with `data`, creating
/// missing parents, and recovers from a lost reply: after a ConnectionLoss it lists `parent` for
/// a child starting with `prefix` (which must hold a fresh GUID) and takes that one, creating
/// again only if there is none. Resolves to the node's path and Stat (`czxid` is the fencing
/// token of lock-like recipes; `ephemeral_owner` the owning session).
///
/// Errors with NoAuth, InvalidPath, NodeExists (a non-sequential name taken by someone else),
/// NoChildrenForEphemerals, and the session's errors except ConnectionLoss, which is handled.
pub async fn create_protected(
    client: &Client,
    parent: &str,
    prefix: &str,
    data: Bytes,
    mode: ProtectedMode,
) -> Result<(String, Stat), Error> {
    let path = child_path(parent, prefix);
    loop {
        let mut create = client.create(&path, data.clone()).make_parents();
        if mode.ephemeral {
            create = create.ephemeral();
        }
        if mode.sequential {
            create = create.sequential();
        }
        match create.with_stat().await {
            Ok(created) => return Ok(created),
            Err(Error::ConnectionLoss) => {
                // The create may have been applied: look for our GUID before trying again.
                if let Some(found) = find_protected(client, parent, prefix).await? {
                    match retry_loss(|| client.exists(&found)).await? {
                        Some(stat) => return Ok((found, stat)),
                        // Deleted meanwhile (by an admin, or its session ended): make another.
                        None => continue,
                    }
                }
            }
            Err(e) => return Err(e),
        }
    }
}

/// Where a [`NodeGuard`]'s node stands.
#[derive(Debug)]
enum Guarded {
    /// Nothing sent yet.
    Nothing,
    /// A create was sent and its outcome is unknown: the node may exist under the GUID.
    MaybeCreated,
    /// The node exists at this path.
    Created(String),
    /// Handed over to its holder; the guard does nothing.
    Disarmed,
}

/// Removes an acquire's node unless the acquire completes: see the [module](self) docs. Create it
/// before the create is sent, call [`sending`](Self::sending) just before, [`created`](Self::created)
/// when the path is known, and [`disarm`](Self::disarm) once the node is handed over.
#[derive(Debug)]
pub struct NodeGuard {
    client: Client,
    parent: String,
    prefix: String,
    state: Guarded,
}

impl NodeGuard {
    /// A guard for a node `parent/prefix...` of `client`'s session.
    pub fn new(client: &Client, parent: &str, prefix: &str) -> NodeGuard {
        NodeGuard {
            client: client.clone(),
            parent: parent.to_owned(),
            prefix: prefix.to_owned(),
            state: Guarded::Nothing,
        }
    }

    /// A create is about to be sent: from now on the node may exist.
    pub fn sending(&mut self) {
        self.state = Guarded::MaybeCreated;
    }

    /// The node exists at `path`.
    pub fn created(&mut self, path: &str) {
        self.state = Guarded::Created(path.to_owned());
    }

    /// The node is gone (deleted on purpose, or with its session); nothing to clean.
    pub fn forget(&mut self) {
        self.state = Guarded::Nothing;
    }

    /// Hands the node over: the guard will not delete it.
    pub fn disarm(&mut self) {
        self.state = Guarded::Disarmed;
    }
}

impl Drop for NodeGuard {
    fn drop(&mut self) {
        match std::mem::replace(&mut self.state, Guarded::Disarmed) {
            Guarded::Nothing | Guarded::Disarmed => {}
            Guarded::Created(path) => {
                // Sent now; nobody waits for the reply (the node is ephemeral, so a failure here
                // leaves it only until the session ends).
                drop(std::future::IntoFuture::into_future(
                    self.client.delete(&path),
                ));
            }
            Guarded::MaybeCreated => spawn_cleanup(&self.client, &self.parent, &self.prefix),
        }
    }
}

/// Starts a task that deletes `parent`'s child starting with `prefix`, if any. Requests of one
/// session are applied in order, so the listing sees the outcome of the create sent before it.
pub(crate) fn spawn_cleanup(client: &Client, parent: &str, prefix: &str) {
    // Not counted: a cleanup must not keep the session open by itself.
    let client = client.background_handle();
    let parent = parent.to_owned();
    let prefix = prefix.to_owned();
    let rt = client.runtime().clone();
    let what = format!("{parent}/{prefix}*");
    let task = Box::pin(async move {
        // Only ConnectionLoss is retried: with the session over (SessionExpired, Closed) the
        // ephemeral node is gone anyway and the task ends.
        if let Ok(Some(path)) = find_protected(&client, &parent, &prefix).await {
            let _ = retry_loss(|| client.delete(&path)).await;
        }
    });
    if let Err(e) = rt.spawn(task) {
        tracing::warn!(
            "cannot start the cleanup of {what}: {e}; the node stays until the session ends"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guids_look_like_uuid4_and_differ() {
        let a = Guid::new();
        let b = Guid::new();
        assert_ne!(a, b);
        let h = a.hex();
        assert_eq!(h.len(), 32);
        assert!(h
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        let u = a.hyphenated();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4", "version nibble in {u}");
        assert!("89ab".contains(&u[19..20]), "variant in {u}");
        let p = curator_prefix(&a);
        assert!(p.starts_with("_c_") && p.ends_with('-') && p.len() == 40);
    }

    #[test]
    fn paths() {
        assert_eq!(child_path("/", "a"), "/a");
        assert_eq!(child_path("/x/y", "a"), "/x/y/a");
        assert_eq!(node_name("/x/y/a"), "a");
    }
}
