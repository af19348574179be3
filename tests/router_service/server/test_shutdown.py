"""Stopping a router process (`switchboard router`): SIGTERM, as Kubernetes, systemd and `docker
stop` send it, stops new calls and lets open ones finish within `server.shutdown_grace_s`
(router_service/cli.py `until_terminated`, server/_server.py `RouterServer.shutdown`)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from pathlib import Path
from typing import Any

import grpc
import pytest

from router_service.fake_upstream import FakeUpstream, Scenario
from tests.conftest import base_config
from tests.helpers import eventually
from tests.router_service.server.processes import EXIT_S, read_events, router_process

pytestmark = pytest.mark.timeout(60)


def _config(fake: FakeUpstream, grace_s: float) -> dict[str, Any]:
    return base_config(fake.base_url, server={"shutdown_grace_s": grace_s})


async def test_sigterm_drains_open_streams_refuses_new_calls_and_exits_zero(
    fake: FakeUpstream, tmp_path: Path
) -> None:
    # A stream of 30 pieces, held after the first two until the test has seen the drain begin
    # (pieces 100 ms apart left ~3 s, which a loaded machine could spend before it looked).
    fake.state.set_scenario(Scenario(chunks=30, held_after_chunks=2))
    async with router_process(_config(fake, 30), tmp_path) as router:
        call = await router.stream_open()
        rest = asyncio.ensure_future(read_events(call))
        router.process.send_signal(signal.SIGTERM)

        await eventually(router.refuses_new_calls, within=10, what="new calls refused")
        router.process.send_signal(signal.SIGHUP)  # a reload asked for during the stop: ignored
        assert not rest.done(), "the open stream should still be running while the router drains"
        fake.state.release()
        events = await rest
        assert events.count("chunk") >= 29 and events[-1] == "summary"  # whole, not cut
        assert await router.exit_code() == 0
    log = router.log.read_text()
    assert "SIGTERM: shutting down" in log and "router stopped" in log
    assert "SIGHUP ignored: the router is stopping" in log
    assert "Traceback" not in log


async def test_open_calls_past_the_grace_are_cancelled_and_the_upstream_call_closed(
    fake: FakeUpstream, tmp_path: Path
) -> None:
    # The upstream sends one piece, then nothing: only the grace ends this stream.
    fake.state.set_scenario(Scenario(stall_after_chunks=2))
    async with router_process(_config(fake, 0.3), tmp_path) as router:
        call = await router.stream_open()
        router.process.send_signal(signal.SIGTERM)
        with pytest.raises(grpc.aio.AioRpcError) as ended:
            await read_events(call)
        assert ended.value.code() in (grpc.StatusCode.CANCELLED, grpc.StatusCode.UNAVAILABLE)
        assert await router.exit_code() == 0

        async def upstream_closed() -> bool:
            return fake.state.in_flight == 0

        await eventually(upstream_closed, what="the upstream request closed")
    assert "Traceback" not in router.log.read_text()


async def test_a_second_sigterm_cuts_the_drain_short(fake: FakeUpstream, tmp_path: Path) -> None:
    fake.state.set_scenario(Scenario(stall_after_chunks=2))
    async with router_process(_config(fake, 60), tmp_path) as router:
        call = await router.stream_open()
        router.process.send_signal(signal.SIGTERM)
        await eventually(router.refuses_new_calls, within=10, what="new calls refused")
        router.process.send_signal(signal.SIGTERM)  # an operator who will not wait a minute
        assert await router.exit_code() == 0
        with pytest.raises(grpc.aio.AioRpcError) as ended:
            await read_events(call)
        assert ended.value.code() in (grpc.StatusCode.CANCELLED, grpc.StatusCode.UNAVAILABLE)

        async def upstream_closed() -> bool:
            return fake.state.in_flight == 0

        await eventually(upstream_closed, what="the upstream request closed")
    log = router.log.read_text()
    assert "open calls cancelled" in log and "Traceback" not in log
    assert "router stopped" in log  # its runtime closed: the store too, the cut's last step


async def test_ctrl_c_pressed_on_and_on_still_ends_the_stop_and_exits_zero(
    fake: FakeUpstream, tmp_path: Path
) -> None:
    """Past the second, a stop signal has nothing left to cut: it neither cuts the stop's own
    cleanup (the leases of the calls it cancelled, the store's close) nor, at their default
    actions again once the loop ended, kills the process on its way out (exit status 130/143,
    its last spans lost)."""
    fake.state.set_scenario(Scenario(stall_after_chunks=2))
    async with router_process(_config(fake, 60), tmp_path) as router:
        for _ in range(3):
            await router.stream_open()
        router.process.send_signal(signal.SIGINT)
        await eventually(router.refuses_new_calls, within=10, what="new calls refused")

        async def gone() -> bool:  # an operator pressing Ctrl-C until the process is gone
            with contextlib.suppress(ProcessLookupError):  # not `send_signal`: it reaps
                os.kill(router.process.pid, signal.SIGINT)
            return router.process.returncode is not None

        await eventually(gone, within=EXIT_S, what="the process gone")
        assert router.process.returncode == 0
    log = router.log.read_text()
    assert "SIGINT again: stopping now" in log and "router stopped" in log
    assert "Traceback" not in log
