//! Values to send and read: the document's own examples first, else values made from the
//! schema's types. A made-up value depends only on the type (an integer is 1), so a body that
//! opens an account and one that withdraws from it agree (`amount: 1` in both).

use serde_json::{Map, Value};

use super::model::{follow, json_schema_of, Op};
use super::refs::{DocId, Docs};

const MAX_DEPTH: usize = 6;

/// A body for a `content` map: its JSON media type's example, else one made from its schema.
pub fn of_content(docs: &Docs, doc: DocId, content: &Value) -> Option<Value> {
    let map = content.as_object()?;
    let (_, media) = map
        .iter()
        .find(|(k, _)| k.contains("json"))
        .or_else(|| map.iter().next())?;
    if let Some(e) = media.get("example") {
        return Some(e.clone());
    }
    let first = media
        .get("examples")
        .and_then(Value::as_object)
        .and_then(|o| o.values().next());
    if let Some(e) = first {
        let (_, e) = follow(docs, doc, e);
        if let Some(v) = e.get("value") {
            return Some(v.clone());
        }
    }
    Some(of_schema(docs, doc, media.get("schema")?, 0))
}

/// An example of a schema.
pub fn of_schema(docs: &Docs, doc: DocId, schema: &Value, depth: usize) -> Value {
    if depth > MAX_DEPTH {
        return Value::Null;
    }
    let (doc, s) = follow(docs, doc, schema);
    for key in ["example", "default", "const"] {
        if let Some(v) = s.get(key) {
            return v.clone();
        }
    }
    for key in ["examples", "enum"] {
        if let Some(v) = s.get(key).and_then(Value::as_array).and_then(|a| a.first()) {
            return v.clone();
        }
    }
    if let Some(parts) = s.get("allOf").and_then(Value::as_array) {
        let mut out = Map::new();
        for p in parts {
            if let Value::Object(m) = of_schema(docs, doc, p, depth + 1) {
                out.extend(m);
            }
        }
        return Value::Object(out);
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(first) = s.get(key).and_then(Value::as_array).and_then(|a| a.first()) {
            return of_schema(docs, doc, first, depth + 1);
        }
    }
    let ty = match s.get("type") {
        Some(Value::String(t)) => t.as_str(),
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null")
            .unwrap_or("null"),
        _ if s.get("properties").is_some() => "object",
        _ => "",
    };
    match ty {
        "object" => {
            let mut out = Map::new();
            if let Some(props) = s.get("properties").and_then(Value::as_object) {
                for (k, v) in props {
                    out.insert(k.clone(), of_schema(docs, doc, v, depth + 1));
                }
            }
            Value::Object(out)
        }
        "array" => match s.get("items") {
            Some(items) => Value::Array(vec![of_schema(docs, doc, items, depth + 1)]),
            None => Value::Array(vec![]),
        },
        "integer" | "number" => {
            let min = s.get("minimum").and_then(Value::as_f64).unwrap_or(1.0);
            Value::from(min.max(1.0) as i64)
        }
        "boolean" => Value::Bool(true),
        "string" => Value::String(text(s.get("format").and_then(Value::as_str)).to_string()),
        _ => Value::Null,
    }
}

/// A string a request sends for a JSON Schema `format` (`uuid`, `date-time`, `date`, `email`).
pub fn text(format: Option<&str>) -> &'static str {
    match format {
        Some("uuid") => "00000000-0000-4000-8000-000000000001",
        Some("date-time") => "2026-01-01T00:00:00Z",
        Some("date") => "2026-01-01",
        Some("email") => "racecheck@example.com",
        _ => "racecheck",
    }
}

/// Top-level property names of a schema, as written (for JSON pointers into a response).
pub fn props(docs: &Docs, doc: DocId, schema: &Value, depth: usize) -> Vec<String> {
    if depth > MAX_DEPTH {
        return vec![];
    }
    let (doc, s) = follow(docs, doc, schema);
    let mut out: Vec<String> = s
        .get("properties")
        .and_then(Value::as_object)
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    for key in ["allOf", "oneOf", "anyOf"] {
        if let Some(parts) = s.get(key).and_then(Value::as_array) {
            for p in parts {
                out.extend(props(docs, doc, p, depth + 1));
            }
        }
    }
    out
}

/// The operation object and its path item.
fn op_and_item<'d>(docs: &'d Docs, op: &Op) -> Option<(&'d Value, Option<&'d Value>)> {
    let value = docs.get(op.doc, &op.pointer)?;
    let item = op
        .pointer
        .rsplit_once('/')
        .and_then(|(parent, _)| docs.get(op.doc, parent));
    Some((value, item))
}

/// A body for the operation's request, if it takes one.
pub fn body_of(docs: &Docs, op: &Op) -> Option<Value> {
    let (value, _) = op_and_item(docs, op)?;
    let (doc, rb) = follow(docs, op.doc, value.get("requestBody")?);
    of_content(docs, doc, rb.get("content")?)
}

/// Top-level property names of the first 2xx JSON response.
pub fn response_props(docs: &Docs, op: &Op) -> Vec<String> {
    let Some((value, _)) = op_and_item(docs, op) else {
        return vec![];
    };
    let Some(responses) = value.get("responses").and_then(Value::as_object) else {
        return vec![];
    };
    for (code, r) in responses {
        if !code.starts_with('2') {
            continue;
        }
        let (doc, r) = follow(docs, op.doc, r);
        if let Some(s) = json_schema_of(r.get("content")) {
            return props(docs, doc, s, 0);
        }
    }
    vec![]
}

/// Path parameters with a documented example (on the operation or its path item).
pub fn param_examples(docs: &Docs, op: &Op) -> std::collections::BTreeMap<String, String> {
    let mut out = std::collections::BTreeMap::new();
    let Some((value, item)) = op_and_item(docs, op) else {
        return out;
    };
    let lists = [
        item.and_then(|i| i.get("parameters")),
        value.get("parameters"),
    ];
    for p in lists
        .into_iter()
        .flatten()
        .filter_map(Value::as_array)
        .flatten()
    {
        let (doc, p) = follow(docs, op.doc, p);
        if p.get("in").and_then(Value::as_str) != Some("path") {
            continue;
        }
        let Some(name) = p.get("name").and_then(Value::as_str) else {
            continue;
        };
        let example = p.get("example").cloned().or_else(|| {
            let s = p.get("schema")?;
            let (_, s) = follow(docs, doc, s);
            s.get("example").or_else(|| s.get("default")).cloned()
        });
        match example {
            Some(Value::String(v)) => {
                out.insert(name.to_string(), v);
            }
            Some(v @ Value::Number(_)) => {
                out.insert(name.to_string(), v.to_string());
            }
            _ => {}
        }
    }
    out
}
