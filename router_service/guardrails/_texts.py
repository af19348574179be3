"""The texts of a request that reach an upstream, each as a slot that can be read and replaced.

Scanned: chat messages of every role (string content, text parts, refusals, tool call and
function call arguments; a tool result is a `tool` message's content), so legacy completion
prompts and Responses API input too (the edge sends both as chat messages), and embeddings'
string inputs. Not scanned: images, audio and files (no text), token-id inputs, raw JSON parts
of kinds the contract does not model, tool definitions and `extra_json` passthrough fields.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from clients.switchboard.v1 import chat_pb2, embeddings_pb2

__all__ = ["TextSlot", "chat_texts", "embedding_texts", "message_texts"]

Where = tuple[str | int, ...]


class TextSlot:
    """One text field: `owner.<key>` (a message's field) or `owner[key]` (a repeated string)."""

    __slots__ = ("_key", "_owner", "where")

    def __init__(self, owner: Any, key: str | int, where: Where) -> None:
        self._owner = owner
        self._key = key
        self.where = where

    @property
    def text(self) -> str:
        if isinstance(self._key, str):
            return str(getattr(self._owner, self._key))
        return str(self._owner[self._key])

    def replace(self, text: str) -> None:
        if isinstance(self._key, str):
            setattr(self._owner, self._key, text)
        else:
            self._owner[self._key] = text

    @property
    def path(self) -> str:
        """`messages[2].content` from `("messages", 2, "content")`."""
        out = ""
        for part in self.where:
            out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
        return out


def chat_texts(params: chat_pb2.ChatParams) -> Iterator[TextSlot]:
    return message_texts(params.messages, "messages")


def message_texts(messages: Iterable[chat_pb2.ChatMessage], field: str) -> Iterator[TextSlot]:
    for i, message in enumerate(messages):
        kind = message.WhichOneof("content")
        if kind == "text":
            yield TextSlot(message, "text", (field, i, "content"))
        elif kind == "parts":
            for j, part in enumerate(message.parts.parts):
                if part.WhichOneof("part") == "text":
                    yield TextSlot(part.text, "text", (field, i, "content", j, "text"))
        if message.HasField("refusal"):
            yield TextSlot(message, "refusal", (field, i, "refusal"))
        for k, call in enumerate(message.tool_calls):
            if call.function.arguments:
                where: Where = (field, i, "tool_calls", k, "function", "arguments")
                yield TextSlot(call.function, "arguments", where)
        if message.function_call.arguments:
            where = (field, i, "function_call", "arguments")
            yield TextSlot(message.function_call, "arguments", where)


def embedding_texts(params: embeddings_pb2.EmbeddingParams) -> Iterator[TextSlot]:
    which = params.WhichOneof("input")
    if which == "text":
        yield TextSlot(params, "text", ("input",))
    elif which == "texts":
        for j in range(len(params.texts.values)):
            yield TextSlot(params.texts.values, j, ("input", j))
