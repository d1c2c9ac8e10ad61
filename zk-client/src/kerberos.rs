//! Kerberos: SASL GSSAPI (RFC 4752) through the system's GSSAPI library (MIT krb5 or Heimdal,
//! by the libgssapi binding), as ZooKeeper's Java client speaks it. Behind the `gssapi` feature.
//!
//! The exchange: `GSS_Init_sec_context` tokens for the service principal
//! `zookeeper/<server host>@REALM` until the context is established (mutual authentication, so
//! the server proves it holds the service key too); then the server's wrapped 4-byte
//! security-layer offer, which we unwrap and answer with a wrapped "no security layer", maximum
//! size 0 and an empty authorization id (the server then authorizes the authenticated principal
//! itself); the server's empty answer completes the login.
//!
//! Credentials come from where every MIT krb5 program finds them: the default credential cache
//! (`KRB5CCNAME`, filled by `kinit`), or the client keytab (`KRB5_CLIENT_KTNAME`, or
//! `default_client_keytab_name` in krb5.conf), from which the library gets tickets by itself.
//! No JAAS file is needed. A keytab per client (gss_acquire_cred_from) is not offered by the
//! safe binding, and setting the process's environment from a library is unsound once threads
//! run, so the keytab is chosen by that environment, before the program starts threads.
//!
//! Hostname canonicalisation is off: the host is the one in the connect string, never a DNS
//! answer, and the principal is given to GSSAPI as a Kerberos name (not a host-based service
//! name, which MIT would canonicalise by krb5.conf's `dns_canonicalize_hostname`).
//!
//! One cost to know: the first login of a process asks the KDC for tickets (AS and TGS
//! exchanges) inside `GSS_Init_sec_context`, a blocking call made on the connection's driver
//! task; later logins take the service ticket from the cache.

use std::fmt;

use libgssapi::context::{ClientCtx, CtxFlags, SecurityContext};
use libgssapi::credential::{Cred, CredUsage};
use libgssapi::name::Name;
use libgssapi::oid::{OidSet, GSS_MECH_KRB5, GSS_NT_KRB5_PRINCIPAL};
use zk_core::session::{SaslClient, SaslFactory};
use zk_core::HostAddr;

/// RFC 4752's security-layer bit for "no security layer".
const NO_SECURITY_LAYER: u8 = 0x01;

/// How the client logs in with Kerberos ([`ClientBuilder::sasl_kerberos`]): which service
/// principal it asks a ticket for and, optionally, which client principal it uses. The
/// defaults are the Java client's: service `zookeeper`, the server's host as the connect
/// string names it, the default realm.
///
/// [`ClientBuilder::sasl_kerberos`]: crate::ClientBuilder::sasl_kerberos
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KerberosConfig {
    service: Option<String>,
    server_principal: Option<String>,
    server_realm: Option<String>,
    client_principal: Option<String>,
}

impl KerberosConfig {
    /// The defaults: principal `zookeeper/<host>` in the default realm, credentials of the
    /// default principal (of the credential cache or client keytab).
    pub fn new() -> Self {
        Self::default()
    }

    /// The service part of the server principal (the Java client's
    /// `zookeeper.sasl.client.username`; default `zookeeper`).
    pub fn service_name(mut self, service: &str) -> Self {
        self.service = Some(service.to_owned());
        self
    }

    /// The whole server principal, e.g. `zookeeper/zk1.example.com@EXAMPLE.COM`, the same for
    /// every server (the Java client's `zookeeper.server.principal`); without it the principal
    /// is `<service>/<host>` for each server.
    pub fn server_principal(mut self, principal: &str) -> Self {
        self.server_principal = Some(principal.to_owned());
        self
    }

    /// The realm of the server principal (the Java client's `zookeeper.server.realm`); default:
    /// the client principal's realm if [`client_principal`](Self::client_principal) names one,
    /// else the default realm of krb5.conf.
    pub fn server_realm(mut self, realm: &str) -> Self {
        self.server_realm = Some(realm.to_owned());
        self
    }

    /// The client principal to log in as, e.g. `app@EXAMPLE.COM` (the `principal` of a JAAS
    /// `Krb5LoginModule`): its tickets are taken from the credential cache, or obtained from the
    /// client keytab. Default: the default principal of the cache or keytab.
    pub fn client_principal(mut self, principal: &str) -> Self {
        self.client_principal = Some(principal.to_owned());
        self
    }

    /// The server principal for a connection to `host`.
    pub fn target_for(&self, host: &str) -> String {
        if let Some(p) = &self.server_principal {
            return p.clone();
        }
        let service = self.service.as_deref().unwrap_or("zookeeper");
        let realm = self.server_realm.as_deref().or_else(|| {
            self.client_principal
                .as_deref()
                .and_then(|p| p.rsplit_once('@'))
                .map(|(_, r)| r)
        });
        match realm {
            Some(r) => format!("{service}/{host}@{r}"),
            // No realm: GSSAPI puts the principal in krb5.conf's default realm.
            None => format!("{service}/{host}"),
        }
    }
}

/// Makes a GSSAPI exchange for every connection.
#[derive(Clone, Debug)]
pub(crate) struct GssapiFactory {
    pub(crate) config: KerberosConfig,
}

impl SaslFactory for GssapiFactory {
    fn start(&self, server: &HostAddr) -> Box<dyn SaslClient> {
        Box::new(Gssapi {
            target: self.config.target_for(&server.host),
            client_principal: self.config.client_principal.clone(),
            state: State::Start,
        })
    }
}

