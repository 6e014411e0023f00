//! Source analysis: parse the service's Rust code, index it, walk every function's flow once,
//! compose callees, and run the source rules over the flows.

mod assume;
pub mod body;
pub mod expr;
pub mod facts;
pub mod files;
pub mod flow;
pub mod index;
pub mod macros;
pub mod mutated;
pub mod routes;
pub mod span;
pub mod suppress;
pub mod writes;

use std::collections::{HashMap, HashSet};
use std::sync::{mpsc, Arc, OnceLock};
use std::time::Instant;

use crate::isolate;

pub use files::Input;

use crate::model::{AnalysisError, Finding, Location, Report, Route, Stats};
use crate::rules::source::{self as rules, Candidate, FlowCtx, EXCLUSIVE};
use facts::{Span, Summary};
use index::{FileText, FnId, FnMeta, Global, LocalIndex};

/// What to analyse and how.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Only these rules (ids or slugs); empty means all.
    pub rules: Vec<String>,
    /// Analysis threads; `None` chooses by the machine and the number of files. The report is
    /// the same whatever the number.
    pub threads: Option<usize>,
    /// Stops the analysis between files and functions; the report then says it was cancelled.
    pub cancel: crate::Cancel,
    /// Facts the user declared (`racecheck.toml`): findings they explain are reported as
    /// `assumed`. The default declares none.
    pub facts: Arc<crate::config::Facts>,
}

/// A write an Axum handler performs (itself or through the functions it calls).
#[derive(Clone, Debug)]
pub struct HandlerWrite {
    pub location: Location,
    /// `put_item`, `update_item`, ...
    pub api: &'static str,
    /// It carries a condition (or is part of a transaction with one).
    pub conditioned: bool,
    /// It adds to a stored number (`ADD`, `SET x = x + :d`): not idempotent.
    pub increments: bool,
    /// Stored numbers it changes in place (`ADD n :d`, `SET n = n - :d`).
    pub numbers: Vec<String>,
    /// Attributes it sets, adds to or removes (a put's item attributes, keys left out).
    pub changes: Vec<String>,
    /// Its condition (or its transaction's) compares a stored value or requires absence, so
    /// it limits how many concurrent requests succeed; `None` when it is built at run time.
    pub limits: Option<bool>,
}

/// What the contract checks need to know of each routed handler.
#[derive(Clone, Debug)]
pub struct Handler {
    pub route: Route,
    pub function: String,
    pub location: Location,
    pub writes: Vec<HandlerWrite>,
    /// The handler's code mentions an idempotency key.
    pub reads_idempotency_key: bool,
    /// The body it reads, with the crate's types read in.
    pub body: body::Body,
}

pub fn location(span: &facts::Span) -> Location {
    Location {
        file: span.file.to_string(),
        line: span.line,
        column: span.column,
        end_line: span.end_line,
        end_column: span.end_column,
        pointer: None,
    }
}

/// Analyse the inputs. Never panics on bad input: what cannot be read or parsed is in
/// `errors`.
pub fn analyze(inputs: &[Input], options: &Options) -> Report {
    analyze_service(inputs, options).0
}

/// [`analyze`], plus the routed handlers and what they write (for `audit`).
pub fn analyze_service(inputs: &[Input], options: &Options) -> (Report, Vec<Handler>) {
    let started = Instant::now();
    let mut errors: Vec<AnalysisError> = vec![];
    let wanted = match resolve_rules(&options.rules) {
        Ok(w) => w,
        Err(e) => {
            errors.push(e);
            let report = Report {
                errors,
                ..Report::default()
            };
            return (report, vec![]);
        }
    };
    let list = files::discover(inputs, &mut errors);
    let (mut report, handlers) = run(&list, &wanted, options, &mut errors);
    if options.cancel.is_cancelled() {
        errors.push(AnalysisError::new(
            crate::model::ErrorKind::Invalid,
            "",
            "the analysis was cancelled before it finished; the findings are incomplete",
        ));
    }
    report.errors.extend(errors);
    report.stats.files = list.len() as u64;
    report.stats.errors = report.errors.len() as u64;
    report.stats.elapsed_ms = started.elapsed().as_millis() as u64;
    (report, handlers)
}

fn resolve_rules(keys: &[String]) -> Result<HashSet<&'static str>, AnalysisError> {
    let mut out = HashSet::new();
    for k in keys {
        match crate::rules::find(k) {
            Some(r) => {
                out.insert(r.id);
            }
            None => {
                return Err(AnalysisError::new(
                    crate::model::ErrorKind::Invalid,
                    k.clone(),
                    format!(
                        "unknown rule `{k}`; `racecheck rules` lists the ids (RC101) and slugs (lost-update)"
                    ),
                ))
            }
        }
    }
    Ok(out)
}

