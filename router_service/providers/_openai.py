"""The OpenAI-compatible adapter: OpenAI, Groq, OpenRouter, Together, vLLM, Ollama, LM Studio…
Differences between them are configuration (base URL, headers), not code."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from functools import partial
from typing import Any
from urllib.parse import urlsplit

import httpx

from clients import (
    MEDIA_PATHS,
    UpstreamFormatError,
    chat_completion_from_openai,
    chunk_from_openai,
    embedding_result_from_openai,
)
from clients.switchboard.v1 import chat_pb2, embeddings_pb2, media_pb2
from router_service.clock import Clock
from router_service.config import ProviderConfig
from router_service.errors import UpstreamFailure
from router_service.outcomes import Outcome, Scope
from router_service.providers._base import (
    HOSTED_FAMILY,
    UPSTREAM_ALIVE,
    ChatCall,
    EmbedCall,
    MediaCall,
    MediaPiece,
)
from router_service.providers._embed_mapping import encoded_as_asked, openai_embed_body
from router_service.providers._foreign_fields import taken_fields, without_foreign_fields
from router_service.providers._mapping import model_ids, without_idle_tool_fields
from router_service.providers._media_stream import media_pieces
from router_service.providers._openai_media import media_content, media_result
from router_service.providers._openai_realtime import OpenAIRealtime
from router_service.providers._opened_stream import OpenedResponse
from router_service.providers._reasoning import for_openai
from router_service.providers._reasoning_object import (
    is_google_openai,
    is_openai_api,
    is_openrouter,
)
from router_service.providers._rerank import (
    rerank_body,
    rerank_result,
    rerank_served,
    voyage_rerank,
)
from router_service.providers._responses_answer import completion_from_response, failure_status
from router_service.providers._responses_answer import failure_of as response_failure
from router_service.providers._responses_custom import (
    asks_encrypted_params,
    retried_without_refused,
)
from router_service.providers._responses_logprobs import logprobs_refused
from router_service.providers._responses_map import request_body as responses_body
from router_service.providers._responses_stream import (
    ResponsesStream,
    failure_of_event,
    with_error_headers,
)
from router_service.providers._responses_summaries import SummaryRefusals
from router_service.providers._sse import KEEPALIVE, json_events
from router_service.providers._stream_options import StreamOptionsRefusals, refuses_stream_options
from router_service.providers._tool_indexes import ToolIndexes
from router_service.providers._transport import MAPPING_ERRORS, JsonObject, malformed

# The hosted tools an OpenAI-compatible API runs on its chat completions (`hosted_tools` unset).
_HOSTED_BY_HOST = {"api.groq.com": ["code_interpreter"]}
# Where a refusal of logprobs came from, as the caller's 400 names it (_responses_logprobs.py).
_WHERE = "on its chat completions"


class OpenAIAdapter(OpenAIRealtime):
    stop_cap_default = 4

    @property
    def takes_custom_tools(self) -> bool:
        """OpenAI's own API takes custom tools; an OpenAI-compatible server, as configured."""
        return self._custom_tools

    @property
    def tool_types(self) -> frozenset[str] | None:
        return None  # an OpenAI-compatible server's own tools (Groq's browser_search…) pass

    @property
    def server_tools(self) -> frozenset[str]:
        return self._server_tools

    @property
    def serves_responses_api(self) -> bool:
        return self._openai

    def __init__(
        self, name: str, config: ProviderConfig, http: httpx.AsyncClient, clock: Clock
    ) -> None:
        super().__init__(name, config, http, clock)
        self.refusals = StreamOptionsRefusals(name)
        self.summaries = SummaryRefusals(name)  # of the Responses API's reasoning summaries
        # OpenRouter takes its own `reasoning` object: sent on as it is (the native knob wins).
        self.openrouter = is_openrouter(config.base_url)
        # Google's OpenAI-compatible endpoint takes Google's `extra_body` (thinking_config…).
        self.google = is_google_openai(config.base_url)
        # Which of other servers' message fields this one takes (the rest are taken out).
        self.taken = taken_fields(self.kind, config.base_url, config.message_fields)
        # Asked for every attempt (engine/_sent.py): worked out once, not a URL parse a request.
        self._openai = is_openai_api(config.base_url)  # OpenAI's own, a residency host's too
        custom = config.custom_tools
        self._custom_tools = self._openai if custom is None else custom
        # OpenAI's hosted tools this server runs on its chat API (Groq's code_interpreter).
        host, hosted = urlsplit(config.base_url).hostname or "", config.hosted_tools
        hosted = hosted if hosted is not None else _HOSTED_BY_HOST.get(host, [])
        self._server_tools = frozenset(f"{HOSTED_FAMILY}:{kind}" for kind in hosted)

    def _endpoint(self, operation: str, upstream_model: str) -> str:
        """The URL of `operation` (`chat/completions`, `embeddings`) for a model: OpenAI names
        the model in the body; a kind that names it in the path (Azure's deployments) says so
        here."""
        return f"{self.api_base}/{operation}"

    @property
    def asks_stream_usage(self) -> bool:
        """Whether every stream asks the upstream for its usage (`stream_options`)."""
        return self.config.stream_usage

    def asks_stream_usage_of(self, upstream_model: str) -> bool:
        return self.asks_stream_usage and upstream_model not in self.refusals

    def refused_stream_options(self, upstream_model: str) -> bool:
        return upstream_model in self.refusals

    def _chat_body(
        self, call: ChatCall, *, stream: bool = False, ask_usage: bool = False
    ) -> dict[str, Any]:
        body = call.openai_body()
        body["model"] = call.upstream_model
        for_openai(body, call.named_model, openrouter=self.openrouter, google=self.google)
        without_foreign_fields(body, self.taken, google=self.google, model=call.named_model)
        without_idle_tool_fields(body)
        if stream:
            body["stream"] = True
            if ask_usage:  # the accounting's usage; the caller's shown if asked
                options = body.get("stream_options")
                asked = options if isinstance(options, dict) else {}
                body["stream_options"] = {**asked, "include_usage": True}
        return body

    def raise_if_wrapped(
        self, data: JsonObject, headers: Mapping[str, str], sent: bytes = b""
    ) -> None:
        failed = response_failure(data) if data.get("object") == "response" else None
        if failed is not None:  # a failed Response: the caller's request, or the upstream's
            raise self._response_failed(failed, headers, sent)
        super().raise_if_wrapped(data, headers, sent)

    def _response_failed(
        self, failed: JsonObject, headers: Mapping[str, str], sent: bytes = b""
    ) -> UpstreamFailure:
        """A failed Response's error, classified. The model's failure to generate it (a server
        error: neither the key's nor the caller's) is that one answer's, of no one's scope as
        chat's `finish_reason: error` is (FAILED_FINISH): not cooled for everyone; an
        overloaded server (`server_is_overloaded`) is the deployment's (`_in_answer`); a
        stream's every failure event (llama.cpp's `error:` line too) is scoped alike."""
        failure = self._failure(failure_status(failed), failed, headers, sent)
        self._in_answer(failure)
        return failure

    def _responses_url(self, upstream_model: str) -> str:
        """Where the Responses API lives (`api: responses` deployments)."""
        return f"{self.api_base}/responses"

    def _responses_body(
        self, call: ChatCall, *, stream: bool, summary: bool, reasoning: bool = True
    ) -> dict[str, Any]:
        chat = self._chat_body(call)
        body = responses_body(chat, stream=stream, summary=summary, reasoning=reasoning)
        if call.truncation:  # the upstream leaves out what its model's window cannot take
            body["truncation"] = "auto"
        return body

    async def _respond(self, call: ChatCall) -> chat_pb2.ChatCompletion:
        """One completion on the Responses API."""
        url = self._responses_url(call.upstream_model)

        async def send(summary: bool, reasoning: bool) -> JsonObject:
            body = self._responses_body(call, stream=False, summary=summary, reasoning=reasoning)
            return await self._post_json(url, body, call.api_key, call.timeout_s)

        data = await retried_without_refused(self.summaries, call.params, send)
        failed = response_failure(data)
        if failed is not None:  # a 200 that says the response failed: a wrapped error
            raise self._response_failed(failed, {})
        try:
            return chat_completion_from_openai(completion_from_response(data))
        except MAPPING_ERRORS as exc:
            raise malformed("response", exc) from exc

    async def _response_chunks(
        self, response: httpx.Response, model: str, keep_reasoning: bool
    ) -> AsyncIterator[chat_pb2.ChatCompletionChunk]:
        """A Responses API stream as chat chunks; its failure events classified as errors."""
        events = ResponsesStream(model, int(self.clock.now()), keep_reasoning=keep_reasoning)
        async for _, event in json_events(response, alive=True):
            failed = failure_of_event(event)
            if failed is not None:
                carried = failed.pop("headers", None)  # the upstream's own: not the caller's
                headers = with_error_headers(response.headers, carried)
                raise self._response_failed(failed, headers)
            try:
                chunks = [chunk_from_openai(c) for c in events.feed(event)]
            except MAPPING_ERRORS as exc:
                raise malformed("stream event", exc) from exc
            if not chunks:  # progress (reasoning, a keepalive…): nothing to relay, yet alive
                yield UPSTREAM_ALIVE
            for chunk in chunks:
                yield chunk

    async def chat(self, call: ChatCall) -> chat_pb2.ChatCompletion:
        if call.api == "responses":
            return await self._respond(call)
        url = self._endpoint("chat/completions", call.upstream_model)
        with logprobs_refused(call.params, _WHERE):
            data = await self._post_json(url, self._chat_body(call), call.api_key, call.timeout_s)
        _raise_if_failed(data)
        try:
            return chat_completion_from_openai(data)
        except UpstreamFormatError as exc:
            raise malformed("response", exc) from exc

    async def embed(self, call: EmbedCall) -> embeddings_pb2.EmbeddingResult:
        body = openai_embed_body(call.params)  # without the Gemini entrance's taskType, title
        body["model"] = call.upstream_model
        url = self._endpoint("embeddings", call.upstream_model)
        data = await self._post_json(url, body, call.api_key, call.timeout_s)
        try:
            return encoded_as_asked(embedding_result_from_openai(data), call.params.encoding_format)
        except UpstreamFormatError as exc:
            raise malformed("response", exc) from exc

    def cannot_media(self, operation: media_pb2.MediaOperation.ValueType) -> UpstreamFailure | None:
        # All of them (rerank: OpenAI-format servers' own): the kind cannot tell which server.
        return None

    async def media(self, call: MediaCall) -> media_pb2.MediaResult:
        operation = call.params.operation
        refusal = self.cannot_media(operation)
        if refusal is not None:
            raise refusal
        if operation == media_pb2.MEDIA_OPERATION_RERANK:  # vLLM's, Jina's, Voyage's, Infinity's
            url = self._endpoint(MEDIA_PATHS[operation], call.upstream_model)
            voyage = voyage_rerank(self.config.base_url, call.upstream_model)
            fields = rerank_body(call, voyage=voyage)
            with rerank_served(self.kind):
                answer = await self._post_json(url, fields, call.api_key, call.timeout_s)
            return rerank_result(answer, call)
        content, content_type = media_content(call)
        url = self._endpoint(MEDIA_PATHS[operation], call.upstream_model)
        kind, body, data = await self._post_content(
            url, content, content_type, call.api_key, call.timeout_s
        )
        return media_result(kind, body, data)

    def cannot_stream_media(
        self, operation: media_pb2.MediaOperation.ValueType, events: bool
    ) -> UpstreamFailure | None:
        return self.cannot_media(operation)

    @asynccontextmanager
    async def stream_media(self, call: MediaCall) -> AsyncIterator[AsyncIterator[MediaPiece]]:
        operation = call.params.operation
        content, content_type = media_content(call)
        url = self._endpoint(MEDIA_PATHS[operation], call.upstream_model)
        opened = self._open_content_stream(url, content, content_type, call.api_key, call.timeout_s)
        del content  # encoded into the request: not kept for as long as the stream is open
        async with opened as response:
            yield media_pieces(self, response)

    async def list_models(self, api_key: str, timeout_s: float) -> list[str]:
        data = await self._get_json(f"{self.api_base}/models", api_key, timeout_s)
        return model_ids(data)

    def stream_chat(
        self, call: ChatCall
    ) -> AbstractAsyncContextManager[AsyncIterator[chat_pb2.ChatCompletionChunk]]:
        if call.api == "responses":
            return self._stream_responses(call)
        return OpenedResponse(partial(self._chat_response, call), self._chunks)  # no generator

    @asynccontextmanager
    async def _stream_responses(
        self, call: ChatCall
    ) -> AsyncIterator[AsyncIterator[chat_pb2.ChatCompletionChunk]]:
        async with AsyncExitStack() as stack:
            url = self._responses_url(call.upstream_model)

            async def open_stream(summary: bool, reasoning: bool) -> httpx.Response:
                # The body is encoded here: not kept for as long as the stream is open.
                body = self._responses_body(call, stream=True, summary=summary, reasoning=reasoning)
                opened = self._open_stream(url, body, call.api_key, call.timeout_s)
                return await stack.enter_async_context(opened)

            response = await retried_without_refused(self.summaries, call.params, open_stream)
            keep = asks_encrypted_params(call.params)
            yield self._response_chunks(response, call.upstream_model, keep)

    async def _chat_response(self, call: ChatCall) -> httpx.Response:
        """The stream's response, opened (the caller closes it), asked for its usage unless its
        upstream refuses the `stream_options` the router added (a 400 naming them): then again
        without, not asked again once that call is taken (a caller's own are still sent). The
        body is built here: not kept for as long as the stream is open."""
        url = self._endpoint("chat/completions", call.upstream_model)
        asks = self.asks_stream_usage_of(call.upstream_model)
        try:
            body = self._chat_body(call, stream=True, ask_usage=asks)
            with logprobs_refused(call.params, _WHERE):
                return await self._open_stream(url, body, call.api_key, call.timeout_s).open()
        except UpstreamFailure as failure:
            if not (asks and refuses_stream_options(failure)):
                raise
            status = failure.upstream_status
        body = self._chat_body(call, stream=True)  # as `stream_usage: false` sends it
        theirs = "stream_options" in body  # the caller's own may be what it refused
        opened = self._open_stream(url, body, call.api_key, call.timeout_s)
        del body
        with logprobs_refused(call.params, _WHERE):
            response = await opened.open()
        # Learned once the same call without them is taken: a 400 for another reason that
        # only quotes the request (FastAPI-style validation errors echo it) comes again.
        if not theirs:
            self.refusals.learn(call.upstream_model, status)
        return response

    async def _chunks(
        self, response: httpx.Response
    ) -> AsyncIterator[chat_pb2.ChatCompletionChunk]:
        indexes = ToolIndexes()  # a call's `index`, where the upstream leaves it out
        async for _, data in json_events(response, alive=True):
            if data is KEEPALIVE:
                yield UPSTREAM_ALIVE
                continue
            self.raise_if_failed_event(data, response.headers)
            _raise_if_failed(data)
            indexes.fill(data)
            try:
                chunk = chunk_from_openai(data)
            except UpstreamFormatError as exc:
                raise malformed("stream chunk", exc) from exc
            del data  # neither the event nor its chunk held while the stream waits for the next
            yield chunk
            del chunk


