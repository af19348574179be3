"""Azure's failures, said in Azure's words by the fake upstream, through the real router: each lands
on its Outcome and gets that Outcome's reaction (README, How failures are handled)."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from clients import details_from_rpc_error
from clients.switchboard.v1 import routing_pb2
from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conformance.helpers import chat, params
from tests.conftest import StartRouter

AZ = "az/gpt-4o-prod"
BACKUP = "backup/m-backup"
CONTEXT_TOO_LONG = {
    "error": {
        "message": "This model's maximum context length is 8192 tokens. However, your messages "
        "resulted in 9000 tokens. Please reduce the length of the messages.",
        "type": "invalid_request_error",
        "param": "messages",
        "code": "context_length_exceeded",
    }
}


def chain_config(fake: FakeUpstream, **az_deployment: Any) -> dict[str, Any]:
    """`chain`: the Azure deployment (two keys of one resource), then an OpenAI backup."""
    return {
        "providers": {
            "az": {"kind": "azure", "base_url": fake.url, "keys": ["k-1", "k-2"]},
            "backup": {"kind": "openai", "base_url": fake.base_url, "keys": ["k-backup"]},
        },
        "models": {
            "chain": {
                "deployments": [
                    {"provider": "az", "model": "gpt-4o-prod", **az_deployment},
                    {"provider": "backup", "model": "m-backup", "context_window": 128000},
                ]
            },
            "solo": {"deployments": [{"provider": "az", "model": "gpt-4o-prod"}]},
        },
        "server": {"port": 0},
        "cooldowns": {"transient_s": 15},
    }


def attempts(route: routing_pb2.RouteInfo) -> list[tuple[str, int]]:
    return [(a.deployment, a.outcome) for a in route.attempts]


async def test_a_missing_deployment_is_cooled_for_everyone(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    clock = ManualClock()
    router = await start_router(chain_config(fake), clock=clock)
    fake.state.set_scenario(Scenario(status=404), model="gpt-4o-prod")  # DeploymentNotFound

    first = await chat(router, params("chain"))
    other = await chat(router, params("chain", text="another conversation"))

    assert first.route.deployment == BACKUP
    assert attempts(first.route) == [
        (AZ, routing_pb2.OUTCOME_UPSTREAM_ERROR),
        (BACKUP, routing_pb2.OUTCOME_OK),
    ]
    assert first.route.attempts[0].upstream_status == 404
    # Missing for every key: the other key was not tried, and nobody tries it while it cools.
    assert attempts(other.route) == [(BACKUP, routing_pb2.OUTCOME_OK)]
    assert fake.state.count(model="gpt-4o-prod") == 1

    clock.advance(15.0)
    fake.state.clear_scenarios()
    after = await chat(router, params("chain", text="a third one"))
    assert after.route.deployment == AZ


async def test_retry_after_ms_is_how_long_the_key_rests(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    clock = ManualClock()
    router = await start_router(chain_config(fake), clock=clock)
    # Azure sends both; the milliseconds are the exact wait, `retry-after` its whole seconds.
    limited = Scenario.rate_limited(retry_after="2", headers={"retry-after-ms": "1500"}, times=1)
    fake.state.set_scenario(limited, key="k-1")

    first = await chat(router, params("solo"))
    assert attempts(first.route) == [
        (AZ, routing_pb2.OUTCOME_RATE_LIMITED),
        (AZ, routing_pb2.OUTCOME_OK),
    ]
    assert [r.key for r in fake.state.calls()] == ["k-1", "k-2"]

    clock.advance(1.4)
    await chat(router, params("solo", text="still resting"))
    assert fake.state.count(key="k-1") == 1

    clock.advance(0.2)  # 1.6 s: past retry-after-ms, before retry-after's 2 s
    await chat(router, params("solo", text="rested"))
    assert fake.state.count(key="k-1") == 2


async def test_a_rate_limit_tells_the_caller_retry_after_ms(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    router = await start_router(chain_config(fake))
    fake.state.set_scenario(
        Scenario.rate_limited(retry_after="3", headers={"retry-after-ms": "2500"}),
        model="gpt-4o-prod",
    )

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await chat(router, params("solo"))

    details = details_from_rpc_error(caught.value)
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert details.reason == "RATE_LIMITED"
    assert details.retry_after_s == pytest.approx(2.5)


@pytest.mark.parametrize("status", [401, 403])
async def test_a_refused_key_is_set_aside(
    fake: FakeUpstream, start_router: StartRouter, status: int
) -> None:
    router = await start_router(chain_config(fake))
    fake.state.set_scenario(Scenario(status=status), key="k-1")

    answers = [await chat(router, params("solo", text=f"call {i}")) for i in range(3)]

    assert attempts(answers[0].route) == [
        (AZ, routing_pb2.OUTCOME_AUTH_INVALID),
        (AZ, routing_pb2.OUTCOME_OK),
    ]
    assert fake.state.count(key="k-1") == 1  # disabled until a probe says otherwise
    assert fake.state.count(key="k-2") == 3


async def test_context_too_long_moves_to_a_larger_window(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    router = await start_router(chain_config(fake, context_window=8192))
    fake.state.set_scenario(Scenario(status=400, error_body=CONTEXT_TOO_LONG), model="gpt-4o-prod")

    answer = await chat(router, params("chain"))
    assert attempts(answer.route) == [
        (AZ, routing_pb2.OUTCOME_CONTEXT_TOO_LONG),
        (BACKUP, routing_pb2.OUTCOME_OK),
    ]

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await chat(router, params("solo"))
    details = details_from_rpc_error(caught.value)
    assert (details.reason, details.upstream_status) == ("CONTEXT_TOO_LONG", 400)
    assert details.upstream_error is not None
    assert details.upstream_error["code"] == "context_length_exceeded"


@pytest.mark.parametrize(
    "message",
    [
        "API version not supported",
        "Model {modelName} is enabled only for api versions 2024-12-01-preview and later",
    ],
    ids=["retired-version", "model-needs-a-newer-one"],
)
async def test_an_api_version_the_deployment_cannot_use_is_not_the_caller_s_bad_request(
    fake: FakeUpstream, start_router: StartRouter, message: str
) -> None:
    """The provider's `api_version` is the operator's, not the caller's: Azure's 400 for it
    moves the request to the group's next deployment and cools this one for everyone."""
    router = await start_router(chain_config(fake))
    refused = {"error": {"code": "BadRequest", "message": message}}
    fake.state.set_scenario(Scenario(status=400, error_body=refused), model="gpt-4o-prod")

    first = await chat(router, params("chain"))
    other = await chat(router, params("chain", text="another conversation"))

    assert attempts(first.route) == [
        (AZ, routing_pb2.OUTCOME_UPSTREAM_ERROR),
        (BACKUP, routing_pb2.OUTCOME_OK),
    ]
    assert attempts(other.route) == [(BACKUP, routing_pb2.OUTCOME_OK)]
    assert fake.state.count(model="gpt-4o-prod") == 1


