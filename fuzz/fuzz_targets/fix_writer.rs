//! The fix writer on any text: the edits the analysis plans for it, then the patch `--diff`
//! prints and the file `--apply` writes. The patch must apply to the old text and give the new
//! one (read as `git apply` reads lines: ended by LF alone), the written file must hold the new
//! text exactly, and a file whose lines all end in CRLF must keep them so.
#![no_main]
use libfuzzer_sys::fuzz_target;
use racecheck::fix::{apply, edit, write};
use racecheck::source::{analyze, Input, Options};

/// `old` with the unified diff `patch` applied, or why it does not apply.
fn patched(old: &str, patch: &str) -> Result<String, String> {
    let old: Vec<&str> = old.split_inclusive('\n').collect();
    let mut out = String::new();
    let mut at = 0usize;
    let mut last_new: Option<usize> = None;
    for line in patch.split_inclusive('\n') {
        if line.starts_with("--- ") || line.starts_with("+++ ") {
            continue;
        }
        if let Some(h) = line.strip_prefix("@@ -") {
            let start: usize = h
                .split([',', ' '])
                .next()
                .and_then(|n| n.parse().ok())
                .ok_or("bad hunk header")?;
            // `start` is 1-based, or the line before when the hunk removes nothing.
            let from = if h.split(' ').next().is_some_and(|r| r.ends_with(",0")) {
                start
            } else {
                start.saturating_sub(1)
            };
            if from < at || from > old.len() {
                return Err(format!("hunk at {from} out of order"));
            }
            for l in &old[at..from] {
                out.push_str(l);
            }
            at = from;
            continue;
        }
        if line.starts_with("\\ No newline at end of file") {
            // The line before ends the file without a line feed.
            if let Some(n) = last_new {
                if out.len() > n && out.ends_with('\n') {
                    out.pop();
                }
            }
            continue;
        }
        let (tag, body) = line.split_at(1);
        match tag {
            " " | "-" => {
                let want = old.get(at).ok_or("context past the end")?;
                let body_nl = body.strip_suffix('\n').unwrap_or(body);
                if want.strip_suffix('\n').unwrap_or(want) != body_nl {
                    return Err(format!("line {at} differs: {want:?} vs {body:?}"));
                }
                if tag == " " {
                    last_new = Some(out.len());
                    out.push_str(want);
                } else {
                    last_new = None;
                }
                at += 1;
            }
            "+" => {
                last_new = Some(out.len());
                out.push_str(body);
            }
            _ => return Err(format!("not a patch line: {line:?}")),
        }
    }
    for l in &old[at..] {
        out.push_str(l);
    }
    Ok(out)
}

fuzz_target!(|data: &[u8]| {
    let Ok(code) = std::str::from_utf8(data) else {
        return;
    };
    let report = analyze(
        &[Input::Inline {
            name: "fuzz.rs".into(),
            code: code.into(),
        }],
        &Options {
            threads: Some(1),
            ..Options::default()
        },
    );
    let outcome = apply::plan(&report, true, &|_| Ok(code.to_string()));
    let Ok(dir) = tempfile::tempdir() else { return };
    for f in &outcome.files {
        let diff = edit::unified_diff(&f.path, &f.before, &f.after);
        assert_eq!(patched(&f.before, &diff).as_deref(), Ok(f.after.as_str()), "{diff}");
        let crlf = |t: &str| t.matches('\n').count() == t.matches("\r\n").count();
        if crlf(&f.before) && f.before.contains('\n') {
            assert!(crlf(&f.after), "a bare LF in a CRLF file:\n{:?}", f.after);
        }
        let path = dir.path().join("fuzz.rs");
        std::fs::write(&path, &f.before).unwrap();
        write::write(&path, &f.before, &f.after, dir.path()).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), f.after);
    }
});
