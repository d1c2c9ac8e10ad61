//! SASL DIGEST-MD5 against real ZooKeeper 3.8 and 3.9 configured as production ensembles are:
//! a JAAS `Server` section with `DigestLoginModule` users, the SASL auth provider, and
//! authentication enforced (`enforce.auth.enabled=true`, `enforce.auth.schemes=sasl`: a
//! connection that has not logged in gets nothing done), on tokio, async-std and smol; the last
//! test runs it over a TLS-only port too.
//!
//! - `sasl_*`: the right password gives the connection the identity `sasl:<user>`; a node under a
//!   `sasl` ACL is readable by that user and not by another; a reconnect (the session moved to
//!   another address of the same server) logs in again before anything else, or the enforcing
//!   server would refuse the next request; a wrong password ends the session with
//!   `Lost(AuthFailed)` and `auth_failure()` says why.

#[macro_use]
mod suite;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use suite::{Ctx, Outcome, ServerKind};
use zk_client::{
    make_sasl_acl, ClientBuilder, Error, LostReason, Perms, Runtime, SessionState, TlsConfig,
};
use zk_testkit::real::{ClientAuth, Ensemble, EnsembleOptions, ServerCert, TestPki, ZkVersion};

const WAIT: Duration = Duration::from_secs(30);

/// The server's JAAS file: two DigestLoginModule users.
const SERVER_JAAS: &str = "Server {\n\
    org.apache.zookeeper.server.auth.DigestLoginModule required\n\
    user_bob=\"bobsecret\"\n\
    user_alice=\"alicesecret\";\n\
};\n";

/// A SASL-enforcing server of `version`, over TLS when `pki` is given.
fn sasl_server(version: ZkVersion, dir: &std::path::Path, pki: Option<&TestPki>) -> Ensemble {
    std::fs::create_dir_all(dir).expect("a directory for the JAAS file");
    let jaas: PathBuf = dir.join("server-jaas.conf");
    std::fs::write(&jaas, SERVER_JAAS).expect("write the JAAS file");
    let mut o = EnsembleOptions::standalone(version);
    o.system_properties.push((
        "java.security.auth.login.config".into(),
        jaas.display().to_string(),
    ));
    o.extra_config.extend([
        "authProvider.1=org.apache.zookeeper.server.auth.SASLAuthenticationProvider".into(),
        "enforce.auth.enabled=true".into(),
        "enforce.auth.schemes=sasl".into(),
    ]);
    o.tls = pki.map(|p| p.server_tls(ServerCert::Good, ClientAuth::None));
    Ensemble::start(o).unwrap_or_else(|e| panic!("starting ZooKeeper {version:?} with SASL: {e}"))
}

fn builder(ctx: &Ctx, connect: &str, tls: &Option<TlsConfig>) -> ClientBuilder {
    let b = ClientBuilder::new(ctx.rt.clone(), connect)
        .session_timeout(Duration::from_secs(6))
        .connect_timeout(WAIT);
    match tls {
        Some(t) => b.tls(t.clone()),
        None => b,
    }
}

