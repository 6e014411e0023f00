use serde_json::json;

use super::{SpecCandidate, SpecCtx};
use crate::model::{Confidence, FixSafety};
use crate::rules::declare_rule;

declare_rule! {
    /// ## What it does
    /// Finds `PUT` operations whose request body is relative — a `delta`, an `increment`, an
    /// amount `by` which to change a value — rather than the new state.
    ///
    /// ## Why is this bad?
    /// `PUT` promises idempotency: clients, proxies and SDKs retry it freely. A relative `PUT`
    /// applied twice changes the value twice.
    ///
    /// ## Use instead
    /// A `POST` action with an `Idempotency-Key` (`POST /counters/{id}/increment`), or a `PUT`
    /// of the absolute new value with `If-Match`.
    ///
    /// ## Fix safety
    /// Unsafe: the fix replaces the `PUT` with a `POST` action on `.../increment` that requires
    /// an `Idempotency-Key`: clients must change the method, path and headers they send.
    pub static RULE = ("RC205", "non-idempotent-put", Contract, High,
        "A PUT whose body is relative (delta, increment, amount to add).");
}

const RELATIVE: &[&str] = &[
    "delta",
    "increment",
    "incr",
    "by",
    "decrement",
    "add",
    "subtract",
    "inc",
    "step",
    "amount_to_add",
    "change",
];

pub fn check(ctx: &SpecCtx, out: &mut Vec<SpecCandidate>) {
    for op in &ctx.model.ops {
        if op.method != "put" {
            continue;
        }
        let Some(body) = &op.body else { continue };
        let relative: Vec<&String> = body
            .props
            .iter()
            .filter(|p| {
                RELATIVE.iter().any(|r| {
                    p.as_str() == *r
                        || p.starts_with(&format!("{r}_"))
                        || p.ends_with(&format!("_{r}"))
                })
            })
            .collect();
        if relative.is_empty() && !op.words.contains("increment") {
            continue;
        }
        let fields = relative
            .iter()
            .map(|f| format!("`{f}`"))
            .collect::<Vec<_>>()
            .join(", ");
        let message = format!(
            "{} is a PUT with a relative body ({}): a retried PUT applies the change twice",
            op.label(),
            if fields.is_empty() {
                "it increments".to_string()
            } else {
                fields
            }
        );
        let action = format!("{}/increment", op.path.trim_end_matches('/'));
        let fix = ctx.fix(
            op.doc,
            "Make it a POST action with an Idempotency-Key",
            format!("Replace the `put` on `{}` with a `post` on `{action}`:", op.path),
            FixSafety::Unsafe,
            json!({ action: { "post": {
                "parameters": [ctx.header_param("Idempotency-Key", true, "A unique key per logical change; a retry with the same key returns the first outcome.")],
                "responses": {"200": {"description": "The new value."}, "409": ctx.response("409", "Conflict: the key was used for a different change")},
            }}}),
        );
        out.push(ctx.at_op(
            &RULE,
            op,
            Confidence::High,
            message,
            vec!["PUT must be idempotent".into()],
            vec![fix],
        ));
    }
}
