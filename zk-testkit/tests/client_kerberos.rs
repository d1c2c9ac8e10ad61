//! Kerberos (SASL GSSAPI) against real ZooKeeper 3.8 and 3.9 set up as a Kerberized ensemble is:
//! a local MIT KDC with its own realm (zk_testkit::real::TestKdc), the server logged in from a
//! keytab as `zookeeper/localhost@ZK-RS.TEST` by a JAAS `Server` section (`Krb5LoginModule`),
//! the SASL auth provider, and `zookeeper.sessionRequireClientSASLAuth=true` (a connection that
//! has not logged in gets nothing done). The clients have no JAAS file: their tickets come from
//! the client keytab (`KRB5_CLIENT_KTNAME`) holding `zkclient` and `zkother`. Runs on tokio,
//! async-std, smol and zk-blocking. Needs the `gssapi` feature (scripts/test turns it on).
//!
//! - a login as `zkclient` gives the connection the identity `sasl:zkclient@ZK-RS.TEST`; a node
//!   under a `sasl` ACL for that principal is readable by it and not by `zkother`;
//! - a session moved to another address of the same server logs in again before anything else
//!   (the server would refuse the read otherwise) and keeps its identity;
//! - a client principal with no key in the keytab, and a server principal the KDC does not know,
//!   each end the session with `Lost(AuthFailed)`, and `auth_failure()` says which.

#[macro_use]
mod suite;

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use suite::{Ctx, Outcome, ServerKind};
use zk_client::{
    make_sasl_acl, ClientBuilder, Error, KerberosConfig, LostReason, Perms, Runtime, SessionState,
};
use zk_testkit::real::{Ensemble, EnsembleOptions, TestKdc, ZkVersion};

const WAIT: Duration = Duration::from_secs(30);

/// The realm's KDC and the client keytab, shared by every test of this binary.
struct Realm {
    kdc: TestKdc,
    server_keytab: PathBuf,
}

/// Starts the KDC once per test binary and points this process's Kerberos library at it.
///
/// MIT krb5 reads its configuration, client keytab and credential cache from the environment
/// only (the safe GSSAPI binding has no per-call credential store), so the variables are set
/// here, inside the `OnceLock`: every test waits on it before it does anything with Kerberos,
/// so no thread of this process is reading the environment in the krb5 library meanwhile.
fn realm() -> &'static Realm {
    static REALM: OnceLock<Realm> = OnceLock::new();
    REALM.get_or_init(|| {
        let kdc = TestKdc::start().unwrap_or_else(|e| panic!("starting the test KDC: {e}"));
        let server_keytab = kdc
            .add_principal("zookeeper/localhost", "zookeeper.keytab")
            .unwrap_or_else(|e| panic!("making the server's principal: {e}"));
        let client_keytab = kdc
            .add_principal("zkclient", "client.keytab")
            .and_then(|_| kdc.add_principal("zkother", "client.keytab"))
            .unwrap_or_else(|e| panic!("making the clients' principals: {e}"));
        for (k, v) in kdc.client_env(&client_keytab) {
            std::env::set_var(k, v);
        }
        Realm { kdc, server_keytab }
    })
}

/// A Kerberized, SASL-requiring server of `version`.
fn kerberos_server(version: ZkVersion, dir: &Path) -> Ensemble {
    let realm = realm();
    std::fs::create_dir_all(dir).expect("a directory for the JAAS file");
    let props = realm
        .kdc
        .write_server_jaas(
            &dir.join("server-jaas.conf"),
            &realm.kdc.principal("zookeeper/localhost"),
            &realm.server_keytab,
        )
        .unwrap_or_else(|e| panic!("writing the server's JAAS file: {e}"));
    let mut o = EnsembleOptions::standalone(version);
    o.system_properties.extend(props);
    o.system_properties.push((
        "zookeeper.sessionRequireClientSASLAuth".into(),
        "true".into(),
    ));
    o.extra_config
        .push("authProvider.1=org.apache.zookeeper.server.auth.SASLAuthenticationProvider".into());
    Ensemble::start(o)
        .unwrap_or_else(|e| panic!("starting ZooKeeper {version:?} with Kerberos: {e}"))
}

