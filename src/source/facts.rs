//! Facts about one function, computed once by the flow walker and read by every rule.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

pub type OpId = usize;

/// Where a value came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Origin {
    /// The output of DynamoDB read `OpId` of this flow.
    Read(OpId),
    /// The function's parameter (0 is `self` for methods).
    Param(usize),
    /// A fresh value: UUID, clock.
    Fresh,
    /// A literal or constant.
    Const,
    /// Shared in-process state read through acquisition `n` (a lock or an atomic load).
    Mem(usize),
}

/// A position in a source file (1-based line, 1-based column).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Span {
    pub file: Arc<str>,
    pub line: u32,
    pub column: u32,
    pub end_line: u32,
    pub end_column: u32,
}

/// The provenance of a value, plus what the walker carries alongside (builders, members).
#[derive(Clone, Debug, Default)]
pub struct Val {
    pub origins: BTreeSet<Origin>,
    /// Arithmetic was applied to read data to make this value.
    pub arith: bool,
    /// Where that arithmetic first happened.
    pub computed_at: Option<Span>,
    /// The change made to the read value: `+` or `-`, and the other operand as written
    /// (`balance - amount` gives `-`, `amount`).
    pub delta: Option<(char, String)>,
    /// Item attributes this value was taken from (`item.get("balance")`, `acct.balance`).
    pub attrs: BTreeSet<String>,
    /// An unsent DynamoDB request builder.
    pub builder: Option<Box<Builder>>,
    /// Transaction members this value carries (a `TransactWriteItem`, a `Vec` of them).
    pub members: Vec<Builder>,
    /// A lock guard (or temporary) on this receiver.
    pub guard_of: Option<String>,
    /// The SDK's output as sent back (`GetItemOutput`, its `item`), not yet an item's data: its
    /// fields (`item`, `count`) are the SDK's, not attributes.
    pub raw: bool,
    /// `None` on some path (`if new { Some(cond) } else { None }`).
    pub maybe_none: bool,
    /// Read data changed in Rust other than by arithmetic (a field set from elsewhere, an
    /// element pushed): written back whole, more than a number is lost.
    pub edited: bool,
    /// A struct or tuple built here, field by field (`Output { prev, current }`, `(a, b)`): a
    /// field taken from it has that field's provenance, not the whole value's.
    pub fields: Option<Arc<BTreeMap<String, Val>>>,
    /// Batch write requests this value carries: deletes, puts.
    pub deletes: bool,
    pub puts: bool,
    /// Only whether a read found something (`item.is_some()`, handed back by a helper):
    /// `Some(true)` when `true` means it did. A decision on it is a decision on existence.
    pub presence: Option<bool>,
    /// Whether stored data matched the caller's (`let ok = verify(&password, &hash)`): see
    /// `Guard::matches_caller`.
    pub matched: bool,
}

impl Val {
    pub fn of(origin: Origin) -> Val {
        let mut v = Val::default();
        v.origins.insert(origin);
        v
    }

