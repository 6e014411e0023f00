//! The flow walker: one pass over a function body that records where values come from, the
//! DynamoDB operations it sends (with their builders split across `let`s), the decisions taken
//! on read data, loops, lock acquisitions, and calls into the rest of the crate, whose
//! summaries are composed in place.
//!
//! - this module: the provenance walk over statements and expressions;
//! - `syntax`: predicates on syntax (does this block diverge, is this a `.send()`);
//! - `calls`: calls into the crate, resolved and composed from their summaries;
//! - `memory`: locks and atomics (shared in-process state);
//! - `sdk`: DynamoDB request builders, how they are sent, and what they return.

mod calls;
mod memory;
mod sdk;
mod syntax;

pub(crate) use syntax::words;

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use syn::{Expr, Pat, Stmt};

use super::facts::*;
use super::index::{str_lit, type_names, FnDef, FnId, FnMeta, Global};
use super::span::{Ends, Keyword};
use sdk::SDK_OUTPUT_FIELDS;
use syntax::*;
/// What a walk may read: every function's meta, and the summaries computed so far (callees
/// are walked before their callers; functions that call each other see nothing of each other).
pub struct Env<'g> {
    pub global: &'g Global,
    pub summaries: &'g [OnceLock<Arc<Summary>>],
}

/// Walk one function; returns its summary and the crate functions it composed.
pub fn walk(env: &Env, id: FnId, f: &FnDef) -> (Summary, Vec<FnId>) {
    Walker::new(env, id, f).run()
}

struct Acquisition {
    receiver: String,
    span: Span,
}

struct Walker<'w, 'g, 'a> {
    env_: &'w Env<'g>,
    id: FnId,
    meta: &'g FnMeta,
    f: &'w FnDef<'a>,
    file: Arc<str>,
    env: HashMap<String, Val>,
    /// Names bound by patterns, with what they hid: undone when their scope ends, so an arm's
    /// `Ok(i)` does not stand for the loop's `i` after the `match`.
    shadowed: Vec<(String, Option<Val>)>,
    ops: Vec<Op>,
    guards: Vec<Guard>,
    loops: Vec<LoopCtx>,
    acqs: Vec<Acquisition>,
    mem: Vec<MemRmw>,
    ret: Val,
    /// How the next `.send()` result is handled, set by the expression around it.
    handling_hint: Option<Handling>,
    /// The error mapping around the next `.send()` tells a failed condition apart.
    ccf_hint: bool,
    /// Lock guards bound in this function: atomics changed under one are not racing.
    held_locks: usize,
    /// Type names written in each parameter's type (`State<Arc<Users>>` gives State, Arc,
    /// Users), to tell `users.get(..)` on a repository from `map.get(..)`.
    param_types: HashMap<String, Vec<String>>,
    callees: Vec<FnId>,
    /// Callee operations were left out to keep the summary within [`MAX_OPS`].
    capped: bool,
    /// The guards a block ended with (an early return inside it), for the `match` arm that
    /// holds the block: when only that arm goes on, they hold after the `match` too.
    trailing: Vec<Guard>,
}

impl<'w, 'g, 'a> Walker<'w, 'g, 'a> {
    fn new(env_: &'w Env<'g>, id: FnId, f: &'w FnDef<'a>) -> Self {
        let meta = &env_.global.metas[id];
        Walker {
            env_,
            id,
            meta,
            f,
            file: meta.span.file.clone(),
            env: HashMap::new(),
            shadowed: vec![],
            ops: vec![],
            guards: vec![],
            loops: vec![],
            acqs: vec![],
            mem: vec![],
            ret: Val::default(),
            handling_hint: None,
            ccf_hint: false,
            held_locks: 0,
            param_types: HashMap::new(),
            callees: vec![],
            capped: false,
            trailing: vec![],
        }
    }

    fn run(mut self) -> (Summary, Vec<FnId>) {
        for (i, input) in self.f.sig.inputs.iter().enumerate() {
            match input {
                syn::FnArg::Receiver(_) => {
                    self.env.insert("self".into(), Val::of(Origin::Param(i)));
                }
                syn::FnArg::Typed(t) => {
                    let mut names = vec![];
                    bind_names(&t.pat, &mut names);
                    let types = self.with_bounds(type_names(&t.ty));
                    // A request builder handed in to be sent here (`dynamodb_perform_scan(
                    // builder: ScanFluentBuilder)`): the caller's builder takes its place.
                    let handed = types.iter().find_map(|t| OpKind::from_fluent_builder(t));
                    for n in names {
                        let mut v = Val::of(Origin::Param(i));
                        if let Some(kind) = handed {
                            let mut b = Builder::new(
                                kind,
                                String::new(),
                                self.span(&Keyword(t.colon_token.span)),
                            );
                            b.from_param = Some(i);
                            v.builder = Some(Box::new(b));
                        }
                        self.env.insert(n.clone(), v);
                        self.param_types.insert(n, types.clone());
                    }
                }
            }
        }
        let tail = self.block(self.f.body);
        self.returns(tail);
        let summary = Summary {
            ops: self.ops,
            mem: self.mem,
            ret: self.ret.with_parts(),
            capped: self.capped,
        };
        (summary, self.callees)
    }

    /// A value the function returns: its provenance, and a request builder it hands back.
    fn returns(&mut self, v: Val) {
        if v.builder.is_some() {
            self.ret.builder = v.builder.clone();
        }
        if v.raw {
            self.ret.raw = true;
        }
        self.ret.join(&v);
    }

