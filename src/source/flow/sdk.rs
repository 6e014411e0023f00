//! The DynamoDB SDK as the walker sees it: request builders (fluent or struct literals),
//! their arguments, and the moment they are sent.

use syn::Expr;

use super::syntax::*;
use super::Walker;
use crate::source::facts::*;
use crate::source::index::{path_ends, str_lit};
use crate::source::span::Keyword;

/// Fields of `GetItemOutput`, `QueryOutput` and friends.
pub(super) const SDK_OUTPUT_FIELDS: &[&str] = &[
    // rusoto's AttributeValue fields
    "n",
    "s",
    "b",
    "ss",
    "ns",
    "bs",
    "l",
    "m",
    "bool",
    "null",
    "item",
    "items",
    "attributes",
    "responses",
    "count",
    "scanned_count",
    "last_evaluated_key",
    "consumed_capacity",
    "unprocessed_keys",
];

impl Walker<'_, '_, '_> {
    pub(super) fn builder_method(
        &mut self,
        b: &Builder,
        m: &syn::ExprMethodCall,
        method: &str,
    ) -> Val {
        if method == "send" || method == "send_with" {
            return self.execute(b.clone(), m);
        }
        let mut nb = b.clone();
        let arg = |i: usize| m.args.iter().nth(i);
        let lit = |i: usize| arg(i).and_then(str_lit);
        match method {
            "table_name" | "set_table_name" => {
                if let Some(a) = arg(0) {
                    nb.table = self.table_ref(a);
                }
            }
            "key" | "item" | "expression_attribute_values" => {
                let name = lit(0).unwrap_or_else(|| arg(0).map(text_of).unwrap_or_default());
                let val = arg(1).map(|a| self.expr(a)).unwrap_or_default();
                let part = Part {
                    name,
                    val: val.plain(),
                    text: arg(1).map(text_of).unwrap_or_default(),
                };
                match method {
                    "key" => nb.key.push(part),
                    "item" => nb.item.push(part),
                    _ => nb.values.push(part),
                }
            }
            "set_key" => {
                nb.key_whole = Some(arg(0).map(|a| self.expr(a).plain()).unwrap_or_default())
            }
            "set_item" => {
                let a = arg(0);
                nb.item_whole = Some(Part {
                    name: "*".into(),
                    val: a.map(|a| self.expr(a).plain()).unwrap_or_default(),
                    text: a.map(text_of).unwrap_or_default(),
                })
            }
            "set_expression_attribute_values" => {
                nb.values_whole = Some(arg(0).map(|a| self.expr(a).plain()).unwrap_or_default())
            }
            "expression_attribute_names" => {
                if let (Some(k), Some(v)) = (lit(0), lit(1)) {
                    nb.names.push((k, v));
                }
            }
            "condition_expression" | "set_condition_expression" => {
                nb.condition = match arg(0).map(strip) {
                    Some(Expr::Path(p)) if p.path.is_ident("None") => Cond::ExplicitNone,
                    // `set_condition_expression(cond)` where `cond` is `None` on some path: on
                    // that path the write has no condition.
                    Some(a) if method == "set_condition_expression" && self.expr(a).maybe_none => {
                        Cond::ExplicitNone
                    }
                    Some(a) => Cond::Given(self.text_arg(a)),
                    None => Cond::Absent,
                };
            }
            "update_expression" | "set_update_expression" => {
                nb.update = arg(0).map(|a| self.text_arg(a));
            }
            "put" | "update" | "delete" | "condition_check" | "transact_items"
            | "set_transact_items" => {
                for a in m.args.iter() {
                    let v = self.expr(unwrap_some(a));
                    if v.builder.is_none() && v.members.is_empty() {
                        // A parameter (`transact_items(item)` in a generic wrapper): the
                        // caller's builder stands in when the call is composed.
                        nb.param_members.extend(v.params());
                    }
                    if let Some(x) = v.builder {
                        push_member(&mut nb, *x);
                    }
                    for x in v.members {
                        push_member(&mut nb, x);
                    }
                }
            }
            // The legacy API: `attribute_updates(name, AttributeValueUpdate { value, action })`
            // (`Put` sets the value as given, `Add` adds to it atomically) and `expected`.
            "attribute_updates" => {
                if let (Some(name), Some(a)) = (lit(0), arg(1)) {
                    let text = text_of(a);
                    let verb = if text.contains("AttributeAction::Add") {
                        "ADD"
                    } else if text.contains("AttributeAction::Delete") {
                        "REMOVE"
                    } else {
                        "SET"
                    };
                    let val = self.expr(a);
                    nb.legacy_updates.push((verb, name.clone()));
                    nb.values.push(Part {
                        name: format!(":{name}"),
                        val: val.plain(),
                        text,
                    });
                }
            }
            "set_attribute_updates" => {
                nb.update = Some(Text::Dynamic("attribute_updates".into()));
                nb.values_whole = Some(arg(0).map(|a| self.expr(a).plain()).unwrap_or_default());
            }
            "expected" | "set_expected" => {
                let clause = match (lit(0), arg(1)) {
                    (Some(name), Some(a)) => {
                        let text = text_of(a);
                        self.expr(a);
                        if text.contains("exists(false)") {
                            format!("attribute_not_exists({name})")
                        } else if text.contains("value(") || text.contains("attribute_value_list") {
                            format!("{name} = :{name}_expected")
                        } else {
                            format!("attribute_exists({name})")
                        }
                    }
                    _ => {
                        self.exprs(&m.args);
                        "expected".into()
                    }
                };
                if matches!(nb.condition, Cond::Absent) || !nb.legacy_expected.is_empty() {
                    nb.legacy_expected.push(clause);
                    let all = nb.legacy_expected.join(" AND ");
                    nb.condition = Cond::Given(if method == "set_expected" {
                        Text::Dynamic(all)
                    } else {
                        Text::Literal(all)
                    });
                }
            }
            "build" => {}
            "index_name" | "set_index_name" => {
                nb.index = lit(0);
                let v = self.exprs(&m.args);
                nb.other.join(&v.plain());
            }
            "key_condition_expression"
            | "set_key_condition_expression"
            | "filter_expression"
            | "set_filter_expression" => {
                let selects = arg(0).map(|a| self.text_arg(a));
                // A key condition says more than a filter beside it.
                if method.contains("key_condition") || nb.selects.is_none() {
                    nb.selects = selects;
                }
            }
            "request_items" if nb.kind == OpKind::BatchWriteItem => {
                if let Some(a) = arg(0) {
                    nb.table = self.table_ref(a);
                }
                let v = arg(1).map(|a| self.expr(a)).unwrap_or_default();
                nb.other.join(&v.plain());
            }
            _ => {
                let v = self.exprs(&m.args);
                nb.other.join(&v.plain());
                for x in v.members {
                    push_member(&mut nb, x);
                }
            }
        }
        Val {
            builder: Some(Box::new(nb)),
            ..Val::default()
        }
    }

    /// An error mapper that tells a failed condition apart: a closure that mentions it, or a
    /// crate function that does.
    pub(super) fn tells_ccf_apart(&self, a: &Expr) -> bool {
        match strip(a) {
            Expr::Path(p) => p.path.segments.last().is_some_and(|s| {
                let g = self.env_.global;
                g.by_name
                    .get(&s.ident.to_string())
                    .is_some_and(|ids| ids.iter().any(|id| g.metas[*id].mentions_ccf))
            }),
            other => crate::source::index::mentions_ccf(&text_of(other)),
        }
    }

    /// The request is sent: record the operation with what surrounds it.
    pub(super) fn execute(&mut self, b: Builder, m: &syn::ExprMethodCall) -> Val {
        let handling = self.handling_hint.take().unwrap_or(Handling::Bound);
        let ccf_hint = std::mem::take(&mut self.ccf_hint);
        let id = self.ops.len();
        let send_span = self.span(m);
        // A request built in another function (`client.put_item(token.to_input())`) is sent
        // here: the operation is where it is sent.
        let built_here = b.start.file == send_span.file
            && (b.start.line, b.start.column) <= (send_span.line, send_span.column)
            && b.start.line >= self.meta.span.line
            && b.start.line <= self.meta.span.end_line;
        let span = if built_here {
            Span {
                file: b.start.file.clone(),
                line: b.start.line,
                column: b.start.column,
                end_line: send_span.end_line,
                end_column: send_span.end_column,
            }
        } else {
            send_span
        };
        let result = if b.kind.is_read() {
            Val {
                raw: true,
                ..Val::of(Origin::Read(id))
            }
        } else {
            Val::default()
        };
        self.ops.push(Op {
            id,
            req: b,
            span,
            via: vec![],
            guards: self.guards.clone(),
            loops: self.loops.clone(),
            handling,
            ccf_handled: self.meta.mentions_ccf || ccf_hint,
            function: self.meta.qual.clone(),
            result: result.clone(),
        });
        result
    }

    /// A request given as a struct literal (rusoto's `PutItemInput { .. }`, `Put { .. }`).
    pub(super) fn struct_builder(
        &mut self,
        kind: OpKind,
        client: String,
        s: &syn::ExprStruct,
    ) -> Builder {
        let start = s
            .path
            .segments
            .first()
            .map(|x| x.ident.span())
            .unwrap_or_else(|| s.brace_token.span.open());
        let mut b = Builder::new(kind, client, self.span(&Keyword(start)));
        for f in &s.fields {
            let syn::Member::Named(name) = &f.member else {
                continue;
            };
            let value = &f.expr;
            match name.to_string().as_str() {
                "table_name" => b.table = self.table_ref(value),
                "key" => b.key_whole = Some(self.expr(value).plain()),
                "item" => {
                    b.item_whole = Some(Part {
                        name: "*".into(),
                        val: self.expr(value).plain(),
                        text: text_of(value),
                    })
                }
                "condition_expression" => {
                    b.condition = match strip(value) {
                        Expr::Path(p) if p.path.is_ident("None") => Cond::ExplicitNone,
                        other => Cond::Given(self.text_arg(other)),
                    }
                }
                "update_expression" => b.update = Some(self.text_arg(value)),
                "index_name" => b.index = str_lit(unwrap_some(value)),
                "key_condition_expression" => b.selects = Some(self.text_arg(value)),
                "filter_expression" if b.selects.is_none() => {
                    b.selects = Some(self.text_arg(value))
                }
                // rusoto's legacy API: a map of updates, a map of expectations.
                "attribute_updates" => {
                    b.update = Some(Text::Dynamic("attribute_updates".into()));
                    b.values_whole = Some(self.expr(value).plain());
                }
                "expected" => {
                    if !text_of(value).starts_with("None") && matches!(b.condition, Cond::Absent) {
                        b.condition = Cond::Given(Text::Dynamic("expected".into()));
                    }
                }
                "expression_attribute_values" => b.values_whole = Some(self.expr(value).plain()),
                "put" | "update" | "delete" | "condition_check" | "transact_items" => {
                    let v = self.expr(value);
                    if let Some(x) = v.builder {
                        push_member(&mut b, *x);
                    }
                    for x in v.members {
                        push_member(&mut b, x);
                    }
                }
                _ => {
                    let v = self.expr(value);
                    b.other.join(&v.plain());
                    for x in v.members {
                        push_member(&mut b, x);
                    }
                }
            }
        }
        b
    }

    pub(super) fn table_ref(&mut self, a: &Expr) -> TableRef {
        let a = unwrap_some(a);
        if let Some(s) = str_lit(a) {
            return TableRef::Literal(s);
        }
        if let Expr::Path(p) = strip(a) {
            let name = text_of(p);
            if name
                .chars()
                .all(|c| c.is_ascii_uppercase() || c == '_' || c.is_ascii_digit() || c == ':')
            {
                let short = name.rsplit("::").next().unwrap_or(&name).to_string();
                let value = self.env_.global.consts.get(&short).cloned();
                return TableRef::Const(short, value);
            }
        }
        TableRef::Expr(text_of(strip(a)))
    }

    pub(super) fn text_arg(&mut self, a: &Expr) -> Text {
        let a = unwrap_some(a);
        if let Some(s) = str_lit(a) {
            return Text::Literal(s);
        }
        if let Expr::Path(p) = strip(a) {
            if let Some(v) = self.env_.global.consts.get(&text_of(p)) {
                return Text::Literal(v.clone());
            }
        }
        // `format!("SET {} = :v", attr)`: the template says enough for the analysis.
        if let Expr::Macro(m) = strip(a) {
            if m.mac.path.is_ident("format") {
                if let Ok(lit) = m.mac.parse_body_with(|input: syn::parse::ParseStream| {
                    let l: syn::LitStr = input.parse()?;
                    let _: proc_macro2::TokenStream = input.parse()?;
                    Ok(l)
                }) {
                    return Text::Dynamic(lit.value());
                }
            }
        }
        Text::Dynamic(text_of(a))
    }
}

pub(super) fn push_member(b: &mut Builder, m: Builder) {
    if m.kind == OpKind::TxItem {
        b.members.extend(m.members);
        b.param_members.extend(m.param_members);
    } else {
        b.members.push(m);
    }
}

pub(super) fn unwrap_some(a: &Expr) -> &Expr {
    match strip(a) {
        Expr::Call(c) if c.args.len() == 1 && path_ends(&c.func, &["Some"]) => &c.args[0],
        other => other,
    }
}
