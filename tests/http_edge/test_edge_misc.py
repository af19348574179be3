"""Models, embeddings, probes, CORS, forwarded metadata, the app's lifetime and exports."""

from __future__ import annotations

import asyncio
import base64
import struct
import subprocess
import sys
from typing import Any

import httpx
import openai
import pytest
from grpc_health.v1 import health_pb2
from pydantic import SecretStr

import http_edge
from clients import RouterClient
from clients.switchboard.v1 import embeddings_pb2 as emb
from clients.switchboard.v1 import router_service_pb2 as rs
from clients.switchboard.v1 import routing_pb2
from tests.helpers import eventually, free_port
from tests.http_edge.edge_messages import DEPLOYMENT, completion, route
from tests.http_edge.harness import Edge, EdgeFactory, StubRouter

MODELS = rs.ListModelsResponse(
    models=[
        rs.ModelInfo(id=DEPLOYMENT, kind=rs.MODEL_KIND_DEPLOYMENT, owned_by="openai", created=1),
        rs.ModelInfo(id="fast", kind=rs.MODEL_KIND_POOL, members=["gpt-4o-mini"], created=2),
    ]
)


async def list_models(request: Any, context: Any) -> rs.ListModelsResponse:
    return MODELS


async def test_models_list_and_retrieve(stub: StubRouter, sdk: openai.AsyncOpenAI) -> None:
    stub.on_list_models = list_models
    page = await sdk.models.list()
    assert [model.id for model in page.data] == [DEPLOYMENT, "fast"]
    model = await sdk.models.retrieve(DEPLOYMENT)
    assert model.id == DEPLOYMENT
    assert model.object == "model"
    with pytest.raises(openai.NotFoundError) as caught:
        await sdk.models.retrieve("no-such-model")
    assert caught.value.code == "model_not_found"


def _vector_base64(values: list[float]) -> str:
    return base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode()


async def test_embeddings(stub: StubRouter, sdk: openai.AsyncOpenAI) -> None:
    vectors = [[0.5, -1.0, 0.25], [1.0, 0.0, -0.5]]

    async def on_embed(request: rs.EmbedRequest, context: Any) -> rs.EmbedResponse:
        as_base64 = request.params.encoding_format == "base64"
        data = [
            emb.Embedding(index=i, base64=_vector_base64(v))
            if as_base64
            else emb.Embedding(index=i, values=v)
            for i, v in enumerate(vectors)
        ]
        usage = emb.EmbeddingUsage(prompt_tokens=4, total_tokens=4)
        result = emb.EmbeddingResult(data=data, model="text-embedding-3-small", usage=usage)
        return rs.EmbedResponse(result=result, route=route())

    stub.on_embed = on_embed
    response = await sdk.embeddings.create(model="text-embedding-3-small", input=["a", "b"])
    assert [item.embedding for item in response.data] == vectors
    assert response.usage.total_tokens == 4
    assert list(stub.calls[0].request.params.texts.values) == ["a", "b"]

    floats = await sdk.embeddings.create(
        model="text-embedding-3-small", input="a", encoding_format="float"
    )
    assert floats.data[0].embedding == vectors[0]


async def test_healthz_and_readyz(stub: StubRouter, http: httpx.AsyncClient) -> None:
    assert (await http.get("/healthz")).json() == {"status": "ok"}
    ready = await http.get("/readyz")
    assert ready.status_code == 200
    await stub.health.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
    not_ready = await http.get("/readyz")
    assert not_ready.status_code == 503
    assert "not serving" in not_ready.json()["reason"]


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/v1/models"])
async def test_head_is_get_without_the_body(
    stub: StubRouter, http: httpx.AsyncClient, path: str
) -> None:
    async def on_list_models(request: Any, context: Any) -> rs.ListModelsResponse:
        return rs.ListModelsResponse()

    stub.on_list_models = on_list_models
    got = await http.get(path)
    head = await http.head(path)
    assert (got.status_code, head.status_code) == (200, 200)
    assert head.content == b""
    assert head.headers["content-type"] == got.headers["content-type"]
    assert head.headers["content-length"] == str(len(got.content))


