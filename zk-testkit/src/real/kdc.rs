//! Kerberos for test servers: [`TestKdc`], a throw-away MIT KDC (Debian's `krb5-kdc`, with
//! `kadmin.local` from `krb5-admin-server`) with its own realm, database and config files in a
//! temp directory, listening on a loopback port claimed as the servers' ports are. It makes
//! principals with keytabs, and writes what a ZooKeeper server needs to accept Kerberos logins
//! (a JAAS `Server` section with `Krb5LoginModule`, plus `-Djava.security.krb5.conf`).
//!
//! Nothing here touches the machine's own Kerberos set-up: every program is pointed at the
//! temp directory's `krb5.conf` / `kdc.conf` by environment (`KRB5_CONFIG`, `KRB5_KDC_PROFILE`)
//! or system property, so tests in parallel processes each have their own realm database.
//! Name canonicalisation is off in that `krb5.conf` (no DNS, no reverse lookups), so
//! `zookeeper/localhost` is exactly the principal a client connecting to `localhost` asks for.

use std::fs;
use std::io::{self, Read};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use super::ports::PortBlock;
use super::Error;

/// The realm every [`TestKdc`] serves.
pub const TEST_REALM: &str = "ZK-RS.TEST";

/// How long the KDC may take to listen.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// Kills the KDC when the test process is gone (SIGKILL, abort), so a crashed run leaves no
/// KDC behind: `$1` the test's pid, `$2` the KDC's, `$3` the directory to remove (unless `$4`).
const WATCHDOG: &str = r#"trap '' INT TERM HUP
while kill -0 "$1" 2>/dev/null; do sleep 1; done
kill -9 "$2" 2>/dev/null
[ "$4" = 1 ] || rm -rf "$3"
"#;

/// A running MIT KDC for one test run, stopped (and its directory removed, unless
/// `ZK_RS_KEEP=1`) on drop.
#[derive(Debug)]
pub struct TestKdc {
    dir: PathBuf,
    port: u16,
    kadmin: PathBuf,
    kdc: Option<Child>,
    watchdog: Option<Child>,
    keep: bool,
    // Held so that no other harness in any process takes the port while the KDC runs.
    _ports: PortBlock,
}

