//! Rendering reports: text like a compiler diagnostic, JSON, SARIF. Renderers never analyse.

use std::collections::HashMap;
use std::fmt::Write as _;

use crate::model::{Report, Severity, StepKind};

pub mod page;
pub mod sarif;

/// Output formats of the CLI.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
    Sarif,
}

/// Where the text renderer finds the lines it quotes: inline code first, then the disk.
#[derive(Default)]
pub struct Sources {
    inline: HashMap<String, String>,
    cache: std::cell::RefCell<HashMap<String, Option<Vec<String>>>>,
}

impl Sources {
    pub fn with_inline(name: &str, code: &str) -> Sources {
        let mut s = Sources::default();
        s.inline.insert(name.to_string(), code.to_string());
        s
    }

    fn line(&self, file: &str, line: u32) -> Option<String> {
        let mut cache = self.cache.borrow_mut();
        let lines = cache.entry(file.to_string()).or_insert_with(|| {
            let text = match self.inline.get(file) {
                Some(t) => Some(t.clone()),
                None => std::fs::read_to_string(file).ok(),
            };
            text.map(|t| t.lines().map(str::to_string).collect())
        });
        lines
            .as_ref()
            .and_then(|l| l.get((line as usize).checked_sub(1)?).cloned())
    }
}

fn label(s: Severity) -> &'static str {
    match s {
        Severity::Critical | Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low | Severity::Info => "note",
    }
}

/// A human report: each finding with the code it is about, the read, check and write marked,
/// and its fix.
pub fn text(report: &Report, sources: &Sources) -> String {
    let mut out = diagnostics(report, sources);
    out.push_str(&summary(report));
    out
}

/// Counts by rule, most frequent first (`--statistics`, as ruff prints them): a table, or a
/// JSON array with `--format json`.
pub fn statistics(report: &Report, format: Format) -> String {
    let mut counts: HashMap<(&str, &str, Severity), u64> = HashMap::new();
    for f in &report.findings {
        *counts.entry((&f.rule, &f.slug, f.severity)).or_default() += 1;
    }
    let mut rows: Vec<_> = counts.into_iter().collect();
    rows.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    if format == Format::Json {
        let rows: Vec<serde_json::Value> = rows
            .iter()
            .map(|((rule, slug, sev), n)| {
                serde_json::json!({"rule": rule, "slug": slug, "severity": sev.as_str(), "count": n})
            })
            .collect();
        return serde_json::to_string_pretty(&rows).unwrap_or_default() + "\n";
    }
    let mut out = String::new();
    for ((rule, slug, sev), n) in &rows {
        let _ = writeln!(out, "{n:>6}  {rule}  {slug:<36} {}", sev.as_str());
    }
    out.push_str(&summary(report));
    out
}

