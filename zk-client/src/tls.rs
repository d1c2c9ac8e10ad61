//! TLS on the client port: [`TlsConfig`] (what to trust, which client certificate to show) and
//! `TlsTransport`, rustls's sans-IO `ClientConnection` driven over the runtime's TCP
//! [`Transport`]. Because it wraps the trait rather than a runtime's socket, tokio, async-std,
//! smol and the blocking client all get TLS from this one file, and zk-core never sees it.
//!
//! Every connection builds its rustls configuration afresh from the files named in the
//! [`TlsConfig`], so certificates and keys rotated on disk are picked up on the next reconnect
//! without a restart. The handshake runs inside the dial future, before the session sees the
//! connection: a handshake that fails (expired certificate, unknown CA, name mismatch) is a
//! connect failure of that host, with a cause that says which.
//!
//! Hostnames are verified against the certificate's DNS names, IP hosts against its IP SANs;
//! SNI carries DNS names only (rustls never sends an IP address as SNI), and no reverse DNS
//! lookup is ever made.

use std::fmt;
use std::future::poll_fn;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{
    AlertDescription, CertificateError, ClientConfig, ClientConnection, DigitallySignedStruct,
    RootCertStore, SignatureScheme,
};

use crate::runtime::{BoxFuture, Runtime, Transport};
#[cfg(feature = "pkcs12")]
use crate::tls_pkcs12::StorePassword;

/// Where trusted CA certificates come from.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Roots {
    /// Files of CA certificates (ZooKeeper's `ssl.trustStore.location`).
    Files(Vec<CaFile>),
    /// The platform's trust store (rustls-native-certs), optionally plus files.
    Platform(Vec<CaFile>),
}

/// A file of trusted CA certificates.
#[derive(Debug, Clone, PartialEq, Eq)]
enum CaFile {
    /// PEM (`ssl.trustStore.type=PEM`).
    Pem(PathBuf),
    /// A PKCS#12 trust store and its password (`ssl.trustStore.type=PKCS12`).
    #[cfg(feature = "pkcs12")]
    Pkcs12(PathBuf, StorePassword),
}

/// The client certificate and key shown to a server that asks for one (mTLS).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Identity {
    /// A PEM certificate chain file and a PEM private key file.
    CertAndKey { cert: PathBuf, key: PathBuf },
    /// One PEM file holding the private key and the certificate chain: ZooKeeper's PEM keystore
    /// (`ssl.keyStore.location` with `ssl.keyStore.type=PEM`).
    KeyStore(PathBuf),
    /// A PKCS#12 key store and its password (`ssl.keyStore.type=PKCS12`).
    #[cfg(feature = "pkcs12")]
    Pkcs12(PathBuf, StorePassword),
}

/// How a client secures its connections with TLS: which CAs to trust and, for servers that
/// require one, which client certificate to show. Build with [`TlsConfig::new`] and the
/// methods below; give it to [`ClientBuilder::tls`](crate::ClientBuilder::tls).
///
/// The files are read when a connection is made, not here, so rotated certificates and keys are
/// used from the next connection on; an unreadable or malformed file is reported as that
/// connection's failure, naming the file.
#[derive(Clone, PartialEq, Eq)]
pub struct TlsConfig {
    roots: Roots,
    identity: Option<Identity>,
    /// The password of an encrypted client key.
    key_password: Option<String>,
    server_name: Option<String>,
    verify_hostname: bool,
}

impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Paths only: nothing secret is held in memory here.
        f.debug_struct("TlsConfig")
            .field("roots", &self.roots)
            .field("identity", &self.identity)
            .field("key_password", &self.key_password.as_ref().map(|_| "<set>"))
            .field("server_name", &self.server_name)
            .field("verify_hostname", &self.verify_hostname)
            .finish()
    }
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig::new()
    }
}

impl TlsConfig {
    /// A configuration that trusts nothing yet and shows no client certificate: add a CA with
    /// [`ca_file`](Self::ca_file) or [`platform_roots`](Self::platform_roots). Hostname
    /// verification is on.
    pub fn new() -> Self {
        TlsConfig {
            roots: Roots::Files(Vec::new()),
            identity: None,
            key_password: None,
            server_name: None,
            verify_hostname: true,
        }
    }

