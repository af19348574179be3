"""An operator's `keys enable` (SetKeyEnabled true) vouches for a key: its recent 429s no longer
count toward throttling its provider for a model (`keys/_provider_throttle.py`), and a throttle
they made is lifted, on memory and on Redis state alike."""

from __future__ import annotations

import contextlib
import time
from typing import Any

import grpc
import pytest

from clients.switchboard.v1 import admin_service_pb2 as admin_pb
from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream, Scenario
from router_service.keys import fingerprint
from tests.conftest import RouterHandle, StartRouter
from tests.replicas.redis_fixtures import redis_prefix, redis_url, state_section
from tests.router_service.server.test_key_pools import ask, one_provider

pytestmark = pytest.mark.timeout(60)
__all__ = ["redis_prefix", "redis_url", "state_section"]  # fixtures, for the Redis-backed cases


async def _enable(router: RouterHandle, *keys: str) -> None:
    for key in keys:
        await router.admin.SetKeyEnabled(
            admin_pb.SetKeyEnabledRequest(
                provider="alpha", fingerprint=fingerprint(key), enabled=True
            )
        )


async def _limit(fake: FakeUpstream, router: RouterHandle, key: str) -> None:
    """`key`'s one 429 for model-a (Retry-After 30 s): calls until it met it."""
    fake.state.set_scenario(Scenario.rate_limited(retry_after="30", times=1), key=key)
    calls = fake.state.count(key=key)  # it may have served another's retry
    while fake.state.count(key=key) == calls:
        with contextlib.suppress(grpc.aio.AioRpcError):  # its 429, passed on
            await router.stub.Chat(ask())


async def test_enabled_keys_429s_neither_keep_nor_make_the_provider_throttle(
    fake: FakeUpstream, start_router: StartRouter, state_section: dict[str, Any]
) -> None:
    """k1 and k2 met a 429 for model-a: alpha is throttled for it (two of its three keys, past
    `provider_throttle_fraction`), k3 is not tried. The operator fixed the quota and enables
    k1 and k2: model-a is served at once, and k3's one 429 after that is one key of three,
    no throttle (k1's and k2's earlier 429s counted with it made it two)."""
    config = {**one_provider(fake.base_url, ["k1", "k2", "k3"]), "state": state_section}
    router = await start_router(config, clock=ManualClock(time.time()))
    for key in ("k1", "k2"):
        await _limit(fake, router, key)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await router.stub.Chat(ask())
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED

    await _enable(router, "k1", "k2")
    served = await router.stub.Chat(ask())
    assert served.completion.choices[0].message.text == "Echo: hi"

    k3_calls = fake.state.count(key="k3")
    fake.state.set_scenario(Scenario.rate_limited(retry_after="30", times=1), key="k3")
    for _ in range(6):  # round k3's 429, and on: k1 and k2 serve model-a
        served = await router.stub.Chat(ask())
        assert served.completion.choices[0].message.text == "Echo: hi"
    assert fake.state.count(key="k3") > k3_calls


async def test_enabling_a_key_whose_429s_had_no_part_leaves_the_throttle(
    fake: FakeUpstream, start_router: StartRouter, state_section: dict[str, Any]
) -> None:
    """k2 and k3 met a 429 for model-a: alpha is throttled for it. The operator enables k1,
    which met none (say, its credentials were just rotated): the throttle is theirs, not k1's,
    and stands; k1 is not burned against the account's limit for model-a meanwhile."""
    config = {**one_provider(fake.base_url, ["k1", "k2", "k3"]), "state": state_section}
    router = await start_router(config, clock=ManualClock(time.time()))
    for key in ("k2", "k3"):
        await _limit(fake, router, key)
    k1_calls = fake.state.count(key="k1")
    for enabled in (False, True):
        if enabled:
            await _enable(router, "k1")
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await router.stub.Chat(ask())
        assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, enabled
    assert fake.state.count(key="k1") == k1_calls
