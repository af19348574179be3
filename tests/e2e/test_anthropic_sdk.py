"""Anthropic's own SDK → the edge's `/v1/messages` → the router → the fake upstream, answered
by an OpenAI-kind deployment (`chain`) or an Anthropic-kind one (`claude`)."""

from __future__ import annotations

from typing import Any

import anthropic
import openai
import pytest

from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import RouterHandle, StartRouter, base_config

KINDS = ("chain", "sonnet")  # OpenAI-kind deployments, and an Anthropic-kind one
WEATHER: Any = {
    "name": "get_weather",
    "description": "The weather in a city.",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
}


def config(fake: FakeUpstream, **sections: Any) -> dict[str, Any]:
    claude = {"kind": "anthropic", "base_url": fake.base_url, "keys": ["sk-ant"]}
    out = base_config(fake.base_url, **sections)
    out["providers"]["claude"] = claude
    out["models"]["sonnet"] = {"deployments": [{"provider": "claude", "model": "claude-x"}]}
    return out


async def streamed(
    claude: anthropic.AsyncAnthropic, kind: str, **request: Any
) -> tuple[list[Any], anthropic.types.Message]:
    """The `kind` deltas of a streamed answer, and the message the SDK assembled of it."""
    async with claude.messages.stream(**request) as stream:
        deltas = [
            event.delta
            async for event in stream
            if event.type == "content_block_delta" and event.delta.type == kind
        ]
        return deltas, await stream.get_final_message()


@pytest.fixture
async def router(fake: FakeUpstream, start_router: StartRouter) -> RouterHandle:
    return await start_router(config(fake))


@pytest.mark.parametrize("model", KINDS)
async def test_a_message_with_a_system_prompt(
    claude: anthropic.AsyncAnthropic, fake: FakeUpstream, model: str
) -> None:
    raw = await claude.messages.with_raw_response.create(
        model=model,
        max_tokens=64,
        system=[{"type": "text", "text": "Answer briefly."}],
        messages=[{"role": "user", "content": "hello world"}],
        metadata={"user_id": "u-42"},
        stop_sequences=["END"],
    )
    message = await raw.parse()
    assert message.id.startswith("msg_") and message.role == "assistant"
    assert [(b.type, getattr(b, "text", None)) for b in message.content] == [
        ("text", "Echo: hello world")
    ]
    assert message.stop_reason == "end_turn" and message.stop_sequence is None
    assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0
    assert raw.headers["x-switchboard-deployment"].endswith(("/model-a", "/claude-x"))
    sent = fake.state.last()
    assert sent is not None
    if model == "sonnet":  # the router's Anthropic mapping, back again
        assert sent.body["system"] == "Answer briefly."
        assert sent.body["metadata"] == {"user_id": "u-42"}
        assert sent.body["stop_sequences"] == ["END"]
    else:
        assert sent.body["messages"][0] == {"role": "system", "content": "Answer briefly."}
        assert (sent.body["user"], sent.body["stop"]) == ("u-42", ["END"])


@pytest.mark.parametrize("model", KINDS)
async def test_a_tool_use_round_trip(
    claude: anthropic.AsyncAnthropic, fake: FakeUpstream, model: str
) -> None:
    fake.state.set_scenario(Scenario(tool_call=True, tool_arguments={"city": "Oslo"}))
    ask: Any = {"role": "user", "content": "Weather in Oslo?"}
    first = await claude.messages.create(
        model=model, max_tokens=64, messages=[ask], tools=[WEATHER], tool_choice={"type": "any"}
    )
    assert first.stop_reason == "tool_use"
    (call,) = first.content
    assert call.type == "tool_use" and call.name == "get_weather"
    assert call.input == {"city": "Oslo"}
    result: Any = {"type": "tool_result", "tool_use_id": call.id, "content": "No such city"}
    # Claude's flag at Claude; said in the text where OpenAI's tool messages have no flag.
    result["is_error"] = True
    second = await claude.messages.create(
        model=model,
        max_tokens=64,
        messages=[
            ask,
            {"role": "assistant", "content": first.content},
            {"role": "user", "content": [result]},
        ],
        tools=[WEATHER],
    )
    assert second.stop_reason == "end_turn"
    assert second.content[0].type == "text"
    sent = fake.state.last()
    assert sent is not None
    if model == "sonnet":
        sent_result = sent.body["messages"][-1]["content"][0]
        assert sent_result["tool_use_id"] == call.id
        assert (sent_result["content"], sent_result["is_error"]) == ("No such city", True)
    else:
        assert sent.body["messages"][-1] == {
            "role": "tool",
            "tool_call_id": call.id,
            "content": "Error: No such city",
        }


