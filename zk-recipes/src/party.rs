//! kazoo's `Party` and `ShallowParty`: who is taking part, as ephemeral children of one node.
//!
//! Layouts (kazoo's):
//! - [`Party`]: a member is `{32 hex digits}__party__` holding its identifier (UTF-8); listing
//!   the members reads each node.
//! - [`ShallowParty`]: a member is `{32 hex digits}-{identifier}`, empty; listing the members is
//!   one read, but the identifier must be a valid node name.
//!
//! Members are ephemeral, so a process whose session ends (expires, closes) leaves the party by
//! itself. As in kazoo, a member does not join again on its own after its session expired; call
//! [`join`](Party::join) again (e.g. on `SessionState::Lost` from `Client::state_changes`).

use std::sync::atomic::{AtomicBool, Ordering};

use zk_client::{Bytes, Client, Error};

use crate::coord_util::{ensure_node, guid, join, DeleteOnDrop};

/// The marker in a [`Party`] member's name.
const PARTY_NODE: &str = "__party__";

/// What Party and ShallowParty share: one member node, joined and left.
#[derive(Debug)]
struct Member {
    client: Client,
    path: String,
    create_path: String,
    data: Bytes,
    participating: AtomicBool,
}

impl Member {
    fn new(client: &Client, path: &str, node: String, data: Bytes) -> Self {
        Member {
            client: client.clone(),
            path: path.to_owned(),
            create_path: join(path, &node),
            data,
            participating: AtomicBool::new(false),
        }
    }

    async fn join(&self) -> Result<(), Error> {
        let guard = DeleteOnDrop::new(&self.client, self.create_path.clone());
        ensure_node(&self.client, &self.path).await?;
        self.client
            .retry(|c| async move {
                match c.create(&self.create_path, &self.data).ephemeral().await {
                    Ok(_) | Err(Error::NodeExists { .. }) => Ok(()),
                    Err(e) => Err(e),
                }
            })
            .await?;
        guard.disarm();
        self.participating.store(true, Ordering::SeqCst);
        Ok(())
    }

    async fn leave(&self) -> Result<bool, Error> {
        self.participating.store(false, Ordering::SeqCst);
        let mut first = true;
        self.client
            .retry(|c| {
                // After a lost connection our own first try may be what deleted it.
                let tried = !std::mem::replace(&mut first, false);
                async move {
                    match c.delete(&self.create_path).await {
                        Ok(()) => Ok(true),
                        Err(Error::NoNode { .. }) => Ok(tried),
                        Err(e) => Err(e),
                    }
                }
            })
            .await
    }

    async fn children(&self) -> Result<Vec<String>, Error> {
        ensure_node(&self.client, &self.path).await?;
        let names = self
            .client
            .retry(|c| async move { c.get_children(&self.path).await })
            .await?;
        Ok(names.to_vec())
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        if self.participating.load(Ordering::SeqCst) {
            drop(DeleteOnDrop::new(&self.client, self.create_path.clone()));
        }
    }
}

/// kazoo's `Party`: members hold their identifier as data. Dropping a member that joined leaves
/// the party (its node is deleted); cancelling `join` removes what it created.
#[derive(Debug)]
pub struct Party(Member);

impl Party {
    /// A would-be member of the party at `path` with `identifier` as its data (kazoo's
    /// `Party(client, path, identifier)`). Nothing is sent yet.
    pub fn new(client: &Client, path: &str, identifier: &str) -> Self {
        Party(Member::new(
            client,
            path,
            format!("{}{PARTY_NODE}", guid()),
            Bytes::copy_from_slice(identifier.as_bytes()),
        ))
    }

    /// The path of this member's node.
    pub fn node_path(&self) -> &str {
        &self.0.create_path
    }

    /// Whether this member joined and has not left (as far as this process knows: an expired
    /// session removes the node without telling this flag).
    pub fn is_participating(&self) -> bool {
        self.0.participating.load(Ordering::SeqCst)
    }

