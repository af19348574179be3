"""Rate windows: fixed minutes, read as a sliding minute (`StateStore`'s slots' rpm and tpm).
The previous minute counts in proportion to how much of it still lies inside the last 60
seconds; both stores compute the same floats (the Redis scripts step for step)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "RATE_WINDOW_S",
    "RateCount",
    "correction_window",
    "rate_count",
    "rate_window",
    "sliding_count",
    "sliding_wait",
]

# Rate windows are fixed minutes, read as a sliding minute (the previous one in proportion).
RATE_WINDOW_S = 60.0


@dataclass(frozen=True, slots=True)
class RateCount:
    """What a resource's rate windows count now, as its rpm and tpm limits compare them: the
    sliding minute (this fixed minute, plus the share of the last one still inside the last
    60 s)."""

    requests: float = 0.0
    tokens: float = 0.0


def rate_window(stored: int | None, now: float) -> int:
    """The fixed minute a count at `now` goes in: `now`'s, or the one the store holds when that
    is the next (a replica whose clock is a little ahead began it; rolled back to `now`'s, both
    minutes would be lost, the client's whole last minute forgotten). The Redis script says
    the same."""
    window = math.floor(now / RATE_WINDOW_S)
    return window + 1 if stored == window + 1 else window


def correction_window(
    window: int, delta: int, requests: int, now: float, lease_id: str
) -> tuple[int, int, int, str] | None:
    """Where a grant's correction goes (window, delta, requests, lease_id): the grant's own
    `window` while it still counts in the sliding minute; once it no longer does (a Realtime
    session, a WebRTC call, a long stream outlived it), the current minute, wherever counts go
    now, for what the call used past its estimate (counted nowhere else); None for what would
    lower a minute that no longer counts."""
    current = math.floor(now / RATE_WINDOW_S)
    if window >= current - 1:
        return window, delta, requests, lease_id
    if delta <= 0 and requests <= 0:
        return None
    return current, max(0, delta), max(0, requests), ""


def sliding_count(prev: float, cur: float, now: float, window: int) -> float:
    """The sliding-minute estimate from two fixed windows."""
    elapsed = now - window * RATE_WINDOW_S
    # Whole before the window began (a clock behind the one that began it: `rate_window`).
    return prev * min(1.0, max(0.0, 1.0 - elapsed / RATE_WINDOW_S)) + cur


def rate_count(stored: int, counts: Sequence[float], now: float) -> RateCount:
    """The sliding count at `now` of the windows a store holds for fixed minute `stored`, as
    (requests, tokens, previous requests, previous tokens): rolled as the next grant would roll
    them (one minute on, this minute becomes the previous one; further on, or more than a minute
    ahead of this replica's clock, nothing counts; the next one, `rate_window`), but only read."""
    window = rate_window(stored, now)
    requests, tokens, prev_requests, prev_tokens = counts
    if stored == window - 1:
        requests, tokens, prev_requests, prev_tokens = 0.0, 0.0, requests, tokens
    elif stored != window:
        return RateCount()
    return RateCount(
        sliding_count(prev_requests, requests, now, window),
        sliding_count(prev_tokens, tokens, now, window),
    )


def sliding_wait(
    prev: float, cur: float, now: float, window: int, limit: float, need: float
) -> float:
    """How long until the sliding estimate leaves room for `need` more under `limit`: first as
    the previous window's weight fades within this one, else in the next window as this one's
    fades in turn. (The end of the fixed window is too soon: the window just ended still counts
    in full at the start of the next, so a caller retrying then was refused again.) The Redis
    script computes the same, in the same order, so both stores answer the same float."""
    start = window * RATE_WINDOW_S
    room = limit - need - cur
    if room >= 0 and prev > 0:
        return max(0.0, start + RATE_WINDOW_S * (1 - room / prev) - now)
    following = start + RATE_WINDOW_S
    room = max(0.0, limit - need)
    if cur <= 0 or room >= cur:
        return max(0.0, following - now)
    return following + RATE_WINDOW_S * (1 - room / cur) - now
