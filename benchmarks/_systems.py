"""The systems under test, each started as subprocesses on free loopback ports.

- `direct`: the fast fake upstream itself (the baseline every "added" number subtracts).
- `switchboard`: router + edge (`switchboard router`, `switchboard edge`), one process each.
- `switchboard-grpc`: the same router called directly over gRPC (no edge).
- `switchboard-1p`: router + edge in one process (`switchboard serve`), the edge calling the
  router in-process (`start_switchboard(one_process=True)`).
- `litellm`: LiteLLM proxy (the peer) with `--num_workers` set explicitly.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks._peer import Peer, master_key, peer_config
from benchmarks._procs import Proc, ProcessGroup, free_port, wait_http, wait_tcp
from benchmarks._runtime import runtime_python

REPO = Path(__file__).resolve().parent.parent
MODEL = "bench"  # the public model name on every system
UPSTREAM_MODEL = "bench-model"
FALLBACK_MODEL = "bench-fallback"  # first deployment refuses connections, second answers
IDLE_MODEL = "bench-idle"  # upstream streams one chunk, then holds the stream idle
CALLER_KEY = "sk-bench-caller"
_STARTUP_S = 120.0


@dataclass
class System:
    name: str
    model: str = MODEL
    chat_url: str | None = None
    grpc_target: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    procs: list[Proc] = field(default_factory=list)  # the processes whose cost is measured

    def pids(self) -> list[int]:
        return [pid for proc in self.procs for pid in proc.pids()]

    def alive(self) -> bool:
        return all(proc.alive() for proc in self.procs)


def _python(src: Path | None = None) -> list[str]:
    """Switchboard's command line: for a measured tree `src`, from the runtime virtualenv (see
    _runtime.py); without one (the harness's fake upstream), from this Python."""
    python = sys.executable if src is None else runtime_python(src)
    return [python, "-m", "router_service"]


def _env(src: Path) -> dict[str, str]:
    """Run Switchboard from `src` (the repo, or a snapshot of it: see _source.py)."""
    return {"PYTHONPATH": str(src)}


def start_upstream(group: ProcessGroup, scenarios: Path | None = None) -> tuple[System, str]:
    """The fast fake upstream (the harness's tool: always from the work tree); returns the
    `direct` system and the OpenAI base URL. With `scenarios` (a rules file), the
    fault-injecting fake upstream instead, with those rules (`benchmarks.soak`)."""
    port = free_port()
    mode = ["--fast"] if scenarios is None else ["--scenarios", str(scenarios)]
    argv = [*_python(), "fake-upstream", *mode, "--port", str(port)]
    proc = group.start("upstream", argv, env=_env(REPO), cwd=REPO)
    base = f"http://127.0.0.1:{port}/v1"
    wait_http(f"{base}/models", proc, 30)
    direct = System("direct", model=UPSTREAM_MODEL, chat_url=f"{base}/chat/completions")
    direct.procs = [proc]
    return direct, base


def switchboard_config(
    upstream_base: str, router_port: int, dead_port: int, with_auth: bool = True
) -> str:
    auth = ""
    if with_auth:  # callers authenticate, as in production: the cost is part of the path
        digest = hashlib.sha256(CALLER_KEY.encode()).hexdigest()
        auth = f"auth:\n  clients: [{{name: bench, key_sha256: {digest}}}]\n"
    return (
        auth
        + f"""\
# Written by benchmarks/: Switchboard in front of the fast fake upstream.
providers:
  fast:
    kind: openai
    base_url: {upstream_base}
    keys: [sk-bench-upstream]
  dead:  # nothing listens here: every connection is refused
    kind: openai
    base_url: http://127.0.0.1:{dead_port}/v1
    keys: [sk-bench-dead]
    timeouts: {{connect_s: 2}}
models:
  {MODEL}:
    deployments: [{{provider: fast, model: {UPSTREAM_MODEL}}}]
  {FALLBACK_MODEL}:
    deployments:
      - {{provider: dead, model: {UPSTREAM_MODEL}}}
      - {{provider: fast, model: {UPSTREAM_MODEL}}}
  {IDLE_MODEL}:
    deployments: [{{provider: fast, model: hold-300}}]
server: {{host: 127.0.0.1, port: {router_port}}}
# Room for the 2,000-idle-streams measurement (defaults: 1,000 connections, 200 kept alive).
http: {{max_connections: 4096, max_keepalive_connections: 1024}}
# A refused deployment is cooled for a millisecond only, so every request of the failover
# measurement pays the refused attempt (the worst case) instead of skipping it for 15 s.
cooldowns: {{transient_s: 0.001}}
"""
    )


def start_switchboard(
    group: ProcessGroup,
    upstream_base: str,
    tmp: Path,
    src: Path = REPO,
    *,
    variant: str | None = None,
    env: dict[str, str] | None = None,
    extra_config: str = "",
    launcher: Callable[[str], list[str]] | None = None,
    startup_s: float = _STARTUP_S,
    config_text: Callable[[int], str] | None = None,
    router_args: Sequence[str] = (),
    one_process: bool = False,
) -> tuple[System, System]:
    """Router + edge; returns the HTTP system (edge) and the gRPC system (router alone).

    A `variant` (e.g. `tracing`) is a second stack beside the plain one: its config, logs and
    system names carry the variant's name; `env` goes to both processes and `extra_config`
    (top-level YAML) is appended to the router's config. `launcher(name)` is put before each
    process's command line (e.g. valgrind, for `instructions.py`). `config_text(router_port)`
    gives the router's whole config instead of the bench's (`benchmarks.soak`), and
    `router_args` go to its command line (e.g. `--metrics-port`). `one_process`: both in one
    `switchboard serve` process (`switchboard-1p`; its `launcher` name is `serve`)."""
    suffix = f"-{variant}" if variant else ""
    router_port, edge_port, dead_port = free_port(), free_port(), free_port()
    config = tmp / f"switchboard{suffix}.yaml"
    if one_process:  # the edge's address is the config's in `serve`
        extra_config += f"edge: {{host: 127.0.0.1, port: {edge_port}}}\n"
    if config_text is None:
        _write_config(config, src, upstream_base, router_port, dead_port, extra_config)
    else:
        config.write_text(config_text(router_port))
        if problem := _config_problem(config, src):
            raise RuntimeError(f"the config does not load:\n{problem}")
    proc_env = {**(env or {}), **_env(src)}

    def wrapped(name: str) -> list[str]:
        return [*(launcher(name) if launcher else []), *_python(src)]

    if one_process:
        argv = [*wrapped("serve"), "serve", "--config", str(config)]
        return _start_serve(group, argv, proc_env, src, (router_port, edge_port), startup_s)
    argv = [*wrapped("router"), "router", "--config", str(config), *router_args]
    router = group.start(f"router{suffix}", argv, env=proc_env, cwd=src)
    wait_tcp(router_port, router, startup_s)
    target = f"127.0.0.1:{router_port}"
    argv = [*wrapped("edge"), *_edge_arguments(edge_port, target)]
    edge = group.start(f"edge{suffix}", argv, env=proc_env, cwd=src)
    wait_http(f"http://127.0.0.1:{edge_port}/readyz", edge, startup_s)
    auth = {"authorization": f"Bearer {CALLER_KEY}"}
    http = System(
        f"switchboard{suffix}",
        chat_url=f"http://127.0.0.1:{edge_port}/v1/chat/completions",
        headers=auth,
        procs=[router, edge],
    )
    grpc = System(f"switchboard-grpc{suffix}", grpc_target=target, headers=auth, procs=[router])
    return http, grpc


def _start_serve(
    group: ProcessGroup,
    argv: list[str],
    env: dict[str, str],
    src: Path,
    ports: tuple[int, int],
    startup_s: float,
) -> tuple[System, System]:
    """`switchboard serve` (`argv`) with its router and edge on `ports`: the edge
    (`switchboard-1p`) and the router's port."""
    router_port, edge_port = ports
    proc = group.start("serve", argv, env=env, cwd=src)
    wait_tcp(router_port, proc, startup_s)
    edge_url = f"http://127.0.0.1:{edge_port}"
    wait_http(f"{edge_url}/readyz", proc, startup_s)
    auth = {"authorization": f"Bearer {CALLER_KEY}"}
    http = System(
        "switchboard-1p", chat_url=f"{edge_url}/v1/chat/completions", headers=auth, procs=[proc]
    )
    target = f"127.0.0.1:{router_port}"
    grpc = System("switchboard-1p-grpc", grpc_target=target, headers=auth, procs=[proc])
    return http, grpc


def _write_config(
    config: Path, src: Path, upstream_base: str, router_port: int, dead_port: int, extra: str
) -> None:
    """The bench config (`extra` appended), checked with the `src` tree's own `check-config`."""
    for with_auth in (True, False):  # trees from before client auth reject an `auth:` section
        text = switchboard_config(upstream_base, router_port, dead_port, with_auth)
        config.write_text(text + extra)
        problem = _config_problem(config, src)
        if problem is None:
            return
        if not with_auth or "auth" not in problem:
            raise RuntimeError(f"the bench config does not load:\n{problem}")


def _config_problem(config: Path, src: Path) -> str | None:
    """What the `src` tree's own `check-config` says is wrong with `config`; None: it loads."""
    check = subprocess.run(
        [*_python(src), "check-config", str(config)],
        capture_output=True,
        text=True,
        env={**os.environ, **_env(src)},
        cwd=src,
        timeout=60,
        check=False,
    )
    return None if check.returncode == 0 else check.stderr + check.stdout


def _edge_arguments(port: int, router_target: str) -> list[str]:
    # --host is given explicitly: the edge's settings do not carry a host of their own.
    return ["edge", "--host", "127.0.0.1", "--port", str(port), "--router", router_target]


def start_peer(
    group: ProcessGroup, peer: Peer, upstream_base: str, tmp: Path, workers: int
) -> System:
    port = free_port()
    config = tmp / "litellm.yaml"
    config.write_text(peer_config(upstream_base, MODEL, UPSTREAM_MODEL))
    key = master_key()
    env = {
        "LITELLM_MASTER_KEY": key,
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "PYTHONPATH": "",
        "VIRTUAL_ENV": str(peer.executable.parent.parent),
        "PATH": f"{peer.executable.parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    argv = [
        str(peer.executable),
        "--config",
        str(config),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--num_workers",
        str(workers),
    ]
    proc = group.start("litellm", argv, env=env, cwd=tmp)
    wait_http(f"http://127.0.0.1:{port}/health/liveliness", proc, _STARTUP_S)
    return System(
        "litellm",
        chat_url=f"http://127.0.0.1:{port}/v1/chat/completions",
        headers={"authorization": f"Bearer {key}"},
        procs=[proc],
    )
