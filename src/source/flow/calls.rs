//! Calls into the crate: resolved by name, arity and receiver, and composed from the callee's
//! summary; calls out of it (fresh values, unknown helpers) pass their arguments' provenance on.

use syn::Expr;

use super::memory::MUTATORS;
use super::syntax::*;
use super::Walker;
use crate::source::facts::*;
use crate::source::index::{str_lit, FnId};
use crate::source::span::Ends;

/// Method names of the standard library and common crates.
pub(super) const STD_METHODS: &[&str] = &[
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
    "default",
    "send",
    "json",
];

/// Calls whose result is fresh: a new identifier or a clock reading.
pub(super) const FRESH: &[&str] = &[
    "new_v4", "new_v7", "now_v7", "now", "now_utc", "new_ulid", "generate", "random", "nanoid",
];

/// Calls that fill a buffer with random bytes (`getrandom::fill(&mut buf)`,
/// `rng.fill_bytes(&mut buf)`): the buffer they are given holds a fresh value afterwards.
const RANDOM_FILL: &[&str] = &[
    "fill",
    "getrandom",
    "fill_bytes",
    "try_fill_bytes",
    "try_fill",
    "fill_random",
];

/// Methods of a random source whose result is fresh (`rng.gen::<u64>()`,
/// `Alphanumeric.sample_string(&mut rng, 32)`).
const RANDOM_METHODS: &[&str] = &["gen", "random", "sample_string", "sample_iter", "next_u64"];

/// Methods that hand back the SDK's output (or a part of it) as it is.
const RAW_KEEPING: &[&str] = &[
    "unwrap",
    "expect",
    "unwrap_or_default",
    "unwrap_or",
    "unwrap_or_else",
    "ok",
    "map_err",
    "context",
    "with_context",
    "get",
    "get_mut",
    "remove",
    "ok_or",
    "ok_or_else",
    "clone",
    "cloned",
    "as_ref",
    "item",
    "items",
    "attributes",
    "responses",
    "iter",
    "into_iter",
    "first",
    "last",
];

/// Methods whose string arguments are messages, not attribute names.
const ERROR_METHODS: &[&str] = &[
    "ok_or",
    "ok_or_else",
    "expect",
    "context",
    "with_context",
    "unwrap_or",
    "map_err",
    "wrap_err",
];

/// How a call names its callee.
pub(super) enum Resolve {
    /// `f(x)`.
    Free,
    /// `Type::f(x)` or `module::f(x)`: the qualifier.
    Path(String),
    /// `recv.f(x)`, with the receiver's possible types where known.
    Method(Vec<String>),
}

/// A receiver whose name says it is a store: `self`, `repo`, `users_db`, `state.store`.
fn storey(e: &Expr) -> bool {
    const STORE_WORDS: &[&str] = &[
        "self",
        "repo",
        "repository",
        "store",
        "db",
        "ddb",
        "dynamo",
        "dynamodb",
        "dao",
        "client",
        "service",
        "table",
        "storage",
    ];
    words(&text_of(e))
        .iter()
        .any(|w| STORE_WORDS.contains(&w.as_str()))
}

/// A receiver that is a random source: `rng`, `thread_rng()`, `OsRng`, `rand::rng()`,
/// `Alphanumeric`.
fn random_source(e: &Expr) -> bool {
    let text = text_of(e);
    words(&text)
        .iter()
        .any(|w| matches!(w.as_str(), "rng" | "rand" | "random" | "alphanumeric"))
}