    /// Merge another value's provenance into this one (builders are not merged).
    pub fn join(&mut self, other: &Val) {
        // Fields stay known through a join: a part without them adds its provenance to each
        // field (`if x { Out { .. } } else { opaque }`: a field may come from either).
        let blank = |v: &Val| v.origins.is_empty() && v.attrs.is_empty();
        // Only reads decide what a flag says: constants and parameters beside it do not.
        self.presence = match (!self.has_read(), !other.has_read()) {
            (_, true) => self.presence,
            (true, false) => other.presence,
            _ => self.presence.filter(|p| other.presence == Some(*p)),
        };
        let spread =
            |fields: Arc<BTreeMap<String, Val>>, extra: &Val| -> Arc<BTreeMap<String, Val>> {
                let adds = |v: &Val| {
                    !extra.origins.is_subset(&v.origins)
                        || !extra.attrs.is_subset(&v.attrs)
                        || (extra.arith && !v.arith)
                        || (extra.edited && !v.edited)
                };
                if !fields.values().any(adds) {
                    return fields;
                }
                Arc::new(
                    fields
                        .iter()
                        .map(|(k, v)| {
                            let mut v = v.clone();
                            v.join(extra);
                            (k.clone(), v)
                        })
                        .collect(),
                )
            };
        self.fields = match (self.fields.take(), &other.fields) {
            (Some(a), Some(b)) => {
                let mut merged = (*a).clone();
                for (k, v) in b.iter() {
                    merged.entry(k.clone()).or_default().join(v);
                }
                Some(Arc::new(merged))
            }
            (Some(a), None) if blank(other) => Some(a),
            (Some(a), None) => Some(spread(a, other)),
            (None, Some(b)) if blank(self) => Some(b.clone()),
            (None, Some(b)) => Some(spread(b.clone(), &self.data())),
            (None, None) => None,
        };
        self.origins.extend(other.origins.iter().copied());
        if other.arith && !self.arith {
            self.arith = true;
            self.computed_at = other.computed_at.clone();
            self.delta = other.delta.clone();
        }
        self.attrs.extend(other.attrs.iter().cloned());
        self.members.extend(other.members.iter().cloned());
        self.maybe_none |= other.maybe_none;
        self.edited |= other.edited;
        self.deletes |= other.deletes;
        self.puts |= other.puts;
    }

    pub fn data(&self) -> Val {
        Val {
            origins: self.origins.clone(),
            arith: self.arith,
            computed_at: self.computed_at.clone(),
            delta: self.delta.clone(),
            attrs: self.attrs.clone(),
            raw: self.raw,
            maybe_none: self.maybe_none,
            edited: self.edited,
            fields: self.fields.clone(),
            deletes: self.deletes,
            puts: self.puts,
            presence: self.presence,
            matched: self.matched,
            ..Val::default()
        }
    }

    /// The data without its parts: what a request or a decision keeps of a value.
    pub fn plain(&self) -> Val {
        Val {
            fields: None,
            ..self.data()
        }
    }

    /// The data and what it carries along: a request builder, transaction members.
    pub fn with_parts(&self) -> Val {
        Val {
            builder: self.builder.clone(),
            members: self.members.clone(),
            ..self.data()
        }
    }

    /// Parameters this value came from.
    pub fn params(&self) -> impl Iterator<Item = usize> + '_ {
        self.origins.iter().filter_map(|o| match o {
            Origin::Param(i) => Some(*i),
            _ => None,
        })
    }

    pub fn reads(&self) -> impl Iterator<Item = OpId> + '_ {
        self.origins.iter().filter_map(|o| match o {
            Origin::Read(id) => Some(*id),
            _ => None,
        })
    }

    pub fn has_read(&self) -> bool {
        self.reads().next().is_some()
    }

    /// The provenance of field `name`, where the value was built field by field.
    pub fn field(&self, name: &str) -> Option<&Val> {
        self.fields.as_ref().and_then(|f| f.get(name))
    }

    /// The parts of a value built from named parts, kept apart where that tells them apart
    /// (parts that all come from the same place are one value).
    pub fn fields_of(parts: Vec<(String, Val)>) -> Option<Arc<BTreeMap<String, Val>>> {
        /// Parts kept apart at most: a wider literal is taken whole.
        const MAX_FIELDS: usize = 24;
        let distinct = parts
            .windows(2)
            .any(|w| w[0].1.origins != w[1].1.origins || w[0].1.fields.is_some());
        (distinct && parts.len() <= MAX_FIELDS)
            .then(|| Arc::new(parts.into_iter().map(|(k, p)| (k, p.data())).collect()))
    }

    pub fn is_fresh(&self) -> bool {
        self.origins.contains(&Origin::Fresh)
    }
}

