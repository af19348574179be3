"""OpenAI content parts → Bedrock Converse content blocks (user turns, tool results, system).

Followed: ContentBlock, ImageBlock (format png|jpeg|gif|webp; source `bytes` or `s3Location`),
DocumentBlock (format pdf|csv|doc|docx|xls|xlsx|html|txt|md; a name of letters, digits, single
spaces, hyphens, parentheses and square brackets) and CachePointBlock:
https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_ContentBlock.html,
API_runtime_ImageBlock.html, API_runtime_DocumentBlock.html, API_runtime_CachePointBlock.html.
Converse fetches no http(s) links and takes no audio: those parts are UNSUPPORTED_INPUT (the
group's next deployment may take them). A part's `cache_control` (where LiteLLM and OpenRouter
take Anthropic's breakpoints) becomes a cachePoint block after it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import orjson

from router_service.providers import _mapping as M
from router_service.providers._media import file_input
from router_service.providers._media_types import guess_media_type

JsonObject = dict[str, Any]

_IMAGE_FORMATS = {"png": "png", "jpeg": "jpeg", "jpg": "jpeg", "gif": "gif", "webp": "webp"}
_DOCUMENT_FORMATS = {
    "application/pdf": "pdf",
    "text/csv": "csv",
    "application/msword": "doc",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
    "application/vnd.ms-excel": "xls",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "xlsx",
    "text/html": "html",
    "text/plain": "txt",
    "text/markdown": "md",
}
_NAME_REFUSED = re.compile(r"[^A-Za-z0-9\s\-()\[\]]+")
_NAME_MAX = 200  # the characters of a document's name that Bedrock keeps


def cache_point(given: Mapping[str, Any]) -> JsonObject | None:
    """The cachePoint block a part's or a tool's `cache_control` asks for, None without one;
    its `ttl` ("5m", "1h": Anthropic's and Bedrock's words alike) kept, so an hour's cache is
    an hour's on Bedrock too (Bedrock refuses a TTL it does not know, as Anthropic does)."""
    control = given.get("cache_control")
    if not isinstance(control, dict):
        return None
    point: JsonObject = {"type": "default"}
    if isinstance(control.get("ttl"), str):
        point["ttl"] = control["ttl"]
    return {"cachePoint": point}


def text_blocks(content: Any) -> list[JsonObject]:
    """The text of a system or assistant turn; a part's `cache_control` becomes a cachePoint
    block after it (Bedrock's prompt caching). Text of whitespace alone is left out, as in
    `content_blocks`."""
    blocks: list[JsonObject] = []
    for part in M.parts_of(content):
        if part.get("type") == "text" and M.has_text(part):
            blocks.append({"text": str(part["text"])})
            if (point := cache_point(part)) is not None:
                blocks.append(point)
    return blocks


def content_blocks(content: Any, path: str) -> list[JsonObject]:
    """A user turn's (or a tool result's) blocks. A text part of whitespace alone (a stray
    newline part beside the others) is left out: Converse refuses the whole request for it
    ("The text field in the ContentBlock object at messages.1.content.0 is blank"), where OpenAI
    takes it. A turn of whitespace alone has no blocks (`M.blank_text` says when it is sent)."""
    blocks: list[JsonObject] = []
    for j, part in enumerate(M.parts_of(content)):
        kind, at = part.get("type"), f"{path}.content[{j}]"
        if kind == "text":
            if M.has_text(part):
                blocks.append({"text": str(part["text"])})
        elif kind == "image_url":
            blocks.append({"image": _image(M.image_url(part), at)})
        elif kind == "file":
            blocks.append({"document": _document(part, at)})
        elif kind == "input_audio":
            raise M.unsupported("bedrock's Converse API takes no audio input", at)
        else:
            raise M.unsupported(f"bedrock does not take {kind!r} content parts", at)
        if (point := cache_point(part)) is not None:
            blocks.append(point)
    return blocks


def tool_result_blocks(message: Mapping[str, Any], path: str) -> list[JsonObject]:
    """A tool message's toolResult block. It holds text, images and documents; no cachePoint
    goes inside it: the result's breakpoint (on the message, where the Messages API entrance
    puts a tool_result's and LiteLLM takes it, or on a part of it) is a cachePoint after it."""
    blocks = content_blocks(message.get("content"), path)
    points = [block for block in blocks if "cachePoint" in block]
    result = {
        "toolUseId": M.tool_id(str(message.get("tool_call_id", ""))),
        # a result of whitespace alone as it is: Converse takes it in a tool result
        "content": [block for block in blocks if "cachePoint" not in block]
        or [{"text": M.text_of(message.get("content"))}],
    }
    if M.failed_result(message):  # Converse's ToolResultBlock.status
        result["status"] = "error"
    point = cache_point(message) or (points[-1] if points else None)
    return [{"toolResult": result}] + ([point] if point is not None else [])


def _source(data: str, url: str, what: str, path: str) -> JsonObject:
    if data:
        return {"bytes": data}
    if url.startswith("s3://"):
        return {"s3Location": {"uri": url}}
    raise M.unsupported(
        f"bedrock takes {what} as base64 data or an s3:// location, not an http(s) link", path
    )


