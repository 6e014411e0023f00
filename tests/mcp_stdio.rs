//! The MCP server over raw stdio: stdout carries only protocol messages, malformed input and
//! bad arguments fail alone, and the server keeps serving.

mod common;

use serde_json::{json, Value};

use common::McpServer as Server;

fn initialize(s: &mut Server) {
    let init = s.initialize();
    assert_eq!(init["result"]["serverInfo"]["name"], "racecheck");
    assert_eq!(
        init["result"]["serverInfo"]["version"],
        env!("CARGO_PKG_VERSION")
    );
}

#[test]
fn survives_malformed_messages_and_bad_arguments() {
    let mut s = Server::start();
    initialize(&mut s);
    s.send("this is not json");
    s.send(r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"analyze_source","arguments":{"path":123}}}"#);
    let bad = s.response(2);
    assert!(
        bad.get("error").is_some() || bad["result"]["isError"] == json!(true),
        "a wrongly typed argument is refused: {bad}"
    );
    s.send(r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"no_such_tool","arguments":{}}}"#);
    assert!(s.response(3).get("error").is_some());
    s.send(r#"{"jsonrpc":"2.0","id":4,"method":"tools/list"}"#);
    let list = s.response(4);
    let names: Vec<&str> = list["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"analyze_source"), "{names:?}");
    s.send(r#"{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"analyze_source","arguments":{"path":"tests/fixtures/source/RC103.rs"}}}"#);
    let ok = s.response(5);
    let findings = ok["result"]["structuredContent"]["findings"]
        .as_array()
        .unwrap();
    assert_eq!(findings.len(), 2, "{ok}");
}

/// Tool schemas stay portable across clients: no `["T", "null"]` type arrays and no
/// non-standard integer formats, inputs or outputs.
#[test]
fn tool_schemas_are_portable() {
    fn walk(v: &Value, path: &str, problems: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                if let Some(Value::Array(_)) = m.get("type") {
                    problems.push(format!("{path}: type array"));
                }
                if let Some(Value::String(f)) = m.get("format") {
                    if f.starts_with("int")
                        || f.starts_with("uint")
                        || f == "double"
                        || f == "float"
                    {
                        problems.push(format!("{path}: format {f}"));
                    }
                }
                for (k, x) in m {
                    walk(x, &format!("{path}/{k}"), problems);
                }
            }
            Value::Array(a) => a
                .iter()
                .enumerate()
                .for_each(|(i, x)| walk(x, &format!("{path}/{i}"), problems)),
            _ => {}
        }
    }
    let mut s = Server::start();
    initialize(&mut s);
    s.send(r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#);
    let list = s.response(2);
    let mut problems = vec![];
    walk(&list["result"]["tools"], "tools", &mut problems);
    assert!(problems.is_empty(), "{problems:#?}");
}

/// The tools read the racecheck.toml of the path they analyse: its facts make findings
/// `assumed` (counted in `stats.assumed`); a bad file is that call's error, naming the line,
/// and the server keeps serving.
#[test]
fn tools_read_racecheck_toml() {
    let mut s = Server::start();
    initialize(&mut s);
    let fixture = "tests/fixtures/facts/bots";
    let r = s.request(
        "tools/call",
        json!({"name": "analyze_source", "arguments": {"path": fixture}}),
    );
    assert_ne!(r["isError"], json!(true), "{r}");
    let page = &r["structuredContent"];
    assert_eq!(page["stats"]["assumed"], 4, "{r}");
    let assumed: Vec<&Value> = page["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f.get("assumed").is_some())
        .collect();
    assert_eq!(assumed.len(), 4, "{r}");
    assert!(assumed.iter().all(|f| f["severity"] == "info"));
    let text = r["content"][0]["text"].as_str().unwrap();
    assert!(text.contains("(4 assumed by racecheck.toml"), "{text}");
    assert!(
        text.contains("[assumed by tests/fixtures/facts/bots/racecheck.toml:15]"),
        "{text}"
    );
    // Inline code reads no file.
    let code = std::fs::read_to_string(format!("{fixture}/src/lib.rs")).unwrap();
    let r = s.request(
        "tools/call",
        json!({"name": "analyze_source", "arguments": {"code": code}}),
    );
    assert!(
        r["structuredContent"]["stats"].get("assumed").is_none(),
        "{r}"
    );

    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("src")).unwrap();
    std::fs::write(dir.path().join("src/lib.rs"), &code).unwrap();
    std::fs::write(
        dir.path().join("racecheck.toml"),
        "serialized = [\"Worker::handle\"]\nsingle-writer = [\"ledger\"]\nsingel-writer = []\n",
    )
    .unwrap();
    let path = dir.path().to_str().unwrap();
    for tool in ["analyze_source", "suggest_fix"] {
        let r = s.request(
            "tools/call",
            json!({"name": tool, "arguments": {"path": path, "line": 46}}),
        );
        assert_eq!(r["isError"], json!(true), "{tool}: {r}");
        let text = r["content"][0]["text"].as_str().unwrap();
        assert!(
            text.contains("racecheck.toml:3:1: unknown field `singel-writer`"),
            "{tool}: {text}"
        );
    }
    s.ping();
    let r = s.request(
        "tools/call",
        json!({"name": "analyze_source", "arguments": {"path": fixture}}),
    );
    assert_eq!(r["structuredContent"]["stats"]["assumed"], 4, "{r}");
}
