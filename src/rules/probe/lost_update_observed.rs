use super::{describe, ProbeCandidate, ProbeCtx};
use crate::fix;
use crate::model::{Confidence, FixSafety};
use crate::probe::plan::Mode;
use crate::rules::declare_rule;

declare_rule! {
    /// ## What it does
    /// Fires N concurrent changes at one endpoint (last bytes released together) and reads the
    /// state before and after: when fewer than N changes took effect — the counter moved by 7
    /// after 20 successful increments — updates were lost.
    ///
    /// ## Why is this bad?
    /// Every client was told its change succeeded. The handler reads, computes and writes
    /// back without a condition (see RC101/RC103): concurrent requests overwrite each other.
    ///
    /// ## Use instead
    /// An atomic update expression (`ADD`, `SET x = x + :d`) or a conditional write with a
    /// bounded retry / 409; then probe again: the change equals the successes.
    ///
    /// ## Fix safety
    /// Display-only: the finding carries no code fix; it points to `racecheck scan`, whose
    /// RC101/RC103 findings carry the fixes for the handler.
    pub static RULE = ("RC401", "lost-update-observed", Probe, Critical,
        "N concurrent changes, fewer than N took effect.");
}

pub fn check(ctx: &ProbeCtx, out: &mut Vec<ProbeCandidate>) {
    if ctx.mode != Mode::LostUpdate {
        return;
    }
    let mut lost_total = 0.0;
    let mut evidence = vec![];
    let mut success_total = 0;
    for r in &ctx.summary.rounds {
        let (Some(b), Some(a)) = (r.before, r.after) else {
            continue;
        };
        let expected = f64::from(r.successes) * ctx.delta_per_success;
        // In updates, whatever the sign of the change (a counter can count down).
        let lost = (expected - (a - b)) / ctx.delta_per_success;
        if lost > 1e-9 {
            lost_total += lost;
            evidence.push((
                r.round,
                format!(
                    "{}: {} update(s) lost",
                    describe(r, ctx.delta_per_success),
                    super::fmt(lost)
                ),
            ));
            success_total += r.successes;
        }
    }
    if evidence.is_empty() {
        return;
    }
    let message = format!(
        "lost updates observed: {} of {} successful concurrent changes took no effect in {} round(s)",
        super::fmt(lost_total),
        success_total,
        evidence.len()
    );
    let fixes = vec![fix::fix(
        "Make the change atomic or conditional",
        "Run `racecheck scan` on the handler: its RC101/RC103 finding carries the atomic update \
         or conditional write for this endpoint; then probe again.",
        FixSafety::DisplayOnly,
        "racecheck scan <the service crate> --rule lost-update --rule non-atomic-counter".into(),
    )];
    out.push(ProbeCandidate {
        rule: &RULE,
        confidence: Confidence::High,
        message,
        evidence,
        fixes,
    });
}
