"""Stored Responses end to end: the official `openai` SDK → the edge → the router (which keeps
them in its state store) → the fake upstream. Chaining with `previous_response_id` (plain and
streamed), a tool round trip, `item_reference`, and what is not found or not kept."""

from __future__ import annotations

from typing import Any

import openai
import pytest
from openai.types.responses import FunctionToolParam, ResponseInputParam
from openai.types.responses.response_input_param import ItemReference

from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream, Scenario
from tests.e2e.conftest import Open

A, B = "sk-client-a", "sk-client-b"
WEATHER: FunctionToolParam = {
    "type": "function",
    "name": "get_weather",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    "strict": False,
}


def kept(response: Any) -> bool:
    """The Response's `store` (not a field of the SDK's model: an extra one)."""
    return bool(response.model_extra["store"])


def reference(item_id: str | None) -> ItemReference:
    assert item_id is not None
    return {"type": "item_reference", "id": item_id}


def upstream_messages(fake: FakeUpstream) -> list[dict[str, Any]]:
    record = fake.state.last(path="/chat/completions")
    assert record is not None
    messages: list[dict[str, Any]] = record.body["messages"]
    return messages


async def test_previous_response_id_continues_the_conversation(
    open_sdk: Open, fake: FakeUpstream
) -> None:
    sdk = await open_sdk()
    raw = await sdk.responses.with_raw_response.create(
        model="chain", input="my name is Ann", instructions="Be brief."
    )
    first = raw.parse()
    assert raw.http_response.json()["store"] is True
    second = await sdk.responses.create(
        model="chain", input="what is my name?", previous_response_id=first.id
    )
    assert second.previous_response_id == first.id and kept(second)
    third = await sdk.responses.create(
        model="chain", input="and again?", previous_response_id=second.id, instructions="Shout."
    )
    assert third.output_text == "Echo: and again?"
    # The chain's messages, the previous instructions not carried over (OpenAI's rule).
    assert upstream_messages(fake) == [
        {"role": "system", "content": "Shout."},
        {"role": "user", "content": "my name is Ann"},
        {"role": "assistant", "content": "Echo: my name is Ann"},
        {"role": "user", "content": "what is my name?"},
        {"role": "assistant", "content": "Echo: what is my name?"},
        {"role": "user", "content": "and again?"},
    ]


async def test_a_streamed_response_is_stored_and_continued_streaming(
    open_sdk: Open, fake: FakeUpstream
) -> None:
    sdk = await open_sdk()
    async with sdk.responses.stream(model="chain", input="first words") as stream:
        created = [e async for e in stream if e.type == "response.created"]
        first = await stream.get_final_response()
    assert kept(created[0].response) and kept(first)
    async with sdk.responses.stream(
        model="chain", input="second words", previous_response_id=first.id
    ) as stream:
        second = await stream.get_final_response()
    assert second.output_text == "Echo: second words" and kept(second)
    assert upstream_messages(fake) == [
        {"role": "user", "content": "first words"},
        {"role": "assistant", "content": "Echo: first words"},
        {"role": "user", "content": "second words"},
    ]


async def test_a_tool_round_trip_by_previous_response_id(
    open_sdk: Open, fake: FakeUpstream
) -> None:
    sdk = await open_sdk()
    fake.state.set_scenario(Scenario(tool_call=True, tool_arguments={"city": "Paris"}))
    first = await sdk.responses.create(model="chain", input="weather in Paris?", tools=[WEATHER])
    [call] = first.output
    assert call.type == "function_call"
    output: ResponseInputParam = [
        {"type": "function_call_output", "call_id": call.call_id, "output": "sunny"}
    ]
    second = await sdk.responses.create(
        model="chain", input=output, previous_response_id=first.id, tools=[WEATHER]
    )
    assert second.output_text == "Echo: weather in Paris?"
    arguments = '{"city":"Paris"}'
    assert upstream_messages(fake) == [
        {"role": "user", "content": "weather in Paris?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": call.call_id,
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": arguments},
                }
            ],
        },
        {"role": "tool", "tool_call_id": call.call_id, "content": "sunny"},
    ]
    (listed,) = (await sdk.responses.input_items.list(second.id)).data  # the output as given
    assert listed.model_dump(exclude_none=True) == {
        **output[0],
        "id": f"fco_{second.id.removeprefix('resp_')}_in1",
        "status": "completed",
    }


@pytest.mark.parametrize("typed", [True, False])
async def test_an_item_reference_stands_for_the_stored_item(
    open_sdk: Open, fake: FakeUpstream, typed: bool
) -> None:
    # OpenAI's item reference may leave out its `type`: an item of an `id` alone is one.
    sdk = await open_sdk()
    first = await sdk.responses.create(model="chain", input="hello")
    [message] = first.output
    assert message.id is not None
    follow_up: ResponseInputParam = [
        {"role": "user", "content": "hello"},
        reference(message.id) if typed else {"id": message.id},
        {"role": "user", "content": "more"},
    ]
    await sdk.responses.create(model="chain", input=follow_up)
    assert upstream_messages(fake) == [
        {"role": "user", "content": "hello"},
        {"role": "assistant", "content": "Echo: hello"},
        {"role": "user", "content": "more"},
    ]