async fn sasl_scenario(ctx: &Ctx, tls: &Option<TlsConfig>) -> Outcome {
    let c = builder(ctx, &ctx.connect, tls)
        .sasl_digest("bob", "bobsecret")
        .connect()
        .await
        .map_err(|e| format!("connect with SASL: {e}"))?;
    let who = ok!(c.whoami().await);
    check!(
        who.iter()
            .any(|i| i.auth_scheme == "sasl" && i.user == "bob"),
        "whoAmI after the SASL login: {who:?}"
    );
    let node = format!("/sasl-{}", ctx.runtime_name);
    match c.delete(&node).await {
        Ok(()) | Err(Error::NoNode { .. }) => {}
        Err(e) => return Err(format!("cleaning {node}: {e}")),
    }
    ok!(c
        .create(&node, "bob's")
        .acl(vec![make_sasl_acl("bob", Perms::ALL)])
        .await);

    // Another SASL user is kept out by the ACL.
    let alice = builder(ctx, &ctx.connect, tls)
        .sasl_digest("alice", "alicesecret")
        .connect()
        .await
        .map_err(|e| format!("connect as alice: {e}"))?;
    let denied = alice.get_data(&node).await;
    check!(
        matches!(denied, Err(Error::NoAuth { .. })),
        "alice reading bob's node: {denied:?}"
    );
    alice.close().await;

    // A new connection logs in again before anything else: move the session to another
    // address of the same server, then read (the enforcing server would refuse it otherwise).
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
    let (data, _) = ok!(c.get_data(&node).await);
    check!(&data[..] == b"bob's", "read after the reconnect {data:?}");
    let who = ok!(c.whoami().await);
    check!(
        who.iter()
            .any(|i| i.auth_scheme == "sasl" && i.user == "bob"),
        "whoAmI after the reconnect: {who:?}"
    );
    ok!(c.delete(&node).await);
    c.close().await;

    // A wrong password: Lost(AuthFailed), with the reason.
    let bad = ok!(builder(ctx, &ctx.connect, tls)
        .sasl_digest("bob", "wrong")
        .build());
    let mut states = bad.state_changes();
    let started = bad.start().await;
    check!(
        matches!(started, Err(Error::AuthFailed)),
        "start with a wrong password: {started:?}"
    );
    let mut lost = false;
    while let Ok(s) = ctx.next(&mut states, Duration::from_secs(1)).await {
        lost |= s == SessionState::Lost(LostReason::AuthFailed);
    }
    check!(lost, "the state stream shows Lost(AuthFailed)");
    let why = bad.auth_failure().ok_or("no auth_failure reason")?;
    check!(
        why.contains("DIGEST-MD5") && why.contains("password"),
        "the reason names the mechanism and the likely cause: {why}"
    );
    Ok(())
}

fn on_every_runtime(kind: ServerKind, connect: &str, tls: Option<TlsConfig>) {
    let tls = Arc::new(tls);
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
    let r = rt.block_on(c.within(Duration::from_secs(180), sasl_scenario(&c, &tls)));
    record(&c, r);
    drop(rt);
    let c = make(
        zk_async_std::AsyncStdRuntime::default().shared(),
        "async-std",
    );
    let r = async_std::task::block_on(c.within(Duration::from_secs(180), sasl_scenario(&c, &tls)));
    record(&c, r);
    let c = make(zk_async_std::SmolRuntime::default().shared(), "smol");
    let r = smol::block_on(c.within(Duration::from_secs(180), sasl_scenario(&c, &tls)));
    record(&c, r);
    assert!(
        failures.is_empty(),
        "{} runs failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn temp_dir(tag: &str) -> PathBuf {
    std::env::temp_dir().join(format!("zk-rs-sasl-{}-{tag}", std::process::id()))
}

#[test]
fn sasl_digest_on_zookeeper_3_8() {
    let dir = temp_dir("38");
    let ens = sasl_server(ZkVersion::V3_8, &dir, None);
    on_every_runtime(ServerKind::Real38, &ens.connect_string(), None);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn sasl_digest_on_zookeeper_3_9() {
    let dir = temp_dir("39");
    let ens = sasl_server(ZkVersion::V3_9, &dir, None);
    on_every_runtime(ServerKind::Real39, &ens.connect_string(), None);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn sasl_digest_over_tls_on_zookeeper_3_9() {
    let pki = TestPki::temp().unwrap_or_else(|e| panic!("making the test PKI: {e}"));
    let ens = sasl_server(ZkVersion::V3_9, pki.dir(), Some(&pki));
    let tls = TlsConfig::new().ca_file(pki.ca());
    on_every_runtime(ServerKind::Real39, &ens.connect_string(), Some(tls));
}
