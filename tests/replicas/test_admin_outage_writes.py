"""`switchboard admin keys disable` and `purge-cache` on a replica cut off from Redis: the write
holds there now and is queued for the others, and the answer (its text, `--json`'s `queued`)
says so rather than "on every replica"; the replica that reaches Redis says every replica."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream
from router_service.keys import fingerprint
from tests.conftest import StartRouter
from tests.replicas.harness import replica_config
from tests.replicas.redis_fixtures import RedisProxy
from tests.router_service.admin_cli.shell import OPS, key_file, run_admin
from tests.router_service.auth.helpers import client

pytestmark = pytest.mark.timeout(60)

QUEUED = "on this replica now; on the others once Redis is back"


async def test_a_cut_off_replica_says_its_disable_and_purge_reach_the_others_later(
    fake: FakeUpstream,
    start_router: StartRouter,
    redis_proxy: RedisProxy,
    redis_url: str,
    redis_prefix: str,
    tmp_path: Path,
) -> None:
    sections: dict[str, Any] = {"auth": {"clients": [client("ops", OPS, scopes=["admin"])]}}
    sections["cache"] = {"enabled": True}
    clock = ManualClock()
    through = replica_config(fake.base_url, redis_proxy.url, redis_prefix, **sections)
    through["state"].update(socket_timeout_s=1.0, retry_interval_s=1.0)
    a = await start_router(through, clock=clock)
    b = await start_router(replica_config(fake.base_url, redis_url, redis_prefix, **sections))
    await redis_proxy.cut()
    key = ["--key-file", str(key_file(tmp_path))]

    async def admin(router: str, *args: str) -> tuple[int, str]:
        ran = await run_admin(["--router", router, *key, *args], clock.now)
        assert ran.err == ""
        return ran.code, ran.out

    disable = ("keys", "disable", fingerprint("k1"), "--reason", "leaked")
    disabled_a = await admin(a.server.address, *disable)
    purged_a = await admin(a.server.address, "purge-cache", "--all")
    purged_a_json = await admin(a.server.address, "purge-cache", "--all", "--json")
    disabled_b = await admin(b.server.address, *disable)
    purged_b = await admin(b.server.address, "purge-cache", "--all", "--json")

    assert disabled_a[0] == 0 and disabled_a[1].startswith(
        f"{fingerprint('k1')} of alpha disabled (until enabled again); {QUEUED}\n"
    )
    assert purged_a == (0, f"response cache: every model's answers forgotten ({QUEUED})\n")
    assert json.loads(purged_a_json[1]) == {"queued": True}
    assert QUEUED not in disabled_b[1]
    assert json.loads(purged_b[1]) == {"queued": False}
