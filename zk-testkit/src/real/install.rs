//! Where the ZooKeeper servers and Java live, and how each version must be launched.
//!
//! The files are put in place by `scripts/setup-zookeeper`; this module only looks for them, and
//! when something is missing it says so and names that script, so a test never skips silently
//! nor fails with a bare "No such file or directory".

use std::env;
use std::fmt;
use std::path::{Path, PathBuf};

use super::Error;

/// The ZooKeeper 3.9 release fetched from Maven Central by the setup script.
const ZK39_RELEASE: &str = "3.9.5";

/// Names a directory of ZooKeeper 3.9 jars (a binary distribution's `lib/`) to run instead of the
/// setup script's cache.
pub(crate) const LIB_ENV: &str = "ZK_TESTKIT_ZOOKEEPER_LIB";

/// The Debian package's jar; its manifest Class-Path names netty, jute, metrics, snappy, etc.
const DEBIAN_ZK_JAR: &str = "/usr/share/java/zookeeper.jar";

/// slf4j-api alone (all the Debian jar's manifest brings) logs nothing; these two, hard
/// dependencies of Debian's libzookeeper-java, bind it to log4j 1.2 so the node writes a log.
const DEBIAN_LOG_JARS: [&str; 2] = [
    "/usr/share/java/slf4j-log4j12.jar",
    "/usr/share/java/log4j-1.2.jar",
];

/// Netty jars the Debian jar's manifest leaves out although its Netty server (the TLS client
/// port, `NettyServerCnxnFactory`) needs them: the handler's decoders and address resolver. They
/// come with libnetty-java, a dependency of the package.
const DEBIAN_NETTY_JARS: [&str; 2] = [
    "/usr/share/java/netty-codec.jar",
    "/usr/share/java/netty-resolver.jar",
];

/// A ZooKeeper server release the harness can start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum ZkVersion {
    /// 3.8.0, Debian 12's `zookeeper` package (`/usr/share/java`). Notifications carry zxid -1.
    V3_8,
    /// 3.9.5 from Maven Central, in `$ZK_RS_CACHE/zookeeper-3.9.5/lib` (default cache:
    /// `~/.cache/zk-rs`), or any 3.9 release whose jars are in `$ZK_TESTKIT_ZOOKEEPER_LIB`. Notifications carry the zxid of the transaction that fired them.
    V3_9,
}

impl ZkVersion {
    /// Every version the harness knows, oldest first.
    pub const ALL: [ZkVersion; 2] = [ZkVersion::V3_8, ZkVersion::V3_9];

    /// The exact release, e.g. `"3.8.0"`, as `srvr` reports it at the start of its first line.
    pub fn release(self) -> &'static str {
        match self {
            ZkVersion::V3_8 => "3.8.0",
            ZkVersion::V3_9 => ZK39_RELEASE,
        }
    }

    /// Finds this version's jars and a `java` to run them.
    ///
    /// Errors with [`Error::NotInstalled`] (naming `scripts/setup-zookeeper`) when Java or any jar
    /// is missing.
    pub fn locate(self) -> Result<Installation, Error> {
        let java = find_java()?;
        let (classpath, logging) = match self {
            ZkVersion::V3_8 => {
                for jar in std::iter::once(DEBIAN_ZK_JAR)
                    .chain(DEBIAN_LOG_JARS)
                    .chain(DEBIAN_NETTY_JARS)
                {
                    require_file(Path::new(jar), self)?;
                }
                // /etc/zookeeper/conf first, as Debian's own zkEnv.sh does; its log4j.properties
                // is overridden by the -Dlog4j.configuration the node passes.
                let cp = ["/etc/zookeeper/conf", DEBIAN_ZK_JAR]
                    .into_iter()
                    .chain(DEBIAN_LOG_JARS)
                    .chain(DEBIAN_NETTY_JARS)
                    .collect::<Vec<_>>()
                    .join(":");
                (cp, Logging::Log4j1)
            }
            ZkVersion::V3_9 if env::var_os(LIB_ENV).is_some_and(|d| !d.is_empty()) => {
                // A user's own 3.9 distribution: its lib/ holds the server, its dependencies and
                // logback, exactly like the cache's.
                let lib = PathBuf::from(env::var_os(LIB_ENV).unwrap_or_default());
                if !has_server_jar(&lib, "zookeeper-3.9") {
                    return Err(Error::NotInstalled(format!(
                        "{LIB_ENV}={} holds no zookeeper-3.9.*.jar; point it at the lib/ folder \
                         of an unpacked apache-zookeeper-3.9.x-bin.tar.gz",
                        lib.display()
                    )));
                }
                (format!("{}/*", lib.display()), Logging::Logback)
            }
            ZkVersion::V3_9 => {
                let lib = cache_dir()?
                    .join(format!("zookeeper-{ZK39_RELEASE}"))
                    .join("lib");
                require_file(&lib.join(format!("zookeeper-{ZK39_RELEASE}.jar")), self)?;
                // Written by the setup script only after every dependency was copied.
                require_file(&lib.join(".complete"), self)?;
                // The JVM expands `dir/*` to every jar in dir; `lib` holds exactly the runtime set.
                (format!("{}/*", lib.display()), Logging::Logback)
            }
        };
        Ok(Installation {
            version: self,
            java,
            classpath,
            logging,
        })
    }
}

