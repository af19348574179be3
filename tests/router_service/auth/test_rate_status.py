"""Where a client stands against its rpm and tpm, over a real channel: `RouteInfo.rate_limit` on
every answer (a stream's route event), and the same in the refusal's ErrorInfo metadata beside
its RetryInfo. Time is a ManualClock: the sliding minute moves only when the test moves it."""

from __future__ import annotations

import grpc
import pytest

from clients import details_from_rpc_error
from clients.switchboard.v1 import embeddings_pb2
from clients.switchboard.v1 import router_service_pb2 as pb
from clients.switchboard.v1.routing_pb2 import RateLimitStatus
from router_service.clock import ManualClock
from router_service.engine._tokens import estimate_chat_tokens
from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import RouterHandle, StartRouter
from tests.router_service.auth.helpers import bearer, chat, chat_stream, client, guarded_config

RPM_ONLY = "sk-rpm-only-0123456789"
BOTH = "sk-both-0123456789"
UNLIMITED = "sk-unlimited-0123456789"
PICKER = "sk-picker-0123456789"
TPM = 2000
WINDOW_START = 1_700_000_040.0  # a fixed minute's first instant (28,333,334 × 60 s)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(start=WINDOW_START)


@pytest.fixture
async def limited(
    fake: FakeUpstream, start_router: StartRouter, clock: ManualClock
) -> RouterHandle:
    config = guarded_config(
        fake.base_url,
        client("rpm-only", RPM_ONLY, rpm=3),
        client("both", BOTH, rpm=5, tpm=TPM),
        client("unlimited", UNLIMITED, max_concurrent_streams=4),
        client("picker", PICKER, rpm=4, tpm=TPM, scopes=["route"]),
    )
    return await start_router(config, clock=clock)


def _requests(status: RateLimitStatus) -> tuple[int, int, float]:
    return status.limit_requests, status.remaining_requests, status.reset_requests_s


async def test_each_answer_says_what_is_left_and_when_room_frees(
    limited: RouterHandle, clock: ManualClock
) -> None:
    first = (await limited.stub.Chat(chat(), metadata=bearer(RPM_ONLY))).route.rate_limit
    # One counted in this minute: it fades only through the next one, so a 4th request's room
    # (3 left → the estimate at 0) frees two minutes on.
    assert _requests(first) == (3, 2, 120.0)
    clock.advance(30)
    second = (await limited.stub.Chat(chat(), metadata=bearer(RPM_ONLY))).route.rate_limit
    assert _requests(second) == (3, 1, 60.0)  # 2 counted fade to 1 halfway through the next
    third = (await limited.stub.Chat(chat(), metadata=bearer(RPM_ONLY))).route.rate_limit
    assert _requests(third) == (3, 0, 50.0)  # 3 fade to 2 at a third of the next minute
    for status in (first, second, third):  # no tpm: its fields unset
        assert not status.HasField("limit_tokens")
        assert not status.HasField("remaining_tokens")
        assert not status.HasField("reset_tokens_s")

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await limited.stub.Chat(chat(), metadata=bearer(RPM_ONLY))
    assert caught.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    details = details_from_rpc_error(caught.value)
    assert details.retry_after_s == 50.0
    assert details.rate_limit is not None
    assert _requests(details.rate_limit) == (3, 0, 50.0)  # the reset is the Retry-After

    clock.advance(50)  # as told: admitted again
    again = (await limited.stub.Chat(chat(), metadata=bearer(RPM_ONLY))).route.rate_limit
    assert again.remaining_requests == 0


async def test_tokens_count_the_estimate_until_the_usage_replaces_it(
    limited: RouterHandle,
) -> None:
    request = chat(max_tokens=300)
    estimate = estimate_chat_tokens(request.params)
    answer = await limited.stub.Chat(request, metadata=bearer(BOTH))
    status = answer.route.rate_limit
    assert _requests(status) == (5, 4, 120.0)
    assert (status.limit_tokens, status.remaining_tokens) == (TPM, TPM - estimate)
    # All of it in this minute: one token more is free once the next minute faded 1/estimate.
    assert status.reset_tokens_s == pytest.approx(60 + 60 / estimate)
    used = answer.completion.usage.total_tokens
    assert 0 < used < estimate
    second = (await limited.stub.Chat(request, metadata=bearer(BOTH))).route.rate_limit
    assert second.remaining_tokens == TPM - used - estimate  # the first settled to its usage


