//! Work on whole subtrees: listing one (for `ls -R`, `tree`, `deleteall`, `setAcl -R`) with many
//! requests in flight, and deleting one deepest-first in pipelined transactions, as zkCli's
//! `deleteall` does.

use std::collections::{HashMap, VecDeque};
use std::future::IntoFuture;

use zk_core::path::join;
use zk_core::proto::Acl;
use zk_core::Error;
use zk_tokio::{ChildNames, Client, OpFuture};

use crate::progress::Progress;

/// How many getChildren requests are in flight while listing.
const LIST_WINDOW: usize = 64;
/// How many delete transactions are in flight.
const DELETE_WINDOW: usize = 4;
/// Bytes of paths per delete transaction, well under the server's 1 MiB request limit.
const BATCH_BYTES: usize = 256 * 1024;

/// A listed subtree: every node's sorted children, and the nodes in breadth-first order.
#[derive(Debug, Default)]
pub struct Subtree {
    /// The nodes, root first, breadth-first (each level sorted).
    pub order: Vec<String>,
    /// Each node's child names, sorted.
    pub children: HashMap<String, Vec<String>>,
}

impl Subtree {
    /// A node's children (empty if it has none or vanished while listing).
    pub fn children_of(&self, path: &str) -> Vec<String> {
        self.children.get(path).cloned().unwrap_or_default()
    }

    /// The nodes depth-first, each node before its (sorted) children: zkCli's `ls -R` order.
    pub fn depth_first(&self, root: &str) -> Vec<String> {
        let mut out = Vec::with_capacity(self.order.len());
        let mut stack = vec![root.to_owned()];
        while let Some(p) = stack.pop() {
            if !self.children.contains_key(&p) {
                continue;
            }
            for c in self.children_of(&p).iter().rev() {
                stack.push(join(&p, c));
            }
            out.push(p);
        }
        out
    }
}

/// Lists the subtree under `root`, many requests at a time. Nodes deleted meanwhile are skipped.
///
/// Errors with NoNode if `root` does not exist, and with any other error of getChildren.
pub async fn list(client: &Client, root: &str, progress: &mut Progress) -> Result<Subtree, Error> {
    let mut tree = Subtree::default();
    let mut queue: VecDeque<String> = VecDeque::from([root.to_owned()]);
    let mut inflight: VecDeque<(String, OpFuture<ChildNames>)> = VecDeque::new();
    loop {
        while inflight.len() < LIST_WINDOW {
            let Some(p) = queue.pop_front() else { break };
            let fut = client.get_children(&p).into_future();
            inflight.push_back((p, fut));
        }
        let Some((path, fut)) = inflight.pop_front() else {
            break;
        };
        match fut.await {
            Ok(kids) => {
                let mut kids = kids.to_vec();
                kids.sort();
                queue.extend(kids.iter().map(|k| join(&path, k)));
                tree.order.push(path.clone());
                tree.children.insert(path, kids);
            }
            Err(Error::NoNode { .. }) if path != root => {}
            Err(e) => return Err(e),
        }
        progress.update(tree.order.len() as u64, None);
    }
    // Drop names of children that vanished before they were listed.
    let listed: std::collections::HashSet<String> = tree.order.iter().cloned().collect();
    for (parent, kids) in tree.children.iter_mut() {
        kids.retain(|k| listed.contains(&join(parent, k)));
    }
    Ok(tree)
}

/// Deletes every node of `tree` (root last), deepest first, in transactions of at most `batch`
/// deletes, several in flight (the server applies one session's requests in order, so a parent's
/// delete always comes after its children's). If a transaction fails (a node went away or got a
/// new child meanwhile), the rest is deleted one node at a time. Returns how many nodes this call
/// deleted.
///
/// Errors with NotEmpty if a node got a child that was not listed, and the session's errors.
pub async fn delete(
    client: &Client,
    tree: &Subtree,
    batch: usize,
    progress: &mut Progress,
) -> Result<u64, Error> {
    let paths: Vec<&String> = tree.order.iter().rev().collect();
    let total = paths.len() as u64;
    // Batches as index ranges.
    let mut batches = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, p) in paths.iter().enumerate() {
        if i > start && (i - start >= batch || bytes + p.len() > BATCH_BYTES) {
            batches.push(start..i);
            start = i;
            bytes = 0;
        }
        bytes += p.len() + 16;
    }
    if start < paths.len() {
        batches.push(start..paths.len());
    }
    let mut deleted = 0u64;
    let mut inflight: VecDeque<(std::ops::Range<usize>, OpFuture<Vec<zk_tokio::OpResult>>)> =
        VecDeque::new();
    let mut next = 0;
    let mut failed_at = None;
    while failed_at.is_none() {
        while inflight.len() < DELETE_WINDOW && next < batches.len() {
            let range = batches[next].clone();
            next += 1;
            let txn = paths[range.clone()]
                .iter()
                .fold(client.transaction(), |t, p| t.delete(p, -1));
            inflight.push_back((range, txn.commit()));
        }
        let Some((range, fut)) = inflight.pop_front() else {
            break;
        };
        match fut.await {
            Ok(_) => deleted += range.len() as u64,
            Err(Error::TransactionFailed { .. }) => failed_at = Some(range.start),
            Err(e) => return Err(e),
        }
        progress.update(deleted, Some(total));
    }
    if let Some(from) = failed_at {
        // Let the transactions already sent finish; then go one by one from the failed batch.
        while let Some((range, fut)) = inflight.pop_front() {
            if fut.await.is_ok() {
                deleted += range.len() as u64;
            }
        }
        for p in &paths[from..] {
            match client.delete(p).await {
                Ok(()) => deleted += 1,
                Err(Error::NoNode { .. }) => {}
                Err(e) => return Err(e),
            }
            progress.update(deleted, Some(total));
        }
    }
    Ok(deleted)
}

/// Sets `acl` on every node of `tree`, many requests at a time. Returns how many were set.
///
/// Errors with the first error other than NoNode (a node deleted meanwhile).
pub async fn set_acl(
    client: &Client,
    tree: &Subtree,
    acl: &[Acl],
    version: i32,
    progress: &mut Progress,
) -> Result<u64, Error> {
    let mut inflight = VecDeque::new();
    let mut done = 0u64;
    let mut nodes = tree.order.iter();
    loop {
        while inflight.len() < LIST_WINDOW {
            let Some(p) = nodes.next() else { break };
            inflight.push_back(client.set_acl(p, acl.to_vec(), version));
        }
        let Some(fut) = inflight.pop_front() else {
            break;
        };
        match fut.await {
            Ok(_) => done += 1,
            Err(Error::NoNode { .. }) => {}
            Err(e) => return Err(e),
        }
        progress.update(done, Some(tree.order.len() as u64));
    }
    Ok(done)
}
