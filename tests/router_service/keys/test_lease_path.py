"""What leasing a key costs a request that waits for none: a lone key's health names written
once per model, no queue-wait measurement entered when nothing can queue, and what both keep
deciding (a cooldown for one model, a queued lease measured) unchanged."""

from __future__ import annotations

from typing import Any

import pytest

from clients import chat_params_from_openai
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.engine import _attempts
from router_service.fake_upstream import FakeUpstream
from router_service.keys import KeyPool, Refusal, Unavailable
from router_service.outcomes import Outcome
from router_service.telemetry import key_wait
from tests.conftest import StartRouter, base_config
from tests.router_service.keys.test_pool import make_pool, take


async def test_a_lone_keys_health_names_are_written_once_per_model(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pool, clock = make_pool("k1")
    written: list[str] = []
    names = KeyPool._health_names

    def counted(self: KeyPool, model: str, candidates: Any) -> list[str]:
        written.append(model)
        return names(self, model, candidates)

    monkeypatch.setattr(KeyPool, "_health_names", counted)
    for model in ("m", "m", "other", "m"):
        await (await take(pool, model)).release()
    assert written == ["m", "other"]
    # The kept names still rule the key out: cooled for "m" only, until its cooldown ends.
    await pool.report(pool.keys[0], "m", Outcome.RATE_LIMITED, retry_after_s=3.0)
    assert await pool.lease("m") == Unavailable(Refusal.UNHEALTHY, 3.0)
    await (await take(pool, "other")).release()
    clock.advance(3.0)
    await (await take(pool, "m")).release()
    assert written == ["m", "other"]


async def test_a_lease_that_cannot_queue_enters_no_queue_measurement(
    fake: FakeUpstream, start_router: StartRouter, monkeypatch: pytest.MonkeyPatch
) -> None:
    entered: list[float] = []
    measured = key_wait

    def counted(deployment: Any, wait_s: float) -> Any:
        entered.append(wait_s)
        return measured(deployment, wait_s)

    monkeypatch.setattr(_attempts, "key_wait", counted)
    router = await start_router(base_config(fake.base_url))
    params, _ = chat_params_from_openai({"model": "chain", "messages": [{"role": "user"}]})
    response = await router.stub.Chat(pb.ChatRequest(params=params))
    assert response.completion.choices and entered == []
