//! Edits on the user's own file: a fix applied to the write's builder chain where it stands
//! (the condition added, `SET x = :v` made atomic, a put turned into an update) and a failed
//! condition answered the way the handler answers a conflict. Only calls of the chain and its
//! error mapping change; the text around them stays as written.

use std::sync::Arc;

use syn::visit::Visit;
use syn::{Expr, ExprMethodCall};

use super::{Arg, Conflict, UpdateSpec};
use crate::model::Edit;
use crate::source::facts::Span;
use crate::source::span::{text_of, Ends};

/// A position in a file: 1-based line, 1-based column in characters.
type Pos = (u32, u32);

/// One `.name(args)` of a builder chain.
struct Call {
    name: String,
    /// Source text of each argument, as written.
    args: Vec<String>,
    /// From the `.` to the closing `)`.
    start: Pos,
    end: Pos,
    /// The method name alone (to rename `put_item` to `update_item`).
    name_span: (Pos, Pos),
}

impl Call {
    /// The string literal the call starts with (`":b"` in `.expression_attribute_values(":b", ..)`).
    fn first_literal(&self) -> Option<String> {
        let a = self.args.first()?;
        match syn::parse_str::<syn::LitStr>(a) {
            Ok(l) => Some(l.value()),
            Err(_) => None,
        }
    }
}

/// How the result of `.send().await` is handled right after it.
enum After {
    /// `.map_err(f)`: the span of `f`.
    MapErr(Pos, Pos),
    /// `?` straight after `.await`: the position of `?`.
    Try(Pos),
    /// `match <send>.await { .. }` in the function's own body: where its first arm starts, and
    /// whether an arm already answers a failed condition.
    Match {
        first: Pos,
        handled: bool,
    },
    Other,
}

/// The write's builder chain as written in the file, and what surrounds it.
struct Chain {
    /// Receiver first; the last is `.send()`.
    calls: Vec<Call>,
    after: After,
    /// The enclosing function: its span and the error type of its `Result`.
    fn_span: Span,
    error_ty: Option<String>,
    /// The values the function answers with: `Err(x)` texts.
    err_values: Vec<String>,
}

/// Where the edits of a fix come from: the file and the write.
pub struct Site<'a> {
    pub path: &'a Arc<str>,
    pub text: &'a str,
    pub write: &'a Span,
}

struct Finder<'f> {
    file: &'f Arc<str>,
    text: &'f str,
    write: &'f Span,
    /// The enclosing function of what is being visited.
    func: Vec<(Span, Option<String>, &'f syn::Block)>,
    /// Closures and async blocks around what is visited, inside its function: `return` there
    /// does not leave the function.
    nested: usize,
    best: Option<Chain>,
}

fn pos(s: proc_macro2::Span) -> Pos {
    let p = s.start();
    (p.line as u32, p.column as u32 + 1)
}

fn end_pos(s: proc_macro2::Span) -> Pos {
    let p = s.end();
    (p.line as u32, p.column as u32 + 1)
}

/// `Result<T, E>` gives `E`.
fn error_type(sig: &syn::Signature) -> Option<String> {
    let syn::ReturnType::Type(_, ty) = &sig.output else {
        return None;
    };
    let syn::Type::Path(p) = ty.as_ref() else {
        return None;
    };
    let last = p.path.segments.last()?;
    if last.ident != "Result" {
        return None;
    }
    let syn::PathArguments::AngleBracketed(a) = &last.arguments else {
        return None;
    };
    match a.args.iter().nth(1)? {
        syn::GenericArgument::Type(t) => Some(text_of(t)),
        _ => None,
    }
}

