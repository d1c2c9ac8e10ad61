//! TLS and SASL for `zk`, configured the way zkCli.sh is: `-client-configuration FILE` (a Java
//! properties file with `zookeeper.client.secure`, `zookeeper.ssl.*` and `zookeeper.sasl.*`
//! keys), `-Dkey=value` for the same keys, and a JAAS file (`-Djava.security.auth.login.config=FILE`
//! or `--jaas FILE`) whose `Client` section holds DigestLoginModule credentials or a
//! Krb5LoginModule keytab and principal (Kerberos, when built with the `gssapi` feature); plus
//! short flags (`--tls-ca`, `--tls-cert`, `--tls-key`) for the common case.
//!
//! Keystores and truststores are PEM (`ssl.*.type=PEM`, or a `.pem`/`.crt`/`.key` file) or
//! PKCS#12 (`ssl.*.type=PKCS12`, or a `.p12`/`.pfx` file), opened with `ssl.*.password` or the
//! password in the file `ssl.*.passwordPath` names (which wins, as in ZooKeeper's Java client); a
//! JKS store is refused with the command that converts it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use zk_tokio::TlsConfig;

use crate::error::CliError;

/// The security options given on the command line, before files are read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecurityOpts {
    /// `-client-configuration FILE`.
    pub client_config: Option<PathBuf>,
    /// `-Dkey=value` properties, later ones winning (and over the configuration file).
    pub properties: Vec<(String, String)>,
    /// `--jaas FILE` (same as `-Djava.security.auth.login.config=FILE`).
    pub jaas: Option<PathBuf>,
    /// `--tls-ca FILE`: trust this CA (PEM) and turn TLS on.
    pub tls_ca: Option<PathBuf>,
    /// `--tls-cert FILE`: the client certificate (PEM); needs `--tls-key`.
    pub tls_cert: Option<PathBuf>,
    /// `--tls-key FILE`: the client certificate's key (PEM).
    pub tls_key: Option<PathBuf>,
}

/// What the client connects with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Security {
    /// TLS, when on.
    pub tls: Option<TlsConfig>,
    /// The SASL login a JAAS `Client` section asks for.
    pub sasl: Option<Sasl>,
}

/// A SASL login from a JAAS `Client` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sasl {
    /// DigestLoginModule: DIGEST-MD5 as this user with this password.
    Digest {
        /// `username`.
        user: String,
        /// `password`.
        password: String,
    },
    /// Krb5LoginModule: Kerberos (SASL GSSAPI).
    Kerberos(KerberosLogin),
}

/// What a JAAS `Krb5LoginModule` section and the `zookeeper.*` properties say about a Kerberos
/// login.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KerberosLogin {
    /// `principal`: the client principal (default: the cache's or keytab's default one).
    pub principal: Option<String>,
    /// `keyTab` (with `useKeyTab`, default true when a keytab is named): the client keytab.
    pub keytab: Option<PathBuf>,
    /// `useTicketCache=true`: tickets may come from (and go to) the user's credential cache; else
    /// a keytab login keeps its tickets in memory, as Java's login module does.
    pub use_ticket_cache: bool,
    /// `zookeeper.sasl.client.username`: the service part of the server principal.
    pub service: Option<String>,
    /// `zookeeper.server.principal`: the whole server principal.
    pub server_principal: Option<String>,
    /// `zookeeper.server.realm`: the server principal's realm.
    pub server_realm: Option<String>,
}

impl KerberosLogin {
    /// The client's Kerberos settings.
    #[cfg(feature = "gssapi")]
    pub fn config(&self) -> zk_tokio::KerberosConfig {
        let mut c = zk_tokio::KerberosConfig::new();
        if let Some(p) = &self.principal {
            c = c.client_principal(p);
        }
        if let Some(s) = &self.service {
            c = c.service_name(s);
        }
        if let Some(p) = &self.server_principal {
            c = c.server_principal(p);
        }
        if let Some(r) = &self.server_realm {
            c = c.server_realm(r);
        }
        c
    }

