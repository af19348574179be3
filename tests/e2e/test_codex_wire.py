"""Items fed back exactly as Codex CLI serializes them (codex-rs `ResponseItem`): no `id` on
reasoning, message or call items (`skip_serializing`), a reasoning item's `content: null`."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import RouterHandle, StartRouter
from tests.e2e.codex_turns import GROUPS, OPENING, config, streamed
from tests.e2e.stream_harness import StartEdge


@pytest.fixture
async def router(fake: FakeUpstream, start_router: StartRouter) -> RouterHandle:
    return await start_router(config(fake))


def as_codex_sends(item: Any) -> dict[str, Any]:
    """An output item as codex-rs serializes it back: its `id` left out."""
    out = {k: v for k, v in item.model_dump(exclude_none=True).items() if k != "id"}
    if out["type"] == "reasoning":
        out["content"] = None
    return out


async def codex_turns(sdk: openai.AsyncOpenAI, fake: FakeUpstream) -> tuple[Any, Any]:
    """A patching turn on the Responses deployment, then the next, its items fed back as Codex
    sends them: the first turn's reasoning item, the second turn's Response."""
    fake.state.set_scenario(GROUPS["codex-responses"][1])
    _, first = await streamed(sdk, "codex-responses", OPENING)
    reasoning, call = first.output
    fake.state.set_scenario(Scenario(content="Added hello.txt."))
    output = {"type": "custom_tool_call_output", "call_id": call.call_id, "output": "Success."}
    fed = [as_codex_sends(item) for item in first.output]
    _, second = await streamed(sdk, "codex-responses", [*OPENING, *fed, output])
    return reasoning, second


async def test_codex_s_reasoning_items_without_ids_reach_the_responses_deployment(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    reasoning, second = await codex_turns(sdk, fake)

    assert second.output_text == "Added hello.txt."
    sent = fake.state.calls(model="gpt-codex-resp")[-1].body["input"]
    [carried] = [item for item in sent if item["type"] == "reasoning"]
    assert carried["encrypted_content"] == reasoning.encrypted_content
    assert carried["summary"] == [{"type": "summary_text", "text": "Patching."}]
    assert "id" not in carried  # none was sent: none is made up


@pytest.mark.parametrize("action", ["redact", "block"])
async def test_a_request_rule_leaves_encrypted_reasoning_as_it_is(
    fake: FakeUpstream, start_router: StartRouter, start_edge: StartEdge, action: str
) -> None:
    # An operator's pattern that happens to occur in the ciphertext (base64: any short word
    # does, a long session's items being kilobytes each).
    rule = {"name": "codename", "patterns": ["fake-1"], "action": action}
    router = await start_router(config(fake) | {"guardrails": [rule]})
    edge = await start_edge(router)
    async with openai.AsyncOpenAI(
        base_url=f"{edge.base_url}/v1", api_key="sk-caller", max_retries=0, timeout=10
    ) as sdk:
        reasoning, second = await codex_turns(sdk, fake)

    assert second.output_text == "Added hello.txt."
    calls = fake.state.calls(model="gpt-codex-resp")
    assert len(calls) == 2  # taken the first time: no retry without the reasoning
    [carried] = [item for item in calls[-1].body["input"] if item["type"] == "reasoning"]
    assert carried["encrypted_content"] == reasoning.encrypted_content
