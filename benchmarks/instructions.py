"""Instructions per request under callgrind: `python -m benchmarks.instructions`.

Timings on this shared 2-core machine move with its neighbours (steal time, other jobs): on
2026-12-02 the same commit measured 198–525 req/s from one run to the next. Instruction counts do
not: callgrind counts what the router and the edge execute, and the same build gives the same
count within ~2 %. This is the tool to judge a change A/B (the work tree against `--snapshot
REV`) when timings are too noisy; the targets stay with `make bench`.

For each variant (`plain`: no telemetry export; `tracing`: every request sampled, batch export
to the OTLP sink, as the bench's tracing variant; `sampled-out`: the same with
`parentbased_traceidratio` at 0, what a request the sampler drops costs; `redis`: shared state
on the Redis at 127.0.0.1:6379, as the bench's Redis variant, Redis's own work not counted;
`stream`: plain, but each request is the bench's streamed chat request, read to its `[DONE]`:
the upstream's role chunk, 25 content chunks and finish chunk, i.e. what a stream and its first
token cost; `one-process`, `one-process-stream` and `one-process-tracing`: plain, stream and
tracing with router and edge in one `switchboard serve` process, the edge calling the router
in-process) it starts the bench's stack
(fast fake upstream, router, edge) with each process under `valgrind --tool=callgrind`, warms
them up, zeroes the counters (`callgrind_control -z`), sends N requests one at a time through
the edge, dumps the counters (`callgrind_control -d`) and prints the instructions per request of
each process (`--keep DIR` keeps the dumps, for `callgrind_annotate`). The batch processor
exports full batches of 128 spans (256 requests make a whole number of them in both processes),
so encoding and export are counted. valgrind is installed with apt-get when missing (as root);
~6 minutes per variant.
"""

from __future__ import annotations

import argparse
import json
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

from benchmarks import _source
from benchmarks._measure import chat_body
from benchmarks._procs import ProcessGroup, sigterm_as_interrupt
from benchmarks._systems import start_switchboard, start_upstream
from benchmarks._variants import drop_keys, redis_state_yaml, start_sink
from benchmarks._wrk import find_tool

VARIANTS = (
    "plain",
    "tracing",
    "sampled-out",
    "redis",
    "stream",
    "one-process",
    "one-process-stream",
    "one-process-tracing",
)
# Variants that send the bench's streamed request instead of its plain one.
STREAMED = frozenset({"stream", "one-process-stream"})
# Variants of router and edge in one `switchboard serve` process (`switchboard-1p`).
ONE_PROCESS = frozenset({"one-process", "one-process-stream", "one-process-tracing"})
# Variants that trace every request (or drop every trace at its root: `sampled-out`).
TRACED = frozenset({"tracing", "sampled-out", "one-process-tracing"})
_TOTALS = re.compile(r"^(?:summary|totals):\s+(\d+)", re.MULTILINE)


def dumped_instructions(text: str) -> int:
    """The instruction count (event Ir) of one callgrind dump."""
    found = [int(n) for n in _TOTALS.findall(text)]
    if not found:
        raise ValueError("no summary or totals line: not a callgrind dump")
    return max(found)


def _send(url: str, headers: dict[str, str], count: int, stream: bool) -> None:
    body = json.dumps(chat_body("bench", stream)).encode()
    for _ in range(count):
        request = urllib.request.Request(url, body, {**headers, "content-type": "application/json"})
        with urllib.request.urlopen(request, timeout=120) as response:
            answer = response.read()
        if stream and not answer.rstrip().endswith(b"data: [DONE]"):
            raise RuntimeError(f"a stream ended without [DONE]: {answer[-200:]!r}")


def _callgrind(*args: str) -> None:
    subprocess.run(["callgrind_control", *args], capture_output=True, timeout=120, check=True)


