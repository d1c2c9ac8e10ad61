//! Protected creates against real ZooKeeper 3.8 and 3.9, on tokio, async-std and smol: a proxy
//! applies a lock's create on the server but cuts the connection instead of passing the reply
//! on. The client sees ConnectionLoss; the lock finds its node again by the GUID in its name and
//! acquires with it: exactly one node, no orphan. (Creating again instead, as an unprotected
//! recipe would, leaves an orphan ahead of the new node, and the lock waits for its own orphan
//! until its session ends: the test was seen failing that way.)

mod common;

use common::*;
use futures_core::Stream;
use zk_client::SessionState;
use zk_recipes::{InterProcessMutex, Lock};
use zk_testkit::real::{Ensemble, ZkVersion};

fn scenarios() -> Vec<(&'static str, Scenario)> {
    vec![(
        "connection_loss_during_create",
        (|ctx, ens| Box::pin(connection_loss_during_create(ctx, ens))) as Scenario,
    )]
}

#[test]
fn protected_on_zookeeper_3_8() {
    run_everywhere(ZkVersion::V3_8, &scenarios());
}

#[test]
fn protected_on_zookeeper_3_9() {
    run_everywhere(ZkVersion::V3_9, &scenarios());
}

async fn connection_loss_during_create(ctx: &Ctx, _: &mut Ensemble) -> Outcome {
    let (admin, base) = ctx.fresh("protected").await?;
    let upstream = ctx.connect.split(',').next().ok_or("no server")?.to_owned();
    let proxy = LossyProxy::start(&upstream).map_err(|e| format!("proxy: {e}"))?;
    let c = ok!(
        zk_client::ClientBuilder::new(ctx.rt.clone(), &proxy.connect_string())
            .session_timeout(std::time::Duration::from_secs(10))
            .connect_timeout(WAIT)
            .connect()
            .await
    );
    let session = c.client_id().ok_or("no session")?.id;
    for (name, marker) in [("kazoo", "__lock__"), ("curator", "-lock-")] {
        let path = format!("{base}/{name}");
        ok!(c.ensure_path(&path).await);
        let mut states = c.state_changes();
        proxy.arm(marker);
        let (token, node) = if name == "kazoo" {
            let mut lock = Lock::new(&c, &path, "x");
            ok!(ctx
                .within(WAIT, lock.acquire())
                .await
                .map_err(|e| format!("{name}: acquire: {e} (an orphan ahead of it?)"))?);
            let own = lock.ownership().ok_or("no ownership")?;
            let out = (own.fencing_token(), own.node().to_owned());
            ok!(lock.release().await);
            out
        } else {
            let mut m = InterProcessMutex::new(&c, &path, "x");
            ok!(ctx
                .within(WAIT, m.acquire())
                .await
                .map_err(|e| format!("{name}: acquire: {e} (an orphan ahead of it?)"))?);
            let own = m.ownership().ok_or("no ownership")?;
            let out = (own.fencing_token(), own.node().to_owned());
            ok!(m.release().await);
            out
        };
        check!(proxy.fired(), "{name}: the proxy swallowed no reply");
        let first = ctx
            .within(
                WAIT,
                std::future::poll_fn(|cx| std::pin::Pin::new(&mut states).poll_next(cx)),
            )
            .await?;
        check!(
            first == Some(SessionState::Suspended),
            "{name}: the connection was cut ({first:?})"
        );
        check!(
            c.client_id().map(|s| s.id) == Some(session),
            "{name}: same session"
        );
        // The node it acquired with is the one the lost create made: nothing else was created.
        let cv = ok!(admin.exists(&path).await).ok_or("lock path")?.cversion;
        check!(
            cv == 2,
            "{name}: {cv} child changes (one create, one delete expected)"
        );
        check!(token > 0 && node.starts_with(&path), "{name}: node {node}");
        let left = ok!(admin.get_children(&path).await);
        check!(left.is_empty(), "{name}: left behind {:?}", left.to_vec());
    }
    c.close().await;
    admin.close().await;
    Ok(())
}
