"""What a key pool's callers and operators are told: the retry hint of keys at their limits,
and an operator's note on a disable, never holding a configured key."""

from __future__ import annotations

import grpc
import pytest

from clients import details_from_rpc_error
from clients.switchboard.v1 import admin_service_pb2 as admin_pb
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import StartRouter
from tests.replicas.redis_fixtures import redis_prefix, redis_url, state_section
from tests.router_service.server.test_key_pools import ask, one_provider

__all__ = ["redis_prefix", "redis_url", "state_section"]  # fixtures, for the Redis-backed cases


async def test_a_key_pasted_into_a_disables_reason_is_never_shown(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    """An operator disabling a leaked key may well quote it: the note every replica's ListKeys
    shows (and the store keeps) says `[redacted]` in its place, as for any configured key."""
    router = await start_router(one_provider(fake.base_url, ["sk-secret-1", "sk-secret-2"]))
    listed = await router.admin.ListKeys(admin_pb.ListKeysRequest())
    first = listed.keys[0].fingerprint
    reason = "leaked in ticket 42: sk-secret-1 (and sk-secret-2 beside it)"
    toggled = await router.admin.SetKeyEnabled(
        admin_pb.SetKeyEnabledRequest(fingerprint=first, enabled=False, reason=reason)
    )
    listed = await router.admin.ListKeys(admin_pb.ListKeysRequest())
    for shown in (toggled.key, *listed.keys):
        assert "sk-secret" not in str(shown)
    (note,) = {k.disabled_note for k in listed.keys if k.disabled_note}
    assert note == "leaked in ticket 42: [redacted] (and [redacted] beside it)"


# k2's rpm window has room for its next call in two minutes, or (119.5 s on) in half a second.
@pytest.mark.parametrize(("later", "hint"), [(0.0, 1.0), (119.5, 0.5)], ids=["busy", "window"])
async def test_a_key_at_its_in_flight_limit_beside_one_at_its_rpm_hints_the_sooner(
    fake: FakeUpstream,
    start_router: StartRouter,
    state_section: dict[str, str],
    later: float,
    hint: float,
) -> None:
    """The key busy with a call frees as soon as it ends (1 s, as for keys all at their
    in-flight limit), not when the other's rate window has room (up to two minutes); a window
    with room sooner than that second is the hint."""
    clock = ManualClock(start=600.0)  # the start of a rate window (60 s each)
    keys = [{"key": "k1", "max_in_flight": 1}, {"key": "k2", "rpm": 1}]
    config = one_provider(fake.base_url, keys, queue_timeout_s=0)  # refused at once
    config["state"] = state_section
    router = await start_router(config, clock=clock)
    fake.state.set_scenario(Scenario(held_after_chunks=2), key="k1")
    stream = router.stub.ChatStream(pb.ChatStreamRequest(params=ask().params))
    async for event in stream:
        if event.HasField("chunk"):
            break  # k1 holds its one call
    await router.stub.Chat(ask())  # k2's one call this minute
    clock.advance(later)

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await router.stub.Chat(ask())
    stream.cancel()
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert details_from_rpc_error(caught.value).retry_after_s == pytest.approx(hint)
    assert [fake.state.count(key=k) for k in ("k1", "k2")] == [1, 1]
