//! The crate index: every function under its name, constants, and the source text, built once.

use std::collections::HashMap;
use std::sync::Arc;

use syn::visit::Visit;

use super::span::{Ends, FnItem};

use super::facts::Span;

/// One parsed source file. Its syntax tree belongs to the thread that parsed it (spans refer
/// to that thread's source map); its text is shared.
pub struct SourceFile {
    pub text: Arc<FileText>,
    pub ast: syn::File,
}

impl SourceFile {
    pub fn new(path: Arc<str>, text: String, ast: syn::File) -> SourceFile {
        SourceFile {
            text: Arc::new(FileText::new(path, text)),
            ast,
        }
    }
}

/// A file's path and text, with line lookup.
pub struct FileText {
    /// The path as shown to the user.
    pub path: Arc<str>,
    pub text: String,
    /// Byte offset of each line start.
    line_starts: Vec<usize>,
}

impl FileText {
    pub fn new(path: Arc<str>, text: String) -> FileText {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        FileText {
            path,
            text,
            line_starts,
        }
    }

    pub fn line_count(&self) -> usize {
        self.line_starts.len()
    }

    /// The text of 1-based line `n`, without its newline.
    pub fn line(&self, n: u32) -> &str {
        let i = (n as usize).saturating_sub(1);
        let Some(&start) = self.line_starts.get(i) else {
            return "";
        };
        let end = self
            .line_starts
            .get(i + 1)
            .map(|e| e - 1)
            .unwrap_or(self.text.len());
        self.text[start..end].trim_end_matches('\r')
    }

    /// The source text a span covers (1-based, columns in characters).
    pub fn slice(&self, span: &Span) -> String {
        let mut out = String::new();
        for n in span.line..=span.end_line {
            let line = self.line(n);
            let from = if n == span.line {
                (span.column as usize).saturating_sub(1)
            } else {
                0
            };
            let to = if n == span.end_line {
                (span.end_column as usize).saturating_sub(1)
            } else {
                usize::MAX
            };
            out.extend(line.chars().skip(from).take(to.saturating_sub(from)));
            if n != span.end_line {
                out.push('\n');
            }
        }
        out
    }
}

/// What the whole analysis knows of a function, on any thread.
#[derive(Clone, Debug)]
pub struct FnMeta {
    pub name: String,
    /// `Type::method` or `module::function`.
    pub qual: String,
    pub self_ty: Option<String>,
    /// The innermost module (a file's stem, or `mod x { .. }`; `crate` at a crate's root).
    pub module: String,
    /// The crate: the folder that holds its `src`, as a Rust name (`my-lib` gives `my_lib`).
    pub krate: String,
    /// The crate's folder as given (two crates may share a name in one workspace).
    pub crate_root: String,
    /// For a trait impl's methods, the trait.
    pub trait_name: Option<String>,
    pub has_self: bool,
    /// Parameters counted without `self`.
    pub arity: usize,
    pub span: Span,
    /// The body mentions `ConditionalCheckFailed` or a cancelled transaction.
    pub mentions_ccf: bool,
    /// Type names in the return type (`Result<Json<T>, AppError>` gives Result, Json, T,
    /// AppError).
    pub returns: Vec<String>,
    /// Names the body calls (methods, functions, `qualifier::function`), for ordering the walk.
    pub calls: Vec<String>,
    /// The body its extractors read, for a handler.
    pub body: super::body::Body,
}

impl FnMeta {
    /// Whether a path qualifier (`Type::`, `module::`, `krate::`) names this function's owner.
    pub fn named_by(&self, q: &str) -> bool {
        self.self_ty.as_deref() == Some(q)
            || (self.self_ty.is_none()
                && (self.module == q || (self.module == "crate" && self.krate == q)))
    }

    pub fn inputs(&self) -> usize {
        self.arity + usize::from(self.has_self)
    }
}

/// A function body on the thread that parsed it.
pub struct FnDef<'a> {
    pub attrs: &'a [syn::Attribute],
    pub sig: &'a syn::Signature,
    pub body: &'a syn::Block,
}

pub type FnId = usize;

/// The functions of some files (one thread's share), with their bodies.
pub struct LocalIndex<'a> {
    pub fns: Vec<FnDef<'a>>,
    pub metas: Vec<FnMeta>,
    pub types: TypeFacts,
}

