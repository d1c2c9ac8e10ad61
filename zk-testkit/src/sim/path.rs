//! ZooKeeper's path rules as the server applies them (PROTOCOL.md §8.5): what a valid path is, how
//! a create or delete finds the parent it checks, and the ancestor chain recursive watches see.
//!
//! The server is deliberately lax in places (a create validates only its *final* path; reads never
//! validate at all), so these helpers mirror the Java checks one by one instead of offering a single
//! "normalise" function that would hide those differences.

/// The root path.
pub(crate) const ROOT: &str = "/";

/// Paths a client may never delete (`DataTree.isSpecialPath`).
const SPECIAL: [&str; 4] = ["/", "/zookeeper", "/zookeeper/quota", "/zookeeper/config"];

/// `PathUtils.validatePath`: starts with `/`, no trailing `/` (except the root), no empty, `.` or
/// `..` component, none of the forbidden characters (§8.5).
pub(crate) fn is_valid(path: &str) -> bool {
    let Some(rest) = path.strip_prefix('/') else {
        return false;
    };
    if rest.is_empty() {
        return true;
    }
    if rest.ends_with('/') {
        return false;
    }
    if rest
        .split('/')
        .any(|c| c.is_empty() || c == "." || c == "..")
    {
        return false;
    }
    !path.chars().any(forbidden_char)
}

/// Characters Java's validator refuses. It looks at UTF-16 code units, so every character outside
/// the BMP (a surrogate pair, U+D800..U+DFFF) is refused too.
fn forbidden_char(c: char) -> bool {
    let u = u32::from(c);
    u <= 0x1f
        || (0x7f..=0x9f).contains(&u)
        || (0xd800..=0xf8ff).contains(&u)
        || (0xfff0..=0xffff).contains(&u)
        || u > 0xffff
}

/// The parent a create checks (`validatePathForCreate`): everything before the last `/`, the
/// root for a top-level node. `None` (BadArguments) when there is no `/` or the path holds a NUL.
pub(crate) fn parent_for_create(path: &str) -> Option<&str> {
    if path.contains('\0') {
        return None;
    }
    let last = path.rfind('/')?;
    Some(if last == 0 { ROOT } else { &path[..last] })
}

/// The parent a delete checks (`getParentPathAndValidate`): as for create, and the special nodes
/// (`/`, `/zookeeper`, its quota and config children) can never be deleted.
pub(crate) fn parent_for_delete(path: &str) -> Option<&str> {
    if SPECIAL.contains(&path) {
        return None;
    }
    parent_for_create(path)
}

/// The parent of a node path known to be valid and not the root.
pub(crate) fn parent(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => ROOT,
        Some(i) => &path[..i],
    }
}

/// The last component of a path.
pub(crate) fn name(path: &str) -> &str {
    match path.rfind('/') {
        Some(i) => &path[i + 1..],
        None => path,
    }
}

/// Strict ancestors of a path, nearest first, ending at the root: `/a/b` gives `/a`, `/`.
/// This is the walk of `PathParentIterator` (minus the path itself), used by recursive watches.
pub(crate) fn ancestors(path: &str) -> impl Iterator<Item = &str> {
    let mut cur = (path.starts_with('/') && path != ROOT).then_some(path);
    std::iter::from_fn(move || {
        let up = parent(cur?);
        // `parent` always returns a strict prefix or the root, so this ends.
        cur = (up != ROOT).then_some(up);
        Some(up)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validity_follows_path_utils() {
        for ok in ["/", "/a", "/a/b", "/a.b", "/...", "/a/.b", "/é"] {
            assert!(is_valid(ok), "{ok}");
        }
        for bad in [
            "",
            "a",
            "/a/",
            "//a",
            "/a//b",
            "/.",
            "/..",
            "/a/./b",
            "/a/..",
            "/a\0",
            "/a\u{1}",
            "/\u{7f}",
            "/\u{e000}",
            "/\u{fff0}",
            "/😀",
        ] {
            assert!(!is_valid(bad), "{bad:?}");
        }
    }

    #[test]
    fn parents_for_create_and_delete() {
        assert_eq!(parent_for_create("/a"), Some("/"));
        assert_eq!(parent_for_create("/a/b"), Some("/a"));
        assert_eq!(parent_for_create("/a/"), Some("/a"));
        assert_eq!(parent_for_create("/"), Some("/"));
        assert_eq!(parent_for_create("a"), None);
        assert_eq!(parent_for_create("/a\0"), None);
        assert_eq!(parent_for_delete("/zookeeper"), None);
        assert_eq!(parent_for_delete("/zookeeper/x"), Some("/zookeeper"));
    }

    #[test]
    fn ancestors_walk_to_the_root() {
        assert_eq!(ancestors("/a/b/c").collect::<Vec<_>>(), ["/a/b", "/a", "/"]);
        assert_eq!(ancestors("/a").collect::<Vec<_>>(), ["/"]);
        assert_eq!(ancestors("/").count(), 0);
        assert_eq!(ancestors("nope").count(), 0);
        assert_eq!(name("/a/b"), "b");
    }
}
