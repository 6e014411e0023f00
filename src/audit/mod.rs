//! `audit`: the source and the contract of one service together. The Axum routes found in the
//! code are matched to the operations of its OpenAPI document, so findings can say what the
//! contract promises and the code does not keep (RC301–RC303), on top of every source and
//! contract finding.

pub mod plans;

use std::path::{Path, PathBuf};

use serde_json::json;

use crate::fix::{self, Arg, Conflict, PutSpec, Target, Ty};
use crate::model::{
    AnalysisError, Confidence, ErrorKind, EvidenceStep, Finding, FixSafety, Report, StepKind,
};
use crate::rules::correlation::{
    idempotency_not_enforced, precondition_not_enforced, undocumented_mutation,
};
use crate::rules::RuleMeta;
use crate::source::{self, Handler, Input, Options};
use crate::spec::{self, OpFacts, SpecInput};

const SPEC_NAMES: &[&str] = &[
    "openapi.yaml",
    "openapi.yml",
    "openapi.json",
    "api/openapi.yaml",
    "docs/openapi.yaml",
];

/// The OpenAPI document of a service directory, if it has one where they usually are.
pub fn find_spec(dir: &Path) -> Option<PathBuf> {
    SPEC_NAMES.iter().map(|n| dir.join(n)).find(|p| p.is_file())
}

/// `/items/{id}` and `/items/:item_id` are the same route.
/// A path with its parameters blanked, in any router's spelling (`{id}`, `:id`, `*rest`,
/// Rocket's `<id>`), for matching routes with operations.
pub(crate) fn normalize(path: &str) -> String {
    let mut out: Vec<String> = vec![];
    for seg in path.trim_end_matches('/').split('/') {
        if seg.starts_with('{')
            || seg.starts_with(':')
            || seg.starts_with('*')
            || seg.starts_with('<')
        {
            out.push("{}".into());
        } else {
            out.push(seg.to_string());
        }
    }
    let p = out.join("/");
    if p.is_empty() {
        "/".into()
    } else {
        p
    }
}

fn step(kind: StepKind, at: &crate::model::Location, note: String) -> EvidenceStep {
    EvidenceStep {
        kind,
        file: at.file.clone(),
        line: at.line,
        column: at.column,
        note,
    }
}

fn finding(
    rule: &'static RuleMeta,
    h: &Handler,
    at: crate::model::Location,
    op: Option<&OpFacts>,
    message: String,
    notes: Vec<(StepKind, crate::model::Location, String)>,
    fixes: Vec<crate::model::Fix>,
) -> Finding {
    Finding {
        function: Some(h.function.clone()),
        operation: op.map(|o| format!("{} {}", o.method, o.path)),
        routes: vec![h.route.clone()],
        evidence: notes
            .into_iter()
            .map(|(kind, l, note)| step(kind, &l, note))
            .collect(),
        fixes,
        ..rule.finding(Confidence::Medium, message, at)
    }
}

/// Audit a service: its Rust source under `dir` and its OpenAPI document (`spec`, or the
/// first of `openapi.yaml|yml|json` in `dir`).
pub fn audit(dir: &Path, spec_path: Option<&Path>, cancel: crate::Cancel) -> Report {
    audit_with_ops(dir, spec_path, cancel).0
}

/// Run the plans of `report`'s findings against the running service and attach each
/// verdict. Findings on one route and mode share one probe; a contract finding takes the
/// verdict of a source finding on its operation.
pub async fn prove(
    report: &mut Report,
    svc: &plans::Service<'_>,
    policy: &crate::probe::safety::Policy,
    progress: &mut (dyn FnMut(usize, usize, &str) + Send),
    cancel: &tokio_util::sync::CancellationToken,
) {
    let mut done: Vec<(String, crate::model::Proof)> = vec![];
    let total = report.findings.len();
    // The code's findings first: a contract finding on the same operation takes their verdict.
    let mut order: Vec<usize> = (0..total).collect();
    order.sort_by_key(|&i| report.findings[i].routes.is_empty());
    for (n, i) in order.into_iter().enumerate() {
        if cancel.is_cancelled() {
            report.findings[i].proof = Some(plans::untested(
                serde_json::Value::Null,
                vec!["a run of its probe: the audit was cancelled first".into()],
            ));
            continue;
        }
        let f = &report.findings[i];
        if f.routes.is_empty() {
            if let Some(p) = borrowed(&report.findings, f) {
                report.findings[i].proof = Some(p);
                continue;
            }
        }
        let proof = match plans::derive(f, svc, i) {
            plans::Derived::Ready(plan) => {
                // Every request stays on the base URL given, whatever the document said.
                if let Some(why) = plans::urls(&plan)
                    .iter()
                    .find_map(|u| crate::probe::safety::within(svc.base_url, u).err())
                {
                    let mut p = plans::untested(plans::shown(&plan), vec![why.clone()]);
                    p.detail = format!("not probed: {why}");
                    report.findings[i].proof = Some(p);
                    continue;
                }
                let key = format!("{:?} {}", plans::route_of(f), plan.mode.as_str());
                if let Some((_, p)) = done.iter().find(|(k, _)| *k == key) {
                    p.clone()
                } else {
                    progress(n + 1, total, &plan.target.url);
                    let r = crate::probe::run(&plan, policy, &mut |_, _, _| {}, cancel).await;
                    let p = plans::verdict(&plan, &r);
                    done.push((key, p.clone()));
                    p
                }
            }
            plans::Derived::Missing { partial, missing } => plans::untested(partial, missing),
        };
        report.findings[i].proof = Some(proof);
    }
}

