//! racecheck finds, proves and fixes race conditions in Axum services backed by DynamoDB.
//!
//! The engine (`source`, `fix`, `rules`) returns [`model::Report`]s and knows nothing of its
//! callers; `cli` and `mcp` parse arguments, call it, and render with `report`.

pub mod cli;
pub mod fix;
pub mod mcp;
pub mod model;
pub mod report;
pub mod rules;
pub mod source;
pub mod spec;
