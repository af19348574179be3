"""Server lifecycle: create_app, the FakeUpstream context manager and the long-running serve()."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from types import TracebackType

from aiohttp import web

from . import (
    _anthropic,
    _azure,
    _bedrock,
    _bedrock_invoke,
    _cloudflare,
    _cohere,
    _control,
    _gemini,
    _media,
    _openai,
    _realtime,
    _realtime_calls,
    _rerank,
    _responses_events,
    _vertex,
)
from ._faults import wait_forever
from ._runtime import RUNTIME_KEY, Runtime
from ._scenario import load_rules_file
from ._state import FakeUpstreamState

log = logging.getLogger("switchboard.fake_upstream")

# Long prompts in benchmarks exceed aiohttp's 1 MiB default request size.
_MAX_REQUEST_BYTES = 64 * 1024 * 1024


def create_app(state: FakeUpstreamState | None = None) -> web.Application:
    """The aiohttp app. Run it with handler_cancellation=True (as FakeUpstream does), otherwise
    client disconnects are not observed and stalled handlers never end."""
    app = web.Application(client_max_size=_MAX_REQUEST_BYTES)
    app[RUNTIME_KEY] = Runtime(state if state is not None else FakeUpstreamState())
    _openai.add_routes(app)
    _responses_events.add_routes(app)  # the Responses API (OpenAI's and Azure's v1)
    _media.add_routes(app)  # images, audio, moderations (OpenAI's and Azure's)
    _rerank.add_routes(app)  # rerank (Jina's, vLLM's, Voyage's, Cohere's)
    _realtime.add_routes(app)  # the Realtime API's WebSocket (OpenAI's and Azure's)
    _realtime_calls.add_routes(app)  # its WebRTC calls (OpenAI's)
    # The other providers' wire formats, each at its real API's paths (README, Providers).
    providers = (_gemini, _anthropic, _cohere, _cloudflare, _azure, _vertex, _bedrock)
    for provider in (*providers, _bedrock_invoke):
        provider.add_routes(app)
    _control.add_routes(app)
    return app


def _url_host(host: str) -> str:
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


class FakeUpstream:
    """A fake provider on a loopback port: `async with FakeUpstream() as fake: fake.base_url`."""

    def __init__(
        self,
        state: FakeUpstreamState | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        shutdown_timeout: float = 2.0,
    ) -> None:
        self.state = state if state is not None else FakeUpstreamState()
        self.host = host
        self._requested_port = port
        self._shutdown_timeout = shutdown_timeout
        self._app = create_app(self.state)
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self._closed = False

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("FakeUpstream is not started")
        return self._port

    @property
    def url(self) -> str:
        """Server root (control endpoints live under /_fake)."""
        return f"http://{_url_host(self.host)}:{self.port}"

    @property
    def base_url(self) -> str:
        """OpenAI-style base URL, e.g. http://127.0.0.1:PORT/v1."""
        return f"{self.url}/v1"

    async def start(self) -> FakeUpstream:
        if self._closed or self._runner is not None:
            raise RuntimeError("FakeUpstream can be started only once")
        runner = web.AppRunner(
            self._app,
            handler_cancellation=True,  # observe client disconnects; end stalled handlers
            access_log=None,  # per-request access lines are noise in tests
            shutdown_timeout=self._shutdown_timeout,
        )
        await runner.setup()
        try:
            site = web.TCPSite(runner, self.host, self._requested_port)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self._port = int(runner.addresses[0][1])
        return self

    async def aclose(self) -> None:
        """Stop the server, cancelling stalled handlers so nothing is left running. Idempotent."""
        if self._closed:
            return
        self._closed = True
        runner, self._runner = self._runner, None
        if runner is None:
            return
        runtime = self._app[RUNTIME_KEY]
        # Cancel first: aiohttp's graceful shutdown would otherwise wait on handlers that stall
        # forever by design.
        await runtime.cancel_handlers(self._shutdown_timeout)
        await runner.cleanup()
        await runtime.wait_connections(self._shutdown_timeout)

    async def __aenter__(self) -> FakeUpstream:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


async def serve(
    host: str = "127.0.0.1",
    port: int = 0,
    scenarios_file: str | Path | None = None,
    *,
    state: FakeUpstreamState | None = None,
    on_ready: Callable[[FakeUpstream], None] | None = None,
) -> None:
    """Run a fake upstream until cancelled. `scenarios_file` is YAML: a list of
    `{key, model, scenario}` rules. `on_ready` receives the started server (e.g. for its port)."""
    async with serving(host, port, scenarios_file, state=state) as fake:
        if on_ready is not None:
            on_ready(fake)
        await wait_forever()


@contextlib.asynccontextmanager
async def serving(
    host: str = "127.0.0.1",
    port: int = 0,
    scenarios_file: str | Path | None = None,
    *,
    state: FakeUpstreamState | None = None,
) -> AsyncIterator[FakeUpstream]:
    """`serve`'s fake upstream while inside (`switchboard dev`: started before its router,
    stopped after it)."""
    state = state if state is not None else FakeUpstreamState()
    if scenarios_file is not None:
        load_scenarios(state, scenarios_file)
    async with FakeUpstream(state, host, port) as fake:
        log.info(
            "fake upstream listening on %s (%d scenario rule(s))",
            fake.base_url,
            len(state.scenarios.rules()),
        )
        yield fake


def load_scenarios(state: FakeUpstreamState, path: str | Path) -> None:
    """`path`'s rules into `state`; a file that does not read is a ConfigError naming it (one
    line from `switchboard`, before anything listens), not a traceback."""
    import yaml

    from router_service.errors import ConfigError

    try:
        state.load_rules(load_rules_file(path))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the scenarios: {exc.strerror}") from None
    except yaml.YAMLError:
        raise ConfigError(f"{path}: invalid YAML") from None
    except (ValueError, TypeError, KeyError) as exc:
        raise ConfigError(f"{path}: {exc}") from None
