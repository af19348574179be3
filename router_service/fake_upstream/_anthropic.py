"""Anthropic Messages API route: `POST /v1/messages` (JSON, or SSE with `"stream": true`).

Shapes from https://docs.anthropic.com/en/api/messages and the streaming event flow of
https://docs.anthropic.com/en/docs/build-with-claude/streaming: message_start, a ping, one
content block (text deltas, or a tool_use block with input_json_delta), message_delta with the
stop reason and usage, message_stop. With `Scenario.reasoning`, a signed thinking block comes
first (thinking_delta, then signature_delta), as extended thinking answers; asked for with
`thinking.display: "omitted"`, its text is left out (`"thinking": ""`, streamed signature-only:
no thinking_delta), as Claude omits it; so is it without a `display` by the models whose
default that is (Opus 4.7 and later, Mythos; `display: "summarized"` brings it back). The key
comes from `x-api-key`; like the real API, the fake insists on `anthropic-version` and
`max_tokens`, and refuses a stop sequence of whitespace alone, and a turn's text block of
whitespace alone ("messages: text content blocks must contain non-whitespace text").
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import orjson
from aiohttp import web

from . import _responses as R
from ._anthropic_server import (
    cited_answer,
    server_answer,
    server_block_events,
    server_tool,
    server_usage,
)
from ._content import anthropic_problem
from ._dialects import ANTHROPIC, named_sse
from ._faults import Call, run_stream, send_answer, send_error
from ._native import RequestView, chat_answer, words
from ._openai import handle

TOOL_USE_ID = "toolu_fake_1"
FAKE_SIGNATURE = "sig-fake-thinking"

# A server tool's answer (`_anthropic_server`): its content blocks, stop reason and the tool;
# or a document's cited answer (no tool).
Served = tuple[list[dict[str, Any]], str, str | None]


def _texts(content: Any) -> list[str]:
    if isinstance(content, str):
        return [content]
    blocks = content if isinstance(content, list) else []
    return [
        str(b.get("text", "")) for b in blocks if isinstance(b, dict) and b.get("type") == "text"
    ]


def _view(body: dict[str, Any]) -> RequestView:
    messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
    user = [m for m in messages if m.get("role") == "user" and _texts(m.get("content"))]
    last = messages[-1].get("content") if messages else None
    answered = isinstance(last, list) and any(
        isinstance(b, dict) and b.get("type") == "tool_result" for b in last
    )
    tools = body.get("tools")
    first = str(tools[0].get("name")) if isinstance(tools, list) and tools else None
    system = " ".join(_texts(body.get("system")))
    all_text = " ".join(t for m in messages for t in _texts(m.get("content")))
    last_user = " ".join(_texts(user[-1].get("content"))) if user else ""
    return RequestView(last_user, words(system, all_text), first, answered)


def _problem(call: Call) -> str | None:
    if "anthropic-version" not in call.request.headers:
        return "anthropic-version: header is required"
    if not call.record.model:
        return "model: Field required"
    return body_problem(call.body, call.record.model)


# The most output tokens a model takes, by a part of its name (the first that is in it); the
# models overview's figures (https://docs.claude.com/en/docs/about-claude/models/overview).
_OUTPUT_LIMITS = (
    ("opus-4-5", 64000),
    ("opus-4", 32000),
    ("sonnet-4", 64000),
    ("haiku-4-5", 64000),
    ("3-7-sonnet", 64000),
    ("3-5-", 8192),
)


def thinking_problem(thinking: Any, max_tokens: int, model: str) -> str | None:
    """What Claude refuses of `max_tokens` and extended thinking's budget beside it: a
    `max_tokens` past the model's output limit, a budget under 1024 or not below `max_tokens`."""
    limit = next((most for part, most in _OUTPUT_LIMITS if part in model), None)
    if limit is not None and max_tokens > limit:
        return (
            f"max_tokens: {max_tokens} > {limit}, which is the maximum allowed number of output "
            f"tokens for {model}"
        )
    if not isinstance(thinking, dict) or thinking.get("type") != "enabled":
        return None
    budget = thinking.get("budget_tokens")
    if not isinstance(budget, int) or budget < 1024:
        return "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024"
    if budget >= max_tokens:
        return "`max_tokens` must be greater than `thinking.budget_tokens`"
    return None


# A Claude model's version in its name (claude-opus-4-7, anthropic.claude-sonnet-5-v1:0).
_VERSION = re.compile(r"claude-[a-z]+-(\d+)(?:-(\d{1,2}))?(?=$|[-@.:_])")


def thinking_omitted(thinking: Any, model: str) -> bool:
    """Whether Claude leaves the thinking text out: `display: "omitted"`, or no `display` at a
    model whose default that is (Opus 4.7 and later, Mythos)."""
    display = thinking.get("display") if isinstance(thinking, dict) else None
    if display is not None:
        return bool(display == "omitted")
    found = _VERSION.search(model)
    later = found is not None and (int(found[1]), int(found[2] or 0)) >= (4, 7)
    return "mythos" in model or later


