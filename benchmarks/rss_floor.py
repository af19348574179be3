"""What the libraries alone cost in RSS: `python -m benchmarks.rss_floor`.

Issue #10's memory target (router + edge idle RSS ≤ 1/3 of LiteLLM's, ~127 MiB on this machine)
sits close to what the processes' libraries take before any Switchboard code runs. For each
process this imports, in a fresh interpreter of the bench's runtime virtualenv (`_runtime.py`),
the libraries it runs on, step by step, and prints the RSS after each step; then what grpc's
runtime adds once a channel or server exists (its EventEngine threads). Compare with the idle
RSS `make bench` reports. Prints the figures; no file is written.
"""

from __future__ import annotations

import subprocess
import sys

from benchmarks._runtime import runtime_python
from benchmarks._systems import REPO

_BASE = ["uvloop"]  # after asyncio, which the probe imports first (and with it ssl)
_SHARED = [
    "grpc.aio",
    "pydantic.main",
    "clients.switchboard.v1.router_service_pb2_grpc",
    "clients.switchboard.v1.admin_service_pb2_grpc",
    "opentelemetry.sdk.metrics",  # not the SDK's tracer: loaded only when tracing is on
    "opentelemetry.exporter.prometheus",
    "prometheus_client",
    "yaml",
    "orjson",
]
_HTTPTOOLS_PROTOCOL = "uvicorn.protocols.http.httptools_impl"
STEPS = {  # process -> the libraries it imports, in the order the steps are printed
    "router": [*_BASE, *_SHARED, "httpx", "httptools"],
    "edge": [*_BASE, *_SHARED, "fastapi", "uvicorn.server", _HTTPTOOLS_PROTOCOL],
}
_PROBE = """
import asyncio, importlib, sys
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4 / 1024
print(f"python+asyncio {rss():.1f}")
for name in sys.argv[1:]:
    importlib.import_module(name)
    print(f"{name} {rss():.1f}")
async def runtime():
    import grpc
    channel = grpc.aio.insecure_channel("127.0.0.1:1")  # grpc's runtime starts with the first
    print(f"grpc runtime {rss():.1f}")
    await channel.close()
asyncio.run(runtime())
"""


def floor(python: str, modules: list[str]) -> list[tuple[str, float]]:
    done = subprocess.run(
        [python, "-c", _PROBE, *modules],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        env={"PYTHONPATH": str(REPO)},
        cwd=REPO,
    )
    steps = [line.rsplit(" ", 1) for line in done.stdout.splitlines()]
    return [(name, float(mib)) for name, mib in steps]


def main() -> int:
    python = runtime_python(REPO)
    total = 0.0
    for process, modules in STEPS.items():
        steps = floor(python, modules)
        total += steps[-1][1]
        print(f"{process}: RSS after each import (MiB), in a fresh {python}")
        previous = 0.0
        for name, mib in steps:
            print(f"  {mib:6.1f}  (+{mib - previous:4.1f})  {name}")
            previous = mib
    print(f"router + edge, libraries and grpc's runtime only: {total:.1f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
