"""The fake's streamed media answers, as OpenAI streams them (deterministic):

- speech's audio in `SPEECH_PIECES` pieces (chunked transfer), or with `stream_format: "sse"`
  a `speech.audio.delta` event per piece (base64 `audio`) and `speech.audio.done` with usage;
- a transcription with `stream: true`: a `transcript.text.delta` per word (`logprobs` when
  `include[]` asks for them), then `transcript.text.done` with the text and usage;
- an image generation or edit with `stream: true`: per image, `partial_images` (0 to 3)
  `image_generation.partial_image` events (`image_edit.*` for edits, named by `event:` lines),
  then `image_generation.completed` with usage.
The scenario's stream faults (stall, truncate, reset, wrapped error after N events, a chunk
interval) apply to these events and pieces as to a chat stream's chunks.
"""

from __future__ import annotations

import base64
import time
from typing import Any

import orjson
from aiohttp import web

from ._faults import Call, run_stream, send_error

__all__ = ["SPEECH_PIECES", "stream_images", "stream_speech", "stream_transcript", "streams"]

SPEECH_PIECES = 3


def streams(body: dict[str, Any]) -> bool:
    """Whether a request asks for events (`stream` true in JSON, "true" in a form, in any
    case: a Python server reads a form's "True" as true)."""
    value = body.get("stream")
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")


def _data(event: dict[str, Any], name: str = "") -> bytes:
    data = b"data: " + orjson.dumps(event) + b"\n\n"
    return b"event: " + name.encode() + b"\n" + data if name else data


def _pieces(audio: bytes) -> list[bytes]:
    size = -(-len(audio) // SPEECH_PIECES)
    return [audio[i : i + size] for i in range(0, len(audio), size)]


async def stream_speech(
    call: Call, text: str, content_type: str, audio: bytes
) -> web.StreamResponse:
    pieces = _pieces(audio)
    if call.body.get("stream_format") != "sse":
        return await run_stream(call, pieces, len(pieces) - 1, content_type)
    words = len(text.split())
    usage = {"input_tokens": words, "output_tokens": len(audio), "total_tokens": 0}
    usage["total_tokens"] = words + len(audio)
    events = [
        _data({"type": "speech.audio.delta", "audio": base64.b64encode(p).decode()}) for p in pieces
    ]
    events.append(_data({"type": "speech.audio.done", "usage": usage}))
    return await run_stream(call, events, len(pieces))


async def stream_transcript(call: Call, text: str, usage: dict[str, Any]) -> web.StreamResponse:
    logprobs = "logprobs" in _values(call.body.get("include[]"))
    words = text.split(" ")
    events = []
    for index, word in enumerate(words):
        delta: dict[str, Any] = {
            "type": "transcript.text.delta",
            "delta": (" " if index else "") + word,
        }
        if logprobs:
            delta["logprobs"] = [{"token": word, "logprob": -0.1, "bytes": list(word.encode())}]
        events.append(_data(delta))
    done: dict[str, Any] = {"type": "transcript.text.done", "text": text, "usage": usage}
    if logprobs:
        done["logprobs"] = [{"token": w, "logprob": -0.1, "bytes": list(w.encode())} for w in words]
    events.append(_data(done))
    return await run_stream(call, events, len(words))


def _values(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


async def stream_images(
    call: Call, n: int, b64: str, usage: dict[str, Any] | None, prefix: str
) -> web.StreamResponse:
    """`prefix`: "image_generation" or "image_edit"."""
    partials = call.body.get("partial_images", 0)
    partials = int(partials) if isinstance(partials, int | str) and str(partials).isdigit() else -1
    if not 0 <= partials <= 3:
        return await send_error(
            call, 400, "'partial_images' must be between 0 and 3", "bad_request"
        )
    shape = {
        "created_at": int(time.time()),
        "size": "1024x1024",
        "quality": "low",
        "background": "opaque",
        "output_format": "png",
        "b64_json": b64,
    }
    events = []
    for _ in range(n):
        for index in range(partials):
            partial = {"type": f"{prefix}.partial_image", **shape, "partial_image_index": index}
            events.append(_data(partial, f"{prefix}.partial_image"))
        completed: dict[str, Any] = {"type": f"{prefix}.completed", **shape}
        if usage is not None:
            completed["usage"] = {
                **usage,
                "input_tokens_details": {"image_tokens": 0, "text_tokens": usage["input_tokens"]},
            }
        events.append(_data(completed, f"{prefix}.completed"))
    return await run_stream(call, events, len(events) - 1)
