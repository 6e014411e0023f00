//! One answer sized for an assistant's context. A summary comes first (counts by rule,
//! severity and file or operation, what was not analysed), then the findings that matter most
//! (severity, confidence, then location), then how to get the rest: an opaque cursor that
//! pages through the same result while the input is unchanged.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::model::{AnalysisError, Finding, ProbeSummary, Report, Severity, Stats};

/// Characters an answer may take by default, structured and text content together.
pub const BUDGET: usize = 20_000;

/// Errors listed in one answer (the rest are counted).
const ERRORS_SHOWN: usize = 5;

/// Characters of a caller's argument an error message quotes: a forged argument cannot make
/// the error large.
pub const ECHO: usize = 64;

/// The longest cursor accepted; racecheck's own are about 20 characters.
const MAX_CURSOR: usize = 64;

/// Bytes of one string in the summary, an error or the probe summary: a long file name or
/// operation cannot crowd the findings out of an answer.
const SUMMARY_TEXT: usize = 1000;

/// `text` as an error message quotes it: at most [`ECHO`] characters, then `…`.
pub fn echo(text: &str) -> String {
    clip(text, ECHO)
}

/// At most `max` characters of `text`, then `…`.
pub fn clip(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_string(),
    }
}

/// Cut every string in `value` longer than `max` bytes (at a character boundary), marked with
/// what was left out; whether anything was cut.
fn cut_strings(value: &mut serde_json::Value, max: usize) -> bool {
    match value {
        serde_json::Value::String(s) if s.len() > max => {
            let mut at = max;
            while !s.is_char_boundary(at) {
                at -= 1;
            }
            let more = s.len() - at;
            s.truncate(at);
            let _ = write!(s, "… ({more} more bytes)");
            true
        }
        serde_json::Value::Array(items) => items
            .iter_mut()
            .fold(false, |cut, v| cut_strings(v, max) | cut),
        serde_json::Value::Object(map) => map
            .values_mut()
            .fold(false, |cut, v| cut_strings(v, max) | cut),
        _ => false,
    }
}

/// `item` with its strings cut to `max` bytes, or `item` itself when nothing was that long.
fn cut<T: Serialize + serde::de::DeserializeOwned>(item: T, max: usize) -> (T, bool) {
    let Ok(mut value) = serde_json::to_value(&item) else {
        return (item, false);
    };
    if !cut_strings(&mut value, max) {
        return (item, false);
    }
    match serde_json::from_value(value) {
        Ok(t) => (t, true),
        Err(_) => (item, false),
    }
}

/// How to cut a result into answers.
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[schemars(transform = crate::model::portable)]
pub struct PageArgs {
    /// At most this many findings in this answer (default: as many as fit in about 20,000
    /// characters).
    #[serde(default)]
    #[schemars(with = "u32")]
    pub limit: Option<u32>,
    /// `next_cursor` of an earlier answer: the next findings of the same result.
    #[serde(default)]
    #[schemars(with = "String", length(max = 64))]
    pub cursor: Option<String>,
    /// Only findings at or above this severity.
    #[serde(default)]
    #[schemars(with = "Severity")]
    pub min_severity: Option<Severity>,
    /// Only these rules (ids like `RC101` or slugs like `lost-update`).
    #[serde(default)]
    pub rules: Vec<String>,
    /// Only findings whose file or operation contains this text (`src/orders`, `PUT /items`).
    #[serde(default)]
    #[schemars(with = "String")]
    pub filter: Option<String>,
    /// Give each fix in full (snippet, diff), not only its title and applicability.
    #[serde(default)]
    pub detail: bool,
}

