"""OpenAI's hosted tools on the Responses API (web search, file search, code interpreter, image
generation, remote MCP, local shell, computer use): tools OpenAI runs itself, or whose calls
only its Responses API words. They pass through this gateway, never run by it: a Responses API
deployment gets them as the caller sent them, and what it answers comes back as it said it.

The chat representation between edge and router carries them as opaque data:
- a hosted tool is a chat tool of its own type, its other fields flat beside it (as the
  Responses API has them; the router's Responses mapping sends it on as it is);
- a hosted item (a call the upstream made, a call's output or an approval the caller hands back)
  rides on an assistant message under :data:`HOSTED_ITEMS` (a key of ours), whole: an answer's
  each with :data:`PRECEDES` (as its reasoning items: the index of the answer's message or call
  it came before) and :data:`FOLLOWS` (how many of the answer's reasoning items came before it);
- a stream's events of those items (``response.output_item.added`` / ``.done`` of one, and its
  own events: ``response.web_search_call.searching``…) ride on a chunk's delta under
  :data:`HOSTED_EVENTS`, whole but for their ``sequence_number`` (the edge numbers its own);
- text annotations (``url_citation``…) are the chat message's (and delta's) ``annotations``, in
  chat completions' form (``{"type": "url_citation", "url_citation": {…}}``);
- an answer's messages are one chat message, their texts joined: a hosted item that came after
  text carries :data:`TEXT_AT` (the characters of that text before it), so the Responses API
  entrance gives the upstream's messages apart again, in their places (:func:`split_messages`).

Followed: https://platform.openai.com/docs/api-reference/responses/create (tools, output items),
https://platform.openai.com/docs/api-reference/responses-streaming and the openai SDK's
`openai.types.responses` types.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from itertools import pairwise
from typing import Any

from clients.codec._json import at, expect_str
from clients.codec._responses_custom import HOSTED_ITEMS, PRECEDES, REASONING_ITEMS

__all__ = [
    "FOLLOWS",
    "HOSTED_EVENTS",
    "HOSTED_ITEMS",
    "HOSTED_ITEM_TYPES",
    "HOSTED_TOOLS",
    "TEXT_AT",
    "HostedPlaces",
    "add_hosted",
    "annotations_of",
    "chat_annotation",
    "chat_annotations",
    "hosted_items_of",
    "is_hosted_event",
    "is_hosted_tool",
    "moved_annotation",
    "placed_items",
    "responses_annotation",
    "split_messages",
]

HOSTED_EVENTS = "hosted_events"
FOLLOWS = "follows"
TEXT_AT = "text_at"
HOSTED_TOOLS = frozenset(
    {
        "web_search", "web_search_preview", "file_search", "code_interpreter",
        "image_generation", "mcp", "local_shell", "computer_use_preview",
    }
)  # fmt: skip
# Dated versions of a tool (`web_search_2025_08_26`, `web_search_preview_2025_03_11`).
_DATED = ("web_search_", "web_search_preview_")
HOSTED_ITEM_TYPES = frozenset(
    {
        "web_search_call", "file_search_call", "code_interpreter_call", "image_generation_call",
        "mcp_call", "mcp_list_tools", "mcp_approval_request", "mcp_approval_response",
        "local_shell_call", "local_shell_call_output", "computer_call", "computer_call_output",
    }
)  # fmt: skip
# The event names of hosted items' own progress (`response.web_search_call.searching`,
# `response.mcp_call_arguments.delta`, `response.code_interpreter_call_code.delta`…).
_EVENT_PREFIXES = tuple(
    f"response.{kind}"
    for kind in (
        "web_search_call.", "file_search_call.", "code_interpreter_call", "image_generation_call.",
        "mcp_call", "mcp_list_tools.",
    )
)  # fmt: skip


def is_hosted_tool(kind: str) -> bool:
    """Whether a tool's type is one of OpenAI's hosted tools, passed to a Responses upstream."""
    return kind in HOSTED_TOOLS or (kind.startswith(_DATED) and kind[-10:-6].isdigit())


def is_hosted_event(event: Mapping[str, Any]) -> bool:
    """Whether a Responses stream event is a hosted item's (its opening, its end, its own)."""
    kind = str(event.get("type", ""))
    if kind in ("response.output_item.added", "response.output_item.done"):
        item = event.get("item")
        return isinstance(item, dict) and item.get("type") in HOSTED_ITEM_TYPES
    return kind.startswith(_EVENT_PREFIXES)


