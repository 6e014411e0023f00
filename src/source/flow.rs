//! The flow walker: one pass over a function body that records where values come from, the
//! DynamoDB operations it sends (with their builders split across `let`s), the decisions taken
//! on read data, loops, lock acquisitions, and calls into the rest of the crate, whose
//! summaries are composed in place.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use quote::ToTokens;
use syn::{Expr, Pat, Stmt};

use super::facts::*;
use super::index::{path_ends, str_lit, FnDef, FnId, FnMeta, Global};
use super::span::{Ends, Keyword};

/// What a walk may read: every function's meta, and the summaries computed so far (callees
/// are walked before their callers; functions that call each other see nothing of each other).
pub struct Env<'g> {
    pub global: &'g Global,
    pub summaries: &'g [Option<Arc<Summary>>],
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
}

/// Methods that lock or load shared state.
/// (`RefCell::borrow` is not here: a `RefCell` cannot be shared between requests.)
const LOCKS: &[&str] = &["lock", "read", "write", "try_lock"];
/// Methods that change a collection or value behind a lock.
const MUTATORS: &[&str] = &[
    "insert",
    "push",
    "push_back",
    "push_front",
    "extend",
    "remove",
    "entry",
    "retain",
    "clear",
    "set",
    "replace",
    "append",
];
/// Method names of the standard library and common crates.
const STD_METHODS: &[&str] = &[
    "get",
    "get_mut",
    "insert",
    "remove",
    "contains",
    "contains_key",
    "push",
    "pop",
    "len",
    "is_empty",
    "iter",
    "map",
    "and_then",
    "unwrap",
    "clone",
    "to_string",
    "into",
    "from",
    "parse",
    "entry",
    "extend",
    "find",
    "filter",
    "collect",
    "first",
    "last",
    "keys",
    "values",
    "new",
    "default",
    "send",
    "json",
];

