use super::{count, describe, ProbeCandidate, ProbeCtx};
use crate::fix;
use crate::model::{Confidence, FixSafety};
use crate::probe::plan::Mode;
use crate::rules::declare_rule;

declare_rule! {
    /// ## What it does
    /// In `rate-limit` mode, fires synchronized bursts and reports when none drew a 429 and no
    /// answer carried rate-limit headers (`RateLimit*`, `Retry-After`).
    ///
    /// ## Why is this bad?
    /// Without a limit, one client can drive as many concurrent writes as it likes: the races
    /// the other rules find become easy to trigger, and retry storms go unchecked.
    ///
    /// ## Use instead
    /// A per-client limit in front of mutating routes (a tower layer, an API gateway) that
    /// answers 429 with `Retry-After`.
    ///
    /// ## Fix safety
    /// Display-only: the fix is guidance (a per-client limit answering 429 with `Retry-After`),
    /// not code to apply; a limit, once added, is a change clients see.
    pub static RULE = ("RC403", "no-rate-limit-observed", Probe, Low,
        "A burst drew no 429.");
}

pub fn check(ctx: &ProbeCtx, out: &mut Vec<ProbeCandidate>) {
    // Without answers there is nothing to see a 429 in.
    if ctx.mode != Mode::RateLimit || super::inconclusive(ctx).is_some() {
        return;
    }
    let limited = ctx
        .summary
        .rounds
        .iter()
        .any(|r| count(r, "429") > 0 || r.rate_limit_headers);
    if limited {
        return;
    }
    let sent: u32 = ctx.summary.rounds.iter().map(|r| r.sent).sum();
    out.push(ProbeCandidate {
        rule: &RULE,
        confidence: Confidence::High,
        message: format!("{sent} requests in {} synchronized burst(s) drew no 429 and no rate-limit headers", ctx.summary.rounds.len()),
        evidence: ctx.summary.rounds.iter().map(|r| (r.round, describe(r, 1.0))).collect(),
        fixes: vec![fix::fix(
            "Rate limit mutating routes",
            "Put a per-client limit in front of the route and answer 429 with Retry-After.",
            FixSafety::DisplayOnly,
            "// e.g. tower_governor::GovernorLayer on the mutating routes, answering 429 + Retry-After".into(),
        )],
    });
}
