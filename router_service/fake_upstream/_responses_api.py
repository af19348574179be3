"""OpenAI's Responses API, `POST /v1/responses` (and Azure's v1 API, `/openai/v1/responses`):
a Response, or its event stream (`stream: true`), under the same Scenarios as the chat endpoint.

As OpenAI answers (https://platform.openai.com/docs/api-reference/responses, the openai SDK's
`Response` and stream event types, which tests validate these against): the answer is a
`message` item of `output_text` (the scenario's content, else "Echo: " + the last user text),
or a `function_call` item when the scenario asks for a tool call and the request has tools
(not after a `function_call_output`: the tool answered) — a `custom_tool_call` of
`Scenario.tool_input` when the tool is a custom one. A `reasoning` item with the scenario's
reasoning as its summary comes first when the request asked for a summary, with its
`encrypted_content` (ENCRYPTED_PREFIX…) when `include` asked for it; an input reasoning item
whose encrypted content is not such is refused as OpenAI refuses another's
(`invalid_encrypted_content`). `include: ["message.output_text.logprobs"]` gives the text's
parts (and each streamed delta) made-up `logprobs`, `top_logprobs` alternatives each; a
reasoning model (o-series, gpt-5 by name) refuses it as OpenAI's do (`logprobs_refused`).
`max_output_tokens` cuts the answer at that many words (status `incomplete`, reason
`max_output_tokens`), and is refused under 16. Chat-completions parameters are refused as
unknown ("Unknown parameter"). A wrapped error is a `failed` Response (a stream's
`response.failed` event, or its `error` event: ERROR_EVENT). OpenAI's hosted tools (web search,
local shell, MCP): _responses_hosted.py.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from . import _responses as R
from ._azure import AzureDialect
from ._dialects import Dialect, named_sse
from ._faults import Call
from ._responses_hosted import CITING, citation, hosted_items, hosted_tool
from ._scenario import Scenario

JsonObject = dict[str, Any]
# Scenario(kind=ERROR_EVENT): a stream's wrapped error is an `error` event, then `response.failed`.
# Its fields come nested under `error` (`{"type": "error", "error": {"type", "code", "message",
# "param"}, "sequence_number"}`), as the live API sends it (the API reference shows them flat).
ERROR_EVENT = "error_event"
# Scenario(kind=REFUSAL): the model refuses (structured outputs' refusal), the answer's text a
# `refusal` part of the message instead of `output_text` (streamed `response.refusal.delta`).
REFUSAL = "refusal"
# Scenario(kind=UNVERIFIED_ORG): the key's organization is not verified, and OpenAI refuses a
# reasoning summary to it: a 400 naming `reasoning.summary` (the same request without one is
# answered).
UNVERIFIED_ORG = "unverified_org"
UNVERIFIED_ORG_ERROR = {
    "message": "Your organization must be verified to generate reasoning summaries. Please go "
    "to: https://platform.openai.com/settings/organization/general and click on Verify "
    "Organization. If you just verified, it can take up to 15 minutes for access to propagate.",
    "type": "invalid_request_error",
    "param": "reasoning.summary",
    "code": "unsupported_value",
}
# The `include` value that asks for the output text's logprobs.
LOGPROBS = "message.output_text.logprobs"
# What the fake's encrypted reasoning starts with (the rest: the response's id).
ENCRYPTED_PREFIX = "gAAAAfake-"
# The least `max_output_tokens` OpenAI takes.
MIN_OUTPUT_TOKENS = 16
# Chat completions' own parameters: the Responses API knows none of them.
_CHAT_ONLY = (
    "messages", "max_tokens", "max_completion_tokens", "stop", "n", "logprobs", "seed",
    "presence_penalty", "frequency_penalty", "logit_bias", "response_format",
    "reasoning_effort", "stream_options",
)  # fmt: skip


class _ResponsesWords(Dialect):
    """A wrapped error said as the Responses API says it: a failed Response (a dialect's
    other words are its own: OpenAI's, Azure's)."""

    def wrapped_body(self, sc: Scenario) -> JsonObject:
        inner = self.wrapped_inner(sc)
        error = {"code": inner.get("code") or "server_error", "message": inner.get("message")}
        answer = _Answer("resp_failed", 0, "", "", None, "{}", None, "completed")
        return {**response_obj(answer, status="failed"), "error": error, "usage": None}

    def wrapped_event(self, sc: Scenario) -> bytes:
        response = self.wrapped_body(sc)
        failed = {"type": "response.failed", "sequence_number": 0, "response": response}
        if sc.kind == ERROR_EVENT:  # as the live API sends an `error` event: its fields nested,
            event = {"type": "error", "sequence_number": 0, "error": self.wrapped_inner(sc)}
            failed["sequence_number"] = 1  # then the Response, failed
            return named_sse("error", event) + named_sse("response.failed", failed)
        return named_sse("response.failed", failed)


class AzureResponsesDialect(_ResponsesWords, AzureDialect):
    """Azure's v1 API: no `api-version` (its GA `v1` is the path's)."""

    def refusal(self, request: web.Request) -> tuple[int, JsonObject] | None:
        return None if self.api_key(request) else self.invalid_key()


RESPONSES = _ResponsesWords()
AZURE_RESPONSES = AzureResponsesDialect()


@dataclass(frozen=True)
class _Answer:
    response_id: str
    created: int
    model: str
    text: str
    tool_name: str | None
    arguments: str
    reasoning: str | None  # the summary, when asked
    status: str  # completed | incomplete
    input_tokens: int = 0
    reasoning_tokens: int = 0
    cached_tokens: int = 0
    refusal: bool = False  # the text is the model's refusal
    custom: bool = False  # the tool called is a custom one (`arguments`: its input)
    encrypted: bool = False  # the reasoning item carries its encrypted content
    hosted: tuple[JsonObject, ...] = ()  # a hosted tool's items, before the answer
    hosted_tool: str | None = None  # web_search (its text cited), local_shell (no text), mcp
    preamble: str | None = None  # a message's text before the hosted call (Scenario.preamble)
    cite_after: int | None = None  # Scenario.cite_after_deltas
    input_on_done: bool = False  # Scenario.call_input_on_done
    empty_delta: bool = False  # Scenario.call_empty_delta
    # `top_logprobs` when `include` asked for the text's logprobs, else None.
    top_logprobs: int | None = None

    @property
    def hex(self) -> str:
        return self.response_id.removeprefix("resp_")

    @property
    def output_tokens(self) -> int:
        words = 2 if self.tool_name is not None else R.count_words(self.text)
        return words + self.reasoning_tokens


def input_text(value: Any) -> tuple[str, int]:
    """(the last user text, the words of every text) of `input`."""
    if isinstance(value, str):
        return value, R.count_words(value)
    last, words = "", 0
    for item in value if isinstance(value, list) else ():
        if not isinstance(item, dict):
            continue
        content = item.get("content", item.get("output", ""))
        text = R.message_text(content)
        words += R.count_words(text)
        if item.get("role") == "user":
            last = text
    return last, words


def fitted(body: JsonObject, window: int) -> JsonObject | None:
    """`body` as a model whose context window is `window` words reads it (`Scenario.
    context_window`): whole when its input fits; with `truncation: "auto"`, as OpenAI's, its
    oldest items left out (never the system and developer messages, nor the last item) until it
    does; None when it does not (OpenAI's 400 `context_length_exceeded`)."""
    items = body.get("input")
    if input_text(items)[1] <= window:
        return body
    if body.get("truncation") != "auto" or not isinstance(items, list):
        return None
    kept = ("system", "developer")
    droppable = [n for n, item in enumerate(items[:-1]) if item.get("role") not in kept]
    for count in range(1, len(droppable) + 1):
        gone = set(droppable[:count])
        left = [item for n, item in enumerate(items) if n not in gone]
        if input_text(left)[1] <= window:
            return {**body, "input": left}
    return None


def _tool(body: JsonObject, sc: Scenario) -> str | None:
    tools = body.get("tools")
    items = body.get("input")
    if not sc.tool_call or not isinstance(tools, list) or not tools:
        return None
    answered = ("function_call_output", "custom_tool_call_output", "local_shell_call_output")
    if isinstance(items, list) and items and items[-1].get("type") in answered:
        return None  # the tool answered: a real model now replies in text
    return sc.tool_name or str(tools[0].get("name") or "tool")


def _is_custom(body: JsonObject, name: str | None) -> bool:
    tools = body.get("tools") or ()
    return any(t.get("type") == "custom" and t.get("name") == name for t in tools)


def unreadable(body: JsonObject) -> JsonObject | None:
    """OpenAI's error for an input reasoning item whose encrypted content is not the fake's."""
    items = body.get("input")
    for item in items if isinstance(items, list) else ():
        if isinstance(item, dict) and item.get("type") == "reasoning":
            content = str(item.get("encrypted_content"))
            if not content.startswith(ENCRYPTED_PREFIX):
                message = (
                    f"The encrypted content {content[:4]}...{content[-4:]} could not be verified."
                )
                return {"message": message, "type": "invalid_request_error", "param": None,
                        "code": "invalid_encrypted_content"}  # fmt: skip
    return None


# OpenAI's reasoning models by name (o-series, gpt-5 but its chat model), which refuse logprobs.
_REASONING = re.compile(r"^(?:o\d|gpt-5(?!-chat))")


def logprobs_refused(body: JsonObject, model: str) -> JsonObject | None:
    """OpenAI's error for logprobs asked of a reasoning model (as its Responses API answers)."""
    include = body.get("include")
    if not (isinstance(include, list) and LOGPROBS in include and _REASONING.match(model)):
        return None
    return {"message": "logprobs are not supported with reasoning models.",
            "type": "invalid_request_error", "param": "include",
            "code": "unsupported_parameter"}  # fmt: skip


def problem(body: JsonObject) -> str | None:
    """Why OpenAI would refuse the body, or None."""
    for key in _CHAT_ONLY:
        if key in body:
            return f"Unknown parameter: '{key}'."
    if "input" not in body:
        return "Missing required parameter: 'input'."
    limit = body.get("max_output_tokens")
    if isinstance(limit, int) and limit < MIN_OUTPUT_TOKENS:
        return (
            "Invalid 'max_output_tokens': integer below minimum value. Expected a value >= "
            f"{MIN_OUTPUT_TOKENS}, but got {limit} instead."
        )
    return None


def answer_of(call: Call) -> _Answer:
    body, sc = call.body, call.scenario
    last, words = input_text(body.get("input"))
    text = sc.content if sc.content is not None else f"Echo: {last}"
    limit, status = body.get("max_output_tokens"), "completed"
    if (isinstance(limit, int) and R.count_words(text) > limit) or sc.finish_reason == "length":
        text = " ".join(text.split()[: limit if isinstance(limit, int) else None])
        status = "incomplete"
    asked = body.get("reasoning")
    reasoning = asked if isinstance(asked, dict) else {}
    summary = sc.reasoning if reasoning.get("summary") else None
    thought = R.count_words(sc.reasoning or "") or (8 if reasoning.get("effort") else 0)
    hosted = hosted_tool(body) if sc.tool_call else None
    tool = None if hosted is not None else _tool(body, sc)
    custom = _is_custom(body, tool)
    include = body.get("include")
    response_id = f"resp_{call.state.next_completion_id().rsplit('-', 1)[-1]}{call.record.seq:04x}"
    hex_id = response_id.removeprefix("resp_")
    said = R.tool_arguments(sc) if sc.tool_arguments is not None else "{}"  # an MCP call's
    calls = hosted_items(hosted, body, hex_id, last, said) if hosted is not None else []
    return _Answer(
        response_id,
        int(time.time()),
        call.record.model,
        text,
        tool,
        (sc.tool_input or "") if custom else R.tool_arguments(sc),
        summary,
        status,
        input_tokens=words,
        reasoning_tokens=thought,
        cached_tokens=min(sc.cached_tokens or 0, words),
        refusal=sc.kind == REFUSAL,
        custom=custom,
        encrypted=isinstance(include, list) and "reasoning.encrypted_content" in include,
        hosted=tuple(calls),
        hosted_tool=hosted,
        preamble=sc.preamble if calls else None,
        cite_after=sc.cite_after_deltas,
        input_on_done=sc.call_input_on_done,
        empty_delta=sc.call_empty_delta,
        top_logprobs=_top_logprobs(body),
    )


def _top_logprobs(body: JsonObject) -> int | None:
    include, top = body.get("include"), body.get("top_logprobs")
    if not isinstance(include, list) or LOGPROBS not in include:
        return None
    return top if isinstance(top, int) else 0


def text_logprobs(answer: _Answer, text: str) -> list[list[JsonObject]]:
    """Each streamed piece's logprob entries of a message's `text`, when they were asked."""
    pieces = R.split_pieces(text, None)[1]
    top = answer.top_logprobs
    return [[] for _ in pieces] if top is None else R.piece_logprobs(pieces, top)


def _logprobs(answer: _Answer, text: str) -> list[JsonObject]:
    return [entry for entries in text_logprobs(answer, text) for entry in entries]


def _items(answer: _Answer, status: str) -> list[JsonObject]:
    items: list[JsonObject] = []
    if answer.reasoning is not None:
        # A paragraph a part, as OpenAI's summaries come (a "**title**" and its text each).
        parts = answer.reasoning.split("\n\n")
        summary = [{"type": "summary_text", "text": part} for part in parts]
        item = {"id": f"rs_{answer.hex}", "type": "reasoning", "summary": summary}
        if answer.encrypted:
            item["encrypted_content"] = f"{ENCRYPTED_PREFIX}{answer.hex}"
        items.append(item)
    if answer.preamble is not None:
        said: JsonObject = {"type": "output_text", "text": answer.preamble, "annotations": []}
        items.append({"id": f"msg_pre_{answer.hex}", "type": "message", "role": "assistant",
                      "status": status, "content": [{**said, "logprobs":
                      _logprobs(answer, answer.preamble)}]})  # fmt: skip
    items += answer.hosted
    if answer.hosted_tool == "local_shell":  # the call is the answer: the caller runs it
        return items
    if answer.tool_name is not None and answer.custom:
        call = {"id": f"ctc_{answer.hex}", "type": "custom_tool_call", "call_id": R.TOOL_CALL_ID}
        items.append({**call, "name": answer.tool_name, "input": answer.arguments})
        return items
    if answer.tool_name is not None:
        items.append(
            {
                "id": f"fc_{answer.hex}",
                "type": "function_call",
                "call_id": R.TOOL_CALL_ID,
                "name": answer.tool_name,
                "arguments": answer.arguments,
                "status": status,
            }
        )
        return items
    cited = [citation(answer.text, answer.hosted_tool)] if answer.hosted_tool in CITING else []
    part = {"type": "output_text", "text": answer.text, "annotations": cited}
    part["logprobs"] = _logprobs(answer, answer.text)
    if answer.refusal:
        part = {"type": "refusal", "refusal": answer.text}
    items.append(
        {
            "id": f"msg_{answer.hex}",
            "type": "message",
            "role": "assistant",
            "status": status,
            "content": [part],
        }
    )
    return items


def response_obj(answer: _Answer, status: str | None = None) -> JsonObject:
    """The Response: in progress (`status`, no output yet) or finished."""
    done = status is None
    status = answer.status if status is None else status
    usage = {
        "input_tokens": answer.input_tokens,
        "input_tokens_details": {"cached_tokens": answer.cached_tokens, "cache_write_tokens": 0},
        "output_tokens": answer.output_tokens,
        "output_tokens_details": {"reasoning_tokens": answer.reasoning_tokens},
        "total_tokens": answer.input_tokens + answer.output_tokens,
    }
    incomplete = {"reason": "max_output_tokens"} if done and status == "incomplete" else None
    return {
        "id": answer.response_id,
        "object": "response",
        "created_at": answer.created,
        "status": status,
        "error": None,
        "incomplete_details": incomplete,
        "model": answer.model,
        "output": _items(answer, status) if done else [],
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
        "store": False,
        "usage": usage if done else None,
    }