/// Where one exchange stands.
enum State {
    /// Nothing sent yet.
    Start,
    /// Context tokens go back and forth.
    Context(ClientCtx),
    /// The context is established; the server's security-layer offer is due.
    Layer(ClientCtx),
    /// Our security-layer answer is sent; the server's (empty) last answer is due.
    Answered,
    /// The server accepted the login.
    Done,
    /// Failed; nothing more is sent.
    Failed,
}

/// One GSSAPI exchange.
struct Gssapi {
    target: String,
    client_principal: Option<String>,
    state: State,
}

impl fmt::Debug for Gssapi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Gssapi")
            .field("target", &self.target)
            .field("client_principal", &self.client_principal)
            .finish_non_exhaustive()
    }
}

impl SaslClient for Gssapi {
    fn mechanism(&self) -> &str {
        "GSSAPI (Kerberos)"
    }

    fn initial(&mut self) -> Result<Vec<u8>, String> {
        let mut ctx = self.new_context()?;
        let token = ctx
            .step(None, None)
            .map_err(|e| self.context_error(&e))?
            .map(|t| t.to_vec())
            .unwrap_or_default();
        self.state = if ctx.is_complete() {
            State::Layer(ctx)
        } else {
            State::Context(ctx)
        };
        Ok(token)
    }

    fn step(&mut self, challenge: &[u8]) -> Result<Option<Vec<u8>>, String> {
        match std::mem::replace(&mut self.state, State::Failed) {
            State::Context(mut ctx) => {
                let token = ctx
                    .step(Some(challenge), None)
                    .map_err(|e| self.context_error(&e))?;
                // Once established with no token left, RFC 4752 has the client answer with an
                // empty response, to which the server sends its security-layer offer.
                let token = token.map(|t| t.to_vec()).unwrap_or_default();
                self.state = if ctx.is_complete() {
                    State::Layer(ctx)
                } else {
                    State::Context(ctx)
                };
                Ok(Some(token))
            }
            State::Layer(mut ctx) => {
                let offer = ctx.unwrap(challenge).map_err(|e| {
                    format!("unwrapping the server's security-layer offer failed: {e}")
                })?;
                if offer.len() != 4 {
                    return Err(format!(
                        "the server's security-layer offer has {} bytes, not 4",
                        offer.len()
                    ));
                }
                if offer[0] & NO_SECURITY_LAYER == 0 {
                    return Err(format!(
                        "the server requires a security layer (offer {:#04x}); only \
                         authentication without one (qop=auth) is supported",
                        offer[0]
                    ));
                }
                // No layer, so our maximum message size is 0 (RFC 4752 §3.1), and no
                // authorization id: the server uses the authenticated principal.
                let answer = ctx
                    .wrap(false, &[NO_SECURITY_LAYER, 0, 0, 0])
                    .map_err(|e| format!("wrapping the security-layer answer failed: {e}"))?;
                self.state = State::Answered;
                Ok(Some(answer.to_vec()))
            }
            State::Answered => {
                self.state = State::Done;
                Ok(None)
            }
            State::Start | State::Done | State::Failed => {
                Err("the server sent a token when none was due".into())
            }
        }
    }

    fn is_complete(&self) -> bool {
        matches!(self.state, State::Done)
    }

    fn refusal_hint(&self) -> &str {
        "the server did not accept the Kerberos ticket: does its keytab hold the key of the \
         service principal, and is the client principal allowed?"
    }
}

impl Gssapi {
    /// The credentials and an unstarted security context for the target.
    fn new_context(&self) -> Result<ClientCtx, String> {
        let mut mechs = OidSet::new();
        mechs
            .add(GSS_MECH_KRB5)
            .map_err(|e| format!("GSSAPI: {e}"))?;
        let who = match &self.client_principal {
            Some(p) => Some(
                Name::new(p.as_bytes(), Some(GSS_NT_KRB5_PRINCIPAL))
                    .map_err(|e| format!("bad client principal {p:?}: {e}"))?,
            ),
            None => None,
        };
        // Acquired here rather than left to init_sec_context so that a missing ticket or keytab
        // is reported as such, naming the principal.
        let cred =
            Cred::acquire(who.as_ref(), None, CredUsage::Initiate, Some(&mechs)).map_err(|e| {
                let whom = self
                    .client_principal
                    .as_deref()
                    .map_or("the default principal".to_owned(), |p| format!("{p:?}"));
                format!(
                    "no Kerberos credentials for {whom} (kinit, or a client keytab in \
                     KRB5_CLIENT_KTNAME): {e}"
                )
            })?;
        let target = Name::new(self.target.as_bytes(), Some(GSS_NT_KRB5_PRINCIPAL))
            .map_err(|e| format!("bad server principal {:?}: {e}", self.target))?;
        Ok(ClientCtx::new(
            Some(cred),
            target,
            CtxFlags::GSS_C_MUTUAL_FLAG | CtxFlags::GSS_C_INTEG_FLAG,
            Some(GSS_MECH_KRB5),
        ))
    }

    fn context_error(&self, e: &libgssapi::error::Error) -> String {
        format!(
            "establishing a security context with {:?} failed: {e}",
            self.target
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_principal_follows_the_java_client() {
        let c = KerberosConfig::new();
        assert_eq!(c.target_for("zk1.example.com"), "zookeeper/zk1.example.com");
        let c = KerberosConfig::new().client_principal("app@EXAMPLE.COM");
        assert_eq!(c.target_for("zk1"), "zookeeper/zk1@EXAMPLE.COM");
        let c = c.server_realm("ZK.EXAMPLE.COM").service_name("zk");
        assert_eq!(c.target_for("zk1"), "zk/zk1@ZK.EXAMPLE.COM");
        let c = c.server_principal("zookeeper/all@R");
        assert_eq!(c.target_for("zk1"), "zookeeper/all@R");
    }
}
