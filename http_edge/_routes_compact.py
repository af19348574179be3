"""`POST /v1/responses/input_tokens` and `POST /v1/responses/compact`: the Responses API's
token count and conversation compaction, over the router's ListModels and Chat calls.

Both read the body a `POST /v1/responses` takes and load what it names the same way
(`previous_response_id`, `item_reference`, `conversation`: `_stored`, `_conversation`), so they
count and summarise what a real call would send. A count is the router's own estimate
(`clients.estimate_prompt_tokens`, the one its tpm windows and budgets use), once the router has
taken the caller's key and model (`require_model`, a ListModels call: counted in rpm, no
tokens); no upstream is called. A compaction is one routed Chat call (failover, limits, budgets,
guardrails, usage and cost as any), answered as OpenAI's `response.compaction`
(`clients.compacted_response`); nothing is stored.
"""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request
from starlette.responses import Response

from clients import (
    ResponseIds,
    compact_request_from_openai,
    compacted_response,
    input_tokens_of,
)

from ._body import parse_request
from ._conversation import read_responses_input
from ._headers import route_headers
from ._json import JSONBytesResponse
from ._openapi_responses import RESPONSES_COMPACT, RESPONSES_INPUT_TOKENS
from ._routes_chat import ChatCalls
from ._routes_misc import require_model
from ._state import edge_state

__all__ = ["router"]

router = APIRouter()


@router.post("/v1/responses/input_tokens", openapi_extra=RESPONSES_INPUT_TOKENS)
async def input_tokens(request: Request) -> Response:
    read = await read_responses_input(request)
    model, tokens = parse_request(lambda b: input_tokens_of(b, read.history), read.body)
    await require_model(request, model, read.metadata)
    return JSONBytesResponse({"object": "response.input_tokens", "input_tokens": tokens})


@router.post("/v1/responses/compact", openapi_extra=RESPONSES_COMPACT)
async def compact(request: Request) -> Response:
    read = await read_responses_input(request)
    parsed = parse_request(lambda b: compact_request_from_openai(b, read.history), read.body)
    state = edge_state(request)
    answer = await ChatCalls.of(request, state).chat(parsed.params)
    ids, created_at = ResponseIds(f"resp_{uuid.uuid4().hex}"), int(state.clock.now())
    out = compacted_response(parsed, answer.completion, ids, created_at)
    return JSONBytesResponse(out, headers=route_headers(answer.route))