async def test_unknown_ids_are_openais_404(open_sdk: Open, fake: FakeUpstream) -> None:
    sdk = await open_sdk()
    with pytest.raises(openai.NotFoundError) as previous:
        await sdk.responses.create(model="chain", input="x", previous_response_id="resp_nope")
    assert previous.value.body == {
        "message": "Previous response with id 'resp_nope' not found.",
        "type": "invalid_request_error",
        "param": "previous_response_id",
        "code": "previous_response_not_found",
    }
    absurd = "resp_" + "x" * 200  # longer than any id: one the router does not have
    with pytest.raises(openai.NotFoundError) as too_long:
        await sdk.responses.create(model="chain", input="x", previous_response_id=absurd)
    assert too_long.value.code == "previous_response_not_found"
    missing = f"msg_{'a' * 32}"
    for item_id in (missing, "foreign_1"):  # one of ours that is gone, one we never made
        with pytest.raises(openai.NotFoundError) as item:
            await sdk.responses.create(model="chain", input=[reference(item_id)])
        assert item.value.message.endswith(f"Item with id '{item_id}' not found.")
        assert item.value.param == "input"
    assert fake.state.calls() == []


async def test_another_clients_response_is_not_found(open_sdk: Open) -> None:
    sdk_a = await open_sdk(keys=(A, B))
    first = await sdk_a.responses.create(model="chain", input="secret")
    async with openai.AsyncOpenAI(
        base_url=str(sdk_a.base_url), api_key=B, max_retries=0, timeout=10
    ) as sdk_b:
        with pytest.raises(openai.NotFoundError) as caught:
            await sdk_b.responses.create(model="chain", input="x", previous_response_id=first.id)
        with pytest.raises(openai.NotFoundError):
            await sdk_b.responses.create(model="chain", input=[reference(first.output[0].id)])
    assert caught.value.code == "previous_response_not_found"
    await sdk_a.responses.create(model="chain", input="x", previous_response_id=first.id)


async def test_a_stored_response_expires_by_the_routers_clock(open_sdk: Open) -> None:
    clock = ManualClock()
    sdk = await open_sdk(clock=clock, store_ttl_s=60)
    first = await sdk.responses.create(model="chain", input="hi")
    clock.advance(59)
    await sdk.responses.create(model="chain", input="x", previous_response_id=first.id)
    clock.advance(1)
    with pytest.raises(openai.NotFoundError):
        await sdk.responses.create(model="chain", input="x", previous_response_id=first.id)


async def test_what_is_not_kept_says_store_false(open_sdk: Open) -> None:
    sdk = await open_sdk(max_stored_bytes=4000)  # the Response itself counts too
    unasked = await sdk.responses.create(model="chain", input="hi", store=False)
    too_large = await sdk.responses.create(model="chain", input="x" * 1000)
    stored = await sdk.responses.create(model="chain", input="short")
    assert [kept(r) for r in (unasked, too_large, stored)] == [False, False, True]
    for response in (unasked, too_large):
        with pytest.raises(openai.NotFoundError):
            await sdk.responses.create(model="chain", input="x", previous_response_id=response.id)


async def test_storing_turned_off_refuses_continuations(open_sdk: Open) -> None:
    sdk = await open_sdk(store=False)
    first = await sdk.responses.create(model="chain", input="hi")
    assert not kept(first)
    with pytest.raises(openai.BadRequestError) as caught:
        await sdk.responses.create(model="chain", input="x", previous_response_id=first.id)
    assert caught.value.param == "previous_response_id"
    assert "responses.store: false" in caught.value.message


async def test_past_its_quota_a_clients_response_says_store_false(open_sdk: Open) -> None:
    # The edge's own StoreResponse counts against the client's stored-bytes quota: past it the
    # answer still comes, unstored, and naming it later is OpenAI's 404.
    sdk = await open_sdk(client_stored_bytes=2048)
    first = await sdk.responses.create(model="chain", input="hello")
    second = await sdk.responses.create(model="chain", input="x" * 2000)
    assert (kept(first), kept(second)) == (True, False)
    assert second.output_text
    with pytest.raises(openai.NotFoundError) as caught:
        await sdk.responses.create(model="chain", input="again", previous_response_id=second.id)
    assert caught.value.code == "previous_response_not_found"
    await sdk.responses.create(model="chain", input="again", previous_response_id=first.id)


@pytest.mark.parametrize("finish_reason", ["stop", "content_filter"])
async def test_an_empty_answer_streamed_is_stored_and_continued_as_unary(
    open_sdk: Open, fake: FakeUpstream, finish_reason: str
) -> None:
    """An answer without a word (a filter's cut, a model that said nothing): the unary Response
    holds an empty message item, so the streamed one must too (it had no output at all), and
    both continue alike (the streamed one's turn was missing: two user turns in a row)."""
    sdk = await open_sdk()
    fake.state.set_scenario(Scenario(content="", finish_reason=finish_reason))
    unary = await sdk.responses.create(model="chain", input="say nothing")
    stream = await sdk.responses.create(model="chain", input="say nothing", stream=True)
    events = [event async for event in stream]
    last = events[-1]  # response.completed, or .incomplete for the filter
    assert last.type in ("response.completed", "response.incomplete")
    streamed = last.response

    def shape(response: Any) -> list[dict[str, Any]]:
        return [{**item.to_dict(), "id": None} for item in response.output]

    assert shape(streamed) == shape(unary) and streamed.status == unary.status
    assert shape(await sdk.responses.retrieve(streamed.id)) == shape(unary)
    types = [event.type for event in events]
    assert "response.output_item.added" in types and "response.output_text.done" in types
    fake.state.set_scenario(Scenario())
    sent = []
    for response in (unary, streamed):
        await sdk.responses.create(model="chain", input="and?", previous_response_id=response.id)
        sent.append(upstream_messages(fake))
    assert (
        sent[0]
        == sent[1]
        == [
            {"role": "user", "content": "say nothing"},
            {"role": "assistant", "content": ""},
            {"role": "user", "content": "and?"},
        ]
    )
