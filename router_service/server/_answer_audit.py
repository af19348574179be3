"""The audit lines the servicers write themselves: what guardrails did to a call's answer (event
`guardrail`), as the request side's (`auth`) says what they did to its request, and an
operator's hand-made change (`audited_change`, event `admin`)."""

from __future__ import annotations

from typing import Literal

import grpc

from router_service.auth import AuditEvent, audit, audited_request_id, current_caller
from router_service.guardrails import AnswerAudit

__all__ = ["answer_audit", "audit_answer", "audited_change", "call_request_id"]


def answer_audit(method: str, grpc_ctx: grpc.aio.ServicerContext, redactions: bool) -> AnswerAudit:
    """The audit line of what guardrails did to a call's answer: a withheld choice always, a
    redaction with `auth.audit: all` (as on the request side)."""
    caller = current_caller()
    client = None if caller is None else caller.name
    return audit_answer(method, grpc_ctx.peer(), client, call_request_id(grpc_ctx), redactions)


def audit_answer(
    method: str, peer: str, client: str | None, request_id: str | None, redactions: bool
) -> AnswerAudit:
    """`answer_audit` of a call made by `client` from `peer` (a batch's line: `batch:<id>`)."""

    def line(outcome: Literal["answer_redacted", "answer_withheld"], reason: str) -> None:
        if outcome == "answer_redacted" and not redactions:
            return
        event = AuditEvent(
            outcome=outcome,
            method=method,
            peer=peer,
            client=client,
            request_id=request_id,
            reason=reason,
            event="guardrail",
        )
        audit(event)

    return line


def call_request_id(grpc_ctx: grpc.aio.ServicerContext) -> str | None:
    """The caller's `x-request-id` of the call `grpc_ctx` serves, as its audit line carries it
    (`audited_request_id`): what an operator greps the edge's and the router's logs for."""
    metadata = grpc_ctx.invocation_metadata() or ()
    return next((audited_request_id(v) for k, v in metadata if k == "x-request-id"), None)


def audited_change(
    call: grpc.aio.ServicerContext,
    method: str,
    reason: str,
    *,
    event: str = "admin",
    key_fingerprint: str | None = None,
    key_label: str | None = None,
) -> None:
    """The audit trail of a hand-made change (whatever `auth.audit` says): who made it (the
    caller's client, address and request id) and what it did (`reason`)."""
    caller = current_caller()
    audit(
        AuditEvent(
            outcome="success",
            method=method,
            peer=call.peer(),
            client=None if caller is None else caller.name,
            key_fingerprint=key_fingerprint,
            key_label=key_label,
            request_id=call_request_id(call),
            reason=reason,
            event=event,
        )
    )
