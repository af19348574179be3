"""What each serving command of `switchboard` runs (router_service/cli.py parses and starts
them): the router, the edge, both in one process (`serve`), the offline demo (`dev`), the fake
upstream."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
from collections.abc import Callable
from typing import TYPE_CHECKING

from router_service._listening import Listening, check_listening, grpc_host
from router_service.cli import EarlySighup, without_httpx_cli

if TYPE_CHECKING:
    from router_service.config import EdgeFileConfig, SwitchboardConfig
    from router_service.fake_upstream import FakeUpstreamState
    from router_service.server import RouterServer

__all__ = ["print_banner", "run_dev", "run_edge", "run_fake", "run_router", "run_serve"]

log = logging.getLogger("switchboard")

_DEMO_SCENARIOS = "examples/fake-scenarios.yaml"  # `dev`'s rules unless --scenarios names some


async def run_router(args: argparse.Namespace, early: EarlySighup) -> None:
    without_httpx_cli()
    from router_service.config import load_config
    from router_service.server import file_digest, serving_file

    loaded = file_digest(args.config)  # before it is read: a change from now on is reloaded
    config = load_config(args.config)
    # Its metrics are read through a metrics port (or OTLP) only: without one none are recorded.
    scraped = _chosen_metrics_port(config, args.metrics_port) is not None
    _telemetry("switchboard-router", config, scraped=scraped)
    # The digest of the file alone: replicas that share it with other --port / --metrics-port
    # show as one config version.
    serving_file(args.config, loaded)
    # Both ports, before anything starts (the metrics listener, the runtime's Redis): a port
    # taken is one line naming it, as for `serve`, not grpc's log of its failed bind. Before
    # the server's modules load, too: a start refused here costs no more than reading the file.
    check_listening(_router_listening(config, args))
    from router_service.runtime import Runtime
    from router_service.server import RouterServer, reloading

    with _metrics_listener(config, args.metrics_port):
        server = RouterServer(await Runtime.create(config), host=args.host, port=args.port)
        poll_s = config.server.reload_poll_s
        watching = reloading(server, args.config, poll_s=poll_s, early=early, loaded=loaded)
        async with server, watching:
            await server.wait()


async def run_edge(args: argparse.Namespace, early: EarlySighup) -> None:
    from clients import checked_target
    from router_service.config import EdgeConfig
    from router_service.errors import ConfigError

    config: EdgeFileConfig | None = None
    if args.config:  # its sections, no secrets; without a file no YAML parser is loaded
        from router_service.config import load_edge_config

        config = load_edge_config(args.config)
    _telemetry("switchboard-edge", config)
    # `http_edge.EdgeSettings` itself: the edge's app loads once its port is known to be free.
    settings: EdgeConfig = config.edge if config is not None else EdgeConfig()
    if args.router:  # checked here: model_copy runs no validator
        try:
            routers = [checked_target(target) for target in args.router]
        except ValueError as exc:
            raise ConfigError(f"--router: {exc}") from None
        settings = settings.model_copy(update={"router_target": routers})
    # `--port 0` is any free port, as for the router (uvicorn's started line says which).
    key, port = ("edge.port", settings.port) if args.port is None else ("--port", args.port)
    host = args.host or settings.host
    # A port taken is one line and exit status 2, as for the router and `serve` (uvicorn's own
    # bind failure is its log line, after a startup, and exit status 3).
    check_listening([(key, host, port)])
    from http_edge import serve

    _edge_sighup(early)
    # Stopped by cancellation only (`until_terminated`: once per SIGTERM or Ctrl-C, a second
    # cutting the drain). uvicorn's own handlers would raise each signal again once drained:
    # a second stop, logged as one that cut open requests, after a stop that cut none.
    await serve(settings, host=host, port=port, signals=False)


def _edge_sighup(early: EarlySighup) -> None:
    """SIGHUP asks a router to reload its config (`systemctl reload`, a config-sync sidecar
    signalling every process); the edge reloads nothing, and the signal's default action would
    kill it mid-stream. It says so instead and serves on, until its loop ends (after the drain).
    Not for `dev`, whose router reloads on SIGHUP (`reloading`)."""
    import asyncio

    def reloads_nothing() -> None:
        logging.getLogger("switchboard.edge").warning(
            "SIGHUP: the edge does not reload its settings, restart it to change them (its "
            "router TLS files are read again every edge.router_tls.reload_poll_s); serving on"
        )

    # Not on Windows, nor outside the main thread: there, SIGHUP keeps its default action.
    with contextlib.suppress(NotImplementedError, RuntimeError, AttributeError):
        asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, reloads_nothing)
    if early.asked:  # while the process started
        reloads_nothing()


async def run_fake(args: argparse.Namespace, early: EarlySighup) -> None:
    from router_service.fake_upstream import serve

    await serve(args.host, args.port, args.scenarios)


async def run_serve(args: argparse.Namespace, early: EarlySighup) -> None:
    """The router and the edge in one process, the edge calling the router in-process
    (`clients.LocalChannel`); the router's port still serves its other callers (other edges,
    `switchboard admin`). SIGHUP reloads the router's part of the file (as `router` and `dev`);
    a stop drains the edge first (its open requests finish on the router), then the router; a
    second stop cuts both drains (`_router_and_edge`)."""
    without_httpx_cli()
    from router_service.config import load_config
    from router_service.server import file_digest, serving_file

    loaded = file_digest(args.config)  # before it is read: a change from now on is reloaded
    config = load_config(args.config)
    _telemetry("switchboard", config)
    # Every port it listens on, before anything starts (or loads: the server's modules, the
    # edge's): one taken is one line, nothing left.
    check_listening(_listening(config, args.metrics_port))
    serving_file(args.config, loaded)
    from router_service.runtime import Runtime
    from router_service.server import RouterServer

    with _metrics_listener(config, args.metrics_port):
        server = RouterServer(await Runtime.create(config))
        await server.start()

        def announce(edge_port: int) -> None:
            metrics = _metrics_port(config, args.metrics_port)
            _announce_serve(config, edge_port, server.address, metrics)

        await _router_and_edge(server, args.config, early, announce, loaded)


def _announce_serve(
    config: SwitchboardConfig, edge_port: int, router: str, metrics_port: int | None
) -> None:
    """`serve`'s started line, and with a metrics port a second: the edge's `/metrics` serves
    the same numbers (one process, one registry), so a Prometheus scraping both counts twice."""
    edge = config.edge
    log.info(
        "the edge on %s:%d calls the router in-process; the router also listens on %s",
        edge.host,
        edge_port,
        router,
    )
    if metrics_port is not None:
        log.info(
            "metrics: the edge's GET /metrics (%s:%d) and the metrics port (%s:%d) serve the "
            "same numbers: scrape one of them, not both (sums over both count everything twice)",
            edge.host,
            edge_port,
            config.telemetry.prometheus_host,
            metrics_port,
        )


async def run_dev(args: argparse.Namespace, early: EarlySighup) -> None:
    """`serve`'s router and edge (stopped as `serve` stops them), with the fake upstream in
    front of them: started first, stopped last."""
    from router_service.config import load_config
    from router_service.server import file_digest

    without_httpx_cli()
    # The demo's config calls `${FAKE_UPSTREAM_URL:-http://127.0.0.1:9100/v1}`: the fake
    # upstream started here, whatever its `--fake-port` (unless the variable names another;
    # empty, it names none, as `:-` reads it), at its start and at each reload.
    if not os.environ.get("FAKE_UPSTREAM_URL"):
        os.environ["FAKE_UPSTREAM_URL"] = f"http://127.0.0.1:{args.fake_port}/v1"
    loaded = file_digest(args.config)  # before it is read: a change from now on is reloaded
    config: SwitchboardConfig = load_config(args.config)
    _telemetry("switchboard", config)
    fake = ("--fake-port", "127.0.0.1", args.fake_port)
    check_listening([*_listening(config), fake])
    state = _dev_scenarios(args)  # a file that does not read is refused before anything listens
    with _metrics_listener(config):
        await _dev(args.config, config, state, args.fake_port, early, loaded)


def _dev_scenarios(args: argparse.Namespace) -> FakeUpstreamState:
    """The fake upstream's state with `dev`'s rules: those of `--scenarios`, which must read (a
    ConfigError naming the file), else the demo's when found (not from another directory)."""
    from router_service.fake_upstream import FakeUpstreamState, load_scenarios

    state = FakeUpstreamState()
    scenarios = args.scenarios
    if scenarios is None and os.path.exists(_DEMO_SCENARIOS):
        scenarios = _DEMO_SCENARIOS
    if scenarios is not None:
        load_scenarios(state, scenarios)
    return state


