"""`switchboard admin jobs` against a real router with a batch, a background response and a
Realtime session open: a table of each (a key by fingerprint only), `--json` the message; then
`cancel-batch` cancels the batch (once: ended, it is not found)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from router_service.fake_upstream import FakeUpstream
from router_service.keys import fingerprint
from tests.conftest import StartRouter
from tests.router_service.admin_cli.shell import Ran, key_file, run_admin
from tests.router_service.server.busy_router import OPS, SECRETS, busy, jobs_config

pytestmark = pytest.mark.timeout(60)


async def test_jobs_shows_each_kind_running(
    fake: FakeUpstream, start_router: StartRouter, tmp_path: Path
) -> None:
    router = await start_router(jobs_config(fake))
    where = ["--router", router.server.address, "--key-file", str(key_file(tmp_path, OPS))]
    async with busy(router, fake) as running:
        shown = await run_admin([*where, "jobs"], time.time)
        as_json = await run_admin([*where, "jobs", "--json", "--limit", "5"], time.time)
        cancel = [*where, "cancel-batch", running.batch_id, "--reason", "runaway"]
        cancelled = await run_admin(cancel, time.time)
        again = await run_admin(cancel, time.time)
    assert cancelled.out == f"batch {running.batch_id} of client app: cancelled\n"
    assert again.code == 4  # ended: no batch of that id runs
    for ran in (shown, as_json):
        assert (ran.code, ran.err) == (0, "")
        assert not any(secret in ran.out for secret in SECRETS)
    (batch,) = shown.rows(running.batch_id)
    assert batch[1:5] == ["app", "/v1/chat/completions", "in_progress", "0/1 (0 failed)"]
    assert batch[-1] == json.loads(as_json.out)["replica"]
    assert shown.row(running.response_id)[1:4] == ["app", "chain", "in_progress"]
    session = shown.row("app")
    assert session[1:4] == ["voice", "alpha/rt-a", fingerprint("sk-alpha-1")]
    assert session[-1] == "1 in / 2 out"
    answer = json.loads(as_json.out)
    assert [b["id"] for b in answer["batches"]] == [running.batch_id]
    assert answer["realtime"][0]["events_to_caller"] == 2


async def test_jobs_says_when_nothing_runs(
    fake: FakeUpstream, start_router: StartRouter, tmp_path: Path
) -> None:
    router = await start_router(jobs_config(fake))
    where = ["--router", router.server.address, "--key-file", str(key_file(tmp_path, OPS))]
    shown: Ran = await run_admin([*where, "jobs"], time.time)
    assert shown.code == 0
    assert "no batches running" in shown.out and "no realtime sessions open" in shown.out
    refused = await run_admin([*where, "jobs", "--limit", "1000"], time.time)
    assert (refused.code, refused.err) == (2, "switchboard admin: `limit` must be 1 to 500.\n")
