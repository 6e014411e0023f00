use super::{obj, some_ops, SpecCandidate, SpecCtx};
use crate::model::{Confidence, FixSafety};
use crate::rules::declare_rule;
use crate::spec::model::Op;
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
    ///
    /// When the GETs answer with one shared response (`$ref: '#/components/responses/Item'`),
    /// the missing header is one gap in that component: one finding there, listing the GETs.
    ///
    /// ## Fix safety
    /// Safe: documenting a header changes no behaviour (the service must then send it).
    pub static RULE = ("RC203", "missing-etag", Contract, Medium,
        "Writes require `If-Match` but the resource's GET returns no `ETag`.");
}

/// A shared response: its document and pointer.
type Shared = (crate::spec::refs::DocId, String);

pub fn check(ctx: &SpecCtx, out: &mut Vec<SpecCandidate>) {
    // Each GET's finding, with the shared response it answers with.
    let mut found: Vec<(SpecCandidate, Option<Shared>, &Op)> = vec![];
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
        let shared = get
            .responses
            .iter()
            .find(|r| r.code.starts_with('2'))
            .and_then(|r| r.shared.clone());
        let c = ctx.at_op(
            &RULE,
            get,
            Confidence::High,
            message,
            vec![format!("{} takes If-Match", op.label())],
            vec![fix],
        );
        found.push((c, shared, get));
    }
    let mut groups: Vec<(Shared, Vec<&Op>)> = vec![];
    for (_, shared, get) in &found {
        if let Some(key) = shared {
            match groups.iter_mut().find(|(k, _)| k == key) {
                Some((_, gets)) => gets.push(get),
                None => groups.push((key.clone(), vec![get])),
            }
        }
    }
    groups.retain(|(_, gets)| gets.len() > 1);
    for (c, shared, _) in found {
        if !shared.is_some_and(|k| groups.iter().any(|(g, _)| *g == k)) {
            out.push(c);
        }
    }
    for ((doc, pointer), gets) in groups {
        let name = pointer.rsplit('/').next().unwrap_or_default().to_string();
        let message = format!(
            "the shared response `{name}` returns no `ETag`, and {} GETs whose resources take `If-Match` answer with it: {}",
            gets.len(),
            some_ops(&gets)
        );
        let fix = ctx.fix(
            doc,
            "Return an ETag from the shared response",
            format!("Add to the response `{name}` (`#{pointer}`):"),
            FixSafety::Safe,
            obj(vec![("headers", obj(vec![("ETag", json!({"description": "The version of the resource, to send back in If-Match.", "schema": {"type": "string"}}))]))]),
        );
        out.push(ctx.at_shared(
            &RULE,
            (doc, pointer),
            &gets,
            Confidence::High,
            message,
            vec![fix],
        ));
    }
}
