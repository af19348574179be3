"""OpenAI's Realtime API (a WebSocket of JSON events) at OpenAI's path (`/v1/realtime?model=`,
`Authorization: Bearer`) and Azure OpenAI's preview one (`/openai/realtime?api-version=
&deployment=`, `api-key`), answered deterministically:

- `session.created` on connect; `session.update` → `session.updated` (a voice OpenAI has not:
  an `error` naming the event, `code` `invalid_value`);
- `conversation.item.create` → `conversation.item.added` (the beta protocol,
  `OpenAI-Beta: realtime=v1`: `conversation.item.created`); the item's text is remembered;
- `response.create` → `response.created`, the answer's text a word a delta
  (`response.output_text.delta`, beta `response.text.delta`), with `audio` in its modalities
  the spoken text's bytes too (`response.output_audio.delta`, beta `response.audio.delta`),
  then `response.done` with usage. The answer: the scenario's `content`, else
  "You said: <the last item's text>" ("Hello from the fake realtime model" before any);
- any other event but `input_audio_buffer.*`: an `error` event.

Scenarios, by key and model as for chat: an error one refuses the handshake with its status
and body (`Scenario.rate_limited()`, `invalid_key(style="openai")`, `server_error()`);
`reset_after_chunks=N` drops the connection (no close handshake) after N events were sent.
`FakeUpstreamState.hold` holds the handshake (before its answer) until `release`.
A client event over 4 MiB closes the socket with 1009 (message too big), as OpenAI's does over
15 MiB; a `fake.close` event (`{"type": "fake.close", "code": 1009}`) closes it with that code
whatever its size: a proxy in front that refuses every event.
"""

from __future__ import annotations

import base64
import itertools
from typing import Any

import orjson
from aiohttp import WSMsgType, web

from ._azure import AZURE
from ._dialects import OPENAI, Dialect
from ._faults import NO_FAULTS, Call, abort_connection, send_json
from ._realtime_calls import CALLS, SIDEBANDS
from ._runtime import runtime_of

__all__ = ["add_routes"]

_GREETING = "Hello from the fake realtime model"
_VOICES = ("alloy", "ash", "ballad", "coral", "echo", "sage", "shimmer", "verse", "marin", "cedar")
_ids = itertools.count(1)
_MAX_EVENT_BYTES = 4 * 1024 * 1024


