"""`/v1/realtime`: OpenAI's Realtime API (a WebSocket of JSON events) through the router's
Realtime RPC. The caller authenticates as OpenAI accepts it: `Authorization: Bearer <key>`, or
(browsers, which cannot set headers on a WebSocket) the subprotocol
`openai-insecure-api-key.<key>`; `?model=` names the model (Azure's `?deployment=` too; an
ephemeral client secret's session may leave it out: the router opens one of the secret's), the
beta protocol is `OpenAI-Beta: realtime=v1` or the subprotocol `openai-beta.realtime-v1`.

The socket is accepted only once the router opened the upstream one: a refusal before that
(a bad key, a model not allowed or not realtime-capable, every upstream refusing) is a real HTTP
answer with OpenAI's error JSON (the ASGI denial response). After it, events go both ways as
they are; the session ends with the router's close code, after an OpenAI `error` event when it
ended on an error, and the router's call is then read to its end (leaving it would cancel it:
a session the caller closed would count as CANCELLED). The caller leaving tells the router,
which closes the upstream socket.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

from fastapi import APIRouter, WebSocket
from starlette.websockets import WebSocketDisconnect

from clients import ErrorDetails, RouterError, RouterRealtime, http_status_for
from clients.switchboard.v1 import router_service_pb2 as pb

from ._errors import EdgeError, error_body, error_response, router_error_body
from ._headers import route_headers
from ._metadata import checked_header, forwarded_metadata, session_id
from ._state import edge_state

__all__ = ["router"]

log = logging.getLogger(__name__)

router = APIRouter()

_KEY_PROTOCOL = "openai-insecure-api-key."
_BETA_PROTOCOL = "openai-beta.realtime-v1"
_SERVER_ERROR, _TOO_BIG = 1011, 1009
# gRPC's refusal of a message the edge sent (its client's own, or the router's on receiving it).
_SENT_TOO_LARGE = re.compile(r"CLIENT: Sent message larger|SERVER: Received message larger")
_TOO_LARGE = "The session ended: an event you sent was larger than the router takes."
# How long a caller's leaving during the handshake waits for the router's headers (sent at once,
# on a busy machine a moment late) before ending its call anyway, at ~90 bytes of gRPC memory.
_HEADERS_WAIT_S = 0.5
# OpenAI's Realtime events are JSON text frames: a binary one is refused (not relayed) and the
# session goes on. Written from the caller's task beside `_relay`'s writes: the edge's
# websockets-sansio protocol writes each frame whole (http_edge/_websockets.py).
_BINARY_REFUSED = {
    "type": "error",
    "event_id": "event_switchboard_edge",
    "error": error_body(
        "Binary frames are not taken: send each event as a JSON text frame "
        "(audio base64-encoded in `input_audio_buffer.append`).",
        "invalid_request_error",
        "binary_frame",
    )["error"],
}


@router.websocket("/v1/realtime")
async def realtime(websocket: WebSocket) -> None:
    offered: list[str] = list(websocket.scope.get("subprotocols") or ())
    try:
        opening, metadata = _opening(websocket, offered)
    except EdgeError as refused:
        body = error_body(refused.message, refused.type, refused.code, refused.param)
        await websocket.send_denial_response(error_response(refused.status, body))
        return
    session = edge_state(websocket).router().realtime(timeout=None, metadata=metadata)
    async with session:  # leaving it unread cancels the call: the router closes upstream
        try:
            await session.send(pb.RealtimeRequest(open=opening))
            first = await _opened(websocket, session)
        except (RouterError, StopAsyncIteration) as exc:
            await _deny(websocket, exc)
            return
        if first is None:  # the caller left while the upstream handshake was under way
            return
        headers = list(route_headers(first.route).items())
        protocol = "realtime" if "realtime" in offered else None
        await websocket.accept(
            subprotocol=protocol, headers=[(k.encode(), v.encode()) for k, v in headers]
        )
        await _relay(websocket, session)


def _opening(websocket: WebSocket, offered: list[str]) -> tuple[pb.RealtimeOpen, Any]:
    """The open message and the call's metadata, with the key from the subprotocol when the
    `Authorization` header has none."""
    metadata = forwarded_metadata(websocket)
    keys = [p[len(_KEY_PROTOCOL) :] for p in offered if p.startswith(_KEY_PROTOCOL)]
    if keys and not any(name == "authorization" for name, _ in metadata):
        metadata = (
            ("authorization", checked_header("authorization", f"Bearer {keys[0]}")),
            *metadata,
        )
    query = websocket.query_params
    if "call_id" in query:  # a WebRTC call's sideband: not relayed (never a fresh session)
        raise EdgeError(
            400,
            "Attaching to a WebRTC call (`call_id`) is not served here: connect to the "
            "upstream's Realtime API directly for a call's sideband.",
            code="invalid_argument",
            param="call_id",
        )
    beta = websocket.headers.get("openai-beta", "") == "realtime=v1" or _BETA_PROTOCOL in offered
    opening = pb.RealtimeOpen(
        model=query.get("model") or query.get("deployment") or "",
        beta=beta,
    )
    opening.routing.session_id = session_id(websocket)
    return opening, metadata


async def _opened(websocket: WebSocket, session: RouterRealtime) -> pb.RealtimeResponse | None:
    """The router's first message, or None when the caller left before it came: the only
    message a socket not yet accepted can bring after its connect is its disconnect. Waiting
    for the upstream's handshake without looking would hold the key lease (and open an upstream
    socket) for nobody until then. The pending read is ended by interrupting the call, not by
    cancelling its task: that would leak what gRPC's core holds for it (clients/_cancelling.py)."""
    await websocket.receive()  # its `websocket.connect` (`accept` then sends at once)
    left = asyncio.create_task(websocket.receive(), name="switchboard-realtime-opening")
    opened = asyncio.ensure_future(anext(session))
    try:
        await asyncio.wait((opened, left), return_when=asyncio.FIRST_COMPLETED)
    finally:
        left.cancel()
        try:
            if not opened.done():  # the router's headers come before its upstream's handshake
                await session.headed(_HEADERS_WAIT_S)
        finally:
            if not opened.done() and not session.interrupt():  # no read pending yet
                opened.cancel()
            await asyncio.wait((opened, left))
        if not opened.cancelled():  # retrieved: a refusal as the caller left goes to nobody
            opened.exception()
    if left.done() and not left.cancelled():  # its disconnect (read: none follows it)
        log.debug("realtime: the caller left during the upstream handshake (%r)", left.exception())
        return None
    return opened.result()


