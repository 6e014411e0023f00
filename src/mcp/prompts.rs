//! MCP prompts: the workflows an assistant runs with racecheck's tools, as messages it can
//! follow. `fix-races` works on source, `harden-api` on the contract first, then the source.

use rmcp::model::{GetPromptResult, Prompt, PromptArgument, PromptMessage, Role};

pub const FIX_RACES: &str = "fix-races";
pub const HARDEN_API: &str = "harden-api";

pub fn list() -> Vec<Prompt> {
    vec![
        Prompt::new(
            FIX_RACES,
            Some(
                "Find the race conditions in a service's Rust code, explain them, fix them and \
                 check that the fixes removed them.",
            ),
            Some(vec![PromptArgument::new("path")
                .with_description("The crate, workspace or file to check (default: `.`)")
                .with_required(false)]),
        ),
        Prompt::new(
            HARDEN_API,
            Some(
                "Harden a service's API against concurrent clients: its OpenAPI document first \
                 (conflict responses, If-Match, idempotency keys, rate limits), then the code \
                 that must keep those promises.",
            ),
            Some(vec![
                PromptArgument::new("spec")
                    .with_description("The OpenAPI document (YAML or JSON)")
                    .with_required(true),
                PromptArgument::new("path")
                    .with_description("The service's source directory (default: `.`)")
                    .with_required(false),
            ]),
        ),
    ]
}

/// The prompt's messages with its arguments filled in; an unknown name or a missing
/// required argument is refused by name.
pub fn get(
    name: &str,
    args: &serde_json::Map<String, serde_json::Value>,
) -> Result<GetPromptResult, String> {
    let arg = |k: &str| args.get(k).and_then(|v| v.as_str()).map(str::to_string);
    let path = arg("path").unwrap_or_else(|| ".".into());
    let text = match name {
        FIX_RACES => format!(
            "Fix the race conditions in `{path}` with racecheck's tools.\n\
             1. Call `analyze_source` with `path: \"{path}\"`. Findings come most serious \
             first; page with `cursor` if the answer says more are left.\n\
             2. For each finding, read the evidence (read, check, write) in the code and say \
             in one sentence what two concurrent requests do wrong. Use `explain_rule` for a \
             rule you do not know.\n\
             3. Call `suggest_fix` with the finding's `fingerprint` as `id`. When a fix has \
             `edits`, apply them as given (its `diff` shows them); otherwise adapt its snippet \
             to the handler's own code, following `edit_note`: keep every \
             condition the write already has, use the attribute types the code uses, and map \
             `ConditionalCheckFailed` to 409 Conflict (412 for a version from If-Match) in the \
             handler's error type. Apply `safe` fixes; ask before `unsafe` ones, which change \
             what clients see; adapt `display-only` ones by hand, filling in what they say is \
             unknown.\n\
             4. Build the crate, then call `analyze_source` again: the finding must be gone \
             and no new one may appear. If a running development service is available, \
             `probe_endpoint` can confirm a lost update or an overrun before and its absence \
             after.\n\
             5. Report what you changed per finding, and any finding you judged a false alarm \
             and why (suppress it with `// racecheck: ignore[RULE] reason` only then)."
        ),
        HARDEN_API => {
            let spec = arg("spec").ok_or_else(|| {
                format!(
                    "the prompt `{HARDEN_API}` needs the argument `spec` (the OpenAPI document)"
                )
            })?;
            format!(
                "Harden the API described by `{spec}` (code in `{path}`) against concurrent \
                 clients with racecheck's tools.\n\
                 1. Call `validate_openapi` with `path: \"{spec}\"`. Fix RC290 (the document \
                 does not load) first.\n\
                 2. For each write operation, apply the contract fixes it returns: a 409/412 \
                 response, a required `If-Match` and an `ETag` for updates, an \
                 `Idempotency-Key` for creates, a 429 and a security scheme. Reuse the \
                 document's components.\n\
                 3. Call `audit_service` with `path: \"{path}\"` and `spec: \"{spec}\"`: it \
                 shows where the code does not keep what the document now promises (RC301-RC303) \
                 and the source races on each operation.\n\
                 4. Fix the code as the findings say (keep existing conditions; answer a failed \
                 condition with the status the document promises), rebuild, and run \
                 `audit_service` again until the races and RC301-RC303 are gone.\n\
                 5. Report the document changes and the code changes per operation."
            )
        }
        other => {
            return Err(format!(
                "no prompt `{other}`; the prompts are `{FIX_RACES}` and `{HARDEN_API}`"
            ))
        }
    };
    Ok(
        GetPromptResult::new(vec![PromptMessage::new_text(Role::User, text)]).with_description(
            list()
                .into_iter()
                .find(|p| p.name == name)
                .and_then(|p| p.description)
                .unwrap_or_default(),
        ),
    )
}
