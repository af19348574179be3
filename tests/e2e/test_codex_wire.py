"""Items fed back exactly as Codex CLI serializes them (codex-rs `ResponseItem`): no `id` on
reasoning, message or call items (`skip_serializing`), a reasoning item's `content: null`."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import RouterHandle, StartRouter
from tests.e2e.codex_turns import GROUPS, OPENING, config, streamed


@pytest.fixture
async def router(fake: FakeUpstream, start_router: StartRouter) -> RouterHandle:
    return await start_router(config(fake))


def as_codex_sends(item: Any) -> dict[str, Any]:
    """An output item as codex-rs serializes it back: its `id` left out."""
    out = {k: v for k, v in item.model_dump(exclude_none=True).items() if k != "id"}
    if out["type"] == "reasoning":
        out["content"] = None
    return out


async def test_codex_s_reasoning_items_without_ids_reach_the_responses_deployment(
    sdk: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    fake.state.set_scenario(GROUPS["codex-responses"][1])
    _, first = await streamed(sdk, "codex-responses", OPENING)
    reasoning, call = first.output
    fake.state.set_scenario(Scenario(content="Added hello.txt."))
    output = {"type": "custom_tool_call_output", "call_id": call.call_id, "output": "Success."}
    fed = [as_codex_sends(item) for item in first.output]
    _, second = await streamed(sdk, "codex-responses", [*OPENING, *fed, output])

    assert second.output_text == "Added hello.txt."
    sent = fake.state.calls(model="gpt-codex-resp")[-1].body["input"]
    [carried] = [item for item in sent if item["type"] == "reasoning"]
    assert carried["encrypted_content"] == reasoning.encrypted_content
    assert carried["summary"] == [{"type": "summary_text", "text": "Patching."}]
    assert "id" not in carried  # none was sent: none is made up
