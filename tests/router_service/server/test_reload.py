"""Reloading the config without a restart (server/_server.py `RouterServer.reload`,
server/_reload.py, `Runtime.successor`): new calls see the new file, calls under way end as they
began, what the state store knows survives, and a file that does not load changes nothing."""

from __future__ import annotations

import asyncio
import copy
import hashlib
import signal
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml
from grpc_health.v1 import health_pb2, health_pb2_grpc

from clients.switchboard.v1 import admin_service_pb2 as admin_pb
from clients.switchboard.v1 import router_service_pb2 as pb
from clients.switchboard.v1 import routing_pb2
from router_service.config import SwitchboardConfig
from router_service.fake_upstream import FakeUpstream, Scenario
from router_service.keys import fingerprint
from router_service.server import reload_from
from router_service.server._reload import changes, restart_only
from router_service.telemetry.testing import TelemetryCapture
from tests.conftest import RouterHandle, StartRouter, base_config
from tests.helpers import eventually
from tests.router_service.auth.helpers import bearer, client, guarded_config
from tests.router_service.server.processes import params, read_events, router_process
from tests.router_service.server.test_routing import AS_SERVICE, with_route_client

pytestmark = pytest.mark.timeout(60)


def _validated(config: dict[str, Any]) -> SwitchboardConfig:
    return SwitchboardConfig.model_validate({"auth": {"open": True}, **config})


def _solo_config(fake_url: str) -> dict[str, Any]:
    """`chain` gone, a `solo` model on beta instead; alpha with one new key."""
    config = base_config(fake_url)
    config["providers"]["alpha"]["keys"] = ["sk-alpha-new"]
    config["models"] = {"solo": {"deployments": [{"provider": "beta", "model": "model-b"}]}}
    return config


async def _models(router: RouterHandle) -> set[str]:
    listed = await router.stub.ListModels(pb.ListModelsRequest())
    return {model.id for model in listed.models}


async def test_new_calls_see_the_reloaded_models_and_keys(
    fake: FakeUpstream, router: RouterHandle
) -> None:
    assert "chain" in await _models(router)
    pending = await router.server.reload(_validated(_solo_config(fake.base_url)))

    assert pending == []
    models = await _models(router)
    assert "solo" in models and "chain" not in models
    answer = await router.stub.Chat(pb.ChatRequest(params=params("solo")))
    assert answer.route.deployment == "beta/model-b"
    with pytest.raises(grpc.aio.AioRpcError) as gone:
        await router.stub.Chat(pb.ChatRequest(params=params("chain")))
    assert gone.value.code() == grpc.StatusCode.NOT_FOUND
    keys = await router.admin.ListKeys(admin_pb.ListKeysRequest())
    alpha = [key.fingerprint for key in keys.keys if key.provider == "alpha"]
    assert alpha == [fingerprint("sk-alpha-new")]


async def test_a_stream_under_way_ends_on_the_config_it_began_with(
    fake: FakeUpstream, router: RouterHandle
) -> None:
    # Held mid-stream across the reload (20 pieces 20 ms apart could all be sent before it
    # on a loaded machine, the slot given back before it is counted).
    fake.state.set_scenario(Scenario(chunks=20, held_after_chunks=2))
    old_alpha = router.runtime.pools["alpha"]
    call = router.stub.ChatStream(pb.ChatStreamRequest(params=params("chain")))
    first = await anext(aiter(call))
    assert first.WhichOneof("event") == "route"
    assert sum(key.in_flight for key in await old_alpha.snapshot()) == 1

    await router.server.reload(_validated(_solo_config(fake.base_url)))  # `chain` is gone now
    fake.state.release()
    events = await read_events(call)
    assert events.count("chunk") == 22 and events[-1] == "summary"  # role, 20 pieces, finish

    async def slot_back() -> bool:  # through the pool it was leased from, after the summary
        return sum(key.in_flight for key in await old_alpha.snapshot()) == 0

    await eventually(slot_back, what="the key's slot back in the store")


