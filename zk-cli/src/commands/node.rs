//! Commands on nodes and subtrees: ls, create, get, set, stat, delete, deleteall, sync,
//! getEphemerals, getAllChildrenNumber, tree.

use std::time::Duration;

use serde_json::{json, Value};
use zk_core::proto::Acl;
use zk_core::Error;

use super::{one_path, parse_acl, too_many, version, zk_err, Cmd};
use crate::args::{flag, opt, parse_flags};
use crate::error::CliError;
use crate::exec::{obj, ArmedKind, Ctx, Flow, Mode};
use crate::output;
use crate::progress::Progress;
use crate::walk;

/// `ls`.
#[derive(Debug, Clone, PartialEq)]
pub struct Ls {
    /// The node.
    pub path: String,
    /// `-s`.
    pub stat: bool,
    /// `-w`.
    pub watch: bool,
    /// `-R`.
    pub recursive: bool,
}

impl Cmd for Ls {
    const NAME: &'static str = "ls";
    const USAGE: &'static str = "ls [-s] [-w] [-R] path";
    const SUMMARY: &'static str = "list children (-s Stat, -w watch, -R whole subtree)";

    fn parse(args: &[String]) -> Result<Self, CliError> {
        let a = parse_flags(args, &[flag("-s"), flag("-w"), flag("-R")], Self::USAGE)?;
        Ok(Ls {
            path: one_path(&a, Self::USAGE)?,
            stat: a.has("-s"),
            watch: a.has("-w"),
            recursive: a.has("-R"),
        })
    }

    fn target(&self) -> &str {
        &self.path
    }

    async fn run(self, ctx: &mut Ctx) -> Result<Flow, CliError> {
        let context = Cmd::context(&self);
        let zk = zk_err(context.clone());
        let Ls {
            path,
            stat,
            watch,
            recursive,
        } = self;
        let client = ctx.client()?;
        if recursive {
            let mut progress = Progress::new("listing");
            let tree = walk::list(client, &path, &mut progress).await.map_err(zk)?;
            progress.finish();
            let paths = tree.depth_first(&path);
            ctx.out
                .emit(&paths.join("\n"), json!({"path": path, "paths": paths}));
            return Ok(Flow::Continue);
        }
        let (children, stat, w) = match (stat, watch) {
            (false, false) => (client.get_children(&path).await.map_err(zk)?, None, None),
            (true, false) => {
                let (c, s) = client.get_children(&path).with_stat().await.map_err(zk)?;
                (c, Some(s), None)
            }
            (false, true) => {
                let (c, w) = client.get_children(&path).watch().await.map_err(zk)?;
                (c, None, Some(w))
            }
            (true, true) => {
                let (c, s, w) = client
                    .get_children(&path)
                    .with_stat_and_watch()
                    .await
                    .map_err(zk)?;
                (c, Some(s), Some(w))
            }
        };
        let mut children = children.to_vec();
        children.sort();
        let mut text = output::java_list(&children);
        let mut j = obj(json!({"path": path, "children": children}));
        if let Some(s) = &stat {
            text = format!("{text}\n{}", output::stat_text(s));
            j.insert("stat".into(), output::stat_json(s));
        }
        ctx.out.emit(&text, Value::Object(j));
        if let Some(w) = w {
            ctx.after_watch(w, &path, ArmedKind::Child, &context)
                .await?;
        }
        Ok(Flow::Continue)
    }
}

/// `create`.
#[derive(Debug, Clone, PartialEq)]
pub struct Create {
    /// The node.
    pub path: String,
    /// Its data (`None`: null data).
    pub data: Option<String>,
    /// Its ACL (default: open).
    pub acl: Option<Vec<Acl>>,
    /// `-s`.
    pub sequential: bool,
    /// `-e`.
    pub ephemeral: bool,
    /// `-c`.
    pub container: bool,
    /// `-t`.
    pub ttl: Option<Duration>,
}

impl Cmd for Create {
    const NAME: &'static str = "create";
    const USAGE: &'static str = "create [-s] [-e] [-c] [-t ttl] path [data] [acl]";
    const SUMMARY: &'static str =
        "create a node (-s sequential, -e ephemeral, -c container, -t TTL in ms)";

