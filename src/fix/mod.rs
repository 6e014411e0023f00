//! Fix snippets: self-contained Rust functions, in the handler's own table, key and attribute
//! names, that compile against the current `aws-sdk-dynamodb` and `axum` (the `fix-check`
//! crate under `tools/` compiles every snippet the fixtures produce).

use std::fmt::Write as _;

pub mod apply;
pub mod edit;
mod guard;
pub mod rewrite;
pub mod spec;
pub mod write;
pub use guard::translate_guard;

use crate::model::{Fix, FixSafety};
use crate::source::facts::{Builder, Span, TableRef};

/// The DynamoDB type a value is sent as, and the Rust type the snippet takes it as.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Ty {
    S,
    N,
    B,
    Ss,
    Ns,
    Bs,
    L,
    M,
    Bool,
    Null,
    /// Built in a way the fix cannot name (`to_attribute_value(x)`, a variable): the
    /// `AttributeValue` itself is passed in.
    Value,
}

impl Ty {
    fn rust(self) -> &'static str {
        match self {
            Ty::S => "&str",
            Ty::N => "i64",
            Ty::B => "aws_sdk_dynamodb::primitives::Blob",
            Ty::Ss | Ty::Ns => "Vec<String>",
            Ty::Bs => "Vec<aws_sdk_dynamodb::primitives::Blob>",
            Ty::L => "Vec<aws_sdk_dynamodb::types::AttributeValue>",
            Ty::M => "std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>",
            Ty::Bool | Ty::Null => "bool",
            Ty::Value => "aws_sdk_dynamodb::types::AttributeValue",
        }
    }

    fn wrap(self, e: &str) -> String {
        match self {
            Ty::S => format!("AttributeValue::S({e}.to_owned())"),
            Ty::N => format!("AttributeValue::N({e}.to_string())"),
            Ty::B => format!("AttributeValue::B({e})"),
            Ty::Ss => format!("AttributeValue::Ss({e})"),
            Ty::Ns => format!("AttributeValue::Ns({e})"),
            Ty::Bs => format!("AttributeValue::Bs({e})"),
            Ty::L => format!("AttributeValue::L({e})"),
            Ty::M => format!("AttributeValue::M({e})"),
            Ty::Bool => format!("AttributeValue::Bool({e})"),
            Ty::Null => format!("AttributeValue::Null({e})"),
            Ty::Value => e.to_string(),
        }
    }

    /// `e`, an expression of the handler, sent as this type.
    pub fn wrap_code(self, e: &str) -> String {
        let simple = matches!(
            syn::parse_str::<syn::Expr>(e),
            Ok(syn::Expr::Path(_)
                | syn::Expr::Field(_)
                | syn::Expr::MethodCall(_)
                | syn::Expr::Lit(_))
        );
        if simple {
            self.wrap(e)
        } else {
            self.wrap(&format!("({e})"))
        }
    }

    /// The DynamoDB type of a value as the code builds it (`AttributeValue::Ss(tags)`): the
    /// outermost constructor written. A string literal is `S`; anything else is passed in as
    /// an `AttributeValue`, never guessed.
    pub fn of_text(text: &str) -> Ty {
        const CTORS: &[(&str, Ty)] = &[
            ("S", Ty::S),
            ("N", Ty::N),
            ("B", Ty::B),
            ("Ss", Ty::Ss),
            ("Ns", Ty::Ns),
            ("Bs", Ty::Bs),
            ("L", Ty::L),
            ("M", Ty::M),
            ("Bool", Ty::Bool),
            ("Null", Ty::Null),
        ];
        let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        let found = CTORS
            .iter()
            .filter_map(|(c, t)| compact.find(&format!("::{c}(")).map(|at| (at, *t)))
            .min_by_key(|(at, _)| *at);
        match found {
            Some((_, t)) => t,
            None => Ty::Value,
        }
    }
}

/// A value the snippet sends: a parameter of the function, or a constant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Arg {
    Param(String, Ty),
    Const(String),
}

impl Arg {
    /// The Rust expression that sends the value.
    fn expr(&self) -> String {
        match self {
            Arg::Param(p, t) => t.wrap(p),
            Arg::Const(c) => c.clone(),
        }
    }
}

