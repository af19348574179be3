"""Ollama's native API at the edge: `POST /api/chat`, `/api/generate`, `/api/embed`,
`/api/embeddings`, `/api/show`, `GET /api/tags`, `/api/ps`, `/api/version`, and `GET /`.

Translation only, as the Gemini entrance is: a chat or generate body becomes the same chat
request proto (`clients.codec.ollama`), the router routes it as any chat, and the answer goes
back as Ollama's, or as its stream: newline-delimited JSON (`application/x-ndjson`), which is
Ollama's default (`stream` unset is a stream). The embed bodies go to the Embed RPC. The
caller's key comes as `Authorization: Bearer` (the ollama clients send the headers they are
given). Model management (pull, push, create, copy, delete) is refused: 501.

Errors are Ollama's (`{"error": "message"}`) with the status the edge's one taxonomy gives,
said by the edge's handlers (`_errors`: every failure under `/api/`); a stream commits HTTP 200
as `/v1/chat/completions` does, and a failure after that is a last line holding the error,
which the ollama clients raise as `ResponseError`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import PlainTextResponse, Response

from clients import (
    RouterError,
    chat_completion_to_openai,
    chunk_to_openai,
    embedding_params_from_openai,
    embedding_result_to_openai,
    http_status_for,
)
from clients.codec import ollama  # its names imported as first read (clients/_lazy.py)
from clients.switchboard.v1.router_service_pb2 import ChatStreamResponse, ModelInfo
from router_service.clock import Clock

from . import _openapi_ollama as api
from . import _stream_failure as failure
from ._body import parse_request, read_json_object
from ._errors import EdgeError, in_callers_terms, router_error_body
from ._headers import route_headers
from ._json import JSONBytesResponse, dumps
from ._metadata import forwarded_metadata
from ._routes_chat import ChatCalls, Relay, summary_usage
from ._routes_misc import embed_call, listed_models
from ._state import edge_state

__all__ = ["router"]

logger = logging.getLogger(__name__)

router = APIRouter()

JsonObject = dict[str, Any]

NDJSON = "application/x-ndjson"


async def _answer(request: Request, generate: bool) -> Response:
    started = time.monotonic_ns()
    state = edge_state(request)
    body = await read_json_object(request, state.settings.max_body_bytes)
    model = parse_request(ollama.model_of, body)
    stream = parse_request(ollama.streams, body)
    if ollama.is_load(body, "prompt" if generate else "messages"):
        return await _load(request, body, model, generate)
    params, _ = parse_request(lambda b: ollama.chat_request_from_ollama(b, generate, stream), body)
    calls = ChatCalls.of(request, state)
    with in_callers_terms(lambda param: ollama.ollama_field(param, generate)):
        if stream:
            return await calls.stream(params, _relay(model, generate, started, state.clock), NDJSON)
        response = await calls.chat(params)
    completion = chat_completion_to_openai(response.completion)
    timing = ollama.Timing(time.monotonic_ns() - started)
    answer = ollama.response_to_ollama(completion, model, generate, timing, state.clock.now())
    return JSONBytesResponse(answer, headers=route_headers(response.route))


@router.post("/api/chat", openapi_extra=api.CHAT)
async def chat(request: Request) -> Response:
    return await _answer(request, generate=False)


@router.post("/api/generate", openapi_extra=api.GENERATE)
async def generate(request: Request) -> Response:
    return await _answer(request, generate=True)


async def _load(request: Request, body: JsonObject, model: str, generate: bool) -> Response:
    """Ollama's "load the model" (nothing to answer): the model must be one the key may use."""
    await _model(request, model)
    unload = body.get("keep_alive") in (0, "0", "0s", "0m")
    now = edge_state(request).clock.now()
    return JSONBytesResponse(ollama.load_answer(model, generate, unload, now))


async def _embed(request: Request, legacy: bool) -> Response:
    started = time.monotonic_ns()
    state = edge_state(request)
    body = await read_json_object(request, state.settings.max_body_bytes)
    if ollama.is_load(body, "prompt" if legacy else "input"):
        # Nothing to embed: Ollama loads the model and answers no vectors.
        model = (await _model(request, parse_request(ollama.model_of, body))).id
        return JSONBytesResponse(ollama.embeddings_to_ollama({}, model, legacy, ollama.Timing(0)))
    params = parse_request(
        lambda b: embedding_params_from_openai(ollama.embed_body(b, legacy)), body
    )
    # Ollama's `truncate` (true unless the caller says false): an input past the model's
    # context length is cut, not refused.
    truncates = not legacy and body.get("truncate") is not False
    response = await embed_call(request, params, forwarded_metadata(request), truncates=truncates)
    result = embedding_result_to_openai(response.result)
    timing = ollama.Timing(time.monotonic_ns() - started)
    answer = ollama.embeddings_to_ollama(result, params.model, legacy, timing)
    return JSONBytesResponse(answer, headers=route_headers(response.route))