/// Words of a function's name that say it creates things (whole words: `rebook` is not `book`).
const CREATE_WORDS: &[&str] = &[
    "create", "register", "signup", "insert", "claim", "reserve", "book", "add", "new",
];

/// Stack of each worker thread: enough for `MAX_NESTING` levels and `MAX_CHAIN` links in a
/// debug build (reserved, not committed, until used).
const WORKER_STACK: usize = 256 * 1024 * 1024;

/// What a worker thread reports after parsing its share of the files.
struct Parsed {
    texts: Vec<Arc<FileText>>,
    errors: Vec<AnalysisError>,
    metas: Vec<FnMeta>,
    types: index::TypeFacts,
    routes: Vec<(usize, routes::Local)>,
}

enum ToWorker {
    /// Walk these functions (global ids) with the summaries computed so far.
    Walk {
        global: Arc<Global>,
        summaries: Arc<Vec<OnceLock<Arc<Summary>>>>,
        offset: usize,
        ids: Vec<FnId>,
    },
}

/// Each function's summary and callees, or why it could not be walked.
type Walked = Vec<(FnId, Summary, Vec<FnId>, Option<String>)>;

fn internal_error(path: String, what: &str, panic: String) -> AnalysisError {
    AnalysisError::new(crate::model::ErrorKind::Invalid, path, format!("{what} was not analysed: racecheck hit an internal error ({panic}); please report it with this file"))
}

fn input_name(i: &Input) -> String {
    match i {
        Input::Path(p) => p.display().to_string(),
        Input::Inline { name, .. } => name.clone(),
    }
}

/// Split the files between threads, largest first, so the shares weigh about the same.
fn shares(list: &[Input], workers: usize) -> Vec<Vec<Input>> {
    let size = |i: &Input| match i {
        Input::Path(p) => std::fs::metadata(p).map(|m| m.len()).unwrap_or(0),
        Input::Inline { code, .. } => code.len() as u64,
    };
    let mut sized: Vec<(u64, &Input)> = list.iter().map(|i| (size(i), i)).collect();
    sized.sort_by_key(|s| std::cmp::Reverse(s.0));
    let mut out: Vec<(u64, Vec<Input>)> = (0..workers).map(|_| (0, vec![])).collect();
    for (sz, input) in sized {
        if let Some(slot) = out.iter_mut().min_by_key(|s| s.0) {
            slot.0 += sz;
            slot.1.push(input.clone());
        }
    }
    out.into_iter()
        .map(|s| s.1)
        .filter(|v| !v.is_empty())
        .collect()
}

