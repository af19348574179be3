"""A batch cancelled while nobody runs it, taken over by a replica whose store cannot give its
input file then: it is let go (as one expiring waiting is), its lines listed `batch_cancelled`
where it is taken over next, its counts adding up to its total."""

from __future__ import annotations

from typing import Any

import pytest

from router_service.errors import StoreUnavailableError
from router_service.fake_upstream import FakeUpstream
from tests.e2e.test_batches_sdk import counts, lines_of
from tests.replicas.test_batch_handover import Pair, handed_over, pair, settled

__all__ = ["pair"]  # the fixture, used here


async def test_a_cancelled_batch_whose_input_cannot_be_read_is_handed_over_not_miscounted(
    fake: FakeUpstream, pair: Pair, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Taken over `cancelling`, its lines are read to list those not run: when the store cannot
    give its input file then, it is let go (as one expiring waiting is), not ended `cancelled`
    with lines in neither file (counts that do not add up to its total)."""
    _, two, _, second, _ = pair
    batch_id = await handed_over(fake, pair)
    assert (await second.batches.cancel(batch_id)).status == "cancelling"
    content, reads = two.runtime.files.content, list[tuple[Any, ...]]()

    async def unreadable_once(*args: Any) -> Any:
        if not reads:
            reads.append(args)
            raise StoreUnavailableError("Redis is unavailable.")
        return await content(*args)

    monkeypatch.setattr(two.runtime.files, "content", unreadable_once)
    assert await two.server.batch_jobs.adopt(two.runtime) == 1
    await settled(two)
    assert reads  # its input file was asked for, and not given
    assert (await second.batches.retrieve(batch_id)).status == "cancelling"  # let go
    assert await two.server.batch_jobs.adopt(two.runtime) == 1
    await settled(two)
    cancelled = await second.batches.retrieve(batch_id)
    assert cancelled.status == "cancelled" and counts(cancelled) == (4, 2, 2)
    assert cancelled.error_file_id
    not_run = await lines_of(second, cancelled.error_file_id)
    assert [e["custom_id"] for e in not_run] == ["l3", "l4"]
