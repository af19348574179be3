"""`POST /v1/chat/completions`: one completion as JSON, or a stream as server-sent events.

A stream commits HTTP 200 only once the router has produced its first chunk (or ended the stream
itself): a failure before the first token is a real HTTP error that OpenAI clients map to their
exceptions and retries. After the commit, a failure is an error event followed by `[DONE]`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from fastapi import APIRouter, Request
from starlette.responses import Response

from clients import (
    CallStream,
    RouterClient,
    RouterError,
    chat_completion_to_openai,
    chat_params_from_openai,
    chunk_to_openai,
)
from clients.switchboard.v1.chat_pb2 import ChatCompletionChunk, ChatParams, Usage
from clients.switchboard.v1.router_service_pb2 import (
    ChatRequest,
    ChatResponse,
    ChatStreamRequest,
    ChatStreamResponse,
    StreamError,
)
from clients.switchboard.v1.routing_pb2 import RouteInfo, RoutingOptions
from router_service.telemetry import calls_apart

from . import _stream_failure as failure
from ._body import parse_request, read_json_object
from ._delta_indexes import DeltaIndexes
from ._disconnect import unless_disconnected
from ._errors import EdgeError, in_callers_terms, router_error_body
from ._headers import route_headers
from ._json import JSONBytesResponse
from ._metadata import Metadata, forwarded_metadata, routing_options
from ._openapi import CHAT_COMPLETIONS
from ._sse import DONE, KEEPALIVE, SSEResponse, data_event, error_event
from ._state import EdgeState, edge_state

__all__ = [
    "ChatCalls",
    "Relay",
    "open_head",
    "read_head",
    "relay_chunks",
    "router",
    "router_error_event",
    "sse_stream",
    "stream_error_event",
    "stream_request",
    "summary_usage",
    "truncated_event",
]

logger = logging.getLogger(__name__)

router = APIRouter()

# The router's stream messages that let the edge commit HTTP 200.
_COMMITTING = frozenset({"chunk", "chunks", "error", "summary"})


@router.post("/v1/chat/completions", openapi_extra=CHAT_COMPLETIONS)
async def chat_completions(request: Request) -> Response:
    state = edge_state(request)
    body = await read_json_object(request, state.settings.max_body_bytes)
    params, stream = parse_request(chat_params_from_openai, body)
    calls = ChatCalls.of(request, state)
    if stream:
        return await calls.stream(params, relay_chunks)
    response = await calls.chat(params)
    return JSONBytesResponse(
        chat_completion_to_openai(response.completion), headers=route_headers(response.route)
    )


@dataclass(frozen=True)
class ChatCalls:
    """One HTTP request's way to the router's Chat and ChatStream calls, the same for every route
    they answer (chat and legacy completions): the caller's session, the forwarded metadata, the
    edge's deadline, and a caller leaving cancels the call."""

    request: Request
    client: RouterClient
    routing: RoutingOptions
    metadata: Metadata
    timeout_s: float

    @classmethod
    def of(cls, request: Request, state: EdgeState) -> ChatCalls:
        """Read after the body: a body's 400 or 413 comes before a header's."""
        routing = routing_options(request)
        metadata = forwarded_metadata(request)
        timeout_s = state.settings.request_timeout_s
        return cls(request, state.router(), routing, metadata, timeout_s)

    async def chat(self, params: ChatParams) -> ChatResponse:
        return await unless_disconnected(self.request, self._chat(params))

    async def chat_each(
        self, each: Sequence[ChatParams], field_of: FieldOfCall | None = None
    ) -> list[ChatResponse]:
        """One Chat call per params, made together and watched for the caller's going as one;
        the first failure is the request's, and the calls still running are cancelled (and
        waited for: nothing outlives the request). Several calls are requests apart in one
        process too (`calls_apart`): none of them is the HTTP request. `field_of`: the field
        of the caller's API a refusal of call `i` names (`in_callers_terms`: the prompt it
        was made of)."""
        chats = [self._chat(p) for p in each]
        if field_of is not None:
            chats = [_said(chat, field_of, i) for i, chat in enumerate(chats)]
        calls = _together(chats)  # started when awaited
        if len(each) == 1:
            return await unless_disconnected(self.request, calls)
        with calls_apart():
            return await unless_disconnected(self.request, calls)

    def _chat(self, params: ChatParams) -> Coroutine[Any, Any, ChatResponse]:
        call = ChatRequest(params=params, routing=self.routing)
        return self.client.chat(call, timeout=self.timeout_s, metadata=self.metadata)

    async def stream(
        self, params: ChatParams, relay: Relay, media_type: str = "text/event-stream"
    ) -> Response:
        """`media_type`: what the stream is when not events (Gemini's JSON array)."""
        call = stream_request(params, self.routing)
        return await sse_stream(
            self.request, self.client, call, self.timeout_s, self.metadata, relay, media_type
        )


