//! Connect, write a node, read it back, close: no async runtime, `.run()` where async code has
//! `.await`.
//!
//! ```sh
//! cargo run -p zk-blocking --example blocking_connect -- 127.0.0.1:2181
//! ```
//!
//! The servers come from the first argument, else `$ZK_SERVER` (the line `scripts/tour` prints
//! for its ensemble), else `127.0.0.1:2181` as with zkCli.sh.

use zk_blocking::{Client, Error};

fn main() -> Result<(), Error> {
    let servers = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("ZK_SERVER").ok())
        .unwrap_or_else(|| "127.0.0.1:2181".into());
    let client = Client::connect(&servers)?;
    println!("connected: session {:?}", client.client_id());

    // An ephemeral, sequential node: gone when the session ends, numbered by the server.
    let path = client
        .create("/zk-rs-examples/connect/node-", "hello")
        .ephemeral()
        .sequential()
        .make_parents()
        .run()?;
    let (data, stat) = client.get_data(&path).run()?;
    println!("{path} = {data:?} (version {})", stat.version);

    client.delete("/zk-rs-examples/connect").recursive().run()?;
    client.close();
    Ok(())
}
