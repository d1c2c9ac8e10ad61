//! A distributed lock (kazoo's `Lock`) and its loss signal on async-std: do the work while
//! holding it, and stop the moment ownership counts as lost (a suspended connection, an expired
//! session).
//!
//! ```sh
//! cargo run -p zk-async-std --example async_std_lock -- 127.0.0.1:2181
//! ```
//!
//! The servers come from the first argument, else `$ZK_SERVER`, else `127.0.0.1:2181`. Run two
//! at once to see them take turns.

use std::time::Duration;

use futures_lite::future;
use zk_async_std::recipes::Lock;

#[async_std::main]
async fn main() -> Result<(), zk_async_std::Error> {
    let servers = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("ZK_SERVER").ok())
        .unwrap_or_else(|| "127.0.0.1:2181".into());
    let client = zk_async_std::connect(&servers).await?;

    let identifier = format!("example-{}", std::process::id());
    let mut lock = Lock::new(&client, "/zk-rs-examples/lock", &identifier);
    lock.acquire().await?;
    // Hand the token to whatever the lock protects, so that it can refuse a stale holder.
    println!(
        "{identifier} holds the lock, fencing token {:?}",
        lock.fencing_token()
    );

    if let Some(lost) = lock.lost() {
        // Whichever ends first: the protected work (here, two seconds of it) or ownership.
        let work = async {
            async_std::task::sleep(Duration::from_secs(2)).await;
            println!("work done");
        };
        let lost = async {
            let state = lost.await;
            println!("lock {state:?}: stopped the work");
        };
        future::or(work, lost).await;
    }
    lock.release().await?;
    client.close().await;
    Ok(())
}
