"""How the Redis store's entries are written and read back, and the one boundary where Redis
errors become ours (`translated`).

Deadlines, values and documents carry their expiry (the writing replica's clock) in the entry,
and Redis's own TTL, a little later (`SLACK_MS`), removes the key: the replicas' clock decides
whether an entry is in force, as in the memory store, and Redis only cleans up.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Any

from router_service.state._base import RateCount, RateWindows, StoreUnavailableError
from router_service.state._rates import rate_count
from router_service.state._resp_wire import RedisReplyError, pairs, raw

__all__ = [
    "SLACK_MS",
    "granted_windows",
    "live_buckets",
    "live_deadlines",
    "live_documents",
    "live_rates",
    "live_values",
    "opt",
    "passing",
    "translated",
    "ttl_px",
]

# How long a key outlives the last instant it can matter (clock skew between replicas).
SLACK_MS = 1000

# Error replies of a Redis that answers otherwise by itself once it is done loading, running a
# script or failing over: an outage (tried again), not the call's answer.
_PASSING = frozenset({"LOADING", "BUSY", "READONLY", "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN"})
# What a Redis at `maxclients` writes to a new connection before closing it: read as the reply
# of the login or of the first command sent, it is no answer of theirs (an outage too).
_FULL = "ERR max number of clients reached"


@contextlib.contextmanager
def translated(undo: Callable[[], Awaitable[object]] | None = None) -> Iterator[None]:
    """The one boundary where redis (and socket) errors become ours. `undo`: what takes the
    write back if the connection failed before its reply (Redis may have run it)."""
    try:
        yield
    except RedisReplyError as exc:  # Redis answered: the write did not happen
        refused = None if passing(exc) else str(exc).split(" ", 1)[0] or "ERR"
        raise StoreUnavailableError(f"redis: {_said(exc)}", refused=refused) from exc
    except OSError as exc:  # ConnectionError, TimeoutError
        raise StoreUnavailableError(f"redis: {_said(exc)}", undo=undo) from exc


def passing(exc: RedisReplyError) -> bool:
    """Whether an error reply is an outage (Redis busy, loading, failing over or full) rather
    than the answer to the command it came as the reply of."""
    return str(exc).split(" ", 1)[0] in _PASSING or str(exc).startswith(_FULL)


def _said(exc: Exception) -> str:
    """An error's text, or its kind when it has none (a connect timeout's `TimeoutError()`:
    an operator read "unreachable (redis: )")."""
    return str(exc) or type(exc).__name__


def opt(value: int | None) -> str:
    """An optional limit as a script argument ("": none)."""
    return "" if value is None else str(value)


def ttl_px(ttl_s: float) -> int:
    """The `PX` of an entry in force for `ttl_s`: Redis removes it a little after."""
    return max(0, math.ceil(ttl_s * 1000)) + SLACK_MS


def live_deadlines(stored: Sequence[str | None], now: float) -> list[float]:
    """Stored deadlines ("until"), 0.0 for those absent or past."""
    out = []
    for value in stored:
        until = float(value) if value is not None else 0.0
        out.append(until if until > now else 0.0)
    return out


def live_values(stored: Sequence[str | None], now: float) -> list[str | None]:
    """Stored values ("expiry|value"), None for those absent or expired."""
    out: list[str | None] = []
    for entry in stored:
        if entry is None:
            out.append(None)
            continue
        expiry, _, value = str(entry).partition("|")
        out.append(value if float(expiry) > now else None)
    return out


def live_documents(stored: Sequence[Any], now: float) -> list[bytes | None]:
    """Stored documents (b"expiry|data"), None for those absent or expired."""
    out: list[bytes | None] = []
    for entry in stored:
        expiry, _, data = raw(entry).partition(b"|") if entry is not None else (b"0", b"", b"")
        out.append(data if float(expiry) > now else None)
    return out


def live_buckets(fields: Any, index: Any, now: float) -> dict[int, dict[str, float]]:
    """One name's buckets still in force (HGETALL of its totals, ZRANGE of its buckets' expiry
    WITHSCORES): bucket -> field -> total."""
    live: dict[int, dict[str, float]] = {
        int(bucket): {} for bucket, expiry in pairs(index) if float(expiry) > now
    }
    for key, total in pairs(fields):
        bucket, _, field = key.partition("|")
        if int(bucket) in live:
            live[int(bucket)][field] = float(total)
    return live


def live_rates(replies: Sequence[Any], now: float) -> list[RateCount]:
    """Rate windows (HMGET of w r t pr pt each) as their limits count them at `now`."""
    out = []
    for stored, *counts in replies:
        if stored is None:
            out.append(RateCount())
            continue
        out.append(rate_count(int(float(stored)), [float(c or 0) for c in counts], now))
    return out


def granted_windows(now: float, window: int, counts: Sequence[Any]) -> RateWindows:
    """The rate windows an ACQUIRE left (r, t, pr, pt as written: `%.17g`, read back exact)."""
    requests, tokens, prev_requests, prev_tokens = (float(c) for c in counts)
    return RateWindows(now, window, requests, tokens, prev_requests, prev_tokens)