/// The kind of a DynamoDB operation or transaction member.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OpKind {
    GetItem,
    Query,
    Scan,
    BatchGetItem,
    TransactGetItems,
    PutItem,
    UpdateItem,
    DeleteItem,
    BatchWriteItem,
    TransactWriteItems,
    TxPut,
    TxUpdate,
    TxDelete,
    TxConditionCheck,
    /// `TransactWriteItem::builder()`: a wrapper around one member.
    TxItem,
}

impl OpKind {
    pub fn from_client_method(name: &str) -> Option<OpKind> {
        Some(match name {
            "get_item" => OpKind::GetItem,
            "query" => OpKind::Query,
            "scan" => OpKind::Scan,
            "batch_get_item" => OpKind::BatchGetItem,
            "transact_get_items" => OpKind::TransactGetItems,
            "put_item" => OpKind::PutItem,
            "update_item" => OpKind::UpdateItem,
            "delete_item" => OpKind::DeleteItem,
            "batch_write_item" => OpKind::BatchWriteItem,
            "transact_write_items" => OpKind::TransactWriteItems,
            _ => return None,
        })
    }

    /// A request given as a value: rusoto's `PutItemInput { .. }`, the SDK's
    /// `PutItemInput::builder()`.
    pub fn from_input_type(name: &str) -> Option<OpKind> {
        let stem = name.strip_suffix("Input")?;
        let mut snake = String::new();
        for (i, c) in stem.chars().enumerate() {
            if c.is_uppercase() && i > 0 {
                snake.push('_');
            }
            snake.extend(c.to_lowercase());
        }
        OpKind::from_client_method(&snake)
    }

    /// The SDK's fluent builder types (`ScanFluentBuilder`, `PutItemFluentBuilder`).
    pub fn from_fluent_builder(name: &str) -> Option<OpKind> {
        OpKind::from_input_type(&format!("{}Input", name.strip_suffix("FluentBuilder")?))
    }

    pub fn from_type_name(name: &str) -> Option<OpKind> {
        Some(match name {
            "Put" => OpKind::TxPut,
            "Update" => OpKind::TxUpdate,
            "Delete" => OpKind::TxDelete,
            "ConditionCheck" => OpKind::TxConditionCheck,
            "TransactWriteItem" => OpKind::TxItem,
            _ => return None,
        })
    }

    pub fn is_read(self) -> bool {
        matches!(
            self,
            OpKind::GetItem
                | OpKind::Query
                | OpKind::Scan
                | OpKind::BatchGetItem
                | OpKind::TransactGetItems
        )
    }

    pub fn is_write(self) -> bool {
        !self.is_read() && !matches!(self, OpKind::TxItem | OpKind::TxConditionCheck)
    }

    /// The name in `aws-sdk-dynamodb` (`put_item`, `Put`).
    pub fn api_name(self) -> &'static str {
        match self {
            OpKind::GetItem => "get_item",
            OpKind::Query => "query",
            OpKind::Scan => "scan",
            OpKind::BatchGetItem => "batch_get_item",
            OpKind::TransactGetItems => "transact_get_items",
            OpKind::PutItem => "put_item",
            OpKind::UpdateItem => "update_item",
            OpKind::DeleteItem => "delete_item",
            OpKind::BatchWriteItem => "batch_write_item",
            OpKind::TransactWriteItems => "transact_write_items",
            OpKind::TxPut => "Put",
            OpKind::TxUpdate => "Update",
            OpKind::TxDelete => "Delete",
            OpKind::TxConditionCheck => "ConditionCheck",
            OpKind::TxItem => "TransactWriteItem",
        }
    }

    /// The plain operation a transaction member stands for.
    pub fn plain(self) -> OpKind {
        match self {
            OpKind::TxPut => OpKind::PutItem,
            OpKind::TxUpdate => OpKind::UpdateItem,
            OpKind::TxDelete => OpKind::DeleteItem,
            other => other,
        }
    }
}

/// A table name as the code gives it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum TableRef {
    Literal(String),
    /// A constant, with its value where the crate defines it.
    Const(String, Option<String>),
    /// Any other expression (`self.table`, `&state.table_name`).
    Expr(String),
    Unknown,
}

