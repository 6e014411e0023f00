//! Facts the user declared in `racecheck.toml` ([`crate::config::Facts`]) applied to one
//! function's candidate findings: a candidate a fact explains becomes `assumed` (reported at
//! `info` with the fact and its line), never dropped.

use crate::config::{Facts, Named};
use crate::model::{Assumption, Severity};
use crate::rules::source::Candidate;

use super::facts::{GuardKind, Op, Summary, TableRef};
use super::writes::WriteFacts;
use super::INTERLEAVING;

/// Rules a write that re-checks what was read does not break.
const RECHECKED: &[&str] = &["RC101", "RC102", "RC103", "RC106"];

/// How the code names a table: its value where known, and the constant or expression that
/// holds it.
fn table_names(t: &TableRef) -> (Option<&str>, Option<&str>) {
    let ident = match t {
        TableRef::Const(c, _) => Some(c.as_str()),
        TableRef::Expr(e) => Some(e.as_str()),
        TableRef::Literal(_) | TableRef::Unknown => None,
    };
    (t.name(), ident)
}

fn assumption(facts: &Facts, d: &Named, fact: String) -> Assumption {
    Assumption {
        fact,
        file: facts.file.clone(),
        line: d.line,
        // Set by the caller, who knows the finding's severity.
        severity: Severity::Info,
    }
}

/// The write a candidate is about, and its facts.
fn write_of<'a>(
    c: &Candidate,
    summary: &'a Summary,
    writes: &'a [WriteFacts],
) -> Option<(&'a Op, &'a WriteFacts)> {
    let (span, member) = c.write.as_ref()?;
    let op = summary
        .ops
        .iter()
        .find(|o| o.span == *span && *o.local_span() == c.site)
        .or_else(|| summary.ops.iter().find(|o| o.span == *span))?;
    let w = writes
        .iter()
        .find(|w| w.op == op.id && w.member == *member)
        .or_else(|| writes.iter().find(|w| w.op == op.id))?;
    Some((op, w))
}

/// The fact that makes candidate `c` of a function harmless, if one does. `serialized` is the
/// declaration that this function runs one at a time (itself, or only ever called from such
/// functions). A candidate already at `info` is left alone: no fact silenced it.
pub fn assume(
    facts: &Facts,
    serialized: Option<&Named>,
    summary: &Summary,
    writes: &[WriteFacts],
    c: &Candidate,
) -> Option<Assumption> {
    if facts.is_empty() || c.severity.unwrap_or(c.rule.severity) == Severity::Info {
        return None;
    }
    let rule = c.rule.id;
    if INTERLEAVING.contains(&rule) {
        if let Some(d) = serialized {
            return Some(assumption(
                facts,
                d,
                format!(
                    "`{}` is declared serialized (it never runs concurrently with itself), so \
                     its flow cannot interleave with another run of it",
                    d.name
                ),
            ));
        }
    }
    let (op, w) = write_of(c, summary, writes)?;
    if INTERLEAVING.contains(&rule) {
        let (name, ident) = table_names(&w.req.table);
        if let Some(d) = facts.single_writer(name, ident) {
            return Some(assumption(
                facts,
                d,
                format!(
                    "table `{}` is declared single-writer, so its writes cannot race with each \
                     other",
                    d.name
                ),
            ));
        }
    }
    if rule == "RC102" {
        if let Some(a) = immutable_checks(facts, summary, w, c) {
            return Some(a);
        }
    }
    if RECHECKED.contains(&rule) {
        let helper = op
            .via
            .iter()
            .map(|v| v.callee.as_str())
            .chain([op.function.as_str()])
            .find_map(|f| facts.conditional_helper(f));
        if let Some(d) = helper {
            return Some(assumption(
                facts,
                d,
                format!(
                    "the write goes through `{}`, declared a conditional helper, so it re-checks \
                     what was read",
                    d.name
                ),
            ));
        }
    }
    None
}

/// Every decision on read data the check-then-act is about is on attributes declared
/// immutable in the table read (checks that the item exists aside): no concurrent request can
/// change what was decided.
fn immutable_checks(
    facts: &Facts,
    summary: &Summary,
    w: &WriteFacts,
    c: &Candidate,
) -> Option<Assumption> {
    let read_op = |id| summary.ops.iter().find(|o| o.id == id);
    let about_candidate = |reads: &[usize]| {
        reads
            .iter()
            .filter_map(|r| read_op(*r))
            .any(|o| c.reads.contains(&o.span))
    };
    // Whether the item exists is not a decision on its attributes (`ok_or(NOT_FOUND)?`
    // comes with every ownership check); a decision on data is needed.
    let on_data: Vec<_> = w
        .checks
        .iter()
        .filter(|ch| ch.guard.kind != GuardKind::Exists)
        .collect();
    let mut checks: Vec<_> = on_data
        .iter()
        .copied()
        .filter(|ch| about_candidate(&ch.reads))
        .collect();
    if checks.is_empty() {
        checks = on_data;
    }
    if checks.is_empty() {
        return None;
    }
    let mut first: Option<&Named> = None;
    let mut named: Vec<&str> = vec![];
    for ch in checks {
        if ch.attrs.is_empty() || ch.attrs.contains("*") || ch.reads.is_empty() {
            return None;
        }
        for attr in &ch.attrs {
            for r in &ch.reads {
                let (name, ident) = table_names(&read_op(*r)?.req.table);
                let d = facts.immutable(name, ident, attr)?;
                first = match first {
                    Some(f) if f.line <= d.line => Some(f),
                    _ => Some(d),
                };
            }
            if !named.contains(&attr.as_str()) {
                named.push(attr);
            }
        }
    }
    let d = first?;
    let list: Vec<String> = named.iter().map(|a| format!("`{a}`")).collect();
    Some(assumption(
        facts,
        d,
        format!(
            "{} {} declared immutable (no write changes {} after the item is created), so the \
             check on {} cannot go stale",
            list.join(", "),
            if list.len() == 1 { "is" } else { "are" },
            if list.len() == 1 { "it" } else { "them" },
            if list.len() == 1 { "it" } else { "them" },
        ),
    ))
}
