"""Another kind's reasoning fields a caller hands back (Claude's `thinking_blocks`, Gemini's
tool-call `extra_content`) do not reach an OpenAI-format deployment, whose strict servers
refuse unknown message properties; Claude's kinds still get the signed thinking. Other servers'
reasoning fields and `cache_control` reach only the servers that take them."""

from __future__ import annotations

from typing import Any

import anthropic
import openai
import pytest

from router_service.fake_upstream import FakeUpstream
from router_service.providers._foreign_fields import ALL_FIELDS, without_foreign_fields
from tests.conftest import RouterHandle, StartRouter, base_config

SIGNED = {"type": "thinking", "thinking": "think hard", "signature": "sig-1"}
SIGNATURE = {"google": {"thought_signature": "c2ln"}}
CACHED = {"type": "ephemeral"}
REASONED = {
    "reasoning_content": "it is a weather question",
    "reasoning": "it is a weather question",
    "reasoning_details": [{"type": "reasoning.text", "text": "it is", "index": 0}],
}


@pytest.fixture
async def router(fake: FakeUpstream, start_router: StartRouter) -> RouterHandle:
    """`chain` as ever (loopback: a server that takes every field); `strict-group` a server
    that takes none (as api.openai.com), `deep-group` one that takes `reasoning_content` (as
    DeepSeek)."""
    config = base_config(fake.base_url)
    for name, fields in (("strict", []), ("deep", ["reasoning_content"])):
        config["providers"][name] = {
            "base_url": fake.base_url,
            "keys": [f"sk-{name}"],
            "message_fields": fields,
        }
        config["models"][f"{name}-group"] = {"deployments": [{"provider": name, "model": name}]}
    return await start_router(config)


def history() -> list[Any]:
    call = {
        "id": "call_1",
        "type": "function",
        "function": {"name": "get_weather", "arguments": "{}"},
        "extra_content": SIGNATURE,
    }
    part = {"type": "text", "text": "weather?", "cache_control": CACHED}
    turn = {"role": "assistant", "content": None, "tool_calls": [call], **REASONED}
    return [
        {"role": "system", "content": [part]},
        {"role": "user", "content": "weather?"},
        {**turn, "thinking_blocks": [SIGNED]},
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
    ]


async def test_a_chat_callers_foreign_fields_stay_out_of_an_openai_body(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    await sdk.chat.completions.create(model="chain", messages=history())
    sent = fake.state.last()
    assert sent is not None
    turn = sent.body["messages"][2]
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
    without_foreign_fields(body, ALL_FIELDS, google=True)
    assert "thinking_blocks" not in body["messages"][2]
    assert body["messages"][2]["tool_calls"][0]["extra_content"] == SIGNATURE


async def sent_for(sdk: openai.AsyncOpenAI, fake: FakeUpstream, model: str) -> list[Any]:
    function = {"name": "get_weather", "parameters": {}}
    tool: Any = {"type": "function", "function": function, "cache_control": CACHED}
    await sdk.chat.completions.create(model=model, messages=history(), tools=[tool])
    sent = fake.state.last()
    assert sent is not None
    assert ("cache_control" in sent.body["tools"][0]) is (model == "chain")
    messages: list[Any] = sent.body["messages"]
    return messages


async def test_a_strict_server_gets_no_reasoning_handed_back_nor_cache_hints(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    messages = await sent_for(sdk, fake, "strict-group")
    assert messages[0]["content"] == [{"type": "text", "text": "weather?"}]
    assert not set(messages[2]) & {*REASONED, "thinking_blocks"}


async def test_deepseek_gets_its_reasoning_content_back_and_nothing_else(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    messages = await sent_for(sdk, fake, "deep-group")
    assert "cache_control" not in messages[0]["content"][0]
    assert {k: messages[2].get(k) for k in REASONED} == {
        "reasoning_content": REASONED["reasoning_content"],
        "reasoning": None,
        "reasoning_details": None,
    }


async def test_a_server_that_takes_them_all_gets_them_as_sent(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    messages = await sent_for(sdk, fake, "chain")
    assert messages[0]["content"][0]["cache_control"] == CACHED
    assert {k: messages[2][k] for k in REASONED} == REASONED
