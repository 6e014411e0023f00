//! Per-write facts derived once from a flow, so rules never look at syntax: which reads feed
//! the write, which decisions on read data guard it, and whether its condition re-checks them.

use std::collections::BTreeSet;

use super::expr::{self, Action, SetValue};
use super::facts::*;

/// A read whose data reaches a write.
#[derive(Clone, Debug)]
pub struct Feed {
    pub read: OpId,
    /// Attributes (or `*` for the whole item) the write sets from the read's data.
    pub written: Vec<String>,
    /// Attributes of the read the data came from (empty: the whole item).
    pub source_attrs: BTreeSet<String>,
    /// The data was changed by arithmetic in Rust.
    pub arith: bool,
    pub computed_at: Option<Span>,
    /// The read data was also changed otherwise (a field set, an element pushed).
    pub edited: bool,
    /// Table and key say the read and the write are the same item.
    pub same_item: bool,
}

/// A decision on read data that decides whether the write happens.
#[derive(Clone, Debug)]
pub struct Check {
    pub guard: Guard,
    pub reads: Vec<OpId>,
    pub attrs: BTreeSet<String>,
    /// The decision is whether other items hold a value the caller gave.
    pub unique: Option<Unique>,
}

/// A uniqueness check: a query (or scan) that selects items by attributes whose values the
/// caller gave (an email on its index), decided on what it found. Only an item keyed by
/// that value and created only if absent can re-check it: a condition on any other item
/// cannot see the items the query saw.
#[derive(Clone, Debug)]
pub struct Unique {
    /// The attributes selected on (`email`).
    pub attrs: Vec<String>,
    pub index: Option<String>,
    /// Provenance of the values selected on.
    pub vals: Val,
    /// The Rust expression of the first value selected on (`email.clone()`).
    pub value: Option<String>,
}

/// The uniqueness a collection read `r` checks when a decision is taken on it, if it selects
/// by values the caller gave and nothing read.
fn unique_of(r: &Builder) -> Option<Unique> {
    if !matches!(r.kind, OpKind::Query | OpKind::Scan) {
        return None;
    }
    let Some(Text::Literal(t)) = &r.selects else {
        return None;
    };
    let c = expr::parse_condition(t);
    let mut attrs: Vec<String> = c.attrs.iter().map(|a| r.attr_name(a).to_string()).collect();
    attrs.dedup();
    let mut vals = Val::default();
    for p in &r.values {
        vals.join(&p.val);
    }
    if let Some(v) = &r.values_whole {
        vals.join(v);
    }
    let value = r
        .values
        .iter()
        .find(|p| p.val.params().next().is_some())
        .map(|p| p.text.clone());
    (!attrs.is_empty() && vals.params().next().is_some() && !vals.has_read()).then(|| Unique {
        attrs,
        index: r.index.clone(),
        vals: vals.plain(),
        value,
    })
}

/// `m` creates, only if absent, an item keyed by a value the uniqueness check selected on:
/// the claim that makes the value unique (`PK = "EMAIL#" + email`,
/// `attribute_not_exists(PK)`).
fn claims(m: &Builder, u: &Unique) -> bool {
    let Cond::Given(Text::Literal(t)) = &m.condition else {
        return false;
    };
    if expr::parse_condition(t).not_exists.is_empty()
        || !matches!(m.kind.plain(), OpKind::PutItem | OpKind::UpdateItem)
    {
        return false;
    }
    let key = key_value(m);
    u.vals
        .params()
        .any(|p| key.origins.contains(&Origin::Param(p)))
}

/// Where the item's key comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeySource {
    /// A new UUID or clock value: no other request can name this item.
    Fresh,
    /// From the request (a path parameter, the body).
    Caller,
    /// From data read before.
    Read,
    Unknown,
}

#[derive(Clone, Debug)]
pub struct WriteFacts {
    pub op: OpId,
    /// Index of the member when the write is part of a transaction.
    pub member: Option<usize>,
    /// The builder of the write itself (the member for transactions).
    pub req: Builder,
    pub kind: OpKind,
    pub feeds: Vec<Feed>,
    pub checks: Vec<Check>,
    pub update: Vec<Action>,
    /// The condition as parsed (attribute names resolved through `#n`).
    pub condition: Option<expr::Condition>,
    pub condition_dynamic: bool,
    /// The condition (or a `ConditionCheck` in the same transaction) re-checks what was read or
    /// decided.
    pub rechecks: bool,
    pub key_source: KeySource,
    pub in_transaction: bool,
    /// The key of the item read, for a write that names its item only inside a serialized
    /// struct (`set_item(to_item(&account))`); for a put of attributes, the put's own parts
    /// that the read's key names (the key for certain, not a guess).
    pub key_hint: Vec<Part>,
}

