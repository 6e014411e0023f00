//! The command line: exit codes, formats, errors that name the input, `.gitignore`, `target/`,
//! suppression comments.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

mod common;

fn racecheck(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_racecheck"))
        .args(args)
        .output()
        .expect("run racecheck")
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

const RACY: &str = include_str!("fixtures/source/RC103.rs");

fn write(dir: &Path, rel: &str, text: &[u8]) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

#[test]
fn exit_codes_follow_fail_on() {
    let out = racecheck(&["scan", "tests/fixtures/source/RC103.rs"]);
    assert_eq!(out.status.code(), Some(1));
    // RC103 is high: nothing at critical.
    let out = racecheck(&[
        "scan",
        "--fail-on",
        "critical",
        "tests/fixtures/source/RC103.rs",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "src/lib.rs", b"pub fn clean() -> u32 { 1 }\n");
    let out = racecheck(&["scan", dir.path().to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn text_output_reads_like_a_diagnostic() {
    let out = racecheck(&["scan", "tests/fixtures/source/RC103.rs"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("error[RC103/non-atomic-counter]"), "{text}");
    assert!(
        text.contains("--> tests/fixtures/source/RC103.rs:31:5"),
        "{text}"
    );
    assert!(
        text.contains("^ read:") && text.contains("^ write:"),
        "{text}"
    );
    assert!(
        text.contains("= fix: Let DynamoDB do the arithmetic"),
        "{text}"
    );
    assert!(text.contains("2 findings in 1 file"), "{text}");
}

#[test]
fn json_and_sarif_formats() {
    let out = racecheck(&["scan", "--format", "json", "tests/fixtures/source/RC101.rs"]);
    let v = json(&out);
    assert_eq!(v["findings"].as_array().unwrap().len(), 2);
    assert_eq!(v["findings"][0]["rule"], "RC101");
    assert_eq!(v["findings"][0]["location"]["line"], 26);
    assert!(v["errors"].as_array().unwrap().is_empty());
    assert_eq!(v["stats"]["findings"], 2);

    let out = racecheck(&[
        "scan",
        "--format",
        "sarif",
        "tests/fixtures/source/RC101.rs",
    ]);
    let v = json(&out);
    assert_eq!(v["version"], "2.1.0");
    let results = v["runs"][0]["results"].as_array().unwrap();
    assert_eq!(results.len(), 2);
    assert_eq!(results[0]["ruleId"], "RC101");
    assert_eq!(
        results[0]["locations"][0]["physicalLocation"]["region"]["startLine"],
        26
    );
}

#[test]
fn rule_filter_and_unknown_rule() {
    let out = racecheck(&[
        "scan",
        "--format",
        "json",
        "--rule",
        "lost-update",
        "tests/fixtures/source",
    ]);
    let v = json(&out);
    assert!(v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .all(|f| f["rule"] == "RC101"));
    let out = racecheck(&["scan", "--rule", "RC999", "tests/fixtures/source"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stdout).contains("unknown rule `RC999`"));
}

#[test]
fn rules_command_lists_and_explains() {
    let out = racecheck(&["rules"]);
    let text = String::from_utf8_lossy(&out.stdout);
    for id in ["RC101", "RC105", "RC109"] {
        assert!(text.contains(id), "{text}");
    }
    let out = racecheck(&["rules", "non-atomic-counter"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("# RC103 `non-atomic-counter`"), "{text}");
    assert!(
        text.contains("## Why is this bad?") && text.contains("```rust\n"),
        "{text}"
    );
    let out = racecheck(&["rules", "RC000"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown rule `RC000`"));
}

#[test]
fn bad_inputs_are_named_and_never_look_clean() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "src/ok.rs", RACY.as_bytes());
    write(d, "src/broken.rs", b"fn main() {\n    let x = ;\n}\n");
    write(d, "src/latin1.rs", b"// caf\xe9\nfn f() {}\n");
    let huge = format!("// {}\n", "x".repeat(9 * 1024 * 1024));
    write(d, "src/huge.rs", huge.as_bytes());
    // Deep enough to exhaust a parser's stack: refused, not a crash.
    let deep = format!(
        "fn f() -> i32 {{ {}1{} }}\n",
        "(".repeat(20_000),
        ")".repeat(20_000)
    );
    write(d, "src/deep.rs", deep.as_bytes());
    let chain = format!("fn g() {{ x{}; }}\n", ".a()".repeat(50_000));
    write(d, "src/chain.rs", chain.as_bytes());
    let out = racecheck(&["scan", "--format", "json", d.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "skipped inputs make the scan fail"
    );
    let v = json(&out);
    let errors = v["errors"].as_array().unwrap();
    let kind = |k: &str| {
        errors
            .iter()
            .find(|e| e["kind"] == k)
            .unwrap_or_else(|| panic!("no {k} in {errors:?}"))
    };
    let parse = kind("parse");
    assert!(parse["path"].as_str().unwrap().ends_with("broken.rs"));
    assert_eq!(parse["line"], 2);
    assert_eq!(kind("not-utf8")["line"], 1);
    assert!(kind("too-large")["message"]
        .as_str()
        .unwrap()
        .contains("byte limit"));
    // The good file is still analysed.
    assert_eq!(v["findings"].as_array().unwrap().len(), 2);

    let out = racecheck(&["scan", "/no/such/path"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stdout).contains("`/no/such/path` does not exist"));
}

#[test]
fn gitignore_and_target_are_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, ".gitignore", b"generated/\n");
    write(d, "generated/racy.rs", RACY.as_bytes());
    write(d, "target/debug/racy.rs", RACY.as_bytes());
    write(d, "src/lib.rs", b"pub fn clean() {}\n");
    let out = racecheck(&["scan", "--format", "json", d.to_str().unwrap()]);
    let v = json(&out);
    assert_eq!(v["stats"]["files"], 1, "{v}");
    assert!(v["findings"].as_array().unwrap().is_empty());
}

#[test]
fn suppression_comments() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let suppressed = RACY
        .replacen(
            "    let next = current + 1;\n",
            "    let next = current + 1;\n    // racecheck: ignore[RC103] single writer per counter\n",
            1,
        )
        .replacen(
            "// expect: RC103\n/// Racy: the builder",
            "// racecheck: ignore[non-atomic-counter] migration job only\n/// Racy: the builder",
            1,
        );
    write(d, "src/lib.rs", suppressed.as_bytes());
    let out = racecheck(&["scan", "--format", "json", d.to_str().unwrap()]);
    let v = json(&out);
    assert_eq!(v["findings"].as_array().unwrap().len(), 0, "{v}");
    assert_eq!(v["stats"]["suppressed"], 2);
    assert_eq!(out.status.code(), Some(0));
}

/// The README's rule table is the catalog, generated from the rules' own documentation.
#[test]
fn readme_rule_table_matches_the_catalog() {
    let readme = std::fs::read_to_string("README.md").unwrap();
    let start = readme
        .find("<!-- rules:start -->\n")
        .expect("rules:start marker")
        + 21;
    let end = readme
        .find("\n<!-- rules:end -->")
        .expect("rules:end marker");
    let out = racecheck(&["rules", "--markdown"]);
    assert_eq!(
        readme[start..end].trim(),
        String::from_utf8_lossy(&out.stdout).trim(),
        "README table is stale: paste `racecheck rules --markdown`"
    );
}

#[test]
fn spec_command() {
    let out = racecheck(&["spec", "tests/fixtures/contract/RC201.yaml"]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("warning[RC201/missing-precondition]"),
        "{text}"
    );
    assert!(
        text.contains("--> tests/fixtures/contract/RC201.yaml:20:5"),
        "{text}"
    );
    assert!(
        text.contains("$ref: '#/components/parameters/IfMatch'"),
        "{text}"
    );

    let out = racecheck(&[
        "spec",
        "--format",
        "json",
        "tests/fixtures/contract/RC204.json",
    ]);
    let v = json(&out);
    assert_eq!(v["findings"][0]["rule"], "RC204");
    assert_eq!(v["findings"][0]["operation"], "POST /payments");
    assert_eq!(
        v["findings"][0]["location"]["pointer"],
        "#/paths/~1payments/post"
    );
    assert_eq!(v["stats"]["operations"], 3);

    let out = racecheck(&[
        "spec",
        "--format",
        "sarif",
        "tests/fixtures/contract/malformed.json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(json(&out)["runs"][0]["results"][0]["ruleId"], "RC290");

    let out = racecheck(&[
        "spec",
        "--fail-on",
        "high",
        "tests/fixtures/contract/RC207.yaml",
    ]);
    assert_eq!(out.status.code(), Some(0), "RC207 is low");
    let out = racecheck(&["spec", "tests/fixtures/contract/missing.yaml"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn statistics_count_by_rule_and_quiet_drops_the_summary() {
    let spec = "tools/demo-service/openapi.yaml";
    let full = json(&racecheck(&["spec", "--format", "json", spec]));
    let findings = full["findings"].as_array().unwrap();
    let stats = json(&racecheck(&[
        "spec",
        "--statistics",
        "--format",
        "json",
        spec,
    ]));
    let rows = stats.as_array().unwrap();
    let counted: u64 = rows.iter().map(|r| r["count"].as_u64().unwrap()).sum();
    assert_eq!(counted as usize, findings.len());
    let counts: Vec<u64> = rows.iter().map(|r| r["count"].as_u64().unwrap()).collect();
    assert!(
        counts.windows(2).all(|w| w[0] >= w[1]),
        "most first: {counts:?}"
    );
    let rc207 = findings.iter().filter(|f| f["rule"] == "RC207").count() as u64;
    let row = rows.iter().find(|r| r["rule"] == "RC207").unwrap();
    assert_eq!(row["count"].as_u64(), Some(rc207));
    let table = racecheck(&["spec", "--statistics", spec]);
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(table.contains("RC207  no-rate-limit-documented"), "{table}");
    assert!(!table.contains("-->"), "no diagnostics: {table}");

    let loud = racecheck(&["scan", "tests/fixtures/source/RC103.rs"]);
    let quiet = racecheck(&["scan", "--quiet", "tests/fixtures/source/RC103.rs"]);
    assert_eq!(quiet.status.code(), loud.status.code());
    let (loud, quiet) = (
        String::from_utf8_lossy(&loud.stdout),
        String::from_utf8_lossy(&quiet.stdout),
    );
    assert!(loud.contains(" findings in ") && !quiet.contains(" findings in "));
    assert!(quiet.contains("RC103") && loud.starts_with(&*quiet));
}

/// `--baseline` hides the findings of a report saved earlier, matched by fingerprint even
/// when lines move; a new finding still shows and fails the run; a file that is not a report
/// is refused by name.
#[test]
fn baseline_hides_accepted_findings_only() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "src/lib.rs", RACY.as_bytes());
    let src = d.to_str().unwrap();
    let saved = d.join("baseline.json");
    let out = racecheck(&[
        "scan",
        src,
        "--format",
        "json",
        "-o",
        saved.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let before = json(&racecheck(&["scan", src, "--format", "json"]));
    let n = before["findings"].as_array().unwrap().len();
    assert!(n > 0);
    assert!(before["findings"][0]["fingerprint"]
        .as_str()
        .is_some_and(|f| f.starts_with("RC")));

    // Lines move: the same findings are still accepted.
    write(d, "src/lib.rs", format!("// moved\n\n{RACY}").as_bytes());
    let base = saved.to_str().unwrap();
    let out = racecheck(&["scan", src, "--baseline", base, "--format", "json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = json(&out);
    assert_eq!(v["findings"].as_array().unwrap().len(), 0);
    assert_eq!(v["stats"]["baselined"], n as u64);

    // A new racy file is new: it shows and fails the run.
    write(d, "src/more.rs", RACY.as_bytes());
    let out = racecheck(&["scan", src, "--baseline", base, "--format", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let v = json(&out);
    let files: Vec<&str> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["location"]["file"].as_str())
        .collect();
    assert!(
        !files.is_empty() && files.iter().all(|f| f.ends_with("more.rs")),
        "{files:?}"
    );

    write(d, "not-a-report.json", b"{\"x\": 1}");
    let out = racecheck(&[
        "scan",
        src,
        "--baseline",
        d.join("not-a-report.json").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("not-a-report.json") && err.contains("not a racecheck JSON report"),
        "{err}"
    );
}

/// SARIF from `scan` (fixtures and the demo) and `audit` validates against the SARIF 2.1.0
/// schema (kept in `tests/`, checked with Python's `jsonschema` from the test environment),
/// with relative URIs under `%SRCROOT%` and a fingerprint on every result.
#[test]
fn sarif_validates_against_the_schema() {
    let root = env!("CARGO_MANIFEST_DIR");
    let python = common::python();
    let dir = tempfile::tempdir().unwrap();
    let runs: [&[&str]; 3] = [
        &["scan", "tests/fixtures/source", "tests/fixtures/shapes"],
        &["scan", "tools/demo-service"],
        &["audit", "tests/fixtures/audit"],
    ];
    let mut files = vec![];
    for (i, args) in runs.iter().enumerate() {
        let out = Command::new(env!("CARGO_BIN_EXE_racecheck"))
            .current_dir(root)
            .args(*args)
            .args(["--format", "sarif"])
            .output()
            .unwrap();
        assert_ne!(
            out.status.code(),
            Some(2),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
        let results = doc["runs"][0]["results"].as_array().unwrap();
        assert!(!results.is_empty(), "{args:?} gave no results");
        for r in results {
            let loc = &r["locations"][0]["physicalLocation"]["artifactLocation"];
            assert_eq!(loc["uriBaseId"], "%SRCROOT%", "{loc}");
            assert!(!loc["uri"].as_str().unwrap().starts_with('/'), "{loc}");
            assert!(r["partialFingerprints"]["racecheck/v1"].is_string(), "{r}");
        }
        // The demo's racy counter, withdrawal and coupon carry their edits as SARIF fixes.
        if args.contains(&"tools/demo-service") {
            let with_fixes: Vec<&Value> = results
                .iter()
                .filter(|r| r["fixes"].as_array().is_some_and(|f| !f.is_empty()))
                .collect();
            assert_eq!(with_fixes.len(), 3, "{results:?}");
            for r in with_fixes {
                let change = &r["fixes"][0]["artifactChanges"][0];
                assert_eq!(change["artifactLocation"]["uriBaseId"], "%SRCROOT%");
                let reps = change["replacements"].as_array().unwrap();
                assert!(reps.iter().any(|x| x["insertedContent"]["text"]
                    .as_str()
                    .is_some_and(|t| t.contains("expression"))));
            }
        }
        let f = dir.path().join(format!("{i}.sarif"));
        std::fs::write(&f, &out.stdout).unwrap();
        files.push(f.to_string_lossy().to_string());
    }
    let check = r#"
import json, sys, jsonschema
schema = json.load(open(sys.argv[1]))
v = jsonschema.Draft7Validator(schema)
bad = 0
for path in sys.argv[2:]:
    for e in v.iter_errors(json.load(open(path))):
        bad += 1
        print(path, list(e.absolute_path), e.message[:200])
sys.exit(1 if bad else 0)
"#;
    let out = Command::new(&python)
        .arg("-c")
        .arg(check)
        .arg(format!("{root}/tests/sarif-schema-2.1.0.json"))
        .args(&files)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "SARIF does not validate:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The GitHub Action's run step, executed as the runner would (its script from `action.yml`,
/// the inputs as environment): it writes SARIF and reports 1 for findings, 0 once a baseline
/// accepts them.
#[test]
fn github_action_run_step_works() {
    use yaml_rust2::YamlLoader;
    let root = env!("CARGO_MANIFEST_DIR");
    let text = std::fs::read_to_string(format!("{root}/action.yml")).unwrap();
    let doc = &YamlLoader::load_from_str(&text).unwrap()[0];
    let steps = doc["runs"]["steps"].as_vec().unwrap();
    let run = steps
        .iter()
        .find(|s| s["id"].as_str() == Some("run"))
        .and_then(|s| s["run"].as_str())
        .expect("a step with id `run`");
    let temp = tempfile::tempdir().unwrap();
    let bin = temp.path().join("racecheck/bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_racecheck"), bin.join("racecheck")).unwrap();
    let step = |baseline: &str| -> (String, Value) {
        let output = temp.path().join("github_output");
        std::fs::write(&output, "").unwrap();
        let sarif = temp.path().join("out.sarif");
        let out = Command::new("bash")
            .arg("-c")
            .arg(run)
            .current_dir(root)
            .env("RUNNER_TEMP", temp.path())
            .env("GITHUB_OUTPUT", &output)
            .env("RC_COMMAND", "scan")
            .env("RC_PATH", "tests/fixtures/source/RC103.rs")
            .env("RC_SPEC", "")
            .env("RC_FAIL_ON", "low")
            .env("RC_BASELINE", baseline)
            .env("RC_SARIF", &sarif)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let sarif: Value = serde_json::from_slice(&std::fs::read(&sarif).unwrap()).unwrap();
        (std::fs::read_to_string(&output).unwrap(), sarif)
    };
    let (outputs, sarif) = step("");
    assert_eq!(outputs.trim(), "exit-code=1");
    assert!(!sarif["runs"][0]["results"].as_array().unwrap().is_empty());

    let baseline = temp.path().join("baseline.json");
    let saved = racecheck(&[
        "scan",
        "tests/fixtures/source/RC103.rs",
        "--format",
        "json",
        "-o",
        baseline.to_str().unwrap(),
    ]);
    assert_eq!(saved.status.code(), Some(1));
    let (outputs, sarif) = step(baseline.to_str().unwrap());
    assert_eq!(outputs.trim(), "exit-code=0");
    assert!(sarif["runs"][0]["results"].as_array().unwrap().is_empty());
}

/// `rules --config` prints the format of racecheck.toml: a file that parses, with each key.
#[test]
fn rules_config_prints_the_format() {
    let out = racecheck(&["rules", "--config"]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text, racecheck::config::FORMAT);
    for key in [
        "single-writer =",
        "serialized =",
        "conditional-helpers =",
        "[[immutable]]",
        "attributes =",
    ] {
        assert!(text.contains(key), "{key}: {text}");
    }
    racecheck::config::Facts::parse("racecheck.toml", &text).unwrap();
}

/// The racecheck.toml in the scanned directory is read: its facts make findings `assumed`
/// (info, counted in the summary); `--no-config` ignores it, `--config` names another, and a
/// bad file stops the scan with an error naming its line and key.
#[test]
fn scan_reads_racecheck_toml() {
    let fixture = "tests/fixtures/facts/bots";
    let out = racecheck(&["scan", "--format", "json", fixture]);
    let v = json(&out);
    assert_eq!(v["stats"]["assumed"], 4, "{v}");
    assert_eq!(v["stats"]["findings"], 5);
    // Only the finding no fact explains fails the run at high.
    assert_eq!(out.status.code(), Some(1));
    let high: Vec<&Value> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["severity"] == "high")
        .collect();
    assert_eq!(high.len(), 1, "{v}");
    let owner = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["function"] == "crate::rename_bot")
        .unwrap();
    assert_eq!(owner["severity"], "info");
    assert_eq!(owner["assumed"]["severity"], "high");
    assert_eq!(
        owner["assumed"]["file"],
        "tests/fixtures/facts/bots/racecheck.toml"
    );
    assert_eq!(owner["assumed"]["line"], 15);
    let text = racecheck(&["scan", fixture]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("= assumed (high without it), by tests/fixtures/facts/bots/racecheck.toml:15: `owner_id` is declared immutable"),
        "{text}"
    );
    assert!(
        text.contains("5 findings (4 assumed by racecheck.toml) in"),
        "{text}"
    );
    let sarif: Value =
        serde_json::from_slice(&racecheck(&["scan", "--format", "sarif", fixture]).stdout).unwrap();
    assert_eq!(sarif["runs"][0]["properties"]["assumed"], 4);
    let results = sarif["runs"][0]["results"].as_array().unwrap();
    assert_eq!(
        results
            .iter()
            .filter(|r| r["properties"]["assumed"]["line"].is_u64())
            .count(),
        4
    );

    let out = racecheck(&["scan", "--no-config", "--format", "json", fixture]);
    let v = json(&out);
    assert!(v["stats"].get("assumed").is_none(), "{v}");
    assert!(v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .all(|f| f["severity"] == "high" && f.get("assumed").is_none()));

    // Another directory, the fixture's facts named explicitly.
    let dir = tempfile::tempdir().unwrap();
    let code = std::fs::read(format!("{fixture}/src/lib.rs")).unwrap();
    write(dir.path(), "src/lib.rs", &code);
    let d = dir.path().to_str().unwrap();
    let v = json(&racecheck(&["scan", "--format", "json", d]));
    assert!(v["stats"].get("assumed").is_none(), "no file there: {v}");
    let config = format!("{fixture}/racecheck.toml");
    let v = json(&racecheck(&[
        "scan", "--format", "json", "--config", &config, d,
    ]));
    assert_eq!(v["stats"]["assumed"], 4, "{v}");

    // A bad file: exit 2, the file, line and key named, nothing on stdout.
    write(
        dir.path(),
        "racecheck.toml",
        b"single-writer = [\"ledger\"]\n\n[[immutable]]\ntable = \"bots\"\nattribute = [\"owner_id\"]\n",
    );
    let out = racecheck(&["scan", d]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("racecheck.toml:5:1: unknown field `attribute`"),
        "{err}"
    );
    write(
        dir.path(),
        "racecheck.toml",
        b"# facts\nserialized = \"worker\"\n",
    );
    let out = racecheck(&["fix", d]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("racecheck.toml:2:14: `serialized`: invalid type"),
        "{err}"
    );
    // `--no-config` scans past it.
    let out = racecheck(&["scan", "--no-config", d]);
    assert_eq!(out.status.code(), Some(1));
}
