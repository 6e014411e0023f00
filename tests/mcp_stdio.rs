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
