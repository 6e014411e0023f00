//! The command line: parse arguments, call the engine, render, choose the exit code.

use std::fmt::Write as _;
use std::io::Write;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::model::{Report, Severity};
use crate::report::{self, Format, Sources};
use crate::source::{self, Input, Options};

/// Exit codes: nothing at or above `--fail-on`, something found, could not run (or skipped
/// input).
pub const EXIT_CLEAN: i32 = 0;
pub const EXIT_FINDINGS: i32 = 1;
pub const EXIT_ERROR: i32 = 2;

#[derive(Parser, Debug)]
#[command(
    name = "racecheck",
    version,
    about = "Finds, proves and fixes race conditions in Axum services backed by DynamoDB",
    after_help = "Exit status: 0 nothing at or above --fail-on, 1 findings, 2 an error or an input that could not be analysed.\nLogs go to stderr; set RACECHECK_LOG=debug for more."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// How much of a report to print.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct View {
    /// A report saved earlier with `--format json`: its findings are accepted and hidden
    /// (matched by fingerprint, which stays while lines move), so only new ones show and
    /// fail the run.
    #[arg(long, value_name = "FILE")]
    pub baseline: Option<PathBuf>,
    /// Print how many findings each rule has, most first, instead of the findings (a JSON
    /// array with `--format json`).
    #[arg(long)]
    pub statistics: bool,
    /// Print the findings only, without the closing summary line.
    #[arg(long, short)]
    pub quiet: bool,
}

/// Where the facts of `racecheck.toml` come from (`racecheck rules --config` shows the format).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ConfigArgs {
    /// Read the facts from this file instead of the racecheck.toml found in the scanned
    /// directory or above it (up to the repository root).
    #[arg(long, value_name = "FILE", conflicts_with = "no_config")]
    pub config: Option<PathBuf>,
    /// Read no racecheck.toml: report every finding as if no fact were declared.
    #[arg(long)]
    pub no_config: bool,
}

impl ConfigArgs {
    fn source(&self) -> crate::config::Source {
        match (&self.config, self.no_config) {
            (_, true) => crate::config::Source::Ignore,
            (Some(f), false) => crate::config::Source::File(f.clone()),
            (None, false) => crate::config::Source::Discover,
        }
    }

