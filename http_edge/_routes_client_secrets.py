"""`POST /v1/realtime/client_secrets`: OpenAI's ephemeral Realtime client secrets, through the
router's CreateRealtimeClientSecret (which issues the key for the calling client and checks the
fields: a wrong one is a 400 naming it). The edge only reads the JSON body's shape: what is not
an object or a whole number where one is due is refused here, by its field's name."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from clients.codec import unwritable
from clients.switchboard.v1 import router_service_pb2 as pb

from ._body import read_json_object
from ._errors import EdgeError
from ._json import JSONBytesResponse
from ._metadata import forwarded_metadata
from ._openapi import json_operation
from ._state import edge_state

__all__ = ["router"]

router = APIRouter()

# The request as OpenAI's OpenAPI document has it (the session: the fields the router reads).
_CLIENT_SECRET = json_operation(
    {
        "type": "object",
        "properties": {
            "expires_after": {
                "type": "object",
                "properties": {
                    "anchor": {"enum": ["created_at"]},
                    "seconds": {"type": "integer", "minimum": 10, "maximum": 7200},
                },
            },
            "session": {
                "type": "object",
                "required": ["type", "model"],
                "properties": {
                    "type": {"enum": ["realtime"]},
                    "model": {"type": "string"},
                    "instructions": {"type": "string"},
                },
            },
        },
    }
)


@router.post("/v1/realtime/client_secrets", openapi_extra=_CLIENT_SECRET)
async def create_client_secret(request: Request) -> Response:
    state = edge_state(request)
    body = await read_json_object(request, state.settings.max_body_bytes)
    made = await state.router().create_realtime_client_secret(
        _secret_request(body),
        timeout=state.settings.request_timeout_s,
        metadata=forwarded_metadata(request),
    )
    return JSONBytesResponse(
        {
            "value": made.value,
            "expires_at": made.expires_at_unix,
            "session": orjson.loads(made.session_json),
        }
    )


def _secret_request(body: dict[str, Any]) -> pb.CreateRealtimeClientSecretRequest:
    call = pb.CreateRealtimeClientSecretRequest()
    expires = body.get("expires_after")
    if expires is not None:
        if not isinstance(expires, dict):
            raise _bad("expires_after must be an object.", "expires_after")
        seconds = expires.get("seconds")
        if seconds is not None:
            if not isinstance(seconds, int) or isinstance(seconds, bool):
                raise _bad("expires_after.seconds must be an integer.", "expires_after.seconds")
            # Out of int32's range: the router's bounds say what it must be.
            call.expires_after_s = max(-(2**31), min(seconds, 2**31 - 1))
        anchor = expires.get("anchor")
        if anchor is not None and not isinstance(anchor, str):
            raise _bad("expires_after.anchor must be `created_at`.", "expires_after.anchor")
        call.expires_after_anchor = anchor or ""
    session = body.get("session")
    if session is not None:
        if not isinstance(session, dict):
            raise _bad("session must be an object.", "session")
        try:  # how deep it may nest where it goes on is the router's to say
            call.session_json = orjson.dumps(session).decode()
        except orjson.JSONEncodeError as exc:  # nested deeper than JSON is written
            raise _bad(f"Invalid value for 'session': {unwritable(exc)}.", "session") from None
    return call


def _bad(message: str, param: str) -> EdgeError:
    return EdgeError(400, message, code="invalid_value", param=param)
