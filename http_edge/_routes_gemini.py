"""Google's Gemini API at the edge (v1beta, and v1): `models/{model}:generateContent`,
`:streamGenerateContent`, `:countTokens`, `:embedContent`, `:batchEmbedContents`, and the
model list (`GET /v1beta/models`, `/v1beta/models/{model}`; under v1 `/v1/models` is OpenAI's).

Translation only, as `/v1/messages` is: a generateContent body becomes the same chat request
proto (`clients.codec.gemini`), the router routes it as any chat (any deployment of the
model's group may answer, whatever its kind), and the answer goes back as a
GenerateContentResponse, or a stream of them: server-sent events with `?alt=sse` (what the
google-genai SDK asks for), else one JSON array. The embed methods go to the Embed RPC. The
caller's key comes in `x-goog-api-key` (the SDK's), `?key=`, or `Authorization: Bearer`.

Errors are Gemini's (`{"error": {"code", "message", "status"}}`) with the status the edge's one
taxonomy gives, said by the edge's handlers (`_errors`: every failure on these paths); a
stream commits HTTP 200 as `/v1/chat/completions` does, and a failure after that is a last
chunk holding only the error, which the SDK raises as it raises an error response.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from typing import Any

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from clients import (
    RouterError,
    chat_completion_to_openai,
    chunk_to_openai,
    embedding_params_from_openai,
    embedding_result_to_openai,
    estimate_prompt_tokens,
    http_status_for,
)
from clients.codec import gemini  # its names imported as first read (clients/_lazy.py)
from clients.switchboard.v1.chat_pb2 import ChatParams
from clients.switchboard.v1.router_service_pb2 import ChatStreamResponse, StreamError
from clients.switchboard.v1.routing_pb2 import Outcome

from . import _openapi_gemini as api
from . import _routes_misc
from . import _stream_failure as failure
from ._body import parse_request, read_json_object
from ._errors import (
    EdgeError,
    callers_message,
    google_caller,
    in_callers_terms,
    router_error_body,
)
from ._headers import route_headers
from ._json import JSONBytesResponse, dumps
from ._metadata import forwarded_metadata, with_google_key
from ._routes_chat import ChatCalls, Relay, summary_usage
from ._routes_misc import embed_call, listed_models, require_model
from ._sse import data_event
from ._state import EdgeState, edge_state

__all__ = ["router"]

logger = logging.getLogger(__name__)

router = APIRouter()

JsonObject = dict[str, Any]
Endpoint = Callable[[Request], Awaitable[Response]]


def _model(request: Request) -> str:
    params = request.path_params
    return gemini.model_name(str(params["model"] if "model" in params else params["model_id"]))


async def _body(request: Request, state: EdgeState) -> JsonObject:
    """The body with its fields' lowerCamelCase names (Google takes the proto names too)."""
    body = await read_json_object(request, state.settings.max_body_bytes)
    return parse_request(gemini.camel_case, body)


def _calls(request: Request, state: EdgeState) -> ChatCalls:
    calls = ChatCalls.of(request, state)
    return replace(calls, metadata=with_google_key(request, calls.metadata))


def _thoughts_hidden(params: ChatParams, body: JsonObject) -> ChatParams:
    """`params` telling the router the caller sees no reasoning unless it asked for thoughts
    (`includeThoughts`, Gemini's way): it is taken out router side (OpenRouter's
    `include_reasoning: false`, the router's one way to hide it), so a stream that sent only
    thoughts before it failed fails over as one that sent nothing."""
    if gemini.include_thoughts(body):
        return params
    extra = orjson.loads(params.extra_json) if params.extra_json else {}
    params.extra_json = dumps({**extra, "include_reasoning": False}).decode()
    return params


async def generate_content(request: Request) -> Response:
    state = edge_state(request)
    body, model = await _body(request, state), _model(request)
    params, _ = parse_request(lambda b: gemini.generate_request_from_gemini(model, b, False), body)
    with in_callers_terms(lambda param: gemini.gemini_field(param, body)):
        try:
            response = await _calls(request, state).chat(_thoughts_hidden(params, body))
        except RouterError as exc:
            return JSONBytesResponse(_blocked(exc, model, params))
    thoughts = gemini.include_thoughts(body)
    answer = gemini.response_to_gemini(chat_completion_to_openai(response.completion), thoughts)
    return JSONBytesResponse(answer, headers=route_headers(response.route))


async def stream_generate_content(request: Request) -> Response:
    state = edge_state(request)
    body, model = await _body(request, state), _model(request)
    params, _ = parse_request(lambda b: gemini.generate_request_from_gemini(model, b, True), body)
    params = _thoughts_hidden(params, body)
    calls, thoughts = _calls(request, state), gemini.include_thoughts(body)
    writer, media_type = (
        (_Events(), "text/event-stream")
        if request.query_params.get("alt") == "sse"
        else (_Array(), "application/json")
    )
    with in_callers_terms(lambda param: gemini.gemini_field(param, body)):
        try:
            relay = _relay(model, writer, thoughts, estimate_prompt_tokens(params))
            return await calls.stream(params, relay, media_type)
        except RouterError as exc:
            blocked = _blocked(exc, model, params)
    return Response(writer.items([blocked]) + writer.end(), media_type=media_type)


