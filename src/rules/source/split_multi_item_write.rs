use super::{check_step, fix_fn_name, write_step, Candidate, FlowCtx};
use crate::fix::{self, rewrite, Arg, Target, Ty, UpdateSpec};
use crate::model::FixSafety;
use crate::rules::declare_rule;
use crate::source::facts::{OpKind, Origin, Val};
use crate::source::writes::{self, KeySource, WriteFacts};

declare_rule! {
    /// ## What it does
    /// Finds two or more writes to different items in one request flow that depend on each
    /// other (they share an input such as an amount, or follow from the same decision) and are
    /// sent one by one instead of in one `transact_write_items`.
    ///
    /// ## Why is this bad?
    /// The first write can succeed and the second fail (a throttle, a failed condition, a
    /// crash in between). A transfer debits one account and never credits the other; an order
    /// is recorded while the stock is not reserved. Concurrent requests also see the
    /// half-done state.
    ///
    /// ## Example
    /// ```rust,ignore
    /// debit(&client, &from, amount).await?;
    /// credit(&client, &to, amount).await?; // may never happen
    /// ```
    ///
    /// ## Use instead
    /// One `transact_write_items` with an `Update` per item, each with the condition that
    /// guards it (`balance >= :amount` on the debit). All writes happen or none do; a
    /// cancelled transaction (`TransactionCanceledException`) is answered with 409.
    ///
    /// ## Known problems
    /// Writes whose key is a fresh UUID (an audit record, an outbox row) are not counted. A
    /// group of deletes alone (a user's rows removed one by one) is not reported: deleting
    /// again completes it, and no value is half-applied.
    ///
    /// ## Fix safety
    /// Unsafe: the writes go into one `transact_write_items`, all or none, and a cancelled
    /// transaction is answered with 409 Conflict where each write used to apply on its own.
    /// Display-only when a member's condition cannot express a decision of the code, or its key
    /// or update (a whole item put back) is unknown. No edits: merging the writes also merges
    /// how the handler answers each failure, which is the handler's to decide.
    pub static RULE = ("RC104", "split-multi-item-write", Source, High,
        "Dependent writes to several items outside `transact_write_items`.");
}

/// Values a write sends, without its key.
fn payload(w: &WriteFacts) -> Val {
    let mut v = Val::default();
    for p in w.req.item.iter().chain(&w.req.values) {
        v.join(&p.val);
    }
    if let Some(p) = &w.req.item_whole {
        v.join(&p.val);
    }
    v
}

fn depends(a: &WriteFacts, b: &WriteFacts) -> bool {
    let (pa, pb) = (payload(a), payload(b));
    let (ka, kb) = (a.req.key_val(), b.req.key_val());
    let shared = pa.origins.iter().any(|o| {
        matches!(o, Origin::Param(_) | Origin::Read(_))
            && pb.origins.contains(o)
            && !ka.origins.contains(o)
            && !kb.origins.contains(o)
    });
    // Fields of one request (`t.amount` in both) share the origin of their keys too: compare
    // the variables the values are made of.
    let vars = |w: &WriteFacts| -> Vec<String> {
        w.req
            .item
            .iter()
            .chain(&w.req.values)
            .filter(|p| {
                p.val
                    .origins
                    .iter()
                    .any(|o| matches!(o, Origin::Param(_) | Origin::Read(_)))
            })
            .map(|p| fix::param_name(&p.text, &p.name))
            .collect()
    };
    let (va, vb) = (vars(a), vars(b));
    let shared_vars = va.iter().any(|v| vb.contains(v));
    shared
        || shared_vars
        || (!a.checks.is_empty() && !b.checks.is_empty())
        || (!a.feeds.is_empty() && !b.feeds.is_empty())
}

pub fn check(ctx: &FlowCtx, out: &mut Vec<Candidate>) {
    let singles: Vec<&WriteFacts> = ctx
        .writes
        .iter()
        .filter(|w| {
            !w.in_transaction
                && matches!(
                    w.kind,
                    OpKind::PutItem | OpKind::UpdateItem | OpKind::DeleteItem
                )
                && w.key_source != KeySource::Fresh
        })
        .collect();
    let mut group: Vec<&WriteFacts> = vec![];
    for (i, a) in singles.iter().enumerate() {
        for b in &singles[i + 1..] {
            let distinct = a.req.table.same_as(&b.req.table) == Some(false)
                || writes::same_item(&a.req, &b.req) == Some(false);
            if distinct && depends(a, b) {
                for w in [*a, *b] {
                    if !group.iter().any(|g| std::ptr::eq(*g, w)) {
                        group.push(w);
                    }
                }
            }
        }
    }
    let Some(last) = group.last() else { return };
    if group.iter().all(|w| w.kind == OpKind::DeleteItem) {
        return;
    }
    let mut evidence = vec![];
    for w in &group {
        for ch in &w.checks {
            if !evidence
                .iter()
                .any(|e: &crate::model::EvidenceStep| e.line == ch.guard.span.line)
            {
                check_step(&ch.guard, &mut evidence);
            }
        }
    }
    for w in &group {
        write_step(
            ctx.op(w.op),
            format!(
                "{} to {} here, on its own",
                w.kind.api_name(),
                w.req.table.display()
            ),
            &mut evidence,
        );
    }
    let message = format!(
        "{} dependent writes to different items are sent one by one: if one fails or requests interleave, the others stay applied; use transact_write_items",
        group.len()
    );
    let members: Vec<UpdateSpec> = group
        .iter()
        .map(|w| rewrite::atomic_update(w, &|s| ctx.text(s)).unwrap_or_else(|| as_written(w)))
        .collect();
    let unchecked: Vec<String> = members.iter().flat_map(|m| m.unchecked.clone()).collect();
    let fixes =
        vec![fix::with_gaps(
        fix::without_edits(fix::fix(
            "Write all items in one transaction",
            "transact_write_items applies every update or none; each keeps the condition that \
         guards it, and a cancelled transaction is answered with 409 Conflict.",
            FixSafety::Unsafe,
            fix::render_transaction(
                &fix_fn_name(ctx, "in_one_transaction"),
                "Applies all the writes of the request atomically, or none of them.",
                &members,
            ),
        ), "the writes become one transaction, which also merges how the handler answers each \
            failure: that is the handler's to decide"),
        &unchecked,
    )];
    let reads: Vec<usize> = group
        .iter()
        .flat_map(|w| w.checks.iter().flat_map(|c| c.reads.clone()))
        .collect();
    out.push(ctx.candidate(&RULE, last, &reads, message, evidence, fixes));
}

/// A member for a write that cannot be rewritten: its update as written, or a whole-item
/// replacement expressed as `SET` of one attribute the caller fills in.
fn as_written(w: &WriteFacts) -> UpdateSpec {
    let mut spec = UpdateSpec {
        names: w.req.names.clone(),
        ..UpdateSpec::new(Target::of(&w.req))
    };
    rewrite::keep_condition(&mut spec, &w.req);
    match &w.req.update {
        Some(crate::source::facts::Text::Literal(u)) => {
            spec.update = u.clone();
            for p in &w.req.values {
                spec.add_value(
                    &p.name,
                    Arg::Param(fix::param_name(&p.text, &p.name), Ty::of_text(&p.text)),
                );
            }
        }
        _ => {
            spec.update = "SET #updated = :updated".into();
            spec.names = vec![("#updated".into(), "updated".into())];
            spec.add_value(":updated", Arg::Param("updated".into(), Ty::Value));
            spec.unchecked
                .push("what the write changes (a whole item; `updated` stands in for it)".into());
        }
    }
    spec
}
