//! Source analysis: parse the service's Rust code, index it, walk every function's flow once,
//! compose callees, and run the source rules over the flows.

pub mod expr;
pub mod facts;
pub mod files;
pub mod flow;
pub mod index;
pub mod routes;
pub mod span;
pub mod suppress;
pub mod writes;

use std::collections::{HashMap, HashSet};
use std::time::Instant;

pub use files::Input;

use crate::model::{AnalysisError, Finding, Location, Report, Route, Stats};
use crate::rules::source::{self as rules, Candidate, FlowCtx, EXCLUSIVE};
use index::{CrateIndex, FnId, SourceFile};

/// What to analyse and how.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Only these rules (ids or slugs); empty means all.
    pub rules: Vec<String>,
}

/// Analyse the inputs. Never panics on bad input: what cannot be read or parsed is in
/// `errors`.
pub fn analyze(inputs: &[Input], options: &Options) -> Report {
    let started = Instant::now();
    let mut errors: Vec<AnalysisError> = vec![];
    let wanted = match resolve_rules(&options.rules) {
        Ok(w) => w,
        Err(e) => {
            errors.push(e);
            return Report {
                errors,
                ..Report::default()
            };
        }
    };
    let list = files::discover(inputs, &mut errors);
    // Spans refer to a per-thread source map, so parsing and analysis share one thread.
    let mut parsed: Vec<SourceFile> = vec![];
    for input in &list {
        match files::read(input).and_then(|(path, text)| files::parse(path, text)) {
            Ok(f) => parsed.push(f),
            Err(e) => errors.push(e),
        }
    }
    tracing::debug!(
        files = parsed.len(),
        ms = started.elapsed().as_millis() as u64,
        "parsed"
    );
    let mut report = analyze_files(&parsed, &wanted);
    tracing::debug!(ms = started.elapsed().as_millis() as u64, "analysed");
    report.errors.extend(errors);
    report.stats.files = list.len() as u64;
    report.stats.errors = report.errors.len() as u64;
    report.stats.elapsed_ms = started.elapsed().as_millis() as u64;
    drop(parsed);
    // The source map behind spans grows with every file parsed on this thread; a long-running
    // server must not keep it.
    proc_macro2::extra::invalidate_current_thread_spans();
    report
}

fn resolve_rules(keys: &[String]) -> Result<HashSet<&'static str>, AnalysisError> {
    let mut out = HashSet::new();
    for k in keys {
        match crate::rules::find(k) {
            Some(r) => {
                out.insert(r.id);
            }
            None => {
                return Err(AnalysisError {
                    kind: crate::model::ErrorKind::Invalid,
                    path: k.clone(),
                    line: None,
                    column: None,
                    message: format!(
                        "unknown rule `{k}`; `racecheck rules` lists the ids (RC101) and slugs (lost-update)"
                    ),
                })
            }
        }
    }
    Ok(out)
}

const CREATE_WORDS: &[&str] = &[
    "create", "register", "signup", "sign_up", "insert", "claim", "reserve", "book",
];

