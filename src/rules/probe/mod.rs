//! Probe rules RC401–RC404: they read the rounds a probe observed.

use std::collections::BTreeMap;

use crate::model::{Confidence, Finding, Fix, ProbeSummary};
use crate::probe::plan::Mode;
use crate::rules::RuleMeta;

pub mod error_under_contention;
pub mod limit_overrun_observed;
pub mod lost_update_observed;
pub mod no_rate_limit_observed;

pub static RULES: &[&RuleMeta] = &[
    &lost_update_observed::RULE,
    &limit_overrun_observed::RULE,
    &no_rate_limit_observed::RULE,
    &error_under_contention::RULE,
];

pub struct ProbeCtx<'a> {
    pub summary: &'a ProbeSummary,
    pub mode: Mode,
    pub delta_per_success: f64,
    pub max_successes: u32,
}

pub struct ProbeCandidate {
    pub rule: &'static RuleMeta,
    pub confidence: Confidence,
    pub message: String,
    /// (round, what it showed).
    pub evidence: Vec<(u32, String)>,
    pub fixes: Vec<Fix>,
}

pub fn run(ctx: &ProbeCtx) -> Vec<ProbeCandidate> {
    let mut out = vec![];
    lost_update_observed::check(ctx, &mut out);
    limit_overrun_observed::check(ctx, &mut out);
    no_rate_limit_observed::check(ctx, &mut out);
    error_under_contention::check(ctx, &mut out);
    out
}

pub fn count(r: &crate::model::ProbeRound, code: &str) -> u32 {
    r.statuses.get(code).copied().unwrap_or(0)
}

fn fmt(n: f64) -> String {
    if n.fract() == 0.0 {
        format!("{}", n as i64)
    } else {
        format!("{n}")
    }
}

/// One round in a sentence: what was sent, what came back, what changed.
pub fn describe(r: &crate::model::ProbeRound, delta: f64) -> String {
    let codes: Vec<String> = r
        .statuses
        .iter()
        .map(|(k, v)| format!("{v} x {k}"))
        .collect();
    let mut s = format!("round {}: {} sent, {}", r.round, r.sent, codes.join(", "));
    if let (Some(b), Some(a)) = (r.before, r.after) {
        s.push_str(&format!(
            "; observed {} -> {} (change {}, expected {} for {} successes)",
            fmt(b),
            fmt(a),
            fmt(a - b),
            fmt(f64::from(r.successes) * delta),
            r.successes
        ));
    }
    s.push_str(&format!("; release spread {} us", r.release_spread_us));
    s
}

/// Why the rounds cannot support a verdict, when they cannot: too few requests got an HTTP
/// answer (the target hung, closed, or spoke something else), or none succeeded, so there is
/// nothing to compare the observed change or the limit with.
pub fn inconclusive(ctx: &ProbeCtx) -> Option<String> {
    let rounds = &ctx.summary.rounds;
    if rounds.is_empty() {
        return Some("no round completed".into());
    }
    let sent: u32 = rounds.iter().map(|r| r.sent).sum();
    let answered: u32 = rounds
        .iter()
        .map(|r| {
            r.statuses
                .iter()
                .filter(|(k, _)| *k != "error")
                .map(|(_, n)| n)
                .sum::<u32>()
        })
        .sum();
    if u64::from(answered) * 2 < u64::from(sent) {
        let why = rounds
            .iter()
            .find_map(|r| r.errors.first())
            .map(|e| format!(" (first error: {e})"))
            .unwrap_or_default();
        return Some(format!(
            "only {answered} of {sent} requests got an HTTP answer{why}"
        ));
    }
    let successes: u32 = rounds.iter().map(|r| r.successes).sum();
    if ctx.mode != Mode::RateLimit && successes == 0 {
        let mut codes: BTreeMap<&str, u32> = BTreeMap::new();
        for r in rounds {
            for (k, n) in &r.statuses {
                *codes.entry(k.as_str()).or_default() += n;
            }
        }
        let codes: Vec<String> = codes.iter().map(|(k, n)| format!("{n} x {k}")).collect();
        return Some(format!(
            "none of the {sent} requests succeeded ({}); a redirect, an error or a refusal proves nothing about the race",
            codes.join(", ")
        ));
    }
    None
}

/// What the probe saw, in one sentence, whatever it found.
pub fn verdict(ctx: &ProbeCtx, findings: &[Finding]) -> String {
    if let Some(f) = findings.first() {
        return f.message.clone();
    }
    if let Some(why) = inconclusive(ctx) {
        return format!("not analysed: {why}");
    }
    let rounds = &ctx.summary.rounds;
    let sent: u32 = rounds.iter().map(|r| r.sent).sum();
    let conflicts: u32 = rounds
        .iter()
        .map(|r| count(r, "409") + count(r, "412"))
        .sum();
    let limited: u32 = rounds.iter().map(|r| count(r, "429")).sum();
    match ctx.mode {
        Mode::RateLimit => {
            format!("{limited} of {sent} requests got 429: the burst was rate limited")
        }
        _ if conflicts > 0 => format!(
            "{conflicts} of {sent} got 409/412: conflicts are detected, and nothing was lost"
        ),
        _ => format!("all {sent} requests took effect: no update was lost"),
    }
}
