"""Azure OpenAI routes: the classic deployment-based API,
`/openai/deployments/{deployment}/chat/completions?api-version=…` and `…/embeddings`, and the
model list `/openai/models` (https://learn.microsoft.com/azure/ai-foundry/openai/reference).

Answers are OpenAI's (the OpenAI fake's producers serve them, the deployment in the path as their
model) with Azure's content-filter annotations: `prompt_filter_results` on a completion and as a
stream's first chunk (`id: ""`, `choices: []`), `content_filter_results` on every choice. A
request without the `api-key` header or the `api-version` query is refused as Azure refuses it;
failures are in Azure's words (`{"error": {"code", "message"}}`, `DeploymentNotFound`, the
content filter's 400 with `innererror.code: ResponsibleAIPolicyViolation`, 429s with
`retry-after-ms`, the 400 for `stream_options` on an api-version before 2024-08-01-preview).

Microsoft Entra ID: `POST /{tenant}/oauth2/v2.0/token` is the token endpoint
(`_entra.EntraOAuth`), and instead of `api-key` a request may carry `Authorization: Bearer` with
a token it issued, recorded under its principal's label. A token it did not issue, or one that
has expired or been revoked, is Azure's 401 for a bad token (`{"statusCode": 401, "message":
"Unauthorized. Access token is missing, invalid, audience is incorrect …"}`). Managed
identities' tokens come from IMDS's `GET /metadata/identity/oauth2/token` and App Service's
`GET /msi/token` (`_managed_identity.ManagedIdentities`); they are Entra's tokens too.
"""

from __future__ import annotations

import math
import re

import orjson
from aiohttp import web

from . import _openai
from . import _responses as R
from ._dialects import Dialect, JsonObject, bearer
from ._error_bodies import default_error_body
from ._faults import Call, send_answer
from ._managed_identity import (
    APP_SERVICE_2017_PATH,
    APP_SERVICE_PATH,
    ARC_PATH,
    CLOUD_SHELL_PATH,
    IMDS_PATH,
)
from ._runtime import runtime_of
from ._scenario import Scenario

_API_VERSION = re.compile(r"\d{4}-\d{2}-\d{2}(-preview)?")
_CATEGORIES = ("hate", "self_harm", "sexual", "violence")
_FILTERED_FOR = "violence"  # the category a filtered answer is filtered for
_MESSAGES = {
    401: "Access denied due to invalid subscription key or wrong API endpoint. Make sure to "
    "provide a valid key for an active subscription and use a correct regional API endpoint "
    "for your resource.",
    403: "Traffic is not from an approved private endpoint.",
    500: "The server had an error while processing your request. Sorry about that!",
    503: "The service is temporarily unable to process your request. Please try again later.",
}
_CODES = {404: "DeploymentNotFound", 500: "InternalServerError", 503: "ServiceUnavailable"}
# Azure OpenAI's 401 for a bearer token it does not take: not its `{"error"}` shape.
BAD_TOKEN = {
    "statusCode": 401,
    "message": "Unauthorized. Access token is missing, invalid, audience is incorrect "
    "(https://cognitiveservices.azure.com), or have expired.",
}
DEPLOYMENT_NOT_FOUND = (
    "The API deployment for this resource does not exist. If you created the deployment within "
    "the last 5 minutes, please wait a moment and try again."
)


def filter_results(filtered: str | None = None) -> JsonObject:
    """A `content_filter_results` object: every category safe but `filtered`."""
    results: JsonObject = {
        c: {"filtered": c == filtered, "severity": "medium" if c == filtered else "safe"}
        for c in _CATEGORIES
    }
    results["jailbreak"] = {"filtered": False, "detected": False}
    return results


def prompt_filter_results() -> list[JsonObject]:
    return [{"prompt_index": 0, "content_filter_results": filter_results()}]