    /// Trusts the CA certificates in the PEM file `path` (several may be given, by calling this
    /// again). A connection fails, naming the file, if it cannot be read or holds no
    /// certificate.
    pub fn ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.add_ca(CaFile::Pem(path.into()));
        self
    }

    /// Trusts the CA certificates of the PKCS#12 trust store `path`, opened with `password`
    /// (ZooKeeper's `zookeeper.ssl.trustStore.type=PKCS12`; several stores and PEM files may be
    /// given): those Java marks as trusted (`keytool -importcert`), or every certificate of a
    /// store with neither such marks nor keys (an `openssl pkcs12 -nokeys` bundle). A private
    /// key's own chain is never trusted. A connection fails, naming the file, if it cannot be
    /// read, the password is wrong, or it holds no trusted certificate. Feature `pkcs12`.
    #[cfg(feature = "pkcs12")]
    pub fn ca_pkcs12(mut self, path: impl Into<PathBuf>, password: impl Into<String>) -> Self {
        self.add_ca(CaFile::Pkcs12(path.into(), StorePassword(password.into())));
        self
    }

    fn add_ca(&mut self, file: CaFile) {
        match &mut self.roots {
            Roots::Files(f) | Roots::Platform(f) => f.push(file),
        }
    }

    /// Also trusts the platform's CA certificates (the system trust store, as
    /// rustls-native-certs finds it).
    pub fn platform_roots(mut self) -> Self {
        if let Roots::Files(f) = &mut self.roots {
            self.roots = Roots::Platform(std::mem::take(f));
        }
        self
    }

    /// Shows the client certificate chain in the PEM file `cert`, with the PEM private key in
    /// `key` (PKCS#8, PKCS#1 or SEC1; an encrypted PKCS#8 key needs
    /// [`client_key_password`](Self::client_key_password)), to servers that ask for one. A connection
    /// fails, naming the file, if either cannot be read or parsed; a Java keystore (JKS) or a
    /// PKCS#12 file is refused with a message naming what reads it or how to convert it.
    pub fn client_cert(mut self, cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        self.identity = Some(Identity::CertAndKey {
            cert: cert.into(),
            key: key.into(),
        });
        self
    }

    /// Shows the client certificate chain and private key that are both in the PEM file `path`:
    /// ZooKeeper's PEM keystore form (`zookeeper.ssl.keyStore.location` with
    /// `zookeeper.ssl.keyStore.type=PEM`). Errors as [`client_cert`](Self::client_cert).
    pub fn client_keystore_pem(mut self, path: impl Into<PathBuf>) -> Self {
        self.identity = Some(Identity::KeyStore(path.into()));
        self
    }

    /// Shows the client certificate chain and private key of the PKCS#12 key store `path`,
    /// opened with `password`: ZooKeeper's `zookeeper.ssl.keyStore.type=PKCS12` (with
    /// `keyStore.password`), as Java's `keytool` writes it. The store must hold one private key
    /// with its certificate. A connection fails, naming the file, if it cannot be read, the
    /// password is wrong, or it holds no key or more than one. Feature `pkcs12`.
    #[cfg(feature = "pkcs12")]
    pub fn client_keystore_pkcs12(
        mut self,
        path: impl Into<PathBuf>,
        password: impl Into<String>,
    ) -> Self {
        self.identity = Some(Identity::Pkcs12(
            path.into(),
            StorePassword(password.into()),
        ));
        self
    }

    /// The password of the client's private key when it is an encrypted PKCS#8 PEM key
    /// (`BEGIN ENCRYPTED PRIVATE KEY`, PBES2 as `openssl pkcs8 -topk8 -v2 aes-256-cbc` writes
    /// it; ZooKeeper's `zookeeper.ssl.keyStore.password`). A connection fails, naming the key
    /// file, when the password is missing or wrong. A PKCS#12 key store (feature `pkcs12`)
    /// takes its own password instead.
    pub fn client_key_password(mut self, password: impl Into<String>) -> Self {
        self.key_password = Some(password.into());
        self
    }

    /// Verifies every server against `name` (and sends it as SNI) instead of the host of the
    /// connect string: for ensembles addressed by IP whose certificates carry one DNS name.
    pub fn server_name(mut self, name: impl Into<String>) -> Self {
        self.server_name = Some(name.into());
        self
    }

    /// Turns hostname verification off (ZooKeeper's `zookeeper.ssl.hostnameVerification=false`):
    /// the certificate must still chain to a trusted CA and be valid in time, but the name in it
    /// is not compared with the host. Only for test setups; it lets anyone with a certificate of
    /// that CA pose as the server.
    pub fn verify_hostname(mut self, on: bool) -> Self {
        self.verify_hostname = on;
        self
    }

    /// Whether a client certificate is configured.
    fn has_identity(&self) -> bool {
        self.identity.is_some()
    }

    /// Reads the files and builds the rustls configuration for one connection.
    ///
    /// Errors with [`io::ErrorKind::InvalidInput`] naming the file and what is wrong with it.
    fn client_config(&self) -> io::Result<ClientConfig> {
        let mut roots = RootCertStore::empty();
        let (files, platform) = match &self.roots {
            Roots::Files(f) => (f, false),
            Roots::Platform(f) => (f, true),
        };
        for file in files {
            let (certs, path) = match file {
                CaFile::Pem(path) => (
                    parse_certs(&read_file(path, TRUSTSTORE)?, path, TRUSTSTORE)?,
                    path,
                ),
                #[cfg(feature = "pkcs12")]
                CaFile::Pkcs12(path, password) => {
                    (crate::tls_pkcs12::read_roots(path, &password.0)?, path)
                }
            };
            for cert in certs {
                roots.add(cert).map_err(|e| {
                    invalid(format!(
                        "CA file {}: unusable certificate: {e}",
                        path.display()
                    ))
                })?;
            }
        }
        if platform {
            let found = rustls_native_certs::load_native_certs();
            let (added, _ignored) = roots.add_parsable_certificates(found.certs);
            if added == 0 && files.is_empty() {
                return Err(invalid(format!(
                    "no usable CA certificate in the platform's trust store ({} errors)",
                    found.errors.len()
                )));
            }
        }
        if roots.is_empty() {
            return Err(invalid(
                "TLS is on but no CA is trusted: give a CA file or use the platform roots".into(),
            ));
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| invalid(format!("TLS setup: {e}")))?;
        let builder = if self.verify_hostname {
            builder.with_root_certificates(roots)
        } else {
            let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| invalid(format!("TLS setup: {e}")))?;
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(NoHostnameVerifier(inner)))
        };
        match &self.identity {
            None => Ok(builder.with_no_client_auth()),
            Some(id) => {
                let (chain, key, what) = load_identity(id, self.key_password.as_deref())?;
                builder.with_client_auth_cert(chain, key).map_err(|e| {
                    invalid(format!("{what}: the key does not fit the certificate: {e}"))
                })
            }
        }
    }
}