    /// The facts for an analysis of `paths`, or the error that names the file and line.
    fn facts(&self, paths: &[PathBuf]) -> Result<std::sync::Arc<crate::config::Facts>, String> {
        crate::config::facts_for(paths, &self.source())
            .map(std::sync::Arc::new)
            .map_err(|e| {
                format!("{e}; fix it, or pass --no-config to analyse without the facts it declares")
            })
    }
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Analyse Rust source: reads from DynamoDB that flow into unconditional writes.
    Scan {
        /// Files or directories (crates, workspaces); `.gitignore` and `target/` are respected.
        #[arg(default_value = ".")]
        paths: Vec<PathBuf>,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
        /// Exit 1 when a finding has at least this severity.
        #[arg(long, value_enum, default_value = "low")]
        fail_on: Severity,
        /// Only these rules (id or slug); repeat for more.
        #[arg(long = "rule", value_name = "RULE")]
        rules: Vec<String>,
        /// Write the report to this file instead of stdout.
        #[arg(long, short)]
        output: Option<PathBuf>,
        /// Analysis threads (default: by the machine and the number of files); the report
        /// does not depend on it.
        #[arg(long, short = 'j', value_name = "N", value_parser = clap::value_parser!(u16).range(1..=64))]
        threads: Option<u16>,
        #[command(flatten)]
        config: ConfigArgs,
        #[command(flatten)]
        view: View,
    },
    /// Source and contract together: every scan and spec finding, plus what the spec promises
    /// and the handlers do not keep (RC301-RC303).
    Audit {
        /// The service's directory (a crate or workspace).
        dir: PathBuf,
        /// Its OpenAPI document (default: openapi.yaml|yml|json in DIR).
        #[arg(long)]
        spec: Option<PathBuf>,
        /// A running development instance of the service (`http://127.0.0.1:3000`): each
        /// finding on a route gets a probe plan, is probed, and is marked confirmed, not
        /// reproduced or untested (with what is missing).
        #[arg(long, value_name = "URL")]
        base_url: Option<String>,
        /// A path parameter value for the plans (`--param id=42`); repeat for more.
        #[arg(long = "param", value_name = "NAME=VALUE", requires = "base_url")]
        params: Vec<String>,
        /// Hosts besides loopback the probes may target (also RACECHECK_ALLOW_HOSTS).
        #[arg(long = "allow-host", value_name = "HOST", requires = "base_url")]
        allow_hosts: Vec<String>,
        /// The URL of a `racecheck interleave` proxy in front of the service's database:
        /// each plan then runs 5 rounds of 2 requests whose reads it interleaves.
        #[arg(long, value_name = "URL", requires = "base_url")]
        interleave: Option<String>,
        /// Start the proxy at the --interleave address for this database (`http://127.0.0.1:8000`)
        /// while the audit runs, instead of using one already running.
        #[arg(long, value_name = "URL", requires = "interleave")]
        interleave_upstream: Option<String>,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
        #[arg(long, value_enum, default_value = "low")]
        fail_on: Severity,
        #[arg(long, short)]
        output: Option<PathBuf>,
        #[command(flatten)]
        config: ConfigArgs,
        #[command(flatten)]
        view: View,
    },
    /// Check an OpenAPI document (3.0/3.1, YAML or JSON) for writes that leave concurrent
    /// clients unprotected.
    Spec {
        /// The OpenAPI file; `$ref`s into other files resolve relative to it.
        file: PathBuf,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
        /// Exit 1 when a finding has at least this severity.
        #[arg(long, value_enum, default_value = "low")]
        fail_on: Severity,
        /// Write the report to this file instead of stdout.
        #[arg(long, short)]
        output: Option<PathBuf>,
        #[command(flatten)]
        view: View,
    },
    /// Apply the fixes of source findings to the code. Lists what it would change; `--diff`
    /// prints the change as a unified diff, `--apply` writes it. Only safe fixes unless
    /// `--unsafe-fixes`; a file that changed since it was read is never written.
    Fix {
        /// Files or directories, as for `scan`.
        #[arg(default_value = ".")]
        paths: Vec<PathBuf>,
        /// Only these rules (id or slug); repeat for more.
        #[arg(long = "rule", value_name = "RULE")]
        rules: Vec<String>,
        /// Print the changes as a unified diff (`git apply` takes it) and write nothing.
        #[arg(long, conflicts_with = "apply")]
        diff: bool,
        /// Write the changes to the files.
        #[arg(long)]
        apply: bool,
        /// Also apply fixes that change what clients see (a conflict answered with 409/412).
        #[arg(long)]
        unsafe_fixes: bool,
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Fire synchronized bursts at one endpoint of a running development service and show
    /// lost updates, limit overruns, missing rate limits and 5xx under contention.
    Probe(Box<ProbeArgs>),
    /// Run the interleaving proxy between a service and its DynamoDB-compatible database
    /// (point the service at it with AWS_ENDPOINT_URL_DYNAMODB). It forwards every request
    /// unchanged; while `probe --interleave` or `audit --interleave` arms it for a burst, it
    /// holds the requests' reads of one item until all have arrived, so a race reproduces
    /// with 2 requests whatever its window.
    Interleave {
        /// Where to listen: a loopback address.
        #[arg(long, default_value = "127.0.0.1:8001")]
        listen: String,
        /// The database (`http://127.0.0.1:8000`); loopback unless allowed.
        #[arg(long)]
        upstream: String,
        /// Hosts besides loopback the upstream may be (also RACECHECK_ALLOW_HOSTS).
        #[arg(long = "allow-host", value_name = "HOST")]
        allow_hosts: Vec<String>,
    },
    /// List the rules, or show one rule's documentation.
    Rules {
        /// A rule id (RC101) or slug (lost-update).
        id: Option<String>,
        /// Print the rule table as Markdown (the README's table).
        #[arg(long, conflicts_with = "config")]
        markdown: bool,
        /// Print the format of racecheck.toml (the facts the analysis cannot see), with an
        /// example.
        #[arg(long, conflicts_with = "id")]
        config: bool,
    },
    /// Serve the MCP protocol on stdin/stdout (for AI coding assistants).
    Mcp {
        /// Hosts besides loopback that `probe_endpoint` may target (also RACECHECK_ALLOW_HOSTS).
        #[arg(long = "allow-host", value_name = "HOST")]
        allow_hosts: Vec<String>,
    },
}

#[derive(clap::Args, Debug)]
pub struct ProbeArgs {
    /// A plan file (JSON or YAML); the flags below override its fields.
    #[arg(long)]
    pub plan: Option<PathBuf>,
    /// The endpoint to burst (http://, loopback unless allowed).
    #[arg(long)]
    pub url: Option<String>,
    #[arg(long)]
    pub method: Option<String>,
    /// A request header, `Name: value` (repeat for more). Values of Authorization, Cookie and
    /// *-Token headers are never printed.
    #[arg(long = "header", value_name = "NAME: VALUE")]
    pub headers: Vec<String>,
    /// The JSON body of each request.
    #[arg(long)]
    pub body: Option<String>,
    /// A GET URL that shows the state the target changes.
    #[arg(long)]
    pub observe: Option<String>,
    /// JSON pointer to the number in the observe response (`/value`).
    #[arg(long)]
    pub pointer: Option<String>,
    /// A request sent before each round to restore the state: `METHOD URL` or `URL` (POST).
    #[arg(long)]
    pub reset: Option<String>,
    #[arg(long, value_enum)]
    pub mode: Option<crate::probe::plan::Mode>,
    /// Requests per burst (default 10, cap 50).
    #[arg(long)]
    pub concurrency: Option<u32>,
    /// Bursts (default 3, cap 10).
    #[arg(long)]
    pub rounds: Option<u32>,
    /// Expected change of the observed number per success (default 1).
    #[arg(long)]
    pub expect_delta: Option<f64>,
    /// Successes allowed per round in limit-overrun mode (default 1).
    #[arg(long)]
    pub max_successes: Option<u32>,
    /// Speak HTTP/2 without TLS (h2c, prior knowledge) and use the single-packet technique.
    #[arg(long)]
    pub http2: bool,
    /// The URL of a running `racecheck interleave` proxy the service's database traffic goes
    /// through: armed for each burst, it makes the requests' reads of an item wait for each
    /// other, so a race shows with 2 requests whatever its window.
    #[arg(long, value_name = "URL")]
    pub interleave: Option<String>,
    /// Start the proxy at the --interleave address for this database (`http://127.0.0.1:8000`)
    /// while the probe runs, instead of using one already running.
    #[arg(long, value_name = "URL", requires = "interleave")]
    pub interleave_upstream: Option<String>,
    /// Allow a host besides loopback (repeat for more; also RACECHECK_ALLOW_HOSTS).
    #[arg(long = "allow-host", value_name = "HOST")]
    pub allow_hosts: Vec<String>,
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
    #[arg(long, value_enum, default_value = "low")]
    pub fail_on: Severity,
    #[arg(long, short)]
    pub output: Option<PathBuf>,
}

/// Plan files larger than this are refused.
const MAX_PLAN_BYTES: u64 = 1024 * 1024;

/// The plan from a file and flags.
fn probe_plan(a: &ProbeArgs) -> Result<crate::probe::plan::Plan, String> {
    use crate::probe::plan::{ObserveSpec, Plan, RequestSpec};
    let mut plan = match &a.plan {
        Some(p) => {
            let shown = p.display();
            let bytes = crate::read_limited(p, MAX_PLAN_BYTES)
                .map_err(|e| format!("cannot read the plan `{shown}`: {e}"))?;
            let text = String::from_utf8(bytes)
                .map_err(|_| format!("the plan `{shown}` is not valid UTF-8"))?;
            let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
            if text.trim().is_empty() {
                return Err(format!("the plan `{shown}` is empty; a plan is JSON or YAML with at least `target: {{url: ...}}` (see `racecheck probe --help`)"));
            }
            let doc = crate::spec::doc::Doc::parse(std::sync::Arc::from(shown.to_string()), text)
                .map_err(|e| e.message)?;
            serde_json::from_value::<Plan>(doc.value)
                .map_err(|e| format!("`{}` is not a probe plan: {e}", p.display()))?
        }
        None => Plan {
            target: RequestSpec {
                method: None,
                url: a.url.clone().ok_or("give --plan FILE or --url URL")?,
                headers: Default::default(),
                body: serde_json::Value::Null,
            },
            observe: None,
            create: None,
            reset: None,
            mode: Default::default(),
            concurrency: None,
            rounds: None,
            expect: Default::default(),
            http2: false,
            request_timeout_ms: None,
            max_duration_ms: None,
            interleave: None,
        },
    };
    if let Some(i) = &a.interleave {
        plan.interleave = Some(i.clone());
    }
    if let Some(u) = &a.url {
        plan.target.url = u.clone();
    }
    if let Some(m) = &a.method {
        plan.target.method = Some(m.clone());
    }
    for h in &a.headers {
        let (k, v) = h.split_once(':').ok_or_else(|| {
            format!(
                "--header wants `Name: value`, got `{}`",
                h.split(':').next().unwrap_or("")
            )
        })?;
        plan.target
            .headers
            .insert(k.trim().to_string(), v.trim().to_string());
    }
    if let Some(b) = &a.body {
        plan.target.body =
            serde_json::from_str(b).map_err(|e| format!("--body is not JSON: {e}"))?;
    }
    if let Some(o) = &a.observe {
        plan.observe = Some(ObserveSpec {
            method: None,
            url: o.clone(),
            headers: None,
            pointer: a.pointer.clone().unwrap_or_else(|| "/value".into()),
        });
    } else if let (Some(p), Some(o)) = (&a.pointer, plan.observe.as_mut()) {
        o.pointer = p.clone();
    }
    if let Some(r) = &a.reset {
        let (method, url) = match r.split_once(' ') {
            Some((m, u)) => (Some(m.to_string()), u.to_string()),
            None => (None, r.clone()),
        };
        plan.reset = Some(RequestSpec {
            method,
            url,
            headers: Default::default(),
            body: serde_json::Value::Null,
        });
    }
    if let Some(m) = a.mode {
        plan.mode = m;
    }
    plan.http2 |= a.http2;
    plan.concurrency = a.concurrency.or(plan.concurrency);
    plan.rounds = a.rounds.or(plan.rounds);
    plan.expect.delta_per_success = a.expect_delta.or(plan.expect.delta_per_success);
    plan.expect.max_successes = a.max_successes.or(plan.expect.max_successes);
    Ok(plan)
}

fn run_probe(a: ProbeArgs) -> i32 {
    use std::io::IsTerminal;
    let plan = match probe_plan(&a) {
        Ok(p) => p,
        Err(e) => {
            warn(&e);
            return EXIT_ERROR;
        }
    };
    let policy = crate::probe::safety::Policy::from_env(&a.allow_hosts);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("racecheck: cannot start the runtime: {e}");
            return EXIT_ERROR;
        }
    };
    let bar = std::io::stderr().is_terminal().then(|| {
        let b = indicatif::ProgressBar::new(u64::from(
            plan.rounds.unwrap_or(crate::probe::safety::DEFAULT_ROUNDS),
        ));
        b.set_style(
            indicatif::ProgressStyle::with_template("{spinner} round {pos}/{len} {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b.enable_steady_tick(std::time::Duration::from_millis(120));
        b
    });
    let mut on_round = |done: u32, total: u32, r: &crate::model::ProbeRound| {
        if let Some(b) = &bar {
            b.set_length(u64::from(total));
            b.set_position(u64::from(done));
            b.set_message(format!("{} of {} succeeded", r.successes, r.sent));
        }
    };
    let cancel = tokio_util::sync::CancellationToken::new();
    let report = rt.block_on(async {
        cancel_on_ctrl_c(&cancel);
        let _proxy = proxy(
            plan.interleave.as_deref(),
            a.interleave_upstream.as_deref(),
            &policy,
        )
        .await?;
        Ok::<_, String>(crate::probe::run(&plan, &policy, &mut on_round, &cancel).await)
    });
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let report = match report {
        Ok(r) => r,
        Err(e) => {
            warn(&e);
            return EXIT_ERROR;
        }
    };
    finish(
        report,
        a.format,
        a.fail_on,
        a.output.as_ref(),
        View::default(),
    )
}

pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("RACECHECK_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .try_init();
}

/// An error line on stderr, with the controls a hostile name or answer may hold escaped.
fn warn(message: &dyn std::fmt::Display) {
    eprintln!("racecheck: {}", report::terminal(&message.to_string()));
}

fn emit(text: &str, output: Option<&PathBuf>) -> Result<(), String> {
    match output {
        Some(p) => {
            std::fs::write(p, text).map_err(|e| format!("cannot write `{}`: {e}", p.display()))
        }
        None => {
            let mut out = std::io::stdout().lock();
            match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
                // A reader that stopped early (`| head`) got what it wanted.
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
                Err(e) => Err(format!("cannot write the report to stdout: {e}")),
                Ok(()) => Ok(()),
            }
        }
    }
}