def _annotated(chunk: JsonObject) -> JsonObject:
    """A chunk whose choices carry the output filter's verdict, as Azure's default mode sends."""
    for choice in chunk["choices"]:
        filtered = _FILTERED_FOR if choice.get("finish_reason") == "content_filter" else None
        choice["content_filter_results"] = filter_results(filtered)
    return chunk


class AzureDialect(Dialect):
    name = "azure"

    def api_key(self, request: web.Request) -> str:
        """The `api-key`; else the label of the live Entra token the request bears ("" for
        none, or for a token that is not one)."""
        key = request.headers.get("api-key", "").strip()
        if key or "Authorization" not in request.headers:
            return key
        return runtime_of(request).state.entra.label_of(bearer(request)) or ""

    def refusal(self, request: web.Request) -> tuple[int, JsonObject] | None:
        version = request.query.get("api-version")
        if version is None:
            return 404, {"error": {"code": "404", "message": "Resource not found"}}
        if not _API_VERSION.fullmatch(version):
            return 400, {"error": {"code": "BadRequest", "message": "API version not supported"}}
        if not self.api_key(request):
            if "api-key" not in request.headers and "Authorization" in request.headers:
                return 401, dict(BAD_TOKEN)
            return self.invalid_key()
        return None

    def chat_problem(self, request: web.Request, body: JsonObject) -> str | None:
        # Dated versions compare as their dates: stream_options came with 2024-08-01-preview.
        if "stream_options" in body and request.query.get("api-version", "") < "2024-08-01":
            return "Unrecognized request argument supplied: stream_options"
        return None

    def error_body(self, status: int, message: str | None = None) -> JsonObject:
        if status in (400, 422):  # the model's own validation: OpenAI's error, passed on
            return default_error_body(status, message)
        if status == 404:
            message = message or DEPLOYMENT_NOT_FOUND
        text = message or _MESSAGES.get(status) or f"Fake upstream error: HTTP {status}"
        return {"error": {"code": _CODES.get(status, str(status)), "message": text}}

    def invalid_key(self) -> tuple[int, JsonObject]:
        return 401, self.error_body(401)

    def error_reply(self, sc: Scenario) -> tuple[int, JsonObject]:
        status, body = super().error_reply(sc)
        if status == 429 and sc.error_body is None:
            seconds = math.ceil(_seconds(sc.retry_after) or 1)
            body["error"]["message"] = (
                "Requests to the ChatCompletions_Create Operation under Azure OpenAI API version "
                "2024-10-21 have exceeded token rate limit of your current OpenAI S0 pricing "
                f"tier. Please retry after {seconds} seconds."
            )
        return status, body

    def reply_headers(self, sc: Scenario) -> dict[str, str]:
        seconds = _seconds(sc.retry_after)
        return {} if seconds is None else {"retry-after-ms": str(round(seconds * 1000))}

    def blocked_reply(self, reason: str) -> tuple[int, JsonObject]:
        category = reason.lower() if reason.lower() in _CATEGORIES else _FILTERED_FOR
        message = (
            "The response was filtered due to the prompt triggering Azure OpenAI's content "
            "management policy. Please modify your prompt and retry."
        )
        inner = {
            "code": "ResponsibleAIPolicyViolation",
            "content_filter_result": filter_results(category),
        }
        error = {"message": message, "type": None, "param": "prompt", "code": "content_filter"}
        return 400, {"error": {**error, "status": 400, "innererror": inner}}

    def completion(self, completion: JsonObject) -> JsonObject:
        completion["prompt_filter_results"] = prompt_filter_results()
        for choice in completion["choices"]:
            filtered = _FILTERED_FOR if choice.get("finish_reason") == "content_filter" else None
            choice["content_filter_results"] = filter_results(filtered)
        return completion

    def stream_events(self, answer: R.ChatAnswer, include_usage: bool) -> tuple[list[bytes], int]:
        chunks, content_count = R.stream_chunks(answer, include_usage)
        opening = {"choices": [], "created": 0, "id": "", "model": "", "object": ""}
        opening["prompt_filter_results"] = prompt_filter_results()
        events = [R.sse(opening), *(R.sse(_annotated(c)) for c in chunks), R.DONE_EVENT]
        return events, content_count + 1


