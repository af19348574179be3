"""The edge's `/v1/realtime` facing callers that do what OpenAI's server does not expect: a
binary frame (OpenAI's Realtime API is JSON text events) is answered with an `error` event and
the session goes on; a caller that vanishes while the upstream handshake is under way leaves no
traceback in the logs and nothing held (key lease, upstream socket, tasks)."""

from __future__ import annotations

import asyncio
import logging

import orjson
import pytest
from aiohttp.client_exceptions import ClientConnectionResetError
from websockets.asyncio.client import connect

from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import StartRouter
from tests.e2e.stream_harness import StartEdge
from tests.e2e.test_realtime_sdk import config
from tests.helpers import eventually

pytestmark = pytest.mark.timeout(30)

HEADERS = {"Authorization": "Bearer sk-caller"}


def errors_logged(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        f"{r.name}: {r.getMessage()} {r.exc_text or ''}"
        for r in caplog.records
        if (r.levelno >= logging.ERROR or r.exc_info) and not _late_answer_to_nobody(r)
    ]


def _late_answer_to_nobody(record: logging.LogRecord) -> bool:
    """The fake upstream's own aiohttp server failing to write its late answer to a connection
    the router closed already (it closes the socket a moment after it saw the router go): a
    log of the test's upstream, not of the router or the edge."""
    error = record.exc_info[1] if record.exc_info else None
    return record.name == "aiohttp.server" and isinstance(error, ClientConnectionResetError)


@pytest.mark.parametrize("frame", [b"\xff\xfe not utf-8", b'{"type": "response.create"}'])
async def test_a_binary_frame_is_answered_with_an_error_event_and_the_session_goes_on(
    fake: FakeUpstream,
    start_router: StartRouter,
    start_edge: StartEdge,
    caplog: pytest.LogCaptureFixture,
    frame: bytes,
) -> None:
    """It was decoded as UTF-8 (invalid bytes replaced) and relayed as a text event: an audio
    chunk sent raw became garbage at the upstream, a binary JSON event was taken as if text."""
    caplog.set_level(logging.INFO)
    router = await start_router(config(fake))
    edge = await start_edge(router)
    url = f"ws://127.0.0.1:{edge.port}/v1/realtime?model=voice"
    async with connect(url, additional_headers=HEADERS) as socket:
        assert orjson.loads(await socket.recv())["type"] == "session.created"
        await socket.send(frame)
        told = orjson.loads(await socket.recv())
        item = {
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": "hi"}],
        }
        await socket.send(orjson.dumps({"type": "conversation.item.create", "item": item}).decode())
        added = orjson.loads(await socket.recv())
    assert told["type"] == "error"
    error = told["error"]
    assert (error["type"], error["code"]) == ("invalid_request_error", "binary_frame")
    assert "text" in error["message"] and "JSON" in error["message"]
    assert added["type"] == "conversation.item.added"  # the session went on
    (call,) = await fake.state.wait_for_count(1, path="/v1/realtime")
    assert call.chunks_sent == 2  # the upstream never saw the binary frame (no answer to it)
    assert not errors_logged(caplog)

    async def released() -> bool:
        return await router.leases_held() == 0

    await eventually(released, what="the session's key lease released")


@pytest.mark.parametrize("in_process", [False, True], ids=["grpc", "in-process"])
@pytest.mark.parametrize("refused", [False, True], ids=["opened", "refused"])
async def test_a_caller_gone_during_the_upstream_handshake_leaves_nothing_behind(
    fake: FakeUpstream,
    start_router: StartRouter,
    start_edge: StartEdge,
    caplog: pytest.LogCaptureFixture,
    in_process: bool,
    refused: bool,
) -> None:
    caplog.set_level(logging.INFO)
    sections = config(fake)
    sections["auth"]["clients"][0]["max_concurrent_streams"] = 1  # its slot is counted
    router = await start_router(sections)
    edge = await start_edge(router, in_process=in_process)
    if refused:  # every upstream refuses: were the edge still there, a denial to nobody
        fake.state.set_scenario(Scenario.server_error())
    url = f"ws://127.0.0.1:{edge.port}/v1/realtime?model=voice"
    fake.state.hold()  # the upstream handshake waits until released
    opening = asyncio.create_task(_open_then_vanish(url))
    await fake.state.wait_for(lambda: fake.state.held == 1, what="the upstream handshake held")
    assert await router.runtime.store.held(["client:caller:streams"]) == [1]  # the session's
    opening.cancel()  # the caller's TCP connection closes mid-handshake
    await asyncio.wait((opening,))

    async def given_up() -> bool:  # while the upstream still holds the handshake
        slots = await router.runtime.store.held(["client:caller:streams"])
        return await router.leases_held() == 0 and slots == [0] and not _realtime_tasks()

    await eventually(given_up, what="the session given up, its key lease and stream slot freed")
    fake.state.release()  # the upstream's late answer finds nobody waiting: nothing logged

    async def ended() -> bool:
        records = fake.state.calls(path="/v1/realtime")
        return all(r.finished for r in records) and await router.leases_held() == 0

    await eventually(ended, what="the upstream handshake ended")
    assert not _realtime_tasks()
    assert not errors_logged(caplog)


def _realtime_tasks() -> list[str]:
    return [t.get_name() for t in asyncio.all_tasks() if "realtime" in t.get_name()]


async def _open_then_vanish(url: str) -> None:
    async with connect(url, additional_headers=HEADERS, open_timeout=None):
        raise AssertionError("the handshake is held: it cannot have ended")