impl TableRef {
    /// The table's name where it is known.
    pub fn name(&self) -> Option<&str> {
        match self {
            TableRef::Literal(s) | TableRef::Const(_, Some(s)) => Some(s),
            _ => None,
        }
    }

    /// How the code refers to the table, for messages.
    pub fn display(&self) -> String {
        match self {
            TableRef::Literal(s) => format!("`{s}`"),
            TableRef::Const(c, Some(v)) => format!("`{v}` ({c})"),
            TableRef::Const(c, None) => format!("`{c}`"),
            TableRef::Expr(e) => format!("`{e}`"),
            TableRef::Unknown => "an unknown table".into(),
        }
    }

    /// Whether two references can name the same table; `None` when that cannot be told.
    pub fn same_as(&self, other: &TableRef) -> Option<bool> {
        match (self.name(), other.name()) {
            (Some(a), Some(b)) => Some(a == b),
            _ => match (self, other) {
                (TableRef::Expr(a), TableRef::Expr(b)) if a == b => Some(true),
                (TableRef::Const(a, _), TableRef::Const(b, _)) => Some(a == b),
                _ => None,
            },
        }
    }
}

/// A string-valued builder argument: a literal, or computed at run time.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Text {
    Literal(String),
    Dynamic(String),
}

/// What `condition_expression` says.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub enum Cond {
    #[default]
    Absent,
    /// `set_condition_expression(None)`.
    ExplicitNone,
    Given(Text),
}

impl Cond {
    pub fn is_present(&self) -> bool {
        matches!(self, Cond::Given(_))
    }
}

/// `name = value` pairs from `key`, `item` and `expression_attribute_values`.
#[derive(Clone, Debug)]
pub struct Part {
    pub name: String,
    pub val: Val,
    /// The Rust expression as written.
    pub text: String,
}

/// A request builder as the walker has seen it so far.
#[derive(Clone, Debug)]
pub struct Builder {
    pub kind: OpKind,
    /// The client expression (`client`, `state.db`).
    pub client: String,
    pub table: TableRef,
    pub key: Vec<Part>,
    /// `set_key(Some(map))`.
    pub key_whole: Option<Val>,
    pub item: Vec<Part>,
    /// `set_item(Some(to_item(x)?))`.
    pub item_whole: Option<Part>,
    pub condition: Cond,
    pub update: Option<Text>,
    pub values: Vec<Part>,
    pub values_whole: Option<Val>,
    /// `#n` -> attribute name.
    pub names: Vec<(String, String)>,
    pub members: Vec<Builder>,
    /// Parameters of the function that are added as members (`transact_items(item)` in a
    /// generic wrapper): the caller's builders take their place when the call is composed.
    pub param_members: Vec<usize>,
    /// Legacy `attribute_updates`: (`SET`, `ADD` or `REMOVE`, attribute); the value is in
    /// `values` as `:<attribute>`.
    pub legacy_updates: Vec<(&'static str, String)>,
    /// Legacy `expected` conditions, as condition expression clauses.
    pub legacy_expected: Vec<String>,
    /// A query's or scan's secondary index (`index_name("email-index")`).
    pub index: Option<String>,
    /// A query's key condition, or a scan's filter: which attributes select the items read.
    pub selects: Option<Text>,
    /// Everything else passed to the builder (`request_items`).
    pub other: Val,
    pub start: Span,
    /// A request builder the function takes as parameter `i` (`builder: ScanFluentBuilder`)
    /// and sends: the caller's builder, with what is added here, is the one sent.
    pub from_param: Option<usize>,
    /// Handed to the callee's closure parameter `n` before it is sent
    /// (`configure(client.update_item().key(..)).send()`): the caller's closure configures it.
    pub configured_by: Option<usize>,
}

impl Builder {
    pub fn new(kind: OpKind, client: String, start: Span) -> Builder {
        Builder {
            kind,
            client,
            table: TableRef::Unknown,
            key: vec![],
            key_whole: None,
            item: vec![],
            item_whole: None,
            condition: Cond::Absent,
            update: None,
            values: vec![],
            values_whole: None,
            names: vec![],
            members: vec![],
            param_members: vec![],
            legacy_updates: vec![],
            legacy_expected: vec![],
            index: None,
            selects: None,
            other: Val::default(),
            start,
            from_param: None,
            configured_by: None,
        }
    }