    /// Points this process's Kerberos library at the keytab: MIT krb5 takes the client keytab
    /// (`KRB5_CLIENT_KTNAME`) and the credential cache (`KRB5CCNAME`) from the environment
    /// only. Without `useTicketCache=true` the tickets go to a private in-memory cache, so the
    /// user's own cache is neither used nor overwritten.
    ///
    /// Must run before the process starts any thread (it changes the environment, which other
    /// threads' C code may be reading): `zk` calls it first thing.
    pub fn export_env(&self) {
        if let Some(keytab) = &self.keytab {
            std::env::set_var("KRB5_CLIENT_KTNAME", format!("FILE:{}", keytab.display()));
            if !self.use_ticket_cache {
                std::env::set_var("KRB5CCNAME", "MEMORY:zk-cli");
            }
        }
    }
}

impl SecurityOpts {
    /// Reads the configuration and JAAS files and works out TLS and SASL.
    ///
    /// Errors with a usage error naming the file or key that is unreadable, malformed or
    /// unsupported (a JKS store, a JAAS login module other than DigestLoginModule,
    /// `--tls-cert` without `--tls-key`, a `passwordPath` file that cannot be read as UTF-8).
    pub fn resolve(&self) -> Result<Security, CliError> {
        let mut props: HashMap<String, String> = HashMap::new();
        if let Some(file) = &self.client_config {
            let text = std::fs::read_to_string(file).map_err(|e| {
                CliError::bad_input(format!("-client-configuration {}: {e}", file.display()))
            })?;
            props.extend(parse_properties(&text));
        }
        props.extend(self.properties.iter().cloned());
        let get = |k: &str| props.get(k).map(|v| v.trim().to_owned());
        let is_true = |k: &str| get(k).is_some_and(|v| v.eq_ignore_ascii_case("true"));
        let is_false = |k: &str| get(k).is_some_and(|v| v.eq_ignore_ascii_case("false"));

        let secure = is_true("zookeeper.client.secure") || self.tls_ca.is_some();
        let tls = if secure {
            let mut t = TlsConfig::new();
            let mut pkcs12_identity = false;
            let key_password = store_password(&get, "keyStore")?;
            match (&self.tls_ca, get("zookeeper.ssl.trustStore.location")) {
                (Some(ca), _) => t = t.ca_file(ca),
                (None, Some(loc)) if !loc.is_empty() => {
                    let loc = PathBuf::from(loc);
                    t = match store_kind(&loc, get("zookeeper.ssl.trustStore.type"), "trustStore")?
                    {
                        Store::Pem => t.ca_file(loc),
                        Store::Pkcs12 => {
                            let pw = store_password(&get, "trustStore")?.unwrap_or_default();
                            t.ca_pkcs12(loc, pw)
                        }
                    };
                }
                // No trust store: the platform's CAs, as Java's default trust store would be.
                _ => t = t.platform_roots(),
            }
            match (&self.tls_cert, &self.tls_key) {
                (Some(cert), Some(key)) => t = t.client_cert(cert, key),
                (Some(_), None) | (None, Some(_)) => {
                    return Err(CliError::bad_input(
                        "--tls-cert and --tls-key go together (the certificate and its key)",
                    ))
                }
                (None, None) => {
                    if let Some(loc) =
                        get("zookeeper.ssl.keyStore.location").filter(|l| !l.is_empty())
                    {
                        let loc = PathBuf::from(loc);
                        let pw = key_password.clone();
                        t = match store_kind(&loc, get("zookeeper.ssl.keyStore.type"), "keyStore")?
                        {
                            Store::Pem => t.client_keystore_pem(loc),
                            Store::Pkcs12 => {
                                pkcs12_identity = true;
                                t.client_keystore_pkcs12(loc, pw.unwrap_or_default())
                            }
                        };
                    }
                }
            }
            // The password of an encrypted PEM key (a PKCS#12 store took its own above).
            if let Some(pw) = key_password.filter(|p| !p.is_empty()) {
                if !pkcs12_identity {
                    t = t.client_key_password(pw);
                }
            }
            if is_false("zookeeper.ssl.hostnameVerification") {
                t = t.verify_hostname(false);
            }
            Some(t)
        } else {
            None
        };

        let jaas = self
            .jaas
            .clone()
            .or_else(|| get("java.security.auth.login.config").map(PathBuf::from));
        let sasl = match jaas {
            Some(file) if !is_false("zookeeper.sasl.client") => {
                let section = get("zookeeper.sasl.clientconfig").unwrap_or_else(|| "Client".into());
                read_jaas(&file, &section)?
            }
            _ => None,
        };
        let sasl = match sasl {
            Some(Sasl::Kerberos(k)) => Some(Sasl::Kerberos(KerberosLogin {
                service: get("zookeeper.sasl.client.username").filter(|s| !s.is_empty()),
                server_principal: get("zookeeper.server.principal").filter(|s| !s.is_empty()),
                server_realm: get("zookeeper.server.realm").filter(|s| !s.is_empty()),
                ..k
            })),
            other => other,
        };
        Ok(Security { tls, sasl })
    }
}

