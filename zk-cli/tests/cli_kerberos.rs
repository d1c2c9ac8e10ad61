//! The `zk` binary logging in with Kerberos against a real ZooKeeper 3.9 that requires SASL,
//! with a local MIT KDC (zk_testkit::real::TestKdc): configured as zkCli.sh users do, by a JAAS
//! `Client` section with `Krb5LoginModule` (keyTab, principal), and the realm's krb5.conf in
//! `KRB5_CONFIG`. The identity is the principal; a principal without a key in the keytab exits
//! with the auth code and says why. Needs the `gssapi` feature (scripts/test turns it on).

use std::path::Path;
use std::process::{Command, Stdio};

use zk_testkit::real::{Ensemble, EnsembleOptions, TestKdc, ZkVersion};

const ZK: &str = env!("CARGO_BIN_EXE_zk");

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn zk(kdc: &TestKdc, server: &str, jaas: &Path, args: &[&str]) -> Run {
    let out = Command::new(ZK)
        .arg("-server")
        .arg(server)
        .arg("--connect-timeout")
        .arg("10")
        .arg(format!(
            "-Djava.security.auth.login.config={}",
            jaas.display()
        ))
        .args(args)
        .env_remove("ZK_SERVER")
        .env_remove("ZK_LOG")
        .env_remove("KRB5_CLIENT_KTNAME")
        .env_remove("KRB5CCNAME")
        .env("KRB5_CONFIG", kdc.krb5_conf())
        .env("ZK_PROGRESS", "never")
        .stdin(Stdio::null())
        .output()
        .expect("zk runs");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn client_jaas(path: &Path, keytab: &Path, principal: &str) {
    let text = format!(
        "Client {{\n  com.sun.security.auth.module.Krb5LoginModule required\n  useKeyTab=true\n  \
         keyTab=\"{}\"\n  storeKey=true\n  useTicketCache=false\n  principal=\"{principal}\";\n}};\n",
        keytab.display()
    );
    std::fs::write(path, text).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
}

#[test]
fn kerberos_from_a_jaas_client_section() {
    let kdc = TestKdc::start().unwrap_or_else(|e| panic!("starting the test KDC: {e}"));
    let server_keytab = kdc
        .add_principal("zookeeper/localhost", "zookeeper.keytab")
        .unwrap_or_else(|e| panic!("the server's principal: {e}"));
    let client_keytab = kdc
        .add_principal("zkcli", "client.keytab")
        .unwrap_or_else(|e| panic!("the client's principal: {e}"));
    let props = kdc
        .write_server_jaas(
            &kdc.dir().join("server-jaas.conf"),
            &kdc.principal("zookeeper/localhost"),
            &server_keytab,
        )
        .unwrap_or_else(|e| panic!("the server's JAAS file: {e}"));
    let mut o = EnsembleOptions::standalone(ZkVersion::V3_9);
    o.system_properties.extend(props);
    o.system_properties.push((
        "zookeeper.sessionRequireClientSASLAuth".into(),
        "true".into(),
    ));
    o.extra_config
        .push("authProvider.1=org.apache.zookeeper.server.auth.SASLAuthenticationProvider".into());
    let ens = Ensemble::start(o).unwrap_or_else(|e| panic!("starting ZooKeeper 3.9: {e}"));
    // The service principal is zookeeper/<host>, so the server is named as localhost.
    let server = ens.connect_string().replace("127.0.0.1", "localhost");

    let jaas = kdc.dir().join("client-jaas.conf");
    client_jaas(&jaas, &client_keytab, &kdc.principal("zkcli"));
    let r = zk(&kdc, &server, &jaas, &["whoami"]);
    assert_eq!(r.code, 0, "whoami with Kerberos: {}{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("zkcli@ZK-RS.TEST"),
        "the Kerberos identity in {:?}",
        r.stdout
    );
    let r = zk(&kdc, &server, &jaas, &["create", "/krb-cli", "hello"]);
    assert_eq!(r.code, 0, "create: {}{}", r.stdout, r.stderr);
    let r = zk(&kdc, &server, &jaas, &["get", "/krb-cli"]);
    assert!(r.stdout.contains("hello"), "get: {}{}", r.stdout, r.stderr);

    // A principal the keytab has no key for: the auth exit code, and the reason.
    let bad = kdc.dir().join("bad-jaas.conf");
    client_jaas(&bad, &client_keytab, &kdc.principal("nobody"));
    let r = zk(&kdc, &server, &bad, &["ls", "/"]);
    assert_eq!(
        r.code, 3,
        "no key for the principal: {}{}",
        r.stdout, r.stderr
    );
    assert!(
        r.stderr.contains("GSSAPI") && r.stderr.contains("no Kerberos credentials"),
        "the reason in {:?}",
        r.stderr
    );
}
