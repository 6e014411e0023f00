use serde_json::json;

use super::{has_idempotency_key, obj, where_to_add, SpecCandidate, SpecCtx};
use crate::model::{Confidence, FixSafety};
use crate::rules::declare_rule;

declare_rule! {
    /// ## What it does
    /// Finds `POST` operations that create or change something (a create on a collection, a
    /// charge, a transfer, a redemption, an order) with no idempotency-key header.
    ///
    /// ## Why is this bad?
    /// Clients retry on timeouts. Without a key the server cannot tell a retry from a new
    /// request: the payment is charged twice, the order placed twice, the coupon used twice.
    ///
    /// ## Known problems
    /// `POST`s that only read (search, query, validate, preview, login, token) are skipped by
    /// their path and operation names.
    ///
    /// ## Use instead
    /// ```yaml
    ///     parameters:
    ///       - {name: Idempotency-Key, in: header, required: true, schema: {type: string}}
    /// ```
    /// and store the key with the result (a conditional put on the key) to replay it.
    ///
    /// On an operation that moves money or stock (charge, pay, transfer, withdraw, refund,
    /// order, redeem...) the finding is `high`: a retry there is a double charge, and it ranks
    /// with the races, above documentation gaps.
    ///
    /// ## Fix safety
    /// Unsafe: the fix adds a required `Idempotency-Key` header: clients that send none no longer
    /// follow the contract (the service must then store and replay keys).
    pub static RULE = ("RC204", "missing-idempotency-key", Contract, Medium,
        "A non-idempotent POST (create, charge, transfer, redeem) with no `Idempotency-Key` header.");
}

const READS: &[&str] = &[
    "search",
    "query",
    "find",
    "filter",
    "lookup",
    "validate",
    "preview",
    "estimate",
    "login",
    "logout",
    "token",
    "refresh",
    "graphql",
    "batch-get",
    "verify",
];
const MONEY: &[&str] = &[
    "charge", "pay", "transfer", "redeem", "order", "checkout", "withdraw", "deposit", "purchase",
    "refund", "book", "reserve",
];

pub fn check(ctx: &SpecCtx, out: &mut Vec<SpecCandidate>) {
    for op in &ctx.model.ops {
        if op.method != "post" || has_idempotency_key(op) {
            continue;
        }
        let text = format!("{} {}", op.path.to_ascii_lowercase(), op.words);
        if READS.iter().any(|w| text.contains(w)) {
            continue;
        }
        let money = MONEY.iter().any(|w| text.contains(w));
        let confidence = if money {
            Confidence::High
        } else {
            Confidence::Medium
        };
        let message = format!(
            "{} is not idempotent and takes no `Idempotency-Key`: a client's retry repeats it",
            op.label()
        );
        let fix = ctx.fix(
            op.doc,
            "Accept an Idempotency-Key",
            format!(
                "{} store the key with the outcome (a put conditioned on `attribute_not_exists`) and replay the outcome for a repeated key; answer 409 (or 422) when a key is reused with a different body.",
                where_to_add(op)
            ),
            FixSafety::Unsafe,
            obj(vec![(
                "parameters",
                json!([ctx.header_param("Idempotency-Key", true, "A unique key per logical request; a retry with the same key returns the first outcome.")]),
            )]),
        );
        let mut c = ctx.at_op(
            &RULE,
            op,
            confidence,
            message,
            vec!["no idempotency-key header parameter".into()],
            vec![fix],
        );
        if money {
            // A retried charge or transfer moves the money twice: that ranks with the races.
            c.severity = Some(crate::model::Severity::High);
        }
        out.push(c);
    }
}
