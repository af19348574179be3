"""Who a RouterService call is for (its request context), the chat check every chat-shaped call
passes first and the check of a ReportOutcome's figures: shared by the servicer's handlers
(`_router_servicer`, `_route_methods`, `_responses_servicer`) and the operator's view of clients
(`_clients`)."""

from __future__ import annotations

import math
from typing import Any

import grpc

from clients import chat_params_to_openai
from clients.codec._request import MOST_TOP_LOGPROBS
from clients.codec.gemini import GEMINI_ONLY, checked_carried
from clients.switchboard.v1 import chat_pb2, embeddings_pb2
from clients.switchboard.v1 import router_service_pb2 as pb
from clients.switchboard.v1.routing_pb2 import OUTCOME_RATE_LIMITED
from router_service._tool_choice import check_forced_tool
from router_service.auth import Caller, current_caller
from router_service.auth._bounds import MOST_CALL_TOKENS
from router_service.clock import Clock
from router_service.engine import RequestContext
from router_service.errors import InvalidRequestError
from router_service.providers._reasoning_object import validated
from router_service.sessions import session_key

__all__ = [
    "client_name",
    "deadline_context",
    "owner_name",
    "request_context",
    "validate_chat",
    "validate_embed",
    "validate_report",
]

# The longest latency a ReportOutcome may report: a day, in milliseconds.
_LONGEST_LATENCY_MS = 86_400_000.0


def request_context(
    clock: Clock, model: str, session_id: str, grpc_ctx: grpc.aio.ServicerContext
) -> RequestContext:
    """A call's request context; its session is the caller's `session_id` scoped to the
    calling client and hashed (sessions.session_key)."""
    if not model:
        raise InvalidRequestError("`model` is required.", param="model")
    deadline, timeout_s = _deadline(clock, grpc_ctx)
    client = client_name()
    session = session_key(client, session_id)
    return RequestContext(
        model,
        clock,
        deadline=deadline,
        session_id=session,
        client=client,
        grpc_timeout_s=timeout_s,
    )


def deadline_context(clock: Clock, grpc_ctx: grpc.aio.ServicerContext) -> RequestContext:
    """The context of a call's deadline only, on the router's clock: what a call that is no
    request (ReportOutcome) reads its cancellation by (`RequestContext.cancelled_at_deadline`)."""
    deadline, timeout_s = _deadline(clock, grpc_ctx)
    return RequestContext("", clock, deadline=deadline, grpc_timeout_s=timeout_s)


def _deadline(clock: Clock, grpc_ctx: grpc.aio.ServicerContext) -> tuple[float | None, float]:
    """The call's deadline on `clock` (None: none), and its timeout as it starts (0: none)."""
    remaining = grpc_ctx.time_remaining()
    deadline = None if remaining is None else clock.monotonic() + remaining
    return deadline, remaining or 0.0


def client_name() -> str:
    """Whose sessions and stored responses the current call reaches (`owner_name`)."""
    return owner_name(current_caller())


def owner_name(caller: Caller | None) -> str:
    """Whose sessions and stored responses a call reaches: callers of one client share theirs;
    unauthenticated callers (open mode) share theirs with each other, never with a client's."""
    return "" if caller is None or caller.anonymous else caller.name


def validate_chat(params: chat_pb2.ChatParams) -> dict[str, Any]:
    """Refuse what no upstream body can be written from before any routing work (a plan, a
    lease): the codec that writes every attempt's body is run once here, so it is one rule;
    OpenRouter's `reasoning` object, Google's `extra_body`, which the router reads, and the
    `gemini_only` object a Gemini deployment reads are checked with it. Returns the body
    written (`RequestContext.written`: the first attempt's, when it sends these params)."""
    if not params.messages:
        raise InvalidRequestError("`messages` must contain at least one message.", param="messages")
    if params.HasField("top_logprobs"):
        _check_top_logprobs(params)
    body = chat_params_to_openai(params)
    check_forced_tool(body, legacy=True)
    extra = params.extra_json
    if "reasoning" in extra or "extra_body" in extra:  # the common case: these tests alone
        validated(body)  # reads it only
    if GEMINI_ONLY in extra and body.get(GEMINI_ONLY) is not None:
        # Refused here, not at the Gemini deployment's attempt: else a group answers it from
        # another deployment (which drops it) and refuses it from a Gemini one.
        checked_carried(body[GEMINI_ONLY])
    return body


