"""The OpenAI Agents SDK (`openai-agents`) as a user points it at Switchboard: an `Agent` run by
`Runner` on the SDK's default `OpenAIResponsesModel` (the edge's `POST /v1/responses`) and on
`OpenAIChatCompletionsModel`, with an `AsyncOpenAI` client whose `base_url` is the real edge, in
front of a real router and the fake upstream (which speaks chat completions, as OpenAI does,
refusing what OpenAI refuses)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import openai
import pytest
from agents import (
    Agent,
    ModelSettings,
    OpenAIChatCompletionsModel,
    OpenAIResponsesModel,
    Runner,
    function_tool,
    set_tracing_disabled,
)
from agents.memory import OpenAIConversationsSession
from agents.models.interface import Model
from pydantic import BaseModel

from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import RouterHandle
from tests.http_edge.harness import Edge

StartEdge = Callable[..., Awaitable[Edge]]
MakeModel = Callable[[str, openai.AsyncOpenAI], Model]
MODELS: dict[str, MakeModel] = {
    "responses": lambda name, client: OpenAIResponsesModel(name, client),
    "chat": lambda name, client: OpenAIChatCompletionsModel(name, client),
}


@pytest.fixture(autouse=True)
def no_trace_export() -> None:
    """The SDK exports traces to OpenAI by default; there is no internet here, nor should a test
    send anything out."""
    set_tracing_disabled(True)


@pytest.fixture
async def client(router: RouterHandle, start_edge: StartEdge) -> AsyncIterator[openai.AsyncOpenAI]:
    edge = await start_edge(router)
    async with openai.AsyncOpenAI(
        base_url=f"{edge.base_url}/v1", api_key="sk-caller", max_retries=0, timeout=10
    ) as sdk:
        yield sdk


@pytest.fixture(params=sorted(MODELS))
def model(request: pytest.FixtureRequest, client: openai.AsyncOpenAI) -> Model:
    make: MakeModel = MODELS[request.param]
    return make("chain", client)


@function_tool
def get_weather(city: str) -> str:
    """The current weather of a city."""
    return f"sunny in {city}"


class Forecast(BaseModel):
    city: str
    sunny: bool


def chat_bodies(fake: FakeUpstream) -> list[dict[str, Any]]:
    return [call.body for call in fake.state.calls() if call.path.endswith("/chat/completions")]


def weather_agent(model: Model, **settings: Any) -> Agent[Any]:
    return Agent(
        name="forecaster",
        instructions="Answer with the tool's words.",
        model=model,
        tools=[get_weather],
        model_settings=ModelSettings(**settings),
    )


async def test_a_tool_round_trip_ends_with_the_final_text(model: Model, fake: FakeUpstream) -> None:
    fake.state.set_scenario(Scenario(tool_call=True, tool_arguments={"city": "Paris"}))
    result = await Runner.run(weather_agent(model), "weather in Paris?")
    assert result.final_output == "Echo: weather in Paris?"
    first, second = chat_bodies(fake)
    assert first["messages"] == [
        {"role": "system", "content": "Answer with the tool's words."},
        {"role": "user", "content": "weather in Paris?"},
    ]
    [tool] = first["tools"]
    assert tool["function"]["name"] == "get_weather"
    assert tool["function"]["strict"] is True  # the SDK's strict schemas reach the upstream
    call, output = second["messages"][2:]
    [tool_call] = call["tool_calls"]
    assert json.loads(tool_call["function"]["arguments"]) == {"city": "Paris"}
    assert output == {"role": "tool", "tool_call_id": tool_call["id"], "content": "sunny in Paris"}
    assert result.context_wrapper.usage.requests == 2
    assert result.context_wrapper.usage.total_tokens > 0


async def test_run_streamed_gives_the_events_and_the_final_output(
    model: Model, fake: FakeUpstream
) -> None:
    fake.state.set_scenario(Scenario(tool_call=True, tool_arguments={"city": "Oslo"}))
    run = Runner.run_streamed(weather_agent(model), "weather in Oslo?")
    deltas: list[str] = []
    items: list[str] = []
    async for event in run.stream_events():
        if event.type == "raw_response_event" and event.data.type == "response.output_text.delta":
            deltas.append(event.data.delta)
        elif event.type == "run_item_stream_event":
            items.append(event.item.type)
    assert run.final_output == "".join(deltas) == "Echo: weather in Oslo?"
    assert items == ["tool_call_item", "tool_call_output_item", "message_output_item"]
    assert all(body.get("stream") is True for body in chat_bodies(fake))


async def test_an_agent_without_tools_sends_the_upstream_no_empty_tools(
    model: Model, fake: FakeUpstream
) -> None:
    # The Responses model sends `tools: []`, which OpenAI's chat API refuses (so does the fake).
    agent = Agent(name="plain", instructions="Be brief.", model=model)
    result = await Runner.run(agent, "hello")
    assert result.final_output == "Echo: hello"
    [body] = chat_bodies(fake)
    assert "tools" not in body


async def test_a_structured_output_type_is_a_json_schema_answer(
    model: Model, fake: FakeUpstream
) -> None:
    fake.state.set_scenario(Scenario(content='{"city": "Paris", "sunny": true}'))
    agent = Agent(name="structured", instructions="JSON.", model=model, output_type=Forecast)
    result = await Runner.run(agent, "weather?")
    assert result.final_output == Forecast(city="Paris", sunny=True)
    [body] = chat_bodies(fake)
    response_format = body["response_format"]
    assert response_format["type"] == "json_schema"
    assert response_format["json_schema"]["strict"] is True
    assert response_format["json_schema"]["schema"]["required"] == ["city", "sunny"]


async def test_model_settings_reach_the_upstream(model: Model, fake: FakeUpstream) -> None:
    agent = weather_agent(
        model,
        temperature=0.2,
        max_tokens=50,
        parallel_tool_calls=False,
        top_logprobs=2,  # OpenAI's chat API takes it only with `logprobs: true`
        metadata={"team": "search"},
        truncation="auto",
        store=True,
        prompt_cache_retention="24h",
    )
    result = await Runner.run(agent, "hello")
    assert result.final_output == "Echo: hello"
    [body] = chat_bodies(fake)
    assert body["temperature"] == 0.2 and body["parallel_tool_calls"] is False
    assert body["logprobs"] is True and body["top_logprobs"] == 2
    assert body.get("max_completion_tokens", body.get("max_tokens")) == 50
    assert body["prompt_cache_retention"] == "24h"


async def test_turns_chained_by_previous_response_id(
    client: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    """The Responses model sends only what is new, naming the response before it: within a run
    (`auto_previous_response_id`) and across runs (`previous_response_id`)."""
    agent = weather_agent(OpenAIResponsesModel("chain", client))
    fake.state.set_scenario(Scenario(tool_call=True, tool_arguments={"city": "Paris"}))
    first = await Runner.run(agent, "weather in Paris?", auto_previous_response_id=True)
    assert first.final_output == "Echo: weather in Paris?"
    fake.state.clear_scenarios()
    second = await Runner.run(agent, "and Oslo?", previous_response_id=first.last_response_id)
    assert second.final_output == "Echo: and Oslo?"
    bodies = chat_bodies(fake)
    sent = [b["messages"] for b in bodies]
    call = sent[1][2]["tool_calls"][0]
    assert sent[1][3] == {"role": "tool", "tool_call_id": call["id"], "content": "sunny in Paris"}
    assert sent[2] == [
        {"role": "system", "content": "Answer with the tool's words."},
        *sent[1][1:],
        {"role": "assistant", "content": "Echo: weather in Paris?"},
        {"role": "user", "content": "and Oslo?"},
    ]


async def test_a_conversations_session_carries_the_turns_of_a_runner(
    client: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    """`OpenAIConversationsSession` keeps the run's items in a conversation on the router (the
    SDK's `client.conversations` calls); the next run reads them back as its history."""
    fake.state.set_scenario(Scenario(tool_call=True, tool_arguments={"city": "Rome"}))
    session = OpenAIConversationsSession(openai_client=client)
    agent = weather_agent(OpenAIResponsesModel("chain", client))
    first = await Runner.run(agent, "weather in Rome?", session=session)
    assert first.final_output == "Echo: weather in Rome?"
    fake.state.set_scenario(Scenario())
    second = await Runner.run(agent, "and tomorrow?", session=session)
    assert second.final_output == "Echo: and tomorrow?"
    messages = chat_bodies(fake)[-1]["messages"]
    assert messages[0] == {"role": "system", "content": "Answer with the tool's words."}
    assert messages[1]["content"] in (
        "weather in Rome?",
        [{"type": "text", "text": "weather in Rome?"}],
    )
    call, output, answer, question = messages[2:]
    assert call["tool_calls"][0]["function"]["name"] == "get_weather"
    assert output["content"] == "sunny in Rome"
    assert answer == {"role": "assistant", "content": "Echo: weather in Rome?"}
    assert question["role"] == "user" and "and tomorrow?" in json.dumps(question["content"])
    kept = await session.get_items()
    assert [item.get("type") for item in kept] == [
        *("message", "function_call", "function_call_output", "message"),
        *("message", "message"),
    ]
    conversation = await client.conversations.retrieve(session.session_id)
    assert conversation.id == session.session_id
    assert await session.pop_item() == kept[-1]
    assert len(await session.get_items()) == 5
    await session.clear_session()
    with pytest.raises(openai.NotFoundError):
        await client.conversations.retrieve(conversation.id)


async def test_a_runner_continues_a_conversation_by_its_id(
    client: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    """`Runner.run(..., conversation_id=...)`: the Responses calls name the conversation and the
    router's keeps the turns (no session on the SDK's side)."""
    conversation = await client.conversations.create()
    agent = Agent(
        name="plain", instructions="Be brief.", model=OpenAIResponsesModel("chain", client)
    )
    await Runner.run(agent, "my name is Ann", conversation_id=conversation.id)
    result = await Runner.run(agent, "what is my name?", conversation_id=conversation.id)
    assert result.final_output == "Echo: what is my name?"
    assert chat_bodies(fake)[-1]["messages"][1:] == [
        {"role": "user", "content": [{"type": "text", "text": "my name is Ann"}]},
        {"role": "assistant", "content": "Echo: my name is Ann"},
        {"role": "user", "content": "what is my name?"},
    ]
    items = [item async for item in client.conversations.items.list(conversation.id)]
    assert len(items) == 4
