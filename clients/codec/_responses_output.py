"""A chat completion → an OpenAI Responses API ``response`` object, and the pieces a stream of
Responses events is built from (``_responses_stream``).

The completion is read in its OpenAI JSON form (:func:`chat_completion_to_openai`), so the keys
an upstream adds to a message (``reasoning_content``) are there to read. Only the first choice
counts: a Response has no ``n``.

What the Response says of itself is true of this gateway: ``store`` is what the request asked
until the edge knows whether the router kept it (then it says so), ``background`` ``false``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from clients.codec._response import chat_completion_to_openai
from clients.codec._responses_custom import (
    custom_call_item,
    custom_of,
    reasoning_items_of,
    reasoning_output_item,
)
from clients.codec._responses_hosted import (
    annotations_of,
    hosted_items_of,
    placed_items,
    split_messages,
)
from clients.codec._responses_include import output_logprobs, split_logprobs
from clients.codec._responses_request import ResponsesRequest
from clients.codec._responses_thinking import asks_encrypted, carrying, signed_blocks
from clients.codec._said import message_text
from clients.switchboard.v1 import chat_pb2

_ITEM_PREFIXES = ("msg", "fc", "ctc", "rs")


def _is_hex(text: str) -> bool:
    return 0 < len(text) <= 64 and all(c in "0123456789abcdef" for c in text)


# Chat finish reasons that leave a Response incomplete, and the reason it then gives.
INCOMPLETE_REASONS = {"length": "max_output_tokens", "content_filter": "content_filter"}


@dataclass(frozen=True)
class ResponseIds:
    """The ids of one Response and its output items, all from one random ``resp_`` id."""

    response: str  # "resp_<hex>"

    @property
    def _hex(self) -> str:
        return self.response.removeprefix("resp_")

    def item(self, prefix: str, n: int) -> str:
        """``msg_<hex>`` for the first message, ``msg_<hex>_2`` for a second, likewise
        ``fc_`` (function calls) and ``rs_`` (reasoning)."""
        return f"{prefix}_{self._hex}" + (f"_{n}" if n > 1 else "")

    def input_item(self, prefix: str, n: int) -> str:
        """``msg_<hex>_in1`` for the first input item (when it came without an id): not an
        output item's id, so :meth:`of_item` names no response for it."""
        return f"{prefix}_{self._hex}_in{n}"

    @classmethod
    def of_item(cls, item_id: str) -> ResponseIds | None:
        """The ids of the response an output item id (:meth:`item`) belongs to; None for an
        id this gateway did not make."""
        prefix, _, rest = item_id.partition("_")
        hex_id, _, n = rest.partition("_")
        if prefix not in _ITEM_PREFIXES or not _is_hex(hex_id) or not (n == "" or n.isdigit()):
            return None
        return cls(f"resp_{hex_id}")


def envelope(
    request: ResponsesRequest, ids: ResponseIds, created_at: int, model: str, status: str
) -> dict[str, Any]:
    """A Response with no output yet: the request's settings repeated, nothing produced."""
    return {
        "id": ids.response,
        "object": "response",
        "created_at": created_at,
        "status": status,
        "background": False,
        "error": None,
        "incomplete_details": None,
        "instructions": None,
        "max_output_tokens": None,
        "model": model or request.params.model,
        "output": [],
        "previous_response_id": None,
        "reasoning": None,
        "store": False,  # the request's `store` (echo), then whether it was kept
        "truncation": "disabled",
        "usage": None,
        **request.echo,
    }


def finished(response: dict[str, Any], finish_reason: str | None, completed_at: int) -> None:
    """Set ``status`` (and ``incomplete_details``) from the chat finish reason."""
    reason = INCOMPLETE_REASONS.get(finish_reason or "")
    if reason is None:
        response["status"] = "completed"
        response["completed_at"] = completed_at
    else:
        response["status"] = "incomplete"
        response["incomplete_details"] = {"reason": reason}


def item_status(finish_reason: str | None) -> str:
    return "incomplete" if finish_reason in INCOMPLETE_REASONS else "completed"


def usage_to_responses(usage: dict[str, Any] | None) -> dict[str, Any] | None:
    """Chat usage in the Responses names; cached and reasoning tokens 0 when not reported."""
    if not usage:
        return None
    prompt = usage.get("prompt_tokens_details") or {}
    completion = usage.get("completion_tokens_details") or {}
    input_details = {
        "cached_tokens": prompt.get("cached_tokens") or 0,
        "cache_write_tokens": prompt.get("cache_write_tokens") or 0,
    }
    if prompt.get("cache_write_1h_tokens"):  # ours, as in chat usage: only when some
        input_details["cache_write_1h_tokens"] = prompt["cache_write_1h_tokens"]
    return {
        "input_tokens": usage.get("prompt_tokens", 0),
        "input_tokens_details": input_details,
        "output_tokens": usage.get("completion_tokens", 0),
        "output_tokens_details": {"reasoning_tokens": completion.get("reasoning_tokens") or 0},
        "total_tokens": usage.get("total_tokens", 0),
    }


