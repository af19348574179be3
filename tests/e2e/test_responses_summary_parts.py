"""A Responses upstream's reasoning summary of several parts (OpenAI's come a paragraph a part:
a "**title**" and its text each), streamed to a Responses caller that keeps its reasoning items
(Codex: `include: ["reasoning.encrypted_content"]`) as those parts, each with its
`summary_index`, as the final item has them; a chat caller gets them as paragraphs."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import RouterHandle, StartRouter
from tests.e2e.codex_turns import OPENING, config, streamed

PARTS = ["**Reading the task**", "The file must say hello.", "**Writing it**\n- one line"]


@pytest.fixture
async def router(fake: FakeUpstream, start_router: StartRouter) -> RouterHandle:
    return await start_router(config(fake))


def part_events(events: list[Any], kind: str) -> list[tuple[int, str]]:
    return [(e.summary_index, getattr(e, "text", "")) for e in events if e.type == kind]


async def test_each_summary_part_streams_as_a_part_of_its_own(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    fake.state.set_scenario(Scenario(content="Done.", reasoning="\n\n".join(PARTS)))
    events, response = await streamed(sdk, "codex-responses", OPENING)

    reasoning = response.output[0]
    assert [part.text for part in reasoning.summary] == PARTS
    added = part_events(events, "response.reasoning_summary_part.added")
    assert added == [(0, ""), (1, ""), (2, "")]
    done = [(e.summary_index, e.part.text) for e in events if e.type.endswith("summary_part.done")]
    assert done == list(enumerate(PARTS))
    assert part_events(events, "response.reasoning_summary_text.done") == list(enumerate(PARTS))
    deltas: dict[int, str] = {}
    for event in events:
        if event.type == "response.reasoning_summary_text.delta":
            assert event.item_id == reasoning.id
            deltas[event.summary_index] = deltas.get(event.summary_index, "") + event.delta
    assert deltas == dict(enumerate(PARTS))
    item_done = next(e.item for e in events if e.type == "response.output_item.done")
    assert item_done.model_dump() == reasoning.model_dump()


async def test_a_chat_caller_reads_the_parts_as_paragraphs(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    fake.state.set_scenario(Scenario(content="Done.", reasoning="\n\n".join(PARTS)))
    stream = await sdk.chat.completions.create(
        model="codex-responses",
        messages=[{"role": "user", "content": "hi"}],
        reasoning_effort="medium",
        stream=True,
        extra_body={"include": ["reasoning.encrypted_content"]},
    )
    said = ""
    async for chunk in stream:
        for choice in chunk.choices:
            said += getattr(choice.delta, "reasoning_content", None) or ""
    assert said == "\n\n".join(PARTS)


async def test_a_chat_caller_hands_the_streamed_items_back_as_they_came(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    """The `reasoning_items` of a stream's deltas (the item's opening, each later part's name,
    the whole item) handed back on the message: the upstream gets the one item, not the
    stream's marks as items of their own (which it refuses, and the reasoning was dropped)."""
    fake.state.set_scenario(Scenario(content="Done.", reasoning="\n\n".join(PARTS)))
    asks: dict[str, Any] = {"include": ["reasoning.encrypted_content"], "reasoning_effort": "low"}
    hello: Any = [{"role": "user", "content": "hi"}]
    stream = await sdk.chat.completions.create(
        model="codex-responses", messages=hello, stream=True, extra_body=asks
    )
    items: list[Any] = []
    async for chunk in stream:
        for choice in chunk.choices:
            items += (choice.delta.model_extra or {}).get("reasoning_items") or []
    assert len(items) == 4  # the opening, parts 1 and 2, the whole item
    message = {"role": "assistant", "content": "Done.", "reasoning_items": items}
    calls = len(fake.state.records)
    again: Any = [*hello, message, {"role": "user", "content": "more"}]
    await sdk.chat.completions.create(model="codex-responses", messages=again, extra_body=asks)
    assert len(fake.state.records) == calls + 1  # not made again without the reasoning
    sent = fake.state.records[-1].body["input"]
    reasoning = [entry for entry in sent if entry.get("type") == "reasoning"]
    assert [entry["encrypted_content"] for entry in reasoning] == [items[-1]["encrypted_content"]]
