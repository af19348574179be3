"""What `benchmarks.soak` samples every interval, and how it prints it.

Per process, from /proc: RSS (MiB), open file descriptors (sockets included), threads, and CPU
per request (ms: its CPU time over the requests its Prometheus counter says it served since the
last sample). From the Prometheus text of router (`--metrics-port`) and edge (`GET /metrics`):
the series and the distinct label values (a label that takes a new value per caller, session
or request grows them), and gauges that must come back to zero at rest: open streams, and the
router's in-flight key leases. From the router's AdminService (GetRoutingStats): the sessions it
lists (active, banned or skipped by thread protection; kept with TTLs). Rows of backends
(`_soak_backends.py`: Redis, the OTLP sink) come from their samplers. No process exposes its
asyncio task count or the state store's map sizes, so neither is sampled: their growth would
show in RSS, and in `--trace`'s object counts and allocation sites.
"""

from __future__ import annotations

import contextlib
import re
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from benchmarks._procs import Proc, cpu_seconds, memory_kib, open_fds, status_sum
from benchmarks._trend import Tolerance, Trend, trend

Sample = dict[str, dict[str, float]]  # process -> figure -> value (-1: could not be read)

# The rise over the second half that still counts as flat, per figure; figures not listed
# are shown, not judged (`series`: bounded label values meeting in new combinations grow it).
TOLERANCES: dict[str, Tolerance] = {
    "rss_mib": Tolerance(absolute=2.0, relative=0.02),
    "fds": Tolerance(absolute=4),
    "threads": Tolerance(absolute=1),
    # A shared machine's noise: another process's cache misses are ours too.
    "cpu_ms": Tolerance(absolute=0.2, relative=0.25),
    "labels": Tolerance(absolute=4),
    "streams": Tolerance(absolute=6),
    "leases": Tolerance(absolute=6),
    # TTL-bounded: steady under a steady load, but that load itself wobbles.
    "sessions": Tolerance(absolute=50, relative=0.25),
    "keys": Tolerance(absolute=100, relative=0.25),
    # Redis (`--state redis`, `_soak_backends.py`): the whole server's figures, which other
    # users of a shared Redis move too. Per-key tracking that never let go grew ~36 k keys and
    # ~3.9 MiB a minute.
    "used_mib": Tolerance(absolute=2.0, relative=0.05),
    "tracking_keys": Tolerance(absolute=1000, relative=0.1),
    "tracking_items": Tolerance(absolute=1000, relative=0.1),
    "tracking_prefixes": Tolerance(absolute=4),
}
# What must be back at zero once the load has stopped (`at_rest`).
ZERO_AT_REST = ("streams", "leases")
_HEADINGS = {
    "rss_mib": "RSS MiB",
    "fds": "fds",
    "threads": "thr",
    "cpu_ms": "ms/req",
    "used_mib": "used MiB",
    "tracking_keys": "trk keys",
    "tracking_items": "trk items",
    "tracking_prefixes": "trk pfx",
}


@dataclass
class Probe:
    """How to read one process: /proc, and optionally its Prometheus text (`requests`: the
    counter of requests it served; `gauges`: figure -> metric, summed over its series) and
    (the router) its AdminService."""

    proc: Proc
    metrics_url: str | None = None
    requests: str = ""
    gauges: dict[str, str] = field(default_factory=dict)
    admin_target: str | None = None
    admin_key: str = ""
    series: frozenset[str] = frozenset()  # the series (name and labels), as last read
    _last: tuple[float, float] | None = None  # (CPU seconds, requests) at the last sample


def sample(
    probes: Mapping[str, Probe],
    samplers: Mapping[str, Callable[[], dict[str, float]]] | None = None,
) -> Sample:
    """Each process's figures, then each sampler's row (Redis, the OTLP sink)."""
    rows = {name: _figures(probe) for name, probe in probes.items()}
    return rows | {name: read() for name, read in (samplers or {}).items()}


