//! PKCS#12 key and trust stores for [`TlsConfig`](crate::TlsConfig) (feature `pkcs12`): the
//! form Java services keep their ZooKeeper certificates in (`zookeeper.ssl.keyStore.type=PKCS12`,
//! the default store type since Java 9). p12-keystore reads them, in pure Rust: Java's AES-256
//! stores with an HMAC-SHA-256 integrity check, and the older 3DES/RC2 ones.

use std::fmt;
use std::io;
use std::path::Path;

use p12_keystore::{KeyStore, KeyStoreEntry, Pkcs12ImportPolicy};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::tls::invalid;

/// A store's password, kept out of `Debug` output.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct StorePassword(pub(crate) String);

impl fmt::Debug for StorePassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<set>")
    }
}

/// Reads and opens the PKCS#12 store at `path`; `what` names it in errors.
fn open(
    path: &Path,
    password: &str,
    what: &str,
    policy: Pkcs12ImportPolicy,
) -> io::Result<KeyStore> {
    let bytes = std::fs::read(path)
        .map_err(|e| io::Error::new(e.kind(), format!("{what} {}: {e}", path.display())))?;
    if bytes.starts_with(&[0xFE, 0xED, 0xFE, 0xED]) || bytes.starts_with(&[0xCE, 0xCE, 0xCE, 0xCE])
    {
        return Err(invalid(format!(
            "{what} {} is a Java keystore (JKS), not PKCS#12: convert it (keytool \
             -importkeystore -srckeystore FILE.jks -destkeystore FILE.p12 -deststoretype PKCS12)",
            path.display()
        )));
    }
    KeyStore::from_pkcs12(&bytes, password, policy).map_err(|e| {
        let why = match e {
            // The store's MAC is keyed by the password: a mismatch is (almost always) the password.
            p12_keystore::error::Error::MacError(_) => "wrong password".to_owned(),
            other => format!("not a PKCS#12 store this client reads: {other}"),
        };
        invalid(format!("{what} {}: {why}", path.display()))
    })
}

/// The one private key of the PKCS#12 key store at `path` and its certificate chain, leaf first.
///
/// Errors naming the file when it cannot be read or opened (wrong password, not PKCS#12, a JKS
/// store), or holds no private key with its certificate, or more than one (which to show would
/// be a guess).
pub(crate) fn read_identity(
    path: &Path,
    password: &str,
) -> io::Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)> {
    const WHAT: &str = "client keystore";
    let store = open(path, password, WHAT, Pkcs12ImportPolicy::Strict)?;
    let mut keys = store.entries().filter_map(|(alias, e)| match e {
        KeyStoreEntry::PrivateKeyChain(chain) => Some((alias, chain)),
        _ => None,
    });
    let Some((alias, chain)) = keys.next() else {
        return Err(invalid(format!(
            "{WHAT} {}: no private key with its certificate in it",
            path.display()
        )));
    };
    if let Some((other, _)) = keys.next() {
        return Err(invalid(format!(
            "{WHAT} {}: more than one private key (aliases {alias:?}, {other:?}, ...): give a \
             store with the client's key only",
            path.display()
        )));
    }
    let certs: Vec<CertificateDer<'static>> = chain
        .certs()
        .iter()
        .map(|c| CertificateDer::from(c.as_der().to_vec()))
        .collect();
    if certs.is_empty() {
        return Err(invalid(format!(
            "{WHAT} {}: the private key {alias:?} has no certificate",
            path.display()
        )));
    }
    let key = PrivateKeyDer::Pkcs8(chain.key().as_der().to_vec().into());
    Ok((certs, key))
}

/// Every certificate in the PKCS#12 trust store at `path`.
///
/// Errors naming the file when it cannot be read or opened, or holds no certificate.
pub(crate) fn read_roots(path: &Path, password: &str) -> io::Result<Vec<CertificateDer<'static>>> {
    const WHAT: &str = "CA store";
    // Raw: every certificate counts, not only those Java marked as trusted (openssl-made stores
    // carry no such mark); the file was named as a trust store, as a PEM CA file would be.
    let store = open(path, password, WHAT, Pkcs12ImportPolicy::Raw)?;
    let certs: Vec<CertificateDer<'static>> = store
        .entries()
        .filter_map(|(_, e)| match e {
            KeyStoreEntry::Certificate(c) => Some(CertificateDer::from(c.as_der().to_vec())),
            _ => None,
        })
        .collect();
    if certs.is_empty() {
        return Err(invalid(format!(
            "{WHAT} {}: no certificate in it",
            path.display()
        )));
    }
    Ok(certs)
}
