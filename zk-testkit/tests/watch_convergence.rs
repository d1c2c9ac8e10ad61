//! DataWatch, ChildrenWatch and a cache fed by a persistent watch converge: whole clients on the
//! deterministic world ([`SimWorld`]), one watching every node of a small tree with a DataWatch
//! and a ChildrenWatch each (and, from 3.6, keeping a copy of the whole tree from a recursive
//! persistent watch: re-read a node on its event, re-read everything on a resync item), two writers changing those nodes (data, children, deletion and re-creation) while the
//! watcher is cut off, partitioned (now and then past its session timeout, so its session expires
//! and is renewed) or its server crashes. Once the world is quiet, every watch's last item must
//! be the node's committed state in the model ensemble (data and mzxid; the child set), the copy
//! must equal the committed tree, the streams must not have ended, and a DataWatch's items never
//! go back in mzxid. A persistent watcher that missed a change and was not told to resync would
//! leave its copy stale.
//!
//! `WATCH_CONV_SEEDS=N` runs N seeds (default 40, from `WATCH_CONV_SEED_START`); a failure prints
//! the command that replays one seed with the world's trace.

use std::collections::{BTreeMap, BTreeSet};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_core::Stream;
use zk_client::{AddWatchMode, Client, Error, PersistentItem};
use zk_core::rng::Rng;
use zk_testkit::sim::{NetConfig, Node, SimConfig, SimWorld};

const BASE: &str = "/cw";
const LIMIT: Duration = Duration::from_secs(120);
const WATCHER: Node = Node(1);

/// What the watch tasks saw last, and what went wrong.
#[derive(Default)]
struct Seen {
    data: BTreeMap<String, Option<(Bytes, i64)>>,
    children: BTreeMap<String, Option<BTreeSet<String>>>,
    violations: Vec<String>,
    items: usize,
    /// The copy of the tree under BASE kept from the persistent watch: path -> (data, mzxid).
    copy: BTreeMap<String, (Bytes, i64)>,
}

type Shared = Arc<Mutex<Seen>>;

async fn next<S: Stream + Unpin>(s: &mut S) -> Option<S::Item> {
    std::future::poll_fn(|cx| Pin::new(&mut *s).poll_next(cx)).await
}

fn lock(s: &Shared) -> std::sync::MutexGuard<'_, Seen> {
    s.lock().unwrap_or_else(|e| e.into_inner())
}

fn spawn_watches(w: &SimWorld, client: &Client, path: String, seen: &Shared) {
    let (c, p, s) = (client.clone(), path.clone(), seen.clone());
    w.spawn(async move {
        let mut watch = c.data_watch(&p);
        loop {
            match next(&mut watch).await {
                Some(Ok(item)) => {
                    let now = item.data.map(|(d, stat)| (d, stat.mzxid));
                    let mut g = lock(&s);
                    g.items += 1;
                    if let (Some(Some((_, before))), Some((_, after))) = (g.data.get(&p), &now) {
                        if after < before {
                            let v = format!(
                                "DataWatch {p} went back from mzxid {before:#x} to {after:#x}"
                            );
                            g.violations.push(v);
                        }
                    }
                    g.data.insert(p.clone(), now);
                }
                Some(Err(e)) => {
                    lock(&s)
                        .violations
                        .push(format!("DataWatch {p} ended with {e}"));
                    return;
                }
                None => {
                    lock(&s).violations.push(format!("DataWatch {p} ended"));
                    return;
                }
            }
        }
    });
    let (c, p, s) = (client.clone(), path, seen.clone());
    w.spawn(async move {
        let mut watch = c.children_watch(&p);
        loop {
            match next(&mut watch).await {
                Some(Ok(item)) => {
                    let now = item
                        .children
                        .map(|c| c.iter().map(str::to_owned).collect::<BTreeSet<_>>());
                    let mut g = lock(&s);
                    g.items += 1;
                    g.children.insert(p.clone(), now);
                }
                Some(Err(e)) => {
                    lock(&s)
                        .violations
                        .push(format!("ChildrenWatch {p} ended with {e}"));
                    return;
                }
                None => {
                    lock(&s).violations.push(format!("ChildrenWatch {p} ended"));
                    return;
                }
            }
        }
    });
}

/// Reads one node into the copy (or drops it when gone); false when the read failed.
async fn refresh(c: &Client, p: &str, s: &Shared) -> bool {
    match c.get_data(p).await {
        Ok((d, stat)) => {
            lock(s).copy.insert(p.to_owned(), (d, stat.mzxid));
            true
        }
        Err(Error::NoNode { .. }) => {
            lock(s).copy.remove(p);
            true
        }
        Err(_) => false,
    }
}

