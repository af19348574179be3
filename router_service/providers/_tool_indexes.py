"""The `index` of an OpenAI-compatible stream's tool-call deltas, where the upstream leaves it
out. Gemini's OpenAI-compatible endpoint does: each call comes whole in a delta of its own,
told apart by its `id` alone. Read as OpenAI's (a missing index is 0), parallel calls were one
call whose arguments joined them all (`{"city":"Paris"}{"city":"Rome"}`), named after the
first: a chat caller's stream helper refused it, a Responses caller got that one broken call.

A delta without an index is the call its `id` names (a new id: the next call); one without an
id continues the call last spoken of, unless another came before it in its delta's list (a
list never names one call twice): then it is the next call. Deltas that carry their index
keep it, and the calls they name are known by their ids too, so that a stream mixing both
stays in order. Each choice (`n`) numbers its own calls, as OpenAI's do."""

from __future__ import annotations

from typing import Any

__all__ = ["ToolIndexes"]


class ToolIndexes:
    """One stream's tool calls by id, giving each delta without an `index` the call's."""

    __slots__ = ("_choices",)

    def __init__(self) -> None:
        self._choices: dict[int, _ChoiceCalls] = {}  # a choice's index → its calls

    def fill(self, data: dict[str, Any]) -> None:
        """Set the index of the tool-call deltas of `data` (a chunk's JSON) that have none.
        Read on the JSON, as the finish reasons are: a chunk of text costs a lookup or two."""
        choices = data.get("choices")
        for choice in choices if isinstance(choices, list) else ():
            delta = choice.get("delta") if isinstance(choice, dict) else None
            calls = delta.get("tool_calls") if isinstance(delta, dict) else None
            if isinstance(calls, list):
                key = choice.get("index")  # the codec calls one of no number malformed
                key = key if isinstance(key, int) else 0
                said = self._choices.get(key) or self._choices.setdefault(key, _ChoiceCalls())
                for n, call in enumerate(calls):
                    if isinstance(call, dict):
                        said.place(call, later=n > 0)


class _ChoiceCalls:
    """One choice's tool calls: by id, the one last spoken of, the index a new one gets."""

    __slots__ = ("_by_id", "_last", "_next")

    def __init__(self) -> None:
        self._by_id: dict[str, int] = {}
        self._last = 0
        self._next = 0

    def place(self, call: dict[str, Any], *, later: bool) -> None:
        """`later`: not the first of its delta's list, so never the call before it."""
        call_id = call.get("id")
        index = call.get("index")
        if not isinstance(index, int):
            if isinstance(call_id, str) and call_id:
                index = self._by_id.get(call_id, self._next)
            else:
                index = self._next if later else self._last
            call["index"] = index
        if isinstance(call_id, str) and call_id:
            self._by_id.setdefault(call_id, index)
        self._last = index
        self._next = max(self._next, index + 1)
