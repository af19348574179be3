"""The router's upstream HTTP transport: httpx's pool (httpcore), aiohttp's, and Switchboard's own
(`LeanTransport`, asyncio + httptools), side by side (issue #10).

    .venv/bin/python -m benchmarks.http_transport [--rounds 3] [--requests 3000] [--no-router]

1. **client**: this process (uvloop) sends chat completions to the fast fake upstream (its own
   process) through `create_http_client(HttpConfig(transport=...))`, the client the router
   builds, at fixed concurrency; non-streaming at each level, streamed (25 chunks, read line by
   line as the adapters do) at c=16. Reported: requests/s, p50, and this process's CPU per
   request (the transport's cost, undisturbed by the upstream's).
2. **router**: one `switchboard router` per transport on the same upstream, driven over gRPC by
   `benchmarks._load` (Chat at each level, ChatStream at c=16); reported with the router's CPU
   per 1,000 requests. The routers live through the whole part, so their pools keep the idle
   connections earlier runs left (until `keepalive_expiry_s`), as a production router's do.

The transports take turns within every level and round, the order rotated each round; figures
are medians over rounds. Prints markdown tables; `--json FILE` keeps the raw figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import orjson

from benchmarks._load import percentiles
from benchmarks._measure import LoadPlan, measure
from benchmarks._procs import ProcessGroup, free_port, sigterm_as_interrupt, wait_tcp
from benchmarks._systems import (
    CALLER_KEY,
    REPO,
    UPSTREAM_MODEL,
    System,
    start_upstream,
    switchboard_config,
)
from router_service.config import HttpConfig
from router_service.providers import create_http_client

TRANSPORTS = ("httpx", "aiohttp", "lean")
STREAM_LEVEL = 16
BURST = 256
PROMPT = [{"role": "user", "content": "Say something short about routers."}]


def _body(stream: bool) -> bytes:
    body: dict[str, Any] = {"model": UPSTREAM_MODEL, "messages": PROMPT, "max_tokens": 64}
    if stream:
        body["stream"] = True
    return orjson.dumps(body)


def _client(transport: str) -> httpx.AsyncClient:
    # The limits of the benchmark harness's router config (room for many streams).
    config = HttpConfig.model_validate(
        {"max_connections": 4096, "max_keepalive_connections": 1024, "transport": transport}
    )
    return create_http_client(config)


# ---- part 1: the client alone ----------------------------------------------------------------


def _one(client: httpx.AsyncClient, url: str, stream: bool) -> Callable[[], Awaitable[None]]:
    headers = {"authorization": "Bearer sk-bench", "content-type": "application/json"}
    content = _body(stream)
    timeout = httpx.Timeout(connect=5.0, read=None if stream else 60.0, write=60.0, pool=60.0)

    async def unary() -> None:
        response = await client.post(url, content=content, headers=headers, timeout=timeout)
        if response.status_code != 200 or not response.content:
            raise RuntimeError(f"HTTP {response.status_code}")

    async def streamed() -> None:
        request = client.build_request(
            "POST", url, content=content, headers=headers, timeout=timeout
        )
        response = await client.send(request, stream=True)
        try:
            events = [line async for line in response.aiter_lines() if line.startswith("data:")]
        finally:
            await response.aclose()
        if response.status_code != 200 or events[-1] != "data: [DONE]":
            raise RuntimeError(f"HTTP {response.status_code}, {len(events)} events")

    return streamed if stream else unary


async def _closed_loop(
    one: Callable[[], Awaitable[None]], concurrency: int, count: int
) -> dict[str, Any]:
    """`count` requests by `concurrency` workers: wall time, latencies, CPU of this process."""
    latencies: list[float] = []
    left = [count]

    async def worker() -> None:
        while left[0] > 0:
            left[0] -= 1
            start = time.perf_counter()
            await one()
            latencies.append(time.perf_counter() - start)

    cpu0, wall0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    p = percentiles(latencies) or {}
    return {
        "rps": count / wall,
        "p50_ms": p.get("p50"),
        "p99_ms": p.get("p99"),
        "client_cpu_us": cpu / count * 1e6,
    }


# (kind, measured concurrency, concurrency of the warm-up burst before it)
Case = tuple[str, int, int]


def client_cases(levels: list[int]) -> list[Case]:
    """Each level warmed at itself; a stream case; and c=1 on a pool that a burst of
    `BURST` left holding that many idle connections (httpcore scans them all per request)."""
    return [
        *(("unary", c, c) for c in levels),
        ("stream", STREAM_LEVEL, STREAM_LEVEL),
        (f"unary after {BURST}-burst", 1, BURST),
    ]


async def _client_run(transport: str, url: str, case: Case, count: int) -> dict[str, Any]:
    """One measured run on a fresh client, warmed up first (its pool, lazy imports)."""
    kind, level, burst = case
    stream = kind == "stream"
    client = _client(transport)
    try:
        await _closed_loop(_one(client, url, stream), burst, max(100, burst * 4))
        n = count if not stream else max(200, count // 5)
        return await _closed_loop(_one(client, url, stream), level, n)
    finally:
        await client.aclose()


async def client_part(base: str, levels: list[int], rounds: int, count: int) -> dict[str, Any]:
    url = f"{base}/chat/completions"
    runs: dict[str, list[dict[str, Any]]] = {}
    for r in range(rounds):
        for case in client_cases(levels):
            for name in _order(r):
                result = await _client_run(name, url, case, count)
                runs.setdefault(f"{case[0]}|{case[1]}|{name}", []).append(result)
                _progress(f"client {case[0]} c={case[1]} {name} round {r + 1}: {_fmt(result)}")
    return {key: _median(results) for key, results in runs.items()}


# ---- part 2: the router, over gRPC -----------------------------------------------------------


def _start_router(group: ProcessGroup, base: str, transport: str, tmp: Path) -> System:
    port, dead = free_port(), free_port()
    text = switchboard_config(base, port, dead)
    text = text.replace(
        "max_keepalive_connections: 1024}",
        f"max_keepalive_connections: 1024, transport: {transport}}}",
    )
    if f"transport: {transport}" not in text:
        raise RuntimeError("the harness's router config no longer has the expected http line")
    config = tmp / f"router-{transport}.yaml"
    config.write_text(text)
    argv = [sys.executable, "-m", "router_service", "router", "--config", str(config)]
    proc = group.start(f"router-{transport}", argv, env={"PYTHONPATH": str(REPO)}, cwd=REPO)
    wait_tcp(port, proc, 120)
    auth = {"authorization": f"Bearer {CALLER_KEY}"}
    return System(transport, grpc_target=f"127.0.0.1:{port}", headers=auth, procs=[proc])


def router_part(
    group: ProcessGroup, base: str, levels: list[int], rounds: int, duration_s: float
) -> dict[str, Any]:
    parent = REPO / "benchmarks/results/tmp"
    parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="bench-transport-", dir=parent))
    systems = {t: _start_router(group, base, t, tmp) for t in TRANSPORTS}
    plan = LoadPlan(
        duration_s=duration_s,
        warmup_s=1.0,
        wrk=None,
        tmp=tmp,
        started_pids=lambda: [pid for proc in group.procs for pid in proc.pids()],
    )
    cases = [("unary-py", c) for c in levels] + [("stream", STREAM_LEVEL)]
    runs: dict[str, list[dict[str, Any]]] = {}
    for r in range(rounds):
        for scenario, level in cases:
            for name in _order(r):
                raw = measure(systems[name], scenario, level, plan)
                if raw["errors"]:
                    raise RuntimeError(f"{name} {scenario} c={level}: {raw['error_samples']}")
                result = {
                    "rps": raw["rps"],
                    "p50_ms": raw["latency_ms"]["p50"],
                    "p99_ms": raw["latency_ms"]["p99"],
                    "router_cpu_ms_per_1k": raw["cpu_s_per_1k"] * 1000,
                    "other_cores": raw["other_cores"],
                }
                kind = "unary" if scenario == "unary-py" else "stream"
                runs.setdefault(f"{kind}|{level}|{name}", []).append(result)
                _progress(f"router {kind} c={level} {name} round {r + 1}: {_fmt(result)}")
    return {key: _median(results) for key, results in runs.items()}


# ---- output ----------------------------------------------------------------------------------


def _order(round_index: int) -> tuple[str, ...]:
    """The transports' turn order, rotated each round so none always runs first."""
    k = round_index % len(TRANSPORTS)
    return TRANSPORTS[k:] + TRANSPORTS[:k]


