//! The connect string (`h1:2181,h2,[::1]:2183/app/chroot`) and the rotation through its hosts.
//!
//! Host names are kept as written: resolving them is the driver's job, done again on every
//! attempt, so a name that moves to another address is followed. The rotation decides which host
//! comes next and how long to wait first: a short jittered pause between hosts, and a capped
//! exponential backoff after every full pass that found no server, so a client never spins on a
//! dead ensemble and never waits long on a healthy one.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::error::Error;
use crate::path::Chroot;
use crate::rng::Rng;

/// ZooKeeper's default client port.
pub const DEFAULT_PORT: u16 = 2181;

/// One server address as written in the connect string.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HostAddr {
    /// Host name or IP address (IPv6 without brackets).
    pub host: String,
    /// TCP port.
    pub port: u16,
}

impl HostAddr {
    /// An address from a host and a port.
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        HostAddr {
            host: host.into(),
            port,
        }
    }

    /// Parses `host`, `host:port`, `[v6]` or `[v6]:port`.
    ///
    /// Errors with [`Error::InvalidArgument`] on an empty host, a bad port, or an IPv6 address
    /// without brackets.
    pub fn parse(s: &str) -> Result<Self, Error> {
        let bad = |why: &str| Err(Error::InvalidArgument(format!("bad host {s:?}: {why}")));
        let s = s.trim();
        let (host, port) = if let Some(rest) = s.strip_prefix('[') {
            let Some((host, after)) = rest.split_once(']') else {
                return bad("missing ]");
            };
            match after {
                "" => (host, None),
                _ => match after.strip_prefix(':') {
                    Some(p) => (host, Some(p)),
                    None => return bad("unexpected text after ]"),
                },
            }
        } else {
            match s.split_once(':') {
                Some((_, p)) if p.contains(':') => {
                    return bad("IPv6 addresses need brackets: [::1]:2181")
                }
                Some((h, p)) => (h, Some(p)),
                None => (s, None),
            }
        };
        if host.is_empty() {
            return bad("empty host name");
        }
        let port = match port {
            None => DEFAULT_PORT,
            Some(p) => match p.parse::<u16>() {
                Ok(0) | Err(_) => return bad("port must be 1 to 65535"),
                Ok(n) => n,
            },
        };
        Ok(HostAddr::new(host, port))
    }
}

impl fmt::Display for HostAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// A parsed connect string: the servers and the chroot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectString {
    /// The servers, in the order written.
    pub hosts: Vec<HostAddr>,
    /// The chroot (everything from the first `/`).
    pub chroot: Chroot,
}

impl ConnectString {
    /// Parses `h1:2181,h2,[::1]:2183/app/chroot`.
    ///
    /// Errors with [`Error::InvalidArgument`] for a malformed host list or a chroot that is not
    /// at the very end (`h1:2181/app,h2:2181`), and [`Error::InvalidPath`] for a malformed
    /// chroot.
    pub fn parse(s: &str) -> Result<Self, Error> {
        let s = s.trim();
        // The chroot starts at the first `/`; brackets of IPv6 hosts never contain one.
        let (hosts, chroot) = match s.find('/') {
            Some(i) => (&s[..i], &s[i..]),
            None => (s, ""),
        };
        // A comma after the first `/` means hosts follow the chroot: the Java client would take
        // "/app,h2:2181" for the chroot and silently drop h2. A chroot with a comma in its name
        // is legal in ZooKeeper but indistinguishable from that mistake, so it is refused too.
        if let Some((misplaced, _)) = chroot.split_once(',') {
            return Err(Error::InvalidArgument(format!(
                "misplaced chroot {misplaced:?} in {s:?}: the chroot must come after the last \
                 host (and cannot contain a comma)"
            )));
        }
        let hosts = hosts
            .split(',')
            .map(HostAddr::parse)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ConnectString {
            hosts,
            chroot: Chroot::new(chroot)?,
        })
    }
}

impl FromStr for ConnectString {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        ConnectString::parse(s)
    }
}

