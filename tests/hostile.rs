//! Hostile inputs, one test per class: nothing crashes, hangs, exhausts memory, reads outside
//! its project, reads as clean when it is not, or leaves a client waiting. Every input is
//! generated here; each test asserts the answer (a clear error with its position, a bounded
//! result, the server still serving).

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use racecheck::model::{ErrorKind, ProbeRound, Report};
use racecheck::probe::plan::{Expect, Mode, ObserveSpec, Plan, RequestSpec};
use racecheck::probe::safety::Policy;
use racecheck::source::{analyze, Input, Options};
use racecheck::spec::{check, SpecInput};
use racy_server::RacyServer;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use common::McpServer as Mcp;

fn scan_code(code: String) -> Report {
    let input = Input::Inline {
        name: "hostile.rs".into(),
        code,
    };
    analyze(&[input], &Options::default())
}

fn spec_text(content: &str, base_dir: Option<&Path>) -> Report {
    check(&SpecInput::Inline {
        content: content.into(),
        base_dir: base_dir.map(Path::to_path_buf),
    })
}

fn messages(r: &Report) -> String {
    let mut all: Vec<String> = r.errors.iter().map(|e| e.message.clone()).collect();
    all.extend(r.findings.iter().map(|f| f.message.clone()));
    all.join("\n")
}

/// Code nested by every means the parser recurses on, not only brackets.
fn nested(n: usize) -> Vec<(&'static str, String)> {
    vec![
        (
            "not",
            format!("fn f() {{ let x = {}true; }}", "!".repeat(n)),
        ),
        ("assign", format!("fn f() {{ {}1; }}", "a = ".repeat(n))),
        ("return", format!("fn f() {{ {}1; }}", "return ".repeat(n))),
        (
            "break",
            format!("fn f() {{ loop {{ {}; }} }}", "break ".repeat(n)),
        ),
        ("neg", format!("fn f() {{ let x = {}1; }}", "- ".repeat(n))),
        ("ref", format!("fn f() {{ let x = {}1; }}", "& ".repeat(n))),
        (
            "deref",
            format!("fn f() {{ let x = {}a; }}", "* ".repeat(n)),
        ),
        (
            "closure",
            format!("fn f() {{ let x = {}1; }}", "|a, b| ".repeat(n)),
        ),
        ("call", format!("fn f() {{ let x = a{}; }}", "()".repeat(n))),
        (
            "index",
            format!("fn f() {{ let x = a{}; }}", "[0]".repeat(n)),
        ),
        (
            "field",
            format!("fn f() {{ let x = a{}; }}", ".b".repeat(n)),
        ),
        ("try", format!("fn f() {{ let x = a{}; }}", "?".repeat(n))),
        (
            "cast",
            format!("fn f() {{ let x = a{}; }}", " as u8".repeat(n)),
        ),
        (
            "block-plus",
            format!("fn f() {{ let x = {}1; }}", "{a} + ".repeat(n)),
        ),
        (
            "else-if",
            format!("fn f() {{ {}{{}} }}", "if a {} else ".repeat(n)),
        ),
        (
            "generics",
            format!("type T = {}u8{};", "A<B, ".repeat(n), ">".repeat(n)),
        ),
        ("ref-type", format!("type T = {}u8;", "& ".repeat(n))),
        (
            "pointer-type",
            format!("type T = {}u8;", "*const ".repeat(n)),
        ),
        (
            "pattern",
            format!("fn f() {{ let {}x = 1; }}", "&".repeat(n)),
        ),
        (
            "macro",
            format!("fn f() {{ vec![{}true]; }}", "!".repeat(n)),
        ),
        // Brackets in a comment, a raw string and a char literal must not hide the rest.
        (
            "comment",
            format!("/* ((( */ fn f() {{ let x = {}true; }}", "!".repeat(n)),
        ),
        (
            "raw-string",
            format!(
                "fn f() {{ let s = r#\"(((\"#; let c = '('; let x = {}true; }}",
                "!".repeat(n)
            ),
        ),
    ]
}

