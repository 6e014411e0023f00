use serde_json::{json, Value};

use super::{obj, some_ops, where_to_add, SpecCandidate, SpecCtx};
use crate::model::{Confidence, FixSafety};
use crate::rules::declare_rule;
use crate::spec::model::{Op, Security};

declare_rule! {
    /// ## What it does
    /// Finds mutating operations with no security requirement: none declared globally or on
    /// the operation, `security: []` on the operation (which overrides a global one), or a
    /// requirement list that includes `{}` (anonymous allowed).
    ///
    /// ## Why is this bad?
    /// Anyone can drive the write, as often and as concurrently as they like — the races this
    /// tool finds become exploitable by anyone on the network.
    ///
    /// ## Use instead
    /// `security: [{bearerAuth: []}]` on the operation (or globally), with the scheme under
    /// `components.securitySchemes`.
    ///
    /// A document that declares no security at all (no scheme, no requirement anywhere) gets
    /// one finding at `paths` listing its mutating operations: one policy missing, not one
    /// gap per operation.
    ///
    /// ## Fix safety
    /// Unsafe: clients that call without credentials start getting 401.
    pub static RULE = ("RC208", "unauthenticated-mutation", Contract, High,
        "A mutating operation with no security requirement.");
}

pub fn check(ctx: &SpecCtx, out: &mut Vec<SpecCandidate>) {
    let scheme = ctx.docs.docs[0]
        .value
        .pointer("/components/securitySchemes")
        .and_then(Value::as_object)
        .and_then(|m| m.keys().next().cloned());
    let open: Vec<&Op> = ctx
        .model
        .ops
        .iter()
        .filter(|op| op.is_mutating() && op.security != Security::Required)
        .collect();
    let declares_none = scheme.is_none()
        && ctx
            .model
            .ops
            .iter()
            .all(|op| op.security == Security::Absent);
    if declares_none && open.len() > 1 {
        let message = format!(
            "the document declares no authentication at all (no security scheme, no requirement): {} mutating operations are open to anyone, {}",
            open.len(),
            some_ops(&open)
        );
        let fix = ctx.fix(
            0,
            "Declare a security scheme and require it for the whole API",
            "Add at the top level of the document (an operation that must stay public gets `security: []`):".into(),
            FixSafety::Unsafe,
            obj(vec![
                ("security", json!([{ "bearerAuth": [] }])),
                (
                    "components",
                    json!({"securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}}}),
                ),
            ]),
        );
        out.push(ctx.at_document(&RULE, &open, Confidence::Medium, message, vec![fix]));
        return;
    }
    for op in open {
        let why = match op.security {
            Security::DisabledHere => {
                "`security: []` on the operation turns off the global requirement"
            }
            Security::Optional => "the requirement list allows anonymous calls (`{}`)",
            _ => "no security requirement is declared for it or globally",
        };
        let message = format!(
            "{} changes data but requires no authentication: {why}",
            op.label()
        );
        let name = scheme.clone().unwrap_or_else(|| "bearerAuth".into());
        let mut entries = vec![("security", json!([{ name.as_str(): [] }]))];
        if scheme.is_none() {
            entries.push((
                "components (at the top level)",
                json!({"securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}}}),
            ));
        }
        let fix = ctx.fix(
            op.doc,
            "Require authentication",
            where_to_add(op),
            FixSafety::Unsafe,
            obj(entries),
        );
        let confidence = if op.security == Security::Absent {
            Confidence::Medium
        } else {
            Confidence::High
        };
        out.push(ctx.at_op(
            &RULE,
            op,
            confidence,
            message,
            vec![why.to_string()],
            vec![fix],
        ));
    }
}