impl Walker<'_, '_, '_> {
    /// `fill(&mut buf)`: the locals given by `&mut` now hold random bytes. Whether any was.
    fn fill_random(&mut self, args: &syn::punctuated::Punctuated<Expr, syn::Token![,]>) -> bool {
        let mut filled = false;
        for a in args {
            let Expr::Reference(r) = strip_paren(a) else {
                continue;
            };
            if r.mutability.is_none() {
                continue;
            }
            if let Some(root) = root_ident(&r.expr) {
                self.env.insert(root, Val::of(Origin::Fresh));
                filled = true;
            }
        }
        filled
    }

    /// `configure(builder)` where `configure` is a closure parameter (`C: FnOnce(PutItem) ->
    /// PutItem`): the builder comes back, to be configured by the caller's closure.
    fn configure_call(&self, name: &str, args: &[Val]) -> Option<Val> {
        let types = self.param_types.get(name)?;
        if !types
            .iter()
            .any(|t| matches!(t.as_str(), "FnOnce" | "Fn" | "FnMut"))
        {
            return None;
        }
        let [arg] = args else { return None };
        let mut b = (**arg.builder.as_ref()?).clone();
        let Some(Origin::Param(i)) = self.env.get(name)?.origins.iter().next().copied() else {
            return None;
        };
        b.configured_by = Some(i);
        Some(Val {
            builder: Some(Box::new(b)),
            ..Val::default()
        })
    }

    /// A wrapper client's method that hands back the SDK's request builder, configured further
    /// here (`client.put_entity(TABLE, &user)?.condition_expression(..)`,
    /// `db.get_item(TABLE).key(..)`): the request it starts, with the table and item it was
    /// given.
    fn wrapper_request(
        &mut self,
        m: &syn::ExprMethodCall,
        method: &str,
        recv: &Val,
    ) -> Option<Builder> {
        if !WRAPPED_BUILDER_METHODS.contains(&method) {
            return None;
        }
        let Expr::MethodCall(inner) = strip_try(&m.receiver) else {
            return None;
        };
        let kind = wrapper_kind(&inner.method.to_string())?;
        if inner.args.is_empty() || !looks_like_client(&inner.receiver) {
            return None;
        }
        let mut b = Builder::new(kind, text_of(&inner.receiver), self.span(&*inner.receiver));
        b.table = self.table_ref(&inner.args[0]);
        if inner.args.len() > 1 {
            let val = recv.data();
            match kind {
                OpKind::PutItem => {
                    b.item_whole = Some(Part {
                        name: "*".into(),
                        val,
                        text: text_of(&inner.args[1]),
                    })
                }
                _ => b.key_whole = Some(val),
            }
        }
        Some(b)
    }

    pub(super) fn call(&mut self, c: &syn::ExprCall) -> Val {
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
                let ty = &segs[segs.len() - 2];
                if let Some(kind) =
                    OpKind::from_type_name(ty).or_else(|| OpKind::from_input_type(ty))
                {
                    let b = Builder::new(kind, String::new(), self.span(c));
                    return Val {
                        builder: Some(Box::new(b)),
                        ..Val::default()
                    };
                }
            }
            if FRESH.contains(&last)
                || (last.starts_with("new") && segs.iter().any(|s| s == "Uuid" || s == "Ulid"))
                || (fresh_name(last) && !self.env_.global.by_name.contains_key(last))
            {
                return Val::of(Origin::Fresh);
            }
            // `Ok(x)`, `Some(x)`, `Box::new(x)`, `Arc::new(x)`: the value itself, builder and all.
            let wrapper = matches!(last, "Ok" | "Some")
                || (last == "new"
                    && segs.len() >= 2
                    && matches!(segs[segs.len() - 2].as_str(), "Box" | "Arc" | "Rc"));
            if wrapper && c.args.len() == 1 {
                return self.expr(&c.args[0]);
            }
            if segs
                .iter()
                .any(|s| s == "DeleteRequest" || s == "PutRequest")
            {
                let mut v = self.exprs(&c.args);
                v.deletes |= segs.iter().any(|s| s == "DeleteRequest");
                v.puts |= segs.iter().any(|s| s == "PutRequest");
                return v;
            }
            let args: Vec<Val> = c.args.iter().map(|a| self.expr(a)).collect();
            if segs.len() == 1 {
                if let Some(v) = self.configure_call(last, &args) {
                    return v;
                }
            }
            if RANDOM_FILL.contains(&last) {
                self.fill_random(&c.args);
            }
            let by = match segs.len() {
                1 => Resolve::Free,
                n => match segs[n - 2].as_str() {
                    "super" | "crate" | "self" => Resolve::Free,
                    q => Resolve::Path(self.path_qualifier(q)),
                },
            };
            if let Some(v) = self.resolve_call(last, by, &args, c, None) {
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
        // `(self.save)(x)`, `(repo.get_user)(id)`: a function held in a field, most often the
        // crate function of the field's name.
        if let Expr::Field(fl) = strip_paren(&c.func) {
            if let syn::Member::Named(name) = &fl.member {
                let args: Vec<Val> = c.args.iter().map(|a| self.expr(a)).collect();
                if let Some(v) = self.resolve_call(&name.to_string(), Resolve::Free, &args, c, None)
                {
                    return v;
                }
                let mut v = Val::default();
                for a in &args {
                    v.join(a);
                }
                return v;
            }
        }
        let f = self.expr(&c.func);
        let mut v = self.exprs(&c.args);
        v.join(&f.data());
        v
    }

    /// A call with read data and a string literal (`num(&item, "balance")`) reads that attribute.
    pub(super) fn helper_attrs<'e>(&self, v: &mut Val, args: impl IntoIterator<Item = &'e Expr>) {
        if !v.has_read() {
            return;
        }
        // An attribute name is one word (`balance`, `#n`, `user_id`), not a message
        // (`ok_or("no game")`, `expect("id is missing")`).
        let lits: Vec<String> = args
            .into_iter()
            .filter_map(str_lit)
            .filter(|s| {
                !s.is_empty()
                    && s.len() <= 64
                    && s.chars()
                        .all(|c| c.is_alphanumeric() || "_-.#:".contains(c))
            })
            .collect();
        if !lits.is_empty() {
            v.attrs = lits.into_iter().collect();
        }
    }

    /// `Self` in a path means the type of the method being walked.
    fn path_qualifier(&self, q: &str) -> String {
        match (q, &self.meta.self_ty) {
            ("Self", Some(t)) => t.clone(),
            _ => q.to_string(),
        }
    }

    /// The types a method's receiver can have, where the code says: a parameter's type (with
    /// its generic bounds), `self`, a field of either (`self.repo`, `state.users`), and every
    /// type implementing a trait among them.
    pub(super) fn receiver_types(&self, e: &Expr) -> Vec<String> {
        let g = self.env_.global;
        let names: Vec<String> = match strip(e) {
            Expr::Path(p) if p.path.segments.len() == 1 => {
                let n = p.path.segments[0].ident.to_string();
                if n == "self" {
                    self.meta.self_ty.iter().cloned().collect()
                } else {
                    self.param_types.get(&n).cloned().unwrap_or_default()
                }
            }
            Expr::Field(f) => {
                let syn::Member::Named(field) = &f.member else {
                    return vec![];
                };
                let field = field.to_string();
                self.receiver_types(&f.base)
                    .iter()
                    .filter_map(|t| g.fields.get(&(t.clone(), field.clone())))
                    .flatten()
                    .cloned()
                    .collect()
            }
            Expr::MethodCall(m)
                if m.args.is_empty()
                    && matches!(
                        m.method.to_string().as_str(),
                        "clone" | "as_ref" | "borrow" | "deref" | "unwrap" | "lock" | "read"
                    ) =>
            {
                self.receiver_types(&m.receiver)
            }
            _ => vec![],
        };
        g.concrete(&names)
    }

    /// Compose a crate function's summary at a call site; `None` when nothing in the crate
    /// matters here. Among functions of one name, the one the path or the receiver's type
    /// names wins; a path that names something else (`serde_json::from_str`) resolves to
    /// nothing of the crate.
    pub(super) fn resolve_call(
        &mut self,
        name: &str,
        by: Resolve,
        args: &[Val],
        site: &impl Ends,
        receiver: Option<&Val>,
    ) -> Option<Val> {
        let global = self.env_.global;
        let candidates = global.by_name.get(name)?;
        let arity = args.len();
        let fits = |id: FnId| {
            let f = &global.metas[id];
            match &by {
                Resolve::Method(_) => f.has_self && f.arity == arity,
                Resolve::Free => f.arity == arity || f.inputs() == arity,
                Resolve::Path(_) => f.arity + usize::from(f.has_self) == arity || f.arity == arity,
            }
        };
        let summary_of = |id: FnId| {
            let s = self.env_.summaries.get(id)?.get()?;
            s.is_interesting().then(|| (id, s.clone()))
        };
        let named = |id: FnId, types: &[String]| types.iter().any(|t| global.metas[id].named_by(t));
        // Functions of the caller's own crate first: two crates of a workspace often define
        // the same names.
        let home = &self.meta.crate_root;
        let mut ordered: Vec<FnId> = candidates.clone();
        ordered.sort_by_key(|&id| global.metas[id].crate_root != *home);
        let mut ids = ordered.into_iter().filter(|&id| id != self.id && fits(id));
        let (pick, summary) = match &by {
            Resolve::Path(q) => {
                let want = [q.clone()];
                let mut found = ids.filter(|&id| named(id, &want)).filter_map(summary_of);
                let first = found.next()?;
                // `Dto::map_from(x)` with one impl per source type: which one runs depends on
                // the argument's type, unknown here. A pure conversion is then taken as
                // passing its argument on, not as one impl's particular result.
                if first.1.ops.is_empty() && found.next().is_some() {
                    return None;
                }
                first
            }
            Resolve::Method(types) if !types.is_empty() => {
                // The receiver's type first; among types of one name, the one whose module the
                // receiver's type path names (`ddb::token::Repository`).
                let all: Vec<FnId> = ids.collect();
                let score = |id: FnId| {
                    let f = &global.metas[id];
                    2 * usize::from(named(id, types)) + usize::from(types.contains(&f.module))
                };
                let mut best: Option<(usize, (FnId, std::sync::Arc<Summary>))> = None;
                for &id in &all {
                    let sc = score(id);
                    if sc >= 2 && best.as_ref().is_none_or(|(b, _)| sc > *b) {
                        if let Some(x) = summary_of(id) {
                            best = Some((sc, x));
                        }
                    }
                }
                match best {
                    Some((_, x)) => x,
                    None => all.iter().copied().find_map(summary_of)?,
                }
            }
            _ => ids.find_map(summary_of)?,
        };
        self.callees.push(pick);
        let mut full: Vec<Val> = vec![];
        if let Some(r) = receiver {
            full.push(r.data());
        }
        full.extend(args.iter().map(Val::with_parts));
        Some(self.compose(&summary, &full, site, &global.metas[pick].qual))
    }

    pub(super) fn compose(
        &mut self,
        s: &Summary,
        args: &[Val],
        site: &impl Ends,
        callee: &str,
    ) -> Val {
        let offset = self.ops.len();
        let call_span = self.span(site);
        let remap = |v: &Val| remap_val(v, offset, args);
        let remap_builder = |b: &Builder| -> Builder {
            let mut out = bind_configured(bind_param_builder(map_builder(b, &remap), args), args);
            bind_param_members(&mut out, args);
            out
        };
        if s.capped {
            self.capped = true;
        }
        for op in &s.ops {
            if self.ops.len() >= MAX_OPS || op.via.len() >= MAX_DEPTH {
                self.capped = true;
                continue;
            }
            let mut guards = self.guards.clone();
            guards.extend(op.guards.iter().map(|g| Guard {
                val: remap(&g.val),
                differs_from: g.differs_from.as_ref().map(remap),
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
        let mut ret = remap(&s.ret);
        ret.builder = s.ret.builder.as_ref().map(|b| Box::new(remap_builder(b)));
        ret.members = s.ret.members.iter().map(remap_builder).collect();
        ret
    }

    pub(super) fn method_call(&mut self, m: &syn::ExprMethodCall) -> Val {
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
        if let Some(b) = self.wrapper_request(m, &method, &recv) {
            return self.builder_method(&b, m, &method);
        }
        // The one argument, evaluated once: a rusoto request, or an argument like any other.
        let mut first_arg: Option<Val> = None;
        if let Some(kind) = rusoto_call(m) {
            let a = self.expr(&m.args[0]);
            if let Some(b) = a.builder.as_ref().filter(|b| b.kind == kind) {
                let mut b = (**b).clone();
                b.client = text_of(&m.receiver);
                return self.execute(b, m);
            }
            first_arg = Some(a);
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
        if let Some(v) = self.shared_state(m, &method) {
            return v;
        }

        // Closures passed to a method see the receiver's data (`item.map(|i| i.get("x"))`).
        let mut args = vec![];
        for (i, a) in m.args.iter().enumerate() {
            if i == 0 {
                if let Some(v) = first_arg.take() {
                    args.push(v);
                    continue;
                }
            }
            if let Expr::Closure(c) = a {
                if configures(c).is_some() {
                    args.push(self.expr(a));
                    continue;
                }
                let mark = self.scope();
                for input in &c.inputs {
                    self.bind(input, recv.data());
                }
                args.push(self.expr(&c.body));
                self.unwind(mark);
            } else {
                args.push(self.expr(a));
            }
        }

        if RANDOM_FILL.contains(&method.as_str()) && self.fill_random(&m.args) {
            return Val::default();
        }
        if RANDOM_METHODS.contains(&method.as_str()) && random_source(&m.receiver) {
            return Val::of(Origin::Fresh);
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
                    if slot.has_read() && !args.iter().any(|a| a.arith) {
                        slot.edited = true;
                    }
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
        // Only a name the crate defines can resolve: skip the type work for the others.
        let types = if self.env_.global.by_name.contains_key(&method) {
            self.receiver_types(&m.receiver)
        } else {
            vec![]
        };
        let typed = || {
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
        // A method on read data (`session.save()`, `item.to_put()`) resolves when its name is
        // not the standard library's, or the data's type says so; the SDK's output does not.
        let on_data = recv.has_read() && recv.params().next().is_none();
        let resolvable = if on_data {
            !recv.raw && (!std_name || typed())
        } else {
            !std_name || storey(&m.receiver) || typed()
        };
        if resolvable {
            let by = Resolve::Method(types.clone());
            if let Some(v) = self.resolve_call(&method, by, &args, m, Some(&recv)) {
                return v;
            }
        }

        let mut v = recv.data();
        v.deletes |= matches!(method.as_str(), "delete_request" | "set_delete_request");
        v.puts |= matches!(method.as_str(), "put_request" | "set_put_request");
        // Only unwrapping and the SDK's own getters keep the output raw.
        v.raw = recv.raw && RAW_KEEPING.contains(&method.as_str());
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
        let presence = method_polarity(&method);
        if presence.is_some() && recv.has_read() && recv.attrs.is_empty() {
            v.presence = presence;
        } else if matches!(method.as_str(), "map" | "and_then" | "map_ok") {
            // `.map(|item| item.is_some())`: the closure's flag is the result.
            if let (Some(Expr::Closure(_)), Some(a)) = (m.args.first(), args.first()) {
                if a.presence.is_some() {
                    v.presence = a.presence;
                }
            }
        }
        if recv.has_read() && matches!(method.as_str(), "get" | "get_attr" | "remove") {
            if let Some(s) = m.args.first().and_then(str_lit) {
                v.attrs = [s].into();
            }
        } else if (recv.has_read() || args.iter().any(Val::has_read))
            && !ERROR_METHODS.contains(&method.as_str())
        {
            self.helper_attrs(&mut v, &m.args);
        }
        v
    }
}

/// Builders the caller passes for parameters that the callee adds as members.
fn bind_param_members(b: &mut Builder, args: &[Val]) {
    for m in &mut b.members {
        bind_param_members(m, args);
    }
    let params = std::mem::take(&mut b.param_members);
    for i in params {
        let Some(a) = args.get(i) else { continue };
        if let Some(x) = &a.builder {
            super::sdk::push_member(b, (**x).clone());
        }
        for x in &a.members {
            super::sdk::push_member(b, x.clone());
        }
        if a.builder.is_none() && a.members.is_empty() {
            // Still a parameter one level up: bound when that call is composed.
            b.param_members.extend(a.params());
        }
    }
}

pub(super) fn map_builder(b: &Builder, f: &impl Fn(&Val) -> Val) -> Builder {
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
        param_members: b.param_members.clone(),
        legacy_updates: b.legacy_updates.clone(),
        legacy_expected: b.legacy_expected.clone(),
        index: b.index.clone(),
        selects: b.selects.clone(),
        other: f(&b.other),
        start: b.start.clone(),
        from_param: b.from_param,
        configured_by: b.configured_by,
    }
}

/// A builder the callee handed to a closure of the caller's before sending it: what the
/// closure set (an update, a condition, values) is part of the request.
fn bind_configured(mut b: Builder, args: &[Val]) -> Builder {
    let Some(theirs) = b
        .configured_by
        .take()
        .and_then(|i| args.get(i)?.builder.as_deref())
        .filter(|t| t.client == CONFIGURING)
    else {
        return b;
    };
    absorb(&mut b, theirs.clone());
    if theirs.key_whole.is_some() {
        b.key_whole = theirs.key_whole.clone();
    }
    if theirs.item_whole.is_some() {
        b.item_whole = theirs.item_whole.clone();
    }
    if theirs.values_whole.is_some() {
        b.values_whole = theirs.values_whole.clone();
    }
    if theirs.index.is_some() {
        b.index = theirs.index.clone();
    }
    if theirs.selects.is_some() {
        b.selects = theirs.selects.clone();
    }
    b
}

/// What `extra` adds to `base`, the same request built in two places: its parts, and its
/// condition and update where it sets them.
fn absorb(base: &mut Builder, extra: Builder) {
    base.key.extend(extra.key);
    base.item.extend(extra.item);
    base.values.extend(extra.values);
    base.names.extend(extra.names);
    if extra.condition.is_present() {
        base.condition = extra.condition;
    }
    if extra.update.is_some() {
        base.update = extra.update;
    }
    base.other.join(&extra.other);
}

/// A library function named for a new identifier (`generate_id()`, `new_token()`,
/// `random_code()`): its result is fresh. The crate's own are read instead.
fn fresh_name(name: &str) -> bool {
    let w = words(name);
    matches!(&w[..], [verb, noun]
    if matches!(verb.as_str(), "generate" | "gen" | "random" | "new" | "make")
        && matches!(
            noun.as_str(),
            "id" | "uuid" | "ulid" | "token" | "key" | "nonce" | "code" | "secret"
        ))
}

/// Builder methods that say the value they are called on is a DynamoDB request.
const WRAPPED_BUILDER_METHODS: &[&str] = &[
    "key",
    "item",
    "set_key",
    "set_item",
    "condition_expression",
    "update_expression",
    "expression_attribute_values",
    "expression_attribute_names",
    "key_condition_expression",
    "filter_expression",
    "consistent_read",
    "return_values",
    "index_name",
    "projection_expression",
    // Sent as it came (`client.put_entity(TABLE, &user)?.send()`): the wrapper's name and its
    // table argument say it is a request.
    "send",
];

/// The request a wrapper's method starts, by its name: the SDK's own names taking a table
/// (`get_item(TABLE)`), or a verb and what it stores (`put_entity`, `delete_record`).
fn wrapper_kind(name: &str) -> Option<OpKind> {
    if let Some(kind) = OpKind::from_client_method(name) {
        return Some(kind);
    }
    let w = words(name);
    let [verb, noun] = &w[..] else { return None };
    if !matches!(
        noun.as_str(),
        "entity" | "record" | "item" | "doc" | "document" | "object" | "row" | "model"
    ) {
        return None;
    }
    Some(match verb.as_str() {
        "put" | "save" | "insert" => OpKind::PutItem,
        "get" | "load" | "fetch" => OpKind::GetItem,
        "update" => OpKind::UpdateItem,
        "delete" | "remove" => OpKind::DeleteItem,
        _ => return None,
    })
}

/// The client name of the builder a configuring closure is given (`|b| b.update_expression(..)`).
pub(super) const CONFIGURING: &str = "|configure|";

/// Builder methods a closure that configures a request calls on its argument.
const CONFIGURE_METHODS: &[&str] = &[
    "key",
    "item",
    "set_key",
    "set_item",
    "condition_expression",
    "set_condition_expression",
    "update_expression",
    "set_update_expression",
    "expression_attribute_values",
    "expression_attribute_names",
    "set_expression_attribute_values",
    "set_expression_attribute_names",
    "return_values",
    "consistent_read",
    "index_name",
    "key_condition_expression",
    "filter_expression",
    "projection_expression",
    "limit",
    "scan_index_forward",
    "exclusive_start_key",
    "set_exclusive_start_key",
    "select",
    "return_values_on_condition_check_failure",
];

/// `|b| b.condition_expression(..).expression_attribute_values(..)`: a closure whose body is a
/// chain of request-builder methods on its one argument; the argument's name.
pub(super) fn configures(c: &syn::ExprClosure) -> Option<String> {
    let [input] = c.inputs.iter().collect::<Vec<_>>()[..] else {
        return None;
    };
    let name = match input {
        syn::Pat::Ident(i) => i.ident.to_string(),
        syn::Pat::Type(t) => match &*t.pat {
            syn::Pat::Ident(i) => i.ident.to_string(),
            _ => return None,
        },
        _ => return None,
    };
    let mut e = strip_paren(&c.body);
    // `|b| { b.update_expression(..) }`
    if let Expr::Block(b) = e {
        match &b.block.stmts[..] {
            [syn::Stmt::Expr(x, None)] => e = strip_paren(x),
            _ => return None,
        }
    }
    let mut calls = 0;
    loop {
        match e {
            Expr::MethodCall(m) if CONFIGURE_METHODS.contains(&m.method.to_string().as_str()) => {
                calls += 1;
                e = strip_paren(&m.receiver);
            }
            Expr::Path(p) if p.path.is_ident(&name) => break,
            _ => return None,
        }
    }
    (calls > 0).then_some(name)
}

/// A builder the callee took as a parameter and sent: the caller's argument, with what the
/// callee added to it (a start key, a condition).
fn bind_param_builder(b: Builder, args: &[Val]) -> Builder {
    let Some(theirs) = b.from_param.and_then(|i| args.get(i)?.builder.as_deref()) else {
        return b;
    };
    if theirs.kind != b.kind {
        return b;
    }
    let mut out = theirs.clone();
    if !matches!(b.table, TableRef::Unknown) {
        out.table = b.table.clone();
    }
    absorb(&mut out, b);
    out
}

/// A callee's value in the caller's terms: its reads renumbered after the caller's, its
/// parameters replaced by the arguments' provenance; whether it may be `None` stays the
/// callee's affair.
fn remap_val(v: &Val, offset: usize, args: &[Val]) -> Val {
    let mut out = Val {
        origins: Default::default(),
        maybe_none: false,
        ..v.data()
    };
    out.fields = v.fields.as_ref().map(|f| {
        std::sync::Arc::new(
            f.iter()
                .map(|(k, x)| (k.clone(), remap_val(x, offset, args)))
                .collect(),
        )
    });
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
                    out.edited |= a.edited;
                    if a.arith && !out.arith {
                        out.arith = true;
                        out.computed_at = a.computed_at.clone();
                        out.delta = a.delta.clone();
                    }
                    // A parameter handed back as it is keeps the argument's parts.
                    if v.origins.len() == 1 && v.fields.is_none() {
                        out.fields = a.fields.clone();
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
}
