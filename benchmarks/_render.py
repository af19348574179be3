"""The report as files: a run's data with its summary, ratios and targets (`_report.py`) written
as latest.json, rendered as latest.md (below) and charted as latest.png (`_chart.py`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from benchmarks._report import QUIET_CORES, ratios, summarise, targets
from benchmarks._variants import variants_markdown


def write_all(data: dict[str, Any], out: Path) -> dict[str, Any]:
    data["summary"] = summarise(data["runs"])
    data["ratios"] = ratios(data["summary"])
    data["targets"] = targets(data["summary"], data)
    out.mkdir(parents=True, exist_ok=True)
    files = [out / "latest.json", out / "latest.md"]
    files[0].write_text(json.dumps(data, indent=1, sort_keys=False) + "\n")
    text = markdown(data)
    files[1].write_text(text)
    try:
        from benchmarks._chart import chart

        files.append(chart(data, out / "latest.png"))
    except ImportError as exc:
        print(f"bench: no chart ({exc}); `make bench` installs matplotlib")
    return {"markdown": text, "files": files}


def markdown(data: dict[str, Any]) -> str:
    """latest.md: a section each, in this order, from the data `write_all` completed."""
    lines = _heading(data["meta"])
    lines += _targets_section(data["targets"])
    lines += _failures_section(data.get("failures") or [])
    lines += _systems_table(data["summary"])
    lines += _ratios_table(data["ratios"])
    lines += _memory_table(data)
    lines += _probes_text(data)
    lines += variants_markdown(data)
    lines += ["Chart: `latest.png`. Raw runs: `latest.json`. Method: `benchmarks/README.md`.", ""]
    return "\n".join(lines)


def _f(value: float | None, fmt: str = "{:.2f}") -> str:
    return "–" if value is None else fmt.format(value)


def _mib(kib: int | None) -> float | None:
    return None if kib is None else kib / 1024


def _heading(meta: dict[str, Any]) -> list[str]:
    """The title, how the run was made, and why the peer is missing if it is."""
    lines = [
        "# Switchboard benchmark",
        "",
        f"{meta['date']} · commit `{meta['commit']}` · {meta['cpus']} CPUs · Python "
        f"{meta['python']} · peer: {meta['peer'] or 'none'} ({meta['peer_workers']} worker) · "
        f"levels {meta['levels']} · {meta['duration_s']:g} s per run after {meta['warmup_s']:g} s "
        f"warm-up · {meta['rounds']} round(s) · non-streaming client: {meta['unary_client']}"
        + (" · **quick run**" if meta["quick"] else "")
        + f" · waited {meta.get('waited_for_quiet_s', 0):g} s for other work to calm down",
        "",
    ]
    if meta.get("peer_note"):
        lines += [f"> {meta['peer_note']}", ""]
    return lines


def _targets_section(targets: list[dict[str, Any]]) -> list[str]:
    return [
        "## Targets",
        "",
        *(f"- **{t['status']}** {t['target']}: {t['detail']}" for t in targets),
    ]


def _failures_section(failures: list[dict[str, Any]]) -> list[str]:
    """The runs that failed (their rows lack those rounds; a system whose process exited was
    left out of the rest of the matrix)."""
    if not failures:
        return []
    lines = ["", "## Failed runs", ""]
    left_out: dict[str, int] = {}
    for f in failures:
        if f.get("left_out"):  # not tried: its process had exited
            left_out[f["system"]] = left_out.get(f["system"], 0) + 1
            continue
        said = f["error"].strip().splitlines() or ["?"]  # what failed … its last words
        error = said[0][:200] + ("" if len(said) == 1 else f" … {said[-1][:200]}")
        lines.append(
            f"- {f['system']} failed ({f['scenario']}, c={f['level']}, round {f['round']}): {error}"
        )
    for system, n in left_out.items():
        runs = "run" if n == 1 else "runs"
        lines.append(f"- {system} was left out of {n} later {runs} (its process had exited)")
    return lines


def _systems_table(rows: list[dict[str, Any]]) -> list[str]:
    """One line per summary row (mode, level, system)."""
    lines = [
        "",
        "## Per system and level",
        "",
        "Added = the system minus the direct-to-upstream run of the same round (median over "
        "rounds). CPU = the system's processes only (router + edge; LiteLLM's process tree). "
        f"Other load = cores busy with work that is not the harness's during the runs used "
        f"(median). Rounds = rounds used / run: rounds with other load above {QUIET_CORES} are "
        "left out when the row has a quieter one; a row whose other load is still high is "
        "disturbed.",
        "",
        "| mode | c | system | req/s | p50 ms | added p50 ms | added p99 ms | added TTFT p50 ms "
        "| chunks/s | CPU s / 1k req | errors | other load | rounds |",
        "|---|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['mode']} | {r['level']} | {r['system']} | {_f(r['rps'], '{:,.0f}')} "
            f"| {_f(r['p50_ms'])} | {_f(r['added_p50_ms'])} | {_f(r['added_p99_ms'])} "
            f"| {_f(r['added_ttft_p50_ms'])} | {_f(r['chunks_per_s'], '{:,.0f}')} "
            f"| {_f(r['cpu_s_per_1k'], '{:.3f}')} | {r['errors']} "
            f"| {_f(r.get('other_cores'), '{:.2f}')} | {r.get('rounds_used', '?')}/{r['rounds']} |"
        )
    return lines


def _ratios_table(ratios: list[dict[str, Any]]) -> list[str]:
    """Switchboard against LiteLLM (none without the peer)."""
    if not ratios:
        return []
    lines = [
        "",
        "## Switchboard against LiteLLM (× better)",
        "",
        "| mode | c | req/s | added p50 | added TTFT | chunks/s | CPU per request |",
        "|---|--:|--:|--:|--:|--:|--:|",
    ]
    for q in ratios:
        lines.append(
            f"| {q['mode']} | {q['level']} | {_f(q['rps_x'], '{:.1f}×')} "
            f"| {_f(q['added_p50_x_lower'], '{:.1f}×')} "
            f"| {_f(q['added_ttft_x_lower'], '{:.1f}×')} | {_f(q['chunks_x'], '{:.1f}×')} "
            f"| {_f(q['cpu_x_lower'], '{:.1f}×')} |"
        )
    return lines


def _memory_table(data: dict[str, Any]) -> list[str]:
    """Idle and peak RSS of Switchboard and LiteLLM, and the peak after each level."""
    idle, peak = data["idle_rss_kib"], data["peak_rss_kib"]
    by_level = data.get("peak_rss_kib_by_level") or {}
    levels = sorted({int(k) for v in by_level.values() for k in v})
    lines = [
        "",
        "## Memory",
        "",
        "| system | idle RSS MiB | peak RSS (VmHWM) MiB |"
        + "".join(f" peak after c={n} |" for n in levels),
        "|---|--:|--:|" + "--:|" * len(levels),
    ]
    for name in ("switchboard", "switchboard-1p", "litellm"):
        if name in idle:
            peak_mib = _f(_mib(peak.get(name)), "{:.0f}")
            mine = by_level.get(name) or {}
            after = "".join(f" {_f(_mib(mine.get(str(n))), '{:.0f}')} |" for n in levels)
            lines.append(f"| {name} | {idle[name] / 1024:.0f} | {peak_mib} |{after}")
    return lines


def _probes_text(data: dict[str, Any]) -> list[str]:
    """The router's own idle RSS, the idle-streams probes and the failover probe, in prose."""
    idle, streams, fail = data["idle_rss_kib"], data["idle_streams"], data["failover"]
    return [
        "",
        f"Router alone idle: {idle.get('switchboard-router', 0) / 1024:.0f} MiB. "
        f"Idle streams: {streams['opened']} of {streams['requested']} opened in "
        f"{_f(streams['open_s'], '{:.1f}')} s; router + edge RSS "
        f"{streams['rss_before_kib'] / 1024:.0f} → {streams['rss_open_kib'] / 1024:.0f} MiB."
        + _long_prompt_streams(data),
        "",
        "Failover (c=1 through the edge, first deployment refuses connections), p50 ms per round: "
        + "; ".join(
            f"plain {_f(r['bench']['p50_ms'])} / fallback {_f(r['bench-fallback']['p50_ms'])}"
            for r in fail["rounds"]
        )
        + ".",
        "",
    ]


def _long_prompt_streams(data: dict[str, Any]) -> str:
    """The idle streams with long prompts (`idle_streams_by_prompt`): the cost per stream with
    short and long prompts, and the RSS (router + edge) each KiB of prompt adds to a stream."""
    probe = data.get("idle_streams_long_prompt")
    if probe and probe.get("failed"):  # its stack did not start or warm up
        return f" On a new stack, the long-prompt probe failed: {probe['failed']}."
    if not probe or probe["rss_per_prompt_kib"] is None:
        return ""
    short, long, kib = probe["short"], probe["long"], probe["prompt_kib"]
    return (
        f" On a new stack, {short['opened']} streams with the short prompt cost "
        f"{short['kib_per_stream']:.1f} KiB each and {long['opened']} more with a {kib} KiB "
        f"prompt each {long['kib_per_stream']:.1f} KiB: a KiB of prompt adds "
        f"{probe['rss_per_prompt_kib']:.1f} KiB to an open stream."
    )
