//! Path rules (PROTOCOL.md §8.5) and the chroot mapping (§12).
//!
//! Paths are checked on the client before anything is sent, with the server's own rules, so a bad
//! path is a typed error naming the problem instead of a BadArguments (or a silent NoNode) from the
//! server. The chroot is purely client-side: it is added to every path that goes out and removed
//! from every path that comes back.

use crate::error::Error;

/// Checks `path` against the server's rules. A sequential create may end in `/` (the server
/// appends the sequence number first), so `sequential` relaxes that one rule.
///
/// Errors with [`Error::InvalidPath`] saying what is wrong.
pub fn validate_path(path: &str, sequential: bool) -> Result<(), Error> {
    let bad = |reason| {
        Err(Error::InvalidPath {
            path: path.to_owned(),
            reason,
        })
    };
    if path.is_empty() {
        return bad("path must not be empty");
    }
    if !path.starts_with('/') {
        return bad("path must start with /");
    }
    if path.len() == 1 {
        return Ok(());
    }
    if path.ends_with('/') && !sequential {
        return bad("path must not end with /");
    }
    let checked = if path.is_ascii() {
        check_ascii(path.as_bytes(), sequential)
    } else {
        check_any(path, sequential)
    };
    checked.or_else(bad)
}

/// The component and character rules for an ASCII path (nearly all paths): one pass over the
/// bytes, the same rules as [`check_any`], in the same order. It runs for every request, so it
/// keeps only a length and a count of dots per component instead of slicing each one out.
fn check_ascii(bytes: &[u8], sequential: bool) -> Result<(), &'static str> {
    let relative = |len: usize, dots: usize| len == dots && len <= 2;
    let (mut len, mut dots) = (0usize, 0usize);
    for &b in &bytes[1..] {
        if b == b'/' {
            if len == 0 {
                return Err("empty node name (//)");
            }
            if relative(len, dots) {
                return Err("relative paths (. and ..) are not allowed");
            }
            (len, dots) = (0, 0);
        } else if b < 0x20 || b == 0x7f {
            return Err("path contains a character ZooKeeper does not allow");
        } else {
            len += 1;
            dots += usize::from(b == b'.');
        }
    }
    // The last component is empty only for a sequential prefix, which the server completes.
    if len == 0 && !sequential {
        return Err("empty node name (//)");
    }
    if len > 0 && relative(len, dots) {
        return Err("relative paths (. and ..) are not allowed");
    }
    Ok(())
}

/// The component and character rules for any path that starts with `/` and is longer than
/// that. Components are checked one by one; a sequential prefix ending in `/` has an empty last
/// component, which the server fills in.
fn check_any(path: &str, sequential: bool) -> Result<(), &'static str> {
    let body = &path[1..];
    let mut components = body.split('/').peekable();
    while let Some(c) = components.next() {
        let last = components.peek().is_none();
        if c.is_empty() && !(last && sequential) {
            return Err("empty node name (//)");
        }
        if c == "." || c == ".." {
            return Err("relative paths (. and ..) are not allowed");
        }
    }
    for ch in path.chars() {
        let bad_char = ch == '\u{0}'
            || ('\u{1}'..='\u{1f}').contains(&ch)
            || ('\u{7f}'..='\u{9f}').contains(&ch)
            || ('\u{e000}'..='\u{f8ff}').contains(&ch)
            || ('\u{fff0}'..='\u{ffff}').contains(&ch);
        if bad_char {
            return Err("path contains a character ZooKeeper does not allow");
        }
    }
    Ok(())
}

/// The parent of a valid path (`/` for top-level nodes), or `None` for `/` itself.
pub fn parent(path: &str) -> Option<&str> {
    if path == "/" || path == MARKED_ROOT {
        return None;
    }
    match path.rfind('/') {
        Some(0) => Some("/"),
        // A session key outside the chroot (`@/a`): its root is the server's root, `@/`.
        Some(1) if path.starts_with(OUTSIDE_CHROOT) => Some(MARKED_ROOT),
        Some(i) => Some(&path[..i]),
        None => None,
    }
}

/// The last component of a path (`""` for `/`).
pub fn basename(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or("")
}

/// Joins a parent path and a child name.
pub fn join(parent: &str, child: &str) -> String {
    if parent == "/" {
        format!("/{child}")
    } else {
        format!("{parent}/{child}")
    }
}

