//! What the session does to a request before it goes out and to a reply before it comes back:
//! refuse what must never be sent, validate paths, add and strip the chroot, and work out which
//! watch a request arms.

use crate::error::Error;
use crate::path::{validate_path, Chroot};
use crate::proto::{
    AddWatchMode, CreateMode, MultiOp, MultiResult, Request, Response, WatcherType,
};

use super::watches::WatchKind;

/// The watch a request arms if it succeeds, decided when its reply arrives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WatchIntent {
    /// exists: a data watch if the node exists, an exist watch on NoNode.
    Exists,
    /// getData: a data watch (nothing on NoNode).
    Data,
    /// getChildren / getChildren2: a child watch (nothing on NoNode).
    Child,
    /// addWatch: a persistent or recursive watch locally, and the mode actually asked of the
    /// server (a persistent watch on a path the server already watches recursively asks for
    /// recursive again, see `WatchRegistry`).
    Add {
        /// The local watcher's kind.
        local: WatchKind,
        /// The mode sent to the server.
        server: WatchKind,
    },
    /// removeWatches: on success, the local watchers it removed end.
    Remove(WatcherType),
}

impl WatchIntent {
    /// The kind registered for a reply that succeeded (`ok`) or failed with NoNode (`!ok`).
    pub(crate) fn kind(self, ok: bool) -> Option<WatchKind> {
        match (self, ok) {
            (WatchIntent::Exists, true) => Some(WatchKind::Data),
            (WatchIntent::Exists, false) => Some(WatchKind::Exist),
            (WatchIntent::Data, true) => Some(WatchKind::Data),
            (WatchIntent::Child, true) => Some(WatchKind::Child),
            (WatchIntent::Add { local, .. }, true) => Some(local),
            // A failed read arms nothing on the server (only exists arms on NoNode), nor does a
            // failed addWatch; removeWatches ends watchers rather than arming one.
            (WatchIntent::Data | WatchIntent::Child | WatchIntent::Add { .. }, false)
            | (WatchIntent::Remove(_), _) => None,
        }
    }
}

/// The one path field of a request, borrowed with `&` or `&mut`; `None` for requests without one
/// (multi, whoAmI, auth, ...).
macro_rules! path_field {
    ($req:expr, $($borrow:tt)+) => {
        match $req {
            Request::Create(r) | Request::Create2(r) | Request::CreateContainer(r) => {
                Some($($borrow)+ r.path)
            }
            Request::CreateTtl(r) => Some($($borrow)+ r.path),
            Request::Delete(r) | Request::Check(r) => Some($($borrow)+ r.path),
            Request::Exists(r)
            | Request::GetData(r)
            | Request::GetChildren(r)
            | Request::GetChildren2(r) => Some($($borrow)+ r.path),
            Request::SetData(r) => Some($($borrow)+ r.path),
            Request::GetAcl(r)
            | Request::Sync(r)
            | Request::GetEphemerals(r)
            | Request::GetAllChildrenNumber(r) => Some($($borrow)+ r.path),
            Request::SetAcl(r) => Some($($borrow)+ r.path),
            Request::CheckWatches(r) | Request::RemoveWatches(r) => Some($($borrow)+ r.path),
            Request::AddWatch(r) => Some($($borrow)+ r.path),
            _ => None,
        }
    };
}

/// The path a request concerns (used in errors), `""` when it has none.
pub(crate) fn request_path(req: &Request) -> &str {
    path_field!(req, &).map_or("", String::as_str)
}

impl Request {
    /// The path this request concerns as the caller wrote it, `""` when it has none (ping, multi,
    /// auth, whoAmI...). For logs, traces and errors; never fails.
    pub fn path(&self) -> &str {
        request_path(self)
    }
}

/// The path field of a request that has exactly one, to move it out once the request is encoded.
pub(crate) fn request_path_mut(req: &mut Request) -> Option<&mut String> {
    path_field!(req, &mut)
}