/// A verifier that checks everything but the name (see [`TlsConfig::verify_hostname`]).
#[derive(Debug)]
struct NoHostnameVerifier(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for NoHostnameVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

pub(crate) fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

/// Reads `path`, refusing keystore formats this client cannot read with a message that says how
/// to convert them.
fn read_file(path: &Path, what: &str) -> io::Result<Vec<u8>> {
    let bytes = read_named(path, what)?;
    if let Some(refusal) = java_keystore_refusal(&bytes, path, what) {
        return Err(refusal);
    }
    // DER (PKCS#12, or a bare DER certificate) starts with a SEQUENCE tag and has no PEM header.
    if bytes.first() == Some(&0x30) && !contains(&bytes, b"-----BEGIN") {
        return Err(invalid(format!(
            "{what} {} is binary (PKCS#12 or DER), not PEM: open a PKCS#12 store with \
             TlsConfig::client_keystore_pkcs12 or ca_pkcs12 (feature pkcs12), or convert it to \
             PEM (openssl pkcs12 -in FILE -nodes -out FILE.pem)",
            path.display()
        )));
    }
    Ok(bytes)
}

/// How errors name a trust store (a CA file, PEM or PKCS#12) and a key store holding the client's
/// certificate and key.
pub(crate) const TRUSTSTORE: &str = "CA file";
/// See [`TRUSTSTORE`].
pub(crate) const KEYSTORE: &str = "client keystore";

/// The bytes of the file at `path`; a failure to read it names the file (`what`, then the path).
pub(crate) fn read_named(path: &Path, what: &str) -> io::Result<Vec<u8>> {
    std::fs::read(path)
        .map_err(|e| io::Error::new(e.kind(), format!("{what} {}: {e}", path.display())))
}

/// The error for a JKS or JCEKS keystore (known by their magic numbers), which no reader here
/// opens; `None` for anything else.
pub(crate) fn java_keystore_refusal(bytes: &[u8], path: &Path, what: &str) -> Option<io::Error> {
    let java = bytes.starts_with(&[0xFE, 0xED, 0xFE, 0xED])
        || bytes.starts_with(&[0xCE, 0xCE, 0xCE, 0xCE]);
    java.then(|| {
        invalid(format!(
            "{what} {} is a Java keystore (JKS or JCEKS), which is not supported: convert it to \
             PKCS#12 (keytool -importkeystore -srckeystore FILE.jks -destkeystore FILE.p12 \
             -deststoretype PKCS12) or on to PEM (openssl pkcs12 -nodes)",
            path.display()
        ))
    })
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Every certificate in a PEM file; errors if there is none or one is malformed.
fn parse_certs(bytes: &[u8], path: &Path, what: &str) -> io::Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_slice_iter(bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(format!("{what} {}: bad PEM: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(invalid(format!(
            "{what} {}: no certificate (PEM \"BEGIN CERTIFICATE\") in it",
            path.display()
        )));
    }
    Ok(certs)
}

