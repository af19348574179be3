"""A chat call with no tools but a `tool_choice`, `parallel_tool_calls` or an empty `tools`
array (LangChain's `bind_tools([])`, `model_kwargs={"parallel_tool_calls": False}` on a call
without tools, agents with no tools left) is answered by an OpenAI-kind deployment as by a
Claude or Gemini one: those fields are not sent, since OpenAI's API refuses each of them
without tools ("'tool_choice' is only allowed when 'tools' are specified", "Invalid 'tools':
empty array") and the other kinds' mappings leave them out. With tools they are sent as
they came."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from router_service.fake_upstream import FakeUpstream

HELLO: Any = [{"role": "user", "content": "hello"}]
TOOL: Any = {
    "type": "function",
    "function": {"name": "f", "parameters": {"type": "object", "properties": {}}},
}
IDLE = ("tools", "tool_choice", "parallel_tool_calls")

WITHOUT_TOOLS: list[dict[str, Any]] = [
    {"parallel_tool_calls": False},
    {"parallel_tool_calls": True},
    {"tool_choice": "none"},
    {"tool_choice": "auto"},
    {"tool_choice": "required"},
    {"tool_choice": {"type": "function", "function": {"name": "f"}}},
    {"tools": []},
    {"tools": [], "tool_choice": "auto", "parallel_tool_calls": False},
]


def sent(fake: FakeUpstream) -> dict[str, Any]:
    [call] = [c for c in fake.state.calls() if c.path.endswith("/chat/completions")]
    return call.body


@pytest.mark.parametrize("fields", WITHOUT_TOOLS)
async def test_a_call_without_tools_sends_no_tool_fields(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream, fields: dict[str, Any]
) -> None:
    reply = await sdk.chat.completions.create(model="chain", messages=HELLO, **fields)
    assert reply.choices[0].message.content == "Echo: hello"
    assert not set(IDLE) & set(sent(fake)), sent(fake)


@pytest.mark.parametrize("fields", WITHOUT_TOOLS[::3])
async def test_a_stream_without_tools_sends_no_tool_fields(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream, fields: dict[str, Any]
) -> None:
    stream = await sdk.chat.completions.create(model="chain", messages=HELLO, stream=True, **fields)
    text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert text == "Echo: hello"
    assert not set(IDLE) & set(sent(fake)), sent(fake)


async def test_with_tools_they_are_sent_as_they_came(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    await sdk.chat.completions.create(
        model="chain",
        messages=HELLO,
        tools=[TOOL],
        tool_choice="none",
        parallel_tool_calls=False,
    )
    body = sent(fake)
    assert (body["tools"], body["tool_choice"], body["parallel_tool_calls"]) == (
        [TOOL],
        "none",
        False,
    )
