"""The openai SDK's chat stream helper (`client.chat.completions.stream`) adds each delta to its
snapshot, merging list entries by their `index`: the entries of our delta extensions (a
Responses upstream's `reasoning_items` of several summary parts, a web search's
`hosted_events` and `annotations`, Claude's `thinking_blocks`) each come numbered, so the
helper lists them all, and `get_final_completion()` carries what the unary answer carries."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import RouterHandle, StartRouter
from tests.e2e import codex_turns
from tests.e2e.test_responses_hosted_tools import CITATION, WEB_SEARCH
from tests.e2e.test_responses_hosted_tools import config as hosted_config

PARTS = ["**Reading the task**", "The file must say hello.", "**Writing it**\n- one line"]
HELLO: Any = [{"role": "user", "content": "hi"}]
KEEPS: Any = {"include": ["reasoning.encrypted_content"], "reasoning_effort": "low"}
REASONS: Any = {"model": "codex-responses", "messages": HELLO, "extra_body": KEEPS}


@pytest.fixture
async def router(fake: FakeUpstream, start_router: StartRouter) -> RouterHandle:
    out = codex_turns.config(fake)
    out["models"]["hosted"] = hosted_config(fake)["models"]["hosted"]
    return await start_router(out)


async def streamed(sdk: openai.AsyncOpenAI, **call: Any) -> tuple[dict[str, Any], list[Any]]:
    """The helper's final message (as a dict) and the raw deltas' extras, in order."""
    extras: list[Any] = []
    async with sdk.chat.completions.stream(**call) as stream:
        async for event in stream:
            if event.type == "chunk":
                extras += [c.delta.model_extra for c in event.chunk.choices if c.delta.model_extra]
        final = await stream.get_final_completion()
    return final.choices[0].message.model_dump(), extras


def alike(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`entries` without their stream number, an answer's places and each call's own ids."""
    drop = ("index", "precedes", "follows", "id", "encrypted_content")
    return [{k: v for k, v in entry.items() if k not in drop} for entry in entries]


async def test_reasoning_items_of_several_parts(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    fake.state.set_scenario(Scenario(content="Done.", reasoning="\n\n".join(PARTS)))
    message, extras = await streamed(sdk, **REASONS)

    items = message["reasoning_items"]  # the opening, parts 1 and 2, the whole item
    assert [item["index"] for item in items] == [0, 1, 2, 3]
    said = [item for extra in extras for item in extra.get("reasoning_items") or ()]
    assert items == said  # as the stream said them, none merged into another
    assert [item.get("summary_index") for item in items[1:3]] == [1, 2]
    assert message["content"] == "Done."
    assert message["reasoning_content"] == "\n\n".join(PARTS)
    unary = (await sdk.chat.completions.create(**REASONS)).choices[0].message.model_dump()
    assert alike(items[-1:]) == alike(unary["reasoning_items"])
    assert [part["text"] for part in items[-1]["summary"]] == PARTS


async def test_the_final_items_go_back_as_the_one_item(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    """The snapshot's items (numbered) handed back: the upstream gets the item, no `index`."""
    fake.state.set_scenario(Scenario(content="Done.", reasoning="\n\n".join(PARTS)))
    message, _ = await streamed(sdk, **REASONS)
    turn = {"role": "assistant", "content": "Done.", "reasoning_items": message["reasoning_items"]}
    again: Any = [*HELLO, turn, {"role": "user", "content": "more"}]
    await sdk.chat.completions.create(**{**REASONS, "messages": again})
    sent = fake.state.records[-1].body["input"]
    (reasoning,) = [entry for entry in sent if entry.get("type") == "reasoning"]
    assert "index" not in reasoning
    assert reasoning["encrypted_content"] == message["reasoning_items"][-1]["encrypted_content"]


async def test_web_search_events_and_annotations(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    fake.state.set_scenario(Scenario(tool_call=True, content="Paris is sunny."))
    call: Any = {"model": "hosted", "messages": HELLO, "tools": [WEB_SEARCH]}
    message, extras = await streamed(sdk, **call)

    events = message["hosted_events"]
    assert len(events) > 1 and [event["index"] for event in events] == list(range(len(events)))
    said = [event for extra in extras for event in extra.get("hosted_events") or ()]
    assert events == said
    kinds = [event["type"] for event in events]
    assert kinds[0] == "response.output_item.added" and kinds[-1] == "response.output_item.done"
    assert message["content"] == "Paris is sunny."
    unary = (await sdk.chat.completions.create(**call)).choices[0].message.model_dump()
    assert alike(message["annotations"]) == alike(unary["annotations"])
    (annotation,) = unary["annotations"]
    assert annotation["url_citation"]["url"] == CITATION["url"]
    assert alike([events[-1]["item"]]) == alike(unary["hosted_items"])


async def test_claude_thinking_blocks(sdk: openai.AsyncOpenAI, fake: FakeUpstream) -> None:
    """A signed thinking block, then a redacted one: two `thinking_blocks` deltas."""
    thinks = Scenario(content="Hello.", reasoning="Greeting.", redacted_thinking="opaque")
    fake.state.set_scenario(thinks)
    call: Any = {"model": "codex-claude", "messages": HELLO, "reasoning_effort": "low"}
    message, _ = await streamed(sdk, **call)

    blocks = message["thinking_blocks"]
    assert [block["index"] for block in blocks] == [0, 1]
    assert [block["type"] for block in blocks] == ["thinking", "redacted_thinking"]
    unary = (await sdk.chat.completions.create(**call)).choices[0].message.model_dump()
    assert alike(blocks) == unary["thinking_blocks"]
    assert message["content"] == unary["content"] == "Hello."
