//! TLS against real ZooKeeper 3.8 and 3.9 serving a secure client port only (Netty,
//! `secureClientPort`, no plain `clientPort`), with certificates made at test time
//! (zk_testkit::real::TestPki), on tokio, async-std and smol. zk-blocking has its own file.
//!
//! - `server_auth_*`: a client trusting the test CA connects by IP (verified against the IP SAN),
//!   runs reads, writes, watches and a multi, reads the server version and sends four-letter
//!   words over TLS (`command`, and the session's own `srvr` probe); a client without TLS cannot
//!   get a session from that port.
//! - `failures_name_their_cause`: an untrusted CA, an expired server certificate, a name
//!   mismatch, a missing client certificate where one is required, a client certificate from
//!   another CA and a Java keystore each end in `ConnectFailed` whose cause for the host says
//!   which.
//! - `mtls_*`: a server that requires client certificates; the connection gets the identity
//!   `x509:<subject>`, an `x509` ACL admits that certificate and refuses another; the key and
//!   chain in one PEM file (ZooKeeper's PEM keystore) works the same; certificate files rotated
//!   on disk are used on the next connection without a restart; an encrypted PKCS#8 key works
//!   with its password and names the key file without it or with a wrong one.
//! - `failover_over_tls`: a 3-node TLS ensemble; killing the session's server moves the session
//!   to another node over TLS with its watches re-armed, and a second client resumes the session
//!   by id and password on another node.
//!
//! Nothing asserts timing: waits are for states, events and replies, bounded generously. A
//! missing server is a failure, never a skip.

#[macro_use]
mod suite;

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use suite::{Ctx, Outcome, ServerKind};
use zk_client::{
    make_x509_acl, AddWatchMode, Client, ClientBuilder, Error, EventType, Perms, PersistentItem,
    Runtime, SessionState, TlsConfig,
};
use zk_testkit::real::{
    ClientAuth, Ensemble, EnsembleOptions, ServerCert, TestPki, ZkVersion, CLIENT_SUBJECT,
    OTHER_CLIENT_SUBJECT,
};

/// Upper bound for one state change, event or reply.
const WAIT: Duration = Duration::from_secs(30);

/// How long a connection that must fail is given: enough for several attempts on each host.
const FAIL_WAIT: Duration = Duration::from_secs(3);

type BoxFut<'a> = Pin<Box<dyn Future<Output = Outcome> + 'a>>;

fn pki() -> TestPki {
    TestPki::temp().unwrap_or_else(|e| panic!("making the test PKI: {e}"))
}

fn start(opts: EnsembleOptions) -> Ensemble {
    let v = opts.version;
    Ensemble::start(opts).unwrap_or_else(|e| panic!("starting ZooKeeper {v:?} with TLS: {e}"))
}

fn tls_standalone(
    version: ZkVersion,
    pki: &TestPki,
    cert: ServerCert,
    auth: ClientAuth,
) -> Ensemble {
    let mut o = EnsembleOptions::standalone(version);
    o.tls = Some(pki.server_tls(cert, auth));
    start(o)
}

fn ctx(rt: Arc<dyn Runtime>, runtime_name: &'static str, connect: &str, kind: ServerKind) -> Ctx {
    Ctx {
        rt,
        runtime_name,
        connect: connect.to_owned(),
        kind,
        wide: None,
    }
}

