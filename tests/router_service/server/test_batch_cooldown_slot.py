"""A batch line waiting out a cooldown (every deployment it may use cooling: an unattended call
waits, `RequestContext.unattended`) gives its slot of `batches.concurrency` back for the wait:
the batch's lines of other conversations, which may use another deployment, go on meanwhile.
It held the slot for the whole wait (up to 300 s), and with `concurrency: 1` the batch stood
still. (A batch asks one model; its lines' conversations are their `user`s: one banned from a
provider waits for the other's cooldown, the others are served by the banned one.)"""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from clients.switchboard.v1 import batches_pb2 as bpb
from clients.switchboard.v1 import chat_pb2
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import RouterHandle, StartRouter
from tests.e2e.test_batches_sdk import chat_line, jsonl
from tests.helpers import eventually
from tests.router_service.engine.test_cooldown_wait_slot import WaitingClock
from tests.router_service.server.test_routing import AS_SERVICE, two_providers, with_route_client

pytestmark = pytest.mark.timeout(60)


def _line(custom_id: str, user: str) -> dict[str, Any]:
    line = chat_line(custom_id, model="chat")
    line["body"]["user"] = user
    return line


async def _failed(router: RouterHandle, model: str, user: str) -> None:
    message = chat_pb2.ChatMessage(role=chat_pb2.ROLE_USER, text="hi")
    params = chat_pb2.ChatParams(model=model, messages=[message], user=user)
    with pytest.raises(grpc.aio.AioRpcError):
        await router.stub.Chat(pb.ChatRequest(params=params), metadata=AS_SERVICE, timeout=5)


async def _cooled(fake: FakeUpstream, start_router: StartRouter) -> RouterHandle:
    """Conversation `u1` is banned from alpha (`provider-ban`, 600 s), whose 15 s cooldown is
    over; beta cools for 300 s (a 503 asking for it). `concurrency: 1`."""
    config = with_route_client(two_providers(fake.base_url, batches={"concurrency": 1}))
    config["providers"]["alpha"]["thread_protection"] = "provider-ban"
    clock = WaitingClock()
    router = await start_router(config, clock=clock)
    fake.state.set_scenario(Scenario.server_error(503, times=1), model="model-a")
    await _failed(router, "alpha/model-a", "u1")
    clock.advance(16.0)
    fake.state.set_scenario(Scenario.server_error(503, retry_after="300", times=1), model="model-b")
    await _failed(router, "beta/model-b", "u0")
    return router


async def _start(router: RouterHandle, *lines: dict[str, Any]) -> str:
    upload = bpb.UploadFileRequest(filename="in.jsonl", purpose="batch", content=jsonl(*lines))
    kept = await router.stub.UploadFile(upload, metadata=AS_SERVICE)
    create = bpb.CreateBatchRequest(
        input_file_id=kept.file.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    made: bpb.Batch = (await router.stub.CreateBatch(create, metadata=AS_SERVICE)).batch
    assert made.status != "failed", made
    return made.id


async def _asked(fake: FakeUpstream, model: str, times: int) -> None:
    async def asked() -> bool:
        return fake.state.count(model=model) == times

    await eventually(asked, what=f"{model} asked {times} times")


async def test_a_line_waiting_out_a_cooldown_gives_its_slot_back(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    router = await _cooled(fake, start_router)
    clock = router.runtime.clock
    assert isinstance(clock, WaitingClock)
    batch_id = await _start(router, _line("banned", "u1"), _line("free", "u2"))

    await _asked(fake, "model-a", 2)  # u2's line ran on alpha while u1's waited
    assert fake.state.count(model="model-b") == 1  # u1's not sent yet: it waits
    clock.advance(300.0)  # beta's cooldown ends: u1's line takes a slot again, is answered
    assert await router.server.batch_jobs.settle(10) == 0
    found = await router.stub.GetBatch(bpb.GetBatchRequest(id=batch_id), metadata=AS_SERVICE)
    counts = found.batch.request_counts
    assert (found.batch.status, counts.completed, counts.failed) == ("completed", 2, 0)
    assert fake.state.count(model="model-b") == 2


async def test_lines_set_aside_are_bounded_by_the_concurrency(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    """Two lines of `u1`, then one of `u2`, `concurrency: 1`: the first waits aside, the second
    waits holding the slot (a line set aside was admitted by its client's limits already: no
    more of them than the batch's concurrency wait unsent), so u2's runs after the cooldown."""
    router = await _cooled(fake, start_router)
    clock = router.runtime.clock
    assert isinstance(clock, WaitingClock)
    before = clock.sleeping
    batch_id = await _start(router, _line("one", "u1"), _line("two", "u1"), _line("free", "u2"))

    async def both_asleep() -> bool:
        return clock.sleeping >= before + 2

    await eventually(both_asleep, what="two lines waiting out the cooldown")
    assert fake.state.count(model="model-a") == 1  # u2's line not run
    clock.advance(300.0)
    assert await router.server.batch_jobs.settle(10) == 0
    found = await router.stub.GetBatch(bpb.GetBatchRequest(id=batch_id), metadata=AS_SERVICE)
    assert (found.batch.request_counts.completed, found.batch.request_counts.failed) == (3, 0)
    assert fake.state.count(model="model-a") == 2
