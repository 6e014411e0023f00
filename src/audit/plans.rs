//! From suspicion to proof: the probe plan a finding calls for, built from its route and the
//! OpenAPI document (method, URL, body, the GET that observes the attribute the handler
//! changes, the reset that restores the state), and the verdict of running it. What cannot be
//! known is named, and the finding stays `untested` with the partial plan; nothing is guessed.

use std::collections::BTreeMap;

use serde_json::Value;

use super::{normalize, ServiceFacts};
use crate::model::{Finding, Proof, ProofStatus, Report};
use crate::probe::plan::{CreateSpec, Expect, Mode, ObserveSpec, Plan, RequestSpec};
use crate::source::body::{Body, Shape};
use crate::source::Handler;
use crate::spec::sample::text;
use crate::spec::OpFacts;

/// What plans are built against.
pub struct Service<'a> {
    /// `http://127.0.0.1:3000`, without a trailing `/`.
    pub base_url: &'a str,
    /// Path parameter values the operator gave (`--param id=42`).
    pub params: &'a BTreeMap<String, String>,
    pub ops: &'a [OpFacts],
    /// The routed handlers and their writes: what a contract finding's operation keeps.
    pub handlers: &'a [Handler],
    /// Makes generated path parameters unique to this run.
    pub nonce: String,
    /// A `racecheck interleave` proxy's URL: plans run 5 rounds of 2 requests through it.
    pub interleave: Option<&'a str>,
}

impl<'a> Service<'a> {
    pub fn new(
        base_url: &'a str,
        params: &'a BTreeMap<String, String>,
        facts: &'a ServiceFacts,
        interleave: Option<&'a str>,
    ) -> Service<'a> {
        Service {
            base_url: base_url.trim_end_matches('/'),
            params,
            ops: &facts.ops,
            handlers: &facts.handlers,
            nonce: nonce(),
            interleave,
        }
    }
}

impl Service<'_> {
    /// The routed handler of `method path`.
    fn handler(&self, method: &str, path: &str) -> Option<&Handler> {
        self.handlers
            .iter()
            .find(|h| h.route.method == method && normalize(&h.route.path) == normalize(path))
    }

    /// The body `method path` takes: the document's, else one the handler's `Json<T>` reads
    /// (its type read through the crate's structs and serde attributes).
    fn body(&self, op: Option<&OpFacts>, method: &str, path: &str) -> Result<Value, String> {
        if let Some(b) = op.and_then(|o| o.body.clone()) {
            return Ok(b);
        }
        let what = format!("the request body of {method} {path}");
        match self.handler(method, path) {
            Some(h) => match &h.body {
                Body::Json(shape) => {
                    example(shape).map_err(|why| format!("{what}: `{}` reads {why}", h.function))
                }
                Body::Other(kind) => Err(format!(
                    "{what}: `{}` reads a `{kind}` body, which plans do not make",
                    h.function
                )),
                Body::None => Ok(Value::Null),
            },
            None if op.is_some() || !matches!(method, "POST" | "PUT" | "PATCH") => Ok(Value::Null),
            None => Err(format!(
                "{what}: no OpenAPI operation documents it and no routed handler reads it"
            )),
        }
    }
}

/// A value of `shape`, as a request would send it.
fn example(shape: &Shape) -> Result<Value, String> {
    Ok(match shape {
        Shape::Str => text(None).into(),
        Shape::Uuid => text(Some("uuid")).into(),
        Shape::DateTime => text(Some("date-time")).into(),
        Shape::Date => text(Some("date")).into(),
        Shape::Int | Shape::Float => 1.into(),
        Shape::Bool => true.into(),
        Shape::Opt(s) => example(s).unwrap_or(Value::Null),
        Shape::List(s) => Value::Array(vec![example(s)?]),
        Shape::Map => Value::Object(Default::default()),
        Shape::Any => return Err("a `serde_json::Value`, whose fields only its code names".into()),
        Shape::Object(fields) => {
            let mut m = serde_json::Map::new();
            for f in fields {
                match example(&f.shape) {
                    Ok(v) => {
                        m.insert(f.name.clone(), v);
                    }
                    Err(e) if f.required => return Err(format!("`{}` as {e}", f.name)),
                    Err(_) => {}
                }
            }
            Value::Object(m)
        }
        Shape::OneOf(names) => match names.first() {
            Some(n) => n.clone().into(),
            None => return Err("an enum with no variant".into()),
        },
        Shape::Unknown(n) | Shape::Named(n) => {
            return Err(format!("a `{n}`, which the crate does not define once"))
        }
    })
}

