//! The contract rules over their fixtures. Every operation in a fixture says which rules it
//! must raise (`x-expect: [RC201]`), and the document how many RC290 errors it holds
//! (`x-expect-errors: N`). Expectations are read from the text (not through racecheck's
//! loader), so the test also checks that each finding points at its operation's line.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use racecheck::model::Report;
use racecheck::spec::{check, SpecInput};

const METHODS: &[&str] = &["get", "put", "post", "delete", "patch"];

/// (file, line of the operation's method key) -> expected rules.
fn expectations(files: &[PathBuf]) -> (BTreeMap<(String, u32), BTreeSet<String>>, usize) {
    let mut out = BTreeMap::new();
    let mut errors = 0;
    for f in files {
        let text = std::fs::read_to_string(f).unwrap();
        // A file that holds one operation (`post: {$ref: ops/archive.yaml}`) is that operation
        // from its first line.
        let mut current: Option<u32> = text
            .lines()
            .any(|l| l.trim_start().starts_with("responses:"))
            .then_some(1);
        if METHODS
            .iter()
            .any(|m| text.contains(&format!("\n{m}:")) || text.contains(&format!("  {m}:")))
        {
            current = None;
        }
        for (i, line) in text.lines().enumerate() {
            let t = line.trim();
            let key = t.trim_start_matches('"');
            if let Some(m) = METHODS
                .iter()
                .find(|m| key.starts_with(&format!("{m}:")) || key.starts_with(&format!("{m}\":")))
            {
                let _ = m;
                current = Some(i as u32 + 1);
            }
            if let Some(rest) = t.strip_prefix("x-expect-errors:") {
                errors = rest.trim().parse().unwrap();
            }
            let list = t
                .strip_prefix("x-expect:")
                .or_else(|| t.strip_prefix("\"x-expect\":"));
            if let Some(list) = list {
                let set: BTreeSet<String> = list
                    .trim()
                    .trim_end_matches(',')
                    .trim_matches(|c| c == '[' || c == ']')
                    .split(',')
                    .map(|s| s.trim().trim_matches('"').to_string())
                    .filter(|s| !s.is_empty())
                    .collect();
                let line = current.expect("x-expect outside an operation");
                out.insert((f.display().to_string(), line), set);
            }
        }
    }
    (out, errors)
}

fn render(report: &Report) -> String {
    let mut s = String::new();
    for f in &report.findings {
        s.push_str(&format!(
            "{} {} {}:{}:{} {} [{}] {}\n  {}\n",
            f.rule,
            f.slug,
            f.location.file,
            f.location.line,
            f.location.column,
            f.location.pointer.as_deref().unwrap_or(""),
            f.confidence.as_str(),
            f.operation.as_deref().unwrap_or("-"),
            f.message
        ));
        for e in &f.evidence {
            s.push_str(&format!("  {:?} {}\n", e.kind, e.note));
        }
        for x in &f.fixes {
            s.push_str(&format!(
                "  fix ({:?}): {} — {}\n",
                x.safety, x.title, x.explanation
            ));
            for line in x.snippet.lines() {
                s.push_str(&format!("    | {line}\n"));
            }
        }
    }
    for e in &report.errors {
        s.push_str(&format!("error {:?} {}: {}\n", e.kind, e.path, e.message));
    }
    s
}