/// Runs `scenario` on tokio, async-std and smol in turn; panics listing every failed run.
fn on_every_runtime<S>(kind: ServerKind, connect: &str, scenario: S)
where
    S: for<'a> Fn(&'a Ctx) -> BoxFut<'a>,
{
    let mut failures = Vec::new();
    let mut record = |c: &Ctx, r: Outcome| {
        eprintln!(
            "[{kind:?} {}] {}",
            c.runtime_name,
            if r.is_ok() { "ok" } else { "FAILED" }
        );
        if let Err(e) = r {
            failures.push(format!("[{kind:?} {}] {e}", c.runtime_name));
        }
    };
    let tokio_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let c = ctx(
        zk_tokio::TokioRuntime::default().shared(),
        "tokio",
        connect,
        kind,
    );
    let r = tokio_rt.block_on(c.within(Duration::from_secs(240), scenario(&c)));
    record(&c, r.and_then(|r| r));
    drop(tokio_rt);
    let c = ctx(
        zk_async_std::AsyncStdRuntime::default().shared(),
        "async-std",
        connect,
        kind,
    );
    let r = async_std::task::block_on(c.within(Duration::from_secs(240), scenario(&c)));
    record(&c, r.and_then(|r| r));
    let c = ctx(
        zk_async_std::SmolRuntime::default().shared(),
        "smol",
        connect,
        kind,
    );
    let r = smol::block_on(c.within(Duration::from_secs(240), scenario(&c)));
    record(&c, r.and_then(|r| r));
    assert!(
        failures.is_empty(),
        "{} runs failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn builder(ctx: &Ctx, connect: &str, tls: TlsConfig) -> ClientBuilder {
    ClientBuilder::new(ctx.rt.clone(), connect)
        .session_timeout(Duration::from_secs(6))
        .connect_timeout(WAIT)
        .tls(tls)
}

async fn connect(b: ClientBuilder) -> Result<Client, String> {
    b.connect()
        .await
        .map_err(|e| format!("connect over TLS: {e}"))
}

/// Connects with `tls` and expects it to fail; returns the causes' text.
async fn connect_fails(ctx: &Ctx, connect: &str, tls: TlsConfig) -> Result<String, String> {
    let b = builder(ctx, connect, tls).connect_timeout(FAIL_WAIT);
    match b.connect().await {
        Ok(c) => {
            c.close().await;
            Err("connected, but the connection should have failed".into())
        }
        Err(Error::ConnectFailed { causes }) => {
            if causes.is_empty() {
                return Err("ConnectFailed without causes".into());
            }
            Ok(causes
                .iter()
                .map(|c| format!("{}: {}", c.host, c.cause))
                .collect::<Vec<_>>()
                .join("; "))
        }
        Err(e) => Err(format!("expected ConnectFailed, got {e:?}")),
    }
}

fn ca_only(pki: &TestPki) -> TlsConfig {
    TlsConfig::new().ca_file(pki.ca())
}

fn with_cert(pki: &TestPki) -> TlsConfig {
    ca_only(pki).client_cert(pki.client_cert(), pki.client_key())
}

// ---- server authentication ----------------------------------------------------------------

async fn server_auth_scenario(ctx: &Ctx, ca: &Path) -> Outcome {
    let tls = TlsConfig::new().ca_file(ca);
    let c = connect(builder(ctx, &ctx.connect, tls.clone())).await?;
    let base = format!("/tls-{}", ctx.runtime_name);
    match c.delete(&base).recursive().await {
        Ok(()) | Err(Error::NoNode { .. }) => {}
        Err(e) => return Err(format!("cleaning {base}: {e}")),
    }
    ok!(c.create(&base, "root").await);
    let node = format!("{base}/n");
    ok!(c.create(&node, "v1").await);
    let (data, stat) = ok!(c.get_data(&node).await);
    check!(
        &data[..] == b"v1" && stat.version == 0,
        "read back {data:?} {stat:?}"
    );

    // A one-shot watch and a persistent watch fire over TLS for another TLS client's writes.
    let other = connect(builder(ctx, &ctx.connect, tls)).await?;
    let (_, _, once) = ok!(c.get_data(&node).watch().await);
    let mut persistent = ok!(c.add_watch(&base, AddWatchMode::PersistentRecursive).await);
    ok!(other.set_data(&node, "v2").await);
    let ev = ok!(ctx.within(WAIT, once).await?);
    check!(
        ev.event_type == EventType::NodeDataChanged,
        "one-shot watch {ev:?}"
    );
    match ctx.next(&mut persistent, WAIT).await? {
        PersistentItem::Event(ev) => {
            check!(
                ev.event_type == EventType::NodeDataChanged && ev.path == node,
                "{ev:?}"
            )
        }
        other => return Err(format!("persistent watch: {other:?}")),
    }
    let children = ok!(c.get_children(&base).await);
    check!(children.len() == 1, "children {children:?}");

    // Four-letter words over TLS: `command`, and the version (the session's `srvr` probe or a
    // `command("srvr")`, both through the TLS connector).
    let ruok = ok!(c.command("ruok").await);
    check!(ruok == "imok", "ruok over TLS answered {ruok:?}");
    let version = ok!(c.server_version().await);
    check!(
        version.major == 3 && version.minor == ctx.kind.version().minor,
        "server version over TLS {version:?}"
    );
    // whoAmI: no client certificate was asked for, so the identity is the address only.
    let who = ok!(c.whoami().await);
    check!(
        who.iter().all(|i| i.auth_scheme != "x509"),
        "no x509 identity without a client certificate: {who:?}"
    );
    ok!(c.delete(&base).recursive().await);
    other.close().await;
    c.close().await;

    // The port is TLS only: a client speaking plain TCP gets no session there.
    let plain = ClientBuilder::new(ctx.rt.clone(), &ctx.connect)
        .connect_timeout(FAIL_WAIT)
        .connect()
        .await;
    check!(
        matches!(plain, Err(Error::ConnectFailed { .. })),
        "a plain client on the TLS-only port: {plain:?}"
    );
    Ok(())
}

fn server_auth(version: ZkVersion, kind: ServerKind) {
    let pki = pki();
    let ens = tls_standalone(version, &pki, ServerCert::Good, ClientAuth::None);
    let ca = pki.ca();
    on_every_runtime(kind, &ens.connect_string(), |c| {
        let ca = ca.clone();
        Box::pin(async move { server_auth_scenario(c, &ca).await })
    });
}

#[test]
fn server_auth_on_zookeeper_3_8() {
    server_auth(ZkVersion::V3_8, ServerKind::Real38);
}

#[test]
fn server_auth_on_zookeeper_3_9() {
    server_auth(ZkVersion::V3_9, ServerKind::Real39);
}

// ---- failures ------------------------------------------------------------------------------

struct Failing {
    need_cert: String,
    expired: String,
    wrong_name: String,
}

async fn failures_scenario(ctx: &Ctx, pki: &TestPki, s: &Failing) -> Outcome {
    let expect = |what: &str, causes: &str, needle: &str| -> Outcome {
        check!(
            causes.contains(needle),
            "{what}: the cause should say {needle:?}: {causes}"
        );
        Ok(())
    };
    let causes = connect_fails(ctx, &s.need_cert, TlsConfig::new().ca_file(pki.other_ca())).await?;
    expect(
        "a CA that did not sign the server's certificate",
        &causes,
        "unknown CA",
    )?;

    let causes = connect_fails(ctx, &s.expired, ca_only(pki)).await?;
    expect("an expired server certificate", &causes, "expired")?;

    let causes = connect_fails(ctx, &s.wrong_name, ca_only(pki)).await?;
    expect("a certificate for another name", &causes, "name mismatch")?;
    expect("a certificate for another name", &causes, "127.0.0.1")?;

    let causes = connect_fails(ctx, &s.need_cert, ca_only(pki)).await?;
    expect(
        "no client certificate where one is required",
        &causes,
        "requires a client certificate",
    )?;

    let rogue = ca_only(pki).client_cert(pki.rogue_client_cert(), pki.rogue_client_key());
    let causes = connect_fails(ctx, &s.need_cert, rogue).await?;
    expect(
        "a client certificate from another CA",
        &causes,
        "refused our client certificate",
    )?;

    // A Java keystore is refused with a way out, before anything is sent.
    let jks = pki.dir().join("client.jks");
    std::fs::write(&jks, [0xFE, 0xED, 0xFE, 0xED, 0, 0, 0, 2]).map_err(|e| e.to_string())?;
    let causes = connect_fails(ctx, &s.need_cert, ca_only(pki).client_keystore_pem(&jks)).await?;
    expect(
        "a JKS keystore",
        &causes,
        "(JKS or JCEKS), which is not supported",
    )?;

    // A missing CA file names the file.
    let missing = pki.dir().join("no-such-ca.pem");
    let causes = connect_fails(ctx, &s.need_cert, TlsConfig::new().ca_file(&missing)).await?;
    expect("a missing CA file", &causes, "no-such-ca.pem")?;
    Ok(())
}

#[test]
fn failures_name_their_cause() {
    let pki = pki();
    let need = tls_standalone(ZkVersion::V3_9, &pki, ServerCert::Good, ClientAuth::Need);
    let expired = tls_standalone(ZkVersion::V3_9, &pki, ServerCert::Expired, ClientAuth::None);
    let wrong = tls_standalone(
        ZkVersion::V3_9,
        &pki,
        ServerCert::WrongName,
        ClientAuth::None,
    );
    let pki = Arc::new(pki);
    let s = Arc::new(Failing {
        need_cert: need.connect_string(),
        expired: expired.connect_string(),
        wrong_name: wrong.connect_string(),
    });
    on_every_runtime(ServerKind::Real39, &s.need_cert.clone(), |c| {
        let (pki, s) = (pki.clone(), s.clone());
        Box::pin(async move { failures_scenario(c, &pki, &s).await })
    });
}

// ---- mutual TLS and the x509 scheme ----------------------------------------------------------

async fn mtls_scenario(ctx: &Ctx, pki: &TestPki) -> Outcome {
    let c = connect(builder(ctx, &ctx.connect, with_cert(pki))).await?;
    let who = ok!(c.whoami().await);
    check!(
        who.iter()
            .any(|i| i.auth_scheme == "x509" && i.user == CLIENT_SUBJECT),
        "whoAmI with a client certificate: {who:?}"
    );
    let node = format!("/mtls-{}", ctx.runtime_name);
    match c.delete(&node).await {
        Ok(()) | Err(Error::NoNode { .. }) => {}
        Err(e) => return Err(format!("cleaning {node}: {e}")),
    }
    ok!(c
        .create(&node, "secret")
        .acl(vec![make_x509_acl(CLIENT_SUBJECT, Perms::ALL)])
        .await);
    let (data, _) = ok!(c.get_data(&node).await);
    check!(&data[..] == b"secret", "owner reads {data:?}");

    // The same certificate from ZooKeeper's PEM keystore form (key and chain in one file).
    let ks = connect(builder(
        ctx,
        &ctx.connect,
        ca_only(pki).client_keystore_pem(pki.client_keystore()),
    ))
    .await?;
    let (data, _) = ok!(ks.get_data(&node).await);
    check!(&data[..] == b"secret", "keystore client reads {data:?}");
    ks.close().await;

    // Another certificate of the same CA connects, but the ACL keeps it out.
    let other_tls = ca_only(pki).client_cert(pki.other_client_cert(), pki.other_client_key());
    let other = connect(builder(ctx, &ctx.connect, other_tls)).await?;
    let who = ok!(other.whoami().await);
    check!(
        who.iter().any(|i| i.user == OTHER_CLIENT_SUBJECT),
        "second certificate's identity: {who:?}"
    );
    let denied = other.get_data(&node).await;
    check!(
        matches!(denied, Err(Error::NoAuth { .. })),
        "another certificate reading an x509-locked node: {denied:?}"
    );
    other.close().await;
    ok!(c.delete(&node).await);
    c.close().await;
    Ok(())
}

fn mtls(version: ZkVersion, kind: ServerKind) {
    let pki = pki();
    let ens = tls_standalone(version, &pki, ServerCert::Good, ClientAuth::Need);
    let pki = Arc::new(pki);
    on_every_runtime(kind, &ens.connect_string(), |c| {
        let pki = pki.clone();
        Box::pin(async move { mtls_scenario(c, &pki).await })
    });
}

#[test]
fn mtls_and_x509_acl_on_zookeeper_3_8() {
    mtls(ZkVersion::V3_8, ServerKind::Real38);
}

#[test]
fn mtls_and_x509_acl_on_zookeeper_3_9() {
    mtls(ZkVersion::V3_9, ServerKind::Real39);
}

/// Certificates are read from their files on each new connection: files rotated on disk are
/// shown on the next reconnect, with no restart of the client.
#[test]
fn mtls_rotated_certificate_used_on_reconnect() {
    let pki = pki();
    let mut ens = tls_standalone(ZkVersion::V3_9, &pki, ServerCert::Good, ClientAuth::Need);
    let cert = pki.dir().join("rotating.crt");
    let key = pki.dir().join("rotating.key");
    let copy = |from_cert: &Path, from_key: &Path| {
        std::fs::copy(from_cert, &cert).expect("copy the certificate");
        std::fs::copy(from_key, &key).expect("copy the key");
    };
    copy(&pki.client_cert(), &pki.client_key());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let c = ctx(
        zk_tokio::TokioRuntime::default().shared(),
        "tokio",
        &ens.connect_string(),
        ServerKind::Real39,
    );
    let result: Outcome = rt.block_on(async {
        let tls = ca_only(&pki).client_cert(&cert, &key);
        let client =
            connect(builder(&c, &c.connect, tls).session_timeout(Duration::from_secs(20))).await?;
        let who = ok!(client.whoami().await);
        check!(
            who.iter().any(|i| i.user == CLIENT_SUBJECT),
            "before: {who:?}"
        );
        let session = client.client_id().ok_or("no session")?.id;
        let mut states = client.state_changes();
        copy(&pki.other_client_cert(), &pki.other_client_key());
        // A restart of the standalone server keeps the session (it is in the server's log) and
        // forces a new connection.
        ens.restart(0).map_err(|e| format!("restart: {e}"))?;
        loop {
            let s = c.next(&mut states, WAIT).await?;
            if s == SessionState::Connected {
                break;
            }
            check!(!matches!(s, SessionState::Lost(_)), "session lost: {s:?}");
        }
        check!(
            client.client_id().map(|s| s.id) == Some(session),
            "same session after the reconnect"
        );
        let who = ok!(client.whoami().await);
        check!(
            who.iter().any(|i| i.user == OTHER_CLIENT_SUBJECT),
            "after rotating the files, the new certificate's identity: {who:?}"
        );
        client.close().await;
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}\nserver log:\n{}", ens.log_tail(0, 40));
    }
}

/// An encrypted PKCS#8 client key (as `openssl pkcs8 -topk8 -v2 aes-256-cbc` writes it) works
/// with its password, and without it or with a wrong one the cause names the key file.
#[test]
fn mtls_with_an_encrypted_key() {
    let pki = pki();
    let ens = tls_standalone(ZkVersion::V3_9, &pki, ServerCert::Good, ClientAuth::Need);
    let encrypted = pki.dir().join("client-encrypted.key");
    // openssl (Debian's package, installed by .ci/run) writes the key the way operators do.
    let status = std::process::Command::new("openssl")
        .args([
            "pkcs8",
            "-topk8",
            "-v2",
            "aes-256-cbc",
            "-passout",
            "pass:keypass",
            "-in",
        ])
        .arg(pki.client_key())
        .arg("-out")
        .arg(&encrypted)
        .status()
        .unwrap_or_else(|e| panic!("running openssl (apt-get install openssl): {e}"));
    assert!(status.success(), "openssl pkcs8 failed");
    let pki = Arc::new(pki);
    let encrypted = Arc::new(encrypted);
    on_every_runtime(ServerKind::Real39, &ens.connect_string(), |c| {
        let (pki, encrypted) = (pki.clone(), encrypted.clone());
        Box::pin(async move {
            let tls = ca_only(&pki).client_cert(pki.client_cert(), &*encrypted);
            let client = connect(builder(
                c,
                &c.connect,
                tls.clone().client_key_password("keypass"),
            ))
            .await?;
            let who = ok!(client.whoami().await);
            check!(who.iter().any(|i| i.user == CLIENT_SUBJECT), "{who:?}");
            client.close().await;
            let causes = connect_fails(c, &c.connect, tls.clone()).await?;
            check!(
                causes.contains("no password"),
                "without the password: {causes}"
            );
            let causes = connect_fails(c, &c.connect, tls.client_key_password("nope")).await?;
            check!(
                causes.contains("wrong password") && causes.contains("client-encrypted.key"),
                "with a wrong password: {causes}"
            );
            Ok(())
        })
    });
}

/// PKCS#12 stores as a Java service keeps them (`zookeeper.ssl.keyStore.type=PKCS12`): the client
/// key store re-encrypted by keytool (AES-256, HMAC-SHA-256) and a trust store keytool made from
/// the CA certificate. The client shows its certificate from the store and trusts the server
/// through the trust store; a wrong password names the file and the cause.
#[test]
fn mtls_with_pkcs12_stores_written_by_keytool() {
    let pki = pki();
    let ens = tls_standalone(ZkVersion::V3_9, &pki, ServerCert::Good, ClientAuth::Need);
    let keystore = pki
        .client_keystore_pkcs12("keystorepass")
        .unwrap_or_else(|e| panic!("{e}"));
    let truststore = pki
        .ca_truststore_pkcs12("truststorepass")
        .unwrap_or_else(|e| panic!("{e}"));
    let stores = Arc::new((keystore, truststore));
    on_every_runtime(ServerKind::Real39, &ens.connect_string(), |c| {
        let stores = stores.clone();
        Box::pin(async move {
            let (keystore, truststore) = &*stores;
            let trust = TlsConfig::new().ca_pkcs12(truststore, "truststorepass");
            let tls = trust
                .clone()
                .client_keystore_pkcs12(keystore, "keystorepass");
            let client = connect(builder(c, &c.connect, tls)).await?;
            let who = ok!(client.whoami().await);
            check!(who.iter().any(|i| i.user == CLIENT_SUBJECT), "{who:?}");
            client.close().await;
            let causes = connect_fails(
                c,
                &c.connect,
                trust.clone().client_keystore_pkcs12(keystore, "nope"),
            )
            .await?;
            check!(
                causes.contains("wrong password") && causes.contains("client.p12"),
                "with a wrong key store password: {causes}"
            );
            let causes = connect_fails(
                c,
                &c.connect,
                TlsConfig::new()
                    .ca_pkcs12(truststore, "nope")
                    .client_keystore_pkcs12(keystore, "keystorepass"),
            )
            .await?;
            check!(
                causes.contains("wrong password") && causes.contains("trust.p12"),
                "with a wrong trust store password: {causes}"
            );
            Ok(())
        })
    });
}

// ---- failover in a TLS ensemble --------------------------------------------------------------

fn node_on(ens: &Ensemble, port: u16) -> Result<usize, String> {
    ens.nodes()
        .iter()
        .position(|n| n.port() == port)
        .ok_or_else(|| format!("no node on port {port}"))
}

async fn failover_scenario(ctx: &Ctx, ens: &std::sync::Mutex<Ensemble>, pki: &TestPki) -> Outcome {
    // A run that failed half-way may have left a node down: heal first, so that one failure
    // does not become three.
    {
        let mut ens = ens.lock().unwrap_or_else(|e| e.into_inner());
        for i in 0..ens.size() {
            if ens.pid(i).is_none() {
                ens.restart(i).map_err(|e| format!("restart {i}: {e}"))?;
            }
        }
        ens.wait_all_ready()
            .map_err(|e| format!("ensemble ready: {e}"))?;
    }
    let tls = with_cert(pki);
    let c =
        connect(builder(ctx, &ctx.connect, tls.clone()).session_timeout(Duration::from_secs(4)))
            .await?;
    let other = connect(builder(ctx, &ctx.connect, tls.clone())).await?;
    let base = format!("/failover-{}", ctx.runtime_name);
    match other.delete(&base).recursive().await {
        Ok(()) | Err(Error::NoNode { .. }) => {}
        Err(e) => return Err(format!("cleaning {base}: {e}")),
    }
    ok!(other.create(&base, "0").await);
    // Separate paths: a server keeps one watch mode per path and connection.
    let (data, tree) = (format!("{base}/data"), format!("{base}/tree"));
    ok!(other.create(&data, "0").await);
    ok!(other.create(&tree, "0").await);
    let session = c.client_id().ok_or("no session id")?;
    let (_, _, once) = ok!(c.get_data(&data).watch().await);
    let mut recursive = ok!(c.add_watch(&tree, AddWatchMode::PersistentRecursive).await);
    let mut states = c.state_changes();
    let host = c.current_host().ok_or("not connected")?;
    let victim = {
        let mut ens = ens.lock().unwrap_or_else(|e| e.into_inner());
        let victim = node_on(&ens, host.port)?;
        ens.kill(victim)
            .map_err(|e| format!("kill {victim}: {e}"))?;
        victim
    };
    let mut seen = Vec::new();
    loop {
        let s = ctx.next(&mut states, WAIT).await.map_err(|e| {
            format!(
                "{e} waiting to reconnect; states {seen:?}; now {:?}",
                c.state()
            )
        })?;
        seen.push(s);
        if s.is_connected() {
            break;
        }
        check!(
            !matches!(s, SessionState::Lost(_)),
            "session lost in the failover: {s:?}"
        );
    }
    let now_on = c.current_host().ok_or("not connected after the failover")?;
    check!(now_on.port != host.port, "still on the killed node");
    check!(
        c.client_id().map(|s| s.id) == Some(session.id),
        "same session after the failover"
    );
    // The server re-arms a persistent watch without catch-up events (ZOOKEEPER-4698): the
    // stream says so first; a read on the session after that is answered once the watch is
    // armed again, and every change after that read fires it.
    let item = ctx
        .next(&mut recursive, WAIT)
        .await
        .map_err(|e| format!("{e}: the resync item after the failover"))?;
    check!(
        item == PersistentItem::Resync,
        "a resync item first: {item:?}"
    );
    ok!(c.get_data(&tree).await);
    ok!(other.set_data(&data, "1").await);
    ok!(other.set_data(&tree, "1").await);
    let ev = ok!(ctx
        .within(WAIT, once)
        .await
        .map_err(|e| format!("{e}: the one-shot watch after the failover"))?);
    check!(
        ev.event_type == EventType::NodeDataChanged && ev.path == data,
        "one-shot watch after failover {ev:?}"
    );
    let item = ctx
        .next(&mut recursive, WAIT)
        .await
        .map_err(|e| format!("{e}: the persistent watch after the failover"))?;
    check!(
        item.event()
            .is_some_and(|ev| ev.event_type == EventType::NodeDataChanged && ev.path == tree),
        "persistent watch after failover {item:?}"
    );

    // Another client resumes the session by id and password on the third node, over TLS.
    let third = {
        let ens = ens.lock().unwrap_or_else(|e| e.into_inner());
        let n = (0..ens.size())
            .find(|&i| i != victim && ens.nodes()[i].port() != now_on.port)
            .ok_or("no third node")?;
        format!("127.0.0.1:{}", ens.nodes()[n].port())
    };
    let live = c.client_id().ok_or("no session to resume")?;
    let resumed = connect(builder(ctx, &third, tls).resume(live)).await?;
    check!(
        resumed.client_id().map(|s| s.id) == Some(session.id),
        "the resumed session is the same"
    );
    let (read, _) = ok!(resumed.get_data(&data).await);
    check!(&read[..] == b"1", "read on the resumed session {read:?}");
    resumed.close().await;
    drop(c);
    ok!(other.delete(&base).recursive().await);
    other.close().await;
    // Bring the killed node back for the next runtime.
    let mut ens = ens.lock().unwrap_or_else(|e| e.into_inner());
    ens.restart(victim)
        .map_err(|e| format!("restart {victim}: {e}"))?;
    ens.wait_all_ready()
        .map_err(|e| format!("ensemble ready: {e}"))?;
    Ok(())
}

#[test]
fn failover_over_tls() {
    let pki = pki();
    let mut o = EnsembleOptions::quorum(ZkVersion::V3_9, 3);
    o.tls = Some(pki.server_tls(ServerCert::Good, ClientAuth::Need));
    let ens = start(o);
    let connect = ens.connect_string();
    let ens = Arc::new(std::sync::Mutex::new(ens));
    let pki = Arc::new(pki);
    on_every_runtime(ServerKind::Real39, &connect, |c| {
        let (ens, pki) = (ens.clone(), pki.clone());
        Box::pin(async move { failover_scenario(c, &ens, &pki).await })
    });
}
