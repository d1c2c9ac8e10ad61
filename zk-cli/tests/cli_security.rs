//! The `zk` binary against a real ZooKeeper 3.9 that serves a TLS-only port, requires client
//! certificates and enforces SASL (DigestLoginModule): configured as zkCli.sh is
//! (`-client-configuration FILE` with `zookeeper.client.secure` and `zookeeper.ssl.*` stores,
//! PEM or PKCS#12 as keytool writes them, `-Djava.security.auth.login.config=FILE` with a JAAS
//! `Client` section), and with the short flags (`--tls-ca`, `--tls-cert`, `--tls-key`,
//! `--jaas`). A wrong password exits with the auth code and says why, a wrong store password
//! names the store; a JKS store is refused with the command that converts it.
//!
//! Needs `scripts/setup-zookeeper` (scripts/test runs it).

use std::path::Path;
use std::process::{Command, Stdio};

use zk_testkit::real::{ClientAuth, Ensemble, EnsembleOptions, ServerCert, TestPki, ZkVersion};

const ZK: &str = env!("CARGO_BIN_EXE_zk");

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn zk(server: &str, args: &[&str]) -> Run {
    let out = Command::new(ZK)
        .arg("-server")
        .arg(server)
        .arg("--connect-timeout")
        .arg("10")
        .args(args)
        .env_remove("ZK_SERVER")
        .env_remove("ZK_LOG")
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

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
}

