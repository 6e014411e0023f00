//! Answers sized for an assistant: on a 300-operation document, a 200-file workspace and an
//! audit of both, every default MCP answer fits in 20,000 characters (structured and text
//! content together), leads with the most severe findings, and paging with the cursor visits
//! every finding the CLI reports exactly once.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use serde_json::{json, Value};

use common::McpServer as Server;

fn key(f: &Value) -> String {
    let l = &f["location"];
    format!(
        "{}|{}|{}|{}|{}",
        f["rule"], l["file"], l["line"], l["column"], f["message"]
    )
}

/// Severity, then how direct the evidence is (probe, code, correlation, document), then
/// confidence: the order answers give findings in.
fn rank(f: &Value) -> (u8, u8, u8) {
    let family = match f["rule"].as_str().unwrap().get(..3) {
        Some("RC4") => 3,
        Some("RC1") => 2,
        Some("RC3") => 1,
        _ => 0,
    };
    let s = match f["severity"].as_str().unwrap() {
        "critical" => 4,
        "high" => 3,
        "medium" => 2,
        "low" => 1,
        _ => 0,
    };
    let c = match f["confidence"].as_str().unwrap() {
        "high" => 2,
        "medium" => 1,
        _ => 0,
    };
    (s, family, c)
}

/// Page through one tool's answers; returns every finding seen, checking each answer's size
/// and order on the way.
fn pages(s: &mut Server, tool: &str, args: Value) -> (Vec<Value>, u64, usize) {
    let (mut seen, mut cursor, mut answers) = (vec![], None::<String>, 0);
    let mut total;
    loop {
        let mut a = args.clone();
        if let Some(c) = &cursor {
            a["cursor"] = json!(c);
        }
        let r = s.request("tools/call", json!({"name": tool, "arguments": a}));
        let text: usize = r["content"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["text"].as_str().unwrap().chars().count())
            .sum();
        let structured = r["structuredContent"].to_string().chars().count();
        assert!(
            text + structured <= 20_000,
            "{tool}: an answer of {} characters",
            text + structured
        );
        let sc = &r["structuredContent"];
        total = sc["summary"]["total"].as_u64().unwrap();
        let found = sc["findings"].as_array().unwrap();
        let ranks: Vec<(u8, u8, u8)> = found.iter().map(rank).collect();
        assert!(
            ranks.windows(2).all(|w| w[0] >= w[1]),
            "{tool}: most severe first"
        );
        seen.extend(found.iter().cloned());
        answers += 1;
        match sc["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    (seen, total, answers)
}

fn cli(args: &[&str]) -> Vec<Value> {
    let out = Command::new(env!("CARGO_BIN_EXE_racecheck"))
        .args(args)
        .args(["--format", "json"])
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v["findings"].as_array().unwrap().clone()
}

fn same_once(tool: &str, seen: &[Value], all: &[Value]) {
    let mut a: BTreeMap<String, usize> = BTreeMap::new();
    for f in seen {
        *a.entry(key(f)).or_default() += 1;
    }
    assert!(a.values().all(|n| *n == 1), "{tool}: a finding shown twice");
    let b: BTreeMap<String, usize> = all.iter().map(|f| (key(f), 1)).collect();
    assert_eq!(a, b, "{tool}: paging shows what the CLI reports");
}

fn write_service(dir: &Path) {
    let mut paths = String::new();
    for i in 0..100 {
        paths.push_str(&format!(
            "  /r{i}:\n    post:\n      responses: {{'201': {{description: ok}}}}\n  /r{i}/{{id}}:\n    parameters: [{{name: id, in: path, required: true, schema: {{type: string}}}}]\n    get:\n      responses: {{'200': {{description: ok}}}}\n    put:\n      responses: {{'200': {{description: ok}}}}\n"
        ));
    }
    std::fs::write(
        dir.join("openapi.yaml"),
        format!("openapi: 3.0.3\ninfo: {{title: big, version: '1'}}\npaths:\n{paths}"),
    )
    .unwrap();
    std::fs::create_dir_all(dir.join("src")).unwrap();
    for i in 0..200 {
        std::fs::write(
            dir.join(format!("src/h{i}.rs")),
            format!(
                "use aws_sdk_dynamodb::{{types::AttributeValue, Client}};\n\n\
                 pub async fn bump{i}(db: &Client, id: String) -> Result<(), String> {{\n\
                 \x20   let out = db.get_item().table_name(\"t\").key(\"id\", AttributeValue::S(id.clone())).send().await.map_err(|e| e.to_string())?;\n\
                 \x20   let n: i64 = out.item().and_then(|i| i.get(\"n\")).and_then(|v| v.as_n().ok()).and_then(|s| s.parse().ok()).unwrap_or(0);\n\
                 \x20   db.put_item().table_name(\"t\").item(\"id\", AttributeValue::S(id)).item(\"n\", AttributeValue::N((n + 1).to_string())).send().await.map_err(|e| e.to_string())?;\n\
                 \x20   Ok(())\n}}\n"
            ),
        )
        .unwrap();
    }
}

#[test]
fn default_answers_fit_and_the_cursor_visits_every_finding_once() {
    let dir = tempfile::tempdir().unwrap();
    write_service(dir.path());
    let spec = dir.path().join("openapi.yaml");
    let src = dir.path().join("src");
    let mut s = Server::ready();

    let (seen, total, answers) = pages(&mut s, "validate_openapi", json!({"path": spec}));
    // 200 mutating operations without preconditions or idempotency keys (one finding each);
    // no 429 and no security anywhere in the document (one finding each, for the whole of it).
    assert!(
        total >= 202 && answers > 1,
        "{total} findings in {answers} answers"
    );
    for rule in ["RC207", "RC208"] {
        let grouped: Vec<&Value> = seen.iter().filter(|f| f["rule"] == rule).collect();
        assert_eq!(grouped.len(), 1, "{rule}: {grouped:?}");
        assert!(grouped[0]["operation"].is_null(), "{:?}", grouped[0]);
        let message = grouped[0]["message"].as_str().unwrap();
        assert!(message.contains("200 mutating operations"), "{message}");
    }
    same_once(
        "validate_openapi",
        &seen,
        &cli(&["spec", spec.to_str().unwrap()]),
    );

    let (seen, total, answers) = pages(&mut s, "analyze_source", json!({"path": src}));
    assert!(
        total >= 200 && answers > 1,
        "{total} findings in {answers} answers"
    );
    same_once(
        "analyze_source",
        &seen,
        &cli(&["scan", src.to_str().unwrap()]),
    );

    let (seen, total, _) = pages(&mut s, "audit_service", json!({"path": dir.path()}));
    assert!(total > 400, "{total}");
    same_once(
        "audit_service",
        &seen,
        &cli(&["audit", dir.path().to_str().unwrap()]),
    );

    // Filters narrow the same result; a limit cuts an answer short.
    let r = s.request(
        "tools/call",
        json!({"name": "validate_openapi", "arguments": {"path": spec, "min_severity": "medium", "limit": 3}}),
    );
    let sc = &r["structuredContent"];
    assert_eq!(sc["findings"].as_array().unwrap().len(), 3);
    assert!(sc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .all(|f| rank(f).0 >= 2));
    let high = sc["summary"]["total"].as_u64().unwrap();
    assert!(high > 0 && high < total, "{high}");
    let r = s.request(
        "tools/call",
        json!({"name": "analyze_source", "arguments": {"path": src, "filter": "h17.rs", "detail": true}}),
    );
    let found = r["structuredContent"]["findings"].as_array().unwrap();
    assert_eq!(found.len(), 1, "{r}");
    assert!(!found[0]["fixes"][0]["snippet"].as_str().unwrap().is_empty());

    // On the demo service the code's races lead the answer, before the document's gaps of
    // the same severity; whole-document policies come once.
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("tools/demo-service");
    let r = s.request(
        "tools/call",
        json!({"name": "audit_service", "arguments": {"path": demo}}),
    );
    let found = r["structuredContent"]["findings"].as_array().unwrap();
    let rules: Vec<&str> = found.iter().map(|f| f["rule"].as_str().unwrap()).collect();
    assert!(rules.len() > 5, "{rules:?}");
    assert!(rules[..5].iter().all(|r| r.starts_with("RC1")), "{rules:?}");
    assert_eq!(
        rules.iter().filter(|r| **r == "RC208").count(),
        1,
        "{rules:?}"
    );

    // A rule racecheck does not have narrows nothing: it is refused by name, on every tool.
    for (tool, args) in [
        (
            "validate_openapi",
            json!({"path": spec, "rules": ["RC201", "RC999"]}),
        ),
        (
            "analyze_source",
            json!({"path": src, "rules": ["no-such-rule"]}),
        ),
        (
            "audit_service",
            json!({"path": dir.path(), "rules": ["RC999"]}),
        ),
    ] {
        let r = s.request("tools/call", json!({"name": tool, "arguments": args}));
        assert_eq!(r["isError"], true, "{tool}: {r}");
        let text = r["content"][0]["text"].as_str().unwrap();
        assert!(
            text.contains("unknown rule")
                && (text.contains("RC999") || text.contains("no-such-rule")),
            "{tool}: {text}"
        );
    }
    let r = s.request(
        "tools/call",
        json!({"name": "validate_openapi", "arguments": {"path": spec, "rules": ["RC201"]}}),
    );
    let only = &r["structuredContent"];
    assert!(only["summary"]["total"].as_u64().unwrap() > 0, "{r}");
    assert!(only["findings"]
        .as_array()
        .unwrap()
        .iter()
        .all(|f| f["rule"] == "RC201"));
}
