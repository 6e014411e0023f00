//! Choose which fixes of a report to apply and what the files become: one fix per finding,
//! safe ones unless unsafe ones are allowed, never two that touch the same text, never on a
//! file that no longer holds what the edits were made for.

use std::collections::BTreeMap;

use super::edit;
use crate::model::{Edit, Finding, FixSafety, Report};

/// A finding and what became of its fix.
#[derive(Debug)]
pub struct Entry {
    pub rule: String,
    pub file: String,
    pub line: u32,
    /// The fix's title when applied; why not otherwise.
    pub what: String,
}

/// One file's text before and after the chosen edits.
#[derive(Debug)]
pub struct Patched {
    pub path: String,
    pub before: String,
    pub after: String,
}

#[derive(Debug, Default)]
pub struct Outcome {
    pub files: Vec<Patched>,
    pub applied: Vec<Entry>,
    pub skipped: Vec<Entry>,
}

fn entry(f: &Finding, what: String) -> Entry {
    Entry {
        rule: f.rule.clone(),
        file: f.location.file.clone(),
        line: f.location.line,
        what,
    }
}

/// Why a finding's fixes cannot be applied as asked, or the fix to apply.
fn choose(f: &Finding, unsafe_ok: bool) -> Result<&crate::model::Fix, String> {
    if let Some(a) = &f.assumed {
        return Err(format!(
            "it is assumed safe by the fact at {}:{}; pass --no-config to fix it anyway",
            a.file, a.line
        ));
    }
    let with_edits = || f.fixes.iter().filter(|x| !x.edits.is_empty());
    if let Some(x) = with_edits().find(|x| x.safety == FixSafety::Safe) {
        return Ok(x);
    }
    if let Some(x) = with_edits().find(|x| x.safety == FixSafety::Unsafe) {
        return if unsafe_ok {
            Ok(x)
        } else {
            Err(format!(
                "its fix changes what clients see ({}); allow it with --unsafe-fixes",
                x.title
            ))
        };
    }
    if f.fixes.is_empty() {
        return Err("it has no fix".into());
    }
    if f.fixes.iter().all(|x| x.safety == FixSafety::DisplayOnly) {
        return Err("its fix is a sketch to adapt by hand (display-only)".into());
    }
    Err(f
        .fixes
        .iter()
        .find_map(|x| x.edit_note.clone())
        .unwrap_or_else(|| "its fix has no edits".into()))
}

/// Plan the edits of `report`; `read` gives a file's current text.
pub fn plan(
    report: &Report,
    unsafe_ok: bool,
    read: &dyn Fn(&str) -> Result<String, String>,
) -> Outcome {
    let mut out = Outcome::default();
    // Per file: its text, and the edits accepted so far.
    let mut files: BTreeMap<String, Result<(String, Vec<Edit>), String>> = BTreeMap::new();
    let mut findings: Vec<&Finding> = report.findings.iter().collect();
    findings.sort_by(|a, b| {
        (&a.location.file, a.location.line).cmp(&(&b.location.file, b.location.line))
    });
    for f in findings {
        let fix = match choose(f, unsafe_ok) {
            Ok(x) => x,
            Err(why) => {
                out.skipped.push(entry(f, why));
                continue;
            }
        };
        let mut by_file: BTreeMap<&str, Vec<&Edit>> = BTreeMap::new();
        for e in &fix.edits {
            by_file.entry(e.file.as_str()).or_default().push(e);
        }
        let mut why_not = None;
        for (path, edits) in &by_file {
            let state = files
                .entry(path.to_string())
                .or_insert_with(|| read(path).map(|t| (t, vec![])));
            match state {
                Err(e) => why_not = Some(e.clone()),
                Ok((text, taken)) => {
                    let mine: Vec<Edit> = edits.iter().map(|e| (*e).clone()).collect();
                    if edit::overlap(taken, &mine) {
                        why_not = Some(
                            "its edits touch the text of another fix applied now; run again".into(),
                        );
                    } else if let Err(e) = edit::apply(text, edits) {
                        why_not = Some(e);
                    }
                }
            }
            if why_not.is_some() {
                break;
            }
        }
        if let Some(why) = why_not {
            out.skipped.push(entry(f, why));
            continue;
        }
        for (path, edits) in by_file {
            if let Some(Ok((_, taken))) = files.get_mut(path) {
                taken.extend(edits.into_iter().cloned());
            }
        }
        out.applied
            .push(entry(f, format!("{} ({})", fix.title, fix.safety.as_str())));
    }
    for (path, state) in files {
        let Ok((before, edits)) = state else { continue };
        if edits.is_empty() {
            continue;
        }
        let refs: Vec<&Edit> = edits.iter().collect();
        // Each fix applied alone above, and none overlap: together they apply too.
        if let Ok(after) = edit::apply(&before, &refs) {
            out.files.push(Patched {
                path,
                before,
                after,
            });
        }
    }
    out
}
