//! `fix --apply` on a repository that was built to turn the write into another one: planted
//! temporary names, links out of the project, read-only and hard-linked files, other line
//! endings and indentation, a bare CR in a changed line, the same file named twice. Each case
//! failed on the writer that wrote `<file>.racecheck-fix.tmp` with a plain write.

use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Output};

/// A counter read, changed in Rust and written back: its fix is a safe edit.
const COUNTER: &str = include_str!("fixtures/source/RC103.rs");
/// Creates without a condition: their fix (unsafe) adds one and maps the failed condition in a
/// closure of several lines.
const CREATE: &str = include_str!("fixtures/source/RC106.rs");

fn racecheck(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_racecheck"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("racecheck runs")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A project (it has `.git`) with `src/lib.rs` holding `code`, and a folder beside it that is
/// not part of it.
fn project(code: &str) -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("repo");
    let outside = tmp.path().join("outside");
    std::fs::create_dir_all(root.join("src")).unwrap();
    std::fs::create_dir_all(root.join(".git")).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(root.join("src/lib.rs"), code).unwrap();
    (tmp, root, outside)
}

fn fixed(text: &str) -> bool {
    text.contains("if_not_exists(#value, :zero)")
}

fn leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("racecheck-fix"))
        .collect()
}

#[test]
fn a_planted_temporary_name_is_never_written_through() {
    let (_tmp, root, outside) = project(COUNTER);
    let victim = outside.join("victim.txt");
    std::fs::write(&victim, "precious\n").unwrap();
    std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o600)).unwrap();
    // The name the old writer picked, planted as a link out of the project.
    symlink(&victim, root.join("src/lib.racecheck-fix.tmp")).unwrap();
    let out = racecheck(&root, &["fix", "src/lib.rs", "--apply"]);
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
    assert_eq!(
        std::fs::metadata(&victim).unwrap().mode() & 0o777,
        0o600,
        "{}",
        text(&out)
    );
    let lib = root.join("src/lib.rs");
    assert!(!std::fs::symlink_metadata(&lib).unwrap().is_symlink());
    assert!(
        fixed(&std::fs::read_to_string(&lib).unwrap()),
        "{}",
        text(&out)
    );
    // The planted link is left as it was, and no temporary file of ours stays behind.
    assert!(
        std::fs::symlink_metadata(root.join("src/lib.racecheck-fix.tmp"))
            .unwrap()
            .is_symlink()
    );
    assert_eq!(leftovers(&root.join("src")), ["lib.racecheck-fix.tmp"]);
}

