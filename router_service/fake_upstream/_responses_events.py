"""The Responses API's routes (`_responses_api.py` builds the answers) and its event stream, in
the order OpenAI sends it: response.created, response.in_progress, then per output item
output_item.added, its parts' events (content_part.added, output_text.delta…,
output_text.done, content_part.done; a refusal's refusal.delta…, refusal.done; a reasoning
item's summary parts; a function call's arguments, a custom call's input; a hosted tool's call's
own events: _responses_hosted.py), output_item.done;
then response.completed (or response.incomplete) with the usage. Every event says its `type`
twice (the SSE `event:` line and the JSON) and its `sequence_number`."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from . import _responses as R
from ._dialects import Dialect, named_sse
from ._error_bodies import responses_context_body
from ._faults import Call, run_stream, send_answer, send_error, send_json
from ._openai import handle
from ._responses_api import (
    AZURE_RESPONSES,
    RESPONSES,
    UNVERIFIED_ORG,
    UNVERIFIED_ORG_ERROR,
    answer_of,
    fitted,
    logprobs_refused,
    problem,
    response_obj,
    text_logprobs,
    unreadable,
)
from ._responses_api import _Answer as Answer
from ._responses_hosted import item_events

JsonObject = dict[str, Any]


def _text_events(
    item: JsonObject,
    at: JsonObject,
    pieces: list[str],
    cite_after: int | None = None,
    logprobs: list[list[JsonObject]] | None = None,
) -> list[JsonObject]:
    """A message's events; its annotations after its deltas, or after `cite_after` of them (as
    OpenAI may send them, amid the text); each delta with its piece's `logprobs`."""
    part = item["content"][0]
    if part["type"] == "refusal":
        return _refusal_events(part, at, pieces)
    empty = {**part, "text": "", "logprobs": []}
    events = [{"type": "response.content_part.added", **at, "content_index": 0, "part": empty}]
    each = logprobs or [[] for _ in pieces]
    deltas = [
        {"type": "response.output_text.delta", **at, "content_index": 0, "delta": p}
        | {"logprobs": entries}
        for p, entries in zip(pieces, each, strict=True)
    ]
    cites = [
        {"type": "response.output_text.annotation.added", **at, "content_index": 0}
        | {"annotation_index": n, "annotation": annotation}
        for n, annotation in enumerate(part["annotations"])  # a web search's citation
    ]
    split = len(deltas) if cite_after is None else cite_after
    events += [*deltas[:split], *cites, *deltas[split:]]
    done = {"content_index": 0, "text": part["text"], "logprobs": part["logprobs"]}
    events.append({"type": "response.output_text.done", **at, **done})
    events.append({"type": "response.content_part.done", **at, "content_index": 0, "part": part})
    return events


def _refusal_events(part: JsonObject, at: JsonObject, pieces: list[str]) -> list[JsonObject]:
    empty = {**part, "refusal": ""}
    events = [{"type": "response.content_part.added", **at, "content_index": 0, "part": empty}]
    for piece in pieces:
        delta = {"content_index": 0, "delta": piece}
        events.append({"type": "response.refusal.delta", **at, **delta})
    done = {"content_index": 0, "refusal": part["refusal"]}
    events.append({"type": "response.refusal.done", **at, **done})
    events.append({"type": "response.content_part.done", **at, "content_index": 0, "part": part})
    return events


def _summary_events(item: JsonObject, at: JsonObject) -> list[JsonObject]:
    events: list[JsonObject] = []
    for index, part in enumerate(item["summary"]):
        text, summary = part["text"], {"summary_index": index}
        empty = {"type": "summary_text", "text": ""}
        events += [
            {"type": "response.reasoning_summary_part.added", **at, **summary, "part": empty},
            *(
                {"type": "response.reasoning_summary_text.delta", **at, **summary, "delta": piece}
                for piece in R.split_pieces(text, None)[1]
            ),
            {"type": "response.reasoning_summary_text.done", **at, **summary, "text": text},
            {"type": "response.reasoning_summary_part.done", **at, **summary, "part": part},
        ]
    return events


