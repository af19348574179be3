"""`/v1/models`, `/v1/embeddings`, and the probes `/healthz` and `/readyz`."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from clients import (
    embedding_params_from_openai,
    embedding_result_to_openai,
    model_list_to_openai,
)
from clients.codec import anthropic
from clients.switchboard.v1.embeddings_pb2 import EmbeddingParams
from clients.switchboard.v1.router_service_pb2 import (
    EmbedRequest,
    EmbedResponse,
    ListModelsRequest,
    ListModelsResponse,
)
from clients.switchboard.v1.routing_pb2 import TRUNCATION_AUTO

from ._body import parse_request, read_json_object
from ._disconnect import unless_disconnected
from ._errors import EdgeError, anthropic_caller, error_body
from ._headers import route_headers
from ._json import JSONBytesResponse
from ._metadata import Metadata, forwarded_metadata, routing_options, with_api_key
from ._openapi import EMBEDDINGS, ERRORS, MODEL_ID_PARAM
from ._state import EdgeState, edge_state

__all__ = ["embed_call", "listed_models", "require_model", "router"]

router = APIRouter()

READY_TIMEOUT_S = 1.0
OPEN_MODE_WARNING = (
    "The router runs with auth.open: true: anyone who reaches it can spend the provider keys."
)


@router.post("/v1/embeddings", openapi_extra=EMBEDDINGS)
async def embeddings(request: Request) -> Response:
    state = edge_state(request)
    body = await read_json_object(request, state.settings.max_body_bytes)
    params = parse_request(embedding_params_from_openai, body)
    response = await embed_call(request, params, forwarded_metadata(request))
    return JSONBytesResponse(
        embedding_result_to_openai(response.result), headers=route_headers(response.route)
    )


async def embed_call(
    request: Request, params: EmbeddingParams, metadata: Metadata, *, truncates: bool = False
) -> EmbedResponse:
    """The router's Embed call for `params` (every entrance's), unless the caller leaves first;
    `truncates`: an input past a model's context window is cut (`truncation: auto`)."""
    state = edge_state(request)
    routing = routing_options(request)
    if truncates:
        routing.truncation = TRUNCATION_AUTO
    call = EmbedRequest(params=params, routing=routing)
    embed = state.router().embed(call, timeout=state.settings.request_timeout_s, metadata=metadata)
    return await unless_disconnected(request, embed)


async def _models(request: Request, state: EdgeState) -> ListModelsResponse:
    metadata = forwarded_metadata(request)
    if anthropic_caller(request):  # its SDKs and Claude Code send their key in `x-api-key`
        metadata = with_api_key(request, metadata)
    return await listed_models(request, state, metadata)


async def listed_models(
    request: Request, state: EdgeState, metadata: Metadata
) -> ListModelsResponse:
    """The models the caller (its key in `metadata`) may use, unless it leaves first."""
    listing = state.router().list_models(
        ListModelsRequest(), timeout=state.settings.request_timeout_s, metadata=metadata
    )
    return await unless_disconnected(request, listing)


async def require_model(request: Request, model: str, metadata: Metadata) -> None:
    """That the router takes the caller's key and `model` is one it may name (404 otherwise),
    without a chat call: what the token counting routes answer for. A ListModels call, so it
    is counted in the caller's rpm as any call is."""
    models = await listed_models(request, edge_state(request), metadata)
    if model not in {listed.id for listed in models.models}:
        message = f"model: {model!r} is not a model this key may use."
        raise EdgeError(404, message, code="model_not_found", param="model")


@router.get("/v1/models", responses=ERRORS)
async def list_models(request: Request) -> Response:
    """OpenAI's list; Anthropic's page of it to a caller sending `anthropic-version`."""
    state = edge_state(request)
    if not anthropic_caller(request):
        return JSONBytesResponse(model_list_to_openai(await _models(request, state)))
    ask = parse_request(anthropic.models_ask, dict(request.query_params))  # before the call
    models = await _models(request, state)
    return JSONBytesResponse(parse_request(lambda _: ask.page(models.models), {}))


@router.get("/v1/models/{model_id:path}", responses=ERRORS, openapi_extra=MODEL_ID_PARAM)
async def retrieve_model(request: Request) -> Response:
    model_id: str = request.path_params["model_id"]  # not a signature parameter: _openapi.py
    state = edge_state(request)
    models = await _models(request, state)
    for model in models.models:
        if model.id == model_id and anthropic_caller(request):
            return JSONBytesResponse(anthropic.model_to_anthropic(model))
        if model.id == model_id:
            listed = model_list_to_openai(ListModelsResponse(models=[model]))
            return JSONBytesResponse(listed["data"][0])
    raise EdgeError(
        404,
        f"The model `{model_id}` does not exist or you do not have access to it.",
        code="model_not_found",
        param="model",
    )


@router.get("/healthz")
async def healthz() -> Response:
    """The process is alive; says nothing about the router."""
    return JSONBytesResponse({"status": "ok"})


@router.get("/readyz")
async def readyz(request: Request) -> Response:
    """Ready when the router answers the standard gRPC health check within a second; `auth`
    says whether the router authenticates callers (`keys`) or lets anyone in (`open`)."""
    probe = edge_state(request).health()
    reason = await probe.check(READY_TIMEOUT_S)
    if reason is not None:
        body = {"status": "unavailable", "reason": reason, **error_body(reason, "server_error")}
        return JSONBytesResponse(body, status_code=503)
    ready: dict[str, str] = {"status": "ready"}
    if probe.auth_mode is not None:
        ready["auth"] = probe.auth_mode
    if probe.auth_mode == "open":
        ready["warning"] = OPEN_MODE_WARNING
    return JSONBytesResponse(ready)
