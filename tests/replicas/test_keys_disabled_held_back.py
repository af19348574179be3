"""A request only a cooling deployment can take (audio: Claude cannot), every key of which is
disabled, as two replicas on one Redis see it: the 503 on the replica that disabled nothing says
whose disables they are, read from what the store recorded with each (an operator's last until
enabled; the router's own end when a probe passes), however long the router's own last."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import grpc
import pytest

from clients import details_from_rpc_error
from clients.switchboard.v1 import admin_service_pb2 as admin_pb
from clients.switchboard.v1 import chat_pb2
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream, Scenario
from router_service.keys import fingerprint
from tests.conformance.helpers import AUDIO_PART, params
from tests.conformance.profiles import BY_KIND, mixed_config
from tests.conftest import RouterHandle, StartRouter
from tests.replicas.harness import two_replicas
from tests.replicas.redis_fixtures import redis_state

HELD_BACK = "No deployment of `mixed` that takes this request may serve it now: first/m-first "
OPERATORS = (
    HELD_BACK + "(cooldown); every key of them is disabled by an operator: they serve again "
    "once enabled (`switchboard admin keys enable`)."
)
ROUTERS = (
    HELD_BACK + "(cooldown); every key of them is disabled (invalid credentials or exhausted "
    "quota); they are probed and come back by themselves when they work."
)


async def _failed(
    replica: RouterHandle, p: chat_pb2.ChatParams, deadline_s: float | None = None
) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await replica.stub.Chat(pb.ChatRequest(params=p), timeout=deadline_s)
    return caught.value


async def _disable_by_hand(replica: RouterHandle, fake: FakeUpstream) -> None:
    secret = BY_KIND["openai"].secret(fake, "k-first")
    request = admin_pb.SetKeyEnabledRequest(
        provider="first", fingerprint=fingerprint(secret), enabled=False, reason="ticket 4711"
    )
    await replica.admin.SetKeyEnabled(request)


async def _refused_by_the_upstream(replica: RouterHandle, fake: FakeUpstream) -> None:
    fake.state.set_scenario(Scenario.invalid_key(), model="m-first")
    # A deadline shorter than the cooldown: tried at once, not after it.
    await _failed(replica, params("first/m-first", text="tried while it cools"), deadline_s=10)


@pytest.mark.parametrize(
    ("disable", "message"),
    [(_disable_by_hand, OPERATORS), (_refused_by_the_upstream, ROUTERS)],
    ids=["operator", "router-401"],
)
async def test_a_held_back_deployments_disabled_keys_are_told_whose_on_another_replica(
    disable: Callable[[RouterHandle, FakeUpstream], Awaitable[None]],
    message: str,
    fake: FakeUpstream,
    start_router: StartRouter,
    redis_url: str,
    redis_prefix: str,
) -> None:
    """A cools `first` (a 503) and its only key is disabled there, by an operator or by the
    upstream's 401 under a `cooldowns.auth_disable_s` above five years. B's audio request,
    which only `first` can take, is the 503 saying whose disable it is."""
    config = mixed_config(fake, BY_KIND["openai"], BY_KIND["anthropic"])
    config["state"] = redis_state(redis_url, redis_prefix)
    config["cooldowns"] = {"auth_disable_s": 6 * 365 * 86400.0}
    a, b = await two_replicas(start_router, config, ManualClock(time.time()))
    fake.state.set_scenario(Scenario.server_error(503, times=1), model="m-first")
    await _failed(a, params("first/m-first"))
    await disable(a, fake)
    fake.state.clear_scenarios()
    called = fake.state.count()

    audio = [{"type": "text", "text": "listen"}, AUDIO_PART]
    error = await _failed(b, params("mixed", messages=[{"role": "user", "content": audio}]))

    details = details_from_rpc_error(error)
    assert (error.code(), details.reason) == (grpc.StatusCode.UNAVAILABLE, "NO_CAPACITY")
    assert (details.message, details.retry_after_s) == (message, None)
    assert fake.state.count() == called  # B called nobody
