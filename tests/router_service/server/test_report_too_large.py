"""A PickRoute caller's upstream refused the request it made itself as larger than the key's
whole tokens-per-minute budget, as past the model's context window, or as a body over its size
limit: its ReportOutcome says so, and the router reacts as for a call it made (the key not
cooled, the estimate given back)."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from clients import details_from_rpc_error
from clients.switchboard.v1 import router_service_pb2 as pb
from clients.switchboard.v1 import routing_pb2
from router_service.fake_upstream import FakeUpstream
from tests.conftest import RouterHandle, StartRouter, base_config
from tests.router_service.server.test_routing import AS_SERVICE, with_route_client

REFUSALS: dict[str, dict[str, Any]] = {
    # OpenAI's "Request too large … on tokens per min", Azure's wait of a day.
    "too_large_for_tpm": {
        "outcome": routing_pb2.OUTCOME_RATE_LIMITED,
        "upstream_status": 429,
        "retry_after_s": 86400.0,
        "too_large_for_tpm": True,
    },
    "context_too_long": {"outcome": routing_pb2.OUTCOME_CONTEXT_TOO_LONG, "upstream_status": 400},
    # A body over the upstream's size limit (Anthropic's 413 `request_too_large`).
    "body_too_large": {"outcome": routing_pb2.OUTCOME_UNSUPPORTED_INPUT, "upstream_status": 413},
}


async def alpha_with_tpm(fake: FakeUpstream, start_router: StartRouter) -> RouterHandle:
    config = with_route_client(base_config(fake.base_url))
    config["providers"]["alpha"]["keys"] = [{"key": "sk-alpha-1", "tpm": 100}]
    return await start_router(config)


async def pick(router: RouterHandle, tokens: int) -> pb.PickRouteResponse:
    request = pb.PickRouteRequest(model="chain", estimated_tokens=tokens)
    picked: pb.PickRouteResponse = await router.stub.PickRoute(request, metadata=AS_SERVICE)
    return picked


@pytest.mark.parametrize("refusal", sorted(REFUSALS))
async def test_a_reported_refusal_that_read_nothing_leaves_the_key_serving(
    fake: FakeUpstream, start_router: StartRouter, refusal: str
) -> None:
    """The key's tpm of 100 holds the first pick's 80; refused unread, they go back, and the
    key (not cooled) takes the next 80 at once: alpha again, not beta."""
    router = await alpha_with_tpm(fake, start_router)
    first = await pick(router, 80)
    assert first.deployment == "alpha/model-a"

    report = pb.ReportOutcomeRequest(lease_id=first.lease_id, **REFUSALS[refusal])
    assert (await router.stub.ReportOutcome(report, metadata=AS_SERVICE)).accepted

    again = await pick(router, 80)
    assert again.deployment == "alpha/model-a"


@pytest.mark.parametrize(
    "outcome", [routing_pb2.OUTCOME_OK, routing_pb2.OUTCOME_CONTEXT_TOO_LONG], ids=["ok", "context"]
)
async def test_too_large_for_tpm_is_only_a_rate_limits(
    fake: FakeUpstream, start_router: StartRouter, outcome: routing_pb2.Outcome.ValueType
) -> None:
    router = await alpha_with_tpm(fake, start_router)
    first = await pick(router, 10)
    report = pb.ReportOutcomeRequest(
        lease_id=first.lease_id, outcome=outcome, too_large_for_tpm=True
    )

    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await router.stub.ReportOutcome(report, metadata=AS_SERVICE)

    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert details_from_rpc_error(refused.value).openai_param == "too_large_for_tpm"
