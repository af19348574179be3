"""Citations after a redaction: an answer's annotations (`url_citation`, `file_citation`… in
chat completions' form, under the message's unmodelled `annotations`) point into its text by
character offsets (`start_index` / `end_index`, a file citation's `index`), which a redaction
moves. They are moved with the text: an offset after a find by what its marker added or took
away, one inside a find to the marker's start (a span's start) or end (its end); a span that
lay wholly inside what was redacted cites nothing any more and is dropped. So does where a
hosted item came in the text (`text_at`: clients/codec/_responses_hosted.py).

The edits are the redact rules' own (`Rule.replacements`), each rule's on the text the rule
before it left, as `screen_text` applies them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import orjson

from clients.codec._responses_custom import HOSTED_ITEMS
from clients.codec._responses_hosted import TEXT_AT
from clients.switchboard.v1 import chat_pb2
from router_service.config import GuardrailAction
from router_service.guardrails._texts import json_object, with_replaced

if TYPE_CHECKING:  # rules exist only where configured: their detectors load with them
    from router_service.guardrails._rules import Rule

__all__ = [
    "Edits",
    "HeldCitations",
    "StreamEdits",
    "cited_text",
    "cut_annotations",
    "edits_of",
    "moved_annotations",
    "with_citations_moved",
]

# One rule's replacements (start, end, marker) in the text before it, one list per rule.
Edits = list[list[tuple[int, int, str]]]
_ANNOTATIONS = "annotations"


def cited_text(message: chat_pb2.ChatMessage) -> str | None:
    """The text a message's annotations point into (its string content); None when it has
    none (the common case: one substring test)."""
    extra = message.extra_json
    if _ANNOTATIONS not in extra and TEXT_AT not in extra:
        return None
    if message.WhichOneof("content") != "text":
        return None
    return message.text


def edits_of(text: str, rules: Sequence[Rule], actions: dict[str, GuardrailAction]) -> Edits:
    """What the redact rules of `rules` replace in `text`, one after the other."""
    edits: Edits = []
    for rule in rules:
        if actions[rule.name] != "redact":
            continue
        replaced = rule.replacements(text)
        if replaced:
            edits.append(replaced)
            text = with_replaced(text, replaced)
    return edits


def with_citations_moved(
    message: chat_pb2.ChatMessage,
    before: str,
    rules: Sequence[Rule],
    actions: dict[str, GuardrailAction],
) -> None:
    """After its text was screened (from `before`), `message`'s annotations moved with it."""
    if message.text == before:
        return
    extra = json_object(message.extra_json)
    if extra is None:
        return
    edits = edits_of(before, rules, actions)
    found = extra.get(_ANNOTATIONS)
    if isinstance(found, list):
        extra[_ANNOTATIONS] = moved_annotations(found, edits)
    hosted = extra.get(HOSTED_ITEMS)
    for item in hosted if isinstance(hosted, list) else ():
        at = item.get(TEXT_AT) if isinstance(item, dict) else None
        if isinstance(at, int):
            for replaced in edits:
                at = _at(at, replaced, False)
            item[TEXT_AT] = at
    message.extra_json = orjson.dumps(extra).decode()


class StreamEdits:
    """A streamed text's finds replaced (`TextScreen`), in its raw offsets (the content's, its
    messages joined, as the annotations' are), to move the annotations that cite it."""

    __slots__ = ("finds", "released")

    def __init__(self) -> None:
        self.finds: list[tuple[int, int, str]] = []
        self.released = 0  # how much of the raw text was released

    def add(self, start: int, end: int, marker: str) -> None:
        self.finds.append((start, end, marker))


