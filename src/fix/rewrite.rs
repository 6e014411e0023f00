//! Rewrite a racy write as one conditional, atomic request: arithmetic moves into the update
//! expression, decisions taken in Rust move into the condition.

use syn::{BinOp, Expr};

use super::{ident, param_name, translate_guard, Arg, Conflict, Target, Ty, UpdateSpec};
use crate::source::expr::{is_version_attr, Action, SetValue};
use crate::source::facts::{GuardKind, OpKind, Part};
use crate::source::writes::WriteFacts;

/// How the read value is changed: `balance - amount` becomes (`-`, `amount`).
pub struct Delta {
    pub sign: char,
    pub arg: Arg,
    /// The operand as the code writes it, with where (for edits in place).
    pub code: Option<(String, Option<crate::source::facts::Span>)>,
}

/// Find the change made to `attr` in the Rust expression that computed the new value.
pub fn delta_of(computed: &str, attr: &str) -> Option<Delta> {
    let e: Expr = syn::parse_str(computed).ok()?;
    let Expr::Binary(b) = e else { return None };
    let sign = match b.op {
        BinOp::Add(_) | BinOp::AddAssign(_) => '+',
        BinOp::Sub(_) | BinOp::SubAssign(_) => '-',
        _ => return None,
    };
    let text = |e: &Expr| {
        quote::ToTokens::to_token_stream(e)
            .to_string()
            .replace(' ', "")
    };
    let (l, r) = (text(&b.left), text(&b.right));
    let mentions = |t: &str| t.contains(attr) || t.contains(&ident(attr));
    let is_lit = |e: &Expr| matches!(e, Expr::Lit(_));
    // The read value is the side that names the attribute, else the side that is not a literal.
    let other = if mentions(&l) || is_lit(&b.right) {
        &b.right
    } else if sign == '+' && (mentions(&r) || is_lit(&b.left)) {
        &b.left
    } else {
        &b.right
    };
    Some(Delta {
        sign,
        arg: delta_arg(&text(other)),
        code: Some((crate::source::span::text_of(other), None)),
    })
}

/// The change as the snippet sends it: a literal stays a constant, anything else becomes a
/// parameter named after the code's variable.
fn delta_arg(other: &str) -> Arg {
    match syn::parse_str::<Expr>(other) {
        Ok(Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Int(i),
            ..
        })) => Arg::Const(format!(
            "AttributeValue::N(\"{}\".to_string())",
            i.base10_digits()
        )),
        _ => Arg::Param(param_name(other, "delta"), Ty::N),
    }
}

fn placeholder_for(arg: &Arg, fallback: &str) -> String {
    match arg {
        Arg::Param(p, _) => format!(":{p}"),
        Arg::Const(_) => format!(":{fallback}"),
    }
}

