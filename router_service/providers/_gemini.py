"""The Gemini API adapter (Generative Language API, https://ai.google.dev/api).

`base_url` is the versioned root (https://generativelanguage.googleapis.com/v1beta); the key
travels in `x-goog-api-key`. Chat is `models/{model}:generateContent`, streams are
`:streamGenerateContent?alt=sse` (one GenerateContentResponse per SSE event, no sentinel), and
embeddings are `:embedContent` (one text) or `:batchEmbedContents` (several, at most 100 a
call: more go as several calls, `_batched`; https://ai.google.dev/api/embeddings). Errors are
google.rpc statuses (`{"error": {"code", "message", "status", "details"}}`), classified as they
are.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from functools import partial
from typing import Any, ClassVar

import orjson

from clients import (
    chat_completion_from_openai,
    embedding_result_from_openai,
)
from clients.codec.gemini import GEMINI_ONLY
from clients.switchboard.v1 import chat_pb2, embeddings_pb2
from router_service.errors import UpstreamFailure
from router_service.outcomes import Outcome
from router_service.providers import _gemini_answer as GA
from router_service.providers import _gemini_map as G
from router_service.providers._base import ChatCall, EmbedCall
from router_service.providers._batched import EMBED_CONCURRENCY, batches, in_order
from router_service.providers._embed_mapping import (
    embedding_list,
    embedding_passthrough,
    embedding_texts,
    gemini_hints,
)
from router_service.providers._gemini_config import vertex_only
from router_service.providers._media import unsupported_in
from router_service.providers._reasoning_object import hides_reasoning
from router_service.providers._responses_logprobs import logprobs_refused
from router_service.providers._transport import MAPPING_ERRORS, HttpAdapter, malformed

# The most requests one batchEmbedContents call takes (a 400 for the whole call beyond it).
BATCH_EMBED_MAX = 100


def _model_path(model: str) -> str:
    return model if model.startswith(("models/", "tunedModels/")) else f"models/{model}"


class GeminiAdapter(HttpAdapter):
    kind = "gemini"
    stop_cap_default = 5
    # Whether a safety setting's `method` (HarmBlockMethod) is taken: Vertex AI's alone.
    takes_block_method: ClassVar[bool] = False

    def _headers(self, api_key: str) -> dict[str, str]:
        return {
            **self.config.headers,
            "x-goog-api-key": api_key,
            "content-type": "application/json",
        }

    def _url(self, model: str, method: str) -> str:
        return f"{self.config.base_url}/{_model_path(model)}:{method}"

    def cannot_express(self, params: chat_pb2.ChatParams) -> UpstreamFailure | None:
        found = unsupported_in(params, self._request_body)
        if found is None and not self.takes_block_method and GEMINI_ONLY in params.extra_json:
            extra = orjson.loads(params.extra_json)  # an object: checked at the entrance
            found = vertex_only(extra.get(GEMINI_ONLY))
        return found

    def _request_body(self, body: Mapping[str, Any], model: str = "") -> dict[str, Any]:
        return G.request_body(body, model, vertex=self.takes_block_method)

    async def chat(self, call: ChatCall) -> chat_pb2.ChatCompletion:
        body = self._request_body(call.openai_body(), call.named_model)
        url = self._url(call.upstream_model, "generateContent")
        with logprobs_refused(call.params, "at Gemini"):
            data = await self._post_json(url, body, call.api_key, call.timeout_s)
        try:
            mapped = GA.completion(data, call.upstream_model, int(self.clock.now()))
            return chat_completion_from_openai(mapped)
        except MAPPING_ERRORS as exc:
            raise malformed("response", exc) from exc

    async def embed(self, call: EmbedCall) -> embeddings_pb2.EmbeddingResult:
        texts = embedding_texts(call.params)
        model = _model_path(call.upstream_model)
        # The caller's own fields (`taskType`, `title`…) go into each request as sent, but not
        # over the input nor over the `dimensions` asked.
        extra: dict[str, Any] = {**gemini_hints(call.params), **embedding_passthrough(call.params)}
        if call.params.HasField("dimensions"):
            extra["outputDimensionality"] = call.params.dimensions
        if len(texts) == 1:
            body: dict[str, Any] = {**extra, "content": {"parts": [{"text": texts[0]}]}}
            url = self._url(call.upstream_model, "embedContent")
            bodies = [body]
        else:
            requests = [
                {**extra, "model": model, "content": {"parts": [{"text": t}]}} for t in texts
            ]
            bodies = [{"requests": batch} for batch in batches(requests, BATCH_EMBED_MAX)]
            url = self._url(call.upstream_model, "batchEmbedContents")
        post = partial(self._post_json, url, api_key=call.api_key, timeout_s=call.timeout_s)
        answers = await in_order(
            [partial(post, body) for body in bodies], EMBED_CONCURRENCY, call.answered
        )
        try:
            items = [
                item
                for data in answers
                for item in (data["embeddings"] if "embeddings" in data else [data["embedding"]])
            ]
            if len(items) != len(texts):
                raise ValueError(f"{len(items)} embeddings for {len(texts)} inputs")
            vectors = [item["values"] for item in items]
            encoding = call.params.encoding_format or None
            return embedding_result_from_openai(
                embedding_list(call.upstream_model, vectors, encoding, 0)
            )
        except MAPPING_ERRORS as exc:
            raise malformed("embeddings", exc) from exc

    async def list_models(self, api_key: str, timeout_s: float) -> list[str]:
        # https://ai.google.dev/api/models#method:-models.list: {"models": [{"name": "models/…"}]}
        url = f"{self.config.base_url}/models"
        data = await self._get_json(url, api_key, timeout_s, {"pageSize": "1000"})
        models = data.get("models")
        if not isinstance(models, list):
            raise UpstreamFailure(Outcome.UPSTREAM_ERROR, "malformed model list")
        names = [str(m.get("name", "")) for m in models if isinstance(m, dict)]
        return [name.removeprefix("models/") for name in names if name]

    @asynccontextmanager
    async def stream_chat(
        self, call: ChatCall
    ) -> AsyncIterator[AsyncIterator[chat_pb2.ChatCompletionChunk]]:
        body = self._request_body(call.openai_body(), call.named_model)
        url = self._url(call.upstream_model, "streamGenerateContent") + "?alt=sse"
        opened = self._open_stream(url, body, call.api_key, call.timeout_s)
        del body  # encoded into the request: not kept for as long as the stream is open
        async with AsyncExitStack() as stack:
            with logprobs_refused(call.params, "at Gemini"):
                response = await stack.enter_async_context(opened)
            shown = not hides_reasoning(call.params)  # hidden thoughts reached no caller
            mapper = GA.StreamMapper(
                call.upstream_model, int(self.clock.now()), thoughts_shown=shown
            )
            yield self._mapped_chunks(response, mapper.feed)
