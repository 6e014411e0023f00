//! Axum routes: `Router::route` with method routers (`get(h).post(h2)`), `.nest` and `.merge`
//! (inline or through functions that return a router), `{param}` and `:param` paths.

use std::collections::{HashMap, HashSet};

use syn::visit::Visit;
use syn::Expr;

use super::index::{str_lit, CrateIndex};
use crate::model::Route;

const METHODS: &[&str] = &[
    "get", "post", "put", "patch", "delete", "head", "options", "trace", "any",
];

/// Routes found in one function, and the router functions it nests or merges.
#[derive(Default)]
struct Local {
    routes: Vec<Route>,
    /// (prefix, function name) for `.nest(prefix, f())` and `.merge(f())`.
    edges: Vec<(String, String)>,
}

/// Every route of the crate, with the paths of nested routers joined.
pub fn collect(index: &CrateIndex) -> Vec<Route> {
    let mut locals: HashMap<String, Local> = HashMap::new();
    for f in &index.fns {
        let mut v = Finder {
            local: Local::default(),
        };
        v.visit_block(f.body);
        if !v.local.routes.is_empty() || !v.local.edges.is_empty() {
            let slot = locals.entry(f.name.clone()).or_default();
            slot.routes.extend(v.local.routes);
            slot.edges.extend(v.local.edges);
        }
    }
    let targets: HashSet<&String> = locals
        .values()
        .flat_map(|l| l.edges.iter().map(|(_, f)| f))
        .collect();
    let mut out = vec![];
    let mut names: Vec<&String> = locals.keys().filter(|k| !targets.contains(k)).collect();
    names.sort();
    for root in names {
        expand(&locals, root, "", &mut vec![], &mut out);
    }
    out.sort();
    out.dedup();
    out
}

fn expand(
    locals: &HashMap<String, Local>,
    name: &str,
    prefix: &str,
    stack: &mut Vec<String>,
    out: &mut Vec<Route>,
) {
    if stack.iter().any(|s| s == name) {
        return;
    }
    let Some(l) = locals.get(name) else { return };
    stack.push(name.to_string());
    for r in &l.routes {
        out.push(Route {
            method: r.method.clone(),
            path: join(prefix, &r.path),
            handler: r.handler.clone(),
        });
    }
    for (p, f) in &l.edges {
        expand(locals, f, &join(prefix, p), stack, out);
    }
    stack.pop();
}

fn join(prefix: &str, path: &str) -> String {
    if prefix.is_empty() {
        return path.to_string();
    }
    let p = prefix.trim_end_matches('/');
    if path == "/" || path.is_empty() {
        return p.to_string();
    }
    format!("{p}{path}")
}

struct Finder {
    local: Local,
}

fn is_router_call(name: &str) -> bool {
    matches!(name, "route" | "nest" | "merge")
}

/// Whether a method-call chain builds a router.
fn chain_has_router(m: &syn::ExprMethodCall) -> bool {
    is_router_call(&m.method.to_string())
        || matches!(&*m.receiver, Expr::MethodCall(r) if chain_has_router(r))
}

impl Finder {
    fn chain(&mut self, e: &Expr, prefix: &str) {
        if let Expr::MethodCall(m) = e {
            self.chain_call(m, prefix);
        }
    }

    fn chain_call(&mut self, m: &syn::ExprMethodCall, prefix: &str) {
        let method = m.method.to_string();
        match method.as_str() {
            "route" if m.args.len() == 2 => {
                if let Some(path) = str_lit(&m.args[0]) {
                    for (verb, handler) in method_router(&m.args[1]) {
                        self.local.routes.push(Route {
                            method: verb,
                            path: join(prefix, &path),
                            handler,
                        });
                    }
                }
            }
            "nest" if m.args.len() == 2 => {
                if let Some(path) = str_lit(&m.args[0]) {
                    self.nested(&m.args[1], &join(prefix, &path));
                }
            }
            "merge" if m.args.len() == 1 => self.nested(&m.args[0], prefix),
            _ => {}
        }
        self.chain(&m.receiver, prefix);
    }

    fn nested(&mut self, e: &Expr, prefix: &str) {
        match e {
            Expr::Call(c) => {
                if let Expr::Path(p) = &*c.func {
                    if let Some(last) = p.path.segments.last() {
                        self.local
                            .edges
                            .push((prefix.to_string(), last.ident.to_string()));
                    }
                }
            }
            Expr::Reference(r) => self.nested(&r.expr, prefix),
            Expr::Paren(p) => self.nested(&p.expr, prefix),
            other => self.chain(other, prefix),
        }
    }
}

impl<'a> Visit<'a> for Finder {
    fn visit_expr_method_call(&mut self, m: &'a syn::ExprMethodCall) {
        if chain_has_router(m) {
            self.chain_call(m, "");
            // Arguments may still hold other routers (`.merge(Router::new().route(..))` is
            // handled above; closures are not walked further).
            return;
        }
        syn::visit::visit_expr_method_call(self, m);
    }
}

/// `get(h)`, `get(h).post(h2)`, `axum::routing::post(h)`, `on(MethodFilter::POST, h)`.
fn method_router(e: &Expr) -> Vec<(String, String)> {
    let mut out = vec![];
    let mut cur = e;
    loop {
        match cur {
            Expr::MethodCall(m) => {
                let name = m.method.to_string();
                if METHODS.contains(&name.as_str()) {
                    if let Some(h) = m.args.first().and_then(handler_name) {
                        out.push((name.to_uppercase(), h));
                    }
                }
                cur = &m.receiver;
            }
            Expr::Call(c) => {
                if let Expr::Path(p) = &*c.func {
                    let name = p
                        .path
                        .segments
                        .last()
                        .map(|s| s.ident.to_string())
                        .unwrap_or_default();
                    if METHODS.contains(&name.as_str()) {
                        if let Some(h) = c.args.first().and_then(handler_name) {
                            out.push((name.to_uppercase(), h));
                        }
                    } else if name == "on" && c.args.len() == 2 {
                        let verb = quote::ToTokens::to_token_stream(&c.args[0]).to_string();
                        let verb = verb.rsplit(':').next().unwrap_or("ANY").trim().to_string();
                        if let Some(h) = handler_name(&c.args[1]) {
                            out.push((verb, h));
                        }
                    }
                }
                break;
            }
            _ => break,
        }
    }
    out.reverse();
    out
}

fn handler_name(e: &Expr) -> Option<String> {
    match e {
        Expr::Path(p) => p.path.segments.last().map(|s| s.ident.to_string()),
        Expr::Reference(r) => handler_name(&r.expr),
        _ => None,
    }
}
