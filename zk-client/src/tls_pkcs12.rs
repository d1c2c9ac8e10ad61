//! PKCS#12 key and trust stores for [`TlsConfig`](crate::TlsConfig) (feature `pkcs12`): the
//! form Java services keep their ZooKeeper certificates in (`zookeeper.ssl.keyStore.type=PKCS12`,
//! the default store type since Java 9). p12-keystore reads them, in pure Rust: Java's AES-256
//! stores with an HMAC-SHA-256 integrity check, and the older 3DES/RC2 ones.

use std::fmt;
use std::io;
use std::path::Path;

use p12_keystore::error::Error as P12Error;
use p12_keystore::{KeyStore, KeyStoreEntry, Pkcs12ImportPolicy};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::tls::{invalid, java_keystore_refusal, read_named, KEYSTORE, TRUSTSTORE};

/// A store's password, kept out of `Debug` output.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct StorePassword(pub(crate) String);

impl fmt::Debug for StorePassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<set>")
    }
}

/// Opens the PKCS#12 store in `bytes` (read from `path`; `what` names it in errors).
fn open(
    bytes: &[u8],
    path: &Path,
    password: &str,
    what: &str,
    policy: Pkcs12ImportPolicy,
) -> io::Result<KeyStore> {
    if let Some(refusal) = java_keystore_refusal(bytes, path, what) {
        return Err(refusal);
    }
    KeyStore::from_pkcs12(bytes, password, policy).map_err(|e| {
        let none = if password.is_empty() {
            " (no password was given)"
        } else {
            ""
        };
        let why = match e {
            // The store's MAC is keyed by the password: a mismatch is (almost always) the password.
            P12Error::MacError(_) => format!("wrong password{none}"),
            // A store without a MAC, or whose bags have a password of their own, fails here.
            P12Error::Pkcs5Error(_) | P12Error::UnpadError => {
                format!("cannot decrypt it (wrong password?){none}")
            }
            other => format!("not a PKCS#12 store this client reads: {other}"),
        };
        invalid(format!("{what} {}: {why}", path.display()))
    })
}

/// Whether `store` holds a private key (with or without the certificate naming it).
fn has_keys(store: &KeyStore) -> bool {
    store
        .entries()
        .any(|(_, e)| matches!(e, KeyStoreEntry::PrivateKeyChain(_)))
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
    identity_from(&read_named(path, KEYSTORE)?, path, password)
}

fn identity_from(
    bytes: &[u8],
    path: &Path,
    password: &str,
) -> io::Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)> {
    // Strict: a key counts only with the certificate that names it (its local key id).
    let store = open(bytes, path, password, KEYSTORE, Pkcs12ImportPolicy::Strict)?;
    let mut keys = store.entries().filter_map(|(alias, e)| match e {
        KeyStoreEntry::PrivateKeyChain(chain) => Some((alias, chain)),
        _ => None,
    });
    let Some((alias, chain)) = keys.next() else {
        return Err(invalid(format!(
            "{KEYSTORE} {}: no private key with its certificate in it",
            path.display()
        )));
    };
    if let Some((other, _)) = keys.next() {
        return Err(invalid(format!(
            "{KEYSTORE} {}: more than one private key (aliases {alias:?}, {other:?}, ...): give a \
             store with the client's key only",
            path.display()
        )));
    }
    let certs = chain
        .certs()
        .iter()
        .map(|c| CertificateDer::from(c.as_der().to_vec()))
        .collect();
    let key = PrivateKeyDer::Pkcs8(chain.key().as_der().to_vec().into());
    Ok((certs, key))
}

/// The trusted certificates of the PKCS#12 trust store at `path`: those Java marks as trusted
/// (`keytool -importcert`), or, in a store with neither such marks nor keys (a CA bundle from
/// `openssl pkcs12 -export -nokeys`), every certificate. A key's own chain is never trusted, so a
/// key store named as the trust store by mistake trusts nothing (as in Java) rather than the
/// client's own certificate. Certificates with the same name (alias, else subject) count once.
///
/// Errors naming the file when it cannot be read or opened, or holds no trusted certificate.
pub(crate) fn read_roots(path: &Path, password: &str) -> io::Result<Vec<CertificateDer<'static>>> {
    roots_from(&read_named(path, TRUSTSTORE)?, path, password)
}

