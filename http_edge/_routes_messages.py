"""Anthropic's Messages API at the edge: `POST /v1/messages` and `/v1/messages/count_tokens`.

Translation only, as `/v1/chat/completions` is: the body becomes the same chat request proto
(`clients.codec.anthropic`), the router routes it as any chat (any deployment of the model's
group may answer, whatever its kind), and the answer goes back as Anthropic's message or its
named SSE events. The caller's key comes in `x-api-key` (Anthropic's SDKs, Claude Code) or in
`Authorization: Bearer`; `anthropic-version` is accepted and not read, and of `anthropic-beta`
only the flags of the server tools passed on (web search, web fetch) go along, with them, to
the Claude deployment that runs them (`clients.codec.anthropic._server_tools.wanted_betas`).

Errors are Anthropic's (`{"type": "error", "error": {"type", "message"}}`) with the status
the edge's one taxonomy gives (`_errors`), but an overloaded router (every key busy, or
unavailable) is Anthropic's 529 `overloaded_error`; an Anthropic upstream's own error comes as
it was sent; what fails before the route runs (unknown sub-path, method) `_errors` says in
Anthropic's shape too, and `_request_id` adds Anthropic's `request-id` header. A stream commits
HTTP 200 as `/v1/chat/completions` does; a failure after that is an `error` event. A stop on a
stop sequence names it (`stop_sequence`) when the upstream said which or the text ends with it.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from clients import (
    RouterError,
    chat_completion_to_openai,
    chunk_to_openai,
    estimate_prompt_tokens,
    http_status_for,
)
from clients.codec import anthropic  # its names imported as first read (clients/_lazy.py)
from clients.switchboard.v1.chat_pb2 import ChatParams
from clients.switchboard.v1.router_service_pb2 import ChatStreamResponse

from . import _stream_failure as failure
from ._body import parse_request, read_json_object
from ._errors import EdgeError, callers_message, router_error_body, router_error_headers
from ._headers import route_headers
from ._json import JSONBytesResponse
from ._metadata import forwarded_metadata, with_api_key
from ._openapi import MESSAGES, MESSAGES_COUNT_TOKENS
from ._routes_chat import ChatCalls, Relay, summary_usage
from ._routes_misc import require_model
from ._sse import named_event
from ._state import edge_state

__all__ = ["count_tokens", "messages", "router"]

logger = logging.getLogger(__name__)

router = APIRouter()

JsonObject = dict[str, Any]

# The reasons the router gives when it, not the caller, is out of room: Anthropic's "overloaded".
_OVERLOADED = frozenset({"NO_CAPACITY"})


@router.post("/v1/messages", openapi_extra=MESSAGES)
async def messages(request: Request) -> Response:
    return await _answered(request, _messages)


@router.post("/v1/messages/count_tokens", openapi_extra=MESSAGES_COUNT_TOKENS)
async def count_tokens(request: Request) -> Response:
    return await _answered(request, _count_tokens)


async def _answered(
    request: Request, endpoint: Callable[[Request], Awaitable[Response]]
) -> Response:
    """The endpoint's answer, or its failure as Anthropic's error response."""
    try:
        return await endpoint(request)
    except Exception as exc:
        status, body, headers = _error_parts(exc)
        return JSONBytesResponse(body, status_code=status, headers=headers)


async def _messages(request: Request) -> Response:
    state = edge_state(request)
    body = await read_json_object(request, state.settings.max_body_bytes)
    betas = request.headers.getlist("anthropic-beta")
    parse = functools.partial(anthropic.messages_request_from_anthropic, betas=betas)
    params, stream = parse_request(parse, body)
    calls = ChatCalls.of(request, state)
    calls = dataclasses.replace(calls, metadata=with_api_key(request, calls.metadata))
    stops = _stop_sequences(params)
    if stream:
        relay = _relay(params.model, stops, estimate_prompt_tokens(params))
        return await calls.stream(params, relay)
    response = await calls.chat(params)
    message = anthropic.message_to_anthropic(chat_completion_to_openai(response.completion), stops)
    return JSONBytesResponse(message, headers=route_headers(response.route))


async def _count_tokens(request: Request) -> Response:
    """The router's own estimate of the prompt (what it counts in tpm windows before the
    upstream reports usage), once the router has taken the caller's key and the model is one
    the caller may name: not the model's tokenizer."""
    state = edge_state(request)
    body = await read_json_object(request, state.settings.max_body_bytes)
    # count_tokens takes no max_tokens; the request it counts would.
    params, _ = parse_request(anthropic.messages_request_from_anthropic, {"max_tokens": 1, **body})
    await require_model(request, params.model, with_api_key(request, forwarded_metadata(request)))
    return JSONBytesResponse({"input_tokens": estimate_prompt_tokens(params)})


