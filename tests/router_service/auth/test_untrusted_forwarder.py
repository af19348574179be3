"""A peer not in `auth.trusted_proxies` that sends `x-forwarded-for` (an edge on another host, a
proxy not listed) has its header ignored, which makes all its callers one address: the router
says so once per peer, naming the peer and the setting, on a real router over a real loopback
channel; the header's value rides only as a field, quoted by the formatter."""

from __future__ import annotations

import logging

import grpc
import pytest

from clients.switchboard.v1 import router_service_pb2 as pb
from router_service._throttle import WARNED_PEERS, TrustedProxies
from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream
from router_service.telemetry._logging import TextFormatter
from tests.conftest import RouterHandle, StartRouter
from tests.router_service.auth.helpers import client, guarded_config

pytestmark = pytest.mark.timeout(60)

APP, WRONG = "sk-app-models-key-1", "sk-guess-Zz9-wrong"
FORWARDED = '192.0.2.1 client=ops "x"'


async def guarded(
    fake: FakeUpstream, start_router: StartRouter, clock: ManualClock, trusted: list[str]
) -> RouterHandle:
    config = guarded_config(fake.base_url, client("app", APP, scopes=["models"]))
    config["auth"]["trusted_proxies"] = trusted
    return await start_router(config, clock=clock)


async def models(router: RouterHandle, key: str) -> grpc.StatusCode:
    metadata = (("authorization", f"Bearer {key}"), ("x-forwarded-for", FORWARDED))
    try:
        await router.stub.ListModels(pb.ListModelsRequest(), metadata=metadata, timeout=10)
    except grpc.aio.AioRpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


def warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if getattr(r, "event", None) == "untrusted_forwarder"]


async def test_an_untrusted_forwarder_is_named_once_with_the_setting(
    fake: FakeUpstream,
    start_router: StartRouter,
    clock: ManualClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    router = await guarded(fake, start_router, clock, ["10.0.0.0/8"])

    with caplog.at_level(logging.WARNING):
        codes = [await models(router, key) for key in (WRONG, WRONG, APP, WRONG)]

    assert codes[:3] == [grpc.StatusCode.UNAUTHENTICATED] * 2 + [grpc.StatusCode.OK]
    [warning] = warnings(caplog)
    assert warning.levelno == logging.WARNING
    message = warning.getMessage()
    assert "127.0.0.1" in message and "auth.trusted_proxies" in message
    assert "192.0.2.1" not in message
    assert 'forwarded_for="192.0.2.1 client=ops \\"x\\""' in TextFormatter().format(warning)
    assert WRONG not in caplog.text and APP not in caplog.text


async def test_a_trusted_forwarder_is_not_warned_of(
    fake: FakeUpstream,
    start_router: StartRouter,
    clock: ManualClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    router = await guarded(fake, start_router, clock, ["127.0.0.0/8"])

    with caplog.at_level(logging.WARNING):
        assert await models(router, WRONG) == grpc.StatusCode.UNAUTHENTICATED

    assert warnings(caplog) == []


def test_the_peers_warned_of_are_bounded(caplog: pytest.LogCaptureFixture) -> None:
    proxies = TrustedProxies([])

    with caplog.at_level(logging.WARNING):
        for i in range(3 * WARNED_PEERS):
            for _ in range(2):
                proxies.caller_address(f"ipv4:10.0.{i // 256}.{i % 256}:4100{i % 10}", "192.0.2.1")

    peers = [r.peer for r in warnings(caplog)]  # type: ignore[attr-defined]
    assert len(peers) == WARNED_PEERS == len(set(peers))
