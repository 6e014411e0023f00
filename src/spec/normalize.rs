//! OpenAPI 3.1 (what utoipa 5 and most new generators emit) brought to the 3.0 model that
//! `openapiv3` reads, keeping what the rules need.

use serde_json::{Map, Value};

/// Rewrite a 3.1 document in place. Returns notes on what was dropped.
pub fn to_3_0(doc: &mut Value) -> Vec<String> {
    let mut notes = vec![];
    let Some(root) = doc.as_object_mut() else {
        return notes;
    };
    root.insert("openapi".into(), Value::String("3.0.3".into()));
    if root.remove("webhooks").is_some() {
        notes.push("webhooks are not checked (OpenAPI 3.1 only)".into());
    }
    root.remove("jsonSchemaDialect");
    root.entry("paths")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Some(info) = root.get_mut("info").and_then(Value::as_object_mut) {
        if let Some(lic) = info.get_mut("license").and_then(Value::as_object_mut) {
            lic.remove("identifier");
        }
        info.remove("summary");
    }
    walk(doc);
    notes
}

fn walk(v: &mut Value) {
    match v {
        Value::Object(m) => {
            schema_fixes(m);
            for (_, x) in m.iter_mut() {
                walk(x);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(walk),
        _ => {}
    }
}

/// 3.1 schema keywords and their 3.0 forms. Applied to every object; the keywords are
/// specific enough that non-schema objects are not touched.
fn schema_fixes(m: &mut Map<String, Value>) {
    // A `$ref` with siblings (a description): 3.0 takes the reference alone.
    if m.contains_key("$ref") && m.len() > 1 {
        m.retain(|k, _| k == "$ref");
        return;
    }
    if let Some(Value::Array(types)) = m.get("type").cloned() {
        let non_null: Vec<Value> = types.iter().filter(|t| *t != "null").cloned().collect();
        if non_null.len() < types.len() {
            m.insert("nullable".into(), Value::Bool(true));
        }
        match non_null.len() {
            1 => {
                m.insert("type".into(), non_null[0].clone());
            }
            _ => {
                // Several types (or only null): 3.0 has no union type; any value is allowed.
                m.remove("type");
            }
        }
    } else if m.get("type").and_then(Value::as_str) == Some("null") {
        m.remove("type");
        m.insert("nullable".into(), Value::Bool(true));
    }
    if let Some(Value::Array(examples)) = m.get("examples").cloned() {
        m.remove("examples");
        if let Some(first) = examples.into_iter().next() {
            m.entry("example").or_insert(first);
        }
    }
    for (bound, excl) in [
        ("minimum", "exclusiveMinimum"),
        ("maximum", "exclusiveMaximum"),
    ] {
        if let Some(n) = m.get(excl).filter(|v| v.is_number()).cloned() {
            m.insert(bound.into(), n);
            m.insert(excl.into(), Value::Bool(true));
        }
    }
    if let Some(c) = m.remove("const") {
        m.insert("enum".into(), Value::Array(vec![c]));
    }
    for k in [
        "$schema",
        "$id",
        "$anchor",
        "$defs",
        "contentMediaType",
        "contentEncoding",
        "prefixItems",
        "unevaluatedProperties",
        "dependentSchemas",
        "dependentRequired",
        "if",
        "then",
        "else",
        "propertyNames",
        "contains",
        "$comment",
    ] {
        m.remove(k);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn schema_keywords() {
        let mut d = json!({"openapi": "3.1.0", "info": {"title": "t", "version": "1", "license": {"name": "MIT", "identifier": "MIT"}},
            "webhooks": {"x": {}},
            "components": {"schemas": {"A": {"type": ["string", "null"], "examples": ["a"], "const": "a"},
                                       "B": {"type": "integer", "exclusiveMinimum": 0},
                                       "C": {"$ref": "#/components/schemas/A", "description": "d"}}}});
        let notes = to_3_0(&mut d);
        assert_eq!(notes.len(), 1);
        let a = &d["components"]["schemas"]["A"];
        assert_eq!(a["type"], "string");
        assert_eq!(a["nullable"], true);
        assert_eq!(a["example"], "a");
        assert_eq!(a["enum"], json!(["a"]));
        let b = &d["components"]["schemas"]["B"];
        assert_eq!(b["minimum"], 0);
        assert_eq!(b["exclusiveMinimum"], true);
        assert_eq!(
            d["components"]["schemas"]["C"],
            json!({"$ref": "#/components/schemas/A"})
        );
        assert_eq!(d["openapi"], "3.0.3");
        assert!(d.get("webhooks").is_none());
        assert!(d["paths"].is_object());
    }
}