/// What the files say of names and types, beyond their functions.
#[derive(Clone, Debug, Default)]
pub struct TypeFacts {
    /// String constants and statics.
    pub consts: Vec<(String, String)>,
    /// Error types whose `impl From<..>` (or `IntoResponse`) turns a failed condition into its
    /// own answer: `?` into them reaches a 409/412.
    pub ccf_error_types: Vec<String>,
    /// `impl Trait for Type`: (trait, type).
    pub impls: Vec<(String, String)>,
    /// Struct fields and the type names their types mention: (struct, field, names).
    pub fields: Vec<(String, String, Vec<String>)>,
    /// Files that `#[cfg(test)] mod x;` declares: test code, not the service.
    pub test_files: Vec<String>,
    /// Structs, enums and aliases as a JSON body reads them.
    pub defs: Vec<(String, super::body::Def)>,
}

/// What every thread shares: every function's meta by global id, names, constants, types.
#[derive(Default)]
pub struct Global {
    pub metas: Vec<FnMeta>,
    /// Functions by name, in source order (file, line, column) whatever the threads did.
    pub by_name: HashMap<String, Vec<FnId>>,
    pub consts: HashMap<String, String>,
    pub ccf_error_types: std::collections::HashSet<String>,
    /// Trait -> the types that implement it in the crate.
    pub impls: HashMap<String, Vec<String>>,
    /// Type -> the traits it implements in the crate.
    pub traits_of: HashMap<String, Vec<String>>,
    /// (struct, field) -> type names of the field's type.
    pub fields: HashMap<(String, String), Vec<String>>,
    /// Files of `#[cfg(test)]` modules: their functions are not the service's.
    pub test_files: std::collections::HashSet<String>,
    /// Types by name as a JSON body reads them; a name defined twice is ambiguous.
    pub defs: HashMap<String, super::body::Def>,
}

impl Global {
    pub fn build(parts: Vec<(Vec<FnMeta>, TypeFacts)>) -> Global {
        let mut g = Global::default();
        let mut consts: Vec<(String, String)> = vec![];
        for (metas, t) in parts {
            g.metas.extend(metas);
            consts.extend(t.consts);
            g.ccf_error_types.extend(t.ccf_error_types);
            for (tr, ty) in t.impls {
                g.traits_of.entry(ty.clone()).or_default().push(tr.clone());
                g.impls.entry(tr).or_default().push(ty);
            }
            for (st, f, names) in t.fields {
                g.fields.entry((st, f)).or_default().extend(names);
            }
            g.test_files.extend(t.test_files);
            for (name, def) in t.defs {
                use std::collections::hash_map::Entry;
                match g.defs.entry(name) {
                    Entry::Vacant(v) => {
                        v.insert(def);
                    }
                    Entry::Occupied(mut o) if *o.get() != def => {
                        o.insert(super::body::Def::Ambiguous);
                    }
                    Entry::Occupied(_) => {}
                }
            }
        }
        // Where two files define a constant of one name, the same one wins on every run.
        consts.sort();
        for (k, v) in consts.into_iter().rev() {
            g.consts.insert(k, v);
        }
        for v in g.impls.values_mut() {
            v.sort();
            v.dedup();
        }
        for (id, f) in g.metas.iter().enumerate() {
            if !g.test_files.contains(&*f.span.file) {
                g.by_name.entry(f.name.clone()).or_default().push(id);
            }
        }
        let metas = &g.metas;
        for ids in g.by_name.values_mut() {
            ids.sort_by(|a, b| metas[*a].span.cmp(&metas[*b].span));
        }
        g
    }

    /// The functions a call named in [`FnMeta::calls`] can reach, from function `from`.
    pub fn callees<'s>(&'s self, from: FnId, call: &'s str) -> impl Iterator<Item = FnId> + 's {
        let (method, call) = match call.strip_prefix('.') {
            Some(name) => (true, name),
            None => (false, call),
        };
        let (qualifier, name) = match call.rsplit_once("::") {
            Some((q, n)) => (Some(q), n),
            None => (None, call),
        };
        let qualifier = match qualifier {
            Some("Self") => self.metas[from].self_ty.as_deref(),
            Some("super" | "crate" | "self") => None,
            q => q,
        };
        self.by_name
            .get(name)
            .into_iter()
            .flatten()
            .copied()
            .filter(move |&id| !method || self.metas[id].has_self)
            .filter(move |&id| match qualifier {
                None => true,
                Some(q) => self.metas[id].named_by(q),
            })
    }

    /// The types a receiver of these type names can be: the names, and every type that
    /// implements a trait among them (`Arc<dyn Repo>` reaches `DynamoRepo`).
    pub fn concrete(&self, names: &[String]) -> Vec<String> {
        let mut out: Vec<String> = names.to_vec();
        for n in names {
            if let Some(tys) = self.impls.get(n) {
                out.extend(tys.iter().cloned());
            }
        }
        // A type reaches the default methods of the traits it implements.
        for n in names {
            if let Some(trs) = self.traits_of.get(n) {
                out.extend(trs.iter().cloned());
            }
        }
        out
    }
}

