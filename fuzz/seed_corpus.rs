//! Writes the fuzzers' seed corpus from the golden frames, so that frames captured from a real
//! server stay the one source of truth for both the golden test and the fuzzers' starting points.
//!
//! Reads `zk-core/tests/golden/frames.txt` (format: the top of zk-core/tests/golden.rs) and
//! replaces every `golden-*` file in `fuzz/corpus/<target>/` (files libFuzzer added are kept):
//!
//! - `request_decoder`: each client frame (every kind but `4lw` and `oversize`), without its length
//!   prefix.
//! - `reply_decoder`: each server frame without its length prefix, after one byte: for `reply <op>`
//!   the index of `<op>` in `OpCode::ALL`, else 0 (connect, notification, ...).
//! - `frame_decoder`: each entry's bytes as captured (prefix included; 4lw and oversize too), and
//!   each direction's frames back to back, after the control bytes frame_decoder.rs describes.
//!
//! It also writes `fuzz/corpus/session/script-*`: hand-made scripts for the `session` target
//! (format: session_script.rs) that get through the handshake to replies, watches, reconnects,
//! expiry, read-only mode and close, so the fuzzer starts past the parts random bytes reach slowly.
//!
//! Run it with `cargo run --manifest-path fuzz/Cargo.toml --example seed_corpus`; scripts/fuzz
//! does so before every run.

use std::fs;
use std::path::{Path, PathBuf};

use zk_core::proto::OpCode;

#[path = "session_script.rs"]
mod script;
use script::*;

struct Entry {
    name: String,
    from: String,
    kind: String,
    raw: Vec<u8>,
}

type Result<T> = std::result::Result<T, String>;

fn unhex(s: &str) -> Result<Vec<u8>> {
    let digits: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    if !digits.len().is_multiple_of(2) {
        return Err("odd number of hex digits".into());
    }
    digits
        .chunks(2)
        .map(|p| {
            std::str::from_utf8(p)
                .ok()
                .and_then(|p| u8::from_str_radix(p, 16).ok())
                .ok_or_else(|| format!("bad hex digits {:?}", String::from_utf8_lossy(p)))
        })
        .collect()
}

/// The same line format golden.rs reads; fields other than from, kind and hex are skipped.
fn load(text: &str) -> Result<Vec<Entry>> {
    let mut entries: Vec<Entry> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            entries.push(Entry {
                name: name.to_owned(),
                from: String::new(),
                kind: String::new(),
                raw: Vec::new(),
            });
            continue;
        }
        let at = |msg: &str| format!("frames.txt:{}: {msg}", i + 1);
        let (key, value) = line
            .split_once('=')
            .ok_or_else(|| at("expected `key = value`"))?;
        let entry = entries
            .last_mut()
            .ok_or_else(|| at("field before any [entry]"))?;
        let value = value.trim();
        match key.trim() {
            "from" => entry.from = value.to_owned(),
            "kind" => entry.kind = value.to_owned(),
            "hex" => entry.raw = unhex(value).map_err(|e| at(&e))?,
            _ => {}
        }
    }
    Ok(entries)
}

/// The index in `OpCode::ALL` of an op as golden.rs names it ("getData", "getACL", "createTTL"):
/// its Debug name, compared without case.
fn op_index(name: &str) -> Result<u8> {
    let i = OpCode::ALL
        .iter()
        .position(|op| format!("{op:?}").eq_ignore_ascii_case(name))
        .ok_or_else(|| format!("unknown op name {name}"))?;
    u8::try_from(i).map_err(|_| "OpCode::ALL has more than 256 entries".into())
}

/// The frame without its 4-byte length prefix.
fn payload(e: &Entry) -> Result<&[u8]> {
    e.raw
        .get(4..)
        .ok_or_else(|| format!("[{}]: shorter than a length prefix", e.name))
}

