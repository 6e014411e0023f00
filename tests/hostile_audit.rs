//! `audit --base-url` against documents, examples and answers made to send its bursts
//! elsewhere: every request keeps the base URL's scheme, host, port and path prefix, and the
//! base URL's user info appears in no report.

use std::path::Path;
use std::sync::{Arc, Mutex};

use racecheck::audit::plans::{derive, Derived, Service};
use racecheck::probe::safety::{within, Policy};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A loopback listener that answers every request `200 {"value":0}` and records its request
/// lines.
async fn recorder() -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(vec![]));
    let log = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let log = log.clone();
            tokio::spawn(async move {
                let mut buf = vec![];
                let mut chunk = [0u8; 4096];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&buf).to_string();
                log.lock()
                    .unwrap()
                    .push(head.lines().next().unwrap_or_default().to_string());
                let body = r#"{"value":0}"#;
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = s.write_all(answer.as_bytes()).await;
            });
        }
    });
    (port, seen)
}

fn copy(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

fn demo() -> (racecheck::model::Report, racecheck::audit::ServiceFacts) {
    racecheck::audit::audit_with_ops(Path::new("tools/demo-service"), None, Default::default())
}

#[test]
fn a_url_that_leaves_the_base_is_refused() {
    let base = "http://127.0.0.1:4000/api";
    assert!(within(base, "http://127.0.0.1:4000/api/counters/a").is_ok());
    assert!(within(base, "http://127.0.0.1:4000/api").is_ok());
    for (url, why) in [
        ("http://127.0.0.1:4000@127.0.0.1:4001/api/x", "another port"),
        ("http://127.0.0.1:4001/api/x", "another port"),
        ("http://localhost:4000/api/x", "another host"),
        ("http://127.0.0.1:4000/apix", "a sibling of the prefix"),
        ("http://127.0.0.1:4000/admin/wipe", "outside the prefix"),
        ("http://127.0.0.1:4000/api/../admin/wipe", "a dot segment"),
        (
            "http://127.0.0.1:4000/api/%2e%2e/admin",
            "an encoded dot segment",
        ),
    ] {
        assert!(within(base, url).is_err(), "{url}: {why}");
    }
}

/// Values (given or documented) are one segment each: `/`, `?` and `#` are encoded, and `.`
/// or `..` are refused, since every URL parser removes them.
#[test]
fn parameter_values_are_one_segment_each() {
    let (report, facts) = demo();
    let f = report
        .findings
        .iter()
        .find(|f| {
            f.rule == "RC204"
                && f.operation.as_deref() == Some("POST /counters/{id}/incr-atomic")
                && f.routes.is_empty()
        })
        .expect("the demo's contract finding on incr-atomic");
    let base = "http://127.0.0.1:9/api";
    let params = [("id".to_string(), "../../admin/wipe?x=#y".to_string())].into();
    let svc = Service::new(base, &params, &facts, None);
    let Derived::Ready(plan) = derive(f, &svc, 0) else {
        panic!("no plan");
    };
    assert_eq!(
        plan.target.url,
        "http://127.0.0.1:9/api/counters/..%2F..%2Fadmin%2Fwipe%3Fx=%23y/incr-atomic"
    );
    for u in racecheck::audit::plans::urls(&plan) {
        within(base, &u).unwrap();
    }
    for dots in [".", ".."] {
        let params = [("id".to_string(), dots.to_string())].into();
        let svc = Service::new(base, &params, &facts, None);
        match derive(f, &svc, 0) {
            Derived::Missing { missing, .. } => assert!(
                missing.iter().any(|m| m.contains("removes a segment")),
                "{missing:?}"
            ),
            Derived::Ready(p) => panic!("`{dots}` became {}", p.target.url),
        }
    }
}

/// A document whose path is `@127.0.0.1:Q/...` steered every burst to port Q, and the finding
/// was reported as confirmed.
#[tokio::test]
async fn a_document_path_cannot_move_the_probe_to_another_port() {
    let (base_port, at_base) = recorder().await;
    let (other_port, elsewhere) = recorder().await;
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    copy(Path::new("tools/demo-service"), root);
    let doc = std::fs::read_to_string("tools/demo-service/openapi.yaml").unwrap();
    let hostile = doc.replace(
        "  /counters/{id}/incr-atomic:",
        &format!("  \"@127.0.0.1:{other_port}/counters/{{id}}/incr-atomic\":"),
    );
    assert_ne!(hostile, doc);
    std::fs::write(root.join("openapi.yaml"), hostile).unwrap();
    let (mut report, facts) = racecheck::audit::audit_with_ops(root, None, Default::default());
    let base = format!("http://user:hunter2@127.0.0.1:{base_port}");
    let params = [("id".to_string(), "c1".to_string())].into();
    let svc = Service::new(&base, &params, &facts, None);
    let cancel = tokio_util::sync::CancellationToken::new();
    racecheck::audit::prove(
        &mut report,
        &svc,
        &Policy::default(),
        &mut |_, _, _| {},
        &cancel,
    )
    .await;
    assert!(
        elsewhere.lock().unwrap().is_empty(),
        "{:?}",
        elsewhere.lock().unwrap()
    );
    let steered: Vec<_> = report
        .findings
        .iter()
        .filter(|f| f.operation.as_deref().is_some_and(|o| o.contains('@')))
        .collect();
    assert!(!steered.is_empty(), "the hostile operation has no finding");
    for f in &steered {
        let p = f.proof.as_ref().expect("a proof");
        assert_eq!(
            p.status,
            racecheck::model::ProofStatus::Untested,
            "{}",
            p.detail
        );
    }
    // Something was probed at the base, and no report carries the password.
    let details: Vec<_> = report
        .findings
        .iter()
        .map(|f| {
            (
                f.rule.clone(),
                f.operation.clone(),
                f.proof.as_ref().map(|p| p.detail.clone()),
            )
        })
        .collect();
    assert!(!at_base.lock().unwrap().is_empty(), "{details:#?}");
    let json = serde_json::to_string(&report).unwrap();
    assert!(!json.contains("hunter2"), "user info in the JSON report");
    assert!(json.contains(&format!("http://127.0.0.1:{base_port}/")));
}

/// A create answering `..` as the new id would send the next requests one segment up.
#[tokio::test]
async fn a_created_id_of_dots_is_refused() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let paths = Arc::new(Mutex::new(vec![]));
    let log = paths.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let log = log.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let n = s.read(&mut buf).await.unwrap_or(0);
                let head = String::from_utf8_lossy(&buf[..n]).to_string();
                let line = head.lines().next().unwrap_or_default().to_string();
                log.lock().unwrap().push(line.clone());
                let body = if line.starts_with("POST /api/items ") {
                    r#"{"id":".."}"#
                } else {
                    r#"{"value":0}"#
                };
                let answer = format!(
                    "HTTP/1.1 201 Created\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = s.write_all(answer.as_bytes()).await;
            });
        }
    });
    let plan: racecheck::probe::plan::Plan = serde_json::from_value(serde_json::json!({
        "target": {"method": "POST", "url": format!("http://127.0.0.1:{port}/api/items/{{id}}/use")},
        "create": {
            "request": {"method": "POST", "url": format!("http://127.0.0.1:{port}/api/items")},
            "id_pointer": "/id",
            "placeholder": "{id}"
        },
        "mode": "limit-overrun",
        "expect": {"max_successes": 1},
        "concurrency": 2,
        "rounds": 1
    }))
    .unwrap();
    let cancel = tokio_util::sync::CancellationToken::new();
    let r = racecheck::probe::run(&plan, &Policy::default(), &mut |_, _, _| {}, &cancel).await;
    let seen = paths.lock().unwrap().clone();
    assert!(
        seen.iter().all(|l| l.starts_with("POST /api/items ")),
        "a request went past the create: {seen:?}"
    );
    let text = format!("{:?}", r.errors);
    assert!(text.contains("remove a segment"), "{text}");
}