/// Which table and item a snippet writes.
#[derive(Clone, Debug)]
pub struct Target {
    /// `None`: the table comes in as a parameter (the code computes it).
    pub table: Option<String>,
    /// Key attribute, its type, and the parameter that carries it (named as in the code).
    pub key: Vec<(String, Ty, String)>,
    /// The code does not show the key: `id` stands in for it.
    pub key_unknown: bool,
    /// The key is the put's attribute that looks like one, not one the code names as a key.
    pub key_guessed: bool,
}

impl Target {
    pub fn of(b: &Builder) -> Target {
        let table = match &b.table {
            TableRef::Literal(s) | TableRef::Const(_, Some(s)) => Some(s.clone()),
            _ => None,
        };
        let mut key_unknown = false;
        let key_guessed = b.key.is_empty();
        let mut key: Vec<(String, Ty, String)> = b
            .key
            .iter()
            .map(|p| {
                (
                    p.name.clone(),
                    Ty::of_text(&p.text),
                    param_name(&p.text, &p.name),
                )
            })
            .collect();
        if key.is_empty() {
            // Puts carry their key inside the item: take the attribute that looks like one.
            let guess = b
                .item
                .iter()
                .find(|p| is_key_like(&p.name))
                .or_else(|| b.item.first());
            if let Some(p) = guess {
                key.push((
                    p.name.clone(),
                    Ty::of_text(&p.text),
                    param_name(&p.text, &p.name),
                ));
            } else {
                key_unknown = true;
                key.push(("id".into(), Ty::Value, "id".into()));
            }
        }
        Target {
            table,
            key,
            key_unknown,
            key_guessed,
        }
    }

    /// The target of a write, with the key of the item read when the write does not show it.
    pub fn of_write(w: &crate::source::writes::WriteFacts) -> Target {
        if w.key_hint.is_empty() {
            return Target::of(&w.req);
        }
        let mut b = w.req.clone();
        b.key = w.key_hint.clone();
        Target::of(&b)
    }

    fn key_params(&self) -> Vec<(String, Ty)> {
        self.key.iter().map(|(_, t, p)| (p.clone(), *t)).collect()
    }

    /// Number the key parameters (`id_1`) when several targets share one function.
    pub fn suffixed(&self, suffix: &str) -> Target {
        Target {
            table: self.table.clone(),
            key: self
                .key
                .iter()
                .map(|(a, t, p)| (a.clone(), *t, format!("{p}{suffix}")))
                .collect(),
            key_unknown: self.key_unknown,
            key_guessed: self.key_guessed,
        }
    }

    fn table_expr(&self) -> String {
        match &self.table {
            Some(t) => format!("{t:?}"),
            None => "table".into(),
        }
    }
}

/// The parameter name for a value: the variable the code passes (`id` in
/// `AttributeValue::S(id.clone())`), else the attribute's name.
pub fn param_name(text: &str, attr: &str) -> String {
    const SKIP: &[&str] = &[
        "AttributeValue",
        "S",
        "N",
        "B",
        "Bool",
        "Ss",
        "Ns",
        "L",
        "M",
        "Null",
        "clone",
        "to_string",
        "to_owned",
        "into",
        "as_str",
        "as_ref",
        "format",
        "String",
        "from",
        "aws_sdk_dynamodb",
        "types",
        "self",
        "req",
        "body",
        "payload",
        "input",
        "params",
        "path",
        "state",
    ];
    let words: Vec<&str> = text
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty() && !w.starts_with(|c: char| c.is_ascii_digit()))
        .collect();
    match words.iter().rev().find(|w| !SKIP.contains(w)) {
        Some(w) => ident(w),
        None => ident(attr),
    }
}

pub fn is_key_like(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n == "id" || n == "pk" || n.ends_with("_id") || n.ends_with("id") && n.len() <= 8 || n == "key"
}