    fn parse(args: &[String]) -> Result<Self, CliError> {
        let usage = Self::USAGE;
        let a = parse_flags(
            args,
            &[flag("-s"), flag("-e"), flag("-c"), opt("-t")],
            usage,
        )?;
        let (path, data, acl) = match a.positional.as_slice() {
            [] => return Err(CliError::usage("missing path", usage)),
            [path] => (path.clone(), None, None),
            [path, data] => (path.clone(), Some(data.clone()), None),
            [path, data, acl] => (path.clone(), Some(data.clone()), Some(parse_acl(acl)?)),
            _ => return Err(too_many(usage)),
        };
        let ttl = a
            .value("-t")
            .map(|t| match t.parse::<u64>() {
                Ok(ms) if ms > 0 => Ok(Duration::from_millis(ms)),
                _ => Err(CliError::usage(
                    format!("-t takes a TTL in milliseconds (> 0), not {t:?}"),
                    usage,
                )),
            })
            .transpose()?;
        let (e, c) = (a.has("-e"), a.has("-c"));
        if [e, c, ttl.is_some()].iter().filter(|x| **x).count() > 1 {
            return Err(CliError::usage(
                "a node is ephemeral (-e), a container (-c) or has a TTL (-t): pick one",
                usage,
            ));
        }
        if c && a.has("-s") {
            return Err(CliError::usage(
                "a container node (-c) cannot be sequential",
                usage,
            ));
        }
        Ok(Create {
            path,
            data,
            acl,
            sequential: a.has("-s"),
            ephemeral: e,
            container: c,
            ttl,
        })
    }

    fn target(&self) -> &str {
        &self.path
    }

    async fn run(self, ctx: &mut Ctx) -> Result<Flow, CliError> {
        let zk = zk_err(Cmd::context(&self));
        let client = ctx.client()?;
        let mut b = client.create(&self.path, self.data.clone().unwrap_or_default());
        if self.data.is_none() {
            b = b.null_data();
        }
        if let Some(acl) = self.acl {
            b = b.acl(acl);
        }
        if self.sequential {
            b = b.sequential();
        }
        if self.ephemeral {
            b = b.ephemeral();
        }
        if self.container {
            b = b.container();
        }
        if let Some(t) = self.ttl {
            b = b.ttl(t);
        }
        let created = b.await.map_err(zk)?;
        ctx.out
            .emit(&format!("Created {created}"), json!({"path": created}));
        Ok(Flow::Continue)
    }
}

/// `get`.
#[derive(Debug, Clone, PartialEq)]
pub struct Get {
    /// The node.
    pub path: String,
    /// `-s`.
    pub stat: bool,
    /// `-w`.
    pub watch: bool,
}

impl Cmd for Get {
    const NAME: &'static str = "get";
    const USAGE: &'static str = "get [-s] [-w] path";
    const SUMMARY: &'static str = "print a node's data (-s Stat, -w watch)";

    fn parse(args: &[String]) -> Result<Self, CliError> {
        let a = parse_flags(args, &[flag("-s"), flag("-w")], Self::USAGE)?;
        Ok(Get {
            path: one_path(&a, Self::USAGE)?,
            stat: a.has("-s"),
            watch: a.has("-w"),
        })
    }

    fn target(&self) -> &str {
        &self.path
    }

    async fn run(self, ctx: &mut Ctx) -> Result<Flow, CliError> {
        let context = Cmd::context(&self);
        let zk = zk_err(context.clone());
        let Get { path, stat, watch } = self;
        let client = ctx.client()?;
        let (data, st, w) = if watch {
            let (d, s, w) = client.get_data(&path).watch().await.map_err(zk)?;
            (d, s, Some(w))
        } else {
            let (d, s) = client.get_data(&path).await.map_err(zk)?;
            (d, s, None)
        };
        let mut text = String::from_utf8_lossy(&data).into_owned();
        if stat {
            text = format!("{text}\n{}", output::stat_text(&st));
        }
        let mut j = obj(json!({"path": path}));
        output::data_json(&mut j, &data);
        j.insert("stat".into(), output::stat_json(&st));
        ctx.out.emit(&text, Value::Object(j));
        if let Some(w) = w {
            ctx.after_watch(w, &path, ArmedKind::Data, &context).await?;
        }
        Ok(Flow::Continue)
    }
}

