//! Predicates on syntax the walker asks: no state, no provenance.

use std::collections::HashSet;

use syn::{Expr, Pat, Stmt};

use super::memory::LOCKS;
use crate::source::facts::*;
use crate::source::index::path_ends;
pub(super) use crate::source::span::text_of;

pub(super) fn strip(e: &Expr) -> &Expr {
    match e {
        Expr::Paren(p) => strip(&p.expr),
        Expr::Group(g) => strip(&g.expr),
        Expr::Reference(r) => strip(&r.expr),
        _ => e,
    }
}

/// Whether `e` is (through `.await` and parentheses) a `.send()` call, or a rusoto call that
/// sends its request (`client.put_item(input)`).
pub(super) fn is_send(e: &Expr) -> bool {
    match e {
        Expr::Await(a) => is_send(&a.base),
        Expr::Paren(p) => is_send(&p.expr),
        Expr::MethodCall(m) => {
            m.method == "send"
                || m.method == "send_with"
                || rusoto_input(m).is_some()
                || rusoto_call(m).is_some()
        }
        _ => false,
    }
}

/// `client.put_item(request)` with a request built before or by a helper (rusoto): the
/// operation its name says, if the argument turns out to be that request.
pub(super) fn rusoto_call(m: &syn::ExprMethodCall) -> Option<OpKind> {
    let kind = OpKind::from_client_method(&m.method.to_string())?;
    (m.args.len() == 1 && !matches!(strip(&m.args[0]), Expr::Struct(_) | Expr::Lit(_)))
        .then_some(kind)
}

/// The type a constructor call names (`User::from_db(..)?`, `Session::new(..).await`): such
/// calls mostly return the type itself.
pub(super) fn ctor_type(e: &Expr) -> Option<String> {
    match strip(e) {
        Expr::Try(t) => ctor_type(&t.expr),
        Expr::Await(a) => ctor_type(&a.base),
        Expr::MethodCall(m)
            if matches!(
                m.method.to_string().as_str(),
                "unwrap" | "expect" | "map_err"
            ) =>
        {
            ctor_type(&m.receiver)
        }
        Expr::Call(c) => match &*c.func {
            Expr::Path(p) if p.path.segments.len() >= 2 => {
                let ty = p.path.segments[p.path.segments.len() - 2].ident.to_string();
                ty.starts_with(|c: char| c.is_ascii_uppercase())
                    .then_some(ty)
            }
            _ => None,
        },
        _ => None,
    }
}

/// `client.put_item(PutItemInput { .. })`: a rusoto_dynamodb call, sent by the call itself.
pub(super) fn rusoto_input(m: &syn::ExprMethodCall) -> Option<(OpKind, &syn::ExprStruct)> {
    let kind = OpKind::from_client_method(&m.method.to_string())?;
    if m.args.len() != 1 {
        return None;
    }
    let Expr::Struct(s) = strip(&m.args[0]) else {
        return None;
    };
    let name = s.path.segments.last()?.ident.to_string();
    name.ends_with("Input").then_some((kind, s))
}

/// Whether a lock call (through `unwrap`, `expect`, `.await`, `?`) is the whole expression:
/// then the binding holds the guard.
pub(super) fn is_lock_guard(e: &Expr) -> Option<&Expr> {
    match e {
        Expr::Await(a) => is_lock_guard(&a.base),
        Expr::Try(t) => is_lock_guard(&t.expr),
        Expr::Paren(p) => is_lock_guard(&p.expr),
        Expr::MethodCall(m) if matches!(m.method.to_string().as_str(), "unwrap" | "expect") => {
            is_lock_guard(&m.receiver)
        }
        Expr::MethodCall(m)
            if m.args.is_empty() && LOCKS.contains(&m.method.to_string().as_str()) =>
        {
            Some(&m.receiver)
        }
        _ => None,
    }
}

/// Whether a block always leaves the enclosing code (return, `?` on an error, continue, break,
/// panic).
pub(super) fn diverges(b: &syn::Block) -> bool {
    b.stmts.iter().any(|s| match s {
        Stmt::Expr(e, _) => expr_diverges(e),
        Stmt::Macro(m) => macro_diverges(&m.mac),
        _ => false,
    })
}

pub(super) fn expr_diverges(e: &Expr) -> bool {
    match e {
        Expr::Return(_) | Expr::Continue(_) | Expr::Break(_) => true,
        Expr::Macro(m) => macro_diverges(&m.mac),
        Expr::Try(t) => matches!(&*t.expr, Expr::Call(c) if path_ends(&c.func, &["Err"])),
        Expr::Block(b) => diverges(&b.block),
        _ => false,
    }
}

pub(super) fn macro_diverges(m: &syn::Macro) -> bool {
    m.path.segments.last().is_some_and(|s| {
        matches!(
            s.ident.to_string().as_str(),
            "bail" | "panic" | "unreachable" | "todo"
        )
    })
}

