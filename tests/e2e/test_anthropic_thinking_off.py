"""`thinking: {"type": "disabled"}` at the edge's Messages API: Claude then answers with no
thinking block, so a deployment that reasons however it is asked (DeepSeek's reasoner, a vLLM
reasoning parser) has its reasoning taken out, unary and streamed."""

from __future__ import annotations

from typing import Any

import anthropic
import pytest

from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import RouterHandle, StartRouter
from tests.e2e.test_anthropic_sdk import KINDS, config, streamed

OFF: Any = {"type": "disabled"}


@pytest.fixture
async def router(fake: FakeUpstream, start_router: StartRouter) -> RouterHandle:
    return await start_router(config(fake))


@pytest.mark.parametrize("model", KINDS)
async def test_disabled_thinking_shows_no_thinking_block(
    claude: anthropic.AsyncAnthropic, fake: FakeUpstream, model: str
) -> None:
    fake.state.set_scenario(Scenario(reasoning="secret musings"))
    ask: Any = [{"role": "user", "content": "why"}]
    request: dict[str, Any] = {"model": model, "max_tokens": 64, "messages": ask, "thinking": OFF}
    message = await claude.messages.create(**request)
    assert [b.type for b in message.content] == ["text"]
    thought, whole = await streamed(claude, "thinking_delta", **request)
    assert thought == []
    assert [b.type for b in whole.content] == ["text"]
    assert "secret musings" not in str(whole.model_dump())
    sent = fake.state.last()
    assert sent is not None and "include_reasoning" not in sent.body  # the router's word only