# Finish reasons that say the generation failed, not that it ended, and whose failure it is:
# Mistral's `error` (its finish_reason enum: stop, length, model_length, error, tool_calls),
# vLLM's too ("retryable request-level internal error"), is this one answer's (no one's scope:
# the request goes on elsewhere, the deployment serves the next); DeepSeek's
# `insufficient_system_resource` (the answer interrupted for want of inference capacity) is
# the deployment's, cooled for everyone as a 503 is.
FAILED_FINISH: dict[str, Scope | None] = {"error": Scope.NONE, "insufficient_system_resource": None}


def _raise_if_failed(data: JsonObject) -> None:
    """The attempt's failure (UPSTREAM_ERROR: the group's next answers, or a stream that
    already sent text ends with an error event), not a cut answer handed on as a whole one.
    Read on the upstream's JSON (a dict lookup per choice: a chunk's protobuf fields cost
    several times as much). `choices` that are no list are the codec's to call malformed."""
    choices = data.get("choices")
    for choice in choices if isinstance(choices, list) else ():
        said = choice.get("finish_reason") if isinstance(choice, dict) else None
        if isinstance(said, str) and said in FAILED_FINISH:
            raise failed_finish(said)


def failed_finish(said: str) -> UpstreamFailure:
    """The failure a finish reason of `FAILED_FINISH` stands for."""
    detail = f"the upstream's finish_reason: {said}"
    return UpstreamFailure(Outcome.UPSTREAM_ERROR, detail, scope=FAILED_FINISH[said])
