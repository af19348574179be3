"""The fast fake upstream: a zero-delay OpenAI-compatible mock for benchmarks.

Raw ASGI (no framework) on uvicorn with uvloop and httptools, access log off, no fault injection,
no call records: it must cost far less than the systems measured against it. Responses are built
once per (model, chunk count) and then served from a small cache.

- `POST /v1/chat/completions`: JSON, or with `"stream": true` server-sent events: a role chunk,
  `chunks` content chunks, a finish chunk (and a usage chunk when `stream_options.include_usage`),
  then `[DONE]`. Each event is a separate write, as a real upstream's tokens are. The number of
  content chunks comes from the query (`?chunks=N`), the `x-fake-chunks` header, or the server
  default (25).
- A model named `hold-<seconds>` (e.g. `hold-120`) streams the role and one content chunk, then
  holds the stream open and idle until the client goes away or the time is up: idle streams.
- `POST /v1/embeddings`: 8-dimensional vectors, one per input.
- `GET /v1/models`: a fixed list.

    switchboard fake-upstream --fast --port 9100
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qs

import orjson
import uvicorn

__all__ = ["DEFAULT_CHUNKS", "create_fast_app", "run_fast"]

log = logging.getLogger("switchboard.fake_upstream.fast")

DEFAULT_CHUNKS = 25
MAX_CHUNKS = 10_000
MAX_HOLD_S = 3600.0
_MAX_BODY = 64 * 1024 * 1024
_CACHE_LIMIT = 256
_CREATED = 1_700_000_000
_EMBEDDING = [0.125, -0.25, 0.375, -0.5, 0.5, -0.375, 0.25, -0.125]
_WORDS = ("lorem", "ipsum", "dolor", "sit", "amet", "consectetur", "adipiscing", "elit")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_JSON_HEADERS = [(b"content-type", b"application/json")]
_SSE_HEADERS = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]
_DONE = b"data: [DONE]\n\n"


def _sse(obj: Any) -> bytes:
    return b"data: " + orjson.dumps(obj) + b"\n\n"


def _words(n: int) -> list[str]:
    return [_WORDS[i % len(_WORDS)] + " " for i in range(n)]


def _usage(completion: int) -> dict[str, int]:
    return {"prompt_tokens": 8, "completion_tokens": completion, "total_tokens": 8 + completion}


def completion_bytes(model: str, chunks: int) -> bytes:
    """A whole chat completion whose text has `chunks` words."""
    return orjson.dumps(
        {
            "id": "chatcmpl-fast",
            "object": "chat.completion",
            "created": _CREATED,
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "".join(_words(chunks))},
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": _usage(chunks),
            "system_fingerprint": "fp_fast",
        }
    )


def stream_events(model: str, chunks: int, include_usage: bool) -> list[bytes]:
    """Every SSE event of one stream, `[DONE]` included."""

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": "chatcmpl-fast",
            "object": "chat.completion.chunk",
            "created": _CREATED,
            "model": model,
            "system_fingerprint": "fp_fast",
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }
        if include_usage:
            out["usage"] = None
        return out

    events = [_sse(chunk({"role": "assistant", "content": ""}))]
    events += [_sse(chunk({"content": word})) for word in _words(chunks)]
    events.append(_sse(chunk({}, "stop")))
    if include_usage:
        final = chunk({})
        final["choices"] = []
        final["usage"] = _usage(chunks)
        events.append(_sse(final))
    events.append(_DONE)
    return events


def embeddings_bytes(model: str, count: int) -> bytes:
    data = [{"object": "embedding", "index": i, "embedding": _EMBEDDING} for i in range(count)]
    return orjson.dumps(
        {
            "object": "list",
            "data": data,
            "model": model,
            "usage": {"prompt_tokens": count, "total_tokens": count},
        }
    )


_MODELS = orjson.dumps(
    {
        "object": "list",
        "data": [
            {"id": m, "object": "model", "created": _CREATED, "owned_by": "fake"}
            for m in ("bench-model", "text-embedding-fake")
        ],
    }
)


class _Cache:
    """Response bytes by key, built on first use; cleared when it grows past its limit."""

    def __init__(self) -> None:
        self._items: dict[Any, Any] = {}

    def get(self, key: Any, build: Callable[[], Any]) -> Any:
        value = self._items.get(key)
        if value is None:
            if len(self._items) >= _CACHE_LIMIT:
                self._items.clear()
            value = self._items[key] = build()
        return value


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


def _chunk_count(scope: Scope, default: int) -> int:
    raw: bytes | str | None = _header(scope, b"x-fake-chunks")
    query = scope.get("query_string") or b""
    if raw is None and query:
        raw = (parse_qs(query.decode("latin-1")).get("chunks") or [None])[0]
    try:
        return max(0, min(MAX_CHUNKS, int(raw))) if raw is not None else default
    except ValueError:
        return default


def _hold_seconds(model: str) -> float | None:
    if not model.startswith("hold-"):
        return None
    try:
        return max(0.0, min(MAX_HOLD_S, float(model[5:])))
    except ValueError:
        return None


async def _read_body(receive: Receive) -> bytes | None:
    """The request body, or None when the client went away or it is too large."""
    parts: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        part = message.get("body", b"")
        size += len(part)
        if size > _MAX_BODY:
            return None
        parts.append(part)
        if not message.get("more_body", False):
            return parts[0] if len(parts) == 1 else b"".join(parts)


async def _respond(
    send: Send, status: int, body: bytes, headers: list[Any] = _JSON_HEADERS
) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _error(message: str, type_: str = "invalid_request_error") -> bytes:
    return orjson.dumps({"error": {"message": message, "type": type_, "param": None, "code": None}})


async def _wait_disconnect(receive: Receive, seconds: float) -> None:
    async def gone() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(gone(), seconds)


def _parsed(raw: bytes) -> Any:
    """The JSON body, or None when it is not JSON (the caller answers 400)."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None


