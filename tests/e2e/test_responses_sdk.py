"""The Responses API as a user sees it: the official `openai` SDK's `client.responses` → the
edge's `POST /v1/responses` → the router → the fake upstream (which speaks chat completions)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import openai
import pytest
from openai.types.responses import FunctionToolParam, Response, ResponseInputParam

from router_service.fake_upstream import FakeUpstream, Scenario
from tests.http_edge.harness import Edge

StartEdge = Callable[..., Awaitable[Edge]]
WEATHER: FunctionToolParam = {
    "type": "function",
    "name": "get_weather",
    "description": "Current weather of a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    "strict": False,
}


def upstream_body(fake: FakeUpstream) -> dict[str, Any]:
    record = fake.state.last(path="/chat/completions")
    assert record is not None
    return record.body


def valid(response: Response) -> Response:
    """The SDK builds its models without validating: validate what came, strictly."""
    return Response.model_validate(response.model_dump(mode="json", by_alias=True))


async def test_create_text_with_instructions(sdk: openai.AsyncOpenAI, fake: FakeUpstream) -> None:
    raw = await sdk.responses.with_raw_response.create(
        model="chain", input="hello world", instructions="Be brief.", metadata={"k": "v"}
    )
    response = valid(raw.parse())
    assert response.output_text == "Echo: hello world"
    assert response.id.startswith("resp_") and response.object == "response"
    assert response.status == "completed"
    assert raw.http_response.json()["store"] is True  # kept by the router (test_responses_stored)
    assert response.instructions == "Be brief." and response.metadata == {"k": "v"}
    assert response.usage is not None
    assert (response.usage.input_tokens, response.usage.output_tokens) == (4, 3)
    assert response.usage.total_tokens == 7
    assert raw.headers["x-switchboard-deployment"] == "alpha/model-a"
    assert raw.headers["x-switchboard-attempts"] == "1"
    assert upstream_body(fake)["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "hello world"},
    ]


async def test_failover_stays_invisible(sdk: openai.AsyncOpenAI, fake: FakeUpstream) -> None:
    fake.state.set_scenario(Scenario.server_error(502), model="model-a")
    raw = await sdk.responses.with_raw_response.create(model="chain", input="hi")
    assert raw.parse().output_text == "Echo: hi"
    assert raw.headers["x-switchboard-deployment"] == "beta/model-b"
    assert raw.headers["x-switchboard-attempts"] == "2"


async def test_tool_call_round_trip(sdk: openai.AsyncOpenAI, fake: FakeUpstream) -> None:
    fake.state.set_scenario(Scenario(tool_call=True, tool_arguments={"city": "Paris"}))
    question: ResponseInputParam = [{"role": "user", "content": "weather in Paris?"}]
    first = valid(await sdk.responses.create(model="chain", input=question, tools=[WEATHER]))
    [call] = first.output
    assert call.type == "function_call" and call.id is not None and call.id.startswith("fc_")
    assert (call.name, json.loads(call.arguments)) == ("get_weather", {"city": "Paris"})
    assert upstream_body(fake)["tools"] == [
        {
            "type": "function",
            "function": {k: v for k, v in WEATHER.items() if k != "type"},
        }
    ]
    # The caller sends the whole conversation back, the SDK's way: the output items as they
    # came (`first.output`), then the call's output.
    follow_up: ResponseInputParam = [
        *question,
        *first.output,  # type: ignore[list-item]  # models, as the SDK documents
        {"type": "function_call_output", "call_id": call.call_id, "output": "sunny"},
    ]
    second = await sdk.responses.create(model="chain", input=follow_up, tools=[WEATHER])
    assert second.output_text == "Echo: weather in Paris?"
    messages = upstream_body(fake)["messages"]
    assert messages[1]["tool_calls"] == [
        {
            "id": call.call_id,
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
        }
    ]
    assert messages[2] == {"role": "tool", "tool_call_id": call.call_id, "content": "sunny"}


async def test_a_length_finish_is_incomplete(sdk: openai.AsyncOpenAI, fake: FakeUpstream) -> None:
    fake.state.set_scenario(Scenario(finish_reason="length"))
    response = valid(await sdk.responses.create(model="chain", input="hi", max_output_tokens=2))
    assert response.status == "incomplete"
    assert response.incomplete_details is not None
    assert response.incomplete_details.reason == "max_output_tokens"
    assert upstream_body(fake)["max_completion_tokens"] == 2


async def test_a_built_in_tool_is_refused(sdk: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        await sdk.responses.create(model="chain", input="news?", tools=[{"type": "web_search"}])
    assert caught.value.param == "tools[0].type"
    assert caught.value.type == "invalid_request_error"


async def test_an_upstream_failure_is_the_sdks_typed_error(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    fake.state.set_scenario(Scenario.rate_limited(retry_after="9"))
    with pytest.raises(openai.RateLimitError) as caught:
        await sdk.responses.create(model="chain", input="hi")
    assert caught.value.response.headers["retry-after"] == "9"
    with pytest.raises(openai.NotFoundError):
        await sdk.responses.create(model="no-such-model", input="hi")


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(
    ("fields", "param", "words"),
    [
        ({"max_output_tokens": 0}, "max_output_tokens", "'max_output_tokens': 0"),
        ({"input": []}, "input", "`input`"),
    ],
)
async def test_a_refusal_names_the_responses_field(
    sdk: openai.AsyncOpenAI, fields: dict[str, Any], param: str, words: str, stream: bool
) -> None:
    """The router's checks are chat's (`max_completion_tokens`, `messages`): a Responses
    caller reads the field it sent, in `param` and in the message."""
    body: dict[str, Any] = {"model": "chain", "input": "hi", "stream": stream, **fields}
    with pytest.raises(openai.BadRequestError) as caught:
        await sdk.responses.create(**body)
    assert caught.value.param == param
    assert words in caught.value.message


async def test_truncation_is_echoed_as_the_caller_sent_it(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    """`truncation: "auto"` reads back `auto` (not `disabled`) in the answer, the stream's
    Responses and the stored one; unset, `disabled` (OpenAI's default). No upstream gets it."""
    answered = valid(await sdk.responses.create(model="chain", input="hi", truncation="auto"))
    assert answered.truncation == "auto"
    assert "truncation" not in upstream_body(fake)
    assert (await sdk.responses.retrieve(answered.id)).truncation == "auto"
    stream = await sdk.responses.create(model="chain", input="hi", truncation="auto", stream=True)
    events = [event async for event in stream]
    ends = [e for e in events if e.type in ("response.created", "response.completed")]
    assert [e.response.truncation for e in ends] == ["auto", "auto"]
    plain = await sdk.responses.create(model="chain", input="hi")
    assert plain.truncation == "disabled"
    with pytest.raises(openai.BadRequestError) as caught:
        await sdk.responses.create(model="chain", input="hi", extra_body={"truncation": "often"})
    assert caught.value.param == "truncation"
