"""The Vertex AI adapter: Gemini and Claude through Google Cloud, with Google's OAuth2.

Followed (Vertex AI REST reference; Anthropic's "Claude on Vertex AI"):
- `POST {endpoint}/v1/projects/{project}/locations/{location}/publishers/google/models/
  {model}:generateContent` and `:streamGenerateContent?alt=sse`: the Gemini API's bodies and
  stream (https://cloud.google.com/vertex-ai/generative-ai/docs/model-reference/inference).
- `…/publishers/google/models/{model}:predict` for text embeddings: `{"instances": [{"content"}],
  "parameters": {"outputDimensionality"}}` → `{"predictions": [{"embeddings": {"values",
  "statistics": {"token_count"}}}]}`
  (https://cloud.google.com/vertex-ai/generative-ai/docs/model-reference/text-embeddings-api):
  at most 250 texts and 20,000 tokens a call, one text for gemini-embedding-001; more go as
  several calls (`_batched`).
- `…/publishers/anthropic/models/{model}:rawPredict` and `:streamRawPredict`: Anthropic's
  Messages bodies without `model` (it is in the URL) and with `anthropic_version:
  "vertex-2023-10-16"` in the body instead of a header
  (https://docs.anthropic.com/en/api/claude-on-vertex-ai).
- `{endpoint}` is `https://{location}-aiplatform.googleapis.com`, or
  `https://aiplatform.googleapis.com` for `global` (config: `vertex_endpoint`).
- `GET {endpoint}/v1beta1/publishers/{publisher}/models` lists the publisher's models (the
  probe of a key).
- Authentication is `Authorization: Bearer <access token>`: a service account key's exchanged
  token (`_google_auth`, cached by `_oauth.TokenSource`), or an access token given as the key.
- Express mode (a provider whose keys are express mode API keys: `config.vertex_express`):
  `POST https://aiplatform.googleapis.com/v1/publishers/google/models/{model}:generateContent`
  and `:streamGenerateContent?alt=sse`, no project or location in the path, the key in
  `x-goog-api-key` (as Google's own `google-genai` SDK sends it in express mode: a key in the
  URL's `?key=` would be written into every proxy's access log)
  (https://cloud.google.com/vertex-ai/generative-ai/docs/start/express-mode/vertex-ai-express-mode-api-reference).
  Express mode has no `:predict`: embeddings go to the group's next deployment.

Errors are google.rpc statuses, as the Gemini API's (Claude's own failures are Anthropic's
typed errors), classified by the adapters they come from. Two are Vertex's own: a 404
`NOT_FOUND` says the model is not served in this location (or not to this project) — no
request is served by it, so the deployment cools for everyone and the group's next answers; and
a 401 drops the key's cached token, so that the probe of the disabled key exchanges afresh.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from urllib.parse import quote

import httpx

from clients import embedding_result_from_openai
from clients.switchboard.v1 import chat_pb2, embeddings_pb2
from router_service._masking import cut_words
from router_service.clock import Clock
from router_service.config import ProviderConfig
from router_service.errors import UpstreamFailure
from router_service.outcomes import Outcome, Scope
from router_service.providers import _anthropic_map as A
from router_service.providers._anthropic import AnthropicAdapter
from router_service.providers._base import ChatCall, EmbedCall
from router_service.providers._batched import EMBED_CONCURRENCY, batches, in_order
from router_service.providers._embed_mapping import (
    embedding_list,
    embedding_passthrough,
    embedding_texts,
    gemini_hints,
)
from router_service.providers._gemini import GeminiAdapter
from router_service.providers._google_auth import google_tokens
from router_service.providers._mapping import unsupported
from router_service.providers._media import linked_image, unsupported_in
from router_service.providers._oauth import TokenAdapter
from router_service.providers._transport import MAPPING_ERRORS, HttpAdapter, JsonObject, malformed

# Claude on Vertex takes Anthropic's version in the body, and only this one.
VERTEX_ANTHROPIC_VERSION = "vertex-2023-10-16"
_NOT_FOUND = "NOT_FOUND"
# The most input texts one text embeddings `:predict` call takes, and the most input tokens
# (API limits of https://cloud.google.com/vertex-ai/generative-ai/docs/embeddings/get-text-embeddings:
# a 400 for the whole call beyond either).
PREDICT_MAX = 250
PREDICT_TOKENS = 20_000
# A text embeddings `:predict` call's own `parameters` (besides `outputDimensionality`); its
# other fields (`task_type`, `title`) are each instance's.
_PREDICT_PARAMETERS = ("autoTruncate",)


def _instance_hints(hints: Mapping[str, str]) -> dict[str, str]:
    """The Gemini entrance's `taskType` and `title` as a `:predict` instance names them."""
    return {("task_type" if k == "taskType" else k): v for k, v in hints.items()}


def _bearer_headers(config: ProviderConfig, token: str) -> dict[str, str]:
    return {
        **config.headers,
        "authorization": f"Bearer {token}",
        "content-type": "application/json",
    }