/// Empties the target's corpus of earlier seeds (files named `<prefix>-*`) and writes the new ones.
fn write(dir: &Path, prefix: &str, seeds: &[(String, Vec<u8>)]) -> Result<()> {
    let err = |e: std::io::Error| format!("{}: {e}", dir.display());
    fs::create_dir_all(dir).map_err(err)?;
    for f in fs::read_dir(dir).map_err(err)? {
        let f = f.map_err(err)?;
        if f.file_name()
            .to_string_lossy()
            .starts_with(&format!("{prefix}-"))
        {
            fs::remove_file(f.path()).map_err(err)?;
        }
    }
    for (name, bytes) in seeds {
        let name: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "._-".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        fs::write(dir.join(format!("{prefix}-{name}")), bytes).map_err(err)?;
    }
    println!("{}: {} seeds", dir.display(), seeds.len());
    Ok(())
}

fn run() -> Result<()> {
    let fuzz = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let src = fuzz.join("../zk-core/tests/golden/frames.txt");
    let text = fs::read_to_string(&src).map_err(|e| format!("{}: {e}", src.display()))?;
    let entries = load(&text)?;

    let mut requests = Vec::new();
    let mut replies = Vec::new();
    // frame_decoder's control bytes: max frame 255 * 16, then piece sizes.
    let whole = [0xff, 1, 7];
    let split = [0xff, 4, 1, 3, 0, 64];
    let mut frames = Vec::new();
    let mut streams = [("client", split.to_vec(), 0), ("server", split.to_vec(), 0)];

    for e in &entries {
        let mut kind = e.kind.split_whitespace();
        let first = kind.next().unwrap_or("");
        // Four-letter words and oversize prefixes are not frames: frame_decoder seeds only.
        let is_frame = !matches!(first, "4lw" | "oversize");
        match e.from.as_str() {
            "client" if is_frame => requests.push((e.name.clone(), payload(e)?.to_vec())),
            "server" if is_frame => {
                let op = if first == "reply" {
                    let name = kind
                        .next()
                        .ok_or_else(|| format!("[{}]: reply needs an op", e.name))?;
                    op_index(name).map_err(|m| format!("[{}]: {m}", e.name))?
                } else {
                    0 // connect, notification, or a kind with no op: any byte will do
                };
                replies.push((e.name.clone(), [&[op][..], payload(e)?].concat()));
            }
            "client" | "server" => {}
            other => return Err(format!("[{}]: unknown from = {other}", e.name)),
        }
        frames.push((e.name.clone(), [&whole[..], &e.raw].concat()));
        // A bad prefix would end a stream early; keep the streams decodable to the end.
        if is_frame {
            for (from, stream, count) in &mut streams {
                if *from == e.from {
                    stream.extend_from_slice(&e.raw);
                    *count += 1;
                }
            }
        }
    }
    for (from, stream, count) in streams {
        if count > 0 {
            frames.push((format!("stream-{from}"), stream));
        }
    }
    // The large-frame path (byte 1's top bit lifts the limit to DEFAULT_MAX_FRAME): a small
    // frame, then one declaring 100,000 bytes whose first 2,000 arrive in pieces of 200.
    let mut large = vec![0, 0x80 | 1, 200];
    large.extend_from_slice(&[0, 0, 0, 3, b'a', b'b', b'c']);
    large.extend_from_slice(&100_000i32.to_be_bytes());
    large.resize(large.len() + 2_000, 7);
    frames.push(("large-partial".to_owned(), large));

    let corpus = fuzz.join("corpus");
    write(&corpus.join("request_decoder"), "golden", &requests)?;
    write(&corpus.join("reply_decoder"), "golden", &replies)?;
    write(&corpus.join("frame_decoder"), "golden", &frames)?;
    write(&corpus.join("session"), "script", &session_scripts()?)?;
    Ok(())
}

