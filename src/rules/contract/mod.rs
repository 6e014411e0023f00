//! Contract rules RC201–RC208 and RC290: they read the spec model, never the document.
//!
//! Heuristics, shared by the rules:
//! - *mutating*: POST, PUT, PATCH, DELETE; *item-level*: the path has a template parameter.
//! - *precondition*: a required `If-Match` or `If-Unmodified-Since` header, or a required
//!   version/etag/revision field in the request body.
//! - *conflict response*: 409, 412 or 428.
//! - *idempotency key*: a header whose name contains `idempotency` (`Idempotency-Key`,
//!   `X-Idempotency-Key`, `Idempotency-Token`).
//! - *rate-limit evidence*: a 429 response, or a `RateLimit`, `RateLimit-Policy`,
//!   `X-RateLimit-*` or `Retry-After` response header.

use serde_json::{json, Map, Value};

use crate::model::{Confidence, EvidenceStep, Fix, FixSafety, StepKind};
use crate::rules::RuleMeta;
use crate::spec::model::{Op, SpecModel};
use crate::spec::refs::{DocId, Docs};

pub mod missing_conflict_response;
pub mod missing_etag;
pub mod missing_idempotency_key;
pub mod missing_precondition;
pub mod missing_version_in_update;
pub mod no_rate_limit_documented;
pub mod non_idempotent_put;
pub mod spec_error;
pub mod unauthenticated_mutation;

pub static RULES: &[&RuleMeta] = &[
    &missing_precondition::RULE,
    &missing_conflict_response::RULE,
    &missing_etag::RULE,
    &missing_idempotency_key::RULE,
    &non_idempotent_put::RULE,
    &missing_version_in_update::RULE,
    &no_rate_limit_documented::RULE,
    &unauthenticated_mutation::RULE,
    &spec_error::RULE,
];

pub struct SpecCtx<'a> {
    pub model: &'a SpecModel,
    pub docs: &'a Docs,
}

/// A finding about a place in a document.
pub struct SpecCandidate {
    pub rule: &'static RuleMeta,
    pub confidence: Confidence,
    pub message: String,
    pub doc: DocId,
    /// JSON pointer inside `doc`.
    pub pointer: String,
    pub operation: Option<String>,
    pub evidence: Vec<EvidenceStep>,
    pub fixes: Vec<Fix>,
    /// A severity other than the rule's: a gap on an operation that moves money can lose it.
    pub severity: Option<crate::model::Severity>,
}

pub fn run(ctx: &SpecCtx, out: &mut Vec<SpecCandidate>) {
    missing_precondition::check(ctx, out);
    missing_conflict_response::check(ctx, out);
    missing_etag::check(ctx, out);
    missing_idempotency_key::check(ctx, out);
    non_idempotent_put::check(ctx, out);
    missing_version_in_update::check(ctx, out);
    no_rate_limit_documented::check(ctx, out);
    unauthenticated_mutation::check(ctx, out);
}

pub const PRECONDITION_HEADERS: &[&str] = &["if-match", "if-unmodified-since"];
pub const CONFLICT_CODES: &[&str] = &["409", "412", "428"];

pub fn is_version_field(name: &str) -> bool {
    crate::source::expr::is_version_attr(name) || name == "_etag" || name == "_version"
}

/// Whether the operation states a precondition clients must send.
pub fn has_precondition(op: &Op) -> bool {
    PRECONDITION_HEADERS
        .iter()
        .any(|h| op.header(h).is_some_and(|p| p.required))
        || op
            .body
            .as_ref()
            .is_some_and(|b| b.required.iter().any(|f| is_version_field(f)))
}

pub fn has_idempotency_key(op: &Op) -> bool {
    op.params
        .iter()
        .any(|p| p.location == "header" && p.name.contains("idempot"))
}

