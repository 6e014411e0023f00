//! Cheap spans. `syn`'s `Spanned` turns a whole node back into tokens to find its first and
//! last token, which costs as much as the node is large; the walker asks for spans of method
//! chains at every link, so it reads the first and last tokens off the syntax tree instead.

use std::sync::Arc;

use proc_macro2::Span as PmSpan;
use syn::spanned::Spanned;
use syn::Expr;

use super::facts::Span;

/// A node's code as tokens print it, with the common spaces squeezed: valid Rust, for
/// messages and for fixes that send the same expression.
pub fn text_of(node: &impl quote::ToTokens) -> String {
    let s = node.to_token_stream().to_string();
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

pub trait Ends {
    fn first(&self) -> PmSpan;
    fn last(&self) -> PmSpan;

    fn span_in(&self, file: &Arc<str>) -> Span {
        let (s, e) = (self.first().start(), self.last().end());
        Span {
            file: file.clone(),
            line: s.line as u32,
            column: s.column as u32 + 1,
            end_line: e.line as u32,
            end_column: e.column as u32 + 1,
        }
    }
}

impl Ends for Expr {
    fn first(&self) -> PmSpan {
        match self {
            Expr::MethodCall(m) => m.first(),
            Expr::Field(f) => f.base.first(),
            Expr::Call(c) => c.first(),
            Expr::Await(a) => a.base.first(),
            Expr::Try(t) => t.expr.first(),
            Expr::Binary(b) => b.first(),
            Expr::Index(i) => i.expr.first(),
            Expr::Cast(c) => c.expr.first(),
            Expr::Path(p) => match (&p.qself, p.path.leading_colon, p.path.segments.first()) {
                (None, None, Some(s)) => s.ident.span(),
                _ => self.span(),
            },
            Expr::Lit(l) => l.lit.span(),
            Expr::Reference(r) => r.and_token.span,
            Expr::Paren(p) => p.paren_token.span.open(),
            Expr::Macro(m) => m
                .mac
                .path
                .segments
                .first()
                .map(|s| s.ident.span())
                .unwrap_or_else(|| self.span()),
            Expr::Unary(u) => u.op.span(),
            Expr::If(i) => i.if_token.span,
            Expr::Match(m) => m.match_token.span,
            Expr::Block(b) if b.label.is_none() && b.attrs.is_empty() => {
                b.block.brace_token.span.open()
            }
            _ => self.span(),
        }
    }

    fn last(&self) -> PmSpan {
        match self {
            Expr::MethodCall(m) => m.last(),
            Expr::Field(f) => match &f.member {
                syn::Member::Named(n) => n.span(),
                syn::Member::Unnamed(i) => i.span,
            },
            Expr::Call(c) => c.last(),
            Expr::Await(a) => a.await_token.span,
            Expr::Try(t) => t.question_token.span,
            Expr::Binary(b) => b.last(),
            Expr::Index(i) => i.bracket_token.span.close(),
            Expr::Path(p)
                if p.path
                    .segments
                    .last()
                    .is_some_and(|s| s.arguments.is_none()) =>
            {
                p.path
                    .segments
                    .last()
                    .map(|s| s.ident.span())
                    .unwrap_or_else(|| self.span())
            }
            Expr::Lit(l) => l.lit.span(),
            Expr::Reference(r) => r.expr.last(),
            Expr::Paren(p) => p.paren_token.span.close(),
            Expr::Unary(u) => u.expr.last(),
            Expr::Macro(m) => match &m.mac.delimiter {
                syn::MacroDelimiter::Paren(p) => p.span.close(),
                syn::MacroDelimiter::Brace(b) => b.span.close(),
                syn::MacroDelimiter::Bracket(b) => b.span.close(),
            },
            Expr::Block(b) => b.block.brace_token.span.close(),
            Expr::Match(m) => m.brace_token.span.close(),
            _ => self.span(),
        }
    }
}

impl Ends for syn::ExprMethodCall {
    fn first(&self) -> PmSpan {
        self.receiver.first()
    }
    fn last(&self) -> PmSpan {
        self.paren_token.span.close()
    }
}

impl Ends for syn::ExprCall {
    fn first(&self) -> PmSpan {
        self.func.first()
    }
    fn last(&self) -> PmSpan {
        self.paren_token.span.close()
    }
}

impl Ends for syn::ExprBinary {
    fn first(&self) -> PmSpan {
        self.left.first()
    }
    fn last(&self) -> PmSpan {
        self.right.last()
    }
}

impl Ends for syn::Local {
    fn first(&self) -> PmSpan {
        self.let_token.span
    }
    fn last(&self) -> PmSpan {
        self.semi_token.span
    }
}

impl Ends for syn::Block {
    fn first(&self) -> PmSpan {
        self.brace_token.span.open()
    }
    fn last(&self) -> PmSpan {
        self.brace_token.span.close()
    }
}

/// A single token (a keyword) as a span.
pub struct Keyword(pub PmSpan);

impl Ends for Keyword {
    fn first(&self) -> PmSpan {
        self.0
    }
    fn last(&self) -> PmSpan {
        self.0
    }
}

/// A function item: from its first attribute (doc comments included) to its closing brace.
pub struct FnItem<'n> {
    pub attrs: &'n [syn::Attribute],
    pub sig: &'n syn::Signature,
    pub body: &'n syn::Block,
}

impl Ends for FnItem<'_> {
    fn first(&self) -> PmSpan {
        self.attrs
            .first()
            .map(|a| a.pound_token.span)
            .unwrap_or(self.sig.fn_token.span)
    }
    fn last(&self) -> PmSpan {
        self.body.brace_token.span.close()
    }
}