/// A spinner on stderr while a long analysis runs, when stderr is a terminal.
fn busy(what: &str) -> Option<indicatif::ProgressBar> {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let s = indicatif::ProgressBar::new_spinner();
    s.set_message(format!("{what}…"));
    s.enable_steady_tick(std::time::Duration::from_millis(120));
    Some(s)
}

/// Baseline files larger than this are refused.
const MAX_BASELINE_BYTES: u64 = 64 * 1024 * 1024;

/// The fingerprints of a report saved earlier (`--format json`).
fn accepted(path: &std::path::Path) -> Result<std::collections::HashSet<String>, String> {
    let shown = path.display();
    let bytes = crate::read_limited(path, MAX_BASELINE_BYTES)
        .map_err(|e| format!("cannot read the baseline `{shown}`: {e}"))?;
    let saved: Report = serde_json::from_slice(&bytes).map_err(|e| {
        format!("the baseline `{shown}` is not a racecheck JSON report (`--format json`): {e}")
    })?;
    Ok(saved
        .findings
        .iter()
        .map(|f| f.compute_fingerprint())
        .collect())
}

/// Render a report and choose the exit code: errors win over findings.
fn finish(
    mut report: Report,
    format: Format,
    fail_on: Severity,
    output: Option<&PathBuf>,
    view: View,
) -> i32 {
    if let Some(path) = &view.baseline {
        match accepted(path) {
            Ok(set) => {
                report.hide_accepted(&set);
            }
            Err(e) => {
                warn(&e);
                return EXIT_ERROR;
            }
        }
    }
    report.stamp();
    let report = &report;
    let sources = Sources::default();
    let text = if view.statistics {
        report::statistics(report, format)
    } else if view.quiet && format == Format::Text {
        report::diagnostics(report, &sources)
    } else {
        report::render(report, format, &sources)
    };
    // Text goes to a terminal or a log: nothing the scanned code holds may steer it.
    let text = match format {
        Format::Text => report::terminal(&text),
        _ => text.into(),
    };
    if let Err(e) = emit(&text, output) {
        warn(&e);
        return EXIT_ERROR;
    }
    if !report.errors.is_empty() {
        if format != Format::Text || output.is_some() {
            for e in &report.errors {
                warn(&e.message);
            }
        }
        EXIT_ERROR
    } else if report.has_findings_at(fail_on) {
        EXIT_FINDINGS
    } else {
        EXIT_CLEAN
    }
}

