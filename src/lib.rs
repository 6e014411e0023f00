//! racecheck finds, proves and fixes race conditions in Axum services backed by DynamoDB.
//!
//! The engine (`source`, `fix`, `rules`) returns [`model::Report`]s and knows nothing of its
//! callers; `cli` and `mcp` parse arguments, call it, and render with `report`.

pub mod audit;
pub mod cli;
pub mod fix;
pub mod mcp;
pub mod model;
pub mod probe;
pub mod report;
pub mod rules;
pub mod source;
pub mod spec;

/// Run `f`, turning a panic (a bug in racecheck, never the input's fault) into an error
/// message, so one odd function or document cannot take the whole analysis, or the MCP server,
/// down.
pub(crate) fn isolate<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|p| {
        p.downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "unknown panic".into())
    })
}
