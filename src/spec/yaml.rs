//! YAML to a JSON value with positions, on `yaml-rust2`'s marked events. Scalars follow the
//! YAML core schema; keys are always strings (`200:` is the key `"200"`).

use std::collections::HashMap;

use serde_json::{Map, Number, Value};
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

use super::doc::{escape, pointer};

enum Frame {
    Map(Map<String, Value>, Option<String>),
    Seq(Vec<Value>),
}

/// Nodes that aliases may add in all: an alias copies its anchor's value, and anchors of
/// anchors double at each level (a "billion laughs" document is a few lines).
pub const MAX_ALIAS_NODES: usize = 500_000;
/// Deeper nesting than this is refused (JSON documents stop at 128).
pub const MAX_DEPTH: usize = 256;

struct Builder {
    /// Open containers: the container, its anchor and the node count when it started.
    stack: Vec<(Frame, usize, usize)>,
    path: Vec<String>,
    positions: HashMap<String, (u32, u32)>,
    /// Anchored values with their size in nodes.
    anchors: HashMap<usize, (Value, usize)>,
    root: Option<Value>,
    /// Documents after the first are ignored.
    done: bool,
    nodes: usize,
    alias_nodes: usize,
    duplicates: Vec<Duplicate>,
    /// Why the document is refused, where.
    refused: Option<(String, u32, u32)>,
}

/// A key given twice in one mapping: its pointer, and where each one is.
#[derive(Clone, Debug)]
pub struct Duplicate {
    pub pointer: String,
    pub first: (u32, u32),
    pub second: (u32, u32),
}

fn scalar(s: &str, style: TScalarStyle) -> Value {
    if style != TScalarStyle::Plain {
        return Value::String(s.to_string());
    }
    match s {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        _ => {}
    }
    let digits = s.strip_prefix(['-', '+']).unwrap_or(s);
    if !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit()) {
        if let Ok(i) = s.parse::<i64>() {
            return Value::Number(i.into());
        }
    }
    if let Some(hex) = s.strip_prefix("0x") {
        if let Ok(i) = i64::from_str_radix(hex, 16) {
            return Value::Number(i.into());
        }
    }
    let looks_float = digits
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_digit() || c == '.')
        && digits
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '-' | '+'));
    if looks_float {
        if let Some(n) = s.parse::<f64>().ok().and_then(Number::from_f64) {
            return Value::Number(n);
        }
    }
    Value::String(s.to_string())
}

fn key_string(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "null".into(),
        other => other.to_string(),
    }
}

/// A merge key's value: a mapping, or a sequence of mappings.
fn is_mappings(v: &Value) -> bool {
    match v {
        Value::Object(_) => true,
        Value::Array(items) => !items.is_empty() && items.iter().all(Value::is_object),
        _ => false,
    }
}

impl Builder {
    /// Attach a finished value to the container on top (or make it the root).
    fn push(&mut self, v: Value, mark: Marker, anchor: usize, size: usize) {
        if anchor > 0 {
            self.anchors.insert(anchor, (v.clone(), size));
        }
        match self.stack.last_mut() {
            None => {
                if self.root.is_none() {
                    self.root = Some(v);
                }
            }
            Some((Frame::Seq(items), _, _)) => {
                items.push(v);
            }
            Some((Frame::Map(map, key), _, _)) => match key.take() {
                None if matches!(v, Value::Object(_) | Value::Array(_)) => {
                    // A mapping or sequence as a key (`? [a]`): not OpenAPI, and spelling it
                    // as text doubles its escapes at every level.
                    self.refuse(
                        "uses a mapping or a sequence as a key (`? ...`); OpenAPI keys are text"
                            .into(),
                        mark,
                    );
                }
                None => {
                    // This value is a key.
                    let k = key_string(&v);
                    self.path.push(escape(&k));
                    let p = pointer(&self.path);
                    let here = (mark.line() as u32, mark.col() as u32 + 1);
                    if let Some(first) = self.positions.insert(p.clone(), here) {
                        self.duplicates.push(Duplicate {
                            pointer: p,
                            first,
                            second: here,
                        });
                    }
                    *key = Some(k);
                }
                // A merge key (`<<: *base`, `<<: [*a, *b]`): the keys of the mappings named
                // that this mapping does not give itself; a key given later still wins.
                Some(k) if k == "<<" && is_mappings(&v) => {
                    let sources = match v {
                        Value::Array(items) => items,
                        one => vec![one],
                    };
                    for source in sources {
                        if let Value::Object(entries) = source {
                            for (mk, mv) in entries {
                                if !map.contains_key(&mk) {
                                    map.insert(mk, mv);
                                }
                            }
                        }
                    }
                    self.path.pop();
                }
                Some(k) => {
                    map.insert(k, v);
                    self.path.pop();
                }
            },
        }
    }

    /// Before a value that is an element of a sequence: record its position.
    fn element_start(&mut self, mark: Marker) {
        if let Some((Frame::Seq(items), _, _)) = self.stack.last() {
            self.path.push(items.len().to_string());
            let p = pointer(&self.path);
            self.positions
                .insert(p, (mark.line() as u32, mark.col() as u32 + 1));
            self.path.pop();
        }
    }

    fn in_key_position(&self) -> bool {
        matches!(self.stack.last(), Some((Frame::Map(_, None), _, _)))
    }