/// The verdict a source finding on `f`'s operation already has (probed, not untested).
fn borrowed(findings: &[Finding], f: &Finding) -> Option<crate::model::Proof> {
    let op = f.operation.as_ref()?;
    let (rule, p) = findings
        .iter()
        .filter(|s| s.routes.iter().any(|r| r.method != "LAMBDA"))
        .filter(|s| s.operation.as_ref() == Some(op))
        .find_map(|s| {
            let p = s.proof.as_ref()?;
            (p.status != crate::model::ProofStatus::Untested).then_some((&s.rule, p))
        })?;
    let mut p = p.clone();
    p.detail = format!("by the probe of {rule} on this operation: {}", p.detail);
    Some(p)
}

/// A fingerprint of what an audit of `dir` (and `spec_path`) read: each Rust file, the
/// document and every file a finding of `report` names, by path, size, modification time and
/// content. Any edit changes it, so results kept from a proven audit are never paged after
/// the code under them changed.
pub fn inputs_print(dir: &Path, spec_path: Option<&Path>, report: &Report) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut files: Vec<PathBuf> =
        source::files::discover(&[Input::Path(dir.to_path_buf())], &mut vec![])
            .into_iter()
            .filter_map(|i| match i {
                Input::Path(p) => Some(p),
                Input::Inline { .. } => None,
            })
            .collect();
    files.extend(spec_path.map(Path::to_path_buf).or_else(|| find_spec(dir)));
    // The facts it was judged under.
    files.extend(crate::config::find(dir));
    for f in &report.findings {
        files.push(PathBuf::from(&f.location.file));
        files.extend(f.evidence.iter().map(|e| PathBuf::from(&e.file)));
    }
    files.sort();
    files.dedup();
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for path in &files {
        path.hash(&mut h);
        // A name that is not a file (a probe target, a document pointer) hashes as absent.
        let Ok(meta) = std::fs::metadata(path) else {
            continue;
        };
        if !meta.is_file() {
            continue;
        }
        meta.len().hash(&mut h);
        meta.modified().ok().hash(&mut h);
        if meta.len() <= source::files::MAX_FILE_BYTES {
            std::fs::read(path).ok().hash(&mut h);
        }
    }
    h.finish()
}

/// What an audit learnt of the service beyond its findings: the document's operations and
/// the routed handlers with their writes (what plans are built from).
#[derive(Default)]
pub struct ServiceFacts {
    pub ops: Vec<OpFacts>,
    pub handlers: Vec<Handler>,
}

/// [`audit`], with the facts plans are built from.
pub fn audit_with_ops(
    dir: &Path,
    spec_path: Option<&Path>,
    cancel: crate::Cancel,
) -> (Report, ServiceFacts) {
    let options = Options {
        cancel,
        ..Options::default()
    };
    audit_with_options(dir, spec_path, &options)
}