#[test]
fn tls_and_sasl_from_client_configuration_and_flags() {
    let pki = TestPki::temp().unwrap_or_else(|e| panic!("making the test PKI: {e}"));
    let dir = pki.dir();
    let server_jaas = dir.join("server-jaas.conf");
    write(
        &server_jaas,
        "Server {\n org.apache.zookeeper.server.auth.DigestLoginModule required\n \
         user_bob=\"bobsecret\";\n};\n",
    );
    let mut o = EnsembleOptions::standalone(ZkVersion::V3_9);
    o.tls = Some(pki.server_tls(ServerCert::Good, ClientAuth::Need));
    o.system_properties.push((
        "java.security.auth.login.config".into(),
        server_jaas.display().to_string(),
    ));
    o.extra_config.extend([
        "authProvider.1=org.apache.zookeeper.server.auth.SASLAuthenticationProvider".into(),
        "enforce.auth.enabled=true".into(),
        "enforce.auth.schemes=sasl".into(),
    ]);
    let ens = Ensemble::start(o).unwrap_or_else(|e| panic!("starting ZooKeeper 3.9: {e}"));
    let server = ens.connect_string();

    let client_jaas = dir.join("client-jaas.conf");
    write(
        &client_jaas,
        "Client {\n  org.apache.zookeeper.server.auth.DigestLoginModule required\n  \
         username=\"bob\"\n  password=\"bobsecret\";\n};\n",
    );
    let props = dir.join("client.properties");
    write(
        &props,
        &format!(
            "zookeeper.client.secure=true\n\
             zookeeper.clientCnxnSocket=org.apache.zookeeper.ClientCnxnSocketNetty\n\
             zookeeper.ssl.trustStore.location={}\n\
             zookeeper.ssl.trustStore.type=PEM\n\
             zookeeper.ssl.keyStore.location={}\n\
             zookeeper.ssl.keyStore.type=PEM\n",
            pki.ca().display(),
            pki.client_keystore().display()
        ),
    );
    let jaas_flag = format!(
        "-Djava.security.auth.login.config={}",
        client_jaas.display()
    );
    let props_s = props.display().to_string();

    // zkCli's way: a client configuration file and the JAAS file as a -D property.
    let r = zk(
        &server,
        &[
            "-client-configuration",
            &props_s,
            &jaas_flag,
            "create",
            "/cli-sec",
            "hello",
        ],
    );
    assert_eq!(r.code, 0, "create over TLS+SASL: {}{}", r.stdout, r.stderr);
    let r = zk(
        &server,
        &["-client-configuration", &props_s, &jaas_flag, "whoami"],
    );
    assert_eq!(r.code, 0, "whoami: {}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("bob"), "sasl identity in {:?}", r.stdout);
    assert!(
        r.stdout.contains("CN=zk-rs-client"),
        "x509 identity in {:?}",
        r.stdout
    );

    // The same with PKCS#12 stores as a Java service keeps them, written by keytool.
    let keystore = pki
        .client_keystore_pkcs12("keystorepass")
        .unwrap_or_else(|e| panic!("{e}"));
    let truststore = pki
        .ca_truststore_pkcs12("truststorepass")
        .unwrap_or_else(|e| panic!("{e}"));
    let p12_props = |keystore_password: &str| {
        let file = dir.join(format!("client-p12-{keystore_password}.properties"));
        write(
            &file,
            &format!(
                "zookeeper.client.secure=true\n\
                 zookeeper.ssl.trustStore.location={}\n\
                 zookeeper.ssl.trustStore.type=PKCS12\n\
                 zookeeper.ssl.trustStore.password=truststorepass\n\
                 zookeeper.ssl.keyStore.location={}\n\
                 zookeeper.ssl.keyStore.type=PKCS12\n\
                 zookeeper.ssl.keyStore.password={keystore_password}\n",
                truststore.display(),
                keystore.display()
            ),
        );
        file.display().to_string()
    };
    let good = p12_props("keystorepass");
    let r = zk(
        &server,
        &["-client-configuration", &good, &jaas_flag, "whoami"],
    );
    assert_eq!(
        r.code, 0,
        "whoami with PKCS#12 stores: {}{}",
        r.stdout, r.stderr
    );
    assert!(
        r.stdout.contains("CN=zk-rs-client"),
        "x509 identity from the PKCS#12 store in {:?}",
        r.stdout
    );
    let wrong = p12_props("nope");
    let r = zk(
        &server,
        &["-client-configuration", &wrong, &jaas_flag, "ls", "/"],
    );
    assert_ne!(
        r.code, 0,
        "a wrong key store password: {}{}",
        r.stdout, r.stderr
    );
    assert!(
        r.stderr.contains("wrong password") && r.stderr.contains("client.p12"),
        "the cause names the store: {:?}",
        r.stderr
    );
    // The right password in a file (`passwordPath`, as Java services keep it) wins over the
    // wrong one in the configuration.
    let password_file = dir.join("keystore.password");
    write(&password_file, "keystorepass\n");
    let password_path = format!(
        "-Dzookeeper.ssl.keyStore.passwordPath={}",
        password_file.display()
    );
    let r = zk(
        &server,
        &[
            "-client-configuration",
            &wrong,
            &password_path,
            &jaas_flag,
            "whoami",
        ],
    );
    assert_eq!(
        r.code, 0,
        "whoami with the key store's password from passwordPath: {}{}",
        r.stdout, r.stderr
    );
    assert!(
        r.stdout.contains("CN=zk-rs-client"),
        "x509 identity with passwordPath in {:?}",
        r.stdout
    );

    // The short flags.
    let (ca, cert, key, jaas) = (
        pki.ca().display().to_string(),
        pki.client_cert().display().to_string(),
        pki.client_key().display().to_string(),
        client_jaas.display().to_string(),
    );
    let r = zk(
        &server,
        &[
            "--tls-ca",
            &ca,
            "--tls-cert",
            &cert,
            "--tls-key",
            &key,
            "--jaas",
            &jaas,
            "get",
            "/cli-sec",
        ],
    );
    assert_eq!(
        r.code, 0,
        "get with the short flags: {}{}",
        r.stdout, r.stderr
    );
    assert!(r.stdout.contains("hello"), "{:?}", r.stdout);

    // A wrong password: the auth exit code, and the reason.
    let bad_jaas = dir.join("bad-jaas.conf");
    write(
        &bad_jaas,
        "Client {\n org.apache.zookeeper.server.auth.DigestLoginModule required\n \
         username=\"bob\" password=\"wrong\";\n};\n",
    );
    let bad = bad_jaas.display().to_string();
    let r = zk(
        &server,
        &[
            "--tls-ca",
            &ca,
            "--tls-cert",
            &cert,
            "--tls-key",
            &key,
            "--jaas",
            &bad,
            "ls",
            "/",
        ],
    );
    assert_eq!(r.code, 3, "wrong password: {}{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains("DIGEST-MD5"),
        "the reason: {:?}",
        r.stderr
    );

    // No client certificate: the connection fails, naming why.
    let r = zk(&server, &["--tls-ca", &ca, "--jaas", &jaas, "ls", "/"]);
    assert_ne!(r.code, 0);
    assert!(
        r.stderr.contains("requires a client certificate"),
        "the cause: {:?}",
        r.stderr
    );

    // A JKS keystore is refused before connecting, with the way out.
    let r = zk(
        &server,
        &[
            "-Dzookeeper.client.secure=true",
            "-Dzookeeper.ssl.keyStore.location=/nowhere/client.jks",
            "ls",
            "/",
        ],
    );
    assert_eq!(r.code, 1, "a JKS store: {}{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains("keytool -importkeystore"),
        "{:?}",
        r.stderr
    );
}
