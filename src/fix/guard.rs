//! Turn a decision the code takes in Rust (`if acct.balance < amount { return 409 }`) into the
//! DynamoDB condition that makes the store take it atomically (`#balance >= :amount`).

use syn::{BinOp, Expr};

use super::{ident, Arg, Ty, UpdateSpec};
use crate::source::facts::Span;

/// The decision being translated: the attributes it reads and where it is written.
struct Guard<'a> {
    attrs: &'a [String],
    at: &'a Span,
}

/// Adds to `spec` the condition under which the guarded write may proceed; `false` when the
/// decision has a shape this cannot translate.
pub fn translate_guard(
    spec: &mut UpdateSpec,
    text: &str,
    attrs: &[String],
    proceeds_when_true: bool,
    at: &Span,
) -> bool {
    let Ok(e) = syn::parse_str::<Expr>(text) else {
        return false;
    };
    let g = Guard { attrs, at };
    let Some(cond) = tr(spec, &e, &g, proceeds_when_true) else {
        return false;
    };
    spec.and_condition(cond);
    true
}

fn text(e: &impl quote::ToTokens) -> String {
    quote::ToTokens::to_token_stream(e)
        .to_string()
        .replace(' ', "")
}

/// The attribute an operand stands for, if it mentions one that was read.
fn attr_in<'a>(e: &Expr, attrs: &'a [String]) -> Option<&'a String> {
    let t = text(e);
    attrs
        .iter()
        .find(|a| t.contains(a.as_str()) || t.contains(&ident(a)))
}

fn strip(e: &Expr) -> &Expr {
    match e {
        Expr::Paren(p) => strip(&p.expr),
        Expr::Reference(r) => strip(&r.expr),
        Expr::Cast(c) => strip(&c.expr),
        Expr::Group(g) => strip(&g.expr),
        _ => e,
    }
}

fn tr(spec: &mut UpdateSpec, e: &Expr, g: &Guard, when: bool) -> Option<String> {
    let attrs = g.attrs;
    match strip(e) {
        Expr::Unary(u) if matches!(u.op, syn::UnOp::Not(_)) => tr(spec, &u.expr, g, !when),
        Expr::Binary(b) => match b.op {
            BinOp::And(_) | BinOp::Or(_) => {
                let l = tr(spec, &b.left, g, when)?;
                let r = tr(spec, &b.right, g, when)?;
                // De Morgan: the negation of `a && b` is `!a || !b`.
                let and = matches!(b.op, BinOp::And(_)) == when;
                Some(format!("({l}) {} ({r})", if and { "AND" } else { "OR" }))
            }
            op => compare(spec, &b.left, op, &b.right, g, when),
        },
        Expr::MethodCall(m) if matches!(m.method.to_string().as_str(), "is_some" | "is_none") => {
            let attr = attr_in(&m.receiver, attrs)?.clone();
            let exists = (m.method == "is_some") == when;
            let n = spec.name(&attr);
            Some(if exists {
                format!("attribute_exists({n})")
            } else {
                format!("attribute_not_exists({n})")
            })
        }
        // A flag read from the item: `coupon.redeemed`, `item.get("redeemed")..as_bool()`.
        other => {
            let attr = attr_in(other, attrs)?.clone();
            let n = spec.name(&attr);
            let ph = format!(":{}", ident(&attr));
            spec.add_value(&ph, Arg::Const(format!("AttributeValue::Bool({when})")));
            Some(if when {
                format!("{n} = {ph}")
            } else {
                format!("attribute_not_exists({n}) OR {n} = {ph}")
            })
        }
    }
}

fn compare(
    spec: &mut UpdateSpec,
    left: &Expr,
    op: BinOp,
    right: &Expr,
    g: &Guard,
    when: bool,
) -> Option<String> {
    let attrs = g.attrs;
    let mut sym = match op {
        BinOp::Lt(_) => "<",
        BinOp::Le(_) => "<=",
        BinOp::Gt(_) => ">",
        BinOp::Ge(_) => ">=",
        BinOp::Eq(_) => "=",
        BinOp::Ne(_) => "<>",
        _ => return None,
    };
    let (attr, other, flipped) = match (attr_in(left, attrs), attr_in(right, attrs)) {
        (Some(a), _) => (a.clone(), right, false),
        (None, Some(a)) => (a.clone(), left, true),
        _ => return None,
    };
    if flipped {
        sym = match sym {
            "<" => ">",
            "<=" => ">=",
            ">" => "<",
            ">=" => "<=",
            s => s,
        };
    }
    if !when {
        sym = match sym {
            "<" => ">=",
            "<=" => ">",
            ">" => "<=",
            ">=" => "<",
            "=" => "<>",
            _ => "=",
        };
    }
    let n = spec.name(&attr);
    let arg = operand(other, matches!(sym, "<" | "<=" | ">" | ">="));
    let ph = match &arg {
        Arg::Param(p, ty) => {
            let ph = format!(":{p}");
            let code = ty.wrap_code(&crate::source::span::text_of(strip(other)));
            spec.add_code_value(&ph, arg.clone(), code, Some(g.at.clone()));
            ph
        }
        Arg::Const(_) => {
            let ph = format!(":{}_limit", ident(&attr));
            spec.add_value(&ph, arg);
            ph
        }
    };
    Some(format!("{n} {sym} {ph}"))
}

/// The other side of a comparison: a literal becomes a constant, a variable a parameter.
fn operand(e: &Expr, ordered: bool) -> Arg {
    match strip(e) {
        Expr::Lit(l) => match &l.lit {
            syn::Lit::Int(i) => Arg::Const(format!(
                "AttributeValue::N(\"{}\".to_string())",
                i.base10_digits()
            )),
            syn::Lit::Bool(b) => Arg::Const(format!("AttributeValue::Bool({})", b.value)),
            syn::Lit::Str(s) => {
                Arg::Const(format!("AttributeValue::S({:?}.to_string())", s.value()))
            }
            _ => Arg::Param("limit".into(), Ty::N),
        },
        other => {
            let t = text(other);
            let name = t
                .rsplit(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .find(|w| {
                    !w.is_empty() && !matches!(*w, "clone" | "to_string" | "unwrap" | "as_str")
                })
                .unwrap_or("limit");
            Arg::Param(ident(name), if ordered { Ty::N } else { Ty::S })
        }
    }
}