/// A Rust identifier made from an attribute or expression name.
pub fn ident(name: &str) -> String {
    let mut s = String::new();
    let mut prev_lower = false;
    for c in name.trim_start_matches(['#', ':']).chars() {
        if c.is_ascii_uppercase() {
            if prev_lower {
                s.push('_');
            }
            s.push(c.to_ascii_lowercase());
            prev_lower = false;
        } else if c.is_ascii_alphanumeric() {
            s.push(c);
            prev_lower = true;
        } else if !s.ends_with('_') {
            s.push('_');
            prev_lower = false;
        }
    }
    let s = s.trim_matches('_').to_string();
    if s.is_empty() {
        return "value".into();
    }
    if s.starts_with(|c: char| c.is_ascii_digit()) {
        return format!("v_{s}");
    }
    const KEYWORDS: &[&str] = &[
        "as", "async", "await", "box", "break", "const", "continue", "crate", "dyn", "else",
        "enum", "extern", "false", "fn", "for", "if", "impl", "in", "let", "loop", "match", "mod",
        "move", "mut", "pub", "ref", "return", "self", "static", "struct", "super", "trait",
        "true", "type", "unsafe", "use", "where", "while", "table", "client", "result", "item",
    ];
    if KEYWORDS.contains(&s.as_str()) {
        format!("{s}_value")
    } else {
        s
    }
}

/// `#name` for an attribute, as the snippets spell it.
pub fn name_ref(attr: &str) -> String {
    format!("#{}", ident(attr))
}

/// One conditional `update_item`.
#[derive(Clone, Debug)]
pub struct UpdateSpec {
    pub target: Target,
    pub update: String,
    pub condition: Option<String>,
    /// `#name` placeholders and the attributes they stand for.
    pub names: Vec<(String, String)>,
    pub values: Vec<(String, Arg)>,
    pub conflict: Conflict,
    /// Decisions of the code that the condition does not express (`!valid(&item)`): a fix
    /// that leaves one out is a sketch, not a re-check.
    pub unchecked: Vec<String>,
    /// For a placeholder sent as a parameter: the `AttributeValue` expression the handler can
    /// send it with in place, and where its operand was written (`None`: at the write).
    pub code: Vec<(String, String, Option<Span>)>,
}

/// What a failed condition means to the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Conflict {
    /// 409: the state changed (a balance, a coupon, a duplicate).
    Conflict,
    /// 412: the client's version (`If-Match`) is stale.
    PreconditionFailed,
}

impl Conflict {
    fn status(self) -> &'static str {
        match self {
            Conflict::Conflict => "StatusCode::CONFLICT",
            Conflict::PreconditionFailed => "StatusCode::PRECONDITION_FAILED",
        }
    }
}

impl UpdateSpec {
    /// An empty update of `target`: nothing set, no condition, a conflict answered with 409.
    pub fn new(target: Target) -> UpdateSpec {
        let unchecked = if target.key_unknown {
            vec!["the item's key (not found in the code; `id` stands in for it)".to_string()]
        } else {
            vec![]
        };
        UpdateSpec {
            target,
            update: String::new(),
            condition: None,
            names: vec![],
            values: vec![],
            conflict: Conflict::Conflict,
            unchecked,
            code: vec![],
        }
    }

    /// Refer to `attr` as `#attr` in the expressions; returns the reference.
    pub fn name(&mut self, attr: &str) -> String {
        if let Some((n, _)) = self.names.iter().find(|(_, a)| a == attr) {
            return n.clone();
        }
        let n = name_ref(attr);
        self.names.push((n.clone(), attr.to_string()));
        n
    }

    /// Add `cond` to the condition, beside what is there.
    pub fn and_condition(&mut self, cond: String) {
        self.condition = Some(match self.condition.take() {
            Some(prev) => format!("({prev}) AND ({cond})"),
            None => cond,
        });
    }

    /// The write must find the item (or, with `false`, must not): the existence decided on.
    pub fn require_item(&mut self, exists: bool) {
        let Some((key, _, _)) = self.target.key.first().cloned() else {
            self.unchecked.push("whether the item exists".into());
            return;
        };
        let n = self.name(&key);
        let f = if exists {
            "attribute_exists"
        } else {
            "attribute_not_exists"
        };
        let cond = format!("{f}({n})");
        if !self.condition.as_deref().is_some_and(|c| c.contains(&cond)) {
            self.and_condition(cond);
        }
    }

