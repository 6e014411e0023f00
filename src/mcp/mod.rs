//! The stdio MCP server: a thin adapter that converts arguments, calls the engine on a
//! blocking thread, and returns the same JSON as the CLI plus the text rendering.

mod outline;
#[doc(hidden)]
mod prompts;
pub mod stdio;

use std::path::PathBuf;

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{
    CallToolResult, ContentBlock, GetPromptRequestParams, GetPromptResponse, Implementation,
    ListPromptsResult, ListResourcesResult, PaginatedRequestParams, ProgressNotificationParam,
    ReadResourceRequestParams, ReadResourceResponse, ReadResourceResult, RequestMetaObject,
    Resource, ResourceContents, ServerCapabilities, ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::{
    tool, tool_handler, tool_router, ErrorData, Peer, RoleServer, ServerHandler, ServiceExt,
};
use schemars::JsonSchema;
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use crate::model::Report;
use crate::probe::plan::Plan;
use crate::probe::safety::Policy;
use crate::report::page::{self, Page, PageArgs};
use crate::source::{self, Input, Options};
use crate::spec::SpecInput;
use crate::Cancel;
use outline::outline;

const RULE_URI: &str = "racecheck://rules/";

/// Arguments of `analyze_source`.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(transform = crate::model::portable)]
pub struct AnalyzeSourceArgs {
    #[serde(flatten)]
    pub source: SourceArgs,
    #[serde(flatten)]
    pub page: PageArgs,
}

/// The Rust source a tool analyses.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(transform = crate::model::portable)]
pub struct SourceArgs {
    /// A `.rs` file or a crate/workspace directory to analyse. Give this or `code`.
    #[serde(default)]
    #[schemars(with = "String")]
    pub path: Option<String>,
    /// Rust source to analyse instead of a path (one file's contents). Give this or `path`.
    #[serde(default)]
    #[schemars(with = "String")]
    pub code: Option<String>,
}

/// Arguments of `suggest_fix`.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(transform = crate::model::portable)]
pub struct SuggestFixArgs {
    /// The code the finding is in.
    #[serde(flatten)]
    pub source: SourceArgs,
    #[serde(flatten)]
    pub which: FindingRef,
}

/// What `suggest_fix` answers: the finding, and its fixes in full.
#[derive(Debug, serde::Serialize, JsonSchema)]
#[schemars(transform = crate::model::portable)]
pub struct SuggestedFix {
    pub finding: crate::model::Finding,
    /// Per fix: its applicability and what applying it changes for clients.
    pub applicability: Vec<String>,
}

/// Arguments of `validate_openapi`.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(transform = crate::model::portable)]
pub struct ValidateOpenapiArgs {
    /// An OpenAPI file (YAML or JSON). Give this or `content`.
    #[serde(default)]
    #[schemars(with = "String")]
    pub path: Option<String>,
    /// The OpenAPI document itself (YAML or JSON text). Give this or `path`.
    #[serde(default)]
    #[schemars(with = "String")]
    pub content: Option<String>,
    /// Directory that relative `$ref`s in `content` resolve against.
    #[serde(default)]
    #[schemars(with = "String")]
    pub base_dir: Option<String>,
    #[serde(flatten)]
    pub page: PageArgs,
}

/// Arguments of `audit_service`.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(transform = crate::model::portable)]
pub struct AuditArgs {
    /// The service's directory (a crate or workspace).
    pub path: String,
    /// Its OpenAPI document; by default openapi.yaml|yml|json in `path`.
    #[serde(default)]
    #[schemars(with = "String")]
    pub spec: Option<String>,
    /// A running development instance (`http://127.0.0.1:3000`): every finding on a route is
    /// probed with its generated plan and marked confirmed, not reproduced or untested.
    #[serde(default)]
    #[schemars(with = "String")]
    pub base_url: Option<String>,
    /// Path parameter values for the plans (`{"id": "42"}`).
    #[serde(default)]
    pub params: std::collections::BTreeMap<String, String>,
    /// With `base_url`: the URL of a running `racecheck interleave` proxy in front of the
    /// service's database; each plan then runs 5 rounds of 2 requests whose reads it
    /// interleaves, so a race reproduces every time.
    #[serde(default)]
    #[schemars(with = "String")]
    pub interleave: Option<String>,
    #[serde(flatten)]
    pub page: PageArgs,
}

/// Arguments of `plan_probe`.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(transform = crate::model::portable)]
pub struct PlanProbeArgs {
    /// The service's directory (a crate or workspace).
    pub path: String,
    /// Its OpenAPI document; by default openapi.yaml|yml|json in `path`.
    #[serde(default)]
    #[schemars(with = "String")]
    pub spec: Option<String>,
    /// Where the service runs (`http://127.0.0.1:3000`).
    pub base_url: String,
    /// Path parameter values (`{"id": "42"}`).
    #[serde(default)]
    pub params: std::collections::BTreeMap<String, String>,
    /// The finding: its `fingerprint` from an earlier answer as `id`, or `line` (and `file`).
    #[serde(flatten)]
    pub which: FindingRef,
}

/// A finding of an earlier answer: by fingerprint, or by a line of its evidence.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(transform = crate::model::portable)]
pub struct FindingRef {
    /// The finding's `fingerprint` from an earlier answer. Give this, or `line`.
    #[serde(default)]
    #[schemars(with = "String")]
    pub id: Option<String>,
    /// Or: the line of the finding, its read, check or write (with `file` when `path` is a
    /// directory).
    #[serde(default)]
    #[schemars(with = "u32")]
    pub line: Option<u32>,
    /// The file of `line`, as findings name it (a suffix is enough: `src/orders.rs`).
    #[serde(default)]
    #[schemars(with = "String")]
    pub file: Option<String>,
}

/// What `plan_probe` answers.
#[derive(Debug, serde::Serialize, JsonSchema)]
#[schemars(transform = crate::model::portable)]
pub struct PlannedProbe {
    pub finding: crate::model::Finding,
    /// `ready` (give `plan` to probe_endpoint) or `untested` (complete what `missing` names).
    pub status: String,
    /// The plan, partial when something is missing.
    #[schemars(with = "serde_json::Map<String, serde_json::Value>")]
    pub plan: serde_json::Value,
    pub missing: Vec<String>,
}

/// Arguments of `explain_rule`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct ExplainRuleArgs {
    /// A rule id (`RC101`) or slug (`lost-update`).
    pub rule: String,
}

