use super::{Candidate, FlowCtx};
use crate::fix;
use crate::model::{Confidence, EvidenceStep, FixSafety, StepKind};
use crate::rules::declare_rule;

declare_rule! {
    /// ## What it does
    /// Finds shared in-process state (a `Mutex`, `RwLock` or atomic in the app state) read
    /// under one lock acquisition (or an atomic `load`) and written under another (or a
    /// `store`).
    ///
    /// ## Why is this bad?
    /// The lock is released between the read and the write, so concurrent requests read the
    /// same value and the last write wins: counters lose increments, rate limiters let bursts
    /// through, caches go stale.
    ///
    /// ## Example
    /// ```rust,ignore
    /// let current = *state.hits.lock().unwrap();
    /// *state.hits.lock().unwrap() = current + 1;
    /// ```
    ///
    /// ## Use instead
    /// Hold one guard for the read and the write (`let mut g = state.hits.lock()?; *g += 1;`),
    /// or use the atomic's read-modify-write (`fetch_add`, `fetch_update`).
    ///
    /// ## Fix safety
    /// Display-only: the fix is a template (one lock guard, or `fetch_add`); the code between the
    /// read and the write must be moved into the one critical section by hand.
    pub static RULE = ("RC109", "in-memory-rmw", Source, Medium,
        "Shared in-process state read and written under separate lock acquisitions, or an atomic `load` then `store`.");
}

pub fn check(ctx: &FlowCtx, out: &mut Vec<Candidate>) {
    for m in &ctx.summary.mem {
        let (how_read, how_write) = if m.atomic {
            ("loaded", "stored")
        } else {
            ("read under one lock acquisition", "written under another")
        };
        let evidence = vec![
            EvidenceStep {
                kind: StepKind::Read,
                file: m.read.file.to_string(),
                line: m.read.line,
                column: m.read.column,
                note: format!("`{}` {how_read} here", m.receiver),
            },
            EvidenceStep {
                kind: StepKind::Write,
                file: m.write.file.to_string(),
                line: m.write.line,
                column: m.write.column,
                note: format!("{how_write} here, after the lock was released"),
            },
        ];
        let message = format!(
            "`{}` is {how_read} and {how_write}: concurrent requests overwrite each other's changes",
            m.receiver
        );
        let fixes = vec![fix::fix(
            if m.atomic {
                "Use one atomic read-modify-write"
            } else {
                "Hold one lock for the read and the write"
            },
            "The value must not change between the read and the write. A template: move the \
             code between the read and the write into the one critical section by hand.",
            FixSafety::DisplayOnly,
            fix::render_locked_update(&super::fix_fn_name(ctx, "locked"), &m.receiver, m.atomic),
        )];
        out.push(Candidate {
            rule: &RULE,
            confidence: Confidence::High,
            message,
            at: m.write.clone(),
            site: m.write.clone(),
            evidence,
            fixes,
            write: Some((m.write.clone(), None)),
            reads: vec![m.read.clone()],
            depth: 0,
            severity: None,
            merged: 0,
        });
    }
}
