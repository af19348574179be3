"""`POST /v1/responses`: OpenAI's Responses API (stateless subset) over the router's Chat calls.

The edge holds no routing logic here either: a Responses request is translated into the chat
params the router takes (`clients.codec._responses_request`), sent with the same metadata, session
and deadline as a chat completion, and the answer is translated back (`_responses_output`). Nothing
is stored: `previous_response_id`, `conversation`, background mode and built-in tools are refused
(400, naming the field), and every Response says `"store": false`.
"""

from __future__ import annotations

import logging
import time
import uuid

from fastapi import APIRouter, Request
from starlette.responses import Response

from clients import ResponseIds, response_to_openai, responses_request_from_openai
from clients.switchboard.v1.router_service_pb2 import ChatRequest
from clients.switchboard.v1.routing_pb2 import RoutingOptions

from ._body import parse_request, read_json_object
from ._disconnect import unless_disconnected
from ._json import JSONBytesResponse
from ._metadata import forwarded_metadata, route_headers, session_id
from ._openapi import RESPONSES
from ._state import edge_state

__all__ = ["router"]

logger = logging.getLogger(__name__)

router = APIRouter()


@router.post("/v1/responses", openapi_extra=RESPONSES)
async def responses(request: Request) -> Response:
    state = edge_state(request)
    body = await read_json_object(request, state.settings.max_body_bytes)
    parsed = parse_request(responses_request_from_openai, body)
    routing = RoutingOptions(session_id=session_id(request))
    metadata = forwarded_metadata(request)
    timeout = state.settings.request_timeout_s
    client = state.router()
    ids = ResponseIds(f"resp_{uuid.uuid4().hex}")
    created_at = int(time.time())
    call = ChatRequest(params=parsed.params, routing=routing)
    answer = await unless_disconnected(
        request, client.chat(call, timeout=timeout, metadata=metadata)
    )
    out = response_to_openai(answer.completion, parsed, ids, created_at, int(time.time()))
    return JSONBytesResponse(out, headers=route_headers(answer.route))
