//! `txn`: ops applied all or none.

use serde_json::json;
use zk_core::proto::CreateMode;
use zk_tokio::OpResult;

use super::{check_path, one_arg, version, zk_err, Cmd};
use crate::args::{flag, opt, parse_flags};
use crate::error::CliError;
use crate::exec::{Ctx, Flow};
use crate::output;

/// One op of a `txn`.
#[derive(Debug, Clone, PartialEq)]
pub enum TxnOp {
    /// `create [-s] [-e] [-c] path [data]`.
    Create {
        /// The node.
        path: String,
        /// Its data.
        data: String,
        /// Persistent, ephemeral, sequential or container.
        mode: CreateMode,
    },
    /// `set [-v version] path data`.
    Set {
        /// The node.
        path: String,
        /// The new data.
        data: String,
        /// The expected version, -1 for any.
        version: i32,
    },
    /// `check path [version]`.
    Check {
        /// The node.
        path: String,
        /// The expected version, -1 for existence only.
        version: i32,
    },
    /// `delete [-v version] path`.
    Delete {
        /// The node.
        path: String,
        /// The expected version, -1 for any.
        version: i32,
    },
}

/// `txn`: its ops.
#[derive(Debug, Clone, PartialEq)]
pub struct Txn(pub Vec<TxnOp>);

/// The usage of the ops, for errors inside a `txn`.
const OPS_USAGE: &str = "txn OP [; OP]...  where OP is  create [-s] [-e] [-c] path [data]  |  \
                 set [-v version] path data  |  check path [version]  |  delete [-v version] path";

impl Cmd for Txn {
    const NAME: &'static str = "txn";
    const USAGE: &'static str = "txn OP [; OP]...";
    const SUMMARY: &'static str = "apply ops atomically; OP is create [-s] [-e] [-c] path [data] | set [-v version] path data | check path [version] | delete [-v version] path";

    /// Parses the ops: words separated by `;` words. A single word is a whole script
    /// (`zk txn 'create /a x; delete /b'`), split like a shell line.
    fn parse(args: &[String]) -> Result<Self, CliError> {
        let usage = OPS_USAGE;
        let words: Vec<String> = if let [script] = args {
            crate::args::split_line(script, true)
                .map_err(|e| CliError::usage(e, usage))?
                .into_iter()
                .map(|w| {
                    if w.quoted && w.text == ";" {
                        "\\;".into()
                    } else {
                        w.text
                    }
                })
                .collect()
        } else {
            args.to_vec()
        };
        let mut ops = Vec::new();
        for group in words.split(|w| w == ";") {
            let group: Vec<String> = group
                .iter()
                .map(|w| if w == "\\;" { ";".into() } else { w.clone() })
                .collect();
            let Some((op, rest)) = group.split_first() else {
                continue;
            };
            let bad = |m: String| CliError::usage(format!("txn {op}: {m}"), usage);
            ops.push(match op.as_str() {
                "create" => {
                    let a = parse_flags(rest, &[flag("-s"), flag("-e"), flag("-c")], usage)?;
                    let (path, data) = match a.positional.as_slice() {
                        [path] => (path.clone(), String::new()),
                        [path, data] => (path.clone(), data.clone()),
                        [] => return Err(bad("missing path".into())),
                        _ => return Err(bad("too many arguments".into())),
                    };
                    let mode = match (a.has("-e"), a.has("-s"), a.has("-c")) {
                        (false, false, false) => CreateMode::Persistent,
                        (true, false, false) => CreateMode::Ephemeral,
                        (false, true, false) => CreateMode::PersistentSequential,
                        (true, true, false) => CreateMode::EphemeralSequential,
                        (false, false, true) => CreateMode::Container,
                        _ => return Err(bad("-c does not combine with -e or -s".into())),
                    };
                    check_path(&path, usage)?;
                    TxnOp::Create { path, data, mode }
                }
                "set" => {
                    let a = parse_flags(rest, &[opt("-v")], usage)?;
                    let (path, data) = match a.positional.as_slice() {
                        [path, data] => (path.clone(), data.clone()),
                        [] | [_] => return Err(bad("needs a path and data".into())),
                        _ => return Err(bad("too many arguments".into())),
                    };
                    check_path(&path, usage)?;
                    TxnOp::Set {
                        path,
                        data,
                        version: version(&a, usage)?,
                    }
                }
                "check" => {
                    let a = parse_flags(rest, &[opt("-v")], usage)?;
                    let (path, v) = match a.positional.as_slice() {
                        [path] => (path.clone(), version(&a, usage)?),
                        [path, v] => (
                            path.clone(),
                            v.parse::<i32>()
                                .map_err(|_| bad(format!("{v:?} is not a version number")))?,
                        ),
                        [] => return Err(bad("missing path".into())),
                        _ => return Err(bad("too many arguments".into())),
                    };
                    check_path(&path, usage)?;
                    TxnOp::Check { path, version: v }
                }
                "delete" => {
                    let a = parse_flags(rest, &[opt("-v")], usage)?;
                    let path = one_arg(&a, "missing path", usage)?;
                    check_path(&path, usage)?;
                    TxnOp::Delete {
                        path,
                        version: version(&a, usage)?,
                    }
                }
                other => {
                    return Err(CliError::usage(
                        format!("txn: unknown op {other:?} (create, set, check, delete)"),
                        usage,
                    ))
                }
            });
        }
        if ops.is_empty() {
            return Err(CliError::usage("txn: no ops given", usage));
        }
        Ok(Txn(ops))
    }