def _figures(probe: Probe) -> dict[str, float]:
    pids = probe.proc.pids()
    figures = {
        "rss_mib": memory_kib(pids, "VmRSS") / 1024,
        "fds": float(open_fds(pids)),
        "threads": float(status_sum(pids, "Threads")),
    }
    if probe.metrics_url is not None:
        values = read_prometheus(probe.metrics_url)
        found = frozenset(values or ())
        served = metric_sum(values, probe.requests) if values is not None else None
        figures["cpu_ms"] = _cpu_per_request(probe, cpu_seconds(pids), served)
        figures["series"] = float(len(found)) if values is not None else -1.0
        figures["labels"] = float(len(label_values(found))) if values is not None else -1.0
        for name, metric in probe.gauges.items():
            figures[name] = metric_sum(values, metric) if values is not None else -1.0
        probe.series = found or probe.series
    if probe.admin_target is not None:
        figures["sessions"] = float(admin_sessions(probe.admin_target, probe.admin_key))
    return figures


def _cpu_per_request(probe: Probe, cpu: float, served: float | None) -> float:
    """Milliseconds of CPU per request since the last sample; -1 without requests to divide."""
    last, probe._last = probe._last, (cpu, served if served is not None else -1.0)
    if last is None or served is None or last[1] < 0 or served <= last[1]:
        return -1.0
    return (cpu - last[0]) / (served - last[1]) * 1000


def read_prometheus(url: str) -> dict[str, float] | None:
    """Series (name and labels) -> value, from a Prometheus text exposition; None when it
    cannot be read."""
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            text = response.read().decode()
    except OSError:
        return None
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            series, _, value = line.rpartition(" ")
            out[series] = float(value)
    return out


def metric_sum(values: Mapping[str, float], metric: str) -> float:
    """The sum of `metric` over its series (all label sets)."""
    return sum(v for k, v in values.items() if k == metric or k.startswith(metric + "{"))


_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def label_values(series: Iterable[str]) -> set[tuple[str, str]]:
    """The distinct (label, value) pairs of the series, bucket bounds (`le`) left out. A label
    that takes a new value per request, caller or session grows this; series also grow as
    bounded values meet in new combinations (a rare fault on another deployment)."""
    return {
        (name, value)
        for line in series
        for name, value in _LABEL.findall(line)
        if name not in ("le", "quantile")
    }


def admin_sessions(target: str, key: str) -> int:
    """Sessions AdminService.GetRoutingStats lists: active marks, bans and skips, summed over
    providers; -1 when the call fails."""
    import grpc

    from clients.switchboard.v1 import admin_service_pb2 as pb
    from clients.switchboard.v1 import admin_service_pb2_grpc as pb_grpc

    with contextlib.suppress(grpc.RpcError), grpc.insecure_channel(target) as channel:
        stub = pb_grpc.AdminServiceStub(channel)
        metadata = (("authorization", f"Bearer {key}"),)
        stats = stub.GetRoutingStats(pb.GetRoutingStatsRequest(), metadata=metadata, timeout=10)
        return sum(len(s.active) + len(s.banned_sessions) + len(s.skipped) for s in stats.sessions)
    return -1


def series_of(
    samples: Sequence[tuple[float, Sample]],
) -> dict[tuple[str, str], list[tuple[float, float]]]:
    """(process, figure) -> [(t, value)], leaving out failed reads (-1)."""
    out: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for t, row in samples:
        for process, figures in row.items():
            for figure, value in figures.items():
                if value >= 0:
                    out.setdefault((process, figure), []).append((t, value))
    return out


@dataclass(frozen=True)
class Judged:
    trend: Trend
    judged: bool  # False: shown, not judged (see NOT_JUDGED)

    @property
    def word(self) -> str:
        if not self.judged:
            return "not judged"
        return {True: "flat", False: "GROWS", None: "too few samples"}[self.trend.flat]


def verdict(
    samples: Sequence[tuple[float, Sample]], not_judged: Iterable[str] = ()
) -> dict[tuple[str, str], Judged]:
    """Each figure's trend; judged unless its process is in `not_judged` or the figure has
    no tolerance."""
    skip = set(not_judged)
    out = {}
    figures = series_of(samples)
    order = {p: i for i, p in enumerate(dict.fromkeys(p for p, _ in figures))}
    for (process, figure), points in sorted(figures.items(), key=lambda kv: order[kv[0][0]]):
        tolerance = TOLERANCES.get(figure)
        judged = tolerance is not None and process not in skip
        out[(process, figure)] = Judged(trend(points, tolerance or Tolerance(0.0)), judged)
    return out


