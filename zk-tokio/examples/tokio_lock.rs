//! A distributed lock (kazoo's `Lock`) and its loss signal: do the work while holding it, and
//! stop the moment ownership counts as lost (a suspended connection, an expired session).
//!
//! ```sh
//! cargo run -p zk-tokio --example tokio_lock -- 127.0.0.1:2181
//! ```
//!
//! The servers come from the first argument, else `$ZK_SERVER`, else `127.0.0.1:2181`. Run two
//! at once to see them take turns.

use std::time::Duration;

use zk_tokio::recipes::Lock;

#[tokio::main]
async fn main() -> Result<(), zk_tokio::Error> {
    let servers = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("ZK_SERVER").ok())
        .unwrap_or_else(|| "127.0.0.1:2181".into());
    let client = zk_tokio::connect(&servers).await?;

    let identifier = format!("example-{}", std::process::id());
    let mut lock = Lock::new(&client, "/zk-rs-examples/lock", &identifier);
    lock.acquire().await?;
    // Hand the token to whatever the lock protects, so that it can refuse a stale holder.
    let token = lock.fencing_token();
    println!("{identifier} holds the lock, fencing token {token:?}");

    if let Some(lost) = lock.lost() {
        tokio::select! {
            // The protected work; here, two seconds of it.
            () = tokio::time::sleep(Duration::from_secs(2)) => println!("work done"),
            state = lost => println!("lock {state:?}: stopped the work"),
        }
    }
    lock.release().await?;
    client.close().await;
    Ok(())
}
