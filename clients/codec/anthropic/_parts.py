"""A Messages API turn's content blocks as OpenAI chat content parts: text (with its cache
breakpoint), images and documents (base64, url and text sources), and the Claude-only blocks
(`_claude_only`), kept for the Anthropic provider to take back. What has no OpenAI word is
refused (400), naming its path.

Followed:
- Images and documents: https://docs.claude.com/en/docs/build-with-claude/vision and
  .../pdf-support
"""

from __future__ import annotations

import base64
from typing import Any

from clients.codec._json import (
    at,
    at_index,
    expect_list,
    expect_object,
    expect_str,
    invalid_value,
    missing,
)
from clients.codec.anthropic._claude_only import claude_only_part, is_claude_only

__all__ = ["block_kind", "cached", "content_blocks", "part", "text_part"]

JsonObject = dict[str, Any]


def content_blocks(content: Any, path: str) -> list[JsonObject]:
    """A turn's content as blocks: a string is one text block."""
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    blocks = expect_list(content, path)
    return [expect_object(b, at_index(path, i)) for i, b in enumerate(blocks)]


def block_kind(block: JsonObject, path: str) -> str:
    if "type" not in block:
        missing(at(path, "type"))
    return expect_str(block["type"], at(path, "type"))


def cached(part: JsonObject, block: JsonObject) -> JsonObject:
    """The part with the block's cache breakpoint, where the Anthropic provider takes it."""
    if isinstance(block.get("cache_control"), dict):
        part["cache_control"] = block["cache_control"]
    return part


def text_part(block: Any, path: str) -> JsonObject:
    block = expect_object(block, path)
    if block_kind(block, path) != "text":
        invalid_value(at(path, "type"), block["type"], ("text",))
    if "text" not in block:
        missing(at(path, "text"))
    return cached({"type": "text", "text": expect_str(block["text"], at(path, "text"))}, block)


def part(block: JsonObject, path: str) -> JsonObject:
    """A user content block as an OpenAI content part."""
    kind = block_kind(block, path)
    if kind == "text":
        return text_part(block, path)
    if kind == "image":
        url = _source_url(block, path, "image/")
        return cached({"type": "image_url", "image_url": {"url": url}}, block)
    if is_claude_only(block):  # a custom content document, a search result
        return cached(claude_only_part(block, path), block)
    if kind == "document":
        return cached(_document(block, path), block)
    kinds = ("text", "image", "document", "search_result", "tool_result")
    invalid_value(at(path, "type"), kind, kinds)


def _document(block: JsonObject, path: str) -> JsonObject:
    """A document block as an OpenAI file part: its source as `file_data` (a data URL) or, by
    URL, as `file_id` (LiteLLM's way to link one, which the providers read as a link); its
    `title` as the file's name, and its `citations` and `context` (Anthropic's words only) as
    the part's own keys, where the Anthropic provider takes them back."""
    url = _source_url(block, path, "")
    by_url = url.startswith(("https://", "http://"))
    file: JsonObject = {"file_id": url} if by_url else {"file_data": url}
    if block.get("title") is not None:
        file["filename"] = expect_str(block["title"], at(path, "title"))
    part: JsonObject = {"type": "file", "file": file}
    if block.get("citations") is not None:
        part["citations"] = expect_object(block["citations"], at(path, "citations"))
    if block.get("context") is not None:
        part["context"] = expect_str(block["context"], at(path, "context"))
    return part


def _source_url(block: JsonObject, path: str, media_prefix: str) -> str:
    """An image's or a document's source as a URL: its own, or a data URL of its data."""
    where = at(path, "source")
    source = expect_object(block.get("source"), where)
    kind = expect_str(source.get("type"), at(where, "type"))
    if kind == "url":
        return expect_str(source.get("url"), at(where, "url"))
    if kind == "base64":
        media_type = expect_str(source.get("media_type"), at(where, "media_type"))
        if not media_type.startswith(media_prefix):
            invalid_value(at(where, "media_type"), media_type, (f"{media_prefix}*",))
        return f"data:{media_type};base64,{expect_str(source.get('data'), at(where, 'data'))}"
    if kind == "text" and not media_prefix:
        text = expect_str(source.get("data"), at(where, "data"))
        return f"data:text/plain;base64,{base64.b64encode(text.encode()).decode()}"
    invalid_value(at(where, "type"), kind, ("base64", "url") + (() if media_prefix else ("text",)))
