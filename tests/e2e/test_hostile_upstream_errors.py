"""What an upstream's error body says is scrubbed before a caller reads it (its keys, a key it
starred out itself, what the log masks: `UpstreamFailure.scrub`), at a cost linear in its size:
the scrub runs on the router's event loop, on every failed attempt, over every string of a body
the upstream (or a proxy in front of it) chose the size of."""

from __future__ import annotations

import grpc
import pytest

from clients.switchboard.v1 import chat_pb2
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import StartRouter, base_config

# A long word and, after it, stars: a starred key's pattern was tried from each of the word's
# characters to its end (quadratic: ~20 s for these 40,000 characters, all other calls waiting).
STARRED_LATE = "a" * 40_000 + " ***"


@pytest.mark.parametrize("where", ["message", "param"])
async def test_a_long_upstream_error_is_scrubbed_in_linear_time(
    fake: FakeUpstream, start_router: StartRouter, where: str
) -> None:
    router = await start_router(base_config(fake.base_url))
    error = {"message": "bad request", "type": "invalid_request_error"}
    error[where] = STARRED_LATE
    fake.state.set_scenario(Scenario(status=400, error_body={"error": error}))
    said = chat_pb2.ChatMessage(role=chat_pb2.ROLE_USER, text="hi")
    request = pb.ChatRequest(params=chat_pb2.ChatParams(model="chain", messages=[said]))

    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await router.stub.Chat(request, timeout=5)

    # The caller's 400, passed through: not a deadline the scrub ran past.
    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
