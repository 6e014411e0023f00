use crate::rules::declare_rule;

declare_rule! {
    /// ## What it does
    /// Finds mutating Axum routes (POST, PUT, PATCH, DELETE) that have no operation in the
    /// OpenAPI document.
    ///
    /// ## Why is this bad?
    /// What is not in the contract is not reviewed for preconditions, conflict responses,
    /// idempotency or authentication — and clients generated from the spec cannot call it
    /// correctly.
    ///
    /// ## Use instead
    /// Document the operation (racecheck's contract rules then check it), or remove the route.
    ///
    /// ## Fix safety
    /// Display-only: the fix is a sketch of the `paths` entry (a summary and a placeholder `200`)
    /// to complete by hand; documenting the route changes no behaviour.
    pub static RULE = ("RC302", "undocumented-mutation", Correlation, Medium,
        "A mutating Axum route with no operation in the spec.");
}
