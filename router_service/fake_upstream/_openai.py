"""OpenAI-compatible route handlers: /v1/chat/completions, /v1/embeddings, /v1/models, and
`handle`, the one request flow every provider format's routes share."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web

from router_service.providers._responses_models import responses_only

from . import _responses as R
from ._audio_answers import speaks
from ._content import openai_problem, said
from ._dialects import OPENAI, Dialect, bearer, model_list_dialect
from ._error_bodies import context_length_body
from ._faults import (
    NO_FAULTS,
    Call,
    note_cancelled,
    pre_response,
    run_stream,
    send_answer,
    send_error,
    send_json,
)
from ._runtime import runtime_of

RESPONSES_ONLY = "This model is only supported in v1/responses and not in v1/chat/completions."

Producer = Callable[[Call], Awaitable[web.StreamResponse]]
api_key = bearer  # OpenAI's key: the bearer token


async def read_body(request: web.Request) -> tuple[dict[str, Any], str | None]:
    """(parsed JSON object, error message). GETs have an empty body and no error."""
    if request.method == "GET":
        return {}, None
    if request.content_type == "multipart/form-data":
        return await _read_form(request), None
    raw = await request.read()
    try:
        body = orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError:
        body = None
    if not isinstance(body, dict):
        return {}, "We could not parse the JSON body of your request. (HINT: send a JSON object.)"
    return body, None


async def _read_form(request: web.Request) -> dict[str, Any]:
    """A form (an upload's) as a body: each field's value (a list for a repeated field),
    and its file as `{"filename", "size", "content_type"}` (the bytes are not kept)."""
    body: dict[str, Any] = {}
    form = await request.post()
    for name in dict.fromkeys(form.keys()):
        values = form.getall(name)
        kept = [
            {"filename": v.filename, "size": len(v.file.read()), "content_type": v.content_type}
            if isinstance(v, web.FileField)
            else v
            for v in values
        ]
        body[name] = kept if len(kept) > 1 or name.endswith("[]") else kept[0]
    return body


async def handle(
    request: web.Request,
    producer: Producer,
    *,
    dialect: Dialect = OPENAI,
    model: str | None = None,
    stream: bool | None = None,
) -> web.StreamResponse:
    """Shared flow: record the call, pick its scenario, apply faults, then produce the answer.

    `dialect` names the provider format (its auth header, its error words); `model` and `stream`
    are given by formats that carry them in the path rather than the body (Gemini)."""
    rt = runtime_of(request)
    body, parse_error = await read_body(request)
    key = dialect.api_key(request)
    if model is None:
        model = str(body.get("model") or "")
    if stream is None:
        stream = body.get("stream") is True
    scenario = rt.state.scenarios.take(key, model, said(body)) if parse_error is None else None
    record = rt.state.begin_call(
        path=request.path,
        key=key,
        model=model,
        stream=stream,
        body=body,
        scenario=scenario,
        headers=dict(request.headers),
    )
    # Which client connection carried it: tests check that connections are reused.
    peer = request.transport.get_extra_info("peername") if request.transport else None
    record.peer = f"{peer[0]}:{peer[1]}" if peer else ""
    record.query = dict(request.query)
    call = Call(request, rt.state, record, scenario or NO_FAULTS, body, dialect)
    task = asyncio.current_task()
    rt.track(task, request.task)
    try:
        if parse_error is not None:
            return await send_error(call, 400, parse_error, "bad_request")
        refused = dialect.refusal(request)
        if refused is not None:
            return await send_json(call, *refused, "refused")
        resp = await pre_response(call, stream)
        return resp if resp is not None else await producer(call)
    except asyncio.CancelledError:
        note_cancelled(call, rt.closing)
        raise
    except ConnectionError:
        # A write hit a closed socket: the client left between our awaits.
        call.mark(client_disconnected=True, outcome="client_disconnected")
        return web.Response()  # aiohttp's own write of this fails quietly
    finally:
        rt.untrack(task)
        rt.state.end_call(record)


async def _chat(call: Call) -> web.StreamResponse:
    body = call.body
    messages = body.get("messages")
    if not call.record.model:
        return await send_error(call, 400, "you must provide a model parameter", "bad_request")
    if not isinstance(messages, list) or not messages:
        return await send_error(call, 400, "'messages' must be a non-empty array", "bad_request")
    problem = openai_problem(body) or call.dialect.chat_problem(call.request, body)
    if responses_only(call.record.model):  # as OpenAI refuses them at /chat/completions
        problem = RESPONSES_ONLY
    if call.scenario.refuses_stream_options and "stream_options" in body:
        problem = "Unrecognized request argument supplied: stream_options"
    if problem is not None:
        return await send_error(call, 400, problem, "bad_request")
    sc = call.scenario
    window, prompt = sc.context_window, R.prompt_tokens(messages)
    if window is not None and prompt > window:  # as OpenAI refuses it: a 400 of its own
        return await send_json(call, 400, context_length_body(window, prompt), "context_length")
    text, pieces = R.split_pieces(R.stop_text(R.answer_text(body, sc), body.get("stop")), sc.chunks)
    n, top = body.get("n"), body.get("top_logprobs")
    answer = R.ChatAnswer(
        completion_id=call.state.next_completion_id(),
        created=int(time.time()),
        model=call.record.model,
        text=text,
        pieces=pieces,
        tool_name=(tool := R.tool_to_call(body, sc)),
        prompt_tokens=prompt,
        tool_arguments=(sc.tool_input or "") if R.is_custom(body, tool) else R.tool_arguments(sc),
        custom=R.is_custom(body, tool),
        finish=sc.finish_reason,
        n=n if isinstance(n, int) and n > 0 else 1,
        top_logprobs=(top if isinstance(top, int) else 0) if body.get("logprobs") is True else None,
        cached_tokens=sc.cached_tokens or 0,
        reasoning=sc.reasoning,
        obfuscation=sc.obfuscation,
        empty_annotations=sc.empty_annotations,
        usage_on_finish=sc.usage_on_finish,
        audio=speaks(body),
    )
    if not call.record.stream:
        completion = R.chat_completion(answer)
        if sc.no_usage:
            del completion["usage"]
        if sc.refusal:
            for choice in completion["choices"]:
                _refused(choice["message"])
        return await send_answer(call, call.dialect.completion(completion))
    options = body.get("stream_options")
    asked = isinstance(options, dict) and bool(options.get("include_usage"))
    include_usage = asked and not sc.no_usage
    if sc.refusal:
        chunks, content_count = R.stream_chunks(answer, include_usage)
        for choice in (c for chunk in chunks for c in chunk["choices"]):
            _refused(choice["delta"])
        events = [*(R.sse(chunk) for chunk in chunks), R.DONE_EVENT]
        return await run_stream(call, events, content_count)
    events, content_count = call.dialect.stream_events(answer, include_usage)
    return await run_stream(call, events, content_count)


def _refused(message: dict[str, Any]) -> None:
    """A message's (or a delta's) text as structured outputs' `refusal` (Scenario.refusal)."""
    if message.get("content"):
        message["refusal"], message["content"] = message["content"], None


