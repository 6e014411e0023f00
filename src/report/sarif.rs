//! SARIF 2.1.0, for code-scanning dashboards: relative paths under `%SRCROOT%`, fingerprints
//! that survive moved lines, the read/check/write as related locations, rule help in
//! Markdown, fixes with their edits as `artifactChanges`.

use serde_json::{json, Value};

use crate::model::{Report, Severity};

fn level(s: Severity) -> &'static str {
    match s {
        Severity::Critical | Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low | Severity::Info => "note",
    }
}

/// Where a file is: relative to the scanned root (`%SRCROOT%`), or an absolute `file://` URI.
fn artifact(path: &str) -> Value {
    let p = path.replace('\\', "/");
    let rel = p.trim_start_matches("./");
    if rel.starts_with('/') {
        json!({"uri": format!("file://{}", uri_escape(rel))})
    } else {
        json!({"uri": uri_escape(rel), "uriBaseId": "%SRCROOT%"})
    }
}

/// Percent-encode what a URI reference may not hold as is.
fn uri_escape(p: &str) -> String {
    let mut out = String::new();
    for b in p.bytes() {
        if b.is_ascii_alphanumeric() || b"/-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A fix with edits as SARIF `fixes`: one `artifactChange` per file, its edits as
/// `replacements` (an insertion deletes an empty region).
fn fix(x: &crate::model::Fix) -> Value {
    let mut files: Vec<&str> = x.edits.iter().map(|e| e.file.as_str()).collect();
    files.dedup();
    let changes: Vec<Value> = files
        .iter()
        .map(|file| {
            let replacements: Vec<Value> = x
                .edits
                .iter()
                .filter(|e| e.file == *file)
                .map(|e| {
                    json!({
                        "deletedRegion": {
                            "startLine": e.line.max(1),
                            "startColumn": e.column.max(1),
                            "endLine": e.end_line.max(1),
                            "endColumn": e.end_column.max(1),
                        },
                        "insertedContent": {"text": e.new_text},
                    })
                })
                .collect();
            json!({"artifactLocation": artifact(file), "replacements": replacements})
        })
        .collect();
    json!({
        "description": {"text": format!("{} ({})", x.title, x.safety.as_str())},
        "artifactChanges": changes,
    })
}

pub fn render(report: &Report) -> String {
    let rules: Vec<Value> = crate::rules::all()
        .map(|r| {
            json!({
                "id": r.id,
                "name": r.slug,
                "shortDescription": {"text": r.summary},
                "fullDescription": {"text": r.summary},
                "help": {"text": r.doc(), "markdown": r.doc()},
                "defaultConfiguration": {"level": level(r.severity)},
            })
        })
        .collect();
    let results: Vec<Value> = report
        .findings
        .iter()
        .map(|f| {
            let related: Vec<Value> = f
                .evidence
                .iter()
                .enumerate()
                .map(|(i, e)| {
                    json!({
                        "id": i,
                        "message": {"text": e.note},
                        "physicalLocation": {
                            "artifactLocation": artifact(&e.file),
                            "region": {"startLine": e.line.max(1), "startColumn": e.column.max(1)},
                        }
                    })
                })
                .collect();
            let mut properties = json!({
                "confidence": f.confidence.as_str(),
                "fixes": f.fixes.iter().map(|x| json!({"title": x.title, "snippet": x.snippet})).collect::<Vec<_>>(),
            });
            let mut message = f.message.clone();
            if let Some(a) = &f.assumed {
                message.push_str(&format!(
                    " [assumed by {}:{}: {}]",
                    a.file, a.line, a.fact
                ));
                properties["assumed"] = json!({
                    "fact": a.fact,
                    "file": a.file,
                    "line": a.line,
                    "severity": a.severity.as_str(),
                });
            }
            json!({
                "ruleId": f.rule,
                "level": level(f.severity),
                "message": {"text": message},
                "locations": [{
                    "physicalLocation": {
                        "artifactLocation": artifact(&f.location.file),
                        "region": {
                            "startLine": f.location.line.max(1),
                            "startColumn": f.location.column.max(1),
                            "endLine": f.location.end_line.max(f.location.line).max(1),
                            "endColumn": f.location.end_column.max(1),
                        }
                    }
                }],
                "relatedLocations": related,
                "fixes": f.fixes.iter().filter(|x| !x.edits.is_empty()).map(fix).collect::<Vec<_>>(),
                "partialFingerprints": {"racecheck/v1": f.compute_fingerprint()},
                "properties": properties,
            })
        })
        .collect();
    let notifications: Vec<Value> = report
        .errors
        .iter()
        .map(|e| {
            json!({
                "level": "error",
                "message": {"text": e.message},
                "locations": [{"physicalLocation": {
                    "artifactLocation": artifact(&e.path),
                    "region": {"startLine": e.line.unwrap_or(1).max(1)},
                }}],
            })
        })
        .collect();
    let doc = json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "racecheck",
                "version": env!("CARGO_PKG_VERSION"),
                "rules": rules,
            }},
            "columnKind": "unicodeCodePoints",
            "results": results,
            "invocations": [{
                "executionSuccessful": report.errors.is_empty(),
                "toolExecutionNotifications": notifications,
            }],
            // Findings that facts declared in racecheck.toml lowered to notes.
            "properties": {"assumed": report.stats.assumed},
        }]
    });
    serde_json::to_string_pretty(&doc).unwrap_or_default()
}
