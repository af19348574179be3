"""An upstream's 413 (the body over its limit: Anthropic's `request_too_large` at 32 MB, a
proxy's HTML page) passed through to the caller as the edge says its own 413:
`invalid_request_error` / `request_too_large`, whatever words the upstream used."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from clients import details_from_rpc_error
from clients.switchboard.v1 import routing_pb2
from router_service.errors import AllCandidatesFailedError, UpstreamFailure
from router_service.fake_upstream import FakeUpstream, Scenario
from router_service.outcomes import Outcome
from router_service.server._errors import error_details
from tests.conformance.helpers import chat, params
from tests.conformance.helpers import stream as stream_of
from tests.conftest import StartRouter
from tests.replicas.redis_fixtures import redis_prefix, redis_url, state_section
from tests.router_service.server.test_key_model_denied import DENIED

__all__ = ["redis_prefix", "redis_url", "state_section"]  # fixtures, for the Redis-backed cases


@pytest.mark.parametrize(
    "said",
    [
        {"type": "request_too_large", "message": "Request exceeds the maximum size"},
        {"message": "<html><h1>413 Request Entity Too Large</h1></html>"},  # a proxy's page
        {
            "code": 413,
            "message": "Request payload size exceeds the limit",
            "status": "INVALID_ARGUMENT",
        },
    ],
)
def test_an_upstreams_413_is_said_as_the_edges_own(said: dict[str, Any]) -> None:
    failure = UpstreamFailure(
        Outcome.BAD_REQUEST, "HTTP 413", upstream_status=413, upstream_error=said
    )

    details = error_details(AllCandidatesFailedError(failure, "p"))

    assert (details.code, details.upstream_status) == (grpc.StatusCode.INVALID_ARGUMENT, 413)
    assert details.upstream_error is not None
    shaped = details.upstream_error
    assert (shaped["type"], shaped["code"]) == ("invalid_request_error", "request_too_large")
    assert shaped["message"] == said["message"]


def test_a_413_that_names_its_own_code_keeps_it() -> None:
    said = {"type": "invalid_request_error", "message": "too big", "code": "payload_too_large"}
    failure = UpstreamFailure(
        Outcome.BAD_REQUEST, "HTTP 413", upstream_status=413, upstream_error=said
    )

    shaped = error_details(AllCandidatesFailedError(failure, "p")).upstream_error

    assert shaped is not None and shaped["code"] == "payload_too_large"


def claude_then_backup(fake: FakeUpstream) -> dict[str, Any]:
    """`chain`: Claude, then an OpenAI backup; `solo`: Claude alone."""
    return {
        "providers": {
            "claude": {"kind": "anthropic", "base_url": fake.base_url, "keys": ["k-1", "k-2"]},
            "backup": {"kind": "openai", "base_url": fake.base_url, "keys": ["k-backup"]},
        },
        "models": {
            "chain": {
                "deployments": [
                    {"provider": "claude", "model": "claude-x"},
                    {"provider": "backup", "model": "m-backup"},
                ]
            },
            "solo": {"deployments": [{"provider": "claude", "model": "claude-x"}]},
        },
        "server": {"port": 0},
    }


async def test_a_body_over_anthropics_limit_fails_over(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    """Anthropic's 413 is its limit, not every upstream's: the group's next deployment answers,
    once (Claude's other key has the same limit: not asked), and Claude is cooled for nobody."""
    router = await start_router(claude_then_backup(fake))
    fake.state.set_scenario(Scenario(status=413, times=1), model="claude-x")

    answer = await chat(router, params("chain"))
    after = await chat(router, params("chain", text="a small one"))

    assert [(a.deployment, a.outcome) for a in answer.route.attempts] == [
        ("claude/claude-x", routing_pb2.OUTCOME_UNSUPPORTED_INPUT),
        ("backup/m-backup", routing_pb2.OUTCOME_OK),
    ]
    assert answer.route.attempts[0].upstream_status == 413
    assert after.route.deployment == "claude/claude-x"


@pytest.mark.parametrize("stream", [False, True], ids=["unary", "stream"])
async def test_a_body_over_every_deployments_limit_is_the_callers_413(
    fake: FakeUpstream, start_router: StartRouter, stream: bool
) -> None:
    router = await start_router(claude_then_backup(fake))
    fake.state.set_scenario(Scenario(status=413))

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await (stream_of(router, params("chain")) if stream else chat(router, params("chain")))

    details = details_from_rpc_error(caught.value)
    assert (caught.value.code(), details.upstream_status) == (grpc.StatusCode.INVALID_ARGUMENT, 413)
    assert details.upstream_error is not None
    assert details.upstream_error["code"] == "request_too_large"
    assert fake.state.count() == 2  # one call each: no other key asked


@pytest.mark.parametrize("stream", [False, True], ids=["unary", "stream"])
async def test_a_body_over_the_limit_beside_a_denied_deployment_is_the_callers_413(
    fake: FakeUpstream, start_router: StartRouter, state_section: dict[str, str], stream: bool
) -> None:
    """Claude cannot take the body, every key of the backup was refused its model: the backup
    never serves, so the caller's 413 (as without it), on the call that met the refusal and
    every call after; not a 503 naming the refusal, then a 429 to come back in a day."""
    router = await start_router({**claude_then_backup(fake), "state": state_section})
    fake.state.set_scenario(Scenario(status=413), model="claude-x")
    fake.state.set_scenario(Scenario(status=403, error_body=DENIED), model="m-backup")

    for _ in range(2):  # the call that met the refusal, and one after (its key set aside)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await (stream_of(router, params("chain")) if stream else chat(router, params("chain")))
        details = details_from_rpc_error(caught.value)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, details.message
        assert (details.upstream_status, details.retry_after_s) == (413, None)
    assert fake.state.count(model="m-backup") == 1
    assert await router.leases_held() == 0
