//! Output schemas in outline. The full schema of a page (every field of a finding, fix, proof
//! and probe round, each with its description) repeated in six tools made `tools/list` 74 KB;
//! an outline keeps what a client validates against and a model reads (the fields and their
//! types) in a few KB, and the tool descriptions say the rest.

use rmcp::model::JsonObject;
use schemars::JsonSchema;
use serde_json::{json, Map, Value};
use std::sync::Arc;

/// Levels of an output schema spelled out: the answer, its parts, their items and their fields
/// by type.
const OUTLINE_DEPTH: usize = 3;

/// `T`'s output schema in outline (see [`OUTLINE_DEPTH`]): references resolved, descriptions,
/// bounds and the required fields of inner objects left out, anything deeper only by its
/// type. Every answer still validates against it.
pub fn outline<T: JsonSchema + std::any::Any>() -> Arc<JsonObject> {
    let full = rmcp::handler::server::common::schema_for_output::<T>();
    let defs = full
        .get("$defs")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let root = Value::Object((*full).clone());
    match outline_of(&root, &defs, OUTLINE_DEPTH) {
        Value::Object(mut o) => {
            if let Some(s) = full.get("$schema") {
                o.insert("$schema".into(), s.clone());
            }
            Arc::new(o)
        }
        _ => full,
    }
}

fn outline_of(schema: &Value, defs: &Map<String, Value>, depth: usize) -> Value {
    let Some(obj) = schema.as_object() else {
        return schema.clone();
    };
    if let Some(target) = obj
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix("#/$defs/"))
        .and_then(|name| defs.get(name))
    {
        return outline_of(target, defs, depth);
    }
    // An enum of documented constants (`oneOf` of `const`s) is its list of values.
    if let Some(Value::Array(alternatives)) = obj.get("oneOf") {
        let consts: Option<Vec<Value>> = alternatives
            .iter()
            .map(|a| a.get("const").cloned())
            .collect();
        if let Some(values) = consts {
            if values.iter().all(Value::is_string) {
                return json!({"type": "string", "enum": values});
            }
            return json!({ "enum": values });
        }
    }
    if depth == 0 {
        let mut out = Map::new();
        for key in ["type", "enum"] {
            if let Some(v) = obj.get(key) {
                out.insert(key.into(), v.clone());
            }
        }
        return Value::Object(out);
    }
    let mut out = Map::new();
    for (key, value) in obj {
        let kept = match key.as_str() {
            "description" | "title" | "$schema" | "$defs" | "examples" | "default" | "minimum" => {
                continue
            }
            // Which fields are always there matters for the answer itself, less below it.
            "required" if depth < OUTLINE_DEPTH => continue,
            "properties" => Value::Object(
                value
                    .as_object()
                    .map(|props| {
                        props
                            .iter()
                            .map(|(k, v)| (k.clone(), outline_of(v, defs, depth - 1)))
                            .collect()
                    })
                    .unwrap_or_default(),
            ),
            "items" | "additionalProperties" if value.is_object() => {
                outline_of(value, defs, depth - 1)
            }
            "oneOf" | "anyOf" | "allOf" => Value::Array(
                value
                    .as_array()
                    .map(|alts| alts.iter().map(|a| outline_of(a, defs, depth)).collect())
                    .unwrap_or_default(),
            ),
            _ => value.clone(),
        };
        out.insert(key.clone(), kept);
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_in_outline_is_a_small_object_schema_without_references() {
        let page = Value::Object((*outline::<crate::report::page::Page>()).clone());
        let text = page.to_string();
        assert_eq!(page["type"], "object");
        assert!(!text.contains("$ref") && !text.contains("$defs"), "{text}");
        assert!(text.len() < 3_000, "{} bytes", text.len());
        let finding = &page["properties"]["findings"]["items"];
        assert_eq!(finding["properties"]["severity"]["enum"][0], "info");
        assert_eq!(finding["properties"]["location"], json!({"type": "object"}));
    }
}