/// Different on every run, so generated path parameters name fresh resources.
fn nonce() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{:x}", std::process::id() ^ nanos)
}

/// A plan, or what it still lacks (with the plan as far as it goes).
pub enum Derived {
    Ready(Box<Plan>),
    Missing {
        partial: Value,
        missing: Vec<String>,
    },
}

/// The rule's harm as a burst shows it.
fn mode_of(rule: &str) -> Result<Mode, String> {
    match rule {
        "RC101" | "RC103" | "RC109" | "RC205" => Ok(Mode::LostUpdate),
        "RC102" => Ok(Mode::LimitOverrun),
        "RC104" => Err("a split write shows only when a request fails between its writes, which a burst does not cause".into()),
        "RC106" => Err("a create that replaces another shows only in data the API may not return".into()),
        _ => Err("this rule's harm is not something a burst of one request shows".into()),
    }
}

/// What a contract finding's operation would show under a burst, from what its handler
/// writes: a condition that compares or requires absence is a limit (at most one of the same
/// requests may pass it), a number changed in place is a counter (every success counts).
/// With the attributes the handler changes.
fn harm_of_handler(h: &Handler) -> Result<(Mode, Vec<String>), String> {
    let numbers: Vec<String> = h.writes.iter().flat_map(|w| w.numbers.clone()).collect();
    let name = &h.function;
    if h.writes.iter().any(|w| w.limits.is_none()) {
        return Err(format!(
            "how many requests may succeed: the condition of `{name}`'s write is built at run time"
        ));
    }
    if h.writes.iter().any(|w| w.limits == Some(true)) {
        return Ok((Mode::LimitOverrun, numbers));
    }
    if !numbers.is_empty() {
        return Ok((Mode::LostUpdate, numbers));
    }
    if h.writes.is_empty() {
        return Err(format!(
            "what `{name}` changes: none of its writes is visible to the analysis"
        ));
    }
    Err(format!("a change a burst could show: `{name}` keeps no limit (no condition) and changes no stored number in place, so the same requests leave the same state whichever lands last"))
}

/// The harm a plan looks for, and the attributes that show it: a source finding's from its
/// rule, a contract finding's from the handler of its operation.
fn harm(f: &Finding, s: &Service, method: &str, path: &str) -> Result<(Mode, Vec<String>), String> {
    let mut named = named_attributes(f);
    let handler = s.handler(method, path);
    if !f.routes.is_empty() || !f.rule.starts_with("RC2") {
        // Then what the route's handler writes, when the finding names no attribute the GET
        // returns.
        let writes = handler.into_iter().flat_map(|h| h.writes.iter());
        named.extend(
            writes
                .flat_map(|w| w.numbers.iter().chain(&w.changes))
                .cloned(),
        );
        return mode_of(&f.rule).map(|m| (m, named));
    }
    match handler {
        Some(h) => harm_of_handler(h).map(|(m, mut attrs)| {
            attrs.extend(named);
            (m, attrs)
        }),
        None if f.rule == "RC205" => Ok((Mode::LostUpdate, named)),
        None => Err(format!("the code that handles {method} {path}: no routed handler was found, so what it limits or counts is not known")),
    }
}

/// The method and path a finding is reached by: its route, else its operation.
pub fn route_of(f: &Finding) -> Option<(String, String)> {
    if let Some(r) = f.routes.iter().find(|r| r.method != "LAMBDA") {
        return Some((r.method.to_uppercase(), r.path.clone()));
    }
    let (m, p) = f.operation.as_deref()?.split_once(' ')?;
    Some((m.to_uppercase(), p.to_string()))
}

fn param_names(path: &str) -> Vec<String> {
    path.split('/')
        .filter_map(|s| {
            s.strip_prefix(':')
                .or_else(|| s.strip_prefix('{').and_then(|x| x.strip_suffix('}')))
                .or_else(|| s.strip_prefix('<').and_then(|x| x.strip_suffix('>')))
        })
        .map(|s| s.trim_end_matches('*').trim_end_matches("..").to_string())
        .collect()
}

fn op<'a>(ops: &'a [OpFacts], method: &str, path: &str) -> Option<&'a OpFacts> {
    ops.iter()
        .find(|o| o.method == method && normalize(&o.path) == normalize(path))
}

/// The item a route acts on: the route's path, then the path up to its last parameter
/// (`/accounts/{id}/withdraw` acts on `/accounts/{id}`).
fn resource_paths(path: &str) -> Vec<String> {
    let mut out = vec![path.to_string()];
    let segs: Vec<&str> = path.split('/').collect();
    if let Some(last) = segs.iter().rposition(|s| normalize(s) == "{}") {
        let item = segs[..=last].join("/");
        if item != path {
            out.push(item);
        }
    }
    out
}