/// `Err(x)` values a function body answers with that could be answered elsewhere in it too
/// ([`closed`]).
fn err_values(block: &syn::Block) -> Vec<String> {
    struct V(Vec<String>);
    impl<'a> Visit<'a> for V {
        fn visit_expr_call(&mut self, c: &'a syn::ExprCall) {
            if let Expr::Path(p) = c.func.as_ref() {
                if p.path.is_ident("Err") && c.args.len() == 1 && closed(&c.args[0]) {
                    self.0.push(text_of(&c.args[0]));
                }
            }
            syn::visit::visit_expr_call(self, c);
        }
        fn visit_expr_closure(&mut self, _: &'a syn::ExprClosure) {}
    }
    let mut v = V(vec![]);
    v.visit_block(block);
    v.0
}

impl<'f> Finder<'f> {
    /// Entering a function: what is visited now is inside it.
    fn enter(&mut self, sig: &syn::Signature, block: &'f syn::Block) {
        let span = Span {
            file: self.file.clone(),
            line: pos(sig.fn_token.span).0,
            column: 1,
            end_line: end_pos(block.brace_token.span.close()).0,
            end_column: u32::MAX,
        };
        self.func.push((span, error_type(sig), block));
    }

    /// Visit `f` as inside a closure or async block.
    fn nested(&mut self, f: impl FnOnce(&mut Self)) {
        self.nested += 1;
        f(self);
        self.nested -= 1;
    }

    fn chain(&self, send: &ExprMethodCall) -> Option<Vec<Call>> {
        let mut calls = vec![];
        let mut cur = send;
        loop {
            calls.push(Call {
                name: cur.method.to_string(),
                args: cur.args.iter().map(|a| self.source(a)).collect(),
                start: pos(cur.dot_token.span),
                end: end_pos(cur.paren_token.span.close()),
                name_span: (pos(cur.method.span()), end_pos(cur.method.span())),
            });
            match cur.receiver.as_ref() {
                Expr::MethodCall(m) => cur = m,
                _ => break,
            }
        }
        calls.reverse();
        Some(calls)
    }

    /// The text of a node as the user wrote it (their spacing), via its span.
    fn source(&self, e: &Expr) -> String {
        let s = e.span_in(self.file);
        slice(self.text, (s.line, s.column), (s.end_line, s.end_column))
    }

    fn consider(&mut self, send: &ExprMethodCall, after: After) {
        let s = Expr::MethodCall(send.clone()).span_in(self.file);
        let w = self.write;
        if (s.line, s.column) != (w.line, w.column) || s.end_line < w.end_line {
            return;
        }
        if self
            .best
            .as_ref()
            .is_some_and(|b| !matches!(b.after, After::Other) || matches!(after, After::Other))
        {
            return;
        }
        let Some((fn_span, error_ty, body)) = self.func.last() else {
            return;
        };
        let Some(calls) = self.chain(send) else {
            return;
        };
        self.best = Some(Chain {
            calls,
            after,
            fn_span: fn_span.clone(),
            error_ty: error_ty.clone(),
            err_values: err_values(body),
        });
    }
}

fn as_send(e: &Expr) -> Option<&ExprMethodCall> {
    match e {
        Expr::Await(a) => match a.base.as_ref() {
            Expr::MethodCall(m) if m.method == "send" => Some(m),
            _ => None,
        },
        _ => None,
    }
}

impl<'a> Visit<'a> for Finder<'a> {
    fn visit_item_fn(&mut self, f: &'a syn::ItemFn) {
        self.enter(&f.sig, &f.block);
        syn::visit::visit_item_fn(self, f);
        self.func.pop();
    }

    fn visit_impl_item_fn(&mut self, f: &'a syn::ImplItemFn) {
        self.enter(&f.sig, &f.block);
        syn::visit::visit_impl_item_fn(self, f);
        self.func.pop();
    }

    fn visit_expr_method_call(&mut self, m: &'a ExprMethodCall) {
        if m.method == "send" {
            self.consider(m, After::Other);
        } else if m.method == "map_err" && m.args.len() == 1 {
            if let Some(send) = as_send(&m.receiver) {
                let a = m.args[0].span_in(self.file);
                self.consider(
                    send,
                    After::MapErr((a.line, a.column), (a.end_line, a.end_column)),
                );
            }
        }
        syn::visit::visit_expr_method_call(self, m);
    }

    fn visit_expr_closure(&mut self, c: &'a syn::ExprClosure) {
        self.nested(|v| syn::visit::visit_expr_closure(v, c));
    }

    fn visit_expr_async(&mut self, a: &'a syn::ExprAsync) {
        self.nested(|v| syn::visit::visit_expr_async(v, a));
    }

    fn visit_expr_match(&mut self, m: &'a syn::ExprMatch) {
        if let (Some(send), Some(first), 0) = (as_send(&m.expr), m.arms.first(), self.nested) {
            use syn::spanned::Spanned;
            let handled = m.arms.iter().any(|a| {
                let t = text_of(a).to_ascii_lowercase();
                t.contains("conditional_check_failed") || t.contains("conditionalcheckfailed")
            });
            let first = match first.attrs.first() {
                Some(a) => pos(a.pound_token.span),
                None => pos(first.pat.span()),
            };
            self.consider(send, After::Match { first, handled });
        }
        syn::visit::visit_expr_match(self, m);
    }

    fn visit_expr_try(&mut self, t: &'a syn::ExprTry) {
        if let Some(send) = as_send(&t.expr) {
            self.consider(send, After::Try(pos(t.question_token.span)));
        }
        syn::visit::visit_expr_try(self, t);
    }
}

