//! Throughput of source analysis, and the latency of one `analyze_source` call over MCP.
//!
//! `cargo bench --bench scan_throughput` generates a workspace of handlers, repositories and
//! ordinary business code (at least 200,000 lines), scans it several times and prints lines
//! per second; then starts `racecheck mcp` and times `analyze_source` on a 1,000-line file.
//! Set `RACECHECK_BENCH_LINES` for another size.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use racecheck::source::{analyze, Input, Options};

// The same allocator as the racecheck binary.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// One file of a generated service: a repository, handlers (racy and safe) and plain code.
fn module(i: usize) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        r#"use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use axum::extract::{{Json, Path, State}};
use axum::http::StatusCode;

const TABLE_{i}: &str = "table_{i}";

pub struct Repo{i} {{
    client: Client,
}}

impl Repo{i} {{
    pub async fn load_{i}(&self, id: &str) -> Result<Item{i}, StatusCode> {{
        let out = self
            .client
            .get_item()
            .table_name(TABLE_{i})
            .key("id", AttributeValue::S(id.to_string()))
            .send()
            .await
            .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?;
        serde_dynamo::from_item(out.item.unwrap_or_default()).map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)
    }}

    pub async fn store_{i}(&self, item: &Item{i}) -> Result<(), StatusCode> {{
        let item = serde_dynamo::to_item(item).map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?;
        self.client
            .put_item()
            .table_name(TABLE_{i})
            .set_item(Some(item))
            .send()
            .await
            .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?;
        Ok(())
    }}

    pub async fn add_{i}(&self, id: &str, delta: i64) -> Result<(), StatusCode> {{
        self.client
            .update_item()
            .table_name(TABLE_{i})
            .key("id", AttributeValue::S(id.to_string()))
            .update_expression("ADD total :d")
            .expression_attribute_values(":d", AttributeValue::N(delta.to_string()))
            .send()
            .await
            .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?;
        Ok(())
    }}
}}

pub async fn racy_{i}(State(repo): State<Repo{i}>, Path(id): Path<String>, Json(d): Json<i64>) -> Result<StatusCode, StatusCode> {{
    let mut item = repo.load_{i}(&id).await?;
    item.total += d;
    repo.store_{i}(&item).await?;
    Ok(StatusCode::OK)
}}

pub async fn safe_{i}(State(repo): State<Repo{i}>, Path(id): Path<String>, Json(d): Json<i64>) -> Result<StatusCode, StatusCode> {{
    repo.add_{i}(&id, d).await?;
    Ok(StatusCode::OK)
}}
"#
    );
    // Ordinary business code: most of a real service is not DynamoDB calls.
    for j in 0..8 {
        let _ = write!(
            s,
            r#"
/// Pricing rule {j} of module {i}.
pub fn price_{i}_{j}(lines: &[(u32, i64)], discount: Option<u8>) -> Result<i64, String> {{
    let mut total = 0i64;
    for (qty, unit) in lines {{
        if *qty == 0 {{
            continue;
        }}
        let line = i64::from(*qty) * unit;
        total = total.checked_add(line).ok_or_else(|| format!("overflow at {{qty}}"))?;
    }}
    let total = match discount {{
        Some(p) if p > 100 => return Err("discount over 100%".into()),
        Some(p) => total - total * i64::from(p) / 100,
        None => total,
    }};
    let tiers = [(1_000, 1), (10_000, 2), (100_000, 5)];
    let bonus = tiers.iter().filter(|(t, _)| total > *t).map(|(_, b)| *b).sum::<i64>();
    Ok(total - bonus)
}}
"#
        );
    }
    s
}

fn generate(dir: &Path, target_lines: usize) -> usize {
    let mut lines = 0;
    let mut i = 0;
    while lines < target_lines {
        let text = module(i);
        lines += text.lines().count();
        let sub = dir.join(format!("crate_{}/src", i / 100));
        std::fs::create_dir_all(&sub).unwrap();
        std::fs::write(sub.join(format!("m{i}.rs")), text).unwrap();
        i += 1;
    }
    lines
}

fn mcp_latency(file: &Path) -> Vec<Duration> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_racecheck"))
        .arg("mcp")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start racecheck mcp");
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    let mut call = |stdin: &mut std::process::ChildStdin, msg: String, wait: bool| {
        stdin.write_all(msg.as_bytes()).unwrap();
        stdin.write_all(b"\n").unwrap();
        stdin.flush().unwrap();
        if wait {
            line.clear();
            stdout.read_line(&mut line).unwrap();
        }
    };
    call(&mut stdin, r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"bench","version":"0"}}}"#.into(), true);
    call(
        &mut stdin,
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#.into(),
        false,
    );
    let mut times = vec![];
    for id in 1..=20 {
        let msg = serde_json::json!({"jsonrpc":"2.0","id":id,"method":"tools/call",
            "params":{"name":"analyze_source","arguments":{"path": file}}})
        .to_string();
        let t = Instant::now();
        call(&mut stdin, msg, true);
        times.push(t.elapsed());
    }
    drop(stdin);
    let _ = child.kill();
    let _ = child.wait();
    times
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument is accepted and ignored.
    let target: usize = std::env::var("RACECHECK_BENCH_LINES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(210_000);
    let dir = tempfile::tempdir().unwrap();
    let lines = generate(dir.path(), target);
    if let Ok(keep) = std::env::var("RACECHECK_BENCH_KEEP") {
        // Leave a copy to run the CLI on.
        generate(Path::new(&keep), target);
    }
    let input = [Input::Path(dir.path().to_path_buf())];
    let first = analyze(&input, &Options::default());
    assert!(first.errors.is_empty(), "{:?}", first.errors);
    let mut times = vec![];
    for _ in 0..5 {
        let t = Instant::now();
        let r = analyze(&input, &Options::default());
        times.push(t.elapsed());
        assert_eq!(r.findings.len(), first.findings.len());
    }
    times.sort();
    let median = times[times.len() / 2];
    println!(
        "scan: {} files, {lines} lines, {} findings; median {:.1} ms over {} runs = {:.0} lines/s (min {:.1} ms, max {:.1} ms)",
        first.stats.files,
        first.findings.len(),
        median.as_secs_f64() * 1e3,
        times.len(),
        lines as f64 / median.as_secs_f64(),
        times[0].as_secs_f64() * 1e3,
        times[times.len() - 1].as_secs_f64() * 1e3,
    );

    // A 1,000-line file through the MCP server.
    let mut file_text = String::new();
    let mut i = 0;
    while file_text.lines().count() < 1_000 {
        file_text.push_str(&module(100_000 + i));
        i += 1;
    }
    let file = dir.path().join("thousand.rs");
    std::fs::write(&file, &file_text).unwrap();
    let mut t = mcp_latency(&file);
    t.sort();
    println!(
        "mcp analyze_source on a {}-line file: median {:.2} ms, max {:.2} ms over {} calls (round trip over stdio)",
        file_text.lines().count(),
        t[t.len() / 2].as_secs_f64() * 1e3,
        t[t.len() - 1].as_secs_f64() * 1e3,
        t.len()
    );
}
