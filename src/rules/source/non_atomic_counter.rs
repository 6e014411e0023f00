use super::{compute_step, fix_fn_name, read_step, write_step, Candidate, FlowCtx};
use crate::fix::{self, edit, rewrite};
use crate::model::FixSafety;
use crate::rules::declare_rule;
use crate::source::expr::is_version_attr;
use crate::source::facts::OpKind;

declare_rule! {
    /// ## What it does
    /// Finds a number read from an item, changed in Rust (`count + 1`, `balance - amount`)
    /// and written back with `SET x = :v` or a `put_item`, without a condition.
    ///
    /// ## Why is this bad?
    /// Twenty concurrent increments read the same value and all write `value + 1`: the
    /// counter moves by one instead of twenty. Stock, quotas, balances and view counts drift.
    ///
    /// ## Example
    /// ```rust,ignore
    /// let current: i64 = item["count"].as_n().unwrap().parse().unwrap();
    /// client.update_item().table_name("counters").key("id", key)
    ///     .update_expression("SET #c = :v")
    ///     .expression_attribute_names("#c", "count")
    ///     .expression_attribute_values(":v", AttributeValue::N((current + 1).to_string()))
    ///     .send().await?;
    /// ```
    ///
    /// ## Use instead
    /// Let DynamoDB do the arithmetic: `ADD #c :delta`, or
    /// `SET #c = if_not_exists(#c, :zero) + :delta`; with a limit, add a condition such as
    /// `#c < :max`. Use `ReturnValue::UpdatedNew` to get the new value back.
    ///
    /// ## Fix safety
    /// Safe: the result is what the code meant when requests do not overlap. Unsafe when the
    /// write keeps a condition (a failed one now answers 409), and display-only when the
    /// fix cannot express a decision of the code or the item's key (it says which). Edits
    /// rewrite the write in place (a put of the item read becomes an update of its key);
    /// `racecheck fix --apply` applies the safe ones.
    pub static RULE = ("RC103", "non-atomic-counter", Source, High,
        "A number is read, changed in Rust and written back; `SET x = x + :d` / `ADD` is atomic.");
}

pub fn check(ctx: &FlowCtx, out: &mut Vec<Candidate>) {
    for w in ctx.writes {
        if w.rechecks {
            continue;
        }
        // A version bumped in Rust is a lost update of the whole item (RC101), not a counter.
        let feeds: Vec<_> = w
            .same_item_feeds()
            .filter(|f| f.arith && !f.source_attrs.iter().all(|a| is_version_attr(a)))
            .collect();
        let Some(first) = feeds.first() else { continue };
        // The whole item read, changed beyond the number (an element pushed, a field set) and
        // put back: more than the number's concurrent change is lost; that is a lost update
        // (RC101), fixed by a version, not by `ADD`.
        if w.kind.plain() == OpKind::PutItem && w.puts_back_edited_item() {
            continue;
        }
        let op = ctx.op(w.op);
        let mut evidence = vec![];
        let attrs: Vec<String> = first.source_attrs.iter().cloned().collect();
        read_step(ctx.op(first.read), &attrs, &mut evidence);
        if let Some(c) = &first.computed_at {
            compute_step(c, &mut evidence);
        }
        let target = match first.written.first().map(String::as_str) {
            // A whole struct written back: name the fields that were changed.
            Some("*") | None if !first.source_attrs.is_empty() => first
                .source_attrs
                .iter()
                .cloned()
                .collect::<Vec<_>>()
                .join("`, `"),
            Some(a) => a.to_string(),
            None => "the item".to_string(),
        };
        write_step(
            op,
            format!(
                "`{target}` written back here by {} without a condition",
                w.kind.api_name()
            ),
            &mut evidence,
        );
        let message = format!(
            "`{target}` is read from {}, changed in Rust and written back: concurrent changes overwrite each other; use an atomic update expression",
            ctx.op(first.read).req.table.display()
        );
        let fixes = match rewrite::atomic_update(w, &|s| ctx.text(s)) {
            Some(spec) => vec![ctx.with_edits(w, fix::with_gaps(fix::fix(
                "Let DynamoDB do the arithmetic",
                "`SET x = x + :delta` (or `ADD`) is applied atomically by DynamoDB, so concurrent \
                 changes add up instead of overwriting each other.",
                if spec.condition.is_some() { FixSafety::Unsafe } else { FixSafety::Safe },
                fix::render_update(
                    &fix_fn_name(ctx, "atomic"),
                    "Changes the number in one atomic update expression.",
                    &spec,
                ),
            ), &spec.unchecked), |site| edit::update_edits(site, &spec))],
            None => vec![super::lost_update::version_put(ctx, w)],
        };
        let reads = [first.read];
        out.push(ctx.candidate(&RULE, w, &reads, message, evidence, fixes));
    }
}
