//! SASL DIGEST-MD5 (RFC 2831), the client side of ZooKeeper's `DigestLoginModule` logins: the
//! mechanism is small and no maintained crate implements it, so it is written here over the
//! md-5 crate. The session (zk-core) carries the tokens; this file only computes them.
//!
//! The exchange, as the Java client runs it: an empty first token; the server's challenge
//! (realm, nonce, qop, charset, algorithm); our response with the digest of user, realm,
//! password, nonces and digest-uri `zookeeper/zk-sasl-md5`; the server's `rspauth`, which we
//! check, proving the server knew the password too. Only `qop=auth` (authentication without
//! integrity or confidentiality layers) is offered, as ZooKeeper's default.

use std::fmt;

use md5::{Digest, Md5};
use zk_core::session::{SaslClient, SaslFactory};

/// The service and server name the Java client uses for DIGEST-MD5 (its `zookeeper.sasl.client.username`
/// default and the fixed server name), giving the digest-uri `zookeeper/zk-sasl-md5`.
const DIGEST_URI: &str = "zookeeper/zk-sasl-md5";

/// Makes a DIGEST-MD5 exchange for every connection.
#[derive(Clone)]
pub(crate) struct DigestMd5Factory {
    pub(crate) user: String,
    pub(crate) password: String,
}

impl fmt::Debug for DigestMd5Factory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the password.
        f.debug_struct("DigestMd5")
            .field("user", &self.user)
            .finish()
    }
}

impl SaslFactory for DigestMd5Factory {
    // DIGEST-MD5's digest-uri names no host (`zookeeper/zk-sasl-md5`), whatever the server.
    fn start(&self, _server: &zk_core::HostAddr) -> Box<dyn SaslClient> {
        Box::new(DigestMd5 {
            user: self.user.clone(),
            password: self.password.clone(),
            cnonce: make_cnonce(),
            expected_rspauth: None,
            complete: false,
        })
    }
}

/// One DIGEST-MD5 exchange.
struct DigestMd5 {
    user: String,
    password: String,
    cnonce: String,
    /// The `rspauth` the server must send back, once our response is sent.
    expected_rspauth: Option<String>,
    complete: bool,
}

impl SaslClient for DigestMd5 {
    fn mechanism(&self) -> &str {
        "DIGEST-MD5"
    }

    fn initial(&mut self) -> Result<Vec<u8>, String> {
        Ok(Vec::new())
    }

    fn step(&mut self, challenge: &[u8]) -> Result<Option<Vec<u8>>, String> {
        let text = std::str::from_utf8(challenge)
            .map_err(|_| "the server's challenge is not UTF-8".to_owned())?;
        let fields = parse_fields(text)?;
        match &self.expected_rspauth {
            None => {
                let response = self.respond(&fields)?;
                Ok(Some(response.into_bytes()))
            }
            Some(expected) => {
                let got = field(&fields, "rspauth")
                    .ok_or_else(|| format!("the server's last token has no rspauth: {text:?}"))?;
                if got != expected {
                    return Err(
                        "the server's rspauth is wrong: it does not know the password".into(),
                    );
                }
                self.complete = true;
                Ok(None)
            }
        }
    }

    fn is_complete(&self) -> bool {
        self.complete
    }

    fn refusal_hint(&self) -> &str {
        "wrong user name or password, or no such user on the server"
    }
}

impl DigestMd5 {
    /// Our digest-response to the server's digest-challenge (RFC 2831 §2.1.2).
    fn respond(&mut self, fields: &[(String, String)]) -> Result<String, String> {
        let nonce = field(fields, "nonce").ok_or("the server's challenge has no nonce")?;
        // The first realm offered, or none (the server then uses its default).
        let realm = field(fields, "realm").unwrap_or("");
        let qops = field(fields, "qop").unwrap_or("auth");
        if !qops.split(',').any(|q| q.trim() == "auth") {
            return Err(format!(
                "the server does not offer qop=auth (it offers {qops:?}); only auth is supported"
            ));
        }
        if let Some(alg) = field(fields, "algorithm") {
            if alg != "md5-sess" {
                return Err(format!("unsupported algorithm {alg:?} (md5-sess expected)"));
            }
        }
        let utf8 = field(fields, "charset").is_some_and(|c| c.eq_ignore_ascii_case("utf-8"));
        let nc = "00000001";
        let a1_head = md5(format!("{}:{realm}:{}", self.user, self.password).as_bytes());
        let mut a1 = a1_head.to_vec();
        a1.extend_from_slice(format!(":{nonce}:{}", self.cnonce).as_bytes());
        let ha1 = hex(&md5(&a1));
        let kd = |a2: &str| {
            let ha2 = hex(&md5(a2.as_bytes()));
            hex(&md5(format!(
                "{ha1}:{nonce}:{nc}:{}:auth:{ha2}",
                self.cnonce
            )
            .as_bytes()))
        };
        let response = kd(&format!("AUTHENTICATE:{DIGEST_URI}"));
        self.expected_rspauth = Some(kd(&format!(":{DIGEST_URI}")));
        let mut out = format!(
            "username=\"{}\",realm=\"{}\",nonce=\"{}\",cnonce=\"{}\",nc={nc},qop=auth,\
             digest-uri=\"{DIGEST_URI}\",response={response}",
            quote(&self.user),
            quote(realm),
            quote(nonce),
            self.cnonce
        );
        if utf8 {
            out.push_str(",charset=utf-8");
        }
        Ok(out)
    }
}