/// Words that show code telling a failed condition (or a cancelled transaction) apart.
pub const CCF_MARKERS: &[&str] = &[
    "ConditionalCheckFailed",
    "conditional_check_failed",
    "TransactionCanceled",
    "transaction_canceled",
];

/// The text with `//` and `/* */` comments blanked (string literals kept as they are).
pub fn without_comments(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let (mut i, mut start) = (0, 0);
    let mut in_str = false;
    while i < b.len() {
        match (in_str, b[i], b.get(i + 1)) {
            (true, b'\\', _) => i += 2,
            (_, b'"', _) => {
                in_str = !in_str;
                i += 1;
            }
            (false, b'/', Some(b'/')) => {
                out.push_str(&text[start..i]);
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
                start = i;
            }
            (false, b'/', Some(b'*')) => {
                out.push_str(&text[start..i]);
                let mut depth = 0usize;
                while i < b.len() {
                    if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
                        depth += 1;
                        i += 2;
                    } else if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
                        depth -= 1;
                        i += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        i += 1;
                    }
                }
                out.push(' ');
                start = i.min(b.len());
            }
            _ => i += 1,
        }
    }
    out.push_str(&text[start.min(text.len())..]);
    out
}

pub fn mentions_ccf(text: &str) -> bool {
    CCF_MARKERS.iter().any(|m| text.contains(m))
}

impl<'a> LocalIndex<'a> {
    pub fn build(files: &'a [SourceFile]) -> LocalIndex<'a> {
        let mut index = LocalIndex {
            fns: vec![],
            metas: vec![],
            types: TypeFacts::default(),
        };
        for file in files {
            let module = module_name(&file.text.path);
            let mut c = Collector {
                index: &mut index,
                file: &file.text,
                module: vec![module],
                self_ty: None,
                trait_name: None,
                trait_from: false,
            };
            c.visit_file(&file.ast);
        }
        index
    }
}

/// The files `mod name;` in `file` can stand for.
fn module_files(file: &str, name: &str) -> Vec<String> {
    let f = std::path::Path::new(file);
    let Some(parent) = f.parent() else {
        return vec![];
    };
    let stem = f.file_stem().and_then(|s| s.to_str()).unwrap_or("");
    let dir = match stem {
        "mod" | "lib" | "main" => parent.to_path_buf(),
        s => parent.join(s),
    };
    vec![
        dir.join(format!("{name}.rs")).display().to_string(),
        dir.join(name).join("mod.rs").display().to_string(),
    ]
}

fn crate_root(path: &str) -> String {
    let p = std::path::Path::new(path);
    p.ancestors()
        .find(|a| a.file_name().is_some_and(|n| n == "src"))
        .and_then(|src| src.parent())
        .map(|c| c.display().to_string())
        .unwrap_or_default()
}

fn crate_name(path: &str) -> String {
    let p = std::path::Path::new(path);
    p.ancestors()
        .find(|a| a.file_name().is_some_and(|n| n == "src"))
        .and_then(|src| src.parent())
        .and_then(|c| c.file_name())
        .and_then(|n| n.to_str())
        .unwrap_or("")
        .replace('-', "_")
}

fn module_name(path: &str) -> String {
    let stem = std::path::Path::new(path)
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("crate");
    match stem {
        "main" | "lib" | "mod" => std::path::Path::new(path)
            .parent()
            .and_then(|p| p.file_name())
            .and_then(|s| s.to_str())
            .filter(|s| *s != "src")
            .unwrap_or("crate")
            .to_string(),
        s => s.to_string(),
    }
}

fn is_cfg_test(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|a| {
        (a.path().is_ident("cfg") && a.parse_args::<syn::Meta>().is_ok_and(|m| test_only(&m)))
            // `#[test]`, `#[tokio::test]`, `#[sqlx::test]`
            || a.path().segments.last().is_some_and(|s| s.ident == "test")
    })
}

