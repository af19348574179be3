"""What a conversation may be given, checked before anything is kept: its metadata (OpenAI's
bounds) and its items (JSON objects, each with a unique id, made here when it has none); and
the one check that what is kept as a JSON object is one (`checked_object`, stored responses'
too)."""

from __future__ import annotations

import secrets
from collections.abc import Collection, Sequence
from typing import Any

import orjson

from clients.codec import check_placeable, item_id_prefix
from clients.switchboard.v1 import conversations_pb2 as cpb
from router_service._ids import checked_id
from router_service.errors import InvalidRequestError

__all__ = ["checked_items", "checked_metadata", "checked_object"]

# How far below a body's root a kept object (a Response, an item) is written again: an event's
# `response` or `item`, a list page's `data[i]`, an upstream body's `input[i]`. Its fields were
# each checked with the room they need where they go (`check_placeable`), up to a dozen levels
# inside it (a Response echoes its request's `tools[i].parameters` three down).
_KEPT_BELOW = 4
# OpenAI's metadata bounds: 16 pairs, keys up to 64 characters, values up to 512.
_MAX_PAIRS, _MAX_KEY, _MAX_VALUE = 16, 64, 512


def checked_metadata(text: str) -> str:
    """`text` (a JSON object of strings; empty: none) as kept: compact JSON."""
    value = checked_object(text or "{}", "metadata")
    if len(value) > _MAX_PAIRS:
        raise InvalidRequestError(
            f"`metadata` holds {len(value)} pairs: at most {_MAX_PAIRS}.", param="metadata"
        )
    for key, item in value.items():
        if len(key) > _MAX_KEY:
            raise InvalidRequestError(
                f"A `metadata` key is longer than {_MAX_KEY} characters.", param="metadata"
            )
        if not isinstance(item, str) or len(item) > _MAX_VALUE:
            raise InvalidRequestError(
                f"`metadata.{key}` must be a string of at most {_MAX_VALUE} characters.",
                param=f"metadata.{key}",
            )
    return orjson.dumps(value).decode()


def checked_items(
    texts: Sequence[str], taken: Collection[str], field: str = "items"
) -> list[cpb.ConversationItem]:
    """`texts` as items with their ids: the one each came with (unique: not in `taken`, the
    conversation's ids, deleted ones included, nor twice here), else a new one; refusals name
    `field[i]`. How many a call may add is the conversation's bound (`max_items`); OpenAI's 20
    at a time is the HTTP API's rule (the edge's), not one on a response's own items appended
    after it."""
    seen = set(taken)
    items = []
    for i, text in enumerate(texts):
        item = checked_object(text, f"{field}[{i}]")
        item_id = item.get("id")
        if item_id is None:
            item = {"id": _new_item_id(item), **item}
        elif not isinstance(item_id, str):
            param = f"{field}[{i}].id"
            raise InvalidRequestError(f"`{param}` must be a string.", param=param)
        item_id = checked_id(item["id"], f"{field}[{i}].id", "item")
        if item_id in seen:
            raise InvalidRequestError(
                f"Duplicate item id '{item_id}': the conversation holds an item of that id "
                "already (or held one, deleted).",
                param=f"{field}[{i}].id",
            )
        seen.add(item_id)
        items.append(cpb.ConversationItem(id=item_id, item_json=orjson.dumps(item).decode()))
    return items


def _new_item_id(item: dict[str, Any]) -> str:
    kind = item.get("type", "message")
    return f"{item_id_prefix(kind if isinstance(kind, str) else 'item')}_{secrets.token_hex(24)}"


def checked_object(text: str, param: str) -> dict[str, Any]:
    """`text` as the JSON object it must be (InvalidRequestError naming `param`): items and
    Responses are kept to be read back as objects (the edge resolves `item_reference`s by
    their "id" and answers them as they are), so what is not one is refused before it is kept
    or anything is spent on it, rather than failing a later request."""
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        value = None
    if not isinstance(value, dict):
        raise InvalidRequestError(f"`{param}` must be a JSON object.", param=param)
    try:  # read back into a list page, an upstream body, a stream event: levels further down
        check_placeable(value, len(text), below=_KEPT_BELOW)
    except orjson.JSONEncodeError:  # read up to 1024 levels deep, written to 254
        raise InvalidRequestError(
            f"`{param}` nests too deep to be sent on as JSON.", param=param
        ) from None
    return value
