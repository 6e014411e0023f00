//! Contract analysis: load an OpenAPI document (3.0 or 3.1, YAML or JSON, references into
//! other files followed), validate it with `openapiv3`, build the operation model, and run the
//! contract rules.

pub mod doc;
pub mod model;
pub mod normalize;
pub mod refs;
pub mod sample;
pub mod yaml;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use serde_json::Value;

use crate::model::{
    AnalysisError, Confidence, ErrorKind, EvidenceStep, Finding, Location, Report, StepKind,
};
use crate::rules::contract::{self, spec_error, SpecCandidate, SpecCtx};
use doc::Doc;
use refs::Docs;

/// The document to check.
#[derive(Clone, Debug)]
pub enum SpecInput {
    Path(PathBuf),
    /// YAML or JSON text; relative `$ref`s resolve against `base_dir`.
    Inline {
        content: String,
        base_dir: Option<PathBuf>,
    },
}

/// Documents (and each file a `$ref` reaches) larger than this are not read: the largest
/// public API documents are a few MiB.
pub const MAX_SPEC_BYTES: u64 = 32 * 1024 * 1024;

/// A problem with the document itself (RC290), located by line/column and pointer.
struct Problem {
    file: String,
    line: u32,
    column: u32,
    pointer: Option<String>,
    message: String,
    chain: Vec<String>,
}

fn problem_finding(p: Problem) -> Finding {
    let mut evidence = vec![];
    for (i, step) in p.chain.iter().enumerate() {
        evidence.push(EvidenceStep {
            kind: StepKind::Note,
            file: p.file.clone(),
            line: p.line,
            column: p.column,
            note: format!("{}. $ref {step}", i + 1),
        });
    }
    Finding {
        evidence,
        ..spec_error::RULE.finding(
            Confidence::High,
            p.message,
            Location {
                file: p.file,
                line: p.line,
                column: p.column,
                end_line: p.line,
                end_column: p.column,
                pointer: p.pointer.map(|x| format!("#{x}")),
            },
        )
    }
}

fn error(kind: ErrorKind, path: &str, message: String) -> Report {
    Report::failed(AnalysisError::new(kind, path, message))
}

/// Check an OpenAPI document. Never panics: unreadable inputs are `errors`, documents that
/// cannot be read as OpenAPI are RC290 findings with their position.
pub fn check(input: &SpecInput) -> Report {
    check_with_ops(input).0
}

/// What `audit` needs of each operation.
#[derive(Clone, Debug)]
pub struct OpFacts {
    /// Upper-case method.
    pub method: String,
    pub path: String,
    pub location: crate::model::Location,
    /// A required `If-Match`/version, or a documented 412.
    pub requires_precondition: bool,
    /// An idempotency-key header parameter.
    pub idempotency_key: bool,
    /// A request body to send: the document's example, else one made from the schema.
    pub body: Option<serde_json::Value>,
    /// Top-level properties of the first 2xx JSON response, as written.
    pub response_props: Vec<String>,
    /// Documented examples of path parameters.
    pub param_examples: std::collections::BTreeMap<String, String>,
}

/// [`check`], plus the operations (for `audit`).
pub fn check_with_ops(input: &SpecInput) -> (Report, Vec<OpFacts>) {
    let started = Instant::now();
    let (shown, text, dir, project) = match load_input(input) {
        Ok(x) => x,
        Err(r) => return (*r, vec![]),
    };
    let (mut report, ops) = match crate::isolate(|| check_text(shown.clone(), &text, dir, project)) {
        Ok(r) => r,
        Err(panic) => (
            error(
                ErrorKind::Invalid,
                &shown,
                format!("`{shown}` was not checked: racecheck hit an internal error ({panic}); please report it with this file"),
            ),
            vec![],
        ),
    };
    report.stats.elapsed_ms = started.elapsed().as_millis() as u64;
    (report, ops)
}

/// The document's name, text, folder and the project its references may reach.
type Loaded = (Arc<str>, String, Option<PathBuf>, Option<PathBuf>);

