//! The MCP server over raw stdio: stdout carries only protocol messages, malformed input and
//! bad arguments fail alone, and the server keeps serving.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{json, Value};

struct Server {
    child: std::process::Child,
    lines: mpsc::Receiver<String>,
}

impl Server {
    fn start() -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_racecheck"))
            .arg("mcp")
            .env("RACECHECK_LOG", "debug")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start racecheck mcp");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Server { child, lines: rx }
    }

    fn send(&mut self, raw: &str) {
        let stdin = self.child.stdin.as_mut().unwrap();
        stdin.write_all(raw.as_bytes()).unwrap();
        stdin.write_all(b"\n").unwrap();
        stdin.flush().unwrap();
    }

    /// The next message with this id; every line on stdout must be JSON-RPC.
    fn response(&mut self, id: i64) -> Value {
        loop {
            let line = self
                .lines
                .recv_timeout(Duration::from_secs(20))
                .unwrap_or_else(|_| panic!("no response to request {id}"));
            let v: Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("stdout carried a non-JSON line ({e}): {line}"));
            assert_eq!(v["jsonrpc"], "2.0", "not JSON-RPC: {line}");
            if v["id"] == json!(id) {
                return v;
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn initialize(s: &mut Server) {
    s.send(
        &json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "raw-test", "version": "0"}}})
        .to_string(),
    );
    let init = s.response(1);
    assert_eq!(init["result"]["serverInfo"]["name"], "racecheck");
    assert_eq!(
        init["result"]["serverInfo"]["version"],
        env!("CARGO_PKG_VERSION")
    );
    s.send(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#);
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
