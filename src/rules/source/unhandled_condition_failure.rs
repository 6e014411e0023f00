use super::{note_step, write_step, Candidate, FlowCtx};
use crate::fix;
use crate::model::FixSafety;
use crate::rules::declare_rule;
use crate::source::facts::{Handling, OpKind};

declare_rule! {
    /// ## What it does
    /// Finds a conditional write (or a transaction) whose failure is not told apart: the
    /// result is `unwrap`ped, `expect`ed, dropped, or turned by `?`/`map_err` into a generic
    /// error, and nothing on the way matches `ConditionalCheckFailed` (or a cancelled
    /// transaction).
    ///
    /// ## Why is this bad?
    /// A failed condition is the normal outcome of losing a race: the client should get a
    /// 409 Conflict or 412 Precondition Failed (or the server should retry a bounded number
    /// of times). As a panic or a 500 it looks like an outage, clients retry blindly, and the
    /// protection the condition gives is wasted.
    ///
    /// ## Example
    /// ```rust,ignore
    /// client.update_item()
    ///     .condition_expression("balance >= :amount")
    ///     .send().await
    ///     .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?;
    /// ```
    ///
    /// ## Use instead
    /// Match the service error: `err.as_service_error().is_some_and(|e|
    /// e.is_conditional_check_failed_exception())` becomes 409/412; everything else stays 500.
    ///
    /// ## Fix safety
    /// Unsafe: a failed condition that used to panic or answer 500 is answered with 409 Conflict,
    /// a status clients see and must handle. Edits map it at `.send().await` when the handler
    /// returns a status or already answers a conflict somewhere.
    pub static RULE = ("RC105", "unhandled-condition-failure", Source, Medium,
        "A conditional write whose `ConditionalCheckFailed` ends as a panic or a 500.");
}

pub fn check(ctx: &FlowCtx, out: &mut Vec<Candidate>) {
    for w in ctx.writes {
        // One finding per request: transaction members are judged through the transaction.
        if w.member.is_some_and(|m| m > 0) {
            continue;
        }
        let op = ctx.op(w.op);
        let conditioned = if op.req.kind == OpKind::TransactWriteItems {
            op.req.members.iter().any(|m| m.condition.is_present())
        } else {
            w.has_condition()
        };
        if !conditioned || op.ccf_handled {
            continue;
        }
        let how = match op.handling {
            Handling::Panics => "panics (unwrap/expect)",
            Handling::Ignored => "is dropped",
            Handling::Propagated if ctx.from_maps_ccf => continue,
            // The caller decides; its own flow judges it.
            Handling::Propagated if op.depth() == 0 && ctx.has_callers => continue,
            Handling::Propagated => "is passed on with `?` as a generic error",
            Handling::Mapped => "is mapped to a generic error",
            Handling::Bound => "is handled without telling a failed condition apart",
        };
        let mut evidence = vec![];
        write_step(
            op,
            format!("conditional {} here", op.req.kind.api_name()),
            &mut evidence,
        );
        note_step(op.local_span(), format!("its error {how}"), &mut evidence);
        let message = format!(
            "the {} has a condition, but its failure {how}: a lost race becomes a 500 instead of 409/412",
            op.req.kind.api_name()
        );
        let name = format!("{}_error_status", fix::ident(op.req.kind.api_name()));
        let f = fix::fix(
            "Answer a failed condition with 409 Conflict",
            "Tell ConditionalCheckFailed (or a cancelled transaction) apart from other errors: \
             it means another request changed the item first.",
            FixSafety::Unsafe,
            fix::render_status_mapper(&name, op.req.kind.api_name(), fix::Conflict::Conflict),
        );
        let check = if op.req.kind == OpKind::TransactWriteItems {
            "is_transaction_canceled_exception"
        } else {
            fix::edit::CCF
        };
        let fixes = vec![ctx.with_edits(w, f, |site| {
            fix::edit::conflict_edits(site, fix::Conflict::Conflict, check)
        })];
        out.push(ctx.candidate(&RULE, w, &[], message, evidence, fixes));
    }
}