/// The write as one atomic, conditional `update_item`; `None` when the code writes a whole
/// item whose attributes cannot be told apart (see the version-check fix instead).
pub fn atomic_update(
    w: &WriteFacts,
    text_of: &dyn Fn(&crate::source::facts::Span) -> String,
) -> Option<UpdateSpec> {
    let b = &w.req;
    let mut spec = UpdateSpec::new(Target::of_write(w));
    keep_condition(&mut spec, b);
    let mut set: Vec<String> = vec![];
    let mut other: Vec<(String, String)> = vec![];
    let mut cas: Vec<String> = vec![];

    // What the write stores, attribute by attribute, with the value's provenance.
    struct Stored<'b> {
        attr: String,
        part: Option<&'b Part>,
        /// An atomic clause kept as written (`path = rhs`).
        atomic: Option<(String, String)>,
        /// `path = :placeholder` as the update expression writes it.
        written: Option<(String, String)>,
    }
    let mut stored: Vec<Stored> = vec![];
    match w.kind {
        OpKind::UpdateItem if !w.update.is_empty() => {
            for a in &w.update {
                match a {
                    Action::Set { path, value, rhs } => {
                        for ph in value.placeholders() {
                            if value.is_atomic() {
                                keep_value(&mut spec, b, ph);
                            }
                        }
                        stored.push(Stored {
                            attr: b.attr_name(path).to_string(),
                            part: match value {
                                SetValue::Placeholder(ph) => b.value(ph),
                                _ => None,
                            },
                            atomic: value.is_atomic().then(|| (path.clone(), rhs.clone())),
                            written: match value {
                                SetValue::Placeholder(ph) => Some((path.clone(), ph.clone())),
                                _ => None,
                            },
                        });
                    }
                    Action::Add { path, placeholder } => {
                        other.push(("ADD".into(), format!("{path} {placeholder}")));
                        keep_value(&mut spec, b, placeholder);
                    }
                    Action::Remove { path } => other.push(("REMOVE".into(), path.clone())),
                    Action::Delete { path, placeholder } => {
                        other.push(("DELETE".into(), format!("{path} {placeholder}")));
                        keep_value(&mut spec, b, placeholder);
                    }
                }
            }
            // `#n` placeholders of the clauses kept as written.
            for (n, attr) in &b.names {
                if !spec.names.iter().any(|(x, _)| x == n) {
                    spec.names.push((n.clone(), attr.clone()));
                }
            }
        }
        OpKind::PutItem if b.item_whole.is_none() && !b.item.is_empty() => {
            let keys: Vec<&String> = spec.target.key.iter().map(|(a, _, _)| a).collect();
            for p in b.item.iter().filter(|p| !keys.contains(&&p.name)) {
                stored.push(Stored {
                    attr: p.name.clone(),
                    part: Some(p),
                    atomic: None,
                    written: None,
                });
            }
        }
        // A whole struct written back after arithmetic on some fields: update just those.
        OpKind::PutItem if b.item_whole.is_some() => {
            let part = b.item_whole.as_ref();
            for f in w.feeds.iter().filter(|f| f.same_item && f.arith) {
                for attr in f.source_attrs.iter().filter(|a| !is_version_attr(a)) {
                    stored.push(Stored {
                        attr: attr.clone(),
                        part,
                        atomic: None,
                        written: None,
                    });
                }
            }
            if stored.is_empty() {
                return None;
            }
        }
        _ => return None,
    }

    let stored_ty: std::collections::HashMap<String, Ty> = stored
        .iter()
        .filter_map(|x| Some((x.attr.clone(), Ty::of_text(&x.part?.text))))
        .collect();
    for Stored {
        attr,
        part,
        atomic,
        written,
    } in stored
    {
        if let Some((path, rhs)) = atomic {
            set.push(format!("{path} = {rhs}"));
            continue;
        }
        let Some(part) = part else { continue };
        let n = spec.name(&attr);
        let from_read = part.val.has_read();
        // The walker saw which operand was the read value; the text is the fallback.
        let delta = match &part.val.delta {
            Some((sign, other)) if part.val.arith => Some(Delta {
                sign: *sign,
                arg: delta_arg(other),
                code: Some((other.clone(), part.val.computed_at.clone())),
            }),
            _ => part
                .val
                .computed_at
                .as_ref()
                .filter(|_| part.val.arith)
                .and_then(|span| {
                    let mut d = delta_of(&text_of(span), &attr)?;
                    d.code = d.code.map(|(c, _)| (c, Some(span.clone())));
                    Some(d)
                }),
        };
        match delta {
            Some(d) if from_read => {
                let ph = placeholder_for(&d.arg, &format!("{}_delta", ident(&attr)));
                if d.sign == '+' {
                    // An increment also creates the attribute (a counter's first use).
                    set.push(format!("{n} = if_not_exists({n}, :zero) + {ph}"));
                    spec.add_value(
                        ":zero",
                        Arg::Const("AttributeValue::N(\"0\".to_string())".into()),
                    );
                } else {
                    set.push(format!("{n} = {n} - {ph}"));
                }
                match d.code {
                    Some((code, at)) => spec.add_code_value(&ph, d.arg, Ty::N.wrap_code(&code), at),
                    None => spec.add_value(&ph, d.arg),
                }
            }
            // A value set as written stays as written (`SET redeemed = :t`).
            _ if written.is_some() => {
                let Some((path, ph)) = written else { continue };
                set.push(format!("{path} = {ph}"));
                keep_value(&mut spec, b, &ph);
                if from_read {
                    cas.push(attr.clone());
                }
            }
            _ => {
                let param = param_name(&part.text, &attr);
                let ph = format!(":{param}");
                set.push(format!("{n} = {ph}"));
                let arg = Arg::Param(param, Ty::of_text(&part.text));
                spec.add_code_value(&ph, arg, part.text.clone(), None);
                if from_read {
                    cas.push(attr.clone());
                }
            }
        }
    }

    // Decisions on read data become the condition.
    for ch in &w.checks {
        let mut attrs: Vec<String> = ch.attrs.iter().cloned().collect();
        for f in &w.feeds {
            attrs.extend(f.source_attrs.iter().cloned());
        }
        if !translate_guard(
            &mut spec,
            &ch.guard.text,
            &attrs,
            ch.guard.proceeds_when_true,
            &ch.guard.span,
        ) {
            if ch.attrs.is_empty() && ch.guard.kind == GuardKind::Value {
                spec.unchecked.push(ch.guard.text.clone());
            }
            cas.extend(ch.attrs.iter().cloned());
        }
    }
    // Values carried over from the read: write them only if the item still holds what was read.
    for attr in cas {
        let n = spec.name(&attr);
        let param = format!("expected_{}", ident(&attr));
        let cond = format!("{n} = :{param}");
        if spec.condition.as_deref().is_some_and(|c| c.contains(&cond)) {
            continue;
        }
        // The type the write stores the attribute as; unknown, the value itself is passed.
        let ty = b
            .item
            .iter()
            .chain(b.values.iter())
            .find(|p| p.name == attr || b.attr_name(&p.name) == attr)
            .map(|p| Ty::of_text(&p.text))
            .or_else(|| stored_ty.get(&attr).copied())
            .unwrap_or(Ty::Value);
        spec.add_value(&format!(":{param}"), Arg::Param(param.clone(), ty));
        spec.and_condition(cond);
    }
    if spec.names.iter().any(|(_, a)| {
        is_version_attr(a)
            && spec
                .condition
                .as_deref()
                .is_some_and(|c| c.contains(&format!("#{}", ident(a))))
    }) {
        spec.conflict = Conflict::PreconditionFailed;
    }

    let mut update = String::new();
    if !set.is_empty() {
        update = format!("SET {}", set.join(", "));
    }
    for kw in ["ADD", "REMOVE", "DELETE"] {
        let parts: Vec<&str> = other
            .iter()
            .filter(|(k, _)| k == kw)
            .map(|(_, v)| v.as_str())
            .collect();
        if !parts.is_empty() {
            if !update.is_empty() {
                update.push(' ');
            }
            update.push_str(&format!("{kw} {}", parts.join(", ")));
        }
    }
    if update.is_empty() {
        return None;
    }
    spec.update = update;
    spec.prune();
    Some(spec)
}

