"""Another kind's reasoning fields a caller hands back (Claude's `thinking_blocks`, Gemini's
tool-call `extra_content`) do not reach an OpenAI-format deployment, whose strict servers
refuse unknown message properties; Claude's kinds still get the signed thinking."""

from __future__ import annotations

from typing import Any

import anthropic
import openai

from router_service.fake_upstream import FakeUpstream
from router_service.providers._foreign_fields import without_foreign_fields

SIGNED = {"type": "thinking", "thinking": "think hard", "signature": "sig-1"}
SIGNATURE = {"google": {"thought_signature": "c2ln"}}


def history() -> list[Any]:
    call = {
        "id": "call_1",
        "type": "function",
        "function": {"name": "get_weather", "arguments": "{}"},
        "extra_content": SIGNATURE,
    }
    return [
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": None, "tool_calls": [call], "thinking_blocks": [SIGNED]},
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
    ]


async def test_a_chat_callers_foreign_fields_stay_out_of_an_openai_body(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    await sdk.chat.completions.create(model="chain", messages=history())
    sent = fake.state.last()
    assert sent is not None
    turn = sent.body["messages"][1]
    assert "thinking_blocks" not in turn
    assert turn["tool_calls"] == [
        {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
    ]


async def test_a_messages_callers_signed_thinking_stays_out_of_an_openai_body(
    claude: anthropic.AsyncAnthropic, fake: FakeUpstream
) -> None:
    turn: Any = {"role": "assistant", "content": [SIGNED, {"type": "text", "text": "sure"}]}
    messages: Any = [{"role": "user", "content": "why"}, turn, {"role": "user", "content": "?"}]
    await claude.messages.create(model="chain", max_tokens=64, messages=messages)
    sent = fake.state.last()
    assert sent is not None
    assert sent.body["messages"][1] == {"role": "assistant", "content": "sure"}


def test_googles_endpoint_keeps_its_thought_signature() -> None:
    body: dict[str, Any] = {"messages": history()}
    without_foreign_fields(body, google=True)
    assert "thinking_blocks" not in body["messages"][1]
    assert body["messages"][1]["tool_calls"][0]["extra_content"] == SIGNATURE
