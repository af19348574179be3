"""The hosted tool calls an answer made that a price may charge by the call
(`price.tool_calls_usd`): counted off the answer's message (`hosted_items`) or, streamed, off
the `response.output_item.done` events its chunks carry (`hosted_events`), each call once (by
its item id; a code interpreter's by its container: one session however many runs). A
container the request names (made, and paid, by the Containers API) or hands back a call of (a
session counted before) opens no new session (`paid_containers`).

Before the call, what its hosted tools may cost as far as the request tells (`FeeBound`, of
`fee_bound`): a money budget counts it in the call's estimate (auth/_gate.py)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson

from clients.codec._responses_custom import HOSTED_ITEMS
from clients.codec._responses_hosted import HOSTED_EVENTS, is_hosted_tool
from clients.switchboard.v1 import chat_pb2
from router_service.config._prices import HostedFee, PriceConfig

__all__ = [
    "Billed",
    "FeeBound",
    "bill_answer",
    "billed_in",
    "fee_bound",
    "fees",
    "paid_containers",
]

Chunks = list[chat_pb2.ChatCompletionChunk]
# (fee, the item id or container that makes it one call): a request's, as seen so far.
Billed = set[tuple[HostedFee, str]]
# The request's tools (`Tool.type`) whose calls a price may charge (and every web search's:
# `web_search_preview`, dated versions), by their fee's name.
_TOOL_FEES: dict[str, HostedFee] = {
    "file_search": "file_search",
    "code_interpreter": "code_interpreter",
    "image_generation": "image_generation",
}
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
    found = {named for tool in params.tools if (named := _named_container(tool))}
    for message in params.messages:
        if '"container_id"' in message.extra_json and HOSTED_ITEMS in message.extra_json:
            items = orjson.loads(message.extra_json).get(HOSTED_ITEMS)
            for item in items if isinstance(items, list) else ():
                ran = item.get("container_id") if isinstance(item, dict) else None
                found.update((ran,) if isinstance(ran, str) else ())
    return frozenset(found)


@dataclass(frozen=True, slots=True)
class FeeBound:
    """The hosted tool calls a request may make that a price charges by the call, as far as the
    request tells: the tools it enables that may open a charge (`tools`), and its
    `max_tool_calls` (`most`; None: not given)."""

    tools: frozenset[HostedFee] = frozenset()
    most: int | None = None

    def usd(self, price: PriceConfig) -> float:
        """What these calls may cost at `price`: `most` calls of the dearest tool (OpenAI's
        `max_tool_calls` bounds a response's hosted calls of every tool together); without
        it, one call of each tool (how many an answer makes is not known before it)."""
        charged = [price.tool_calls_usd.get(tool, 0.0) for tool in self.tools]
        if not charged:
            return 0.0
        return sum(charged) if self.most is None else self.most * max(charged)


_NO_FEES = FeeBound()


def fee_bound(params: chat_pb2.ChatParams) -> FeeBound:
    """The fee-charged hosted tools `params` enables (none when its `tool_choice` is "none"; a
    code interpreter in a container it names opens no session) and its `max_tool_calls`."""
    choice = params.tool_choice
    if choice.WhichOneof("choice") == "mode" and choice.mode == chat_pb2.TOOL_CHOICE_MODE_NONE:
        return _NO_FEES
    tools = frozenset(fee for tool in params.tools if (fee := _tool_fee(tool)) is not None)
    return FeeBound(tools, _max_tool_calls(params)) if tools else _NO_FEES


def _tool_fee(tool: chat_pb2.Tool) -> HostedFee | None:
    if tool.type.startswith("web_search") and is_hosted_tool(tool.type):
        return "web_search"
    if _named_container(tool) is not None:  # runs in a container paid already
        return None
    return _TOOL_FEES.get(tool.type)


def _named_container(tool: chat_pb2.Tool) -> str | None:
    """The container id a code interpreter tool names (`container`: made by the Containers
    API); None for any other tool, or one with `{"type": "auto"}`."""
    if tool.type != "code_interpreter" or '"container"' not in tool.extra_json:
        return None
    named = orjson.loads(tool.extra_json).get("container")
    return named if isinstance(named, str) else None


def _max_tool_calls(params: chat_pb2.ChatParams) -> int | None:
    """`max_tool_calls` in the extras (the Responses API entrance puts it there beside a hosted
    tool), when it is a whole number; else None."""
    if '"max_tool_calls"' not in params.extra_json:
        return None
    try:
        most = orjson.loads(params.extra_json).get("max_tool_calls")
    except orjson.JSONDecodeError:  # the codec refuses it where the request is mapped
        return None
    return max(0, most) if isinstance(most, int) and not isinstance(most, bool) else None
