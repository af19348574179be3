"""`switchboard`: router, edge, serve (router + edge in one process), dev (router + edge + fake
upstream), fake-upstream, check-config,
admin (router_service/admin_cli/)."""

from __future__ import annotations

# Only the standard library's lightest modules at import time: `main` guards SIGHUP before
# anything heavy loads (the config's pydantic models, grpc, asyncio: ~0.35 s that a SIGHUP
# would otherwise kill the process in). The rest is imported where it is used.
import argparse
import contextlib
import logging
import signal
import sys
from collections.abc import Coroutine, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import asyncio

log = logging.getLogger("switchboard")


def parser(*, admin: bool = True) -> argparse.ArgumentParser:
    """The `switchboard` command line (also what deploy/ examples are checked against);
    `admin=False` leaves `switchboard admin`'s package unloaded (a server's start)."""
    command_line = argparse.ArgumentParser(prog="switchboard", description=__doc__)
    sub = command_line.add_subparsers(dest="command", required=True)

    router = sub.add_parser("router", help="run the gRPC router")
    router.add_argument("--config", "-c", required=True)
    router.add_argument("--host")
    router.add_argument("--port", type=int)
    router.add_argument(
        "--metrics-port",
        type=int,
        help="Prometheus port instead of telemetry.prometheus_port (replicas sharing a file)",
    )

    edge = sub.add_parser("edge", help="run the OpenAI-compatible HTTP edge")
    edge.add_argument("--config", "-c", help="config file (its `edge:` section)")
    edge.add_argument("--host")
    edge.add_argument("--port", type=int)
    edge.add_argument("--router", action="append", help="router address; repeat for replicas")

    serve = sub.add_parser(
        "serve", help="router and edge in one process, the edge calling the router in-process"
    )
    serve.add_argument("--config", "-c", required=True)
    serve.add_argument(
        "--metrics-port", type=int, help="Prometheus port instead of telemetry.prometheus_port"
    )

    dev = sub.add_parser("dev", help="router + edge + fake upstream: the offline demo")
    dev.add_argument("--config", "-c", default="examples/dev.yaml")
    dev.add_argument("--scenarios", help="the fake upstream's rules; unset: the demo's if found")
    dev.add_argument("--fake-port", type=int, default=9100)

    fake = sub.add_parser("fake-upstream", help="run the fault-injecting fake upstream")
    fake.add_argument("--host", default="127.0.0.1")
    fake.add_argument("--port", type=int, default=9100)
    fake.add_argument("--scenarios", help="YAML list of {key, model, scenario} rules")
    fake.add_argument(
        "--fast",
        action="store_true",
        help="zero-delay mock without faults (raw ASGI, uvloop): the benchmarks' upstream",
    )

    check = sub.add_parser(
        "check-config", help="validate a config file and the TLS files it names, and exit"
    )
    check.add_argument("config")
    check.add_argument(
        "--role",
        choices=["router", "edge"],
        help="check only what this process reads (the edge: `edge:` and `telemetry:`, and only "
        "their environment variables); unset: everything",
    )
    if admin:
        from router_service.admin_cli import add_admin

        add_admin(sub)
    return command_line


class EarlySighup:
    """SIGHUP while the router starts, before `reloading` watches it: its default action would
    kill the process (a `systemctl reload` or a config-sync sidecar right after a restart), so it
    is remembered instead, and `reloading` runs the reload it asked for as soon as it watches.
    `main` installs it first thing, before the heavy imports."""

    def __init__(self) -> None:
        self.asked = False

    def install(self) -> None:
        # Not outside the main thread (ValueError), nor where there is no SIGHUP (Windows).
        with contextlib.suppress(ValueError, AttributeError):
            signal.signal(signal.SIGHUP, self._remember)

    def _remember(self, signum: int, frame: object) -> None:
        self.asked = True