/// Parse on worker threads, each keeping its syntax trees (spans refer to a per-thread source
/// map), and walk the functions in rounds, callees before callers, every thread walking its
/// own files' functions with the summaries of the rounds before.
fn run(
    list: &[Input],
    wanted: &HashSet<&'static str>,
    options: &Options,
    errors: &mut Vec<AnalysisError>,
) -> (Report, Vec<Handler>) {
    let t = Instant::now();
    let cancel = &options.cancel;
    let workers = match options.threads {
        Some(n) => n.clamp(1, 64).min(list.len().max(1)),
        None => std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .clamp(1, 8)
            .min(list.len().div_ceil(8).max(1)),
    };
    let shares = shares(list, workers);
    let (to_main, from_workers) = mpsc::channel::<(usize, Result<Parsed, Walked>)>();
    std::thread::scope(|scope| {
        let mut senders = vec![];
        for share in shares {
            let k = senders.len();
            let (tx, rx) = mpsc::channel::<ToWorker>();
            let to_main = to_main.clone();
            let files: Vec<String> = share.iter().map(input_name).collect();
            // The parser and the walker recurse once per nesting level.
            let spawned = std::thread::Builder::new()
                .name(format!("racecheck-{k}"))
                .stack_size(WORKER_STACK)
                .spawn_scoped(scope, move || worker(k, share, rx, to_main, cancel));
            match spawned {
                Ok(_) => senders.push(tx),
                Err(e) => errors.extend(files.into_iter().map(|path| {
                    let message =
                        format!("`{path}` was not analysed: cannot start an analysis thread: {e}");
                    AnalysisError::new(crate::model::ErrorKind::Io, path, message)
                })),
            }
        }
        drop(to_main);

        // Round 0: every share parsed and indexed.
        let mut parsed: Vec<Option<Parsed>> = (0..senders.len()).map(|_| None).collect();
        for _ in 0..senders.len() {
            match from_workers.recv() {
                Ok((k, Ok(p))) => parsed[k] = Some(p),
                _ => break,
            }
        }
        let parsed: Vec<Parsed> = parsed.into_iter().flatten().collect();
        let mut offsets = vec![];
        let mut parts = vec![];
        let mut texts = vec![];
        let mut route_locals: HashMap<FnId, routes::Local> = HashMap::new();
        let mut offset = 0;
        for p in parsed {
            offsets.push(offset);
            for (i, l) in p.routes {
                route_locals.insert(offset + i, l);
            }
            offset += p.metas.len();
            texts.extend(p.texts);
            errors.extend(p.errors);
            parts.push((p.metas, p.types));
        }
        let global = Arc::new(Global::build(parts));
        tracing::debug!(
            files = texts.len(),
            workers = senders.len(),
            ms = t.elapsed().as_millis() as u64,
            "parsed"
        );

        // Rounds: one per level of the call graph.
        let owner = |id: FnId| offsets.iter().rposition(|o| *o <= id).unwrap_or(0);
        // Written once per function, after its round; a round reads only earlier rounds'.
        let summaries: Arc<Vec<OnceLock<Arc<Summary>>>> =
            Arc::new((0..global.metas.len()).map(|_| OnceLock::new()).collect());
        // Callers past the budget are walked without their callees' flows (see `OPS_BUDGET`).
        let no_callees: Arc<Vec<OnceLock<Arc<Summary>>>> = Arc::new(vec![]);
        let (mut ops, mut cut, mut capped) = (0usize, 0usize, vec![]);
        let mut calls: HashMap<FnId, Vec<FnId>> = HashMap::new();
        for level in levels(&global) {
            if cancel.is_cancelled() {
                break;
            }
            let snapshot = if ops > facts::OPS_BUDGET {
                cut += level.len();
                no_callees.clone()
            } else {
                summaries.clone()
            };
            let mut per: Vec<Vec<FnId>> = vec![vec![]; senders.len()];
            for id in level {
                per[owner(id)].push(id);
            }
            let mut expected = 0;
            for (k, ids) in per.into_iter().enumerate() {
                if ids.is_empty() {
                    continue;
                }
                expected += 1;
                let _ = senders[k].send(ToWorker::Walk {
                    global: global.clone(),
                    summaries: snapshot.clone(),
                    offset: offsets[k],
                    ids,
                });
            }
            for _ in 0..expected {
                if let Ok((_, Err(walked))) = from_workers.recv() {
                    for (id, s, c, failed) in walked {
                        if let Some(panic) = failed {
                            let m = &global.metas[id];
                            errors.push(internal_error(
                                m.span.file.to_string(),
                                &format!("`{}`", m.qual),
                                panic,
                            ));
                        }
                        if s.capped {
                            capped.push(id);
                        }
                        if tracing::enabled!(tracing::Level::TRACE) && s.is_interesting() {
                            tracing::trace!(function = %global.metas[id].qual, summary = %facts::describe(&s), "walked");
                        }
                        ops += s.ops.len();
                        let _ = summaries[id].set(Arc::new(s));
                        calls.insert(id, c);
                    }
                }
            }
        }
        drop(senders);
        if let Some(first) = capped.first() {
            tracing::warn!(functions = capped.len(), first = %global.metas[*first].qual, "calls reach more than {} DynamoDB operations or {} calls deep: the flows past that were not followed", facts::MAX_OPS, facts::MAX_DEPTH);
        }
        if cut > 0 {
            let file = global
                .metas
                .first()
                .map(|m| m.span.file.to_string())
                .unwrap_or_default();
            errors.push(AnalysisError::new(
                crate::model::ErrorKind::TooLarge,
                file,
                format!("the analysis budget of {} DynamoDB operations across all call flows was reached: the callees of {cut} functions were not followed, so findings through them may be missing; analyse fewer files at once", facts::OPS_BUDGET),
            ));
        }
        let summaries: Vec<Option<Arc<Summary>>> = Arc::try_unwrap(summaries)
            .map(|v| v.into_iter().map(OnceLock::into_inner).collect())
            .unwrap_or_else(|shared| shared.iter().map(|s| s.get().cloned()).collect());
        tracing::debug!(
            functions = global.metas.len(),
            ops,
            ms = t.elapsed().as_millis() as u64,
            "flows walked"
        );
        let routes = routes::compose(&global, &route_locals);
        let report = check(
            &global,
            &summaries,
            &calls,
            &routes,
            &texts,
            Asked {
                wanted,
                facts: &options.facts,
            },
            errors,
        );
        let handlers = handlers(&global, &summaries, &routes, &texts);
        tracing::debug!(ms = t.elapsed().as_millis() as u64, "checked");
        (report, handlers)
    })
}