fn find_chain(site: &Site) -> Result<Chain, String> {
    let file =
        syn::parse_file(site.text).map_err(|e| format!("the file does not parse as Rust ({e})"))?;
    let mut f = Finder {
        file: site.path,
        text: site.text,
        write: site.write,
        func: vec![],
        nested: 0,
        best: None,
    };
    f.visit_file(&file);
    let chain = f.best.ok_or_else(|| {
        "the request is not one chain of calls ending in `.send()` (it is assembled across \
         statements, or as an input struct)"
            .to_string()
    })?;
    // Edits go into the write's own builder: a member of a transaction or batch is built
    // apart, and the chain sent is not the one to change.
    const SINGLE: &[&str] = &["put_item", "update_item", "delete_item"];
    if !chain
        .calls
        .iter()
        .any(|c| SINGLE.contains(&c.name.as_str()))
    {
        return Err(format!(
            "the request sent is `{}`, not the write's own put, update or delete",
            chain
                .calls
                .iter()
                .find(|c| c.name != "send")
                .map(|c| c.name.as_str())
                .unwrap_or("send")
        ));
    }
    Ok(chain)
}

/// Byte offset of a position in `text`.
pub fn offset(text: &str, (line, column): Pos) -> Option<usize> {
    let mut start = 0;
    for _ in 1..line {
        start += text.get(start..)?.find('\n')? + 1;
    }
    let rest = text.get(start..)?;
    let mut chars = rest.char_indices();
    for _ in 1..column {
        let (_, c) = chars.next()?;
        if c == '\n' {
            return None;
        }
    }
    Some(start + chars.next().map(|(i, _)| i).unwrap_or(rest.len()))
}

fn slice(text: &str, from: Pos, to: Pos) -> String {
    match (offset(text, from), offset(text, to)) {
        (Some(a), Some(b)) if a <= b => text[a..b].to_string(),
        _ => String::new(),
    }
}

/// Apply edits that do not overlap to `text`; each must still find the text it was made for.
pub fn apply(text: &str, edits: &[&Edit]) -> Result<String, String> {
    let mut spans = vec![];
    for e in edits {
        let a = offset(text, (e.line, e.column)).ok_or("an edit starts outside the file")?;
        let b = offset(text, (e.end_line, e.end_column)).ok_or("an edit ends outside the file")?;
        if a > b || text[a..b] != e.old_text {
            return Err(format!(
                "line {}: the file no longer holds the text the edit was made for",
                e.line
            ));
        }
        spans.push((a, b, e.new_text.as_str()));
    }
    spans.sort_by_key(|s| (s.0, s.1));
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for (a, b, new) in spans {
        if a < at {
            return Err("two edits overlap".into());
        }
        out.push_str(&text[at..a]);
        out.push_str(new);
        at = b;
    }
    out.push_str(&text[at..]);
    Ok(out)
}

/// Whether two sets of edits touch the same text.
pub fn overlap(a: &[Edit], b: &[Edit]) -> bool {
    let r = |e: &Edit| ((e.line, e.column), (e.end_line, e.end_column));
    a.iter().any(|x| {
        b.iter().any(|y| {
            let (xs, xe) = r(x);
            let (ys, ye) = r(y);
            xs < ye && ys < xe || xs == ys
        })
    })
}

/// How a file ends its lines and what one level of its indentation is: the text an edit
/// brings in is laid out the same way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Style {
    pub eol: &'static str,
    pub indent: String,
}

impl Style {
    /// The file's own: CRLF when most of its line ends are, tabs when most of its indented
    /// lines start with one, else the width its indentation most often grows by (4 when it
    /// never does).
    pub fn of(text: &str) -> Style {
        let crlf = text.matches("\r\n").count();
        let lf = text.matches('\n').count() - crlf;
        let (mut tabs, mut spaces) = (0usize, 0usize);
        // How often each step in by spaces (1..=8) occurs between consecutive lines.
        let mut steps = [0usize; 9];
        let mut last = 0usize;
        for line in text.split('\n') {
            let body = line.trim_start_matches([' ', '\t']);
            if body.trim().is_empty() {
                continue;
            }
            let lead = &line[..line.len() - body.len()];
            match lead.chars().next() {
                Some('\t') => tabs += 1,
                Some(_) => spaces += 1,
                None => {}
            }
            let width = if lead.contains('\t') {
                last
            } else {
                lead.len()
            };
            if width > last && width - last <= 8 {
                steps[width - last] += 1;
            }
            last = width;
        }
        let indent = if tabs > spaces {
            "\t".to_string()
        } else {
            let best = (1..=8)
                .filter(|w| steps[*w] > 0)
                .max_by_key(|w| (steps[*w], *w == 4))
                .unwrap_or(4);
            " ".repeat(best)
        };
        Style {
            eol: if crlf > lf { "\r\n" } else { "\n" },
            indent,
        }
    }
}