def _model_root(config: ProviderConfig, publisher: str, model: str) -> str:
    project = quote(config.project or "", safe="")
    location = quote(config.location or "", safe="")
    return (
        f"{config.base_url}/v1/projects/{project}/locations/{location}"
        f"/publishers/{publisher}/models/{_model_id(model)}"
    )


def predict_batch(model: str) -> int:
    """The most texts one `:predict` call of `model` takes: 250, and one for Gemini's own
    embedding models (gemini-embedding-001: "supports one instance per request"); more are a
    400 for the whole call."""
    name = model.rsplit("/", 1)[-1]
    return 1 if name.startswith("gemini-embedding") else PREDICT_MAX


def most_tokens(text: str) -> int:
    """A text's tokens, counted high (two UTF-8 bytes a token: English words run four or more,
    a CJK character three): a call's texts are kept under PREDICT_TOKENS by it, and too low a
    count is the whole call's 400, too high one call more."""
    return len(text.encode()) // 2 + 1


def _model_id(model: str) -> str:
    return quote(model, safe="@.-_")


def _vertex_failure(status: int, error: JsonObject) -> UpstreamFailure | None:
    """Vertex's own failures, before the shared classification: None when it has no word."""
    if status == 404 and str(error.get("status", "")) == _NOT_FOUND:
        message = cut_words(str(error.get("message", "")), 200)
        return UpstreamFailure(
            Outcome.UPSTREAM_ERROR,
            f"HTTP 404: {message}" if message else "HTTP 404",
            upstream_status=status,
            scope=Scope.DEPLOYMENT,
            upstream_error=dict(error),
        )
    return None


async def _publisher_models(
    adapter: HttpAdapter, publisher: str, token: str, timeout_s: float
) -> list[str]:
    url = f"{adapter.config.base_url}/v1beta1/publishers/{publisher}/models"
    data = await adapter._get_json(url, token, timeout_s, {"pageSize": "1000"})
    models = data.get("publisherModels")
    if not isinstance(models, list):
        raise UpstreamFailure(Outcome.UPSTREAM_ERROR, "malformed model list")
    names = [str(m.get("name", "")) for m in models if isinstance(m, dict)]
    return [name.rsplit("/", 1)[-1] for name in names if name]


class VertexGemini(GeminiAdapter):
    """Gemini's wire format at Vertex's URLs, the key being the bearer token."""

    kind = "vertex"
    takes_block_method = True

    def _headers(self, api_key: str) -> dict[str, str]:
        return _bearer_headers(self.config, api_key)

    def _url(self, model: str, method: str) -> str:
        return f"{_model_root(self.config, 'google', model)}:{method}"

    def _failure(
        self, status: int, error: JsonObject, headers: Mapping[str, str], sent: bytes = b""
    ) -> UpstreamFailure:
        return _vertex_failure(status, error) or super()._failure(status, error, headers, sent)

    async def embed(self, call: EmbedCall) -> embeddings_pb2.EmbeddingResult:
        texts = embedding_texts(call.params)
        # The caller's own fields: `autoTruncate` the call's, the others (`task_type`, `title`)
        # each instance's, never over its text nor over the `dimensions` asked.
        own = {**_instance_hints(gemini_hints(call.params)), **embedding_passthrough(call.params)}
        parameters = {key: own.pop(key) for key in _PREDICT_PARAMETERS if key in own}
        if call.params.HasField("dimensions"):
            parameters["outputDimensionality"] = call.params.dimensions
        extra = {"parameters": parameters} if parameters else {}
        per_call = predict_batch(call.upstream_model)
        bodies = [
            {"instances": [{**own, "content": text} for text in batch], **extra}
            for batch in batches(texts, per_call, weigh=most_tokens, most=PREDICT_TOKENS)
        ]
        url = self._url(call.upstream_model, "predict")
        post = partial(self._post_json, url, api_key=call.api_key, timeout_s=call.timeout_s)
        answers = await in_order(
            [partial(post, body) for body in bodies], EMBED_CONCURRENCY, call.answered
        )
        try:
            embeddings = [p["embeddings"] for data in answers for p in data["predictions"]]
            if len(embeddings) != len(texts):
                raise ValueError(f"{len(embeddings)} embeddings for {len(texts)} inputs")
            vectors = [e["values"] for e in embeddings]
            tokens = sum(int(e.get("statistics", {}).get("token_count", 0)) for e in embeddings)
            encoding = call.params.encoding_format or None
            return embedding_result_from_openai(
                embedding_list(call.upstream_model, vectors, encoding, tokens)
            )
        except MAPPING_ERRORS as exc:
            raise malformed("embeddings", exc) from exc

    async def list_models(self, api_key: str, timeout_s: float) -> list[str]:
        return await _publisher_models(self, "google", api_key, timeout_s)


