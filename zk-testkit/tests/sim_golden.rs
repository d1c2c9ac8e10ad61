//! Replays the golden transcript captured from a real ZooKeeper 3.8.0 server
//! (zk-core/tests/golden/frames.txt, PROTOCOL.md Appendix A) against SimServer configured like that
//! server (tickTime 500, standalone, extended types), and compares every server frame.
//!
//! Session ids and passwords are compared exactly: the real server seeds its id counter from its
//! clock, and `epoch_ms` is chosen so the model's counter starts at the same value, which makes
//! the passwords (derived from the id) match too. Only ctime and mtime are masked; getChildren
//! lists are compared as sets. V17 (standalone check) is left out on purpose: the model follows
//! 3.8.5+ there (Unimplemented and a close), 3.8.0 did something else; V18 depends on V17's zxids.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use zk_core::proto::*;
use zk_testkit::sim::{ServerOutput, SimConfig, SimConnId, SimServer};

struct Entry {
    from: String,
    kind: String,
    bytes: Vec<u8>,
}

fn unhex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    digits
        .chunks(2)
        .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap())
        .collect()
}

fn load() -> BTreeMap<String, Entry> {
    let text = include_str!("../../zk-core/tests/golden/frames.txt");
    let mut out = BTreeMap::new();
    let mut name = String::new();
    let (mut from, mut kind) = (String::new(), String::new());
    for line in text.lines().map(str::trim) {
        if let Some(n) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            name = n.to_owned();
        } else if let Some((k, v)) = line.split_once('=') {
            let v = v.trim().to_owned();
            match k.trim() {
                "from" => from = v,
                "kind" => kind = v,
                "hex" => {
                    out.insert(
                        name.clone(),
                        Entry {
                            from: from.clone(),
                            kind: kind.clone(),
                            bytes: unhex(&v),
                        },
                    );
                }
                _ => {}
            }
        }
    }
    out
}

fn op_named(name: &str) -> OpCode {
    let table = [
        ("create", OpCode::Create),
        ("create2", OpCode::Create2),
        ("createContainer", OpCode::CreateContainer),
        ("createTTL", OpCode::CreateTtl),
        ("delete", OpCode::Delete),
        ("exists", OpCode::Exists),
        ("getData", OpCode::GetData),
        ("setData", OpCode::SetData),
        ("getACL", OpCode::GetAcl),
        ("setACL", OpCode::SetAcl),
        ("getChildren", OpCode::GetChildren),
        ("getChildren2", OpCode::GetChildren2),
        ("sync", OpCode::Sync),
        ("ping", OpCode::Ping),
        ("check", OpCode::Check),
        ("multi", OpCode::Multi),
        ("multiRead", OpCode::MultiRead),
        ("reconfig", OpCode::Reconfig),
        ("checkWatches", OpCode::CheckWatches),
        ("removeWatches", OpCode::RemoveWatches),
        ("auth", OpCode::Auth),
        ("setWatches", OpCode::SetWatches),
        ("setWatches2", OpCode::SetWatches2),
        ("getEphemerals", OpCode::GetEphemerals),
        ("getAllChildrenNumber", OpCode::GetAllChildrenNumber),
        ("addWatch", OpCode::AddWatch),
        ("whoAmI", OpCode::WhoAmI),
        ("closeSession", OpCode::CloseSession),
    ];
    table
        .iter()
        .find(|(n, _)| *n == name)
        .unwrap_or_else(|| panic!("unknown op {name}"))
        .1
}

fn mask(stat: &mut Stat) {
    stat.ctime = 0;
    stat.mtime = 0;
}