impl WriteFacts {
    pub fn has_condition(&self) -> bool {
        self.req.condition.is_present()
    }

    pub fn same_item_feeds(&self) -> impl Iterator<Item = &Feed> {
        self.feeds.iter().filter(|f| f.same_item)
    }

    /// The item read is written back whole after changes beyond its numbers (an element
    /// pushed, a field set): an update of the numbers alone would drop them.
    pub fn puts_back_edited_item(&self) -> bool {
        self.same_item_feeds()
            .any(|f| f.edited && f.written.iter().any(|a| a == "*"))
    }

    /// Whether the update fails on a missing item: it reads a stored attribute with no
    /// default (`SET n = n + :d`, `list_append(l, :x)`), so it cannot create one.
    pub fn requires_item(&self) -> bool {
        self.update.iter().any(|a| match a {
            Action::Set { value, rhs, .. } => {
                matches!(value, SetValue::SelfArith(_) | SetValue::ListAppend(_))
                    && !rhs.contains("if_not_exists")
            }
            _ => false,
        })
    }

    /// Attributes the update sets atomically (`SET a = a + :d`, `ADD a :d`).
    pub fn atomic_attrs(&self) -> Vec<&str> {
        self.update
            .iter()
            .filter(|a| match a {
                Action::Set { value, .. } => value.is_atomic(),
                Action::Add { .. } => true,
                _ => false,
            })
            .map(|a| self.req.attr_name(a.path()))
            .collect()
    }
}

/// Whether a read and a write can touch the same item.
pub fn same_item(read: &Builder, write: &Builder) -> Option<bool> {
    if read.table.same_as(&write.table) == Some(false) {
        return Some(false);
    }
    let (rk, wk) = (read.key_val(), write.key_val());
    // A key given but made of nothing from the request or a read (a constant, `Status::key()`)
    // names one fixed item; a key from the request names another one.
    let given = |b: &Builder| !b.key.is_empty() || b.key_whole.is_some();
    let fixed = |v: &Val| v.origins.iter().all(|o| matches!(o, Origin::Const));
    let variable = |v: &Val| {
        v.origins
            .iter()
            .any(|o| matches!(o, Origin::Param(_) | Origin::Fresh))
    };
    if given(read) && given(write) {
        // Two fixed keys (a singleton item, `PK = "CONFIG"`): the same item when written alike.
        if fixed(&rk) && fixed(&wk) && !read.key.is_empty() && !write.key.is_empty() {
            let parts = |b: &Builder| {
                let mut v: Vec<(String, String)> = b
                    .key
                    .iter()
                    .map(|p| (p.name.clone(), p.text.clone()))
                    .collect();
                v.sort();
                v
            };
            return Some(parts(read) == parts(write));
        }
        if (fixed(&rk) && variable(&wk) && !wk.has_read())
            || (fixed(&wk) && variable(&rk) && !rk.has_read())
        {
            return Some(false);
        }
    }
    if rk.origins.is_empty() || wk.origins.is_empty() {
        return None;
    }
    // A key made from what was read (`item.id`) names the read item.
    if wk.has_read() {
        return Some(true);
    }
    let shared = rk
        .origins
        .iter()
        .any(|o| matches!(o, Origin::Param(_) | Origin::Read(_)) && wk.origins.contains(o));
    // Two fields of one request body (`t.from`, `t.to`) share an origin but name different
    // items: compare the variables the keys are made of.
    // Only fields of a value are told apart this way: a helper's parameter (`pk`) and the
    // caller's variable (`challenge_id`) name the same value in two frames.
    if shared && !rk.has_read() && read.key.len() == write.key.len() && !read.key.is_empty() {
        let field = |p: &Part| last_field(&p.text);
        let differs = read.key.iter().any(|r| {
            write.key.iter().any(|w| {
                r.name == w.name && matches!((field(r), field(w)), (Some(a), Some(b)) if a != b)
            })
        });
        if differs {
            return Some(false);
        }
    }
    Some(shared)
}

/// The last field a value is taken from (`t.from.clone()` gives `from`), if it is a field.
fn last_field(text: &str) -> Option<String> {
    text.split('.')
        .skip(1)
        .filter_map(|seg| {
            let name: String = seg
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            let called = seg[name.len()..].trim_start().starts_with('(');
            (!name.is_empty() && !called && !name.starts_with(|c: char| c.is_ascii_digit()))
                .then_some(name)
        })
        .last()
}