/// The write's own condition (`balance >= :amount`) stays: the fix adds to it, never drops
/// it. One built at run time cannot be carried over, and the fix says so.
pub fn keep_condition(spec: &mut UpdateSpec, b: &crate::source::facts::Builder) {
    use crate::source::facts::{Cond, Text};
    match &b.condition {
        Cond::Given(Text::Literal(c)) => {
            let tokens = crate::source::expr::tokens(c);
            for ph in tokens.iter().filter(|t| t.starts_with(':')) {
                keep_value(spec, b, ph);
            }
            // `#a.#b`: each part of a path is a name of its own.
            for n in tokens
                .iter()
                .flat_map(|t| t.split('.'))
                .filter(|t| t.starts_with('#'))
            {
                if let Some((_, attr)) = b.names.iter().find(|(x, _)| x == n) {
                    if !spec.names.iter().any(|(x, _)| x == n) {
                        spec.names.push((n.to_string(), attr.clone()));
                    }
                }
            }
            spec.and_condition(c.clone());
        }
        Cond::Given(Text::Dynamic(_)) => spec
            .unchecked
            .push("the write's own condition, built at run time".into()),
        _ => {}
    }
}

/// Keep a placeholder of the original request as a parameter named after the code's value.
fn keep_value(spec: &mut UpdateSpec, b: &crate::source::facts::Builder, ph: &str) {
    match b.value(ph) {
        Some(p) => {
            let arg = Arg::Param(param_name(&p.text, ph), Ty::of_text(&p.text));
            spec.add_code_value(ph, arg, p.text.clone(), None);
        }
        None => spec.add_value(ph, Arg::Param(ident(ph), Ty::Value)),
    }
}
