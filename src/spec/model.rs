//! The resolved spec model: every operation with its parameters, body, responses and effective
//! security, references followed. Built once; rules read it and never the document.

use serde_json::Value;

use super::doc::{escape, Format};
use super::refs::{DocId, Docs};

pub const METHODS: &[&str] = &[
    "get", "put", "post", "delete", "patch", "head", "options", "trace",
];

#[derive(Clone, Debug)]
pub struct Param {
    /// Lower-cased name.
    pub name: String,
    pub location: String,
    pub required: bool,
    /// The `$ref` the operation used, to reuse it in fixes.
    pub reference: Option<String>,
}

#[derive(Clone, Debug, Default)]
pub struct Body {
    pub props: Vec<String>,
    pub required: Vec<String>,
}

#[derive(Clone, Debug)]
pub struct Resp {
    /// `200`, `4XX`, `default`.
    pub code: String,
    /// Lower-cased header names.
    pub headers: Vec<String>,
    /// Top-level properties of the JSON body schema.
    pub props: Vec<String>,
    /// The shared response it refers to (`#/components/responses/Item`), as (document,
    /// pointer) after following the `$ref`.
    pub shared: Option<(DocId, String)>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Security {
    Required,
    /// A requirement list that includes `{}`: anonymous calls allowed.
    Optional,
    /// `security: []` on the operation overrides a global requirement.
    DisabledHere,
    /// No requirement anywhere.
    Absent,
}

#[derive(Clone, Debug)]
pub struct Op {
    pub method: String,
    pub path: String,
    pub doc: DocId,
    /// Pointer of the operation object in its document.
    pub pointer: String,
    /// Lower-cased operationId, summary and description, for word heuristics.
    pub words: String,
    pub params: Vec<Param>,
    pub body: Option<Body>,
    pub responses: Vec<Resp>,
    pub security: Security,
}

impl Op {
    pub fn label(&self) -> String {
        format!("{} {}", self.method.to_uppercase(), self.path)
    }

    pub fn is_mutating(&self) -> bool {
        matches!(self.method.as_str(), "put" | "patch" | "delete" | "post")
    }

    /// A path with a template parameter names one item.
    pub fn is_item_level(&self) -> bool {
        self.path.contains('{')
    }

    pub fn header(&self, name: &str) -> Option<&Param> {
        self.params
            .iter()
            .find(|p| p.location == "header" && p.name == name)
    }

    pub fn has_response(&self, codes: &[&str]) -> bool {
        self.responses
            .iter()
            .any(|r| codes.contains(&r.code.as_str()))
    }

    pub fn response_headers(&self) -> impl Iterator<Item = &str> {
        self.responses
            .iter()
            .flat_map(|r| r.headers.iter().map(String::as_str))
    }
}

/// Reusable components the fixes can refer to.
#[derive(Clone, Debug, Default)]
pub struct Components {
    /// (lower-cased header name, `#/components/parameters/X`).
    pub header_params: Vec<(String, String)>,
    /// (status code the response is named or described for, `#/components/responses/X`).
    pub responses: Vec<(String, String)>,
    /// (lower-cased header name, `#/components/headers/X`).
    pub headers: Vec<(String, String)>,
}

pub struct SpecModel {
    pub format: Format,
    pub ops: Vec<Op>,
    pub components: Components,
}

impl SpecModel {
    /// The GET on the same path, if any.
    pub fn get_of(&self, op: &Op) -> Option<&Op> {
        self.ops
            .iter()
            .find(|o| o.path == op.path && o.method == "get")
    }
}

/// A value, following its `$ref` chain; `None` when the chain is broken (reported separately).
fn deref(docs: &Docs, doc: DocId, v: &Value) -> Option<(DocId, String)> {
    match v.get("$ref").and_then(Value::as_str) {
        Some(r) => docs.resolve_loaded(doc, r),
        None => None,
    }
}

const NULL: Value = Value::Null;

/// Resolve `v` (found in `doc`) to the value it stands for and its document.
pub(super) fn follow<'d>(docs: &'d Docs, doc: DocId, v: &'d Value) -> (DocId, &'d Value) {
    match deref(docs, doc, v) {
        Some((d, p)) => (d, docs.get(d, &p).unwrap_or(&NULL)),
        None => (doc, v),
    }
}

fn lower_keys(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_object)
        .map(|m| m.keys().map(|k| k.to_ascii_lowercase()).collect())
        .unwrap_or_default()
}

/// Top-level properties of a schema (through `$ref`s and `allOf`, a few levels deep).
fn schema_props(docs: &Docs, doc: DocId, schema: &Value, depth: usize, body: &mut Body) {
    if depth > 4 {
        return;
    }
    let (doc, schema) = follow(docs, doc, schema);
    body.props.extend(lower_keys(schema.get("properties")));
    if let Some(req) = schema.get("required").and_then(Value::as_array) {
        body.required.extend(
            req.iter()
                .filter_map(Value::as_str)
                .map(str::to_ascii_lowercase),
        );
    }
    for key in ["allOf", "oneOf", "anyOf"] {
        if let Some(parts) = schema.get(key).and_then(Value::as_array) {
            for p in parts {
                schema_props(docs, doc, p, depth + 1, body);
            }
        }
    }
}

pub(super) fn json_schema_of(content: Option<&Value>) -> Option<&Value> {
    let content = content?.as_object()?;
    content
        .iter()
        .find(|(k, _)| k.contains("json"))
        .or_else(|| content.iter().next())
        .and_then(|(_, m)| m.get("schema"))
}