impl PageArgs {
    /// Refuses what cannot narrow anything: a rule racecheck does not have.
    pub fn check(&self) -> Result<(), String> {
        let unknown: Vec<&str> = self
            .rules
            .iter()
            .filter(|k| crate::rules::find(k).is_none())
            .map(String::as_str)
            .collect();
        if unknown.is_empty() {
            return Ok(());
        }
        // Quoted short, and the first few only: the error stays small whatever was sent.
        let named: Vec<String> = unknown.iter().take(5).map(|k| echo(k)).collect();
        let more = match unknown.len() {
            n if n > 5 => format!(" and {} more", n - 5),
            _ => String::new(),
        };
        Err(format!(
            "unknown rule{} `{}`{more} in `rules`; known rules: {}",
            if unknown.len() > 1 { "s" } else { "" },
            named.join("`, `"),
            crate::rules::all()
                .map(|r| r.id)
                .collect::<Vec<_>>()
                .join(", ")
        ))
    }
}

/// A count under a name.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema, PartialEq)]
#[schemars(transform = crate::model::portable)]
pub struct Count {
    pub name: String,
    pub count: u64,
}

/// What the whole result holds, before any finding.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[schemars(transform = crate::model::portable)]
pub struct Summary {
    /// Findings that pass the filters, in all answers.
    pub total: u64,
    /// Position of this answer's first finding among them (0-based), and how many it holds.
    pub offset: u64,
    pub shown: u64,
    /// `RC101 lost-update` -> findings.
    #[schemars(with = "BTreeMap<String, u32>")]
    pub by_rule: BTreeMap<String, u64>,
    #[schemars(with = "BTreeMap<String, u32>")]
    pub by_severity: BTreeMap<String, u64>,
    /// The files or operations with the most findings (at most 10).
    pub top_locations: Vec<Count>,
    /// Inputs that were not analysed (the first few are in `errors`).
    pub not_analysed: u64,
    /// How to get the rest, or what was left out.
    pub more: String,
}

/// One answer.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[schemars(transform = crate::model::portable)]
pub struct Page {
    pub summary: Summary,
    pub findings: Vec<Finding>,
    pub errors: Vec<AnalysisError>,
    pub stats: Stats,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "ProbeSummary")]
    pub probe: Option<ProbeSummary>,
    /// Pass as `cursor` for the next findings; absent on the last answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub next_cursor: Option<String>,
}

/// FNV-1a: the same fingerprint in every build, so a cursor survives a restart.
fn fnv(h: &mut u64, bytes: &[u8]) {
    for b in bytes {
        *h ^= u64::from(*b);
        *h = h.wrapping_mul(0x100_0000_01b3);
    }
}

fn fingerprint(findings: &[&Finding]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325;
    for f in findings {
        let l = &f.location;
        let key = format!(
            "{}|{}|{}|{}|{}\n",
            f.rule, l.file, l.line, l.column, f.message
        );
        fnv(&mut h, key.as_bytes());
    }
    h
}

fn where_of(f: &Finding) -> &str {
    f.operation.as_deref().unwrap_or(&f.location.file)
}

/// The findings that pass the filters, most important first.
fn selected<'r>(report: &'r Report, args: &PageArgs) -> Vec<&'r Finding> {
    let rules: Vec<&str> = args
        .rules
        .iter()
        .filter_map(|k| crate::rules::find(k).map(|r| r.id))
        .collect();
    let mut out: Vec<&Finding> = report
        .findings
        .iter()
        .filter(|f| args.min_severity.is_none_or(|s| f.severity >= s))
        .filter(|f| rules.is_empty() || rules.contains(&f.rule.as_str()))
        .filter(|f| {
            args.filter.as_deref().is_none_or(|t| {
                f.location.file.contains(t) || f.operation.as_deref().is_some_and(|o| o.contains(t))
            })
        })
        .collect();
    out.sort_by(|a, b| {
        (b.severity, crate::rules::directness(&b.rule), b.confidence)
            .cmp(&(a.severity, crate::rules::directness(&a.rule), a.confidence))
            .then_with(|| a.location.file.cmp(&b.location.file))
            .then_with(|| a.location.line.cmp(&b.location.line))
            .then_with(|| a.location.column.cmp(&b.location.column))
            .then_with(|| a.rule.cmp(&b.rule))
    });
    out
}

