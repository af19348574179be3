"""ReadCache: cooldowns, session rules and sticky choices read from Redis, kept until Redis says
they changed (server-assisted client-side caching: `CLIENT TRACKING`, RESP2 redirect mode).

Every routed request reads the same few keys before anything else (its deployments' cooldowns,
its session's bans and sticky deployment) and they seldom change: a round trip each time was a
third of what the Redis backend added to a call. Here a replica reads a key from Redis once and
then from memory, until Redis reports that someone (any replica, this one included) wrote it.

How: one subscriber connection per replica (`CLIENT ID`, then `SUBSCRIBE __redis__:invalidate`);
each pooled connection turns tracking on, redirected to it, in OPTIN mode, and a cached read
is `CLIENT CACHING YES` + `MGET` in one write, so only those keys are tracked (never the keys the
Lua scripts read). What can go wrong, and what is done:

- An invalidation may overtake the reply of a read of the same key (two connections): a key
  invalidated while its read is in flight is not kept.
- This replica's own write is known before Redis's invalidation comes back: the writer forgets
  the key before the write and again when it is done (`forget`), so its next read goes to
  Redis.
- A lost connection (the subscriber, or a pooled one whose tracked keys Redis then forgets):
  everything cached is dropped; the cache fills again once the subscriber is back.
- A server that refuses tracking (older than 6, some proxies): logged once, and every read goes
  to Redis as before.
- A connection that dies without telling (a silent network partition) stops invalidations
  unnoticed: no entry is used more than `max_age_s` after it was read, whatever happens.

Entries are the stored strings; whether a deadline is in force or a value has expired is decided
at each read against the clock, so time alone never makes an entry wrong. At most `max_keys`
entries are kept (oldest dropped first).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from router_service.clock import SYSTEM_CLOCK, Clock
from router_service.state._resp import RespClient, replies
from router_service.state._resp_wire import Command, RedisReplyError, first_error

if TYPE_CHECKING:
    from router_service.state._resp import _Connection

__all__ = ["ReadCache"]

log = logging.getLogger("switchboard.state")

_CHANNEL = "__redis__:invalidate"
_RETRY_S = 1.0  # after a subscriber could not be connected


class ReadCache:
    def __init__(
        self,
        client: RespClient,
        clock: Clock = SYSTEM_CLOCK,
        *,
        max_keys: int = 10_000,
        max_age_s: float = 10.0,
    ) -> None:
        self._client = client
        self._clock = clock
        self._max_keys = max_keys
        self._max_age_s = max_age_s
        # key -> (stored string or None, monotonic instant it was read)
        self._entries: dict[str, tuple[str | None, float]] = {}
        # Keys whose read is in flight, each with the read's ticket; an invalidation removes it.
        self._filling: dict[str, int] = {}
        self._tickets = itertools.count(1)
        self._subscriber: _Connection | None = None  # the subscriber connection while it is up
        self._subscriber_id: int | None = None
        self._subscribing = asyncio.Lock()
        self._retry_at = 0.0  # no subscriber attempt before this monotonic instant
        self.enabled = True  # False for good once the server refused tracking
        self.hits = 0
        self.misses = 0
        self.invalidations = 0
        client.on_connection_lost = self.flush

    def cached(self, keys: Sequence[str]) -> list[str | None] | None:
        """Every key's stored string (None: absent) if all are cached, else None."""
        entries = self._entries
        try:
            found = [entries[key] for key in keys]
        except KeyError:
            self.misses += 1
            return None
        oldest = self._clock.monotonic() - self._max_age_s
        if any(read_at < oldest for _, read_at in found):
            self.misses += 1
            return None
        self.hits += 1
        return [value for value, _ in found]

    async def mget(self, keys: Sequence[str], after: Sequence[Command] = ()) -> list[Any]:
        """`MGET keys` then the `after` commands, in one round trip, keeping what the MGET found
        while Redis tracks it; the replies as `RespClient.pipeline` gives them."""
        connection = await self._client.connection()
        prefix = await self._tracking_commands(connection) if self.enabled else []
        ticket = next(self._tickets)
        if prefix:
            for key in keys:
                self._filling[key] = ticket
        commands = [*prefix, ("MGET", *keys), *after]
        try:
            got = await replies(connection.send(commands))
        except BaseException:
            self._unfill(keys, ticket)
            raise
        head, rest = got[: len(prefix)], got[len(prefix) :]
        refused = first_error(head)
        if refused is not None:
            connection.tracking_to = None
            self._tracking_failed(refused)
        elif prefix and isinstance(rest[0], list):
            self._fill(keys, rest[0], ticket, connection)
        self._unfill(keys, ticket)
        return rest

    def forget(self, key: str) -> None:
        """This replica writes `key`: its next read goes to Redis."""
        self._entries.pop(key, None)
        self._filling.pop(key, None)

    def flush(self) -> None:
        self._entries.clear()
        self._filling.clear()

    async def aclose(self) -> None:
        self.flush()
        if self._subscriber is not None:
            self._subscriber.close()
            self._subscriber = None

    # -- tracking ---------------------------------------------------------------------------------
    async def _tracking_commands(self, connection: _Connection) -> list[Command]:
        """What to send before a cached read on `connection`: tracking on (again, when the
        subscriber changed since), then OPTIN's opt-in for the next command."""
        subscriber_id = await self._subscribed()
        if subscriber_id is None:
            return []
        commands: list[Command] = []
        if connection.tracking_to != subscriber_id:
            if connection.tracking_to is not None:
                commands.append(("CLIENT", "TRACKING", "OFF"))
            # Not NOLOOP: a key this replica read and then wrote on the same connection must
            # be invalidated too (a read that raced the write may have kept the old value).
            commands.append(("CLIENT", "TRACKING", "ON", "REDIRECT", subscriber_id, "OPTIN"))
            connection.tracking_to = subscriber_id
        commands.append(("CLIENT", "CACHING", "YES"))
        return commands

    async def _subscribed(self) -> int | None:
        """The subscriber's client id, connecting it first if needed; None if it cannot be."""
        if self._subscriber is not None and self._subscriber.broken is None:
            return self._subscriber_id
        async with self._subscribing:
            if self._subscriber is not None and self._subscriber.broken is None:
                return self._subscriber_id
            self.flush()  # nothing cached before this subscriber can be trusted any more
            if self._clock.monotonic() < self._retry_at:
                return None
            try:
                subscriber = await self._client.dedicated()
            except (OSError, TimeoutError):
                # The read goes on uncached; no new attempt (and its connect timeout) for a
                # while: reads must not each wait for a subscriber that cannot be made.
                self._retry_at = self._clock.monotonic() + _RETRY_S
                return None
            subscriber.on_push = self._message
            subscriber.on_lost = self.flush
            try:
                client_id, subscribed = await replies(
                    subscriber.send([("CLIENT", "ID"), ("SUBSCRIBE", _CHANNEL)])
                )
            except BaseException:
                subscriber.close()
                raise
            # Either refused (an ACL without CLIENT or SUBSCRIBE, a proxy): no invalidation
            # would ever arrive, so nothing may be kept.
            refused = first_error((client_id, subscribed))
            if refused is not None:
                subscriber.close()
                self._refused(refused)
                return None
            self._subscriber, self._subscriber_id = subscriber, int(client_id)
            return self._subscriber_id

    def _message(self, message: Any) -> None:
        """A pushed `message` on the invalidation channel: the keys that changed, or None when
        the whole database was flushed."""
        if not (isinstance(message, list) and len(message) == 3 and message[0] == "message"):
            return
        keys = message[2]
        if keys is None:
            self.invalidations += len(self._entries)
            self.flush()
            return
        keys = [keys] if isinstance(keys, str) else keys  # a PUBLISH of one key name
        self.invalidations += len(keys)
        for key in keys:
            self.forget(key)

    def _fill(
        self, keys: Sequence[str], values: list[Any], ticket: int, connection: _Connection
    ) -> None:
        subscriber = self._subscriber
        if connection.broken is not None or subscriber is None or subscriber.broken is not None:
            return  # whatever Redis tracked for us there is gone
        entries, filling = self._entries, self._filling
        now = self._clock.monotonic()
        for key, value in zip(keys, values, strict=True):
            if filling.get(key) == ticket:  # not invalidated while the read was in flight
                entries.pop(key, None)  # re-inserted: the oldest entries stay first
                entries[key] = (value, now)
        while len(entries) > self._max_keys:
            del entries[next(iter(entries))]

    def _unfill(self, keys: Sequence[str], ticket: int) -> None:
        filling = self._filling
        for key in keys:
            if filling.get(key) == ticket:
                del filling[key]

    def _tracking_failed(self, error: RedisReplyError) -> None:
        if "redirect" in str(error).lower():
            # The subscriber went away between its `CLIENT ID` and this connection's tracking:
            # the next read subscribes again.
            if self._subscriber is not None:
                self._subscriber.close()
                self._subscriber = None
            self.flush()
            return
        self._refused(error)

    def _refused(self, error: RedisReplyError) -> None:
        if self.enabled:
            log.warning("redis refused key tracking (%s): reads are not cached", error)
        self.enabled = False
        self.flush()