async def _embeddings(call: Call) -> web.StreamResponse:
    body = call.body
    if not call.record.model:
        return await send_error(call, 400, "you must provide a model parameter", "bad_request")
    inputs = R.embedding_inputs(body.get("input"))
    if inputs is None:
        msg = "'input' must be a string, an array of strings or an array of token arrays"
        return await send_error(call, 400, msg, "bad_request")
    dims = body.get("dimensions", R.DEFAULT_EMBEDDING_DIMS)
    if not isinstance(dims, int) or isinstance(dims, bool) or not 1 <= dims <= 8192:
        return await send_error(call, 400, "'dimensions' must be a positive integer", "bad_request")
    window = call.scenario.context_window
    longest = max((count for _, count in inputs), default=0)
    if window is not None and longest > window:  # an input past it: OpenAI's 400
        return await send_json(call, 400, context_length_body(window, longest), "context_length")
    encoding = None if call.scenario.floats_only else body.get("encoding_format")
    payload = R.embeddings_response(call.record.model, inputs, dims, encoding)
    if call.scenario.embedding is not None:  # an upstream's own numbers, or its broken base64
        for item in payload["data"]:
            item["embedding"] = call.scenario.embedding
    return await send_answer(call, payload)


async def _models(call: Call) -> web.StreamResponse:
    model_id = call.request.match_info.get("model_id")
    if model_id is not None:
        # Any model is accepted elsewhere, so retrieving any id succeeds too.
        return await send_answer(call, R.model_obj(model_id))
    return await send_answer(call, call.dialect.model_list(call.state.models))


async def chat_completions(request: web.Request) -> web.StreamResponse:
    return await handle(request, _chat)


async def embeddings(request: web.Request) -> web.StreamResponse:
    return await handle(request, _embeddings)


async def list_models(request: web.Request) -> web.StreamResponse:
    return await handle(request, _models, dialect=model_list_dialect(request))


def add_routes(app: web.Application) -> None:
    app.router.add_post("/v1/chat/completions", chat_completions)
    app.router.add_post("/v1/embeddings", embeddings)
    app.router.add_get("/v1/models", list_models)
    app.router.add_get("/v1/models/{model_id}", list_models)