    /// Type names of a parameter, with the traits that bound its generic parameters
    /// (`r: &R` where `R: Repo` gives `R`, `Repo`).
    fn with_bounds(&self, mut names: Vec<String>) -> Vec<String> {
        let g = &self.f.sig.generics;
        let mut extra = vec![];
        let bound_names =
            |bounds: &syn::punctuated::Punctuated<syn::TypeParamBound, syn::Token![+]>,
             out: &mut Vec<String>| {
                for b in bounds {
                    if let syn::TypeParamBound::Trait(t) = b {
                        if let Some(s) = t.path.segments.last() {
                            out.push(s.ident.to_string());
                        }
                    }
                }
            };
        for p in &g.params {
            if let syn::GenericParam::Type(t) = p {
                if names.iter().any(|n| t.ident == n) {
                    bound_names(&t.bounds, &mut extra);
                }
            }
        }
        if let Some(w) = &g.where_clause {
            for pred in &w.predicates {
                if let syn::WherePredicate::Type(t) = pred {
                    if type_names(&t.bounded_ty).iter().any(|b| names.contains(b)) {
                        bound_names(&t.bounds, &mut extra);
                    }
                }
            }
        }
        names.extend(extra);
        names
    }

    fn span(&self, node: &impl Ends) -> Span {
        node.span_in(&self.file)
    }

    // ----- statements -------------------------------------------------------------------

    fn block(&mut self, b: &syn::Block) -> Val {
        let mark = self.scope();
        let saved = self.guards.len();
        let mut last = Val::default();
        for (i, stmt) in b.stmts.iter().enumerate() {
            let is_tail = i + 1 == b.stmts.len();
            let v = self.stmt(stmt);
            if is_tail && matches!(stmt, Stmt::Expr(_, None)) {
                last = v;
            }
        }
        self.trailing = self.guards[saved.min(self.guards.len())..].to_vec();
        self.guards.truncate(saved);
        self.unwind(mark);
        last
    }

    /// `let item = out.item.ok_or(NotFound)?;`: an absent item leaves the function, so what
    /// follows runs only when the read found it, as after `let Some(item) = .. else`.
    /// `val` is the bound value when the caller has it; else the receiver is looked up.
    fn presence_guard(&mut self, e: &Expr, val: &Val, span: Span) -> bool {
        let Expr::Try(t) = strip(e) else { return false };
        let Expr::MethodCall(m) = strip(&t.expr) else {
            return false;
        };
        if !matches!(m.method.to_string().as_str(), "ok_or" | "ok_or_else") {
            return false;
        }
        let mut v = val.clone();
        if let Some(r) = root_ident(&m.receiver).and_then(|r| self.env.get(&r)) {
            v.join(&r.data());
        }
        if !v.has_read() {
            return false;
        }
        // Only whether it was found is decided, on none of its attributes.
        v.attrs.clear();
        let g = self.guard(&v, GuardKind::Exists, Some(true), text_of(e), span, true);
        self.guards.push(g);
        true
    }

    /// `part.validate()?;`, `ensure_owner(&item, user)?;`: a check of read data that leaves
    /// the function when it fails guards what follows, like an early return.
    fn validation_guard(&mut self, e: &Expr) {
        let Expr::Try(t) = strip(e) else { return };
        let mut inner = &*t.expr;
        let mut awaited = false;
        while let Expr::Await(a) = inner {
            inner = &a.base;
            awaited = true;
        }
        if is_send(inner) {
            return;
        }
        // An awaited call is an operation (a store, another service) that fails on its own
        // errors, not a check of the data passed to it; a method of the read data itself
        // (`order.ensure_open().await?`) still checks it.
        if awaited {
            let on_read = match inner {
                Expr::MethodCall(m) => root_ident(&m.receiver)
                    .and_then(|r| self.env.get(&r))
                    .is_some_and(|v| v.data().has_read()),
                _ => false,
            };
            if !on_read {
                return;
            }
        }
        let operands: Vec<&Expr> = match inner {
            Expr::MethodCall(m) => std::iter::once(&*m.receiver).chain(m.args.iter()).collect(),
            Expr::Call(c) => c.args.iter().collect(),
            _ => return,
        };
        // Looked up, not evaluated again: the call's operations are already recorded.
        let mut val = Val::default();
        for o in operands {
            if let Some(v) = root_ident(o).and_then(|r| self.env.get(&r)) {
                val.join(&v.data());
            }
        }
        if val.has_read() {
            let span = self.span(e);
            let g = self.guard(&val, GuardKind::Value, None, text_of(e), span, true);
            self.guards.push(g);
        }
    }

    /// A decision on `val`. A check of an attribute (`user.session_id.is_none()`) is a decision
    /// on the item's data, not on whether the item exists.
    fn guard(
        &self,
        val: &Val,
        kind: GuardKind,
        polarity: Option<bool>,
        text: String,
        span: Span,
        proceeds_when_true: bool,
    ) -> Guard {
        // Whether a query or scan found anything is a decision on a collection, not on one
        // item's existence.
        let on_collection = val.has_read()
            && val.reads().all(|r| {
                self.ops.iter().any(|o| {
                    o.id == r
                        && matches!(
                            o.req.kind,
                            OpKind::Query | OpKind::Scan | OpKind::BatchGetItem
                        )
                })
            });
        // A flag that says only whether an item was found (`let found = item.is_some()`,
        // a helper's `Ok(item.is_some())`) decides on existence like `is_some()` itself.
        let (kind, polarity) = match val.presence {
            Some(p) if kind == GuardKind::Value && polarity.is_none() => {
                (GuardKind::Exists, Some(p))
            }
            _ => (kind, polarity),
        };
        // Whether the guarded code runs only when a query found something: a decision on the
        // collection, which still says the items it goes on to act on were there.
        let found = (kind == GuardKind::Exists && on_collection && val.attrs.is_empty())
            .then(|| polarity.map(|p| p == proceeds_when_true))
            .flatten();
        let kind = if val.attrs.is_empty() && !on_collection {
            kind
        } else {
            GuardKind::Value
        };
        Guard {
            val: val.plain(),
            kind,
            text,
            span,
            proceeds_when_true,
            on_existing: match kind {
                GuardKind::Exists => polarity.map(|p| p == proceeds_when_true),
                GuardKind::Value => found,
            },
            differs_from: None,
            past_due: false,
            matches_caller: false,
        }
    }