async def test_a_refusal_for_tpm_waits_for_the_refused_estimate(
    limited: RouterHandle, clock: ManualClock
) -> None:
    prompt = estimate_chat_tokens(chat(max_tokens=1).params) - 1
    big = chat(max_tokens=TPM - prompt)  # estimated at the whole tpm: fits an empty minute only
    estimate = estimate_chat_tokens(big.params)
    assert estimate == TPM
    await limited.stub.Chat(chat(), metadata=bearer(BOTH))  # a few tokens, once settled
    clock.advance(15)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await limited.stub.Chat(big, metadata=bearer(BOTH))
    details = details_from_rpc_error(caught.value)
    status = details.rate_limit
    assert status is not None
    assert status.limit_tokens == TPM
    assert 0 <= status.remaining_tokens < estimate
    assert details.retry_after_s is not None and details.retry_after_s > 0
    assert status.reset_tokens_s == details.retry_after_s
    assert _requests(status)[:2] == (5, 4)  # the refused call took no request


async def test_a_stream_says_it_on_its_route_event_and_embeddings_too(
    limited: RouterHandle,
) -> None:
    events = [e async for e in limited.stub.ChatStream(chat_stream(), metadata=bearer(RPM_ONLY))]
    routes = [e.route for e in events if e.WhichOneof("event") == "route"]
    assert len(routes) == 1 and _requests(routes[0].rate_limit) == (3, 2, 120.0)
    summary = events[-1].summary
    assert not summary.route.HasField("rate_limit")  # the route event told it, once

    embed = pb.EmbedRequest(params=embeddings_pb2.EmbeddingParams(model="embedder", text="x"))
    answer = await limited.stub.Embed(embed, metadata=bearer(BOTH))
    assert _requests(answer.route.rate_limit)[:2] == (5, 4)
    assert answer.route.rate_limit.HasField("remaining_tokens")


async def test_a_stream_with_its_route_on_the_first_chunks_says_it_there(
    limited: RouterHandle,
) -> None:
    request = chat_stream()
    request.route_on_first_message = True  # as the edge asks
    events = [e async for e in limited.stub.ChatStream(request, metadata=bearer(RPM_ONLY))]
    assert "route" not in [e.WhichOneof("event") for e in events]
    routes = [e.first_route for e in events if e.HasField("first_route")]
    assert len(routes) == 1 and _requests(routes[0].rate_limit) == (3, 2, 120.0)
    assert events[0].HasField("first_route")


async def test_a_client_without_rpm_or_tpm_gets_no_standing(limited: RouterHandle) -> None:
    answer = await limited.stub.Chat(chat(), metadata=bearer(UNLIMITED))
    assert answer.route.deployment and not answer.route.HasField("rate_limit")
    events = [e async for e in limited.stub.ChatStream(chat_stream(), metadata=bearer(UNLIMITED))]
    route = next(e.route for e in events if e.WhichOneof("event") == "route")
    assert not route.HasField("rate_limit")


async def test_a_failure_after_admission_carries_the_standing(
    limited: RouterHandle, fake: FakeUpstream
) -> None:
    # Counted, then every deployment failed: the status says where the caller stands (the
    # ErrorInfo metadata a refusal uses); a call refused before admission has none to tell.
    fake.state.set_scenario(Scenario(status=500))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await limited.stub.Chat(chat(), metadata=bearer(RPM_ONLY))
    assert caught.value.code() is not grpc.StatusCode.RESOURCE_EXHAUSTED
    details = details_from_rpc_error(caught.value)
    assert details.rate_limit is not None
    assert _requests(details.rate_limit)[:2] == (3, 2)
    with pytest.raises(grpc.aio.AioRpcError) as unknown:
        await limited.stub.Chat(chat(), metadata=bearer("sk-nobody-0123456789"))
    assert unknown.value.code() is grpc.StatusCode.UNAUTHENTICATED
    assert details_from_rpc_error(unknown.value).rate_limit is None


async def test_a_picked_route_says_the_standing_its_estimate_left(
    limited: RouterHandle, clock: ManualClock
) -> None:
    # The decision API's caller calls the upstream itself: the pick is what is counted.
    pick = pb.PickRouteRequest(model="chain", estimated_tokens=500)
    first = (await limited.stub.PickRoute(pick, metadata=bearer(PICKER))).rate_limit
    assert _requests(first) == (4, 3, 120.0)  # as a proxied call's (above)
    assert (first.limit_tokens, first.remaining_tokens) == (TPM, TPM - 500)
    clock.advance(15)
    second = await limited.stub.PickRoute(pick, metadata=bearer(PICKER))
    assert (second.rate_limit.remaining_requests, second.rate_limit.remaining_tokens) == (
        2,
        TPM - 1000,
    )
    assert second.lease_id and second.api_key  # the route itself, as before
