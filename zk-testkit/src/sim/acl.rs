//! Identities and access control: the digest scheme's identities, the server's ACL fix-up on create
//! and setACL, permission checks, and whoAmI's view of a connection (PROTOCOL.md §8.1, §8.2, §13).
//!
//! Only the providers a default server registers exist here: `digest` (always accepts, §13.1) and
//! `ip` (every connection is `ip:127.0.0.1`). `world:anyone` is handled specially, as in Java;
//! any other scheme is unknown, so it fails auth and makes an ACL invalid.

use std::net::IpAddr;

use base64::Engine as _;
use zk_core::proto::{Acl, ClientInfo, ErrorCode, Id};

/// The address every simulated connection comes from.
pub(crate) const CLIENT_IP: &str = "127.0.0.1";

/// The identity the digest provider attaches for credentials `user:password`:
/// `user:BASE64(SHA1("user:password"))` (§8.2). Credentials without a colon digest whole, as
/// `DigestAuthenticationProvider.generateDigest` does.
pub(crate) fn digest_id(credentials: &[u8]) -> String {
    let text = String::from_utf8_lossy(credentials);
    let user = text.split(':').next().unwrap_or_default();
    let sha = sha1_smol::Sha1::from(text.as_bytes()).digest().bytes();
    format!(
        "{user}:{}",
        base64::engine::general_purpose::STANDARD.encode(sha)
    )
}

/// The identities a fresh connection has: its IP address.
pub(crate) fn connection_ids() -> Vec<Id> {
    vec![Id::new("ip", CLIENT_IP)]
}

/// Adds an identity unless the connection already has it (`ServerCnxn.addAuthInfo`).
pub(crate) fn add_id(ids: &mut Vec<Id>, id: Id) {
    if !ids.contains(&id) {
        ids.push(id);
    }
}

/// `fixupACL`: removes duplicates, expands `auth:` to the connection's authenticated identities,
/// and refuses empty lists, unknown schemes and malformed ids with InvalidACL (§8.2).
pub(crate) fn fixup(acl: &[Acl], auth: &[Id]) -> Result<Vec<Acl>, ErrorCode> {
    let mut unique: Vec<&Acl> = Vec::with_capacity(acl.len());
    for a in acl {
        if !unique.contains(&a) {
            unique.push(a);
        }
    }
    if unique.is_empty() {
        return Err(ErrorCode::InvalidAcl);
    }
    let mut out = Vec::with_capacity(unique.len());
    for a in unique {
        let id = &a.id;
        if id.scheme == "world" && id.id == "anyone" {
            out.push(a.clone());
        } else if id.scheme == "auth" {
            // Only providers that "authenticate" count: digest does, ip does not.
            let mut any = false;
            for cid in auth.iter().filter(|cid| cid.scheme == "digest") {
                any = true;
                out.push(Acl::new(a.perms, cid.clone()));
            }
            if !any {
                return Err(ErrorCode::InvalidAcl);
            }
        } else if valid_id(id) {
            out.push(a.clone());
        } else {
            return Err(ErrorCode::InvalidAcl);
        }
    }
    Ok(out)
}

/// Whether a provider exists for the scheme and accepts the id (`isValid`).
fn valid_id(id: &Id) -> bool {
    match id.scheme.as_str() {
        // Java's `id.split(":").length == 2`: split drops trailing empty strings.
        "digest" => {
            let mut parts: Vec<&str> = id.id.split(':').collect();
            while parts.last().is_some_and(|p| p.is_empty()) {
                parts.pop();
            }
            parts.len() == 2
        }
        "ip" => parse_cidr(&id.id).is_some(),
        _ => false,
    }
}

/// An address with an optional `/bits` suffix, as bytes and a prefix length.
fn parse_cidr(expr: &str) -> Option<(Vec<u8>, usize)> {
    let (addr, bits) = match expr.split_once('/') {
        Some((a, b)) => (a, Some(b)),
        None => (expr, None),
    };
    let bytes = match addr.parse::<IpAddr>().ok()? {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => v6.octets().to_vec(),
    };
    let max = bytes.len() * 8;
    let bits = match bits {
        None => max,
        Some(b) => b.parse::<usize>().ok().filter(|b| *b <= max)?,
    };
    Some((bytes, bits))
}

/// The ip provider's `matches`: the client address falls inside the ACL's network.
fn ip_matches(client: &str, acl_expr: &str) -> bool {
    let (Some((net, bits)), Ok(addr)) = (parse_cidr(acl_expr), client.parse::<IpAddr>()) else {
        return false;
    };
    let addr = match addr {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => v6.octets().to_vec(),
    };
    if addr.len() != net.len() {
        return false;
    }
    (0..bits).all(|i| {
        let (byte, bit) = (i / 8, 7 - (i % 8));
        (addr[byte] >> bit) & 1 == (net[byte] >> bit) & 1
    })
}

