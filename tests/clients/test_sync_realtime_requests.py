"""What a Realtime session's caller sends, and what it is told when that fails. The blocking
client's session takes its messages from the caller's iterable, which grpc reads in a thread of
its own: what fails there is the caller's to see, as the async session's `send` shows it.
Against a real router and the fake upstream's realtime socket.

grpc caught it: the caller's own exception (a microphone's source failing) became a
RouterError UNKNOWN "Exception iterating requests!" (HTTP 500, as if the router broke), a
message that was no RealtimeRequest an INTERNAL "Exception serializing request!", and a list
of messages (no iterator: grpc calls `next` on it) failed the session before it began."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterable, Iterator
from typing import Any

import pytest

from clients import RouterClient, SyncRouterClient
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.fake_upstream import FakeUpstream
from tests.conftest import RouterHandle, StartRouter
from tests.helpers import eventually
from tests.router_service.server.test_realtime_rpc import event, realtime_config

pytestmark = pytest.mark.timeout(30)

OPEN = pb.RealtimeRequest(open=pb.RealtimeOpen(model="voice"))


@pytest.fixture
async def rt_router(fake: FakeUpstream, start_router: StartRouter) -> RouterHandle:
    return await start_router(realtime_config(fake))


def _session(
    target: str, requests: Iterable[Any], read: threading.Event | None = None
) -> tuple[list[str], BaseException | None]:
    """The kinds of the messages read (`read` set at the first), and what the reading raised
    (None: the session ended)."""
    kinds: list[str] = []
    with SyncRouterClient(target) as client:
        try:
            for message in client.realtime(requests, timeout=10):
                kinds.append(str(message.WhichOneof("message")))
                if read is not None:
                    read.set()
        except Exception as exc:
            return kinds, exc
    return kinds, None


async def test_the_callers_exception_in_its_requests_is_raised_to_it(
    rt_router: RouterHandle,
) -> None:
    unplugged = OSError("the microphone was unplugged")
    read = threading.Event()

    def requests() -> Iterator[pb.RealtimeRequest]:
        yield OPEN
        read.wait(10)  # the route came back: the session is under way upstream
        raise unplugged

    target = rt_router.server.address
    kinds, raised = await asyncio.to_thread(_session, target, requests(), read)
    assert raised is unplugged
    assert kinds[0] == "route"

    async def given_back() -> bool:
        return await rt_router.leases_held() == 0

    await eventually(given_back, what="the session's lease given back")


async def test_the_callers_failure_is_not_logged_by_grpc_as_well(
    rt_router: RouterHandle, caplog: pytest.LogCaptureFixture
) -> None:
    """grpc's request thread logged the caller's exception itself ("Exception iterating
    requests!" and its traceback, in the caller's logs) besides the typed error it is raised
    as: one failure, said once, by the reading. A message that is no RealtimeRequest too."""
    unplugged = OSError("the microphone was unplugged")
    read = threading.Event()

    def requests() -> Iterator[Any]:
        yield OPEN
        read.wait(10)
        raise unplugged

    def wrong() -> Iterator[Any]:
        yield OPEN
        read.wait(10)
        yield {"type": "response.create"}

    caplog.set_level(logging.DEBUG)
    target = rt_router.server.address
    for made in (requests, wrong):
        read.clear()
        _, raised = await asyncio.to_thread(_session, target, made(), read)
        assert isinstance(raised, OSError | TypeError)
    grpc_records = [r for r in caplog.records if r.name.startswith("grpc")]
    assert [r.getMessage() for r in grpc_records if r.levelno >= logging.WARNING] == []
    assert not any(r.exc_info for r in caplog.records)


async def test_a_message_that_is_no_realtime_request_is_a_type_error(
    rt_router: RouterHandle,
) -> None:
    def requests() -> Iterator[Any]:
        yield OPEN
        yield {"type": "response.create"}

    _, raised = await asyncio.to_thread(_session, rt_router.server.address, requests())
    assert isinstance(raised, TypeError)
    assert str(raised) == (
        "Realtime sends a clients.switchboard.v1.router_service_pb2.RealtimeRequest, not dict"
    )


async def test_a_list_of_messages_is_sent_as_they_come(rt_router: RouterHandle) -> None:
    requests = [OPEN, event("response.create"), pb.RealtimeRequest(close=pb.RealtimeClose())]
    kinds, raised = await asyncio.to_thread(_session, rt_router.server.address, requests)
    assert raised is None
    assert (kinds[0], kinds[-1]) == ("route", "close")


async def test_a_send_after_done_writing_says_so_and_the_session_goes_on(
    rt_router: RouterHandle,
) -> None:
    """The async session's `send` after its own `done_writing`: grpc's half-closed refusal was
    said as "The call has ended: nothing more can be sent on it" (a RouterError CANCELLED,
    HTTP 499), while the session was still under way and its answers still came."""
    async with RouterClient(rt_router.server.address) as client:
        async with client.realtime(timeout=10) as session:
            await session.send(OPEN)
            assert (await anext(session)).WhichOneof("message") == "route"
            await session.done_writing()
            with pytest.raises(RuntimeError, match=r"^done_writing\(\) was called"):
                await session.send(event("response.create"))
            rest = [message.WhichOneof("message") async for message in session]
    assert rest[-1] == "close"  # the router ends the session the caller finished writing
