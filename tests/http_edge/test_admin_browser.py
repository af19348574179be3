"""The status page as an operator sees it: headless Chromium opens `/admin#token=…` on a real edge
in front of a real router that just failed over (and runs a batch), the page's script fetches the
status with the token and renders it. The screenshot lands in `test-artifacts/admin-status.png`.

Needs Debian's `chromium` (`make test` installs it when missing and run as root); skipped
without it, except under CI=true where a missing browser fails."""

from __future__ import annotations

import asyncio
import json
import math
import os
import shutil
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from clients.switchboard.v1 import admin_service_pb2 as admin_pb
from http_edge import EdgeSettings
from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream, Scenario
from router_service.keys import fingerprint
from tests.conftest import RouterHandle, StartRouter, base_config
from tests.http_edge.cdp import HANG_GUARD_S, launched
from tests.http_edge.harness import Edge, stop_edge
from tests.http_edge.harness import start_edge as start_edge_on

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
TOKEN = "browser-admin-token"
APP_KEY = "sk-browser-batch-job"
NOTE = '<img src=x onerror="document.title=1">rotating'


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        reason = (
            "chromium is not installed (apt-get install -y chromium; `make test` does it as root)"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return found


@pytest.fixture
async def stack(
    fake: FakeUpstream, start_router: StartRouter
) -> AsyncIterator[tuple[RouterHandle, Edge]]:
    config = base_config(fake.base_url)
    config["providers"]["gamma"] = {"base_url": fake.base_url, "keys": ["sk-gamma-1", "sk-gamma-2"]}
    config["models"]["backup"] = {"deployments": [{"provider": "gamma", "model": "model-c"}]}
    config["pools"] = {"smart": {"groups": ["chain", "backup"], "strategy": "thompson"}}
    config["providers"]["alpha"]["thread_protection"] = "provider-ban"
    retired = {"key": "sk-retired-key", "expires": "2020-01-01T00:00:00Z"}  # rotated out
    app = {"name": "batch-job", "key": [APP_KEY, retired], "rpm": 600, "tpm": 100_000}
    budgets = {"tokens_per_day": 500_000, "usd_per_day": 25}
    config["providers"]["alpha"]["price"] = {"input_per_mtok": 1.0, "output_per_mtok": 2.0}
    config["auth"] = {"open": True, "clients": [app | budgets]}
    config["batches"] = {"max_waiting_per_client": 64}  # more than the page's 50 jobs
    # The router's time stands still half way through the current minute: the clients table's
    # sliding minute (a share of the last minute) reads 1 request, not 0.98 past a boundary.
    clock = ManualClock(math.floor(time.time() / 60) * 60 + 30)
    router: RouterHandle = await start_router(config, clock=clock)
    started = await start_edge_on(
        EdgeSettings(router_target=router.server.address, admin_token=SecretStr(TOKEN))
    )
    try:
        yield router, started
    finally:
        await stop_edge(started)


@pytest.fixture
def edge(stack: tuple[RouterHandle, Edge]) -> Edge:
    return stack[1]


async def disable_by_hand(router: RouterHandle, key: str) -> None:
    """An operator takes `key` (gamma's) out of rotation, with a note that is markup."""
    request = admin_pb.SetKeyEnabledRequest(
        provider="gamma", fingerprint=fingerprint(key), enabled=False, reason=NOTE
    )
    await router.admin.SetKeyEnabled(request)


async def incident(edge: Edge, fake: FakeUpstream) -> None:
    """A bad key, a rate-limited key, a failing deployment, and some healthy traffic."""
    fake.state.set_scenario(Scenario.invalid_key(), key="sk-alpha-1")
    fake.state.set_scenario(Scenario.server_error(503), key="sk-alpha-2", model="model-a")
    fake.state.set_scenario(Scenario.rate_limited(retry_after="120"), key="sk-gamma-1")
    async with httpx.AsyncClient(base_url=edge.base_url, timeout=10) as http:
        for i, model in enumerate(["chain"] * 6 + ["backup"] * 3):
            body = {"model": model, "messages": [{"role": "user", "content": f"question {i}"}]}
            assert (await http.post("/v1/chat/completions", json=body)).status_code == 200
        app = {"authorization": f"Bearer {APP_KEY}"}  # a configured client's call
        assert (await http.post("/v1/chat/completions", json=body, headers=app)).is_success


async def held_batch(edge: Edge, fake: FakeUpstream, count: int = 1) -> str:
    """`count` batches of one line (an open-mode caller's), the first one's line held by the
    upstream: the last one's id."""
    fake.state.hold()
    body = {"model": "chain", "messages": [{"role": "user", "content": "later"}]}
    line = {"custom_id": "a", "method": "POST", "url": "/v1/chat/completions", "body": body}
    async with httpx.AsyncClient(base_url=edge.base_url, timeout=10) as http:
        upload = {"file": ("in.jsonl", json.dumps(line).encode() + b"\n")}
        made = await http.post("/v1/files", files=upload, data={"purpose": "batch"})
        create = {"input_file_id": made.json()["id"], "endpoint": "/v1/chat/completions"}
        create["completion_window"] = "24h"
        for _ in range(count):
            batch = (await http.post("/v1/batches", json=create)).json()
    await fake.state.wait_for(lambda: fake.state.held >= 1, what="a batch's line upstream")
    return str(batch["id"])


# The page's console on the browser's stderr, a line each: what its CSP refused is among them.
CONSOLE = ["--enable-logging=stderr", "--v=0"]


async def run(*argv: str) -> bytes:
    """The browser's output; fails when the page did something its own CSP refuses (an inline
    style or script: blocked, so not shown as the page meant)."""
    async with launched(*argv, *CONSOLE, stdout=asyncio.subprocess.PIPE) as process:
        out, err = await asyncio.wait_for(process.communicate(), timeout=HANG_GUARD_S)
    said = err.decode(errors="replace")
    assert process.returncode == 0, said[-2000:]
    refused = [line for line in said.splitlines() if "Content Security Policy" in line]
    assert not refused, refused[0]
    return out


async def dom_of(browser: str, tmp_path: Path, url: str) -> str:
    """The page's DOM once its script ran (3 s of the browser's virtual time)."""
    argv = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]
    profile = f"--user-data-dir={tmp_path / 'profile'}"
    return (await run(*argv, profile, "--virtual-time-budget=3000", "--dump-dom", url)).decode()


