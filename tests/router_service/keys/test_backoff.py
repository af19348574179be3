"""A key × model's backoff after 429s without a hint: it grows to its ceiling and stays there."""

from __future__ import annotations

from router_service.config import KeyHealthConfig
from router_service.keys import KeyLease, Refusal, Unavailable
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


async def test_one_keys_long_wait_does_not_become_its_providers() -> None:
    pool, clock = make_pool("k1", "k2", "k3", "k4")
    k1, k2, *_ = pool.keys
    # k2 is told to wait a minute; then k1 meets its daily limit (Gemini's retryDelay: hours).
    # Two of four keys at once: the provider is throttled, but no longer than a minute, the
    # shortest wait of its throttled keys; the daily limit stays k1's own.
    await pool.report(k2, "m", Outcome.RATE_LIMITED, retry_after_s=60.0)
    await pool.report(k1, "m", Outcome.RATE_LIMITED, retry_after_s=8 * 3600.0)
    refused = await pool.lease("m")
    assert refused == Unavailable(Refusal.UNHEALTHY, 60.0)
    clock.advance(60.0)
    lease = await pool.lease("m")
    assert isinstance(lease, KeyLease) and lease.key is not k1
