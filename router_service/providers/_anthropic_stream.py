"""Anthropic Messages API stream events → OpenAI chat chunks (the request and the whole answer:
`_anthropic_map`).

Followed: https://docs.claude.com/en/docs/build-with-claude/streaming (message_start,
content_block_start/delta/stop, message_delta, message_stop, ping, error; text_delta,
input_json_delta, thinking_delta, signature_delta, citations_delta). What OpenAI's chunks have
no word for goes along as the delta's extra keys (`clients.codec.anthropic._server_tools`): a
server tool block whole when it stopped (its call's input assembled from its
input_json_delta), a text block's start once the answer has such blocks or cited text (so that
the Messages API entrance streams the same blocks), each citation.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from clients.codec.anthropic import BLOCK_KEY, CITATION_KEY, TEXT_BLOCK_KEY
from router_service.providers import _mapping as M
from router_service.providers._anthropic_map import finish_reason, say_stopped, usage

__all__ = ["StreamMapper"]

JsonObject = dict[str, Any]
# Blocks OpenAI's chunks say in their own words; any other is Claude's own (a server tool's).
_SAID = frozenset({"text", "tool_use", "thinking", "redacted_thinking"})


class StreamMapper:
    """Stream events → OpenAI chunks. Anthropic numbers content blocks; OpenAI numbers tool
    calls: `_tools` maps one to the other."""

    def __init__(self, model: str, created: int) -> None:
        self.id = ""
        self.model = model
        self.created = created
        self._tools: dict[int, int] = {}
        self._argued: set[int] = set()  # tool blocks that sent some argument text
        # Thinking blocks being streamed, sent whole (signature included) when they stop.
        self._thinking: dict[int, JsonObject] = {}
        self._usage: JsonObject = {}
        # Claude's own blocks being streamed (a server tool's call: its input so far), sent
        # whole when they stop; once there was one (or cited text), text blocks say their start.
        self._claude: dict[int, tuple[JsonObject, list[str]]] = {}
        self._blocked = False
        # The text block started last when its start was not said and it has no text yet: a
        # citation of its own says its start then (else its text joined the one before).
        self._fresh: tuple[int, JsonObject] | None = None

    def _chunk(self, delta: JsonObject | None, **kwargs: Any) -> JsonObject:
        return M.chunk(self.id, self.created, self.model, delta, **kwargs)

    def feed(self, event: Mapping[str, Any]) -> list[JsonObject]:
        kind = event.get("type")
        if kind == "message_start":
            message = event.get("message") or {}
            self.id = str(message.get("id", ""))
            self.model = str(message.get("model") or self.model)
            self._usage.update(message.get("usage") or {})
            return [self._chunk({"role": "assistant", "content": ""})]
        if kind == "content_block_start":
            return self._block_start(int(event.get("index", 0)), event.get("content_block") or {})
        if kind == "content_block_delta":
            return self._block_delta(int(event.get("index", 0)), event.get("delta") or {})
        if kind == "content_block_stop":
            return self._block_stop(int(event.get("index", 0)))
        if kind == "message_delta":
            return self._message_delta(event)
        return []  # ping, message_stop

    def _block_start(self, index: int, block: Mapping[str, Any]) -> list[JsonObject]:
        if block.get("type") == "tool_use":
            position = self._tools.setdefault(index, len(self._tools))
            call = M.tool_call(str(block.get("id", "")), str(block.get("name", "")), "", position)
            return [self._chunk({"tool_calls": [call]})]
        if block.get("type") == "text":
            return self._text_start(index, block)
        if block.get("type") in ("thinking", "redacted_thinking"):
            self._thinking[index] = dict(block)
        elif block.get("type") not in _SAID:
            self._claude[index] = (dict(block), [])
            self._blocked = True
        return []

    def _text_start(self, index: int, block: Mapping[str, Any]) -> list[JsonObject]:
        delta: JsonObject = {}
        if self._blocked or "citations" in block:
            self._blocked = True
            delta[TEXT_BLOCK_KEY] = dict(block)
        elif not block.get("text"):
            self._fresh = (index, dict(block))
        if block.get("text"):
            delta["content"] = block["text"]
        return [self._chunk(delta)] if delta else []

    def _block_stop(self, index: int) -> list[JsonObject]:
        if index in self._thinking:
            return [self._chunk({"thinking_blocks": [self._thinking.pop(index)]})]
        if index in self._claude:
            block, partial = self._claude.pop(index)
            if partial:
                block["input"] = _input("".join(partial))
            return [self._chunk({BLOCK_KEY: block})]
        if index in self._tools and index not in self._argued:
            # A call without parameters streams no argument text; OpenAI's arguments are "{}".
            empty = {"index": self._tools[index], "function": {"arguments": "{}"}}
            return [self._chunk({"tool_calls": [empty]})]
        return []

    def _block_delta(self, index: int, delta: Mapping[str, Any]) -> list[JsonObject]:
        kind = delta.get("type")
        if kind == "text_delta":
            if self._fresh is not None:
                self._fresh = None
            return [self._chunk({"content": str(delta.get("text", ""))})]
        if kind == "input_json_delta" and index in self._claude:
            self._claude[index][1].append(str(delta.get("partial_json") or ""))
            return []
        if kind == "citations_delta" and isinstance(delta.get("citation"), dict):
            self._blocked = True  # the next text block is one of its own: say where it starts
            cited: JsonObject = {CITATION_KEY: dict(delta["citation"])}
            if self._fresh is not None and self._fresh[0] == index:
                cited[TEXT_BLOCK_KEY] = {**self._fresh[1], "citations": []}
            self._fresh = None
            return [self._chunk(cited)]
        if kind == "input_json_delta" and index in self._tools:
            if not delta.get("partial_json"):
                return []
            self._argued.add(index)
            partial = {
                "index": self._tools[index],
                "function": {"arguments": delta.get("partial_json", "")},
            }
            return [self._chunk({"tool_calls": [partial]})]
        if kind == "thinking_delta":
            text = str(delta.get("thinking", ""))
            if index in self._thinking:
                block = self._thinking[index]
                block["thinking"] = str(block.get("thinking") or "") + text
            return [self._chunk({"reasoning_content": text})]
        if kind == "signature_delta" and index in self._thinking:
            self._thinking[index]["signature"] = str(delta.get("signature", ""))
        return []

    def _message_delta(self, event: Mapping[str, Any]) -> list[JsonObject]:
        # message_delta's usage counts are cumulative; input tokens come with message_start.
        self._usage.update({k: v for k, v in (event.get("usage") or {}).items() if v is not None})
        delta = event.get("delta") or {}
        reason = finish_reason(delta.get("stop_reason"))
        chunks = [self._chunk({}, finish_reason=reason)] if reason else []
        if chunks:
            say_stopped(chunks[0]["choices"][0], delta)
        chunks.append(self._chunk(None, usage_obj=usage(self._usage)))
        return chunks


def _input(streamed: str) -> Any:
    """A server tool call's input from its input_json_delta text (a stream cut mid-call: as
    far as it came, the text)."""
    try:
        return orjson.loads(streamed)
    except orjson.JSONDecodeError:
        return streamed