@pytest.mark.parametrize("model", KINDS)
async def test_a_streamed_text(claude: anthropic.AsyncAnthropic, model: str) -> None:
    async with claude.messages.stream(
        model=model, max_tokens=64, messages=[{"role": "user", "content": "one two three"}]
    ) as stream:
        kinds = [event.type async for event in stream]
        message = await stream.get_final_message()
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    assert "content_block_start" in kinds and "content_block_stop" in kinds
    assert [(b.type, getattr(b, "text", None)) for b in message.content] == [
        ("text", "Echo: one two three")
    ]
    assert message.stop_reason == "end_turn"
    assert message.usage.output_tokens > 0 and message.usage.input_tokens > 0


@pytest.mark.parametrize("model", KINDS)
async def test_a_streamed_tool_input(
    claude: anthropic.AsyncAnthropic, fake: FakeUpstream, model: str
) -> None:
    fake.state.set_scenario(Scenario(tool_call=True, tool_arguments={"city": "Oslo"}))
    request = {"model": model, "max_tokens": 64, "messages": [{"role": "user", "content": "?"}]}
    deltas, message = await streamed(claude, "input_json_delta", **request, tools=[WEATHER])
    assert "".join(d.partial_json for d in deltas) == '{"city":"Oslo"}'
    assert message.stop_reason == "tool_use"
    (call,) = message.content
    assert call.type == "tool_use" and call.input == {"city": "Oslo"}


@pytest.mark.parametrize("model", KINDS)
async def test_reasoning_is_a_thinking_block_signed_by_claude_alone(
    claude: anthropic.AsyncAnthropic, fake: FakeUpstream, model: str
) -> None:
    fake.state.set_scenario(Scenario(reasoning="first think hard", times=3))
    signature = "sig-fake-thinking" if model == "sonnet" else ""  # only Claude signs its thinking
    ask: Any = {"role": "user", "content": "why"}
    request: dict[str, Any] = {"model": model, "max_tokens": 64, "messages": [ask]}
    message = await claude.messages.create(**request)
    assert [b.type for b in message.content] == ["thinking", "text"]
    thinking = message.content[0]
    assert thinking.type == "thinking" and thinking.thinking == "first think hard"
    assert thinking.signature == signature
    thought, whole = await streamed(claude, "thinking_delta", **request)
    assert "".join(d.thinking for d in thought) == "first think hard"
    assert whole.content[0].type == "thinking" and whole.content[0].signature == signature
    # The next turn carries the thinking back: as it came to Claude, not at all to the others.
    turn: Any = {"role": "assistant", "content": message.content}
    follow_up: Any = {"role": "user", "content": "and then?"}
    await claude.messages.create(**{**request, "messages": [ask, turn, follow_up]})
    sent = fake.state.last()
    assert sent is not None
    if model == "sonnet":
        assert sent.body["messages"][1]["content"][0] == {
            "type": "thinking",
            "thinking": "first think hard",
            "signature": signature,
        }
    else:
        assert "thinking_blocks" not in sent.body["messages"][1]