fn run(root: &str, files: &[&str]) -> Report {
    let report = check(&SpecInput::Path(root.into()));
    assert!(report.errors.is_empty(), "{root}: {:?}", report.errors);
    let paths: Vec<PathBuf> = files.iter().map(PathBuf::from).collect();
    let (expected, expected_errors) = expectations(&paths);
    assert!(!expected.is_empty(), "{root} has no x-expect");
    let mut got: BTreeMap<(String, u32), BTreeSet<String>> = BTreeMap::new();
    let mut errors = 0;
    for f in &report.findings {
        if f.rule == "RC290" {
            errors += 1;
            continue;
        }
        // Files reached through `$ref` are shown as `dir/../x`; compare canonical paths.
        let file = std::fs::canonicalize(&f.location.file).unwrap();
        let key = expected
            .keys()
            .find(|(p, _)| std::fs::canonicalize(p).unwrap() == file)
            .map(|(p, _)| p.clone())
            .unwrap_or_else(|| f.location.file.clone());
        got.entry((key, f.location.line))
            .or_default()
            .insert(f.rule.clone());
    }
    let mut problems = vec![];
    for (at, rules) in &expected {
        let g = got.remove(at).unwrap_or_default();
        if &g != rules {
            problems.push(format!("{at:?}: expected {rules:?}, found {g:?}"));
        }
    }
    for (at, rules) in got {
        problems.push(format!("{at:?}: unexpected {rules:?}"));
    }
    if errors != expected_errors {
        problems.push(format!("expected {expected_errors} RC290, found {errors}"));
    }
    assert!(
        problems.is_empty(),
        "{root}:\n{}\n\n{}",
        problems.join("\n"),
        render(&report)
    );
    report
}

macro_rules! contract_tests {
    ($($name:ident => $root:literal $(, $extra:literal)*;)*) => {$(
        #[test]
        fn $name() {
            let report = run($root, &[$root $(, $extra)*]);
            insta::assert_snapshot!(stringify!($name), render(&report));
        }
    )*};
}

contract_tests! {
    rc201_missing_precondition => "tests/fixtures/contract/RC201.yaml";
    rc202_missing_conflict_response => "tests/fixtures/contract/RC202.yaml";
    rc203_missing_etag => "tests/fixtures/contract/RC203.yaml";
    rc204_missing_idempotency_key => "tests/fixtures/contract/RC204.json";
    rc205_non_idempotent_put => "tests/fixtures/contract/RC205.yaml";
    rc206_missing_version_in_update => "tests/fixtures/contract/RC206.yaml";
    rc207_no_rate_limit_documented => "tests/fixtures/contract/RC207.yaml";
    rc208_unauthenticated_mutation => "tests/fixtures/contract/RC208.yaml";
    openapi_3_1 => "tests/fixtures/contract/openapi31.yaml";
    multi_file_refs => "tests/fixtures/contract/multi/openapi.yaml", "tests/fixtures/contract/multi/paths/items.yaml";
    redocly_layout => "tests/fixtures/contract/redocly/openapi.yaml", "tests/fixtures/contract/redocly/paths/items.yaml", "tests/fixtures/contract/redocly/paths/item.yaml", "tests/fixtures/contract/redocly/paths/archive.yaml";
    rc290_broken_refs => "tests/fixtures/contract/refs_broken.yaml";
}

/// A document that cannot be read gives exactly one RC290 that says what and where.
#[test]
fn unreadable_documents() {
    let cases: &[(&str, &str, u32)] = &[
        ("malformed.yaml", "not valid YAML", 3),
        ("malformed.json", "not valid JSON", 4),
        ("not_openapi.yaml", "no top-level `openapi` field", 1),
        ("empty.yaml", "is empty", 1),
        ("swagger2.json", "Swagger 2.0", 1),
    ];
    for (file, words, line) in cases {
        let path = Path::new("tests/fixtures/contract").join(file);
        let report = check(&SpecInput::Path(path.clone()));
        assert_eq!(report.findings.len(), 1, "{file}: {}", render(&report));
        let f = &report.findings[0];
        assert_eq!(f.rule, "RC290", "{file}");
        assert!(f.message.contains(words), "{file}: {}", f.message);
        assert!(
            f.message.contains(file),
            "{file}: the message names the file: {}",
            f.message
        );
        assert_eq!(f.location.line, *line, "{file}: {}", f.message);
    }
    let report = check(&SpecInput::Path("tests/fixtures/contract/nope.yaml".into()));
    assert_eq!(report.errors.len(), 1);
    assert!(report.errors[0].message.contains("does not exist"));
}

