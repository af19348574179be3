"""Numbers from outside that feed shared state: an upstream's wait hint and a ReportOutcome's
figures. A hint is capped (cooldowns.retry_after_max_s) or, when it is no number, ignored; a report
with a NaN or a negative figure is refused, naming the field. Nothing ends in a traceback."""

from __future__ import annotations

import logging
import math
from typing import Any

import grpc
import pytest

from clients import details_from_rpc_error
from clients.switchboard.v1 import admin_service_pb2 as admin_pb
from clients.switchboard.v1 import chat_pb2, routing_pb2
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.auth import hash_key
from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import RouterHandle, StartRouter

CAP_S = 60.0
SERVICE_KEY = "sk-service-reporting-outcomes"
AS_SERVICE = (("authorization", f"Bearer {SERVICE_KEY}"),)


def one_key(fake_url: str) -> dict[str, Any]:
    """One provider with one key, so a cooled key leaves nothing else to serve."""
    return {
        "providers": {"alpha": {"base_url": fake_url, "keys": ["k1"], "queue_timeout_s": 0}},
        "models": {"a": {"deployments": [{"provider": "alpha", "model": "model-a"}]}},
        "server": {"port": 0},
        "cooldowns": {"retry_after_max_s": CAP_S, "rate_limit_backoff_s": 1},
        "key_health": {"backoff_max_s": 2},
        "auth": {
            "clients": [
                {
                    "name": "svc",
                    "key_sha256": hash_key(SERVICE_KEY),
                    "scopes": ["chat", "route", "admin"],
                }
            ]
        },
    }


def ask(text: str = "hi") -> pb.ChatRequest:
    """A request of group `a`; each `text` is a conversation of its own (no session sticks)."""
    message = chat_pb2.ChatMessage(role=chat_pb2.ROLE_USER, text=text)
    return pb.ChatRequest(params=chat_pb2.ChatParams(model="a", messages=[message]))


async def refused(call: Any) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    return caught.value


def no_errors_logged(caplog: pytest.LogCaptureFixture) -> None:
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() for r in errors]


@pytest.mark.parametrize(
    ("retry_after", "cooled_s"),
    [
        ("1e12", CAP_S),  # finite but 31,000 years: capped
        ("inf", 2.0),  # no number: the 429 backoff (at most key_health.backoff_max_s)
        ("nan", 2.0),
        # No wait at all: the key would be hit again at once, 429 after 429. The backoff.
        ("0", 2.0),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 2.0),  # a date gone by (a clock skew): the same
    ],
)
async def test_an_upstream_wait_hint_is_capped_or_ignored(
    fake: FakeUpstream,
    start_router: StartRouter,
    caplog: pytest.LogCaptureFixture,
    retry_after: str,
    cooled_s: float,
) -> None:
    clock = ManualClock()
    router = await start_router(one_key(fake.base_url), clock=clock)
    fake.state.set_scenario(Scenario.rate_limited(retry_after=retry_after, times=1))

    error = await refused(router.stub.Chat(ask(), metadata=AS_SERVICE))

    details = details_from_rpc_error(error)
    assert (error.code(), details.reason) == (grpc.StatusCode.RESOURCE_EXHAUSTED, "RATE_LIMITED")
    keys = await router.admin.ListKeys(admin_pb.ListKeysRequest(), metadata=AS_SERVICE)
    until = keys.keys[0].cooling_models["model-a"]
    if retry_after == "1e12":
        assert details.retry_after_s == CAP_S
        assert until == clock.now() + CAP_S
    else:  # the backoff's wait, not none at all (`nan` or `0`) and not forever
        assert clock.now() < until <= clock.now() + cooled_s
    clock.advance(cooled_s)
    response = await router.stub.Chat(ask(), metadata=AS_SERVICE)
    assert response.completion.choices[0].message.text == "Echo: hi"
    no_errors_logged(caplog)


