//! Finding and reading the Rust files to analyse. Every file that cannot be read or parsed
//! becomes an `AnalysisError`: a scan that skipped something never looks clean.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use proc_macro2::{Delimiter, TokenStream, TokenTree};

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

/// Linked folders followed inside one walk, at most: a project of links to links ends here.
const MAX_LINKED_DIRS: usize = 256;

/// Expand inputs into the list of files to read, in a stable order. A file reached twice (named
/// twice, or through a link) is read once, under the first name it was reached by.
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
    let mut seen = std::collections::HashSet::new();
    out.retain(|i| match i {
        Input::Inline { .. } => true,
        Input::Path(p) => seen.insert(std::fs::canonicalize(p).unwrap_or_else(|_| p.clone())),
    });
    out
}

fn walk(root: &Path, out: &mut Vec<Input>, errors: &mut Vec<AnalysisError>) {
    let inside = crate::project_of(root);
    let mut found = vec![];
    // Folders to walk: the one given, then the linked folders met inside the project.
    let mut queue = vec![root.to_path_buf()];
    let mut walked = std::collections::HashSet::new();
    while let Some(dir) = queue.pop() {
        let real = std::fs::canonicalize(&dir).unwrap_or_else(|_| dir.clone());
        if !walked.insert(real) {
            continue;
        }
        if walked.len() > MAX_LINKED_DIRS {
            let shown = dir.display().to_string();
            errors.push(error(
                ErrorKind::TooLarge,
                &shown,
                format!("`{shown}` was not analysed: more than {MAX_LINKED_DIRS} linked folders under `{}`", root.display()),
            ));
            break;
        }
        walk_one(&dir, &inside, &mut found, &mut queue, errors);
    }
    // A file both in the folder and behind a link to it keeps its own name: the folder's
    // files were found first.
    let mut seen = std::collections::HashSet::new();
    found.retain(|p| seen.insert(std::fs::canonicalize(p).unwrap_or_else(|_| p.clone())));
    found.sort();
    out.extend(found.into_iter().map(Input::Path));
}

/// Walk one folder without following links: `.rs` files are found; a link to a file or a
/// folder inside the project is followed (the folder queued), anything else it points at is
/// reported, never passed over in silence.
fn walk_one(
    root: &Path,
    inside: &Path,
    found: &mut Vec<PathBuf>,
    queue: &mut Vec<PathBuf>,
    errors: &mut Vec<AnalysisError>,
) {
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
    for entry in walker {
        let e = match entry {
            Ok(e) => e,
            Err(e) => {
                errors.push(error(
                    ErrorKind::Io,
                    &root.display().to_string(),
                    e.to_string(),
                ));
                continue;
            }
        };
        let Some(kind) = e.file_type() else { continue };
        let is_rs = e.path().extension().is_some_and(|x| x == "rs");
        if !kind.is_file() && !kind.is_symlink() {
            continue;
        }
        if (is_rs || kind.is_symlink()) && e.path().to_str().is_none() {
            let shown = e.path().display().to_string();
            errors.push(error(
                ErrorKind::Io,
                &shown,
                format!("a file under `{}` whose name is not UTF-8 (shown here as `{shown}`) was not analysed; rename it to scan it", root.display()),
            ));
            continue;
        }
        if kind.is_file() {
            if is_rs {
                found.push(e.into_path());
            }
            continue;
        }
        let target = std::fs::canonicalize(e.path());
        let shown = e.path().display().to_string();
        let refuse = |what: &str| {
            error(
                ErrorKind::Io,
                &shown,
                format!("`{shown}` is a symbolic link to {what}; it was not analysed (only links to files and folders inside `{}`, the project: the nearest folder with `.git`, else the folder scanned, are followed)", inside.display()),
            )
        };
        match target {
            Ok(t) if t.starts_with(inside) && t.is_dir() => queue.push(e.into_path()),
            Ok(t) if t.starts_with(inside) && t.is_file() => {
                if is_rs {
                    found.push(e.into_path());
                }
            }
            // Links to other files (a README, a licence) are not Rust and not worth a word.
            Ok(t) if t.is_file() && !is_rs => {}
            Ok(t) if t.is_dir() || t.is_file() => {
                errors.push(refuse(&format!("`{}`, outside the project", t.display())))
            }
            Ok(_) => errors.push(refuse("something that is not a file or a folder")),
            Err(_) if !is_rs => {}
            Err(why) => errors.push(refuse(&format!("nothing that can be read ({why})"))),
        }
    }
}

