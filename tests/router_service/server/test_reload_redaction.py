"""A config reload replaces the secrets the process's log redactor masks: a key the reload
removed stays masked while the runtime that holds it still serves a call begun on it (however
many reloads follow), then goes, so what each log line is searched for stays bounded however
often the file reloads."""

from __future__ import annotations

import asyncio
import gc
import io
import logging
from pathlib import Path

import pytest
import yaml

from router_service.fake_upstream import FakeUpstream
from router_service.server import reload_from
from router_service.telemetry._logging import REDACTOR, JsonFormatter
from tests.conftest import RouterHandle, StartRouter, base_config
from tests.router_service.auth.helpers import chat

pytestmark = pytest.mark.timeout(60)


def _key(generation: int) -> str:
    # Of no key's shape: only the config's list masks it.
    return f"plainkey-gen{generation}-q7Z2x9"


def _logged(*words: str) -> str:
    """A line as the process's log writes it (its formatter, its redactor)."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter(REDACTOR))
    logger = logging.getLogger("switchboard.test.reload_redaction")
    logger.addHandler(handler)
    try:
        logger.warning("upstream said: %s", " ".join(words))
    finally:
        logger.removeHandler(handler)
    return out.getvalue()


async def test_a_reload_replaces_the_masked_keys_and_their_number_stays_bounded(
    fake: FakeUpstream, router: RouterHandle, tmp_path: Path
) -> None:
    path = tmp_path / "router.yaml"
    sizes = []
    for generation in range(6):
        config = base_config(fake.base_url)
        config["providers"]["alpha"]["keys"] = [_key(generation)]
        path.write_text(yaml.safe_dump(config))
        assert await reload_from(router.server, path)
        gc.collect()  # the runtimes replaced, which no call holds, are gone
        sizes.append(len(REDACTOR))

    line = _logged(_key(5), _key(4), _key(3))
    assert _key(5) not in line  # in force
    assert _key(4) in line and _key(3) in line  # removed, and no call holds them any more
    assert sizes[2:] == [sizes[2]] * 4  # the same number of secrets whatever the reloads


def _file(path: Path, fake: FakeUpstream, generation: int) -> Path:
    config = base_config(fake.base_url)
    config["providers"]["alpha"]["keys"] = [_key(generation)]
    config["providers"]["beta"]["keys"] = [_key(generation + 100)]
    path.write_text(yaml.safe_dump(config))
    return path


async def test_a_removed_key_stays_masked_while_a_call_on_its_runtime_runs_whatever_reloads(
    fake: FakeUpstream, start_router: StartRouter, tmp_path: Path
) -> None:
    """A reload that changes nothing (SIGHUP, the same file) does not push a removed key out:
    it stays masked while the runtime that holds it still serves a call begun on it (a
    Realtime session lasts up to an hour), and goes once nothing holds that runtime."""
    path = _file(tmp_path / "router.yaml", fake, 0)
    router = await start_router(yaml.safe_load(path.read_text()))
    fake.state.hold()
    call = asyncio.ensure_future(router.stub.Chat(chat("chain")))
    await fake.state.wait_for(lambda: fake.state.held == 1, what="the call under way")

    _file(path, fake, 1)
    for _ in range(3):  # the file changed once, then reloaded as it is (SIGHUP)
        assert await reload_from(router.server, path)
    gc.collect()
    line = _logged(_key(0), _key(1))
    assert _key(0) not in line  # the call under way holds the old runtime, which may log it
    assert _key(1) not in line

    fake.state.release()
    await call
    del call
    gc.collect()
    line = _logged(_key(0), _key(1))
    assert _key(0) in line  # nothing holds its runtime any more
    assert _key(1) not in line


def _token(generation: int) -> str:
    return f"plaintoken-gen{generation}-w4K8m1"


async def test_a_secret_only_a_restart_replaces_stays_masked_while_it_is_in_force(
    fake: FakeUpstream, start_router: StartRouter, tmp_path: Path
) -> None:
    # The edge's section (`switchboard serve`'s in-process edge: its admin token) and the
    # state store's URL apply at a restart only: a reload leaves the old values in force.
    router = await start_router(base_config(fake.base_url, edge={"admin_token": _token(0)}))
    path = tmp_path / "router.yaml"
    path.write_text(yaml.safe_dump(base_config(fake.base_url, edge={"admin_token": _token(1)})))
    for _ in range(3):  # the file changed once, then reloaded as it is (SIGHUP)
        assert await reload_from(router.server, path)

    admin_token = router.server.runtime.config.edge.admin_token
    assert admin_token is not None and admin_token.get_secret_value() == _token(0)
    line = _logged(_token(0), _token(1))
    assert _token(0) not in line  # in force until a restart
    assert _token(1) not in line  # the file's, in force at the next start


async def test_a_reload_refused_after_the_file_loaded_masks_what_the_router_serves(
    fake: FakeUpstream, start_router: StartRouter, tmp_path: Path
) -> None:
    """A reload the router refuses once the file has loaded (a SIGHUP during a stop, a config
    that cannot be applied) leaves the log masking the config it serves, not the file's: the
    refused file's keys are not masked for it, the keys in force are, however many follow."""
    path = _file(tmp_path / "router.yaml", fake, 20)
    router = await start_router(yaml.safe_load(path.read_text()))
    await router.server.shutdown(0)  # a rolling deploy's stop; the runtime is still here
    _file(path, fake, 21)
    for _ in range(2):
        assert not await reload_from(router.server, path)

    line = _logged(_key(20), _key(21))
    assert _key(20) not in line  # what it serves
    assert _key(21) in line  # the refused file's: nothing of it is in force
