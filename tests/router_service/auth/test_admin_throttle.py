"""The router's AdminService keys are throttled (`auth.admin_throttle`) on a real router over
real channels: an address past its limit of unknown keys gets RESOURCE_EXHAUSTED with RetryInfo
before any key is looked up (the admin's own too) until its window ends on the router's clock;
the overall limit says so; the other services are not throttled; a reload keeps the count; no
key is in the error, the log or the metric."""

from __future__ import annotations

import logging

import grpc
import pytest

from clients import details_from_rpc_error
from clients.switchboard.v1 import admin_service_pb2 as admin_pb
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.clock import ManualClock
from router_service.config import SwitchboardConfig
from router_service.fake_upstream import FakeUpstream
from router_service.telemetry.testing import TelemetryCapture
from tests.conftest import RouterHandle, StartRouter
from tests.router_service.auth.helpers import bearer, client, guarded_config

pytestmark = pytest.mark.timeout(60)

OPS, APP = "sk-ops-admin-key-1", "sk-app-chat-key-1"
WRONG = "sk-guess-Zz9-wrong"


async def guarded(
    fake: FakeUpstream, start_router: StartRouter, clock: ManualClock, **throttle: float
) -> RouterHandle:
    clients = (client("ops", OPS, scopes=["admin"]), client("app", APP, scopes=["models"]))
    config = guarded_config(fake.base_url, *clients)
    config["auth"]["admin_throttle"] = throttle
    return await start_router(config, clock=clock)


async def server_info(router: RouterHandle, key: str) -> grpc.StatusCode:
    try:
        await router.admin.GetServerInfo(
            admin_pb.GetServerInfoRequest(), metadata=bearer(key), timeout=10
        )
    except grpc.aio.AioRpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


