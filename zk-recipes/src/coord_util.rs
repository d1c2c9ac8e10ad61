//! Small helpers shared by the coordination recipes (counter, queue, barrier, party, caches):
//! random node names, a compare-and-set write that settles a lost connection, and a guard that
//! deletes a node when an operation is cancelled.

use zk_client::{Bytes, Client, Error, Stat};

/// `parent/child`.
pub(crate) fn join(parent: &str, child: &str) -> String {
    zk_client::zk_core::path::join(parent, child)
}

/// Creates `path` (and its parents) with empty data unless it exists. Not `ensure_path`: that
/// writes null data, which kazoo reads as `None` and its Counter cannot decode, while kazoo's
/// own `ensure_path` writes empty bytes.
///
/// Errors with the client's errors after its retry policy, and InvalidPath.
pub(crate) async fn ensure_node(client: &Client, path: &str) -> Result<(), Error> {
    client
        .retry(|c| async move {
            match c.create(path, &b""[..]).make_parents().await {
                Ok(_) | Err(Error::NodeExists { .. }) => Ok(()),
                Err(e) => Err(e),
            }
        })
        .await
}

/// What a conditional write came to.
pub(crate) enum Cas {
    /// The write applied.
    Applied,
    /// Someone else changed (or deleted) the node first; nothing was written.
    Conflict,
    /// The connection dropped during the write and the node has moved on since, so whether
    /// this write is among the changes cannot be told.
    Unknown,
}

/// Writes `data` to `path` if its data version is still `version`. A ConnectionLoss during the
/// write is settled by reading the node back (retrying the read as the client's policy says):
/// still at `version` means the write did not apply; at `version + 1` it applied if the node
/// holds exactly our bytes (the only other writer that could have produced that version and
/// those bytes would have had to compute the same value from the same version). Anything else
/// is [`Cas::Unknown`]: retrying blindly could apply the change twice (kazoo's Counter does).
///
/// Errors with what the write or the read-back fail with other than the cases above.
pub(crate) async fn cas_write(
    client: &Client,
    path: &str,
    data: Bytes,
    version: i32,
) -> Result<Cas, Error> {
    match client.set_data(path, data.clone()).version(version).await {
        Ok(_) => Ok(Cas::Applied),
        Err(Error::BadVersion { .. }) | Err(Error::NoNode { .. }) => Ok(Cas::Conflict),
        Err(Error::ConnectionLoss) | Err(Error::Timeout) => {
            let read = client
                .retry(|c| async move { c.get_data(path).await })
                .await;
            match read {
                Err(Error::NoNode { .. }) => Ok(Cas::Conflict),
                Err(e) => Err(e),
                Ok((now, stat)) => Ok(settle(&stat, &now, version, &data)),
            }
        }
        Err(e) => Err(e),
    }
}

fn settle(stat: &Stat, now: &Bytes, version: i32, ours: &Bytes) -> Cas {
    if stat.version == version {
        Cas::Conflict
    } else if stat.version == version.wrapping_add(1) {
        if now == ours {
            Cas::Applied
        } else {
            Cas::Conflict
        }
    } else {
        Cas::Unknown
    }
}
