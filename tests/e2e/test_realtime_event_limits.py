"""A caller's event over the router connection's message limit, through the edge's
`/v1/realtime` with the `openai` SDK: the router's (`server.max_message_bytes`, which an
operator may set under the 16 MiB the edge's WebSocket takes) or the edge's own client's (an
event a few bytes under 16 MiB, whose protobuf framing takes it over). The caller hears that
its event was too large, as when the upstream refuses one: an `error` event
(`event_too_large`), then close code 1009. It heard a server error instead: close 1011 after
an error event of gRPC's own words (`message_too_large`, or `server_error` "Internal error from
Core"), which an SDK takes for the server failing. The upstream never saw the event and is not
blamed: the next session opens on the same deployment."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import openai
import pytest
import websockets

from router_service.fake_upstream import FakeUpstream
from tests.conftest import StartRouter
from tests.e2e.stream_harness import StartEdge
from tests.e2e.test_realtime_sdk import ask, config

pytestmark = pytest.mark.timeout(60)

_MIB = 1024 * 1024
# `input_audio_buffer.append`'s JSON around its audio, as the SDK writes it.
_FRAMING = len('{"type": "input_audio_buffer.append", "audio": ""}')


@pytest.fixture(params=[False, True], ids=["grpc", "in-process"])
async def in_process(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


async def sdk_of(
    fake: FakeUpstream,
    start_router: StartRouter,
    start_edge: StartEdge,
    in_process: bool,
    **server: Any,
) -> AsyncIterator[openai.AsyncOpenAI]:
    sections = config(fake)
    sections["server"] = {"port": 0, **server}
    edge = await start_edge(await start_router(sections), in_process=in_process)
    async with openai.AsyncOpenAI(
        base_url=f"{edge.base_url}/v1", api_key="sk-caller", max_retries=0, timeout=30
    ) as sdk:
        yield sdk


async def refused_event(sdk: openai.AsyncOpenAI, audio_chars: int) -> tuple[Any, int]:
    """Send one audio append of `audio_chars`: the event the caller is told, the close code."""
    async with sdk.realtime.connect(model="voice") as connection:
        assert (await connection.recv()).type == "session.created"
        await connection.input_audio_buffer.append(audio="A" * audio_chars)
        told = await connection.recv()
        with pytest.raises(websockets.ConnectionClosedError) as closed:
            await connection.recv()
    assert closed.value.rcvd is not None
    return told, closed.value.rcvd.code


async def assert_told_too_large(sdk: openai.AsyncOpenAI, fake: FakeUpstream, chars: int) -> None:
    told, code = await refused_event(sdk, chars)
    assert (told.type, told.error.type) == ("error", "invalid_request_error"), told
    assert told.error.code == "event_too_large"
    assert "Core" not in told.error.message
    assert code == 1009
    async with sdk.realtime.connect(model="voice") as connection:
        assert (await ask(connection, "hello"))[-1].type == "response.done"
    calls = fake.state.calls(path="/v1/realtime")
    assert [call.model for call in calls] == ["gpt-realtime", "gpt-realtime"]  # not cooled
    assert calls[0].chunks_sent == 1  # its `session.created`: the event never reached it


async def test_an_event_over_the_routers_message_limit_is_said_too_large(
    fake: FakeUpstream, start_router: StartRouter, start_edge: StartEdge, in_process: bool
) -> None:
    async for sdk in sdk_of(fake, start_router, start_edge, in_process, max_message_bytes=5 * _MIB):
        await assert_told_too_large(sdk, fake, 6 * _MIB)


async def test_an_event_over_the_edges_message_limit_is_said_too_large(
    fake: FakeUpstream, start_router: StartRouter, start_edge: StartEdge, in_process: bool
) -> None:
    # Under the WebSocket's 16 MiB, over the edge client's 16 MiB with its protobuf framing
    # (the router's limit raised: the edge's own is the one met).
    async for sdk in sdk_of(
        fake, start_router, start_edge, in_process, max_message_bytes=32 * _MIB
    ):
        await assert_told_too_large(sdk, fake, 16 * _MIB - 2 - _FRAMING)