struct Builder<'a> {
    site: &'a Site<'a>,
    style: Style,
    edits: Vec<Edit>,
}

impl<'a> Builder<'a> {
    fn new(site: &'a Site<'a>) -> Builder<'a> {
        Builder {
            site,
            style: Style::of(site.text),
            edits: vec![],
        }
    }
}

impl Builder<'_> {
    fn replace(&mut self, from: Pos, to: Pos, new_text: String) {
        let old_text = slice(self.site.text, from, to);
        if old_text == new_text {
            return;
        }
        self.edits.push(Edit {
            file: self.site.path.to_string(),
            line: from.0,
            column: from.1,
            end_line: to.0,
            end_column: to.1,
            new_text,
            old_text,
        });
    }

    /// Insert `calls` before `call`: each on its own line, indented like it, when it starts
    /// its line; else on its line.
    fn insert_before(&mut self, call: &Call, calls: &[String]) {
        if calls.is_empty() {
            return;
        }
        let line = line_text(self.site.text, call.start.0);
        let indent: String = line
            .chars()
            .take((call.start.1 as usize).saturating_sub(1))
            .collect();
        if indent.trim().is_empty() {
            let eol = self.style.eol;
            let text = calls.iter().map(|t| format!("{indent}{t}{eol}")).collect();
            self.replace((call.start.0, 1), (call.start.0, 1), text);
        } else {
            self.replace(call.start, call.start, calls.concat());
        }
    }

    /// Remove a call; with its whole line when it stands alone on it.
    fn remove(&mut self, c: &Call) {
        let line = line_text(self.site.text, c.start.0);
        let before: String = line
            .chars()
            .take((c.start.1 as usize).saturating_sub(1))
            .collect();
        let after: String = line
            .chars()
            .skip((c.end.1 as usize).saturating_sub(1))
            .collect();
        if c.start.0 == c.end.0 && before.trim().is_empty() && after.trim().is_empty() {
            self.replace((c.start.0, 1), (c.start.0 + 1, 1), String::new());
        } else {
            self.replace(c.start, c.end, String::new());
        }
    }
}

/// Line `line` (1-based) of `text`; empty past the end and for line 0, which spans without
/// a location carry.
fn line_text(text: &str, line: u32) -> &str {
    let Some(at) = (line as usize).checked_sub(1) else {
        return "";
    };
    text.split('\n').nth(at).unwrap_or("")
}

/// What tells two calls of a chain apart: the method, and for names and values the
/// placeholder they define.
fn call_key(name: &str, literal: impl FnOnce() -> Option<String>) -> (&str, Option<String>) {
    let per_placeholder = matches!(
        name,
        "expression_attribute_names" | "expression_attribute_values"
    );
    (name, if per_placeholder { literal() } else { None })
}

/// The request the fix asks for, as calls to put in the chain: (method, its literal, text).
fn wanted_calls(
    spec: &UpdateSpec,
    av: &str,
) -> Result<Vec<(String, Option<String>, String)>, String> {
    let mut out = vec![(
        "update_expression".to_string(),
        None,
        format!(".update_expression({:?})", spec.update),
    )];
    if let Some(c) = &spec.condition {
        out.push((
            "condition_expression".into(),
            None,
            format!(".condition_expression({c:?})"),
        ));
    }
    for (n, attr) in &spec.names {
        out.push((
            "expression_attribute_names".into(),
            Some(n.clone()),
            format!(".expression_attribute_names({n:?}, {attr:?})"),
        ));
    }
    for (ph, arg) in &spec.values {
        let value = match arg {
            Arg::Const(c) => c.replace("AttributeValue::", av),
            Arg::Param(..) => spec
                .code
                .iter()
                .find(|(p, _, _)| p == ph)
                .map(|(_, code, _)| code.replace("AttributeValue::", av))
                .ok_or_else(|| {
                    format!("the value of `{ph}` is not an expression of the handler's scope")
                })?,
        };
        out.push((
            "expression_attribute_values".into(),
            Some(ph.clone()),
            format!(".expression_attribute_values({ph:?}, {value})"),
        ));
    }
    Ok(out)
}

