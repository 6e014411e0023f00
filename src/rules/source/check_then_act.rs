use std::collections::BTreeSet;

use super::{check_step, fix_fn_name, read_step, write_step, Candidate, FlowCtx};
use crate::fix::{self, edit, rewrite};
use crate::model::FixSafety;
use crate::rules::declare_rule;
use crate::source::facts::{GuardKind, OpId, OpKind};
use crate::source::{mutated, writes};

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
    /// Two shapes a condition on the written item cannot cover are named as they are: a
    /// uniqueness checked by a query on another attribute (`email` on its index) before a put
    /// under a new key, fixed by a claim item keyed by the value in the same transaction; and
    /// a one-time item (a sign-in link, an invitation) found, deleted without a condition and
    /// then acted on, fixed by a delete on `attribute_exists` with `ReturnValues` `ALL_OLD`
    /// whose returned item the request goes on with.
    ///
    /// A delete of an item named by the read itself (cleaning up what a query found), or of
    /// an item whose time read from it has passed the clock (an expired session), is reported
    /// at `info`: a repeated delete does no harm.
    ///
    /// A decision no concurrent request can invalidate is reported at `info`, saying why: one
    /// on attributes that no write of the workspace changes once the item exists (its owner,
    /// its creator: no update sets them, no put may replace the item), and one that matches
    /// stored data with the caller's (an owner, a password, an allow-list) before a new item
    /// is put under a fresh key (a UUID, random bytes). A delete is not spared this way: it
    /// consumes what it found, whatever the attributes say.
    ///
    /// ## Known problems
    /// The decision is translated from Rust to a condition expression for the fix where its
    /// shape allows (comparisons, flags, `is_some`); other shapes get a compare-and-set on the
    /// attributes that were checked. A delete decided only by a read having found something
    /// (`if found.is_empty() { return 404 }`) is not reported when nothing else depends on
    /// it: if the item is gone by then, the delete does nothing. A write that returns the old
    /// item (`ReturnValues` `ALL_OLD`, `UPDATED_OLD`) and is checked afterwards is an atomic
    /// swap, and safe. Whether an attribute changes is read from this workspace only: one
    /// changed only by another service, or by hand, is taken as unchanged.
    ///
    /// ## Fix safety
    /// Unsafe: the check moves into the write's condition (a version check when a whole item is
    /// written), so a request that loses the race gets 409 Conflict (or 412) instead of writing.
    /// Display-only when the condition cannot express a decision of the code or the item's key,
    /// and for the claim and the conditional delete, whose values are the handler's.
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