/// A finding as an answer shows it: fixes by title and applicability unless `detail`.
fn shown(f: &Finding, detail: bool) -> Finding {
    let mut f = f.clone();
    f.fingerprint = f.compute_fingerprint();
    if !detail {
        if let Some(p) = &mut f.proof {
            p.plan = serde_json::Value::Null;
        }
        for fix in &mut f.fixes {
            fix.explanation.clear();
            fix.snippet.clear();
            fix.diff = None;
            fix.edits.clear();
        }
    }
    f
}

/// One line of the text rendering.
fn line(f: &Finding) -> String {
    let mut message: String = f.message.chars().take(200).collect();
    if message.len() < f.message.len() {
        message.push('…');
    }
    let fixes: Vec<String> = f
        .fixes
        .iter()
        .map(|x| format!("{} ({})", x.title, x.safety.as_str()))
        .collect();
    let fix = if fixes.is_empty() {
        String::new()
    } else {
        format!(" — fix: {}", fixes.join("; "))
    };
    let assumed = f
        .assumed
        .as_ref()
        .map(|a| format!(" [assumed by {}:{}]", a.file, a.line))
        .unwrap_or_default();
    format!(
        "{}/{} {} {}:{} {}{assumed}{fix}\n",
        f.rule,
        f.slug,
        f.severity.as_str(),
        where_of(f),
        f.location.line,
        message
    )
}

/// The text content: the summary, one line per finding, how to get more.
pub fn text(page: &Page) -> String {
    let s = &page.summary;
    let mut out = String::new();
    let severities: Vec<String> = s
        .by_severity
        .iter()
        .rev()
        .map(|(k, v)| format!("{v} {k}"))
        .collect();
    let _ = writeln!(
        out,
        "{} finding(s){}{}{}; showing {}-{}.",
        s.total,
        if severities.is_empty() { "" } else { ": " },
        severities.join(", "),
        if page.stats.assumed > 0 {
            format!(
                " ({} assumed by racecheck.toml: `info`, each with its fact)",
                page.stats.assumed
            )
        } else {
            String::new()
        },
        if s.shown == 0 { 0 } else { s.offset + 1 },
        s.offset + s.shown
    );
    if let Some(p) = &page.probe {
        let _ = writeln!(out, "probe: {}", p.verdict);
    }
    for f in &page.findings {
        out.push_str(&line(f));
    }
    if s.not_analysed > 0 {
        let first = page
            .errors
            .first()
            .map(|e| e.message.as_str())
            .unwrap_or("");
        let _ = writeln!(
            out,
            "{} input(s) NOT analysed; first: {first}",
            s.not_analysed
        );
    }
    if !s.more.is_empty() {
        let _ = writeln!(out, "{}", s.more);
    }
    out
}

