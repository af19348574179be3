"""Plain text for a terminal: aligned tables, and durations, sizes and times people read.

The one place `switchboard admin` formats anything; no dependency beyond the standard library.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["ago", "count", "duration", "size", "table", "until"]

# A deadline this far ahead is "until someone changes it": a key disabled by hand is set ten years
# out (keys/_pool.py), which reads better as what it means.
_OPEN_ENDED_S = 365 * 86400.0
_UNITS = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))
_BINARY = ("KiB", "MiB", "GiB", "TiB")


def table(rows: Sequence[Sequence[str]], headers: Sequence[str] | None = None) -> str:
    """`rows` in columns padded to their widest cell, two spaces apart; `headers` above them.
    No trailing spaces, no trailing newline; empty when there is nothing to show."""
    lines = [list(headers)] if headers is not None else []
    lines += [[_inert(cell) for cell in row] for row in rows]
    if not lines or (headers is not None and len(lines) == 1):
        return ""
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )


def _inert(cell: str) -> str:
    """`cell` with what a terminal would act on (escape sequences, line breaks, bidi controls)
    shown escaped: some cells are a caller's text (a background response's model name)."""
    if cell.isprintable():
        return cell
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in cell)


def duration(seconds: float) -> str:
    """`42s`, `3m 5s`, `2h 10m`, `3d 4h`: the largest unit and the next, whole (`3d`, not
    `3d 0h`); `0s` under a second."""
    left = int(max(0.0, seconds))
    first = next(i for i, (_, size_s) in enumerate(_UNITS) if left >= size_s or size_s == 1)
    unit, size_s = _UNITS[first]
    shown = f"{left // size_s}{unit}"
    if first + 1 < len(_UNITS):
        next_unit, next_s = _UNITS[first + 1]
        if rest := (left % size_s) // next_s:
            shown += f" {rest}{next_unit}"
    return shown


def until(unix: float, now: float, *, none: str = "-", open_ended: bool = False) -> str:
    """When a deadline ends, from `now`: `in 42s`; `none` for 0 (no deadline), `ended 3s ago`
    for one past; with `open_ended` (a key's disable, set by hand ten years out), `until
    changed` for one years away. Other deadlines that far ahead still come: a certificate or
    a key issued for years shows when (`in 730d 3h`)."""
    if not unix:
        return none
    if open_ended and unix - now >= _OPEN_ENDED_S:
        return "until changed"
    if unix < now:
        return f"ended {duration(now - unix)} ago"
    return f"in {duration(unix - now)}"


def ago(unix: float, now: float) -> str:
    """How long before `now`: `5m 2s ago` (`-` for 0: never)."""
    if not unix:
        return "-"
    # Ahead by a whole second: another clock. Less: made during the command's own call, after
    # `now` was read (`client-keys issue`'s key), which is now.
    if unix - now >= 1:
        return f"in {duration(unix - now)}"
    return f"{duration(now - unix)} ago"


def size(count_bytes: float) -> str:
    """`512 B`, `1.2 KiB`, `3.0 MiB`: binary units, one decimal."""
    if abs(count_bytes) < 1024:
        return f"{int(count_bytes)} B"
    value = float(count_bytes)
    for unit in _BINARY:
        value /= 1024
        if abs(value) < 1024 or unit == _BINARY[-1]:
            break
    return f"{value:.1f} {unit}"


def count(value: float) -> str:
    """A whole count with thousands separators (`12,345`); a fractional one with one decimal
    (the sliding minute's share of the last: `2.5`)."""
    if value == int(value):
        return f"{int(value):,}"
    return f"{value:,.1f}"
