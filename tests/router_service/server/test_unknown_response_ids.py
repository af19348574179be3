"""CancelResponse and ResumeResponse name the response they act on by `id`: a refusal of it, an
id the caller does not have or storing turned off, names `id` in ErrorInfo's `openai_param`
(and a BadRequest violation, for INVALID_ARGUMENT), as DeleteResponse does. Both read the
response as LoadResponses does, whose own field is `ids`: they named `ids[0]` and `ids`,
fields their requests do not have, to a caller in any language that reads the param."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import pytest

from clients import details_from_rpc_error
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.fake_upstream import FakeUpstream
from tests.conftest import RouterHandle, StartRouter, base_config
from tests.router_service.server.test_empty_ids import drained
from tests.router_service.server.test_invalid_requests import assert_invalid_argument, refused

Call = Callable[[Any], Awaitable[Any]]
CALLS: dict[str, Call] = {
    "CancelResponse": lambda s: s.CancelResponse(pb.CancelResponseRequest(id="resp_unknown")),
    "ResumeResponse": lambda s: drained(
        s.ResumeResponse(pb.ResumeResponseRequest(id="resp_unknown"))
    ),
}


@pytest.mark.parametrize("call", CALLS.values(), ids=CALLS.keys())
async def test_an_unknown_response_is_not_found_naming_id(router: RouterHandle, call: Call) -> None:
    error = await refused(call(router.stub))
    details = details_from_rpc_error(error)
    assert error.code() is grpc.StatusCode.NOT_FOUND, error.details()
    assert (details.reason, details.openai_param) == ("RESPONSE_NOT_FOUND", "id")
    assert details.message == "Response with id 'resp_unknown' not found."


@pytest.mark.parametrize("call", CALLS.values(), ids=CALLS.keys())
async def test_storing_turned_off_is_refused_naming_id(
    fake: FakeUpstream, start_router: StartRouter, call: Call
) -> None:
    router = await start_router(base_config(fake.base_url, responses={"store": False}))
    error = await refused(call(router.stub))
    assert_invalid_argument(error, "id")
    assert details_from_rpc_error(error).openai_code == "stored_responses_disabled"