fn builder(ctx: &Ctx, connect: &str) -> ClientBuilder {
    ClientBuilder::new(ctx.rt.clone(), connect)
        .session_timeout(Duration::from_secs(6))
        .connect_timeout(WAIT)
}

/// `localhost:<port>`: the host the service principal is derived from.
fn localhost(connect: &str) -> String {
    connect.replace("127.0.0.1", "localhost")
}

async fn kerberos_scenario(ctx: &Ctx) -> Outcome {
    let kdc = &realm().kdc;
    let me = kdc.principal("zkclient");
    let c = builder(ctx, &localhost(&ctx.connect))
        .sasl_kerberos(KerberosConfig::new().client_principal(&me))
        .connect()
        .await
        .map_err(|e| format!("connect with Kerberos: {e}"))?;
    let who = ok!(c.whoami().await);
    check!(
        who.iter().any(|i| i.auth_scheme == "sasl" && i.user == me),
        "whoAmI after the Kerberos login: {who:?}"
    );
    let node = format!("/krb-{}", ctx.runtime_name);
    match c.delete(&node).await {
        Ok(()) | Err(Error::NoNode { .. }) => {}
        Err(e) => return Err(format!("cleaning {node}: {e}")),
    }
    ok!(c
        .create(&node, "zkclient's")
        .acl(vec![make_sasl_acl(&me, Perms::ALL)])
        .await);

    // Another principal is kept out by the ACL.
    let other = builder(ctx, &localhost(&ctx.connect))
        .sasl_kerberos(KerberosConfig::new().client_principal(&kdc.principal("zkother")))
        .connect()
        .await
        .map_err(|e| format!("connect as zkother: {e}"))?;
    let denied = other.get_data(&node).await;
    check!(
        matches!(denied, Err(Error::NoAuth { .. })),
        "zkother reading zkclient's node: {denied:?}"
    );
    other.close().await;
    c.close().await;

    // A session moved to another address of the same server logs in again first. The server
    // principal is named outright, since only zookeeper/localhost has a key on the server.
    let cfg = KerberosConfig::new()
        .client_principal(&me)
        .server_principal(&kdc.principal("zookeeper/localhost"));
    let c = builder(ctx, &ctx.connect)
        .sasl_kerberos(cfg)
        .connect()
        .await
        .map_err(|e| format!("connect with a named server principal: {e}"))?;
    let port = c.current_host().ok_or("not connected")?.port;
    let session = c.client_id().ok_or("no session")?.id;
    let mut states = c.state_changes();
    ok!(c.set_hosts(&format!("localhost:{port}")));
    loop {
        let s = ctx.next(&mut states, WAIT).await?;
        if s.is_connected() {
            break;
        }
        check!(
            !matches!(s, SessionState::Lost(_)),
            "lost on reconnect: {s:?}"
        );
    }
    check!(
        c.client_id().map(|s| s.id) == Some(session),
        "same session after the reconnect"
    );
    check!(
        c.current_host().map(|h| h.host) == Some("localhost".into()),
        "moved to localhost"
    );
    let (data, _) = ok!(c.get_data(&node).await);
    check!(
        &data[..] == b"zkclient's",
        "read after the reconnect {data:?}"
    );
    let who = ok!(c.whoami().await);
    check!(
        who.iter().any(|i| i.auth_scheme == "sasl" && i.user == me),
        "whoAmI after the reconnect: {who:?}"
    );
    ok!(c.delete(&node).await);
    c.close().await;

    // No credentials for the principal asked for, then a server principal the KDC does not know.
    let failures = [
        (
            KerberosConfig::new().client_principal(&kdc.principal("nobody")),
            "no Kerberos credentials",
        ),
        (
            KerberosConfig::new().server_principal(&kdc.principal("zookeeper/nowhere")),
            "not found in Kerberos database",
        ),
    ];
    for (cfg, expected) in failures {
        let bad = ok!(builder(ctx, &localhost(&ctx.connect))
            .sasl_kerberos(cfg.clone())
            .build());
        let mut states = bad.state_changes();
        let started = bad.start().await;
        check!(
            matches!(started, Err(Error::AuthFailed)),
            "start with {cfg:?}: {started:?}"
        );
        let mut lost = false;
        while let Ok(s) = ctx.next(&mut states, Duration::from_secs(1)).await {
            lost |= s == SessionState::Lost(LostReason::AuthFailed);
        }
        check!(lost, "the state stream shows Lost(AuthFailed) for {cfg:?}");
        let why = bad.auth_failure().ok_or("no auth_failure reason")?;
        check!(
            why.contains("GSSAPI") && why.contains(expected),
            "the reason names the mechanism and {expected:?}: {why}"
        );
    }
    Ok(())
}