/// The password of the `what` store (`keyStore` or `trustStore`): the contents of the file
/// `zookeeper.ssl.{what}.passwordPath` names when that is set and not empty (without one trailing
/// line separator, `\n`, or `\r\n` on Windows, as Java's client reads it; an empty file is an
/// empty password), else `zookeeper.ssl.{what}.password`; `None` if neither is set.
///
/// Errors naming the key and the file when the file cannot be read or is not UTF-8 (Java would
/// replace the bad bytes and then fail on a wrong password).
fn store_password(
    get: &dyn Fn(&str) -> Option<String>,
    what: &str,
) -> Result<Option<String>, CliError> {
    let key = format!("zookeeper.ssl.{what}.passwordPath");
    let Some(path) = get(&key).filter(|p| !p.is_empty()) else {
        return Ok(get(&format!("zookeeper.ssl.{what}.password")));
    };
    let text = std::fs::read_to_string(&path)
        .map_err(|e| CliError::bad_input(format!("{key} {path}: {e}")))?;
    let separator = if cfg!(windows) { "\r\n" } else { "\n" };
    let password = text.strip_suffix(separator).unwrap_or(&text);
    Ok(Some(password.to_owned()))
}

/// The forms of key and trust store `zk` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Store {
    Pem,
    Pkcs12,
}

/// The form of the store at `path`: its declared `ssl.*.type` (an empty one counts as unset),
/// else its extension (`.pem`, `.crt`, `.key`: PEM; `.p12`, `.pfx`, `.pkcs12`: PKCS12; `.jks`),
/// else its first bytes (a DER SEQUENCE: PKCS12; a Java keystore's magic number: JKS; otherwise,
/// or if it cannot be read now, PEM: the connection reports an unreadable file). Refuses JKS and
/// other types, saying how to convert them.
fn store_kind(path: &Path, declared: Option<String>, what: &str) -> Result<Store, CliError> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let kind = match declared.filter(|d| !d.is_empty()) {
        Some(d) => d.to_ascii_uppercase(),
        None => match ext.as_str() {
            "jks" => "JKS".into(),
            "p12" | "pfx" | "pkcs12" => "PKCS12".into(),
            "pem" | "crt" | "cer" | "key" => "PEM".into(),
            _ => sniff(path).into(),
        },
    };
    match kind.as_str() {
        "PEM" => Ok(Store::Pem),
        "PKCS12" => Ok(Store::Pkcs12),
        _ => Err(CliError::bad_input(format!(
            "zookeeper.ssl.{what} {}: type {kind} is not supported, only PEM and PKCS12; \
             convert it: keytool -importkeystore -srckeystore FILE.jks -destkeystore FILE.p12 \
             -deststoretype PKCS12",
            path.display()
        ))),
    }
}

/// The store type the first bytes of the file at `path` say.
fn sniff(path: &Path) -> &'static str {
    use std::io::Read as _;
    let mut head = [0u8; 4];
    let n = std::fs::File::open(path)
        .and_then(|mut f| f.read(&mut head))
        .unwrap_or(0);
    match &head[..n] {
        [0xFE, 0xED, 0xFE, 0xED] | [0xCE, 0xCE, 0xCE, 0xCE] => "JKS",
        [0x30, ..] => "PKCS12",
        _ => "PEM",
    }
}

/// Java properties: `key=value` or `key: value` lines, `#` and `!` comments, a trailing `\`
/// continuing a line.
fn parse_properties(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut pending = String::new();
    for raw in text.lines() {
        let line = raw.trim_start();
        if pending.is_empty() && (line.is_empty() || line.starts_with('#') || line.starts_with('!'))
        {
            continue;
        }
        if let Some(cont) = line.strip_suffix('\\') {
            pending.push_str(cont);
            continue;
        }
        pending.push_str(line);
        let full = std::mem::take(&mut pending);
        let split = full.find(['=', ':']).unwrap_or(full.len());
        let key = full[..split].trim().to_owned();
        let value = full.get(split + 1..).unwrap_or("").trim().to_owned();
        if !key.is_empty() {
            out.push((key, value));
        }
    }
    out
}

