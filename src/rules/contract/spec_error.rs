use crate::rules::declare_rule;

declare_rule! {
    /// ## What it does
    /// Reports an OpenAPI document (or a part of one) that cannot be read: invalid YAML or
    /// JSON, an empty file, a file that is not OpenAPI 3 (Swagger 2.0 included), a structure
    /// OpenAPI 3.0 does not allow, or a `$ref` that points at nothing, loops back to itself
    /// without reaching a definition, names an unreadable file, or is remote (`http://`, not
    /// fetched). The finding carries the file, line and JSON pointer, and the chain of
    /// references followed.
    ///
    /// ## Why is this bad?
    /// What cannot be read cannot be checked: the other contract rules say nothing about it.
    ///
    /// ## Use instead
    /// Fix the document where the finding points; convert Swagger 2.0 with
    /// `npx swagger2openapi`; download remote references and refer to them by relative path.
    ///
    /// ## Fix safety
    /// No fix is offered: the document must be repaired by hand where the finding points.
    pub static RULE = ("RC290", "spec-error", Contract, High,
        "The document cannot be read: bad YAML/JSON, unresolved or cyclic `$ref` chain (with the pointer).");
}