def _seconds(retry_after: str | None) -> float | None:
    """The scenario's Retry-After in seconds; None for none, or for an HTTP date."""
    try:
        seconds = float(retry_after) if retry_after is not None else math.nan
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


AZURE = AzureDialect()
_DEPLOYMENT = "/openai/deployments/{deployment}"


async def chat_completions(request: web.Request) -> web.StreamResponse:
    deployment = request.match_info["deployment"]
    return await _openai.handle(request, _openai._chat, dialect=AZURE, model=deployment)


async def embeddings(request: web.Request) -> web.StreamResponse:
    deployment = request.match_info["deployment"]
    return await _openai.handle(request, _openai._embeddings, dialect=AZURE, model=deployment)


async def _models(call: Call) -> web.StreamResponse:
    return await send_answer(call, AZURE.model_list(call.state.models))


async def models(request: web.Request) -> web.StreamResponse:
    return await _openai.handle(request, _models, dialect=AZURE)


async def entra_token(request: web.Request) -> web.Response:
    """`POST /{tenant}/oauth2/v2.0/token`, form-encoded: Entra ID's client credentials flow."""
    entra = runtime_of(request).state.entra
    form = {name: str(value) for name, value in (await request.post()).items()}
    status, body = entra.grant(request.match_info["tenant"], form)
    return web.Response(status=status, body=orjson.dumps(body), content_type="application/json")


def _reply(answer: tuple[int, JsonObject]) -> web.Response:
    status, body = answer
    return web.Response(status=status, body=orjson.dumps(body), content_type="application/json")


async def imds_token(request: web.Request) -> web.Response:
    """`GET /metadata/identity/oauth2/token`: IMDS's token of a managed identity."""
    identities = runtime_of(request).state.managed_identities
    return _reply(identities.imds(request.query, request.headers))


async def app_service_token(request: web.Request) -> web.Response:
    """`GET /msi/token`: App Service's (`IDENTITY_ENDPOINT`) token of a managed identity."""
    identities = runtime_of(request).state.managed_identities
    return _reply(identities.app_service(request.query, request.headers))


async def app_service_2017_token(request: web.Request) -> web.Response:
    """`GET /msi/token/2017`: App Service's older endpoint (`MSI_ENDPOINT`, `MSI_SECRET`)."""
    identities = runtime_of(request).state.managed_identities
    return _reply(identities.app_service_2017(request.query, request.headers))


async def cloud_shell_token(request: web.Request) -> web.Response:
    """`POST /cloudshell/token`: Cloud Shell's `MSI_ENDPOINT`."""
    form = {name: str(value) for name, value in (await request.post()).items()}
    return _reply(runtime_of(request).state.managed_identities.cloud_shell(form, request.headers))


async def arc_token(request: web.Request) -> web.Response:
    """`GET /arc/token`: Azure Arc's agent, its challenge then its token."""
    identities = runtime_of(request).state.managed_identities
    answer, challenge = identities.arc(request.query, request.headers)
    response = _reply(answer)
    if challenge:
        response.headers["WWW-Authenticate"] = challenge
    return response


def add_routes(app: web.Application) -> None:
    app.router.add_post("/{tenant}/oauth2/v2.0/token", entra_token)
    app.router.add_get(IMDS_PATH, imds_token)
    app.router.add_get(APP_SERVICE_PATH, app_service_token)
    app.router.add_get(APP_SERVICE_2017_PATH, app_service_2017_token)
    app.router.add_post(CLOUD_SHELL_PATH, cloud_shell_token)
    app.router.add_get(ARC_PATH, arc_token)
    app.router.add_post(f"{_DEPLOYMENT}/chat/completions", chat_completions)
    app.router.add_post(f"{_DEPLOYMENT}/embeddings", embeddings)
    app.router.add_get("/openai/models", models)