/// Whether a condition asks only whether something exists.
pub(super) fn guard_kind(e: &Expr) -> GuardKind {
    match strip(e) {
        Expr::Unary(u) => guard_kind(&u.expr),
        Expr::MethodCall(m)
            if matches!(
                m.method.to_string().as_str(),
                "is_none" | "is_some" | "is_empty" | "is_ok" | "is_err"
            ) =>
        {
            GuardKind::Exists
        }
        Expr::Let(l) => pat_kind(&l.pat),
        _ => GuardKind::Value,
    }
}

pub(super) fn pat_kind(p: &Pat) -> GuardKind {
    match p {
        Pat::TupleStruct(t)
            if t.path
                .segments
                .last()
                .is_some_and(|s| matches!(s.ident.to_string().as_str(), "Some" | "Ok" | "Err"))
                && t.elems
                    .iter()
                    .all(|e| matches!(e, Pat::Ident(_) | Pat::Wild(_))) =>
        {
            GuardKind::Exists
        }
        Pat::Ident(i) if i.ident == "None" => GuardKind::Exists,
        Pat::Path(p) if p.path.is_ident("None") => GuardKind::Exists,
        Pat::Ident(_) | Pat::Wild(_) => GuardKind::Exists,
        _ => GuardKind::Value,
    }
}

pub(super) fn bind_names(p: &Pat, out: &mut Vec<String>) {
    match p {
        Pat::Ident(i) => {
            out.push(i.ident.to_string());
            if let Some((_, sub)) = &i.subpat {
                bind_names(sub, out);
            }
        }
        Pat::Tuple(t) => t.elems.iter().for_each(|e| bind_names(e, out)),
        Pat::TupleStruct(t) => t.elems.iter().for_each(|e| bind_names(e, out)),
        Pat::Struct(s) => s.fields.iter().for_each(|f| bind_names(&f.pat, out)),
        Pat::Reference(r) => bind_names(&r.pat, out),
        Pat::Slice(s) => s.elems.iter().for_each(|e| bind_names(e, out)),
        Pat::Or(o) => o.cases.iter().for_each(|e| bind_names(e, out)),
        Pat::Type(t) => bind_names(&t.pat, out),
        Pat::Paren(p) => bind_names(&p.pat, out),
        _ => {}
    }
}

/// Counters incremented in a loop body and compared somewhere in it bound the loop.
pub(super) fn counter_bounded(body: &syn::Block, cond: Option<&Expr>) -> bool {
    use syn::visit::Visit;
    #[derive(Default)]
    struct V {
        incremented: HashSet<String>,
        compared: HashSet<String>,
    }
    impl<'a> Visit<'a> for V {
        fn visit_expr_binary(&mut self, b: &'a syn::ExprBinary) {
            use syn::BinOp::*;
            match b.op {
                AddAssign(_) | SubAssign(_) => {
                    if let Expr::Path(p) = strip(&b.left) {
                        self.incremented.insert(text_of(p));
                    }
                }
                Lt(_) | Le(_) | Gt(_) | Ge(_) | Eq(_) | Ne(_) => {
                    for side in [&b.left, &b.right] {
                        let mut names = vec![];
                        collect_paths(side, &mut names);
                        self.compared.extend(names);
                    }
                }
                _ => {}
            }
            syn::visit::visit_expr_binary(self, b);
        }
        fn visit_expr_assign(&mut self, a: &'a syn::ExprAssign) {
            if let Expr::Path(p) = strip(&a.left) {
                if matches!(&*a.right, Expr::Binary(_)) {
                    self.incremented.insert(text_of(p));
                }
            }
            syn::visit::visit_expr_assign(self, a);
        }
    }
    let mut v = V::default();
    v.visit_block(body);
    if let Some(c) = cond {
        v.visit_expr(c);
    }
    v.incremented.iter().any(|n| v.compared.contains(n))
}

pub(super) fn collect_paths(e: &Expr, out: &mut Vec<String>) {
    match strip(e) {
        Expr::Path(p) => out.push(text_of(p)),
        Expr::Binary(b) => {
            collect_paths(&b.left, out);
            collect_paths(&b.right, out);
        }
        Expr::Field(f) => out.push(text_of(f)),
        Expr::MethodCall(m) => collect_paths(&m.receiver, out),
        Expr::Cast(c) => collect_paths(&c.expr, out),
        _ => {}
    }
}

pub(super) fn strip_try(e: &Expr) -> &Expr {
    match e {
        Expr::Try(t) => strip_try(&t.expr),
        Expr::MethodCall(m) if matches!(m.method.to_string().as_str(), "unwrap" | "expect") => {
            strip_try(&m.receiver)
        }
        other => other,
    }
}

/// `query()` and `scan()` are common method names: only a receiver that looks like a client
/// makes them DynamoDB calls.
pub(super) fn looks_like_client(e: &Expr) -> bool {
    words(&text_of(e)).iter().any(|w| {
        matches!(
            w.as_str(),
            "client" | "dynamo" | "dynamodb" | "ddb" | "db" | "database" | "dynamo_db"
        )
    })
}