/// `checkACL`: true if some entry grants any bit of `perm` to one of the connection's identities.
/// An empty ACL allows everything.
pub(crate) fn allows(acl: &[Acl], auth: &[Id], perm: i32) -> bool {
    if acl.is_empty() {
        return true;
    }
    acl.iter().filter(|a| a.perms.0 & perm != 0).any(|a| {
        let id = &a.id;
        match id.scheme.as_str() {
            "world" => id.id == "anyone",
            "digest" => auth.iter().any(|c| c.scheme == "digest" && c.id == id.id),
            "ip" => auth
                .iter()
                .any(|c| c.scheme == "ip" && ip_matches(&c.id, &id.id)),
            _ => false,
        }
    })
}

/// getACL without ADMIN: digest ids come back as `user:x` (§6).
pub(crate) fn mask_digests(acl: &[Acl]) -> Vec<Acl> {
    acl.iter()
        .map(|a| {
            if a.id.scheme == "digest" {
                let user = a.id.id.split(':').next().unwrap_or_default();
                Acl::new(a.perms, Id::new("digest", format!("{user}:x")))
            } else {
                a.clone()
            }
        })
        .collect()
}

/// whoAmI's answer: one entry per identity, digest ids reduced to the user name (§13.2).
pub(crate) fn client_info(auth: &[Id]) -> Vec<ClientInfo> {
    auth.iter()
        .map(|id| ClientInfo {
            auth_scheme: id.scheme.clone(),
            user: if id.scheme == "digest" {
                id.id.split(':').next().unwrap_or_default().to_owned()
            } else {
                id.id.clone()
            },
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use zk_core::proto::Perms;

    use super::*;

    #[test]
    fn digest_matches_zookeeper() {
        // `DigestAuthenticationProvider.generateDigest("super:test")`, from ZooKeeper's docs.
        assert_eq!(
            digest_id(b"super:test"),
            "super:D/InIHSb7yEEbrWz8b9l71RjZJU="
        );
        assert_eq!(digest_id(b"user:secret").split(':').next(), Some("user"));
    }

    #[test]
    fn fixup_dedups_expands_and_refuses() {
        let open = Acl::open_unsafe();
        let twice = [open[0].clone(), open[0].clone()];
        assert_eq!(fixup(&twice, &[]).unwrap(), open);
        assert_eq!(fixup(&[], &[]), Err(ErrorCode::InvalidAcl));
        assert_eq!(
            fixup(&Acl::creator_all(), &connection_ids()),
            Err(ErrorCode::InvalidAcl)
        );
        let mut ids = connection_ids();
        add_id(&mut ids, Id::new("digest", digest_id(b"u:p")));
        let expanded = fixup(&Acl::creator_all(), &ids).unwrap();
        assert_eq!(expanded, vec![Acl::new(Perms::ALL, ids[1].clone())]);
        for bad in [
            ("world", "x"),
            ("nosuch", "x"),
            ("digest", "nocolon"),
            ("ip", "1.2.3"),
        ] {
            let acl = [Acl::new(Perms::ALL, Id::new(bad.0, bad.1))];
            assert_eq!(fixup(&acl, &ids), Err(ErrorCode::InvalidAcl), "{bad:?}");
        }
        assert!(fixup(&[Acl::new(Perms::READ, Id::new("ip", "10.0.0.0/8"))], &[]).is_ok());
    }

    #[test]
    fn checks_match_world_digest_and_ip() {
        let ids = vec![Id::new("ip", CLIENT_IP), Id::new("digest", "u:h")];
        let acl = |s: &str, i: &str, p: Perms| vec![Acl::new(p, Id::new(s, i))];
        assert!(allows(&acl("world", "anyone", Perms::READ), &[], 1));
        assert!(!allows(&acl("world", "anyone", Perms::READ), &[], 2));
        assert!(allows(&acl("digest", "u:h", Perms::ALL), &ids, 16));
        assert!(!allows(&acl("digest", "u:z", Perms::ALL), &ids, 16));
        assert!(allows(&acl("ip", "127.0.0.0/8", Perms::ALL), &ids, 1));
        assert!(!allows(&acl("ip", "10.0.0.1", Perms::ALL), &ids, 1));
        assert!(allows(&[], &[], 31));
        assert_eq!(
            mask_digests(&acl("digest", "u:h", Perms::ALL))[0].id.id,
            "u:x"
        );
        assert_eq!(client_info(&ids)[1].user, "u");
    }
}