/// A proven audit kept for paging.
struct Proven {
    /// The arguments it ran with.
    key: String,
    /// [`crate::audit::inputs_print`] of what it read.
    inputs: u64,
    report: Report,
}

#[derive(Clone)]
pub struct Server {
    tool_router: ToolRouter<Server>,
    /// Fixed when the server starts (flags and environment); no call can widen it.
    policy: Policy,
    /// The last proven audit: a `cursor` into it pages the same verdicts instead of sending
    /// every probe again, while its inputs are unchanged.
    proven: std::sync::Arc<std::sync::Mutex<Option<Proven>>>,
}

impl Default for Server {
    fn default() -> Self {
        Self::new(Policy::default())
    }
}

fn tool_error(message: impl Into<String>) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(message.into())])
}

/// A path that exists, or the tool error that says it does not (relative paths are relative
/// to the server's working directory, which the client may not know).
fn existing(p: &str) -> Result<PathBuf, String> {
    let path = PathBuf::from(p);
    if path.exists() {
        return Ok(path);
    }
    Err(format!(
        "path `{}` does not exist (the server's working directory is `{}`); pass an absolute path",
        page::clip(p, 512),
        std::env::current_dir()
            .map(|d| d.display().to_string())
            .unwrap_or_default()
    ))
}

/// Run an analysis on a blocking thread; a cancelled call returns at once, and the analysis
/// stops at its next check (so does one whose call is dropped because the client went away).
/// The fingerprint of what an audit of `args` read (its code, document and the files its
/// findings name), taken off the async threads.
async fn inputs_of(
    ct: &CancellationToken,
    args: &AuditArgs,
    report: &Report,
) -> Result<u64, CallToolResult> {
    let (dir, spec) = (
        PathBuf::from(&args.path),
        args.spec.clone().map(PathBuf::from),
    );
    let report = report.clone();
    blocking(ct, "the check of the inputs", move |_| {
        crate::audit::inputs_print(&dir, spec.as_deref(), &report)
    })
    .await
}

