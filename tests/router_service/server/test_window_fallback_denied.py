"""A larger deployment every key of which was refused its model (MODEL_DENIED) never serves:
a request too long for the smaller one is told so (its 400), on the call that met the refusal
and on every call after, whichever the strategy asked first; not a 503 naming the larger one's
refusal, then a 429 to come back in a day (its keys' set-aside) for a deployment that cannot."""

from __future__ import annotations

import grpc
import pytest

from clients import details_from_rpc_error
from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import StartRouter
from tests.replicas.redis_fixtures import redis_prefix, redis_url, state_section
from tests.router_service.server.test_key_model_denied import DENIED, refused
from tests.router_service.server.test_window_fallbacks import TOO_LONG, small_then_large

__all__ = ["redis_prefix", "redis_url", "state_section"]  # fixtures, for the Redis-backed cases

pytestmark = pytest.mark.timeout(20)


@pytest.mark.parametrize("large_first", [False, True], ids=["small_first", "large_first"])
@pytest.mark.parametrize("streamed", [False, True], ids=["unary", "stream"])
async def test_too_long_for_the_small_one_with_the_large_one_denied_is_too_long(
    fake: FakeUpstream,
    start_router: StartRouter,
    state_section: dict[str, str],
    streamed: bool,
    large_first: bool,
) -> None:
    config = {**small_then_large(fake.base_url), "state": state_section}
    if large_first:
        config["models"]["chat"]["deployments"].reverse()
    router = await start_router(config)
    fake.state.set_scenario(Scenario(status=400, error_body=TOO_LONG), model="small")
    fake.state.set_scenario(Scenario(status=403, error_body=DENIED), model="large")

    for _ in range(2):  # the call that met the refusal, and one after (the key set aside)
        error = await refused(router, streamed, "chat")
        details = details_from_rpc_error(error)
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert details.reason == "CONTEXT_TOO_LONG" and details.retry_after_s is None
        assert details.message == "maximum context length is 8000 tokens"
    assert fake.state.count(model="large") == 1
    assert fake.state.count(model="small") == 2
    assert await router.leases_held() == 0


@pytest.mark.parametrize("denied_last", [False, True], ids=["denied_middle", "denied_last"])
@pytest.mark.parametrize("streamed", [False, True], ids=["unary", "stream"])
async def test_a_larger_ones_failure_stays_the_answer_beside_a_denied_one(
    fake: FakeUpstream,
    start_router: StartRouter,
    state_section: dict[str, str],
    streamed: bool,
    denied_last: bool,
) -> None:
    """Too long for the small one, a larger one failed on its own (a 503, retryable) and the
    largest was refused its model: the 503 is the caller's answer, whichever of the two larger
    ones the strategy asked last (the denied one's refusal is passed over, not the 503)."""
    config = {**small_then_large(fake.base_url), "state": state_section}
    config["providers"]["gamma"] = {"base_url": fake.base_url, "keys": ["kg1"]}
    mid = {"provider": "gamma", "model": "mid", "context_window": 32000}
    config["models"]["chat"]["deployments"].insert(1 if denied_last else 2, mid)
    router = await start_router(config)
    fake.state.set_scenario(Scenario(status=400, error_body=TOO_LONG), model="small")
    fake.state.set_scenario(Scenario.server_error(503), model="mid")
    fake.state.set_scenario(Scenario(status=403, error_body=DENIED), model="large")

    error = await refused(router, streamed, "chat")
    details = details_from_rpc_error(error)
    assert error.code() == grpc.StatusCode.UNAVAILABLE, details.message
    assert (details.reason, details.provider) == ("UPSTREAM_ERROR", "gamma")
    assert [fake.state.count(model=m) for m in ("small", "mid", "large")] == [1, 1, 1]
    assert await router.leases_held() == 0
