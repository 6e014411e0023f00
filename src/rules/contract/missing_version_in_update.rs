use serde_json::json;

use super::{is_version_field, SpecCandidate, SpecCtx};
use crate::model::{Confidence, FixSafety};
use crate::rules::declare_rule;

declare_rule! {
    /// ## What it does
    /// Finds resources whose representation (the `GET` response) carries a version field —
    /// `version`, `etag`, `revision`, `updated_at` — that their `PUT`/`PATCH` body omits, when
    /// the write takes no `If-Match` either.
    ///
    /// ## Why is this bad?
    /// The server keeps a version but clients cannot send back the one they read, so it cannot
    /// reject stale writes.
    ///
    /// ## Use instead
    /// Require the version in the update body (and answer 409/412 when it is stale), or take
    /// `If-Match`.
    ///
    /// ## Fix safety
    /// Unsafe: the version becomes a required field of the update body: clients must send back
    /// the version they read, and a stale one is answered with 412.
    pub static RULE = ("RC206", "missing-version-in-update", Contract, Medium,
        "The resource carries a version/etag field that its update body omits.");
}

pub fn check(ctx: &SpecCtx, out: &mut Vec<SpecCandidate>) {
    for op in &ctx.model.ops {
        if !matches!(op.method.as_str(), "put" | "patch") || op.header("if-match").is_some() {
            continue;
        }
        let Some(body) = &op.body else { continue };
        let Some(get) = ctx.model.get_of(op) else {
            continue;
        };
        let Some(version) = get
            .responses
            .iter()
            .filter(|r| r.code.starts_with('2'))
            .flat_map(|r| r.props.iter())
            .find(|p| is_version_field(p))
        else {
            continue;
        };
        if body.props.iter().any(|p| p == version) {
            continue;
        }
        let message = format!(
            "`GET {}` returns `{version}`, but {} does not take it back: stale updates cannot be detected",
            op.path,
            op.label()
        );
        let fix = ctx.fix(
            op.doc,
            &format!("Require `{version}` in the update body"),
            format!(
                "Add to the request body schema of `{}` (and answer 412 when it is not the stored one):",
                op.label()
            ),
            FixSafety::Unsafe,
            json!({"properties": {version.as_str(): {"type": "integer", "description": "The version the client read."}}, "required": [version]}),
        );
        out.push(ctx.at_op(
            &RULE,
            op,
            Confidence::Medium,
            message,
            vec![format!("`{version}` in the GET response")],
            vec![fix],
        ));
    }
}