/// `path` and every ancestor up to `/`, deepest first: `/a/b` gives `/a/b`, `/a`, `/`.
pub fn ancestors_inclusive(path: &str) -> impl Iterator<Item = &str> {
    let mut next = Some(path);
    std::iter::from_fn(move || {
        let cur = next?;
        next = parent(cur);
        Some(cur)
    })
}

/// The first character of a session key that names a server path outside the chroot (a request
/// submitted with `absolute_path`, such as a read of `/zookeeper/config` with a watch). Valid
/// paths start with `/`, so no client path can look like it.
pub(crate) const OUTSIDE_CHROOT: char = '@';

/// The session key of the server's root seen from under a chroot.
const MARKED_ROOT: &str = "@/";

/// What a user sees of a session key: the path, without the mark of a path outside the chroot.
pub(crate) fn shown(key: &str) -> &str {
    key.strip_prefix(OUTSIDE_CHROOT).unwrap_or(key)
}

/// The client's chroot: a path prefix added to every request and stripped from every reply.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Chroot {
    /// `None` means no chroot (the connect string had none, or `/`).
    prefix: Option<String>,
}

impl Chroot {
    /// A chroot from a path; `/` (or empty) means none.
    ///
    /// Errors with [`Error::InvalidPath`] if the chroot is not a valid path.
    pub fn new(path: &str) -> Result<Self, Error> {
        if path.is_empty() || path == "/" {
            return Ok(Chroot::default());
        }
        validate_path(path, false)?;
        Ok(Chroot {
            prefix: Some(path.to_owned()),
        })
    }

    /// No chroot.
    pub fn none() -> Self {
        Chroot::default()
    }

    /// The chroot path, or `None`.
    pub fn as_str(&self) -> Option<&str> {
        self.prefix.as_deref()
    }

    /// The server path for a client path: the chroot for `/`, chroot + path otherwise.
    pub fn to_server(&self, path: &str) -> String {
        match &self.prefix {
            None => path.to_owned(),
            Some(root) if path == "/" => root.clone(),
            Some(root) => format!("{root}{path}"),
        }
    }

    /// Prefixes a path in place (no allocation without a chroot).
    pub fn apply(&self, path: &mut String) {
        if let Some(root) = &self.prefix {
            if path == "/" {
                path.clone_from(root);
            } else {
                path.insert_str(0, root);
            }
        }
    }

