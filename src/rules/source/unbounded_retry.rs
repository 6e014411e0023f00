use super::{fix_fn_name, note_step, write_step, Candidate, FlowCtx};
use crate::fix;
use crate::model::FixSafety;
use crate::rules::declare_rule;

declare_rule! {
    /// ## What it does
    /// Finds an optimistic-concurrency retry loop (`loop`/`while` around a read and a
    /// conditional write) that has no attempt counter bounding it.
    ///
    /// ## Why is this bad?
    /// Under contention every retry can lose again. An unbounded loop turns a hot item into a
    /// request that never returns, holds a connection and burns read and write capacity, and
    /// many such loops together make the contention worse (a retry storm).
    ///
    /// ## Example
    /// ```rust,ignore
    /// loop {
    ///     let item = read(&client, &id).await?;
    ///     match conditional_write(&client, &id, &item).await {
    ///         Ok(_) => break,
    ///         Err(e) if is_conflict(&e) => continue, // forever
    ///         Err(e) => return Err(e.into()),
    ///     }
    /// }
    /// ```
    ///
    /// ## Use instead
    /// `for attempt in 0..MAX_ATTEMPTS` (3–5 is typical) with a short jittered backoff, and
    /// 409 Conflict when the attempts run out.
    ///
    /// ## Fix safety
    /// Unsafe: retries stop after a few attempts, and clients that used to wait out the
    /// contention get 409 Conflict after the last attempt.
    pub static RULE = ("RC108", "unbounded-retry", Source, Medium,
        "An optimistic-concurrency retry loop with no attempt bound.");
}

pub fn check(ctx: &FlowCtx, out: &mut Vec<Candidate>) {
    let mut seen = vec![];
    for w in ctx.writes {
        let op = ctx.op(w.op);
        let conditioned = w.has_condition() || w.in_transaction;
        if !conditioned {
            continue;
        }
        for l in op.loops.iter().filter(|l| !l.bounded) {
            // A retry loop reads again on every turn.
            let rereads = ctx
                .summary
                .ops
                .iter()
                .any(|r| r.req.kind.is_read() && r.loops.iter().any(|x| x.span == l.span));
            if !rereads || seen.contains(&l.span) {
                continue;
            }
            seen.push(l.span.clone());
            let mut evidence = vec![];
            note_step(
                &l.span,
                "retry loop with no attempt bound starts here".into(),
                &mut evidence,
            );
            write_step(
                op,
                format!("conditional {} retried here", op.req.kind.api_name()),
                &mut evidence,
            );
            let message = "this optimistic-concurrency retry loop has no attempt bound: under contention it can spin forever".to_string();
            let fixes = vec![fix::fix(
                "Bound the retries",
                "Retry a few times (3-5), then answer 409 Conflict. Clients that waited out the \
                 contention now get a 409 after the last attempt: a change they can see.",
                FixSafety::Unsafe,
                fix::render_bounded_retry(
                    &fix_fn_name(ctx, "with_bounded_retry"),
                    "Runs `attempt` until it succeeds, at most `max_attempts` times.",
                ),
            )];
            let mut c = ctx.candidate(&RULE, w, &[], message, evidence, fixes);
            c.at = l.span.clone();
            c.write = Some((l.span.clone(), None));
            out.push(c);
        }
    }
}