/// Fields of `GetItemOutput`, `QueryOutput` and friends.
const SDK_OUTPUT_FIELDS: &[&str] = &[
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
/// Calls whose result is fresh: a new identifier or a clock reading.
const FRESH: &[&str] = &[
    "new_v4", "new_v7", "now_v7", "now", "now_utc", "new_ulid", "generate", "random", "nanoid",
];

fn text_of(node: &impl ToTokens) -> String {
    let s = node.to_token_stream().to_string();
    // Token streams print with spaces between tokens; squeeze the common ones for messages.
    s.replace(" . ", ".")
        .replace(" (", "(")
        .replace("( ", "(")
        .replace(" )", ")")
        .replace("& ", "&")
        .replace(" ,", ",")
        .replace(" :: ", "::")
        .replace("! (", "!(")
        .replace(" ?", "?")
}

fn strip(e: &Expr) -> &Expr {
    match e {
        Expr::Paren(p) => strip(&p.expr),
        Expr::Group(g) => strip(&g.expr),
        Expr::Reference(r) => strip(&r.expr),
        _ => e,
    }
}

/// Whether `e` is (through `.await` and parentheses) a `.send()` call.
fn is_send(e: &Expr) -> bool {
    match e {
        Expr::Await(a) => is_send(&a.base),
        Expr::Paren(p) => is_send(&p.expr),
        Expr::MethodCall(m) => m.method == "send" || rusoto_input(m).is_some(),
        _ => false,
    }
}

/// `client.put_item(PutItemInput { .. })`: a rusoto_dynamodb call, sent by the call itself.
fn rusoto_input(m: &syn::ExprMethodCall) -> Option<(OpKind, &syn::ExprStruct)> {
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
fn is_lock_guard(e: &Expr) -> Option<&Expr> {
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
fn diverges(b: &syn::Block) -> bool {
    b.stmts.iter().any(|s| match s {
        Stmt::Expr(e, _) => expr_diverges(e),
        Stmt::Macro(m) => macro_diverges(&m.mac),
        _ => false,
    })
}

fn expr_diverges(e: &Expr) -> bool {
    match e {
        Expr::Return(_) | Expr::Continue(_) | Expr::Break(_) => true,
        Expr::Macro(m) => macro_diverges(&m.mac),
        Expr::Try(t) => matches!(&*t.expr, Expr::Call(c) if path_ends(&c.func, &["Err"])),
        Expr::Block(b) => diverges(&b.block),
        _ => false,
    }
}

fn macro_diverges(m: &syn::Macro) -> bool {
    m.path.segments.last().is_some_and(|s| {
        matches!(
            s.ident.to_string().as_str(),
            "bail" | "panic" | "unreachable" | "todo"
        )
    })
}

/// Whether a condition asks only whether something exists.
fn guard_kind(e: &Expr) -> GuardKind {
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

fn pat_kind(p: &Pat) -> GuardKind {
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

fn bind_names(p: &Pat, out: &mut Vec<String>) {
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
fn counter_bounded(body: &syn::Block, cond: Option<&Expr>) -> bool {
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

fn collect_paths(e: &Expr, out: &mut Vec<String>) {
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
                    let types = type_names(&t.ty);
                    for n in names {
                        self.env.insert(n.clone(), Val::of(Origin::Param(i)));
                        self.param_types.insert(n, types.clone());
                    }
                }
            }
        }
        let tail = self.block(self.f.body);
        self.ret.join(&tail);
        let summary = Summary {
            ops: self.ops,
            mem: self.mem,
            ret: self.ret.data(),
        };
        (summary, self.callees)
    }

    fn span(&self, node: &impl Ends) -> Span {
        node.span_in(&self.file)
    }

    // ----- statements -------------------------------------------------------------------

    fn block(&mut self, b: &syn::Block) -> Val {
        let saved = self.guards.len();
        let mut last = Val::default();
        for (i, stmt) in b.stmts.iter().enumerate() {
            let is_tail = i + 1 == b.stmts.len();
            let v = self.stmt(stmt);
            if is_tail && matches!(stmt, Stmt::Expr(_, None)) {
                last = v;
            }
        }
        self.guards.truncate(saved);
        last
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
                        // critical section.
                        v = Val {
                            guard_of: Some(text_of(recv)),
                            ..Val::default()
                        };
                    }
                    if let Some((_, diverge)) = &init.diverge {
                        let d = self.expr(diverge);
                        drop(d);
                        if v.has_read() {
                            let g = Guard {
                                val: v.data(),
                                kind: pat_kind(&l.pat),
                                text: format!(
                                    "let {} = {} else",
                                    text_of(&l.pat),
                                    text_of(&init.expr)
                                ),
                                span: self.span(l),
                                proceeds_when_true: true,
                            };
                            self.guards.push(g);
                        }
                    }
                }
                self.bind(&l.pat, v);
                Val::default()
            }
            Stmt::Expr(e, _) => self.top_expr(e),
            Stmt::Macro(m) => self.mac(&m.mac),
            Stmt::Item(_) => Val::default(),
        }
    }

    /// An expression at statement level: an `if`/`match` whose branch leaves the function
    /// guards everything after it in the block.
    fn top_expr(&mut self, e: &Expr) -> Val {
        match e {
            Expr::If(i) => {
                let (v, g) = self.if_expr(i);
                if let Some(g) = g {
                    self.guards.push(g);
                }
                v
            }
            Expr::Match(m) => {
                let (v, g) = self.match_expr(m);
                if let Some(g) = g {
                    self.guards.push(g);
                }
                v
            }
            _ => self.expr(e),
        }
    }

    fn bind(&mut self, p: &Pat, v: Val) {
        let mut names = vec![];
        bind_names(p, &mut names);
        for n in names {
            self.env.insert(n, v.clone());
        }
    }

    // ----- expressions ------------------------------------------------------------------

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
                let mut v = base.data();
                v.guard_of = base.guard_of.clone();
                if base.has_read() {
                    if let syn::Member::Named(n) = &f.member {
                        let n = n.to_string();
                        // Fields of the SDK's output are not item attributes.
                        if !SDK_OUTPUT_FIELDS.contains(&n.as_str()) {
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
                self.bind(&f.pat, it.data());
                self.in_loop(f.for_token.span, !unbounded, |w| w.block(&f.body))
            }
            Expr::Return(r) => {
                if let Some(x) = &r.expr {
                    let v = self.expr(x);
                    self.ret.join(&v.data());
                }
                Val::default()
            }
            Expr::Break(b) => b.expr.as_ref().map(|x| self.expr(x)).unwrap_or_default(),
            Expr::Struct(s) => {
                // rusoto's transaction members are struct literals (`Put { .. }`).
                if let Some(kind) = s
                    .path
                    .segments
                    .last()
                    .and_then(|l| OpKind::from_type_name(&l.ident.to_string()))
                {
                    let b = self.struct_builder(kind, String::new(), s);
                    return Val {
                        builder: Some(Box::new(b)),
                        ..Val::default()
                    };
                }
                let mut v = self.exprs(s.fields.iter().map(|f| &f.expr));
                if let Some(rest) = &s.rest {
                    v.join(&self.expr(rest));
                }
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
        let is_arith = matches!(b.op, Add(_) | Sub(_) | Mul(_) | Div(_) | Rem(_));
        let is_compound = matches!(
            b.op,
            AddAssign(_) | SubAssign(_) | MulAssign(_) | DivAssign(_) | RemAssign(_)
        );
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
                        v.join(&rhs.data());
                    }
                }
            }
        }
    }

    /// A write to shared state through a temporary acquisition, of a value read under another.
    fn check_mem_write(&mut self, recv: &str, dest: &Val, value: &Val, at: &impl Ends) {
        let this: HashSet<usize> = dest
            .origins
            .iter()
            .filter_map(|o| match o {
                Origin::Mem(a) => Some(*a),
                _ => None,
            })
            .collect();
        if this.is_empty() {
            return; // through a held guard
        }
        for o in &value.origins {
            if let Origin::Mem(a) = o {
                if !this.contains(a) && self.acqs[*a].receiver == recv {
                    let read = self.acqs[*a].span.clone();
                    let write = self.span(at);
                    self.mem.push(MemRmw {
                        receiver: recv.to_string(),
                        read,
                        write,
                        atomic: false,
                    });
                    return;
                }
            }
        }
    }

    fn if_expr(&mut self, i: &syn::ExprIf) -> (Val, Option<Guard>) {
        let cond = self.expr(&i.cond);
        let guarded = cond.has_read();
        let mk = |me: &Self, when: bool| Guard {
            val: cond.data(),
            kind: guard_kind(&i.cond),
            text: text_of(&i.cond),
            span: me.span(&*i.cond),
            proceeds_when_true: when,
        };
        if guarded {
            self.guards.push(mk(self, true));
        }
        let mut v = self.block(&i.then_branch);
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
        (v, after)
    }

    fn match_expr(&mut self, m: &syn::ExprMatch) -> (Val, Option<Guard>) {
        let scrut = self.expr(&m.expr);
        let guarded = scrut.has_read();
        let kind = if m.arms.iter().all(|a| pat_kind(&a.pat) == GuardKind::Exists) {
            GuardKind::Exists
        } else {
            GuardKind::Value
        };
        let guard = guarded.then(|| Guard {
            val: scrut.data(),
            kind,
            text: format!("match {}", text_of(&m.expr)),
            span: self.span(&*m.expr),
            proceeds_when_true: true,
        });
        let mut v = Val::default();
        let mut any_diverges = false;
        for arm in &m.arms {
            self.bind(&arm.pat, scrut.clone());
            if let Some(g) = &guard {
                self.guards.push(g.clone());
            }
            if let Some((_, g)) = &arm.guard {
                self.expr(g);
            }
            let a = self.expr(&arm.body);
            if expr_diverges(&arm.body) {
                any_diverges = true;
            }
            v.join(&a);
            if guarded {
                self.guards.pop();
            }
        }
        (v, guard.filter(|_| any_diverges))
    }

    fn mac(&mut self, m: &syn::Macro) -> Val {
        use syn::punctuated::Punctuated;
        let parsed = m.parse_body_with(Punctuated::<Expr, syn::Token![,]>::parse_terminated);
        match parsed {
            Ok(args) => {
                let v = self.exprs(&args);
                let name = m
                    .path
                    .segments
                    .last()
                    .map(|s| s.ident.to_string())
                    .unwrap_or_default();
                if matches!(name.as_str(), "vec" | "format" | "json") {
                    v
                } else {
                    // Logging and assertion macros do not produce data.
                    Val::default()
                }
            }
            Err(_) => Val::default(),
        }
    }

    // ----- calls ------------------------------------------------------------------------

    fn call(&mut self, c: &syn::ExprCall) -> Val {
        if let Expr::Path(p) = &*c.func {
            let segs: Vec<String> = p
                .path
                .segments
                .iter()
                .map(|s| s.ident.to_string())
                .collect();
            let last = segs.last().map(String::as_str).unwrap_or("");
            // `Put::builder()`, `TransactWriteItem::builder()`
            if last == "builder" && segs.len() >= 2 {
                if let Some(kind) = OpKind::from_type_name(&segs[segs.len() - 2]) {
                    let b = Builder::new(kind, String::new(), self.span(c));
                    return Val {
                        builder: Some(Box::new(b)),
                        ..Val::default()
                    };
                }
            }
            if FRESH.contains(&last)
                || (last.starts_with("new") && segs.iter().any(|s| s == "Uuid" || s == "Ulid"))
            {
                return Val::of(Origin::Fresh);
            }
            let args: Vec<Val> = c.args.iter().map(|a| self.expr(a)).collect();
            if let Some(v) = self.resolve_call(last, segs.len() >= 2, &args, c, None) {
                return v;
            }
            let mut v = Val::default();
            for a in &args {
                v.join(a);
                if let Some(b) = &a.builder {
                    v.members.push((**b).clone());
                }
            }
            self.helper_attrs(&mut v, &c.args);
            return v;
        }
        let f = self.expr(&c.func);
        let mut v = self.exprs(&c.args);
        v.join(&f.data());
        v
    }

    /// A call with read data and a string literal (`num(&item, "balance")`) reads that attribute.
    fn helper_attrs<'e>(&self, v: &mut Val, args: impl IntoIterator<Item = &'e Expr>) {
        if !v.has_read() {
            return;
        }
        let lits: Vec<String> = args.into_iter().filter_map(str_lit).collect();
        if !lits.is_empty() {
            v.attrs = lits.into_iter().collect();
        }
    }

    /// Compose a crate function's summary at a call site; `None` when nothing in the crate
    /// matters here.
    fn resolve_call(
        &mut self,
        name: &str,
        qualified: bool,
        args: &[Val],
        site: &impl Ends,
        receiver: Option<&Val>,
    ) -> Option<Val> {
        let global = self.env_.global;
        let candidates = global.by_name.get(name)?;
        let arity = args.len();
        let (pick, summary) = candidates
            .iter()
            .copied()
            .filter(|&id| id != self.id)
            .filter(|&id| {
                let f = &global.metas[id];
                match receiver {
                    Some(_) => f.has_self && f.arity == arity,
                    None => {
                        f.arity + usize::from(f.has_self && qualified) == arity
                            || f.inputs() == arity
                    }
                }
            })
            .find_map(|id| {
                let s = self.env_.summaries.get(id)?.as_ref()?;
                s.is_interesting().then(|| (id, s.clone()))
            })?;
        self.callees.push(pick);
        let mut full: Vec<Val> = vec![];
        if let Some(r) = receiver {
            full.push(r.data());
        }
        full.extend(args.iter().map(Val::data));
        Some(self.compose(&summary, &full, site, &global.metas[pick].qual))
    }

    fn compose(&mut self, s: &Summary, args: &[Val], site: &impl Ends, callee: &str) -> Val {
        let offset = self.ops.len();
        let call_span = self.span(site);
        let remap = |v: &Val| -> Val {
            let mut out = Val {
                arith: v.arith,
                computed_at: v.computed_at.clone(),
                delta: v.delta.clone(),
                attrs: v.attrs.clone(),
                ..Val::default()
            };
            for o in &v.origins {
                match o {
                    Origin::Read(k) => {
                        out.origins.insert(Origin::Read(k + offset));
                    }
                    Origin::Param(i) => {
                        if let Some(a) = args.get(*i) {
                            out.origins.extend(
                                a.origins
                                    .iter()
                                    .copied()
                                    .filter(|o| !matches!(o, Origin::Mem(_))),
                            );
                            out.attrs.extend(a.attrs.iter().cloned());
                            if a.arith && !out.arith {
                                out.arith = true;
                                out.computed_at = a.computed_at.clone();
                                out.delta = a.delta.clone();
                            }
                        }
                    }
                    Origin::Mem(_) => {}
                    other => {
                        out.origins.insert(*other);
                    }
                }
            }
            out
        };
        let remap_builder = |b: &Builder| -> Builder { map_builder(b, &remap) };
        for op in &s.ops {
            let mut guards = self.guards.clone();
            guards.extend(op.guards.iter().map(|g| Guard {
                val: remap(&g.val),
                ..g.clone()
            }));
            let mut loops = self.loops.clone();
            loops.extend(op.loops.iter().cloned());
            let mut via = vec![CallSite {
                span: call_span.clone(),
                callee: callee.to_string(),
            }];
            via.extend(op.via.iter().cloned());
            self.ops.push(Op {
                id: op.id + offset,
                req: remap_builder(&op.req),
                span: op.span.clone(),
                via,
                guards,
                loops,
                handling: op.handling,
                ccf_handled: op.ccf_handled || self.meta.mentions_ccf,
                function: op.function.clone(),
                result: remap(&op.result),
            });
        }
        remap(&s.ret)
    }

    fn method_call(&mut self, m: &syn::ExprMethodCall) -> Val {
        let method = m.method.to_string();
        // How the result of a `.send()` right below is handled.
        if is_send(&m.receiver) {
            match method.as_str() {
                "unwrap" | "expect" => self.handling_hint = Some(Handling::Panics),
                "unwrap_or_default" | "unwrap_or" | "ok" => {
                    self.handling_hint = Some(Handling::Ignored)
                }
                "map_err" | "or_else" | "context" | "with_context" => {
                    self.handling_hint = Some(Handling::Mapped);
                    self.ccf_hint = m.args.iter().any(|a| self.tells_ccf_apart(a));
                }
                _ => {}
            }
        }
        let recv = self.expr(&m.receiver);

        // A request builder being built, or sent.
        if let Some(b) = &recv.builder {
            return self.builder_method(b, m, &method);
        }
        if let Some((kind, input)) = rusoto_input(m) {
            let mut b = self.struct_builder(kind, text_of(&m.receiver), input);
            b.start = self.span(&*m.receiver);
            return self.execute(b, m);
        }
        if m.args.is_empty() {
            if let Some(kind) = OpKind::from_client_method(&method) {
                if !matches!(kind, OpKind::Query | OpKind::Scan) || looks_like_client(&m.receiver) {
                    let b = Builder::new(kind, text_of(&m.receiver), self.span(&*m.receiver));
                    return Val {
                        builder: Some(Box::new(b)),
                        ..Val::default()
                    };
                }
            }
        }

        // Shared state behind a lock or in an atomic.
        if LOCKS.contains(&method.as_str()) && m.args.is_empty() {
            let receiver = text_of(&m.receiver);
            self.acqs.push(Acquisition {
                receiver: receiver.clone(),
                span: self.span(m),
            });
            let mut v = Val::of(Origin::Mem(self.acqs.len() - 1));
            v.guard_of = Some(receiver);
            return v;
        }
        let is_ordering = |e: &Expr| {
            let t = text_of(e);
            [
                "Ordering", "SeqCst", "Relaxed", "Acquire", "Release", "AcqRel",
            ]
            .iter()
            .any(|o| t.contains(o))
        };
        if method == "load" && m.args.len() == 1 && is_ordering(&m.args[0]) {
            let receiver = text_of(&m.receiver);
            self.acqs.push(Acquisition {
                receiver,
                span: self.span(m),
            });
            return Val::of(Origin::Mem(self.acqs.len() - 1));
        }
        if method == "store" && m.args.len() == 2 && is_ordering(&m.args[1]) {
            let receiver = text_of(&m.receiver);
            let v = self.expr(&m.args[0]);
            self.acqs.push(Acquisition {
                receiver: receiver.clone(),
                span: self.span(m),
            });
            let dest = Val::of(Origin::Mem(self.acqs.len() - 1));
            let before = self.mem.len();
            if self.held_locks == 0 {
                self.check_mem_write(&receiver, &dest, &v, m);
            }
            for rmw in &mut self.mem[before..] {
                rmw.atomic = true;
            }
            return Val::default();
        }

        // Closures passed to a method see the receiver's data (`item.map(|i| i.get("x"))`).
        let mut args = vec![];
        for a in &m.args {
            if let Expr::Closure(c) = a {
                for input in &c.inputs {
                    self.bind(input, recv.data());
                }
                args.push(self.expr(&c.body));
            } else {
                args.push(self.expr(a));
            }
        }

        if MUTATORS.contains(&method.as_str()) {
            if let Some(r) = &recv.guard_of {
                let mut value = Val::default();
                args.iter().for_each(|a| value.join(a));
                self.check_mem_write(r, &recv, &value, m);
            }
            // `items.push(x)`: the collection now carries x.
            if let Some(root) = root_ident(&m.receiver) {
                if let Some(slot) = self.env.get_mut(&root) {
                    for a in &args {
                        slot.join(&a.data());
                        slot.members.extend(a.members.iter().cloned());
                        if let Some(b) = &a.builder {
                            slot.members.push((**b).clone());
                        }
                    }
                }
            }
        }

        // A method of the crate's own (a repository, a helper). Names the standard library uses
        // (`get`, `insert`) resolve only on receivers that look like a store, so `body.get(..)`
        // is not taken for `Repo::get`.
        let std_name = STD_METHODS.contains(&method.as_str());
        let storey = || {
            let t = text_of(&m.receiver).to_ascii_lowercase();
            [
                "self", "repo", "store", "db", "dao", "client", "service", "table", "storage",
            ]
            .iter()
            .any(|k| t.contains(k))
        };
        let typed = || {
            let Some(root) = root_ident(&m.receiver) else {
                return false;
            };
            let Some(types) = self.param_types.get(&root) else {
                return false;
            };
            let g = self.env_.global;
            g.by_name.get(&method).is_some_and(|ids| {
                ids.iter().any(|id| {
                    g.metas[*id]
                        .self_ty
                        .as_ref()
                        .is_some_and(|t| types.contains(t))
                })
            })
        };
        if (!recv.has_read() || recv.origins.iter().any(|o| matches!(o, Origin::Param(_))))
            && (!std_name || storey() || typed())
        {
            if let Some(v) = self.resolve_call(&method, true, &args, m, Some(&recv)) {
                return v;
            }
        }

        let mut v = recv.data();
        if matches!(
            method.as_str(),
            "unwrap" | "expect" | "get_mut" | "entry" | "as_mut" | "deref_mut"
        ) {
            v.guard_of = recv.guard_of.clone();
        }
        v.members = recv.members.clone();
        for a in &args {
            v.join(&a.data());
            v.members.extend(a.members.iter().cloned());
        }
        if recv.has_read() && matches!(method.as_str(), "get" | "get_attr" | "remove") {
            if let Some(s) = m.args.first().and_then(str_lit) {
                v.attrs = [s].into();
            }
        } else if recv.has_read() || args.iter().any(Val::has_read) {
            self.helper_attrs(&mut v, &m.args);
        }
        v
    }

    fn builder_method(&mut self, b: &Builder, m: &syn::ExprMethodCall, method: &str) -> Val {
        if method == "send" {
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
                    val: val.data(),
                    text: arg(1).map(text_of).unwrap_or_default(),
                };
                match method {
                    "key" => nb.key.push(part),
                    "item" => nb.item.push(part),
                    _ => nb.values.push(part),
                }
            }
            "set_key" => {
                nb.key_whole = Some(arg(0).map(|a| self.expr(a).data()).unwrap_or_default())
            }
            "set_item" => {
                let a = arg(0);
                nb.item_whole = Some(Part {
                    name: "*".into(),
                    val: a.map(|a| self.expr(a).data()).unwrap_or_default(),
                    text: a.map(text_of).unwrap_or_default(),
                })
            }
            "set_expression_attribute_values" => {
                nb.values_whole = Some(arg(0).map(|a| self.expr(a).data()).unwrap_or_default())
            }
            "expression_attribute_names" => {
                if let (Some(k), Some(v)) = (lit(0), lit(1)) {
                    nb.names.push((k, v));
                }
            }
            "condition_expression" | "set_condition_expression" => {
                nb.condition = match arg(0).map(strip) {
                    Some(Expr::Path(p)) if p.path.is_ident("None") => Cond::ExplicitNone,
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
                    let v = self.expr(a);
                    if let Some(x) = v.builder {
                        push_member(&mut nb, *x);
                    }
                    for x in v.members {
                        push_member(&mut nb, x);
                    }
                }
            }
            "build" => {}
            "request_items" if nb.kind == OpKind::BatchWriteItem => {
                if let Some(a) = arg(0) {
                    nb.table = self.table_ref(a);
                }
                let v = arg(1).map(|a| self.expr(a)).unwrap_or_default();
                nb.other.join(&v.data());
            }
            _ => {
                let v = self.exprs(&m.args);
                nb.other.join(&v.data());
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
    fn tells_ccf_apart(&self, a: &Expr) -> bool {
        match strip(a) {
            Expr::Path(p) => p.path.segments.last().is_some_and(|s| {
                let g = self.env_.global;
                g.by_name
                    .get(&s.ident.to_string())
                    .is_some_and(|ids| ids.iter().any(|id| g.metas[*id].mentions_ccf))
            }),
            other => super::index::mentions_ccf(&text_of(other)),
        }
    }

    /// The request is sent: record the operation with what surrounds it.
    fn execute(&mut self, b: Builder, m: &syn::ExprMethodCall) -> Val {
        let handling = self.handling_hint.take().unwrap_or(Handling::Bound);
        let ccf_hint = std::mem::take(&mut self.ccf_hint);
        let id = self.ops.len();
        let send_span = self.span(m);
        let span = Span {
            file: b.start.file.clone(),
            line: b.start.line,
            column: b.start.column,
            end_line: send_span.end_line,
            end_column: send_span.end_column,
        };
        let result = if b.kind.is_read() {
            Val::of(Origin::Read(id))
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
    fn struct_builder(&mut self, kind: OpKind, client: String, s: &syn::ExprStruct) -> Builder {
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
                "key" => b.key_whole = Some(self.expr(value).data()),
                "item" => {
                    b.item_whole = Some(Part {
                        name: "*".into(),
                        val: self.expr(value).data(),
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
                "expression_attribute_values" => b.values_whole = Some(self.expr(value).data()),
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
                    b.other.join(&v.data());
                    for x in v.members {
                        push_member(&mut b, x);
                    }
                }
            }
        }
        b
    }

    fn table_ref(&mut self, a: &Expr) -> TableRef {
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

    fn text_arg(&mut self, a: &Expr) -> Text {
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

fn push_member(b: &mut Builder, m: Builder) {
    if m.kind == OpKind::TxItem {
        b.members.extend(m.members);
    } else {
        b.members.push(m);
    }
}

fn unwrap_some(a: &Expr) -> &Expr {
    match strip(a) {
        Expr::Call(c) if c.args.len() == 1 && path_ends(&c.func, &["Some"]) => &c.args[0],
        other => other,
    }
}

fn strip_try(e: &Expr) -> &Expr {
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
fn looks_like_client(e: &Expr) -> bool {
    let t = text_of(e).to_ascii_lowercase();
    ["client", "dynamo", "ddb", "db"]
        .iter()
        .any(|k| t.contains(k))
}

/// Every type name a type mentions.
fn type_names(ty: &syn::Type) -> Vec<String> {
    use syn::visit::Visit;
    #[derive(Default)]
    struct V(Vec<String>);
    impl<'a> Visit<'a> for V {
        fn visit_path_segment(&mut self, s: &'a syn::PathSegment) {
            self.0.push(s.ident.to_string());
            syn::visit::visit_path_segment(self, s);
        }
    }
    let mut v = V::default();
    v.visit_type(ty);
    v.0
}

fn root_ident(e: &Expr) -> Option<String> {
    match strip(e) {
        Expr::Path(p) if p.path.segments.len() == 1 => Some(p.path.segments[0].ident.to_string()),
        Expr::Field(f) => root_ident(&f.base),
        Expr::Index(i) => root_ident(&i.expr),
        Expr::MethodCall(m) => root_ident(&m.receiver),
        Expr::Unary(u) => root_ident(&u.expr),
        _ => None,
    }
}

fn map_builder(b: &Builder, f: &impl Fn(&Val) -> Val) -> Builder {
    let part = |p: &Part| Part {
        name: p.name.clone(),
        val: f(&p.val),
        text: p.text.clone(),
    };
    Builder {
        kind: b.kind,
        client: b.client.clone(),
        table: b.table.clone(),
        key: b.key.iter().map(part).collect(),
        key_whole: b.key_whole.as_ref().map(f),
        item: b.item.iter().map(part).collect(),
        item_whole: b.item_whole.as_ref().map(part),
        condition: b.condition.clone(),
        update: b.update.clone(),
        values: b.values.iter().map(part).collect(),
        values_whole: b.values_whole.as_ref().map(f),
        names: b.names.clone(),
        members: b.members.iter().map(|m| map_builder(m, f)).collect(),
        other: f(&b.other),
        start: b.start.clone(),
    }
}
