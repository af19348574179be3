from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from router_service.fake_upstream import FakeUpstream


@pytest.fixture
async def fake() -> AsyncIterator[FakeUpstream]:
    async with FakeUpstream() as server:
        yield server


@pytest.fixture
async def client(fake: FakeUpstream) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=fake.base_url, headers={"Authorization": "Bearer k1"}, timeout=5.0
    ) as http:
        yield http