/// The private key in a PEM file, decrypted with `password` if it is an encrypted PKCS#8 key;
/// errors if there is none, it is malformed, or it is encrypted and the password is missing or
/// wrong.
fn parse_key(
    bytes: &[u8],
    path: &Path,
    what: &str,
    password: Option<&str>,
) -> io::Result<PrivateKeyDer<'static>> {
    const BEGIN: &str = "-----BEGIN ENCRYPTED PRIVATE KEY-----";
    const END: &str = "-----END ENCRYPTED PRIVATE KEY-----";
    let text = String::from_utf8_lossy(bytes);
    if let Some(start) = text.find(BEGIN) {
        let Some(password) = password else {
            return Err(invalid(format!(
                "{what} {}: the private key is encrypted and no password is configured \
                 (TlsConfig::client_key_password, zookeeper.ssl.keyStore.password)",
                path.display()
            )));
        };
        let body = &text[start + BEGIN.len()..];
        let body = &body[..body.find(END).unwrap_or(body.len())];
        let b64: String = body.chars().filter(|c| !c.is_whitespace()).collect();
        use base64::Engine as _;
        let der = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|e| invalid(format!("{what} {}: bad PEM: {e}", path.display())))?;
        let info = pkcs8::EncryptedPrivateKeyInfo::try_from(der.as_slice()).map_err(|e| {
            invalid(format!(
                "{what} {}: malformed encrypted key: {e}",
                path.display()
            ))
        })?;
        let plain = info.decrypt(password).map_err(|e| {
            invalid(format!(
                "{what} {}: cannot decrypt the private key (wrong password?): {e}",
                path.display()
            ))
        })?;
        return Ok(PrivateKeyDer::Pkcs8(plain.as_bytes().to_vec().into()));
    }
    PrivateKeyDer::from_pem_slice(bytes).map_err(|e| {
        invalid(format!(
            "{what} {}: no usable private key (PKCS#8, PKCS#1 or SEC1 PEM): {e}",
            path.display()
        ))
    })
}

/// Loads a client identity; also returns a description naming its file(s) for later errors.
fn load_identity(
    id: &Identity,
    password: Option<&str>,
) -> io::Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>, String)> {
    match id {
        Identity::CertAndKey { cert, key } => {
            let chain = parse_certs(
                &read_file(cert, "client certificate")?,
                cert,
                "client certificate",
            )?;
            let k = parse_key(&read_file(key, "client key")?, key, "client key", password)?;
            Ok((
                chain,
                k,
                format!(
                    "client certificate {} with key {}",
                    cert.display(),
                    key.display()
                ),
            ))
        }
        Identity::KeyStore(path) => {
            let bytes = read_file(path, KEYSTORE)?;
            let chain = parse_certs(&bytes, path, KEYSTORE)?;
            let key = parse_key(&bytes, path, KEYSTORE, password)?;
            Ok((chain, key, format!("client keystore {}", path.display())))
        }
        #[cfg(feature = "pkcs12")]
        Identity::Pkcs12(path, store_password) => {
            let (chain, key) = crate::tls_pkcs12::read_identity(path, &store_password.0)?;
            Ok((chain, key, format!("client keystore {}", path.display())))
        }
    }
}

/// How a connection is made: plain TCP or TLS over it. Held by the engine, used for the
/// session's connections, its four-letter-word probes and [`Client::command`](crate::Client::command).
#[derive(Debug, Clone, Default)]
pub(crate) enum Connector {
    /// Plain TCP.
    #[default]
    Plain,
    /// TLS over TCP, with the handshake done before the transport is handed out.
    Tls(Arc<TlsConfig>),
}

