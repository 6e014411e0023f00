//! The finding model shared by every kind of evidence, the CLI and the MCP server.
//!
//! Everything here derives `JsonSchema` so the MCP tools can publish it as their output
//! schema. Optional fields are left out of `required` rather than typed `["T", "null"]`, and
//! integers carry no `format`: both break some MCP clients (see [`portable`]).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// How bad a finding is if it is real.
#[derive(
    Serialize,
    Deserialize,
    JsonSchema,
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

/// How sure racecheck is that the finding is real.
#[derive(
    Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash,
)]
#[serde(rename_all = "lowercase")]
pub enum Confidence {
    Low,
    Medium,
    High,
}

impl Confidence {
    pub fn as_str(self) -> &'static str {
        match self {
            Confidence::Low => "low",
            Confidence::Medium => "medium",
            Confidence::High => "high",
        }
    }
}

/// Where a finding is: a span in a file (1-based lines and columns).
#[derive(
    Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash,
)]
#[schemars(transform = portable)]
pub struct Location {
    pub file: String,
    pub line: u32,
    pub column: u32,
    pub end_line: u32,
    pub end_column: u32,
    /// For findings in an OpenAPI document: the JSON pointer (`#/paths/~1items~1{id}/put`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub pointer: Option<String>,
}

/// What one evidence step shows.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "kebab-case")]
pub enum StepKind {
    /// Data read from the store (or from shared memory).
    Read,
    /// A value computed from read data.
    Compute,
    /// A decision taken on read data.
    Check,
    /// A call that carries the flow into or out of another function.
    Call,
    /// The write the finding is about.
    Write,
    /// Context: a loop, a handler of the error, the route.
    Note,
}

/// One ordered step of the story a finding tells: "read `balance` here", "written back here".
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Eq, Hash)]
#[schemars(transform = portable)]
pub struct EvidenceStep {
    pub kind: StepKind,
    pub file: String,
    pub line: u32,
    pub column: u32,
    pub note: String,
}

/// Whether applying a fix can change what clients observe.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "kebab-case")]
pub enum FixSafety {
    /// Same behaviour for clients, only the race is gone.
    Safe,
    /// Clients can see a difference (a new 409/412, a retry): offered, never applied silently.
    Unsafe,
    /// Guidance only; needs a person to adapt it.
    DisplayOnly,
}

impl FixSafety {
    pub fn as_str(self) -> &'static str {
        match self {
            FixSafety::Safe => "safe",
            FixSafety::Unsafe => "unsafe",
            FixSafety::DisplayOnly => "display-only",
        }
    }
}

/// A suggested fix: what to do, why, and Rust that compiles against `aws-sdk-dynamodb`.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Eq, Hash)]
#[schemars(transform = portable)]
pub struct Fix {
    pub title: String,
    pub explanation: String,
    pub safety: FixSafety,
    /// What to add: a self-contained Rust function for source findings, the YAML or JSON to add
    /// (in the document's own format) for contract findings.
    pub snippet: String,
    /// The edits as a unified diff of the files they change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub diff: Option<String>,
    /// The fix as changes to the user's own files (source findings where the shape allows).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub edits: Vec<Edit>,
    /// Why the fix has no edits, or what its edits leave to do by hand.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub edit_note: Option<String>,
}

/// One change to a file: the text from `line:column` up to (not including) `end_line:end_column`
/// (1-based, columns in characters) becomes `new_text`.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Eq, Hash)]
#[schemars(transform = portable)]
pub struct Edit {
    pub file: String,
    pub line: u32,
    pub column: u32,
    pub end_line: u32,
    pub end_column: u32,
    pub new_text: String,
    /// The text the range held when the edit was made: an edit applies only where it still does.
    #[serde(default)]
    pub old_text: String,
}

/// An entry point that reaches the finding's function: an HTTP route (Axum, actix-web, Rocket,
/// utoipa) or a Lambda handler.
#[derive(
    Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash,
)]
#[schemars(transform = portable)]
pub struct Route {
    /// The HTTP method, or `LAMBDA` for a function a Lambda runtime invokes (its path is empty).
    pub method: String,
    pub path: String,
    /// The handler function the route names.
    pub handler: String,
}

