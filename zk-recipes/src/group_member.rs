//! Curator's `GroupMember`: membership of a group as an ephemeral node `{path}/{id}` holding
//! the member's payload, kept in place by a [`PersistentNode`] (so it comes back after a
//! delete or in the client's next session), and the group's members read back as a map.

use std::collections::BTreeMap;
use std::time::Duration;

use zk_client::{Bytes, Client, Data, Error};

use crate::coord_util::join;
use crate::persistent_node::{NodeMode, PersistentNode};

/// Curator's `GroupMember`. Dropping it (or [`close`](Self::close)) leaves the group.
#[derive(Debug)]
pub struct GroupMember {
    client: Client,
    path: String,
    id: String,
    node: PersistentNode,
}

impl GroupMember {
    /// Joins the group at `membership_path` as `id` with `payload` (Curator's
    /// `new GroupMember(client, membershipPath, thisId, payload).start()`). The node is created
    /// in the background; [`wait_for_initial_create`](Self::wait_for_initial_create) waits for
    /// it.
    ///
    /// Errors with InvalidPath for an id that is not a node name (empty, or with a `/`), and
    /// with [`Error::Runtime`] if the membership task cannot be started.
    pub fn start(
        client: &Client,
        membership_path: &str,
        id: &str,
        payload: impl Data,
    ) -> Result<GroupMember, Error> {
        if id.is_empty() || id.contains('/') {
            return Err(Error::InvalidPath {
                path: join(membership_path, id),
                reason: "a group member id must be one node name",
            });
        }
        let path = join(membership_path, id);
        let node = PersistentNode::start(client, NodeMode::Ephemeral, false, &path, payload)?;
        Ok(GroupMember {
            client: client.clone(),
            path: membership_path.to_owned(),
            id: id.to_owned(),
            node,
        })
    }

    /// This member's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Waits until this member's node was first created, at most `timeout`: true if it was.
    ///
    /// Errors as [`PersistentNode::wait_for_initial_create`].
    pub async fn wait_for_initial_create(&self, timeout: Duration) -> Result<bool, Error> {
        self.node.wait_for_initial_create(timeout).await
    }

    /// Changes this member's payload (Curator's `setThisData`).
    ///
    /// Errors as [`PersistentNode::set_data`].
    pub async fn set_this_data(&self, data: impl Data) -> Result<(), Error> {
        self.node.set_data(data).await
    }

    /// The members now, id to payload (Curator's `getCurrentMembers`), read from the server;
    /// this member is always in it, with its payload, even before its node is visible.
    ///
    /// Errors with the client's errors after its retry policy.
    pub async fn current_members(&self) -> Result<BTreeMap<String, Bytes>, Error> {
        let names = match self
            .client
            .retry(|c| async move { c.get_children(&self.path).await })
            .await
        {
            Ok(names) => names.to_vec(),
            Err(Error::NoNode { .. }) => Vec::new(),
            Err(e) => return Err(e),
        };
        let mut members = BTreeMap::new();
        for name in names {
            let p = join(&self.path, &name);
            match self
                .client
                .retry(|c| {
                    let p = &p;
                    async move { c.get_data(p).await }
                })
                .await
            {
                Ok((data, _)) => {
                    members.insert(name, data);
                }
                // Left while we read.
                Err(Error::NoNode { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        members.insert(self.id.clone(), self.node.data());
        Ok(members)
    }

    /// The id in a member's path (Curator's `idFromPath`): its last component.
    pub fn id_from_path(path: &str) -> &str {
        path.rsplit('/').next().unwrap_or(path)
    }

    /// Leaves the group: deletes this member's node and stops keeping it.
    pub async fn close(self) {
        self.node.close().await
    }
}
