"""A batch line's tokens are settled against its client's budgets as a Chat call's are, whatever
stops the line once its upstream answered: a cancel of the batch coming as the line settles
(its answer never written, the line never run again) lets the settlement end, so the client
is charged what the upstream reported, once, not the line's estimate. The settlement was cut
there: the estimate (256 output tokens without `max_tokens`) stayed counted."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import openai
import pytest

from router_service.fake_upstream import FakeUpstream
from router_service.state import MemoryStateStore
from tests.conftest import StartRouter
from tests.e2e.stream_harness import StartEdge
from tests.e2e.test_batches_sdk import chat_line, jsonl
from tests.helpers import eventually
from tests.router_service.auth.helpers import client, guarded_config

KEY = "sk-client-budgeted"
# Below one line's estimate (256 output tokens and its prompt), far above what it uses.
BUDGET = 200


class HoldsTheSettlement(MemoryStateStore):
    """A store whose first correction of a count (a call's settlement: a negative delta of
    its estimate) waits until `go` is set, saying when it began (`started`)."""

    def __init__(self) -> None:
        super().__init__()
        self.started = asyncio.Event()
        self.go = asyncio.Event()

        self.cut = False  # the held settlement was cancelled

    async def add_to_bucket(
        self, name: str, bucket: int, counts: dict[str, float], ttl_s: float, *, at: str = ""
    ) -> str:
        if not self.started.is_set() and any(value < 0 for value in counts.values()):
            self.started.set()
            try:
                await self.go.wait()
            except asyncio.CancelledError:
                self.cut = True
                raise
        return await super().add_to_bucket(name, bucket, counts, ttl_s, at=at)


async def _line_cancelled(store: HoldsTheSettlement) -> bool:
    """Whether the cancel reached the line's task: its settlement cut, or (let to end) the
    task itself cancelled, waiting for it."""
    return store.cut or any(
        getattr(task.get_coro(), "__qualname__", "").endswith("._lines.<locals>.line")
        and task.cancelling() > 0
        for task in asyncio.all_tasks()
    )


@pytest.fixture
async def budgeted(
    fake: FakeUpstream, start_router: StartRouter, start_edge: StartEdge
) -> AsyncIterator[tuple[openai.AsyncOpenAI, HoldsTheSettlement]]:
    store = HoldsTheSettlement()
    caller = client("svc", KEY, tokens_per_day=BUDGET)
    router = await start_router(guarded_config(fake.base_url, caller), store=store)
    edge = await start_edge(router)
    async with openai.AsyncOpenAI(
        base_url=f"{edge.base_url}/v1", api_key=KEY, max_retries=0, timeout=10
    ) as sdk:
        yield sdk, store


async def test_a_line_cancelled_as_it_settles_is_charged_what_it_used_not_its_estimate(
    budgeted: tuple[openai.AsyncOpenAI, HoldsTheSettlement],
) -> None:
    sdk, store = budgeted
    uploaded = await sdk.files.create(file=("in.jsonl", jsonl(chat_line("l1"))), purpose="batch")
    batch = await sdk.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    await asyncio.wait_for(store.started.wait(), 10)  # the line answered, settling
    cancel = asyncio.ensure_future(sdk.batches.cancel(batch.id))  # waits for its runner
    await eventually(lambda: _line_cancelled(store), what="the cancel reaching the line")
    store.go.set()
    cancelled = await asyncio.wait_for(cancel, 10)
    assert cancelled.status == "cancelled"
    # Its few tokens counted, not its estimate (over the budget): the client calls again.
    answer = await sdk.chat.completions.create(
        model="chain", messages=[{"role": "user", "content": "hi"}]
    )
    assert answer.choices[0].message.content
