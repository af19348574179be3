"""A config reload replaces the secrets the process's log redactor masks: a key the reload
removed stays masked until the next reload (a call begun before it may still log it), then
goes, so what each log line is searched for stays bounded however often the file reloads."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import pytest
import yaml

from router_service.fake_upstream import FakeUpstream
from router_service.server import reload_from
from router_service.telemetry._logging import REDACTOR, JsonFormatter
from tests.conftest import RouterHandle, StartRouter, base_config

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
        sizes.append(len(REDACTOR))

    line = _logged(_key(5), _key(4), _key(3))
    assert _key(5) not in line and _key(4) not in line  # in force, and removed by the last reload
    assert _key(3) in line  # removed two reloads ago: no call can still hold it
    assert sizes[2:] == [sizes[2]] * 4  # the same number of secrets whatever the reloads


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
