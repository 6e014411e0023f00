//! One OpenAPI file as a JSON value, with the line and column where every member starts, so
//! findings can point into the file that defines them.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;

/// The format a document is written in; fixes are given in the same format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Json,
    Yaml,
}

/// A loaded file.
pub struct Doc {
    /// The path as shown to the user.
    pub path: Arc<str>,
    pub format: Format,
    pub value: Value,
    /// JSON pointer (`/paths/~1items/get`) -> 1-based (line, column) where the member starts.
    pub positions: HashMap<String, (u32, u32)>,
}

/// Why a file could not be read as a document.
#[derive(Debug)]
pub struct LoadError {
    pub message: String,
    pub line: Option<u32>,
    pub column: Option<u32>,
}

impl Doc {
    /// Parse JSON or YAML text (JSON when it starts with `{` or `[`, or the name says so).
    pub fn parse(path: Arc<str>, text: &str) -> Result<Doc, LoadError> {
        if text.trim().is_empty() {
            return Err(LoadError {
                message: format!(
                    "`{path}` is empty; an OpenAPI document starts with `openapi: 3.x`"
                ),
                line: None,
                column: None,
            });
        }
        let json = path.ends_with(".json") || text.trim_start().starts_with('{');
        if json {
            let value: Value = serde_json::from_str(text).map_err(|e| LoadError {
                message: format!("`{path}` is not valid JSON: {e}"),
                line: Some(e.line() as u32),
                column: Some(e.column() as u32),
            })?;
            let positions = json_positions(text);
            Ok(Doc {
                path,
                format: Format::Json,
                value,
                positions,
            })
        } else {
            let (value, positions) =
                super::yaml::parse(text).map_err(|(msg, line, col)| LoadError {
                    message: format!(
                        "`{path}` is not valid YAML: {msg} (line {line}, column {col})"
                    ),
                    line: Some(line),
                    column: Some(col),
                })?;
            Ok(Doc {
                path,
                format: Format::Yaml,
                value,
                positions,
            })
        }
    }

    /// Where a member starts; falls back to its nearest ancestor, then to the top of the file.
    pub fn position(&self, pointer: &str) -> (u32, u32) {
        let mut p = pointer;
        loop {
            if let Some(pos) = self.positions.get(p) {
                return *pos;
            }
            match p.rfind('/') {
                Some(i) => p = &p[..i],
                None => return (1, 1),
            }
        }
    }
}

impl Doc {
    /// A finding's location: the member's position, with its pointer.
    pub fn location(&self, pointer: &str) -> crate::model::Location {
        let (line, column) = self.position(pointer);
        crate::model::Location {
            file: self.path.to_string(),
            line,
            column,
            end_line: line,
            end_column: column,
            pointer: Some(format!("#{pointer}")),
        }
    }
}

/// Escape one pointer segment (`/` -> `~1`, `~` -> `~0`).
pub fn escape(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

/// Record where each object member and array element starts in JSON text. The text is
/// already known to be valid JSON.
fn json_positions(text: &str) -> HashMap<String, (u32, u32)> {
    let bytes = text.as_bytes();
    let mut line_starts = vec![0usize];
    line_starts.extend(memchr_lines(bytes));
    let pos = |offset: usize| -> (u32, u32) {
        let line = line_starts.partition_point(|s| *s <= offset);
        let start = line_starts[line - 1];
        let col = text[start..offset].chars().count() + 1;
        (line as u32, col as u32)
    };
    let mut out = HashMap::new();
    let mut i = 0;
    let mut path: Vec<String> = vec![];
    value(bytes, &mut i, &mut path, &mut out, &pos);
    out
}

fn memchr_lines(bytes: &[u8]) -> impl Iterator<Item = usize> + '_ {
    bytes
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == b'\n')
        .map(|(i, _)| i + 1)
}

fn ws(b: &[u8], i: &mut usize) {
    while *i < b.len() && b[*i].is_ascii_whitespace() {
        *i += 1;
    }
}

/// Skip a string starting at `b[*i] == '"'`; returns its raw contents.
fn string<'a>(b: &'a [u8], i: &mut usize) -> &'a [u8] {
    let start = *i + 1;
    *i += 1;
    while *i < b.len() {
        match b[*i] {
            b'\\' => *i += 2,
            b'"' => break,
            _ => *i += 1,
        }
    }
    let end = (*i).min(b.len());
    *i += 1;
    &b[start..end]
}

fn value(
    b: &[u8],
    i: &mut usize,
    path: &mut Vec<String>,
    out: &mut HashMap<String, (u32, u32)>,
    pos: &dyn Fn(usize) -> (u32, u32),
) {
    ws(b, i);
    if *i >= b.len() {
        return;
    }
    match b[*i] {
        b'{' => {
            *i += 1;
            loop {
                ws(b, i);
                if *i >= b.len() || b[*i] == b'}' {
                    *i += 1;
                    return;
                }
                if b[*i] == b',' {
                    *i += 1;
                    continue;
                }
                let at = *i;
                let raw = string(b, i);
                let key = if raw.contains(&b'\\') {
                    let quoted = format!("\"{}\"", String::from_utf8_lossy(raw));
                    serde_json::from_str::<String>(&quoted).unwrap_or_default()
                } else {
                    String::from_utf8_lossy(raw).into_owned()
                };
                path.push(escape(&key));
                out.insert(pointer(path), pos(at));
                ws(b, i);
                if *i < b.len() && b[*i] == b':' {
                    *i += 1;
                }
                value(b, i, path, out, pos);
                path.pop();
            }
        }
        b'[' => {
            *i += 1;
            let mut n = 0;
            loop {
                ws(b, i);
                if *i >= b.len() || b[*i] == b']' {
                    *i += 1;
                    return;
                }
                if b[*i] == b',' {
                    *i += 1;
                    continue;
                }
                path.push(n.to_string());
                out.insert(pointer(path), pos(*i));
                value(b, i, path, out, pos);
                path.pop();
                n += 1;
            }
        }
        b'"' => {
            string(b, i);
        }
        _ => {
            while *i < b.len()
                && !matches!(b[*i], b',' | b'}' | b']')
                && !b[*i].is_ascii_whitespace()
            {
                *i += 1;
            }
        }
    }
}

pub fn pointer(path: &[String]) -> String {
    let mut s = String::new();
    for p in path {
        s.push('/');
        s.push_str(p);
    }
    s
}