async fn blocking<T: Send + 'static>(
    ct: &CancellationToken,
    what: &str,
    job: impl FnOnce(Cancel) -> T + Send + 'static,
) -> Result<T, CallToolResult> {
    struct StopOnDrop(Cancel);
    impl Drop for StopOnDrop {
        fn drop(&mut self) {
            self.0.cancel();
        }
    }
    let cancel = Cancel::default();
    let _stop = StopOnDrop(cancel.clone());
    let job = tokio::task::spawn_blocking(move || job(cancel));
    tokio::select! {
        _ = ct.cancelled() => Err(tool_error("cancelled")),
        joined = job => joined.map_err(|e| tool_error(format!("{what} failed: {e}"))),
    }
}

/// A sender of progress `(done, total, message)`, forwarded as notifications that echo the
/// client's token (none when it gave no token); the task ends when the sender is dropped.
fn progress(
    meta: &RequestMetaObject,
    peer: Peer<RoleServer>,
) -> (
    tokio::sync::mpsc::UnboundedSender<(u32, u32, String)>,
    tokio::task::JoinHandle<()>,
) {
    let token = meta.get_progress_token();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(u32, u32, String)>();
    let forward = tokio::spawn(async move {
        while let Some((done, total, message)) = rx.recv().await {
            if let Some(t) = &token {
                let _ = peer
                    .notify_progress(
                        ProgressNotificationParam::new(t.clone(), f64::from(done))
                            .with_total(f64::from(total))
                            .with_message(message),
                    )
                    .await;
            }
        }
    });
    (tx, forward)
}

/// The audit of the service at `path` (and its `spec`), with the document's operations.
async fn audited(
    ct: &CancellationToken,
    path: &str,
    spec: Option<&str>,
) -> Result<(Report, crate::audit::ServiceFacts), CallToolResult> {
    let dir = existing(path).map_err(tool_error)?;
    let spec = spec.map(existing).transpose().map_err(tool_error)?;
    blocking(ct, "the audit", move |cancel| {
        let options = Options {
            cancel,
            facts: facts_of(&Input::Path(dir.clone()))?,
            ..Options::default()
        };
        Ok::<_, String>(crate::audit::audit_with_options(
            &dir,
            spec.as_deref(),
            &options,
        ))
    })
    .await?
    .map_err(tool_error)
}

/// The facts of the `racecheck.toml` that applies to a path (see [`crate::config::find`]);
/// inline code has none. A file that cannot be used is the call's error, naming its line.
fn facts_of(input: &Input) -> Result<std::sync::Arc<crate::config::Facts>, String> {
    match input {
        Input::Path(p) => {
            crate::config::facts_for(std::slice::from_ref(p), &crate::config::Source::Discover)
                .map(std::sync::Arc::new)
                .map_err(|e| {
                    format!("{e}; fix it, or move it away to analyse without the facts it declares")
                })
        }
        Input::Inline { .. } => Ok(Default::default()),
    }
}

/// What to analyse: a path that exists, or inline code (named `input.rs`).
fn source_input(args: &SourceArgs) -> Result<Input, String> {
    match (args.path.clone(), args.code.clone()) {
        (Some(_), Some(_)) => Err("give either `path` or `code`, not both".into()),
        (None, None) => {
            Err("give `path` (a .rs file or a crate directory) or `code` (Rust source)".into())
        }
        (Some(p), None) => existing(&p).map(Input::Path),
        (None, Some(code)) => Ok(Input::Inline {
            name: "input.rs".into(),
            code,
        }),
    }
}

