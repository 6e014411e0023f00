//! `audit`: routes matched to operations, and what the contract promises but the code does
//! not keep (RC301–RC303), on top of the source and contract findings.

use std::path::Path;

use racecheck::audit::audit;

#[test]
fn contract_promises_the_code_does_not_keep() {
    let report = audit(Path::new("tests/fixtures/audit"), None, Default::default());
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let mut got: Vec<(String, String, String)> = report
        .findings
        .iter()
        .filter(|f| f.rule.starts_with("RC3"))
        .map(|f| {
            (
                f.rule.clone(),
                f.function.clone().unwrap_or_default(),
                f.operation
                    .clone()
                    .unwrap_or_else(|| f.routes[0].path.clone()),
            )
        })
        .collect();
    got.sort();
    let want = [
        ("RC301", "crate::replace_item", "PUT /items/{itemId}"),
        ("RC302", "crate::purge", "/admin/purge"),
        ("RC303", "crate::bump", "PUT /counters/{id}"),
        ("RC303", "crate::charge", "POST /payments"),
    ];
    let want: Vec<(String, String, String)> = want
        .iter()
        .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
        .collect();
    assert_eq!(got, want);
    // The RC301 finding points at the unconditional write, with the spec line as evidence.
    let rc301 = report.findings.iter().find(|f| f.rule == "RC301").unwrap();
    assert!(rc301.location.file.ends_with("src/main.rs"));
    assert!(rc301
        .evidence
        .iter()
        .any(|e| e.file.ends_with("openapi.yaml")));
    // Contract findings are there too.
    assert!(report.findings.iter().any(|f| f.rule == "RC208"));
}

#[test]
fn demo_audit_joins_source_findings_to_operations() {
    let report = audit(Path::new("tools/demo-service"), None, Default::default());
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let incr = report.findings.iter().find(|f| f.rule == "RC103").unwrap();
    assert_eq!(incr.operation.as_deref(), Some("POST /counters/{id}/incr"));
    assert!(report
        .findings
        .iter()
        .any(|f| f.rule == "RC201" && f.operation.as_deref() == Some("PUT /profiles/{id}")));
    assert!(
        !report.findings.iter().any(|f| f.rule.starts_with("RC3")),
        "the demo documents every route it serves"
    );
}

#[test]
fn demo_audit_ranks_races_first_and_the_code_judges_the_contract() {
    use racecheck::model::Severity;
    let report = audit(Path::new("tools/demo-service"), None, Default::default());
    // The five source races lead, before the document's gaps of the same severity.
    let first: Vec<&str> = report.findings[..5]
        .iter()
        .map(|f| f.rule.as_str())
        .collect();
    assert!(first.iter().all(|r| r.starts_with("RC1")), "{first:?}");
    // A race lists the contract's findings on its operation.
    let incr = report.findings.iter().find(|f| f.rule == "RC103").unwrap();
    assert!(
        incr.evidence.iter().any(|e| e
            .note
            .contains("contract of POST /counters/{id}/incr also: RC202")),
        "{:?}",
        incr.evidence
    );
    // The atomic `ADD` cannot fail on a condition: no 409 to document there.
    let conflict = |op: &str| {
        report
            .findings
            .iter()
            .find(|f| f.rule == "RC202" && f.operation.as_deref() == Some(op))
            .unwrap()
    };
    let atomic = conflict("POST /counters/{id}/incr-atomic");
    assert_eq!(atomic.severity, Severity::Info);
    assert!(
        atomic.message.contains("the code refutes it"),
        "{}",
        atomic.message
    );
    // Where the code races, the missing 409 stands.
    assert_eq!(
        conflict("POST /counters/{id}/incr").severity,
        Severity::Medium
    );
    // A retried transfer moves money twice: high, where a retried counter bump is medium.
    let retry = |op: &str| {
        report
            .findings
            .iter()
            .find(|f| f.rule == "RC204" && f.operation.as_deref() == Some(op))
            .map(|f| f.severity)
    };
    assert_eq!(retry("POST /transfers"), Some(Severity::High));
    assert_eq!(retry("POST /counters/{id}/incr"), Some(Severity::Medium));
}

#[test]
fn a_service_without_a_spec_is_an_error() {
    let report = audit(Path::new("tests/fixtures/crate"), None, Default::default());
    assert!(
        report
            .errors
            .iter()
            .any(|e| e.message.contains("no OpenAPI document")),
        "{:?}",
        report.errors
    );
}