/// `--param name=value` pairs.
fn parse_params(raw: &[String]) -> Result<std::collections::BTreeMap<String, String>, String> {
    raw.iter()
        .map(|p| match p.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
            _ => Err(format!("`--param {p}` is not NAME=VALUE")),
        })
        .collect()
}

/// Where `audit` proves its findings.
struct Live<'a> {
    base_url: &'a str,
    params: &'a [String],
    allow_hosts: &'a [String],
    interleave: Option<&'a str>,
    interleave_upstream: Option<&'a str>,
}

/// Ctrl-C cancels `cancel` (within a runtime).
fn cancel_on_ctrl_c(cancel: &tokio_util::sync::CancellationToken) {
    let c = cancel.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            c.cancel();
        }
    });
}

/// The interleaving proxy this command starts, when `--interleave-upstream` asks for one.
async fn proxy(
    at: Option<&str>,
    upstream: Option<&str>,
    policy: &crate::probe::safety::Policy,
) -> Result<Option<crate::probe::interleave::Running>, String> {
    match (at, upstream) {
        (Some(at), Some(up)) => crate::probe::interleave::start(at, up, policy)
            .await
            .map(Some),
        _ => Ok(None),
    }
}

/// Probe every finding's plan against the running service at `base_url`.
fn prove_live(
    report: &mut Report,
    facts: &crate::audit::ServiceFacts,
    live: &Live,
) -> Result<(), String> {
    let params = parse_params(live.params)?;
    let policy = crate::probe::safety::Policy::from_env(live.allow_hosts);
    crate::probe::safety::endpoint(live.base_url, &policy)?;
    let svc = crate::audit::plans::Service::new(live.base_url, &params, facts, live.interleave);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let spinner = busy("probing");
    let cancel = tokio_util::sync::CancellationToken::new();
    rt.block_on(async {
        // Ctrl-C stops after the probe under way; the findings not yet probed say so.
        cancel_on_ctrl_c(&cancel);
        let _proxy = proxy(live.interleave, live.interleave_upstream, &policy).await?;
        crate::audit::prove(
            report,
            &svc,
            &policy,
            &mut |i, n, url| {
                if let Some(s) = &spinner {
                    s.set_message(format!("probing {i}/{n}: {url}"));
                }
            },
            &cancel,
        )
        .await;
        Ok::<(), String>(())
    })?;
    if let Some(s) = spinner {
        s.finish_and_clear();
    }
    Ok(())
}

