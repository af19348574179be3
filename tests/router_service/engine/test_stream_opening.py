"""A stream's opening read (its first-chunk window) through a router on each transport, `httpx`'s
included, whose reads time out by cancelling the task they run in (anyio's cancel scopes): the
opening is read in the request's own task, which does nothing else meanwhile (the caller hears
nothing before the commit), so the window's timeout ends that read only, and the stream fails
over to the next deployment. (A stream's reads have no timeout of httpx's own: `read` is None,
the StreamGuard's windows time them.)"""

from __future__ import annotations

from typing import Any

import pytest

from clients.switchboard.v1 import chat_pb2, routing_pb2
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import StartRouter, base_config
from tests.helpers import eventually

pytestmark = pytest.mark.timeout(20)

# Where alpha's upstream goes quiet: before its first byte, or after a role-only chunk (not a
# start: the opening reads on, within the same window).
QUIET = {
    "before the first byte": Scenario.stall(),
    "after the role chunk": Scenario(held_after_chunks=1),
}


@pytest.mark.parametrize("transport", ["httpx", "lean", "aiohttp"])
@pytest.mark.parametrize("quiet", list(QUIET))
async def test_a_first_chunk_timeout_fails_over(
    transport: str, quiet: str, fake: FakeUpstream, start_router: StartRouter
) -> None:
    config: dict[str, Any] = base_config(fake.base_url, http={"transport": transport})
    config["providers"]["alpha"]["timeouts"] = {"first_chunk_s": 0.3}
    router = await start_router(config)
    fake.state.set_scenario(QUIET[quiet], model="model-a")
    message = chat_pb2.ChatMessage(role=chat_pb2.ROLE_USER, text="hi")
    request = pb.ChatStreamRequest(params=chat_pb2.ChatParams(model="chain", messages=[message]))

    events = [event async for event in router.stub.ChatStream(request)]

    assert [e for e in events if e.HasField("error")] == []
    route = events[0].route
    assert route.deployment == "beta/model-b"
    [alpha, beta] = route.attempts
    assert alpha.outcome == routing_pb2.OUTCOME_FIRST_CHUNK_TIMEOUT, alpha
    assert beta.outcome == routing_pb2.OUTCOME_OK
    chunks = [e.chunk for e in events if e.HasField("chunk")]
    assert "".join(c.choices[0].delta.text for c in chunks if c.choices).startswith("Echo: hi")
    # The window times alpha's connect and request too: on a loaded machine (aiohttp's first
    # connection resolves the host in a thread) it may end before the request reached the fake.
    stalled = fake.state.calls(model="model-a")
    assert len(stalled) <= 1

    async def closed() -> bool:
        return all(call.client_disconnected for call in stalled)

    await eventually(closed, what="alpha's stalled call closed")
    assert await router.leases_held() == 0