/// `w` deletes an item a read found (a one-time code, an invitation) and another write of
/// the request depends on that read: the delete consumes it. Two requests that both found it
/// both delete it, the second deleting nothing, and both go on to write.
fn consumes(ctx: &FlowCtx, w: &writes::WriteFacts, c: &writes::Check) -> bool {
    let on_read = |r: &OpId| c.reads.contains(r);
    w.kind == OpKind::DeleteItem
        && c.guard.on_existing == Some(true)
        && w.key_source != writes::KeySource::Read
        && ctx.writes.iter().any(|o| {
            o.op != w.op
                && o.kind != OpKind::DeleteItem
                && (o.feeds.iter().any(|f| on_read(&f.read))
                    || o.checks.iter().any(|k| k.reads.iter().any(on_read)))
        })
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
        // The item put holds the value made unique, where its attributes are written out.
        let holds = |u: &writes::Unique| match &w.req.item_whole {
            // A struct written whole holds the value when one of its fields is named for it.
            Some(whole) => match whole.val.fields.as_ref() {
                Some(fields) => fields
                    .keys()
                    .any(|f| u.attrs.iter().any(|a| mutated::same_name(f, a))),
                // Else: the value selected on flows into the item.
                None => u.vals.params().any(|p| whole.val.params().any(|q| q == p)),
            },
            None => w.req.item.is_empty() || w.req.item.iter().any(|p| u.attrs.contains(&p.name)),
        };
        let fresh_create =
            w.kind.plain() == OpKind::PutItem && w.key_source == writes::KeySource::Fresh;
        // A value computed from the item found is a lost update first (RC101/RC103 name it).
        let computed = |c: &writes::Check| w.feeds.iter().any(|f| c.reads.contains(&f.read));
        let checks: Vec<_> = w
            .checks
            .iter()
            .filter(|c| !skips_same_value(w, c))
            // Something found, then a new item created under a key no other request can name:
            // what was found deciding is no limit or uniqueness the new item could break.
            .filter(|c| !(fresh_create && c.guard.on_existing == Some(true)))
            // Nothing found, then a new item under a fresh key that does not hold the value
            // looked for (a verification record after a sign-up's check): only the item that
            // holds the value can break the uniqueness.
            .filter(|c| {
                !(fresh_create
                    && c.guard.on_existing == Some(false)
                    && c.unique.as_ref().is_some_and(|u| !holds(u)))
            })
            // Deleting what a read found: if it is gone by then, the delete does nothing,
            // unless the request goes on to write on the strength of what it found.
            .filter(|c| {
                consumes(ctx, w, c)
                    || !(w.kind == OpKind::DeleteItem && c.guard.on_existing == Some(true))
            })
            .filter(|c| {
                consumes(ctx, w, c)
                    || c.guard.kind == GuardKind::Value
                    || (revives
                        && !computed(c)
                        && c.guard.on_existing == Some(true)
                        && c.reads
                            .iter()
                            .any(|r| writes::same_item(&ctx.op(*r).req, &w.req).unwrap_or(true)))
            })
            .collect();
        // Decisions no concurrent request can invalidate: on attributes no write of the
        // workspace changes once the item exists (its owner, its creator), or a match of
        // stored data with the caller's (an owner, a credential) before a new item is put
        // under a fresh key. Alone, they are reported at `info`, saying why.
        let never_changed = |c: &writes::Check| {
            !c.attrs.is_empty()
                && c.attrs.iter().all(|a| {
                    c.reads
                        .iter()
                        .all(|r| ctx.mutated.never_changed(&ctx.op(*r).req.table, a))
                })
        };
        let settled = |c: &writes::Check| {
            c.guard.kind == GuardKind::Value
                && c.unique.is_none()
                && !consumes(ctx, w, c)
                // A delete consumes what it found: a concurrent one makes both requests pass
                // whatever the attributes say.
                && ((w.kind != OpKind::DeleteItem && never_changed(c))
                    || (fresh_create && c.guard.matches_caller))
        };
        let (settled_checks, live): (Vec<_>, Vec<_>) = checks.into_iter().partition(|c| settled(c));
        let settled_note = live.is_empty().then(|| {
            let attrs: BTreeSet<&str> = settled_checks
                .iter()
                .filter(|c| never_changed(c))
                .flat_map(|c| c.attrs.iter().map(String::as_str))
                .collect();
            let list = attrs
                .iter()
                .map(|a| format!("`{a}`"))
                .collect::<Vec<_>>()
                .join(", ");
            if !attrs.is_empty() {
                format!(
                    ", but no write of the workspace changes {list} once the item exists, so no \
                     concurrent request can invalidate the decision"
                )
            } else {
                ", matching stored data with the caller's (an owner, a credential), before a new \
                 item is created under a fresh key that no other request can name"
                    .to_string()
            }
        });
        let checks = if live.is_empty() {
            settled_checks
        } else {
            live
        };
        // A decision on the item's data names the finding before whether it was found.
        let Some(first) = checks
            .iter()
            .find(|c| c.guard.kind == GuardKind::Value)
            .or(checks.first())
        else {
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
        let guard_text = first
            .guard
            .text
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        let settle = |mut c: Candidate| {
            if let Some(note) = &settled_note {
                c.severity = Some(crate::model::Severity::Info);
                c.message = format!(
                    "`{guard_text}` is decided on data read from {}{note}: the {} it guards needs no condition for it",
                    ctx.op(reads[0]).req.table.display(),
                    w.kind.api_name(),
                );
            }
            c
        };
        // A create under a key the check did not read: the check was for other items.
        let creates = w.kind.plain() == OpKind::PutItem && w.key_source != writes::KeySource::Read;
        if let Some(u) = checks
            .iter()
            .find_map(|c| c.unique.as_ref())
            .filter(|u| creates && holds(u))
        {
            let message = format!(
                "`{}` checks that no item of {} has this {}{}, then the {} writes under another key: its condition cannot see the items the query found, so two requests with the same {} both pass",
                guard_text,
                ctx.op(reads[0]).req.table.display(),
                u.attrs.join(", "),
                u.index.as_deref().map(|i| format!(" (queried on `{i}`)")).unwrap_or_default(),
                w.kind.api_name(),
                u.attrs.join(", "),
            );
            let fixes = vec![claim_fix(ctx, w, u)];
            out.push(ctx.candidate(&RULE, w, &reads, message, evidence, fixes));
            continue;
        }
        let message = if checks.iter().all(|c| consumes(ctx, w, c)) {
            format!(
                "`{guard_text}` finds the item in {}, then the delete_item takes it without a condition and the request goes on to write: two requests that both found it both go on (the second delete removes nothing)",
                ctx.op(reads[0]).req.table.display(),
            )
        } else {
            format!(
                "`{guard_text}` is decided on data read from {}, but the {} it guards does not re-check it: a concurrent request can change the item in between",
                ctx.op(reads[0]).req.table.display(),
                w.kind.api_name()
            )
        };
        if w.kind == OpKind::DeleteItem {
            let fixes = vec![take_fix(ctx, w, &checks)];
            let mut c = settle(ctx.candidate(&RULE, w, &reads, message, evidence, fixes));
            // Deleting what a read found (cleanup of queried items), or what has expired,
            // repeats harmlessly.
            let expired = checks.iter().any(|c| c.guard.past_due);
            if w.key_source == writes::KeySource::Read || expired {
                c.severity = Some(crate::model::Severity::Info);
            }
            out.push(c);
            continue;
        }
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
        out.push(settle(
            ctx.candidate(&RULE, w, &reads, message, evidence, fixes),
        ));
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

/// A uniqueness checked by a query: the write and an item that claims the value, keyed by
/// it, in one transaction, the claim only if absent. The key attribute, the table and the
/// value are the code's; whether the table has a sort key the code does not say, so the fix
/// is a sketch that names it.
fn claim_fix(ctx: &FlowCtx, w: &writes::WriteFacts, u: &writes::Unique) -> crate::model::Fix {
    let attr = u.attrs.first().map(String::as_str).unwrap_or("value");
    let (table, table_param) = table_arg(w);
    let keys = writes::key_attrs(&w.req);
    let pk = keys.first().map(String::as_str).unwrap_or("pk");
    let value = u.value.as_deref().map(plain_value).unwrap_or(attr);
    let name = fix_fn_name(ctx, &format!("claiming_{}", crate::fix::ident(attr)));
    let snippet = format!(
        r##"/// Writes the item and claims its `{attr}` in one transaction. The claim is an item keyed
/// by the value, created only if absent: of two requests with the same `{attr}`, one gets
/// `Ok(false)` (the transaction is cancelled: ConditionalCheckFailed on the claim), answered
/// with 409.
/// Keep the claim when `{attr}` changes (delete the old one, claim the new one, in one
/// transaction) and when the item is deleted.
pub async fn {name}(
    client: &aws_sdk_dynamodb::Client,{table_param}
    item: aws_sdk_dynamodb::types::Put,
    {attr_ident}: &str,
) -> Result<bool, Box<dyn std::error::Error + Send + Sync>> {{
    use aws_sdk_dynamodb::types::{{AttributeValue, Put, TransactWriteItem}};
    let claim = Put::builder()
        .table_name({table})
        .item("{pk}", AttributeValue::S(format!("{attr}#{{{attr_ident}}}")))
        .condition_expression("attribute_not_exists(#pk)")
        .expression_attribute_names("#pk", "{pk}")
        .build()?;
    let result = client
        .transact_write_items()
        .transact_items(TransactWriteItem::builder().put(item).build())
        .transact_items(TransactWriteItem::builder().put(claim).build())
        .send()
        .await;
    match result {{
        Ok(_) => Ok(true),
        // The claim exists: another item holds this `{attr}` (answer 409 Conflict).
        Err(err)
            if err
                .as_service_error()
                .is_some_and(|e| e.is_transaction_canceled_exception()) =>
        {{
            Ok(false)
        }}
        Err(err) => Err(err.into()),
    }}
}}
"##,
        attr_ident = crate::fix::ident(attr),
    );
    let sort_key = if keys.len() > 1 {
        format!(
            " The item's key has more than one attribute ({}): give the claim the same ones.",
            keys.join(", ")
        )
    } else {
        " If the table has a sort key, give the claim one too.".to_string()
    };
    fix::fix(
        format!("Claim the `{attr}` in the same transaction"),
        format!(
            "A condition on the new item cannot see other items, so `attribute_not_exists` on \
             it cannot keep `{attr}` unique. Write the item together with a claim item keyed by \
             the value (`{pk} = \"{attr}#\" + {value}`) in one transact_write_items, the claim \
             on condition attribute_not_exists; map a cancelled transaction to 409 Conflict.{sort_key}"
        ),
        FixSafety::DisplayOnly,
        snippet,
    )
}

/// A delete decided on a read: the delete itself checks, on condition that the item still
/// exists (and still passes the checks made on the read), and returns the item it removed, so
/// the request goes on with what it took rather than with what it read. The checks' values
/// are the handler's, so the fix is a sketch that names them.
fn take_fix(ctx: &FlowCtx, w: &writes::WriteFacts, checks: &[&writes::Check]) -> crate::model::Fix {
    let (table, table_param) = table_arg(w);
    let keys = writes::key_attrs(&w.req);
    let pk = keys.first().map(String::as_str).unwrap_or("pk");
    let checked: BTreeSet<&str> = checks
        .iter()
        .flat_map(|c| c.attrs.iter().map(String::as_str))
        .filter(|a| *a != "*" && !keys.iter().any(|k| k == a))
        .collect();
    let name = fix_fn_name(ctx, "taken");
    let more = if checked.is_empty() {
        String::new()
    } else {
        let list = checked
            .iter()
            .map(|a| format!("`{a}`"))
            .collect::<Vec<_>>()
            .join(", ");
        format!(" Add the checks the code makes on {list} to the condition, with their values.")
    };
    let snippet = format!(
        r##"/// Deletes the item only while it exists and returns it: of two requests with the same
/// key one gets the item, the other `None`.
pub async fn {name}(
    client: &aws_sdk_dynamodb::Client,{table_param}
    key: std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>,
) -> Result<
    Option<std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>>,
    aws_sdk_dynamodb::Error,
> {{
    let result = client
        .delete_item()
        .table_name({table})
        .set_key(Some(key))
        .condition_expression("attribute_exists(#pk)")
        .expression_attribute_names("#pk", "{pk}")
        .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
        .send()
        .await;
    match result {{
        Ok(out) => Ok(out.attributes),
        Err(err)
            if err
                .as_service_error()
                .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
        {{
            Ok(None)
        }}
        Err(err) => Err(err.into()),
    }}
}}
"##
    );
    fix::fix(
        "Take the item with a conditional delete",
        format!(
            "Delete on condition attribute_exists({pk}) with ReturnValues ALL_OLD and go on with \
             the item the delete returns instead of the one read before: only one request gets \
             it; the other gets ConditionalCheckFailed, answered as the item not being there.{more}"
        ),
        FixSafety::DisplayOnly,
        snippet,
    )
}

/// The table a sketch names: the code's literal, else a `table` parameter (the code names it
/// at run time), with that parameter's declaration.
fn table_arg(w: &writes::WriteFacts) -> (String, &'static str) {
    match w.req.table.name() {
        Some(t) => (format!("{t:?}"), ""),
        None => ("table".to_string(), "\n    table: &str,"),
    }
}

/// `AttributeValue::S(email.clone())` as the value it holds, `email`.
fn plain_value(text: &str) -> &str {
    let mut t = text.trim();
    for wrap in ["AttributeValue::S(", "S("] {
        if let Some(inner) = t.strip_prefix(wrap).and_then(|x| x.strip_suffix(')')) {
            t = inner.trim();
        }
    }
    for tail in [".clone()", ".to_string()", ".to_owned()", ".into()"] {
        t = t.strip_suffix(tail).unwrap_or(t);
    }
    t.trim_start_matches('&')
}
