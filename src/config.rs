//! `racecheck.toml`: facts about the service that its code does not show (which attributes
//! never change, which tables have one writer, which flows a queue runs one at a time, which
//! helpers add a condition), declared by the user. The source analysis reads them through
//! [`crate::source::Options::facts`]; a finding one of them silences stays in the report as
//! `assumed`.
//!
//! The file is strict: an unknown key, a value of the wrong type or an empty name is an
//! error that names the file, the line and the key. [`FORMAT`] is the format's documentation
//! (`racecheck rules --config`) and is itself a valid file.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

/// The file's name.
pub const FILE_NAME: &str = "racecheck.toml";

/// Files larger than this are refused: the file holds a few declarations.
pub const MAX_BYTES: u64 = 1024 * 1024;

/// The format, as `racecheck rules --config` prints it: a valid `racecheck.toml` (a test
/// parses it) whose comments explain each key.
pub const FORMAT: &str = r#"# racecheck.toml: facts about the service that its code does not show.
#
# Where it is read from: `racecheck scan|fix|audit PATH` and the MCP tools that analyse a
# path look for racecheck.toml in the scanned directory (a file's directory for a file),
# then in each directory above it up to the repository root (the nearest one holding
# `.git`); outside a repository, only in the scanned directory. `--config FILE` names a
# file instead, `--no-config` ignores it. Inline code given to MCP tools reads none.
#
# What a fact does: a finding it explains is not dropped. It stays in the report at
# severity `info`, marked `assumed` with the fact and its line here, and the summary counts
# assumed findings apart. If the fact stops being true, the race is real again: keep
# this file next to the code it describes. A finding the analysis already lowered to
# `info` on its own is left as it is.
#
# The file is strict: an unknown key, a value of the wrong type or an empty name is an
# error naming the line; it is at most 1 MiB. Every key is optional.

# Tables that one writer alone writes (one process, one consumer of a FIFO queue): their
# writes cannot race with each other, so a lost update, check-then-act, read-modify-write
# counter, unconditional create or batch write on them (RC101, RC102, RC103, RC106,
# RC107) is assumed. A table is named as the code names it: its name (`ledger`), or the
# constant or field that holds it (`LEDGER_TABLE` and `self.ledger_table` match `ledger`).
single-writer = ["ledger"]

# Functions that never run concurrently with themselves: handlers fed by a FIFO queue with
# one consumer, jobs a scheduler runs one at a time. Their flow (and that of functions only
# they call) cannot interleave with itself, so the same interleaving rules are assumed.
# A function is `name`, `Type::method` or `module::function`; a shorter path matches any
# function it ends (`handle` matches `Worker::handle`).
serialized = ["process_order", "Worker::handle"]

# Functions that make their writes conditional where racecheck cannot see it (a wrapper
# that adds a version check, a library call that does): a write reached through one of
# them counts as re-checking what was read, so RC101, RC102, RC103 and RC106 on it are
# assumed.
conditional-helpers = ["save_versioned"]

# Attributes that no write changes after the item is created (its owner, its creator, its
# kind). A check-then-act (RC102) whose decision is only on such attributes cannot be
# invalidated by a concurrent request, so it is assumed. `table` is optional: left out,
# the attributes are immutable in every table. One [[immutable]] block per table.
[[immutable]]
table = "bots"
attributes = ["owner_id", "created_by"]

[[immutable]]
attributes = ["tenant_id"]
"#;

/// A name declared in the file, with the line that declares it.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Named {
    pub name: String,
    pub line: u32,
}

/// One `[[immutable]]` block.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Immutable {
    /// `None`: every table.
    pub table: Option<Named>,
    pub attributes: Vec<Named>,
}

/// The facts of one `racecheck.toml`; the default declares none.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Facts {
    /// The file they were read from, as findings name it.
    pub file: String,
    pub immutable: Vec<Immutable>,
    pub single_writer: Vec<Named>,
    pub serialized: Vec<Named>,
    pub conditional_helpers: Vec<Named>,
}

/// Why a `racecheck.toml` cannot be used: the file, where in it, and what was wrong.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}: {message}", place(.file, *.line, *.column))]
pub struct ConfigError {
    pub file: String,
    /// 1-based; `None` when the file as a whole is wrong (unreadable, too large).
    pub line: Option<u32>,
    pub column: Option<u32>,
    pub message: String,
}