/// The findings and what was not analysed, without the closing summary line.
pub fn diagnostics(report: &Report, sources: &Sources) -> String {
    let mut out = String::new();
    for f in &report.findings {
        let _ = writeln!(
            out,
            "{}[{}/{}]: {}",
            label(f.severity),
            f.rule,
            f.slug,
            f.message
        );
        let _ = writeln!(
            out,
            "  --> {}:{}:{}",
            f.location.file, f.location.line, f.location.column
        );
        let width = f
            .evidence
            .iter()
            .map(|e| e.line)
            .chain([f.location.line])
            .max()
            .unwrap_or(1)
            .to_string()
            .len();
        let pad = " ".repeat(width);
        let _ = writeln!(out, "{pad} |");
        let mut last_file = f.location.file.as_str();
        for e in &f.evidence {
            if e.file != last_file {
                let _ = writeln!(out, "{pad} = in {}:", e.file);
                last_file = &e.file;
            }
            let mark = match e.kind {
                StepKind::Read => "read",
                StepKind::Compute => "compute",
                StepKind::Check => "check",
                StepKind::Call => "call",
                StepKind::Write => "write",
                StepKind::Note => "note",
            };
            let Some(code) = sources
                .line(&e.file, e.line)
                .map(|l| l.trim_end().to_string())
            else {
                // Nothing to quote (a probe round, an inline document): the note alone.
                let _ = writeln!(out, "{pad} = {mark}: {}", e.note);
                continue;
            };
            let _ = writeln!(out, "{:>width$} | {code}", e.line);
            let indent = (e.column as usize).saturating_sub(1);
            let _ = writeln!(out, "{pad} | {}^ {mark}: {}", " ".repeat(indent), e.note);
        }
        let _ = writeln!(out, "{pad} |");
        let place = match (&f.function, &f.operation) {
            (Some(func), _) => format!("in `{func}`"),
            (None, Some(op)) => format!("on `{op}`"),
            _ => String::new(),
        };
        let _ = writeln!(
            out,
            "{pad} = confidence: {}; {place}",
            f.confidence.as_str()
        );
        for r in &f.routes {
            let _ = if r.method == "LAMBDA" {
                writeln!(out, "{pad} = entry: Lambda handler `{}`", r.handler)
            } else {
                writeln!(
                    out,
                    "{pad} = route: {} {} (handler `{}`)",
                    r.method, r.path, r.handler
                )
            };
        }
        if let Some(a) = &f.assumed {
            let _ = writeln!(
                out,
                "{pad} = assumed ({} without it), by {}:{}: {}",
                a.severity.as_str(),
                a.file,
                a.line,
                a.fact
            );
        }
        if let Some(p) = &f.proof {
            let _ = writeln!(out, "{pad} = proof: {}: {}", p.status.as_str(), p.detail);
        }
        for fix in &f.fixes {
            let _ = writeln!(out, "{pad} = fix: {}", fix.title);
            let _ = writeln!(out, "{pad}   {}", fix.explanation);
            // The change to the user's own code when there is one, else the function to add.
            for line in fix.diff.as_deref().unwrap_or(&fix.snippet).lines() {
                let _ = writeln!(out, "{pad}   | {line}");
            }
            if !fix.edits.is_empty() {
                let flag = match fix.safety {
                    crate::model::FixSafety::Safe => "",
                    _ => " --unsafe-fixes",
                };
                let _ = writeln!(out, "{pad}   apply it with `racecheck fix --apply{flag}`");
            }
        }
        out.push('\n');
    }
    if let Some(p) = &report.probe {
        let _ = writeln!(out, "probe {} ({})", p.target, p.mode);
        for r in &p.rounds {
            let _ = writeln!(out, "  {}", crate::rules::probe::describe(r, 1.0));
        }
        let _ = writeln!(out, "  verdict: {}\n", p.verdict);
    }
    for e in &report.errors {
        let at = match (e.line, e.column) {
            (Some(l), Some(c)) => format!("{}:{l}:{c}", e.path),
            (Some(l), None) => format!("{}:{l}", e.path),
            _ => e.path.clone(),
        };
        let _ = writeln!(out, "error[not analysed]: {}\n  --> {at}\n", e.message);
    }
    out
}

/// The closing line: how many findings in how much input, and what was not analysed.
pub fn summary(report: &Report) -> String {
    let mut out = String::new();
    let s = &report.stats;
    let plural = |n: u64, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
    let what = if let Some(p) = &report.probe {
        let sent: u32 = p.rounds.iter().map(|r| r.sent).sum();
        format!("{} round(s), {sent} requests", p.rounds.len())
    } else if s.operations > 0 {
        format!(
            "{} ({} lines, {})",
            plural(s.files, "file"),
            s.lines,
            plural(s.operations, "operation")
        )
    } else {
        format!(
            "{} ({} lines, {} functions, {} routes, {} DynamoDB operations)",
            plural(s.files, "file"),
            s.lines,
            s.functions,
            s.routes,
            s.dynamodb_operations
        )
    };
    let _ = writeln!(
        out,
        "{}{} in {what}{}{} in {} ms",
        plural(s.findings, "finding"),
        if s.assumed > 0 {
            format!(" ({} assumed by racecheck.toml)", s.assumed)
        } else {
            String::new()
        },
        match (s.suppressed, s.baselined) {
            (0, 0) => String::new(),
            (n, 0) => format!(", {n} suppressed"),
            (0, b) => format!(", {b} in the baseline"),
            (n, b) => format!(", {n} suppressed, {b} in the baseline"),
        },
        if report.errors.is_empty() {
            String::new()
        } else {
            format!("; {} input(s) NOT analysed", report.errors.len())
        },
        s.elapsed_ms
    );
    out
}

/// `text` as a terminal shows it literally: control characters from scanned code, documents,
/// file names and answers (ESC, BEL, CR, DEL, C1 controls and bidirectional overrides) are
/// written as escapes, so none can move the cursor, clear the screen or reorder a line. Line
/// feeds and tabs stay.
pub fn terminal(text: &str) -> std::borrow::Cow<'_, str> {
    let hostile = |c: char| {
        (c.is_control() && c != '\n' && c != '\t')
            || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    };
    if !text.chars().any(hostile) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '\r' if hostile(c) => out.push_str("\\r"),
            c if hostile(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

pub fn json(report: &Report) -> String {
    serde_json::to_string_pretty(report).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

pub fn render(report: &Report, format: Format, sources: &Sources) -> String {
    match format {
        Format::Text => text(report, sources),
        Format::Json => json(report),
        Format::Sarif => sarif::render(report),
    }
}
