"""`POST /v1/responses`: OpenAI's Responses API over the router's Chat calls.

The edge holds no routing logic here either: a Responses request is translated into the chat
params the router takes (`clients.codec._responses_request`), sent with the same metadata, session
and deadline as a chat completion, and the answer is translated back (`_responses_output`).
Stored responses (`previous_response_id`, `item_reference`, `store`) and conversations
(`conversation`) are the router's to keep: `_stored` and `_conversation` load what a request
names before it is parsed, and store what it made (`_conversation`: adds it to the conversation).
A background request (`background: true`) is the router's to run (`StartBackgroundResponse`):
the edge answers the queued Response it gets back at once, and the caller polls it by id
(`_routes_stored`); with `stream` it streams the events the router records of it instead
(`_resume`), and with `conversation` the router adds its items once it is answered.
Built-in tools are refused (400, naming the field).

A stream follows the chat route's rule: HTTP 200 is committed only once the router has produced
its first chunk, so a failure before the first token is a real HTTP error (the SDK's typed
exception). After the commit a failure is an `error` event then `response.failed`, as OpenAI ends
a failed Responses stream; no stream ends with `[DONE]` (OpenAI sends none here).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Iterable
from functools import partial
from typing import Any

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from clients import (
    ResponseEventStream,
    ResponseIds,
    ResponsesRequest,
    RouterClient,
    RouterError,
    background_response,
    conversation_inputs,
    input_items_json,
    response_to_openai,
    responses_field,
    responses_request_from_openai,
)
from clients.switchboard.v1.router_service_pb2 import (
    CancelResponseRequest,
    ChatRequest,
    ChatStreamResponse,
    StartBackgroundResponseRequest,
)
from clients.switchboard.v1.routing_pb2 import RoutingOptions
from router_service.clock import Clock

from . import _stream_failure as failure
from ._body import parse_request
from ._conversation import ConversationKeeper, check_inputs, read_responses_input
from ._disconnect import departure_noted, unless_disconnected
from ._errors import EdgeError, client_closed, in_callers_terms, router_error_body
from ._headers import route_headers
from ._json import JSONBytesResponse
from ._metadata import Metadata, routing_options
from ._openapi_responses import RESPONSES
from ._resume import resumed_stream
from ._routes_chat import sse_stream, stream_request
from ._sse import KEEPALIVE, named_event
from ._state import edge_state
from ._stored import Keeper, stored_session

__all__ = ["router"]

logger = logging.getLogger(__name__)

router = APIRouter()


@router.post("/v1/responses", openapi_extra=RESPONSES)
async def responses(request: Request) -> Response:
    """A refusal of the router's chat checks names the Responses field the caller set."""
    with in_callers_terms(responses_field):
        return await _respond(request)


async def _respond(request: Request) -> Response:
    state = edge_state(request)
    timeout = state.settings.request_timeout_s
    client = state.router()
    read = await read_responses_input(request)
    conversation_id, held, metadata = read.conversation_id, read.held, read.metadata
    parsed = parse_request(partial(responses_request_from_openai, history=read.history), read.body)
    if conversation_id is not None:
        check_inputs(parsed, held, read.deleted)
    routing = routing_options(request)
    routing.MergeFrom(parsed.routing)  # its `truncation`
    session = stored_session(routing, parsed, read.history)
    ids = ResponseIds(f"resp_{uuid.uuid4().hex}")
    created_at = int(state.clock.now())
    if parsed.background:
        start = _background(parsed, ids, created_at, routing)
        if conversation_id is not None:  # added to it once answered, by the router
            start.conversation_id = conversation_id
            start.conversation_items_json.extend(conversation_inputs(parsed, ids.response, held))
        with departure_noted(request) as gone:  # not stopped by it: cancelled once started
            started = await client.start_background_response(
                start, timeout=timeout, metadata=metadata
            )
        if parsed.stream:  # its events, from the first: recorded since it started
            return await _started_stream(request, client, ids.response, metadata)
        if gone():  # it left during the start: it has not the id
            await _unreached(request, client, ids.response, metadata)
            raise client_closed()
        return Response(started.response_json.encode(), media_type="application/json")
    keeper = Keeper(client, parsed, metadata, timeout, session)
    adder = None
    if conversation_id is not None:
        adder = ConversationKeeper(client, conversation_id, parsed, held, metadata, timeout)
    if parsed.stream:
        events = ResponseEventStream(parsed, ids, created_at)
        stream_call = stream_request(parsed.params, routing)
        relay = partial(_relay, events=events, keeper=keeper, adder=adder, clock=state.clock)
        return await sse_stream(request, client, stream_call, timeout, metadata, relay)
    call = ChatRequest(params=parsed.params, routing=routing)
    answer = await unless_disconnected(
        request, client.chat(call, timeout=timeout, metadata=metadata)
    )
    out = response_to_openai(answer.completion, parsed, ids, created_at, int(state.clock.now()))
    if adder is not None:  # refused: an error, and nothing is kept of the answer
        await adder.add(out)
    await keeper.keep(out)
    return JSONBytesResponse(out, headers=route_headers(answer.route))


