"""Each chunk reaches the caller as the upstream sends it, before the upstream sends the next:
nothing on the way (the router's chunk batching, the local channel's queue, the edge's SSE
relay and its one-write head) holds a chunk back for the ones behind it. The upstream is
stepped (`Scenario.stepped_chunks`: it waits before each event for the test's release), so a
chunk held anywhere on the way is seen as missing at the caller while the upstream waits.
No heartbeat comes meanwhile (`QUIET`): one would push a held chunk out behind it. (The same
through a `switchboard serve` process: tests/router_service/test_cli_serve.py.)"""

from __future__ import annotations

import pytest

from clients import LocalChannel, RouterClient
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.fake_upstream import FakeUpstream
from tests.conftest import StartRouter
from tests.e2e.stream_harness import (
    QUIET,
    STEPPED,
    STEPPED_ARRIVALS,
    OpenStack,
    chat_params,
    stepped_chunks,
    stepped_sse,
    stream_config,
)


@pytest.mark.parametrize("in_process", [True, False], ids=["one-process", "two-process"])
async def test_each_chunk_reaches_the_http_caller_before_the_next_is_sent(
    open_stack: OpenStack, fake: FakeUpstream, in_process: bool
) -> None:
    stack = await open_stack(in_process=in_process, **QUIET)
    fake.state.set_scenario(STEPPED)

    body = await stepped_sse(fake, stack.http)

    assert body.endswith(b"data: [DONE]\n\n")
    await stack.settled()


@pytest.mark.parametrize("in_process", [True, False], ids=["in-process", "over-the-port"])
@pytest.mark.parametrize("batch", [True, False], ids=["batched", "one-by-one"])
async def test_each_chunk_reaches_the_grpc_caller_before_the_next_is_sent(
    fake: FakeUpstream, start_router: StartRouter, in_process: bool, batch: bool
) -> None:
    """ChatStream as the edge calls it (`batch_chunks`, the route on the first chunks) and
    plain, over the router's port and in-process (`LocalChannel`)."""
    router = await start_router(stream_config(fake.base_url, **QUIET))
    fake.state.set_scenario(STEPPED)
    request = pb.ChatStreamRequest(
        params=chat_params(), batch_chunks=batch, route_on_first_message=batch
    )
    local = LocalChannel(router.server.in_process) if in_process else None
    target = "in-process" if in_process else router.server.address
    async with RouterClient(target, channel=local) as client:
        assert await stepped_chunks(fake, client, request) == STEPPED_ARRIVALS[-1]