/// The answer `args` asks for, within [`BUDGET`] characters (structured JSON and text
/// together), or why the cursor cannot be used.
pub fn page(report: &Report, args: &PageArgs) -> Result<Page, String> {
    args.check()?;
    let all = selected(report, args);
    let print = fingerprint(&all);
    let offset = match &args.cursor {
        None => 0,
        Some(c) if c.chars().count() > MAX_CURSOR => {
            return Err(format!(
                "cursor `{}` ({} characters) is not one racecheck gave (those have at most {MAX_CURSOR}); call again without `cursor`",
                echo(c),
                c.chars().count()
            ));
        }
        Some(c) => {
            let (at, fp) = c
                .split_once('.')
                .and_then(|(a, f)| {
                    Some((
                        usize::from_str_radix(a, 16).ok()?,
                        u64::from_str_radix(f, 16).ok()?,
                    ))
                })
                .ok_or_else(|| {
                    format!(
                        "cursor `{}` is not one racecheck gave; call again without `cursor`",
                        echo(c)
                    )
                })?;
            if fp != print || at > all.len() {
                return Err("the result changed since this cursor was given (the code or document, or the filters, are not the same); call again without `cursor`".into());
            }
            at
        }
    };
    let mut by_rule: BTreeMap<String, u64> = BTreeMap::new();
    let mut by_severity: BTreeMap<String, u64> = BTreeMap::new();
    let mut places: BTreeMap<&str, u64> = BTreeMap::new();
    for f in &all {
        *by_rule.entry(format!("{} {}", f.rule, f.slug)).or_default() += 1;
        *by_severity
            .entry(f.severity.as_str().to_string())
            .or_default() += 1;
        *places.entry(where_of(f)).or_default() += 1;
    }
    let mut top: Vec<Count> = places
        .into_iter()
        .map(|(name, count)| Count {
            name: cut(name.to_string(), SUMMARY_TEXT).0,
            count,
        })
        .collect();
    top.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.name.cmp(&b.name)));
    top.truncate(10);
    let mut page = Page {
        summary: Summary {
            total: all.len() as u64,
            offset: offset as u64,
            shown: 0,
            by_rule,
            by_severity,
            top_locations: top,
            not_analysed: report.errors.len() as u64,
            more: String::new(),
        },
        findings: vec![],
        errors: report
            .errors
            .iter()
            .take(ERRORS_SHOWN)
            .map(|e| cut(e.clone(), SUMMARY_TEXT).0)
            .collect(),
        stats: report.stats.clone(),
        probe: report.probe.clone().map(|p| cut(p, SUMMARY_TEXT).0),
        next_cursor: None,
    };
    // Room for the cursor and the sentence that explains it.
    let reserve = 400;
    let size = |p: &Page| serde_json::to_string(p).map_or(usize::MAX, |j| j.len()) + text(p).len();
    let mut used = size(&page) + reserve;
    let limit = args.limit.map_or(usize::MAX, |l| l.max(1) as usize);
    let cost =
        |f: &Finding| serde_json::to_string(f).map_or(usize::MAX, |j| j.len() + 1) + line(f).len();
    let mut was_cut = None;
    for f in all.iter().skip(offset) {
        if page.findings.len() >= limit {
            break;
        }
        let mut f = shown(f, args.detail);
        // A finding too large for an answer of its own (a long operation name, message or
        // snippet) is shown with its long strings cut rather than never shown at all.
        if page.findings.is_empty() && used + cost(&f) > BUDGET {
            for max in [4096, 1024, 256, ECHO] {
                let (short, any) = cut(f.clone(), max);
                if any && used + cost(&short) <= BUDGET {
                    f = short;
                    was_cut = Some(offset + 1);
                    break;
                }
            }
        }
        let c = cost(&f);
        if used + c > BUDGET {
            break;
        }
        used += c;
        page.findings.push(f);
    }
    let shown_n = page.findings.len();
    page.summary.shown = shown_n as u64;
    let next = offset + shown_n;
    let mut more = vec![];
    if next < all.len() {
        if shown_n == 0 {
            return Err(format!(
                "finding {} alone does not fit in {BUDGET} characters even with its text cut (it has too many evidence steps or fixes); skip it with `rules`, `filter` or `min_severity`",
                offset + 1
            ));
        }
        let cursor = format!("{next:x}.{print:016x}");
        more.push(format!(
            "{} more finding(s): call again with `cursor: \"{cursor}\"` (or narrow with `min_severity`, `rules`, `filter`)",
            all.len() - next
        ));
        page.next_cursor = Some(cursor);
    }
    if let Some(n) = was_cut {
        more.push(format!(
            "finding {n} is too long for one answer: its long texts are cut, each marked `… (N more bytes)`"
        ));
    }
    if report.errors.len() > ERRORS_SHOWN {
        more.push(format!(
            "{} more input(s) not analysed are not listed",
            report.errors.len() - ERRORS_SHOWN
        ));
    }
    if !args.detail && page.findings.iter().any(|f| !f.fixes.is_empty()) {
        more.push(
            "fixes are shown by title and applicability; pass `detail: true` for their code".into(),
        );
    }
    page.summary.more = more.join("; ");
    Ok(page)
}
