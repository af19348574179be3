"""A batch's `usage` through the official `openai` SDK → the edge → the router → the fake
upstream: the cached input tokens its lines' answers report are added up in
`usage.input_tokens_details.cached_tokens`, as OpenAI's Batch object gives them."""

from __future__ import annotations

from router_service.fake_upstream import FakeUpstream, Scenario
from tests.e2e.test_batches_sdk import Open, chat_line, counts, jsonl, open_batches, run_batch

__all__ = ["open_batches"]  # the fixture, used here


async def test_a_batchs_usage_adds_up_its_lines_cached_input_tokens(
    fake: FakeUpstream, open_batches: Open
) -> None:
    router, sdk, _ = await open_batches()
    fake.state.set_scenario(Scenario(cached_tokens=2))
    lines = [chat_line(f"q{n}", text="one two three four") for n in range(3)]
    done = await run_batch(router, sdk, jsonl(*lines), "/v1/chat/completions")
    assert done.status == "completed" and counts(done) == (3, 3, 0)
    assert done.usage is not None
    assert done.usage.input_tokens_details.cached_tokens == 3 * 2
    assert done.usage.input_tokens == 3 * 4
