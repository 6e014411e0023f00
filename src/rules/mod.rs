//! The rule catalog. Each rule is one file: its documentation (what, why, example, fix) beside
//! its check. The doc comment is the single source for `racecheck rules`, the MCP rule
//! resources and the README table.

use crate::model::Severity;

pub mod contract;
pub mod correlation;
pub mod probe;
pub mod source;

/// Where a rule's evidence comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    Source,
    Contract,
    Correlation,
    Probe,
}

impl Family {
    pub fn as_str(self) -> &'static str {
        match self {
            Family::Source => "source",
            Family::Contract => "contract",
            Family::Correlation => "source x contract",
            Family::Probe => "probe",
        }
    }
}

/// A rule's identity and documentation.
#[derive(Debug)]
pub struct RuleMeta {
    pub id: &'static str,
    pub slug: &'static str,
    pub family: Family,
    pub severity: Severity,
    /// One line: what the rule reports.
    pub summary: &'static str,
    /// The doc comment, one line per `///` line.
    raw_doc: &'static [&'static str],
}

impl RuleMeta {
    pub const fn new(
        id: &'static str,
        slug: &'static str,
        family: Family,
        severity: Severity,
        summary: &'static str,
        raw_doc: &'static [&'static str],
    ) -> RuleMeta {
        RuleMeta {
            id,
            slug,
            family,
            severity,
            summary,
            raw_doc,
        }
    }

    /// A finding of this rule; the caller adds function, operation, routes, evidence, fixes.
    pub fn finding(
        &'static self,
        confidence: crate::model::Confidence,
        message: String,
        location: crate::model::Location,
    ) -> crate::model::Finding {
        crate::model::Finding {
            rule: self.id.to_string(),
            slug: self.slug.to_string(),
            severity: self.severity,
            confidence,
            message,
            location,
            function: None,
            operation: None,
            routes: vec![],
            evidence: vec![],
            fixes: vec![],
            fingerprint: String::new(),
            proof: None,
            assumed: None,
        }
    }

    /// The rule's documentation as Markdown.
    pub fn doc(&self) -> String {
        let mut s = format!("# {} `{}`\n\n{}\n\n", self.id, self.slug, self.summary);
        for line in self.raw_doc {
            let line = line.strip_prefix(' ').unwrap_or(line);
            // Examples are marked `ignore` for rustdoc only.
            s.push_str(&line.replace("```rust,ignore", "```rust"));
            s.push('\n');
        }
        s
    }
}

/// Declares a rule's metadata with its doc comment, which becomes its user documentation.
macro_rules! declare_rule {
    (
        $(#[doc = $doc:literal])*
        pub static $name:ident = ($id:literal, $slug:literal, $family:ident, $severity:ident, $summary:literal);
    ) => {
        $(#[doc = $doc])*
        pub static $name: $crate::rules::RuleMeta = $crate::rules::RuleMeta::new(
            $id,
            $slug,
            $crate::rules::Family::$family,
            $crate::model::Severity::$severity,
            $summary,
            &[$($doc),*],
        );
    };
}
pub(crate) use declare_rule;

/// Every rule, in catalog order.
/// How directly a rule's findings show a race: one observed by the probe, then one read in
/// the code, then a correlation of code and document, then a gap in what the document promises.
/// Answers rank findings of one severity by it.
pub fn directness(rule: &str) -> u8 {
    match find(rule).map(|r| r.family) {
        Some(Family::Probe) => 3,
        Some(Family::Source) => 2,
        Some(Family::Correlation) => 1,
        _ => 0,
    }
}

pub fn all() -> impl Iterator<Item = &'static RuleMeta> {
    source::RULES
        .iter()
        .chain(contract::RULES)
        .chain(correlation::RULES)
        .chain(probe::RULES)
        .copied()
}

/// Look a rule up by id (`RC101`, any case) or slug (`lost-update`).
pub fn find(key: &str) -> Option<&'static RuleMeta> {
    let key = key.trim();
    all().find(|r| r.id.eq_ignore_ascii_case(key) || r.slug == key)
}

/// The rule table in Markdown, as the README shows it.
pub fn markdown_table() -> String {
    let mut s = String::from(
        "| id | slug | evidence | severity | what it reports |\n| --- | --- | --- | --- | --- |\n",
    );
    for r in all() {
        s.push_str(&format!(
            "| {} | `{}` | {} | {} | {} |\n",
            r.id,
            r.slug,
            r.family.as_str(),
            r.severity.as_str(),
            r.summary.replace('|', "\\|")
        ));
    }
    s
}
