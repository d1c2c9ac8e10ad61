//! TLS for test servers: a throw-away PKI made at test time ([`TestPki`]: a CA, server and client
//! certificates, and the bad ones failure tests need), the server side of it ([`ServerTls`], for
//! [`EnsembleOptions::tls`](super::EnsembleOptions::tls)), and four-letter words over TLS for
//! the harness's readiness probes, since a server with a secure client port only answers nothing
//! in plain text.
//!
//! Certificates come from rcgen (no openssl CLI, no keytool): ECDSA P-256 keys, PEM files, which
//! ZooKeeper 3.6+ reads as `ssl.keyStore.type=PEM` / `ssl.trustStore.type=PEM`. Only the PKCS#12
//! copies of the client's key and of the CA ([`TestPki::client_keystore_pkcs12`],
//! [`TestPki::ca_truststore_pkcs12`]) are written by the tools Java services use, openssl and
//! keytool.

use std::fs;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rcgen::{
    date_time_ymd, BasicConstraints, CertificateParams, CertifiedIssuer, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose,
};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, SignatureScheme, StreamOwned};

use super::Error;

/// The subject of [`TestPki`]'s client certificate, as ZooKeeper's x509 provider names it
/// (`X500Principal.getName()`): the id of an `x509` ACL for that client.
pub const CLIENT_SUBJECT: &str = "CN=zk-rs-client";

/// Whether a TLS server asks clients for a certificate (`ssl.clientAuth`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// No client certificate is asked for (`none`).
    None,
    /// A client certificate signed by the trust store's CA is required (`need`); the server's
    /// x509 provider then gives the connection the identity `x509:<subject>`.
    Need,
}

/// The server side of TLS: a secure client port only (`secureClientPort`, Netty), no plain one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerTls {
    /// PEM file with the server's private key and certificate chain (`ssl.keyStore.location`).
    pub keystore: PathBuf,
    /// PEM file with the CA certificates client certificates must chain to
    /// (`ssl.trustStore.location`).
    pub truststore: PathBuf,
    /// `ssl.clientAuth`.
    pub client_auth: ClientAuth,
    /// PEM keystore (key and chain) the harness's own probes show when a client certificate is
    /// required.
    pub probe_identity: Option<PathBuf>,
}

/// Which server certificate a [`ServerTls`] uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerCert {
    /// Valid now, for `127.0.0.1` (IP SAN) and `localhost`, signed by the CA.
    Good,
    /// Signed by the CA, for the right names, but expired in 2020.
    Expired,
    /// Signed by the CA and valid now, but only for `wrong.zk-rs.invalid`.
    WrongName,
}

/// The subject of [`TestPki`]'s second client certificate ([`TestPki::other_client_cert`]).
pub const OTHER_CLIENT_SUBJECT: &str = "CN=zk-rs-other";

/// A CA and certificates made for one test run, written as PEM files in a directory.
#[derive(Debug)]
pub struct TestPki {
    dir: PathBuf,
    /// Whether the directory is ours to remove on drop ([`TestPki::temp`]).
    owned: bool,
}

