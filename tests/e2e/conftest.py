"""Fixtures of the end-to-end tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import anthropic
import httpx
import openai
import pytest
from google import genai
from google.genai import types

from router_service.clock import SYSTEM_CLOCK, Clock, ManualClock
from router_service.fake_upstream import FakeUpstream
from tests.conftest import RouterHandle, StartRouter, base_config
from tests.e2e.stream_harness import OpenStack, Stack, StartEdge, stream_config
from tests.router_service.auth.helpers import client as client_config
from tests.router_service.auth.helpers import guarded_config

Open = Callable[..., Awaitable[openai.AsyncOpenAI]]
Guarded = Callable[[list[dict[str, Any]]], Awaitable[tuple[RouterHandle, openai.AsyncOpenAI]]]


@pytest.fixture
async def sdk(router: RouterHandle, start_edge: StartEdge) -> AsyncIterator[openai.AsyncOpenAI]:
    """The official SDK against the edge, in front of the router on the fake upstream."""
    edge = await start_edge(router)
    async with openai.AsyncOpenAI(
        base_url=f"{edge.base_url}/v1", api_key="sk-caller", max_retries=0, timeout=10
    ) as client:
        yield client


@pytest.fixture
async def claude(
    router: RouterHandle, start_edge: StartEdge
) -> AsyncIterator[anthropic.AsyncAnthropic]:
    """Anthropic's SDK against the edge's Messages API, as `sdk` is OpenAI's."""
    edge = await start_edge(router)
    async with anthropic.AsyncAnthropic(
        base_url=edge.base_url, api_key="sk-caller", max_retries=0, timeout=10
    ) as client:
        yield client


def open_client(base_url: str, http: httpx.AsyncClient, key: str = "sk-caller") -> genai.Client:
    """Google's SDK on `http` (with aiohttp installed it would take aiohttp, whose subclassing
    it warns about); `http` is the caller's to close."""
    options = types.HttpOptions(base_url=base_url, httpx_async_client=http)
    return genai.Client(api_key=key, http_options=options)


@pytest.fixture
async def gemini(router: RouterHandle, start_edge: StartEdge) -> AsyncIterator[genai.Client]:
    """Google's SDK against the edge's Gemini API, as `sdk` is OpenAI's."""
    edge = await start_edge(router)
    async with httpx.AsyncClient(timeout=10) as http:
        client = open_client(edge.base_url, http)
        yield client
        client.close()


@pytest.fixture
async def open_stack(
    fake: FakeUpstream, start_router: StartRouter, start_edge: StartEdge
) -> AsyncIterator[OpenStack]:
    clients: list[Any] = []

    async def open_(
        *, in_process: bool = False, clock: Clock = SYSTEM_CLOCK, **windows: float
    ) -> Stack:
        """`in_process`: the edge calls the router in-process (`switchboard serve`); `clock`:
        the router's, which its first-chunk and stall windows are timed on."""
        router = await start_router(stream_config(fake.base_url, **windows), clock=clock)
        edge = await start_edge(router, in_process=in_process)
        sdk = openai.AsyncOpenAI(
            base_url=f"{edge.base_url}/v1", api_key="sk-caller", max_retries=0, timeout=20
        )
        http = httpx.AsyncClient(base_url=edge.base_url, timeout=20)
        clients.extend((sdk, http))
        return Stack(router, edge, sdk, http)

    yield open_
    for client in clients:
        await client.close() if isinstance(client, openai.AsyncOpenAI) else await client.aclose()


@pytest.fixture
async def open_sdk(
    fake: FakeUpstream, start_router: StartRouter, start_edge: StartEdge
) -> AsyncIterator[Open]:
    """SDKs on an edge over a router with `responses` (and `conversations`) settings, and
    client keys when given."""
    sdks: list[openai.AsyncOpenAI] = []

    async def open_(
        *,
        clock: ManualClock | None = None,
        keys: tuple[str, ...] = (),
        conversations: dict[str, Any] | None = None,
        **responses: Any,
    ) -> openai.AsyncOpenAI:
        sections = {"responses": responses, "conversations": conversations or {}}
        if keys:
            clients = [client_config(f"c{i}", key) for i, key in enumerate(keys)]
            config = guarded_config(fake.base_url, *clients, **sections)
        else:
            config = base_config(fake.base_url, **sections)
        router = await start_router(config, clock=clock or ManualClock())
        edge = await start_edge(router)
        for key in keys or ("sk-caller",):
            sdk = openai.AsyncOpenAI(
                base_url=f"{edge.base_url}/v1", api_key=key, max_retries=0, timeout=10
            )
            sdks.append(sdk)
        return sdks[-len(keys or (1,))]

    yield open_
    for sdk in sdks:
        await sdk.close()


@pytest.fixture
async def guarded_sdk(
    fake: FakeUpstream, start_router: StartRouter, start_edge: StartEdge
) -> AsyncIterator[Guarded]:
    """A router with these `guardrails:` rules on the fake upstream, and an SDK on an edge
    over it."""
    sdks: list[openai.AsyncOpenAI] = []

    async def open_(rules: list[dict[str, Any]]) -> tuple[RouterHandle, openai.AsyncOpenAI]:
        router = await start_router(base_config(fake.base_url, guardrails=rules))
        edge = await start_edge(router)
        sdk = openai.AsyncOpenAI(
            base_url=f"{edge.base_url}/v1", api_key="sk-caller", max_retries=0, timeout=10
        )
        sdks.append(sdk)
        return router, sdk

    yield open_
    for sdk in sdks:
        await sdk.close()
