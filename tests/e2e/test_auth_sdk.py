"""Callers and limits as an OpenAI SDK user meets them (issue #7): the edge forwards the key, the
router decides, and the SDK raises the exception class it would raise against OpenAI."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import RouterHandle, StartRouter, base_config
from tests.helpers import eventually
from tests.http_edge.harness import Edge
from tests.router_service.auth.helpers import client, guarded_config

StartEdge = Callable[..., Awaitable[Edge]]
APP_KEY = "sk-app-0123456789"
NARROW_KEY = "sk-narrow-0123456789"
STREAM_KEY = "sk-streamer-0123456789"
HI: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hi"}]


@pytest.fixture
async def guarded(fake: FakeUpstream, start_router: StartRouter) -> RouterHandle:
    return await start_router(
        guarded_config(
            fake.base_url,
            client("app", APP_KEY, rpm=3),
            client("narrow", NARROW_KEY, models=["embedder"]),
            client("streamer", STREAM_KEY, max_concurrent_streams=1),
            server={"port": 0, "max_tokens_ceiling": 4096},
        )
    )


@pytest.fixture
async def edge(guarded: RouterHandle, start_edge: StartEdge) -> Edge:
    return await start_edge(guarded)


def sdk(edge: Edge, key: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(
        base_url=f"{edge.base_url}/v1", api_key=key, max_retries=0, timeout=10
    )


@pytest.fixture
async def app(edge: Edge) -> AsyncIterator[openai.AsyncOpenAI]:
    async with sdk(edge, APP_KEY) as client:
        yield client


async def test_missing_and_wrong_keys_are_401(edge: Edge) -> None:
    async with httpx.AsyncClient(base_url=edge.base_url, timeout=10) as http:
        response = await http.post("/v1/chat/completions", json={"model": "chain", "messages": HI})
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "authentication_error"
    assert response.json()["error"]["code"] == "missing_api_key"

    async with sdk(edge, "sk-wrong") as wrong:
        with pytest.raises(openai.AuthenticationError) as caught:
            await wrong.chat.completions.create(model="chain", messages=HI)
        assert caught.value.code == "invalid_api_key"
        # Before the first token a stream fails as a real HTTP status too.
        with pytest.raises(openai.AuthenticationError):
            await wrong.chat.completions.create(model="chain", messages=HI, stream=True)
        with pytest.raises(openai.AuthenticationError):
            await wrong.models.list()


async def test_a_model_the_key_may_not_use_is_403(edge: Edge) -> None:
    async with sdk(edge, NARROW_KEY) as narrow:
        with pytest.raises(openai.PermissionDeniedError) as caught:
            await narrow.chat.completions.create(model="chain", messages=HI)
        assert caught.value.code == "model_not_allowed"
        assert isinstance(caught.value.body, dict) and caught.value.body["param"] == "model"
        result = await narrow.embeddings.create(model="embedder", input="x")
        assert result.data
        with pytest.raises(openai.NotFoundError) as missing:
            await narrow.chat.completions.create(model="nope", messages=HI)
        assert missing.value.code == "model_not_found"


async def test_over_the_rate_limit_is_429_with_retry_after(app: openai.AsyncOpenAI) -> None:
    for _ in range(3):
        await app.chat.completions.create(model="chain", messages=HI)
    with pytest.raises(openai.RateLimitError) as caught:
        await app.chat.completions.create(model="chain", messages=HI)
    assert caught.value.code == "rate_limit_exceeded"
    retry_after = int(caught.value.response.headers["retry-after"])
    assert 1 <= retry_after <= 120  # two windows at most: the sliding estimate fades


async def test_concurrent_streams_over_http(
    edge: Edge, guarded: RouterHandle, fake: FakeUpstream
) -> None:
    fake.state.set_scenario(Scenario(stall_after_chunks=2))  # one content chunk, then silence
    async with sdk(edge, STREAM_KEY) as streamer:
        first = await streamer.chat.completions.create(model="chain", messages=HI, stream=True)
        assert (await anext(aiter(first))).choices
        with pytest.raises(openai.RateLimitError) as caught:
            await streamer.chat.completions.create(model="chain", messages=HI, stream=True)
        assert "concurrent streams" in caught.value.message
        await first.close()  # the edge cancels the router call, which gives the slot back
        store = guarded.runtime.store

        async def released() -> bool:
            return await store.held(["client:streamer:streams"]) == [0]

        await eventually(released, what="stream slot released")
        fake.state.set_scenario(Scenario())
        again = await streamer.chat.completions.create(model="chain", messages=HI, stream=True)
        assert "".join([c.choices[0].delta.content or "" async for c in again if c.choices])


@pytest.mark.parametrize(
    ("field", "value"), [("max_tokens", 0), ("max_tokens", 4097), ("max_completion_tokens", -1)]
)
async def test_max_tokens_out_of_bounds_is_400(
    app: openai.AsyncOpenAI, fake: FakeUpstream, field: str, value: int
) -> None:
    out_of_bounds: dict[str, Any] = {field: value}
    with pytest.raises(openai.BadRequestError) as caught:
        await app.chat.completions.create(model="chain", messages=HI, **out_of_bounds)
    assert caught.value.param == field
    assert "between 1 and 4096" in caught.value.message
    assert fake.state.calls() == []


async def test_readyz_says_how_callers_are_let_in(
    edge: Edge, fake: FakeUpstream, start_router: StartRouter, start_edge: StartEdge
) -> None:
    open_router = await start_router(base_config(fake.base_url))
    open_edge = await start_edge(open_router)
    async with httpx.AsyncClient(timeout=10) as http:
        keyed = (await http.get(f"{edge.base_url}/readyz")).json()
        open_mode = (await http.get(f"{open_edge.base_url}/readyz")).json()
    assert keyed == {"status": "ready", "auth": "keys"}
    assert open_mode["status"] == "ready" and open_mode["auth"] == "open"
    assert "auth.open" in open_mode["warning"]


async def test_the_edge_deadline_reaches_the_upstream_call(
    fake: FakeUpstream, start_router: StartRouter, start_edge: StartEdge
) -> None:
    """The edge's request timeout travels as the gRPC deadline and cuts the upstream call: the
    caller gets an OpenAI-shaped 504 in time, nothing is left hanging upstream, and nobody is
    penalised (the deadline was the caller's, not the deployment's fault)."""
    router = await start_router(base_config(fake.base_url))
    edge = await start_edge(router, request_timeout_s=0.5)
    fake.state.set_scenario(Scenario.stall())
    async with sdk(edge, "sk-anyone") as client:
        for stream in (False, True):
            messages: list[ChatCompletionMessageParam] = [
                {"role": "user", "content": f"stream={stream}"}
            ]
            with pytest.raises(openai.InternalServerError) as caught:
                await client.chat.completions.create(
                    model="chain",
                    messages=messages,
                    stream=stream,
                    timeout=5,
                )
            assert caught.value.status_code == 504

    async def upstream_released() -> bool:
        return fake.state.in_flight == 0

    await eventually(upstream_released, within=15, what="upstream calls aborted")
    assert await router.leases_held() == 0
    cooled = await router.runtime.store.deadlines(
        [d.cooldown_name for d in router.runtime.planner.deployments.values()]
    )
    assert cooled == [0.0] * len(cooled)


async def test_body_limit_is_413(
    fake: FakeUpstream, start_router: StartRouter, start_edge: StartEdge
) -> None:
    router = await start_router(base_config(fake.base_url))
    edge = await start_edge(router, max_body_bytes=2048)
    async with sdk(edge, "sk-anyone") as client:
        with pytest.raises(openai.APIStatusError) as caught:
            await client.chat.completions.create(
                model="chain",
                messages=[{"role": "user", "content": "x" * 4096}],
            )
        assert caught.value.status_code == 413
        assert caught.value.code == "request_too_large"
        answer = await client.chat.completions.create(model="chain", messages=HI)
        assert answer.choices[0].message.content == "Echo: hi"


async def test_cors_for_a_browser_client(guarded: RouterHandle, start_edge: StartEdge) -> None:
    """Kobold Lite and other browser clients: a preflight with `authorization`, then the refusal
    itself readable by the page (CORS headers on error answers too)."""
    origin = "http://localhost:5001"
    edge = await start_edge(guarded, cors_origins=[origin])
    headers: dict[str, Any] = {
        "origin": origin,
        "access-control-request-method": "POST",
        "access-control-request-headers": "authorization,content-type",
    }
    async with httpx.AsyncClient(base_url=edge.base_url, timeout=10) as http:
        preflight = await http.options("/v1/chat/completions", headers=headers)
        refused = await http.post(
            "/v1/chat/completions",
            json={"model": "chain", "messages": HI},
            headers={"origin": origin, "authorization": "Bearer sk-wrong"},
        )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == origin
    assert "authorization" in preflight.headers["access-control-allow-headers"].lower()
    assert refused.status_code == 401
    assert refused.headers["access-control-allow-origin"] == origin