    /// `if new == stored { return }` (or `if new != stored { .. }`): the guarded code runs only
    /// when the data read differs from a value of the caller's; that value's provenance.
    fn differs_from(&self, cond: &Expr, proceeds_when_true: bool) -> Option<Val> {
        let Expr::Binary(b) = strip(cond) else {
            return None;
        };
        let runs_when_different = match b.op {
            syn::BinOp::Eq(_) => !proceeds_when_true,
            syn::BinOp::Ne(_) => proceeds_when_true,
            _ => false,
        };
        if !runs_when_different {
            return None;
        }
        let (l, r) = (self.peek(&b.left)?, self.peek(&b.right)?);
        let theirs = match (l.has_read(), r.has_read()) {
            (true, false) => r,
            (false, true) => l,
            _ => return None,
        };
        // A value the caller brought, not a constant every request shares.
        theirs.params().next()?;
        Some(theirs)
    }

    /// `stored.owner_id != user.id`, `hash == password`, `verify(&password, &stored_hash)`,
    /// `allowed.contains(&uri)`: the condition compares data read with the caller's own, as
    /// an ownership or credential check does, not a quantity or a state with a constant.
    fn matches_caller(&self, cond: &Expr) -> bool {
        // What an operand is made of: read data and nothing of the caller's, or the reverse.
        let side = |e: &Expr| {
            let v = self.peek_deep(e);
            let caller = v.params().next().is_some();
            (v.has_read(), caller)
        };
        let compares = |a: &Expr, b: &Expr| {
            let (x, y) = (side(a), side(b));
            (x == (true, false) && y == (false, true)) || (x == (false, true) && y == (true, false))
        };
        match strip(cond) {
            Expr::Unary(u) if matches!(u.op, syn::UnOp::Not(_)) => self.matches_caller(&u.expr),
            Expr::Binary(b) => match b.op {
                syn::BinOp::Eq(_) | syn::BinOp::Ne(_) => compares(&b.left, &b.right),
                syn::BinOp::And(_) | syn::BinOp::Or(_) => {
                    self.matches_caller(&b.left) && self.matches_caller(&b.right)
                }
                _ => false,
            },
            Expr::Let(l) => self.matches_caller(&l.expr),
            Expr::MethodCall(m) if m.args.len() == 1 && comparing(&m.method.to_string()) => {
                compares(&m.receiver, &m.args[0])
            }
            Expr::Call(c) if c.args.len() == 2 => {
                let name = match &*c.func {
                    Expr::Path(p) => p.path.segments.last().map(|s| s.ident.to_string()),
                    _ => None,
                };
                name.is_some_and(|n| comparing(&n)) && compares(&c.args[0], &c.args[1])
            }
            Expr::Try(t) => self.matches_caller(&t.expr),
            Expr::Path(_) => self.peek(cond).is_some_and(|v| v.matched && v.has_read()),
            Expr::MethodCall(m) if RESULT_ADAPTERS.contains(&m.method.to_string().as_str()) => {
                self.matches_caller(&m.receiver)
            }
            _ => false,
        }
    }

    /// Every local an operand mentions, looked up and joined (`Some(password.as_str())`,
    /// `&payload.password`, `user.id.to_string()`).
    fn peek_deep(&self, e: &Expr) -> Val {
        let mut v = Val::default();
        match strip(e) {
            Expr::MethodCall(m) => {
                v.join(&self.peek_deep(&m.receiver));
                for a in &m.args {
                    v.join(&self.peek_deep(a));
                }
            }
            Expr::Call(c) => {
                for a in &c.args {
                    v.join(&self.peek_deep(a));
                }
            }
            Expr::Reference(r) => v.join(&self.peek_deep(&r.expr)),
            Expr::Unary(u) => v.join(&self.peek_deep(&u.expr)),
            other => {
                if let Some(x) = self.peek(other) {
                    v.join(&x);
                }
            }
        }
        v
    }

    /// The value a condition's operand names (`stored`, `item.balance`), looked up, not
    /// evaluated again: the condition's calls are already recorded.
    fn peek(&self, e: &Expr) -> Option<Val> {
        root_ident(e).and_then(|r| self.env.get(&r)).map(Val::plain)
    }

    /// `if expires_at < now { .. }` (or `now > expires_at`, or the early return of the
    /// opposite): the guarded code runs only once a time read from the item has passed the
    /// clock.
    fn past_due(&self, cond: &Expr, proceeds_when_true: bool) -> bool {
        let Expr::Binary(b) = strip(cond) else {
            return false;
        };
        let peek = |e: &Expr| self.peek(e);
        let clock = |e: &Expr| {
            peek(e).is_some_and(|v| v.origins.contains(&Origin::Fresh) && !v.has_read())
                || text_of(e).contains("now()")
        };
        let stored =
            |e: &Expr| peek(e).is_some_and(|v| v.has_read() && !v.origins.contains(&Origin::Fresh));
        let (earlier, later) = match b.op {
            syn::BinOp::Lt(_) | syn::BinOp::Le(_) => (&*b.left, &*b.right),
            syn::BinOp::Gt(_) | syn::BinOp::Ge(_) => (&*b.right, &*b.left),
            _ => return false,
        };
        (proceeds_when_true && stored(earlier) && clock(later))
            || (!proceeds_when_true && clock(earlier) && stored(later))
    }

