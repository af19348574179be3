"""Cohere v2 routes: `POST /v2/chat` (JSON, or SSE with `"stream": true`) and `POST /v2/embed`.

Shapes from https://docs.cohere.com/reference/chat, the stream events of
https://docs.cohere.com/v2/docs/streaming and https://docs.cohere.com/docs/tool-use-streaming,
and https://docs.cohere.com/reference/embed (at most 96 texts a call). The key is the bearer
token. The model list (`GET /v1/models?page_size=…`) is served by the shared `/v1/models`
route. With `thinking` enabled, the answer's reasoning (`Scenario.reasoning`, else `THOUGHTS`)
comes first as a `thinking` content item, streamed a word a content-delta (`content.thinking`),
as Cohere's reasoning models answer (https://docs.cohere.com/v2/docs/reasoning).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from aiohttp import web

from . import _responses as R
from ._content import cohere_problem
from ._dialects import COHERE, named_sse
from ._faults import Call, run_stream, send_answer, send_error
from ._gemini import THOUGHTS
from ._native import RequestView, chat_answer, words
from ._openai import handle


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    parts = content if isinstance(content, list) else []
    return " ".join(str(p.get("text", "")) for p in parts if isinstance(p, dict) and "text" in p)


def _view(body: dict[str, Any]) -> RequestView:
    messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
    user = [m for m in messages if m.get("role") == "user" and _text(m.get("content"))]
    answered = bool(messages) and messages[-1].get("role") == "tool"
    tools = body.get("tools")
    function = tools[0].get("function") if isinstance(tools, list) and tools else None
    first = str(function.get("name")) if isinstance(function, dict) else None
    all_text = " ".join(_text(m.get("content")) for m in messages)
    last_user = _text(user[-1].get("content")) if user else ""
    return RequestView(last_user, words(all_text), first, answered)


def _usage(answer: R.ChatAnswer) -> dict[str, Any]:
    counts = {"input_tokens": answer.prompt_tokens, "output_tokens": answer.completion_tokens}
    return {"billed_units": dict(counts), "tokens": dict(counts)}


def _tool_call(answer: R.ChatAnswer, arguments: str) -> dict[str, Any]:
    function = {"name": answer.tool_name, "arguments": arguments}
    return {"id": R.TOOL_CALL_ID, "type": "function", "function": function}


def _thinking(body: dict[str, Any], reasoning: str | None) -> str | None:
    """The reasoning to answer with: thinking enabled by the request."""
    thinking = body.get("thinking")
    enabled = isinstance(thinking, dict) and thinking.get("type") == "enabled"
    return (reasoning or THOUGHTS) if enabled else None


def _response(answer: R.ChatAnswer, finish_reason: str | None = None) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant"}
    thought = (
        [] if answer.reasoning is None else [{"type": "thinking", "thinking": answer.reasoning}]
    )
    if answer.tool_name is not None:
        message["tool_plan"] = f"I will call {answer.tool_name}."
        message["tool_calls"] = [_tool_call(answer, answer.tool_arguments)]
        message.update({"content": thought} if thought else {})
        finish = "TOOL_CALL"
    else:
        message["content"] = [*thought, {"type": "text", "text": answer.text}]
        finish = "COMPLETE"
    return {
        "id": answer.completion_id,
        "finish_reason": finish_reason or finish,
        "message": message,
        "usage": _usage(answer),
    }


def _content_events(index: int, kind: str, pieces: list[str]) -> list[dict[str, Any]]:
    """A content item's start, its pieces (`text` or `thinking`) and its end."""
    start = {"message": {"content": {"type": kind, kind: ""}}}
    deltas = [
        {"type": "content-delta", "index": index, "delta": {"message": {"content": {kind: p}}}}
        for p in pieces
    ]
    return [
        {"type": "content-start", "index": index, "delta": start},
        *deltas,
        {"type": "content-end", "index": index},
    ]


def _body_events(answer: R.ChatAnswer) -> list[dict[str, Any]]:
    if answer.reasoning is None:
        return _answer_events(answer, 0)
    pieces = R.split_pieces(answer.reasoning, None)[1]
    return _content_events(0, "thinking", pieces) + _answer_events(answer, 1)


def _answer_events(answer: R.ChatAnswer, index: int) -> list[dict[str, Any]]:
    if answer.tool_name is not None:
        plan = {"message": {"tool_plan": f"I will call {answer.tool_name}."}}
        start = {"message": {"tool_calls": _tool_call(answer, "")}}
        arguments = {"message": {"tool_calls": {"function": {"arguments": answer.tool_arguments}}}}
        return [
            {"type": "tool-plan-delta", "delta": plan},
            {"type": "tool-call-start", "index": 0, "delta": start},
            {"type": "tool-call-delta", "index": 0, "delta": arguments},
            {"type": "tool-call-end", "index": 0},
        ]
    return _content_events(index, "text", answer.pieces)