async def _deny(websocket: WebSocket, exc: RouterError | StopAsyncIteration) -> None:
    """The router's refusal as the HTTP answer to the handshake."""
    if isinstance(exc, RouterError):
        status, body = http_status_for(exc.details), router_error_body(exc.details)
    else:
        status = 502
        body = error_body("The router ended the session before it opened.", "server_error")
    await websocket.send_denial_response(error_response(status, body))


async def _relay(websocket: WebSocket, session: RouterRealtime) -> None:
    """Both directions until the router closes the session (the caller's close included)."""
    caller = asyncio.create_task(_from_caller(websocket, session), name="switchboard-realtime-in")
    code, reason = _SERVER_ERROR, "the router ended the session"
    closed = left = False
    try:
        async for message in session:
            kind = message.WhichOneof("message")
            if kind == "event_json":
                await websocket.send_text(message.event_json)
            elif kind == "close":
                code, reason, closed = message.close.code, message.close.reason, True
                break
    except RouterError as exc:  # the router went away mid-session, or refused an event
        code, reason, error = _call_failed(exc.details)
        event = {"type": "error", "event_id": "event_switchboard_edge", "error": error}
        await _quietly(websocket.send_json(event))
    except WebSocketDisconnect:  # the caller closed while events came: the write failed
        left = True
    finally:
        if not left:
            caller.cancel()
            await asyncio.wait((caller,))
    if left:
        await _after_the_caller_left(session, caller)
        return
    await _quietly(websocket.close(code=code, reason=reason))
    if closed:  # the router's last message: read its call to the end (its request then ends
        await _quietly(_drained(session))  # OK; leaving the call now would cancel it)


def _call_failed(details: ErrorDetails) -> tuple[int, str, dict[str, Any]]:
    """The close code, its reason and the `error` of a session whose call failed: the router's
    failure (1011), but for a caller's event over the router connection's message limit (the
    edge's client's or the router's), which is the caller's to hear, as an event the upstream
    refuses as too large (1009); not the router's answer over the edge's limit (`CLIENT:
    Received`), which is the upstream's."""
    if (
        details.bare
        and details.reason == "MESSAGE_TOO_LARGE"
        and _SENT_TOO_LARGE.search(details.message)
    ):
        log.info("realtime: a caller's event was refused: %s", details.message)
        error = error_body(_TOO_LARGE, "invalid_request_error", "event_too_large")["error"]
        return _TOO_BIG, "message too big", error
    return _SERVER_ERROR, "the router ended the session", router_error_body(details)["error"]


async def _after_the_caller_left(session: RouterRealtime, caller: asyncio.Task[None]) -> None:
    """The caller closed while events came to it: `_from_caller` reads its close (the server
    queued it) and tells the router, whose call is read to its end meanwhile (its request then
    ends OK, as any session the caller closes; unread, its last messages would hold the router
    from ending it). Should `_from_caller` fail instead, the call is left (cancelled)."""
    caller.add_done_callback(lambda task: _failed(task) and session.interrupt())
    try:
        await _quietly(_drained(session))
    finally:
        caller.cancel()
        await asyncio.wait((caller,))


def _failed(task: asyncio.Task[None]) -> bool:
    return not task.cancelled() and task.exception() is not None


async def _drained(session: RouterRealtime) -> None:
    async for _ in session:
        pass


async def _from_caller(websocket: WebSocket, session: RouterRealtime) -> None:
    """The caller's events to the router; its close (or its leaving) as the session's close."""
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            close = pb.RealtimeClose(
                code=int(message.get("code") or 1000), reason=message.get("reason") or ""
            )
            await _quietly(session.send(pb.RealtimeRequest(close=close)))
            return
        text = message.get("text")
        if text is None and message.get("bytes") is not None:
            await _quietly(websocket.send_json(_BINARY_REFUSED))
            continue
        if text is not None:
            try:
                await session.send(pb.RealtimeRequest(event_json=text))
            except RouterError:
                return  # the session ended: `_relay` tells the caller


async def _quietly(sending: Any) -> None:
    """A write to a peer that may already be gone."""
    try:
        await sending
    except (RuntimeError, WebSocketDisconnect, RouterError, OSError) as exc:
        log.debug("realtime: the peer was gone (%s)", type(exc).__name__)
