"""Codex on Claude keeps thinking after its tool calls: the signed thinking of a Claude answer
comes back to a Responses caller that asked for `reasoning.encrypted_content` as the reasoning
item's `encrypted_content` (our encoding), and fed back, reaches Claude first in the assistant
turn that called the tool, so `thinking` stays on. Other upstreams never get it."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from clients.codec._responses_thinking import THINKING_PREFIX, encode_thinking
from router_service.fake_upstream import (
    FAKE_AWS_ACCESS_KEY_ID,
    FAKE_AWS_SECRET_ACCESS_KEY,
    FakeUpstream,
    Scenario,
)
from router_service.fake_upstream._anthropic import FAKE_SIGNATURE
from tests.conftest import RouterHandle, StartRouter
from tests.e2e.background import settled
from tests.e2e.codex_turns import OPENING, PATCH, config, fed_back, request, streamed

IAM = f"{FAKE_AWS_ACCESS_KEY_ID}:{FAKE_AWS_SECRET_ACCESS_KEY}"
CLAUDE = "claude-codex"
SIGNED = {"type": "thinking", "thinking": "Patching.", "signature": FAKE_SIGNATURE}
THINKS = Scenario(
    tool_call=True, tool_name="apply_patch", tool_arguments={"input": PATCH}, reasoning="Patching."
)


@pytest.fixture
async def router(fake: FakeUpstream, start_router: StartRouter) -> RouterHandle:
    out = config(fake)
    out["providers"]["br"] = {
        "kind": "bedrock", "base_url": fake.url, "region": "us-east-1", "keys": [IAM]
    }  # fmt: skip
    bedrock = {"provider": "br", "model": "anthropic.claude-sonnet-4-5-v1:0"}
    out["models"]["codex-bedrock"] = {"deployments": [bedrock]}
    return await start_router(out)


def next_turn(first: Any) -> list[Any]:
    """Turn 2's input: turn 1's output fed back, then the patch's result."""
    call = next(item for item in first.output if item.type == "custom_tool_call")
    result = {"type": "custom_tool_call_output", "call_id": call.call_id, "output": "Success."}
    return [*OPENING, *fed_back(first.output), result]


def claude_turn(fake: FakeUpstream) -> dict[str, Any]:
    """The assistant turn (the tool call) of the last call Claude received, and its body."""
    body = fake.state.calls(model=CLAUDE)[-1].body
    turn: dict[str, Any] = body["messages"][-2]
    return turn | {"thinking": body.get("thinking")}


async def test_streamed_codex_turns_keep_claude_thinking(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    fake.state.set_scenario(THINKS)
    events, first = await streamed(sdk, "codex-claude", OPENING)

    reasoning = first.output[0]
    assert reasoning.type == "reasoning"
    assert reasoning.encrypted_content.startswith(THINKING_PREFIX)
    done = [e.item for e in events if e.type == "response.output_item.done"]
    assert done[0].encrypted_content == reasoning.encrypted_content
    fake.state.set_scenario(Scenario(content="Added hello.txt."))
    _, second = await streamed(sdk, "codex-claude", next_turn(first))

    assert second.output_text == "Added hello.txt."
    turn = claude_turn(fake)
    assert turn["content"][0] == SIGNED
    assert turn["content"][1]["type"] == "tool_use"
    assert turn["thinking"]["type"] == "enabled"


async def test_unary_codex_turns_keep_claude_thinking(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    fake.state.set_scenario(THINKS)
    unasked = request("codex-claude", OPENING, stream=False) | {"include": []}
    assert (await sdk.responses.create(**unasked)).output[0].encrypted_content is None  # as OpenAI
    first = await sdk.responses.create(**request("codex-claude", OPENING, stream=False))

    reasoning = first.output[0]
    assert [part.text for part in reasoning.content or []] == ["Patching."]
    assert reasoning.encrypted_content.startswith(THINKING_PREFIX)
    fake.state.set_scenario(Scenario(content="Added hello.txt."))
    await sdk.responses.create(**request("codex-claude", next_turn(first), stream=False))

    turn = claude_turn(fake)
    assert turn["content"][0] == SIGNED
    assert turn["thinking"]["type"] == "enabled"


async def test_bedrock_claude_gets_its_signed_reasoning_back(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    fake.state.set_scenario(Scenario(content="Done."))
    signed = {"type": "thinking", "thinking": "Patching.", "signature": "sig-bedrock"}
    carried = {"type": "reasoning", "id": "rs_1", "summary": [],
               "encrypted_content": encode_thinking([signed])}  # fmt: skip
    call = {"type": "function_call", "call_id": "c1", "name": "shell", "arguments": "{}"}
    result = {"type": "function_call_output", "call_id": "c1", "output": "ok"}
    items = [*OPENING, carried, call, result]
    await sdk.responses.create(**request("codex-bedrock", items, stream=False))

    body = fake.state.calls(model="anthropic.claude-sonnet-4-5-v1:0")[-1].body
    turn = body["messages"][-2]
    text = {"text": "Patching.", "signature": "sig-bedrock"}
    assert turn["content"][0] == {"reasoningContent": {"reasoningText": text}}
    assert "toolUse" in turn["content"][1]
    thinking = body["additionalModelRequestFields"]["thinking"]
    assert thinking["type"] == "enabled"


async def test_claude_thinking_never_reaches_openai(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    fake.state.set_scenario(THINKS)
    first = await sdk.responses.create(**request("codex-claude", OPENING, stream=False))
    fake.state.set_scenario(Scenario(content="Added hello.txt."))
    answer = await sdk.responses.create(**request("codex-responses", next_turn(first)))

    assert [e async for e in answer][-1].type == "response.completed"
    (call,) = fake.state.calls(model="gpt-codex-resp")  # nothing it refused
    assert "reasoning" not in [item.get("type") for item in call.body["input"]]
    assert THINKING_PREFIX not in str(call.body)


async def test_a_garbled_carried_thinking_is_a_400_naming_it(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    garbled = {"type": "reasoning", "id": "rs_1", "summary": [],
               "encrypted_content": THINKING_PREFIX + "not-base64!"}  # fmt: skip
    items = [*OPENING, garbled, {"type": "message", "role": "assistant", "content": "Hi."}]
    with pytest.raises(openai.BadRequestError) as caught:
        await sdk.responses.create(**request("codex-claude", items, stream=False))

    assert caught.value.body["param"] == "input[2].encrypted_content"  # type: ignore[index]
    assert fake.state.calls(model=CLAUDE) == []


@pytest.mark.parametrize("stream", [False, True])
async def test_a_background_turn_keeps_claude_thinking_as_the_foreground_one(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream, router: RouterHandle, stream: bool
) -> None:
    fake.state.set_scenario(THINKS)
    turn = request("codex-claude", OPENING, stream=stream) | {"store": True, "background": True}
    started = await sdk.responses.create(**turn)
    if stream:
        events = [event async for event in started]
        started = events[0].response
        done = next(e.item for e in events if e.type == "response.output_item.done")
        assert done.encrypted_content.startswith(THINKING_PREFIX)
    first = await settled(sdk, started.id, router.server)

    reasoning = first.output[0]
    assert reasoning.type == "reasoning"
    assert (reasoning.encrypted_content or "").startswith(THINKING_PREFIX)
    fake.state.set_scenario(Scenario(content="Added hello.txt."))
    await sdk.responses.create(**request("codex-claude", next_turn(first), stream=False))
    assert claude_turn(fake)["content"][0] == SIGNED