#[test]
fn nesting_by_any_means_is_refused_with_its_line_and_never_aborts() {
    for (name, code) in nested(200_000) {
        let code = format!("// {name}\n\n{code}\n");
        let r = scan_code(code);
        let e = r
            .errors
            .iter()
            .find(|e| e.kind == ErrorKind::TooLarge)
            .unwrap_or_else(|| panic!("{name}: not refused: {:?}", r.errors));
        assert_eq!(e.line, Some(3), "{name}: {e:?}");
        assert!(e.message.contains("nested"), "{name}: {e:?}");
    }
    // Just below the bound the same shapes are analysed (or fail to parse), never abort.
    for (name, code) in nested(1_500) {
        let r = scan_code(code);
        assert!(
            r.errors.iter().all(|e| e.kind != ErrorKind::Invalid),
            "{name}: {:?}",
            r.errors
        );
    }
    // Long but flat code is not refused: a table of 100,000 entries.
    let table = format!("static T: &[i32] = &[{}];", "-1, ".repeat(100_000));
    assert!(scan_code(table).errors.is_empty());
}

#[test]
fn a_deep_file_is_an_error_entry_from_the_cli_not_an_abort() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("deep.rs"),
        format!("fn f() {{ {}1; }}", "a = ".repeat(300_000)),
    )
    .unwrap();
    std::fs::write(dir.path().join("ok.rs"), "fn g() {}\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_racecheck"))
        .args(["scan", "--format", "json"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["stats"]["files"], 2);
    assert_eq!(report["errors"][0]["kind"], "too-large", "{report}");
}

#[test]
fn call_graphs_that_double_or_chain_stay_within_the_budget() {
    // Each function calls the next two: composing per path would take 2^23 walks.
    let mut fan = String::from("use aws_sdk_dynamodb::Client;\n");
    for i in 0..23 {
        fan.push_str(&format!(
            "async fn f{i}(c: &Client) {{ f{n}(c).await; f{n}(c).await; let r = c.get_item().table_name(\"t\").send().await; c.put_item().table_name(\"t\").item(\"n\", r.n).send().await; }}\n",
            n = i + 1
        ));
    }
    fan.push_str("async fn f23(c: &Client) {}\n");
    let r = scan_code(fan);
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!(r.stats.functions, 24);

    // A long chain of callers, each with its own reads and writes: the budget says where
    // the flows were cut instead of growing without end.
    let mut chain = String::from("use aws_sdk_dynamodb::Client;\n");
    for i in 0..1_500 {
        chain.push_str(&format!(
            "async fn f{i}(c: &Client) {{ let x = c.get_item().table_name(\"t\").send().await; f{n}(c).await; c.update_item().table_name(\"t\").set(x.a).send().await; }}\n",
            n = i + 1
        ));
    }
    let r = scan_code(chain);
    assert!(
        r.errors
            .iter()
            .any(|e| e.kind == ErrorKind::TooLarge && e.message.contains("analysis budget")),
        "{:?}",
        r.errors
    );
}

