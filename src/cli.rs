//! The command line: parse arguments, call the engine, render, choose the exit code.

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
    },
    /// List the rules, or show one rule's documentation.
    Rules {
        /// A rule id (RC101) or slug (lost-update).
        id: Option<String>,
        /// Print the rule table as Markdown (the README's table).
        #[arg(long)]
        markdown: bool,
    },
    /// Serve the MCP protocol on stdin/stdout (for AI coding assistants).
    Mcp,
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

fn emit(text: &str, output: Option<&PathBuf>) -> Result<(), String> {
    match output {
        Some(p) => {
            std::fs::write(p, text).map_err(|e| format!("cannot write `{}`: {e}", p.display()))
        }
        None => {
            let mut out = std::io::stdout().lock();
            // A closed pipe (`| head`) is not an error worth a panic.
            let _ = out.write_all(text.as_bytes());
            let _ = out.flush();
            Ok(())
        }
    }
}

/// Render a report and choose the exit code: errors win over findings.
fn finish(report: &Report, format: Format, fail_on: Severity, output: Option<&PathBuf>) -> i32 {
    let text = report::render(report, format, &Sources::default());
    if let Err(e) = emit(&text, output) {
        eprintln!("racecheck: {e}");
        return EXIT_ERROR;
    }
    if !report.errors.is_empty() {
        if format != Format::Text || output.is_some() {
            for e in &report.errors {
                eprintln!("racecheck: {}", e.message);
            }
        }
        EXIT_ERROR
    } else if report.has_findings_at(fail_on) {
        EXIT_FINDINGS
    } else {
        EXIT_CLEAN
    }
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
        } => {
            let inputs: Vec<Input> = paths.into_iter().map(Input::Path).collect();
            let report = source::analyze(&inputs, &Options { rules });
            finish(&report, format, fail_on, output.as_ref())
        }
        Command::Spec {
            file,
            format,
            fail_on,
            output,
        } => {
            let report = crate::spec::check(&crate::spec::SpecInput::Path(file));
            finish(&report, format, fail_on, output.as_ref())
        }
        Command::Rules { id, markdown } => match id {
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
        Command::Mcp => match crate::mcp::serve_stdio() {
            Ok(()) => EXIT_CLEAN,
            Err(e) => {
                eprintln!("racecheck: MCP server stopped: {e}");
                EXIT_ERROR
            }
        },
    }
}
