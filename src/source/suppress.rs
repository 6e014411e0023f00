//! `// racecheck: ignore[RC101] <reason>` on the write, the line above it, or above the function.

use std::collections::HashMap;
use std::sync::Arc;

use super::facts::Span;
use super::index::FileText;
use crate::rules::RuleMeta;

#[derive(Default)]
pub struct Suppressions {
    /// (file, line) -> rule ids or slugs named there.
    lines: HashMap<(Arc<str>, u32), Vec<String>>,
}

const MARK: &str = "racecheck: ignore[";

impl Suppressions {
    pub fn scan(files: &[Arc<FileText>]) -> Suppressions {
        let mut s = Suppressions::default();
        for f in files {
            if !f.text.contains(MARK) {
                continue;
            }
            for (i, line) in f.text.lines().enumerate() {
                let Some(pos) = line.find(MARK) else { continue };
                let rest = &line[pos + MARK.len()..];
                let Some(end) = rest.find(']') else { continue };
                let ids = rest[..end]
                    .split(',')
                    .map(|x| x.trim().to_ascii_uppercase())
                    .filter(|x| !x.is_empty())
                    .collect();
                s.lines.insert((f.path.clone(), i as u32 + 1), ids);
            }
        }
        s
    }

    fn names(&self, file: &Arc<str>, line: u32, rule: &RuleMeta) -> bool {
        [line, line.saturating_sub(1)].iter().any(|l| {
            self.lines.get(&(file.clone(), *l)).is_some_and(|ids| {
                ids.iter()
                    .any(|i| i == rule.id || i.eq_ignore_ascii_case(rule.slug) || i == "ALL")
            })
        })
    }

    /// Whether a comment at the finding, at its write, or above its function suppresses it.
    pub fn covers(
        &self,
        rule: &RuleMeta,
        at: &Span,
        write: Option<&Span>,
        function: &Span,
    ) -> bool {
        if self.lines.is_empty() {
            return false;
        }
        self.names(&at.file, at.line, rule)
            || write.is_some_and(|w| self.names(&w.file, w.line, rule))
            || self.names(&function.file, function.line, rule)
    }
}