    async fn run(self, ctx: &mut Ctx) -> Result<Flow, CliError> {
        let zk = zk_err(Cmd::context(&self));
        let ops = self.0;
        let client = ctx.client()?;
        let mut t = client.transaction();
        for op in &ops {
            t = match op {
                TxnOp::Create { path, data, mode } => {
                    t.create(path, data.clone().into_bytes()).mode(*mode).end()
                }
                TxnOp::Set {
                    path,
                    data,
                    version,
                } => t.set_data(path, data.clone().into_bytes(), *version),
                TxnOp::Check { path, version } => t.check(path, *version),
                TxnOp::Delete { path, version } => t.delete(path, *version),
            };
        }
        let results = t.commit().await.map_err(zk)?;
        let mut lines = Vec::new();
        let mut list = Vec::new();
        for (op, res) in ops.iter().zip(&results) {
            let (line, j) = match (op, res) {
                (_, OpResult::Created { path, stat }) => (
                    format!("Created {path}"),
                    json!({"op": "create", "path": path, "stat": stat.as_ref().map(output::stat_json)}),
                ),
                (TxnOp::Set { path, .. }, OpResult::SetData { stat }) => (
                    format!("Set {path} (dataVersion {})", stat.version),
                    json!({"op": "set", "path": path, "stat": output::stat_json(stat)}),
                ),
                (TxnOp::Delete { path, .. }, OpResult::Deleted) => (
                    format!("Deleted {path}"),
                    json!({"op": "delete", "path": path}),
                ),
                (TxnOp::Check { path, .. }, OpResult::Checked) => (
                    format!("Checked {path}"),
                    json!({"op": "check", "path": path}),
                ),
                (_, other) => (format!("{other:?}"), json!({"op": format!("{other:?}")})),
            };
            lines.push(line);
            list.push(j);
        }
        ctx.out.emit(
            &lines.join("\n"),
            json!({"committed": true, "results": list}),
        );
        Ok(Flow::Continue)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::split_command_line;

    #[test]
    fn txn_ops() {
        let words =
            split_command_line("txn create /a x ; set -v 2 /b y; check /c 0 ; delete /d").unwrap();
        let Txn(ops) = Txn::parse(&words[1..]).unwrap();
        assert_eq!(ops.len(), 4);
        assert_eq!(
            ops[2],
            TxnOp::Check {
                path: "/c".into(),
                version: 0
            }
        );
        // One word: a script.
        let Txn(ops) = Txn::parse(&["create /a 'x;y'; delete /b".into()]).unwrap();
        assert_eq!(
            ops[0],
            TxnOp::Create {
                path: "/a".into(),
                data: "x;y".into(),
                mode: CreateMode::Persistent
            }
        );
    }
}
