"""What a request for an ephemeral Realtime client secret asks (RouterService.
CreateRealtimeClientSecret, OpenAI's `POST /v1/realtime/client_secrets`), checked: read by the
gate (the session's model, against the caller's models) and by the handler that issues it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from clients.codec import unwritable
from router_service._tool_choice import check_forced_tool
from router_service.errors import InvalidRequestError

__all__ = ["ClientSecretAsk", "client_secret_ask", "realtime_session"]

# OpenAI's bounds and default of `expires_after.seconds`.
_MIN_S, _MAX_S, _DEFAULT_S = 10, 7200, 600
_MAX_SESSION_BYTES = 64 * 1024  # a secret's is kept in the issued keys' log, once per secret


@dataclass(frozen=True, slots=True)
class ClientSecretAsk:
    model: str
    session: dict[str, Any]  # the session config as asked (`type` "realtime", `model`, ...)
    ttl_s: int


def client_secret_ask(request: Any) -> ClientSecretAsk:
    """The request's session config, model and lifetime; InvalidRequestError naming the field
    that is wrong."""
    seconds = request.expires_after_s if request.HasField("expires_after_s") else _DEFAULT_S
    if not _MIN_S <= seconds <= _MAX_S:
        raise InvalidRequestError(
            f"expires_after.seconds must be between {_MIN_S} and {_MAX_S}.",
            param="expires_after.seconds",
        )
    if request.expires_after_anchor not in ("", "created_at"):
        raise InvalidRequestError(
            "expires_after.anchor must be `created_at`.", param="expires_after.anchor"
        )
    session = realtime_session(request.session_json)
    model = session.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequestError("session.model is required.", param="session.model")
    return ClientSecretAsk(model, {**session, "type": "realtime"}, seconds)


def realtime_session(session_json: str) -> dict[str, Any]:
    """A Realtime session config as JSON (a client secret's, a WebRTC call's; empty: none),
    parsed: an object of `type` "realtime", at most 64 KiB; else InvalidRequestError naming
    `session` or `session.type`."""
    if len(session_json) > _MAX_SESSION_BYTES:
        raise InvalidRequestError("session: at most 64 KiB.", param="session")
    try:
        session = orjson.loads(session_json or "{}")
    except orjson.JSONDecodeError:
        session = None
    if not isinstance(session, dict):
        raise InvalidRequestError("session must be an object.", param="session")
    try:  # as it goes on, one level down: a `session.update` event's, the answer's `session`
        orjson.dumps({"session": session})
    except orjson.JSONEncodeError as exc:  # nested deeper than JSON is written (read: 1024)
        message = f"Invalid value for 'session': {unwritable(exc)}."
        raise InvalidRequestError(message, param="session") from None
    check_forced_tool(session, where="session.")
    if session.get("type", "realtime") != "realtime":
        raise InvalidRequestError(
            "session.type must be `realtime` (transcription sessions are not served).",
            param="session.type",
        )
    return session
