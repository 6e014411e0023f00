//! SARIF 2.1.0, for code-scanning dashboards.

use serde_json::{json, Value};

use crate::model::{Report, Severity};

fn level(s: Severity) -> &'static str {
    match s {
        Severity::Critical | Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low | Severity::Info => "note",
    }
}

pub fn render(report: &Report) -> String {
    let rules: Vec<Value> = crate::rules::all()
        .map(|r| {
            json!({
                "id": r.id,
                "name": r.slug,
                "shortDescription": {"text": r.summary},
                "fullDescription": {"text": r.doc()},
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
                            "artifactLocation": {"uri": e.file},
                            "region": {"startLine": e.line, "startColumn": e.column},
                        }
                    })
                })
                .collect();
            json!({
                "ruleId": f.rule,
                "level": level(f.severity),
                "message": {"text": f.message},
                "locations": [{
                    "physicalLocation": {
                        "artifactLocation": {"uri": f.location.file},
                        "region": {
                            "startLine": f.location.line,
                            "startColumn": f.location.column,
                            "endLine": f.location.end_line,
                            "endColumn": f.location.end_column,
                        }
                    }
                }],
                "relatedLocations": related,
                "properties": {
                    "confidence": f.confidence.as_str(),
                    "fixes": f.fixes.iter().map(|x| json!({"title": x.title, "snippet": x.snippet})).collect::<Vec<_>>(),
                },
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
                    "artifactLocation": {"uri": e.path},
                    "region": {"startLine": e.line.unwrap_or(1)},
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
            "results": results,
            "invocations": [{
                "executionSuccessful": report.errors.is_empty(),
                "toolExecutionNotifications": notifications,
            }],
        }]
    });
    serde_json::to_string_pretty(&doc).unwrap_or_default()
}
