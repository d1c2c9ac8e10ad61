//! Output: zkCli's text layouts (Stat, ACL, lists, events) and the JSON form of each, written to
//! stdout, or above the shell's prompt for events that arrive while the user types.

use std::io::Write;
use std::sync::{Arc, Mutex};

use serde_json::{json, Map, Value};
use zk_core::proto::{Acl, EventType, Perms, Stat};
use zk_core::{SessionState, WatchedEvent};

/// Where lines go.
#[derive(Clone)]
pub struct Out {
    /// Print JSON instead of text.
    pub json: bool,
    /// Prints above rustyline's prompt while it is active (the interactive shell).
    printer: Option<Arc<Mutex<dyn rustyline::ExternalPrinter + Send>>>,
}

impl std::fmt::Debug for Out {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Out").field("json", &self.json).finish()
    }
}

impl Out {
    /// Output to stdout.
    pub fn new(json: bool) -> Out {
        Out {
            json,
            printer: None,
        }
    }

    /// Output that goes through rustyline's printer when it is given (the interactive shell).
    pub fn with_printer(
        json: bool,
        printer: Option<Arc<Mutex<dyn rustyline::ExternalPrinter + Send>>>,
    ) -> Out {
        Out { json, printer }
    }

    /// Prints a command's result: `text` (an empty line if empty, as zkCli prints empty data)
    /// or `value` as one JSON line.
    pub fn emit(&self, text: &str, value: Value) {
        if self.json {
            self.line(&value.to_string());
        } else {
            self.line(text.strip_suffix('\n').unwrap_or(text));
        }
    }

    /// Prints one line (or several joined by newlines) and flushes. Errors writing to stdout (a
    /// closed pipe) are ignored: there is nobody to tell.
    pub fn line(&self, text: &str) {
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "{text}");
        let _ = stdout.flush();
    }

    /// Prints a line that may arrive while the shell's prompt is shown (a watch event).
    pub fn async_line(&self, text: &str) {
        match &self.printer {
            Some(p) => {
                let sent = match p.lock() {
                    Ok(mut p) => p.print(format!("{text}\n")).is_ok(),
                    Err(_) => false,
                };
                if !sent {
                    self.line(text);
                }
            }
            None => self.line(text),
        }
    }

    /// Prints an asynchronous event: `text` or `value` as JSON.
    pub fn async_emit(&self, text: &str, value: Value) {
        if self.json {
            self.async_line(&value.to_string());
        } else {
            self.async_line(text);
        }
    }
}

/// zkCli's Stat layout: `cZxid = 0x..` and so on, one field a line.
pub fn stat_text(s: &Stat) -> String {
    format!(
        "cZxid = 0x{:x}\nctime = {}\nmZxid = 0x{:x}\nmtime = {}\npZxid = 0x{:x}\ncversion = {}\n\
         dataVersion = {}\naclVersion = {}\nephemeralOwner = 0x{:x}\ndataLength = {}\nnumChildren = {}",
        s.czxid,
        java_date(s.ctime),
        s.mzxid,
        java_date(s.mtime),
        s.pzxid,
        s.cversion,
        s.version,
        s.aversion,
        s.ephemeral_owner,
        s.data_length,
        s.num_children
    )
}

/// A Stat as JSON, with zkCli's field names.
pub fn stat_json(s: &Stat) -> Value {
    json!({
        "cZxid": s.czxid,
        "ctime": s.ctime,
        "mZxid": s.mzxid,
        "mtime": s.mtime,
        "pZxid": s.pzxid,
        "cversion": s.cversion,
        "dataVersion": s.version,
        "aclVersion": s.aversion,
        "ephemeralOwner": s.ephemeral_owner,
        "dataLength": s.data_length,
        "numChildren": s.num_children,
    })
}