fn load_input(input: &SpecInput) -> Result<Loaded, Box<Report>> {
    Ok(match input {
        SpecInput::Path(p) => {
            let shown = p.display().to_string();
            let bytes = match crate::read_limited(p, MAX_SPEC_BYTES) {
                Ok(b) => b,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Err(Box::new(error(
                        ErrorKind::NotFound,
                        &shown,
                        format!("`{shown}` does not exist; pass an OpenAPI file (YAML or JSON)"),
                    )))
                }
                Err(e) => {
                    return Err(Box::new(error(
                        ErrorKind::of_io(&e),
                        &shown,
                        format!("cannot read `{shown}`: {e}"),
                    )));
                }
            };
            let Ok(text) = String::from_utf8(bytes) else {
                return Err(Box::new(error(
                    ErrorKind::NotUtf8,
                    &shown,
                    format!("`{shown}` is not valid UTF-8"),
                )));
            };
            let dir = p.parent().map(|d| {
                if d.as_os_str().is_empty() {
                    PathBuf::from(".")
                } else {
                    d.to_path_buf()
                }
            });
            let project = dir.as_deref().map(crate::project_of);
            (Arc::from(shown.as_str()), text, dir, project)
        }
        SpecInput::Inline { content, base_dir } => (
            Arc::from("openapi (inline)"),
            content.clone(),
            base_dir.clone(),
            base_dir
                .as_deref()
                .and_then(|d| std::fs::canonicalize(d).ok()),
        ),
    })
}

fn check_text(
    shown: Arc<str>,
    text: &str,
    dir: Option<PathBuf>,
    project: Option<PathBuf>,
) -> (Report, Vec<OpFacts>) {
    let lines = text.lines().count() as u64;
    let mut findings = vec![];
    let at_top = |message: String| Problem {
        file: shown.to_string(),
        line: 1,
        column: 1,
        pointer: None,
        message,
        chain: vec![],
    };
    let t = Instant::now();
    let mut root = match Doc::parse(shown.clone(), text) {
        Ok(d) => d,
        Err(e) => {
            let mut p = at_top(e.message);
            p.line = e.line.unwrap_or(1);
            p.column = e.column.unwrap_or(1);
            return (finish(vec![problem_finding(p)], 1, lines, 0), vec![]);
        }
    };
    let kind = match &root.value {
        Value::Object(m) if m.contains_key("swagger") => Err(format!(
            "`{shown}` is Swagger {}; racecheck reads OpenAPI 3.0 and 3.1. Convert it (e.g. `npx swagger2openapi {shown}`) and check the result",
            m["swagger"].as_str().unwrap_or("2.0")
        )),
        Value::Object(m) => match m.get("openapi").and_then(Value::as_str) {
            Some(v) if v.starts_with("3.0") => Ok(false),
            Some(v) if v.starts_with("3.1") => Ok(true),
            Some(v) => Err(format!("`{shown}` says `openapi: {v}`; racecheck reads OpenAPI 3.0 and 3.1")),
            None => Err(format!(
                "`{shown}` is not an OpenAPI document: it has no top-level `openapi` field (it has {})",
                m.keys().take(5).map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ")
            )),
        },
        _ => Err(format!("`{shown}` is not an OpenAPI document: its top level is not a mapping")),
    };
    let is_31 = match kind {
        Ok(v) => v,
        Err(message) => {
            return (
                finish(vec![problem_finding(at_top(message))], 1, lines, 0),
                vec![],
            )
        }
    };
    if is_31 {
        normalize::to_3_0(&mut root.value);
    }
    let format = root.format;
    let mut docs = Docs::new(root, dir, project);

    tracing::debug!(ms = t.elapsed().as_millis() as u64, "spec parsed");
    // Every reference in every document reached, followed to its end.
    let mut problems: Vec<Problem> = vec![];
    // One finding per broken thing; the other references to it are counted in its message.
    let mut seen_keys: Vec<(String, usize, usize)> = vec![];
    let mut checked = 0;
    while checked < docs.docs.len() {
        let d = &docs.docs[checked];
        for dup in &d.duplicates {
            problems.push(Problem {
                file: d.path.to_string(),
                line: dup.second.0,
                column: dup.second.1,
                pointer: Some(dup.pointer.clone()),
                message: format!(
                    "`#{}` is given twice, at line {} and again at line {}: parsers keep only the second, so the first is silently lost; merge them or rename one",
                    dup.pointer, dup.first.0, dup.second.0
                ),
                chain: vec![],
            });
        }
        let mut found = vec![];
        refs::all_refs(&docs.docs[checked].value, &mut String::new(), &mut found);
        for (at, reference) in found {
            if let Err(e) = docs.resolve(checked, &reference) {
                if let Some(k) = seen_keys.iter_mut().find(|k| k.0 == e.key) {
                    k.2 += 1;
                    continue;
                }
                seen_keys.push((e.key.clone(), problems.len(), 0));
                let d = &docs.docs[checked];
                let (line, column) = d.position(&at);
                problems.push(Problem {
                    file: d.path.to_string(),
                    line,
                    column,
                    pointer: Some(format!("{at}/$ref")),
                    message: format!("unresolved `$ref: {reference}` at `#{at}`: {}", e.message),
                    chain: e.chain,
                });
            }
        }
        checked += 1;
    }

    problems.extend(foreign_path_items(&docs));
    tracing::debug!(ms = t.elapsed().as_millis() as u64, "refs checked");
    // The structure, as OpenAPI 3.0 (3.1 normalised).
    if let Err(e) = check_structure(&docs) {
        let pointer: String = e
            .path()
            .iter()
            .map(|seg| format!("/{}", doc::escape(&seg.to_string())))
            .collect();
        let (line, column) = docs.docs[0].position(&pointer);
        problems.push(Problem {
            file: shown.to_string(),
            line,
            column,
            pointer: Some(pointer.clone()),
            message: format!(
                "`#{pointer}` is not valid OpenAPI 3.0{}: {}",
                if is_31 {
                    " (after reading 3.1 as 3.0)"
                } else {
                    ""
                },
                e.inner()
            ),
            chain: vec![],
        });
    }
    for (_, at, others) in seen_keys {
        if others > 0 {
            problems[at].message.push_str(&format!(
                " ({others} other reference(s) run into the same problem)"
            ));
        }
    }
    findings.extend(problems.into_iter().map(problem_finding));

    tracing::debug!(ms = t.elapsed().as_millis() as u64, "structure validated");
    let model = model::build(&docs, format);
    tracing::debug!(ms = t.elapsed().as_millis() as u64, "model built");
    let ctx = SpecCtx {
        model: &model,
        docs: &docs,
    };
    let mut cands: Vec<SpecCandidate> = vec![];
    contract::run(&ctx, &mut cands);
    for c in cands {
        let base = c.rule.finding(
            c.confidence,
            c.message,
            docs.docs[c.doc].location(&c.pointer),
        );
        findings.push(Finding {
            operation: c.operation,
            evidence: c.evidence,
            fixes: c.fixes,
            severity: c.severity.unwrap_or(base.severity),
            ..base
        });
    }
    let files = docs.docs.len() as u64;
    let ops = model
        .ops
        .iter()
        .map(|op| OpFacts {
            method: op.method.to_uppercase(),
            path: op.path.clone(),
            location: docs.docs[op.doc].location(&op.pointer),
            requires_precondition: contract::has_precondition(op) || op.has_response(&["412"]),
            idempotency_key: contract::has_idempotency_key(op),
            body: sample::body_of(&docs, op),
            response_props: sample::response_props(&docs, op),
            param_examples: sample::param_examples(&docs, op),
        })
        .collect();
    (finish(findings, files, lines, model.ops.len() as u64), ops)
}

