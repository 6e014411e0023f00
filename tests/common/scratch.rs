//! Scratch copies and scratch crates: a crate outside the workspace builds against the
//! workspace's locked dependencies in the shared target directory, so nothing compiles twice.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub const ROOT: &str = env!("CARGO_MANIFEST_DIR");

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let (src, dst) = (e.path(), to.join(e.file_name()));
        if e.file_type().unwrap().is_dir() {
            if e.file_name() != "target" {
                copy_dir(&src, &dst);
            }
        } else {
            std::fs::copy(&src, &dst).unwrap();
        }
    }
}

pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(ROOT).join("target"))
}

/// Make `dir` a crate named `name` with the demo's dependencies at the workspace's versions;
/// its `src` is left to the caller.
pub fn manifest(dir: &Path, name: &str) {
    let root = std::fs::read_to_string(format!("{ROOT}/Cargo.toml")).unwrap();
    let mut deps = String::new();
    for line in root.lines() {
        for d in ["aws-sdk-dynamodb", "axum", "tokio", "serde", "serde_json"] {
            if line.starts_with(&format!("{d} = ")) {
                deps.push_str(line);
                deps.push('\n');
            }
        }
    }
    deps.push_str("serde_dynamo = { version = \"4\", features = [\"aws-sdk-dynamodb+1\"] }\n");
    deps.push_str("tracing = \"0.1\"\nuuid = { version = \"1\", features = [\"v4\"] }\n");
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("Cargo.toml"),
        format!(
            "[package]\nname = \"{name}\"\nversion = \"0.0.0\"\nedition = \"2021\"\npublish = false\n\n[dependencies]\n{deps}\n[workspace]\n"
        ),
    )
    .unwrap();
    std::fs::copy(format!("{ROOT}/Cargo.lock"), dir.join("Cargo.lock")).unwrap();
}

/// `cargo <command>` (`check`, `build`) of the crate in `dir`; whether it succeeded.
pub fn cargo(dir: &Path, command: &str) -> bool {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    Command::new(cargo)
        .args([command, "--quiet", "--manifest-path"])
        .arg(dir.join("Cargo.toml"))
        .env("CARGO_TARGET_DIR", target_dir())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .success()
}