def _background(
    parsed: ResponsesRequest, ids: ResponseIds, created_at: int, routing: RoutingOptions
) -> StartBackgroundResponseRequest:
    """What the router needs to run the request in the background and keep its Response."""
    return StartBackgroundResponseRequest(
        chat=ChatRequest(params=parsed.params, routing=routing),
        response_json=orjson.dumps(background_response(parsed, ids, created_at)).decode(),
        input_items_json=input_items_json(parsed, ids.response),
        conversation_start=parsed.conversation_start,
        stream=parsed.stream,
    )


async def _started_stream(
    request: Request, client: RouterClient, response_id: str, metadata: Metadata
) -> Response:
    """The just started background response's events, from the first. Until the first is sent
    the caller has nothing of it, not even its id: a stream refused then (the client's
    `max_concurrent_streams` reached, the router lost), or a caller that left then (its timeout
    ran out while the start was slow), leaves a response no one can reach (paid for, holding a
    place among the client's background responses, its answer added to a conversation the
    caller thinks it failed to add to; and the SDK's retry of a 429 or of its timeout starts
    another each time). It is cancelled. Once its first event is sent, the caller has its id:
    leaving then, the response runs on (the caller resumes or polls it)."""
    try:
        return await resumed_stream(request, client, response_id, None, metadata, created=True)
    except (RouterError, EdgeError):
        await _unreached(request, client, response_id, metadata)
        raise


async def _unreached(
    request: Request, client: RouterClient, response_id: str, metadata: Metadata
) -> None:
    """Cancel the just started background response its caller never got the id of (its stream
    refused, or the caller gone before it was told): nothing runs on where no one reaches it."""
    cancel = CancelResponseRequest(id=response_id)
    timeout = edge_state(request).settings.request_timeout_s
    try:
        await client.cancel_response(cancel, timeout=timeout, metadata=metadata)
    except RouterError as lost:  # it finished meanwhile, or the router is gone
        logger.warning(
            "background response %s, its id untold, not cancelled: %s", response_id, lost
        )


def _render(events: Iterable[dict[str, Any]]) -> bytes:
    return b"".join(named_event(e) for e in events)


async def _relay(
    messages: AsyncIterator[ChatStreamResponse],
    first: ChatStreamResponse,
    events: ResponseEventStream,
    keeper: Keeper,
    adder: ConversationKeeper | None,
    clock: Clock,
) -> AsyncIterator[bytes]:
    """Router stream messages as Responses events (completed at `clock`'s time); the router call
    is cancelled by `SSEResponse.on_close`, on every path."""
    yield _render(events.start(_model_of(first)))
    message: ChatStreamResponse | None = first
    ended = False  # the router ended the stream itself, with a summary
    try:
        while message is not None:
            kind = message.WhichOneof("event")
            if kind == "chunk":
                yield _render(events.feed(message.chunk))
            elif kind == "chunks":
                yield _render(e for c in message.chunks.chunks for e in events.feed(c))
            elif kind == "heartbeat":
                yield KEEPALIVE
            elif kind == "error":
                error = message.error
                failure.failed_with(error)
                yield _render(events.fail(error.message, error.code or error.type or None))
                return
            elif kind == "summary":
                if message.summary.HasField("usage"):
                    events.usage(message.summary.usage)
                ended = True
            message = await anext(messages, None)
    except RouterError as exc:
        yield _failed(events, exc)
        return
    except Exception as exc:
        # The response is committed: a bug can only be told as an error event.
        logger.exception("relaying a Responses stream failed")
        failure.relay_failed(exc)
        yield _render(events.fail(failure.RELAY_FAILED, "internal_error"))
        return
    if not ended:
        failure.truncated()
        yield _render(events.fail(failure.TRUNCATED, "stream_truncated"))
        return
    closed = _render(events.close())  # the items' done events, whatever comes next
    answered = events.answered(int(clock.now()))
    if adder is not None:  # refused: the stream fails, and nothing is kept of it
        try:
            await adder.add(answered)
        except RouterError as exc:
            yield closed + _failed(events, exc)
            return
    await keeper.keep(answered)  # before the event that says whether it was
    yield closed + _render(events.end(answered))


def _model_of(first: ChatStreamResponse) -> str:
    """The model the stream's first message names (its upstream's), if a chunk: the one its
    Response names throughout, as OpenAI's does; "" for a heartbeat."""
    kind = first.WhichOneof("event")
    if kind == "chunk":
        return first.chunk.model
    return first.chunks.chunks[0].model if kind == "chunks" and first.chunks.chunks else ""


def _failed(events: ResponseEventStream, exc: RouterError) -> bytes:
    failure.failed_by(exc)
    body = router_error_body(exc.details)["error"]
    code, param = body.get("code") or body.get("type"), body.get("param")
    return _render(events.fail(str(body.get("message", "")), code, param))