async def pick(router: RouterHandle) -> str:
    picked = await router.stub.PickRoute(pb.PickRouteRequest(model="a"), metadata=AS_SERVICE)
    lease_id: str = picked.lease_id
    return lease_id


@pytest.mark.parametrize(
    ("figures", "param"),
    [
        ({"retry_after_s": math.inf}, "retry_after_s"),
        ({"retry_after_s": math.nan}, "retry_after_s"),
        ({"retry_after_s": -100.0}, "retry_after_s"),
        ({"latency_ms": math.nan}, "latency_ms"),
        ({"latency_ms": -1e9}, "latency_ms"),
        ({"latency_ms": math.inf}, "latency_ms"),
        ({"latency_ms": 1e300}, "latency_ms"),  # finite, and no call's
        ({"total_tokens": -(10**15)}, "total_tokens"),
        ({"total_tokens": 10**15}, "total_tokens"),  # would fill the key's token window
        ({"total_tokens": 10_000_001}, "total_tokens"),
    ],
)
async def test_report_outcome_refuses_figures_that_are_no_measure(
    fake: FakeUpstream,
    start_router: StartRouter,
    caplog: pytest.LogCaptureFixture,
    figures: dict[str, Any],
    param: str,
) -> None:
    router = await start_router(one_key(fake.base_url))
    lease_id = await pick(router)
    limited = "retry_after_s" in figures
    outcome = routing_pb2.OUTCOME_RATE_LIMITED if limited else routing_pb2.OUTCOME_OK

    error = await refused(
        router.stub.ReportOutcome(
            pb.ReportOutcomeRequest(lease_id=lease_id, outcome=outcome, **figures),
            metadata=AS_SERVICE,
        )
    )

    details = details_from_rpc_error(error)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (details.reason, details.openai_param) == ("INVALID_ARGUMENT", param)
    assert [field for field, _ in details.field_violations] == [param]
    # Refused before it touched anything: the lease is still out, to be reported properly.
    ok = pb.ReportOutcomeRequest(lease_id=lease_id, outcome=routing_pb2.OUTCOME_OK, latency_ms=5)
    assert (await router.stub.ReportOutcome(ok, metadata=AS_SERVICE)).accepted
    stats = await router.admin.GetRoutingStats(
        admin_pb.GetRoutingStatsRequest(), metadata=AS_SERVICE
    )
    assert [d.latency_ewma_ms for d in stats.deployments] == [pytest.approx(5.0)]
    no_errors_logged(caplog)


@pytest.mark.parametrize("estimate", [10**15, 10_000_001, -1])
async def test_a_pick_refuses_an_estimate_that_is_no_calls(
    fake: FakeUpstream, start_router: StartRouter, caplog: pytest.LogCaptureFixture, estimate: int
) -> None:
    """A pick counts its estimate in the key's token window: a stray int64 there would keep the
    key from every caller until the window slid past. Bounded as a report's `total_tokens`."""
    config = one_key(fake.base_url)
    config["providers"]["alpha"]["keys"] = [{"key": "k1", "tpm": 1000}]
    router = await start_router(config)
    request = pb.PickRouteRequest(model="a", estimated_tokens=estimate)

    error = await refused(router.stub.PickRoute(request, metadata=AS_SERVICE))

    details = details_from_rpc_error(error)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (details.reason, details.openai_param) == ("INVALID_ARGUMENT", "estimated_tokens")
    # Nothing was counted: the key's window still takes a call.
    response = await router.stub.Chat(ask(), metadata=AS_SERVICE)
    assert response.completion.choices[0].message.text == "Echo: hi"
    no_errors_logged(caplog)