fn place(file: &str, line: Option<u32>, column: Option<u32>) -> String {
    match (line, column) {
        (Some(l), Some(c)) => format!("{file}:{l}:{c}"),
        (Some(l), None) => format!("{file}:{l}"),
        _ => file.to_string(),
    }
}

/// The file as written; every key optional, none other allowed.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct Raw {
    #[serde(default)]
    immutable: Vec<RawImmutable>,
    #[serde(default)]
    single_writer: Vec<Spanned<String>>,
    #[serde(default)]
    serialized: Vec<Spanned<String>>,
    #[serde(default)]
    conditional_helpers: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawImmutable {
    #[serde(default)]
    table: Option<Spanned<String>>,
    attributes: Spanned<Vec<Spanned<String>>>,
}

/// 1-based line and column (in characters) of byte `at` of `text`.
fn line_col(text: &str, at: usize) -> (u32, u32) {
    let at = at.min(text.len());
    let at = (0..=at)
        .rev()
        .find(|i| text.is_char_boundary(*i))
        .unwrap_or(0);
    let before = &text[..at];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (
        u32::try_from(line).unwrap_or(u32::MAX),
        u32::try_from(column).unwrap_or(u32::MAX),
    )
}

/// The key a line assigns (`single-writer = ...` gives `single-writer`), or the table it
/// opens (`[[immutable]]`).
fn key_on_line(text: &str, line: u32) -> Option<String> {
    let l = text.lines().nth(line.checked_sub(1)? as usize)?.trim();
    if l.starts_with('[') {
        return Some(l.trim_matches(|c| c == '[' || c == ']').trim().to_string());
    }
    let (k, _) = l.split_once('=')?;
    let k = k.trim().trim_matches('"');
    (!k.is_empty()).then(|| k.to_string())
}

/// `a::b::c` with Rust identifiers between the `::`.
fn is_path(s: &str) -> bool {
    s.split("::").all(|seg| {
        let mut cs = seg.chars();
        cs.next().is_some_and(|c| c.is_alphabetic() || c == '_')
            && cs.all(|c| c.is_alphanumeric() || c == '_')
    })
}