/// The test for a failed condition on an item operation's error.
pub const CCF: &str = "is_conditional_check_failed_exception";

/// Methods of a chain whose meaning the fix rewrites.
const EXPRESSION_CALLS: &[&str] = &[
    "update_expression",
    "condition_expression",
    "expression_attribute_names",
    "expression_attribute_values",
];

/// What is in the way of editing a chain: a whole map set at once, or a method the rewrite
/// does not know the meaning of on a put it turns into an update.
fn obstacle(calls: &[Call], from_put: bool) -> Option<String> {
    const PUT_CALLS: &[&str] = &[
        "put_item",
        "table_name",
        "item",
        "send",
        "return_consumed_capacity",
    ];
    calls.iter().find_map(|c| {
        if c.name.starts_with("set_") {
            return Some(format!("the request is built with `{}`", c.name));
        }
        let root = calls.first().is_some_and(|f| std::ptr::eq(f, c));
        if from_put
            && !root
            && !PUT_CALLS.contains(&c.name.as_str())
            && !EXPRESSION_CALLS.contains(&c.name.as_str())
        {
            return Some(format!("the put also calls `{}`", c.name));
        }
        None
    })
}

/// The edits that make the write the one conditional, atomic `update_item` of `spec`. A put
/// becomes an update of the same item (its key attributes move to `.key`).
pub fn update_edits(site: &Site, spec: &UpdateSpec) -> Result<Vec<Edit>, String> {
    let chain = find_chain(site)?;
    in_scope(spec, &chain)?;
    let op = chain
        .calls
        .iter()
        .find(|c| c.name == "update_item" || c.name == "put_item")
        .ok_or("the chain does not start an update_item or put_item")?;
    let from_put = op.name == "put_item";
    if let Some(why) = obstacle(&chain.calls, from_put) {
        return Err(why);
    }
    let av = attribute_value_path(site.text);
    let wanted = wanted_calls(spec, &av)?;
    let mut b = Builder::new(site);
    if from_put {
        if spec.target.key_unknown || spec.target.key_guessed {
            return Err("the put does not show which attributes are the item's key".into());
        }
        b.replace(op.name_span.0, op.name_span.1, "update_item".into());
    }
    let send = chain.calls.last().ok_or("empty chain")?;
    let mut placed: Vec<usize> = vec![];
    for c in &chain.calls {
        if from_put && c.name == "item" {
            let is_key = c
                .first_literal()
                .is_some_and(|k| spec.target.key.iter().any(|(a, _, _)| *a == k));
            if is_key {
                b.replace(c.name_span.0, c.name_span.1, "key".into());
            } else {
                b.remove(c);
            }
            continue;
        }
        if !EXPRESSION_CALLS.contains(&c.name.as_str()) {
            continue;
        }
        let key = call_key(&c.name, || c.first_literal());
        match wanted
            .iter()
            .position(|(m, l, _)| (m.as_str(), l.clone()) == (key.0, key.1.clone()))
        {
            Some(i) if !placed.contains(&i) => {
                placed.push(i);
                let w = &wanted[i].2;
                if squeeze(&format!(".{}({})", c.name, c.args.join(", "))) != squeeze(w) {
                    b.replace(c.start, c.end, w.clone());
                }
            }
            _ => b.remove(c),
        }
    }
    let rest: Vec<String> = wanted
        .iter()
        .enumerate()
        .filter(|(i, _)| !placed.contains(i))
        .map(|(_, (_, _, t))| t.clone())
        .collect();
    b.insert_before(send, &rest);
    // A write that had no condition cannot have told a failed one apart.
    let had_condition = chain.calls.iter().any(|c| c.name == "condition_expression");
    if spec.condition.is_some() && !had_condition {
        answer_conflict(&mut b, &chain, spec.conflict, CCF)?;
    }
    Ok(b.edits)
}

/// Edits that answer a failed condition of the write with the handler's conflict.
pub fn conflict_edits(site: &Site, conflict: Conflict, check: &str) -> Result<Vec<Edit>, String> {
    let chain = find_chain(site)?;
    let mut b = Builder::new(site);
    answer_conflict(&mut b, &chain, conflict, check)?;
    Ok(b.edits)
}

