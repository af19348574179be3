"""The messages a Realtime session's relay tells its caller: OpenAI Realtime `error` events
(with ids of the router's own) and the session's close."""

from __future__ import annotations

import itertools

import orjson

from clients.switchboard.v1 import router_service_pb2 as pb

__all__ = ["close_message", "error_event", "event_message"]

_event_ids = itertools.count(1)


def error_event(
    kind: str,
    code: str | None,
    message: str,
    param: str | None = None,
    event_id: str | None = None,
) -> str:
    """An OpenAI Realtime `error` event; `param`: the caller's field it is about; `event_id`:
    the caller's event it is about (OpenAI's `error.event_id`)."""
    error = {"type": kind, "code": code or None, "message": message, "param": param}
    if event_id is not None:
        error["event_id"] = event_id
    event = {"type": "error", "event_id": f"event_switchboard_{next(_event_ids)}", "error": error}
    return orjson.dumps(event).decode()


def event_message(event_json: str) -> pb.RealtimeResponse:
    return pb.RealtimeResponse(event_json=event_json)


def close_message(code: int, reason: str) -> pb.RealtimeResponse:
    return pb.RealtimeResponse(close=pb.RealtimeClose(code=code, reason=reason))
