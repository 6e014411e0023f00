//! Load-and-check time of OpenAPI documents shaped like large public ones:
//! a single JSON document of about 5 MB with thousands of `$ref`s, and a YAML document split
//! over hundreds of files in nested folders. `cargo bench --bench spec_load`.

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use racecheck::spec::{check, SpecInput};
use serde_json::{json, Map, Value};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A big JSON document: `resources` resources, each with a schema of many properties that
/// refer to shared schemas, a collection and an item path with the usual operations.
fn big_json(resources: usize) -> String {
    let mut schemas = Map::new();
    let mut paths = Map::new();
    let mut params = Map::new();
    params.insert(
        "Id".into(),
        json!({"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}),
    );
    params.insert(
        "IfMatch".into(),
        json!({"name": "If-Match", "in": "header", "required": true, "schema": {"type": "string"}}),
    );
    schemas.insert("Money".into(), json!({"type": "object", "properties": {"amount": {"type": "integer"}, "currency": {"type": "string"}}}));
    for r in 0..resources {
        let name = format!("Resource{r}");
        let mut props = Map::new();
        for p in 0..40 {
            let v = match p % 4 {
                0 => json!({"$ref": "#/components/schemas/Money"}),
                1 => {
                    json!({"type": "string", "description": format!("Field {p} of resource {r}, described at length as public APIs do, with examples and notes.")})
                }
                2 => {
                    json!({"type": "array", "items": {"$ref": format!("#/components/schemas/Resource{}", (r + 1) % resources)}})
                }
                _ => json!({"type": "integer", "format": "int64", "minimum": 0}),
            };
            props.insert(format!("field_{p}"), v);
        }
        props.insert("version".into(), json!({"type": "integer"}));
        schemas.insert(name.clone(), json!({"type": "object", "properties": props}));
        let body = json!({"content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{name}")}}}});
        let ok = json!({"description": "ok", "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{name}")}}}});
        paths.insert(
            format!("/resources{r}"),
            json!({
                "get": {"responses": {"200": ok.clone()}},
                "post": {"requestBody": body.clone(), "responses": {"201": ok.clone()}},
            }),
        );
        paths.insert(format!("/resources{r}/{{id}}"), json!({
            "parameters": [{"$ref": "#/components/parameters/Id"}],
            "get": {"responses": {"200": ok.clone()}},
            "put": {"parameters": [{"$ref": "#/components/parameters/IfMatch"}], "requestBody": body.clone(), "responses": {"200": ok.clone(), "412": {"description": "stale"}}},
            "patch": {"requestBody": body, "responses": {"200": ok}},
            "delete": {"responses": {"204": {"description": "deleted"}}},
        }));
    }
    let doc = json!({
        "openapi": "3.0.3",
        "info": {"title": "big", "version": "1"},
        "paths": Value::Object(paths),
        "components": {"schemas": Value::Object(schemas), "parameters": Value::Object(params)},
    });
    serde_json::to_string_pretty(&doc).unwrap()
}

/// A YAML document whose path items, schemas and parameters live in hundreds of files.
fn multi_yaml(dir: &Path, resources: usize) -> usize {
    std::fs::create_dir_all(dir.join("paths")).unwrap();
    std::fs::create_dir_all(dir.join("schemas/nested")).unwrap();
    std::fs::create_dir_all(dir.join("parameters")).unwrap();
    std::fs::write(
        dir.join("parameters/id.yaml"),
        "name: id\nin: path\nrequired: true\nschema: {type: string}\n",
    )
    .unwrap();
    let mut root = String::from("openapi: 3.0.3\ninfo: {title: multi, version: '1'}\npaths:\n");
    let mut refs = 0;
    for r in 0..resources {
        let _ = writeln!(
            root,
            "  /things{r}/{{id}}:\n    $ref: 'paths/thing{r}.yaml'"
        );
        std::fs::write(
            dir.join(format!("paths/thing{r}.yaml")),
            format!(
                "parameters:\n  - $ref: '../parameters/id.yaml'\nget:\n  responses:\n    '200':\n      description: ok\n      content:\n        application/json:\n          schema: {{$ref: '../schemas/thing{r}.yaml'}}\nput:\n  requestBody:\n    content:\n      application/json:\n        schema: {{$ref: '../schemas/thing{r}.yaml'}}\n  responses:\n    '200': {{description: ok}}\n"
            ),
        )
        .unwrap();
        std::fs::write(
            dir.join(format!("schemas/thing{r}.yaml")),
            format!("type: object\nproperties:\n  name: {{type: string}}\n  owner: {{$ref: 'nested/owner{r}.yaml'}}\n  version: {{type: integer}}\n"),
        )
        .unwrap();
        std::fs::write(
            dir.join(format!("schemas/nested/owner{r}.yaml")),
            "type: object\nproperties:\n  id: {type: string}\n  parent: {$ref: 'owner0.yaml'}\n",
        )
        .unwrap();
        refs += 5;
    }
    std::fs::write(dir.join("openapi.yaml"), root).unwrap();
    refs
}

fn time(input: &SpecInput, runs: usize) -> (Duration, usize, usize) {
    let first = check(input);
    let mut times = vec![];
    for _ in 0..runs {
        let t = Instant::now();
        let r = check(input);
        times.push(t.elapsed());
        assert_eq!(r.findings.len(), first.findings.len());
    }
    times.sort();
    let rc290 = first.findings.iter().filter(|f| f.rule == "RC290").count();
    (times[times.len() / 2], first.findings.len(), rc290)
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let text = big_json(600);
    let refs = text.matches("\"$ref\"").count();
    let big = dir.path().join("big.json");
    std::fs::write(&big, &text).unwrap();
    let (median, findings, errors) = time(&SpecInput::Path(big), 7);
    println!(
        "big JSON: {:.1} MB, {refs} $refs: load and check median {:.1} ms over 7 runs ({findings} findings, {errors} RC290)",
        text.len() as f64 / 1e6,
        median.as_secs_f64() * 1e3
    );
    let multi = dir.path().join("multi");
    let refs = multi_yaml(&multi, 300);
    let (median, findings, errors) = time(&SpecInput::Path(multi.join("openapi.yaml")), 7);
    println!(
        "multi-file YAML: 901 files, {refs} relative $refs: load and check median {:.1} ms over 7 runs ({findings} findings, {errors} RC290)",
        median.as_secs_f64() * 1e3
    );
}