fn roots_from(
    bytes: &[u8],
    path: &Path,
    password: &str,
) -> io::Result<Vec<CertificateDer<'static>>> {
    let certs = |store: &KeyStore| -> Vec<CertificateDer<'static>> {
        store
            .entries()
            .filter_map(|(_, e)| match e {
                KeyStoreEntry::Certificate(c) => Some(CertificateDer::from(c.as_der().to_vec())),
                _ => None,
            })
            .collect()
    };
    let strict = open(
        bytes,
        path,
        password,
        TRUSTSTORE,
        Pkcs12ImportPolicy::Strict,
    )?;
    let mut trusted = certs(&strict);
    let keyed = has_keys(&strict);
    if trusted.is_empty() && !keyed {
        let raw = open(bytes, path, password, TRUSTSTORE, Pkcs12ImportPolicy::Raw)?;
        if !has_keys(&raw) {
            trusted = certs(&raw);
        }
    }
    if trusted.is_empty() {
        let hint = if keyed {
            " (it holds a private key: is it the key store?)"
        } else {
            ""
        };
        return Err(invalid(format!(
            "{TRUSTSTORE} {}: no trusted certificate in it{hint}",
            path.display()
        )));
    }
    Ok(trusted)
}

#[cfg(test)]
mod tests {
    use p12_keystore::{Certificate, LocalKeyId, PrivateKey, PrivateKeyChain};
    use rustls::pki_types::pem::PemObject;

    use super::*;

