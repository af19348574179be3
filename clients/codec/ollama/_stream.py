"""OpenAI `chat.completion.chunk`s (as `chunk_to_openai` writes them) → the objects of an
Ollama stream, one per NDJSON line.

Each object carries the new text (`message.content`, or `response` for `/api/generate`) and
thinking (`thinking`) with `done: false`; the last one has `done: true`, the done_reason, the
counts and the timings (`_response.done_fields`). Ollama sends a tool call whole, where OpenAI
streams its arguments in pieces: the calls come complete in the last object's message. Only
the first choice is read (Ollama has no `n`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from clients.codec._said import said
from clients.codec._tool_pieces import StreamedCall
from clients.codec.ollama._response import (
    Timing,
    created_at,
    done_fields,
    tool_calls_to_ollama,
)

__all__ = ["StreamLines"]

JsonObject = dict[str, Any]


class StreamLines:
    """One stream's objects: feed it OpenAI's chunks (`chunk`), end it with `finish`."""

    def __init__(self, model: str, generate: bool) -> None:
        self._model = model
        self._generate = generate
        self._calls: dict[int, StreamedCall] = {}
        self._finish: Any = None
        self._usage: Mapping[str, Any] | None = None

    def chunk(self, chunk: Mapping[str, Any], now: float) -> list[JsonObject]:
        """The objects to send for `chunk` (none when it has no new text)."""
        if isinstance(chunk.get("usage"), dict):
            self._usage = chunk["usage"]
        out = []
        for choice in chunk.get("choices") or ():
            if int(choice.get("index") or 0) != 0:
                continue
            if choice.get("finish_reason"):
                self._finish = choice["finish_reason"]
            delta = choice.get("delta") or {}
            self._pieces(delta.get("tool_calls") or ())
            text, thinking = said(delta), delta.get("reasoning_content")
            if text or thinking:
                out.append(self._object(text, thinking, now))
        return out

    def finish(self, usage: Mapping[str, Any] | None, timing: Timing, now: float) -> JsonObject:
        """The last object: the complete tool calls, the counts (the chunks' usage, or
        `usage` when they had none) and the timings."""
        last = self._object("", None, now)
        if self._calls:
            calls = [self._calls[i] for i in sorted(self._calls)]
            openai = [
                {"id": c.id, "function": {"name": c.name, "arguments": "".join(c.arguments)}}
                for c in calls
            ]
            last["message"]["tool_calls"] = tool_calls_to_ollama(openai)
        return last | done_fields(self._finish, self._usage or usage, timing)

    def keepalive(self, now: float) -> JsonObject:
        """An object of no text (`done: false`), for a quiet stream (a model thinking with its
        thinking hidden, a slow upstream): a line keeps a proxy's idle timeout from cutting the
        stream, and an ollama client reads it as any other."""
        return self._object("", None, now)

    def error(self, message: str, now: float) -> JsonObject:
        """A failed stream's last object: Ollama's error (its clients raise it)."""
        return {"model": self._model, "created_at": created_at(now), "error": message}

    def _pieces(self, pieces: Any) -> None:
        for piece in pieces:
            self._calls.setdefault(int(piece.get("index") or 0), StreamedCall()).add(piece)

    def _object(self, text: str, thinking: Any, now: float) -> JsonObject:
        out: JsonObject = {"model": self._model, "created_at": created_at(now)}
        if self._generate:
            out["response"] = text
            if thinking:
                out["thinking"] = str(thinking)
        else:
            out["message"] = {"role": "assistant", "content": text}
            if thinking:
                out["message"]["thinking"] = str(thinking)
        out["done"] = False
        return out
