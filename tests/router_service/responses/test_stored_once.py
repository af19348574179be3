"""StoreResponse writes a response once: a second store of an id its client holds is
ALREADY_EXISTS and leaves the first as it was (its conversation, which continuing it loads), is
not charged to the client's quota, and the id is free again once deleted or expired. On a real
router, on the memory store and on Redis shared by two replicas."""

from __future__ import annotations

import grpc
import pytest

from clients import details_from_rpc_error, http_status_for
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream
from router_service.responses import ENTRY_BYTES
from tests.conftest import RouterHandle, StartRouter
from tests.replicas.redis_fixtures import redis_state
from tests.router_service.auth.helpers import bearer, client, guarded_config
from tests.router_service.responses.test_stored_rpcs import A, B, stored


async def store_error(router: RouterHandle, key: str, response_id: str, text: str) -> grpc.RpcError:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await router.stub.StoreResponse(stored(response_id, text), metadata=bearer(key))
    return refused.value


async def text_of(router: RouterHandle, key: str, response_id: str) -> str:
    request = pb.LoadResponsesRequest(ids=[response_id])
    loaded = await router.stub.LoadResponses(request, metadata=bearer(key))
    return str(loaded.responses[0].messages[0].text)


async def test_a_stored_response_cannot_be_replaced_until_deleted_or_expired(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    clock = ManualClock()
    config = guarded_config(
        fake.base_url, client("a", A), client("b", B), responses={"store_ttl_s": 60}
    )
    router = await start_router(config, clock=clock)
    first = await router.stub.StoreResponse(stored("resp_1", "first"), metadata=bearer(A))
    assert first.stored

    refused = await store_error(router, A, "resp_1", "forged")
    assert refused.code() is grpc.StatusCode.ALREADY_EXISTS
    details = details_from_rpc_error(refused)
    assert (details.reason, details.openai_param) == ("RESPONSE_EXISTS", "response.id")
    assert details.openai_code == "response_already_exists"
    assert http_status_for(details) == 409
    assert await text_of(router, A, "resp_1") == "first"  # intact
    # Another client's same id is another response of its own.
    assert (await router.stub.StoreResponse(stored("resp_1", "b's"), metadata=bearer(B))).stored

    await router.stub.DeleteResponse(pb.DeleteResponseRequest(id="resp_1"), metadata=bearer(A))
    again = await router.stub.StoreResponse(stored("resp_1", "after delete"), metadata=bearer(A))
    assert again.stored
    assert await text_of(router, A, "resp_1") == "after delete"

    clock.advance(60)  # expired
    later = await router.stub.StoreResponse(stored("resp_1", "after expiry"), metadata=bearer(A))
    assert later.stored
    assert await text_of(router, A, "resp_1") == "after expiry"


async def test_a_refused_store_is_not_charged_to_the_quota(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    size = len(stored("resp_1", "x" * 1000).response.SerializeToString()) + ENTRY_BYTES
    config = guarded_config(
        fake.base_url, client("a", A), responses={"client_stored_bytes": 2 * size}
    )
    router = await start_router(config, clock=ManualClock())
    assert (
        await router.stub.StoreResponse(stored("resp_1", "x" * 1000), metadata=bearer(A))
    ).stored
    for _ in range(3):
        refused = await store_error(router, A, "resp_1", "x" * 1000)
        assert refused.code() is grpc.StatusCode.ALREADY_EXISTS
    # Room for exactly one more: none of the refusals took any.
    second = await router.stub.StoreResponse(stored("resp_2", "x" * 1000), metadata=bearer(A))
    assert (second.stored, second.reason) == (True, "")
    third = await router.stub.StoreResponse(stored("resp_3", "x" * 1000), metadata=bearer(A))
    assert (third.stored, third.reason) == (False, "over_quota")


async def test_replicas_on_redis_refuse_to_replace_each_others_responses(
    fake: FakeUpstream, start_router: StartRouter, redis_url: str, redis_prefix: str
) -> None:
    clock = ManualClock()
    config = guarded_config(fake.base_url, client("a", A), responses={"store_ttl_s": 60})
    config["state"] = redis_state(redis_url, redis_prefix)
    one = await start_router(config, clock=clock)
    other = await start_router(config, clock=clock)
    assert (await one.stub.StoreResponse(stored("resp_1", "first"), metadata=bearer(A))).stored
    refused = await store_error(other, A, "resp_1", "forged")
    assert refused.code() is grpc.StatusCode.ALREADY_EXISTS
    assert await text_of(other, A, "resp_1") == "first"
    # Expired by the replicas' clock, while Redis still holds the key for its own TTL.
    clock.advance(60)
    later = await other.stub.StoreResponse(stored("resp_1", "after expiry"), metadata=bearer(A))
    assert later.stored
    assert await text_of(one, A, "resp_1") == "after expiry"