/// Attribute names that are keys by convention: `id`, `pk`/`sk`, `PK`, `user_id`, `userId`,
/// `key`.
fn looks_like_key(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    matches!(
        n.as_str(),
        "id" | "pk" | "sk" | "key" | "partition_key" | "sort_key" | "hash_key" | "range_key"
    ) || n.ends_with("_id")
        || n.ends_with("_key")
        || (name.ends_with("Id") && name.len() > 2)
}

/// The attributes a write's key is stored under, as far as the code shows them: its key
/// parts, or a put's item parts that look like a key.
pub fn key_attrs(b: &Builder) -> Vec<String> {
    let parts = if b.key.is_empty() { &b.item } else { &b.key };
    parts
        .iter()
        .filter(|p| !b.key.is_empty() || looks_like_key(&p.name))
        .map(|p| p.name.clone())
        .collect()
}

/// The provenance of a write's key: its key parts, or for a put the item's parts that look
/// like a key (all of them when none does).
fn key_value(b: &Builder) -> Val {
    let mut v = b.key_val();
    if let Some(item) = &b.item_whole {
        if b.key.is_empty() {
            v.join(&item.val);
        }
    }
    // Puts carry their key inside the item: the parts that look like a key, or all of them
    // (a `created_at = now()` beside the key does not make the key fresh).
    if b.key.is_empty() {
        let keyish: Vec<&Part> = b.item.iter().filter(|p| looks_like_key(&p.name)).collect();
        let parts: Vec<&Part> = if keyish.is_empty() {
            b.item.iter().collect()
        } else {
            keyish
        };
        for p in parts {
            v.join(&p.val);
        }
    }
    v
}

pub fn key_source(b: &Builder) -> KeySource {
    let v = key_value(b);
    if v.is_fresh() {
        KeySource::Fresh
    } else if v.has_read() {
        KeySource::Read
    } else if v.origins.iter().any(|o| matches!(o, Origin::Param(_))) {
        KeySource::Caller
    } else {
        KeySource::Unknown
    }
}

/// Derive the facts of every write in a flow.
pub fn derive(s: &Summary) -> Vec<WriteFacts> {
    let mut out = vec![];
    for op in &s.ops {
        if op.req.kind == OpKind::TransactWriteItems {
            for (i, m) in op.req.members.iter().enumerate() {
                if m.kind.is_write() {
                    out.push(facts_for(s, op, m, Some(i)));
                }
            }
        } else if op.req.kind.is_write() {
            out.push(facts_for(s, op, &op.req, None));
        }
    }
    out
}

