"""A router in a process of its own (`python -m router_service router`), for what only a real
process shows: signals, exit status, the log it writes."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias

import grpc
import yaml

from clients.switchboard.v1 import chat_pb2, router_service_pb2_grpc
from clients.switchboard.v1 import router_service_pb2 as pb
from tests.helpers import free_port

STARTUP_S = 30.0
# Time the process gets to exit once nothing holds it: far above what it needs, a bound on a hang.
EXIT_S = 15.0
# A call's deadline: answered in milliseconds, also as the router stops; a bound on a hang.
CALL_GUARD_S = 10.0

StreamCall: TypeAlias = "grpc.aio.UnaryStreamCall[pb.ChatStreamRequest, pb.ChatStreamResponse]"


@dataclass
class RouterProcess:
    process: asyncio.subprocess.Process
    stub: router_service_pb2_grpc.RouterServiceStub
    config_path: Path
    log: Path
    server: dict[str, Any]  # the config's `server` section, with the port it listens on

    def write_config(self, config: dict[str, Any]) -> None:
        """Replace the config file (keeping the address the process listens on)."""
        config = {**config, "server": {**config.get("server", {}), **self.server}}
        self.replace_file(yaml.safe_dump(config))

    def replace_file(self, text: str) -> None:
        """Replace the config file at once (by rename, as editors and Kubernetes do): a router
        that polls it never reads half of it."""
        staged = self.config_path.with_suffix(".staged")
        staged.write_text(text)
        os.replace(staged, self.config_path)

    async def exit_code(self) -> int:
        return await asyncio.wait_for(self.process.wait(), EXIT_S)

    async def stream_open(self, model: str = "chain") -> StreamCall:
        """A stream, read until its first chunk: the upstream call is then under way."""
        call = self.stub.ChatStream(pb.ChatStreamRequest(params=params(model)))
        async for message in call:
            if message.WhichOneof("event") == "chunk":
                return call
        raise AssertionError("the stream ended before its first chunk")

    async def models(self) -> set[str]:
        listed = await self.stub.ListModels(pb.ListModelsRequest(), timeout=5)
        return {model.id for model in listed.models}

    async def answer(self) -> grpc.StatusCode:
        """The status a new call gets (OK when served). Any call gets one promptly, also one
        racing the router's stop; the timeout is a hang guard, not a measure."""
        try:
            await self.stub.ListModels(pb.ListModelsRequest(), timeout=CALL_GUARD_S)
        except grpc.aio.AioRpcError as exc:
            code: grpc.StatusCode = exc.code()
            return code
        return grpc.StatusCode.OK

    async def refuses_new_calls(self) -> bool:
        """Whether a new call is refused (UNAVAILABLE). One that reached the router as it began
        to stop may still be served, or cancelled (grpc's shutdown drops the calls it had not
        yet handed to a handler): HTTP/2's GOAWAY races the calls in flight to the server. None
        is left unanswered (test_shutdown.py, calls racing the stop)."""
        code = await self.answer()
        if code not in (grpc.StatusCode.OK, grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED):
            raise AssertionError(f"a call as the router stops: {code.name}")
        return code is grpc.StatusCode.UNAVAILABLE


async def serving(
    process: asyncio.subprocess.Process, channel: grpc.aio.Channel, log: Path
) -> None:
    """Until the process serves on `channel`; an AssertionError with its log if it exits first."""
    ready = asyncio.ensure_future(channel.channel_ready())
    exited = asyncio.ensure_future(process.wait())
    try:
        await asyncio.wait((ready, exited), timeout=STARTUP_S, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiting in (ready, exited):
            waiting.cancel()
    if not ready.done() or ready.cancelled():
        written = log.read_text()  # noqa: ASYNC240  # the process is gone: nothing to wait for
        raise AssertionError(f"the router did not serve (exit {process.returncode}):\n{written}")


PORT_TRIES = 3


def _port_taken(process: asyncio.subprocess.Process, log: Path) -> bool:
    """Whether the router exited refusing the port `free_port` chose (taken since)."""
    refused = b"cannot listen on 127.0.0.1:"  # its port check, or grpc's bind after it
    return process.returncode == 2 and refused in log.read_bytes()


def params(model: str = "chain") -> chat_pb2.ChatParams:
    return chat_pb2.ChatParams(
        model=model, messages=[chat_pb2.ChatMessage(role=chat_pb2.ROLE_USER, text="hi")]
    )


async def read_events(call: StreamCall) -> list[str]:
    """The kinds of the stream's remaining messages, in order."""
    return [message.WhichOneof("event") or "" async for message in call]


@contextlib.asynccontextmanager
async def router_process(
    config: dict[str, Any],
    tmp_path: Path,
    *,
    on_spawn: Callable[[asyncio.subprocess.Process], None] | None = None,
    args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
) -> AsyncIterator[RouterProcess]:
    """A router process serving `config` (its `server` section gets a free loopback port), with
    a real channel to it; killed at the end if it is still running. `on_spawn` is given the
    process as soon as it exists, before it serves. `args`: more command-line options; `env`:
    more environment variables."""
    config_path = tmp_path / "router.yaml"
    log = tmp_path / "router.log"
    for tries_left in reversed(range(PORT_TRIES)):
        port = free_port()
        server = {**config.get("server", {}), "host": "127.0.0.1", "port": port}
        config = {**config, "server": server}
        config_path.write_text(yaml.safe_dump(config))
        with log.open("wb") as out:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "router_service", "router", "-c", str(config_path), *args,
                stdout=out, stderr=out, env={**os.environ, **(env or {})},
            )  # fmt: skip
        if on_spawn is not None:
            on_spawn(process)
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
        try:
            await serving(process, channel, log)
            break
        except AssertionError:
            await channel.close()
            if process.returncode is None:  # it never served in time
                process.kill()
                await process.wait()
            # `free_port` closed its probe before the router bound: another socket (a parallel
            # worker's connection) may have taken the port between. Only that is tried again.
            if not tries_left or not _port_taken(process, log):
                raise
    try:
        stub = router_service_pb2_grpc.RouterServiceStub(channel)
        yield RouterProcess(process, stub, config_path, log, config["server"])
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        await channel.close()
