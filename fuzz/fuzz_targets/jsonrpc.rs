//! Lines a client sends to the MCP server: the framing's answer or the message rmcp receives.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(answer) = racecheck::mcp::stdio::accept(data) {
        // Every refused line gets a JSON-RPC error answer.
        let v: serde_json::Value = serde_json::from_str(&answer).expect("answer is JSON");
        assert_eq!(v["jsonrpc"], "2.0");
        assert!(v["error"]["code"].is_i64());
    }
});