    fn stmt(&mut self, s: &Stmt) -> Val {
        match s {
            Stmt::Local(l) => {
                let mut v = match &l.init {
                    Some(init) => {
                        if matches!(&l.pat, Pat::Wild(_)) && is_send(strip_try(&init.expr)) {
                            self.handling_hint = Some(Handling::Ignored);
                        }
                        self.top_expr(&init.expr)
                    }
                    None => Val::default(),
                };
                if let Some(init) = &l.init {
                    if let Some(recv) = is_lock_guard(&init.expr) {
                        self.held_locks += 1;
                        // The binding holds the lock: reads and writes through it are one
                        // critical section, that acquisition's. A value read through it and
                        // written through another guard (after the block, `drop`, an `.await`
                        // that let other requests in) crossed two acquisitions.
                        let mut held = match self.acqs.len() {
                            0 => Val::default(),
                            n => Val::of(Origin::Mem(n - 1)),
                        };
                        held.guard_of = Some(text_of(recv));
                        v = held;
                    }
                    // `let ok = verify(&password, &hash)`, decided on later as `if !ok`.
                    v.matched = v.has_read() && self.matches_caller(&init.expr);
                    self.presence_guard(&init.expr, &v.data(), self.span(l));
                    if let Some((_, diverge)) = &init.diverge {
                        let d = self.expr(diverge);
                        drop(d);
                        if v.has_read() && !is_result_pat(&l.pat) {
                            let text =
                                format!("let {} = {} else", text_of(&l.pat), text_of(&init.expr));
                            let (kind, polarity) = (pat_kind(&l.pat), pat_polarity(&l.pat));
                            let mut g = self.guard(&v, kind, polarity, text, self.span(l), true);
                            g.matches_caller = v.matched;
                            self.guards.push(g);
                        }
                    }
                }
                let mut names = vec![];
                bind_names(&l.pat, &mut names);
                let ty = match &l.pat {
                    Pat::Type(t) => Some(self.with_bounds(type_names(&t.ty))),
                    _ => l
                        .init
                        .as_ref()
                        .and_then(|i| ctor_type(&i.expr))
                        .map(|t| vec![t]),
                };
                if let (Some(ty), [name]) = (ty, names.as_slice()) {
                    self.param_types.insert(name.clone(), ty);
                }
                self.bind(&l.pat, v);
                Val::default()
            }
            Stmt::Expr(e, semi) => {
                let v = self.top_expr(e);
                if semi.is_some() && !self.presence_guard(e, &Val::default(), self.span(e)) {
                    self.validation_guard(e);
                }
                v
            }
            Stmt::Macro(m) => self.mac(&m.mac),
            Stmt::Item(_) => Val::default(),
        }
    }

    /// An expression at statement level: an `if`/`match` whose branch leaves the function
    /// guards everything after it in the block.
    fn top_expr(&mut self, e: &Expr) -> Val {
        match e {
            Expr::If(i) => {
                let (v, gs) = self.if_expr(i);
                self.guards.extend(gs);
                v
            }
            Expr::Match(m) => {
                let (v, gs) = self.match_expr(m);
                self.guards.extend(gs);
                v
            }
            _ => self.expr(e),
        }
    }

    fn bind(&mut self, p: &Pat, v: Val) {
        // A tuple or struct built here, taken apart again: each name gets its own part.
        if v.fields.is_some() {
            match p {
                Pat::Tuple(t) if !t.elems.iter().any(|e| matches!(e, Pat::Rest(_))) => {
                    for (i, e) in t.elems.iter().enumerate() {
                        let part = v
                            .field(&i.to_string())
                            .cloned()
                            .unwrap_or_else(|| v.clone());
                        self.bind(e, part);
                    }
                    return;
                }
                Pat::Struct(st) => {
                    for f in &st.fields {
                        let part = match &f.member {
                            syn::Member::Named(n) => v.field(&n.to_string()).cloned(),
                            syn::Member::Unnamed(i) => v.field(&i.index.to_string()).cloned(),
                        };
                        self.bind(&f.pat, part.unwrap_or_else(|| v.clone()));
                    }
                    return;
                }
                _ => {}
            }
        }
        let mut names = vec![];
        bind_names(p, &mut names);
        for n in names {
            let hidden = self.env.insert(n.clone(), v.clone());
            self.shadowed.push((n, hidden));
        }
    }

    /// Where a scope starts: what [`Walker::unwind`] goes back to.
    fn scope(&self) -> usize {
        self.shadowed.len()
    }

    /// End a scope: the names bound in it stand again for what they hid.
    fn unwind(&mut self, mark: usize) {
        while self.shadowed.len() > mark {
            let Some((name, hidden)) = self.shadowed.pop() else {
                break;
            };
            match hidden {
                Some(v) => {
                    self.env.insert(name, v);
                }
                None => {
                    self.env.remove(&name);
                }
            }
        }
    }

    // ----- expressions ------------------------------------------------------------------

