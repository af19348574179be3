"""Anthropic's server tools in the fake Messages API: a request whose first tool is a web search
(`web_search_…`) or web fetch (`web_fetch_…`) tool, with `Scenario.tool_call`, is answered as
Claude runs them: a `server_tool_use` block (the search's query: the last user text; the fetch's
URL), the tool's result block with a canned result, then text citing it, and
`usage.server_tool_use` counting the request. With `Scenario.finish_reason="pause_turn"` the
turn pauses after the result (Claude's long-running turn, continued by sending it back).

Shapes from https://docs.claude.com/en/docs/agents-and-tools/tool-use/web-search-tool and
.../web-fetch-tool; streamed as https://docs.claude.com/en/docs/build-with-claude/streaming
says: the call's input as input_json_delta, the result whole in its content_block_start, the
cited text's citation as a citations_delta before its text_delta.

A request whose `document` block asks for citations (`"citations": {"enabled": true}`) is
answered with an uncited text block (`CITING`), then its text citing that document, the
location by its source, as https://docs.claude.com/en/docs/build-with-claude/citations gives:
a `char_location` in a plain text document, a `page_location` in a PDF, a
`content_block_location` in custom content.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from . import _responses as R

__all__ = [
    "SERVER_TOOL_USE_ID",
    "cited_answer",
    "server_answer",
    "server_block_events",
    "server_tool",
]

SERVER_TOOL_USE_ID = "srvtoolu_fake_1"
RESULT_URL = "https://example.com/fake-result"
_TOOL = re.compile(r"^(web_search|web_fetch)_\d{8}$")
_PAGE = "Fake page text."

JsonObject = dict[str, Any]


def server_tool(body: JsonObject) -> str | None:
    """`web_search` or `web_fetch` when the request's first tool is that server tool."""
    tools = body.get("tools")
    first = tools[0] if isinstance(tools, list) and tools else None
    matched = _TOOL.match(str(first.get("type"))) if isinstance(first, dict) else None
    return matched.group(1) if matched else None


def _call_and_result(tool: str, query: str) -> list[JsonObject]:
    if tool == "web_search":
        result: JsonObject = {
            "type": "web_search_tool_result",
            "tool_use_id": SERVER_TOOL_USE_ID,
            "content": [
                {
                    "type": "web_search_result",
                    "url": RESULT_URL,
                    "title": "Fake result",
                    "encrypted_content": "ZmFrZS1yZXN1bHQ=",
                    "page_age": "April 1, 2025",
                }
            ],
        }
        arguments: JsonObject = {"query": query}
    else:
        document = {
            "type": "document",
            "source": {"type": "text", "media_type": "text/plain", "data": _PAGE},
            "title": "Fake page",
            "citations": {"enabled": True},
        }
        fetched = {"type": "web_fetch_result", "url": RESULT_URL, "content": document}
        result = {
            "type": "web_fetch_tool_result",
            "tool_use_id": SERVER_TOOL_USE_ID,
            "content": {**fetched, "retrieved_at": "2025-09-10T00:00:00Z"},
        }
        arguments = {"url": RESULT_URL}
    call = {"type": "server_tool_use", "id": SERVER_TOOL_USE_ID, "name": tool, "input": arguments}
    return [call, result]


def _citation(tool: str) -> JsonObject:
    if tool == "web_search":
        return {
            "type": "web_search_result_location",
            "url": RESULT_URL,
            "title": "Fake result",
            "encrypted_index": "ZmFrZS1pbmRleA==",
            "cited_text": "Fake result text.",
        }
    return {
        "type": "char_location",
        "cited_text": _PAGE,
        "document_index": 0,
        "document_title": "Fake page",
        "start_char_index": 0,
        "end_char_index": len(_PAGE),
    }