/// Edits that add `condition` (with its names) to a put.
pub fn put_condition_edits(
    site: &Site,
    condition: &str,
    names: &[(String, String)],
    conflict: Conflict,
) -> Result<Vec<Edit>, String> {
    let chain = find_chain(site)?;
    if let Some(why) = obstacle(&chain.calls, false) {
        return Err(why);
    }
    if chain.calls.iter().any(|c| c.name == "condition_expression") {
        return Err("the put already has a condition".into());
    }
    let send = chain.calls.last().ok_or("empty chain")?;
    let mut calls = vec![format!(".condition_expression({condition:?})")];
    for (n, a) in names {
        if !chain.calls.iter().any(|c| {
            c.name == "expression_attribute_names" && c.first_literal().as_deref() == Some(n)
        }) {
            calls.push(format!(".expression_attribute_names({n:?}, {a:?})"));
        }
    }
    let mut b = Builder::new(site);
    b.insert_before(send, &calls);
    answer_conflict(&mut b, &chain, conflict, CCF)?;
    Ok(b.edits)
}

/// `AttributeValue::` as the file can name it.
fn attribute_value_path(text: &str) -> String {
    let imported = text
        .lines()
        .any(|l| l.trim_start().starts_with("use ") && l.contains("AttributeValue"))
        || text.contains("use aws_sdk_dynamodb::types::{") && text.contains("AttributeValue");
    if imported {
        "AttributeValue::".into()
    } else {
        "aws_sdk_dynamodb::types::AttributeValue::".into()
    }
}

/// Every value the edits send must be an expression the handler wrote before the write.
fn in_scope(spec: &UpdateSpec, chain: &Chain) -> Result<(), String> {
    for (ph, code, at) in &spec.code {
        let Some(at) = at else { continue };
        let f = &chain.fn_span;
        let inside = at.file == f.file && at.line >= f.line && at.line <= f.end_line;
        let before = chain.calls.last().is_some_and(|s| at.line <= s.start.0);
        if !inside || !before {
            return Err(format!(
                "`{code}` (for `{ph}`) is computed outside the handler that writes"
            ));
        }
    }
    Ok(())
}

/// `|e| if test { conflict } else { other }`, laid out as rustfmt would below a line indented
/// by `indent`, in the file's style.
fn closure(style: &Style, indent: &str, test: &str, conflict: &str, other: &str) -> String {
    let (n, one) = (style.eol, &style.indent);
    let two = one.repeat(2);
    format!(
        "|e| {{{n}{indent}{one}if {test} {{{n}{indent}{two}{conflict}{n}{indent}{one}}} else {{{n}{indent}{two}{other}{n}{indent}{one}}}{n}{indent}}}"
    )
}

fn indent_of(text: &str, line: u32) -> String {
    line_text(text, line)
        .chars()
        .take_while(|c| *c == ' ' || *c == '\t')
        .collect()
}

fn squeeze(s: &str) -> String {
    s.chars().filter(|c| !c.is_whitespace()).collect()
}

/// The handler's own answer to a conflict, of its error type: one it already gives
/// (`Err(StatusCode::CONFLICT)`), or the status itself when it answers with a `StatusCode`.
fn conflict_value(chain: &Chain, conflict: Conflict) -> Option<String> {
    let (status, word) = match conflict {
        Conflict::Conflict => ("CONFLICT", "conflict"),
        Conflict::PreconditionFailed => ("PRECONDITION_FAILED", "precondition"),
    };
    if let Some(v) = chain.err_values.iter().find(|v| {
        v.to_ascii_lowercase()
            .replace('_', "")
            .contains(&word.replace('_', ""))
    }) {
        return Some(v.clone());
    }
    let ty = chain.error_ty.as_deref()?;
    if ty.ends_with("StatusCode") {
        return Some(format!("{ty}::{status}"));
    }
    // `(StatusCode, String)` and `(StatusCode, &str)`.
    let inner = ty.strip_prefix('(')?.strip_suffix(')')?;
    let (code, msg) = inner.split_once(',')?;
    let code = code.trim();
    if !code.ends_with("StatusCode") {
        return None;
    }
    let text = "another request changed the item first";
    match msg.trim() {
        "String" => Some(format!("({code}::{status}, {text:?}.to_string())")),
        m if m.starts_with('&') && m.ends_with("str") => {
            Some(format!("({code}::{status}, {text:?})"))
        }
        _ => None,
    }
}

