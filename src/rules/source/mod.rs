//! Source rules RC101–RC109: they read the flows (`source::writes`), never the syntax.

use std::sync::Arc;

use crate::model::{Confidence, EvidenceStep, Fix, StepKind};
use crate::rules::RuleMeta;
use crate::source::facts::{Guard, Op, OpId, Span, Summary, TableRef};
use crate::source::index::FileText;
use crate::source::mutated::Mutated;
use crate::source::writes::WriteFacts;

pub mod batch_write;
pub mod check_then_act;
pub mod in_memory_rmw;
pub mod lost_update;
pub mod non_atomic_counter;
pub mod split_multi_item_write;
pub mod unbounded_retry;
pub mod unconditional_create;
pub mod unhandled_condition_failure;

pub static RULES: &[&RuleMeta] = &[
    &lost_update::RULE,
    &check_then_act::RULE,
    &non_atomic_counter::RULE,
    &split_multi_item_write::RULE,
    &unhandled_condition_failure::RULE,
    &unconditional_create::RULE,
    &batch_write::RULE,
    &unbounded_retry::RULE,
    &in_memory_rmw::RULE,
];

/// Rules about one write that exclude each other, most specific first: a write gets at most one.
pub static EXCLUSIVE: &[&str] = &["RC106", "RC102", "RC103", "RC101"];

/// One function's flow, with everything rules need already computed.
pub struct FlowCtx<'a> {
    /// `Type::method` or `module::function`.
    pub function: &'a str,
    pub fn_name: &'a str,
    pub summary: &'a Summary,
    pub writes: &'a [WriteFacts],
    /// Whether the function creates things (by its name or its routes' methods).
    pub creates: bool,
    /// The function's error type has an `impl From` that maps a failed condition to a client
    /// error (an unrelated type's impl does not count).
    pub from_maps_ccf: bool,
    /// Other functions call this one: errors it passes on with `?` are theirs to judge.
    pub has_callers: bool,
    pub files: &'a [Arc<FileText>],
    /// The attributes the workspace changes once an item exists.
    pub mutated: &'a Mutated,
}

/// A finding before precedence, de-duplication, routes and suppression are applied.
#[derive(Clone, Debug)]
pub struct Candidate {
    pub rule: &'static RuleMeta,
    pub confidence: Confidence,
    pub message: String,
    pub at: Span,
    pub evidence: Vec<EvidenceStep>,
    pub fixes: Vec<Fix>,
    /// The write (its span, and the transaction member) this finding is about.
    pub write: Option<(Span, Option<usize>)>,
    /// Where this function performs the write (the write, or the call that reaches it): one
    /// helper called from two places is two writes.
    pub site: Span,
    pub reads: Vec<Span>,
    pub depth: usize,
    /// A severity other than the rule's (a weaker case of it).
    pub severity: Option<crate::model::Severity>,
    /// Other members of the same transaction folded into this finding.
    pub merged: usize,
}

pub fn run(ctx: &FlowCtx) -> Vec<Candidate> {
    let mut out = vec![];
    lost_update::check(ctx, &mut out);
    check_then_act::check(ctx, &mut out);
    non_atomic_counter::check(ctx, &mut out);
    split_multi_item_write::check(ctx, &mut out);
    unhandled_condition_failure::check(ctx, &mut out);
    unconditional_create::check(ctx, &mut out);
    batch_write::check(ctx, &mut out);
    unbounded_retry::check(ctx, &mut out);
    in_memory_rmw::check(ctx, &mut out);
    out
}