fn facts_for(s: &Summary, op: &Op, b: &Builder, member: Option<usize>) -> WriteFacts {
    let update = b
        .update_text()
        .map(|t| expr::parse_update(&t))
        .unwrap_or_default();
    // The values the write stores, by the attribute they land in.
    let mut stored: Vec<(String, &Val)> = vec![];
    for p in &b.item {
        stored.push((p.name.clone(), &p.val));
    }
    if let Some(p) = &b.item_whole {
        stored.push(("*".into(), &p.val));
    }
    for a in &update {
        if let Action::Set { path, value, .. } = a {
            if value.is_atomic() {
                continue;
            }
            for ph in value.placeholders() {
                if let Some(p) = b.value(ph) {
                    stored.push((b.attr_name(path).to_string(), &p.val));
                }
            }
        }
    }
    if update.is_empty() {
        // A dynamic update expression: every value counts.
        for p in &b.values {
            stored.push((p.name.clone(), &p.val));
        }
    }
    if let Some(v) = &b.values_whole {
        stored.push(("*".into(), v));
    }
    if b.kind == OpKind::BatchWriteItem {
        stored.push(("*".into(), &b.other));
    }

    let read_ops = |id: OpId| s.ops.iter().find(|o| o.id == id && o.req.kind.is_read());
    let mut feeds: Vec<Feed> = vec![];
    for (attr, val) in &stored {
        for r in val.reads() {
            let Some(read) = read_ops(r) else { continue };
            // A put under a fresh key makes a new item, whatever its data came from.
            let same = key_source(b) != KeySource::Fresh && same_item(&read.req, b).unwrap_or(true);
            match feeds.iter_mut().find(|f| f.read == r) {
                Some(f) => {
                    f.written.push(attr.clone());
                    f.source_attrs.extend(val.attrs.iter().cloned());
                    f.edited |= val.edited;
                    if val.arith && !f.arith {
                        f.arith = true;
                        f.computed_at = val.computed_at.clone();
                    }
                }
                None => feeds.push(Feed {
                    read: r,
                    written: vec![attr.clone()],
                    source_attrs: val.attrs.clone(),
                    arith: val.arith,
                    computed_at: val.computed_at.clone(),
                    edited: val.edited,
                    same_item: same,
                }),
            }
        }
    }

    let mut checks: Vec<Check> = op
        .guards
        .iter()
        .filter_map(|g| {
            let reads: Vec<OpId> = g.val.reads().filter(|r| read_ops(*r).is_some()).collect();
            // Going on only when the query found something is no uniqueness check.
            let unique = reads
                .iter()
                .map(|r| read_ops(*r).and_then(|o| unique_of(&o.req)))
                .collect::<Option<Vec<Unique>>>()
                .and_then(|u| u.into_iter().next())
                .filter(|_| g.on_existing != Some(true))
                // A decision on other attributes of what was found (`user.password_hash`) is
                // about that item, not about whether another holds the value.
                .filter(|u| {
                    g.val.attrs.is_empty()
                        || g.val.attrs.iter().any(|a| a == "*" || u.attrs.contains(a))
                });
            (!reads.is_empty()).then(|| Check {
                guard: g.clone(),
                reads,
                attrs: g.val.attrs.clone(),
                unique,
            })
        })
        .collect();
    // An atomic `ADD a :d` (or `SET a = a + :d`) whose amount was computed from a read is a
    // decision on that read: the expression is atomic, the amount is stale.
    for a in &update {
        let placeholders: Vec<&String> = match a {
            Action::Add { placeholder, .. } => vec![placeholder],
            Action::Set { value, .. } if value.is_atomic() => value.placeholders().iter().collect(),
            _ => vec![],
        };
        for ph in placeholders {
            let Some(part) = b.value(ph) else { continue };
            let reads: Vec<OpId> = part
                .val
                .reads()
                .filter(|r| read_ops(*r).is_some())
                .collect();
            if reads.is_empty() {
                continue;
            }
            let span = part
                .val
                .computed_at
                .clone()
                .unwrap_or_else(|| op.span.clone());
            checks.push(Check {
                guard: Guard {
                    val: part.val.clone(),
                    kind: GuardKind::Value,
                    text: format!(
                        "{} (the amount added to {})",
                        part.text,
                        b.attr_name(a.path())
                    ),
                    span,
                    proceeds_when_true: true,
                    on_existing: None,
                    differs_from: None,
                    past_due: false,
                    matches_caller: false,
                },
                reads,
                attrs: part.val.attrs.clone(),
                unique: None,
            });
        }
    }

    let (condition, dynamic) = match &b.condition {
        Cond::Given(Text::Literal(t)) => (Some(resolve(expr::parse_condition(t), b)), false),
        Cond::Given(Text::Dynamic(t)) => (Some(resolve(expr::parse_condition(t), b)), true),
        _ => (None, false),
    };
    // A write's condition speaks of its own item only: decisions on other items (a status read
    // elsewhere, a query of related items) need a member of the same transaction that
    // re-checks them.
    // A query or scan reads a collection: the write's condition cannot re-check it, unless the
    // write's key came out of it.
    let write_key = b.key_val();
    let on_other_item = |reads: &[OpId]| {
        reads.iter().all(|r| {
            read_ops(*r).is_some_and(|read| {
                key_source(b) == KeySource::Fresh
                    || same_item(&read.req, b) == Some(false)
                    || (matches!(
                        read.req.kind,
                        OpKind::Query | OpKind::Scan | OpKind::BatchGetItem
                    ) && !write_key.reads().any(|k| k == *r))
            })
        })
    };
    let (own_checks, other_checks): (Vec<Check>, Vec<Check>) = checks
        .iter()
        .cloned()
        .partition(|c| !on_other_item(&c.reads));
    // A uniqueness check is kept by the claim on the value: this write's, or a member's of
    // the same transaction.
    let claimed = |c: &Check| {
        c.unique.as_ref().is_some_and(|u| {
            claims(b, u) || (member.is_some() && op.req.members.iter().any(|m| claims(m, u)))
        })
    };
    let other_checks: Vec<Check> = other_checks.into_iter().filter(|c| !claimed(c)).collect();
    let own_feeds: Vec<Feed> = feeds.iter().filter(|f| f.same_item).cloned().collect();
    let own = (own_feeds.is_empty() && own_checks.is_empty())
        || recheck(condition.as_ref(), dynamic, b, &own_feeds, &own_checks);
    let by_member = |feeds: &[Feed], checks: &[Check]| {
        // Only a member on the item that was read can re-check what was read.
        let on_read_item = |m: &Builder| {
            key_source(m) != KeySource::Fresh
                && feeds
                    .iter()
                    .map(|f| f.read)
                    .chain(checks.iter().flat_map(|c| c.reads.iter().copied()))
                    .all(|r| read_ops(r).is_some_and(|read| same_item(&read.req, m) != Some(false)))
        };
        member.is_some()
            && op.req.members.iter().any(|m| {
                !std::ptr::eq(m, b)
                    && matches!(&m.condition, Cond::Given(_))
                    && on_read_item(m)
                    && {
                        let c = match &m.condition {
                            Cond::Given(Text::Literal(t)) => {
                                Some(resolve(expr::parse_condition(t), m))
                            }
                            _ => None,
                        };
                        recheck(c.as_ref(), c.is_none(), m, feeds, checks)
                    }
            })
    };
    let own = own || by_member(&own_feeds, &own_checks);
    // Each decision on another item needs a member on that item: decisions on two items are
    // re-checked by two members.
    let others = other_checks
        .iter()
        .all(|c| by_member(&[], std::slice::from_ref(c)));
    // A write with no decision or data from a read has nothing to re-check.
    let rechecks = own && others && (condition.is_some() || member.is_some());
    let read_key = || {
        feeds
            .iter()
            .filter(|f| f.same_item)
            .find_map(|f| read_ops(f.read))
            .map(|r| r.req.key.clone())
            .unwrap_or_default()
    };
    let key_hint = if b.key.is_empty() && b.item.is_empty() {
        read_key()
    } else if b.key.is_empty() {
        let named: Option<Vec<Part>> = read_key()
            .iter()
            .map(|k| b.item.iter().find(|p| p.name == k.name).cloned())
            .collect();
        named.unwrap_or_default()
    } else {
        vec![]
    };
    WriteFacts {
        key_hint,
        op: op.id,
        member,
        req: b.clone(),
        kind: b.kind.plain(),
        feeds,
        checks,
        update,
        condition,
        condition_dynamic: dynamic,
        rechecks,
        key_source: key_source(b),
        in_transaction: member.is_some(),
    }
}