async def test_head_of_a_post_route_is_still_405(http: httpx.AsyncClient) -> None:
    response = await http.head("/v1/chat/completions")
    assert response.status_code == 405 and response.content == b""
    assert response.headers["allow"] == "POST"


async def test_metadata_is_forwarded(stub: StubRouter, edge: Edge) -> None:
    async def on_chat(request: Any, context: Any) -> rs.ChatResponse:
        return rs.ChatResponse(completion=completion("ok"), route=route())

    stub.on_chat = on_chat
    sdk = openai.AsyncOpenAI(
        base_url=f"{edge.base_url}/v1",
        api_key="sk-caller",
        max_retries=0,
        default_headers={"x-session-id": "conversation-7", "x-request-id": "req-42"},
    )
    async with sdk:
        await sdk.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
        )
    [call] = stub.calls
    assert call.metadata["authorization"] == "Bearer sk-caller"
    assert call.metadata["x-session-id"] == "conversation-7"
    assert call.metadata["x-request-id"] == "req-42"
    assert call.metadata["x-forwarded-for"] == "127.0.0.1"
    assert call.request.routing.session_id == "conversation-7"
    # Nothing else of the HTTP request travels (no user agent, no SDK headers).
    assert not [key for key in call.metadata if key.startswith("x-stainless")]


async def test_non_ascii_credentials_are_refused(stub: StubRouter, http: httpx.AsyncClient) -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    response = await http.post(
        "/v1/chat/completions", json=body, headers={b"authorization": b"Bearer s\xe9cret"}
    )
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "authorization"
    assert stub.calls == []


async def test_cors_preflight_when_configured(start_edge: EdgeFactory) -> None:
    origin = "https://app.example"
    edge = await start_edge(cors_origins=[origin])
    preflight = {
        "origin": origin,
        "access-control-request-method": "POST",
        "access-control-request-headers": "authorization, content-type, x-stainless-os",
    }
    async with httpx.AsyncClient(base_url=edge.base_url, timeout=10) as client:
        allowed = await client.options("/v1/chat/completions", headers=preflight)
        refused = await client.options(
            "/v1/chat/completions", headers={**preflight, "origin": "https://evil.example"}
        )
        simple = await client.get("/healthz", headers={"origin": origin})
        # Chromium's Private Network Access: a page on a public origin (hosted Kobold Lite)
        # calling an edge on localhost or the LAN asks for it in the preflight.
        private = {**preflight, "access-control-request-private-network": "true"}
        from_public = await client.options("/v1/chat/completions", headers=private)
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == origin
    assert allowed.headers["access-control-allow-credentials"] == "true"
    assert from_public.status_code == 200
    assert from_public.headers["access-control-allow-private-network"] == "true"
    assert "authorization" in allowed.headers["access-control-allow-headers"].lower()
    assert refused.status_code == 400
    assert refused.headers["content-type"] == "application/json"
    assert refused.json()["error"] == {
        "message": "Disallowed CORS origin.",
        "type": "invalid_request_error",
        "param": None,
        "code": "cors",
    }
    assert simple.headers["access-control-allow-origin"] == origin
    exposed = simple.headers["access-control-expose-headers"]
    assert "x-switchboard-deployment" in exposed
    assert "x-ratelimit-remaining-requests" in exposed  # a page can pace itself too
    assert "x-ratelimit-reset-tokens" in exposed


async def test_a_browser_page_may_delete_and_read_the_request_id(start_edge: EdgeFactory) -> None:
    """The SDKs' deletes (`responses.delete`, `conversations.delete`, `files.delete`) preflight
    DELETE; their `_request_id` (and Anthropic's) is read from a header the page must be let see."""
    origin = "https://app.example"
    edge = await start_edge(cors_origins=[origin])
    preflight = {"origin": origin, "access-control-request-method": "DELETE"}
    async with httpx.AsyncClient(base_url=edge.base_url, timeout=10) as client:
        allowed = await client.options("/v1/responses/resp_1", headers=preflight)
        simple = await client.get("/healthz", headers={"origin": origin})
    assert allowed.status_code == 200
    assert "DELETE" in allowed.headers["access-control-allow-methods"]
    exposed = simple.headers["access-control-expose-headers"].lower().split(", ")
    assert {"x-request-id", "request-id"} <= set(exposed)