async def refused_for(router: RouterHandle, key: str) -> tuple[float | None, str, str]:
    """A throttled call's RetryInfo, OpenAI code and message."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await router.admin.ListKeys(admin_pb.ListKeysRequest(), metadata=bearer(key), timeout=10)
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    details = details_from_rpc_error(caught.value)
    return details.retry_after_s, details.openai_code or "", details.message


async def test_an_address_past_its_limit_waits_out_its_window(
    fake: FakeUpstream, start_router: StartRouter, clock: ManualClock
) -> None:
    router = await guarded(fake, start_router, clock, per_address=3, overall=100, window_s=60)
    unknown = grpc.StatusCode.UNAUTHENTICATED

    assert [await server_info(router, WRONG) for _ in range(3)] == [unknown] * 3
    clock.advance(15)
    retry_after_s, code, message = await refused_for(router, OPS)  # the right key too
    models = await router.stub.ListModels(pb.ListModelsRequest(), metadata=bearer(APP))
    clock.advance(45)
    after = await server_info(router, OPS)

    assert retry_after_s == pytest.approx(45)
    assert code == "too_many_failed_authentications" and "this address" in message
    assert OPS not in message and WRONG not in message
    assert models.models  # the other services are not throttled
    assert after == grpc.StatusCode.OK


async def test_the_overall_limit_refuses_every_address(
    fake: FakeUpstream, start_router: StartRouter, clock: ManualClock
) -> None:
    router = await guarded(fake, start_router, clock, per_address=50, overall=2, window_s=30)

    for _ in range(2):
        assert await server_info(router, WRONG) == grpc.StatusCode.UNAUTHENTICATED
    retry_after_s, _, message = await refused_for(router, OPS)

    assert retry_after_s == pytest.approx(30) and "all addresses" in message


async def test_a_valid_key_without_the_scope_or_no_key_is_no_guess(
    fake: FakeUpstream, start_router: StartRouter, clock: ManualClock
) -> None:
    router = await guarded(fake, start_router, clock, per_address=1, overall=100, window_s=60)

    assert await server_info(router, APP) == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await router.admin.GetServerInfo(admin_pb.GetServerInfoRequest(), timeout=10)
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED

    assert await server_info(router, OPS) == grpc.StatusCode.OK


async def test_a_reload_keeps_the_count(
    fake: FakeUpstream, start_router: StartRouter, clock: ManualClock
) -> None:
    router = await guarded(fake, start_router, clock, per_address=2, overall=100, window_s=60)
    assert await server_info(router, WRONG) == grpc.StatusCode.UNAUTHENTICATED

    config = router.runtime.config.model_dump(round_trip=True)
    await router.server.reload(SwitchboardConfig.model_validate(config))
    assert await server_info(router, WRONG) == grpc.StatusCode.UNAUTHENTICATED

    assert await server_info(router, OPS) == grpc.StatusCode.RESOURCE_EXHAUSTED


async def test_refusals_are_logged_and_counted_without_a_key(
    fake: FakeUpstream,
    start_router: StartRouter,
    clock: ManualClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with TelemetryCapture() as captured, caplog.at_level(logging.INFO):
        router = await guarded(fake, start_router, clock, per_address=1, overall=100, window_s=9)
        await server_info(router, WRONG)
        await server_info(router, OPS)
        points = [
            (attributes, point.value)
            for attributes, point in captured.points("switchboard.admin.auth.refusals")
        ]

    assert points == [({"surface": "router", "scope": "address"}, 1)]
    throttled = [r for r in caplog.records if "admin authentication throttled" in r.getMessage()]
    assert len(throttled) == 1 and "127.0.0.1" in throttled[0].getMessage()
    assert OPS not in caplog.text and WRONG not in caplog.text


async def test_an_ipv6_caller_is_counted_by_its_64(
    fake: FakeUpstream,
    start_router: StartRouter,
    clock: ManualClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """gRPC writes an IPv6 peer percent-encoded (`ipv6:%5B::1%5D:53211`): read as written it is
    no address, and each host of a /64 would have a count of its own."""
    clients = (client("ops", OPS, scopes=["admin"]),)
    config = guarded_config(fake.base_url, *clients, server={"host": "::1"})
    config["auth"]["admin_throttle"] = {"per_address": 1, "overall": 100, "window_s": 60}
    with caplog.at_level(logging.INFO):
        router = await start_router(config, clock=clock)
        assert await server_info(router, WRONG) == grpc.StatusCode.UNAUTHENTICATED
        assert await server_info(router, OPS) == grpc.StatusCode.RESOURCE_EXHAUSTED

    throttled = [r for r in caplog.records if "admin authentication throttled" in r.getMessage()]
    assert [r.getMessage().split(" from ")[1].split(";")[0] for r in throttled] == ["::/64"]


async def test_a_reload_that_shortens_the_window_ends_each_later_window_on_time(
    fake: FakeUpstream, start_router: StartRouter, clock: ManualClock
) -> None:
    """Windows opened after a reload to a shorter `window_s` end before those opened earlier:
    each ends when its own time is up, not when the ones opened before it do."""
    clients = (client("ops", OPS, scopes=["admin"]),)
    config = guarded_config(fake.base_url, *clients, server={"host": "::"})
    config["auth"]["admin_throttle"] = {"per_address": 1, "overall": 100, "window_s": 600}
    router = await start_router(config, clock=clock)
    port = router.server.port
    async with (
        grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ipv4,
        grpc.aio.insecure_channel(f"[::1]:{port}") as ipv6,
    ):
        first, second = RouterHandle(router.server, ipv4), RouterHandle(router.server, ipv6)
        assert await server_info(first, WRONG) == grpc.StatusCode.UNAUTHENTICATED

        shorter = router.runtime.config.model_dump(round_trip=True)
        shorter["auth"]["admin_throttle"]["window_s"] = 60
        await router.server.reload(SwitchboardConfig.model_validate(shorter))
        assert await server_info(second, WRONG) == grpc.StatusCode.UNAUTHENTICATED
        clock.advance(61)

        assert await server_info(second, OPS) == grpc.StatusCode.OK
        assert await server_info(first, OPS) == grpc.StatusCode.RESOURCE_EXHAUSTED