fn resolve(mut c: expr::Condition, b: &Builder) -> expr::Condition {
    let r = |v: &mut Vec<String>| {
        for a in v.iter_mut() {
            *a = b.attr_name(a).to_string();
        }
    };
    r(&mut c.attrs);
    r(&mut c.not_exists);
    r(&mut c.exists);
    c
}

fn recheck(
    c: Option<&expr::Condition>,
    dynamic: bool,
    b: &Builder,
    feeds: &[Feed],
    checks: &[Check],
) -> bool {
    let Some(c) = c else { return false };
    if dynamic {
        return true;
    }
    let keys = b.key_attrs();
    // `attribute_not_exists` on the key makes the write a create: it cannot replace the item
    // that was read. A put names its key only inside the item, so any such clause counts there.
    let creates_only =
        matches!(b.kind.plain(), OpKind::PutItem) || c.not_exists.iter().any(|a| keys.contains(a));
    if !c.not_exists.is_empty() && creates_only {
        return true;
    }
    let tested: Vec<&String> = c
        .attrs
        .iter()
        .chain(&c.not_exists)
        .filter(|a| !keys.contains(a))
        .collect();
    if tested.is_empty() {
        // Only `attribute_exists(pk)`: the item may have changed since it was read.
        return false;
    }
    if tested.iter().any(|a| expr::is_version_attr(a)) {
        return true;
    }
    let mut relevant: BTreeSet<&str> = BTreeSet::new();
    let mut whole_item = false;
    for f in feeds {
        if f.source_attrs.is_empty() {
            whole_item = true;
        }
        relevant.extend(f.source_attrs.iter().map(String::as_str));
        relevant.extend(f.written.iter().map(String::as_str));
    }
    for ch in checks {
        if ch.attrs.is_empty() {
            whole_item = true;
        }
        relevant.extend(ch.attrs.iter().map(String::as_str));
    }
    whole_item || tested.iter().any(|a| relevant.contains(a.as_str()))
}
