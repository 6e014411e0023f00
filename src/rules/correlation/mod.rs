//! Source x contract rules RC301–RC303: Axum routes found in the source matched to the
//! operations of the OpenAPI document (`{id}` and `:id` match any parameter name).

use crate::rules::RuleMeta;

pub mod idempotency_not_enforced;
pub mod precondition_not_enforced;
pub mod undocumented_mutation;

pub static RULES: &[&RuleMeta] = &[
    &precondition_not_enforced::RULE,
    &undocumented_mutation::RULE,
    &idempotency_not_enforced::RULE,
];