async def test_a_stop_sequence_stop_names_its_sequence_when_the_upstream_does(
    claude: anthropic.AsyncAnthropic,
) -> None:
    for model in KINDS:
        request: dict[str, Any] = {
            "model": model,
            "max_tokens": 64,
            "messages": [{"role": "user", "content": "hello world again"}],
            "stop_sequences": ["END", "world"],
        }
        # Claude says which sequence ended it; OpenAI cuts it out and says not (an end_turn).
        said = ("stop_sequence", "world") if model == "sonnet" else ("end_turn", None)
        message = await claude.messages.create(**request)
        assert message.content[0].type == "text" and message.content[0].text == "Echo: hello "
        assert (message.stop_reason, message.stop_sequence) == said
        _, whole = await streamed(claude, "text_delta", **request)
        assert (whole.stop_reason, whole.stop_sequence) == said


@pytest.mark.parametrize("model", KINDS)
async def test_options_sent_as_null_are_unset(
    claude: anthropic.AsyncAnthropic, fake: FakeUpstream, model: str
) -> None:
    """A caller's `None` goes as JSON null (`extra_body` here): not used, even for an option
    this gateway does not take; nothing of it reaches the upstream."""
    nulls: dict[str, Any] = dict.fromkeys(
        ("stop_sequences", "temperature", "top_p", "top_k", "thinking", "service_tier")
    )
    message = await claude.messages.create(
        model=model, max_tokens=64, messages=[{"role": "user", "content": "hi"}], extra_body=nulls
    )
    assert message.content[0].type == "text"
    sent = fake.state.calls()[-1].body
    assert not [key for key, value in sent.items() if value is None], sent


@pytest.mark.parametrize("stream", [False, True])
async def test_tool_calls_a_server_finishes_with_stop_are_a_tool_use_stop(
    claude: anthropic.AsyncAnthropic, fake: FakeUpstream, stream: bool
) -> None:
    """Some OpenAI-compatible servers finish an answer that calls tools with "stop": it was an
    `end_turn`, and a caller's tool loop, which runs the tools on a `tool_use` stop, ended
    there."""
    fake.state.set_scenario(Scenario(tool_call=True, finish_reason="stop"))
    request: Any = {
        "model": "chain",
        "max_tokens": 64,
        "messages": [{"role": "user", "content": "?"}],
    }
    if stream:
        _, message = await streamed(claude, "input_json_delta", **request, tools=[WEATHER])
    else:
        message = await claude.messages.create(**request, tools=[WEATHER])
    assert [block.type for block in message.content] == ["tool_use"]
    assert (message.stop_reason, message.stop_sequence) == ("tool_use", None)


async def test_a_safety_identifier_is_claudes_user_id(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    """OpenAI's word for the end user now (`user` is deprecated for it) reaches Claude where it
    takes one, `metadata.user_id`, as `user` does; it was dropped."""
    ask: Any = [{"role": "user", "content": "hello"}]
    await sdk.chat.completions.create(model="sonnet", messages=ask, safety_identifier="u-42")
    record = fake.state.last()
    assert record is not None and record.body["metadata"] == {"user_id": "u-42"}
    await sdk.chat.completions.create(
        model="sonnet", messages=ask, user="u-1", safety_identifier="u-42"
    )
    record = fake.state.last()
    assert record is not None and record.body["metadata"] == {"user_id": "u-1"}


@pytest.mark.parametrize("model", KINDS)
async def test_a_streams_message_start_counts_the_prompt_as_the_answer_does(
    claude: anthropic.AsyncAnthropic, model: str
) -> None:
    """Claude Code and the SDK read the input tokens off `message_start`: the prompt's count
    (the router's estimate before the upstream's), not zero; the end says the upstream's."""
    ask: Any = [{"role": "user", "content": "one two three four five six seven eight"}]
    unary = await claude.messages.create(model=model, max_tokens=64, messages=ask)
    async with claude.messages.stream(model=model, max_tokens=64, messages=ask) as stream:
        events = [event async for event in stream]
        message = await stream.get_final_message()
    start = events[0]
    assert start.type == "message_start"
    assert start.message.usage.input_tokens > 0
    (delta,) = [event for event in events if event.type == "message_delta"]
    assert delta.usage.input_tokens == message.usage.input_tokens == unary.usage.input_tokens
