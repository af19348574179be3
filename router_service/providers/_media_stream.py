"""A streamed media answer read as it arrives: an OpenAI-format upstream's speech audio, and the
events of `stream: true` (transcriptions, image generations and edits) and of speech's
`stream_format: "sse"`.

Followed (https://platform.openai.com/docs/api-reference):
- speech: the audio body is sent as it is made (chunked transfer); with `stream_format: "sse"`,
  `data:` events `{"type": "speech.audio.delta", "audio": <base64>}` then
  `{"type": "speech.audio.done", "usage": {input_tokens, output_tokens, total_tokens}}`;
- transcriptions with `stream: true`: `{"type": "transcript.text.delta", "delta", "logprobs"?}`
  then `{"type": "transcript.text.done", "text", "logprobs"?, "usage"?}`;
- images with `stream: true`: `event: image_generation.partial_image` (`b64_json`,
  `partial_image_index`, ...) then `image_generation.completed` (`b64_json`, `usage`), and
  `image_edit.*` for edits.
Each event goes to the caller as the upstream wrote it (its JSON and its SSE name); an event
that is an error (a root-level `error`) is the stream's failure, classified as a chat chunk's.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import orjson

from clients.switchboard.v1 import media_pb2
from router_service.providers._base import MediaPiece
from router_service.providers._http import map_transport_errors, whole_body
from router_service.providers._lean_transport import body_parts
from router_service.providers._openai_media import is_json, token_usage
from router_service.providers._sse import json_events
from router_service.providers._transport import HttpAdapter

__all__ = ["EVENT_STREAM", "is_final_event", "media_pieces"]

EVENT_STREAM = "text/event-stream"
# The last event of each stream kind ends in one of these (`speech.audio.done`,
# `transcript.text.done`, `image_generation.completed`, `image_edit.completed`).
_FINAL_SUFFIXES = (".done", ".completed")


def is_final_event(kind: object) -> bool:
    return isinstance(kind, str) and kind.endswith(_FINAL_SUFFIXES)


async def media_pieces(adapter: HttpAdapter, response: httpx.Response) -> AsyncIterator[MediaPiece]:
    """The answer's pieces: each event of an event stream, else its bytes as they arrive (a
    JSON answer, which a streaming request may still get, whole and checked for an error; a
    text one whole too)."""
    kind = response.headers.get("content-type", "application/octet-stream")
    if kind.split(";", 1)[0].strip().lower() == EVENT_STREAM:
        first = True
        async for name, data in json_events(response):
            adapter.raise_if_failed_event(data, response.headers)
            chunk = media_pb2.MediaChunk(event_json=orjson.dumps(data).decode(), event=name)
            if first:
                chunk.content_type, first = EVENT_STREAM, False
            final = is_final_event(data.get("type"))
            usage = token_usage(data) if final else None
            yield MediaPiece(chunk, event=data, usage=usage, final=final)
        return
    if is_json(kind):
        with map_transport_errors(started=True):
            body = await whole_body(response)
        data = adapter._checked_json(response.status_code, body, response.headers)
        chunk = media_pb2.MediaChunk(content_type=kind, data=body)
        yield MediaPiece(chunk, usage=token_usage(data), final=True)
        return
    if kind.split(";", 1)[0].strip().lower().startswith("text/"):
        # A transcript written out (`response_format` `text`, `srt`, `vtt`, which `whisper-1`
        # answers `stream: true` with): whole, as JSON is, so the answer guardrails screen it.
        with map_transport_errors(started=True):
            body = await whole_body(response)
        yield MediaPiece(media_pb2.MediaChunk(content_type=kind, data=body), final=True)
        return
    with map_transport_errors(started=True):
        content_type = kind
        async for received in body_parts(response):
            if received:
                yield MediaPiece(media_pb2.MediaChunk(content_type=content_type, data=received))
                content_type = ""
