//! End to end on the bundled demo: a real DynamoDB-compatible server (moto, from PyPI, on
//! loopback), the demo service on it, and all of racecheck's checks against them. Every
//! process a test starts is stopped by it, also when it fails (guards kill them on drop).

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use racecheck::model::Report;
use racecheck::probe::plan::{Expect, Mode, ObserveSpec, Plan, RequestSpec};
use racecheck::probe::safety::Policy;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

mod common;
use common::scratch::{self, target_dir, ROOT};

/// A child process killed when the guard goes out of scope.
struct Guard(Child, &'static str);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_http(url: &str, guard: &mut Guard) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(Some(status)) = guard.0.try_wait() {
            panic!("{} exited early with {status}", guard.1);
        }
        if reqwest::blocking_get(url) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{} did not answer on {url}",
            guard.1
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

mod reqwest {
    /// Whether anything answers HTTP at `url` (any status).
    pub fn blocking_get(url: &str) -> bool {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async { ::reqwest::get(url).await.is_ok() })
    }
}

fn moto() -> (Guard, String) {
    let install = Command::new("bash")
        .arg(format!("{ROOT}/tools/dynamodb-local"))
        .arg("install")
        .output()
        .expect("run tools/dynamodb-local");
    assert!(
        install.status.success(),
        "installing moto failed: {}",
        String::from_utf8_lossy(&install.stderr)
    );
    let port = free_port();
    // Each request under one lock (moto's backend is not thread-safe; see the script).
    let child = Command::new(target_dir().join("moto/bin/python"))
        .arg(format!("{ROOT}/tools/moto-serialized.py"))
        .args(["127.0.0.1", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start moto_server");
    let mut guard = Guard(child, "moto_server");
    let endpoint = format!("http://127.0.0.1:{port}");
    wait_http(&format!("{endpoint}/moto-api/"), &mut guard);
    (guard, endpoint)
}

fn demo(endpoint: &str) -> (Guard, String) {
    let bin = target_dir().join("debug/demo-service");
    demo_at(bin, endpoint, 25)
}

/// Start the demo service's binary `bin` (built first if it is the workspace's own) with a
/// race window of `window_ms` between its reads and writes.
fn demo_at(bin: PathBuf, endpoint: &str, window_ms: u64) -> (Guard, String) {
    if !bin.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let st = Command::new(cargo)
            .args(["build", "-p", "demo-service"])
            .current_dir(ROOT)
            .status()
            .unwrap();
        assert!(st.success(), "building the demo service failed");
    }
    let port = free_port();
    let child = Command::new(bin)
        .env("AWS_ENDPOINT_URL_DYNAMODB", endpoint)
        .env("PORT", port.to_string())
        .env("RACE_WINDOW_MS", window_ms.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the demo service");
    let mut guard = Guard(child, "demo-service");
    let url = format!("http://127.0.0.1:{port}");
    wait_http(&format!("{url}/health"), &mut guard);
    (guard, url)
}

fn request(url: String, method: &str, body: Value) -> RequestSpec {
    RequestSpec {
        method: Some(method.into()),
        url,
        headers: BTreeMap::new(),
        body,
    }
}

fn plan(
    target: RequestSpec,
    observe: Option<(String, &str)>,
    reset: Option<RequestSpec>,
    mode: Mode,
) -> Plan {
    Plan {
        target,
        observe: observe.map(|(url, pointer)| ObserveSpec {
            method: None,
            url,
            headers: None,
            pointer: pointer.into(),
        }),
        create: None,
        reset,
        mode,
        concurrency: Some(8),
        rounds: Some(2),
        expect: Expect {
            delta_per_success: None,
            max_successes: Some(1),
        },
        http2: false,
        request_timeout_ms: Some(10_000),
        max_duration_ms: Some(60_000),
        interleave: None,
    }
}

/// 8 concurrent increments of counter `id` by `path` (`incr`, `incr-atomic`), watching its value.
fn counter_plan(url: &str, id: &str, path: &str) -> Plan {
    plan(
        request(
            format!("{url}/counters/{id}/{path}"),
            "POST",
            json!({"by": 1}),
        ),
        Some((format!("{url}/counters/{id}"), "/value")),
        None,
        Mode::LostUpdate,
    )
}

/// 8 concurrent redemptions of one freshly issued coupon: one may succeed.
fn coupon_plan(url: &str, code: &str, path: &str) -> Plan {
    plan(
        request(format!("{url}/coupons/{code}/{path}"), "POST", Value::Null),
        Some((format!("{url}/coupons/{code}"), "/redemptions")),
        Some(request(format!("{url}/coupons/{code}"), "PUT", Value::Null)),
        Mode::LimitOverrun,
    )
}

/// 8 concurrent withdrawals of a whole balance of 100: one may succeed.
fn withdraw_plan(url: &str, id: &str, path: &str) -> Plan {
    plan(
        request(
            format!("{url}/accounts/{id}/{path}"),
            "POST",
            json!({"amount": 100}),
        ),
        None,
        Some(request(
            format!("{url}/accounts/{id}"),
            "PUT",
            json!({"amount": 100}),
        )),
        Mode::LimitOverrun,
    )
}

async fn probe(p: &Plan) -> Report {
    let r = racecheck::probe::run(
        p,
        &Policy::default(),
        &mut |_, _, _| {},
        &CancellationToken::new(),
    )
    .await;
    assert!(r.errors.is_empty(), "{}: {:?}", p.target.url, r.errors);
    r
}

fn rules(r: &Report) -> Vec<String> {
    r.findings.iter().map(|f| f.rule.clone()).collect()
}

#[test]
fn demo_end_to_end() {
    // Source: exactly the racy handlers (the fixed increment included as safe).
    let scan = racecheck::source::analyze(
        &[racecheck::source::Input::Path(
            format!("{ROOT}/tools/demo-service").into(),
        )],
        &Default::default(),
    );
    let mut flagged: Vec<(String, String)> = scan
        .findings
        .iter()
        .map(|f| (f.function.clone().unwrap_or_default(), f.rule.clone()))
        .collect();
    flagged.sort();
    let expected: Vec<(String, String)> = [
        ("accounts::transfer", "RC104"),
        ("accounts::withdraw", "RC102"),
        ("counters::incr", "RC103"),
        ("coupons::redeem", "RC102"),
        ("profiles::update_profile", "RC101"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(flagged, expected);

    // The fix the demo applies in `incr-fixed` is racecheck's own suggestion, verbatim.
    let incr = scan
        .findings
        .iter()
        .find(|f| f.function.as_deref() == Some("counters::incr"))
        .unwrap();
    let fixed = std::fs::read_to_string(format!("{ROOT}/tools/demo-service/src/fixed.rs")).unwrap();
    assert!(
        fixed.ends_with(&incr.fixes[0].snippet),
        "tools/demo-service/src/fixed.rs is not racecheck's current fix for counters::incr"
    );

    // Contract: the documented gaps of the racy endpoints, and not of the correct ones.
    let spec = racecheck::spec::check(&racecheck::spec::SpecInput::Path(
        format!("{ROOT}/tools/demo-service/openapi.yaml").into(),
    ));
    let has = |op: &str, rule: &str| {
        spec.findings
            .iter()
            .any(|f| f.operation.as_deref() == Some(op) && f.rule == rule)
    };
    assert!(
        spec.findings.iter().all(|f| f.rule != "RC290"),
        "{:?}",
        spec.findings
    );
    assert!(has("PUT /profiles/{id}", "RC201"));
    assert!(has("PUT /profiles/{id}", "RC206"));
    assert!(!has("PUT /profiles/{id}/checked", "RC201"));
    assert!(has("POST /coupons/{code}/redeem", "RC202"));
    assert!(!has("POST /coupons/{code}/redeem-atomic", "RC202"));
    assert!(has("POST /transfers", "RC204"));

    // Behaviour: a real burst on a real DynamoDB-compatible server.
    let (_moto, endpoint) = moto();
    let (_demo, url) = demo(&endpoint);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut lost = vec![];
        for rep in 0..3 {
            // Counter: racy, atomic, and racy-with-racecheck's-fix.
            for (path, racy) in [
                ("incr", true),
                ("incr-atomic", false),
                ("incr-fixed", false),
            ] {
                let id = format!("{path}-{rep}");
                let p = counter_plan(&url, &id, path);
                let r = probe(&p).await;
                if racy {
                    assert_eq!(rules(&r), ["RC401"], "{:?}", r.probe);
                    for round in &r.probe.as_ref().unwrap().rounds {
                        lost.push(
                            f64::from(round.successes)
                                - (round.after.unwrap() - round.before.unwrap()),
                        );
                    }
                } else {
                    assert!(r.findings.is_empty(), "{path}: {:?}", r.findings);
                }
            }
            // A one-time coupon and a withdrawal of the whole balance: one success allowed.
            for (path, racy) in [("redeem", true), ("redeem-atomic", false)] {
                let code = format!("{path}-{rep}");
                let p = coupon_plan(&url, &code, path);
                let r = probe(&p).await;
                assert_eq!(
                    rules(&r),
                    if racy {
                        vec!["RC402".to_string()]
                    } else {
                        vec![]
                    },
                    "{path}: {:?}",
                    r.probe
                );
            }
            for (path, racy) in [("withdraw", true), ("withdraw-atomic", false)] {
                let id = format!("{path}-{rep}");
                let p = withdraw_plan(&url, &id, path);
                let r = probe(&p).await;
                assert_eq!(
                    rules(&r),
                    if racy {
                        vec!["RC402".to_string()]
                    } else {
                        vec![]
                    },
                    "{path}: {:?}",
                    r.probe
                );
            }
        }
        eprintln!("demo counter: updates lost per 8-request round: {lost:?}");
    });

    // From suspicion to proof: `audit --base-url` builds each finding's plan from its route and
    // the OpenAPI document and probes it; the racy handlers are confirmed, what a burst cannot
    // show stays untested and says why.
    let service = format!("{ROOT}/tools/demo-service");
    let out = racecheck(
        std::path::Path::new(ROOT),
        &["audit", &service, "--base-url", &url, "--format", "json"],
    );
    let audit: Report = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    let status = |rule: &str, op: &str| {
        let f = audit
            .findings
            .iter()
            .find(|f| f.rule == rule && f.operation.as_deref() == Some(op))
            .unwrap_or_else(|| panic!("no {rule} on {op}"));
        let p = f
            .proof
            .as_ref()
            .unwrap_or_else(|| panic!("{rule} on {op} has no proof"));
        (p.status, p.detail.clone(), p.missing.clone())
    };
    use racecheck::model::ProofStatus::*;
    for (rule, op) in [
        ("RC103", "POST /counters/{id}/incr"),
        ("RC102", "POST /coupons/{code}/redeem"),
        ("RC102", "POST /accounts/{id}/withdraw"),
        ("RC101", "PUT /profiles/{id}"),
    ] {
        let (s, detail, _) = status(rule, op);
        assert_eq!(s, Confirmed, "{rule} {op}: {detail}");
    }
    let (s, _, missing) = status("RC104", "POST /transfers");
    assert_eq!(s, Untested);
    assert!(!missing.is_empty());
    assert!(audit.findings.iter().all(|f| f.proof.is_some()));

    // An independent MCP client runs the probe and gets progress and the verdict.
    let env = Command::new("bash")
        .arg(format!("{ROOT}/tools/py-env"))
        .output()
        .unwrap();
    assert!(
        env.status.success(),
        "{}",
        String::from_utf8_lossy(&env.stderr)
    );
    let python = String::from_utf8_lossy(&env.stdout).trim().to_string();
    let out = Command::new(python)
        .arg(format!("{ROOT}/tests/mcp/probe_demo.py"))
        .arg(env!("CARGO_BIN_EXE_racecheck"))
        .arg(&url)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("{stdout}");
}

fn racecheck(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_racecheck"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

/// racecheck's own edits, applied to a copy of the demo, make its racy endpoints pass the
/// probe that catches them on the originals (`demo_end_to_end`).
#[test]
fn patched_demo_passes_the_probe() {
    let tmp = tempfile::tempdir().unwrap();
    let copy = tmp.path().join("demo-service-patched");
    scratch::copy_dir(&PathBuf::from(ROOT).join("tools/demo-service"), &copy);
    scratch::manifest(&copy, "demo-service-patched");

    // `--diff` prints a patch `git apply` takes, and writes nothing.
    let diff = racecheck(&copy, &["fix", ".", "--diff", "--unsafe-fixes"]);
    assert_eq!(
        diff.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&diff.stderr)
    );
    for file in ["accounts", "counters", "coupons"] {
        let header = format!("+++ b/src/{file}.rs");
        assert!(
            String::from_utf8_lossy(&diff.stdout).contains(&header),
            "{header}"
        );
    }
    let mut git = Command::new("git")
        .args(["apply", "--check", "-"])
        .current_dir(&copy)
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run git apply");
    std::io::Write::write_all(&mut git.stdin.take().unwrap(), &diff.stdout).unwrap();
    let checked = git.wait_with_output().unwrap();
    assert!(
        checked.status.success(),
        "git apply: {}",
        String::from_utf8_lossy(&checked.stderr)
    );

    // `--apply` writes the same edits; the rules they fix are then clean, the others remain.
    let applied = racecheck(&copy, &["fix", ".", "--apply", "--unsafe-fixes"]);
    let said = String::from_utf8_lossy(&applied.stdout).to_string();
    assert!(said.starts_with("Applied 3 fixes in 3 files."), "{said}");
    let clean = racecheck(&copy, &["scan", ".", "--rule", "RC102", "--rule", "RC103"]);
    assert_eq!(
        clean.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&clean.stdout)
    );
    let rest = racecheck(&copy, &["scan", ".", "--format", "json"]);
    let rest: Report = serde_json::from_slice(&rest.stdout).unwrap();
    let mut left: Vec<&str> = rest.findings.iter().map(|f| f.rule.as_str()).collect();
    left.sort();
    assert_eq!(left, ["RC101", "RC104"], "{said}");

    // The patched service builds and, on moto, no longer loses updates or overruns limits.
    assert!(
        scratch::cargo(&copy, "build"),
        "the patched demo does not build"
    );
    let (_moto, endpoint) = moto();
    let (_demo, url) = demo_at(
        target_dir().join("debug/demo-service-patched"),
        &endpoint,
        25,
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        for rep in 0..2 {
            let id = format!("patched-{rep}");
            let counter = counter_plan(&url, &id, "incr");
            let coupon = coupon_plan(&url, &id, "redeem");
            let withdraw = withdraw_plan(&url, &id, "withdraw");
            for p in [counter, coupon, withdraw] {
                let r = probe(&p).await;
                assert!(r.findings.is_empty(), "{}: {:?}", p.target.url, r.probe);
                let rounds = &r.probe.as_ref().unwrap().rounds;
                assert!(
                    rounds.iter().all(|x| x.successes >= 1),
                    "{}: {rounds:?}",
                    p.target.url
                );
            }
        }
    });
}

