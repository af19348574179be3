"""A `json_schema` response_format at a Claude older than 4.5, which has no structured outputs
(it refuses `output_config.format`): emulated with one forced tool, as LiteLLM does
(https://docs.litellm.ai/docs/completion/json_mode; Anthropic's "JSON mode" by tools:
https://docs.anthropic.com/en/docs/build-with-claude/tool-use/overview#json-mode), the tool's
input handed back as the message's content, unary and streamed, on Anthropic's API, Vertex and
Bedrock alike. Where the emulation could not be faithful (the caller's own tools, thinking,
a schema that is no object) the caller hears a 400, never an unconstrained answer."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest

from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import RouterHandle, StartRouter
from tests.e2e.test_reasoning_sdk import HELLO, claude_three_ways, received

SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}},
    "required": ["city"],
    "additionalProperties": False,
}
FORMAT: Any = {"type": "json_schema", "json_schema": {"name": "place", "schema": SCHEMA}}
ANSWER = {"city": "Paris"}
MODELS = ["claude-3-5", "vx-claude-3-5", "br-claude-3-5"]


@pytest.fixture
async def router(fake: FakeUpstream, start_router: StartRouter) -> RouterHandle:
    return await start_router(
        claude_three_ways(
            fake,
            {
                "claude-3-5": ("claude", "claude-3-5-haiku-20241022"),
                "vx-claude-3-5": ("vx", "claude-3-5-haiku@20241022"),
                "br-claude-3-5": ("br", "anthropic.claude-3-5-haiku-20241022-v1:0"),
                "claude-3-7": ("claude", "claude-3-7-sonnet-20250219"),
                "br-claude-3-7": ("br", "anthropic.claude-3-7-sonnet-20250219-v1:0"),
                "claude-2": ("claude", "claude-2.1"),
                "br-claude-2": ("br", "anthropic.claude-v2:1"),
                "br-instant": ("br", "anthropic.claude-instant-v1"),
            },
        )
    )


def forced_tool(sent: dict[str, Any]) -> tuple[Any, Any]:
    """The tool the upstream was given and how it was made to call it, in its own dialect."""
    if "toolConfig" in sent:  # Converse
        spec = sent["toolConfig"]["tools"][0]["toolSpec"]
        return (spec["name"], spec["inputSchema"]["json"]), sent["toolConfig"]["toolChoice"]
    (tool,) = sent["tools"]
    return (tool["name"], tool["input_schema"]), sent["tool_choice"]


@pytest.mark.parametrize("model", MODELS)
async def test_a_json_schema_is_a_forced_tool_whose_input_is_the_answer(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream, model: str
) -> None:
    fake.state.set_scenario(Scenario(tool_call=True, tool_arguments=ANSWER))

    answer = await sdk.chat.completions.create(model=model, messages=HELLO, response_format=FORMAT)

    sent = received(fake)
    (name, schema), choice = forced_tool(sent)
    assert name == "json_output" and schema == SCHEMA
    assert choice in ({"type": "tool", "name": "json_output"}, {"tool": {"name": "json_output"}})
    assert "output_config" not in sent and "outputConfig" not in sent
    message = answer.choices[0].message
    assert message.tool_calls is None
    assert message.content is not None and json.loads(message.content) == ANSWER
    assert answer.choices[0].finish_reason == "stop"


@pytest.mark.parametrize("model", MODELS)
async def test_a_streamed_json_schema_answer_is_content_deltas(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream, model: str
) -> None:
    fake.state.set_scenario(Scenario(tool_call=True, tool_arguments=ANSWER))

    stream = await sdk.chat.completions.create(
        model=model, messages=HELLO, response_format=FORMAT, stream=True
    )
    choices = [c.choices[0] async for c in stream if c.choices]

    assert all(c.delta.tool_calls is None for c in choices)
    text = "".join(c.delta.content or "" for c in choices)
    assert json.loads(text) == ANSWER
    assert [c.finish_reason for c in choices if c.finish_reason] == ["stop"]


def one_at_a_time(sent: dict[str, Any]) -> Any:
    """Claude's `disable_parallel_tool_use` as the upstream was given it, in its own dialect."""
    if "toolConfig" in sent:  # Converse: no field of its own, Claude's in the extra fields
        extra = sent.get("additionalModelRequestFields") or {}
        return (extra.get("tool_choice") or {}).get("disable_parallel_tool_use")
    return sent["tool_choice"].get("disable_parallel_tool_use")


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize(("parallel", "flag"), [(False, True), (True, None)])
async def test_the_callers_parallel_tool_calls_reaches_the_forced_tool(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream, model: str, parallel: bool, flag: Any
) -> None:
    """`parallel_tool_calls: false` is said as Claude's own flag beside the forced tool, as for
    the caller's own tools: it was dropped, and Claude could answer with several calls."""
    fake.state.set_scenario(Scenario(tool_call=True, tool_arguments=ANSWER))

    answer = await sdk.chat.completions.create(
        model=model, messages=HELLO, response_format=FORMAT, parallel_tool_calls=parallel
    )

    sent = received(fake)
    assert forced_tool(sent)[0][0] == "json_output"
    assert one_at_a_time(sent) is flag
    assert json.loads(answer.choices[0].message.content or "") == ANSWER


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        ({"tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}]}, "tools"),
        (
            {"extra_body": {"thinking": {"type": "enabled", "budget_tokens": 2000}}},
            "thinking",
        ),
    ],
    ids=["own-tools", "thinking"],
)
async def test_what_a_forced_tool_cannot_say_is_a_400(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream, extra: dict[str, Any], words: str
) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        await sdk.chat.completions.create(
            model="claude-3-7", messages=HELLO, response_format=FORMAT, **extra
        )

    assert words in raised.value.message and "json_schema" in raised.value.message
    assert fake.state.calls() == []