    /// The parts of a struct or tuple literal: their provenance together (builders become
    /// members, as in [`Walker::exprs`]), and each named part's own.
    fn parts<'e>(
        &mut self,
        items: impl IntoIterator<Item = (Option<String>, &'e Expr)>,
    ) -> (Val, Vec<(String, Val)>) {
        let mut v = Val::default();
        let mut parts = vec![];
        for (name, e) in items {
            let x = self.expr(e);
            v.join(&x);
            if let Some(b) = &x.builder {
                v.members.push((**b).clone());
            }
            if let Some(n) = name {
                parts.push((n, x));
            }
        }
        (v, parts)
    }

    fn exprs<'e>(&mut self, es: impl IntoIterator<Item = &'e Expr>) -> Val {
        let mut v = Val::default();
        for e in es {
            let x = self.expr(e);
            v.join(&x);
            if let Some(b) = x.builder {
                v.members.push(*b);
            }
        }
        v
    }

    fn expr(&mut self, e: &Expr) -> Val {
        match e {
            Expr::Path(p) => {
                if p.path.segments.len() == 1 {
                    let name = p.path.segments[0].ident.to_string();
                    if let Some(v) = self.env.get(&name) {
                        return v.clone();
                    }
                    if name == "None" {
                        return Val {
                            maybe_none: true,
                            ..Val::default()
                        };
                    }
                    if name
                        .chars()
                        .all(|c| c.is_ascii_uppercase() || c == '_' || c.is_ascii_digit())
                    {
                        return Val::of(Origin::Const);
                    }
                }
                Val::default()
            }
            Expr::Lit(_) => Val::of(Origin::Const),
            Expr::Paren(x) => self.expr(&x.expr),
            Expr::Group(x) => self.expr(&x.expr),
            Expr::Reference(x) => self.expr(&x.expr),
            Expr::Cast(x) => self.expr(&x.expr),
            Expr::Await(x) => self.expr(&x.base),
            Expr::Try(x) => {
                if is_send(&x.expr) {
                    self.handling_hint = Some(Handling::Propagated);
                }
                self.expr(&x.expr)
            }
            Expr::Unary(u) => {
                let v = self.expr(&u.expr);
                if matches!(u.op, syn::UnOp::Deref(_)) {
                    return v;
                }
                Val {
                    guard_of: None,
                    presence: match u.op {
                        syn::UnOp::Not(_) => v.presence.map(|p| !p),
                        _ => None,
                    },
                    ..v
                }
            }
            Expr::Binary(b) => self.binary(b),
            Expr::Assign(a) => {
                let rhs = self.expr(&a.right);
                self.assign(&a.left, rhs, false);
                Val::default()
            }
            Expr::Field(f) => {
                let base = self.expr(&f.base);
                let name = match &f.member {
                    syn::Member::Named(n) => n.to_string(),
                    syn::Member::Unnamed(i) => i.index.to_string(),
                };
                if let Some(v) = base.field(&name) {
                    let mut v = v.clone();
                    if v.has_read() && v.attrs.is_empty() {
                        v.attrs = [name].into();
                    }
                    return v;
                }
                let mut v = base.data();
                v.fields = None;
                v.guard_of = base.guard_of.clone();
                v.raw = false;
                if base.has_read() {
                    if let syn::Member::Named(n) = &f.member {
                        let n = n.to_string();
                        // Fields of the SDK's output (`out.item`, `out.count`) are not item
                        // attributes; fields of an item's own type are, whatever their name.
                        if base.raw && SDK_OUTPUT_FIELDS.contains(&n.as_str()) {
                            v.raw = true;
                        } else {
                            v.attrs = [n].into();
                        }
                    }
                }
                v
            }
            Expr::Index(i) => {
                let mut v = self.expr(&i.expr);
                let idx = self.expr(&i.index);
                if v.has_read() {
                    if let Some(s) = str_lit(&i.index) {
                        v.attrs = [s].into();
                    }
                }
                v.join(&idx.data());
                v
            }
            Expr::MethodCall(m) => self.method_call(m),
            Expr::Call(c) => self.call(c),
            Expr::Macro(m) => self.mac(&m.mac),
            Expr::Block(b) => self.block(&b.block),
            Expr::Unsafe(b) => self.block(&b.block),
            Expr::Async(b) => self.block(&b.block),
            Expr::TryBlock(b) => self.block(&b.block),
            Expr::If(i) => self.if_expr(i).0,
            Expr::Match(m) => self.match_expr(m).0,
            Expr::Let(l) => {
                let v = self.expr(&l.expr);
                self.bind(&l.pat, v.clone());
                v
            }
            Expr::Closure(c) => {
                // A closure that configures a request it is given: its argument is a builder,
                // whose settings the callee's request takes on (see `bind_configured`).
                if let Some(name) = calls::configures(c) {
                    let mark = self.scope();
                    let b = Builder::new(
                        OpKind::UpdateItem,
                        calls::CONFIGURING.to_string(),
                        self.span(&*c.body),
                    );
                    self.env.insert(
                        name,
                        Val {
                            builder: Some(Box::new(b)),
                            ..Val::default()
                        },
                    );
                    let v = self.expr(&c.body);
                    self.unwind(mark);
                    return v;
                }
                for input in &c.inputs {
                    self.bind(input, Val::default());
                }
                self.expr(&c.body)
            }
            Expr::Loop(l) => {
                let bounded = counter_bounded(&l.body, None);
                self.in_loop(l.loop_token.span, bounded, |w| w.block(&l.body))
            }
            Expr::While(w) => {
                let bounded = counter_bounded(&w.body, Some(&w.cond));
                self.in_loop(w.while_token.span, bounded, |me| {
                    let c = me.expr(&w.cond);
                    let mut v = me.block(&w.body);
                    v.join(&c.data());
                    v
                })
            }
            Expr::ForLoop(f) => {
                let it = self.expr(&f.expr);
                let unbounded = matches!(strip(&f.expr), Expr::Range(r) if r.end.is_none())
                    || text_of(&f.expr).contains("repeat");
                let mark = self.scope();
                self.bind(&f.pat, it.data());
                let v = self.in_loop(f.for_token.span, !unbounded, |w| w.block(&f.body));
                self.unwind(mark);
                v
            }
            Expr::Return(r) => {
                if let Some(x) = &r.expr {
                    let v = self.expr(x);
                    self.returns(v);
                }
                Val::default()
            }
            Expr::Break(b) => b.expr.as_ref().map(|x| self.expr(x)).unwrap_or_default(),
            Expr::Struct(s) => {
                // rusoto's transaction members are struct literals (`Put { .. }`).
                if let Some(kind) = s.path.segments.last().and_then(|l| {
                    let name = l.ident.to_string();
                    OpKind::from_type_name(&name).or_else(|| OpKind::from_input_type(&name))
                }) {
                    let b = self.struct_builder(kind, String::new(), s);
                    return Val {
                        builder: Some(Box::new(b)),
                        ..Val::default()
                    };
                }
                let named = s.fields.iter().map(|f| match &f.member {
                    syn::Member::Named(n) => (Some(n.to_string()), &f.expr),
                    syn::Member::Unnamed(_) => (None, &f.expr),
                });
                let (mut v, parts) = self.parts(named);
                match &s.rest {
                    Some(rest) => v.join(&self.expr(rest)),
                    None if parts.len() == s.fields.len() && !parts.is_empty() => {
                        v.fields = Val::fields_of(parts);
                    }
                    None => {}
                }
                // rusoto's `DeleteRequest { .. }`, `WriteRequest { delete_request: .. }`
                let name = s
                    .path
                    .segments
                    .last()
                    .map(|l| l.ident.to_string())
                    .unwrap_or_default();
                let fields: Vec<String> = s
                    .fields
                    .iter()
                    .filter_map(|f| match &f.member {
                        syn::Member::Named(n) => Some(n.to_string()),
                        _ => None,
                    })
                    .collect();
                v.deletes |=
                    name == "DeleteRequest" || fields.iter().any(|f| f == "delete_request");
                v.puts |= name == "PutRequest" || fields.iter().any(|f| f == "put_request");
                v
            }
            Expr::Tuple(t) if t.elems.len() > 1 => {
                let (mut v, parts) = self.parts(
                    t.elems
                        .iter()
                        .enumerate()
                        .map(|(i, e)| (Some(i.to_string()), e)),
                );
                v.fields = Val::fields_of(parts);
                v
            }
            Expr::Tuple(t) => self.exprs(&t.elems),
            Expr::Array(a) => self.exprs(&a.elems),
            Expr::Repeat(r) => self.expr(&r.expr),
            Expr::Range(r) => {
                let mut v = Val::default();
                for x in r.start.iter().chain(r.end.iter()) {
                    v.join(&self.expr(x).data());
                }
                v
            }
            _ => Val::default(),
        }
    }

    fn in_loop(
        &mut self,
        keyword: proc_macro2::Span,
        bounded: bool,
        body: impl FnOnce(&mut Self) -> Val,
    ) -> Val {
        let ctx = LoopCtx {
            span: self.span(&Keyword(keyword)),
            bounded,
        };
        self.loops.push(ctx);
        let v = body(self);
        self.loops.pop();
        v
    }

    fn binary(&mut self, b: &syn::ExprBinary) -> Val {
        use syn::BinOp::*;
        let l = self.expr(&b.left);
        let r = self.expr(&b.right);
        // `"CART#".to_string() + &id`: joining text, not arithmetic.
        let joins = matches!(b.op, Add(_) | AddAssign(_))
            && (syntax::is_text(&b.left) || syntax::is_text(&b.right));
        let is_arith = matches!(b.op, Add(_) | Sub(_) | Mul(_) | Div(_) | Rem(_)) && !joins;
        let is_compound = matches!(
            b.op,
            AddAssign(_) | SubAssign(_) | MulAssign(_) | DivAssign(_) | RemAssign(_)
        ) && !joins;
        let mut v = l.data();
        v.join(&r.data());
        if (is_arith || is_compound) && v.has_read() && !v.arith {
            v.arith = true;
            v.computed_at = Some(self.span(b));
            // Which side is the read value tells the change: `read - x`, `x + read`.
            let sign = match b.op {
                Add(_) | AddAssign(_) => Some('+'),
                Sub(_) | SubAssign(_) if l.has_read() => Some('-'),
                _ => None,
            };
            v.delta = match (sign, l.has_read(), r.has_read()) {
                (Some(sg), true, false) => Some((sg, text_of(&b.right))),
                (Some('+'), false, true) => Some(('+', text_of(&b.left))),
                _ => None,
            };
        }
        if is_compound {
            // `x += d` reads and writes x: the new value carries both.
            self.assign(&b.left, v.clone(), true);
            return Val::default();
        }
        v
    }

    /// `lhs = rhs`: the new value of a local, a field of a local, or shared state behind a lock.
    fn assign(&mut self, lhs: &Expr, rhs: Val, compound: bool) {
        let target = strip(lhs);
        match target {
            Expr::Path(p) if p.path.segments.len() == 1 => {
                let name = p.path.segments[0].ident.to_string();
                // A builder variable reassigned (`req = req.condition_expression(..)`) or a plain
                // local.
                let held = self.env.get(&name).and_then(|v| v.guard_of.clone());
                let mut v = rhs;
                if v.guard_of.is_none() {
                    v.guard_of = held;
                }
                self.env.insert(name, v);
            }
            _ => {
                let dest = self.expr(target);
                if let Some(recv) = &dest.guard_of {
                    if !compound {
                        self.check_mem_write(recv, &dest, &rhs, lhs);
                    }
                }
                // A field of a local changes the local's provenance (`acct.balance -= amount`).
                if let Some(root) = root_ident(target) {
                    if let Some(v) = self.env.get_mut(&root) {
                        if v.has_read() && !compound && !rhs.arith {
                            v.edited = true;
                        }
                        v.join(&rhs.data());
                    }
                }
            }
        }
    }

    /// An `if` and the guards it leaves on what follows it: its own condition when a branch
    /// leaves the function, and the early returns inside a lone `then` block
    /// (`if let Some(h) = last { if h == hash { return } }`), which decide whether the code
    /// after it runs.
    fn if_expr(&mut self, i: &syn::ExprIf) -> (Val, Vec<Guard>) {
        // `if let Some(x) = ..`: `x` lives in the `then` block only.
        let mark = self.scope();
        let cond = self.expr(&i.cond);
        let guarded = cond.has_read();
        let polarity = exists_polarity(&i.cond);
        let mk = |me: &Self, when: bool| {
            let span = me.span(&*i.cond);
            let mut g = me.guard(
                &cond,
                guard_kind(&i.cond),
                polarity,
                text_of(&i.cond),
                span,
                when,
            );
            g.differs_from = me.differs_from(&i.cond, when);
            g.past_due = me.past_due(&i.cond, when);
            g.matches_caller = me.matches_caller(&i.cond);
            g
        };
        if guarded {
            self.guards.push(mk(self, true));
        }
        let mut v = self.block(&i.then_branch);
        self.unwind(mark);
        let inner = std::mem::take(&mut self.trailing);
        if guarded {
            self.guards.pop();
        }
        if let Some((_, els)) = &i.else_branch {
            if guarded {
                self.guards.push(mk(self, false));
            }
            let e = self.expr(els);
            v.join(&e);
            if guarded {
                self.guards.pop();
            }
        }
        // The value of an `if` depends on its condition (`let status = if found { A } else { B }`).
        if guarded && i.else_branch.is_some() {
            v.join(&cond.data());
        }
        let after = if guarded && diverges(&i.then_branch) {
            Some(mk(self, false))
        } else if guarded
            && i.else_branch
                .as_ref()
                .is_some_and(|(_, e)| expr_diverges(e))
        {
            Some(mk(self, true))
        } else {
            None
        };
        let mut after: Vec<Guard> = after.into_iter().collect();
        if i.else_branch.is_none() && !diverges(&i.then_branch) {
            after.extend(inner.into_iter().filter(|g| g.val.has_read()));
        }
        (v, after)
    }

    /// A `match` on read data decides what follows when an arm leaves the function. A match
    /// on a `Result` (`Ok(r) => .., Err(e) => return ..`) decides nothing about the data, but
    /// the checks inside the one arm that goes on hold after it.
    fn match_expr(&mut self, m: &syn::ExprMatch) -> (Val, Vec<Guard>) {
        let scrut = self.expr(&m.expr);
        let on_result = m.arms.iter().all(|a| is_result_pat(&a.pat))
            && m.arms.iter().any(|a| !matches!(a.pat, Pat::Ident(_)));
        let guarded = scrut.has_read() && !on_result;
        let kind = if m.arms.iter().all(|a| pat_kind(&a.pat) == GuardKind::Exists) {
            GuardKind::Exists
        } else {
            GuardKind::Value
        };
        let text = format!("match {}", text_of(&m.expr));
        // `match found { Some(u) => u, None => return .. }`: the code after the `match` runs
        // only when the item was found (or only when it was not), as after `let Some(u) = ..`.
        let going_on = |a: &&syn::Arm| !expr_diverges(&a.body);
        let polarity = |arms: &mut dyn Iterator<Item = &syn::Arm>| {
            let ps: Vec<Option<bool>> = arms.map(|a| pat_polarity(&a.pat)).collect();
            ps.first()
                .copied()
                .flatten()
                .filter(|p| ps.iter().all(|q| *q == Some(*p)))
        };
        let after_polarity = (kind == GuardKind::Exists)
            .then(|| polarity(&mut m.arms.iter().filter(going_on)))
            .flatten()
            .filter(|p| {
                let left = polarity(&mut m.arms.iter().filter(|a| !going_on(a)));
                left == Some(!p)
            });
        let guard = guarded.then(|| {
            self.guard(
                &scrut,
                kind,
                after_polarity,
                text,
                self.span(&*m.expr),
                true,
            )
        });
        let mut v = Val::default();
        let mut any_diverges = false;
        let mut going_on: Vec<Vec<Guard>> = vec![];
        // Arm guards (`x if x.item().is_some() => ..`) on read data decide their arm, and their
        // failure decides the arms after them.
        let mut failed: Vec<Guard> = vec![];
        for arm in &m.arms {
            let mark = self.scope();
            self.bind(&arm.pat, scrut.clone());
            let before = self.guards.len();
            if let Some(g) = &guard {
                // Inside an arm, its pattern says whether the item was found.
                let polarity = (kind == GuardKind::Exists)
                    .then(|| pat_polarity(&arm.pat))
                    .flatten();
                let g = match polarity {
                    Some(_) => {
                        self.guard(&scrut, kind, polarity, g.text.clone(), g.span.clone(), true)
                    }
                    None => g.clone(),
                };
                self.guards.push(g);
            }
            self.guards.extend(failed.iter().cloned());
            let mut arm_guard = None;
            if let Some((_, g)) = &arm.guard {
                let v = self.expr(g);
                if v.has_read() {
                    let (kind, polarity) = (guard_kind(g), exists_polarity(g));
                    let span = self.span(&**g);
                    arm_guard = Some((v, kind, polarity, text_of(&**g), span));
                }
            }
            if let Some((v, kind, polarity, text, span)) = &arm_guard {
                let g = self.guard(v, *kind, *polarity, text.clone(), span.clone(), true);
                self.guards.push(g);
            }
            self.trailing.clear();
            let a = self.expr(&arm.body);
            self.unwind(mark);
            self.guards.truncate(before);
            if let Some((v, kind, polarity, text, span)) = arm_guard {
                failed.push(self.guard(&v, kind, polarity, text, span, false));
            }
            if expr_diverges(&arm.body) {
                any_diverges = true;
            } else {
                let inner = match &*arm.body {
                    Expr::Block(_) => std::mem::take(&mut self.trailing),
                    _ => vec![],
                };
                going_on.push(inner);
            }
            v.join(&a);
        }
        // Like an `if`, the value of a `match` depends on the arm taken
        // (`match found { Some(_) => true, None => false }`).
        if guarded && m.arms.len() > 1 {
            v.join(&scrut.data());
        }
        let mut after: Vec<Guard> = guard.filter(|_| any_diverges).into_iter().collect();
        // The early returns inside any arm that goes on decide, on its path, whether the code
        // after the `match` runs (`Some(old) => { if !old.owners.contains(me) { return } }`).
        for inner in going_on {
            after.extend(inner.into_iter().filter(|g| g.val.has_read()));
        }
        (v, after)
    }

    fn mac(&mut self, m: &syn::Macro) -> Val {
        use syn::punctuated::Punctuated;
        let name = m
            .path
            .segments
            .last()
            .map(|s| s.ident.to_string())
            .unwrap_or_default();
        // `matches!(expr, pattern)`: the pattern is not an expression; the value is the
        // expression's.
        if name == "matches" {
            let first = m.parse_body_with(|input: syn::parse::ParseStream| {
                let e: Expr = input.parse()?;
                let _: proc_macro2::TokenStream = input.parse()?;
                Ok(e)
            });
            return first.map(|e| self.expr(&e).data()).unwrap_or_default();
        }
        let Ok(args) = m.parse_body_with(Punctuated::<Expr, syn::Token![,]>::parse_terminated)
        else {
            return Val::default();
        };
        let asserts = matches!(
            name.as_str(),
            "assert"
                | "debug_assert"
                | "ensure"
                | "assert_eq"
                | "assert_ne"
                | "debug_assert_eq"
                | "debug_assert_ne"
        );
        if asserts {
            // An assertion on read data leaves the function when it fails: it guards what
            // follows, like an early return.
            let compared = if name.ends_with("_eq") || name.ends_with("_ne") {
                2
            } else {
                1
            };
            let cond = self.exprs(args.iter().take(compared));
            self.exprs(args.iter().skip(compared));
            if cond.has_read() {
                let text = args
                    .iter()
                    .take(compared)
                    .map(text_of)
                    .collect::<Vec<_>>()
                    .join(if name.ends_with("_ne") {
                        " != "
                    } else {
                        " == "
                    });
                let (kind, polarity) = match (compared, args.first()) {
                    (1, Some(a)) => (guard_kind(a), exists_polarity(a)),
                    _ => (GuardKind::Value, None),
                };
                let span = self.span(&Keyword(m.bang_token.span));
                let g = self.guard(
                    &cond,
                    kind,
                    polarity,
                    format!("{name}!({text})"),
                    span,
                    true,
                );
                self.guards.push(g);
            }
            return Val::default();
        }
        let mut v = self.exprs(&args);
        // `format!("EMAIL#{email}")`: names captured in the format string are arguments too.
        if let Some(Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Str(fmt),
            ..
        })) = args.first()
        {
            for name in captured(&fmt.value()) {
                let ident = syn::Ident::new(&name, fmt.span());
                let path = Expr::Path(syn::ExprPath {
                    attrs: vec![],
                    qself: None,
                    path: ident.into(),
                });
                v.join(&self.expr(&path));
            }
        }
        // Macros that build data (`vec!`, `format!`, `json!`, `hashmap!`) or await several
        // futures (`join!`, `try_join!`) give their arguments' provenance; logging does not.
        if matches!(
            name.as_str(),
            "vec" | "format" | "json" | "hashmap" | "btreemap" | "join" | "try_join"
        ) {
            v
        } else {
            Val::default()
        }
    }

    // ----- calls ------------------------------------------------------------------------
}

/// The names a format string captures (`{email}`, `{id:?}`), not positions or escapes.
fn captured(fmt: &str) -> Vec<String> {
    let mut out = vec![];
    let mut rest = fmt;
    while let Some(at) = rest.find('{') {
        rest = &rest[at + 1..];
        if let Some(r) = rest.strip_prefix('{') {
            rest = r;
            continue;
        }
        let end = rest.find(['}', ':']).unwrap_or(rest.len());
        let name = rest[..end].trim();
        let ident = name
            .chars()
            .next()
            .is_some_and(|c| c.is_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_alphanumeric() || c == '_');
        if ident && syn::parse_str::<syn::Ident>(name).is_ok() && !out.iter().any(|n| n == name) {
            out.push(name.to_string());
        }
        rest = &rest[end..];
    }
    out
}
