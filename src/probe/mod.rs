//! The probe: synchronized bursts at one endpoint of a running development service, with the
//! state observed before and after each round, turned into findings with numbers.

pub mod burst;
pub mod interleave;
pub mod plan;
pub mod safety;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::model::{
    AnalysisError, ErrorKind, EvidenceStep, Finding, Location, ProbeRound, ProbeSummary, Report,
    StepKind,
};
use crate::rules::probe as rules;
use plan::{CreateSpec, Mode, Plan, RequestSpec};
use safety::{Endpoint, Limits, Policy};

/// Progress after each round: (round done, rounds, what it saw).
pub type OnRound<'a> = dyn FnMut(u32, u32, &ProbeRound) + Send + 'a;

fn error_report(message: String, target: &str) -> Report {
    Report::failed(AnalysisError::new(ErrorKind::Invalid, target, message))
}

/// The body and the headers a request carries besides the ones the engine sets itself (host,
/// length, connection), with a JSON content type unless the plan gives one.
fn body_and_headers(spec: &RequestSpec) -> (Vec<u8>, Vec<(&str, &str)>) {
    let body = if spec.body.is_null() {
        vec![]
    } else {
        spec.body.to_string().into_bytes()
    };
    let mut headers: Vec<(&str, &str)> = spec
        .headers
        .iter()
        .filter(|(k, _)| {
            !matches!(
                k.to_ascii_lowercase().as_str(),
                "host" | "content-length" | "connection"
            )
        })
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    if !body.is_empty()
        && !headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
    {
        headers.push(("Content-Type", "application/json"));
    }
    (body, headers)
}

