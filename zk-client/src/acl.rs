//! ACL helpers, kazoo's `make_acl` and `make_digest_acl`: build an ACL entry from permission
//! flags, and the `digest` scheme's id from a user name and password, as the server computes it
//! (`user:base64(sha1("user:password"))`) so a node can be locked to a user before that user ever
//! connects.

use base64::Engine as _;
use zk_core::proto::{Acl, Id, Perms};

/// One ACL entry granting `perms` to `id` in `scheme` (kazoo's `make_acl`), e.g.
/// `make_acl("ip", "10.0.0.0/8", Perms::READ)`.
pub fn make_acl(scheme: &str, id: &str, perms: Perms) -> Acl {
    Acl::new(perms, Id::new(scheme, id))
}

/// The `digest` scheme's id for `user` with `password`: `user:base64(sha1("user:password"))`
/// (kazoo's `make_digest_acl_credential`, ZooKeeper's `DigestAuthenticationProvider.generateDigest`).
pub fn make_digest_acl_credential(user: &str, password: &str) -> String {
    let hash = sha1_smol::Sha1::from(format!("{user}:{password}"))
        .digest()
        .bytes();
    format!(
        "{user}:{}",
        base64::engine::general_purpose::STANDARD.encode(hash)
    )
}

/// An ACL entry granting `perms` to the digest user `user` with `password` (kazoo's
/// `make_digest_acl`). The connection that should have those rights authenticates with
/// `add_auth("digest", "user:password")` or the builder's `.digest(user, password)`.
pub fn make_digest_acl(user: &str, password: &str, perms: Perms) -> Acl {
    make_acl("digest", &make_digest_acl_credential(user, password), perms)
}

/// An ACL entry granting `perms` to clients from `address`, an IP address or a CIDR block
/// (`10.0.0.0/8`): the `ip` scheme.
pub fn make_ip_acl(address: &str, perms: Perms) -> Acl {
    make_acl("ip", address, perms)
}

/// An ACL entry granting `perms` to clients whose TLS client certificate has the subject
/// `subject`, as the server's X509AuthenticationProvider writes it (Java's
/// `X500Principal.getName()`, RFC 2253: `CN=app,O=Example`): the `x509` scheme. The client
/// authenticates by showing that certificate ([`TlsConfig::client_cert`](crate::TlsConfig::client_cert)).
pub fn make_x509_acl(subject: &str, perms: Perms) -> Acl {
    make_acl("x509", subject, perms)
}

/// An ACL entry granting `perms` to the SASL user `user` (the authorization id of a DIGEST-MD5
/// or Kerberos login): the `sasl` scheme. For DIGEST-MD5 it is the user name; for Kerberos the
/// principal as the server maps it, by default `app@EXAMPLE.COM` for `app@EXAMPLE.COM` and
/// `svc/host@EXAMPLE.COM` for `svc/host@EXAMPLE.COM` (the server's
/// `zookeeper.kerberos.removeHostFromPrincipal` / `removeRealmFromPrincipal` shorten it;
/// `whoami` shows it).
pub fn make_sasl_acl(user: &str, perms: Perms) -> Acl {
    make_acl("sasl", user, perms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_matches_zookeepers_generate_digest() {
        // From ZooKeeper's DigestAuthenticationProvider: `super:test` hashes to this (its docs'
        // example, also kazoo's test vector).
        assert_eq!(
            make_digest_acl_credential("super", "test"),
            "super:D/InIHSb7yEEbrWz8b9l71RjZJU="
        );
        let acl = make_digest_acl("super", "test", Perms::READ | Perms::WRITE);
        assert_eq!(acl.id.scheme, "digest");
        assert_eq!(acl.perms, Perms(3));
    }
}
