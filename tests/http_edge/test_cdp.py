"""The browser tests' process handling (`tests/http_edge/cdp.py`, `test_admin_browser.run`), with
stand-in browsers (shell scripts) and a stand-in DevTools socket: a browser never left running
after its test, whatever the test met, nor stalled on an output nobody reads."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp import web
from websockets.asyncio.server import ServerConnection, serve

from tests.helpers import eventually, serve_app
from tests.http_edge.cdp import opened
from tests.http_edge.test_admin_browser import chromium, run


@contextlib.asynccontextmanager
async def devtools() -> AsyncIterator[str]:
    """A DevTools socket answering each command (a target, a session, nothing else): its URL."""

    async def answer(socket: ServerConnection) -> None:
        async for message in socket:
            number = json.loads(message)["id"]
            result = {"targetId": "target", "sessionId": "session", "result": {}}
            await socket.send(json.dumps({"id": number, "result": result}))

    async with serve(answer, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        yield f"ws://127.0.0.1:{port}/devtools/browser/stand-in"


def browser(tmp_path: Path, script: str) -> str:
    """A stand-in browser: `script` run by the shell, whatever its arguments."""
    path = tmp_path / "browser"
    path.write_text(f"#!/bin/sh\n{script}\n")
    path.chmod(0o755)
    return str(path)


def pid_in(path: Path) -> int | None:
    text = path.read_text() if path.exists() else ""
    return int(text) if text.endswith("\n") else None


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    os.kill(pid, signal.SIGKILL)  # the test fails: not left running for the next one
    return False


async def test_a_browser_gone_at_once_is_said_to_be(tmp_path: Path) -> None:
    """A browser that dies at its start (no DevTools address): the test says so, not a bare
    ProcessLookupError from killing a process already gone."""
    dead = browser(tmp_path, "echo 'no display' >&2; exit 1")
    with pytest.raises(AssertionError, match="exited without a DevTools address"):
        async with opened(dead, tmp_path / "profile", "about:blank"):
            pass


async def test_the_browsers_output_is_read_while_the_test_runs(tmp_path: Path) -> None:
    """A browser says more on stderr than a pipe holds (its logs, a page's console): read, it
    goes on; unread, it would stop in its write, its page with it. Killed at the end."""
    written, pid_file = tmp_path / "written", tmp_path / "pid"
    async with devtools() as address:
        script = f"""echo $$ > {pid_file}
echo 'DevTools listening on {address}' >&2
head -c 300000 /dev/zero | tr '\\0' x >&2
touch {written}
exec sleep 600"""
        async with opened(browser(tmp_path, script), tmp_path / "profile", "about:blank"):
            await eventually(_exists(written), what="the browser's 300 kB of stderr written")
            pid = pid_in(pid_file)
    assert pid is not None and gone(pid)


async def test_a_proxy_in_the_environment_is_not_asked_for_the_browsers_socket(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """CI machines often set a proxy for the outside world; the browser's DevTools socket is on
    loopback, never behind it (the proxy here: a port nothing listens on)."""
    for name in ("all_proxy", "http_proxy", "https_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")
    async with devtools() as address:
        script = f"echo 'DevTools listening on {address}' >&2; exec sleep 600"
        async with opened(browser(tmp_path, script), tmp_path / "profile", "about:blank") as page:
            assert (await page.send("Target.getTargets"))["targetId"] == "target"


async def test_a_browser_run_is_killed_when_its_wait_ends_early(tmp_path: Path) -> None:
    """`run`'s wait cancelled (its 60 s hang guard, or the test's timeout): the browser is
    killed and reaped, not left running on the CI machine for good."""
    pid_file = tmp_path / "pid"
    running = asyncio.create_task(run("sh", "-c", f"echo $$ > {pid_file}; exec sleep 600"))

    await eventually(_exists(pid_file), what="the browser started")
    running.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await running
    pid = pid_in(pid_file)
    assert pid is not None and gone(pid)


def _exists(path: Path) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return path.exists()  # noqa: ASYNC240  # a stat on a local disk

    return check


async def test_what_the_pages_csp_refuses_fails_its_test(tmp_path: Path) -> None:
    """A page whose own script sets a style attribute its CSP (style-src 'self') refuses: not
    drawn as meant, so the test driving it fails, as `run`'s do on the browser's console."""
    csp = {"content-security-policy": "default-src 'none'; script-src 'self'; style-src 'self'"}
    page = '<!doctype html><p id="said">hi</p><script src="/page.js"></script>'
    script = 'document.getElementById("said").setAttribute("style", "width: 50%");'
    files = {"/": (page, "text/html"), "/page.js": (script, "text/javascript")}

    async def serve(request: web.Request) -> web.Response:
        text, kind = files[request.path]
        return web.Response(text=text, content_type=kind, headers=csp)

    app = web.Application()
    app.router.add_get("/{path:.*}", serve)
    async with serve_app(app) as url:
        with pytest.raises(AssertionError, match="style-src"):
            async with opened(chromium(), tmp_path / "profile", f"{url}/") as shown:
                await shown.run_virtual_time(500)
                assert await shown.evaluate('document.getElementById("said").style.width') == ""
