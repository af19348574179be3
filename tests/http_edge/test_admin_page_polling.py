"""The status page's sign-in form and polling, driven in a real headless Chromium over the
DevTools protocol on the browser's virtual time: one poll every 2 s whatever the operator
clicks, and the form saying why the edge refused, in its words."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from aiohttp import web

from http_edge import EdgeSettings
from router_service.clock import ManualClock
from router_service.fake_upstream import FakeUpstream
from tests.conftest import StartRouter, base_config
from tests.helpers import serve_app
from tests.http_edge.cdp import Page, opened
from tests.http_edge.harness import Edge, start_edge, stop_edge
from tests.http_edge.test_admin_browser import chromium

pytestmark = pytest.mark.timeout(120)

TOKEN = "edge-admin-token-polling"
WRONG = "not-the-token"
POLLS = 'performance.getEntriesByType("resource").filter((e) => e.name.endsWith("/api/status"))'


@pytest.fixture
async def edge(fake: FakeUpstream, start_router: StartRouter) -> AsyncIterator[Edge]:
    """An edge that locks an address out at its first wrong admin token, for good (its clock
    stands still)."""
    router = await start_router(base_config(fake.base_url))
    settings = EdgeSettings.model_validate(
        {
            "router_target": router.server.address,
            "admin_token": TOKEN,
            "admin_throttle": {"per_address": 1},
        }
    )
    started = await start_edge(settings, clock=ManualClock())
    yield started
    await stop_edge(started)


async def polls(page: Page) -> int:
    return int(await page.evaluate(f"{POLLS}.length"))


async def sign_in(page: Page, token: str = TOKEN) -> None:
    """The operator types `token` and presses Open; the page's answer comes within 500 ms of
    its virtual time."""
    script = f'document.getElementById("token").value = "{token}";'
    await page.evaluate(script + 'document.getElementById("login").requestSubmit();')
    await page.run_virtual_time(500)


async def shown(page: Page, element_id: str) -> str:
    return str(await page.evaluate(f'document.getElementById("{element_id}").textContent'))


async def test_pressing_open_again_does_not_start_a_second_poller(
    edge: Edge, tmp_path: Path
) -> None:
    """The edge refuses every admin call from loopback (a wrong guess locked the address out):
    the form stays shown, and the operator presses Open again. Each press used to start a
    poller of its own, all of them polling for good."""
    browser = chromium()
    async with httpx.AsyncClient(base_url=edge.base_url) as http:
        wrong = {"authorization": f"Bearer {WRONG}"}
        assert (await http.get("/admin/api/status", headers=wrong)).status_code == 401
        assert (await http.get("/admin/api/status", headers=wrong)).status_code == 429
    async with opened(browser, tmp_path / "profile", f"{edge.base_url}/admin") as page:
        await page.run_virtual_time(500)  # the script ran: no token, the form shown
        await sign_in(page)
        assert await polls(page) == 1
        await sign_in(page)  # the form still shown: pressed again
        before = await polls(page)
        await page.run_virtual_time(5000)  # one poller: at most 3 polls (every 2 s)
        assert await polls(page) - before <= 3
        assert "Too many" in await shown(page, "live")


async def test_the_form_says_why_the_edge_refused_the_right_token(
    edge: Edge, tmp_path: Path
) -> None:
    """A wrong token (the form says it was not accepted), then the right one while the address
    is locked out: the form says so, in the edge's words; it used to keep saying the token was
    not accepted, sending the operator after a token that was right."""
    browser = chromium()
    async with opened(browser, tmp_path / "profile", f"{edge.base_url}/admin") as page:
        await page.run_virtual_time(500)
        await sign_in(page, WRONG)
        assert await shown(page, "login-error") == "That token was not accepted."
        await sign_in(page)
        said = await shown(page, "login-error")
        assert "not accepted" not in said
        assert said.startswith("Too many failed admin authentications") and TOKEN not in said
        assert said == await shown(page, "live-text")


async def test_a_token_pasted_into_the_open_pages_url_is_taken_and_leaves_it(
    edge: Edge, tmp_path: Path
) -> None:
    """`/admin#token=…` pasted into a tab already on the page changes only the fragment (no new
    load): the token is taken and leaves the URL (and the tab's history) as at a load; it used
    to stay there, unused, the form still asking for it."""
    browser = chromium()
    async with opened(browser, tmp_path / "profile", f"{edge.base_url}/admin") as page:
        await page.run_virtual_time(500)  # no token: the form
        assert not await page.evaluate('document.getElementById("login").hidden')
        await page.evaluate(f'location.hash = "token={TOKEN}"')
        await page.run_virtual_time(500)
        assert TOKEN not in await page.evaluate("location.href")
        assert await page.evaluate('document.getElementById("login").hidden')
        assert not await page.evaluate('document.getElementById("status").hidden')
        assert (await shown(page, "live-text")).startswith("live · updated")


ENTRIES = "navigation.entries().map((e) => e.url)"  # the tab's history, as Chromium keeps it
LOADED = 'performance.getEntriesByType("resource").map((e) => e.name)'  # what the page asked for


@pytest.mark.parametrize("pasted", [False, True], ids=["opened-with-it", "pasted-into-the-tab"])
async def test_the_fragments_token_is_in_no_history_entry_nor_any_request(
    edge: Edge, tmp_path: Path, pasted: bool
) -> None:
    """Back (or the tab's history) must not offer the URL with the token; nor may a request of
    the page carry it (the edge's access lines, a Referer)."""
    browser = chromium()
    url = f"{edge.base_url}/admin" + ("" if pasted else f"#token={TOKEN}")
    async with opened(browser, tmp_path / "profile", url) as page:
        await page.run_virtual_time(500)
        if pasted:
            await page.evaluate(f'location.hash = "token={TOKEN}"')
            await page.run_virtual_time(500)
        entries = await page.evaluate(ENTRIES)
        assert entries and all(entry == f"{edge.base_url}/admin" for entry in entries)
        loaded = await page.evaluate(LOADED)
        assert any(name.endswith("/admin/api/status") for name in loaded)
        assert TOKEN not in str(loaded) and TOKEN not in await page.evaluate("location.href")
        assert not await page.evaluate('document.getElementById("status").hidden')


async def test_a_tab_that_cannot_store_the_token_still_takes_it_out_of_the_url(
    edge: Edge, tmp_path: Path
) -> None:
    """Storage refused (a browser's policy, a full quota): `sessionStorage.setItem` throws, and
    the token stayed in the URL and the tab's history, the line that removed it never reached.
    The form asks for it instead."""
    browser = chromium()
    async with opened(browser, tmp_path / "profile", "about:blank") as page:
        refuse = (
            "Storage.prototype.setItem = () => {"
            ' throw new DOMException("full", "QuotaExceededError"); };'
        )
        await page.send("Page.addScriptToEvaluateOnNewDocument", source=refuse)
        await page.send("Page.navigate", url=f"{edge.base_url}/admin#token={TOKEN}")
        await page.run_virtual_time(500)
        assert await page.evaluate(ENTRIES) == [f"{edge.base_url}/admin"]
        assert not await page.evaluate('document.getElementById("login").hidden')


@contextlib.asynccontextmanager
async def answering_once(edge: Edge) -> AsyncIterator[tuple[str, asyncio.Event]]:
    """The edge behind a front (a proxy, a host that froze): the status page's first poll
    answered, the later ones held until the event given is set. The front's URL, and it."""
    polled, answering = [], asyncio.Event()

    async def forward(request: web.Request) -> web.Response:
        if request.path == "/admin/api/status":
            polled.append(request)
            if len(polled) > 1:
                await answering.wait()
        headers = {"authorization": request.headers.get("authorization", "")}
        async with httpx.AsyncClient(base_url=edge.base_url) as http:
            answer = await http.get(request.path_qs, headers=headers)
        kept = {"content-type": answer.headers["content-type"]}
        return web.Response(body=answer.content, status=answer.status_code, headers=kept)

    app = web.Application()
    app.router.add_get("/{path:.*}", forward)
    async with serve_app(app) as url:
        try:
            yield url, answering
        finally:
            answering.set()


async def test_a_poll_never_answered_is_said_not_to_be(edge: Edge, tmp_path: Path) -> None:
    """Signed in, then the edge's answers stop coming (held between the page and the edge):
    the page says so at the top, and polls on, live again once answered. It used to wait on
    the fetch for good, its top bar green, "live · updated" at the last answer's time."""
    browser = chromium()
    async with answering_once(edge) as (front, answering):
        async with opened(browser, tmp_path / "profile", f"{front}/admin") as page:
            await page.run_virtual_time(500)
            await sign_in(page)
            assert (await shown(page, "live-text")).startswith("live · updated")
            # The edge bounds its own calls (15 s at most): 30 s without an answer is none.
            await page.run_virtual_time(30_000, past_fetches=True)
            assert (await shown(page, "live-text")).startswith("no answer from the edge")
            assert await page.evaluate('document.getElementById("live").className') == "live bad"
            answering.set()  # the poll after the one given up on (or the next) is answered
            await page.run_virtual_time(2500)
            assert (await shown(page, "live-text")).startswith("live · updated")