#[test]
fn a_source_linked_out_of_the_project_is_refused_by_name() {
    let (_tmp, root, outside) = project("");
    let real = outside.join("lib.rs");
    std::fs::write(&real, COUNTER).unwrap();
    let lib = root.join("src/lib.rs");
    std::fs::remove_file(&lib).unwrap();
    symlink(&real, &lib).unwrap();
    // Named directly (a folder walk would not read it at all).
    let out = racecheck(&root, &["fix", "src/lib.rs", "--apply"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("`src/lib.rs` resolves to") && text(&out).contains("outside"),
        "{}",
        text(&out)
    );
    assert_eq!(std::fs::read_to_string(&real).unwrap(), COUNTER);
    assert!(std::fs::symlink_metadata(&lib).unwrap().is_symlink());
}

#[test]
fn a_link_inside_the_project_stays_a_link_and_its_file_gets_the_fix() {
    let (_tmp, root, _outside) = project("");
    let real = root.join("shared.rs");
    std::fs::write(&real, COUNTER).unwrap();
    let lib = root.join("src/lib.rs");
    std::fs::remove_file(&lib).unwrap();
    symlink("../shared.rs", &lib).unwrap();
    let out = racecheck(&root, &["fix", "src/lib.rs", "--apply"]);
    assert!(std::fs::symlink_metadata(&lib).unwrap().is_symlink());
    assert!(
        fixed(&std::fs::read_to_string(&real).unwrap()),
        "{}",
        text(&out)
    );
}

#[test]
fn mode_is_kept_and_read_only_or_hard_linked_files_are_refused() {
    let (_tmp, root, _outside) = project(COUNTER);
    let lib = root.join("src/lib.rs");
    std::fs::set_permissions(&lib, std::fs::Permissions::from_mode(0o640)).unwrap();
    let out = racecheck(&root, &["fix", "src/lib.rs", "--apply"]);
    assert!(
        fixed(&std::fs::read_to_string(&lib).unwrap()),
        "{}",
        text(&out)
    );
    assert_eq!(std::fs::metadata(&lib).unwrap().mode() & 0o7777, 0o640);

    std::fs::write(&lib, COUNTER).unwrap();
    std::fs::set_permissions(&lib, std::fs::Permissions::from_mode(0o444)).unwrap();
    let out = racecheck(&root, &["fix", "src/lib.rs", "--apply"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("`src/lib.rs` is read-only"),
        "{}",
        text(&out)
    );
    std::fs::set_permissions(&lib, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert_eq!(std::fs::read_to_string(&lib).unwrap(), COUNTER);

    let other = root.join("copy.rs");
    std::fs::hard_link(&lib, &other).unwrap();
    let out = racecheck(&root, &["fix", "src/lib.rs", "--apply"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("hard links"), "{}", text(&out));
    assert_eq!(std::fs::read_to_string(&other).unwrap(), COUNTER);
    assert!(leftovers(&root.join("src")).is_empty());
}

/// Run as root, a replaced file would belong to root.
#[test]
fn owner_and_group_are_kept() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("not root: a file of another owner cannot be made here; the case is root's");
        return;
    }
    let (_tmp, root, _outside) = project(COUNTER);
    let lib = root.join("src/lib.rs");
    std::os::unix::fs::chown(&lib, Some(4321), Some(4322)).unwrap();
    let out = racecheck(&root, &["fix", "src/lib.rs", "--apply"]);
    assert!(
        fixed(&std::fs::read_to_string(&lib).unwrap()),
        "{}",
        text(&out)
    );
    let meta = std::fs::metadata(&lib).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (4321, 4322));
}

#[test]
fn crlf_files_keep_crlf_and_tab_files_keep_tabs() {
    let crlf = CREATE.replace('\n', "\r\n");
    let (_tmp, root, _outside) = project(&crlf);
    let lib = root.join("src/lib.rs");
    let out = racecheck(&root, &["fix", "src/lib.rs", "--apply", "--unsafe-fixes"]);
    let after = std::fs::read_to_string(&lib).unwrap();
    assert!(
        after.contains("attribute_not_exists(#pk)"),
        "{}",
        text(&out)
    );
    assert_eq!(
        after.matches('\n').count(),
        after.matches("\r\n").count(),
        "a line ends in a bare LF:\n{after:?}"
    );

    // Tabs for indentation, as `hard_tabs = true` formats it.
    let tabs: String = CREATE
        .lines()
        .map(|l| {
            let body = l.trim_start_matches(' ');
            let levels = (l.len() - body.len()) / 4;
            format!("{}{body}\n", "\t".repeat(levels))
        })
        .collect();
    std::fs::write(&lib, &tabs).unwrap();
    let out = racecheck(&root, &["fix", "src/lib.rs", "--apply", "--unsafe-fixes"]);
    let after = std::fs::read_to_string(&lib).unwrap();
    assert!(
        after.contains("attribute_not_exists(#pk)"),
        "{}",
        text(&out)
    );
    assert!(after.contains("is_conditional_check_failed_exception"));
    for line in after.lines() {
        let lead = &line[..line.len() - line.trim_start().len()];
        assert!(
            !lead.contains(' '),
            "spaces in a tab-indented file: {line:?}"
        );
    }
}

#[test]
fn a_diff_with_a_bare_cr_in_a_changed_line_applies() {
    let code = COUNTER.replacen(
        ".item(\"name\", AttributeValue::S(name))",
        ".item(\"name\", AttributeValue::S(name)) // a\rb",
        1,
    );
    assert_ne!(
        code, COUNTER,
        "the fixture changed: put the bare CR on a changed line"
    );
    let (_tmp, root, _outside) = project(&code);
    let out = racecheck(&root, &["fix", "src/lib.rs", "--diff"]);
    let patch = String::from_utf8(out.stdout).unwrap();
    assert!(patch.contains("\r"), "{patch}");
    std::fs::write(root.join("fix.patch"), &patch).unwrap();
    let git = Command::new("git")
        .args(["apply", "--check", "fix.patch"])
        .current_dir(&root)
        .output()
        .expect("git runs");
    assert!(
        git.status.success(),
        "{}\n{patch}",
        String::from_utf8_lossy(&git.stderr)
    );
}

#[test]
fn the_same_file_named_twice_is_fixed_once() {
    let (_tmp, root, _outside) = project(COUNTER);
    let out = racecheck(&root, &["fix", "src/lib.rs", "./src/lib.rs", "--apply"]);
    assert_ne!(out.status.code(), Some(2), "{}", text(&out));
    assert!(!text(&out).contains("changed since"), "{}", text(&out));
    let after = std::fs::read_to_string(root.join("src/lib.rs")).unwrap();
    assert_eq!(after.matches("if_not_exists(#value, :zero)").count(), 1);
    // And a scan reports each finding once.
    let out = racecheck(
        &root,
        &[
            "scan",
            "--format",
            "json",
            "src/lib.rs",
            "src/../src/lib.rs",
        ],
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let once = racecheck(&root, &["scan", "--format", "json", "src/lib.rs"]);
    let once: serde_json::Value = serde_json::from_slice(&once.stdout).unwrap();
    assert_eq!(report["findings"], once["findings"]);
}