/// Whether an answer can be moved to another place in its function: it names no local
/// variable (`AppError::Conflict`, `StatusCode::CONFLICT`, `ApiError::conflict("taken")`,
/// `anyhow!("conflict")`), and is no block, `match` or `if` built around the place it came from.
fn closed(v: &Expr) -> bool {
    struct Open(bool);
    impl<'a> Visit<'a> for Open {
        fn visit_expr(&mut self, e: &'a Expr) {
            match e {
                Expr::Path(p) => {
                    let local = p.path.segments.len() == 1
                        && p.path.segments[0]
                            .ident
                            .to_string()
                            .starts_with(|c: char| c.is_lowercase() || c == '_');
                    self.0 |= local;
                }
                Expr::Macro(m) => {
                    // Tokens as written: a lowercase identifier, or a `{name}` in a format
                    // string, is a local.
                    for tok in m.mac.tokens.clone() {
                        self.0 |= match tok {
                            proc_macro2::TokenTree::Ident(i) => {
                                i.to_string().starts_with(|c: char| c.is_lowercase())
                            }
                            proc_macro2::TokenTree::Literal(l) => l
                                .to_string()
                                .split('{')
                                .skip(1)
                                .any(|s| s.starts_with(|c: char| c.is_lowercase() || c == '_')),
                            _ => false,
                        };
                    }
                }
                // A function's own name is no local; its arguments may be.
                Expr::Call(c) => {
                    if !matches!(c.func.as_ref(), Expr::Path(_)) {
                        self.visit_expr(&c.func);
                    }
                    c.args.iter().for_each(|a| self.visit_expr(a));
                }
                Expr::MethodCall(_)
                | Expr::Lit(_)
                | Expr::Struct(_)
                | Expr::Tuple(_)
                | Expr::Reference(_)
                | Expr::Paren(_) => syn::visit::visit_expr(self, e),
                _ => self.0 = true,
            }
        }
    }
    let mut o = Open(false);
    o.visit_expr(v);
    !o.0
}

/// Map the write's failed condition to the handler's conflict answer at `.send().await`. An
/// edit that cannot do so would turn a lost race into the handler's error path: none is made.
fn answer_conflict(
    b: &mut Builder,
    chain: &Chain,
    conflict: Conflict,
    check: &str,
) -> Result<(), String> {
    let test = format!("e.as_service_error().is_some_and(|s| s.{check}())");
    let value = conflict_value(chain, conflict);
    match (&chain.after, value) {
        (After::MapErr(from, to), Some(v)) => {
            let f = slice(b.site.text, *from, *to);
            if f.contains(check) {
                return Ok(());
            }
            let call = if syn::parse_str::<syn::Path>(&f).is_ok() {
                format!("{f}(e)")
            } else {
                format!("({f})(e)")
            };
            let i = indent_of(b.site.text, from.0);
            b.replace(*from, *to, closure(&b.style, &i, &test, &v, &call));
            Ok(())
        }
        (After::Try(at), Some(v)) => {
            let i = indent_of(b.site.text, at.0);
            let map = format!(".map_err({})", closure(&b.style, &i, &test, &v, "e.into()"));
            b.replace(*at, *at, map);
            Ok(())
        }
        (After::Match { handled: true, .. }, _) => Ok(()),
        (After::Match { first, .. }, Some(v)) => {
            // An arm ahead of the others: the failed condition leaves with the conflict answer.
            let i = indent_of(b.site.text, first.0);
            b.replace(
                *first,
                *first,
                format!("Err(e) if {test} => return Err({v}),{}{i}", b.style.eol),
            );
            Ok(())
        }
        (After::Other, _) => Err(
            "the result of `.send().await` is neither passed on with `?` nor matched in the \
             function's own body, so a failed condition cannot be answered in place"
                .into(),
        ),
        (_, None) => Err(format!(
            "the handler's answer to a conflict is not in the code (it fails with `{}`)",
            chain
                .error_ty
                .as_deref()
                .unwrap_or("an error type it does not name")
        )),
    }
}

/// The edits of one file as a unified diff (`a/` and `b/` prefixes, as `git apply` reads).
pub fn diff(path: &str, text: &str, edits: &[Edit]) -> Option<String> {
    let refs: Vec<&Edit> = edits.iter().filter(|e| e.file == path).collect();
    if refs.is_empty() {
        return None;
    }
    let new = apply(text, &refs).ok()?;
    Some(unified_diff(path, text, &new))
}