async def test_cors_wildcard_never_allows_credentials(start_edge: EdgeFactory) -> None:
    edge = await start_edge(cors_origins=["*"])
    preflight = {
        "origin": "https://any.example",
        "access-control-request-method": "POST",
        "access-control-request-private-network": "true",
    }
    async with httpx.AsyncClient(base_url=edge.base_url, timeout=10) as client:
        response = await client.get("/healthz", headers={"origin": "https://any.example"})
        from_public = await client.options("/v1/chat/completions", headers=preflight)
    assert response.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in response.headers
    # `*` is no yes to Private Network Access: any public page could drive a laptop's edge.
    assert from_public.status_code == 400
    assert "access-control-allow-private-network" not in from_public.headers


async def test_no_cors_unless_configured(http: httpx.AsyncClient) -> None:
    response = await http.options(
        "/v1/chat/completions",
        headers={"origin": "https://app.example", "access-control-request-method": "POST"},
    )
    assert response.status_code == 405
    assert "access-control-allow-origin" not in response.headers


async def test_injected_client_is_used_and_left_open(
    stub: StubRouter, start_edge: EdgeFactory
) -> None:
    stub.on_list_models = list_models
    async with RouterClient(stub.target) as client:
        edge = await start_edge(client=client)
        async with httpx.AsyncClient(base_url=edge.base_url, timeout=10) as http:
            assert (await http.get("/v1/models")).status_code == 200
        edge.server.should_exit = True
        await edge.task
        # The app's shutdown did not close a client it does not own.
        assert (await client.list_models(rs.ListModelsRequest())).models == MODELS.models


async def test_serve_runs_until_cancelled(stub: StubRouter) -> None:
    port = free_port()
    settings = http_edge.EdgeSettings(router_target=stub.target)
    task = asyncio.create_task(http_edge.serve(settings, port=port))
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:

        async def answers() -> bool:
            assert not task.done()
            try:
                return (await client.get("/healthz")).status_code == 200
            except httpx.ConnectError:
                return False

        await eventually(answers, within=10, what="the edge answers")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    with pytest.raises(httpx.ConnectError):
        async with httpx.AsyncClient(timeout=10) as client:
            await client.get(f"http://127.0.0.1:{port}/healthz")


def test_exports() -> None:
    assert http_edge.__all__ == ["EdgeSettings", "create_app", "serve"]
    settings = http_edge.EdgeSettings(admin_token=SecretStr("secret"))
    assert settings.router_target == "127.0.0.1:50051"
    assert settings.max_body_bytes == 4 * 1024 * 1024
    assert settings.request_timeout_s == 600
    assert settings.cors_origins == []
    assert "secret" not in repr(settings)


def test_route_parameters_are_documented_by_hand() -> None:
    # The routes read them from the request (see http_edge/_openapi.py); the document still
    # names them, for clients, generators and the schema-driven fuzz test.
    paths = http_edge.create_app(http_edge.EdgeSettings()).openapi()["paths"]
    (model_id,) = paths["/v1/models/{model_id}"]["get"]["parameters"]
    assert (model_id["name"], model_id["in"], model_id["required"]) == ("model_id", "path", True)
    (provider,) = paths["/admin/keys"]["get"]["parameters"]
    assert (provider["name"], provider["in"], provider["required"]) == ("provider", "query", False)


