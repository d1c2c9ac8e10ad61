//! zk-blocking over TLS, against real ZooKeeper 3.8 and 3.9 with a secure client port only that
//! requires client certificates (certificates made at test time by zk_testkit::real::TestPki):
//! the builder's `.tls(..)` passthrough gives the blocking client the same TLS as the async
//! runtimes.
//!
//! - `mtls_on_zookeeper_3_8` / `_3_9`: connect with a client certificate; reads and writes; the
//!   connection's identity is `x509:<subject>`; an `x509` ACL admits it; a four-letter word goes
//!   over TLS; without a client certificate the connection fails with a cause that says so.

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