def add_hosted(messages: list[dict[str, Any]], obj: dict[str, Any], path: str) -> None:
    """A hosted input item, carried whole on the assistant turn it belongs to: the one of
    hosted items (and reasoning) just before it, else a new one."""
    expect_str(obj.get("type"), at(path, "type"))
    last = messages[-1] if messages else None
    if last is not None and last["role"] == "assistant" and _open_turn(last):
        last.setdefault(HOSTED_ITEMS, []).append(dict(obj))
    else:
        messages.append({"role": "assistant", "content": None, HOSTED_ITEMS: [dict(obj)]})


def _open_turn(message: dict[str, Any]) -> bool:
    """An assistant message of reasoning or hosted items alone (so far)."""
    carried = REASONING_ITEMS in message or HOSTED_ITEMS in message
    bare = message.get("content") is None and not message.get("tool_calls")
    return carried and bare and "refusal" not in message


def hosted_items_of(message: dict[str, Any]) -> list[dict[str, Any]]:
    """The hosted items a chat message (or delta) carries."""
    items = message.get(HOSTED_ITEMS)
    return [i for i in items if isinstance(i, dict)] if isinstance(items, list) else []


def placed_items(
    reasoning: list[dict[str, Any]],
    hosted: list[dict[str, Any]],
    items: list[dict[str, Any]],
    as_reasoning: Callable[[dict[str, Any]], dict[str, Any]],
) -> list[dict[str, Any]]:
    """An answer's output `items` (its message, then each call) with its reasoning items (each
    `as_reasoning`) and hosted items where they came (:data:`PRECEDES`, :data:`FOLLOWS`;
    without them: reasoning first, then hosted items, then `items`)."""
    last = len(items)
    keyed: list[tuple[tuple[int, int, int], dict[str, Any]]] = []
    for n, item in enumerate(reasoning):
        keyed.append(((_index(item, PRECEDES, 0, last), n, 1), as_reasoning(item)))
    for item in hosted:
        follows = _index(item, FOLLOWS, len(reasoning), len(reasoning))
        out = {k: v for k, v in item.items() if k not in (PRECEDES, FOLLOWS, TEXT_AT)}
        keyed.append(((_index(item, PRECEDES, 0, last), follows, 0), out))
    for n, item in enumerate(items):
        keyed.append(((n, len(reasoning) + 1, 2), item))
    return [item for _, item in sorted(keyed, key=lambda pair: pair[0])]


def _index(item: dict[str, Any], key: str, default: int, last: int) -> int:
    value = item.get(key)
    return min(value, last) if isinstance(value, int) and value >= 0 else default