async def test_a_reported_wait_is_capped_like_an_upstreams(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    clock = ManualClock()
    router = await start_router(one_key(fake.base_url), clock=clock)
    report = pb.ReportOutcomeRequest(
        lease_id=await pick(router), outcome=routing_pb2.OUTCOME_RATE_LIMITED, retry_after_s=1e9
    )
    assert (await router.stub.ReportOutcome(report, metadata=AS_SERVICE)).accepted

    keys = await router.admin.ListKeys(admin_pb.ListKeysRequest(), metadata=AS_SERVICE)
    assert dict(keys.keys[0].cooling_models) == {"model-a": clock.now() + CAP_S}
    clock.advance(CAP_S)
    response = await router.stub.Chat(ask(), metadata=AS_SERVICE)
    assert response.completion.choices[0].message.text == "Echo: hi"


# OpenAI's headers on a 429 whose tokens ran out: its request window refills in six minutes.
TOKENS_SPENT = {
    "x-ratelimit-remaining-requests": "4999",
    "x-ratelimit-reset-requests": "6m0s",
    "x-ratelimit-remaining-tokens": "0",
    "x-ratelimit-reset-tokens": "20ms",
}


async def test_a_429_cools_the_key_until_the_spent_limit_resets(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    clock = ManualClock()
    router = await start_router(one_key(fake.base_url), clock=clock)
    fake.state.set_scenario(Scenario(status=429, headers=TOKENS_SPENT, times=1))

    error = await refused(router.stub.Chat(ask(), metadata=AS_SERVICE))

    assert details_from_rpc_error(error).retry_after_s == pytest.approx(0.02)
    keys = await router.admin.ListKeys(admin_pb.ListKeysRequest(), metadata=AS_SERVICE)
    assert keys.keys[0].cooling_models["model-a"] == pytest.approx(clock.now() + 0.02)


def failing_first(fake_url: str, kind: str) -> dict[str, Any]:
    """Group `a`: a deployment of `kind` (alpha), then an OpenAI one (beta)."""
    config = one_key(fake_url)
    config["providers"]["alpha"] = {"kind": kind, "base_url": fake_url, "keys": ["k1"]}
    if kind == "anthropic":
        config["providers"]["alpha"]["api_version"] = "2023-06-01"
    config["providers"]["beta"] = {"base_url": fake_url, "keys": ["k2"]}
    config["models"]["a"]["deployments"].append({"provider": "beta", "model": "model-b"})
    return config


@pytest.mark.parametrize(
    ("kind", "status", "headers", "cooled_s"),
    [
        ("openai", 503, {"Retry-After": "40"}, 40.0),
        ("anthropic", 529, {"retry-after": "40"}, 40.0),  # Anthropic's overloaded_error
        ("openai", 503, {"Retry-After": "1e9"}, CAP_S),
        # OpenAI's resets are the key's windows, not when the server is back: transient_s.
        ("openai", 503, TOKENS_SPENT, 15.0),
    ],
)
async def test_a_server_failures_retry_after_keeps_its_deployment_out_that_long(
    fake: FakeUpstream,
    start_router: StartRouter,
    kind: str,
    status: int,
    headers: dict[str, str],
    cooled_s: float,
) -> None:
    clock = ManualClock()
    router = await start_router(failing_first(fake.base_url, kind), clock=clock)
    fake.state.set_scenario(Scenario(status=status, headers=headers, times=1), model="model-a")

    first = await router.stub.Chat(ask("first"), metadata=AS_SERVICE)

    assert [(a.deployment, a.outcome) for a in first.route.attempts] == [
        ("alpha/model-a", routing_pb2.OUTCOME_UPSTREAM_ERROR),
        ("beta/model-b", routing_pb2.OUTCOME_OK),
    ]
    stats = await router.admin.GetRoutingStats(
        admin_pb.GetRoutingStatsRequest(), metadata=AS_SERVICE
    )
    cooling = {d.deployment: d.cooldown_until_unix for d in stats.deployments}
    assert cooling["alpha/model-a"] == clock.now() + cooled_s
    clock.advance(cooled_s - 1)
    assert (await router.stub.Chat(ask("second"), metadata=AS_SERVICE)).route.deployment == (
        "beta/model-b"
    )
    clock.advance(1)
    assert (await router.stub.Chat(ask("third"), metadata=AS_SERVICE)).route.deployment == (
        "alpha/model-a"
    )
