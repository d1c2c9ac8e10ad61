//! Four-letter words (PROTOCOL.md §15): recognising them as the first bytes of a fresh connection,
//! and the text each answers.
//!
//! Every word is whitelisted. The texts follow the Java commands' layout where a client might
//! parse them (`srvr`/`stat`: the version line, `Zxid:`, `Mode:`; `mntr`: tab-separated keys;
//! `isro`, `ruok`); counters the model does not track (latencies) are zero. The version line ends
//! in `-sim` so a log shows which server answered.

use super::conn::Phase;
use super::tree::Owner;
use super::{SimConnId, SimServer};

/// A known four-letter word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Word {
    Conf,
    Cons,
    Crst,
    Dirs,
    Dump,
    Envi,
    Gtmk,
    Ruok,
    Stmk,
    Srst,
    Srvr,
    Stat,
    Wchc,
    Wchp,
    Wchs,
    Mntr,
    Isro,
    Hash,
}

impl Word {
    /// The word these four bytes spell on a server of `version`, if any (`hash` from 3.6.0).
    pub fn parse(bytes: &[u8], version: (u32, u32, u32)) -> Option<Word> {
        Some(match bytes {
            b"conf" => Word::Conf,
            b"cons" => Word::Cons,
            b"crst" => Word::Crst,
            b"dirs" => Word::Dirs,
            b"dump" => Word::Dump,
            b"envi" => Word::Envi,
            b"gtmk" => Word::Gtmk,
            b"ruok" => Word::Ruok,
            b"stmk" => Word::Stmk,
            b"srst" => Word::Srst,
            b"srvr" => Word::Srvr,
            b"stat" => Word::Stat,
            b"wchc" => Word::Wchc,
            b"wchp" => Word::Wchp,
            b"wchs" => Word::Wchs,
            b"mntr" => Word::Mntr,
            b"isro" => Word::Isro,
            b"hash" if version >= (3, 6, 0) => Word::Hash,
            _ => return None,
        })
    }
}

impl SimServer {
    /// Looks at the first bytes of a fresh connection. Answers and closes a four-letter word;
    /// otherwise hands the bytes to the frame decoder. True when frames should now be read.
    pub(super) fn check_four_letter(&mut self, id: SimConnId) -> bool {
        let version = self.config.version;
        let Some(c) = self.conns.get_mut(&id) else {
            return false;
        };
        let Some(first) = c.prefix.get(..4) else {
            return false;
        };
        match Word::parse(first, version) {
            None => {
                // Not a word: the four bytes are the ConnectRequest's length prefix (§2).
                c.phase = Phase::AwaitConnect;
                let bytes = std::mem::take(&mut c.prefix);
                c.decoder.extend(&bytes);
                true
            }
            Some(word) => {
                // stmk carries an 8-byte trace mask after the word.
                let mask = match word {
                    Word::Stmk => match c.prefix.get(4..12) {
                        Some(m) => i64::from_be_bytes(m.try_into().unwrap_or_default()),
                        None => return false,
                    },
                    _ => 0,
                };
                let server = c.server;
                let text = self.four_letter_text(server, word, mask);
                self.send(id, text.into_bytes());
                self.close_conn(id);
                false
            }
        }
    }

    /// `3.8.0-sim, built on ...`: what `Version.getFullVersion()` would say.
    fn full_version(&self) -> String {
        let (a, b, c) = self.config.version;
        format!("{a}.{b}.{c}-sim, built on 1970-01-01 00:00 UTC")
    }