#[test]
fn alias_bombs_deep_yaml_and_special_files_are_refused() {
    let mut bomb = String::from("openapi: 3.0.3\na: &a [x, x, x, x, x, x, x, x, x]\n");
    for (i, c) in "bcdefghi".chars().enumerate() {
        let prev = (b'a' + i as u8) as char;
        bomb.push_str(&format!(
            "{c}: &{c} [{}]\n",
            vec![format!("*{prev}"); 9].join(", ")
        ));
    }
    let r = spec_text(&bomb, None);
    assert!(messages(&r).contains("alias"), "{}", messages(&r));

    let deep = format!(
        "openapi: 3.0.3\nx: {}{}\n",
        "[".repeat(50_000),
        "]".repeat(50_000)
    );
    let r = spec_text(&deep, None);
    assert_eq!(r.findings[0].rule, "RC290");
    assert_eq!(r.findings[0].location.line, 2);

    // Keys that are mappings, nested (found by fuzzing: their text doubled at every level).
    let r = spec_text(&format!("{}\0", "? ".repeat(40)), None);
    assert!(messages(&r).contains("as a key"), "{}", messages(&r));

    let deep_json = format!(
        "{{\"openapi\": {}1{}}}",
        "[".repeat(50_000),
        "]".repeat(50_000)
    );
    let r = spec_text(&deep_json, None);
    assert_eq!(r.findings[0].rule, "RC290", "{}", messages(&r));

    // A device, a FIFO and a file over the cap: never read to the end.
    let r = check(&SpecInput::Path("/dev/zero".into()));
    assert!(
        messages(&r).contains("not a regular file"),
        "{}",
        messages(&r)
    );
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("spec.yaml");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let r = check(&SpecInput::Path(fifo.clone()));
    assert!(
        messages(&r).contains("not a regular file"),
        "{}",
        messages(&r)
    );
    let rs_fifo = dir.path().join("lib.rs");
    assert!(Command::new("mkfifo")
        .arg(&rs_fifo)
        .status()
        .unwrap()
        .success());
    let r = analyze(&[Input::Path(rs_fifo)], &Options::default());
    assert!(!r.errors.is_empty(), "a FIFO is not analysed silently");
    let big = dir.path().join("big.rs");
    std::fs::File::create(&big)
        .unwrap()
        .set_len(64 * 1024 * 1024)
        .unwrap();
    let r = analyze(&[Input::Path(big)], &Options::default());
    assert_eq!(r.errors[0].kind, ErrorKind::TooLarge, "{:?}", r.errors);
    let big_spec = dir.path().join("big.yaml");
    std::fs::File::create(&big_spec)
        .unwrap()
        .set_len(64 * 1024 * 1024)
        .unwrap();
    let r = check(&SpecInput::Path(big_spec));
    assert_eq!(r.errors[0].kind, ErrorKind::TooLarge, "{:?}", r.errors);
}

#[test]
fn references_stay_inside_the_project_and_quote_nothing_outside() {
    let outer = tempfile::tempdir().unwrap();
    let project = outer.path().join("project");
    std::fs::create_dir_all(project.join(".git")).unwrap();
    std::fs::create_dir_all(project.join("api")).unwrap();
    let secret = outer.path().join("secret.yaml");
    std::fs::write(&secret, "get:\n  description: TOP-SECRET-LINE\n").unwrap();
    std::fs::write(
        project.join("shared.yaml"),
        "get:\n  responses:\n    '200': {description: ok}\n",
    )
    .unwrap();
    let doc = format!(
        "openapi: 3.0.3\ninfo: {{title: t, version: '1'}}\npaths:\n  /up:\n    $ref: '../../secret.yaml'\n  /abs:\n    $ref: '{}'\n  /dev:\n    $ref: '/dev/zero'\n  /inside:\n    $ref: '../shared.yaml'\n",
        secret.display()
    );
    std::fs::write(project.join("api/openapi.yaml"), &doc).unwrap();
    let r = check(&SpecInput::Path(project.join("api/openapi.yaml")));
    let all = serde_json::to_string(&r).unwrap();
    assert!(!all.contains("TOP-SECRET-LINE"), "{all}");
    let outside: Vec<_> = r
        .findings
        .iter()
        .filter(|f| f.message.contains("is outside"))
        .collect();
    assert_eq!(outside.len(), 3, "{}", messages(&r));
    assert!(!messages(&r).contains("/inside"), "{}", messages(&r));

    // Inline (MCP) documents are confined to `base_dir` itself.
    let inline = "openapi: 3.0.3\ninfo: {title: t, version: '1'}\npaths:\n  /up:\n    $ref: '../shared.yaml'\n";
    let r = spec_text(inline, Some(&project.join("api")));
    assert!(messages(&r).contains("is outside"), "{}", messages(&r));
}