/// Whether a `cfg` predicate holds only in test builds: `test`, a feature named for tests
/// (`test-utils`, `__test_helpers`, `sheepshed_tests`, `testing`), `all(..)` with one of them,
/// `any(..)` of nothing else.
fn test_only(m: &syn::Meta) -> bool {
    use syn::punctuated::Punctuated;
    match m {
        syn::Meta::Path(p) => p.is_ident("test"),
        syn::Meta::NameValue(nv) if nv.path.is_ident("feature") => match &nv.value {
            syn::Expr::Lit(syn::ExprLit {
                lit: syn::Lit::Str(s),
                ..
            }) => s.value().split(['_', '-']).any(|w| w.starts_with("test")),
            _ => false,
        },
        syn::Meta::List(l) => {
            let Ok(inner) =
                l.parse_args_with(Punctuated::<syn::Meta, syn::Token![,]>::parse_terminated)
            else {
                return false;
            };
            if l.path.is_ident("all") {
                inner.iter().any(test_only)
            } else if l.path.is_ident("any") {
                !inner.is_empty() && inner.iter().all(test_only)
            } else {
                false
            }
        }
        _ => false,
    }
}

fn type_name(ty: &syn::Type) -> Option<String> {
    match ty {
        syn::Type::Path(p) => p.path.segments.last().map(|s| s.ident.to_string()),
        syn::Type::Reference(r) => type_name(&r.elem),
        _ => None,
    }
}

struct Collector<'i, 'a> {
    index: &'i mut LocalIndex<'a>,
    file: &'a FileText,
    module: Vec<String>,
    self_ty: Option<String>,
    trait_name: Option<String>,
    trait_from: bool,
}

impl<'a> Collector<'_, 'a> {
    fn add(&mut self, attrs: &'a [syn::Attribute], sig: &'a syn::Signature, body: &'a syn::Block) {
        let name = sig.ident.to_string();
        let qual = match &self.self_ty {
            Some(t) => format!("{t}::{name}"),
            None => format!("{}::{name}", self.module.join("::")),
        };
        let span = FnItem { attrs, sig, body }.span_in(&self.file.path);
        let body_span = body.span_in(&self.file.path);
        // Code, not comments: a comment that names the error does not handle it.
        let mentions = mentions_ccf(&without_comments(&self.file.slice(&body_span)));
        if self.trait_from && mentions {
            self.index
                .types
                .ccf_error_types
                .extend(self.self_ty.clone());
        }
        let mut calls = Calls::default();
        calls.visit_block(body);
        let has_self = matches!(sig.inputs.first(), Some(syn::FnArg::Receiver(_)));
        self.index.metas.push(FnMeta {
            name,
            qual,
            self_ty: self.self_ty.clone(),
            module: self.module.last().cloned().unwrap_or_default(),
            krate: crate_name(&self.file.path),
            crate_root: crate_root(&self.file.path),
            trait_name: self.trait_name.clone(),
            has_self,
            arity: sig.inputs.len() - usize::from(has_self),
            span,
            mentions_ccf: mentions,
            returns: match &sig.output {
                syn::ReturnType::Type(_, t) => type_names(t),
                syn::ReturnType::Default => vec![],
            },
            calls: calls.0.into_iter().collect(),
            body: super::body::extractor(sig),
        });
        self.index.fns.push(FnDef { attrs, sig, body });
    }
}

/// Names a body calls.
#[derive(Default)]
struct Calls(std::collections::BTreeSet<String>);

impl<'a> Visit<'a> for Calls {
    fn visit_expr_method_call(&mut self, m: &'a syn::ExprMethodCall) {
        // `.name`: a method call reaches methods only (`client.get_item()` is not the crate's
        // free `get_item`).
        self.0.insert(format!(".{}", m.method));
        syn::visit::visit_expr_method_call(self, m);
    }

    fn visit_expr_call(&mut self, c: &'a syn::ExprCall) {
        let mut func = &*c.func;
        while let syn::Expr::Paren(p) = func {
            func = &p.expr;
        }
        // `(repo.save)(x)`: a function held in a field, resolved by the field's name.
        if let syn::Expr::Field(f) = func {
            if let syn::Member::Named(n) = &f.member {
                self.0.insert(n.to_string());
            }
        }
        if let syn::Expr::Path(p) = &*c.func {
            let segs = &p.path.segments;
            if let Some(s) = segs.last() {
                // `module::f` and `Type::f` keep their qualifier: they name one function.
                match segs.len() {
                    1 => self.0.insert(s.ident.to_string()),
                    n => self.0.insert(format!("{}::{}", segs[n - 2].ident, s.ident)),
                };
            }
        }
        syn::visit::visit_expr_call(self, c);
    }
}

impl<'a> Visit<'a> for Collector<'_, 'a> {
    fn visit_item_fn(&mut self, f: &'a syn::ItemFn) {
        if is_cfg_test(&f.attrs) {
            return;
        }
        self.add(&f.attrs, &f.sig, &f.block);
        // Nested items (fns inside fns) are indexed too.
        syn::visit::visit_block(self, &f.block);
    }