def _check_top_logprobs(params: chat_pb2.ChatParams) -> None:
    """`top_logprobs` as OpenAI takes it, 0 to 20 and only beside `logprobs: true` (its 400),
    refused before any attempt: else a group answers it from a deployment that refuses it, one
    that drops it, or a Gemini one that asks for no logprobs (`responseLogprobs` unset)."""
    top = params.top_logprobs
    if not 0 <= top <= MOST_TOP_LOGPROBS:
        raise InvalidRequestError(
            f"Invalid value for 'top_logprobs': {top}. It must be between 0 and "
            f"{MOST_TOP_LOGPROBS}.",
            param="top_logprobs",
            code="invalid_value",
        )
    if not params.logprobs:
        raise InvalidRequestError(
            "Invalid value for 'top_logprobs': 'logprobs' must be true when 'top_logprobs' is set.",
            param="top_logprobs",
            code="invalid_value",
        )


def validate_embed(params: embeddings_pb2.EmbeddingParams) -> None:
    """An `input` to embed: given, and not an empty array. OpenAI refuses `[]`; a kind that cuts
    the inputs into calls (Gemini, Cohere, Bedrock, Vertex) would make none and answer a 200
    without a vector, after a lease counted a call on the key."""
    which = params.WhichOneof("input")
    if which is None:
        raise InvalidRequestError("`input` is required.", param="input")
    if which == "text":
        return
    arrays = {"texts": params.texts.values, "tokens": params.tokens.values}
    if not arrays.get(which, params.token_lists.lists):
        raise InvalidRequestError("`input` must not be an empty array.", param="input")


def validate_report(request: pb.ReportOutcomeRequest) -> None:
    """A report feeds shared state (latency averages, token windows, cooldowns that only extend):
    a NaN or a negative number there would stay for everyone, so it is refused. A finite wait
    above cooldowns.retry_after_max_s is capped by the engine like an upstream's."""
    numbers = {"latency_ms": request.latency_ms}
    if request.HasField("retry_after_s"):
        numbers["retry_after_s"] = request.retry_after_s
    for name, value in numbers.items():
        if not math.isfinite(value) or value < 0:
            raise InvalidRequestError(
                f"`{name}` must be a finite number, not negative (got {value!r}).", param=name
            )
    # A latency no call had (seconds sent as nanoseconds) would rank its deployment last on
    # the latency strategy for thousands of calls: the average forgets it a fraction at a time.
    if request.latency_ms > _LONGEST_LATENCY_MS:
        raise InvalidRequestError(
            f"`latency_ms` must be at most {_LONGEST_LATENCY_MS:.0f} (a day).", param="latency_ms"
        )
    if request.too_large_for_tpm and request.outcome != OUTCOME_RATE_LIMITED:
        raise InvalidRequestError(
            "`too_large_for_tpm` goes with OUTCOME_RATE_LIMITED only (a 429 of the key's budget).",
            param="too_large_for_tpm",
        )
    if request.HasField("total_tokens") and request.total_tokens < 0:
        raise InvalidRequestError("`total_tokens` must not be negative.", param="total_tokens")
    # No call's count (a sum over many, a stray int64) would fill the key's per-minute token
    # window, for every caller, until it slides past.
    if request.total_tokens > MOST_CALL_TOKENS:
        raise InvalidRequestError(
            f"`total_tokens` must be at most {MOST_CALL_TOKENS} (one call's).", param="total_tokens"
        )
