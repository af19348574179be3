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


# What a call sent as the router stops may get: served (it arrived first), CANCELLED (it arrived
# once grpc's stop began, before a handler took it: grpc core's server.cc `StartNewRpc` drops it as
# a zombie), UNAVAILABLE (the GOAWAY seen, the port closed). Never its deadline.
RACING = {grpc.StatusCode.OK, grpc.StatusCode.CANCELLED, grpc.StatusCode.UNAVAILABLE}


async def test_calls_racing_the_stop_are_each_answered_at_once(
    fake: FakeUpstream, tmp_path: Path
) -> None:
    """Callers that go on calling through the SIGTERM, on the connection the draining stream
    keeps open (where a call left unanswered was once suspected), each get an answer until the
    router refuses them; none is left to its deadline (`CALL_GUARD_S`, a hang guard)."""
    fake.state.set_scenario(Scenario(chunks=30, held_after_chunks=2))
    async with router_process(_config(fake, 30), tmp_path) as router:
        call = await router.stream_open()

        async def caller() -> set[grpc.StatusCode]:
            codes: set[grpc.StatusCode] = set()
            while grpc.StatusCode.UNAVAILABLE not in codes:
                codes.add(await router.answer())
            return codes

        callers = [asyncio.ensure_future(caller()) for _ in range(3)]
        router.process.send_signal(signal.SIGTERM)
        answered = set().union(*await asyncio.gather(*callers))
        assert answered <= RACING, answered
        fake.state.release()
        assert (await read_events(call))[-1] == "summary"
        assert await router.exit_code() == 0


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
