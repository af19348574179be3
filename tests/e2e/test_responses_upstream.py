"""Responses-only models served to chat callers: a deployment of gpt-5-pro (by its name) or one
marked `api: responses` is called on the upstream's Responses API, whichever entrance the
caller came by (chat completions, the Responses API, gRPC), and its answer is the chat answer.
The fake refuses gpt-5-pro at /chat/completions, as OpenAI does."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from clients.switchboard.v1 import chat_pb2
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.fake_upstream import FakeUpstream, Scenario
from router_service.fake_upstream._responses_api import REFUSAL, UNVERIFIED_ORG
from router_service.fake_upstream._state import CallRecord
from tests.conftest import RouterHandle, StartRouter, base_config

HELLO: Any = [{"role": "user", "content": "hello"}]
TOOLS: Any = [
    {
        "type": "function",
        "function": {"name": "lookup", "description": "finds", "parameters": {"type": "object"}},
    }
]
# The group and the upstream model of each way a deployment comes to the Responses API.
GROUPS = [("pro", "gpt-5-pro"), ("house", "house-reasoner")]


def config(fake: FakeUpstream) -> dict[str, Any]:
    out = base_config(fake.base_url)
    out["models"] |= {
        "pro": {"deployments": [{"provider": "alpha", "model": "gpt-5-pro"}]},
        "house": {
            "deployments": [{"provider": "alpha", "model": "house-reasoner", "api": "responses"}]
        },
        "azure-pro": {"deployments": [{"provider": "az", "model": "o3-pro"}]},
        "mixed": {
            "deployments": [
                {"provider": "alpha", "model": "gpt-5-pro"},
                {"provider": "beta", "model": "model-b"},
            ]
        },
    }
    out["providers"]["az"] = {"kind": "azure", "base_url": fake.url, "keys": ["az-key"]}
    return out


@pytest.fixture
async def router(fake: FakeUpstream, start_router: StartRouter) -> RouterHandle:
    return await start_router(config(fake))


def sent(fake: FakeUpstream, model: str) -> CallRecord:
    """The last upstream call of `model`: on the Responses API."""
    record = fake.state.calls(model=model)[-1]
    assert record.path == "/v1/responses"
    return record


@pytest.mark.parametrize(("group", "upstream"), GROUPS)
async def test_a_chat_call_is_answered_on_the_responses_api(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream, group: str, upstream: str
) -> None:
    messages: Any = [{"role": "system", "content": "be brief"}, *HELLO]
    answer = await sdk.chat.completions.create(model=group, messages=messages, temperature=0.5)

    assert answer.choices[0].message.content == "Echo: hello"
    assert answer.choices[0].finish_reason == "stop"
    assert answer.usage is not None and answer.usage.prompt_tokens == 3
    body = sent(fake, upstream).body
    assert body["input"][0] == {
        "type": "message",
        "role": "system",
        "content": [{"type": "input_text", "text": "be brief"}],
    }
    assert body["store"] is False and body["temperature"] == 0.5 and "messages" not in body


@pytest.mark.parametrize(("group", "upstream"), GROUPS)
async def test_a_stream_is_chat_chunks_with_the_usage_asked(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream, group: str, upstream: str
) -> None:
    stream = await sdk.chat.completions.create(
        model=group, messages=HELLO, stream=True, stream_options={"include_usage": True}
    )
    chunks = [chunk async for chunk in stream]

    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Echo: hello"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 2
    assert sent(fake, upstream).body["stream"] is True


async def test_tools_round_trip_as_function_call_items(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    fake.state.set_scenario(Scenario(tool_call=True, tool_arguments={"q": "x"}))
    first = await sdk.chat.completions.create(
        model="pro", messages=HELLO, tools=TOOLS, tool_choice="required"
    )
    [call] = first.choices[0].message.tool_calls or []
    assert first.choices[0].finish_reason == "tool_calls"
    assert call.type == "function" and call.function.name == "lookup"
    assert call.function.arguments == '{"q":"x"}'
    asked = sent(fake, "gpt-5-pro").body
    assert asked["tools"] == [
        {
            "type": "function",
            "name": "lookup",
            "description": "finds",
            "parameters": {"type": "object"},
        }
    ]
    assert asked["tool_choice"] == "required"

    history: Any = [
        *HELLO,
        first.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "found it"},
    ]
    second = await sdk.chat.completions.create(model="pro", messages=history, tools=TOOLS)

    assert second.choices[0].message.content == "Echo: hello"
    items = sent(fake, "gpt-5-pro").body["input"]
    assert items[1:] == [
        {"type": "function_call", "call_id": call.id, "name": "lookup", "arguments": '{"q":"x"}'},
        {"type": "function_call_output", "call_id": call.id, "output": "found it"},
    ]


async def test_reasoning_effort_asks_for_a_summary_that_is_the_reasoning_content(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    fake.state.set_scenario(Scenario(reasoning="thinking it over"))
    answer = await sdk.chat.completions.create(model="pro", messages=HELLO, reasoning_effort="low")

    # gpt-5-pro takes `high` only: the effort is fitted to the model, as at chat completions.
    assert sent(fake, "gpt-5-pro").body["reasoning"] == {"effort": "high", "summary": "auto"}
    message = answer.choices[0].message
    assert message.content == "Echo: hello"
    assert (message.model_extra or {})["reasoning_content"] == "thinking it over"
    assert answer.usage is not None and answer.usage.completion_tokens_details is not None
    assert answer.usage.completion_tokens_details.reasoning_tokens == 3
    assert answer.usage.completion_tokens == 5


async def test_a_json_schema_response_format_is_the_text_format(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    schema: dict[str, Any] = {"type": "object", "properties": {"a": {"type": "string"}}}
    fake.state.set_scenario(Scenario(content='{"a": "b"}'))
    answer = await sdk.chat.completions.create(
        model="house",
        messages=HELLO,
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "thing", "schema": schema, "strict": True},
        },
    )

    assert answer.choices[0].message.content == '{"a": "b"}'
    text = sent(fake, "house-reasoner").body["text"]
    assert text == {
        "format": {"type": "json_schema", "name": "thing", "schema": schema, "strict": True}
    }


async def test_max_tokens_is_max_output_tokens_and_its_cut_is_length(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    fake.state.set_scenario(Scenario(content=" ".join(["word"] * 30)))
    answer = await sdk.chat.completions.create(model="pro", messages=HELLO, max_tokens=16)

    assert answer.choices[0].finish_reason == "length"
    assert answer.choices[0].message.content == " ".join(["word"] * 16)
    assert sent(fake, "gpt-5-pro").body["max_output_tokens"] == 16


async def test_stop_sequences_are_cut_by_the_router(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    fake.state.set_scenario(Scenario(content="one two END three"))
    answer = await sdk.chat.completions.create(model="pro", messages=HELLO, stop=["END"])
    stream = await sdk.chat.completions.create(model="pro", messages=HELLO, stop="END", stream=True)
    streamed = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])

    assert answer.choices[0].message.content == "one two "
    assert answer.choices[0].finish_reason == "stop"
    assert streamed == "one two "
    assert all("stop" not in call.body for call in fake.state.calls(model="gpt-5-pro"))


@pytest.mark.parametrize("knob", [{"n": 2}, {"seed": 7}])
async def test_chat_only_knobs_are_a_typed_400(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream, knob: dict[str, Any]
) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        await sdk.chat.completions.create(model="pro", messages=HELLO, **knob)

    assert refused.value.param == next(iter(knob))
    assert fake.state.count() == 0


async def test_logprobs_come_from_the_responses_api(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    # `include: ["message.output_text.logprobs"]` and `top_logprobs` ask for them there; its
    # text's logprobs are the chat answer's, unary and each delta's streamed.
    # (A server of its own: OpenAI's reasoning models give none, below.)
    fake.state.set_scenario(Scenario(content="Hello 😀 there."))
    ask: Any = {"model": "house", "messages": HELLO, "logprobs": True, "top_logprobs": 2}
    answer = await sdk.chat.completions.create(**ask)

    content = answer.choices[0].logprobs.content
    assert b"".join(bytes(e.bytes or []) for e in content).decode() == "Hello 😀 there."
    assert all(len(e.top_logprobs) == 2 for e in content)
    body = sent(fake, "house-reasoner").body
    assert (body["include"], body["top_logprobs"]) == (["message.output_text.logprobs"], 2)
    assert "logprobs" not in body

    stream = await sdk.chat.completions.create(**ask, stream=True)
    chunks = [chunk async for chunk in stream]
    said = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    entries = [e for c in chunks if c.choices and c.choices[0].logprobs for e in
               c.choices[0].logprobs.content or []]  # fmt: skip
    assert b"".join(bytes(e.bytes or []) for e in entries).decode() == said == "Hello 😀 there."


@pytest.mark.parametrize("stream", [False, True])
async def test_a_reasoning_model_s_refusal_of_logprobs_passes_it_over(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream, stream: bool
) -> None:
    # OpenAI's reasoning models (all but one of the Responses-only ones) refuse logprobs (a 400
    # naming `include`, which a chat caller never sent): the group's next deployment gives
    # them; with none left, the caller's 400 names its own `logprobs`.
    ask: Any = {"messages": HELLO, "logprobs": True, "stream": stream}
    answer = await sdk.chat.completions.create(model="mixed", **ask)
    if stream:
        chunks = [chunk async for chunk in answer]
        assert {chunk.model for chunk in chunks} == {"model-b"}
        assert any(c.choices and c.choices[0].logprobs for c in chunks)
    else:
        assert answer.model == "model-b" and answer.choices[0].logprobs.content
    assert "message.output_text.logprobs" in sent(fake, "gpt-5-pro").body["include"]

    with pytest.raises(openai.BadRequestError) as refused:
        await sdk.chat.completions.create(model="pro", **ask)
    assert refused.value.param == "logprobs"
    assert "reasoning models" in refused.value.message


async def test_the_responses_entrance_reaches_it_too(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    answer = await sdk.responses.create(model="pro", input="hello", instructions="be brief")

    assert answer.output_text == "Echo: hello"
    assert sent(fake, "gpt-5-pro").body["input"][-1]["content"][0]["text"] == "hello"


async def test_a_grpc_chat_on_a_real_channel(router: RouterHandle, fake: FakeUpstream) -> None:
    params = chat_pb2.ChatParams(
        model="house",
        messages=[chat_pb2.ChatMessage(role=chat_pb2.ROLE_USER, text="hello")],
        max_completion_tokens=64,
    )
    response = await router.stub.Chat(pb.ChatRequest(params=params))

    assert response.completion.choices[0].message.text == "Echo: hello"
    assert response.route.deployment == "alpha/house-reasoner"
    assert sent(fake, "house-reasoner").body["max_output_tokens"] == 64


@pytest.mark.parametrize("stream", [False, True])
async def test_an_azure_deployment_is_called_on_its_v1_responses_api(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream, stream: bool
) -> None:
    if stream:
        chunks = await sdk.chat.completions.create(model="azure-pro", messages=HELLO, stream=True)
        text = "".join([c.choices[0].delta.content or "" async for c in chunks if c.choices])
    else:
        answer = await sdk.chat.completions.create(model="azure-pro", messages=HELLO)
        text = answer.choices[0].message.content or ""

    assert text == "Echo: hello"
    [call] = fake.state.calls()
    assert (call.path, call.key, call.body["model"]) == ("/openai/v1/responses", "az-key", "o3-pro")


@pytest.mark.parametrize("stream", [False, True])
async def test_a_refusal_is_the_answers_refusal(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream, stream: bool
) -> None:
    # Structured outputs' refusal is a `refusal` part, not `output_text`: the chat answer's
    # `refusal` (content null), as chat completions gives it, never an empty content; on the
    # Responses entrance the message's `refusal` part alone, as OpenAI's (no empty text part).
    words = "I'm sorry, I can't help with that."
    fake.state.set_scenario(Scenario(kind=REFUSAL, content=words))
    if stream:
        chunks = await sdk.chat.completions.create(model="pro", messages=HELLO, stream=True)
        deltas = [c.choices[0].delta async for c in chunks if c.choices]
        refusal: str | None = "".join(d.refusal or "" for d in deltas)
        content = "".join(d.content or "" for d in deltas) or None
        events = await sdk.responses.create(model="pro", input="hello", stream=True)
        [response] = [e.response async for e in events if e.type == "response.completed"]
    else:
        answer = await sdk.chat.completions.create(model="pro", messages=HELLO)
        refusal, content = answer.choices[0].message.refusal, answer.choices[0].message.content
        response = await sdk.responses.create(model="pro", input="hello")

    assert (refusal, content) == (words, None)
    [message] = [item.model_dump() for item in response.output if item.type == "message"]
    assert message["content"] == [{"type": "refusal", "refusal": words}]


@pytest.mark.parametrize("stream", [False, True])
async def test_an_unverified_organization_is_served_without_a_summary(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream, stream: bool
) -> None:
    # OpenAI refuses reasoning summaries to an organization that is not verified: the caller
    # never asked for one, so the effort is sent without it, and learned for the provider.
    fake.state.set_scenario(Scenario(kind=UNVERIFIED_ORG))
    for _ in range(2):
        if stream:
            chunks = await sdk.chat.completions.create(
                model="pro", messages=HELLO, reasoning_effort="high", stream=True
            )
            text = "".join([c.choices[0].delta.content or "" async for c in chunks if c.choices])
        else:
            answer = await sdk.chat.completions.create(
                model="pro", messages=HELLO, reasoning_effort="high"
            )
            text = answer.choices[0].message.content or ""
        assert text == "Echo: hello"

    asked = [c.body["reasoning"] for c in fake.state.calls(model="gpt-5-pro")]
    summary = {"effort": "high", "summary": "auto"}
    assert asked == [summary, {"effort": "high"}, {"effort": "high"}]  # refused once, learned


async def test_max_tokens_under_the_responses_minimum_goes_to_a_chat_deployment(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    # The Responses API refuses a `max_output_tokens` under 16: the group's chat deployment
    # takes the call instead; alone, the caller's 400 names what it sent (`max_tokens`).
    answer = await sdk.chat.completions.create(model="mixed", messages=HELLO, max_tokens=5)
    assert answer.model == "model-b" and fake.state.calls(model="gpt-5-pro") == []

    with pytest.raises(openai.BadRequestError) as refused:
        await sdk.chat.completions.create(model="pro", messages=HELLO, max_tokens=5)
    assert "max_tokens" in str(refused.value) and fake.state.calls(model="gpt-5-pro") == []


@pytest.mark.parametrize(
    "extra",
    [
        {"modalities": ["text", "audio"], "audio": {"voice": "alloy", "format": "wav"}},
        {"prediction": {"type": "content", "content": "Echo: hello"}},
        {"web_search_options": {}},
    ],
)
async def test_options_it_cannot_honour_go_to_a_chat_deployment(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream, extra: dict[str, Any]
) -> None:
    # Not dropped silently: the group's chat deployment takes the call; alone, a typed 400.
    answer = await sdk.chat.completions.create(model="mixed", messages=HELLO, extra_body=extra)
    assert answer.model == "model-b" and fake.state.calls(model="gpt-5-pro") == []

    with pytest.raises(openai.BadRequestError) as refused:
        await sdk.chat.completions.create(model="pro", messages=HELLO, extra_body=extra)
    assert "' is a chat completions option" in str(refused.value)
    assert any(f"'{key}'" in str(refused.value) for key in extra)


async def test_allowed_tools_are_the_responses_apis(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    allowed: Any = {
        "type": "allowed_tools",
        "allowed_tools": {
            "mode": "required",
            "tools": [TOOLS[0] | {"function": {"name": "lookup"}}],
        },
    }
    await sdk.chat.completions.create(model="pro", messages=HELLO, tools=TOOLS, tool_choice=allowed)

    assert sent(fake, "gpt-5-pro").body["tool_choice"] == {
        "type": "allowed_tools",
        "mode": "required",
        "tools": [{"type": "function", "name": "lookup"}],
    }
