//! Every fixture's and the demo's edits, applied in a scratch copy the way `racecheck fix
//! --apply --unsafe-fixes` applies them: each fixed finding is gone on a new scan, no new
//! finding appears, and a file that compiled before the edits still compiles after them.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use racecheck::fix::apply;
use racecheck::model::Report;
use racecheck::source::{analyze, Input, Options};

mod common;
use common::scratch::{self, copy_dir, ROOT};

fn scan(path: &Path) -> Report {
    let r = analyze(&[Input::Path(path.to_path_buf())], &Options::default());
    assert!(r.errors.is_empty(), "{}: {:?}", path.display(), r.errors);
    r
}

/// (rule, function) of each finding: what a fix must remove, and what must not appear.
fn keys(r: &Report) -> BTreeSet<(String, String)> {
    r.findings
        .iter()
        .map(|f| (f.rule.clone(), f.function.clone().unwrap_or_default()))
        .collect()
}

/// One fixture file as the only module of a scratch crate.
fn file_compiles(scratch: &Path, file: &Path) -> bool {
    let lib = format!(
        "#![allow(dead_code, unused)]\n#[path = {:?}]\nmod fixture;\n",
        file.display().to_string()
    );
    scratch::manifest(scratch, "fixture-edits-check");
    std::fs::create_dir_all(scratch.join("src")).unwrap();
    std::fs::write(scratch.join("src/lib.rs"), lib).unwrap();
    scratch::cargo(scratch, "check")
}

#[test]
fn every_fixture_edit_applies_removes_its_finding_and_compiles() {
    let tmp = tempfile::tempdir().unwrap();
    let scratch = tmp.path().join("check");
    // Units scanned as a user would: each fixture file alone, the demo as a crate.
    let mut units: Vec<PathBuf> = vec![];
    for dir in ["tests/fixtures/source", "tests/fixtures/shapes"] {
        let copy = tmp.path().join(dir);
        copy_dir(&Path::new(ROOT).join(dir), &copy);
        let mut files: Vec<PathBuf> = std::fs::read_dir(&copy)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "rs"))
            .collect();
        files.sort();
        units.extend(files);
    }
    let demo = tmp.path().join("demo-service");
    copy_dir(&Path::new(ROOT).join("tools/demo-service"), &demo);
    units.push(demo.clone());

    let mut applied_rules = BTreeSet::new();
    let mut applied_files = BTreeSet::new();
    let mut applied = 0;
    let mut compiled = 0;
    for unit in &units {
        let before = scan(unit);
        let plan = apply::plan(&before, true, &|p| {
            std::fs::read_to_string(p).map_err(|e| e.to_string())
        });
        if plan.applied.is_empty() {
            continue;
        }
        let was_compiling = unit.is_file() && file_compiles(&scratch, unit);
        for f in &plan.files {
            std::fs::write(&f.path, &f.after).unwrap();
        }
        let after = scan(unit);
        let (old, new) = (keys(&before), keys(&after));
        for e in &plan.applied {
            let function = before
                .findings
                .iter()
                .find(|f| {
                    f.rule == e.rule && f.location.file == e.file && f.location.line == e.line
                })
                .and_then(|f| f.function.clone())
                .unwrap_or_default();
            assert!(
                !new.contains(&(e.rule.clone(), function.clone())),
                "{}: the fix for {} in {function} was applied but the finding is still there:\n{}",
                unit.display(),
                e.rule,
                plan.files
                    .iter()
                    .map(|f| f.after.as_str())
                    .collect::<String>()
            );
            applied_rules.insert(e.rule.clone());
            applied_files.insert(e.file.clone());
            applied += 1;
        }
        let appeared: Vec<_> = new.difference(&old).collect();
        assert!(
            appeared.is_empty(),
            "{}: the edits brought new findings {appeared:?}",
            unit.display()
        );
        if was_compiling {
            assert!(
                file_compiles(&scratch, unit),
                "{} compiled before its edits and not after",
                unit.display()
            );
            compiled += 1;
        }
    }
    // The patched demo builds as a crate of its own.
    let demo_check = tmp.path().join("demo-check");
    scratch::manifest(&demo_check, "demo-service-patched");
    copy_dir(&demo.join("src"), &demo_check.join("src"));
    assert!(
        scratch::cargo(&demo_check, "check"),
        "the patched demo service does not compile"
    );

    eprintln!("{applied} fixes applied; {compiled} patched fixture files compiled as before");
    // A matched `.send().await` gets an arm for the failed condition (shapes/matched.rs).
    assert!(
        applied_files
            .iter()
            .any(|f: &String| f.ends_with("matched.rs")),
        "{applied_files:?}"
    );
    for rule in ["RC102", "RC103", "RC105", "RC106"] {
        assert!(
            applied_rules.contains(rule),
            "no edit of {rule} was applied: {applied_rules:?}"
        );
    }
}
