//! The racecheck MCP server over raw stdio, for the tests that speak JSON-RPC to it. Every
//! line it writes to stdout must be a JSON-RPC 2.0 message.
#![allow(dead_code)] // each test binary uses its own part

pub mod scratch;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{json, Value};

pub struct McpServer {
    pub child: Child,
    lines: mpsc::Receiver<String>,
    next: i64,
}

impl McpServer {
    /// Started, not yet initialised.
    pub fn start() -> McpServer {
        let mut child = Command::new(env!("CARGO_BIN_EXE_racecheck"))
            .arg("mcp")
            .env("RACECHECK_LOG", "debug")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start racecheck mcp");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        McpServer {
            child,
            lines: rx,
            next: 1000,
        }
    }

    /// Started and initialised.
    pub fn ready() -> McpServer {
        let mut s = McpServer::start();
        s.initialize();
        s
    }

    /// The initialize exchange; returns the server's answer.
    pub fn initialize(&mut self) -> Value {
        self.send(
            &json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "protocolVersion": "2025-06-18", "capabilities": {},
                "clientInfo": {"name": "racecheck-tests", "version": "0"}}})
            .to_string(),
        );
        let init = self.response(1);
        self.send(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#);
        init
    }

    pub fn send(&mut self, raw: &str) {
        let stdin = self.child.stdin.as_mut().expect("stdin open");
        stdin.write_all(raw.as_bytes()).expect("write");
        stdin.write_all(b"\n").expect("write");
        stdin.flush().expect("flush");
    }

    /// The next message with this id (`null` for answers to lines that had none).
    pub fn answer(&mut self, id: &Value) -> Value {
        loop {
            let line = self
                .lines
                .recv_timeout(Duration::from_secs(120))
                .unwrap_or_else(|_| panic!("no answer to {id}"));
            let v: Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("stdout carried a non-JSON line ({e}): {line}"));
            assert_eq!(v["jsonrpc"], "2.0", "not JSON-RPC: {line}");
            if &v["id"] == id {
                return v;
            }
        }
    }

    /// The next message of any id, or `None` when none comes within `wait`.
    pub fn message_within(&mut self, wait: Duration) -> Option<Value> {
        let line = self.lines.recv_timeout(wait).ok()?;
        let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| {
            panic!(
                "stdout carried a non-JSON line ({e}): {}…",
                line.chars().take(300).collect::<String>()
            )
        });
        assert_eq!(v["jsonrpc"], "2.0", "not JSON-RPC: {line}");
        Some(v)
    }

    pub fn response(&mut self, id: i64) -> Value {
        self.answer(&json!(id))
    }

    /// A request with a fresh id; returns its `result`.
    pub fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.next;
        self.next += 1;
        self.send(
            &json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}).to_string(),
        );
        self.response(id)["result"].clone()
    }

    pub fn ping(&mut self) {
        let id = self.next;
        self.next += 1;
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": "ping"}).to_string());
        assert!(self.response(id).get("result").is_some(), "ping answered");
    }
}

impl Drop for McpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The Python of the test environment (`tools/py-env`: the pinned MCP SDK, `jsonschema`),
/// prepared on first use.
pub fn python() -> String {
    let root = env!("CARGO_MANIFEST_DIR");
    let env = Command::new("bash")
        .arg(format!("{root}/tools/py-env"))
        .output()
        .expect("run tools/py-env");
    assert!(
        env.status.success(),
        "tools/py-env could not prepare the Python environment: {}",
        String::from_utf8_lossy(&env.stderr)
    );
    String::from_utf8_lossy(&env.stdout).trim().to_string()
}
