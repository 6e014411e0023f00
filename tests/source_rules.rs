//! The source rules over their fixtures: every function in a fixture says which rules it must
//! raise (`// expect: RC101` or `// expect: none`); the test fails on any difference, and an
//! insta snapshot records the findings with their evidence and fixes.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use racecheck::model::Report;
use racecheck::source::{analyze, Input, Options};

/// `fn name` -> expected rule ids, from the `// expect:` line above each function.
fn expectations(dir_or_file: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut files = vec![];
    if dir_or_file.is_dir() {
        for e in walk(dir_or_file) {
            files.push(e);
        }
    } else {
        files.push(dir_or_file.to_path_buf());
    }
    let mut out = BTreeMap::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        let mut pending: Option<BTreeSet<String>> = None;
        for line in text.lines() {
            let t = line.trim();
            if let Some(rest) = t.strip_prefix("// expect:") {
                let set = rest
                    .split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty() && s != "none")
                    .collect();
                pending = Some(set);
            } else if let Some(idx) = t.find("fn ") {
                if let Some(set) = pending.take() {
                    let name: String = t[idx + 3..]
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    assert!(
                        out.insert(name.clone(), set).is_none(),
                        "{}: two fixtures named `{name}`",
                        f.display()
                    );
                }
            }
        }
    }
    out
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = vec![];
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
    out.sort();
    out
}

fn found(report: &Report) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in &report.findings {
        let func = f.function.clone().unwrap_or_default();
        let name = func.rsplit("::").next().unwrap_or(&func).to_string();
        out.entry(name).or_default().insert(f.rule.clone());
    }
    out
}

/// A compact, stable rendering for the snapshot.
fn render(report: &Report) -> String {
    let mut s = String::new();
    for f in &report.findings {
        s.push_str(&format!(
            "{} {} {}:{}:{} in {} [{}]\n  {}\n",
            f.rule,
            f.slug,
            f.location.file,
            f.location.line,
            f.location.column,
            f.function.as_deref().unwrap_or("?"),
            f.confidence.as_str(),
            f.message
        ));
        for r in &f.routes {
            s.push_str(&format!(
                "  route {} {} -> {}\n",
                r.method, r.path, r.handler
            ));
        }
        for e in &f.evidence {
            s.push_str(&format!(
                "  {:?} {}:{} {}\n",
                e.kind, e.file, e.line, e.note
            ));
        }
        for x in &f.fixes {
            s.push_str(&format!("  fix ({:?}): {}\n", x.safety, x.title));
            for line in x.snippet.lines() {
                s.push_str(&format!("    | {line}\n"));
            }
        }
    }
    for e in &report.errors {
        s.push_str(&format!("error {:?} {}: {}\n", e.kind, e.path, e.message));
    }
    s
}

