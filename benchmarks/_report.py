"""From raw runs to the report's numbers: medians over rounds, added latency against the same
round's direct run, ratios against the peer, the issue's targets as PASS/FAIL. `_render.py` turns
them into latest.{json,md,png}."""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from benchmarks._variants import variant_targets

# (scenario, system) → the mode a row is reported under
MODES = {
    ("unary", "direct"): "HTTP unary",
    ("unary", "switchboard"): "HTTP unary",
    ("unary", "litellm"): "HTTP unary",
    ("stream", "direct"): "HTTP stream",
    ("stream", "switchboard"): "HTTP stream",
    ("stream", "litellm"): "HTTP stream",
    ("stream", "switchboard-grpc"): "gRPC stream",
    ("unary", "switchboard-1p"): "HTTP unary",
    ("stream", "switchboard-1p"): "HTTP stream",
    ("unary-py", "direct"): "HTTP unary (py)",
    ("unary-py", "switchboard-grpc"): "gRPC unary",
}
_ORDER = ["HTTP unary", "HTTP stream", "gRPC unary", "gRPC stream", "HTTP unary (py)"]
_SYSTEMS = ["switchboard", "switchboard-1p", "switchboard-grpc", "litellm", "direct"]


def _median(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def _get(run: dict[str, Any], key: str, pct: str) -> float | None:
    block = run.get(key)
    return None if not block else block.get(pct)


def _diff(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


# Rounds during which other work kept more cores busy than this are used only when a row has no
# quieter round (a shared machine: someone's test suite).
QUIET_CORES = 0.25


def _quiet(run: dict[str, Any]) -> bool:
    return (run.get("other_cores") or 0.0) <= QUIET_CORES


def summarise(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (mode, system, level): medians over rounds; `added_*` is the median of the
    per-round differences against the direct run of the same scenario, level and round. Only
    quiet rounds count when there is at least one (see QUIET_CORES)."""
    by_key: dict[tuple[str, str, int], dict[int, dict[str, Any]]] = defaultdict(dict)
    for run in runs:
        by_key[(run["scenario"], run["system"], run["level"])][run["round"]] = run
    rows = []
    for (scenario, system, level), rounds in by_key.items():
        base = by_key.get((scenario, "direct", level), {})
        # rounds used: quiet for the system and its baseline, else quiet for the system, else all
        used = (
            [r for r, v in rounds.items() if _quiet(v) and r in base and _quiet(base[r])]
            or [r for r, v in rounds.items() if _quiet(v)]
            or list(rounds)
        )
        values = [rounds[r] for r in used]
        pairs = {r: (rounds[r], base[r]) for r in used if r in base}

        def added(key: str, pct: str, pairs: dict[int, Any] = pairs) -> float | None:
            return _median(_diff(_get(a, key, pct), _get(b, key, pct)) for a, b in pairs.values())

        own = system != "direct"
        rows.append(
            {
                "mode": MODES.get((scenario, system), scenario),
                "scenario": scenario,
                "system": system,
                "level": level,
                "rounds": len(rounds),
                "rounds_used": len(used),
                "client": values[0].get("client"),
                "rps": _median(v["rps"] for v in values),
                "p50_ms": _median(_get(v, "latency_ms", "p50") for v in values),
                "p99_ms": _median(_get(v, "latency_ms", "p99") for v in values),
                "added_p50_ms": added("latency_ms", "p50") if own else None,
                "added_p99_ms": added("latency_ms", "p99") if own else None,
                "ttft_p50_ms": _median(_get(v, "ttft_ms", "p50") for v in values),
                "added_ttft_p50_ms": added("ttft_ms", "p50") if own else None,
                "added_ttft_p99_ms": added("ttft_ms", "p99") if own else None,
                "chunks_per_s": _median(v["chunks_per_s"] for v in values) or None,
                "cpu_s_per_1k": _median(v.get("cpu_s_per_1k") for v in values),
                "errors": sum(v["errors"] for v in rounds.values()),
                "other_cores": _median(v.get("other_cores") for v in values),
            }
        )
    rows.sort(key=lambda r: (_ORDER.index(r["mode"]), r["level"], _SYSTEMS.index(r["system"])))
    return rows


def _row(rows: list[dict[str, Any]], mode: str, system: str, level: int) -> dict[str, Any] | None:
    return next(
        (r for r in rows if r["mode"] == mode and r["system"] == system and r["level"] == level),
        None,
    )


def ratios(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Switchboard against LiteLLM, per mode and level (>1 means Switchboard is better)."""
    out = []
    for mode in ("HTTP unary", "HTTP stream"):
        for level in sorted({r["level"] for r in rows}):
            sb, lt = _row(rows, mode, "switchboard", level), _row(rows, mode, "litellm", level)
            if sb is None or lt is None:
                continue

            def ratio(key: str, inverse: bool = False) -> float | None:
                a, b = sb.get(key), lt.get(key)  # noqa: B023 - used right away
                if a is None or b is None:
                    return None
                num, den = (b, a) if inverse else (a, b)
                return num / den if den > 0 else None

            out.append(
                {
                    "mode": mode,
                    "level": level,
                    "rps_x": ratio("rps"),
                    "added_p50_x_lower": ratio("added_p50_ms", inverse=True),
                    "added_ttft_x_lower": ratio("added_ttft_p50_ms", inverse=True),
                    "chunks_x": ratio("chunks_per_s"),
                    "cpu_x_lower": ratio("cpu_s_per_1k", inverse=True),
                }
            )
    return out


def _target(name: str, passed: bool | None, detail: str) -> dict[str, Any]:
    status = "N/A" if passed is None else ("PASS" if passed else "FAIL")
    return {"target": name, "status": status, "detail": detail}


_MISSING = "not measured in this run"


def _lower_than(name: str, ours: float | None, peer: float | None, share: int) -> dict[str, Any]:
    """Ours ≤ peer / share (added latencies: lower is better)."""
    if ours is None or peer is None:
        return _target(name, None, _MISSING)
    limit = peer / share
    return _target(
        name,
        ours <= limit,
        f"Switchboard {ours:.2f} ms vs LiteLLM {peer:.2f} ms (limit {limit:.2f} ms)",
    )


def _times_more(name: str, ours: float | None, peer: float | None, factor: int) -> dict[str, Any]:
    """Ours ≥ factor × peer (throughputs: higher is better)."""
    if ours is None or peer is None or peer <= 0:
        return _target(name, None, _MISSING)
    return _target(
        name,
        ours >= factor * peer,
        f"Switchboard {ours:,.0f}/s vs LiteLLM {peer:,.0f}/s ({ours / peer:.1f}×)",
    )


def _trouble(row: dict[str, Any] | None, failed: int) -> str:
    """What went wrong behind a row: its errors and its runs that failed ('' when nothing)."""
    errors = (row or {}).get("errors") or 0
    said = [f"{errors:,} errors"] if errors else []
    if failed:  # a run that failed is out of the row (a hang, a crash): it is no answer either
        said.append(f"{failed} failed run{'s' if failed > 1 else ''}")
    return " and ".join(said)


def _errors_judged(target: dict[str, Any], ours: str, peer: str = "") -> dict[str, Any]:
    """No PASS on rows with trouble (`_trouble`): Switchboard's FAIL the target (a failed
    request is no answer, and wrk times error responses too: fast 401s make a small p50), the
    peer's make the comparison N/A (its throughput counts its answers only)."""
    name, detail = target["target"], target["detail"]
    if ours:
        shown = "" if target["status"] == "N/A" else f"{detail}; "
        return _target(name, False, f"{shown}Switchboard had {ours}")
    if peer and target["status"] != "N/A":
        return _target(name, None, f"{detail}; LiteLLM had {peer}: no comparison")
    if peer:  # the peer's row is missing: say why
        return _target(name, None, f"LiteLLM had {peer}: no comparison")
    return target


Failed = dict[tuple[str, str, int], int]


def _failed_runs(data: dict[str, Any]) -> Failed:
    """The runs that failed (`failures` in the JSON), counted by the row they are missing
    from: (mode, system, level)."""
    out: Failed = defaultdict(int)
    for f in data.get("failures") or []:
        out[(MODES.get((f["scenario"], f["system"]), f["scenario"]), f["system"], f["level"])] += 1
    return out


# targets 1–4: (target, mode, level, summary key, limit, lower is better)
PEER_TARGETS = (
    ("non-streaming added p50 at c=1 ≤ 1/8 of LiteLLM's", "HTTP unary", 1, "added_p50_ms", 8, True),
    ("requests/s at c=64 ≥ 10× LiteLLM's", "HTTP unary", 64, "rps", 10, False),
    (
        "streaming added TTFT at c=1 ≤ 1/8 of LiteLLM's",
        "HTTP stream",
        1,
        "added_ttft_p50_ms",
        8,
        True,
    ),
    ("chunks/s at c=16 ≥ 10× LiteLLM's", "HTTP stream", 16, "chunks_per_s", 10, False),
)


def _peer_targets(rows: list[dict[str, Any]], failed: Failed) -> list[dict[str, Any]]:
    """Targets 1–4: Switchboard against LiteLLM, same mode and level."""
    out = []
    for name, mode, level, key, limit, lower in PEER_TARGETS:
        ours, peer = _row(rows, mode, "switchboard", level), _row(rows, mode, "litellm", level)
        values = (None if ours is None else ours.get(key), None if peer is None else peer.get(key))
        judged = _lower_than(name, *values, limit) if lower else _times_more(name, *values, limit)
        ours_trouble = _trouble(ours, failed.get((mode, "switchboard", level), 0))
        peer_failed = failed.get((mode, "litellm", level), 0)
        peer_trouble = _trouble(peer, peer_failed)
        if not lower and not peer_failed and judged["status"] == "FAIL" and peer_trouble:
            # its errors are no answers: they only lowered its count, a clean peer is further ahead
            judged = _target(name, False, f"{judged['detail']}; LiteLLM had {peer_trouble}")
            peer_trouble = ""
        out.append(_errors_judged(judged, ours_trouble, peer_trouble))
    return out


def _grpc_target(rows: list[dict[str, Any]], failed: Failed) -> dict[str, Any]:
    name = "gRPC path added p50 at c=1 ≤ 0.6 ms and ≥ 2,500 unary requests/s"
    at_1 = _row(rows, "gRPC unary", "switchboard-grpc", 1)
    grpc = [r for r in rows if r["mode"] == "gRPC unary"]
    best = max(grpc, key=lambda r: r["rps"] or 0.0, default=None)
    added = None if at_1 is None else at_1.get("added_p50_ms")
    if added is None or best is None:
        judged = _target(name, None, _MISSING)
    else:
        detail = f"added p50 {added:.2f} ms; best {best['rps']:,.0f} unary req/s"
        judged = _target(name, added <= 0.6 and best["rps"] >= 2500, detail)
    used = {r["level"]: r["errors"] for r in (at_1, best) if r is not None}  # the same row once
    levels = {1, *used}
    lost = sum(failed.get(("gRPC unary", "switchboard-grpc", level), 0) for level in levels)
    return _errors_judged(judged, _trouble({"errors": sum(used.values())}, lost))


def _idle_rss_target(data: dict[str, Any]) -> dict[str, Any]:
    name = "router + edge idle RSS ≤ 1/3 of LiteLLM's"
    ours, peer = (data.get("idle_rss_kib", {}).get(k) for k in ("switchboard", "litellm"))
    if ours is None or peer is None:
        return _target(name, None, _MISSING)
    detail = f"Switchboard {ours / 1024:.0f} MiB vs LiteLLM {peer / 1024:.0f} MiB"
    return _target(name, ours <= peer / 3, f"{detail} (1/{peer / ours:.2f})")


def _idle_streams_target(data: dict[str, Any]) -> dict[str, Any]:
    name = "2,000 idle open streams cost ≤ 30 KB each"
    streams = data.get("idle_streams") or {}
    kib = streams.get("kib_per_stream")
    if kib is None and streams.get("requested"):  # tried, and not one stream opened
        why = "; ".join(streams.get("error_samples") or [])[:300] or "no error reported"
        return _target(name, False, f"0 of {streams['requested']} opened: {why}")
    if kib is None:
        return _target(name, None, _MISSING)
    kb = kib * 1.024
    detail = f"{kb:.1f} KB per stream (router + edge RSS), {streams['opened']} open"
    return _target(name, kb <= 30 and streams["opened"] >= 2000, detail)


def _failover_target(data: dict[str, Any]) -> dict[str, Any]:
    name = "a deployment that refuses connections costs ≤ 2 ms before the fallback answers"
    rows = (data.get("failover") or {}).get("rounds", [])
    lost = next((r for r in rows if r.get("failed")), None)
    if lost is not None:  # its load generator failed or timed out: no answer to judge
        return _target(name, False, f"round {lost['round']} failed: {lost['failed'][:300]}")
    extras = [r.get("extra_p50_ms") for r in rows]
    extra = _median(extras)
    # a request that failed got no answer: the fallback did not take over for it
    errors = sum(r.get("errors") or 0 for r in rows)
    failed = f"; {errors} errors" if errors else ""
    if extra is None:
        if not errors:
            return _target(name, None, _MISSING)
        return _target(name, False, f"no p50 of both models in any round: {errors} errors")
    rounds = ", ".join(f"{e:.2f}" for e in extras if e is not None)
    detail = f"extra p50 {extra:.2f} ms (rounds: {rounds}){failed}"
    return _target(name, extra <= 2.0 and not errors, detail)


def targets(rows: list[dict[str, Any]], data: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets, each PASS, FAIL or N/A, with the numbers behind it."""
    failed = _failed_runs(data)
    return [
        *_peer_targets(rows, failed),
        _grpc_target(rows, failed),
        _idle_rss_target(data),
        _idle_streams_target(data),
        _failover_target(data),
        *variant_targets(data),
    ]
