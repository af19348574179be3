"""A stream's calls of emulated custom tools (_custom_tools.py) as custom calls, as they come.

An emulated call's argument deltas are pieces of `{"input": "…"}`: each is decoded as far as
it goes (an escape cut in two waits for its end) and sent on as that call's piece of `input`, so
a caller sees the patch being written as it would from an upstream with custom tools. When the
choice finishes, what the decoding could not follow (a model that wrote other JSON than asked)
is sent then: the caller's call holds the whole input either way.

A call whose name has not come yet (a server may send it after the call's first pieces) is
held, out of its chunks, until it comes: then it is said whole so far, a custom call or the
function call it is; one never named is said at the finish, as it came.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import orjson

from clients.switchboard.v1 import chat_pb2
from router_service.engine._custom_tools import input_of, restore_call

__all__ = ["CustomCallDeltas", "decode_input"]

_START = re.compile(r'\s*\{\s*"input"\s*:\s*"')
_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}


def decode_input(text: str, pos: int) -> tuple[str, int]:
    """The `input` string's characters decoded from `text` (a JSON object so far) at `pos` (0:
    before the string), and where to go on from; `pos` -1: the string has ended."""
    if pos == 0:
        start = _START.match(text)
        if start is None:
            return "", 0
        pos = start.end()
    out: list[str] = []
    while pos < len(text):
        char = text[pos]
        if char == '"':
            return "".join(out), -1
        if char != "\\":
            out.append(char)
            pos += 1
            continue
        escaped = _escape(text, pos)
        if escaped is None:  # cut in two (or not JSON): the next delta tells
            break
        out.append(escaped[0])
        pos = escaped[1]
    return "".join(out), pos


def _escape(text: str, pos: int) -> tuple[str, int] | None:
    """The character an escape at `pos` stands for and the position after it; None: unfinished
    or malformed."""
    kind = text[pos + 1 : pos + 2]
    if kind in _ESCAPES:
        return _ESCAPES[kind], pos + 2
    if kind != "u" or pos + 6 > len(text):
        return None
    try:
        code = int(text[pos + 2 : pos + 6], 16)
        if not 0xD800 <= code < 0xDC00:
            return chr(code), pos + 6
        if pos + 12 > len(text) or text[pos + 6 : pos + 8] != "\\u":
            return None
        low = int(text[pos + 8 : pos + 12], 16)
    except ValueError:
        return None
    return chr(0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)), pos + 12


@dataclass(slots=True)
class _Call:
    arguments: list[str] = field(default_factory=list)
    sent: list[str] = field(default_factory=list)  # the input sent on so far
    pos: int = 0  # where decoding goes on in the arguments (-1: the string ended)
    # Its pieces so far (their arguments in `arguments`), while its name has not come.
    held: chat_pb2.ToolCall | None = None


_UNSEEN = _Call()  # a call not seen yet (`CustomCallDeltas._calls`)


class CustomCallDeltas:
    """Rewrites a stream's chunks, in place, with the calls of the emulated tools (`names`) as
    custom calls."""

    def __init__(self, names: frozenset[str]) -> None:
        self._names = names
        # (choice, call index) → its state: None for a call of another tool
        self._calls: dict[tuple[int, int], _Call | None] = {}

    def rewrite(self, chunk: chat_pb2.ChatCompletionChunk) -> None:
        for choice in chunk.choices:
            calls = choice.delta.tool_calls
            held = [k for k, call in enumerate(calls) if self._restore(choice.index, call)]
            for k in reversed(held):
                del calls[k]
            if choice.finish_reason or choice.finish_reason_raw:
                self._finish(choice)

    def _restore(self, choice: int, call: chat_pb2.ToolCall) -> bool:
        """Whether `call` is held (its name yet to come): then taken out of its chunk."""
        key = (choice, call.index)
        state = self._calls.get(key, _UNSEEN)
        if state is None:
            return False
        if state is _UNSEEN or state.held is not None:
            state = self._named(key, call, None if state is _UNSEEN else state)
            if state is None or state.held is not None:
                return state is not None
        else:
            state.arguments.append(call.function.arguments)
        piece = ""
        if state.pos >= 0:
            piece, state.pos = decode_input("".join(state.arguments), state.pos)
        state.sent.append(piece)
        restore_call(call, piece)
        return False

    def _named(
        self, key: tuple[int, int], call: chat_pb2.ToolCall, state: _Call | None
    ) -> _Call | None:
        """The state of a call not yet named, `call` its latest piece: held while it has no
        name; once named, `call` is its pieces so far, and None for another tool's."""
        if state is not None and state.held is not None:
            whole = "".join(state.arguments) + call.function.arguments
            merged = chat_pb2.ToolCall()
            merged.CopyFrom(state.held)
            merged.MergeFrom(call)
            merged.function.arguments = whole
            call.CopyFrom(merged)
        if not call.function.name:
            state = state or _Call()
            if state.held is None:
                state.held = chat_pb2.ToolCall()
            state.held.CopyFrom(call)
            state.arguments = [call.function.arguments]
            self._calls[key] = state
            return state
        if call.function.name not in self._names:
            self._calls[key] = None
            return None
        state = self._calls[key] = _Call(arguments=[call.function.arguments])
        return state

    def _finish(self, choice: chat_pb2.ChunkChoice) -> None:
        for (index, call_index), state in list(self._calls.items()):
            if index != choice.index:
                continue
            del self._calls[(index, call_index)]
            if state is None:
                continue
            if state.held is not None:  # never named: as it came
                choice.delta.tool_calls.add().CopyFrom(state.held)
                continue
            whole, sent = input_of("".join(state.arguments)), "".join(state.sent)
            if whole == sent or not whole.startswith(sent):
                continue
            rest = {"custom": {"input": whole[len(sent) :]}}
            choice.delta.tool_calls.add(index=call_index, extra_json=orjson.dumps(rest).decode())
