//! Finding and reading the Rust files to analyse. Every file that cannot be read or parsed
//! becomes an `AnalysisError`: a scan that skipped something never looks clean.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::index::SourceFile;
use crate::model::{AnalysisError, ErrorKind};

/// Files larger than this are reported, not parsed (generated code, vendored blobs).
pub const MAX_FILE_BYTES: u64 = 8 * 1024 * 1024;

/// What to analyse.
#[derive(Clone, Debug)]
pub enum Input {
    /// A `.rs` file or a directory (walked with `.gitignore` respected, `target/` skipped).
    Path(PathBuf),
    /// Code given inline (the MCP tool's `code`), shown under `name`.
    Inline { name: String, code: String },
}

fn error(kind: ErrorKind, path: &str, message: impl Into<String>) -> AnalysisError {
    AnalysisError::new(kind, path, message)
}

/// Expand inputs into the list of files to read, in a stable order.
pub fn discover(inputs: &[Input], errors: &mut Vec<AnalysisError>) -> Vec<Input> {
    let mut out = vec![];
    for input in inputs {
        match input {
            Input::Inline { .. } => out.push(input.clone()),
            Input::Path(p) => {
                let shown = p.display().to_string();
                match std::fs::metadata(p) {
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => errors.push(error(
                        ErrorKind::NotFound,
                        &shown,
                        format!("`{shown}` does not exist; pass a Rust file or a crate directory"),
                    )),
                    Err(e) => errors.push(error(
                        ErrorKind::Io,
                        &shown,
                        format!("cannot read `{shown}`: {e}"),
                    )),
                    Ok(m) if m.is_file() => out.push(input.clone()),
                    Ok(_) => {
                        let before = out.len();
                        walk(p, &mut out, errors);
                        if out.len() == before {
                            errors.push(error(
                                ErrorKind::NotFound,
                                &shown,
                                format!("no Rust files under `{shown}` (`.gitignore`d files and `target/` are skipped)"),
                            ));
                        }
                    }
                }
            }
        }
    }
    out
}

fn walk(root: &Path, out: &mut Vec<Input>, errors: &mut Vec<AnalysisError>) {
    let walker = ignore::WalkBuilder::new(root)
        .standard_filters(true)
        .require_git(false)
        .filter_entry(|e| {
            let name = e.file_name();
            // A crate's integration tests and benches (`tests/` beside `Cargo.toml`) exercise
            // the service; they do not serve requests. Name them to scan them.
            let harness = e.depth() > 0
                && (name == "tests" || name == "benches")
                && e.path()
                    .parent()
                    .is_some_and(|p| p.join("Cargo.toml").is_file());
            name != "target" && name != "node_modules" && !harness
        })
        .build();
    let mut found = vec![];
    for entry in walker {
        match entry {
            Ok(e) => {
                let is_rs = e.path().extension().is_some_and(|x| x == "rs");
                if is_rs && e.file_type().is_some_and(|t| t.is_file()) {
                    found.push(e.into_path());
                }
            }
            Err(e) => errors.push(error(
                ErrorKind::Io,
                &root.display().to_string(),
                e.to_string(),
            )),
        }
    }
    found.sort();
    out.extend(found.into_iter().map(Input::Path));
}