pub(super) fn root_ident(e: &Expr) -> Option<String> {
    match strip(e) {
        Expr::Path(p) if p.path.segments.len() == 1 => Some(p.path.segments[0].ident.to_string()),
        Expr::Field(f) => root_ident(&f.base),
        Expr::Index(i) => root_ident(&i.expr),
        Expr::MethodCall(m) => root_ident(&m.receiver),
        Expr::Unary(u) => root_ident(&u.expr),
        _ => None,
    }
}

/// The lower-case words of an identifier or expression (`userRepo.get_db` gives `user`, `repo`,
/// `get`, `db`), so word lists match whole words, not substrings.
pub(crate) fn words(text: &str) -> Vec<String> {
    let mut out = vec![];
    let mut cur = String::new();
    let mut prev_lower = false;
    for ch in text.chars() {
        if !ch.is_alphanumeric() {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            prev_lower = false;
            continue;
        }
        if ch.is_uppercase() && prev_lower && !cur.is_empty() {
            out.push(std::mem::take(&mut cur));
        }
        prev_lower = ch.is_lowercase() || ch.is_ascii_digit();
        cur.extend(ch.to_lowercase());
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Whether a condition holds when the item exists (`x.is_some()`, `let Some(_) = x`), when it
/// does not (`x.is_none()`, `!x.is_some()`), or neither can be told.
pub(super) fn exists_polarity(e: &Expr) -> Option<bool> {
    match strip(e) {
        Expr::Unary(u) if matches!(u.op, syn::UnOp::Not(_)) => exists_polarity(&u.expr).map(|p| !p),
        Expr::MethodCall(m) => method_polarity(&m.method.to_string()),
        Expr::Let(l) => pat_polarity(&l.pat),
        _ => None,
    }
}

/// `is_some()`/`is_ok()` are true when something is there; `is_none()`, `is_empty()` and
/// `is_err()` when it is not; other methods say nothing about existence.
pub(super) fn method_polarity(method: &str) -> Option<bool> {
    match method {
        "is_some" | "is_ok" => Some(true),
        "is_none" | "is_empty" | "is_err" => Some(false),
        _ => None,
    }
}

pub(super) fn pat_polarity(p: &Pat) -> Option<bool> {
    match p {
        Pat::TupleStruct(t) => {
            t.path
                .segments
                .last()
                .and_then(|s| match s.ident.to_string().as_str() {
                    "Some" | "Ok" => Some(true),
                    _ => None,
                })
        }
        Pat::Ident(i) if i.ident == "None" => Some(false),
        Pat::Path(p) if p.path.is_ident("None") => Some(false),
        _ => None,
    }
}

/// A pattern of a `Result` (`Ok(..)`, `Err(..)`, `_`): matching on it handles an error, it
/// decides nothing about the data.
pub(super) fn is_result_pat(p: &Pat) -> bool {
    match p {
        // A catch-all binding (`other => other`) decides nothing either.
        Pat::Ident(i) => i.subpat.is_none() && i.ident != "None",
        Pat::TupleStruct(t) => t
            .path
            .segments
            .last()
            .is_some_and(|s| s.ident == "Ok" || s.ident == "Err"),
        Pat::Wild(_) => true,
        Pat::Or(o) => o.cases.iter().all(is_result_pat),
        _ => false,
    }
}

pub(super) fn strip_paren(e: &Expr) -> &Expr {
    match e {
        Expr::Paren(p) => strip_paren(&p.expr),
        Expr::Group(g) => strip_paren(&g.expr),
        _ => e,
    }
}

/// An expression that is text for certain: a string literal, `x.to_string()`, `format!(..)`,
/// `String::from(..)` (or a reference to one). `+` with one of them joins strings.
pub(super) fn is_text(e: &Expr) -> bool {
    match e {
        Expr::Lit(l) => matches!(l.lit, syn::Lit::Str(_)),
        Expr::Reference(r) => is_text(&r.expr),
        Expr::Paren(p) => is_text(&p.expr),
        Expr::Group(g) => is_text(&g.expr),
        Expr::MethodCall(m) => matches!(
            m.method.to_string().as_str(),
            "to_string" | "to_lowercase" | "to_uppercase" | "as_str" | "trim"
        ),
        Expr::Macro(m) => m.mac.path.is_ident("format"),
        Expr::Call(c) => {
            path_ends(&c.func, &["String", "from"]) || path_ends(&c.func, &["String", "new"])
        }
        _ => false,
    }
}

/// Methods and functions that compare two values for a match (`verify`, `contains`,
/// `eq`, `verify_password`, `constant_time_eq`).
pub(super) fn comparing(name: &str) -> bool {
    words(name).iter().any(|w| {
        matches!(
            w.as_str(),
            "verify" | "matches" | "eq" | "contains" | "compare" | "equals"
        )
    })
}

/// Methods that pass a `Result` or `Option` on, deciding nothing of their own.
pub(super) const RESULT_ADAPTERS: &[&str] = &[
    "is_ok",
    "is_err",
    "is_some",
    "is_none",
    "unwrap_or",
    "unwrap_or_default",
    "map_err",
    "ok",
    "unwrap",
    "expect",
];