# Any Claude model's version (claude-3-5-haiku-20241022 too), for structured outputs.
_ANY_VERSION = re.compile(r"claude-(?:[a-z]+-)?(\d+)(?:-(\d{1,2}))?(?=$|[-@.:_])")


def output_format_problem(model: str) -> str | None:
    """Claude before 4.5 refuses structured outputs (`output_config.format`, Converse's
    `outputConfig`) with a 400: https://platform.claude.com/docs/en/build-with-claude/
    structured-outputs names the 4.5 models and later."""
    found = _ANY_VERSION.search(model)
    if found is None or (int(found[1]), int(found[2] or 0)) >= (4, 5):
        return None
    return f"'{model}' does not support structured outputs (output_config.format)"


def body_problem(body: dict[str, Any], model: str) -> str | None:
    """What the Messages API refuses in a request body (whoever serves it: Vertex too)."""
    if not isinstance(body.get("max_tokens"), int):
        return "max_tokens: Field required"
    config = body.get("output_config")
    if isinstance(config, dict) and "format" in config and output_format_problem(model):
        return output_format_problem(model)
    thinking = thinking_problem(body.get("thinking"), body["max_tokens"], model)
    if thinking is not None:
        return thinking
    if not isinstance(body.get("messages"), list) or not body["messages"]:
        return "messages: at least one message is required"
    stops = body.get("stop_sequences")
    if isinstance(stops, list) and any(isinstance(s, str) and not s.strip() for s in stops):
        return "stop_sequences: each stop sequence must contain non-whitespace"
    if _blank_text(body):
        return "messages: text content blocks must contain non-whitespace text"
    return anthropic_problem(body)


def _blank_text(body: dict[str, Any]) -> bool:
    """Whether a turn holds a text block of whitespace alone (Claude refuses one; a
    tool_result's content it takes)."""
    for message in body["messages"]:
        content = message.get("content") if isinstance(message, dict) else None
        for block in content if isinstance(content, list) else ():
            text = block.get("text") if isinstance(block, dict) else None
            if block.get("type") == "text" and isinstance(text, str) and not text.strip():
                return True
    return False


def thinking_blocks(answer: R.ChatAnswer) -> list[dict[str, Any]]:
    """The answer's signed thinking block (Scenario.reasoning), as extended thinking gives it,
    and its redacted one (Scenario.redacted_thinking)."""
    blocks = []
    if answer.reasoning is not None:
        signed = {"thinking": answer.reasoning, "signature": FAKE_SIGNATURE}
        blocks.append({"type": "thinking", **signed})
    if answer.redacted_thinking is not None:
        blocks.append({"type": "redacted_thinking", "data": answer.redacted_thinking})
    return blocks


def _message(answer: R.ChatAnswer, served: Served | None = None) -> dict[str, Any]:
    usage = {**_input_usage(answer), "output_tokens": answer.completion_tokens}
    if served is not None:
        content, stop, tool = served
        if tool is not None:
            usage["server_tool_use"] = server_usage(tool)
    elif answer.tool_name is not None:
        block = {
            "type": "tool_use",
            "id": TOOL_USE_ID,
            "name": answer.tool_name,
            "input": orjson.loads(answer.tool_arguments),
        }
        content, stop = [block], "tool_use"
    else:
        content = [{"type": "text", "text": answer.text}]
        stop = "end_turn" if answer.stop_sequence is None else "stop_sequence"
    return {
        "id": answer.completion_id,
        "type": "message",
        "role": "assistant",
        "model": answer.model,
        "content": [*thinking_blocks(answer), *content],
        "stop_reason": stop,
        "stop_sequence": answer.stop_sequence,
        "usage": usage,
    }


def _input_usage(answer: R.ChatAnswer) -> dict[str, Any]:
    """The input counts as Anthropic gives them: the cache's reads and writes beside the
    uncached `input_tokens`, the writes split by how long they are kept."""
    written, hour = answer.cache_write_tokens, answer.cache_write_1h_tokens
    return {
        "input_tokens": answer.prompt_tokens,
        "cache_creation_input_tokens": written,
        "cache_read_input_tokens": answer.cached_tokens,
        "cache_creation": {
            "ephemeral_5m_input_tokens": written - hour,
            "ephemeral_1h_input_tokens": hour,
        },
    }


def _answer_block(answer: R.ChatAnswer) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The answer's content block as it starts, and its deltas."""
    if answer.tool_name is None:
        start: dict[str, Any] = {"type": "text", "text": ""}
        return start, [{"type": "text_delta", "text": piece} for piece in answer.pieces]
    start = {"type": "tool_use", "id": TOOL_USE_ID, "name": answer.tool_name, "input": {}}
    half = len(answer.tool_arguments) // 2
    halves = (answer.tool_arguments[:half], answer.tool_arguments[half:])
    return start, [{"type": "input_json_delta", "partial_json": part} for part in halves]


