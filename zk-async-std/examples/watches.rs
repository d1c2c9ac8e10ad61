//! Watches as streams: a DataWatch on a node (kazoo's `DataWatch`) sees its current data, then
//! every change; a one-shot watch is a future.
//!
//! ```sh
//! cargo run -p zk-async-std --example watches -- 127.0.0.1:2181
//! ```
//!
//! The servers come from the first argument, else `$ZK_SERVER`, else `127.0.0.1:2181`.

use futures_lite::StreamExt;

const NODE: &str = "/zk-rs-examples/watches";

#[async_std::main]
async fn main() -> Result<(), zk_async_std::Error> {
    let servers = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("ZK_SERVER").ok())
        .unwrap_or_else(|| "127.0.0.1:2181".into());
    let client = zk_async_std::connect(&servers).await?;
    client.delete(NODE).recursive().await?;

    // The stream's first item is the data now: None, since the node does not exist yet.
    let mut config = client.data_watch(NODE);
    // A one-shot watch: `exists` with `.watch()` also gives the future of the next event.
    let (_, created) = client.exists(NODE).watch().await?;

    client.create(NODE, "v1").make_parents().await?;
    println!("one-shot watch fired: {:?}", created.await?);
    client.set_data(NODE, "v2").await?;
    client.delete(NODE).await?;

    // None, then each real change up to the deletion. Changes that come faster than the watch
    // re-reads are folded into one item (v1 may be skipped for v2), never lost: the last item
    // always shows the node as it is.
    let mut seen_node = false;
    while let Some(item) = config.next().await {
        let item = item?;
        let event = item.event.map(|e| e.event_type);
        let data = item.data.map(|(data, _stat)| data);
        println!("data watch: {data:?} after {event:?}");
        match data {
            Some(_) => seen_node = true,
            None if seen_node => break, // deleted: done
            None => {}
        }
    }
    client.close().await;
    Ok(())
}
