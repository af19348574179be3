"""Tool-call ids at a Vertex AI Gemini deployment: Vertex AI's v1 FunctionCall and
FunctionResponse have an `id` (google.cloud.aiplatform.v1, since March 2025, as the Gemini API's
do: https://cloud.google.com/vertex-ai/generative-ai/docs/reference/rest/v1/Content), so a
conversation's call ids reach it, as at the `gemini` kind, and a result is matched to its call by
id rather than by order and name (two calls of one function in a turn). Both entrances, unary
and streamed."""

from __future__ import annotations

from typing import Any

import anthropic
import openai
import pytest

from router_service.fake_upstream import FakeUpstream
from tests.e2e.test_reasoning_sdk import received, router  # noqa: F401

CALL = {"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": "{}"}}
TOOLS: Any = [{"type": "function", "function": {"name": "weather", "parameters": {}}}]
CHAT: Any = [
    {"role": "user", "content": "weather?"},
    {"role": "assistant", "content": None, "tool_calls": [CALL]},
    {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
]
MESSAGES: Any = [
    {"role": "user", "content": "weather?"},
    {
        "role": "assistant",
        "content": [{"type": "tool_use", "id": "call_1", "name": "weather", "input": {}}],
    },
    {
        "role": "user",
        "content": [{"type": "tool_result", "tool_use_id": "call_1", "content": "sunny"}],
    },
]


def sent_ids(fake: FakeUpstream) -> list[tuple[str, Any]]:
    parts = [p for c in received(fake)["contents"] for p in c["parts"]]
    kinds = ("functionCall", "functionResponse")
    return [(k, p[k].get("id")) for p in parts for k in kinds if k in p]


@pytest.mark.parametrize("streaming", [False, True], ids=["unary", "stream"])
async def test_an_openai_callers_call_ids_reach_vertex(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream, streaming: bool
) -> None:
    answer: Any = await sdk.chat.completions.create(
        model="vx-gemini", messages=CHAT, tools=TOOLS, stream=streaming
    )
    if streaming:
        async for _ in answer:
            pass

    assert sent_ids(fake) == [("functionCall", "call_1"), ("functionResponse", "call_1")]


async def test_a_messages_callers_tool_use_ids_reach_vertex(
    claude: anthropic.AsyncAnthropic, fake: FakeUpstream
) -> None:
    tools: Any = [{"name": "weather", "input_schema": {"type": "object"}}]
    await claude.messages.create(model="vx-gemini", max_tokens=64, messages=MESSAGES, tools=tools)

    assert sent_ids(fake) == [("functionCall", "call_1"), ("functionResponse", "call_1")]
