"""The Amazon Bedrock adapter: the model-agnostic Converse API
(https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_Converse.html).

`base_url` is the runtime endpoint (https://bedrock-runtime.{region}.amazonaws.com). Chat is
`POST /model/{modelId}/converse`, streams `POST /model/{modelId}/converse-stream`, answered as
an AWS event stream (`_eventstream.py`), with the model id URL-encoded (it may be an inference
profile id like `us.anthropic.claude-sonnet-4-5-20250929-v1:0` or an ARN). The model list is
the control plane's `GET /foundation-models`
(https://docs.aws.amazon.com/bedrock/latest/APIReference/API_ListFoundationModels.html), at
the same URL with `bedrock-runtime` made `bedrock` (another endpoint: at `base_url` itself).

A key is a Bedrock API key, sent as `Authorization: Bearer`, or IAM credentials
`ACCESS_KEY_ID:SECRET_ACCESS_KEY[:SESSION_TOKEN]`, with which each request is signed with
SigV4 (`_sigv4.py`) for the provider's `region`. Embeddings are InvokeModel
(`POST /model/{modelId}/invoke`) with the model family's own body (`_bedrock_embed.py`): Titan
embeds one text per call, so a request's texts are sent as concurrent calls (at most
`EMBED_CONCURRENCY` at once, `_batched`), Cohere up to 96 per call; the answers are put back in
order.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from functools import partial
from typing import Any
from urllib.parse import quote

import httpx

from clients import (
    chat_completion_from_openai,
    chunk_from_openai,
    embedding_result_from_openai,
)
from clients.switchboard.v1 import chat_pb2, embeddings_pb2
from router_service.config._aws import region_of
from router_service.errors import UpstreamFailure
from router_service.outcomes import Outcome
from router_service.providers import _bedrock_embed as BE
from router_service.providers import _bedrock_map as BM
from router_service.providers import _json_tool as J
from router_service.providers import _sigv4
from router_service.providers._base import UPSTREAM_ALIVE, ChatCall, EmbedCall
from router_service.providers._batched import EMBED_CONCURRENCY, in_order
from router_service.providers._bedrock_errors import classify
from router_service.providers._bounded_decode import too_large
from router_service.providers._embed_mapping import embedding_list
from router_service.providers._eventstream import (
    EventStreamDecoder,
    EventStreamError,
    EventTooLarge,
    Message,
)
from router_service.providers._http import event_bytes, map_transport_errors
from router_service.providers._in_answer import in_answer
from router_service.providers._lean_transport import body_parts
from router_service.providers._media import linked_image, unsupported_in
from router_service.providers._mistral_ids import with_mistral_tool_ids
from router_service.providers._reasoning_claude import is_bedrock_claude
from router_service.providers._transport import (
    MAPPING_ERRORS,
    HttpAdapter,
    JsonObject,
    malformed,
    parse_object,
    root_error,
)

EVENT_STREAM = "application/vnd.amazon.eventstream"
# Request headers a signature covers besides host and any x-amz-* (a config's own too).
_SIGNED = ("content-type",)


def _converse_body(call: ChatCall) -> JsonObject:
    """The call's Converse body; at a Mistral model, its tool call ids as Mistral takes them
    (Converse hands them to the model as they come: "Tool call id was a but must be a-z, A-Z,
    0-9, with a length of 9.")."""
    body = call.openai_body()
    with_mistral_tool_ids(body, call.named_model)
    return BM.request_body(body, call.named_model)


def _emulates(call: ChatCall) -> bool:
    """Whether the call's `json_schema` went to its Claude as a forced tool (`_json_tool`)."""
    return is_bedrock_claude(call.named_model) and J.emulates(call.params, call.named_model)


class BedrockAdapter(HttpAdapter):
    kind = "bedrock"

    def takes_thinking_blocks(self, upstream_model: str) -> bool:
        return is_bedrock_claude(upstream_model)

    @property
    def region(self) -> str:
        return self.config.region or region_of(self.config.base_url) or "us-east-1"

    def _url(self, model: str, action: str) -> str:
        return f"{self.config.base_url}/model/{quote(model, safe='')}/{action}"

    def _headers(self, api_key: str) -> dict[str, str]:
        headers = {**self.config.headers, "content-type": "application/json"}
        if _sigv4.credentials_of(api_key) is None:
            headers["authorization"] = f"Bearer {api_key}"
        return headers

    def _request(
        self,
        method: str,
        url: str,
        api_key: str,
        timeout: dict[str, float | None],
        *,
        body: Mapping[str, Any] | None = None,
        params: Mapping[str, str] | None = None,
    ) -> httpx.Request:
        """The request, signed with SigV4 when the key is IAM credentials."""
        request = super()._request(method, url, api_key, timeout, body=body, params=params)
        if url.endswith("/converse-stream"):  # what the answer is, as the AWS SDKs ask for it
            request.headers["accept"] = EVENT_STREAM
        credentials = _sigv4.credentials_of(api_key)
        if credentials is not None:
            path, _, _ = request.url.raw_path.partition(b"?")
            signed = {
                name: value
                for name, value in request.headers.items()
                if name in _SIGNED or name.startswith("x-amz-")
            }
            parts = _sigv4.SignedRequestParts(
                method,
                path.decode("ascii"),
                {"host": request.headers["host"], **signed},
                request.content,
                tuple(request.url.params.multi_items()),
            )
            date_time = _sigv4.amz_date(self.clock.now())
            request.headers.update(_sigv4.sign(parts, credentials, self.region, date_time))
        return request

    def _wrapped_error(self, data: JsonObject) -> tuple[int, JsonObject] | None:
        # A Converse answer always has `output`; a 200 body with an error's fields instead is an
        # error (Bedrock says none in a 200, but a proxy before it may).
        if "output" in data or "modelSummaries" in data:
            return None
        if any(field in data for field in ("message", "Message", "__type", "error")):
            return 200, root_error(data)
        return None

    def _failure(
        self, status: int, error: JsonObject, headers: Mapping[str, str], sent: bytes = b""
    ) -> UpstreamFailure:
        return classify(status, error, headers, self.clock, sent=sent)

    def cannot_express(self, params: chat_pb2.ChatParams) -> UpstreamFailure | None:
        linked = linked_image(
            params, "bedrock takes images as base64 data or an s3:// location, not an http(s) link"
        )
        return linked if linked is not None else unsupported_in(params, BM.request_body)

    async def chat(self, call: ChatCall) -> chat_pb2.ChatCompletion:
        body = _converse_body(call)
        url = self._url(call.upstream_model, "converse")
        data = await self._post_json(url, body, call.api_key, call.timeout_s)
        try:
            mapped = BM.completion(data, call.upstream_model, int(self.clock.now()))
            if _emulates(call):
                mapped = J.as_content(mapped)
            return chat_completion_from_openai(mapped)
        except MAPPING_ERRORS as exc:
            raise malformed("response", exc) from exc

    async def embed(self, call: EmbedCall) -> embeddings_pb2.EmbeddingResult:
        plan = BE.plan(call.upstream_model, call.params)
        url = self._url(call.upstream_model, "invoke")
        post = partial(self._post_json_answer, url, api_key=call.api_key, timeout_s=call.timeout_s)
        answers = await in_order(
            [partial(post, body) for body in plan.bodies], EMBED_CONCURRENCY, call.answered
        )
        try:
            vectors = [v for data, _ in answers for v in BE.vectors_of(plan, data)]
            BE.check_counts(plan.bodies, vectors)
            tokens = sum(BE.tokens_of(plan.family, data, headers) for data, headers in answers)
            encoding = call.params.encoding_format or None
            listed = embedding_list(call.upstream_model, vectors, encoding, tokens)
            return embedding_result_from_openai(listed)
        except MAPPING_ERRORS as exc:
            raise malformed("embeddings", exc) from exc

    async def list_models(self, api_key: str, timeout_s: float) -> list[str]:
        base = self.config.base_url
        control = base.replace("://bedrock-runtime", "://bedrock", 1)
        data = await self._get_json(f"{control}/foundation-models", api_key, timeout_s)
        models = data.get("modelSummaries")
        if not isinstance(models, list):
            raise UpstreamFailure(Outcome.UPSTREAM_ERROR, "malformed model list")
        return [str(m["modelId"]) for m in models if isinstance(m, dict) and "modelId" in m]

    @asynccontextmanager
    async def stream_chat(
        self, call: ChatCall
    ) -> AsyncIterator[AsyncIterator[chat_pb2.ChatCompletionChunk]]:
        body = _converse_body(call)
        url = self._url(call.upstream_model, "converse-stream")
        opened = self._open_stream(url, body, call.api_key, call.timeout_s)
        del body  # encoded into the request: not kept for as long as the stream is open
        async with opened as response:
            mapper = BM.StreamMapper(call.upstream_model, int(self.clock.now()))
            unwrap = J.ChunkUnwrapper() if _emulates(call) else None
            yield self._stream_chunks(response, mapper, unwrap)

    async def _stream_chunks(
        self,
        response: httpx.Response,
        mapper: BM.StreamMapper,
        unwrap: J.ChunkUnwrapper | None = None,
    ) -> AsyncIterator[chat_pb2.ChatCompletionChunk]:
        async for message in _messages(response):
            kind = message.header(":message-type") or "event"
            if kind != "event":
                raise self._stream_failure(kind, message, response.headers)
            event = parse_object(message.payload)
            if event is None:
                raise UpstreamFailure(Outcome.UPSTREAM_ERROR, "malformed stream event")
            try:
                mapped = mapper.feed(message.header(":event-type"), event)
                chunks = [
                    chunk_from_openai(c) for c in (unwrap.chunks(mapped) if unwrap else mapped)
                ]
            except MAPPING_ERRORS as exc:
                raise malformed("stream event", exc) from exc
            if not chunks:  # the upstream at work (a reasoning block's signature…)
                yield UPSTREAM_ALIVE
            for chunk in chunks:
                yield chunk

    def _stream_failure(
        self, kind: str, message: Message, headers: Mapping[str, str]
    ) -> UpstreamFailure:
        """An exception message mid-stream (`:exception-type` throttlingException,
        modelStreamErrorException…), classified as the same error before a stream would be;
        an `error` message (`:error-code`, `:error-message`) likewise; scoped as a failure
        inside an answer (`in_answer`: a modelStreamErrorException is that answer's)."""
        if kind == "exception":
            error = parse_object(message.payload) or root_error(None, message.payload)
            error["__type"] = message.header(":exception-type")
        else:
            error = {
                "message": message.header(":error-message"),
                "__type": message.header(":error-code"),
            }
        return in_answer(self._failure(0, error, headers))


async def _messages(response: httpx.Response) -> AsyncIterator[Message]:
    """The event stream's messages; a broken frame is the upstream's failure."""
    decoder = EventStreamDecoder(event_bytes(response))  # as an SSE event is bounded
    try:
        with map_transport_errors(started=True):
            async for chunk in body_parts(response):
                for message in decoder.feed(chunk):
                    yield message
        decoder.close()
    except EventTooLarge:
        raise too_large("stream event", decoder.max_payload) from None
    except EventStreamError as exc:
        raise UpstreamFailure(Outcome.UPSTREAM_ERROR, f"malformed event stream: {exc}") from exc