async def _dev(
    path: str,
    config: SwitchboardConfig,
    state: FakeUpstreamState,
    fake_port: int,
    early: EarlySighup,
    loaded: str | None,
) -> None:
    from router_service.fake_upstream import serving as fake_upstream
    from router_service.runtime import Runtime
    from router_service.server import RouterServer, serving_file

    serving_file(path, loaded)
    async with fake_upstream("127.0.0.1", fake_port, state=state):
        server = RouterServer(await Runtime.create(config))
        await server.start()

        def announce(edge_port: int) -> None:
            print_banner(config.edge.host, edge_port, server.address, config)

        await _router_and_edge(server, path, early, announce, loaded)


async def _router_and_edge(
    server: RouterServer,
    path: str,
    early: EarlySighup,
    announce: Callable[[int], None],
    loaded: str | None,
) -> None:
    """`serve`'s and `dev`'s one process, its router started: the edge on `edge.host:port`
    calling `server` in-process, until SIGTERM (`until_terminated`). The stop drains the edge
    first (its open requests finish on the router), then the router. A second stop during the
    edge's drain stops the router without grace (`serve_edge`'s `cut`): the open requests'
    calls end, so they answer at once, and the edge shuts down cleanly; during the router's,
    it cuts that (`RouterServer.shutdown`). `loaded`: the file's digest as it was read
    (`reloading`)."""
    import asyncio

    from http_edge import serve as serve_edge
    from router_service.server import reloading

    config = server.runtime.config
    edge = config.edge
    try:
        # The file's router part reloads; its edge part applies on the next start.
        poll_s = config.server.reload_poll_s
        async with reloading(server, path, poll_s=poll_s, early=early, loaded=loaded):
            local = server.in_process
            await serve_edge(
                edge,
                host=edge.host,
                port=edge.port,
                local=local,
                signals=False,  # stopped by cancellation only, once per SIGTERM
                cut=lambda: server.shutdown(0),
                listening=announce,  # once it listens: its port (for 0, the one it got)
            )
    finally:
        task = asyncio.current_task()
        asked_again = task is not None and task.cancelling() > 1
        await server.shutdown(0 if asked_again else None)


