use crate::rules::declare_rule;

declare_rule! {
    /// ## What it does
    /// Finds operations whose contract promises idempotency that the handler does not keep: an
    /// `Idempotency-Key` header the handler never reads, or a `PUT` whose handler adds to a
    /// stored number (`ADD`, `SET x = x + :d`).
    ///
    /// ## Why is this bad?
    /// Clients and proxies retry idempotent requests freely. A retried charge is charged
    /// twice; a retried `PUT` increments twice.
    ///
    /// ## Use instead
    /// Store each idempotency key with its outcome (a put conditioned on
    /// `attribute_not_exists(#key)`) and replay the outcome for a repeated key; make `PUT` set
    /// the absolute new state, or make the increment a `POST` action with a key.
    ///
    /// ## Fix safety
    /// Display-only: for an unread `Idempotency-Key`, the fix is a sketch of a put that claims
    /// the key, in a table and `key` attribute still to be chosen; for a `PUT` that adds to a
    /// number, it is guidance (store the absolute value, or move the increment to a keyed
    /// `POST`), which changes what clients send and get.
    pub static RULE = ("RC303", "idempotency-not-enforced", Correlation, High,
        "The spec promises idempotency (PUT, `Idempotency-Key`) that the handler does not keep.");
}
