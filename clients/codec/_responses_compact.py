"""``POST /v1/responses/compact`` and ``POST /v1/responses/input_tokens``, the codec's side.

A compaction is a normal chat call: the conversation the request names (``input`` after the
``previous_response_id``'s, parsed as a Responses request is) followed by one user message,
:data:`SUMMARY_INSTRUCTION`. Its answer becomes a ``response.compaction`` object: the
conversation's user messages, then one ``compaction`` item holding the summary
(:func:`encode_compaction`), then the call's usage. Nothing is stored.

An input token count parses the request as ``POST /v1/responses`` would and estimates the chat
params it becomes (:func:`estimate_prompt_tokens`, the router's own estimate for tpm and budgets).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NoReturn

import orjson

from clients.codec._json import load_json
from clients.codec._request import chat_params_to_openai
from clients.codec._response import chat_completion_to_openai
from clients.codec._responses_compaction import encode_compaction
from clients.codec._responses_custom import HOSTED_ITEMS, PRECEDES
from clients.codec._responses_hosted import FOLLOWS, TEXT_AT, hosted_items_of
from clients.codec._responses_output import ResponseIds, usage_to_responses
from clients.codec._responses_request import History, responses_request_from_openai
from clients.codec._said import message_text
from clients.codec._tokens import estimate_prompt_tokens
from clients.errors import InvalidRequestError
from clients.switchboard.v1 import chat_pb2

__all__ = [
    "SUMMARY_INSTRUCTION",
    "CompactRequest",
    "compact_request_from_openai",
    "compacted_response",
    "input_tokens_of",
]

# The one instruction a compaction sends, after the conversation (documented in the README).
SUMMARY_INSTRUCTION = (
    "Summarise the conversation so far so that it can continue from your summary alone. Keep "
    "every fact, decision, name, number, file, tool result and open question, and what the user "
    "wants; leave out pleasantries. Answer with the summary only."
)
# The request keys a compaction reads (the rest of OpenAI's, caching and service tiers, have
# no meaning here and are not read).
_COMPACT_KEYS = ("model", "input", "instructions", "previous_response_id")
# OpenAI's compaction answers one object, never a stream: a caller asking for one is told so,
# not answered otherwise than it asked (`stream: false` asks for what it gets).
_NO_STREAM = (
    "Unknown parameter: 'stream'. A compaction is answered as one response.compaction "
    "object; it cannot be streamed."
)


@dataclass(frozen=True)
class CompactRequest:
    """A parsed ``POST /v1/responses/compact`` body."""

    params: chat_pb2.ChatParams  # the conversation, then the summary instruction
    # The conversation's user messages, as the compacted response's output lists them.
    user_messages: tuple[dict[str, Any], ...]
    safety_identifier: str | None = None


def compact_request_from_openai(
    body: dict[str, Any], history: History | None = None
) -> CompactRequest:
    """Parse a compaction request (InvalidRequestError naming the field); `history`: what
    its ``previous_response_id`` names, loaded."""
    if isinstance(body, dict) and body.get("stream") not in (None, False):
        raise InvalidRequestError(_NO_STREAM, param="stream")
    conversation = responses_request_from_openai(_as_responses_body(body, _COMPACT_KEYS), history)
    params = conversation.params
    if len(params.messages) <= conversation.conversation_start:
        _nothing("compact")
    users = [m for m in chat_params_to_openai(params)["messages"] if m["role"] == "user"]
    _tool_history_as_text(params)
    params.messages.append(chat_pb2.ChatMessage(role=chat_pb2.ROLE_USER, text=SUMMARY_INSTRUCTION))
    safety = body.get("safety_identifier")
    return CompactRequest(params, tuple(users), safety if isinstance(safety, str) else None)


def compacted_response(
    request: CompactRequest, completion: chat_pb2.ChatCompletion, ids: ResponseIds, created_at: int
) -> dict[str, Any]:
    """OpenAI's ``response.compaction`` object for the summary `completion` answered, made at
    `created_at` (Unix seconds, of the caller's clock)."""
    answer = chat_completion_to_openai(completion)
    choices = answer.get("choices") or [{}]
    summary = message_text((choices[0].get("message") or {}).get("content"))
    output = [
        _user_item(m, ids.input_item("msg", n)) for n, m in enumerate(request.user_messages, 1)
    ]
    compaction = {"type": "compaction", "id": ids.item("cmp", 1)}
    output.append({**compaction, "encrypted_content": encode_compaction(summary)})
    return {
        "id": ids.response,
        "object": "response.compaction",
        "created_at": created_at,
        "output": output,
        "usage": usage_to_responses(answer.get("usage") or {"total_tokens": 0}),
        "safety_identifier": request.safety_identifier,
    }


def input_tokens_of(body: dict[str, Any], history: History | None = None) -> tuple[str, int]:
    """The model a ``POST /v1/responses/input_tokens`` body names and the estimate of the
    prompt the same body would send to ``POST /v1/responses``."""
    parsed = responses_request_from_openai(_as_responses_body(body, None), history)
    if not parsed.params.messages:
        _nothing("count")
    return parsed.params.model, estimate_prompt_tokens(parsed.params)


def _tool_history_as_text(params: chat_pb2.ChatParams) -> None:
    """Tool calls and their results, rewritten as text. A compaction sends no tool definitions
    (OpenAI's request has none to send), and upstreams refuse tool calls without them
    (Anthropic: "tool_use blocks must define tools"); the summary needs what they said, not
    their form. So are OpenAI's hosted tools' items (`_hosted_as_text`)."""
    for message in params.messages:
        if message.extra_json and HOSTED_ITEMS in message.extra_json:
            _hosted_as_text(message)
        if message.role in (chat_pb2.ROLE_TOOL, chat_pb2.ROLE_FUNCTION):
            call = message.tool_call_id or message.name
            said = _text_of(message)
            message.Clear()
            message.role = chat_pb2.ROLE_USER
            message.text = f"[The result of tool call {call}]\n{said}"
        elif message.tool_calls or message.HasField("function_call"):
            calls = [(c.id, c.function) for c in message.tool_calls if c.type != "custom"]
            if message.HasField("function_call"):
                calls.append(("", message.function_call))
            lines = [f"[Tool call {_label(i)}{f.name}({f.arguments})]" for i, f in calls]
            lines += [_custom_line(c) for c in message.tool_calls if c.type == "custom"]
            message.text = "\n".join(filter(None, [_text_of(message), *lines]))
            del message.tool_calls[:]
            message.ClearField("function_call")


# What of a hosted item is its form, not what it said (an image generated: its bytes).
_HOSTED_FORM = frozenset(("type", "id", "status", "result", PRECEDES, FOLLOWS, TEXT_AT))


def _hosted_as_text(message: chat_pb2.ChatMessage) -> None:
    """A message's hosted tools' items (a web search call, an MCP call and its output…) as its
    text, each a line of its type and id then its fields: only a Responses API deployment takes
    them as items, and a compaction may be any model's."""
    extra = load_json(message.extra_json, "messages")
    items = hosted_items_of(extra) if isinstance(extra, dict) else []
    if not isinstance(extra, dict) or not items:
        return
    del extra[HOSTED_ITEMS]
    message.extra_json = orjson.dumps(extra).decode() if extra else ""
    lines = []
    for item in items:
        said = {k: v for k, v in item.items() if k not in _HOSTED_FORM}
        name = " ".join(str(item[k]) for k in ("type", "id") if item.get(k))
        lines.append(f"[{name}]\n{orjson.dumps(said).decode()}")
    message.text = "\n".join(filter(None, [_text_of(message), *lines]))


def _custom_line(call: chat_pb2.ToolCall) -> str:
    """A custom tool's call (its input free text, not JSON arguments) as text."""
    extra = load_json(call.extra_json, "tool_calls") if call.extra_json else {}
    custom = extra.get("custom") if isinstance(extra, dict) else None
    custom = custom if isinstance(custom, dict) else {}
    return f"[Tool call {_label(call.id)}{custom.get('name', '')}]\n{custom.get('input', '')}"


def _label(call_id: str) -> str:
    return f"{call_id}: " if call_id else ""


def _text_of(message: chat_pb2.ChatMessage) -> str:
    if message.WhichOneof("content") == "parts":
        return "\n".join(p.text.text for p in message.parts.parts if p.HasField("text"))
    return message.text


def _nothing(what: str) -> NoReturn:
    raise InvalidRequestError(
        f"There is nothing to {what}: send 'input' (or a 'previous_response_id' or "
        "'conversation' that holds some).",
        param="input",
    )


def _as_responses_body(body: dict[str, Any], keys: tuple[str, ...] | None) -> dict[str, Any]:
    """`body` (only `keys`, when given) as a Responses request: ``input`` may be left out."""
    if not isinstance(body, dict):
        raise InvalidRequestError("The request body must be a JSON object.")
    taken = dict(body) if keys is None else {k: body[k] for k in keys if k in body}
    if taken.get("input") is None:
        taken["input"] = []
    return taken


def _user_item(message: dict[str, Any], item_id: str) -> dict[str, Any]:
    content = message.get("content")
    parts: list[dict[str, Any]] = []
    for part in [content] if isinstance(content, str) else content or []:
        if isinstance(part, str):
            parts.append({"type": "input_text", "text": part})
        elif part.get("type") == "text":
            parts.append({"type": "input_text", "text": part.get("text", "")})
        elif part.get("type") == "image_url":
            url = (part.get("image_url") or {}).get("url")
            parts.append({"type": "input_image", "image_url": url, "detail": "auto"})
    return {
        "type": "message",
        "id": item_id,
        "role": "user",
        "status": "completed",
        "content": parts,
    }
