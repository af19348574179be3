"""A streamed tool call whose name comes after its first delta (vLLM serving Command A opens it
with `"name": ""`; other OpenAI-compatible servers send its id and arguments first): the
Responses stream announces its `function_call` item once the name is known, with it, and its
arguments in full; the Messages API starts its `tool_use` block so. The item was announced, and
ended, with the name `""` (LangChain reads a call's name from `output_item.added`: it called no
tool), the block started with it (the Anthropic SDK's message kept it)."""

from __future__ import annotations

from typing import Any

import anthropic
import pytest

from tests.conftest import StartRouter
from tests.e2e.chat_script import call, chunk, scripted_sdk
from tests.e2e.stream_harness import StartEdge

ARGUMENTS = '{"city":"Paris"}'
OPENINGS = {
    "empty-name": chunk(call({"name": "", "arguments": ""}, index=0, id="call_1")),
    "arguments-first": chunk(call({"arguments": '{"city":'}, index=0, id="call_1")),
}


def script(opening: str) -> list[dict[str, Any]]:
    said = '{"city":' if opening == "arguments-first" else ""
    return [
        chunk({"role": "assistant", "content": "Let me see."}),
        OPENINGS[opening],
        chunk(call({"name": "weather"}, index=0)),
        chunk(call({"arguments": ARGUMENTS.removeprefix(said)}, index=0)),
        chunk({}, "tool_calls"),
    ]


@pytest.mark.parametrize("opening", OPENINGS)
async def test_the_item_is_announced_with_its_name(
    start_router: StartRouter, start_edge: StartEdge, opening: str
) -> None:
    chunks = script(opening)
    async with (
        scripted_sdk(chunks, start_router, start_edge) as sdk,
        sdk.responses.stream(model="chain", input="hi") as stream,
    ):
        events = [event async for event in stream]
        final = await stream.get_final_response()

    added = [e.item for e in events if e.type == "response.output_item.added"]
    assert [(item.type, getattr(item, "name", None)) for item in added] == [
        ("message", None),
        ("function_call", "weather"),
    ]
    deltas = [e.delta for e in events if e.type == "response.function_call_arguments.delta"]
    assert "".join(deltas) == ARGUMENTS
    [item] = [item for item in final.output if item.type == "function_call"]
    assert (item.call_id, item.name, item.arguments) == ("call_1", "weather", ARGUMENTS)
    indexes = [e.output_index for e in events if hasattr(e, "output_index")]
    assert indexes == sorted(indexes)  # each item's events after the one before it
    numbers = [e.sequence_number for e in events]
    assert numbers == list(range(len(events)))


@pytest.mark.parametrize("opening", OPENINGS)
async def test_the_tool_use_block_starts_with_its_name(
    start_router: StartRouter, start_edge: StartEdge, opening: str
) -> None:
    async with scripted_sdk(script(opening), start_router, start_edge) as sdk:
        edge = str(sdk.base_url).removesuffix("/").removesuffix("/v1")
        async with (
            anthropic.AsyncAnthropic(base_url=edge, api_key="sk-caller", max_retries=0) as claude,
            claude.messages.stream(
                model="chain", max_tokens=100, messages=[{"role": "user", "content": "hi"}]
            ) as stream,
        ):
            events = [event async for event in stream]
            final = await stream.get_final_message()

    started = [e.content_block for e in events if e.type == "content_block_start"]
    assert [(b.type, getattr(b, "name", None)) for b in started] == [
        ("text", None),
        ("tool_use", "weather"),
    ]
    [block] = [b for b in final.content if b.type == "tool_use"]
    assert (block.id, block.name, block.input) == ("call_1", "weather", {"city": "Paris"})
    assert final.stop_reason == "tool_use"


async def test_a_call_named_late_beside_another_closes_in_order(
    start_router: StartRouter, start_edge: StartEdge
) -> None:
    """A call whose name comes after a parallel call was announced: the items are done in
    their output order (the late one's item was done before the other's, by chat index)."""
    chunks = [
        chunk({"role": "assistant", **call({"name": "", "arguments": ""}, index=0, id="call_1")}),
        chunk(call({"name": "time", "arguments": '{"city":"Rome"}'}, index=1, id="call_2")),
        chunk(call({"name": "weather", "arguments": ARGUMENTS}, index=0)),
        chunk({}, "tool_calls"),
    ]
    async with (
        scripted_sdk(chunks, start_router, start_edge) as sdk,
        sdk.responses.stream(model="chain", input="hi") as stream,
    ):
        events = [event async for event in stream]
        final = await stream.get_final_response()

    done = [e.output_index for e in events if e.type == "response.output_item.done"]
    assert done == sorted(done)
    said = [(i.call_id, i.name, i.arguments) for i in final.output if i.type == "function_call"]
    assert sorted(said) == [("call_1", "weather", ARGUMENTS), ("call_2", "time", '{"city":"Rome"}')]


ID_LATE = [
    chunk({"role": "assistant", **call({"arguments": '{"city":'}, index=0)}),
    chunk(call({"name": "weather"}, index=0, id="call_1")),
    chunk(call({"arguments": '"Paris"}'}, index=0)),
    chunk({}, "tool_calls"),
]


async def test_an_id_that_comes_with_the_late_name_is_the_calls(
    start_router: StartRouter, start_edge: StartEdge
) -> None:
    """The call's id comes with its name, after its first piece: the Responses item and the
    tool_use block, announced with the name, carry it (they had a made-up id, and none)."""
    async with scripted_sdk(ID_LATE, start_router, start_edge) as sdk:
        async with sdk.responses.stream(model="chain", input="hi") as stream:
            async for _ in stream:
                pass
            final = await stream.get_final_response()
        edge = str(sdk.base_url).removesuffix("/").removesuffix("/v1")
        async with (
            anthropic.AsyncAnthropic(base_url=edge, api_key="sk-caller", max_retries=0) as claude,
            claude.messages.stream(
                model="chain", max_tokens=100, messages=[{"role": "user", "content": "hi"}]
            ) as messages,
        ):
            message = await messages.get_final_message()

    [item] = [i for i in final.output if i.type == "function_call"]
    assert (item.call_id, item.name, item.arguments) == ("call_1", "weather", ARGUMENTS)
    [block] = [b for b in message.content if b.type == "tool_use"]
    assert (block.id, block.name, block.input) == ("call_1", "weather", {"city": "Paris"})