impl SpecCtx<'_> {
    fn path(&self, doc: DocId) -> String {
        self.docs.docs[doc].path.to_string()
    }

    /// A candidate at an operation.
    pub fn at_op(
        &self,
        rule: &'static RuleMeta,
        op: &Op,
        confidence: Confidence,
        message: String,
        mut notes: Vec<String>,
        fixes: Vec<Fix>,
    ) -> SpecCandidate {
        let (line, column) = self.docs.docs[op.doc].position(&op.pointer);
        let file = self.path(op.doc);
        let evidence = notes
            .drain(..)
            .map(|note| EvidenceStep {
                kind: StepKind::Note,
                file: file.clone(),
                line,
                column,
                note,
            })
            .collect();
        SpecCandidate {
            rule,
            confidence,
            message,
            doc: op.doc,
            pointer: op.pointer.clone(),
            operation: Some(op.label()),
            evidence,
            fixes,
            severity: None,
        }
    }

    /// One candidate for a policy the whole document lacks (no 429 anywhere, no security
    /// anywhere): at the document's `paths`, listing the operations it touches, so one cause
    /// is one finding.
    pub fn at_document(
        &self,
        rule: &'static RuleMeta,
        ops: &[&Op],
        confidence: Confidence,
        message: String,
        fixes: Vec<Fix>,
    ) -> SpecCandidate {
        self.at_shared(rule, (0, "/paths".into()), ops, confidence, message, fixes)
    }

    /// One candidate for a cause many operations share (a component they all refer to), at
    /// that cause, listing the operations.
    pub fn at_shared(
        &self,
        rule: &'static RuleMeta,
        (doc, pointer): (DocId, String),
        ops: &[&Op],
        confidence: Confidence,
        message: String,
        fixes: Vec<Fix>,
    ) -> SpecCandidate {
        const LISTED: usize = 20;
        let (line, column) = self.docs.docs[doc].position(&pointer);
        let mut evidence: Vec<EvidenceStep> = ops
            .iter()
            .take(LISTED)
            .map(|op| {
                let (line, column) = self.docs.docs[op.doc].position(&op.pointer);
                EvidenceStep {
                    kind: StepKind::Note,
                    file: self.path(op.doc),
                    line,
                    column,
                    note: op.label(),
                }
            })
            .collect();
        if ops.len() > LISTED {
            evidence.push(EvidenceStep {
                kind: StepKind::Note,
                file: self.path(doc),
                line,
                column,
                note: format!("and {} more operations", ops.len() - LISTED),
            });
        }
        SpecCandidate {
            rule,
            confidence,
            message,
            doc,
            pointer,
            operation: None,
            evidence,
            fixes,
            severity: None,
        }
    }

    /// The snippet in the document's format, with where it goes: into document `doc`, so
    /// its references to the root's components are spelled from that file.
    pub fn fix(
        &self,
        doc: DocId,
        title: &str,
        explanation: String,
        safety: FixSafety,
        mut fragment: Value,
    ) -> Fix {
        if doc != 0 {
            if let Some(root) = self.docs.relative_to_root(doc) {
                rebase_refs(&mut fragment, &root);
            }
        }
        crate::fix::fix(
            title,
            explanation,
            safety,
            crate::fix::spec::render(&fragment, self.model.format),
        )
    }

    /// A header parameter: the component that defines it, or an inline definition.
    pub fn header_param(&self, name: &str, required: bool, description: &str) -> Value {
        let lower = name.to_ascii_lowercase();
        match self
            .model
            .components
            .header_params
            .iter()
            .find(|(n, _)| *n == lower)
        {
            Some((_, r)) => json!({ "$ref": r }),
            None => json!({
                "name": name,
                "in": "header",
                "required": required,
                "description": description,
                "schema": {"type": "string"},
            }),
        }
    }

    /// A response: the component for that status, or an inline one.
    pub fn response(&self, code: &str, description: &str) -> Value {
        match self
            .model
            .components
            .responses
            .iter()
            .find(|(c, _)| c == code)
        {
            Some((_, r)) => json!({ "$ref": r }),
            None => json!({ "description": description }),
        }
    }
}

/// `#/components/..` as seen from another file: `../openapi.yaml#/components/..`.
fn rebase_refs(v: &mut Value, root: &str) {
    match v {
        Value::Object(m) => {
            for (k, x) in m.iter_mut() {
                match x {
                    Value::String(r) if k == "$ref" && r.starts_with('#') => {
                        *r = format!("{root}{r}");
                    }
                    _ => rebase_refs(x, root),
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| rebase_refs(x, root)),
        _ => {}
    }
}

/// `{"responses": {code: ...}}` and the like, built in order.
pub fn obj(entries: Vec<(&str, Value)>) -> Value {
    let mut m = Map::new();
    for (k, v) in entries {
        m.insert(k.to_string(), v);
    }
    Value::Object(m)
}

/// `POST /a, PUT /b, DELETE /c` and `and 7 more`: the first few of a list of operations.
pub fn some_ops(ops: &[&Op]) -> String {
    const NAMED: usize = 3;
    let mut out: Vec<String> = ops.iter().take(NAMED).map(|o| o.label()).collect();
    if ops.len() > NAMED {
        out.push(format!("and {} more", ops.len() - NAMED));
    }
    out.join(", ")
}

pub fn where_to_add(op: &Op) -> String {
    format!("Add to the `{}` operation of `{}`:", op.method, op.path)
}