    fn visit_item_mod(&mut self, m: &'a syn::ItemMod) {
        if is_cfg_test(&m.attrs) {
            if m.content.is_none() {
                self.index
                    .types
                    .test_files
                    .extend(module_files(&self.file.path, &m.ident.to_string()));
            }
            return;
        }
        self.module.push(m.ident.to_string());
        syn::visit::visit_item_mod(self, m);
        self.module.pop();
    }

    fn visit_item_impl(&mut self, i: &'a syn::ItemImpl) {
        if is_cfg_test(&i.attrs) {
            return;
        }
        let saved = (self.self_ty.take(), self.trait_from, self.trait_name.take());
        self.self_ty = type_name(&i.self_ty);
        let trait_ = i.trait_.as_ref().and_then(|(_, p, _)| p.segments.last());
        self.trait_from = trait_.is_some_and(|s| s.ident == "From" || s.ident == "IntoResponse");
        self.trait_name = trait_.map(|s| s.ident.to_string());
        if let (Some(tr), Some(ty)) = (&self.trait_name, &self.self_ty) {
            self.index.types.impls.push((tr.clone(), ty.clone()));
        }
        for item in &i.items {
            if let syn::ImplItem::Fn(f) = item {
                if !is_cfg_test(&f.attrs) {
                    self.add(&f.attrs, &f.sig, &f.block);
                }
            }
        }
        (self.self_ty, self.trait_from, self.trait_name) = saved;
    }

    fn visit_item_trait(&mut self, t: &'a syn::ItemTrait) {
        let saved = self.self_ty.replace(t.ident.to_string());
        for item in &t.items {
            if let syn::TraitItem::Fn(f) = item {
                if let Some(body) = &f.default {
                    self.add(&f.attrs, &f.sig, body);
                }
            }
        }
        self.self_ty = saved;
    }

    fn visit_item_const(&mut self, c: &'a syn::ItemConst) {
        if let Some(v) = str_lit(&c.expr) {
            self.index.types.consts.push((c.ident.to_string(), v));
        }
    }

    fn visit_item_static(&mut self, s: &'a syn::ItemStatic) {
        if let Some(v) = str_lit(&s.expr) {
            self.index.types.consts.push((s.ident.to_string(), v));
        }
    }

    fn visit_item_enum(&mut self, e: &'a syn::ItemEnum) {
        self.index
            .types
            .defs
            .push((e.ident.to_string(), super::body::enum_def(e)));
    }

    fn visit_item_type(&mut self, t: &'a syn::ItemType) {
        let shape = super::body::shape_of(&t.ty);
        self.index
            .types
            .defs
            .push((t.ident.to_string(), super::body::Def::Alias(shape)));
    }

    fn visit_item_struct(&mut self, s: &'a syn::ItemStruct) {
        self.index
            .types
            .defs
            .push((s.ident.to_string(), super::body::struct_def(s)));
        for f in &s.fields {
            if let Some(name) = &f.ident {
                self.index.types.fields.push((
                    s.ident.to_string(),
                    name.to_string(),
                    type_names(&f.ty),
                ));
            }
        }
    }
}

/// Every type name a type mentions (`State<Arc<dyn Repo>>` gives State, Arc, Repo).
pub fn type_names(ty: &syn::Type) -> Vec<String> {
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

/// The value of a string literal expression (through `&` and parentheses).
pub fn str_lit(e: &syn::Expr) -> Option<String> {
    match e {
        syn::Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Str(s),
            ..
        }) => Some(s.value()),
        syn::Expr::Reference(r) => str_lit(&r.expr),
        syn::Expr::Paren(p) => str_lit(&p.expr),
        syn::Expr::Group(g) => str_lit(&g.expr),
        // "x".to_string(), "x".into(), String::from("x")
        syn::Expr::MethodCall(m)
            if m.args.is_empty()
                && matches!(
                    m.method.to_string().as_str(),
                    "to_string" | "into" | "to_owned"
                ) =>
        {
            str_lit(&m.receiver)
        }
        syn::Expr::Call(c) if c.args.len() == 1 && path_ends(&c.func, &["String", "from"]) => {
            str_lit(&c.args[0])
        }
        _ => None,
    }
}

/// Whether `e` is a path whose last segments are `ends`.
pub fn path_ends(e: &syn::Expr, ends: &[&str]) -> bool {
    let syn::Expr::Path(p) = e else { return false };
    let segs: Vec<_> = p
        .path
        .segments
        .iter()
        .map(|s| s.ident.to_string())
        .collect();
    segs.len() >= ends.len()
        && segs[segs.len() - ends.len()..]
            .iter()
            .zip(ends)
            .all(|(a, b)| a == b)
}