async def test_what_the_store_knows_survives_a_reload(
    fake: FakeUpstream, router: RouterHandle
) -> None:
    await router.admin.SetKeyEnabled(
        admin_pb.SetKeyEnabledRequest(
            provider="alpha", fingerprint=fingerprint("sk-alpha-1"), enabled=False
        )
    )
    await router.server.reload(_validated(base_config(fake.base_url, streams={"heartbeat_s": 9})))

    keys = await router.admin.ListKeys(admin_pb.ListKeysRequest())
    states = {key.fingerprint: key.state for key in keys.keys}
    assert states[fingerprint("sk-alpha-1")] == admin_pb.KEY_STATE_DISABLED
    for _ in range(4):  # every call goes to the key still enabled
        await router.stub.Chat(pb.ChatRequest(params=params("chain")))
    assert {record.key for record in fake.state.records} == {"sk-alpha-2"}


async def _auth_mode(router: RouterHandle) -> str:
    call = health_pb2_grpc.HealthStub(router.channel).Check(health_pb2.HealthCheckRequest())
    await call
    mode: str = dict(await call.trailing_metadata())["switchboard-auth"]
    return mode


async def test_callers_change_with_a_reload_and_opening_the_door_is_loud(
    fake: FakeUpstream, start_router: StartRouter, caplog: pytest.LogCaptureFixture
) -> None:
    router = await start_router(guarded_config(fake.base_url, client("alice", "sk-alice-key")))
    await router.stub.Chat(pb.ChatRequest(params=params()), metadata=bearer("sk-alice-key"))

    reloaded = guarded_config(fake.base_url, client("bob", "sk-bob-key"))
    await router.server.reload(SwitchboardConfig.model_validate(reloaded))

    await router.stub.Chat(pb.ChatRequest(params=params()), metadata=bearer("sk-bob-key"))
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await router.stub.Chat(pb.ChatRequest(params=params()), metadata=bearer("sk-alice-key"))
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert await _auth_mode(router) == "keys"

    await router.server.reload(_validated(base_config(fake.base_url, auth={"open": True})))
    assert await _auth_mode(router) == "open"  # what the edge's /readyz shows
    assert "AUTHENTICATION IS OFF" in caplog.text
    await router.stub.Chat(pb.ChatRequest(params=params()))  # anyone, now