impl Facts {
    /// Parse a file's text; `file` names it in errors and in findings.
    pub fn parse(file: &str, text: &str) -> Result<Facts, ConfigError> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let err = |at: Option<usize>, message: String| {
            let (line, column) = match at.map(|a| line_col(text, a)) {
                Some((l, c)) => (Some(l), Some(c)),
                None => (None, None),
            };
            ConfigError {
                file: file.to_string(),
                line,
                column,
                message,
            }
        };
        let raw: Raw = toml::from_str(text).map_err(|e| {
            let at = e.span().map(|s| s.start);
            let key = at
                .map(|a| line_col(text, a).0)
                .and_then(|l| key_on_line(text, l));
            let what = e.message().trim_end().to_string();
            // A value of the wrong type is named by its key (the parser's message says only
            // what it expected); syntax errors and unknown keys say enough themselves.
            let message = match key {
                Some(k) if what.starts_with("invalid ") => format!("`{k}`: {what}"),
                _ => what,
            };
            err(
                at,
                format!("{message} (`racecheck rules --config` shows the format)"),
            )
        })?;
        let named = |key: &str, s: &Spanned<String>, check_path: bool| {
            let name = s.get_ref().trim();
            let at = Some(s.span().start);
            if name.is_empty() {
                return Err(err(at, format!("`{key}`: an empty name")));
            }
            if check_path && !is_path(name) {
                return Err(err(
                    at,
                    format!(
                        "`{key}`: `{name}` is not a function name (`name`, `Type::method` or `module::function`)"
                    ),
                ));
            }
            Ok(Named {
                name: name.to_string(),
                line: line_col(text, s.span().start).0,
            })
        };
        let list = |key: &str, items: &[Spanned<String>], check_path: bool| {
            items
                .iter()
                .map(|s| named(key, s, check_path))
                .collect::<Result<Vec<_>, _>>()
        };
        let mut immutable = vec![];
        for block in &raw.immutable {
            let attributes = list("attributes", block.attributes.get_ref(), false)?;
            if attributes.is_empty() {
                return Err(err(
                    Some(block.attributes.span().start),
                    "`attributes`: an empty list; name the attributes that never change".into(),
                ));
            }
            let table = block
                .table
                .as_ref()
                .map(|t| named("table", t, false))
                .transpose()?;
            immutable.push(Immutable { table, attributes });
        }
        Ok(Facts {
            file: file.to_string(),
            immutable,
            single_writer: list("single-writer", &raw.single_writer, false)?,
            serialized: list("serialized", &raw.serialized, true)?,
            conditional_helpers: list("conditional-helpers", &raw.conditional_helpers, true)?,
        })
    }

    /// Read and parse the file at `path` (at most [`MAX_BYTES`]).
    pub fn load(path: &Path) -> Result<Facts, ConfigError> {
        let file = shown(path);
        let whole = |message: String| ConfigError {
            file: file.clone(),
            line: None,
            column: None,
            message,
        };
        let bytes = crate::read_limited(path, MAX_BYTES).map_err(|e| {
            if e.kind() == std::io::ErrorKind::FileTooLarge {
                whole(format!(
                    "too large ({e}); a {FILE_NAME} holds a few declarations, at most 1 MiB"
                ))
            } else {
                whole(format!("cannot be read: {e}"))
            }
        })?;
        let text = String::from_utf8(bytes).map_err(|e| {
            whole(format!(
                "is not UTF-8 (byte {} is not); a {FILE_NAME} is TOML text",
                e.utf8_error().valid_up_to()
            ))
        })?;
        Facts::parse(&file, &text)
    }

    /// Whether the file declares anything.
    pub fn is_empty(&self) -> bool {
        self.immutable.is_empty()
            && self.single_writer.is_empty()
            && self.serialized.is_empty()
            && self.conditional_helpers.is_empty()
    }

    /// The declaration that `attr` never changes in a table the code names so (`name`: its
    /// name where known; `ident`: the constant or expression that holds it).
    pub fn immutable(&self, name: Option<&str>, ident: Option<&str>, attr: &str) -> Option<&Named> {
        self.immutable
            .iter()
            .filter(|b| {
                b.table
                    .as_ref()
                    .is_none_or(|t| table_is(&t.name, name, ident))
            })
            .find_map(|b| b.attributes.iter().find(|a| a.name == attr))
    }

    /// The declaration that the table the code names so has one writer.
    pub fn single_writer(&self, name: Option<&str>, ident: Option<&str>) -> Option<&Named> {
        self.single_writer
            .iter()
            .find(|t| table_is(&t.name, name, ident))
    }

    /// The declaration that the function `qual` (`Type::method`, `module::function`) is
    /// serialized.
    pub fn serialized(&self, qual: &str) -> Option<&Named> {
        self.serialized.iter().find(|d| names_fn(&d.name, qual))
    }

    /// The declaration that the function `qual` makes its writes conditional.
    pub fn conditional_helper(&self, qual: &str) -> Option<&Named> {
        self.conditional_helpers
            .iter()
            .find(|d| names_fn(&d.name, qual))
    }
}

/// `decl` (`handle`, `Worker::handle`) names the function `qual` (`Worker::handle`): equal,
/// or a path it ends with.
pub fn names_fn(decl: &str, qual: &str) -> bool {
    qual == decl
        || qual
            .strip_suffix(decl)
            .is_some_and(|rest| rest.ends_with("::"))
}

/// A table declared as `decl` is the one the code names `name` (its value, compared as is)
/// or `ident` (a constant or expression: `BOTS_TABLE`, `self.bots_table`, `BOTS`, compared by
/// its last word without a `table`/`table_name` affix, case aside).
pub fn table_is(decl: &str, name: Option<&str>, ident: Option<&str>) -> bool {
    if name == Some(decl) || ident == Some(decl) {
        return true;
    }
    let Some(ident) = ident else {
        return false;
    };
    let word = |s: &str| {
        let last = s
            .rsplit(|c: char| !(c.is_alphanumeric() || c == '_' || c == '-'))
            .find(|w| !w.is_empty())
            .unwrap_or("")
            .to_ascii_lowercase()
            .replace('-', "_");
        let mut w = last.as_str();
        for affix in ["_table_name", "_table", "_name"] {
            w = w.strip_suffix(affix).unwrap_or(w);
        }
        for affix in ["table_name_", "table_"] {
            w = w.strip_prefix(affix).unwrap_or(w);
        }
        w.to_string()
    };
    let d = word(decl);
    !d.is_empty() && d != "table" && d == word(ident)
}

/// A path as messages show it: without a leading `./`.
fn shown(path: &Path) -> String {
    let s = path.display().to_string();
    s.strip_prefix("./").map(str::to_string).unwrap_or(s)
}

