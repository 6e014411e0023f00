use super::{check_step, read_step, write_step, Candidate, FlowCtx};
use crate::rules::declare_rule;
use crate::source::facts::{GuardKind, OpKind};

declare_rule! {
    /// ## What it does
    /// Finds `batch_write_item` used to write back data that was read (or decided on) in
    /// the same flow.
    ///
    /// ## Why is this bad?
    /// A batch write cannot carry conditions: every item is replaced regardless of what
    /// happened since the read, so concurrent changes to any of the items are lost, and
    /// unprocessed items make partial writes easy to miss.
    ///
    /// ## Example
    /// ```rust,ignore
    /// let items = client.query()/* ... */.send().await?.items.unwrap_or_default();
    /// let requests = items.into_iter().map(|mut i| { /* change i */ put_request(i) }).collect();
    /// client.batch_write_item().request_items("carts", requests).send().await?;
    /// ```
    ///
    /// ## Use instead
    /// Per-item conditional writes (a version check on each), or `transact_write_items` with
    /// a condition per item when they must all apply together (up to 100 items).
    ///
    /// ## Fix safety
    /// Unsafe: the batch becomes one put per item conditioned on its `version`, so a stale item
    /// is answered 412 Precondition Failed (or 409) instead of being replaced. Display-only when
    /// the item's key is unknown or the write's own condition is built at run time.
    pub static RULE = ("RC107", "unconditioned-batch-write", Source, Medium,
        "`batch_write_item` used in a read-modify-write (batches cannot carry conditions).");
}

pub fn check(ctx: &FlowCtx, out: &mut Vec<Candidate>) {
    for w in ctx.writes {
        // Whether something was found decides nothing about the batch's items' data.
        let checks: Vec<_> = w
            .checks
            .iter()
            .filter(|c| c.guard.kind == GuardKind::Value)
            .collect();
        if w.kind != OpKind::BatchWriteItem || (w.feeds.is_empty() && checks.is_empty()) {
            continue;
        }
        let op = ctx.op(w.op);
        let mut evidence = vec![];
        let mut reads: Vec<usize> = w.feeds.iter().map(|f| f.read).collect();
        reads.extend(checks.iter().flat_map(|c| c.reads.iter().copied()));
        reads.sort_unstable();
        reads.dedup();
        for r in &reads {
            read_step(ctx.op(*r), &[], &mut evidence);
        }
        for c in &checks {
            check_step(&c.guard, &mut evidence);
        }
        write_step(
            op,
            "written back here by batch_write_item, which cannot carry a condition".into(),
            &mut evidence,
        );
        let message = if w.feeds.is_empty() {
            "a decision on data read in this flow guards a batch_write_item, which cannot carry a condition that re-checks it: a concurrent change can void the decision before the batch lands"
        } else {
            "data read in this flow is written back with batch_write_item, which cannot carry conditions: concurrent changes to those items are lost"
        }
        .to_string();
        let mut fix = super::lost_update::version_put(ctx, w);
        fix.title = "Write each item with a version condition".into();
        fix.explanation = format!(
            "Replace the batch with one conditional put per item (or transact_write_items for up \
             to 100 items that must apply together). {}",
            fix.explanation
        );
        let mut c = ctx.candidate(&RULE, w, &reads, message, evidence, vec![fix]);
        if w.req.other.deletes && !w.req.other.puts {
            // Deleting in a batch what a read found is cleanup: repeating it does no harm.
            c.severity = Some(crate::model::Severity::Info);
        }
        out.push(c);
    }
}