fn run_interleave(listen: &str, upstream: &str, allow_hosts: &[String]) -> Result<(), String> {
    let listen: std::net::SocketAddr = listen.parse().map_err(|e| {
        format!("--listen `{listen}` is not an address such as 127.0.0.1:8001: {e}")
    })?;
    if !listen.ip().is_loopback() {
        return Err(format!(
            "--listen `{listen}` is not a loopback address: the proxy serves this machine only"
        ));
    }
    let policy = crate::probe::safety::Policy::from_env(allow_hosts);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    rt.block_on(async {
        use crate::probe::interleave;
        let (listener, addr) = interleave::bind(listen, upstream, &policy).await?;
        eprintln!("racecheck: interleaving proxy on http://{listen} for {upstream}");
        interleave::Proxy::default()
            .serve(listener, addr)
            .await
            .map_err(|e| format!("the proxy on {listen} stopped: {e}"))
    })
}

struct FixArgs {
    paths: Vec<PathBuf>,
    rules: Vec<String>,
    diff: bool,
    apply: bool,
    unsafe_fixes: bool,
    config: ConfigArgs,
}

/// A path as `git apply` wants it: relative to the working directory when under it.
fn relative(path: &str) -> String {
    let p = std::path::Path::new(path);
    let shown = match std::env::current_dir() {
        Ok(cwd) if p.is_absolute() => p
            .strip_prefix(&cwd)
            .map(|r| r.display().to_string())
            .unwrap_or_else(|_| path.to_string()),
        _ => path.to_string(),
    };
    shown.trim_start_matches("./").to_string()
}