/// A contract finding on an operation with no source finding gets its plan from what the
/// operation's handler writes: a conditioned write is a limit, a number changed in place a
/// counter, and anything else says why a burst would show nothing.
#[test]
fn contract_findings_get_plans_from_their_handlers() {
    use racecheck::audit::plans::{derive, Derived, Service};
    use racecheck::probe::plan::Mode;
    let (report, facts) =
        racecheck::audit::audit_with_ops(Path::new("tools/demo-service"), None, Default::default());
    let params = Default::default();
    let svc = Service::new("http://127.0.0.1:9", &params, &facts, None);
    let plan = |rule: &str, op: &str| {
        let f = report
            .findings
            .iter()
            .find(|f| f.rule == rule && f.operation.as_deref() == Some(op) && f.routes.is_empty())
            .unwrap_or_else(|| panic!("no contract {rule} on {op}"));
        derive(f, &svc, 0)
    };
    let ready = |rule: &str, op: &str| match plan(rule, op) {
        Derived::Ready(p) => p,
        Derived::Missing { missing, .. } => panic!("{rule} {op}: missing {missing:?}"),
    };

    // ADD on `value`: every success counts, watched at the counter's `/value`.
    let counter = ready("RC204", "POST /counters/{id}/incr-atomic");
    assert_eq!(counter.mode, Mode::LostUpdate);
    assert_eq!(counter.observe.as_ref().unwrap().pointer, "/value");
    assert_eq!(counter.expect.delta_per_success, Some(1.0));
    // The same through a helper the handler calls.
    assert_eq!(
        ready("RC204", "POST /counters/{id}/incr-fixed").mode,
        Mode::LostUpdate
    );

    // `balance >= :amount`: a limit, probed at one unit, the account reset by its PUT.
    let withdraw = ready("RC204", "POST /accounts/{id}/withdraw-atomic");
    assert_eq!(withdraw.mode, Mode::LimitOverrun);
    assert_eq!(withdraw.expect.max_successes, Some(1));
    let reset = withdraw.reset.as_ref().expect("a reset");
    assert_eq!(reset.method.as_deref(), Some("PUT"));
    assert!(
        withdraw.target.url.starts_with(&reset.url),
        "{} {}",
        withdraw.target.url,
        reset.url
    );
    let numbers = |v: &serde_json::Value| {
        v.as_object()
            .map(|m| m.values().filter_map(|x| x.as_f64()).collect::<Vec<_>>())
            .unwrap_or_default()
    };
    assert!(!numbers(&withdraw.target.body).is_empty());
    assert!(numbers(&withdraw.target.body)
        .iter()
        .chain(numbers(&reset.body).iter())
        .all(|n| *n == 1.0));
    assert_eq!(
        ready("RC204", "POST /coupons/{code}/redeem-atomic").mode,
        Mode::LimitOverrun
    );

    // An unconditional put of the whole item: the same requests leave the same state.
    match plan("RC201", "PUT /accounts/{id}") {
        Derived::Missing { missing, .. } => {
            assert!(
                missing
                    .iter()
                    .any(|m| m.contains("open_account") && m.contains("no limit")),
                "{missing:?}"
            )
        }
        Derived::Ready(p) => panic!("a plan for a put of the whole item: {p:?}"),
    }
}

/// Where the document leaves a body out, the plan sends one the handler's `Json<T>` reads:
/// its struct's fields under their serde names, an enum's variant, optional fields filled; a
/// `Json<Value>` says why no body can be made.
#[test]
fn plans_take_bodies_from_the_handlers_extractor_types() {
    use racecheck::audit::plans::{derive, Derived, Service};
    use serde_json::json;
    let (report, facts) = racecheck::audit::audit_with_ops(
        Path::new("tests/fixtures/plans"),
        None,
        Default::default(),
    );
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let params = Default::default();
    let svc = Service::new("http://127.0.0.1:9", &params, &facts, None);
    let on = |rule: &str, op: &str| {
        report
            .findings
            .iter()
            .find(|f| f.rule == rule && f.operation.as_deref() == Some(op))
            .unwrap_or_else(|| panic!("no {rule} on {op}"))
    };
    let spend = match derive(on("RC102", "POST /wallets/{id}/spend"), &svc, 0) {
        Derived::Ready(p) => p,
        Derived::Missing { missing, .. } => panic!("missing {missing:?}"),
    };
    assert_eq!(
        spend.target.body,
        json!({"amountCents": 1, "currency": "EUR", "memo": "racecheck"})
    );
    // The reset is the wallet's PUT, with the body `open_wallet` reads: one unit in it.
    assert_eq!(
        spend.reset.as_ref().unwrap().body,
        json!({"balanceCents": 1, "owner": {"ownerId": "00000000-0000-4000-8000-000000000001", "tags": ["racecheck"]}})
    );
    assert_eq!(spend.observe.as_ref().unwrap().pointer, "/balance");

    match derive(on("RC101", "POST /wallets/{id}/note"), &svc, 0) {
        Derived::Missing { missing, .. } => assert!(
            missing
                .iter()
                .any(|m| m.contains("note` reads a `serde_json::Value`")),
            "{missing:?}"
        ),
        Derived::Ready(p) => panic!("a body guessed for Json<Value>: {:?}", p.target.body),
    }
}

/// A cancelled audit sends nothing, and every finding says it was not probed and why.
#[tokio::test]
async fn a_cancelled_audit_probes_nothing_and_says_so() {
    let (mut report, facts) =
        racecheck::audit::audit_with_ops(Path::new("tools/demo-service"), None, Default::default());
    let params = Default::default();
    // Nothing listens on port 9: a probe that ran would fail with a connection error instead.
    let svc = racecheck::audit::plans::Service::new("http://127.0.0.1:9", &params, &facts, None);
    let cancel = tokio_util::sync::CancellationToken::new();
    cancel.cancel();
    let mut started = 0;
    racecheck::audit::prove(
        &mut report,
        &svc,
        &racecheck::probe::safety::Policy::default(),
        &mut |_, _, _| started += 1,
        &cancel,
    )
    .await;
    assert_eq!(started, 0);
    for f in &report.findings {
        let p = f.proof.as_ref().expect("a proof");
        assert_eq!(p.status, racecheck::model::ProofStatus::Untested);
        assert!(p.detail.contains("cancelled"), "{}", p.detail);
    }
}
