"""An id longer than any the router makes or keeps, given to a method that looks something up
by it (a stored response, a conversation or its item, a file, a batch, an issued client key, a
background response to cancel or resume, a WebRTC call to hang up): that lookup's NOT_FOUND,
as OpenAI answers an id it does not have whatever its length (404), over gRPC and through the
edge to the openai SDK; the error repeats the id's first bytes only (`_ids.shown_id`). An
empty id stays a malformed argument (test_empty_ids.py)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import httpx
import openai
import pytest

from clients import details_from_rpc_error
from clients.switchboard.v1 import admin_service_pb2 as ap
from clients.switchboard.v1 import batches_pb2 as bp
from clients.switchboard.v1 import router_service_pb2 as pb
from tests.conftest import RouterHandle
from tests.e2e.stream_harness import StartEdge
from tests.router_service.server.test_empty_ids import drained
from tests.router_service.server.test_invalid_requests import refused

LONG = "resp_" + "é" * 200  # 405 bytes: past MAX_ID_BYTES (128), cut on a character
SHOWN = "resp_" + "é" * 61 + "…"  # its first 127 bytes: whole characters only

Call = Callable[[Any], Awaitable[Any]]
RESPONSE = ("RESPONSE_NOT_FOUND", f"Response with id '{SHOWN}' not found.")
CONVERSATION = ("CONVERSATION_NOT_FOUND", f"Conversation with id '{SHOWN}' not found.")
FILE = ("FILE_NOT_FOUND", f"No such File object: {SHOWN}")
BATCH = ("BATCH_NOT_FOUND", f"No batch found with id '{SHOWN}'.")


async def _delete_item(stub: Any) -> Any:
    """UpdateConversation deleting an item of that id from a conversation that exists."""
    made = await stub.CreateConversation(pb.CreateConversationRequest())
    change = pb.UpdateConversationRequest(id=made.conversation.id, delete_item_ids=[LONG])
    return await stub.UpdateConversation(change)


def _batch(stub: Any) -> Any:
    asked = bp.CreateBatchRequest(
        input_file_id=LONG, endpoint="/v1/chat/completions", completion_window="24h"
    )
    return stub.CreateBatch(asked)


# Each: the call, its reason, its param and its message.
CASES: dict[str, tuple[Call, str, str, str]] = {
    "HangupRealtimeCall": (
        lambda s: s.HangupRealtimeCall(pb.HangupRealtimeCallRequest(call_id=LONG)),
        "REALTIME_CALL_NOT_FOUND",
        "call_id",
        "No such call.",
    ),
    "CancelResponse": (
        lambda s: s.CancelResponse(pb.CancelResponseRequest(id=LONG)),
        RESPONSE[0],
        "id",
        RESPONSE[1],
    ),
    "ResumeResponse": (
        lambda s: drained(s.ResumeResponse(pb.ResumeResponseRequest(id=LONG))),
        RESPONSE[0],
        "id",
        RESPONSE[1],
    ),
    "LoadResponses": (
        lambda s: s.LoadResponses(pb.LoadResponsesRequest(ids=["resp_1", LONG])),
        RESPONSE[0],
        "ids[1]",
        RESPONSE[1],
    ),
    "DeleteResponse": (
        lambda s: s.DeleteResponse(pb.DeleteResponseRequest(id=LONG)),
        RESPONSE[0],
        "id",
        RESPONSE[1],
    ),
    "LoadConversation": (
        lambda s: s.LoadConversation(pb.LoadConversationRequest(id=LONG)),
        *(CONVERSATION[0], "id", CONVERSATION[1]),
    ),
    "UpdateConversation": (
        lambda s: s.UpdateConversation(pb.UpdateConversationRequest(id=LONG)),
        *(CONVERSATION[0], "id", CONVERSATION[1]),
    ),
    "DeleteConversation": (
        lambda s: s.DeleteConversation(pb.DeleteConversationRequest(id=LONG)),
        *(CONVERSATION[0], "id", CONVERSATION[1]),
    ),
    "UpdateConversation.delete_item_ids": (
        _delete_item,
        "CONVERSATION_ITEM_NOT_FOUND",
        "delete_item_ids[0]",
        f"Item with id '{SHOWN}' not found.",
    ),
    "GetFile": (lambda s: s.GetFile(bp.GetFileRequest(id=LONG)), FILE[0], "id", FILE[1]),
    "GetFileContent": (
        lambda s: s.GetFileContent(bp.GetFileContentRequest(id=LONG)),
        *(FILE[0], "id", FILE[1]),
    ),
    "DeleteFile": (lambda s: s.DeleteFile(bp.DeleteFileRequest(id=LONG)), FILE[0], "id", FILE[1]),
    "CreateBatch": (_batch, FILE[0], "input_file_id", FILE[1]),
    "GetBatch": (lambda s: s.GetBatch(bp.GetBatchRequest(id=LONG)), BATCH[0], "id", BATCH[1]),
    "CancelBatch": (
        lambda s: s.CancelBatch(bp.CancelBatchRequest(id=LONG)),
        *(BATCH[0], "id", BATCH[1]),
    ),
}
ADMIN_CASES: dict[str, tuple[Call, str, str, str]] = {
    "RevokeClientKey": (
        lambda a: a.RevokeClientKey(ap.RevokeClientKeyRequest(id=LONG)),
        "CLIENT_KEY_NOT_FOUND",
        "id",
        "No issued client key with that id.",
    ),
    "CancelClientBatch": (
        lambda a: a.CancelClientBatch(ap.CancelClientBatchRequest(id=LONG)),
        *(BATCH[0], "id", BATCH[1]),
    ),
    "SetKeyEnabled": (  # a fingerprint, never repeated (it may be a key pasted in its place)
        lambda a: a.SetKeyEnabled(ap.SetKeyEnabledRequest(fingerprint=LONG)),
        "KEY_NOT_FOUND",
        "fingerprint",
        "No key with that fingerprint in any provider.",
    ),
}


def assert_not_found(error: grpc.aio.AioRpcError, reason: str, param: str, message: str) -> None:
    details = details_from_rpc_error(error)
    assert error.code() is grpc.StatusCode.NOT_FOUND, error.details()
    assert (details.reason, details.openai_param, details.message) == (reason, param, message)
    assert LONG not in (error.details() or "")


@pytest.mark.parametrize(("call", "reason", "param", "message"), CASES.values(), ids=CASES.keys())
async def test_an_over_long_id_is_not_found(
    router: RouterHandle, call: Call, reason: str, param: str, message: str
) -> None:
    assert_not_found(await refused(call(router.stub)), reason, param, message)


@pytest.mark.parametrize(
    ("call", "reason", "param", "message"), ADMIN_CASES.values(), ids=ADMIN_CASES.keys()
)
async def test_an_over_long_id_is_not_found_by_admin_methods_too(
    router: RouterHandle, call: Call, reason: str, param: str, message: str
) -> None:
    assert_not_found(await refused(call(router.admin)), reason, param, message)


async def test_the_edge_answers_an_over_long_id_404_in_openais_shape(
    router: RouterHandle, start_edge: StartEdge
) -> None:
    edge = await start_edge(router)
    async with openai.AsyncOpenAI(
        base_url=f"{edge.base_url}/v1", api_key="sk-caller", max_retries=0, timeout=10
    ) as sdk:
        with pytest.raises(openai.NotFoundError) as cancelled:
            await sdk.responses.cancel(LONG)
        with pytest.raises(openai.NotFoundError) as resumed:
            await sdk.responses.retrieve(LONG, stream=True)
    for caught in (cancelled, resumed):  # OpenAI's words for a response it does not have
        assert caught.value.body == {
            "message": f"Response with id '{SHOWN}' not found.",
            "type": "invalid_request_error",
            "param": None,
            "code": None,
        }
    async with httpx.AsyncClient(base_url=edge.base_url, timeout=10) as http:
        hangup = await http.post(
            f"/v1/realtime/calls/{LONG}/hangup", headers={"authorization": "Bearer sk-caller"}
        )
    assert hangup.status_code == 404
    error = hangup.json()["error"]
    assert (error["type"], error["code"], error["param"]) == (
        "invalid_request_error",
        "call_not_found",
        "call_id",
    )
