//! Watches as streams: a DataWatch on a node (kazoo's `DataWatch`) sees its current data, then
//! every change; a one-shot watch is a future.
//!
//! ```sh
//! cargo run -p zk-tokio --example tokio_watches -- 127.0.0.1:2181
//! ```
//!
//! The servers come from the first argument, else `$ZK_SERVER`, else `127.0.0.1:2181`.

use futures_lite::StreamExt;

const NODE: &str = "/zk-rs-examples/watches";

#[tokio::main]
async fn main() -> Result<(), zk_tokio::Error> {
    let servers = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("ZK_SERVER").ok())
        .unwrap_or_else(|| "127.0.0.1:2181".into());
    let client = zk_tokio::connect(&servers).await?;
    client.delete(NODE).recursive().await?;

    // A DataWatch reads when it is made: its first item is the data now, None (no node yet).
    let mut config = client.data_watch(NODE);
    // A one-shot watch: `exists` with `.watch()` also gives the future of the next event.
    let (_, created) = client.exists(NODE).watch().await?;

    // One change at a time, each awaited: changes that come faster than the watch re-reads are
    // folded into one item (the last state wins), and a node created and deleted in between
    // yields nothing at all.
    print_next(&mut config).await?;
    client.create(NODE, "v1").make_parents().await?;
    println!("one-shot watch fired: {:?}", created.await?);
    print_next(&mut config).await?;
    client.set_data(NODE, "v2").await?;
    print_next(&mut config).await?;
    client.delete(NODE).await?;
    print_next(&mut config).await?;
    client.close().await;
    Ok(())
}

/// Prints the watch's next item: the node's data (None when it does not exist) and the event
/// that led to it.
async fn print_next(watch: &mut zk_tokio::DataWatch) -> Result<(), zk_tokio::Error> {
    if let Some(item) = watch.next().await {
        let item = item?;
        let data = item.data.map(|(data, _stat)| data);
        println!(
            "data watch: {data:?} after {:?}",
            item.event.map(|e| e.event_type)
        );
    }
    Ok(())
}