def server_answer(tool: str, answer: R.ChatAnswer, paused: bool) -> tuple[list[JsonObject], str]:
    """The answer's content blocks and stop reason."""
    blocks: list[JsonObject] = [{"type": "text", "text": "Let me look that up."}]
    blocks += _call_and_result(tool, answer.text.removeprefix("Echo: "))
    if paused:
        return blocks, "pause_turn"
    blocks.append({"type": "text", "text": answer.text, "citations": [_citation(tool)]})
    return blocks, "end_turn"


# A cited document's citation, by its source's type: its type and where its span starts and ends.
_LOCATION = {
    "text": ("char_location", "start_char_index", "end_char_index"),
    "base64": ("page_location", "start_page_number", "end_page_number"),
    "url": ("page_location", "start_page_number", "end_page_number"),
    "content": ("content_block_location", "start_block_index", "end_block_index"),
}


# The uncited text before a document's cited answer (Claude's answers alternate the two).
CITING = "From the document: "


def cited_answer(body: JsonObject, answer: R.ChatAnswer) -> list[JsonObject] | None:
    """The answer's text citing the first document of the request that asks for citations
    (`document_index`: its place among the request's documents), else the first search result
    that does (`search_result_index`; a tool_result's too), after a text block citing nothing
    (`CITING`); None without one."""
    blocks = [
        block
        for message in body.get("messages") or ()
        if isinstance(message, dict) and isinstance(message.get("content"), list)
        for block in _with_results(message["content"])
    ]
    for kind in ("document", "search_result"):
        found = [block for block in blocks if block.get("type") == kind]
        for index, block in enumerate(found):
            if (block.get("citations") or {}).get("enabled"):
                citation = _cited(block, index, answer.text)
                return [
                    {"type": "text", "text": CITING},
                    {"type": "text", "text": answer.text, "citations": [citation]},
                ]
    return None


def _with_results(content: list[Any]) -> list[JsonObject]:
    """A turn's blocks, a tool_result's own content blocks after it."""
    out = []
    for block in content:
        if isinstance(block, dict):
            out.append(block)
            inner = block.get("content") if block.get("type") == "tool_result" else None
            out += [b for b in inner if isinstance(b, dict)] if isinstance(inner, list) else []
    return out


def _cited(block: JsonObject, index: int, text: str) -> JsonObject:
    if block.get("type") == "search_result":
        return {
            "type": "search_result_location",
            "cited_text": text,
            "search_result_index": index,
            "source": block.get("source"),
            "title": block.get("title"),
            "start_block_index": 0,
            "end_block_index": 1,
        }
    source = str((block.get("source") or {}).get("type"))
    kind, start, end = _LOCATION.get(source, _LOCATION["text"])
    # Characters count from 0, end exclusive; pages from 1, blocks from 0, ends exclusive.
    span = {"char_location": (0, len(text)), "page_location": (1, 2)}.get(kind, (0, 1))
    return {
        "type": kind,
        "cited_text": text,
        "document_index": index,
        "document_title": block.get("title"),
        start: span[0],
        end: span[1],
    }


def server_usage(tool: str) -> JsonObject:
    searched = int(tool == "web_search")
    return {"web_search_requests": searched, "web_fetch_requests": 1 - searched}


def server_block_events(blocks: list[JsonObject]) -> list[JsonObject]:
    """The content block events of `blocks`, as Claude streams them."""
    events: list[JsonObject] = []
    for index, block in enumerate(blocks):
        start, deltas = dict(block), []
        if block["type"] == "server_tool_use":
            start["input"] = {}
            given = orjson.dumps(block["input"]).decode()
            half = len(given) // 2
            deltas = [
                {"type": "input_json_delta", "partial_json": p}
                for p in (given[:half], given[half:])
            ]
        elif block["type"] == "text":
            start = {"type": "text", "text": ""}
            cited = [{"type": "citations_delta", "citation": c} for c in block.get("citations", ())]
            deltas = [*cited, {"type": "text_delta", "text": block["text"]}]
        events.append({"type": "content_block_start", "index": index, "content_block": start})
        events += [{"type": "content_block_delta", "index": index, "delta": d} for d in deltas]
        events.append({"type": "content_block_stop", "index": index})
    return events
