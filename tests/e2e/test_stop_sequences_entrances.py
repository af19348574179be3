"""Stop sequences past an upstream's cap, through the other entrances: Gemini's
`stopSequences`, Ollama's `options.stop`, Anthropic's streamed `stop_sequences` reach the
router as `stop` and the answer is cut at the one past the cap."""

from __future__ import annotations

from collections.abc import AsyncIterator

import anthropic
import ollama
import pytest
from google import genai
from google.genai import types

from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import RouterHandle, StartRouter
from tests.e2e.stream_harness import StartEdge
from tests.e2e.test_stop_sequences_sdk import CUT, HELLO, STOPS, TEXT, config, sent_stops

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def router(fake: FakeUpstream, start_router: StartRouter) -> RouterHandle:
    return await start_router(config(fake))


@pytest.fixture
async def ollama_client(
    router: RouterHandle, start_edge: StartEdge
) -> AsyncIterator[ollama.AsyncClient]:
    edge = await start_edge(router)
    client = ollama.AsyncClient(host=edge.base_url, headers={"Authorization": "Bearer sk-caller"})
    yield client
    await client._client.aclose()


@pytest.mark.parametrize("model", ["chain", "gem"])
async def test_gemini_stop_sequences_past_the_cap(
    gemini: genai.Client, fake: FakeUpstream, model: str
) -> None:
    fake.state.set_scenario(Scenario(content=TEXT))
    settings = types.GenerateContentConfig(stop_sequences=STOPS)
    answer = await gemini.aio.models.generate_content(model=model, contents="hi", config=settings)
    assert answer.text == CUT
    assert answer.candidates and answer.candidates[0].finish_reason == types.FinishReason.STOP
    assert sent_stops(fake) == STOPS[: {"chain": 4, "gem": 5}[model]]


async def test_ollama_options_stop_past_the_cap(
    ollama_client: ollama.AsyncClient, fake: FakeUpstream
) -> None:
    fake.state.set_scenario(Scenario(content=TEXT))
    stream = await ollama_client.chat(
        model="chain", messages=HELLO, options={"stop": STOPS}, stream=True
    )
    parts = [part async for part in stream]
    assert "".join(p.message.content or "" for p in parts) == CUT
    assert parts[-1].done and parts[-1].done_reason == "stop"
    assert sent_stops(fake) == STOPS[:4]


async def test_a_streamed_anthropic_message_names_the_stop_the_router_matched(
    claude: anthropic.AsyncAnthropic, fake: FakeUpstream
) -> None:
    fake.state.set_scenario(Scenario(content=TEXT))
    async with claude.messages.stream(
        model="gem", max_tokens=100, messages=HELLO, stop_sequences=STOPS
    ) as stream:
        message = await stream.get_final_message()
    assert message.stop_reason == "stop_sequence" and message.stop_sequence == "r ##"
    assert [block.text for block in message.content if block.type == "text"] == [CUT]