def text_part(text: str, logprobs: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": logprobs or []}


def asked_logprobs(request: ResponsesRequest) -> bool:
    """Whether the request asked the upstream for logprobs (`include`
    `message.output_text.logprobs`, or `top_logprobs`): its output text then carries them."""
    return request.params.HasField("logprobs") and request.params.logprobs


def message_item(item_id: str, status: str, content: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": item_id,
        "type": "message",
        "role": "assistant",
        "status": status,
        "content": content,
    }


def call_item(item_id: str, call_id: str, name: str, arguments: str, status: str) -> dict[str, Any]:
    return {
        "id": item_id,
        "type": "function_call",
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
        "status": status,
    }


def reasoning_item(item_id: str, status: str, text: str | None) -> dict[str, Any]:
    """The model's reasoning text (what providers send as ``reasoning_content``), as OpenAI
    gives open-weight models' raw reasoning: ``content`` parts, no summary."""
    content = [] if text is None else [{"type": "reasoning_text", "text": text}]
    return {"id": item_id, "type": "reasoning", "status": status, "summary": [], "content": content}


def reasoning_text(delta_or_message: dict[str, Any]) -> str | None:
    """The reasoning text of a chat message or delta, under the names upstreams use for it."""
    for key in ("reasoning_content", "reasoning"):
        value = delta_or_message.get(key)
        if isinstance(value, str) and value:
            return value
    return None


def response_to_openai(
    completion: chat_pb2.ChatCompletion,
    request: ResponsesRequest,
    ids: ResponseIds,
    created_at: int,
    completed_at: int,
) -> dict[str, Any]:
    """The ``response`` object for a finished chat completion."""
    body = chat_completion_to_openai(completion)
    response = envelope(request, ids, created_at, body.get("model", ""), "completed")
    choices = body.get("choices") or [{}]
    choice = choices[0]
    finish = choice.get("finish_reason")
    message = choice.get("message") or {}
    status = item_status(finish)
    kept = reasoning_items_of(message)  # a Responses upstream's, placed as it gave them
    output: list[dict[str, Any]] = []
    reasoning = reasoning_text(message)
    signed = signed_blocks(message) if asks_encrypted(request.params) else []
    if (reasoning is not None or signed) and not kept:  # a Responses upstream's hold theirs
        item = reasoning_item(ids.item("rs", 1), "completed", reasoning)
        output.append(carrying(item, signed))  # Claude's signed thinking, for the next turn
    text = message_text(message.get("content"))
    calls = message.get("tool_calls") or legacy_calls(message)
    hosted = hosted_items_of(message)  # OpenAI's hosted tools' items, as it gave them
    pieces, hosted = split_messages(text, annotations_of(message), hosted)
    logprobs = output_logprobs(choice) if asked_logprobs(request) else []
    apart = split_logprobs(logprobs, [said for said, _ in pieces])  # each message its own
    refusal = message.get("refusal")
    refused = isinstance(refusal, str)
    for n, (said, cited) in enumerate(pieces, start=1):
        content: list[dict[str, Any]] = []
        if said or not (calls or hosted or refused):  # a refusal's message has it alone
            content.append({**text_part(said, apart[n - 1]), "annotations": cited})
        if n == len(pieces) and refused:
            content.append({"type": "refusal", "refusal": refusal})
        if content:
            output.append(message_item(ids.item("msg", n), status, content))
    output += _call_items(calls, ids, status)
    response["output"] = placed_items(kept, hosted, output, reasoning_output_item)
    response["usage"] = usage_to_responses(body.get("usage"))
    finished(response, finish, completed_at)
    return response


def legacy_calls(message: dict[str, Any]) -> list[dict[str, Any]]:
    """A message's (or delta's) legacy `function_call` as the one tool call it stands for: a
    Responses caller's `functions` ride to the upstream as unknown keys do, and are answered
    so (by OpenAI's chat API, or by the router for the kinds it sends them to as tools)."""
    called = message.get("function_call")
    return (
        [{"index": 0, "type": "function", "function": called}] if isinstance(called, dict) else []
    )


def _call_items(calls: list[dict[str, Any]], ids: ResponseIds, status: str) -> list[dict[str, Any]]:
    """A message's tool calls as ``function_call`` (``custom_tool_call``) items."""
    items = []
    for n, call in enumerate(calls, start=1):
        call_id = call.get("id") or ids.item("call", n)
        custom = custom_of(call)
        if custom is not None:
            name, text = str(custom.get("name", "")), str(custom.get("input", ""))
            items.append(custom_call_item(ids.item("ctc", n), call_id, name, text, status))
            continue
        function = call.get("function") or {}
        name, arguments = function.get("name", ""), function.get("arguments", "")
        items.append(call_item(ids.item("fc", n), call_id, name, arguments, status))
    return items
