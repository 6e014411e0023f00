use super::{has_precondition, obj, where_to_add, SpecCandidate, SpecCtx, CONFLICT_CODES};
use crate::model::{Confidence, FixSafety};
use crate::rules::declare_rule;

declare_rule! {
    /// ## What it does
    /// Finds writes that can fail because of what another request did — operations that take a
    /// precondition (`If-Match`, a version field), and actions on one item (`POST
    /// /coupons/{code}/redeem`, `POST /accounts/{id}/withdraw`) — that document no `409
    /// Conflict`, `412 Precondition Failed` or `428 Precondition Required`.
    ///
    /// ## Why is this bad?
    /// The server will answer a lost race somehow; undocumented, clients and generated SDKs
    /// treat it as an unexpected error instead of "re-read and retry" or "already done".
    ///
    /// ## Example
    /// ```yaml
    /// /coupons/{code}/redeem:
    ///   post:
    ///     responses: {'200': {description: redeemed}}
    /// ```
    ///
    /// ## Use instead
    /// ```yaml
    ///     responses:
    ///       '409': {description: already redeemed, or changed concurrently}
    /// ```
    ///
    /// ## Fix safety
    /// Safe: documenting a 409 or 412 response changes no behaviour; clients can then tell a lost
    /// race from a failure.
    pub static RULE = ("RC202", "missing-conflict-response", Contract, Medium,
        "A write that can fail on a precondition but documents no 409/412/428.");
}

pub fn check(ctx: &SpecCtx, out: &mut Vec<SpecCandidate>) {
    for op in &ctx.model.ops {
        if !op.is_mutating() || op.has_response(CONFLICT_CODES) {
            continue;
        }
        let precondition = has_precondition(op) || op.header("if-match").is_some();
        let last_literal = op
            .path
            .rsplit('/')
            .next()
            .is_some_and(|s| !s.starts_with('{') && !s.is_empty());
        let item_action = op.method == "post" && op.is_item_level() && last_literal;
        if !precondition && !item_action {
            continue;
        }
        let code = if precondition { "412" } else { "409" };
        let message = format!(
            "{} can fail because of a concurrent change but documents no 409/412/428",
            op.label()
        );
        let why = if precondition {
            "it takes a precondition"
        } else {
            "it is an action on one item"
        };
        let fix = ctx.fix(
            op.doc,
            &format!("Document {code}"),
            format!("{} clients can then tell a lost race from a failure.", where_to_add(op)),
            FixSafety::Safe,
            obj(vec![("responses", obj(vec![(code, ctx.response(code, if code == "412" { "Precondition Failed: the item changed since it was read" } else { "Conflict: the item's state does not allow this (changed concurrently or already done)" }))]))]),
        );
        out.push(ctx.at_op(
            &RULE,
            op,
            Confidence::Medium,
            message,
            vec![format!("{why}; no 409, 412 or 428 response")],
            vec![fix],
        ));
    }
}