/// With the interleaving proxy between the demo and moto, and no race window at all in the
/// demo, `audit --base-url --interleave` confirms every racy endpoint, and each of its plans
/// shows the race in every one of 5 rounds of 2 requests; the correct twins show nothing.
#[test]
fn interleaving_makes_races_reproduce_every_time() {
    let (_moto, db) = moto();
    let port = free_port();
    let proxy_url = format!("http://127.0.0.1:{port}");
    // `racecheck interleave` on its own: the demo creates its tables through it.
    let standalone = || {
        let child = Command::new(env!("CARGO_BIN_EXE_racecheck"))
            .args([
                "interleave",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--upstream",
                &db,
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start racecheck interleave");
        let mut proxy = Guard(child, "racecheck interleave");
        wait_http(&format!("{proxy_url}/__racecheck/disarm"), &mut proxy);
        proxy
    };
    let proxy = standalone();
    let (_demo, url) = demo_at(target_dir().join("debug/demo-service"), &proxy_url, 0);
    drop(proxy);

    // `audit --interleave URL --interleave-upstream DB` starts the proxy itself for its run.
    let service = format!("{ROOT}/tools/demo-service");
    let out = racecheck(
        std::path::Path::new(ROOT),
        &[
            "audit",
            &service,
            "--base-url",
            &url,
            "--interleave",
            &proxy_url,
            "--interleave-upstream",
            &db,
            "--format",
            "json",
        ],
    );
    let audit: Report = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    use racecheck::model::ProofStatus;
    // Each correct twin's contract findings get plans of their own, from what its handler
    // writes, and show nothing.
    for op in [
        "POST /counters/{id}/incr-atomic",
        "POST /counters/{id}/incr-fixed",
        "POST /coupons/{code}/redeem-atomic",
        "POST /accounts/{id}/withdraw-atomic",
    ] {
        let on_op: Vec<_> = audit
            .findings
            .iter()
            .filter(|f| f.operation.as_deref() == Some(op))
            .collect();
        assert!(!on_op.is_empty(), "no finding on {op}");
        for f in on_op {
            let p = f.proof.as_ref().unwrap();
            assert_eq!(
                p.status,
                ProofStatus::NotReproduced,
                "{} {op}: {}",
                f.rule,
                p.detail
            );
        }
    }
    // Every finding on an operation has a verdict or says what is missing.
    for f in audit.findings.iter().filter(|f| f.operation.is_some()) {
        let p = f.proof.as_ref().unwrap();
        assert!(
            p.status != ProofStatus::Untested || !p.missing.is_empty(),
            "{} {:?}: {}",
            f.rule,
            f.operation,
            p.detail
        );
    }
    let proxy = standalone();
    let racy = [
        ("RC103", "POST /counters/{id}/incr", Some("incr-atomic")),
        (
            "RC102",
            "POST /coupons/{code}/redeem",
            Some("redeem-atomic"),
        ),
        (
            "RC102",
            "POST /accounts/{id}/withdraw",
            Some("withdraw-atomic"),
        ),
        ("RC101", "PUT /profiles/{id}", None),
    ];
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut plain = vec![];
    for (rule, op, twin) in racy {
        let f = audit
            .findings
            .iter()
            .find(|f| f.rule == rule && f.operation.as_deref() == Some(op))
            .unwrap_or_else(|| panic!("no {rule} on {op}"));
        let proof = f.proof.as_ref().unwrap();
        assert_eq!(
            proof.status,
            racecheck::model::ProofStatus::Confirmed,
            "{op}: {}",
            proof.detail
        );
        let plan: Plan = serde_json::from_value(proof.plan.clone()).unwrap();
        assert_eq!((plan.concurrency, plan.rounds), (Some(2), Some(5)));
        let shown = |x: &racecheck::model::ProbeRound| match plan.mode {
            Mode::LimitOverrun => x.successes > 1,
            _ => x.after.unwrap() - x.before.unwrap() < f64::from(x.successes),
        };
        rt.block_on(async {
            // Every round of 2 requests shows the race, and the proxy says how.
            let r = probe(&plan).await;
            let rounds = &r.probe.as_ref().unwrap().rounds;
            assert_eq!(rounds.len(), 5);
            for x in rounds {
                assert!(shown(x), "{op}: a round without the race: {x:?}");
                assert!(
                    x.interleaving
                        .iter()
                        .any(|l| l.contains("held and released together")),
                    "{x:?}"
                );
            }
            // The correct twin, probed the same way, shows nothing.
            if let Some(twin) = twin {
                let mut t = plan.clone();
                let last = op.rsplit('/').next().unwrap();
                t.target.url = t
                    .target
                    .url
                    .replace(&format!("/{last}"), &format!("/{twin}"));
                let r = probe(&t).await;
                assert!(r.findings.is_empty(), "{twin}: {:?}", r.probe);
            }
            // The same 2-request rounds without the proxy: how often a plain burst catches it.
            let mut p = plan.clone();
            p.interleave = None;
            let r = probe(&p).await;
            let rounds = &r.probe.as_ref().unwrap().rounds;
            let caught = rounds.iter().filter(|x| shown(x)).count();
            plain.push(format!("{op}: {caught} of {}", rounds.len()));
        });
    }
    eprintln!("without the proxy, 5 rounds of 2 requests at 0 ms: {plain:?}");
    drop(proxy);
}