fn md5(data: &[u8]) -> [u8; 16] {
    Md5::digest(data).into()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Escapes `"` and `\` inside a quoted-string.
fn quote(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// The value of the first field named `name`.
fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Parses `key=value,key="quoted, value",...` (RFC 2831's digest-challenge syntax).
///
/// Errors on an unterminated quoted string or a field without `=`.
fn parse_fields(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut fields = Vec::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        let eq = rest
            .find('=')
            .ok_or_else(|| format!("malformed SASL challenge {text:?}"))?;
        let key = rest[..eq].trim().to_owned();
        rest = rest[eq + 1..].trim_start();
        let value;
        if let Some(q) = rest.strip_prefix('"') {
            let mut v = String::new();
            let mut chars = q.char_indices();
            let mut end = None;
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, n)) = chars.next() {
                            v.push(n);
                        }
                    }
                    '"' => {
                        end = Some(i);
                        break;
                    }
                    c => v.push(c),
                }
            }
            let end =
                end.ok_or_else(|| format!("unterminated quote in SASL challenge {text:?}"))?;
            value = v;
            rest = q[end + 1..].trim_start();
        } else {
            let end = rest.find(',').unwrap_or(rest.len());
            value = rest[..end].trim().to_owned();
            rest = &rest[end..];
        }
        fields.push((key, value));
        rest = rest
            .trim_start()
            .strip_prefix(',')
            .unwrap_or(rest)
            .trim_start();
    }
    Ok(fields)
}

/// A client nonce: unpredictable enough without a global RNG (std's per-process random hash
/// keys, the clock and a counter), in the base64 alphabet so it needs no quoting.
fn make_cnonce() -> String {
    use base64::Engine as _;
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut bytes = Vec::with_capacity(16);
    for i in 0..2u64 {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
        h.write_u64(i);
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0),
        );
        bytes.extend_from_slice(&h.finish().to_le_bytes());
    }
    base64::engine::general_purpose::STANDARD_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 2831 §4's example, with its digest-uri, checks the arithmetic.
    #[test]
    fn rfc_2831_example() {
        let user = "chris";
        let realm = "elwood.innosoft.com";
        let nonce = "OA6MG9tEQGm2hh";
        let cnonce = "OA6MHXh6VqTrRk";
        let uri = "imap/elwood.innosoft.com";
        let mut a1 = md5(format!("{user}:{realm}:secret").as_bytes()).to_vec();
        a1.extend_from_slice(format!(":{nonce}:{cnonce}").as_bytes());
        let ha1 = hex(&md5(&a1));
        let ha2 = hex(&md5(format!("AUTHENTICATE:{uri}").as_bytes()));
        let response = hex(&md5(
            format!("{ha1}:{nonce}:00000001:{cnonce}:auth:{ha2}").as_bytes()
        ));
        assert_eq!(response, "d388dad90d4bbd760a152321f2143af7");
        let ha2 = hex(&md5(format!(":{uri}").as_bytes()));
        let rspauth = hex(&md5(
            format!("{ha1}:{nonce}:00000001:{cnonce}:auth:{ha2}").as_bytes()
        ));
        assert_eq!(rspauth, "ea40f60335c427b5527b84dbabcdfffd");
    }

    #[test]
    fn parses_a_zookeeper_challenge() {
        let f = parse_fields(
            r#"realm="zk-sasl-md5",nonce="a,b\"c",qop="auth",charset=utf-8,algorithm=md5-sess"#,
        )
        .expect("parses");
        assert_eq!(field(&f, "realm"), Some("zk-sasl-md5"));
        assert_eq!(field(&f, "nonce"), Some("a,b\"c"));
        assert_eq!(field(&f, "charset"), Some("utf-8"));
        assert_eq!(field(&f, "algorithm"), Some("md5-sess"));
        assert!(parse_fields("realm=\"open").is_err());
    }

    #[test]
    fn a_full_exchange_checks_rspauth() {
        let factory = DigestMd5Factory {
            user: "bob".into(),
            password: "secret".into(),
        };
        let mut c = factory.start(&zk_core::HostAddr {
            host: "localhost".into(),
            port: 2181,
        });
        assert_eq!(c.initial().expect("initial"), b"");
        let resp = c
            .step(br#"realm="zk-sasl-md5",nonce="n1",qop="auth",charset=utf-8,algorithm=md5-sess"#)
            .expect("response")
            .expect("a token");
        let resp = String::from_utf8(resp).expect("text");
        assert!(
            resp.contains("username=\"bob\"")
                && resp.contains("digest-uri=\"zookeeper/zk-sasl-md5\"")
        );
        assert!(
            c.step(b"rspauth=0123").is_err(),
            "a wrong rspauth is refused"
        );
        assert!(!c.is_complete());
    }
}