def measure_variant(
    variant: str, requests: int, warmup: int, src: Path, tmp: Path
) -> dict[str, float]:
    """Instructions per request of router and edge, in millions."""
    out = tmp / variant
    out.mkdir(parents=True, exist_ok=True)

    def launcher(name: str) -> list[str]:
        return ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}/{name}.out"]

    with ProcessGroup(out) as group:
        _, upstream = start_upstream(group)
        env: dict[str, str] = {}
        if variant in TRACED:
            _, env = start_sink(group)
            if variant == "sampled-out":  # tracing on, and every trace dropped at its root
                env["OTEL_TRACES_SAMPLER"] = "parentbased_traceidratio"
                env["OTEL_TRACES_SAMPLER_ARG"] = "0"
            # Exports of full batches only, as under load (at one request at a time under
            # valgrind the 5 s timer would send a few spans each); 128 spans, so that both
            # processes export within the window (the edge makes 1 span a request, the router 2;
            # one process, 2; with `telemetry.upstream_http_spans` the router 3, one process 3).
            env["OTEL_BSP_SCHEDULE_DELAY"] = "3600000"
            env["OTEL_BSP_MAX_EXPORT_BATCH_SIZE"] = "128"
        prefix = f"instr-{secrets.token_hex(6)}"  # this run's own keys, dropped at the end
        state = redis_state_yaml(prefix) if variant == "redis" else ""
        http, _ = start_switchboard(
            group,
            upstream,
            out,
            src,
            variant=variant,
            env=env,
            extra_config=state,
            launcher=launcher,
            startup_s=600,
            one_process=variant in ONE_PROCESS,
        )
        assert http.chat_url is not None
        streamed = variant in STREAMED
        _send(http.chat_url, http.headers, warmup, streamed)
        names = ("serve",) if variant in ONE_PROCESS else ("router", "edge")
        pids = {name: proc.pids()[0] for name, proc in zip(names, http.procs, strict=True)}
        for pid in pids.values():
            _callgrind("-z", str(pid))
        _send(http.chat_url, http.headers, requests, streamed)
        for pid in pids.values():
            _callgrind("-d", str(pid))
        dumps = {name: Path(f"{out}/{name}.out.1") for name in pids}
        if state:
            drop_keys(prefix)
        return {
            name: dumped_instructions(dump.read_text(errors="replace")) / requests / 1e6
            for name, dump in dumps.items()
        }


def _keep(run: Path, keep: Path, variant: str) -> None:
    keep.mkdir(parents=True, exist_ok=True)
    for process in ("serve",) if variant in ONE_PROCESS else ("router", "edge"):
        shutil.copyfile(run / f"{process}.out.1", keep / f"{variant}-{process}.out")


def _row(variant: str, figures: dict[str, float]) -> str:
    if "serve" in figures:  # one process: no split between router and edge
        return f"| {variant} | (one process) | | {figures['serve']:.3f} |"
    total = figures["router"] + figures["edge"]
    return f"| {variant} | {figures['router']:.3f} | {figures['edge']:.3f} | {total:.3f} |"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.instructions", description=__doc__)
    p.add_argument("--variants", default="plain,tracing", help=f"of {', '.join(VARIANTS)}")
    p.add_argument(
        "--requests",
        type=int,
        default=256,
        help="measured requests per variant (a multiple of 128: whole export batches)",
    )
    p.add_argument("--warmup", type=int, default=30, help="unmeasured requests first")
    p.add_argument(
        "--keep",
        type=Path,
        metavar="DIR",
        help="copy each process's callgrind dump to DIR/<variant>-<process>.out "
        "(for callgrind_annotate)",
    )
    _source.add_arguments(p)
    args = p.parse_args(argv)
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    if unknown := set(variants) - set(VARIANTS):
        p.error(f"unknown variants: {', '.join(sorted(unknown))}")
    if find_tool("valgrind", install=True) is None:
        print("instructions: valgrind is not installed and could not be", file=sys.stderr)
        return 2
    with sigterm_as_interrupt(), tempfile.TemporaryDirectory(prefix="sb-instr-") as tmp:
        src, label = _source.resolve(args, Path(tmp))
        print(f"Switchboard {label}; {args.requests} requests one at a time, through the edge\n")
        print("| variant | router M instr/req | edge M instr/req | total |\n|---|--:|--:|--:|")
        for variant in variants:
            figures = measure_variant(variant, args.requests, args.warmup, src, Path(tmp))
            if args.keep is not None:
                _keep(Path(tmp) / variant, args.keep, variant)
            print(_row(variant, figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
