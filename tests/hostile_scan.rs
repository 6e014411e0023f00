//! What a scanned repository can put in front of the person reading the report: control
//! characters in its code and file names, linked folders, names that are not UTF-8. The text
//! report escapes the first; the others are followed or reported, never passed over.

use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::{Command, Output};

const COUNTER: &str = include_str!("fixtures/source/RC103.rs");

fn racecheck(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_racecheck"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("racecheck runs")
}

fn project() -> (tempfile::TempDir, std::path::PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("repo");
    std::fs::create_dir_all(root.join(".git")).unwrap();
    std::fs::create_dir_all(root.join("src")).unwrap();
    (tmp, root)
}

#[test]
fn control_characters_from_code_and_names_are_escaped_in_text() {
    let (_tmp, root) = project();
    // ESC and BEL in a table name and a comment on a flagged line, and in the file's name.
    let code = COUNTER
        .replacen(
            "const COUNTERS: &str = \"counters\";",
            "const COUNTERS: &str = \"counters\u{1b}[2J\u{7}\";",
            1,
        )
        .replacen(
            "let next = current + 1;",
            "let next = current + 1; // \u{1b}]0;owned\u{7}\u{202e}",
            1,
        );
    assert_ne!(
        code, COUNTER,
        "the fixture changed: put the controls back in"
    );
    std::fs::write(root.join("src/\u{1b}[1Aevil.rs"), &code).unwrap();
    let out = racecheck(&root, &["scan", "."]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("RC103"), "{text}");
    for c in ['\u{1b}', '\u{7}', '\u{202e}', '\r'] {
        assert!(!text.contains(c), "{c:?} reached the terminal:\n{text}");
    }
    assert!(text.contains("\\u{1b}[1Aevil.rs"), "{text}");
    assert!(text.contains("\\u{1b}]0;owned"), "{text}");
    // JSON keeps the text as it is (its escaping is JSON's).
    let out = racecheck(&root, &["scan", "--format", "json", "."]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(report["findings"][0]["location"]["file"]
        .as_str()
        .unwrap()
        .contains('\u{1b}'));
}

#[test]
fn a_linked_folder_inside_the_project_is_followed() {
    let (_tmp, root) = project();
    // The crate scanned is `svc`; its handlers live beside it, linked in.
    std::fs::create_dir_all(root.join("shared/handlers")).unwrap();
    std::fs::write(root.join("shared/handlers/counter.rs"), COUNTER).unwrap();
    std::fs::create_dir_all(root.join("svc/src")).unwrap();
    std::fs::write(root.join("svc/src/main.rs"), "fn main() {}\n").unwrap();
    symlink("../../shared/handlers", root.join("svc/src/handlers")).unwrap();
    // A link back up must not loop.
    symlink("..", root.join("svc/src/up")).unwrap();
    let out = racecheck(&root, &["scan", "--format", "json", "svc"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let files: Vec<&str> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["location"]["file"].as_str().unwrap())
        .collect();
    assert!(
        !files.is_empty() && files.iter().all(|f| *f == "svc/src/handlers/counter.rs"),
        "{files:?} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(report["errors"], serde_json::json!([]));
}

#[test]
fn a_linked_folder_outside_the_project_is_reported() {
    let (tmp, root) = project();
    let elsewhere = tmp.path().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    std::fs::write(elsewhere.join("counter.rs"), COUNTER).unwrap();
    std::fs::write(root.join("src/main.rs"), "fn main() {}\n").unwrap();
    symlink(&elsewhere, root.join("src/vendor")).unwrap();
    let out = racecheck(&root, &["scan", "."]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(
        text.contains("`./src/vendor` is a symbolic link to") && text.contains("outside"),
        "{text}"
    );
    assert!(!text.contains("RC103"), "{text}");
}

#[test]
fn a_file_name_that_is_not_utf8_is_reported() {
    use std::os::unix::ffi::OsStrExt;
    let (_tmp, root) = project();
    let name = std::ffi::OsStr::from_bytes(b"src/caf\xe9.rs");
    std::fs::write(root.join(name), COUNTER).unwrap();
    let out = racecheck(&root, &["scan", "--format", "json", "."]);
    assert_eq!(out.status.code(), Some(2));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["findings"], serde_json::json!([]));
    let message = report["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("not UTF-8"), "{message}");
}
