"""A key release that fails after the answer (the state store lost, inline on the memory store)
reaches no caller through the edge: the official `openai` SDK reads a whole answer, streamed or
not, with no error event after it (the lease expires by its TTL)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from router_service.fake_upstream import FakeUpstream
from tests.conftest import StartRouter, base_config
from tests.e2e.stream_harness import StartEdge
from tests.release_failures import RELEASE_ERRORS, RELEASE_IDS, FailingReleases

HI: list[ChatCompletionMessageParam] = [{"role": "user", "content": "a b c"}]


@pytest.fixture(params=RELEASE_ERRORS, ids=RELEASE_IDS)
async def sdk(
    request: pytest.FixtureRequest,
    fake: FakeUpstream,
    start_router: StartRouter,
    start_edge: StartEdge,
) -> AsyncIterator[openai.AsyncOpenAI]:
    """The SDK through an edge, before a router whose releases raise the error given."""
    router = await start_router(base_config(fake.base_url), store=FailingReleases(request.param))
    edge = await start_edge(router)
    base_url = f"{edge.base_url}/v1"
    async with openai.AsyncOpenAI(base_url=base_url, api_key="sk-x", max_retries=0) as client:
        yield client


async def test_a_failed_release_leaves_the_sdk_its_answer(sdk: openai.AsyncOpenAI) -> None:
    answer = await sdk.chat.completions.create(model="chain", messages=HI)

    assert answer.choices[0].message.content


async def test_a_failed_release_leaves_the_sdk_its_whole_stream(sdk: openai.AsyncOpenAI) -> None:
    stream = await sdk.chat.completions.create(model="chain", messages=HI, stream=True)
    chunks = [chunk async for chunk in stream]  # an error event after the answer would raise

    assert any(c.choices and c.choices[0].delta.content for c in chunks)
    assert any(c.choices and c.choices[0].finish_reason == "stop" for c in chunks)