def _error_parts(exc: Exception) -> tuple[int, JsonObject, dict[str, str]]:
    """Status, Anthropic's error body and headers for what the edge's taxonomy says of `exc`."""
    if isinstance(exc, EdgeError):
        kind = anthropic.anthropic_error_type(exc.status)
        return exc.status, anthropic.anthropic_error(kind, exc.message), dict(exc.headers or {})
    if isinstance(exc, RouterError):
        details = exc.details
        status, headers = http_status_for(details), router_error_headers(details)
        upstream = details.upstream_error
        if upstream is not None and upstream.get("type") == "error":
            return status, upstream, headers  # an Anthropic upstream's own error
        if details.reason in _OVERLOADED or status == 503:
            status = anthropic.OVERLOADED_STATUS
        message = callers_message(router_error_body(details), "anthropic") or details.message
        return (
            status,
            anthropic.anthropic_error(anthropic.anthropic_error_type(status), message),
            headers,
        )
    logger.error("Exception in the Messages API", exc_info=exc)
    return 500, anthropic.anthropic_error("api_error", "The edge failed to handle the request."), {}


def _events(events: list[JsonObject]) -> bytes:
    return b"".join(named_event(event) for event in events)


def _stop_sequences(params: ChatParams) -> list[str]:
    """The request's `stop_sequences`: what a `stop_sequence` stop names."""
    if params.WhichOneof("stop") == "stop_text":
        return [params.stop_text]
    return list(params.stop_list.values)


def _relay(model: str, stops: list[str], input_tokens: int) -> Relay:
    async def relay(
        events: AsyncIterator[ChatStreamResponse], first: ChatStreamResponse
    ) -> AsyncIterator[bytes]:
        """Router stream messages as Anthropic's events; a stream the router did not end
        itself (with a summary or an error) ends with an `error` event."""
        stream = anthropic.MessageEvents(model, stops, input_tokens)
        message: ChatStreamResponse | None = first
        try:
            while message is not None:
                kind = message.WhichOneof("event")
                if kind in ("chunk", "chunks"):
                    chunks = [message.chunk] if kind == "chunk" else message.chunks.chunks
                    out = [event for c in chunks for event in stream.chunk(chunk_to_openai(c))]
                    if out:
                        yield _events(out)
                elif kind == "heartbeat":
                    yield _events([anthropic.PING])
                elif kind == "error":
                    error = message.error
                    failure.failed_with(error)
                    said = anthropic.anthropic_error_type(failure.status_of(error))
                    yield _events(stream.error(said, error.message))
                    return
                elif kind == "summary":
                    yield _events(stream.finish(summary_usage(message.summary.usage)))
                    return
                message = await anext(events, None)
            failure.truncated()
            yield _events(stream.error("api_error", failure.TRUNCATED))
        except RouterError as exc:
            failure.failed_by(exc)
            _, body, _ = _error_parts(exc)
            yield _events(stream.error(body["error"]["type"], body["error"]["message"]))
        except Exception as exc:
            # The response is committed: a bug can only be told as an error event.
            logger.exception("relaying a Messages API stream failed")
            failure.relay_failed(exc)
            yield _events(stream.error("api_error", failure.RELAY_FAILED))

    return relay
