"""`POST /v1/completions`: OpenAI's legacy text completions over the router's Chat calls.

As the Responses route does, the edge translates a request onto the chat params the router takes
(`clients.codec._completions`: the prompt is one user message), calls the router as the chat
route does (`ChatCalls`: the same metadata, session and deadline), and reshapes the answer into a
`text_completion`. Several prompts are as many chat calls, made together (`ChatCalls.chat_each`).
A stream is the chat route's stream (`relay_chunks`: HTTP 200 only after the first chunk, then
an error event and `[DONE]` on a failure) with each chunk written as a `text_completion` chunk.
"""

from __future__ import annotations

import uuid
from functools import partial

from fastapi import APIRouter, Request
from starlette.responses import Response

from clients import (
    CompletionChunks,
    completion_to_openai,
    completions_field,
    completions_request_from_openai,
)
from clients.switchboard.v1.chat_pb2 import ChatCompletionChunk

from ._body import parse_request, read_json_object
from ._errors import in_callers_terms
from ._headers import route_headers
from ._json import JSONBytesResponse
from ._openapi import COMPLETIONS
from ._routes_chat import ChatCalls, relay_chunks
from ._sse import data_event
from ._state import edge_state

__all__ = ["router"]

router = APIRouter()


@router.post("/v1/completions", openapi_extra=COMPLETIONS)
async def completions(request: Request) -> Response:
    state = edge_state(request)
    body = await read_json_object(request, state.settings.max_body_bytes)
    parsed = parse_request(completions_request_from_openai, body)
    calls = ChatCalls.of(request, state)
    cmpl_id, created = f"cmpl-{uuid.uuid4().hex}", int(state.clock.now())
    # A refusal of the router's (a guardrail's block…) names the prompt, not chat's messages
    # (of several, `prompt[i]`: `chat_each` says it of the call refused).
    with in_callers_terms(completions_field):
        if parsed.stream:
            chunks = CompletionChunks(parsed, cmpl_id, created)
            return await calls.stream(
                parsed.params, partial(relay_chunks, render=partial(_render, chunks))
            )
        if parsed.more_prompts:
            answers = await calls.chat_each(parsed.each_prompt(), completions_field)
        else:
            answers = [await calls.chat(parsed.params)]
    out = completion_to_openai([a.completion for a in answers], parsed, cmpl_id, created)
    return JSONBytesResponse(out, headers=route_headers(*(a.route for a in answers)))


def _render(chunks: CompletionChunks, chunk: ChatCompletionChunk) -> bytes:
    out = chunks.feed(chunk)
    return b"" if out is None else data_event(out)
