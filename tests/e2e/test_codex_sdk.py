"""OpenAI's Codex CLI through the edge: the openai SDK sends Responses requests built as Codex
builds them (custom `apply_patch` tool, encrypted reasoning, `store: false`) to a group of a chat
completions deployment, a Responses API one and an Anthropic one (custom tools emulated as a
function). Turn 1 patches (a custom tool call); turn 2 feeds back its output, the call and the
tool's output, and is answered in text."""

from __future__ import annotations

from typing import Any

import openai
import orjson
import pytest

from router_service.fake_upstream import FakeUpstream, Scenario
from router_service.fake_upstream._responses_api import ENCRYPTED_PREFIX
from router_service.fake_upstream._state import CallRecord
from tests.conftest import RouterHandle, StartRouter
from tests.e2e.codex_turns import (
    GROUPS,
    LARK,
    OPENING,
    PATCH,
    config,
    fed_back,
    request,
    streamed,
)


@pytest.fixture
async def router(fake: FakeUpstream, start_router: StartRouter) -> RouterHandle:
    return await start_router(config(fake))


def last_call(fake: FakeUpstream, group: str) -> CallRecord:
    return fake.state.calls(model=GROUPS[group][0])[-1]


async def two_turns(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream, group: str
) -> tuple[list[Any], Any, Any]:
    """Turn 1 (patching) and turn 2 (the patch applied): turn 1's events, each one's Response;
    each checked the way Codex reads them."""
    fake.state.set_scenario(GROUPS[group][1])
    events, first = await streamed(sdk, group, OPENING)
    call = next(item for item in first.output if item.type == "custom_tool_call")
    assert (call.name, call.input) == ("apply_patch", PATCH)
    deltas = [e.delta for e in events if e.type == "response.custom_tool_call_input.delta"]
    assert "".join(deltas) == PATCH
    done = [e.item for e in events if e.type == "response.output_item.done"]
    assert [item.model_dump() for item in done] == [item.model_dump() for item in first.output]
    assert first.usage is not None and first.usage.output_tokens > 0
    fake.state.set_scenario(Scenario(content="Added hello.txt."))
    output = {"type": "custom_tool_call_output", "call_id": call.call_id, "output": "Success."}
    _, second = await streamed(sdk, group, [*OPENING, *fed_back(first.output), output])
    assert second.output_text == "Added hello.txt."
    return events, first, second


