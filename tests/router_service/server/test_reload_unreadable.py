"""A config file YAML reads but cannot make values of (a date that does not exist), or one that
is not UTF-8 text: a reload refuses it as it refuses any bad file, and the next one is taken."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
import yaml

from router_service.fake_upstream import FakeUpstream
from tests.conftest import base_config
from tests.helpers import eventually
from tests.router_service.server.processes import RouterProcess, router_process

pytestmark = pytest.mark.timeout(60)

# A client key's expiry typed as a day February does not have; a comment saved as Latin-1.
CLIENT = {"name": "app", "key": "sk-app-1", "expires": "EXPIRES"}
NO_SUCH_DAY = (b"EXPIRES", b"2026-02-30")
NOT_UTF8 = (b"# switchboard\n", b"# r\xe9glages du routeur\n")
# A standard tag its constructor cannot make a value of: a KeyError, not a ValueError.
NO_SUCH_BOOL = (b"EXPIRES", b"!!bool someday")
# A tag on a mapping (the client, without the expiry): it was dropped, the reload taking the
# client as if untagged.
TAGGED_MAP = (b"- expires: EXPIRES\n", b"- !secret\n")


def _replace_bytes(router: RouterProcess, data: bytes) -> None:
    staged = router.config_path.with_suffix(".staged")
    staged.write_bytes(data)
    os.replace(staged, router.config_path)


@pytest.mark.parametrize(
    "bad",
    [NO_SUCH_DAY, NOT_UTF8, NO_SUCH_BOOL, TAGGED_MAP],
    ids=["no-such-day", "not-utf8", "no-such-bool", "tagged-map"],
)
async def test_a_file_yaml_cannot_read_through_fails_its_reload_and_the_next_is_taken(
    fake: FakeUpstream, tmp_path: Path, bad: tuple[bytes, bytes]
) -> None:
    """Its ValueError escaped the reload: the task that runs reloads ended with it, so that
    SIGHUP (and every later one, the fixed file's too) reloaded nothing, logged nothing."""
    config = base_config(fake.base_url)
    async with router_process(config, tmp_path) as router:
        with_client = {**config, "server": router.server, "auth": {"clients": [CLIENT]}}
        text = b"# switchboard\n" + yaml.safe_dump(with_client).encode()
        _replace_bytes(router, text.replace(*bad))
        router.process.send_signal(signal.SIGHUP)

        async def failure_logged() -> bool:
            return "failed, still serving the previous config" in router.log.read_text()

        await eventually(failure_logged, within=10, what="the failed reload logged")
        solo = {"deployments": [{"provider": "beta", "model": "model-b"}]}
        router.write_config({**config, "models": {"solo": solo}})
        router.process.send_signal(signal.SIGHUP)

        async def solo_served() -> bool:
            return "solo" in await router.models()

        await eventually(solo_served, within=10, what="the fixed file served")
        router.process.send_signal(signal.SIGTERM)
        assert await router.exit_code() == 0
    log = router.log.read_text()
    assert "Traceback" not in log and "sk-app-1" not in log