    /// The client path for a server path: `/` for the chroot itself, the rest for paths under it,
    /// `None` for paths outside it.
    pub fn to_client<'a>(&self, path: &'a str) -> Option<&'a str> {
        match &self.prefix {
            None => Some(path),
            Some(root) => {
                let rest = path.strip_prefix(root.as_str())?;
                if rest.is_empty() {
                    Some("/")
                } else if rest.starts_with('/') {
                    Some(rest)
                } else {
                    // `/apple` is not under `/app`.
                    None
                }
            }
        }
    }

    /// The server path for a session key: a client path gets the chroot, a marked key (see
    /// [`key_of_server`](Self::key_of_server)) loses its mark.
    pub(crate) fn key_to_server(&self, key: &str) -> String {
        match key.strip_prefix(OUTSIDE_CHROOT) {
            Some(server) => server.to_owned(),
            None => self.to_server(key),
        }
    }

    /// The session key for a server path, both for a watch set with `absolute_path` and for a
    /// notification: its client path when it lies under the chroot (or there is none), else the
    /// path behind [`OUTSIDE_CHROOT`], so it can never be taken for the client path of the same
    /// name (`/zookeeper/config` under chroot `/app` is the server's `/app/zookeeper/config`).
    pub(crate) fn key_of_server<'a>(&self, path: &'a str) -> std::borrow::Cow<'a, str> {
        match self.to_client(path) {
            Some(client) => std::borrow::Cow::Borrowed(client),
            None => std::borrow::Cow::Owned(format!("{OUTSIDE_CHROOT}{path}")),
        }
    }

    /// Strips the chroot from a path in place; paths outside the chroot are left unchanged (as
    /// the Java client does for notifications).
    pub fn strip(&self, path: &mut String) {
        if self.prefix.is_none() {
            return;
        }
        if let Some(client) = self.to_client(path) {
            let client = client.to_owned();
            *path = client;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_outside_the_chroot_never_meet_client_paths() {
        let app = Chroot::new("/app").unwrap();
        let key = app.key_of_server("/zookeeper/config");
        assert_eq!(key, "@/zookeeper/config");
        assert_eq!(app.key_to_server(&key), "/zookeeper/config");
        assert_eq!(
            app.key_to_server("/zookeeper/config"),
            "/app/zookeeper/config"
        );
        assert_eq!(
            app.key_of_server("/app/zookeeper/config"),
            "/zookeeper/config"
        );
        assert_eq!(app.key_of_server("/apple"), "@/apple");
        assert_eq!(shown(&key), "/zookeeper/config");
        // Inside the chroot an absolute path is keyed as its client path, as its notification is.
        assert_eq!(app.key_of_server("/app/x"), "/x");
        assert_eq!(app.key_of_server("/app"), "/");
        // The server's root, and a recursive walk up to it, stay outside the client's paths.
        let root = app.key_of_server("/");
        assert_eq!(root, "@/");
        let up: Vec<&str> = ancestors_inclusive("@/a/b").collect();
        assert_eq!(up, ["@/a/b", "@/a", "@/"]);
        // No chroot: every path is a client path and keys are plain.
        let none = Chroot::none();
        assert_eq!(none.key_of_server("/zookeeper/config"), "/zookeeper/config");
        // A marked key's ancestors never reach a client path, so recursive watches on the
        // client's `/` do not hear of nodes outside the chroot.
        assert!(ancestors_inclusive(&key).all(|p| p.starts_with(OUTSIDE_CHROOT)));
    }

    #[test]
    fn server_path_rules() {
        for ok in ["/", "/a", "/a/b", "/a.b", "/..a", "/ü"] {
            assert!(validate_path(ok, false).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "a",
            "/a/",
            "//",
            "/a//b",
            "/.",
            "/a/..",
            "/a\u{0}",
            "/\u{1f}",
            "/\u{e000}",
        ] {
            assert!(
                matches!(validate_path(bad, false), Err(Error::InvalidPath { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn ascii_fast_path_agrees_with_the_general_rules() {
        // Every path over a small alphabet that reaches the component checks: the one-pass
        // ASCII check must accept and refuse exactly what the general one does.
        let alphabet = [b'/', b'.', b'a', 0x01, 0x7f];
        for len in 1..=6u32 {
            for n in 0..5usize.pow(len) {
                let mut path = vec![b'/'];
                let mut k = n;
                for _ in 0..len {
                    path.push(alphabet[k % 5]);
                    k /= 5;
                }
                let text = std::str::from_utf8(&path).expect("ASCII");
                for sequential in [false, true] {
                    assert_eq!(
                        check_ascii(&path, sequential).is_ok(),
                        check_any(text, sequential).is_ok(),
                        "{text:?} sequential={sequential}"
                    );
                }
            }
        }
    }

    #[test]
    fn sequential_prefix_may_end_in_slash() {
        assert!(validate_path("/queue/", true).is_ok());
        assert!(validate_path("/queue/", false).is_err());
        assert!(validate_path("//", true).is_err());
    }

    #[test]
    fn chroot_maps_both_ways() {
        let c = Chroot::new("/app").unwrap();
        assert_eq!(c.to_server("/"), "/app");
        assert_eq!(c.to_server("/x"), "/app/x");
        assert_eq!(c.to_client("/app"), Some("/"));
        assert_eq!(c.to_client("/app/x"), Some("/x"));
        assert_eq!(c.to_client("/apple"), None);
        assert_eq!(c.to_client("/other"), None);
        let mut p = "/app/x/y".to_owned();
        c.strip(&mut p);
        assert_eq!(p, "/x/y");
        let mut q = "/".to_owned();
        c.apply(&mut q);
        assert_eq!(q, "/app");
    }

    #[test]
    fn root_chroot_is_none() {
        assert_eq!(Chroot::new("/").unwrap(), Chroot::none());
        assert!(Chroot::new("/bad/").is_err());
    }

    #[test]
    fn ancestors_walk_to_root() {
        let v: Vec<&str> = ancestors_inclusive("/a/b/c").collect();
        assert_eq!(v, ["/a/b/c", "/a/b", "/a", "/"]);
        assert_eq!(parent("/a"), Some("/"));
        assert_eq!(basename("/a/b"), "b");
        assert_eq!(join("/", "x"), "/x");
        assert_eq!(join("/a", "x"), "/a/x");
    }
}
