"""Fixtures of the end-to-end tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import openai
import pytest

from router_service.fake_upstream import FakeUpstream
from tests.conftest import RouterHandle, StartRouter
from tests.e2e.stream_harness import OpenStack, Stack, StartEdge, stream_config


@pytest.fixture
async def sdk(router: RouterHandle, start_edge: StartEdge) -> AsyncIterator[openai.AsyncOpenAI]:
    """The official SDK against the edge, in front of the router on the fake upstream."""
    edge = await start_edge(router)
    async with openai.AsyncOpenAI(
        base_url=f"{edge.base_url}/v1", api_key="sk-caller", max_retries=0, timeout=10
    ) as client:
        yield client


@pytest.fixture
async def open_stack(
    fake: FakeUpstream, start_router: StartRouter, start_edge: StartEdge
) -> AsyncIterator[OpenStack]:
    clients: list[Any] = []

    async def open_(**windows: float) -> Stack:
        router = await start_router(stream_config(fake.base_url, **windows))
        edge = await start_edge(router)
        sdk = openai.AsyncOpenAI(
            base_url=f"{edge.base_url}/v1", api_key="sk-caller", max_retries=0, timeout=20
        )
        http = httpx.AsyncClient(base_url=edge.base_url, timeout=20)
        clients.extend((sdk, http))
        return Stack(router, edge, sdk, http)

    yield open_
    for client in clients:
        await client.close() if isinstance(client, openai.AsyncOpenAI) else await client.aclose()
