use super::{describe, ProbeCandidate, ProbeCtx};
use crate::fix;
use crate::model::{Confidence, FixSafety};
use crate::rules::declare_rule;

declare_rule! {
    /// ## What it does
    /// Reports 5xx answers to a synchronized burst, in any probe mode.
    ///
    /// ## Why is this bad?
    /// Contention is normal: losing a race should be a 409/412 (or a bounded retry), being
    /// throttled a 429. A 500 means the failure is unhandled (often a `ConditionalCheckFailed`
    /// or a cancelled transaction turned into an internal error, see RC105), so clients retry
    /// blindly and alerts fire.
    ///
    /// ## Use instead
    /// Map `ConditionalCheckFailedException` to 409/412 and throttling to 429 with
    /// `Retry-After`.
    ///
    /// ## Fix safety
    /// Display-only: the finding carries no code fix; it points to `racecheck scan`, whose
    /// RC105 finding maps `ConditionalCheckFailed` to 409.
    pub static RULE = ("RC404", "error-under-contention", Probe, High,
        "Contention produced 5xx instead of 409/412/429.");
}

pub fn check(ctx: &ProbeCtx, out: &mut Vec<ProbeCandidate>) {
    let mut evidence = vec![];
    let mut total = 0;
    for r in &ctx.summary.rounds {
        let errors: u32 = r
            .statuses
            .iter()
            .filter(|(k, _)| k.starts_with('5'))
            .map(|(_, v)| *v)
            .sum();
        if errors > 0 {
            total += errors;
            evidence.push((r.round, describe(r, ctx.delta_per_success)));
        }
    }
    if total == 0 {
        return;
    }
    out.push(ProbeCandidate {
        rule: &RULE,
        confidence: Confidence::High,
        message: format!("{total} request(s) got a 5xx under contention instead of 409/412/429"),
        evidence,
        fixes: vec![fix::fix(
            "Answer contention with 409/412/429",
            "Run `racecheck scan` on the handler: its RC105 finding maps ConditionalCheckFailed \
             to 409.",
            FixSafety::DisplayOnly,
            "racecheck scan <the service crate> --rule unhandled-condition-failure".into(),
        )],
    });
}