    /// The update expression: as given, or rendered from legacy `attribute_updates`.
    pub fn update_text(&self) -> Option<String> {
        match &self.update {
            Some(Text::Literal(t)) | Some(Text::Dynamic(t)) => Some(t.clone()),
            None if !self.legacy_updates.is_empty() => {
                let mut out = vec![];
                for verb in ["SET", "ADD", "REMOVE"] {
                    let clauses: Vec<String> = self
                        .legacy_updates
                        .iter()
                        .filter(|(v, _)| *v == verb)
                        .map(|(_, a)| match verb {
                            "SET" => format!("{a} = :{a}"),
                            "ADD" => format!("{a} :{a}"),
                            _ => a.clone(),
                        })
                        .collect();
                    if !clauses.is_empty() {
                        out.push(format!("{verb} {}", clauses.join(", ")));
                    }
                }
                Some(out.join(" "))
            }
            None => None,
        }
    }

    /// Resolve `#name` placeholders to attribute names.
    pub fn attr_name<'a>(&'a self, path: &'a str) -> &'a str {
        self.names
            .iter()
            .find(|(k, _)| k == path)
            .map(|(_, v)| v.as_str())
            .unwrap_or(path)
    }

    pub fn value(&self, placeholder: &str) -> Option<&Part> {
        self.values.iter().find(|p| p.name == placeholder)
    }

    pub fn key_attrs(&self) -> Vec<String> {
        self.key.iter().map(|p| p.name.clone()).collect()
    }

    /// Origins of the key values, all parts together.
    pub fn key_val(&self) -> Val {
        let mut v = Val::default();
        for p in &self.key {
            v.join(&p.val);
        }
        if let Some(w) = &self.key_whole {
            v.join(w);
        }
        v
    }
}

/// A decision on read data that the code takes before a write.
#[derive(Clone, Debug)]
pub struct Guard {
    pub val: Val,
    pub kind: GuardKind,
    /// The condition as written.
    pub text: String,
    pub span: Span,
    /// True when the guarded code runs when `text` holds, false when it runs when it fails
    /// (an early return or the `else` branch).
    pub proceeds_when_true: bool,
    /// For an existence check: whether the guarded code runs only when the item exists
    /// (`Some(true)`), only when it does not (`Some(false)`), or that cannot be told.
    pub on_existing: Option<bool>,
    /// `if new == stored { return }`: the guarded code runs only when the data read differs
    /// from this value of the caller's (its provenance).
    pub differs_from: Option<Val>,
    /// The guarded code runs only once a time read from the item has passed the clock
    /// (`if expires_at < now`): what follows deals with something expired.
    pub past_due: bool,
    /// The decision compares what was read with what the caller brought: an owner with the
    /// caller's id, a stored hash with a password, an allow-list with a value
    /// (`item.owner != user.id`, `verify(&password, &hash)`, `uris.contains(&uri)`).
    pub matches_caller: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GuardKind {
    /// Whether an item exists (`is_none`, `let Some(..) else`, `None => return`).
    Exists,
    /// A decision on the item's data (`balance < amount`, `coupon.redeemed`).
    Value,
}

/// A loop around an operation.
#[derive(Clone, Debug)]
pub struct LoopCtx {
    pub span: Span,
    /// An attempt counter (or a bounded `for`) limits the loop.
    pub bounded: bool,
}

/// What the code does with a write's result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Handling {
    /// `?`: handed to the caller.
    Propagated,
    /// `unwrap()` / `expect()`.
    Panics,
    /// `map_err(..)`: converted; whether it tells a failed condition apart is in `ccf_handled`.
    Mapped,
    /// Kept in a variable or matched.
    Bound,
    /// Dropped (`let _ =`, `unwrap_or_default`).
    Ignored,
}

/// A call that carries an operation from a callee into this flow.
#[derive(Clone, Debug)]
pub struct CallSite {
    pub span: Span,
    pub callee: String,
}

/// An executed DynamoDB operation (`.send()` reached).
#[derive(Clone, Debug)]
pub struct Op {
    pub id: OpId,
    pub req: Builder,
    /// From the start of the request to `.send()`.
    pub span: Span,
    /// Calls from this flow's function down to the function that sends it (outermost first).
    pub via: Vec<CallSite>,
    pub guards: Vec<Guard>,
    pub loops: Vec<LoopCtx>,
    pub handling: Handling,
    /// Some function along the way tells `ConditionalCheckFailed` apart.
    pub ccf_handled: bool,
    /// The function whose body sends it.
    pub function: String,
    /// The result value (reads: `Read(id)`).
    pub result: Val,
}

impl Op {
    /// The span to report in the flow's own function: the op, or the call that reaches it.
    pub fn local_span(&self) -> &Span {
        self.via.first().map(|c| &c.span).unwrap_or(&self.span)
    }

