"""OpenAI's moderations, images, speech, transcriptions and translations, answered
deterministically (at OpenAI's paths, and at an Azure deployment's but moderations and image
variations):

- moderations: an input that contains `FLAGGED_WORD` is flagged for violence;
- images (generations; edits, a form with `image` or `image[]` files, an optional `mask` and a
  prompt; variations, a form with one `image`): `n` copies of a 1×1 PNG, as `b64_json` or
  (`response_format: url`) a URL; a `gpt-image-*` model reports token usage, as OpenAI's does;
- speech: a few bytes that open as the requested format's files do, then the input text, with
  its content type, sent in pieces as it is made (`_media_stream`, also its events);
- transcriptions and translations: a form with a `file`; the text says the file's name and size
  (a translation's then ", in English"), as `json`, `verbose_json` or plain text for `text`,
  `srt`, `vtt`; usage in tokens; with `stream: true`, a transcription's events
  (`_media_stream`), as image generations' and edits'.
Scenarios (errors, rate limits, faults per key and model) apply as to chat (`_openai.handle`).
"""

from __future__ import annotations

import base64
import time
from typing import Any

from aiohttp import web

from . import _openai
from ._azure import AZURE
from ._faults import Call, send_answer, send_error
from ._media_stream import stream_images, stream_speech, stream_transcript, streams

__all__ = ["FLAGGED_WORD", "PNG_1X1", "add_routes", "speech_bytes"]

FLAGGED_WORD = "kill"
# The smallest valid PNG: one transparent pixel.
PNG_1X1 = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)
_CATEGORIES = ("harassment", "hate", "self-harm", "sexual", "violence")
# format → (content type, the bytes its files open with)
_AUDIO: dict[str, tuple[str, bytes]] = {
    "mp3": ("audio/mpeg", b"ID3\x04\x00\x00\x00\x00\x00\x00"),
    "opus": ("audio/ogg", b"OggS\x00\x02"),
    "aac": ("audio/aac", b"\xff\xf1\x50\x80"),
    "flac": ("audio/flac", b"fLaC"),
    "wav": ("audio/wav", b"RIFF\x24\x00\x00\x00WAVEfmt "),
    "pcm": ("audio/pcm", b""),
}
_TEXT_FORMATS = ("text", "srt", "vtt")


def speech_bytes(text: str, response_format: str = "mp3") -> tuple[str, bytes]:
    """(content type, body) the fake speaks `text` as."""
    kind, magic = _AUDIO[response_format]
    return kind, magic + text.encode()


def _texts(value: Any) -> list[str] | None:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        texts = [
            v if isinstance(v, str) else v.get("text") for v in value if isinstance(v, str | dict)
        ]
        return [t for t in texts if isinstance(t, str)]
    return None


async def _moderations(call: Call) -> web.StreamResponse:
    texts = _texts(call.body.get("input"))
    if texts is None:
        return await send_error(call, 400, "'input' is a required property", "bad_request")
    results = []
    for text in texts:
        flagged = FLAGGED_WORD in text.lower()
        categories = {c: flagged and c == "violence" for c in _CATEGORIES}
        scores = {c: 0.9 if on else 0.01 for c, on in categories.items()}
        results.append({"flagged": flagged, "categories": categories, "category_scores": scores})
    model = call.record.model or "omni-moderation-latest"
    body = {"id": f"modr-fake-{call.record.seq}", "model": model, "results": results}
    return await send_answer(call, body)


async def _images(call: Call) -> web.StreamResponse:
    prompt = call.body.get("prompt")
    if not isinstance(prompt, str) or not prompt:
        return await send_error(call, 400, "'prompt' is a required property", "bad_request")
    return await _send_images(call, prompt, "image_generation")


async def _image_edits(call: Call) -> web.StreamResponse:
    """A form with `image` (or `image[]`, each of several), an optional `mask` and a prompt; or
    JSON naming them (`images`, `mask`: `{image_url}` or `{file_id}` references)."""
    body = call.body
    images = _uploads(body.get("image")) + _uploads(body.get("image[]"))
    if isinstance(body.get("images"), list):
        images = [i for i in body["images"] if isinstance(i, dict)]
        if len(images) != len(body["images"]):
            return await send_error(call, 400, "'images' must be references", "bad_request")
    elif not images:
        return await send_error(call, 400, "'image' is a required property", "bad_request")
    if "mask" in body and not isinstance(body["mask"], dict) and len(_uploads(body["mask"])) != 1:
        return await send_error(call, 400, "'mask' must be one image file", "bad_request")
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt:
        return await send_error(call, 400, "'prompt' is a required property", "bad_request")
    return await _send_images(call, prompt, "image_edit")


async def _image_variations(call: Call) -> web.StreamResponse:
    if len(_uploads(call.body.get("image"))) != 1:
        return await send_error(call, 400, "'image' must be one image file", "bad_request")
    return await _send_images(call, "")


