"""OpenAI's Realtime API over WebRTC, answered deterministically (no media is ever sent):

- `POST /v1/realtime/calls`: the SDP offer as the raw body (`application/sdp`) or a form with
  `sdp` and `session` (JSON); the model is `?model=` or the session's. The answer: `201`, a
  canned SDP answer derived from the offer (`sdp_answer`), `Location:
  /v1/realtime/calls/rtc_fake_N`. An offer that does not start with `v=0` is a 400 naming `sdp`.
  The call record's body is `{"sdp": ..., "session": ...}` as received.
- `POST /v1/realtime/calls/{call_id}/hangup`: `200` for a call made with the same key, else
  `404`.
- the sideband, `GET /v1/realtime?call_id=` (`_realtime.py`, the key that made the call; else
  404): a session on the call's model that answers one response at once (`response.done`,
  with usage), as if the browser had asked for it; the call's hangup closes it, and a
  sideband's handshake after the hangup is a 404. `state.hold_sidebands()` holds sidebands
  before their handshake until `release()`.

An offer waits while the test holds answers (`state.hold()`). Scenarios, by key and model as
for chat: an error one refuses the offer (or the hangup) with its status and body
(`Scenario.rate_limited()`, `server_error()`, `invalid_key(style="openai")`).
"""

from __future__ import annotations

import hashlib
import itertools
from typing import Any

import orjson
from aiohttp import web

from ._dialects import OPENAI, bearer
from ._faults import NO_FAULTS, Call, send_json
from ._runtime import runtime_of

__all__ = ["CALLS", "SIDEBANDS", "add_routes", "sdp_answer"]

# call id -> (the key that made it, its model), per app.
CALLS = web.AppKey("realtime_calls", dict[str, tuple[str, str]])
# call id -> its open sideband sockets, which its hangup closes (the call ended).
SIDEBANDS = web.AppKey("realtime_sidebands", dict[str, set[web.WebSocketResponse]])
_ids = itertools.count(1)


def sdp_answer(offer: str) -> str:
    """The fake's SDP answer to `offer`: fixed lines, and the offer's digest (so a test can
    tell which offer an answer answers)."""
    digest = hashlib.sha256(offer.encode()).hexdigest()[:32]
    lines = (
        "v=0",
        "o=- 4227147428 1719357865 IN IP4 127.0.0.1",
        "s=-",
        "t=0 0",
        f"a=x-fake-offer:{digest}",
        "m=audio 9 UDP/TLS/RTP/SAVPF 111",
        "a=setup:active",
        "a=rtpmap:111 opus/48000/2",
        "m=application 9 UDP/DTLS/SCTP webrtc-datachannel",
    )
    return "\r\n".join(lines) + "\r\n"


def _part(value: Any) -> str:
    """A form part's text: aiohttp gives a part with a content type of its own as bytes (or
    as a file, with a filename)."""
    if isinstance(value, web.FileField):
        value = value.file.read()
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode()
    return "" if value is None else str(value)


async def _offer(request: web.Request) -> tuple[str, dict[str, Any]]:
    if request.content_type == "multipart/form-data":
        form = await request.post()
        sdp, session = _part(form.get("sdp")), _part(form.get("session"))
        parsed = orjson.loads(session) if session else {}
        return sdp, parsed if isinstance(parsed, dict) else {}
    return await request.text(), {}


def _begin(request: web.Request, model: str, body: dict[str, Any]) -> Call:
    """The request recorded (its key, model, body and query), with the scenario it takes."""
    state = runtime_of(request).state
    key = bearer(request)
    scenario = state.scenarios.take(key, model)
    record = state.begin_call(
        path=request.path,
        key=key,
        model=model,
        stream=False,
        body=body,
        scenario=scenario,
        headers=dict(request.headers),
    )
    record.query = dict(request.query)
    return Call(request, state, record, scenario or NO_FAULTS, {}, OPENAI)


async def _create(request: web.Request) -> web.StreamResponse:
    sdp, session = await _offer(request)
    model = request.query.get("model") or str(session.get("model") or "")
    call = _begin(request, model, {"sdp": sdp, "session": session})
    try:
        await call.state.gate()  # answers held by the test (FakeUpstreamState.hold)
        if call.scenario.is_error:
            status, body = OPENAI.error_reply(call.scenario)
            return await send_json(call, status, body, "error_status")
        if not sdp.startswith("v=0"):
            error = {"message": "Invalid SDP offer.", "type": "invalid_request_error"}
            error |= {"param": "sdp", "code": "invalid_offer"}
            return await send_json(call, 400, {"error": error}, "bad_request")
        call_id = f"rtc_fake_{next(_ids)}"
        request.app[CALLS][call_id] = (call.record.key, model)
        headers = call.headers() | {"Location": f"/v1/realtime/calls/{call_id}"}
        call.mark(status=201, completed=True, outcome="ok")
        return web.Response(
            status=201, text=sdp_answer(sdp), content_type="application/sdp", headers=headers
        )
    finally:
        call.state.end_call(call.record)


async def _hangup(request: web.Request) -> web.StreamResponse:
    call_id = request.match_info["call_id"]
    made = request.app[CALLS].get(call_id)
    call = _begin(request, made[1] if made is not None else "", {})
    try:
        if call.scenario.is_error:
            status, body = OPENAI.error_reply(call.scenario)
            return await send_json(call, status, body, "error_status")
        if made is None or made[0] != call.record.key:
            error = {"message": f"Call '{call_id}' not found.", "type": "invalid_request_error"}
            return await send_json(call, 404, {"error": error | {"code": None}}, "bad_request")
        del request.app[CALLS][call_id]
        for socket in list(request.app[SIDEBANDS].pop(call_id, ())):
            await socket.close()
        call.mark(status=200, completed=True, outcome="ok")
        return web.Response(status=200, headers=call.headers())
    finally:
        call.state.end_call(call.record)


def add_routes(app: web.Application) -> None:
    app[CALLS] = {}
    app[SIDEBANDS] = {}
    app.router.add_post("/v1/realtime/calls", _create)
    app.router.add_post("/v1/realtime/calls/{call_id}/hangup", _hangup)