    pub fn add_value(&mut self, placeholder: &str, arg: Arg) {
        if !self.values.iter().any(|(p, _)| p == placeholder) {
            self.values.push((placeholder.to_string(), arg));
        }
    }

    /// Drop names and values no expression uses: DynamoDB refuses a request that defines one.
    pub fn prune(&mut self) {
        let used: std::collections::HashSet<String> = [&Some(self.update.clone()), &self.condition]
            .into_iter()
            .flatten()
            .flat_map(|e| {
                crate::source::expr::tokens(e)
                    .into_iter()
                    .flat_map(|t| t.split('.').map(str::to_string).collect::<Vec<_>>())
                    .collect::<Vec<_>>()
            })
            .collect();
        self.names.retain(|(n, _)| used.contains(n));
        self.values.retain(|(p, _)| used.contains(p));
        self.code.retain(|(p, _, _)| used.contains(p));
    }

    /// A placeholder with the handler's own expression for it (`code`), whose operand was
    /// written at `at` (`None`: in the write itself).
    pub fn add_code_value(&mut self, placeholder: &str, arg: Arg, code: String, at: Option<Span>) {
        self.add_value(placeholder, arg);
        if !self.code.iter().any(|(p, _, _)| p == placeholder) {
            self.code.push((placeholder.to_string(), code, at));
        }
    }

    fn params(&self) -> Vec<(String, Ty)> {
        let mut out = self.target.key_params();
        for (_, a) in &self.values {
            if let Arg::Param(n, t) = a {
                if !out.iter().any(|(x, _)| x == n) {
                    out.push((n.clone(), *t));
                }
            }
        }
        out
    }

    /// The builder chain for this update, on `receiver` (`client.update_item()` or
    /// `Update::builder()`), each call on its own line at `indent`.
    fn chain(&self, receiver: &str, indent: &str) -> String {
        let mut s = format!("{receiver}\n");
        let _ = writeln!(s, "{indent}.table_name({})", self.target.table_expr());
        for (attr, ty, param) in &self.target.key {
            let _ = writeln!(s, "{indent}.key({attr:?}, {})", ty.wrap(param));
        }
        let _ = writeln!(s, "{indent}.update_expression({:?})", self.update);
        if let Some(c) = &self.condition {
            let _ = writeln!(s, "{indent}.condition_expression({c:?})");
        }
        for (n, attr) in &self.names {
            let _ = writeln!(s, "{indent}.expression_attribute_names({n:?}, {attr:?})");
        }
        for (ph, arg) in &self.values {
            let _ = writeln!(
                s,
                "{indent}.expression_attribute_values({ph:?}, {})",
                arg.expr()
            );
        }
        s.trim_end().to_string()
    }
}

/// `(name, type)` pairs for a signature.
fn typed(params: &[(String, Ty)]) -> Vec<(String, &'static str)> {
    params.iter().map(|(p, t)| (p.clone(), t.rust())).collect()
}

fn signature(fn_name: &str, doc: &str, table_param: bool, params: &[(String, &str)]) -> String {
    let mut s = String::new();
    for line in doc.lines() {
        let _ = writeln!(s, "/// {line}");
    }
    let _ = writeln!(s, "pub async fn {fn_name}(");
    let _ = writeln!(s, "    client: &aws_sdk_dynamodb::Client,");
    if table_param {
        let _ = writeln!(s, "    table: &str,");
    }
    for (p, t) in params {
        let _ = writeln!(s, "    {p}: {t},");
    }
    let _ = writeln!(s, ") -> Result<(), axum::http::StatusCode> {{");
    s
}

fn error_match(check: &str, conflict: Conflict) -> String {
    format!(
        "    match result {{\n        Ok(_) => Ok(()),\n        Err(err) if err.as_service_error().is_some_and(|e| e.{check}()) => {{\n            Err({})\n        }}\n        Err(_) => Err(StatusCode::INTERNAL_SERVER_ERROR),\n    }}\n}}\n",
        conflict.status()
    )
}