/// `set`.
#[derive(Debug, Clone, PartialEq)]
pub struct Set {
    /// The node.
    pub path: String,
    /// New data.
    pub data: String,
    /// `-v`, -1 for any.
    pub version: i32,
    /// `-s`.
    pub stat: bool,
}

impl Cmd for Set {
    const NAME: &'static str = "set";
    const USAGE: &'static str = "set [-s] [-v version] path data";
    const SUMMARY: &'static str = "replace a node's data (-v only at that version)";

    fn parse(args: &[String]) -> Result<Self, CliError> {
        let usage = Self::USAGE;
        let a = parse_flags(args, &[flag("-s"), opt("-v")], usage)?;
        let (path, data) = match a.positional.as_slice() {
            [] => return Err(CliError::usage("missing path and data", usage)),
            [_] => return Err(CliError::usage("missing data", usage)),
            [path, data] => (path.clone(), data.clone()),
            _ => return Err(too_many(usage)),
        };
        Ok(Set {
            path,
            data,
            version: version(&a, usage)?,
            stat: a.has("-s"),
        })
    }

    fn target(&self) -> &str {
        &self.path
    }

    async fn run(self, ctx: &mut Ctx) -> Result<Flow, CliError> {
        let zk = zk_err(Cmd::context(&self));
        let st = ctx
            .client()?
            .set_data(&self.path, self.data)
            .version(self.version)
            .await
            .map_err(zk)?;
        ctx.emit_stat(&self.path, &st, self.stat);
        Ok(Flow::Continue)
    }
}

/// `stat`.
#[derive(Debug, Clone, PartialEq)]
pub struct Stat {
    /// The node.
    pub path: String,
    /// `-w`.
    pub watch: bool,
}

impl Cmd for Stat {
    const NAME: &'static str = "stat";
    const USAGE: &'static str = "stat [-w] path";
    const SUMMARY: &'static str = "print a node's Stat";

    fn parse(args: &[String]) -> Result<Self, CliError> {
        let a = parse_flags(args, &[flag("-w")], Self::USAGE)?;
        Ok(Stat {
            path: one_path(&a, Self::USAGE)?,
            watch: a.has("-w"),
        })
    }

    fn target(&self) -> &str {
        &self.path
    }

    async fn run(self, ctx: &mut Ctx) -> Result<Flow, CliError> {
        let context = Cmd::context(&self);
        let zk = zk_err(context.clone());
        let Stat { path, watch } = self;
        let client = ctx.client()?;
        let (st, w) = if watch {
            let (s, w) = client.exists(&path).watch().await.map_err(&zk)?;
            (s, Some(w))
        } else {
            (client.exists(&path).await.map_err(&zk)?, None)
        };
        let Some(st) = st else {
            // A watch on a missing node fires when it is created: keep it in the shell.
            if let (Some(w), Mode::Shell) = (w, ctx.mode) {
                ctx.spawn_watch(w, &path, ArmedKind::Data);
            }
            return Err(zk(Error::NoNode { path }));
        };
        ctx.out.emit(
            &output::stat_text(&st),
            json!({"path": path, "stat": output::stat_json(&st)}),
        );
        if let Some(w) = w {
            ctx.after_watch(w, &path, ArmedKind::Data, &context).await?;
        }
        Ok(Flow::Continue)
    }
}

/// `delete`.
#[derive(Debug, Clone, PartialEq)]
pub struct Delete {
    /// The node.
    pub path: String,
    /// `-v`, -1 for any.
    pub version: i32,
}

impl Cmd for Delete {
    const NAME: &'static str = "delete";
    const USAGE: &'static str = "delete [-v version] path";
    const SUMMARY: &'static str = "delete a node";