fn analyze_files(parsed: &[SourceFile], wanted: &HashSet<&'static str>) -> Report {
    let t = Instant::now();
    let index = CrateIndex::build(parsed);
    let an = flow::Analysis::new(&index);
    tracing::debug!(ms = t.elapsed().as_millis() as u64, "indexed");
    let routes = routes::collect(&index);
    tracing::debug!(ms = t.elapsed().as_millis() as u64, "routes");

    let mut handler_routes: HashMap<&str, Vec<Route>> = HashMap::new();
    for r in &routes {
        handler_routes
            .entry(r.handler.as_str())
            .or_default()
            .push(r.clone());
    }
    let t = Instant::now();
    let summaries: Vec<_> = (0..index.fns.len()).map(|id| an.summary(id)).collect();
    tracing::debug!(
        functions = index.fns.len(),
        ms = t.elapsed().as_millis() as u64,
        "flows walked"
    );
    let calls = an.calls.borrow();
    let mut callers: HashMap<FnId, Vec<FnId>> = HashMap::new();
    for (caller, callees) in calls.iter() {
        for c in callees {
            callers.entry(*c).or_default().push(*caller);
        }
    }
    let routes_of = |id: FnId| -> Vec<Route> {
        // The function's own routes, or those of the handlers that reach it.
        let mut seen = HashSet::new();
        let mut stack = vec![id];
        let mut out: Vec<Route> = vec![];
        while let Some(f) = stack.pop() {
            if !seen.insert(f) {
                continue;
            }
            if let Some(rs) = handler_routes.get(index.fns[f].name.as_str()) {
                out.extend(rs.iter().cloned());
            }
            if let Some(cs) = callers.get(&f) {
                stack.extend(cs.iter().copied());
            }
        }
        out.sort();
        out.dedup();
        out
    };

    let mut candidates: Vec<(FnId, Candidate)> = vec![];
    let mut ops = 0u64;
    for (id, summary) in summaries.iter().enumerate() {
        ops += summary.ops.iter().filter(|o| o.via.is_empty()).count() as u64;
        if summary.ops.is_empty() && summary.mem.is_empty() {
            continue;
        }
        let f = &index.fns[id];
        let writes = writes::derive(summary);
        let own_routes = handler_routes.get(f.name.as_str());
        let lower = f.name.to_ascii_lowercase();
        let creates = CREATE_WORDS.iter().any(|w| lower.contains(w))
            || lower.starts_with("add")
            || lower.starts_with("new")
            || own_routes.is_some_and(|rs| rs.iter().any(|r| r.method == "POST"));
        let ctx = FlowCtx {
            function: &f.qual,
            fn_name: &f.name,
            summary,
            writes: &writes,
            creates,
            from_maps_ccf: index.from_maps_ccf,
            has_callers: callers.contains_key(&id),
            files: parsed,
        };
        for c in rules::run(&ctx) {
            if wanted.is_empty() || wanted.contains(c.rule.id) {
                candidates.push((id, c));
            }
        }
    }

    let candidates = precedence(candidates);
    let candidates = dedupe(candidates);
    let suppressions = suppress::Suppressions::scan(parsed);
    let mut findings = vec![];
    let mut suppressed = 0u64;
    for (id, c) in candidates {
        let f = &index.fns[id];
        let write_line = c.write.as_ref().map(|(s, _)| s);
        if suppressions.covers(c.rule, &c.at, write_line, &f.span) {
            suppressed += 1;
            continue;
        }
        findings.push(Finding {
            rule: c.rule.id.to_string(),
            slug: c.rule.slug.to_string(),
            severity: c.rule.severity,
            confidence: c.confidence,
            message: c.message,
            location: Location {
                file: c.at.file.to_string(),
                line: c.at.line,
                column: c.at.column,
                end_line: c.at.end_line,
                end_column: c.at.end_column,
            },
            function: Some(f.qual.clone()),
            routes: routes_of(id),
            evidence: c.evidence,
            fixes: c.fixes,
        });
    }
    findings.sort_by(|a, b| {
        (
            &a.location.file,
            a.location.line,
            a.location.column,
            &a.rule,
        )
            .cmp(&(
                &b.location.file,
                b.location.line,
                b.location.column,
                &b.rule,
            ))
    });
    Report {
        stats: Stats {
            files: parsed.len() as u64,
            lines: parsed.iter().map(|f| f.line_count() as u64).sum(),
            functions: index.fns.len() as u64,
            routes: routes.len() as u64,
            dynamodb_operations: ops,
            findings: findings.len() as u64,
            suppressed,
            ..Stats::default()
        },
        findings,
        errors: vec![],
    }
}

/// A write gets at most one of the rules in `EXCLUSIVE`: the most specific.
fn precedence(cands: Vec<(FnId, Candidate)>) -> Vec<(FnId, Candidate)> {
    let rank = |c: &Candidate| EXCLUSIVE.iter().position(|r| *r == c.rule.id);
    let mut best: HashMap<(FnId, String), usize> = HashMap::new();
    for (id, c) in &cands {
        if let (Some(r), Some(w)) = (rank(c), &c.write) {
            let key = (*id, format!("{:?}", w));
            let e = best.entry(key).or_insert(r);
            *e = (*e).min(r);
        }
    }
    cands
        .into_iter()
        .filter(|(id, c)| match (rank(c), &c.write) {
            (Some(r), Some(w)) => best.get(&(*id, format!("{:?}", w))) == Some(&r),
            _ => true,
        })
        .collect()
}

/// The same race seen from a helper and from the handler that calls it is reported once,
/// where it is most local.
fn dedupe(cands: Vec<(FnId, Candidate)>) -> Vec<(FnId, Candidate)> {
    let key = |c: &Candidate| {
        let mut reads = c.reads.clone();
        reads.sort();
        format!("{}|{:?}|{:?}", c.rule.id, c.write, reads)
    };
    let mut best: HashMap<String, usize> = HashMap::new();
    for (i, (_, c)) in cands.iter().enumerate() {
        let k = key(c);
        match best.get(&k) {
            Some(&j) if cands[j].1.depth <= c.depth => {}
            _ => {
                best.insert(k, i);
            }
        }
    }
    let keep: HashSet<usize> = best.into_values().collect();
    cands
        .into_iter()
        .enumerate()
        .filter(|(i, _)| keep.contains(i))
        .map(|(_, c)| c)
        .collect()
}
