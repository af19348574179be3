"""Stopping a router process (`switchboard router`): SIGTERM, as Kubernetes, systemd and `docker
stop` send it, stops new calls and lets open ones finish within `server.shutdown_grace_s`
(router_service/cli.py `until_terminated`, server/_server.py `RouterServer.shutdown`)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
import yaml

from clients.switchboard.v1 import chat_pb2, router_service_pb2_grpc
from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import base_config
from tests.helpers import eventually, free_port

pytestmark = pytest.mark.timeout(60)

STARTUP_S = 30.0
# Time the process gets to exit once nothing holds it: far above what it needs, a bound on a hang.
EXIT_S = 15.0


@dataclass
class RouterProcess:
    process: asyncio.subprocess.Process
    stub: router_service_pb2_grpc.RouterServiceStub
    log: Path

    async def exit_code(self) -> int:
        return await asyncio.wait_for(self.process.wait(), EXIT_S)

    async def stream_open(
        self,
    ) -> grpc.aio.UnaryStreamCall[pb.ChatStreamRequest, pb.ChatStreamResponse]:
        """A stream, read until its first chunk: the upstream call is then under way."""
        call = self.stub.ChatStream(_stream_request())
        async for message in call:
            if message.WhichOneof("event") == "chunk":
                return call
        raise AssertionError("the stream ended before its first chunk")

    async def refuses_new_calls(self) -> bool:
        """Whether a new call is refused (UNAVAILABLE). One that reached the router as it began
        to stop may still be served, or cancelled (grpc's shutdown drops the calls it had not
        yet handed to a handler): HTTP/2's GOAWAY races the calls in flight to the server."""
        try:
            await self.stub.ListModels(pb.ListModelsRequest(), timeout=5)
        except grpc.aio.AioRpcError as exc:
            code: grpc.StatusCode = exc.code()
            if code not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED):
                raise
            return code is grpc.StatusCode.UNAVAILABLE
        return False


def _params() -> chat_pb2.ChatParams:
    return chat_pb2.ChatParams(
        model="chain", messages=[chat_pb2.ChatMessage(role=chat_pb2.ROLE_USER, text="hi")]
    )


def _stream_request() -> pb.ChatStreamRequest:
    return pb.ChatStreamRequest(params=_params())


@contextlib.asynccontextmanager
async def router_process(
    fake: FakeUpstream, tmp_path: Path, grace_s: float
) -> AsyncIterator[RouterProcess]:
    """`python -m router_service router` in front of the fake upstream, with a real channel."""
    port = free_port()
    server = {"host": "127.0.0.1", "port": port, "shutdown_grace_s": grace_s}
    (tmp_path / "router.yaml").write_text(yaml.safe_dump(base_config(fake.base_url, server=server)))
    log = tmp_path / "router.log"
    with log.open("wb") as out:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "router_service", "router", "-c", str(tmp_path / "router.yaml"),
            stdout=out, stderr=out,
        )  # fmt: skip
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        await asyncio.wait_for(channel.channel_ready(), STARTUP_S)
        yield RouterProcess(process, router_service_pb2_grpc.RouterServiceStub(channel), log)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        await channel.close()


async def _read_rest(
    call: grpc.aio.UnaryStreamCall[pb.ChatStreamRequest, pb.ChatStreamResponse],
) -> list[str]:
    return [message.WhichOneof("event") or "" async for message in call]


async def test_sigterm_drains_open_streams_refuses_new_calls_and_exits_zero(
    fake: FakeUpstream, tmp_path: Path
) -> None:
    # A stream of 30 pieces, 100 ms apart: ~3 s still to go when SIGTERM arrives.
    fake.state.set_scenario(Scenario(chunks=30, chunk_interval_ms=100))
    async with router_process(fake, tmp_path, grace_s=30) as router:
        call = await router.stream_open()
        rest = asyncio.ensure_future(_read_rest(call))
        router.process.send_signal(signal.SIGTERM)

        await eventually(router.refuses_new_calls, within=10, what="new calls refused")
        assert not rest.done(), "the open stream should still be running while the router drains"
        events = await rest
        assert events.count("chunk") >= 29 and events[-1] == "summary"  # whole, not cut
        assert await router.exit_code() == 0
    log = router.log.read_text()
    assert "SIGTERM: shutting down" in log and "router stopped" in log
    assert "Traceback" not in log


async def test_open_calls_past_the_grace_are_cancelled_and_the_upstream_call_closed(
    fake: FakeUpstream, tmp_path: Path
) -> None:
    # The upstream sends one piece, then nothing: only the grace ends this stream.
    fake.state.set_scenario(Scenario(stall_after_chunks=2))
    async with router_process(fake, tmp_path, grace_s=0.3) as router:
        call = await router.stream_open()
        router.process.send_signal(signal.SIGTERM)
        with pytest.raises(grpc.aio.AioRpcError) as ended:
            await _read_rest(call)
        assert ended.value.code() in (grpc.StatusCode.CANCELLED, grpc.StatusCode.UNAVAILABLE)
        assert await router.exit_code() == 0

        async def upstream_closed() -> bool:
            return fake.state.in_flight == 0

        await eventually(upstream_closed, what="the upstream request closed")
    assert "Traceback" not in router.log.read_text()


async def test_a_second_sigterm_cuts_the_drain_short(fake: FakeUpstream, tmp_path: Path) -> None:
    fake.state.set_scenario(Scenario(stall_after_chunks=2))
    async with router_process(fake, tmp_path, grace_s=60) as router:
        call = await router.stream_open()
        router.process.send_signal(signal.SIGTERM)
        await eventually(router.refuses_new_calls, within=10, what="new calls refused")
        router.process.send_signal(signal.SIGTERM)  # an operator who will not wait a minute
        assert await router.exit_code() == 0
        with pytest.raises(grpc.aio.AioRpcError) as ended:
            await _read_rest(call)
        assert ended.value.code() in (grpc.StatusCode.CANCELLED, grpc.StatusCode.UNAVAILABLE)

        async def upstream_closed() -> bool:
            return fake.state.in_flight == 0

        await eventually(upstream_closed, what="the upstream request closed")
    log = router.log.read_text()
    assert "open calls cancelled" in log and "Traceback" not in log
