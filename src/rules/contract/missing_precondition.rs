use serde_json::json;

use super::{has_precondition, obj, where_to_add, SpecCandidate, SpecCtx};
use crate::model::{Confidence, FixSafety};
use crate::rules::declare_rule;

declare_rule! {
    /// ## What it does
    /// Finds item-level `PUT`, `PATCH` and `DELETE` operations that neither require a
    /// precondition (`If-Match`, `If-Unmodified-Since`, or a required version field in the
    /// body) nor document `412 Precondition Failed`.
    ///
    /// ## Why is this bad?
    /// Without a precondition two clients that read the same version both write, and the
    /// second silently overwrites the first (a lost update across clients). The contract
    /// gives clients no way to say "only if nothing changed since I read it".
    ///
    /// ## Example
    /// ```yaml
    /// /profiles/{id}:
    ///   put:
    ///     requestBody: {...}
    ///     responses: {'200': {description: updated}}
    /// ```
    ///
    /// ## Use instead
    /// Require `If-Match` (with the `ETag` the GET returns) and document `412`:
    /// ```yaml
    ///     parameters: [{$ref: '#/components/parameters/IfMatch'}]
    ///     responses: {'412': {description: the resource changed since it was read}}
    /// ```
    ///
    /// ## Fix safety
    /// Unsafe: clients must start sending `If-Match`.
    pub static RULE = ("RC201", "missing-precondition", Contract, Medium,
        "Item-level PUT/PATCH/DELETE with no required `If-Match` (or version token) and no 412.");
}

pub fn check(ctx: &SpecCtx, out: &mut Vec<SpecCandidate>) {
    for op in &ctx.model.ops {
        if !matches!(op.method.as_str(), "put" | "patch" | "delete") || !op.is_item_level() {
            continue;
        }
        if has_precondition(op) || op.has_response(&["412"]) {
            continue;
        }
        let optional = op.header("if-match").is_some();
        let message = format!(
            "{} changes one item but requires no `If-Match` (or version) and documents no 412: concurrent clients overwrite each other",
            op.label()
        );
        let fragment = obj(vec![
            ("parameters", json!([ctx.header_param("If-Match", true, "The ETag of the version the client read; the write fails with 412 if it changed.")])),
            ("responses", obj(vec![("412", ctx.response("412", "Precondition Failed: the item changed since it was read"))])),
        ]);
        let fix = ctx.fix(
            op.doc,
            "Require If-Match and document 412",
            format!(
                "{} clients send the ETag they read; a stale one gets 412.",
                where_to_add(op)
            ),
            FixSafety::Unsafe,
            fragment,
        );
        let notes = vec![if optional {
            "`If-Match` is accepted but not required".into()
        } else {
            "no `If-Match`, `If-Unmodified-Since` or required version field; no 412 response".into()
        }];
        out.push(ctx.at_op(&RULE, op, Confidence::High, message, notes, vec![fix]));
    }
}