/// [`audit_with_ops`] with the source analysis's options (the facts of `racecheck.toml`).
pub fn audit_with_options(
    dir: &Path,
    spec_path: Option<&Path>,
    options: &Options,
) -> (Report, ServiceFacts) {
    let started = std::time::Instant::now();
    let (mut report, handlers) =
        source::analyze_service(&[Input::Path(dir.to_path_buf())], options);
    let Some(spec_path) = spec_path.map(Path::to_path_buf).or_else(|| find_spec(dir)) else {
        report.errors.push(AnalysisError::new(
            ErrorKind::NotFound,
            dir.display().to_string(),
            format!(
                "no OpenAPI document in `{}` ({}); pass --spec FILE, or use `racecheck scan` for the source alone",
                dir.display(),
                SPEC_NAMES.join(", ")
            ),
        ));
        return (
            report,
            ServiceFacts {
                ops: vec![],
                handlers,
            },
        );
    };
    let (spec_report, ops) = spec::check_with_ops(&SpecInput::Path(spec_path));
    let mut findings = report.findings;
    // Source findings on routed handlers say which operation they break.
    for f in &mut findings {
        if let Some(r) = f.routes.first() {
            if let Some(op) = ops
                .iter()
                .find(|o| o.method == r.method && normalize(&o.path) == normalize(&r.path))
            {
                f.operation = Some(format!("{} {}", op.method, op.path));
            }
        }
    }
    findings.extend(spec_report.findings);
    for h in &handlers {
        let method = h.route.method.as_str();
        let op = ops
            .iter()
            .find(|o| o.method == method && normalize(&o.path) == normalize(&h.route.path));
        let mutating = matches!(method, "POST" | "PUT" | "PATCH" | "DELETE");
        match op {
            None if mutating => {
                let fragment = json!({ h.route.path.replace(':', "{").as_str(): { method.to_ascii_lowercase(): {
                    "summary": format!("handled by {}", h.function),
                    "responses": {"200": {"description": "OK"}},
                }}});
                findings.push(finding(
                    &undocumented_mutation::RULE,
                    h,
                    h.location.clone(),
                    None,
                    format!(
                        "{} {} changes data but has no operation in the OpenAPI document",
                        method, h.route.path
                    ),
                    vec![(
                        StepKind::Note,
                        h.location.clone(),
                        format!("routed to `{}` here", h.function),
                    )],
                    vec![fix::fix(
                        "Document the operation",
                        "Add under `paths` (then racecheck's contract rules check it):".to_string(),
                        FixSafety::DisplayOnly,
                        fix::spec::render(&fragment, spec::doc::Format::Yaml),
                    )],
                ));
            }
            None => {}
            Some(op) => {
                if op.requires_precondition {
                    for w in h.writes.iter().filter(|w| !w.conditioned) {
                        findings.push(finding(
                            &precondition_not_enforced::RULE,
                            h,
                            w.location.clone(),
                            Some(op),
                            format!(
                                "{} {} promises a precondition (If-Match / 412), but `{}` writes with an unconditional {}",
                                op.method, op.path, h.function, w.api
                            ),
                            vec![
                                (StepKind::Note, op.location.clone(), "the contract requires a precondition here".into()),
                                (StepKind::Write, w.location.clone(), format!("unconditional {} here", w.api)),
                            ],
                            vec![version_fix(h)],
                        ));
                    }
                }
                if op.idempotency_key && !h.reads_idempotency_key {
                    findings.push(finding(
                        &idempotency_not_enforced::RULE,
                        h,
                        h.location.clone(),
                        Some(op),
                        format!("{} {} takes an Idempotency-Key, but `{}` never reads it: a retry repeats the change", op.method, op.path, h.function),
                        vec![
                            (StepKind::Note, op.location.clone(), "the contract takes an idempotency key here".into()),
                            (StepKind::Note, h.location.clone(), "the handler does not mention it".into()),
                        ],
                        vec![key_fix(h)],
                    ));
                }
                if op.method == "PUT" {
                    for w in h.writes.iter().filter(|w| w.increments) {
                        findings.push(finding(
                            &idempotency_not_enforced::RULE,
                            h,
                            w.location.clone(),
                            Some(op),
                            format!("{} {} is a PUT, which clients retry, but `{}` adds to a stored number: a retry adds twice", op.method, op.path, h.function),
                            vec![
                                (StepKind::Note, op.location.clone(), "PUT promises idempotency".into()),
                                (StepKind::Write, w.location.clone(), format!("{} that increments here", w.api)),
                            ],
                            vec![fix::fix(
                                "Set the absolute value, or make it a POST with an Idempotency-Key",
                                "A PUT should store the state the client sent (`SET #value = :value`); keep increments for a POST action that takes an Idempotency-Key. Guidance: which attribute and which body field are to be chosen.",
                                FixSafety::DisplayOnly,
                                "// update_expression(\"SET #value = :value\") with the value from the request body".into(),
                            )],
                        ));
                    }
                }
            }
        }
    }
    refute_and_attach(&mut findings, &handlers, &ops);
    crate::model::sort_findings(&mut findings);
    // The code's evidence first: a route's race before the document's gaps of its severity.
    findings.sort_by_key(|f| std::cmp::Reverse((f.severity, crate::rules::directness(&f.rule))));
    report.findings = findings;
    report.errors.extend(spec_report.errors);
    report.stats.operations = spec_report.stats.operations;
    report.stats.files += spec_report.stats.files;
    report.stats.lines += spec_report.stats.lines;
    report.stats.findings = report.findings.len() as u64;
    report.stats.errors = report.errors.len() as u64;
    report.stats.elapsed_ms = started.elapsed().as_millis() as u64;
    (report, ServiceFacts { ops, handlers })
}

