"""OpenAI's moderations, images, speech, transcriptions and translations on the wire: the body
an OpenAI-format adapter sends for a `MediaCall`, and the `MediaResult` of the upstream's answer.

Followed (https://platform.openai.com/docs/api-reference):
- `POST /v1/moderations`, JSON `{model, input}` → `{id, model, results}`;
- `POST /v1/images/generations`, JSON `{model, prompt, n, size, response_format, ...}` →
  `{created, data: [{b64_json | url}], usage?}` (`usage` from token-priced image models);
- `POST /v1/images/edits`, `multipart/form-data` with `image` (or `image[]` for each of several
  images), an optional `mask`, `prompt`, `model` and the other fields → as generations';
  or JSON with `images` (and a `mask`) as `{image_url}` or `{file_id}` references;
- `POST /v1/images/variations`, `multipart/form-data` with one `image`, `model`, `n`, `size`,
  `response_format` → as generations';
- `POST /v1/audio/speech`, JSON `{model, input, voice, response_format, ...}` → the audio bytes;
- `POST /v1/audio/transcriptions`, `multipart/form-data` with `file`, `model` and the other fields
  (`language`, `prompt`, `response_format`, `temperature`, `timestamp_granularities[]`, ...) →
  JSON `{text, usage?}`, or text for `response_format` text, srt and vtt;
- `POST /v1/audio/translations`, the same form but `language` → English, as transcriptions'.
The upstream's answer goes back to the caller as it is, with its content type.
"""

from __future__ import annotations

from typing import Any

import httpx
import orjson

from clients import LARGEST_ANSWER_BYTES, MEDIA_UPLOADS, asks_stream, referenced_edit
from clients.switchboard.v1 import chat_pb2, media_pb2
from router_service.providers._base import MediaCall
from router_service.providers._mapping import caller_error, json_body
from router_service.providers._media_types import media_type_of, sniffed

__all__ = [
    "MAX_ANSWER_BYTES",
    "is_event_stream",
    "is_json",
    "media_content",
    "media_result",
    "token_usage",
]

# The largest answer relayed: what a gRPC answer may carry, less room for its route.
MAX_ANSWER_BYTES = LARGEST_ANSWER_BYTES - 1024 * 1024
# Only the multipart encoding of this request is used; it is never sent.
_NOWHERE = "http://upstream.invalid/"


def media_content(call: MediaCall) -> tuple[bytes, str]:
    """(body, content type) of the upstream request: the caller's fields with the deployment's
    upstream model, as JSON, or for an operation with uploads as a form with its files."""
    params = call.params
    fields: dict[str, Any] = orjson.loads(params.params_json) if params.params_json else {}
    fields["model"] = call.upstream_model
    if fields.get("stream") is not None:  # as the router read it (a form's " True "): a strict
        fields["stream"] = asks_stream(fields)  # upstream takes a boolean, a form's "true"
    uploads = MEDIA_UPLOADS.get(params.operation)
    if uploads is None or referenced_edit(params):  # an edit by reference is JSON too
        return json_body(fields), "application/json"
    data = {name: _form_values(value) for name, value in fields.items() if value is not None}
    files = params.files if uploads.several else [params.file]
    parts = [_form_file(file.field or uploads.fields[0], file) for file in files]
    request = httpx.Request("POST", _NOWHERE, data=data, files=parts)
    return request.read(), request.headers["content-type"]


def _form_file(field: str, file: media_pb2.MediaFile) -> tuple[str, tuple[str, bytes, str]]:
    """One part of the form: a file without a name is named as its field, with the extension of
    what it holds ("file.wav", "image.png": OpenAI tells audio formats by the name); one without
    a content type is sent as its name's ("a.png": image/png, "a.webp": image/webp, on any host:
    OpenAI refuses an image sent as application/octet-stream), else as what it holds, else
    octet-stream."""
    held = sniffed(file.data) if not (file.filename and file.content_type) else None
    filename = file.filename or field.removesuffix("[]") + (held[1] if held else "")
    kind = file.content_type or media_type_of(filename) or (held[0] if held else "")
    kind = kind or "application/octet-stream"
    return field, (filename, file.data, kind)


def _form_values(value: Any) -> str | list[str]:
    """A field's form value(s): strings as they are, a list as a repeated field, anything else
    (a number, a boolean from a gRPC caller's JSON) as its JSON text."""
    if isinstance(value, list):
        return [_form_text(item) for item in value]
    return _form_text(value)


def _form_text(value: Any) -> str:
    return value if isinstance(value, str) else json_body(value).decode()


def is_json(content_type: str) -> bool:
    kind = content_type.split(";", 1)[0].strip().lower()
    return kind == "application/json" or kind.endswith("+json")


def is_event_stream(content_type: str) -> bool:
    return content_type.split(";", 1)[0].strip().lower() == "text/event-stream"


def media_result(
    content_type: str,
    body: bytes,
    data: dict[str, Any] | None,
    *,
    limit: int = MAX_ANSWER_BYTES,
) -> media_pb2.MediaResult:
    """The answer as the caller gets it; `data`: the body parsed, when it is a JSON object (the
    last event of events answered whole: speech's `speech.audio.done`, with its usage).
    Token usage (gpt-image-1, gpt-4o-transcribe: `input_tokens`, `output_tokens`) is read for
    the caller's tpm and the call's cost; a duration (whisper-1's) is no token count. An
    answer over `limit` is refused as the caller's (what it asked for is too much to relay)."""
    if len(body) > limit:
        raise caller_error(
            f"The upstream's answer ({len(body)} bytes) is larger than the router relays "
            f"({limit} bytes): ask for less (a shorter input, a compressed format)."
        )
    result = media_pb2.MediaResult(content_type=content_type, body=body)
    usage = token_usage(data)
    if usage is not None:
        result.usage.CopyFrom(usage)
    return result


def token_usage(data: dict[str, Any] | None) -> chat_pb2.Usage | None:
    """The token `usage` of an answer or a stream's last event (`input_tokens`, `output_tokens`,
    `total_tokens`) as prompt and completion tokens; None when it has none."""
    usage = data.get("usage") if data is not None else None
    if not isinstance(usage, dict):
        return None
    counts = [usage.get(k) for k in ("input_tokens", "output_tokens", "total_tokens")]
    tokens = [v for v in counts if isinstance(v, int) and not isinstance(v, bool)]
    if len(tokens) != len(counts):
        return None
    prompt, completion, total = tokens
    return chat_pb2.Usage(prompt_tokens=prompt, completion_tokens=completion, total_tokens=total)
