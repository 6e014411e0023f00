//! The GitHub Action (`action.yml`) as a hostile workflow would drive it: inputs never become
//! shell, every action it uses is pinned by commit, and the binary is cached by the exact
//! sources it is built from.

use std::path::Path;
use std::process::Command;

use yaml_rust2::{Yaml, YamlLoader};

fn action() -> Yaml {
    let root = env!("CARGO_MANIFEST_DIR");
    let text = std::fs::read_to_string(format!("{root}/action.yml")).unwrap();
    YamlLoader::load_from_str(&text).unwrap().remove(0)
}

fn steps(doc: &Yaml) -> Vec<Yaml> {
    doc["runs"]["steps"].as_vec().unwrap().clone()
}

/// `text` with every `${{ expr }}` replaced the way the runner does before the shell sees it:
/// an input by the workflow's value, anything else by `other`.
fn expand(text: &str, input: &dyn Fn(&str) -> String, other: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find("${{") {
        out.push_str(&rest[..at]);
        let Some(end) = rest[at..].find("}}") else {
            break;
        };
        let expr = rest[at + 3..at + end].trim();
        match expr.strip_prefix("inputs.") {
            Some(name) => out.push_str(&input(name)),
            None => out.push_str(other),
        }
        rest = &rest[at + end + 2..];
    }
    out.push_str(rest);
    out
}

/// Every step's script, run as the runner would with inputs that are shell commands: none of
/// them runs.
#[test]
fn inputs_reach_scripts_as_data_never_as_shell() {
    let doc = action();
    let temp = tempfile::tempdir().unwrap();
    let pwned = temp.path().join("pwned");
    let hostile = format!("low$(touch {})`touch {}`", pwned.display(), pwned.display());
    let input = |_: &str| hostile.clone();
    let bin = temp.path().join("racecheck/bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_racecheck"), bin.join("racecheck")).unwrap();
    let mut ran = 0;
    for step in steps(&doc) {
        let Some(run) = step["run"].as_str() else {
            continue;
        };
        let output = temp.path().join("github_output");
        std::fs::write(&output, "").unwrap();
        let mut cmd = Command::new("bash");
        cmd.arg("-c")
            .arg(expand(run, &input, "1"))
            .current_dir(temp.path())
            .env("GITHUB_ACTION_PATH", env!("CARGO_MANIFEST_DIR"))
            .env("RUNNER_TEMP", temp.path())
            .env("RUNNER_OS", "Linux")
            .env("RUNNER_ARCH", "X64")
            .env("GITHUB_OUTPUT", &output);
        if let Some(env) = step["env"].as_hash() {
            for (k, v) in env {
                cmd.env(
                    k.as_str().unwrap(),
                    expand(v.as_str().unwrap(), &input, "1"),
                );
            }
        }
        // The install step would build racecheck again; the binary is already here.
        if run.contains("cargo install") {
            continue;
        }
        let _ = cmd.output().unwrap();
        ran += 1;
        assert!(
            !pwned.exists(),
            "step `{}` ran an input as a command",
            step["name"].as_str().unwrap_or("?")
        );
        assert!(
            !run.contains("${{"),
            "step `{}` interpolates an expression into its script: pass it through `env:`",
            step["name"].as_str().unwrap_or("?")
        );
    }
    assert!(ran >= 3, "only {ran} scripts ran");
}

/// A tag can be moved to other code; a commit cannot.
#[test]
fn every_action_used_is_pinned_by_commit() {
    let doc = action();
    let mut used = 0;
    for step in steps(&doc) {
        let Some(uses) = step["uses"].as_str() else {
            continue;
        };
        used += 1;
        let (name, rev) = uses.split_once('@').expect("owner/repo@rev");
        assert!(name.split('/').count() >= 2, "{uses}");
        assert!(
            rev.len() == 40 && rev.chars().all(|c| c.is_ascii_hexdigit()),
            "`{uses}` is not pinned to a 40-hex commit"
        );
    }
    assert!(used >= 2, "the cache and the upload are actions");
}

fn key(script: &str, dir: &Path) -> String {
    let temp = tempfile::tempdir().unwrap();
    let output = temp.path().join("out");
    let out = Command::new("bash")
        .arg("-c")
        .arg(script)
        .env("GITHUB_ACTION_PATH", dir)
        .env("RUNNER_OS", "Linux")
        .env("RUNNER_ARCH", "X64")
        .env("GITHUB_OUTPUT", &output)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read_to_string(&output).unwrap().trim().to_string()
}

/// The install is skipped on a cache hit, and the key changes exactly when what the binary is
/// built from changes.
#[test]
fn the_binary_is_cached_by_the_sources_it_is_built_from() {
    let doc = action();
    let all = steps(&doc);
    let digest = all
        .iter()
        .find(|s| s["id"].as_str() == Some("version"))
        .and_then(|s| s["run"].as_str())
        .expect("a step with id `version`");
    let cache = all
        .iter()
        .find(|s| {
            s["uses"]
                .as_str()
                .is_some_and(|u| u.starts_with("actions/cache@"))
        })
        .expect("a cache step");
    assert_eq!(
        cache["with"]["key"].as_str(),
        Some("${{ steps.version.outputs.key }}")
    );
    let install = all
        .iter()
        .find(|s| {
            s["run"]
                .as_str()
                .is_some_and(|r| r.contains("cargo install"))
        })
        .expect("an install step");
    assert!(install["if"]
        .as_str()
        .is_some_and(|c| c.contains("steps.cache.outputs.cache-hit != 'true'")));

    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    std::fs::create_dir_all(p.join("src")).unwrap();
    std::fs::create_dir_all(p.join("target")).unwrap();
    std::fs::write(p.join("Cargo.toml"), "[package]\nversion = \"9.8.7\"\n").unwrap();
    std::fs::write(p.join("Cargo.lock"), "").unwrap();
    std::fs::write(p.join("src/main.rs"), "fn main() {}\n").unwrap();
    std::fs::write(p.join("src/a file.rs"), "\n").unwrap();
    let first = key(digest, p);
    assert!(
        first.starts_with("key=racecheck-9.8.7-Linux-X64-"),
        "{first}"
    );
    std::fs::write(p.join("target/built.rs"), "// output\n").unwrap();
    std::fs::write(p.join("README.md"), "docs\n").unwrap();
    assert_eq!(key(digest, p), first, "files the build does not read");
    std::fs::write(p.join("src/a file.rs"), "// changed\n").unwrap();
    assert_ne!(key(digest, p), first, "a changed source");
    // The real checkout gives a key too.
    assert!(key(digest, Path::new(env!("CARGO_MANIFEST_DIR"))).starts_with("key=racecheck-0."));
}
