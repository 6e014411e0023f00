//! Compiles every fix snippet racecheck produces for its fixtures (see
//! `tests/fix_snippets.rs`): a snippet that does not compile against the current
//! `aws-sdk-dynamodb` and `axum` fails the workspace build.
#![allow(dead_code)]

#[rustfmt::skip]
mod generated;
