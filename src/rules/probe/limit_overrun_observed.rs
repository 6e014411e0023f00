use super::{describe, ProbeCandidate, ProbeCtx};
use crate::fix;
use crate::model::{Confidence, FixSafety};
use crate::probe::plan::Mode;
use crate::rules::declare_rule;

declare_rule! {
    /// ## What it does
    /// Fires a synchronized burst at an endpoint that may succeed a limited number of times (a
    /// one-time coupon, the last item in stock, a per-user quota) and counts the successes, and
    /// the observed count when one is given: more than `expect.max_successes` is an overrun.
    ///
    /// ## Why is this bad?
    /// The limit is checked in the handler and the write does not re-check it (RC102): every
    /// request that reads before the first write passes the check.
    ///
    /// ## Use instead
    /// A conditional write (`attribute_not_exists(redeemed) OR redeemed = :false`,
    /// `stock > :zero`) answered with 409, then probe again: exactly the allowed number succeed.
    ///
    /// ## Fix safety
    /// Display-only: the finding carries no code fix; it points to `racecheck scan`, whose RC102
    /// finding carries the conditional update for the handler.
    pub static RULE = ("RC402", "limit-overrun-observed", Probe, Critical,
        "More requests succeeded than the limit allows.");
}

pub fn check(ctx: &ProbeCtx, out: &mut Vec<ProbeCandidate>) {
    if ctx.mode != Mode::LimitOverrun {
        return;
    }
    let max = ctx.max_successes;
    let mut evidence = vec![];
    let mut worst = 0i64;
    for r in &ctx.summary.rounds {
        // A falling observed value counts as no success, not as billions.
        let observed = match (r.before, r.after) {
            (Some(b), Some(a)) => (a - b).round().max(0.0) as i64,
            _ => 0,
        };
        let succeeded = i64::from(r.successes).max(observed);
        if succeeded > i64::from(max) {
            worst = worst.max(succeeded);
            evidence.push((
                r.round,
                format!("{}: {succeeded} succeeded, limit {max}", describe(r, 1.0)),
            ));
        }
    }
    if evidence.is_empty() {
        return;
    }
    let message = format!(
        "limit overrun observed: up to {worst} requests succeeded in one burst where {max} may ({} round(s))",
        evidence.len()
    );
    let fixes = vec![fix::fix(
        "Enforce the limit in the write's condition",
        "Run `racecheck scan` on the handler: its RC102 finding carries the conditional update \
         for this endpoint; answer the losers with 409.",
        FixSafety::DisplayOnly,
        "racecheck scan <the service crate> --rule check-then-act".into(),
    )];
    out.push(ProbeCandidate {
        rule: &RULE,
        confidence: Confidence::High,
        message,
        evidence,
        fixes,
    });
}
