//! Which attributes the workspace ever changes once an item exists.
//!
//! A decision on an attribute that no write changes after the item is created (its owner,
//! its creator, the client it was issued to) cannot be invalidated by a concurrent request:
//! the check-then-act on it is no race. What counts as a change, conservatively: an update's
//! `SET`/`REMOVE`/`ADD`/`DELETE` paths, and the attributes of a put that may replace an item
//! (no `attribute_not_exists`, a key not fresh). A write whose attributes cannot be told (a
//! dynamic update expression, a whole item built elsewhere) changes every attribute of its
//! table, and one whose table cannot be told changes them in every table.

use std::collections::{BTreeSet, HashMap};

use super::expr;
use super::facts::{Builder, Cond, OpKind, Summary, TableRef, Text};
use super::writes::{self, KeySource};

#[derive(Debug, Default)]
pub struct Mutated {
    /// Attributes changed, by table name.
    tables: HashMap<String, BTreeSet<String>>,
    /// Tables where any attribute may change.
    whole_tables: BTreeSet<String>,
    /// Attributes changed in a table that cannot be named: in any table.
    anywhere: BTreeSet<String>,
    /// A write to a table that cannot be named changed attributes that cannot be told.
    everything: bool,
    /// Attributes some write uses as a key: an update cannot change them.
    keys: BTreeSet<String>,
}

/// The request's item, or its update, is a parameter of the function, whole: what it
/// changes shows where the function is called.
fn from_params(b: &Builder) -> bool {
    let params_only = |v: &super::facts::Val| {
        !v.origins.is_empty()
            && v.origins
                .iter()
                .all(|o| matches!(o, super::facts::Origin::Param(_)))
    };
    match b.kind.plain() {
        OpKind::PutItem => b
            .item_whole
            .as_ref()
            .is_some_and(|w| w.val.fields.is_none() && params_only(&w.val)),
        OpKind::UpdateItem => {
            matches!(b.update, Some(Text::Dynamic(_)))
                && b.values.iter().all(|p| params_only(&p.val))
                && b.values_whole.as_ref().is_none_or(params_only)
        }
        _ => false,
    }
}

/// How attribute names are compared: a Rust field (`owner_id`) and the attribute it is
/// stored as (`ownerId`) are one.
fn norm(name: &str) -> String {
    name.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// A field and an attribute named alike (`user_name`, `userName`, `UserName`).
pub fn same_name(a: &str, b: &str) -> bool {
    norm(a) == norm(b)
}

/// The name a table goes by: its literal, a constant's value, or the constant itself.
fn table_name(t: &TableRef) -> Option<String> {
    t.name().map(str::to_string).or_else(|| match t {
        TableRef::Const(c, None) => Some(c.clone()),
        _ => None,
    })
}

impl Mutated {
    /// From every function's operations, its own and those it reaches through calls (with
    /// the caller's arguments in place). An operation whose item or update comes whole from
    /// the function's parameters (a generic `put_item(state, item)`) is left to the calls that
    /// give it one, where the function has callers.
    pub fn of<'a>(summaries: impl Iterator<Item = (&'a Summary, bool)>) -> Mutated {
        let mut m = Mutated::default();
        for (s, has_callers) in summaries {
            for op in &s.ops {
                if has_callers && from_params(&op.req) {
                    continue;
                }
                m.write(&op.req);
                for member in &op.req.members {
                    m.write(member);
                }
            }
        }
        m
    }

    fn write(&mut self, b: &Builder) {
        let changed: Option<Vec<String>> = match b.kind.plain() {
            OpKind::UpdateItem => match (&b.update, b.update_text()) {
                (Some(Text::Dynamic(_)), _) | (_, None) => None,
                (_, Some(text)) => Some(
                    expr::parse_update(&text)
                        .iter()
                        .map(|a| b.attr_name(a.path()).to_string())
                        .collect(),
                ),
            },
            OpKind::PutItem => {
                let creates = writes::key_source(b) == KeySource::Fresh
                    || matches!(&b.condition, Cond::Given(Text::Literal(t))
                        if !expr::parse_condition(t).not_exists.is_empty());
                let fields = b
                    .item_whole
                    .as_ref()
                    .and_then(|w| w.val.fields.as_ref())
                    .map(|f| f.keys().cloned().collect::<Vec<_>>());
                if creates {
                    Some(vec![])
                } else if let Some(mut fields) = fields {
                    // A struct written whole: its fields are what it may change.
                    fields.extend(b.item.iter().map(|p| p.name.clone()));
                    Some(fields)
                } else if b.item_whole.is_some() || b.item.is_empty() {
                    None
                } else {
                    Some(b.item.iter().map(|p| p.name.clone()).collect())
                }
            }
            OpKind::DeleteItem | OpKind::TxConditionCheck => Some(vec![]),
            OpKind::BatchWriteItem => (!b.other.puts).then(Vec::new),
            _ => return,
        };
        for k in &b.key {
            self.keys.insert(norm(&k.name));
        }
        match (table_name(&b.table), changed) {
            (Some(t), Some(attrs)) => self
                .tables
                .entry(t)
                .or_default()
                .extend(attrs.iter().map(|a| norm(a))),
            (Some(t), None) => {
                self.whole_tables.insert(t);
            }
            (None, Some(attrs)) => self.anywhere.extend(attrs.iter().map(|a| norm(a))),
            (None, None) => self.everything = true,
        }
    }

    /// No write of the workspace changes `attr` of an item of `table` once it exists.
    pub fn never_changed(&self, table: &TableRef, attr: &str) -> bool {
        let a = norm(attr);
        if a.is_empty() || attr == "*" {
            return false;
        }
        let name = table_name(table);
        // Named in a change: in this table, in one that cannot be named, or (for a table read
        // through an expression) in any.
        let named = self.anywhere.contains(&a)
            || match &name {
                Some(t) => self.tables.get(t).is_some_and(|s| s.contains(&a)),
                None => self.tables.values().any(|s| s.contains(&a)),
            };
        if named {
            return false;
        }
        // A key attribute no update can change; others only where no write is opaque.
        self.keys.contains(&a)
            || !(self.everything
                || match &name {
                    Some(t) => self.whole_tables.contains(t),
                    None => !self.whole_tables.is_empty(),
                })
    }
}