/// Path items whose `$ref` resolves to something that is not a path item (another kind of
/// file, a schema): their operations would otherwise vanish without a word.
fn foreign_path_items(docs: &Docs) -> Vec<Problem> {
    const FIELDS: &[&str] = &[
        "get",
        "put",
        "post",
        "delete",
        "options",
        "head",
        "patch",
        "trace",
        "summary",
        "description",
        "servers",
        "parameters",
        "$ref",
    ];
    let mut out = vec![];
    let Some(Value::Object(paths)) = docs.docs[0].value.get("paths") else {
        return out;
    };
    for (path, item) in paths {
        let Some(reference) = item.get("$ref").and_then(Value::as_str) else {
            continue;
        };
        let Some((doc, pointer)) = docs.resolve_loaded(0, reference) else {
            continue; // reported as unresolved
        };
        let target = docs.get(doc, &pointer);
        let foreign: Vec<String> = match target {
            Some(Value::Object(m)) => m
                .keys()
                .filter(|k| !FIELDS.contains(&k.as_str()) && !k.starts_with("x-"))
                .map(|k| format!("`{k}`"))
                .collect(),
            _ => vec!["no mapping".into()],
        };
        if foreign.is_empty() {
            continue;
        }
        let at = format!("/paths/{}", doc::escape(path));
        let (line, column) = docs.docs[0].position(&at);
        out.push(Problem {
            file: docs.docs[0].path.to_string(),
            line,
            column,
            pointer: Some(format!("{at}/$ref")),
            message: format!(
                "the path item `{path}` is `$ref: {reference}`, which is not a path item (it has {}; a path item has get, put, post, delete, patch, parameters, ...): its operations are not checked",
                foreign.into_iter().take(5).collect::<Vec<_>>().join(", ")
            ),
            chain: vec![],
        });
    }
    out
}

fn finish(mut findings: Vec<Finding>, files: u64, lines: u64, operations: u64) -> Report {
    crate::model::sort_findings(&mut findings);
    Report {
        stats: crate::model::Stats {
            files,
            lines,
            operations,
            findings: findings.len() as u64,
            ..Default::default()
        },
        findings,
        errors: vec![],
        probe: None,
    }
}

