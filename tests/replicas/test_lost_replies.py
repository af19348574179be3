"""Redis ran a replica's command but the replica never had the reply: its caller left while it
waited (a cancelled call), or the reply was lost with the connection (a timeout). Whatever the
command took (a key's slot, a session's mark) is given back, not held until its TTL by nobody."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream
from router_service.sessions import session_key
from tests.conftest import RouterHandle, StartRouter
from tests.helpers import eventually
from tests.replicas.harness import ask, replica_config, start_on_reply_clock
from tests.replicas.redis_fixtures import RedisProxy
from tests.replicas.test_replicas import active_on

RETRY_S = 1.0


# A's replies wait this long on the test's clock (`start_on_reply_clock`): only a test that
# moves it that far ends a wait, so a caller that leaves while its reply is held leaves first.
REPLY_WAIT_S = 0.2


def one_limited_key(config: dict[str, Any]) -> dict[str, Any]:
    config["providers"]["alpha"].update(keys=[{"key": "k1", "max_in_flight": 1}], queue_timeout_s=0)
    return config


Shape = Callable[[dict[str, Any]], dict[str, Any]]
StartPair = Callable[..., Awaitable[tuple[RouterHandle, RouterHandle, ManualClock]]]


@pytest.fixture
def start_pair(
    redis_proxy: RedisProxy,  # first: it outlives the routers (they stop through it)
    fake: FakeUpstream,
    start_router: StartRouter,
    redis_url: str,
    redis_prefix: str,
) -> StartPair:
    """Replicas A, reaching Redis through the proxy, and B, directly, of a config `shape`d by
    the test; one clock, so A's outage ends when the test says, and A's replies time out
    when it says too (`REPLY_WAIT_S` on it). A has served two calls: its
    connections are up and its read cache holds what a call reads (the first wrote the
    conversation's sticky choice, the second read it)."""

    async def start(
        shape: Shape, session: str = ""
    ) -> tuple[RouterHandle, RouterHandle, ManualClock]:
        clock = ManualClock(time.time())
        through = shape(replica_config(fake.base_url, redis_proxy.url, redis_prefix))
        through["state"].update(socket_timeout_s=REPLY_WAIT_S, retry_interval_s=RETRY_S)
        a = await start_on_reply_clock(start_router, through, clock)
        direct = shape(replica_config(fake.base_url, redis_url, redis_prefix))
        b = await start_router(direct, clock=clock)
        for _ in range(2):
            await a.stub.Chat(ask(session=session))
            await a.runtime.afterwork.drain()
        return a, b, clock

    return start


async def no_lease_on(replica: RouterHandle) -> bool:
    return await replica.leases_held() == 0


async def leave_while_held(proxy: RedisProxy, call: Any) -> None:
    """Cancel `call` while Redis's reply to it is held back, and let the replies go once the
    replica has written what it writes when its caller leaves (nothing more is running on it)."""
    await proxy.held.wait()
    proxy.sent.clear()
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    async with asyncio.timeout(15):  # a bound, not a wait: the write follows the cancel
        await proxy.sent.wait()
    await proxy.restore()


async def test_a_lease_whose_caller_left_during_its_round_trip_is_given_back(
    start_pair: StartPair, redis_proxy: RedisProxy, fake: FakeUpstream
) -> None:
    a, b, _ = await start_pair(one_limited_key)
    redis_proxy.hold_replies()
    await leave_while_held(redis_proxy, a.stub.Chat(ask()))  # Redis granted the lease

    # Polled: the give-back is another process's write to Redis, with no event to wait on.
    await eventually(lambda: no_lease_on(b), what="the lease given back")
    assert (await b.stub.Chat(ask())).route.attempts[-1].key_fingerprint  # k1 serves B
    assert fake.state.count(key="k1") == 3  # A's warm-up and B's call: the left call never ran


async def test_a_lease_whose_reply_was_lost_is_given_back_when_redis_answers_again(
    start_pair: StartPair, redis_proxy: RedisProxy, fake: FakeUpstream
) -> None:
    a, b, clock = await start_pair(one_limited_key)
    redis_proxy.hold_replies()
    call = a.stub.Chat(ask())
    async with asyncio.timeout(15):  # a hang guard: the lease's command reaches Redis
        await redis_proxy.held.wait()
    clock.advance(REPLY_WAIT_S)  # once: past RETRY_S, A would try the held Redis again
    response = await call  # the lease timed out: served from A's local state
    assert response.completion.choices[0].message.text == "Echo: hi"
    assert redis_proxy.held.is_set()  # Redis did grant it
    await redis_proxy.restore()

    clock.advance(RETRY_S)
    await a.stub.Chat(ask())  # A tries Redis again: back on shared state
    assert not a.runtime.store.outage_counts()["degraded"]
    assert await a.leases_held() == 0 and await b.leases_held() == 0
    assert (await b.stub.Chat(ask())).completion.choices[0].message.text == "Echo: hi"


def provider_ban(config: dict[str, Any]) -> dict[str, Any]:
    config["providers"]["alpha"].update(thread_protection="provider-ban", max_sessions=1)
    return config


async def test_a_call_that_left_while_its_session_mark_was_taken_holds_nothing(
    start_pair: StartPair, redis_proxy: RedisProxy, fake: FakeUpstream
) -> None:
    """A provider with a session limit marks the session in Redis after the key's lease: a
    caller gone during that round trip gives both back (the lease was held forever by this
    replica's count, and until its TTL in Redis; the mark took the provider's one session)."""
    a, b, _ = await start_pair(provider_ban, session="s1")
    redis_proxy.hold_replies()
    await leave_while_held(redis_proxy, a.stub.Chat(ask(session="s1")))  # Redis marked s1

    async def nothing_held() -> bool:
        return await active_on(b, "alpha") == {} and await no_lease_on(b)

    await eventually(nothing_held, what="the mark and the lease given back")
    assert await a.leases_held() == 0
    # Another conversation may use alpha's one session at once.
    other = await b.stub.Chat(ask("chain", session="s2"))
    assert other.route.deployment == "alpha/model-a"
    assert session_key("", "s1") not in await active_on(a, "alpha")
