"""Answer guardrails over what Codex-style turns add: a custom tool call's input and the summary
of a Responses API deployment's reasoning items are texts of the answer, screened unary as
streamed (a redact rule's find replaced); so is a web search call's query (OpenAI's hosted
tools: the text the model wrote for the tool), in its item and every event that carries it, a
file search's queries and results' text, an image generation's revised prompt. A redaction
moves the answer's citations with its text, and where a hosted item came between its messages."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import openai
import pytest

from router_service.fake_upstream import FakeUpstream, Scenario
from router_service.fake_upstream._responses_hosted import FOUND_PREFIX, REVISED_PREFIX
from tests.conftest import StartRouter
from tests.e2e.codex_turns import APPLY_PATCH, OPENING, config, request
from tests.e2e.stream_harness import StartEdge
from tests.e2e.test_responses_hosted_tools import MCP, WEB_SEARCH

EMAIL = "jane@example.com"
REDACTED = "[REDACTED:email]"
RULES = [
    {
        "name": "pii",
        "detect": ["email", "credit_card"],
        "action": "redact",
        "apply_to": ["response"],
    }
]
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


@pytest.mark.parametrize("group", ["codex-responses", "codex-compatible"])
async def test_a_unary_custom_call_s_input_is_screened(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream, group: str
) -> None:
    patch = f"+mail {EMAIL}"
    said: dict[str, Any] = {"tool_input": patch}
    if group == "codex-compatible":  # emulated as a function of one `input`
        said = {"tool_arguments": {"input": patch}}
    fake.state.set_scenario(Scenario(tool_call=True, tool_name="apply_patch", **said))
    answer = await sdk.responses.create(
        model=group, input="patch", tools=[APPLY_PATCH], stream=False
    )

    [call] = [item for item in answer.output if item.type == "custom_tool_call"]
    assert call.input == f"+mail {REDACTED}"


async def test_the_summary_of_a_responses_deployment_s_reasoning_is_screened(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    fake.state.set_scenario(Scenario(reasoning=f"Write to {EMAIL}.", content="Done."))
    answer = await sdk.responses.create(**request("codex-responses", OPENING, stream=False))

    reasoning = answer.output[0]
    assert reasoning.type == "reasoning" and reasoning.encrypted_content
    assert [part.text for part in reasoning.summary] == [f"Write to {REDACTED}."]


async def test_a_screened_stream_keeps_one_reasoning_item_with_its_summary(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    # The screen holds the summary's last characters back: they still go into its item.
    fake.state.set_scenario(Scenario(reasoning=f"Write to {EMAIL}.", content="Done."))
    stream = await sdk.responses.create(**request("codex-responses", OPENING))
    events = [event async for event in stream]

    done = [e.item for e in events if e.type == "response.output_item.done"]
    assert [item.type for item in done] == ["reasoning", "message"]
    said = [e for e in events if e.type == "response.reasoning_summary_text.delta"]
    assert "".join(e.delta for e in said) == f"Write to {REDACTED}."
    assert {e.item_id for e in said} == {done[0].id}
    assert EMAIL not in "".join(event.model_dump_json() for event in events)


async def test_a_screened_summary_of_several_parts_streams_them_as_screened(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    """What the screen held back of a part (an address at its end) goes into that part, not
    the next."""
    reasoning = f"**Plan** for {EMAIL}\n\nWrite to {EMAIL}"
    fake.state.set_scenario(Scenario(reasoning=reasoning, content="Done."))
    stream = await sdk.responses.create(**request("codex-responses", OPENING))
    events = [event async for event in stream]

    done = next(e.item for e in events if e.type == "response.output_item.done")
    parts = [f"**Plan** for {REDACTED}", f"Write to {REDACTED}"]
    assert [part.text for part in done.summary] == parts
    said: dict[int, str] = {}
    for event in events:
        if event.type == "response.reasoning_summary_text.delta":
            said[event.summary_index] = said.get(event.summary_index, "") + event.delta
    assert said == dict(enumerate(parts))


async def test_a_unary_web_search_query_is_screened(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    fake.state.set_scenario(Scenario(tool_call=True, content="Found."))
    answer = await sdk.responses.create(
        model="codex-responses", input=f"mail {EMAIL}", tools=[WEB_SEARCH]
    )

    call = answer.output[0].model_dump()
    assert call["type"] == "web_search_call"
    assert call["action"]["query"] == f"mail {REDACTED}"


async def test_a_streamed_web_search_query_is_screened(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    fake.state.set_scenario(Scenario(tool_call=True, content="Found."))
    stream = await sdk.responses.create(
        model="codex-responses", input=f"mail {EMAIL}", tools=[WEB_SEARCH], stream=True
    )
    events = [event async for event in stream]

    done = [e.model_dump() for e in events if e.type == "response.output_item.done"]
    assert done[0]["item"]["action"]["query"] == f"mail {REDACTED}"
    assert EMAIL not in "".join(event.model_dump_json() for event in events)
    assert events[-1].type == "response.completed"


async def test_a_screened_stream_keeps_the_reasoning_before_its_web_search(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    # The screen holds the summary back: a hosted item starting releases it first, in its place.
    fake.state.set_scenario(Scenario(tool_call=True, reasoning="Searching.", content="Found."))
    stream = await sdk.responses.create(
        model="codex-responses",
        input="weather",
        tools=[WEB_SEARCH],
        reasoning={"effort": "low", "summary": "auto"},
        stream=True,
    )
    events = [event async for event in stream]

    done = [e.item for e in events if e.type == "response.output_item.done"]
    assert [item.type for item in done] == ["reasoning", "web_search_call", "message"]
    said = [e for e in events if e.type == "response.reasoning_text.delta"]
    assert "".join(e.delta for e in said) == "Searching."
    assert {e.output_index for e in said} == {0}
    final = events[-1]
    assert final.type == "response.completed"
    assert [item.type for item in final.response.output] == [i.type for i in done]


async def test_a_streamed_mcp_call_s_arguments_are_screened_in_their_deltas(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    said = {"to": EMAIL}
    fake.state.set_scenario(Scenario(tool_call=True, tool_arguments=said, content="Sent."))
    stream = await sdk.responses.create(
        model="codex-responses", input="mail", tools=[MCP], stream=True
    )
    events = [event async for event in stream]

    deltas = [e for e in events if e.type == "response.mcp_call_arguments.delta"]
    assert "".join(e.delta for e in deltas) == f'{{"to":"{REDACTED}"}}'
    assert EMAIL not in "".join(event.model_dump_json() for event in events)


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


async def test_a_streamed_citation_moves_with_the_redacted_text(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    fake.state.set_scenario(Scenario(tool_call=True, content=CITED))
    stream = await sdk.responses.create(
        model="codex-responses", input="mail", tools=[WEB_SEARCH], stream=True
    )
    events = [event async for event in stream]

    (added,) = [e for e in events if e.type == "response.output_text.annotation.added"]
    said = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert said == CITED_SCREENED and added.model_dump()["annotation"]["end_index"] == len(said)
    completed = events[-1]
    assert completed.type == "response.completed"
    final = completed.response.output[-1].model_dump()["content"][0]
    assert final["text"] == CITED_SCREENED
    assert [a["end_index"] for a in final["annotations"]] == [len(CITED_SCREENED)]


async def test_a_later_message_s_streamed_citation_counts_from_its_own_start(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    preamble = f"Looking up {LONG_EMAIL}. "
    fake.state.set_scenario(Scenario(tool_call=True, preamble=preamble, content="Sunny in Paris."))
    stream = await sdk.responses.create(
        model="codex-responses", input="mail", tools=[WEB_SEARCH], stream=True
    )
    events = [event async for event in stream]

    (added,) = [e for e in events if e.type == "response.output_text.annotation.added"]
    assert added.model_dump()["annotation"]["end_index"] == len("Sunny in Paris.")
    completed = events[-1]
    assert completed.type == "response.completed"
    texts = [i.model_dump()["content"][0]["text"] for i in completed.response.output[::2]]
    assert texts == [f"Looking up {REDACTED}. ", "Sunny in Paris."]


CARD = "4111 1111 1111 1111"
# A card a word a delta, the citation's event after its first two words (OpenAI may send an
# annotation amid the text): the text held back for screening is not released early.
SPLIT = Scenario(tool_call=True, content=f"Pay with {CARD} today.", cite_after_deltas=4)
SPLIT_SCREENED = "Pay with [REDACTED:credit_card] today."


async def test_a_citation_amid_a_split_find_releases_none_of_it(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    fake.state.set_scenario(SPLIT)
    stream = await sdk.responses.create(
        model="codex-responses", input="pay", tools=[WEB_SEARCH], stream=True
    )
    events = [event async for event in stream]

    said = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert said == SPLIT_SCREENED
    (added,) = [e for e in events if e.type == "response.output_text.annotation.added"]
    cited = added.model_dump()["annotation"]
    assert (cited["start_index"], cited["end_index"]) == (0, len(SPLIT_SCREENED))
    final = events[-1].model_dump()["response"]["output"][-1]["content"][0]
    assert final["text"] == SPLIT_SCREENED
    assert [a["end_index"] for a in final["annotations"]] == [len(SPLIT_SCREENED)]


async def test_a_chat_stream_s_citation_amid_a_split_find_releases_none_of_it(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    fake.state.set_scenario(SPLIT)
    messages: Any = [{"role": "user", "content": "pay"}]
    stream = await sdk.chat.completions.create(
        model="codex-responses", messages=messages, tools=[WEB_SEARCH], stream=True
    )
    deltas = [chunk.choices[0].delta async for chunk in stream if chunk.choices]

    assert "".join(d.content or "" for d in deltas) == SPLIT_SCREENED
    cited = [a for d in deltas for a in (d.model_extra or {}).get("annotations") or []]
    assert [a["url_citation"]["end_index"] for a in cited] == [len(SPLIT_SCREENED)]