/// Lines end at `\n` only, as `git apply` reads them: a bare CR inside a line stays in it
/// (`similar`'s own line splitting ends a line there, which corrupts the patch).
pub fn unified_diff(path: &str, old: &str, new: &str) -> String {
    let a: Vec<&str> = old.split_inclusive('\n').collect();
    let b: Vec<&str> = new.split_inclusive('\n').collect();
    let diff = similar::TextDiff::configure().diff_slices(&a, &b);
    let mut out = String::new();
    for group in diff.grouped_ops(3) {
        let (Some(first), Some(last)) = (group.first(), group.last()) else {
            continue;
        };
        if out.is_empty() {
            out.push_str(&format!("--- a/{path}\n+++ b/{path}\n"));
        }
        let old = first.old_range().start..last.old_range().end;
        let new = first.new_range().start..last.new_range().end;
        out.push_str(&format!(
            "@@ -{} +{} @@\n",
            hunk_range(old),
            hunk_range(new)
        ));
        for op in &group {
            for change in diff.iter_changes(op) {
                out.push(match change.tag() {
                    similar::ChangeTag::Equal => ' ',
                    similar::ChangeTag::Delete => '-',
                    similar::ChangeTag::Insert => '+',
                });
                let line = change.value();
                out.push_str(line);
                if !line.ends_with('\n') {
                    out.push_str("\n\\ No newline at end of file\n");
                }
            }
        }
    }
    out
}

/// A hunk's line range as unified diffs write it: `start,count`, 1-based, `start` alone for
/// one line, and the line before for none.
fn hunk_range(r: std::ops::Range<usize>) -> String {
    match r.len() {
        0 => format!("{},0", r.start),
        1 => format!("{}", r.start + 1),
        n => format!("{},{n}", r.start + 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The write's span as the analysis gives it: from the chain's receiver to `.send()`.
    fn site_of<'a>(path: &'a Arc<str>, text: &'a str, span: &'a mut Span) -> Site<'a> {
        let start = text.find("client\n").expect("a chain");
        let line = text[..start].lines().count() as u32;
        let column = (start - text[..start].rfind('\n').map_or(0, |n| n + 1)) as u32 + 1;
        let end = text.find(".send()").expect("a send") + ".send()".len();
        let end_line = text[..end].lines().count() as u32;
        *span = Span {
            file: path.clone(),
            line,
            column,
            end_line,
            end_column: 1,
        };
        Site {
            path,
            text,
            write: span,
        }
    }

    /// A condition for a transaction's member is never put on the transaction sent.
    #[test]
    fn a_transaction_sent_is_not_the_write_to_edit() {
        let text = "async fn place(client: &Client) -> Result<(), StatusCode> {\n    match client\n        .transact_write_items()\n        .transact_items(item)\n        .send()\n        .await\n    {\n        Ok(_) => Ok(()),\n        Err(_) => Err(StatusCode::CONFLICT),\n    }\n}\n";
        let path: Arc<str> = Arc::from("x.rs");
        let mut span = Span {
            file: path.clone(),
            line: 0,
            column: 0,
            end_line: 0,
            end_column: 0,
        };
        let site = site_of(&path, text, &mut span);
        let e = put_condition_edits(
            &site,
            "attribute_not_exists(#pk)",
            &[("#pk".into(), "pk".into())],
            Conflict::Conflict,
        )
        .unwrap_err();
        assert!(e.contains("transact_write_items"), "{e}");
        // The same chain as a put gets its condition and an arm for the failed condition.
        let put = text
            .replace(".transact_write_items()", ".put_item()")
            .replace(".transact_items(item)", ".item(\"pk\", v)");
        let site = site_of(&path, &put, &mut span);
        let edits = put_condition_edits(
            &site,
            "attribute_not_exists(#pk)",
            &[("#pk".into(), "pk".into())],
            Conflict::Conflict,
        )
        .unwrap();
        let refs: Vec<&Edit> = edits.iter().collect();
        let after = apply(&put, &refs).unwrap();
        assert!(
            after.contains(".condition_expression(\"attribute_not_exists(#pk)\")"),
            "{after}"
        );
        assert!(
            after.contains("=> return Err(StatusCode::CONFLICT),\n        Ok(_)"),
            "{after}"
        );
    }

    #[test]
    fn conflict_answers_that_can_move() {
        for v in [
            "StatusCode::CONFLICT",
            "AppError::Conflict",
            "ApiError::conflict(\"taken\")",
            "conflict_error(\"taken\")",
            "anyhow::anyhow!(\"write conflict\").into()",
            "(StatusCode::CONFLICT, \"taken\".to_string())",
            "AppError::Conflict { reason: \"taken\".into() }",
        ] {
            assert!(closed(&syn::parse_str(v).unwrap()), "{v}");
        }
        for v in [
            "e",
            "conflict(id)",
            "AppError::Conflict(msg.clone())",
            "anyhow!(\"conflict on {name}\")",
            "format!(\"conflict {}\", id)",
            "match e.into_service_error() { _ => AppError::Conflict }",
            "{ AppError::Conflict }",
        ] {
            assert!(!closed(&syn::parse_str(v).unwrap()), "{v}");
        }
    }
}
