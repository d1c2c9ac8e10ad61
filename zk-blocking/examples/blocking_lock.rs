//! A distributed lock (kazoo's `Lock`) and its loss signal: `wait_lost` blocks until ownership
//! counts as lost (a suspended connection, an expired session), so the work can stop at once.
//!
//! ```sh
//! cargo run -p zk-blocking --example blocking_lock -- 127.0.0.1:2181
//! ```
//!
//! The servers come from the first argument, else `$ZK_SERVER`, else `127.0.0.1:2181`. Run two
//! at once to see them take turns.

use std::time::Duration;

use zk_blocking::recipes::Lock;
use zk_blocking::{Client, Error};

fn main() -> Result<(), Error> {
    let servers = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("ZK_SERVER").ok())
        .unwrap_or_else(|| "127.0.0.1:2181".into());
    let client = Client::connect(&servers)?;

    let identifier = format!("example-{}", std::process::id());
    let mut lock = Lock::new(&client, "/zk-rs-examples/lock", &identifier);
    lock.acquire()?;
    // Hand the token to whatever the lock protects, so that it can refuse a stale holder.
    println!(
        "{identifier} holds the lock, fencing token {:?}",
        lock.fencing_token()
    );

    // The protected work would run on another thread; here the main thread only watches for
    // loss, for two seconds.
    match lock.wait_lost(Some(Duration::from_secs(2))) {
        None => println!("work done, lock held throughout"),
        Some(state) => println!("lock {state:?}: stop the work"),
    }
    lock.release()?;
    client.close();
    Ok(())
}