impl Drop for TestPki {
    fn drop(&mut self) {
        if self.owned && std::env::var_os("ZK_RS_KEEP").is_none_or(|v| v != "1") {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

impl TestPki {
    /// Makes the CA, a second unrelated CA, server certificates ([`ServerCert`]) and a client
    /// certificate ([`CLIENT_SUBJECT`]) and writes them under `dir` (created if missing).
    ///
    /// Errors with [`Error::Io`] when a file cannot be written or a certificate cannot be made.
    pub fn generate(dir: &Path) -> Result<TestPki, Error> {
        Self::generate_in(dir, false)
    }

    /// As [`generate`](Self::generate), in a fresh directory under the temp directory that is
    /// removed when the `TestPki` is dropped (kept with `ZK_RS_KEEP=1`).
    ///
    /// Errors as [`generate`](Self::generate).
    pub fn temp() -> Result<TestPki, Error> {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("zk-rs-pki-{}-{n}", std::process::id()));
        Self::generate_in(&dir, true)
    }

    fn generate_in(dir: &Path, owned: bool) -> Result<TestPki, Error> {
        fs::create_dir_all(dir).map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
        let gen = |what: &str, e: rcgen::Error| {
            Error::io(
                format!("making the {what}"),
                io::Error::other(e.to_string()),
            )
        };
        let ca = make_ca("zk-rs test CA").map_err(|e| gen("CA", e))?;
        let other_ca = make_ca("zk-rs other CA").map_err(|e| gen("other CA", e))?;
        let write = |name: &str, text: &str| -> Result<(), Error> {
            let path = dir.join(name);
            fs::write(&path, text).map_err(|e| Error::io(format!("writing {}", path.display()), e))
        };
        write("ca.pem", &ca.pem())?;
        write("other-ca.pem", &other_ca.pem())?;

        let leaf = |names: &[&str],
                    cn: &str,
                    usage: ExtendedKeyUsagePurpose,
                    expired: bool|
         -> Result<(String, String), rcgen::Error> {
            let mut p =
                CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())?;
            p.distinguished_name.push(DnType::CommonName, cn);
            p.extended_key_usages = vec![usage];
            if expired {
                p.not_before = date_time_ymd(2019, 1, 1);
                p.not_after = date_time_ymd(2020, 1, 1);
            } else {
                p.not_before = date_time_ymd(2020, 1, 1);
                p.not_after = date_time_ymd(2100, 1, 1);
            }
            let key = KeyPair::generate()?;
            let cert = p.signed_by(&key, &ca)?;
            Ok((cert.pem(), key.serialize_pem()))
        };
        let server_names = ["127.0.0.1", "localhost"];
        let cases = [
            ("server.pem", &server_names[..], false),
            ("server-expired.pem", &server_names[..], true),
            ("server-wrongname.pem", &["wrong.zk-rs.invalid"][..], false),
        ];
        for (file, names, expired) in cases {
            let (cert, key) = leaf(
                names,
                "zk-rs-server",
                ExtendedKeyUsagePurpose::ServerAuth,
                expired,
            )
            .map_err(|e| gen(file, e))?;
            // ZooKeeper's PEM keystore: the key, then the chain (leaf, CA).
            write(file, &format!("{key}{cert}{}", ca.pem()))?;
        }
        // The client certificate carries the loopback names too: a server with
        // ssl.clientHostnameVerification on checks them against the client's address.
        let (cert, key) = leaf(
            &server_names,
            "zk-rs-client",
            ExtendedKeyUsagePurpose::ClientAuth,
            false,
        )
        .map_err(|e| gen("client certificate", e))?;
        write("client.crt", &cert)?;
        write("client.key", &key)?;
        write("client-keystore.pem", &format!("{key}{cert}"))?;
        let (cert, key) = leaf(
            &server_names,
            "zk-rs-other",
            ExtendedKeyUsagePurpose::ClientAuth,
            false,
        )
        .map_err(|e| gen("second client certificate", e))?;
        write("other-client.crt", &cert)?;
        write("other-client.key", &key)?;
        // The same subject from the other CA: a server trusting only the CA must refuse it.
        let (cert, key) = {
            let mut p = CertificateParams::new(
                server_names
                    .iter()
                    .map(|s| s.to_string())
                    .collect::<Vec<_>>(),
            )
            .map_err(|e| gen("rogue client certificate", e))?;
            p.distinguished_name
                .push(DnType::CommonName, "zk-rs-client");
            p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
            let key = KeyPair::generate().map_err(|e| gen("rogue client key", e))?;
            let cert = p
                .signed_by(&key, &other_ca)
                .map_err(|e| gen("rogue client certificate", e))?;
            (cert.pem(), key.serialize_pem())
        };
        write("rogue-client.crt", &cert)?;
        write("rogue-client.key", &key)?;
        Ok(TestPki {
            dir: dir.to_path_buf(),
            owned,
        })
    }

    /// The directory holding the files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The CA certificate (PEM) every good certificate chains to: what clients should trust.
    pub fn ca(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// Another CA's certificate (PEM), which signed nothing the servers use: a wrong CA.
    pub fn other_ca(&self) -> PathBuf {
        self.dir.join("other-ca.pem")
    }

    /// The client certificate (PEM, subject [`CLIENT_SUBJECT`]).
    pub fn client_cert(&self) -> PathBuf {
        self.dir.join("client.crt")
    }

    /// The client certificate's private key (PKCS#8 PEM).
    pub fn client_key(&self) -> PathBuf {
        self.dir.join("client.key")
    }

    /// The client's key and certificate in one PEM file (ZooKeeper's PEM keystore form).
    pub fn client_keystore(&self) -> PathBuf {
        self.dir.join("client-keystore.pem")
    }

    /// The client's key and certificate in a PKCS#12 key store as a Java service keeps it
    /// (`zookeeper.ssl.keyStore.type=PKCS12`): bundled by `openssl pkcs12 -export`, then
    /// rewritten by Java's `keytool -importkeystore` (AES-256, HMAC-SHA-256), opened with
    /// `password` (keytool wants 6 characters or more). Written afresh on each call.
    ///
    /// Errors with [`Error::NotInstalled`] when there is no keytool (`$JAVA_HOME/bin` or
    /// `PATH`), and with [`Error::Io`] when `openssl` is missing or either tool fails (its
    /// output in the message).
    pub fn client_keystore_pkcs12(&self, password: &str) -> Result<PathBuf, Error> {
        let bundle = self.dir.join("client-openssl.p12");
        let store = self.dir.join("client.p12");
        remove_if_there(&[&bundle, &store])?;
        let pass = format!("pass:{password}");
        run_tool(
            Path::new("openssl"),
            &[
                "pkcs12".as_ref(),
                "-export".as_ref(),
                "-passout".as_ref(),
                pass.as_ref(),
                "-inkey".as_ref(),
                self.client_key().as_os_str(),
                "-in".as_ref(),
                self.client_cert().as_os_str(),
                "-out".as_ref(),
                bundle.as_os_str(),
            ],
        )?;
        run_tool(
            &keytool()?,
            &[
                "-importkeystore".as_ref(),
                "-noprompt".as_ref(),
                "-srckeystore".as_ref(),
                bundle.as_os_str(),
                "-srcstoretype".as_ref(),
                "PKCS12".as_ref(),
                "-srcstorepass".as_ref(),
                password.as_ref(),
                "-destkeystore".as_ref(),
                store.as_os_str(),
                "-deststoretype".as_ref(),
                "PKCS12".as_ref(),
                "-deststorepass".as_ref(),
                password.as_ref(),
            ],
        )?;
        Ok(store)
    }

    /// The CA certificate ([`ca`](Self::ca)) in a PKCS#12 trust store written by Java's
    /// `keytool -importcert` (`zookeeper.ssl.trustStore.type=PKCS12`), opened with `password`
    /// (6 characters or more). Written afresh on each call.
    ///
    /// Errors as [`client_keystore_pkcs12`](Self::client_keystore_pkcs12).
    pub fn ca_truststore_pkcs12(&self, password: &str) -> Result<PathBuf, Error> {
        let store = self.dir.join("trust.p12");
        remove_if_there(&[&store])?;
        run_tool(
            &keytool()?,
            &[
                "-importcert".as_ref(),
                "-noprompt".as_ref(),
                "-alias".as_ref(),
                "zk-rs-ca".as_ref(),
                "-file".as_ref(),
                self.ca().as_os_str(),
                "-keystore".as_ref(),
                store.as_os_str(),
                "-storetype".as_ref(),
                "PKCS12".as_ref(),
                "-storepass".as_ref(),
                password.as_ref(),
            ],
        )?;
        Ok(store)
    }

    /// A second client certificate from the CA (PEM, subject [`OTHER_CLIENT_SUBJECT`]).
    pub fn other_client_cert(&self) -> PathBuf {
        self.dir.join("other-client.crt")
    }

    /// The second client certificate's key (PEM).
    pub fn other_client_key(&self) -> PathBuf {
        self.dir.join("other-client.key")
    }

    /// A client certificate with the same subject, signed by the other CA (PEM).
    pub fn rogue_client_cert(&self) -> PathBuf {
        self.dir.join("rogue-client.crt")
    }

    /// The rogue client certificate's key (PEM).
    pub fn rogue_client_key(&self) -> PathBuf {
        self.dir.join("rogue-client.key")
    }

    /// The server side for `cert`, requiring client certificates or not.
    pub fn server_tls(&self, cert: ServerCert, client_auth: ClientAuth) -> ServerTls {
        let file = match cert {
            ServerCert::Good => "server.pem",
            ServerCert::Expired => "server-expired.pem",
            ServerCert::WrongName => "server-wrongname.pem",
        };
        ServerTls {
            keystore: self.dir.join(file),
            truststore: self.ca(),
            client_auth,
            probe_identity: (client_auth == ClientAuth::Need).then(|| self.client_keystore()),
        }
    }
}

/// Removes the files in `paths` that exist (a tool asked to write over a store would merge into
/// it or ask).
fn remove_if_there(paths: &[&Path]) -> Result<(), Error> {
    for p in paths {
        match fs::remove_file(p) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(Error::Io {
                    context: format!("removing {}", p.display()),
                    source,
                })
            }
        }
    }
    Ok(())
}

