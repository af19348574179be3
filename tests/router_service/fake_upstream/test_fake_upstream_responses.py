"""The fake's Responses API (`/v1/responses`) answers as OpenAI does: what it sends is what the
openai SDK's own types take (`Response`, the stream events), under the chat endpoint's
Scenarios; and its chat endpoint refuses the Responses-only models as OpenAI does."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import TypeAdapter

from router_service.fake_upstream import FakeUpstream, Scenario
from router_service.fake_upstream._responses_api import REFUSAL
from tests.router_service.fake_upstream.helpers import chat_body

EVENTS: TypeAdapter[ResponseStreamEvent] = TypeAdapter(ResponseStreamEvent)
TOOL = {"type": "function", "name": "lookup", "parameters": {"type": "object"}}


def sdk(fake: FakeUpstream) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=fake.base_url, api_key="k1", max_retries=0)


async def test_a_response_is_the_sdks_response(
    fake: FakeUpstream, client: httpx.AsyncClient
) -> None:
    fake.state.set_scenario(Scenario(reasoning="thinking hard", cached_tokens=1))
    body = {"model": "gpt-5-pro", "input": "hello there", "reasoning": {"summary": "auto"}}
    answer = (await client.post("/responses", json=body)).json()

    response = Response.model_validate(answer)
    assert response.output_text == "Echo: hello there"
    assert [item.type for item in response.output] == ["reasoning", "message"]
    assert response.usage is not None and response.usage.output_tokens_details.reasoning_tokens == 2
    assert response.usage.input_tokens_details.cached_tokens == 1


async def test_the_stream_is_the_sdks_events_in_openais_order(fake: FakeUpstream) -> None:
    async with sdk(fake) as client:
        stream = await client.responses.create(model="o3-pro", input="one two", stream=True)
        kinds = [event.type async for event in stream]

    assert kinds == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        *["response.output_text.delta"] * 3,
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]


async def test_a_tool_call_streams_as_a_function_call_item(
    fake: FakeUpstream, client: httpx.AsyncClient
) -> None:
    fake.state.set_scenario(Scenario(tool_call=True, tool_arguments={"q": 1}))
    body = {"model": "gpt-5-codex", "input": "hi", "tools": [TOOL], "stream": True}
    async with client.stream("POST", "/responses", json=body) as response:
        lines = [line async for line in response.aiter_lines() if line.startswith("data: ")]
    events = [EVENTS.validate_json(line[6:]) for line in lines]

    final = events[-1]
    assert final.type == "response.completed"
    [call] = final.response.output
    assert call.type == "function_call" and call.arguments == '{"q":1}'
    assert "response.function_call_arguments.delta" in [e.type for e in events]


async def test_max_output_tokens_leaves_it_incomplete_and_is_refused_under_16(
    fake: FakeUpstream, client: httpx.AsyncClient
) -> None:
    fake.state.set_scenario(Scenario(content=" ".join(["word"] * 20)))
    cut = (await client.post("/responses", json=_body(max_output_tokens=16))).json()
    refused = await client.post("/responses", json=_body(max_output_tokens=1))

    response = Response.model_validate(cut)
    assert response.status == "incomplete" and response.incomplete_details is not None
    assert response.incomplete_details.reason == "max_output_tokens"
    assert len(response.output_text.split()) == 16
    assert refused.status_code == 400 and "max_output_tokens" in refused.text


@pytest.mark.parametrize("key", ["messages", "stop", "max_tokens", "n"])
async def test_chat_parameters_are_unknown_to_it(client: httpx.AsyncClient, key: str) -> None:
    answer = await client.post("/responses", json=_body(**{key: 1}))

    assert answer.status_code == 400
    assert answer.json()["error"]["message"] == f"Unknown parameter: '{key}'."


async def test_a_wrapped_error_mid_stream_is_a_response_failed_event(fake: FakeUpstream) -> None:
    fake.state.set_scenario(Scenario(wrapped_error_at_chunk=3))
    async with sdk(fake) as client:
        stream = await client.responses.create(model="o3-pro", input="one two", stream=True)
        events = [event async for event in stream]

    assert [e.type for e in events] == [
        "response.created",
        "response.in_progress",
        "response.failed",
    ]
    failed = events[-1]
    assert failed.type == "response.failed" and failed.response.error is not None
    assert failed.response.error.code == "server_error"


async def test_its_chat_endpoint_refuses_the_responses_only_models(
    client: httpx.AsyncClient,
) -> None:
    refused = await client.post("/chat/completions", json=chat_body(model="gpt-5-pro"))
    served = await client.post("/chat/completions", json=chat_body(model="gpt-5"))

    assert refused.status_code == 400
    message = "This model is only supported in v1/responses and not in v1/chat/completions."
    assert refused.json()["error"]["message"] == message
    assert served.status_code == 200


async def test_azures_v1_path_takes_its_api_key(fake: FakeUpstream) -> None:
    async with httpx.AsyncClient(base_url=fake.url, headers={"api-key": "az"}) as http:
        answer = await http.post("/openai/v1/responses", json=_body())

    assert Response.model_validate(answer.json()).output_text == "Echo: hi"
    assert fake.state.calls()[-1].key == "az"


def _body(**extra: Any) -> dict[str, Any]:
    return {"model": "gpt-5-pro", "input": [{"role": "user", "content": "hi"}], **extra}


async def test_a_refusal_is_a_refusal_part_and_its_events(
    fake: FakeUpstream, client: httpx.AsyncClient
) -> None:
    fake.state.set_scenario(Scenario(kind=REFUSAL, content="I can't help with that."))
    answer = (await client.post("/responses", json={"model": "o3-pro", "input": "hi"})).json()
    item = Response.model_validate(answer).output[0]
    assert item.type == "message"
    assert item.content[0].model_dump() == {"type": "refusal", "refusal": "I can't help with that."}

    async with sdk(fake) as sdk_client:
        stream = await sdk_client.responses.create(model="o3-pro", input="hi", stream=True)
        events = [event async for event in stream]
    deltas = [e.delta for e in events if e.type == "response.refusal.delta"]
    assert "".join(deltas) == "I can't help with that."
    assert "response.output_text.delta" not in [e.type for e in events]
