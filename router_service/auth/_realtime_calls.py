"""What a Realtime session's opening asks: a WebSocket's `open` message, and a WebRTC call's
offer. The offer (RouterService.CreateRealtimeCall, OpenAI's
`POST /v1/realtime/calls`), checked: read by the gate (the model, against the caller's models)
and by the handler that posts it. The SDP stays opaque: only its size is held."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from clients.switchboard.v1.router_service_pb2 import CreateRealtimeCallRequest, RealtimeRequest
from router_service.auth._callers import Caller
from router_service.auth._client_secrets import realtime_session
from router_service.errors import InvalidRequestError
from router_service.guardrails import TextSlot, session_texts

__all__ = [
    "MAX_SDP_BYTES",
    "bind_model",
    "check_realtime_call",
    "check_realtime_open",
    "realtime_call_model",
    "realtime_call_session",
    "realtime_call_texts",
]

MAX_SDP_BYTES = 64 * 1024  # a browser's offer is a few KiB


def check_realtime_open(request: Any) -> None:
    """A Realtime (WebSocket) call's first message is its `open`, naming the model."""
    if request.WhichOneof("message") != "open":
        raise InvalidRequestError(
            "A Realtime call's first message must be its `open`.", code="invalid_message"
        )
    if not request.open.model:
        raise InvalidRequestError("`model` is required.", param="model")


def realtime_call_session(request: Any) -> dict[str, Any]:
    """The offer's session config (empty: none); InvalidRequestError naming `session`."""
    return realtime_session(request.session_json)


def realtime_call_model(request: Any) -> str:
    """The model the offer names: `model`, else its session config's."""
    if request.model:
        return str(request.model)
    model = realtime_call_session(request).get("model")
    return model if isinstance(model, str) else ""


def check_realtime_call(request: Any) -> None:
    """An offer with its SDP (at most 64 KiB), a session config that is an object, a model."""
    if not request.sdp:
        raise InvalidRequestError("`sdp` is required: the caller's SDP offer.", param="sdp")
    if len(request.sdp.encode()) > MAX_SDP_BYTES:
        raise InvalidRequestError(f"sdp: at most {MAX_SDP_BYTES} bytes.", param="sdp")
    if not realtime_call_model(request):
        raise InvalidRequestError(
            "`model` is required (`?model=` or the session's `model`).", param="model"
        )


def realtime_call_texts(request: Any) -> Iterator[TextSlot]:
    """The texts of the offer's session config (its `instructions`), for the gate's screen: a
    redaction is written back to `session_json`."""

    def write(changed: str) -> None:
        request.session_json = changed

    return session_texts(request.session_json, write)


def bind_model(caller: Caller, request: Any) -> None:
    """A Realtime session opened with an ephemeral client secret and no model (no `?model=`):
    of the secret's model, as OpenAI's GA Realtime reads it from the secret (the secret opens
    Realtime only: `authenticate` refused any other method)."""
    assert caller.realtime_grant is not None
    if isinstance(request, CreateRealtimeCallRequest):  # a WebRTC call's offer
        if not request.model:
            request.model = caller.realtime_grant.model
    elif isinstance(request, RealtimeRequest) and request.WhichOneof("message") == "open":
        request.open.model = request.open.model or caller.realtime_grant.model
