"""`POST /v1/completions`: OpenAI's legacy text completions over the router's Chat calls.

As the Responses route does, the edge translates a request onto the chat params the router takes
(`clients.codec._completions`: the prompt is one user message), sends them with the same
metadata, session and deadline as a chat completion, and reshapes the answer into a
`text_completion`. A stream is the chat route's stream (`sse_stream`, `relay_chunks`: HTTP 200
only after the first chunk, then an error event and `[DONE]` on a failure) with each chunk
written as a `text_completion` chunk.
"""

from __future__ import annotations

import time
import uuid
from functools import partial

from fastapi import APIRouter, Request
from starlette.responses import Response

from clients import CompletionChunks, completion_to_openai, completions_request_from_openai
from clients.switchboard.v1.chat_pb2 import ChatCompletionChunk
from clients.switchboard.v1.router_service_pb2 import ChatRequest, ChatStreamRequest
from clients.switchboard.v1.routing_pb2 import RoutingOptions

from ._body import parse_request, read_json_object
from ._disconnect import unless_disconnected
from ._json import JSONBytesResponse
from ._metadata import forwarded_metadata, route_headers, session_id
from ._openapi import COMPLETIONS
from ._routes_chat import relay_chunks, sse_stream
from ._sse import data_event
from ._state import edge_state

__all__ = ["router"]

router = APIRouter()


@router.post("/v1/completions", openapi_extra=COMPLETIONS)
async def completions(request: Request) -> Response:
    state = edge_state(request)
    body = await read_json_object(request, state.settings.max_body_bytes)
    parsed = parse_request(completions_request_from_openai, body)
    routing = RoutingOptions(session_id=session_id(request))
    metadata = forwarded_metadata(request)
    timeout = state.settings.request_timeout_s
    client = state.router()
    cmpl_id, created = f"cmpl-{uuid.uuid4().hex}", int(time.time())
    if parsed.stream:
        chunks = CompletionChunks(parsed, cmpl_id, created)
        stream_call = ChatStreamRequest(params=parsed.params, routing=routing, batch_chunks=True)
        relay = partial(relay_chunks, render=partial(_render, chunks))
        return await sse_stream(request, client, stream_call, timeout, metadata, relay)
    call = ChatRequest(params=parsed.params, routing=routing)
    answer = await unless_disconnected(
        request, client.chat(call, timeout=timeout, metadata=metadata)
    )
    out = completion_to_openai(answer.completion, parsed, cmpl_id, created)
    return JSONBytesResponse(out, headers=route_headers(answer.route))


def _render(chunks: CompletionChunks, chunk: ChatCompletionChunk) -> bytes:
    out = chunks.feed(chunk)
    return b"" if out is None else data_event(out)
