//! The same client on smol: connect, a transaction, a DataWatch and a lock, through
//! `zk_async_std::smol`, with the client's driver on the program's own executor, which this
//! thread runs (`block_on(ex.run(..))`): calls and driver share one thread.
//!
//! ```sh
//! cargo run -p zk-async-std --example smol_tour -- 127.0.0.1:2181
//! ```
//!
//! The servers come from the first argument, else `$ZK_SERVER`, else `127.0.0.1:2181`.

use std::sync::Arc;

use futures_lite::StreamExt;
use zk_async_std::recipes::Lock;

const BASE: &str = "/zk-rs-examples/smol";

fn main() -> Result<(), zk_async_std::Error> {
    let servers = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("ZK_SERVER").ok())
        .unwrap_or_else(|| "127.0.0.1:2181".into());
    let ex = Arc::new(smol::Executor::new());
    smol::block_on(ex.run(async {
        let client = zk_async_std::smol::builder_on(&ex, &servers)
            .connect()
            .await?;
        client.delete(BASE).recursive().await?;
        client.ensure_path(BASE).await?;

        // A DataWatch sees the node's data now (None), then each real change.
        let config_path = format!("{BASE}/config");
        let mut config = client.data_watch(&config_path);
        let first = config.next().await.transpose()?;
        println!("config now: {:?}", first.and_then(|item| item.data));

        // A transaction makes the config node and a sibling together.
        client
            .transaction()
            .create(&config_path, "v1")
            .create(&format!("{BASE}/ready"), "")
            .commit()
            .await?;
        let next = config.next().await.transpose()?;
        println!("config then: {:?}", next.and_then(|item| item.data));

        // A lock, held while the fencing token is printed.
        let mut lock = Lock::new(&client, &format!("{BASE}/lock"), "smol-example");
        lock.acquire().await?;
        println!(
            "lock held, fencing token {:?}, {:?}",
            lock.fencing_token(),
            lock.state()
        );
        lock.release().await?;

        drop(config);
        client.delete(BASE).recursive().await?;
        client.close().await;
        Ok(())
    }))
}
