"""The Responses stream's open output items and the names of their events
(`_responses_stream.ResponseEventStream`'s)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from clients.codec._responses_custom import custom_call_item
from clients.codec._responses_output import call_item

__all__ = [
    "CALL_EVENTS",
    "DELTA_EVENTS",
    "PART_EVENTS",
    "PART_TYPES",
    "OpenItem",
    "closing_order",
    "open_call_item",
]

# The delta event of each kind of streamed text.
DELTA_EVENTS = {
    "message": "response.output_text.delta",
    "refusal": "response.refusal.delta",
    "reasoning": "response.reasoning_text.delta",
    "summary": "response.reasoning_summary_text.delta",
}
PART_TYPES = {"reasoning": "reasoning_text", "summary": "summary_text"}
# The events that open and close a text item's part: a reasoning summary's are its own.
PART_EVENTS = {"summary": "response.reasoning_summary_part"}

# The prefix of each kind of call's delta and done events.
CALL_EVENTS = {
    "function_call": "response.function_call_arguments",
    "custom_tool_call": "response.custom_tool_call_input",
}


@dataclass
class OpenItem:
    """An output item whose deltas are still coming."""

    index: int  # its output_index
    item_id: str
    # "message", "refusal", "reasoning", "summary" (an upstream's reasoning item: its summary
    # streamed), "function_call" or "custom_tool_call"
    kind: str
    pieces: list[str] = field(default_factory=list)
    logprobs: list[dict[str, Any]] = field(default_factory=list)  # a message's, when asked
    call_id: str = ""
    name: str = ""
    signed: list[dict[str, Any]] = field(default_factory=list)  # Claude's, of a reasoning item
    part: int = 0  # a summary's: the index of the part its words go to
    part_start: int = 0  # where that part's pieces start
    annotations: list[dict[str, Any]] = field(default_factory=list)  # a message's (url_citation)

    @property
    def text(self) -> str:
        return "".join(self.pieces)

    @property
    def part_text(self) -> str:
        return "".join(self.pieces[self.part_start :])


def open_call_item(call: OpenItem, text: str, status: str) -> dict[str, Any]:
    """A streamed call's item (`function_call` or `custom_tool_call`), its input `text`."""
    make = call_item if call.kind == "function_call" else custom_call_item
    return make(call.item_id, call.call_id, call.name, text, status)


def closing_order(calls: dict[int, OpenItem]) -> list[OpenItem]:
    """The open calls (by chat index) in the order they close: their output order (a call
    named late follows one announced before it), then those never named (no place yet)."""
    return [c for _, c in sorted(calls.items(), key=lambda c: (c[1].index < 0, c[1].index, c[0]))]
