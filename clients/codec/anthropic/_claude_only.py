"""Content blocks only Claude reads, at the Messages API entrance: a custom content document
(`document` with `source.type: "content"`) and a `search_result` block (a user turn's, or a
tool_result's, where a search tool gives them). OpenAI's chat API has no part for them: each
becomes a text part of its readable text (what any other deployment reads) carrying the block
as the caller wrote it (`BLOCK_KEY`), which the router's Anthropic provider sends instead, so a
Claude deployment cites them (`content_block_location`, `search_result_location`).

Followed:
- Custom content documents: https://docs.claude.com/en/docs/build-with-claude/citations
  (ContentBlockSource: `content` a string or text and image blocks)
- Search results: https://docs.claude.com/en/docs/build-with-claude/search-results
  (`source`, `title`, `content` of text blocks; `citations`, `cache_control`)
"""

from __future__ import annotations

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
from clients.codec.anthropic._server_tools import BLOCK_KEY

__all__ = ["claude_only_part", "is_claude_only"]

JsonObject = dict[str, Any]


def is_claude_only(block: JsonObject) -> bool:
    """Whether a user content block is one of these."""
    if block.get("type") == "search_result":
        return True
    source = block.get("source")
    return (
        block.get("type") == "document"
        and isinstance(source, dict)
        and (source.get("type") == "content")
    )


def claude_only_part(block: JsonObject, path: str) -> JsonObject:
    """The text part standing for `block` (checked for what Claude requires, so a malformed one
    is a 400 naming its path whichever deployment answers), the block whole on it."""
    if block["type"] == "search_result":
        for key in ("source", "title", "content"):
            if key not in block:
                missing(at(path, key))
        head = [expect_str(block["title"], at(path, "title"))]
        head.append(expect_str(block["source"], at(path, "source")))
        texts = _texts(block["content"], at(path, "content"), images=False)
    else:
        where = at(path, "source")
        source = expect_object(block["source"], where)
        if "content" not in source:
            missing(at(where, "content"))
        title = block.get("title")
        head = [] if title is None else [expect_str(title, at(path, "title"))]
        texts = _texts(source["content"], at(where, "content"), images=True)
    if block.get("citations") is not None:
        expect_object(block["citations"], at(path, "citations"))
    text = "\n\n".join(part for part in ["\n".join(head), *texts] if part)
    return {"type": "text", "text": text, BLOCK_KEY: dict(block)}


def _texts(content: Any, path: str, *, images: bool) -> list[str]:
    """The texts of a block's content: a string (a document's), or text blocks (and, in a
    document, image blocks, which only Claude sees)."""
    if isinstance(content, str) and images:
        return [content]
    texts = []
    for i, value in enumerate(expect_list(content, path)):
        where = at_index(path, i)
        item = expect_object(value, where)
        kind = expect_str(item.get("type"), at(where, "type"))
        if kind == "text":
            texts.append(expect_str(item.get("text"), at(where, "text")))
        elif not (images and kind == "image"):
            allowed = ("text", "image") if images else ("text",)
            invalid_value(at(where, "type"), kind, allowed)
    return texts
