"""A stream's opening read (its first-chunk window) through a router on each transport, `httpx`'s
included, whose reads time out by cancelling the task they run in (anyio's cancel scopes): the
opening is read in the request's own task, which does nothing else meanwhile (the caller hears
nothing before the commit), so the window's timeout ends that read only, and the stream fails
over to the next deployment. (A stream's reads have no timeout of httpx's own: `read` is None,
the StreamGuard's windows time them.)"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from clients.switchboard.v1 import chat_pb2, routing_pb2
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.clock import ManualClock
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
    # The window on the router's clock, moved past once alpha's upstream is quiet: it times
    # the quiet upstream only, never a loaded machine's connect (aiohttp's first resolves the
    # host in a thread).
    clock = ManualClock()
    config: dict[str, Any] = base_config(fake.base_url, http={"transport": transport})
    config["providers"]["alpha"]["timeouts"] = {"first_chunk_s": 0.3}
    router = await start_router(config, clock=clock)
    fake.state.set_scenario(QUIET[quiet], model="model-a")
    message = chat_pb2.ChatMessage(role=chat_pb2.ROLE_USER, text="hi")
    request = pb.ChatStreamRequest(params=chat_pb2.ChatParams(model="chain", messages=[message]))

    async def read() -> list[pb.ChatStreamResponse]:
        return [event async for event in router.stub.ChatStream(request)]

    streaming = asyncio.ensure_future(read())
    await fake.state.wait_for(
        lambda: (
            [c.outcome for c in fake.state.calls(model="model-a")] == ["stalled"]
            or fake.state.held == 1
        )  # its role chunk sent
    )
    assert not streaming.done()
    clock.advance(0.31)  # the window was open before the request was sent
    events = await streaming

    assert [e for e in events if e.HasField("error")] == []
    route = events[0].route
    assert route.deployment == "beta/model-b"
    [alpha, beta] = route.attempts
    assert alpha.outcome == routing_pb2.OUTCOME_FIRST_CHUNK_TIMEOUT, alpha
    assert beta.outcome == routing_pb2.OUTCOME_OK
    chunks = [e.chunk for e in events if e.HasField("chunk")]
    assert "".join(c.choices[0].delta.text for c in chunks if c.choices).startswith("Echo: hi")
    [stalled] = fake.state.calls(model="model-a")

    async def closed() -> bool:
        return stalled.client_disconnected

    await eventually(closed, what="alpha's stalled call closed")
    assert await router.leases_held() == 0