/// A function that performs one conditional update and maps a failed condition to 409/412.
pub fn render_update(fn_name: &str, doc: &str, spec: &UpdateSpec) -> String {
    let mut s = signature(
        fn_name,
        doc,
        spec.target.table.is_none(),
        &typed(&spec.params()),
    );
    s.push_str(
        "    use aws_sdk_dynamodb::types::AttributeValue;\n    use axum::http::StatusCode;\n\n",
    );
    let _ = writeln!(
        s,
        "    let result = {}",
        spec.chain("client\n        .update_item()", "        ")
    );
    s.push_str("        .send()\n        .await;\n");
    s.push_str(&error_match(
        "is_conditional_check_failed_exception",
        spec.conflict,
    ));
    s
}

/// A put of a whole item with a condition (`attribute_not_exists`, or a version check).
pub struct PutSpec {
    pub target: Target,
    pub condition: String,
    pub names: Vec<(String, String)>,
    pub values: Vec<(String, Arg)>,
    pub conflict: Conflict,
}

pub fn render_put(fn_name: &str, doc: &str, spec: &PutSpec) -> String {
    let mut params: Vec<(String, &str)> = vec![(
        "item".into(),
        "std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>",
    )];
    for (_, a) in &spec.values {
        if let Arg::Param(n, t) = a {
            params.push((n.clone(), t.rust()));
        }
    }
    let mut s = signature(fn_name, doc, spec.target.table.is_none(), &params);
    if !spec.values.is_empty() {
        s.push_str("    use aws_sdk_dynamodb::types::AttributeValue;\n");
    }
    s.push_str("    use axum::http::StatusCode;\n\n");
    let _ = writeln!(s, "    let result = client\n        .put_item()\n        .table_name({})\n        .set_item(Some(item))\n        .condition_expression({:?})", spec.target.table_expr(), spec.condition);
    for (n, attr) in &spec.names {
        let _ = writeln!(s, "        .expression_attribute_names({n:?}, {attr:?})");
    }
    for (ph, arg) in &spec.values {
        let _ = writeln!(
            s,
            "        .expression_attribute_values({ph:?}, {})",
            arg.expr()
        );
    }
    s.push_str("        .send()\n        .await;\n");
    s.push_str(&error_match(
        "is_conditional_check_failed_exception",
        spec.conflict,
    ));
    s
}

/// Several updates in one `transact_write_items`: all happen or none do.
pub fn render_transaction(fn_name: &str, doc: &str, members: &[UpdateSpec]) -> String {
    // Members that name their key the same way get numbered parameters.
    let mut members = members.to_vec();
    let clash = members.len() > 1
        && members
            .iter()
            .map(|m| m.target.key_params())
            .collect::<std::collections::HashSet<_>>()
            .len()
            < members.len();
    if clash {
        for (i, m) in members.iter_mut().enumerate() {
            m.target = m.target.suffixed(&format!("_{}", i + 1));
        }
    }
    let mut params: Vec<(String, Ty)> = vec![];
    for m in &members {
        for p in m.params() {
            if !params.iter().any(|(x, _)| *x == p.0) {
                params.push(p);
            }
        }
    }
    let table_param = members.iter().any(|m| m.target.table.is_none());
    let mut s = signature(fn_name, doc, table_param, &typed(&params));
    s.push_str(
        "    use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem, Update};\n    use axum::http::StatusCode;\n\n",
    );
    for (i, m) in members.iter().enumerate() {
        let chain = m.chain("Update::builder()", "        ");
        let _ = writeln!(
            s,
            "    let update_{} = {chain}\n        .build()\n        .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?;",
            i + 1
        );
    }
    s.push_str("    let result = client\n        .transact_write_items()\n");
    for i in 0..members.len() {
        let _ = writeln!(
            s,
            "        .transact_items(TransactWriteItem::builder().update(update_{}).build())",
            i + 1
        );
    }
    s.push_str("        .send()\n        .await;\n");
    s.push_str(&error_match(
        "is_transaction_canceled_exception",
        Conflict::Conflict,
    ));
    s
}