impl Drop for TestKdc {
    fn drop(&mut self) {
        for mut child in [self.kdc.take(), self.watchdog.take()]
            .into_iter()
            .flatten()
        {
            let _ = child.kill();
            let _ = child.wait();
        }
        if !self.keep {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

impl TestKdc {
    /// Creates the realm [`TEST_REALM`] in a fresh temp directory and starts `krb5kdc` on a
    /// loopback port, returning once it accepts connections.
    ///
    /// Errors with [`Error::NotInstalled`] when the MIT KDC programs are missing (naming the
    /// Debian packages), [`Error::Io`] when a file, port or process cannot be had or a set-up
    /// command fails (with its output), and [`Error::NotReady`] when the KDC exits or does not
    /// listen in time.
    pub fn start() -> Result<TestKdc, Error> {
        let kdb5_util = find_program("kdb5_util")?;
        let kadmin = find_program("kadmin.local")?;
        let krb5kdc = find_program("krb5kdc")?;
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("zk-rs-kdc-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir)
            .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
        let ports = PortBlock::claim().map_err(|e| Error::io("claiming a loopback port", e))?;
        let mut kdc = TestKdc {
            port: ports.port(0),
            dir,
            kadmin,
            kdc: None,
            watchdog: None,
            keep: std::env::var_os("ZK_RS_KEEP").is_some_and(|v| v == "1"),
            _ports: ports,
        };
        kdc.write_configs()?;
        let ccache = kdc.dir.join("ccache");
        fs::create_dir_all(&ccache)
            .map_err(|e| Error::io(format!("creating {}", ccache.display()), e))?;
        kdc.run(
            &kdb5_util,
            &["create", "-s", "-r", TEST_REALM, "-P", "zk-rs-master-key"],
        )?;
        kdc.spawn(&krb5kdc)?;
        kdc.wait_listening()?;
        Ok(kdc)
    }

    /// The directory holding the configs, the database, the keytabs and `kdc.log`.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The realm, [`TEST_REALM`].
    pub fn realm(&self) -> &str {
        TEST_REALM
    }

    /// The loopback port the KDC serves (TCP and UDP).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The `krb5.conf` clients and servers of this realm use (`KRB5_CONFIG`,
    /// `-Djava.security.krb5.conf`).
    pub fn krb5_conf(&self) -> PathBuf {
        self.dir.join("krb5.conf")
    }

    /// `name@REALM`.
    pub fn principal(&self, name: &str) -> String {
        format!("{name}@{TEST_REALM}")
    }

    /// Adds principal `name` (in the realm) with a random key and writes that key to the keytab
    /// `<dir>/<file>`, returning the keytab's path. Several principals may share a keytab.
    ///
    /// Errors with [`Error::Io`] (with kadmin's output) when the principal exists already or
    /// kadmin fails.
    pub fn add_principal(&self, name: &str, file: &str) -> Result<PathBuf, Error> {
        let keytab = self.dir.join(file);
        let kadmin = self.kadmin.clone();
        let principal = self.principal(name);
        self.run(
            &kadmin,
            &[
                "-r",
                TEST_REALM,
                "-q",
                &format!("addprinc -randkey {principal}"),
            ],
        )?;
        self.run(
            &kadmin,
            &[
                "-r",
                TEST_REALM,
                "-q",
                &format!("ktadd -k {} {principal}", keytab.display()),
            ],
        )?;
        Ok(keytab)
    }

    /// The environment a client process of this realm needs: `KRB5_CONFIG`, the client keytab
    /// `KRB5_CLIENT_KTNAME` (from which MIT krb5 gets the client's tickets by itself), and
    /// `KRB5CCNAME`, a credential cache collection of its own in the KDC's directory (a
    /// collection, so that clients of several principals can each keep their tickets).
    pub fn client_env(&self, client_keytab: &Path) -> Vec<(String, String)> {
        vec![
            ("KRB5_CONFIG".into(), self.krb5_conf().display().to_string()),
            (
                "KRB5_CLIENT_KTNAME".into(),
                format!("FILE:{}", client_keytab.display()),
            ),
            (
                "KRB5CCNAME".into(),
                format!("DIR:{}", self.dir.join("ccache").display()),
            ),
        ]
    }

    /// Writes a JAAS file at `path` whose `Server` section logs ZooKeeper in as `principal`
    /// (e.g. `zookeeper/localhost@ZK-RS.TEST`) from `keytab`, as ZooKeeper's Kerberos guide
    /// sets it up, and returns the JVM system properties a server needs besides:
    /// `java.security.auth.login.config` and `java.security.krb5.conf`.
    ///
    /// Errors with [`Error::Io`] when the file cannot be written.
    pub fn write_server_jaas(
        &self,
        path: &Path,
        principal: &str,
        keytab: &Path,
    ) -> Result<Vec<(String, String)>, Error> {
        // isInitiator=false: the server only accepts, so it needs no TGT from the KDC.
        let jaas = format!(
            "Server {{\n  com.sun.security.auth.module.Krb5LoginModule required\n  \
             useKeyTab=true\n  keyTab=\"{}\"\n  storeKey=true\n  useTicketCache=false\n  \
             isInitiator=false\n  principal=\"{principal}\";\n}};\n",
            keytab.display()
        );
        fs::write(path, jaas).map_err(|e| Error::io(format!("writing {}", path.display()), e))?;
        Ok(vec![
            (
                "java.security.auth.login.config".into(),
                path.display().to_string(),
            ),
            (
                "java.security.krb5.conf".into(),
                self.krb5_conf().display().to_string(),
            ),
        ])
    }

    /// The last `lines` lines of the KDC's log, for a failing test.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = fs::read_to_string(self.dir.join("kdc.log")).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    fn write_configs(&self) -> Result<(), Error> {
        let d = self.dir.display();
        let port = self.port;
        // TCP first (udp_preference_limit = 1), for MIT and Java alike: no datagram sizes to
        // worry about. AES only: what MIT 1.20 and Java 17 both have by default.
        let krb5 = format!(
            "[libdefaults]\n default_realm = {TEST_REALM}\n dns_lookup_realm = false\n \
             dns_lookup_kdc = false\n dns_canonicalize_hostname = false\n rdns = false\n \
             udp_preference_limit = 1\n ticket_lifetime = 1h\n forwardable = false\n\
             [realms]\n {TEST_REALM} = {{\n  kdc = 127.0.0.1:{port}\n }}\n\
             [domain_realm]\n localhost = {TEST_REALM}\n"
        );
        let kdc = format!(
            "[kdcdefaults]\n kdc_listen = 127.0.0.1:{port}\n kdc_tcp_listen = 127.0.0.1:{port}\n\
             [realms]\n {TEST_REALM} = {{\n  database_name = {d}/principal\n  \
             key_stash_file = {d}/stash\n  acl_file = {d}/kadm5.acl\n  max_life = 1h\n  \
             max_renewable_life = 0\n  \
             supported_enctypes = aes256-cts-hmac-sha1-96:normal aes128-cts-hmac-sha1-96:normal\n \
             }}\n[logging]\n kdc = FILE:{d}/kdc.log\n"
        );
        for (name, text) in [
            ("krb5.conf", krb5),
            ("kdc.conf", kdc),
            ("kadm5.acl", String::new()),
        ] {
            let path = self.dir.join(name);
            fs::write(&path, text)
                .map_err(|e| Error::io(format!("writing {}", path.display()), e))?;
        }
        Ok(())
    }

    /// The environment that points the MIT programs at this realm's files.
    fn env(&self, cmd: &mut Command) {
        cmd.env("KRB5_CONFIG", self.krb5_conf())
            .env("KRB5_KDC_PROFILE", self.dir.join("kdc.conf"));
    }

    /// Runs a set-up command to completion; errors with its output when it fails.
    fn run(&self, program: &Path, args: &[&str]) -> Result<(), Error> {
        let mut cmd = Command::new(program);
        cmd.args(args).current_dir(&self.dir).stdin(Stdio::null());
        self.env(&mut cmd);
        let what = format!("{} {}", program.display(), args.join(" "));
        let out = cmd
            .output()
            .map_err(|e| Error::io(format!("running {what}"), e))?;
        // kadmin.local prints errors yet exits 0, so its stderr is checked too.
        let stderr = String::from_utf8_lossy(&out.stderr);
        let failed = stderr.lines().any(|l| {
            let l = l.to_ascii_lowercase();
            l.contains("error") || l.contains("while ") || l.contains("failed")
        });
        if !out.status.success() || failed {
            return Err(Error::io(
                format!("running {what}"),
                io::Error::other(format!(
                    "{}\n{}{}",
                    out.status,
                    String::from_utf8_lossy(&out.stdout),
                    stderr
                )),
            ));
        }
        Ok(())
    }

    fn spawn(&mut self, krb5kdc: &Path) -> Result<(), Error> {
        let log = |name: &str| {
            let path = self.dir.join(name);
            fs::File::create(&path)
                .map_err(|e| Error::io(format!("creating {}", path.display()), e))
        };
        let mut cmd = Command::new(krb5kdc);
        // -n: stay in the foreground, so the child is the KDC itself and can be killed.
        cmd.args(["-n", "-r", TEST_REALM, "-P"])
            .arg(self.dir.join("kdc.pid"))
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(log("kdc.stdout")?)
            .stderr(log("kdc.stderr")?);
        self.env(&mut cmd);
        let child = cmd
            .spawn()
            .map_err(|e| Error::io(format!("starting {}", krb5kdc.display()), e))?;
        let kdc_pid = child.id();
        self.kdc = Some(child);
        let watchdog = Command::new("sh")
            .args(["-c", WATCHDOG, "zk-rs-kdc-watchdog"])
            .arg(std::process::id().to_string())
            .arg(kdc_pid.to_string())
            .arg(&self.dir)
            .arg(if self.keep { "1" } else { "0" })
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| Error::io("starting the KDC's watchdog", e))?;
        self.watchdog = Some(watchdog);
        Ok(())
    }

    /// Polls until the KDC accepts TCP connections: it has no readiness signal of its own.
    fn wait_listening(&mut self) -> Result<(), Error> {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(child) = self.kdc.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    return Err(self.not_ready(format!("krb5kdc exited: {status}")));
                }
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(self.not_ready(format!("krb5kdc not listening on {addr}")));
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    fn not_ready(&self, reason: String) -> Error {
        let mut stderr = String::new();
        if let Ok(mut f) = fs::File::open(self.dir.join("kdc.stderr")) {
            let _ = f.read_to_string(&mut stderr);
        }
        Error::NotReady {
            node: 0,
            reason,
            log_tail: format!("{stderr}\n{}", self.log_tail(20)),
        }
    }
}

/// Finds an MIT Kerberos program in the system directories (root's PATH has them, a user's
/// may not) or on PATH.
fn find_program(name: &str) -> Result<PathBuf, Error> {
    for dir in ["/usr/sbin", "/usr/bin", "/sbin", "/usr/local/sbin"] {
        let p = Path::new(dir).join(name);
        if p.is_file() {
            return Ok(p);
        }
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let p = dir.join(name);
            if p.is_file() {
                return Ok(p);
            }
        }
    }
    Err(Error::NotInstalled(format!(
        "{name} not found: the Kerberos tests need an MIT KDC (Debian: apt-get install krb5-kdc \
         krb5-admin-server krb5-user; .ci/run installs them)"
    )))
}