    /// A CA, a client certificate it signed and the client's key (EC P-256, valid until 2126),
    /// made with openssl for these tests.
    const CA: &str = concat!(
        "-----BEGIN CERTIFICATE-----\n",
        "MIIBgTCCASegAwIBAgIUFktR7DVS78lFD9g24eeqJrwrN/UwCgYIKoZIzj0EAwIw\n",
        "FTETMBEGA1UEAwwKZml4dHVyZS1jYTAgFw0yNjEyMDMxNTU3MzNaGA8yMTI2MTEw\n",
        "OTE1NTczM1owFTETMBEGA1UEAwwKZml4dHVyZS1jYTBZMBMGByqGSM49AgEGCCqG\n",
        "SM49AwEHA0IABCdFQcEFOAcpWt68iK5vROv5rM1R/h08/LmPkBQZbomxKXffshdP\n",
        "aoOTASWlFRyu55BGtxOcrWSa+TLQmCtJ9RejUzBRMB0GA1UdDgQWBBROYMTZ+hEG\n",
        "vnft/PoUpTYORUetEjAfBgNVHSMEGDAWgBROYMTZ+hEGvnft/PoUpTYORUetEjAP\n",
        "BgNVHRMBAf8EBTADAQH/MAoGCCqGSM49BAMCA0gAMEUCIDyMvVo2RbLiAScdqOeA\n",
        "IyThtujpxo7QMsvLQjEAhVVjAiEAvLE4fu/ZDi+uOQwDLXIpa4R3E313QyARADCT\n",
        "Gz7vUSI=\n",
        "-----END CERTIFICATE-----\n",
    );
    const CLIENT: &str = concat!(
        "-----BEGIN CERTIFICATE-----\n",
        "MIIBKzCB0QIUQadkNDEuC+OIKF97nGpHcFbEVYwwCgYIKoZIzj0EAwIwFTETMBEG\n",
        "A1UEAwwKZml4dHVyZS1jYTAgFw0yNjEyMDMxNTU3MzNaGA8yMTI2MTEwOTE1NTcz\n",
        "M1owGTEXMBUGA1UEAwwOZml4dHVyZS1jbGllbnQwWTATBgcqhkjOPQIBBggqhkjO\n",
        "PQMBBwNCAATyhgY84U2iIQ4Oq7ebVQa+7DXohCr99SBLn0Qjx5i5VgE7JYm0UqBB\n",
        "FWe6tKbgX5qhY/bagMqivOwWpddFyYZYMAoGCCqGSM49BAMCA0kAMEYCIQCQTbxn\n",
        "Ln0TdgqGtLXhEU0sTEAyLy08O6pTYbC2AA8g7QIhAM0TNVwrl/Q21Z64OEzgbmWj\n",
        "STh1gUPXEGJ60pMEzINM\n",
        "-----END CERTIFICATE-----\n",
    );
    const CLIENT_KEY: &str = concat!(
        "-----BEGIN PRIVATE KEY-----\n",
        "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgEovkSiIiGq+qWJnA\n",
        "qM2hqfHMjIAjQcNG7hLcBpAGQVOhRANCAATyhgY84U2iIQ4Oq7ebVQa+7DXohCr9\n",
        "9SBLn0Qjx5i5VgE7JYm0UqBBFWe6tKbgX5qhY/bagMqivOwWpddFyYZY\n",
        "-----END PRIVATE KEY-----\n",
    );
    /// `openssl pkcs12 -export -nokeys -in CA` with password `bundlepass`: no Java trust marks.
    const OPENSSL_CA_BUNDLE: &str = concat!(
        "MIICpwIBAzCCAl0GCSqGSIb3DQEHAaCCAk4EggJKMIICRjCCAkIGCSqGSIb3DQEHBqCCAjMwggIvAgEA",
        "MIICKAYJKoZIhvcNAQcBMFcGCSqGSIb3DQEFDTBKMCkGCSqGSIb3DQEFDDAcBAguK+ZW+oFK7AICCAAw",
        "DAYIKoZIhvcNAgkFADAdBglghkgBZQMEASoEELoawOPCTkjqLBBn8JHg0pGAggHApZ3Kc8sMdQpTTkm4",
        "SYAnHJbMk+EXt5xjHb/be+AFWuwntuPdMZhRZn9HKkO2dbG2rZ3dp3xQPFvMEEld4CLelowfIjvHNQWW",
        "f+bUzGh1m4CPvO/8LPiXeF4KgDAXtIHb0ry5aVYhc5M+ATwnu+3hG7OD7+z7Jj1QDsimJwDtaLAgU6uf",
        "DpIx7cIRufVd04eEWUjgpc5pxEAQJNz6AJ5vnRjbFfmjZ9mKP+uO0LcTC9vMaM1GMyjbuDP94mNYnWIq",
        "gSxWAw3eJVn2QMyxFMwCLp+cs4etAQLBhNcrLKJBy/aI4PTpGoCNG1CcM2uOrEZKtrhD1X0xgXFmHj5N",
        "psleBBf0TBbbV9Ovmb8mD1miCHezLIaA+1Ok23dWdDFVxRWHIy4wDX6eevFhnX5v7kJkP+BeoNZ6oxH/",
        "XZGyxo8qeU6zfvnABtIb0e6r96DmqYs2XuHECSUx8FvzxuZlkarkpO43CFOXfhC8JJ0PxSDdx7nY/F1i",
        "WXvTWWT73GqJptVdbWOQtiagq1KCLoClNXj+RqjB+ozfgBMf/X1gqqpC9SEOEgiscEwmoGEbpEbFm2jN",
        "+y4w2knmz0C7H8U59MTfgzBBMDEwDQYJYIZIAWUDBAIBBQAEIEKFY0zWXun2lpPn5nBkZ7hTzSaNFHaq",
        "ddmkpn8lVvTFBAhFjpqAK8/QpwICCAA=",
    );

    fn cert(pem: &str) -> Certificate {
        let der = CertificateDer::from_pem_slice(pem.as_bytes()).expect("fixture PEM");
        Certificate::from_der(der.as_ref()).expect("fixture certificate")
    }

    fn client_chain(id: u8) -> KeyStoreEntry {
        let der = PrivateKeyDer::from_pem_slice(CLIENT_KEY.as_bytes()).expect("fixture key");
        let key = PrivateKey::from_der(der.secret_der()).expect("fixture PKCS#8 key");
        KeyStoreEntry::PrivateKeyChain(PrivateKeyChain::new(
            LocalKeyId(vec![id]),
            key,
            [cert(CLIENT), cert(CA)],
        ))
    }

