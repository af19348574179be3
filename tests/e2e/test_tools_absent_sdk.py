"""A chat call with no tools but a `tool_choice`, `parallel_tool_calls` or an empty `tools`
array (LangChain's `bind_tools([])`, `model_kwargs={"parallel_tool_calls": False}` on a call
without tools, agents with no tools left) is answered by an OpenAI-kind deployment as by a
Claude or Gemini one: those fields are not sent, since OpenAI's API refuses each of them
without tools ("'tool_choice' is only allowed when 'tools' are specified", "Invalid 'tools':
empty array") and the other kinds' mappings leave them out; so are an empty legacy
`functions` array and a `function_call` beside it. With tools they are sent as they came.

A choice that forces a call (`required`, a named function, Anthropic's `any` / `tool`, a
legacy `function_call` naming one, Gemini's ANY mode) with nothing to call is a 400 (OpenAI's:
param `tool_choice`) on every entrance: dropped, the model answered in text a caller that asked
for a call."""

from __future__ import annotations

from typing import Any

import anthropic
import openai
import pytest
from google import genai
from google.genai import errors, types

from router_service.fake_upstream import FakeUpstream

HELLO: Any = [{"role": "user", "content": "hello"}]
TOOL: Any = {
    "type": "function",
    "function": {"name": "f", "parameters": {"type": "object", "properties": {}}},
}
IDLE = ("tools", "tool_choice", "parallel_tool_calls", "functions", "function_call")

WITHOUT_TOOLS: list[dict[str, Any]] = [
    {"parallel_tool_calls": False},
    {"parallel_tool_calls": True},
    {"tool_choice": "none"},
    {"tool_choice": "auto"},
    {"tools": []},
    {"tools": [], "tool_choice": "auto", "parallel_tool_calls": False},
    {"functions": []},
    {"functions": [], "function_call": "auto"},
]
FORCED: list[dict[str, Any]] = [
    {"tool_choice": "required"},
    {"tool_choice": {"type": "function", "function": {"name": "f"}}},
    {"tools": [], "tool_choice": "required", "parallel_tool_calls": False},
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


def no_upstream_call(fake: FakeUpstream) -> None:
    assert fake.state.calls() == []


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("fields", FORCED)
async def test_a_forced_choice_without_tools_is_refused(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream, fields: dict[str, Any], stream: bool
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        await sdk.chat.completions.create(model="chain", messages=HELLO, stream=stream, **fields)
    error = caught.value
    assert (error.type, error.param) == ("invalid_request_error", "tool_choice")
    assert "only allowed when 'tools' are specified" in error.message
    no_upstream_call(fake)


async def test_a_legacy_function_call_without_functions_is_refused(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        await sdk.chat.completions.create(
            model="chain", messages=HELLO, functions=[], function_call={"name": "f"}
        )
    assert caught.value.param == "function_call"
    no_upstream_call(fake)


@pytest.mark.parametrize("choice", ["required", {"type": "function", "name": "f"}])
async def test_a_forced_responses_choice_without_tools_is_refused(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream, choice: Any
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        await sdk.responses.create(model="chain", input="hello", tools=[], tool_choice=choice)
    assert caught.value.param == "tool_choice"
    no_upstream_call(fake)
    reply = await sdk.responses.create(model="chain", input="hello", tools=[], tool_choice="auto")
    assert reply.output_text == "Echo: hello"


@pytest.mark.parametrize("choice", [{"type": "any"}, {"type": "tool", "name": "f"}])
async def test_a_forced_messages_choice_without_tools_is_refused(
    claude: anthropic.AsyncAnthropic, fake: FakeUpstream, choice: Any
) -> None:
    with pytest.raises(anthropic.BadRequestError) as caught:
        await claude.messages.create(
            model="chain", max_tokens=50, messages=HELLO, tool_choice=choice
        )
    assert "'tool_choice' is only allowed" in str(caught.value)
    no_upstream_call(fake)


@pytest.mark.parametrize(("mode", "refused"), [("ANY", True), ("AUTO", False), ("NONE", False)])
async def test_a_gemini_tool_config_without_tools(
    gemini: genai.Client, fake: FakeUpstream, mode: str, refused: bool
) -> None:
    """Gemini's entrance alike: ANY forces a call (Gemini's own 400, "Function calling config
    is set without function_declarations"); AUTO and NONE are dropped."""
    config = types.GenerateContentConfig(
        tool_config=types.ToolConfig(
            function_calling_config=types.FunctionCallingConfig(mode=mode)  # type: ignore[arg-type]
        )
    )
    answer = gemini.aio.models.generate_content(model="chain", contents="hello", config=config)
    if not refused:
        assert (await answer).text == "Echo: hello"
        assert not set(IDLE) & set(sent(fake)), sent(fake)
        return
    with pytest.raises(errors.ClientError) as caught:
        await answer
    assert (caught.value.code, caught.value.status) == (400, "INVALID_ARGUMENT")
    assert "toolConfig.functionCallingConfig.mode" in str(caught.value.details)
    no_upstream_call(fake)


@pytest.mark.parametrize(
    ("tools", "calling"),
    [
        ([types.Tool(function_declarations=[])], {}),  # a tool object with no declaration
        (None, {"allowed_function_names": ["f"]}),  # names of functions never declared
    ],
    ids=["empty-declarations", "allowed-names"],
)
async def test_a_gemini_any_mode_with_no_function_is_refused_by_its_mode(
    gemini: genai.Client, fake: FakeUpstream, tools: Any, calling: dict[str, Any]
) -> None:
    """However the call ends up with nothing to call, ANY is refused naming the caller's own
    field, not the `tool_choice` of a chat body it never sent."""
    mode = types.FunctionCallingConfig(mode="ANY", **calling)  # type: ignore[arg-type]
    config = types.GenerateContentConfig(
        tools=tools, tool_config=types.ToolConfig(function_calling_config=mode)
    )
    answer = gemini.aio.models.generate_content(model="chain", contents="hello", config=config)
    with pytest.raises(errors.ClientError) as caught:
        await answer
    assert (caught.value.code, caught.value.status) == (400, "INVALID_ARGUMENT")
    details = str(caught.value.details)
    assert "toolConfig.functionCallingConfig.mode" in details and "tool_choice" not in details
    no_upstream_call(fake)
