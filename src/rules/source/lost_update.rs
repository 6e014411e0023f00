use super::{check_step, compute_step, fix_fn_name, read_step, write_step, Candidate, FlowCtx};
use crate::fix::{self, edit, rewrite, Arg, Conflict, PutSpec, Target, Ty, UpdateSpec};
use crate::model::{Fix, FixSafety};
use crate::rules::declare_rule;
use crate::source::facts::OpKind;
use crate::source::writes::WriteFacts;

declare_rule! {
    /// ## What it does
    /// Finds data read from a DynamoDB item that flows into a write of the same item that
    /// carries no condition and is not part of a transaction.
    ///
    /// ## Why is this bad?
    /// Two requests that read the item at the same time each write back their own version:
    /// the second write silently replaces the first. Whatever the first request changed is
    /// lost, and both clients were told it succeeded.
    ///
    /// ## Example
    /// ```rust,ignore
    /// let out = client.get_item().table_name("profiles").key("id", id.clone()).send().await?;
    /// let mut profile: Profile = serde_dynamo::from_item(out.item.unwrap_or_default())?;
    /// profile.display_name = body.display_name;
    /// client.put_item().table_name("profiles")
    ///     .set_item(Some(serde_dynamo::to_item(&profile)?)).send().await?; // overwrites
    /// ```
    ///
    /// ## Use instead
    /// Write only if the item is still what was read: a `version` attribute checked with
    /// `condition_expression("#version = :expected")` and incremented on every write, or
    /// `#attr = :previous` for the attributes that were read. Answer a failed condition with
    /// 409 (or 412 when the client sent `If-Match`), or read again and retry a bounded number
    /// of times.
    ///
    /// ## Known problems
    /// Whether two keys name the same item is judged from where their values come from; a
    /// write keyed by something computed elsewhere is assumed to be the item read.
    ///
    /// ## Fix safety
    /// Unsafe: the write gets a condition (the values read, or a `version`), so a request that
    /// loses the race is answered 409 Conflict or 412 Precondition Failed instead of overwriting.
    /// Display-only when the condition cannot express a decision of the code, the write's own
    /// run-time condition, or the item's key. Edits only where every value the condition
    /// compares is in the handler's scope; a version check has none (the version read must be
    /// carried to the write by hand).
    pub static RULE = ("RC101", "lost-update", Source, High,
        "Data read from an item flows into an unconditional write of that item.");
}

pub fn check(ctx: &FlowCtx, out: &mut Vec<Candidate>) {
    for w in ctx.writes {
        if w.rechecks || w.kind == OpKind::BatchWriteItem {
            continue;
        }
        let feeds: Vec<_> = w.same_item_feeds().collect();
        if feeds.is_empty() {
            continue;
        }
        let op = ctx.op(w.op);
        let mut evidence = vec![];
        let mut written = vec![];
        for f in &feeds {
            let attrs: Vec<String> = f.source_attrs.iter().cloned().collect();
            read_step(ctx.op(f.read), &attrs, &mut evidence);
            if let Some(c) = &f.computed_at {
                compute_step(c, &mut evidence);
            }
            written.extend(f.written.iter().cloned());
        }
        for ch in &w.checks {
            check_step(&ch.guard, &mut evidence);
        }
        written.dedup();
        let what = if written.iter().any(|a| a == "*") {
            "the item".to_string()
        } else {
            written
                .iter()
                .map(|a| format!("`{a}`"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        write_step(
            op,
            format!(
                "{what} written back here by {} without a condition",
                w.kind.api_name()
            ),
            &mut evidence,
        );
        let message = format!(
            "{what} read from {} is written back by an unconditional {}: a concurrent request's change to the item is lost",
            op.req.table.display(),
            w.kind.api_name()
        );
        let reads: Vec<usize> = feeds.iter().map(|f| f.read).collect();
        out.push(ctx.candidate(&RULE, w, &reads, message, evidence, fixes(ctx, w)));
    }
}

fn fixes(ctx: &FlowCtx, w: &WriteFacts) -> Vec<Fix> {
    // An item changed beyond its numbers and put back whole: an update of the numbers alone
    // would drop the other changes, so the whole item is versioned instead.
    let edited_whole = w.puts_back_edited_item();
    if let Some(spec) = rewrite::atomic_update(w, &|s| ctx.text(s)).filter(|_| !edited_whole) {
        let name = fix_fn_name(ctx, "if_unchanged");
        let f = fix::with_gaps(fix::fix(
            "Write only if the item still holds what was read",
            "The condition makes DynamoDB reject the write when another request changed the item \
             since it was read; answer 409 (or re-read and retry a bounded number of times).",
            FixSafety::Unsafe,
            fix::render_update(
                &name,
                "Writes the change only if the item is unchanged since it was read.",
                &spec,
            ),
        ), &spec.unchecked);
        return vec![ctx.with_edits(w, f, |site| edit::update_edits(site, &spec))];
    }
    vec![version_put(ctx, w)]
}

/// A whole item written back: guard it with a version attribute.
pub fn version_put(ctx: &FlowCtx, w: &WriteFacts) -> Fix {
    // The write's own condition stays beside the version check.
    let mut kept = UpdateSpec::new(Target::of_write(w));
    rewrite::keep_condition(&mut kept, &w.req);
    let version = "attribute_not_exists(#version) OR #version = :expected_version";
    let mut names = vec![("#version".to_string(), "version".to_string())];
    names.extend(kept.names);
    let mut values = vec![(
        ":expected_version".to_string(),
        Arg::Param("expected_version".into(), Ty::N),
    )];
    values.extend(kept.values);
    let spec = PutSpec {
        target: kept.target,
        condition: match kept.condition {
            Some(c) => format!("({c}) AND ({version})"),
            None => version.into(),
        },
        names,
        values,
        conflict: Conflict::PreconditionFailed,
    };
    let name = fix_fn_name(ctx, "with_version_check");
    let f = fix::fix(
        "Version the item and write it only if the version is unchanged",
        "Store a `version` number on the item; write the item with `version` set to the version \
         read plus one, on condition that the stored version is still the one read. A failed \
         condition is answered with 412 Precondition Failed (or 409).",
        FixSafety::Unsafe,
        fix::render_put(
            &name,
            "Puts `item` (whose `version` must be `expected_version + 1`) only if the stored\nversion is still `expected_version`.",
            &spec,
        ),
    );
    let f = fix::without_edits(
        f,
        "the version read has to be carried to the write, which only the handler can do",
    );
    fix::with_gaps(f, &kept.unchecked)
}
