//! Validation of writes against the newest committed tree, turning each into a transaction or an
//! error code: the model's `PrepRequestProcessor` (PROTOCOL.md §6, §8, §9).
//!
//! The checks run in the Java server's order, because the order decides which error a client
//! gets when several apply (a create under a missing parent with an empty ACL is InvalidACL, not
//! NoNode). Where PROTOCOL.md and the Java sources disagree, PROTOCOL.md wins and the difference
//! is noted next to the check.

use bytes::Bytes;
use zk_core::proto::{
    Acl, CreateMode, CreateRequest, CreateTtlRequest, ErrorCode, Id, MultiOp, MultiResult, Perms,
    MAX_TTL_MS,
};

use super::acl;
use super::path;
use super::tree::{DataTree, Owner};
use super::txn::TxnOp;

/// What the write runs as: the connection's identities, its session, the server's settings.
pub(crate) struct Ctx<'a> {
    /// The connection's identities.
    pub auth: &'a [Id],
    /// The session issuing the write (owner of its ephemerals).
    pub session: i64,
    /// `extendedTypesEnabled` (TTL nodes).
    pub extended_types: bool,
    /// Multi answers create2 sub-ops with create2 results (3.7.2 / 3.8.2 / 3.9.0+, §9).
    pub multi_create2_results: bool,
    /// The leader's clock for this transaction, used while applying multi ops to a scratch tree.
    pub time_ms: i64,
    /// The zxid this transaction will get.
    pub zxid: i64,
}

/// Which opcode a create came with; the opcode constrains the flags (§8.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CreateOp {
    /// create (1).
    Create,
    /// create2 (15).
    Create2,
    /// createContainer (19).
    Container,
    /// createTTL (21).
    Ttl,
}

/// A create of any kind, normalised.
pub(crate) struct CreateArgs<'a> {
    pub op: CreateOp,
    pub path: &'a str,
    pub data: &'a Option<Bytes>,
    pub acl: &'a [Acl],
    pub flags: i32,
    /// -1 for the opcodes without a ttl field, as the Java server does.
    pub ttl: i64,
}

impl<'a> CreateArgs<'a> {
    /// From a CreateRequest sent with `op`.
    pub fn plain(op: CreateOp, r: &'a CreateRequest) -> Self {
        CreateArgs {
            op,
            path: &r.path,
            data: &r.data,
            acl: &r.acl,
            flags: r.flags,
            ttl: -1,
        }
    }

    /// From a CreateTTLRequest.
    pub fn ttl(r: &'a CreateTtlRequest) -> Self {
        CreateArgs {
            op: CreateOp::Ttl,
            path: &r.path,
            data: &r.data,
            acl: &r.acl,
            flags: r.flags,
            ttl: r.ttl,
        }
    }
}

/// The node mode the flags and opcode allow, or the error the server gives (§8.3, §8.4).
fn create_mode(args: &CreateArgs, ctx: &Ctx) -> Result<CreateMode, ErrorCode> {
    let mode = CreateMode::try_from(args.flags).map_err(|_| ErrorCode::BadArguments)?;
    // `validateCreateRequest`: TTL modes need extendedTypesEnabled (Unimplemented, connection
    // stays open), then `EphemeralType.validateTTL`.
    if mode.is_ttl() && !ctx.extended_types {
        return Err(ErrorCode::Unimplemented);
    }
    match args.op {
        CreateOp::Ttl => {
            // Java only refuses non-TTL flags when ttl >= 0; with ttl < 0 it would log a
            // CreateTTLTxn it cannot apply. PROTOCOL.md §6 says flags 5/6 need op 21 and the model
            // refuses every other combination.
            if !mode.is_ttl() || args.ttl <= 0 || args.ttl > MAX_TTL_MS {
                return Err(ErrorCode::BadArguments);
            }
        }
        CreateOp::Container => {
            if !mode.is_container() {
                return Err(ErrorCode::BadArguments);
            }
        }
        CreateOp::Create | CreateOp::Create2 => {
            // TTL flags without a ttl field fail validateTTL (ttl -1) [L V8]. Flag 4 through
            // create/create2 is BadArguments per PROTOCOL.md §6; a 3.8 server's source would
            // instead create a plain persistent node.
            if mode.is_ttl() || mode.is_container() {
                return Err(ErrorCode::BadArguments);
            }
        }
    }
    Ok(mode)
}