def _item_events(answer: Answer, item: JsonObject, index: int) -> list[JsonObject]:
    at = {"item_id": item["id"], "output_index": index}
    if item["type"] == "message":
        opened = {**item, "status": "in_progress", "content": []}
        said = answer.preamble if item["id"].startswith("msg_pre_") else answer.text
        pieces = R.split_pieces(str(said), None)[1]
        logprobs = text_logprobs(answer, str(said))
        inner = _text_events(item, at, pieces, answer.cite_after, logprobs)
    elif item["type"] == "custom_tool_call":
        opened = {**item, "status": "in_progress", "input": ""}
        done = {"type": "response.custom_tool_call_input.done", **at, "input": item["input"]}
        inner = _input_events(answer, "response.custom_tool_call_input.delta", at, done)
    elif item["type"] == "function_call":
        opened = {**item, "status": "in_progress", "arguments": ""}
        done = {"type": "response.function_call_arguments.done", **at, **_args(item)}
        inner = _input_events(answer, "response.function_call_arguments.delta", at, done)
    elif item["type"] == "reasoning":
        opened = {**item, "summary": []}
        inner = _summary_events(item, at)
    else:  # a hosted tool's call
        opened, inner = item_events(item, at)
    added = {"type": "response.output_item.added", "output_index": index, "item": opened}
    done = {"type": "response.output_item.done", "output_index": index, "item": item}
    return [added, *inner, done]


def _input_events(answer: Answer, kind: str, at: JsonObject, done: JsonObject) -> list[JsonObject]:
    """A call's input events (`kind`: its deltas'): a delta of it whole, then its `done` event
    (which holds it whole too); the done event alone (`input_on_done`); either after a delta of
    empty text (`empty_delta`)."""
    whole = str(done.get("arguments", done.get("input")))
    pieces = ([""] if answer.empty_delta else []) + ([] if answer.input_on_done else [whole])
    return [*({"type": kind, **at, "delta": piece} for piece in pieces), done]


def _args(item: JsonObject) -> JsonObject:
    return {"name": item["name"], "arguments": item["arguments"]}


def stream_events(answer: Answer) -> list[JsonObject]:
    """Every event of a healthy stream, numbered."""
    final = response_obj(answer)
    events: list[JsonObject] = [
        {"type": "response.created", "response": response_obj(answer, "in_progress")},
        {"type": "response.in_progress", "response": response_obj(answer, "in_progress")},
    ]
    for index, item in enumerate(final["output"]):
        events += _item_events(answer, item, index)
    ending = "response.completed" if final["status"] == "completed" else "response.incomplete"
    events.append({"type": ending, "response": final})
    return [{**event, "sequence_number": n} for n, event in enumerate(events)]


async def _respond(call: Call) -> web.StreamResponse:
    if not call.record.model:
        return await send_error(call, 400, "you must provide a model parameter", "bad_request")
    refused = problem(call.body)
    if refused is not None:
        return await send_error(call, 400, refused, "bad_request")
    foreign = unreadable(call.body) or logprobs_refused(call.body, call.record.model)
    if foreign is not None:
        return await send_json(call, 400, {"error": foreign}, "bad_request")
    reasoning = call.body.get("reasoning")
    asks_summary = isinstance(reasoning, dict) and reasoning.get("summary") is not None
    if call.scenario.kind == UNVERIFIED_ORG and asks_summary:
        return await send_json(call, 400, {"error": UNVERIFIED_ORG_ERROR}, "bad_request")
    window = call.scenario.context_window
    if window is not None:  # the model reads what fits its window, or refuses
        body = fitted(call.body, window)
        if body is None:
            return await send_json(call, 400, responses_context_body(), "context_length")
        call.body = body  # the record keeps what was sent
    answer = answer_of(call)
    if not call.record.stream:
        return await send_answer(call, response_obj(answer))
    events = [named_sse(e["type"], e) for e in stream_events(answer)]
    return await run_stream(call, events, len(events) - 1)


def _handler(dialect: Dialect) -> Any:
    async def responses(request: web.Request) -> web.StreamResponse:
        return await handle(request, _respond, dialect=dialect)

    return responses


def add_routes(app: web.Application) -> None:
    app.router.add_post("/v1/responses", _handler(RESPONSES))
    app.router.add_post("/openai/v1/responses", _handler(AZURE_RESPONSES))
