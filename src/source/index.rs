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
                span.column as usize - 1
            } else {
                0
            };
            let to = if n == span.end_line {
                span.end_column as usize - 1
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
    pub has_self: bool,
    /// Parameters counted without `self`.
    pub arity: usize,
    pub span: Span,
    /// The body mentions `ConditionalCheckFailed` or a cancelled transaction.
    pub mentions_ccf: bool,
    /// Names the body calls (methods and functions), for ordering the walk.
    pub calls: Vec<String>,
}

impl FnMeta {
    pub fn inputs(&self) -> usize {
        self.arity + usize::from(self.has_self)
    }
}

/// A function body on the thread that parsed it.
pub struct FnDef<'a> {
    pub sig: &'a syn::Signature,
    pub body: &'a syn::Block,
}

pub type FnId = usize;

/// The functions of some files (one thread's share), with their bodies.
pub struct LocalIndex<'a> {
    pub fns: Vec<FnDef<'a>>,
    pub metas: Vec<FnMeta>,
    pub consts: HashMap<String, String>,
    pub from_maps_ccf: bool,
}

/// What every thread shares: every function's meta by global id, names, constants.
#[derive(Default)]
pub struct Global {
    pub metas: Vec<FnMeta>,
    pub by_name: HashMap<String, Vec<FnId>>,
    pub consts: HashMap<String, String>,
    /// Some `impl From<..>` in the crate turns a failed condition into its own answer, so `?`
    /// on a conditional write reaches a 409/412.
    pub from_maps_ccf: bool,
}

impl Global {
    pub fn build(parts: Vec<(Vec<FnMeta>, HashMap<String, String>, bool)>) -> Global {
        let mut g = Global::default();
        for (metas, consts, ccf) in parts {
            g.metas.extend(metas);
            g.consts.extend(consts);
            g.from_maps_ccf |= ccf;
        }
        for (id, f) in g.metas.iter().enumerate() {
            g.by_name.entry(f.name.clone()).or_default().push(id);
        }
        g
    }
}

/// Words that show code telling a failed condition (or a cancelled transaction) apart.
pub const CCF_MARKERS: &[&str] = &[
    "ConditionalCheckFailed",
    "conditional_check_failed",
    "TransactionCanceled",
    "transaction_canceled",
];

pub fn mentions_ccf(text: &str) -> bool {
    CCF_MARKERS.iter().any(|m| text.contains(m))
}

impl<'a> LocalIndex<'a> {
    pub fn build(files: &'a [SourceFile]) -> LocalIndex<'a> {
        let mut index = LocalIndex {
            fns: vec![],
            metas: vec![],
            consts: HashMap::new(),
            from_maps_ccf: false,
        };
        for file in files {
            let module = module_name(&file.text.path);
            let mut c = Collector {
                index: &mut index,
                file: &file.text,
                module: vec![module],
                self_ty: None,
                trait_from: false,
            };
            c.visit_file(&file.ast);
        }
        index
    }
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
        (a.path().is_ident("cfg")
            && quote::ToTokens::to_token_stream(&a.meta).to_string() == "cfg (test)")
            || a.path().is_ident("test")
    })
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
        let text = self.file.slice(&body_span);
        let mentions = mentions_ccf(&text);
        if self.trait_from && mentions {
            self.index.from_maps_ccf = true;
        }
        let mut calls = Calls::default();
        calls.visit_block(body);
        let has_self = matches!(sig.inputs.first(), Some(syn::FnArg::Receiver(_)));
        self.index.metas.push(FnMeta {
            name,
            qual,
            self_ty: self.self_ty.clone(),
            has_self,
            arity: sig.inputs.len() - usize::from(has_self),
            span,
            mentions_ccf: mentions,
            calls: calls.0.into_iter().collect(),
        });
        self.index.fns.push(FnDef { sig, body });
    }
}

/// Names a body calls.
#[derive(Default)]
struct Calls(std::collections::BTreeSet<String>);

impl<'a> Visit<'a> for Calls {
    fn visit_expr_method_call(&mut self, m: &'a syn::ExprMethodCall) {
        self.0.insert(m.method.to_string());
        syn::visit::visit_expr_method_call(self, m);
    }

    fn visit_expr_call(&mut self, c: &'a syn::ExprCall) {
        if let syn::Expr::Path(p) = &*c.func {
            if let Some(s) = p.path.segments.last() {
                self.0.insert(s.ident.to_string());
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
        let saved = (self.self_ty.take(), self.trait_from);
        self.self_ty = type_name(&i.self_ty);
        self.trait_from = i
            .trait_
            .as_ref()
            .and_then(|(_, p, _)| p.segments.last())
            .is_some_and(|s| s.ident == "From" || s.ident == "IntoResponse");
        for item in &i.items {
            if let syn::ImplItem::Fn(f) = item {
                if !is_cfg_test(&f.attrs) {
                    self.add(&f.attrs, &f.sig, &f.block);
                }
            }
        }
        (self.self_ty, self.trait_from) = saved;
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
            self.index.consts.insert(c.ident.to_string(), v);
        }
    }

    fn visit_item_static(&mut self, s: &'a syn::ItemStatic) {
        if let Some(v) = str_lit(&s.expr) {
            self.index.consts.insert(s.ident.to_string(), v);
        }
    }
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