_EARLY_SIGHUP = EarlySighup()


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["admin"]:  # a client, not a server: none of the setup below is its
        from router_service.admin_cli import main as admin_main

        return admin_main(argv[1:])
    # The commands whose SIGHUP means "reload" (the parser has no option before the command).
    # (The edge's SIGHUP only logs that it reloads nothing; remembered at start all the same.)
    if argv[:1] in (["router"], ["serve"], ["dev"], ["edge"]):
        _EARLY_SIGHUP.install()
    from router_service.errors import ConfigError, ListenError

    args = parser(admin=not argv or argv[0].startswith("-")).parse_args(argv)  # help lists it
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        if args.command == "check-config":
            return _check_config(args.config, args.role)
        if args.command == "fake-upstream" and args.fast:
            if args.scenarios:
                print(
                    "switchboard: --fast has no fault injection (no --scenarios)", file=sys.stderr
                )
                return 2
            from router_service.fake_upstream._fast import run_fast

            return run_fast(args.host, args.port)  # blocking: uvicorn runs its own uvloop loop
        from router_service import _serving

        runner = {
            "router": _serving.run_router,
            "edge": _serving.run_edge,
            "serve": _serving.run_serve,
            "dev": _serving.run_dev,
            "fake-upstream": _serving.run_fake,
        }[args.command]
        try:
            with contextlib.suppress(KeyboardInterrupt):
                run_server_loop(runner(args, _EARLY_SIGHUP))
        finally:
            _shutdown_telemetry()
    except ConfigError as exc:
        print(f"switchboard: invalid configuration:\n{exc}", file=sys.stderr)
        return 2
    except ListenError as exc:  # a port taken: one line, not a traceback
        print(f"switchboard: {exc}", file=sys.stderr)
        return 2
    return 0


def run_server_loop(main: Coroutine[Any, Any, None]) -> None:
    """Run a long-lived server process: on uvloop when it is installed (a dependency except on
    Windows and PyPy), with the garbage collector tuned for a server. Everything imported so
    far lives as long as the process, so it is frozen out of collections; and young-generation
    collections run less often, because a request allocates thousands of short-lived objects
    that reference counting frees anyway (profiles showed the collector at ~24% of the edge's
    busy time)."""
    import asyncio
    import gc

    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 20, 50)
    try:
        import uvloop
    except ImportError:
        asyncio.run(until_terminated(main))
    else:
        uvloop.run(until_terminated(main))


async def until_terminated(main: Coroutine[Any, Any, None]) -> None:
    """Run `main`; SIGTERM and Ctrl-C (SIGINT) cancel it, and the process then exits 0.

    SIGTERM is how Kubernetes, systemd and `docker stop` ask a process to stop. Left to its
    default action it kills the process at once: every open stream cut mid-answer, leases left
    in Redis until their TTL, the last spans never exported. Cancelled instead, the server's
    own shutdown runs (the router's health goes NOT_SERVING, it takes no new calls and gives
    the open ones `server.shutdown_grace_s`; the edge lets uvicorn drain). A second signal
    cancels again, cutting the wait for the open calls short (asyncio's own second Ctrl-C
    would raise KeyboardInterrupt wherever the loop is, mid-shutdown)."""
    import asyncio

    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    terminated = 0  # signals received, each a cancellation of `task`

    def terminate(name: str) -> None:
        nonlocal terminated
        if not terminated:
            log.info("%s: shutting down", name)
        elif terminated == 1:
            log.warning("%s again: stopping now, open calls and requests are cut", name)
        terminated += 1
        task.cancel()

    stopping = (signal.SIGTERM, signal.SIGINT)
    # Not on Windows, nor outside the main thread: there, they keep their default actions.
    with contextlib.suppress(NotImplementedError, RuntimeError):
        for signum in stopping:
            loop.add_signal_handler(signum, terminate, signal.Signals(signum).name)
    try:
        await main
    except asyncio.CancelledError:
        if not terminated:
            raise
        for _ in range(terminated):
            task.uncancel()
    finally:
        if terminated:
            _stopped_for_good(loop)
        else:
            with contextlib.suppress(NotImplementedError, RuntimeError):
                for signum in stopping:
                    loop.remove_signal_handler(signum)