/// The login of the JAAS section `section` in `file`: DigestLoginModule's `username` and
/// `password`, or Krb5LoginModule's `principal` and `keyTab`; `None` if the file has no such
/// section (then no SASL, as in Java).
///
/// Errors when the file cannot be read, or the section uses another login module or lacks a
/// DIGEST-MD5 user name or password.
fn read_jaas(file: &Path, section: &str) -> Result<Option<Sasl>, CliError> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| CliError::bad_input(format!("JAAS file {}: {e}", file.display())))?;
    let Some(body) = jaas_section(&text, section) else {
        return Ok(None);
    };
    if body.contains("Krb5LoginModule") {
        let options = jaas_options(body);
        let flag = |k: &str| options.get(k).map(|v| v.eq_ignore_ascii_case("true"));
        let keytab = options
            .get("keyTab")
            .filter(|k| !k.is_empty() && flag("useKeyTab") != Some(false))
            .map(PathBuf::from);
        return Ok(Some(Sasl::Kerberos(KerberosLogin {
            principal: options.get("principal").cloned().filter(|p| !p.is_empty()),
            keytab,
            use_ticket_cache: flag("useTicketCache") == Some(true),
            ..KerberosLogin::default()
        })));
    }
    if !body.contains("DigestLoginModule") {
        return Err(CliError::bad_input(format!(
            "JAAS file {}: section {section} uses neither DigestLoginModule nor \
             Krb5LoginModule; only SASL DIGEST-MD5 and Kerberos logins are supported",
            file.display()
        )));
    }
    let options = jaas_options(body);
    let user = options.get("username").cloned();
    let password = options.get("password").cloned();
    match (user, password) {
        (Some(user), Some(password)) => Ok(Some(Sasl::Digest { user, password })),
        _ => Err(CliError::bad_input(format!(
            "JAAS file {}: section {section} needs username=\"...\" and password=\"...\"",
            file.display()
        ))),
    }
}

/// The text between `NAME {` and its closing `};`, comments removed.
fn jaas_section<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    let mut search = 0;
    while let Some(pos) = text[search..].find(name) {
        let start = search + pos;
        let after = text[start + name.len()..].trim_start();
        let before_ok = start == 0
            || text[..start]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_whitespace() || c == ';' || c == '}');
        if before_ok && after.starts_with('{') {
            let open = text.len() - after.len();
            let end = text[open..].find('}')?;
            return Some(&text[open + 1..open + end]);
        }
        search = start + name.len();
    }
    None
}