@pytest.mark.timeout(120)
async def test_the_status_page_renders_the_routers_state(
    stack: tuple[RouterHandle, Edge], fake: FakeUpstream, tmp_path: Path
) -> None:
    browser = chromium()
    router, edge = stack
    await incident(edge, fake)
    await disable_by_hand(router, "sk-gamma-2")
    ARTIFACTS.mkdir(exist_ok=True)
    screenshot = ARTIFACTS / "admin-status.png"
    screenshot.unlink(missing_ok=True)
    url = f"{edge.base_url}/admin#token={TOKEN}"
    common = [
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--virtual-time-budget=5000",
    ]

    batch_id = await held_batch(edge, fake)
    try:
        dom = (await run(*common, "--dump-dom", url)).decode()
        await run(*common, "--window-size=1400,1300", f"--screenshot={screenshot}", url)
    finally:
        fake.state.release()

    assert 'id="status"' in dom and 'id="status" hidden' not in dom  # signed in, rendered
    shown_server = ("Replica", f"{socket.gethostname()}:{os.getpid()}", "memory")
    for shown in ("alpha/model-a", "gamma/model-c", "smart", "disabled", "cooling", "live"):
        assert shown in dom
    assert 'class="bar' in dom  # success bars, drawn within the page's CSP (`run` checks)
    for shown in ("Why disabled", "<td>auth</td>"):  # the key the incident's 401 disabled
        assert shown in dom
    for shown in shown_server:  # the replica that answered, and what it runs
        assert shown in dom
    # The clients table: a configured client's minute and budget; open mode's callers.
    assert "batch-job" in dom and "1 / 600" in dom and " / 500000 tokens" in dom
    assert "$0.00 / $25.00" in dom  # its money budget, in the same cell
    assert " expired" in dom and "expires in" not in dom  # its rotated-out key
    assert "open mode, no key" in dom and "0 B / 64.0 MiB" in dom  # stored responses
    assert "Cached answers" in dom and "<td>off</td>" in dom  # the cache is off
    # The Jobs table: an open-mode caller's batch, its line held upstream.
    assert batch_id in dom and "0 / 1 (0 failed)" in dom and "(open mode)" in dom
    # The key disabled by hand: until enabled (not "3650.0 d"), its note as text, not markup.
    assert "until enabled" in dom and "3650" not in dom
    assert "manual: &lt;img src=x" in dom and "<img" not in dom
    assert APP_KEY not in dom
    assert TOKEN not in dom  # the token left the URL and was never rendered
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert screenshot.stat().st_size > 20_000


# "50%off": a lone "%" that does not decode, which once stopped the page's script dead.
@pytest.mark.parametrize("given", ["wrong", "50%off"])
async def test_a_wrong_token_shows_the_sign_in_form(edge: Edge, tmp_path: Path, given: str) -> None:
    browser = chromium()
    dom = await dom_of(browser, tmp_path, f"{edge.base_url}/admin#token={given}")
    assert 'id="login"' in dom and 'id="login" hidden' not in dom
    assert "not accepted" in dom
    assert "alpha/model-a" not in dom


async def test_jobs_left_out_are_said_to_be(edge: Edge, fake: FakeUpstream, tmp_path: Path) -> None:
    """51 batches: the page shows the newest 50 (ListJobs' default) and says more exist."""
    browser = chromium()
    await held_batch(edge, fake, count=51)
    try:
        dom = await dom_of(browser, tmp_path, f"{edge.base_url}/admin#token={TOKEN}")
    finally:
        fake.state.release()
    assert dom.count("<td>batch</td>") == 50
    assert "More left out (the newest 50 of each shown)" in dom


async def test_a_router_refusing_the_edges_router_key_keeps_the_operator_signed_in(
    fake: FakeUpstream, start_router: StartRouter, tmp_path: Path
) -> None:
    """The admin token was right: the page keeps it and says what is wrong (the edge's setting),
    not "That token was not accepted", nor that the router is unreachable."""
    browser = chromium()
    ops = {"name": "ops", "key": "sk-browser-ops-0123", "scopes": ["admin"]}
    router = await start_router(base_config(fake.base_url, auth={"clients": [ops]}))
    settings = EdgeSettings(
        router_target=router.server.address,
        admin_token=SecretStr(TOKEN),
        admin_router_key=SecretStr("sk-browser-revoked-0123"),
    )
    edge = await start_edge_on(settings)
    try:
        dom = await dom_of(browser, tmp_path, f"{edge.base_url}/admin#token={TOKEN}")
    finally:
        await stop_edge(edge)
    assert "not accepted" not in dom and "router unreachable" not in dom
    assert "The router refused edge.admin_router_key" in dom
    assert "sk-browser-revoked-0123" not in dom