def _listening(config: SwitchboardConfig, metrics_port: int | None = None) -> list[Listening]:
    """Where `serve`'s process listens: the router's port, the edge's, the metrics port."""
    wanted = [
        ("server.port", config.server.host, config.server.port),
        ("edge.port", config.edge.host, config.edge.port),
    ]
    return wanted + _metrics_listening(config, metrics_port)


def _router_listening(config: SwitchboardConfig, args: argparse.Namespace) -> list[Listening]:
    """Where `router`'s process listens: its port (`--host` and `--port` over `server:`'s), the
    metrics port."""
    key, port = ("server.port", config.server.port) if args.port is None else ("--port", args.port)
    wanted = [(key, args.host or config.server.host, port)]
    return wanted + _metrics_listening(config, args.metrics_port)


def _metrics_listening(config: SwitchboardConfig, metrics_port: int | None) -> list[Listening]:
    port = _metrics_port(config, metrics_port)
    if not port:
        return []
    key = "--metrics-port" if metrics_port is not None else "telemetry.prometheus_port"
    return [(key, config.telemetry.prometheus_host, port)]


def _telemetry(
    service: str, config: SwitchboardConfig | EdgeFileConfig | None, *, scraped: bool = True
) -> None:
    """Logs, metrics and traces for this process (`telemetry:` and the `OTEL_*` variables);
    `scraped=False`: no Prometheus listener reads its metrics (see `configure_telemetry`)."""
    from router_service.telemetry import configure_telemetry

    configure_telemetry(service, config, scraped=scraped)


def _chosen_metrics_port(config: SwitchboardConfig, port: int | None) -> int | None:
    """The metrics port asked for: `--metrics-port`, else `telemetry.prometheus_port`; 0 or
    unset: none."""
    return (config.telemetry.prometheus_port if port is None else port) or None


def _metrics_listener(
    config: SwitchboardConfig, port: int | None = None
) -> contextlib.AbstractContextManager[object]:
    """The router's Prometheus scrape listener on `port` (`--metrics-port`), else on
    `telemetry.prometheus_port` when it is set. With metrics off (`OTEL_SDK_DISABLED=true`)
    there is nothing to serve: no listener, and one line says so."""
    port = _chosen_metrics_port(config, port)
    if port is None:  # prometheus_client stays unloaded: nothing scrapes this process
        return contextlib.nullcontext()
    from router_service.telemetry import PrometheusListener, current

    if current().registry is None:
        log.info("metrics are off (OTEL_SDK_DISABLED=true): no Prometheus listener on %d", port)
        return contextlib.nullcontext()
    return PrometheusListener(config.telemetry.prometheus_host, port)


def _metrics_port(config: SwitchboardConfig, port: int | None) -> int | None:
    """The port `_metrics_listener` listens on, if it does."""
    from router_service.telemetry import current

    port = _chosen_metrics_port(config, port)
    return port if port is not None and current().registry is not None else None


def print_banner(host: str, port: int, router: str, config: SwitchboardConfig) -> None:
    model = next(iter(config.models), "MODEL")
    scheme = "https" if config.edge.tls is not None else "http"
    # `edge.host: "::"` as a URL takes it: `http://[::]:8080`, not `http://:::8080`.
    base = f"{scheme}://{grpc_host(host)}:{port}/v1"
    print(
        f"""
Switchboard dev is up: edge {base} calling the router in-process (its port: {router}),
fake upstream behind it.

  curl -s {base}/chat/completions -H 'content-type: application/json' \\
    -H 'authorization: Bearer sk-dev' \\
    -d '{{"model": "{model}", "messages": [{{"role": "user", "content": "hello"}}]}}'

  python -c "import openai; c = openai.OpenAI(base_url='{base}', api_key='sk-dev'); \\
print(c.chat.completions.create(model='{model}', \\
messages=[{{'role': 'user', 'content': 'hello'}}]).choices[0].message.content)"

Ctrl-C stops everything.
""",
        flush=True,
    )
