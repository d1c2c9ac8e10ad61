//! A transaction (ZooKeeper's `multi`): all of its ops apply, or none.
//!
//! ```sh
//! cargo run -p zk-blocking --example blocking_transaction -- 127.0.0.1:2181
//! ```
//!
//! The servers come from the first argument, else `$ZK_SERVER`, else `127.0.0.1:2181`.

use zk_blocking::{Client, Error};

const BASE: &str = "/zk-rs-examples/transaction";

fn main() -> Result<(), Error> {
    let servers = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("ZK_SERVER").ok())
        .unwrap_or_else(|| "127.0.0.1:2181".into());
    let client = Client::connect(&servers)?;
    client.delete(BASE).recursive().run()?;
    client.ensure_path(BASE)?;

    // Two creates and a version check, applied together.
    let (_, stat) = client.get_data(BASE).run()?;
    let results = client
        .transaction()
        .check(BASE, stat.version)
        .create(&format!("{BASE}/a"), "1")
        .create(&format!("{BASE}/job-"), "2")
        .sequential()
        .commit()?;
    println!("committed: {results:?}");

    // The second create fails (the node exists), so the first is rolled back too.
    let failed = client
        .transaction()
        .create(&format!("{BASE}/b"), "1")
        .create(&format!("{BASE}/a"), "again")
        .commit();
    match failed {
        Err(Error::TransactionFailed { index, error, .. }) => {
            let b_exists = client.exists(&format!("{BASE}/b")).run()?.is_some();
            println!("op {index} failed ({error}); {BASE}/b exists: {b_exists}");
        }
        other => println!("unexpected: {other:?}"),
    }

    client.delete(BASE).recursive().run()?;
    client.close();
    Ok(())
}
