use super::{check_step, fix_fn_name, read_step, write_step, Candidate, FlowCtx};
use crate::fix::{self, edit, Conflict, PutSpec, Target};
use crate::model::FixSafety;
use crate::rules::declare_rule;
use crate::source::facts::{GuardKind, OpKind};
use crate::source::writes::KeySource;

declare_rule! {
    /// ## What it does
    /// Finds a `put_item` that creates an item under a key the caller chose (a username, an
    /// order number, an idempotency key) with no `attribute_not_exists(<key>)` condition,
    /// in a function that creates things or after a check that the item does not exist yet.
    ///
    /// ## Why is this bad?
    /// `put_item` replaces an existing item. Two sign-ups for the same name both succeed and
    /// the second silently overwrites the first account; an "exists?" check before the put
    /// does not help, because both requests pass it before either writes.
    ///
    /// ## Example
    /// ```rust,ignore
    /// client.put_item().table_name("users")
    ///     .item("username", AttributeValue::S(body.username.clone()))
    ///     .send().await?;
    /// ```
    ///
    /// ## Use instead
    /// `condition_expression("attribute_not_exists(#pk)")` with `#pk` the partition key, and
    /// 409 Conflict when the condition fails. Keys made of a fresh UUID need no condition.
    ///
    /// ## Known problems
    /// Without a read that checks the item is absent, racecheck cannot tell a create from a
    /// deliberate upsert: such a put in a function that creates things is reported at `info`
    /// severity. After an existence check it is a race and reported at the rule's severity.
    ///
    /// ## Fix safety
    /// Unsafe: a create that used to replace the item now fails with 409 Conflict. Edits add
    /// the condition to the put and the 409 where the handler's answer to a conflict shows.
    pub static RULE = ("RC106", "unconditional-create", Source, High,
        "A create with a caller-chosen key and no `attribute_not_exists(<key>)`.");
}

pub fn check(ctx: &FlowCtx, out: &mut Vec<Candidate>) {
    for w in ctx.writes {
        if w.kind != OpKind::PutItem || matches!(w.key_source, KeySource::Fresh | KeySource::Read) {
            continue;
        }
        if w.condition
            .as_ref()
            .is_some_and(|c| !c.not_exists.is_empty())
            || w.condition_dynamic
        {
            continue;
        }
        let exists_checks: Vec<_> = w
            .checks
            .iter()
            .filter(|c| {
                // A key the caller chose, checked on the same table; any other key only after
                // a point read (an empty scan says nothing about this item). Going on only when
                // the read found its item is no check that this one is new.
                c.guard.kind == GuardKind::Exists
                    && c.guard.on_existing != Some(true)
                    && c.reads.iter().any(|r| {
                        let read = &ctx.op(*r).req;
                        read.table.same_as(&w.req.table) != Some(false)
                            && (w.key_source == KeySource::Caller || read.kind == OpKind::GetItem)
                    })
            })
            .collect();
        if exists_checks.is_empty() && (!ctx.creates || w.key_source != KeySource::Caller) {
            continue;
        }
        if w.same_item_feeds().next().is_some() {
            continue; // a read-modify-write, not a create
        }
        let op = ctx.op(w.op);
        let target = Target::of(&w.req);
        let key = target.key[0].0.clone();
        let checked = !exists_checks.is_empty();
        let mut evidence = vec![];
        let mut reads = vec![];
        for c in &exists_checks {
            for r in &c.reads {
                read_step(ctx.op(*r), &[], &mut evidence);
                reads.push(*r);
            }
            check_step(&c.guard, &mut evidence);
        }
        write_step(
            op,
            format!("created here with put_item under a caller-chosen `{key}`, replacing any existing item"),
            &mut evidence,
        );
        let message = format!(
            "put_item creates an item in {} under a key the caller chose, without `attribute_not_exists({key})`: a concurrent or repeated create overwrites the existing item",
            w.req.table.display()
        );
        let spec = PutSpec {
            target,
            condition: "attribute_not_exists(#pk)".into(),
            names: vec![("#pk".into(), key)],
            values: vec![],
            conflict: Conflict::Conflict,
        };
        let f = fix::fix(
            "Create only if no item has this key",
            "attribute_not_exists on the partition key makes the put fail instead of replacing an \
             existing item; answer it with 409 Conflict.",
            FixSafety::Unsafe,
            fix::render_put(
                &fix_fn_name(ctx, "create_once"),
                "Creates the item only if its key is not taken.",
                &spec,
            ),
        );
        let fixes = vec![ctx.with_edits(w, f, |site| {
            edit::put_condition_edits(site, &spec.condition, &spec.names, spec.conflict)
        })];
        let mut c = ctx.candidate(&RULE, w, &reads, message, evidence, fixes);
        if !checked {
            // No read shows the create-only intent: a note, not an alarm.
            c.severity = Some(crate::model::Severity::Info);
            c.confidence = crate::model::Confidence::Low;
        }
        out.push(c);
    }
}