impl fmt::Display for ConnectString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, h) in self.hosts.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{h}")?;
        }
        if let Some(root) = self.chroot.as_str() {
            f.write_str(root)?;
        }
        Ok(())
    }
}

/// How the rotation waits between attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReconnectPolicy {
    /// Upper bound of the random pause before each attempt after the first (spreads out a crowd
    /// of clients that lost the same server at once).
    pub attempt_jitter: Duration,
    /// The pause after the first full pass over every host found no server.
    pub backoff_initial: Duration,
    /// The cap of the pause after a full pass; it doubles each pass up to this.
    pub backoff_max: Duration,
}

impl Default for ReconnectPolicy {
    fn default() -> Self {
        ReconnectPolicy {
            attempt_jitter: Duration::from_millis(50),
            backoff_initial: Duration::from_millis(100),
            backoff_max: Duration::from_secs(2),
        }
    }
}

/// Which host to try next, and how long to wait before trying it.
#[derive(Debug, Clone)]
pub struct HostRotation {
    order: Vec<usize>,
    /// Position in `order` of the next host to try.
    cursor: usize,
    /// Attempts since the last successful handshake.
    failed_attempts: u32,
    policy: ReconnectPolicy,
}

impl HostRotation {
    /// A rotation over `n` hosts (n >= 1), shuffled with `rng` when `randomize` is set.
    pub fn new(n: usize, randomize: bool, policy: ReconnectPolicy, rng: &mut Rng) -> Self {
        let mut order: Vec<usize> = (0..n.max(1)).collect();
        if randomize {
            rng.shuffle(&mut order);
        }
        HostRotation {
            order,
            cursor: 0,
            failed_attempts: 0,
            policy,
        }
    }

    /// The next host's index and the pause before dialing it. The very first attempt, and the
    /// first after a session was established, go out without a pause.
    pub fn next(&mut self, rng: &mut Rng) -> (usize, Duration) {
        let n = self.order.len() as u32;
        let delay = if self.failed_attempts == 0 {
            Duration::ZERO
        } else if self.failed_attempts % n == 0 {
            // A full pass found nothing: back off, doubling per pass, with jitter so a crowd of
            // clients does not come back in step.
            let passes = self.failed_attempts / n;
            let base = self
                .policy
                .backoff_initial
                .saturating_mul(1u32 << (passes - 1).min(20));
            let capped = base.min(self.policy.backoff_max);
            capped.mul_f64(0.5 + 0.5 * rng.unit())
        } else {
            self.policy.attempt_jitter.mul_f64(rng.unit())
        };
        let host = self.order[self.cursor];
        self.cursor = (self.cursor + 1) % self.order.len();
        self.failed_attempts = self.failed_attempts.saturating_add(1);
        (host, delay)
    }

    /// A handshake succeeded: the next failure starts a fresh pass with no pause.
    pub fn connected(&mut self) {
        self.failed_attempts = 0;
    }

    /// Makes `host` the next one tried (a probe found it writable).
    pub fn prefer(&mut self, host: usize) {
        if let Some(pos) = self.order.iter().position(|&h| h == host) {
            self.cursor = pos;
        }
    }

