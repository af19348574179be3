"""The Cohere adapter: Chat API v2, Embed API v2 and Rerank API v2
(https://docs.cohere.com/reference/chat).

`base_url` is the unversioned root (https://api.cohere.com): chat is `/v2/chat`, embeddings
`/v2/embed` (https://docs.cohere.com/reference/embed: at most 96 texts a call, more go as several
calls, `_batched`), rerank `/v2/rerank`
(https://docs.cohere.com/reference/rerank, `_rerank`) and the model list `/v1/models`
(https://docs.cohere.com/reference/list-models). The key is a bearer token. Errors are the HTTP
status with `{"message": ...}` (an invalid key: 401 "invalid api token").
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

from clients import (
    chat_completion_from_openai,
    embedding_result_from_openai,
)
from clients.switchboard.v1 import chat_pb2, embeddings_pb2, media_pb2
from router_service.errors import UpstreamFailure
from router_service.outcomes import Outcome
from router_service.providers import _cohere_map as C
from router_service.providers._base import ChatCall, EmbedCall, MediaCall, media_unsupported
from router_service.providers._batched import EMBED_CONCURRENCY, batches, in_order
from router_service.providers._embed_mapping import (
    COHERE_TYPES,
    embedding_list,
    embedding_passthrough,
    embedding_texts,
    vector_type,
)
from router_service.providers._media import unsupported_in
from router_service.providers._rerank import rerank_body, rerank_result
from router_service.providers._transport import MAPPING_ERRORS, HttpAdapter, malformed

# The most texts one /v2/embed call takes (a 400 for the whole call beyond it).
EMBED_MAX = 96


class CohereAdapter(HttpAdapter):
    kind = "cohere"
    stop_cap_default = 5

    def _headers(self, api_key: str) -> dict[str, str]:
        return {
            **self.config.headers,
            "authorization": f"Bearer {api_key}",
            "content-type": "application/json",
        }

    def cannot_express(self, params: chat_pb2.ChatParams) -> UpstreamFailure | None:
        return unsupported_in(params, lambda body: C.request_body(body, "", stream=False))

    async def chat(self, call: ChatCall) -> chat_pb2.ChatCompletion:
        body = C.request_body(call.openai_body(), call.upstream_model, stream=False)
        url = f"{self.config.base_url}/v2/chat"
        data = await self._post_json(url, body, call.api_key, call.timeout_s)
        try:
            mapped = C.completion(data, call.upstream_model, int(self.clock.now()))
            return chat_completion_from_openai(mapped)
        except MAPPING_ERRORS as exc:
            raise malformed("response", exc) from exc

    async def embed(self, call: EmbedCall) -> embeddings_pb2.EmbeddingResult:
        texts = embedding_texts(call.params)
        own = embedding_passthrough(call.params)  # input_type, truncate…
        kind = vector_type(own, "embedding_types", COHERE_TYPES)
        fields: dict[str, Any] = {"input_type": "search_document", **own, "embedding_types": [kind]}
        if call.params.HasField("dimensions"):
            fields["output_dimension"] = call.params.dimensions
        bodies = [
            {"model": call.upstream_model, **fields, "texts": batch}
            for batch in batches(texts, EMBED_MAX)
        ]
        url = f"{self.config.base_url}/v2/embed"
        post = partial(self._post_json, url, api_key=call.api_key, timeout_s=call.timeout_s)
        answers = await in_order(
            [partial(post, body) for body in bodies], EMBED_CONCURRENCY, call.answered
        )
        try:
            vectors = [v for data in answers for v in data["embeddings"][kind]]
            if len(vectors) != len(texts):
                raise ValueError(f"{len(vectors)} embeddings for {len(texts)} inputs")
            tokens = sum(_billed_input(data) for data in answers)
            encoding = call.params.encoding_format or None
            listed = embedding_list(call.upstream_model, vectors, encoding, tokens)
            return embedding_result_from_openai(listed)
        except MAPPING_ERRORS as exc:
            raise malformed("embeddings", exc) from exc

    def cannot_media(self, operation: media_pb2.MediaOperation.ValueType) -> UpstreamFailure | None:
        """Rerank is Cohere's (`/v2/rerank`); the other media operations are not."""
        if operation == media_pb2.MEDIA_OPERATION_RERANK:
            return None
        return media_unsupported(self.kind, operation)

    async def media(self, call: MediaCall) -> media_pb2.MediaResult:
        refusal = self.cannot_media(call.params.operation)
        if refusal is not None:
            raise refusal
        url = f"{self.config.base_url}/v2/rerank"
        body = rerank_body(call, cohere=True)
        return rerank_result(await self._post_json(url, body, call.api_key, call.timeout_s), call)

    async def list_models(self, api_key: str, timeout_s: float) -> list[str]:
        url = f"{self.config.base_url}/v1/models"
        data = await self._get_json(url, api_key, timeout_s, {"page_size": "1000"})
        models = data.get("models")
        if not isinstance(models, list):
            raise UpstreamFailure(Outcome.UPSTREAM_ERROR, "malformed model list")
        return [str(m["name"]) for m in models if isinstance(m, dict) and "name" in m]

    @asynccontextmanager
    async def stream_chat(
        self, call: ChatCall
    ) -> AsyncIterator[AsyncIterator[chat_pb2.ChatCompletionChunk]]:
        body = C.request_body(call.openai_body(), call.upstream_model, stream=True)
        url = f"{self.config.base_url}/v2/chat"
        opened = self._open_stream(url, body, call.api_key, call.timeout_s)
        del body  # encoded into the request: not kept for as long as the stream is open
        async with opened as response:
            mapper = C.StreamMapper(call.upstream_model, int(self.clock.now()))
            yield self._mapped_chunks(response, mapper.feed)


def _billed_input(data: Mapping[str, Any]) -> int:
    billed = (data.get("meta") or {}).get("billed_units") or {}
    return int(billed.get("input_tokens") or 0)