    /// `standalone`, `leader`, `follower` or `read-only`. The leader is the first server that is
    /// up and not read-only.
    fn mode(&self, server: usize) -> &'static str {
        if self.servers.len() == 1 {
            return "standalone";
        }
        if self.servers.get(server).is_some_and(|r| r.read_only) {
            return "read-only";
        }
        let leader = self.servers.iter().position(|r| r.up && !r.read_only);
        if leader == Some(server) {
            "leader"
        } else {
            "follower"
        }
    }

    /// The text `word` gets from `server`.
    pub(super) fn four_letter_text(&self, server: usize, word: Word, mask: i64) -> String {
        let Some(r) = self.servers.get(server) else {
            return String::new();
        };
        let conns: Vec<(&SimConnId, &super::conn::Conn)> = self
            .conns
            .iter()
            .filter(|(_, c)| c.server == server)
            .collect();
        // (session, path) for every watch of this server's connections.
        let watches: Vec<(i64, &str)> = conns
            .iter()
            .flat_map(|(_, c)| {
                let sid = c.session().unwrap_or(0);
                c.watches.paths().into_keys().map(move |p| (sid, p))
            })
            .collect();
        let watch_total: usize = conns
            .iter()
            .map(|(_, c)| c.watches.paths().values().sum::<usize>())
            .sum();
        let mode = self.mode(server);
        let conn_lines = || {
            conns
                .iter()
                .map(|(id, c)| {
                    let sid = c
                        .session()
                        .map_or(String::new(), |s| format!(",sid=0x{s:x}"));
                    format!(" /127.0.0.1:{}[1](queued=0,recved=0,sent=0{sid})\n", id.0)
                })
                .collect::<String>()
        };
        match word {
            Word::Ruok => "imok".into(),
            Word::Isro => if r.read_only { "ro" } else { "rw" }.into(),
            Word::Srvr | Word::Stat => {
                let mut s = format!("Zookeeper version: {}\n", self.full_version());
                if r.read_only {
                    s.push_str("READ-ONLY mode; serving only read-only clients\n");
                }
                if word == Word::Stat {
                    s.push_str("Clients:\n");
                    s.push_str(&conn_lines());
                    s.push('\n');
                }
                s.push_str(&format!(
                    "Latency min/avg/max: 0/0.0/0\nReceived: {}\nSent: {}\nConnections: {}\n\
                     Outstanding: 0\nZxid: 0x{:x}\nMode: {mode}\nNode count: {}\n",
                    r.received,
                    r.sent,
                    conns.len(),
                    r.tree.last_zxid,
                    r.tree.node_count()
                ));
                if mode == "leader" {
                    s.push_str("Proposal sizes last/min/max: -1/-1/-1\n");
                }
                s
            }
            Word::Mntr => {
                let ephemerals = r
                    .tree
                    .iter()
                    .filter(|(_, n)| matches!(n.owner, Owner::Ephemeral(_)))
                    .count();
                let data_size: usize = r
                    .tree
                    .iter()
                    .map(|(p, n)| p.len() + n.data.as_ref().map_or(0, |d| d.len()))
                    .sum();
                let mut s = format!(
                    "zk_version\t{}\nzk_server_state\t{mode}\nzk_znode_count\t{}\n\
                     zk_watch_count\t{watch_total}\nzk_ephemerals_count\t{ephemerals}\n\
                     zk_approximate_data_size\t{data_size}\nzk_num_alive_connections\t{}\n\
                     zk_outstanding_requests\t0\nzk_packets_received\t{}\nzk_packets_sent\t{}\n\
                     zk_avg_latency\t0.0\nzk_max_latency\t0\nzk_min_latency\t0\n",
                    self.full_version(),
                    r.tree.node_count(),
                    conns.len(),
                    r.received,
                    r.sent
                );
                if mode == "leader" {
                    let followers = self.servers.len() - 1;
                    s.push_str(&format!(
                        "zk_followers\t{followers}\nzk_synced_followers\t{followers}\n"
                    ));
                }
                s
            }
            Word::Conf => {
                let t = self.config.tick_ms;
                format!(
                    "clientPort=0\nclientPortAddress=127.0.0.1\ndataDir=/sim/data\n\
                     dataLogDir=/sim/data\ntickTime={t}\nmaxClientCnxns=0\n\
                     minSessionTimeout={}\nmaxSessionTimeout={}\nserverId={}\n",
                    t.saturating_mul(2),
                    t.saturating_mul(20),
                    server + 1
                )
            }
            Word::Envi => format!(
                "Environment:\nzookeeper.version={}\nhost.name=localhost\njava.version=sim\n",
                self.full_version()
            ),
            Word::Cons => conn_lines() + "\n",
            Word::Crst => "Connection stats reset.\n".into(),
            Word::Srst => "Server stats reset.\n".into(),
            Word::Dirs => "datadir_size: 0\nlogdir_size: 0\n".into(),
            Word::Gtmk => "306".into(),
            Word::Stmk => mask.to_string(),
            Word::Hash => String::new(),
            Word::Wchs => {
                let watching = conns
                    .iter()
                    .filter(|(_, c)| !c.watches.paths().is_empty())
                    .count();
                let paths: std::collections::BTreeSet<&str> =
                    watches.iter().map(|(_, p)| *p).collect();
                format!(
                    "{watching} connections watching {} paths\nTotal watches:{watch_total}\n",
                    paths.len()
                )
            }
            Word::Wchc => {
                let mut by_session: std::collections::BTreeMap<i64, Vec<&str>> =
                    std::collections::BTreeMap::new();
                for (sid, p) in &watches {
                    by_session.entry(*sid).or_default().push(p);
                }
                by_session
                    .iter()
                    .map(|(sid, paths)| {
                        let lines: String = paths.iter().map(|p| format!("\t{p}\n")).collect();
                        format!("0x{sid:x}\n{lines}")
                    })
                    .collect()
            }
            Word::Wchp => {
                let mut by_path: std::collections::BTreeMap<&str, Vec<i64>> =
                    std::collections::BTreeMap::new();
                for (sid, p) in &watches {
                    by_path.entry(p).or_default().push(*sid);
                }
                by_path
                    .iter()
                    .map(|(p, sids)| {
                        let lines: String = sids.iter().map(|s| format!("\t0x{s:x}\n")).collect();
                        format!("{p}\n{lines}")
                    })
                    .collect()
            }
            Word::Dump => {
                let mut s = String::from("SessionTracker dump:\n");
                let sessions: Vec<_> = self.sessions.iter().collect();
                s.push_str(&format!("Global Sessions({}):\n", sessions.len()));
                for (id, sess) in &sessions {
                    s.push_str(&format!("0x{id:x}\t{}ms\n", sess.timeout_ms));
                }
                s.push_str("ephemeral nodes dump:\n");
                let mut by_owner: std::collections::BTreeMap<i64, Vec<&str>> =
                    std::collections::BTreeMap::new();
                for (p, n) in r.tree.iter() {
                    if let Owner::Ephemeral(sid) = n.owner {
                        by_owner.entry(sid).or_default().push(p);
                    }
                }
                s.push_str(&format!("Sessions with Ephemerals ({}):\n", by_owner.len()));
                for (sid, paths) in &by_owner {
                    s.push_str(&format!("0x{sid:x}:\n"));
                    for p in paths {
                        s.push_str(&format!("\t{p}\n"));
                    }
                }
                s
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_recognised_by_version() {
        assert_eq!(Word::parse(b"ruok", (3, 5, 0)), Some(Word::Ruok));
        assert_eq!(Word::parse(b"hash", (3, 5, 10)), None);
        assert_eq!(Word::parse(b"hash", (3, 6, 0)), Some(Word::Hash));
        assert_eq!(Word::parse(b"RUOK", (3, 8, 0)), None);
        assert_eq!(Word::parse(&[0, 0, 0, 45], (3, 8, 0)), None);
    }
}