    pub fn depth(&self) -> usize {
        self.via.len()
    }
}

/// Shared in-process state read under one lock acquisition and written under another.
#[derive(Clone, Debug)]
pub struct MemRmw {
    pub receiver: String,
    pub read: Span,
    pub write: Span,
    pub atomic: bool,
}

/// Everything one function does, with callees composed in.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    pub ops: Vec<Op>,
    pub mem: Vec<MemRmw>,
    /// Provenance of the return value, in terms of this function's parameters and reads; a
    /// request builder or transaction members the function returns come along.
    pub ret: Val,
    /// Operations of callees left out because the flow grew past [`MAX_OPS`].
    pub capped: bool,
}

/// Operations one function's summary holds at most, its callees' included: call graphs where
/// every function calls the next two would otherwise double the summary at every level.
pub const MAX_OPS: usize = 512;

/// Operations all summaries of one analysis hold at most, before callers stop composing their
/// callees: keeps memory bounded by the input whatever its call graph (real services hold a few
/// few hundred).
pub const OPS_BUDGET: usize = 50_000;

/// Calls composed into a summary at most this deep (a long chain of callers would otherwise
/// copy ever longer call paths).
pub const MAX_DEPTH: usize = 24;

impl Summary {
    /// Whether a call to this function matters to the analysis.
    pub fn is_interesting(&self) -> bool {
        !self.ops.is_empty()
            || self.ret.has_read()
            || self.ret.builder.is_some()
            || !self.ret.members.is_empty()
            || self.ret.deletes
            || self.ret.puts
            || self.ret.fields.is_some()
    }
}

/// A one-line account of a summary, for `RACECHECK_LOG=racecheck=trace`.
pub fn describe(s: &Summary) -> String {
    let mut out = vec![];
    for op in &s.ops {
        let via: Vec<&str> = op.via.iter().map(|c| c.callee.as_str()).collect();
        let guards: Vec<String> = op
            .guards
            .iter()
            .map(|g| format!("{}{:?}", g.text, g.val.origins))
            .collect();
        out.push(format!(
            "#{} {}@{}:{} table={} cond={} members={} params={:?} via={:?} guards={:?}",
            op.id,
            op.req.kind.api_name(),
            op.span.file.rsplit('/').next().unwrap_or(""),
            op.span.line,
            op.req.table.display(),
            op.req.condition.is_present(),
            op.req.members.len(),
            op.req.param_members,
            via,
            guards
        ));
    }
    format!("ret={:?} ops=[{}]", s.ret.origins, out.join("; "))
}