/// Turns a script written with op and kind names (session_script.rs, lower case) and numbers
/// into the target's bytes.
fn assemble(text: &str) -> Result<Vec<u8>> {
    const NAMES: [(&str, u8); 30] = [
        ("submit", SUBMIT),
        ("advance", ADVANCE),
        ("connected", CONNECTED),
        ("closed", CLOSED),
        ("raw", RAW),
        ("connect_response", CONNECT_RESPONSE),
        ("reply", REPLY),
        ("notify", NOTIFY),
        ("probe", PROBE),
        ("close", CLOSE),
        ("remove_watcher", REMOVE_WATCHER),
        ("stale", STALE),
        ("reply_all", REPLY_ALL),
        ("wakeup", WAKEUP),
        ("reply_mismatched", REPLY_MISMATCHED),
        ("unsolicited", UNSOLICITED),
        ("get_data", K_GET_DATA),
        ("exists", K_EXISTS),
        ("get_children", K_GET_CHILDREN),
        ("create", K_CREATE),
        ("set_data", K_SET_DATA),
        ("delete", K_DELETE),
        ("multi", K_MULTI),
        ("add_watch", K_ADD_WATCH),
        ("get_ephemerals", K_GET_EPHEMERALS),
        ("auth", K_AUTH),
        ("remove_watches", K_REMOVE_WATCHES),
        ("invalid", K_INVALID),
        // CONNECT_RESPONSE flags: session A with a 4000 ms timeout, read-write or read-only.
        ("rw", 1 << 2),
        ("ro", 1 << 2 | 16),
    ];
    text.split_whitespace()
        .map(|t| {
            NAMES
                .iter()
                .find(|(n, _)| *n == t)
                .map(|(_, v)| *v)
                .or_else(|| t.parse().ok())
                .ok_or_else(|| format!("session script: unknown token {t}"))
        })
        .collect()
}

/// Seeds for the `session` target: scripts that reach the connected state and go on from there.
/// `connected connect_response rw 0` is the handshake; `connect_response 6` answers with another
/// session id, `connect_response 0` says expired; path byte 1 is "/a" with a watch; notify 3 is
/// NodeDataChanged.
fn session_scripts() -> Result<Vec<(String, Vec<u8>)>> {
    let scripts: [(&str, u8, &str); 6] = [
        (
            "get-watch-notify-close",
            0,
            "connected connect_response rw 0  submit get_data 1  reply 0 255  notify 3 0
             submit create 0  submit multi 2  reply_all 0  close  reply 0 255",
        ),
        (
            "auth-chroot-addwatch-reconnect",
            CFG_CHROOT | CFG_AUTH | CFG_REQUEST_TIMEOUT,
            "connected connect_response rw 0  reply 0 255  submit add_watch 1  probe 0
             reply_all 0  notify 3 5  submit exists 3  closed  advance 0
             connected connect_response rw 0  probe 0  reply_all 0  submit get_ephemerals 0
             reply_all 0  advance 100  reply 0 0",
        ),
        (
            "read-only-probe-rw",
            CFG_READ_ONLY | CFG_THREE_HOSTS,
            "connected connect_response ro 0  submit set_data 0  reply 200 0  wakeup  probe 48
             advance 0  connected connect_response rw 0  submit get_children 1  reply_all 0",
        ),
        (
            "expire-and-renew",
            CFG_VERSION_KNOWN,
            "connected connect_response rw 0  submit exists 1  reply 200 0  submit delete 0
             closed  advance 0  connected connect_response 0 0  wakeup
             connected connect_response 6 0  submit remove_watches 24  reply_all 0",
        ),
        (
            "timeouts-and-stale-input",
            CFG_REQUEST_TIMEOUT | CFG_CLIENT_EXPIRY | CFG_NO_RENEW,
            "submit get_data 0  advance 80  connected  advance 144  stale 0  stale 1  wakeup
             connected connect_response rw 0  submit set_data 0  advance 96  wakeup
             unsolicited 0  wakeup  wakeup  remove_watcher 0",
        ),
        (
            "raw-garbage-after-handshake",
            0,
            "connected connect_response rw 0  submit get_data 1  reply_mismatched 3  advance 0
             connected connect_response rw 7  submit set_data 2  raw 8 0 0 0 4 0 0 0 1",
        ),
    ];
    scripts
        .into_iter()
        .map(|(name, cfg, text)| Ok((name.to_owned(), [vec![cfg], assemble(text)?].concat())))
        .collect()
}

fn main() {
    if let Err(e) = run() {
        eprintln!("seed_corpus: {e}");
        std::process::exit(1);
    }
}