def test_building_the_app_leaves_what_its_calls_need_unloaded() -> None:
    # FastAPI imports pydantic.v1 (1.5 MiB) for any parameter declared in a route's signature;
    # the router's session state and state store (~0.7 MiB, 11 modules) are none of the edge's
    # business (it once loaded them for one constant; it names a stored conversation's session
    # with `router_service.sessions._identity` alone, the package lazy); `websockets` waits
    # for the first `/v1/realtime` upgrade (http_edge/_websockets.py), also once uvicorn
    # loaded its config; the Gemini, Ollama and Anthropic codecs' translation waits for their
    # first call (clients/_lazy.py). A fresh interpreter shows whether one slipped back in.
    unwanted: tuple[str, ...] = ("pydantic.v1", "router_service.state")
    unwanted += tuple(
        f"router_service.sessions.{m}" for m in ("_sessions", "_marks", "_protection")
    )
    unwanted += ("websockets",)
    unwanted += tuple(f"clients.codec.{api}._request" for api in ("gemini", "ollama", "anthropic"))
    unwanted += ("clients.codec.gemini._stream", "clients.codec.anthropic._stream")
    # Nor the router's spans and decisions, nor the synchronous client (clients/_lazy.py).
    unwanted += ("router_service.telemetry._request", "router_service.telemetry._decisions")
    unwanted += ("clients._sync_client", "clients._sync_stream")
    probe = (
        "import sys; import http_edge; from http_edge._app import uvicorn_config; "
        "settings = http_edge.EdgeSettings(); "
        "uvicorn_config(http_edge.create_app(settings), settings).load(); "
        f"print(*[name for name in {unwanted!r} if name in sys.modules])"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "", done.stderr


async def test_a_browser_page_reads_whether_to_retry(start_edge: EdgeFactory) -> None:
    """The openai and anthropic SDKs in a page read `x-should-retry` as they do elsewhere: a
    header the page is not let see is none, and the SDK retries what the edge says not to."""
    origin = "https://app.example"
    edge = await start_edge(cors_origins=[origin])
    async with httpx.AsyncClient(base_url=edge.base_url, timeout=10) as client:
        simple = await client.get("/healthz", headers={"origin": origin})
    exposed = simple.headers["access-control-expose-headers"].lower().split(", ")
    assert "x-should-retry" in exposed


async def test_a_browser_page_reads_every_header_an_answer_carries(
    stub: StubRouter, start_edge: EdgeFactory
) -> None:
    """A page reads an answer's headers only as CORS exposes them: the guardrails that acted
    on it and those screening it, and how many messages `truncation: auto` left out, are said
    in headers as the route, the cache and the limits are (README: Guardrails, Responses)."""
    origin = "https://app.example"
    answered = rs.ChatResponse(completion=completion("hi"), route=route())
    answered.route.cache = routing_pb2.CACHE_STATUS_HIT
    answered.route.cost_usd = 0.001
    answered.route.guardrails.append("pii")
    answered.route.answer_guardrails.append("no-leaked-credentials")
    answered.route.truncated_messages = 2
    answered.route.rate_limit.limit_requests = 10
    answered.route.rate_limit.remaining_requests = 9

    async def on_chat(request: rs.ChatRequest, context: Any) -> rs.ChatResponse:
        return answered

    stub.on_chat = on_chat
    edge = await start_edge(cors_origins=[origin])
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    async with httpx.AsyncClient(base_url=edge.base_url, timeout=10) as client:
        response = await client.post("/v1/chat/completions", json=body, headers={"origin": origin})
    assert response.status_code == 200
    said = {name for name in response.headers if name.startswith(("x-switchboard-", "x-rate"))}
    assert "x-switchboard-truncated-messages" in said  # the answer says each of them
    assert "x-switchboard-guardrails" in said and "x-switchboard-answer-guardrails" in said
    exposed = set(response.headers["access-control-expose-headers"].lower().split(", "))
    assert said | {"age"} <= exposed, said - exposed


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("POST", "/v1/models", "GET, HEAD"),  # HEAD is answered as GET (`HeadAsGet`)
        ("PUT", "/v1/responses/resp_1", "DELETE, GET, HEAD"),  # two routes on one path
        ("GET", "/v1/chat/completions", "POST"),
    ],
)
async def test_a_405_allows_every_method_the_path_answers(
    http: httpx.AsyncClient, method: str, path: str, allow: str
) -> None:
    response = await http.request(method, path)
    assert response.status_code == 405
    assert response.headers["allow"] == allow