/// The `racecheck.toml` that applies to `path`: in its directory (a file's directory for a
/// file), else in the nearest directory above it up to the repository root (the nearest
/// holding `.git`); outside a repository, only in its own directory.
pub fn find(path: &Path) -> Option<PathBuf> {
    let dir = if path.is_file() {
        path.parent().map(Path::to_path_buf).unwrap_or_default()
    } else {
        path.to_path_buf()
    };
    let dir = if dir.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        dir
    };
    // The directory as given first, so the file is named as the user would.
    let here = dir.join(FILE_NAME);
    if here.exists() {
        return Some(here);
    }
    let canonical = std::fs::canonicalize(&dir).ok()?;
    let root = canonical.ancestors().find(|d| d.join(".git").exists())?;
    let cwd = std::env::current_dir().ok();
    canonical
        .ancestors()
        .skip(1)
        .take_while(|d| d.starts_with(root))
        .map(|d| d.join(FILE_NAME))
        .find(|f| f.exists())
        .map(
            |f| match cwd.as_deref().and_then(|c| f.strip_prefix(c).ok()) {
                Some(rel) => rel.to_path_buf(),
                None => f,
            },
        )
}

/// Where the facts for an analysis of `paths` come from.
#[derive(Clone, Debug, Default)]
pub enum Source {
    /// The `racecheck.toml` that [`find`] finds for the paths.
    #[default]
    Discover,
    /// This file (`--config FILE`).
    File(PathBuf),
    /// None (`--no-config`).
    Ignore,
}

