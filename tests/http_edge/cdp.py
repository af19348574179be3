"""A headless Chromium driven over the DevTools protocol, for what `--dump-dom` cannot do: act on
the page (fill and submit a form) and let its timers run on the browser's virtual time (no
wall-clock waits), then read the page with a script."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import websockets

_LISTENING = re.compile(r"DevTools listening on (ws://\S+)")
# What the page's own CSP refuses (an inline style or script: not shown as the page meant),
# noted in the page (scripts the DevTools protocol adds are not the CSP's to refuse).
_WATCH_CSP = """window.refusedByCsp = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.refusedByCsp.push(`${event.violatedDirective}: ${event.sourceFile}:${event.lineNumber}`);
});"""
# A hang guard on each wait for the browser, not a measure: a loaded machine is slow.
HANG_GUARD_S = 60.0


class Page:
    """One tab, attached (flat session) to the browser's DevTools socket."""

    def __init__(self, socket: websockets.ClientConnection, session: str) -> None:
        self._socket, self._session = socket, session
        self._ids = itertools.count(1000)
        self._events: list[str] = []  # those that came while an answer was awaited

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        return await _call(self._socket, self._ids, method, params, self._session, self._events)

    async def evaluate(self, expression: str) -> Any:
        """The expression's value (a promise awaited), as JSON."""
        params = {"expression": expression, "awaitPromise": True, "returnByValue": True}
        answer = await self.send("Runtime.evaluate", **params)
        assert "exceptionDetails" not in answer, answer["exceptionDetails"]
        return answer["result"].get("value")

    async def run_virtual_time(self, budget_ms: int, *, past_fetches: bool = False) -> None:
        """Let the page's timers run for `budget_ms` of virtual time (paused while a fetch is
        pending, unless `past_fetches`: for one that never ends), returning when it is spent."""
        waits = "advance" if past_fetches else "pauseIfNetworkFetchesPending"
        policy = {"policy": waits, "budget": budget_ms}
        await self.send("Emulation.setVirtualTimePolicy", **policy)
        expired = _event(self._socket, "Emulation.virtualTimeBudgetExpired", self._events)
        await asyncio.wait_for(expired, timeout=HANG_GUARD_S)


async def _call(
    socket: websockets.ClientConnection,
    ids: itertools.count[int],
    method: str,
    params: dict[str, Any],
    session: str | None = None,
    events: list[str] | None = None,
) -> dict[str, Any]:
    number = next(ids)
    message: dict[str, Any] = {"id": number, "method": method, "params": params}
    if session is not None:
        message["sessionId"] = session
    await socket.send(json.dumps(message))
    async with asyncio.timeout(HANG_GUARD_S):
        while True:  # the page's events until the answer: kept in `events` for `_event`
            answer = json.loads(await socket.recv())
            if answer.get("id") == number:
                assert "error" not in answer, answer["error"]
                return dict(answer["result"])
            if events is not None and "method" in answer:
                events.append(answer["method"])


async def _event(socket: websockets.ClientConnection, method: str, events: list[str]) -> None:
    """Until the event `method` comes (or came while an answer was awaited)."""
    if method in events:
        events.remove(method)
        return
    while json.loads(await socket.recv()).get("method") != method:
        pass


@contextlib.asynccontextmanager
async def launched(
    *argv: str, stdout: int = asyncio.subprocess.DEVNULL
) -> AsyncIterator[asyncio.subprocess.Process]:
    """A browser process, its stderr piped: killed at the end whatever the test met (a failure,
    a hang guard's timeout, a browser already gone), its output read to the end (the pipe ends
    as its last child process does, none then left writing) and its exit waited for."""
    process = await asyncio.create_subprocess_exec(
        *argv, stdout=stdout, stderr=asyncio.subprocess.PIPE
    )
    try:
        yield process
    finally:
        with contextlib.suppress(ProcessLookupError):  # gone already (and reaped)
            process.kill()
        await asyncio.wait_for(process.communicate(), timeout=HANG_GUARD_S)


@contextlib.asynccontextmanager
async def opened(browser: str, profile: Path, url: str) -> AsyncIterator[Page]:
    """`url` in a new tab of a headless Chromium, its virtual time paused from the start."""
    argv = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]
    argv += [f"--user-data-dir={profile}", "--remote-debugging-port=0", "about:blank"]
    async with launched(*argv) as process:
        assert process.stderr is not None
        address = await asyncio.wait_for(_devtools_address(process.stderr), HANG_GUARD_S)
        # Loopback: never through a proxy the environment names; no keepalive pings, whose
        # answers a loaded machine may be slow to give (each wait here has its hang guard).
        connecting = websockets.connect(
            address, max_size=None, proxy=None, open_timeout=HANG_GUARD_S, ping_interval=None
        )
        async with _discarding(process.stderr), connecting as socket:
            ids = itertools.count(1)
            target = await _call(socket, ids, "Target.createTarget", {"url": "about:blank"})
            attach = {"targetId": target["targetId"], "flatten": True}
            session = (await _call(socket, ids, "Target.attachToTarget", attach))["sessionId"]
            page = Page(socket, session)
            await page.send("Emulation.setVirtualTimePolicy", policy="pause")
            await page.send("Page.enable")
            await page.send("Page.addScriptToEvaluateOnNewDocument", source=_WATCH_CSP)
            await page.send("Page.navigate", url=url)
            yield page
            refused = await page.evaluate("window.refusedByCsp")
            assert not refused, f"the page's CSP refused: {refused}"


@contextlib.asynccontextmanager
async def _discarding(stream: asyncio.StreamReader) -> AsyncIterator[None]:
    """`stream` read (and dropped) meanwhile: a browser saying more on stderr than a pipe holds
    (its logs, a page's console) would otherwise stop in its write."""

    async def drop() -> None:
        while await stream.read(1 << 16):
            pass

    reading = asyncio.create_task(drop())
    try:
        yield
    finally:
        reading.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reading


async def _devtools_address(stderr: asyncio.StreamReader) -> str:
    while line := await stderr.readline():
        if found := _LISTENING.search(line.decode(errors="replace")):
            return found.group(1)
    raise AssertionError("chromium exited without a DevTools address")