impl fmt::Display for ZkVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.release())
    }
}

/// Which logging backend a version's classpath carries, hence which config file a node writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Logging {
    /// log4j 1.2 through slf4j-log4j12 (Debian's 3.8.0): `-Dlog4j.configuration=file:...`.
    Log4j1,
    /// logback 1.3 (Maven's 3.9.5): `-Dlogback.configurationFile=...`.
    Logback,
}

/// A located server release: the `java` binary and the classpath to run the server with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installation {
    version: ZkVersion,
    java: PathBuf,
    classpath: String,
    logging: Logging,
}

impl Installation {
    /// The release this installation runs.
    pub fn version(&self) -> ZkVersion {
        self.version
    }

    /// The `java` binary used to start servers.
    pub fn java(&self) -> &Path {
        &self.java
    }

    /// The `-cp` argument (colon-separated; may contain a `dir/*` wildcard).
    pub fn classpath(&self) -> &str {
        &self.classpath
    }

    pub(crate) fn logging(&self) -> Logging {
        self.logging
    }
}

/// `${ZK_RS_CACHE:-$HOME/.cache/zk-rs}`, the same rule as the setup script.
fn cache_dir() -> Result<PathBuf, Error> {
    if let Some(dir) = env::var_os("ZK_RS_CACHE").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    match env::var_os("HOME").filter(|h| !h.is_empty()) {
        Some(home) => Ok(PathBuf::from(home).join(".cache").join("zk-rs")),
        None => Err(Error::NotInstalled(
            "neither ZK_RS_CACHE nor HOME is set, so the ZooKeeper 3.9 cache cannot be found; \
             set one and run scripts/setup-zookeeper"
                .into(),
        )),
    }
}

/// Whether `dir` holds a jar named `<prefix>*.jar` (`zookeeper-3.9` matches the server's
/// `zookeeper-3.9.5.jar`, not `zookeeper-jute-3.9.5.jar`).
fn has_server_jar(dir: &Path, prefix: &str) -> bool {
    std::fs::read_dir(dir).is_ok_and(|entries| {
        entries.flatten().any(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.starts_with(prefix) && name.ends_with(".jar")
        })
    })
}

fn require_file(path: &Path, version: ZkVersion) -> Result<(), Error> {
    if path.is_file() {
        Ok(())
    } else {
        Err(Error::NotInstalled(format!(
            "ZooKeeper {version} is not installed: {} is missing; run scripts/setup-zookeeper",
            path.display()
        )))
    }
}

/// `$JAVA_HOME/bin/java` if it exists, else the first `java` on `PATH`.
fn find_java() -> Result<PathBuf, Error> {
    find_java_tool("java")
}

/// `$JAVA_HOME/bin/<tool>` if it exists, else the first `<tool>` on `PATH` (`java`, `keytool`):
/// the same Java scripts/setup-zookeeper accepts.
///
/// Errors with [`Error::NotInstalled`] when neither has it.
pub(crate) fn find_java_tool(tool: &str) -> Result<PathBuf, Error> {
    if let Some(home) = env::var_os("JAVA_HOME").filter(|h| !h.is_empty()) {
        let path = PathBuf::from(home).join("bin").join(tool);
        if path.is_file() {
            return Ok(path);
        }
    }
    env::var_os("PATH")
        .iter()
        .flat_map(env::split_paths)
        .map(|dir| dir.join(tool))
        .find(|path| path.is_file())
        .ok_or_else(|| {
            Error::NotInstalled(format!(
                "no {tool} found (neither $JAVA_HOME/bin/{tool} nor {tool} on PATH); install \
                 Java 17 and run scripts/setup-zookeeper"
            ))
        })
}
