//! Commands on ACLs and credentials: getAcl, setAcl, addauth, whoami.

use bytes::Bytes;
use serde_json::{json, Value};
use zk_core::proto::Acl;

use super::{no_args, one_path, parse_acl, too_many, version, zk_err, Cmd};
use crate::args::{flag, opt, parse_flags};
use crate::error::CliError;
use crate::exec::{Ctx, Flow};
use crate::output;
use crate::progress::Progress;
use crate::walk;

/// `getAcl`.
#[derive(Debug, Clone, PartialEq)]
pub struct GetAcl {
    /// The node.
    pub path: String,
    /// `-s`.
    pub stat: bool,
}

impl Cmd for GetAcl {
    const NAME: &'static str = "getAcl";
    const USAGE: &'static str = "getAcl [-s] path";
    const SUMMARY: &'static str = "print a node's ACL";

    fn parse(args: &[String]) -> Result<Self, CliError> {
        let a = parse_flags(args, &[flag("-s")], Self::USAGE)?;
        Ok(GetAcl {
            path: one_path(&a, Self::USAGE)?,
            stat: a.has("-s"),
        })
    }

    fn target(&self) -> &str {
        &self.path
    }

    async fn run(self, ctx: &mut Ctx) -> Result<Flow, CliError> {
        let zk = zk_err(Cmd::context(&self));
        let (acl, st) = ctx.client()?.get_acl(&self.path).await.map_err(zk)?;
        let mut text = output::acl_text(&acl);
        if self.stat {
            text = format!("{text}\n{}", output::stat_text(&st));
        }
        ctx.out.emit(
            &text,
            json!({"path": self.path, "acl": output::acl_json(&acl), "stat": output::stat_json(&st)}),
        );
        Ok(Flow::Continue)
    }
}

/// `setAcl`.
#[derive(Debug, Clone, PartialEq)]
pub struct SetAcl {
    /// The node.
    pub path: String,
    /// The new ACL.
    pub acl: Vec<Acl>,
    /// `-v`: expected ACL version, -1 for any.
    pub version: i32,
    /// `-s`.
    pub stat: bool,
    /// `-R`.
    pub recursive: bool,
}

impl Cmd for SetAcl {
    const NAME: &'static str = "setAcl";
    const USAGE: &'static str = "setAcl [-s] [-v version] [-R] path acl";
    const SUMMARY: &'static str =
        "set a node's ACL, e.g. world:anyone:cdrwa,digest:user:HASH:r (-R whole subtree)";

    fn parse(args: &[String]) -> Result<Self, CliError> {
        let usage = Self::USAGE;
        let a = parse_flags(args, &[flag("-s"), opt("-v"), flag("-R")], usage)?;
        let (path, acl) = match a.positional.as_slice() {
            [] => return Err(CliError::usage("missing path and acl", usage)),
            [_] => return Err(CliError::usage("missing acl", usage)),
            [path, acl] => (path.clone(), parse_acl(acl)?),
            _ => return Err(too_many(usage)),
        };
        Ok(SetAcl {
            path,
            acl,
            version: version(&a, usage)?,
            stat: a.has("-s"),
            recursive: a.has("-R"),
        })
    }

    fn target(&self) -> &str {
        &self.path
    }

    async fn run(self, ctx: &mut Ctx) -> Result<Flow, CliError> {
        let zk = zk_err(Cmd::context(&self));
        let SetAcl {
            path,
            acl,
            version,
            stat,
            recursive,
        } = self;
        let client = ctx.client()?;
        if recursive {
            let mut progress = Progress::new("listing");
            let tree = walk::list(client, &path, &mut progress)
                .await
                .map_err(&zk)?;
            progress.relabel("setting ACLs");
            let n = walk::set_acl(client, &tree, &acl, version, &mut progress)
                .await
                .map_err(&zk)?;
            progress.finish();
            ctx.out.emit_quiet(json!({"path": path, "updated": n}));
        } else {
            let st = client.set_acl(&path, acl, version).await.map_err(zk)?;
            ctx.emit_stat(&path, &st, stat);
        }
        Ok(Flow::Continue)
    }
}

/// `addauth`.
#[derive(Debug, Clone, PartialEq)]
pub struct AddAuth {
    /// The scheme (`digest`).
    pub scheme: String,
    /// The credential (`user:password`).
    pub auth: String,
}

impl Cmd for AddAuth {
    const NAME: &'static str = "addauth";
    const USAGE: &'static str = "addauth scheme auth";
    const SUMMARY: &'static str = "add credentials to the session, e.g. addauth digest user:pw";

    fn parse(args: &[String]) -> Result<Self, CliError> {
        let a = parse_flags(args, &[], Self::USAGE)?;
        match a.positional.as_slice() {
            [scheme, auth] => Ok(AddAuth {
                scheme: scheme.clone(),
                auth: auth.clone(),
            }),
            [_, _, ..] => Err(too_many(Self::USAGE)),
            _ => Err(CliError::usage("missing scheme or auth", Self::USAGE)),
        }
    }

    fn target(&self) -> &str {
        &self.scheme
    }

    async fn run(self, ctx: &mut Ctx) -> Result<Flow, CliError> {
        let zk = zk_err(Cmd::context(&self));
        ctx.client()?
            .add_auth(&self.scheme, Bytes::from(self.auth.into_bytes()))
            .await
            .map_err(zk)?;
        ctx.out
            .emit_quiet(json!({"scheme": self.scheme, "added": true}));
        Ok(Flow::Continue)
    }
}

/// `whoami`.
#[derive(Debug, Clone, PartialEq)]
pub struct WhoAmI;

impl Cmd for WhoAmI {
    const NAME: &'static str = "whoami";
    const USAGE: &'static str = "whoami";
    const SUMMARY: &'static str = "print the identities of this session (3.7+)";

    fn parse(args: &[String]) -> Result<Self, CliError> {
        no_args(&parse_flags(args, &[], Self::USAGE)?, Self::USAGE)?;
        Ok(WhoAmI)
    }

    async fn run(self, ctx: &mut Ctx) -> Result<Flow, CliError> {
        let zk = zk_err(Cmd::context(&self));
        let ids = ctx.client()?.whoami().await.map_err(zk)?;
        let mut text = String::from("Auth scheme: User");
        for i in &ids {
            text.push_str(&format!("\n{}: {}", i.auth_scheme, i.user));
        }
        let list: Vec<Value> = ids
            .iter()
            .map(|i| json!({"scheme": i.auth_scheme, "user": i.user}))
            .collect();
        ctx.out.emit(&text, json!({"identities": list}));
        Ok(Flow::Continue)
    }
}
