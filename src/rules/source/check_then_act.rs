use super::{check_step, fix_fn_name, read_step, write_step, Candidate, FlowCtx};
use crate::fix::{self, edit, rewrite};
use crate::model::FixSafety;
use crate::rules::declare_rule;
use crate::source::facts::{GuardKind, OpKind};
use crate::source::writes;

declare_rule! {
    /// ## What it does
    /// Finds a write that runs only after a decision on data read from DynamoDB (a balance
    /// compared with an amount, a `redeemed` flag, a status) when the write's own condition
    /// does not re-check that decision.
    ///
    /// ## Why is this bad?
    /// Between the read and the write another request can change the item: two withdrawals
    /// both see enough money, two redemptions both see an unused coupon. Both pass the check
    /// and both write, and the rule the check enforces is broken.
    ///
    /// ## Example
    /// ```rust,ignore
    /// let coupon = load_coupon(&client, &code).await?;
    /// if coupon.redeemed {
    ///     return Err(StatusCode::CONFLICT);
    /// }
    /// client.update_item().table_name("coupons").key("code", code_av)
    ///     .update_expression("SET redeemed = :t")
    ///     .expression_attribute_values(":t", AttributeValue::Bool(true))
    ///     .send().await?; // the check above may no longer hold
    /// ```
    ///
    /// ## Use instead
    /// Move the decision into the write: `condition_expression("attribute_not_exists(redeemed)
    /// OR redeemed = :false")`, or `balance >= :amount` together with
    /// `SET balance = balance - :amount`. DynamoDB then checks and writes atomically; map
    /// `ConditionalCheckFailed` to 409 Conflict.
    ///
    /// A delete of an item named by the read itself (cleaning up what a query found), or of
    /// an item whose time read from it has passed the clock (an expired session), is reported
    /// at `info`: a repeated delete does no harm.
    ///
    /// ## Known problems
    /// The decision is translated from Rust to a condition expression for the fix where its
    /// shape allows (comparisons, flags, `is_some`); other shapes get a compare-and-set on the
    /// attributes that were checked. A delete decided only by a read having found something
    /// (`if found.is_empty() { return 404 }`) is not reported: if the item is gone by then,
    /// the delete does nothing.
    ///
    /// ## Fix safety
    /// Unsafe: the check moves into the write's condition (a version check when a whole item is
    /// written), so a request that loses the race gets 409 Conflict (or 412) instead of writing.
    /// Display-only when the condition cannot express a decision of the code or the item's key.
    /// Edits add the condition to the write's builder chain (with the handler's own values)
    /// and answer a failed one with the handler's conflict; `racecheck fix --unsafe-fixes`
    /// applies them.
    pub static RULE = ("RC102", "check-then-act", Source, High,
        "A decision on read data guards a write whose condition does not re-check it.");
}

/// `if new == stored { return }` before a write of `new`: the check only skips writing what
/// is already there. A concurrent change in between is overwritten by the same write the
/// request would have made without the check: the check decides nothing.
fn skips_same_value(w: &writes::WriteFacts, c: &writes::Check) -> bool {
    let Some(theirs) = &c.guard.differs_from else {
        return false;
    };
    // Only a plain overwrite: an increment or a value from the read beside it would make the
    // skip decide something (`if plan == new { return }` before `SET plan = :p ADD charges :c`).
    let parts = || w.req.values.iter().chain(w.req.item.iter());
    w.kind == OpKind::UpdateItem
        && w.atomic_attrs().is_empty()
        && parts().all(|p| !p.val.has_read())
        && parts().any(|p| !theirs.origins.is_empty() && theirs.origins.is_subset(&p.val.origins))
}

pub fn check(ctx: &FlowCtx, out: &mut Vec<Candidate>) {
    for w in ctx.writes {
        if w.rechecks || w.kind == OpKind::BatchWriteItem {
            continue;
        }
        // A value decision, or the item found to exist before an update that does not require
        // it to exist still: a delete in between makes the update create a partial item.
        let revives = w.kind == OpKind::UpdateItem
            && w.condition.is_none()
            && !w.in_transaction
            && !w.requires_item();
        let checks: Vec<_> = w
            .checks
            .iter()
            .filter(|c| !skips_same_value(w, c))
            // Deleting what a read found: if it is gone by then, the delete does nothing.
            .filter(|c| !(w.kind == OpKind::DeleteItem && c.guard.on_existing == Some(true)))
            .filter(|c| {
                c.guard.kind == GuardKind::Value
                    || (revives
                        && c.guard.on_existing == Some(true)
                        && c.reads
                            .iter()
                            .any(|r| writes::same_item(&ctx.op(*r).req, &w.req).unwrap_or(true)))
            })
            .collect();
        let Some(first) = checks.first() else {
            continue;
        };
        let op = ctx.op(w.op);
        let mut evidence = vec![];
        let mut reads: Vec<usize> = checks
            .iter()
            .flat_map(|c| c.reads.iter().copied())
            .collect();
        reads.sort_unstable();
        reads.dedup();
        for r in &reads {
            let attrs: Vec<String> = checks
                .iter()
                .flat_map(|c| c.attrs.iter().cloned())
                .collect();
            read_step(ctx.op(*r), &attrs, &mut evidence);
        }
        for c in &checks {
            check_step(&c.guard, &mut evidence);
        }
        write_step(
            op,
            format!(
                "written here by {} without re-checking it",
                w.kind.api_name()
            ),
            &mut evidence,
        );
        let message = format!(
            "`{}` is decided on data read from {}, but the {} it guards does not re-check it: a concurrent request can change the item in between",
            first.guard.text.split_whitespace().collect::<Vec<_>>().join(" "),
            ctx.op(reads[0]).req.table.display(),
            w.kind.api_name()
        );
        let found_existing = checks
            .iter()
            .any(|c| c.guard.kind == GuardKind::Exists && c.guard.on_existing == Some(true));
        let fixes = match rewrite::atomic_update(w, &|s| ctx.text(s)) {
            Some(mut spec) => {
                if found_existing {
                    spec.require_item(true);
                }
                let f = checked_fix(ctx, &spec);
                vec![ctx.with_edits(w, f, |site| edit::update_edits(site, &spec))]
            }
            None => vec![super::lost_update::version_put(ctx, w)],
        };
        let mut c = ctx.candidate(&RULE, w, &reads, message, evidence, fixes);
        // Deleting what a read found (cleanup of queried items), or what has expired, repeats
        // harmlessly.
        let expired = checks.iter().any(|c| c.guard.past_due);
        if w.kind == OpKind::DeleteItem && (w.key_source == writes::KeySource::Read || expired) {
            c.severity = Some(crate::model::Severity::Info);
        }
        out.push(c);
    }
}

/// The decision moved into the write's condition.
fn checked_fix(ctx: &FlowCtx, spec: &fix::UpdateSpec) -> crate::model::Fix {
    let f = fix::fix(
        "Make the check part of the write",
        "The condition expression makes DynamoDB check and write in one step; a request that \
         loses the race gets ConditionalCheckFailed, answered with 409 Conflict.",
        FixSafety::Unsafe,
        fix::render_update(
            &fix_fn_name(ctx, "checked"),
            "Checks and writes in one request: DynamoDB rejects the write when the check fails.",
            spec,
        ),
    );
    fix::with_gaps(f, &spec.unchecked)
}