def stream_request(params: ChatParams, routing: RoutingOptions) -> ChatStreamRequest:
    """A ChatStream call as the edge makes it: chunks ready together arrive in one message and
    leave in one write, and the route comes on the first chunks (not a message of its own, one
    more the first chunk would wait for on both sides of the hop)."""
    return ChatStreamRequest(
        params=params, routing=routing, batch_chunks=True, route_on_first_message=True
    )


class StreamMessage(Protocol):
    """A router stream's message (ChatStreamResponse, MediaStreamResponse): a `oneof event`."""

    @property
    def route(self) -> RouteInfo: ...

    def WhichOneof(self, name: Any) -> str | None: ...


M = TypeVar("M", bound=StreamMessage)


@dataclass
class Head(Generic[M]):
    """What the router sent before the edge committed: the route, and the committing message."""

    route: RouteInfo | None
    first: M


# What relays a committed stream: the router's remaining messages and the committing one → SSE.
# The field of the caller's API that chat's `param` stands for in a refusal of call `i` of
# several (`completions_field`: `prompt[i]`); None for a field the caller wrote so.
FieldOfCall = Callable[[str | None, int], str | None]
Relay = Callable[[AsyncIterator[ChatStreamResponse], ChatStreamResponse], AsyncIterator[bytes]]


async def sse_stream(
    request: Request,
    client: RouterClient,
    call: ChatStreamRequest,
    timeout_s: float,
    metadata: Metadata,
    relay: Relay,
    media_type: str = "text/event-stream",
) -> Response:
    """Open a router stream, commit HTTP 200 once its head arrived, `relay` the rest as SSE.

    A caller leaving interrupts the router stream (`RouterStream.interrupt`) rather than cancel
    the task reading it: grpc.aio leaks a read cancelled in its await (clients/_cancelling.py).
    """
    stream = client.chat_stream(call, timeout=timeout_s, metadata=metadata)
    events, head = await open_head(request, stream)
    return SSEResponse(
        relay(events, head.first),
        on_close=stream.aclose,
        interrupt=stream.interrupt,
        headers=route_headers(head.route),
        media_type=media_type,
    )


async def open_head(request: Request, stream: CallStream[M]) -> tuple[AsyncIterator[M], Head[M]]:
    """The stream's messages and its head, read unless the caller leaves first (then, or on any
    failure, the stream is closed)."""
    try:
        events = aiter(stream)
        return events, await unless_disconnected(request, read_head(events), stream.interrupt)
    except BaseException:
        await stream.aclose()
        raise


async def read_head(events: AsyncIterator[M]) -> Head[M]:
    """Pull messages up to the first chunk, error or summary; routes and heartbeats go before
    (a chat stream's route may come on the message after its place instead: `first_route`)."""
    route: RouteInfo | None = None
    async for message in events:
        kind = message.WhichOneof("event")
        if kind == "route":
            route = message.route
        elif isinstance(message, ChatStreamResponse) and message.HasField("first_route"):
            route = message.first_route
        if kind in _COMMITTING:
            return Head(route, message)
    raise EdgeError(
        502,
        "The router ended the stream before sending anything.",
        code="stream_truncated",
        type="upstream_error",
    )


def chat_chunk_events() -> Callable[[ChatCompletionChunk], bytes]:
    """One stream's chat chunks as SSE events, their deltas' extension entries numbered."""
    indexes = DeltaIndexes()
    return lambda chunk: data_event(indexes.number(chunk_to_openai(chunk)))


