"""OpenAI `chat.completion.chunk`s (as `chunk_to_openai` writes them) → the Messages API's
stream events, in the order Anthropic sends them.

Followed: https://docs.claude.com/en/docs/build-with-claude/streaming: `message_start`, then
each content block as `content_block_start`, its `content_block_delta`s (`text_delta`,
`input_json_delta`, `thinking_delta`, `signature_delta`) and `content_block_stop`, one block
after the other; then `message_delta` (stop_reason and stop_sequence, cumulative usage) and
`message_stop`;
`ping` any time, and `error` instead of the end when the stream fails.

OpenAI numbers tool calls, Anthropic numbers content blocks: `_tools` maps one to the other.
A block cannot take deltas once stopped, and some upstreams interleave the arguments of parallel
tool calls: a tool call that begins while another one's block is open is held, whole, and sent
as a block of its own at the end (`_held`). So is one whose name has not come yet (a server may
send it after the call's first piece): its block starts with it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from clients.codec._said import said
from clients.codec.anthropic._response import message_id, stopped, usage_to_anthropic
from clients.codec.anthropic._server_tools import (
    BLOCK_KEY,
    CITATION_KEY,
    STOP_KEY,
    TEXT_BLOCK_KEY,
)
from clients.codec.anthropic._tables import anthropic_error

__all__ = ["PING", "MessageEvents"]

JsonObject = dict[str, Any]

PING: JsonObject = {"type": "ping"}


class MessageEvents:
    """One stream's events: feed it the chunks (`chunk`), end it with `finish` or `error`."""

    def __init__(self, model: str, stops: Sequence[str] = (), input_tokens: int = 0) -> None:
        """`input_tokens`: the prompt's count `message_start` says (the router's estimate: the
        upstream says its own at the end, on `message_delta`)."""
        self._model = model
        self._input_tokens = input_tokens
        self._stops = tuple(stop for stop in stops if stop)  # the request's stop_sequences
        self._longest = max(map(len, self._stops), default=0)
        self._tail = ""  # the text's end, as long as the longest stop sequence
        self._matched: str | None = None  # the stop sequence the upstream said ended it
        self._started = False
        self._blocks = 0  # content blocks started
        self._open: str | None = None  # the kind of the block open now ("text", "thinking", …)
        self._tools: dict[int, int] = {}  # OpenAI tool call index → content block index
        # Tool calls begun while another one streamed: (their block, their arguments so far).
        self._held: dict[int, tuple[JsonObject, list[str]]] = {}
        self._finish: Any = None
        self._claude_stop: Any = None  # a Claude deployment's stop reason (`pause_turn`)
        self._usage: Mapping[str, Any] | None = None

    def chunk(self, chunk: Mapping[str, Any]) -> list[JsonObject]:
        events = self._start(chunk)
        if isinstance(chunk.get("usage"), dict):
            self._usage = chunk["usage"]
        for choice in chunk.get("choices") or ():
            if choice.get("index", 0) != 0:
                continue  # Anthropic has no `n`: the first choice is the answer
            events += self._delta(choice.get("delta") or {})
            if choice.get("finish_reason"):
                self._finish = choice["finish_reason"]
            if isinstance(choice.get("stop_reason"), str):
                self._matched = choice["stop_reason"]
            if isinstance(choice.get(STOP_KEY), str):
                self._claude_stop = choice[STOP_KEY]
        return events

    def finish(self, usage: Mapping[str, Any] | None = None) -> list[JsonObject]:
        """The end of a complete stream; `usage` (OpenAI's) when the stream's chunks had none."""
        events = self._start({}) + self._close() + self._release_held()
        called = bool(self._tools)  # every call, held ones too (released above)
        delta = stopped(
            self._finish, self._matched, self._tail, self._stops, self._claude_stop, called=called
        )
        counts = usage_to_anthropic(self._usage or usage)
        events.append({"type": "message_delta", "delta": delta, "usage": counts})
        events.append({"type": "message_stop"})
        return events

    def error(self, kind: str, message: str) -> list[JsonObject]:
        """A failed stream's last event (after `message_start`, which the SDK expects first)."""
        return [*self._start({}), anthropic_error(kind, message)]

    def _start(self, chunk: Mapping[str, Any]) -> list[JsonObject]:
        if self._started:
            return []
        self._started = True
        self._model = str(chunk.get("model") or self._model)
        message: JsonObject = {
            "id": message_id(str(chunk.get("id") or "stream")),
            "type": "message",
            "role": "assistant",
            "model": self._model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": self._start_input_tokens(chunk), "output_tokens": 0},
        }
        return [{"type": "message_start", "message": message}]

    def _start_input_tokens(self, chunk: Mapping[str, Any]) -> int:
        """The upstream's count when the first chunk says it, else the router's estimate."""
        usage = chunk.get("usage")
        if isinstance(usage, Mapping) and usage.get("prompt_tokens"):
            return int(usage_to_anthropic(usage)["input_tokens"])
        return self._input_tokens

    def _delta(self, delta: Mapping[str, Any]) -> list[JsonObject]:
        events: list[JsonObject] = []
        reasoning = delta.get("reasoning_content")
        if isinstance(reasoning, str) and reasoning:
            block = {"type": "thinking", "thinking": "", "signature": ""}
            events += self._open_block("thinking", block)
            events.append(self._block_delta({"type": "thinking_delta", "thinking": reasoning}))
        for signed in delta.get("thinking_blocks") or ():
            events += self._signed(signed)
        events += self._claude_blocks(delta)
        text = said(delta)  # a refusal too (`_said`)
        if text:
            if self._longest:
                self._tail = (self._tail + text)[-self._longest :]
            events += self._open_block("text", {"type": "text", "text": ""})
            events.append(self._block_delta({"type": "text_delta", "text": text}))
        for call in delta.get("tool_calls") or ():
            events += self._tool_call(call)
        return events

    def _claude_blocks(self, delta: Mapping[str, Any]) -> list[JsonObject]:
        """What a Claude deployment streamed that OpenAI's chunks have no word for: a text
        block's start (its boundary, and `citations` when cited), a citation of the text block
        streaming, a server tool block whole (its call's input streamed again, as Claude does,
        as one `input_json_delta`; a result block whole in its start)."""
        events: list[JsonObject] = []
        started = delta.get(TEXT_BLOCK_KEY)
        if isinstance(started, dict):
            events += self._open_block("text", dict(started), force=True)
        citation = delta.get(CITATION_KEY)
        if isinstance(citation, dict):
            events += self._open_block("text", {"type": "text", "text": "", "citations": []})
            events.append(self._block_delta({"type": "citations_delta", "citation": citation}))
        block = delta.get(BLOCK_KEY)
        if isinstance(block, dict):
            if block.get("type") != "server_tool_use":
                return events + self._open_block("server", dict(block), force=True) + self._close()
            given = block.get("input")
            events += self._open_block("server", {**block, "input": {}}, force=True)
            if given:
                partial = orjson.dumps(given).decode()
                events.append(
                    self._block_delta({"type": "input_json_delta", "partial_json": partial})
                )
            events += self._close()
        return events

    def _signed(self, block: Any) -> list[JsonObject]:
        """A whole thinking block an Anthropic upstream streamed (sent when it stopped): the
        signature of the one streaming now, or a block of its own (redacted thinking)."""
        if not isinstance(block, dict):
            return []
        if block.get("type") == "thinking" and self._open == "thinking":
            signature = str(block.get("signature") or "")
            return [self._block_delta({"type": "signature_delta", "signature": signature})]
        return self._open_block("signed", dict(block)) + self._close()

    def _tool_call(self, call: Mapping[str, Any]) -> list[JsonObject]:
        position = int(call.get("index") or 0)
        function = call.get("function") or {}
        arguments = function.get("arguments")
        pieces = [arguments] if isinstance(arguments, str) else []
        name = str(function.get("name") or "")  # a server's may come after its first piece
        if position in self._held:
            block, held = self._held[position]
            block["name"] = block["name"] or name
            block["id"] = block["id"] or str(call.get("id") or "")  # it may come with the name
            held += pieces
            if not block["name"] or self._tool_open():
                return []
            del self._held[position]  # its name came, and no other call streams: it starts
            return self._start_tool(position, block, held)
        if position not in self._tools:
            block = {"type": "tool_use", "id": str(call.get("id") or ""), "name": name, "input": {}}
            if not name or self._tool_open():
                # Its block starts with its name: held until that comes. Or its arguments may
                # interleave with the open call's: held until the end.
                self._held[position] = (block, pieces)
                return []
            return self._start_tool(position, block, pieces)
        if isinstance(arguments, str) and arguments:
            delta = {"type": "input_json_delta", "partial_json": arguments}
            return [self._block_delta(delta, self._tools[position])]
        return []

    def _tool_open(self) -> bool:
        return self._open is not None and self._open.startswith("tool ")

    def _start_tool(self, position: int, block: JsonObject, pieces: list[str]) -> list[JsonObject]:
        """A tool call's block started, with its arguments so far."""
        events = self._open_block(f"tool {position}", block, force=True)
        self._tools[position] = self._blocks - 1
        if "".join(pieces):
            delta = {"type": "input_json_delta", "partial_json": "".join(pieces)}
            events.append(self._block_delta(delta, self._tools[position]))
        return events

    def _release_held(self) -> list[JsonObject]:
        """The held tool calls, each a whole block, in their order."""
        events: list[JsonObject] = []
        for position in sorted(self._held):
            block, arguments = self._held[position]
            events += self._start_tool(position, block, arguments)
            events += self._close()
        self._held.clear()
        return events

    def _open_block(self, kind: str, block: JsonObject, *, force: bool = False) -> list[JsonObject]:
        """Start a block of `kind` unless one is open (`force`: a new one all the same), closing
        the one open before."""
        if self._open == kind and not force:
            return []
        events = self._close()
        start = {"type": "content_block_start", "index": self._blocks, "content_block": block}
        events.append(start)
        self._blocks += 1
        self._open = kind
        return events

    def _close(self) -> list[JsonObject]:
        if self._open is None:
            return []
        self._open = None
        return [{"type": "content_block_stop", "index": self._blocks - 1}]

    def _block_delta(self, delta: JsonObject, index: int | None = None) -> JsonObject:
        at = self._blocks - 1 if index is None else index
        return {"type": "content_block_delta", "index": at, "delta": delta}