    fn parse(args: &[String]) -> Result<Self, CliError> {
        let a = parse_flags(args, &[opt("-v")], Self::USAGE)?;
        Ok(Delete {
            path: one_path(&a, Self::USAGE)?,
            version: version(&a, Self::USAGE)?,
        })
    }

    fn target(&self) -> &str {
        &self.path
    }

    async fn run(self, ctx: &mut Ctx) -> Result<Flow, CliError> {
        let zk = zk_err(Cmd::context(&self));
        ctx.client()?
            .delete(&self.path)
            .version(self.version)
            .await
            .map_err(zk)?;
        ctx.out
            .emit_quiet(json!({"path": self.path, "deleted": true}));
        Ok(Flow::Continue)
    }
}

/// `deleteall`.
#[derive(Debug, Clone, PartialEq)]
pub struct DeleteAll {
    /// The root of the subtree.
    pub path: String,
    /// `-b`: deletes per transaction.
    pub batch: usize,
}

impl Cmd for DeleteAll {
    const NAME: &'static str = "deleteall";
    const USAGE: &'static str = "deleteall path [-b batch size]";
    const SUMMARY: &'static str = "delete a node and its whole subtree";

    fn parse(args: &[String]) -> Result<Self, CliError> {
        let usage = Self::USAGE;
        let a = parse_flags(args, &[opt("-b")], usage)?;
        let batch = match a.value("-b") {
            None => 1000,
            Some(b) => match b.parse::<usize>() {
                Ok(n) if n > 0 => n,
                _ => {
                    return Err(CliError::usage(
                        format!("-b takes a batch size (> 0), not {b:?}"),
                        usage,
                    ))
                }
            },
        };
        Ok(DeleteAll {
            path: one_path(&a, usage)?,
            batch,
        })
    }

    fn target(&self) -> &str {
        &self.path
    }

    async fn run(self, ctx: &mut Ctx) -> Result<Flow, CliError> {
        let zk = zk_err(Cmd::context(&self));
        let DeleteAll { path, batch } = self;
        if path == "/" {
            return Err(CliError::usage(
                "deleteall: refusing to delete / (name a node below it)",
                Self::USAGE,
            ));
        }
        let client = ctx.client()?;
        let mut progress = Progress::new("listing");
        let tree = walk::list(client, &path, &mut progress)
            .await
            .map_err(&zk)?;
        progress.relabel("deleting");
        let n = walk::delete(client, &tree, batch, &mut progress)
            .await
            .map_err(&zk)?;
        progress.finish();
        ctx.out.emit_quiet(json!({"path": path, "deleted": n}));
        Ok(Flow::Continue)
    }
}

/// `sync`.
#[derive(Debug, Clone, PartialEq)]
pub struct Sync {
    /// The node.
    pub path: String,
}

impl Cmd for Sync {
    const NAME: &'static str = "sync";
    const USAGE: &'static str = "sync path";
    const SUMMARY: &'static str = "make the server catch up with the leader";

    fn parse(args: &[String]) -> Result<Self, CliError> {
        let a = parse_flags(args, &[], Self::USAGE)?;
        Ok(Sync {
            path: one_path(&a, Self::USAGE)?,
        })
    }

    fn target(&self) -> &str {
        &self.path
    }

    async fn run(self, ctx: &mut Ctx) -> Result<Flow, CliError> {
        let zk = zk_err(Cmd::context(&self));
        ctx.client()?.sync(&self.path).await.map_err(zk)?;
        ctx.out
            .emit("Sync is OK", json!({"path": self.path, "synced": true}));
        Ok(Flow::Continue)
    }
}

/// `getEphemerals`.
#[derive(Debug, Clone, PartialEq)]
pub struct GetEphemerals {
    /// The path prefix.
    pub path: String,
}

impl Cmd for GetEphemerals {
    const NAME: &'static str = "getEphemerals";
    const USAGE: &'static str = "getEphemerals [path]";
    const SUMMARY: &'static str = "list this session's ephemeral nodes (3.6+)";