def table(samples: Sequence[tuple[float, Sample]]) -> list[str]:
    """One line per sample: seconds since the load began, then each process's figures."""
    if not samples:
        return []
    first = samples[0][1]
    columns = [(p, f) for p, figures in first.items() for f in figures]
    head = ["t s"] + [f"{p} {_HEADINGS.get(f, f)}" for p, f in columns]
    widths = [max(6, len(h)) for h in head]
    lines = ["  ".join(h.rjust(w) for h, w in zip(head, widths, strict=True))]
    for t, row in samples:
        cells = [f"{t:.0f}"] + [_cell(row.get(p, {}).get(f), f) for p, f in columns]
        lines.append("  ".join(c.rjust(w) for c, w in zip(cells, widths, strict=True)))
    return lines


def verdict_lines(trends: Mapping[tuple[str, str], Judged]) -> list[str]:
    width = max([9, *(len(figure) for _, figure in trends)])
    lines = [
        f"{'process':9} {'figure':{width}} {'start':>9} {'end':>9} {'slope/min':>10} "
        f"{'rise':>9} {'allowed':>8}  verdict"
    ]
    for (process, figure), judged in trends.items():
        tr = judged.trend
        allowed = f"{tr.allowed:>8.2f}" if judged.judged else f"{'-':>8}"
        lines.append(
            f"{process:9} {figure:{width}} {_cell(tr.start, figure):>9} "
            f"{_cell(tr.end, figure):>9} {tr.slope_per_min:>+10.3f} {tr.rise:>+9.2f} {allowed}  "
            f"{judged.word}"
        )
    return lines


@dataclass(frozen=True)
class Rest:
    process: str
    figure: str
    before: float
    after: float
    back: bool


def at_rest(before: Sample, after: Sample, not_judged: Iterable[str] = ()) -> list[Rest]:
    """Once the load has stopped: open streams and leases back at zero, descriptors and
    threads back at their level before the load (within their tolerance)."""
    out = []
    for process, figures in after.items():
        if process in set(not_judged):
            continue
        for figure, value in figures.items():
            start = before.get(process, {}).get(figure, -1.0)
            if value < 0 or start < 0:
                continue
            if figure in ZERO_AT_REST:
                out.append(Rest(process, figure, start, value, value == 0))
            elif figure in ("fds", "threads"):
                back = value - start <= TOLERANCES[figure].absolute
                out.append(Rest(process, figure, start, value, back))
    return out


def report(
    samples: Sequence[tuple[float, Sample]], after: Sample, not_judged: Iterable[str] = ()
) -> tuple[list[str], list[str]]:
    """The verdict's lines, and its problems (none: every figure flat, and back at rest)."""
    skip = tuple(not_judged)
    trends = verdict(samples, skip)
    rest = at_rest(samples[0][1], after, skip)
    lines = ["", *verdict_lines(trends), "", "at rest after the load:"]
    lines += [
        f"{r.process:9} {r.figure:9} before {r.before:5.0f}  after {r.after:5.0f}  "
        + ("ok" if r.back else "NOT BACK")
        for r in rest
    ]
    grows = [f"{p} {f}" for (p, f), j in trends.items() if j.judged and j.trend.flat is False]
    stuck = [f"{r.process} {r.figure}" for r in rest if not r.back]
    problems = [f"growth in {', '.join(grows)}"] if grows else []
    problems += [f"not back at rest: {', '.join(stuck)}"] if stuck else []
    lines += ["", "verdict: " + ("; ".join(problems) or "every figure flat, and back at rest")]
    return lines, problems


def _cell(value: float | None, figure: str) -> str:
    if value is None or value < 0:
        return "-"
    digits = {"rss_mib": 1, "used_mib": 1, "cpu_ms": 2}.get(figure, 0)
    return f"{value:.{digits}f}"