#[test]
fn duplicate_keys_foreign_path_items_and_byte_order_marks() {
    let yaml = "openapi: 3.0.3\ninfo: {title: t, version: '1'}\npaths:\n  /a:\n    get:\n      responses: {'200': {description: ok}}\n  /a:\n    put:\n      responses: {'200': {description: ok}}\n";
    let r = spec_text(yaml, None);
    let dup = r
        .findings
        .iter()
        .find(|f| f.message.contains("given twice"))
        .unwrap_or_else(|| panic!("{}", messages(&r)));
    assert!(dup.message.contains("line 4") && dup.message.contains("line 7"));
    assert_eq!(dup.location.line, 7);

    let json = "{\"openapi\": \"3.0.3\",\n\"info\": {\"title\": \"t\", \"version\": \"1\"},\n\"paths\": {},\n\"paths\": {}}";
    let r = spec_text(json, None);
    assert!(messages(&r).contains("`#/paths` is given twice, at line 3 and again at line 4"));

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("other.yaml"), "just: a\nrandom: file\n").unwrap();
    let main =
        "openapi: 3.0.3\ninfo: {title: t, version: '1'}\npaths:\n  /a:\n    $ref: other.yaml\n";
    let r = spec_text(main, Some(dir.path()));
    assert!(messages(&r).contains("not a path item"), "{}", messages(&r));

    let clean = "openapi: 3.0.3\ninfo: {title: t, version: '1'}\npaths: {}\n";
    for text in [
        format!("\u{feff}{clean}"),
        "\u{feff}{\"openapi\": \"3.0.3\", \"info\": {\"title\": \"t\", \"version\": \"1\"}, \"paths\": {}}".into(),
    ] {
        let r = spec_text(&text, None);
        assert!(r.findings.is_empty() && r.errors.is_empty(), "{}", messages(&r));
    }
    let r = scan_code("\u{feff}fn f() {}\n".into());
    assert!(r.errors.is_empty(), "{:?}", r.errors);
}

#[test]
fn symlinked_modules_inside_the_project_are_read_and_outside_ones_reported() {
    let outer = tempfile::tempdir().unwrap();
    let project = outer.path().join("svc");
    std::fs::create_dir_all(project.join(".git")).unwrap();
    std::fs::create_dir_all(project.join("src")).unwrap();
    std::fs::create_dir_all(project.join("shared")).unwrap();
    std::fs::write(project.join("shared/db.rs"), "fn shared() {}\n").unwrap();
    std::fs::write(outer.path().join("elsewhere.rs"), "fn elsewhere() {}\n").unwrap();
    std::os::unix::fs::symlink(project.join("shared/db.rs"), project.join("src/db.rs")).unwrap();
    std::os::unix::fs::symlink(
        outer.path().join("elsewhere.rs"),
        project.join("src/out.rs"),
    )
    .unwrap();
    let r = analyze(&[Input::Path(project.join("src"))], &Options::default());
    assert_eq!(r.stats.files, 1, "{r:?}");
    assert_eq!(r.stats.functions, 1);
    assert_eq!(r.errors.len(), 1, "{:?}", r.errors);
    assert!(r.errors[0].path.ends_with("out.rs"));
}

#[test]
fn a_failed_report_write_exits_with_an_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_racecheck"))
        .args(["scan", "tests/fixtures/source/RC103.rs"])
        .stdout(std::fs::File::create("/dev/full").unwrap())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot write the report"));
}

fn probe_plan(target: String, observe: Option<String>, mode: Mode) -> Plan {
    Plan {
        target: RequestSpec {
            method: Some("POST".into()),
            url: target,
            headers: BTreeMap::new(),
            body: json!({}),
        },
        observe: observe.map(|url| ObserveSpec {
            method: None,
            url,
            headers: None,
            pointer: "/value".into(),
        }),
        create: None,
        reset: None,
        mode,
        concurrency: Some(8),
        rounds: Some(1),
        expect: Expect::default(),
        http2: false,
        request_timeout_ms: Some(400),
        max_duration_ms: Some(20_000),
        interleave: None,
    }
}

