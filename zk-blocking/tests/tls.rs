//! zk-blocking over TLS, against real ZooKeeper 3.8 and 3.9 with a secure client port only that
//! requires client certificates (certificates made at test time by zk_testkit::real::TestPki):
//! the builder's `.tls(..)` passthrough gives the blocking client the same TLS as the async
//! runtimes.
//!
//! - `mtls_on_zookeeper_3_8` / `_3_9`: connect with a client certificate; reads and writes; the
//!   connection's identity is `x509:<subject>`; an `x509` ACL admits it; a four-letter word goes
//!   over TLS; without a client certificate the connection fails with a cause that says so.
//! - `sasl_digest_on_zookeeper_3_9`: `.sasl_digest(..)` on a SASL-enforcing server logs in as
//!   `sasl:bob`; a wrong password fails with AuthFailed and `auth_failure()` names the mechanism.

use std::time::Duration;

use zk_blocking::{make_x509_acl, Client, Error, Perms, TlsConfig};
use zk_testkit::real::{
    ClientAuth, Ensemble, EnsembleOptions, ServerCert, TestPki, ZkVersion, CLIENT_SUBJECT,
};

fn mtls(version: ZkVersion) {
    let pki = TestPki::temp().unwrap_or_else(|e| panic!("making the test PKI: {e}"));
    let mut o = EnsembleOptions::standalone(version);
    o.tls = Some(pki.server_tls(ServerCert::Good, ClientAuth::Need));
    let ens = Ensemble::start(o).unwrap_or_else(|e| panic!("starting ZooKeeper {version:?}: {e}"));
    let connect = ens.connect_string();

    let tls = TlsConfig::new()
        .ca_file(pki.ca())
        .client_cert(pki.client_cert(), pki.client_key());
    let c = Client::builder(&connect)
        .connect_timeout(Duration::from_secs(30))
        .tls(tls)
        .connect()
        .unwrap_or_else(|e| panic!("connect over TLS: {e}"));
    let who = c.whoami().expect("whoAmI");
    assert!(
        who.iter()
            .any(|i| i.auth_scheme == "x509" && i.user == CLIENT_SUBJECT),
        "x509 identity: {who:?}"
    );
    c.create("/blocking-tls", "v")
        .acl(vec![make_x509_acl(CLIENT_SUBJECT, Perms::ALL)])
        .run()
        .expect("create with an x509 ACL");
    let (data, _) = c.get_data("/blocking-tls").run().expect("read it back");
    assert_eq!(&data[..], b"v");
    c.set_data("/blocking-tls", "w").run().expect("write");
    assert_eq!(c.command("ruok").expect("ruok over TLS"), "imok");
    c.delete("/blocking-tls").run().expect("delete");
    c.close();

    let no_cert = Client::builder(&connect)
        .connect_timeout(Duration::from_secs(3))
        .tls(TlsConfig::new().ca_file(pki.ca()))
        .connect();
    match no_cert {
        Err(Error::ConnectFailed { causes }) => assert!(
            causes
                .iter()
                .any(|c| c.cause.contains("requires a client certificate")),
            "causes: {causes:?}"
        ),
        other => panic!("expected ConnectFailed without a client certificate: {other:?}"),
    }
}

#[test]
fn mtls_on_zookeeper_3_8() {
    mtls(ZkVersion::V3_8);
}

#[test]
fn mtls_on_zookeeper_3_9() {
    mtls(ZkVersion::V3_9);
}

/// SASL DIGEST-MD5 from the blocking client on a server that enforces SASL: the login gives
/// `sasl:bob`; a wrong password fails with AuthFailed and a reason.
#[test]
fn sasl_digest_on_zookeeper_3_9() {
    let dir = std::env::temp_dir().join(format!("zk-rs-blocking-sasl-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a directory");
    let jaas = dir.join("jaas.conf");
    std::fs::write(
        &jaas,
        "Server {\n org.apache.zookeeper.server.auth.DigestLoginModule required\n \
         user_bob=\"bobsecret\";\n};\n",
    )
    .expect("write the JAAS file");
    let mut o = EnsembleOptions::standalone(ZkVersion::V3_9);
    o.system_properties.push((
        "java.security.auth.login.config".into(),
        jaas.display().to_string(),
    ));
    o.extra_config.extend([
        "authProvider.1=org.apache.zookeeper.server.auth.SASLAuthenticationProvider".into(),
        "enforce.auth.enabled=true".into(),
        "enforce.auth.schemes=sasl".into(),
    ]);
    let ens = Ensemble::start(o).unwrap_or_else(|e| panic!("starting ZooKeeper: {e}"));
    let c = Client::builder(&ens.connect_string())
        .sasl_digest("bob", "bobsecret")
        .connect()
        .unwrap_or_else(|e| panic!("connect with SASL: {e}"));
    let who = c.whoami().expect("whoAmI");
    assert!(
        who.iter()
            .any(|i| i.auth_scheme == "sasl" && i.user == "bob"),
        "{who:?}"
    );
    c.create("/blocking-sasl", "x").run().expect("create");
    c.close();

    let bad = Client::builder(&ens.connect_string())
        .sasl_digest("bob", "wrong")
        .build()
        .expect("build");
    assert!(matches!(bad.start(), Err(Error::AuthFailed)));
    let why = bad.auth_failure().expect("a reason");
    assert!(why.contains("DIGEST-MD5"), "{why}");
    let _ = std::fs::remove_dir_all(dir);
}