/// A function's code as written, without its comment lines (doc comments included).
fn code_of(f: &FnMeta, texts: &[Arc<FileText>]) -> Option<String> {
    let text = texts
        .iter()
        .find(|t| t.path == f.span.file)
        .map(|t| t.slice(&f.span))?;
    Some(
        text.lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n"),
    )
}

/// Rules about requests interleaving between a read and a write (not about a failure half
/// way, or an error's answer).
const INTERLEAVING: &[&str] = &["RC101", "RC102", "RC103", "RC106", "RC107"];

/// Functions that run with exclusive access to a value the program keeps behind a lock
/// (`Arc<RwLock<World>>`): `&mut self` methods of its type, which the borrow checker lets run
/// only under the write guard, and functions called only from such functions. The type each
/// is serialized on.
fn serialized(
    global: &Global,
    texts: &[Arc<FileText>],
    callers: &HashMap<FnId, Vec<FnId>>,
) -> HashMap<FnId, String> {
    let mut locked: HashSet<String> = HashSet::new();
    for t in texts {
        if global.test_files.contains(&*t.path) {
            continue;
        }
        for wrapper in ["Mutex<", "RwLock<"] {
            for (at, _) in t.text.match_indices(wrapper) {
                let rest = &t.text[at + wrapper.len()..];
                let len = rest
                    .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                    .unwrap_or(rest.len());
                if rest[len..].starts_with('>') {
                    if let Some(ty) = rest[..len].rsplit("::").next() {
                        locked.insert(ty.to_string());
                    }
                }
            }
        }
    }
    let mut out: HashMap<FnId, String> = HashMap::new();
    for (id, f) in global.metas.iter().enumerate() {
        let Some(ty) = f.self_ty.as_ref().filter(|t| locked.contains(*t)) else {
            continue;
        };
        let code = code_of(f, texts).unwrap_or_default();
        let signature = code.split('{').next().unwrap_or("");
        if signature.contains("mut self") && !signature.contains("self: ") {
            out.insert(id, ty.clone());
        }
    }
    only_called_from(out, callers)
}

/// `out`, plus the functions called only from functions in it (to a fixed point), each with
/// the least of its callers' values.
fn only_called_from<T: Clone + Ord>(
    mut out: HashMap<FnId, T>,
    callers: &HashMap<FnId, Vec<FnId>>,
) -> HashMap<FnId, T> {
    loop {
        let more: Vec<(FnId, T)> = callers
            .iter()
            .filter(|(f, cs)| !out.contains_key(f) && !cs.is_empty())
            .filter_map(|(f, cs)| {
                let vals: Option<Vec<&T>> = cs.iter().map(|c| out.get(c)).collect();
                Some((*f, vals?.into_iter().min()?.clone()))
            })
            .collect();
        if more.is_empty() {
            return out;
        }
        out.extend(more);
    }
}

/// Functions declared serialized in `racecheck.toml`, and those only they call: the index of
/// the declaration in `facts.serialized`.
fn declared_serialized(
    global: &Global,
    facts: &crate::config::Facts,
    callers: &HashMap<FnId, Vec<FnId>>,
) -> HashMap<FnId, usize> {
    if facts.serialized.is_empty() {
        return HashMap::new();
    }
    let declared: HashMap<FnId, usize> = global
        .metas
        .iter()
        .enumerate()
        .filter_map(|(id, f)| {
            facts
                .serialized
                .iter()
                .position(|d| crate::config::names_fn(&d.name, &f.qual))
                .map(|i| (id, i))
        })
        .collect();
    only_called_from(declared, callers)
}

/// What tells one candidate from another through precedence, de-duplication and merging.
type CandKey = (
    FnId,
    &'static str,
    Span,
    Span,
    Option<(Span, Option<usize>)>,
);

fn cand_key(id: FnId, c: &Candidate) -> CandKey {
    (id, c.rule.id, c.at.clone(), c.site.clone(), c.write.clone())
}

/// A command-line program's `main` (a setup or migration tool) that starts no server, no
/// Lambda runtime and no tasks: its reads and writes run once per invocation, one after
/// another. Handlers it would serve are walked as their own flows, not as part of it.
fn is_one_shot(f: &FnMeta, texts: &[Arc<FileText>]) -> bool {
    if f.name != "main" || f.self_ty.is_some() {
        return false;
    }
    let Some(code) = code_of(f, texts) else {
        return false;
    };
    // Words of serving, of spawning work, of consuming a queue or a schedule: a worker runs
    // as many instances as it is deployed with.
    const SERVES: &[&str] = &[
        "serve",
        "server",
        "run",
        "spawn",
        "listen",
        "bind",
        "router",
        "app",
        "route",
        "routes",
        "launch",
        "start",
        "poll",
        "subscribe",
        "receive",
        "recv",
        "consume",
        "accept",
        "interval",
        "tick",
        "schedule",
        "cron",
        "worker",
        "handler",
    ];
    !code.contains("service_fn")
        && !flow::words(&code)
            .iter()
            .any(|w| SERVES.contains(&w.as_str()))
}