def _blocked(exc: RouterError, model: str, params: ChatParams) -> JsonObject:
    """A refused prompt as Gemini answers one (HTTP 200, `promptFeedback.blockReason`, no
    candidates): the router's CONTENT_FILTERED, whichever deployment's filter refused it;
    `exc` raised again for any other failure."""
    details = exc.details
    if details.reason != "CONTENT_FILTERED":
        raise exc
    message = str(router_error_body(details)["error"].get("message") or details.message)
    prompt_tokens = estimate_prompt_tokens(params)
    return gemini.blocked_to_gemini(details.upstream_error, message, model, prompt_tokens)


async def count_tokens(request: Request) -> Response:
    """The router's own estimate of the prompt (the one `/v1/messages/count_tokens` gives),
    once the router has taken the caller's key and the model is one it may name."""
    state = edge_state(request)
    body, model = await _body(request, state), _model(request)
    if "generateContentRequest" in body:
        if set(body) != {"generateContentRequest"}:
            message = "give either contents or generateContentRequest, not both"
            raise EdgeError(400, message, code="invalid_argument", param="contents")
        body = body["generateContentRequest"]
        if not isinstance(body, dict):
            message = "generateContentRequest: expected an object"
            raise EdgeError(400, message, code="invalid_argument", param="generateContentRequest")
        body = {k: v for k, v in body.items() if k != "model"}
    params, _ = parse_request(lambda b: gemini.generate_request_from_gemini(model, b, False), body)
    metadata = with_google_key(request, forwarded_metadata(request))
    await require_model(request, model, metadata)
    return JSONBytesResponse({"totalTokens": estimate_prompt_tokens(params)})


async def _embed(request: Request, batch: bool) -> Response:
    state = edge_state(request)
    body, model = await _body(request, state), _model(request)
    params = parse_request(
        lambda b: embedding_params_from_openai(gemini.embeddings_body(model, b, batch)), body
    )
    metadata = with_google_key(request, forwarded_metadata(request))
    response = await embed_call(request, params, metadata)
    answer = gemini.embeddings_to_gemini(embedding_result_to_openai(response.result), batch)
    return JSONBytesResponse(answer, headers=route_headers(response.route))


async def embed_content(request: Request) -> Response:
    return await _embed(request, batch=False)


async def batch_embed_contents(request: Request) -> Response:
    return await _embed(request, batch=True)


async def unknown_method(request: Request) -> Response:
    """A method Gemini may have and this gateway does not (404, as Google says of one)."""
    method = str(request.path_params["model_id"]).rpartition(":")[2]
    message = (
        f"{method!r} is not a method this gateway answers (it answers {', '.join(gemini.METHODS)})."
    )
    raise EdgeError(404, message, code="unknown_url")


async def list_models(request: Request) -> Response:
    """The models the caller may use, a page (`pageSize`, `pageToken`) cut from the router's
    list; under v1, OpenAI's list unless the caller is Google's."""
    if not google_caller(request):
        return _per_caller(await _routes_misc.list_models(request))
    query = dict(request.query_params)  # read first: a bad one is not counted as a call
    ask = parse_request(lambda q: gemini.page_ask(q.get("pageSize"), q.get("pageToken")), query)
    state = edge_state(request)
    metadata = with_google_key(request, forwarded_metadata(request))
    models = await listed_models(request, state, metadata)
    return _per_caller(JSONBytesResponse(ask.page(models.models)))


async def get_model(request: Request) -> Response:
    if not google_caller(request):
        return _per_caller(await _routes_misc.retrieve_model(request))
    state = edge_state(request)
    model = _model(request)
    metadata = with_google_key(request, forwarded_metadata(request))
    for listed in (await listed_models(request, state, metadata)).models:
        if listed.id == model:
            return _per_caller(JSONBytesResponse(gemini.model_to_gemini(listed)))
    message = f"models/{model} is not found, or not a model this key may use."
    raise EdgeError(404, message, code="model_not_found", param="model")


def _per_caller(response: Response) -> Response:
    """A model list is the key's own, and its shape follows `x-goog-api-key` (and
    `anthropic-version`: `_routes_misc`): a shared HTTP cache must neither keep it (a Google
    key is no `Authorization`, which caches already pass over) nor serve one shape for
    another."""
    response.headers["cache-control"] = "private"
    response.headers["vary"] = "authorization, x-goog-api-key, anthropic-version"
    return response


class _Events:
    """A Gemini stream as server-sent events (`?alt=sse`): a `data:` event per response, and
    nothing else. Google's SDKs read no other line: google-genai parses a comment (`: keepalive`)
    as JSON and raises, the JS SDK matches `^data: ` at the start of what it buffered and waits
    forever past anything else (a blank line too). So heartbeats write nothing here."""

    def items(self, responses: list[JsonObject]) -> bytes:
        return b"".join(data_event(response) for response in responses)

    def keepalive(self) -> bytes:
        return b""

    def end(self) -> bytes:
        return b""