@pytest.mark.parametrize("model", ["claude-3-7", "br-claude-3-7"])
async def test_the_400_for_thinking_names_the_thinking_the_caller_set(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream, model: str
) -> None:
    """Only a caller's own `thinking` is on beside a forced tool (an effort's is left off
    there): the refusal told it to turn off a reasoning effort it never set."""
    thinking = {"type": "enabled", "budget_tokens": 2000}
    with pytest.raises(openai.BadRequestError) as raised:
        await sdk.chat.completions.create(
            model=model, messages=HELLO, response_format=FORMAT, extra_body={"thinking": thinking}
        )

    message = raised.value.message
    assert "turn `thinking` off" in message and "reasoning effort" not in message, message
    assert fake.state.calls() == []


async def test_a_reasoning_effort_beside_the_forced_tool_is_left_off_not_refused(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    """An effort's thinking is never sent beside a forced tool, so the call is served."""
    fake.state.set_scenario(Scenario(tool_call=True, tool_arguments=ANSWER))
    answer = await sdk.chat.completions.create(
        model="claude-3-7", messages=HELLO, response_format=FORMAT, reasoning_effort="high"
    )

    assert json.loads(answer.choices[0].message.content or "") == ANSWER
    assert "thinking" not in received(fake)


async def test_a_schema_that_is_no_object_is_a_400(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    listed: Any = {"type": "json_schema", "json_schema": {"name": "l", "schema": {"type": "array"}}}
    with pytest.raises(openai.BadRequestError) as raised:
        await sdk.chat.completions.create(
            model="claude-3-5", messages=HELLO, response_format=listed
        )

    assert "object" in raised.value.message
    assert fake.state.calls() == []


@pytest.mark.parametrize("model", ["claude-2", "br-claude-2", "br-instant"])
async def test_a_claude_before_3_takes_no_forced_tool(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream, model: str
) -> None:
    """Claude 2 and Claude Instant (end of life) take no tools at all (tool use came with
    Claude 3; Converse lists none for them): the schema cannot be emulated, and the tool the
    caller never sent is not sent for it. Another deployment of the group may take the
    request (UNSUPPORTED_INPUT); none here: a 400 that says why, no upstream called."""
    with pytest.raises(openai.BadRequestError) as raised:
        await sdk.chat.completions.create(model=model, messages=HELLO, response_format=FORMAT)

    assert "json_schema" in raised.value.message and "tools" in raised.value.message
    assert fake.state.calls() == []