/// Normalised for matching `display_name` with `displayName`.
fn squash(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// Attributes the finding names: the backticked words of its message and evidence.
fn named_attributes(f: &Finding) -> Vec<String> {
    let mut texts = vec![f.message.as_str()];
    texts.extend(f.evidence.iter().map(|e| e.note.as_str()));
    let mut out = vec![];
    for t in texts {
        for (i, part) in t.split('`').enumerate() {
            if i % 2 == 1 && !part.contains(' ') && !out.iter().any(|x| x == part) {
                out.push(part.to_string());
            }
        }
    }
    out
}

/// `path` with its parameters filled by position (segment index): the route and the
/// document may spell the same parameter differently (`:id`, `{accountId}`).
/// `base` and `path` with its parameters filled in, built segment by segment: each literal
/// and each value is percent-encoded as one segment, so nothing a document or an example holds
/// (`@host:port`, `../admin`, `?x=`) can change the host, the port or the path prefix. Values
/// in `raw` (a create's placeholder, replaced at run time) go in as they are.
fn fill(
    base: &str,
    path: &str,
    values: &BTreeMap<usize, String>,
    raw: Option<&str>,
) -> Result<String, String> {
    let Some(rest) = path.strip_prefix('/') else {
        return Err(format!("a usable path: `{path}` does not start with `/`"));
    };
    let mut url = base.to_string();
    for (i, seg) in rest.split('/').enumerate() {
        // `i + 1`: the values are keyed by the segment's place in `path`, which starts empty.
        let text = match values.get(&(i + 1)) {
            Some(v) if !param_names(seg).is_empty() => v.as_str(),
            _ => seg,
        };
        url.push('/');
        if raw == Some(text) {
            url.push_str(text);
            continue;
        }
        if text == "." || text == ".." {
            return Err(format!(
                "a usable path: `{path}` would have the segment `{text}`, which removes a segment of the URL"
            ));
        }
        url.extend(percent_encoding::utf8_percent_encode(text, SEGMENT));
    }
    Ok(url)
}

/// What a path segment carries encoded: everything but unreserved characters and the
/// sub-delimiters, `:` and `@` (RFC 3986's `pchar`).
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'!')
    .remove(b'$')
    .remove(b'&')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')')
    .remove(b'*')
    .remove(b'+')
    .remove(b',')
    .remove(b';')
    .remove(b'=')
    .remove(b':')
    .remove(b'@');

/// The request that creates the item `path`'s parameter `names` (its spellings in the route
/// and the document, at segment `at`) name: the document's POST on the collection above it,
/// whose response carries the new id as one of those names, `id`, or `<item>_id`.
fn creator(
    s: &Service,
    path: &str,
    at: usize,
    names: &[String],
) -> Option<(CreateSpec, Result<Value, String>)> {
    let segs: Vec<&str> = path.split('/').take(at).collect();
    let collection = segs.join("/");
    let post = op(s.ops, "POST", &collection)?;
    let last = segs.last().copied().unwrap_or_default();
    let item = match last.strip_suffix("ies") {
        Some(stem) => format!("{stem}y"),
        None => last.strip_suffix('s').unwrap_or(last).to_string(),
    };
    let mut wanted: Vec<String> = names.iter().map(|n| squash(n)).collect();
    wanted.push("id".into());
    wanted.push(squash(&format!("{item}id")));
    let id = wanted
        .iter()
        .find_map(|w| post.response_props.iter().find(|p| squash(p) == *w))?;
    let name = names.first()?;
    let spec = CreateSpec {
        request: RequestSpec {
            method: Some("POST".into()),
            url: fill(s.base_url, &post.path, &BTreeMap::new(), None).ok()?,
            headers: BTreeMap::new(),
            body: Value::Null,
        },
        id_pointer: format!("/{}", crate::spec::doc::escape(id)),
        placeholder: format!("{{{name}}}"),
    };
    Some((spec, s.body(Some(post), "POST", &collection)))
}

/// A body as the plan sends it, or its reason in `missing`. A limit is probed at one unit:
/// the state holds 1 and each request takes 1, so exactly one of a burst may succeed
/// whatever amounts the examples show.
fn planned(mode: Mode, body: Result<Value, String>, missing: &mut Vec<String>) -> Value {
    match body {
        Ok(b) if mode == Mode::LimitOverrun => units(b),
        Ok(b) => b,
        Err(why) => {
            missing.push(why);
            Value::Null
        }
    }
}