    fn refuse(&mut self, message: String, mark: Marker) {
        self.refused = Some((message, mark.line() as u32, mark.col() as u32 + 1));
        self.done = true;
    }

    /// Open a container, unless that nests too deep.
    fn open(&mut self, frame: Frame, anchor: usize, mark: Marker) -> bool {
        if self.stack.len() >= MAX_DEPTH {
            self.refuse(format!("nests more than {MAX_DEPTH} levels deep"), mark);
            return false;
        }
        self.nodes += 1;
        self.stack.push((frame, anchor, self.nodes));
        true
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        if self.done {
            return;
        }
        match ev {
            Event::DocumentEnd if self.root.is_some() => self.done = true,
            Event::Scalar(s, style, anchor, _) => {
                self.element_start(mark);
                let v = scalar(&s, style);
                self.nodes += 1;
                self.push(v, mark, anchor, 1);
            }
            Event::Alias(id) => {
                self.element_start(mark);
                let (v, size) = self.anchors.get(&id).cloned().unwrap_or((Value::Null, 1));
                self.alias_nodes += size;
                if self.alias_nodes > MAX_ALIAS_NODES {
                    let message = format!("expands its aliases (`*name`) to more than {MAX_ALIAS_NODES} nodes; it is refused as an alias bomb");
                    return self.refuse(message, mark);
                }
                self.nodes += size;
                self.push(v, mark, 0, size);
            }
            Event::SequenceStart(anchor, _) => {
                if self.in_key_position() {
                    // A complex key: not valid in OpenAPI; keep the shape simple.
                    self.open(Frame::Seq(vec![]), anchor, mark);
                    return;
                }
                self.element_start(mark);
                if let Some((Frame::Seq(items), _, _)) = self.stack.last() {
                    self.path.push(items.len().to_string());
                }
                self.open(Frame::Seq(vec![]), anchor, mark);
            }
            Event::MappingStart(anchor, _) => {
                self.element_start(mark);
                if let Some((Frame::Seq(items), _, _)) = self.stack.last() {
                    self.path.push(items.len().to_string());
                }
                self.open(Frame::Map(Map::new(), None), anchor, mark);
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let Some((frame, anchor, start)) = self.stack.pop() else {
                    return;
                };
                let v = match frame {
                    Frame::Map(m, _) => Value::Object(m),
                    Frame::Seq(s) => Value::Array(s),
                };
                if let Some((Frame::Seq(_), _, _)) = self.stack.last() {
                    self.path.pop();
                }
                let size = self.nodes + 1 - start;
                self.push(v, mark, anchor, size);
            }
            _ => {}
        }
    }
}

/// Where each member starts: JSON pointer -> (line, column).
pub type Positions = HashMap<String, (u32, u32)>;

/// A parsed document: its value, where each member starts, and the keys given twice.
pub type Parsed = (Value, Positions, Vec<Duplicate>);

/// Why YAML text was not read: a syntax error, or a document refused for its size or depth
/// (`refused`).
#[derive(Debug)]
pub struct YamlError {
    pub message: String,
    pub line: u32,
    pub column: u32,
    pub refused: bool,
}

/// Parse YAML text; errors carry a message, line and column.
pub fn parse(text: &str) -> Result<Parsed, YamlError> {
    let mut b = Builder {
        stack: vec![],
        path: vec![],
        positions: HashMap::new(),
        anchors: HashMap::new(),
        root: None,
        done: false,
        nodes: 0,
        alias_nodes: 0,
        duplicates: vec![],
        refused: None,
    };
    let mut parser = Parser::new_from_str(text);
    parser.load(&mut b, true).map_err(|e| YamlError {
        message: e.info().to_string(),
        line: e.marker().line() as u32,
        column: e.marker().col() as u32 + 1,
        refused: false,
    })?;
    if let Some((message, line, column)) = b.refused {
        return Err(YamlError {
            message,
            line,
            column,
            refused: true,
        });
    }
    Ok((b.root.unwrap_or(Value::Null), b.positions, b.duplicates))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_and_positions() {
        let text = "openapi: 3.0.3\npaths:\n  /items/{id}:\n    put:\n      responses:\n        200:\n          description: ok\nlist:\n  - a\n  - {b: 1}\nflag: true\nnum: 1.5\nempty:\n";
        let (v, pos, _) = parse(text).unwrap();
        assert_eq!(v["openapi"], "3.0.3");
        assert_eq!(
            v["paths"]["/items/{id}"]["put"]["responses"]["200"]["description"],
            "ok"
        );
        assert_eq!(v["list"][1]["b"], 1);
        assert_eq!(v["flag"], true);
        assert_eq!(v["num"], 1.5);
        assert!(v["empty"].is_null());
        assert_eq!(pos["/paths/~1items~1{id}/put"], (4, 5));
        assert_eq!(pos["/paths/~1items~1{id}/put/responses/200"], (6, 9));
        assert_eq!(pos["/list/1"], (10, 5));
        assert_eq!(pos["/flag"], (11, 1));
    }

    #[test]
    fn errors_have_positions() {
        let err = parse("a: [1, 2\nb: c\n").unwrap_err();
        assert!(err.line >= 1 && !err.refused, "{err:?}");
    }
}