def _uploads(value: Any) -> list[dict[str, Any]]:
    """The files of a form field (`_openai.read_body`'s dicts): none, one or several."""
    values = value if isinstance(value, list) else [value]
    return [v for v in values if isinstance(v, dict)]


async def _send_images(call: Call, prompt: str, streamed_as: str = "") -> web.StreamResponse:
    """`n` (a JSON number, or a form's text) copies of the PNG, with a `gpt-image-*` model's
    usage for `prompt`; as `streamed_as` events ("image_generation", "image_edit") when the
    request streams."""
    body = call.body
    n = body.get("n", 1)
    if isinstance(n, str) and n.isdigit():
        n = int(n)
    if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= 10:
        return await send_error(call, 400, "'n' must be between 1 and 10", "bad_request")
    if body.get("response_format") == "url":
        image = {"url": f"https://fake-upstream.invalid/images/{call.record.seq}.png"}
    else:
        image = {"b64_json": base64.b64encode(PNG_1X1).decode()}
    usage = None
    if call.record.model.startswith("gpt-image"):
        words = len(prompt.split())
        usage = {"input_tokens": words, "output_tokens": 272 * n, "total_tokens": words + 272 * n}
    if streamed_as and streams(body):
        return await stream_images(call, n, base64.b64encode(PNG_1X1).decode(), usage, streamed_as)
    answer: dict[str, Any] = {"created": int(time.time()), "data": [dict(image) for _ in range(n)]}
    if usage is not None:
        answer["usage"] = usage
    return await send_answer(call, answer)


async def _speech(call: Call) -> web.StreamResponse:
    body = call.body
    text, voice = body.get("input"), body.get("voice")
    fmt = body.get("response_format", "mp3")
    if not isinstance(text, str) or not text or not isinstance(voice, str) or not voice:
        return await send_error(call, 400, "'input' and 'voice' are required", "bad_request")
    if not isinstance(fmt, str) or fmt not in _AUDIO:  # a list or an object: no key of it
        return await send_error(call, 400, f"'{fmt}' is not a supported format", "bad_request")
    kind, audio = speech_bytes(text, fmt)
    return await stream_speech(call, text, kind, audio)  # as it is made, as OpenAI's


async def _transcriptions(call: Call) -> web.StreamResponse:
    return await _audio_text(call, "transcribe", "")


async def _translations(call: Call) -> web.StreamResponse:
    return await _audio_text(call, "translate", ", in English")


async def _audio_text(call: Call, task: str, suffix: str) -> web.StreamResponse:
    """A transcription's or translation's answer: text naming the uploaded `file`."""
    body = call.body
    file = body.get("file")
    if not isinstance(file, dict):
        return await send_error(call, 400, "'file' is a required property", "bad_request")
    text = f"{file['filename']}: {file['size']} bytes of {file['content_type']}{suffix}"
    fmt = body.get("response_format", "json")
    if fmt in _TEXT_FORMATS:
        return await _send_bytes(call, text.encode(), "text/plain; charset=utf-8")
    words = len(text.split())
    usage = {"type": "tokens", "input_tokens": file["size"] // 100 + 1, "output_tokens": words}
    usage["total_tokens"] = usage["input_tokens"] + usage["output_tokens"]
    if task == "transcribe" and streams(body):
        return await stream_transcript(call, text, usage)
    if fmt == "verbose_json":
        return await send_answer(
            call,
            {"task": task, "language": "english", "duration": 1.0, "text": text, "segments": []},
        )
    return await send_answer(call, {"text": text, "usage": usage})


async def _send_bytes(call: Call, body: bytes, content_type: str) -> web.StreamResponse:
    resp = web.Response(status=call.ok_status, body=body, headers=call.headers())
    resp.headers["Content-Type"] = content_type
    await resp.prepare(call.request)
    call.mark(status=resp.status)
    await resp.write_eof()
    call.mark(completed=True, outcome="ok")
    return resp


_PRODUCERS = {
    "moderations": _moderations,
    "images/generations": _images,
    "images/edits": _image_edits,
    "images/variations": _image_variations,
    "audio/speech": _speech,
    "audio/transcriptions": _transcriptions,
    "audio/translations": _translations,
}
# OpenAI's media endpoints that Azure OpenAI does not have.
_NOT_AZURE = ("moderations", "images/variations")


def _openai_route(producer: _openai.Producer) -> Any:
    async def route(request: web.Request) -> web.StreamResponse:
        return await _openai.handle(request, producer)

    return route


def _azure_route(producer: _openai.Producer) -> Any:
    async def route(request: web.Request) -> web.StreamResponse:
        deployment = request.match_info["deployment"]
        return await _openai.handle(request, producer, dialect=AZURE, model=deployment)

    return route


def add_routes(app: web.Application) -> None:
    for path, producer in _PRODUCERS.items():
        app.router.add_post(f"/v1/{path}", _openai_route(producer))
        if path not in _NOT_AZURE:
            app.router.add_post(
                f"/openai/deployments/{{deployment}}/{path}", _azure_route(producer)
            )