/// Reads the whole tree under BASE into the copy, until a walk succeeds.
async fn refresh_all(c: &Client, s: &Shared) {
    'walk: loop {
        let mut found = BTreeSet::new();
        let mut stack = vec![BASE.to_owned()];
        while let Some(p) = stack.pop() {
            match c.get_children(&p).await {
                Ok(children) => {
                    for child in children.iter() {
                        stack.push(format!("{p}/{child}"));
                    }
                }
                Err(Error::NoNode { .. }) => continue,
                Err(_) => continue 'walk,
            }
            if p != BASE {
                if !refresh(c, &p, s).await {
                    continue 'walk;
                }
                found.insert(p);
            }
        }
        lock(s).copy.retain(|p, _| found.contains(p));
        return;
    }
}

/// Keeps the copy of the tree from a recursive persistent watch on BASE: a node is read again
/// on each of its events, the whole tree on a resync item and whenever the watch has to be
/// added again (its session ended).
fn spawn_copy(w: &SimWorld, client: &Client, seen: &Shared) {
    let (c, s) = (client.clone(), seen.clone());
    w.spawn(async move {
        loop {
            let mut watch = match c.add_watch(BASE, AddWatchMode::PersistentRecursive).await {
                Ok(watch) => watch,
                Err(Error::Closed) => return,
                Err(_) => continue,
            };
            refresh_all(&c, &s).await;
            while let Some(item) = next(&mut watch).await {
                lock(&s).items += 1;
                match item {
                    PersistentItem::Event(ev) => {
                        // A failed read means the connection went: a resync item follows.
                        let _ = refresh(&c, &ev.path, &s).await;
                    }
                    PersistentItem::Resync => refresh_all(&c, &s).await,
                }
            }
        }
    });
}

fn connect(w: &SimWorld, node: Node, timeout: Duration) -> Result<Client, String> {
    let b = w
        .builder(node, &w.connect_string())
        .session_timeout(timeout);
    w.block_on(LIMIT, async move { b.connect().await })
        .map_err(|e| format!("{node:?} connect stuck: {e:?}"))?
        .map_err(|e| format!("{node:?} connect failed: {e}"))
}

/// One write by `client`; whatever it answers is fine, but it must answer.
fn write(w: &SimWorld, rng: &mut Rng, client: &Client, nodes: &[String]) -> Result<(), String> {
    let node = nodes[rng.below(nodes.len() as u64) as usize].clone();
    let child = format!("{node}/c{}", rng.below(3));
    let value = format!("{}", rng.below(1_000_000));
    let c = client.clone();
    let op = rng.below(10);
    let r = w.block_on(LIMIT, async move {
        let r: Result<(), Error> = match op {
            0..=3 => c.set_data(&node, value).await.map(|_| ()),
            4 | 5 => c.create(&child, value).await.map(|_| ()),
            6 | 7 => c.delete(&child).await,
            8 => c.delete(&node).await,
            _ => c.create(&node, value).await.map(|_| ()),
        };
        r
    });
    match r {
        Ok(_) => Ok(()),
        Err(stuck) => Err(format!("a write never resolved: {stuck:?}")),
    }
}

fn run_seed(seed: u64, verbose: bool) -> Result<usize, String> {
    let mut rng = Rng::new(seed);
    let versions = [(3, 5, 10), (3, 6, 4), (3, 8, 0), (3, 9, 5)];
    let servers = 1 + rng.below(3) as usize;
    let version = versions[rng.below(versions.len() as u64) as usize];
    let w = SimWorld::new(
        SimConfig {
            servers,
            version,
            ..SimConfig::default()
        },
        NetConfig::default(),
        seed,
    );
    if verbose {
        w.enable_trace();
    }
    let r = run(&w, &mut rng, servers, version);
    if verbose && r.is_err() {
        for line in w.trace() {
            eprintln!("{line}");
        }
    }
    r
}