fn read_source(path: &str) -> Result<String, String> {
    let bytes = crate::read_limited(std::path::Path::new(path), source::files::MAX_FILE_BYTES)
        .map_err(|e| format!("cannot read `{path}`: {e}"))?;
    String::from_utf8(bytes).map_err(|_| format!("`{path}` is not UTF-8"))
}

fn analyze_paths(
    paths: &[PathBuf],
    rules: &[String],
    facts: std::sync::Arc<crate::config::Facts>,
) -> Report {
    let inputs: Vec<Input> = paths.iter().cloned().map(Input::Path).collect();
    let options = Options {
        rules: rules.to_vec(),
        facts,
        ..Options::default()
    };
    source::analyze(&inputs, &options)
}

fn run_fix(a: FixArgs) -> i32 {
    use crate::fix::apply;
    let facts = match a.config.facts(&a.paths) {
        Ok(f) => f,
        Err(e) => {
            warn(&e);
            return EXIT_ERROR;
        }
    };
    let spinner = busy("scanning");
    let report = analyze_paths(&a.paths, &a.rules, facts);
    if let Some(s) = spinner {
        s.finish_and_clear();
    }
    for e in &report.errors {
        warn(&e.message);
    }
    let mut outcome = apply::plan(&report, a.unsafe_fixes, &read_source);
    let mut failed = !report.errors.is_empty();
    if a.diff {
        let mut out = String::new();
        for f in &outcome.files {
            out.push_str(&crate::fix::edit::unified_diff(
                &relative(&f.path),
                &f.before,
                &f.after,
            ));
        }
        if let Err(e) = emit(&out, None) {
            warn(&e);
            return EXIT_ERROR;
        }
    }
    if a.apply && crate::fix::write::write_all(&mut outcome, &a.paths) {
        failed = true;
    }
    let summary = fix_summary(&outcome, &a);
    let summary = report::terminal(&summary);
    // With `--diff`, stdout carries the diff alone.
    if a.diff {
        eprint!("{summary}");
    } else {
        print!("{summary}");
    }
    if failed {
        EXIT_ERROR
    } else if a.diff && !outcome.files.is_empty()
        || !a.diff && !outcome.skipped.is_empty()
        || !a.apply && !a.diff && !outcome.applied.is_empty()
    {
        EXIT_FINDINGS
    } else {
        EXIT_CLEAN
    }
}