/// The plan that would show `f` happening on the running service.
pub fn derive(f: &Finding, s: &Service, seq: usize) -> Derived {
    let mut missing = vec![];
    let Some((method, path)) = route_of(f) else {
        return Derived::Missing {
            partial: Value::Null,
            missing: vec!["an HTTP route: no route or operation reaches this finding".into()],
        };
    };
    let (mode, wanted) = match harm(f, s, &method, &path) {
        Ok(m) => m,
        Err(why) => {
            return Derived::Missing {
                partial: Value::Null,
                missing: vec![why],
            }
        }
    };
    let target_op = op(s.ops, &method, &path);
    let items = resource_paths(&path);
    let reset_op = items
        .iter()
        .find_map(|p| op(s.ops, "PUT", p).filter(|o| o.path != path || method != "PUT"));
    let get_op = items.iter().find_map(|p| op(s.ops, "GET", p));

    // Path parameters: given, documented, fresh for an item the reset PUT creates, created
    // through the collection's POST, or fresh for a counter an update creates.
    let upserts = mode == Mode::LimitOverrun && reset_op.is_some();
    let mut values = BTreeMap::new();
    let mut create = None;
    for (at, seg) in path.split('/').enumerate() {
        let Some(name) = param_names(seg).pop() else {
            continue;
        };
        // The document may name the same segment differently (`{ticketId}` for `:id`).
        let mut names = vec![name.clone()];
        let spelt = target_op.and_then(|o| o.path.split('/').nth(at).map(param_names));
        names.extend(spelt.into_iter().flatten().filter(|n| *n != name));
        let given = names.iter().find_map(|n| s.params.get(n));
        let documented = names
            .iter()
            .find_map(|n| target_op.and_then(|o| o.param_examples.get(n)));
        let fresh = format!("racecheck-{}-{seq}", s.nonce);
        if let Some(v) = given.or(documented) {
            values.insert(at, v.clone());
        } else if upserts {
            values.insert(at, fresh);
        } else if let Some(c) = create
            .is_none()
            .then(|| creator(s, &path, at, &names))
            .flatten()
        {
            let (mut c, body) = c;
            c.request.body = planned(mode, body, &mut missing);
            values.insert(at, c.placeholder.clone());
            create = Some(c);
        } else if mode == Mode::LostUpdate {
            values.insert(at, fresh);
        } else {
            missing.push(format!(
                "a value for the path parameter `{name}` (`--param {name}=...`)"
            ));
        }
    }
    let raw = create.as_ref().map(|c: &CreateSpec| c.placeholder.clone());
    // A path that cannot be built is missing like any other fact; collected apart, as the
    // requests below are built.
    let unusable = std::cell::RefCell::new(Vec::<String>::new());
    let url = |p: &str| match fill(s.base_url, p, &values, raw.as_deref()) {
        Ok(u) => u,
        Err(why) => {
            unusable.borrow_mut().push(why);
            String::new()
        }
    };
    let body = planned(mode, s.body(target_op, &method, &path), &mut missing);
    // The number to watch: an attribute the finding names that the GET returns.
    let observe = get_op.and_then(|g| {
        let prop = wanted
            .iter()
            .find_map(|a| g.response_props.iter().find(|p| squash(p) == squash(a)))?;
        Some(ObserveSpec {
            method: None,
            url: url(&g.path),
            headers: None,
            pointer: format!("/{}", crate::spec::doc::escape(prop)),
        })
    });
    if mode == Mode::LostUpdate && observe.is_none() {
        missing.push(match get_op {
            Some(g) => format!(
                "which number of GET {} shows the change (none of the attributes the finding names is in its response)",
                g.path
            ),
            None => format!("a GET that shows the state {path} changes (none is documented)"),
        });
    }
    let reset = match (mode, reset_op) {
        (Mode::LimitOverrun, Some(r)) => Some(RequestSpec {
            method: Some("PUT".into()),
            url: url(&r.path),
            headers: BTreeMap::new(),
            body: planned(mode, s.body(Some(r), "PUT", &r.path), &mut missing),
        }),
        (Mode::LimitOverrun, None) if create.is_none() => {
            missing.push(if param_names(&path).is_empty() {
                format!("a request that restores the state before each round: {method} {path} names no item in its path (the items it acts on are in its body), so which to restore is not known")
            } else {
                format!(
                    "a request that restores the state before each round (no PUT on {} is documented)",
                    items.last().map(String::as_str).unwrap_or(&path)
                )
            });
            None
        }
        _ => None,
    };
    // A body with one number changes the state by that number per success.
    let delta = match &body {
        Value::Object(m) => {
            let nums: Vec<f64> = m.values().filter_map(Value::as_f64).collect();
            (nums.len() == 1).then(|| nums[0])
        }
        _ => None,
    };
    let plan = Plan {
        target: RequestSpec {
            method: Some(method),
            url: url(&path),
            headers: BTreeMap::new(),
            body,
        },
        observe,
        create,
        reset,
        mode,
        concurrency: Some(if s.interleave.is_some() { 2 } else { 8 }),
        rounds: Some(if s.interleave.is_some() { 5 } else { 2 }),
        expect: Expect {
            delta_per_success: delta.filter(|_| mode == Mode::LostUpdate),
            max_successes: (mode == Mode::LimitOverrun).then_some(1),
        },
        http2: false,
        request_timeout_ms: None,
        max_duration_ms: None,
        interleave: s.interleave.map(str::to_string),
    };
    for why in unusable.into_inner() {
        if !missing.contains(&why) {
            missing.push(why);
        }
    }
    if missing.is_empty() {
        Derived::Ready(Box::new(plan))
    } else {
        Derived::Missing {
            partial: shown(&plan),
            missing,
        }
    }
}