/// One problem found in the service.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Eq)]
#[schemars(transform = portable)]
pub struct Finding {
    /// Rule id, e.g. `RC101`.
    pub rule: String,
    /// Rule slug, e.g. `lost-update`.
    pub slug: String,
    pub severity: Severity,
    pub confidence: Confidence,
    pub message: String,
    pub location: Location,
    /// The function that holds the racy flow (`Type::method` or `module::function`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub function: Option<String>,
    /// The OpenAPI operation (`PUT /items/{id}`), for contract findings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub operation: Option<String>,
    /// Routes whose handlers reach this flow.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<Route>,
    pub evidence: Vec<EvidenceStep>,
    pub fixes: Vec<Fix>,
    /// A stable id: the same while lines move around the finding (rule, file, function or
    /// operation, message). `--baseline` matches findings by it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub fingerprint: String,
    /// What a probe of the running service showed (`audit --base-url`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Proof")]
    pub proof: Option<Proof>,
    /// The fact declared in `racecheck.toml` under which this is not a race: the finding is
    /// then `info`, and counted in `stats.assumed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Assumption")]
    pub assumed: Option<Assumption>,
}

/// A fact the user declared (`racecheck.toml`) that a finding is assumed away by: it stays in
/// the report, at `info`, so the assumption stays visible and can be checked.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Eq)]
#[schemars(transform = portable)]
pub struct Assumption {
    /// What the fact says, and why it makes the flow safe.
    pub fact: String,
    /// The file that declares it, and the line.
    pub file: String,
    pub line: u32,
    /// The severity the finding has without the fact.
    pub severity: Severity,
}

/// How far a finding is proven on the running service.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum ProofStatus {
    /// The probe made the race happen.
    Confirmed,
    /// The plan ran and the race did not show.
    NotReproduced,
    /// No plan could be built or run; `missing` or `detail` says why.
    Untested,
}

impl ProofStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ProofStatus::Confirmed => "confirmed",
            ProofStatus::NotReproduced => "not reproduced",
            ProofStatus::Untested => "untested",
        }
    }
}

/// The evidence a probe adds to a finding.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Eq)]
#[schemars(transform = portable)]
pub struct Proof {
    pub status: ProofStatus,
    /// The numbers seen, what was tried, or why it was not probed.
    pub detail: String,
    /// The probe plan (as `probe --plan` takes it); partial when something is missing.
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    #[schemars(with = "serde_json::Map<String, serde_json::Value>")]
    pub plan: serde_json::Value,
    /// What the plan still needs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing: Vec<String>,
}

impl Finding {
    /// The stable id, computed (FNV-1a, the same in every build).
    pub fn compute_fingerprint(&self) -> String {
        let file = self
            .location
            .file
            .trim_start_matches("./")
            .replace('\\', "/");
        let place = self
            .function
            .as_deref()
            .or(self.operation.as_deref())
            .unwrap_or("");
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for part in [
            self.rule.as_str(),
            file.as_str(),
            place,
            self.message.as_str(),
        ] {
            for b in part.bytes().chain([0u8]) {
                h ^= u64::from(b);
                h = h.wrapping_mul(0x0100_0000_01b3);
            }
        }
        format!("{}-{h:016x}", self.rule)
    }
}

/// Why an input could not be analysed.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorKind {
    NotFound,
    Io,
    NotUtf8,
    TooLarge,
    Parse,
    Invalid,
}

impl ErrorKind {
    /// The kind of a failed read: over a size limit, or any other I/O failure.
    pub fn of_io(e: &std::io::Error) -> ErrorKind {
        if e.kind() == std::io::ErrorKind::FileTooLarge {
            ErrorKind::TooLarge
        } else {
            ErrorKind::Io
        }
    }
}

/// An input that was skipped, and why. A report with errors is never clean.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Eq)]
#[schemars(transform = portable)]
pub struct AnalysisError {
    pub kind: ErrorKind,
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "u32")]
    pub line: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "u32")]
    pub column: Option<u32>,
    pub message: String,
}

impl AnalysisError {
    /// An input that could not be analysed, with no position.
    pub fn new(kind: ErrorKind, path: impl Into<String>, message: impl Into<String>) -> Self {
        AnalysisError {
            kind,
            path: path.into(),
            line: None,
            column: None,
            message: message.into(),
        }
    }
}