/// The watch a request will arm, if any.
///
/// Errors with [`Error::InvalidArgument`] for an addWatch mode that does not exist.
pub(crate) fn watch_intent(req: &Request) -> Result<Option<WatchIntent>, Error> {
    Ok(match req {
        Request::Exists(r) if r.watch => Some(WatchIntent::Exists),
        Request::GetData(r) if r.watch => Some(WatchIntent::Data),
        Request::GetChildren(r) | Request::GetChildren2(r) if r.watch => Some(WatchIntent::Child),
        Request::AddWatch(r) => {
            let kind = match r.mode() {
                Ok(AddWatchMode::Persistent) => WatchKind::Persistent,
                Ok(AddWatchMode::PersistentRecursive) => WatchKind::PersistentRecursive,
                _ => {
                    return Err(Error::InvalidArgument(format!(
                        "unknown addWatch mode {}",
                        r.mode
                    )))
                }
            };
            Some(WatchIntent::Add {
                local: kind,
                server: kind,
            })
        }
        Request::RemoveWatches(r) => match r.watcher_type() {
            Ok(t) => Some(WatchIntent::Remove(t)),
            Err(_) => None,
        },
        _ => None,
    })
}

fn is_sequential(flags: i32) -> bool {
    CreateMode::try_from(flags).is_ok_and(CreateMode::is_sequential)
}

/// Checks what a client may submit: valid paths everywhere, and no request the session sends on
/// its own behalf (ping, setWatches, closeSession) or that would harm the server (a standalone
/// check, see PROTOCOL.md §17).
///
/// Errors with [`Error::InvalidPath`] or [`Error::InvalidArgument`].
pub(crate) fn validate(req: &Request) -> Result<(), Error> {
    let refuse = |why: &str| Err(Error::InvalidArgument(why.to_owned()));
    match req {
        Request::Ping => refuse("pings are the session's job"),
        Request::SetWatches(_) | Request::SetWatches2(_) => {
            refuse("watches are re-armed by the session")
        }
        Request::CloseSession => refuse("use close() to end the session"),
        Request::Sasl(_) => refuse("SASL is not supported"),
        Request::Check(_) => refuse(
            "check is only valid inside a transaction (a standalone check breaks servers before 3.8.5)",
        ),
        Request::Create(r) | Request::Create2(r) | Request::CreateContainer(r) => {
            validate_path(&r.path, is_sequential(r.flags))
        }
        Request::CreateTtl(r) => validate_path(&r.path, is_sequential(r.flags)),
        Request::Multi(ops) | Request::MultiRead(ops) => ops.iter().try_for_each(|op| {
            let seq = match op {
                MultiOp::Create(r) | MultiOp::Create2(r) | MultiOp::CreateContainer(r) => {
                    is_sequential(r.flags)
                }
                MultiOp::CreateTtl(r) => is_sequential(r.flags),
                _ => false,
            };
            validate_path(op.path(), seq)
        }),
        Request::GetEphemerals(r) => {
            // A plain string prefix, not a path: "/fo" matches "/foo". Only the leading slash
            // is required (empty means everything).
            if r.path.is_empty() || r.path.starts_with('/') {
                Ok(())
            } else {
                Err(Error::InvalidPath {
                    path: r.path.clone(),
                    reason: "prefix must start with /",
                })
            }
        }
        Request::Reconfig(_) | Request::WhoAmI | Request::Auth(_) => Ok(()),
        other => validate_path(request_path(other), false),
    }
}

