"""A Responses request's input items as OpenAI lists them (``GET /v1/responses/{id}/input_items``).

``input`` is kept as the items it was, in OpenAI's listed form: a string is one user message, a
message's string content one ``input_text`` part (``output_text`` for an assistant's), an
``item_reference`` the stored item it named. Each item keeps the id it came with; one without
gets an id of its response's (:meth:`ResponseIds.input_item`), which no ``item_reference`` can
name (only output items can be referenced). :func:`input_items_page` is one page of them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import orjson

from clients.codec._json import at_index, dump_json

if TYPE_CHECKING:  # _responses_output imports the request module, which imports this one
    from clients.codec._responses_output import ResponseIds

__all__ = [
    "input_items_of",
    "input_items_page",
    "is_item_reference",
    "item_id_prefix",
    "with_input_ids",
]

_ID_PREFIXES = {
    **{"message": "msg", "function_call": "fc", "function_call_output": "fco"},
    **{"custom_tool_call": "ctc", "custom_tool_call_output": "ctco"},
}


def is_item_reference(item: dict[str, Any]) -> bool:
    """Whether an input item is an ``item_reference``: typed so, or (OpenAI's ItemReference,
    whose ``type`` is optional) an item of an ``id`` alone."""
    kind = item.get("type")
    if kind is None:
        return "id" in item and all(key in ("id", "type") for key in item)
    return bool(kind == "item_reference")


def input_items_of(
    value: Any, items: Mapping[str, dict[str, Any]] | None = None, path: str = "input"
) -> tuple[dict[str, Any], ...]:
    """`value` (a request's ``input``, already validated by :func:`messages_from_input`) as
    items; `items`: the stored items its ``item_reference``s name. An item is kept as JSON
    (stored, added to a conversation): one that cannot be written (nested deeper than the
    writer goes, where the chat messages made of it drop the deep value) is refused by `path`
    now, not once the answer is in."""
    if isinstance(value, str):
        value = [{"role": "user", "content": value}]
    out = []
    for item in value:
        if is_item_reference(item):
            item = {**item, "type": "item_reference"}
            item = items.get(item["id"], item) if items is not None else item
        out.append(_listed(item))
    try:  # all at once, the usual case; the item at fault named when one fails
        orjson.dumps(out)
    except orjson.JSONEncodeError:
        for i, listed in enumerate(out):
            dump_json(listed, at_index(path, i))
    return tuple(out)


def _listed(item: dict[str, Any]) -> dict[str, Any]:
    kind = item.get("type", "message")
    listed = {**item, "type": kind}
    if kind == "message":
        content = item.get("content")
        if isinstance(content, str):
            text: dict[str, Any] = {"type": "input_text", "text": content}
            if item.get("role") == "assistant":  # listed as the output message it was
                text = {"type": "output_text", "text": content, "annotations": []}
            listed["content"] = [text]
    if kind in _ID_PREFIXES:
        listed.setdefault("status", "completed")
    return listed


def item_id_prefix(kind: str) -> str:
    """The prefix of the ids OpenAI gives items of type `kind` (``msg`` for a message…)."""
    return _ID_PREFIXES.get(kind, "item")


def with_input_ids(items: Sequence[dict[str, Any]], ids: ResponseIds) -> list[dict[str, Any]]:
    """`items` with an id each: the one given, else one of the response's."""
    out = []
    for n, item in enumerate(items, 1):
        if not isinstance(item.get("id"), str):
            prefix = item_id_prefix(item["type"])
            item = {"id": ids.input_item(prefix, n), **item}
        out.append(item)
    return out


def input_items_page(
    items: Sequence[dict[str, Any]],
    *,
    after: str | None = None,
    limit: int = 20,
    order: Literal["asc", "desc"] = "desc",
) -> dict[str, Any] | None:
    """OpenAI's list object of `items` (in the order given) from the one after `after`, in
    `order`; None when no item has the id `after`."""
    ordered = list(items) if order == "asc" else list(reversed(items))
    start = 0
    if after is not None:
        ids = [item.get("id") for item in ordered]
        if after not in ids:
            return None
        start = ids.index(after) + 1
    data = ordered[start : start + limit]
    return {
        "object": "list",
        "data": data,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": start + limit < len(ordered),
    }
