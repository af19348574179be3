"""A call whose deadline has already passed when the router would call an upstream ends
DEADLINE_EXCEEDED without calling it: over the port and in-process (a deadline of a
nanosecond: a `timeout` of 0 is the client's ValueError), unary and streamed. The router gave
it a millisecond's attempt anyway (`attempt_timeout`'s floor): the upstream was called, and
paid, each time, and a quick one's answer even came back as a success past the caller's
deadline."""

from __future__ import annotations

import grpc
import pytest

from clients import LocalChannel, RouterClient, RouterError
from router_service.fake_upstream import FakeUpstream
from tests.conftest import RouterHandle
from tests.helpers import eventually
from tests.router_service.auth.helpers import chat, chat_stream

pytestmark = pytest.mark.timeout(30)


@pytest.mark.parametrize("in_process", [False, True], ids=["wire", "in-process"])
async def test_a_spent_deadline_never_reaches_the_upstream(
    router: RouterHandle, fake: FakeUpstream, in_process: bool
) -> None:
    spent = 1e-9
    channel = LocalChannel(router.server.in_process) if in_process else None
    codes = set()
    async with RouterClient(router.server.address, channel=channel) as client:
        await client.chat(chat(), timeout=10)  # the upstream's connection up: a quick call
        called = len(fake.state.records)
        for _ in range(5):
            with pytest.raises(RouterError) as unary:
                await client.chat(chat(), timeout=spent)
            with pytest.raises(RouterError) as streamed:
                async with client.chat_stream(chat_stream(), timeout=spent) as stream:
                    await anext(stream)
            codes |= {unary.value.grpc_code, streamed.value.grpc_code}
    assert codes == {grpc.StatusCode.DEADLINE_EXCEEDED}
    assert len(fake.state.records) == called

    async def settled() -> bool:
        return await router.leases_held() == 0

    await eventually(settled, what="the key leases given back")