/// Adds the chroot to every path of a request (PROTOCOL.md §12).
pub(crate) fn apply_chroot(chroot: &Chroot, req: &mut Request) {
    if chroot.as_str().is_none() {
        return;
    }
    match req {
        Request::Create(r) | Request::Create2(r) | Request::CreateContainer(r) => {
            chroot.apply(&mut r.path)
        }
        Request::CreateTtl(r) => chroot.apply(&mut r.path),
        Request::Delete(r) | Request::Check(r) => chroot.apply(&mut r.path),
        Request::Exists(r)
        | Request::GetData(r)
        | Request::GetChildren(r)
        | Request::GetChildren2(r) => chroot.apply(&mut r.path),
        Request::SetData(r) => chroot.apply(&mut r.path),
        Request::GetAcl(r) | Request::Sync(r) | Request::GetAllChildrenNumber(r) => {
            chroot.apply(&mut r.path)
        }
        Request::GetEphemerals(r) => {
            // The prefix is plain text: "/" under chroot "/app" must become "/app/", or it would
            // also match "/apple".
            let root = chroot.as_str().unwrap_or("");
            r.path = if r.path.is_empty() || r.path == "/" {
                format!("{root}/")
            } else {
                format!("{root}{}", r.path)
            };
        }
        Request::SetAcl(r) => chroot.apply(&mut r.path),
        Request::CheckWatches(r) | Request::RemoveWatches(r) => chroot.apply(&mut r.path),
        Request::AddWatch(r) => chroot.apply(&mut r.path),
        Request::Multi(ops) | Request::MultiRead(ops) => {
            for op in ops {
                chroot.apply(op.path_mut());
            }
        }
        _ => {}
    }
}

/// Removes the chroot from every path in a reply (PROTOCOL.md §12), including the create results
/// of a multi and the getEphemerals list, which the Java client leaves prefixed.
pub(crate) fn strip_chroot(chroot: &Chroot, resp: &mut Response) {
    if chroot.as_str().is_none() {
        return;
    }
    match resp {
        Response::Create { path } | Response::Create2 { path, .. } | Response::Sync { path } => {
            chroot.strip(path)
        }
        Response::Multi(results) => {
            for r in results {
                if let MultiResult::Create { path } | MultiResult::Create2 { path, .. } = r {
                    chroot.strip(path);
                }
            }
        }
        Response::Ephemerals { paths } => {
            paths.retain(|p| chroot.to_client(p).is_some());
            for p in paths {
                chroot.strip(p);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{CreateRequest, PathRequest, PathVersionRequest, PathWatchRequest};

    fn create(path: &str, flags: i32) -> Request {
        Request::Create(CreateRequest {
            path: path.into(),
            data: None,
            acl: vec![].into(),
            flags,
        })
    }

    #[test]
    fn refuses_what_a_user_must_not_send() {
        assert!(validate(&Request::Ping).is_err());
        assert!(validate(&Request::CloseSession).is_err());
        let check = Request::Check(PathVersionRequest {
            path: "/a".into(),
            version: 0,
        });
        assert!(matches!(validate(&check), Err(Error::InvalidArgument(_))));
    }

    #[test]
    fn sequential_creates_may_end_in_slash() {
        assert!(validate(&create("/q/", 2)).is_ok());
        assert!(matches!(
            validate(&create("/q/", 0)),
            Err(Error::InvalidPath { .. })
        ));
        let read = Request::GetData(PathWatchRequest {
            path: "bad".into(),
            watch: false,
        });
        assert!(matches!(validate(&read), Err(Error::InvalidPath { .. })));
    }

    #[test]
    fn chroot_goes_on_every_path_and_comes_off_every_reply() {
        let root = Chroot::new("/app").unwrap();
        let mut req = Request::Multi(vec![MultiOp::Delete(PathVersionRequest {
            path: "/x".into(),
            version: -1,
        })]);
        apply_chroot(&root, &mut req);
        let Request::Multi(ops) = &req else {
            unreachable!()
        };
        assert_eq!(ops[0].path(), "/app/x");

        let mut eph = Request::GetEphemerals(PathRequest { path: "/".into() });
        apply_chroot(&root, &mut eph);
        assert_eq!(request_path(&eph), "/app/");

        let mut resp = Response::Ephemerals {
            paths: vec!["/app/e".into(), "/apple".into()],
        };
        strip_chroot(&root, &mut resp);
        assert_eq!(
            resp,
            Response::Ephemerals {
                paths: vec!["/e".into()]
            }
        );
        let mut multi = Response::Multi(vec![MultiResult::Create {
            path: "/app/n".into(),
        }]);
        strip_chroot(&root, &mut multi);
        assert_eq!(
            multi,
            Response::Multi(vec![MultiResult::Create { path: "/n".into() }])
        );
    }
}