fn check_fixture(path: &str) -> Report {
    let report = analyze(&[Input::Path(path.into())], &Options::default());
    assert!(report.errors.is_empty(), "{path}: {:?}", report.errors);
    let expected = expectations(Path::new(path));
    assert!(
        !expected.is_empty(),
        "{path} has no `// expect:` annotations"
    );
    let got = found(&report);
    let mut problems = vec![];
    for (func, rules) in &expected {
        let g = got.get(func).cloned().unwrap_or_default();
        if &g != rules {
            problems.push(format!("`{func}`: expected {rules:?}, found {g:?}"));
        }
    }
    for func in got.keys() {
        if !expected.contains_key(func) {
            problems.push(format!(
                "`{func}` has findings {:?} but no `// expect:` line",
                got[func]
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "{path}:\n{}\n\n{}",
        problems.join("\n"),
        render(&report)
    );
    report
}

macro_rules! fixture_tests {
    ($($name:ident => $path:literal,)*) => {$(
        #[test]
        fn $name() {
            let report = check_fixture($path);
            insta::assert_snapshot!(stringify!($name), render(&report));
        }
    )*};
}

fixture_tests! {
    rc101_lost_update => "tests/fixtures/source/RC101.rs",
    rc102_check_then_act => "tests/fixtures/source/RC102.rs",
    rc103_non_atomic_counter => "tests/fixtures/source/RC103.rs",
    rc104_split_multi_item_write => "tests/fixtures/source/RC104.rs",
    rc105_unhandled_condition_failure => "tests/fixtures/source/RC105.rs",
    rc106_unconditional_create => "tests/fixtures/source/RC106.rs",
    rc107_unconditioned_batch_write => "tests/fixtures/source/RC107.rs",
    rc108_unbounded_retry => "tests/fixtures/source/RC108.rs",
    rc109_in_memory_rmw => "tests/fixtures/source/RC109.rs",
    crate_bank_service => "tests/fixtures/crate",
    precision => "tests/fixtures/source/precision.rs",
    rusoto => "tests/fixtures/source/rusoto.rs",
    shape_helpers => "tests/fixtures/shapes/helpers.rs",
    shape_built_elsewhere => "tests/fixtures/shapes/built_elsewhere.rs",
    shape_repositories => "tests/fixtures/shapes/repositories.rs",
    shape_legacy_and_args => "tests/fixtures/shapes/legacy_and_args.rs",
    shape_one_time => "tests/fixtures/shapes/one_time.rs",
    shape_transactions => "tests/fixtures/shapes/transactions.rs",
    shape_pages => "tests/fixtures/shapes/pages.rs",
    shape_macros => "tests/fixtures/shapes/macros.rs",
    shape_rusoto_requests => "tests/fixtures/shapes/rusoto_requests.rs",
    shape_locks => "tests/fixtures/shapes/locks.rs",
    shape_silent => "tests/fixtures/shapes/silent.rs",
    shape_entry_points => "tests/fixtures/shapes/entry_points.rs",
    shape_errors => "tests/fixtures/shapes/errors.rs",
    shape_matched => "tests/fixtures/shapes/matched.rs",
    shape_workspace => "tests/fixtures/shapes/workspace",
    shape_uniqueness => "tests/fixtures/shapes/uniqueness.rs",
    shape_swap => "tests/fixtures/shapes/swap.rs",
    shape_settled => "tests/fixtures/shapes/settled.rs",
    shape_configured => "tests/fixtures/shapes/configured.rs",
    shape_wrappers => "tests/fixtures/shapes/wrappers.rs",
}

/// A decision no concurrent request can invalidate is reported at `info`, saying why; the
/// same check on an attribute another write changes, or a state before a fresh create, stays
/// at the rule's severity.
#[test]
fn settled_decisions_are_info() {
    let report = analyze(
        &[Input::Path("tests/fixtures/shapes/settled.rs".into())],
        &Options::default(),
    );
    let severity = |func: &str| -> BTreeSet<String> {
        report
            .findings
            .iter()
            .filter(|f| {
                f.rule == "RC102" && f.function.as_deref().is_some_and(|n| n.ends_with(func))
            })
            .map(|f| format!("{:?}", f.severity))
            .collect()
    };
    assert_eq!(severity("rename_bot"), BTreeSet::from(["Info".to_string()]));
    assert_eq!(severity("sign_in"), BTreeSet::from(["Info".to_string()]));
    assert_eq!(
        severity("rename_vault"),
        BTreeSet::from(["High".to_string()])
    );
    assert_eq!(severity("add_seat"), BTreeSet::from(["High".to_string()]));
    // A password check kept in a local (`let ok = stored == password; if !ok`) is a match too.
    let wrapped = analyze(
        &[Input::Path("tests/fixtures/shapes/wrappers.rs".into())],
        &Options::default(),
    );
    assert!(wrapped
        .findings
        .iter()
        .filter(|f| f.rule == "RC102")
        .all(|f| f.severity == racecheck::model::Severity::Info));
    let renamed = report
        .findings
        .iter()
        .find(|f| {
            f.function
                .as_deref()
                .is_some_and(|n| n.ends_with("rename_bot"))
        })
        .map(|f| f.message.clone())
        .unwrap_or_default();
    assert!(
        renamed.contains("no write of the workspace changes `creator_id`"),
        "{renamed}"
    );
}

/// The bundled demo service: exactly its racy handlers are flagged, each with its route.
#[test]
fn demo_service_racy_handlers() {
    let report = analyze(
        &[Input::Path("tools/demo-service".into())],
        &Options::default(),
    );
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let got: BTreeSet<(String, String, String)> = report
        .findings
        .iter()
        .map(|f| {
            let route = f
                .routes
                .first()
                .map(|r| format!("{} {}", r.method, r.path))
                .unwrap_or_default();
            (
                f.function.clone().unwrap_or_default(),
                f.rule.clone(),
                route,
            )
        })
        .collect();
    let want: BTreeSet<(String, String, String)> = [
        (
            "accounts::withdraw",
            "RC102",
            "POST /accounts/{id}/withdraw",
        ),
        ("accounts::transfer", "RC104", "POST /transfers"),
        ("counters::incr", "RC103", "POST /counters/{id}/incr"),
        ("coupons::redeem", "RC102", "POST /coupons/{code}/redeem"),
        ("profiles::update_profile", "RC101", "PUT /profiles/{id}"),
    ]
    .iter()
    .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
    .collect();
    assert_eq!(got, want, "\n{}", render(&report));
    insta::assert_snapshot!("demo_service", render(&report));
}

/// racecheck's own fixes pass racecheck: every generated snippet (tools/fix-check) and
/// racecheck's own source are clean, read without error.
#[test]
fn fixes_and_own_source_are_clean() {
    let report = analyze(
        &[
            Input::Path("tools/fix-check".into()),
            Input::Path("src".into()),
        ],
        &Options::default(),
    );
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert!(report.stats.dynamodb_operations >= 15, "{:?}", report.stats);
    assert!(report.findings.is_empty(), "\n{}", render(&report));
}

/// The report does not depend on the number of analysis threads or on the order in which the
/// threads finish: a workspace of many files scanned with 1 and with 4 threads gives the same
/// JSON.
#[test]
fn same_report_whatever_the_threads() {
    let inputs = vec![
        Input::Path("tests/fixtures/source".into()),
        Input::Path("tests/fixtures/shapes".into()),
        Input::Path("tests/fixtures/crate".into()),
        Input::Path("tools/demo-service".into()),
    ];
    let json = |threads: usize| {
        let options = Options {
            threads: Some(threads),
            ..Options::default()
        };
        let mut report = analyze(&inputs, &options);
        report.stats.elapsed_ms = 0;
        serde_json::to_string_pretty(&report).unwrap()
    };
    let one = json(1);
    assert!(one.contains("RC101") && one.contains("RC109"), "{one}");
    for _ in 0..3 {
        assert_eq!(
            one,
            json(4),
            "the report changed with the number of threads"
        );
    }
}

/// Cleanup deletes (of what a query found, of an expired session), a setup program's checks
/// and flows serialized by a lock are reported at `info`; consuming a still-valid token, a
/// worker's checks or a flow under a shared guard are not.
#[test]
fn cleanup_deletes_are_info() {
    let severity = |path: &str, func: &str| {
        let report = analyze(&[Input::Path(path.into())], &Options::default());
        report
            .findings
            .iter()
            .find(|f| f.function.as_deref().is_some_and(|n| n.ends_with(func)))
            .map(|f| f.severity)
            .unwrap_or_else(|| panic!("no finding in {func}"))
    };
    use racecheck::model::Severity;
    let silent = "tests/fixtures/shapes/silent.rs";
    assert_eq!(severity(silent, "::purge_drafts"), Severity::Info);
    assert_eq!(severity(silent, "::load_session"), Severity::Info);
    let one_time = "tests/fixtures/shapes/one_time.rs";
    assert_ne!(severity(one_time, "::redeem_reset_token"), Severity::Info);
    // A setup program's `main` runs once; a worker's `main` runs in every instance.
    assert_eq!(severity(silent, "::main"), Severity::Info);
    assert_ne!(severity(one_time, "::main"), Severity::Info);
    // `&mut self` of a type kept behind a lock runs under its write guard; `&self` does not.
    let locks = "tests/fixtures/shapes/locks.rs";
    assert_eq!(severity(locks, "::join"), Severity::Info);
    assert_ne!(severity(locks, "::join_shared"), Severity::Info);
}

/// Routes declared on handlers (actix-web, utoipa) and Lambda handlers reach the findings.
#[test]
fn entry_points_beyond_router_route() {
    let report = analyze(
        &[Input::Path("tests/fixtures/shapes/entry_points.rs".into())],
        &Options::default(),
    );
    let routes_of = |func: &str| -> Vec<String> {
        report
            .findings
            .iter()
            .filter(|f| f.function.as_deref().is_some_and(|n| n.ends_with(func)))
            .flat_map(|f| {
                f.routes
                    .iter()
                    .map(|r| format!("{} {} {}", r.method, r.path, r.handler))
            })
            .collect()
    };
    assert_eq!(
        routes_of("::take_actix"),
        ["POST /stock/{sku}/take take_actix"]
    );
    assert_eq!(
        routes_of("::take_documented"),
        ["POST /v2/stock/{sku}/take take_documented"]
    );
    assert_eq!(routes_of("::handle"), ["LAMBDA  handle"]);
    assert_eq!(report.stats.routes, 3, "{:?}", report.stats);
}

/// `racecheck.toml` facts (tests/fixtures/facts/bots): each finding a declared fact explains is
/// kept at `info`, marked `assumed` with the fact's line and counted apart; without the file
/// the same findings keep their severity. The `// expect:` lines say which are assumed.
#[test]
fn declared_facts_make_findings_assumed() {
    use racecheck::config::{facts_for, Source};
    use racecheck::model::Severity;
    let dir = Path::new("tests/fixtures/facts/bots");
    let mut want: BTreeMap<String, (String, bool)> = BTreeMap::new();
    for l in std::fs::read_to_string(dir.join("src/lib.rs"))
        .unwrap()
        .lines()
    {
        if let Some(rest) = l.trim().strip_prefix("// expect: ") {
            let (rule, how) = rest.split_once(", ").unwrap();
            want.insert(
                rule.to_string() + how,
                (rule.to_string(), how.starts_with("assumed")),
            );
        }
    }
    let inputs = [Input::Path(dir.into())];
    let facts = facts_for(&[dir.into()], &Source::Discover).unwrap();
    assert_eq!(facts.file, "tests/fixtures/facts/bots/racecheck.toml");
    let with = analyze(
        &inputs,
        &Options {
            facts: std::sync::Arc::new(facts),
            ..Options::default()
        },
    );
    let without = analyze(&inputs, &Options::default());
    assert!(with.errors.is_empty() && without.errors.is_empty());
    assert_eq!(with.findings.len(), want.len(), "{:#?}", with.findings);
    assert_eq!(without.findings.len(), want.len());
    let assumed: Vec<_> = with
        .findings
        .iter()
        .filter(|f| f.assumed.is_some())
        .collect();
    assert_eq!(
        assumed.len(),
        want.values().filter(|(_, a)| *a).count(),
        "{:#?}",
        with.findings
    );
    assert_eq!(with.stats.assumed, assumed.len() as u64);
    assert_eq!(without.stats.assumed, 0);
    for (f, plain) in with.findings.iter().zip(&without.findings) {
        assert_eq!((&f.rule, &f.location), (&plain.rule, &plain.location));
        assert!(
            plain.assumed.is_none() && plain.severity == Severity::High,
            "{plain:#?}"
        );
        match &f.assumed {
            Some(a) => {
                assert_eq!(f.severity, Severity::Info);
                assert_eq!(a.severity, Severity::High);
                assert_eq!(a.file, "tests/fixtures/facts/bots/racecheck.toml");
                // The line declares what the fact is about.
                let toml = std::fs::read_to_string(dir.join("racecheck.toml")).unwrap();
                let line = toml.lines().nth(a.line as usize - 1).unwrap();
                let named = [
                    "owner_id",
                    "ledger",
                    "OrderWorker::handle",
                    "save_versioned",
                ];
                assert!(
                    named.iter().any(|n| line.contains(n) && a.fact.contains(n)),
                    "{a:?}: {line}"
                );
            }
            None => assert_eq!(f.severity, Severity::High, "{f:#?}"),
        }
        // The same fingerprint: a baseline of one run matches the other.
        assert_eq!(f.compute_fingerprint(), plain.compute_fingerprint());
    }
    // The RC102 decided on `owner_id` is assumed; the one decided on `paused` is not.
    let rc102: Vec<bool> = with
        .findings
        .iter()
        .filter(|f| f.rule == "RC102")
        .map(|f| f.assumed.is_some())
        .collect();
    assert_eq!(rc102, [true, false]);
}