async fn probe(p: &Plan) -> Report {
    let mut on_round = |_: u32, _: u32, _: &ProbeRound| {};
    racecheck::probe::run(
        p,
        &Policy::default(),
        &mut on_round,
        &CancellationToken::new(),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn targets_that_hang_garble_or_redirect_are_not_analysed_not_clean() {
    let s = RacyServer::start(Duration::from_millis(20)).await.unwrap();
    let observe = Some(s.url("/counter"));
    for (path, mode) in [
        ("/hang", Mode::LostUpdate),
        ("/garbage", Mode::LostUpdate),
        ("/redirect", Mode::LostUpdate),
        ("/redirect", Mode::LimitOverrun),
        ("/hang", Mode::RateLimit),
        ("/garbage", Mode::RateLimit),
    ] {
        let r = probe(&probe_plan(s.url(path), observe.clone(), mode)).await;
        let summary = r.probe.as_ref().unwrap();
        assert!(
            summary.verdict.starts_with("not analysed"),
            "{path} {mode:?}: {}",
            summary.verdict
        );
        assert!(r.findings.is_empty(), "{path} {mode:?}: {:?}", r.findings);
        assert!(!r.errors.is_empty(), "{path} {mode:?}: no error entry");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counting_down_time_caps_and_falling_values_read_right() {
    let s = RacyServer::start(Duration::from_millis(60)).await.unwrap();
    let mut p = probe_plan(
        s.url("/counter/decr-racy"),
        Some(s.url("/counter")),
        Mode::LostUpdate,
    );
    p.expect.delta_per_success = Some(-1.0);
    let r = probe(&p).await;
    assert_eq!(r.findings.len(), 1, "{:?} {:?}", r.findings, r.errors);
    assert_eq!(r.findings[0].rule, "RC401");

    p.expect.delta_per_success = Some(0.0);
    assert!(messages(&probe(&p).await).contains("non-zero"));

    // A falling observed value in limit mode is not read as billions of successes.
    p.expect.delta_per_success = None;
    p.mode = Mode::LimitOverrun;
    let r = probe(&p).await;
    let f = &r.findings[0];
    assert!(f.message.contains("up to 8 requests"), "{}", f.message);

    // The time cap keeps the rounds completed before it.
    let mut p = probe_plan(
        s.url("/counter/incr-racy"),
        Some(s.url("/counter")),
        Mode::LostUpdate,
    );
    p.rounds = Some(10);
    p.concurrency = Some(4);
    p.max_duration_ms = Some(700);
    let r = probe(&p).await;
    let done = r.probe.as_ref().unwrap().rounds.len();
    assert!((1..10).contains(&done), "{done} rounds");
    assert!(messages(&r).contains("time cap"), "{}", messages(&r));
    assert!(
        !r.findings.is_empty(),
        "the completed rounds' findings are kept"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn observe_bodies_are_capped_and_localhost_names_are_pinned() {
    let s = RacyServer::start(Duration::from_millis(20)).await.unwrap();
    let p = probe_plan(
        s.url("/counter/incr-safe"),
        Some(s.url("/endless")),
        Mode::LostUpdate,
    );
    let r = probe(&p).await;
    assert!(
        messages(&r).contains("over 1048576 bytes"),
        "{}",
        messages(&r)
    );

    // `*.localhost` goes to the address racecheck checked, never to a resolver.
    let port = s
        .url("/")
        .split(':')
        .nth(2)
        .unwrap()
        .trim_end_matches('/')
        .to_string();
    let named = |path: &str| format!("http://racecheck-probe.localhost:{port}{path}");
    let p = probe_plan(
        named("/counter/incr-racy"),
        Some(named("/counter")),
        Mode::LostUpdate,
    );
    let r = probe(&p).await;
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!(r.findings[0].rule, "RC401");
}

#[test]
fn plan_files_with_unknown_fields_or_no_content_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let run = |text: &str| {
        let path = dir.path().join("plan.yaml");
        std::fs::write(&path, text).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_racecheck"))
            .args(["probe", "--plan"])
            .arg(&path)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{out:?}");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let err = run("target: {url: 'http://127.0.0.1:9/x'}\nconcurency: 5\n");
    assert!(err.contains("unknown field `concurency`"), "{err}");
    let err = run("target: {url: 'http://127.0.0.1:9/x', hedaers: {}}\n");
    assert!(err.contains("hedaers"), "{err}");
    let err = run("  \n");
    assert!(
        err.contains("plan") && err.contains("empty") && !err.contains("OpenAPI"),
        "{err}"
    );
}

#[test]
fn the_server_answers_every_line_and_survives_hostile_code() {
    let mut m = Mcp::ready();
    m.send("{not json");
    let bad = m.answer(&Value::Null);
    assert_eq!(bad["error"]["code"], -32700, "{bad}");
    m.send(r#"{"id": 7, "hello": "world"}"#);
    assert_eq!(m.answer(&json!(7))["error"]["code"], -32600);
    let oversize = format!(
        "{{\"jsonrpc\":\"2.0\",\"id\":8,\"method\":\"tools/call\",\"params\":{{\"name\":\"analyze_source\",\"arguments\":{{\"code\":\"{}\"}}}}}}",
        " ".repeat(33 * 1024 * 1024)
    );
    m.send(&oversize);
    let big = m.answer(&json!(8));
    assert_eq!(big["error"]["code"], -32600, "{big}");
    m.ping();

    for (i, (name, code)) in nested(200_000).into_iter().take(4).enumerate() {
        let id = 100 + i as i64;
        m.send(
            &json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {
            "name": "analyze_source", "arguments": {"code": code}}})
            .to_string(),
        );
        let a = m.answer(&json!(id));
        let errors = &a["result"]["structuredContent"]["errors"];
        assert_eq!(errors[0]["kind"], "too-large", "{name}: {a}");
    }
    let plan = json!({"target": {"url": "http://127.0.0.1:9/x"}, "concurency": 3});
    m.send(
        &json!({"jsonrpc": "2.0", "id": 200, "method": "tools/call", "params": {
        "name": "probe_endpoint", "arguments": plan}})
        .to_string(),
    );
    let a = m.answer(&json!(200));
    assert!(a.to_string().contains("concurency"), "{a}");
    m.ping();
}

/// A workspace big enough that its analysis runs for a while.
fn slow_workspace(dir: &Path) {
    let mut chain = String::from("use aws_sdk_dynamodb::Client;\n");
    for i in 0..1_000 {
        chain.push_str(&format!(
            "async fn f{i}(c: &Client) {{ let x = c.get_item().table_name(\"t\").send().await; f{n}(c).await; c.update_item().table_name(\"t\").set(x.a).send().await; }}\n",
            n = i + 1
        ));
    }
    for k in 0..60 {
        std::fs::write(dir.join(format!("m{k}.rs")), &chain).unwrap();
    }
}

#[test]
fn cancelled_calls_and_closed_stdin_stop_the_work() {
    let dir = tempfile::tempdir().unwrap();
    slow_workspace(dir.path());
    let call = |id: i64| {
        json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {
            "name": "analyze_source", "arguments": {"path": dir.path()}}})
        .to_string()
    };
    let mut m = Mcp::ready();
    m.send(&call(1));
    std::thread::sleep(Duration::from_millis(300));
    m.send(r#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":1}}"#);
    m.ping();

    // Closing stdin ends the process even while an analysis runs; the wait is a liveness
    // bound far above the 100 ms it takes, far below the analysis.
    m.send(&call(3));
    std::thread::sleep(Duration::from_millis(300));
    drop(m.child.stdin.take());
    let started = std::time::Instant::now();
    loop {
        if let Some(status) = m.child.try_wait().unwrap() {
            assert!(status.success(), "{status:?}");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the server kept running after stdin closed"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