/// Milliseconds since the epoch as Java's `Date.toString()` writes them, in UTC:
/// `Thu Jan 01 00:00:00 UTC 1970`.
pub fn java_date(ms: i64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let tod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let weekday = DAYS[days.rem_euclid(7) as usize];
    let month = MONTHS[(m - 1).clamp(0, 11) as usize];
    format!(
        "{weekday} {month} {d:02} {:02}:{:02}:{:02} UTC {y}",
        tod / 3600,
        tod / 60 % 60,
        tod % 60
    )
}

/// Days since 1970-01-01 to (year, month 1-12, day 1-31), proleptic Gregorian (H. Hinnant's
/// algorithm).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Permission bits as zkCli's letters, in its order: `cdrwa`.
pub fn perms_text(p: Perms) -> String {
    [
        (Perms::CREATE, 'c'),
        (Perms::DELETE, 'd'),
        (Perms::READ, 'r'),
        (Perms::WRITE, 'w'),
        (Perms::ADMIN, 'a'),
    ]
    .iter()
    .filter(|(bit, _)| p.contains(*bit))
    .map(|(_, c)| *c)
    .collect()
}

/// zkCli's getAcl layout: `'world,'anyone` then `: cdrwa`, per entry.
pub fn acl_text(acl: &[Acl]) -> String {
    acl.iter()
        .map(|a| format!("'{},'{}\n: {}", a.id.scheme, a.id.id, perms_text(a.perms)))
        .collect::<Vec<_>>()
        .join("\n")
}

/// An ACL as JSON: `[{"scheme","id","perms"}]`.
pub fn acl_json(acl: &[Acl]) -> Value {
    Value::Array(
        acl.iter()
            .map(|a| json!({"scheme": a.id.scheme, "id": a.id.id, "perms": perms_text(a.perms)}))
            .collect(),
    )
}

/// A list as Java prints one: `[a, b]`.
pub fn java_list(items: &[String]) -> String {
    format!("[{}]", items.join(", "))
}

/// Node data as JSON fields: `data` (the text, or null when not UTF-8) and `dataBase64`.
pub fn data_json(obj: &mut Map<String, Value>, data: &[u8]) {
    let text = std::str::from_utf8(data).ok();
    obj.insert("data".into(), text.map_or(Value::Null, |t| t.into()));
    obj.insert("dataBase64".into(), base64(data).into());
}

/// Standard base64 with padding.
pub fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The name of an event type, as the Java client's enum says it.
pub fn event_type_name(t: EventType) -> String {
    match t {
        EventType::None => "None".into(),
        EventType::NodeCreated => "NodeCreated".into(),
        EventType::NodeDeleted => "NodeDeleted".into(),
        EventType::NodeDataChanged => "NodeDataChanged".into(),
        EventType::NodeChildrenChanged => "NodeChildrenChanged".into(),
        EventType::DataWatchRemoved => "DataWatchRemoved".into(),
        EventType::ChildWatchRemoved => "ChildWatchRemoved".into(),
        EventType::PersistentWatchRemoved => "PersistentWatchRemoved".into(),
        other => format!("{other:?}"),
    }
}

/// zkCli's line for a watch event: `WatchedEvent state:SyncConnected type:NodeDataChanged path:/x`.
pub fn event_text_zkcli(e: &WatchedEvent) -> String {
    format!(
        "WatchedEvent state:SyncConnected type:{} path:{}",
        event_type_name(e.event_type),
        e.path
    )
}

/// The `watch` command's line: `NodeDataChanged /x`.
pub fn event_text_short(e: &WatchedEvent) -> String {
    format!("{} {}", event_type_name(e.event_type), e.path)
}

/// An event as JSON: `{"event","path","zxid"}` (zxid -1 when the server does not send it).
pub fn event_json(e: &WatchedEvent) -> Value {
    json!({"event": event_type_name(e.event_type), "path": e.path, "zxid": e.zxid})
}