/// Every routed handler with the writes its flow performs.
fn handlers(
    global: &Global,
    summaries: &[Option<Arc<Summary>>],
    routes: &[Route],
    texts: &[Arc<FileText>],
) -> Vec<Handler> {
    let mut out = vec![];
    for r in routes {
        let Some(ids) = global.by_name.get(&r.handler) else {
            continue;
        };
        for &id in ids {
            let Some(summary) = summaries.get(id).and_then(|s| s.as_ref()) else {
                continue;
            };
            let meta = &global.metas[id];
            // Key attributes name items; they are not what a write changes.
            let keys: Vec<&str> = summary
                .ops
                .iter()
                .flat_map(|o| o.req.key.iter().map(|p| p.name.as_str()))
                .collect();
            let writes = writes::derive(summary)
                .iter()
                .map(|w| {
                    let op = summary.ops.iter().find(|o| o.id == w.op);
                    let tx_condition =
                        op.is_some_and(|o| o.req.members.iter().any(|m| m.condition.is_present()));
                    let increments = w.update.iter().any(|a| match a {
                        expr::Action::Add { .. } => true,
                        expr::Action::Set { value, rhs, .. } => {
                            value.is_atomic() && rhs.contains('+')
                        }
                        _ => false,
                    });
                    let limits = if w.condition_dynamic {
                        None
                    } else {
                        let members = op.map(|o| o.req.members.as_slice()).unwrap_or_default();
                        Some(
                            w.condition.as_ref().is_some_and(expr::Condition::limits)
                                || (w.in_transaction
                                    && members.iter().any(|m| match &m.condition {
                                        facts::Cond::Given(facts::Text::Literal(t)) => {
                                            expr::parse_condition(t).limits()
                                        }
                                        _ => false,
                                    })),
                        )
                    };
                    HandlerWrite {
                        location: location(op.map(|o| &o.span).unwrap_or(&meta.span)),
                        api: w.kind.api_name(),
                        conditioned: w.has_condition() || (w.in_transaction && tx_condition),
                        increments,
                        numbers: w.atomic_attrs().into_iter().map(str::to_string).collect(),
                        changes: w
                            .update
                            .iter()
                            .map(|a| w.req.attr_name(a.path()))
                            .chain(w.req.item.iter().map(|p| p.name.as_str()))
                            .filter(|n| !keys.contains(n))
                            .map(str::to_string)
                            .collect(),
                        limits,
                    }
                })
                .collect();
            // Code, not comments, decides whether the handler reads the key.
            let code = code_of(meta, texts)
                .unwrap_or_default()
                .to_ascii_lowercase();
            out.push(Handler {
                route: r.clone(),
                function: meta.qual.clone(),
                location: location(&meta.span),
                writes,
                reads_idempotency_key: code.contains("idempotency"),
                body: match &meta.body {
                    body::Body::Json(s) => body::Body::Json(body::resolve(s, &global.defs)),
                    other => other.clone(),
                },
            });
        }
    }
    out
}

fn worker(
    k: usize,
    share: Vec<Input>,
    rx: mpsc::Receiver<ToWorker>,
    to_main: mpsc::Sender<(usize, Result<Parsed, Walked>)>,
    cancel: &crate::Cancel,
) {
    let mut files_ok = vec![];
    let mut errors = vec![];
    for input in &share {
        if cancel.is_cancelled() {
            break;
        }
        match isolate(|| files::read(input).and_then(|(path, text)| files::parse(path, text))) {
            Ok(Ok(f)) => files_ok.push(f),
            Ok(Err(e)) => errors.push(e),
            Err(panic) => errors.push(internal_error(input_name(input), "the file", panic)),
        }
    }
    let (local, routes) = match isolate(|| {
        let local = LocalIndex::build(&files_ok);
        let routes: Vec<(usize, routes::Local)> = local
            .fns
            .iter()
            .enumerate()
            .filter_map(|(i, f)| routes::local(f).map(|l| (i, l)))
            .collect();
        (local, routes)
    }) {
        Ok(x) => x,
        Err(panic) => {
            for f in files_ok.drain(..) {
                errors.push(internal_error(
                    f.text.path.to_string(),
                    "the file",
                    panic.clone(),
                ));
            }
            (LocalIndex::build(&files_ok), vec![])
        }
    };
    let parsed = Parsed {
        texts: files_ok.iter().map(|f| f.text.clone()).collect(),
        errors,
        metas: local.metas.clone(),
        types: local.types.clone(),
        routes,
    };
    if to_main.send((k, Ok(parsed))).is_err() {
        return;
    }
    while let Ok(ToWorker::Walk {
        global,
        summaries,
        offset,
        ids,
    }) = rx.recv()
    {
        let env = flow::Env {
            global: &global,
            summaries: &summaries,
        };
        let walked: Walked = ids
            .into_iter()
            .take_while(|_| !cancel.is_cancelled())
            .map(
                |id| match isolate(|| flow::walk(&env, id, &local.fns[id - offset])) {
                    Ok((s, c)) => (id, s, c, None),
                    Err(panic) => (id, Summary::default(), vec![], Some(panic)),
                },
            )
            .collect();
        if to_main.send((k, Err(walked))).is_err() {
            return;
        }
    }
}