/// Counts that say how much was looked at.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq, Eq)]
#[schemars(transform = portable)]
pub struct Stats {
    pub files: u64,
    pub lines: u64,
    pub functions: u64,
    pub routes: u64,
    /// OpenAPI operations checked.
    #[serde(default)]
    pub operations: u64,
    pub dynamodb_operations: u64,
    pub findings: u64,
    pub suppressed: u64,
    /// Findings (counted in `findings`) that a fact declared in `racecheck.toml` lowered to
    /// `info`: each carries `assumed`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub assumed: u64,
    /// Findings hidden because a baseline report accepted them.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub baselined: u64,
    pub errors: u64,
    pub elapsed_ms: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// What one probe round saw.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[schemars(transform = portable)]
pub struct ProbeRound {
    pub round: u32,
    pub sent: u32,
    /// Status code (or `error`) -> count.
    pub statuses: std::collections::BTreeMap<String, u32>,
    /// 2xx answers.
    pub successes: u32,
    /// The observed number before and after the burst.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "f64")]
    pub before: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "f64")]
    pub after: Option<f64>,
    /// Client-side spread of the last-byte release, in microseconds.
    pub release_spread_us: u64,
    pub elapsed_ms: u64,
    /// Some answer carried `RateLimit*`/`Retry-After` headers.
    pub rate_limit_headers: bool,
    /// The first few request errors (timeouts, garbage answers), if any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
    /// What the interleaving proxy forced: reads held together, writes and their outcomes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub interleaving: Vec<String>,
}

/// What a probe did and saw, round by round, and its verdict in one sentence.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[schemars(transform = portable)]
pub struct ProbeSummary {
    /// `METHOD URL` (secrets redacted).
    pub target: String,
    pub mode: String,
    pub rounds: Vec<ProbeRound>,
    pub verdict: String,
}

/// The result of one analysis: the same JSON from the CLI (`--format json`) and from MCP.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[schemars(transform = portable)]
pub struct Report {
    pub findings: Vec<Finding>,
    pub errors: Vec<AnalysisError>,
    pub stats: Stats,
    /// Present for probes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "ProbeSummary")]
    pub probe: Option<ProbeSummary>,
}

impl Report {
    /// A report of nothing but one error.
    pub fn failed(error: AnalysisError) -> Report {
        Report {
            errors: vec![error],
            ..Report::default()
        }
    }

    /// Whether anything at or above `severity` was found.
    /// Give every finding its stable id.
    pub fn stamp(&mut self) {
        for f in &mut self.findings {
            f.fingerprint = f.compute_fingerprint();
        }
    }

    /// Hide the findings whose id is in `accepted`; how many were hidden.
    pub fn hide_accepted(&mut self, accepted: &std::collections::HashSet<String>) -> usize {
        let before = self.findings.len();
        self.findings
            .retain(|f| !accepted.contains(&f.compute_fingerprint()));
        let hidden = before - self.findings.len();
        self.stats.findings = self.findings.len() as u64;
        self.stats.baselined += hidden as u64;
        hidden
    }

    pub fn has_findings_at(&self, severity: Severity) -> bool {
        self.findings.iter().any(|f| f.severity >= severity)
    }
}

/// The order reports list findings in: by file, position, rule.
pub fn sort_findings(findings: &mut [Finding]) {
    fn key(f: &Finding) -> (&str, u32, u32, &str) {
        (
            &f.location.file,
            f.location.line,
            f.location.column,
            &f.rule,
        )
    }
    findings.sort_by(|a, b| key(a).cmp(&key(b)));
}

/// Keeps schemas readable by every MCP client: drops non-standard integer formats and turns
/// `["T", "null"]` type arrays into `T` (optional fields are already left out of `required`).
pub fn portable(schema: &mut schemars::Schema) {
    if let Some(obj) = schema.as_object_mut() {
        let drop_format = obj.get("format").and_then(|f| f.as_str()).is_some_and(|f| {
            f.starts_with("int") || f.starts_with("uint") || f == "float" || f == "double"
        });
        if drop_format {
            obj.remove("format");
        }
        if let Some(serde_json::Value::Array(types)) = obj.get("type") {
            let kept: Vec<_> = types.iter().filter(|t| *t != "null").cloned().collect();
            if kept.len() == 1 {
                obj.insert("type".into(), kept[0].clone());
            }
        }
    }
    schemars::transform::transform_subschemas(&mut portable, schema);
}