fn fix_summary(o: &crate::fix::apply::Outcome, a: &FixArgs) -> String {
    let mut s = String::new();
    let verb = if a.apply { "Applied" } else { "Would apply" };
    let files = o.files.len();
    let _ = writeln!(
        s,
        "{verb} {} fix{} in {files} file{}.",
        o.applied.len(),
        if o.applied.len() == 1 { "" } else { "es" },
        if files == 1 { "" } else { "s" }
    );
    for x in &o.applied {
        let _ = writeln!(s, "  {} {}:{}  {}", x.rule, x.file, x.line, x.what);
    }
    if !o.skipped.is_empty() {
        let _ = writeln!(s, "Not applied ({}):", o.skipped.len());
        for x in &o.skipped {
            let _ = writeln!(s, "  {} {}:{}  {}", x.rule, x.file, x.line, x.what);
        }
    }
    if !a.apply && !a.diff && !o.applied.is_empty() {
        s.push_str("Run with --diff to see the changes or --apply to write them.\n");
    }
    s
}

/// Run the CLI; returns the process exit code.
pub fn run(cli: Cli) -> i32 {
    match cli.command {
        Command::Scan {
            paths,
            format,
            fail_on,
            rules,
            output,
            threads,
            config,
            view,
        } => {
            let facts = match config.facts(&paths) {
                Ok(f) => f,
                Err(e) => {
                    warn(&e);
                    return EXIT_ERROR;
                }
            };
            let inputs: Vec<Input> = paths.into_iter().map(Input::Path).collect();
            let spinner = busy("scanning");
            let options = Options {
                rules,
                threads: threads.map(usize::from),
                facts,
                ..Options::default()
            };
            let report = source::analyze(&inputs, &options);
            if let Some(s) = spinner {
                s.finish_and_clear();
            }
            finish(report, format, fail_on, output.as_ref(), view)
        }
        Command::Audit {
            dir,
            spec,
            base_url,
            params,
            allow_hosts,
            interleave,
            interleave_upstream,
            format,
            fail_on,
            output,
            config,
            view,
        } => {
            let options = match config.facts(std::slice::from_ref(&dir)) {
                Ok(facts) => Options {
                    facts,
                    ..Options::default()
                },
                Err(e) => {
                    warn(&e);
                    return EXIT_ERROR;
                }
            };
            let spinner = busy("auditing");
            let (mut report, facts) =
                crate::audit::audit_with_options(&dir, spec.as_deref(), &options);
            if let Some(s) = spinner {
                s.finish_and_clear();
            }
            if let Some(url) = base_url {
                let live = Live {
                    base_url: &url,
                    params: &params,
                    allow_hosts: &allow_hosts,
                    interleave: interleave.as_deref(),
                    interleave_upstream: interleave_upstream.as_deref(),
                };
                if let Err(e) = prove_live(&mut report, &facts, &live) {
                    warn(&e);
                    return EXIT_ERROR;
                }
            }
            finish(report, format, fail_on, output.as_ref(), view)
        }
        Command::Spec {
            file,
            format,
            fail_on,
            output,
            view,
        } => {
            let report = crate::spec::check(&crate::spec::SpecInput::Path(file));
            finish(report, format, fail_on, output.as_ref(), view)
        }
        Command::Rules {
            id,
            markdown,
            config,
        } => match id {
            None if config => {
                let _ = emit(crate::config::FORMAT, None);
                EXIT_CLEAN
            }
            None if markdown => {
                let _ = emit(&crate::rules::markdown_table(), None);
                EXIT_CLEAN
            }
            None => {
                let mut s = String::new();
                for r in crate::rules::all() {
                    s.push_str(&format!(
                        "{}  {:<30} {:<8} {:<7} {}\n",
                        r.id,
                        r.slug,
                        r.family.as_str(),
                        r.severity.as_str(),
                        r.summary
                    ));
                }
                let _ = emit(&s, None);
                EXIT_CLEAN
            }
            Some(key) => match crate::rules::find(&key) {
                Some(r) => {
                    let _ = emit(&r.doc(), None);
                    EXIT_CLEAN
                }
                None => {
                    eprintln!("racecheck: unknown rule `{key}`; `racecheck rules` lists them");
                    EXIT_ERROR
                }
            },
        },
        Command::Probe(a) => run_probe(*a),
        Command::Interleave {
            listen,
            upstream,
            allow_hosts,
        } => match run_interleave(&listen, &upstream, &allow_hosts) {
            Ok(()) => EXIT_CLEAN,
            Err(e) => {
                warn(&e);
                EXIT_ERROR
            }
        },
        Command::Fix {
            paths,
            rules,
            diff,
            apply,
            unsafe_fixes,
            config,
        } => run_fix(FixArgs {
            paths,
            rules,
            diff,
            apply,
            unsafe_fixes,
            config,
        }),
        Command::Mcp { allow_hosts } => match crate::mcp::serve_stdio(&allow_hosts) {
            Ok(()) => EXIT_CLEAN,
            Err(e) => {
                eprintln!("racecheck: MCP server stopped: {e}");
                EXIT_ERROR
            }
        },
    }
}