async def relay_chunks(
    events: AsyncIterator[ChatStreamResponse],
    first: ChatStreamResponse,
    render: Callable[[ChatCompletionChunk], bytes] | None = None,
) -> AsyncIterator[bytes]:
    """Router stream messages as SSE bytes, each chunk as `render` writes it (a chat chunk by
    default: `chat_chunk_events`; the legacy completions route writes `text_completion`
    chunks), always ending with `data: [DONE]`.

    The router call itself is cancelled by `SSEResponse.on_close`, on every path.
    """
    render = render or chat_chunk_events()
    message: ChatStreamResponse | None = first
    del first  # held as `message`: until the next arrives
    ended = False  # the router ended the stream itself, with a summary or an error
    try:
        while message is not None:
            kind = message.WhichOneof("event")
            if kind in ("chunk", "chunks"):
                data = (
                    render(message.chunk)
                    if kind == "chunk"
                    else b"".join(render(c) for c in message.chunks.chunks)
                )
                if data:  # a renderer may have nothing to say of a chunk (b"")
                    yield data
            elif kind == "heartbeat":
                yield KEEPALIVE
            elif kind == "error":
                yield stream_error_event(message.error)
                ended = True
                break
            elif kind == "summary":
                ended = True
            # Neither the last message nor its bytes held while the router is quiet.
            message, data = None, b""
            message = await anext(events, None)
        if not ended:
            yield truncated_event()
    except RouterError as exc:
        yield router_error_event(exc)
    except Exception as exc:
        # The response is committed: a bug can only be told as an error event.
        logger.exception("relaying a chat stream failed")
        failure.relay_failed(exc)
        yield error_event(failure.RELAY_FAILED, "server_error", "internal_error")
    yield DONE


_TRUNCATED_EVENT = error_event(failure.TRUNCATED, "stream_truncated", "stream_truncated")


def truncated_event() -> bytes:
    """The event a stream the router did not end itself ends with (a failed stream)."""
    failure.truncated()
    return _TRUNCATED_EVENT


def summary_usage(usage: Usage) -> dict[str, Any]:
    """A stream summary's usage in OpenAI's words, as the chunks would have said it (for the
    entrances that say usage at a stream's end: Anthropic's, Gemini's)."""
    details = usage.prompt_tokens_details
    out: dict[str, Any] = {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "prompt_tokens_details": {
            "cached_tokens": details.cached_tokens,
            "cache_write_tokens": details.cache_write_tokens,
            "cache_write_1h_tokens": details.cache_write_1h_tokens,
        },
    }
    reasoning = usage.completion_tokens_details.reasoning_tokens
    if reasoning:
        out["completion_tokens_details"] = {"reasoning_tokens": reasoning}
    return out


def stream_error_event(error: StreamError) -> bytes:
    """The router's error event, as the caller reads it (a failed stream)."""
    failure.failed_with(error)
    return error_event(error.message, error.type or "upstream_error", error.code or None)


def router_error_event(exc: RouterError) -> bytes:
    """A router call failed mid-stream, as the caller reads it (a failed stream)."""
    failure.failed_by(exc)
    error = router_error_body(exc.details)["error"]
    return error_event(
        str(error.get("message", "")),
        str(error.get("type") or "server_error"),
        error.get("code"),
        error.get("param"),
    )


async def _said(
    call: Coroutine[Any, Any, ChatResponse], field_of: FieldOfCall, index: int
) -> ChatResponse:
    with in_callers_terms(lambda param: field_of(param, index)):
        return await call


async def _together(calls: list[Coroutine[Any, Any, ChatResponse]]) -> list[ChatResponse]:
    tasks = [asyncio.ensure_future(call) for call in calls]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        await _cancelled(tasks)
        raise
    finally:
        # The error raised from here holds this frame (in its traceback), and the frame would
        # hold the tasks, which hold their errors: a cycle that kept every call's frames (the
        # client, its channel) until a garbage collection; a stopped edge's channel stayed open.
        # (No loop variable here either: it would hold the last task.)
        tasks.clear()


async def _cancelled(tasks: Sequence[asyncio.Future[ChatResponse]]) -> None:
    """Cancel `tasks` and wait until they are done (their errors retrieved)."""
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