/// What the code says about the contract's findings on its routes. A handler whose writes carry
/// no condition and race with nothing (an atomic `ADD`) cannot fail on a concurrent change: a
/// missing 409/412 there is refuted and drops to `info`, saying why. A route's source race
/// lists the contract findings on its operation, so they are read together.
fn refute_and_attach(findings: &mut [Finding], handlers: &[Handler], ops: &[OpFacts]) {
    let label_of = |h: &Handler| {
        ops.iter()
            .find(|o| o.method == h.route.method && normalize(&o.path) == normalize(&h.route.path))
            .map(|o| format!("{} {}", o.method, o.path))
    };
    let is_race =
        |f: &Finding| f.rule.starts_with("RC1") && f.severity > crate::model::Severity::Info;
    for h in handlers {
        let Some(label) = label_of(h) else { continue };
        let on_op = |f: &Finding| f.operation.as_deref() == Some(label.as_str());
        let races = findings.iter().any(|f| on_op(f) && is_race(f));
        if !races && !h.writes.is_empty() && h.writes.iter().all(|w| !w.conditioned) {
            let apis: Vec<&str> = h.writes.iter().map(|w| w.api).collect();
            for f in findings
                .iter_mut()
                .filter(|f| on_op(f) && f.rule == "RC202")
            {
                f.severity = crate::model::Severity::Info;
                f.message.push_str(&format!(
                    "; the code refutes it: `{}` writes only with unconditional requests ({}) that cannot fail on a concurrent change, so there is no conflict to answer",
                    h.function,
                    apis.join(", ")
                ));
                f.evidence.push(step(
                    StepKind::Note,
                    &h.location,
                    format!(
                        "`{}` handles it; none of its writes has a condition",
                        h.function
                    ),
                ));
            }
        }
        let contract: Vec<(String, crate::model::Location)> = findings
            .iter()
            .filter(|f| on_op(f) && f.rule.starts_with("RC2"))
            .map(|f| {
                (
                    format!("the contract of {label} also: {} {}", f.rule, f.slug),
                    f.location.clone(),
                )
            })
            .collect();
        for f in findings.iter_mut().filter(|f| on_op(f) && is_race(f)) {
            for (note, at) in &contract {
                f.evidence.push(step(StepKind::Note, at, note.clone()));
            }
        }
    }
}

/// A versioned, conditional put answered with 412 (a self-contained function).
fn version_fix(h: &Handler) -> crate::model::Fix {
    let spec = PutSpec {
        target: Target {
            table: None,
            key: vec![("id".into(), Ty::S, "id".into())],
            key_unknown: true,
            key_guessed: true,
        },
        condition: "#version = :expected_version".into(),
        names: vec![("#version".into(), "version".into())],
        values: vec![(
            ":expected_version".into(),
            Arg::Param("expected_version".into(), Ty::N),
        )],
        conflict: Conflict::PreconditionFailed,
    };
    fix::fix(
        "Write only if the stored version is the one the client sent",
        "Take `expected_version` from `If-Match`, store `version + 1` in the item, and answer a failed condition with 412. A sketch: `id` and `version` stand in for the item's key and version attribute, which the contract does not name.",
        FixSafety::DisplayOnly,
        fix::render_put(&format!("{}_if_match", fix::ident(h.function.rsplit("::").next().unwrap_or("write"))), "Puts `item` only if the stored version is still `expected_version`.", &spec),
    )
}

/// Record each idempotency key once, conditionally (a self-contained function).
fn key_fix(h: &Handler) -> crate::model::Fix {
    let spec = PutSpec {
        target: Target {
            table: None,
            key: vec![("key".into(), Ty::S, "key".into())],
            key_unknown: true,
            key_guessed: true,
        },
        condition: "attribute_not_exists(#key)".into(),
        names: vec![("#key".into(), "key".into())],
        values: vec![],
        conflict: Conflict::Conflict,
    };
    fix::fix(
        "Record the Idempotency-Key before doing the work",
        "Put the key (with the request's hash) on condition that it is new; on 409 return the stored outcome instead of repeating the change. A sketch: the table of keys and its `key` attribute are to be chosen.",
        FixSafety::DisplayOnly,
        fix::render_put(&format!("{}_claim_key", fix::ident(h.function.rsplit("::").next().unwrap_or("handler"))), "Claims an idempotency key; fails with 409 when it was used before.", &spec),
    )
}