/// The request bytes for the burst: HTTP/1.1, `Connection: close`, JSON body.
fn raw_request(method: &str, ep: &Endpoint, spec: &RequestSpec) -> Vec<u8> {
    let path = match ep.url.query() {
        Some(q) => format!("{}?{q}", ep.url.path()),
        None => ep.url.path().to_string(),
    };
    let (body, headers) = body_and_headers(spec);
    let mut s = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\nUser-Agent: racecheck-probe\r\nAccept: */*\r\nConnection: close\r\n", ep.host_header);
    for (k, v) in headers {
        s.push_str(&format!("{k}: {v}\r\n"));
    }
    s.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut bytes = s.into_bytes();
    bytes.extend_from_slice(&body);
    bytes
}

/// The request for the HTTP/2 engine, and its body.
fn h2_request(
    method: &str,
    ep: &Endpoint,
    spec: &RequestSpec,
) -> Result<(http::Request<()>, Vec<u8>), String> {
    let (body, headers) = body_and_headers(spec);
    let mut req = http::Request::builder().method(method).uri(ep.url.as_str());
    for (k, v) in headers {
        req = req.header(k, v);
    }
    let req = req
        .header("content-length", body.len())
        .body(())
        .map_err(|_| "the target's method or a header is not valid HTTP".to_string())?;
    Ok((req, body))
}

/// A request's own headers, or the target's when it gives none.
fn headers_or<'a>(
    r: &'a RequestSpec,
    target: &'a BTreeMap<String, String>,
) -> &'a BTreeMap<String, String> {
    if r.headers.is_empty() {
        target
    } else {
        &r.headers
    }
}

/// Longest id a create request may answer.
const MAX_ID: usize = 256;

/// Create the round's resource and return its id, percent-encoded as one path segment.
async fn create(
    client: &reqwest::Client,
    c: &CreateSpec,
    target_headers: &BTreeMap<String, String>,
) -> Result<String, String> {
    let m = c.request.method.clone().unwrap_or_else(|| "POST".into());
    let headers = headers_or(&c.request, target_headers);
    let shown = safety::redact_url(&c.request.url);
    let (status, v) = send(client, &m, &c.request.url, headers, &c.request.body).await?;
    if !(200..300).contains(&status) {
        return Err(format!("the create request {m} {shown} answered {status}"));
    }
    let id = match v.pointer(&c.id_pointer) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => {
            return Err(format!(
                "the response of the create request {m} {shown} has no string or number at `{}`",
                c.id_pointer
            ))
        }
    };
    if id.is_empty() || id.len() > MAX_ID {
        return Err(format!(
            "the create request {m} {shown} answered an id of {} bytes (1 to {MAX_ID} are used)",
            id.len()
        ));
    }
    // `.` and `..` are segments URL parsers remove (encoded or not): such an id would move
    // the target up the path.
    if id == "." || id == ".." {
        return Err(format!(
            "the create request {m} {shown} answered the id `{id}`, which would remove a segment of the URLs it goes into; nothing was sent with it"
        ));
    }
    // Only unreserved characters stay as they are: an id cannot add a segment, a query or
    // a fragment to the URLs it goes into.
    Ok(id
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect())
}

/// `url` with the round's created id in place of the create's placeholder.
fn with_id(plan: &Plan, url: &str, id: Option<&str>) -> String {
    match (&plan.create, id) {
        (Some(c), Some(id)) if !c.placeholder.is_empty() => url.replace(&c.placeholder, id),
        _ => url.to_string(),
    }
}

/// `url` for the target `ep` was checked as: the same host and port, or an error.
fn same_target(ep: &Endpoint, url: &str) -> Result<Endpoint, String> {
    let u = url::Url::parse(url)
        .map_err(|e| format!("`{}` is not a URL: {e}", safety::redact_url(url)))?;
    if u.host_str() != ep.url.host_str()
        || u.port_or_known_default() != ep.url.port_or_known_default()
    {
        return Err(format!(
            "the created id would send the target to another host (`{}`); put the placeholder in the path",
            safety::redact_url(url)
        ));
    }
    Ok(Endpoint {
        url: u,
        addr: ep.addr,
        host_header: ep.host_header.clone(),
    })
}

pub async fn resolve(ep: &Endpoint) -> Result<SocketAddr, String> {
    if let Some(a) = ep.addr {
        return Ok(a);
    }
    // Only hosts the operator allowed get here.
    let host = ep.url.host_str().unwrap_or_default();
    let port = ep.url.port_or_known_default().unwrap_or(80);
    tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| format!("cannot resolve `{host}`: {e}"))?
        .next()
        .ok_or_else(|| format!("`{host}` has no address"))
}

/// One request through reqwest (observe, reset); redirects are not followed, so a response
/// cannot send the probe to another host.
async fn send(
    client: &reqwest::Client,
    method: &str,
    spec_url: &str,
    headers: &BTreeMap<String, String>,
    body: &Value,
) -> Result<(u16, Value), String> {
    let m = reqwest::Method::from_bytes(method.as_bytes())
        .map_err(|_| format!("`{method}` is not an HTTP method"))?;
    let mut req = client.request(m, spec_url);
    for (k, v) in headers {
        req = req.header(k, v);
    }
    if !body.is_null() {
        req = req
            .header("content-type", "application/json")
            .body(body.to_string());
    }
    let shown = safety::redact_url(spec_url);
    let resp = req.send().await.map_err(|e| {
        if e.is_timeout() {
            format!("{method} {shown} timed out")
        } else if e.is_connect() {
            format!("cannot connect for {method} {shown}; is the service running?")
        } else {
            format!("{method} {shown} failed: {}", e.without_url())
        }
    })?;
    let status = resp.status().as_u16();
    let mut resp = resp;
    let mut body = vec![];
    // An endless or huge body stops at the cap: it cannot fill memory.
    while let Some(chunk) = resp.chunk().await.map_err(|e| {
        format!(
            "{method} {shown}: reading the body failed: {}",
            e.without_url()
        )
    })? {
        if body.len() + chunk.len() > safety::MAX_RESPONSE_BODY {
            return Err(format!(
                "{method} {shown}: the response body is over {} bytes; observe an endpoint that answers with the state only",
                safety::MAX_RESPONSE_BODY
            ));
        }
        body.extend_from_slice(&chunk);
    }
    Ok((status, serde_json::from_slice(&body).unwrap_or(Value::Null)))
}

fn number_at(v: &Value, pointer: &str) -> Option<f64> {
    match v.pointer(pointer)? {
        Value::Number(n) => n.as_f64(),
        Value::Bool(b) => Some(f64::from(u8::from(*b))),
        Value::Array(a) => Some(a.len() as f64),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

fn statuses(outcomes: &[burst::Outcome]) -> BTreeMap<String, u32> {
    let mut m = BTreeMap::new();
    for o in outcomes {
        let key = match o.status {
            Some(s) => s.to_string(),
            None => "error".to_string(),
        };
        *m.entry(key).or_insert(0) += 1;
    }
    m
}

/// Run the probe. Everything the plan asks is checked against the policy first; nothing is
/// sent when a check fails.
pub async fn run(
    plan: &Plan,
    policy: &Policy,
    on_round: &mut OnRound<'_>,
    cancel: &CancellationToken,
) -> Report {
    let method = plan
        .target
        .method
        .clone()
        .unwrap_or_else(|| "POST".into())
        .to_ascii_uppercase();
    let shown_target = format!("{method} {}", safety::redact_url(&plan.target.url));
    let limits = match Limits::of(plan).and_then(|l| safety::request_text(plan).map(|()| l)) {
        Ok(l) => l,
        Err(e) => return error_report(e, &shown_target),
    };
    let target = match safety::endpoint(&plan.target.url, policy) {
        Ok(t) => t,
        Err(e) => return error_report(e, &shown_target),
    };
    let mut extra = vec![];
    for url in plan
        .observe
        .iter()
        .map(|o| &o.url)
        .chain(plan.reset.iter().map(|r| &r.url))
        .chain(plan.create.iter().map(|c| &c.request.url))
        .chain(plan.interleave.iter())
    {
        match safety::endpoint(url, policy) {
            Ok(ep) => extra.push(ep),
            Err(e) => return error_report(e, &shown_target),
        }
    }
    if plan.mode == Mode::LostUpdate && plan.observe.is_none() {
        return error_report(
            "mode `lost-update` needs `observe` (a GET URL and a JSON pointer to the number the target changes)".into(),
            &shown_target,
        );
    }
    let started = Instant::now();
    let mut r = rounds(
        plan,
        &method,
        (&target, &extra),
        &limits,
        on_round,
        cancel,
        &shown_target,
    )
    .await;
    r.stats.elapsed_ms = started.elapsed().as_millis() as u64;
    r
}

/// The rounds, within the time cap: a probe that reaches it keeps the rounds it completed.
async fn rounds(
    plan: &Plan,
    method: &str,
    (target, extra): (&Endpoint, &[Endpoint]),
    limits: &Limits,
    on_round: &mut OnRound<'_>,
    cancel: &CancellationToken,
    shown_target: &str,
) -> Report {
    // No proxy: observe and reset requests carry the target's credentials, and go only to
    // the address racecheck checked.
    let mut builder = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(limits.request_timeout);
    // Every host name is resolved here, once, and reqwest connects to that address only (a
    // `*.localhost` name never reaches the system resolver).
    let mut addr = None;
    for ep in std::iter::once(target).chain(extra) {
        let a = match resolve(ep).await {
            Ok(a) => a,
            Err(e) => return error_report(e, shown_target),
        };
        addr.get_or_insert(a);
        if let Some(name) = ep.url.domain() {
            builder = builder.resolve(name, a);
        }
    }
    let Some(addr) = addr else {
        return error_report("no target address".into(), shown_target);
    };
    let client = match builder.build() {
        Ok(c) => c,
        Err(e) => return error_report(format!("cannot build the HTTP client: {e}"), shown_target),
    };
    let request = raw_request(method, target, &plan.target);
    // The proxy's control requests: loopback (checked with the other URLs), no proxy.
    let control = match reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(limits.request_timeout)
        .build()
    {
        Ok(c) => c,
        Err(e) => return error_report(format!("cannot build the HTTP client: {e}"), shown_target),
    };
    // `id`: the round's created resource, in place of the create's placeholder.
    let observe =
        |before: bool, id: Option<String>| {
            let client = &client;
            async move {
                let Some(o) = &plan.observe else {
                    return Ok(None);
                };
                let url = with_id(plan, &o.url, id.as_deref());
                let headers = o
                    .headers
                    .clone()
                    .unwrap_or_else(|| plan.target.headers.clone());
                let m = o.method.clone().unwrap_or_else(|| "GET".into());
                let (status, v) = send(client, &m, &url, &headers, &Value::Null).await?;
                if !(200..300).contains(&status) {
                    return Err(format!(
                        "observing {} {} answered {status}",
                        m,
                        safety::redact_url(&url)
                    ));
                }
                let n =
                    number_at(&v, &o.pointer).ok_or_else(|| {
                        format!(
                    "observe pointer `{}` does not name a number in the response of {} {} ({})",
                    o.pointer,
                    m,
                    safety::redact_url(&url),
                    if before { "before the burst" } else { "after the burst" }
                )
                    })?;
                Ok(Some(n))
            }
        };
    // Warm the service (and check it answers) before the first burst; with a reset, the first
    // round's reset and observation do it (the state may not exist before the reset).
    let deadline = tokio::time::Instant::now() + limits.max_duration;
    let capped = |done: u32| {
        format!(
            "the probe stopped at its time cap of {} ms (`max_duration_ms`) after {done} of {} rounds; the rounds completed are kept",
            limits.max_duration.as_millis(),
            limits.rounds
        )
    };
    if plan.reset.is_none() && plan.create.is_none() {
        match tokio::time::timeout_at(deadline, observe(true, None)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return error_report(e, shown_target),
            Err(_) => return error_report(capped(0), shown_target),
        }
    }
    let mut summary = ProbeSummary {
        target: shown_target.to_string(),
        mode: plan.mode.as_str().to_string(),
        rounds: vec![],
        verdict: String::new(),
    };
    let mut errors = vec![];
    let fail = |kind: ErrorKind, message: String| AnalysisError::new(kind, shown_target, message);
    for round in 1..=limits.rounds {
        if cancel.is_cancelled() {
            errors.push(fail(
                ErrorKind::Invalid,
                format!("cancelled after {} of {} rounds", round - 1, limits.rounds),
            ));
            break;
        }
        let one = async {
            let id = match &plan.create {
                Some(c) => Some(
                    create(&client, c, &plan.target.headers)
                        .await
                        .map_err(|e| (ErrorKind::Invalid, e))?,
                ),
                None => None,
            };
            // The round's own target when it acts on a created resource.
            let created = match &id {
                Some(id) => {
                    let ep = same_target(target, &with_id(plan, &plan.target.url, Some(id)))
                        .map_err(|e| (ErrorKind::Invalid, e))?;
                    let request = raw_request(method, &ep, &plan.target);
                    Some((ep, request))
                }
                None => None,
            };
            let (target, request) = match &created {
                Some((ep, r)) => (ep, r),
                None => (target, &request),
            };
            if let Some(r) = &plan.reset {
                let m = r.method.clone().unwrap_or_else(|| "POST".into());
                let headers = headers_or(r, &plan.target.headers);
                let url = with_id(plan, &r.url, id.as_deref());
                match send(&client, &m, &url, headers, &r.body).await {
                    Ok((s, _)) if (200..300).contains(&s) => {}
                    Ok((s, _)) => {
                        return Err((
                            ErrorKind::Invalid,
                            format!("the reset request answered {s}"),
                        ))
                    }
                    Err(e) => return Err((ErrorKind::Io, e)),
                }
            }
            let before = observe(true, id.clone())
                .await
                .map_err(|e| (ErrorKind::Io, e))?;
            if let Some(proxy) = &plan.interleave {
                // The hold ends early once every request's read is in; it runs out only when
                // a request never reads, so a long one costs nothing and survives a slow host.
                let arm = interleave::Arm {
                    parties: limits.concurrency as usize,
                    hold_ms: 3_000,
                };
                interleave::remote_arm(&control, proxy, &arm)
                    .await
                    .map_err(|e| (ErrorKind::Io, e))?;
            }
            let t = Instant::now();
            let burst = tokio::select! {
                _ = cancel.cancelled() => return Err((ErrorKind::Invalid, format!("cancelled during round {round}"))),
                b = async {
                    if plan.http2 {
                        let (req, body) = h2_request(method, target, &plan.target)?;
                        burst::single_packet(addr, req, &body, limits.concurrency as usize, limits.request_timeout).await
                    } else {
                        burst::last_byte(addr, request, limits.concurrency as usize, limits.request_timeout).await
                    }
                } => b,
            }
            .map_err(|e| (ErrorKind::Io, e))?;
            let interleaving = match &plan.interleave {
                Some(proxy) => interleave::describe(
                    &interleave::remote_disarm(&control, proxy)
                        .await
                        .map_err(|e| (ErrorKind::Io, e))?,
                ),
                None => vec![],
            };
            let after = observe(false, id).await.map_err(|e| (ErrorKind::Io, e))?;
            let successes = burst
                .outcomes
                .iter()
                .filter(|o| o.status.is_some_and(|s| (200..300).contains(&s)))
                .count() as u32;
            let rate_limit_headers = burst.outcomes.iter().any(|o| {
                o.headers
                    .iter()
                    .any(|(k, _)| k.contains("ratelimit") || k == "retry-after")
            });
            let failures: Vec<String> = burst
                .outcomes
                .iter()
                .filter_map(|o| o.error.clone())
                .collect();
            let r = ProbeRound {
                round,
                sent: limits.concurrency,
                statuses: statuses(&burst.outcomes),
                successes,
                before,
                after,
                release_spread_us: burst.release_spread.as_micros() as u64,
                elapsed_ms: t.elapsed().as_millis() as u64,
                rate_limit_headers,
                errors: failures.into_iter().take(3).collect(),
                interleaving,
            };
            Ok(r)
        };
        match tokio::time::timeout_at(deadline, one).await {
            Ok(Ok(r)) => {
                on_round(round, limits.rounds, &r);
                summary.rounds.push(r);
            }
            Ok(Err((kind, message))) => {
                errors.push(fail(kind, message));
                break;
            }
            Err(_) => {
                errors.push(fail(ErrorKind::Io, capped(round - 1)));
                break;
            }
        }
    }
    let expect_delta = plan.expect.delta_per_success.unwrap_or(1.0);
    let max_successes = plan.expect.max_successes.unwrap_or(1);
    let ctx = rules::ProbeCtx {
        summary: &summary,
        mode: plan.mode,
        delta_per_success: expect_delta,
        max_successes,
    };
    let mut findings: Vec<Finding> = vec![];
    for c in rules::run(&ctx) {
        let location = Location {
            file: shown_target.to_string(),
            line: 1,
            column: 1,
            end_line: 1,
            end_column: 1,
            pointer: None,
        };
        findings.push(Finding {
            operation: Some(shown_target.to_string()),
            evidence: c
                .evidence
                .into_iter()
                .map(|(round, note)| EvidenceStep {
                    kind: StepKind::Note,
                    file: shown_target.to_string(),
                    line: round,
                    column: 1,
                    note,
                })
                .collect(),
            fixes: c.fixes,
            ..c.rule.finding(c.confidence, c.message, location)
        });
    }
    let verdict = rules::verdict(&ctx, &findings);
    let inconclusive = rules::inconclusive(&ctx);
    summary.verdict = verdict;
    // Rounds that show nothing (no answers, no success) must not read as a clean result.
    if let (Some(why), true, true) = (inconclusive, findings.is_empty(), errors.is_empty()) {
        errors.push(fail(
            ErrorKind::Invalid,
            format!("the probe could not judge the endpoint: {why}"),
        ));
    }
    Report {
        stats: crate::model::Stats {
            findings: findings.len() as u64,
            errors: errors.len() as u64,
            ..Default::default()
        },
        findings,
        errors,
        probe: Some(summary),
    }
}

/// For tests and benchmarks: the request bytes a plan would send.
pub fn request_bytes(plan: &Plan, policy: &Policy) -> Result<(SocketAddr, Vec<u8>), String> {
    let ep = safety::endpoint(&plan.target.url, policy)?;
    let method = plan.target.method.clone().unwrap_or_else(|| "POST".into());
    let addr = ep.addr.ok_or("the target must be an IP or localhost")?;
    Ok((addr, raw_request(&method, &ep, &plan.target)))
}

/// A bounded default for one request, for callers that build their own bursts.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(safety::DEFAULT_REQUEST_TIMEOUT_MS);
