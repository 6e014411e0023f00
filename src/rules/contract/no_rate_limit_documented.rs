use super::{obj, where_to_add, SpecCandidate, SpecCtx};
use crate::model::{Confidence, FixSafety};
use crate::rules::declare_rule;
use serde_json::json;

declare_rule! {
    /// ## What it does
    /// Finds mutating operations that document no `429 Too Many Requests` and no rate-limit
    /// headers (`RateLimit`, `RateLimit-Policy`, `X-RateLimit-*`, `Retry-After`).
    ///
    /// ## Why is this bad?
    /// Limits are the last defence against bursts that turn races into incidents (a retry
    /// storm, a limit overrun). Undocumented, clients do not back off.
    ///
    /// ## Use instead
    /// ```yaml
    ///     responses:
    ///       '429':
    ///         description: Too Many Requests
    ///         headers: {Retry-After: {schema: {type: integer}}}
    /// ```
    pub static RULE = ("RC207", "no-rate-limit-documented", Contract, Low,
        "A mutating operation with no 429 and no rate-limit headers.");
}

pub fn check(ctx: &SpecCtx, out: &mut Vec<SpecCandidate>) {
    for op in &ctx.model.ops {
        if !op.is_mutating() || op.has_response(&["429"]) {
            continue;
        }
        if op
            .response_headers()
            .any(|h| h.contains("ratelimit") || h.contains("rate-limit") || h == "retry-after")
        {
            continue;
        }
        let message = format!(
            "{} documents no rate limit (no 429, no rate-limit headers)",
            op.label()
        );
        let response = match ctx
            .model
            .components
            .responses
            .iter()
            .find(|(c, _)| c == "429")
        {
            Some((_, r)) => json!({"$ref": r}),
            None => {
                json!({"description": "Too Many Requests", "headers": {"Retry-After": {"description": "Seconds to wait before retrying.", "schema": {"type": "integer"}}}})
            }
        };
        let fix = ctx.fix(
            "Document 429 with Retry-After",
            where_to_add(op),
            FixSafety::Safe,
            obj(vec![("responses", obj(vec![("429", response)]))]),
        );
        out.push(ctx.at_op(
            &RULE,
            op,
            Confidence::Medium,
            message,
            vec!["no 429 response, no rate-limit headers".into()],
            vec![fix],
        ));
    }
}