/// A server frame, decoded and normalised (ctime/mtime zeroed, children sorted).
fn canonical(kind: &str, frame: &[u8]) -> String {
    let payload = Bytes::copy_from_slice(&frame[4..]);
    if kind == "connect" {
        return format!(
            "{:?}",
            decode_connect_response(payload).expect("connect response")
        );
    }
    let Some(op) = kind.strip_prefix("reply ") else {
        // Notifications and the unknown-op reply have nothing to mask.
        return format!("{frame:02x?}");
    };
    let (header, body) = decode_reply_header(payload).expect("reply header");
    let mut body = decode_reply(&header, op_named(op), body).expect("reply body");
    if let Ok(resp) = &mut body {
        match resp {
            Response::Stat(s)
            | Response::Data { stat: s, .. }
            | Response::Create2 { stat: s, .. }
            | Response::Acl { stat: s, .. } => mask(s),
            Response::Children2 { stat, children } => {
                mask(stat);
                sort(children);
            }
            Response::Children { children } => sort(children),
            Response::Multi(results) => {
                for r in results {
                    match r {
                        MultiResult::Create2 { stat, .. }
                        | MultiResult::SetData(stat)
                        | MultiResult::GetData { stat, .. } => mask(stat),
                        MultiResult::GetChildren { children } => sort(children),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    format!("{header:?} {body:?} len={}", frame.len())
}

#[derive(Clone, Copy)]
enum Step {
    /// A client frame from the transcript, on the connection of that label (a connect request
    /// opens a new connection for the label).
    Send(&'static str, &'static str),
    /// The next frame the server sent on that connection.
    Expect(&'static str, &'static str),
    /// The connection was closed by the server, with nothing else sent.
    Closed(&'static str),
    /// The client drops the TCP connection.
    ClientClose(&'static str),
    /// Time passes (virtual ms).
    Advance(u64),
}

use Step::*;

/// Sorts child names: the model and the real server list children in different orders.
fn sort(children: &mut ChildNames) {
    let mut names = children.to_vec();
    names.sort();
    *children = names.into();
}

#[rustfmt::skip]
const SCRIPT: &[Step] = &[
    // V2
    Send("v2.connect-request", "A"), Expect("v2.connect-response", "A"),
    Send("v2.create", "A"), Expect("v2.create-reply", "A"),
    Send("v2.getData", "A"), Expect("v2.getData-reply", "A"),
    Send("v2.exists-missing", "A"), Expect("v2.exists-missing-reply", "A"),
    // V3, V4, V5
    Send("v3.multi", "A"), Expect("v3.multi-reply", "A"),
    Send("v4.multi-create2", "A"), Expect("v4.multi-create2-reply", "A"),
    Send("v5.multiRead", "A"), Expect("v5.multiRead-reply", "A"),
    // V6
    Send("v6.addWatch", "A"), Expect("v6.addWatch-reply", "A"),
    Send("v6.create-c", "A"), Expect("v6.created-c-event", "A"), Expect("v6.create-c-reply", "A"),
    Send("v6.b-connect-request", "B"), Expect("v6.b-connect-response", "B"),
    Send("v6.b-setData", "B"), Expect("v6.b-setData-reply", "B"),
    Expect("v6.data-changed-c-event", "A"),
    // V7
    Send("v7.ping", "A"), Expect("v7.ping-reply", "A"),
    Send("v7.auth-digest", "A"), Expect("v7.auth-digest-reply", "A"),
    Send("v7.whoAmI", "A"), Expect("v7.whoAmI-reply", "A"),
    // V8
    Send("v8.create-ephemeral-sequential", "A"), Expect("v8.created-e-event", "A"),
    Expect("v8.create-ephemeral-sequential-reply", "A"),
    Send("v8.create2-null-data", "A"), Expect("v8.created-p-event", "A"),
    Expect("v8.create2-null-data-reply", "A"),
    Send("v8.getData-null", "A"), Expect("v8.getData-null-reply", "A"),
    Send("v8.createTTL", "A"), Expect("v8.created-ttl-event", "A"), Expect("v8.createTTL-reply", "A"),
    Send("v8.createTTL-zero", "A"), Expect("v8.createTTL-zero-reply", "A"),
    Send("v8.create-ttl-flags", "A"), Expect("v8.create-ttl-flags-reply", "A"),
    Send("v8.createContainer", "A"), Expect("v8.created-cont-event", "A"),
    Expect("v8.createContainer-reply", "A"),
    Send("v8.create-bad-flags", "A"), Expect("v8.create-bad-flags-reply", "A"),
    Send("v8.create-empty-acl", "A"), Expect("v8.create-empty-acl-reply", "A"),
    Send("v8.create-existing", "A"), Expect("v8.create-existing-reply", "A"),
    Send("v8.create-trailing-slash", "A"), Expect("v8.create-trailing-slash-reply", "A"),
    // V9
    Send("v9.getChildren2", "A"), Expect("v9.getChildren2-reply", "A"),
    Send("v9.getChildren", "A"), Expect("v9.getChildren-reply", "A"),
    Send("v9.getACL", "A"), Expect("v9.getACL-reply", "A"),
    Send("v9.setData-stale", "A"), Expect("v9.setData-stale-reply", "A"),
    Send("v9.setData", "A"), Expect("v9.data-changed-proto-event", "A"), Expect("v9.setData-reply", "A"),
    Send("v9.setACL", "A"), Expect("v9.setACL-reply", "A"),
    Send("v9.delete-not-empty", "A"), Expect("v9.delete-not-empty-reply", "A"),
    Send("v9.delete", "A"), Expect("v9.deleted-b-event", "A"), Expect("v9.delete-reply", "A"),
    Send("v9.sync", "A"), Expect("v9.sync-reply", "A"),
    Send("v9.getAllChildrenNumber", "A"), Expect("v9.getAllChildrenNumber-reply", "A"),
    Send("v9.getEphemerals", "A"), Expect("v9.getEphemerals-reply", "A"),
    Send("v9.checkWatches", "A"), Expect("v9.checkWatches-reply", "A"),
    Send("v9.removeWatches", "A"), Expect("v9.removeWatches-reply", "A"),
    // V9b: pipelined
    Send("v9b.getData", "A"), Send("v9b.exists", "A"), Send("v9b.sync", "A"),
    Expect("v9b.getData-reply", "A"), Expect("v9b.exists-reply", "A"), Expect("v9b.sync-reply", "A"),
    Send("v9b.multi-mixed", "A"), Expect("v9b.multi-mixed-reply", "A"),
    // V10
    Send("v10.exists-watch", "A"), Expect("v10.exists-watch-reply", "A"),
    Send("v10.b-create", "B"), Expect("v10.b-create-reply", "B"),
    Expect("v10.created-w-event", "A"),
    // V11
    Send("v11.closeSession", "A"), Expect("v11.closeSession-reply", "A"), Closed("A"),
    Send("v11.resume-closed-request", "A2"), Expect("v11.resume-closed-response", "A2"), Closed("A2"),
    // V12
    Send("v12.c-connect-request", "C"), Expect("v12.c-connect-response", "C"),
    Send("v12.c-getData-watch", "C"), Expect("v12.c-getData-watch-reply", "C"),
    ClientClose("C"),
    Send("v12.b-setData", "B"), Expect("v12.b-setData-reply", "B"),
    Send("v12.b-create-kid", "B"), Expect("v12.b-create-kid-reply", "B"),
    Send("v12.c-resume-request", "C"), Expect("v12.c-resume-response", "C"),
    Send("v12.setWatches", "C"), Expect("v12.data-changed-c-event", "C"),
    Expect("v12.children-changed-c-event", "C"), Expect("v12.setWatches-reply", "C"),
    Send("v12.setWatches2", "C"), Expect("v12.setWatches2-reply", "C"),
    Send("v12.closeSession", "C"), Expect("v12.closeSession-reply", "C"), Closed("C"),
    // V13
    Send("v13.short-timeout-request", "D"), Expect("v13.short-timeout-response", "D"),
    Send("v13.no-readonly-request", "E"), Expect("v13.no-readonly-response", "E"),
    Send("v13.readonly-request", "F"), Expect("v13.readonly-response", "F"),
    Send("v13.wrong-password-request", "G"), Expect("v13.wrong-password-response", "G"), Closed("G"),
    Send("v13.zxid-ahead-request", "H"), Closed("H"),
    Advance(1100), Closed("D"),
    Send("v13.resume-expired-request", "I"), Expect("v13.resume-expired-response", "I"), Closed("I"),
    // V14
    Send("v14.connect-request", "J"), Expect("v14.connect-response", "J"),
    Send("v14.auth-unknown-scheme", "J"), Expect("v14.auth-unknown-scheme-reply", "J"), Closed("J"),
    // V15
    Send("v15.connect-request", "K"), Expect("v15.connect-response", "K"),
    Send("v15.opcode-999", "K"), Expect("v15.opcode-999-reply", "K"), Closed("K"),
    // V16
    Send("v16.connect-request", "L"), Expect("v16.connect-response", "L"),
    Send("v16.oversize-prefix", "L"), Closed("L"),
];

struct Replay {
    sim: SimServer,
    now: Instant,
    conns: BTreeMap<&'static str, SimConnId>,
    received: BTreeMap<SimConnId, (Vec<u8>, bool)>,
}

impl Replay {
    fn pump(&mut self) {
        while let Some(out) = self.sim.poll_output() {
            match out {
                ServerOutput::Data { conn, bytes } => self
                    .received
                    .entry(conn)
                    .or_default()
                    .0
                    .extend_from_slice(&bytes),
                ServerOutput::Close { conn } => self.received.entry(conn).or_default().1 = true,
            }
        }
    }

    /// The next whole frame on a connection, length prefix included.
    fn next_frame(&mut self, conn: SimConnId) -> Option<Vec<u8>> {
        let (buf, _) = self.received.entry(conn).or_default();
        let len = usize::try_from(i32::from_be_bytes(buf.get(..4)?.try_into().ok()?)).ok()?;
        if buf.len() < 4 + len {
            return None;
        }
        Some(buf.drain(..4 + len).collect())
    }
}

#[test]
fn golden_transcript_replays_against_the_model() {
    let golden = load();
    let config = SimConfig {
        // The captured server's session-id counter started at 0x0e466c << 16 (its clock at start).
        epoch_ms: 0x000e_466c,
        ..SimConfig::default()
    };
    let start = Instant::now();
    let mut r = Replay {
        sim: SimServer::new(config, start),
        now: start,
        conns: BTreeMap::new(),
        received: BTreeMap::new(),
    };
    let mut divergences = Vec::new();
    for (i, step) in SCRIPT.iter().enumerate() {
        // Let a little time pass per step, as on the wire.
        r.now += Duration::from_millis(1);
        match *step {
            Send(name, label) => {
                let e = golden
                    .get(name)
                    .unwrap_or_else(|| panic!("no entry {name}"));
                assert_eq!(e.from, "client", "{name}");
                if e.kind == "connect" {
                    let c = r.sim.accept(r.now, 0);
                    r.conns.insert(label, c);
                }
                let conn = r.conns[label];
                r.sim.handle_bytes(r.now, conn, &e.bytes);
                r.pump();
            }
            Expect(name, label) => {
                let e = golden
                    .get(name)
                    .unwrap_or_else(|| panic!("no entry {name}"));
                assert_eq!(e.from, "server", "{name}");
                let conn = r.conns[label];
                let Some(got) = r.next_frame(conn) else {
                    divergences.push(format!("step {i} {name}: no frame from the model"));
                    continue;
                };
                let want = canonical(&e.kind, &e.bytes);
                let have = canonical(&e.kind, &got);
                if want != have {
                    divergences.push(format!("step {i} {name}:\n  real  {want}\n  model {have}"));
                }
            }
            Closed(label) => {
                let conn = r.conns[label];
                let (left, closed) = r.received.get(&conn).cloned().unwrap_or_default();
                if !closed || !left.is_empty() {
                    divergences.push(format!(
                        "step {i} {label}: expected a close and nothing else (closed {closed}, {} bytes left)",
                        left.len()
                    ));
                }
            }
            ClientClose(label) => {
                r.sim.handle_closed(r.now, r.conns[label]);
                r.pump();
            }
            Advance(ms) => {
                r.now += Duration::from_millis(ms);
                r.sim.handle_timeout(r.now);
                r.pump();
            }
        }
    }
    // Nothing unexpected is left on any connection.
    for (label, conn) in r.conns.clone() {
        if let Some(f) = r.next_frame(conn) {
            divergences.push(format!("{label}: unexpected extra frame {f:02x?}"));
        }
    }
    assert!(divergences.is_empty(), "{}", divergences.join("\n"));
}

#[test]
fn golden_four_letter_words() {
    let now = Instant::now();
    let mut sim = SimServer::new(SimConfig::default(), now);
    let golden = load();
    let mut ask = |word: &str| {
        let c = sim.accept(now, 0);
        sim.handle_bytes(now, c, word.as_bytes());
        let mut text = Vec::new();
        let mut closed = false;
        while let Some(out) = sim.poll_output() {
            match out {
                ServerOutput::Data { bytes, .. } => text.extend(bytes),
                ServerOutput::Close { .. } => closed = true,
            }
        }
        assert!(closed);
        String::from_utf8(text).unwrap()
    };
    assert_eq!(golden["v1.ruok"].bytes, b"ruok");
    assert_eq!(ask("ruok"), "imok");
    assert_eq!(ask("isro"), "rw");
    // The real first line: 'Zookeeper version: 3.8.0-${mvngit.commit.id}, built on 2024-12-29 17:54 UTC'.
    let srvr = ask("srvr");
    let first = srvr.lines().next().unwrap();
    let version = first
        .strip_prefix("Zookeeper version: ")
        .and_then(|v| v.split(['-', ',']).next())
        .unwrap();
    assert_eq!(version, "3.8.0");
    assert!(first.contains(", built on "));
    assert!(srvr.contains("Mode: standalone\n"));
    assert!(
        srvr.contains("Node count: 5\n"),
        "a fresh 3.8 server counts 5 nodes"
    );
}