async def test_words_of_the_caller_s_own_about_api_versions_decide_nothing(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    echoed = "Invalid value: 'API version not supported'"
    refused = {"error": {"code": "BadRequest", "message": echoed}}
    router = await start_router(chain_config(fake))
    fake.state.set_scenario(Scenario(status=400, error_body=refused), model="gpt-4o-prod")

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await chat(router, params("chain", text="API version not supported"))

    assert details_from_rpc_error(caught.value).reason == "BAD_REQUEST"


def azure_token_limit(wait_s: int, **overrides: Any) -> Scenario:
    """Azure's 429 for its deployment's tokens-per-minute limit, in its words. A wait of a day
    is how Azure says one request is larger than the deployment's whole tpm: none would fit."""
    message = (
        "Requests to the ChatCompletions_Create Operation under Azure OpenAI API version "
        "2024-06-01 have exceeded token rate limit of your current OpenAI S0 pricing tier. "
        f"Please retry after {wait_s} seconds. Please go here: https://aka.ms/oai/quotaincrease "
        "if you would like to further increase the default rate limit."
    )
    body = {"error": {"code": "429", "message": message}}
    return Scenario(status=429, error_body=body, retry_after=str(wait_s), **overrides)


async def test_a_request_too_large_for_the_deployments_tpm_fails_over_whole(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    """Each key refuses the request as larger than its whole tpm (a day's wait): the backup
    answers, and no key is cooled (the next request, a smaller one, is Azure's again)."""
    router = await start_router(chain_config(fake))
    fake.state.set_scenario(azure_token_limit(86400, times=2), model="gpt-4o-prod")

    first = await chat(router, params("chain"))
    assert attempts(first.route) == [
        (AZ, routing_pb2.OUTCOME_RATE_LIMITED),
        (AZ, routing_pb2.OUTCOME_RATE_LIMITED),
        (BACKUP, routing_pb2.OUTCOME_OK),
    ]
    after = await chat(router, params("chain", text="a smaller one"))
    assert attempts(after.route) == [(AZ, routing_pb2.OUTCOME_OK)]


async def test_a_request_too_large_for_every_keys_tpm_is_said_so(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    router = await start_router(chain_config(fake))
    fake.state.set_scenario(azure_token_limit(86400), model="gpt-4o-prod")

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await chat(router, params("solo"))

    details = details_from_rpc_error(caught.value)
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert (details.openai_code, details.retry_after_s) == ("request_too_large_for_tpm", None)


async def test_an_ordinary_token_rate_limit_cools_the_key(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    """The same words with a wait of seconds: the deployment's minute is spent, a rate limit of
    the key's that its wait lifts."""
    clock = ManualClock()
    router = await start_router(chain_config(fake), clock=clock)
    fake.state.set_scenario(azure_token_limit(6, times=1), key="k-1")

    first = await chat(router, params("solo"))
    second = await chat(router, params("solo", text="while k-1 rests"))

    assert attempts(first.route)[0] == (AZ, routing_pb2.OUTCOME_RATE_LIMITED)
    assert [r.key for r in fake.state.calls()] == ["k-1", "k-2", "k-2"]
    assert second.route.attempts[0].outcome == routing_pb2.OUTCOME_OK
    clock.advance(6.0)
    await chat(router, params("solo", text="rested"))
    assert fake.state.count(key="k-1") == 2