/// Turn a failed condition into 409/412 wherever the call site is.
pub fn render_status_mapper(fn_name: &str, op: &str, conflict: Conflict) -> String {
    let (module, err) = match op {
        "put_item" => ("put_item", "PutItemError"),
        "delete_item" => ("delete_item", "DeleteItemError"),
        "transact_write_items" => ("transact_write_items", "TransactWriteItemsError"),
        _ => ("update_item", "UpdateItemError"),
    };
    let check = if op == "transact_write_items" {
        "is_transaction_canceled_exception"
    } else {
        "is_conditional_check_failed_exception"
    };
    format!(
        "/// The answer for a failed `{op}`: a failed condition is the client's conflict, not a 500.\n\
         /// Use it as `.send().await.map_err(|e| {fn_name}(&e))?`.\n\
         pub fn {fn_name}(\n    err: &aws_sdk_dynamodb::error::SdkError<aws_sdk_dynamodb::operation::{module}::{err}>,\n) -> axum::http::StatusCode {{\n    use axum::http::StatusCode;\n\n    match err.as_service_error() {{\n        Some(e) if e.{check}() => {},\n        _ => StatusCode::INTERNAL_SERVER_ERROR,\n    }}\n}}\n",
        conflict.status()
    )
}

/// A bounded optimistic-concurrency retry around one attempt.
pub fn render_bounded_retry(fn_name: &str, doc: &str) -> String {
    let mut s = String::new();
    for line in doc.lines() {
        let _ = writeln!(s, "/// {line}");
    }
    let _ = write!(
        s,
        "pub async fn {fn_name}<T, F, Fut>(\n    max_attempts: u32,\n    mut attempt: F,\n) -> Result<T, axum::http::StatusCode>\n\
where\n    F: FnMut() -> Fut,\n    Fut: std::future::Future<Output = Result<Option<T>, axum::http::StatusCode>>,\n{{\n\
    // `Ok(None)` means the condition failed: read again and retry, at most `max_attempts` times.\n\
    for _ in 0..max_attempts {{\n        if let Some(done) = attempt().await? {{\n            return Ok(done);\n        }}\n    }}\n\
    Err(axum::http::StatusCode::CONFLICT)\n}}\n"
    );
    s
}

/// Read, change and write shared state under one lock acquisition.
pub fn render_locked_update(fn_name: &str, receiver: &str, atomic: bool) -> String {
    if atomic {
        format!(
            "/// `{receiver}`: one atomic read-modify-write instead of `load` then `store`.\n\
             pub fn {fn_name}(value: &std::sync::atomic::AtomicI64, delta: i64) -> i64 {{\n    \
             value.fetch_add(delta, std::sync::atomic::Ordering::SeqCst) + delta\n}}\n"
        )
    } else {
        format!(
            "/// `{receiver}`: hold one guard for the read and the write.\n\
             pub fn {fn_name}<T>(state: &std::sync::Mutex<T>, change: impl FnOnce(&mut T)) {{\n    \
             let mut guard = state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());\n    \
             change(&mut guard);\n}}\n"
        )
    }
}

/// A fix whose condition leaves out decisions of the code is a sketch: it says which, and
/// is never offered as applicable.
pub fn with_gaps(mut f: Fix, unchecked: &[String]) -> Fix {
    if unchecked.is_empty() {
        return f;
    }
    let list: Vec<String> = unchecked
        .iter()
        .map(|u| format!("`{}`", u.split_whitespace().collect::<Vec<_>>().join(" ")))
        .collect();
    f.safety = FixSafety::DisplayOnly;
    f.explanation.push_str(&format!(
        " The condition does not yet express {}: add it by hand before using this.",
        list.join(", ")
    ));
    f
}

/// A fix that is not turned into edits, and why.
pub fn without_edits(mut f: Fix, why: &str) -> Fix {
    f.edit_note = Some(format!("No edits: {why}; the snippet shows the change."));
    f
}

pub fn fix(
    title: impl Into<String>,
    explanation: impl Into<String>,
    safety: FixSafety,
    snippet: String,
) -> Fix {
    Fix {
        title: title.into(),
        explanation: explanation.into(),
        safety,
        snippet,
        diff: None,
        edits: vec![],
        edit_note: None,
    }
}