async def _send_events(
    receive: Receive, send: Send, events: list[bytes], hold: float | None
) -> None:
    """One write per event, as a real upstream's tokens arrive; a `hold-<s>` model stops after
    the first content chunk until the client leaves or the time is up."""
    await send({"type": "http.response.start", "status": 200, "headers": _SSE_HEADERS})
    if hold is not None:
        for event in events[:2]:
            await send({"type": "http.response.body", "body": event, "more_body": True})
        await _wait_disconnect(receive, hold)
        events = events[2:]
    for event in events[:-1]:
        await send({"type": "http.response.body", "body": event, "more_body": True})
    await send({"type": "http.response.body", "body": events[-1]})


def create_fast_app(default_chunks: int = DEFAULT_CHUNKS) -> Callable[..., Awaitable[None]]:
    """The raw ASGI app."""
    completions = _Cache()
    streams = _Cache()
    embeddings = _Cache()

    async def chat(scope: Scope, receive: Receive, send: Send) -> None:
        raw = await _read_body(receive)
        if raw is None:
            return
        body = _parsed(raw)
        if not isinstance(body, dict):
            return await _respond(send, 400, _error("The body must be a JSON object."))
        model = str(body.get("model") or "fake")
        chunks = _chunk_count(scope, default_chunks)
        if body.get("stream") is not True:
            payload = completions.get((model, chunks), lambda: completion_bytes(model, chunks))
            return await _respond(send, 200, payload)
        options = body.get("stream_options")
        usage = isinstance(options, dict) and options.get("include_usage") is True
        hold = _hold_seconds(model)
        count = 1 if hold is not None else chunks
        events = streams.get((model, count, usage), lambda: stream_events(model, count, usage))
        await _send_events(receive, send, events, hold)

    async def embed(receive: Receive, send: Send) -> None:
        raw = await _read_body(receive)
        if raw is None:
            return
        body = _parsed(raw)
        items = body.get("input") if isinstance(body, dict) else None
        if not items:
            return await _respond(send, 400, _error("`input` is required."))
        count = len(items) if isinstance(items, list) and not isinstance(items[0], int) else 1
        model = str(body.get("model") or "fake") if isinstance(body, dict) else "fake"
        payload = embeddings.get((model, count), lambda: embeddings_bytes(model, count))
        await _respond(send, 200, payload)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return  # lifespan is off: only HTTP scopes arrive
        path, method = scope["path"], scope["method"]
        if path == "/v1/chat/completions" and method == "POST":
            await chat(scope, receive, send)
        elif path == "/v1/embeddings" and method == "POST":
            await embed(receive, send)
        elif path in ("/v1/models", "/healthz") and method == "GET":
            await _respond(send, 200, _MODELS)
        else:
            await _respond(send, 404, _error(f"No route {method} {path}.", "not_found_error"))

    return app


def run_fast(host: str = "127.0.0.1", port: int = 9100, chunks: int = DEFAULT_CHUNKS) -> int:
    """Serve the fast mock until SIGINT/SIGTERM (blocking: uvicorn makes its own uvloop loop)."""
    config = uvicorn.Config(
        create_fast_app(chunks),
        host=host,
        port=port,
        loop="uvloop",
        http="httptools",
        ws="none",
        lifespan="off",
        access_log=False,
        log_level="warning",
        backlog=4096,
        timeout_keep_alive=60,
    )
    log.info("fast fake upstream on http://%s:%d/v1 (%d chunks per stream)", host, port, chunks)
    uvicorn.Server(config).run()
    return 0