/// Every URL `plan` sends to, with the create's placeholder as a sample id.
pub fn urls(plan: &Plan) -> Vec<String> {
    let id = |u: &str| match &plan.create {
        Some(c) if !c.placeholder.is_empty() => u.replace(&c.placeholder, "racecheck-id"),
        _ => u.to_string(),
    };
    let mut out = vec![id(&plan.target.url)];
    out.extend(plan.observe.iter().map(|o| id(&o.url)));
    out.extend(plan.reset.iter().map(|r| id(&r.url)));
    out.extend(plan.create.iter().map(|c| c.request.url.clone()));
    out
}

/// `plan` as a report shows it: no URL carries the base URL's user name or password.
pub fn shown(plan: &Plan) -> Value {
    use crate::probe::safety::strip_userinfo;
    let mut p = plan.clone();
    p.target.url = strip_userinfo(&p.target.url);
    if let Some(o) = p.observe.as_mut() {
        o.url = strip_userinfo(&o.url);
    }
    if let Some(r) = p.reset.as_mut() {
        r.url = strip_userinfo(&r.url);
    }
    if let Some(c) = p.create.as_mut() {
        c.request.url = strip_userinfo(&c.request.url);
    }
    if let Some(i) = p.interleave.as_mut() {
        *i = strip_userinfo(i);
    }
    serde_json::to_value(&p).unwrap_or_default()
}

/// `v` with every number 1.
fn units(v: Value) -> Value {
    match v {
        Value::Number(_) => Value::from(1),
        Value::Array(a) => Value::Array(a.into_iter().map(units).collect()),
        Value::Object(m) => Value::Object(m.into_iter().map(|(k, v)| (k, units(v))).collect()),
        other => other,
    }
}

/// The verdict of a probe run on `plan`.
pub fn verdict(plan: &Plan, r: &Report) -> Proof {
    let plan_value = shown(plan);
    let proof = |status, detail: String| Proof {
        status,
        detail,
        plan: plan_value.clone(),
        missing: vec![],
    };
    if let Some(e) = r.errors.first() {
        return proof(
            ProofStatus::Untested,
            format!("the probe could not run: {}", e.message),
        );
    }
    let Some(p) = &r.probe else {
        return proof(ProofStatus::Untested, "the probe did not run".into());
    };
    if let Some(f) = r
        .findings
        .iter()
        .find(|f| f.rule == "RC401" || f.rule == "RC402")
    {
        return proof(ProofStatus::Confirmed, f.message.clone());
    }
    if p.rounds.iter().all(|x| x.successes == 0) {
        let statuses: BTreeMap<&String, u32> = p
            .rounds
            .iter()
            .flat_map(|x| x.statuses.iter())
            .fold(BTreeMap::new(), |mut m, (k, v)| {
                *m.entry(k).or_default() += v;
                m
            });
        return proof(
            ProofStatus::Untested,
            format!("no request succeeded (statuses {statuses:?}): the plan needs values only the service knows; complete it and probe it"),
        );
    }
    let sent: u32 = p.rounds.iter().map(|x| x.sent).sum();
    proof(
        ProofStatus::NotReproduced,
        format!(
            "{} rounds, {sent} concurrent requests in all: {}",
            p.rounds.len(),
            p.verdict
        ),
    )
}

/// A proof for a finding no plan could be built for.
pub fn untested(partial: Value, missing: Vec<String>) -> Proof {
    Proof {
        status: ProofStatus::Untested,
        detail: format!("not probed: missing {}", missing.join("; ")),
        plan: partial,
        missing,
    }
}