/// The Java client's name of a session state (`KeeperState`), as zkCli prints it in events.
pub fn keeper_state(s: SessionState) -> &'static str {
    match s {
        SessionState::Connected => "SyncConnected",
        SessionState::ConnectedReadOnly => "ConnectedReadOnly",
        SessionState::Suspended | SessionState::Connecting => "Disconnected",
        SessionState::Lost(zk_core::LostReason::Expired) => "Expired",
        SessionState::Lost(zk_core::LostReason::AuthFailed) => "AuthFailed",
        SessionState::Lost(_) => "Closed",
        _ => "Unknown",
    }
}

/// zkCli's prompt name of a session state: CONNECTED, CONNECTING, CLOSED.
pub fn prompt_state(s: SessionState) -> &'static str {
    match s {
        SessionState::Connected => "CONNECTED",
        SessionState::ConnectedReadOnly => "CONNECTEDREADONLY",
        SessionState::Suspended | SessionState::Connecting => "CONNECTING",
        SessionState::Lost(_) => "CLOSED",
        _ => "UNKNOWN",
    }
}

/// Draws a tree of sorted child names under `root` (`children` gives a node's children).
pub fn tree_text(root: &str, children: &dyn Fn(&str) -> Vec<String>) -> String {
    let mut out = String::from(root);
    // An explicit stack: (path, prefix for its children, is it its parent's last child).
    let mut stack: Vec<(String, String)> = Vec::new();
    let push_children = |stack: &mut Vec<(String, String)>, path: &str, prefix: &str| {
        let kids = children(path);
        let n = kids.len();
        for (i, k) in kids.into_iter().enumerate().rev() {
            let last = i + 1 == n;
            let (branch, cont) = if last {
                ("└── ", "    ")
            } else {
                ("├── ", "│   ")
            };
            stack.push((
                zk_core::path::join(path, &k),
                format!("{prefix}{branch}\u{0}{prefix}{cont}"),
            ));
        }
    };
    push_children(&mut stack, root, "");
    while let Some((path, prefixes)) = stack.pop() {
        let (line_prefix, child_prefix) = prefixes.split_once('\u{0}').unwrap_or(("", ""));
        out.push('\n');
        out.push_str(line_prefix);
        out.push_str(zk_core::path::basename(&path));
        push_children(&mut stack, &path, child_prefix);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_like_java() {
        assert_eq!(java_date(0), "Thu Jan 01 00:00:00 UTC 1970");
        assert_eq!(java_date(1_700_000_000_000), "Tue Nov 14 22:13:20 UTC 2023");
        assert_eq!(java_date(951_782_400_000), "Tue Feb 29 00:00:00 UTC 2000");
    }

    #[test]
    fn stat_layout() {
        let s = Stat {
            czxid: 0x10,
            mzxid: 0x11,
            ctime: 0,
            mtime: 0,
            version: 1,
            cversion: 2,
            aversion: 0,
            ephemeral_owner: 0x100,
            data_length: 5,
            num_children: 0,
            pzxid: 0x10,
        };
        let t = stat_text(&s);
        assert!(t.starts_with("cZxid = 0x10\nctime = Thu Jan 01 00:00:00 UTC 1970\nmZxid = 0x11\n"));
        assert!(t.ends_with("ephemeralOwner = 0x100\ndataLength = 5\nnumChildren = 0"));
        assert_eq!(stat_json(&s)["dataVersion"], 1);
    }

    #[test]
    fn base64_and_perms() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
        assert_eq!(perms_text(Perms::ALL), "cdrwa");
        assert_eq!(perms_text(Perms::READ | Perms::ADMIN), "ra");
    }

    #[test]
    fn draws_trees() {
        let kids = |p: &str| -> Vec<String> {
            match p {
                "/a" => vec!["b".into(), "c".into()],
                "/a/b" => vec!["d".into()],
                _ => vec![],
            }
        };
        assert_eq!(tree_text("/a", &kids), "/a\n├── b\n│   └── d\n└── c");
    }
}