/// Group functions by call depth: callees (and functions calling nothing of the crate) first;
/// functions that call each other share a level.
fn levels(g: &Global) -> Vec<Vec<FnId>> {
    let n = g.metas.len();
    let adj: Vec<Vec<FnId>> = (0..n)
        .map(|v| {
            let mut s: Vec<FnId> = g.metas[v]
                .calls
                .iter()
                .flat_map(|c| g.callees(v, c))
                .filter(|&w| w != v)
                .collect();
            s.sort_unstable();
            s.dedup();
            s
        })
        .collect();
    // Tarjan's strongly connected components, iteratively; components come out callees first.
    const UNSEEN: usize = usize::MAX;
    let (mut index, mut low, mut on) = (vec![UNSEEN; n], vec![0; n], vec![false; n]);
    let (mut stack, mut comp, mut comps) = (vec![], vec![UNSEEN; n], Vec::<Vec<FnId>>::new());
    let mut next = 0;
    for root in 0..n {
        if index[root] != UNSEEN {
            continue;
        }
        let mut call: Vec<(FnId, usize)> = vec![(root, 0)];
        index[root] = next;
        low[root] = next;
        next += 1;
        stack.push(root);
        on[root] = true;
        while let Some(&(v, i)) = call.last() {
            if i < adj[v].len() {
                if let Some(top) = call.last_mut() {
                    top.1 += 1;
                }
                let w = adj[v][i];
                if index[w] == UNSEEN {
                    index[w] = next;
                    low[w] = next;
                    next += 1;
                    stack.push(w);
                    on[w] = true;
                    call.push((w, 0));
                } else if on[w] {
                    low[v] = low[v].min(index[w]);
                }
            } else {
                call.pop();
                if let Some(&(u, _)) = call.last() {
                    low[u] = low[u].min(low[v]);
                }
                if low[v] == index[v] {
                    let mut c = vec![];
                    while let Some(w) = stack.pop() {
                        on[w] = false;
                        comp[w] = comps.len();
                        c.push(w);
                        if w == v {
                            break;
                        }
                    }
                    comps.push(c);
                }
            }
        }
    }
    let mut level = vec![0usize; comps.len()];
    let mut out: Vec<Vec<FnId>> = vec![];
    for (ci, c) in comps.iter().enumerate() {
        let l = c
            .iter()
            .flat_map(|&v| adj[v].iter().map(|&w| comp[w]))
            .filter(|&cw| cw != ci)
            .map(|cw| level[cw] + 1)
            .max()
            .unwrap_or(0);
        level[ci] = l;
        if out.len() <= l {
            out.resize(l + 1, vec![]);
        }
        out[l].extend(c.iter().copied());
    }
    out
}

/// What the caller asked the checks for: the rules (empty: all), and the facts it declared.
struct Asked<'a> {
    wanted: &'a HashSet<&'static str>,
    facts: &'a crate::config::Facts,
}