async def test_a_route_picked_before_a_reload_is_reported_after_it(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    config = with_route_client(base_config(fake.base_url))
    router = await start_router(config)
    picked = await router.stub.PickRoute(pb.PickRouteRequest(model="chain"), metadata=AS_SERVICE)
    assert await router.leases_held() == 1

    for _ in range(2):  # two reloads before the caller reports
        await router.server.reload(SwitchboardConfig.model_validate(copy.deepcopy(config)))
    report = await router.stub.ReportOutcome(
        pb.ReportOutcomeRequest(lease_id=picked.lease_id, outcome=routing_pb2.OUTCOME_OK),
        metadata=AS_SERVICE,
    )
    assert report.accepted
    assert await router.leases_held() == 0


def test_settings_of_the_process_wait_for_a_restart_and_changes_name_keys_by_fingerprint() -> None:
    old = _validated(base_config("http://127.0.0.1:1/v1"))
    moved = base_config("http://127.0.0.1:1/v1", server={"port": 50999, "lease_ttl_s": 60})
    moved["http"] = {"max_connections": 10}
    moved["providers"]["alpha"]["keys"] = ["sk-alpha-1", "sk-alpha-3"]
    new = _validated(moved)

    assert restart_only(old, new) == ["server.port", "http"]  # lease_ttl_s applies at once
    summary = changes(old, new)
    assert "keys 3 (+1 -1)" in summary and "providers 2 (+0 -0)" in summary
    assert "sk-alpha" not in summary


def test_a_changed_edge_section_is_said_to_wait_for_a_restart() -> None:
    """The edge reads `edge:` at its start only (`switchboard serve`'s in-process edge too): a
    reload that rotates `edge.admin_token` must not read as if the old token no longer worked."""
    old = _validated({**base_config("http://127.0.0.1:1/v1"), "edge": {"admin_token": "t-old"}})
    rotated = {**base_config("http://127.0.0.1:1/v1"), "edge": {"admin_token": "t-new"}}
    assert restart_only(old, _validated(rotated)) == ["edge"]
    assert restart_only(old, old) == []


async def test_sighup_reloads_the_file_and_a_broken_file_changes_nothing(
    fake: FakeUpstream, tmp_path: Path
) -> None:
    config = base_config(fake.base_url)
    async with router_process(config, tmp_path) as router:
        assert "chain" in await router.models()
        router.write_config(_solo_config(fake.base_url))
        router.process.send_signal(signal.SIGHUP)

        async def solo_served() -> bool:
            return "solo" in await router.models()

        await eventually(solo_served, within=10, what="the reloaded model is served")
        assert "chain" not in await router.models()

        router.replace_file("providers: {alpha: {base_url: 42}}\n")  # invalid
        router.process.send_signal(signal.SIGHUP)

        async def failure_logged() -> bool:
            return "failed, still serving the previous config" in router.log.read_text()

        await eventually(failure_logged, within=10, what="the failed reload logged")
        assert "solo" in await router.models()  # still the last good config
        answer = await router.stub.Chat(pb.ChatRequest(params=params("solo")), timeout=10)
        assert answer.route.deployment == "beta/model-b"

        router.process.send_signal(signal.SIGTERM)
        assert await router.exit_code() == 0
    log = router.log.read_text()
    assert "config reloaded from" in log and "models 1 (+1 -2)" in log
    assert "sk-alpha-new" not in log and "Traceback" not in log


async def test_reloads_are_counted_by_outcome_and_a_missing_file_changes_nothing(
    fake: FakeUpstream, router: RouterHandle, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    good = tmp_path / "router.yaml"
    good.write_text(yaml.safe_dump(_solo_config(fake.base_url)))
    with TelemetryCapture() as capture:
        assert not await reload_from(router.server, tmp_path / "nowhere.yaml")
        assert "chain" in await _models(router)  # still the config it started with
        assert await reload_from(router.server, good)
        counted = {
            labels["outcome"]: point.value
            for labels, point in capture.points("switchboard.config.reloads")
        }
        served = [labels for labels, _ in capture.points("switchboard.config.info")]
    assert counted == {"failed": 1, "ok": 1}
    digest = hashlib.sha256(good.read_bytes()).hexdigest()[:12]
    assert served == [{"switchboard.config.digest": digest}]
    assert "still serving the previous config" in caplog.text
    assert "solo" in await _models(router)


async def test_a_reload_while_the_router_stops_logs_one_line_not_a_traceback(
    fake: FakeUpstream, router: RouterHandle, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A SIGHUP or a changed file during a stop (a rolling deploy) changes nothing, and says so
    in one line: logged as a failure, it came with a RuntimeError's traceback."""
    good = tmp_path / "router.yaml"
    good.write_text(yaml.safe_dump(_solo_config(fake.base_url)))
    await router.server.shutdown(grace=0)
    caplog.clear()
    with TelemetryCapture() as capture:
        assert not await reload_from(router.server, good)
        counted = [point.value for _, point in capture.points("switchboard.config.reloads")]

    assert counted == []  # nothing failed: not counted against the config
    (record,) = [r for r in caplog.records if r.name == "switchboard.router"]
    assert record.getMessage() == f"config reload from {good} skipped: the router is stopping"
    assert record.levelname == "WARNING" and record.exc_info is None


async def test_a_changed_file_is_reloaded_without_a_signal_when_polled(
    fake: FakeUpstream, tmp_path: Path
) -> None:
    config = base_config(fake.base_url, server={"reload_poll_s": 0.05})
    async with router_process(config, tmp_path) as router:
        router.replace_file("providers: {alpha: {base_url: 42}}\n")  # a bad edit

        async def failure_logged() -> bool:
            return "failed, still serving the previous config" in router.log.read_text()

        await eventually(failure_logged, within=10, what="the bad edit refused")
        router.write_config(_solo_config(fake.base_url))  # and its fix

        async def solo_served() -> bool:
            # The log line follows the swap (the old runtime's background work stops first):
            # stopping the router before it is written would cut the reload short.
            logged = "config reloaded from" in router.log.read_text()
            return logged and "solo" in await router.models()

        await eventually(solo_served, within=10, what="the fixed file served")
        router.process.send_signal(signal.SIGTERM)
        assert await router.exit_code() == 0
    log = router.log.read_text()
    # The bad file was tried once, not at every poll, and the fixed one once.
    assert log.count("failed, still serving the previous config") == 1
    assert log.count("config reloaded from") == 1


# How long the silent Redis holds the router's start (its ping's socket timeout): the test acts
# within it (a file write, a signal: milliseconds once pinged). The router waits it out on the
# wall clock (a 2 s hold made each test ~6 s, this one ~3 s).
HOLD_S = 1.0


async def test_a_sighup_while_the_router_starts_is_applied_once_it_serves(
    fake: FakeUpstream, tmp_path: Path
) -> None:
    """Its default action would kill the process. The start is held where it is known to be
    under way: the router's first Redis ping, to a server that accepts and never answers."""
    router: list[asyncio.subprocess.Process] = []
    pinged = asyncio.Event()

    async def never_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        pinged.set()
        await reader.read()  # until the router gives up on it and closes
        writer.close()

    silent = await asyncio.start_server(never_answer, "127.0.0.1", 0)
    port = silent.sockets[0].getsockname()[1]
    state = {"backend": "redis", "url": f"redis://127.0.0.1:{port}/0", "socket_timeout_s": HOLD_S}
    config = base_config(fake.base_url, state=state)

    async def hang_up_while_starting() -> None:
        await pinged.wait()
        config_path = tmp_path / "router.yaml"  # as router_process wrote it
        solo = {**_solo_config(fake.base_url), "state": state}
        solo["server"] = yaml.safe_load(config_path.read_text())["server"]
        config_path.write_text(yaml.safe_dump(solo))
        router[0].send_signal(signal.SIGHUP)

    hanging_up = asyncio.create_task(hang_up_while_starting())
    try:
        async with router_process(config, tmp_path, on_spawn=router.append) as started:
            await hanging_up

            async def solo_served() -> bool:
                return "solo" in await started.models()

            await eventually(solo_served, within=10, what="the file reloaded after the start")
            started.process.send_signal(signal.SIGTERM)
            assert await started.exit_code() == 0
    finally:
        hanging_up.cancel()
        silent.close()
    assert "SIGHUP arrived while the router started" in started.log.read_text()


async def test_a_file_changed_while_the_router_starts_is_polled_as_a_change(
    fake: FakeUpstream, tmp_path: Path
) -> None:
    """A ConfigMap updated while the router starts (no signal): the file it read is what it
    serves, so the change is reloaded once it watches; taken as served, it never was. The start
    is held at the router's first Redis ping, as above."""
    pinged = asyncio.Event()

    async def never_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        pinged.set()
        await reader.read()
        writer.close()

    silent = await asyncio.start_server(never_answer, "127.0.0.1", 0)
    port = silent.sockets[0].getsockname()[1]
    state = {"backend": "redis", "url": f"redis://127.0.0.1:{port}/0", "socket_timeout_s": HOLD_S}
    config = base_config(fake.base_url, state=state, server={"reload_poll_s": 0.05})

    async def change_while_starting() -> None:
        await pinged.wait()
        config_path = tmp_path / "router.yaml"  # as router_process wrote it
        solo = {**_solo_config(fake.base_url), "state": state}
        solo["server"] = yaml.safe_load(config_path.read_text())["server"]
        config_path.write_text(yaml.safe_dump(solo))

    changing = asyncio.create_task(change_while_starting())
    try:
        async with router_process(config, tmp_path) as started:
            await changing

            async def solo_served() -> bool:
                return "solo" in await started.models()

            await eventually(solo_served, within=10, what="the file changed at the start served")
            started.process.send_signal(signal.SIGTERM)
            assert await started.exit_code() == 0
    finally:
        changing.cancel()
        silent.close()


async def test_a_file_changed_while_a_reload_runs_is_not_reported_as_served(
    fake: FakeUpstream, router: RouterHandle, tmp_path: Path
) -> None:
    """`admin info`'s config digest names the content the reload read, not the file's content
    once it ended (a SIGHUP-only router would report it for good). Held at the reload lock."""
    path = tmp_path / "router.yaml"
    path.write_text(yaml.safe_dump(_solo_config(fake.base_url)))
    read = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    async with router.server._reloading:
        reloading = asyncio.create_task(reload_from(router.server, path))
        await asyncio.sleep(0)  # one step: it has read the file, and waits for the lock
        path.write_text(yaml.safe_dump(base_config(fake.base_url)))
    assert await reloading

    info = await router.admin.GetServerInfo(admin_pb.GetServerInfoRequest())
    assert "solo" in await _models(router)
    assert info.config_digest == read
