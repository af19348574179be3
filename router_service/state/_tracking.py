"""ReadCache: cooldowns, session rules and sticky choices read from Redis, kept until Redis says
they changed (server-assisted client-side caching: `CLIENT TRACKING`, broadcast mode, RESP2).

Every routed request reads the same few keys before anything else (its deployments' cooldowns,
its session's bans and sticky deployment) and they seldom change: a round trip each time was a
third of what the Redis backend added to a call. Here a replica reads a key from Redis once and
then from memory, until Redis reports that someone (any replica, this one included) wrote it.

How: one subscriber connection per replica. It takes its `CLIENT ID`, turns tracking on for
itself in BCAST mode over the cached key kinds' prefixes only (`{prefix}:dl:` and
`{prefix}:val:`, given by the store; never the kinds not read through the cache: writes to those
would be reported for nothing), redirected to itself, then `SUBSCRIBE __redis__:invalidate`.
Redis then reports every write under those prefixes, by anyone, to that connection; reads are
plain `MGET`s on the pooled connections. Why broadcast and not OPTIN (per-key tracking, as
before): Redis keeps every key an OPTIN client ever read in its tracking table until that key is
written (even after the client is gone), so keys read once and never written (each new session's
sticky and ban keys) piled up there, ~30 k keys and ~4 MiB of Redis memory a minute under the
soak (`benchmarks/README.md`, "Slow leaks"); BCAST keeps one entry per prefix. Why tracking on
the subscriber and not on the pooled connections: in BCAST mode every tracking connection gets
its own copy of each invalidation, and the subscriber's loss is then the one failure that ends
tracking. Not NOLOOP: this replica's own writes (on the pooled connections) are reported too.
What can go wrong, and what is done:

- An invalidation may overtake the reply of a read of the same key (two connections): a key
  invalidated while its read is in flight is not kept.
- This replica's own write is known before Redis's invalidation comes back: the writer forgets
  the key before the write and again when it is done (`forget`), so its next read goes to
  Redis.
- A lost subscriber (tracking ends with it): everything cached is dropped, and reads in flight
  are not kept; reads go uncached until a subscriber is back (the next read makes one). A lost
  pooled connection loses nothing: tracking does not live there.
- A server that refuses tracking (older than 6, some proxies, an ACL; one whose `CLIENT ID` is
  no number, a proxy's own answer): logged once, and every read goes to Redis as before.
- A connection that dies without telling (a silent network partition) stops invalidations
  unnoticed: no entry is used more than `max_age_s` after it was read, whatever happens.

Entries are the stored strings; whether a deadline is in force or a value has expired is decided
at each read against the clock, so time alone never makes an entry wrong. At most `max_keys`
entries are kept (oldest dropped first), and only keys under the tracked prefixes.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from router_service.clock import SYSTEM_CLOCK, Clock
from router_service.state._redis_entries import passing
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
        prefixes: Sequence[str],
        clock: Clock = SYSTEM_CLOCK,
        *,
        max_keys: int = 10_000,
        max_age_s: float = 10.0,
    ) -> None:
        self._client = client
        # The key prefixes Redis reports writes under (no prefix may start with another).
        self._prefixes = tuple(prefixes)
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
        while Redis reports changes to it; the replies as `RespClient.pipeline` gives them."""
        if not (self.enabled and await self._subscribed() is not None):
            return await self._client.pipeline([("MGET", *keys), *after])  # kept nowhere
        ticket = next(self._tickets)
        for key in keys:  # from here on, an invalidation of one of them makes the reply stale
            self._filling[key] = ticket
        try:
            got = await self._client.pipeline([("MGET", *keys), *after])
            if isinstance(got[0], list):
                self._fill(keys, got[0], ticket)
        finally:
            self._unfill(keys, ticket)
        return got

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
            except (OSError, RedisReplyError):  # also a full Redis's greeting, as the login's reply
                # The read goes on uncached; no new attempt (and its connect timeout) for a
                # while: reads must not each wait for a subscriber that cannot be made.
                self._retry_at = self._clock.monotonic() + _RETRY_S
                return None
            subscriber.on_push = self._message
            subscriber.on_lost = self.flush
            try:
                client_id = await self._track(subscriber)
            except BaseException as exc:  # lost, timed out or cancelled: the connection goes too
                subscriber.close()
                if not isinstance(exc, OSError):
                    raise
                # As when it cannot be made: the read goes on uncached (failed, every read
                # failed while a proxy hung up on CLIENT: the replica never stayed on Redis).
                self._retry_at = self._clock.monotonic() + _RETRY_S
                return None
            if client_id is None or self._client.closed:  # refused, or closed meanwhile
                subscriber.close()
                return None
            self._subscriber, self._subscriber_id = subscriber, client_id
            return client_id

    async def _track(self, subscriber: _Connection) -> int | None:
        """Tracking on `subscriber` (broadcast over our prefixes, reported to itself), and its
        subscription to the reports: its client id, or None if the server refused either (no
        invalidation would ever arrive, so nothing may be kept)."""
        (client_id,) = await replies(subscriber.send([("CLIENT", "ID")]))
        if isinstance(client_id, RedisReplyError):
            self._refused(client_id)
            return None
        if not isinstance(client_id, int) or isinstance(client_id, bool):  # a proxy's answer
            self._refused(f"CLIENT ID answered a {type(client_id).__name__}, not a number")
            return None
        tracking: Command = ("CLIENT", "TRACKING", "ON", "REDIRECT", client_id, "BCAST")
        for prefix in self._prefixes:
            tracking = (*tracking, "PREFIX", prefix)
        refused = first_error(await replies(subscriber.send([tracking, ("SUBSCRIBE", _CHANNEL)])))
        if refused is not None:
            self._refused(refused)
            return None
        return client_id

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

    def _fill(self, keys: Sequence[str], values: list[Any], ticket: int) -> None:
        subscriber = self._subscriber
        if subscriber is None or subscriber.broken is not None:
            return  # tracking ended with it: nothing read may be kept
        entries, filling, prefixes = self._entries, self._filling, self._prefixes
        now = self._clock.monotonic()
        for key, value in zip(keys, values, strict=True):
            # Not invalidated while the read was in flight, and a key Redis reports writes of.
            if filling.get(key) == ticket and key.startswith(prefixes):
                entries.pop(key, None)  # re-inserted: the oldest entries stay first
                entries[key] = (value, now)
        while len(entries) > self._max_keys:
            del entries[next(iter(entries))]

    def _unfill(self, keys: Sequence[str], ticket: int) -> None:
        filling = self._filling
        for key in keys:
            if filling.get(key) == ticket:
                del filling[key]

    def _refused(self, error: RedisReplyError | str) -> None:
        # A full or busy Redis (its greeting read as the reply): not a "no".
        if isinstance(error, RedisReplyError) and passing(error):
            self._retry_at = self._clock.monotonic() + _RETRY_S
            return
        if self.enabled:
            log.warning("redis refused key tracking (%s): reads are not cached", error)
        self.enabled = False
        self.flush()
