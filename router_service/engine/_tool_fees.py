"""The hosted tool calls an answer made that a price may charge by the call
(`price.tool_calls_usd`): counted off the answer's message (`hosted_items`) or, streamed, off
the `response.output_item.done` events its chunks carry (`hosted_events`), each call once (by
its item id; a code interpreter's by its container: one session however many runs). A
container the request names (made, and paid, by the Containers API) or hands back a call of (a
session counted before) opens no new session (`paid_containers`)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

import orjson

from clients.codec._responses_custom import HOSTED_ITEMS
from clients.codec._responses_hosted import HOSTED_EVENTS
from clients.switchboard.v1 import chat_pb2
from router_service.config._prices import HostedFee

__all__ = ["Billed", "bill_answer", "billed_in", "fees", "paid_containers"]

Chunks = list[chat_pb2.ChatCompletionChunk]
# (fee, the item id or container that makes it one call): a request's, as seen so far.
Billed = set[tuple[HostedFee, str]]
_FEES: dict[str, HostedFee] = {
    "web_search_call": "web_search",
    "file_search_call": "file_search",
    "code_interpreter_call": "code_interpreter",
    "image_generation_call": "image_generation",
}


def bill_answer(billed: Billed, completion: chat_pb2.ChatCompletion) -> None:
    """The billed calls of a unary answer (its message's hosted items)."""
    for choice in completion.choices[:1]:
        if HOSTED_ITEMS in choice.message.extra_json:
            items = orjson.loads(choice.message.extra_json).get(HOSTED_ITEMS)
            _bill(billed, items if isinstance(items, list) else ())


def billed_in(billed: Billed | None, chunks: Chunks) -> Chunks:
    """`chunks`, the billed calls whose items they finish counted in `billed` (None: none)."""
    if billed is not None:
        _bill_chunks(billed, chunks)
    return chunks


def _bill_chunks(billed: Billed, chunks: Chunks) -> None:
    for chunk in chunks:
        for choice in chunk.choices:
            extra = choice.delta.extra_json
            if extra and HOSTED_EVENTS in extra and "output_item.done" in extra:
                events = orjson.loads(extra).get(HOSTED_EVENTS)
                done = (
                    e.get("item")
                    for e in (events if isinstance(events, list) else ())
                    if isinstance(e, dict) and e.get("type") == "response.output_item.done"
                )
                _bill(billed, done)


def _bill(billed: Billed, items: Iterable[Any]) -> None:
    for item in items:
        if not isinstance(item, dict) or (fee := _FEES.get(str(item.get("type")))) is None:
            continue
        one = item.get("container_id") if fee == "code_interpreter" else None
        billed.add((fee, str(one or item.get("id", ""))))


def fees(billed: Billed, paid: frozenset[str] = frozenset()) -> Counter[HostedFee]:
    """How many calls of each billed tool; runs in a `paid` container are none."""
    return Counter(fee for fee, one in billed if not (fee == "code_interpreter" and one in paid))


def paid_containers(params: chat_pb2.ChatParams) -> frozenset[str]:
    """The code interpreter containers `params` names (a tool's `container` id) or hands back
    (its calls' `container_id`): its answer's runs in them open no new session."""
    found: set[str] = set()
    for tool in params.tools:
        if tool.type == "code_interpreter" and '"container"' in tool.extra_json:
            named = orjson.loads(tool.extra_json).get("container")
            found.update((named,) if isinstance(named, str) else ())
    for message in params.messages:
        if '"container_id"' in message.extra_json and HOSTED_ITEMS in message.extra_json:
            items = orjson.loads(message.extra_json).get(HOSTED_ITEMS)
            for item in items if isinstance(items, list) else ():
                ran = item.get("container_id") if isinstance(item, dict) else None
                found.update((ran,) if isinstance(ran, str) else ())
    return frozenset(found)