/// The finding `suggest_fix` asks for: by fingerprint, or by a line of its evidence.
fn pick_finding(report: &Report, args: &FindingRef) -> Result<crate::model::Finding, String> {
    let on_line = |f: &crate::model::Finding, line: u32| {
        let file_ok = |file: &str| args.file.as_deref().is_none_or(|want| file.ends_with(want));
        (f.location.line == line && file_ok(&f.location.file))
            || f.evidence
                .iter()
                .any(|e| e.line == line && file_ok(&e.file))
    };
    let found = match (&args.id, args.line) {
        (Some(id), _) => report
            .findings
            .iter()
            .find(|f| f.compute_fingerprint() == *id),
        (None, Some(line)) => report.findings.iter().find(|f| on_line(f, line)),
        (None, None) => {
            return Err("give `id` (a finding's fingerprint) or `line` (and `file`)".into())
        }
    };
    let mut f = found.cloned().ok_or_else(|| match &args.id {
        Some(id) => format!(
            "no finding `{}` in this code now ({} findings; it may be fixed, or the code changed its message)",
            page::echo(id),
            report.findings.len()
        ),
        None => format!(
            "no finding on line {}{} ({} findings)",
            args.line.unwrap_or(0),
            args.file
                .as_deref()
                .map(|f| format!(" of `{}`", page::clip(f, 512)))
                .unwrap_or_default(),
            report.findings.len()
        ),
    })?;
    f.fingerprint = f.compute_fingerprint();
    Ok(f)
}

/// The report as the tool result, sized for the client's context (see `report::page`): the
/// structured page and a short text rendering of it.
fn report_result(report: &Report, args: &PageArgs) -> CallToolResult {
    let page = match page::page(report, args) {
        Ok(p) => p,
        Err(e) => return tool_error(e),
    };
    let value = serde_json::to_value(&page).unwrap_or_default();
    let mut result = CallToolResult::structured(value);
    result.content = vec![ContentBlock::text(page::text(&page))];
    result
}

#[tool_router]
impl Server {
    pub fn new(policy: Policy) -> Self {
        Server {
            tool_router: Self::tool_router(),
            policy,
            proven: Default::default(),
        }
    }

