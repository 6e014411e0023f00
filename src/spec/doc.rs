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
    /// Keys given twice in one object (the parsers keep the second silently).
    pub duplicates: Vec<super::yaml::Duplicate>,
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
    /// A file that is not YAML or JSON (`description: {$ref: ./intro.md}`): its text is the
    /// value, as Redocly and Spectral read it.
    pub fn text(path: Arc<str>, text: &str, format: Format) -> Doc {
        Doc {
            path,
            format,
            value: Value::String(text.strip_prefix('\u{feff}').unwrap_or(text).to_string()),
            positions: HashMap::from([(String::new(), (1, 1))]),
            duplicates: vec![],
        }
    }

    pub fn parse(path: Arc<str>, text: &str) -> Result<Doc, LoadError> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
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
            let (positions, duplicates) = json_positions(text);
            Ok(Doc {
                path,
                format: Format::Json,
                value,
                positions,
                duplicates,
            })
        } else {
            let (value, positions, duplicates) = super::yaml::parse(text).map_err(|e| {
                let (line, col) = (e.line, e.column);
                let message = if e.refused {
                    format!(
                        "`{path}` was not read: it {} (line {line}, column {col})",
                        e.message
                    )
                } else {
                    format!(
                        "`{path}` is not valid YAML: {} (line {line}, column {col})",
                        e.message
                    )
                };
                LoadError {
                    message,
                    line: Some(line),
                    column: Some(col),
                }
            })?;
            Ok(Doc {
                path,
                format: Format::Yaml,
                value,
                positions,
                duplicates,
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

/// Record where each object member and array element starts in JSON text, and the keys given
/// twice. The text is already known to be valid JSON (so at most 128 levels deep).
fn json_positions(text: &str) -> (HashMap<String, (u32, u32)>, Vec<super::yaml::Duplicate>) {
    let bytes = text.as_bytes();
    let mut line_starts = vec![0usize];
    line_starts.extend(memchr_lines(bytes));
    // Offsets come in increasing order: count columns from the last one, not from the start
    // of the line (a minified document is one line of megabytes).
    let last = std::cell::Cell::new((0usize, 0usize, 1usize));
    let pos = |offset: usize| -> (u32, u32) {
        let line = line_starts.partition_point(|s| *s <= offset);
        let start = line_starts[line - 1];
        let (l, from, col) = last.get();
        let col = if l == line && from <= offset {
            col + text.get(from..offset).map_or(0, |t| t.chars().count())
        } else {
            text.get(start..offset).map_or(0, |t| t.chars().count()) + 1
        };
        last.set((line, offset, col));
        (line as u32, col as u32)
    };
    let mut out = Positions {
        at: HashMap::new(),
        duplicates: vec![],
    };
    let mut i = 0;
    let mut path: Vec<String> = vec![];
    value(bytes, &mut i, &mut path, &mut out, &pos);
    (out.at, out.duplicates)
}

struct Positions {
    at: HashMap<String, (u32, u32)>,
    duplicates: Vec<super::yaml::Duplicate>,
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
    out: &mut Positions,
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
                let (p, here) = (pointer(path), pos(at));
                if let Some(first) = out.at.insert(p.clone(), here) {
                    out.duplicates.push(super::yaml::Duplicate {
                        pointer: p,
                        first,
                        second: here,
                    });
                }
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
                out.at.insert(pointer(path), pos(*i));
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
