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
//! Run it with `cargo run --manifest-path fuzz/Cargo.toml --example seed_corpus`; scripts/fuzz
//! does so before every run.

use std::fs;
use std::path::{Path, PathBuf};

use zk_core::proto::OpCode;

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

/// Empties the target's corpus of earlier seeds and writes the new ones.
fn write(dir: &Path, seeds: &[(String, Vec<u8>)]) -> Result<()> {
    let err = |e: std::io::Error| format!("{}: {e}", dir.display());
    fs::create_dir_all(dir).map_err(err)?;
    for f in fs::read_dir(dir).map_err(err)? {
        let f = f.map_err(err)?;
        if f.file_name().to_string_lossy().starts_with("golden-") {
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
        fs::write(dir.join(format!("golden-{name}")), bytes).map_err(err)?;
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

    let corpus = fuzz.join("corpus");
    write(&corpus.join("request_decoder"), &requests)?;
    write(&corpus.join("reply_decoder"), &replies)?;
    write(&corpus.join("frame_decoder"), &frames)?;
    Ok(())
}

fn main() {
    if let Err(e) = run() {
        eprintln!("seed_corpus: {e}");
        std::process::exit(1);
    }
}
