"""StateStore on one Redis that every replica shares (DESIGN.md §5, issue #9).

Each decision is one round trip: a Lua script (EVALSHA; the script is sent again when a
restarted server has forgotten it), one MGET, or one pipeline, on our own small client
(`_resp.py`: multiplexed, auto-pipelined connections; see there why not redis-py). What decides
nothing makes none: deadlines and values come from the read cache once read (`_tracking.py`),
and a slot without limits is recorded without waiting for Redis (`_acquire_unlimited`).
Time is the caller's clock, as in the memory store: deadlines are the wall-clock instants the
callers pass in, leases and marks expire at `now + ttl_s` of the replica that took them, so the
replicas' clocks must agree (NTP) to well within the shortest cooldown.

Keys, all under `{prefix}:` and each with a TTL a second past the last instant it can matter:

    {prefix}:slot:{resource}   zset   lease id -> expiry            (a key's leases)
    {prefix}:rate:{resource}   hash   w r t pr pt                   (its rpm/tpm windows)
    {prefix}:dl:{name}         string until                         (cooldowns, disables)
    {prefix}:dlclr:{name}      string when it was last cleared      (a late write loses)
    {prefix}:val:{name}        string "expiry|value"                (a session's sticky choice)
    {prefix}:grp:{group}       zset   "token\\nmember" -> expiry     (active requests)
    {prefix}:grpn:{group}      hash   member -> live marks          (distinct-member limit)
    {prefix}:bkt:{name}        hash   "bucket|field" -> total       (routing statistics)
    {prefix}:bkti:{name}       zset   bucket -> expiry
    {prefix}:doc:{name}        string "expiry|" + document bytes    (stored responses, cache,
                                                                     conversations)
    {prefix}:flt:{name}        string "expiry|token"                (a flight's lease)
    {prefix}:flights           channel: landings                    (`_redis_flights.py`)

Documents (large, read a few times at most) are read with a plain MGET, not the read cache
(`_redis_documents.py`).

Redis errors become `StoreUnavailableError` at one boundary (`_redis_entries.translated`),
around every call here; how each kind's entries are written and read back lives there too.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import secrets
from collections.abc import AsyncIterator, Sequence
from typing import Any

from router_service.clock import SYSTEM_CLOCK, Clock
from router_service.state import _redis_scripts as lua
from router_service.state._base import (
    CLEARED_KEPT_S,
    RATE_WINDOW_S,
    UNHURRIED,
    RateCount,
    Reading,
    SlotGrant,
    SlotRequest,
    StateStore,
)
from router_service.state._redis_buckets import RedisBuckets
from router_service.state._redis_counts import RedisCounts
from router_service.state._redis_documents import RedisDocuments
from router_service.state._redis_entries import (
    SLACK_MS,
    granted_windows,
    live_deadlines,
    live_rates,
    live_values,
    opt,
    translated,
)
from router_service.state._redis_flights import RedisFlights
from router_service.state._redis_values import RedisValues
from router_service.state._resp import RespClient
from router_service.state._resp_wire import Command, checked
from router_service.state._tracking import ReadCache


class RedisStateStore(
    RedisDocuments, RedisFlights, RedisBuckets, RedisCounts, RedisValues, StateStore
):
    """The StateStore on Redis. Owns `client` (closed by `aclose`). Build with `from_url`."""

    batches_concurrent_calls = True

    def __init__(
        self,
        client: RespClient,
        *,
        prefix: str,
        clock: Clock = SYSTEM_CLOCK,
        read_cache: bool = True,
    ) -> None:
        self._client = client
        self.prefix = prefix
        # Deadlines and values read once, then from memory until Redis says they changed: the
        # only kinds read through the cache, so the only prefixes Redis reports writes under.
        tracked = (self._key("dl", ""), self._key("val", ""))
        self.cache = ReadCache(client, tracked, clock) if read_cache else None
        self._clock = clock
        # Lease ids and marks are unique across replicas: a random instance tag and a counter.
        self._instance = secrets.token_hex(6)
        self._ids = itertools.count(1)
        self._closed = False
        self._acquire = client.script(lua.ACQUIRE)
        self._add_tokens = client.script(lua.ADD_TOKENS)
        self._renew = client.script(lua.RENEW)
        self._move_slots = client.script(lua.MOVE_SLOTS)
        self._extend = client.script(lua.EXTEND_DEADLINE)
        self._clear = client.script(lua.CLEAR_DEADLINE)
        self._enter = client.script(lua.ENTER)
        self._leave = client.script(lua.LEAVE)
        self._members = client.script(lua.MEMBERS)
        self._init_buckets(client)
        self._init_counts(client)
        self._init_values(client)
        self._init_documents(client)
        self._init_flights(client)

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        prefix: str,
        clock: Clock = SYSTEM_CLOCK,
        pool_size: int = 2,
        socket_timeout_s: float = 0.5,
        connect_timeout_s: float = 0.5,
        read_cache: bool = True,
        reply_clock: Clock | None = None,
    ) -> RedisStateStore:
        """A store on `pool_size` multiplexed connections, made lazily. No retry and no backoff:
        an unreachable Redis must fail fast so that requests go on with local state (the
        ResilientStateStore); a connection that died is made again by the next command.
        `reply_clock`: what `socket_timeout_s` is timed on (None: the event loop's clock)."""
        client = RespClient(
            url,
            connections=pool_size,
            timeout_s=socket_timeout_s,
            connect_timeout_s=connect_timeout_s,
            reply_clock=reply_clock,
        )
        return cls(client, prefix=prefix, clock=clock, read_cache=read_cache)

    def _key(self, kind: str, name: str) -> str:
        return f"{self.prefix}:{kind}:{name}"

    def _new_id(self) -> str:
        return f"{self._instance}.{next(self._ids)}"

    async def ping(self) -> None:
        with translated():
            await self._client.execute("PING")

    # -- slots ---------------------------------------------------------------------------------
    async def acquire(self, request: SlotRequest) -> SlotGrant:
        if request.max_in_flight is None and request.rpm is None and request.tpm is None:
            return await self._acquire_unlimited(request)
        lease_id, now = self._new_id(), self._clock.now()
        keys = [self._key("slot", request.resource), self._key("rate", request.resource)]
        keys += [self._key("dl", name) for name in request.unless]
        args: list[str | int] = [
            repr(now),
            repr(float(request.ttl_s)),
            opt(request.max_in_flight),
            opt(request.rpm),
            opt(request.tpm),
            str(request.tokens),
            lease_id,
            repr(RATE_WINDOW_S),
            SLACK_MS,
        ]
        # A caller gone before the reply, or a reply lost with its connection: the lease Redis
        # may have granted is given back (now, or once Redis answers again), not held for its TTL.
        undo = [("ZREM", keys[0], lease_id)]
        with translated(lambda: self.release(request.resource, lease_id)):
            granted, retry_after, window, *found = await self._acquire(keys, args, undo=undo)
        counts = found[len(request.unless) :]  # the rate windows follow the deadlines
        return SlotGrant(
            lease_id if granted else None,
            retry_after_s=float(retry_after),
            window=int(window),
            deadlines=tuple(float(until) for until in found[: len(request.unless)]),
            rate=granted_windows(now, int(window), counts) if counts else None,
        )

    async def _acquire_unlimited(self, request: SlotRequest) -> SlotGrant:
        """A slot with no limit to enforce has nothing for Redis to decide: its `unless`
        deadlines are read (from the read cache: no round trip once read) and the lease is
        recorded without waiting (`RespClient.post`), for the counts other replicas and the
        admin read (`held`: up to `LAZY_S` late there, in order with this replica's commands)."""
        found = await self.deadlines(request.unless) if request.unless else []
        if any(found):
            return SlotGrant(None, deadlines=tuple(found))
        now = self._clock.now()
        lease_id, key = self._new_id(), self._key("slot", request.resource)
        record: list[Command] = [
            ("ZREMRANGEBYSCORE", key, "-inf", repr(now)),  # leases of replicas that died
            ("ZADD", key, repr(now + request.ttl_s), lease_id),
            ("PEXPIRE", key, math.ceil(request.ttl_s * 1000) + SLACK_MS),
        ]
        with translated():
            await self._client.post(record)
        window = math.floor(now / RATE_WINDOW_S)
        return SlotGrant(lease_id, window=window, deadlines=tuple(found))

    async def add_tokens(
        self, resource: str, window: int, delta: int, requests: int = 0, *, lease_id: str = ""
    ) -> None:
        args: list[str | int] = [window, delta, requests]
        now = self._clock.now()
        if window >= math.floor(now / RATE_WINDOW_S):  # rolled to when behind, kept as a grant
            ttl_ms = math.ceil(((window + 2) * RATE_WINDOW_S - now) * 1000) + SLACK_MS
            args += ["1", ttl_ms]
        with translated():
            await self._add_tokens([self._key("rate", resource)], args)

    async def release(self, resource: str, lease_id: str) -> None:
        # After the answer (UNHURRIED) a release rides with the next commands on its connection
        # (another call's lease) rather than making a round trip of its own: other replicas see
        # the slot free up to `LAZY_S` later; this one's next lease there is written after it.
        key = self._key("slot", resource)
        with translated():
            await self._client.execute("ZREM", key, lease_id, lazy=UNHURRIED.get())

    async def renew(self, resource: str, lease_id: str, ttl_s: float) -> bool:
        args: list[str | int] = [repr(self._clock.now()), lease_id, repr(float(ttl_s)), SLACK_MS]
        with translated():
            renewed = await self._renew([self._key("slot", resource)], args)
        return bool(renewed)

    async def move_slots(self, source: str, target: str) -> None:
        keys = [self._key(kind, name) for name in (source, target) for kind in ("slot", "rate")]
        now, mine = repr(self._clock.now()), f"{self._instance}."
        with translated():
            await self._move_slots(keys, [now, repr(RATE_WINDOW_S), SLACK_MS, mine])

    async def held(self, resources: Sequence[str]) -> list[int]:
        if not resources:
            return []
        with translated():
            counts = checked(await self._client.pipeline(self._held_commands(resources)))
        return [int(c) for c in counts]

    def _held_commands(self, resources: Sequence[str]) -> list[tuple[str, ...]]:
        after_now = f"({self._clock.now()!r}"
        return [("ZCOUNT", self._key("slot", r), after_now, "+inf") for r in resources]

    async def rates(self, resources: Sequence[str]) -> list[RateCount]:
        return (await self.read(rates=resources)).rates if resources else []

    def _rate_commands(self, resources: Sequence[str]) -> list[tuple[str, ...]]:
        return [("HMGET", self._key("rate", r), "w", "r", "t", "pr", "pt") for r in resources]

    async def read(
        self,
        *,
        deadlines: Sequence[str] = (),
        held: Sequence[str] = (),
        values: Sequence[str] = (),
        rates: Sequence[str] = (),
    ) -> Reading:
        # One MGET for both (deadlines first, then values), the counts and the rate windows, in
        # one round trip.
        keys = [self._key("dl", n) for n in deadlines] + [self._key("val", n) for n in values]
        after = self._held_commands(held) + self._rate_commands(rates)
        with translated():
            stored, replies = await self._mget(keys, after)
        now = self._clock.now()
        return Reading(
            live_deadlines(stored[: len(deadlines)], now),
            [int(c) for c in replies[: len(held)]],
            live_values(stored[len(deadlines) :], now),
            live_rates(replies[len(held) :], now),
        )

    async def _mget(
        self, keys: list[str], after: Sequence[Command] = ()
    ) -> tuple[list[str | None], list[Any]]:
        """The stored strings of `keys` (from the read cache when it holds them all) and the
        replies of the `after` commands, in at most one round trip."""
        cache = self.cache
        found = cache.cached(keys) if cache is not None and keys else None
        if found is None and keys:
            if cache is not None:
                got = checked(await cache.mget(keys, after))
            else:
                got = checked(await self._client.pipeline([("MGET", *keys), *after]))
            return got[0], got[1:]
        counts = checked(await self._client.pipeline(after)) if after else []
        return found or [], counts

    @contextlib.asynccontextmanager
    async def _writing(self, key: str) -> AsyncIterator[None]:
        """Around this replica's write of a cached key: its next read goes to Redis, whatever a
        read racing the write kept (Redis's own invalidation may come back later)."""
        if self.cache is None:
            yield
            return
        self.cache.forget(key)
        try:
            yield
        finally:
            self.cache.forget(key)

    # -- deadlines -----------------------------------------------------------------------------
    async def extend_deadline(
        self, name: str, until: float, *, decided_at: float | None = None
    ) -> float:
        decided = "" if decided_at is None else repr(float(decided_at))
        args: list[str | int] = [repr(float(until)), repr(self._clock.now()), SLACK_MS, decided]
        key = self._key("dl", name)
        with translated():
            async with self._writing(key):
                current = await self._extend([key, self._key("dlclr", name)], args)
        return float(current)

    async def deadlines(self, names: Sequence[str]) -> list[float]:
        if not names:
            return []
        with translated():
            stored, _ = await self._mget([self._key("dl", n) for n in names])
        return live_deadlines(stored, self._clock.now())

    async def clear_deadline(
        self,
        name: str,
        *,
        only: float | None = None,
        decided_at: float | None = None,
        remember: bool = True,
    ) -> None:
        key, now = self._key("dl", name), self._clock.now()
        at = now if decided_at is None else decided_at
        # Not remembered: kept for no time (CLEAR_DEADLINE writes no clear then).
        kept_ms = math.ceil((at + CLEARED_KEPT_S - now) * 1000) if remember else 0
        # `only` as stored, as written: the exact repr (EXTEND_DEADLINE).
        args: list[str | int] = ["" if only is None else repr(float(only)), repr(at), kept_ms]
        with translated():
            async with self._writing(key):
                await self._clear([key, self._key("dlclr", name)], args)

    # -- groups --------------------------------------------------------------------------------
    def _group_keys(self, group: str) -> list[str]:
        return [self._key("grp", group), self._key("grpn", group)]

    async def enter(
        self, group: str, member: str, *, limit: int | None, ttl_s: float
    ) -> str | None:
        token = self._new_id()
        args: list[str | int] = [
            repr(self._clock.now()),
            member,
            token,
            opt(limit),
            repr(float(ttl_s)),
            SLACK_MS,
        ]
        keys = self._group_keys(group)
        undo: list[Command] = [("EVAL", lua.LEAVE, len(keys), *keys, member, token)]  # see acquire
        with translated(lambda: self.leave(group, member, token)):
            admitted = await self._enter(keys, args, undo=undo)
        return token if admitted else None

    async def leave(self, group: str, member: str, token: str) -> None:
        with translated():
            await self._leave(self._group_keys(group), [member, token])

    async def members(self, group: str) -> dict[str, int]:
        with translated():
            flat = await self._members(self._group_keys(group), [repr(self._clock.now())])
        return {flat[i]: int(flat[i + 1]) for i in range(0, len(flat), 2)}

    def read_cache_counts(self) -> dict[str, int]:
        cache = self.cache
        if cache is None:
            return {}
        return {"hit": cache.hits, "miss": cache.misses, "invalidated": cache.invalidations}

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.notices.aclose()
        if self.cache is not None:
            await self.cache.aclose()
        await self._client.aclose()
