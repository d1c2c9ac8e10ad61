//! Connect, write a node, read it back, close.
//!
//! ```sh
//! cargo run -p zk-async-std --example async_std_connect -- 127.0.0.1:2181
//! ```
//!
//! The servers come from the first argument, else `$ZK_SERVER` (the line `scripts/tour` prints
//! for its ensemble), else `127.0.0.1:2181` as with zkCli.sh.

use std::time::Duration;

#[async_std::main]
async fn main() -> Result<(), zk_async_std::Error> {
    let servers = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("ZK_SERVER").ok())
        .unwrap_or_else(|| "127.0.0.1:2181".into());
    let client = zk_async_std::builder(&servers)
        .session_timeout(Duration::from_secs(10))
        .connect()
        .await?;
    println!("connected: session {:?}", client.client_id());

    // An ephemeral, sequential node: gone when the session ends, numbered by the server.
    let path = client
        .create("/zk-rs-examples/connect/node-", "hello")
        .ephemeral()
        .sequential()
        .make_parents()
        .await?;
    let (data, stat) = client.get_data(&path).await?;
    println!("{path} = {:?} (version {})", data, stat.version);

    client.delete("/zk-rs-examples/connect").recursive().await?;
    client.close().await;
    Ok(())
}