async def test_codex_on_a_chat_completions_deployment(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    await two_turns(sdk, fake, "codex-chat")

    body = last_call(fake, "codex-chat").body
    assert body["tools"][1] == {
        "type": "custom",
        "custom": {
            "name": "apply_patch",
            "description": "Use the `apply_patch` tool to edit files.",
            "format": {"type": "grammar", "grammar": {"syntax": "lark", "definition": LARK}},
        },
    }
    assert body["tools"][0]["function"]["name"] == "shell"
    assert (body["tool_choice"], body["parallel_tool_calls"]) == ("auto", False)
    assert (body["prompt_cache_key"], body["verbosity"]) == ("thread-1", "low")
    assert body["reasoning_effort"] == "medium"
    assert "include" not in body and "store" not in body
    call = {
        "id": "call_fake_1",
        "type": "custom",
        "custom": {"name": "apply_patch", "input": PATCH},
    }
    assert body["messages"][-2] == {"role": "assistant", "content": None, "tool_calls": [call]}
    assert body["messages"][-1] == {
        "role": "tool",
        "tool_call_id": "call_fake_1",
        "content": "Success.",
    }


async def test_codex_on_a_responses_deployment_keeps_its_reasoning(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    events, first, _ = await two_turns(sdk, fake, "codex-responses")

    reasoning = first.output[0]
    assert reasoning.type == "reasoning" and reasoning.id.startswith("rs_")
    said = [e for e in events if e.type == "response.reasoning_summary_text.delta"]
    assert "".join(e.delta for e in said) == "Patching."
    assert {e.item_id for e in said} == {reasoning.id}
    assert reasoning.encrypted_content.startswith(ENCRYPTED_PREFIX)
    assert [part.text for part in reasoning.summary] == ["Patching."]
    body = last_call(fake, "codex-responses").body
    assert body["tools"][1] == {
        "type": "custom",
        "name": "apply_patch",
        "description": "Use the `apply_patch` tool to edit files.",
        "format": {"type": "grammar", "syntax": "lark", "definition": LARK},
    }
    assert body["include"] == ["reasoning.encrypted_content"] and body["store"] is False
    assert body["input"][-3:] == [
        {
            "type": "reasoning",
            "id": reasoning.id,
            "summary": [{"type": "summary_text", "text": "Patching."}],
            "encrypted_content": reasoning.encrypted_content,
        },
        {"type": "custom_tool_call", "call_id": "call_fake_1", "name": "apply_patch",
         "input": PATCH},
        {"type": "custom_tool_call_output", "call_id": "call_fake_1", "output": "Success."},
    ]  # fmt: skip


async def test_codex_on_an_anthropic_deployment_has_its_custom_tool_emulated(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    await two_turns(sdk, fake, "codex-claude")

    body = last_call(fake, "codex-claude").body
    patch_tool = body["tools"][1]
    assert patch_tool["name"] == "apply_patch"
    assert patch_tool["input_schema"]["properties"]["input"]["type"] == "string"
    assert patch_tool["input_schema"]["required"] == ["input"]
    assert LARK in patch_tool["description"]
    use, result = body["messages"][-2]["content"][-1], body["messages"][-1]["content"][0]
    assert (use["type"], use["name"], use["input"]) == ("tool_use", "apply_patch", {"input": PATCH})
    assert (result["type"], result["tool_use_id"]) == ("tool_result", use["id"])
    assert "include" not in body


async def test_a_unary_codex_turn_on_a_responses_deployment(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    fake.state.set_scenario(GROUPS["codex-responses"][1])
    answer = await sdk.responses.create(**request("codex-responses", OPENING, stream=False))

    reasoning, call = answer.output
    assert reasoning.type == "reasoning"
    assert reasoning.encrypted_content.startswith(ENCRYPTED_PREFIX)
    assert call.type == "custom_tool_call"
    assert (call.call_id, call.name, call.input) == ("call_fake_1", "apply_patch", PATCH)


async def test_reasoning_the_upstream_cannot_read_is_left_out_not_fatal(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    fake.state.set_scenario(Scenario(content="Fine."))
    foreign = {"type": "reasoning", "id": "rs_other", "summary": [], "encrypted_content": "gAAAx"}
    said = {"type": "message", "role": "assistant", "content": "Earlier."}
    items = [*OPENING, foreign, said, {"type": "message", "role": "user", "content": "Go on"}]
    answer = await sdk.responses.create(**request("codex-responses", items, stream=False))

    assert answer.output_text == "Fine."
    refused, taken = fake.state.calls(model="gpt-codex-resp")
    assert [i.get("type") for i in refused.body["input"]].count("reasoning") == 1
    assert "reasoning" not in [i.get("type") for i in taken.body["input"]]


async def test_a_chat_caller_s_custom_tool_is_emulated_on_anthropic(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    fake.state.set_scenario(GROUPS["codex-claude"][1])
    tool: Any = {"type": "custom", "custom": {"name": "apply_patch", "description": "Edits."}}
    stream = await sdk.chat.completions.create(
        model="codex-claude", messages=[{"role": "user", "content": "patch"}], tools=[tool],
        stream=True,
    )  # fmt: skip
    calls = [c async for chunk in stream for c in chunk.choices[0].delta.tool_calls or []]

    assert calls[0].model_extra == {"custom": {"name": "apply_patch", "input": ""}}
    first = calls[0].model_dump(exclude_none=True)
    assert (first["type"], first["id"], "function" in first) == ("custom", "toolu_fake_1", False)
    assert "".join((c.model_extra or {})["custom"]["input"] for c in calls) == PATCH


async def test_a_tool_type_an_upstream_cannot_take_is_refused_by_name(
    sdk: openai.AsyncOpenAI,
) -> None:
    tool: Any = {"type": "mystery", "mystery": {"name": "m"}}
    with pytest.raises(openai.BadRequestError) as caught:
        await sdk.chat.completions.create(
            model="codex-claude", messages=[{"role": "user", "content": "hi"}], tools=[tool]
        )

    assert "'mystery'" in caught.value.message


async def test_an_openai_compatible_server_gets_custom_tools_emulated(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    await two_turns(sdk, fake, "codex-compatible")

    body = last_call(fake, "codex-compatible").body
    assert body["tools"][1]["type"] == "function"
    assert body["tools"][1]["function"]["parameters"]["required"] == ["input"]
    call = body["messages"][-2]["tool_calls"][0]
    assert (call["type"], call["function"]["name"]) == ("function", "apply_patch")
    assert orjson.loads(call["function"]["arguments"]) == {"input": PATCH}