/// The facts for an analysis of `paths`: none when no file applies. Paths under different
/// `racecheck.toml` files are an error (each would judge the others' code).
pub fn facts_for(paths: &[PathBuf], source: &Source) -> Result<Facts, ConfigError> {
    match source {
        Source::Ignore => Ok(Facts::default()),
        Source::File(f) => Facts::load(f),
        Source::Discover => {
            let mut found: Vec<PathBuf> = paths.iter().filter_map(|p| find(p)).collect();
            found.sort();
            found.dedup();
            match found.as_slice() {
                [] => Ok(Facts::default()),
                [one] => Facts::load(one),
                [a, b, ..] => Err(ConfigError {
                    file: shown(a),
                    line: None,
                    column: None,
                    message: format!(
                        "the paths given are under different {FILE_NAME} files (this one and `{}`); analyse them apart, or name one with --config",
                        shown(b)
                    ),
                }),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_format_parses() {
        let f = Facts::parse("racecheck.toml", FORMAT).unwrap();
        assert_eq!(f.single_writer[0].name, "ledger");
        assert_eq!(f.serialized.len(), 2);
        assert_eq!(f.conditional_helpers[0].name, "save_versioned");
        assert_eq!(f.immutable.len(), 2);
        assert_eq!(f.immutable[0].table.as_ref().unwrap().name, "bots");
        assert!(f.immutable[1].table.is_none());
        let line = FORMAT
            .lines()
            .position(|l| l.starts_with("single-writer"))
            .unwrap() as u32
            + 1;
        assert_eq!(f.single_writer[0].line, line);
    }

    #[test]
    fn a_good_file() {
        let text = "serialized = [\"Worker::handle\"]\n\n[[immutable]]\ntable = \"bots\"\nattributes = [\n  \"owner_id\",\n  \"kind\",\n]\n";
        let f = Facts::parse("svc/racecheck.toml", text).unwrap();
        assert_eq!(f.file, "svc/racecheck.toml");
        assert_eq!(
            f.serialized,
            vec![Named {
                name: "Worker::handle".into(),
                line: 1
            }]
        );
        let attrs = &f.immutable[0].attributes;
        assert_eq!((attrs[0].line, attrs[1].line), (6, 7));
        assert!(f.immutable(Some("bots"), None, "owner_id").is_some());
        assert!(f.immutable(Some("users"), None, "owner_id").is_none());
        assert!(f.immutable(None, Some("BOTS_TABLE"), "kind").is_some());
        assert!(f.immutable(None, Some("self.bots_table"), "kind").is_some());
        assert!(f
            .immutable(None, Some("state.table_name"), "kind")
            .is_none());
        assert!(f.serialized("Worker::handle").is_some());
        assert!(f.serialized("jobs::Worker::handle").is_some());
        assert!(f.serialized("OtherWorker::handle").is_none());
        assert!(Facts::parse("r.toml", "").unwrap().is_empty());
    }

    #[test]
    fn an_unknown_key_names_its_line() {
        let text = "serialized = [\"a\"]\n\n[[immutable]]\ntable = \"t\"\nattribute = [\"x\"]\n";
        let e = Facts::parse("racecheck.toml", text).unwrap_err();
        assert_eq!(e.line, Some(5), "{e}");
        let shown = e.to_string();
        assert!(shown.starts_with("racecheck.toml:5:1: "), "{shown}");
        assert!(shown.contains("`attribute`"), "{shown}");
        let e = Facts::parse("racecheck.toml", "single_writer = [\"t\"]\n").unwrap_err();
        assert_eq!(e.line, Some(1));
        assert!(e.message.contains("`single_writer`"), "{e}");
        assert!(e.message.contains("single-writer"), "{e}");
    }

    #[test]
    fn a_bad_value_names_its_line_and_key() {
        let text = "# facts\nserialized = [\"a\"]\nsingle-writer = \"ledger\"\n";
        let e = Facts::parse("racecheck.toml", text).unwrap_err();
        assert_eq!(e.line, Some(3), "{e}");
        assert!(e.message.contains("`single-writer`"), "{e}");
        let e = Facts::parse("racecheck.toml", "serialized = [1]\n").unwrap_err();
        assert_eq!(e.line, Some(1), "{e}");
        assert!(e.message.contains("`serialized`"), "{e}");
        let e = Facts::parse("racecheck.toml", "serialized = [\"\", \"b\"]\n").unwrap_err();
        assert_eq!((e.line, e.column), (Some(1), Some(15)), "{e}");
        assert!(e.message.contains("empty"), "{e}");
        let e = Facts::parse("racecheck.toml", "\n\nserialized = [\"a b\"]\n").unwrap_err();
        assert_eq!(e.line, Some(3), "{e}");
        assert!(e.message.contains("not a function name"), "{e}");
        let text = "[[immutable]]\ntable = \"t\"\nattributes = []\n";
        let e = Facts::parse("racecheck.toml", text).unwrap_err();
        assert_eq!(e.line, Some(3), "{e}");
        let e = Facts::parse("racecheck.toml", "[[immutable]]\ntable = \"t\"\n").unwrap_err();
        assert!(e.message.contains("attributes"), "{e}");
        let e = Facts::parse("racecheck.toml", "serialized = [\"a\"\n").unwrap_err();
        assert!(e.line.is_some(), "a syntax error has a line: {e}");
    }

    #[test]
    fn the_size_is_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        let mut text = String::from("serialized = [\"a\"]\n");
        while text.len() as u64 <= MAX_BYTES {
            text.push_str("# padding padding padding padding padding padding padding\n");
        }
        std::fs::write(&path, &text).unwrap();
        let e = Facts::load(&path).unwrap_err();
        assert_eq!(e.line, None);
        assert!(e.message.contains("too large"), "{e}");
        assert!(e.to_string().contains(FILE_NAME), "{e}");
        std::fs::write(&path, "serialized = [\"a\"]\n").unwrap();
        assert_eq!(Facts::load(&path).unwrap().serialized.len(), 1);
    }

    #[test]
    fn found_up_to_the_repository_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("svc/src")).unwrap();
        // Outside a repository: the scanned directory only.
        std::fs::write(root.join(FILE_NAME), "").unwrap();
        assert_eq!(find(&root.join("svc/src")), None);
        std::fs::create_dir(root.join(".git")).unwrap();
        let found = find(&root.join("svc/src")).unwrap();
        assert_eq!(
            std::fs::canonicalize(found).unwrap(),
            std::fs::canonicalize(root.join(FILE_NAME)).unwrap()
        );
        std::fs::write(root.join("svc/src/lib.rs"), "").unwrap();
        std::fs::write(root.join("svc").join(FILE_NAME), "").unwrap();
        let found = find(&root.join("svc/src/lib.rs")).unwrap();
        assert!(found.ends_with(format!("svc/{FILE_NAME}")), "{found:?}");
        let here = find(&root.join("svc")).unwrap();
        assert_eq!(here, root.join("svc").join(FILE_NAME));
        assert!(matches!(
            facts_for(&[root.join("svc")], &Source::Ignore),
            Ok(f) if f.is_empty()
        ));
    }
}
