//! The probe against a real HTTP server in this process (`tools/racy-server`): racy endpoints
//! show RC401/RC402 every time, safe ones never; safety holds before any traffic; caps,
//! redaction, cancellation, and targets that refuse, hang or answer garbage.

use std::collections::BTreeMap;
use std::time::Duration;

use racecheck::model::{ProbeRound, Report};
use racecheck::probe::plan::{Expect, Mode, ObserveSpec, Plan, RequestSpec};
use racecheck::probe::safety::Policy;
use racy_server::RacyServer;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

fn plan(target: &str, observe: Option<(&str, &str)>, mode: Mode) -> Plan {
    Plan {
        target: RequestSpec {
            method: Some("POST".into()),
            url: target.into(),
            headers: BTreeMap::new(),
            body: json!({"by": 1}),
        },
        observe: observe.map(|(url, pointer)| ObserveSpec {
            method: None,
            url: url.into(),
            headers: None,
            pointer: pointer.into(),
        }),
        create: None,
        reset: None,
        mode,
        concurrency: Some(12),
        rounds: Some(2),
        expect: Expect::default(),
        http2: false,
        request_timeout_ms: Some(3_000),
        max_duration_ms: Some(30_000),
        interleave: None,
    }
}

async fn probe(p: &Plan) -> Report {
    let mut rounds: Vec<ProbeRound> = vec![];
    let mut on_round = |_: u32, _: u32, r: &ProbeRound| rounds.push(r.clone());
    let report = racecheck::probe::run(
        p,
        &Policy::default(),
        &mut on_round,
        &CancellationToken::new(),
    )
    .await;
    if let Some(s) = &report.probe {
        assert_eq!(s.rounds, rounds, "progress reports every round");
    }
    report
}

