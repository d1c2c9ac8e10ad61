//! kazoo's `PatientChildrenWatch`: a node's children once they have stopped changing for a
//! while, and a watch that fires when they change after that.

use std::time::Duration;

use zk_client::{Client, Error, Watch};

use crate::coord_util::timeout;

/// kazoo's `PatientChildrenWatch` (`time_boundary` defaults to 30 s there; here it is given).
#[derive(Debug, Clone)]
pub struct PatientChildrenWatch {
    client: Client,
    path: String,
    time_boundary: Duration,
}

impl PatientChildrenWatch {
    /// A watch of the children of `path` that waits for them to be still for `time_boundary`.
    pub fn new(client: &Client, path: &str, time_boundary: Duration) -> Self {
        PatientChildrenWatch {
            client: client.clone(),
            path: path.to_owned(),
            time_boundary,
        }
    }

    /// Waits until the children have not changed for the time boundary (kazoo's `start().get()`)
    /// and returns them with a one-shot [`Watch`] that fires at their next change.
    ///
    /// Errors with NoNode if the node does not exist, and the client's errors after its retry
    /// policy.
    pub async fn start(&self) -> Result<(Vec<String>, Watch), Error> {
        loop {
            let (children, mut watch) = self
                .client
                .retry(|c| async move { c.get_children(&self.path).watch().await })
                .await?;
            // Still for the whole boundary: done. A change (or the watch ending with the
            // connection) within it: read again and wait again.
            match timeout(&self.client, self.time_boundary, &mut watch).await {
                None => return Ok((children.to_vec(), watch)),
                Some(_) => continue,
            }
        }
    }
}
