//! Server versions: parsing the `srvr` four-letter word's answer, and which operations need which
//! version (PROTOCOL.md §16).
//!
//! An operation a server does not know makes it answer Unimplemented and then close the
//! connection (§6), so the client gates operations by version before sending them.

use std::fmt;

use crate::proto::{OpCode, Request, WatcherType};

/// A ZooKeeper server version, e.g. 3.8.0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServerVersion {
    /// Major version.
    pub major: u32,
    /// Minor version.
    pub minor: u32,
    /// Patch version.
    pub patch: u32,
}

impl ServerVersion {
    /// A version from its parts.
    pub const fn new(major: u32, minor: u32, patch: u32) -> Self {
        ServerVersion {
            major,
            minor,
            patch,
        }
    }

    /// Parses the answer to `srvr` (or `stat`): the first line reads
    /// `Zookeeper version: 3.8.0-<build>, built on <date>`. Returns `None` if it does not.
    pub fn from_srvr(text: &str) -> Option<Self> {
        let line = text
            .lines()
            .find_map(|l| l.trim().strip_prefix("Zookeeper version:"))?;
        let ver = line.trim().split([',', '-', ' ']).next()?;
        let mut parts = ver.split('.').map(|p| p.parse::<u32>().ok());
        Some(ServerVersion::new(
            parts.next()??,
            parts.next()??,
            parts.next().unwrap_or(Some(0))?,
        ))
    }
}

impl fmt::Display for ServerVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// The first server version that understands `request`, when that is newer than the 3.5 line
/// this client supports as a baseline; `None` when any 3.5+ server does.
pub fn required_version(request: &Request) -> Option<ServerVersion> {
    const V3_6: ServerVersion = ServerVersion::new(3, 6, 0);
    match request.op_code() {
        OpCode::MultiRead
        | OpCode::GetEphemerals
        | OpCode::GetAllChildrenNumber
        | OpCode::SetWatches2
        | OpCode::AddWatch => Some(V3_6),
        OpCode::WhoAmI => Some(ServerVersion::new(3, 7, 0)),
        OpCode::CheckWatches | OpCode::RemoveWatches => match request {
            Request::CheckWatches(w) | Request::RemoveWatches(w)
                if matches!(
                    w.watcher_type(),
                    Ok(WatcherType::Persistent | WatcherType::PersistentRecursive)
                ) =>
            {
                Some(ServerVersion::new(3, 9, 0))
            }
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{PathRequest, WatchesRequest};

    #[test]
    fn parses_srvr_first_line() {
        let text = "Zookeeper version: 3.8.0-${mvngit.commit.id}, built on 2024-12-29 17:54 UTC\nLatency min/avg/max: 0/0.0/0\n";
        assert_eq!(
            ServerVersion::from_srvr(text),
            Some(ServerVersion::new(3, 8, 0))
        );
        assert_eq!(
            ServerVersion::from_srvr("Zookeeper version: 3.9.5-abc, built on x"),
            Some(ServerVersion::new(3, 9, 5))
        );
        assert_eq!(ServerVersion::from_srvr("imok"), None);
        assert_eq!(ServerVersion::from_srvr("Zookeeper version: x.y"), None);
    }

    #[test]
    fn versions_order_and_gate() {
        assert!(ServerVersion::new(3, 5, 10) < ServerVersion::new(3, 6, 0));
        let eph = Request::GetEphemerals(PathRequest { path: "/".into() });
        assert_eq!(required_version(&eph), Some(ServerVersion::new(3, 6, 0)));
        let rm_any = Request::RemoveWatches(WatchesRequest {
            path: "/".into(),
            watcher_type: 3,
        });
        assert_eq!(required_version(&rm_any), None);
        let rm_rec = Request::RemoveWatches(WatchesRequest {
            path: "/".into(),
            watcher_type: 5,
        });
        assert_eq!(required_version(&rm_rec), Some(ServerVersion::new(3, 9, 0)));
    }
}
