"""Every way a stream ends releases what it held: leases, session marks, upstream connections,
tasks; callers who leave or run out of time penalise no one; slow readers bound the upstream."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import aclosing

import grpc
import pytest

from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.clock import ManualClock
from router_service.engine import RequestContext
from router_service.errors import DeadlineExceededError
from router_service.fake_upstream import FakeUpstream, Scenario
from router_service.fake_upstream._state import CallRecord
from router_service.outcomes import Outcome
from router_service.server import RouterServer
from tests.e2e.stream_harness import (
    BODY,
    MESSAGES,
    OpenStack,
    Stack,
    chat_params,
    sdk_read,
    stream_call,
)
from tests.helpers import eventually


def task_census() -> Counter[str]:
    """Running tasks by coroutine name: long-lived server tasks (gRPC's call waiters, uvicorn,
    the fake's connections) come back to their counts after a stream, and nothing else stays.

    Left out: asyncio's own finalizer tasks (`aclose()` of async generators that libraries, the
    SDK and httpx among them, abandon to the garbage collector); they end within a loop turn.
    And the fake upstream's per-connection tasks: finished streams leave their upstream
    connection idle in the router's keep-alive pool (bounded by `http.max_keepalive_connections`)
    rather than closing it — that is connection reuse, not a leak; the upstream's own request
    handlers are still counted."""
    return Counter(
        name
        for task in asyncio.all_tasks()
        if not task.done()
        and task is not asyncio.current_task()
        and type(coro := task.get_coro()).__name__ != "async_generator_athrow"
        and (name := getattr(coro, "__qualname__", type(coro).__name__)) != _POOLED_CONNECTION
    )


_POOLED_CONNECTION = "RequestHandler.start"


# Tasks that live exactly as long as one request: gRPC's per-call tasks (server and client),
# uvicorn's and aiohttp's per-request tasks, the StreamGuard's reader.
_PER_REQUEST = frozenset(
    {
        "_schedule_rpc_coro",
        "_handle_exceptions",
        "_AioCall._handle_status_once_received",
        "RequestResponseCycle.run_asgi",
        "RequestHandler._handle_request",
        "_Reader._read",
    }
)


# What one open call holds on the router, server side: a client watching its health (the edge's
# channel does: client-side health checking) keeps one Watch call open for as long as it is
# connected.
_PER_WATCH = Counter({"_schedule_rpc_coro": 1, "_handle_exceptions": 1})


async def idle_census(router: RouterServer) -> Counter[str]:
    """The census once the requests before it are over: the baseline of the long-lived tasks
    (the health watches on `router` included)."""

    def watches() -> Counter[str]:
        return Counter({name: n * router.health_watchers for name, n in _PER_WATCH.items()})

    async def idle() -> bool:
        running = Counter({k: v for k, v in task_census().items() if k in _PER_REQUEST})
        return not running - watches()

    await eventually(idle, what="requests before the baseline over")
    return task_census()


async def back_to(baseline: Counter[str]) -> None:
    """No task beyond the baseline is left running. (A baseline task may end: pooled upstream
    connections are per-connection tasks in the fake upstream, closed when a stream is cut.)"""

    async def settled() -> bool:
        return not task_census() - baseline

    try:
        await eventually(settled, what="running tasks back to the baseline")
    except AssertionError:
        raise AssertionError(
            f"left behind: {task_census() - baseline}, gone: {baseline - task_census()}"
        ) from None


async def not_penalised(stack: Stack, fake: FakeUpstream) -> None:
    runtime = stack.router.runtime
    deployment = runtime.planner.deployments["alpha/model-a"]
    assert not (await runtime.store.deadlines([deployment.cooldown_name]))[0]
    [stats] = await runtime.stats.read(["alpha/model-a"])
    assert stats.failures == 0
    for key in await deployment.pool.snapshot():
        assert not key.disabled_until and not key.cooling


@pytest.mark.parametrize("in_process", [False, True], ids=["grpc", "in-process"])
async def test_client_disconnect_mid_stream_releases_everything(
    open_stack: OpenStack, fake: FakeUpstream, in_process: bool
) -> None:
    """Also with the edge calling the router in-process (`switchboard serve`)."""
    stack = await open_stack(heartbeat_s=0.05, in_process=in_process)
    _, error = await sdk_read(stack)  # warm up: lazily started long-lived tasks now exist
    assert error is None
    await stack.settled()
    baseline = await idle_census(stack.router.server)
    # Held after 6 pieces until the caller has gone: mid-stream however slow the machine (a
    # chunk interval let a loaded one send more while the test looked, or time the close out).
    fake.state.set_scenario(Scenario(chunks=500, held_after_chunks=6))

    stream = await stack.sdk.chat.completions.create(model="chain", messages=MESSAGES, stream=True)
    received = 0
    async for chunk in stream:
        received += bool(chunk.choices and chunk.choices[0].delta.content)
        if received == 3:
            break
    record = stream_call(fake)
    assert not record.client_disconnected
    await stream.close()  # the HTTP caller goes away mid-stream

    # Edge → gRPC cancel → router → upstream close, while the upstream waits to send more: not
    # one more piece left it after the caller was gone.
    await fake.state.wait_for(lambda: record.client_disconnected, what="the upstream closed")
    assert record.chunks_sent == 6 and not record.completed
    await stack.settled()
    await not_penalised(stack, fake)
    await back_to(baseline)


async def test_grpc_deadline_mid_stream_releases_everything(
    open_stack: OpenStack, fake: FakeUpstream
) -> None:
    """The stream is held after 2 chunks until the caller has gone: under way long before the
    (real, long) deadline however loaded the machine, so that the deadline passes mid-stream."""
    stack = await open_stack(heartbeat_s=0.05)
    fake.state.set_scenario(Scenario(chunks=500, held_after_chunks=2))
    call = stack.router.stub.ChatStream(pb.ChatStreamRequest(params=chat_params()), timeout=2)
    kinds: list[str] = []
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async for event in call:
            kinds.append(event.WhichOneof("event"))

    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert kinds[0] == "route" and "chunk" in kinds
    record = stream_call(fake)
    await fake.state.wait_for(lambda: record.client_disconnected)
    assert record.chunks_sent == 2 and not record.completed
    await stack.settled()
    await not_penalised(stack, fake)


async def test_cancelled_stream_is_recorded_as_cancelled(
    open_stack: OpenStack, fake: FakeUpstream
) -> None:
    stack = await open_stack(heartbeat_s=0.05)
    fake.state.set_scenario(Scenario(chunks=500, held_after_chunks=2))  # mid-stream when closed
    runtime = stack.router.runtime
    ctx = RequestContext("chain", runtime.clock, session_id="s-cancel")

    stream = runtime.executor.chat_stream(chat_params(), ctx)
    async with aclosing(stream):
        async for event in stream:
            if event.HasField("chunk"):
                break

    assert [Outcome(a.outcome) for a in ctx.attempts] == [Outcome.OK, Outcome.CANCELLED]
    await fake.state.wait_for(lambda: stream_call(fake).client_disconnected)
    await stack.settled()
    await not_penalised(stack, fake)
    banned, skipped = await runtime.sessions.excluded("s-cancel", ["alpha"], ["alpha/model-a"])
    assert not banned and not skipped


async def test_a_deadline_before_the_first_token_penalises_no_one(
    open_stack: OpenStack, fake: FakeUpstream
) -> None:
    """The caller's deadline is shorter than the first-chunk timeout: when it passes, that is
    the caller's DEADLINE_EXCEEDED (recorded CANCELLED), not the upstream's FIRST_CHUNK_TIMEOUT:
    nothing is cooled and nothing fails over."""
    clock = ManualClock()  # the deadline passes when moved past it, once the call is stalled
    stack = await open_stack(first_chunk_s=5, clock=clock)
    fake.state.set_scenario(Scenario.stall())
    runtime = stack.router.runtime
    deadline = clock.monotonic() + 0.2
    ctx = RequestContext("chain", clock, deadline=deadline, session_id="s-deadline")

    # It fails before its first event (the route): a generator ended by its failure.
    reading = asyncio.ensure_future(anext(runtime.executor.chat_stream(chat_params(), ctx)))
    await fake.state.wait_for(lambda: fake.state.calls(path="/chat/completions") != [])
    clock.advance(0.21)
    with pytest.raises(DeadlineExceededError):
        await reading

    assert [Outcome(a.outcome) for a in ctx.attempts] == [Outcome.CANCELLED]
    assert fake.state.count(path="/chat/completions") == 1  # no failover
    await fake.state.wait_for(lambda: stream_call(fake).client_disconnected)
    await stack.settled()
    await not_penalised(stack, fake)

    # Through gRPC: the caller sees DEADLINE_EXCEEDED; still nobody pays.
    request = pb.ChatStreamRequest(params=chat_params("again"))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async for _ in stack.router.stub.ChatStream(request, timeout=0.2):
            pass
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    await fake.state.wait_for(lambda: stream_call(fake).client_disconnected)
    await stack.settled()
    await not_penalised(stack, fake)


async def test_client_disconnect_before_the_first_token_penalises_no_one(
    open_stack: OpenStack, fake: FakeUpstream
) -> None:
    stack = await open_stack()  # its windows are hang guards: only the caller leaves
    fake.state.set_scenario(Scenario.stall())

    request = asyncio.create_task(stack.wire())
    record = await fake.state.wait_for(lambda: fake.state.last(path="/chat/completions"))
    request.cancel()  # the HTTP caller gives up while the upstream is silent
    with pytest.raises(asyncio.CancelledError):
        await request

    await fake.state.wait_for(lambda: record.client_disconnected)
    await stack.settled()
    await not_penalised(stack, fake)
    assert fake.state.count(path="/chat/completions") == 1  # no failover


# ---- a slow reader slows the upstream down --------------------------------------------------


async def test_a_reader_that_stops_reading_stops_the_upstream_read(
    open_stack: OpenStack, fake: FakeUpstream
) -> None:
    """Back-pressure end to end: the caller's TCP window → uvicorn's write buffer → the edge stops
    reading its gRPC call → HTTP/2 flow control stops the router's send → the StreamGuard (one
    chunk ahead at most) stops reading the upstream → the upstream's TCP window closes. What the
    upstream gets ahead is the sum of those finite buffers (a few MB measured), whatever the
    length of the answer."""
    stack = await open_stack()
    total, piece = 10_000, "x" * 4000 + " "  # 40 MB of answer
    fake.state.set_scenario(Scenario(chunks=total, content=piece * total))
    resume = asyncio.Event()

    async with stack.http.stream("POST", "/v1/chat/completions", json=BODY) as response:
        lines, line = response.aiter_lines(), ""
        async for line in lines:
            if line.startswith("data: "):
                break
        # The first deployment answered: a failover (or an error) is named, not an IndexError.
        route = response.status_code, response.headers.get("x-switchboard-deployment")
        assert route == (200, "alpha/model-a"), (route, line[:200])
        record = stream_call(fake)
        reader = asyncio.create_task(read_after(resume, lines))
        try:
            await quiet(fake, record)
            ahead = record.chunks_sent
            assert ahead < total / 2, f"the upstream was drained: {ahead} of {total} chunks"
            resume.set()
            assert await reader >= 10  # the reader reads on once it reads again
        finally:
            reader.cancel()
    await fake.state.wait_for(lambda: record.finished)
    await stack.settled()


async def read_after(resume: asyncio.Event, lines: AsyncIterator[str]) -> int:
    await resume.wait()
    count = 0
    async for line in lines:
        count += line.startswith("data: ")
        if count == 10:
            break
    return count


async def quiet(fake: FakeUpstream, record: CallRecord, *, for_s: float = 0.3) -> None:
    """Wait until the upstream has sent nothing for `for_s` (its writes are blocked)."""
    while True:
        sent = record.chunks_sent

        def more_sent(n: int = sent) -> bool:
            return record.chunks_sent > n

        try:
            await fake.state.wait_for(more_sent, timeout=for_s)
        except TimeoutError:
            return


async def test_a_legacy_completion_caller_leaving_cancels_every_prompts_call(
    open_stack: OpenStack, fake: FakeUpstream
) -> None:
    # Several prompts are as many router calls made together: the caller going away must end
    # every upstream call, none left running (and billed) after the request.
    stack = await open_stack()  # its windows are hang guards: only the caller leaves
    fake.state.set_scenario(Scenario.stall())
    body = {"model": "chain", "prompt": [f"prompt {i}" for i in range(5)], "max_tokens": 8}
    request = asyncio.create_task(stack.http.post("/v1/completions", json=body))
    records = await fake.state.wait_for(
        lambda: calls if len(calls := fake.state.calls(path="/chat/completions")) == 5 else []
    )
    assert fake.state.in_flight == 5
    request.cancel()  # the HTTP caller gives up while every upstream is silent
    with pytest.raises(asyncio.CancelledError):
        await request

    await fake.state.wait_for(lambda: all(r.client_disconnected for r in records))
    await fake.state.wait_idle()
    await stack.settled()
    assert fake.state.count(path="/chat/completions") == 5  # none retried elsewhere