def split_messages(
    text: str, annotations: list[dict[str, Any]], hosted: list[dict[str, Any]]
) -> tuple[list[tuple[str, list[dict[str, Any]]]], list[dict[str, Any]]]:
    """An answer's `text` cut where hosted items came between its messages (:data:`TEXT_AT`
    inside it): each message's text with its (Responses form) `annotations`, their offsets its
    own; and `hosted` with :data:`PRECEDES` counting those messages."""
    cuts = sorted({at for item in hosted if 0 < (at := _text_at(item)) < len(text)})
    if not cuts:
        return [(text, annotations)], hosted
    bounds = [0, *cuts, len(text)]
    pieces: list[tuple[str, list[dict[str, Any]]]] = [
        (text[start:end], []) for start, end in pairwise(bounds)
    ]
    for annotation in annotations:
        first = annotation.get("start_index")
        if isinstance(first, int):  # a span: in the message it starts in
            n = sum(cut <= first for cut in cuts)
        else:  # a point (a file citation's `index`, after what it cites): where a cut ends one
            point = annotation.get("index")
            n = sum(cut < point for cut in cuts) if isinstance(point, int) else 0
        pieces[n][1].append(moved_annotation(annotation, -bounds[n]))
    placed = []
    for item in hosted:
        before = item.get(PRECEDES)
        if isinstance(before, int) and before > 0 and TEXT_AT in item:
            ended = sum(end <= _text_at(item) for end in bounds[1:])  # the messages before it
            item = {**item, PRECEDES: before - 1 + ended}
        placed.append(item)
    return pieces, placed


def _text_at(item: dict[str, Any]) -> int:
    at = item.get(TEXT_AT)
    return at if isinstance(at, int) else 0


def chat_annotation(annotation: dict[str, Any]) -> dict[str, Any]:
    """A Responses annotation (``{"type": "url_citation", "url", …}``) in chat's form."""
    kind = str(annotation.get("type", ""))
    return {"type": kind, kind: {k: v for k, v in annotation.items() if k != "type"}}


def chat_annotations(part: dict[str, Any], offset: int = 0) -> list[dict[str, Any]]:
    """An ``output_text`` part's annotations in chat's form, their text indexes moved by
    `offset` (where the part starts in the message's text, its parts joined): a span's
    `start_index` / `end_index`, a file citation's (or file path's) `index`, a position in the
    text too (openai/openai-python#2512)."""
    found = part.get("annotations") or ()
    return [chat_annotation(moved_annotation(a, offset)) for a in found if isinstance(a, dict)]


def moved_annotation(annotation: dict[str, Any], by: int) -> dict[str, Any]:
    """A Responses annotation with its positions in the text (`start_index`, `end_index`, a
    file citation's `index`) moved `by` characters."""
    keys = ("start_index", "end_index", "index")
    moved = {k: v + by for k in keys if isinstance(v := annotation.get(k), int)}
    return {**annotation, **moved}


def responses_annotation(annotation: dict[str, Any]) -> dict[str, Any]:
    """A chat annotation (``{"type": "url_citation", "url_citation": {…}}``) in the Responses
    API's form, its fields flat."""
    kind = str(annotation.get("type", ""))
    fields = annotation.get(kind)
    return {"type": kind, **(fields if isinstance(fields, dict) else {})}


def annotations_of(message: dict[str, Any]) -> list[dict[str, Any]]:
    """A chat message's (or delta's) annotations in the Responses API's form."""
    found = message.get("annotations")
    found = found if isinstance(found, list) else []
    return [responses_annotation(a) for a in found if isinstance(a, dict)]


class HostedPlaces:
    """Where a stream's hosted items stand among the edge's output items (`output`, which it
    keeps them in, each as its last event gave it)."""

    __slots__ = ("_at", "_output")

    def __init__(self, output: list[dict[str, Any]]) -> None:
        self._output = output
        self._at: dict[str, int] = {}  # an item's id → its output_index

    def place(self, event: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
        """A hosted event (:data:`HOSTED_EVENTS`) as the edge sends it: its type, and its fields
        with the edge's ``output_index``. None for an event of an item never opened."""
        kind, item = str(event.get("type")), event.get("item")
        fields = {k: v for k, v in event.items() if k not in ("type", "sequence_number")}
        if isinstance(item, dict) and kind.startswith("response.output_item."):
            index = self._at.setdefault(str(item.get("id")), len(self._output))
            if index == len(self._output):
                self._output.append(item)
            self._output[index] = item
        else:
            found = self._at.get(str(event.get("item_id")))
            if found is None:
                return None
            index = found
        return kind, {**fields, "output_index": index}
