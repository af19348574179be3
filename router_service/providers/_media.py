"""OpenAI's `file` and `input_audio` content parts, read for the native formats; and the check
that finds, before a key is leased, a request a native format cannot express.

Followed:
- OpenAI's content parts: `file` (`file_data`, a base64 data URL; `file_id`, an id of OpenAI's
  Files API; `filename`) and `input_audio` (`data` in base64, `format` "wav" or "mp3"):
  https://platform.openai.com/docs/api-reference/chat/create. Chat Completions takes only PDFs
  as file parts, and has no URL field for them:
  https://developers.openai.com/api/docs/guides/file-inputs?api-mode=chat
- A document by URL travels as a `file_id` that is an http(s) URL (LiteLLM's convention for the
  providers that fetch URLs themselves):
  https://docs.litellm.ai/docs/completion/document_understanding
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from clients import chat_params_to_openai
from clients.switchboard.v1 import chat_pb2
from router_service.errors import UpstreamFailure
from router_service.outcomes import Outcome
from router_service.providers._mapping import caller_error, split_data_url, unsupported
from router_service.providers._media_types import media_type_of
from router_service.providers._one_choice import asks_choices_or_logprobs

JsonObject = dict[str, Any]

# The part kinds every native format takes; a request with only these needs no check.
_PLAIN_PARTS = frozenset({"text", "image_url"})
_TEXT_PART = frozenset({"text"})
# What a file part carries when neither its data URL nor its name says (OpenAI's are PDFs).
_DEFAULT_FILE_TYPE = "application/pdf"


@dataclass(frozen=True, slots=True)
class FileInput:
    """One file part's document: its base64 `data`, or the `url` the provider fetches it from."""

    media_type: str
    data: str = ""
    url: str = ""
    filename: str = ""


def file_input(part: Mapping[str, Any], provider: str, path: str) -> FileInput:
    """The document of an OpenAI `file` part. An OpenAI Files API id names a file only OpenAI
    holds: another provider cannot express it (the group's OpenAI deployment may)."""
    file = part.get("file")
    if not isinstance(file, dict):
        raise caller_error("a file part needs its `file` object", f"{path}.file")
    filename = file.get("filename")
    filename = filename if isinstance(filename, str) else ""
    data, ident = file.get("file_data"), file.get("file_id")
    if isinstance(data, str) and data:
        inline = split_data_url(data)
        if inline is not None:
            return FileInput(inline[0], data=inline[1], filename=filename)
        # Bare base64 (some clients leave the `data:` prefix out): its name says its type.
        return FileInput(_guess(filename), data=data, filename=filename)
    if isinstance(ident, str) and ident.startswith(("https://", "http://")):
        return FileInput(_guess(ident), url=ident, filename=filename)
    if isinstance(ident, str) and ident:
        raise unsupported(
            f"{provider} cannot read OpenAI Files API ids (file_id {ident!r}): send the file "
            "itself as `file_data` (a base64 data URL), or its URL as `file_id`",
            f"{path}.file.file_id",
        )
    raise caller_error("a file part needs `file_data` or `file_id`", f"{path}.file")


def decoded_text(file: FileInput, path: str) -> str:
    """The text of a plain-text document sent as base64 data."""
    try:
        return base64.b64decode(file.data, validate=True).decode("utf-8")
    except ValueError as exc:  # not base64, or not UTF-8
        raise caller_error(
            f"file_data is not base64-encoded UTF-8 text: {exc}", f"{path}.file.file_data"
        ) from exc


def _guess(name: str) -> str:
    return (media_type_of(name) if name else None) or _DEFAULT_FILE_TYPE


def audio_input(part: Mapping[str, Any], path: str) -> tuple[str, str]:
    """(format in lower case, base64 data) of an OpenAI `input_audio` part."""
    audio = part.get("input_audio")
    if not isinstance(audio, dict) or not isinstance(audio.get("data"), str) or not audio["data"]:
        raise caller_error("an input_audio part needs its base64 `data`", f"{path}.input_audio")
    return str(audio.get("format") or "").lower(), audio["data"]


def carries_media(params: chat_pb2.ChatParams) -> bool:
    """Whether a message has a content part other than text and images, or a tool result one
    other than text (Cohere's tool results take text only)."""
    for message in params.messages:
        if message.WhichOneof("content") == "parts":
            plain = _TEXT_PART if message.role == chat_pb2.ROLE_TOOL else _PLAIN_PARTS
            for part in message.parts.parts:
                if part.WhichOneof("part") not in plain:
                    return True
    return False


def unsupported_in(
    params: chat_pb2.ChatParams, build: Callable[[JsonObject], object]
) -> UpstreamFailure | None:
    """What a provider cannot express in `params`: the UNSUPPORTED_INPUT failure its request
    mapping `build` raises, if any. The mapping itself is the judge, so the check and the call
    cannot disagree; only requests with parts beyond text and images, asking for JSON mode
    (`response_format` `json_object`, which Claude and Converse have no word for:
    `no_json_mode`), or for more than one choice or logprobs (`_one_choice.py`), are mapped
    here (the rest every native format takes), so an ordinary request pays one scan of its
    parts."""
    json_mode = params.response_format.type == chat_pb2.RESPONSE_FORMAT_TYPE_JSON_OBJECT
    if not json_mode and not asks_choices_or_logprobs(params) and not carries_media(params):
        return None
    try:
        build(chat_params_to_openai(params))
    except UpstreamFailure as failure:
        if failure.outcome is Outcome.UNSUPPORTED_INPUT:
            return failure
    return None  # another failure (malformed tool arguments…) is the call's to raise


def linked_image(params: chat_pb2.ChatParams, refusal: str) -> UpstreamFailure | None:
    """The UNSUPPORTED_INPUT failure (`refusal` its message) of an image given as an http(s)
    link, for a provider that takes images as data only (Bedrock's Converse, Claude on Vertex
    AI). Asked apart from `unsupported_in`, which leaves images (every other kind takes links)."""
    for i, message in enumerate(params.messages):
        if message.WhichOneof("content") != "parts":
            continue
        for j, part in enumerate(message.parts.parts):
            if part.WhichOneof("part") == "image_url" and part.image_url.url.startswith("http"):
                return unsupported(refusal, f"messages[{i}].content[{j}]")
    return None