fn on_every_runtime(kind: ServerKind, connect: &str) {
    let mut failures = Vec::new();
    let make = |rt: Arc<dyn Runtime>, name: &'static str| Ctx {
        rt,
        runtime_name: name,
        connect: connect.to_owned(),
        kind,
        wide: None,
    };
    let mut record = |c: &Ctx, r: Result<Outcome, String>| {
        if let Err(e) = r.and_then(|r| r) {
            failures.push(format!("[{kind:?} {}] {e}", c.runtime_name));
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let c = make(zk_tokio::TokioRuntime::default().shared(), "tokio");
    let r = rt.block_on(c.within(Duration::from_secs(180), kerberos_scenario(&c)));
    record(&c, r);
    drop(rt);
    let c = make(
        zk_async_std::AsyncStdRuntime::default().shared(),
        "async-std",
    );
    let r = async_std::task::block_on(c.within(Duration::from_secs(180), kerberos_scenario(&c)));
    record(&c, r);
    let c = make(zk_async_std::SmolRuntime::default().shared(), "smol");
    let r = smol::block_on(c.within(Duration::from_secs(180), kerberos_scenario(&c)));
    record(&c, r);
    if let Err(e) = blocking_scenario(connect) {
        failures.push(format!("[{kind:?} zk-blocking] {e}"));
    }
    assert!(
        failures.is_empty(),
        "{} runs failed:\n{}\nKDC log:\n{}",
        failures.len(),
        failures.join("\n"),
        realm().kdc.log_tail(20)
    );
}

/// zk-blocking: the login and the ACL, and a refused login's reason.
fn blocking_scenario(connect: &str) -> Result<(), String> {
    let kdc = &realm().kdc;
    let me = kdc.principal("zkclient");
    let c = zk_blocking::Client::builder(&localhost(connect))
        .connect_timeout(WAIT)
        .sasl_kerberos(zk_blocking::KerberosConfig::new().client_principal(&me))
        .connect()
        .map_err(|e| format!("connect with Kerberos: {e}"))?;
    let who = c.whoami().map_err(|e| format!("whoAmI: {e}"))?;
    if !who.iter().any(|i| i.auth_scheme == "sasl" && i.user == me) {
        return Err(format!("whoAmI after the Kerberos login: {who:?}"));
    }
    let node = "/krb-blocking";
    let _ = c.delete(node).run();
    c.create(node, "v")
        .acl(vec![zk_blocking::make_sasl_acl(&me, Perms::ALL)])
        .run()
        .map_err(|e| format!("create: {e}"))?;
    let (data, _) = c.get_data(node).run().map_err(|e| format!("read: {e}"))?;
    if &data[..] != b"v" {
        return Err(format!("read back {data:?}"));
    }
    c.delete(node).run().map_err(|e| format!("delete: {e}"))?;
    c.close();

    let bad = zk_blocking::Client::builder(&localhost(connect))
        .connect_timeout(WAIT)
        .sasl_kerberos(zk_blocking::KerberosConfig::new().client_principal("nobody@ZK-RS.TEST"))
        .connect();
    match bad {
        Err(Error::AuthFailed) => Ok(()),
        other => Err(format!("connect without credentials: {other:?}")),
    }
}

fn temp_dir(tag: &str) -> PathBuf {
    std::env::temp_dir().join(format!("zk-rs-krb-{}-{tag}", std::process::id()))
}

#[test]
fn kerberos_on_zookeeper_3_8() {
    let dir = temp_dir("38");
    let ens = kerberos_server(ZkVersion::V3_8, &dir);
    on_every_runtime(ServerKind::Real38, &ens.connect_string());
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn kerberos_on_zookeeper_3_9() {
    let dir = temp_dir("39");
    let ens = kerberos_server(ZkVersion::V3_9, &dir);
    on_every_runtime(ServerKind::Real39, &ens.connect_string());
    let _ = std::fs::remove_dir_all(dir);
}
