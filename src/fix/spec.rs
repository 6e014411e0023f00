//! Fix snippets for OpenAPI findings: the YAML or JSON to add, in the document's own format.

use std::fmt::Write as _;

use serde_json::Value;

use crate::spec::doc::Format;

/// Render a fragment as YAML (block style) or pretty JSON.
pub fn render(v: &Value, format: Format) -> String {
    match format {
        Format::Json => serde_json::to_string_pretty(v).unwrap_or_default(),
        Format::Yaml => {
            let mut s = String::new();
            yaml(v, 0, &mut s);
            s
        }
    }
}

fn needs_quotes(s: &str) -> bool {
    s.is_empty()
        || s.parse::<f64>().is_ok()
        || matches!(
            s.to_ascii_lowercase().as_str(),
            "true" | "false" | "null" | "yes" | "no" | "on" | "off" | "~"
        )
        || s.starts_with(|c: char| "!&*-?{}[]|>'\"%@`#,:".contains(c) || c.is_whitespace())
        || s.contains(": ")
        || s.contains(" #")
        || s.ends_with(':')
        || s.ends_with(' ')
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) if needs_quotes(s) => format!("'{}'", s.replace('\'', "''")),
        Value::String(s) => s.clone(),
        Value::Null => "null".into(),
        other => other.to_string(),
    }
}

fn is_scalar(v: &Value) -> bool {
    !matches!(v, Value::Object(m) if !m.is_empty())
        && !matches!(v, Value::Array(a) if !a.is_empty())
}

fn inline_empty(v: &Value) -> Option<&'static str> {
    match v {
        Value::Object(m) if m.is_empty() => Some("{}"),
        Value::Array(a) if a.is_empty() => Some("[]"),
        _ => None,
    }
}

fn yaml(v: &Value, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                let key = scalar(&Value::String(k.clone()));
                if let Some(e) = inline_empty(x) {
                    let _ = writeln!(out, "{pad}{key}: {e}");
                } else if is_scalar(x) {
                    let _ = writeln!(out, "{pad}{key}: {}", scalar(x));
                } else {
                    let _ = writeln!(out, "{pad}{key}:");
                    yaml(x, indent + 2, out);
                }
            }
        }
        Value::Array(a) => {
            for x in a {
                if let Some(e) = inline_empty(x) {
                    let _ = writeln!(out, "{pad}- {e}");
                } else if is_scalar(x) {
                    let _ = writeln!(out, "{pad}- {}", scalar(x));
                } else {
                    // The element's first line goes after the dash.
                    let mut inner = String::new();
                    yaml(x, indent + 2, &mut inner);
                    let inner = inner.trim_start();
                    let _ = write!(out, "{pad}- {inner}");
                }
            }
        }
        other => {
            let _ = writeln!(out, "{pad}{}", scalar(other));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn yaml_blocks() {
        let v = json!({"parameters": [{"$ref": "#/components/parameters/IfMatch"}],
                       "responses": {"412": {"description": "Precondition Failed: stale version", "headers": {}}}});
        let y = render(&v, Format::Yaml);
        assert_eq!(
            y,
            "parameters:\n  - $ref: '#/components/parameters/IfMatch'\nresponses:\n  '412':\n    description: 'Precondition Failed: stale version'\n    headers: {}\n"
        );
    }
}
