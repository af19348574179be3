"""Custom (freeform) tools and carried reasoning items on the Responses API dialect
(_responses_map.py), both native there.

- A chat custom tool (`{"type": "custom", "custom": {name, description, format}}`) is the
  Responses API's flat `custom` tool, a grammar format flat too (`{type: grammar, syntax,
  definition}`); `tool_choice` `{"type": "custom", "custom": {name}}` is `{"type": "custom",
  name}`; an assistant's custom call is a `custom_tool_call` item, the tool message answering it
  a `custom_tool_call_output`. Answered, a `custom_tool_call` item is the chat custom call.
- Reasoning items an assistant message carries (`reasoning_items`, clients/codec/
  _responses_custom.py) go back before its other items, as the upstream gave them: its encrypted
  reasoning, which only it can read. When it cannot (`invalid_encrypted_content`, an item it does
  not know), the call is made once more without them (`without_rejected_reasoning`): the turn
  goes on, its earlier reasoning lost, rather than failing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

import orjson

from clients.codec._responses_custom import (
    ENCRYPTED,
    INCLUDE,
    PRECEDES,
    REASONING_ITEMS,
    closes_reasoning,
)
from clients.codec._responses_hosted import hosted_items_of, placed_items
from clients.switchboard.v1 import chat_pb2
from router_service.errors import UpstreamFailure
from router_service.providers._mapping import JsonObject
from router_service.providers._responses_logprobs import logprobs_refused
from router_service.providers._responses_summaries import SummaryRefusals

__all__ = [
    "asks_encrypted",
    "asks_encrypted_params",
    "carries_reasoning",
    "custom_answer_call",
    "custom_call_items",
    "custom_choice",
    "custom_tool",
    "reasoning_inputs",
    "reasoning_kept",
    "retried_without_refused",
    "without_rejected_reasoning",
]

T = TypeVar("T")
_PLACES = (PRECEDES, "index")  # an answer's place of the item, a stream's number of it


def _custom_of(value: Any) -> Mapping[str, Any] | None:
    """The `custom` object of a chat tool, tool choice or call of a custom tool, else None."""
    if not isinstance(value, dict) or value.get("type") != "custom":
        return None
    custom = value.get("custom")
    return custom if isinstance(custom, dict) else None


def custom_tool(tool: Mapping[str, Any]) -> JsonObject | None:
    """The Responses form of a chat custom tool; None for another tool."""
    custom = _custom_of(tool)
    if custom is None:
        return None
    out: JsonObject = {"type": "custom", "name": custom.get("name")}
    if custom.get("description") is not None:
        out["description"] = custom["description"]
    fmt = custom.get("format")
    if isinstance(fmt, dict):
        grammar = fmt.get("grammar")
        flat = {"type": fmt.get("type")}
        out["format"] = {**flat, **grammar} if isinstance(grammar, dict) else flat
    return out


def custom_choice(choice: Any) -> JsonObject | None:
    custom = _custom_of(choice)
    return None if custom is None else {"type": "custom", "name": custom.get("name")}


def custom_call_items(message: Mapping[str, Any]) -> dict[str, JsonObject]:
    """The `custom_tool_call` item of each custom call of an assistant message, by call id."""
    items: dict[str, JsonObject] = {}
    for call in message.get("tool_calls") or ():
        custom = _custom_of(call)
        if custom is not None:
            call_id = str(call.get("id", ""))
            items[call_id] = {
                "type": "custom_tool_call",
                "call_id": call_id,
                "name": str(custom.get("name", "")),
                "input": str(custom.get("input", "")),
            }
    return items


def reasoning_inputs(
    message: dict[str, Any], said: list[JsonObject], *, reasoning: bool = True
) -> list[JsonObject]:
    """An assistant message's input items (`said`: its message and calls) with the reasoning
    items (unless `reasoning` is false: refused) and hosted tools' items it carries, each where
    its answer had it; a stream's marks (an item's opening, its later parts' names), which a
    caller may hand back with the item, are no items of their own: left out."""
    items = message.get(REASONING_ITEMS) if reasoning else None
    listed = items if isinstance(items, list) else []
    kept = [i for i in listed if isinstance(i, dict) and closes_reasoning(i)]
    return placed_items(kept, hosted_items_of(message), said, _reasoning_input)


def _reasoning_input(item: JsonObject) -> JsonObject:
    """A reasoning item as an input item (where it stood, and a stream's running `index` of
    it, are no fields of the upstream's)."""
    return {"type": "reasoning", **{k: v for k, v in item.items() if k not in _PLACES}}


def custom_answer_call(item: Mapping[str, Any], index: int | None = None) -> JsonObject:
    """A `custom_tool_call` output item as a chat tool call (`index`: in a stream)."""
    out: JsonObject = {} if index is None else {"index": index}
    custom = {"name": str(item.get("name", "")), "input": str(item.get("input", ""))}
    return {**out, "id": str(item.get("call_id", "")), "type": "custom", "custom": custom}


def asks_encrypted(body: Mapping[str, Any]) -> bool:
    """Whether a Responses body asks for its reasoning items' encrypted content."""
    include = body.get("include")
    return isinstance(include, list) and ENCRYPTED in include


def asks_encrypted_params(params: chat_pb2.ChatParams) -> bool:
    """Whether chat params ask for reasoning items' encrypted content (`include`, an extra)."""
    if not params.extra_json or ENCRYPTED not in params.extra_json:
        return False
    extra = orjson.loads(params.extra_json)
    return isinstance(extra, dict) and asks_encrypted({INCLUDE: extra.get(INCLUDE)})


def carries_reasoning(params: chat_pb2.ChatParams) -> bool:
    """Whether a message of `params` carries reasoning items (an extra of the message's)."""
    return any(REASONING_ITEMS in m.extra_json for m in params.messages if m.extra_json)


def reasoning_kept(item: Mapping[str, Any]) -> JsonObject:
    """An output reasoning item as the answer carries it (`reasoning_items`)."""
    kept = {"id": item.get("id"), "summary": item.get("summary") or []}
    if item.get("encrypted_content") is not None:
        kept["encrypted_content"] = item["encrypted_content"]
    return kept


def rejects_reasoning(failure: UpstreamFailure) -> bool:
    """Whether `failure` is the upstream's refusal of reasoning items it cannot read: another
    upstream's (or organization's) encrypted content, or a reasoning item it does not hold."""
    if failure.upstream_status != 400:
        return False
    error = failure.upstream_error or {}
    message = str(error.get("message", "")).lower()
    if error.get("code") == "invalid_encrypted_content" or "encrypted content" in message:
        return True
    return "rs_" in message and ("not found" in message or "reasoning" in message)


async def retried_without_refused(
    summaries: SummaryRefusals,
    params: chat_pb2.ChatParams,
    send: Callable[[bool, bool], Awaitable[T]],
) -> T:
    """`send(summary, reasoning)`, made again without what the upstream refused: the reasoning
    summary (learned: _responses_summaries.py), carried reasoning items it cannot read; its
    refusal of logprobs is the UNSUPPORTED_INPUT it stands for (_responses_logprobs.py)."""
    carried = carries_reasoning(params)

    async def with_summary(summary: bool) -> T:
        return await without_rejected_reasoning(lambda kept: send(summary, kept), carried)

    with logprobs_refused(params, "on the Responses API"):
        return await summaries.call(with_summary)


async def without_rejected_reasoning(send: Callable[[bool], Awaitable[T]], carried: bool) -> T:
    """`send(reasoning)`: with the carried reasoning items (`carried`: there are some), then,
    when the upstream cannot read them, once more without."""
    if not carried:
        return await send(False)
    try:
        return await send(True)
    except UpstreamFailure as failure:
        if not rejects_reasoning(failure):
            raise
    return await send(False)
