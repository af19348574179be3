"""latest.png: six panels from the summary rows (matplotlib, bench-only dependency)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib import ticker

_STYLE = {
    "switchboard": {"color": "#1f77b4", "marker": "o", "label": "Switchboard (edge + router)"},
    "switchboard-grpc": {"color": "#2ca02c", "marker": "s", "label": "Switchboard gRPC (router)"},
    "litellm": {"color": "#d62728", "marker": "^", "label": "LiteLLM proxy"},
    "direct": {"color": "#7f7f7f", "marker": "x", "label": "direct to upstream", "ls": "--"},
}
_FLOOR = 0.01  # log axes: an added latency at or below zero (noise) is drawn at the floor


def _series(
    rows: list[dict[str, Any]], mode: str, system: str, key: str
) -> tuple[list[Any], list[Any]]:
    points = sorted(
        (r["level"], r[key])
        for r in rows
        if r["mode"] == mode and r["system"] == system and r.get(key) is not None
    )
    return [p[0] for p in points], [max(p[1], _FLOOR) for p in points]


def _minor_label(value: float, _: object) -> str:
    """Label the 2× and 5× minor ticks of a log axis, so short ranges still read."""
    lead = f"{value:.0e}"[0]
    return f"{value:g}" if lead in "25" else ""


def _panel(ax: Any, rows: list[dict[str, Any]], lines: list[tuple[str, str]], key: str) -> None:
    for mode, system in lines:
        xs, ys = _series(rows, mode, system, key)
        if not xs:
            continue
        style = _STYLE[system]
        label = style["label"] + (" · stream" if "stream" in mode and "grpc" in system else "")
        ax.plot(
            xs,
            ys,
            marker=style["marker"],
            color=style["color"],
            ls=style.get("ls", "-"),
            label=label,
        )
    levels = sorted({r["level"] for r in rows})
    ax.set_xscale("log", base=2)
    ax.set_xticks(levels, [str(n) for n in levels])
    ax.xaxis.set_minor_locator(ticker.NullLocator())
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_formatter(ticker.FuncFormatter(_minor_label))
    ax.set_xlabel("concurrency")
    ax.grid(True, which="both", alpha=0.3)


def chart(data: dict[str, Any], path: Path) -> Path:
    rows = data["summary"]
    meta = data["meta"]
    fig, axes = plt.subplots(2, 3, figsize=(16, 9.5))
    unary = [("HTTP unary", s) for s in ("switchboard", "litellm", "direct")]
    unary.append(("gRPC unary", "switchboard-grpc"))
    stream = [("HTTP stream", s) for s in ("switchboard", "litellm", "direct")]
    stream.append(("gRPC stream", "switchboard-grpc"))
    panels = [
        (axes[0][0], unary, "rps", "Non-streaming requests/s (higher is better)"),
        (axes[0][1], unary[:2] + unary[3:], "added_p50_ms", "Added p50 latency, ms (lower)"),
        (axes[0][2], unary[:2] + unary[3:], "cpu_s_per_1k", "CPU s per 1,000 requests (lower)"),
        (axes[1][0], stream, "chunks_per_s", "Streaming chunks/s (higher is better)"),
        (axes[1][1], stream[:2] + stream[3:], "added_ttft_p50_ms", "Added time to first token, ms"),
    ]
    for ax, lines, key, title in panels:
        _panel(ax, rows, lines, key)
        ax.set_title(title)
    axes[0][0].legend(fontsize=8, loc="best")
    axes[1][0].legend(fontsize=8, loc="best")
    ax = axes[1][2]
    names = [n for n in ("switchboard", "litellm") if n in data["idle_rss_kib"]]
    idle = [data["idle_rss_kib"][n] / 1024 for n in names]
    peak = [data["peak_rss_kib"].get(n, 0) / 1024 for n in names]
    xs = range(len(names))
    ax.bar([x - 0.2 for x in xs], idle, 0.4, label="idle RSS", color="#9ecae1")
    ax.bar([x + 0.2 for x in xs], peak, 0.4, label="peak RSS (VmHWM)", color="#3182bd")
    ax.set_xticks(list(xs), [_STYLE[n]["label"] for n in names], fontsize=8)
    ax.set_ylabel("MiB")
    ax.set_title("Memory (lower is better)")
    ax.legend(fontsize=8)
    for x, v in zip(xs, peak, strict=True):
        ax.annotate(f"{v:.0f}", (x + 0.2, v), ha="center", va="bottom", fontsize=8)
    for x, v in zip(xs, idle, strict=True):
        ax.annotate(f"{v:.0f}", (x - 0.2, v), ha="center", va="bottom", fontsize=8)
    verdicts = " · ".join(f"{t['status']}" for t in data["targets"])
    fig.suptitle(
        f"Switchboard vs {meta['peer'] or 'no peer'} · {meta['cpus']} CPUs · {meta['date']} · "
        f"commit {meta['commit']}"
        + (" · quick run" if meta["quick"] else "")
        + f"\ntargets: {verdicts}",
        fontsize=11,
    )
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path
