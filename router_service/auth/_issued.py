"""Client keys issued at run time (AdminService.IssueClientKey): kept in the state store as their
SHA-256 only, mirrored in every replica's memory so that `Authenticator.identify` stays a
synchronous dict lookup (no store round trip per call).

The store holds one log (`client-keys`, a growing document kept FOREVER, `_issued_log.py`), one
JSON event a line: `issue` (id, client, label, hash, created, expires, and the bound its issuer
applied) and `revoke` (id). Each append is one atomic step, so replicas issuing at once never
lose each other's events, and every replica folds the same lines in the same order into the
same set of keys: an `issue` that finds its client at its bound (in log order) is void
everywhere, so the bound holds across replicas without a lock. After each append the writer
lands a flight on the log's name (on Redis a PUBLISH every replica hears); each replica's
follower then reads only the new lines. A lost notice is caught by a periodic read
(`auth.issued_keys_resync_s`, on the injected clock).

Compacted: once revoked and expired keys' lines outnumber the live keys (past
`_COMPACT_MIN_EVENTS` lines), or when an append would pass `_MAX_LOG_BYTES`, the appender
rewrites the log as the live keys alone (a compare-and-swap: `_issued_log.py` says why nothing
is lost). Only live keys past `_MAX_LOG_BYTES` (some 15 000) refuse an issue; ephemeral
secrets, which any client may ask for, only half of it (their session configs cannot crowd out
the operator's keys); a revocation is never refused for room.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
from typing import Any

import orjson

from router_service._ids import looked_up_id
from router_service.auth._issued_errors import at_bound, no_such_key, over_share, unconfirmed
from router_service.auth._issued_log import (
    LOG_NAME,
    IssuedKey,
    KeySet,
    LogReader,
    RealtimeGrant,
    head_line,
    read_whole,
    snapshot,
)
from router_service.clock import Clock
from router_service.config import AuthConfig
from router_service.errors import ClientKeyLimitError, StoreUnavailableError
from router_service.state import FOREVER, AppendResult, Landing, StateStore

__all__ = [
    "EPHEMERAL_PREFIX",
    "ISSUED_PREFIX",
    "LOG_NAME",
    "IssuedKey",
    "IssuedKeys",
    "RealtimeGrant",
]

log = logging.getLogger("switchboard.auth")

ISSUED_PREFIX = "sk-sb-"  # an issued key's first characters: an operator tells them apart
EPHEMERAL_PREFIX = "ek_"  # an ephemeral Realtime client secret's, as OpenAI's
_MAX_LOG_BYTES = 4 * 1024 * 1024
# Ephemeral secrets (any chat-scoped client asks for them, each with its session config of up
# to 64 KiB) are appended only while the log is under half of it: they never take the room of
# the keys an operator issues, nor of a revocation.
_MAX_EPHEMERAL_LOG_BYTES = _MAX_LOG_BYTES // 2
# Nor does one client take all of that: its live secrets' lines take a quarter of it at most
# (some 8 secrets with 60 KiB session configs, some 2 000 with small ones), so that others'
# browsers still get theirs. Each line carries it (`max_bytes`): every replica voids one past it.
_EPHEMERAL_SHARE_BYTES = _MAX_EPHEMERAL_LOG_BYTES // 4
# A revocation is appended past the bound of issues: a log full of live keys still takes it
# (and a compaction then drops the revoked key's line), so no key is left unrevocable.
_REVOKE_ROOM_BYTES = 256 * 1024
# A log with fewer lines is not rewritten (a rewrite reads it all): past it, once its dead
# keys' lines outnumber the live keys.
_COMPACT_MIN_EVENTS = 256
_COMPACT_TRIES = 3  # rewrites tried before a full log refuses an issue or revocation
_UNHEARD_CHECK_S = 1.0
# Reads of the log tried after an append, to find the event in it (a store that failed once
# must not turn an issue done into an error, nor one done into a key nobody knows of).
_REREAD_TRIES = 3  # how often a replica that hears no notices reads the log again


class IssuedKeys:
    """This replica's mirror of the issued keys, and the writes that change them. Shared by
    successive runtimes (a reload keeps it); `start` follows the log, `aclose` stops."""

    def __init__(self, store: StateStore, clock: Clock) -> None:
        self._store = store
        self._clock = clock
        self.configured(AuthConfig(open=True))  # its defaults, until a config says more
        self._keys = KeySet()
        self._reader = LogReader(store)
        self.compactions = 0  # rewrites of the log this replica made (tests)
        self._reading = asyncio.Lock()
        self._follower: asyncio.Task[None] | None = None
        self.syncs = 0  # reads of the log done (tests wait for the next one)
        self._synced = asyncio.Event()
        # Set while the follower waits for a notice or its period (tests move the clock then).
        self.resting = asyncio.Event()

    def configured(self, config: AuthConfig) -> IssuedKeys:
        """This mirror under a (reloaded) config's bound and resync period."""
        self._max_keys = config.max_issued_keys
        self._max_ephemeral = config.max_ephemeral_keys
        self._resync_s = config.issued_keys_resync_s
        return self

    def find(self, digest: bytes) -> IssuedKey | None:
        """The live issued key with this SHA-256; None when unknown, revoked or expired.

        A dict lookup, not a constant-time scan: what it could leak through timing is how the
        presented key's SHA-256 compares with stored hashes, and an issued key is 32 random
        bytes: knowing its hash, even whole, does not help to find it (no offline guessing, as
        a human-chosen configured key could allow). The scan over configured keys stays."""
        key = self._keys.by_digest.get(digest)
        return key if key is not None and key.live(self._clock.now()) else None

    def known(self, key_id: str) -> bool:
        """Whether the key `key_id` is live (not revoked, not expired)."""
        key = self._keys.by_id.get(key_id)
        return key is not None and key.live(self._clock.now())

    def listed(self, client: str = "") -> list[IssuedKey]:
        """The live issued keys (of `client` when given), oldest first."""
        now = self._clock.now()
        keys = [k for k in self._keys.by_id.values() if k.live(now) and client in ("", k.client)]
        return sorted(keys, key=lambda k: (k.created_unix, k.id))

    def asked_by(self, key_id: str) -> list[IssuedKey]:
        """The live ephemeral secrets the issued key `key_id` asked for (its revocation ends
        them)."""
        now = self._clock.now()
        found = (self._keys.by_id.get(child) for child in self._keys.children.get(key_id, ()))
        return sorted(
            (key for key in found if key is not None and key.live(now)), key=lambda k: k.id
        )

    async def issue(
        self,
        client: str,
        label: str,
        ttl_s: float | None,
        realtime: RealtimeGrant | None = None,
        parent: str = "",
    ) -> tuple[str, IssuedKey]:
        """A new key for `client` (its clear text, returned here only) and what is kept of it;
        with `realtime`, an ephemeral Realtime client secret (`ek_`, bounded apart), and with
        `parent`, the key that asked for it: an issued key's id (its revocation ends the
        secret) or a configured key's fingerprint (the secret ends once it is not configured).
        Raises ClientKeyLimitError when the client has as many live ones of its kind as it may."""
        await self.refresh()
        bound = self._max_keys if realtime is None else self._max_ephemeral
        mine = [k for k in self.listed(client) if (k.realtime is None) is (realtime is None)]
        if len(mine) >= bound:
            raise at_bound(client, bound, realtime is not None)
        prefix = ISSUED_PREFIX if realtime is None else EPHEMERAL_PREFIX
        secret = prefix + secrets.token_urlsafe(32)
        key_id = "ck_" + secrets.token_hex(8)  # before the write: what finds it in the log
        event = self._issue_event(key_id, client, label, ttl_s, bound, realtime, parent)
        event["sha256"] = hashlib.sha256(secret.encode()).hexdigest()
        line = orjson.dumps(event) + b"\n"
        if realtime is not None and self._over_share(client, len(line)):
            raise over_share(client, _EPHEMERAL_SHARE_BYTES)
        max_bytes = _MAX_LOG_BYTES if realtime is None else _MAX_EPHEMERAL_LOG_BYTES
        try:
            await self._write(line, max_bytes)
        except StoreUnavailableError:  # the store may have taken it before it failed
            if not await self._reread():
                raise unconfirmed(key_id, client, label, realtime is not None) from None
            issued = self._keys.by_id.get(key_id)
            if issued is None:  # not written (or void): there is no such key
                raise
            await self._tell()  # the others read it now, not at their next periodic read
            return secret, issued  # written: its id, chosen before, tells it from the others
        if not await self._settled():
            raise unconfirmed(key_id, client, label, realtime is not None)
        issued = self._keys.by_id.get(key_id)
        if issued is None:  # another replica's issue took the last place (or room) first
            if realtime is not None and self._over_share(client, len(line)):
                raise over_share(client, _EPHEMERAL_SHARE_BYTES)
            raise at_bound(client, bound, realtime is not None)
        return secret, issued

    def _issue_event(
        self,
        key_id: str,
        client: str,
        label: str,
        ttl_s: float | None,
        bound: int,
        realtime: RealtimeGrant | None,
        parent: str,
    ) -> dict[str, Any]:
        """An `issue` line's event (without the key's hash), with the bounds its issuer applied."""
        now = self._clock.now()
        event: dict[str, Any] = {
            "op": "issue",
            "id": key_id,
            "client": client,
            "label": label,
            "created": now,
            "expires": now + ttl_s if ttl_s else None,
            "max": bound,
        }
        if realtime is not None:
            event["realtime"] = {"model": realtime.model, "session": realtime.session_json}
            event["max_bytes"] = _EPHEMERAL_SHARE_BYTES
        if parent:
            event["parent"] = parent
        return event

    def _over_share(self, client: str, size: int) -> bool:
        """Whether an ephemeral secret's line of `size` bytes would pass `client`'s share."""
        taken = self._keys.ephemeral_bytes(client, self._clock.now())
        return taken + size > _EPHEMERAL_SHARE_BYTES

    @staticmethod
    def looked_up(key_id: str) -> str:
        """`key_id`, checked before a revocation looks it up (`looked_up_id`)."""
        return looked_up_id(key_id, "id", "client key", no_such_key)

    async def revoke(self, key_id: str) -> IssuedKey:
        """Refuse the key `key_id` from now on, on every replica; ClientKeyNotFoundError when
        there is no such live key."""
        await self.refresh()
        key = self._keys.by_id.get(key_id)
        if key is None or not key.live(self._clock.now()):
            raise no_such_key()
        revocation = {"op": "revoke", "id": key_id, "at": self._clock.now()}
        await self._write(orjson.dumps(revocation) + b"\n", _MAX_LOG_BYTES + _REVOKE_ROOM_BYTES)
        if not await self._settled():  # it is in the log: every replica reads it there
            log.warning("issued client keys: revocation of %s written, not read back", key_id)
        return key

    async def _write(self, line: bytes, max_bytes: int) -> None:
        """Append `line` while the log stays within `max_bytes` (compacted first when not)."""
        done = await self._append_line(line, max_bytes)
        for _ in range(_COMPACT_TRIES):  # a rewrite refused: another replica wrote meanwhile
            # Not when the log holds live keys alone: a rewrite would free nothing, and make
            # every replica read it all again, at each issue refused.
            if done is not AppendResult.TOO_LARGE or not self._has_dead_lines():
                break
            if await self.compact():
                done = await self._append_line(line, max_bytes)
        if done is not AppendResult.APPENDED:
            raise ClientKeyLimitError(
                "The log of issued client keys is full of live keys: no more can be issued "
                "(ephemeral client secrets: wait for some to expire).",
                code="client_key_log_full",
            )

    async def _settled(self) -> bool:
        """After an append: the other replicas told, the log read again (with the event in it)
        and compacted when its dead keys' lines outnumber the live keys. False when no read
        reached the log (`_reread`); the notice and the compaction are chores, not the answer:
        the periodic read and the next write make up for them."""
        await self._tell()
        if not await self._reread():
            return False
        keys = self._keys
        if keys.events >= _COMPACT_MIN_EVENTS and 2 * keys.live_count(self._clock.now()) < (
            keys.events
        ):
            try:
                await self.compact()
            except StoreUnavailableError as exc:  # the event is in: the next write compacts
                log.warning("issued client keys: log not compacted (%s)", exc)
        return True

    async def _tell(self) -> None:
        """Tell every replica the log changed (a flight landed on its name: they read it)."""
        try:
            await self._store.land_flight(LOG_NAME, "", Landing.KEPT)
        except StoreUnavailableError as exc:
            log.warning("issued client keys: replicas not told of a change (%s)", exc)

    async def _reread(self) -> bool:
        """Read the log again, up to `_REREAD_TRIES` times; whether a read reached it (not a
        store that failed, nor one answering from local state while its shared one is lost)."""
        for _ in range(_REREAD_TRIES):
            # Behind the local fallback (Redis): asked again, not answered locally meanwhile.
            self._store.retry_shared()
            try:
                await self.refresh()
            except StoreUnavailableError as exc:
                log.warning("issued client keys: log not read after a write (%s)", exc)
                continue
            if not self._store.outage_counts().get("degraded"):
                return True
        return False

    def _has_dead_lines(self) -> bool:
        """Whether the log as last read holds lines a compaction drops (besides its head)."""
        keys = self._keys
        return keys.events > keys.live_count(self._clock.now()) + 1

    async def _append_line(self, line: bytes, max_bytes: int) -> AppendResult:
        done = await self._store.append_document(LOG_NAME, line, max_bytes=max_bytes)
        if done is AppendResult.MISSING:  # the first issue: the log starts (one writer wins)
            await self._store.put_document(LOG_NAME, head_line(), FOREVER, only_new=True)
            done = await self._store.append_document(LOG_NAME, line, max_bytes=max_bytes)
        return done

    async def compact(self) -> bool:
        """Rewrite the log as the keys live now; False when it changed while it was read (an
        append, or another replica's rewrite: the next append tries again)."""
        whole = await read_whole(self._store)
        if whole is None:
            return False
        keys, read = whole
        rewritten = snapshot(keys, self._clock.now())
        if not await self._store.replace_document(
            LOG_NAME, rewritten, FOREVER, size=read.offset, head=read.head
        ):
            return False
        self.compactions += 1
        log.info("issued client keys: log compacted to %d live keys", rewritten.count(b"\n") - 1)
        await self._store.land_flight(LOG_NAME, "", Landing.KEPT)  # the others read it anew
        await self.refresh()
        return True

    async def refresh(self) -> None:
        """Read the lines appended since the last read and fold them in (a rewritten log: all
        of it, into a new set that replaces this one once read)."""
        async with self._reading:
            keys = self._keys
            while True:
                found = await self._reader.more()
                if found is None:  # no log (nothing issued yet), or it is gone
                    # Not from a store answering from local state (Redis lost): those known stay.
                    if not self._store.outage_counts().get("degraded"):
                        keys = KeySet()
                        self._reader = LogReader(self._store)
                    break
                lines, rewritten = found
                if rewritten:
                    keys = KeySet()
                for line in lines:
                    keys.fold_line(line)
                if not self._reader.behind:
                    break
            self._keys = keys
            self.syncs += 1
            self._synced.set()
            self._synced = asyncio.Event()

    async def synced(self, after: int) -> None:
        """Return once the log was read more than `after` times (tests: `syncs` before)."""
        while self.syncs <= after:
            await self._synced.wait()

    def start(self) -> None:
        """Follow the log from now on (idempotent)."""
        if self._follower is None:
            self._follower = asyncio.create_task(self._follow(), name="switchboard-client-keys")

    async def _follow(self) -> None:
        with self._store.watch_flight(LOG_NAME) as watch:
            while True:
                hearing = await self._store.hear_flights()
                watch.rearm()  # a notice from here on wakes the wait below
                try:
                    await self.refresh()
                except StoreUnavailableError as exc:  # kept as known; read again on the timer
                    log.warning("issued client keys not read (%s): the last ones read apply", exc)
                except Exception:  # a bug: said, and the next notice or period reads again,
                    # rather than a replica that never hears of a revocation again
                    log.exception("issued client keys not read: the last ones read apply")
                wait_s = self._resync_s if hearing else min(self._resync_s, _UNHEARD_CHECK_S)
                await self._rest(watch.notified(wait_s), self._clock.wait(wait_s))

    async def _rest(self, *waits: Any) -> None:
        """Wait until the first of `waits` ends (a notice, or the resync period on the clock)."""
        tasks = [asyncio.ensure_future(wait) for wait in waits]
        try:
            await asyncio.sleep(0)  # each wait has begun (a ManualClock knows its waiter)
            self.resting.set()
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self.resting.clear()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def aclose(self) -> None:
        follower, self._follower = self._follower, None
        if follower is not None:
            follower.cancel()
            # wait() does not re-raise the task's CancelledError, but does raise our own.
            await asyncio.wait((follower,))