    /// A store (as p12-keystore writes it: AES-256, HMAC-SHA-256) with `entries`.
    fn store(entries: Vec<(&str, KeyStoreEntry)>, password: &str) -> Vec<u8> {
        let mut ks = KeyStore::new();
        for (alias, e) in entries {
            ks.add_entry(alias, e);
        }
        ks.writer(password)
            .write()
            .expect("writing a fixture store")
    }

    fn path() -> &'static Path {
        Path::new("/etc/zk/store.p12")
    }

    fn message(e: io::Error) -> String {
        e.to_string()
    }

    #[test]
    fn a_key_store_gives_its_key_and_chain_leaf_first() {
        let bytes = store(vec![("client", client_chain(1))], "storepass");
        let (chain, key) = identity_from(&bytes, path(), "storepass").expect("opens");
        assert_eq!(chain.len(), 2);
        assert_eq!(chain[0].as_ref(), cert(CLIENT).as_der());
        assert_eq!(chain[1].as_ref(), cert(CA).as_der());
        assert!(matches!(key, PrivateKeyDer::Pkcs8(_)));
    }

    #[test]
    fn a_wrong_or_missing_password_is_named() {
        let bytes = store(vec![("client", client_chain(1))], "storepass");
        let e = message(identity_from(&bytes, path(), "nope").unwrap_err());
        assert!(
            e.contains("wrong password") && e.contains("store.p12"),
            "{e}"
        );
        let e = message(identity_from(&bytes, path(), "").unwrap_err());
        assert!(e.contains("no password was given"), "{e}");
    }

    #[test]
    fn a_key_store_needs_exactly_one_key() {
        let two = store(
            vec![("a", client_chain(1)), ("b", client_chain(2))],
            "storepass",
        );
        let e = message(identity_from(&two, path(), "storepass").unwrap_err());
        assert!(e.contains("more than one private key"), "{e}");
        let none = store(
            vec![("ca", KeyStoreEntry::Certificate(cert(CA)))],
            "storepass",
        );
        let e = message(identity_from(&none, path(), "storepass").unwrap_err());
        assert!(e.contains("no private key"), "{e}");
    }

    #[test]
    fn a_trust_store_trusts_its_marked_certificates_only() {
        let trust = store(
            vec![("ca", KeyStoreEntry::Certificate(cert(CA)))],
            "trustpass",
        );
        let roots = roots_from(&trust, path(), "trustpass").expect("opens");
        assert_eq!(roots.len(), 1);
        assert_eq!(roots[0].as_ref(), cert(CA).as_der());
        // A key store named as the trust store: its key's chain is not trusted.
        let keys = store(vec![("client", client_chain(1))], "trustpass");
        let e = message(roots_from(&keys, path(), "trustpass").unwrap_err());
        assert!(
            e.contains("no trusted certificate") && e.contains("private key"),
            "{e}"
        );
        // Both in one store: only the marked certificate.
        let both = store(
            vec![
                ("client", client_chain(1)),
                ("ca", KeyStoreEntry::Certificate(cert(CA))),
            ],
            "trustpass",
        );
        let roots = roots_from(&both, path(), "trustpass").expect("opens");
        assert_eq!(roots.len(), 1);
        assert_eq!(roots[0].as_ref(), cert(CA).as_der());
    }

    #[test]
    fn an_openssl_ca_bundle_without_trust_marks_is_trusted_whole() {
        use base64::Engine as _;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(OPENSSL_CA_BUNDLE)
            .expect("fixture base64");
        let roots = roots_from(&bytes, path(), "bundlepass").expect("opens");
        assert_eq!(roots.len(), 1);
        assert_eq!(roots[0].as_ref(), cert(CA).as_der());
    }

    #[test]
    fn other_files_are_refused_with_their_cause() {
        let e = message(identity_from(&[0xFE, 0xED, 0xFE, 0xED, 0, 0], path(), "x").unwrap_err());
        assert!(e.contains("Java keystore") && e.contains("keytool"), "{e}");
        let e = message(roots_from(b"-----BEGIN CERTIFICATE-----", path(), "x").unwrap_err());
        assert!(e.contains("not a PKCS#12 store"), "{e}");
        let e = message(roots_from(&[0x30, 0x03, 0x02, 0x01], path(), "x").unwrap_err());
        assert!(e.contains("not a PKCS#12 store"), "{e}");
    }
}