@router.post("/api/embed", openapi_extra=api.EMBED)
async def embed(request: Request) -> Response:
    return await _embed(request, legacy=False)


@router.post("/api/embeddings", openapi_extra=api.EMBEDDINGS)
async def embeddings(request: Request) -> Response:
    return await _embed(request, legacy=True)


async def _model(request: Request, name: str) -> ModelInfo:
    """The caller's model of that name (404, as Ollama says of a model it has not)."""
    models = await listed_models(request, edge_state(request), forwarded_metadata(request))
    for model in models.models:
        if model.id == name:
            return model
    raise EdgeError(404, f"model '{name}' not found", code="model_not_found", param="model")


@router.get("/api/tags", openapi_extra=api.PLAIN)
async def tags(request: Request) -> Response:
    """The models the caller may use (the router's list, as `/v1/models`'s)."""
    models = await listed_models(request, edge_state(request), forwarded_metadata(request))
    listed = {"models": [ollama.model_to_ollama(model) for model in models.models]}
    headers = {"cache-control": "private", "vary": "authorization"}
    return JSONBytesResponse(listed, headers=headers)


@router.post("/api/show", openapi_extra=api.SHOW)
async def show(request: Request) -> Response:
    state = edge_state(request)
    body = await read_json_object(request, state.settings.max_body_bytes)
    # `name`: what Ollama's older clients send in `model`'s place; neither: a missing model.
    name = body.get("model") or body.get("name")
    named = {} if name is None else {"model": name}
    model = await _model(request, parse_request(ollama.model_of, named))
    return JSONBytesResponse(ollama.show_model(model), headers={"cache-control": "private"})


@router.get("/api/ps", openapi_extra=api.PLAIN)
async def running() -> Response:
    """Nothing is loaded in this process: the deployments run elsewhere, always ready."""
    return JSONBytesResponse({"models": []})


@router.get("/api/version", openapi_extra=api.PLAIN)
async def version() -> Response:
    return JSONBytesResponse({"version": ollama.VERSION})


@router.get("/", include_in_schema=False)
async def root() -> Response:
    """What Ollama answers at its root, and what tools probe to find one."""
    return PlainTextResponse("Ollama is running")


async def management(request: Request) -> Response:
    """A model management call: the models here are the router's configuration."""
    where = request.url.path.removeprefix("/api/").partition("/")[0]
    raise EdgeError(
        501,
        f"/api/{where} is not supported by this gateway: its models are configured on the "
        "router, not pulled, pushed, created, copied or deleted through the Ollama API",
        code="not_implemented",
    )


for _name in ollama.MANAGEMENT:
    _path = "/api/blobs/{digest}" if _name == "blobs" else f"/api/{_name}"
    _methods = {"delete": ["DELETE"], "blobs": ["POST", "HEAD"]}.get(_name, ["POST"])
    router.add_api_route(_path, management, methods=_methods, include_in_schema=False)


def _relay(model: str, generate: bool, started: int, clock: Clock) -> Relay:
    async def relay(
        events: AsyncIterator[ChatStreamResponse], first: ChatStreamResponse
    ) -> AsyncIterator[bytes]:
        """Router stream messages as Ollama's NDJSON objects; a stream the router did not end
        itself (with a summary or an error) ends with an error."""
        first_at = time.monotonic_ns()
        lines = ollama.StreamLines(model, generate)
        message: ChatStreamResponse | None = first
        last = lines.error(failure.TRUNCATED, clock.now())
        try:
            while message is not None:
                kind = message.WhichOneof("event")
                if kind in ("chunk", "chunks"):
                    chunks = [message.chunk] if kind == "chunk" else message.chunks.chunks
                    now = clock.now()
                    out = [o for c in chunks for o in lines.chunk(chunk_to_openai(c), now)]
                    if out:
                        yield b"".join(dumps(o) + b"\n" for o in out)
                elif kind == "error":
                    failure.failed_with(message.error)
                    last = lines.error(message.error.message, clock.now())
                    break
                elif kind == "summary":
                    end = time.monotonic_ns()
                    timing = ollama.Timing(end - started, first_at - started, end - first_at)
                    usage = summary_usage(message.summary.usage)
                    last = lines.finish(usage, timing, clock.now())
                    break
                elif kind == "heartbeat":
                    # An object of no text: an ollama client parses every line as JSON.
                    yield dumps(lines.keepalive(clock.now())) + b"\n"
                message = await anext(events, None)
            else:  # the router did not end the stream itself
                failure.truncated()
        except RouterError as exc:
            failure.failed_by(exc)
            text = str(router_error_body(exc.details)["error"].get("message") or "")
            last = lines.error(text or f"HTTP {http_status_for(exc.details)}", clock.now())
        except Exception as exc:
            # The response is committed: a bug can only be told as the stream's last line.
            logger.exception("relaying an Ollama API stream failed")
            failure.relay_failed(exc)
            last = lines.error(failure.RELAY_FAILED, clock.now())
        yield dumps(last) + b"\n"

    return relay
