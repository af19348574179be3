"""StoreResponse / LoadResponses on a real router: authenticated like Chat, scoped per client
(another client's id, an unknown one and an expired one are one NOT_FOUND), with the limits of
`responses:` (off, too large, TTL by the router's clock)."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from clients import details_from_rpc_error
from clients.switchboard.v1 import chat_pb2
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream
from router_service.responses import ENTRY_BYTES
from tests.conftest import RouterHandle, StartRouter
from tests.replicas.redis_fixtures import redis_state
from tests.router_service.auth.helpers import bearer, client, guarded_config

A, B, EMBED_ONLY = "sk-client-a", "sk-client-b", "sk-embed-only"


def stored(response_id: str, text: str = "hello") -> pb.StoreResponseRequest:
    message = chat_pb2.ChatMessage(role=chat_pb2.ROLE_USER, text=text)
    return pb.StoreResponseRequest(
        response=pb.StoredResponse(id=response_id, messages=[message], output_items_json=["{}"])
    )


async def start(
    fake: FakeUpstream, start_router: StartRouter, clock: ManualClock, **responses: Any
) -> RouterHandle:
    config = guarded_config(
        fake.base_url,
        client("a", A),
        client("b", B),
        client("e", EMBED_ONLY, scopes=["embed"]),
        responses=responses,
    )
    return await start_router(config, clock=clock)


async def load_error(router: RouterHandle, key: str, *ids: str) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as failed:
        await router.stub.LoadResponses(pb.LoadResponsesRequest(ids=ids), metadata=bearer(key))
    return failed.value


async def test_a_client_reads_back_its_own_responses_only(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    clock = ManualClock()
    router = await start(fake, start_router, clock, store_ttl_s=60)
    kept = await router.stub.StoreResponse(stored("resp_1"), metadata=bearer(A))
    assert (kept.stored, kept.expires_unix) == (True, clock.now() + 60)
    await router.stub.StoreResponse(stored("resp_2", "two"), metadata=bearer(A))
    request = pb.LoadResponsesRequest(ids=["resp_2", "resp_1"])
    loaded = await router.stub.LoadResponses(request, metadata=bearer(A))
    assert [r.id for r in loaded.responses] == ["resp_2", "resp_1"]
    assert loaded.responses[0].messages[0].text == "two"

    # Another client's id, an unknown id and (below) an expired id: one and the same answer.
    others = await load_error(router, B, "resp_1")
    unknown = await load_error(router, A, "resp_1", "resp_9")
    clock.advance(60)
    expired = await load_error(router, A, "resp_1")
    cases = ((others, 0, "resp_1"), (unknown, 1, "resp_9"), (expired, 0, "resp_1"))
    for error, index, missing in cases:
        details = details_from_rpc_error(error)
        assert error.code() is grpc.StatusCode.NOT_FOUND
        assert (details.reason, details.openai_param) == ("RESPONSE_NOT_FOUND", f"ids[{index}]")
        assert details.message == f"Response with id '{missing}' not found."


async def test_the_calls_need_a_client_key_with_the_chat_scope(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    router = await start(fake, start_router, ManualClock())
    with pytest.raises(grpc.aio.AioRpcError) as anonymous:
        await router.stub.StoreResponse(stored("resp_1"))
    assert anonymous.value.code() is grpc.StatusCode.UNAUTHENTICATED
    with pytest.raises(grpc.aio.AioRpcError) as embed_only:
        await router.stub.StoreResponse(stored("resp_1"), metadata=bearer(EMBED_ONLY))
    assert embed_only.value.code() is grpc.StatusCode.PERMISSION_DENIED
    assert (await load_error(router, EMBED_ONLY, "x")).code() is grpc.StatusCode.PERMISSION_DENIED


async def test_too_large_and_turned_off_are_not_stored(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    router = await start(fake, start_router, ManualClock(), max_stored_bytes=100)
    big = await router.stub.StoreResponse(stored("resp_big", "x" * 100), metadata=bearer(A))
    assert (big.stored, big.reason) == (False, "too_large")
    assert (await load_error(router, A, "resp_big")).code() is grpc.StatusCode.NOT_FOUND

    off = await start(fake, start_router, ManualClock(), store=False)
    answer = await off.stub.StoreResponse(stored("resp_1"), metadata=bearer(A))
    assert (answer.stored, answer.reason) == (False, "disabled")
    refused = await load_error(off, A, "resp_1")
    assert refused.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "responses.store: false" in (refused.details() or "")


async def test_bad_ids_are_refused_by_name(fake: FakeUpstream, start_router: StartRouter) -> None:
    router = await start(fake, start_router, ManualClock())
    for ids, param in (([], "ids"), (["ok", ""], "ids[1]")):
        error = await load_error(router, A, *ids)
        assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert details_from_rpc_error(error).openai_param == param
    # Longer than any id: one it does not have, as OpenAI answers it (not malformed).
    too_long = await load_error(router, A, "r" * 129)
    assert too_long.code() is grpc.StatusCode.NOT_FOUND
    assert details_from_rpc_error(too_long).openai_param == "ids[0]"
    assert "r" * 129 not in (too_long.details() or "")
    with pytest.raises(grpc.aio.AioRpcError) as no_id:
        await router.stub.StoreResponse(stored(""), metadata=bearer(A))
    assert no_id.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    not_json = stored("resp_1")
    not_json.response.output_items_json.append("[1]")
    with pytest.raises(grpc.aio.AioRpcError) as bad_item:
        await router.stub.StoreResponse(not_json, metadata=bearer(A))
    details = details_from_rpc_error(bad_item.value)
    assert details.openai_param == "response.output_items_json[1]"
    bad_input = stored("resp_1")
    bad_input.response.input_items_json.append("1")
    bad_response = stored("resp_1")
    bad_response.response.response_json = "[]"
    for bad, param in (
        (bad_input, "response.input_items_json[0]"),
        (bad_response, "response.response_json"),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await router.stub.StoreResponse(bad, metadata=bearer(A))
        assert details_from_rpc_error(refused.value).openai_param == param


async def test_a_response_json_of_another_id_is_refused(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    """Kept, it was read back under `resp_1` as a Response that says it is `resp_2`."""
    router = await start(fake, start_router, ManualClock())
    mixed_up = stored("resp_1")
    mixed_up.response.response_json = '{"id": "resp_2", "object": "response"}'

    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await router.stub.StoreResponse(mixed_up, metadata=bearer(A))

    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert details_from_rpc_error(refused.value).openai_param == "response.response_json"
    assert (await load_error(router, A, "resp_1")).code() is grpc.StatusCode.NOT_FOUND
    mixed_up.response.response_json = '{"id": "resp_1", "object": "response"}'
    assert (await router.stub.StoreResponse(mixed_up, metadata=bearer(A))).stored


async def delete_error(router: RouterHandle, key: str, response_id: str) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as failed:
        request = pb.DeleteResponseRequest(id=response_id)
        await router.stub.DeleteResponse(request, metadata=bearer(key))
    return failed.value


async def test_a_client_deletes_its_own_responses_only(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    clock = ManualClock()
    router = await start(fake, start_router, clock, store_ttl_s=60)
    for response_id in ("resp_1", "resp_2", "resp_3"):
        await router.stub.StoreResponse(stored(response_id), metadata=bearer(A))
    # Another client's id, an unknown id and an expired id: one and the same answer.
    others = await delete_error(router, B, "resp_1")
    unknown = await delete_error(router, A, "resp_9")
    request = pb.DeleteResponseRequest(id="resp_1")
    assert (await router.stub.DeleteResponse(request, metadata=bearer(A))).deleted
    again = await delete_error(router, A, "resp_1")
    assert (await load_error(router, A, "resp_1")).code() is grpc.StatusCode.NOT_FOUND
    loaded = await router.stub.LoadResponses(
        pb.LoadResponsesRequest(ids=["resp_2"]), metadata=bearer(A)
    )
    assert [r.id for r in loaded.responses] == ["resp_2"]  # the others stay
    clock.advance(60)
    expired = await delete_error(router, A, "resp_2")
    for error, missing in (
        (others, "resp_1"),
        (unknown, "resp_9"),
        (again, "resp_1"),
        (expired, "resp_2"),
    ):
        details = details_from_rpc_error(error)
        assert error.code() is grpc.StatusCode.NOT_FOUND
        assert (details.reason, details.openai_param) == ("RESPONSE_NOT_FOUND", "id")
        assert details.message == f"Response with id '{missing}' not found."
    too_long = await delete_error(router, A, "r" * 129)  # an id it cannot have: the same
    assert too_long.code() is grpc.StatusCode.NOT_FOUND
    assert details_from_rpc_error(too_long).reason == "RESPONSE_NOT_FOUND"


async def test_delete_needs_a_client_key_with_the_chat_scope(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    router = await start(fake, start_router, ManualClock())
    await router.stub.StoreResponse(stored("resp_1"), metadata=bearer(A))
    with pytest.raises(grpc.aio.AioRpcError) as anonymous:
        await router.stub.DeleteResponse(pb.DeleteResponseRequest(id="resp_1"))
    assert anonymous.value.code() is grpc.StatusCode.UNAUTHENTICATED
    embed_only = await delete_error(router, EMBED_ONLY, "resp_1")
    assert embed_only.code() is grpc.StatusCode.PERMISSION_DENIED
    await router.stub.LoadResponses(pb.LoadResponsesRequest(ids=["resp_1"]), metadata=bearer(A))


async def test_a_client_stores_up_to_its_quota_per_period_and_others_keep_theirs(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    # StoreResponse is not counted in rpm (the edge's follow-up of a counted chat call): without
    # a byte quota one client filled Redis (or the memory store's shared room) in a loop.
    clock = ManualClock()
    size = len(stored("resp_0", "x" * 1000).response.SerializeToString()) + ENTRY_BYTES
    router = await start(fake, start_router, clock, store_ttl_s=60, client_stored_bytes=3 * size)
    answers = [
        await router.stub.StoreResponse(stored(f"resp_{i}", "x" * 1000), metadata=bearer(A))
        for i in range(4)
    ]
    assert [(a.stored, a.reason) for a in answers] == [(True, "")] * 3 + [(False, "over_quota")]
    assert (await load_error(router, A, "resp_3")).code() is grpc.StatusCode.NOT_FOUND
    other = await router.stub.StoreResponse(stored("resp_b", "x" * 1000), metadata=bearer(B))
    assert other.stored  # a quota of its own
    clock.advance(60)  # the next period
    again = await router.stub.StoreResponse(stored("resp_4", "x" * 1000), metadata=bearer(A))
    assert again.stored


async def test_one_client_filling_the_memory_store_drops_its_own_responses_only(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    # The memory store's room is shared: with the oldest dropped first, a client storing in a
    # loop emptied it of every other client's responses.
    size = len(stored("resp_0", "x" * 1000).response.SerializeToString()) + 200
    config = guarded_config(fake.base_url, client("a", A), client("b", B))
    config["state"] = {"memory_document_bytes": 4 * size}
    router = await start_router(config, clock=ManualClock())
    assert (
        await router.stub.StoreResponse(stored("resp_a", "x" * 1000), metadata=bearer(A))
    ).stored
    for i in range(20):
        answer = await router.stub.StoreResponse(
            stored(f"resp_{i}", "x" * 1000), metadata=bearer(B)
        )
        assert answer.stored
    mine = await router.stub.LoadResponses(
        pb.LoadResponsesRequest(ids=["resp_a"]), metadata=bearer(A)
    )
    assert [r.id for r in mine.responses] == ["resp_a"]
    latest = pb.LoadResponsesRequest(ids=["resp_19"])
    assert (await router.stub.LoadResponses(latest, metadata=bearer(B))).responses
    assert (await load_error(router, B, "resp_0")).code() is grpc.StatusCode.NOT_FOUND


async def test_a_load_is_bounded_by_the_routers_message_limit(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    # LoadResponses is not counted in rpm either: 64 ids of 1 MiB responses made the router
    # read and send 64 MiB for a request of a few hundred bytes. Now it stops past
    # server.max_message_bytes (what a chat call continuing them could carry anyway).
    config = guarded_config(
        fake.base_url,
        client("a", A),
        server={"port": 0, "max_message_bytes": 64 * 1024},
        edge={"max_body_bytes": 64 * 1024},
    )
    router = await start_router(config, clock=ManualClock())
    ids = [f"resp_{i}" for i in range(20)]
    for response_id in ids:
        kept = await router.stub.StoreResponse(stored(response_id, "x" * 4000), metadata=bearer(A))
        assert kept.stored
    within = await router.stub.LoadResponses(
        pb.LoadResponsesRequest(ids=ids[:15]), metadata=bearer(A)
    )
    assert len(within.responses) == 15
    refused = await load_error(router, A, *ids)
    assert refused.code() is grpc.StatusCode.INVALID_ARGUMENT
    details = details_from_rpc_error(refused)
    assert (details.openai_param, details.openai_code) == ("ids", "stored_responses_too_large")
    assert "larger than 65536 bytes together" in details.message


async def test_replicas_on_redis_share_a_clients_quota(
    fake: FakeUpstream, start_router: StartRouter, redis_url: str, redis_prefix: str
) -> None:
    clock = ManualClock()
    size = len(stored("resp_0", "x" * 1000).response.SerializeToString()) + ENTRY_BYTES
    config = guarded_config(
        fake.base_url, client("a", A), responses={"client_stored_bytes": 2 * size}
    )
    config["state"] = redis_state(redis_url, redis_prefix)
    one = await start_router(config, clock=clock)
    other = await start_router(config, clock=clock)
    for router, response_id in ((one, "resp_1"), (other, "resp_2")):
        kept = await router.stub.StoreResponse(stored(response_id, "x" * 1000), metadata=bearer(A))
        assert kept.stored
    refused = await one.stub.StoreResponse(stored("resp_3", "x" * 1000), metadata=bearer(A))
    assert (refused.stored, refused.reason) == (False, "over_quota")
    loaded = await one.stub.LoadResponses(
        pb.LoadResponsesRequest(ids=["resp_1", "resp_2"]), metadata=bearer(A)
    )
    assert len(loaded.responses) == 2


@pytest.mark.parametrize("status", ["queued", "in_progress", "cancelled", "completed"])
async def test_a_background_status_is_the_routers_alone_to_write(
    fake: FakeUpstream, start_router: StartRouter, status: str
) -> None:
    """Only StartBackgroundResponse's job writes one: stored by a caller, a `queued` one without
    its Response failed every later load (INTERNAL), an `in_progress` one read as a stopped
    replica's and could be "cancelled", a `cancelled` one answered CancelResponse with nothing."""
    router = await start(fake, start_router, ManualClock())
    forged = stored("resp_1")
    forged.response.background_status = status

    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await router.stub.StoreResponse(forged, metadata=bearer(A))

    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert details_from_rpc_error(refused.value).openai_param == "response.background_status"
    assert (await load_error(router, A, "resp_1")).code() is grpc.StatusCode.NOT_FOUND
