"""The status page's polling, driven in a real headless Chromium over the DevTools protocol on
the browser's virtual time: whatever the operator clicks, one poll every 2 s, never more."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from http_edge import EdgeSettings
from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream
from tests.conftest import StartRouter, base_config
from tests.http_edge.cdp import Page, opened
from tests.http_edge.harness import start_edge, stop_edge
from tests.http_edge.test_admin_browser import chromium

pytestmark = pytest.mark.timeout(120)

TOKEN = "edge-admin-token-polling"
POLLS = 'performance.getEntriesByType("resource").filter((e) => e.name.endsWith("/api/status"))'


async def polls(page: Page) -> int:
    return int(await page.evaluate(f"{POLLS}.length"))


async def sign_in(page: Page) -> None:
    """The operator types the token and presses Open (the page answers a 429: the form stays)."""
    script = f'document.getElementById("token").value = "{TOKEN}";'
    await page.evaluate(script + 'document.getElementById("login").requestSubmit();')


async def test_pressing_open_again_does_not_start_a_second_poller(
    fake: FakeUpstream, start_router: StartRouter, tmp_path: Path
) -> None:
    """The edge refuses every admin call from loopback (a wrong guess locked the address out,
    on the edge's clock that stands still): the form stays shown, and the operator presses Open
    again. Each press used to start a poller of its own, all of them polling for good."""
    browser = chromium()
    router = await start_router(base_config(fake.base_url))
    settings = EdgeSettings.model_validate(
        {
            "router_target": router.server.address,
            "admin_token": TOKEN,
            "admin_throttle": {"per_address": 1},
        }
    )
    edge = await start_edge(settings, clock=ManualClock())
    try:
        async with httpx.AsyncClient(base_url=edge.base_url) as http:
            wrong = {"authorization": "Bearer not-the-token"}
            assert (await http.get("/admin/api/status", headers=wrong)).status_code == 401
            assert (await http.get("/admin/api/status", headers=wrong)).status_code == 429
        async with opened(browser, tmp_path / "profile", f"{edge.base_url}/admin") as page:
            await page.run_virtual_time(500)  # the script ran: no token, the form shown
            await sign_in(page)
            await page.run_virtual_time(500)
            assert await polls(page) == 1
            await sign_in(page)  # the form still shown: pressed again
            await page.run_virtual_time(500)
            before = await polls(page)
            await page.run_virtual_time(5000)  # one poller: at most 3 polls (every 2 s)
            assert await polls(page) - before <= 3
            assert "Too many" in await page.evaluate('document.getElementById("live").textContent')
    finally:
        await stop_edge(edge)