impl Connector {
    /// Dials `host:port` on `rt` and, for TLS, completes the handshake.
    ///
    /// The future errors with the dial error, or with one naming the host and what failed in
    /// TLS (a file, an expired or untrusted certificate, a name mismatch, a refused client
    /// certificate).
    pub(crate) fn connect(
        &self,
        rt: &Arc<dyn Runtime>,
        host: String,
        port: u16,
        name: Option<String>,
    ) -> BoxFuture<io::Result<Box<dyn Transport>>> {
        match self {
            Connector::Plain => rt.connect(host, port),
            Connector::Tls(cfg) => {
                let cfg = cfg.clone();
                let rt = rt.clone();
                Box::pin(async move { connect_tls(&*rt, &cfg, host, port, name).await })
            }
        }
    }
}

/// Dials and completes a TLS handshake, with errors naming `host:port`.
async fn connect_tls(
    rt: &dyn Runtime,
    cfg: &TlsConfig,
    host: String,
    port: u16,
    name: Option<String>,
) -> io::Result<Box<dyn Transport>> {
    let fail = |e: io::Error| io::Error::new(e.kind(), format!("TLS to {host}:{port}: {e}"));
    // Read the files first: a bad file is reported without a connection to the server.
    let config = cfg.client_config().map_err(fail)?;
    let name_text = cfg
        .server_name
        .clone()
        .or(name)
        .unwrap_or_else(|| host.clone());
    // An IP address parses as ServerName::IpAddress: verified against IP SANs, and no SNI.
    let name = ServerName::try_from(strip_brackets(&name_text).to_owned()).map_err(|e| {
        fail(invalid(format!(
            "{name_text:?} is not a valid server name: {e}"
        )))
    })?;
    let tls = ClientConnection::new(Arc::new(config), name)
        .map_err(|e| fail(io::Error::other(e.to_string())))?;
    let tcp = rt.connect(host.clone(), port).await?;
    let mut t = TlsTransport {
        tcp,
        tls,
        name: name_text,
        has_identity: cfg.has_identity(),
    };
    poll_fn(|cx| t.poll_handshake(cx)).await.map_err(fail)?;
    Ok(Box::new(t))
}

/// `[::1]` as `::1`: a bracketed IPv6 literal is not a server name.
fn strip_brackets(host: &str) -> &str {
    host.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
}

/// A TLS session over a TCP transport: rustls's sans-IO connection pumped through the inner
/// transport's `poll_read`/`poll_write`.
pub(crate) struct TlsTransport {
    tcp: Box<dyn Transport>,
    tls: ClientConnection,
    /// The name verified (for error messages).
    name: String,
    /// Whether a client certificate was offered (to explain a server's refusal).
    has_identity: bool,
}

/// The inner transport as `std::io`, with "would block" for `Pending` (the waker is registered
/// by the inner poll, so a `WouldBlock` here always has a wake-up coming).
struct SyncIo<'a, 'b> {
    tcp: &'a mut dyn Transport,
    cx: &'a mut Context<'b>,
}

impl Read for SyncIo<'_, '_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.tcp.poll_read(self.cx, buf) {
            Poll::Ready(r) => r,
            Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
        }
    }
}

