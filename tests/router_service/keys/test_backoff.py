"""A key × model's backoff after 429s without a hint: it grows to its ceiling and stays there."""

from __future__ import annotations

from router_service.config import KeyHealthConfig
from router_service.outcomes import Outcome
from tests.router_service.keys.test_pool import make_pool


async def test_backoff_stays_at_its_ceiling_however_many_429s_come() -> None:
    pool, clock = make_pool("k1")
    key = pool.keys[0]
    ceiling = KeyHealthConfig().backoff_max_s
    # A busy key's requests in flight all meet the throttle: each 429 is one more strike, and
    # nothing resets them before a success. 1,100 is a few bursts of a key with no limit.
    for _ in range(1_100):
        await pool.report(key, "m", Outcome.RATE_LIMITED)
    (until,) = await pool.store.deadlines([pool.cool_name(key, "m")])
    assert clock.now() < until <= clock.now() + ceiling