    #[tool(
        title = "Prove a race on a running service",
        description = "Prove a race on a running development service: fire synchronized bursts \
        (HTTP/1.1 last-byte synchronisation) at one endpoint and observe the state before and \
        after each round. Modes: lost-update (N increments, did the counter move by N? RC401), \
        limit-overrun (more successes than allowed, e.g. a one-time coupon redeemed twice; \
        RC402), rate-limit (no 429; RC403); 5xx under contention is RC404. Call it after a \
        static finding to confirm it, or after a fix to show it holds. Targets must be \
        loopback (127.0.0.1, localhost) unless the operator allowed the host; requests, \
        concurrency (cap 50), rounds (cap 10) and time are capped. Sends progress after each \
        round and stops when cancelled.",
        output_schema = outline::<Page>(),
        annotations(read_only_hint = false, destructive_hint = true, open_world_hint = false)
    )]
    async fn probe_endpoint(
        &self,
        Parameters(plan): Parameters<Plan>,
        meta: RequestMetaObject,
        peer: Peer<RoleServer>,
        ct: CancellationToken,
    ) -> Result<CallToolResult, ErrorData> {
        let (tx, forward) = progress(&meta, peer);
        let mut on_round = move |done: u32, total: u32, r: &crate::model::ProbeRound| {
            let _ = tx.send((done, total, crate::rules::probe::describe(r, 1.0)));
        };
        let report = crate::probe::run(&plan, &self.policy, &mut on_round, &ct).await;
        drop(on_round);
        let _ = forward.await;
        let mut result = report_result(&report, &PageArgs::default());
        if !report.errors.is_empty() && report.probe.is_none() {
            result.is_error = Some(true);
        }
        Ok(result)
    }

    #[tool(
        title = "Find races in Rust source",
        description = "Find race conditions in Rust code of an Axum service that uses DynamoDB \
        (aws-sdk-dynamodb): lost updates, check-then-act, non-atomic counters, multi-item writes \
        outside transactions, creates without attribute_not_exists, unhandled \
        ConditionalCheckFailed, unbounded retries, in-memory read-modify-write. Call it after \
        writing or changing a handler or repository that reads and writes DynamoDB, or when \
        asked whether concurrent requests are safe. Give `path` (a file or crate directory) or \
        `code`. Each finding has the evidence (read, check, write lines) and a fix: a Rust \
        function that compiles against aws-sdk-dynamodb. `errors` lists anything not analysed. \
        A `racecheck.toml` by the code declares facts it cannot show (immutable attributes, \
        single-writer tables, serialized handlers, conditional helpers): findings they explain \
        come back at `info` with `assumed` naming the fact, counted in `stats.assumed`. Answers fit in about 20,000 characters: a summary by rule, severity and place, then the \
        findings that matter most; `next_cursor` pages through the rest, `min_severity`, \
        `rules`, `filter` and `limit` narrow it, `detail` gives fixes in full.",
        output_schema = outline::<Page>(),
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    async fn analyze_source(
        &self,
        Parameters(args): Parameters<AnalyzeSourceArgs>,
        ct: CancellationToken,
    ) -> Result<CallToolResult, ErrorData> {
        if let Err(e) = args.page.check() {
            return Ok(tool_error(e));
        }
        let input = match source_input(&args.source) {
            Ok(i) => i,
            Err(e) => return Ok(tool_error(e)),
        };
        let rules = args.page.rules.clone();
        let report = match blocking(&ct, "the analysis", move |cancel| {
            let options = Options {
                rules,
                threads: None,
                cancel,
                facts: facts_of(&input)?,
            };
            Ok::<_, String>(source::analyze(&[input], &options))
        })
        .await
        {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => return Ok(tool_error(e)),
            Err(e) => return Ok(e),
        };
        let only_errors =
            report.findings.is_empty() && !report.errors.is_empty() && report.stats.lines == 0;
        let mut result = report_result(&report, &args.page);
        if only_errors {
            result.is_error = Some(true);
        }
        Ok(result)
    }

    #[tool(
        title = "Fixes for one finding",
        description = "The fixes for one source finding, in full: give the finding's \
        `fingerprint` from an earlier analyze_source or audit_service answer as `id` (or a \
        `line` of its read, check or write, with `file`), and the same `path` or `code`. \
        Returns the finding with each fix's snippet, its edits on the user's files (file, \
        1-based range, new text) and their unified diff where the code's shape allows (else \
        `edit_note` says why), its applicability (safe, unsafe: clients can see a change such \
        as a new 409, display-only: a sketch to adapt) and what it changes for clients. It \
        never writes files; `racecheck fix --apply` does.",
        output_schema = outline::<SuggestedFix>(),
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    async fn suggest_fix(
        &self,
        Parameters(args): Parameters<SuggestFixArgs>,
        ct: CancellationToken,
    ) -> Result<CallToolResult, ErrorData> {
        let input = match source_input(&args.source) {
            Ok(i) => i,
            Err(e) => return Ok(tool_error(e)),
        };
        let report = match blocking(&ct, "the analysis", move |cancel| {
            let options = Options {
                rules: vec![],
                threads: None,
                cancel,
                facts: facts_of(&input)?,
            };
            Ok::<_, String>(source::analyze(&[input], &options))
        })
        .await
        {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => return Ok(tool_error(e)),
            Err(e) => return Ok(e),
        };
        let finding = match pick_finding(&report, &args.which) {
            Ok(f) => f,
            Err(e) => return Ok(tool_error(e)),
        };
        let applicability: Vec<String> = finding
            .fixes
            .iter()
            .map(|x| format!("{} ({}): {}", x.title, x.safety.as_str(), x.explanation))
            .collect();
        let text = format!(
            "{} {} at {}:{}\n{}\n{}",
            finding.rule,
            finding.slug,
            finding.location.file,
            finding.location.line,
            applicability.join("\n"),
            finding
                .fixes
                .iter()
                .map(|x| x.diff.as_deref().unwrap_or(&x.snippet))
                .collect::<Vec<_>>()
                .join("\n\n")
        );
        let answer = SuggestedFix {
            finding,
            applicability,
        };
        let mut result =
            CallToolResult::structured(serde_json::to_value(&answer).unwrap_or_default());
        result.content = vec![ContentBlock::text(text)];
        Ok(result)
    }

    #[tool(
        title = "Check an OpenAPI document for races",
        description = "Check an OpenAPI 3.0/3.1 document (YAML or JSON, $refs into other files \
        followed) for writes that leave concurrent clients unprotected: no If-Match/412 on \
        item updates, no 409/412 documented, no ETag, no Idempotency-Key on POSTs that charge or \
        create, relative PUTs, missing version fields, no 429, unauthenticated writes; and for \
        documents or $refs that cannot be read (RC290, with line and JSON pointer). Call it \
        after editing an API spec or before implementing its handlers. Give `path` or \
        `content` (with `base_dir` for relative $refs). Fixes are the YAML/JSON to add. Answers fit in about 20,000 characters: a summary by rule, severity and place, then the \
        findings that matter most; `next_cursor` pages through the rest, `min_severity`, \
        `rules`, `filter` and `limit` narrow it, `detail` gives fixes in full.",
        output_schema = outline::<Page>(),
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    async fn validate_openapi(
        &self,
        Parameters(args): Parameters<ValidateOpenapiArgs>,
        ct: CancellationToken,
    ) -> Result<CallToolResult, ErrorData> {
        if let Err(e) = args.page.check() {
            return Ok(tool_error(e));
        }
        let input = match (args.path, args.content) {
            (Some(_), Some(_)) => {
                return Ok(tool_error("give either `path` or `content`, not both"))
            }
            (None, None) => {
                return Ok(tool_error(
                    "give `path` (an OpenAPI file) or `content` (its text)",
                ))
            }
            (Some(p), None) => match existing(&p) {
                Ok(path) => SpecInput::Path(path),
                Err(e) => return Ok(tool_error(e)),
            },
            (None, Some(content)) => {
                let base_dir = args.base_dir.map(PathBuf::from);
                if let Some(d) = &base_dir {
                    if !d.is_dir() {
                        return Ok(tool_error(format!(
                            "base_dir `{}` is not a directory",
                            page::clip(&d.display().to_string(), 512)
                        )));
                    }
                }
                SpecInput::Inline { content, base_dir }
            }
        };
        let report = match blocking(&ct, "the check", move |_| crate::spec::check(&input)).await {
            Ok(r) => r,
            Err(e) => return Ok(e),
        };
        let mut result = report_result(&report, &args.page);
        if !report.errors.is_empty() {
            result.is_error = Some(true);
        }
        Ok(result)
    }

    #[tool(
        title = "Audit a service (source, contract, probes)",
        description = "Audit a service's source and its OpenAPI document together: every \
        analyze_source and validate_openapi finding, source findings tagged with the operation \
        they break, and what the contract promises that the handlers do not keep: If-Match/412 \
        required but the write unconditional (RC301), mutating routes missing from the spec \
        (RC302), Idempotency-Key or PUT idempotency not kept (RC303). Call it on a service \
        directory that has an openapi.yaml (or pass `spec`). Answers fit in about 20,000 characters; \
        `next_cursor` pages through the rest, `min_severity`, `rules`, `filter`, `limit` narrow it. \
        With `base_url` (a running development instance, loopback unless the operator allowed \
        the host) every finding on a route is probed with its generated plan and carries a \
        `proof`: confirmed (with the numbers), not reproduced (what was tried) or untested \
        (what is missing); this sends requests that change the service's data, with progress as \
        each probe starts, and stops when cancelled; its `next_cursor` pages the same verdicts \
        without probing again.",
        output_schema = outline::<Page>(),
        annotations(read_only_hint = false, destructive_hint = true, open_world_hint = false)
    )]
    async fn audit_service(
        &self,
        Parameters(args): Parameters<AuditArgs>,
        meta: RequestMetaObject,
        peer: Peer<RoleServer>,
        ct: CancellationToken,
    ) -> Result<CallToolResult, ErrorData> {
        if let Err(e) = args.page.check() {
            return Ok(tool_error(e));
        }
        // A later page of a proven audit: the verdicts already sent for, not new probes.
        let key = args.base_url.as_ref().map(|url| {
            format!(
                "{}\n{:?}\n{url}\n{:?}\n{:?}",
                args.path, args.spec, args.params, args.interleave
            )
        });
        if let (Some(key), Some(_)) = (&key, &args.page.cursor) {
            let cached = self.proven.lock().ok().and_then(|c| {
                c.as_ref()
                    .filter(|p| p.key == *key)
                    .map(|p| (p.inputs, p.report.clone()))
            });
            if let Some((inputs, report)) = cached {
                let now = match inputs_of(&ct, &args, &report).await {
                    Ok(n) => n,
                    Err(e) => return Ok(e),
                };
                if now != inputs {
                    if let Ok(mut cache) = self.proven.lock() {
                        *cache = None;
                    }
                    return Ok(tool_error(
                        "the code or document changed since this audit was proven, so its verdicts may no longer hold; run it again: call audit_service without `cursor` (its probes run again)",
                    ));
                }
                return Ok(report_result(&report, &args.page));
            }
        }
        let params = args.params.clone();
        let (mut report, facts) = match audited(&ct, &args.path, args.spec.as_deref()).await {
            Ok(r) => r,
            Err(e) => return Ok(e),
        };
        if let Some(url) = &args.base_url {
            if let Err(e) = crate::probe::safety::endpoint(url, &self.policy) {
                return Ok(tool_error(e));
            }
            // Taken before the probes: an edit while they run makes later pages refuse.
            let inputs = match inputs_of(&ct, &args, &report).await {
                Ok(n) => n,
                Err(e) => return Ok(e),
            };
            let svc =
                crate::audit::plans::Service::new(url, &params, &facts, args.interleave.as_deref());
            // Progress as each finding's probe starts.
            let (tx, forward) = progress(&meta, peer);
            let mut on_probe = move |done: usize, total: usize, url: &str| {
                let n = |x: usize| u32::try_from(x).unwrap_or(u32::MAX);
                let _ = tx.send((n(done), n(total), format!("probing {url}")));
            };
            crate::audit::prove(&mut report, &svc, &self.policy, &mut on_probe, &ct).await;
            drop(on_probe);
            let _ = forward.await;
            if let (Some(key), Ok(mut cache), false) = (key, self.proven.lock(), ct.is_cancelled())
            {
                *cache = Some(Proven {
                    key,
                    inputs,
                    report: report.clone(),
                });
            }
        }
        let mut result = report_result(&report, &args.page);
        if report.findings.is_empty() && !report.errors.is_empty() {
            result.is_error = Some(true);
        }
        Ok(result)
    }

    #[tool(
        title = "Plan a probe for one finding",
        description = "The probe plan for one finding of a service, without running it: the \
        target request from its route and the OpenAPI document (a body the handler's \
        `Json<T>` reads where the document has none), the GET that observes the attribute the \
        handler changes, the reset that restores the state or the POST that creates the item, \
        the mode and the expectation from the rule (from the handler's writes for a contract \
        finding). Give the service `path` (and `spec`), `base_url`, \
        `params` for path parameters, and the finding's `fingerprint` as `id` (or `line` and \
        `file`). A `ready` plan goes to probe_endpoint as is; an `untested` one lists what is \
        missing and never guesses it.",
        output_schema = outline::<PlannedProbe>(),
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    async fn plan_probe(
        &self,
        Parameters(args): Parameters<PlanProbeArgs>,
        ct: CancellationToken,
    ) -> Result<CallToolResult, ErrorData> {
        if let Err(e) = crate::probe::safety::endpoint(&args.base_url, &self.policy) {
            return Ok(tool_error(e));
        }
        let (report, facts) = match audited(&ct, &args.path, args.spec.as_deref()).await {
            Ok(r) => r,
            Err(e) => return Ok(e),
        };
        let finding = match pick_finding(&report, &args.which) {
            Ok(f) => f,
            Err(e) => return Ok(tool_error(e)),
        };
        let svc = crate::audit::plans::Service::new(&args.base_url, &args.params, &facts, None);
        let answer = match crate::audit::plans::derive(&finding, &svc, 0) {
            crate::audit::plans::Derived::Ready(plan) => PlannedProbe {
                finding,
                status: "ready".into(),
                plan: serde_json::to_value(&plan).unwrap_or_default(),
                missing: vec![],
            },
            crate::audit::plans::Derived::Missing { partial, missing } => PlannedProbe {
                finding,
                status: "untested".into(),
                plan: partial,
                missing,
            },
        };
        let text = format!(
            "{} {}: {}\n{}",
            answer.finding.rule,
            answer.status,
            if answer.missing.is_empty() {
                "give `plan` to probe_endpoint".to_string()
            } else {
                format!("missing {}", answer.missing.join("; "))
            },
            serde_json::to_string_pretty(&answer.plan).unwrap_or_default()
        );
        let mut result =
            CallToolResult::structured(serde_json::to_value(&answer).unwrap_or_default());
        result.content = vec![ContentBlock::text(text)];
        Ok(result)
    }

    #[tool(
        title = "Explain a racecheck rule",
        description = "Explain a racecheck rule (RC101..RC109, or its slug such as lost-update): \
        what it detects, why it is a race, a racy example and the fix. Call it when a finding's \
        rule needs explaining before changing code.",
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    async fn explain_rule(
        &self,
        Parameters(args): Parameters<ExplainRuleArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        Ok(match crate::rules::find(&args.rule) {
            Some(r) => CallToolResult::success(vec![ContentBlock::text(r.doc())]),
            None => tool_error(format!(
                "unknown rule `{}`; known rules: {}",
                page::echo(&args.rule),
                crate::rules::all()
                    .map(|r| r.id)
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        })
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for Server {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_resources()
                .enable_prompts()
                .build(),
        )
        .with_server_info(Implementation::new("racecheck", env!("CARGO_PKG_VERSION")))
        .with_instructions(
            "racecheck finds race conditions in Axum + DynamoDB Rust services. Use \
             analyze_source on a handler file or the crate after changing code that reads and \
             then writes DynamoDB, and validate_openapi on the service's OpenAPI document; apply \
             the fixes they return. Rule documentation is at \
             racecheck://rules/<ID> and through explain_rule; the prompts fix-races and \
             harden-api walk through the whole workflow.",
        )
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        Ok(ListPromptsResult::with_all_items(prompts::list()))
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        let args = request.arguments.unwrap_or_default();
        prompts::get(&request.name, &args)
            .map(Into::into)
            .map_err(|e| ErrorData::invalid_params(e, None))
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        let resources = crate::rules::all()
            .map(|r| {
                Resource::new(
                    format!("{RULE_URI}{}", r.id),
                    format!("{} {}", r.id, r.slug),
                )
                .with_description(r.summary)
                .with_mime_type("text/markdown")
            })
            .collect();
        Ok(ListResourcesResult::with_all_items(resources))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let rule = request
            .uri
            .strip_prefix(RULE_URI)
            .and_then(crate::rules::find)
            .ok_or_else(|| {
                ErrorData::resource_not_found(
                    format!("no resource `{}`; rules are at {RULE_URI}<ID>", request.uri),
                    None,
                )
            })?;
        let mut contents = ResourceContents::text(rule.doc(), request.uri.clone());
        if let ResourceContents::TextResourceContents { mime_type, .. } = &mut contents {
            *mime_type = Some("text/markdown".into());
        }
        Ok(ReadResourceResult::new(vec![contents]).into())
    }
}

/// Serve MCP on stdin/stdout until the client disconnects.
pub fn serve_stdio(allow_hosts: &[String]) -> anyhow::Result<()> {
    let policy = Policy::from_env(allow_hosts);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        // Checks of documents nested to the 256 levels they may have recurse deeper than the
        // 2 MiB default allows in a debug build (reserved, not committed, until used).
        .thread_stack_size(64 * 1024 * 1024)
        .enable_all()
        .build()?;
    rt.block_on(async {
        tracing::info!("racecheck MCP server starting on stdio");
        let framed = stdio::framed(tokio::io::stdin(), tokio::io::stdout());
        let service = Server::new(policy).serve(framed.server).await?;
        let stop = service.cancellation_token();
        let waiting = service.waiting();
        tokio::pin!(waiting);
        tokio::select! {
            done = &mut waiting => {
                done?;
            }
            // The client closed stdin: it wants no more answers, so calls still running are
            // cancelled (their analyses stop) rather than awaited.
            _ = framed.closed => {
                stop.cancel();
                let _ = tokio::time::timeout(std::time::Duration::from_millis(500), &mut waiting).await;
            }
        }
        let _ = tokio::time::timeout(std::time::Duration::from_millis(500), framed.writer).await;
        anyhow::Ok(())
    })?;
    // The client closed stdin: exit now, without waiting for analyses still running.
    rt.shutdown_timeout(std::time::Duration::from_millis(100));
    Ok(())
}
