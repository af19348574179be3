"""Vertex AI routes: Gemini and Claude at Google Cloud's paths, behind Google's OAuth2.

- `POST /v1/projects/{project}/locations/{location}/publishers/google/models/{model}:METHOD`,
  METHOD `generateContent`, `streamGenerateContent` (`?alt=sse`) or `predict` (text embeddings:
  `instances[{content}]` → `predictions[{embeddings: {values, statistics}}]`, at most 250
  instances and 20,000 tokens a call, one instance for gemini-embedding-*, as Vertex takes
  them): Gemini's bodies, served by the Gemini fake's producers.
- `POST …/publishers/anthropic/models/{model}:rawPredict` / `:streamRawPredict`: Anthropic's
  Messages without `model` and with `anthropic_version: "vertex-2023-10-16"` in the body.
- `GET /v1beta1/publishers/{publisher}/models`: the publisher's models.
- `POST /token`: the OAuth2 token endpoint (`_google_oauth.GoogleOAuth`).
- Express mode: `POST /v1/publishers/google/models/{model}:generateContent` and
  `:streamGenerateContent` (no project, no location), with an API key instead of a token, in
  `x-goog-api-key` or `?key=` (recorded under the label a test registered it with,
  `GoogleOAuth.register_api_key`, else as it is; scenarios decide which keys are bad: an
  invalid one is Google's 400 `API_KEY_INVALID`, none its 403 `PERMISSION_DENIED`). The model
  list takes an API key too.

Every Vertex route wants `Authorization: Bearer`: a token the fake issued and that has not
expired (recorded under its account's label), or any other token, taken as an access token a
test gave as the key itself (recorded as it is). A missing, expired or revoked issued token is
Google's 401 `UNAUTHENTICATED`. Failures are google.rpc statuses in Vertex's words.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web

from . import _gemini
from . import _responses as R
from ._anthropic import answer_messages, body_problem
from ._dialects import AnthropicDialect, GeminiDialect, JsonObject, bearer
from ._faults import Call, send_answer, send_error
from ._google_oauth import JWT_BEARER_GRANT, TOKEN_PREFIX
from ._openai import handle
from ._runtime import runtime_of
from ._scenario import Scenario

VERTEX_ANTHROPIC_VERSION = "vertex-2023-10-16"
_UNAUTHENTICATED = (
    "Request had invalid authentication credentials. Expected OAuth 2 access token, login "
    "cookie or other valid authentication credential. See "
    "https://developers.google.com/identity/sign-in/web/devconsole-project."
)
_UNREGISTERED = (
    "Method doesn't allow unregistered callers (callers without established identity). Please "
    "use API Key or other form of API consumer identity to call this API."
)
_MESSAGES = {
    403: "Permission 'aiplatform.endpoints.predict' denied on resource (or it may not exist).",
    404: "Publisher Model was not found or your project does not have access to it. Please "
    "ensure you are using a valid model version.",
    429: "Resource exhausted. Please try again later. Please refer to "
    "https://cloud.google.com/vertex-ai/generative-ai/docs/error-code-429 for more details.",
}


def _unauthenticated() -> tuple[int, JsonObject]:
    return 401, {"error": {"code": 401, "message": _UNAUTHENTICATED, "status": "UNAUTHENTICATED"}}


def _caller(request: web.Request) -> str:
    """The key a call is recorded under: an issued token's account label, another token as it
    is; "" for an issued token that is no longer good (refused by `_refusal`)."""
    token = bearer(request)
    if not token.startswith(TOKEN_PREFIX):
        return token
    return runtime_of(request).state.google.label_of(token) or ""


def _refusal(request: web.Request) -> tuple[int, JsonObject] | None:
    if not _caller(request):
        return _unauthenticated()
    return None


class VertexGeminiDialect(GeminiDialect):
    name = "vertex"

    def api_key(self, request: web.Request) -> str:
        return _caller(request)

    def refusal(self, request: web.Request) -> tuple[int, JsonObject] | None:
        return _refusal(request)

    def error_body(self, status: int, message: str | None = None) -> JsonObject:
        return super().error_body(status, message or _MESSAGES.get(status))

    def invalid_key(self) -> tuple[int, JsonObject]:
        return _unauthenticated()

    def error_reply(self, sc: Scenario) -> tuple[int, JsonObject]:
        # Vertex's 429 names no quota in details (the Gemini API's does): the plain status.
        if sc.error_body is None and sc.kind != "invalid_key_native":
            status = sc.effective_status or 400
            return status, self.error_body(status)
        return super().error_reply(sc)

    def model_list(self, models: list[str]) -> JsonObject:
        return {"publisherModels": [{"name": f"publishers/google/models/{m}"} for m in models]}


class VertexClaudeDialect(AnthropicDialect):
    """Claude's own failures are Anthropic's typed errors; the platform's (auth, permission,
    a model missing here, quota) are google.rpc statuses."""

    name = "vertex-anthropic"

    def api_key(self, request: web.Request) -> str:
        return _caller(request)

    def refusal(self, request: web.Request) -> tuple[int, JsonObject] | None:
        return _refusal(request)

    def error_body(self, status: int, message: str | None = None) -> JsonObject:
        if status in _MESSAGES:
            return VERTEX_GEMINI.error_body(status, message)
        return super().error_body(status, message)

    def invalid_key(self) -> tuple[int, JsonObject]:
        return _unauthenticated()

    def model_list(self, models: list[str]) -> JsonObject:
        return {"publisherModels": [{"name": f"publishers/anthropic/models/{m}"} for m in models]}


class VertexExpressDialect(VertexGeminiDialect):
    """Express mode: Vertex's words, the Gemini API's way to take a key."""

    name = "vertex-express"

    def api_key(self, request: web.Request) -> str:
        key = GeminiDialect.api_key(self, request)
        return runtime_of(request).state.google.api_keys.get(key, key)

    def refusal(self, request: web.Request) -> tuple[int, JsonObject] | None:
        if not self.api_key(request):
            return 403, self.error_body(403, _UNREGISTERED)
        return None

    def invalid_key(self) -> tuple[int, JsonObject]:
        return GeminiDialect.invalid_key(self)


VERTEX_GEMINI = VertexGeminiDialect()
VERTEX_CLAUDE = VertexClaudeDialect()
VERTEX_EXPRESS = VertexExpressDialect()


# The most instances a text embeddings :predict call takes (gemini-embedding-*: one), and the
# most tokens (here: words) of them all.
PREDICT_MAX = 250
PREDICT_TOKENS = 20_000


async def _predict(call: Call) -> web.StreamResponse:
    instances = call.body.get("instances")
    if not isinstance(instances, list) or not instances:
        return await send_error(call, 400, "instances: must not be empty", "bad_request")
    most = 1 if call.record.model.startswith("gemini-embedding") else PREDICT_MAX
    if len(instances) > most:
        message = (
            "Unable to submit request because it included too many instances. Reduce the "
            f"number of instances and try again: batchSize must be at most {most} but the "
            f"entered value was {len(instances)}."
        )
        return await send_error(call, 400, message, "bad_request")
    texts = [str(i.get("content", "")) if isinstance(i, dict) else "" for i in instances]
    tokens = sum(R.count_words(text) for text in texts)
    if len(texts) > 1 and tokens > PREDICT_TOKENS:
        message = (
            f"Unable to submit request because the input token count is {tokens} but the model "
            f"supports up to {PREDICT_TOKENS}. Reduce the input token count and try again."
        )
        return await send_error(call, 400, message, "bad_request")
    parameters = call.body.get("parameters") or {}
    dims = _gemini.dimensions(parameters) if isinstance(parameters, dict) else 8
    predictions = []
    for text in texts:
        statistics = {"token_count": R.count_words(text), "truncated": False}
        values = R.embedding_vector(text, dims)
        predictions.append({"embeddings": {"values": values, "statistics": statistics}})
    return await send_answer(call, {"predictions": predictions})


async def _raw_predict(call: Call) -> web.StreamResponse:
    if "model" in call.body:
        return await send_error(call, 400, "model: Extra inputs are not permitted", "bad_request")
    if call.body.get("anthropic_version") != VERTEX_ANTHROPIC_VERSION:
        message = f"anthropic_version: Input should be '{VERTEX_ANTHROPIC_VERSION}'"
        return await send_error(call, 400, message, "bad_request")
    problem = body_problem(call.body, call.record.model)
    if problem is not None:
        return await send_error(call, 400, problem, "bad_request")
    return await answer_messages(call)


_GOOGLE: dict[str, Callable[[Call], Awaitable[web.StreamResponse]]] = {
    "generateContent": _gemini.generate,
    "streamGenerateContent": _gemini.generate,
    "predict": _predict,
}
_ANTHROPIC: dict[str, Callable[[Call], Awaitable[web.StreamResponse]]] = {
    "rawPredict": _raw_predict,
    "streamRawPredict": _raw_predict,
}
_STREAMING = {"streamGenerateContent", "streamRawPredict"}


async def google_model(request: web.Request) -> web.StreamResponse:
    model, _, method = request.match_info["target"].rpartition(":")
    if method not in _GOOGLE or not model:
        raise web.HTTPNotFound()
    stream = method in _STREAMING
    return await handle(request, _GOOGLE[method], dialect=VERTEX_GEMINI, model=model, stream=stream)


async def express_model(request: web.Request) -> web.StreamResponse:
    model, _, method = request.match_info["target"].rpartition(":")
    if method not in ("generateContent", "streamGenerateContent") or not model:
        raise web.HTTPNotFound()  # express mode has no :predict
    produce, streams = _GOOGLE[method], method in _STREAMING
    return await handle(request, produce, dialect=VERTEX_EXPRESS, model=model, stream=streams)


async def anthropic_model(request: web.Request) -> web.StreamResponse:
    model, _, method = request.match_info["target"].rpartition(":")
    if method not in _ANTHROPIC or not model:
        raise web.HTTPNotFound()
    # The stream flag is the body's too (Anthropic's): the method must agree with it.
    stream = method in _STREAMING
    return await handle(
        request, _ANTHROPIC[method], dialect=VERTEX_CLAUDE, model=model, stream=stream
    )


async def publisher_models(request: web.Request) -> web.StreamResponse:
    dialect: VertexGeminiDialect | VertexClaudeDialect = VERTEX_GEMINI
    if request.match_info["publisher"] == "anthropic":
        dialect = VERTEX_CLAUDE
    elif VERTEX_EXPRESS.api_key(request) and "Authorization" not in request.headers:
        dialect = VERTEX_EXPRESS

    async def listed(call: Call) -> web.StreamResponse:
        return await send_answer(call, dialect.model_list(call.state.models))

    return await handle(request, listed, dialect=dialect)


def _json(status: int, body: Any) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(body), content_type="application/json")


async def token_endpoint(request: web.Request) -> web.Response:
    """`POST /token`, form-encoded: `grant_type` (the JWT bearer grant) and `assertion`."""
    oauth = runtime_of(request).state.google
    form = await request.post()
    if form.get("grant_type") != JWT_BEARER_GRANT:
        return _json(
            400, {"error": "unsupported_grant_type", "error_description": "Invalid grant_type"}
        )
    audience = str(request.url.with_query(None))
    return _json(*oauth.grant(str(form.get("assertion", "")), audience))


_MODELS = "/v1/projects/{project}/locations/{location}/publishers"


def add_routes(app: web.Application) -> None:
    app.router.add_post(f"{_MODELS}/google/models/{{target}}", google_model)
    app.router.add_post(f"{_MODELS}/anthropic/models/{{target}}", anthropic_model)
    app.router.add_post("/v1/publishers/google/models/{target}", express_model)
    app.router.add_get("/v1beta1/publishers/{publisher}/models", publisher_models)
    app.router.add_post("/token", token_endpoint)
