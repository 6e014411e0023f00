use crate::rules::declare_rule;

declare_rule! {
    /// ## What it does
    /// Finds operations whose contract requires a precondition (a required `If-Match` or
    /// version field, or a documented `412`) while the handler that serves them writes without
    /// a condition.
    ///
    /// ## Why is this bad?
    /// Clients send `If-Match` believing stale writes are refused; the handler accepts them and
    /// overwrites newer data. The contract promises a protection the code does not give.
    ///
    /// ## Use instead
    /// Turn the client's validator into the write's condition:
    /// `condition_expression("#version = :expected")` with `:expected` from `If-Match`, and
    /// answer `ConditionalCheckFailed` with 412.
    ///
    /// ## Fix safety
    /// Display-only: the fix is a sketch of a version-checked put answered with 412, in which
    /// `id` and `version` stand in for the key and version attribute the contract does not name.
    pub static RULE = ("RC301", "precondition-not-enforced", Correlation, High,
        "The spec requires `If-Match`/412 but the handler's write is unconditional.");
}
