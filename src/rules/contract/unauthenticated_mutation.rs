use serde_json::{json, Value};

use super::{obj, where_to_add, SpecCandidate, SpecCtx};
use crate::model::{Confidence, FixSafety};
use crate::rules::declare_rule;
use crate::spec::model::Security;

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
    pub static RULE = ("RC208", "unauthenticated-mutation", Contract, High,
        "A mutating operation with no security requirement.");
}

pub fn check(ctx: &SpecCtx, out: &mut Vec<SpecCandidate>) {
    let scheme = ctx.docs.docs[0]
        .value
        .pointer("/components/securitySchemes")
        .and_then(Value::as_object)
        .and_then(|m| m.keys().next().cloned());
    for op in &ctx.model.ops {
        if !op.is_mutating() || op.security == Security::Required {
            continue;
        }
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