    /// Joins the party (kazoo's `join`); joining twice is fine.
    ///
    /// Errors with the client's errors after its retry policy, and InvalidPath.
    pub async fn join(&self) -> Result<(), Error> {
        self.0.join().await
    }

    /// Leaves the party (kazoo's `leave`): true if this member was in it.
    ///
    /// Errors with the client's errors after its retry policy.
    pub async fn leave(&self) -> Result<bool, Error> {
        self.0.leave().await
    }

    /// The identifiers of the members now (kazoo's `list(party)`), in no defined order. A member
    /// leaving while they are read is left out.
    ///
    /// Errors with the client's errors after its retry policy.
    pub async fn members(&self) -> Result<Vec<String>, Error> {
        let mut out = Vec::new();
        for name in self.0.children().await? {
            if !name.contains(PARTY_NODE) {
                continue;
            }
            let p = join(&self.0.path, &name);
            match self
                .0
                .client
                .retry(|c| {
                    let p = &p;
                    async move { c.get_data(p).await }
                })
                .await
            {
                Ok((data, _)) => out.push(String::from_utf8_lossy(&data).into_owned()),
                Err(Error::NoNode { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// The number of members now (kazoo's `len(party)`).
    ///
    /// Errors with the client's errors after its retry policy.
    pub async fn len(&self) -> Result<usize, Error> {
        Ok(self
            .0
            .children()
            .await?
            .iter()
            .filter(|n| n.contains(PARTY_NODE))
            .count())
    }

    /// Whether the party has no members.
    ///
    /// Errors as [`len`](Self::len).
    pub async fn is_empty(&self) -> Result<bool, Error> {
        Ok(self.len().await? == 0)
    }
}

/// kazoo's `ShallowParty`: members carry their identifier in their node's name, so listing
/// them is one read. Dropping a member that joined leaves the party.
#[derive(Debug)]
pub struct ShallowParty(Member);

impl ShallowParty {
    /// A would-be member of the party at `path` named `identifier` (kazoo's
    /// `ShallowParty(client, path, identifier)`). Nothing is sent yet; an identifier that
    /// cannot be part of a node name (a `/`) fails at `join` with InvalidPath.
    pub fn new(client: &Client, path: &str, identifier: &str) -> Self {
        ShallowParty(Member::new(
            client,
            path,
            format!("{}-{identifier}", guid()),
            Bytes::new(),
        ))
    }

    /// The path of this member's node.
    pub fn node_path(&self) -> &str {
        &self.0.create_path
    }

    /// Whether this member joined and has not left, as far as this process knows.
    pub fn is_participating(&self) -> bool {
        self.0.participating.load(Ordering::SeqCst)
    }

    /// Joins the party.
    ///
    /// Errors with InvalidPath for an identifier that is not a node name, and the client's
    /// errors after its retry policy.
    pub async fn join(&self) -> Result<(), Error> {
        if self.0.create_path.matches('/').count() != self.0.path.matches('/').count() + 1 {
            return Err(Error::InvalidPath {
                path: self.0.create_path.clone(),
                reason: "a ShallowParty identifier cannot contain '/'",
            });
        }
        self.0.join().await
    }

    /// Leaves the party: true if this member was in it.
    ///
    /// Errors with the client's errors after its retry policy.
    pub async fn leave(&self) -> Result<bool, Error> {
        self.0.leave().await
    }

    /// The identifiers of the members now, in no defined order.
    ///
    /// Errors with the client's errors after its retry policy.
    pub async fn members(&self) -> Result<Vec<String>, Error> {
        Ok(self
            .0
            .children()
            .await?
            .into_iter()
            .map(|n| match n.split_once('-') {
                Some((_, id)) => id.to_owned(),
                None => n,
            })
            .collect())
    }

    /// The number of members now.
    ///
    /// Errors with the client's errors after its retry policy.
    pub async fn len(&self) -> Result<usize, Error> {
        Ok(self.0.children().await?.len())
    }

    /// Whether the party has no members.
    ///
    /// Errors as [`len`](Self::len).
    pub async fn is_empty(&self) -> Result<bool, Error> {
        Ok(self.len().await? == 0)
    }
}
