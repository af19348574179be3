"""A request's span counts the prompt cache's parts of its input tokens (OpenTelemetry GenAI:
gen_ai.usage.cache_read.input_tokens, gen_ai.usage.cache_creation.input_tokens), only when the
upstream reported some, beside its cost at the cache-write price."""

from __future__ import annotations

import pytest

from router_service.fake_upstream import FakeUpstream
from router_service.telemetry.testing import TelemetryCapture
from tests.conftest import StartRouter
from tests.router_service.auth.helpers import chat
from tests.router_service.engine.test_cache_write_cost import WRITES, claude_config
from tests.router_service.telemetry.spans import attrs, ended_request

READ, WRITTEN = "gen_ai.usage.cache_read.input_tokens", "gen_ai.usage.cache_creation.input_tokens"


async def test_the_span_counts_cache_reads_and_writes_and_the_cost(
    fake: FakeUpstream, start_router: StartRouter, captured: TelemetryCapture
) -> None:
    router = await start_router(claude_config(fake.base_url))
    await router.stub.Chat(chat(model="sonnet-old", text="nothing cached"))
    fake.state.set_scenario(WRITES, model="claude-x")
    answer = await router.stub.Chat(chat(model="sonnet", text="cached and written"))
    got = attrs(await ended_request(captured, "sonnet"))
    assert (got[READ], got[WRITTEN]) == (2, 8)
    assert got["gen_ai.usage.input_tokens"] == answer.completion.usage.prompt_tokens
    assert got["switchboard.cost.usd"] == pytest.approx(answer.route.cost_usd)
    plain = attrs(await ended_request(captured, "sonnet-old"))
    assert READ not in plain and WRITTEN not in plain
