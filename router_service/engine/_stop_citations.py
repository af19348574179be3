"""An answer's citations cut with its text where the router enforces a stop (_stops.py): as an
upstream that had honoured the stop would not have written the text past it, nothing may cite
that text. A citation that begins before the cut is kept, its span ended there; one of text past
it (a file citation's `index` past it) is dropped (`cut_annotations`). A call's are cut with its
message; a stream's wait for the text they cite (they may come amid the text, before the stop
does: an upstream's annotation events), then go out with it, those still held when a stop ends
the choice cut first. The answer's guardrails, after the stops, see them so."""

from __future__ import annotations

import orjson

from clients.switchboard.v1 import chat_pb2
from router_service.guardrails._citations import (
    HeldCitations,
    StreamEdits,
    cut_annotations,
)
from router_service.guardrails._texts import json_object

__all__ = ["StopCitations", "cut_message_citations"]

_ANNOTATIONS = "annotations"


def cut_message_citations(message: chat_pb2.ChatMessage, at: int) -> None:
    """`message`'s annotations (its unmodelled `annotations`) of its text cut at `at`."""
    if f'"{_ANNOTATIONS}"' not in message.extra_json:
        return
    extra = json_object(message.extra_json)
    found = None if extra is None else extra.get(_ANNOTATIONS)
    if extra is None or not isinstance(found, list):
        return
    extra[_ANNOTATIONS] = cut_annotations(found, at)
    message.extra_json = orjson.dumps(extra).decode()


class StopCitations:
    """A stream's choices' annotations, each held until the text it cites was released."""

    __slots__ = ("_held", "_released")

    def __init__(self) -> None:
        self._held: dict[int, HeldCitations] = {}
        self._released: dict[int, StreamEdits] = {}  # how much of each choice's text went out

    def take(self, choice: chat_pb2.ChunkChoice) -> None:
        """Hold the annotations of the choice's delta (taken out of it)."""
        if f'"{_ANNOTATIONS}"' in choice.delta.extra_json:
            held = self._held.setdefault(choice.index, HeldCitations())
            choice.delta.extra_json = held.take(choice.delta.extra_json)

    def release(
        self, choice: chat_pb2.ChunkChoice, text: str, *, final: bool = False, cut: bool = False
    ) -> None:
        """`text` of the choice goes out in its delta: with it, the held annotations whose text
        is now out (all once it is `final`; those of the text before it, when a stop `cut` the
        choice there)."""
        released = self._released.setdefault(choice.index, StreamEdits())
        released.released += len(text)
        held = self._held.get(choice.index)
        if held is None:
            return
        if cut:
            held.cut(released.released)
        delta = choice.delta
        delta.extra_json = held.give(delta.extra_json, released, final or cut)