fn security_of(v: Option<&Value>) -> Option<Security> {
    let list = v?.as_array()?;
    Some(if list.is_empty() {
        Security::DisabledHere
    } else if list
        .iter()
        .any(|r| r.as_object().is_some_and(|o| o.is_empty()))
    {
        Security::Optional
    } else {
        Security::Required
    })
}

pub fn build(docs: &Docs, format: Format) -> SpecModel {
    let root = &docs.docs[0].value;
    let global = security_of(root.get("security"));
    let mut ops = vec![];
    let empty = serde_json::Map::new();
    let no_params: Vec<Value> = vec![];
    let paths = root
        .get("paths")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    for (path, item) in paths {
        let (item_doc, item_ptr) = match deref(docs, 0, item) {
            Some(t) => t,
            None => (0, format!("/paths/{}", escape(path))),
        };
        let Some(item) = docs.get(item_doc, &item_ptr) else {
            continue;
        };
        let shared = item
            .get("parameters")
            .and_then(Value::as_array)
            .unwrap_or(&no_params);
        for method in METHODS {
            let Some(op) = item.get(*method) else {
                continue;
            };
            // An operation kept in its own file (`get: {$ref: ops/list.yml}`): read there.
            let (op_doc, pointer, op) = match deref(docs, item_doc, op) {
                Some((d, p)) => match docs.get(d, &p) {
                    Some(v) => (d, p, v),
                    None => continue,
                },
                None => (item_doc, format!("{item_ptr}/{method}"), op),
            };
            let mut words = String::new();
            for k in ["operationId", "summary", "description"] {
                if let Some(s) = op.get(k).and_then(Value::as_str) {
                    words.push_str(&s.to_ascii_lowercase());
                    words.push(' ');
                }
            }
            let mut params: Vec<Param> = vec![];
            let own = op
                .get("parameters")
                .and_then(Value::as_array)
                .unwrap_or(&no_params);
            let own = own.iter().map(|p| (op_doc, p));
            for (at, p) in own.chain(shared.iter().map(|p| (item_doc, p))) {
                let reference = p.get("$ref").and_then(Value::as_str).map(String::from);
                let (_, pv) = follow(docs, at, p);
                let (Some(name), Some(loc)) = (
                    pv.get("name").and_then(Value::as_str),
                    pv.get("in").and_then(Value::as_str),
                ) else {
                    continue;
                };
                let name = name.to_ascii_lowercase();
                if params.iter().any(|x| x.name == name && x.location == loc) {
                    continue; // the operation's own parameter overrides the path item's
                }
                params.push(Param {
                    name,
                    location: loc.to_string(),
                    required: pv.get("required").and_then(Value::as_bool).unwrap_or(false),
                    reference,
                });
            }
            let body = op.get("requestBody").map(|rb| {
                let (d, rb) = follow(docs, op_doc, rb);
                let mut b = Body::default();
                if let Some(s) = json_schema_of(rb.get("content")) {
                    schema_props(docs, d, s, 0, &mut b);
                }
                b
            });
            let mut responses = vec![];
            if let Some(rs) = op.get("responses").and_then(Value::as_object) {
                for (code, r) in rs {
                    let shared = deref(docs, op_doc, r);
                    let (d, rv) = match &shared {
                        Some((d, p)) => (*d, docs.get(*d, p).unwrap_or(&NULL)),
                        None => (op_doc, r),
                    };
                    let mut b = Body::default();
                    if let Some(s) = json_schema_of(rv.get("content")) {
                        schema_props(docs, d, s, 0, &mut b);
                    }
                    responses.push(Resp {
                        code: code.to_ascii_uppercase(),
                        headers: lower_keys(rv.get("headers")),
                        props: b.props,
                        shared,
                    });
                }
            }
            let security = security_of(op.get("security"))
                .or(global)
                .unwrap_or(Security::Absent);
            ops.push(Op {
                method: method.to_string(),
                path: path.clone(),
                doc: op_doc,
                pointer,
                words,
                params,
                body,
                responses,
                security,
            });
        }
    }
    let components = components(root);
    SpecModel {
        format,
        ops,
        components,
    }
}

fn components(root: &Value) -> Components {
    let mut c = Components::default();
    let comp = root.get("components");
    if let Some(ps) = comp
        .and_then(|c| c.get("parameters"))
        .and_then(Value::as_object)
    {
        for (k, p) in ps {
            if p.get("in").and_then(Value::as_str) == Some("header") {
                if let Some(n) = p.get("name").and_then(Value::as_str) {
                    c.header_params.push((
                        n.to_ascii_lowercase(),
                        format!("#/components/parameters/{}", escape(k)),
                    ));
                }
            }
        }
    }
    if let Some(rs) = comp
        .and_then(|c| c.get("responses"))
        .and_then(Value::as_object)
    {
        for (k, r) in rs {
            let text = format!(
                "{k} {}",
                r.get("description").and_then(Value::as_str).unwrap_or("")
            )
            .to_ascii_lowercase();
            let code = [
                ("428", "precondition required"),
                ("412", "precondition"),
                ("409", "conflict"),
                ("429", "too many"),
            ]
            .iter()
            .find(|(code, word)| text.contains(code) || text.contains(word))
            .map(|(code, _)| code.to_string());
            if let Some(code) = code {
                c.responses
                    .push((code, format!("#/components/responses/{}", escape(k))));
            }
        }
    }
    if let Some(hs) = comp
        .and_then(|c| c.get("headers"))
        .and_then(Value::as_object)
    {
        for k in hs.keys() {
            c.headers.push((
                k.to_ascii_lowercase(),
                format!("#/components/headers/{}", escape(k)),
            ));
        }
    }
    c
}