def _image(url: str, path: str) -> JsonObject:
    inline = M.split_data_url(url)
    media_type, data = inline if inline is not None else (guess_media_type(url), "")
    image_format = _IMAGE_FORMATS.get(media_type.removeprefix("image/"))
    if image_format is None:
        raise M.unsupported(f"bedrock takes png, jpeg, gif and webp images, not {media_type}", path)
    return {"format": image_format, "source": _source(data, url, "images", path)}


def _document(part: Mapping[str, Any], path: str) -> JsonObject:
    file = file_input(part, "bedrock", path)
    document_format = _DOCUMENT_FORMATS.get(file.media_type)
    if document_format is None:
        raise M.unsupported(
            f"bedrock takes documents of types {sorted(_DOCUMENT_FORMATS)}, not {file.media_type}",
            f"{path}.file",
        )
    return {
        "format": document_format,
        "name": document_name(file.filename),
        "source": _source(file.data, file.url, "documents", f"{path}.file"),
    }


def document_name(filename: str) -> str:
    """A DocumentBlock name from a file name: its stem, with what Bedrock refuses in a name
    replaced by a hyphen and runs of whitespace made one space; "document" when no letter or
    digit is left."""
    stem = filename.rsplit(".", 1)[0] if "." in filename else filename
    name = " ".join(_NAME_REFUSED.sub("-", stem).split())[:_NAME_MAX].strip()
    return name if any(c.isalnum() for c in name) else "document"


def unique_document_names(messages: list[JsonObject]) -> list[JsonObject]:
    """`messages`, each document named apart from the ones before it (a tool result's too):
    Converse refuses a request with two documents of one name ("Messages can't contain
    duplicate document names"), which two unnamed files, or a file attached again in a later
    turn, make. The first keeps its name, a later one gets " (2)", " (3)"… (letters are
    compared in any case): the earlier turns' names stay as they were sent, so Converse's
    prompt cache keeps the conversation's prefix."""
    taken: set[str] = set()
    for message in messages:
        for block in message["content"]:
            inner = block["toolResult"]["content"] if "toolResult" in block else ()
            for item in (block, *inner):
                if "document" in item:
                    item["document"]["name"] = _unused(item["document"]["name"], taken)
    return messages


def _unused(name: str, taken: set[str]) -> str:
    given, count = name, 1
    while name.lower() in taken:
        count += 1
        suffix = f" ({count})"
        name = given[: _NAME_MAX - len(suffix)].rstrip() + suffix
    taken.add(name.lower())
    return name


# The API no_json_mode names: JSON mode has no Converse word (its one format type is
# `json_schema`, OutputFormat; its objects closed:
# https://docs.aws.amazon.com/bedrock/latest/userguide/structured-output.html).
CONVERSE = "bedrock's Converse API"


def with_output_config(out: JsonObject, body: Mapping[str, Any]) -> None:
    """A `json_schema` response_format (an Anthropic caller's `output_config.format` too) as
    Converse's structured outputs, `outputConfig.textFormat`, its schema a JSON string (as
    https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_JsonSchemaDefinition.html
    says), unless the caller wrote its own `outputConfig`; `json_object` is
    `no_json_mode`'s."""
    given = body.get("response_format")
    if "outputConfig" in out or not isinstance(given, Mapping):
        return
    if given.get("type") == "json_object":
        raise M.no_json_mode(CONVERSE)
    json_schema = given.get("json_schema") if given.get("type") == "json_schema" else None
    schema = json_schema.get("schema") if isinstance(json_schema, Mapping) else None
    if not isinstance(json_schema, Mapping) or not isinstance(schema, Mapping):
        return
    definition: JsonObject = {"schema": orjson.dumps(schema).decode()}
    for key in ("name", "description"):
        if isinstance(json_schema.get(key), str):
            definition[key] = json_schema[key]
    structure = {"jsonSchema": definition}
    out["outputConfig"] = {"textFormat": {"type": "json_schema", "structure": structure}}


def one_call_at_a_time(out: JsonObject, body: Mapping[str, Any]) -> None:
    """OpenAI's `parallel_tool_calls: false` for a Claude behind Converse, in place: Claude's
    `tool_choice.disable_parallel_tool_use`, which Converse has no field for, goes in
    `additionalModelRequestFields` without a `type` (Bedrock refuses one beside
    `toolConfig.toolChoice`: "The additional field tool_choice/type conflicts with the existing
    field toolConfig.toolChoice…"), the choice itself in `toolConfig` (`auto` when the caller
    named none). Nothing without tools to call, nor with `tool_choice: "none"`. Merged into the
    caller's own `additionalModelRequestFields` (its `tool_choice` object included): the
    caller's explicit `disable_parallel_tool_use` there is the more specific word and wins."""
    config = out.get("toolConfig")
    if body.get("parallel_tool_calls") is not False or not body.get("tools") or not config:
        return
    if "toolChoice" not in config and body.get("tool_choice") not in (None, "auto"):
        return  # "none": no call to make one at a time
    config.setdefault("toolChoice", {"auto": {}})
    given = out.get("additionalModelRequestFields")
    fields: JsonObject = dict(given) if isinstance(given, dict) else {}
    own = fields.get("tool_choice")
    if own is None or isinstance(own, dict):
        fields["tool_choice"] = {"disable_parallel_tool_use": True, **(own or {})}
    out["additionalModelRequestFields"] = fields  # another value of its own: as it gave it
