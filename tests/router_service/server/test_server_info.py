"""AdminService.GetServerInfo (server/_server_info.py): which replica answered and what it runs —
version, address, the config in force and whether its last reload took, the state backend and
whether it is reachable."""

from __future__ import annotations

import hashlib
import os
import socket
from importlib import metadata
from pathlib import Path

import pytest
import yaml

from clients.switchboard.v1 import admin_service_pb2 as admin_pb
from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream
from router_service.server import reload_from, reloading
from tests.conftest import RouterHandle, StartRouter, base_config

pytestmark = pytest.mark.timeout(60)


async def info(router: RouterHandle) -> admin_pb.GetServerInfoResponse:
    answer: admin_pb.GetServerInfoResponse = await router.admin.GetServerInfo(
        admin_pb.GetServerInfoRequest(), timeout=10
    )
    return answer


async def test_the_replica_says_who_it_is(fake: FakeUpstream, start_router: StartRouter) -> None:
    clock = ManualClock(start=1_800_000_000.0)
    router = await start_router(base_config(fake.base_url), clock=clock)
    clock.advance(5)

    answer = await info(router)

    assert answer.version == metadata.version("switchboard")
    assert answer.replica == f"{socket.gethostname()}:{os.getpid()}"
    assert answer.address == router.server.address
    assert answer.started_unix == 1_800_000_000.0 == answer.config_loaded_unix
    assert (answer.state_backend, answer.state_degraded) == ("memory", False)
    assert answer.certificate_expires_unix == 0  # no TLS
    assert answer.auth_open  # the test routers run open
    assert answer.config_digest == "" and answer.reload_error == ""  # started without a file


async def test_reloads_show_which_config_is_in_force_and_why_one_did_not_take(
    fake: FakeUpstream, start_router: StartRouter, tmp_path: Path
) -> None:
    clock = ManualClock(start=1_800_000_000.0)
    config = {"auth": {"open": True}, **base_config(fake.base_url)}
    router = await start_router(config, clock=clock)
    path = tmp_path / "router.yaml"
    path.write_text(yaml.safe_dump(config))
    first = hashlib.sha256(path.read_bytes()).hexdigest()[:12]

    async with reloading(router.server, path):
        assert (await info(router)).config_digest == first
        clock.advance(60)
        path.write_text("providers: {alpha: {base_url: 42, keys: [sk-do-not-show]}}\n")
        assert not await reload_from(router.server, path)
        refused = await info(router)
        assert refused.config_digest == first  # still the one in force
        assert refused.config_loaded_unix == 1_800_000_000.0
        assert "providers.alpha.base_url" in refused.reload_error
        assert "sk-do-not-show" not in refused.reload_error

        clock.advance(60)
        config["models"]["solo"] = {"deployments": [{"provider": "beta", "model": "model-b"}]}
        path.write_text(yaml.safe_dump(config))
        assert await reload_from(router.server, path)
        taken = await info(router)
    assert taken.config_digest == hashlib.sha256(path.read_bytes()).hexdigest()[:12] != first
    assert taken.config_loaded_unix == 1_800_000_120.0
    assert taken.reload_error == ""


async def test_a_replica_cut_off_from_redis_says_it_decides_alone(
    fake: FakeUpstream, start_router: StartRouter
) -> None:
    # Nothing listens on port 1: the replica starts on its local state, as documented.
    state = {"backend": "redis", "url": "redis://127.0.0.1:1/0", "prefix": "server-info"}
    router = await start_router(base_config(fake.base_url, state=state))

    answer = await info(router)

    assert (answer.state_backend, answer.state_degraded) == ("redis", True)