def _median(results: list[dict[str, Any]]) -> dict[str, Any]:
    return {k: statistics.median(r[k] for r in results) for k in results[0]}


def _fmt(result: dict[str, Any]) -> str:
    return " ".join(f"{k}={v:.4g}" for k, v in result.items())


def _progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def table(title: str, figures: dict[str, Any], cost: str, cost_label: str) -> str:
    """One row per case; per transport its requests/s, p50 and cost."""
    head = ["case", "c"]
    for name in TRANSPORTS:
        head += [f"{name} req/s", f"{name} p50 ms", f"{name} {cost_label}"]
    lines = [
        f"### {title}",
        "",
        "| " + " | ".join(head) + " |",
        "|---|--:|" + "--:|" * (3 * len(TRANSPORTS)),
    ]
    keys = list(dict.fromkeys(k.rsplit("|", 1)[0] for k in figures))
    for key in keys:
        kind, level = key.split("|")
        cells = [kind, level]
        for name in TRANSPORTS:
            f = figures[f"{key}|{name}"]
            cells += [f"{f['rps']:,.0f}", f"{f['p50_ms']:.2f}", f"{f[cost]:,.0f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.http_transport")
    p.add_argument("--levels", default="1,16,64,256", help="concurrency levels, non-streaming")
    p.add_argument("--rounds", type=int, default=3, help="rounds; figures are medians")
    p.add_argument("--requests", type=int, default=3000, help="client part: requests per run")
    p.add_argument("--duration", type=float, default=4.0, help="router part: seconds per run")
    p.add_argument("--no-router", action="store_true", help="the client part only")
    p.add_argument("--json", type=Path, help="write the raw figures here")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    import uvloop

    args = parse_args(argv)
    levels = [int(x) for x in args.levels.split(",")]
    out: dict[str, Any] = {}
    log_dir = Path(tempfile.mkdtemp(prefix="bench-transport-logs-"))
    with sigterm_as_interrupt(), ProcessGroup(log_dir) as group:
        _, base = start_upstream(group)
        out["client"] = uvloop.run(client_part(base, levels, args.rounds, args.requests))
        print(
            table(
                "Client: create_http_client → fast fake upstream",
                out["client"],
                "client_cpu_us",
                "CPU µs/req",
            )
        )
        if not args.no_router:
            out["router"] = router_part(group, base, levels, args.rounds, args.duration)
            print()
            print(
                table(
                    "Router over gRPC (benchmarks._load)",
                    out["router"],
                    "router_cpu_ms_per_1k",
                    "router CPU ms/1k",
                )
            )
    if args.json is not None:
        args.json.write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
