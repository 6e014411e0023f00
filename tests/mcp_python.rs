//! An independent MCP client, the Python `mcp` SDK (version pinned in `tools/py-env`), starts
//! `racecheck mcp`, lists the tools and calls them (`tests/mcp/client_check.py`).

use std::process::Command;

mod common;

#[test]
fn python_sdk_client_drives_the_server() {
    let root = env!("CARGO_MANIFEST_DIR");
    let python = common::python();
    // A racy HTTP server for `probe_endpoint`, alive for the whole client run.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = rt
        .block_on(racy_server::RacyServer::start(
            std::time::Duration::from_millis(15),
        ))
        .unwrap();
    let out = Command::new(&python)
        .arg(format!("{root}/tests/mcp/client_check.py"))
        .arg(env!("CARGO_BIN_EXE_racecheck"))
        .arg(root)
        .arg(server.url(""))
        .output()
        .expect("run the Python MCP client");
    drop(server);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "client failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains(" passed, 0 failed"), "{stdout}");
}
