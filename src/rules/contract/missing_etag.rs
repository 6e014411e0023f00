use super::{obj, SpecCandidate, SpecCtx};
use crate::model::{Confidence, FixSafety};
use crate::rules::declare_rule;
use serde_json::json;

declare_rule! {
    /// ## What it does
    /// Finds resources whose writes take `If-Match` while the `GET` of the same path returns no
    /// `ETag` header.
    ///
    /// ## Why is this bad?
    /// Clients cannot send the validator they were never given: they either skip `If-Match`
    /// (when optional) or invent one, and the precondition protects nothing.
    ///
    /// ## Use instead
    /// ```yaml
    ///   get:
    ///     responses:
    ///       '200':
    ///         headers:
    ///           ETag: {schema: {type: string}}
    /// ```
    pub static RULE = ("RC203", "missing-etag", Contract, Medium,
        "Writes require `If-Match` but the resource's GET returns no `ETag`.");
}

pub fn check(ctx: &SpecCtx, out: &mut Vec<SpecCandidate>) {
    let mut seen = vec![];
    for op in &ctx.model.ops {
        if !op.is_mutating() || op.header("if-match").is_none() || seen.contains(&op.path) {
            continue;
        }
        let Some(get) = ctx.model.get_of(op) else {
            continue;
        };
        let etag = get
            .responses
            .iter()
            .filter(|r| r.code.starts_with('2'))
            .any(|r| r.headers.iter().any(|h| h == "etag"));
        if etag {
            continue;
        }
        seen.push(op.path.clone());
        let header = match ctx
            .model
            .components
            .headers
            .iter()
            .find(|(n, _)| n == "etag")
        {
            Some((_, r)) => json!({"$ref": r}),
            None => {
                json!({"description": "The version of the resource, to send back in If-Match.", "schema": {"type": "string"}})
            }
        };
        let code = get
            .responses
            .iter()
            .find(|r| r.code.starts_with('2'))
            .map(|r| r.code.clone())
            .unwrap_or_else(|| "200".into());
        let fix = ctx.fix(
            get.doc,
            "Return an ETag from the GET",
            format!("Add to the `{code}` response of `get` on `{}`:", op.path),
            FixSafety::Safe,
            obj(vec![("headers", obj(vec![("ETag", header)]))]),
        );
        let message = format!(
            "{} takes `If-Match`, but `GET {}` returns no `ETag` for clients to send",
            op.label(),
            op.path
        );
        out.push(ctx.at_op(
            &RULE,
            get,
            Confidence::High,
            message,
            vec![format!("{} takes If-Match", op.label())],
            vec![fix],
        ));
    }
}