impl FlowCtx<'_> {
    pub fn op(&self, id: OpId) -> &Op {
        self.summary
            .ops
            .iter()
            .find(|o| o.id == id)
            .unwrap_or(&self.summary.ops[0])
    }

    /// The source text a span covers.
    pub fn text(&self, span: &Span) -> String {
        self.files
            .iter()
            .find(|f| Arc::ptr_eq(&f.path, &span.file) || f.path == span.file)
            .map(|f| f.slice(span))
            .unwrap_or_default()
    }

    /// How sure a finding about `write` fed by `reads` is.
    pub fn confidence(&self, w: &WriteFacts, reads: &[OpId]) -> Confidence {
        let write = self.op(w.op);
        let unknown_table = |t: &TableRef| matches!(t, TableRef::Unknown);
        if unknown_table(&w.req.table)
            || reads.iter().any(|r| unknown_table(&self.op(*r).req.table))
        {
            return Confidence::Low;
        }
        let deep = write.depth() > 0 || reads.iter().any(|r| self.op(*r).depth() > 0);
        let exact_tables = w.req.table.name().is_some()
            && reads.iter().all(|r| self.op(*r).req.table.name().is_some());
        if deep || !exact_tables {
            Confidence::Medium
        } else {
            Confidence::High
        }
    }

    /// A candidate about write `w`, located where this function performs it.
    /// `f` with its edits on the file of the write (`make` builds them), or a note saying why
    /// it has none. A display-only fix is a sketch and gets no edits.
    pub fn with_edits(
        &self,
        w: &WriteFacts,
        mut f: Fix,
        make: impl FnOnce(&crate::fix::edit::Site) -> Result<Vec<crate::model::Edit>, String>,
    ) -> Fix {
        if f.safety == crate::model::FixSafety::DisplayOnly {
            return f;
        }
        let op = self.op(w.op);
        if let Some(call) = op.via.last() {
            // Edits there would change the write for every caller of that function.
            let why = format!(
                "the request is sent inside `{}`, which other code may call too",
                call.callee
            );
            return crate::fix::without_edits(f, &why);
        }
        let span = &op.span;
        let Some(file) = self.files.iter().find(|x| x.path == span.file) else {
            return f;
        };
        let site = crate::fix::edit::Site {
            path: &file.path,
            text: &file.text,
            write: span,
        };
        match make(&site) {
            Ok(edits) => {
                f.diff = crate::fix::edit::diff(&file.path, &file.text, &edits);
                f.edits = edits;
            }
            Err(why) => {
                f.edit_note = Some(format!("No edits: {why}; the snippet shows the change."))
            }
        }
        f
    }

    pub fn candidate(
        &self,
        rule: &'static RuleMeta,
        w: &WriteFacts,
        reads: &[OpId],
        message: String,
        evidence: Vec<EvidenceStep>,
        fixes: Vec<Fix>,
    ) -> Candidate {
        let op = self.op(w.op);
        let depth = reads
            .iter()
            .map(|r| self.op(*r).depth())
            .chain([op.depth()])
            .max()
            .unwrap_or(0);
        Candidate {
            rule,
            confidence: self.confidence(w, reads),
            message,
            at: op.local_span().clone(),
            site: op.local_span().clone(),
            evidence,
            fixes,
            write: Some((op.span.clone(), w.member)),
            reads: reads.iter().map(|r| self.op(*r).span.clone()).collect(),
            depth,
            severity: None,
            merged: 0,
        }
    }
}

fn step(kind: StepKind, span: &Span, note: String) -> EvidenceStep {
    EvidenceStep {
        kind,
        file: span.file.to_string(),
        line: span.line,
        column: span.column,
        note,
    }
}

/// Steps for the calls that lead to an operation in another function.
fn via_steps(op: &Op, out: &mut Vec<EvidenceStep>) {
    for c in &op.via {
        out.push(step(
            StepKind::Call,
            &c.span,
            format!("calls `{}`", c.callee),
        ));
    }
}

fn attr_list(attrs: impl IntoIterator<Item = impl AsRef<str>>) -> String {
    let v: Vec<String> = attrs
        .into_iter()
        .map(|a| format!("`{}`", a.as_ref()))
        .collect();
    if v.is_empty() {
        "the item".into()
    } else {
        v.join(", ")
    }
}

pub fn read_step(op: &Op, attrs: &[String], out: &mut Vec<EvidenceStep>) {
    via_steps(op, out);
    out.push(step(
        StepKind::Read,
        &op.span,
        format!(
            "read {} from {} here ({})",
            attr_list(attrs),
            op.req.table.display(),
            op.req.kind.api_name()
        ),
    ));
}

pub fn check_step(g: &Guard, out: &mut Vec<EvidenceStep>) {
    out.push(step(
        StepKind::Check,
        &g.span,
        format!("checked `{}` here", shorten(&g.text)),
    ));
}

pub fn compute_step(span: &Span, out: &mut Vec<EvidenceStep>) {
    out.push(step(
        StepKind::Compute,
        span,
        "computed the new value in Rust here".into(),
    ));
}

pub fn write_step(op: &Op, note: String, out: &mut Vec<EvidenceStep>) {
    via_steps(op, out);
    out.push(step(StepKind::Write, &op.span, note));
}

pub fn note_step(span: &Span, note: String, out: &mut Vec<EvidenceStep>) {
    out.push(step(StepKind::Note, span, note));
}

fn shorten(s: &str) -> String {
    let one: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if one.chars().count() > 80 {
        format!("{}…", one.chars().take(79).collect::<String>())
    } else {
        one
    }
}

/// The name of the function a fix snippet defines.
pub fn fix_fn_name(ctx: &FlowCtx, suffix: &str) -> String {
    format!("{}_{suffix}", crate::fix::ident(ctx.fn_name))
}