/// The racy server's counter, read directly.
async fn counter(server: &RacyServer) -> Value {
    reqwest::get(server.url("/counter"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn rules(r: &Report) -> Vec<String> {
    r.findings.iter().map(|f| f.rule.clone()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_updates_on_the_racy_counter_every_time_and_never_on_the_safe_one() {
    let server = RacyServer::start(Duration::from_millis(15)).await.unwrap();
    let observe = Some((server.url("/counter"), "/value".to_string()));
    let observe = observe.as_ref().map(|(u, p)| (u.as_str(), p.as_str()));
    let mut lost = vec![];
    for _ in 0..5 {
        let r = probe(&plan(
            &server.url("/counter/incr-racy"),
            observe,
            Mode::LostUpdate,
        ))
        .await;
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        assert_eq!(rules(&r), ["RC401"], "{:?}", r.probe);
        let s = r.probe.unwrap();
        for round in &s.rounds {
            assert_eq!(round.successes, 12);
            let change = round.after.unwrap() - round.before.unwrap();
            assert!(change < 12.0, "{round:?}");
            lost.push(12.0 - change);
        }
    }
    eprintln!("racy counter: lost updates per 12-request round: {lost:?}");
    for _ in 0..5 {
        let r = probe(&plan(
            &server.url("/counter/incr-safe"),
            observe,
            Mode::LostUpdate,
        ))
        .await;
        assert!(r.findings.is_empty(), "{:?}", r.findings);
        let s = r.probe.unwrap();
        assert!(s.verdict.contains("no update was lost"), "{}", s.verdict);
        for round in &s.rounds {
            assert_eq!(round.after.unwrap() - round.before.unwrap(), 12.0);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limit_overrun_on_the_racy_coupon_and_conflicts_on_the_safe_one() {
    let server = RacyServer::start(Duration::from_millis(15)).await.unwrap();
    for (path, racy) in [
        ("/coupon/redeem-racy", true),
        ("/coupon/redeem-safe", false),
    ] {
        for _ in 0..5 {
            let mut p = plan(
                &server.url(path),
                Some((&server.url("/coupon"), "/redemptions")),
                Mode::LimitOverrun,
            );
            p.reset = Some(RequestSpec {
                method: Some("POST".into()),
                url: server.url("/reset"),
                headers: BTreeMap::new(),
                body: Value::Null,
            });
            p.expect.max_successes = Some(1);
            let r = probe(&p).await;
            assert!(r.errors.is_empty(), "{:?}", r.errors);
            if racy {
                assert_eq!(rules(&r), ["RC402"], "{:?}", r.probe);
            } else {
                assert!(r.findings.is_empty(), "{:?}", r.findings);
                let s = r.probe.unwrap();
                assert!(s.verdict.contains("22 of 24 got 409"), "{}", s.verdict);
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_and_errors_under_contention() {
    let server = RacyServer::start(Duration::from_millis(15)).await.unwrap();
    let r = probe(&plan(&server.url("/unlimited"), None, Mode::RateLimit)).await;
    assert_eq!(rules(&r), ["RC403"]);
    let r = probe(&plan(&server.url("/limited"), None, Mode::RateLimit)).await;
    assert!(r.findings.is_empty(), "{:?}", r.findings);
    assert!(r.probe.unwrap().verdict.contains("got 429"));
    let r = probe(&plan(&server.url("/flaky"), None, Mode::RateLimit)).await;
    assert!(rules(&r).contains(&"RC404".to_string()), "{:?}", r.findings);
}

#[tokio::test]
async fn non_loopback_and_caps_are_refused_before_any_traffic() {
    let server = RacyServer::start(Duration::from_millis(1)).await.unwrap();
    // The observe URL is elsewhere: nothing at all may be sent, not even to the loopback target.
    for bad in [
        "http://10.0.0.1/x",
        "http://example.invalid/x",
        "http://[2001:db8::1]/x",
    ] {
        let p = plan(
            &server.url("/counter/incr-racy"),
            Some((bad, "/value")),
            Mode::LostUpdate,
        );
        let r = probe(&p).await;
        assert!(
            r.errors[0].message.contains("not a loopback address"),
            "{:?}",
            r.errors
        );
    }
    let mut p = plan(&server.url("/counter/incr-racy"), None, Mode::RateLimit);
    for (set, words) in [
        ((51, 1), "concurrency 51 is over the cap of 50"),
        ((10, 11), "rounds 11 is over the cap of 10"),
        ((50, 5), "concurrency x rounds 250 is over the cap of 200"),
    ] {
        p.concurrency = Some(set.0);
        p.rounds = Some(set.1);
        let r = probe(&p).await;
        assert!(r.errors[0].message.contains(words), "{:?}", r.errors);
    }
    p.concurrency = Some(2);
    p.rounds = Some(1);
    p.request_timeout_ms = Some(60_000);
    assert!(probe(&p).await.errors[0]
        .message
        .contains("request_timeout_ms 60000 is over the cap"));
    let counter = counter(&server).await;
    assert_eq!(counter["value"], 0, "no request reached the server");
}

#[tokio::test]
async fn secrets_never_appear_in_output() {
    let server = RacyServer::start(Duration::from_millis(1)).await.unwrap();
    let mut p = plan(
        &server.url("/counter/incr-racy?api_key=hunter2"),
        Some((&server.url("/counter"), "/value")),
        Mode::LostUpdate,
    );
    p.target
        .headers
        .insert("Authorization".into(), "Bearer s3cr3t-value".into());
    p.target
        .headers
        .insert("X-Session-Token".into(), "tok-4242".into());
    p.target
        .headers
        .insert("Cookie".into(), "sid=cookie-9999".into());
    let r = probe(&p).await;
    let text = racecheck::report::text(&r, &Default::default());
    let json = serde_json::to_string(&r).unwrap();
    for secret in ["s3cr3t-value", "tok-4242", "cookie-9999", "hunter2"] {
        assert!(
            !text.contains(secret) && !json.contains(secret),
            "{secret} leaked"
        );
    }
}

#[tokio::test]
async fn cancellation_stops_the_probe() {
    let server = RacyServer::start(Duration::from_millis(1)).await.unwrap();
    let p = plan(
        &server.url("/counter/incr-racy"),
        Some((&server.url("/counter"), "/value")),
        Mode::LostUpdate,
    );
    let cancel = CancellationToken::new();
    cancel.cancel();
    let r = racecheck::probe::run(&p, &Policy::default(), &mut |_, _, _| {}, &cancel).await;
    assert!(
        r.errors[0]
            .message
            .contains("cancelled after 0 of 2 rounds"),
        "{:?}",
        r.errors
    );
}

#[tokio::test]
async fn refused_hanging_and_garbage_targets_fail_clearly_within_the_cap() {
    // Nothing listens on this port.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let mut p = plan(&format!("http://127.0.0.1:{port}/x"), None, Mode::RateLimit);
    p.request_timeout_ms = Some(500);
    let r = probe(&p).await;
    assert!(
        r.errors[0].message.contains("cannot connect"),
        "{:?}",
        r.errors
    );

    // Accepts and never answers.
    let hang = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hang_url = format!("http://{}/x", hang.local_addr().unwrap());
    let keep = tokio::spawn(async move {
        let mut held = vec![];
        while let Ok((s, _)) = hang.accept().await {
            held.push(s);
        }
    });
    let mut p = plan(&hang_url, None, Mode::RateLimit);
    p.request_timeout_ms = Some(300);
    p.rounds = Some(1);
    let r = probe(&p).await;
    let round = &r.probe.as_ref().unwrap().rounds[0];
    assert_eq!(round.statuses.get("error"), Some(&12), "{round:?}");
    assert!(
        round.errors[0].contains("no complete response within 300 ms"),
        "{round:?}"
    );
    keep.abort();

    // Answers something that is not HTTP.
    let garbage = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let garbage_url = format!("http://{}/x", garbage.local_addr().unwrap());
    let serve = tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        let mut held = vec![];
        while let Ok((mut s, _)) = garbage.accept().await {
            let _ = s.write_all(b"SSH-2.0-OpenSSH\r\n\r\n").await;
            held.push(s);
        }
    });
    let mut p = plan(&garbage_url, None, Mode::RateLimit);
    p.rounds = Some(1);
    let r = probe(&p).await;
    let round = &r
        .probe
        .as_ref()
        .unwrap_or_else(|| panic!("{:?}", r.errors))
        .rounds[0];
    assert!(round.errors[0].contains("not HTTP/1.1"), "{round:?}");
    serve.abort();
}

/// HTTP/2 (h2c) with the single-packet technique: the same verdicts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_single_packet_shows_the_same_races() {
    let server = RacyServer::start_h2(Duration::from_millis(15))
        .await
        .unwrap();
    for _ in 0..3 {
        let mut p = plan(
            &server.url("/counter/incr-racy"),
            Some((&server.url("/counter"), "/value")),
            Mode::LostUpdate,
        );
        p.http2 = true;
        // Observe over HTTP/2 too: this server speaks nothing else.
        p.observe = None;
        p.mode = Mode::RateLimit;
        let r = probe(&p).await;
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        let s = r.probe.unwrap();
        assert!(s.rounds.iter().all(|r| r.successes == 12), "{:?}", s.rounds);
    }
    // 3 probes of 2 rounds x 12 successful increments: the racy counter kept far fewer.
    let counted = count_h2(server.addr).await;
    assert!(
        counted < 72,
        "the racy counter kept {counted} of 72 increments"
    );
}

/// Read the racy server's counter over HTTP/2.
async fn count_h2(addr: std::net::SocketAddr) -> i64 {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (client, conn) = h2::client::handshake(tcp).await.unwrap();
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let mut client = client.ready().await.unwrap();
    let req = http::Request::get(format!("http://{addr}/counter"))
        .body(())
        .unwrap();
    let (resp, _) = client.send_request(req, true).unwrap();
    let mut body = resp.await.unwrap().into_body();
    let mut bytes = vec![];
    while let Some(chunk) = body.data().await {
        bytes.extend_from_slice(&chunk.unwrap());
    }
    let v: Value = serde_json::from_slice(&bytes).unwrap();
    v["value"].as_i64().unwrap()
}

#[tokio::test]
async fn line_breaks_and_non_tokens_in_methods_and_headers_are_refused_before_any_traffic() {
    let server = RacyServer::start(Duration::from_millis(1)).await.unwrap();
    let base = plan(&server.url("/counter/incr-racy"), None, Mode::RateLimit);
    let mut cases: Vec<(Plan, &str)> = vec![];
    let mut p = base.clone();
    p.target.method = Some("POST /x HTTP/1.1\r\nHost: elsewhere\r\n\r\nGET".into());
    cases.push((p, "target.method"));
    let mut p = base.clone();
    p.target
        .headers
        .insert("X-Note".into(), "a\r\nHost: evil.example".into());
    cases.push((p, "target.headers.X-Note"));
    let mut p = base.clone();
    p.target.headers.insert("Bad Name".into(), "v".into());
    cases.push((p, "is not a header name"));
    let mut p = base.clone();
    p.target.headers.insert("X-Nul".into(), "a\0b".into());
    cases.push((p, "line break or NUL"));
    let mut p = base.clone();
    p.observe = Some(ObserveSpec {
        method: Some("GET\n".into()),
        url: server.url("/counter"),
        headers: None,
        pointer: "/value".into(),
    });
    cases.push((p, "observe.method"));
    for (p, words) in cases {
        let r = probe(&p).await;
        assert!(
            r.errors.first().is_some_and(|e| e.message.contains(words)),
            "{words}: {:?}",
            r.errors
        );
    }
    let counter = counter(&server).await;
    assert_eq!(counter["value"], 0, "no request reached the server");
}

/// Proxy variables are not honoured: observe requests (which carry the target's credentials)
/// go straight to the checked loopback address, never to the proxy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_variables_are_ignored() {
    let server = RacyServer::start(Duration::from_millis(1)).await.unwrap();
    let proxy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    proxy.set_nonblocking(true).unwrap();
    let proxy_url = format!("http://{}", proxy.local_addr().unwrap());
    let (target, observe) = (server.url("/counter/incr-safe"), server.url("/counter"));
    let proxy_env = proxy_url.clone();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_racecheck"))
            .args([
                "probe",
                "--url",
                &target,
                "--method",
                "POST",
                "--header",
                "Authorization: Bearer secret-token",
                "--body",
                r#"{"by": 1}"#,
                "--observe",
                &observe,
                "--pointer",
                "/value",
                "--concurrency",
                "3",
                "--rounds",
                "1",
                "--format",
                "json",
            ])
            .env("HTTP_PROXY", &proxy_env)
            .env("http_proxy", &proxy_env)
            .env("ALL_PROXY", &proxy_env)
            .env("all_proxy", &proxy_env)
            .env_remove("NO_PROXY")
            .env_remove("no_proxy")
            .output()
    })
    .await
    .unwrap()
    .unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert!(
        report["errors"].as_array().is_none_or(|e| e.is_empty()),
        "{report}"
    );
    assert!(
        proxy.accept().is_err(),
        "a request went to the proxy instead of the checked address"
    );
    let counter: Value = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(server.url("/counter"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(counter["value"], 3, "the burst reached the server directly");
}

/// The document of the racy server's tickets: created by POST, used once.
const TICKETS: &str = r#"
openapi: 3.0.3
info: {title: tickets, version: "1"}
paths:
  /tickets:
    post:
      requestBody:
        content:
          application/json:
            schema: {type: object, properties: {seats: {type: integer, example: 4}}}
      responses:
        '201':
          description: created
          content:
            application/json:
              schema: {type: object, properties: {ticket_id: {type: string}, uses: {type: integer}}}
  /tickets/{ticketId}:
    get:
      parameters: [{name: ticketId, in: path, required: true, schema: {type: string}}]
      responses:
        '200':
          description: the ticket
          content:
            application/json:
              schema: {type: object, properties: {ticket_id: {type: string}, uses: {type: integer}}}
  /tickets/{ticketId}/use-racy:
    post:
      parameters: [{name: ticketId, in: path, required: true, schema: {type: string}}]
      responses: {'200': {description: used}, '409': {description: used before}}
  /tickets/{ticketId}/use-safe:
    post:
      parameters: [{name: ticketId, in: path, required: true, schema: {type: string}}]
      responses: {'200': {description: used}, '409': {description: used before}}
"#;

/// An item only the service can name: the plan creates one through the collection's POST
/// before each round and acts on the id the response names (`ticket_id`, through the route's
/// `:id`). The racy use is confirmed; the safe one is not.
#[tokio::test]
async fn plans_create_the_item_through_the_collection_post() {
    use racecheck::audit::plans::{derive, verdict, Derived, Service};
    use racecheck::model::{Confidence, Location, ProofStatus, Route};
    let server = RacyServer::start(Duration::from_millis(30)).await.unwrap();
    let (spec, ops) = racecheck::spec::check_with_ops(&racecheck::spec::SpecInput::Inline {
        content: TICKETS.into(),
        base_dir: None,
    });
    assert!(spec.errors.is_empty(), "{:?}", spec.errors);
    let facts = racecheck::audit::ServiceFacts {
        ops,
        handlers: vec![],
    };
    let params = BTreeMap::new();
    let base = server.url("");
    let svc = Service::new(&base, &params, &facts, None);
    let finding = |path: &str| {
        let mut f = racecheck::rules::source::check_then_act::RULE.finding(
            Confidence::High,
            "the ticket's `uses` is checked, then written".into(),
            Location {
                file: "src/tickets.rs".into(),
                line: 1,
                column: 1,
                end_line: 1,
                end_column: 1,
                pointer: None,
            },
        );
        f.routes = vec![Route {
            method: "POST".into(),
            path: path.into(),
            handler: "use_ticket".into(),
        }];
        f
    };
    for (path, racy) in [
        ("/tickets/:id/use-racy", true),
        ("/tickets/:id/use-safe", false),
    ] {
        let plan = match derive(&finding(path), &svc, 0) {
            Derived::Ready(p) => p,
            Derived::Missing { missing, .. } => panic!("{path}: missing {missing:?}"),
        };
        let create = plan.create.as_ref().expect("a create request");
        assert_eq!(create.request.url, server.url("/tickets"));
        assert_eq!(create.id_pointer, "/ticket_id");
        // A limit is probed at one unit.
        assert_eq!(create.request.body, json!({"seats": 1}));
        assert!(
            plan.target.url.contains(&create.placeholder),
            "{}",
            plan.target.url
        );
        assert!(plan.reset.is_none());
        assert_eq!(plan.observe.as_ref().unwrap().pointer, "/uses");
        let report = probe(&plan).await;
        let proof = verdict(&plan, &report);
        let want = if racy {
            ProofStatus::Confirmed
        } else {
            ProofStatus::NotReproduced
        };
        assert_eq!(proof.status, want, "{path}: {}", proof.detail);
        // Every round acted on its own new ticket.
        let rounds = &report.probe.as_ref().unwrap().rounds;
        assert!(rounds.iter().all(|r| r.before == Some(0.0)), "{rounds:?}");
    }
}

/// A create request whose answer has no id at the pointer stops the probe with the reason,
/// before any burst.
#[tokio::test]
async fn a_create_without_an_id_says_so() {
    let server = RacyServer::start(Duration::from_millis(1)).await.unwrap();
    let mut p = plan(
        &server.url("/tickets/{id}/use-racy"),
        Some((&server.url("/tickets/{id}"), "/uses")),
        Mode::LimitOverrun,
    );
    p.create = Some(racecheck::probe::plan::CreateSpec {
        request: RequestSpec {
            method: Some("POST".into()),
            url: server.url("/tickets"),
            headers: BTreeMap::new(),
            body: Value::Null,
        },
        id_pointer: "/id".into(),
        placeholder: "{id}".into(),
    });
    let r = probe(&p).await;
    assert!(r.probe.is_none() || r.probe.as_ref().unwrap().rounds.is_empty());
    let e = &r.errors[0].message;
    assert!(e.contains("no string or number at `/id`"), "{e}");
    // The create request is held to the same hosts as the rest.
    p.create.as_mut().unwrap().request.url = "http://10.1.2.3/tickets".into();
    let r = probe(&p).await;
    assert!(
        r.errors[0].message.contains("not a loopback address"),
        "{:?}",
        r.errors
    );
    assert_eq!(server.arrival_spread().1, 0, "nothing reached a target");
}
