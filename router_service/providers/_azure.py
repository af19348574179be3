"""The Azure OpenAI adapter: the classic deployment-based API, whose bodies are OpenAI's.

Followed (Azure OpenAI REST API reference, data plane inference, GA 2024-10-21):
- `POST {endpoint}/openai/deployments/{deployment-id}/chat/completions?api-version=…` and
  `…/embeddings?api-version=…`; the key in the `api-key` header; `GET {endpoint}/openai/models`
  lists the models the resource offers (also a cheap probe of a key):
  https://learn.microsoft.com/azure/ai-foundry/openai/reference
- Content filtering: a refused prompt is HTTP 400 with `error.code: "content_filter"` and
  `innererror.code: "ResponsibleAIPolicyViolation"`; a filtered completion ends with
  `finish_reason: "content_filter"`; a stream opens with an annotation chunk (`id: ""`,
  `choices: []`, `prompt_filter_results`) and may carry more (`content_filter_results` of the
  asynchronous filter, again with `id: ""`):
  https://learn.microsoft.com/azure/ai-foundry/openai/concepts/content-filter
- Images and audio: `…/images/generations`, `…/images/edits` (a form), `…/audio/speech`,
  `…/audio/transcriptions` and `…/audio/translations` (forms) of a deployment, OpenAI's bodies;
  there is no moderations endpoint and no image variations (same reference).
- Throttling is a 429 with `retry-after` and `retry-after-ms` (read by `retry_after_seconds`).

`base_url` is the resource's endpoint (https://RESOURCE.openai.azure.com); a deployment's `model`
is the Azure deployment's name, which goes in the path. The newer `/openai/v1` API is OpenAI's
own and needs no adapter (README, Providers).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager
from urllib.parse import quote, urlencode

import httpx
import orjson

from clients import MEDIA_PATHS
from clients.switchboard.v1 import chat_pb2, embeddings_pb2, media_pb2
from router_service._masking import cut_words
from router_service.clock import Clock
from router_service.config import ProviderConfig
from router_service.config._entra import is_entra_key
from router_service.errors import UpstreamFailure
from router_service.outcomes import Outcome, Scope
from router_service.providers._base import (
    ChatCall,
    EmbedCall,
    MediaCall,
    MediaPiece,
    ProviderAdapter,
    media_unsupported,
    websocket_url,
)
from router_service.providers._classify import _Message  # the shared echo rule
from router_service.providers._entra_auth import entra_tokens
from router_service.providers._mapping import model_ids
from router_service.providers._oauth import TokenAdapter
from router_service.providers._openai import OpenAIAdapter
from router_service.providers._transport import JsonObject

# The latest GA version of the data-plane inference API (what `api_version` defaults to).
DEFAULT_API_VERSION = "2024-10-21"
# The first API version whose chat streams take `stream_options` (2024-08-01-preview; GA from
# 2024-10-21): an older one refuses every request that carries it ("Unrecognized request
# argument supplied: stream_options").
STREAM_OPTIONS_SINCE = "2024-08-01"
# Azure's 404 for a deployment name the resource does not have (mistyped, deleted, or created
# minutes ago and not yet live): no caller's request is served by it, whatever it says.
_DEPLOYMENT_NOT_FOUND = "DeploymentNotFound"
_CONTENT_POLICY = "ResponsibleAIPolicyViolation"
# Azure's 400s for the provider's `api_version` (retired, or older than a model takes): "API
# version not supported", "Model {modelName} is enabled only for api versions
# 2024-12-01-preview and later". The operator's configuration, never the caller's request.
_API_VERSION_REFUSED = re.compile(r"api version not supported|enabled only for api versions")
# OpenAI's media endpoints Azure OpenAI does not have.
_NO_MEDIA = frozenset(
    (
        media_pb2.MEDIA_OPERATION_MODERATIONS,
        media_pb2.MEDIA_OPERATION_IMAGE_VARIATIONS,
        media_pb2.MEDIA_OPERATION_RERANK,
    )
)

Chunk = chat_pb2.ChatCompletionChunk


class AzureOpenAIAdapter(OpenAIAdapter):
    """Kind `azure` with `api-key`s. A provider with Entra ID identity keys (service
    principals, workload or managed identities) gets an `AzureEntraAdapter` instead
    (`for_provider`)."""

    kind = "azure"

    @property
    def takes_custom_tools(self) -> bool:
        return self.config.custom_tools is not False

    @property
    def serves_responses_api(self) -> bool:
        return True

    @classmethod
    def for_provider(
        cls, name: str, config: ProviderConfig, http: httpx.AsyncClient, clock: Clock
    ) -> ProviderAdapter:
        if any(is_entra_key(key.key.get_secret_value()) for key in config.keys):
            return AzureEntraAdapter(name, config, http, clock)
        return cls(name, config, http, clock)

    @property
    def api_base(self) -> str:
        return f"{self.config.base_url}/openai"

    @property
    def api_version(self) -> str:
        return self.config.api_version or DEFAULT_API_VERSION

    @property
    def asks_stream_usage(self) -> bool:
        # Dated versions (YYYY-MM-DD, checked at load) compare as their dates do.
        return self.config.stream_usage and self.api_version >= STREAM_OPTIONS_SINCE

    def _endpoint(self, operation: str, upstream_model: str) -> str:
        deployment = quote(upstream_model, safe="")
        query = f"api-version={self.api_version}"
        return f"{self.api_base}/deployments/{deployment}/{operation}?{query}"

    def _responses_url(self, upstream_model: str) -> str:
        """Azure's v1 API (`{endpoint}/openai/v1/responses`, the deployment's name as the
        body's `model`): the classic API's Responses endpoint is a preview."""
        return f"{self.config.base_url}/openai/v1/responses"

    def _headers(self, api_key: str) -> dict[str, str]:
        return {**self.config.headers, "api-key": api_key, "content-type": "application/json"}

    def realtime_target(
        self, upstream_model: str, api_key: str
    ) -> tuple[str, dict[str, str]] | None:
        """The preview endpoint, `<resource>/openai/realtime?api-version=...&deployment=...`
        (wss; `api_version` must be one that has it, e.g. 2025-04-01-preview), with the calls'
        headers (`api-key`, or an Entra token as `Authorization: Bearer`)."""
        query = urlencode({"api-version": self.api_version, "deployment": upstream_model})
        headers = self._headers(api_key)
        headers.pop("content-type", None)
        return f"{websocket_url(self.config.base_url)}/openai/realtime?{query}", headers

    def cannot_media(self, operation: media_pb2.MediaOperation.ValueType) -> UpstreamFailure | None:
        """Images (generations, edits), speech, transcriptions and translations are deployments'
        operations; Azure OpenAI has no moderations endpoint (its content filter runs on every
        call instead), no image variations and no rerank."""
        if operation in _NO_MEDIA:
            return media_unsupported(self.kind, operation)
        return None

    def cannot_stream_media(
        self, operation: media_pb2.MediaOperation.ValueType, events: bool
    ) -> UpstreamFailure | None:
        """Speech's audio streams as any answer's bytes do; the data-plane API documents no
        event streams for images or audio (`stream`, `stream_format: "sse"`)."""
        refusal = self.cannot_media(operation)
        if refusal is None and events:
            path = MEDIA_PATHS.get(operation, "media")
            message = f"azure (API {self.api_version}) streams no events of /{path}"
            error = {"message": message, "type": "invalid_request_error", "param": "stream"}
            return UpstreamFailure(Outcome.UNSUPPORTED_INPUT, message, upstream_error=error)
        return refusal

    def _failure(
        self, status: int, error: JsonObject, headers: Mapping[str, str], sent: bytes = b""
    ) -> UpstreamFailure:
        code = error.get("code")
        inner = error.get("innererror")
        inner_code = inner.get("code") if isinstance(inner, dict) else None
        if code == _DEPLOYMENT_NOT_FOUND:
            # Missing for every key and every caller: the deployment cools down for everyone
            # and the group's next one answers (a 404 would otherwise be the caller's fault).
            return _classified(Outcome.UPSTREAM_ERROR, status, error, Scope.DEPLOYMENT)
        if inner_code == _CONTENT_POLICY:
            return _classified(Outcome.CONTENT_FILTERED, status, error, Scope.NONE)
        message = _Message(str(error.get("message", "")).lower(), sent)
        if status == 400 and message.said_by_upstream(_API_VERSION_REFUSED):
            # Refused for every caller: the deployment cools and the group's next answers.
            return _classified(Outcome.UPSTREAM_ERROR, status, error, Scope.DEPLOYMENT)
        return super()._failure(status, error, headers, sent)

    async def list_models(self, api_key: str, timeout_s: float) -> list[str]:
        url = f"{self.api_base}/models"
        params = {"api-version": self.api_version}
        return model_ids(await self._get_json(url, api_key, timeout_s, params))

    async def _chunks(self, response: httpx.Response) -> AsyncIterator[Chunk]:
        annotations = StreamAnnotations()
        async for chunk in super()._chunks(response):
            relayed = annotations.fold(chunk)
            if relayed is not None:
                yield relayed


class AzureBearer(AzureOpenAIAdapter):
    """Azure OpenAI with an Entra ID access token for a key: `Authorization: Bearer`."""

    def _headers(self, api_key: str) -> dict[str, str]:
        return {
            **self.config.headers,
            "authorization": f"Bearer {api_key}",
            "content-type": "application/json",
        }


class AzureEntraAdapter(TokenAdapter):
    """Kind `azure` with Entra ID identity keys: service principals, workload identities,
    managed identities (any of its keys may still be an `api-key`): an identity's calls carry
    its access token (`_oauth.TokenAdapter`, tokens from `_entra_auth`), an `api-key`'s go as
    they always do."""

    kind = "azure"

    def __init__(
        self, name: str, config: ProviderConfig, http: httpx.AsyncClient, clock: Clock
    ) -> None:
        super().__init__(name, config, http, clock)
        self.wire = AzureBearer(name, config, http, clock)
        self.tokens = entra_tokens(config, http, clock)
        self.keyed = AzureOpenAIAdapter(name, config, http, clock)
        secrets = (key.key.get_secret_value() for key in config.keys)
        self._principals = frozenset(secret for secret in secrets if is_entra_key(secret))

    def asks_stream_usage_of(self, upstream_model: str) -> bool:
        # Its identities' calls and its api-keys' go through two adapters, each learning.
        keyed = self.keyed.asks_stream_usage_of(upstream_model)
        return keyed and super().asks_stream_usage_of(upstream_model)

    def refused_stream_options(self, upstream_model: str) -> bool:
        keyed = self.keyed.refused_stream_options(upstream_model)
        return keyed or super().refused_stream_options(upstream_model)

    async def chat(self, call: ChatCall) -> chat_pb2.ChatCompletion:
        if call.api_key in self._principals:
            return await super().chat(call)
        return await self.keyed.chat(call)

    def stream_chat(
        self, call: ChatCall
    ) -> AbstractAsyncContextManager[AsyncIterator[chat_pb2.ChatCompletionChunk]]:
        if call.api_key in self._principals:
            return super().stream_chat(call)
        return self.keyed.stream_chat(call)

    async def embed(self, call: EmbedCall) -> embeddings_pb2.EmbeddingResult:
        if call.api_key in self._principals:
            return await super().embed(call)
        return await self.keyed.embed(call)

    async def media(self, call: MediaCall) -> media_pb2.MediaResult:
        if call.api_key in self._principals:
            return await super().media(call)
        return await self.keyed.media(call)

    def stream_media(
        self, call: MediaCall
    ) -> AbstractAsyncContextManager[AsyncIterator[MediaPiece]]:
        if call.api_key in self._principals:
            return super().stream_media(call)
        return self.keyed.stream_media(call)

    async def list_models(self, api_key: str, timeout_s: float) -> list[str]:
        if api_key in self._principals:
            return await super().list_models(api_key, timeout_s)
        return await self.keyed.list_models(api_key, timeout_s)


def _classified(outcome: Outcome, status: int, error: JsonObject, scope: Scope) -> UpstreamFailure:
    """The failure an Azure error is, whatever the shared classifier would make of it."""
    message = cut_words(str(error.get("message", "")), 200)
    return UpstreamFailure(
        outcome,
        f"HTTP {status}: {message}" if message else f"HTTP {status}",
        upstream_status=status,
        scope=scope,
        upstream_error=dict(error),
    )


class StreamAnnotations:
    """Azure's annotation chunks, made into what an OpenAI stream is.

    Azure opens a stream with a chunk that is no part of the answer (`id: ""`, `created: 0`,
    `choices: []`, `prompt_filter_results`), and its asynchronous filter sends choices without a
    `delta` and without the stream's id. Relayed as they are, they break OpenAI callers that
    read `chunk.choices[0].delta` on every chunk, or expect one id per stream. So the opening
    annotation's fields go onto the answer's first chunk (nothing is lost: the caller reads
    `prompt_filter_results` there), and a later annotation gets the stream's id, model and time
    and an empty delta."""

    __slots__ = ("_envelope", "_held")

    def __init__(self) -> None:
        self._held: dict[str, object] = {}
        self._envelope: tuple[str, str, int] | None = None  # the answer's id, model, created

    def fold(self, chunk: Chunk) -> Chunk | None:
        """The chunk to relay for `chunk`, or None when it is held for the next one."""
        if chunk.id:
            if self._envelope is None:
                self._envelope = (chunk.id, chunk.model, chunk.created)
            if self._held:
                extra = orjson.loads(chunk.extra_json) if chunk.extra_json else {}
                chunk.extra_json = orjson.dumps({**self._held, **extra}).decode()
                self._held = {}
            return chunk
        if not chunk.choices and not chunk.HasField("usage"):
            if chunk.extra_json:
                self._held.update(orjson.loads(chunk.extra_json))
            return None
        if self._envelope is not None:
            chunk.id, chunk.model, chunk.created = self._envelope
        for choice in chunk.choices:
            choice.delta.SetInParent()
        return chunk
