"""Answer guardrails over OpenAI's hosted tools' items: a web search call's query (the text the
model wrote for the tool) is a text of the answer, screened unary as streamed (a redact rule's
find replaced in the call's item and in every event that carries it)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import openai
import pytest

from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import StartRouter
from tests.e2e.stream_harness import StartEdge
from tests.e2e.test_codex_guardrails import EMAIL, REDACTED, RULES
from tests.e2e.test_responses_hosted_tools import WEB_SEARCH, config


@pytest.fixture
async def sdk(
    fake: FakeUpstream, start_router: StartRouter, start_edge: StartEdge
) -> AsyncIterator[openai.AsyncOpenAI]:
    router = await start_router(config(fake) | {"guardrails": RULES})
    edge = await start_edge(router)
    async with openai.AsyncOpenAI(
        base_url=f"{edge.base_url}/v1", api_key="sk-caller", max_retries=0, timeout=10
    ) as client:
        yield client


async def test_a_unary_web_search_query_is_screened(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    fake.state.set_scenario(Scenario(tool_call=True, content="Found."))
    answer = await sdk.responses.create(model="hosted", input=f"mail {EMAIL}", tools=[WEB_SEARCH])

    call = answer.output[0].model_dump()
    assert call["type"] == "web_search_call"
    assert call["action"]["query"] == f"mail {REDACTED}"


async def test_a_streamed_web_search_query_is_screened(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    fake.state.set_scenario(Scenario(tool_call=True, content="Found."))
    stream = await sdk.responses.create(
        model="hosted", input=f"mail {EMAIL}", tools=[WEB_SEARCH], stream=True
    )
    events = [event async for event in stream]

    done = [e.model_dump() for e in events if e.type == "response.output_item.done"]
    assert done[0]["item"]["action"]["query"] == f"mail {REDACTED}"
    assert EMAIL not in "".join(event.model_dump_json() for event in events)
    assert events[-1].type == "response.completed"
