use super::{obj, some_ops, where_to_add, SpecCandidate, SpecCtx};
use crate::model::{Confidence, FixSafety};
use crate::rules::declare_rule;
use crate::spec::model::Op;
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
    ///
    /// When no operation of the document documents a limit, that is one policy missing, not
    /// one gap per operation: one finding at `paths` lists the operations.
    ///
    /// ## Fix safety
    /// Safe: documenting a response changes no behaviour.
    pub static RULE = ("RC207", "no-rate-limit-documented", Contract, Low,
        "A mutating operation with no 429 and no rate-limit headers.");
}

fn documents_limit(op: &Op) -> bool {
    op.has_response(&["429"])
        || op
            .response_headers()
            .any(|h| h.contains("ratelimit") || h.contains("rate-limit") || h == "retry-after")
}

pub fn check(ctx: &SpecCtx, out: &mut Vec<SpecCandidate>) {
    let missing: Vec<&Op> = ctx
        .model
        .ops
        .iter()
        .filter(|op| op.is_mutating() && !documents_limit(op))
        .collect();
    let anywhere = ctx.model.ops.iter().any(documents_limit);
    if !anywhere && missing.len() > 1 {
        let message = format!(
            "no operation documents a rate limit (no 429, no rate-limit headers): {} mutating operations, {}",
            missing.len(),
            some_ops(&missing)
        );
        let fix = ctx.fix(
            0,
            "Document 429 with Retry-After once, and refer to it from each operation",
            "Add a shared response to `components.responses`, then `'429': {$ref: '#/components/responses/TooManyRequests'}` under each listed operation's `responses`:".into(),
            FixSafety::Safe,
            obj(vec![(
                "components",
                obj(vec![(
                    "responses",
                    obj(vec![(
                        "TooManyRequests",
                        json!({"description": "Too Many Requests", "headers": {"Retry-After": {"description": "Seconds to wait before retrying.", "schema": {"type": "integer"}}}}),
                    )]),
                )]),
            )]),
        );
        out.push(ctx.at_document(&RULE, &missing, Confidence::Medium, message, vec![fix]));
        return;
    }
    for op in missing {
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
            op.doc,
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