class HeldCitations:
    """A streamed choice's annotations, each held until the text it cites (up to its
    `end_index`, a file citation's `index`) was released, then given out moved by that text's
    redactions (`StreamEdits`); one that cited only redacted text is dropped. Released early,
    the held text would let a find straddling an annotation out unscreened."""

    __slots__ = ("_held",)

    def __init__(self) -> None:
        self._held: list[tuple[int, Any]] = []  # (where the text it cites ends, annotation)

    def take(self, extra_json: str) -> str:
        """A delta's unmodelled keys without its annotations, now held (an empty list, which
        some servers write on every delta, stays)."""
        if f'"{_ANNOTATIONS}"' not in extra_json:
            return extra_json
        extra = json_object(extra_json)
        found = None if extra is None else extra.get(_ANNOTATIONS)
        if extra is None or not isinstance(found, list) or not found:
            return extra_json
        self._held += [(_cited_end(annotation), annotation) for annotation in found]
        del extra[_ANNOTATIONS]
        return orjson.dumps(extra).decode() if extra else ""

    def give(self, extra_json: str, edits: StreamEdits, final: bool) -> str:
        """`extra_json` with the held annotations whose text was released (`edits.released`;
        all of them when `final`: the text ended) added, moved by the text's `edits`."""
        if not self._held:
            return extra_json
        ready = [a for end, a in self._held if final or end <= edits.released]
        self._held = [(end, a) for end, a in self._held if not final and end > edits.released]
        if edits.finds:
            ready = moved_annotations(ready, [edits.finds])
        if not ready:
            return extra_json
        extra = (json_object(extra_json) if extra_json else None) or {}
        before = extra.get(_ANNOTATIONS)
        extra[_ANNOTATIONS] = (before if isinstance(before, list) else []) + ready
        return orjson.dumps(extra).decode()

    def cut(self, at: int) -> None:
        """The text ends at `at` (a stop sequence cut it there): hold on only to what cites
        text before it, ended there (`cut_annotations`)."""
        kept = cut_annotations([annotation for _, annotation in self._held], at)
        self._held = [(_cited_end(annotation), annotation) for annotation in kept]


def _cited_end(annotation: Any) -> int:
    """Where the text a chat-form annotation cites ends (0: it cites no text)."""
    kind = annotation.get("type") if isinstance(annotation, dict) else None
    fields = annotation.get(str(kind)) if isinstance(annotation, dict) else None
    if not isinstance(fields, dict):
        return 0
    for key in ("end_index", "index"):
        if isinstance(at := fields.get(key), int):
            return at
    return 0


def moved_annotations(annotations: list[Any], edits: Edits) -> list[Any]:
    """Chat-form `annotations` with their offsets moved by `edits`; those cut away dropped."""
    return _each_fields(annotations, lambda fields: _moved(fields, edits))


def cut_annotations(annotations: list[Any], at: int) -> list[Any]:
    """Chat-form `annotations` of a text cut at `at` (the router's stop sequences): a span
    that begins before the cut kept, ended there at the latest; a point (a file citation's
    `index`) kept up to the cut; what cites only text past it dropped, as that text is."""
    return _each_fields(annotations, lambda fields: _cut(fields, at))


def _each_fields(
    annotations: list[Any], change: Callable[[dict[str, Any]], dict[str, Any] | None]
) -> list[Any]:
    """`annotations` with each one's fields (under its `type`) changed, or the annotation
    dropped where `change` gives None; one without such fields kept as it is."""
    out = []
    for annotation in annotations:
        kind = annotation.get("type") if isinstance(annotation, dict) else None
        fields = annotation.get(str(kind)) if isinstance(annotation, dict) else None
        if not isinstance(fields, dict):
            out.append(annotation)
            continue
        changed = change(fields)
        if changed is not None:
            out.append(annotation if changed is fields else {**annotation, str(kind): changed})
    return out


def _cut(fields: dict[str, Any], at: int) -> dict[str, Any] | None:
    start, end, index = (fields.get(k) for k in ("start_index", "end_index", "index"))
    if isinstance(start, int) and isinstance(end, int):
        return {**fields, "end_index": min(end, at)} if start < at else None
    return fields if not isinstance(index, int) or index <= at else None


def _moved(fields: dict[str, Any], edits: Edits) -> dict[str, Any] | None:
    start, end, index = (fields.get(k) for k in ("start_index", "end_index", "index"))
    span = (start, end) if isinstance(start, int) and isinstance(end, int) else None
    point = index if isinstance(index, int) else None
    for replaced in edits:
        if span is not None:
            if any(a <= span[0] and span[1] <= b for a, b, _ in replaced):
                return None  # it cited only what was redacted
            span = (_at(span[0], replaced, False), _at(span[1], replaced, True))
        if point is not None:
            point = _at(point, replaced, False)
    out = dict(fields)
    if span is not None:
        out |= {"start_index": span[0], "end_index": span[1]}
    if point is not None:
        out["index"] = point
    return out


def _at(offset: int, replaced: list[tuple[int, int, str]], closing: bool) -> int:
    """`offset` in the text after `replaced`: one inside a find at its marker's start, or
    its end when `closing` (a span's end)."""
    shift = 0
    for start, end, marker in replaced:
        if offset <= start:
            break
        if offset < end:
            return start + shift + (len(marker) if closing else 0)
        shift += len(marker) - (end - start)
    return offset + shift
