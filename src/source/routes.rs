//! Entry points. Axum routes: `Router::route` with method routers (`get(h).post(h2)`), `.nest`
//! and `.merge` (inline or through functions that return a router), `{param}` and `:param`
//! paths. Routes declared on the handler: actix-web and Rocket (`#[post("/x")]`), utoipa
//! (`#[utoipa::path(post, path = "/x")]`, which `OpenApiRouter::routes(routes!(..))` mounts).
//! Lambda handlers given to `service_fn` / `handler_fn`, as `LAMBDA` routes.

use std::collections::{HashMap, HashSet};

use syn::visit::Visit;
use syn::Expr;

use super::index::{str_lit, FnDef, Global};
use crate::model::Route;

const METHODS: &[&str] = &[
    "get", "post", "put", "patch", "delete", "head", "options", "trace", "any",
];

/// Routes found in one function, and the router functions it nests or merges.
#[derive(Default, Debug)]
pub struct Local {
    routes: Vec<Route>,
    /// (prefix, function path as written) for `.nest(prefix, f())` and `.merge(f())`.
    edges: Vec<(String, Vec<String>)>,
}

/// The routes one function declares, in its body or on itself, if any.
pub fn local(f: &FnDef) -> Option<Local> {
    let mut v = Finder {
        local: Local::default(),
    };
    v.visit_block(f.body);
    let own = f.sig.ident.to_string();
    v.local.routes.extend(
        f.attrs
            .iter()
            .filter_map(attribute_route)
            .map(|(method, path)| Route {
                method,
                path,
                handler: own.clone(),
            }),
    );
    (!v.local.routes.is_empty() || !v.local.edges.is_empty()).then_some(v.local)
}

/// `#[post("/x")]`, `#[actix_web::get("/x")]`, `#[route("/x", method = "GET")]`,
/// `#[utoipa::path(post, path = "/x", ..)]`: the method and the path.
fn attribute_route(a: &syn::Attribute) -> Option<(String, String)> {
    let name = a.path().segments.last()?.ident.to_string();
    let syn::Meta::List(list) = &a.meta else {
        return None;
    };
    let args = list
        .parse_args_with(syn::punctuated::Punctuated::<Expr, syn::Token![,]>::parse_terminated)
        .ok()?;
    let assigned = |key: &str| {
        args.iter().find_map(|e| match e {
            Expr::Assign(x) if quote::ToTokens::to_token_stream(&x.left).to_string() == key => {
                Some(&*x.right)
            }
            _ => None,
        })
    };
    if METHODS.contains(&name.as_str()) {
        let path = args.first().and_then(str_lit)?;
        return Some((name.to_uppercase(), path));
    }
    match name.as_str() {
        "route" => {
            let path = args.first().and_then(str_lit)?;
            let method = assigned("method").and_then(str_lit)?;
            Some((method.to_uppercase(), path))
        }
        "path" if a.path().segments.len() == 2 || a.path().segments[0].ident == "utoipa" => {
            let method = args.iter().find_map(|e| match e {
                Expr::Path(p) => p.path.get_ident().map(|i| i.to_string()),
                _ => None,
            })?;
            if !METHODS.contains(&method.as_str()) {
                return None;
            }
            let path = assigned("path").and_then(str_lit)?;
            Some((method.to_uppercase(), path))
        }
        _ => None,
    }
}

/// Every route of the crate, with the paths of nested routers joined.
pub fn compose(index: &Global, locals: &HashMap<usize, Local>) -> Vec<Route> {
    // `.nest("/x", accounts::router())`: the function the path names, preferring the one
    // whose module matches.
    let resolve = |path: &[String]| -> Option<usize> {
        let name = path.last()?;
        let ids = index.by_name.get(name)?;
        let wanted = path.join("::");
        ids.iter()
            .copied()
            .filter(|id| locals.contains_key(id))
            .max_by_key(|id| {
                let q = &index.metas[*id].qual;
                (q.ends_with(&wanted), path.len() == 1)
            })
    };
    let edges: HashMap<usize, Vec<(String, usize)>> = locals
        .iter()
        .map(|(id, l)| {
            let targets = l
                .edges
                .iter()
                .filter_map(|(p, path)| resolve(path).map(|t| (p.clone(), t)))
                .collect();
            (*id, targets)
        })
        .collect();
    let targets: HashSet<usize> = edges.values().flatten().map(|(_, t)| *t).collect();
    let mut out = vec![];
    let mut roots: Vec<&usize> = locals.keys().filter(|k| !targets.contains(k)).collect();
    roots.sort();
    for root in roots {
        expand(locals, &edges, *root, "", &mut vec![], &mut out);
    }
    out.sort();
    out.dedup();
    out
}

fn expand(
    locals: &HashMap<usize, Local>,
    edges: &HashMap<usize, Vec<(String, usize)>>,
    id: usize,
    prefix: &str,
    stack: &mut Vec<usize>,
    out: &mut Vec<Route>,
) {
    if stack.contains(&id) {
        return;
    }
    let Some(l) = locals.get(&id) else { return };
    stack.push(id);
    for r in &l.routes {
        out.push(Route {
            method: r.method.clone(),
            path: join(prefix, &r.path),
            handler: r.handler.clone(),
        });
    }
    for (p, target) in edges.get(&id).into_iter().flatten() {
        expand(locals, edges, *target, &join(prefix, p), stack, out);
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
                    let path = p
                        .path
                        .segments
                        .iter()
                        .map(|s| s.ident.to_string())
                        .collect();
                    self.local.edges.push((prefix.to_string(), path));
                }
            }
            Expr::Reference(r) => self.nested(&r.expr, prefix),
            Expr::Paren(p) => self.nested(&p.expr, prefix),
            other => self.chain(other, prefix),
        }
    }
}

impl<'a> Visit<'a> for Finder {
    /// `lambda_runtime::run(service_fn(handler))`, `service_fn(|e| handle(e, &client))`.
    fn visit_expr_call(&mut self, c: &'a syn::ExprCall) {
        let callee = match &*c.func {
            Expr::Path(p) => p.path.segments.last().map(|s| s.ident.to_string()),
            _ => None,
        };
        if matches!(callee.as_deref(), Some("service_fn" | "handler_fn")) {
            if let Some(h) = c.args.first().and_then(lambda_handler) {
                self.local.routes.push(Route {
                    method: "LAMBDA".into(),
                    path: String::new(),
                    handler: h,
                });
            }
        }
        syn::visit::visit_expr_call(self, c);
    }

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

/// The function a Lambda runtime calls: named, or the first function the closure calls.
fn lambda_handler(e: &Expr) -> Option<String> {
    let body = match e {
        Expr::Closure(c) => &*c.body,
        other => return handler_name(other),
    };
    struct First(Option<String>);
    impl<'a> Visit<'a> for First {
        fn visit_expr_call(&mut self, c: &'a syn::ExprCall) {
            // Wrappers (`Ok(handle(e).await?)`, `Box::new(..)`) are not the handler.
            let wraps = |n: &str| matches!(n, "Ok" | "Err" | "Some" | "new" | "from" | "pin");
            if self.0.is_none() {
                self.0 = handler_name(&c.func).filter(|n| !wraps(n));
            }
            if self.0.is_none() {
                syn::visit::visit_expr_call(self, c);
            }
        }
    }
    let mut first = First(None);
    first.visit_expr(body);
    first.0
}

fn handler_name(e: &Expr) -> Option<String> {
    match e {
        Expr::Path(p) => p.path.segments.last().map(|s| s.ident.to_string()),
        Expr::Reference(r) => handler_name(&r.expr),
        _ => None,
    }
}
