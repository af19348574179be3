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
from tests.conftest import RouterHandle, base_config

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