/// Broken references name their chain.
#[test]
fn broken_refs_carry_their_chain() {
    let report = check(&SpecInput::Path(
        "tests/fixtures/contract/refs_broken.yaml".into(),
    ));
    let msgs: Vec<&str> = report
        .findings
        .iter()
        .filter(|f| f.rule == "RC290")
        .map(|f| f.message.as_str())
        .collect();
    assert!(msgs.iter().any(|m| m.contains("loops back")), "{msgs:?}");
    assert!(
        msgs.iter().any(|m| m.contains("points at nothing")),
        "{msgs:?}"
    );
    assert!(msgs.iter().any(|m| m.contains("nowhere.yaml")), "{msgs:?}");
    assert!(
        msgs.iter().any(|m| m.contains("remote reference")),
        "{msgs:?}"
    );
    let cycle = report
        .findings
        .iter()
        .find(|f| f.message.contains("loops back"))
        .unwrap();
    assert!(
        cycle.evidence.len() >= 2,
        "the chain is listed: {:?}",
        cycle.evidence
    );
    assert!(cycle
        .location
        .pointer
        .as_deref()
        .unwrap()
        .ends_with("/$ref"));
}

/// Inline content resolves relative references against `base_dir`.
#[test]
fn inline_content_with_base_dir() {
    let content = std::fs::read_to_string("tests/fixtures/contract/multi/openapi.yaml").unwrap();
    let report = check(&SpecInput::Inline {
        content: content.clone(),
        base_dir: Some("tests/fixtures/contract/multi".into()),
    });
    let rules: Vec<&str> = report.findings.iter().map(|f| f.rule.as_str()).collect();
    assert_eq!(rules, vec!["RC201"], "{}", render(&report));
    let report = check(&SpecInput::Inline {
        content,
        base_dir: None,
    });
    assert!(report
        .findings
        .iter()
        .any(|f| f.rule == "RC290" && f.message.contains("base directory")));
}

/// One cause, one finding: GETs that answer with one shared response lacking `ETag` get one
/// RC203 at that response, listing them; a GET with its own response keeps its own finding.
#[test]
fn a_gap_in_a_shared_component_is_one_finding() {
    let mut paths = String::new();
    for r in ["a", "b", "c"] {
        paths.push_str(&format!(
            "  /{r}/{{id}}:\n    parameters: [{{name: id, in: path, required: true, schema: {{type: string}}}}]\n    get:\n      responses: {{'200': {{$ref: '#/components/responses/Thing'}}}}\n    put:\n      parameters: [{{name: If-Match, in: header, required: true, schema: {{type: string}}}}]\n      responses: {{'200': {{description: ok}}, '412': {{description: stale}}, '429': {{description: slow}}}}\n"
        ));
    }
    paths.push_str("  /own/{id}:\n    parameters: [{name: id, in: path, required: true, schema: {type: string}}]\n    get:\n      responses: {'200': {description: its own}}\n    put:\n      parameters: [{name: If-Match, in: header, required: true, schema: {type: string}}]\n      responses: {'200': {description: ok}, '412': {description: stale}, '429': {description: slow}}\n");
    let content = format!(
        "openapi: 3.0.3\ninfo: {{title: t, version: '1'}}\nsecurity: [{{k: []}}]\npaths:\n{paths}components:\n  securitySchemes:\n    k: {{type: http, scheme: bearer}}\n  responses:\n    Thing:\n      description: a thing\n"
    );
    let report = check(&SpecInput::Inline {
        content,
        base_dir: None,
    });
    let etag: Vec<_> = report
        .findings
        .iter()
        .filter(|f| f.rule == "RC203")
        .collect();
    assert_eq!(etag.len(), 2, "{}", render(&report));
    let shared = etag.iter().find(|f| f.operation.is_none()).unwrap();
    assert!(
        shared.message.contains("`Thing`") && shared.message.contains("3 GETs"),
        "{}",
        shared.message
    );
    assert_eq!(
        shared.location.pointer.as_deref(),
        Some("#/components/responses/Thing")
    );
    assert!(shared.fixes[0].snippet.contains("ETag"));
    let own = etag.iter().find(|f| f.operation.is_some()).unwrap();
    assert_eq!(own.operation.as_deref(), Some("GET /own/{id}"));
}