/// `key="value"` (or unquoted) options of a JAAS login module entry.
fn jaas_options(body: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut rest = body;
    while let Some(eq) = rest.find('=') {
        let key = rest[..eq]
            .split_whitespace()
            .last()
            .unwrap_or("")
            .to_owned();
        let after = rest[eq + 1..].trim_start();
        let (value, next) = if let Some(q) = after.strip_prefix('"') {
            match q.find('"') {
                Some(end) => (q[..end].to_owned(), &q[end + 1..]),
                None => (q.to_owned(), ""),
            }
        } else {
            let end = after
                .find(|c: char| c.is_whitespace() || c == ';')
                .unwrap_or(after.len());
            (after[..end].to_owned(), &after[end..])
        };
        out.insert(key, value);
        rest = next;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_parse_like_java() {
        let p = parse_properties(
            "# comment\nzookeeper.client.secure=true\n! other\nzookeeper.ssl.trustStore.location : /a/b.pem\n\
             long=one\\\n  two\n",
        );
        assert_eq!(
            p,
            vec![
                ("zookeeper.client.secure".into(), "true".into()),
                (
                    "zookeeper.ssl.trustStore.location".into(),
                    "/a/b.pem".into()
                ),
                ("long".into(), "onetwo".into()),
            ]
        );
    }

    #[test]
    fn jaas_client_section() {
        let text = "Server {\n org.apache.zookeeper.server.auth.DigestLoginModule required\n user_bob=\"x\";\n};\n\
                    Client {\n  org.apache.zookeeper.server.auth.DigestLoginModule required\n  username=\"bob\"\n  password=\"bob secret\";\n};\n";
        let body = jaas_section(text, "Client").expect("section");
        let o = jaas_options(body);
        assert_eq!(o.get("username").map(String::as_str), Some("bob"));
        assert_eq!(o.get("password").map(String::as_str), Some("bob secret"));
        assert!(jaas_section(text, "Nope").is_none());
    }

    #[test]
    fn jaas_kerberos_section() {
        let dir = std::env::temp_dir().join(format!("zk-cli-jaas-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let file = dir.join("jaas.conf");
        std::fs::write(
            &file,
            "Client {\n  com.sun.security.auth.module.Krb5LoginModule required\n  \
             useKeyTab=true\n  keyTab=\"/etc/app.keytab\"\n  storeKey=true\n  \
             useTicketCache=false\n  principal=\"app@EXAMPLE.COM\";\n};\n",
        )
        .expect("write");
        let o = SecurityOpts {
            jaas: Some(file),
            properties: vec![("zookeeper.server.realm".into(), "ZK.EXAMPLE.COM".into())],
            ..Default::default()
        };
        let s = o.resolve().expect("resolves");
        assert_eq!(
            s.sasl,
            Some(Sasl::Kerberos(KerberosLogin {
                principal: Some("app@EXAMPLE.COM".into()),
                keytab: Some("/etc/app.keytab".into()),
                use_ticket_cache: false,
                server_realm: Some("ZK.EXAMPLE.COM".into()),
                ..KerberosLogin::default()
            }))
        );
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn stores_are_pem_or_pkcs12() {
        let kind =
            |p: &str, t: Option<&str>| store_kind(Path::new(p), t.map(Into::into), "keyStore");
        assert!(kind("/x/store.jks", None).is_err());
        assert!(kind("/x/store", Some("JKS")).is_err());
        assert_eq!(kind("/x/store.p12", None).ok(), Some(Store::Pkcs12));
        assert_eq!(kind("/x/store", Some("pkcs12")).ok(), Some(Store::Pkcs12));
        assert_eq!(kind("/x/store.pem", None).ok(), Some(Store::Pem));
        assert_eq!(kind("/x/store", Some("pem")).ok(), Some(Store::Pem));
        // The declared type wins over the extension; an empty one is unset.
        assert_eq!(kind("/x/store.p12", Some("PEM")).ok(), Some(Store::Pem));
        assert_eq!(kind("/x/store.p12", Some("")).ok(), Some(Store::Pkcs12));
        // No type, no known extension: the first bytes.
        let dir = std::env::temp_dir().join(format!("zk-cli-sniff-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let file = |name: &str, bytes: &[u8]| {
            let p = dir.join(name);
            std::fs::write(&p, bytes).expect("write");
            p.display().to_string()
        };
        assert_eq!(
            kind(&file("a", &[0x30, 0x82, 1, 2]), None).ok(),
            Some(Store::Pkcs12)
        );
        assert!(kind(&file("b", &[0xFE, 0xED, 0xFE, 0xED]), None).is_err());
        assert_eq!(kind(&file("c", b"-----BEGIN"), None).ok(), Some(Store::Pem));
        assert_eq!(kind("/nowhere/store", None).ok(), Some(Store::Pem));
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn short_flags_and_files() {
        let o = SecurityOpts {
            tls_ca: Some("/ca.pem".into()),
            tls_cert: Some("/c.pem".into()),
            ..Default::default()
        };
        assert!(o.resolve().is_err(), "--tls-cert without --tls-key");
        let o = SecurityOpts {
            tls_ca: Some("/ca.pem".into()),
            ..Default::default()
        };
        let s = o.resolve().expect("resolves");
        assert_eq!(s.tls, Some(TlsConfig::new().ca_file("/ca.pem")));
        assert_eq!(s.sasl, None);
        let o = SecurityOpts {
            properties: vec![
                ("zookeeper.client.secure".into(), "true".into()),
                ("zookeeper.ssl.trustStore.location".into(), "/t.pem".into()),
                ("zookeeper.ssl.keyStore.location".into(), "/k.pem".into()),
                ("zookeeper.ssl.keyStore.password".into(), "pw".into()),
                ("zookeeper.ssl.hostnameVerification".into(), "false".into()),
            ],
            ..Default::default()
        };
        let s = o.resolve().expect("resolves");
        assert_eq!(
            s.tls,
            Some(
                TlsConfig::new()
                    .ca_file("/t.pem")
                    .client_keystore_pem("/k.pem")
                    .client_key_password("pw")
                    .verify_hostname(false)
            )
        );
    }

    #[test]
    fn password_paths_win_over_passwords() {
        let dir = std::env::temp_dir().join(format!("zk-cli-pwpath-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let file = |name: &str, text: &str| {
            let p = dir.join(name);
            std::fs::write(&p, text).expect("write");
            p.display().to_string()
        };
        let props = |extra: Vec<(&str, String)>| SecurityOpts {
            properties: [
                ("zookeeper.client.secure", "true".to_owned()),
                ("zookeeper.ssl.trustStore.location", "/t.p12".to_owned()),
                ("zookeeper.ssl.trustStore.password", "ignored".to_owned()),
                ("zookeeper.ssl.keyStore.location", "/k.p12".to_owned()),
                ("zookeeper.ssl.keyStore.password", "ignored".to_owned()),
            ]
            .into_iter()
            .chain(extra)
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
            ..Default::default()
        };
        let key_pw = file("key.pw", "key secret\n");
        let trust_pw = file("trust.pw", " trust secret ");
        let s = props(vec![
            ("zookeeper.ssl.keyStore.passwordPath", key_pw),
            ("zookeeper.ssl.trustStore.passwordPath", trust_pw),
        ])
        .resolve()
        .expect("resolves");
        // One trailing line break goes (an editor's); other spaces are the password's.
        assert_eq!(
            s.tls,
            Some(
                TlsConfig::new()
                    .ca_pkcs12("/t.p12", " trust secret ")
                    .client_keystore_pkcs12("/k.p12", "key secret")
            )
        );
        // An empty passwordPath is unset: the password property counts.
        let s = props(vec![("zookeeper.ssl.keyStore.passwordPath", String::new())])
            .resolve()
            .expect("resolves");
        assert_eq!(
            s.tls,
            Some(
                TlsConfig::new()
                    .ca_pkcs12("/t.p12", "ignored")
                    .client_keystore_pkcs12("/k.p12", "ignored")
            )
        );
        // One line separator goes, not two; an empty file is an empty password, not unset.
        let two = file("two.pw", "key secret\n\n");
        let empty = file("empty.pw", "");
        let s = props(vec![
            ("zookeeper.ssl.keyStore.passwordPath", two),
            ("zookeeper.ssl.trustStore.passwordPath", empty),
        ])
        .resolve()
        .expect("resolves");
        assert_eq!(
            s.tls,
            Some(
                TlsConfig::new()
                    .ca_pkcs12("/t.p12", "")
                    .client_keystore_pkcs12("/k.p12", "key secret\n")
            )
        );
        // A PEM key's password comes from the file too.
        let pem_pw = file("pem.pw", "pem secret\n");
        let o = SecurityOpts {
            properties: vec![
                ("zookeeper.client.secure".into(), "true".into()),
                ("zookeeper.ssl.trustStore.location".into(), "/t.pem".into()),
                ("zookeeper.ssl.keyStore.location".into(), "/k.pem".into()),
                ("zookeeper.ssl.keyStore.passwordPath".into(), pem_pw),
            ],
            ..Default::default()
        };
        assert_eq!(
            o.resolve().expect("resolves").tls,
            Some(
                TlsConfig::new()
                    .ca_file("/t.pem")
                    .client_keystore_pem("/k.pem")
                    .client_key_password("pem secret")
            )
        );
        // A file that is not UTF-8, or cannot be read, is named with its key.
        let latin1 = file("latin1.pw", "");
        std::fs::write(&latin1, b"caf\xe9").expect("write");
        let err = props(vec![(
            "zookeeper.ssl.keyStore.passwordPath",
            latin1.clone(),
        )])
        .resolve()
        .expect_err("a password file that is not UTF-8");
        let text = err.to_string();
        assert!(
            text.contains("zookeeper.ssl.keyStore.passwordPath") && text.contains(&latin1),
            "{text}"
        );
        let missing = dir.join("missing.pw").display().to_string();
        let err = props(vec![(
            "zookeeper.ssl.trustStore.passwordPath",
            missing.clone(),
        )])
        .resolve()
        .expect_err("unreadable password file");
        let text = err.to_string();
        assert!(
            text.contains("zookeeper.ssl.trustStore.passwordPath") && text.contains(&missing),
            "{text}"
        );
        let _ = std::fs::remove_dir_all(dir);
    }
}