/// `$ref`s inlined at most while checking the structure, past the known places.
const MAX_INLINED: usize = 64;

/// Check the root document against OpenAPI 3.0 with JSON Reference semantics: a `$ref` where
/// OpenAPI itself allows none (a whole `components/parameters` map, a description in a Markdown
/// file) stands for what it names, as Redocly and Spectral read it.
fn check_structure(docs: &Docs) -> Result<(), serde_path_to_error::Error<serde_json::Error>> {
    let root = &docs.docs[0].value;
    let first = serde_path_to_error::deserialize::<_, openapiv3::OpenAPI>(root);
    let Err(mut error) = first.map(drop) else {
        return Ok(());
    };
    let mut view = root.clone();
    inline_known(docs, &mut view, &mut String::new(), 0);
    for _ in 0..=MAX_INLINED {
        match serde_path_to_error::deserialize::<_, openapiv3::OpenAPI>(&view) {
            Ok(_) => return Ok(()),
            Err(e) => {
                let pointer: String = e
                    .path()
                    .iter()
                    .map(|seg| format!("/{}", doc::escape(&seg.to_string())))
                    .collect();
                error = e;
                let Some((at, ..)) = refs::ref_on_the_way(&view, &pointer) else {
                    break;
                };
                if !inline_at(docs, &mut view, &at) {
                    break;
                }
            }
        }
    }
    Err(error)
}

/// Replace the `$ref` object at `at` by what it names.
fn inline_at(docs: &Docs, view: &mut Value, at: &str) -> bool {
    let Some(slot) = view.pointer_mut(at) else {
        return false;
    };
    let Some(target) = inlined(docs, slot) else {
        return false;
    };
    *slot = target;
    true
}

/// What a `$ref` object (found in the root, or already made absolute) names, its own
/// references made absolute; `None` for anything else.
fn inlined(docs: &Docs, v: &Value) -> Option<Value> {
    let reference = v.get("$ref").and_then(Value::as_str)?;
    let (d, fragment) = docs.resolve_loaded(0, reference)?;
    let mut target = docs.get(d, &fragment)?.clone();
    absolutize(docs, d, &mut target);
    Some(target)
}

/// Make every `$ref` inside a value taken from document `d` resolve from the root.
fn absolutize(docs: &Docs, d: refs::DocId, v: &mut Value) {
    match v {
        Value::Object(m) => {
            for (k, x) in m.iter_mut() {
                match x {
                    Value::String(r) if k == "$ref" => {
                        if let Some(abs) = docs.absolute(d, r) {
                            *r = abs;
                        }
                    }
                    _ => absolutize(docs, d, x),
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| absolutize(docs, d, x)),
        _ => {}
    }
}

/// Inline the `$ref`s OpenAPI never allows, in one pass: in a `description` or `summary`, for
/// a whole map (of `components`, `properties`, `responses`...), and for an operation of a
/// path item.
fn inline_known(docs: &Docs, v: &mut Value, at: &mut String, depth: usize) {
    if depth > 64 {
        return;
    }
    let Value::Object(m) = v else {
        if let Value::Array(a) = v {
            for (i, x) in a.iter_mut().enumerate() {
                let len = at.len();
                at.push_str(&format!("/{i}"));
                inline_known(docs, x, at, depth + 1);
                at.truncate(len);
            }
        }
        return;
    };
    let keys: Vec<String> = m.keys().cloned().collect();
    for k in keys {
        let len = at.len();
        at.push('/');
        at.push_str(&doc::escape(&k));
        let whole_map = len == "/components".len() && at.starts_with("/components/");
        // `get: {$ref: ./ops/list.yml}`: an operation kept in its own file.
        let operation = at.starts_with("/paths/")
            && at.matches('/').count() == 3
            && [
                "get", "put", "post", "delete", "patch", "options", "head", "trace",
            ]
            .contains(&k.as_str());
        // A whole map kept in its own file (`properties: {$ref: ./attrs.yml}`): OpenAPI reads
        // `$ref` there as one more entry. Inlining a `$ref` is what JSON Reference means, so
        // doing it where OpenAPI would have followed it anyway changes nothing.
        let map = [
            "properties",
            "responses",
            "headers",
            "content",
            "links",
            "callbacks",
            "examples",
            "encoding",
            "variables",
            "securitySchemes",
        ]
        .contains(&k.as_str());
        let inline = k == "description" || k == "summary" || whole_map || operation || map;
        if let Some(x) = m.get_mut(&k) {
            if let Some(t) = inline.then(|| inlined(docs, x)).flatten() {
                *x = t;
            }
            inline_known(docs, x, at, depth + 1);
        }
        at.truncate(len);
    }
}