fn check(
    global: &Global,
    summaries: &[Option<Arc<Summary>>],
    calls: &HashMap<FnId, Vec<FnId>>,
    routes: &[Route],
    texts: &[Arc<FileText>],
    asked: Asked,
    errors: &mut Vec<AnalysisError>,
) -> Report {
    let Asked { wanted, facts } = asked;
    let mut handler_routes: HashMap<&str, Vec<Route>> = HashMap::new();
    for r in routes {
        handler_routes
            .entry(r.handler.as_str())
            .or_default()
            .push(r.clone());
    }
    let mut callers: HashMap<FnId, Vec<FnId>> = HashMap::new();
    for (caller, callees) in calls.iter() {
        for c in callees {
            callers.entry(*c).or_default().push(*caller);
        }
    }
    let routes_of = |id: FnId| -> Vec<Route> {
        // The function's own routes, or those of the handlers that reach it.
        let mut seen = HashSet::new();
        let mut stack = vec![id];
        let mut out: Vec<Route> = vec![];
        while let Some(f) = stack.pop() {
            if !seen.insert(f) {
                continue;
            }
            if let Some(rs) = handler_routes.get(global.metas[f].name.as_str()) {
                out.extend(rs.iter().cloned());
            }
            if let Some(cs) = callers.get(&f) {
                stack.extend(cs.iter().copied());
            }
        }
        out.sort();
        out.dedup();
        out
    };

    let serialized = serialized(global, texts, &callers);
    let declared_serialized = declared_serialized(global, facts, &callers);
    let mutated = mutated::Mutated::of(
        summaries
            .iter()
            .enumerate()
            .filter(|(id, _)| !global.test_files.contains(&*global.metas[*id].span.file))
            .filter_map(|(id, s)| Some((s.as_deref()?, callers.contains_key(&id)))),
    );
    let mut candidates: Vec<(FnId, Candidate)> = vec![];
    // Candidates a declared fact explains (see `assume`).
    let mut assumed: HashMap<CandKey, crate::model::Assumption> = HashMap::new();
    let mut ops = 0u64;
    for (id, summary) in summaries.iter().enumerate() {
        let Some(summary) = summary else { continue };
        if global.test_files.contains(&*global.metas[id].span.file) {
            continue;
        }
        ops += summary.ops.iter().filter(|o| o.via.is_empty()).count() as u64;
        if summary.ops.is_empty() && summary.mem.is_empty() {
            continue;
        }
        let f = &global.metas[id];
        let own_routes = handler_routes.get(f.name.as_str());
        let name_words = flow::words(&f.name);
        let creates = name_words
            .iter()
            .any(|w| CREATE_WORDS.contains(&w.as_str()))
            || name_words
                .windows(2)
                .any(|p| p[0] == "sign" && p[1] == "up")
            || own_routes.is_some_and(|rs| rs.iter().any(|r| r.method == "POST"));
        // Where the flow cannot interleave with itself, its races are at most `info`.
        let alone = if is_one_shot(f, texts) {
            Some(
                " (in a program's `main` that serves no requests: it races only with another \
                 run of the program)"
                    .to_string(),
            )
        } else {
            serialized.get(&id).map(|ty| {
                format!(
                    " (the flow runs with exclusive access to a `{ty}` kept behind a lock, so it \
                     is serialized within one process: it races only across instances of the \
                     service)"
                )
            })
        };
        let declared = declared_serialized
            .get(&id)
            .and_then(|i| facts.serialized.get(*i));
        let run = || {
            let writes = writes::derive(summary);
            let ctx = FlowCtx {
                function: &f.qual,
                fn_name: &f.name,
                summary,
                writes: &writes,
                creates,
                from_maps_ccf: f.returns.iter().any(|t| global.ccf_error_types.contains(t)),
                has_callers: callers.contains_key(&id),
                files: texts,
                mutated: &mutated,
            };
            let mut out = vec![];
            for mut c in rules::run(&ctx) {
                if !(wanted.is_empty() || wanted.contains(c.rule.id)) {
                    continue;
                }
                if let Some(note) = &alone {
                    if INTERLEAVING.contains(&c.rule.id) {
                        c.severity = Some(crate::model::Severity::Info);
                        c.message.push_str(note);
                    }
                }
                let a = assume::assume(facts, declared, summary, &writes, &c);
                out.push((c, a));
            }
            out
        };
        match isolate(run) {
            Ok(cands) => {
                for (c, a) in cands {
                    if let Some(mut a) = a {
                        a.severity = c.severity.unwrap_or(c.rule.severity);
                        assumed.insert(cand_key(id, &c), a);
                    }
                    candidates.push((id, c));
                }
            }
            Err(panic) => errors.push(internal_error(
                f.span.file.to_string(),
                &format!("`{}`", f.qual),
                panic,
            )),
        }
    }

    // Source order, whatever order the threads walked the functions in.
    candidates.sort_by(|(a, x), (b, y)| {
        (&global.metas[*a].span, x.rule.id, &x.site, &x.write, &x.at).cmp(&(
            &global.metas[*b].span,
            y.rule.id,
            &y.site,
            &y.write,
            &y.at,
        ))
    });
    let candidates = precedence(candidates, &assumed);
    let candidates = one_per_transaction(dedupe(candidates));
    let suppressions = suppress::Suppressions::scan(texts);
    let mut findings = vec![];
    let (mut suppressed, mut n_assumed) = (0u64, 0u64);
    for (id, c) in candidates {
        let f = &global.metas[id];
        let write_line = c.write.as_ref().map(|(s, _)| s);
        if suppressions.covers(c.rule, &c.at, write_line, &f.span) {
            suppressed += 1;
            continue;
        }
        let assumed = if assumed.is_empty() {
            None
        } else {
            assumed.remove(&cand_key(id, &c))
        };
        let severity = match &assumed {
            Some(_) => {
                n_assumed += 1;
                crate::model::Severity::Info
            }
            None => c.severity.unwrap_or(c.rule.severity),
        };
        findings.push(Finding {
            severity,
            assumed,
            function: Some(f.qual.clone()),
            routes: routes_of(id),
            evidence: c.evidence,
            fixes: c.fixes,
            ..c.rule.finding(c.confidence, c.message, location(&c.at))
        });
    }
    crate::model::sort_findings(&mut findings);
    Report {
        stats: Stats {
            files: texts.len() as u64,
            lines: texts.iter().map(|f| f.line_count() as u64).sum(),
            functions: global.metas.len() as u64,
            routes: routes.len() as u64,
            dynamodb_operations: ops,
            findings: findings.len() as u64,
            suppressed,
            assumed: n_assumed,
            ..Stats::default()
        },
        findings,
        errors: vec![],
        probe: None,
    }
}

