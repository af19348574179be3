"""`parallel_tool_calls: false` reaches a Claude behind Bedrock's Converse API, which has no
field for it, as Claude's own `tool_choice.disable_parallel_tool_use` in
`additionalModelRequestFields` (without a `type`: Bedrock refuses one beside
`toolConfig.toolChoice`), the choice itself in `toolConfig`: it was dropped, and a structured
output by a forced tool (LangChain's `with_structured_output`) came back as several calls.
Anthropic's own API and Vertex take the flag in `tool_choice` (`_anthropic_map`); Gemini has no
such knob (a Gemini model's calls are as it makes them)."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from router_service.fake_upstream import FakeUpstream
from tests.conformance.helpers import WEATHER_TOOL
from tests.e2e.test_bedrock_sdk import router  # noqa: F401

HELLO: Any = [{"role": "user", "content": "hello"}]
ONE_AT_A_TIME = {"tool_choice": {"disable_parallel_tool_use": True}}


def converse_body(fake: FakeUpstream) -> dict[str, Any]:
    record = fake.state.last()
    assert record is not None and record.status == 200, record
    return record.body


@pytest.mark.parametrize(
    ("choice", "converse_choice"),
    [
        ("required", {"any": {}}),
        (
            {"type": "function", "function": {"name": "get_weather"}},
            {"tool": {"name": "get_weather"}},
        ),
        ("auto", {"auto": {}}),
        (None, {"auto": {}}),
    ],
)
async def test_one_call_at_a_time_reaches_a_claude_on_bedrock(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream, choice: Any, converse_choice: Any
) -> None:
    options: dict[str, Any] = {} if choice is None else {"tool_choice": choice}
    await sdk.chat.completions.create(
        model="iam-chat", messages=HELLO, tools=[WEATHER_TOOL], parallel_tool_calls=False, **options
    )
    body = converse_body(fake)
    assert body["toolConfig"]["toolChoice"] == converse_choice
    assert body["additionalModelRequestFields"] == ONE_AT_A_TIME


@pytest.mark.parametrize(
    "options",
    [{"parallel_tool_calls": True}, {"parallel_tool_calls": False, "tool_choice": "none"}, {}],
)
async def test_otherwise_no_flag_is_sent(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream, options: dict[str, Any]
) -> None:
    await sdk.chat.completions.create(
        model="iam-chat", messages=HELLO, tools=[WEATHER_TOOL], **options
    )
    assert "additionalModelRequestFields" not in converse_body(fake)


@pytest.mark.parametrize(
    ("own", "sent"),
    [
        # The caller's own Claude fields beside it are kept, the flag merged in among them.
        ({"top_k": 5}, {"top_k": 5, **ONE_AT_A_TIME}),
        # The caller's explicit value for the flag itself wins over `parallel_tool_calls`.
        (
            {"top_k": 5, "tool_choice": {"disable_parallel_tool_use": False}},
            {"top_k": 5, "tool_choice": {"disable_parallel_tool_use": False}},
        ),
    ],
)
async def test_the_callers_own_additional_fields_are_merged_not_overwritten(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream, own: dict[str, Any], sent: dict[str, Any]
) -> None:
    await sdk.chat.completions.create(
        model="iam-chat",
        messages=HELLO,
        tools=[WEATHER_TOOL],
        parallel_tool_calls=False,
        extra_body={"additionalModelRequestFields": own},
    )
    assert converse_body(fake)["additionalModelRequestFields"] == sent