def _block_events(answer: R.ChatAnswer, served: Served | None) -> list[dict[str, Any]]:
    if served is not None:
        return server_block_events(served[0])
    blocks: list[tuple[dict[str, Any], list[dict[str, Any]]]] = []
    for block in thinking_blocks(answer):
        if block["type"] == "redacted_thinking":  # whole at its start
            blocks.append((block, []))
            continue
        deltas = [{"type": "thinking_delta", "thinking": answer.reasoning}]  # then its signature
        if not answer.reasoning:  # omitted (`thinking.display`): the signature alone
            deltas = []
        deltas.append({"type": "signature_delta", "signature": FAKE_SIGNATURE})
        blocks.append(({"type": "thinking", "thinking": "", "signature": ""}, deltas))
    blocks.append(_answer_block(answer))
    events: list[dict[str, Any]] = []
    for index, (start, deltas) in enumerate(blocks):
        events.append({"type": "content_block_start", "index": index, "content_block": start})
        events += [{"type": "content_block_delta", "index": index, "delta": d} for d in deltas]
        events.append({"type": "content_block_stop", "index": index})
    return events


def stream_events(answer: R.ChatAnswer, served: Served | None = None) -> tuple[list[bytes], int]:
    """All events of a healthy stream, and how many precede the stop reason (message_delta)."""
    message = _message(answer, served)
    stop = message["stop_reason"]
    start = {**message, "content": [], "stop_reason": None}
    # message_start has the input counts (and the writes by TTL); message_delta has them all
    # again, cumulative (as Anthropic sends them: a mapper that adds them up counts twice).
    start["usage"] = {**_input_usage(answer), "output_tokens": 1}
    counted = {k: v for k, v in message["usage"].items() if k != "cache_creation"}
    payloads: list[dict[str, Any]] = [
        {"type": "message_start", "message": start},
        {"type": "ping"},
        *_block_events(answer, served),
    ]
    content_count = len(payloads)
    payloads += [
        {
            "type": "message_delta",
            "delta": {"stop_reason": stop, "stop_sequence": message["stop_sequence"]},
            "usage": counted,
        },
        {"type": "message_stop"},
    ]
    return [named_sse(str(p["type"]), p) for p in payloads], content_count


async def _messages(call: Call) -> web.StreamResponse:
    problem = _problem(call)
    if problem is not None:
        return await send_error(call, 400, problem, "bad_request")
    return await answer_messages(call)


async def answer_messages(call: Call) -> web.StreamResponse:
    """The answer to a valid Messages request, as JSON or as its event stream."""
    answer = chat_answer(call, _view(call.body), f"msg_fake_{call.record.seq}")
    scenario = call.scenario
    reasoning = scenario.reasoning
    if reasoning is not None and thinking_omitted(call.body.get("thinking"), call.record.model):
        reasoning = ""  # the block and its signature, without its text
    thought = dataclasses.replace(
        answer, reasoning=reasoning, redacted_thinking=scenario.redacted_thinking
    )
    answer = _stopped(thought, call.body)
    served = _served(call, answer)
    if served is not None:
        answer = dataclasses.replace(answer, tool_name=None, reasoning=None, redacted_thinking=None)
    if not call.record.stream:
        return await send_answer(call, _message(answer, served))
    events, content_count = stream_events(answer, served)
    return await run_stream(call, events, content_count)


def _served(call: Call, answer: R.ChatAnswer) -> Served | None:
    """A server tool's answer, when the scenario calls a tool and the first is one; else a
    cited answer, when a document asks for citations."""
    tool = server_tool(call.body) if call.scenario.tool_call else None
    if tool is None:
        cited = cited_answer(call.body, answer) if answer.tool_name is None else None
        return None if cited is None else (cited, "end_turn", None)
    paused = call.scenario.finish_reason == "pause_turn"
    blocks, stop = server_answer(tool, answer, paused)
    return blocks, stop, tool


def _stopped(answer: R.ChatAnswer, body: dict[str, Any]) -> R.ChatAnswer:
    """The answer cut before the first of the request's `stop_sequences` it holds, naming it,
    as Anthropic answers (the sequence itself is not in the text)."""
    stops = body.get("stop_sequences")
    text = R.stop_text(answer.text, stops)
    if answer.tool_name is not None or text == answer.text or not isinstance(stops, list):
        return answer
    rest = answer.text[len(text) :]
    sequence = next(s for s in stops if isinstance(s, str) and s and rest.startswith(s))
    text, pieces = R.split_pieces(text, None)
    return dataclasses.replace(answer, text=text, pieces=pieces, stop_sequence=sequence)


async def messages(request: web.Request) -> web.StreamResponse:
    return await handle(request, _messages, dialect=ANTHROPIC)


def add_routes(app: web.Application) -> None:
    app.router.add_post("/v1/messages", messages)