/// Validates a create; on success the transaction and the final path (with any sequence suffix).
pub(crate) fn create(
    tree: &DataTree,
    ctx: &Ctx,
    args: &CreateArgs,
) -> Result<(TxnOp, String), ErrorCode> {
    let mode = create_mode(args, ctx)?;
    let parent_path = path::parent_for_create(args.path).ok_or(ErrorCode::BadArguments)?;
    let acl = acl::fixup(args.acl, ctx.auth)?;
    let parent = tree.get(parent_path).ok_or(ErrorCode::NoNode)?;
    if !acl::allows(&parent.acl, ctx.auth, Perms::CREATE.0) {
        return Err(ErrorCode::NoAuth);
    }
    // §8.3: the suffix is the parent's stored child version (creates only), %010d; only the final
    // path is validated, so a sequential prefix may end in '/'.
    let final_path = if mode.is_sequential() {
        format!("{}{:010}", args.path, parent.creates)
    } else {
        args.path.to_owned()
    };
    if !path::is_valid(&final_path) {
        return Err(ErrorCode::BadArguments);
    }
    if tree.get(&final_path).is_some() {
        return Err(ErrorCode::NodeExists);
    }
    if matches!(parent.owner, Owner::Ephemeral(_)) {
        return Err(ErrorCode::NoChildrenForEphemerals);
    }
    let owner = if mode.is_container() {
        Owner::Container
    } else if mode.is_ttl() {
        Owner::Ttl(args.ttl)
    } else if mode.is_ephemeral() {
        Owner::Ephemeral(ctx.session)
    } else {
        Owner::Persistent
    };
    Ok((
        TxnOp::Create {
            path: final_path.clone(),
            data: args.data.clone(),
            acl,
            owner,
        },
        final_path,
    ))
}

/// `checkAndIncVersion`: -1 matches any version.
fn check_version(current: i32, expected: i32) -> Result<(), ErrorCode> {
    if expected != -1 && expected != current {
        Err(ErrorCode::BadVersion)
    } else {
        Ok(())
    }
}

/// Validates a delete (NotEmpty after the version check, as in Java).
pub(crate) fn delete(
    tree: &DataTree,
    ctx: &Ctx,
    p: &str,
    version: i32,
) -> Result<TxnOp, ErrorCode> {
    let parent_path = path::parent_for_delete(p).ok_or(ErrorCode::BadArguments)?;
    let parent = tree.get(parent_path).ok_or(ErrorCode::NoNode)?;
    if !acl::allows(&parent.acl, ctx.auth, Perms::DELETE.0) {
        return Err(ErrorCode::NoAuth);
    }
    let node = tree.get(p).ok_or(ErrorCode::NoNode)?;
    check_version(node.version, version)?;
    if !node.children.is_empty() {
        return Err(ErrorCode::NotEmpty);
    }
    Ok(TxnOp::Delete { path: p.to_owned() })
}

/// Validates a setData.
pub(crate) fn set_data(
    tree: &DataTree,
    ctx: &Ctx,
    p: &str,
    data: &Option<Bytes>,
    version: i32,
) -> Result<TxnOp, ErrorCode> {
    if !path::is_valid(p) {
        return Err(ErrorCode::BadArguments);
    }
    let node = tree.get(p).ok_or(ErrorCode::NoNode)?;
    if !acl::allows(&node.acl, ctx.auth, Perms::WRITE.0) {
        return Err(ErrorCode::NoAuth);
    }
    check_version(node.version, version)?;
    Ok(TxnOp::SetData {
        path: p.to_owned(),
        data: data.clone(),
    })
}

/// Validates a setACL (the version is checked against aversion).
pub(crate) fn set_acl(
    tree: &DataTree,
    ctx: &Ctx,
    p: &str,
    new_acl: &[Acl],
    version: i32,
) -> Result<TxnOp, ErrorCode> {
    if !path::is_valid(p) {
        return Err(ErrorCode::BadArguments);
    }
    let fixed = acl::fixup(new_acl, ctx.auth)?;
    let node = tree.get(p).ok_or(ErrorCode::NoNode)?;
    if !acl::allows(&node.acl, ctx.auth, Perms::ADMIN.0) {
        return Err(ErrorCode::NoAuth);
    }
    check_version(node.aversion, version)?;
    Ok(TxnOp::SetAcl {
        path: p.to_owned(),
        acl: fixed,
    })
}