impl Write for SyncIo<'_, '_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.tcp.poll_write(self.cx, buf) {
            Poll::Ready(r) => r,
            Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl TlsTransport {
    /// Writes out every TLS record rustls has ready.
    fn poll_send(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.tls.wants_write() {
            let mut io = SyncIo {
                tcp: &mut *self.tcp,
                cx,
            };
            match self.tls.write_tls(&mut io) {
                Ok(0) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Poll::Pending,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
        Poll::Ready(Ok(()))
    }

    /// Reads TLS records from the socket and processes them; `Ok(0)` at the end of the stream.
    fn poll_receive(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let mut io = SyncIo {
            tcp: &mut *self.tcp,
            cx,
        };
        let n = match self.tls.read_tls(&mut io) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Poll::Pending,
            Err(e) => return Poll::Ready(Err(e)),
        };
        if let Err(e) = self.tls.process_new_packets() {
            // rustls queues an alert for the peer; a courtesy, so its failure does not matter.
            let _ = self.poll_send(cx);
            return Poll::Ready(Err(self.explain(&e)));
        }
        Poll::Ready(Ok(n))
    }

    /// Drives the handshake to its end, writing the client's last flight too.
    fn poll_handshake(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            let sent = match self.poll_send(cx) {
                Poll::Ready(Err(e)) => return Poll::Ready(Err(self.refusal_or(cx, e))),
                Poll::Ready(Ok(())) => Poll::Ready(()),
                Poll::Pending => Poll::Pending,
            };
            if !self.tls.is_handshaking() {
                return sent.map(Ok);
            }
            if !self.tls.wants_read() {
                // Waiting for the socket to take our flight.
                return Poll::Pending;
            }
            match self.poll_receive(cx)? {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(0) => {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the server closed the connection during the TLS handshake \
                         (is the port TLS?)",
                    )))
                }
                Poll::Ready(_) => {}
            }
        }
    }

    /// A write that failed during the handshake (broken pipe, reset) is often the server
    /// closing after it refused us, and its alert saying why may already be waiting to be read:
    /// that alert's explanation if so, else the write's own error `e`.
    fn refusal_or(&mut self, cx: &mut Context<'_>, e: io::Error) -> io::Error {
        match self.poll_receive(cx) {
            Poll::Ready(Err(alert)) if alert.kind() == io::ErrorKind::InvalidData => alert,
            _ => e,
        }
    }

    /// A rustls error as an I/O error saying what failed, in words an operator can act on.
    fn explain(&self, e: &rustls::Error) -> io::Error {
        let name = &self.name;
        let text = match e {
            rustls::Error::InvalidCertificate(c) => match c {
                CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                    format!("the server's certificate has expired ({c})")
                }
                CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                    format!("the server's certificate is not valid yet ({c})")
                }
                CertificateError::UnknownIssuer => {
                    "the server's certificate is signed by an unknown CA (not in the trusted \
                     roots)"
                        .to_owned()
                }
                CertificateError::NotValidForName
                | CertificateError::NotValidForNameContext { .. } => {
                    format!("name mismatch: the server's certificate is not valid for {name} ({c})")
                }
                other => format!("the server's certificate is invalid: {other}"),
            },
            rustls::Error::AlertReceived(alert) => match alert {
                AlertDescription::CertificateRequired
                | AlertDescription::HandshakeFailure
                | AlertDescription::BadCertificate
                    if !self.has_identity =>
                {
                    format!(
                        "the server requires a client certificate and none is configured \
                         (alert {alert:?})"
                    )
                }
                AlertDescription::BadCertificate
                | AlertDescription::UnknownCA
                | AlertDescription::CertificateExpired
                | AlertDescription::CertificateUnknown
                | AlertDescription::CertificateRevoked
                | AlertDescription::UnsupportedCertificate
                | AlertDescription::AccessDenied => {
                    format!("the server refused our client certificate (alert {alert:?})")
                }
                other => format!("the server sent the alert {other:?}"),
            },
            other => format!("TLS error: {other}"),
        };
        io::Error::new(io::ErrorKind::InvalidData, text)
    }
}

impl Transport for TlsTransport {
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        loop {
            // Alerts, key updates and our own buffered data go out whenever we pass by; a
            // blocked socket registers this waker for writability.
            if let Poll::Ready(Err(e)) = self.poll_send(cx) {
                return Poll::Ready(Err(e));
            }
            match self.tls.reader().read(buf) {
                Ok(n) => return Poll::Ready(Ok(n)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                // UnexpectedEof: the peer closed without close_notify, which for ZooKeeper just
                // means the connection ended; the caller treats it as closed.
                Err(e) => return Poll::Ready(Err(e)),
            }
            match self.poll_receive(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                // At the end of the stream the reader reports Ok(0) or UnexpectedEof next time.
                Poll::Ready(Ok(_)) => {}
            }
        }
    }

    fn poll_write(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        // Keep at most one batch buffered in rustls: take new bytes only once the old are out.
        match self.poll_send(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Ready(Ok(())) => {}
        }
        let n = self.tls.writer().write(buf)?;
        // What the socket does not take now is sent by poll_flush (or the next poll_*).
        if let Poll::Ready(Err(e)) = self.poll_send(cx) {
            return Poll::Ready(Err(e));
        }
        Poll::Ready(Ok(n))
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_send(cx)
    }

    fn peer_addr(&self) -> Option<SocketAddr> {
        self.tcp.peer_addr()
    }
}
