"""Converse's stop reasons → OpenAI's finish reasons, or the failure a stop reason stands for.

`stopReason` (Converse's answer, a stream's messageStop): end_turn | tool_use | max_tokens |
stop_sequence | guardrail_intervened | content_filtered | malformed_model_output |
malformed_tool_use | model_context_window_exceeded
(https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_MessageStopEvent.html,
API_runtime_Converse.html). A filter that left nothing written is CONTENT_FILTERED; an output
the model could not form (its structured output, a tool call) has no finish reason that says
so, and is no answer, as pydantic-ai and opencode take it (failed over unary): this
deployment's UNSUPPORTED_INPUT, cooling nothing (the request's schema or tools provoke it: one
caller must not take the deployment out for everyone).
"""

from __future__ import annotations

from typing import Any

from router_service.errors import UpstreamFailure
from router_service.outcomes import Outcome

_FINISH = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "content_filtered": "content_filter",
    "guardrail_intervened": "content_filter",
}
_MALFORMED = frozenset({"malformed_model_output", "malformed_tool_use"})


def filtered(reason: str) -> UpstreamFailure:
    message = f"bedrock withheld the content ({reason})"
    error = {"message": message, "type": "invalid_request_error", "code": "content_filter"}
    return UpstreamFailure(
        Outcome.CONTENT_FILTERED, message, upstream_status=400, upstream_error=error
    )


def finish_reason(stop_reason: Any) -> str | None:
    """OpenAI's finish reason for a stop reason (one Converse adds later: "stop"); an output
    the model could not form raises."""
    if stop_reason in _MALFORMED:
        message = f"bedrock's model gave a malformed answer ({stop_reason})"
        error = {"message": message, "type": "upstream_error", "code": str(stop_reason)}
        raise UpstreamFailure(Outcome.UNSUPPORTED_INPUT, message, upstream_error=error)
    return _FINISH.get(str(stop_reason), "stop") if stop_reason else None
