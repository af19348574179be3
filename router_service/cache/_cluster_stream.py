"""Cluster streams (`cache.coalesce: cluster`): identical streaming misses on different replicas
share one upstream stream.

Under each replica's stream flights (`_stream_flights.py`): only the pump of a replica's flight
comes here, so the followers of a replica never touch the store. The pump claims the name's
cluster flight (`StateStore.claim_flight`, as unary misses do in `_cluster.py`):

- claimed: it streams from upstream and appends each event to the flight's log (`state/_log.py`:
  one serialized event a line, each append waking the other replicas' readers), bounded by
  `cache.max_entry_bytes` and expiring after `cache.ttl_s`. A stream that ends before its end
  (an error before anything, every caller here left) appends the FAILED line. Then it lands
  its lease, which it renewed while the stream ran (`ClusterFlights.leading`): a stream longer
  than `flight_lease_s` still holds the other replicas' identical misses to its log.
- held by another replica's pump: it reads that log from its first line on, live. A log that
  fails, is cut (bounded), says nothing while the lease is no longer renewed (its replica died:
  checked after each `flight_lease_s` of silence) or says nothing for `flight_ttl_s` raises `Cut`:
  the reader asks upstream itself when nothing reached its callers yet (`_stream.py`).
"""

from __future__ import annotations

import base64
from collections.abc import AsyncGenerator, Callable
from contextlib import AsyncExitStack, aclosing

from clients.switchboard.v1 import router_service_pb2 as pb
from router_service.cache._cluster import ClusterFlights
from router_service.cache._stream_flights import Cut, cut_error
from router_service.config import CacheConfig
from router_service.engine import Afterwork
from router_service.state import DROPPED, DocumentLines, FlightClaim, Landing, LogWriter, StateStore

__all__ = ["ClusterStreams"]

Fresh = Callable[[], AsyncGenerator[pb.ChatStreamResponse, None]]
_LOG = "cache-stream:"
_FAILED = b"x"  # the line that says the stream ended before its end
_CHECK_S = 1.0  # how often a reader that hears no wakes reads again
_MARGIN = 4096  # room for the lines' ends and an event's framing
_ENDS = frozenset({"summary", "error"})
CUT_SHARED = cut_error(
    "the identical stream it shared, on another replica, ended before its end", "stream_cut"
)


class _Lapsed(Exception):
    """Nothing was appended to the log for `flight_ttl_s`."""


def _log_name(name: str, token: str) -> str:
    """One log per lease: a reader never reads an older flight's log of the same request."""
    return f"{_LOG}{name}:{token}"


class ClusterStreams:
    def __init__(
        self, store: StateStore, afterwork: Afterwork, cluster: ClusterFlights, config: CacheConfig
    ) -> None:
        self._store = store
        self._afterwork = afterwork
        self._cluster = cluster
        self._config = config

    async def claim(self, name: str, remaining_s: float | None) -> FlightClaim:
        return await self._store.claim_flight(name, self._cluster.ttl(remaining_s))

    async def lead(
        self, name: str, token: str, remaining_s: float | None, fresh: Fresh
    ) -> AsyncGenerator[pb.ChatStreamResponse, None]:
        """`fresh()`'s events, each appended to the flight's log first; its lease renewed while
        they come, up to the call's deadline (`remaining_s` from now; None: none)."""
        config = self._config
        # Bounded as a kept answer is, its events base64-encoded.
        log_bytes = config.max_entry_bytes * 4 // 3 + _MARGIN
        log = LogWriter(
            self._store, _log_name(name, token), max_lines=log_bytes, max_bytes=log_bytes
        )
        await self._store.put_document(log.name, b"", config.ttl_s)
        ended = False
        try:
            async with self._cluster.leading(name, token, remaining_s), aclosing(fresh()) as events:
                async for event in events:
                    await log.append(base64.b64encode(event.SerializeToString()) + b"\n", 1)
                    ended = event.WhichOneof("event") in _ENDS
                    yield event
        finally:
            # Afterwork: a pump cancelled (every caller left) still tells the other replicas.
            stack = AsyncExitStack()
            stack.push_async_callback(self._land, name, token, log, ended)
            await self._afterwork.close(stack)

    async def _land(self, name: str, token: str, log: LogWriter, ended: bool) -> None:
        if not ended:
            await log.append(_FAILED + b"\n", 1)
        await self._store.land_flight(name, token, Landing.KEPT if ended else Landing.EMPTY)

    async def follow(self, name: str, holder: str) -> AsyncGenerator[pb.ChatStreamResponse, None]:
        """The events another replica's pump (leading the flight as `holder`) appends to its
        log, from the first on, until its last (a summary or an error event); Cut when it will
        not come. Counted as unary waits are (`cluster_waits`: kept, empty, lapsed)."""
        try:
            async for event in self._read(name, holder):
                if event.WhichOneof("event") in _ENDS:  # counted before: its reader may stop
                    self._cluster.count(Landing.KEPT)
                yield event
        except _Lapsed:
            self._cluster.count(Landing.LAPSED)
            raise Cut(CUT_SHARED) from None
        except Cut:
            self._cluster.count(Landing.EMPTY)
            raise

    async def _read(self, name: str, holder: str) -> AsyncGenerator[pb.ChatStreamResponse, None]:
        store, log_name = self._store, _log_name(name, holder)
        quiet_s, seen, lapsed = 0.0, False, False
        # Silent for a lease: is its leader alive (renewing)? Else it is gone, not just slow.
        quiet_wait_s = min(self._config.flight_ttl_s, self._cluster.lease_s)
        with store.watch_flight(log_name) as watch:
            lines = DocumentLines(store, log_name)
            while True:
                hearing = await store.hear_flights()  # a subscriber lost meanwhile: anew
                wait_s = quiet_wait_s if hearing else _CHECK_S
                watch.rearm()  # a wake from here on ends the wait below
                read = await lines.more()
                if read is None and seen:  # expired under it
                    raise Cut(CUT_SHARED)
                seen = seen or read is not None
                for line in read or ():
                    if line in (_FAILED, DROPPED):
                        raise Cut(CUT_SHARED)
                    event = pb.ChatStreamResponse.FromString(base64.b64decode(line))
                    yield event
                    if event.WhichOneof("event") in _ENDS:
                        return
                if read or lines.behind:
                    quiet_s = 0.0
                    if lines.behind:
                        continue
                if lapsed:  # the log read once more after the lease was found out: no end
                    raise _Lapsed
                if not await watch.notified(wait_s, on_clock=True):  # a lease's time: clock's
                    quiet_s += wait_s
                    if quiet_s >= self._config.flight_ttl_s:  # its replica stopped writing
                        raise _Lapsed
                    lapsed = await store.flight_left(name, holder) <= 0  # its leader died
