"""The Responses RPCs' `*_json` fields nested deeper than JSON is written (read up to 1024
levels, written to 254, and a kept Response or item goes back out a level or more further
down: a stream event, a list page, an upstream body) on a real router: INVALID_ARGUMENT naming
the field before anything is kept or spent, never INTERNAL; and the router still serves."""

from __future__ import annotations

import json
from typing import Any

import grpc
import orjson
import pytest

from clients.switchboard.v1 import chat_pb2
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream
from tests.conftest import RouterHandle, StartRouter
from tests.router_service.auth.helpers import bearer, chat, client, guarded_config

A = "sk-client-a"
# Past what is written once placed (~240), up to what is read (1024).
DEPTHS = [250, 300, 900]


def deep_text(depth: int, **fields: Any) -> str:
    value: Any = 1
    for _ in range(depth):
        value = {"a": value}
    return json.dumps({**fields, "zz": value})  # orjson would not write it


async def router_of(fake: FakeUpstream, start_router: StartRouter) -> RouterHandle:
    return await start_router(guarded_config(fake.base_url, client("a", A)), clock=ManualClock())


async def refused(call: object, field: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as failed:
        await call  # type: ignore[misc]
    error: Any = failed.value
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()
    assert field in error.details()


@pytest.mark.parametrize("depth", DEPTHS)
async def test_a_background_start_with_a_deep_response_json_is_invalid_argument(
    fake: FakeUpstream, start_router: StartRouter, depth: int
) -> None:
    router = await router_of(fake, start_router)
    text = deep_text(depth, id="resp_deep", object="response", output=[])
    request = pb.StartBackgroundResponseRequest(chat=chat(), response_json=text)
    await refused(router.stub.StartBackgroundResponse(request, metadata=bearer(A)), "response_json")
    assert await router.server.jobs.settle(5) == 0
    fine = orjson.dumps({"id": "resp_ok", "output": []}).decode()
    request = pb.StartBackgroundResponseRequest(chat=chat(), response_json=fine)
    await router.stub.StartBackgroundResponse(request, metadata=bearer(A))  # its slot was back
    assert await router.server.jobs.settle(5) == 0
    assert fake.state.count() == 1  # nothing was spent on the refused one


@pytest.mark.parametrize("field", ["response_json", "output_items_json", "input_items_json"])
async def test_a_stored_response_with_a_deep_field_is_invalid_argument(
    fake: FakeUpstream, start_router: StartRouter, field: str
) -> None:
    router = await router_of(fake, start_router)
    text = deep_text(300, id="resp_s", type="message")
    message = chat_pb2.ChatMessage(role=chat_pb2.ROLE_USER, text="hi")
    response = pb.StoredResponse(id="resp_s", messages=[message])
    if field == "response_json":
        response.response_json = text
    else:
        getattr(response, field).append(text)
    call = router.stub.StoreResponse(pb.StoreResponseRequest(response=response), metadata=bearer(A))
    await refused(call, field)


@pytest.mark.parametrize("depth", DEPTHS)
async def test_a_conversation_with_a_deep_item_is_invalid_argument(
    fake: FakeUpstream, start_router: StartRouter, depth: int
) -> None:
    router = await router_of(fake, start_router)
    request = pb.CreateConversationRequest(items_json=[deep_text(depth, type="message")])
    await refused(router.stub.CreateConversation(request, metadata=bearer(A)), "items[0]")
    await router.stub.CreateConversation(pb.CreateConversationRequest(), metadata=bearer(A))
