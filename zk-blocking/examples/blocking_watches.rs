//! kazoo-style callback watches: `data_watch` calls back with the node's data now and after every
//! change, on a thread of its own, until the callback returns `false`.
//!
//! ```sh
//! cargo run -p zk-blocking --example blocking_watches -- 127.0.0.1:2181
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

    // Called with the data now (None: no node yet), then after each change, on a thread of its
    // own; it hands each call's data to this thread. Returning false would end the watch.
    let (tx, calls) = mpsc::channel();
    client.data_watch(NODE, move |data, event| {
        let data = data.map(|(data, _stat)| data);
        println!(
            "data watch: {data:?} after {:?}",
            event.map(|e| e.event_type)
        );
        tx.send(data.is_some()).is_ok()
    })?;

    // One change at a time, each awaited: changes that come faster than the watch re-reads are
    // folded into one call (the last state wins), and a node created and deleted in between
    // makes no call at all.
    let next = || calls.recv().map_err(|_| Error::Closed);
    next()?;
    client.create(NODE, "v1").make_parents().run()?;
    next()?;
    client.set_data(NODE, "v2").run()?;
    next()?;
    client.delete(NODE).run()?;
    next()?;
    client.close();
    Ok(())
}