def _stopped_for_good(loop: asyncio.AbstractEventLoop) -> None:
    """A stop asked for is done: what is left is the process's exit (the loop's end, the last
    spans' export). Another SIGTERM or Ctrl-C there (an operator pressing it again), back at its
    default action, would kill it (exit status 143 or 130 after a clean stop, its last spans
    lost), and so would a SIGHUP, whose handlers go with the loop: from now on they are ignored."""
    names = ("SIGTERM", "SIGINT", "SIGHUP")  # no SIGHUP on Windows
    signals = {getattr(signal, name) for name in names if hasattr(signal, name)}
    # Held back meanwhile (not on Windows): one arriving between the loop's handler and the
    # ignoring would meet the default action the removal sets.
    masked = hasattr(signal, "pthread_sigmask")
    if masked:
        signal.pthread_sigmask(signal.SIG_BLOCK, signals)
    try:
        for signum in signals:
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(signum)  # else the loop's close sets its default
            _ignore(signum)
    finally:
        if masked:  # one held back meanwhile is dropped now: ignored
            signal.pthread_sigmask(signal.SIG_UNBLOCK, signals)


def _ignore(signum: int) -> None:
    """Ignore `signum` from now on. A Ctrl-C that another thread took while SIGINT was at its
    default (Python's handler, raising KeyboardInterrupt here) is one more press: ignored."""
    while True:
        try:
            with contextlib.suppress(ValueError):  # not in the main thread: nothing changed
                signal.signal(signum, signal.SIG_IGN)
            return
        except KeyboardInterrupt:
            continue


def _check_config(path: str, role: str | None) -> int:
    """Load `path` as `role` would (both roles when None) and read the TLS files it serves
    and presents as that process does at start; 2 with every problem when something fails."""
    from router_service._listening import grpc_host
    from router_service.config import load_config, load_edge_config, tls_problems
    from router_service.errors import ConfigError

    if role == "edge":
        edge = load_edge_config(path).edge
        where = f"{grpc_host(edge.host)}:{edge.port}"  # `::1` as `[::1]:8080`, not `::1:8080`
        summary = f"the edge on {where}, router {edge.router_target}"
    else:
        config = load_config(path)
        edge = config.edge
        groups = ", ".join(config.models) or "none"
        callers = f"{len(config.auth.clients)} client key(s)"
        if config.auth.open:
            callers += ", OPEN to callers without a key"
        summary = f"{len(config.providers)} provider(s), model groups: {groups}; {callers}"
    files: dict[str, Any] = {}
    if role != "edge":
        files["server.tls"] = config.server.tls
    if role != "router":
        files.update({"edge.tls": edge.tls, "edge.router_tls": edge.router_tls})
    problems = tls_problems(files, log)
    if problems:
        raise ConfigError("\n".join(f"{path}: {problem}" for problem in problems))
    print(f"{path}: OK — {summary}")
    return 0


def without_httpx_cli() -> None:
    """Keep httpx's command-line client out of a server process. `import httpx` imports it
    whenever click is importable (uvicorn depends on click) and drops it only when rich or
    pygments is missing, after click's 12 modules are loaded: ~1.1 MiB of the router's idle RSS
    for a client no server runs (with rich installed, 84 modules and ~3.5 MiB). A None entry in
    `sys.modules` makes that one import fail, which httpx handles: `httpx.main` then says what
    to install. Nothing else of httpx changes."""
    if "httpx" not in sys.modules:
        # None, which typeshed does not allow there, is what makes an import fail.
        sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]


def _shutdown_telemetry() -> None:
    if "router_service.telemetry" in sys.modules:  # configured only by the serving commands
        from router_service.telemetry import shutdown_telemetry

        shutdown_telemetry()


if __name__ == "__main__":
    raise SystemExit(main())