    /// The number of hosts.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// Always false: a rotation has at least one host.
    pub fn is_empty(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_hosts_ports_ipv6_and_chroot() {
        let cs = ConnectString::parse("h1:2181,h2,[::1]:2183/app/chroot").unwrap();
        assert_eq!(
            cs.hosts,
            vec![
                HostAddr::new("h1", 2181),
                HostAddr::new("h2", 2181),
                HostAddr::new("::1", 2183)
            ]
        );
        assert_eq!(cs.chroot.as_str(), Some("/app/chroot"));
        assert_eq!(cs.to_string(), "h1:2181,h2:2181,[::1]:2183/app/chroot");
        let plain = ConnectString::parse("[fe80::1]").unwrap();
        assert_eq!(plain.hosts[0].port, 2181);
        assert_eq!(plain.chroot.as_str(), None);
        assert_eq!(ConnectString::parse("h/").unwrap().chroot, Chroot::none());
    }

    #[test]
    fn malformed_connect_strings_are_typed_errors() {
        for bad in [
            "", ",", "h:", "h:0", "h:65536", "h:x", "::1", "[::1", "[::1]x", "h1,,h2",
        ] {
            assert!(
                matches!(ConnectString::parse(bad), Err(Error::InvalidArgument(_))),
                "{bad:?}"
            );
        }
        assert!(matches!(
            ConnectString::parse("h/app/"),
            Err(Error::InvalidPath { .. })
        ));
    }

    #[test]
    fn a_chroot_before_the_last_host_is_refused_naming_it() {
        for (bad, chroot) in [
            ("h1:2181/app,h2:2181", "\"/app\""),
            ("h1/a/b,h2,h3/c", "\"/a/b\""),
            ("[::1]:2181/app,[::2]:2181", "\"/app\""),
        ] {
            match ConnectString::parse(bad) {
                Err(Error::InvalidArgument(msg)) => {
                    assert!(msg.contains(chroot), "{bad:?}: {msg}");
                    assert!(msg.contains("misplaced chroot"), "{bad:?}: {msg}");
                }
                other => panic!("{bad:?} gave {other:?}"),
            }
        }
        // Valid strings still parse, with the chroot at the end.
        for (good, hosts, chroot) in [
            ("h1:2181,h2:2181/app", 2, Some("/app")),
            ("h1,h2,h3/a/b", 3, Some("/a/b")),
            ("[::1]:2181,h2/app", 2, Some("/app")),
            ("h1:2181,h2:2181", 2, None),
        ] {
            let cs = ConnectString::parse(good).unwrap();
            assert_eq!(cs.hosts.len(), hosts, "{good:?}");
            assert_eq!(cs.chroot.as_str(), chroot, "{good:?}");
        }
    }

    #[test]
    fn rotation_pauses_briefly_between_hosts_and_backs_off_per_pass() {
        let mut rng = Rng::new(3);
        let policy = ReconnectPolicy::default();
        let mut rot = HostRotation::new(3, false, policy, &mut rng);
        let mut seen = Vec::new();
        let mut delays = Vec::new();
        for _ in 0..12 {
            let (h, d) = rot.next(&mut rng);
            seen.push(h);
            delays.push(d);
        }
        assert_eq!(seen, [0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2]);
        assert_eq!(delays[0], Duration::ZERO);
        for (i, d) in delays.iter().enumerate().skip(1) {
            if i % 3 == 0 {
                let pass = (i / 3) as u32;
                let full = policy
                    .backoff_initial
                    .saturating_mul(1 << (pass - 1))
                    .min(policy.backoff_max);
                assert!(*d >= full / 2 && *d <= full, "attempt {i}: {d:?}");
            } else {
                assert!(*d <= policy.attempt_jitter, "attempt {i}: {d:?}");
            }
        }
        rot.connected();
        assert_eq!(rot.next(&mut rng).1, Duration::ZERO);
    }

    #[test]
    fn backoff_is_capped() {
        let mut rng = Rng::new(9);
        let policy = ReconnectPolicy {
            attempt_jitter: Duration::ZERO,
            backoff_initial: Duration::from_millis(100),
            backoff_max: Duration::from_secs(1),
        };
        let mut rot = HostRotation::new(1, false, policy, &mut rng);
        let mut last = Duration::ZERO;
        for _ in 0..100 {
            last = rot.next(&mut rng).1;
            assert!(last <= policy.backoff_max);
        }
        assert!(last >= policy.backoff_max / 2);
    }

    #[test]
    fn randomized_order_is_a_permutation_fixed_by_the_seed() {
        let a = HostRotation::new(5, true, ReconnectPolicy::default(), &mut Rng::new(11));
        let b = HostRotation::new(5, true, ReconnectPolicy::default(), &mut Rng::new(11));
        assert_eq!(a.order, b.order);
        let mut sorted = a.order.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, vec![0, 1, 2, 3, 4]);
    }
}
