"""A method that names what it acts on by id, called with none: a malformed argument
(INVALID_ARGUMENT with a field violation naming the field), never a NOT_FOUND for an id
nobody could have."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import pytest

from clients.switchboard.v1 import admin_service_pb2 as ap
from clients.switchboard.v1 import batches_pb2 as bp
from clients.switchboard.v1 import router_service_pb2 as pb
from tests.conftest import RouterHandle
from tests.router_service.server.test_invalid_requests import assert_invalid_argument, refused

Call = Callable[[Any], Awaitable[Any]]


async def drained(calls: Any) -> None:
    async for _ in calls:
        pass


CASES: dict[str, tuple[Callable[[Any], Awaitable[Any]], str]] = {
    "HangupRealtimeCall": (
        lambda s: s.HangupRealtimeCall(pb.HangupRealtimeCallRequest()),
        "call_id",
    ),
    "DeleteResponse": (lambda s: s.DeleteResponse(pb.DeleteResponseRequest()), "id"),
    "CancelResponse": (lambda s: s.CancelResponse(pb.CancelResponseRequest()), "id"),
    "ResumeResponse": (lambda s: drained(s.ResumeResponse(pb.ResumeResponseRequest())), "id"),
    "LoadConversation": (lambda s: s.LoadConversation(pb.LoadConversationRequest()), "id"),
    "UpdateConversation": (lambda s: s.UpdateConversation(pb.UpdateConversationRequest()), "id"),
    "DeleteConversation": (lambda s: s.DeleteConversation(pb.DeleteConversationRequest()), "id"),
    "GetFile": (lambda s: s.GetFile(bp.GetFileRequest()), "id"),
    "GetFileContent": (lambda s: s.GetFileContent(bp.GetFileContentRequest()), "id"),
    "DeleteFile": (lambda s: s.DeleteFile(bp.DeleteFileRequest()), "id"),
    "GetBatch": (lambda s: s.GetBatch(bp.GetBatchRequest()), "id"),
    "CancelBatch": (lambda s: s.CancelBatch(bp.CancelBatchRequest()), "id"),
}
ADMIN_CASES: dict[str, tuple[Callable[[Any], Awaitable[Any]], str]] = {
    "RevokeClientKey": (lambda a: a.RevokeClientKey(ap.RevokeClientKeyRequest()), "id"),
    "CancelClientBatch": (lambda a: a.CancelClientBatch(ap.CancelClientBatchRequest()), "id"),
    "SetKeyEnabled": (lambda a: a.SetKeyEnabled(ap.SetKeyEnabledRequest()), "fingerprint"),
}


@pytest.mark.parametrize(("call", "param"), CASES.values(), ids=CASES.keys())
async def test_an_empty_id_is_a_malformed_argument(
    router: RouterHandle, call: Callable[[Any], Awaitable[Any]], param: str
) -> None:
    error = await refused(call(router.stub))
    assert isinstance(error, grpc.aio.AioRpcError)
    assert_invalid_argument(error, param)


@pytest.mark.parametrize(("call", "param"), ADMIN_CASES.values(), ids=ADMIN_CASES.keys())
async def test_an_empty_id_is_a_malformed_argument_to_admin_methods_too(
    router: RouterHandle, call: Callable[[Any], Awaitable[Any]], param: str
) -> None:
    assert_invalid_argument(await refused(call(router.admin)), param)
