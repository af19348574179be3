"""Answer guardrails over what a file search found (its results' `text`, when `include` asks
for them) and an image generation's `revised_prompt`: texts of the answer, screened unary and
streamed, for Responses and chat callers alike (a redact rule's find replaced)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import openai
import pytest

from router_service.fake_upstream import FakeUpstream, Scenario
from router_service.fake_upstream._responses_hosted import FOUND_PREFIX, REVISED_PREFIX
from tests.conftest import StartRouter
from tests.e2e.codex_turns import config
from tests.e2e.stream_harness import StartEdge
from tests.e2e.test_codex_guardrails import EMAIL, REDACTED, RULES

FILE_SEARCH: Any = {"type": "file_search", "vector_store_ids": ["vs_1"]}
IMAGE: Any = {"type": "image_generation"}
RESULTS: Any = ["file_search_call.results"]
ASKED = f"mail {EMAIL}"
SCREENED = f"mail {REDACTED}"


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


async def test_a_unary_file_search_s_results_are_screened(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    fake.state.set_scenario(Scenario(tool_call=True, content="Found."))
    answer = await sdk.responses.create(
        model="codex-responses", input=ASKED, tools=[FILE_SEARCH], include=RESULTS
    )

    call = answer.output[0].model_dump()
    assert call["type"] == "file_search_call"
    assert [found["text"] for found in call["results"]] == [FOUND_PREFIX + SCREENED]
    assert EMAIL not in answer.model_dump_json()


async def test_a_streamed_file_search_s_results_are_screened(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    fake.state.set_scenario(Scenario(tool_call=True, content="Found."))
    stream = await sdk.responses.create(
        model="codex-responses", input=ASKED, tools=[FILE_SEARCH], include=RESULTS, stream=True
    )
    events = [event async for event in stream]

    done = [e.model_dump() for e in events if e.type == "response.output_item.done"]
    assert done[0]["item"]["results"][0]["text"] == FOUND_PREFIX + SCREENED
    assert "response.file_search_call.searching" in [event.type for event in events]
    assert EMAIL not in "".join(event.model_dump_json() for event in events)
    assert events[-1].type == "response.completed"


@pytest.mark.parametrize("stream", [False, True])
async def test_an_image_generation_s_revised_prompt_is_screened(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream, stream: bool
) -> None:
    fake.state.set_scenario(Scenario(tool_call=True, content="Here it is."))
    if stream:
        events = [
            event
            async for event in await sdk.responses.create(
                model="codex-responses", input=ASKED, tools=[IMAGE], stream=True
            )
        ]
        assert EMAIL not in "".join(event.model_dump_json() for event in events)
        final = events[-1]
        assert final.type == "response.completed"
        answer = final.response
    else:
        answer = await sdk.responses.create(model="codex-responses", input=ASKED, tools=[IMAGE])

    call = answer.output[0].model_dump()
    assert call["type"] == "image_generation_call" and call["result"]
    assert call["revised_prompt"] == REVISED_PREFIX + SCREENED


async def test_a_chat_caller_s_hosted_items_are_screened(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    fake.state.set_scenario(Scenario(tool_call=True, content="Here it is."))
    messages: Any = [{"role": "user", "content": ASKED}]
    completion = await sdk.chat.completions.create(
        model="codex-responses", messages=messages, tools=[IMAGE]
    )

    (call,) = completion.choices[0].message.model_dump()["hosted_items"]
    assert call["revised_prompt"] == REVISED_PREFIX + SCREENED
    assert EMAIL not in completion.model_dump_json()


LONG_EMAIL = "jane.doe@example.com"  # longer than its marker: what follows it moves
CITED = f"Write to {LONG_EMAIL} today."
CITED_SCREENED = f"Write to {REDACTED} today."
WEB_SEARCH: Any = {"type": "web_search"}


async def test_a_citation_moves_with_the_redacted_text(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    fake.state.set_scenario(Scenario(tool_call=True, content=CITED))
    answer = await sdk.responses.create(model="codex-responses", input="mail", tools=[WEB_SEARCH])

    assert answer.output_text == CITED_SCREENED
    (annotation,) = answer.output[-1].model_dump()["content"][0]["annotations"]
    assert (annotation["start_index"], annotation["end_index"]) == (0, len(CITED_SCREENED))

    messages: Any = [{"role": "user", "content": "mail"}]
    completion = await sdk.chat.completions.create(
        model="codex-responses", messages=messages, tools=[WEB_SEARCH]
    )
    (cited,) = completion.choices[0].message.model_dump()["annotations"]
    assert cited["url_citation"]["end_index"] == len(CITED_SCREENED)


async def test_a_redaction_before_a_hosted_item_keeps_the_messages_apart(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    preamble = f"Looking up {LONG_EMAIL}. "
    fake.state.set_scenario(Scenario(tool_call=True, preamble=preamble, content="Sunny."))
    answer = await sdk.responses.create(model="codex-responses", input="mail", tools=[WEB_SEARCH])

    first, call, second = answer.output
    assert (first.type, call.type, second.type) == ("message", "web_search_call", "message")
    texts = [item.model_dump()["content"][0]["text"] for item in (first, second)]
    assert texts == [f"Looking up {REDACTED}. ", "Sunny."]