/// Read one file, check it is UTF-8 and not too large.
pub fn read(input: &Input) -> Result<(Arc<str>, String), AnalysisError> {
    match input {
        Input::Inline { name, code } if code.len() as u64 > MAX_FILE_BYTES => Err(error(
            ErrorKind::TooLarge,
            name,
            format!(
                "`{name}` was not analysed: {} bytes, over the {MAX_FILE_BYTES} byte limit for one file",
                code.len()
            ),
        )),
        Input::Inline { name, code } => Ok((Arc::from(name.as_str()), code.clone())),
        Input::Path(p) => {
            let shown = p.display().to_string();
            let bytes = crate::read_limited(p, MAX_FILE_BYTES).map_err(|e| {
                let message = format!("`{shown}` was not analysed: {e}");
                error(ErrorKind::of_io(&e), &shown, message)
            })?;
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
/// Most syntax one chain of recursion may hold (see [`depth_bound`]); each unit is at most one
/// level of the parser's and the walkers' recursion.
pub const MAX_WEIGHT: usize = 8_000;
/// What one `<` weighs: a level of generic arguments is several levels of the type parser.
const GENERIC_WEIGHT: usize = 4;

/// Keywords that can open a nested type or closure whose parts a `,` does not end
/// (`A<B, A<B, ..>>`, `|a, b| |a, b| ..`).
fn sticky(t: &TokenTree) -> bool {
    match t {
        TokenTree::Punct(p) => matches!(p.as_char(), '<' | '|'),
        TokenTree::Ident(i) => i == "fn" || i == "impl" || i == "dyn" || i == "move",
        _ => false,
    }
}

/// An upper bound on how deep the parser (and the walkers after it) can recurse on `tokens`,
/// with the line where it is reached, and the deepest bracket nesting with its line.
///
/// Every level of recursion consumes at least one token, and the parser returns to a loop (not
/// a deeper frame) at a `;`, at a `,` outside generics and closure heads, and where a new item
/// or statement starts after a `}`. So the bound is the number of tokens since those points,
/// summed over the open brackets. Comments, strings, raw strings and char literals are tokens
/// of their own and cannot fool it; it walks with its own stack, so it cannot overflow either.
fn depth_bound(tokens: TokenStream) -> ((usize, usize), (usize, usize)) {
    struct Frame {
        rest: std::vec::IntoIter<TokenTree>,
        brace: bool,
        run: usize,
        sticky: usize,
    }
    impl Frame {
        fn new(tokens: TokenStream, brace: bool) -> Self {
            let rest = tokens.into_iter().collect::<Vec<_>>().into_iter();
            Frame {
                rest,
                brace,
                run: 0,
                sticky: 0,
            }
        }
        /// Back to a loop of the parser: only what a `,` does not end stays. Returns how much
        /// was dropped.
        fn reset(&mut self, keep_sticky: bool) -> usize {
            let keep = if keep_sticky {
                self.sticky.min(self.run)
            } else {
                0
            };
            let dropped = self.run - keep;
            self.run = keep;
            if !keep_sticky {
                self.sticky = 0;
            }
            dropped
        }
    }
    let mut frames = vec![Frame::new(tokens, true)];
    let (mut total, mut weight, mut nest) = (0usize, (0usize, 1usize), (0usize, 1usize));
    let (mut after_block, mut attribute) = (false, 0u8);
    while let Some(top) = frames.last_mut() {
        let Some(t) = top.rest.next() else {
            total -= top.run;
            after_block = top.brace;
            frames.pop();
            continue;
        };
        // After a `{..}` only `else`, `as`, punctuation or brackets continue an expression;
        // a name or an attribute starts the next statement or item.
        let starts_next = after_block
            && match &t {
                TokenTree::Ident(i) => i != "else" && i != "as",
                TokenTree::Punct(p) => p.as_char() == '#',
                _ => false,
            };
        after_block = false;
        // `#[..]` and `#![..]` (doc comments too) are read in a loop: they add no depth.
        attribute = match (&t, attribute) {
            (TokenTree::Punct(p), _) if p.as_char() == '#' => 1,
            (TokenTree::Punct(p), 1) if p.as_char() == '!' => 2,
            (TokenTree::Group(g), 1 | 2) if g.delimiter() == Delimiter::Bracket => 3,
            _ => 0,
        };
        if starts_next {
            total -= top.reset(false);
        }
        match &t {
            TokenTree::Punct(p) if p.as_char() == ';' => {
                total -= top.reset(false);
                continue;
            }
            TokenTree::Punct(p) if p.as_char() == ',' => {
                total -= top.reset(true);
                continue;
            }
            TokenTree::Punct(p) if p.as_char() == '>' => {
                top.sticky = top.sticky.saturating_sub(GENERIC_WEIGHT)
            }
            _ => {}
        }
        // A type's generic arguments cost the parser several frames per level.
        let unit = match &t {
            _ if attribute != 0 => 0,
            TokenTree::Punct(p) if p.as_char() == '<' => GENERIC_WEIGHT,
            _ => 1,
        };
        if sticky(&t) {
            top.sticky += unit;
        }
        top.run += unit;
        total += unit;
        let depth = frames.len();
        if total + depth > weight.0 {
            weight = (total + depth, t.span().start().line);
        }
        if let TokenTree::Group(g) = t {
            if depth > nest.0 {
                nest = (depth, g.span().start().line);
            }
            let brace = g.delimiter() == Delimiter::Brace;
            frames.push(Frame::new(g.stream(), brace));
        }
    }
    (nest, weight)
}

/// The text `syn::parse_file` parses: without a byte-order mark or a `#!` interpreter line.
fn strip_preamble(text: &str) -> &str {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    match text.strip_prefix("#!") {
        Some(rest) if !rest.trim_start().starts_with('[') => {
            text.find('\n').map_or("", |i| &text[i..])
        }
        _ => text,
    }
}

/// Parse a file's text; syntax errors carry their line and column. Text that would nest the
/// parser deeper than the worker's stack allows is refused first, with the line it reaches
/// that depth.
pub fn parse(path: Arc<str>, text: String) -> Result<SourceFile, AnalysisError> {
    let too_deep = |line: usize, what: String| {
        let mut err = error(
            ErrorKind::TooLarge,
            &path,
            format!("`{path}` {what} are not analysed"),
        );
        err.line = Some(line as u32);
        err
    };
    let body = strip_preamble(&text);
    // Lexing cannot overflow (it keeps its own stack); the tokens are checked, then parsed.
    let parsed = match body.parse::<TokenStream>() {
        Ok(tokens) => {
            let ((depth, line), (weight, at)) = depth_bound(tokens.clone());
            if depth > MAX_NESTING {
                return Err(too_deep(line, format!("nests brackets {depth} deep (line {line}); files nested deeper than {MAX_NESTING} levels")));
            }
            if weight > MAX_WEIGHT {
                return Err(too_deep(at, format!("has an expression or type nested about {weight} levels deep (line {at}); files nested deeper than {MAX_WEIGHT} levels")));
            }
            syn::parse2::<syn::File>(tokens)
        }
        // `syn` words the lexing error, with its position.
        Err(_) => syn::parse_file(&text),
    };
    match parsed {
        Ok(mut ast) => {
            super::macros::expand(&mut ast, |t| {
                let ((depth, _), (weight, _)) = depth_bound(t.clone());
                depth > MAX_NESTING || weight > MAX_WEIGHT
            });
            Ok(SourceFile::new(path, text, ast))
        }
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