/// keytool of the Java that runs the servers.
fn keytool() -> Result<PathBuf, Error> {
    super::install::find_java_tool("keytool")
}

/// Runs `program` with `args` to completion.
///
/// Errors with [`Error::Io`] when it cannot be started or exits unsuccessfully (its output in the
/// message; the arguments are not, since some are passwords).
fn run_tool(program: &Path, args: &[&std::ffi::OsStr]) -> Result<(), Error> {
    let name = program.display();
    let out = std::process::Command::new(program)
        .args(args)
        .output()
        .map_err(|source| Error::Io {
            context: format!("running {name} (is it installed?)"),
            source,
        })?;
    if out.status.success() {
        return Ok(());
    }
    Err(Error::Io {
        context: format!(
            "running {name} {}",
            args.first().map_or("".into(), |a| a.to_string_lossy())
        ),
        source: io::Error::other(format!(
            "{}: {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )),
    })
}

fn make_ca(name: &str) -> Result<CertifiedIssuer<'static, KeyPair>, rcgen::Error> {
    let mut p = CertificateParams::new(Vec::<String>::new())?;
    p.distinguished_name.push(DnType::CommonName, name);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    p.not_before = date_time_ymd(2019, 1, 1);
    p.not_after = date_time_ymd(2100, 1, 1);
    CertifiedIssuer::self_signed(p, KeyPair::generate()?)
}

/// The zoo.cfg lines for `tls` with the client port `port`.
pub(crate) fn config_lines(tls: &ServerTls, port: u16) -> String {
    let auth = match tls.client_auth {
        ClientAuth::None => "none",
        ClientAuth::Need => "need",
    };
    format!(
        "secureClientPort={port}\n\
         secureClientPortAddress=127.0.0.1\n\
         serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory\n\
         ssl.keyStore.location={}\n\
         ssl.keyStore.type=PEM\n\
         ssl.trustStore.location={}\n\
         ssl.trustStore.type=PEM\n\
         ssl.clientAuth={auth}\n\
         authProvider.x509=org.apache.zookeeper.server.auth.X509AuthenticationProvider\n",
        tls.keystore.display(),
        tls.truststore.display(),
    )
}

/// Accepts any server certificate: the harness only asks whether its own server is up (and the
/// failure tests' servers have bad certificates on purpose). Never for the client under test.
#[derive(Debug)]
struct AcceptAnyServer(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AcceptAnyServer {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The harness's probe configuration for `tls`.
pub(crate) fn probe_config(tls: &ServerTls) -> io::Result<Arc<ClientConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(io::Error::other)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAnyServer(provider)));
    let config = match &tls.probe_identity {
        None => builder.with_no_client_auth(),
        Some(path) => {
            let bytes = fs::read(path)?;
            let chain = CertificateDer::pem_slice_iter(&bytes)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| io::Error::other(format!("{}: {e}", path.display())))?;
            let key = PrivateKeyDer::from_pem_slice(&bytes)
                .map_err(|e| io::Error::other(format!("{}: {e}", path.display())))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(io::Error::other)?
        }
    };
    Ok(Arc::new(config))
}

/// A four-letter word over TLS to `127.0.0.1:port`, read until the server closes (with or
/// without close_notify). Errors as [`four_letter_word`](super::four_letter_word) does, and
/// with the TLS error.
pub(crate) fn four_letter_word_tls(
    port: u16,
    word: &str,
    timeout: Duration,
    config: &Arc<ClientConfig>,
) -> io::Result<String> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let tcp = TcpStream::connect_timeout(&addr, timeout)?;
    tcp.set_read_timeout(Some(timeout))?;
    tcp.set_write_timeout(Some(timeout))?;
    let name = ServerName::IpAddress(Ipv4Addr::LOCALHOST.into());
    let conn = ClientConnection::new(config.clone(), name).map_err(io::Error::other)?;
    let mut stream = StreamOwned::new(conn, tcp);
    stream.write_all(word.as_bytes())?;
    stream.flush()?;
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => break,
            Err(e) => return Err(e),
        }
        if answer.len() > 1024 * 1024 {
            break;
        }
    }
    Ok(String::from_utf8_lossy(&answer).into_owned())
}
