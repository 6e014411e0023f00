//! A hostile MCP client against the real binary over stdio (issue 20 §4): every request gets
//! one whole answer, within the answer budget, and nothing a client sends makes an answer
//! large, stale or missing.

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use common::McpServer as Server;

/// Characters of one answer, its text and structured content together.
fn answer_size(result: &Value) -> usize {
    let text: usize = result["content"]
        .as_array()
        .map(|c| {
            c.iter()
                .map(|b| b["text"].as_str().unwrap_or("").chars().count())
                .sum()
        })
        .unwrap_or(0);
    text + result["structuredContent"].to_string().chars().count()
}

fn text_of(result: &Value) -> String {
    result["content"][0]["text"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

fn call(s: &mut Server, tool: &str, args: Value) -> Value {
    s.request("tools/call", json!({"name": tool, "arguments": args}))
}

/// Item 1: the framing's answer to a malformed line, written while a long answer is being
/// copied out, never cuts that answer.
#[test]
fn a_malformed_line_never_cuts_a_long_answer() {
    let mut s = Server::ready();
    for round in 0..30 {
        let id = 100 + round;
        s.send(&json!({"jsonrpc": "2.0", "id": id, "method": "tools/list"}).to_string());
        for n in 0..12 {
            s.send(&format!("not json {round}.{n}"));
            std::thread::sleep(Duration::from_micros(300));
        }
        let (mut list, mut errors) = (None, 0);
        while list.is_none() || errors < 12 {
            // Panics on a line that is not JSON: a cut answer.
            let m = s
                .message_within(Duration::from_secs(60))
                .unwrap_or_else(|| panic!("round {round}: no answer"));
            if m["id"] == json!(id) {
                list = Some(m);
            } else if m["id"].is_null() && m["error"]["code"] == -32700 {
                errors += 1;
            }
        }
        let list = list.unwrap_or_default();
        assert_eq!(
            list["result"]["tools"].as_array().map(Vec::len),
            Some(7),
            "round {round}: {list}"
        );
    }
}

/// Item 2: a line over rmcp's own 16 MiB bound (which rmcp drops without a word) is answered
/// by the framing, with its id.
#[test]
fn a_request_over_rmcps_bound_is_answered_with_its_id() {
    let mut s = Server::ready();
    let head = r#"{"jsonrpc":"2.0","id":77,"method":"tools/call","params":{"name":"analyze_source","arguments":{"code":""#;
    let mut line = String::with_capacity(17 << 20);
    line.push_str(head);
    line.extend(std::iter::repeat_n('/', (16 << 20) + 4096));
    line.push_str(r#""}}}"#);
    s.send(&line);
    drop(line);
    s.send(r#"{"jsonrpc":"2.0","id":78,"method":"ping"}"#);
    let (mut big, mut ping) = (None, None);
    let deadline = Instant::now() + Duration::from_secs(60);
    while (big.is_none() || ping.is_none()) && Instant::now() < deadline {
        // Once the ping is answered, the big request's answer has had its chance.
        let wait = if ping.is_some() { 5 } else { 60 };
        let Some(m) = s.message_within(Duration::from_secs(wait)) else {
            break;
        };
        match m["id"].as_i64() {
            Some(77) => big = Some(m),
            Some(78) => ping = Some(m),
            _ => {}
        }
    }
    let big = big.expect("the 16 MiB request was answered");
    assert_eq!(big["error"]["code"], -32600, "{big}");
    let message = big["error"]["message"].as_str().unwrap_or("");
    assert!(message.contains("byte limit"), "{message}");
    assert!(ping.is_some(), "the server kept serving");
    s.ping();
}

/// Item 3: a forged cursor (or rule, or id) is quoted short in the error, whatever its size.
#[test]
fn forged_arguments_are_not_echoed_whole() {
    let mut s = Server::ready();
    let forged = "A".repeat(100_000);
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/source/RC103.rs");
    for (tool, args) in [
        (
            "analyze_source",
            json!({"path": fixture, "cursor": forged.clone()}),
        ),
        ("analyze_source", json!({"path": fixture, "cursor": "zz.1"})),
        (
            "analyze_source",
            json!({"path": fixture, "rules": [forged.clone(), forged.clone()]}),
        ),
        ("explain_rule", json!({"rule": forged.clone()})),
        (
            "suggest_fix",
            json!({"path": fixture, "id": forged.clone()}),
        ),
    ] {
        let r = call(&mut s, tool, args);
        assert_eq!(r["isError"], true, "{tool}: {}", text_of(&r));
        let size = answer_size(&r);
        assert!(
            size < 1_000,
            "{tool}: an error of {size} characters: {}…",
            text_of(&r).chars().take(200).collect::<String>()
        );
    }
}

/// Item 4: a finding whose strings alone exceed the budget (a 25,000-character operation) is
/// shown with them cut, not refused on every page.
#[test]
fn a_finding_too_long_for_an_answer_is_cut_to_fit() {
    let mut s = Server::ready();
    let path = format!("/items/{}/{{id}}", "a".repeat(25_000));
    let doc = json!({
        "openapi": "3.0.3",
        "info": {"title": "t", "version": "1"},
        "paths": {path: {
            "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
            "put": {"responses": {"200": {"description": "ok"}}}
        }}
    });
    let mut seen = 0;
    let mut cursor: Option<String> = None;
    for _ in 0..10 {
        let mut args = json!({"content": doc.to_string()});
        if let Some(c) = &cursor {
            args["cursor"] = json!(c);
        }
        let r = call(&mut s, "validate_openapi", args);
        assert_ne!(r["isError"], true, "{}", text_of(&r));
        assert!(answer_size(&r) <= 20_000, "{} characters", answer_size(&r));
        let sc = &r["structuredContent"];
        let found = sc["findings"].as_array().cloned().unwrap_or_default();
        assert!(!found.is_empty(), "{sc}");
        assert!(
            found[0]["message"]
                .as_str()
                .is_some_and(|m| m.contains("more bytes)")),
            "the cut is marked: {}",
            found[0]["message"]
        );
        seen += found.len();
        match sc["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert!(seen >= 3, "RC201, RC207 and RC208 are all shown: {seen}");
}

/// Item 5: a cursor into a proven audit pages its verdicts only while the code is unchanged.
#[test]
fn a_proven_audit_is_not_paged_after_the_code_changed() {
    let dir = tempfile::tempdir().unwrap();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/audit");
    std::fs::create_dir_all(dir.path().join("src")).unwrap();
    for f in ["openapi.yaml", "src/main.rs"] {
        std::fs::copy(fixture.join(f), dir.path().join(f)).unwrap();
    }
    let mut s = Server::ready();
    // Nothing listens on the discard port: every probe fails at once, and is still a verdict.
    let args = json!({"path": dir.path(), "base_url": "http://127.0.0.1:9", "limit": 1});
    let first = call(&mut s, "audit_service", args.clone());
    assert_ne!(first["isError"], true, "{}", text_of(&first));
    let cursor = first["structuredContent"]["next_cursor"]
        .as_str()
        .expect("more than one finding")
        .to_string();
    let mut paged = args.clone();
    paged["cursor"] = json!(cursor);
    let second = call(&mut s, "audit_service", paged.clone());
    assert_ne!(second["isError"], true, "{}", text_of(&second));
    assert!(
        second["structuredContent"]["findings"][0]["proof"].is_object(),
        "{second}"
    );

    let main = dir.path().join("src/main.rs");
    let mut code = std::fs::read_to_string(&main).unwrap();
    code.push_str("\n// changed after the audit\n");
    std::fs::write(&main, code).unwrap();
    let stale = call(&mut s, "audit_service", paged);
    assert_eq!(stale["isError"], true, "stale verdicts were paged: {stale}");
    assert!(
        text_of(&stale).contains("changed since this audit"),
        "{}",
        text_of(&stale)
    );
}

/// Item 6: under load — long answers, malformed and invalid lines, probes sending progress,
/// logs on stderr — every request is answered exactly once, whole and valid.
#[test]
fn every_request_is_answered_once_and_whole_under_load() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let racy = rt
        .block_on(racy_server::RacyServer::start(Duration::from_millis(5)))
        .unwrap();
    let mut s = Server::ready();
    let mut stdin = s.child.stdin.take().expect("stdin");
    let rounds = 50;
    let mut lines = vec![];
    let mut expected: Vec<Value> = vec![];
    for r in 0..rounds {
        let (list, ping, invalid) = (10_000 + r, 20_000 + r, 30_000 + r);
        lines.push(json!({"jsonrpc": "2.0", "id": list, "method": "tools/list"}).to_string());
        lines.push(format!("{{not json {r}"));
        lines.push(json!({"id": invalid, "hello": r}).to_string());
        if r % 5 == 0 {
            let probe = 40_000 + r;
            lines.push(
                json!({"jsonrpc": "2.0", "id": probe, "method": "tools/call", "params": {
                "name": "probe_endpoint",
                "_meta": {"progressToken": format!("p{r}")},
                "arguments": {
                    "target": {"method": "POST", "url": racy.url("/counter/incr-racy")},
                    "observe": {"url": racy.url("/counter"), "pointer": "/value"},
                    "mode": "lost-update", "concurrency": 2, "rounds": 2
                }}})
                .to_string(),
            );
            expected.push(json!(probe));
        }
        lines.push(json!({"jsonrpc": "2.0", "id": ping, "method": "ping"}).to_string());
        expected.extend([json!(list), json!(ping), json!(invalid)]);
    }
    // Written from another thread, so neither side waits on a full pipe.
    let writer = std::thread::spawn(move || {
        for l in lines {
            if stdin.write_all(format!("{l}\n").as_bytes()).is_err() {
                return None;
            }
        }
        let _ = stdin.flush();
        Some(stdin)
    });
    let mut answers: BTreeMap<String, usize> = BTreeMap::new();
    let (mut parse_errors, mut progress) = (0, BTreeMap::<String, usize>::new());
    let deadline = Instant::now() + Duration::from_secs(300);
    let done = |a: &BTreeMap<String, usize>, p: usize| {
        p >= rounds as usize && expected.iter().all(|id| a.contains_key(&id.to_string()))
    };
    while !done(&answers, parse_errors) {
        assert!(Instant::now() < deadline, "not every request was answered");
        let Some(m) = s.message_within(Duration::from_secs(120)) else {
            break;
        };
        if m.get("method").and_then(Value::as_str) == Some("notifications/progress") {
            let token = m["params"]["progressToken"].as_str().unwrap_or("");
            *progress.entry(token.to_string()).or_default() += 1;
            continue;
        }
        if m["id"].is_null() {
            assert_eq!(m["error"]["code"], -32700, "{m}");
            parse_errors += 1;
            continue;
        }
        let id = m["id"].as_i64().unwrap_or(-1);
        match id / 10_000 {
            1 => {
                let tools = m["result"]["tools"].as_array().map(Vec::len);
                assert_eq!(tools, Some(7), "a whole tools/list: {m}");
            }
            2 => assert!(m.get("result").is_some(), "{m}"),
            3 => assert_eq!(m["error"]["code"], -32600, "{m}"),
            4 => {
                let findings = &m["result"]["structuredContent"]["findings"];
                assert!(findings.is_array(), "a whole probe answer: {m}");
            }
            _ => panic!("an answer to no request: {m}"),
        }
        *answers.entry(m["id"].to_string()).or_default() += 1;
    }
    let _stdin = writer.join().expect("the writer");
    // A duplicate would come soon after the rest: give it the time.
    while let Some(m) = s.message_within(Duration::from_millis(500)) {
        if m.get("id").is_some_and(|id| !id.is_null()) {
            *answers.entry(m["id"].to_string()).or_default() += 1;
        }
    }
    for id in &expected {
        assert_eq!(answers.get(&id.to_string()), Some(&1), "request {id}");
    }
    assert_eq!(answers.len(), expected.len(), "{answers:?}");
    assert_eq!(parse_errors, rounds as usize);
    for r in (0..rounds).step_by(5) {
        assert_eq!(
            progress.get(&format!("p{r}")),
            Some(&2),
            "progress after each of 2 rounds: {progress:?}"
        );
    }
    drop(racy);
}

/// Item 7: `tools/list` stays small, every tool has a title, and every output schema is an
/// object schema.
#[test]
fn tools_list_is_small_and_every_tool_has_a_title() {
    let mut s = Server::ready();
    let list = s.request("tools/list", json!({}));
    let size = list.to_string().len();
    assert!(size < 30_000, "tools/list is {size} bytes");
    let tools = list["tools"].as_array().cloned().unwrap_or_default();
    assert_eq!(tools.len(), 7);
    for t in &tools {
        let title = t["title"].as_str().unwrap_or("");
        assert!(!title.is_empty(), "{} has no title", t["name"]);
        if let Some(out) = t.get("outputSchema") {
            assert_eq!(out["type"], "object", "{}: {out}", t["name"]);
        }
    }
}