def stream_events(
    answer: R.ChatAnswer, finish_reason: str | None = None
) -> tuple[list[bytes], int]:
    """All events of a stream, and how many precede message-end (the finish reason: the
    scenario's, e.g. "ERROR", else what the answer ends with)."""
    role = {"message": {"role": "assistant", "content": [], "tool_plan": "", "tool_calls": []}}
    payloads = [
        {"id": answer.completion_id, "type": "message-start", "delta": role},
        *_body_events(answer),
    ]
    content_count = len(payloads)
    finish = "TOOL_CALL" if answer.tool_name is not None else "COMPLETE"
    end = {"finish_reason": finish_reason or finish, "usage": _usage(answer)}
    payloads.append({"type": "message-end", "delta": end})
    return [named_sse(str(p["type"]), p) for p in payloads], content_count


async def _chat(call: Call) -> web.StreamResponse:
    if not call.record.model:
        return await send_error(call, 400, "invalid request: model is required", "bad_request")
    messages = call.body.get("messages")
    if not isinstance(messages, list) or not messages:
        return await send_error(call, 400, "invalid request: messages is empty", "bad_request")
    problem = cohere_problem(call.body)
    if problem is not None:
        return await send_error(call, 400, problem, "bad_request")
    answer = chat_answer(call, _view(call.body), f"fake-{call.record.seq}")
    reasoning = _thinking(call.body, call.scenario.reasoning)
    answer = dataclasses.replace(answer, reasoning=reasoning)
    finish = call.scenario.finish_reason
    if not call.record.stream:
        return await send_answer(call, _response(answer, finish))
    events, content_count = stream_events(answer, finish)
    return await run_stream(call, events, content_count)


# The most texts one /v2/embed call takes (Cohere's 400 beyond it).
EMBED_MAX = 96
# Each `embedding_types` value, as the fake makes it of a float vector (one byte a component,
# or one bit for the binary ones, eight to a byte); the answer lists only the types asked.
EMBEDDING_TYPES: dict[str, Any] = {
    "float": lambda v: v,
    "int8": lambda v: [max(-128, min(127, round(x * 127))) for x in v],
    "uint8": lambda v: [max(0, min(255, round((x + 1) * 127.5))) for x in v],
    "ubinary": lambda v: _bits(v),
    "binary": lambda v: [b - 128 for b in _bits(v)],
}


def _bits(vector: list[float]) -> list[int]:
    padded = [x > 0 for x in vector] + [False] * (-len(vector) % 8)
    return [
        sum(bit << (7 - j) for j, bit in enumerate(padded[i : i + 8]))
        for i in range(0, len(padded), 8)
    ]


def embedded(text: str, dims: int, kind: str) -> list[Any]:
    """The `kind` embedding (an `embedding_types` value) the fake answers for `text`."""
    return list(EMBEDDING_TYPES[kind](R.embedding_vector(text, dims)))


async def _embed(call: Call) -> web.StreamResponse:
    texts = call.body.get("texts")
    if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts) or not texts:
        return await send_error(call, 400, "invalid request: texts is required", "bad_request")
    if len(texts) > EMBED_MAX:
        message = f"invalid request: texts must contain at most {EMBED_MAX} items"
        return await send_error(call, 400, message, "bad_request")
    dims = call.body.get("output_dimension", R.DEFAULT_EMBEDDING_DIMS)
    dims = dims if isinstance(dims, int) and not isinstance(dims, bool) and dims > 0 else 8
    kinds = call.body.get("embedding_types", ["float"])
    if not isinstance(kinds, list) or not kinds or not all(k in EMBEDDING_TYPES for k in kinds):
        message = f"invalid request: embedding_types must be some of {', '.join(EMBEDDING_TYPES)}"
        return await send_error(call, 400, message, "bad_request")
    return await send_answer(
        call,
        {
            "id": f"fake-embed-{call.record.seq}",
            "embeddings": {k: [embedded(t, dims, k) for t in texts] for k in kinds},
            "texts": texts,
            "meta": {"billed_units": {"input_tokens": words(*texts)}},
            "response_type": "embeddings_by_type",
        },
    )


async def chat(request: web.Request) -> web.StreamResponse:
    return await handle(request, _chat, dialect=COHERE)


async def embed(request: web.Request) -> web.StreamResponse:
    return await handle(request, _embed, dialect=COHERE)


def add_routes(app: web.Application) -> None:
    app.router.add_post("/v2/chat", chat)
    app.router.add_post("/v2/embed", embed)