class _Array:
    """A Gemini stream as one JSON array of responses (no `alt`), as Gemini sends it: the
    array opens with the first response; whitespace is what keeps the connection alive."""

    def __init__(self) -> None:
        self._opened = False

    def items(self, responses: list[JsonObject]) -> bytes:
        out = []
        for response in responses:
            out.append(b",\r\n" if self._opened else b"[")
            self._opened = True
            out.append(dumps(response))
        return b"".join(out)

    def keepalive(self) -> bytes:
        return b"\n"

    def end(self) -> bytes:
        return b"]" if self._opened else b"[]"


def _relay(model: str, writer: _Events | _Array, thoughts: bool, prompt_tokens: int) -> Relay:
    async def relay(
        events: AsyncIterator[ChatStreamResponse], first: ChatStreamResponse
    ) -> AsyncIterator[bytes]:
        """Router stream messages as GenerateContentResponses; a stream the router did not end
        itself (with a summary or an error) ends with an error."""
        stream = gemini.ResponseChunks(model, thoughts)
        message: ChatStreamResponse | None = first
        last = gemini.gemini_error(500, failure.TRUNCATED)
        try:
            while message is not None:
                kind = message.WhichOneof("event")
                if kind in ("chunk", "chunks"):
                    chunks = [message.chunk] if kind == "chunk" else message.chunks.chunks
                    out = [r for chunk in chunks for r in stream.chunk(chunk_to_openai(chunk))]
                    if out:
                        yield writer.items(out)
                elif kind == "heartbeat":
                    if keepalive := writer.keepalive():
                        yield keepalive
                elif kind == "error":
                    failure.failed_with(message.error)
                    last = _ended_by(message.error, stream, model, prompt_tokens)
                    break
                elif kind == "summary":
                    last = stream.finish(summary_usage(message.summary.usage))
                    break
                message = await anext(events, None)
            else:  # the router did not end the stream itself
                failure.truncated()
        except RouterError as exc:
            failure.failed_by(exc)
            message_text = callers_message(router_error_body(exc.details), "gemini")
            last = gemini.gemini_error(http_status_for(exc.details), message_text)
        except Exception as exc:
            # The response is committed: a bug can only be told as the stream's last chunk.
            logger.exception("relaying a Gemini API stream failed")
            failure.relay_failed(exc)
            last = gemini.gemini_error(500, failure.RELAY_FAILED)
        # After an error, what was held goes before it (`finish` took it into the last one).
        yield writer.items([*stream.pending(), last]) + writer.end()

    return relay


def _ended_by(
    error: StreamError, stream: gemini.ResponseChunks, model: str, prompt_tokens: int
) -> JsonObject:
    """The last response of a stream the router ended with `error`. A content filter's refusal
    before the stream said anything (hidden thoughts committed it, nothing shown) is the one
    response a refused prompt is, as before the commit (`_blocked`); after, the candidate ends
    with SAFETY, as a Gemini stream its filter cuts off ends. Else Google's error."""
    if error.outcome == Outcome.OUTCOME_CONTENT_FILTERED:
        if stream.said:
            return stream.filtered()
        return gemini.blocked_to_gemini(None, error.message, model, prompt_tokens)
    return gemini.gemini_error(failure.status_of(error), error.message)


_METHODS: dict[str, tuple[Endpoint, dict[str, Any]]] = {
    "generateContent": (generate_content, api.GENERATE_CONTENT),
    "streamGenerateContent": (stream_generate_content, api.STREAM_GENERATE_CONTENT),
    "countTokens": (count_tokens, api.COUNT_TOKENS),
    "embedContent": (embed_content, api.EMBED_CONTENT),
    "batchEmbedContents": (batch_embed_contents, api.BATCH_EMBED_CONTENTS),
}
# Each version's routes, in the order they are matched: (HTTP method, path, endpoint, OpenAPI
# operation). Under v1, `GET /v1/models…` is OpenAI's too: Gemini's routes come first and hand
# a caller who is not Google's to OpenAI's (`google_caller`); OpenAPI describes OpenAI's there.
_ROUTES: list[tuple[str, str, Endpoint, dict[str, Any] | None]] = [
    *(("POST", f"/models/{{model:path}}:{name}", *method) for name, method in _METHODS.items()),
    ("POST", "/models/{model_id:path}", unknown_method, None),  # what no method matched
    ("GET", "/models", list_models, api.LIST_MODELS),
    ("GET", "/models/{model_id:path}", get_model, api.GET_MODEL),
]
for _version in ("v1beta", "v1"):
    for _method, _path, _endpoint, _operation in _ROUTES:
        router.add_api_route(
            f"/{_version}{_path}",
            _endpoint,
            methods=[_method],
            openapi_extra=_operation,
            include_in_schema=_operation is not None and (_version, _method) != ("v1", "GET"),
            name=f"gemini_{_version}_{_endpoint.__name__}",
        )
