"""An id longer than any the router makes, given to a method that acts on what the router made
(cancelling or resuming a background response, hanging up a WebRTC call): NOT_FOUND, as OpenAI
answers an id it never made (404), over gRPC and through the edge to the openai SDK; the error
repeats the id's first bytes only. An empty id stays a malformed argument
(test_empty_ids.py)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import httpx
import openai
import pytest

from clients import details_from_rpc_error
from clients.switchboard.v1 import router_service_pb2 as pb
from tests.conftest import RouterHandle
from tests.e2e.stream_harness import StartEdge
from tests.router_service.server.test_empty_ids import drained
from tests.router_service.server.test_invalid_requests import refused

LONG = "resp_" + "é" * 200  # 405 bytes: past MAX_ID_BYTES (128), cut on a character
SHOWN = "resp_" + "é" * 61 + "…"  # its first 127 bytes: whole characters only

CASES: dict[str, tuple[Callable[[Any], Awaitable[Any]], str, str, str]] = {
    "HangupRealtimeCall": (
        lambda s: s.HangupRealtimeCall(pb.HangupRealtimeCallRequest(call_id=LONG)),
        "REALTIME_CALL_NOT_FOUND",
        "call_id",
        "No such call.",
    ),
    "CancelResponse": (
        lambda s: s.CancelResponse(pb.CancelResponseRequest(id=LONG)),
        "RESPONSE_NOT_FOUND",
        "id",
        f"Response with id '{SHOWN}' not found.",
    ),
    "ResumeResponse": (
        lambda s: drained(s.ResumeResponse(pb.ResumeResponseRequest(id=LONG))),
        "RESPONSE_NOT_FOUND",
        "id",
        f"Response with id '{SHOWN}' not found.",
    ),
}


@pytest.mark.parametrize(("call", "reason", "param", "message"), CASES.values(), ids=CASES.keys())
async def test_an_over_long_id_is_not_found(
    router: RouterHandle,
    call: Callable[[Any], Awaitable[Any]],
    reason: str,
    param: str,
    message: str,
) -> None:
    error = await refused(call(router.stub))
    details = details_from_rpc_error(error)
    assert error.code() is grpc.StatusCode.NOT_FOUND, error.details()
    assert (details.reason, details.openai_param, details.message) == (reason, param, message)
    assert LONG not in (error.details() or "")


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
            "message": f"Response with id '{LONG}' not found.",
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