/// Validates a check (multi only).
pub(crate) fn check(tree: &DataTree, ctx: &Ctx, p: &str, version: i32) -> Result<TxnOp, ErrorCode> {
    if !path::is_valid(p) {
        return Err(ErrorCode::BadArguments);
    }
    let node = tree.get(p).ok_or(ErrorCode::NoNode)?;
    if !acl::allows(&node.acl, ctx.auth, Perms::READ.0) {
        return Err(ErrorCode::NoAuth);
    }
    check_version(node.version, version)?;
    Ok(TxnOp::Check)
}

/// Validates a multi of write ops (the caller has refused read ops): each op sees the effects of
/// the ones before it. Returns the transaction (an error transaction if any op failed) and one
/// result per op, shaped as §9 describes.
pub(crate) fn multi(tree: &DataTree, ctx: &Ctx, ops: &[MultiOp]) -> (TxnOp, Vec<MultiResult>) {
    let mut scratch = tree.clone();
    let mut txns = Vec::with_capacity(ops.len());
    let mut results = Vec::with_capacity(ops.len());
    let mut discard = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        let step = prep_sub_op(&scratch, ctx, op);
        match step {
            Ok((txn, result)) => {
                scratch.apply_op(&txn, ctx.zxid, ctx.time_ms, &mut discard);
                discard.clear();
                let result = result(&scratch);
                txns.push(txn);
                results.push(result);
            }
            Err(code) => {
                // Ops before the failure report OK, the failure its code, the rest
                // RuntimeInconsistency; nothing applies (§9).
                let mut shaped = vec![MultiResult::Error(ErrorCode::Ok); i];
                shaped.push(MultiResult::Error(code));
                shaped.resize(
                    ops.len(),
                    MultiResult::Error(ErrorCode::RuntimeInconsistency),
                );
                return (TxnOp::Error, shaped);
            }
        }
    }
    (TxnOp::Multi(txns), results)
}

/// A sub-op's transaction and a function computing its result from the tree right after it
/// applied (a create's Stat is the node's at creation).
type SubOp = (TxnOp, Box<dyn Fn(&DataTree) -> MultiResult>);

fn prep_sub_op(tree: &DataTree, ctx: &Ctx, op: &MultiOp) -> Result<SubOp, ErrorCode> {
    let created = |txn: TxnOp, p: String, with_stat: bool| -> SubOp {
        let result: Box<dyn Fn(&DataTree) -> MultiResult> = if with_stat {
            Box::new(move |t: &DataTree| MultiResult::Create2 {
                path: p.clone(),
                stat: t.get(&p).map(|n| n.stat()).unwrap_or_default(),
            })
        } else {
            Box::new(move |_: &DataTree| MultiResult::Create { path: p.clone() })
        };
        (txn, result)
    };
    Ok(match op {
        MultiOp::Create(r) => {
            let (txn, p) = create(tree, ctx, &CreateArgs::plain(CreateOp::Create, r))?;
            created(txn, p, false)
        }
        MultiOp::Create2(r) => {
            let (txn, p) = create(tree, ctx, &CreateArgs::plain(CreateOp::Create2, r))?;
            // Before ZOOKEEPER-4026 the server downgraded create2 sub-ops to create [L V4].
            created(txn, p, ctx.multi_create2_results)
        }
        MultiOp::CreateContainer(r) => {
            let (txn, p) = create(tree, ctx, &CreateArgs::plain(CreateOp::Container, r))?;
            created(txn, p, true)
        }
        MultiOp::CreateTtl(r) => {
            let (txn, p) = create(tree, ctx, &CreateArgs::ttl(r))?;
            created(txn, p, true)
        }
        MultiOp::Delete(r) => (
            delete(tree, ctx, &r.path, r.version)?,
            Box::new(|_: &DataTree| MultiResult::Delete),
        ),
        MultiOp::SetData(r) => {
            let p = r.path.clone();
            (
                set_data(tree, ctx, &r.path, &r.data, r.version)?,
                Box::new(move |t: &DataTree| {
                    MultiResult::SetData(t.get(&p).map(|n| n.stat()).unwrap_or_default())
                }),
            )
        }
        MultiOp::Check(r) => (
            check(tree, ctx, &r.path, r.version)?,
            Box::new(|_: &DataTree| MultiResult::Check),
        ),
        // The caller refuses read ops before calling; answer as the server would if one slipped
        // through (MultiOperationRecord refuses the mix).
        MultiOp::GetData(_) | MultiOp::GetChildren(_) => return Err(ErrorCode::MarshallingError),
    })
}