/// Read one file, check it is UTF-8 and not too large.
pub fn read(input: &Input) -> Result<(Arc<str>, String), AnalysisError> {
    match input {
        Input::Inline { name, code } => Ok((Arc::from(name.as_str()), code.clone())),
        Input::Path(p) => {
            let shown = p.display().to_string();
            let bytes = std::fs::read(p)
                .map_err(|e| error(ErrorKind::Io, &shown, format!("cannot read `{shown}`: {e}")))?;
            if bytes.len() as u64 > MAX_FILE_BYTES {
                return Err(error(
                    ErrorKind::TooLarge,
                    &shown,
                    format!(
                        "`{shown}` is {} bytes, over the {} byte limit for one file; it was not analysed",
                        bytes.len(),
                        MAX_FILE_BYTES
                    ),
                ));
            }
            match String::from_utf8(bytes) {
                Ok(text) => Ok((Arc::from(shown.as_str()), text)),
                Err(e) => {
                    let at = e.utf8_error().valid_up_to();
                    let valid = &e.as_bytes()[..at];
                    let line = valid.iter().filter(|b| **b == b'\n').count() as u32 + 1;
                    let mut err = error(
                        ErrorKind::NotUtf8,
                        &shown,
                        format!("`{shown}` is not valid UTF-8 (byte {at}, line {line}); Rust sources must be UTF-8"),
                    );
                    err.line = Some(line);
                    Err(err)
                }
            }
        }
    }
}

/// Deeper bracket nesting than this is refused before parsing: the parser recurses once per
/// level, and generated code this deep would exhaust the stack.
pub const MAX_NESTING: usize = 256;
/// Likewise for one statement's chain of method calls and operators (`a.b().c()...`,
/// `1 + 1 + ...`): each link is one more level of the syntax tree.
pub const MAX_CHAIN: usize = 4096;

/// How deep a file goes: the deepest `(`/`[`/`{` nesting and the longest run of `.` and
/// operators within one statement, outside strings and comments, with the lines they are on.
fn nesting(text: &str) -> ((usize, usize), (usize, usize)) {
    let b = text.as_bytes();
    let (mut depth, mut max, mut line, mut at) = (0usize, 0usize, 1usize, 1usize);
    let (mut run, mut max_run, mut run_at) = (0usize, 0usize, 1usize);
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\n' => line += 1,
            b'"' => {
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    if b[i] == b'\\' {
                        i += 1;
                    } else if b[i] == b'\n' {
                        line += 1;
                    }
                    i += 1;
                }
            }
            b'\'' if i + 2 < b.len() && b[i + 2] == b'\'' => i += 2,
            b'/' if b.get(i + 1) == Some(&b'/') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'(' | b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    max = depth;
                    at = line;
                }
            }
            b')' | b']' | b'}' => depth = depth.saturating_sub(1),
            b';' => run = 0,
            b'.' | b'+' | b'-' | b'*' | b'/' | b'%' | b'|' | b'&' | b'^' | b'<' | b'>' => {
                run += 1;
                if run > max_run {
                    max_run = run;
                    run_at = line;
                }
            }
            _ => {}
        }
        if i < b.len() && matches!(b[i], b'{' | b'}') {
            run = 0;
        }
        i += 1;
    }
    ((max, at), (max_run, run_at))
}

/// Parse a file's text; syntax errors carry their line and column.
pub fn parse(path: Arc<str>, text: String) -> Result<SourceFile, AnalysisError> {
    let ((depth, line), (chain, chain_line)) = nesting(&text);
    let too_deep = if depth > MAX_NESTING {
        Some((line, format!("nests brackets {depth} deep (line {line}); files nested deeper than {MAX_NESTING} levels")))
    } else if chain > MAX_CHAIN {
        Some((chain_line, format!("has a statement of {chain} chained calls and operators (line {chain_line}); statements longer than {MAX_CHAIN} links")))
    } else {
        None
    };
    if let Some((line, what)) = too_deep {
        let mut err = error(
            ErrorKind::TooLarge,
            &path,
            format!("`{path}` {what} are not analysed"),
        );
        err.line = Some(line as u32);
        return Err(err);
    }
    match syn::parse_file(&text) {
        Ok(ast) => Ok(SourceFile::new(path, text, ast)),
        Err(e) => {
            let start = e.span().start();
            let mut err = error(
                ErrorKind::Parse,
                &path,
                format!(
                    "`{path}` does not parse as Rust at line {}, column {}: {e}",
                    start.line,
                    start.column + 1
                ),
            );
            err.line = Some(start.line as u32);
            err.column = Some(start.column as u32 + 1);
            Err(err)
        }
    }
}
