//! A user's library, as it would be in a crate of its own: code that coordinates through
//! ZooKeeper, written against `zk_client::Client` (so it runs on any runtime) and zk-recipes.
//! Its tests (`tests/`) use nothing but the published API of zk-testkit to put it through a
//! network partition and a session expiry.
//!
//! A [`Worker`] registers itself as an ephemeral node `/workers/<name>` (registering again
//! whenever its client starts a new session, since the old node went with the old session) and
//! stands for leader with a `LeaderLatch` at `/workers-leader`.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

use futures_lite::StreamExt;
use zk_client::{Client, Error};
use zk_recipes::LeaderLatch;

/// Where workers register.
pub const WORKERS: &str = "/workers";
/// The election the workers stand in.
pub const ELECTION: &str = "/workers-leader";

/// A registered worker that stands for leader.
#[derive(Debug)]
pub struct Worker {
    name: String,
    latch: LeaderLatch,
}

impl Worker {
    /// Registers `name` and joins the election, on `client`'s runtime; both go on until the
    /// client closes.
    ///
    /// Errors with `Error::Runtime` if the runtime cannot start the registration task or the
    /// latch's.
    pub fn start(client: &Client, name: &str) -> Result<Worker, Error> {
        let task = keep_registered(client.background_handle(), format!("{WORKERS}/{name}"));
        client
            .runtime()
            .spawn(Box::pin(task))
            .map_err(|e| Error::Runtime(format!("cannot start the registration: {e}")))?;
        let mut latch = LeaderLatch::new(client, ELECTION, name);
        latch.start()?;
        Ok(Worker {
            name: name.to_owned(),
            latch,
        })
    }

    /// The worker's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether this worker believes it leads: false from the moment its connection is
    /// suspended (it may have lost its session), until it is elected again.
    pub fn is_leader(&self) -> bool {
        self.latch.has_leadership()
    }
}

/// The path a worker named `name` registers at.
pub fn registration(name: &str) -> String {
    format!("{WORKERS}/{name}")
}

/// Creates the ephemeral `path` whenever the client is connected without it: at start, and
/// after every new session.
async fn keep_registered(client: Client, path: String) {
    let mut states = client.state_changes();
    loop {
        if client.is_connected() {
            match client.create(&path, "").ephemeral().make_parents().await {
                // NodeExists: registered already in this session.
                Ok(_) | Err(Error::NodeExists { .. }) => {}
                // Connection trouble: tried again at the next state change.
                Err(_) => {}
            }
        }
        // Wait for the next change: a `Connected` may start a new session.
        if states.next().await.is_none() {
            // The client closed.
            return;
        }
    }
}