/// A write gets at most one of the rules in `EXCLUSIVE`: the most specific of those no
/// declared fact explains (an assumed one only when all are).
fn precedence(
    cands: Vec<(FnId, Candidate)>,
    assumed: &HashMap<CandKey, crate::model::Assumption>,
) -> Vec<(FnId, Candidate)> {
    let rank = |id: FnId, c: &Candidate| {
        EXCLUSIVE.iter().position(|r| *r == c.rule.id).map(|p| {
            (
                !assumed.is_empty() && assumed.contains_key(&cand_key(id, c)),
                p,
            )
        })
    };
    type Key = (FnId, (Span, Option<usize>), Span);
    let mut best: HashMap<Key, (bool, usize)> = HashMap::new();
    for (id, c) in &cands {
        if let (Some(r), Some(w)) = (rank(*id, c), &c.write) {
            let key = (*id, w.clone(), c.site.clone());
            let e = best.entry(key).or_insert(r);
            *e = (*e).min(r);
        }
    }
    cands
        .into_iter()
        .filter(|(id, c)| match (rank(*id, c), &c.write) {
            (Some(r), Some(w)) => best.get(&(*id, w.clone(), c.site.clone())) == Some(&r),
            _ => true,
        })
        .collect()
}

/// One transaction is one write site: findings of one rule on several of its members become
/// one finding that lists them.
fn one_per_transaction(cands: Vec<(FnId, Candidate)>) -> Vec<(FnId, Candidate)> {
    let mut out: Vec<(FnId, Candidate)> = vec![];
    let mut at: HashMap<(FnId, &'static str, Span, Span), usize> = HashMap::new();
    for (id, c) in cands {
        let Some((span, Some(_))) = c.write.clone() else {
            out.push((id, c));
            continue;
        };
        let key = (id, c.rule.id, span, c.site.clone());
        match at.get(&key) {
            Some(&i) => {
                let first = &mut out[i].1;
                for e in c.evidence {
                    if !first.evidence.contains(&e) {
                        first.evidence.push(e);
                    }
                }
                first.merged += 1;
            }
            None => {
                at.insert(key, out.len());
                out.push((id, c));
            }
        }
    }
    for (_, c) in &mut out {
        if c.merged > 0 {
            c.message = format!(
                "{} (and {} more member{} of the same transaction)",
                c.message,
                c.merged,
                if c.merged == 1 { "" } else { "s" }
            );
        }
    }
    out
}

/// The same race seen from a helper and from the handler that calls it is reported once,
/// where it is most local. One function that reaches the write from two places keeps both.
fn dedupe(cands: Vec<(FnId, Candidate)>) -> Vec<(FnId, Candidate)> {
    let key = |c: &Candidate| {
        let mut reads = c.reads.clone();
        reads.sort();
        (c.rule.id, c.write.clone(), reads)
    };
    let mut groups: HashMap<_, Vec<usize>> = HashMap::new();
    for (i, (_, c)) in cands.iter().enumerate() {
        groups.entry(key(c)).or_default().push(i);
    }
    let mut keep: HashSet<usize> = HashSet::new();
    for members in groups.values() {
        let mut seen: HashSet<(FnId, Span)> = HashSet::new();
        for &i in members {
            let (f, c) = &cands[i];
            let more_local = members.iter().any(|&j| {
                let (g, d) = &cands[j];
                g != f && d.depth < c.depth
            });
            if !more_local && seen.insert((*f, c.site.clone())) {
                keep.insert(i);
            }
        }
    }
    cands
        .into_iter()
        .enumerate()
        .filter(|(i, _)| keep.contains(i))
        .map(|(_, c)| c)
        .collect()
}