class _Session:
    """One socket's conversation: what it answers each client event with."""

    def __init__(self, call: Call, socket: web.WebSocketResponse, beta: bool) -> None:
        self.call = call
        self.socket = socket
        self.beta = beta
        self.last_text = ""
        self.session: dict[str, Any] = {"object": "realtime.session", "model": call.record.model}

    async def send(self, event: dict[str, Any]) -> None:
        event = {"event_id": f"event_fake_{next(_ids)}", **event}
        await self.socket.send_str(orjson.dumps(event).decode())
        self.call.mark(chunks_sent=self.call.record.chunks_sent + 1)
        limit = self.call.scenario.reset_after_chunks
        if limit is not None and self.call.record.chunks_sent >= limit:
            self.call.mark(outcome="reset")
            abort_connection(self.call.request)

    async def answer_text(self, text: str) -> None:
        """A client event as sent: one that is not a JSON object is answered with an `error`
        event and the session stays open, as OpenAI's server does (it does not drop it)."""
        try:
            event = orjson.loads(text)
        except orjson.JSONDecodeError:
            event = None
        if not isinstance(event, dict):
            message = "The client event is not a JSON object."
            error = {"type": "invalid_request_error", "code": "invalid_json", "message": message}
            await self.send({"type": "error", "error": error})
            return
        await self.answer(event)

    async def answer(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "fake.close":
            await self.socket.close(code=int(event.get("code") or 1000))
        elif kind == "session.update":
            await self._update(event)
        elif kind == "conversation.item.create":
            await self._item(event.get("item") or {})
        elif kind == "response.create":
            await self._respond(event.get("response") or {})
        elif not str(kind).startswith("input_audio_buffer."):
            error = {"type": "invalid_request_error", "code": "unknown_event", "message": kind}
            await self.send({"type": "error", "error": error})

    async def _update(self, event: dict[str, Any]) -> None:
        """`session.updated`; an `error` naming the event (`error.event_id`) for a voice OpenAI
        has not (`session.audio.output.voice`, beta `session.voice`), the session unchanged."""
        session = event.get("session") or {}
        output = (session.get("audio") or {}).get("output") or {}
        voice, param = output.get("voice"), "session.audio.output.voice"
        if self.beta:
            voice, param = session.get("voice"), "session.voice"
        if voice is not None and voice not in _VOICES:
            message = f"Invalid value: '{voice}'. Supported values are: {', '.join(_VOICES)}."
            error = {"type": "invalid_request_error", "code": "invalid_value", "message": message}
            error |= {"param": param, "event_id": str(event.get("event_id") or "")}
            await self.send({"type": "error", "error": error})
            return
        self.session.update(session)
        await self.send({"type": "session.updated", "session": self.session})

    async def _item(self, item: dict[str, Any]) -> None:
        texts = [p.get("text") for p in item.get("content") or () if isinstance(p, dict)]
        self.last_text = " ".join(t for t in texts if isinstance(t, str))
        kind = "conversation.item.created" if self.beta else "conversation.item.added"
        await self.send({"type": kind, "item": {"id": f"item_fake_{next(_ids)}", **item}})

    async def _respond(self, options: dict[str, Any]) -> None:
        response_id = f"resp_fake_{next(_ids)}"
        await self.send({"type": "response.created", "response": {"id": response_id}})
        content = self.call.scenario.content
        text = content if content is not None else _answer(self.last_text)
        prefix = "response." if self.beta else "response.output_"
        for word in text.split(" "):
            delta = {"type": f"{prefix}text.delta", "response_id": response_id, "delta": word}
            await self.send(delta)
        modalities = options.get("output_modalities") or options.get("modalities") or ()
        if "audio" in modalities:
            audio = base64.b64encode(text.encode()).decode()
            await self.send(
                {"type": f"{prefix}audio.delta", "response_id": response_id, "delta": audio}
            )
        words = len(text.split(" "))
        usage = {
            "total_tokens": words + 10,
            "input_tokens": 10,
            "output_tokens": words,
            "input_token_details": {"text_tokens": 10, "audio_tokens": 0, "cached_tokens": 0},
            "output_token_details": {"text_tokens": words, "audio_tokens": 0},
        }
        done = {"id": response_id, "status": "completed", "usage": usage}
        await self.send({"type": "response.done", "response": done})


def _answer(text: str) -> str:
    return f"You said: {text}" if text else _GREETING


async def _realtime(
    request: web.Request, dialect: Dialect, model: str, call_id: str | None = None
) -> web.StreamResponse:
    rt = runtime_of(request)
    key = dialect.api_key(request)
    scenario = rt.state.scenarios.take(key, model)
    record = rt.state.begin_call(
        path=request.path,
        key=key,
        model=model,
        stream=True,
        body={},
        scenario=scenario,
        headers=dict(request.headers),
    )
    record.query = dict(request.query)
    call = Call(request, rt.state, record, scenario or NO_FAULTS, {}, dialect)
    try:
        await rt.state.gate()  # the handshake held by the test (FakeUpstreamState.hold)
        if call.scenario.is_error:  # the handshake refused, as an HTTP answer
            status, body = dialect.error_reply(call.scenario)
            return await send_json(call, status, body, "error_status")
        return await _serve(call, request.headers.get("OpenAI-Beta") == "realtime=v1", call_id)
    finally:
        rt.state.end_call(record)


async def _serve(call: Call, beta: bool, call_id: str | None) -> web.WebSocketResponse:
    socket = web.WebSocketResponse(max_msg_size=_MAX_EVENT_BYTES)
    await socket.prepare(call.request)
    call.mark(status=101)
    session = _Session(call, socket, beta)
    sidebands = call.request.app[SIDEBANDS]
    try:
        await session.send({"type": "session.created", "session": session.session})
        if call_id is not None:  # a WebRTC call's sideband: the browser's first answer, seen
            sidebands.setdefault(call_id, set()).add(socket)
            await session.answer({"type": "response.create"})
        async for message in socket:
            if message.type is WSMsgType.TEXT:
                await session.answer_text(message.data)
    except ConnectionResetError:
        pass  # the scenario dropped it
    finally:
        sidebands.get(call_id or "", set()).discard(socket)
    if call.record.outcome is None:
        call.mark(completed=True, outcome="ok")
    return socket


async def _openai(request: web.Request) -> web.StreamResponse:
    call_id = request.query.get("call_id")
    if call_id is None:
        return await _realtime(request, OPENAI, request.query.get("model", ""))
    state = runtime_of(request).state
    if state.holding_sidebands:  # until the test releases it (`hold_sidebands`)
        await state.gate(always=True)
    made = request.app[CALLS].get(call_id)  # the sideband of a WebRTC call
    if made is None or made[0] != OPENAI.api_key(request):
        error = {"message": f"Call '{call_id}' not found.", "type": "invalid_request_error"}
        return web.json_response({"error": error | {"code": None, "param": None}}, status=404)
    return await _realtime(request, OPENAI, made[1], call_id)


async def _azure(request: web.Request) -> web.StreamResponse:
    refused = AZURE.refusal(request)
    if refused is not None:
        return web.json_response(refused[1], status=refused[0])
    return await _realtime(request, AZURE, request.query.get("deployment", ""))


def add_routes(app: web.Application) -> None:
    app.router.add_get("/v1/realtime", _openai)
    app.router.add_get("/openai/realtime", _azure)
