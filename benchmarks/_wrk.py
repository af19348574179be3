"""Non-streaming load with Debian's `wrk` (a C load generator: it costs far less CPU than a Python
client). A generated Lua script sets the POST body and headers and prints a JSON summary."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

_LUA = """\
wrk.method = "POST"
wrk.body = {body}
{headers}
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {{"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,' ..
    '"status":%d,"timeout":%d,"p50":%d,"p90":%d,"p99":%d,"mean":%f,"max":%d}}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.mean,
    latency.max))
end
"""


def _lua_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def find_wrk(install: bool) -> str | None:
    """`wrk` on PATH; with `install`, Debian's package first when running as root."""
    found = find_tool("wrk", install)
    if found is None and install:
        print("bench: no wrk; using the Python client", flush=True)
    return found


def find_tool(name: str, install: bool) -> str | None:
    """A tool on PATH (`wrk`, `valgrind`); with `install`, `apt-get install -y <name>` first
    when it is missing and this runs as root."""
    found = shutil.which(name)
    if found or not install or os.geteuid() != 0 or shutil.which("apt-get") is None:
        return found
    print(f"bench: {name} is missing; installing Debian's package (apt-get install -y {name})")
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", name]):
        done = subprocess.run(cmd, capture_output=True, timeout=600, check=False)
        if done.returncode != 0:
            print(f"bench: `{' '.join(cmd)}` failed", flush=True)
            return None
    return shutil.which(name)


def write_script(path: Path, body: dict[str, Any], headers: dict[str, str]) -> Path:
    lines = "\n".join(
        f"wrk.headers[{_lua_string(k)}] = {_lua_string(v)}"
        for k, v in {"Content-Type": "application/json", **headers}.items()
    )
    path.write_text(_LUA.format(body=_lua_string(json.dumps(body)), headers=lines))
    return path


def run_wrk(
    wrk: str, url: str, script: Path, concurrency: int, duration_s: float
) -> dict[str, Any]:
    """One wrk run (one thread, `concurrency` connections), as the Python client's result shape."""
    argv = [
        wrk,
        "-t1",
        f"-c{concurrency}",
        f"-d{max(1, round(duration_s))}s",
        "--timeout",
        "30s",
        "-s",
        str(script),
        url,
    ]
    done = subprocess.run(
        argv, capture_output=True, text=True, timeout=duration_s + 60, check=False
    )
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("WRKJSON ")), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(
            f"wrk failed ({done.returncode}): {done.stdout[-500:]} {done.stderr[-500:]}"
        )
    raw = json.loads(line[len("WRKJSON ") :])
    window = raw["duration_us"] / 1e6
    errors = raw["connect"] + raw["read"] + raw["write"] + raw["status"] + raw["timeout"]
    return {
        "completed": raw["requests"] - raw["status"],
        "completed_total": raw["requests"],
        "errors": errors,
        "error_samples": [f"wrk errors: {raw}"] if errors else [],
        "window_s": window,
        "rps": (raw["requests"] - raw["status"]) / window if window > 0 else 0.0,
        "latency_ms": {
            "p50": raw["p50"] / 1000,
            "p90": raw["p90"] / 1000,
            "p99": raw["p99"] / 1000,
            "mean": raw["mean"] / 1000,
            "max": raw["max"] / 1000,
        },
        "ttft_ms": None,
        "chunks": 0,
        "chunks_per_s": 0.0,
    }
