//! kazoo-style callback watches: `data_watch` calls back with the node's data now and after every
//! change, on a thread of its own, until the callback returns `false`.
//!
//! ```sh
//! cargo run -p zk-blocking --example watches -- 127.0.0.1:2181
//! ```
//!
//! The servers come from the first argument, else `$ZK_SERVER`, else `127.0.0.1:2181`.

use std::sync::mpsc;

use zk_blocking::{Client, Error};

const NODE: &str = "/zk-rs-examples/watches";

fn main() -> Result<(), Error> {
    let servers = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("ZK_SERVER").ok())
        .unwrap_or_else(|| "127.0.0.1:2181".into());
    let client = Client::connect(&servers)?;
    client.delete(NODE).recursive().run()?;

    // Called with None first (no node yet), then per change. Changes faster than the watch
    // re-reads are folded into one call, never lost. Returning false after the deletion ends it.
    let (done_tx, done) = mpsc::channel();
    let mut seen_node = false;
    client.data_watch(NODE, move |data, event| {
        let data = data.map(|(data, _stat)| data);
        println!(
            "data watch: {data:?} after {:?}",
            event.map(|e| e.event_type)
        );
        seen_node |= data.is_some();
        let deleted = seen_node && data.is_none();
        if deleted {
            let _ = done_tx.send(());
        }
        !deleted
    })?;

    client.create(NODE, "v1").make_parents().run()?;
    client.set_data(NODE, "v2").run()?;
    client.delete(NODE).run()?;
    // Wait for the callback to see the deletion.
    let _ = done.recv();
    client.close();
    Ok(())
}