fn run(
    w: &SimWorld,
    rng: &mut Rng,
    servers: usize,
    version: (u32, u32, u32),
) -> Result<usize, String> {
    let n = 3 + rng.below(6) as usize;
    let nodes: Vec<String> = (0..n).map(|i| format!("{BASE}/n{i}")).collect();
    let timeout = Duration::from_millis(4000 + 2000 * rng.below(2));
    let writers = [
        connect(w, Node(2), Duration::from_secs(30))?,
        connect(w, Node(3), Duration::from_secs(30))?,
    ];
    {
        let c = writers[0].clone();
        let all = nodes.clone();
        w.block_on(LIMIT, async move {
            c.create(BASE, "").await?;
            for p in &all {
                c.create(p, "0").await?;
            }
            Ok::<_, Error>(())
        })
        .map_err(|e| format!("setup stuck: {e:?}"))?
        .map_err(|e| format!("setup failed: {e}"))?;
    }
    let watcher = connect(w, WATCHER, timeout)?;
    let seen: Shared = Arc::default();
    for p in &nodes {
        spawn_watches(w, &watcher, p.clone(), &seen);
    }
    let persistent = version >= (3, 6, 0);
    if persistent {
        spawn_copy(w, &watcher, &seen);
    }
    let mut partitioned_for = 0u32;
    for _ in 0..150 {
        match rng.below(100) {
            0..=3 => w.cut(WATCHER),
            4 | 5 if partitioned_for == 0 => {
                w.partition(WATCHER);
                // Steps of about 25 ms: mostly short, sometimes past the session timeout.
                partitioned_for = if rng.below(5) == 0 {
                    400
                } else {
                    4 + rng.below(60) as u32
                };
            }
            6 => {
                let s = rng.below(servers as u64) as usize;
                w.crash(s);
                w.run_for(Duration::from_millis(100 + rng.below(1500)));
                w.restart(s);
            }
            _ => {}
        }
        if partitioned_for > 0 {
            partitioned_for -= 1;
            if partitioned_for == 0 {
                w.heal(WATCHER);
            }
        }
        let who = &writers[rng.below(2) as usize];
        write(w, rng, who, &nodes)?;
        w.run_for(Duration::from_millis(rng.below(50)));
    }
    // Quiet: every fault healed, nothing written; the watches have time to catch up.
    w.heal(WATCHER);
    for s in 0..servers {
        w.restart(s);
    }
    w.run_for(Duration::from_secs(60));
    let g = lock(&seen);
    if let Some(v) = g.violations.first() {
        return Err(v.clone());
    }
    if persistent {
        let tree = w.with_server(|s, _| {
            let mut out = BTreeMap::new();
            let mut stack = vec![BASE.to_owned()];
            while let Some(p) = stack.pop() {
                for c in s.children(&p).unwrap_or_default() {
                    stack.push(format!("{p}/{c}"));
                }
                if p != BASE {
                    if let Some(n) = s.node(&p) {
                        out.insert(p, (n.data.unwrap_or_default(), n.stat.mzxid));
                    }
                }
            }
            out
        });
        if g.copy != tree {
            let diff: Vec<_> = tree
                .iter()
                .filter(|(p, v)| g.copy.get(*p) != Some(v))
                .map(|(p, v)| format!("{p}: ensemble {v:?}, copy {:?}", g.copy.get(p)))
                .chain(
                    g.copy
                        .keys()
                        .filter(|p| !tree.contains_key(*p))
                        .map(|p| format!("{p}: gone, still in the copy")),
                )
                .collect();
            return Err(format!(
                "the copy kept from the persistent watch is stale: {diff:?}"
            ));
        }
    }
    for p in &nodes {
        let (want_data, want_children) = w.with_server(|s, _| {
            (
                s.node(p)
                    .map(|n| (n.data.unwrap_or_default(), n.stat.mzxid)),
                s.children(p)
                    .map(|c| c.into_iter().collect::<BTreeSet<_>>()),
            )
        });
        let got = g.data.get(p);
        if got != Some(&want_data) {
            return Err(format!(
                "DataWatch {p} settled on {got:?}, the ensemble has {want_data:?}"
            ));
        }
        let got = g.children.get(p);
        if got != Some(&want_children) {
            return Err(format!(
                "ChildrenWatch {p} settled on {got:?}, the ensemble has {want_children:?}"
            ));
        }
    }
    Ok(g.items)
}

fn env(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|s| s.parse().ok())
}

#[test]
fn data_and_children_watches_converge_for_many_seeds() {
    let start = env("WATCH_CONV_SEED_START").unwrap_or(0);
    let n = env("WATCH_CONV_SEEDS").unwrap_or(40);
    let mut items = 0;
    for seed in start..start + n {
        match run_seed(seed, false) {
            Ok(i) => items += i,
            Err(why) => panic!(
                "watch convergence seed {seed} failed: {why}\n\nreplay with:\n  WATCH_CONV_SEED={seed} cargo test -p zk-testkit --test watch_convergence replay -- --nocapture\n"
            ),
        }
    }
    eprintln!("{n} seeds from {start}: {items} watch items");
}

#[test]
fn replay() {
    let Some(seed) = env("WATCH_CONV_SEED") else {
        return;
    };
    if let Err(why) = run_seed(seed, true) {
        panic!("watch convergence seed {seed} failed: {why}");
    }
}
