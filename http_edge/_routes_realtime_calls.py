"""`POST /v1/realtime/calls`: OpenAI's Realtime API over WebRTC, through the router's
CreateRealtimeCall. The caller's SDP offer comes as the raw body (`Content-Type:
application/sdp`, as a browser sends it) or as a form with the fields `sdp` and `session` (the
session config, JSON; as OpenAI's SDKs send it); `?model=` names the model (else the session's,
else an ephemeral client secret's). The answer is `201` with the upstream's SDP answer
(`application/sdp`) and `Location: /v1/realtime/calls/{call_id}`: media then flows between the
caller and the upstream. `POST /v1/realtime/calls/{call_id}/hangup` ends the call, through the
router (HangupRealtimeCall), from any replica.

The SDP is opaque here: only its size is held (64 KiB; 413 past it)."""

from __future__ import annotations

from urllib.parse import quote

import orjson
from fastapi import APIRouter, Request
from starlette.datastructures import UploadFile
from starlette.responses import Response

from clients.codec import json_problem
from clients.switchboard.v1 import router_service_pb2 as pb

from ._body import read_body, without_bom
from ._errors import EdgeError
from ._form import parse_whole_form
from ._headers import route_headers
from ._metadata import forwarded_metadata, session_id
from ._openapi import ERRORS
from ._state import edge_state

__all__ = ["router"]

router = APIRouter()

MAX_SDP_BYTES = 64 * 1024
_MAX_SESSION_BYTES = 64 * 1024
_MAX_FORM_BYTES = MAX_SDP_BYTES + _MAX_SESSION_BYTES + 4096  # the two parts and their headers

# The request as OpenAI's OpenAPI document has it (both bodies), and the answer.
_CALL = {
    "requestBody": {
        "required": True,
        "content": {
            "application/sdp": {"schema": {"type": "string"}},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["sdp"],
                    "properties": {"sdp": {"type": "string"}, "session": {"type": "object"}},
                }
            },
        },
    },
    "responses": {"201": {"description": "The SDP answer; `Location` names the call."}},
}


@router.post("/v1/realtime/calls", status_code=201, responses=ERRORS, openapi_extra=_CALL)
async def create_call(request: Request) -> Response:
    state = edge_state(request)
    sdp, session_json = await _offer(request)
    call = pb.CreateRealtimeCallRequest(
        model=request.query_params.get("model", ""), sdp=sdp, session_json=session_json
    )
    call.routing.session_id = session_id(request)
    made = await state.router().create_realtime_call(
        call, timeout=state.settings.request_timeout_s, metadata=forwarded_metadata(request)
    )
    headers = route_headers(made.route)
    headers["location"] = f"/v1/realtime/calls/{quote(made.call_id, safe='')}"
    return Response(made.sdp, status_code=201, media_type="application/sdp", headers=headers)


_CALL_ID = {"name": "call_id", "in": "path", "required": True, "schema": {"type": "string"}}


@router.post(
    "/v1/realtime/calls/{call_id}/hangup",
    responses=ERRORS,
    openapi_extra={"parameters": [_CALL_ID]},
)
async def hangup_call(request: Request) -> Response:
    state = edge_state(request)
    await state.router().hangup_realtime_call(
        request.path_params["call_id"],
        timeout=state.settings.request_timeout_s,
        metadata=forwarded_metadata(request),
    )
    return Response(status_code=200)


async def _offer(request: Request) -> tuple[str, str]:
    """(the SDP offer, the session config as JSON or "") of either body."""
    kind = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if kind == "application/sdp":
        return _sdp(await read_body(request, MAX_SDP_BYTES)), ""
    if kind != "multipart/form-data":
        raise EdgeError(
            400,
            "Send the SDP offer as application/sdp, or multipart/form-data with `sdp` and "
            "`session`.",
            code="invalid_content_type",
        )
    raw = await read_body(request, _MAX_FORM_BYTES)
    form = await parse_whole_form(
        request, raw, max_files=2, max_fields=4, max_part_size=_MAX_FORM_BYTES
    )
    try:
        parts = {name: await _text(value) for name, value in form.multi_items()}
    finally:
        await form.close()
    if "sdp" not in parts:
        raise EdgeError(400, "`sdp` is required: the SDP offer.", code="invalid_form", param="sdp")
    return _sdp(parts["sdp"]), _session(parts.get("session"))


async def _text(value: str | UploadFile) -> bytes:
    return value.encode() if isinstance(value, str) else await value.read()


def _sdp(raw: bytes) -> str:
    if len(raw) > MAX_SDP_BYTES:
        message = f"The SDP offer is larger than the limit of {MAX_SDP_BYTES} bytes."
        raise EdgeError(413, message, code="request_too_large", param="sdp")
    if not raw.strip():
        raise EdgeError(400, "The SDP offer is empty.", code="invalid_value", param="sdp")
    try:
        return raw.decode()
    except UnicodeDecodeError:
        message = "The SDP offer is not UTF-8."
        raise EdgeError(400, message, code="invalid_value", param="sdp") from None


def _session(raw: bytes | None) -> str:
    """The session part, checked to be a JSON object (the router reads its fields)."""
    if raw is None:
        return ""
    if len(raw) > _MAX_SESSION_BYTES:
        message = f"The session is larger than the limit of {_MAX_SESSION_BYTES} bytes."
        raise EdgeError(413, message, code="request_too_large", param="session")
    raw = without_bom(raw)
    try:
        session = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        message = f"session is not valid JSON: {json_problem(raw, exc)}"
        raise EdgeError(400, message, code="invalid_value", param="session") from None
    if not isinstance(session, dict):
        raise EdgeError(
            400, "session must be a JSON object.", code="invalid_value", param="session"
        )
    return raw.decode()