class VertexExpress(GeminiAdapter):
    """Gemini's wire format at Vertex AI express mode's URLs, the key (an express mode API
    key) in `x-goog-api-key`, as the Gemini API takes its own."""

    kind = "vertex"
    takes_block_method = True

    def _url(self, model: str, method: str) -> str:
        return f"{self.config.base_url}/v1/publishers/google/models/{_model_id(model)}:{method}"

    def _failure(
        self, status: int, error: JsonObject, headers: Mapping[str, str], sent: bytes = b""
    ) -> UpstreamFailure:
        return _vertex_failure(status, error) or super()._failure(status, error, headers, sent)

    async def embed(self, call: EmbedCall) -> embeddings_pb2.EmbeddingResult:
        raise unsupported("Vertex AI express mode offers no embeddings API", "model")

    async def list_models(self, api_key: str, timeout_s: float) -> list[str]:
        return await _publisher_models(self, "google", api_key, timeout_s)


class VertexClaude(AnthropicAdapter):
    """Anthropic's Messages at Vertex's rawPredict URLs, the key being the bearer token. Claude
    on Vertex runs web search (Google's "Claude on Vertex AI" feature list; web fetch is not
    among them), its beta flags in the body (`anthropic_beta`), as given."""

    kind = "vertex"
    betas_in_header = False

    @property
    def server_tools(self) -> frozenset[str]:
        return frozenset({"web_search"})

    def _headers(self, api_key: str) -> dict[str, str]:
        return _bearer_headers(self.config, api_key)

    def _endpoint(self, upstream_model: str, *, stream: bool) -> str:
        method = "streamRawPredict" if stream else "rawPredict"
        return f"{_model_root(self.config, 'anthropic', upstream_model)}:{method}"

    def _body(self, call: ChatCall, *, stream: bool) -> JsonObject:
        body = _unlinked(super()._body(call, stream=stream))
        body.pop("model", None)
        return {"anthropic_version": self.config.api_version or VERTEX_ANTHROPIC_VERSION, **body}

    def cannot_express(self, params: chat_pb2.ChatParams) -> UpstreamFailure | None:
        linked = linked_image(params, _LINKED)
        if linked is not None:
            return linked
        return unsupported_in(
            params, lambda body: _unlinked(A.request_body(body, "", 1, stream=False))
        )

    def _failure(
        self, status: int, error: JsonObject, headers: Mapping[str, str], sent: bytes = b""
    ) -> UpstreamFailure:
        return _vertex_failure(status, error) or super()._failure(status, error, headers, sent)

    async def embed(self, call: EmbedCall) -> embeddings_pb2.EmbeddingResult:
        raise unsupported("Claude on Vertex AI offers no embeddings", "model")

    async def list_models(self, api_key: str, timeout_s: float) -> list[str]:
        return await _publisher_models(self, "anthropic", api_key, timeout_s)


_LINKED = "Claude on Vertex AI takes images and documents as base64 data, not by URL"


def _unlinked(body: JsonObject) -> JsonObject:
    """`body`, unless it holds a document or an image by URL: Vertex AI's Claude refuses URL
    sources with a 400 ("URL sources are not supported", anthropics/anthropic-sdk-typescript
    #1038; images: BerriAI/litellm#18430), so such a request passes the deployment over
    (UNSUPPORTED_INPUT) to one that fetches the link."""
    for i, message in enumerate(body.get("messages") or ()):
        content = message.get("content") if isinstance(message, dict) else None
        for j, block in enumerate(content if isinstance(content, list) else ()):
            inner = block.get("content") if isinstance(block, dict) else None
            for item in [block, *(inner if isinstance(inner, list) else ())]:
                # Not only the router's own blocks: a caller's `anthropic_block` (a block only
                # Claude reads) is sent as written, malformed or not (Claude's 400 says why).
                if not isinstance(item, dict):
                    continue
                source = item.get("source")
                if (
                    item.get("type") in ("document", "image")
                    and isinstance(source, dict)
                    and (source.get("type") == "url")
                ):
                    raise unsupported(_LINKED, f"messages[{i}].content[{j}]")
    return body


class VertexAdapter(TokenAdapter):
    """Kind `vertex`: each call's key becomes a bearer token (`_oauth.TokenAdapter`), then the
    publisher's wire adapter (Gemini's or Claude's format at Vertex's URLs) makes the call. An
    express mode API key is its own token (nothing is exchanged), sent by `VertexExpress`."""

    kind = "vertex"

    def __init__(
        self, name: str, config: ProviderConfig, http: httpx.AsyncClient, clock: Clock
    ) -> None:
        super().__init__(name, config, http, clock)
        wire: type[HttpAdapter] = VertexGemini
        if config.vertex_express:  # express mode API keys: told apart at load
            wire = VertexExpress
        elif config.publisher == "anthropic":
            wire = VertexClaude
        self.wire = wire(name, config, http, clock)
        self.tokens = google_tokens(http, clock, connect_s=config.timeouts.connect_s)
