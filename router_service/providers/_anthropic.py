"""The Anthropic Messages API adapter (https://docs.anthropic.com/en/api/messages).

`base_url` is the versioned API root (https://api.anthropic.com/v1); the key travels in
`x-api-key` with the `anthropic-version` header. Anthropic has no embeddings API.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import httpx

from clients import chat_completion_from_openai
from clients.codec.anthropic import BETA_KEY
from clients.switchboard.v1 import chat_pb2, embeddings_pb2
from router_service.errors import UpstreamFailure
from router_service.providers import _anthropic_map as A
from router_service.providers import _json_tool as J
from router_service.providers._anthropic_stream import StreamMapper
from router_service.providers._base import ChatCall, EmbedCall
from router_service.providers._mapping import model_ids, unsupported
from router_service.providers._media import unsupported_in
from router_service.providers._transport import (
    MAPPING_ERRORS,
    HttpAdapter,
    JsonObject,
    malformed,
    root_error,
)

DEFAULT_API_VERSION = "2023-06-01"


class AnthropicAdapter(HttpAdapter):
    kind = "anthropic"
    # The server tools' beta flags (`anthropic_beta` in the mapped body): Anthropic's API takes
    # them in the `anthropic-beta` header, Vertex in the body.
    betas_in_header = True

    @property
    def server_tools(self) -> frozenset[str]:
        return frozenset({"web_search", "web_fetch"})

    def takes_thinking_blocks(self, upstream_model: str) -> bool:
        return True

    @property
    def refuses_blank_stops(self) -> bool:
        return True  # "stop_sequences: each stop sequence must contain non-whitespace"

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
        betas = None if body is None or not self.betas_in_header else body.get(BETA_KEY)
        if body is None or not isinstance(betas, list):
            return super()._request(method, url, api_key, timeout, body=body, params=params)
        sent = {key: value for key, value in body.items() if key != BETA_KEY}
        request = super()._request(method, url, api_key, timeout, body=sent, params=params)
        flags = [request.headers.get("anthropic-beta", ""), *map(str, betas)]
        request.headers["anthropic-beta"] = ",".join(flag for flag in flags if flag)
        return request

    def _headers(self, api_key: str) -> dict[str, str]:
        return {
            **self.config.headers,
            "x-api-key": api_key,
            "anthropic-version": self.config.api_version or DEFAULT_API_VERSION,
            "content-type": "application/json",
        }

    def _wrapped_error(self, data: JsonObject) -> tuple[int, JsonObject] | None:
        # `{"type": "error", "error": {...}}`: an error body, a stream's `error` event.
        if data.get("type") == "error" or data.get("error") is not None:
            return 200, root_error(data)
        return None

    def _failure(
        self, status: int, error: JsonObject, headers: Mapping[str, str], sent: bytes = b""
    ) -> UpstreamFailure:
        if status < 400:  # inside a 200: the error type says which status it stands for (a
            # stream's `error` event, scoped as every stream's is: `raise_if_failed_event`)
            status = A.STATUS_BY_ERROR_TYPE.get(str(error.get("type")), status)
        return super()._failure(status, error, headers, sent)

    def _endpoint(self, upstream_model: str, *, stream: bool) -> str:
        """Where a Messages request goes (the model travels in the body)."""
        return f"{self.config.base_url}/messages"

    def _body(self, call: ChatCall, *, stream: bool) -> JsonObject:
        body = call.openai_body()
        return A.request_body(
            body,
            call.upstream_model,
            self.config.default_max_tokens,
            stream=stream,
            named=call.named_model,
        )

    def cannot_express(self, params: chat_pb2.ChatParams) -> UpstreamFailure | None:
        return unsupported_in(params, lambda body: A.request_body(body, "", 1, stream=False))

    async def chat(self, call: ChatCall) -> chat_pb2.ChatCompletion:
        url = self._endpoint(call.upstream_model, stream=False)
        data = await self._post_json(
            url, self._body(call, stream=False), call.api_key, call.timeout_s
        )
        try:
            mapped = A.completion(data, call.upstream_model, int(self.clock.now()))
            if J.emulates(call.params, call.named_model):
                mapped = J.as_content(mapped)
            return chat_completion_from_openai(mapped)
        except MAPPING_ERRORS as exc:
            raise malformed("response", exc) from exc

    async def embed(self, call: EmbedCall) -> embeddings_pb2.EmbeddingResult:
        raise unsupported("anthropic offers no embeddings API", "model")

    async def list_models(self, api_key: str, timeout_s: float) -> list[str]:
        # https://docs.anthropic.com/en/api/models-list: {"data": [{"id": ...}], "has_more"}
        data = await self._get_json(
            f"{self.config.base_url}/models", api_key, timeout_s, {"limit": "1000"}
        )
        return model_ids(data)

    @asynccontextmanager
    async def stream_chat(
        self, call: ChatCall
    ) -> AsyncIterator[AsyncIterator[chat_pb2.ChatCompletionChunk]]:
        url = self._endpoint(call.upstream_model, stream=True)
        body = self._body(call, stream=True)
        opened = self._open_stream(url, body, call.api_key, call.timeout_s)
        del body  # encoded into the request: not kept for as long as the stream is open
        async with opened as response:
            mapper = StreamMapper(call.upstream_model, int(self.clock.now()))
            feed = mapper.feed
            if J.emulates(call.params, call.named_model):
                unwrap = J.ChunkUnwrapper()
                feed = lambda event: unwrap.chunks(mapper.feed(event))  # noqa: E731
            yield self._mapped_chunks(response, feed)