    fn parse(args: &[String]) -> Result<Self, CliError> {
        let a = parse_flags(args, &[], Self::USAGE)?;
        let path = match a.positional.as_slice() {
            [] => "/".to_owned(),
            [path] => path.clone(),
            _ => return Err(too_many(Self::USAGE)),
        };
        Ok(GetEphemerals { path })
    }

    fn target(&self) -> &str {
        &self.path
    }

    async fn run(self, ctx: &mut Ctx) -> Result<Flow, CliError> {
        let zk = zk_err(Cmd::context(&self));
        let mut paths = ctx.client()?.get_ephemerals(&self.path).await.map_err(zk)?;
        paths.sort();
        ctx.out.emit(
            &output::java_list(&paths),
            json!({"path": self.path, "ephemerals": paths}),
        );
        Ok(Flow::Continue)
    }
}

/// `getAllChildrenNumber`.
#[derive(Debug, Clone, PartialEq)]
pub struct GetAllChildrenNumber {
    /// The node.
    pub path: String,
}

impl Cmd for GetAllChildrenNumber {
    const NAME: &'static str = "getAllChildrenNumber";
    const USAGE: &'static str = "getAllChildrenNumber path";
    const SUMMARY: &'static str = "count a node's descendants (3.6+)";

    fn parse(args: &[String]) -> Result<Self, CliError> {
        let a = parse_flags(args, &[], Self::USAGE)?;
        Ok(GetAllChildrenNumber {
            path: one_path(&a, Self::USAGE)?,
        })
    }

    fn target(&self) -> &str {
        &self.path
    }

    async fn run(self, ctx: &mut Ctx) -> Result<Flow, CliError> {
        let zk = zk_err(Cmd::context(&self));
        let n = ctx
            .client()?
            .get_all_children_number(&self.path)
            .await
            .map_err(zk)?;
        ctx.out
            .emit(&n.to_string(), json!({"path": self.path, "count": n}));
        Ok(Flow::Continue)
    }
}

/// `tree`.
#[derive(Debug, Clone, PartialEq)]
pub struct Tree {
    /// The root.
    pub path: String,
}

impl Cmd for Tree {
    const NAME: &'static str = "tree";
    const USAGE: &'static str = "tree path";
    const SUMMARY: &'static str = "draw the subtree under path";

    fn parse(args: &[String]) -> Result<Self, CliError> {
        let a = parse_flags(args, &[], Self::USAGE)?;
        Ok(Tree {
            path: one_path(&a, Self::USAGE)?,
        })
    }

    fn target(&self) -> &str {
        &self.path
    }

    async fn run(self, ctx: &mut Ctx) -> Result<Flow, CliError> {
        let zk = zk_err(Cmd::context(&self));
        let path = self.path;
        let client = ctx.client()?;
        let mut progress = Progress::new("listing");
        let tree = walk::list(client, &path, &mut progress).await.map_err(zk)?;
        progress.finish();
        let text = output::tree_text(&path, &|p: &str| tree.children_of(p));
        let nodes: Vec<Value> = tree
            .depth_first(&path)
            .into_iter()
            .map(|p| {
                let kids = tree.children_of(&p);
                json!({"path": p, "children": kids})
            })
            .collect();
        ctx.out.emit(&text, json!({"path": path, "nodes": nodes}));
        Ok(Flow::Continue)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::tests::w;

    fn args(line: &str) -> Vec<String> {
        w(line).into_iter().skip(1).collect()
    }

    #[test]
    fn parses_zkcli_commands() {
        assert_eq!(
            Ls::parse(&args("ls -s -R /a")).unwrap(),
            Ls {
                path: "/a".into(),
                stat: true,
                watch: false,
                recursive: true
            }
        );
        assert!(matches!(
            Create::parse(&args("create -e -s /a/b- data")).unwrap(),
            Create {
                ephemeral: true,
                sequential: true,
                data: Some(_),
                ..
            }
        ));
        assert!(matches!(
            Set::parse(&args("set -v 3 /a hello")).unwrap(),
            Set { version: 3, .. }
        ));
    }
}
